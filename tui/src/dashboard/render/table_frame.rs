//! What every table view (subscriptions, filters, MQTT clients) draws alike: the border with the row
//! filter, the rows that fit and the scrolling that keeps the selection visible, the columns that fit
//! a narrow screen, and the hint in an empty table.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, StatefulWidget, Table, TableState, Widget};

use crate::dashboard::app::{App, Mode, View};
use crate::dashboard::format;

/// Draws a table's border titled `title` followed by the row filter (being typed, or in force);
/// returns the inside.
pub fn table_block(app: &App, mut title: Vec<Span<'static>>, area: Rect, buf: &mut Buffer) -> Rect {
    let th = app.theme();
    let filter = app.table().filter.value();
    if *app.mode() == Mode::Filter {
        title.push(Span::styled(format!("/{filter}█ "), th.focus()));
    } else if !filter.is_empty() {
        title.push(Span::styled(format!("filter \"{filter}\" "), th.warn()));
    }
    let block = Block::bordered()
        .border_style(th.border())
        .title(Line::from(title));
    let inner = block.inner(area);
    block.render(area, buf);
    inner
}

/// Says in the first row of an empty table why it is empty: nothing yet, or nothing matches `/`.
fn empty_table_hint(app: &App, no_match: &str, inner: Rect, buf: &mut Buffer) {
    let hint = if app.snapshot().subscriptions.is_empty() && app.table().view != View::Connections {
        "no subscriptions yet: press s to subscribe, d for demo traffic"
    } else {
        no_match
    };
    let at = Rect {
        y: inner.y + 1,
        height: 1,
        ..inner
    };
    Line::styled(format::fit(hint, usize::from(at.width)), app.theme().dim()).render(at, buf);
}

/// The rows of the table view that fit in `inner` (under the header), scrolled as little as keeps the
/// selection visible; the new scroll position is kept in `state`.
pub fn visible_rows(app: &App, state: &mut TableState, inner: Rect) -> std::ops::Range<usize> {
    let view = app.table();
    let visible = usize::from(inner.height.saturating_sub(1)).max(1);
    let total = view.rows.len();
    let offset = scroll(state.offset(), view.selected, total, visible);
    *state.offset_mut() = offset;
    offset..total.min(offset + visible)
}

/// How many of the fixed-width columns `widths` fit beside a first, text column of at least 12 cells
/// in `width` (columns are dropped from the right on a narrow screen), and the first column's width.
pub fn fit_columns(widths: &[u16], width: u16) -> (usize, u16) {
    let fixed = |n: usize| widths[..n].iter().map(|w| w + 1).sum::<u16>() + 2;
    let mut numeric = widths.len();
    while numeric > 0 && fixed(numeric) + 12 > width {
        numeric -= 1;
    }
    (numeric, width.saturating_sub(fixed(numeric)).max(1))
}

/// Renders `table`, built from the rows in `shown` only, with the selected row marked; an empty table
/// says why it is empty (`no_match` when the row filter hides every row).
pub fn render_visible(
    app: &App,
    table: Table,
    shown: &std::ops::Range<usize>,
    no_match: &str,
    inner: Rect,
    buf: &mut Buffer,
) {
    let table = table
        .column_spacing(1)
        .row_highlight_style(app.theme().selected())
        .highlight_symbol("▶ ");
    // The table gets only the rows on screen, so its own state is relative to them.
    let selected = app.table().selected;
    let mut on_screen = TableState::default()
        .with_selected(shown.contains(&selected).then(|| selected - shown.start));
    StatefulWidget::render(table, inner, buf, &mut on_screen);
    if app.table().rows.is_empty() {
        empty_table_hint(app, no_match, inner, buf);
    }
}

/// The first row to show so that row `selected` of `total` is visible in `visible` rows, moving the
/// previous `offset` only as far as needed (what ratatui's `Table` does with its `TableState`, done
/// here because the tables build only the rows on screen).
fn scroll(offset: usize, selected: usize, total: usize, visible: usize) -> usize {
    let visible = visible.max(1);
    let offset = if selected < offset {
        selected
    } else if selected >= offset + visible {
        selected + 1 - visible
    } else {
        offset
    };
    offset.min(total.saturating_sub(visible))
}

#[cfg(test)]
mod tests {
    use super::scroll;

    #[test]
    fn scrolling_moves_only_as_far_as_the_selection_needs() {
        assert_eq!(scroll(0, 3, 100, 10), 0, "visible: no move");
        assert_eq!(scroll(0, 10, 100, 10), 1, "one below: one row");
        assert_eq!(
            scroll(50, 40, 100, 10),
            40,
            "above: the selection becomes the top row"
        );
        assert_eq!(scroll(95, 99, 100, 10), 90, "never past the last full page");
        assert_eq!(scroll(7, 0, 0, 10), 0, "an empty table");
    }
}
