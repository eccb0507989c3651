//! Each overflow policy: what is kept, what is dropped, and that every drop is counted by reason.

use std::thread;
use std::time::{Duration, Instant};

use switchyard::{Broker, OverflowPolicy, PublishOptions, SubscriptionOptions, TryRecvError};

fn payloads(sub: &switchyard::Subscription) -> Vec<String> {
    let mut out = Vec::new();
    while let Ok(d) = sub.try_recv() {
        out.push(String::from_utf8(d.payload().to_vec()).unwrap());
    }
    out
}

#[test]
fn drop_newest_keeps_the_oldest_and_counts_refused_messages_as_queue_full() {
    let broker = Broker::new();
    let sub = broker
        .subscribe_with("t", SubscriptionOptions::new().capacity(2))
        .unwrap();
    for p in ["1", "2", "3", "4"] {
        broker.publish("t", p).unwrap();
    }
    let s = sub.stats();
    assert_eq!(
        (s.matched, s.depth, s.dropped_by_reason.queue_full),
        (4, 2, 2)
    );
    assert_eq!(s.high_water, 2);
    let first = sub.try_recv().unwrap();
    assert_eq!(&first.payload()[..], b"1");
    assert_eq!(
        first.missed().map(|m| m.queue_full),
        Some(2),
        "the gap is reported in-band"
    );
    assert_eq!(payloads(&sub), ["2"]);
    assert!(sub.stats().balances());
}

#[test]
fn drop_oldest_evicts_to_make_room_and_counts_evictions() {
    let broker = Broker::new();
    let sub = broker
        .subscribe_with(
            "t",
            SubscriptionOptions::new()
                .capacity(2)
                .policy(OverflowPolicy::DropOldest),
        )
        .unwrap();
    let mut dropped = 0;
    for p in ["1", "2", "3", "4"] {
        dropped += broker.publish("t", p).unwrap().dropped;
    }
    assert_eq!(dropped, 2, "the publish outcome reports evictions");
    assert_eq!(sub.stats().dropped_by_reason.evicted, 2);
    assert_eq!(payloads(&sub), ["3", "4"]);
    assert!(sub.stats().balances());
}

#[test]
fn block_waits_for_room_then_delivers_everything() {
    let broker = Broker::new();
    let sub = broker
        .subscribe_with(
            "t",
            SubscriptionOptions::new()
                .capacity(1)
                .policy(OverflowPolicy::Block {
                    timeout: Duration::from_secs(30),
                }),
        )
        .unwrap();
    let consumer = {
        let sub = sub.clone();
        thread::spawn(move || {
            let mut got = Vec::new();
            while got.len() < 100 {
                let d = sub.recv().unwrap();
                assert!(d.missed().is_none());
                got.push(d.payload().clone());
                if got.len() % 10 == 0 {
                    thread::sleep(Duration::from_millis(1));
                }
            }
            got
        })
    };
    for i in 0..100u32 {
        let outcome = broker.publish("t", i.to_string()).unwrap();
        assert_eq!((outcome.queued, outcome.dropped), (1, 0));
    }
    let got = consumer.join().unwrap();
    let want: Vec<String> = (0..100).map(|i: u32| i.to_string()).collect();
    let got: Vec<String> = got
        .iter()
        .map(|b| String::from_utf8(b.to_vec()).unwrap())
        .collect();
    assert_eq!(got, want, "back-pressure keeps order and loses nothing");
    let s = sub.stats();
    assert_eq!((s.matched, s.delivered, s.dropped), (100, 100, 0));
}

#[test]
fn block_times_out_and_counts_the_message_as_timeout() {
    let broker = Broker::new();
    let sub = broker
        .subscribe_with(
            "t",
            SubscriptionOptions::new()
                .capacity(1)
                .policy(OverflowPolicy::Block {
                    timeout: Duration::from_millis(30),
                }),
        )
        .unwrap();
    broker.publish("t", "kept").unwrap();
    let started = Instant::now();
    let outcome = broker.publish("t", "late").unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(30),
        "the publisher waited"
    );
    assert_eq!(outcome.dropped, 1);
    let s = sub.stats();
    assert_eq!((s.dropped_by_reason.timeout, s.depth), (1, 1));
    let d = sub.try_recv().unwrap();
    assert_eq!(d.missed().map(|m| m.timeout), Some(1));
    assert_eq!(sub.try_recv().unwrap_err(), TryRecvError::Empty);
}

