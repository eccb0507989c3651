//! `switchyard stats --attach ADDR`: a broker's stats from its endpoint, as a table or as JSON, once or
//! every `--interval` (like `top -b -n`).
//!
//! Rates are computed here from two snapshots' counters and `uptime_s`, over this command's own
//! interval, so any number of viewers can watch one broker without disturbing each other. The first
//! output, with no earlier snapshot, shows averages since the broker started.

use std::collections::VecDeque;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use switchyard::{AckTotals, Rates, SubscriptionId, SubscriptionStats};
use switchyard_observe::{Client, EndpointStats, SortBy, StatsParams};

use crate::numbers::count;
use crate::radar::{Radar, STALL_AFTER_S};
use crate::terminal_text::escape_controls;

/// Options of `switchyard stats`.
#[derive(Debug, Clone, clap::Args)]
#[command(
    after_help = "Exit status: 0 success; 1 the endpoint could not be reached (or was lost for \
                        longer than --reconnect-for); 2 bad arguments.\n\n\
                        Example: switchyard stats --attach 127.0.0.1:9475 --sort dropped --limit 10 \
                        --interval 1s --count 5"
)]
pub struct StatsArgs {
    /// The endpoint to read, `host:port` (a service's `switchyard_observe::serve`, or `switchyard load
    /// --serve`).
    #[arg(long, value_name = "ADDR", value_parser = crate::cli_args::parse_attach)]
    pub attach: String,
    /// A file holding the endpoint's bearer token (only commands need it; stats are readable without).
    #[arg(long, value_name = "PATH")]
    pub token_file: Option<PathBuf>,
    /// Print one snapshot and exit.
    #[arg(long, conflicts_with = "count")]
    pub once: bool,
    /// Time between snapshots (`1s`, `500ms`).
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_interval)]
    pub interval: Duration,
    /// Print this many snapshots, then exit [default: until interrupted].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,
    /// Print each snapshot as pretty JSON (the `switchyard.stats/v1` schema with the endpoint's
    /// `selection` and `endpoint` sections).
    #[arg(long, conflicts_with = "jsonl")]
    pub json: bool,
    /// Print each snapshot as one line of JSON.
    #[arg(long)]
    pub jsonl: bool,
    /// Order of the subscriptions: id, depth, fill, dropped, delivered or rate (largest first, id
    /// ascending).
    #[arg(long, value_name = "KEY", default_value = "id", value_parser = parse_sort)]
    pub sort: SortBy,
    /// Only subscriptions whose name or filter contains TEXT (ASCII case ignored).
    #[arg(long, value_name = "TEXT")]
    pub filter: Option<String>,
    /// At most N subscriptions [default: 20 in the table, all in JSON]. Totals always cover all.
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Once connected, how long to keep retrying a lost endpoint before giving up with exit 1.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_interval)]
    pub reconnect_for: Duration,
}

/// Rows of the table when --limit is not given.
const TABLE_ROWS: usize = 20;

fn parse_interval(text: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(text)
        .map_err(|e| format!("`{text}` is not a duration such as 1s or 500ms: {e}"))?;
    if d.is_zero() {
        return Err("the duration must be above zero".into());
    }
    Ok(d)
}

fn parse_sort(text: &str) -> Result<SortBy, String> {
    text.parse()
}

