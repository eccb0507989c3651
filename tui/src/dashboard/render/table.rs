//! The subscriptions table, and the radar view of the same rows. Only the rows on screen are built, so
//! a thousand subscriptions scroll as smoothly as ten; columns that do not fit are left out, least
//! important first.
//!
//! The radar (`r`) shows each subscription's fill rate (matched/s) against its drain rate
//! (delivered/s), drops/s, the time to full at the current trend and the radar's verdict, most urgent
//! first; stalled and dropping rows are drawn in the drop colour, filling ones in the warning colour.
//! The rule is in [`crate::radar`].
//!
//! When the broker has acknowledged subscriptions, both views gain an `in flight` column (messages in
//! flight against the window) and the table a `redeliv` column; a receiver waiting on a full window
//! puts a `!` in the row's state column, in the drop colour. Without acknowledged subscriptions the
//! columns are left out, so plain brokers keep their room.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Row, StatefulWidget, Table, TableState};

use switchyard::SubscriptionStats;

use super::table_frame::{render_visible, table_block, visible_rows};
use crate::dashboard::app::{App, SortColumn, View};
use crate::dashboard::format::{bar, compact, count, fit, rate};
use crate::dashboard::history::SubscriptionHistory;
use crate::dashboard::link::ConsumerState;
use crate::dashboard::theme::Theme;
use crate::radar::{Radar, Verdict};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    State,
    Id,
    Name,
    Filter,
    Policy,
    Depth,
    HighWater,
    Delivered,
    Rate,
    Dropped,
    Receivers,
    InFlight,
    Redelivered,
    Fill,
    Drain,
    DropRate,
    TimeToFull,
    Verdict,
}

impl Column {
    /// The radar's columns, in order of importance.
    const RADAR_BY_PRIORITY: [Column; 9] = [
        Self::State,
        Self::Name,
        Self::Verdict,
        Self::Depth,
        Self::Fill,
        Self::Drain,
        Self::TimeToFull,
        Self::DropRate,
        Self::Filter,
    ];
    /// The radar's columns, in order on screen.
    const RADAR_ON_SCREEN: [Column; 9] = [
        Self::State,
        Self::Name,
        Self::Filter,
        Self::Depth,
        Self::Fill,
        Self::Drain,
        Self::DropRate,
        Self::TimeToFull,
        Self::Verdict,
    ];
    /// The radar's columns with acknowledged subscriptions, in order of importance.
    const RADAR_ACKED_BY_PRIORITY: [Column; 10] = [
        Self::State,
        Self::Name,
        Self::Verdict,
        Self::Depth,
        Self::InFlight,
        Self::Fill,
        Self::Drain,
        Self::TimeToFull,
        Self::DropRate,
        Self::Filter,
    ];
    /// The radar's columns with acknowledged subscriptions, in order on screen.
    const RADAR_ACKED_ON_SCREEN: [Column; 10] = [
        Self::State,
        Self::Name,
        Self::Filter,
        Self::Depth,
        Self::InFlight,
        Self::Fill,
        Self::Drain,
        Self::DropRate,
        Self::TimeToFull,
        Self::Verdict,
    ];
    /// The table's columns with acknowledged subscriptions, in order of importance: in flight comes
    /// right after the queue (it is the rest of what the subscription holds), then drops; at 80
    /// columns the delivery count and rate give way to them.
    const ACKED_BY_PRIORITY: [Column; 13] = [
        Self::State,
        Self::Name,
        Self::Filter,
        Self::Depth,
        Self::InFlight,
        Self::Dropped,
        Self::Rate,
        Self::Delivered,
        Self::Redelivered,
        Self::HighWater,
        Self::Policy,
        Self::Id,
        Self::Receivers,
    ];
    /// The table's columns with acknowledged subscriptions, in order on screen.
    const ACKED_ON_SCREEN: [Column; 13] = [
        Self::State,
        Self::Id,
        Self::Name,
        Self::Filter,
        Self::Policy,
        Self::Depth,
        Self::InFlight,
        Self::HighWater,
        Self::Delivered,
        Self::Rate,
        Self::Redelivered,
        Self::Dropped,
        Self::Receivers,
    ];
    /// In order of importance: the first ones are kept on narrow screens.
    const BY_PRIORITY: [Column; 11] = [
        Self::State,
        Self::Name,
        Self::Filter,
        Self::Depth,
        Self::Delivered,
        Self::Rate,
        Self::Dropped,
        Self::HighWater,
        Self::Policy,
        Self::Id,
        Self::Receivers,
    ];
    /// In order on screen.
    const ON_SCREEN: [Column; 11] = [
        Self::State,
        Self::Id,
        Self::Name,
        Self::Filter,
        Self::Policy,
        Self::Depth,
        Self::HighWater,
        Self::Delivered,
        Self::Rate,
        Self::Dropped,
        Self::Receivers,
    ];

