//! Colours, or none: under `NO_COLOR` every style keeps its modifiers (bold, reversed) but no colour,
//! so the selection and the badges stay visible on a monochrome screen.

use ratatui::style::{Color, Modifier, Style};

/// The dashboard's palette.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Theme {
    color: bool,
}

impl Theme {
    /// Colours unless `NO_COLOR` is set to a non-empty value (<https://no-color.org>).
    pub fn from_env() -> Self {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Self { color: !no_color }
    }

    /// A theme with or without colours.
    pub fn new(color: bool) -> Self {
        Self { color }
    }

    /// Whether colours are used.
    pub fn has_color(&self) -> bool {
        self.color
    }

    fn fg(&self, color: Color) -> Style {
        if self.color {
            Style::new().fg(color)
        } else {
            Style::new()
        }
    }

    /// Plain text.
    pub fn text(&self) -> Style {
        Style::new()
    }
    /// Labels and secondary text.
    pub fn dim(&self) -> Style {
        self.fg(Color::DarkGray)
    }
    /// Titles and key names.
    pub fn accent(&self) -> Style {
        self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
    }
    /// Published series and figures.
    pub fn published(&self) -> Style {
        self.fg(Color::Cyan)
    }
    /// Delivered series and figures.
    pub fn delivered(&self) -> Style {
        self.fg(Color::Green)
    }
    /// Dropped series and figures that are rising.
    pub fn dropped(&self) -> Style {
        self.fg(Color::Red)
    }
    /// Warnings.
    pub fn warn(&self) -> Style {
        self.fg(Color::Yellow)
    }
    /// Errors.
    pub fn error(&self) -> Style {
        self.fg(Color::Red).add_modifier(Modifier::BOLD)
    }
    /// A badge such as PAUSED: reversed, so it shows without colour too.
    pub fn badge(&self) -> Style {
        self.fg(Color::Yellow)
            .add_modifier(Modifier::REVERSED | Modifier::BOLD)
    }
    /// The selected row.
    pub fn selected(&self) -> Style {
        Style::new().add_modifier(Modifier::REVERSED)
    }
    /// Borders.
    pub fn border(&self) -> Style {
        self.fg(Color::DarkGray)
    }
    /// The focused form field's border and label.
    pub fn focus(&self) -> Style {
        self.fg(Color::Yellow).add_modifier(Modifier::BOLD)
    }
}
