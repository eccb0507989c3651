//! `Broker::explain(topic)` lists exactly the subscriptions a publish on that topic reaches: checked
//! against real publishes on fixed cases (wildcards, `$` topics, empty levels, removed subscriptions)
//! and on random filters and topics.

use std::collections::BTreeSet;

use proptest::prelude::*;
use switchyard::{
    Broker, Explained, Explanation, OverflowPolicy, PublishError, Subscription, SubscriptionId,
    SubscriptionOptions,
};

/// Publishes once on `topic` and returns the ids of the subscriptions that received it, checking that
/// the publish's own count agrees.
fn fan_out(broker: &Broker, subs: &[Subscription], topic: &str) -> BTreeSet<SubscriptionId> {
    let outcome = broker.publish(topic, "probe").unwrap();
    let reached: BTreeSet<SubscriptionId> = subs
        .iter()
        .filter(|s| s.try_recv().is_ok_and(|d| d.topic() == topic))
        .map(Subscription::id)
        .collect();
    assert_eq!(outcome.matched, reached.len(), "publish on {topic}");
    reached
}

fn ids(explained: &[Explained]) -> BTreeSet<SubscriptionId> {
    explained.iter().map(|e| e.id).collect()
}

#[test]
fn explain_equals_the_fan_out_of_a_publish_on_fixed_cases() {
    let broker = Broker::new();
    let filters = [
        "stocks/+/price",
        "stocks/#",
        "#",
        "+/+/+",
        "alerts/*/db",
        "$SYS/#",
        "a//b",
        "+//+",
        "stocks/AAPL/price",
    ];
    let subs: Vec<Subscription> = filters
        .iter()
        .map(|f| broker.subscribe(f).unwrap())
        .collect();
    for topic in [
        "stocks/AAPL/price",
        "stocks",
        "alerts/x/db",
        "$SYS/uptime",
        "a//b",
        "/",
        "nothing/here/at/all",
    ] {
        let explained = broker.explain(topic).unwrap();
        assert_eq!(
            ids(&explained),
            fan_out(&broker, &subs, topic),
            "topic {topic}"
        );
    }
}

#[test]
fn each_entry_names_the_filter_that_matched_and_the_queue_it_would_join() {
    let broker = Broker::new();
    let prices = broker
        .subscribe_with(
            "stocks/+/price",
            SubscriptionOptions::new()
                .name("prices")
                .capacity(8)
                .policy(OverflowPolicy::DropOldest),
        )
        .unwrap();
    let _alerts = broker.subscribe("alerts/#").unwrap();
    broker.publish("stocks/MSFT/price", "411").unwrap();
    let second_receiver = prices.clone();

    let explained = broker.explain("stocks/AAPL/price").unwrap();
    assert_eq!(
        explained,
        [Explained {
            id: prices.id(),
            name: "prices".into(),
            filter: "stocks/+/price".into(),
            policy: "drop-oldest".into(),
            depth: 1,
            capacity: 8,
            receivers: 2,
        }]
    );
    drop(second_receiver);
    let stats = broker.stats();
    assert_eq!(stats.totals.published, 1, "explain publishes nothing");
    assert_eq!(stats.totals.matched, 1, "and counts nothing");
}

#[test]
fn a_topic_nobody_matches_is_explained_as_empty_and_a_removed_subscription_is_gone() {
    let broker = Broker::new();
    assert_eq!(broker.explain("x/y").unwrap(), []);
    let sub = broker.subscribe("x/+").unwrap();
    let id = sub.id();
    assert_eq!(ids(&broker.explain("x/y").unwrap()), BTreeSet::from([id]));
    broker.unsubscribe(id).unwrap();
    assert_eq!(broker.explain("x/y").unwrap(), []);
    assert_eq!(broker.publish("x/y", "p").unwrap().matched, 0);
}

#[test]
fn an_invalid_topic_gets_the_error_a_publish_would_get() {
    let broker = Broker::new();
    for bad in ["", "a/+/b", "a/#", "a/*"] {
        let explain = broker.explain(bad).unwrap_err();
        let PublishError::InvalidTopic(publish) = broker.publish(bad, "p").unwrap_err() else {
            panic!("publish on {bad:?} failed for another reason");
        };
        assert_eq!(explain, publish, "topic {bad:?}");
    }
}

#[test]
fn the_wire_shape_is_topic_and_subscriptions() {
    let broker = Broker::new();
    let _s = broker
        .subscribe_with("a/#", SubscriptionOptions::new().name("all-a"))
        .unwrap();
    let answer = Explanation {
        topic: "a/b".into(),
        subscriptions: broker.explain("a/b").unwrap(),
    };
    let json = serde_json::to_value(&answer).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "topic": "a/b",
            "subscriptions": [{
                "id": 1, "name": "all-a", "filter": "a/#", "policy": "drop-newest",
                "depth": 0, "capacity": 256, "receivers": 1
            }]
        })
    );
    let back: Explanation = serde_json::from_value(json).unwrap();
    assert_eq!(back, answer);
}

/// Levels from a small alphabet so random filters and topics collide, with the cases the MQTT rules
/// single out: an empty level, a `$` first level, `*` inside a level.
fn level() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["a", "b", "", "$s", "a*"])
}

fn topic() -> impl Strategy<Value = String> {
    prop::collection::vec(level(), 1..4)
        .prop_map(|levels| levels.join("/"))
        .prop_filter("a topic is not empty", |t| !t.is_empty())
}

fn filter() -> impl Strategy<Value = String> {
    let level = prop_oneof![
        3 => level().prop_map(str::to_string),
        2 => Just("+".to_string()),
        1 => Just("*".to_string()),
    ];
    (prop::collection::vec(level, 1..4), any::<bool>())
        .prop_map(|(mut levels, hash)| {
            if hash {
                levels.push("#".into());
            }
            levels.join("/")
        })
        .prop_filter("a filter is not empty", |f| !f.is_empty())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(if cfg!(miri) { 8 } else { 200 }))]

    #[test]
    fn explain_equals_the_fan_out_of_real_publishes_on_random_filters_and_topics(
        filters in prop::collection::vec(filter(), 0..24),
        unsubscribe in prop::collection::vec(any::<bool>(), 24),
        topics in prop::collection::vec(topic(), 1..8),
    ) {
        let broker = Broker::new();
        let mut subs = Vec::new();
        for (f, drop_it) in filters.iter().zip(&unsubscribe) {
            let sub = broker.subscribe(f).unwrap();
            if *drop_it {
                broker.unsubscribe(sub.id()).unwrap();
            } else {
                subs.push(sub);
            }
        }
        for t in &topics {
            let explained = broker.explain(t).unwrap();
            for e in &explained {
                let sub = subs.iter().find(|s| s.id() == e.id).expect("a live subscription");
                prop_assert_eq!(&e.filter, sub.filter().as_str());
            }
            prop_assert_eq!(ids(&explained), fan_out(&broker, &subs, t), "topic {}", t);
        }
    }
}
