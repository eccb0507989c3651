//! Dead letters: every drop is offered to the broker's dead-letter queue with its reason and
//! subscription; the queue is bounded, counts its own overflow, and the books balance on both sides.

use std::collections::HashSet;
use std::thread;
use std::time::Duration;

use switchyard::{
    Broker, BrokerOptions, DropReason, OverflowPolicy, Priority, PublishOptions,
    SubscriptionOptions,
};

fn broker_with_dead_letters(capacity: usize) -> Broker {
    Broker::with_options(BrokerOptions::new().dead_letters(capacity))
}

#[test]
fn a_broker_without_dead_letters_has_no_queue_and_no_stats_section() {
    let broker = Broker::new();
    assert!(broker.dead_letters().is_none());
    assert!(broker.stats().dead_letters.is_none());
}

#[test]
fn each_drop_reason_reaches_the_dead_letter_queue_with_its_subscription() {
    let broker = broker_with_dead_letters(64);
    let dlq = broker.dead_letters().unwrap();
    let full = broker
        .subscribe_with("a", SubscriptionOptions::new().capacity(1).name("full"))
        .unwrap();
    let oldest = broker
        .subscribe_with(
            "a",
            SubscriptionOptions::new()
                .capacity(1)
                .name("oldest")
                .policy(OverflowPolicy::DropOldest),
        )
        .unwrap();
    let blocked = broker
        .subscribe_with(
            "a",
            SubscriptionOptions::new()
                .capacity(1)
                .name("blocked")
                .policy(OverflowPolicy::Block {
                    timeout: Duration::from_millis(1),
                }),
        )
        .unwrap();
    broker.publish("a", "first").unwrap();
    broker.publish("a", "second").unwrap();
    let blocked_id = blocked.id();
    blocked.unsubscribe();

    let mut letters = Vec::new();
    dlq.drain_into(&mut letters, 100);
    let seen: HashSet<(String, DropReason, String)> = letters
        .iter()
        .map(|l| {
            (
                l.subscription_name().to_string(),
                l.reason(),
                String::from_utf8_lossy(l.message().payload()).into_owned(),
            )
        })
        .collect();
    let expected: HashSet<(String, DropReason, String)> = [
        ("full", DropReason::QueueFull, "second"),
        ("oldest", DropReason::Evicted, "first"),
        ("blocked", DropReason::Timeout, "second"),
        ("blocked", DropReason::Unsubscribed, "first"),
    ]
    .into_iter()
    .map(|(a, b, c)| (a.to_string(), b, c.to_string()))
    .collect();
    assert_eq!(seen, expected);
    assert!(letters.iter().any(|l| l.subscription() == blocked_id));
    let stats = broker.stats();
    assert!(stats.balances(), "{stats:?}");
    let d = stats.dead_letters.unwrap();
    assert_eq!((d.offered, d.delivered, d.overflow, d.depth), (4, 4, 0, 0));
    assert_eq!(
        stats.totals.dropped, d.offered,
        "every drop was offered once"
    );
    drop((full, oldest));
}

#[test]
fn a_full_dead_letter_queue_evicts_its_oldest_and_counts_the_overflow() {
    let broker = broker_with_dead_letters(3);
    let dlq = broker.dead_letters().unwrap();
    let _sub = broker
        .subscribe_with("a", SubscriptionOptions::new().capacity(1))
        .unwrap();
    for i in 0..11 {
        broker.publish("a", format!("{i}")).unwrap();
    }
    let stats = dlq.stats();
    assert_eq!((stats.offered, stats.overflow, stats.depth), (10, 7, 3));
    let kept: Vec<String> = std::iter::from_fn(|| dlq.try_recv())
        .map(|l| String::from_utf8_lossy(l.message().payload()).into_owned())
        .collect();
    assert_eq!(
        kept,
        ["8", "9", "10"],
        "the most recent dead letters are kept"
    );
    assert!(broker.stats().balances());
}

#[test]
fn dead_letters_keep_the_priority_of_the_dropped_message() {
    let broker = broker_with_dead_letters(8);
    let _sub = broker
        .subscribe_with("a", SubscriptionOptions::new().capacity(1))
        .unwrap();
    let high = PublishOptions::new().priority(Priority::High);
    broker.publish_with("a", "kept", high).unwrap();
    broker.publish_with("a", "dropped", high).unwrap();
    let letter = broker.dead_letters().unwrap().try_recv().unwrap();
    assert_eq!(letter.message().priority(), Priority::High);
    assert_eq!(letter.reason(), DropReason::QueueFull);
}

#[test]
fn recv_timeout_waits_for_a_dead_letter_and_times_out_when_none_comes() {
    let broker = broker_with_dead_letters(8);
    let dlq = broker.dead_letters().unwrap();
    assert!(dlq.recv_timeout(Duration::from_millis(5)).is_none());
    let _sub = broker
        .subscribe_with("a", SubscriptionOptions::new().capacity(1))
        .unwrap();
    let waiter = thread::spawn(move || dlq.recv_timeout(Duration::from_secs(10)));
    thread::sleep(Duration::from_millis(10));
    broker.publish("a", "kept").unwrap();
    broker.publish("a", "dropped").unwrap();
    assert_eq!(
        waiter.join().unwrap().unwrap().reason(),
        DropReason::QueueFull
    );
}

#[test]
fn dead_letter_accounting_balances_under_concurrent_overflow_and_churn() {
    let broker = broker_with_dead_letters(128);
    let dlq = broker.dead_letters().unwrap();
    let reader = {
        let dlq = dlq.clone();
        thread::spawn(move || {
            let mut n = 0u64;
            while let Some(_l) = dlq.recv_timeout(Duration::from_millis(200)) {
                n += 1;
                // A slow reader, so the dead-letter queue overflows while it reads.
                thread::sleep(Duration::from_micros(20));
            }
            n
        })
    };
    let publishers: Vec<_> = (0..3)
        .map(|p| {
            let broker = broker.clone();
            thread::spawn(move || {
                for i in 0..20_000u32 {
                    broker.publish(&format!("t/{}", i % 3), "x").unwrap();
                    if p == 0 && i % 2_000 == 0 {
                        // Churn: a subscription that comes and goes with messages queued.
                        let s = broker
                            .subscribe_with("t/#", SubscriptionOptions::new().capacity(4))
                            .unwrap();
                        broker.publish("t/0", "doomed").unwrap();
                        drop(s);
                    }
                }
            })
        })
        .collect();
    let policies = [
        OverflowPolicy::DropNewest,
        OverflowPolicy::DropOldest,
        OverflowPolicy::Block {
            timeout: Duration::from_micros(10),
        },
    ];
    let subs: Vec<_> = policies
        .iter()
        .map(|&policy| {
            broker
                .subscribe_with("t/+", SubscriptionOptions::new().capacity(8).policy(policy))
                .unwrap()
        })
        .collect();
    for p in publishers {
        p.join().unwrap();
    }
    drop(subs);
    let read = reader.join().unwrap();
    let stats = broker.stats();
    assert!(stats.balances(), "{stats:?}");
    let d = stats.dead_letters.unwrap();
    assert_eq!(
        d.offered, stats.totals.dropped,
        "every drop offered exactly once"
    );
    assert_eq!(d.delivered, read);
    assert_eq!(d.offered, d.delivered + d.overflow + d.depth);
    assert!(d.overflow > 0, "the dead-letter queue overflowed: {d:?}");
}
