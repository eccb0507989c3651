//! Retained messages: the last retained message per topic, replayed to new subscriptions that ask,
//! cleared by an empty payload, bounded, counted, and exactly once per subscription under churn.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use switchyard::{
    Broker, BrokerOptions, Priority, PublishOptions, RetainedLimits, SubscriptionOptions,
};

fn retain() -> PublishOptions {
    PublishOptions::new().retain(true)
}

fn with_retained() -> SubscriptionOptions {
    SubscriptionOptions::new().receive_retained(true)
}

fn text(d: &switchyard::Delivery) -> String {
    String::from_utf8_lossy(d.payload()).into_owned()
}

#[test]
fn a_new_subscription_that_asks_gets_the_last_retained_message_of_each_matching_topic() {
    let broker = Broker::new();
    broker
        .publish_with("sensors/kitchen/temp", "20", retain())
        .unwrap();
    broker
        .publish_with("sensors/kitchen/temp", "21", retain())
        .unwrap();
    broker
        .publish_with("sensors/hall/temp", "18", retain())
        .unwrap();
    broker
        .publish_with("sensors/hall/humidity", "40", retain())
        .unwrap();
    broker
        .publish("sensors/cellar/temp", "not retained")
        .unwrap();

    let sub = broker
        .subscribe_with("sensors/+/temp", with_retained())
        .unwrap();
    let got: Vec<(String, String)> = std::iter::from_fn(|| sub.try_recv().ok())
        .map(|d| (d.topic().to_string(), text(&d)))
        .collect();
    assert_eq!(
        got,
        [
            ("sensors/hall/temp".to_string(), "18".to_string()),
            ("sensors/kitchen/temp".to_string(), "21".to_string())
        ]
    );
    let plain = broker.subscribe("sensors/#").unwrap();
    assert!(
        plain.try_recv().is_err(),
        "only subscriptions that ask get them"
    );
}

#[test]
fn an_empty_retained_payload_clears_the_topic_and_is_still_routed() {
    let broker = Broker::new();
    broker.publish_with("status", "up", retain()).unwrap();
    let live = broker.subscribe("status").unwrap();
    let outcome = broker.publish_with("status", "", retain()).unwrap();
    assert_eq!(outcome.queued, 1);
    assert!(live.try_recv().unwrap().payload().is_empty());
    let later = broker.subscribe_with("status", with_retained()).unwrap();
    assert!(later.try_recv().is_err());
    let r = broker.stats().retained;
    assert_eq!((r.messages, r.bytes, r.stored, r.cleared), (0, 0, 1, 1));
}

#[test]
fn replayed_messages_count_as_matched_so_the_books_balance_and_keep_their_priority() {
    let broker = Broker::new();
    broker
        .publish_with("a", "urgent", retain().priority(Priority::Critical))
        .unwrap();
    let published = broker.stats().totals.published;
    let sub = broker.subscribe_with("a", with_retained()).unwrap();
    let stats = broker.stats();
    assert_eq!(
        stats.totals.published, published,
        "a replay is not a publish"
    );
    assert_eq!(stats.subscriptions[0].matched, 1);
    assert_eq!(stats.subscriptions[0].depth, 1);
    assert_eq!(stats.retained.replayed, 1);
    assert!(stats.balances(), "{stats:?}");
    assert_eq!(sub.try_recv().unwrap().priority(), Priority::Critical);
}

#[test]
fn a_full_store_refuses_only_the_storing_and_the_message_is_still_delivered_live() {
    let broker = Broker::with_options(BrokerOptions::new().retained(RetainedLimits {
        max_messages: 2,
        max_bytes: 10,
    }));
    let sub = broker.subscribe("#").unwrap();
    assert_eq!(
        broker
            .publish_with("a", "12345", retain())
            .unwrap()
            .retain_refused,
        0
    );
    assert_eq!(
        broker
            .publish_with("b", "123", retain())
            .unwrap()
            .retain_refused,
        0
    );
    // Over max_messages: not kept, but delivered like any other publish.
    let over_count = broker.publish_with("c", "1", retain()).unwrap();
    assert_eq!((over_count.queued, over_count.retain_refused), (1, 1));
    // Over max_bytes (replacing `a` with a bigger payload): not kept, delivered.
    let over_bytes = broker.publish_with("a", "123456789", retain()).unwrap();
    assert_eq!((over_bytes.queued, over_bytes.retain_refused), (1, 1));
    // Replacing within the bounds is fine.
    broker.publish_with("a", "1234567", retain()).unwrap();
    let r = broker.stats().retained;
    assert_eq!((r.messages, r.bytes, r.rejected), (2, 10, 2));
    let live: Vec<String> = std::iter::from_fn(|| sub.try_recv().ok())
        .map(|d| text(&d))
        .collect();
    assert_eq!(
        live,
        ["12345", "123", "1", "123456789", "1234567"],
        "every publish was delivered live"
    );
    // What a new subscription is replayed is what the store kept.
    let late = broker.subscribe_with("#", with_retained()).unwrap();
    let kept: Vec<String> = std::iter::from_fn(|| late.try_recv().ok())
        .map(|d| text(&d))
        .collect();
    assert_eq!(kept, ["1234567", "123"]);
    assert!(broker.stats().balances());
}

