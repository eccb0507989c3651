//! The MQTT clients view (`c`): every session of the `--mqtt` listener (or, attached, of the
//! endpoint's `mqtt` section), connected or a persistent session waiting for its client, with its address, subscriptions, messages in flight and drops by
//! reason, so a slow MQTT client shows up as plainly as a slow in-process subscriber. The title carries
//! the listener's connection books (accepted = open + closed) and each bridge: up or DOWN, messages
//! out and in, and what its outgoing queues dropped while the remote was slow or away. `/` filters by client id; `7` sorts by
//! drops, `4` by in-flight.
//!
//! With a password file or an ACL in force (or once either refused anything), two lines above the
//! table count the logins and the permission refusals by reason, and the reloads.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Row, StatefulWidget, Table, TableState, Widget};

use switchyard::DropReason;
use switchyard_mqtt::{ClientStats, MqttStats};

use super::table_frame::{fit_columns, render_visible, table_block, visible_rows};
use crate::dashboard::app::App;
use crate::dashboard::format::{compact, count, fit};
use crate::dashboard::theme::Theme;
use crate::terminal_text::escape_controls;

/// The MQTT clients table, scrolled by a `TableState` that rendering keeps up to date.
pub struct ConnectionsTable<'a>(pub &'a App);

/// Widths of the columns after the client id: address, subscriptions, in flight, dropped, reasons,
/// and the bytes queued of the client's byte budget (last: the first to go in a narrow terminal).
const WIDTHS: [u16; 6] = [21, 5, 9, 9, 28, 12];
const TITLES: [&str; 6] = [
    "address",
    "subs",
    "in-flight",
    "dropped",
    "dropped by reason",
    "queued B",
];

impl StatefulWidget for ConnectionsTable<'_> {
    type State = TableState;

    fn render(self, area: Rect, buf: &mut Buffer, state: &mut TableState) {
        let app = self.0;
        let th = app.theme();
        let Some(mqtt) = &app.observed().mqtt else {
            render_no_listener(app, area, buf);
            return;
        };
        let inner = table_block(app, title(app, mqtt), area, buf);
        let inner = render_access_lines(th, mqtt, inner, buf);
        if inner.is_empty() {
            return;
        }
        let (numeric, id_width) = fit_columns(&WIDTHS, inner.width);
        let shown = visible_rows(app, state, inner);
        let header = Row::new(
            std::iter::once(Cell::from("client id"))
                .chain(TITLES[..numeric].iter().map(|t| Cell::from(*t))),
        )
        .style(th.dim());
        let view = app.table();
        let rows = view.rows[shown.clone()]
            .iter()
            .filter_map(|&i| mqtt.clients.get(i))
            .map(|c| client_row(th, c, id_width, numeric));
        let widths = std::iter::once(Constraint::Length(id_width))
            .chain(WIDTHS[..numeric].iter().map(|w| Constraint::Length(*w)));
        render_visible(
            app,
            Table::new(rows, widths).header(header),
            &shown,
            "no MQTT client yet (or none matches /)",
            inner,
            buf,
        );
    }
}

/// The view without a listener: how to start one.
fn render_no_listener(app: &App, area: Rect, buf: &mut Buffer) {
    let th = app.theme();
    let inner = table_block(
        app,
        vec![Span::styled(" MQTT clients ", th.accent())],
        area,
        buf,
    );
    let at = Rect {
        height: inner.height.min(1),
        ..inner
    };
    let text = match app.attached_to() {
        Some(addr) => format!(
            "the broker at {} shows no MQTT listener (`switchyard serve --mqtt` does) (c: back)",
            escape_controls(addr)
        ),
        None => "no MQTT listener: start the dashboard with --mqtt 127.0.0.1:1883 (c: back)".into(),
    };
    Line::styled(fit(&text, usize::from(inner.width)), th.dim()).render(at, buf);
}