    fn title(self) -> &'static str {
        match self {
            Self::State => "",
            Self::Id => "id",
            Self::Name => "name",
            Self::Filter => "filter",
            Self::Policy => "policy",
            Self::Depth => "depth/capacity",
            Self::HighWater => "hwm",
            Self::Delivered => "delivered",
            Self::Rate => "deliv/s",
            Self::Dropped => "dropped",
            Self::Receivers => "rcv",
            Self::InFlight => "in flight",
            Self::Redelivered => "redeliv",
            Self::Fill => "fill/s",
            Self::Drain => "drain/s",
            Self::DropRate => "drop/s",
            Self::TimeToFull => "full in",
            Self::Verdict => "radar",
        }
    }

    fn width(self) -> u16 {
        match self {
            Self::State => 1,
            Self::Id => 4,
            Self::Name => 12,
            Self::Filter => 16,
            Self::Policy => 11,
            Self::Depth => 17,
            Self::HighWater => 5,
            Self::Delivered => 9,
            Self::Rate => 7,
            Self::Dropped => 8,
            Self::Receivers => 3,
            Self::InFlight => 11,
            Self::Redelivered => 7,
            Self::Fill | Self::Drain => 7,
            Self::DropRate => 6,
            Self::TimeToFull => 7,
            Self::Verdict => 8,
        }
    }

    fn sort(self) -> Option<SortColumn> {
        match self {
            Self::Id => Some(SortColumn::Id),
            Self::Name => Some(SortColumn::Name),
            Self::Filter => Some(SortColumn::Filter),
            Self::Depth => Some(SortColumn::Depth),
            Self::Delivered => Some(SortColumn::Delivered),
            Self::Rate => Some(SortColumn::Rate),
            Self::Dropped => Some(SortColumn::Dropped),
            _ => None,
        }
    }

    fn numeric(self) -> bool {
        matches!(
            self,
            Self::Id
                | Self::HighWater
                | Self::Delivered
                | Self::Rate
                | Self::Dropped
                | Self::Receivers
                | Self::Redelivered
                | Self::Fill
                | Self::Drain
                | Self::DropRate
                | Self::TimeToFull
        )
    }
}

/// The columns of `view` that fit in `width` (one cell between columns, two for the selection marker);
/// `acked`: the broker has acknowledged subscriptions, whose columns are shown.
fn columns_for(view: View, width: u16, acked: bool) -> Vec<Column> {
    let (by_priority, on_screen): (&[Column], &[Column]) = match (view, acked) {
        (View::Radar, false) => (&Column::RADAR_BY_PRIORITY, &Column::RADAR_ON_SCREEN),
        (View::Radar, true) => (
            &Column::RADAR_ACKED_BY_PRIORITY,
            &Column::RADAR_ACKED_ON_SCREEN,
        ),
        (_, false) => (&Column::BY_PRIORITY, &Column::ON_SCREEN),
        (_, true) => (&Column::ACKED_BY_PRIORITY, &Column::ACKED_ON_SCREEN),
    };
    let mut used: u16 = 2;
    let mut chosen = Vec::new();
    for &c in by_priority {
        let need = c.width() + u16::from(!chosen.is_empty());
        if used + need <= width {
            used += need;
            chosen.push(c);
        }
    }
    on_screen
        .iter()
        .copied()
        .filter(|c| chosen.contains(c))
        .collect()
}

/// The subscriptions table (or the radar), scrolled by a `TableState` that rendering keeps up to date.
pub struct SubscriptionsTable<'a>(pub &'a App);

impl StatefulWidget for SubscriptionsTable<'_> {
    type State = TableState;

    fn render(self, area: Rect, buf: &mut Buffer, state: &mut TableState) {
        render(self.0, area, buf, state);
    }
}

