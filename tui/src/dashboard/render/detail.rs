//! The detail pane: the selected subscription's counters, drops by reason, a sparkline of its delivery
//! rate, its consumer's state and the last messages it received. An acknowledged subscription adds
//! what is in flight against its window (with a `WINDOW FULL` badge in the title while receivers wait
//! on it), its redeliveries, how attempts ended, the acks refused, and its own drop reasons.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Sparkline, Widget};

use switchyard::{AckStats, SubscriptionStats};

use crate::dashboard::app::App;
use crate::dashboard::format::{count, fit, rate};
use crate::dashboard::history::SubscriptionHistory;
use crate::dashboard::link::{ConsumerState, RecentMessage};
use crate::dashboard::theme::Theme;
use crate::radar::Radar;
use crate::terminal_text::escape_controls;

pub fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let th = app.theme();
    let Some(s) = app.selected() else {
        let block = Block::bordered()
            .border_style(th.border())
            .title(Span::styled(" Detail ", th.accent()));
        Paragraph::new(Line::styled("select a subscription with j/k", th.dim()))
            .block(block)
            .render(area, buf);
        return;
    };
    let radar = app.radar(s.id);
    let mut title = Line::from(vec![
        Span::styled(format!(" {} ", escape_controls(&s.name)), th.accent()),
        Span::styled(
            format!("#{} {} ", s.id, escape_controls(&s.filter)),
            th.dim(),
        ),
    ]);
    if let Some(ack) = s.ack.as_ref().filter(|_| radar.stalled_on_window) {
        title.push_span(Span::styled(window_badge(ack), th.badge()));
    }
    let block = Block::bordered().border_style(th.border()).title(title);
    let inner = block.inner(area);
    block.render(area, buf);
    if inner.is_empty() {
        return;
    }

    let mut lines = counter_lines(th, s, app.consumer(s.id));
    if let Some(ack) = &s.ack {
        lines.extend(ack_lines(th, s, ack, &radar));
    }
    let fixed = lines.len() as u16;
    let [text_area, spark_row, recent_area] = Layout::vertical([
        Constraint::Length(fixed),
        Constraint::Length(1),
        Constraint::Fill(1),
    ])
    .areas(inner);
    Paragraph::new(lines).render(text_area, buf);
    render_sparkline(th, app.history().subscription(s.id), spark_row, buf);
    if recent_area.is_empty() {
        return;
    }
    let recent: &[_] = if app.observed().recent_for == Some(s.id) {
        &app.observed().recent
    } else {
        &[]
    };
    render_recent(th, recent, recent_area, buf);
}

/// The consumer, queue and counters, and the drops by reason.
fn counter_lines(th: &Theme, s: &SubscriptionStats, consumer: ConsumerState) -> Vec<Line<'static>> {
    let consumer_style = match consumer {
        ConsumerState::Running => th.delivered(),
        ConsumerState::Pausing | ConsumerState::Paused => th.badge(),
        ConsumerState::Stopped => th.dim(),
    };
    let d = &s.dropped_by_reason;
    vec![
        Line::from(vec![
            Span::styled(consumer.label(), consumer_style),
            Span::styled(format!(" ×{}  ", s.receivers), th.dim()),
            Span::raw(s.policy.clone()),
            Span::styled("  depth ", th.dim()),
            Span::raw(format!("{}/{}", count(s.depth), count(s.capacity))),
            Span::styled("  hwm ", th.dim()),
            Span::raw(count(s.high_water)),
        ]),
        Line::from(vec![
            Span::styled("matched ", th.dim()),
            Span::raw(count(s.matched)),
            Span::styled("  delivered ", th.dim()),
            Span::styled(count(s.delivered), th.delivered()),
            Span::styled("  dropped ", th.dim()),
            Span::styled(
                count(s.dropped),
                if s.dropped > 0 {
                    th.dropped()
                } else {
                    th.text()
                },
            ),
        ]),
        Line::from(vec![
            Span::styled("drops full ", th.dim()),
            Span::raw(count(d.queue_full)),
            Span::styled("  evicted ", th.dim()),
            Span::raw(count(d.evicted)),
            Span::styled("  timeout ", th.dim()),
            Span::raw(count(d.timeout)),
            Span::styled("  unsub ", th.dim()),
            Span::raw(count(d.unsubscribed)),
        ]),
    ]
}

