//! The slow-consumer radar: from two readings of one subscription's counters, how fast its queue fills
//! and drains, when it will be full at the current trend, and whether its consumer has stalled.
//!
//! Pure arithmetic on monotonic counters, so it works the same on an embedded broker and on snapshots
//! fetched from another process (clients compute their own rates from two snapshots; see the
//! `switchyard.stats/v1` schema). The dashboard's radar view and `switchyard stats` share it.
//!
//! # The rule
//! Over the interval between the two readings (`elapsed` seconds):
//! - **fill** = matched messages per second; **drain** = delivered per second; **drop** = dropped per
//!   second; **trend** = change of depth per second (fill − drain − drop, read from the depth gauge).
//! - **time to full** = free slots ÷ trend while the depth grows; zero when the queue is full; none
//!   when the depth is steady or falling.
//! - **stalled**: messages are waiting (depth > 0 now) and *nothing* was delivered for at least
//!   [`STALL_AFTER_S`] seconds (the two readings are at least that far apart and `delivered` did not
//!   move). The counters are monotonic, so equal `delivered` at both ends means no delivery in between.
//!   A consumer that is slow but moving is not stalled; it shows as filling or dropping.
//! - **stalled on the window** (acknowledged subscriptions): receivers wait on a full window of
//!   messages in flight: some wait now (`ack.stalled_receivers > 0` in the newer reading), or a receive
//!   found the window full during the interval (`ack.window_full` grew), which catches receivers that
//!   poll rather than wait. Never silent: a full window is what stalls a consumer whose messages are
//!   held by a receiver that does not ack (nats-server#2083).
//!
//! Each subscription then gets one [`Verdict`], the first that applies: stalled on the window (it names
//! the cause, so it comes before a plain stall); stalled; dropping (drops grew); filling (depth grew);
//! draining (depth fell); idle (nothing matched and nothing queued); steady.
//! [`Verdict`]'s order is the radar's sort order: most urgent first, and among filling subscriptions
//! the one that will be full soonest first ([`Radar::urgency`]).

use std::cmp::Ordering;

use switchyard::SubscriptionStats;

/// How long a subscription with queued messages must go without a delivery to be called stalled, in
/// seconds. Long enough that a consumer busy with one slow message (a database write, a retry) is not
/// flagged; short enough to show on screen within a few refreshes.
pub const STALL_AFTER_S: f64 = 5.0;

/// The counters of one subscription at one instant, as the radar needs them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reading {
    /// Published messages that matched the filter (monotonic).
    pub matched: u64,
    /// Messages handed to a receiver (monotonic).
    pub delivered: u64,
    /// Matched messages that will never be delivered (monotonic).
    pub dropped: u64,
    /// Messages queued now (a gauge).
    pub depth: u64,
    /// Queue capacity.
    pub capacity: u64,
    /// The acknowledged path's counters; `None` for a plain subscription.
    pub ack: Option<AckReading>,
}

/// The counters of an acknowledged subscription the radar reads, at one instant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AckReading {
    /// Messages in flight now (a gauge).
    pub in_flight: u64,
    /// The window: at most this many in flight.
    pub window: u64,
    /// Receivers waiting on a full window now (a gauge).
    pub stalled_receivers: u64,
    /// Receives that found the window full (monotonic).
    pub window_full: u64,
    /// Deliveries after a message's first (monotonic).
    pub redelivered: u64,
}

impl From<&SubscriptionStats> for Reading {
    fn from(s: &SubscriptionStats) -> Self {
        Self {
            matched: s.matched,
            delivered: s.delivered,
            dropped: s.dropped,
            depth: s.depth,
            capacity: s.capacity,
            ack: s.ack.as_ref().map(|a| AckReading {
                in_flight: s.in_flight,
                window: a.max_in_flight,
                stalled_receivers: a.stalled_receivers,
                window_full: a.window_full,
                redelivered: a.redelivered,
            }),
        }
    }
}

