//! The broker's public contract: validation errors, outcomes, publisher handles, stats.

use switchyard::{
    Broker, OverflowPolicy, PublishError, SubscribeError, SubscriptionOptions, TopicError,
    TopicLimits, UnknownSubscription,
};

#[test]
fn invalid_filters_are_refused_with_an_error_naming_the_problem() {
    let broker = Broker::new();
    let err = broker.subscribe("stocks/AAPL#").unwrap_err();
    assert!(matches!(
        err,
        SubscribeError::InvalidFilter(TopicError::PartialWildcard { level: 1, .. })
    ));
    assert!(err.to_string().contains("`AAPL#`"), "{err}");
    assert!(
        broker
            .subscribe("a/#/b")
            .unwrap_err()
            .to_string()
            .contains("last level")
    );
    assert_eq!(
        broker.stats().totals.subscriptions,
        0,
        "nothing was installed"
    );
}

#[test]
fn zero_and_huge_capacities_are_refused() {
    let broker = Broker::new();
    let zero = broker.subscribe_with("a", SubscriptionOptions::new().capacity(0));
    assert_eq!(zero.unwrap_err(), SubscribeError::ZeroCapacity);
    let huge = broker.subscribe_with("a", SubscriptionOptions::new().capacity(usize::MAX));
    assert!(matches!(
        huge.unwrap_err(),
        SubscribeError::CapacityTooLarge { .. }
    ));
}

#[test]
fn publishing_to_a_wildcard_or_over_limit_topic_is_an_error_and_not_counted() {
    let broker = Broker::with_limits(TopicLimits {
        max_bytes: 16,
        max_levels: 3,
        ..TopicLimits::default()
    });
    let _all = broker.subscribe("#").unwrap();
    assert!(matches!(
        broker.publish("a/+", "x"),
        Err(PublishError::InvalidTopic(_))
    ));
    let err = broker.publish("a/b/c/d", "x").unwrap_err();
    assert!(err.to_string().contains("limit of 3 levels"), "{err}");
    assert!(broker.publisher("a/b/c/d").is_err());
    assert_eq!(broker.stats().totals.published, 0);
}

#[test]
fn unsubscribing_an_unknown_id_is_an_error() {
    let broker = Broker::new();
    assert_eq!(broker.unsubscribe(42), Err(UnknownSubscription(42)));
    let sub = broker.subscribe("a").unwrap();
    broker.unsubscribe(sub.id()).unwrap();
    assert_eq!(
        broker.unsubscribe(sub.id()),
        Err(UnknownSubscription(sub.id()))
    );
    assert!(
        broker
            .set_policy(sub.id(), OverflowPolicy::DropOldest)
            .is_err()
    );
}

#[test]
fn a_publisher_handle_follows_subscribe_and_unsubscribe() {
    let broker = Broker::new();
    let mut publisher = broker.publisher("sensors/kitchen/temp").unwrap();
    assert_eq!(publisher.publish("1").matched, 0);
    let sub = broker.subscribe("sensors/+/temp").unwrap();
    assert_eq!(
        publisher.publish("2").matched,
        1,
        "the cached route is refreshed"
    );
    let other = broker.subscribe("sensors/#").unwrap();
    assert_eq!(publisher.publish_batch(["3", "4"]).queued, 4);
    broker.unsubscribe(sub.id()).unwrap();
    assert_eq!(publisher.publish("5").matched, 1);
    // A live handle keeps its own counts; stats include them, and again once the handle folds them
    // into the broker's as it goes, neither twice nor not at all.
    let mut other_publisher = broker.publisher("elsewhere").unwrap();
    assert_eq!(other_publisher.publish_batch(["x", "y"]).matched, 0);
    let live = broker.stats().totals;
    assert_eq!((live.published, live.unrouted), (7, 3));
    drop(publisher);
    let stats = broker.stats();
    assert_eq!((stats.totals.published, stats.totals.unrouted), (7, 3));
    drop(other_publisher);
    broker.publish("sensors/x", "z").unwrap();
    let t = broker.stats().totals;
    assert_eq!((t.published, t.unrouted), (8, 3));
    other.try_recv().unwrap();
    assert_eq!(other.len(), 3);
    assert!(stats.balances(), "{stats:?}");
    assert_eq!(stats.totals.matched, 1 + 2 + 2 + 1);
}

