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
        let mut ready = Vec::new();
        assert_eq!(
            signal.wait_ready(&mut ready, LOST_WAKEUP),
            1,
            "round {round}"
        );
        assert_eq!(ready, [subs[target].id()]);
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
    let mut ready = Vec::new();
    assert_eq!(signal.wait_ready(&mut ready, LOST_WAKEUP), 1);
    assert!(started.elapsed() < LOST_WAKEUP);
    assert!(subs[1].is_closed());
    closer.join().unwrap();
}

#[test]
fn waiting_times_out_when_nothing_arrives_and_unattached_subscriptions_do_not_wake_it() {
    let broker = Broker::new();
    let signal = ReadySignal::new();
    let _subs = attached(&broker, &signal, 2);
    let _other = broker.subscribe("elsewhere").unwrap();
    broker.publish("elsewhere", "x").unwrap();
    let mut ready = Vec::new();
    assert_eq!(signal.wait_ready(&mut ready, Duration::from_millis(20)), 0);
}

#[test]
fn the_ready_list_hands_out_only_the_subscriptions_that_got_a_message_each_once() {
    let broker = Broker::new();
    let signal = ReadySignal::new();
    let subs = attached(&broker, &signal, 1000);
    let mut ready = Vec::new();
    assert_eq!(signal.try_ready(&mut ready), 0);
    for target in [417, 3, 417, 999] {
        broker.publish(&format!("pool/{target}"), "x").unwrap();
    }
    assert_eq!(signal.wait_ready(&mut ready, LOST_WAKEUP), 3);
    ready.sort_unstable();
    let mut expected = vec![subs[3].id(), subs[417].id(), subs[999].id()];
    expected.sort_unstable();
    assert_eq!(ready, expected, "once each, however many messages");
    assert_eq!(signal.try_ready(&mut ready), 0, "nothing new arrived");
    // Handed out, not yet emptied: it comes back only with a new message.
    let _ = subs[417].try_recv().unwrap();
    broker.publish("pool/417", "again").unwrap();
    ready.clear();
    assert_eq!(signal.wait_ready(&mut ready, LOST_WAKEUP), 1);
    assert_eq!(ready, [subs[417].id()]);
}

#[test]
fn a_subscription_attached_with_a_key_is_handed_out_by_that_key() {
    let broker = Broker::new();
    let signal = ReadySignal::new();
    let keyed: Vec<Subscription> = (0..5u64)
        .map(|i| {
            let options = SubscriptionOptions::new()
                .ready_signal(&signal)
                .ready_key(1000 + i);
            broker
                .subscribe_with(&format!("keyed/{i}"), options)
                .unwrap()
        })
        .collect();
    let by_id = attached(&broker, &signal, 1);
    broker.publish("keyed/3", "x").unwrap();
    broker.publish("pool/0", "y").unwrap();
    let mut ready = Vec::new();
    assert_eq!(signal.wait_ready(&mut ready, LOST_WAKEUP), 2);
    ready.sort_unstable();
    let mut expected = vec![1003, by_id[0].id()];
    expected.sort_unstable();
    assert_eq!(ready, expected, "the key where one was given, else the id");
    assert_eq!(&keyed[3].try_recv().unwrap().payload()[..], b"x");
}

#[test]
fn a_closed_subscription_is_handed_out_so_its_consumer_sees_closed() {
    let broker = Broker::new();
    let signal = ReadySignal::new();
    let subs = attached(&broker, &signal, 3);
    broker.unsubscribe(subs[2].id()).unwrap();
    let mut ready = Vec::new();
    assert_eq!(signal.wait_ready(&mut ready, LOST_WAKEUP), 1);
    assert_eq!(ready, [subs[2].id()]);
    assert!(subs[2].is_closed());
}

