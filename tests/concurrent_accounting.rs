//! Stress: publishers, competing receivers and subscribe/unsubscribe churn at once, under every policy,
//! with plain and with acknowledged subscriptions (whose receivers also nack and drop deliveries
//! unsettled). Every message is accounted for, none is delivered (or acked) twice, none reaches a
//! subscription it did not match, and the counters balance.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::Duration;

use switchyard::{
    AckOptions, AckSubscription, Broker, OverflowPolicy, Subscription, SubscriptionOptions,
    filter_matches,
};

const MESSAGES_PER_PUBLISHER: u64 = if cfg!(miri) { 50 } else { 20_000 };
const PUBLISHERS: u64 = 3;
const TOPICS: [&str; 6] = ["a/x", "a/y", "b/x", "b/y/z", "c", "a/x/deep"];
const FILTERS: [&str; 6] = ["a/+", "#", "b/#", "+/x", "c", "a/x/#"];

fn policies() -> [OverflowPolicy; 3] {
    [
        OverflowPolicy::DropNewest,
        OverflowPolicy::DropOldest,
        OverflowPolicy::Block {
            timeout: Duration::from_millis(2),
        },
    ]
}

/// Receives until closed, checking each delivery; returns the (publisher, seq) ids it got.
fn receive_all(sub: Subscription, delivered: Arc<AtomicU64>) -> Vec<u64> {
    let filter = sub.filter().as_str().to_string();
    let mut got = Vec::new();
    loop {
        match sub.recv_timeout(Duration::from_millis(50)) {
            Ok(d) => {
                assert!(
                    filter_matches(&filter, d.topic()),
                    "{} delivered to {}",
                    d.topic(),
                    filter
                );
                got.push(u64::from_le_bytes(d.payload()[..8].try_into().unwrap()));
                delivered.fetch_add(1, Ordering::Relaxed);
            }
            Err(switchyard::RecvTimeoutError::Timeout) => {}
            Err(switchyard::RecvTimeoutError::Closed) => return got,
        }
    }
}

