//! Joinable subscriptions: wait until every message queued has been processed.

use std::time::Instant;

use crate::id::SubscriptionId;
use crate::sync::waiters::Waiters;
use crate::sync::{AtomicU64, Ordering};

/// Why [`crate::Subscription::done`] was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DoneError {
    /// The subscription was not created with [`crate::SubscriptionOptions::joinable`].
    #[error("subscription {0} is not joinable; create it with SubscriptionOptions::joinable(true)")]
    NotJoinable(SubscriptionId),
    /// Every message delivered so far was already acknowledged.
    #[error("subscription {0} has no delivered message left to acknowledge")]
    NothingToAcknowledge(SubscriptionId),
}

/// Why a join returned before everything was processed.
///
/// Like a joinable work queue (`task_done` / `join`): a subscription created with
/// [`crate::SubscriptionOptions::joinable`] counts *unfinished* messages, those queued or delivered but
/// not yet acknowledged. Receivers acknowledge each processed message with
/// [`crate::Subscription::done`]; [`crate::Subscription::join`], [`crate::Publisher::join`] and
/// [`crate::Broker::join`] wait, with a timeout, until the count is zero.
///
/// A message that is dropped instead of processed (refused by a full lane, evicted, discarded on
/// unsubscribe) stops being unfinished when it is dropped: `join` waits for work, not for messages that
/// will never arrive. `join` covers every message of the subscription, whichever publisher sent it,
/// exactly as `queue.join()` does.
///
/// # Cost
/// Only joinable subscriptions pay: two atomic read-modify-writes per message (one when it is offered,
/// one on `done`). The plain path checks one plain `Option` field of the subscription.
///
/// # Memory ordering
/// A publisher raises `unfinished` *before* it pushes the message (relaxed is enough: the push's own
/// release orders it before any pop), so a receiver can never acknowledge a message whose increment is
/// still to come, and the count never goes below the truth. `done` first claims one delivered but
/// unacknowledged message (`acknowledged < delivered`, so a stray `done` is an error, not an early join),
/// then lowers `unfinished` with release; a joiner reads zero with acquire, so everything a receiver did
/// before its `done` happens before `join` returns. The loom model
/// `loom_join_returns_only_after_the_work_acknowledged_before_it` checks this.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JoinError {
    /// The subscription was not created with [`crate::SubscriptionOptions::joinable`].
    #[error("subscription {0} is not joinable; create it with SubscriptionOptions::joinable(true)")]
    NotJoinable(SubscriptionId),
    /// No live subscription has this id.
    #[error("no subscription with id {0}")]
    Unknown(SubscriptionId),
    /// Messages were still unfinished when the timeout ran out.
    #[error("subscription {id} still had {unfinished} unfinished messages when the join timed out")]
    Timeout {
        /// The subscription.
        id: SubscriptionId,
        /// Messages queued or delivered and not acknowledged at the timeout.
        unfinished: u64,
    },
}

/// The join state of one joinable subscription: its counts and the joiners parked on them.
#[derive(Debug, Default)]
pub(crate) struct JoinState {
    counter: JoinCounter,
    idle: Waiters,
}

impl JoinState {
    /// `n` messages are about to be pushed. Publisher side, before the push.
    #[inline]
    pub(crate) fn begin(&self, n: u64) {
        self.counter.begin(n);
    }

    /// `n` messages counted by `begin` will never be processed; wakes joiners if none is left.
    #[inline]
    pub(crate) fn abandon(&self, n: u64) {
        if self.counter.abandon(n) {
            self.idle.notify(usize::MAX);
        }
    }

    /// Acknowledges one processed message of subscription `id`, which has delivered `delivered()`.
    pub(crate) fn done(
        &self,
        id: SubscriptionId,
        delivered: impl Fn() -> u64,
    ) -> Result<(), DoneError> {
        match self.counter.done(delivered) {
            Ok(idle) => {
                if idle {
                    self.idle.notify(usize::MAX);
                }
                Ok(())
            }
            Err(()) => Err(DoneError::NothingToAcknowledge(id)),
        }
    }

    /// Messages queued or delivered and not yet acknowledged.
    pub(crate) fn unfinished(&self) -> u64 {
        self.counter.unfinished()
    }

    /// Waits until nothing of subscription `id` is unfinished, or until `deadline`.
    pub(crate) fn wait_idle(
        &self,
        id: SubscriptionId,
        deadline: Option<Instant>,
    ) -> Result<(), JoinError> {
        self.idle
            .wait_for(deadline.into(), || (self.unfinished() == 0).then_some(()))
            .ok_or_else(|| JoinError::Timeout {
                id,
                unfinished: self.unfinished(),
            })
    }
}