/// Runs `switchyard stats`.
pub fn run(args: StatsArgs) -> anyhow::Result<ExitCode> {
    let token = args
        .token_file
        .as_deref()
        .map(switchyard_observe::read_token_file)
        .transpose()?;
    let client = Client::new(&args.attach)?.with_token(token);
    let table = !args.json && !args.jsonl;
    let params = StatsParams {
        sort: args.sort,
        filter: args.filter.clone(),
        limit: args.limit.or(table.then_some(TABLE_ROWS)),
    };
    let outputs = if args.once { Some(1) } else { args.count };
    let mut previous: Option<EndpointStats> = None;
    let mut radar_base = RadarBase::default();
    let mut printed = 0u64;
    let mut lost_since: Option<Instant> = None;
    let mut out = std::io::stdout().lock();
    loop {
        let started = Instant::now();
        match client.stats(&params) {
            Ok(mut stats) => {
                if let Some(since) = lost_since.take() {
                    eprintln!(
                        "switchyard stats: reconnected to {} after {:.1}s",
                        client.addr(),
                        since.elapsed().as_secs_f64()
                    );
                    previous = None; // possibly another broker: counters start again
                    radar_base = RadarBase::default();
                }
                let rates = previous.as_ref().and_then(|p| interval_rates(p, &stats));
                if let Some(r) = rates {
                    stats.snapshot.rates = r;
                }
                let text = if args.json {
                    format!("{}\n", serde_json::to_string_pretty(&stats)?)
                } else if args.jsonl {
                    format!("{}\n", serde_json::to_string(&stats)?)
                } else {
                    table_text(client.addr(), &stats, radar_base.base(), rates.is_some())
                };
                out.write_all(text.as_bytes())
                    .context("writing to stdout")?;
                out.flush().context("writing to stdout")?;
                printed += 1;
                if table {
                    radar_base.push(stats.clone());
                }
                previous = Some(stats);
            }
            Err(e) if printed == 0 && lost_since.is_none() => {
                anyhow::bail!("cannot read stats from {}: {e}", args.attach);
            }
            Err(e) => {
                let since = *lost_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= args.reconnect_for {
                    anyhow::bail!(
                        "lost {} for {} ({e}); giving up",
                        args.attach,
                        humantime::format_duration(args.reconnect_for)
                    );
                }
                eprintln!(
                    "switchyard stats: {}; retrying",
                    escape_controls(&e.to_string())
                );
            }
        }
        if outputs.is_some_and(|n| printed >= n) {
            return Ok(ExitCode::SUCCESS);
        }
        std::thread::sleep(args.interval.saturating_sub(started.elapsed()));
    }
}

/// Rates between two snapshots of the same broker, or `None` if `now` is not later (a restart).
fn interval_rates(before: &EndpointStats, now: &EndpointStats) -> Option<Rates> {
    let dt = now.snapshot.uptime_s - before.snapshot.uptime_s;
    if dt <= 0.0 {
        return None;
    }
    let (a, b) = (&before.snapshot.totals, &now.snapshot.totals);
    let per_s = |now: u64, before: u64| now.saturating_sub(before) as f64 / dt;
    Some(Rates {
        published_per_s: per_s(b.published, a.published),
        delivered_per_s: per_s(b.delivered, a.delivered),
        dropped_per_s: per_s(b.dropped, a.dropped),
    })
}

/// Earlier snapshots, kept so the radar columns compare with the reading about [`STALL_AFTER_S`]
/// ago, as the dashboard's radar does (a stall shows only over an interval at least that long).
#[derive(Debug, Default)]
struct RadarBase {
    snapshots: VecDeque<EndpointStats>,
}

impl RadarBase {
    fn push(&mut self, stats: EndpointStats) {
        let now = stats.snapshot.uptime_s;
        self.snapshots.push_back(stats);
        // Keep the newest snapshot at least STALL_AFTER_S old, and everything after it.
        while self
            .snapshots
            .get(1)
            .is_some_and(|s| now - s.snapshot.uptime_s >= STALL_AFTER_S)
        {
            self.snapshots.pop_front();
        }
    }

    /// The snapshot the radar compares with: the newest at least [`STALL_AFTER_S`] old, or the oldest.
    fn base(&self) -> Option<&EndpointStats> {
        self.snapshots.front()
    }
}

/// The radar of subscription `id` from `before` to `now`, when it is in both.
fn radar_of(
    before: Option<&EndpointStats>,
    now: &EndpointStats,
    id: SubscriptionId,
) -> Option<Radar> {
    let before = before?;
    let dt = now.snapshot.uptime_s - before.snapshot.uptime_s;
    let a = before.snapshot.subscriptions.iter().find(|s| s.id == id)?;
    let b = now.snapshot.subscriptions.iter().find(|s| s.id == id)?;
    (dt > 0.0).then(|| Radar::between(a, b, dt))
}

