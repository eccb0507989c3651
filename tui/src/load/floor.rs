//! The hand-written floor: the design the core must beat at many exact topics, written in the fewest
//! lines that do the job (`switchyard load --engine floor`, and the floor rows of `--scenarios`).
//!
//! - a mutex-held `HashMap` from each topic to its subscriptions; a [`FloorPublisher`] looks its
//!   route up there when it is made and again only when a subscription has been made since (a
//!   generation counter), as the core's `Publisher` caches its route;
//! - per subscription a bounded [`ArrayQueue`] and a ready flag;
//! - per consumer thread a [`SegQueue`] ready list: a publish that finds the flag clear sets it and
//!   pushes the subscription's key; the consumer pops keys, clears the flag and drains the queue
//!   (the generator's pooled consumers, so the same loop drives this and the core).
//!
//! It leaves out everything else the core does:
//! - no wildcards: filters are exact topics (`--filters exact`; anything else is refused);
//! - no policies but drop-newest, and `block:T` as a yield-and-retry until `T` passes (what the
//!   scenario table's flat-out rows use); drop-oldest is refused;
//! - no gap reports, priorities, retained messages, unsubscribing or closing;
//! - no per-subscription stats beyond counts (matched, delivered, dropped, depth).
//!
//! `--engine floor-lazy` ([`FloorEngine::lazy_slots`]) is the same floor with one difference of
//! memory: a subscription's queue is allocated at its first message, as the core's lanes are (what
//! keeps a core subscription that never got a message under 1 KiB; see `docs/memory.md`), rather than
//! when it is made. Beside the eager floor it prices that choice: at 100k topics a short run publishes
//! a few messages per topic, so the first message of each, and its allocation, is much of the work.
//!
//! Its books balance like the others': every offer is counted as matched, then either queued (and
//! later delivered) or dropped.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering, fence};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use crossbeam_queue::{ArrayQueue, SegQueue};
use switchyard::{Bytes, DroppedByReason, OverflowPolicy, StatsSnapshot, SubscriptionStats, Topic};

use super::engine::{Engine, ReadyList};

/// A message of the floor: topic and payload, allocated once and shared by its subscriptions.
pub type FloorMessage = Arc<(Arc<str>, Bytes)>;

/// A consumer's ready list: keys of subscriptions with messages, and a condition variable for the
/// consumer to park on when it is empty.
///
/// No lost wake-up: the publisher pushes, fences, then reads `parked`; the consumer sets `parked`
/// under the lock, fences, then looks at the list again before it waits. Either the consumer sees
/// the key or the publisher sees `parked` and notifies under the lock, after the consumer waits.
#[derive(Default)]
pub struct FloorReadyList {
    keys: SegQueue<u64>,
    parked: AtomicBool,
    lock: Mutex<()>,
    wake: Condvar,
}

impl FloorReadyList {
    fn push(&self, key: u64) {
        self.keys.push(key);
        fence(Ordering::SeqCst);
        if self.parked.load(Ordering::Relaxed) {
            let _guard = lock(&self.lock);
            self.wake.notify_one();
        }
    }
}

impl ReadyList for FloorReadyList {
    fn create() -> Arc<Self> {
        Arc::default()
    }

    fn try_ready(&self, out: &mut Vec<u64>) -> usize {
        let before = out.len();
        while let Some(key) = self.keys.pop() {
            out.push(key);
        }
        out.len() - before
    }

