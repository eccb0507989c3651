//! The listener's counters and the [`MqttStats`] snapshot read from them.
//!
//! Every connection ends with exactly one [`CloseReason`], counted once, so `accepted = open + closed`
//! holds at quiescence ([`MqttStats::balances`]). A client's message drops are not counted here: its
//! subscriptions are broker subscriptions, and their own counters (by reason) are the one source of
//! truth; [`ClientStats`] sums them per client.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use switchyard::DroppedByReason;

/// Why a connection ended. Each closed connection is counted under exactly one reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseReason {
    /// The client sent DISCONNECT (no will is published).
    Disconnect,
    /// The client closed the TCP connection without DISCONNECT.
    PeerClosed,
    /// Nothing arrived for 1.5 times the keep-alive interval.
    KeepAliveTimeout,
    /// The bytes were not a valid MQTT 3.1.1 packet.
    Malformed,
    /// A packet bigger than [`crate::MqttConfig::max_packet_size`].
    TooLarge,
    /// A valid packet that is not allowed here: a second CONNECT, a first packet that is not CONNECT,
    /// a server-to-client packet, a topic or will the broker refuses.
    ProtocolError,
    /// CONNECT refused with a non-zero return code (protocol level, client id, server full).
    Refused,
    /// No CONNECT within [`crate::MqttConfig::connect_timeout`].
    ConnectTimeout,
    /// Closed before its CONNECT arrived to make room: the oldest of more than
    /// [`crate::MqttConfig::max_pending_connects`] connections that had not sent one, or the oldest of
    /// them when accepting ran out of file descriptors.
    PendingLimit,
    /// A new connection with the same client id took the session over.
    TakenOver,
    /// Reading or writing the socket failed.
    Io,
    /// The server shut down.
    Shutdown,
    /// The transport could not be opened: a TLS handshake or a WebSocket upgrade failed (counted per
    /// listener in [`crate::ListenerStats`]).
    HandshakeFailed,
}

impl CloseReason {
    /// Every reason, in the order of [`ClosedByReason`]'s fields.
    pub const ALL: [CloseReason; 13] = [
        CloseReason::Disconnect,
        CloseReason::PeerClosed,
        CloseReason::KeepAliveTimeout,
        CloseReason::Malformed,
        CloseReason::TooLarge,
        CloseReason::ProtocolError,
        CloseReason::Refused,
        CloseReason::ConnectTimeout,
        CloseReason::PendingLimit,
        CloseReason::TakenOver,
        CloseReason::Io,
        CloseReason::Shutdown,
        CloseReason::HandshakeFailed,
    ];

    /// Whether the client's will is published: every end except DISCONNECT (and server shutdown,
    /// and connections that never completed CONNECT, which have no will yet).
    pub fn publishes_will(self) -> bool {
        !matches!(self, CloseReason::Disconnect | CloseReason::Shutdown)
    }
}

/// Closed connections by reason (the `closed_by_reason` object of [`MqttStats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClosedByReason {
    /// See [`CloseReason::Disconnect`].
    pub disconnect: u64,
    /// See [`CloseReason::PeerClosed`].
    pub peer_closed: u64,
    /// See [`CloseReason::KeepAliveTimeout`].
    pub keep_alive_timeout: u64,
    /// See [`CloseReason::Malformed`].
    pub malformed: u64,
    /// See [`CloseReason::TooLarge`].
    pub too_large: u64,
    /// See [`CloseReason::ProtocolError`].
    pub protocol_error: u64,
    /// See [`CloseReason::Refused`].
    pub refused: u64,
    /// See [`CloseReason::ConnectTimeout`].
    pub connect_timeout: u64,
    /// See [`CloseReason::PendingLimit`].
    #[serde(default)]
    pub pending_limit: u64,
    /// See [`CloseReason::TakenOver`].
    pub taken_over: u64,
    /// See [`CloseReason::Io`].
    pub io: u64,
    /// See [`CloseReason::Shutdown`].
    pub shutdown: u64,
    /// See [`CloseReason::HandshakeFailed`].
    #[serde(default)]
    pub handshake_failed: u64,
}

impl ClosedByReason {
    /// All reasons together.
    pub fn total(&self) -> u64 {
        self.as_array().iter().sum()
    }

    fn as_array(&self) -> [u64; 13] {
        [
            self.disconnect,
            self.peer_closed,
            self.keep_alive_timeout,
            self.malformed,
            self.too_large,
            self.protocol_error,
            self.refused,
            self.connect_timeout,
            self.pending_limit,
            self.taken_over,
            self.io,
            self.shutdown,
            self.handshake_failed,
        ]
    }

    fn from_array(a: [u64; 13]) -> Self {
        Self {
            disconnect: a[0],
            peer_closed: a[1],
            keep_alive_timeout: a[2],
            malformed: a[3],
            too_large: a[4],
            protocol_error: a[5],
            refused: a[6],
            connect_timeout: a[7],
            pending_limit: a[8],
            taken_over: a[9],
            io: a[10],
            shutdown: a[11],
            handshake_failed: a[12],
        }
    }
}