#[test]
fn changing_the_policy_while_blocked_releases_the_publisher_without_losing_count() {
    let broker = Broker::new();
    let sub = broker
        .subscribe_with(
            "t",
            SubscriptionOptions::new()
                .capacity(1)
                .policy(OverflowPolicy::Block {
                    timeout: Duration::from_secs(60),
                }),
        )
        .unwrap();
    broker.publish("t", "a").unwrap();
    let publisher = {
        let broker = broker.clone();
        thread::spawn(move || broker.publish("t", "b").unwrap())
    };
    thread::sleep(Duration::from_millis(20));
    sub.set_policy(OverflowPolicy::DropOldest);
    let outcome = publisher.join().unwrap();
    assert_eq!((outcome.queued, outcome.dropped), (1, 1));
    assert_eq!(payloads(&sub), ["b"]);
    let s = sub.stats();
    assert_eq!(s.policy, "drop-oldest");
    assert_eq!(
        (s.matched, s.delivered, s.dropped_by_reason.evicted),
        (2, 1, 1)
    );
    assert!(s.balances());
}

#[test]
fn each_subscription_keeps_its_own_policy() {
    let broker = Broker::new();
    let newest = broker
        .subscribe_with("t", SubscriptionOptions::new().capacity(1))
        .unwrap();
    let oldest = broker
        .subscribe_with(
            "t",
            SubscriptionOptions::new()
                .capacity(1)
                .policy(OverflowPolicy::DropOldest),
        )
        .unwrap();
    broker.publish("t", "1").unwrap();
    broker.publish("t", "2").unwrap();
    assert_eq!(payloads(&newest), ["1"]);
    assert_eq!(payloads(&oldest), ["2"]);
}

/// Waits (bounded) until `sub` has matched `n` messages: a publisher that matched and found the queue
/// full is then inside its `Block` wait.
fn until_matched(sub: &switchyard::Subscription, n: u64) {
    let give_up = Instant::now() + Duration::from_secs(10);
    while sub.stats().matched < n {
        assert!(
            Instant::now() < give_up,
            "the publisher never reached the queue"
        );
        thread::sleep(Duration::from_millis(1));
    }
}

/// A `Block { timeout: MAX }` subscription of capacity 1 on `t`, with one message queued: the next
/// publish on `t` waits.
fn full_subscription_that_blocks_forever() -> (Broker, switchyard::Subscription) {
    let broker = Broker::new();
    let sub = broker
        .subscribe_with(
            "t",
            SubscriptionOptions::new()
                .capacity(1)
                .policy(OverflowPolicy::Block {
                    timeout: Duration::MAX,
                }),
        )
        .unwrap();
    broker.publish("t", "queued").unwrap();
    (broker, sub)
}

#[test]
fn a_publisher_blocked_on_a_subscription_that_is_unsubscribed_drops_its_message_as_unsubscribed() {
    let (broker, sub) = full_subscription_that_blocks_forever();
    let publisher = {
        let broker = broker.clone();
        thread::spawn(move || broker.publish("t", "late").unwrap())
    };
    until_matched(&sub, 2);
    broker.unsubscribe(sub.id()).unwrap();
    let outcome = publisher.join().unwrap();
    assert_eq!((outcome.queued, outcome.dropped), (0, 1), "{outcome:?}");
    assert_eq!(sub.try_recv().unwrap_err(), TryRecvError::Closed);
    let s = sub.stats();
    assert_eq!(
        (s.delivered, s.dropped_by_reason.unsubscribed, s.depth),
        (0, 2, 0)
    );
    assert!(s.balances());
    assert!(broker.stats().balances());
}

#[test]
fn a_new_block_timeout_applies_to_publishers_already_waiting() {
    let (broker, sub) = full_subscription_that_blocks_forever();
    let (done, outcome) = std::sync::mpsc::channel();
    {
        let broker = broker.clone();
        thread::spawn(move || done.send(broker.publish("t", "waits").unwrap()));
    }
    until_matched(&sub, 2);
    sub.set_policy(OverflowPolicy::Block {
        timeout: Duration::from_millis(50),
    });
    // A bound for a broken build, not a speed claim: the new 50 ms timeout has long passed by then.
    let outcome = outcome
        .recv_timeout(Duration::from_secs(30))
        .expect("the publisher kept waiting under the old, endless timeout");
    assert_eq!((outcome.queued, outcome.dropped), (0, 1));
    let s = sub.stats();
    assert_eq!((s.dropped_by_reason.timeout, s.depth), (1, 1));
    assert!(s.balances());
}

#[test]
fn a_publish_with_a_deadline_waits_for_room_no_later_than_it_through_every_way_to_publish() {
    let (broker, sub) = full_subscription_that_blocks_forever();
    // Within bounds for a broken build (the subscription's own timeout is endless), not a speed claim.
    let soon = || PublishOptions::new().deadline(Instant::now() + Duration::from_millis(20));
    let outcome = broker.publish_with("t", "by topic", soon()).unwrap();
    assert_eq!((outcome.queued, outcome.dropped), (0, 1), "{outcome:?}");
    let mut publisher = broker.publisher("t").unwrap();
    let outcome = publisher.publish_with("by handle", soon());
    assert_eq!((outcome.queued, outcome.dropped), (0, 1), "{outcome:?}");
    let outcome = broker
        .publish_with("t", "retained", soon().retain(true))
        .unwrap();
    assert_eq!((outcome.queued, outcome.dropped), (0, 1), "{outcome:?}");
    // A deadline already past still queues when there is room: it bounds waiting, nothing else.
    sub.try_recv().unwrap();
    let past = PublishOptions::new().deadline(Instant::now());
    assert_eq!(broker.publish_with("t", "room", past).unwrap().queued, 1);
    let s = sub.stats();
    assert_eq!(
        (s.matched, s.delivered, s.dropped_by_reason.timeout, s.depth),
        (5, 1, 3, 1)
    );
    assert!(s.balances());
}

