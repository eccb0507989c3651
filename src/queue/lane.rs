//! A lane: a bounded lock-free MPMC queue that allocates nothing until its first message.
//!
//! # Two kinds, chosen by capacity
//! - **Array** (capacity up to [`ARRAY_UP_TO`], the default 256 among them): crossbeam's `ArrayQueue`
//!   (Vyukov's bounded array queue, one read-modify-write per push and per pop), allocated whole at the
//!   first push and kept until the lane goes. An idle subscription that never got a message holds no
//!   slots; one that did holds `capacity × 16` bytes of them.
//! - **Segmented** (larger capacities): crossbeam's `SegQueue` (linked blocks of 31 slots, allocated as
//!   the tail reaches them and freed as the head leaves them) with the bound kept beside it in one
//!   atomic count, the two allocated together at the first push (384 bytes: the queue's ends are
//!   padded to cache lines). Its memory follows its depth: a drained lane holds the one block its head
//!   and tail are in (504 bytes for a `Message`), a lane holding `n` messages about `n / 31 + 1` blocks,
//!   whatever its capacity.
//!
//! Why not segmented everywhere: each segmented push and pop is two read-modify-writes instead of
//! one, the bound adds one on each side on a line both sides write, and a block is allocated and freed
//! every 31 messages. On the `throughput` benches a segmented lane runs single-thread publish + receive
//! at about two thirds of an array lane's rate, and the cross-thread 1→1 batch at under a third. Deep
//! queues (large capacities), where holding every slot would cost the most, get the segments; ordinary
//! ones keep the array's speed.
//!
//! # The segmented lane's bound
//! `len` counts the messages queued plus the pushes that have reserved a place and not yet finished:
//! - a push *reserves* first, with a compare-and-swap that raises `len` only while it is below the
//!   capacity, then pushes into the queue; a push that finds `len == capacity` takes nothing, so a
//!   refusal never makes another push fail (a `fetch_add` then undo would: two pushes at `capacity - 1`
//!   could both be refused);
//! - a pop takes a message from the queue, then lowers `len` (it *releases* the place);
//! - an evicting push ([`Lane::force_push`]) that finds the lane full takes the oldest message and puts
//!   its own in the place that message held, leaving `len` alone: the place changes hands, it is never
//!   released and re-reserved, so no other push can take it in between and one eviction makes room for
//!   exactly one message. If the queue has nothing to take (the places are held by pushes still in
//!   flight, or receivers took the messages since), it tries to reserve again.
//!
//! Since a place is reserved before its message enters the queue and released after it leaves, the
//! queue never holds more than `len <= capacity` messages. `len` is exact whenever no push or pop is in
//! flight, and in flight it may count a message whose push has not finished (never one already taken).
//!
//! # Memory ordering
//! The queue orders the messages themselves (a push happens-before the pop that takes it). `len` is one
//! atomic, so all its read-modify-writes are in one modification order and the bound holds with any
//! ordering; the read-modify-writes are `AcqRel` so that a push reserving a place freed by a pop also
//! sees that pop, which costs nothing on x86 (every RMW is a full barrier there). The loom models
//! (`loom_*` below) drive this code through the `sync` facade.
//!
//! # What the segmented lane costs
//! Each push and each pop writes `len`, a line both sides write: one more line that moves between the
//! publishing and the receiving core per message than the array queue has; what that costs in
//! throughput is above.

use std::sync::OnceLock;

use crate::sync::{AtomicUsize, BoundedQueue, Ordering, UnboundedQueue};

/// The largest capacity whose lane is an array (every slot allocated at the first push); above it a
/// lane is segmented (blocks allocated as it fills and freed as it drains). See the [module docs](self).
pub(crate) const ARRAY_UP_TO: usize = 1024;

/// A bounded lock-free MPMC queue that allocates nothing until its first push. See the
/// [module docs](self).
///
/// `S` is a small piece of its owner's state kept beside the slots (`()` by default): a subscription
/// keeps its other lanes there (see [`crate::queue::lanes`]).
#[derive(Debug)]
pub(crate) struct Lane<T, S = ()> {
    slots: Slots<T>,
    capacity: usize,
    owner_state: S,
}

