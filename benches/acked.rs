//! Acknowledged delivery beside the plain path and beside a naive acknowledged engine, in the same run.
//!
//! Groups (contenders interleaved `A B C .. A B C ..`, ids `<group>/<contender>/r<rep>`; throughput
//! counts acknowledged, or for the plain path received, messages):
//!
//! - `acked_1to1`: one publisher thread (a `Publisher` handle), one receiver thread, one subscription
//!   of capacity 1024 under `Block` (so nothing is dropped):
//!   - `plain`: `Subscription::try_recv` (at most once: the baseline the issue compares with);
//!   - `acked_each`: `AckSubscription::try_recv` then `AckDelivery::ack`, one ack per message;
//!   - `acked_batch`: `try_recv` then `into_token`, and `ack_batch` of every 64 tokens;
//!   - `acked_drain`: `drain_into` of up to 64, then `into_token` and `ack_batch` of the batch;
//!   - `plain_drain`: `Subscription::drain_into` of up to 64 (the plain path in batches, for
//!     `acked_drain` to be compared with as well).
//! - `acked_competing_4`: one subscription, four competing receiver threads, one ack per message,
//!   each receiver blocking while there is nothing (`recv_timeout`, as a worker pool does; four
//!   spinning receivers on two cores would measure the scheduler):
//!   - `switchyard_acked`: an `AckSubscription` cloned four times;
//!   - `naive_acked`: what one writes first: a `std::sync::mpsc::sync_channel` whose receiver sits
//!     behind a mutex (the worker pool of the Rust book), and a `Mutex<HashMap<token, message>>` of
//!     messages in flight that every receive inserts into and every ack removes from;
//!   - `switchyard_plain`: the plain subscription with four receivers, for scale;
//!   - `switchyard_acked_drain` and `naive_acked_batch`: the same in batches, as a worker that
//!     pulls work does: a blocking receive for the first message, then up to 63 more without
//!     waiting (`drain_into`; the naive engine's `try_recv` under the lock it already holds), and
//!     the batch acked in one call (`ack_batch`; one lock of the naive engine's map to insert the
//!     batch and one to remove it).
//!   - `floor_acked`: the acknowledged design written by hand with nothing else, and the simplest
//!     waiting that is correct and not wasteful (`examples/support/acked_floor.rs`): how far above the
//!     naive engine the design itself gets on the machine at hand, beside `switchyard_acked`.
//!
//! Each round publishes `n` messages and ends when `n` have been acknowledged (or received) in all;
//! books are checked at teardown.

#[path = "../examples/support/acked_floor.rs"]
#[allow(dead_code)] // the single-thread parts are for examples/acked_path_cpu.rs
mod acked_floor;
mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver as ChannelRx, RecvTimeoutError as RecvTimeout, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use switchyard::{
    AckDelivery, AckOptions, AckSubscription, AckToken, Broker, Bytes, OverflowPolicy, Publisher,
    RecvTimeoutError, Subscription, SubscriptionOptions, TryAckRecvError, TryRecvError,
};

use common::Settings;
use common::rig::{Receiver, Rig, Spin};

const CAPACITY: usize = 1024;
const TOPIC: &str = "jobs/resize";
const BATCH: usize = 64;
/// How long a blocking receiver waits before it looks whether the round is over.
const POLL: Duration = Duration::from_millis(1);

/// A message as the naive engine carries it, and its map of messages in flight.
type NaiveMessage = (Arc<str>, Bytes);
type InFlightMap = Arc<Mutex<HashMap<u64, NaiveMessage>>>;

fn payload() -> Bytes {
    Bytes::from_static(b"photo-0001.jpg")
}

fn fail(what: String) -> ! {
    eprintln!("bench failed: {what}");
    std::process::exit(2);
}

fn options() -> SubscriptionOptions {
    SubscriptionOptions::new()
        .capacity(CAPACITY)
        .policy(OverflowPolicy::Block {
            timeout: Duration::from_secs(3600),
        })
}

