//! The naive acknowledged baseline the scenario table compares `--ack` against: what one writes first.
//!
//! Routing and queueing are the naive engine's ([`super::naive`]: a linear scan under a mutex, a
//! bounded `std::sync::mpsc` channel per subscription whose receiver sits behind a mutex). On top, one
//! [`NaiveInFlight`] table per subscription: a `HashMap` from token to the message in flight, and a
//! queue of messages waiting to be delivered again, both behind one mutex that every receive, every
//! ack, every nack and every hand-back takes. Deadlines are found by scanning the map, at most once a
//! millisecond. A receiver dropped with messages in flight hands them back by scanning the map for its
//! own.
//!
//! It keeps the same promises as the core where the generator needs them (the window, redelivery
//! first, `max_deliveries` to a drop, hand-back at once, a stale ack refused) and the same counters,
//! so its books can be checked too: `matched = delivered (acked) + dropped + depth + in_flight`.
//! It keeps no dead-letter queue (a message out of deliveries is counted dropped, reason
//! `max_deliveries`), no stalled-receiver gauge, and acks are refused only as `ended`.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use switchyard::{AckOptions, AckRefusals, AckStats, Bytes, OverflowPolicy, StatsSnapshot};

use super::engine::Engine;
use super::naive::{AckBook, NaiveEngine, NaiveMessage, NaivePublisher, NaiveSubscription, lock};

/// How often a receive may scan the map for passed deadlines.
const SWEEP_EVERY: Duration = Duration::from_millis(1);

/// One message in flight: what the map holds per token.
struct Entry {
    message: NaiveMessage,
    deliveries: u32,
    deadline: Instant,
    receiver: u64,
}

/// What the one mutex guards: the map, the redelivery queue, and the counters.
struct Table {
    out: HashMap<u64, Entry>,
    /// Messages to deliver again, with the deliveries they have had.
    waiting: VecDeque<(NaiveMessage, u32)>,
    next_sweep: Instant,
    next_token: u64,
    acked: u64,
    nacked: u64,
    expired: u64,
    handed_back: u64,
    redelivered: u64,
    dead_lettered: u64,
    window_full: u64,
    refused: u64,
}

impl Table {
    /// Messages held against the window: out, and waiting to go out again.
    fn held(&self) -> u64 {
        (self.out.len() + self.waiting.len()) as u64
    }

    /// An attempt that ended without an ack: delivered again, or dead after its last delivery.
    fn requeue(&mut self, entry: Entry, max_deliveries: Option<u32>) {
        if max_deliveries.is_some_and(|max| entry.deliveries >= max) {
            self.dead_lettered += 1;
        } else {
            self.waiting.push_back((entry.message, entry.deliveries));
        }
    }

    /// Ends every attempt that `pick` selects: each goes back for delivery, or is dead after its
    /// last ([`Table::requeue`]). Returns how many.
    fn requeue_where(&mut self, pick: impl Fn(&Entry) -> bool, max_deliveries: Option<u32>) -> u64 {
        let picked: Vec<u64> = self
            .out
            .iter()
            .filter(|(_, e)| pick(e))
            .map(|(token, _)| *token)
            .collect();
        for token in &picked {
            if let Some(entry) = self.out.remove(token) {
                self.requeue(entry, max_deliveries);
            }
        }
        picked.len() as u64
    }

    /// Hands out `message` for its `deliveries`th time to `receiver`, under a new token.
    fn hand_out(
        &mut self,
        message: NaiveMessage,
        deliveries: u32,
        receiver: u64,
        deadline: Instant,
    ) -> NaiveDelivery {
        let token = self.next_token;
        self.next_token += 1;
        self.out.insert(
            token,
            Entry {
                message: message.clone(),
                deliveries,
                deadline,
                receiver,
            },
        );
        NaiveDelivery { token, message }
    }
}

/// An acknowledged subscription's in-flight table. See the [module docs](self).
pub struct NaiveInFlight {
    options: AckOptions,
    table: Mutex<Table>,
    next_receiver: AtomicU64,
}

