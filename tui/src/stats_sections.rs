//! What the binary's stats endpoint shows beside the broker (`--serve` on `switchyard serve` and the
//! dashboard), while it runs, as `serve --json` shows it at the end: the MQTT listener under `mqtt` in
//! `/v1/stats` and as `switchyard_mqtt_*` series in `/metrics`, and the bridges under `bridges` and as
//! `switchyard_bridge_*` series. An attached dashboard reads them from there.

use std::sync::Arc;

use switchyard::DropReason;
use switchyard_mqtt::{Bridge, BridgeStats, ListenerStats, MqttStats};
use switchyard_observe::{MetricsWriter, Section, StatsSection};

use crate::mqtt_listener::MqttListener;

/// The sections of a process with `listener` and `bridge`: `mqtt` when there is a listener, and
/// `bridges` always (empty without a bridge), as `serve --json` has them.
pub fn sections(listener: Option<&MqttListener>, bridge: Option<&Bridge>) -> Vec<Section> {
    MqttSection::new(listener)
        .map(MqttSection::into_section)
        .into_iter()
        .chain([BridgesSection::new(bridge).into_section()])
        .collect()
}

/// The key of the MQTT listener's section in `/v1/stats`, as in `serve --json`.
pub const MQTT: &str = "mqtt";

/// The most MQTT sessions the `mqtt` section lists (those with the most drops first, then by client
/// id), so that a listener with 100,000 sessions does not make every `/v1/stats` megabytes long; how
/// many were left out is its `clients_omitted`. The counters cover every session.
pub const MQTT_CLIENTS_SHOWN: usize = 1000;

type ReadMqtt = Box<dyn Fn() -> MqttStats + Send + Sync>;

/// The MQTT listener of `switchyard serve --mqtt` or `dashboard --mqtt`, read at each request.
pub struct MqttSection {
    read: ReadMqtt,
}

impl MqttSection {
    /// The section of `listener`, if there is one (none: no section).
    pub fn new(listener: Option<&MqttListener>) -> Option<Self> {
        listener.map(|l| Self {
            read: Box::new(l.stats_reader()),
        })
    }

    /// As an endpoint section.
    pub fn into_section(self) -> Section {
        Section {
            key: MQTT.to_string(),
            source: Arc::new(self),
        }
    }
}

impl StatsSection for MqttSection {
    fn json(&self) -> serde_json::Value {
        let mut stats = (self.read)();
        let sessions = stats.clients.len();
        stats.clients.sort_by(|a, b| {
            b.dropped
                .cmp(&a.dropped)
                .then_with(|| a.client_id.cmp(&b.client_id))
        });
        stats.clients.truncate(MQTT_CLIENTS_SHOWN);
        let mut json = serde_json::to_value(&stats).unwrap_or_default();
        json["clients_omitted"] = (sessions - stats.clients.len()).into();
        json
    }

    fn metrics(&self, out: &mut MetricsWriter<'_, '_>) -> std::fmt::Result {
        write_mqtt_series(out, &(self.read)())
    }
}

/// No labels: a family of one series.
const ONE: [(&str, &str); 0] = [];

