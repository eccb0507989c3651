//! The naive baseline broker the scenario table compares against.
//!
//! It is what one writes first: a `Mutex<Vec<subscription>>` scanned linearly on every publish with
//! [`switchyard::filter_matches`], each subscription a bounded `std::sync::mpsc::sync_channel`. The
//! message is still allocated once and shared (an `Arc`), so the comparison measures routing and
//! queueing, not copying. It keeps the same counters as the core so its books can be checked too; its
//! `depth` is derived (`matched - delivered - dropped`) because a std channel has no length.
//!
//! `DropOldest` is not offered (a channel cannot evict); `Block` retries `try_send` with short sleeps
//! until the timeout, holding the broker lock, as a naive implementation would.
//!
//! The naive acknowledged engine ([`super::naive_acked`]) routes and queues through the same
//! subscriptions, publishers and channels; a subscription of its own carries an in-flight table
//! (`acked`), and counts `delivered` when a message is acked rather than taken.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use switchyard::{
    AckStats, Bytes, DroppedByReason, OverflowPolicy, StatsSnapshot, SubscriptionStats, Topic,
    filter_matches,
};

use super::engine::Engine;

/// A message of the naive broker: topic and payload, shared by every subscription it reaches.
pub type NaiveMessage = Arc<(Arc<str>, Bytes)>;

/// What an acknowledged subscription keeps beside its channel (the naive acknowledged engine's
/// in-flight table, `super::naive_acked`), seen from here only through its counters, which go into
/// the subscription's stats.
pub(super) trait AckBook: Send + Sync {
    fn ack_stats(&self) -> AckStats;
}

pub(super) struct NaiveSubscription {
    id: u64,
    filter: String,
    capacity: usize,
    policy: OverflowPolicy,
    sender: SyncSender<NaiveMessage>,
    pub(super) receiver: Mutex<Receiver<NaiveMessage>>,
    matched: AtomicU64,
    pub(super) delivered: AtomicU64,
    queue_full: AtomicU64,
    timeout: AtomicU64,
    pub(super) receivers: AtomicU64,
    /// The in-flight table of an acknowledged subscription; `None` for a plain one.
    acked: Option<Arc<dyn AckBook>>,
}

struct NaiveShared {
    subscriptions: Mutex<Vec<Arc<NaiveSubscription>>>,
    published: AtomicU64,
    unrouted: AtomicU64,
    started: Instant,
}

/// The naive broker. Cheap to clone.
#[derive(Clone)]
pub struct NaiveEngine {
    shared: Arc<NaiveShared>,
}

impl Default for NaiveEngine {
    fn default() -> Self {
        Self {
            shared: Arc::new(NaiveShared {
                subscriptions: Mutex::new(Vec::new()),
                published: AtomicU64::new(0),
                unrouted: AtomicU64::new(0),
                started: Instant::now(),
            }),
        }
    }
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A receiver of the naive broker.
pub struct NaiveReceiver(Arc<NaiveSubscription>);

/// A publishing handle of the naive broker: the topic, validated once.
pub struct NaivePublisher {
    shared: Arc<NaiveShared>,
    topic: Arc<str>,
}

impl NaiveSubscription {
    /// Offers one message; returns whether it was dropped.
    fn offer(&self, msg: &NaiveMessage) -> bool {
        self.matched.fetch_add(1, Ordering::Relaxed);
        match self.sender.try_send(msg.clone()) {
            Ok(()) => false,
            Err(TrySendError::Full(m)) => match self.policy {
                OverflowPolicy::Block { timeout } => {
                    let deadline = Instant::now() + timeout;
                    let mut m = m;
                    loop {
                        std::thread::sleep(Duration::from_micros(20));
                        match self.sender.try_send(m) {
                            Ok(()) => return false,
                            Err(TrySendError::Full(back)) if Instant::now() < deadline => m = back,
                            Err(_) => {
                                self.timeout.fetch_add(1, Ordering::Relaxed);
                                return true;
                            }
                        }
                    }
                }
                _ => {
                    self.queue_full.fetch_add(1, Ordering::Relaxed);
                    true
                }
            },
            // The receiver lives as long as the subscription, so the channel cannot be disconnected.
            Err(TrySendError::Disconnected(_)) => {
                self.queue_full.fetch_add(1, Ordering::Relaxed);
                true
            }
        }
    }

    /// Matched messages not yet acked nor dropped from the queue: those queued, in flight, or dead
    /// lettered by the acknowledged path (a std channel has no length, so the counters tell).
    pub(super) fn unsettled(&self) -> u64 {
        let done = self.delivered.load(Ordering::Relaxed)
            + self.queue_full.load(Ordering::Relaxed)
            + self.timeout.load(Ordering::Relaxed);
        self.matched.load(Ordering::Relaxed).saturating_sub(done)
    }

