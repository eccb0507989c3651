//! The consumer pool against a real broker: every message of many subscriptions reaches the pool,
//! paced receivers keep their pace, pausing stops taking, stopping and unsubscribing end a consumer.

use std::thread;
use std::time::{Duration, Instant};

use switchyard::{Broker, StatsSnapshot, SubscriptionOptions};

use super::consumer::{Consumer, ConsumerPool};
use super::link::ConsumerState;

/// Polls `done` for up to 10 s (bounded: a test never hangs).
fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(2));
    }
}

fn delivered(broker: &Broker) -> u64 {
    broker.stats().totals.delivered
}

fn only(snapshot: &StatsSnapshot) -> &switchyard::SubscriptionStats {
    assert_eq!(snapshot.subscriptions.len(), 1);
    &snapshot.subscriptions[0]
}

#[test]
fn one_thread_serves_many_subscriptions_and_remembers_their_last_messages() {
    let broker = Broker::new();
    let mut pool = ConsumerPool::with_threads(1).unwrap();
    let consumers: Vec<Consumer> = (0..500)
        .map(|i| {
            let sub = broker.subscribe(&format!("sensor/{i}")).unwrap();
            pool.serve(sub, 1, Duration::ZERO).unwrap()
        })
        .collect();
    for round in 0..3 {
        for i in (0..500).step_by(7) {
            broker
                .publish(&format!("sensor/{i}"), format!("r{round}"))
                .unwrap();
        }
    }
    let published = 3 * (0..500).step_by(7).count() as u64;
    wait_for("every message to be taken", || {
        delivered(&broker) == published
    });
    let recent = consumers[7].recent();
    let payloads: Vec<_> = recent.iter().map(|m| m.preview.as_str()).collect();
    assert_eq!(payloads, ["r0", "r1", "r2"]);
    assert!(consumers[8].recent().is_empty());
    assert!(
        consumers
            .iter()
            .all(|c| c.state() == ConsumerState::Running)
    );
    let totals = broker.stats().totals;
    assert_eq!(totals.dropped, 0);
}

#[test]
fn a_flat_out_subscription_is_drained_in_batches_without_starving_the_others() {
    let broker = Broker::new();
    let mut pool = ConsumerPool::with_threads(1).unwrap();
    let busy = broker
        .subscribe_with("busy", SubscriptionOptions::new().capacity(100_000))
        .unwrap();
    let _busy = pool.serve(busy, 1, Duration::ZERO).unwrap();
    let quiet = broker.subscribe("quiet").unwrap();
    let quiet = pool.serve(quiet, 1, Duration::ZERO).unwrap();
    for i in 0..50_000u32 {
        broker.publish("busy", i.to_string()).unwrap();
    }
    broker.publish("quiet", "hello").unwrap();
    wait_for("both to be served", || delivered(&broker) == 50_001);
    assert_eq!(quiet.recent()[0].preview, "hello");
}

#[test]
fn paced_receivers_take_no_more_than_their_pace_allows() {
    let broker = Broker::new();
    let mut pool = ConsumerPool::with_threads(1).unwrap();
    let sub = broker.subscribe("jobs").unwrap();
    let pace = Duration::from_millis(100);
    let _consumer = pool.serve(sub, 2, pace).unwrap();
    assert_eq!(only(&broker.stats()).receivers, 2);
    let start = Instant::now();
    for i in 0..20 {
        broker.publish("jobs", format!("job {i}")).unwrap();
    }
    // Two receivers, each free again 100 ms after a message: by time t at most 2 * (t / pace + 1).
    // (Read the count first and the time after, so a slow machine only makes the bound looser.)
    let mut seen = 0;
    while seen < 8 {
        seen = delivered(&broker);
        let allowed = 2 * (start.elapsed().as_millis() as u64 / 100 + 1);
        assert!(
            seen <= allowed,
            "{seen} taken where the pace allows {allowed}"
        );
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "paced consumer stalled at {seen}"
        );
        thread::sleep(Duration::from_millis(5));
    }
    // And it does take them: two at a time, not one.
    wait_for("all twenty", || delivered(&broker) == 20);
}

