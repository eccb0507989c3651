//! `switchyard load --scenarios`: the standard scenarios against the switchyard core and the naive
//! baseline, in one table.
//!
//! Runs are interleaved (every scenario and engine once, then again: A B A B …) so that a noisy
//! neighbour or a frequency change hits both engines alike; the table shows the median of the
//! repetitions. A "raw" row measures the core alone (one `Publisher`, one thread draining with
//! `drain_into`, no generator), the ceiling the generator's 1→1 exact run is compared against.
//!
//! `1→1 200k/s` is paced well below what 1→1 sustains, so its p50 is the time from publish to a
//! receiver that was waiting for the message: the wake-up latency.
//!
//! Two rows answer "what do many subscriptions cost?": `10 subs exact` and `100k subs exact` drive the
//! same publishers over 10 and 100,000 exact subscriptions (one topic each), and the table gives the
//! ratio of their publish rates; the idle-memory rows subscribe 100,000 subscriptions in a fresh
//! `switchyard load --messages 1` process (so no earlier run's freed memory is reused) and divide its
//! resident memory growth while subscribing by 100,000, at capacity 256 and 1024.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use switchyard::{Broker, Bytes, OverflowPolicy, SubscriptionOptions};

use super::args::{EngineKind, FilterMode, LoadArgs, SlowSpec};
use super::engine::CoreEngine;
use super::generator::{Observers, Plan, execute};
use super::naive::NaiveEngine;
use super::report::{count, rate, value_name};
use super::signals;

/// One row of the table, before engines and repetitions.
struct Scenario {
    name: &'static str,
    publishers: u32,
    subscribers: u32,
    topics: u32,
    filters: FilterMode,
    capacity: u64,
    rate: u64,
    slow: Option<SlowSpec>,
    policy: OverflowPolicy,
}

/// Flat-out scenarios use back-pressure: under a drop policy a publisher that outruns its consumer
/// spends its time failing pushes on a full queue and fighting the consumer for the queue's cache
/// lines, which measures that fight rather than the broker. With `block` every message is delivered
/// and delivered/s is the sustainable end-to-end rate.
const FLAT_OUT_POLICY: OverflowPolicy = OverflowPolicy::Block {
    timeout: Duration::from_secs(1),
};

fn standard() -> Vec<Scenario> {
    let base = Scenario {
        name: "",
        publishers: 1,
        subscribers: 1,
        topics: 1,
        filters: FilterMode::Exact,
        capacity: 256,
        rate: 0,
        slow: None,
        policy: FLAT_OUT_POLICY,
    };
    vec![
        Scenario {
            name: "1→1 exact",
            ..base
        },
        Scenario {
            // Paced well below saturation, the latency is the receiver's wake-up.
            name: "1→1 200k/s",
            rate: 200_000,
            ..base
        },
        Scenario {
            name: "1→4 fan-out",
            subscribers: 4,
            ..base
        },
        Scenario {
            name: "4→4 exact",
            publishers: 4,
            subscribers: 4,
            topics: 4,
            ..base
        },
        Scenario {
            name: "10k subs mixed",
            publishers: 2,
            subscribers: 10_000,
            topics: 1_000,
            filters: FilterMode::Mixed,
            capacity: 64,
            ..base
        },
        Scenario {
            name: "10 subs exact",
            publishers: 2,
            subscribers: 10,
            topics: 10,
            capacity: 64,
            ..base
        },
        Scenario {
            name: MANY_EXACT,
            publishers: 2,
            subscribers: 100_000,
            topics: 100_000,
            capacity: 64,
            ..base
        },
        Scenario {
            name: "slow consumer",
            subscribers: 4,
            rate: 100_000,
            slow: Some(SlowSpec {
                subscriptions: 1,
                delay: Duration::from_micros(100),
            }),
            // Paced, and dropping: this row is about the slow subscription's drops.
            policy: OverflowPolicy::DropNewest,
            ..base
        },
    ]
}