    fn stats(&self) -> SubscriptionStats {
        // Read `delivered`, the drops and what is in flight before `matched`, so a snapshot under load
        // never shows a negative depth; at quiescence it is exact.
        let delivered = self.delivered.load(Ordering::Relaxed);
        let ack = self.acked.as_ref().map(|book| book.ack_stats());
        let dropped_by_reason = DroppedByReason {
            queue_full: self.queue_full.load(Ordering::Relaxed),
            timeout: self.timeout.load(Ordering::Relaxed),
            max_deliveries: ack.map_or(0, |a| a.dead_lettered),
            ..DroppedByReason::default()
        };
        let in_flight = ack.map_or(0, |a| a.in_flight);
        let matched = self.matched.load(Ordering::Relaxed);
        let depth = matched.saturating_sub(delivered + dropped_by_reason.total() + in_flight);
        SubscriptionStats {
            id: self.id,
            name: format!("s{}", self.id),
            filter: self.filter.clone(),
            policy: self.policy.name().to_string(),
            capacity: self.capacity as u64,
            matched,
            delivered,
            dropped: dropped_by_reason.total(),
            dropped_by_reason,
            depth,
            high_water: depth,
            receivers: self.receivers.load(Ordering::Relaxed),
            in_flight,
            ack,
            ..SubscriptionStats::default()
        }
    }
}

impl NaiveEngine {
    /// Subscribes `filter`: a plain subscription, or an acknowledged one when `acked` is its
    /// in-flight table.
    pub(super) fn subscribe_naive(
        &self,
        filter: &str,
        capacity: usize,
        policy: OverflowPolicy,
        acked: Option<Arc<dyn AckBook>>,
    ) -> Result<Arc<NaiveSubscription>> {
        switchyard::Filter::new(filter)?;
        if policy == OverflowPolicy::DropOldest {
            bail!("the naive baseline cannot evict: drop-oldest is not supported");
        }
        let (sender, receiver) = sync_channel(capacity);
        let mut subs = lock(&self.shared.subscriptions);
        let sub = Arc::new(NaiveSubscription {
            id: subs.len() as u64 + 1,
            filter: filter.to_string(),
            capacity,
            policy,
            sender,
            receiver: Mutex::new(receiver),
            matched: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            queue_full: AtomicU64::new(0),
            timeout: AtomicU64::new(0),
            receivers: AtomicU64::new(1),
            acked,
        });
        subs.push(sub.clone());
        Ok(sub)
    }
}

impl Engine for NaiveEngine {
    type Publisher = NaivePublisher;
    type Receiver = NaiveReceiver;
    type Message = NaiveMessage;
    /// Unused: the naive broker signals nothing.
    type Ready = switchyard::ReadySignal;

    fn subscribe(
        &self,
        filter: &str,
        capacity: usize,
        policy: OverflowPolicy,
    ) -> Result<NaiveReceiver> {
        Ok(NaiveReceiver(
            self.subscribe_naive(filter, capacity, policy, None)?,
        ))
    }

    fn add_receiver(receiver: &NaiveReceiver) -> NaiveReceiver {
        receiver.0.receivers.fetch_add(1, Ordering::Relaxed);
        NaiveReceiver(receiver.0.clone())
    }

    fn publisher(&self, topic: &str) -> Result<NaivePublisher> {
        Topic::new(topic)?;
        Ok(NaivePublisher {
            shared: self.shared.clone(),
            topic: Arc::from(topic),
        })
    }

    fn publish(publisher: &mut NaivePublisher, payload: Bytes) -> usize {
        let shared = &publisher.shared;
        let msg: NaiveMessage = Arc::new((publisher.topic.clone(), payload));
        let mut matched = 0;
        let mut dropped = 0;
        for sub in lock(&shared.subscriptions).iter() {
            if filter_matches(&sub.filter, &publisher.topic) {
                matched += 1;
                dropped += usize::from(sub.offer(&msg));
            }
        }
        shared.published.fetch_add(1, Ordering::Relaxed);
        if matched == 0 {
            shared.unrouted.fetch_add(1, Ordering::Relaxed);
        }
        dropped
    }

    fn drain(receiver: &NaiveReceiver, out: &mut Vec<NaiveMessage>, max: usize) -> usize {
        let Ok(rx) = receiver.0.receiver.try_lock() else {
            return 0; // another receiver of this subscription is draining it
        };
        let mut n = 0;
        while n < max {
            match rx.try_recv() {
                Ok(m) => {
                    out.push(m);
                    n += 1;
                }
                Err(_) => break,
            }
        }
        drop(rx);
        receiver.0.delivered.fetch_add(n as u64, Ordering::Relaxed);
        n
    }

    fn wait(receiver: &NaiveReceiver, timeout: Duration) -> Option<NaiveMessage> {
        let rx = lock(&receiver.0.receiver);
        match rx.recv_timeout(timeout) {
            Ok(m) => {
                receiver.0.delivered.fetch_add(1, Ordering::Relaxed);
                Some(m)
            }
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => None,
        }
    }

    fn payload(message: &NaiveMessage) -> &[u8] {
        &message.1
    }

    fn stats(&self) -> StatsSnapshot {
        let subscriptions: Vec<SubscriptionStats> = lock(&self.shared.subscriptions)
            .iter()
            .map(|s| s.stats())
            .collect();
        crate::snapshot_totals::snapshot(
            self.shared.published.load(Ordering::Relaxed),
            self.shared.unrouted.load(Ordering::Relaxed),
            subscriptions,
            self.shared.started,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_naive_broker_routes_by_filter_and_keeps_balanced_books() {
        let e = NaiveEngine::default();
        let all = e
            .subscribe("load/#", 2, OverflowPolicy::DropNewest)
            .unwrap();
        let one = e
            .subscribe("load/+/t1", 8, OverflowPolicy::DropNewest)
            .unwrap();
        let mut p0 = e.publisher("load/p0/t0").unwrap();
        let mut p1 = e.publisher("load/p1/t1").unwrap();
        for _ in 0..3 {
            NaiveEngine::publish(&mut p0, Bytes::from_static(b"x"));
            NaiveEngine::publish(&mut p1, Bytes::from_static(b"y"));
        }
        let mut out = Vec::new();
        assert_eq!(NaiveEngine::drain(&one, &mut out, 10), 3);
        assert_eq!(NaiveEngine::drain(&all, &mut out, 10), 2);
        let s = e.stats();
        assert_eq!(s.totals.published, 6);
        assert_eq!(s.totals.dropped, 4);
        assert!(s.balances());
    }
}
