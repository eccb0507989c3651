//! The JSON the endpoint speaks, shared by the server and the [`crate::Client`], so the two cannot
//! drift apart.
//!
//! `GET /v1/stats` answers an [`EndpointStats`]: the `switchyard.stats/v1` snapshot (every field of
//! [`StatsSnapshot`] at the top level) plus v1 additions: `selection` (what the query kept),
//! `endpoint` (the endpoint's own request counts) and the service's own sections, each under its key.
//! A client that knows only v1 reads it unchanged.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use switchyard::{DroppedByReason, StatsSnapshot, SubscriptionId};

/// The body of every error response: `{"error": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What was wrong, naming the input.
    pub error: String,
}

/// `GET /v1/stats`: the snapshot and what the endpoint adds to it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EndpointStats {
    /// The `switchyard.stats/v1` snapshot; `subscriptions` holds only what the query selected, in its
    /// order, and `totals` cover every subscription. `rates` are averages since the broker started:
    /// compute rates over an interval from two snapshots' counters and `uptime_s`.
    #[serde(flatten)]
    pub snapshot: StatsSnapshot,
    /// What the query kept (v1 addition).
    #[serde(default)]
    pub selection: Selection,
    /// The endpoint's own counters (v1 addition).
    #[serde(default)]
    pub endpoint: EndpointCounts,
    /// What the service added beside the broker ([`crate::ServeOptions::section`]), each under its
    /// key at the top level (v1 additions): `switchyard serve` adds `mqtt` and `bridges`. A client
    /// reading an endpoint with no sections gets an empty map.
    #[serde(flatten)]
    pub sections: BTreeMap<String, serde_json::Value>,
}

/// How `subscriptions` was chosen, and the broker-wide drops by reason.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Selection {
    /// The sort key: `id`, `depth`, `fill`, `dropped`, `delivered` or `rate`.
    pub sort: String,
    /// The filter text, if any (a case-insensitive substring of a name or filter).
    pub filter: Option<String>,
    /// The limit, if any.
    pub limit: Option<usize>,
    /// Live subscriptions that passed the filter, before the limit.
    pub matching: u64,
    /// Broker-wide drops by reason (the split of `totals.dropped`).
    pub dropped_by_reason: DroppedByReason,
}

/// Requests the endpoint answered, and those it refused, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointCounts {
    /// Requests answered (any status).
    pub requests: u64,
    /// Whether commands are on (the endpoint was started with a token).
    pub commands: bool,
    /// 401: a command without the right bearer token.
    pub unauthorized: u64,
    /// 403: a command on a read-only endpoint.
    pub read_only: u64,
    /// 400, 404, 405, 408, 413 and 429: bad requests of any other kind.
    pub bad_requests: u64,
    /// 503: connections refused because `max_connections` were open.
    pub too_many_connections: u64,
    /// 504: commands that did not finish within `command_timeout` (a publish waiting on a full
    /// `block` queue).
    #[serde(default)]
    pub timed_out: u64,
    /// Connections closed before they sent a request: past `first_request_timeout`, or the oldest of
    /// more than `max_pending_connections`.
    #[serde(default)]
    pub idle_closed: u64,
    /// Connections the operating system could not hand over (out of file descriptors and the like);
    /// the endpoint then closes its oldest idle connection, waits a little and goes on accepting.
    #[serde(default)]
    pub accept_errors: u64,
}

/// `POST /v1/publish`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishRequest {
    /// The topic (validated by the broker).
    pub topic: String,
    /// The payload, as text.
    #[serde(default)]
    pub payload: String,
    /// `low`, `normal` (the default), `high` or `critical`.
    #[serde(default)]
    pub priority: Option<String>,
    /// Keep it as the topic's retained message.
    #[serde(default)]
    pub retain: bool,
    /// How many times to publish it (1 to [`MAX_PUBLISH_COUNT`]; default 1).
    #[serde(default)]
    pub count: Option<u64>,
}

/// The most messages one `POST /v1/publish` may publish.
pub const MAX_PUBLISH_COUNT: u64 = 100_000;

/// What a `POST /v1/publish` did, summed over its messages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishResponse {
    /// Messages published.
    pub published: u64,
    /// Subscription deliveries matched.
    pub matched: u64,
    /// Of those, queued.
    pub queued: u64,
    /// Messages dropped because of these publishes.
    pub dropped: u64,
    /// Publishes that matched no subscription.
    pub unrouted: u64,
}

/// `POST /v1/taps`: subscribe a tap, a subscription the endpoint owns and drains into a short ring of
/// recent messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TapRequest {
    /// The filter (validated by the broker).
    pub filter: String,
    /// Queue capacity (1 to the endpoint's tap limit; default 256).
    #[serde(default)]
    pub capacity: Option<usize>,
    /// `drop-newest`, `drop-oldest` (the default: a tap keeps the newest), `block` or `block:<timeout>`.
    #[serde(default)]
    pub policy: Option<String>,
    /// The subscription's name (default `s<id>`).
    #[serde(default)]
    pub name: Option<String>,
    /// Receive the retained messages matching the filter first.
    #[serde(default)]
    pub receive_retained: bool,
}

/// One tap and its recent messages.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TapInfo {
    /// The tap's subscription id.
    pub id: SubscriptionId,
    /// The subscription's name.
    pub name: String,
    /// Its filter.
    pub filter: String,
    /// Whether it is paused (nothing is taken from its queue, which fills and then drops).
    pub paused: bool,
    /// Messages the tap has received.
    pub received: u64,
    /// The most recent messages, oldest first (only in `GET /v1/taps/{id}`).
    #[serde(default)]
    pub recent: Vec<TapMessage>,
}

/// A message a tap received.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TapMessage {
    /// Its position among the tap's messages (1 for the first), so a poller can tell new from seen.
    pub seq: u64,
    /// The topic it was published on.
    pub topic: String,
    /// Its priority.
    pub priority: String,
    /// The payload as text (invalid UTF-8 replaced), cut at [`TAP_PAYLOAD_BYTES`].
    pub payload: String,
    /// Messages the tap was told it missed just before this one.
    pub missed: u64,
}

/// How much of each payload a tap keeps.
pub const TAP_PAYLOAD_BYTES: usize = 256;

/// `PUT /v1/subscriptions/{id}/policy`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyRequest {
    /// `drop-newest`, `drop-oldest`, `block` or `block:<timeout>`.
    pub policy: String,
}
