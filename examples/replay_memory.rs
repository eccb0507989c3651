//! How many bytes one logged message costs the replay log, with a 64-byte payload: logs COUNT
//! messages (1,048,576 by default) on one topic, each payload its own allocation as a real
//! publisher's would be, and measures per message
//! - the heap bytes held (a counting global allocator: exact),
//! - the resident memory grown (`/proc/self/statm`: what the process really pays, allocator overhead
//!   included),
//!
//! then splits the heap bytes into the messages themselves (their shared allocation and payload,
//! which a queue holding them would pay as well) and what the log adds (its slots and chunks), by
//! replaying every message into a vector and dropping the broker.
//!
//! Run in a fresh process: `cargo run --release -p switchyard --example replay_memory [-- COUNT]`.

use switchyard::{
    Broker, BrokerOptions, Bytes, Filter, Message, ReplayFrom, ReplayLogOptions,
    SubscriptionOptions,
};

#[path = "support/counting_allocator.rs"]
mod counting_allocator;

use counting_allocator::{Counting, live_bytes};

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const PAYLOAD: usize = 64;
const TOPIC: &str = "sensors/kitchen/temp";

/// Resident memory in bytes, where `/proc/self/statm` says (Linux).
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let count: u64 = match std::env::args().nth(1) {
        Some(n) => n
            .parse()
            .map_err(|e| format!("COUNT must be a whole number: {e}"))?,
        None => 1 << 20,
    };
    let log = ReplayLogOptions::new(Filter::new("sensors/#")?)
        .max_messages(count)
        .max_bytes(u64::MAX);
    let broker = Broker::with_options(BrokerOptions::new().replay_log(log));
    let mut publisher = broker.publisher(TOPIC)?;

    let (heap_before, rss_before) = (live_bytes(), resident_bytes());
    for i in 0..count {
        let mut payload = [0u8; PAYLOAD];
        payload[..8].copy_from_slice(&i.to_le_bytes());
        publisher.publish(Bytes::copy_from_slice(&payload));
    }
    let heap_logged = live_bytes() - heap_before;
    let rss_logged = resident_bytes()
        .zip(rss_before)
        .map(|(a, b)| a.saturating_sub(b));
    let stats = broker.replay_log_stats().ok_or("the broker has a log")?;
    assert_eq!(stats.messages, count);

    // The messages alone: replayed into a vector (8 bytes a handle), the log dropped with its broker.
    let mut messages: Vec<Message> = Vec::with_capacity(count as usize);
    {
        let sub =
            broker.subscribe_with(TOPIC, SubscriptionOptions::new().replay(ReplayFrom::Oldest))?;
        while sub.drain_into(&mut messages, 4096).count > 0 {}
    }
    drop(publisher);
    drop(broker);
    let heap_messages = live_bytes() - heap_before - messages.capacity() * size_of::<Message>();
    assert_eq!(messages.len() as u64, count);

    let per = |bytes: usize| bytes as f64 / count as f64;
    println!("{count} logged messages on `{TOPIC}`, {PAYLOAD}-byte payloads; bytes per message");
    println!("heap, held by the log:          {:>6.1}", per(heap_logged));
    println!(
        "  the message and its payload:  {:>6.1}",
        per(heap_messages)
    );
    println!(
        "  the log's slots and chunks:   {:>6.1}",
        per(heap_logged - heap_messages)
    );
    match rss_logged {
        Some(rss) => println!("resident memory grown:          {:>6.1}", per(rss as usize)),
        None => println!("resident memory grown:             n/a (no /proc/self/statm)"),
    }
    Ok(())
}
