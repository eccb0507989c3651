//! The switch from replay to live delivery under concurrent publishing: publishers (by topic, by
//! handle, in batches) run while subscriptions start from the log at various points, and each
//! subscription gets every logged message from its start to the last publish exactly once, each
//! publisher's in the order it published them. With a log small enough to evict under a replay, what
//! a subscription does not get is exactly what it is told it missed.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use switchyard::{
    Broker, BrokerOptions, Filter, OverflowPolicy, ReplayFrom, ReplayLogOptions, Subscription,
    SubscriptionOptions,
};

const PUBLISHERS: u64 = 4;
const PER_PUBLISHER: u64 = if cfg!(debug_assertions) {
    10_000
} else {
    50_000
};
const TOTAL: u64 = PUBLISHERS * PER_PUBLISHER;
/// How long a receiver waits for the next message before the test fails (a bound, not a timing).
const STUCK: Duration = Duration::from_secs(60);

/// How many times the subscribing thread lets the publishers on; a publisher stays at most one
/// stage ahead of it, so subscriptions are made while the publishers run, all through the test.
const STAGES: u64 = 20;

/// Publisher `p` publishes `PER_PUBLISHER` payloads `p:i` on topic `t/p`, in its own way: by
/// topic, by handle, or in batches of 7; it waits at each stage for the subscribing thread.
fn publisher(broker: &Broker, p: u64, stage: &Arc<AtomicU64>) -> thread::JoinHandle<()> {
    let broker = broker.clone();
    let stage = stage.clone();
    thread::spawn(move || {
        let topic = format!("t/{p}");
        let payload = |i: u64| format!("{p}:{i}");
        let wait_for_stage = |i: u64| {
            let until = Instant::now() + STUCK;
            while stage.load(Ordering::Acquire) < i * STAGES / PER_PUBLISHER
                && Instant::now() < until
            {
                thread::yield_now();
            }
        };
        let mut handle = broker.publisher(&topic).unwrap();
        let all: Vec<u64> = (0..PER_PUBLISHER).collect();
        for batch in all.chunks(7) {
            wait_for_stage(batch[0]);
            match p % 3 {
                0 => batch.iter().for_each(|&i| {
                    broker.publish(&topic, payload(i)).unwrap();
                }),
                1 => batch.iter().for_each(|&i| {
                    handle.publish(payload(i));
                }),
                _ => {
                    handle.publish_batch(batch.iter().map(|&i| payload(i)));
                }
            }
        }
    })
}

/// What one subscription received: sequence numbers in arrival order, and each publisher's message
/// indices in arrival order.
#[derive(Default)]
struct Received {
    seqs: Vec<u64>,
    by_publisher: HashMap<u64, Vec<u64>>,
    /// Sequence numbers it was told it missed (`Delivery::missed`, `evicted`).
    told_missed: u64,
}

/// Receives until the message numbered `TOTAL` (the last publish) has arrived, and as much after
/// it as is queued.
fn receive_to_the_end(sub: &Subscription) -> Received {
    let mut got = Received::default();
    let mut seen_last = false;
    while !seen_last {
        let d = sub
            .recv_timeout(STUCK)
            .unwrap_or_else(|e| panic!("stuck after {} messages: {e}", got.seqs.len()));
        if let Some(missed) = d.missed() {
            got.told_missed += missed.evicted;
        }
        let seq = d.message().seq().expect("every topic is logged");
        seen_last |= seq == TOTAL;
        got.seqs.push(seq);
        let text = std::str::from_utf8(d.payload()).unwrap();
        let (p, i) = text.split_once(':').unwrap();
        got.by_publisher
            .entry(p.parse().unwrap())
            .or_default()
            .push(i.parse().unwrap());
    }
    while let Ok(d) = sub.try_recv() {
        got.seqs.push(d.message().seq().unwrap());
    }
    got
}

fn each_publishers_order_holds(got: &Received, start: &ReplayFrom) {
    for (p, indices) in &got.by_publisher {
        assert!(
            indices.windows(2).all(|w| w[0] < w[1]),
            "{start}: publisher {p}'s messages out of order"
        );
    }
}

/// The starts the subscriptions cycle through, made from what the log holds now.
fn start_for(k: usize, broker: &Broker, began: SystemTime) -> ReplayFrom {
    let next = broker.replay_log_stats().unwrap().next_seq;
    match k % 5 {
        0 => ReplayFrom::Oldest,
        1 => ReplayFrom::Seq(next),
        2 => ReplayFrom::Seq((next / 2).max(1)),
        3 => ReplayFrom::Last(1 + (k as u64 * 97) % 2_000),
        _ => ReplayFrom::Time(began + Duration::from_micros(k as u64 * 300)),
    }
}