/// What the radar makes of a subscription, most urgent first (the derived order is the sort order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum Verdict {
    /// Messages wait and nothing was delivered for [`STALL_AFTER_S`] or longer.
    Stalled,
    /// Receivers of an acknowledged subscription wait on a full window of messages in flight.
    StalledOnWindow,
    /// Dropping messages (queue full, evictions, timeouts) while still delivering.
    Dropping,
    /// The queue grows: see the time to full.
    Filling,
    /// The queue shrinks.
    Draining,
    /// Keeping up: depth steady, nothing dropped.
    #[default]
    Steady,
    /// Nothing matched and nothing queued.
    Idle,
}

impl Verdict {
    /// A short word for tables: capitals for the states that need someone to look.
    pub fn label(self) -> &'static str {
        match self {
            Self::Stalled => "STALLED",
            Self::StalledOnWindow => "WINDOW",
            Self::Dropping => "DROPPING",
            Self::Filling => "filling",
            Self::Draining => "draining",
            Self::Steady => "ok",
            Self::Idle => "idle",
        }
    }

    /// Whether the radar highlights it (sorted up and coloured).
    pub fn is_alarming(self) -> bool {
        matches!(
            self,
            Self::Stalled | Self::StalledOnWindow | Self::Dropping | Self::Filling
        )
    }
}

/// The radar's reading of one subscription over one interval. See the [module docs](self).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Radar {
    /// Matched messages per second (what arrives).
    pub fill_per_s: f64,
    /// Delivered messages per second (what the consumer takes).
    pub drain_per_s: f64,
    /// Dropped messages per second.
    pub drop_per_s: f64,
    /// Change of depth per second: positive while the queue grows.
    pub trend_per_s: f64,
    /// Seconds until the queue is full at the current trend: `Some(0.0)` when full, `None` when the
    /// depth is not growing.
    pub time_to_full_s: Option<f64>,
    /// Messages wait and nothing was delivered for at least [`STALL_AFTER_S`].
    pub stalled: bool,
    /// Receivers wait on a full window of messages in flight (acknowledged subscriptions).
    pub stalled_on_window: bool,
    /// Deliveries after a message's first, per second (acknowledged subscriptions).
    pub redelivered_per_s: f64,
    /// The one-word summary.
    pub verdict: Verdict,
}

/// A depth change of at most this many messages between two samples is noise, whatever the traffic.
const DEPTH_NOISE_MESSAGES: f64 = 2.0;

/// ... and of at most this share (one in a thousand) of the messages matched in the interval: a snapshot reads a
/// subscription's depth and its counters one after the other while messages move, so at thousands a
/// second two samples of a queue whose fill and drain rates are equal differ by a few messages.
const DEPTH_NOISE_SHARE: f64 = 0.001;

/// How much the depth may change between `before` and `now` and still be noise, not a trend.
fn depth_noise(before: Reading, now: Reading) -> f64 {
    let moved = now.matched.saturating_sub(before.matched) as f64;
    DEPTH_NOISE_MESSAGES.max(DEPTH_NOISE_SHARE * moved)
}