impl NaiveInFlight {
    fn new(options: AckOptions) -> Self {
        Self {
            options,
            table: Mutex::new(Table {
                out: HashMap::new(),
                waiting: VecDeque::new(),
                next_sweep: Instant::now(),
                next_token: 0,
                acked: 0,
                nacked: 0,
                expired: 0,
                handed_back: 0,
                redelivered: 0,
                dead_lettered: 0,
                window_full: 0,
                refused: 0,
            }),
            next_receiver: AtomicU64::new(0),
        }
    }

    /// Moves the attempts whose deadline passed back for delivery (or to a drop), scanning the whole
    /// map, at most once per [`SWEEP_EVERY`].
    fn sweep_if_due(&self, t: &mut Table, now: Instant) {
        if now < t.next_sweep {
            return;
        }
        t.next_sweep = now + SWEEP_EVERY;
        t.expired += t.requeue_where(|e| e.deadline <= now, self.options.max_deliveries);
    }
}

impl AckBook for NaiveInFlight {
    /// The acknowledged path's settings and counters now.
    fn ack_stats(&self) -> AckStats {
        let t = lock(&self.table);
        AckStats {
            max_in_flight: u64::from(self.options.max_in_flight),
            ack_wait_ms: u64::try_from(self.options.ack_wait.as_millis()).unwrap_or(u64::MAX),
            max_deliveries: self.options.max_deliveries,
            in_flight: t.held(),
            waiting: t.waiting.len() as u64,
            acked: t.acked,
            nacked: t.nacked,
            expired: t.expired,
            handed_back: t.handed_back,
            redelivered: t.redelivered,
            dead_lettered: t.dead_lettered,
            window_full: t.window_full,
            refused: AckRefusals {
                ended: t.refused,
                ..AckRefusals::default()
            },
            ..AckStats::default()
        }
    }
}

/// What a receive found.
enum Taken {
    Got(NaiveDelivery),
    Empty,
    WindowFull,
}

/// A message handed out by the naive acknowledged engine, with its token.
pub struct NaiveDelivery {
    token: u64,
    message: NaiveMessage,
}

/// A receiver of the naive acknowledged engine. Dropping it hands back what it holds.
pub struct NaiveAckedReceiver {
    sub: Arc<NaiveSubscription>,
    /// The subscription's in-flight table (the subscription holds it too, for its stats).
    table: Arc<NaiveInFlight>,
    id: u64,
}

impl NaiveAckedReceiver {
    fn new(sub: Arc<NaiveSubscription>, table: Arc<NaiveInFlight>) -> Self {
        let id = table.next_receiver.fetch_add(1, Ordering::Relaxed);
        Self { sub, table, id }
    }

    /// Takes one message, a redelivery first, while the window has room: without waiting, or waiting
    /// up to `wait` on the channel. The caller holds the channel's receiver.
    fn take(&self, rx: &Receiver<NaiveMessage>, wait: Option<Duration>) -> Taken {
        let f = &self.table;
        let now = Instant::now();
        let deadline = now + f.options.ack_wait;
        {
            let mut t = lock(&f.table);
            f.sweep_if_due(&mut t, now);
            if let Some((message, deliveries)) = t.waiting.pop_front() {
                t.redelivered += 1;
                return Taken::Got(t.hand_out(message, deliveries + 1, self.id, deadline));
            }
            let held = t.held();
            if held >= u64::from(f.options.max_in_flight) {
                if self.sub.unsettled() > held + t.dead_lettered {
                    t.window_full += 1; // messages are queued, and the window keeps them there
                }
                return Taken::WindowFull;
            }
        }
        let message = match wait {
            None => rx.try_recv().ok(),
            Some(timeout) => rx.recv_timeout(timeout).ok(),
        };
        match message {
            Some(m) => Taken::Got(lock(&f.table).hand_out(m, 1, self.id, deadline)),
            None => Taken::Empty,
        }
    }

    /// Ends every attempt `tokens` name, under one lock of the table: acked, or back for delivery
    /// (`nack`). Returns how many were in flight; the others are counted refused.
    fn settle_all(&self, tokens: impl Iterator<Item = u64>, ack: bool) -> usize {
        let f = &self.table;
        let mut t = lock(&f.table);
        let mut settled = 0;
        for token in tokens {
            let Some(entry) = t.out.remove(&token) else {
                t.refused += 1;
                continue;
            };
            settled += 1;
            if ack {
                t.acked += 1;
            } else {
                t.nacked += 1;
                t.requeue(entry, f.options.max_deliveries);
            }
        }
        if ack {
            self.sub
                .delivered
                .fetch_add(settled as u64, Ordering::Relaxed);
        }
        settled
    }
}

