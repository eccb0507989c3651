//! Replay from the broker's log: where a subscription starts, what it is told of a gap, the log's
//! bounds, and the books.

use std::time::{Duration, SystemTime};

use switchyard::{
    Broker, BrokerOptions, Filter, OverflowPolicy, ReplayFrom, ReplayLogOptions, SubscribeError,
    Subscription, SubscriptionOptions,
};

fn broker_with_log(log: ReplayLogOptions) -> Broker {
    Broker::with_options(BrokerOptions::new().replay_log(log))
}

fn log_of(filter: &str) -> ReplayLogOptions {
    ReplayLogOptions::new(Filter::new(filter).unwrap())
}

fn from(broker: &Broker, filter: &str, start: ReplayFrom) -> Subscription {
    broker
        .subscribe_with(
            filter,
            SubscriptionOptions::new().capacity(4096).replay(start),
        )
        .unwrap()
}

/// Every message the subscription has now, as (sequence number, payload).
fn drain(sub: &Subscription) -> Vec<(Option<u64>, String)> {
    std::iter::from_fn(|| sub.try_recv().ok())
        .map(|d| {
            (
                d.message().seq(),
                String::from_utf8(d.payload().to_vec()).unwrap(),
            )
        })
        .collect()
}

fn seqs(sub: &Subscription) -> Vec<u64> {
    drain(sub).into_iter().map(|(s, _)| s.unwrap()).collect()
}

fn publish_n(broker: &Broker, topic: &str, n: u64) {
    for i in 0..n {
        broker.publish(topic, i.to_string()).unwrap();
    }
}

#[test]
fn logged_messages_are_numbered_from_one_and_unlogged_ones_are_not() {
    let broker = broker_with_log(log_of("orders/#"));
    let all = broker.subscribe("#").unwrap();
    broker.publish("orders/a", "1").unwrap();
    broker.publish("chat", "x").unwrap();
    broker.publish("orders/b", "2").unwrap();
    let got: Vec<_> = drain(&all).into_iter().map(|(s, _)| s).collect();
    assert_eq!(got, [Some(1), None, Some(2)]);
}

#[test]
fn a_start_from_oldest_gets_the_log_then_live_traffic() {
    let broker = broker_with_log(log_of("orders/#"));
    publish_n(&broker, "orders/a", 3);
    let sub = from(&broker, "orders/#", ReplayFrom::Oldest);
    publish_n(&broker, "orders/a", 2);
    assert_eq!(seqs(&sub), [1, 2, 3, 4, 5]);
    let s = sub.stats();
    assert!(s.balances(), "{s:?}");
    assert_eq!((s.matched, s.delivered), (5, 5));
    let replay = s.replay.expect("a replaying subscription");
    assert_eq!(
        (replay.first_seq, replay.until_seq, replay.replayed),
        (1, 4, 3)
    );
    assert!(replay.done);
}

#[test]
fn a_start_from_a_sequence_number_skips_what_came_before() {
    let broker = broker_with_log(log_of("#"));
    publish_n(&broker, "t", 10);
    assert_eq!(seqs(&from(&broker, "#", ReplayFrom::Seq(7))), [7, 8, 9, 10]);
    assert_eq!(
        seqs(&from(&broker, "#", ReplayFrom::Seq(11))),
        Vec::<u64>::new()
    );
}

#[test]
fn a_start_from_newest_gets_only_live_traffic() {
    let broker = broker_with_log(log_of("#"));
    publish_n(&broker, "t", 3);
    let sub = from(&broker, "#", ReplayFrom::Newest);
    publish_n(&broker, "t", 1);
    assert_eq!(seqs(&sub), [4]);
    assert!(sub.stats().replay.is_none());
}

#[test]
fn a_start_from_the_last_n_counts_only_messages_the_filter_matches() {
    let broker = broker_with_log(log_of("#"));
    for i in 0..10 {
        let topic = if i % 2 == 0 { "even" } else { "odd" };
        broker.publish(topic, i.to_string()).unwrap();
    }
    assert_eq!(seqs(&from(&broker, "#", ReplayFrom::Last(3))), [8, 9, 10]);
    assert_eq!(seqs(&from(&broker, "even", ReplayFrom::Last(2))), [7, 9]);
    assert_eq!(
        seqs(&from(&broker, "odd", ReplayFrom::Last(100))),
        [2, 4, 6, 8, 10]
    );
}

#[test]
fn a_start_from_a_time_gets_what_was_appended_since() {
    let broker = broker_with_log(log_of("#"));
    publish_n(&broker, "t", 3);
    std::thread::sleep(Duration::from_millis(20));
    let since = SystemTime::now();
    std::thread::sleep(Duration::from_millis(20));
    publish_n(&broker, "t", 2);
    assert_eq!(seqs(&from(&broker, "#", ReplayFrom::Time(since))), [4, 5]);
    let long_ago = SystemTime::now() - Duration::from_secs(3600);
    assert_eq!(
        seqs(&from(&broker, "#", ReplayFrom::Time(long_ago))),
        [1, 2, 3, 4, 5]
    );
}

