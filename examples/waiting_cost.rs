//! What waiting costs a receiver at a moderate rate, beside the channels a service would use instead:
//! one publisher thread sends a timestamp at 10,000 and 20,000 messages a second, one receiver thread
//! waits in its blocking receive for each, and the run reports the receiver's p50 and p99 latency
//! (send to receive) and the CPU its thread used (its own CPU clock, `CLOCK_THREAD_CPUTIME_ID`,
//! Linux: other processes on a busy machine do not inflate it the way they inflate wall time), with
//! its voluntary context switches. Peers: `flume`, `crossbeam-channel` and `tokio::sync::broadcast`, each bounded at
//! the subscription's capacity, in the same run, rounds interleaved (the order rotates every round).
//!
//! Messages are spaced 100 µs and 50 µs apart, so every receive finds the queue empty and waits: the
//! latency is the wake-up, and the CPU is what the wait costs (a receiver that polls between messages
//! shows up here as a large fraction of a core). The publisher sleeps between messages and never
//! catches up in bursts, so no message finds its receiver already awake from the one before.
//!
//! Run with `cargo run --release -p switchyard --example waiting_cost [-- ROUNDS [SECONDS [PEER]]]`
//! (default 5 rounds of 2 s runs per peer and rate, the first 0.5 s of each run left out; PEER: only
//! the peers whose name contains it, or with `=NAME` the one so named, to profile one). With every peer, the last lines give the targets of issue 19: switchyard's p50 at 10k/s over the best peer's, and its
//! receiver CPU at 20k/s over flume's, as the median [min–max] of the rounds' ratios.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use switchyard::{Broker, Bytes, OverflowPolicy, SpinPolicy, SubscriptionOptions};

/// Queue capacity of every peer: far more than is ever queued at these rates.
const CAPACITY: usize = 1024;
/// The part of each run left out: thread start, first allocations, the caches.
const WARM_UP: Duration = Duration::from_millis(500);
/// The stamp that tells the receiver the run is over.
const END: u64 = u64::MAX;
/// The two rates: the latency target is at the first, the CPU target at the second.
const RATES: [u64; 2] = [10_000, 20_000];

#[path = "support/thread_cpu.rs"]
#[allow(dead_code)] // the case filter and the medians are for the other examples
mod thread_cpu;

/// CPU time this thread has run, in nanoseconds (Linux; elsewhere the example stops here).
fn cpu_ns() -> u64 {
    thread_cpu::cpu_ns().unwrap_or_else(|e| panic!("{e}"))
}

/// This thread's voluntary context switches (each park is one).
fn voluntary_switches() -> u64 {
    std::fs::read_to_string("/proc/thread-self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
                .and_then(|n| n.trim().parse().ok())
        })
        .unwrap_or(0)
}

/// One run of one peer at one rate.
#[derive(Debug, Clone, Copy)]
struct Sample {
    sent_per_s: f64,
    p50_us: f64,
    p99_us: f64,
    /// The receiver thread's CPU over the measured window, in cores.
    cpu_cores: f64,
    switches_per_s: f64,
}

/// The receiving end of a peer: the next stamp, waiting for it.
type Recv = Box<dyn FnMut() -> u64 + Send>;
/// The sending end of a peer.
type Send_ = Box<dyn FnMut(u64) + Send>;

/// A peer: a name and a way to make a connected sender and receiver.
struct Peer {
    name: &'static str,
    make: fn() -> (Send_, Recv),
}

fn switchyard_with(spin: SpinPolicy) -> (Send_, Recv) {
    let broker = Broker::new();
    let options = SubscriptionOptions::new()
        .capacity(CAPACITY)
        .policy(OverflowPolicy::Block {
            timeout: Duration::from_secs(1),
        })
        .spin(spin);
    let sub = broker
        .subscribe_with("wait/t", options)
        .expect("a valid filter");
    let mut publisher = broker.publisher("wait/t").expect("a valid topic");
    (
        Box::new(move |stamp| {
            publisher.publish(Bytes::copy_from_slice(&stamp.to_le_bytes()));
        }),
        Box::new(move || {
            let d = sub.recv().expect("the subscription stays open");
            u64::from_le_bytes(d.payload()[..8].try_into().expect("an 8-byte stamp"))
        }),
    )
}

