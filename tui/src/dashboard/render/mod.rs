//! Drawing the dashboard: `impl Widget for &App`, one module per panel.
//!
//! Rendering reads only the [`App`] (no clock, no broker), so the same state always draws the same
//! screen; that is what the snapshot tests rely on.

mod chart;
mod dead_letters;
mod detail;
mod footer;
mod header;
mod log;
mod popup;
mod table;

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Paragraph, Widget, Wrap};

use super::app::{App, Mode};

/// Below this size the panels no longer make sense; a one-line summary is drawn instead.
pub const MIN_WIDTH: u16 = 40;
/// See [`MIN_WIDTH`].
pub const MIN_HEIGHT: u16 = 12;

impl Widget for &App {
    fn render(self, area: Rect, buf: &mut Buffer) {
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
        table::render(self, table_area, buf);
        detail::render(self, detail_area, buf);
        if self.show_dead_letters {
            dead_letters::render(self, log_area, buf);
        } else {
            log::render(self, log_area, buf);
        }
        footer::render(self, footer_area, buf);

        match &self.mode {
            Mode::PublishForm => popup::form(self, &self.publish_form, area, buf),
            Mode::SubscribeForm => popup::form(self, &self.subscribe_form, area, buf),
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
    let t = &app.snapshot.totals;
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