/// Publishers spray messages over many subscriptions while one consumer serves them all through the
/// ready list alone (no pass over idle subscriptions): every message arrives, none twice, the books
/// balance. A lost wake-up or a subscription left off the list with messages would hang until
/// `LOST_WAKEUP` and fail.
#[test]
fn a_consumer_served_by_the_ready_list_alone_receives_every_message() {
    const SUBS: usize = 2000;
    const PUBLISHERS: usize = 2;
    const PER_PUBLISHER: usize = 20_000;
    let broker = Broker::new();
    let signal = ReadySignal::new();
    let subs = pool_subscriptions(&broker, &signal, SUBS);
    let publishers = spawn_publishers(&broker, PUBLISHERS, PER_PUBLISHER, SUBS, 0x9e37_79b9);
    let mut seen = std::collections::HashSet::new();
    let mut visits = Visits::default();
    let mut batch = Vec::new();
    let started = Instant::now();
    while seen.len() < PUBLISHERS * PER_PUBLISHER {
        assert!(
            started.elapsed() < LOST_WAKEUP,
            "stuck at {} messages",
            seen.len()
        );
        for i in visits.next(&signal, Duration::from_millis(100)) {
            batch.clear();
            subs[i].drain_into(&mut batch, 2);
            for m in &batch {
                assert!(seen.insert(m.payload().clone()), "a message came twice");
            }
            if !subs[i].is_empty() {
                visits.again(i);
            }
        }
    }
    for p in publishers {
        p.join().unwrap();
    }
    let stats = broker.stats();
    assert_eq!(stats.totals.delivered, (PUBLISHERS * PER_PUBLISHER) as u64);
    assert_eq!(stats.totals.dropped, 0);
    assert!(stats.balances());
}

/// Two consumer threads share one signal (takers take in turn, each its own share of the list) while
/// two publishers spray messages over many subscriptions: every message arrives exactly once, none is
/// left behind, the books balance. A subscription left off the list with messages, or an entry handed
/// to both takers, would hang until `LOST_WAKEUP` or trip the duplicate check.
#[test]
fn two_consumers_sharing_a_signal_receive_every_message_exactly_once() {
    use std::collections::HashSet;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    const SUBS: usize = 1000;
    const PUBLISHERS: usize = 2;
    const PER_PUBLISHER: usize = 20_000;
    const TOTAL: usize = PUBLISHERS * PER_PUBLISHER;
    let broker = Broker::new();
    let signal = ReadySignal::new();
    let subs = Arc::new(pool_subscriptions(&broker, &signal, SUBS));
    let seen = Arc::new(Mutex::new(HashSet::new()));
    let received = Arc::new(AtomicUsize::new(0));
    let consumers: Vec<_> = (0..2)
        .map(|_| {
            let (signal, subs) = (signal.clone(), subs.clone());
            let (seen, received) = (seen.clone(), received.clone());
            thread::spawn(move || {
                let (mut visits, mut batch) = (Visits::default(), Vec::new());
                let started = Instant::now();
                while received.load(Ordering::SeqCst) < TOTAL {
                    assert!(started.elapsed() < LOST_WAKEUP, "stuck");
                    for i in visits.next(&signal, Duration::from_millis(20)) {
                        batch.clear();
                        subs[i].drain_into(&mut batch, 3);
                        let mut seen = seen.lock().unwrap();
                        for m in &batch {
                            assert!(seen.insert(m.payload().clone()), "a message came twice");
                        }
                        received.fetch_add(batch.len(), Ordering::SeqCst);
                        if !subs[i].is_empty() {
                            visits.again(i);
                        }
                    }
                }
            })
        })
        .collect();
    let publishers = spawn_publishers(&broker, PUBLISHERS, PER_PUBLISHER, SUBS, 0x2545_f491);
    for p in publishers {
        p.join().unwrap();
    }
    for c in consumers {
        c.join().unwrap();
    }
    assert_eq!(seen.lock().unwrap().len(), TOTAL);
    let stats = broker.stats();
    assert_eq!(stats.totals.delivered, TOTAL as u64);
    assert_eq!(stats.totals.dropped, 0);
    assert_eq!(stats.totals.depth, 0);
    assert!(stats.balances());
}

