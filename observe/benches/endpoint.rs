//! What the endpoint costs the service, and what a scrape costs.
//!
//! - `publish_1k`: `Broker::publish` at 1,000 subscriptions (each publish reaches 10 of them), with no
//!   endpoint (`no_endpoint`) and with the endpoint running while a client scrapes `/v1/stats` (top
//!   50 by depth) and `/metrics` every 250 ms (`scraped`). The two run interleaved, one round per
//!   repetition (`no_endpoint/r0 scraped/r0 no_endpoint/r1 ...`); at the end the bench prints the
//!   throughput ratio scraped / no_endpoint per repetition, as median [min - max].
//! - `scrape_1000`, `scrape_100000`: one round trip over loopback for `/v1/stats?sort=depth&limit=50`,
//!   the full `/v1/stats`, and `/metrics` (cap 1,000 series), at 1k and 100k subscriptions.
//!
//! - Then the same comparison in 500 ms windows alternating A B A B (10 pairs quick, 30 full), printed
//!   as median [min - max] of the per-pair ratios.
//!
//! `SWITCHYARD_BENCH_QUICK=1` shortens every measurement; `SWITCHYARD_BENCH_REPS=N` sets the
//! repetitions (default 3).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode};
use hyper::Method;
use switchyard::{Broker, OverflowPolicy, Subscription, SubscriptionOptions};
use switchyard_observe::{Client, ObserveHandle, ServeOptions, serve};

const SCRAPE_EVERY: Duration = Duration::from_millis(250);

fn quick() -> bool {
    std::env::var("SWITCHYARD_BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0")
}

fn reps() -> usize {
    std::env::var("SWITCHYARD_BENCH_REPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(3)
}

/// `n` subscriptions on `bench/<i mod n/10>` (10 per topic), small drop-oldest queues that nobody
/// reads: every publish does the same work whether or not anything is watching.
fn broker_with(n: usize) -> (Broker, Vec<Subscription>) {
    let broker = Broker::new();
    let topics = (n / 10).max(1);
    let subs = (0..n)
        .map(|i| {
            broker
                .subscribe_with(
                    &format!("bench/{}", i % topics),
                    SubscriptionOptions::new()
                        .capacity(4)
                        .policy(OverflowPolicy::DropOldest),
                )
                .unwrap()
        })
        .collect();
    (broker, subs)
}

fn endpoint(broker: &Broker) -> ObserveHandle {
    serve(
        broker,
        ServeOptions::default().addr("127.0.0.1:0".parse().unwrap()),
    )
    .unwrap()
}

/// A thread that scrapes `/v1/stats` and `/metrics` every 250 ms until stopped.
struct Scraper {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<u64>>,
}

impl Scraper {
    fn start(addr: String) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let client = Client::new(&addr).unwrap();
            let mut scrapes = 0;
            while !flag.load(Ordering::Relaxed) {
                let started = Instant::now();
                client
                    .request(Method::GET, "/v1/stats?sort=depth&limit=50", None)
                    .unwrap();
                client.request(Method::GET, "/metrics", None).unwrap();
                scrapes += 1;
                while started.elapsed() < SCRAPE_EVERY && !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
            scrapes
        });
        Self {
            stop,
            thread: Some(thread),
        }
    }

    fn stop(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap()
    }
}

/// Publishes/s per (contender, repetition), summed over every call criterion made.
type Tally = Arc<Mutex<Vec<(String, usize, u64, Duration)>>>;

fn publish_1k(c: &mut Criterion, tally: &Tally) {
    let (broker, _subs) = broker_with(1_000);
    let topics: Vec<String> = (0..100).map(|t| format!("bench/{t}")).collect();
    let mut group = c.benchmark_group("publish_1k");
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    let (warm, measure) = if quick() {
        (Duration::from_millis(300), Duration::from_secs(1))
    } else {
        (Duration::from_secs(1), Duration::from_secs(4))
    };
    group.warm_up_time(warm);
    group.measurement_time(measure);
    let mut scrapes = 0;
    for rep in 0..reps() {
        for contender in ["no_endpoint", "scraped"] {
            let running = (contender == "scraped").then(|| {
                let handle = endpoint(&broker);
                let scraper = Scraper::start(handle.local_addr().to_string());
                (handle, scraper)
            });
            group.bench_function(format!("{contender}/r{rep}"), |b| {
                b.iter_custom(|iters| {
                    let started = Instant::now();
                    for i in 0..iters {
                        broker
                            .publish(&topics[i as usize % topics.len()], "payload")
                            .unwrap();
                    }
                    let elapsed = started.elapsed();
                    tally
                        .lock()
                        .unwrap()
                        .push((contender.to_string(), rep, iters, elapsed));
                    elapsed
                });
            });
            if let Some((handle, scraper)) = running {
                scrapes += scraper.stop();
                drop(handle);
            }
        }
    }
    group.finish();
    println!("publish_1k: {scrapes} scrapes of /v1/stats + /metrics during the `scraped` runs");
}

