//! The filters view (`f`): totals per distinct filter across its subscriptions (how many, matched,
//! delivered, dropped, queued against their summed capacity), so a filter shared by many subscriptions
//! shows what it costs as a whole. Sorted by the table's sort where it applies (depth, delivered and
//! rate, dropped), else by filter text; `/` filters rows by filter text.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Row, StatefulWidget, Table, TableState, Widget};

use super::scroll;
use crate::dashboard::app::{App, Mode, SortColumn};
use crate::dashboard::format::{bar, compact, count, fit};

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
        let mut title = vec![
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
        if *app.mode() == Mode::Filter {
            title.push(Span::styled(
                format!("/{}█ ", view.filter.value()),
                th.focus(),
            ));
        } else if !view.filter.value().is_empty() {
            title.push(Span::styled(
                format!("filter \"{}\" ", view.filter.value()),
                th.warn(),
            ));
        }
        let block = Block::bordered()
            .border_style(th.border())
            .title(Line::from(title));
        let inner = block.inner(area);
        block.render(area, buf);
        if inner.is_empty() {
            return;
        }

        // Numeric columns are dropped from the right when the screen is narrow; the filter takes the rest.
        let mut shown = WIDTHS.len();
        while shown > 0 && WIDTHS[..shown].iter().map(|w| w + 1).sum::<u16>() + 2 + 12 > inner.width
        {
            shown -= 1;
        }
        let fixed: u16 = WIDTHS[..shown].iter().map(|w| w + 1).sum::<u16>() + 2;
        let filter_width = inner.width.saturating_sub(fixed).max(1);

        let visible = usize::from(inner.height.saturating_sub(1)).max(1);
        let total = view.rows.len();
        let offset = scroll(state.offset(), view.selected, total, visible);
        *state.offset_mut() = offset;

        let header = Row::new(
            std::iter::once(Cell::from("filter")).chain(
                TITLES[..shown]
                    .iter()
                    .map(|t| Cell::from(Line::from(*t).right_aligned())),
            ),
        )
        .style(th.dim());
        let rows = view.rows[offset..total.min(offset + visible)]
            .iter()
            .filter_map(|&i| view.filters.get(i))
            .map(|f| {
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
                Row::new(cells.into_iter().take(shown + 1).enumerate().map(
                    |(column, (text, style))| {
                        let line = Line::from(Span::styled(text, style));
                        Cell::from(if column == 0 {
                            line
                        } else {
                            line.right_aligned()
                        })
                    },
                ))
            });
        let widths = std::iter::once(Constraint::Length(filter_width))
            .chain(WIDTHS[..shown].iter().map(|w| Constraint::Length(*w)));
        let table = Table::new(rows, widths)
            .header(header)
            .column_spacing(1)
            .row_highlight_style(th.selected())
            .highlight_symbol("▶ ");
        let mut on_screen =
            TableState::default().with_selected((total > 0).then(|| view.selected - offset));
        StatefulWidget::render(table, inner, buf, &mut on_screen);
        if total == 0 {
            let hint = if view.filters.is_empty() {
                "no subscriptions yet: press s to subscribe, d for demo traffic"
            } else {
                "no filter matches the row filter (/ to change it)"
            };
            let at = Rect {
                y: inner.y + 1,
                height: 1,
                ..inner
            };
            Line::styled(fit(hint, usize::from(at.width)), th.dim()).render(at, buf);
        }
    }
}