/// Where a lane keeps its messages.
#[derive(Debug)]
enum Slots<T> {
    /// Capacity up to [`ARRAY_UP_TO`]: crossbeam's `ArrayQueue`, allocated whole at the first push and
    /// kept until the lane goes.
    Array(OnceLock<Box<BoundedQueue<T>>>),
    /// Larger capacities: crossbeam's `SegQueue` and its bound, allocated together at the first push
    /// (boxed, so an idle lane does not carry the segment queue's padded ends).
    Segmented(OnceLock<Box<Segments<T>>>),
}

/// A segmented lane's queue and bound.
#[derive(Debug)]
struct Segments<T> {
    queue: UnboundedQueue<T>,
    /// Messages queued plus places reserved by pushes in flight; never above the capacity.
    len: AtomicUsize,
}

impl<T> Segments<T> {
    fn new() -> Box<Self> {
        Box::new(Self {
            queue: UnboundedQueue::default(),
            len: AtomicUsize::new(0),
        })
    }
}

impl<T> Lane<T> {
    /// An empty lane of `capacity` places. Allocates nothing until the first push.
    ///
    /// # Panics
    /// If `capacity` is zero.
    pub(crate) fn new(capacity: usize) -> Self {
        Self::with_owner_state(capacity, (), false)
    }

    /// An empty segmented lane whatever its capacity, for the tests and models of the bound.
    ///
    /// Its queue and bound are allocated here rather than at the first push: loom cannot see the
    /// `OnceLock`'s synchronisation, so a model whose threads race to allocate them would report the
    /// other thread's use of the new atomics as unordered. The models are of the bound; the lazy
    /// allocation is the standard library's, and is tested without loom on a lane from [`Lane::new`].
    #[cfg(test)]
    pub(crate) fn segmented(capacity: usize) -> Self {
        let mut lane = Self::new(capacity);
        lane.slots = Slots::Segmented(OnceLock::from(Segments::new()));
        lane
    }
}

impl<T, S> Lane<T, S> {
    /// An empty lane of `capacity` places with `owner_state` beside its slots: an array up to
    /// [`ARRAY_UP_TO`], segmented above. With `preallocate`, its slots (an array's all of them, a
    /// segmented lane's queue, bound and first block) are allocated now rather than at the first push.
    ///
    /// # Panics
    /// If `capacity` is zero.
    pub(crate) fn with_owner_state(capacity: usize, owner_state: S, preallocate: bool) -> Self {
        assert!(capacity > 0, "a lane needs a capacity of at least one");
        let slots = if capacity <= ARRAY_UP_TO {
            Slots::Array(OnceLock::new())
        } else {
            Slots::Segmented(OnceLock::new())
        };
        let lane = Self {
            slots,
            capacity,
            owner_state,
        };
        if preallocate {
            lane.view().allocate();
        }
        lane
    }

    /// The state kept beside the slots.
    #[inline]
    pub(crate) fn owner_state(&self) -> &S {
        &self.owner_state
    }

    /// The lane without its owner's state, to push and pop with.
    #[inline]
    pub(crate) fn view(&self) -> LaneRef<'_, T> {
        LaneRef {
            slots: &self.slots,
            capacity: self.capacity,
        }
    }

    /// The most messages the lane holds.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Messages queued now; exact when no push or pop is in flight.
    pub(crate) fn len(&self) -> usize {
        self.view().len()
    }

    /// See [`LaneRef::pop`].
    #[inline]
    pub(crate) fn pop(&self) -> Option<T> {
        self.view().pop()
    }
}

/// A [`Lane`] without whatever its owner keeps beside it: what pushes and pops work on. A reference
/// and the capacity, passed by value.
#[derive(Debug)]
pub(crate) struct LaneRef<'a, T> {
    slots: &'a Slots<T>,
    capacity: usize,
}

impl<T> Clone for LaneRef<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for LaneRef<'_, T> {}

