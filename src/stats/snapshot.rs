//! Stats snapshots in the `switchyard.stats/v1` schema.

use serde::{Deserialize, Serialize};

use super::features::{AckStats, AckTotals, DeadLetterStats, RequestStats, RetainedStats};
use super::replay::{ReplayLogStats, ReplayStats};
use crate::id::SubscriptionId;
use crate::message::priority::ByPriority;
use crate::message::reason::DroppedByReason;

/// The schema identifier written in every snapshot.
pub const SCHEMA: &str = "switchyard.stats/v1";

/// Broker-wide totals. Monotonic: they keep what removed subscriptions counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    /// Accepted publishes.
    pub published: u64,
    /// Publishes that matched no subscription.
    pub unrouted: u64,
    /// Sum over subscriptions (live and removed) of `matched`.
    pub matched: u64,
    /// Sum of `delivered`.
    pub delivered: u64,
    /// Sum of `dropped`.
    pub dropped: u64,
    /// Messages queued now, over all subscriptions.
    pub depth: u64,
    /// Live subscriptions.
    pub subscriptions: u64,
    /// Messages in flight now on acknowledged subscriptions: handed out and not yet settled (v1
    /// addition).
    #[serde(default)]
    pub in_flight: u64,
    /// The acknowledged path's counters over every acknowledged subscription, live and removed:
    /// acked, nacked, expired, handed back, redelivered, terminated, dead-lettered, window full,
    /// refused (v1 addition; zeros when no subscription was ever acknowledged).
    #[serde(default)]
    pub ack: AckTotals,
}

impl Totals {
    /// Adds one subscription's counters: `matched`, `delivered`, `dropped`, `depth`, `in_flight`, and
    /// for an acknowledged subscription its `ack` counters.
    ///
    /// ```
    /// use switchyard::{Broker, Totals};
    ///
    /// let broker = Broker::new();
    /// let sub = broker.subscribe("a/#")?;
    /// broker.publish("a/b", "x")?;
    /// let mut totals = Totals::default();
    /// totals.add(&sub.stats());
    /// assert_eq!((totals.matched, totals.depth), (1, 1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn add(&mut self, s: &SubscriptionStats) {
        self.matched += s.matched;
        self.delivered += s.delivered;
        self.dropped += s.dropped;
        self.depth += s.depth;
        self.in_flight += s.in_flight;
        if let Some(ack) = &s.ack {
            self.ack.add(ack);
        }
    }

    /// Whether `matched = delivered + dropped + depth + in_flight` holds in these totals.
    pub fn balances(&self) -> bool {
        self.matched == self.delivered + self.dropped + self.depth + self.in_flight
    }
}

/// Rates over the interval since the previous snapshot (or since the broker started).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Rates {
    /// Publishes per second.
    pub published_per_s: f64,
    /// Deliveries per second.
    pub delivered_per_s: f64,
    /// Drops per second.
    pub dropped_per_s: f64,
}

/// One subscription's counters. `matched = delivered + dropped + depth + in_flight` at quiescence.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionStats {
    /// The subscription's id.
    pub id: SubscriptionId,
    /// Its name.
    pub name: String,
    /// Its filter.
    pub filter: String,
    /// Its overflow policy: `drop-newest`, `drop-oldest` or `block`.
    pub policy: String,
    /// Queue capacity in messages, per priority lane (each lane that is used has this capacity).
    pub capacity: u64,
    /// Published messages whose topic matched the filter.
    pub matched: u64,
    /// Messages handed to a receiver; on an acknowledged subscription, messages acknowledged.
    pub delivered: u64,
    /// Matched messages that will never be delivered (sum of `dropped_by_reason`).
    pub dropped: u64,
    /// Drops by reason.
    pub dropped_by_reason: DroppedByReason,
    /// Drops by the dropped message's priority (v1 addition; sums to `dropped`).
    #[serde(default)]
    pub dropped_by_priority: ByPriority,
    /// Messages queued now, over every priority lane.
    pub depth: u64,
    /// Messages queued now, by priority lane (v1 addition; sums to `depth`).
    #[serde(default)]
    pub depth_by_priority: ByPriority,
    /// The largest depth seen (sampled; never below any depth a snapshot reported).
    pub high_water: u64,
    /// Receiver handles alive.
    pub receivers: u64,
    /// For joinable subscriptions, messages queued or delivered and not yet acknowledged with `done`;
    /// `null` otherwise (v1 addition).
    #[serde(default)]
    pub unfinished: Option<u64>,
    /// Whether the subscription is durable (v1 addition).
    #[serde(default)]
    pub durable: bool,
    /// Messages handed out and not yet acknowledged, on an acknowledged subscription; 0 on a plain one
    /// (v1 addition).
    #[serde(default)]
    pub in_flight: u64,
    /// Payload bytes queued now, for a byte-bounded subscription; `null` otherwise (v1 addition).
    #[serde(default)]
    pub queued_bytes: Option<u64>,
    /// The subscription's own byte bound, if it has one (v1 addition).
    #[serde(default)]
    pub max_bytes: Option<u64>,
    /// An acknowledged subscription's settings and counters; `null` for a plain one (v1 addition).
    #[serde(default)]
    pub ack: Option<AckStats>,
    /// Its replay from the broker's log, if it started with one; `null` otherwise (v1 addition).
    /// Replayed messages count in `matched` and `delivered`.
    #[serde(default)]
    pub replay: Option<ReplayStats>,
}

