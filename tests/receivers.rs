//! Receiving: fan-out, competing consumers, blocking and async receive, batch drain, closing.

use std::collections::HashSet;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use switchyard::{Broker, Message, RecvError, RecvTimeoutError, SubscriptionOptions, TryRecvError};

#[test]
fn every_subscription_gets_the_same_shared_message() {
    let broker = Broker::new();
    let a = broker.subscribe("x/#").unwrap();
    let b = broker.subscribe("x/+").unwrap();
    let outcome = broker.publish("x/y", vec![7u8; 1000]).unwrap();
    assert_eq!((outcome.matched, outcome.queued), (2, 2));
    let ma = a.try_recv().unwrap().into_message();
    let mb = b.try_recv().unwrap().into_message();
    assert!(Message::ptr_eq(&ma, &mb), "fan-out shares one allocation");
    assert_eq!(
        ma.payload().as_ptr(),
        mb.payload().as_ptr(),
        "the payload is not copied"
    );
}

#[test]
fn competing_receivers_each_get_distinct_messages_and_all_are_delivered() {
    let broker = Broker::new();
    let sub = broker
        .subscribe_with("jobs", SubscriptionOptions::new().capacity(64))
        .unwrap();
    let workers: Vec<_> = (0..3)
        .map(|_| {
            let rx = sub.clone();
            thread::spawn(move || {
                let mut got = Vec::new();
                while let Ok(d) = rx.recv() {
                    got.push(u32::from_le_bytes(d.payload()[..4].try_into().unwrap()));
                }
                got
            })
        })
        .collect();
    let mut publisher = broker.publisher("jobs").unwrap();
    for i in 0..10_000u32 {
        while publisher.publish(i.to_le_bytes().to_vec()).dropped > 0 {
            thread::yield_now();
        }
    }
    while !sub.is_empty() {
        thread::yield_now();
    }
    let id = sub.id();
    drop(sub);
    // The workers still hold clones; an explicit unsubscribe closes it for them.
    broker.unsubscribe(id).unwrap();
    let mut all = Vec::new();
    for w in workers {
        all.extend(w.join().unwrap());
    }
    let unique: HashSet<u32> = all.iter().copied().collect();
    assert_eq!(all.len(), unique.len(), "no message was delivered twice");
    assert_eq!(
        unique.len(),
        10_000,
        "every job was retried until queued, then delivered"
    );
    let stats = broker.stats();
    assert!(stats.balances(), "{stats:?}");
    assert_eq!(stats.totals.matched, 10_000 + stats.totals.dropped);
}

#[test]
fn recv_timeout_times_out_on_an_empty_queue_and_returns_closed_after_unsubscribe() {
    let broker = Broker::new();
    let sub = broker.subscribe("a").unwrap();
    assert_eq!(
        sub.recv_timeout(Duration::from_millis(10)).unwrap_err(),
        RecvTimeoutError::Timeout
    );
    let rx = sub.clone();
    let waiter = thread::spawn(move || rx.recv());
    thread::sleep(Duration::from_millis(10));
    broker.unsubscribe(sub.id()).unwrap();
    assert_eq!(
        waiter.join().unwrap().unwrap_err(),
        RecvError::Closed,
        "parked receivers are woken"
    );
    assert_eq!(sub.try_recv().unwrap_err(), TryRecvError::Closed);
    assert!(sub.is_closed());
}

#[test]
fn a_parked_receiver_is_woken_by_a_publish() {
    let broker = Broker::new();
    let sub = broker.subscribe("a").unwrap();
    let rx = sub.clone();
    let waiter = thread::spawn(move || rx.recv().map(|d| d.payload().clone()));
    thread::sleep(Duration::from_millis(20));
    broker.publish("a", "wake").unwrap();
    assert_eq!(&waiter.join().unwrap().unwrap()[..], b"wake");
}

#[test]
fn recv_async_works_under_tokio_and_is_cancel_safe() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let broker = Broker::new();
    let sub = Arc::new(broker.subscribe("a/#").unwrap());
    rt.block_on(async {
        // A receive that loses a select! race takes nothing.
        tokio::select! {
            _ = sub.recv_async() => panic!("nothing was published"),
            _ = tokio::time::sleep(Duration::from_millis(10)) => {}
        }
        let rx = sub.clone();
        let task = tokio::spawn(async move {
            let mut n = 0;
            while let Ok(d) = rx.recv_async().await {
                assert_eq!(d.topic(), "a/b");
                n += 1;
                if n == 100 {
                    break;
                }
            }
            n
        });
        for _ in 0..100 {
            broker.publish("a/b", "x").unwrap();
            tokio::task::yield_now().await;
        }
        assert_eq!(task.await.unwrap(), 100);
    });
    let s = sub.stats();
    assert_eq!((s.matched, s.delivered), (100, 100));
}

#[test]
fn drain_into_takes_a_batch_and_counts_it_delivered() {
    let broker = Broker::new();
    let sub = broker
        .subscribe_with("t", SubscriptionOptions::new().capacity(4))
        .unwrap();
    for i in 0..6 {
        broker.publish("t", format!("{i}")).unwrap();
    }
    let mut out = Vec::new();
    let drained = sub.drain_into(&mut out, 3);
    assert_eq!(drained.count, 3);
    assert_eq!(drained.missed.map(|m| m.queue_full), Some(2));
    let drained = sub.drain_into(&mut out, 100);
    assert_eq!((drained.count, drained.missed), (1, None));
    assert_eq!(out.len(), 4);
    let s = sub.stats();
    assert_eq!((s.delivered, s.depth, s.dropped), (4, 0, 2));
}

