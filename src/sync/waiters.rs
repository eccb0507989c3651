//! Parking for the lock-free queues: the threads parked in a blocking wait ([`ParkedThreads`]), an
//! [`event_listener::Event`] for async tasks, and in front of both a count of the waiters, so the
//! side that makes progress pays almost nothing when nobody waits.
//!
//! Waking takes a lock (the parked threads' list, or the event's internal mutex), waiters or not. A
//! publisher notifies after every push and a receiver (under `Block`) after every pop, so calling it
//! unconditionally would put a lock on the data path. [`Waiters::notify_one`] first checks a count of
//! registered waiters and wakes only when it is non-zero. Threads are woken after that lock is
//! released, which `event_listener` does not do (see `src/sync/parked.rs`).
//!
//! # Why no wake-up is lost
//! The classic store-buffering handshake, with a sequentially consistent fence on each side:
//!
//! ```text
//! waiter                                   notifier
//! go on the list (or listen on the event)   make progress visible (push / pop)
//! waiting += 1; fence(SeqCst)             fence(SeqCst)
//! re-check the condition                   if waiting > 0 { wake one on the list (or the event) }
//! if still not ready: park
//! ```
//!
//! In the single total order of the two SeqCst fences either the waiter's comes first, so the notifier
//! sees `waiting > 0` and notifies a waiter that is already registered, or the notifier's comes
//! first, so the waiter's re-check sees the progress and does not park. The loom model
//! `loom_a_waiter_either_sees_progress_or_is_notified` checks this handshake, and
//! `loom_a_parked_thread_is_woken_by_the_notifier_that_makes_progress` and
//! `loom_two_parked_threads_each_get_a_token_and_none_stays_parked` the parked threads' list.
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

use std::sync::Arc;
use std::time::{Duration, Instant};

use event_listener::{Event, EventListener, IntoNotification};

use crate::sync::barrier;
use crate::sync::parked::{Parked, ParkedThreads};
use crate::sync::spin::{Spin, SpinPolicy, spin_for};
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

    /// Whether others are registered now, read without a fence: a hint for a waiter deciding how
    /// long to poll ([`Waiters::poll_then_wait_for`]), which no correctness argument rests on.
    #[inline]
    pub(crate) fn others_waiting_hint(&self) -> bool {
        self.waiting.load(Ordering::Relaxed) & COUNT > 0
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

/// When a wait gives up. A timeout becomes a deadline only once the first look found nothing, so a
/// wait that ends at its first look reads no clock: `Instant::now` reads a slow clock source on some
/// virtual machines, and four competing receivers looping on `recv_timeout` spent 7% of their CPU on
/// deadlines they never used.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Until {
    /// No deadline.
    Forever,
    /// This instant.
    At(Instant),
    /// This long after the first look that found nothing (forever if that overflows).
    After(Duration),
}

impl Until {
    fn deadline(self) -> Option<Instant> {
        match self {
            Until::Forever => None,
            Until::At(at) => Some(at),
            Until::After(timeout) => Instant::now().checked_add(timeout),
        }
    }
}

impl From<Option<Instant>> for Until {
    fn from(deadline: Option<Instant>) -> Self {
        deadline.map_or(Until::Forever, Until::At)
    }
}

/// An event that threads and tasks park on, with a waiter count in front of it. See the module docs.
#[derive(Debug, Default)]
pub(crate) struct Waiters {
    count: WaiterCount,
    /// Threads in a blocking wait.
    threads: ParkedThreads,
    /// Async tasks.
    event: Event,
    /// Whether [`Waiters::poll_then_wait_for`] polls before parking, and for how long.
    spin: Spin,
}

impl Waiters {
    /// Waiters whose receivers poll as `policy` says before parking ([`Waiters::poll_then_wait_for`]).
    pub(crate) fn with_spin(policy: SpinPolicy) -> Self {
        Self {
            spin: Spin::new(policy),
            ..Self::default()
        }
    }

    /// Wakes one waiter if any is registered, and says whether one was. Costs a fence and a load
    /// otherwise.
    #[inline]
    pub(crate) fn notify_one(&self) -> bool {
        let anyone = self.count.anyone_waiting();
        if anyone {
            self.wake(1);
        }
        anyone
    }

