//! Fixed data for tests: snapshots, samples and a populated [`App`], with no clock and no threads, so
//! rendered screens are the same on every run.

use std::collections::BTreeMap;
use std::path::PathBuf;

use switchyard::{AckStats, DroppedByReason, StatsSnapshot, SubscriptionStats, TopicLimits};

use super::app::{App, Level};
use super::link::{ConsumerState, DeadLetterRow, RecentMessage, Sample};
use super::theme::Theme;

/// One subscription's counters, balanced (`matched = delivered + dropped + depth`).
pub fn sub(
    id: u64,
    name: &str,
    filter: &str,
    capacity: u64,
    delivered: u64,
    queue_full: u64,
    depth: u64,
) -> SubscriptionStats {
    let dropped_by_reason = DroppedByReason {
        queue_full,
        ..DroppedByReason::default()
    };
    SubscriptionStats {
        id,
        name: name.to_string(),
        filter: filter.to_string(),
        policy: if id == 1 {
            "drop-oldest"
        } else {
            "drop-newest"
        }
        .to_string(),
        capacity,
        matched: delivered + queue_full + depth,
        delivered,
        dropped: queue_full,
        dropped_by_reason,
        depth,
        high_water: depth.max(capacity.min(3)),
        receivers: if id == 4 { 2 } else { 1 },
        ..SubscriptionStats::default()
    }
}

/// A snapshot at uptime `t` seconds of the demo-like set of subscriptions, whose counters grow at fixed
/// rates (so every rate the dashboard computes is a round number).
pub fn snapshot_at(t: f64) -> StatsSnapshot {
    let n = |per_s: f64| (per_s * t).round() as u64;
    let subscriptions = vec![
        sub(1, "prices", "stocks/+/price", 1024, n(120.0), 0, 0),
        sub(2, "all-alerts", "alerts/#", 256, n(4.0), 0, 0),
        sub(3, "security", "alerts/security/+", 64, n(2.0), 0, 0),
        sub(4, "log-workers", "logs/+", 512, n(60.0), 0, 3),
        sub(5, "slow-audit", "stocks/#", 16, n(48.0), n(72.0), 16),
    ];
    snapshot_with(t, n(184.0), subscriptions)
}

/// A snapshot at `t` with these subscriptions and `published` accepted publishes.
pub fn snapshot_with(
    t: f64,
    published: u64,
    subscriptions: Vec<SubscriptionStats>,
) -> StatsSnapshot {
    let totals = crate::snapshot_totals::summed(published, 0, &subscriptions);
    StatsSnapshot {
        schema: switchyard::SCHEMA.to_string(),
        taken_at: "2026-11-22T18:00:00.000Z".to_string(),
        uptime_s: t,
        totals,
        rates: Default::default(),
        subscriptions,
        latency_us: None,
        load: None,
        dead_letters: Some(switchyard::DeadLetterStats {
            capacity: 4096,
            offered: 1,
            delivered: 1,
            overflow: 0,
            depth: 0,
        }),
        ..Default::default()
    }
}

/// A sample carrying `snapshot`, every consumer running but those in `paused`.
pub fn sample(snapshot: StatsSnapshot, paused: &[u64]) -> Sample {
    let consumers: BTreeMap<u64, ConsumerState> = snapshot
        .subscriptions
        .iter()
        .map(|s| {
            let state = if paused.contains(&s.id) {
                ConsumerState::Paused
            } else {
                ConsumerState::Running
            };
            (s.id, state)
        })
        .collect();
    let first = snapshot.subscriptions.first().map(|s| s.id);
    Sample {
        snapshot,
        consumers,
        recent: vec![
            RecentMessage {
                topic: "stocks/AAPL/price".into(),
                preview: "189.52".into(),
                missed: 0,
            },
            RecentMessage {
                topic: "stocks/MSFT/price".into(),
                preview: "411.07".into(),
                missed: 3,
            },
        ],
        recent_for: first,
        unreachable: None,
        commands_unavailable: None,
        mqtt: None,
        bridges: Vec::new(),
        demo: true,
        events: Vec::new(),
        dead_letters: vec![DeadLetterRow {
            subscription: "audit".into(),
            reason: "queue_full".into(),
            topic: "alerts/disk".into(),
            preview: "disk 91% full".into(),
        }],
    }
}

