//! The primitives the crate's own synchronisation is written with, in the style of tokio's `loom`
//! module: `std`'s atomics and mutex and crossbeam's lock-free queues normally; under
//! `cfg(switchyard_loom)`, loom's atomics and mutex and queues built on loom's mutex, so the loom
//! models (`loom_*` tests in the modules that use them) drive the real subscription code and loom sees
//! every step that another thread can observe, including each push and pop.

pub(crate) mod arc_cell;
pub(crate) mod barrier;
pub(crate) mod clock;
pub(crate) mod parked;
pub(crate) mod prefetch;
pub(crate) mod spin;
pub(crate) mod waiters;

#[cfg(switchyard_loom)]
pub(crate) use loom::sync::atomic::{
    AtomicBool, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering, fence,
};

#[cfg(not(switchyard_loom))]
pub(crate) use std::sync::atomic::{
    AtomicBool, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering, fence,
};

/// A mutex: a ready list's scratch space for its taker, a subscription's list of publisher handles'
/// counters.
#[cfg(switchyard_loom)]
pub(crate) use loom::sync::{Mutex, MutexGuard};
#[cfg(not(switchyard_loom))]
pub(crate) use std::sync::{Mutex, MutexGuard};

#[cfg(switchyard_loom)]
pub(crate) use loom::thread::{Thread, current as current_thread, park};
/// Parking a thread in a blocking wait ([`parked`]): `std`'s normally, loom's under loom.
#[cfg(not(switchyard_loom))]
pub(crate) use std::thread::{Thread, current as current_thread, park, park_timeout};

/// Under loom a deadline cannot pass: a timed park only lets another thread run (the models wait
/// without deadlines).
#[cfg(switchyard_loom)]
pub(crate) fn park_timeout(_: std::time::Duration) {
    loom::thread::yield_now();
}

/// A bounded MPMC queue with every slot allocated up front: a subscription's lane of ordinary
/// capacity ([`crate::queue::lane::Lane`]).
#[cfg(not(switchyard_loom))]
pub(crate) use crossbeam_queue::ArrayQueue as BoundedQueue;

/// An unbounded MPMC queue: a ready list, and the queue inside a subscription's lane of large capacity
/// ([`crate::queue::lane::Lane`], which keeps the bound itself).
#[cfg(not(switchyard_loom))]
pub(crate) use crossbeam_queue::SegQueue as UnboundedQueue;

#[cfg(switchyard_loom)]
pub(crate) use self::loom_queues::{BoundedQueue, UnboundedQueue};

/// A hint inside a retry loop that waits for another thread: a spin-loop hint normally; under loom a
/// yield, so the model runs the thread being waited for.
#[inline]
pub(crate) fn spin_loop() {
    #[cfg(not(switchyard_loom))]
    std::hint::spin_loop();
    #[cfg(switchyard_loom)]
    loom::thread::yield_now();
}

/// Queues with crossbeam's API (the part we use) on loom's mutex: linearizable, like crossbeam's, and
/// every operation a point where loom may switch threads.
#[cfg(switchyard_loom)]
mod loom_queues {
    use std::collections::VecDeque;

    use loom::sync::Mutex;

    #[derive(Debug)]
    pub(crate) struct BoundedQueue<T> {
        items: Mutex<VecDeque<T>>,
        capacity: usize,
    }

    impl<T> BoundedQueue<T> {
        pub(crate) fn new(capacity: usize) -> Self {
            Self {
                items: Mutex::new(VecDeque::new()),
                capacity,
            }
        }

        pub(crate) fn push(&self, value: T) -> Result<(), T> {
            let mut items = self.items.lock().unwrap();
            if items.len() == self.capacity {
                return Err(value);
            }
            items.push_back(value);
            Ok(())
        }

        pub(crate) fn force_push(&self, value: T) -> Option<T> {
            let mut items = self.items.lock().unwrap();
            let evicted = (items.len() == self.capacity)
                .then(|| items.pop_front())
                .flatten();
            items.push_back(value);
            evicted
        }

        pub(crate) fn pop(&self) -> Option<T> {
            self.items.lock().unwrap().pop_front()
        }

        pub(crate) fn len(&self) -> usize {
            self.items.lock().unwrap().len()
        }

        pub(crate) fn is_empty(&self) -> bool {
            self.items.lock().unwrap().is_empty()
        }
    }

    #[derive(Debug)]
    pub(crate) struct UnboundedQueue<T> {
        items: Mutex<VecDeque<T>>,
    }

    impl<T> Default for UnboundedQueue<T> {
        fn default() -> Self {
            Self {
                items: Mutex::new(VecDeque::new()),
            }
        }
    }

    impl<T> UnboundedQueue<T> {
        pub(crate) fn push(&self, value: T) {
            self.items.lock().unwrap().push_back(value);
        }

        pub(crate) fn pop(&self) -> Option<T> {
            self.items.lock().unwrap().pop_front()
        }

        pub(crate) fn len(&self) -> usize {
            self.items.lock().unwrap().len()
        }
    }
}
