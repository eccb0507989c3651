//! Byte bounds: a queue bounds messages, and these bound the payload bytes they hold, per queue or
//! shared by several queues (an MQTT client's subscriptions).

use std::sync::Arc;

use crate::sync::{AtomicU64, Ordering};

/// A bound on the payload bytes queued, shared by every subscription given it
/// ([`SubscriptionOptions::byte_budget`](crate::SubscriptionOptions::byte_budget)): the MQTT listener
/// gives one to each client, so one slow client cannot hold more than its budget whatever its number
/// of subscriptions. A message that would take the budget over its limit is refused, counted as dropped
/// (`byte_limit`) by the subscription it was offered to.
///
/// ```
/// use switchyard::{Broker, ByteBudget, SubscriptionOptions};
///
/// let broker = Broker::new();
/// let budget = ByteBudget::new(10);
/// let a = broker.subscribe_with("a", SubscriptionOptions::new().byte_budget(&budget))?;
/// let b = broker.subscribe_with("b", SubscriptionOptions::new().byte_budget(&budget))?;
/// broker.publish("a", "123456")?;
/// broker.publish("b", "123456")?; // 12 bytes would be over the shared 10
/// assert_eq!((a.len(), b.len(), budget.used()), (1, 0, 6));
/// assert_eq!(b.stats().dropped_by_reason.byte_limit, 1);
/// a.try_recv()?; // received: its bytes are free again
/// assert_eq!(budget.used(), 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct ByteBudget {
    limit: u64,
    used: AtomicU64,
    refused: AtomicU64,
}

/// Budgets compare by identity: two are equal when they are the same budget.
impl PartialEq for ByteBudget {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
    }
}

impl Eq for ByteBudget {}

impl ByteBudget {
    /// A budget of `limit` payload bytes.
    pub fn new(limit: u64) -> Arc<Self> {
        Arc::new(Self::unshared(limit))
    }

    pub(crate) fn unshared(limit: u64) -> Self {
        Self {
            limit,
            used: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        }
    }

    /// The bound.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Payload bytes queued now under this budget.
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    /// Messages refused so far because they would have gone over the bound.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// Takes `n` bytes if they fit. Add first, then check and give back: the bytes actually queued
    /// never exceed the limit, though two racing offers may both be refused where one would fit.
    fn charge(&self, n: u64) -> bool {
        let before = self.used.fetch_add(n, Ordering::Relaxed);
        if before.saturating_add(n) > self.limit {
            self.used.fetch_sub(n, Ordering::Relaxed);
            self.refused.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        true
    }

    fn release(&self, n: u64) {
        self.used.fetch_sub(n, Ordering::Relaxed);
    }
}

/// A subscription's byte bounds: its own (which also counts its queue's bytes), and a budget it
/// shares. Only bounded subscriptions have one, so the plain path checks one `Option`.
#[derive(Debug)]
pub(crate) struct ByteBounds {
    own: ByteBudget,
    shared: Option<Arc<ByteBudget>>,
}

impl ByteBounds {
    pub(crate) fn new(
        max_bytes: Option<u64>,
        shared: Option<Arc<ByteBudget>>,
    ) -> Option<Box<Self>> {
        (max_bytes.is_some() || shared.is_some()).then(|| {
            Box::new(Self {
                own: ByteBudget::unshared(max_bytes.unwrap_or(u64::MAX)),
                shared,
            })
        })
    }

    /// Takes `n` bytes from every bound, or from none.
    pub(crate) fn charge(&self, n: u64) -> bool {
        if !self.own.charge(n) {
            return false;
        }
        if let Some(shared) = &self.shared {
            if !shared.charge(n) {
                self.own.release(n);
                return false;
            }
        }
        true
    }

    /// Gives back `n` bytes to every bound (the message left the queue).
    pub(crate) fn release(&self, n: u64) {
        self.own.release(n);
        if let Some(shared) = &self.shared {
            shared.release(n);
        }
    }

    /// Payload bytes in this queue now.
    pub(crate) fn queued(&self) -> u64 {
        self.own.used()
    }

    /// This queue's own bound, if it has one.
    pub(crate) fn max_bytes(&self) -> Option<u64> {
        (self.own.limit() != u64::MAX).then_some(self.own.limit())
    }
}