fn scrapes(c: &mut Criterion) {
    for n in [1_000, 100_000] {
        let setup = Instant::now();
        let (broker, subs) = broker_with(n);
        for t in 0..(n / 10) {
            broker.publish(&format!("bench/{t}"), "x").unwrap();
        }
        let handle = endpoint(&broker);
        let client = Client::new(&handle.local_addr().to_string()).unwrap();
        println!(
            "scrape_{n}: set up in {:.1}s",
            setup.elapsed().as_secs_f64()
        );
        let mut group = c.benchmark_group(format!("scrape_{n}"));
        group.sample_size(10);
        group.sampling_mode(SamplingMode::Flat);
        if quick() {
            group.warm_up_time(Duration::from_millis(300));
            group.measurement_time(Duration::from_secs(1));
        } else {
            group.measurement_time(Duration::from_secs(3));
        }
        for (name, path) in [
            ("stats_top50", "/v1/stats?sort=depth&limit=50"),
            ("stats_full", "/v1/stats"),
            ("metrics", "/metrics"),
        ] {
            let (_, body) = client.request(Method::GET, path, None).unwrap();
            println!("scrape_{n}/{name}: {} bytes", body.len());
            group.bench_function(name, |b| {
                b.iter(|| client.request(Method::GET, path, None).unwrap())
            });
        }
        group.finish();
        drop(handle);
        drop(subs);
    }
}

/// Prints scraped / no_endpoint throughput per repetition: median [min - max].
fn report(tally: &Tally) {
    let tally = tally.lock().unwrap();
    if tally.is_empty() {
        return; // filtered out on the command line
    }
    let rate = |contender: &str, rep: usize| {
        let (iters, time) = tally
            .iter()
            .filter(|(c, r, ..)| c == contender && *r == rep)
            .fold((0u64, Duration::ZERO), |(i, t), (_, _, n, d)| {
                (i + n, t + *d)
            });
        iters as f64 / time.as_secs_f64()
    };
    let ratios: Vec<f64> = (0..reps())
        .map(|rep| rate("scraped", rep) / rate("no_endpoint", rep))
        .collect();
    println!(
        "publish throughput at 1k subscriptions, scraped every 250 ms / no endpoint: {} over {} \
         interleaved repetitions (no endpoint: {:.0} publishes/s in r0)",
        median_min_max(ratios),
        reps(),
        rate("no_endpoint", 0),
    );
}

/// The same comparison in short alternating windows (A B A B ..., `WINDOW` each), so that both sides
/// share whatever else the machine is doing at that moment; prints the per-pair ratio as median
/// [min - max]. Less exposed to a shared machine's drifting load than the criterion repetitions.
fn paired_windows() {
    const WINDOW: Duration = Duration::from_millis(500);
    let pairs = if quick() { 10 } else { 30 };
    let (broker, _subs) = broker_with(1_000);
    let topics: Vec<String> = (0..100).map(|t| format!("bench/{t}")).collect();
    let publish_for = |window: Duration| {
        let started = Instant::now();
        let mut n = 0u64;
        while started.elapsed() < window {
            for _ in 0..256 {
                broker
                    .publish(&topics[n as usize % topics.len()], "payload")
                    .unwrap();
                n += 1;
            }
        }
        n as f64 / started.elapsed().as_secs_f64()
    };
    publish_for(WINDOW); // warm-up
    let mut ratios = Vec::with_capacity(pairs);
    let mut scrapes = 0;
    for _ in 0..pairs {
        let quiet = publish_for(WINDOW);
        let handle = endpoint(&broker);
        let scraper = Scraper::start(handle.local_addr().to_string());
        let watched = publish_for(WINDOW);
        scrapes += scraper.stop();
        drop(handle);
        ratios.push(watched / quiet);
    }
    println!(
        "paired {}ms windows, publish throughput at 1k subscriptions, scraped / no endpoint: {} \
         over {pairs} pairs ({scrapes} scrapes of /v1/stats + /metrics)",
        WINDOW.as_millis(),
        median_min_max(ratios),
    );
}

/// `median [min - max]` of `values`.
fn median_min_max(mut values: Vec<f64>) -> String {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    let median = if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    };
    format!("{median:.3} [{:.3} - {:.3}]", values[0], values[n - 1])
}

fn main() {
    let tally = Tally::default();
    let mut c = Criterion::default().configure_from_args();
    publish_1k(&mut c, &tally);
    scrapes(&mut c);
    c.final_summary();
    report(&tally);
    paired_windows();
}