/// The plain table: a header of totals and rates, then one row per subscription shown, with the
/// slow-consumer radar's columns (see [`crate::radar`]) measured against `base`.
fn table_text(
    addr: &str,
    stats: &EndpointStats,
    base: Option<&EndpointStats>,
    interval: bool,
) -> String {
    let s = &stats.snapshot;
    let t = &s.totals;
    let r = &s.rates;
    let sel = &stats.selection;
    let mut out = String::new();
    let filter = sel
        .filter
        .as_ref()
        .map(|f| format!(", filter \"{}\"", escape_controls(f)))
        .unwrap_or_default();
    out.push_str(&format!(
        "switchyard {}  {}  up {:.1}s  {} subscriptions (showing {} of {} matching, sort {}{filter})\n",
        escape_controls(addr),
        escape_controls(&s.taken_at),
        s.uptime_s,
        count(t.subscriptions),
        s.subscriptions.len(),
        count(sel.matching),
        escape_controls(&sel.sort),
    ));
    let per = if interval { "/s" } else { "/s since start" };
    out.push_str(&format!(
        "published {} ({:.0}{per})  delivered {} ({:.0}{per})  dropped {} ({:.0}{per})  queued {}  unrouted {}\n",
        count(t.published),
        r.published_per_s,
        count(t.delivered),
        r.delivered_per_s,
        count(t.dropped),
        r.dropped_per_s,
        count(t.depth),
        count(t.unrouted),
    ));
    if t.in_flight > 0
        || t.ack != AckTotals::default()
        || s.subscriptions.iter().any(|sub| sub.ack.is_some())
    {
        // The counts are the broker's totals: they keep what removed subscriptions counted.
        out.push_str(&format!(
            "in flight {} on acknowledged subscriptions  acked {}  redelivered {}  dead-lettered {}  refused acks {}\n",
            count(t.in_flight),
            count(t.ack.acked),
            count(t.ack.redelivered),
            count(t.ack.dead_lettered + t.ack.terminated),
            count(t.ack.refused.total()),
        ));
    }
    out.push_str(&format!(
        "{:>8}  {:<16} {:<24} {:<12} {:>8} {:>8} {:>5} {:>15} {:>12} {:>10} {:>8} {:>8} {:>8} {:>7}  {}\n",
        "ID",
        "NAME",
        "FILTER",
        "POLICY",
        "DEPTH",
        "CAP",
        "FILL",
        "IN FLIGHT/WIN",
        "DELIVERED",
        "DROPPED",
        "IN/S",
        "OUT/S",
        "DROP/S",
        "FULL IN",
        "STATE"
    ));
    for sub in &s.subscriptions {
        out.push_str(&subscription_line(sub, radar_of(base, stats, sub.id)));
    }
    out.push('\n');
    out
}

/// One subscription's row of the plain table; the radar's columns are `-` without a `radar`.
fn subscription_line(sub: &SubscriptionStats, radar: Option<Radar>) -> String {
    let per_s = |f: fn(&Radar) -> f64| {
        radar
            .as_ref()
            .map_or_else(|| "-".to_string(), |r| format!("{:.0}", f(r)))
    };
    let fill = 100.0 * sub.depth as f64 / sub.capacity.max(1) as f64;
    // Acknowledged subscriptions: messages in flight against the window; `-` for plain ones.
    let in_flight = sub.ack.as_ref().map_or_else(
        || "-".to_string(),
        |a| format!("{}/{}", count(sub.in_flight), count(a.max_in_flight)),
    );
    format!(
        "{:>8}  {:<16} {:<24} {:<12} {:>8} {:>8} {:>4.0}% {:>15} {:>12} {:>10} {:>8} {:>8} {:>8} {:>7}  {}\n",
        sub.id,
        cut(&sub.name, 16),
        cut(&sub.filter, 24),
        escape_controls(&sub.policy),
        count(sub.depth),
        count(sub.capacity),
        fill,
        in_flight,
        count(sub.delivered),
        count(sub.dropped),
        per_s(|r| r.fill_per_s),
        per_s(|r| r.drain_per_s),
        per_s(|r| r.drop_per_s),
        radar
            .as_ref()
            .map_or_else(|| "-".to_string(), Radar::time_to_full_label),
        radar.as_ref().map_or("-", |r| r.verdict.label()),
    )
}