impl<T> LaneRef<'_, T> {
    /// The most messages the lane holds.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Messages queued now; exact when no push or pop is in flight.
    pub(crate) fn len(&self) -> usize {
        match self.slots {
            Slots::Array(array) => array.get().map_or(0, |q| q.len()),
            Slots::Segmented(segments) => {
                segments.get().map_or(0, |s| s.len.load(Ordering::Acquire))
            }
        }
    }

    /// An array lane's queue, allocated by the first caller. Publisher side.
    #[inline]
    fn array<'q>(&self, array: &'q OnceLock<Box<BoundedQueue<T>>>) -> &'q BoundedQueue<T> {
        array.get_or_init(|| Box::new(BoundedQueue::new(self.capacity)))
    }

    /// A segmented lane's queue and bound, allocated by the first caller. Publisher side.
    #[inline]
    fn segments(segments: &OnceLock<Box<Segments<T>>>) -> &Segments<T> {
        segments.get_or_init(Segments::new)
    }

    /// Allocates the slots now, as the first push would (the same initialisers).
    fn allocate(&self) {
        match self.slots {
            Slots::Array(array) => {
                self.array(array);
            }
            Slots::Segmented(segments) => {
                Self::segments(segments);
            }
        }
    }

    /// Reserves a place in a segmented lane if it is not full.
    #[inline]
    fn reserve(&self, len: &AtomicUsize) -> bool {
        let mut now = len.load(Ordering::Relaxed);
        while now < self.capacity {
            match len.compare_exchange_weak(now, now + 1, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => return true,
                Err(seen) => now = seen,
            }
        }
        false
    }

    /// Queues `value`, or hands it back when the lane is full.
    #[inline]
    pub(crate) fn push(&self, value: T) -> Result<(), T> {
        match self.slots {
            Slots::Array(array) => self.array(array).push(value),
            Slots::Segmented(segments) => {
                let segments = Self::segments(segments);
                if self.reserve(&segments.len) {
                    segments.queue.push(value);
                    Ok(())
                } else {
                    Err(value)
                }
            }
        }
    }

    /// Queues `value`; when the lane is full, takes the oldest message out to make room and returns it.
    #[inline]
    pub(crate) fn force_push(&self, value: T) -> Option<T> {
        let (queue, len) = match self.slots {
            Slots::Array(array) => return self.array(array).force_push(value),
            Slots::Segmented(segments) => {
                let segments = Self::segments(segments);
                (&segments.queue, &segments.len)
            }
        };
        loop {
            if self.reserve(len) {
                queue.push(value);
                return None;
            }
            if let Some(oldest) = queue.pop() {
                // The evicted message's place passes to `value`: `len` does not change.
                queue.push(value);
                return Some(oldest);
            }
            // Full by count, nothing to take: pushes in flight hold the places, or receivers took the
            // messages a moment ago. Reserve again.
            crate::sync::spin_loop();
        }
    }

    /// Takes the oldest message.
    #[inline]
    pub(crate) fn pop(&self) -> Option<T> {
        match self.slots {
            Slots::Array(array) => array.get()?.pop(),
            Slots::Segmented(segments) => {
                let segments = segments.get()?;
                let (queue, len) = (&segments.queue, &segments.len);
                // An empty lane answers from its count: one load, where the queue's own emptiness
                // check costs a fence and a read of the publishers' line.
                if len.load(Ordering::Acquire) == 0 {
                    return None;
                }
                let value = queue.pop()?;
                len.fetch_sub(1, Ordering::AcqRel);
                Some(value)
            }
        }
    }
}

