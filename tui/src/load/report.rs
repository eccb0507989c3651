//! What a run reports: the `load` section of the JSON snapshot, the human summary, and RSS readings.

use std::fmt::Write as _;

use serde::Serialize;
use switchyard::{AckStats, DropReason, DroppedByReason, LatencySummary, StatsSnapshot};

use super::args::value_name;
use super::figures::{bytes, count, rate};
use super::late_joiners::LateJoinersResult;
use super::plan::Plan;
use super::replay::{JoinAt, ReplayPlan};
use crate::terminal_text::escape_controls;

/// The `load` section of a `switchyard.stats/v1` snapshot written by the generator.
#[derive(Debug, Clone, Serialize)]
pub struct LoadSection {
    /// The effective configuration (defaults filled in).
    pub config: Plan,
    /// What happened.
    pub result: LoadResult,
}

/// The outcome of a run, or of the run so far in a periodic `--stats-jsonl` line.
///
/// Every broker count (`published` to `depth`) is read from the one snapshot the section is attached
/// to, so during a run they agree with its `totals`; `balanced` is a verdict on the books at rest and
/// is left out until the run is complete (under load a snapshot is off by the messages in flight).
#[derive(Debug, Clone, Default, Serialize)]
pub struct LoadResult {
    /// False in the periodic `--stats-jsonl` snapshots, true in the final one.
    pub complete: bool,
    /// The run was ended early by SIGINT or SIGTERM.
    pub interrupted: bool,
    /// Seconds spent publishing.
    pub publish_s: f64,
    /// Seconds spent draining after publishers stopped.
    pub drain_s: f64,
    /// Messages published by the generator.
    pub published: u64,
    /// Sum over subscriptions of messages matched.
    pub matched: u64,
    /// Messages delivered to receivers.
    pub delivered: u64,
    /// Messages dropped.
    pub dropped: u64,
    /// Drops by reason.
    pub dropped_by_reason: DroppedByReason,
    /// Messages still queued at the end.
    pub depth: u64,
    /// Messages in flight at the end: handed out on acknowledged subscriptions and not yet settled,
    /// or waiting to be delivered again (0 without `--ack`).
    pub in_flight: u64,
    /// The acknowledged path's counters summed over the subscriptions, with `--ack`; else null.
    pub ack: Option<AckTotals>,
    /// With `--replay`, in the final snapshot: what the late joiners got and whether each got every
    /// message from its start once or was told of it; else null. (The log itself is the snapshot's
    /// `replay_log`, and each late joiner's replay its subscription's `replay`.)
    pub late_joiners: Option<LateJoinersResult>,
    /// `published / publish_s`.
    pub published_per_s: f64,
    /// `delivered / (publish_s + drain_s)`.
    pub delivered_per_s: f64,
    /// CPU seconds the publisher threads ran while publishing, summed, each read from the thread's
    /// own clock (`/proc/thread-self/schedstat`); null off Linux. Other processes on a busy machine
    /// stretch `publish_s` but not this, so `published_per_cpu_s` compares engines there far more
    /// steadily than `published_per_s`.
    pub publish_cpu_s: Option<f64>,
    /// `published / publish_cpu_s`: publishes per second of publisher CPU.
    pub published_per_cpu_s: Option<f64>,
    /// Resident set size when the run started (before subscribing), bytes; null off Linux.
    pub rss_start_bytes: Option<u64>,
    /// Resident set size after subscribing, bytes.
    pub rss_subscribed_bytes: Option<u64>,
    /// Resident set size at the end, bytes.
    pub rss_end_bytes: Option<u64>,
    /// `matched = delivered + dropped + depth + in_flight` for every subscription and in total;
    /// absent (not serialised) until the run is complete.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub balanced: Option<bool>,
}

