//! The footer: the main keys for the current mode (`?` lists them all). On the main screen they come
//! from the one table of key bindings, [`BINDINGS`].

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Widget;

use crate::dashboard::app::{App, Mode};
use crate::dashboard::keys::BINDINGS;

pub fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let th = app.theme();
    let keys: Vec<(&str, &str)> = match app.mode() {
        Mode::Filter => vec![("Enter", "keep filter"), ("Esc", "clear filter")],
        Mode::PublishForm | Mode::SubscribeForm => {
            vec![("Enter", "send"), ("Tab", "next field"), ("Esc", "cancel")]
        }
        Mode::Explain => vec![("Enter", "who gets it?"), ("Esc", "close")],
        Mode::ConfirmUnsubscribe { .. } => vec![("y", "unsubscribe"), ("any other key", "keep")],
        Mode::Help => vec![("any key", "closes the help")],
        Mode::Normal => BINDINGS.iter().filter_map(|b| b.footer).collect(),
    };
    let mut spans = vec![Span::raw(" ")];
    for (key, what) in keys {
        spans.push(Span::styled(key, th.accent()));
        spans.push(Span::styled(format!(" {what}  "), th.dim()));
    }
    Line::from(spans).render(area, buf);
}