    fn wait_ready(&self, out: &mut Vec<u64>, timeout: Duration) -> usize {
        let n = self.try_ready(out);
        if n > 0 {
            return n;
        }
        let guard = lock(&self.lock);
        self.parked.store(true, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        if self.keys.is_empty() {
            drop(self.wake.wait_timeout(guard, timeout));
        }
        self.parked.store(false, Ordering::Relaxed);
        self.try_ready(out)
    }
}

/// One subscription: its queue, its ready flag and list, and its counts.
struct FloorSubscription {
    /// Made with the subscription, or at its first message under [`FloorEngine::lazy_slots`]. (Boxed
    /// either way, so the two differ only in when: boxing the eager floor's queue measured 1.03×
    /// [0.75–1.20] its inline queue, 5 interleaved rounds at 100k topics, publishes per CPU second.)
    queue: OnceLock<Box<ArrayQueue<FloorMessage>>>,
    capacity: usize,
    /// Set while the key is on `ready` (or being drained): a publish pushes the key only when it
    /// sets the flag.
    listed: AtomicBool,
    ready: Option<(Arc<FloorReadyList>, u64)>,
    policy: OverflowPolicy,
    id: u64,
    topic: String,
    /// Written by publishers.
    matched: AtomicU64,
    dropped: AtomicU64,
    /// Written by consumers, on a line of its own.
    delivered: Padded,
}

#[derive(Default)]
#[repr(align(128))]
struct Padded(AtomicU64);

impl FloorSubscription {
    /// Queues `msg` (retrying until the deadline under `block`); returns whether it was dropped.
    fn offer(&self, msg: &FloorMessage) -> bool {
        self.matched.fetch_add(1, Ordering::Relaxed);
        let queue = self
            .queue
            .get_or_init(|| Box::new(ArrayQueue::new(self.capacity)));
        let mut rejected = queue.push(msg.clone()).err();
        if let (Some(_), OverflowPolicy::Block { timeout }) = (&rejected, self.policy) {
            let deadline = Instant::now() + timeout;
            while let Some(m) = rejected.take() {
                std::thread::yield_now();
                match queue.push(m) {
                    Ok(()) => {}
                    Err(m) if Instant::now() < deadline => rejected = Some(m),
                    Err(m) => {
                        rejected = Some(m);
                        break;
                    }
                }
            }
        }
        if rejected.is_some() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return true;
        }
        if let Some((list, key)) = &self.ready
            && !self.listed.load(Ordering::Relaxed)
            && !self.listed.swap(true, Ordering::AcqRel)
        {
            list.push(*key);
        }
        false
    }

    /// The next queued message, if the queue was ever made and holds one.
    fn pop(&self) -> Option<FloorMessage> {
        self.queue.get().and_then(|q| q.pop())
    }

    fn stats(&self) -> SubscriptionStats {
        // Delivered and dropped before matched, so a snapshot under load never shows a negative depth.
        let delivered = self.delivered.0.load(Ordering::Relaxed);
        let dropped = self.dropped.load(Ordering::Relaxed);
        let matched = self.matched.load(Ordering::Relaxed);
        let depth = matched.saturating_sub(delivered + dropped);
        SubscriptionStats {
            id: self.id,
            name: format!("s{}", self.id),
            filter: self.topic.clone(),
            policy: self.policy.name().to_string(),
            capacity: self.capacity as u64,
            matched,
            delivered,
            dropped,
            dropped_by_reason: DroppedByReason {
                queue_full: dropped,
                ..DroppedByReason::default()
            },
            depth,
            high_water: depth,
            receivers: 1,
            ..SubscriptionStats::default()
        }
    }
}

type Route = Arc<[Arc<FloorSubscription>]>;

#[derive(Default)]
struct FloorShared {
    topics: Mutex<HashMap<Arc<str>, Route>>,
    /// Bumped on every subscribe, so publishers know their cached route may be stale.
    generation: AtomicU64,
    subscriptions: Mutex<Vec<Arc<FloorSubscription>>>,
    publishers: Mutex<Vec<Arc<PublisherCounts>>>,
}

#[derive(Default)]
#[repr(align(128))]
struct PublisherCounts {
    published: AtomicU64,
    unrouted: AtomicU64,
}

/// The floor broker. Cheap to clone.
#[derive(Clone)]
pub struct FloorEngine {
    shared: Arc<FloorShared>,
    started: Instant,
    /// Whether a subscription's queue is made at its first message rather than with it.
    lazy_slots: bool,
}

impl Default for FloorEngine {
    fn default() -> Self {
        Self {
            shared: Arc::default(),
            started: Instant::now(),
            lazy_slots: false,
        }
    }
}