/// The acknowledged path's counters over every subscription of a `--ack` run (the JSON
/// `load.result.ack`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct AckTotals {
    /// Messages acknowledged (the run's `delivered`).
    pub acked: u64,
    /// Deliveries after a message's first: after a nack, a passed deadline or a receiver that died.
    pub redelivered: u64,
    /// Attempts nacked.
    pub nacked: u64,
    /// Attempts whose ack deadline passed.
    pub expired: u64,
    /// Attempts handed back because their receiver went away.
    pub handed_back: u64,
    /// Messages out of deliveries (`--max-deliveries`), dropped as `max_deliveries`.
    pub dead_lettered: u64,
    /// Receives that found messages queued but the window full.
    pub window_full: u64,
    /// Acks, nacks and the like that the broker refused.
    pub refused: u64,
}

impl AckTotals {
    fn add(&mut self, a: &AckStats) {
        self.acked += a.acked;
        self.redelivered += a.redelivered;
        self.nacked += a.nacked;
        self.expired += a.expired;
        self.handed_back += a.handed_back;
        self.dead_lettered += a.dead_lettered;
        self.window_full += a.window_full;
        self.refused += a.refused.total();
    }
}

impl LoadResult {
    /// The broker's counts in `snapshot` (published, matched, delivered, dropped by reason, depth, in
    /// flight, and with acknowledged subscriptions their counters), all from that one snapshot;
    /// timings, rates, RSS and the verdict are the caller's.
    pub fn counted(snapshot: &StatsSnapshot) -> Self {
        let t = &snapshot.totals;
        let mut dropped_by_reason = DroppedByReason::default();
        let mut ack: Option<AckTotals> = None;
        for s in &snapshot.subscriptions {
            let d = &s.dropped_by_reason;
            dropped_by_reason.add(d);
            if let Some(a) = &s.ack {
                ack.get_or_insert_default().add(a);
            }
        }
        Self {
            published: t.published,
            matched: t.matched,
            delivered: t.delivered,
            dropped: t.dropped,
            dropped_by_reason,
            depth: t.depth,
            in_flight: t.in_flight,
            ack,
            ..Self::default()
        }
    }
}

/// The resident set size of this process in bytes, from `/proc/self/status` (`VmRSS`, in kB, which
/// saves knowing the page size `statm` counts in). `None` where there is no procfs.
/// CPU time the calling thread has run, in seconds (the first field of
/// `/proc/thread-self/schedstat`, in nanoseconds); `None` off Linux.
pub fn thread_cpu_s() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = stat.split_whitespace().next()?.parse().ok()?;
    Some(ns as f64 / 1e9)
}

pub fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn latency_line(l: &LatencySummary) -> String {
    format!(
        "p50 {:.1} µs  p90 {:.1} µs  p99 {:.1} µs  p99.9 {:.1} µs  max {:.1} µs  ({} samples)",
        l.p50,
        l.p90,
        l.p99,
        l.p999,
        l.max,
        count(l.count)
    )
}

/// Drops by reason: the queue's four always, the others (acknowledged subscriptions, byte bounds)
/// when they dropped something.
fn reasons(d: &DroppedByReason) -> String {
    const ALWAYS: [DropReason; 4] = [
        DropReason::QueueFull,
        DropReason::Evicted,
        DropReason::Timeout,
        DropReason::Unsubscribed,
    ];
    DropReason::ALL
        .into_iter()
        .filter(|r| ALWAYS.contains(r) || d.get(*r) > 0)
        .map(|r| format!("{} {}", r.label(), count(d.get(r))))
        .collect::<Vec<_>>()
        .join(", ")
}

/// How many subscriptions the summary lists by drops.
pub const TOP_BY_DROPS: usize = 5;

/// The human summary printed at the end of a run. Names and filters may come from outside (taps made
/// through `--serve`'s endpoint), so they are shown with control characters escaped.
pub fn summary(snapshot: &StatsSnapshot<LoadSection>) -> String {
    let mut s = String::new();
    let Some(load) = &snapshot.load else {
        return s;
    };
    write_config(&mut s, &load.config);
    write_time(&mut s, snapshot, load);
    write_counts(&mut s, snapshot, &load.result);
    write_replay(&mut s, snapshot, &load.result);
    write_latency(&mut s, snapshot, &load.config);
    write_memory(&mut s, snapshot, &load.result);
    write_top_by_drops(&mut s, snapshot);
    write_books(&mut s, snapshot, &load.result);
    s
}