#[test]
fn unrouted_publishes_are_counted_and_allocate_no_message() {
    let broker = Broker::new();
    let _s = broker.subscribe("a/+").unwrap();
    let outcome = broker.publish("b/c", "x").unwrap();
    assert_eq!(outcome.matched, 0);
    let t = broker.stats().totals;
    assert_eq!((t.published, t.unrouted, t.matched), (1, 1, 0));
}

#[test]
fn dollar_topics_are_not_matched_by_leading_wildcards() {
    let broker = Broker::new();
    let all = broker.subscribe("#").unwrap();
    let sys = broker.subscribe("$SYS/#").unwrap();
    broker.publish("$SYS/broker/load", "1").unwrap();
    assert!(all.is_empty());
    assert_eq!(sys.len(), 1);
}

#[test]
fn stats_serialise_to_the_documented_v1_schema() {
    let broker = Broker::new();
    let sub = broker
        .subscribe_with(
            "stocks/+/price",
            SubscriptionOptions::new().name("prices").capacity(8),
        )
        .unwrap();
    broker.publish("stocks/AAPL/price", "1").unwrap();
    sub.try_recv().unwrap();
    let json = serde_json::to_value(broker.stats()).unwrap();
    assert_eq!(json["schema"], "switchyard.stats/v1");
    assert!(json["taken_at"].as_str().unwrap().ends_with('Z'));
    assert!(json["uptime_s"].is_f64());
    for key in [
        "published",
        "unrouted",
        "matched",
        "delivered",
        "dropped",
        "depth",
        "subscriptions",
    ] {
        assert!(json["totals"][key].is_u64(), "totals.{key}");
    }
    for key in ["published_per_s", "delivered_per_s", "dropped_per_s"] {
        assert!(json["rates"][key].is_number(), "rates.{key}");
    }
    let s = &json["subscriptions"][0];
    assert_eq!(s["name"], "prices");
    assert_eq!(s["filter"], "stocks/+/price");
    assert_eq!(s["policy"], "drop-newest");
    assert_eq!(s["capacity"], 8);
    assert_eq!(s["delivered"], 1);
    for key in ["queue_full", "evicted", "timeout", "unsubscribed"] {
        assert!(
            s["dropped_by_reason"][key].is_u64(),
            "dropped_by_reason.{key}"
        );
    }
    for key in [
        "id",
        "matched",
        "dropped",
        "depth",
        "high_water",
        "receivers",
    ] {
        assert!(s[key].is_u64(), "subscriptions[0].{key}");
    }
    assert!(json["latency_us"].is_null());
    assert!(json["load"].is_null());
    let back: switchyard::StatsSnapshot = serde_json::from_value(json).unwrap();
    assert_eq!(back.subscriptions[0].name, "prices");
}

#[test]
fn rates_cover_the_interval_since_the_previous_snapshot() {
    let broker = Broker::new();
    let _ = broker.stats();
    std::thread::sleep(std::time::Duration::from_millis(20));
    for _ in 0..10 {
        broker.publish("a", "x").unwrap();
    }
    let s = broker.stats();
    assert!(s.rates.published_per_s > 0.0);
    let again = broker.stats();
    assert_eq!(
        again.rates.published_per_s, 0.0,
        "nothing was published since"
    );
}

#[test]
fn short_and_long_topics_arrive_intact_through_both_publish_paths() {
    let broker = Broker::new();
    let all = broker.subscribe("#").unwrap();
    let short = "a/b/c".to_string();
    let long = format!("sensors/{}/temperature/ünïcode", "x".repeat(60));
    for topic in [&short, &long] {
        broker.publish(topic, "1").unwrap();
        broker.publisher(topic).unwrap().publish("2");
        for payload in ["1", "2"] {
            let d = all.try_recv().unwrap();
            assert_eq!(d.topic(), topic.as_str());
            assert_eq!(d.message().topic(), topic.as_str());
            assert_eq!(&d.payload()[..], payload.as_bytes());
        }
    }
}

