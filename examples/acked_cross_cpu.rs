//! The acknowledged path beside the plain one across two threads, 1→1, in CPU time per message: one
//! thread publishes through a `Publisher` into a subscription of capacity 1,024 under `Block`, another
//! receives (and settles). Prints one `id nanoseconds` line per case and side, the median of 5 runs
//! of 1M messages each:
//!
//! - `<case>_publisher`: the publishing thread's CPU time per message. A `Block` publisher that
//!   outruns its receiver parks instead of spinning, so this is what publishing costs, including the
//!   cache lines the receiver's side takes away from it (a line the receiver writes and the publisher
//!   reads moves between the cores on each write);
//! - `<case>_receiver`: the receiving thread's CPU time per message (it polls while the queue is
//!   empty, so a publisher that falls behind shows here as well).
//!
//! Cases as in `acked_path_cpu`: `plain` (`Subscription::try_recv`), `acked_each` (one `ack` per
//! message), `acked_batch` (`into_token`, `ack_batch` of 64). Each thread's own CPU clock is read
//! (`CLOCK_THREAD_CPUTIME_ID`, Linux), which other processes on a busy machine disturb far less than
//! wall time. For A/B runs between revisions: `scripts/bench-ab.sh --example acked_cross_cpu`.
//! `cargo run --release -p switchyard --example acked_cross_cpu [-- CASE]` runs one case alone.

use std::hint::black_box;
use std::thread;
use std::time::Duration;

use switchyard::{
    AckOptions, Broker, Bytes, OverflowPolicy, SubscriptionOptions, TryAckRecvError, TryRecvError,
};

const MESSAGES: u64 = 1 << 20;
const BATCH: usize = 64;
const RUNS: usize = 5;

#[path = "support/thread_cpu.rs"]
#[allow(dead_code)] // `median_per_message` is for the single-thread examples
mod thread_cpu;

fn options() -> SubscriptionOptions {
    SubscriptionOptions::new()
        .capacity(1024)
        .policy(OverflowPolicy::Block {
            timeout: Duration::from_secs(60),
        })
}

/// One run: `receive` on a thread of its own takes `MESSAGES` messages while this thread publishes
/// them; returns (publisher, receiver) CPU nanoseconds per message.
fn run(
    publish: &mut impl FnMut(),
    receive: impl FnOnce() -> Result<u64, String> + Send,
) -> Result<(f64, f64), String> {
    thread::scope(|s| {
        let receiver = s.spawn(|| {
            let before = thread_cpu::cpu_ns()?;
            let taken = receive()?;
            Ok::<_, String>((thread_cpu::cpu_ns()? - before, taken))
        });
        let before = thread_cpu::cpu_ns()?;
        for _ in 0..MESSAGES {
            publish();
        }
        let published = thread_cpu::cpu_ns()? - before;
        let (received, taken) = receiver.join().map_err(|_| "the receiver panicked")??;
        if taken != MESSAGES {
            return Err(format!("received {taken} of {MESSAGES}"));
        }
        let per = |ns: u64| ns as f64 / MESSAGES as f64;
        Ok((per(published), per(received)))
    })
}

/// The medians over `RUNS` (after one warm-up run) of both sides.
fn medians(
    mut publish: impl FnMut(),
    receive: impl Fn() -> Result<u64, String> + Sync,
) -> Result<(f64, f64), String> {
    run(&mut publish, &receive)?;
    let (mut publisher, mut receiver) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        let (p, r) = run(&mut publish, &receive)?;
        publisher.push(p);
        receiver.push(r);
    }
    Ok((thread_cpu::median(publisher), thread_cpu::median(receiver)))
}

fn print(case: &str, (publisher, receiver): (f64, f64)) {
    println!("{case}_publisher {publisher:.2}");
    println!("{case}_receiver {receiver:.2}");
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let runs = thread_cpu::chosen_case();
    let payload = Bytes::from_static(b"photo-0001.jpg");
    let topic = "jobs/resize";

    if runs("plain") {
        let broker = Broker::new();
        let sub = broker.subscribe_with("jobs/#", options())?;
        let mut publisher = broker.publisher(topic)?;
        let figures = medians(
            || {
                publisher.publish(payload.clone());
            },
            || {
                let mut taken = 0;
                while taken < MESSAGES {
                    match sub.try_recv() {
                        Ok(d) => {
                            black_box(d);
                            taken += 1;
                        }
                        Err(TryRecvError::Empty) => std::hint::spin_loop(),
                        Err(e) => return Err(e.to_string()),
                    }
                }
                Ok(taken)
            },
        )?;
        print("plain", figures);
        assert!(broker.stats().balances());
    }

    for (case, batch) in [("acked_each", false), ("acked_batch", true)] {
        if !runs(case) {
            continue;
        }
        let broker = Broker::new();
        let sub = broker.subscribe_acked_with("jobs/#", options().ack(AckOptions::new()))?;
        let mut publisher = broker.publisher(topic)?;
        let figures = medians(
            || {
                publisher.publish(payload.clone());
            },
            || {
                let mut tokens = Vec::with_capacity(BATCH);
                let flush = |tokens: &mut Vec<_>| {
                    let acked = sub.ack_batch(tokens);
                    tokens.clear();
                    match acked.first_error {
                        Some(e) => Err(e.to_string()),
                        None => Ok(()),
                    }
                };
                let mut taken = 0;
                while taken < MESSAGES {
                    match sub.try_recv() {
                        Ok(d) if batch => {
                            black_box(d.payload());
                            tokens.push(d.into_token());
                            if tokens.len() == BATCH {
                                flush(&mut tokens)?;
                            }
                            taken += 1;
                        }
                        Ok(d) => {
                            black_box(d.payload());
                            d.ack().map_err(|e| e.to_string())?;
                            taken += 1;
                        }
                        Err(TryAckRecvError::Empty | TryAckRecvError::WindowFull) => {
                            flush(&mut tokens)?;
                            std::hint::spin_loop();
                        }
                        Err(e) => return Err(e.to_string()),
                    }
                }
                flush(&mut tokens)?;
                Ok(taken)
            },
        )?;
        print(case, figures);
        assert!(broker.stats().balances());
    }
    Ok(())
}