#[test]
fn dropping_the_last_handle_unsubscribes_and_counts_queued_messages() {
    let broker = Broker::new();
    let sub = broker.subscribe("t").unwrap();
    let second = sub.clone();
    assert_eq!(sub.stats().receivers, 2);
    broker.publish("t", "a").unwrap();
    broker.publish("t", "b").unwrap();
    drop(sub);
    assert_eq!(
        broker.stats().totals.subscriptions,
        1,
        "one handle is still alive"
    );
    drop(second);
    let stats = broker.stats();
    assert_eq!(stats.totals.subscriptions, 0);
    assert_eq!((stats.totals.matched, stats.totals.dropped), (2, 2));
    assert!(stats.balances());
    let outcome = broker.publish("t", "c").unwrap();
    assert_eq!(outcome.matched, 0);
    assert_eq!(broker.stats().totals.unrouted, 1);
}

#[test]
fn a_new_receiver_does_not_report_gaps_from_before_it_existed() {
    let broker = Broker::new();
    let sub = broker
        .subscribe_with("t", SubscriptionOptions::new().capacity(1))
        .unwrap();
    broker.publish("t", "1").unwrap();
    broker.publish("t", "2").unwrap();
    let late = sub.clone();
    assert!(late.try_recv().unwrap().missed().is_none());
}

/// Ping-pong through two subscriptions, each side waiting in `recv_timeout`; every few rounds one
/// side pauses past the receivers' polling window, so the other parks and must be woken by the
/// publish (the notifier's half of the asymmetric handshake, see `src/sync/barrier.rs`). A lost wake-up
/// shows as a timeout.
#[test]
fn receivers_that_park_between_messages_are_always_woken() {
    const ROUNDS: u32 = 2_000;
    let broker = Broker::new();
    let ping = broker.subscribe("ping").unwrap();
    let pong = broker.subscribe("pong").unwrap();
    let echo = {
        let mut publisher = broker.publisher("pong").unwrap();
        thread::spawn(move || {
            for round in 0..ROUNDS {
                ping.recv_timeout(Duration::from_secs(10))
                    .unwrap_or_else(|e| panic!("echo: round {round}: {e}"));
                if round % 7 == 3 {
                    thread::sleep(Duration::from_micros(100));
                }
                publisher.publish("o");
            }
        })
    };
    let mut publisher = broker.publisher("ping").unwrap();
    for round in 0..ROUNDS {
        if round % 5 == 2 {
            thread::sleep(Duration::from_micros(100));
        }
        publisher.publish("i");
        pong.recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
    }
    echo.join().unwrap();
}

/// A `Block` publisher on a queue of one parks at nearly every publish and must be woken by the
/// receiver's take; the receiver, pausing now and then, parks too. A lost wake-up on either side
/// shows as a `timeout` drop or a receive timeout.
#[test]
fn a_block_publisher_and_its_receiver_that_both_park_are_always_woken() {
    const MESSAGES: u64 = 3_000;
    let broker = Broker::new();
    let options =
        SubscriptionOptions::new()
            .capacity(1)
            .policy(switchyard::OverflowPolicy::Block {
                timeout: Duration::from_secs(10),
            });
    let sub = broker.subscribe_with("t", options).unwrap();
    let receiver = thread::spawn(move || {
        for n in 0..MESSAGES {
            if n % 9 == 4 {
                thread::sleep(Duration::from_micros(100));
            }
            sub.recv_timeout(Duration::from_secs(10))
                .unwrap_or_else(|e| panic!("message {n}: {e}"));
        }
        sub.stats()
    });
    let mut publisher = broker.publisher("t").unwrap();
    for n in 0..MESSAGES {
        if n % 11 == 5 {
            thread::sleep(Duration::from_micros(100));
        }
        assert_eq!(publisher.publish("x").queued, 1, "message {n} was dropped");
    }
    let s = receiver.join().unwrap();
    assert_eq!((s.matched, s.delivered, s.dropped), (MESSAGES, MESSAGES, 0));
}

/// The async form: tasks that await an empty subscription switch its event to a fence on each side
/// (`src/sync/waiters.rs`); publishes from a plain thread, paced so that the task finds nothing and
/// registers again and again, must each wake it.
#[test]
fn async_receivers_that_register_between_messages_are_always_woken() {
    const MESSAGES: u32 = 2_000;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let broker = Broker::new();
    let sub = Arc::new(broker.subscribe("a").unwrap());
    let task = {
        let sub = sub.clone();
        rt.spawn(async move {
            for n in 0..MESSAGES {
                tokio::time::timeout(Duration::from_secs(10), sub.recv_async())
                    .await
                    .unwrap_or_else(|_| panic!("message {n} never woke the task"))
                    .unwrap();
            }
        })
    };
    let mut publisher = broker.publisher("a").unwrap();
    for n in 0..MESSAGES {
        if n % 3 == 1 {
            thread::sleep(Duration::from_micros(50));
        }
        publisher.publish("x");
    }
    rt.block_on(task).unwrap();
    let s = sub.stats();
    assert_eq!((s.matched, s.delivered), (MESSAGES as u64, MESSAGES as u64));
}