/// The title's badge while receivers wait on a full window (never silent).
fn window_badge(ack: &AckStats) -> String {
    match ack.stalled_receivers {
        // Receivers that poll do not wait, but found the window full since the radar's last look.
        0 => " WINDOW FULL ".to_string(),
        n => format!(" WINDOW FULL: {n} waiting "),
    }
}

/// An acknowledged subscription's window, redeliveries and settling: what is in flight against the
/// window (in the drop colour while receivers wait on it), how attempts ended, refused acks, and the
/// drops only an acknowledged subscription has.
fn ack_lines(
    th: &Theme,
    s: &SubscriptionStats,
    ack: &AckStats,
    radar: &Radar,
) -> Vec<Line<'static>> {
    let window_style = if radar.stalled_on_window {
        th.dropped()
    } else if s.in_flight >= ack.max_in_flight {
        th.warn()
    } else {
        th.text()
    };
    let refused = ack.refused.total();
    let d = &s.dropped_by_reason;
    vec![
        Line::from(vec![
            Span::styled("in flight ", th.dim()),
            Span::styled(
                format!("{}/{}", count(s.in_flight), count(ack.max_in_flight)),
                window_style,
            ),
            Span::styled("  waiting ", th.dim()),
            Span::raw(count(ack.waiting)),
            Span::styled("  redelivered ", th.dim()),
            Span::raw(count(ack.redelivered)),
        ]),
        Line::from(vec![
            Span::styled("expired ", th.dim()),
            Span::raw(count(ack.expired)),
            Span::styled("  nacked ", th.dim()),
            Span::raw(count(ack.nacked)),
            Span::styled("  handed back ", th.dim()),
            Span::raw(count(ack.handed_back)),
            Span::styled("  refused ", th.dim()),
            Span::styled(
                count(refused),
                if refused > 0 { th.warn() } else { th.text() },
            ),
        ]),
        Line::from(vec![
            Span::styled("drops rejected ", th.dim()),
            Span::raw(count(d.rejected)),
            Span::styled("  max deliveries ", th.dim()),
            Span::raw(count(d.max_deliveries)),
        ]),
    ]
}

/// The delivery rate now, and a sparkline of it: one bar per sample, the newest on the right.
fn render_sparkline(
    th: &Theme,
    history: Option<&SubscriptionHistory>,
    spark_row: Rect,
    buf: &mut Buffer,
) {
    let per_s = history.map_or(0.0, |h| h.delivered_per_s());
    let label = format!("{:>6}/s ", rate(per_s));
    let [label_area, spark_area] = Layout::horizontal([
        Constraint::Length(label.chars().count() as u16),
        Constraint::Fill(1),
    ])
    .areas(spark_row);
    Line::styled(label, th.delivered()).render(label_area, buf);
    if let Some(h) = history {
        let width = usize::from(spark_area.width);
        let skip = h.delivered_rate.len().saturating_sub(width);
        let data: Vec<u64> = h
            .delivered_rate
            .iter()
            .skip(skip)
            .map(|r| r.round() as u64)
            .collect();
        Sparkline::default()
            .data(&data)
            .style(th.delivered())
            .render(spark_area, buf);
    }
}

/// The last messages received, newest first, as many as fit.
fn render_recent(th: &Theme, recent: &[RecentMessage], recent_area: Rect, buf: &mut Buffer) {
    let mut lines = vec![Line::styled("last messages, newest first", th.dim())];
    if recent.is_empty() {
        lines.push(Line::styled("  (none yet)", th.dim()));
    }
    let room = usize::from(recent_area.height).saturating_sub(1);
    let longest = recent
        .iter()
        .map(|m| m.topic.chars().count())
        .max()
        .unwrap_or(0);
    let topic_w = longest.min(usize::from(recent_area.width / 2)).max(8);
    for m in recent.iter().skip(recent.len().saturating_sub(room)).rev() {
        let mut spans = vec![
            Span::styled(
                format!("  {:<w$} ", fit(&m.topic, topic_w), w = topic_w),
                th.published(),
            ),
            Span::raw(m.preview.clone()),
        ];
        if m.missed > 0 {
            spans.push(Span::styled(
                format!("  (missed {} before)", m.missed),
                th.dropped(),
            ));
        }
        lines.push(Line::from(spans));
    }
    Paragraph::new(lines).render(recent_area, buf);
}