/// A long list (more entries than a taker clears in list order) is taken whole and every flag is
/// cleared: each subscription comes back with its next message.
#[test]
fn a_long_ready_list_is_taken_whole_and_each_subscription_comes_back_with_its_next_message() {
    let broker = Broker::new();
    let signal = ReadySignal::new();
    let subs = attached(&broker, &signal, 500);
    for round in 0..3 {
        // A scattered order, so the list is not already in address order.
        for i in (0..500).map(|i| (i * 211) % 500) {
            broker.publish(&format!("pool/{i}"), "x").unwrap();
        }
        let mut ready = Vec::new();
        assert_eq!(signal.try_ready(&mut ready), 500, "round {round}");
        ready.sort_unstable();
        let mut ids: Vec<_> = subs.iter().map(Subscription::id).collect();
        ids.sort_unstable();
        assert_eq!(ready, ids, "round {round}: each once");
        for sub in &subs {
            assert!(sub.try_recv().is_ok());
        }
        assert_eq!(signal.try_ready(&mut ready), 0);
    }
}

/// `n` subscriptions `pool/<i>` of capacity 4 under `block` (nothing is lost, so every message must
/// arrive), attached to `signal` with their index as the key.
fn pool_subscriptions(
    broker: &Broker,
    signal: &std::sync::Arc<ReadySignal>,
    n: usize,
) -> Vec<Subscription> {
    (0..n)
        .map(|i| {
            let options = SubscriptionOptions::new()
                .capacity(4)
                .policy(switchyard::OverflowPolicy::Block {
                    timeout: Duration::MAX,
                })
                .ready_signal(signal)
                .ready_key(i as u64);
            broker
                .subscribe_with(&format!("pool/{i}"), options)
                .unwrap()
        })
        .collect()
}

/// A pooled consumer's turns: the subscriptions the signal hands out, plus those it kept on its own
/// to-do list because they still had messages (the signal hands one out again only on a new message).
#[derive(Default)]
struct Visits {
    ready: Vec<u64>,
    todo: Vec<usize>,
}

impl Visits {
    /// The subscriptions to visit now, in index order, each once; waits up to `idle` only when the
    /// to-do list is empty.
    fn next(&mut self, signal: &ReadySignal, idle: Duration) -> Vec<usize> {
        self.ready.clear();
        if self.todo.is_empty() {
            signal.wait_ready(&mut self.ready, idle);
        } else {
            signal.try_ready(&mut self.ready);
        }
        self.todo.extend(self.ready.iter().map(|&key| key as usize));
        self.todo.sort_unstable();
        self.todo.dedup();
        std::mem::take(&mut self.todo)
    }

    /// Visit `i` again next time: it still has messages.
    fn again(&mut self, i: usize) {
        self.todo.push(i);
    }
}

/// `publishers` threads, each publishing `per_publisher` messages `"<p>:<n>"` to `pool/<i>` for
/// pseudo-random `i < subs` (xorshift from `seed + p`).
fn spawn_publishers(
    broker: &Broker,
    publishers: usize,
    per_publisher: usize,
    subs: usize,
    seed: u64,
) -> Vec<thread::JoinHandle<()>> {
    (0..publishers)
        .map(|p| {
            let broker = broker.clone();
            thread::spawn(move || {
                let mut seed = seed + p as u64;
                for n in 0..per_publisher {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    let target = (seed % subs as u64) as usize;
                    broker
                        .publish(&format!("pool/{target}"), format!("{p}:{n}"))
                        .unwrap();
                }
            })
        })
        .collect()
}

#[test]
fn a_signal_attached_after_subscribing_lists_queued_messages_and_later_ones() {
    let broker = Broker::new();
    let queued = broker.subscribe("a").unwrap();
    let empty = broker.subscribe("b").unwrap();
    let closed = broker.subscribe("c").unwrap();
    broker.publish("a", "before").unwrap();
    let closed_id = closed.id();
    broker.unsubscribe(closed_id).unwrap();

    let signal = ReadySignal::new();
    queued.attach_ready_signal(&signal, 1).unwrap();
    empty.attach_ready_signal(&signal, 2).unwrap();
    closed.attach_ready_signal(&signal, 3).unwrap();
    let mut ready = Vec::new();
    signal.try_ready(&mut ready);
    ready.sort_unstable();
    assert_eq!(
        ready,
        [1, 3],
        "the queued message and the close, not the empty one"
    );

    ready.clear();
    broker.publish("b", "after").unwrap();
    signal.wait_ready(&mut ready, Duration::from_secs(5));
    assert_eq!(ready, [2]);
    assert_eq!(&empty.try_recv().unwrap().payload()[..], b"after");
}

