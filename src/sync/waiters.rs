//! Parking for the lock-free queues: an [`event_listener::Event`] plus a count of the threads and tasks
//! waiting on it, so the side that makes progress pays almost nothing when nobody waits.
//!
//! `Event::notify` takes the event's internal mutex on every call, waiters or not (event-listener 5.4).
//! A publisher notifies after every push and a receiver (under `Block`) after every pop, so calling it
//! unconditionally would put a lock on the data path. [`Waiters::notify_one`] first checks a count of
//! registered waiters and calls into the event only when it is non-zero.
//!
//! # Why no wake-up is lost
//! The classic store-buffering handshake, with a sequentially consistent fence on each side:
//!
//! ```text
//! waiter                                   notifier
//! listener = event.listen()                make progress visible (push / pop)
//! waiting += 1; fence(SeqCst)             fence(SeqCst)
//! re-check the condition                   if waiting > 0 { event.notify(1) }
//! if still not ready: park on listener
//! ```
//!
//! In the single total order of the two SeqCst fences either the waiter's comes first, so the notifier
//! sees `waiting > 0` and notifies a listener that is already registered, or the notifier's comes
//! first, so the waiter's re-check sees the progress and does not park. The loom model
//! `loom_a_waiter_either_sees_progress_or_is_notified` checks this handshake.
//!
//! # Who pays for the fence
//! The notifier runs on every message, the waiter only when it is about to park, so the fences are
//! asymmetric ([`crate::sync::barrier`]): where Linux's `membarrier` is available the notifier's is a
//! compiler fence and the waiter forces a barrier on every core running this process, so the data
//! path (a publisher after its push, a `Block` receiver after its pop) executes no fence instruction.
//! Async waiters register every time they find nothing, so
//! the first one switches its event back to a fence on each side
//! ([`WaiterCount::announce_async`]); the loom models, which cannot express a barrier in another
//! thread, check the fence-on-each-side form and the async switch's flags.

use std::time::Instant;

use event_listener::{Event, EventListener, IntoNotification, Listener};

use crate::sync::barrier;
use crate::sync::{AtomicUsize, Ordering, fence};

/// The count half of [`Waiters`], kept apart so the loom model can exercise it directly.
///
/// One word: the number of registered waiters in the low bits, and two flags in the top bits that
/// record whether an async waiter ever registered ([`SYMMETRIC`], [`SYMMETRIC_DONE`]); see
/// [`WaiterCount::announce_async`].
#[derive(Debug, Default)]
pub(crate) struct WaiterCount {
    waiting: AtomicUsize,
}

/// Set (for good) before the first async waiter's barrier: from then on notifiers of this event
/// fence instead of relying on the waiters' [`barrier::heavy`].
const SYMMETRIC: usize = 1 << (usize::BITS - 1);
/// Set after that barrier returned: later async waiters may rely on the notifiers' fence.
const SYMMETRIC_DONE: usize = 1 << (usize::BITS - 2);
/// The bits that count waiters.
const COUNT: usize = !(SYMMETRIC | SYMMETRIC_DONE);

impl WaiterCount {
    /// A waiter announces itself, after registering its listener and before re-checking: the heavy
    /// half of the handshake ([`barrier::heavy`], a system call where available). For threads about
    /// to park.
    #[inline]
    pub(crate) fn announce(&self) {
        self.waiting.fetch_add(1, Ordering::SeqCst);
        // Pairs with the notifier's half: the store-buffering outcome (each side misses the other's
        // write) is forbidden. The waiter's re-check reads the queue with the queue's own (acquire)
        // loads, so the RMW alone would not be enough.
        barrier::heavy();
    }

    /// An async waiter announces itself. Async tasks register every time they find nothing, and a
    /// [`barrier::heavy`] per registration would interrupt every core running this process; so the
    /// first one switches this event to the symmetric handshake (a `SeqCst` fence on each side) and
    /// pays the heavy barrier once, and later ones pay only a fence.
    ///
    /// Why that is enough: the first sets [`SYMMETRIC`] before its heavy barrier and
    /// [`SYMMETRIC_DONE`] after it. A later waiter that sees `SYMMETRIC_DONE` starts after that
    /// barrier, at which each notifier either had already read the word (so its progress store came
    /// before the barrier and is visible to the waiter's re-check) or reads it afterwards, sees
    /// `SYMMETRIC`, and fences. A waiter that does not see `SYMMETRIC_DONE` pays the heavy barrier
    /// itself.
    #[inline]
    pub(crate) fn announce_async(&self) {
        let before = self.waiting.fetch_add(1, Ordering::SeqCst);
        if before & SYMMETRIC_DONE == 0 {
            self.waiting.fetch_or(SYMMETRIC, Ordering::SeqCst);
            barrier::heavy();
            self.waiting.fetch_or(SYMMETRIC_DONE, Ordering::SeqCst);
        }
        fence(Ordering::SeqCst);
    }

