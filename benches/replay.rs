//! Replay of 1M logged messages to a new subscription, beside the floor of the same work.
//!
//! The log (`bench/#`) holds 1,048,576 messages of 64-byte payloads (each its own allocation, as a
//! real publisher's would be) on one topic. Each iteration subscribes from `ReplayFrom::Oldest` and
//! takes every message; `Throughput::Elements` counts the messages, so criterion reports messages
//! per second. Contenders, interleaved per repetition (`replay_1m/<contender>/r<rep>`):
//! - `drain_into_256`: a subscription to `bench/#` (the log's own filter, so the replay matches no
//!   topic) taking `Subscription::drain_into` batches of 256, each dropped after;
//! - `try_recv`: the same, one `try_recv` per message;
//! - `narrower_filter_drain_into_256`: a subscription to the topic itself, `bench/replay`, narrower
//!   than the log's filter: the replay matches each message's topic against it;
//! - `floor_clone_256`: the floor of the same work without the log: the same 1M messages in a
//!   `Vec<Message>`, cloned into a batch of 256 and dropped, in order. What any replay must do at
//!   least (a reference-count increment and decrement per message, read in sequence).
//!
//! `cargo bench -p switchyard --bench replay` (`SWITCHYARD_BENCH_QUICK=1` on a shared machine).

mod common;

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use switchyard::{
    Broker, BrokerOptions, Bytes, Filter, Message, ReplayFrom, ReplayLogOptions,
    SubscriptionOptions,
};

use common::Settings;

const MESSAGES: u64 = 1 << 20;
const PAYLOAD: usize = 64;
const BATCH: usize = 256;
const TOPIC: &str = "bench/replay";
const LOG_FILTER: &str = "bench/#";

/// A broker whose log holds `MESSAGES` messages on `TOPIC`.
fn logged_broker() -> Broker {
    let log = ReplayLogOptions::new(Filter::new(LOG_FILTER).unwrap())
        .max_messages(MESSAGES)
        .max_bytes(1 << 32);
    let broker = Broker::with_options(BrokerOptions::new().replay_log(log));
    let mut publisher = broker.publisher(TOPIC).unwrap();
    for i in 0..MESSAGES {
        let mut payload = [0u8; PAYLOAD];
        payload[..8].copy_from_slice(&i.to_le_bytes());
        publisher.publish(Bytes::copy_from_slice(&payload));
    }
    assert_eq!(broker.replay_log_stats().unwrap().messages, MESSAGES);
    broker
}

/// Subscribes to `filter` from the oldest message and takes all `MESSAGES` with `take`; returns the
/// time.
fn replay(
    broker: &Broker,
    filter: &str,
    mut take: impl FnMut(&switchyard::Subscription) -> usize,
) -> Duration {
    let started = Instant::now();
    let sub = broker
        .subscribe_with(
            filter,
            SubscriptionOptions::new().replay(ReplayFrom::Oldest),
        )
        .unwrap();
    let mut taken = 0;
    while taken < MESSAGES as usize {
        let n = take(&sub);
        assert!(n > 0, "the replay ended after {taken} messages");
        taken += n;
    }
    let elapsed = started.elapsed();
    let s = sub.stats();
    assert!(
        s.balances() && s.delivered == MESSAGES && s.dropped == 0,
        "{s:?}"
    );
    elapsed
}

fn replay_1m(c: &mut Criterion) {
    let settings = Settings::from_env();
    let broker = logged_broker();
    // The floor's messages: the same allocations the log holds, in a plain vector.
    let messages: Vec<Message> = {
        let sub = broker
            .subscribe_with(
                LOG_FILTER,
                SubscriptionOptions::new().replay(ReplayFrom::Oldest),
            )
            .unwrap();
        let mut all = Vec::with_capacity(MESSAGES as usize);
        while sub.drain_into(&mut all, BATCH).count > 0 {}
        all
    };
    let mut group = c.benchmark_group("replay_1m");
    settings.configure(&mut group, Duration::from_secs(5));
    group.throughput(Throughput::Elements(MESSAGES));
    let mut batch: Vec<Message> = Vec::with_capacity(BATCH);
    for rep in 0..settings.reps {
        let r = Settings::rep_name(rep);
        for (name, filter) in [
            ("drain_into", LOG_FILTER),
            ("narrower_filter_drain_into", TOPIC),
        ] {
            group.bench_function(format!("{name}_{BATCH}/{r}"), |b| {
                b.iter_custom(|iters| {
                    (0..iters)
                        .map(|_| {
                            replay(&broker, filter, |sub| {
                                let n = sub.drain_into(&mut batch, BATCH).count;
                                black_box(&batch);
                                batch.clear();
                                n
                            })
                        })
                        .sum()
                })
            });
        }
        group.bench_function(format!("try_recv/{r}"), |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| {
                        replay(&broker, LOG_FILTER, |sub| {
                            usize::from(black_box(sub.try_recv()).is_ok())
                        })
                    })
                    .sum()
            })
        });
        group.bench_function(format!("floor_clone_{BATCH}/{r}"), |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| {
                        let started = Instant::now();
                        for chunk in messages.chunks(BATCH) {
                            batch.extend(chunk.iter().cloned());
                            black_box(&batch);
                            batch.clear();
                        }
                        started.elapsed()
                    })
                    .sum()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, replay_1m);
criterion_main!(benches);
