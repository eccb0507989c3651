//! The threads parked in a blocking wait on one [`crate::sync::waiters::Waiters`], and how they are
//! woken: taken off a list under its lock, and unparked after the lock is released.
//!
//! # Why not `event_listener` for threads too
//! `event_listener` 5 wakes a listener while it holds its list's mutex, and the woken thread's first
//! step is to lock that list again. On a machine with a core free, the woken thread gets there while
//! the notifier is still inside its `futex` wake, finds the lock taken, and parks on it: a second
//! sleep and a second wake-up for every message that finds its receiver parked. Measured with
//! `examples/waiting_cost.rs` (a message every 100 µs, receiver parked each time), an
//! `event_listener::Event` in front of a queue gave a p50 of 13.7 µs and more context switches
//! than messages, the same queue with `std::thread::park` 9.4 µs. Async tasks stay on the
//! event: waking a task only schedules it.
//!
//! # The protocol
//! A waiter puts its entry on the list, then announces itself ([`super::waiters::WaiterCount`]), then
//! re-checks its condition, and parks until its entry's `notified` flag is set. A notifier that sees
//! it counted takes the first entry off the list, sets its flag under the lock, and unparks its
//! thread after releasing the lock. The entry is on the list before the count says so (program
//! order, and the list's lock orders the notifier's look after the waiter's push), so a notifier
//! that sees the count finds the entry, unless another notifier took it first, which woke it.
//!
//! A waiter that leaves without using a notification it was given (its re-check found what it
//! waited for, or its deadline passed as the notification came) passes it on to the next entry, so a
//! notification for a message never ends with a thread that left while another stays parked.

use std::sync::{Arc, PoisonError};
use std::time::Instant;

use crate::sync::{AtomicBool, Mutex, MutexGuard, Ordering, Thread, current_thread};

/// A thread parked in a blocking wait.
#[derive(Debug)]
pub(crate) struct Parked {
    thread: Thread,
    /// Set, under the list's lock, by the notifier that took this entry off the list.
    notified: AtomicBool,
}

impl Parked {
    /// This thread's entry, reset: one per thread, reused for every wait (not under loom, whose
    /// threads are not the thread-local's).
    fn for_this_thread() -> Arc<Parked> {
        let fresh = || {
            Arc::new(Parked {
                thread: current_thread(),
                notified: AtomicBool::new(false),
            })
        };
        #[cfg(not(switchyard_loom))]
        {
            thread_local! {
                static ENTRY: Arc<Parked> = Arc::new(Parked {
                    thread: std::thread::current(),
                    notified: AtomicBool::new(false),
                });
            }
            // A wait in a thread-local destructor, after ours is gone, gets an entry of its own.
            ENTRY
                .try_with(|entry| {
                    // No notifier holds it for this wait: the last one set the flag under the lock
                    // before the last wait left (see `ParkedThreads::leave`).
                    entry.notified.store(false, Ordering::Relaxed);
                    entry.clone()
                })
                .unwrap_or_else(|_| fresh())
        }
        #[cfg(switchyard_loom)]
        fresh()
    }

    /// Parks until notified or `deadline`; whether it was notified.
    fn park(&self, deadline: Option<Instant>) -> bool {
        loop {
            if self.notified.load(Ordering::Acquire) {
                return true;
            }
            match deadline {
                None => crate::sync::park(),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return self.notified.load(Ordering::Acquire);
                    }
                    crate::sync::park_timeout(d - now);
                }
            }
        }
    }
}

/// The list of parked threads. Empty and unallocated until a thread first waits.
#[derive(Debug, Default)]
pub(crate) struct ParkedThreads {
    list: once_cell::race::OnceBox<Mutex<Vec<Arc<Parked>>>>,
}

impl ParkedThreads {
    fn lock(&self) -> Option<MutexGuard<'_, Vec<Arc<Parked>>>> {
        let list = self.list.get()?;
        Some(list.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Puts this thread on the list; the caller announces itself next, then re-checks.
    pub(crate) fn enter(&self) -> Arc<Parked> {
        let entry = Parked::for_this_thread();
        self.list
            .get_or_init(Box::default)
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(entry.clone());
        entry
    }

    /// Parks the thread of `entry` until a notifier takes it or `deadline` passes; whether it was
    /// notified.
    pub(crate) fn park(entry: &Parked, deadline: Option<Instant>) -> bool {
        entry.park(deadline)
    }

    /// Takes `entry` off the list if no notifier did; returns whether one did (it was notified).
    pub(crate) fn leave(&self, entry: &Arc<Parked>) -> bool {
        let Some(mut list) = self.lock() else {
            return false;
        };
        match list.iter().position(|e| Arc::ptr_eq(e, entry)) {
            Some(at) => {
                list.remove(at);
                false
            }
            None => true,
        }
    }

    /// Wakes up to `n` parked threads, the longest parked first; returns how many it woke.
    pub(crate) fn wake(&self, n: usize) -> usize {
        if n == 1 {
            let first = self.lock().and_then(|mut list| {
                let first = (!list.is_empty()).then(|| list.remove(0))?;
                first.notified.store(true, Ordering::Release);
                Some(first)
            });
            // Unparked after the lock is released: see the module docs.
            return first.map_or(0, |entry| {
                entry.thread.unpark();
                1
            });
        }
        let taken: Vec<Arc<Parked>> = self.lock().map_or_else(Vec::new, |mut list| {
            let k = n.min(list.len());
            let taken: Vec<_> = list.drain(..k).collect();
            for entry in &taken {
                entry.notified.store(true, Ordering::Release);
            }
            taken
        });
        for entry in &taken {
            entry.thread.unpark();
        }
        taken.len()
    }
}