trait Contender {
    fn round(&mut self, n: u64) -> Duration;
}

/// Receivers that share one round's work: each takes until the group has taken its `n` in all, then
/// reports `n` to the rig (which wants every receiver to report the round's `n`).
#[derive(Clone, Default)]
struct Shared {
    taken: Arc<AtomicU64>,
}

impl Shared {
    /// Runs `take` (how many messages it took) until the group's running total reaches this
    /// receiver's running `target`.
    fn receive(&self, target: &mut u64, n: u64, who: &str, mut take: impl FnMut() -> u64) -> u64 {
        *target += n;
        let mut spin = Spin::new();
        while self.taken.load(Ordering::Acquire) < *target {
            let took = take();
            if took > 0 {
                self.taken.fetch_add(took, Ordering::AcqRel);
                spin.reset();
            } else {
                spin.idle(|| {
                    format!(
                        "{who}: the group took {} of {target}",
                        self.taken.load(Ordering::Relaxed)
                    )
                });
            }
        }
        n
    }
}

/// How an acknowledged receiver settles what it takes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Acks {
    Each,
    Batch,
    /// `drain_into`, then `ack_batch` of what it took.
    Drain,
}

fn take_acked(
    sub: &AckSubscription,
    acks: Acks,
    tokens: &mut Vec<AckToken>,
    batch: &mut Vec<AckDelivery>,
) -> u64 {
    if acks == Acks::Drain {
        return match sub.drain_into(batch, BATCH) {
            Ok(_) => ack_all(sub, batch, tokens),
            Err(TryAckRecvError::Empty | TryAckRecvError::WindowFull) => 0,
            Err(TryAckRecvError::Closed) => fail("subscription closed during a round".into()),
        };
    }
    u64::from(take_acked_one(sub, acks, tokens))
}

fn take_acked_one(sub: &AckSubscription, acks: Acks, tokens: &mut Vec<AckToken>) -> bool {
    match sub.try_recv() {
        Ok(d) => {
            black_box(d.payload());
            match acks {
                Acks::Each => {
                    if d.ack().is_err() {
                        fail("an ack was refused".into());
                    }
                }
                Acks::Batch | Acks::Drain => {
                    tokens.push(d.into_token());
                    if tokens.len() == BATCH {
                        flush(sub, tokens);
                    }
                }
            }
            true
        }
        Err(TryAckRecvError::Empty) => {
            flush(sub, tokens);
            false
        }
        Err(TryAckRecvError::WindowFull) => {
            flush(sub, tokens);
            false
        }
        Err(TryAckRecvError::Closed) => fail("subscription closed during a round".into()),
    }
}

fn flush(sub: &AckSubscription, tokens: &mut Vec<AckToken>) {
    if !tokens.is_empty() {
        let batch = sub.ack_batch(tokens);
        if batch.refused > 0 {
            fail(format!("acks refused: {:?}", batch.first_error));
        }
        tokens.clear();
    }
}

fn take_plain(sub: &Subscription, blocking: bool) -> bool {
    let got = if blocking {
        sub.recv_timeout(POLL).map_err(|e| match e {
            RecvTimeoutError::Timeout => TryRecvError::Empty,
            RecvTimeoutError::Closed => TryRecvError::Closed,
        })
    } else {
        sub.try_recv()
    };
    match got {
        Ok(d) => {
            black_box(d);
            true
        }
        Err(TryRecvError::Empty) => false,
        Err(TryRecvError::Closed) => fail("subscription closed during a round".into()),
    }
}

/// A blocking receive and one ack, for the competing group.
fn take_acked_blocking(sub: &AckSubscription) -> bool {
    match sub.recv_timeout(POLL) {
        Ok(d) => {
            black_box(d.payload());
            if d.ack().is_err() {
                fail("an ack was refused".into());
            }
            true
        }
        Err(RecvTimeoutError::Timeout) => false,
        Err(RecvTimeoutError::Closed) => fail("subscription closed during a round".into()),
    }
}