fn render(app: &App, area: Rect, buf: &mut Buffer, state: &mut TableState) {
    let view = app.table();
    let radar = view.view == View::Radar;
    let arrow = if view.descending { "↓" } else { "↑" };
    let inner = table_block(app, title(app, radar, arrow), area, buf);
    if inner.is_empty() {
        return;
    }

    let acked = app.snapshot().subscriptions.iter().any(|s| s.ack.is_some());
    let columns = columns_for(view.view, inner.width, acked);
    let filter_width = filter_width(&columns, inner.width);
    let shown = visible_rows(app, state, inner);
    let header = Row::new(columns.iter().map(|c| {
        let mut text = c.title().to_string();
        if !radar && c.sort() == Some(view.sort) {
            text.push_str(arrow);
        }
        aligned(*c, Line::from(text))
    }))
    .style(app.theme().dim());
    let rows = view.rows[shown.clone()].iter().filter_map(|&i| {
        let s = app.snapshot().subscriptions.get(i)?;
        Some(subscription_row(app, s, &columns, filter_width, radar))
    });
    let widths = columns.iter().map(|c| match c {
        Column::Filter => Constraint::Length(filter_width),
        other => Constraint::Length(other.width()),
    });
    render_visible(
        app,
        Table::new(rows, widths).header(header),
        &shown,
        "no subscription matches the filter (/ to change it)",
        inner,
        buf,
    );
}

/// The border's title: the view, rows shown of all, and the order.
fn title(app: &App, radar: bool, arrow: &str) -> Vec<Span<'static>> {
    let th = app.theme();
    let view = app.table();
    let order = if radar {
        "most urgent first ".to_string()
    } else {
        format!("sort {} {arrow} ", view.sort.label())
    };
    vec![
        Span::styled(
            format!(
                " {} {}/{} ",
                view.view.title(),
                view.rows.len(),
                app.snapshot().subscriptions.len()
            ),
            th.accent(),
        ),
        Span::styled(order, th.dim()),
    ]
}

/// The filter column takes whatever the fixed-width columns leave.
fn filter_width(columns: &[Column], width: u16) -> u16 {
    let fixed: u16 = columns
        .iter()
        .filter(|c| **c != Column::Filter)
        .map(|c| c.width() + 1)
        .sum::<u16>()
        + 2;
    width.saturating_sub(fixed).max(Column::Filter.width())
}

/// A cell's line, right-aligned in a numeric column.
fn aligned(column: Column, line: Line<'static>) -> Cell<'static> {
    Cell::from(if column.numeric() {
        line.right_aligned()
    } else {
        line
    })
}

/// What one subscription's row shows, gathered once for all its cells.
struct RowFacts<'a> {
    s: &'a SubscriptionStats,
    history: Option<&'a SubscriptionHistory>,
    consumer: ConsumerState,
    radar: Radar,
    filter_width: u16,
}

/// One subscription's row; in the radar, a row that needs looking at is coloured whole.
fn subscription_row(
    app: &App,
    s: &SubscriptionStats,
    columns: &[Column],
    filter_width: u16,
    radar: bool,
) -> Row<'static> {
    let th = app.theme();
    let facts = RowFacts {
        s,
        history: app.history().subscription(s.id),
        consumer: app.consumer(s.id),
        radar: app.radar(s.id),
        filter_width,
    };
    let alarm: Option<Style> = match facts.radar.verdict {
        Verdict::Stalled | Verdict::StalledOnWindow | Verdict::Dropping => Some(th.dropped()),
        Verdict::Filling => Some(th.warn()),
        _ => None,
    }
    .filter(|_| radar);
    let cells = columns.iter().map(|c| {
        let (text, style) = cell(*c, &facts, th);
        // The radar colours a whole row that needs looking at.
        let style = alarm.unwrap_or(style);
        aligned(*c, Line::from(Span::styled(text, style)))
    });
    Row::new(cells.collect::<Vec<_>>())
}

