//! The washer and the dryers: one producer, three competing consumers on ONE acknowledged subscription,
//! so every dish is dried exactly once, by whichever dryer is free, even though one dryer is clumsy
//! and another breaks down.
//!
//! - The rack is an acknowledged subscription: a dish a dryer takes stays "in flight" until the dryer
//!   acks it (dried and put away).
//! - Dryer 2 drops every 4th dish it picks up: the delivery is dropped unsettled, and the dish goes
//!   back to the rack at once for another dryer.
//! - Dryer 3 breaks down (its thread panics) halfway through its 5th dish: the unwinding drops the
//!   delivery, and that dish goes back too. Nobody waits for a deadline.
//!
//! At the end every dish must have been acked exactly once, the books must balance with nothing left
//! in flight, and every dish that went back must have been delivered again; the example exits
//! non-zero otherwise (`cargo test` runs it as a test too).
//!
//! Run with `cargo run --release -p switchyard --example work_queue`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use switchyard::{AckOptions, AckSubscription, Broker, OverflowPolicy, SubscriptionOptions};

const DISHES: u32 = 40;
/// The clumsy dryer drops every this many dishes it picks up.
const DROPS_EVERY: u32 = 4;
/// The dryer that breaks down does so on this dish.
const BREAKS_ON: u32 = 3;

/// What the dryers did: who dried which dish (as each ack was accepted), and how many dishes went
/// back to the rack unsettled.
#[derive(Default)]
struct Kitchen {
    dried: Mutex<Vec<(u32, String)>>,
    went_back: AtomicU64,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let broker = Broker::new();
    // A small rack: the washer waits (back-pressure) when three dishes are waiting to be dried.
    let rack = broker.subscribe_acked_with(
        "kitchen/dishes",
        SubscriptionOptions::new()
            .name("drying rack")
            .capacity(3)
            .policy(OverflowPolicy::Block {
                timeout: Duration::from_secs(10),
            })
            .ack(AckOptions::new().ack_wait(Duration::from_secs(30))),
    )?;
    let kitchen = Arc::new(Kitchen::default());
    let dryers: Vec<_> = (1..=3)
        .map(|n| {
            // A clone is another receiver of the same rack.
            let (rack, kitchen) = (rack.clone(), kitchen.clone());
            thread::Builder::new()
                .name(format!("dryer {n}"))
                .spawn(move || dry(n, &rack, &kitchen))
        })
        .collect::<Result<_, _>>()?;

    let mut washer = broker.publisher("kitchen/dishes")?;
    for i in 1..=DISHES {
        let outcome = washer.publish(format!("dish {i}"));
        assert_eq!(
            outcome.queued, 1,
            "Block never drops within its timeout here"
        );
    }
    // Wait until every dish is acked, then close the rack: the dryers' `recv` returns `Closed`.
    let deadline = Instant::now() + Duration::from_secs(30);
    while rack.stats().delivered < u64::from(DISHES) {
        assert!(
            Instant::now() < deadline,
            "dishes still not dried: {:?}",
            rack.stats()
        );
        thread::sleep(Duration::from_millis(1));
    }
    let stats = rack.stats();
    rack.unsubscribe();

    for (n, dryer) in (1..=3).zip(dryers) {
        match dryer.join() {
            Ok(dried) => println!("dryer {n} dried {dried:>2} dishes"),
            Err(_) => println!("dryer {n} broke down mid-dish; its dish went back to the rack"),
        }
    }
    let mut dried: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    for (dryer, dish) in kitchen.dried.lock().unwrap().drain(..) {
        dried.entry(dish).or_default().push(dryer);
    }
    assert_eq!(dried.len() as u32, DISHES, "every dish dried");
    assert!(
        dried.values().all(|by| by.len() == 1),
        "no dish dried twice: {dried:?}"
    );
    let ack = stats.ack.expect("an acknowledged subscription");
    assert_eq!((stats.delivered, stats.in_flight), (u64::from(DISHES), 0));
    let went_back = kitchen.went_back.load(Ordering::Relaxed);
    assert!(went_back > 0, "the clumsy dryer dropped some dishes");
    assert_eq!(
        ack.handed_back, went_back,
        "each dropped or broken dish went back"
    );
    assert_eq!(
        ack.redelivered, ack.handed_back,
        "each dish that went back came out again"
    );
    assert_eq!(ack.refused.total(), 0, "no ack refused");
    assert!(
        stats.balances(),
        "matched = delivered + dropped + depth + in_flight"
    );
    println!(
        "{} dishes, each dried exactly once and acked; {} went back to the rack (dropped or broken) \
         and were dried by another dryer",
        dried.len(),
        ack.handed_back
    );
    Ok(())
}

/// One dryer: takes dishes until the rack is closed, acks each one it dries, and returns how many.
/// Dryer 2 drops every [`DROPS_EVERY`]th dish; dryer 3 breaks down on its [`BREAKS_ON`]th.
fn dry(n: u32, rack: &AckSubscription, kitchen: &Kitchen) -> u32 {
    let mut picked_up = 0;
    let mut dried = 0;
    while let Ok(dish) = rack.recv() {
        picked_up += 1;
        let name = String::from_utf8_lossy(dish.payload()).into_owned();
        if n == 2 && picked_up % DROPS_EVERY == 0 {
            kitchen.went_back.fetch_add(1, Ordering::Relaxed);
            drop(dish); // unsettled: back on the rack at once
            continue;
        }
        thread::sleep(Duration::from_millis(2 * u64::from(n))); // dryer 3 is the slowest
        if n == 3 && picked_up == BREAKS_ON {
            kitchen.went_back.fetch_add(1, Ordering::Relaxed);
            panic!("dryer 3 broke down drying {name}"); // unwinding drops the dish: it goes back
        }
        dish.ack().expect("an ack within the deadline is accepted");
        kitchen.dried.lock().unwrap().push((n, name));
        dried += 1;
    }
    dried
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_dish_is_dried_exactly_once_although_dishes_are_dropped_and_a_dryer_breaks() {
        super::main().expect("the kitchen works");
    }
}
