//! The "who gets this topic?" overlay (`w`): a topic field, and under it every subscription a publish
//! on that topic would reach, each with the filter that matched, its policy and its queue. The answer
//! comes from the link ([`crate::dashboard::link::BrokerLink::explain`]), so it is the broker's own
//! routing, embedded or attached.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table, Widget, Wrap};

use switchyard::{Explained, TopicSyntax};

use super::popup::{centered, fields_with_error, frame};
use crate::dashboard::app::{App, Explanation};
use crate::dashboard::format::{bar, compact, count, fit};
use crate::dashboard::theme::Theme;
use crate::terminal_text::escape_controls;

/// Result rows the overlay shows at most; more are summarised in the last line.
const MAX_ROWS: usize = 12;

pub fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let th = app.theme();
    let form = app.explain_form();
    let answer = app.explanation();
    let found = answer
        .and_then(|a| a.result.as_ref().ok())
        .map_or(0, Vec::len);
    let result_rows = found.clamp(1, MAX_ROWS) as u16 + 2;
    let inner = frame(app, form.title(), centered(area, 96, result_rows + 8), buf);
    let [
        field_area,
        error_area,
        summary_area,
        results_area,
        keys_area,
    ] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(2),
        Constraint::Length(1),
        Constraint::Fill(1),
        Constraint::Length(1),
    ])
    .areas(inner);

    if !fields_with_error(app, form, field_area, error_area, buf) {
        Line::styled(form.fields[0].hint, th.dim()).render(error_area, buf);
    }
    render_answer(th, answer, summary_area, results_area, buf);
    let mut keys = vec![
        Span::styled("Enter", th.accent()),
        Span::styled(" who gets it?  ", th.dim()),
        Span::styled("Esc", th.accent()),
        Span::styled(" close", th.dim()),
    ];
    // Which topic syntax the broker reads, where the dashboard knows it (an attached dashboard
    // does not: the endpoint's broker validates with its own).
    if app.attached_to().is_none() {
        keys.push(Span::styled(
            match app.limits().syntax {
                TopicSyntax::Mqtt => "   MQTT topics: `*` is literal",
                TopicSyntax::Classic => "   classic topics: a `*` level is `+`",
            },
            th.dim(),
        ));
    }
    Line::from(keys).render(keys_area, buf);
}

/// The answer under the field: a prompt, the link's error, "unrouted", or the subscriptions reached.
fn render_answer(
    th: &Theme,
    answer: Option<&Explanation>,
    summary_area: Rect,
    results_area: Rect,
    buf: &mut Buffer,
) {
    match answer {
        None => Line::styled(
            "type a topic and press Enter: nothing is published",
            th.dim(),
        )
        .render(summary_area, buf),
        Some(a) => match &a.result {
            Err(e) => Paragraph::new(Line::styled(
                escape_controls(&format!("✗ could not ask about {}: {e}", a.topic)).into_owned(),
                th.error(),
            ))
            .wrap(Wrap { trim: true })
            .render(summary_area.union(results_area), buf),
            Ok(list) if list.is_empty() => Line::from(vec![
                Span::styled(escape_controls(&a.topic).into_owned(), th.accent()),
                Span::styled(
                    ": no subscription matches; a publish would be unrouted",
                    th.warn(),
                ),
            ])
            .render(summary_area, buf),
            Ok(list) => {
                Line::from(vec![
                    Span::styled(escape_controls(&a.topic).into_owned(), th.accent()),
                    Span::styled(
                        format!(
                            " reaches {} subscription{}:",
                            count(list.len() as u64),
                            if list.len() == 1 { "" } else { "s" }
                        ),
                        th.text(),
                    ),
                ])
                .render(summary_area, buf);
                render_reached(th, list, results_area, buf);
            }
        },
    }
}

/// The subscriptions reached, as many as fit, and "… and N more" under them when not all fit.
fn render_reached(th: &Theme, list: &[Explained], results_area: Rect, buf: &mut Buffer) {
    let room = usize::from(results_area.height.saturating_sub(1));
    let shown = if list.len() > room {
        room.saturating_sub(1)
    } else {
        list.len()
    };
    let header = Row::new(
        [
            "id",
            "name",
            "matched filter",
            "policy",
            "depth/capacity",
            "rcv",
        ]
        .map(Cell::from),
    )
    .style(th.dim());
    Table::new(
        list[..shown].iter().map(|e| reached_row(th, e)),
        [
            Constraint::Length(4),
            Constraint::Length(14),
            Constraint::Fill(1),
            Constraint::Length(11),
            Constraint::Length(17),
            Constraint::Length(3),
        ],
    )
    .header(header)
    .column_spacing(1)
    .render(results_area, buf);
    if shown < list.len() {
        let at = Rect {
            y: results_area.bottom().saturating_sub(1),
            height: 1,
            ..results_area
        };
        Line::styled(
            format!("… and {} more", count((list.len() - shown) as u64)),
            th.dim(),
        )
        .render(at, buf);
    }
}

/// One subscription reached: id, name, the filter that matched, policy, queue and receivers.
fn reached_row(th: &Theme, e: &Explained) -> Row<'static> {
    let full = e.depth >= e.capacity;
    Row::new([
        Cell::from(Line::styled(e.id.to_string(), th.dim()).right_aligned()),
        Cell::from(Span::styled(fit(&e.name, 14), th.text())),
        Cell::from(Span::styled(fit(&e.filter, 28), th.published())),
        Cell::from(Span::styled(e.policy.clone(), th.dim())),
        Cell::from(Span::styled(
            format!(
                "{} {:>5}/{:<5}",
                bar(e.depth, e.capacity, 5),
                compact(e.depth),
                compact(e.capacity)
            ),
            if full { th.dropped() } else { th.delivered() },
        )),
        Cell::from(
            Line::styled(
                e.receivers.to_string(),
                if e.receivers == 0 {
                    th.warn()
                } else {
                    th.dim()
                },
            )
            .right_aligned(),
        ),
    ])
}