/// The text and style of one column of a subscription's row.
fn cell(column: Column, f: &RowFacts<'_>, th: &Theme) -> (String, Style) {
    let (s, r) = (f.s, &f.radar);
    match column {
        Column::State => match f.consumer {
            ConsumerState::Paused | ConsumerState::Pausing => ("‖".to_string(), th.badge()),
            ConsumerState::Stopped => ("×".to_string(), th.dim()),
            ConsumerState::Running if r.stalled_on_window => ("!".to_string(), th.dropped()),
            ConsumerState::Running => (" ".to_string(), th.text()),
        },
        Column::Id => (s.id.to_string(), th.dim()),
        Column::Name => (fit(&s.name, 12), th.text()),
        Column::Filter => (fit(&s.filter, usize::from(f.filter_width)), th.text()),
        Column::Policy => (s.policy.clone(), th.dim()),
        Column::Depth => {
            let full = s.depth >= s.capacity;
            let text = format!(
                "{} {:>5}/{:<5}",
                bar(s.depth, s.capacity, 5),
                compact(s.depth),
                compact(s.capacity)
            );
            (text, if full { th.dropped() } else { th.delivered() })
        }
        Column::HighWater => (compact(s.high_water), th.dim()),
        Column::Delivered => (count(s.delivered), th.text()),
        Column::Rate => (
            rate(f.history.map_or(0.0, |h| h.delivered_per_s())),
            th.delivered(),
        ),
        Column::Dropped => {
            let dropping = f.history.is_some_and(|h| h.dropping_now);
            (
                count(s.dropped),
                if dropping { th.dropped() } else { th.text() },
            )
        }
        Column::Receivers => (s.receivers.to_string(), th.dim()),
        Column::InFlight => match &s.ack {
            Some(ack) => {
                let style = if r.stalled_on_window {
                    th.dropped()
                } else if s.in_flight >= ack.max_in_flight {
                    th.warn()
                } else {
                    th.text()
                };
                let text = format!(
                    "{:>5}/{:<5}",
                    compact(s.in_flight),
                    compact(ack.max_in_flight)
                );
                (text, style)
            }
            None => (format!("{:>5} {:<5}", "-", ""), th.dim()),
        },
        Column::Redelivered => match &s.ack {
            Some(ack) => (compact(ack.redelivered), th.text()),
            None => ("-".to_string(), th.dim()),
        },
        Column::Fill => (rate(r.fill_per_s), th.published()),
        Column::Drain => (rate(r.drain_per_s), th.delivered()),
        Column::DropRate => (
            rate(r.drop_per_s),
            if r.drop_per_s > 0.0 {
                th.dropped()
            } else {
                th.text()
            },
        ),
        Column::TimeToFull => (r.time_to_full_label(), th.text()),
        Column::Verdict => (r.verdict.label().to_string(), th.text()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn narrow_tables_keep_the_most_important_columns() {
        let narrow = columns_for(View::Subscriptions, 78, false);
        assert!(narrow.contains(&Column::Name) && narrow.contains(&Column::Dropped));
        assert!(!narrow.contains(&Column::Receivers));
        assert!(!narrow.contains(&Column::InFlight));
        let wide = columns_for(View::Subscriptions, 200, false);
        assert_eq!(wide.len(), Column::ON_SCREEN.len());
        assert!(columns_for(View::Subscriptions, 0, false).is_empty());
        let radar = columns_for(View::Radar, 60, false);
        assert!(radar.contains(&Column::Verdict) && radar.contains(&Column::Fill));
        assert_eq!(
            columns_for(View::Radar, 200, false).len(),
            Column::RADAR_ON_SCREEN.len()
        );
    }

    #[test]
    fn acknowledged_subscriptions_keep_in_flight_and_drops_at_80_columns() {
        // 80 columns less the border.
        let narrow = columns_for(View::Subscriptions, 78, true);
        for c in [
            Column::Filter,
            Column::Depth,
            Column::InFlight,
            Column::Dropped,
        ] {
            assert!(narrow.contains(&c), "{c:?} in {narrow:?}");
        }
        assert_eq!(
            columns_for(View::Subscriptions, 200, true),
            Column::ACKED_ON_SCREEN
        );
        assert!(columns_for(View::Radar, 78, true).contains(&Column::InFlight));
        for (by_priority, on_screen) in [
            (&Column::ACKED_BY_PRIORITY[..], &Column::ACKED_ON_SCREEN[..]),
            (
                &Column::RADAR_ACKED_BY_PRIORITY,
                &Column::RADAR_ACKED_ON_SCREEN,
            ),
        ] {
            assert_eq!(by_priority.len(), on_screen.len());
            assert!(by_priority.iter().all(|c| on_screen.contains(c)));
        }
    }
}
