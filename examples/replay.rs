//! A late joiner catching up: a publisher streams orders into a broker that logs them; while it
//! runs, an audit subscription starts from the first order still in the log, reads the log, and
//! switches to live delivery without losing or repeating one. A second subscription asks for an
//! order the log has already evicted and is told the gap with its first message.
//!
//! Run with `cargo run --release -p switchyard --example replay`.

use std::thread;
use std::time::Duration;

use switchyard::{
    Broker, BrokerOptions, Filter, ReplayFrom, ReplayLogOptions, SubscriptionOptions,
};

const ORDERS: u64 = 200_000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The last 50,000 orders, at most 16 MiB of them.
    let log = ReplayLogOptions::new(Filter::new("orders/#")?)
        .max_messages(50_000)
        .max_bytes(16 << 20);
    let broker = Broker::with_options(BrokerOptions::new().replay_log(log));

    let publisher = {
        let broker = broker.clone();
        thread::spawn(move || {
            let mut orders = broker.publisher("orders/eu").expect("a valid topic");
            for n in 1..=ORDERS {
                orders.publish(format!("order {n}"));
            }
        })
    };
    // Join while the publisher is busy.
    while broker.replay_log_stats().map_or(0, |s| s.next_seq) < ORDERS / 4 {
        thread::yield_now();
    }
    let log = broker.replay_log_stats().ok_or("the broker keeps a log")?;
    println!(
        "joining at order {} of {ORDERS}: the log holds {} to {}",
        log.next_seq,
        log.first_seq,
        log.next_seq - 1
    );
    let options = SubscriptionOptions::new()
        .capacity(ORDERS as usize)
        .replay(ReplayFrom::Seq(log.first_seq));
    let audit = broker.subscribe_with("orders/#", options)?;
    let too_late = broker.subscribe_with(
        "orders/#",
        SubscriptionOptions::new()
            .capacity(ORDERS as usize)
            .replay(ReplayFrom::Seq(1)),
    )?;

    // Every order from the start to the last, in order, once each.
    let mut expected = log.first_seq;
    while expected <= ORDERS {
        let delivery = audit.recv_timeout(Duration::from_secs(10))?;
        let seq = delivery.message().seq().ok_or("a logged order")?;
        assert_eq!(
            seq, expected,
            "one publisher's orders arrive in order, none lost"
        );
        expected += 1;
    }
    publisher.join().map_err(|_| "the publisher panicked")?;
    let replay = audit.stats().replay.ok_or("a replaying subscription")?;
    println!(
        "audit: orders {}..={ORDERS} in order, {} from the log, {} live (the switch at order {})",
        log.first_seq,
        replay.replayed,
        ORDERS + 1 - log.first_seq - replay.replayed,
        replay.until_seq
    );

    let first = too_late.recv_timeout(Duration::from_secs(10))?;
    let missed = first.missed().map_or(0, |m| m.evicted);
    println!(
        "too late: asked for order 1, got order {} first, told it missed {missed}",
        first.message().seq().unwrap_or_default()
    );
    assert!(broker.stats().balances());
    Ok(())
}
