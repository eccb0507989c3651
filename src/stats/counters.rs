//! Per-subscription counters, unpadded, beside the subscription's other fields.
//!
//! The accounting rule every test and the dashboard rely on, per subscription:
//!
//! ```text
//! matched = delivered + dropped + depth + in_flight
//! ```
//!
//! holds exactly whenever no publish or receive is in flight (`in_flight` is 0 except on acknowledged
//! subscriptions, where `delivered` counts acks and `in_flight` is the in-flight table's size). Each counter is written by one side:
//! - publishers write `matched` and `high_water`, and the drop counters (only when something is
//!   dropped; receivers read their total on every receive to detect gaps). A `Publisher` handle
//!   writes no `matched` at all: every publish along its cached route is matched by each
//!   subscription of the route, so what it matched to one of them is its own publish count since it
//!   cached the route ([`RouteShare`]), which the subscription's `matched` includes;
//! - receivers write `delivered`.
//!
//! `depth` is not a counter: it is the queue's own length, which is exact at quiescence.
//!
//! # Layout
//! The counters are not cache-padded: a lane's count is written by both sides on every message anyway,
//! and padding would force the whole subscription core to a 128-byte alignment (a 512-byte
//! allocation for a 384-byte core).

use std::sync::Arc;

use crate::message::priority::{DroppedByPriority, Priority};
use crate::message::reason::{DropReason, DroppedByReason};
use crate::sync::{AtomicU64, Mutex, MutexGuard, Ordering};

/// Written by publishers on every routed message.
#[derive(Debug, Default)]
struct PublishSide {
    matched: AtomicU64,
    high_water: AtomicU64,
}

/// Written only when a message is dropped; read by receivers on every receive to notice gaps.
#[derive(Debug, Default)]
struct DropSide {
    total: AtomicU64,
    by_reason: [AtomicU64; DropReason::COUNT],
    by_priority: [AtomicU64; 4],
}

/// Written by receivers.
#[derive(Debug, Default)]
struct ReceiveSide {
    delivered: AtomicU64,
}

/// The monotonic counters of one subscription. See the [module docs](self).
#[derive(Debug, Default)]
pub(crate) struct SubscriptionCounters {
    sides: Sides,
}

/// The three groups of counters.
#[derive(Debug, Default)]
struct Sides {
    publish: PublishSide,
    drops: DropSide,
    receive: ReceiveSide,
}

/// How often (in matched messages) a publisher samples the queue length for `high_water`. Reading the
/// length touches the receivers' cache line, so doing it on every push would cost the data path a cache
/// miss; sampling keeps the cost small, and the mark is also raised to the capacity whenever the queue is
/// found full and to the current depth whenever stats are taken, so `depth <= high_water` in every snapshot.
pub(crate) const HIGH_WATER_SAMPLE_EVERY: u64 = 32;

impl SubscriptionCounters {
    /// Counts `n` matched messages; returns the `matched` count before them.
    #[inline]
    pub(crate) fn add_matched(&self, n: u64) -> u64 {
        self.sides.publish.matched.fetch_add(n, Ordering::Relaxed)
    }

    #[inline]
    pub(crate) fn raise_high_water(&self, depth: u64) {
        if self.sides.publish.high_water.load(Ordering::Relaxed) < depth {
            self.sides
                .publish
                .high_water
                .fetch_max(depth, Ordering::Relaxed);
        }
    }

