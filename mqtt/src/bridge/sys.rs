//! `$SYS/switchyard/bridges/HOST:PORT/...`: a bridge's state, published (retained) into the local
//! broker at each change of state and every interval, and cleared when the bridge stops.
//!
//! | topic under `$SYS/switchyard/bridges/HOST:PORT/` | payload |
//! |---|---|
//! | `connected` | `1` or `0` |
//! | `last_error` | the last connection error, `none` if none |
//! | `connects`, `connection_errors`, `out_forwarded`, `out_dropped`, `in_received`, `in_published`, `in_refused` | decimal counts |
//! | `stats` | the whole [`crate::BridgeStats`] as JSON |

use std::sync::Arc;
use std::time::Duration;

use switchyard::{Broker, PublishOptions};

use super::{BridgeShared, BridgeStats};
use crate::lock::lock;

/// The topic prefix of the bridge to `remote` (`HOST:PORT`).
fn prefix(remote: &str) -> String {
    format!("$SYS/switchyard/bridges/{remote}")
}

/// The topics and payloads of one round.
pub(super) fn messages(stats: &BridgeStats) -> Vec<(String, String)> {
    let prefix = prefix(&stats.remote);
    let mut messages: Vec<(String, String)> = [
        ("connected", u64::from(stats.connected)),
        ("connects", stats.connects),
        ("connection_errors", stats.connection_errors),
        ("out_forwarded", stats.out_forwarded),
        ("out_dropped", stats.out_dropped_by_reason.total()),
        ("in_received", stats.in_received),
        ("in_published", stats.in_published),
        ("in_refused", stats.in_refused),
    ]
    .into_iter()
    .map(|(name, value)| (format!("{prefix}/{name}"), value.to_string()))
    .collect();
    messages.push((
        format!("{prefix}/last_error"),
        // Not empty: an empty retained payload would clear the topic.
        stats.last_error.clone().unwrap_or_else(|| "none".into()),
    ));
    if let Ok(json) = serde_json::to_string(stats) {
        messages.push((format!("{prefix}/stats"), json));
    }
    messages
}

/// Publishes the bridge's topics now, at each change of state, and every `interval`. Runs until
/// aborted.
pub(super) async fn publish_every(interval: Duration, shared: Arc<BridgeShared>) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut changed = std::pin::pin!(shared.state.changed.notified());
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = changed.as_mut() => {}
        }
        // Listen for the next change before this round reads the state: a change that lands while
        // the round runs then starts another round at once. Listening only after the round lost
        // such a change (`notify_waiters` wakes only those listening), and the round had published
        // the state from before it, which then stood until the next tick.
        changed.set(shared.state.changed.notified());
        let stopped = lock(&shared.sys_stopped);
        if *stopped {
            return;
        }
        publish(&shared.broker, messages(&shared.stats()));
    }
}

/// Clears the bridge's topics (an empty retained publish clears a retained message) and stops the
/// rounds: a round running on another thread finishes before, and none starts after.
pub(super) fn clear(shared: &BridgeShared) {
    let mut stopped = lock(&shared.sys_stopped);
    *stopped = true;
    let cleared = messages(&shared.stats())
        .into_iter()
        .map(|(topic, _)| (topic, String::new()));
    publish(&shared.broker, cleared.collect());
}

fn publish(broker: &Broker, messages: Vec<(String, String)>) {
    for (topic, payload) in messages {
        // A full retained store refuses these like any retained publish; the next round tries again.
        let _ = broker.publish_with(&topic, payload, PublishOptions::new().retain(true));
    }
}