/// The scenario whose publish rate is compared with `10 subs exact`.
const MANY_EXACT: &str = "100k subs exact";

/// Subscriptions of the idle-memory rows.
const IDLE_SUBSCRIPTIONS: u32 = 100_000;

/// One measurement.
#[derive(Debug, Clone, Copy, Default)]
struct Sample {
    published_per_s: f64,
    delivered_per_s: f64,
    p50_us: Option<f64>,
    p99_us: Option<f64>,
    dropped: u64,
}

/// The generator's default latency sampling, used by every scenario but the unstamped 1→1 run that
/// measures what sampling costs.
const LATENCY_EVERY: u32 = 32;

fn plan_for(s: &Scenario, engine: EngineKind, duration: Duration, seed: u64) -> Plan {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
    Plan {
        engine,
        publishers: s.publishers,
        subscribers: s.subscribers,
        receivers: 1,
        consumer_threads: s.subscribers.min(cpus).max(1),
        topics: s.topics,
        filters: s.filters,
        payload: 64,
        rate: s.rate,
        duration: Some(duration),
        messages: None,
        capacity: s.capacity,
        policy: s.policy,
        slow: s.slow,
        seed,
        latency_every: LATENCY_EVERY,
        drain: true,
        priorities: None,
        retain: false,
    }
}

fn measure(
    s: &Scenario,
    engine: EngineKind,
    duration: Duration,
    seed: u64,
    latency_every: u32,
) -> Result<Sample> {
    let mut plan = plan_for(s, engine, duration, seed);
    plan.latency_every = latency_every;
    let observers = Observers {
        progress: None,
        jsonl: None,
    };
    let outcome = match engine {
        EngineKind::Switchyard => execute(CoreEngine::default(), &plan, observers)?,
        EngineKind::Naive => execute(NaiveEngine::default(), &plan, observers)?,
    };
    if !outcome.problems.is_empty() {
        bail!(
            "scenario {} on {}: {}",
            s.name,
            value_name(engine),
            outcome.problems.join("; ")
        );
    }
    let load = outcome.snapshot.load.as_ref();
    Ok(Sample {
        published_per_s: load.map_or(0.0, |l| l.result.published_per_s),
        delivered_per_s: load.map_or(0.0, |l| l.result.delivered_per_s),
        p50_us: outcome.snapshot.latency_us.map(|l| l.p50),
        p99_us: outcome.snapshot.latency_us.map(|l| l.p99),
        dropped: outcome.snapshot.totals.dropped,
    })
}

/// The core alone: one publisher handle, one thread draining with `drain_into`, a shared static payload,
/// no pacing, stamping or counters of the generator's own. Returns messages delivered per second.
fn raw_core(duration: Duration) -> Result<f64> {
    static PAYLOAD: [u8; 64] = [0; 64];
    let broker = Broker::new();
    let sub = broker.subscribe_with(
        "raw/t",
        SubscriptionOptions::new()
            .capacity(256)
            .policy(FLAT_OUT_POLICY),
    )?;
    let mut publisher = broker.publisher("raw/t")?;
    let done = AtomicBool::new(false);
    let delivered = AtomicU64::new(0);
    let start = Instant::now();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            // The same waiting as the generator's single-receiver consumer (poll, then park in the
            // broker's wait), so the two differ only in what the generator adds.
            let mut buf = Vec::with_capacity(128);
            let mut n = 0u64;
            let mut idle = 0u32;
            loop {
                let got = sub.drain_into(&mut buf, 128).count;
                buf.clear();
                n += got as u64;
                if got > 0 {
                    idle = 0;
                    continue;
                }
                if done.load(Ordering::Acquire) && sub.is_empty() {
                    break;
                }
                idle += 1;
                if idle <= 64 {
                    std::hint::spin_loop();
                } else if sub.recv_timeout(Duration::from_millis(10)).is_ok() {
                    n += 1;
                }
            }
            delivered.store(n, Ordering::Relaxed);
        });
        let deadline = start + duration;
        'publish: loop {
            for _ in 0..1024 {
                publisher.publish(Bytes::from_static(&PAYLOAD));
            }
            if Instant::now() >= deadline {
                break 'publish;
            }
        }
        done.store(true, Ordering::Release);
    });
    Ok(delivered.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64())
}

