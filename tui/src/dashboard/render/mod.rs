//! Drawing the dashboard: `impl StatefulWidget for &App`, one module per panel.
//!
//! Rendering reads the [`App`] (no clock, no broker) and writes only its [`ScreenState`]: where each
//! table is scrolled to, which only rendering can know because only it knows the table's height. That
//! is ratatui's `StatefulWidget` idiom (a `TableState` per table), and it keeps the same `App` and
//! the same state drawing the same screen, which the snapshot tests rely on.

mod chart;
mod connections;
mod dead_letters;
mod detail;
mod explain;
mod filters;
mod footer;
mod header;
mod log;
mod popup;
mod table;
mod table_frame;

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Paragraph, StatefulWidget, TableState, Widget, Wrap};

use super::app::{App, Mode, View};

/// What rendering remembers between frames: the scroll position of each table.
#[derive(Debug, Default)]
pub struct ScreenState {
    /// The subscriptions table and the radar (both list subscriptions).
    pub subscriptions: TableState,
    /// The filters view.
    pub filters: TableState,
    /// The MQTT clients view.
    pub connections: TableState,
}

/// Below this size the panels no longer make sense; a one-line summary is drawn instead.
pub const MIN_WIDTH: u16 = 40;
/// See [`MIN_WIDTH`].
pub const MIN_HEIGHT: u16 = 12;

impl StatefulWidget for &App {
    type State = ScreenState;

    fn render(self, area: Rect, buf: &mut Buffer, state: &mut ScreenState) {
        if area.is_empty() {
            return;
        }
        if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
            too_small(self, area, buf);
            return;
        }
        let avail = area.height - 3; // header (2) and footer (1)
        let chart_h = (avail * 30 / 100).clamp(5, 14);
        let bottom_h = (avail * 33 / 100).clamp(6, 14);
        let [
            header_area,
            chart_area,
            table_area,
            bottom_area,
            footer_area,
        ] = Layout::vertical([
            Constraint::Length(2),
            Constraint::Length(chart_h),
            Constraint::Min(4),
            Constraint::Length(bottom_h),
            Constraint::Length(1),
        ])
        .areas(area);
        let [detail_area, log_area] =
            Layout::horizontal([Constraint::Percentage(58), Constraint::Percentage(42)])
                .areas(bottom_area);

        header::render(self, header_area, buf);
        chart::render(self, chart_area, buf);
        match self.table().view {
            View::Subscriptions | View::Radar => {
                table::SubscriptionsTable(self).render(table_area, buf, &mut state.subscriptions)
            }
            View::Connections => {
                connections::ConnectionsTable(self).render(table_area, buf, &mut state.connections)
            }
            View::Filters => {
                filters::FiltersTable(self).render(table_area, buf, &mut state.filters)
            }
        }
        detail::render(self, detail_area, buf);
        if self.shows_dead_letters() {
            dead_letters::render(self, log_area, buf);
        } else {
            log::render(self, log_area, buf);
        }
        footer::render(self, footer_area, buf);

        match self.mode() {
            Mode::PublishForm => popup::form(self, self.publish_form(), area, buf),
            Mode::SubscribeForm => popup::form(self, self.subscribe_form(), area, buf),
            Mode::Explain => explain::render(self, area, buf),
            Mode::Help => popup::help(self, area, buf),
            Mode::ConfirmUnsubscribe { id, name } => {
                popup::confirm_unsubscribe(self, *id, name, area, buf)
            }
            Mode::Normal | Mode::Filter => {}
        }
    }
}

/// What fits on a tiny terminal: the key totals and how to get the full view.
fn too_small(app: &App, area: Rect, buf: &mut Buffer) {
    let t = &app.snapshot().totals;
    let text = vec![
        Line::from(format!(
            "switchyard: {} subs, {} published, {} dropped",
            t.subscriptions, t.published, t.dropped
        )),
        Line::from(format!(
            "enlarge to {MIN_WIDTH}x{MIN_HEIGHT} for the dashboard; q quits"
        )),
    ];
    Paragraph::new(text)
        .wrap(Wrap { trim: true })
        .render(area, buf);
}
