//! Priorities: highest priority first, FIFO within a priority, per-lane overflow, drops counted per
//! priority, and the books balance over every lane.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use switchyard::{Broker, OverflowPolicy, Priority, PublishOptions, SubscriptionOptions};

fn at(priority: Priority) -> PublishOptions {
    PublishOptions::new().priority(priority)
}

#[test]
fn a_receiver_gets_the_highest_priority_first_and_fifo_within_a_priority() {
    let broker = Broker::new();
    let sub = broker.subscribe("jobs").unwrap();
    let sent = [
        (Priority::Low, "low 1"),
        (Priority::Normal, "normal 1"),
        (Priority::Critical, "critical 1"),
        (Priority::High, "high 1"),
        (Priority::Low, "low 2"),
        (Priority::Critical, "critical 2"),
        (Priority::Normal, "normal 2"),
        (Priority::High, "high 2"),
    ];
    for (p, text) in sent {
        broker.publish_with("jobs", text, at(p)).unwrap();
    }
    let got: Vec<String> = std::iter::from_fn(|| sub.try_recv().ok())
        .map(|d| String::from_utf8_lossy(d.payload()).into_owned())
        .collect();
    assert_eq!(
        got,
        [
            "critical 1",
            "critical 2",
            "high 1",
            "high 2",
            "normal 1",
            "normal 2",
            "low 1",
            "low 2"
        ]
    );
}

#[test]
fn plain_publish_is_normal_priority_and_deliveries_report_their_priority() {
    let broker = Broker::new();
    let sub = broker.subscribe("a").unwrap();
    broker.publish("a", "plain").unwrap();
    broker
        .publish_with("a", "urgent", at(Priority::High))
        .unwrap();
    let mut publisher = broker.publisher("a").unwrap();
    publisher.publish_with("low", at(Priority::Low));
    assert_eq!(sub.try_recv().unwrap().priority(), Priority::High);
    assert_eq!(sub.try_recv().unwrap().priority(), Priority::Normal);
    assert_eq!(sub.try_recv().unwrap().priority(), Priority::Low);
}

#[test]
fn drain_into_takes_messages_in_priority_order() {
    let broker = Broker::new();
    let sub = broker.subscribe("a").unwrap();
    for p in Priority::ALL {
        broker.publish_with("a", p.name(), at(p)).unwrap();
    }
    let mut out = Vec::new();
    assert_eq!(sub.drain_into(&mut out, 10).count, 4);
    let order: Vec<Priority> = out.iter().map(|m| m.priority()).collect();
    assert_eq!(
        order,
        [
            Priority::Critical,
            Priority::High,
            Priority::Normal,
            Priority::Low
        ]
    );
}

#[test]
fn capacity_is_per_lane_so_a_full_normal_lane_does_not_refuse_critical_messages() {
    let broker = Broker::new();
    let sub = broker
        .subscribe_with("a", SubscriptionOptions::new().capacity(2))
        .unwrap();
    for _ in 0..3 {
        broker.publish("a", "n").unwrap();
    }
    let critical = broker
        .publish_with("a", "c", at(Priority::Critical))
        .unwrap();
    assert_eq!(critical.queued, 1, "the critical lane has its own room");
    let stats = sub.stats();
    assert_eq!(stats.depth, 3);
    assert_eq!(stats.depth_by_priority.normal, 2);
    assert_eq!(stats.depth_by_priority.critical, 1);
    assert_eq!(stats.dropped_by_priority.normal, 1);
    assert_eq!(stats.dropped_by_priority.critical, 0);
    assert!(stats.balances(), "{stats:?}");
}

#[test]
fn drop_oldest_evicts_the_oldest_message_of_the_same_priority_only() {
    let broker = Broker::new();
    let sub = broker
        .subscribe_with(
            "a",
            SubscriptionOptions::new()
                .capacity(1)
                .policy(OverflowPolicy::DropOldest),
        )
        .unwrap();
    broker.publish_with("a", "low", at(Priority::Low)).unwrap();
    broker
        .publish_with("a", "high 1", at(Priority::High))
        .unwrap();
    broker
        .publish_with("a", "high 2", at(Priority::High))
        .unwrap();
    let first = sub.try_recv().unwrap();
    assert_eq!(&first.payload()[..], b"high 2");
    assert_eq!(first.missed().unwrap().evicted, 1);
    assert_eq!(
        &sub.try_recv().unwrap().payload()[..],
        b"low",
        "the low lane kept its message"
    );
    let stats = sub.stats();
    assert_eq!(stats.dropped_by_priority.high, 1);
    assert_eq!(stats.dropped_by_priority.total(), stats.dropped);
}

