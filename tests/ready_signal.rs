//! One thread waiting on many subscriptions through a `ReadySignal`.

use std::thread;
use std::time::{Duration, Instant};

use switchyard::{Broker, ReadySignal, Subscription, SubscriptionOptions};

/// Long enough that only a lost wake-up, never a slow machine, would make a wait run into it.
const LOST_WAKEUP: Duration = Duration::from_secs(20);

fn attached(broker: &Broker, signal: &std::sync::Arc<ReadySignal>, n: usize) -> Vec<Subscription> {
    (0..n)
        .map(|i| {
            broker
                .subscribe_with(
                    &format!("pool/{i}"),
                    SubscriptionOptions::new().capacity(8).ready_signal(signal),
                )
                .unwrap()
        })
        .collect()
}

#[test]
fn a_push_into_any_attached_subscription_wakes_the_waiter() {
    let broker = Broker::new();
    let signal = ReadySignal::new();
    let subs = attached(&broker, &signal, 100);
    for round in 0..200 {
        let target = (round * 37) % subs.len();
        let publisher = {
            let broker = broker.clone();
            thread::spawn(move || {
                if round % 2 == 0 {
                    thread::sleep(Duration::from_micros(200));
                }
                broker.publish(&format!("pool/{target}"), "x").unwrap();
            })
        };
        let started = Instant::now();
        let ready = signal.wait_timeout(LOST_WAKEUP, || subs.iter().any(|s| !s.is_empty()));
        assert!(ready, "round {round}");
        assert!(
            started.elapsed() < LOST_WAKEUP,
            "round {round}: woken by the push, not by the timeout"
        );
        publisher.join().unwrap();
        assert_eq!(
            subs[target].try_recv().unwrap().topic(),
            format!("pool/{target}")
        );
    }
}

#[test]
fn closing_an_attached_subscription_wakes_the_waiter() {
    let broker = Broker::new();
    let signal = ReadySignal::new();
    let subs = attached(&broker, &signal, 3);
    let id = subs[1].id();
    let closer = {
        let broker = broker.clone();
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(5));
            broker.unsubscribe(id).unwrap();
        })
    };
    let started = Instant::now();
    assert!(signal.wait_timeout(LOST_WAKEUP, || subs.iter().any(|s| s.is_closed())));
    assert!(started.elapsed() < LOST_WAKEUP);
    closer.join().unwrap();
}

#[test]
fn waiting_times_out_when_nothing_arrives_and_unattached_subscriptions_do_not_wake_it() {
    let broker = Broker::new();
    let signal = ReadySignal::new();
    let subs = attached(&broker, &signal, 2);
    let _other = broker.subscribe("elsewhere").unwrap();
    broker.publish("elsewhere", "x").unwrap();
    assert!(!signal.wait_timeout(Duration::from_millis(20), || {
        subs.iter().any(|s| !s.is_empty())
    }));
}