fn peers() -> Vec<Peer> {
    vec![
        Peer {
            name: "switchyard",
            make: || switchyard_with(SpinPolicy::Adaptive),
        },
        Peer {
            name: "switchyard spin 20µs",
            make: || switchyard_with(SpinPolicy::For(Duration::from_micros(20))),
        },
        Peer {
            name: "flume",
            make: || {
                let (tx, rx) = flume::bounded(CAPACITY);
                (
                    Box::new(move |s| tx.send(s).expect("the receiver is alive")),
                    Box::new(move || rx.recv().expect("the sender is alive")),
                )
            },
        },
        Peer {
            name: "crossbeam-channel",
            make: || {
                let (tx, rx) = crossbeam_channel::bounded(CAPACITY);
                (
                    Box::new(move |s| tx.send(s).expect("the receiver is alive")),
                    Box::new(move || rx.recv().expect("the sender is alive")),
                )
            },
        },
        Peer {
            name: "tokio broadcast",
            make: || {
                let (tx, mut rx) = tokio::sync::broadcast::channel(CAPACITY);
                (
                    Box::new(move |s| {
                        tx.send(s).expect("the receiver is alive");
                    }),
                    Box::new(move || rx.blocking_recv().expect("never lagging at this rate")),
                )
            },
        },
    ]
}

/// Sends at `rate` for `duration` (plus the warm-up) while the receiver measures.
fn run(peer: &Peer, rate: u64, duration: Duration) -> Sample {
    let (mut send, mut recv) = (peer.make)();
    let start = Instant::now();
    let ns =
        move |at: Instant| u64::try_from(at.duration_since(start).as_nanos()).unwrap_or(END - 1);
    let from = ns(start + WARM_UP);
    let until = ns(start + WARM_UP + duration);
    let (report, result) = mpsc::channel();
    let receiver = std::thread::spawn(move || {
        let mut latencies = Vec::with_capacity((rate as usize) * 4);
        let mut window: Option<(Instant, u64, u64)> = None;
        let mut measured = None;
        loop {
            let stamp = recv();
            if stamp == END {
                break;
            }
            let now = ns(Instant::now());
            if stamp >= from && window.is_none() {
                window = Some((Instant::now(), cpu_ns(), voluntary_switches()));
            }
            if stamp >= until && measured.is_none() {
                let (t0, c0, v0) = window.expect("the window opened before it closed");
                let wall = t0.elapsed().as_secs_f64();
                measured = Some((
                    (cpu_ns() - c0) as f64 / 1e9 / wall,
                    (voluntary_switches() - v0) as f64 / wall,
                ));
            }
            if (from..until).contains(&stamp) {
                latencies.push(now.saturating_sub(stamp));
            }
        }
        let _ = report.send((latencies, measured));
    });
    let interval = Duration::from_nanos(1_000_000_000 / rate);
    let mut due = start;
    let mut sent = 0u64;
    let mut window_sent = 0u64;
    loop {
        let now = Instant::now();
        if now < due {
            std::thread::sleep(due - now);
        }
        let stamp = ns(Instant::now());
        send(stamp);
        sent += 1;
        if (from..until).contains(&stamp) {
            window_sent += 1;
        }
        if stamp >= until {
            break;
        }
        // Never catch up in a burst: a late message moves the schedule.
        due = (due + interval).max(Instant::now());
    }
    send(END);
    receiver.join().expect("the receiver thread");
    let (mut latencies, measured) = result.recv().expect("the receiver's report");
    let (cpu_cores, switches_per_s) = measured.unwrap_or((f64::NAN, f64::NAN));
    latencies.sort_unstable();
    let at = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
            .map_or(f64::NAN, |&ns| ns as f64 / 1000.0)
    };
    let _ = sent;
    Sample {
        sent_per_s: window_sent as f64 / duration.as_secs_f64(),
        p50_us: at(0.50),
        p99_us: at(0.99),
        cpu_cores,
        switches_per_s,
    }
}

fn median_min_max(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    let median = if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    };
    (median, v[0], v[v.len() - 1])
}