#[cfg(all(test, not(switchyard_loom)))]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64 as StdAtomicU64, AtomicUsize as StdAtomicUsize};

    use super::*;

    /// A lane of each kind with `capacity` places.
    fn both<T>(capacity: usize) -> [Lane<T>; 2] {
        [Lane::new(capacity), Lane::segmented(capacity)]
    }

    #[test]
    fn the_kind_follows_the_capacity_and_nothing_is_allocated_before_the_first_push() {
        let small = Lane::<u8>::new(ARRAY_UP_TO);
        assert!(matches!(&small.slots, Slots::Array(a) if a.get().is_none()));
        small.view().push(1).unwrap();
        assert!(matches!(&small.slots, Slots::Array(a) if a.get().is_some()));
        // A pop or a length on an untouched lane allocates nothing either.
        let idle = Lane::<u8>::new(8);
        assert_eq!((idle.pop(), idle.len()), (None, 0));
        assert!(matches!(&idle.slots, Slots::Array(a) if a.get().is_none()));
        let large = Lane::<u8>::new(ARRAY_UP_TO + 1);
        assert!(matches!(&large.slots, Slots::Segmented(s) if s.get().is_none()));
        assert_eq!((large.pop(), large.len()), (None, 0));
        assert!(matches!(&large.slots, Slots::Segmented(s) if s.get().is_none()));
        large.view().push(1).unwrap();
        assert!(matches!(&large.slots, Slots::Segmented(s) if s.get().is_some()));
        assert_eq!((large.len(), large.pop()), (1, Some(1)));
    }

    #[test]
    fn a_preallocated_lane_has_its_slots_before_the_first_push_and_works_the_same() {
        let small = Lane::<u8, ()>::with_owner_state(ARRAY_UP_TO, (), true);
        assert!(matches!(&small.slots, Slots::Array(a) if a.get().is_some()));
        let large = Lane::<u8, ()>::with_owner_state(ARRAY_UP_TO + 1, (), true);
        assert!(matches!(&large.slots, Slots::Segmented(s) if s.get().is_some()));
        for lane in [small, large] {
            assert_eq!((lane.len(), lane.pop()), (0, None));
            for i in 0..100 {
                lane.view().push(i).unwrap();
            }
            assert_eq!(lane.len(), 100);
            assert!((0..100).all(|i| lane.pop() == Some(i)));
        }
        // Full at its capacity, as a lazy lane is.
        let tiny = Lane::<u8, ()>::with_owner_state(2, (), true);
        assert_eq!(
            (
                tiny.view().push(1),
                tiny.view().push(2),
                tiny.view().push(3)
            ),
            (Ok(()), Ok(()), Err(3))
        );
    }

    #[test]
    fn smoke() {
        for lane in both(2) {
            assert_eq!(lane.view().push(1), Ok(()));
            assert_eq!(lane.pop(), Some(1));
            assert_eq!(lane.pop(), None);
            assert_eq!(lane.len(), 0);
        }
    }

    #[test]
    fn a_full_lane_refuses_exactly_over_capacity() {
        for lane in both(3) {
            for i in 0..3 {
                assert_eq!(lane.view().push(i), Ok(()));
            }
            assert_eq!(lane.view().push(3), Err(3));
            assert_eq!(lane.len(), 3);
            assert_eq!(lane.pop(), Some(0));
            assert_eq!(lane.view().push(4), Ok(()));
            assert_eq!(lane.view().push(5), Err(5));
            assert_eq!(
                (0..3).map(|_| lane.pop()).collect::<Vec<_>>(),
                [Some(1), Some(2), Some(4)]
            );
        }
    }

    #[test]
    fn force_push_evicts_the_oldest_only_when_full() {
        for lane in both(2) {
            assert_eq!(lane.view().force_push(1), None);
            assert_eq!(lane.view().force_push(2), None);
            assert_eq!(lane.view().force_push(3), Some(1));
            assert_eq!(lane.view().force_push(4), Some(2));
            assert_eq!(lane.len(), 2);
            assert_eq!(lane.pop(), Some(3));
            assert_eq!(lane.view().force_push(5), None);
            assert_eq!(lane.pop(), Some(4));
            assert_eq!(lane.pop(), Some(5));
            assert_eq!(lane.len(), 0);
        }
    }

    #[test]
    #[should_panic(expected = "capacity of at least one")]
    fn zero_capacity_panics() {
        let _ = Lane::<u8>::new(0);
    }

    /// A lane of large capacity holds many blocks' worth and gives them back in order.
    #[test]
    fn fifo_across_many_blocks() {
        let lane = Lane::new(1 << 16);
        for i in 0..1000 {
            lane.view().push(i).unwrap();
        }
        assert_eq!(lane.len(), 1000);
        assert!((0..1000).all(|i| lane.pop() == Some(i)));
        assert_eq!(lane.pop(), None);
    }

    /// Messages left in a dropped lane are dropped with it (a static count of destructors proves it).
    #[test]
    fn drops() {
        static DROPS: StdAtomicUsize = StdAtomicUsize::new(0);
        struct Counted;
        impl Drop for Counted {
            fn drop(&mut self) {
                DROPS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
        for lane in both(100) {
            for _ in 0..70 {
                let _ = lane.view().push(Counted);
            }
            drop(lane.pop());
            drop(lane);
        }
        assert_eq!(DROPS.load(std::sync::atomic::Ordering::Relaxed), 140);
    }

    proptest::proptest! {
        /// Any sequence of pushes, evicting pushes and pops, on one thread, does what a `VecDeque`
        /// bounded by hand does: the same refusals, the same evictions, the same order, the same length.
        #[test]
        fn a_lane_behaves_like_a_bounded_deque(
            capacity in 1usize..70,
            ops in proptest::collection::vec(0u8..3, 0..400),
            segmented: bool,
        ) {
            let lane = if segmented { Lane::segmented(capacity) } else { Lane::new(capacity) };
            let mut model = std::collections::VecDeque::new();
            for (i, op) in ops.into_iter().enumerate() {
                match op {
                    0 => {
                        let want = if model.len() < capacity {
                            model.push_back(i);
                            Ok(())
                        } else {
                            Err(i)
                        };
                        proptest::prop_assert_eq!(lane.view().push(i), want);
                    }
                    1 => {
                        let evicted = (model.len() == capacity).then(|| model.pop_front()).flatten();
                        model.push_back(i);
                        proptest::prop_assert_eq!(lane.view().force_push(i), evicted);
                    }
                    _ => proptest::prop_assert_eq!(lane.pop(), model.pop_front()),
                }
                proptest::prop_assert_eq!(lane.len(), model.len());
            }
        }
    }

    /// Publishers and receivers hammer a small lane: nothing is lost or duplicated, the bound is never
    /// exceeded, and at quiescence every accepted message was taken, evicted or is still queued.
    #[test]
    fn mpmc_books_balance_under_contention() {
        use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
        const PER_THREAD: u64 = if cfg!(miri) { 200 } else { 50_000 };
        const CAPACITY: usize = 5;
        for (evicting, segmented) in [(false, false), (true, false), (false, true), (true, true)] {
            let lane = Arc::new(if segmented {
                Lane::segmented(CAPACITY)
            } else {
                Lane::new(CAPACITY)
            });
            // Counts and sums of the values that went in and came out.
            let (in_n, in_sum) = (
                Arc::new(StdAtomicU64::new(0)),
                Arc::new(StdAtomicU64::new(0)),
            );
            let (out_n, out_sum) = (
                Arc::new(StdAtomicU64::new(0)),
                Arc::new(StdAtomicU64::new(0)),
            );
            let done = Arc::new(AtomicBool::new(false));
            let came_out = {
                let (out_n, out_sum) = (out_n.clone(), out_sum.clone());
                move |v: u64| {
                    out_n.fetch_add(1, Relaxed);
                    out_sum.fetch_add(v, Relaxed);
                }
            };
            let publishers: Vec<_> = (0..2)
                .map(|_| {
                    let (lane, in_n, in_sum, came_out) =
                        (lane.clone(), in_n.clone(), in_sum.clone(), came_out.clone());
                    std::thread::spawn(move || {
                        for v in 1..=PER_THREAD {
                            let accepted = if evicting {
                                lane.view().force_push(v).map(&came_out);
                                true
                            } else {
                                lane.view().push(v).is_ok()
                            };
                            if accepted {
                                in_n.fetch_add(1, Relaxed);
                                in_sum.fetch_add(v, Relaxed);
                            }
                            assert!(lane.len() <= CAPACITY);
                        }
                    })
                })
                .collect();
            let receivers: Vec<_> = (0..2)
                .map(|_| {
                    let (lane, done, came_out) = (lane.clone(), done.clone(), came_out.clone());
                    std::thread::spawn(move || {
                        while !done.load(std::sync::atomic::Ordering::Acquire) {
                            lane.pop().map(&came_out);
                        }
                    })
                })
                .collect();
            for p in publishers {
                p.join().unwrap();
            }
            done.store(true, std::sync::atomic::Ordering::Release);
            for r in receivers {
                r.join().unwrap();
            }
            assert!(lane.len() <= CAPACITY);
            while let Some(v) = lane.pop() {
                came_out(v);
            }
            assert_eq!(lane.len(), 0);
            assert_eq!(
                in_n.load(Relaxed),
                out_n.load(Relaxed),
                "evicting: {evicting}"
            );
            assert_eq!(
                in_sum.load(Relaxed),
                out_sum.load(Relaxed),
                "evicting: {evicting}"
            );
            if evicting {
                assert_eq!(in_n.load(Relaxed), 2 * PER_THREAD);
            }
        }
    }
}

#[cfg(all(test, switchyard_loom))]
mod loom_models {
    use loom::sync::Arc;
    use loom::thread;

    use super::*;

    #[test]
    fn loom_two_pushers_at_capacity_one_never_both_succeed() {
        loom::model(|| {
            let lane = Arc::new(Lane::segmented(1));
            let other = {
                let lane = lane.clone();
                thread::spawn(move || lane.view().push(1).is_ok())
            };
            let here = lane.view().push(2).is_ok();
            let there = other.join().unwrap();
            assert!(here != there, "exactly one push fits: {here} {there}");
            assert_eq!(lane.len(), 1);
            assert!(lane.pop().is_some());
            assert_eq!(lane.len(), 0);
        });
    }

    /// A push racing a pop on a full lane of one: the push is refused only if it ran before the pop
    /// released the place, and the count is exact afterwards.
    #[test]
    fn loom_a_push_racing_a_pop_on_a_full_lane_keeps_the_count() {
        loom::model(|| {
            let lane = Arc::new(Lane::segmented(1));
            lane.view().push(1).unwrap();
            let receiver = {
                let lane = lane.clone();
                thread::spawn(move || lane.pop())
            };
            let pushed = lane.view().push(2).is_ok();
            assert_eq!(receiver.join().unwrap(), Some(1));
            assert_eq!(lane.len(), usize::from(pushed));
            assert_eq!(lane.pop().is_some(), pushed);
            assert_eq!(lane.len(), 0);
        });
    }

    /// An evicting push racing a pop on a full lane of one: every message ends exactly once, taken,
    /// evicted or still queued, and the lane never holds more than one. When the pop has taken its
    /// message but not yet released the place, the push finds the lane full by count with nothing to
    /// evict, and waits for the pop to finish.
    #[test]
    fn loom_an_evicting_push_racing_a_pop_accounts_for_every_message() {
        loom::model(|| {
            let lane = Arc::new(Lane::segmented(1));
            lane.view().push(1).unwrap();
            let pusher = {
                let lane = lane.clone();
                thread::spawn(move || lane.view().force_push(2))
            };
            let taken = lane.pop();
            let mut out: Vec<u32> = pusher.join().unwrap().into_iter().collect();
            out.extend(taken);
            let left = lane.len();
            assert!(left <= 1, "{left} queued in a lane of one");
            let rest = lane.pop();
            assert_eq!(rest.is_some(), left == 1, "the count and the queue agree");
            out.extend(rest);
            assert_eq!(lane.len(), 0);
            out.sort_unstable();
            assert_eq!(out, [1, 2]);
        });
    }

    /// Two evicting pushes on a full lane of one: exactly one eviction each, and the last message stays.
    #[test]
    fn loom_two_evicting_pushes_each_evict_exactly_one() {
        loom::model(|| {
            let lane = Arc::new(Lane::segmented(1));
            lane.view().push(1).unwrap();
            let other = {
                let lane = lane.clone();
                thread::spawn(move || lane.view().force_push(2))
            };
            let here = lane.view().force_push(3);
            let there = other.join().unwrap();
            assert_eq!(lane.len(), 1);
            let mut out: Vec<u32> = here.into_iter().chain(there).chain(lane.pop()).collect();
            out.sort_unstable();
            assert_eq!(out, [1, 2, 3]);
        });
    }

    /// The parking handshake of [`crate::sync::waiters`] over a real lane: a receiver announces itself and
    /// then pops (the empty check reads the count); a publisher pushes and then looks for waiters.
    /// Either the receiver finds the message or the publisher sees it waiting and would wake it.
    #[test]
    fn loom_a_receiver_about_to_park_finds_the_message_or_is_seen_waiting() {
        loom::model(|| {
            let lane = Arc::new(Lane::segmented(2));
            let waiters = Arc::new(crate::sync::waiters::WaiterCount::default());
            let publisher = {
                let (lane, waiters) = (lane.clone(), waiters.clone());
                thread::spawn(move || {
                    lane.view().push(1).unwrap();
                    waiters.anyone_waiting()
                })
            };
            waiters.announce();
            let found = lane.pop().is_some();
            let seen_waiting = publisher.join().unwrap();
            assert!(
                found || seen_waiting,
                "a message stranded beside a parked receiver"
            );
        });
    }
}
