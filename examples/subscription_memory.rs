//! How many bytes one idle subscription costs, by queue capacity: subscribes 100,000 filters and counts
//! the heap bytes they hold with a counting global allocator (exact, unlike RSS, which an allocator that
//! reuses freed memory blurs), first as subscribed, then after 64 messages went through each one (a lane
//! keeps the block of slots its head and tail are in). Then where the bytes of one never-used
//! subscription go: its filter's nodes in the topic trie (the same filters in a bare [`Trie`]), the
//! filter strings, and the rest (the subscription core, its name, the receiver handle and its group,
//! the broker's map of live subscriptions). Last, it shows that idle receivers park: the CPU time of the
//! process while 100 threads wait in `recv_timeout`.
//!
//! Run with `cargo run --release --example subscription_memory -p switchyard [-- COUNT]`.

use std::sync::Arc;
use std::time::Duration;

use switchyard::Trie;
use switchyard::{Broker, Filter, SubscriptionOptions};

#[path = "support/counting_allocator.rs"]
mod counting_allocator;

use counting_allocator::{Counting, live_bytes};

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Messages sent through each subscription for the "after traffic" column: more than two of a lane's
/// 31-slot blocks, so blocks are allocated and freed on the way.
const TRAFFIC: usize = 64;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let count: usize = match std::env::args().nth(1) {
        Some(n) => n
            .parse()
            .map_err(|e| format!("COUNT must be a whole number: {e}"))?,
        None => 100_000,
    };
    println!("{count} subscriptions, each with its own filter; bytes per subscription");
    println!(
        "{:>8} {:>12} {:>14} {:>16}",
        "capacity", "never used", "after traffic", "for 1M never used"
    );
    let mut idle_at_default = 0.0;
    for capacity in [1, 16, 64, 256, 1024, 65536] {
        let broker = Broker::new();
        let before = live_bytes();
        // The handles' vector is counted, sized up front so that it holds exactly one handle each.
        let mut subs = Vec::with_capacity(count);
        for i in 0..count {
            subs.push(
                broker.subscribe_with(&filter(i), SubscriptionOptions::new().capacity(capacity))?,
            );
        }
        let idle = (live_bytes() - before) as f64 / count as f64;
        if capacity == SubscriptionOptions::DEFAULT_CAPACITY {
            idle_at_default = idle;
        }
        // Each subscription receives `TRAFFIC` messages (as many as fit), then gives them all back.
        for (i, sub) in subs.iter().enumerate() {
            let topic = filter(i).replace('+', "x");
            for _ in 0..TRAFFIC {
                broker.publish(&topic, "m")?;
            }
            while sub.try_recv().is_ok() {}
        }
        let after = (live_bytes() - before) as f64 / count as f64;
        println!(
            "{capacity:>8} {idle:>12.0} {after:>14.0} {:>12.0} MiB",
            idle * 1_000_000.0 / (1024.0 * 1024.0)
        );
        drop(subs);
    }
    where_the_bytes_go(count, idle_at_default)?;
    idle_receivers_cpu()?;
    Ok(())
}

/// Subscription `i`'s filter: a filter of its own, in a table of 1,000 × `count / 1,000` paths.
fn filter(i: usize) -> String {
    format!("app/{}/{}/+/metric", i % 1000, i / 1000)
}

/// Splits `total` (bytes per never-used subscription) into the trie, the filter strings and the rest,
/// by building the first two on their own.
fn where_the_bytes_go(count: usize, total: f64) -> Result<(), Box<dyn std::error::Error>> {
    let per_subscription = |before: usize| (live_bytes() - before) as f64 / count as f64;
    let before = live_bytes();
    let mut filters = Vec::with_capacity(count);
    for i in 0..count {
        filters.push(Filter::new(&filter(i))?);
    }
    let strings = per_subscription(before) - size_of::<Filter>() as f64;
    // The broker's table holds an `Arc` per entry; one shared `Arc` here, so only the trie is counted.
    let value = Arc::new(0u64);
    let before = live_bytes();
    let mut trie = Trie::new();
    for (i, f) in filters.iter().enumerate() {
        trie = trie.insert(f, i as u64, value.clone());
    }
    let nodes = per_subscription(before);
    println!(
        "where the {total:.0} B of a never-used subscription go: {nodes:.0} B of trie nodes, \
         {strings:.0} B of filter string, {:.0} B for the rest (subscription core, name, receiver \
         handle and group, the broker's map of live subscriptions)",
        total - nodes - strings
    );
    Ok(())
}

/// Idle receivers park: this process's CPU time while 100 threads each wait 2 s in `recv_timeout` on
/// a subscription nothing is published to.
fn idle_receivers_cpu() -> Result<(), Box<dyn std::error::Error>> {
    const RECEIVERS: usize = 100;
    const WAIT: Duration = Duration::from_secs(2);
    let Some(before) = cpu_ticks() else {
        println!("idle receivers: no /proc/self/stat here, CPU not measured");
        return Ok(());
    };
    let broker = Broker::new();
    let waiters: Vec<_> = (0..RECEIVERS)
        .map(|i| {
            let sub = broker.subscribe(&format!("idle/{i}"))?;
            Ok(std::thread::spawn(move || sub.recv_timeout(WAIT).is_err()))
        })
        .collect::<Result<_, switchyard::SubscribeError>>()?;
    let timed_out = waiters
        .into_iter()
        .map(|w| w.join().unwrap_or(false))
        .filter(|&t| t)
        .count();
    let ticks = cpu_ticks().unwrap_or(before) - before;
    println!(
        "idle receivers: {timed_out} threads waited {WAIT:?} each in recv_timeout; the process used \
         {ticks} clock ticks of CPU (10 ms each at the usual 100 Hz), thread start and exit included"
    );
    Ok(())
}

/// User plus system CPU time of this process, in clock ticks, from `/proc/self/stat`.
fn cpu_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces) start at the state, field 3; utime and
    // stime are fields 14 and 15.
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}