    /// A waiter leaves (woken, timed out, or gave up because the condition held).
    #[inline]
    pub(crate) fn retract(&self) {
        self.waiting.fetch_sub(1, Ordering::Relaxed);
    }

    /// Whether anyone may be waiting; call after making progress visible. The light half of the
    /// handshake ([`barrier::light`]: no fence where the waiters pay the heavy half), or a fence once
    /// an async waiter switched the event to the symmetric handshake.
    #[inline]
    pub(crate) fn anyone_waiting(&self) -> bool {
        barrier::light();
        let mut waiting = self.waiting.load(Ordering::Relaxed);
        if waiting & SYMMETRIC != 0 {
            fence(Ordering::SeqCst);
            waiting = self.waiting.load(Ordering::Relaxed);
        }
        waiting & COUNT > 0
    }
}

/// How long a receiver polls before it parks ([`Waiters::poll_then_wait_for`]).
///
/// Parking and being woken costs each side a system call, and the wake-up itself takes several
/// microseconds on a virtual machine: at a few hundred thousand messages a second 1→1, the median
/// latency would be mostly the wake-up. A receiver that polls this long first catches a message that follows within the window
/// without either side entering the kernel, and the publisher, finding nobody parked, skips the
/// notification too. The cost is bounded: a receiver that finds nothing spends this much CPU once
/// before it parks, and an idle one, parked, spends none. Not under loom, whose models must park.
#[cfg(not(switchyard_loom))]
const SPIN_BEFORE_PARKING: std::time::Duration = std::time::Duration::from_micros(20);

/// Polls `check` for up to [`SPIN_BEFORE_PARKING`] (and not past `deadline`), with a pause between
/// polls; every 16 polls reads the clock and yields.
#[cfg(not(switchyard_loom))]
#[inline]
fn spin_for<T>(deadline: Option<Instant>, check: &mut impl FnMut() -> Option<T>) -> Option<T> {
    let started = Instant::now();
    let until = deadline.map_or(started + SPIN_BEFORE_PARKING, |d| {
        d.min(started + SPIN_BEFORE_PARKING)
    });
    loop {
        for _ in 0..16 {
            if let Some(value) = check() {
                return Some(value);
            }
            std::hint::spin_loop();
        }
        if Instant::now() >= until {
            return None;
        }
        // Offer the core to another runnable thread (the one this thread may be waiting for, on a
        // machine with fewer cores than busy threads); with a core to spare this returns at once.
        std::thread::yield_now();
    }
}

#[cfg(switchyard_loom)]
#[inline]
fn spin_for<T>(_: Option<Instant>, _: &mut impl FnMut() -> Option<T>) -> Option<T> {
    None
}

/// An event that threads and tasks park on, with a waiter count in front of it. See the module docs.
#[derive(Debug, Default)]
pub(crate) struct Waiters {
    count: WaiterCount,
    event: Event,
}

impl Waiters {
    /// Wakes one waiter if any is registered, and says whether one was. Costs a fence and a load
    /// otherwise.
    #[inline]
    pub(crate) fn notify_one(&self) -> bool {
        let anyone = self.count.anyone_waiting();
        if anyone {
            self.event.notify(1.additional());
        }
        anyone
    }

    /// Wakes up to `n` waiters if any is registered.
    #[inline]
    pub(crate) fn notify(&self, n: usize) {
        if self.count.anyone_waiting() {
            self.event.notify(n.additional());
        }
    }

    /// Wakes every waiter (closing). Unconditional: it is rare.
    pub(crate) fn notify_all(&self) {
        self.event.notify(usize::MAX);
    }

    /// [`Waiters::wait_for`] after polling `check` for up to [`SPIN_BEFORE_PARKING`]: for receivers
    /// (`recv` on one subscription, `wait_ready` on a ready list), whose next message under steady
    /// traffic is usually microseconds away. Between rounds of polls it yields the core: with more
    /// polling receivers than cores, a pure spin would hold the cores their publishers need.
    /// `Block` publishers keep their own back-off and park with [`Waiters::wait_for`].
    pub(crate) fn poll_then_wait_for<T>(
        &self,
        deadline: Option<Instant>,
        mut check: impl FnMut() -> Option<T>,
    ) -> Option<T> {
        if let Some(value) = spin_for(deadline, &mut check) {
            return Some(value);
        }
        self.wait_for(deadline, check)
    }

