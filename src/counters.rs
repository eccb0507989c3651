//! Per-subscription counters, laid out so publishers and receivers do not write the same cache line.
//!
//! The accounting rule every test and the dashboard rely on, per subscription:
//!
//! ```text
//! matched = delivered + dropped + depth
//! ```
//!
//! holds exactly whenever no publish or receive is in flight. Each counter is written by one side:
//! - publishers write `matched` and `high_water` (one line), and the drop counters (another line,
//!   written only when something is dropped, so receivers can read it cheaply to detect gaps);
//! - receivers write `delivered` (a third line).
//!
//! `depth` is not a counter: it is the queue's own length, which is exact at quiescence.

use crossbeam_utils::CachePadded;
use serde::{Deserialize, Serialize};

use crate::sync::{AtomicU64, Ordering};

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

    fn index(self) -> usize {
        self as usize
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

/// Written by publishers on every routed message.
#[derive(Debug, Default)]
struct PublishSide {
    matched: AtomicU64,
    high_water: AtomicU64,
}

/// Written only when a message is dropped; read by receivers on every receive to notice gaps.
#[derive(Debug, Default)]
struct DropSide {
    total: AtomicU64,
    by_reason: [AtomicU64; 4],
}

/// Written by receivers.
#[derive(Debug, Default)]
struct ReceiveSide {
    delivered: AtomicU64,
}

/// The monotonic counters of one subscription. See the [module docs](self).
#[derive(Debug, Default)]
pub(crate) struct SubscriptionCounters {
    publish: CachePadded<PublishSide>,
    drops: CachePadded<DropSide>,
    receive: CachePadded<ReceiveSide>,
}

/// How often (in matched messages) a publisher samples the queue length for `high_water`. Reading the
/// length touches the receivers' cache line, so doing it on every push would cost the data path a cache
/// miss; sampling keeps the cost small, and the mark is also raised to the capacity whenever the queue is
/// found full and to the current depth whenever stats are taken, so `depth <= high_water` in every snapshot.
pub(crate) const HIGH_WATER_SAMPLE_EVERY: u64 = 32;

impl SubscriptionCounters {
    /// Counts one matched message; returns the new `matched` count.
    #[inline]
    pub(crate) fn add_matched(&self) -> u64 {
        self.publish.matched.fetch_add(1, Ordering::Relaxed) + 1
    }

    #[inline]
    pub(crate) fn raise_high_water(&self, depth: u64) {
        if self.publish.high_water.load(Ordering::Relaxed) < depth {
            self.publish.high_water.fetch_max(depth, Ordering::Relaxed);
        }
    }

    #[inline]
    pub(crate) fn add_delivered(&self, n: u64) {
        self.receive.delivered.fetch_add(n, Ordering::Relaxed);
    }

    #[inline]
    pub(crate) fn add_dropped(&self, reason: DropReason, n: u64) {
        self.drops.by_reason[reason.index()].fetch_add(n, Ordering::Relaxed);
        self.drops.total.fetch_add(n, Ordering::Relaxed);
    }

    /// All drops so far; one load, cheap while nothing is being dropped.
    #[inline]
    pub(crate) fn dropped_total(&self) -> u64 {
        self.drops.total.load(Ordering::Relaxed)
    }

    pub(crate) fn dropped_by_reason(&self) -> DroppedByReason {
        DroppedByReason::from_array(std::array::from_fn(|i| {
            self.drops.by_reason[i].load(Ordering::Relaxed)
        }))
    }

    pub(crate) fn matched(&self) -> u64 {
        self.publish.matched.load(Ordering::Relaxed)
    }

    pub(crate) fn delivered(&self) -> u64 {
        self.receive.delivered.load(Ordering::Relaxed)
    }

    pub(crate) fn high_water(&self) -> u64 {
        self.publish.high_water.load(Ordering::Relaxed)
    }
}