#[test]
fn unsubscribing_counts_what_every_lane_held_as_dropped_by_priority() {
    let broker = Broker::new();
    let sub = broker.subscribe("a").unwrap();
    broker.publish_with("a", "x", at(Priority::Low)).unwrap();
    broker
        .publish_with("a", "y", at(Priority::Critical))
        .unwrap();
    broker.publish("a", "z").unwrap();
    sub.unsubscribe();
    let stats = broker.stats();
    assert_eq!(stats.totals.dropped, 3);
    assert_eq!(stats.totals.depth, 0);
    assert!(stats.balances(), "{stats:?}");
}

#[test]
fn a_parked_receiver_wakes_for_a_message_in_a_lane_allocated_after_it_parked() {
    let broker = Broker::new();
    let sub = broker.subscribe("a").unwrap();
    let waiter = {
        let sub = sub.clone();
        thread::spawn(move || sub.recv_timeout(Duration::from_secs(10)))
    };
    thread::sleep(Duration::from_millis(20));
    broker
        .publish_with("a", "wake", at(Priority::Critical))
        .unwrap();
    let got = waiter.join().unwrap().unwrap();
    assert_eq!(got.priority(), Priority::Critical);
}

#[test]
fn concurrent_publishers_never_make_a_receiver_take_a_lower_priority_while_a_higher_one_waits() {
    // Publishers fill every lane concurrently; the receiver starts only after they finish, so every
    // message is queued when it drains: the sequence must be non-increasing in priority, FIFO per
    // publisher within a priority, and nothing lost.
    const PER_PUBLISHER: u32 = 2_000;
    let broker = Broker::new();
    let sub = broker
        .subscribe_with(
            "a",
            SubscriptionOptions::new().capacity(4 * PER_PUBLISHER as usize),
        )
        .unwrap();
    let publishers: Vec<_> = (0..4u32)
        .map(|p| {
            let broker = broker.clone();
            thread::spawn(move || {
                let mut publisher = broker.publisher("a").unwrap();
                for i in 0..PER_PUBLISHER {
                    let priority = Priority::ALL[((i + p) % 4) as usize];
                    let mut payload = p.to_le_bytes().to_vec();
                    payload.extend_from_slice(&i.to_le_bytes());
                    assert_eq!(publisher.publish_with(payload, at(priority)).queued, 1);
                }
            })
        })
        .collect();
    for p in publishers {
        p.join().unwrap();
    }
    let mut last_priority = Priority::Critical;
    let mut last_seq = [[None::<u32>; 4]; 4];
    let mut count = 0;
    while let Ok(d) = sub.try_recv() {
        assert!(d.priority() <= last_priority, "priority went up");
        last_priority = d.priority();
        let p = u32::from_le_bytes(d.payload()[..4].try_into().unwrap()) as usize;
        let i = u32::from_le_bytes(d.payload()[4..].try_into().unwrap());
        let slot = &mut last_seq[p][d.priority() as usize];
        assert!(slot.is_none_or(|prev| prev < i), "FIFO within a priority");
        *slot = Some(i);
        count += 1;
    }
    assert_eq!(count, 4 * PER_PUBLISHER);
    assert!(broker.stats().balances());
}

#[test]
fn a_critical_message_queued_before_a_receive_is_taken_first_while_publishers_flood_lower_lanes() {
    // Background publishers keep the Low, Normal and High lanes busy. Each time, the main thread queues a
    // Critical message and then receives: the message it gets must be Critical, because a Critical was
    // queued before the receive began. (A message that arrives *during* a receive may be overtaken by a
    // lower one: the lanes are separate queues, checked highest first; see the priority module docs.)
    let broker = Broker::new();
    let sub = broker
        .subscribe_with(
            "a",
            SubscriptionOptions::new()
                .capacity(1 << 10)
                .policy(OverflowPolicy::DropOldest),
        )
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let publishers: Vec<_> = [Priority::Low, Priority::Normal, Priority::High]
        .into_iter()
        .map(|p| {
            let (broker, stop) = (broker.clone(), stop.clone());
            thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    broker.publish_with("a", "background", at(p)).unwrap();
                }
            })
        })
        .collect();
    for _ in 0..20_000 {
        broker
            .publish_with("a", "critical", at(Priority::Critical))
            .unwrap();
        let d = sub.try_recv().unwrap();
        assert_eq!(d.priority(), Priority::Critical);
    }
    stop.store(true, Ordering::Relaxed);
    for p in publishers {
        p.join().unwrap();
    }
    let stats = broker.stats();
    assert!(stats.balances(), "{stats:?}");
    assert_eq!(stats.subscriptions[0].dropped_by_priority.critical, 0);
}
