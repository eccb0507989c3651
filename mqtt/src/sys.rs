//! `$SYS/switchyard/...`: the broker's and the listener's stats, published (retained) every interval.
//!
//! Topics beginning with `$` are not matched by a leading wildcard, so a client subscribed to `#` does
//! not get these; subscribe to `$SYS/#` or to one topic. Each is retained, so a new subscriber gets the
//! latest value at once. These publishes are broker publishes like any other: they count in the
//! broker's `published` total.
//!
//! | topic | payload |
//! |---|---|
//! | `$SYS/switchyard/broker/published`, `.../delivered`, `.../dropped`, `.../unrouted`, `.../depth`, `.../subscriptions` | the broker total, a decimal number |
//! | `$SYS/switchyard/clients/connected` | open MQTT connections |
//! | `$SYS/switchyard/clients/sessions` | sessions (connected, and persistent ones whose client is away) |
//! | `$SYS/switchyard/clients/dropped` | messages dropped on the way to MQTT clients, all reasons |
//! | `$SYS/switchyard/mqtt` | the whole [`crate::MqttStats`] as JSON, with per-client drops by reason |

use std::sync::Arc;
use std::time::Duration;

use switchyard::PublishOptions;
use tokio::sync::watch;

use crate::shared::ServerShared;

/// Publishes the `$SYS` topics now and then every `interval`, until `stop` changes.
pub(crate) async fn publish_every(
    interval: Duration,
    shared: Arc<ServerShared>,
    mut stop: watch::Receiver<bool>,
) {
    let mut ticks = tokio::time::interval(interval);
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = ticks.tick() => publish_now(&shared),
        }
    }
}

/// The topics and payloads of one round.
pub(crate) fn sys_messages(shared: &ServerShared) -> Vec<(String, String)> {
    let broker = shared.broker.stats();
    let mqtt = shared.stats();
    let t = broker.totals;
    let dropped_to_clients: u64 = mqtt.clients.iter().map(|c| c.dropped).sum();
    let mut messages: Vec<(String, String)> = [
        ("broker/published", t.published),
        ("broker/delivered", t.delivered),
        ("broker/dropped", t.dropped),
        ("broker/unrouted", t.unrouted),
        ("broker/depth", t.depth),
        ("broker/subscriptions", t.subscriptions),
        ("clients/connected", mqtt.open),
        ("clients/sessions", mqtt.clients.len() as u64),
        ("clients/dropped", dropped_to_clients),
    ]
    .into_iter()
    .map(|(name, value)| (format!("$SYS/switchyard/{name}"), value.to_string()))
    .collect();
    if let Ok(json) = serde_json::to_string(&mqtt) {
        messages.push(("$SYS/switchyard/mqtt".to_string(), json));
    }
    messages
}

fn publish_now(shared: &ServerShared) {
    for (topic, payload) in sys_messages(shared) {
        // A full retained store refuses these like any retained publish; the next round tries again.
        let _ = shared
            .broker
            .publish_with(&topic, payload, PublishOptions::new().retain(true));
    }
}