    /// Wakes up to `n` waiters if any is registered.
    #[inline]
    pub(crate) fn notify(&self, n: usize) {
        if self.count.anyone_waiting() {
            self.wake(n);
        }
    }

    /// Wakes every waiter (closing). Unconditional: it is rare.
    pub(crate) fn notify_all(&self) {
        self.wake(usize::MAX);
    }

    /// Wakes up to `n` waiters: parked threads first, then async tasks for the rest.
    #[cold]
    fn wake(&self, n: usize) {
        let woken = self.threads.wake(n);
        if woken < n {
            self.event.notify((n - woken).additional());
        }
    }

    /// [`Waiters::wait_for`] after polling `check` for as long as this event's [`SpinPolicy`] says
    /// (see `src/sync/spin.rs`): for receivers (`recv` on one subscription, `wait_ready` on a ready
    /// list), whose next message under steady traffic may be microseconds away. Between rounds of
    /// polls it yields the core: with more polling receivers than cores, a pure spin would hold the
    /// cores their publishers need. Records how long the wait lasted, for the adaptive policy.
    /// `Block` publishers keep their own back-off and park with [`Waiters::wait_for`].
    #[inline]
    pub(crate) fn poll_then_wait_for<T>(
        &self,
        until: Until,
        mut check: impl FnMut() -> Option<T>,
    ) -> Option<T> {
        // Found at the first look: not a wait, and no clock read.
        if let Some(value) = check() {
            return Some(value);
        }
        self.poll_then_wait(until, check)
    }

    /// [`Waiters::poll_then_wait_for`] once the first look found nothing.
    #[inline(never)]
    fn poll_then_wait<T>(&self, until: Until, mut check: impl FnMut() -> Option<T>) -> Option<T> {
        let deadline = until.deadline();
        let started = Instant::now();
        let window = self.spin.window_beside(self.count.others_waiting_hint());
        // A window of zero (`Never`, or an adaptive receiver whose waits are long) parks at once:
        // `spin_for` would still poll a round of 16 with a pause each before it reads the clock,
        // which at 10,000 waits a second was about a third of the receiver's CPU above a channel
        // that parks (docs/performance.md, "Waiting costs nothing").
        let polled = if window.is_zero() {
            None
        } else {
            spin_for(started, window, deadline, &mut check)
        };
        let got = match polled {
            Some(value) => Some(value),
            None => self.wait_for(deadline.into(), check),
        };
        self.spin.record(started.elapsed());
        got
    }

    /// Calls `check` until it yields a value, parking between attempts until notified or `until`
    /// passes; `None` when it passes (after one last check). The caller registers before its
    /// re-check, so a notification between the check and the park is never missed.
    #[inline]
    pub(crate) fn wait_for<T>(
        &self,
        until: Until,
        mut check: impl FnMut() -> Option<T>,
    ) -> Option<T> {
        if let Some(value) = check() {
            return Some(value);
        }
        self.wait(until, check)
    }

    /// [`Waiters::wait_for`] once the first look found nothing.
    #[inline(never)]
    fn wait<T>(&self, until: Until, mut check: impl FnMut() -> Option<T>) -> Option<T> {
        let deadline = until.deadline();
        loop {
            let mut registration = self.register();
            if let Some(value) = check() {
                return Some(value);
            }
            if !registration.park(deadline) {
                drop(registration);
                return check();
            }
            drop(registration);
            if let Some(value) = check() {
                return Some(value);
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

    /// Registers the calling thread as a waiter. The caller must re-check its condition after this
    /// and before parking on the registration; dropping the registration unregisters.
    pub(crate) fn register(&self) -> Registration<'_> {
        let entry = self.threads.enter();
        self.count.announce();
        Registration {
            waiters: self,
            entry,
            used: false,
        }
    }

    /// Registers an async task ([`WaiterCount::announce_async`]).
    fn register_async(&self) -> AsyncRegistration<'_> {
        let listener = self.event.listen();
        self.count.announce_async();
        AsyncRegistration {
            count: &self.count,
            listener,
        }
    }
}

/// A thread registered as a waiter. Dropping it unregisters; a notification it was given and did not
/// use passes to another waiter (see `src/sync/parked.rs`).
pub(crate) struct Registration<'a> {
    waiters: &'a Waiters,
    entry: Arc<Parked>,
    /// Whether it parked and was woken by its notification (which the caller's next check uses).
    used: bool,
}

