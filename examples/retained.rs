//! A thermostat panel that starts late: sensors publish their readings as retained messages, so a
//! panel that subscribes minutes later shows the last reading of every room at once, then live updates.
//!
//! Run with `cargo run --example retained -p switchyard`.

use switchyard::{Broker, PublishOptions, SubscriptionOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let broker = Broker::new();
    let retain = PublishOptions::new().retain(true);

    // Sensors report before anyone listens: without `retain` these would be unrouted and gone.
    broker.publish_with("home/kitchen/temp", "21.5", retain)?;
    broker.publish_with("home/hall/temp", "18.0", retain)?;
    broker.publish_with("home/kitchen/temp", "21.8", retain)?; // replaces 21.5
    broker.publish_with("home/attic/temp", "9.0", retain)?;
    broker.publish_with("home/attic/temp", "", retain)?; // the attic sensor was removed: clears it

    let panel = broker.subscribe_with(
        "home/+/temp",
        SubscriptionOptions::new().receive_retained(true),
    )?;
    broker.publish_with("home/hall/temp", "18.4", retain)?; // live, after the replay

    println!("the panel shows:");
    while let Ok(reading) = panel.try_recv() {
        println!(
            "  {:<20} {} °C",
            reading.topic(),
            String::from_utf8_lossy(reading.payload())
        );
    }
    let stats = broker.stats();
    println!(
        "retained store: {} topics, {} bytes, {} replayed",
        stats.retained.messages, stats.retained.bytes, stats.retained.replayed
    );
    assert!(stats.balances());
    Ok(())
}
