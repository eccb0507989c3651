//! How many bytes one `Publisher` handle costs, at a million of them (one per device topic), with a
//! counting global allocator (exact heap bytes, unlike RSS):
//! - on a topic nobody subscribes to;
//! - on a topic with one subscription (its cached route holds the subscription and its own count of
//!   the messages it matched there);
//! - the same after one publish (the handle keeps its recent messages for reuse: the ring and the
//!   message just sent).
//!
//! The subscriptions are made, and each has taken one message (so its queue's slots are allocated),
//! before the handles are counted: the figures are the handles' own. Then it times dropping them all,
//! which is O(1) a handle whatever the number alive.
//!
//! Run with `cargo run --release --example handle_memory -p switchyard [-- COUNT]` (default 1,000,000).

use std::time::Instant;

use switchyard::{Broker, Publisher, SubscriptionOptions};

#[path = "support/counting_allocator.rs"]
mod counting_allocator;

use counting_allocator::{Counting, live_bytes};

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn topic(i: usize) -> String {
    format!("dev/{}/{}", i % 1000, i / 1000)
}

/// Heap bytes per handle that `make` adds, the handles' vector (sized up front) included.
fn per_handle(count: usize, make: impl FnMut(usize) -> Publisher) -> (f64, Vec<Publisher>) {
    let before = live_bytes();
    let mut handles = Vec::with_capacity(count);
    handles.extend((0..count).map(make));
    let bytes = (live_bytes() - before) as f64 / count as f64;
    (bytes, handles)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let count: usize = match std::env::args().nth(1) {
        Some(n) => n
            .parse()
            .map_err(|e| format!("COUNT must be a whole number: {e}"))?,
        None => 1_000_000,
    };
    let broker = Broker::new();
    let (unrouted, handles) = per_handle(count, |i| {
        broker
            .publisher(&format!("nobody/{i}"))
            .expect("valid topic")
    });
    drop(handles);

    let options = SubscriptionOptions::new().capacity(1);
    let mut subs = Vec::with_capacity(count);
    for i in 0..count {
        let sub = broker.subscribe_with(&topic(i), options.clone())?;
        broker.publish(&topic(i), "warm")?;
        sub.try_recv()?;
        subs.push(sub);
    }
    let (routed, mut handles) = per_handle(count, |i| broker.publisher(&topic(i)).expect("valid"));
    let before = live_bytes();
    for (p, sub) in handles.iter_mut().zip(&subs) {
        p.publish("x");
        sub.try_recv()?;
    }
    let published = routed + (live_bytes() - before) as f64 / count as f64;

    let started = Instant::now();
    drop(handles);
    let dropped_in = started.elapsed();
    let stats = broker.stats();
    assert!(stats.balances(), "the books balance");
    assert_eq!(
        stats.totals.published,
        2 * count as u64,
        "a warm-up and a handle publish a topic"
    );

    println!("{count} publisher handles, heap bytes per handle");
    println!(
        "{:<44} {:>8.0}",
        "on a topic with no subscription", unrouted
    );
    println!("{:<44} {:>8.0}", "routed to one subscription", routed);
    println!("{:<44} {:>8.0}", "routed, after one publish", published);
    println!(
        "{:<44} {:>8.1} MiB",
        "for the whole lot, after one publish",
        published * count as f64 / (1024.0 * 1024.0)
    );
    println!(
        "dropped all {count} in {:.0} ms ({:.0} ns a handle)",
        dropped_in.as_secs_f64() * 1e3,
        dropped_in.as_nanos() as f64 / count as f64
    );
    Ok(())
}
