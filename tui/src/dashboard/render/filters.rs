//! The filters view (`f`): totals per distinct filter across its subscriptions (how many, matched,
//! delivered, dropped, queued against their summed capacity), so a filter shared by many subscriptions
//! shows what it costs as a whole. Sorted by the table's sort where it applies (depth, delivered and
//! rate, dropped), else by filter text; `/` filters rows by filter text.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Row, StatefulWidget, Table, TableState};

use super::table_frame::{fit_columns, render_visible, table_block, visible_rows};
use crate::dashboard::app::{App, SortColumn};
use crate::dashboard::format::{bar, compact, count, fit};
use crate::dashboard::theme::Theme;
use crate::filter_totals::FilterTotals;

/// The filters table, scrolled by a `TableState` that rendering keeps up to date.
pub struct FiltersTable<'a>(pub &'a App);

/// Widths of the numeric columns: subs, matched, delivered, dropped, depth/capacity.
const WIDTHS: [u16; 5] = [5, 10, 10, 9, 17];
const TITLES: [&str; 5] = ["subs", "matched", "delivered", "dropped", "depth/capacity"];

impl StatefulWidget for FiltersTable<'_> {
    type State = TableState;

    fn render(self, area: Rect, buf: &mut Buffer, state: &mut TableState) {
        let app = self.0;
        let th = app.theme();
        let view = app.table();
        let arrow = if view.descending { "↓" } else { "↑" };
        let order = match view.sort {
            SortColumn::Id | SortColumn::Name | SortColumn::Filter => "filter".to_string(),
            other => other.label().to_string(),
        };
        let title = vec![
            Span::styled(
                format!(" Filters {}/{} ", view.rows.len(), view.filters.len()),
                th.accent(),
            ),
            Span::styled(
                format!(
                    "over {} subscriptions, sort {order} {arrow} ",
                    app.snapshot().subscriptions.len()
                ),
                th.dim(),
            ),
        ];
        let inner = table_block(app, title, area, buf);
        if inner.is_empty() {
            return;
        }

        // Numeric columns are dropped from the right when the screen is narrow; the filter takes the rest.
        let (numeric, filter_width) = fit_columns(&WIDTHS, inner.width);

        let shown = visible_rows(app, state, inner);

        let header = Row::new(
            std::iter::once(Cell::from("filter")).chain(
                TITLES[..numeric]
                    .iter()
                    .map(|t| Cell::from(Line::from(*t).right_aligned())),
            ),
        )
        .style(th.dim());
        let rows = view.rows[shown.clone()]
            .iter()
            .filter_map(|&i| view.filters.get(i))
            .map(|f| filter_row(th, f, filter_width, numeric));
        let widths = std::iter::once(Constraint::Length(filter_width))
            .chain(WIDTHS[..numeric].iter().map(|w| Constraint::Length(*w)));
        render_visible(
            app,
            Table::new(rows, widths).header(header),
            &shown,
            "no filter matches the row filter (/ to change it)",
            inner,
            buf,
        );
    }
}

/// One filter's row: the filter, then the first `numeric` of its sums, right-aligned.
fn filter_row(th: &Theme, f: &FilterTotals, filter_width: u16, numeric: usize) -> Row<'static> {
    let full = f.depth >= f.capacity && f.capacity > 0;
    let cells = [
        (fit(&f.filter, usize::from(filter_width)), th.text()),
        (count(f.subscriptions), th.dim()),
        (count(f.matched), th.text()),
        (count(f.delivered), th.delivered()),
        (
            count(f.dropped),
            if f.dropped > 0 {
                th.dropped()
            } else {
                th.text()
            },
        ),
        (
            format!(
                "{} {:>5}/{:<5}",
                bar(f.depth, f.capacity, 5),
                compact(f.depth),
                compact(f.capacity)
            ),
            if full { th.dropped() } else { th.delivered() },
        ),
    ];
    Row::new(
        cells
            .into_iter()
            .take(numeric + 1)
            .enumerate()
            .map(|(column, (text, style))| {
                let line = Line::from(Span::styled(text, style));
                Cell::from(if column == 0 {
                    line
                } else {
                    line.right_aligned()
                })
            }),
    )
}