#[test]
fn every_subscription_gets_a_contiguous_run_to_the_last_publish_while_publishers_run() {
    let log = ReplayLogOptions::new(Filter::new("t/#").unwrap()).max_messages(TOTAL);
    let broker = Broker::with_options(BrokerOptions::new().replay_log(log));
    let began = SystemTime::now();
    let stage = Arc::new(AtomicU64::new(0));
    let publishers: Vec<_> = (0..PUBLISHERS)
        .map(|p| publisher(&broker, p, &stage))
        .collect();

    // Subscriptions made while the publishers run, each drained by its own thread as it goes: two
    // per stage, at a third and two thirds of the stage's messages, while the publishers are still
    // publishing the rest of it.
    let mut receivers = Vec::new();
    for k in 0..(2 * STAGES) as usize {
        let stage_now = k as u64 / 2;
        let reached = stage_now * TOTAL / STAGES + (k as u64 % 2 + 1) * TOTAL / STAGES / 3;
        let until = Instant::now() + STUCK;
        while broker.replay_log_stats().unwrap().next_seq <= reached && Instant::now() < until {
            thread::yield_now();
        }
        let start = start_for(k, &broker, began);
        // Half block the publishers when full (a receiver still replaying holds them up), half have
        // room for everything: either way nothing is dropped.
        let options = SubscriptionOptions::new().replay(start);
        let options = if k % 2 == 0 {
            options.capacity(64).policy(OverflowPolicy::Block {
                timeout: Duration::from_secs(600),
            })
        } else {
            options.capacity(TOTAL as usize)
        };
        let sub = broker.subscribe_with("t/#", options).unwrap();
        receivers.push(thread::spawn(move || {
            (start, receive_to_the_end(&sub), sub)
        }));
        stage.store(k as u64 / 2 + 1, Ordering::Release);
    }
    stage.store(STAGES, Ordering::Release);
    for p in publishers {
        p.join().unwrap();
    }

    for receiver in receivers {
        let (start, got, sub) = receiver.join().unwrap();
        let replay = sub.stats().replay.expect("a replaying subscription");
        let first = replay.first_seq;
        if let ReplayFrom::Seq(n) = start {
            assert_eq!(first, n, "{start}");
        }
        if start == ReplayFrom::Oldest {
            assert_eq!(first, 1, "{start}: nothing was evicted");
        }
        let mut sorted = got.seqs.clone();
        sorted.sort_unstable();
        let want: Vec<u64> = (first..=TOTAL).collect();
        assert!(
            sorted == want,
            "{start}: {} messages, want {}..={TOTAL} once each (first {:?}, last {:?})",
            sorted.len(),
            first,
            sorted.first(),
            sorted.last(),
        );
        assert_eq!(got.told_missed, 0, "{start}");
        each_publishers_order_holds(&got, &start);
        let s = sub.stats();
        assert!(s.balances(), "{start}: {s:?}");
        assert_eq!(
            (s.matched, s.delivered, s.dropped),
            (want.len() as u64, want.len() as u64, 0)
        );
    }
}

#[test]
fn a_replay_the_log_evicts_under_gets_or_is_told_every_message_once() {
    // A log far smaller than what is published while the replays run: they fall behind the log and
    // skip to its oldest message, told as gaps.
    let log = ReplayLogOptions::new(Filter::new("t/#").unwrap()).max_messages(500);
    let broker = Broker::with_options(BrokerOptions::new().replay_log(log));
    let stage = Arc::new(AtomicU64::new(STAGES));
    let publishers: Vec<_> = (0..PUBLISHERS)
        .map(|p| publisher(&broker, p, &stage))
        .collect();
    let slow = Arc::new(AtomicBool::new(true));
    let mut receivers = Vec::new();
    for k in 0..8 {
        let start = ReplayFrom::Seq(broker.replay_log_stats().unwrap().next_seq.max(1));
        let options = SubscriptionOptions::new()
            .capacity(TOTAL as usize)
            .replay(start);
        let sub = broker.subscribe_with("t/#", options).unwrap();
        let slow = slow.clone();
        receivers.push(thread::spawn(move || {
            // Let the log move on before the first receive, for the even ones.
            if k % 2 == 0 {
                let until = Instant::now() + STUCK;
                while slow.load(Ordering::Relaxed) && Instant::now() < until {
                    thread::sleep(Duration::from_millis(1));
                }
            }
            (start, receive_to_the_end(&sub), sub)
        }));
        thread::sleep(Duration::from_millis(2));
    }
    for p in publishers {
        p.join().unwrap();
    }
    slow.store(false, Ordering::Relaxed);
    for receiver in receivers {
        let (start, got, sub) = receiver.join().unwrap();
        let ReplayFrom::Seq(first) = start else {
            unreachable!()
        };
        let mut sorted = got.seqs.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), got.seqs.len(), "{start}: a message twice");
        assert!(
            sorted.iter().all(|&s| (first..=TOTAL).contains(&s)),
            "{start}"
        );
        assert_eq!(
            got.seqs.len() as u64 + got.told_missed,
            TOTAL - first + 1,
            "{start}: received and told missed make up everything from the start"
        );
        each_publishers_order_holds(&got, &start);
        let s = sub.stats();
        assert!(s.balances(), "{start}: {s:?}");
        assert_eq!(s.dropped_by_reason.evicted, got.told_missed, "{start}");
    }
}