    /// Calls `check` until it yields a value, parking between attempts until notified or until
    /// `deadline`; `None` when the deadline passes (after one last check). The caller registers before
    /// its re-check, so a notification between the check and the park is never missed.
    pub(crate) fn wait_for<T>(
        &self,
        deadline: Option<Instant>,
        mut check: impl FnMut() -> Option<T>,
    ) -> Option<T> {
        loop {
            if let Some(value) = check() {
                return Some(value);
            }
            let registration = self.register();
            if let Some(value) = check() {
                return Some(value);
            }
            match deadline {
                None => registration.wait(),
                Some(d) => {
                    if !registration.wait_deadline(d) {
                        return check();
                    }
                }
            }
        }
    }

    /// The async form of [`Waiters::wait_for`], without a deadline (put the runtime's timeout around
    /// it). Cancel-safe: `check` takes something only in the poll that returns it, and dropping the
    /// future unregisters, passing on a notification it had received.
    pub(crate) async fn wait_for_async<T>(&self, mut check: impl FnMut() -> Option<T>) -> T {
        loop {
            if let Some(value) = check() {
                return value;
            }
            let registration = self.register_async();
            if let Some(value) = check() {
                return value;
            }
            registration.wait_async().await;
        }
    }

    /// Registers the caller as a waiter. The caller must re-check its condition after this and before
    /// waiting on the registration; dropping the registration unregisters.
    pub(crate) fn register(&self) -> Registration<'_> {
        let listener = self.event.listen();
        self.count.announce();
        Registration {
            count: &self.count,
            listener: Some(listener),
        }
    }

    /// [`Waiters::register`] for an async task ([`WaiterCount::announce_async`]).
    fn register_async(&self) -> Registration<'_> {
        let listener = self.event.listen();
        self.count.announce_async();
        Registration {
            count: &self.count,
            listener: Some(listener),
        }
    }
}

/// A registered waiter. Dropping it unregisters (a notification it received passes to another waiter).
pub(crate) struct Registration<'a> {
    count: &'a WaiterCount,
    /// Always `Some` until a blocking wait takes it (its `wait` consumes the listener); the
    /// registration itself stays alive until then so the waiter stays counted.
    listener: Option<EventListener>,
}

impl Registration<'_> {
    /// Parks until notified.
    pub(crate) fn wait(mut self) {
        if let Some(listener) = self.listener.take() {
            listener.wait();
        }
    }

    /// Parks until notified or `deadline`; `false` on timeout.
    pub(crate) fn wait_deadline(mut self, deadline: Instant) -> bool {
        self.listener
            .take()
            .is_some_and(|listener| listener.wait_deadline(deadline).is_some())
    }

    /// Awaits a notification. Cancel-safe: dropping the future unregisters, and a notification it had
    /// received passes to another waiter.
    pub(crate) async fn wait_async(mut self) {
        if let Some(listener) = self.listener.as_mut() {
            listener.await;
        }
    }
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        self.count.retract();
    }
}

#[cfg(all(test, switchyard_loom))]
mod loom_models {
    use loom::sync::Arc;
    use loom::sync::atomic::AtomicBool;
    use loom::thread;

    use super::*;

    /// One waiter announcing itself (`announce`) while a notifier makes progress and checks for
    /// waiters: the waiter's re-check sees the progress, or the notifier sees the waiter.
    fn waiter_races_notifier(count: Arc<WaiterCount>, announce: fn(&WaiterCount)) {
        let ready = Arc::new(AtomicBool::new(false));
        let notifier = {
            let (count, ready) = (count.clone(), ready.clone());
            thread::spawn(move || {
                // A queue push publishes its slot with a release store.
                ready.store(true, Ordering::Release);
                count.anyone_waiting()
            })
        };
        announce(&count);
        let saw_progress = ready.load(Ordering::Acquire);
        let notified = notifier.join().unwrap();
        assert!(
            saw_progress || notified,
            "the waiter would park and never be woken"
        );
    }

    #[test]
    fn loom_a_waiter_either_sees_progress_or_is_notified() {
        loom::model(|| {
            waiter_races_notifier(Arc::new(WaiterCount::default()), WaiterCount::announce)
        });
    }

    /// The same handshake for async waiters: the first switches the event to a fence on each side,
    /// and a second, racing the notifier after the switch, relies on it.
    #[test]
    fn loom_an_async_waiter_either_sees_progress_or_is_notified() {
        loom::model(|| {
            let count = Arc::new(WaiterCount::default());
            // A first async waiter came and went: the event is symmetric now.
            count.announce_async();
            count.retract();
            waiter_races_notifier(count, WaiterCount::announce_async);
        });
    }

    /// The first async waiter's switch, racing a notifier.
    #[test]
    fn loom_the_first_async_waiter_either_sees_progress_or_is_notified() {
        loom::model(|| {
            waiter_races_notifier(
                Arc::new(WaiterCount::default()),
                WaiterCount::announce_async,
            )
        });
    }
}