/// The counts of one joinable subscription. See the [module docs](self).
#[derive(Debug, Default)]
pub(crate) struct JoinCounter {
    /// Messages queued or delivered and not yet acknowledged.
    unfinished: AtomicU64,
    /// `done` calls accepted so far; never above the subscription's `delivered`.
    acknowledged: AtomicU64,
}

impl JoinCounter {
    /// `n` messages are about to be pushed. Publisher side, before the push.
    #[inline]
    pub(crate) fn begin(&self, n: u64) {
        self.unfinished.fetch_add(n, Ordering::Relaxed);
    }

    /// `n` messages counted by `begin` will never be processed (refused, evicted, discarded). Returns
    /// whether the count reached zero, so joiners must be woken.
    #[inline]
    pub(crate) fn abandon(&self, n: u64) -> bool {
        self.unfinished.fetch_sub(n, Ordering::Release) == n
    }

    /// Acknowledges one processed message; `delivered` reads how many the subscription has delivered.
    /// `Ok(true)` when the count reached zero; `Err(())` when every delivered message was already
    /// acknowledged.
    ///
    /// `delivered` is read afresh on every attempt, after the load of `acknowledged` (acquire): an
    /// acknowledgement seen there was released after its receiver counted its delivery, so that
    /// delivery is seen too, and a receiver racing another is never refused for the other's `done`.
    pub(crate) fn done(&self, delivered: impl Fn() -> u64) -> Result<bool, ()> {
        self.acknowledged
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |a| {
                (a < delivered()).then_some(a + 1)
            })
            .map_err(|_| ())?;
        Ok(self.unfinished.fetch_sub(1, Ordering::Release) == 1)
    }

    /// Messages queued or delivered and not yet acknowledged.
    #[inline]
    pub(crate) fn unfinished(&self) -> u64 {
        self.unfinished.load(Ordering::Acquire)
    }
}

#[cfg(all(test, switchyard_loom))]
mod loom_models {
    use loom::sync::Arc;
    use loom::sync::atomic::{AtomicBool, AtomicU64};
    use loom::thread;

    use super::*;

    #[test]
    fn loom_join_returns_only_after_the_work_acknowledged_before_it() {
        let mut model = loom::model::Builder::new();
        model.preemption_bound = Some(2);
        model.check(|| {
            let join = Arc::new(JoinCounter::default());
            let queued = Arc::new(AtomicBool::new(false));
            let delivered = Arc::new(AtomicU64::new(0));
            let processed = Arc::new(AtomicBool::new(false));
            // The publisher: count, then push.
            join.begin(1);
            queued.store(true, Ordering::Release);
            let receiver = {
                let (join, queued, delivered, processed) = (
                    join.clone(),
                    queued.clone(),
                    delivered.clone(),
                    processed.clone(),
                );
                thread::spawn(move || {
                    if queued.swap(false, Ordering::Acquire) {
                        delivered.fetch_add(1, Ordering::Relaxed);
                        processed.store(true, Ordering::Relaxed);
                        let d = || delivered.load(Ordering::Relaxed);
                        assert!(
                            join.done(d).is_ok(),
                            "a delivered message can be acknowledged"
                        );
                        assert!(join.done(d).is_err(), "but only once");
                    }
                })
            };
            if join.unfinished() == 0 {
                assert!(
                    processed.load(Ordering::Relaxed),
                    "join saw zero before the work was done"
                );
            }
            receiver.join().unwrap();
            assert_eq!(join.unfinished(), 0);
        });
    }
}

#[cfg(all(test, switchyard_loom))]
mod loom_racing_receivers {
    use loom::sync::Arc;
    use loom::sync::atomic::AtomicU64;
    use loom::thread;

    use super::*;

    #[test]
    fn loom_two_receivers_acknowledging_at_once_are_never_refused() {
        let mut model = loom::model::Builder::new();
        model.preemption_bound = Some(2);
        model.check(|| {
            let join = Arc::new(JoinCounter::default());
            let delivered = Arc::new(AtomicU64::new(0));
            join.begin(1);
            join.begin(1);
            let receivers: Vec<_> = (0..2)
                .map(|_| {
                    let (join, delivered) = (join.clone(), delivered.clone());
                    thread::spawn(move || {
                        delivered.fetch_add(1, Ordering::Relaxed);
                        join.done(|| delivered.load(Ordering::Relaxed)).is_ok()
                    })
                })
                .collect();
            for r in receivers {
                assert!(
                    r.join().unwrap(),
                    "a receiver was refused for the other's done"
                );
            }
            assert_eq!(join.unfinished(), 0);
        });
    }
}