/// The server's own counters (connections and packets), written by connection tasks.
#[derive(Debug, Default)]
pub(crate) struct ServerCounters {
    pub accepted: AtomicU64,
    pub open: AtomicU64,
    /// Connections past CONNECT, counted against [`crate::MqttConfig::max_connections`].
    pub connected: AtomicU64,
    /// Accepts that failed (out of file descriptors and the like).
    pub accept_errors: AtomicU64,
    closed: [AtomicU64; 13],
    pub packets_in: AtomicU64,
    pub packets_out: AtomicU64,
    pub publishes_in: AtomicU64,
    /// Client publishes the broker refused as a retained message (the retained store was full); the
    /// message was not published, and a QoS 1/2 sender still gets its acknowledgement.
    pub retained_refused: AtomicU64,
    /// Client publishes and wills to a topic beginning with `$`: not published, not retained.
    pub dollar_topic_refused: AtomicU64,
    /// Wills published.
    pub wills_published: AtomicU64,
    /// PUBACKs, PUBRECs and PUBCOMPs for a packet id that waits for no such acknowledgement.
    pub acks_unknown: AtomicU64,
    /// CONNECTs whose user name and password the password file accepted.
    pub auth_accepted: AtomicU64,
    /// CONNECTs without a user name while a password file is in force (CONNACK 5).
    pub auth_no_user_name: AtomicU64,
    /// CONNECTs with an unknown user or a wrong password (CONNACK 4).
    pub auth_bad_login: AtomicU64,
    /// Refusing CONNACKs sent after a delay, and the delays' sum in milliseconds.
    pub auth_delayed: AtomicU64,
    pub auth_delay_ms: AtomicU64,
    /// Addresses forgotten by the full delay map.
    pub auth_delay_evicted: AtomicU64,
    /// Logins by client certificate (a listener that takes user names from certificates).
    pub auth_certificate: AtomicU64,
    /// Client certificates without a common name on such a listener (CONNACK 5).
    pub auth_no_certificate_name: AtomicU64,
}

impl ServerCounters {
    pub fn count_close(&self, reason: CloseReason) {
        let index = CloseReason::ALL
            .iter()
            .position(|r| *r == reason)
            .unwrap_or_default();
        self.closed[index].fetch_add(1, Ordering::Relaxed);
    }

    pub fn closed(&self) -> ClosedByReason {
        ClosedByReason::from_array(std::array::from_fn(|i| {
            self.closed[i].load(Ordering::Relaxed)
        }))
    }
}

/// One subscription of a client, as [`ClientStats`] shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientSubscriptionStats {
    /// The broker subscription's id (also in the broker's own stats).
    pub id: u64,
    /// The MQTT topic filter.
    pub filter: String,
    /// The QoS granted in SUBACK.
    pub qos: u8,
    /// Messages queued for the client now.
    pub depth: u64,
    /// QoS 1/2 messages sent to the client (or, for a shared subscription, to any member of its
    /// group) and not yet acknowledged: the broker subscription's `in_flight` (a v1 addition).
    #[serde(default)]
    pub in_flight: u64,
    /// Messages the broker handed to the connection, and QoS 1/2 messages the client acknowledged
    /// (for a shared subscription, the whole group's).
    pub delivered: u64,
    /// Matched messages that will never reach the client, by reason.
    pub dropped_by_reason: DroppedByReason,
}

/// One client session (connected, or a persistent session whose client is away).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientStats {
    /// The client id (assigned ids start with `auto-`).
    pub client_id: String,
    /// The peer address of the live connection; `null` while a persistent session waits for its client.
    pub address: Option<String>,
    /// How the live connection reached the server (`tcp`, `tls`, `ws`, `wss`); `null` while a
    /// persistent session waits for its client.
    #[serde(default)]
    pub transport: Option<crate::TransportKind>,
    /// The user name the live connection logged in as, which its topic permissions are for:
    /// checked against the password file, or a client certificate's common name on a listener that
    /// takes user names from certificates; `null` for an anonymous client (without a password file a
    /// user name is not checked, so it is not shown either).
    #[serde(default)]
    pub user_name: Option<String>,
    /// Whether the session is discarded when the connection ends.
    pub clean_session: bool,
    /// QoS 1/2 messages sent and not yet acknowledged.
    pub inflight: u64,
    /// Payload bytes queued for the client now, all its own subscriptions together (a v1 addition).
    #[serde(default)]
    pub queued_bytes: u64,
    /// The bound on `queued_bytes` ([`crate::MqttConfig::queue_bytes`]); `null` when unbounded, or
    /// before the client's first subscription (a v1 addition). A message over it is dropped as
    /// `byte_limit`.
    #[serde(default)]
    pub max_queued_bytes: Option<u64>,
    /// Sum of the subscriptions' drops.
    pub dropped: u64,
    /// Sum of the subscriptions' drops, by reason.
    pub dropped_by_reason: DroppedByReason,
    /// The client's subscriptions.
    pub subscriptions: Vec<ClientSubscriptionStats>,
}

