//! Publisher handle churn at 1k, 100k and 1M live handles: what creating, refreshing and dropping a
//! `Publisher` costs when a service keeps one per device topic.
//!
//! - `create_drop`: `Broker::publisher` of a fresh topic, then its drop, beside N live handles (one per
//!   topic, each with a subscription and a cached route).
//! - `refresh`: a subscribe and an unsubscribe (a new routing-table version), then one publish through
//!   one of the N handles, which recomputes its route and lets the old one go.
//!
//! Each should stay flat as N grows. `cargo bench --bench handles` (add `-- --quick` on a shared
//! machine); `SWITCHYARD_BENCH_SIZES=1000,100000` picks the sizes.

mod common;

use std::hint::black_box;
use std::time::{Duration, Instant};

use common::Settings;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use switchyard::{Broker, Publisher, Subscription, SubscriptionOptions};

/// A broker with `n` subscriptions and `n` publisher handles, one of each per topic, every handle's
/// route cached by one publish.
fn live_handles(n: usize) -> (Broker, Vec<Subscription>, Vec<Publisher>) {
    let broker = Broker::new();
    let options = SubscriptionOptions::new().capacity(1);
    let subs: Vec<Subscription> = (0..n)
        .map(|i| {
            broker
                .subscribe_with(&format!("dev/{i}"), options.clone())
                .expect("valid filter")
        })
        .collect();
    let mut publishers: Vec<Publisher> = (0..n)
        .map(|i| broker.publisher(&format!("dev/{i}")).expect("valid topic"))
        .collect();
    for p in &mut publishers {
        p.publish("warm");
    }
    (broker, subs, publishers)
}

fn handles(c: &mut Criterion) {
    let settings = Settings::from_env();
    let sizes: Vec<usize> = std::env::var("SWITCHYARD_BENCH_SIZES")
        .ok()
        .map(|v| v.split(',').filter_map(|s| s.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1_000, 100_000, 1_000_000]);
    for &n in &sizes {
        let started = Instant::now();
        let (broker, _subs, mut publishers) = live_handles(n);
        eprintln!("handles setup: {n} live handles in {:?}", started.elapsed());
        let mut group = c.benchmark_group(format!("handles_{n}"));
        settings.configure(&mut group, Duration::from_secs(1));
        let mut k = 0usize;
        group.bench_function(BenchmarkId::new("create_drop", n), |b| {
            b.iter(|| {
                k += 1;
                let p = broker
                    .publisher(&format!("fresh/{k}"))
                    .expect("valid topic");
                black_box(p.topic());
            })
        });
        group.bench_function(BenchmarkId::new("refresh", n), |b| {
            b.iter(|| {
                // A new table version, so the next publish through a cached handle recomputes its
                // route.
                let sub = broker.subscribe("other/x").expect("valid filter");
                drop(sub);
                k += 1;
                let p = &mut publishers[k % n];
                black_box(p.publish("x"));
            })
        });
        group.finish();
        let started = Instant::now();
        drop(publishers);
        eprintln!(
            "handles teardown: {n} handles dropped in {:?}",
            started.elapsed()
        );
    }
}

criterion_group!(benches, handles);
criterion_main!(benches);