/// Resident bytes per idle subscription at `capacity`, measured in a fresh `switchyard load` process
/// that subscribes [`IDLE_SUBSCRIPTIONS`] subscriptions and publishes nothing: its RSS after
/// subscribing, less its RSS at start, over the count.
fn idle_bytes_per_subscription(engine: EngineKind, capacity: u64) -> Result<f64> {
    let exe = std::env::current_exe().context("finding the switchyard binary")?;
    let output = std::process::Command::new(exe)
        .args([
            "load",
            "--json",
            "-",
            "--messages",
            "1",
            "--filters",
            "exact",
        ])
        .args(["--subscribers", &IDLE_SUBSCRIPTIONS.to_string()])
        .args(["--topics", &IDLE_SUBSCRIPTIONS.to_string()])
        .args(["--capacity", &capacity.to_string()])
        .args(["--engine", &value_name(engine)])
        .output()
        .context("running the idle-memory measurement")?;
    if !output.status.success() {
        bail!(
            "the idle-memory run failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let snapshot: serde_json::Value =
        serde_json::from_slice(&output.stdout).context("reading the idle-memory run's JSON")?;
    let result = &snapshot["load"]["result"];
    let (Some(start), Some(subscribed)) = (
        result["rss_start_bytes"].as_u64(),
        result["rss_subscribed_bytes"].as_u64(),
    ) else {
        bail!("the idle-memory run reported no RSS (no /proc/self/status on this system?)");
    };
    Ok(subscribed.saturating_sub(start) as f64 / f64::from(IDLE_SUBSCRIPTIONS))
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    }
}

fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!(
        "{model}, {cpus} CPUs, {} build",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    )
}