impl FloorPublisher {
    /// Looks the route up again if a subscription was made since it was last looked up.
    #[inline]
    fn refresh(&mut self) {
        let generation = self.shared.generation.load(Ordering::Acquire);
        if generation != self.generation {
            let topics = lock(&self.shared.topics);
            self.route = topics
                .get(&self.topic)
                .cloned()
                .unwrap_or_else(|| Arc::from([]));
            self.generation = generation;
        }
    }
}

/// A receiver of the floor: competing clones share the subscription's queue.
pub struct FloorReceiver(Arc<FloorSubscription>);

/// A publishing handle of the floor: its topic and cached route.
pub struct FloorPublisher {
    shared: Arc<FloorShared>,
    topic: Arc<str>,
    route: Route,
    generation: u64,
    counts: Arc<PublisherCounts>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl FloorEngine {
    /// The floor whose subscriptions allocate their queue at their first message, as the core's
    /// lanes do (`--engine floor-lazy`; see the [module docs](self)).
    pub fn lazy_slots() -> Self {
        Self {
            lazy_slots: true,
            ..Self::default()
        }
    }

    fn add(
        &self,
        filter: &str,
        capacity: usize,
        policy: OverflowPolicy,
        ready: Option<(Arc<FloorReadyList>, u64)>,
    ) -> Result<FloorReceiver> {
        if filter.contains(['+', '#']) {
            bail!("the floor engine routes exact topics only: {filter} is a wildcard filter");
        }
        Topic::new(filter)?;
        if policy == OverflowPolicy::DropOldest {
            bail!(
                "the floor engine drops the newest message or blocks: drop-oldest is not supported"
            );
        }
        let mut subs = lock(&self.shared.subscriptions);
        let sub = Arc::new(FloorSubscription {
            queue: if self.lazy_slots {
                OnceLock::new()
            } else {
                OnceLock::from(Box::new(ArrayQueue::new(capacity.max(1))))
            },
            capacity: capacity.max(1),
            listed: AtomicBool::new(false),
            ready,
            policy,
            id: subs.len() as u64 + 1,
            topic: filter.to_string(),
            matched: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            delivered: Padded::default(),
        });
        subs.push(sub.clone());
        let mut topics = lock(&self.shared.topics);
        let route = topics
            .entry(Arc::from(filter))
            .or_insert_with(|| Arc::from([]));
        *route = route.iter().cloned().chain([sub.clone()]).collect();
        self.shared.generation.fetch_add(1, Ordering::Release);
        Ok(FloorReceiver(sub))
    }
}

impl Engine for FloorEngine {
    type Publisher = FloorPublisher;
    type Receiver = FloorReceiver;
    type Message = FloorMessage;
    type Ready = FloorReadyList;

    fn subscribe(
        &self,
        filter: &str,
        capacity: usize,
        policy: OverflowPolicy,
    ) -> Result<FloorReceiver> {
        self.add(filter, capacity, policy, None)
    }

    const SIGNALS_PUSHES: bool = true;

    fn subscribe_signalled(
        &self,
        filter: &str,
        capacity: usize,
        policy: OverflowPolicy,
        signal: &Arc<FloorReadyList>,
        key: u64,
    ) -> Result<FloorReceiver> {
        self.add(filter, capacity, policy, Some((signal.clone(), key)))
    }

    fn has_queued(receiver: &FloorReceiver) -> bool {
        receiver.0.queue.get().is_some_and(|q| !q.is_empty())
    }

    fn add_receiver(receiver: &FloorReceiver) -> FloorReceiver {
        FloorReceiver(receiver.0.clone())
    }

    fn publisher(&self, topic: &str) -> Result<FloorPublisher> {
        Topic::new(topic)?;
        let counts = Arc::new(PublisherCounts::default());
        lock(&self.shared.publishers).push(counts.clone());
        let mut publisher = FloorPublisher {
            shared: self.shared.clone(),
            topic: Arc::from(topic),
            route: Arc::from([]),
            generation: u64::MAX,
            counts,
        };
        // Looked up when the handle is made, as the core's `Publisher` does.
        publisher.refresh();
        Ok(publisher)
    }