/// Logins, permission refusals by reason and reloads, on the first two lines of `inner` when a
/// password file or an ACL is in force or either refused anything; returns the rest of `inner`.
fn render_access_lines(th: &Theme, mqtt: &MqttStats, inner: Rect, buf: &mut Buffer) -> Rect {
    let (auth, acl, reload) = (&mqtt.auth, &mqtt.acl, &mqtt.reload);
    let login_refused =
        auth.refused_by_reason.no_user_name + auth.refused_by_reason.bad_user_name_or_password;
    let acl_refused = acl.refused_by_reason.total();
    if !(auth.password_file || acl.acl_file || login_refused > 0 || acl_refused > 0)
        || inner.height < 4
    {
        return inner;
    }
    let style = |n: u64| if n > 0 { th.dropped() } else { th.dim() };
    let a = &auth.refused_by_reason;
    let login = Line::from(vec![
        Span::styled(format!("logins {} ok", count(auth.accepted)), th.dim()),
        Span::styled(
            format!(
                " · refused {}: no user name {}, bad user name/password {}",
                count(login_refused),
                count(a.no_user_name),
                count(a.bad_user_name_or_password)
            ),
            style(login_refused),
        ),
        Span::styled(format!(" · reloads {}", count(reload.reloads)), th.dim()),
        Span::styled(
            format!(" ({} refused)", count(reload.refused)),
            style(reload.refused),
        ),
    ]);
    let r = &acl.refused_by_reason;
    let permissions = Line::from(vec![
        Span::styled(
            if acl.acl_file {
                format!("ACL ({} lines)", count(acl.lines))
            } else {
                "no ACL".to_string()
            },
            th.dim(),
        ),
        Span::styled(
            format!(
                " refused {}: subscribe {}, publish {}, will {}, retained read {}, read {}",
                count(acl_refused),
                count(r.subscribe),
                count(r.publish),
                count(r.will),
                count(r.retained_read),
                count(r.read)
            ),
            style(acl_refused),
        ),
    ]);
    for (row, line) in [login, permissions].into_iter().enumerate() {
        let at = Rect {
            y: inner.y + row as u16,
            height: 1,
            ..inner
        };
        line.render(at, buf);
    }
    Rect {
        y: inner.y + 2,
        height: inner.height - 2,
        ..inner
    }
}

/// The border's title: the listener's connection books, then each bridge.
fn title(app: &App, mqtt: &MqttStats) -> Vec<Span<'static>> {
    let th = app.theme();
    let mut title = vec![
        Span::styled(format!(" MQTT clients on {} ", mqtt.address), th.accent()),
        Span::styled(
            format!(
                "open {} accepted {} closed {} ",
                count(mqtt.open),
                count(mqtt.accepted),
                count(mqtt.closed_by_reason.total())
            ),
            th.dim(),
        ),
    ];
    for bridge in &app.observed().bridges {
        let dropped = bridge.out_dropped_by_reason.total();
        let state = match (&bridge.last_error, bridge.connected) {
            (_, true) => Span::styled("up", th.delivered()),
            (Some(why), false) => {
                Span::styled(format!("DOWN ({})", escape_controls(why)), th.dropped())
            }
            (None, false) => Span::styled("DOWN", th.dropped()),
        };
        title.extend([
            Span::styled(
                format!("bridge {} ", escape_controls(&bridge.remote)),
                th.accent(),
            ),
            state,
            Span::styled(
                format!(" dropped {}", count(dropped)),
                if dropped > 0 { th.dropped() } else { th.dim() },
            ),
            Span::styled(
                format!(
                    " out {} in {} ",
                    count(bridge.out_forwarded),
                    count(bridge.in_published)
                ),
                th.dim(),
            ),
        ]);
    }
    title
}

/// One client's row: the id, then the first `numeric` of the other columns.
fn client_row(th: &Theme, c: &ClientStats, id_width: u16, numeric: usize) -> Row<'static> {
    let d = &c.dropped_by_reason;
    let reasons = DropReason::ALL
        .into_iter()
        .filter(|r| d.get(*r) > 0)
        .map(|r| format!("{} {}", r.label(), count(d.get(r))))
        .collect::<Vec<_>>()
        .join(", ");
    // The client's byte budget: queued now over its bound (`--mqtt-queue-bytes`); red when a
    // message was refused for it.
    let queued = match c.max_queued_bytes {
        Some(max) => format!("{}/{}", compact(c.queued_bytes), compact(max)),
        None => compact(c.queued_bytes),
    };
    let queued_style = if d.byte_limit > 0 {
        th.dropped()
    } else {
        th.text()
    };
    let dropped_style = if c.dropped > 0 {
        th.dropped()
    } else {
        th.text()
    };
    let cells = [
        (fit(&c.client_id, usize::from(id_width)), th.text()),
        (
            c.address
                .clone()
                .unwrap_or_else(|| "away (session kept)".into()),
            if c.address.is_some() {
                th.text()
            } else {
                th.dim()
            },
        ),
        (count(c.subscriptions.len() as u64), th.dim()),
        (count(c.inflight), th.text()),
        (count(c.dropped), dropped_style),
        (reasons, dropped_style),
        (queued, queued_style),
    ];
    Row::new(
        cells
            .into_iter()
            .take(numeric + 1)
            .map(|(text, style)| Cell::from(Span::styled(text, style))),
    )
}
