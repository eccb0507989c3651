//! How many bytes one subscription costs, by queue capacity: subscribes 100,000 filters and counts the
//! heap bytes they hold with a counting global allocator (exact, unlike RSS, which an allocator that
//! reuses freed memory blurs).
//!
//! Run with `cargo run --release --example subscription_memory -p switchyard [-- COUNT]`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

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

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let count: usize = match std::env::args().nth(1) {
        Some(n) => n
            .parse()
            .map_err(|e| format!("COUNT must be a whole number: {e}"))?,
        None => 100_000,
    };
    println!("{count} subscriptions, each with its own filter");
    println!(
        "{:>8} {:>12} {:>12} {:>16}",
        "capacity", "bytes/sub", "queue part", "for 100k subs"
    );
    for capacity in [1, 16, 64, 256, 1024] {
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
        let after = LIVE_BYTES.load(Ordering::Relaxed);
        let per_sub = after.saturating_sub(before) as f64 / count as f64;
        println!(
            "{capacity:>8} {per_sub:>12.0} {:>12} {:>12.1} MiB",
            capacity * 16,
            per_sub * 100_000.0 / (1024.0 * 1024.0)
        );
        drop(subs);
    }
    Ok(())
}