/// [`receive_all`] for an acknowledged subscription: acks most deliveries, nacks some first
/// deliveries and drops others unsettled (handed back), so messages go round more than once. Returns
/// the ids it acked.
fn receive_all_acked(sub: AckSubscription, delivered: Arc<AtomicU64>) -> Vec<u64> {
    let filter = sub.filter().as_str().to_string();
    let mut got = Vec::new();
    loop {
        match sub.recv_timeout(Duration::from_millis(50)) {
            Ok(d) => {
                assert!(filter_matches(&filter, d.topic()));
                let id = u64::from_le_bytes(d.payload()[..8].try_into().unwrap());
                match (id % 7, d.deliveries()) {
                    (0, 1) => d.nack().unwrap(),
                    (1, 1) => drop(d), // handed back unsettled
                    _ => {
                        d.ack().expect("an attempt in flight is acked once");
                        got.push(id);
                        delivered.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            Err(switchyard::RecvTimeoutError::Timeout) => {}
            Err(switchyard::RecvTimeoutError::Closed) => return got,
        }
    }
}

/// A long-lived subscription's receivers: two, plain or acknowledged.
fn spawn_receivers(
    broker: &Broker,
    filter: &str,
    options: SubscriptionOptions,
    acked: bool,
    delivered: &Arc<AtomicU64>,
) -> (u64, Vec<thread::JoinHandle<Vec<u64>>>) {
    if acked {
        let sub = broker.subscribe_acked_with(filter, options).unwrap();
        let rx = (0..2)
            .map(|_| {
                let (rx, delivered) = (sub.clone(), delivered.clone());
                thread::spawn(move || receive_all_acked(rx, delivered))
            })
            .collect();
        (sub.id(), rx)
    } else {
        let options = SubscriptionOptions {
            ack: None,
            ..options
        };
        let sub = broker.subscribe_with(filter, options).unwrap();
        let rx = (0..2)
            .map(|_| {
                let (rx, delivered) = (sub.clone(), delivered.clone());
                thread::spawn(move || receive_all(rx, delivered))
            })
            .collect();
        (sub.id(), rx)
    }
}

fn run(policy: OverflowPolicy, acked: bool) {
    let broker = Broker::new();
    let delivered = Arc::new(AtomicU64::new(0));
    let stop_churn = Arc::new(AtomicBool::new(false));
    let mut receivers = Vec::new();
    let mut ids = Vec::new();
    for (i, f) in FILTERS.iter().enumerate() {
        let options = SubscriptionOptions::new()
            .capacity(16 + i * 8)
            .policy(policy)
            .ack(AckOptions::new().max_in_flight(8 + i as u32));
        // With `acked`, every other subscription is acknowledged.
        let (id, rx) = spawn_receivers(&broker, f, options, acked && i % 2 == 0, &delivered);
        ids.push(id);
        receivers.extend(rx.into_iter().map(|r| (id, r)));
    }
    // Churn: short-lived subscriptions, some drained, some dropped with messages still queued.
    let churn = {
        let (broker, stop, delivered) = (broker.clone(), stop_churn.clone(), delivered.clone());
        thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let f = FILTERS[(n as usize) % FILTERS.len()];
                let options = SubscriptionOptions::new().capacity(4).policy(policy);
                if acked && n % 3 == 0 {
                    // Dropped with messages in flight: counted `unsubscribed`, never lost.
                    let sub = broker
                        .subscribe_acked_with(f, options.ack(AckOptions::new().max_in_flight(2)))
                        .unwrap();
                    thread::yield_now();
                    let held = sub.try_recv();
                    if let Ok(d) = sub.try_recv() {
                        d.ack().unwrap();
                        delivered.fetch_add(1, Ordering::Relaxed);
                    }
                    drop(sub);
                    drop(held);
                    n += 1;
                    continue;
                }
                let sub = broker.subscribe_with(f, options).unwrap();
                thread::yield_now();
                if n % 2 == 0 {
                    while let Ok(d) = sub.try_recv() {
                        assert!(filter_matches(f, d.topic()));
                        delivered.fetch_add(1, Ordering::Relaxed);
                    }
                }
                drop(sub);
                n += 1;
            }
            n
        })
    };
    let publishers: Vec<_> = (0..PUBLISHERS)
        .map(|p| {
            let broker = broker.clone();
            thread::spawn(move || {
                let mut handles: Vec<_> = TOPICS
                    .iter()
                    .map(|t| broker.publisher(t).unwrap())
                    .collect();
                let payload = |seq: u64| ((p << 32) | seq).to_le_bytes().to_vec();
                // One message through a handle, one through the broker, then a batch through a
                // handle, in turn.
                let mut seq = 0;
                while seq < MESSAGES_PER_PUBLISHER {
                    let which = (seq as usize) % TOPICS.len();
                    match seq % 3 {
                        0 => {
                            handles[which].publish(payload(seq));
                            seq += 1;
                        }
                        1 => {
                            broker.publish(TOPICS[which], payload(seq)).unwrap();
                            seq += 1;
                        }
                        _ => {
                            let end = (seq + 5).min(MESSAGES_PER_PUBLISHER);
                            handles[which].publish_batch((seq..end).map(payload));
                            seq = end;
                        }
                    }
                }
            })
        })
        .collect();
    for p in publishers {
        p.join().unwrap();
    }
    stop_churn.store(true, Ordering::Relaxed);
    let churned = churn.join().unwrap();
    assert!(churned > 0);
    // Let receivers drain, then close the long-lived subscriptions.
    let stats = loop {
        let s = broker.stats();
        if s.totals.depth == 0 && s.totals.in_flight == 0 {
            break s;
        }
        thread::sleep(Duration::from_millis(5));
    };
    assert!(stats.balances(), "books balance at quiescence: {stats:?}");
    for id in &ids {
        broker.unsubscribe(*id).unwrap();
    }
    let published = PUBLISHERS * MESSAGES_PER_PUBLISHER;
    let mut per_sub: std::collections::HashMap<u64, Vec<u64>> = Default::default();
    for (id, r) in receivers {
        per_sub.entry(id).or_default().extend(r.join().unwrap());
    }
    for (id, got) in &per_sub {
        let unique: HashSet<u64> = got.iter().copied().collect();
        assert_eq!(
            unique.len(),
            got.len(),
            "subscription {id} got (or acked) a message twice"
        );
    }
    for s in broker.stats().subscriptions {
        if let Some(ack) = s.ack {
            // Every attempt that ended without an ack led to another delivery or the dead letters.
            assert_eq!(
                ack.nacked + ack.expired + ack.handed_back,
                ack.redelivered + ack.dead_lettered + ack.in_flight,
                "{ack:?}"
            );
            assert_eq!(ack.refused.total(), 0);
        }
    }
    let end = broker.stats();
    let t = end.totals;
    assert_eq!(t.published, published);
    assert_eq!(t.unrouted, 0, "`#` matches everything");
    assert_eq!(
        t.delivered,
        delivered.load(Ordering::Relaxed),
        "every delivery was seen by a receiver"
    );
    assert_eq!(
        t.matched,
        t.delivered + t.dropped,
        "nothing queued, nothing lost: {t:?}"
    );
    assert_eq!(t.depth, 0);
    assert!(end.balances());
    let at_least = published * 2; // `#` and one more filter match every topic
    assert!(t.matched >= at_least, "{} < {}", t.matched, at_least);
}

#[test]
fn drop_newest_balances_under_publishers_receivers_and_churn() {
    run(policies()[0], false);
}

#[test]
fn drop_oldest_balances_under_publishers_receivers_and_churn() {
    run(policies()[1], false);
}

#[test]
fn block_balances_under_publishers_receivers_and_churn() {
    run(policies()[2], false);
}

#[test]
fn acknowledged_drop_newest_balances_under_nacks_hand_backs_and_churn() {
    run(policies()[0], true);
}

#[test]
fn acknowledged_drop_oldest_balances_under_nacks_hand_backs_and_churn() {
    run(policies()[1], true);
}

#[test]
fn acknowledged_block_balances_under_nacks_hand_backs_and_churn() {
    run(policies()[2], true);
}

#[test]
fn an_unsubscribe_racing_publishers_loses_nothing() {
    for round in 0..if cfg!(miri) { 2 } else { 50 } {
        let broker = Broker::new();
        let sub = broker
            .subscribe_with("r", SubscriptionOptions::new().capacity(8))
            .unwrap();
        let publishers: Vec<_> = (0..2)
            .map(|_| {
                let broker = broker.clone();
                thread::spawn(move || {
                    let mut p = broker.publisher("r").unwrap();
                    for _ in 0..500 {
                        p.publish("x");
                        broker.publish("r", "y").unwrap();
                    }
                })
            })
            .collect();
        thread::sleep(Duration::from_micros(50 * (round % 5)));
        let mut received = 0;
        while let Ok(_d) = sub.try_recv() {
            received += 1;
        }
        drop(sub);
        for p in publishers {
            p.join().unwrap();
        }
        let t = broker.stats().totals;
        assert_eq!(t.published, 2000);
        assert_eq!(t.delivered, received);
        assert_eq!(t.matched, t.delivered + t.dropped, "round {round}: {t:?}");
        assert_eq!(
            t.matched + t.unrouted,
            2000,
            "round {round}: every publish is either routed or unrouted"
        );
    }
}
