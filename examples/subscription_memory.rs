//! How many bytes one idle subscription costs, by queue capacity: subscribes 100,000 filters and counts
//! the heap bytes they hold with a counting global allocator (exact, unlike RSS, which an allocator that
//! reuses freed memory blurs), first as subscribed, then after 64 messages went through each one (a lane
//! keeps the block of slots its head and tail are in). Then shows that idle receivers park: the CPU
//! time of the process while 100 threads wait in `recv_timeout`.
//!
//! Run with `cargo run --release --example subscription_memory -p switchyard [-- COUNT]`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use switchyard::{Broker, SubscriptionOptions};

/// The system allocator, counting the bytes currently allocated.
struct Counting;

static LIVE_BYTES: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so `System`'s
// guarantees hold; the counter is only bookkeeping.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded unchanged; the caller upholds `GlobalAlloc::alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded unchanged; `ptr` came from `alloc` with this `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

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
    for capacity in [1, 16, 64, 256, 1024, 65536] {
        let broker = Broker::new();
        let before = LIVE_BYTES.load(Ordering::Relaxed);
        let subs: Vec<_> = (0..count)
            .map(|i| {
                broker.subscribe_with(
                    &format!("app/{}/{}/+/metric", i % 1000, i / 1000),
                    SubscriptionOptions::new().capacity(capacity),
                )
            })
            .collect::<Result<_, _>>()?;
        let idle = LIVE_BYTES.load(Ordering::Relaxed).saturating_sub(before) as f64 / count as f64;
        // Each subscription receives `TRAFFIC` messages (as many as fit), then gives them all back.
        for (i, sub) in subs.iter().enumerate() {
            let topic = format!("app/{}/{}/x/metric", i % 1000, i / 1000);
            for _ in 0..TRAFFIC {
                broker.publish(&topic, "m")?;
            }
            while sub.try_recv().is_ok() {}
        }
        let after = LIVE_BYTES.load(Ordering::Relaxed).saturating_sub(before) as f64 / count as f64;
        println!(
            "{capacity:>8} {idle:>12.0} {after:>14.0} {:>12.0} MiB",
            idle * 1_000_000.0 / (1024.0 * 1024.0)
        );
        drop(subs);
    }
    idle_receivers_cpu()?;
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
