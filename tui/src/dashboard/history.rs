//! Rates and their recent history, computed from the monotonic counters of successive snapshots.
//!
//! The broker's own `rates` cover "the time since the previous `stats()` call", which depends on who
//! else asked and makes a noisy 4 Hz line. The dashboard instead keeps its samples of the monotonic
//! totals and computes every rate over a sliding window of [`RATE_WINDOW_S`]: the chart's points, the
//! header's figures and the table's per-subscription rates all come from here, so the headline number is
//! always exactly the chart's last point.
//!
//! Each subscription also keeps its readings of the last [`STALL_AFTER_S`], from which the
//! slow-consumer [`Radar`] is assessed on every sample (see [`crate::radar`] for its rule).

use std::collections::{HashMap, VecDeque};

use switchyard::{StatsSnapshot, SubscriptionId};

use crate::radar::{Radar, Reading, STALL_AFTER_S};

/// The window each rate is averaged over, in seconds.
pub const RATE_WINDOW_S: f64 = 1.0;
/// How much history the throughput chart shows, in seconds.
pub const CHART_SPAN_S: f64 = 60.0;
/// A subscription must go this long without a drop before new drops are logged as "started dropping"
/// again, so one that drops now and then does not flood the log.
const QUIET_BEFORE_NEW_DROPS_S: f64 = 10.0;
/// Per-subscription rate points kept for the detail pane's sparkline (one per sample: 60 s at 4 Hz).
const SPARK_POINTS: usize = 240;

/// Broker-wide rates at one instant.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RatePoint {
    /// Broker uptime when sampled, in seconds.
    pub t: f64,
    /// Publishes per second.
    pub published: f64,
    /// Deliveries per second.
    pub delivered: f64,
    /// Drops per second.
    pub dropped: f64,
}

/// A sample's time (broker uptime, seconds) with what was read then.
type Timed<T> = (f64, T);

/// The broker-wide message totals a rate is computed from, read from one snapshot.
#[derive(Debug, Clone, Copy)]
struct BrokerTotals {
    published: u64,
    delivered: u64,
    dropped: u64,
}

/// What the history knows about one subscription.
#[derive(Debug, Clone, Default)]
pub struct SubscriptionHistory {
    /// Readings of the last [`STALL_AFTER_S`] (and one older), oldest first.
    window: VecDeque<Timed<Reading>>,
    /// Deliveries per second, oldest first.
    pub delivered_rate: VecDeque<f64>,
    /// Drops per second over the rate window, latest.
    pub dropped_rate: f64,
    /// Whether drops grew in the latest sample (or the subscription appeared with drops).
    pub dropping_now: bool,
    /// When drops last grew, in broker uptime seconds.
    last_drop_t: Option<f64>,
    /// The slow-consumer radar over the last [`STALL_AFTER_S`] (or what history there is).
    pub radar: Radar,
}

impl SubscriptionHistory {
    /// Deliveries per second, latest.
    pub fn delivered_per_s(&self) -> f64 {
        self.delivered_rate.back().copied().unwrap_or(0.0)
    }
}

/// Rates over time, for the broker and for each subscription.
#[derive(Debug, Clone, Default)]
pub struct History {
    window: VecDeque<Timed<BrokerTotals>>,
    points: VecDeque<RatePoint>,
    subscriptions: HashMap<SubscriptionId, SubscriptionHistory>,
}

/// Something a sample showed starting, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// The subscription's drops grew after a quiet spell.
    StartedDropping {
        /// The subscription.
        id: SubscriptionId,
        /// Its name.
        name: String,
    },
    /// Receivers of an acknowledged subscription began waiting on a full window (see
    /// [`Radar::stalled_on_window`]).
    StalledOnWindow {
        /// Its name.
        name: String,
        /// Messages in flight.
        in_flight: u64,
        /// The window.
        window: u64,
        /// Receivers waiting on it now.
        waiting: u64,
    },
}