/// A blocking receive, then up to `BATCH - 1` more without waiting, acked in one `ack_batch`.
fn take_acked_blocking_batch(
    sub: &AckSubscription,
    tokens: &mut Vec<AckToken>,
    batch: &mut Vec<AckDelivery>,
) -> u64 {
    match sub.recv_timeout(POLL) {
        Ok(d) => batch.push(d),
        Err(RecvTimeoutError::Timeout) => return 0,
        Err(RecvTimeoutError::Closed) => fail("subscription closed during a round".into()),
    }
    // Empty or a full window ends the batch; what it holds is settled either way.
    let _ = sub.drain_into(batch, BATCH - 1);
    ack_all(sub, batch, tokens)
}

/// Reads each delivery of `batch` and acks them all in one `ack_batch`; returns how many.
fn ack_all(sub: &AckSubscription, batch: &mut Vec<AckDelivery>, tokens: &mut Vec<AckToken>) -> u64 {
    let n = batch.len() as u64;
    for d in batch.drain(..) {
        black_box(d.payload());
        tokens.push(d.into_token());
    }
    flush(sub, tokens);
    n
}

/// Switchyard, plain or acknowledged, with `receivers` competing receivers on one subscription.
struct Hop {
    rig: Rig,
    publisher: Publisher,
    broker: Broker,
}

impl Hop {
    fn plain(receivers: usize, blocking: bool) -> Self {
        Self::plain_taking(receivers, move |sub, _| {
            u64::from(take_plain(sub, blocking))
        })
    }

    /// One receiver taking batches of up to `BATCH` with `drain_into`.
    fn plain_drain() -> Self {
        Self::plain_taking(1, |sub, batch| {
            let n = sub.drain_into(batch, BATCH).count;
            for m in batch.drain(..) {
                black_box(m.payload());
            }
            n as u64
        })
    }

    fn plain_taking(
        receivers: usize,
        take: impl Fn(&Subscription, &mut Vec<switchyard::Message>) -> u64 + Clone + Send + 'static,
    ) -> Self {
        let broker = Broker::new();
        let sub = Arc::new(broker.subscribe_with("jobs/#", options()).unwrap());
        let shared = Shared::default();
        let bodies = (0..receivers)
            .map(|_| {
                let (sub, shared, take, mut target) =
                    (sub.clone(), shared.clone(), take.clone(), 0);
                let mut batch = Vec::with_capacity(BATCH);
                Box::new(move |n| {
                    shared.receive(&mut target, n, "plain", || take(&sub, &mut batch))
                }) as Receiver
            })
            .collect();
        Self::start(broker, bodies)
    }

    fn acked(receivers: usize, acks: Acks, blocking: bool) -> Self {
        let broker = Broker::new();
        let sub = broker
            .subscribe_acked_with("jobs/#", options().ack(AckOptions::new()))
            .unwrap();
        let shared = Shared::default();
        let bodies = (0..receivers)
            .map(|_| {
                let (sub, shared, mut target) = (sub.clone(), shared.clone(), 0);
                let mut tokens = Vec::with_capacity(BATCH);
                let mut batch = Vec::with_capacity(BATCH);
                Box::new(move |n| {
                    let got = shared.receive(&mut target, n, "acked", || {
                        if blocking && acks == Acks::Drain {
                            take_acked_blocking_batch(&sub, &mut tokens, &mut batch)
                        } else if blocking {
                            u64::from(take_acked_blocking(&sub))
                        } else {
                            take_acked(&sub, acks, &mut tokens, &mut batch)
                        }
                    });
                    flush(&sub, &mut tokens);
                    got
                }) as Receiver
            })
            .collect();
        Self::start(broker, bodies)
    }

    fn start(broker: Broker, bodies: Vec<Receiver>) -> Self {
        Self {
            rig: Rig::spawn(bodies),
            publisher: broker.publisher(TOPIC).unwrap(),
            broker,
        }
    }
}

