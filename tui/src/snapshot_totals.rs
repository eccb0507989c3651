//! Broker-wide totals summed from subscriptions' stats, for the snapshots this crate builds itself:
//! the naive baseline engine's, and the dashboard's test fixtures.

use std::time::{Instant, SystemTime};

use switchyard::{Rates, SCHEMA, StatsSnapshot, SubscriptionStats, Totals};

/// The totals of a snapshot with these `subscriptions`: `published` and `unrouted` as given, the
/// subscriptions counted, and their `matched`, `delivered`, `dropped` and `depth` summed.
pub fn summed(published: u64, unrouted: u64, subscriptions: &[SubscriptionStats]) -> Totals {
    let mut totals = Totals {
        published,
        unrouted,
        subscriptions: subscriptions.len() as u64,
        ..Totals::default()
    };
    for s in subscriptions {
        totals.add(s);
    }
    totals
}

/// The snapshot of a baseline engine started at `started`: these `subscriptions`, their totals, and
/// rates averaged since the start (the baselines keep no rate samples of their own).
pub fn snapshot(
    published: u64,
    unrouted: u64,
    subscriptions: Vec<SubscriptionStats>,
    started: Instant,
) -> StatsSnapshot {
    let totals = summed(published, unrouted, &subscriptions);
    let uptime_s = started.elapsed().as_secs_f64();
    let per_s = |n: u64| {
        if uptime_s > 0.0 {
            n as f64 / uptime_s
        } else {
            0.0
        }
    };
    StatsSnapshot {
        schema: SCHEMA.to_string(),
        taken_at: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
        uptime_s,
        totals,
        rates: Rates {
            published_per_s: per_s(totals.published),
            delivered_per_s: per_s(totals.delivered),
            dropped_per_s: per_s(totals.dropped),
        },
        subscriptions,
        ..Default::default()
    }
}