/// The run's configuration: one line, and one more for `--slow`.
fn write_config(s: &mut String, c: &Plan) {
    let bound = match (c.messages, c.duration) {
        (Some(m), _) => format!("{} messages", count(m)),
        (None, Some(d)) => format!("{}s", d.as_secs_f64()),
        (None, None) => String::new(),
    };
    let _ = writeln!(
        s,
        "switchyard load ({} engine): {} publisher(s) → {} subscription(s) × {} receiver(s) on {} \
         consumer thread(s), {} topic(s), {} filters, {} B payload, capacity {} {}, rate {}, {bound}, seed {}",
        value_name(c.engine),
        c.publishers,
        count(u64::from(c.subscribers)),
        c.receivers,
        c.consumer_threads,
        count(u64::from(c.topics)),
        value_name(c.filters),
        c.payload,
        count(c.capacity),
        c.policy,
        if c.rate == 0 {
            "max".to_string()
        } else {
            format!("{}/s", count(c.rate))
        },
        c.seed,
    );
    if let Some(ack) = c.ack {
        let limit = ack
            .max_deliveries
            .map_or("no delivery limit".to_string(), |n| {
                format!("at most {n} deliveries")
            });
        let _ = writeln!(
            s,
            "ack         acknowledged: ack wait {} ms, window {}, {limit}; receivers nacking {}, \
             timing out {}, dying {}",
            ack.ack_wait.as_millis(),
            count(u64::from(ack.max_in_flight)),
            count(ack.nacking),
            count(ack.timing_out),
            count(ack.dying),
        );
    }
    if let Some(replay) = &c.replay {
        write_replay_config(s, replay);
    }
    if let Some(slow) = c.slow {
        let _ = writeln!(
            s,
            "slow        {} subscription(s) at {} ms per message",
            slow.subscriptions,
            slow.delay.as_secs_f64() * 1e3
        );
    }
}

/// `--replay-log` and `--replay`: the log's bounds, and who joins late, from where and when.
fn write_replay_config(s: &mut String, r: &ReplayPlan) {
    let age = r.log.max_age.map_or("no age limit".to_string(), |age| {
        format!("none older than {}", humantime::format_duration(age))
    });
    let _ = write!(
        s,
        "replay      a log of {}: at most {} messages, {} of topics and payloads, {age}",
        super::replay::LOG_FILTER,
        count(r.log.max_messages),
        bytes(Some(r.log.max_bytes)),
    );
    match &r.late_joiners {
        Some(j) => {
            let when = match j.join {
                JoinAt::Elapsed(after) => {
                    format!("{:.3} s after publishing starts", after.as_secs_f64())
                }
                JoinAt::Published(n) => format!("once {} messages are published", count(n)),
            };
            let _ = writeln!(
                s,
                "; {} late joiner(s) from {}, subscribing {when}",
                j.joiners, j.from
            );
        }
        None => {
            let _ = writeln!(s, "; no late joiners");
        }
    }
}

/// How long it published and drained, and whether a signal cut it short.
fn write_time(s: &mut String, snapshot: &StatsSnapshot<LoadSection>, load: &LoadSection) {
    let (c, r) = (&load.config, &load.result);
    let subscribed = snapshot.totals.subscriptions;
    let interrupted = if r.interrupted && subscribed < u64::from(c.subscribers) {
        format!(
            "  (interrupted by a signal while subscribing: {} of {} subscriptions made, nothing \
             published)",
            count(subscribed),
            count(u64::from(c.subscribers))
        )
    } else if r.interrupted {
        "  (interrupted by a signal)".to_string()
    } else {
        String::new()
    };
    let _ = writeln!(
        s,
        "time        {:.3} s publishing + {:.3} s draining{interrupted}",
        r.publish_s, r.drain_s,
    );
}

