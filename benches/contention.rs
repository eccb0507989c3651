//! Publishers on several cores: the time per message of each of two publishers to disjoint topics,
//! against one publisher alone (issue 19, item 7: per-publisher throughput with two ≥ 0.9× alone).
//!
//! Each publisher thread has a topic and a subscription of its own, and drains that subscription
//! itself after every [`BATCH`] publishes, so the threads share nothing but the broker: whatever they
//! both write on the way (a broker-wide counter, a shared reference count) shows here as a slower
//! message with two than with one. Two ways to publish:
//! - `handle`: through a `Publisher` (its counts are its own);
//! - `topic`: `Broker::publish` by topic string (counted in the broker's per-thread shards).
//!
//! Each thread times itself (wall clock, from a common start); the figure is the mean over the
//! threads of time per message. Ids are `contention_<via>/<1|2>_publishers/r<rep>`;
//! `scripts/bench-ratios.sh` prints one over two, rep by rep. (A thread's CPU clock would shut out
//! other processes, but Linux's `/proc/thread-self/schedstat` only moves at scheduler ticks, too coarse
//! for criterion's short samples.) On a machine with fewer free cores than publishers the two threads
//! take turns rather than run at once, which reads as a ratio near 0.5 that says nothing of
//! contention: read the ratio on a machine with at least two idle cores.
//!
//! `cargo bench -p switchyard --bench contention` (`SWITCHYARD_BENCH_QUICK=1` for a short run).

mod common;

use std::hint::black_box;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use common::Settings;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use switchyard::{Broker, Bytes, Message, Subscription, SubscriptionOptions};

/// Publishes between two drains of the thread's own subscription (within its capacity, so nothing
/// is dropped and every message is queued and taken).
const BATCH: u64 = 64;

#[derive(Clone, Copy)]
enum Via {
    Handle,
    Topic,
}

impl Via {
    fn name(self) -> &'static str {
        match self {
            Self::Handle => "handle",
            Self::Topic => "topic",
        }
    }
}

/// One publisher thread's work: `iters` messages on `topic`, drained from `sub` every batch.
fn publish_and_drain(broker: &Broker, sub: &Subscription, topic: &str, via: Via, iters: u64) {
    let payload = Bytes::from_static(b"0123456789abcdef");
    let mut publisher = broker.publisher(topic).expect("valid topic");
    let mut got: Vec<Message> = Vec::with_capacity(BATCH as usize);
    let mut sent = 0;
    while sent < iters {
        let n = BATCH.min(iters - sent);
        for _ in 0..n {
            let outcome = match via {
                Via::Handle => publisher.publish(payload.clone()),
                Via::Topic => broker.publish(topic, payload.clone()).expect("valid topic"),
            };
            black_box(outcome);
        }
        let taken = sub.drain_into(&mut got, n as usize).count;
        assert_eq!(taken as u64, n, "every message queued and taken");
        got.clear();
        sent += n;
    }
}

/// `threads` publishers at once, each `iters` messages; the mean of their times.
fn round(broker: &Broker, subs: &[Subscription], threads: usize, via: Via, iters: u64) -> Duration {
    let start = Barrier::new(threads);
    let total: Duration = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let (start, sub) = (&start, &subs[t]);
                s.spawn(move || {
                    start.wait();
                    let started = Instant::now();
                    publish_and_drain(broker, sub, &format!("contention/{t}"), via, iters);
                    started.elapsed()
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("publisher thread"))
            .sum()
    });
    total / threads as u32
}

fn contention(c: &mut Criterion) {
    let settings = Settings::from_env();
    let broker = Broker::new();
    let options = SubscriptionOptions::new().capacity(BATCH as usize);
    let subs: Vec<Subscription> = (0..2)
        .map(|t| {
            broker
                .subscribe_with(&format!("contention/{t}"), options.clone())
                .expect("valid filter")
        })
        .collect();
    for via in [Via::Handle, Via::Topic] {
        let mut group = c.benchmark_group(format!("contention_{}", via.name()));
        settings.configure(&mut group, Duration::from_secs(2));
        for rep in 0..settings.reps {
            for threads in [1, 2] {
                // A `BenchmarkId`, not a string with a `/`: criterion turns the `/` of a plain
                // id into `_`, and `scripts/bench-ratios.sh` looks for `<id>/r<rep>`.
                let id = BenchmarkId::new(format!("{threads}_publishers"), Settings::rep_name(rep));
                group.bench_function(id, |b| {
                    b.iter_custom(|iters| round(&broker, &subs, threads, via, iters))
                });
            }
        }
        group.finish();
    }
    let stats = broker.stats();
    assert!(stats.balances(), "the books balance after the bench");
}

criterion_group!(benches, contention);
criterion_main!(benches);