impl SubscriptionStats {
    /// Whether `matched = delivered + dropped + depth + in_flight` holds in this snapshot.
    pub fn balances(&self) -> bool {
        self.matched == self.delivered + self.dropped + self.depth + self.in_flight
            && self.dropped == self.dropped_by_reason.total()
    }
}

/// Publish-to-receive latency percentiles in microseconds, where they were measured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    /// Samples measured.
    pub count: u64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Largest sample.
    pub max: f64,
}

/// A point-in-time view of a broker.
///
/// A [`StatsSnapshot`] serialises (serde) to the JSON documented in `docs/stats-schema.md`. Fields may be added within
/// v1 but never renamed or removed; a breaking change would be `switchyard.stats/v2`.
///
/// The snapshot is generic over its `load` section so the core stays free of the load generator's
/// types: the broker produces `StatsSnapshot<()>` (where `load` is `null`), and the load generator
/// attaches its configuration and result with [`StatsSnapshot::with_load`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StatsSnapshot<L = ()> {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// When it was taken, RFC 3339 UTC with milliseconds.
    pub taken_at: String,
    /// Seconds since the broker was created.
    pub uptime_s: f64,
    /// Broker-wide totals.
    pub totals: Totals,
    /// Rates since the previous snapshot of the same broker.
    pub rates: Rates,
    /// Live subscriptions, by id.
    pub subscriptions: Vec<SubscriptionStats>,
    /// Publish-to-receive latency, where measured (the load generator); else `null`.
    pub latency_us: Option<LatencySummary>,
    /// The load generator's configuration and result, when it produced the snapshot; else `null`.
    pub load: Option<L>,
    /// The dead-letter queue's counters, when the broker keeps one; else `null` (v1 addition).
    #[serde(default)]
    pub dead_letters: Option<DeadLetterStats>,
    /// The retained-message store's counters (v1 addition).
    #[serde(default)]
    pub retained: RetainedStats,
    /// Request/reply counters (v1 addition).
    #[serde(default)]
    pub requests: RequestStats,
    /// The replay log's bounds and counters, when the broker keeps one; else `null` (v1 addition).
    #[serde(default)]
    pub replay_log: Option<ReplayLogStats>,
}

impl<L> StatsSnapshot<L> {
    /// The same snapshot with a `load` section.
    pub fn with_load<M>(self, load: M) -> StatsSnapshot<M> {
        StatsSnapshot {
            schema: self.schema,
            taken_at: self.taken_at,
            uptime_s: self.uptime_s,
            totals: self.totals,
            rates: self.rates,
            subscriptions: self.subscriptions,
            latency_us: self.latency_us,
            load: Some(load),
            dead_letters: self.dead_letters,
            retained: self.retained,
            requests: self.requests,
            replay_log: self.replay_log,
        }
    }

    /// Whether every subscription and the totals satisfy `matched = delivered + dropped + depth +
    /// in_flight`. Exact when taken at quiescence.
    pub fn balances(&self) -> bool {
        let t = &self.totals;
        self.subscriptions.iter().all(SubscriptionStats::balances)
            && t.balances()
            && self
                .dead_letters
                .as_ref()
                .is_none_or(DeadLetterStats::balances)
    }
}

/// The counters of one subscription that cost nothing to read: no strings, no allocation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SubscriptionCounts {
    /// The subscription's id.
    pub id: SubscriptionId,
    /// Published messages whose topic matched its filter.
    pub matched: u64,
    /// Messages handed to a receiver.
    pub delivered: u64,
    /// Messages dropped, every reason.
    pub dropped: u64,
    /// Messages queued now, over every lane.
    pub depth: u64,
    /// Messages in flight now (acknowledged subscriptions; 0 otherwise).
    pub in_flight: u64,
    /// Capacity of one lane.
    pub capacity: u64,
}

impl SubscriptionCounts {
    /// `depth / capacity`: 1.0 is a full normal lane.
    pub fn fill(&self) -> f64 {
        self.depth as f64 / self.capacity.max(1) as f64
    }
}
