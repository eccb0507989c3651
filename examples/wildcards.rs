//! The demo of a classic Python thread-pool broker, on Switchyard: `+`/`*` match one level, `#` any
//! number, and unsubscribing `#` stops its deliveries.
//!
//! Run with `cargo run --example wildcards -p switchyard`.

use switchyard::{Broker, Subscription, SubscriptionOptions};

fn drain(label: &str, sub: &Subscription) {
    while let Ok(d) = sub.try_recv() {
        println!(
            "  {label:<16} got {:<28} {}",
            d.topic(),
            String::from_utf8_lossy(d.payload())
        );
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let broker = Broker::new();
    let named = |name: &str| SubscriptionOptions::new().name(name);
    let prices = broker.subscribe_with("stocks/+/price", named("stock prices"))?;
    let alerts = broker.subscribe_with("alerts/#", named("all alerts"))?;
    let everything = broker.subscribe_with("#", named("everything"))?;

    let messages = [
        ("stocks/AAPL/price", "189.50"),
        ("stocks/GOOG/price", "141.20"),
        ("alerts/system/health", "disk 91% full"),
        ("alerts/security/intrusion", "door 3 forced"),
        ("logs/application", "started in 42 ms"),
    ];
    for (topic, payload) in messages {
        let outcome = broker.publish(topic, payload)?;
        println!("publish {topic:<28} -> {} subscription(s)", outcome.matched);
    }
    drain("stock prices", &prices);
    drain("all alerts", &alerts);
    drain("everything", &everything);

    println!("unsubscribe `#`");
    everything.unsubscribe();
    let outcome = broker.publish("test/topic", "anyone?")?;
    println!(
        "publish test/topic -> {} subscription(s) (unrouted)",
        outcome.matched
    );

    let stats = broker.stats();
    println!("\nfinal stats:\n{}", serde_json_like(&stats));
    assert!(stats.balances());
    Ok(())
}

/// A compact, dependency-free rendering of the stats for the example's output.
fn serde_json_like(stats: &switchyard::StatsSnapshot) -> String {
    let t = &stats.totals;
    let mut out = format!(
        "  totals: published {} unrouted {} matched {} delivered {} dropped {} queued {}\n",
        t.published, t.unrouted, t.matched, t.delivered, t.dropped, t.depth
    );
    for s in &stats.subscriptions {
        out += &format!(
            "  {:<14} {:<16} matched {} delivered {} dropped {}\n",
            s.name, s.filter, s.matched, s.delivered, s.dropped
        );
    }
    out
}