fn main() {
    let mut args = std::env::args().skip(1);
    let rounds: usize = args.next().map_or(5, |r| {
        r.parse()
            .ok()
            .filter(|&r| r > 0)
            .unwrap_or_else(|| panic!("ROUNDS must be a positive whole number, got {r:?}"))
    });
    let seconds: f64 = args.next().map_or(2.0, |s| {
        s.parse()
            .ok()
            .filter(|&s: &f64| s > 0.0)
            .unwrap_or_else(|| panic!("SECONDS must be a positive number, got {s:?}"))
    });
    let duration = Duration::from_secs_f64(seconds);
    let only = args.next();
    let mut peers = peers();
    if let Some(only) = &only {
        // `=NAME`: that peer alone (`=switchyard` leaves out `switchyard spin 20µs`).
        match only.strip_prefix('=') {
            Some(exact) => peers.retain(|p| p.name == exact),
            None => peers.retain(|p| p.name.contains(only.as_str())),
        }
        if peers.is_empty() {
            panic!("no peer's name matches {only:?}");
        }
    }
    // samples[rate][peer][round]
    let mut samples = vec![vec![Vec::new(); peers.len()]; RATES.len()];
    for round in 0..rounds {
        for (r, &rate) in RATES.iter().enumerate() {
            for k in 0..peers.len() {
                let p = (k + round) % peers.len();
                let s = run(&peers[p], rate, duration);
                eprintln!(
                    "round {round} {rate}/s {:<20} p50 {:>6.1} µs  cpu {:.3}",
                    peers[p].name, s.p50_us, s.cpu_cores
                );
                samples[r][p].push(s);
            }
        }
    }
    println!(
        "waiting_cost: {rounds} interleaved rounds of {seconds} s per peer and rate; median [min–max]"
    );
    println!(
        "{:<8} {:<22} {:>9} {:>22} {:>10} {:>22} {:>12}",
        "rate", "peer", "sent/s", "p50 µs", "p99 µs", "receiver CPU (cores)", "parks/s"
    );
    for (r, &rate) in RATES.iter().enumerate() {
        for (p, peer) in peers.iter().enumerate() {
            let s = &samples[r][p];
            let field = |f: fn(&Sample) -> f64| median_min_max(s.iter().map(f).collect());
            let (sent, _, _) = field(|s| s.sent_per_s);
            let (p50, p50_lo, p50_hi) = field(|s| s.p50_us);
            let (p99, _, _) = field(|s| s.p99_us);
            let (cpu, cpu_lo, cpu_hi) = field(|s| s.cpu_cores);
            let (parks, _, _) = field(|s| s.switches_per_s);
            println!(
                "{:<8} {:<22} {:>9.0} {:>22} {:>10.1} {:>22} {:>12.0}",
                format!("{}k/s", rate / 1000),
                peer.name,
                sent,
                format!("{p50:.1} [{p50_lo:.1}–{p50_hi:.1}]"),
                p99,
                format!("{cpu:.3} [{cpu_lo:.3}–{cpu_hi:.3}]"),
                parks
            );
        }
    }
    if only.is_some() {
        return;
    }
    // The targets, per round: switchyard (peer 0) against the channels (flume, crossbeam-channel).
    let channels = [2, 3];
    let p50_ratio: Vec<f64> = (0..rounds)
        .map(|i| {
            let best = channels
                .iter()
                .map(|&p| samples[0][p][i].p50_us)
                .fold(f64::INFINITY, f64::min);
            samples[0][0][i].p50_us / best
        })
        .collect();
    let cpu_ratio: Vec<f64> = (0..rounds)
        .map(|i| samples[1][0][i].cpu_cores / samples[1][2][i].cpu_cores)
        .collect();
    let (m, lo, hi) = median_min_max(p50_ratio);
    println!(
        "p50 at 10k/s, switchyard ÷ best of flume and crossbeam-channel: {m:.2} [{lo:.2}–{hi:.2}] (target ≤ 1)"
    );
    let (m, lo, hi) = median_min_max(cpu_ratio);
    println!("receiver CPU at 20k/s, switchyard ÷ flume: {m:.2} [{lo:.2}–{hi:.2}] (target ≤ 1)");
}
