//! Publish → receive throughput of switchyard beside its baselines, measured in the same run.
//!
//! Groups (each contender run once per repetition, interleaved `A B C .. A B C ..`, ids
//! `<group>/<contender>/r<rep>`):
//!
//! - `throughput_1to1`, `throughput_1to4`: one publisher thread, one or four subscribers (one `#`
//!   filter each), each drained by its own receiver thread. Delivered messages per second
//!   (`Throughput::Elements` counts deliveries: 1 or 4 per publish). Contenders:
//!   - `arrayqueue`: a raw `crossbeam_queue::ArrayQueue<u64>` per subscriber, push/pop: the limit of
//!     one hop (no allocation, no routing, no counters);
//!   - `switchyard_publish`: `Broker::publish(&str, payload)`;
//!   - `switchyard_publisher`: a `Publisher` handle (validated topic, cached route);
//!   - `switchyard_publisher_credit`: the same handle, with the baselines' spin back-pressure
//!     instead of `OverflowPolicy::Block` (see below);
//!   - `switchyard_publisher_batch`: the same handle's `publish_batch` of 64 payloads, each receiver
//!     taking up to 64 at a time with `drain_into` (the baselines stay one message at a time: this is
//!     what batching buys a switchyard user, not a like-for-like hop);
//!   - `broadcast`: `tokio::sync::broadcast` with one `Receiver` per subscriber (`try_recv` spin);
//!   - `naive`: a `Mutex<Vec<(filter, SyncSender)>>` scanned with `filter_matches` per publish.
//! - `single_thread_1to1`, `single_thread_1to4`: publish a batch of 64, then take it, on one thread;
//!   switchyard (one publish or receive per message, and `publish_batch` + `drain_into` per batch)
//!   against the raw queue. Isolates the data-path cost from cross-core traffic.
//! - `churn`: the single-thread switchyard loop with and without a thread doing 10k
//!   subscribe+unsubscribe pairs per second on the same broker.
//!
//! # Back-pressure: every figure is of delivered messages
//! Every queue holds 1024 messages, and no contender may drop one:
//! - raw queue and naive broker: the publisher spins then yields (crossbeam `Backoff`) while a queue
//!   is full;
//! - `broadcast` has no back-pressure (a full channel overwrites and receivers see `Lagged`), so its
//!   publisher keeps credit: each receiver publishes its count on its own cache line and the
//!   publisher spins while `sent - min(received) == 1024` (a `Lagged` would end the bench);
//! - `switchyard_publish` and `switchyard_publisher` use the broker's own back-pressure,
//!   `OverflowPolicy::Block` with a long timeout: a publisher that meets a full queue parks until a
//!   receiver makes room;
//! - `switchyard_publisher_credit` uses `DropNewest` and the same spin as the raw queue: before a
//!   publish it makes sure every queue has room (it re-reads `Subscription::len` only when its credit
//!   runs out), so nothing is dropped. It shows what `Block`'s parking costs.
//!
//! Each receiver takes exactly the round's `n` messages; a round ends when all have, and the broker's
//! books are checked (no drop, `delivered == matched`) when a contender is torn down.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use crossbeam_queue::ArrayQueue;
use crossbeam_utils::CachePadded;
use std::hint::black_box;
use switchyard::{
    Broker, Bytes, Message, OverflowPolicy, Publisher, Subscription, SubscriptionOptions,
    TryRecvError,
};

use common::Settings;
use common::naive::NaiveBroker;
use common::rig::{Receiver, Rig, Spin, receive_batches, receive_exactly};

/// Capacity of every queue, for every contender.
const CAPACITY: usize = 1024;
/// The topic published on; every subscriber's filter is `#`.
const TOPIC: &str = "bench/sensor/temperature";
const FILTER: &str = "#";
/// The payload of every message: static, so making it costs nothing and every contender pays the same.
#[inline]
fn payload() -> Bytes {
    Bytes::from_static(b"21.5degC")
}
/// Single-thread variant: publish this many, then take them.
const BATCH: u64 = 64;
/// Churn: subscribe+unsubscribe pairs per second on the churn thread.
const CHURN_PER_S: f64 = 10_000.0;