#[test]
fn a_partial_wildcard_error_shows_a_valid_example_of_that_wildcard() {
    let broker = Broker::new();
    for (filter, example) in [("##", "`a/#`"), ("a/b#", "`a/#`"), ("a+/b", "`a/+/b`")] {
        let text = broker.subscribe(filter).unwrap_err().to_string();
        assert!(text.contains(example), "{filter}: {text}");
        assert!(!text.contains("`a/#/b`"), "{filter}: {text}");
    }
    // And every example the errors give is itself a valid filter.
    for example in ["a/#", "a/+/b"] {
        broker.subscribe(example).unwrap();
    }
}

#[test]
fn filters_as_deep_as_any_limits_allow_work_on_a_default_thread_stack_and_deeper_are_refused() {
    let deepest = TopicLimits::MAX_LEVELS;
    // Spawned threads get 2 MiB of stack, as tokio's workers do; the main test thread may have more.
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || {
            let broker = Broker::with_limits(TopicLimits {
                max_bytes: 1 << 20,
                max_levels: 100_000,
                ..TopicLimits::default()
            });
            let exact = vec!["a"; deepest].join("/");
            let pluses = vec!["+"; deepest].join("/");
            let a = broker.subscribe(&exact).unwrap();
            let b = broker.subscribe(&pluses).unwrap();
            assert_eq!(broker.publish(&exact, "deep").unwrap().queued, 2);
            assert!(a.try_recv().is_ok() && b.try_recv().is_ok());

            let too_deep = vec!["a"; deepest + 1].join("/");
            let err = broker.subscribe(&too_deep).unwrap_err();
            assert!(
                matches!(
                    err,
                    SubscribeError::InvalidFilter(TopicError::TooManyLevels { max, .. })
                        if max == TopicLimits::MAX_LEVELS
                ),
                "{err}"
            );
            assert!(err.to_string().contains("MAX_LEVELS"), "{err}");
            assert!(broker.publish(&vec!["a"; 4000].join("/"), "x").is_err());
            drop((a, b));
            assert!(broker.stats().balances());
        })
        .unwrap()
        .join()
        .expect("a filter within the limits overflowed the stack");
}

#[test]
fn a_subscriptions_matched_counts_its_publisher_handles_once_while_they_live_and_after() {
    use switchyard::StatsQuery;
    let broker = Broker::new();
    let sub = broker.subscribe("a/#").unwrap();
    let mut one = broker.publisher("a/1").unwrap();
    let mut two = broker.publisher("a/2").unwrap();
    one.publish("x");
    two.publish_batch(["y", "z"]);
    broker.publish("a/3", "w").unwrap();
    let matched = |want: u64| {
        assert_eq!(sub.stats().matched, want, "Subscription::stats");
        let by_id = broker.subscription_stats(sub.id()).unwrap();
        assert_eq!(by_id.matched, want, "Broker::subscription_stats");
        let stats = broker.stats();
        assert_eq!(stats.totals.matched, want, "Broker::stats");
        assert!(stats.balances(), "{stats:?}");
        let selection = broker.stats_query(&StatsQuery::new().limit(0));
        assert_eq!(
            selection.snapshot.totals.matched, want,
            "Broker::stats_query"
        );
    };
    matched(4);
    // A table change makes each handle cache its route again: its count is folded, then counted
    // afresh.
    let _elsewhere = broker.subscribe("b").unwrap();
    one.publish("x2");
    matched(5);
    drop(one);
    matched(5);
    two.publish("z2");
    drop(two);
    matched(6);
    let mut got = Vec::new();
    assert_eq!(sub.drain_into(&mut got, 10).count, 6);
    let s = sub.stats();
    assert_eq!((s.matched, s.delivered, s.depth), (6, 6, 0));
}

#[test]
fn a_publish_tag_reaches_every_receiver_on_every_publish_path() {
    use switchyard::PublishOptions;
    let broker = Broker::new();
    let a = broker.subscribe("t").unwrap();
    let b = broker.subscribe("#").unwrap();
    broker
        .publish_with("t", "x", PublishOptions::new().tag(3))
        .unwrap();
    let mut handle = broker.publisher("t").unwrap();
    handle.publish_with("y", PublishOptions::new().tag(2));
    handle.publish("z");
    for sub in [&a, &b] {
        let tags: Vec<u8> = std::iter::from_fn(|| sub.try_recv().ok())
            .map(|d| d.message().tag())
            .collect();
        assert_eq!(tags, [3, 2, 0]);
    }
}
