//! Four competing receivers on one acknowledged subscription (one ack per message, blocking receives,
//! as a worker pool does) and one publisher, measured by what the whole process spends rather than
//! by wall time: CPU time per message and context switches per 1,000 messages (from `/proc`,
//! Linux), which a busy machine disturbs less than throughput. Prints `id value` lines, each the
//! median of 5 runs of 500k messages:
//!
//! - `acked_cpu_ns`, `plain_cpu_ns` and `floor_cpu_ns`: CPU nanoseconds per message, acknowledged,
//!   plain, and the acknowledged design written by hand (`support/acked_floor.rs`, with the waiting
//!   of [`acked_floor::take_competing`]: spin and yield as crossbeam-channel does, then park);
//! - `*_switches_per_k`: context switches per 1,000 messages;
//! - `*_wall_ns`: wall nanoseconds per message, for reference.
//!
//! For A/B runs between revisions: `scripts/bench-ab.sh --example acked_competing_cpu`. An argument
//! sets the receivers' [`SpinPolicy`]: `adaptive` (the default), `never`, or a poll window such as
//! `5us` (`cargo run --release -p switchyard --example acked_competing_cpu -- 5us`), to see what the
//! trade of polling against parking does with more receivers than cores.

#[path = "support/acked_floor.rs"]
#[allow(dead_code)] // the single-thread parts are for examples/acked_path_cpu.rs
mod acked_floor;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use switchyard::{
    AckOptions, Broker, Bytes, OverflowPolicy, RecvTimeoutError, SpinPolicy, SubscriptionOptions,
};

const MESSAGES: u64 = 500_000;
const RECEIVERS: usize = 4;
const RUNS: usize = 5;
const POLL: Duration = Duration::from_millis(1);

/// This process's CPU time in nanoseconds and its context switches (voluntary and not): the sums
/// over its live threads of `/proc/self/task/*/schedstat` and `/proc/self/task/*/status`.
fn process_usage() -> Result<(u64, u64), String> {
    let mut cpu = 0;
    let mut switches = 0;
    let tasks =
        std::fs::read_dir("/proc/self/task").map_err(|e| format!("/proc/self/task: {e}"))?;
    for task in tasks {
        let path = task.map_err(|e| e.to_string())?.path();
        let (Ok(stat), Ok(status)) = (
            std::fs::read_to_string(path.join("schedstat")),
            std::fs::read_to_string(path.join("status")),
        ) else {
            continue; // the thread ended meanwhile
        };
        cpu += stat
            .split_whitespace()
            .next()
            .and_then(|ns| ns.parse::<u64>().ok())
            .ok_or_else(|| format!("unexpected schedstat: {stat:?}"))?;
        for line in status.lines() {
            if let Some(n) = line
                .strip_prefix("voluntary_ctxt_switches:")
                .or_else(|| line.strip_prefix("nonvoluntary_ctxt_switches:"))
            {
                switches += n.trim().parse::<u64>().map_err(|e| e.to_string())?;
            }
        }
    }
    Ok((cpu, switches))
}