    #[inline]
    fn publish(p: &mut FloorPublisher, payload: Bytes) -> usize {
        p.refresh();
        // One writer per handle: a load and a store, not a read-modify-write.
        let published = p.counts.published.load(Ordering::Relaxed);
        p.counts.published.store(published + 1, Ordering::Relaxed);
        if p.route.is_empty() {
            let unrouted = p.counts.unrouted.load(Ordering::Relaxed);
            p.counts.unrouted.store(unrouted + 1, Ordering::Relaxed);
            return 0;
        }
        let msg: FloorMessage = Arc::new((p.topic.clone(), payload));
        p.route.iter().map(|sub| usize::from(sub.offer(&msg))).sum()
    }

    #[inline]
    fn drain(receiver: &FloorReceiver, out: &mut Vec<FloorMessage>, max: usize) -> usize {
        let sub = &receiver.0;
        // Clear the flag first: a message queued after this puts the key on the list again.
        sub.listed.store(false, Ordering::SeqCst);
        let mut n = 0;
        while n < max {
            let Some(m) = sub.pop() else { break };
            out.push(m);
            n += 1;
        }
        if n > 0 {
            sub.delivered.0.fetch_add(n as u64, Ordering::Relaxed);
        }
        n
    }

    fn wait(receiver: &FloorReceiver, timeout: Duration) -> Option<FloorMessage> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(m) = receiver.0.pop() {
                receiver.0.delivered.0.fetch_add(1, Ordering::Relaxed);
                return Some(m);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_micros(20));
        }
    }

    #[inline]
    fn payload(message: &FloorMessage) -> &[u8] {
        &message.1
    }

    fn stats(&self) -> StatsSnapshot {
        let subscriptions: Vec<SubscriptionStats> = lock(&self.shared.subscriptions)
            .iter()
            .map(|s| s.stats())
            .collect();
        let (published, unrouted) =
            lock(&self.shared.publishers)
                .iter()
                .fold((0, 0), |(p, u), c| {
                    (
                        p + c.published.load(Ordering::Relaxed),
                        u + c.unrouted.load(Ordering::Relaxed),
                    )
                });
        crate::snapshot_totals::snapshot(published, unrouted, subscriptions, self.started)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_floor_routes_exact_topics_counts_drops_and_keeps_balanced_books() {
        let e = FloorEngine::default();
        let list = FloorReadyList::create();
        let a = e
            .subscribe_signalled("load/p0/t0", 2, OverflowPolicy::DropNewest, &list, 7)
            .unwrap();
        let mut p0 = e.publisher("load/p0/t0").unwrap();
        let mut p1 = e.publisher("load/p0/t1").unwrap();
        let dropped: usize = (0..3)
            .map(|_| FloorEngine::publish(&mut p0, Bytes::from_static(b"x")))
            .sum();
        assert_eq!(dropped, 1);
        FloorEngine::publish(&mut p1, Bytes::from_static(b"y"));
        let mut keys = Vec::new();
        assert_eq!(
            list.try_ready(&mut keys),
            1,
            "listed once, however many messages"
        );
        assert_eq!(keys, [7]);
        let mut out = Vec::new();
        assert_eq!(FloorEngine::drain(&a, &mut out, 10), 2);
        let s = e.stats();
        assert_eq!(
            (s.totals.published, s.totals.unrouted, s.totals.dropped),
            (4, 1, 1)
        );
        assert!(s.balances());
    }

    #[test]
    fn the_floor_refuses_wildcards_and_drop_oldest() {
        let e = FloorEngine::default();
        assert!(
            e.subscribe("load/+/t0", 2, OverflowPolicy::DropNewest)
                .is_err()
        );
        assert!(
            e.subscribe("load/#", 2, OverflowPolicy::DropNewest)
                .is_err()
        );
        assert!(
            e.subscribe("load/p0/t0", 2, OverflowPolicy::DropOldest)
                .is_err()
        );
    }
}