    #[inline]
    pub(crate) fn add_delivered(&self, n: u64) {
        self.sides.receive.delivered.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts `n` drops of `priority` messages for `reason`. The reason's counter is raised before the
    /// total (release), so a reader that sees a total (acquire, [`Self::dropped_total`]) sees every
    /// reason that makes it up. The per-priority split is informational (stats only) and relaxed.
    #[inline]
    pub(crate) fn add_dropped(&self, reason: DropReason, priority: Priority, n: u64) {
        self.sides.drops.by_priority[priority.index()].fetch_add(n, Ordering::Relaxed);
        self.sides.drops.by_reason[reason.index()].fetch_add(n, Ordering::Relaxed);
        self.sides.drops.total.fetch_add(n, Ordering::Release);
    }

    pub(crate) fn dropped_by_priority(&self) -> DroppedByPriority {
        DroppedByPriority::from_array(std::array::from_fn(|i| {
            self.sides.drops.by_priority[i].load(Ordering::Relaxed)
        }))
    }

    /// All drops so far; one load, cheap while nothing is being dropped.
    #[inline]
    pub(crate) fn dropped_total(&self) -> u64 {
        self.sides.drops.total.load(Ordering::Acquire)
    }

    pub(crate) fn dropped_by_reason(&self) -> DroppedByReason {
        DroppedByReason::from_array(std::array::from_fn(|i| {
            self.sides.drops.by_reason[i].load(Ordering::Relaxed)
        }))
    }

    pub(crate) fn matched(&self) -> u64 {
        self.sides.publish.matched.load(Ordering::Relaxed)
    }

    pub(crate) fn delivered(&self) -> u64 {
        self.sides.receive.delivered.load(Ordering::Relaxed)
    }

    pub(crate) fn high_water(&self) -> u64 {
        self.sides.publish.high_water.load(Ordering::Relaxed)
    }
}

/// Where a count goes: the shared counter every publisher writes, or a `Publisher` handle's own
/// (`T`: its counts of the broker's publishes, [`HandleCounts`]).
#[derive(Debug, Clone, Copy)]
pub(crate) enum CountIn<'a, T> {
    /// The shared counter: `Broker::publish` and friends.
    Shared,
    /// A publisher handle's own, which only that handle writes.
    Handle(&'a T),
}

/// How an offer's `matched` is counted.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Matched {
    /// In the subscription's shared counter: `Broker::publish` and friends, replays.
    Shared,
    /// Already, by a `Publisher` handle's publish count along its cached route ([`RouteShare`]),
    /// which stood at `before` ahead of this offer.
    ByHandle { before: u64 },
}

/// One `Publisher` handle's publish counts.
///
/// Only its handle writes them ([`OwnCount`]): no locked instruction, and no cache line shared with
/// other publishers. `published` is counted before a publish is offered along the cached route, so
/// it also stands for what the route's subscriptions matched ([`RouteShare`]).
#[derive(Debug, Default)]
pub(crate) struct HandleCounts {
    published: crossbeam_utils::CachePadded<OwnCount>,
    unrouted: OwnCount,
}

impl HandleCounts {
    /// Counts `n` publishes (unrouted: they matched nothing); returns the publish count before them.
    #[inline]
    pub(crate) fn add(&self, n: u64, unrouted: bool) -> u64 {
        if unrouted {
            self.unrouted.add(n);
        }
        self.published.add(n)
    }

    /// Publishes so far.
    pub(crate) fn published(&self) -> u64 {
        self.published.get()
    }

    /// Publishes that matched no subscription so far.
    pub(crate) fn unrouted(&self) -> u64 {
        self.unrouted.get()
    }
}

/// What one `Publisher` handle matched to one subscription of its cached route, derived instead of
/// counted: the handle's publishes since it cached the route (`base`), less those the
/// subscription's replay handed out instead (`replayed`, which the replay counts matched itself).
///
/// A count of its own per route would cost every publish a write to one more cache line per
/// subscription it reaches: at 100,000 handles, one per topic, each of those lines is cold
/// (`examples/many_handles_cpu`: the publisher is 1.13× [1.03–1.21] as fast without it).
#[derive(Debug)]
pub(crate) struct RouteShare {
    handle: Arc<HandleCounts>,
    base: u64,
    replayed: OwnCount,
}

impl RouteShare {
    /// Messages matched through this share so far. The handle counts a publish before it offers it
    /// and counts `replayed` after, so a reader on another thread may see the latter first: the
    /// subtraction saturates, and is exact whenever no publish is in flight.
    pub(crate) fn matched(&self) -> u64 {
        self.handle
            .published()
            .saturating_sub(self.base + self.replayed.get())
    }

    /// `n` messages of this route went to the subscription's replay instead of its queue.
    #[inline]
    pub(crate) fn count_replayed(&self, n: u64) {
        self.replayed.add(n);
    }
}

