//! The header: uptime, subscription count, totals and the current rates, with DEMO and PAUSED badges,
//! or the address of the endpoint an attached dashboard watches.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

use crate::dashboard::app::App;
use crate::dashboard::format::{count, rate, uptime};

pub fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let th = app.theme();
    let t = &app.snapshot().totals;
    // The same point the chart ends on, so the headline never disagrees with the line under it.
    let now = app.history().latest();
    if let Some(reason) = &app.observed().unreachable {
        let banner = format!(
            " DISCONNECTED {}; retrying, showing the last snapshot ",
            crate::terminal_text::escape_controls(reason)
        );
        let second = Line::styled(
            format!(
                " published {}  delivered {}  dropped {}  (as of the last snapshot)",
                count(t.published),
                count(t.delivered),
                count(t.dropped)
            ),
            th.dim(),
        );
        Paragraph::new(vec![Line::styled(banner, th.dropped()), second]).render(area, buf);
        return;
    }
    let mut first = vec![
        Span::styled(" SWITCHYARD ", th.accent()),
        Span::styled(" up ", th.dim()),
        Span::raw(uptime(app.snapshot().uptime_s)),
        Span::styled("  subs ", th.dim()),
        Span::raw(count(t.subscriptions)),
        Span::styled("  queued ", th.dim()),
        Span::raw(count(t.depth)),
        Span::styled("  unrouted ", th.dim()),
        Span::raw(count(t.unrouted)),
        Span::raw("  "),
    ];
    first.push(if let Some(addr) = app.attached_to() {
        Span::styled(
            format!(
                "attached to {}",
                crate::terminal_text::escape_controls(addr)
            ),
            th.dim(),
        )
    } else if app.observed().demo {
        Span::styled(" DEMO ", th.badge())
    } else {
        Span::styled("demo off", th.dim())
    });
    let paused = app.paused_count();
    if paused > 0 {
        first.push(Span::raw(" "));
        first.push(Span::styled(format!(" PAUSED {paused} "), th.badge()));
    }
    let dropped_style = if now.dropped > 0.0 {
        th.dropped()
    } else {
        th.text()
    };
    let mut second = vec![
        Span::styled(" published ", th.dim()),
        Span::styled(count(t.published), th.published()),
        Span::styled(format!(" {}/s", rate(now.published)), th.published()),
        Span::styled("  delivered ", th.dim()),
        Span::styled(count(t.delivered), th.delivered()),
        Span::styled(format!(" {}/s", rate(now.delivered)), th.delivered()),
        Span::styled("  dropped ", th.dim()),
        Span::styled(count(t.dropped), dropped_style),
        Span::styled(format!(" {}/s", rate(now.dropped)), dropped_style),
    ];
    let retained = &app.snapshot().retained;
    if retained.messages > 0 || retained.rejected > 0 {
        second.push(Span::styled("  retained ", th.dim()));
        second.push(Span::raw(count(retained.messages)));
    }
    if retained.rejected > 0 {
        // A full store refused to keep these (they were delivered live): worth a warning colour.
        second.push(Span::styled(
            format!(" ({} not kept: store full)", count(retained.rejected)),
            th.dropped(),
        ));
    }
    Paragraph::new(vec![Line::from(first), Line::from(second)]).render(area, buf);
}