impl Contender for Hop {
    fn round(&mut self, n: u64) -> Duration {
        let publisher = &mut self.publisher;
        self.rig.round(n, |n| {
            for _ in 0..n {
                publisher.publish(payload());
            }
        })
    }
}

impl Drop for Hop {
    fn drop(&mut self) {
        let t = self.broker.stats().totals;
        if t.dropped != 0 || !t.balances() {
            fail(format!("books: {t:?}"));
        }
    }
}

/// The naive acknowledged engine: a channel behind a mutex, and a mutex-held map of what is in flight.
struct NaiveAcked {
    rig: Rig,
    sender: SyncSender<NaiveMessage>,
    in_flight: InFlightMap,
    topic: Arc<str>,
}

impl NaiveAcked {
    fn new(receivers: usize) -> Self {
        Self::with(receivers, false)
    }

    /// `batched`: each receiver takes up to `BATCH` under one lock of the channel (the first with a
    /// wait), and inserts and removes the batch under one lock of the map each.
    fn with(receivers: usize, batched: bool) -> Self {
        let (sender, rx) = std::sync::mpsc::sync_channel(CAPACITY);
        let rx: Arc<Mutex<ChannelRx<NaiveMessage>>> = Arc::new(Mutex::new(rx));
        let in_flight: InFlightMap = Arc::default();
        let next_token = Arc::new(AtomicU64::new(0));
        let shared = Shared::default();
        let bodies = (0..receivers)
            .map(|_| {
                let (rx, in_flight, next_token, shared, mut target) = (
                    rx.clone(),
                    in_flight.clone(),
                    next_token.clone(),
                    shared.clone(),
                    0,
                );
                let mut batch = Vec::with_capacity(BATCH);
                Box::new(move |n| {
                    shared.receive(&mut target, n, "naive", || {
                        {
                            let rx = rx.lock().unwrap();
                            match rx.recv_timeout(POLL) {
                                Ok(msg) => batch.push(msg),
                                Err(RecvTimeout::Timeout) => return 0,
                                Err(RecvTimeout::Disconnected) => {
                                    fail("naive channel closed".into())
                                }
                            }
                            while batched && batch.len() < BATCH {
                                match rx.try_recv() {
                                    Ok(msg) => batch.push(msg),
                                    Err(_) => break,
                                }
                            }
                        }
                        let first = next_token.fetch_add(batch.len() as u64, Ordering::Relaxed);
                        let tokens = first..first + batch.len() as u64;
                        {
                            let mut map = in_flight.lock().unwrap();
                            for (token, msg) in tokens.clone().zip(&batch) {
                                map.insert(token, msg.clone());
                            }
                        }
                        for msg in batch.drain(..) {
                            black_box(&msg.1);
                        }
                        // The acks.
                        let mut map = in_flight.lock().unwrap();
                        tokens.filter(|token| map.remove(token).is_some()).count() as u64
                    })
                }) as Receiver
            })
            .collect();
        Self {
            rig: Rig::spawn(bodies),
            sender,
            in_flight,
            topic: Arc::from(TOPIC),
        }
    }
}

impl Contender for NaiveAcked {
    fn round(&mut self, n: u64) -> Duration {
        let (sender, topic) = (&self.sender, &self.topic);
        self.rig.round(n, |n| {
            for _ in 0..n {
                sender.send((topic.clone(), payload())).unwrap();
            }
        })
    }
}

impl Drop for NaiveAcked {
    fn drop(&mut self) {
        if !self.in_flight.lock().unwrap().is_empty() {
            fail("naive engine left messages in flight".into());
        }
    }
}

/// The acknowledged design written by hand, with competing receivers (see the module docs).
struct FloorAcked {
    rig: Rig,
    floor: Arc<acked_floor::Floor>,
    parking: Arc<acked_floor::Parking>,
    publisher: acked_floor::FloorPublisher,
}