/// The `switchyard_mqtt_*` families.
fn write_mqtt_series(out: &mut MetricsWriter<'_, '_>, m: &MqttStats) -> std::fmt::Result {
    let gauges: [(&str, &str, u64); 3] = [
        (
            "switchyard_mqtt_connections_open",
            "MQTT connections open now, those that have not sent CONNECT yet included.",
            m.open,
        ),
        (
            "switchyard_mqtt_connections_pending",
            "MQTT connections open now that have not sent CONNECT yet.",
            m.pending,
        ),
        (
            "switchyard_mqtt_sessions",
            "MQTT sessions: connected clients and persistent sessions whose client is away.",
            m.clients.len() as u64,
        ),
    ];
    for (name, help, value) in gauges {
        out.gauge(name, help, [(ONE, value as f64)])?;
    }
    let counters: [(&str, &str, u64); 8] = [
        (
            "switchyard_mqtt_connections_accepted",
            "MQTT connections accepted (TCP).",
            m.accepted,
        ),
        (
            "switchyard_mqtt_accept_errors",
            "Accepts that failed, such as for want of a file descriptor.",
            m.accept_errors,
        ),
        (
            "switchyard_mqtt_packets_in",
            "MQTT packets read from clients.",
            m.packets_in,
        ),
        (
            "switchyard_mqtt_packets_out",
            "MQTT packets written to clients.",
            m.packets_out,
        ),
        (
            "switchyard_mqtt_publishes_in",
            "PUBLISH packets from clients.",
            m.publishes_in,
        ),
        (
            "switchyard_mqtt_retained_refused",
            "Retained client publishes the full retained store refused to keep (delivered live).",
            m.retained_refused,
        ),
        (
            "switchyard_mqtt_dollar_topic_refused",
            "Client publishes and wills to a topic beginning with $, dropped.",
            m.dollar_topic_refused,
        ),
        (
            "switchyard_mqtt_wills_published",
            "Wills published.",
            m.wills_published,
        ),
    ];
    for (name, help, value) in counters {
        out.counter(name, help, [(ONE, value)])?;
    }
    // The reasons are the fields of `closed_by_reason`, as `/v1/stats` spells them.
    let closed = serde_json::to_value(m.closed_by_reason).unwrap_or_default();
    out.counter(
        "switchyard_mqtt_connections_closed",
        "MQTT connections closed, by reason.",
        closed.as_object().into_iter().flatten().map(|(reason, n)| {
            (
                [("reason", reason.as_str())],
                n.as_u64().unwrap_or_default(),
            )
        }),
    )?;
    let auth = &m.auth;
    out.counter(
        "switchyard_mqtt_logins_accepted",
        "Logins the password file accepted.",
        [(ONE, auth.accepted)],
    )?;
    out.counter(
        "switchyard_mqtt_logins_by_certificate",
        "Logins by client certificate, its common name the user name.",
        [(ONE, auth.certificate)],
    )?;
    out.counter(
        "switchyard_mqtt_logins_refused",
        "Logins refused, by the CONNACK code's reason.",
        [
            ("no_user_name", auth.refused_by_reason.no_user_name),
            (
                "bad_user_name_or_password",
                auth.refused_by_reason.bad_user_name_or_password,
            ),
            (
                "no_certificate_name",
                auth.refused_by_reason.no_certificate_name,
            ),
        ]
        .map(|(reason, n)| ([("reason", reason)], n)),
    )?;
    let acl = &m.acl.refused_by_reason;
    out.counter(
        "switchyard_mqtt_acl_refused",
        "MQTT permission refusals by the ACL, by reason.",
        [
            ("subscribe", acl.subscribe),
            ("publish", acl.publish),
            ("will", acl.will),
            ("retained_read", acl.retained_read),
            ("read", acl.read),
        ]
        .map(|(reason, n)| ([("reason", reason)], n)),
    )?;
    out.counter(
        "switchyard_mqtt_revoked_clients",
        "MQTT connections whose user a reload removed from the password file.",
        [(ONE, m.acl.revoked_clients)],
    )?;
    out.counter(
        "switchyard_mqtt_reloads",
        "Reloads of the MQTT password and ACL files (SIGHUP), by result.",
        [("ok", m.reload.reloads), ("refused", m.reload.refused)]
            .map(|(result, n)| ([("result", result)], n)),
    )?;
    write_listener_series(out, &m.listeners)
}

/// Each listener's connections and failed handshakes, labelled with its transport and address: one
/// label set per listener (at most four), whatever the clients do.
fn write_listener_series(
    out: &mut MetricsWriter<'_, '_>,
    listeners: &[ListenerStats],
) -> std::fmt::Result {
    fn labels(l: &ListenerStats) -> [(&'static str, &str); 2] {
        [
            ("transport", l.transport.as_str()),
            ("address", l.address.as_str()),
        ]
    }
    out.counter(
        "switchyard_mqtt_listener_connections_accepted",
        "MQTT connections accepted, by listener.",
        listeners.iter().map(|l| (labels(l), l.accepted)),
    )?;
    out.gauge(
        "switchyard_mqtt_listener_connections_open",
        "MQTT connections open now, by listener.",
        listeners.iter().map(|l| (labels(l), l.open as f64)),
    )?;
    out.counter(
        "switchyard_mqtt_listener_handshake_failures",
        "TLS handshakes and WebSocket upgrades that failed, by listener (each closed its connection).",
        listeners.iter().flat_map(|l| {
            let [transport, address] = labels(l);
            [
                ("tls", l.tls_handshake_failures),
                ("websocket", l.websocket_handshake_failures),
            ]
            .map(|(handshake, n)| ([transport, address, ("handshake", handshake)], n))
        }),
    )
}

/// The key of the bridges' section in `/v1/stats`, as in `serve --json`.
pub const BRIDGES: &str = "bridges";

type ReadBridge = Box<dyn Fn() -> BridgeStats + Send + Sync>;

/// The bridges of one process, read at each request.
pub struct BridgesSection {
    bridges: Vec<ReadBridge>,
}

impl BridgesSection {
    /// The section of `bridges` (none, or the one `--bridge` started).
    pub fn new<'a>(bridges: impl IntoIterator<Item = &'a Bridge>) -> Self {
        Self {
            bridges: bridges
                .into_iter()
                .map(|b| Box::new(b.stats_reader()) as ReadBridge)
                .collect(),
        }
    }

    /// As an endpoint section.
    pub fn into_section(self) -> Section {
        Section {
            key: BRIDGES.to_string(),
            source: Arc::new(self),
        }
    }

    fn read(&self) -> Vec<BridgeStats> {
        self.bridges.iter().map(|read| read()).collect()
    }
}

