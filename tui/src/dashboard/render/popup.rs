//! Overlays drawn over the main screen: the forms, the unsubscribe confirmation and the help.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Widget, Wrap};

use crate::dashboard::app::App;
use crate::dashboard::forms::Form;
use crate::dashboard::keys::{BINDINGS, FORM_KEYS};
use switchyard::SubscriptionId;

/// A `width` × `height` rectangle centred in `area`, shrunk to fit.
pub fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let w = width.min(area.width);
    let h = height.min(area.height);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}

const LABEL_WIDTH: u16 = 10;

/// Clears `popup` and draws its border titled `title`; returns the inside.
pub fn frame(app: &App, title: &str, popup: Rect, buf: &mut Buffer) -> Rect {
    let th = app.theme();
    Clear.render(popup, buf);
    let block = Block::bordered()
        .border_style(th.focus())
        .title(Span::styled(format!(" {title} "), th.accent()));
    let inner = block.inner(popup);
    block.render(popup, buf);
    inner
}

/// Draws `form`'s fields in `fields_area` and the error to show now (the library's text) in
/// `error_area`. Returns whether an error is shown.
pub fn fields_with_error(
    app: &App,
    form: &Form,
    fields_area: Rect,
    error_area: Rect,
    buf: &mut Buffer,
) -> bool {
    let error = form.visible_error(app.limits());
    fields(app, form, error.as_ref().map(|e| e.field), fields_area, buf);
    let Some(e) = error else {
        return false;
    };
    Paragraph::new(Line::styled(
        format!("✗ {}", e.message),
        app.theme().error(),
    ))
    .wrap(Wrap { trim: true })
    .render(error_area, buf);
    true
}

/// Draws `form`'s fields one per row of `area`, the focused one with its cursor, the one named by
/// `invalid` with its label in the error colour.
fn fields(app: &App, form: &Form, invalid: Option<usize>, area: Rect, buf: &mut Buffer) {
    let th = app.theme();
    for (i, field) in form.fields.iter().enumerate() {
        let row = Rect {
            y: area.y + i as u16,
            height: 1,
            ..area
        };
        if row.y >= area.bottom() {
            break;
        }
        let focused = i == form.focus;
        let label_style = if invalid == Some(i) {
            th.error()
        } else if focused {
            th.focus()
        } else {
            th.dim()
        };
        let marker = if focused { "▸" } else { " " };
        let mut spans = vec![Span::styled(
            format!(
                "{marker}{:<w$}",
                field.label,
                w = usize::from(LABEL_WIDTH - 1)
            ),
            label_style,
        )];
        let value_width = usize::from(row.width.saturating_sub(LABEL_WIDTH)).max(1);
        let scroll = field.input.visual_scroll(value_width.saturating_sub(1));
        let chars: Vec<char> = field.input.value().chars().collect();
        let visible: String = chars.iter().skip(scroll).take(value_width).collect();
        if focused {
            let cursor = field.input.visual_cursor().saturating_sub(scroll);
            let before: String = visible.chars().take(cursor).collect();
            let at: String = visible
                .chars()
                .nth(cursor)
                .map_or(" ".to_string(), String::from);
            let after: String = visible.chars().skip(cursor + 1).collect();
            spans.push(Span::raw(before));
            spans.push(Span::styled(at, th.selected()));
            spans.push(Span::raw(after));
        } else {
            spans.push(Span::raw(visible));
        }
        Line::from(spans).render(row, buf);
    }
}

pub fn form(app: &App, form: &Form, area: Rect, buf: &mut Buffer) {
    let th = app.theme();
    let n = form.fields.len() as u16;
    let inner = frame(app, form.title(), centered(area, 74, n + 7), buf);
    let [fields_area, _, error_area, hint_area, keys_area] = Layout::vertical([
        Constraint::Length(n),
        Constraint::Length(1),
        Constraint::Length(2),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(inner);
    fields_with_error(app, form, fields_area, error_area, buf);
    if let Some(field) = form.fields.get(form.focus) {
        Line::styled(field.hint, th.dim()).render(hint_area, buf);
    }
    Line::from(vec![
        Span::styled("Enter", th.accent()),
        Span::styled(" send  ", th.dim()),
        Span::styled("Tab", th.accent()),
        Span::styled(" next field  ", th.dim()),
        Span::styled("Esc", th.accent()),
        Span::styled(" cancel", th.dim()),
    ])
    .render(keys_area, buf);
}

pub fn confirm_unsubscribe(
    app: &App,
    id: SubscriptionId,
    name: &str,
    area: Rect,
    buf: &mut Buffer,
) {
    let th = app.theme();
    let filter = app
        .snapshot()
        .subscriptions
        .iter()
        .find(|s| s.id == id)
        .map_or(String::new(), |s| {
            format!(" ({})", crate::terminal_text::escape_controls(&s.filter))
        });
    let popup = centered(area, 60, 6);
    Clear.render(popup, buf);
    let lines = vec![
        Line::from(vec![
            Span::raw("Unsubscribe "),
            Span::styled(name.to_string(), th.accent()),
            Span::raw(format!("{filter}?")),
        ]),
        Line::styled(
            "Messages still queued are counted as dropped (unsubscribed).",
            th.dim(),
        ),
        Line::from(""),
        Line::from(vec![
            Span::styled("y", th.accent()),
            Span::styled(" unsubscribe   ", th.dim()),
            Span::styled("any other key", th.accent()),
            Span::styled(" keep it", th.dim()),
        ]),
    ];
    Paragraph::new(lines)
        .wrap(Wrap { trim: true })
        .block(
            Block::bordered()
                .border_style(th.focus())
                .title(Span::styled(" Unsubscribe ", th.accent())),
        )
        .render(popup, buf);
}

pub fn help(app: &App, area: Rect, buf: &mut Buffer) {
    let th = app.theme();
    let entries: Vec<(&str, &str)> = BINDINGS
        .iter()
        .map(|b| (b.keys, b.help))
        .chain(std::iter::once(FORM_KEYS))
        .collect();
    let popup = centered(area, 80, entries.len() as u16 + 4);
    Clear.render(popup, buf);
    let key_width = entries
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    let mut lines: Vec<Line> = entries
        .iter()
        .map(|(keys, what)| {
            Line::from(vec![
                Span::styled(format!(" {keys:<key_width$}  "), th.accent()),
                Span::raw(*what),
            ])
        })
        .collect();
    lines.push(Line::from(""));
    lines.push(Line::styled(" any key closes this help", th.dim()));
    Paragraph::new(lines)
        .block(
            Block::bordered()
                .border_style(th.focus())
                .title(Span::styled(" Keys ", th.accent())),
        )
        .render(popup, buf);
}
