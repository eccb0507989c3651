//! A slow consumer under each overflow policy: the same burst into a queue of four, drops by reason.
//!
//! Run with `cargo run --example slow_consumer -p switchyard`.

use std::thread;
use std::time::Duration;

use switchyard::{Broker, OverflowPolicy, SubscriptionOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let policies = [
        OverflowPolicy::DropNewest,
        OverflowPolicy::DropOldest,
        OverflowPolicy::Block {
            timeout: Duration::from_millis(3),
        },
    ];
    for policy in policies {
        let broker = Broker::new();
        let sub = broker.subscribe_with(
            "ticks",
            SubscriptionOptions::new().capacity(4).policy(policy),
        )?;
        let consumer = {
            let sub = sub.clone();
            thread::spawn(move || {
                let mut got = Vec::new();
                while let Ok(d) = sub.recv_timeout(Duration::from_millis(50)) {
                    if let Some(missed) = d.missed() {
                        got.push(format!("[missed {}]", missed.total()));
                    }
                    got.push(String::from_utf8_lossy(d.payload()).into_owned());
                    thread::sleep(Duration::from_millis(2)); // slow: 2 ms per message
                }
                got
            })
        };
        let mut publisher = broker.publisher("ticks")?;
        for i in 0..20 {
            publisher.publish(i.to_string());
        }
        let got = consumer.join().expect("consumer thread");
        let s = sub.stats();
        println!("{policy}:");
        println!("  received {}", got.join(" "));
        println!(
            "  matched {} delivered {} dropped {} (queue_full {}, evicted {}, timeout {})",
            s.matched,
            s.delivered,
            s.dropped,
            s.dropped_by_reason.queue_full,
            s.dropped_by_reason.evicted,
            s.dropped_by_reason.timeout
        );
        assert!(s.balances());
    }
    Ok(())
}