impl StatsSection for BridgesSection {
    fn json(&self) -> serde_json::Value {
        serde_json::to_value(self.read()).unwrap_or_default()
    }

    fn metrics(&self, out: &mut MetricsWriter<'_, '_>) -> std::fmt::Result {
        write_bridge_series(out, &self.read())
    }
}

/// A bridge counter's family name, help, and how to read it.
type BridgeCounter = (&'static str, &'static str, fn(&BridgeStats) -> u64);

/// The `switchyard_bridge_*` families, one series per bridge, labelled by `remote` (`HOST:PORT`).
fn write_bridge_series(
    out: &mut MetricsWriter<'_, '_>,
    bridges: &[BridgeStats],
) -> std::fmt::Result {
    let per_bridge = |value: fn(&BridgeStats) -> u64| {
        bridges
            .iter()
            .map(move |b| ([("remote", b.remote.as_str())], value(b)))
    };
    out.gauge(
        "switchyard_bridge_connected",
        "Whether the bridge is connected to its remote broker now (1) or not (0).",
        per_bridge(|b| u64::from(b.connected)).map(|(l, v)| (l, v as f64)),
    )?;

    out.gauge(
        "switchyard_bridge_out_queued_messages",
        "Local messages queued for the remote broker now, over the bridge's out filters.",
        per_bridge(|b| b.out_filters.iter().map(|f| f.depth).sum()).map(|(l, v)| (l, v as f64)),
    )?;
    let counters: [BridgeCounter; 8] = [
        (
            "switchyard_bridge_connects",
            "Connections the remote broker accepted (CONNACK), the first included.",
            |b| b.connects,
        ),
        (
            "switchyard_bridge_connection_errors",
            "Failed connection attempts and lost connections.",
            |b| b.connection_errors,
        ),
        (
            "switchyard_bridge_out_forwarded",
            "Local messages handed to the MQTT client for the remote broker.",
            |b| b.out_forwarded,
        ),
        (
            "switchyard_bridge_out_loop_skipped",
            "Local messages not sent out because they were echoes of messages that came in.",
            |b| b.out_loop_skipped,
        ),
        (
            "switchyard_bridge_in_received",
            "Messages received from the remote broker.",
            |b| b.in_received,
        ),
        (
            "switchyard_bridge_in_published",
            "Messages from the remote broker published into this one.",
            |b| b.in_published,
        ),
        (
            "switchyard_bridge_in_refused",
            "Messages from the remote broker this broker refused.",
            |b| b.in_refused,
        ),
        (
            "switchyard_bridge_in_loop_skipped",
            "Messages from the remote broker not published because they were echoes of messages sent out.",
            |b| b.in_loop_skipped,
        ),
    ];
    for (name, help, value) in counters {
        out.counter(name, help, per_bridge(value))?;
    }
    out.counter(
        "switchyard_bridge_out_dropped",
        "Local messages that will never reach the remote broker, by reason.",
        bridges.iter().flat_map(|b| {
            DropReason::ALL.map(|reason| {
                (
                    [("remote", b.remote.as_str()), ("reason", reason.label())],
                    b.out_dropped_by_reason.get(reason),
                )
            })
        }),
    )
}
