//! `Broker::stats_query`: selection, order and limit over subscriptions, totals over all of them, and
//! no effect on the rate sample `Broker::stats` shares.

use std::time::Duration;

use switchyard::{Broker, OverflowPolicy, SubscriptionOptions};
use switchyard::{StatsQuery, StatsSort};

/// Subscriptions `q/0`..`q/9` with capacity `4 + i`, each published `2i` messages (none received), so
/// depth, fill and drops all grow with `i`; `q/0` has been received from once.
fn staged() -> (Broker, Vec<switchyard::Subscription>) {
    let broker = Broker::new();
    let mut subs = Vec::new();
    for i in 0..10u64 {
        let sub = broker
            .subscribe_with(
                &format!("q/{i}"),
                SubscriptionOptions::new()
                    .capacity(4 + i as usize)
                    .name(format!("Name{i}")),
            )
            .unwrap();
        for _ in 0..i * 2 {
            broker.publish(&format!("q/{i}"), "x").unwrap();
        }
        subs.push(sub);
    }
    broker.publish("q/0", "x").unwrap();
    subs[0].try_recv().unwrap();
    (broker, subs)
}

#[test]
fn totals_equal_the_full_snapshot_whatever_the_selection() {
    let (broker, _subs) = staged();
    let full = broker.stats();
    for query in [
        StatsQuery::new(),
        StatsQuery::new().limit(0),
        StatsQuery::new().filter("nothing-matches"),
        StatsQuery::new().sort(StatsSort::Dropped).limit(3),
    ] {
        let sel = broker.stats_query(&query);
        assert_eq!(sel.snapshot.totals, full.totals, "{query:?}");
        assert_eq!(sel.dropped_by_reason.total(), full.totals.dropped);
        assert!(sel.snapshot.balances());
    }
}

#[test]
fn every_sort_key_orders_largest_first_and_limit_keeps_the_top() {
    let (broker, _subs) = staged();
    let ids = |sort| {
        broker
            .stats_query(&StatsQuery::new().sort(sort).limit(3))
            .snapshot
            .subscriptions
            .iter()
            .map(|s| s.filter.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(StatsSort::Id), ["q/0", "q/1", "q/2"]);
    // depth is min(2i, 4+i)
    assert_eq!(ids(StatsSort::Depth), ["q/9", "q/8", "q/7"]);
    // fill: full queues (i >= 4) all 1.0, ties by id
    assert_eq!(ids(StatsSort::Fill), ["q/4", "q/5", "q/6"]);
    // drops: 2i - (4+i) = i - 4
    assert_eq!(ids(StatsSort::Dropped), ["q/9", "q/8", "q/7"]);
    assert_eq!(ids(StatsSort::Delivered)[0], "q/0");
}

#[test]
fn the_filter_matches_name_or_filter_ignoring_case() {
    let (broker, _subs) = staged();
    let sel = broker.stats_query(&StatsQuery::new().filter("NAME3"));
    assert_eq!(sel.matching, 1);
    assert_eq!(sel.snapshot.subscriptions[0].name, "Name3");
    let sel = broker.stats_query(&StatsQuery::new().filter("Q/"));
    assert_eq!(sel.matching, 10);
    assert_eq!(sel.snapshot.subscriptions.len(), 10);
}

#[test]
fn a_custom_key_sees_every_selected_subscription_once() {
    let (broker, _subs) = staged();
    let mut seen = Vec::new();
    let sel = broker.stats_query_by(None, Some(2), |c| {
        seen.push(c.id);
        c.matched
    });
    assert_eq!(seen.len(), 10);
    assert_eq!(sel.snapshot.subscriptions[0].filter, "q/9");
}

#[test]
fn queries_do_not_move_the_rate_sample_of_stats() {
    let broker = Broker::new();
    let sub = broker
        .subscribe_with(
            "t",
            SubscriptionOptions::new().policy(OverflowPolicy::DropOldest),
        )
        .unwrap();
    broker.stats(); // sample at t0
    std::thread::sleep(Duration::from_millis(50));
    for _ in 0..100 {
        broker.publish("t", "x").unwrap();
    }
    // Queries in between must not reset the interval the next `stats()` covers.
    for _ in 0..5 {
        broker.stats_query(&StatsQuery::new());
    }
    std::thread::sleep(Duration::from_millis(50));
    let s = broker.stats();
    // 100 publishes over >= 100 ms: a reset sample would cover only the last ~50 ms and show none.
    assert!(s.rates.published_per_s > 0.0, "{:?}", s.rates);
    assert!(s.rates.published_per_s <= 1000.0, "{:?}", s.rates);
    drop(sub);
}

#[test]
fn removed_subscriptions_stay_in_the_totals() {
    let broker = Broker::new();
    let a = broker.subscribe("a").unwrap();
    broker.publish("a", "x").unwrap();
    broker.unsubscribe(a.id()).unwrap();
    drop(a);
    let sel = broker.stats_query(&StatsQuery::new());
    assert_eq!(sel.snapshot.totals.matched, 1);
    assert_eq!(sel.snapshot.totals.dropped, 1);
    assert_eq!(sel.dropped_by_reason.unsubscribed, 1);
    assert_eq!(sel.snapshot.totals.subscriptions, 0);
}