#[test]
fn a_publisher_handle_can_retain_too() {
    let broker = Broker::new();
    let mut publisher = broker.publisher("config/mode").unwrap();
    publisher.publish_with("eco", retain());
    let sub = broker.subscribe_with("config/#", with_retained()).unwrap();
    assert_eq!(text(&sub.try_recv().unwrap()), "eco");
}

#[test]
fn under_churn_each_new_subscription_sees_every_topic_once_and_in_order_per_topic() {
    // Publishers keep replacing retained values (a counter per topic) while subscriptions come and go
    // asking for retained messages. Each subscription must see, per topic, a strictly increasing
    // sequence (no duplicate between the replay and the live stream, nothing out of order), and its
    // first message per topic must be no older than the value retained when it subscribed.
    const TOPICS: usize = 4;
    let broker = Broker::new();
    let stop = Arc::new(AtomicBool::new(false));
    let publishers: Vec<_> = (0..TOPICS)
        .map(|t| {
            let (broker, stop) = (broker.clone(), stop.clone());
            thread::spawn(move || {
                let topic = format!("t/{t}");
                // At least one publish per topic however late this thread is scheduled (on a busy
                // machine the subscribe loop can finish before it starts).
                let mut i = 1u64;
                loop {
                    broker
                        .publish_with(&topic, i.to_le_bytes().to_vec(), retain())
                        .unwrap();
                    i += 1;
                    if stop.load(Ordering::Relaxed) || i >= 50_000 {
                        break;
                    }
                }
            })
        })
        .collect();
    for _ in 0..200 {
        let sub = broker
            .subscribe_with("t/+", with_retained().capacity(1 << 16))
            .unwrap();
        thread::yield_now();
        let mut last: HashMap<String, u64> = HashMap::new();
        while let Ok(d) = sub.try_recv() {
            let v = u64::from_le_bytes(d.payload()[..].try_into().unwrap());
            if let Some(prev) = last.insert(d.topic().to_string(), v) {
                assert!(v > prev, "{}: {v} after {prev}", d.topic());
            }
        }
        drop(sub);
    }
    stop.store(true, Ordering::Relaxed);
    for p in publishers {
        p.join().unwrap();
    }
    let stats = broker.stats();
    assert!(stats.balances(), "{stats:?}");
    assert_eq!(stats.retained.messages, TOPICS as u64);
}

#[test]
fn a_stats_snapshot_does_not_wait_for_a_retained_publish_blocked_on_a_full_queue() {
    use std::time::{Duration, Instant};
    let broker = Broker::new();
    let sub = broker
        .subscribe_with(
            "r/#",
            SubscriptionOptions::new()
                .capacity(1)
                .policy(switchyard::OverflowPolicy::Block {
                    timeout: Duration::from_secs(60),
                }),
        )
        .unwrap();
    broker.publish("r/a", "fills the queue").unwrap();
    let publisher = {
        let broker = broker.clone();
        thread::spawn(move || broker.publish_with("r/b", "waits", retain()).unwrap())
    };
    let give_up = Instant::now() + Duration::from_secs(10);
    while sub.stats().matched < 2 {
        assert!(
            Instant::now() < give_up,
            "the retained publish never reached the queue"
        );
        thread::yield_now();
    }
    // The publish waits for room for up to a minute; the snapshot and another retained publish must
    // not wait with it.
    let stats = broker.stats();
    broker
        .publish_with("other", "not blocked", retain())
        .unwrap();
    assert!(
        !publisher.is_finished(),
        "the snapshot was taken while the publish still waited"
    );
    assert_eq!(stats.retained.stored, 1);
    assert_eq!(stats.subscriptions[0].matched, 2);
    assert_eq!(sub.try_recv().unwrap().topic(), "r/a");
    let outcome = publisher.join().unwrap();
    assert_eq!(outcome.queued, 1);
    assert_eq!(sub.try_recv().unwrap().topic(), "r/b");
    assert!(broker.stats().balances());
}

#[test]
fn a_replayed_message_is_marked_as_a_replay_and_a_live_one_is_not() {
    let broker = Broker::new();
    broker
        .publish_with("sensors/t1", "21.5", retain().tag(2))
        .unwrap();
    let sub = broker.subscribe_with("sensors/#", with_retained()).unwrap();
    let replayed = sub.try_recv().unwrap();
    assert!(replayed.message().is_retained_replay());
    assert_eq!(replayed.message().tag(), 2, "the tag survives the store");
    broker
        .publish_with("sensors/t1", "22.0", retain().tag(1))
        .unwrap();
    let live = sub.try_recv().unwrap();
    assert!(!live.message().is_retained_replay(), "routed live");
    assert_eq!(live.message().tag(), 1);
}