impl Registration<'_> {
    /// Parks until notified or `deadline`; `false` on timeout.
    pub(crate) fn park(&mut self, deadline: Option<Instant>) -> bool {
        self.used = ParkedThreads::park(&self.entry, deadline);
        self.used
    }
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        let notified = self.waiters.threads.leave(&self.entry);
        self.waiters.count.retract();
        if notified && !self.used {
            self.waiters.wake(1);
        }
    }
}

/// A registered async task. Dropping it unregisters (a notification it received passes to another
/// waiter: `event_listener` does that).
struct AsyncRegistration<'a> {
    count: &'a WaiterCount,
    listener: EventListener,
}

impl AsyncRegistration<'_> {
    /// Awaits a notification. Cancel-safe: dropping the future unregisters, and a notification it had
    /// received passes to another waiter.
    async fn wait_async(mut self) {
        (&mut self.listener).await;
    }
}

impl Drop for AsyncRegistration<'_> {
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

    /// A thread parked in `wait_for` while a notifier makes progress and notifies: it always returns
    /// (a lost wake-up would leave it parked, which loom reports as a deadlock).
    #[test]
    fn loom_a_parked_thread_is_woken_by_the_notifier_that_makes_progress() {
        loom::model(|| {
            let waiters = Arc::new(Waiters::default());
            let ready = Arc::new(AtomicBool::new(false));
            let notifier = {
                let (waiters, ready) = (waiters.clone(), ready.clone());
                thread::spawn(move || {
                    ready.store(true, Ordering::Release);
                    waiters.notify_one();
                })
            };
            let got = waiters.wait_for(Until::Forever, || {
                ready.load(Ordering::Acquire).then_some(())
            });
            assert!(got.is_some());
            notifier.join().unwrap();
        });
    }

    /// Two threads wait for one token each while a notifier hands out two, notifying once per
    /// token: both return, even when one leaves through its re-check with a notification meant for
    /// the token it did not take (it passes the notification on).
    #[test]
    fn loom_two_parked_threads_each_get_a_token_and_none_stays_parked() {
        let mut model = loom::model::Builder::new();
        model.preemption_bound = Some(2);
        model.check(|| {
            let waiters = Arc::new(Waiters::default());
            let tokens = Arc::new(loom::sync::atomic::AtomicUsize::new(0));
            let take = |tokens: &loom::sync::atomic::AtomicUsize| {
                tokens
                    .fetch_update(Ordering::AcqRel, Ordering::Acquire, |t| t.checked_sub(1))
                    .ok()
                    .map(|_| ())
            };
            let waiter = {
                let (waiters, tokens) = (waiters.clone(), tokens.clone());
                thread::spawn(move || waiters.wait_for(Until::Forever, || take(&tokens)).is_some())
            };
            let notifier = {
                let (waiters, tokens) = (waiters.clone(), tokens.clone());
                thread::spawn(move || {
                    for _ in 0..2 {
                        tokens.fetch_add(1, Ordering::Release);
                        waiters.notify_one();
                    }
                })
            };
            assert!(waiters.wait_for(Until::Forever, || take(&tokens)).is_some());
            assert!(waiter.join().unwrap());
            notifier.join().unwrap();
        });
    }
}

#[cfg(all(test, not(switchyard_loom)))]
mod tests {
    use std::cell::Cell;
    use std::time::Duration;

    use super::{SpinPolicy, Until, Waiters};

    /// How many times a wait of 1 ms with nothing arriving looks for a message under `policy`.
    fn looks_while_waiting(policy: SpinPolicy) -> u32 {
        let waiters = Waiters::with_spin(policy);
        let looks = Cell::new(0);
        let got = waiters.poll_then_wait_for(Until::After(Duration::from_millis(1)), || {
            looks.set(looks.get() + 1);
            None::<()>
        });
        assert!(got.is_none());
        looks.get()
    }

    #[test]
    fn a_receiver_with_no_window_parks_at_once_without_polling() {
        // The first look, the look after registering, and the look after the timeout: no round of
        // polls (16 looks with a pause each) before it parks.
        assert!(looks_while_waiting(SpinPolicy::Never) <= 4);
        // A receiver that polls looks more often than that before it parks.
        assert!(looks_while_waiting(SpinPolicy::For(Duration::from_micros(200))) > 16);
    }
}
