//! Why a message was dropped, and drops counted by reason.

use serde::{Deserialize, Serialize};

/// Why a message was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DropReason {
    /// The queue was full under [`crate::OverflowPolicy::DropNewest`]; the new message was refused.
    QueueFull,
    /// The queue was full under [`crate::OverflowPolicy::DropOldest`]; this queued message made room.
    Evicted,
    /// The queue stayed full for the whole wait of [`crate::OverflowPolicy::Block`].
    Timeout,
    /// The subscription was removed while the message was queued or on its way.
    Unsubscribed,
}

impl DropReason {
    /// Every reason, in the order of [`DroppedByReason`]'s fields.
    pub const ALL: [DropReason; 4] = [
        DropReason::QueueFull,
        DropReason::Evicted,
        DropReason::Timeout,
        DropReason::Unsubscribed,
    ];

    pub(crate) fn index(self) -> usize {
        self as usize
    }

    /// The name used in stats and dead letters: `queue_full`, `evicted`, `timeout`, `unsubscribed`.
    pub fn label(self) -> &'static str {
        match self {
            DropReason::QueueFull => "queue_full",
            DropReason::Evicted => "evicted",
            DropReason::Timeout => "timeout",
            DropReason::Unsubscribed => "unsubscribed",
        }
    }
}

/// Dropped messages, split by reason. Serialises as the `dropped_by_reason` object of the stats schema.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DroppedByReason {
    /// See [`DropReason::QueueFull`].
    pub queue_full: u64,
    /// See [`DropReason::Evicted`].
    pub evicted: u64,
    /// See [`DropReason::Timeout`].
    pub timeout: u64,
    /// See [`DropReason::Unsubscribed`].
    pub unsubscribed: u64,
}

impl DroppedByReason {
    /// All reasons together.
    pub fn total(&self) -> u64 {
        self.queue_full + self.evicted + self.timeout + self.unsubscribed
    }

    /// The count for one reason.
    pub fn get(&self, reason: DropReason) -> u64 {
        match reason {
            DropReason::QueueFull => self.queue_full,
            DropReason::Evicted => self.evicted,
            DropReason::Timeout => self.timeout,
            DropReason::Unsubscribed => self.unsubscribed,
        }
    }

    pub(crate) fn from_array(a: [u64; 4]) -> Self {
        Self {
            queue_full: a[0],
            evicted: a[1],
            timeout: a[2],
            unsubscribed: a[3],
        }
    }

    pub(crate) fn add(&mut self, other: &Self) {
        self.queue_full += other.queue_full;
        self.evicted += other.evicted;
        self.timeout += other.timeout;
        self.unsubscribed += other.unsubscribed;
    }
}