impl Drop for NaiveAckedReceiver {
    fn drop(&mut self) {
        let f = &self.table;
        let mut t = lock(&f.table);
        t.handed_back += t.requeue_where(|e| e.receiver == self.id, f.options.max_deliveries);
        drop(t);
        self.sub.receivers.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The naive acknowledged broker. Cheap to clone.
#[derive(Clone)]
pub struct NaiveAckedEngine {
    naive: NaiveEngine,
    options: AckOptions,
}

impl NaiveAckedEngine {
    /// A naive broker whose subscriptions are acknowledged with `options`.
    pub fn new(options: AckOptions) -> Self {
        Self {
            naive: NaiveEngine::default(),
            options,
        }
    }
}

impl Engine for NaiveAckedEngine {
    type Publisher = NaivePublisher;
    type Receiver = NaiveAckedReceiver;
    type Message = NaiveDelivery;
    /// Unused: the naive broker signals nothing.
    type Ready = switchyard::ReadySignal;

    fn subscribe(
        &self,
        filter: &str,
        capacity: usize,
        policy: OverflowPolicy,
    ) -> Result<NaiveAckedReceiver> {
        let table = Arc::new(NaiveInFlight::new(self.options));
        let sub = self
            .naive
            .subscribe_naive(filter, capacity, policy, Some(table.clone()))?;
        // The subscription counted its first receiver; this is it.
        Ok(NaiveAckedReceiver::new(sub, table))
    }

    fn add_receiver(receiver: &NaiveAckedReceiver) -> NaiveAckedReceiver {
        receiver.sub.receivers.fetch_add(1, Ordering::Relaxed);
        NaiveAckedReceiver::new(receiver.sub.clone(), receiver.table.clone())
    }

    fn publisher(&self, topic: &str) -> Result<NaivePublisher> {
        self.naive.publisher(topic)
    }

    fn publish(publisher: &mut NaivePublisher, payload: Bytes) -> usize {
        NaiveEngine::publish(publisher, payload)
    }

    fn drain(receiver: &NaiveAckedReceiver, out: &mut Vec<NaiveDelivery>, max: usize) -> usize {
        let Ok(rx) = receiver.sub.receiver.try_lock() else {
            return 0; // another receiver of this subscription is taking from it
        };
        let mut n = 0;
        while n < max {
            match receiver.take(&rx, None) {
                Taken::Got(d) => {
                    out.push(d);
                    n += 1;
                }
                Taken::Empty | Taken::WindowFull => break,
            }
        }
        n
    }

    fn wait(receiver: &NaiveAckedReceiver, timeout: Duration) -> Option<NaiveDelivery> {
        let rx = lock(&receiver.sub.receiver);
        match receiver.take(&rx, Some(timeout)) {
            Taken::Got(d) => Some(d),
            Taken::Empty => None,
            Taken::WindowFull => {
                // Nothing waited on the channel: wait a little here rather than spin.
                drop(rx);
                std::thread::sleep(timeout.min(Duration::from_millis(1)));
                None
            }
        }
    }

    fn payload(message: &NaiveDelivery) -> &[u8] {
        &message.message.1
    }

    fn stats(&self) -> StatsSnapshot {
        self.naive.stats()
    }

    fn ack(receiver: &NaiveAckedReceiver, taken: &mut Vec<NaiveDelivery>) -> usize {
        // A batch is settled under one lock of the table, as switchyard's `ack_batch` settles it in
        // one call: each engine settles the consumer's batch in its own batch form.
        receiver.settle_all(taken.drain(..).map(|d| d.token), true)
    }

    fn nack(receiver: &NaiveAckedReceiver, taken: &mut Vec<NaiveDelivery>) {
        receiver.settle_all(taken.drain(..).map(|d| d.token), false);
    }

    fn in_flight(receiver: &NaiveAckedReceiver) -> u64 {
        lock(&receiver.table.table).held()
    }
}
