//! Publish and subscribe: the smallest useful program.
//!
//! Run with `cargo run --example basic -p switchyard`.

use switchyard::Broker;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let broker = Broker::new();
    let temps = broker.subscribe("sensors/+/temperature")?;

    broker.publish("sensors/kitchen/temperature", "21.5")?;
    broker.publish("sensors/garage/temperature", "14.0")?;
    broker.publish("sensors/kitchen/humidity", "40")?; // not matched: a different last level

    while let Ok(d) = temps.try_recv() {
        println!("{} = {}", d.topic(), String::from_utf8_lossy(d.payload()));
    }

    let stats = broker.stats();
    println!(
        "published {}, delivered {}, unrouted {}",
        stats.totals.published, stats.totals.delivered, stats.totals.unrouted
    );
    assert!(stats.balances());
    Ok(())
}