impl Radar {
    /// Assesses the interval from `before` to `now`, `elapsed_s` seconds apart. With no time between
    /// them (or a negative one) every rate is zero and nothing is flagged but a full queue.
    pub fn assess(before: Reading, now: Reading, elapsed_s: f64) -> Self {
        let dt = if elapsed_s.is_finite() && elapsed_s > 0.0 {
            elapsed_s
        } else {
            0.0
        };
        let per_s = |now: u64, before: u64| {
            if dt > 0.0 {
                now.saturating_sub(before) as f64 / dt
            } else {
                0.0
            }
        };
        let fill_per_s = per_s(now.matched, before.matched);
        let drain_per_s = per_s(now.delivered, before.delivered);
        let drop_per_s = per_s(now.dropped, before.dropped);
        let grew = now.depth as f64 - before.depth as f64;
        let trend_per_s = if dt > 0.0 { grew / dt } else { 0.0 };
        let noise = depth_noise(before, now);
        let time_to_full_s = if now.depth >= now.capacity {
            Some(0.0)
        } else if trend_per_s > 0.0 && grew > noise {
            Some((now.capacity - now.depth) as f64 / trend_per_s)
        } else {
            None
        };
        let stalled =
            dt >= STALL_AFTER_S - 1e-9 && now.depth > 0 && now.delivered == before.delivered;
        let stalled_on_window = now.ack.is_some_and(|a| {
            a.stalled_receivers > 0
                || a.window_full > before.ack.map_or(a.window_full, |b| b.window_full)
        });
        let redelivered_per_s = match (before.ack, now.ack) {
            (Some(b), Some(a)) => per_s(a.redelivered, b.redelivered),
            _ => 0.0,
        };
        let verdict = if stalled_on_window {
            Verdict::StalledOnWindow
        } else if stalled {
            Verdict::Stalled
        } else if now.dropped > before.dropped {
            Verdict::Dropping
        } else if grew > noise {
            Verdict::Filling
        } else if -grew > noise {
            Verdict::Draining
        } else if now.depth == 0 && now.matched == before.matched {
            Verdict::Idle
        } else {
            Verdict::Steady
        };
        Self {
            fill_per_s,
            drain_per_s,
            drop_per_s,
            trend_per_s,
            time_to_full_s,
            stalled,
            stalled_on_window,
            redelivered_per_s,
            verdict,
        }
    }

    /// [`Radar::assess`] on two stats of the same subscription.
    pub fn between(before: &SubscriptionStats, now: &SubscriptionStats, elapsed_s: f64) -> Self {
        Self::assess(Reading::from(before), Reading::from(now), elapsed_s)
    }

    /// The radar's order: by [`Verdict`], then the soonest full first. Callers break ties (by id).
    pub fn urgency(&self, other: &Self) -> Ordering {
        let soonest = |r: &Self| r.time_to_full_s.unwrap_or(f64::INFINITY);
        self.verdict
            .cmp(&other.verdict)
            .then(soonest(self).total_cmp(&soonest(other)))
    }

