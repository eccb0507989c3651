//! The plain publish path, single thread, in CPU time per message: publish then receive on one
//! thread, the way the `single_thread_1to1` bench does, but timed with the thread's own CPU clock
//! (`CLOCK_THREAD_CPUTIME_ID`, Linux), which other processes on a busy machine do not inflate
//! the way they inflate wall time. `publisher_recv_timeout` receives with `recv_timeout`, the
//! blocking receive a worker loop calls, which finds the message waiting; `ready_wait_ready` is a
//! pooled consumer's turn: its ready list's `wait_ready`, then `try_recv`. Prints one
//! `id nanoseconds` line per case: the median of 5 runs of 1M messages each. For A/B runs between
//! revisions: `scripts/bench-ab.sh --example plain_path_cpu`.
//!
//! Run with `cargo run --release -p switchyard --example plain_path_cpu [-- CASE]`, CASE one of the
//! ids it prints to run that case alone (under `perf stat`, say, to count its instructions).

use std::hint::black_box;
use std::time::Duration;

use switchyard::{Broker, Bytes, ReadySignal, SubscriptionOptions};

const MESSAGES: u64 = 1 << 20;
const BATCH: usize = 64;
const RUNS: usize = 5;

#[path = "support/thread_cpu.rs"]
mod thread_cpu;

/// The median over `RUNS` of `round`'s CPU time per message.
fn median_per_message(round: impl FnMut()) -> Result<f64, String> {
    thread_cpu::median_per_message(MESSAGES, RUNS, round)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let runs = thread_cpu::chosen_case();
    let payload = Bytes::from_static(b"21.5degC");
    let broker = Broker::new();
    let sub = broker.subscribe("#")?;
    let topic = "bench/sensor/temperature";

    if runs("publish_try_recv") {
        let publish = median_per_message(|| {
            for _ in 0..MESSAGES {
                broker
                    .publish(topic, payload.clone())
                    .expect("a valid topic");
                black_box(sub.try_recv().expect("the message just published"));
            }
        })?;
        println!("publish_try_recv {publish:.2}");
    }

    let mut publisher = broker.publisher(topic)?;
    if runs("publisher_try_recv") {
        let handle = median_per_message(|| {
            for _ in 0..MESSAGES {
                publisher.publish(payload.clone());
                black_box(sub.try_recv().expect("the message just published"));
            }
        })?;
        println!("publisher_try_recv {handle:.2}");
    }

    if runs("publisher_recv_timeout") {
        let blocking = median_per_message(|| {
            for _ in 0..MESSAGES {
                publisher.publish(payload.clone());
                black_box(
                    sub.recv_timeout(Duration::from_secs(1))
                        .expect("the message just published"),
                );
            }
        })?;
        println!("publisher_recv_timeout {blocking:.2}");
    }

    if runs("ready_wait_ready") {
        // A pooled consumer's turn: its ready list hands out the subscription, then it receives.
        // A broker of its own: on the shared one, `sub` (`#`) would take every message too.
        let broker = Broker::new();
        let signal = ReadySignal::new();
        let pooled =
            broker.subscribe_with(topic, SubscriptionOptions::new().ready_signal(&signal))?;
        let mut publisher = broker.publisher(topic)?;
        let mut keys = Vec::with_capacity(1);
        let ready = median_per_message(|| {
            for _ in 0..MESSAGES {
                publisher.publish(payload.clone());
                signal.wait_ready(&mut keys, Duration::from_secs(1));
                black_box(&keys);
                keys.clear();
                black_box(pooled.try_recv().expect("the message just published"));
            }
        })?;
        println!("ready_wait_ready {ready:.2}");
        assert!(broker.stats().balances());
    }

    let mut taken = Vec::with_capacity(BATCH);
    if runs("publish_batch_drain_into") {
        let batch = median_per_message(|| {
            for _ in 0..MESSAGES / BATCH as u64 {
                publisher.publish_batch(std::iter::repeat_n(payload.clone(), BATCH));
                sub.drain_into(&mut taken, BATCH);
                black_box(&taken);
                taken.clear();
            }
        })?;
        println!("publish_batch_drain_into {batch:.2}");
    }
    assert!(broker.stats().balances());
    Ok(())
}