/// A snapshot of the listener (the `mqtt` object of the stats schema, a v1 addition).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MqttStats {
    /// The listening address.
    pub address: String,
    /// Connections accepted (TCP).
    pub accepted: u64,
    /// Connections open now.
    pub open: u64,
    /// Of those, the ones that have not sent CONNECT yet (bounded by
    /// [`crate::MqttConfig::max_pending_connects`]).
    #[serde(default)]
    pub pending: u64,
    /// Accepts that failed, such as for want of a file descriptor (`EMFILE`); the listener backs off
    /// and keeps accepting.
    #[serde(default)]
    pub accept_errors: u64,
    /// Connections closed, by reason.
    pub closed_by_reason: ClosedByReason,
    /// Packets read from clients.
    pub packets_in: u64,
    /// Packets written to clients.
    pub packets_out: u64,
    /// PUBLISH packets from clients.
    pub publishes_in: u64,
    /// Retained client publishes (and wills) a full retained store refused to keep; they were
    /// delivered live all the same (see [`switchyard::PublishOutcome::retain_refused`]).
    pub retained_refused: u64,
    /// Client publishes (and wills) to a topic beginning with `$`, such as `$SYS/...`: clients may not
    /// publish there, so these were dropped, neither routed nor retained (a QoS 1/2 sender still got
    /// its PUBACK or PUBREC, as MQTT 3.1.1 has no negative acknowledgement).
    #[serde(default)]
    pub dollar_topic_refused: u64,
    /// Wills published.
    pub wills_published: u64,
    /// PUBACKs, PUBRECs and PUBCOMPs for a packet id that waited for no such acknowledgement: a
    /// duplicate, one after the message went to another member of a shared group, or a confused
    /// client. Each is ignored (a v1 addition).
    #[serde(default)]
    pub acks_unknown: u64,
    /// Shared subscription groups (`$share/GROUP/FILTER`) now (a v1 addition).
    #[serde(default)]
    pub shared_groups: u64,
    /// Password checks (a v1 addition; all zero without a password file).
    #[serde(default)]
    pub auth: AuthStats,
    /// Topic permissions (a v1 addition; all zero without an ACL file).
    #[serde(default)]
    pub acl: crate::auth::AclStats,
    /// Reloads of the password and ACL files (a v1 addition).
    #[serde(default)]
    pub reload: crate::auth::ReloadStats,
    /// Each listener: its address, transport and connections, and its failed TLS handshakes and
    /// WebSocket upgrades (a v1 addition). The totals above are over all of them.
    #[serde(default)]
    pub listeners: Vec<crate::ListenerStats>,
    /// Sessions: connected clients and persistent sessions whose client is away, by client id.
    pub clients: Vec<ClientStats>,
}

/// Refused logins by reason: each is the CONNACK return code the client got.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthRefusedByReason {
    /// CONNECT without a user name while a password file is in force: CONNACK 5 (not authorized).
    pub no_user_name: u64,
    /// An unknown user or a wrong password (one counter, so that the stats do not tell which users
    /// exist): CONNACK 4 (bad user name or password).
    pub bad_user_name_or_password: u64,
    /// A client certificate without a common name, on a listener that takes user names from
    /// certificates: CONNACK 5 (not authorized).
    #[serde(default)]
    pub no_certificate_name: u64,
}

/// The listener's password checks (the `auth` object of [`MqttStats`], a v1 addition).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthStats {
    /// Whether a password file is in force (every CONNECT needs a user name and password).
    pub password_file: bool,
    /// Logins accepted (user name and password).
    pub accepted: u64,
    /// Logins by client certificate, on a listener that takes user names from certificates (the
    /// password file is not consulted for them).
    #[serde(default)]
    pub certificate: u64,
    /// Logins refused, by reason. Each is also a close counted as `refused`.
    pub refused_by_reason: AuthRefusedByReason,
    /// Refusing CONNACKs that waited before going out: every refusal does, 100 ms for an address's
    /// first failure, twice as long for each further one within a minute, at most 2 s.
    pub delayed: u64,
    /// Those waits together, in milliseconds.
    pub delay_ms: u64,
    /// Addresses remembered for the delay now (at most 4096).
    pub delay_addresses: u64,
    /// Addresses forgotten to keep that bound.
    pub delay_evicted: u64,
}

impl MqttStats {
    /// Whether every accepted connection is either open or closed for one counted reason. Exact at
    /// quiescence.
    pub fn balances(&self) -> bool {
        self.accepted == self.open + self.closed_by_reason.total()
    }

    /// The session of `client_id`, if there is one.
    pub fn client(&self, client_id: &str) -> Option<&ClientStats> {
        self.clients.iter().find(|c| c.client_id == client_id)
    }
}