#[test]
fn a_start_the_log_has_evicted_is_told_in_band_as_a_gap() {
    let broker = broker_with_log(log_of("#").max_messages(4));
    publish_n(&broker, "t", 10); // 1..=6 evicted
    let sub = from(&broker, "#", ReplayFrom::Seq(2));
    let first = sub.try_recv().unwrap();
    assert_eq!(first.message().seq(), Some(7));
    assert_eq!(
        first.missed().map(|m| m.evicted),
        Some(5),
        "2..=6 were asked for and gone"
    );
    assert_eq!(seqs(&sub), [8, 9, 10]);
    let s = sub.stats();
    assert!(s.balances(), "{s:?}");
    assert_eq!(
        (s.matched, s.delivered, s.dropped_by_reason.evicted),
        (9, 4, 5)
    );
    assert_eq!(s.replay.unwrap().gap, 5);
    let log = broker.replay_log_stats().unwrap();
    assert_eq!(
        (log.first_seq, log.next_seq, log.evicted.max_messages),
        (7, 11, 6)
    );
}

#[test]
fn the_byte_bound_evicts_the_oldest() {
    // Each message: topic "t" (1 byte) + 9 payload bytes = 10 bytes.
    let broker = broker_with_log(log_of("#").max_bytes(30));
    for i in 0..5 {
        broker.publish("t", format!("payload-{i}")).unwrap();
    }
    let log = broker.replay_log_stats().unwrap();
    assert_eq!((log.messages, log.bytes, log.evicted.max_bytes), (3, 30, 2));
    assert_eq!(seqs(&from(&broker, "#", ReplayFrom::Oldest)), [3, 4, 5]);
}

#[test]
fn the_age_bound_evicts_messages_older_than_it() {
    let broker = broker_with_log(log_of("#").max_age(Duration::from_millis(30)));
    publish_n(&broker, "t", 3);
    std::thread::sleep(Duration::from_millis(60));
    publish_n(&broker, "t", 1);
    let log = broker.replay_log_stats().unwrap();
    assert_eq!((log.messages, log.evicted.max_age), (1, 3));
    assert_eq!(seqs(&from(&broker, "#", ReplayFrom::Oldest)), [4]);
}

#[test]
fn a_replay_start_is_refused_with_a_reason() {
    let plain = Broker::new();
    let err = plain
        .subscribe_with("#", SubscriptionOptions::new().replay(ReplayFrom::Oldest))
        .unwrap_err();
    assert_eq!(err, SubscribeError::NoReplayLog);
    assert!(
        err.to_string().contains("BrokerOptions::replay_log"),
        "{err}"
    );
    let broker = broker_with_log(log_of("#"));
    publish_n(&broker, "t", 2);
    for requested in [0, 4] {
        let err = broker
            .subscribe_with(
                "#",
                SubscriptionOptions::new().replay(ReplayFrom::Seq(requested)),
            )
            .unwrap_err();
        assert_eq!(
            err,
            SubscribeError::ReplaySeqOutOfRange { requested, next: 3 }
        );
    }
    assert_eq!(broker.stats().totals.subscriptions, 0, "nothing subscribed");
}

#[test]
fn a_batch_takes_consecutive_numbers_and_is_replayed_in_order() {
    let broker = broker_with_log(log_of("#"));
    let mut publisher = broker.publisher("t").unwrap();
    publisher.publish_batch(["a", "b", "c"]);
    publisher.publish("d");
    let sub = from(&broker, "#", ReplayFrom::Oldest);
    publisher.publish_batch(["e", "f"]);
    let got: Vec<_> = drain(&sub)
        .into_iter()
        .map(|(s, p)| (s.unwrap(), p))
        .collect();
    let want: Vec<_> = ["a", "b", "c", "d", "e", "f"]
        .iter()
        .enumerate()
        .map(|(i, p)| (i as u64 + 1, p.to_string()))
        .collect();
    assert_eq!(got, want);
}

#[test]
fn drain_into_takes_the_replay_then_the_queue() {
    let broker = broker_with_log(log_of("#"));
    publish_n(&broker, "t", 5);
    let sub = from(&broker, "#", ReplayFrom::Oldest);
    publish_n(&broker, "t", 5);
    let mut out = Vec::new();
    assert_eq!(sub.drain_into(&mut out, 3).count, 3);
    assert_eq!(sub.drain_into(&mut out, 100).count, 7);
    let got: Vec<_> = out.iter().map(|m| m.seq().unwrap()).collect();
    assert_eq!(got, (1..=10).collect::<Vec<_>>());
    assert!(sub.stats().balances());
}