impl FloorAcked {
    fn new(receivers: usize) -> Self {
        let window = AckOptions::DEFAULT_MAX_IN_FLIGHT;
        let floor = acked_floor::Floor::new(CAPACITY, window);
        let parking = Arc::new(acked_floor::Parking::default());
        let shared = Shared::default();
        let bodies = (0..receivers)
            .map(|_| {
                let (floor, parking, shared, mut target) =
                    (floor.clone(), parking.clone(), shared.clone(), 0);
                // The deadlines' clock: a count stands in for the library's coarse clock (a few
                // nanoseconds a read).
                let mut now = 0;
                Box::new(move |n| {
                    shared.receive(&mut target, n, "floor", || {
                        now += 1;
                        u64::from(acked_floor::take_competing(&floor, &parking, now))
                    })
                }) as Receiver
            })
            .collect();
        Self {
            rig: Rig::spawn(bodies),
            floor,
            parking,
            publisher: acked_floor::FloorPublisher::default(),
        }
    }
}

impl Contender for FloorAcked {
    fn round(&mut self, n: u64) -> Duration {
        let (floor, parking, publisher) = (&self.floor, &self.parking, &mut self.publisher);
        let payload = payload();
        self.rig.round(n, |n| {
            for _ in 0..n {
                floor.publish_blocking(publisher, &payload, parking);
            }
        })
    }
}

impl Drop for FloorAcked {
    fn drop(&mut self) {
        if !self.floor.balances() {
            fail("the floor's books do not balance".into());
        }
    }
}

type Make = Box<dyn Fn() -> Box<dyn Contender>>;

fn run_group(c: &mut Criterion, settings: &Settings, name: &str, contenders: &[(&str, Make)]) {
    let mut group = c.benchmark_group(name);
    settings.configure(&mut group, Duration::from_secs(2));
    group.throughput(Throughput::Elements(1));
    for rep in 0..settings.reps {
        for (contender_name, make) in contenders {
            let mut contender = make();
            group.bench_function(
                criterion::BenchmarkId::new(*contender_name, Settings::rep_name(rep)),
                |b| b.iter_custom(|iters| contender.round(iters)),
            );
        }
    }
    group.finish();
}

fn one_to_one(c: &mut Criterion) {
    let settings = Settings::from_env();
    let contenders: Vec<(&str, Make)> = vec![
        ("plain", Box::new(|| Box::new(Hop::plain(1, false)))),
        (
            "acked_each",
            Box::new(|| Box::new(Hop::acked(1, Acks::Each, false))),
        ),
        (
            "acked_batch",
            Box::new(|| Box::new(Hop::acked(1, Acks::Batch, false))),
        ),
        (
            "acked_drain",
            Box::new(|| Box::new(Hop::acked(1, Acks::Drain, false))),
        ),
        ("plain_drain", Box::new(|| Box::new(Hop::plain_drain()))),
    ];
    run_group(c, &settings, "acked_1to1", &contenders);
}

fn competing(c: &mut Criterion) {
    let settings = Settings::from_env();
    let contenders: Vec<(&str, Make)> = vec![
        (
            "switchyard_acked",
            Box::new(|| Box::new(Hop::acked(4, Acks::Each, true))),
        ),
        ("naive_acked", Box::new(|| Box::new(NaiveAcked::new(4)))),
        (
            "switchyard_plain",
            Box::new(|| Box::new(Hop::plain(4, true))),
        ),
        (
            "switchyard_acked_drain",
            Box::new(|| Box::new(Hop::acked(4, Acks::Drain, true))),
        ),
        (
            "naive_acked_batch",
            Box::new(|| Box::new(NaiveAcked::with(4, true))),
        ),
        ("floor_acked", Box::new(|| Box::new(FloorAcked::new(4)))),
    ];
    run_group(c, &settings, "acked_competing_4", &contenders);
}

criterion_group!(benches, one_to_one, competing);
criterion_main!(benches);