/// A count that only one handle writes: a [`crate::Publisher`]'s publishes, or the messages it
/// matched to one subscription.
///
/// A shared counter would cost every publish a locked read-modify-write on a line other threads
/// write too, a sizeable share of the cross-thread 1→1 hop. Only its handle writes this one (publishing takes
/// `&mut Publisher`), so it counts with a plain load and store. Readers add it to the shared count
/// through [`LiveCounts`].
#[derive(Debug, Default)]
pub(crate) struct OwnCount(AtomicU64);

impl OwnCount {
    /// Counts `n`; returns the count before them. Single writer: see the type.
    #[inline]
    pub(crate) fn add(&self, n: u64) -> u64 {
        let before = self.0.load(Ordering::Relaxed);
        self.0.store(before + n, Ordering::Relaxed);
        before
    }

    pub(crate) fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// The own counts ([`OwnCount`]s, or a struct of them) of the live handles that count into one shared
/// count: a broker's publish counts, a subscription's `matched`.
///
/// A reading is the shared count plus every live handle's, taken under this list's lock; a handle
/// that goes folds its counts into the shared ones under the same lock, in the same step as it
/// leaves the list, so no reader counts them twice or not at all. Exact whenever nothing is in
/// flight, like every other count.
///
/// Registering and folding are O(1) whatever the number of live handles: each handle keeps its slot
/// in the list ([`LiveCount`]), and a freed slot is reused by the next registration. A service that
/// keeps one `Publisher` per device topic creates, refreshes and drops handles by the hundred
/// thousand; a fold that searched the list would make that quadratic.
#[derive(Debug)]
pub(crate) struct LiveCounts<T>(Mutex<Slots<T>>);

/// The slots of a [`LiveCounts`]: the live handles' counts, and the slots free for reuse.
#[derive(Debug)]
struct Slots<T> {
    live: Vec<Option<Arc<T>>>,
    free: Vec<usize>,
}

/// One live handle's counts and its slot in the [`LiveCounts`] it was registered with.
#[derive(Debug)]
pub(crate) struct LiveCount<T> {
    counts: Arc<T>,
    slot: usize,
}

impl<T> std::ops::Deref for LiveCount<T> {
    type Target = T;

    #[inline]
    fn deref(&self) -> &T {
        &self.counts
    }
}

impl<T> Default for LiveCounts<T> {
    fn default() -> Self {
        Self(Mutex::new(Slots {
            live: Vec::new(),
            free: Vec::new(),
        }))
    }
}

impl<T: Default> LiveCounts<T> {
    /// A new handle's counts, included in [`Self::sum`] until [`Self::fold`].
    pub(crate) fn register(&self) -> LiveCount<T> {
        self.register_value(T::default())
    }
}

impl LiveCounts<RouteShare> {
    /// A route share for the handle that counts `handle`, from its publish count now: included in
    /// [`Self::sum`] until [`Self::fold`].
    pub(crate) fn register_route(&self, handle: &LiveCount<HandleCounts>) -> LiveCount<RouteShare> {
        self.register_value(RouteShare {
            handle: handle.counts.clone(),
            base: handle.published(),
            replayed: OwnCount::default(),
        })
    }
}

impl<T> LiveCounts<T> {
    fn register_value(&self, counts: T) -> LiveCount<T> {
        let counts = Arc::new(counts);
        let mut slots = self.slots();
        let slot = match slots.free.pop() {
            Some(slot) => {
                slots.live[slot] = Some(counts.clone());
                slot
            }
            None => {
                slots.live.push(Some(counts.clone()));
                slots.live.len() - 1
            }
        };
        LiveCount { counts, slot }
    }

    /// A handle is going: `into_shared` adds its counts to the shared ones while it leaves the list.
    pub(crate) fn fold(&self, handle: &LiveCount<T>, into_shared: impl FnOnce(&T)) {
        let mut slots = self.slots();
        let left = slots.live[handle.slot].take();
        debug_assert!(
            left.is_some_and(|c| Arc::ptr_eq(&c, &handle.counts)),
            "a handle folds once, from the list it was registered with"
        );
        into_shared(&handle.counts);
        slots.free.push(handle.slot);
    }

