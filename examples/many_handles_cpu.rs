//! Publishing through many `Publisher` handles, one per topic, in CPU time per publish, beside the
//! hand-written floor of the same design in the same process: the single-thread view of `switchyard
//! load --topics 100000 --subscribers 100000` (the `100k subs exact` row), where every publish lands
//! on a handle, a route and a subscription whose cache lines went cold since that topic's last
//! publish.
//!
//! One thread publishes each message on a handle picked at random (the same sequence on both sides),
//! timed with the thread's own CPU clock (`CLOCK_THREAD_CPUTIME_ID`, Linux) over rounds of 4,096
//! publishes; between rounds (not
//! timed) it drains the subscriptions those publishes reached. Rounds of switchyard and of the floor
//! alternate, so both see the same machine, and each pair gives a ratio. Prints `id nanoseconds`
//! lines (medians of the rounds) and the ratio floor ÷ switchyard (its speed relative to the floor:
//! the target is ≥ 0.8) as the median with its minimum and maximum.
//!
//! The floor (`tui/src/load/floor.rs`'s design): per topic an `Arc<[Arc<subscription>]>` route that
//! the handle holds, per subscription a bounded `ArrayQueue` (allocated when subscribing) and a
//! `matched` count, per handle its publish count, and a freshly allocated `Arc` message per publish.
//! Each comparison runs twice: without ready lists, then (`_ready` lines) with one on each side, as
//! the load generator's pooled consumers use them: a `ReadySignal` on every subscription against the
//! floor's flag per subscription and `SegQueue` of keys; between rounds each side drains what its
//! list hands out.
//!
//! The cross-thread costs (the receiver's core taking the lines back) are not in it: it counts the
//! publisher's cache misses and instructions, with far less of a shared machine's noise than the
//! two-thread row. After the comparison without ready lists it drops the subscriptions, then the
//! handles that still route to them, and prints how long that took (`teardown_ms`).
//!
//! Run with `cargo run --release -p switchyard --example many_handles_cpu [-- TOPICS]` (default
//! 100000).

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use std::sync::atomic::AtomicBool;

use crossbeam_queue::{ArrayQueue, SegQueue};
use switchyard::{Broker, Bytes, Publisher, ReadySignal, Subscription, SubscriptionOptions};

/// Publishes per timed round.
const ROUND: usize = 4096;
/// Timed rounds per side.
const ROUNDS: usize = 300;
const CAPACITY: usize = 64;

#[path = "support/thread_cpu.rs"]
#[allow(dead_code)] // the case filter and `median_per_message` are for the other examples
mod thread_cpu;

/// A small xorshift: the same sequence of handles on both sides, and no dependency.
struct Picks(u64);

impl Picks {
    fn next(&mut self, below: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % below as u64) as usize
    }
}

/// One side: publish on the handles named, then drain what they reached.
trait Side {
    fn publish(&mut self, topic: usize, payload: &Bytes);
    /// Drains the subscriptions of `topics`, or those its ready list hands out if it has one.
    fn drain(&mut self, topics: &[usize]);
}

struct Ours {
    subs: Vec<Subscription>,
    handles: Vec<Publisher>,
    broker: Broker,
    ready: Option<(Arc<ReadySignal>, Vec<u64>)>,
}

impl Side for Ours {
    fn publish(&mut self, topic: usize, payload: &Bytes) {
        black_box(self.handles[topic].publish(payload.clone()));
    }

    fn drain(&mut self, topics: &[usize]) {
        let keys = match &mut self.ready {
            Some((signal, keys)) => {
                keys.clear();
                signal.try_ready(keys);
                keys.iter().map(|&k| k as usize).collect()
            }
            None => topics.to_vec(),
        };
        for t in keys {
            while let Ok(m) = self.subs[t].try_recv() {
                black_box(m);
            }
        }
    }
}

type FloorMessage = Arc<(Arc<str>, Bytes)>;

struct FloorSub {
    queue: ArrayQueue<FloorMessage>,
    matched: AtomicU64,
    dropped: AtomicU64,
    /// With a ready list: set while the key is on it (`tui/src/load/floor.rs`'s protocol).
    listed: AtomicBool,
    key: u64,
}

struct FloorHandle {
    topic: Arc<str>,
    route: Arc<[Arc<FloorSub>]>,
    published: Arc<AtomicU64>,
}

struct Floor {
    subs: Vec<Arc<FloorSub>>,
    handles: Vec<FloorHandle>,
    ready: Option<Arc<SegQueue<u64>>>,
}

impl Side for Floor {
    fn publish(&mut self, topic: usize, payload: &Bytes) {
        let h = &self.handles[topic];
        let msg: FloorMessage = Arc::new((h.topic.clone(), payload.clone()));
        for sub in h.route.iter() {
            sub.matched.fetch_add(1, Ordering::Relaxed);
            if sub.queue.push(msg.clone()).is_err() {
                sub.dropped.fetch_add(1, Ordering::Relaxed);
            } else if let Some(list) = &self.ready
                && !sub.listed.load(Ordering::Relaxed)
                && !sub.listed.swap(true, Ordering::AcqRel)
            {
                list.push(sub.key);
            }
        }
        h.published.fetch_add(1, Ordering::Relaxed);
    }

