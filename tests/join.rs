//! Join: a publisher waits until every message of a joinable work queue has been processed.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use switchyard::{Broker, DoneError, JoinError, OverflowPolicy, SubscriptionOptions};

fn joinable(capacity: usize) -> SubscriptionOptions {
    SubscriptionOptions::new().capacity(capacity).joinable(true)
}

#[test]
fn join_returns_once_every_message_was_received_and_acknowledged() {
    let broker = Broker::new();
    let jobs = broker.subscribe_with("jobs", joinable(1024)).unwrap();
    let processed = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..3)
        .map(|_| {
            let (jobs, processed) = (jobs.clone(), processed.clone());
            thread::spawn(move || {
                while let Ok(_job) = jobs.recv() {
                    thread::sleep(Duration::from_micros(50));
                    processed.fetch_add(1, Ordering::SeqCst);
                    jobs.done().unwrap();
                }
            })
        })
        .collect();
    let mut publisher = broker.publisher("jobs").unwrap();
    for i in 0..500u32 {
        assert_eq!(publisher.publish(i.to_le_bytes().to_vec()).queued, 1);
    }
    assert_eq!(publisher.join(Duration::from_secs(30)).unwrap(), 1);
    assert_eq!(
        processed.load(Ordering::SeqCst),
        500,
        "join returned only after all work"
    );
    assert_eq!(jobs.stats().unfinished, Some(0));
    let id = jobs.id();
    drop(jobs);
    broker.unsubscribe(id).unwrap();
    for w in workers {
        w.join().unwrap();
    }
}

#[test]
fn join_times_out_naming_how_many_messages_are_unfinished() {
    let broker = Broker::new();
    let jobs = broker.subscribe_with("jobs", joinable(8)).unwrap();
    for _ in 0..3 {
        broker.publish("jobs", "x").unwrap();
    }
    let _taken = jobs.try_recv().unwrap(); // delivered, never acknowledged
    let started = Instant::now();
    let err = jobs.join(Duration::from_millis(30)).unwrap_err();
    assert!(started.elapsed() >= Duration::from_millis(30));
    assert_eq!(
        err,
        JoinError::Timeout {
            id: jobs.id(),
            unfinished: 3
        }
    );
    assert!(err.to_string().contains("3 unfinished"));
}

#[test]
fn done_without_a_delivered_message_is_an_error_not_an_early_join() {
    let broker = Broker::new();
    let jobs = broker.subscribe_with("jobs", joinable(8)).unwrap();
    broker.publish("jobs", "queued, not yet received").unwrap();
    assert_eq!(jobs.done(), Err(DoneError::NothingToAcknowledge(jobs.id())));
    assert!(jobs.join(Duration::from_millis(5)).is_err());
    jobs.try_recv().unwrap();
    jobs.done().unwrap();
    jobs.join(Duration::ZERO).unwrap();
    assert!(
        jobs.done().is_err(),
        "a second done for one message is refused"
    );
}

#[test]
fn a_subscription_that_is_not_joinable_says_so() {
    let broker = Broker::new();
    let plain = broker.subscribe("jobs").unwrap();
    assert_eq!(plain.done(), Err(DoneError::NotJoinable(plain.id())));
    assert_eq!(
        plain.join(Duration::ZERO),
        Err(JoinError::NotJoinable(plain.id()))
    );
    assert_eq!(plain.stats().unfinished, None);
    let mut publisher = broker.publisher("jobs").unwrap();
    assert_eq!(
        publisher.join(Duration::ZERO),
        Ok(0),
        "nothing joinable to wait for"
    );
    assert_eq!(
        broker.join(999, Duration::ZERO),
        Err(JoinError::Unknown(999))
    );
}

#[test]
fn dropped_messages_are_not_waited_for() {
    let broker = Broker::new();
    let newest = broker.subscribe_with("a", joinable(1)).unwrap();
    let oldest = broker
        .subscribe_with("a", joinable(1).policy(OverflowPolicy::DropOldest))
        .unwrap();
    for _ in 0..5 {
        broker.publish("a", "x").unwrap();
    }
    assert_eq!(newest.stats().unfinished, Some(1), "four refused");
    assert_eq!(oldest.stats().unfinished, Some(1), "four evicted");
    newest.try_recv().unwrap();
    newest.done().unwrap();
    newest.join(Duration::ZERO).unwrap();
    let id = oldest.id();
    let waiter = {
        let broker = broker.clone();
        thread::spawn(move || broker.join(id, Duration::from_secs(10)))
    };
    thread::sleep(Duration::from_millis(10));
    // Unsubscribing discards the queued message: nothing is unfinished any more, and the joiner wakes.
    broker.unsubscribe(id).unwrap();
    assert!(matches!(
        waiter.join().unwrap(),
        Ok(()) | Err(JoinError::Unknown(_))
    ));
    assert!(broker.stats().balances());
}

#[test]
fn join_under_concurrent_publishers_and_workers_waits_for_every_message() {
    let broker = Broker::new();
    let jobs = broker
        .subscribe_with(
            "jobs",
            joinable(64).policy(OverflowPolicy::Block {
                timeout: Duration::from_secs(10),
            }),
        )
        .unwrap();
    let acknowledged = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let (jobs, acknowledged) = (jobs.clone(), acknowledged.clone());
            thread::spawn(move || {
                while let Ok(_job) = jobs.recv() {
                    acknowledged.fetch_add(1, Ordering::SeqCst);
                    jobs.done().unwrap();
                }
            })
        })
        .collect();
    let publishers: Vec<_> = (0..3)
        .map(|_| {
            let broker = broker.clone();
            thread::spawn(move || {
                let mut p = broker.publisher("jobs").unwrap();
                for _ in 0..5_000 {
                    assert_eq!(p.publish("job").queued, 1);
                }
                p.join(Duration::from_secs(30)).unwrap();
            })
        })
        .collect();
    for p in publishers {
        p.join().unwrap();
    }
    assert_eq!(acknowledged.load(Ordering::SeqCst), 15_000);
    jobs.join(Duration::ZERO).unwrap();
    let id = jobs.id();
    drop(jobs);
    broker.unsubscribe(id).unwrap();
    for w in workers {
        w.join().unwrap();
    }
    assert!(broker.stats().balances());
}