/// An app that has seen 80 s of demo-like traffic at 4 Hz, with a few log lines.
pub fn app(color: bool) -> App {
    let mut app = App::new(
        TopicLimits::default(),
        PathBuf::from("."),
        Theme::new(color),
    );
    app.log(
        Level::Info,
        "dashboard started with demo traffic: space pauses a consumer, ? lists keys",
    );
    for i in 1..=320 {
        let t = f64::from(i) * 0.25;
        app.apply(sample(snapshot_at(t), &[5]));
    }
    app.log(
        Level::Error,
        "export failed: cannot write /readonly/x.json: directory /readonly is not writable",
    );
    app
}

/// An app that has seen 10 s (at 4 Hz) of one subscription in each of the radar's states: `reports`
/// stalled (paused, 12 waiting, nothing delivered), `audit` full and dropping, `billing` filling at
/// 8/s, `prices` and `alerts` keeping up, `archive` idle. `billing` and `archive` share `orders/#`.
pub fn radar_app() -> App {
    let mut app = App::new(
        TopicLimits::default(),
        PathBuf::from("."),
        Theme::new(false),
    );
    for i in 1..=40 {
        let t = f64::from(i) * 0.25;
        let n = |per_s: f64| (per_s * t).round() as u64;
        let subscriptions = vec![
            sub(1, "prices", "stocks/+/price", 1024, n(120.0), 0, 0),
            sub(2, "audit", "stocks/#", 16, n(10.0), n(30.0), 16),
            sub(3, "billing", "orders/#", 256, n(20.0), 0, n(8.0)),
            sub(4, "reports", "reports/#", 64, 50, 0, 12),
            sub(5, "archive", "orders/#", 64, 0, 0, 0),
            sub(6, "alerts", "alerts/#", 256, n(4.0), 0, 0),
        ];
        app.apply(sample(snapshot_with(t, n(150.0), subscriptions), &[4]));
    }
    app
}

/// `s` made an acknowledged subscription with `in_flight` of a `window` out (added to its `matched`, so
/// the books still balance) and the acknowledged path's counters in `ack` (its `acked` is `delivered`).
pub fn acked(
    mut s: SubscriptionStats,
    window: u64,
    in_flight: u64,
    ack: AckStats,
) -> SubscriptionStats {
    s.matched += in_flight;
    s.in_flight = in_flight;
    s.ack = Some(AckStats {
        max_in_flight: window,
        in_flight,
        acked: s.delivered,
        ack_wait_ms: 30_000,
        ..ack
    });
    s
}

/// An app that has seen 10 s (at 4 Hz) of two acknowledged subscriptions beside plain ones: `dishes`
/// holds its whole window of 16 (its messages time out and come back, 3/s redelivered) while two
/// receivers wait on the window and 60 dishes queue up; `jobs` acks 80/s with 12 of 1,000 in flight.
pub fn acked_app() -> App {
    let mut app = App::new(
        TopicLimits::default(),
        PathBuf::from("."),
        Theme::new(false),
    );
    for i in 1..=40 {
        let t = f64::from(i) * 0.25;
        let n = |per_s: f64| (per_s * t).round() as u64;
        let dishes = AckStats {
            expired: n(3.0),
            redelivered: n(3.0),
            window_full: n(40.0),
            stalled_receivers: 2,
            ..AckStats::default()
        };
        let jobs = AckStats {
            nacked: n(1.0),
            redelivered: n(1.0),
            handed_back: 3,
            refused: switchyard::AckRefusals {
                stale: 2,
                ..Default::default()
            },
            ..AckStats::default()
        };
        let subscriptions = vec![
            sub(1, "prices", "stocks/+/price", 1024, n(120.0), 0, 0),
            acked(
                sub(2, "dishes", "kitchen/dishes", 64, n(2.0), 0, n(6.0)),
                16,
                16,
                dishes,
            ),
            acked(sub(3, "jobs", "jobs/#", 256, n(80.0), 0, 0), 1000, 12, jobs),
            sub(4, "audit", "stocks/#", 16, n(10.0), n(30.0), 16),
        ];
        app.apply(sample(snapshot_with(t, n(210.0), subscriptions), &[]));
    }
    app
}
