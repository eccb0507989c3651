//! An on-call pager: alerts of every severity arrive on one subscription, and the pager always shows the
//! most urgent one first, however many routine notices are queued ahead of it.
//!
//! Run with `cargo run --example priorities -p switchyard`.

use switchyard::{Broker, Priority, PublishOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let broker = Broker::new();
    let pager = broker.subscribe("alerts/#")?;

    let alerts = [
        (
            Priority::Low,
            "alerts/disk",
            "backup took 3 minutes longer than usual",
        ),
        (Priority::Normal, "alerts/deploy", "release 1.42 rolled out"),
        (
            Priority::Critical,
            "alerts/db",
            "primary database unreachable",
        ),
        (Priority::Normal, "alerts/deploy", "release 1.43 rolled out"),
        (
            Priority::High,
            "alerts/latency",
            "p99 above 800 ms for 5 minutes",
        ),
    ];
    for (priority, topic, text) in alerts {
        broker.publish_with(topic, text, PublishOptions::new().priority(priority))?;
    }
    // Plain `publish` is `Normal` and costs what it always did.
    broker.publish("alerts/deploy", "release 1.44 rolled out")?;

    println!("the pager shows, most urgent first:");
    while let Ok(alert) = pager.try_recv() {
        println!(
            "  [{:>8}] {:<15} {}",
            alert.priority(),
            alert.topic(),
            String::from_utf8_lossy(alert.payload())
        );
    }
    let stats = broker.stats();
    assert!(stats.balances());
    Ok(())
}