impl History {
    /// Adds a snapshot. Returns, for the log, the subscriptions whose drop count grew in this sample
    /// but not the one before (a subscription "starting to drop"), and those whose receivers began
    /// waiting on a full window.
    pub fn push(&mut self, snapshot: &StatsSnapshot) -> Vec<Notice> {
        let t = snapshot.uptime_s;
        if self.window.back().is_some_and(|(at, _)| t <= *at) {
            return Vec::new(); // same or older snapshot: nothing new to learn
        }
        let totals = &snapshot.totals;
        let now = BrokerTotals {
            published: totals.published,
            delivered: totals.delivered,
            dropped: totals.dropped,
        };
        let point = match rate_base(&self.window, t, RATE_WINDOW_S) {
            Some((base_t, base)) => {
                let dt = t - base_t;
                RatePoint {
                    t,
                    published: per_s(now.published, base.published, dt),
                    delivered: per_s(now.delivered, base.delivered, dt),
                    dropped: per_s(now.dropped, base.dropped, dt),
                }
            }
            None => RatePoint {
                t,
                ..RatePoint::default()
            },
        };
        push_window(&mut self.window, (t, now), RATE_WINDOW_S);
        self.points.push_back(point);
        while self.points.front().is_some_and(|p| p.t < t - CHART_SPAN_S) {
            self.points.pop_front();
        }

        let mut started = Vec::new();
        let mut seen = HashMap::with_capacity(snapshot.subscriptions.len());
        for s in &snapshot.subscriptions {
            let mut h = self.subscriptions.remove(&s.id).unwrap_or_default();
            let reading = Reading::from(s);
            let previous_dropped = h.window.back().map_or(0, |(_, r)| r.dropped);
            h.dropping_now = s.dropped > previous_dropped;
            if h.dropping_now {
                if h.last_drop_t
                    .is_none_or(|last| t - last > QUIET_BEFORE_NEW_DROPS_S)
                {
                    started.push(Notice::StartedDropping {
                        id: s.id,
                        name: s.name.clone(),
                    });
                }
                h.last_drop_t = Some(t);
            }
            let (delivered, dropped) = match rate_base(&h.window, t, RATE_WINDOW_S) {
                Some((base_t, base)) => {
                    let dt = t - base_t;
                    (
                        per_s(s.delivered, base.delivered, dt),
                        per_s(s.dropped, base.dropped, dt),
                    )
                }
                None => (0.0, 0.0),
            };
            let was_stalled_on_window = h.radar.stalled_on_window;
            h.radar = match rate_base(&h.window, t, STALL_AFTER_S) {
                Some((base_t, base)) => Radar::assess(base, reading, t - base_t),
                None => Radar::assess(reading, reading, 0.0),
            };
            if h.radar.stalled_on_window
                && !was_stalled_on_window
                && let Some(ack) = &s.ack
            {
                started.push(Notice::StalledOnWindow {
                    name: s.name.clone(),
                    in_flight: s.in_flight,
                    window: ack.max_in_flight,
                    waiting: ack.stalled_receivers,
                });
            }
            push_window(&mut h.window, (t, reading), STALL_AFTER_S);
            h.delivered_rate.push_back(delivered);
            if h.delivered_rate.len() > SPARK_POINTS {
                h.delivered_rate.pop_front();
            }
            h.dropped_rate = dropped;
            seen.insert(s.id, h);
        }
        self.subscriptions = seen; // forgets removed subscriptions
        started
    }

    /// The broker-wide rate points of the last [`CHART_SPAN_S`], oldest first.
    pub fn points(&self) -> &VecDeque<RatePoint> {
        &self.points
    }

    /// The latest broker-wide rates: the chart's last point.
    pub fn latest(&self) -> RatePoint {
        self.points.back().copied().unwrap_or_default()
    }

    /// What is known about subscription `id`.
    pub fn subscription(&self, id: SubscriptionId) -> Option<&SubscriptionHistory> {
        self.subscriptions.get(&id)
    }
}

/// The sample a window of `span` seconds ending at `t` starts from: the newest one at least `span`
/// old, or the oldest there is while the history is younger than that.
fn rate_base<T: Copy>(window: &VecDeque<Timed<T>>, t: f64, span: f64) -> Option<Timed<T>> {
    window
        .iter()
        .rev()
        .find(|(at, _)| *at <= t - span + 1e-9)
        .or(window.front())
        .copied()
}

/// Keeps only the samples that a later window of `span` seconds can still start from.
fn push_window<T>(window: &mut VecDeque<Timed<T>>, now: Timed<T>, span: f64) {
    let t = now.0;
    window.push_back(now);
    while window.len() > 1 && window[1].0 <= t - span {
        window.pop_front();
    }
}

fn per_s(now: u64, before: u64, dt: f64) -> f64 {
    if dt > 0.0 {
        now.saturating_sub(before) as f64 / dt
    } else {
        0.0
    }
}