    /// `shared()` (read under the lock) plus every live handle's counts, added with `add`.
    pub(crate) fn sum<A>(&self, shared: impl FnOnce() -> A, add: impl FnMut(A, &Arc<T>) -> A) -> A {
        let slots = self.slots();
        slots.live.iter().flatten().fold(shared(), add)
    }

    fn slots(&self) -> MutexGuard<'_, Slots<T>> {
        // The slots stay valid if a holder panicked: every change to them is completed before
        // anything that could panic.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One receiver's view of the drop counters, to tell it in-band what it missed since its last receive.
///
/// `check` compares the subscription's drop total with the total this receiver saw last (one load of a
/// line written only on drops); only when they differ does it advance its per-reason marks and report
/// the difference. Each per-reason mark only moves forward (`fetch_max`), so when several threads share
/// one receiver handle, every drop is reported exactly once in total, to one of them. The ordering argument: `add_dropped`
/// raises a reason before the total (release) and `check` reads the total (acquire) before the reasons,
/// so a total that `check` records as seen never runs ahead of the reasons it swapped. The loom model
/// `loom_gap_tracker_reports_each_drop_exactly_once` checks this.
#[derive(Debug)]
pub(crate) struct GapTracker {
    seen_total: AtomicU64,
    seen_by_reason: [AtomicU64; DropReason::COUNT],
}

impl GapTracker {
    /// A tracker that has already seen every drop counted so far.
    pub(crate) fn new(counters: &SubscriptionCounters) -> Self {
        let total = counters.dropped_total();
        let seen = counters.dropped_by_reason();
        Self {
            seen_total: AtomicU64::new(total),
            seen_by_reason: DropReason::ALL.map(|reason| AtomicU64::new(seen.get(reason))),
        }
    }

    /// Drops since the previous check, by reason; `None` when there were none.
    #[inline]
    pub(crate) fn check(&self, counters: &SubscriptionCounters) -> Option<DroppedByReason> {
        let total = counters.dropped_total();
        if total == self.seen_total.load(Ordering::Relaxed) {
            return None;
        }
        self.seen_total.store(total, Ordering::Relaxed);
        let delta: [u64; DropReason::COUNT] = std::array::from_fn(|i| {
            let now = counters.sides.drops.by_reason[i].load(Ordering::Relaxed);
            // `fetch_max`, not `swap`: a thread holding an older reading must not move the mark back,
            // or a later check would report the same drops again.
            let before = self.seen_by_reason[i].fetch_max(now, Ordering::Relaxed);
            now.saturating_sub(before)
        });
        let delta = DroppedByReason::from_array(delta);
        (delta.total() > 0).then_some(delta)
    }
}

#[cfg(all(test, switchyard_loom))]
mod loom_models {
    use loom::sync::Arc;
    use loom::thread;

    use super::*;

    #[test]
    fn loom_gap_tracker_reports_each_drop_exactly_once() {
        // Two preemptions find the lost-update bug a `swap` instead of `fetch_max` would have, and
        // keep the model to seconds rather than minutes.
        let mut model = loom::model::Builder::new();
        model.preemption_bound = Some(2);
        model.check(|| {
            let counters = Arc::new(SubscriptionCounters::default());
            let tracker = Arc::new(GapTracker::new(&counters));
            let dropper = {
                let c = counters.clone();
                thread::spawn(move || {
                    c.add_dropped(DropReason::QueueFull, Priority::Normal, 1);
                    c.add_dropped(DropReason::Evicted, Priority::High, 1);
                })
            };
            let other_receiver = {
                let (c, t) = (counters.clone(), tracker.clone());
                thread::spawn(move || t.check(&c).map_or(0, |d| d.total()))
            };
            let here = tracker.check(&counters).map_or(0, |d| d.total());
            dropper.join().unwrap();
            let there = other_receiver.join().unwrap();
            let rest = tracker.check(&counters).map_or(0, |d| d.total());
            assert_eq!(here + there + rest, 2);
        });
    }
}
