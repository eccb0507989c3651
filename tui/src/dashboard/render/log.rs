//! The log pane: the newest lines at the bottom, coloured by level, long lines wrapped.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Widget};

use crate::dashboard::app::{App, Level};
use crate::dashboard::format::{uptime, wrap};
use crate::terminal_text::escape_controls;

/// Width of the time stamp column, and the indent of wrapped lines.
const STAMP: usize = 6;

pub fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let th = app.theme();
    let block = Block::bordered()
        .border_style(th.border())
        .title(Span::styled(" Log ", th.accent()));
    let room = usize::from(area.height.saturating_sub(2));
    let text_width = usize::from(area.width.saturating_sub(2))
        .saturating_sub(STAMP)
        .max(1);
    // Walk back from the newest entry until the pane is full, so only what shows is wrapped.
    let mut lines: Vec<Line> = Vec::with_capacity(room);
    for e in app.log_entries().iter().rev() {
        if lines.len() >= room {
            break;
        }
        let style = match e.level {
            Level::Info => th.text(),
            Level::Warn => th.warn(),
            Level::Error => th.error(),
        };
        // A log line may quote text from outside (a name, an endpoint's error).
        let mut entry: Vec<Line> = wrap(&escape_controls(&e.text), text_width)
            .into_iter()
            .enumerate()
            .map(|(i, chunk)| {
                let stamp = if i == 0 {
                    Span::styled(format!("{:>5} ", uptime(e.t)), th.dim())
                } else {
                    Span::raw(" ".repeat(STAMP))
                };
                Line::from(vec![stamp, Span::styled(chunk, style)])
            })
            .collect();
        if entry.is_empty() {
            entry.push(Line::styled(format!("{:>5} ", uptime(e.t)), th.dim()));
        }
        for line in entry.into_iter().rev() {
            lines.push(line);
        }
    }
    lines.truncate(room);
    lines.reverse();
    Paragraph::new(lines).block(block).render(area, buf);
}
