//! Waiting on many subscriptions at once.
//!
//! A thread that serves thousands of subscriptions (a pooled consumer) cannot block in one
//! subscription's `recv`. Without help it polls, and sleeps between empty passes, which puts the sleep
//! into the latency of the next message. A [`ReadySignal`] attached to subscriptions
//! ([`crate::SubscriptionOptions::ready_signal`]) is notified after every push into any of them (and
//! when one closes), so the consumer parks on the signal instead and is woken by the next message.
//!
//! The cost falls only on subscriptions that have a signal: one more fence and load after a push (the
//! same check as their own waiters, see [`crate::waiters`]), and a wake-up only when a consumer is
//! parked on the signal. A notification wakes one parked thread, so a signal should be shared only by
//! threads that serve the same subscriptions; give each consumer thread its own.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::waiters::Waiters;

/// Wakes a thread parked on it when any subscription attached to it gets a message. See the
/// [module docs](self).
#[derive(Default)]
pub struct ReadySignal {
    waiters: Waiters,
}

impl fmt::Debug for ReadySignal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadySignal").finish_non_exhaustive()
    }
}

/// Two signals are equal only if they are the same signal.
impl PartialEq for ReadySignal {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
    }
}

impl Eq for ReadySignal {}

impl ReadySignal {
    /// A new signal, to attach to subscriptions with [`crate::SubscriptionOptions::ready_signal`].
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Parks until `is_ready()` holds or `timeout` passes; returns the last answer of `is_ready`.
    ///
    /// `is_ready` should look at the subscriptions attached to this signal (for example, whether any
    /// of them is non-empty or closed). It is called before parking and again after registering, so a
    /// message that arrives in between is never missed: its push notifies the registered waiter.
    pub fn wait_timeout(&self, timeout: Duration, mut is_ready: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now().checked_add(timeout);
        self.waiters
            .wait_for(deadline, || is_ready().then_some(()))
            .is_some()
    }

    /// After a push into an attached subscription.
    #[inline]
    pub(crate) fn notify(&self) {
        self.waiters.notify_one();
    }

    /// When an attached subscription closes: everyone re-checks.
    pub(crate) fn notify_all(&self) {
        self.waiters.notify_all();
    }
}
