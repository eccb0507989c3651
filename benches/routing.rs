//! Routing cost against the size of the table, beside the naive linear scan, in the same run.
//!
//! For each table size (1, 1k, 100k, 1M filters from [`common::generated_filter`]: 5-level
//! `app/<a>/<b>/<c>/metric`, about 2% `+` or `#` patterns) one group `routing_<size>` holds, each run
//! once per repetition (`routing_<size>/<function>/r<rep>`, interleaved):
//!
//! - `match_trie`: `Trie::for_each_match` of the fixed topic [`common::MATCHED_TOPIC`] (a 5-level
//!   topic that matches filter 0, plus the wildcard filters that cover it at the larger sizes);
//! - `match_linear`: `filter_matches` over a `Vec` of the same filters, which is what the naive broker
//!   does per publish. Up to 100k only: at 1M one scan takes about 10× the 100k figure (over 10 ms)
//!   and adds nothing but minutes to the run;
//! - `trie_insert_remove`: `Trie::insert` then `Trie::remove` of a fresh filter (persistent: both
//!   build a new version sharing the untouched nodes);
//! - `broker_subscribe`, `broker_unsubscribe`: `Broker::subscribe_with` of a fresh filter on a broker
//!   holding `size` subscriptions, and the drop of that `Subscription` (which unsubscribes), each
//!   timed on its own. The fresh filter's path was just walked, so these are warm-cache figures;
//! - `broker_unsubscribe_cold`: the drop of one of the `size` installed subscriptions picked at
//!   random (its path is cold in the cache, as after a real table has been idle), timed, then the
//!   same filter subscribed again, untimed, so the table keeps its size;
//! - `naive_subscribe`, `naive_unsubscribe`: the naive broker's push and its search-and-remove, up to
//!   100k subscriptions (its unsubscribe is a linear search, as the match is).
//!
//! A table is built once per size (the trie with `Trie::insert` in a loop, the broker with one
//! `subscribe_with` per filter, capacity 1 so that a million subscriptions fit in memory), and the
//! build time and heap bytes kept (counted by a global allocator that is on only during builds)
//! are printed, as they are figures worth knowing too.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use switchyard::{Broker, Subscription, SubscriptionOptions, filter_matches};
use switchyard::{Filter, Trie};

use common::naive::NaiveBroker;
use common::{MATCHED_TOPIC, Settings, fresh_filter, generated_filter};

/// The naive structures (linear match, naive broker) are built up to this size.
const NAIVE_MAX: usize = 100_000;
/// Fresh filters used round-robin by the insert/subscribe benches.
const FRESH: usize = 1024;

/// Counts the bytes allocated minus the bytes freed while [`COUNTING`] is on (only during a build),
/// for the memory figures printed at setup. Off, it costs one relaxed load per allocation.
struct CountingAllocator;

static COUNTING: AtomicBool = AtomicBool::new(false);
static NET_BYTES: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is forwarded unchanged to `System`; the counters do not touch the memory.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            NET_BYTES.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, which we pass on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if COUNTING.load(Ordering::Relaxed) {
            NET_BYTES.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        }
        // SAFETY: `ptr` was allocated by `System` with `layout` (every allocation goes through it).
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// Runs `build`, printing how long it took and how many heap bytes it kept per item.
fn built<T>(what: &str, size: usize, build: impl FnOnce() -> T) -> T {
    NET_BYTES.store(0, Ordering::Relaxed);
    COUNTING.store(true, Ordering::Relaxed);
    let start = Instant::now();
    let value = build();
    let took = start.elapsed();
    COUNTING.store(false, Ordering::Relaxed);
    let bytes = NET_BYTES.load(Ordering::Relaxed).max(0) as u64;
    eprintln!(
        "routing setup: {what} of {size}: built in {took:.2?}, {:.1} MiB of heap ({} bytes each)",
        bytes as f64 / (1024.0 * 1024.0),
        bytes / size.max(1) as u64
    );
    value
}

fn build_trie(size: usize) -> Trie<u64> {
    let mut trie = Trie::new();
    for i in 0..size {
        let filter = Filter::new(&generated_filter(i)).expect("a generated filter is valid");
        trie = trie.insert(&filter, i as u64, i as u64);
    }
    trie
}

fn build_broker(size: usize) -> (Broker, Vec<Subscription>) {
    let broker = Broker::new();
    let options = SubscriptionOptions::new().capacity(1);
    let subs = (0..size)
        .map(|i| {
            broker
                .subscribe_with(&generated_filter(i), options.clone())
                .expect("valid filter")
        })
        .collect();
    (broker, subs)
}

fn trie_matches(trie: &Trie<u64>, topic: &str) -> usize {
    let mut n = 0;
    trie.for_each_match(topic, |id| {
        black_box(id);
        n += 1;
    });
    n
}