    /// The time to full for a table cell: `full`, `12s`, `4m`, `2h`, or `-` when not filling.
    pub fn time_to_full_label(&self) -> String {
        match self.time_to_full_s {
            None => "-".to_string(),
            Some(s) if s <= 0.0 => "full".to_string(),
            Some(s) if s < 1.0 => "<1s".to_string(),
            Some(s) if s < 120.0 => format!("{s:.0}s"),
            Some(s) if s < 2.0 * 3600.0 => format!("{:.0}m", s / 60.0),
            Some(s) => format!("{:.0}h", (s / 3600.0).min(999.0)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(matched: u64, delivered: u64, dropped: u64, capacity: u64) -> Reading {
        Reading {
            matched,
            delivered,
            dropped,
            depth: matched - delivered - dropped,
            capacity,
            ack: None,
        }
    }

    /// An acknowledged subscription's reading: `in_flight` of `window` out, `depth` queued.
    fn acked(delivered: u64, depth: u64, in_flight: u64, window: u64, ack: AckReading) -> Reading {
        Reading {
            matched: delivered + depth + in_flight,
            delivered,
            dropped: 0,
            depth,
            capacity: 1024,
            ack: Some(AckReading {
                in_flight,
                window,
                ..ack
            }),
        }
    }

    #[test]
    fn rates_are_counter_growth_over_the_elapsed_time() {
        let r = Radar::assess(reading(100, 80, 0, 64), reading(300, 200, 0, 64), 2.0);
        assert_eq!(r.fill_per_s, 100.0);
        assert_eq!(r.drain_per_s, 60.0);
        assert_eq!(r.drop_per_s, 0.0);
        assert_eq!(r.trend_per_s, 40.0); // depth 20 -> 100
        assert_eq!(r.verdict, Verdict::Filling);
        assert!(!r.stalled, "it delivers, so it is not stalled");
    }

    #[test]
    fn time_to_full_is_free_slots_over_the_trend() {
        // Depth 20 -> 40 in 2 s: +10/s; 60 free slots of 100 -> 6 s.
        let r = Radar::assess(reading(40, 20, 0, 100), reading(80, 40, 0, 100), 2.0);
        assert_eq!(r.time_to_full_s, Some(6.0));
        assert_eq!(r.time_to_full_label(), "6s");
        let full = Radar::assess(reading(90, 0, 0, 100), reading(150, 10, 40, 100), 2.0);
        assert_eq!(full.time_to_full_s, Some(0.0));
        assert_eq!(full.time_to_full_label(), "full");
        let draining = Radar::assess(reading(40, 10, 0, 100), reading(50, 40, 0, 100), 2.0);
        assert_eq!(draining.time_to_full_s, None);
        assert_eq!(draining.verdict, Verdict::Draining);
        assert_eq!(draining.time_to_full_label(), "-");
    }

    #[test]
    fn no_delivery_for_the_stall_time_with_messages_waiting_is_stalled() {
        let before = reading(10, 5, 0, 64);
        let now = reading(30, 5, 0, 64);
        assert!(Radar::assess(before, now, STALL_AFTER_S).stalled);
        assert_eq!(
            Radar::assess(before, now, STALL_AFTER_S).verdict,
            Verdict::Stalled
        );
        assert!(
            !Radar::assess(before, now, STALL_AFTER_S - 0.5).stalled,
            "a shorter quiet spell is not (yet) a stall"
        );
        // A paused consumer with messages left and no new traffic is stalled too: they never leave.
        let quiet = reading(10, 5, 0, 64);
        assert!(Radar::assess(quiet, quiet, 6.0).stalled);
    }

    #[test]
    fn one_delivery_or_an_empty_queue_is_not_a_stall() {
        let slow = Radar::assess(reading(10, 5, 0, 64), reading(30, 6, 0, 64), 10.0);
        assert!(!slow.stalled);
        assert_eq!(slow.verdict, Verdict::Filling);
        let empty = reading(10, 10, 0, 64);
        let r = Radar::assess(empty, empty, 60.0);
        assert!(!r.stalled, "nothing waits, nothing is stuck");
        assert_eq!(r.verdict, Verdict::Idle);
    }

    #[test]
    fn a_full_queue_that_still_delivers_is_dropping_and_a_stuck_one_is_stalled() {
        let before = reading(100, 50, 34, 16);
        let dropping = Radar::assess(before, reading(200, 60, 124, 16), 5.0);
        assert_eq!(dropping.verdict, Verdict::Dropping);
        assert_eq!(dropping.drop_per_s, 18.0);
        let stuck = Radar::assess(before, reading(200, 50, 134, 16), 5.0);
        assert_eq!(stuck.verdict, Verdict::Stalled);
    }

    #[test]
    fn receivers_waiting_on_a_full_window_are_flagged_and_never_silent() {
        let calm = AckReading::default();
        // Ten in flight of a window of ten, messages queued, and a receiver waiting on the window now.
        let before = acked(100, 5, 10, 10, calm);
        let waiting = AckReading {
            stalled_receivers: 1,
            ..calm
        };
        let now = acked(100, 50, 10, 10, waiting);
        let r = Radar::assess(before, now, 1.0);
        assert!(r.stalled_on_window);
        assert_eq!(
            (r.verdict, r.verdict.label()),
            (Verdict::StalledOnWindow, "WINDOW")
        );
        assert!(r.verdict.is_alarming());
        // Receivers that poll do not wait, but each receive that found the window full is counted.
        let polled = AckReading {
            window_full: 7,
            ..calm
        };
        let r = Radar::assess(before, acked(100, 50, 10, 10, polled), 1.0);
        assert_eq!(r.verdict, Verdict::StalledOnWindow);
        // Before the plain stall: the window is the cause, and the verdict names it.
        let r = Radar::assess(before, now, STALL_AFTER_S);
        assert!(r.stalled && r.stalled_on_window);
        assert_eq!(r.verdict, Verdict::StalledOnWindow);
    }

    #[test]
    fn a_full_window_with_nobody_waiting_is_not_a_stall_and_redeliveries_have_a_rate() {
        let before = acked(100, 0, 10, 10, AckReading::default());
        let now = acked(
            200,
            0,
            10,
            10,
            AckReading {
                redelivered: 30,
                ..AckReading::default()
            },
        );
        let r = Radar::assess(before, now, 2.0);
        assert!(!r.stalled_on_window, "full, but every receiver is busy");
        assert_eq!(r.redelivered_per_s, 15.0);
        assert_eq!(r.verdict, Verdict::Steady);
        // A plain subscription has no window to stall on.
        let plain = reading(10, 5, 0, 64);
        assert!(!Radar::assess(plain, plain, 1.0).stalled_on_window);
    }

    #[test]
    fn no_elapsed_time_gives_zero_rates_and_no_stall() {
        let r = Radar::assess(reading(0, 0, 0, 8), reading(5, 0, 0, 8), 0.0);
        assert_eq!((r.fill_per_s, r.trend_per_s), (0.0, 0.0));
        assert!(!r.stalled);
        let r = Radar::assess(reading(0, 0, 0, 8), reading(5, 0, 0, 8), f64::NAN);
        assert_eq!(r.fill_per_s, 0.0);
    }

    #[test]
    fn urgency_puts_stalled_then_dropping_then_the_soonest_full_first() {
        let stalled = Radar::assess(reading(10, 5, 0, 64), reading(30, 5, 0, 64), 6.0);
        let waiting = AckReading {
            stalled_receivers: 2,
            ..AckReading::default()
        };
        let window = Radar::assess(
            acked(0, 9, 4, 4, AckReading::default()),
            acked(0, 9, 4, 4, waiting),
            6.0,
        );
        let dropping = Radar::assess(reading(100, 50, 34, 16), reading(200, 60, 124, 16), 6.0);
        let soon = Radar::assess(reading(40, 20, 0, 100), reading(80, 40, 0, 100), 2.0); // 6 s
        let later = Radar::assess(reading(40, 20, 0, 1000), reading(80, 40, 0, 1000), 2.0);
        let steady = Radar::assess(reading(10, 10, 0, 8), reading(20, 20, 0, 8), 2.0);
        let mut all = [steady, later, window, soon, dropping, stalled];
        all.sort_by(Radar::urgency);
        assert_eq!(all, [stalled, window, dropping, soon, later, steady]);
        assert!(all[..5].iter().all(|r| r.verdict.is_alarming()));
        assert!(!steady.verdict.is_alarming());
    }

    #[test]
    fn equal_fill_and_drain_rates_are_steady_within_the_noise_of_two_samples() {
        // 2516/s in and out for 5 s; the depth read 0 then 1: noise, not a queue that fills.
        let before = reading(100_000, 100_000, 0, 256);
        let now = reading(112_580, 112_579, 0, 256);
        let r = Radar::assess(before, now, 5.0);
        assert_eq!(r.verdict, Verdict::Steady);
        assert_eq!(r.time_to_full_s, None);
        assert_eq!(r.time_to_full_label(), "-");
        // The same at a trickle: one message more in the queue is within noise too.
        let r = Radar::assess(reading(10, 10, 0, 64), reading(20, 19, 0, 64), 5.0);
        assert_eq!(r.verdict, Verdict::Steady);
        // And a real excess still shows: 100 more messages in 5 s than the consumer took.
        let r = Radar::assess(before, reading(112_580, 112_480, 0, 256), 5.0);
        assert_eq!(r.verdict, Verdict::Filling);
        assert!(r.time_to_full_s.is_some());
    }
}
