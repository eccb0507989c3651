//! The footer: the main keys for the current mode (`?` lists them all).

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Widget;

use crate::dashboard::app::{App, Mode};

pub fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let th = &app.theme;
    let keys: &[(&str, &str)] = match app.mode {
        Mode::Filter => &[("Enter", "keep filter"), ("Esc", "clear filter")],
        Mode::PublishForm | Mode::SubscribeForm => {
            &[("Enter", "send"), ("Tab", "next field"), ("Esc", "cancel")]
        }
        Mode::ConfirmUnsubscribe { .. } => &[("y", "unsubscribe"), ("any other key", "keep")],
        Mode::Help => &[("any key", "closes the help")],
        Mode::Normal => &[
            ("q", "quit"),
            ("?", "help"),
            ("p", "publish"),
            ("s", "subscribe"),
            ("u", "unsub"),
            ("space", "pause"),
            ("e", "export"),
            ("d", "demo"),
            ("/", "filter"),
            ("1-7/o/O", "sort"),
            ("j/k", "select"),
        ],
    };
    let mut spans = vec![Span::raw(" ")];
    for (key, what) in keys {
        spans.push(Span::styled(*key, th.accent()));
        spans.push(Span::styled(format!(" {what}  "), th.dim()));
    }
    Line::from(spans).render(area, buf);
}
