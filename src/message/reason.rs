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
    /// The subscription was removed while the message was queued, on its way, or in flight.
    Unsubscribed,
    /// A receiver of an acknowledged subscription refused it for good
    /// ([`AckDelivery::term`](crate::AckDelivery::term)).
    Rejected,
    /// It was delivered [`AckOptions::max_deliveries`](crate::AckOptions::max_deliveries) times on an
    /// acknowledged subscription and never acknowledged.
    MaxDeliveries,
    /// Queueing it would have put more payload bytes in the queue (or in the budget it shares) than
    /// its bound allows ([`SubscriptionOptions::max_bytes`](crate::SubscriptionOptions::max_bytes),
    /// [`ByteBudget`](crate::ByteBudget)); the new message was refused.
    ByteLimit,
}

impl DropReason {
    /// Every reason, in the order of [`DroppedByReason`]'s fields.
    pub const ALL: [DropReason; Self::COUNT] = [
        DropReason::QueueFull,
        DropReason::Evicted,
        DropReason::Timeout,
        DropReason::Unsubscribed,
        DropReason::Rejected,
        DropReason::MaxDeliveries,
        DropReason::ByteLimit,
    ];

    /// How many reasons there are.
    pub const COUNT: usize = 7;

    pub(crate) fn index(self) -> usize {
        self as usize
    }

    /// The name used in stats and dead letters: `queue_full`, `evicted`, `timeout`, `unsubscribed`,
    /// `rejected`, `max_deliveries`, `byte_limit`.
    pub fn label(self) -> &'static str {
        match self {
            DropReason::QueueFull => "queue_full",
            DropReason::Evicted => "evicted",
            DropReason::Timeout => "timeout",
            DropReason::Unsubscribed => "unsubscribed",
            DropReason::Rejected => "rejected",
            DropReason::MaxDeliveries => "max_deliveries",
            DropReason::ByteLimit => "byte_limit",
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
    /// See [`DropReason::Rejected`] (v1 addition).
    #[serde(default)]
    pub rejected: u64,
    /// See [`DropReason::MaxDeliveries`] (v1 addition).
    #[serde(default)]
    pub max_deliveries: u64,
    /// See [`DropReason::ByteLimit`] (v1 addition).
    #[serde(default)]
    pub byte_limit: u64,
}

impl DroppedByReason {
    /// All reasons together.
    pub fn total(&self) -> u64 {
        self.queue_full
            + self.evicted
            + self.timeout
            + self.unsubscribed
            + self.rejected
            + self.max_deliveries
            + self.byte_limit
    }

    /// The count for one reason.
    pub fn get(&self, reason: DropReason) -> u64 {
        match reason {
            DropReason::QueueFull => self.queue_full,
            DropReason::Evicted => self.evicted,
            DropReason::Timeout => self.timeout,
            DropReason::Unsubscribed => self.unsubscribed,
            DropReason::Rejected => self.rejected,
            DropReason::MaxDeliveries => self.max_deliveries,
            DropReason::ByteLimit => self.byte_limit,
        }
    }

    pub(crate) fn from_array(a: [u64; DropReason::COUNT]) -> Self {
        let [
            queue_full,
            evicted,
            timeout,
            unsubscribed,
            rejected,
            max_deliveries,
            byte_limit,
        ] = a;
        Self {
            queue_full,
            evicted,
            timeout,
            unsubscribed,
            rejected,
            max_deliveries,
            byte_limit,
        }
    }

    /// Adds `other`'s counts, reason by reason: to sum several subscriptions' drops (a client's, a
    /// run's) without naming each reason, so a reason added later is summed too.
    ///
    /// ```
    /// use switchyard::DroppedByReason;
    ///
    /// let mut sum = DroppedByReason { queue_full: 2, ..Default::default() };
    /// sum.add(&DroppedByReason { queue_full: 1, byte_limit: 4, ..Default::default() });
    /// assert_eq!((sum.queue_full, sum.byte_limit, sum.total()), (3, 4, 7));
    /// ```
    pub fn add(&mut self, other: &Self) {
        for reason in DropReason::ALL {
            *self.get_mut(reason) += other.get(reason);
        }
    }

    fn get_mut(&mut self, reason: DropReason) -> &mut u64 {
        match reason {
            DropReason::QueueFull => &mut self.queue_full,
            DropReason::Evicted => &mut self.evicted,
            DropReason::Timeout => &mut self.timeout,
            DropReason::Unsubscribed => &mut self.unsubscribed,
            DropReason::Rejected => &mut self.rejected,
            DropReason::MaxDeliveries => &mut self.max_deliveries,
            DropReason::ByteLimit => &mut self.byte_limit,
        }
    }
}