/// One run: `RECEIVERS` threads take (and ack) until `MESSAGES` were taken in all, one publisher
/// publishes them. Returns (CPU ns per message, switches per 1,000 messages, wall ns per message),
/// counting the receiver threads, which end with the run, and the publishing thread.
fn run(case: Case, spin: SpinPolicy) -> Result<(f64, f64, f64), String> {
    let broker = Broker::new();
    let options =
        SubscriptionOptions::new()
            .spin(spin)
            .capacity(1024)
            .policy(OverflowPolicy::Block {
                timeout: Duration::from_secs(3600),
            });
    let taken = Arc::new(AtomicU64::new(0));
    let (before_cpu, before_switches) = process_usage()?;
    let started = Instant::now();
    let floor = (case == Case::Floor).then(|| {
        let window = AckOptions::DEFAULT_MAX_IN_FLIGHT;
        let floor = acked_floor::Floor::new(1024, window);
        (floor, Arc::new(acked_floor::Parking::default()))
    });
    let receivers: Vec<_> = if let Some((floor, parking)) = &floor {
        (0..RECEIVERS)
            .map(|_| {
                let (floor, parking, taken) = (floor.clone(), parking.clone(), taken.clone());
                std::thread::spawn(move || {
                    let mut now = 0;
                    while taken.load(Ordering::Relaxed) < MESSAGES {
                        now += 1;
                        if acked_floor::take_competing(&floor, &parking, now) {
                            taken.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    usage_of_this_thread()
                })
            })
            .collect()
    } else if case == Case::Acked {
        let sub = broker
            .subscribe_acked_with("jobs/#", options.ack(AckOptions::new()))
            .map_err(|e| e.to_string())?;
        (0..RECEIVERS)
            .map(|_| {
                let (sub, taken) = (sub.clone(), taken.clone());
                std::thread::spawn(move || {
                    while taken.load(Ordering::Relaxed) < MESSAGES {
                        match sub.recv_timeout(POLL) {
                            Ok(d) => {
                                d.ack().expect("an attempt in flight");
                                taken.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(RecvTimeoutError::Timeout) => {}
                            Err(RecvTimeoutError::Closed) => break,
                        }
                    }
                    usage_of_this_thread()
                })
            })
            .collect()
    } else {
        let sub = broker
            .subscribe_with("jobs/#", options)
            .map_err(|e| e.to_string())?;
        (0..RECEIVERS)
            .map(|_| {
                let (sub, taken) = (sub.clone(), taken.clone());
                std::thread::spawn(move || {
                    while taken.load(Ordering::Relaxed) < MESSAGES {
                        match sub.recv_timeout(POLL) {
                            Ok(d) => {
                                std::hint::black_box(d);
                                taken.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(RecvTimeoutError::Timeout) => {}
                            Err(RecvTimeoutError::Closed) => break,
                        }
                    }
                    usage_of_this_thread()
                })
            })
            .collect()
    };
    let payload = Bytes::from_static(b"photo-0001.jpg");
    if let Some((floor, parking)) = &floor {
        let mut publisher = acked_floor::FloorPublisher::default();
        for _ in 0..MESSAGES {
            floor.publish_blocking(&mut publisher, &payload, parking);
        }
    } else {
        let mut publisher = broker.publisher("jobs/resize").map_err(|e| e.to_string())?;
        for _ in 0..MESSAGES {
            publisher.publish(payload.clone());
        }
    }
    // Each receiver reports its own usage before it ends (a finished thread leaves /proc).
    let mut cpu = 0;
    let mut switches = 0;
    for r in receivers {
        let (c, s) = r.join().map_err(|_| "a receiver panicked".to_string())?;
        cpu += c;
        switches += s;
    }
    let wall = started.elapsed().as_nanos() as f64;
    if floor.as_ref().is_some_and(|(floor, _)| !floor.balances()) {
        return Err("the floor's books do not balance".into());
    }
    let (after_cpu, after_switches) = process_usage()?;
    // The main thread's share: what the process as a whole gained, the receivers being gone.
    cpu += after_cpu.saturating_sub(before_cpu);
    switches += after_switches.saturating_sub(before_switches);
    let n = MESSAGES as f64;
    Ok((cpu as f64 / n, switches as f64 * 1000.0 / n, wall / n))
}

/// What the receivers take from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Case {
    Acked,
    Plain,
    Floor,
}

/// This thread's CPU ns and context switches.
fn usage_of_this_thread() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    let status = std::fs::read_to_string("/proc/thread-self/status").unwrap_or_default();
    let cpu = stat
        .split_whitespace()
        .next()
        .and_then(|ns| ns.parse().ok())
        .unwrap_or(0);
    let switches = status
        .lines()
        .filter_map(|l| {
            l.strip_prefix("voluntary_ctxt_switches:")
                .or_else(|| l.strip_prefix("nonvoluntary_ctxt_switches:"))
        })
        .filter_map(|n| n.trim().parse::<u64>().ok())
        .sum();
    (cpu, switches)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The receivers' spin policy from the first argument (see the module docs).
fn spin_policy() -> Result<SpinPolicy, String> {
    match std::env::args().nth(1).as_deref() {
        None | Some("adaptive") => Ok(SpinPolicy::Adaptive),
        Some("never") => Ok(SpinPolicy::Never),
        Some(window) => humantime::parse_duration(window)
            .map(SpinPolicy::For)
            .map_err(|e| {
                format!(
                    "the spin policy is adaptive, never or a window like 5us, not {window:?}: {e}"
                )
            }),
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let spin = spin_policy()?;
    for (name, case) in [
        ("acked", Case::Acked),
        ("plain", Case::Plain),
        ("floor", Case::Floor),
    ] {
        let (mut cpu, mut switches, mut wall) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..RUNS {
            let (c, s, w) = run(case, spin)?;
            cpu.push(c);
            switches.push(s);
            wall.push(w);
        }
        println!("{name}_cpu_ns {:.1}", median(cpu));
        println!("{name}_switches_per_k {:.2}", median(switches));
        println!("{name}_wall_ns {:.1}", median(wall));
    }
    Ok(())
}