#[test]
fn a_subscription_timeout_shorter_than_the_publish_deadline_still_ends_the_wait() {
    let broker = Broker::new();
    let sub = broker
        .subscribe_with(
            "t",
            SubscriptionOptions::new()
                .capacity(1)
                .policy(OverflowPolicy::Block {
                    timeout: Duration::from_millis(20),
                }),
        )
        .unwrap();
    broker.publish("t", "queued").unwrap();
    let hour = PublishOptions::new().deadline(Instant::now() + Duration::from_secs(3600));
    let (done, outcome) = std::sync::mpsc::channel();
    thread::spawn(move || done.send(broker.publish_with("t", "waits", hour).unwrap()));
    // A bound for a broken build: the subscription's 20 ms has long passed by then.
    let outcome = outcome
        .recv_timeout(Duration::from_secs(30))
        .expect("the publisher waited for the publish's deadline, not the earlier timeout");
    assert_eq!((outcome.queued, outcome.dropped), (0, 1));
    assert_eq!(sub.stats().dropped_by_reason.timeout, 1);
}

/// A batch meets each policy exactly as the same messages published one by one would.
#[test]
fn a_batch_is_kept_and_dropped_as_one_message_at_a_time_would_be() {
    let broker = Broker::new();
    let newest = broker
        .subscribe_with("t", SubscriptionOptions::new().capacity(3))
        .unwrap();
    let oldest = broker
        .subscribe_with(
            "t",
            SubscriptionOptions::new()
                .capacity(3)
                .policy(OverflowPolicy::DropOldest),
        )
        .unwrap();
    let mut publisher = broker.publisher("t").unwrap();
    let outcome = publisher.publish_batch(["1", "2", "3", "4", "5"]);
    // 5 matched in each; DropNewest queues 3 and refuses 2, DropOldest queues 5 and evicts 2.
    assert_eq!(
        (outcome.matched, outcome.queued, outcome.dropped),
        (10, 8, 4)
    );
    assert_eq!(payloads(&newest), ["1", "2", "3"]);
    assert_eq!(payloads(&oldest), ["3", "4", "5"]);
    let (n, o) = (newest.stats(), oldest.stats());
    assert_eq!((n.matched, n.dropped_by_reason.queue_full), (5, 2));
    assert_eq!((o.matched, o.dropped_by_reason.evicted), (5, 2));
    assert_eq!(n.high_water, 3);
    assert!(broker.stats().balances());
    assert_eq!(broker.stats().totals.published, 5);
}

/// Receivers are woken once per batch, after its last push; a batch larger than a `Block` queue must
/// still wake a receiver parked in `recv` before the publisher waits for room, or both would wait.
#[test]
fn a_batch_larger_than_a_block_queue_wakes_its_parked_receiver_before_waiting() {
    let broker = Broker::new();
    let sub = broker
        .subscribe_with(
            "t",
            SubscriptionOptions::new()
                .capacity(4)
                .policy(OverflowPolicy::Block {
                    timeout: Duration::from_secs(60),
                }),
        )
        .unwrap();
    let publisher = {
        let broker = broker.clone();
        thread::spawn(move || {
            // Let the receiver park on the empty queue first.
            thread::sleep(Duration::from_millis(50));
            let mut publisher = broker.publisher("t").unwrap();
            publisher.publish_batch((0..100).map(|i| i.to_string()))
        })
    };
    // A receiver that is never woken still finds the messages when its wait times out, so the
    // symptom of a lost wake-up is a receive that took its whole timeout (a stall, far longer than
    // any scheduling delay), not an error.
    let stall = Duration::from_secs(5);
    let got: Vec<String> = (0..100)
        .map(|i| {
            let started = Instant::now();
            let d = sub.recv_timeout(stall).unwrap();
            assert!(
                started.elapsed() < stall,
                "receive {i} was never woken: it waited out its whole timeout"
            );
            String::from_utf8(d.payload().to_vec()).unwrap()
        })
        .collect();
    assert_eq!(got, (0..100).map(|i| i.to_string()).collect::<Vec<_>>());
    let outcome = publisher.join().unwrap();
    assert_eq!((outcome.queued, outcome.dropped), (100, 0));
    let s = sub.stats();
    assert_eq!((s.matched, s.delivered, s.dropped), (100, 100, 0));
}