/// Published, matched, delivered, dropped and queued, with rates.
fn write_counts(s: &mut String, snapshot: &StatsSnapshot<LoadSection>, r: &LoadResult) {
    let t = &snapshot.totals;
    let _ = writeln!(
        s,
        "published   {:>16}   {}/s",
        count(r.published),
        rate(r.published_per_s)
    );
    let _ = writeln!(
        s,
        "matched     {:>16}   (unrouted {})",
        count(t.matched),
        count(t.unrouted)
    );
    let _ = writeln!(
        s,
        "delivered   {:>16}   {}/s",
        count(t.delivered),
        rate(r.delivered_per_s)
    );
    let _ = writeln!(
        s,
        "dropped     {:>16}   ({})",
        count(t.dropped),
        reasons(&r.dropped_by_reason)
    );
    let _ = writeln!(s, "queued      {:>16}   at the end", count(t.depth));
    if let Some(a) = &r.ack {
        // The late joiners of --replay are plain subscriptions: what they took is delivered, not acked.
        let plain = t.delivered.saturating_sub(a.acked);
        let _ = if plain == 0 {
            writeln!(
                s,
                "acked       {:>16}   (the delivered above)",
                count(a.acked)
            )
        } else {
            writeln!(
                s,
                "acked       {:>16}   (of the delivered above; the other {} were taken by plain subscriptions, which do not ack)",
                count(a.acked),
                count(plain)
            )
        };
        let _ = writeln!(
            s,
            "redelivered {:>16}   (nacked {}, expired {}, handed back {})",
            count(a.redelivered),
            count(a.nacked),
            count(a.expired),
            count(a.handed_back)
        );
        let _ = writeln!(
            s,
            "dead-lettered {:>14}   (out of deliveries; window full {} times; acks refused {})",
            count(a.dead_lettered),
            count(a.window_full),
            count(a.refused)
        );
        let _ = writeln!(s, "in flight   {:>16}   at the end", count(t.in_flight));
    }
}

/// The replay log at the end, and what the late joiners got.
fn write_replay(s: &mut String, snapshot: &StatsSnapshot<LoadSection>, r: &LoadResult) {
    if let Some(log) = &snapshot.replay_log {
        let e = &log.evicted;
        let _ = writeln!(
            s,
            "replay log  {:>16}   held at the end ({}), numbers {} to {}; evicted {} (max_messages {}, \
             max_bytes {}, max_age {})",
            count(log.messages),
            bytes(Some(log.bytes)),
            count(log.first_seq),
            count(log.next_seq.saturating_sub(1)),
            count(e.total()),
            count(e.max_messages),
            count(e.max_bytes),
            count(e.max_age),
        );
    }
    let Some(late) = &r.late_joiners else {
        return;
    };
    let when = if late.while_publishing {
        "while publishing"
    } else {
        "after publishing had stopped"
    };
    let _ = writeln!(
        s,
        "late joiners {:>15}   joined at {:.3} s {when}: replayed {}, live {}, told missed {} ({}; \
         the gap, evicted before they got to it: {})",
        late.joiners.len(),
        late.joined_at_s,
        count(late.replayed),
        count(late.live),
        count(late.told_missed.total()),
        reasons(&late.told_missed),
        count(late.gap),
    );
    let verdict = if late.exactly_once {
        "yes".to_string()
    } else {
        let failed = late.joiners.iter().filter(|j| !j.exactly_once).count();
        format!(
            "NO, {failed} of {} did not (see the errors below)",
            late.joiners.len()
        )
    };
    let _ = writeln!(
        s,
        "             every message from its start exactly once, or told it missed it: {verdict}"
    );
}

/// The latency percentiles, or why there are none.
fn write_latency(s: &mut String, snapshot: &StatsSnapshot<LoadSection>, c: &Plan) {
    match &snapshot.latency_us {
        Some(l) => {
            let _ = writeln!(s, "latency     {}", latency_line(l));
        }
        None if c.latency_every == 0 => {
            let _ = writeln!(s, "latency     not measured (--latency-every 0)");
        }
        None => {
            let _ = writeln!(s, "latency     no timestamped message was received");
        }
    }
}