/// `text` with its control characters escaped, cut to `width` characters, with `…` when cut.
fn cut(text: &str, width: usize) -> String {
    let text = escape_controls(text);
    if text.chars().count() <= width {
        text.to_string()
    } else {
        let mut s: String = text.chars().take(width - 1).collect();
        s.push('…');
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard::{StatsSort, SubscriptionStats};

    fn stats_at(uptime_s: f64, published: u64, delivered: u64) -> EndpointStats {
        let mut s = EndpointStats::default();
        s.snapshot.uptime_s = uptime_s;
        s.snapshot.totals.published = published;
        s.snapshot.totals.delivered = delivered;
        s.snapshot.subscriptions.push(SubscriptionStats {
            id: 7,
            name: "a-very-long-subscription-name".into(),
            filter: "x/#".into(),
            policy: "drop-newest".into(),
            capacity: 10,
            depth: 5,
            delivered,
            ..Default::default()
        });
        s.selection.sort = StatsSort::Id.name().into();
        s
    }

    #[test]
    fn rates_come_from_two_snapshots_and_not_across_a_restart() {
        let a = stats_at(10.0, 100, 50);
        let b = stats_at(12.0, 300, 150);
        let r = interval_rates(&a, &b).unwrap();
        assert_eq!((r.published_per_s, r.delivered_per_s), (100.0, 50.0));
        let radar = radar_of(Some(&a), &b, 7).unwrap();
        assert_eq!((radar.drain_per_s, radar.drop_per_s), (50.0, 0.0));
        let restarted = stats_at(1.0, 5, 5);
        assert!(interval_rates(&b, &restarted).is_none());
    }

    #[test]
    fn the_radar_compares_with_the_snapshot_about_five_seconds_old() {
        let mut base = RadarBase::default();
        for t in [10.0, 11.0, 13.0, 15.0, 16.0, 17.0] {
            base.push(stats_at(t, 0, 0));
        }
        // At 17 s: 11 s is the newest at least 5 s old.
        assert_eq!(base.base().unwrap().snapshot.uptime_s, 11.0);
        // A queue with messages and no delivery for 6 s is stalled.
        let mut stuck = stats_at(17.0, 0, 0);
        stuck.snapshot.subscriptions[0].depth = 9;
        let radar = radar_of(base.base(), &stuck, 7).unwrap();
        assert_eq!(radar.verdict.label(), "STALLED");
    }

    #[test]
    fn the_table_shows_totals_rates_and_rows() {
        let a = stats_at(10.0, 100, 50);
        let b = stats_at(12.0, 300, 150);
        let text = table_text("127.0.0.1:1", &b, Some(&a), true);
        assert!(text.contains("published 300 (0/s)"), "{text}");
        assert!(text.contains("a-very-long-sub…"), "{text}");
        assert!(text.contains(" 50% "), "{text}");
        let row = text.lines().nth(3).unwrap();
        let tail: Vec<&str> = row.split_whitespace().rev().take(5).collect();
        assert_eq!(
            tail,
            ["ok", "-", "0", "50", "0"],
            "DROP/S OUT/S IN/S, FULL IN, STATE: {row}"
        );
    }

    #[test]
    fn an_acknowledged_subscription_shows_in_flight_against_the_window_and_its_stall() {
        let mut a = stats_at(10.0, 100, 50);
        let mut b = stats_at(12.0, 300, 50);
        for s in [&mut a, &mut b] {
            let sub = &mut s.snapshot.subscriptions[0];
            sub.in_flight = 16;
            sub.ack = Some(switchyard::AckStats {
                max_in_flight: 16,
                in_flight: 16,
                ..Default::default()
            });
            s.snapshot.totals.in_flight = 16;
            s.snapshot.totals.ack.redelivered = 7;
        }
        b.snapshot.subscriptions[0]
            .ack
            .as_mut()
            .unwrap()
            .stalled_receivers = 3;
        let text = table_text("127.0.0.1:1", &b, Some(&a), true);
        assert!(
            text.contains("in flight 16 on acknowledged subscriptions"),
            "{text}"
        );
        assert!(text.contains("redelivered 7 "), "{text}");
        let row = text.lines().nth(4).unwrap();
        assert!(row.contains(" 16/16 "), "{row}");
        assert!(row.trim_end().ends_with("WINDOW"), "{row}");
        // A plain broker's table has no in-flight line, and `-` in the column.
        let plain = table_text("127.0.0.1:1", &stats_at(12.0, 300, 150), None, false);
        assert!(!plain.contains("in flight"), "{plain}");
    }

    #[test]
    fn text_from_the_endpoint_reaches_the_terminal_with_control_characters_escaped() {
        let mut b = stats_at(12.0, 300, 150);
        let evil = "evil\x1b[2J\x1b[31m\u{9b}31m\u{202e}x\x07";
        b.snapshot.taken_at = evil.into();
        b.selection.sort = evil.into();
        b.selection.filter = Some(evil.into());
        let sub = &mut b.snapshot.subscriptions[0];
        sub.name = format!("mqtt/{evil}");
        sub.filter = format!("a/{evil}/#");
        sub.policy = evil.into();
        let text = table_text("127.0.0.1:1", &b, None, false);
        let raw: Vec<char> = text
            .chars()
            .filter(|&c| (c.is_control() && c != '\n') || ('\u{202a}'..='\u{202e}').contains(&c))
            .collect();
        assert!(raw.is_empty(), "raw control characters {raw:?} in {text:?}");
        assert!(text.contains("evil\\x1b[2J"), "{text}");
    }
}
