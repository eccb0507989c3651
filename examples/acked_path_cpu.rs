//! The acknowledged path beside the plain one, single thread, in CPU time per message: publish through
//! a `Publisher` handle, then receive and settle on the same thread, timed with the thread's own CPU
//! clock (`CLOCK_THREAD_CPUTIME_ID`, Linux), which other processes on a busy machine do not
//! inflate the way they inflate wall time. Prints one `id nanoseconds` line per case, the median of 5
//! runs of 1M messages each:
//!
//! - `plain`: `Subscription::try_recv` (at most once: the baseline);
//! - `acked_each`: `AckSubscription::try_recv` then `AckDelivery::ack`, one ack per message;
//! - `acked_batch`: `try_recv` then `into_token`, and `ack_batch` of every 64 tokens;
//! - `plain_drain` and `acked_drain`: 64 publishes, then one `drain_into` of 64 (plain; acknowledged,
//!   then `into_token` and `ack_batch`), the batch shapes of both paths;
//! - `floor_plain`, `floor_each`, `floor_batch`: the same three on the hand-written floor of the same
//!   design (`support/acked_floor.rs`: a queue, a window of places behind mutexes, a free list, and
//!   nothing else), each right after its library case, so the gap is what the library's features
//!   cost on the path and not the design.
//!
//! For A/B runs between revisions: `scripts/bench-ab.sh --example acked_path_cpu`. Run with
//! `cargo run --release -p switchyard --example acked_path_cpu [-- CASE]`, CASE one of the ids, to
//! run that case alone (under `perf record`, say).

use std::hint::black_box;

use switchyard::{AckOptions, Broker, Bytes};

const MESSAGES: u64 = 1 << 20;
const BATCH: usize = 64;
const RUNS: usize = 5;

#[path = "support/thread_cpu.rs"]
mod thread_cpu;

#[path = "support/acked_floor.rs"]
#[allow(dead_code)] // the blocking parts are for the competing bench (benches/acked.rs)
mod acked_floor;

use acked_floor::{Floor, FloorPublisher};

/// The median over `RUNS` of `round`'s CPU time per message.
fn median_per_message(round: impl FnMut()) -> Result<f64, String> {
    thread_cpu::median_per_message(MESSAGES, RUNS, round)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let runs = thread_cpu::chosen_case();
    let payload = Bytes::from_static(b"photo-0001.jpg");
    let topic = "jobs/resize";

    if runs("plain") {
        let broker = Broker::new();
        let sub = broker.subscribe("jobs/#")?;
        let mut publisher = broker.publisher(topic)?;
        let plain = median_per_message(|| {
            for _ in 0..MESSAGES {
                publisher.publish(payload.clone());
                black_box(sub.try_recv().expect("the message just published"));
            }
        })?;
        println!("plain {plain:.2}");
        assert!(broker.stats().balances());
    }

    if runs("floor_plain") {
        let floor = Floor::new(1024, 64);
        let mut publisher = FloorPublisher::default();
        let plain = median_per_message(|| {
            for _ in 0..MESSAGES {
                assert!(floor.publish(&mut publisher, &payload));
                black_box(&floor.take().expect("the message just published").payload);
            }
        })?;
        println!("floor_plain {plain:.2}");
        assert!(floor.balances());
    }

    if runs("acked_each") {
        let broker = Broker::new();
        let sub = broker.subscribe_acked("jobs/#", AckOptions::new())?;
        let mut publisher = broker.publisher(topic)?;
        let each = median_per_message(|| {
            for _ in 0..MESSAGES {
                publisher.publish(payload.clone());
                let d = sub.try_recv().expect("the message just published");
                black_box(d.payload());
                d.ack().expect("an attempt in flight");
            }
        })?;
        println!("acked_each {each:.2}");
        assert!(broker.stats().balances());
    }

    if runs("floor_each") {
        let floor = Floor::new(1024, 64);
        let mut publisher = FloorPublisher::default();
        let each = median_per_message(|| {
            for now in 0..MESSAGES {
                assert!(floor.publish(&mut publisher, &payload));
                let d = floor.take_acked(now).expect("the message just published");
                black_box(&d.message.payload);
                assert!(d.ack(), "an attempt in flight");
            }
        })?;
        println!("floor_each {each:.2}");
        assert!(floor.balances());
    }

    if runs("acked_batch") {
        let broker = Broker::new();
        let sub = broker.subscribe_acked("jobs/#", AckOptions::new())?;
        let mut publisher = broker.publisher(topic)?;
        let mut tokens = Vec::with_capacity(BATCH);
        let batch = median_per_message(|| {
            for _ in 0..MESSAGES / BATCH as u64 {
                for _ in 0..BATCH {
                    publisher.publish(payload.clone());
                    let d = sub.try_recv().expect("the message just published");
                    black_box(d.payload());
                    tokens.push(d.into_token());
                }
                let acked = sub.ack_batch(&tokens);
                assert_eq!(acked.refused, 0, "{:?}", acked.first_error);
                tokens.clear();
            }
        })?;
        println!("acked_batch {batch:.2}");
        assert!(broker.stats().balances());
    }

    if runs("floor_batch") {
        let floor = Floor::new(1024, 64);
        let mut publisher = FloorPublisher::default();
        let mut tokens = Vec::with_capacity(BATCH);
        let batch = median_per_message(|| {
            for now in 0..MESSAGES / BATCH as u64 {
                for _ in 0..BATCH {
                    assert!(floor.publish(&mut publisher, &payload));
                    let d = floor.take_acked(now).expect("the message just published");
                    black_box(&d.message.payload);
                    tokens.push(d.token());
                }
                assert_eq!(floor.ack_batch(&tokens), BATCH as u64);
                tokens.clear();
            }
        })?;
        println!("floor_batch {batch:.2}");
        assert!(floor.balances());
    }
    if runs("plain_drain") {
        let broker = Broker::new();
        let sub = broker.subscribe("jobs/#")?;
        let mut publisher = broker.publisher(topic)?;
        let mut batch = Vec::with_capacity(BATCH);
        let drained = median_per_message(|| {
            for _ in 0..MESSAGES / BATCH as u64 {
                for _ in 0..BATCH {
                    publisher.publish(payload.clone());
                }
                assert_eq!(sub.drain_into(&mut batch, BATCH).count, BATCH);
                for m in batch.drain(..) {
                    black_box(m.payload());
                }
            }
        })?;
        println!("plain_drain {drained:.2}");
        assert!(broker.stats().balances());
    }

    if runs("acked_drain") {
        let broker = Broker::new();
        let sub = broker.subscribe_acked("jobs/#", AckOptions::new())?;
        let mut publisher = broker.publisher(topic)?;
        let mut batch = Vec::with_capacity(BATCH);
        let mut tokens = Vec::with_capacity(BATCH);
        let drained = median_per_message(|| {
            for _ in 0..MESSAGES / BATCH as u64 {
                for _ in 0..BATCH {
                    publisher.publish(payload.clone());
                }
                assert_eq!(sub.drain_into(&mut batch, BATCH), Ok(BATCH));
                for d in batch.drain(..) {
                    black_box(d.payload());
                    tokens.push(d.into_token());
                }
                let acked = sub.ack_batch(&tokens);
                assert_eq!(acked.refused, 0, "{:?}", acked.first_error);
                tokens.clear();
            }
        })?;
        println!("acked_drain {drained:.2}");
        assert!(broker.stats().balances());
    }
    Ok(())
}