/// RSS at start, after subscribing and at the end, and per subscription when there are enough.
fn write_memory(s: &mut String, snapshot: &StatsSnapshot<LoadSection>, r: &LoadResult) {
    let subscribed = snapshot.totals.subscriptions;
    let per_sub = match (r.rss_start_bytes, r.rss_subscribed_bytes) {
        // Page granularity makes the figure meaningless for a handful of subscriptions.
        (Some(a), Some(b)) if subscribed >= 1000 => {
            format!(", ~{} B per subscription", b.saturating_sub(a) / subscribed)
        }
        _ => String::new(),
    };
    let _ = writeln!(
        s,
        "memory      RSS {} at start, {} subscribed, {} at end{per_sub}",
        bytes(r.rss_start_bytes),
        bytes(r.rss_subscribed_bytes),
        bytes(r.rss_end_bytes)
    );
}

/// The [`TOP_BY_DROPS`] subscriptions that dropped most, if any dropped.
fn write_top_by_drops(s: &mut String, snapshot: &StatsSnapshot<LoadSection>) {
    let mut top: Vec<_> = snapshot
        .subscriptions
        .iter()
        .filter(|s| s.dropped > 0)
        .collect();
    if top.is_empty() {
        return;
    }
    top.sort_by(|a, b| b.dropped.cmp(&a.dropped).then(a.id.cmp(&b.id)));
    let _ = writeln!(
        s,
        "top subscriptions by drops ({} of {} dropped something):",
        top.len().min(TOP_BY_DROPS),
        top.len()
    );
    for sub in top.iter().take(TOP_BY_DROPS) {
        // Capacity is per priority lane: with several priorities in use the depth can exceed it.
        let high_water = if sub.high_water > sub.capacity {
            format!(
                "{} ({} per priority lane)",
                count(sub.high_water),
                count(sub.capacity)
            )
        } else {
            format!("{}/{}", count(sub.high_water), count(sub.capacity))
        };
        let _ = writeln!(
            s,
            "  {:<8} {:<24} dropped {:>12} of {:>12} matched ({})  high water {}",
            escape_controls(&sub.name),
            escape_controls(&sub.filter),
            count(sub.dropped),
            count(sub.matched),
            reasons(&sub.dropped_by_reason),
            high_water,
        );
    }
}

/// Whether the books balance, and the first subscriptions that are off when they do not.
fn write_books(s: &mut String, snapshot: &StatsSnapshot<LoadSection>, r: &LoadResult) {
    if r.balanced == Some(true) {
        let _ = writeln!(
            s,
            "books       balanced: matched = delivered + dropped + depth + in_flight for all {} \
             subscriptions",
            count(snapshot.subscriptions.len() as u64)
        );
        return;
    }
    let bad: Vec<_> = snapshot
        .subscriptions
        .iter()
        .filter(|s| !s.balances())
        .collect();
    let _ = writeln!(
        s,
        "books       DO NOT BALANCE ({} subscriptions off):",
        bad.len()
    );
    for sub in bad.iter().take(TOP_BY_DROPS) {
        let _ = writeln!(
            s,
            "  {} {}: matched {} != delivered {} + dropped {} + depth {} + in_flight {}",
            escape_controls(&sub.name),
            escape_controls(&sub.filter),
            sub.matched,
            sub.delivered,
            sub.dropped,
            sub.depth,
            sub.in_flight
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_drop_reason_is_counted_and_the_rare_ones_are_listed_when_they_dropped() {
        let mut snapshot = StatsSnapshot::default();
        for byte_limit in [2, 3] {
            let mut s = switchyard::SubscriptionStats::default();
            s.dropped_by_reason.queue_full = 1;
            s.dropped_by_reason.byte_limit = byte_limit;
            snapshot.subscriptions.push(s);
        }
        let counted = LoadResult::counted(&snapshot).dropped_by_reason;
        assert_eq!((counted.queue_full, counted.byte_limit), (2, 5));
        assert_eq!(
            reasons(&counted),
            "queue_full 2, evicted 0, timeout 0, unsubscribed 0, byte_limit 5"
        );
        assert!(!reasons(&DroppedByReason::default()).contains("byte_limit"));
    }

    #[test]
    fn rss_is_read_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(rss_bytes().unwrap() > 0);
        }
    }
}
