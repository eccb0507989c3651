//! The stats sections of the features beside the subscriptions: dead letters, retained messages and
//! request/reply (v1 additions to the stats schema). The features fill them in; the snapshot carries
//! them.

use serde::{Deserialize, Serialize};

/// The dead-letter queue's counters (the `dead_letters` object of the stats schema, a v1 addition).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetterStats {
    /// Capacity in dead letters.
    pub capacity: u64,
    /// Dropped messages offered to the queue.
    pub offered: u64,
    /// Dead letters handed to a reader.
    pub delivered: u64,
    /// Dead letters evicted because the queue was full.
    pub overflow: u64,
    /// Dead letters queued now.
    pub depth: u64,
}

impl DeadLetterStats {
    /// Whether `offered = delivered + overflow + depth` holds in this snapshot.
    pub fn balances(&self) -> bool {
        self.offered == self.delivered + self.overflow + self.depth
    }
}

/// The retained store's counters (the `retained` object of the stats schema, a v1 addition).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetainedStats {
    /// Topics with a retained message now.
    pub messages: u64,
    /// Payload bytes retained now.
    pub bytes: u64,
    /// The bound on `messages`.
    pub max_messages: u64,
    /// The bound on `bytes`.
    pub max_bytes: u64,
    /// Retained messages stored or replaced so far.
    pub stored: u64,
    /// Retained messages cleared by an empty retained publish.
    pub cleared: u64,
    /// Retained publishes refused because the store was full.
    pub rejected: u64,
    /// Retained messages replayed into new subscriptions (each also counted as `matched` there).
    pub replayed: u64,
}

/// Request/reply counters (the `requests` object of the stats schema, a v1 addition).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestStats {
    /// Requests published (that matched at least one subscription that queued them).
    pub sent: u64,
    /// Requests that got their reply in time.
    pub replied: u64,
    /// Requests whose requester gave up (timeout or dropped future) before a reply.
    pub timed_out: u64,
    /// Replies that came after the requester gave up: counted, not delivered.
    pub late_replies: u64,
    /// Requests whose every copy was dropped unanswered; the requester was told at once.
    #[serde(default)]
    pub abandoned: u64,
    /// Replies after the first one to the same request: counted, not delivered.
    pub surplus_replies: u64,
}

/// An acknowledged subscription's settings and counters (its `ack` object in the stats schema, a v1
/// addition; `null` for plain subscriptions).
///
/// `in_flight` is also a term of the subscription's books: `matched = delivered + dropped + depth +
/// in_flight`, where `delivered` counts acked messages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AckStats {
    /// The window: at most this many messages in flight.
    pub max_in_flight: u64,
    /// How long a receiver has to settle a delivery, in milliseconds.
    pub ack_wait_ms: u64,
    /// Deliveries allowed before the dead letters; `null`: no limit.
    pub max_deliveries: Option<u32>,
    /// Messages handed out and not yet settled, or waiting to be handed out again, now.
    pub in_flight: u64,
    /// Of those, waiting on the redelivery queue now.
    pub waiting: u64,
    /// Acknowledged (the subscription's `delivered`).
    pub acked: u64,
    /// Handed back by a nack.
    pub nacked: u64,
    /// Attempts whose ack deadline passed.
    pub expired: u64,
    /// Attempts handed back because their receiver went away (dropped, or its thread panicked).
    pub handed_back: u64,
    /// Deliveries after the first (a message's second, third... delivery).
    pub redelivered: u64,
    /// Refused for good by `term` (dropped, reason `rejected`).
    pub terminated: u64,
    /// Out of deliveries (dropped, reason `max_deliveries`).
    pub dead_lettered: u64,
    /// Receives that found messages queued but the window full.
    pub window_full: u64,
    /// Receivers waiting on a full window now.
    pub stalled_receivers: u64,
    /// Acks, nacks, terms and in-progress calls refused, by why.
    pub refused: AckRefusals,
}

/// The acknowledged path's counters summed over every acknowledged subscription, live and removed
/// ([`Totals::ack`](crate::Totals::ack), the `totals.ack` object of the stats schema, a v1 addition).
/// Monotonic, like the other totals: what a removed subscription counted stays in them, so a rate
/// of redeliveries computed from two snapshots never goes negative across churn.
///
/// ```
/// use switchyard::{AckOptions, Broker};
///
/// let broker = Broker::new();
/// let jobs = broker.subscribe_acked("jobs", AckOptions::new())?;
/// broker.publish("jobs", "a")?;
/// jobs.try_recv()?.nack()?;
/// jobs.try_recv()?.ack()?;
/// jobs.unsubscribe();
///
/// let t = broker.stats().totals;
/// assert_eq!((t.ack.acked, t.ack.nacked, t.ack.redelivered), (1, 1, 1)); // kept after the unsubscribe
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AckTotals {
    /// Messages acknowledged (on acknowledged subscriptions; also counted in `totals.delivered`).
    pub acked: u64,
    /// Attempts handed back by a nack.
    pub nacked: u64,
    /// Attempts whose ack deadline passed.
    pub expired: u64,
    /// Attempts handed back because their receiver went away.
    pub handed_back: u64,
    /// Deliveries after a message's first.
    pub redelivered: u64,
    /// Messages refused for good by `term` (dropped, reason `rejected`).
    pub terminated: u64,
    /// Messages out of deliveries (dropped, reason `max_deliveries`).
    pub dead_lettered: u64,
    /// Receives that found messages queued but the window full.
    pub window_full: u64,
    /// Acks, nacks, terms and in-progress calls refused, by why.
    pub refused: AckRefusals,
}

impl AckTotals {
    /// Adds one acknowledged subscription's counters.
    pub fn add(&mut self, a: &AckStats) {
        self.acked += a.acked;
        self.nacked += a.nacked;
        self.expired += a.expired;
        self.handed_back += a.handed_back;
        self.redelivered += a.redelivered;
        self.terminated += a.terminated;
        self.dead_lettered += a.dead_lettered;
        self.window_full += a.window_full;
        self.refused.add(&a.refused);
    }
}

/// Refused acks by why (see `AckError`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AckRefusals {
    /// The attempt had already ended (acked twice, or after a nack, expiry or hand-back).
    pub ended: u64,
    /// A later attempt replaced this one.
    pub stale: u64,
    /// The token belonged to another subscription.
    pub wrong_subscription: u64,
    /// The subscription had ended.
    pub closed: u64,
}

impl AckRefusals {
    /// All refusals.
    pub fn total(&self) -> u64 {
        self.ended + self.stale + self.wrong_subscription + self.closed
    }

    /// Adds `other`'s counts, reason by reason.
    pub fn add(&mut self, other: &AckRefusals) {
        self.ended += other.ended;
        self.stale += other.stale;
        self.wrong_subscription += other.wrong_subscription;
        self.closed += other.closed;
    }
}
