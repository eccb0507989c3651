//! The dead-letter view (`x`, in place of the log): the most recent dropped messages, newest at the
//! bottom, each with the subscription that dropped it and why; the title carries the queue's counters.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Widget};

use crate::dashboard::app::App;
use crate::dashboard::format::count;
use crate::terminal_text::escape_controls;

pub fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let th = app.theme();
    let title = match &app.snapshot().dead_letters {
        Some(d) => format!(
            " Dead letters {} (overflow {}) ",
            count(d.offered),
            count(d.overflow)
        ),
        None => " Dead letters (off) ".to_string(),
    };
    let block = Block::bordered()
        .border_style(th.border())
        .title(Span::styled(title, th.accent()));
    let room = usize::from(area.height.saturating_sub(2));
    let lines: Vec<Line> = if app.observed().dead_letters.is_empty() {
        vec![Line::styled(
            "none yet: a full or removed subscription's drops show here",
            th.dim(),
        )]
    } else {
        let skip = app.observed().dead_letters.len().saturating_sub(room);
        app.observed().dead_letters[skip..]
            .iter()
            .map(|d| {
                Line::from(vec![
                    Span::styled(format!("{:<12} ", d.reason), th.warn()),
                    Span::styled(
                        format!("{} ", escape_controls(&d.subscription)),
                        th.accent(),
                    ),
                    Span::styled(format!("{} ", escape_controls(&d.topic)), th.text()),
                    Span::styled(d.preview.clone(), th.dim()),
                ])
            })
            .collect()
    };
    Paragraph::new(lines).block(block).render(area, buf);
}