/// Runs every scenario `--repeat` times per engine, interleaved, and prints the table on stdout.
pub fn run(args: &LoadArgs) -> Result<std::process::ExitCode> {
    let scenarios = standard();
    let engines = [EngineKind::Switchyard, EngineKind::Naive];
    let duration = args.scenario_duration;
    let reps = args.repeat as usize;
    let mut samples = vec![vec![Vec::<Sample>::new(); engines.len()]; scenarios.len()];
    let mut raw = Vec::new();
    let mut unstamped = Vec::new();
    let idle_capacities = [256u64, 1024];
    let mut idle = vec![vec![Vec::<f64>::new(); engines.len()]; idle_capacities.len()];
    let total =
        reps * (scenarios.len() * engines.len() + 2 + idle_capacities.len() * engines.len());
    let mut done = 0;
    'reps: for rep in 0..reps {
        for (si, s) in scenarios.iter().enumerate() {
            for (ei, &engine) in engines.iter().enumerate() {
                if signals::interrupted() {
                    break 'reps;
                }
                done += 1;
                eprintln!(
                    "[{done}/{total}] rep {} {} on {}",
                    rep + 1,
                    s.name,
                    value_name(engine)
                );
                let seed = args.seed.wrapping_add(rep as u64);
                samples[si][ei].push(measure(s, engine, duration, seed, LATENCY_EVERY)?);
            }
            if si == 0 {
                done += 1;
                eprintln!("[{done}/{total}] rep {} raw core 1→1", rep + 1);
                raw.push(raw_core(duration)?);
                done += 1;
                eprintln!(
                    "[{done}/{total}] rep {} 1→1 without latency stamps",
                    rep + 1
                );
                let seed = args.seed.wrapping_add(rep as u64);
                unstamped
                    .push(measure(s, EngineKind::Switchyard, duration, seed, 0)?.delivered_per_s);
            }
        }
        for (ci, &capacity) in idle_capacities.iter().enumerate() {
            for (ei, &engine) in engines.iter().enumerate() {
                done += 1;
                eprintln!(
                    "[{done}/{total}] rep {} idle memory at capacity {capacity} on {}",
                    rep + 1,
                    value_name(engine)
                );
                idle[ci][ei].push(idle_bytes_per_subscription(engine, capacity)?);
            }
        }
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "switchyard load --scenarios: {}; {} per run, median of {reps} interleaved repetitions",
        machine(),
        humantime::format_duration(duration)
    );
    let _ = writeln!(
        out,
        "{:<18} {:<11} {:>13} {:>9} {:>11} {:>12} {:>16}",
        "scenario", "engine", "delivered/s", "p50 µs", "p99 µs", "drops", "switchyard/naive"
    );
    let raw_rate = median(raw.clone());
    for (si, s) in scenarios.iter().enumerate() {
        let rates: Vec<f64> = samples[si]
            .iter()
            .map(|v| median(v.iter().map(|x| x.delivered_per_s).collect()))
            .collect();
        for (ei, engine) in engines.iter().enumerate() {
            let v = &samples[si][ei];
            let p50 = median(v.iter().filter_map(|x| x.p50_us).collect());
            let p99 = median(v.iter().filter_map(|x| x.p99_us).collect());
            let micros = |v: f64| {
                if v.is_nan() {
                    "-".to_string()
                } else {
                    format!("{v:.1}")
                }
            };
            let drops = median(v.iter().map(|x| x.dropped as f64).collect());
            let ratio = if ei == 0 && rates[1] > 0.0 {
                format!("{:.1}×", rates[0] / rates[1])
            } else {
                String::new()
            };
            let _ = writeln!(
                out,
                "{:<18} {:<11} {:>13} {:>9} {:>11} {:>12} {:>16}",
                s.name,
                value_name(*engine),
                rate(rates[ei]),
                micros(p50),
                micros(p99),
                if drops.is_nan() {
                    "-".into()
                } else {
                    count(drops as u64)
                },
                ratio
            );
        }
        if si == 0 {
            let _ = writeln!(
                out,
                "{:<18} {:<11} {:>13} {:>9} {:>11} {:>12} {:>16}",
                "1→1 raw core",
                "switchyard",
                rate(raw_rate),
                "-",
                "-",
                "-",
                format!("gen/raw {:.0}%", 100.0 * rates[0] / raw_rate)
            );
            let plain = median(unstamped.clone());
            let _ = writeln!(
                out,
                "{:<18} {:<11} {:>13} {:>9} {:>11} {:>12} {:>16}",
                "1→1 no stamps",
                "switchyard",
                rate(plain),
                "-",
                "-",
                "-",
                format!("stamps cost {:.0}%", 100.0 * (1.0 - rates[0] / plain))
            );
        }
    }
    let publish_rate = |name: &str| {
        scenarios
            .iter()
            .position(|s| s.name == name)
            .map(|si| median(samples[si][0].iter().map(|x| x.published_per_s).collect()))
    };
    if let (Some(few), Some(many)) = (publish_rate("10 subs exact"), publish_rate(MANY_EXACT)) {
        let _ = writeln!(
            out,
            "{:<18} {:<11} {:>13} {:>9} {:>11} {:>12} {:>16}",
            "publish rate 100k",
            "switchyard",
            rate(many),
            "-",
            "-",
            "-",
            format!("÷ 10 subs {:.2}", many / few)
        );
    }
    for (ci, capacity) in idle_capacities.iter().enumerate() {
        for (ei, engine) in engines.iter().enumerate() {
            let bytes = median(idle[ci][ei].clone());
            let _ = writeln!(
                out,
                "{:<18} {:<11} {:>13} {:>9} {:>11} {:>12} {:>16}",
                format!("idle sub, cap {capacity}"),
                value_name(*engine),
                if bytes.is_nan() {
                    "-".into()
                } else {
                    format!("{} B", count(bytes as u64))
                },
                "-",
                "-",
                "-",
                ""
            );
        }
    }
    print!("{out}");
    Ok(std::process::ExitCode::SUCCESS)
}
