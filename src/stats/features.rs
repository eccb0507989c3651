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