/// One way to move `n` messages from a publisher to its subscribers; returns the time it took.
trait Contender {
    fn round(&mut self, n: u64) -> Duration;
}

fn fail(what: String) -> ! {
    eprintln!("bench failed: {what}");
    std::process::exit(2);
}

// ---------------------------------------------------------------------------------------------------
// Cross-thread contenders

/// Raw `ArrayQueue<u64>` per subscriber: the limit of one hop.
struct QueueHop {
    rig: Rig,
    queues: Vec<Arc<ArrayQueue<u64>>>,
    next: u64,
}

impl QueueHop {
    fn new(fanout: usize) -> Self {
        let queues: Vec<_> = (0..fanout)
            .map(|_| Arc::new(ArrayQueue::new(CAPACITY)))
            .collect();
        let receivers = queues
            .iter()
            .map(|q| {
                let q = q.clone();
                Box::new(move |n| {
                    receive_exactly(n, "arrayqueue", || q.pop().map(black_box).is_some())
                }) as Receiver
            })
            .collect();
        Self {
            rig: Rig::spawn(receivers),
            queues,
            next: 0,
        }
    }
}

impl Contender for QueueHop {
    fn round(&mut self, n: u64) -> Duration {
        let Self { rig, queues, next } = self;
        rig.round(n, |n| {
            for _ in 0..n {
                let v = *next;
                *next += 1;
                for q in queues.iter() {
                    let mut v = v;
                    let mut spin = Spin::new();
                    while let Err(back) = q.push(v) {
                        v = back;
                        spin.idle(|| "arrayqueue publisher waiting for room".into());
                    }
                }
            }
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    /// `Broker::publish(&str, ..)`, `OverflowPolicy::Block`.
    Publish,
    /// `Publisher::publish`, `OverflowPolicy::Block`.
    Publisher,
    /// `Publisher::publish`, `DropNewest` with the publisher spinning until every queue has room.
    PublisherCredit,
    /// `Publisher::publish_batch` of [`BATCH`] payloads, received with `drain_into`; `Block`.
    PublisherBatch,
}

fn subscribe_all(broker: &Broker, fanout: usize, policy: OverflowPolicy) -> Vec<Arc<Subscription>> {
    (0..fanout)
        .map(|_| {
            let options = SubscriptionOptions::new().capacity(CAPACITY).policy(policy);
            Arc::new(
                broker
                    .subscribe_with(FILTER, options)
                    .expect("valid filter"),
            )
        })
        .collect()
}

/// Publishes `n` messages in batches of up to [`BATCH`], checking each batch was queued everywhere.
fn publish_batches(publisher: &mut Publisher, n: u64, fanout: usize) {
    let mut left = n;
    while left > 0 {
        let k = left.min(BATCH);
        let outcome = publisher.publish_batch((0..k).map(|_| payload()));
        if outcome.queued != k as usize * fanout {
            fail(format!(
                "switchyard publish_batch of {k} queued {outcome:?}, expected {}",
                k as usize * fanout
            ));
        }
        left -= k;
    }
}

/// Takes up to `max` messages from `sub` into `got` with `drain_into`; returns how many.
fn drain(sub: &Subscription, got: &mut Vec<Message>, max: u64) -> u64 {
    let drained = sub.drain_into(got, max as usize);
    black_box(&got);
    if drained.count == 0 && sub.is_closed() {
        fail("switchyard subscription closed during a round".into());
    }
    drained.count as u64
}

fn take_one(sub: &Subscription) -> bool {
    match sub.try_recv() {
        Ok(delivery) => {
            black_box(delivery);
            true
        }
        Err(TryRecvError::Empty) => false,
        Err(TryRecvError::Closed) => fail("switchyard subscription closed during a round".into()),
    }
}

/// Checks the broker's books: nothing dropped, nothing left queued, everything matched delivered.
fn check_books(broker: &Broker, name: &str) {
    let t = broker.stats().totals;
    if t.dropped != 0 || t.depth != 0 || t.delivered != t.matched {
        fail(format!("{name}: books do not balance without loss: {t:?}"));
    }
}

/// Switchyard, cross-thread.
struct SwitchyardHop {
    rig: Rig,
    subs: Vec<Arc<Subscription>>,
    publisher: Publisher,
    broker: Broker,
    via: Via,
    credit: usize,
}

impl SwitchyardHop {
    fn new(fanout: usize, via: Via) -> Self {
        let broker = Broker::new();
        let policy = match via {
            // Long enough never to time out: a timeout would drop, and the round would stall.
            Via::Publish | Via::Publisher | Via::PublisherBatch => OverflowPolicy::Block {
                timeout: Duration::from_secs(3600),
            },
            Via::PublisherCredit => OverflowPolicy::DropNewest,
        };
        let subs = subscribe_all(&broker, fanout, policy);
        let receivers = subs
            .iter()
            .map(|s| {
                let s = s.clone();
                if via == Via::PublisherBatch {
                    let mut got = Vec::with_capacity(BATCH as usize);
                    Box::new(move |n| {
                        receive_batches(n, "switchyard", |wanted| {
                            let k = drain(&s, &mut got, wanted.min(BATCH));
                            got.clear();
                            k
                        })
                    }) as Receiver
                } else {
                    Box::new(move |n| receive_exactly(n, "switchyard", || take_one(&s))) as Receiver
                }
            })
            .collect();
        Self {
            rig: Rig::spawn(receivers),
            publisher: broker.publisher(TOPIC).expect("valid topic"),
            subs,
            broker,
            via,
            credit: 0,
        }
    }
}

impl Contender for SwitchyardHop {
    fn round(&mut self, n: u64) -> Duration {
        let Self {
            rig,
            subs,
            publisher,
            broker,
            via,
            credit,
        } = self;
        let fanout = subs.len();
        rig.round(n, |n| {
            if *via == Via::PublisherBatch {
                return publish_batches(publisher, n, fanout);
            }
            for _ in 0..n {
                let outcome = match via {
                    Via::Publish => broker.publish(TOPIC, payload()).expect("valid topic"),
                    Via::Publisher => publisher.publish(payload()),
                    Via::PublisherCredit => {
                        // One publisher: between two looks, queues only shrink except by our pushes,
                        // so `credit` publishes are sure to find room.
                        let mut spin = Spin::new();
                        while *credit == 0 {
                            *credit = subs.iter().map(|s| CAPACITY - s.len()).min().unwrap_or(0);
                            if *credit == 0 {
                                spin.idle(|| "switchyard publisher waiting for room".into());
                            }
                        }
                        *credit -= 1;
                        publisher.publish(payload())
                    }
                    Via::PublisherBatch => unreachable!("batches are published above"),
                };
                if outcome.queued != fanout {
                    fail(format!(
                        "switchyard publish queued {outcome:?}, expected {fanout}"
                    ));
                }
            }
        })
    }
}

impl Drop for SwitchyardHop {
    fn drop(&mut self) {
        check_books(&self.broker, "switchyard");
    }
}

/// `tokio::sync::broadcast`, one receiver per subscriber, with credit-based back-pressure.
struct BroadcastHop {
    rig: Rig,
    sender: tokio::sync::broadcast::Sender<u64>,
    received: Arc<Vec<CachePadded<AtomicU64>>>,
    sent: u64,
    credit: u64,
}

impl BroadcastHop {
    fn new(fanout: usize) -> Self {
        let (sender, _) = tokio::sync::broadcast::channel::<u64>(CAPACITY);
        let received: Arc<Vec<_>> = Arc::new(
            (0..fanout)
                .map(|_| CachePadded::new(AtomicU64::new(0)))
                .collect(),
        );
        let receivers = (0..fanout)
            .map(|i| {
                let mut rx = sender.subscribe();
                let received = received.clone();
                let mut total = 0u64;
                Box::new(move |n| {
                    receive_exactly(n, "broadcast", || match rx.try_recv() {
                        Ok(v) => {
                            black_box(v);
                            total += 1;
                            received[i].store(total, Ordering::Release);
                            true
                        }
                        Err(tokio::sync::broadcast::error::TryRecvError::Empty) => false,
                        Err(e) => fail(format!("broadcast receiver: {e}")),
                    })
                }) as Receiver
            })
            .collect();
        Self {
            rig: Rig::spawn(receivers),
            sender,
            received,
            sent: 0,
            credit: 0,
        }
    }
}

impl Contender for BroadcastHop {
    fn round(&mut self, n: u64) -> Duration {
        let Self {
            rig,
            sender,
            received,
            sent,
            credit,
        } = self;
        rig.round(n, |n| {
            for _ in 0..n {
                let mut spin = Spin::new();
                while *credit == 0 {
                    let slowest = received
                        .iter()
                        .map(|r| r.load(Ordering::Acquire))
                        .min()
                        .unwrap_or(0);
                    *credit = CAPACITY as u64 - (*sent - slowest);
                    if *credit == 0 {
                        spin.idle(|| "broadcast publisher waiting for room".into());
                    }
                }
                *credit -= 1;
                if sender.send(*sent).is_err() {
                    fail("broadcast: no receivers".into());
                }
                *sent += 1;
            }
        })
    }
}

/// The naive broker, one receiver thread per subscription.
struct NaiveHop {
    rig: Rig,
    broker: NaiveBroker,
    fanout: usize,
}

impl NaiveHop {
    fn new(fanout: usize) -> Self {
        let broker = NaiveBroker::new();
        let receivers = (0..fanout)
            .map(|_| {
                let (_, rx) = broker.subscribe(FILTER, CAPACITY);
                Box::new(move |n| {
                    receive_exactly(n, "naive", || rx.try_recv().map(black_box).is_ok())
                }) as Receiver
            })
            .collect();
        Self {
            rig: Rig::spawn(receivers),
            broker,
            fanout,
        }
    }
}

impl Contender for NaiveHop {
    fn round(&mut self, n: u64) -> Duration {
        let Self {
            rig,
            broker,
            fanout,
        } = self;
        rig.round(n, |n| {
            for _ in 0..n {
                let delivered = broker.publish(TOPIC, &payload());
                if delivered != *fanout {
                    fail(format!(
                        "naive publish delivered {delivered}, expected {fanout}"
                    ));
                }
            }
        })
    }
}

// ---------------------------------------------------------------------------------------------------
// Single-thread contenders: publish BATCH, then take BATCH from each subscriber, on one thread.

struct QueueLoop {
    queues: Vec<ArrayQueue<u64>>,
    next: u64,
}

impl Contender for QueueLoop {
    fn round(&mut self, n: u64) -> Duration {
        let start = Instant::now();
        let mut left = n;
        while left > 0 {
            let batch = left.min(BATCH);
            for _ in 0..batch {
                for q in &self.queues {
                    if q.push(self.next).is_err() {
                        fail("single-thread queue full".into());
                    }
                }
                self.next += 1;
            }
            for q in &self.queues {
                for _ in 0..batch {
                    black_box(
                        q.pop()
                            .unwrap_or_else(|| fail("single-thread queue empty".into())),
                    );
                }
            }
            left -= batch;
        }
        start.elapsed()
    }
}

/// A thread doing [`CHURN_PER_S`] subscribe+unsubscribe pairs per second on a broker, on filters that
/// do not match the published topic (so only the routing table's version changes for publishers).
struct Churn {
    stop: Arc<AtomicBool>,
    pairs: Arc<AtomicU64>,
    handle: Option<JoinHandle<()>>,
}

impl Churn {
    fn start(broker: &Broker) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let pairs = Arc::new(AtomicU64::new(0));
        let handle = {
            let (broker, stop, pairs) = (broker.clone(), stop.clone(), pairs.clone());
            std::thread::Builder::new()
                .name("bench-churn".into())
                .spawn(move || {
                    let start = Instant::now();
                    let mut done = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let due = (start.elapsed().as_secs_f64() * CHURN_PER_S) as u64;
                        while done < due {
                            let options = SubscriptionOptions::new().capacity(1);
                            let s = broker
                                .subscribe_with(&format!("churn/{done}/x"), options)
                                .expect("valid filter");
                            drop(s);
                            done += 1;
                            pairs.store(done, Ordering::Relaxed);
                        }
                        std::thread::sleep(Duration::from_micros(200));
                    }
                })
                .expect("spawn the churn thread")
        };
        Self {
            stop,
            pairs,
            handle: Some(handle),
        }
    }
}

impl Drop for Churn {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

struct SwitchyardLoop {
    subs: Vec<Subscription>,
    publisher: Publisher,
    broker: Broker,
    via: Via,
    churn: Option<Churn>,
    /// Pairs done and time spent during measured rounds, to report the churn rate achieved.
    churned: (u64, Duration),
    name: String,
    /// Where `PublisherBatch` drains a batch.
    got: Vec<Message>,
}

impl SwitchyardLoop {
    fn new(fanout: usize, via: Via, churn: bool, name: String) -> Self {
        let broker = Broker::new();
        let subs = (0..fanout)
            .map(|_| {
                let options = SubscriptionOptions::new().capacity(CAPACITY);
                broker
                    .subscribe_with(FILTER, options)
                    .expect("valid filter")
            })
            .collect();
        Self {
            publisher: broker.publisher(TOPIC).expect("valid topic"),
            churn: churn.then(|| Churn::start(&broker)),
            subs,
            broker,
            via,
            churned: (0, Duration::ZERO),
            name,
            got: Vec::with_capacity(BATCH as usize),
        }
    }
}

impl Contender for SwitchyardLoop {
    fn round(&mut self, n: u64) -> Duration {
        let pairs_before = self.churn.as_ref().map(|c| c.pairs.load(Ordering::Relaxed));
        let fanout = self.subs.len();
        let start = Instant::now();
        let mut left = n;
        while left > 0 {
            let batch = left.min(BATCH);
            if self.via == Via::PublisherBatch {
                publish_batches(&mut self.publisher, batch, fanout);
                for s in &self.subs {
                    if drain(s, &mut self.got, batch) != batch {
                        fail("single-thread subscription short of a batch".into());
                    }
                    self.got.clear();
                }
                left -= batch;
                continue;
            }
            for _ in 0..batch {
                let outcome = match self.via {
                    Via::Publish => self.broker.publish(TOPIC, payload()).expect("valid topic"),
                    Via::Publisher | Via::PublisherCredit => self.publisher.publish(payload()),
                    Via::PublisherBatch => unreachable!("batches are published above"),
                };
                if outcome.queued != fanout {
                    fail(format!(
                        "single-thread publish queued {outcome:?}, expected {fanout}"
                    ));
                }
            }
            for s in &self.subs {
                for _ in 0..batch {
                    if !take_one(s) {
                        fail("single-thread subscription empty".into());
                    }
                }
            }
            left -= batch;
        }
        let elapsed = start.elapsed();
        if let (Some(before), Some(c)) = (pairs_before, &self.churn) {
            self.churned.0 += c.pairs.load(Ordering::Relaxed) - before;
            self.churned.1 += elapsed;
        }
        elapsed
    }
}

impl Drop for SwitchyardLoop {
    fn drop(&mut self) {
        self.churn = None;
        if self.churned.1 > Duration::ZERO {
            let rate = self.churned.0 as f64 / self.churned.1.as_secs_f64();
            eprintln!(
                "churn achieved: {}: {rate:.0} subscribe+unsubscribe pairs/s during measured rounds (target {CHURN_PER_S:.0})",
                self.name
            );
        }
        check_books(&self.broker, "switchyard single-thread");
    }
}

// ---------------------------------------------------------------------------------------------------

type Make = Box<dyn Fn() -> Box<dyn Contender>>;

/// Runs every contender once per repetition, in order, as `<group>/<name>/r<rep>`.
fn run_group(
    c: &mut Criterion,
    settings: &Settings,
    group_name: &str,
    deliveries_per_publish: u64,
    contenders: &[(&str, Make)],
) {
    let mut group = c.benchmark_group(group_name);
    settings.configure(&mut group, Duration::from_secs(2));
    // One iteration is one publish; it delivers `deliveries_per_publish` messages.
    group.throughput(Throughput::Elements(deliveries_per_publish));
    for rep in 0..settings.reps {
        for (name, make) in contenders {
            let mut contender = make();
            group.bench_function(
                criterion::BenchmarkId::new(*name, Settings::rep_name(rep)),
                |b| b.iter_custom(|iters| contender.round(iters)),
            );
        }
    }
    group.finish();
}

fn cross_thread(c: &mut Criterion) {
    let settings = Settings::from_env();
    for fanout in [1usize, 4] {
        let contenders: Vec<(&str, Make)> = vec![
            (
                "arrayqueue",
                Box::new(move || Box::new(QueueHop::new(fanout))),
            ),
            (
                "switchyard_publish",
                Box::new(move || Box::new(SwitchyardHop::new(fanout, Via::Publish))),
            ),
            (
                "switchyard_publisher",
                Box::new(move || Box::new(SwitchyardHop::new(fanout, Via::Publisher))),
            ),
            (
                "switchyard_publisher_credit",
                Box::new(move || Box::new(SwitchyardHop::new(fanout, Via::PublisherCredit))),
            ),
            (
                "switchyard_publisher_batch",
                Box::new(move || Box::new(SwitchyardHop::new(fanout, Via::PublisherBatch))),
            ),
            (
                "broadcast",
                Box::new(move || Box::new(BroadcastHop::new(fanout))),
            ),
            ("naive", Box::new(move || Box::new(NaiveHop::new(fanout)))),
        ];
        run_group(
            c,
            &settings,
            &format!("throughput_1to{fanout}"),
            fanout as u64,
            &contenders,
        );
    }
}

fn single_thread(c: &mut Criterion) {
    let settings = Settings::from_env();
    for fanout in [1usize, 4] {
        let contenders: Vec<(&str, Make)> = vec![
            (
                "arrayqueue",
                Box::new(move || {
                    Box::new(QueueLoop {
                        queues: (0..fanout).map(|_| ArrayQueue::new(CAPACITY)).collect(),
                        next: 0,
                    })
                }),
            ),
            (
                "switchyard_publish",
                Box::new(move || {
                    Box::new(SwitchyardLoop::new(
                        fanout,
                        Via::Publish,
                        false,
                        String::new(),
                    ))
                }),
            ),
            (
                "switchyard_publisher",
                Box::new(move || {
                    Box::new(SwitchyardLoop::new(
                        fanout,
                        Via::Publisher,
                        false,
                        String::new(),
                    ))
                }),
            ),
            (
                "switchyard_publisher_batch",
                Box::new(move || {
                    Box::new(SwitchyardLoop::new(
                        fanout,
                        Via::PublisherBatch,
                        false,
                        String::new(),
                    ))
                }),
            ),
        ];
        run_group(
            c,
            &settings,
            &format!("single_thread_1to{fanout}"),
            fanout as u64,
            &contenders,
        );
    }
}

fn churn(c: &mut Criterion) {
    let settings = Settings::from_env();
    let contenders: Vec<(&str, Make)> = [
        ("publish_quiet", Via::Publish, false),
        ("publish_churn", Via::Publish, true),
        ("publisher_quiet", Via::Publisher, false),
        ("publisher_churn", Via::Publisher, true),
    ]
    .into_iter()
    .map(|(name, via, churn)| {
        let make: Make =
            Box::new(move || Box::new(SwitchyardLoop::new(1, via, churn, name.to_string())));
        (name, make)
    })
    .collect();
    run_group(c, &settings, "churn", 1, &contenders);
}

criterion_group!(benches, cross_thread, single_thread, churn);
criterion_main!(benches);