    fn drain(&mut self, topics: &[usize]) {
        let keys: Vec<usize> = match &self.ready {
            Some(list) => std::iter::from_fn(|| list.pop())
                .map(|k| {
                    self.subs[k as usize].listed.store(false, Ordering::SeqCst);
                    k as usize
                })
                .collect(),
            None => topics.to_vec(),
        };
        for t in keys {
            while let Some(m) = self.subs[t].queue.pop() {
                black_box(m);
            }
        }
    }
}

fn ours(topics: usize, ready: bool) -> Result<Ours, Box<dyn std::error::Error>> {
    let broker = Broker::new();
    let signal = ready.then(ReadySignal::new);
    let subs = (0..topics)
        .map(|t| {
            let mut options = SubscriptionOptions::new().capacity(CAPACITY);
            if let Some(signal) = &signal {
                options = options.ready_signal(signal).ready_key(t as u64);
            }
            broker.subscribe_with(&format!("load/p0/t{t}"), options)
        })
        .collect::<Result<_, _>>()?;
    let handles = (0..topics)
        .map(|t| broker.publisher(&format!("load/p0/t{t}")))
        .collect::<Result<_, _>>()?;
    Ok(Ours {
        subs,
        handles,
        broker,
        ready: signal.map(|s| (s, Vec::new())),
    })
}

fn floor(topics: usize, ready: bool) -> Floor {
    let subs: Vec<Arc<FloorSub>> = (0..topics)
        .map(|t| {
            Arc::new(FloorSub {
                queue: ArrayQueue::new(CAPACITY),
                matched: AtomicU64::new(0),
                dropped: AtomicU64::new(0),
                listed: AtomicBool::new(false),
                key: t as u64,
            })
        })
        .collect();
    let handles = subs
        .iter()
        .enumerate()
        .map(|(t, sub)| FloorHandle {
            topic: Arc::from(format!("load/p0/t{t}")),
            route: Arc::from([sub.clone()]),
            published: Arc::default(),
        })
        .collect();
    Floor {
        subs,
        handles,
        ready: ready.then(Arc::default),
    }
}

/// CPU nanoseconds per publish of one round on `side`.
fn round(side: &mut impl Side, topics: &[usize], payload: &Bytes) -> Result<f64, String> {
    let before = thread_cpu::cpu_ns()?;
    for &t in topics {
        side.publish(t, payload);
    }
    let per = (thread_cpu::cpu_ns()? - before) as f64 / topics.len() as f64;
    side.drain(topics);
    Ok(per)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let topics: usize = match std::env::args().nth(1) {
        Some(n) => n.parse().map_err(|e| format!("TOPICS {n:?}: {e}"))?,
        None => 100_000,
    };
    for ready in [false, true] {
        compare(topics, ready)?;
    }
    Ok(())
}

/// Both sides at `topics`, with a ready list on each (`ready`: the pooled consumers' design, as in
/// `switchyard load`) or without.
fn compare(topics: usize, ready: bool) -> Result<(), Box<dyn std::error::Error>> {
    let payload = Bytes::from_static(&[7; 64]);
    let mut ours = ours(topics, ready)?;
    let mut floor = floor(topics, ready);
    // Two untimed laps over every handle: every queue allocated and every ring of recent messages
    // filled, as in a long run.
    let all: Vec<usize> = (0..topics).collect();
    for _ in 0..2 {
        round(&mut ours, &all, &payload)?;
        round(&mut floor, &all, &payload)?;
    }
    let mut picks = Picks(0x9E37_79B9_7F4A_7C15);
    let (mut a, mut b, mut ratio) = (Vec::new(), Vec::new(), Vec::new());
    for r in 0..ROUNDS {
        let reached: Vec<usize> = (0..ROUND).map(|_| picks.next(topics)).collect();
        let (x, y) = if r % 2 == 0 {
            let x = round(&mut ours, &reached, &payload)?;
            (x, round(&mut floor, &reached, &payload)?)
        } else {
            let y = round(&mut floor, &reached, &payload)?;
            (round(&mut ours, &reached, &payload)?, y)
        };
        a.push(x);
        b.push(y);
        ratio.push(y / x);
    }
    assert!(ours.broker.stats().balances(), "the books do not balance");
    let case = if ready { "_ready" } else { "" };
    let (lo, hi) = ratio
        .iter()
        .fold((f64::MAX, 0f64), |(lo, hi), &r| (lo.min(r), hi.max(r)));
    println!("switchyard_{topics}{case} {:.2}", thread_cpu::median(a));
    println!("floor_{topics}{case} {:.2}", thread_cpu::median(b));
    println!(
        "ratio{case} floor/switchyard {:.2} [{lo:.2}-{hi:.2}]",
        thread_cpu::median(ratio)
    );
    if !ready {
        // Subscriptions first, then the handles that still route to them: each handle finalises
        // what it alone held (a scan of the whole retiring list per drop made this quadratic).
        let teardown = std::time::Instant::now();
        let broker = ours.broker.clone();
        drop(ours);
        let teardown = teardown.elapsed();
        assert!(
            broker.stats().balances(),
            "the books do not balance after the teardown"
        );
        println!(
            "teardown_ms {:.1} (drop {topics} subscriptions, then their handles)",
            teardown.as_secs_f64() * 1e3
        );
    }
    Ok(())
}
