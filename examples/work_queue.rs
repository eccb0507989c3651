//! The washer and the dryers: one producer, three competing consumers on ONE subscription, so every
//! dish is dried exactly once, by whichever dryer is free.
//!
//! Run with `cargo run --example work_queue -p switchyard`.

use std::collections::BTreeMap;
use std::thread;
use std::time::Duration;

use switchyard::{Broker, OverflowPolicy, SubscriptionOptions};

const DISHES: u32 = 30;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let broker = Broker::new();
    // A small rack: the washer waits (back-pressure) when three dishes are waiting to be dried.
    let rack = broker.subscribe_with(
        "kitchen/dishes",
        SubscriptionOptions::new()
            .name("drying rack")
            .capacity(3)
            .policy(OverflowPolicy::Block {
                timeout: Duration::from_secs(10),
            }),
    )?;

    let dryers: Vec<_> = (1..=3)
        .map(|n| {
            let rack = rack.clone(); // a clone is another receiver of the same queue
            thread::spawn(move || {
                let mut dried = Vec::new();
                while let Ok(dish) = rack.recv() {
                    thread::sleep(Duration::from_millis(5 * n)); // dryer 3 is the slowest
                    dried.push(String::from_utf8_lossy(dish.payload()).into_owned());
                }
                (n, dried)
            })
        })
        .collect();

    let mut washer = broker.publisher("kitchen/dishes")?;
    for i in 1..=DISHES {
        let outcome = washer.publish(format!("dish {i}"));
        assert_eq!(
            outcome.queued, 1,
            "Block never drops within its timeout here"
        );
    }
    // Wait for the rack to empty, then close it: the dryers' `recv` returns `Closed`.
    while !rack.is_empty() {
        thread::sleep(Duration::from_millis(1));
    }
    thread::sleep(Duration::from_millis(20)); // let the last dishes finish drying
    let id = rack.id();
    drop(rack);
    broker.unsubscribe(id)?;

    let mut all: BTreeMap<String, u64> = BTreeMap::new();
    for dryer in dryers {
        let (n, dried) = dryer.join().expect("dryer thread");
        println!("dryer {n} dried {:>2} dishes", dried.len());
        for d in dried {
            *all.entry(d).or_default() += 1;
        }
    }
    assert_eq!(all.len() as u32, DISHES, "every dish dried");
    assert!(all.values().all(|&n| n == 1), "no dish dried twice");
    println!("{} dishes, each dried exactly once", all.len());
    Ok(())
}