#[test]
fn a_paused_consumer_takes_nothing_until_resumed() {
    let broker = Broker::new();
    let mut pool = ConsumerPool::with_threads(1).unwrap();
    let sub = broker.subscribe("t").unwrap();
    let consumer = pool.serve(sub, 1, Duration::ZERO).unwrap();
    broker.publish("t", "before").unwrap();
    wait_for("the first message", || delivered(&broker) == 1);

    consumer.set_paused(true);
    wait_for("the pause to be acknowledged", || {
        consumer.state() == ConsumerState::Paused
    });
    for _ in 0..5 {
        broker.publish("t", "while paused").unwrap();
    }
    thread::sleep(Duration::from_millis(50));
    let s = broker.stats();
    assert_eq!(
        (only(&s).delivered, only(&s).depth),
        (1, 5),
        "taken while paused"
    );

    consumer.set_paused(false);
    assert_eq!(consumer.state(), ConsumerState::Running);
    wait_for("the queued messages after resuming", || {
        delivered(&broker) == 6
    });
}

#[test]
fn stopping_a_consumer_drops_its_handles_and_unsubscribing_stops_it() {
    let broker = Broker::new();
    let mut pool = ConsumerPool::with_threads(2).unwrap();
    let a = pool
        .serve(broker.subscribe("a").unwrap(), 3, Duration::ZERO)
        .unwrap();
    let b_sub = broker.subscribe("b").unwrap();
    let b_id = b_sub.id();
    let b = pool.serve(b_sub, 1, Duration::ZERO).unwrap();
    assert_eq!(broker.stats().subscriptions.len(), 2);

    a.stop();
    assert_eq!(a.state(), ConsumerState::Stopped);
    wait_for("the last handle of `a` to go", || {
        broker.stats().subscriptions.len() == 1
    });

    broker.unsubscribe(b_id).unwrap();
    wait_for("the consumer of `b` to see the close", || {
        b.state() == ConsumerState::Stopped
    });
}

#[test]
fn a_durable_subscription_restored_elsewhere_can_be_served() {
    let broker = Broker::new();
    let options = SubscriptionOptions::new().name("orders").durable(true);
    drop(broker.subscribe_with("orders/#", options).unwrap());
    broker.publish("orders/1", "queued while detached").unwrap();
    let mut pool = ConsumerPool::with_threads(1).unwrap();
    let consumer = pool
        .serve(broker.attach("orders").unwrap(), 1, Duration::ZERO)
        .unwrap();
    wait_for("the message queued before the consumer", || {
        delivered(&broker) == 1
    });
    assert_eq!(consumer.recent()[0].preview, "queued while detached");
}

#[test]
fn dropping_the_pool_stops_every_consumer() {
    let broker = Broker::new();
    let mut pool = ConsumerPool::with_threads(2).unwrap();
    let consumers: Vec<_> = (0..10)
        .map(|i| {
            let sub = broker.subscribe(&format!("t/{i}")).unwrap();
            pool.serve(sub, 1, Duration::from_millis(10)).unwrap()
        })
        .collect();
    drop(pool);
    assert!(
        consumers
            .iter()
            .all(|c| c.state() == ConsumerState::Stopped)
    );
    assert!(broker.stats().subscriptions.is_empty());
}

#[test]
fn a_subscription_that_already_has_a_ready_signal_is_refused_and_let_go() {
    let broker = Broker::new();
    let mut pool = ConsumerPool::with_threads(1).unwrap();
    let elsewhere = switchyard::ReadySignal::new();
    let sub = broker
        .subscribe_with("t", SubscriptionOptions::new().ready_signal(&elsewhere))
        .unwrap();
    let err = pool.serve(sub, 2, Duration::ZERO).unwrap_err();
    assert!(
        err.to_string().contains("already has a ready signal"),
        "{err}"
    );
    wait_for("the pool to let the handles go", || {
        broker.stats().subscriptions.is_empty()
    });
}