#[test]
fn a_subscription_takes_one_ready_signal_only() {
    let broker = Broker::new();
    let first = ReadySignal::new();
    let sub = broker
        .subscribe_with(
            "a",
            SubscriptionOptions::new().ready_signal(&first).ready_key(5),
        )
        .unwrap();
    let second = ReadySignal::new();
    let err = sub.attach_ready_signal(&second, 6).unwrap_err();
    assert!(
        err.to_string().contains("already has a ready signal"),
        "{err}"
    );
    // The first signal is still the one told.
    broker.publish("a", "m").unwrap();
    let mut ready = Vec::new();
    assert_eq!(second.try_ready(&mut ready), 0);
    first.try_ready(&mut ready);
    assert_eq!(ready, [5]);
}

#[test]
fn a_signal_attached_while_publishers_run_misses_no_message() {
    // Attach races the publishes: every message must be found through the list alone.
    for round in 0..50 {
        let broker = Broker::new();
        let sub = broker
            .subscribe_with("t", SubscriptionOptions::new().capacity(100_000))
            .unwrap();
        let publisher = {
            let broker = broker.clone();
            thread::spawn(move || {
                for i in 0..200u32 {
                    broker.publish("t", i.to_string()).unwrap();
                }
            })
        };
        let signal = ReadySignal::new();
        if round % 2 == 0 {
            thread::yield_now();
        }
        sub.attach_ready_signal(&signal, 0).unwrap();
        let mut received = 0;
        let mut ready = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        while received < 200 {
            assert!(
                Instant::now() < deadline,
                "round {round}: {received} of 200 received; the rest never listed"
            );
            ready.clear();
            if signal.wait_ready(&mut ready, Duration::from_millis(100)) == 0 {
                continue;
            }
            while sub.try_recv().is_ok() {
                received += 1;
            }
        }
        publisher.join().unwrap();
    }
}

#[test]
fn a_wake_before_waiting_makes_the_next_wait_return_at_once_and_only_that_one() {
    let signal = ReadySignal::new();
    signal.wake();
    let mut ready = Vec::new();
    let start = Instant::now();
    assert_eq!(signal.wait_ready(&mut ready, Duration::from_secs(60)), 0);
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "the wake was lost"
    );
    // Used up: the next wait waits for its timeout (or a message).
    let start = Instant::now();
    assert_eq!(signal.wait_ready(&mut ready, Duration::from_millis(50)), 0);
    assert!(start.elapsed() >= Duration::from_millis(50));
}

#[test]
fn an_async_wait_is_woken_by_a_publish_and_a_cancelled_wait_takes_nothing() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    let broker = Broker::new();
    let signal = ReadySignal::new();
    let subs = attached(&broker, &signal, 3);
    runtime.block_on(async {
        let mut ready = Vec::new();
        // Nothing yet: the timeout wins, and the dropped wait took nothing.
        tokio::select! {
            _ = signal.wait_ready_async(&mut ready) => panic!("nothing was published"),
            () = tokio::time::sleep(Duration::from_millis(20)) => {}
        }
        assert!(ready.is_empty());
        let publisher = {
            let broker = broker.clone();
            thread::spawn(move || {
                thread::sleep(Duration::from_millis(20));
                broker.publish("pool/1", "m").unwrap();
            })
        };
        let n = tokio::time::timeout(Duration::from_secs(10), signal.wait_ready_async(&mut ready))
            .await
            .expect("the publish did not wake the async wait");
        assert_eq!((n, ready.as_slice()), (1, [subs[1].id()].as_slice()));
        publisher.join().unwrap();
    });
}