#[test]
fn a_retained_publish_on_a_logged_topic_is_logged() {
    let broker = broker_with_log(log_of("#"));
    broker
        .publish_with(
            "status",
            "up",
            switchyard::PublishOptions::new().retain(true),
        )
        .unwrap();
    assert_eq!(seqs(&from(&broker, "#", ReplayFrom::Oldest)), [1]);
}

#[test]
fn replayed_messages_meet_the_queue_policy_only_live() {
    // The replay is read from the log, not queued: a capacity of 2 does not cut it short.
    let broker = broker_with_log(log_of("#"));
    publish_n(&broker, "t", 10);
    let options = SubscriptionOptions::new()
        .capacity(2)
        .policy(OverflowPolicy::DropNewest)
        .replay(ReplayFrom::Oldest);
    let sub = broker.subscribe_with("#", options).unwrap();
    assert_eq!(seqs(&sub), (1..=10).collect::<Vec<_>>());
    assert_eq!(sub.stats().dropped, 0);
}

#[test]
fn replay_stats_serialise_as_documented_and_older_snapshots_still_parse() {
    let broker = broker_with_log(log_of("#").max_age(Duration::from_secs(60)));
    publish_n(&broker, "t", 3);
    let sub = from(&broker, "#", ReplayFrom::Seq(2));
    let mut json = serde_json::to_value(broker.stats()).unwrap();
    let log = &json["replay_log"];
    assert_eq!(log["filter"], "#");
    assert_eq!(log["max_age_ms"], 60_000);
    for key in [
        "max_messages",
        "max_bytes",
        "messages",
        "bytes",
        "first_seq",
        "next_seq",
    ] {
        assert!(log[key].is_u64(), "replay_log.{key}");
    }
    for key in ["max_messages", "max_bytes", "max_age"] {
        assert!(log["evicted"][key].is_u64(), "replay_log.evicted.{key}");
    }
    let replay = &json["subscriptions"][0]["replay"];
    assert_eq!(replay["from"], "seq:2");
    for key in ["first_seq", "until_seq", "next_seq", "replayed", "gap"] {
        assert!(replay[key].is_u64(), "replay.{key}");
    }
    assert_eq!(replay["done"], false);
    drop(sub);
    // A snapshot from before the replay log: both fields absent, read as none.
    json.as_object_mut().unwrap().remove("replay_log");
    let back: switchyard::StatsSnapshot = serde_json::from_value(json).unwrap();
    assert!(back.replay_log.is_none());
}

#[test]
fn a_replaying_subscription_with_a_ready_signal_is_listed_at_once() {
    let broker = broker_with_log(log_of("#"));
    publish_n(&broker, "t", 2);
    let signal = switchyard::ReadySignal::new();
    let options = SubscriptionOptions::new()
        .ready_signal(&signal)
        .ready_key(7)
        .replay(ReplayFrom::Oldest);
    let sub = broker.subscribe_with("#", options).unwrap();
    let mut ready = Vec::new();
    signal.wait_ready(&mut ready, Duration::from_secs(5));
    assert_eq!(ready, [7], "the replay is something to receive");
    assert_eq!(seqs(&sub), [1, 2]);
}

#[test]
fn a_closed_subscription_replays_nothing_more() {
    let broker = broker_with_log(log_of("#"));
    publish_n(&broker, "t", 5);
    let sub = from(&broker, "#", ReplayFrom::Oldest);
    let first = sub.try_recv().unwrap();
    assert_eq!(first.message().seq(), Some(1));
    broker.unsubscribe(sub.id()).unwrap();
    assert!(sub.try_recv().is_err());
    let s = sub.stats();
    assert_eq!(
        (s.matched, s.delivered, s.dropped),
        (1, 1, 0),
        "the rest was never taken"
    );
    assert!(broker.stats().balances());
}

#[test]
fn replayed_messages_are_not_charged_to_a_byte_bound() {
    // The replay is read from the log: a byte bound on the queue limits live messages only.
    let broker = broker_with_log(log_of("#"));
    for _ in 0..4 {
        broker.publish("t", vec![0u8; 1000]).unwrap();
    }
    let options = SubscriptionOptions::new()
        .max_bytes(1500)
        .replay(ReplayFrom::Oldest);
    let sub = broker.subscribe_with("#", options).unwrap();
    assert_eq!(seqs(&sub), [1, 2, 3, 4]);
    let s = sub.stats();
    assert_eq!((s.dropped, s.queued_bytes), (0, Some(0)));
    assert!(s.balances(), "{s:?}");
}
