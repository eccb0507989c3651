//! Dead letters: every dropped message, with why and where it was dropped.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_queue::ArrayQueue;
use crossbeam_utils::CachePadded;

use crate::id::SubscriptionId;
use crate::message::Message;
use crate::message::reason::DropReason;
use crate::stats::features::DeadLetterStats;
use crate::sync::waiters::{Until, Waiters};
use crate::sync::{AtomicU64, Ordering};

/// A dropped message, with the subscription that dropped it and why.
#[derive(Clone)]
pub struct DeadLetter {
    message: Message,
    subscription: SubscriptionId,
    subscription_name: Arc<str>,
    reason: DropReason,
}

impl DeadLetter {
    /// The message that was dropped.
    pub fn message(&self) -> &Message {
        &self.message
    }

    /// The id of the subscription that dropped it.
    pub fn subscription(&self) -> SubscriptionId {
        self.subscription
    }

    /// The name of the subscription that dropped it.
    pub fn subscription_name(&self) -> &str {
        &self.subscription_name
    }

    /// Why it was dropped.
    pub fn reason(&self) -> DropReason {
        self.reason
    }
}

impl fmt::Debug for DeadLetter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeadLetter")
            .field("topic", &self.message.topic())
            .field("subscription", &self.subscription)
            .field("subscription_name", &&*self.subscription_name)
            .field("reason", &self.reason)
            .finish()
    }
}

/// The broker-wide dead-letter queue.
pub(crate) struct DeadLetterQueue {
    queue: ArrayQueue<DeadLetter>,
    offered: CachePadded<AtomicU64>,
    overflow: AtomicU64,
    delivered: CachePadded<AtomicU64>,
    not_empty: Waiters,
}

impl fmt::Debug for DeadLetterQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeadLetterQueue")
            .field("stats", &self.stats())
            .finish()
    }
}

impl DeadLetterQueue {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            queue: ArrayQueue::new(capacity),
            offered: CachePadded::new(AtomicU64::new(0)),
            overflow: AtomicU64::new(0),
            delivered: CachePadded::new(AtomicU64::new(0)),
            not_empty: Waiters::default(),
        }
    }

    /// Offers a dropped message. Evicts (and counts) the oldest dead letter when full.
    pub(crate) fn offer(
        &self,
        message: &Message,
        subscription: SubscriptionId,
        subscription_name: &Arc<str>,
        reason: DropReason,
    ) {
        self.offered.fetch_add(1, Ordering::Relaxed);
        let letter = DeadLetter {
            message: message.for_dead_letter(),
            subscription,
            subscription_name: subscription_name.clone(),
            reason,
        };
        if self.queue.force_push(letter).is_some() {
            self.overflow.fetch_add(1, Ordering::Relaxed);
        }
        self.not_empty.notify_one();
    }

    fn take(&self) -> Option<DeadLetter> {
        let letter = self.queue.pop()?;
        self.delivered.fetch_add(1, Ordering::Relaxed);
        Some(letter)
    }

    pub(crate) fn stats(&self) -> DeadLetterStats {
        DeadLetterStats {
            capacity: self.queue.capacity() as u64,
            offered: self.offered.load(Ordering::Relaxed),
            delivered: self.delivered.load(Ordering::Relaxed),
            overflow: self.overflow.load(Ordering::Relaxed),
            depth: self.queue.len() as u64,
        }
    }
}

/// A reader of the broker's dead-letter queue. Clones compete for dead letters, like the receivers of
/// one subscription.
///
/// A broker built with [`crate::BrokerOptions::dead_letters`] offers each message a subscription drops
/// (refused by a full lane, evicted, timed out under `Block`, discarded on unsubscribe) to one
/// broker-wide dead-letter queue, together with the subscription and the [`DropReason`]. Read it
/// through [`crate::Broker::dead_letters`].
///
/// # Accounting
/// A dead-lettered message is still a drop of its subscription (`matched = delivered + dropped + depth`
/// is unchanged). The dead-letter queue keeps its own books:
///
/// ```text
/// offered = delivered + overflow + depth
/// ```
///
/// It is bounded; when full, the *oldest* dead letter is evicted to make room for the newest (the
/// recent ones are what an operator looks at) and counted as `overflow`. A dead letter is never offered
/// to the dead-letter queue again: there is no recursion, however full it gets.
///
/// # Cost
/// Nothing on the delivery path: the queue is touched only when a message is dropped.
#[derive(Debug, Clone)]
pub struct DeadLetters {
    queue: Arc<DeadLetterQueue>,
}

impl DeadLetters {
    pub(crate) fn new(queue: Arc<DeadLetterQueue>) -> Self {
        Self { queue }
    }

    /// Takes the oldest dead letter, if any.
    pub fn try_recv(&self) -> Option<DeadLetter> {
        self.queue.take()
    }

    /// Takes the oldest dead letter, waiting up to `timeout` for one.
    pub fn recv_timeout(&self, timeout: Duration) -> Option<DeadLetter> {
        self.queue
            .not_empty
            .wait_for(Until::After(timeout), || self.queue.take())
    }

    /// Moves up to `max` dead letters into `out`, oldest first; returns how many.
    pub fn drain_into(&self, out: &mut Vec<DeadLetter>, max: usize) -> usize {
        let mut n = 0;
        while n < max {
            match self.queue.take() {
                Some(l) => {
                    out.push(l);
                    n += 1;
                }
                None => break,
            }
        }
        n
    }

    /// The queue's counters now.
    pub fn stats(&self) -> DeadLetterStats {
        self.queue.stats()
    }
}