fn routing(c: &mut Criterion) {
    let settings = Settings::from_env();
    assert!(filter_matches(&generated_filter(0), MATCHED_TOPIC));
    let fresh: Vec<Filter> = (0..FRESH)
        .map(|i| Filter::new(&fresh_filter(i)).expect("a fresh filter is valid"))
        .collect();

    for &size in &settings.sizes {
        let trie = built("trie", size, || build_trie(size));
        let linear: Option<Vec<String>> =
            (size <= NAIVE_MAX).then(|| (0..size).map(generated_filter).collect());
        if let Some(filters) = &linear {
            let want = filters
                .iter()
                .filter(|f| filter_matches(f, MATCHED_TOPIC))
                .count();
            assert_eq!(
                trie_matches(&trie, MATCHED_TOPIC),
                want,
                "trie disagrees with filter_matches"
            );
        }
        let (broker, mut subs) = built("broker", size, || build_broker(size));
        let naive = (size <= NAIVE_MAX).then(|| {
            built("naive broker", size, || {
                let naive = NaiveBroker::new();
                let receivers: Vec<_> = (0..size)
                    .map(|i| naive.subscribe(&generated_filter(i), 1))
                    .collect();
                (naive, receivers)
            })
        });
        eprintln!(
            "routing setup: {} of {size} filters match `{MATCHED_TOPIC}`",
            trie_matches(&trie, MATCHED_TOPIC)
        );

        let mut group = c.benchmark_group(format!("routing_{size}"));
        settings.configure(&mut group, Duration::from_secs(1));
        let options = SubscriptionOptions::new().capacity(1);
        let mut k = 0usize;
        let mut lcg = 0x5eed_u64;
        let mut next_fresh = || {
            k += 1;
            &fresh[k % FRESH]
        };
        for rep in 0..settings.reps {
            let id = |name: &str| BenchmarkId::new(name, Settings::rep_name(rep));

            group.bench_function(id("match_trie"), |b| {
                b.iter(|| trie_matches(&trie, black_box(MATCHED_TOPIC)))
            });
            if let Some(filters) = &linear {
                group.bench_function(id("match_linear"), |b| {
                    b.iter(|| {
                        let topic = black_box(MATCHED_TOPIC);
                        filters.iter().filter(|f| filter_matches(f, topic)).count()
                    })
                });
            }
            group.bench_function(id("trie_insert_remove"), |b| {
                b.iter(|| {
                    let filter = next_fresh();
                    let with = trie.insert(filter, u64::MAX, u64::MAX);
                    let without = with.remove(filter, u64::MAX).expect("just inserted");
                    black_box(without.len())
                })
            });
            group.bench_function(id("broker_subscribe"), |b| {
                b.iter_custom(|iters| {
                    let mut spent = Duration::ZERO;
                    for _ in 0..iters {
                        let filter = next_fresh();
                        let start = Instant::now();
                        let sub = broker
                            .subscribe_with(filter.as_str(), options.clone())
                            .expect("valid filter");
                        spent += start.elapsed();
                        drop(sub);
                    }
                    spent
                })
            });
            group.bench_function(id("broker_unsubscribe"), |b| {
                b.iter_custom(|iters| {
                    let mut spent = Duration::ZERO;
                    for _ in 0..iters {
                        let sub = broker
                            .subscribe_with(next_fresh().as_str(), options.clone())
                            .expect("valid filter");
                        let start = Instant::now();
                        drop(sub);
                        spent += start.elapsed();
                    }
                    spent
                })
            });
            group.bench_function(id("broker_unsubscribe_cold"), |b| {
                b.iter_custom(|iters| {
                    let mut spent = Duration::ZERO;
                    for _ in 0..iters {
                        // A 64-bit LCG (Knuth's MMIX constants): a cheap, repeatable random pick.
                        lcg = lcg
                            .wrapping_mul(6364136223846793005)
                            .wrapping_add(1442695040888963407);
                        let at = ((lcg >> 33) as usize) % subs.len();
                        let sub = subs.swap_remove(at);
                        let filter = sub.filter().clone();
                        let start = Instant::now();
                        drop(sub);
                        spent += start.elapsed();
                        subs.push(
                            broker
                                .subscribe_with(filter.as_str(), options.clone())
                                .expect("valid"),
                        );
                    }
                    spent
                })
            });
            if let Some((naive, _)) = &naive {
                group.bench_function(id("naive_subscribe"), |b| {
                    b.iter_custom(|iters| {
                        let mut spent = Duration::ZERO;
                        for _ in 0..iters {
                            let filter = next_fresh();
                            let start = Instant::now();
                            let (id, rx) = naive.subscribe(filter.as_str(), 1);
                            spent += start.elapsed();
                            naive.unsubscribe(id);
                            drop(rx);
                        }
                        spent
                    })
                });
                group.bench_function(id("naive_unsubscribe"), |b| {
                    b.iter_custom(|iters| {
                        let mut spent = Duration::ZERO;
                        for _ in 0..iters {
                            let (id, rx) = naive.subscribe(next_fresh().as_str(), 1);
                            let start = Instant::now();
                            naive.unsubscribe(id);
                            spent += start.elapsed();
                            drop(rx);
                        }
                        spent
                    })
                });
            }
        }
        group.finish();

        let start = Instant::now();
        let live = subs.len();
        drop(subs);
        let stats = broker.stats();
        eprintln!(
            "routing teardown: unsubscribing {live} took {:.2?}; {} subscriptions left, books balance: {}",
            start.elapsed(),
            stats.totals.subscriptions,
            stats.balances()
        );
    }
}

criterion_group!(benches, routing);
criterion_main!(benches);
