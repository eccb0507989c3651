//! The command line of `switchyard load`: every option, its default, and the checks that make a bad
//! value exit with status 2 and a message naming the option.
//!
//! Single values are checked by clap `value_parser`s (so clap names the option in its error); checks that
//! involve two options at once live in [`LoadArgs::validate`], which returns a `clap::Error` of the same
//! kind so the exit status and message format stay the same.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::error::ErrorKind;
use switchyard::{AckOptions, OverflowPolicy, ParsePriorityError, Priority, ReplayFrom};

use super::ack::{AckPlan, parse_share};
use super::memory::{self, Estimate};
use super::replay::{JoinAt, LateJoinPlan, LogBounds, ReplayPlan, parse_replay_from};
use super::workload::{FilterMode, PriorityMix};
use crate::cli_args::parse_byte_size;
use crate::export::OutputFile;

/// Default queue capacity of each subscription: room for a 1→1 run to batch. A queue's slots are
/// allocated when its first message arrives (16 bytes each, so 4 KiB at 256); an idle subscription
/// costs about 870 B.
pub const DEFAULT_CAPACITY: u64 = 256;

/// Which broker the generator drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EngineKind {
    /// The switchyard core (the thing being measured).
    Switchyard,
    /// A deliberately naive baseline: one mutex-guarded Vec of (filter, channel) scanned linearly on
    /// every publish with `switchyard::filter_matches`. Only for comparison in `--scenarios`.
    Naive,
    /// The hand-written floor: a mutex-held map of exact topics, a bounded queue and a ready flag per
    /// subscription, a ready list per consumer (see `load/floor.rs`). Exact filters only.
    Floor,
    /// The floor with each subscription's queue allocated at its first message, as the core's lanes
    /// are (see `load/floor.rs`). Exact filters only.
    FloorLazy,
}

impl EngineKind {
    /// The hand-written floor, eager or lazy: exact topics, no acknowledgements, no drop-oldest.
    pub fn is_floor(self) -> bool {
        matches!(self, Self::Floor | Self::FloorLazy)
    }
}

/// `--slow N:DELAY`: N subscriptions whose consumers take DELAY per message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlowSpec {
    /// How many subscriptions are slow (the first N, by index).
    pub subscriptions: u32,
    /// Time each of their messages takes to consume.
    pub delay: Duration,
}

/// Options of `switchyard load`.
///
/// Topics are `load/p<k>/t<j>`: topic `j` (0-based, `--topics` of them) belongs to publisher
/// `k = j mod publishers`; each publisher cycles at random (from `--seed`) over its own topics, or
/// shares topic `k mod topics` when there are fewer topics than publishers.
#[derive(Debug, Clone, clap::Args)]
#[command(
    after_help = "Exit status: 0 success (also after Ctrl-C, which still drains and reports); \
                  1 runtime failure, including books that do not balance; 2 bad arguments, or \
                  subscriptions that would need more memory than is available (lower --capacity \
                  or --subscribers).\n\n\
                  Example: switchyard load --publishers 2 --subscribers 1000 --filters mixed \
                  --duration 5s --slow 3:1ms --json run.json"
)]
pub struct LoadArgs {
    /// Publisher threads.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub publishers: u32,

    /// Subscriptions (pooled: a few consumer threads serve all of them, so 100000 is fine).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    pub subscribers: u32,

    /// Competing receivers per subscription (each message of a subscription goes to one of them).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub receivers: u32,

    /// Distinct topics, `load/p<publisher>/t<topic>`, spread over the publishers.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    pub topics: u32,

    /// How subscription i chooses its filter. exact: topic `i mod topics`, `load/p<k>/t<j>`.
    /// wildcard: `load/+/t<j>` with j = i mod topics, except every 32nd subscription (i mod 32 = 31)
    /// takes `load/p<k>/#` (all topics of publisher k = (i/32) mod min(publishers, topics)).
    /// mixed: even i as exact, odd i as wildcard.
    #[arg(long, value_enum, default_value_t = FilterMode::Exact)]
    pub filters: FilterMode,

    /// Payload size in bytes (at least 8: the first 8 carry the publish timestamp).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(8..=16 * 1024 * 1024))]
    pub payload: u64,

    /// Total publish rate over all publishers, messages per second; 0 = as fast as possible.
    #[arg(long, default_value_t = 0)]
    pub rate: u64,

    /// How long to publish (`10s`, `500ms`, `1m`). Not together with --messages.
    #[arg(long, default_value = "10s", value_parser = parse_positive_duration, conflicts_with = "messages")]
    pub duration: Duration,

    /// Publish exactly this many messages in total (split over the publishers), then stop.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub messages: Option<u64>,

    /// Queue capacity of each subscription, in messages. A subscription's slots are allocated when
    /// its first message arrives (16 bytes each: 4 KiB at the default 256); an idle subscription
    /// costs about 870 B.
    #[arg(long, default_value_t = DEFAULT_CAPACITY, value_parser = clap::value_parser!(u64).range(1..=1 << 24))]
    pub capacity: u64,

    /// Allocate every subscription's slots when it is made, not at its first message
    /// (`SubscriptionOptions::preallocate`): the first pass over many topics then writes no new
    /// memory, at the price of the slots' memory up front. Switchyard engine only (the floors choose
    /// with --engine floor, which preallocates, and floor-lazy, which does not).
    #[arg(long)]
    pub preallocate: bool,

    /// Overflow policy of every subscription: drop-newest, drop-oldest, block (waits up to 1s) or
    /// block:<timeout> such as block:250ms.
    #[arg(long, default_value = "drop-newest", value_parser = parse_policy)]
    pub policy: OverflowPolicy,

    /// Publish a mix of priorities, as weights: `low:1,normal:6,high:2,critical:1` (names not given
    /// weigh 0). Each subscription gets one lane per priority used, each of --capacity messages.
    /// Default: every message Normal, through the plain publish path.
    #[arg(long, value_name = "MIX", value_parser = parse_priorities)]
    pub priorities: Option<PriorityMix>,

    /// Publish every message as retained (the last message per topic is kept; costs a mutex per
    /// publish, which is what this measures).
    #[arg(long)]
    pub retain: bool,

    /// Make the first N subscriptions slow: their consumers take DELAY per message (`3:1ms`), to show
    /// queues filling and dropping. The drain at the end runs at full speed. Default: none.
    #[arg(long, value_name = "N:DELAY", value_parser = parse_slow)]
    pub slow: Option<SlowSpec>,

    /// Seed of the random choices (topic order per publisher, payload bytes), so a run can be repeated.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,

    /// Latency sampling: every Nth message of each publisher carries a timestamp (nanoseconds since
    /// the run started, in payload bytes 0..8) and only those read the clock at the consumer, which
    /// keeps the measurement's cost far below 10% of throughput. 1 = every message, 0 = off.
    #[arg(long, default_value_t = 32)]
    pub latency_every: u32,

    /// Consumer threads serving all receivers round-robin. Default: one per receiver, at most the
    /// number of CPUs.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub consumer_threads: Option<u32>,

    /// Do not drain the queues at the end: what is still queued stays counted as depth.
    #[arg(long)]
    pub no_drain: bool,

    /// Write the final `switchyard.stats/v1` snapshot (with `latency_us` and `load`) to PATH,
    /// atomically; `-` writes it to stdout and moves the human summary to stderr. Default: none.
    #[arg(long, value_name = "PATH", value_parser = parse_output_path)]
    pub json: Option<PathBuf>,

    /// Interval of the snapshots written to --stats-jsonl (default 1s when --stats-jsonl is given).
    #[arg(long, value_parser = parse_positive_duration, requires = "stats_jsonl")]
    pub stats_every: Option<Duration>,

    /// Append one snapshot per --stats-every interval to PATH as JSON lines, flushed each time (the file
    /// is truncated when the run starts). Default: none.
    #[arg(long, value_name = "PATH", value_parser = parse_jsonl_path)]
    pub stats_jsonl: Option<PathBuf>,

    /// Interval of the progress line on stderr (updated in place on a terminal, one line per interval
    /// otherwise).
    #[arg(long, default_value = "1s", value_parser = parse_positive_duration)]
    pub progress_every: Duration,

    /// No progress line.
    #[arg(long)]
    pub no_progress: bool,

    /// Drive the MQTT 3.1.1 broker at HOST:PORT (an IP address or a host name that resolves:
    /// `switchyard serve`, Mosquitto, any other) with MQTT clients in place of an embedded broker: --publishers clients publish on `load/mqtt` and
    /// --subscribers clients subscribe to it. Of the other options only --messages or --duration,
    /// --rate, --payload, --latency-every, --qos, --mqtt-cafile and --json apply.
    #[arg(long, value_name = "HOST:PORT", conflicts_with = "scenarios",
          value_parser = crate::cli_args::parse_host_port)]
    pub mqtt: Option<String>,

    /// With --mqtt: connect over TLS, checking the broker's certificate against the CA certificates
    /// of PEM (the certificate must name the HOST of --mqtt).
    #[arg(long, value_name = "PEM", requires = "mqtt")]
    pub mqtt_cafile: Option<std::path::PathBuf>,

    /// With --mqtt: the QoS of every publish and subscription, 0 or 1.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=1), requires = "mqtt")]
    pub qos: u8,

    /// With --mqtt: every client logs in as USER (a broker with a password file; with an ACL, USER
    /// needs write and read on `load/mqtt`).
    #[arg(
        long,
        value_name = "USER",
        requires = "mqtt",
        requires = "mqtt_password"
    )]
    pub mqtt_user: Option<String>,

    /// With --mqtt-user: its password. Other local users can see it in the process list: for
    /// benchmark accounts only.
    #[arg(long, value_name = "PASSWORD", requires = "mqtt_user")]
    pub mqtt_password: Option<String>,

    /// Run the standard scenarios (1→1, 1→4, 4→4, 10k mixed filters, a slow consumer) against the
    /// switchyard core and the naive baseline, interleaved, and print one table.
    #[arg(long)]
    pub scenarios: bool,

    /// With --scenarios: how long each scenario run publishes.
    #[arg(long, default_value = "1s", value_parser = parse_positive_duration, requires = "scenarios")]
    pub scenario_duration: Duration,

    /// With --scenarios: only the scenarios whose name contains TEXT (such as `ack` or `1→1`); the
    /// idle-memory rows are left out.
    #[arg(long, value_name = "TEXT", requires = "scenarios")]
    pub only: Option<String>,

    /// With --scenarios: repetitions of each scenario per engine, interleaved (A B A B).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=100), requires = "scenarios")]
    pub repeat: u32,

    /// Make every subscription acknowledged (at least once): a message stays in flight until its
    /// receiver acks it. Receivers ack each message, except the shares given to --nack-share,
    /// --timeout-share and --die-share. The summary and the JSON add acked, redelivered,
    /// dead-lettered and in flight, and the books gain in flight as a term.
    #[arg(long, conflicts_with_all = ["mqtt", "scenarios"])]
    pub ack: bool,

    /// With --ack: how long a receiver has to settle a delivery before it is delivered again
    /// (shorter than the library's 30s default, so a run with --timeout-share ends promptly).
    #[arg(long, default_value = "1s", value_parser = parse_positive_duration, requires = "ack")]
    pub ack_wait: Duration,

    /// With --ack: deliveries a message gets before it goes to the dead letters (dropped, reason
    /// max_deliveries) [default: no limit].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..), requires = "ack")]
    pub max_deliveries: Option<u32>,

    /// With --ack: the window of each subscription, messages in flight at most (a receiver that finds
    /// it full waits, and counts as stalled).
    #[arg(long, value_name = "N", default_value_t = AckOptions::DEFAULT_MAX_IN_FLIGHT,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(AckOptions::MAX_IN_FLIGHT)),
          requires = "ack")]
    pub max_in_flight: u32,

    /// With --ack: the share of receivers (0.1 or 10%) that nack every message they take, so it is
    /// delivered again at once [default: 0].
    #[arg(long, value_name = "SHARE", value_parser = parse_share, requires = "ack")]
    pub nack_share: Option<f64>,

    /// With --ack: the share of receivers that take messages and never settle them, so each comes
    /// back after --ack-wait [default: 0].
    #[arg(long, value_name = "SHARE", value_parser = parse_share, requires = "ack")]
    pub timeout_share: Option<f64>,

    /// With --ack: the share of receivers that die: each acks a batch but its last message, then
    /// drops its handle holding that one (handed back at once) and a new receiver takes its place
    /// [default: 0].
    #[arg(long, value_name = "SHARE", value_parser = parse_share, requires = "ack")]
    pub die_share: Option<f64>,

    /// Keep a replay log on the broker of every topic the run publishes on (`load/#`), at most
    /// MESSAGES messages: each publish takes a sequence number and is logged, which a run with only
    /// this option measures. With --replay, late joiners start from it. Default: no log.
    #[arg(long, value_name = "MESSAGES", value_parser = clap::value_parser!(u64).range(1..),
          conflicts_with_all = ["mqtt", "scenarios"])]
    pub replay_log: Option<u64>,

    /// With --replay-log: at most BYTES of topic and payload in the log (`1048576`, `512KiB`,
    /// `64MiB`, `1GiB`); the oldest messages are evicted past it.
    #[arg(long, value_name = "BYTES", default_value = "64MiB", value_parser = parse_byte_size,
          requires = "replay_log")]
    pub replay_log_bytes: u64,

    /// With --replay-log: evict messages older than DURATION (`30s`) [default: no age limit].
    #[arg(long, value_name = "DURATION", value_parser = parse_positive_duration, requires = "replay_log")]
    pub replay_log_age: Option<Duration>,

    /// Late joiners subscribe to `load/#` while the publishers run, and start from the replay log
    /// (needs --replay-log): `oldest` (all it holds), `last:N` (its last N messages) or `seq:N` (from
    /// sequence number N; what the log already evicted is told to them in-band as a gap). Each must
    /// get every message from its start to the end exactly once, or be told it missed it: the run
    /// exits 1 otherwise. Default: no late joiners.
    #[arg(long, value_name = "FROM", value_parser = parse_replay_from,
          conflicts_with_all = ["mqtt", "scenarios"])]
    pub replay: Option<ReplayFrom>,

    /// With --replay: how many late joiners subscribe (plain subscriptions, also with --ack, served by
    /// one thread of their own) [default: 1].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=64),
          requires = "replay")]
    pub late_joiners: Option<u32>,

    /// With --replay: when the late joiners subscribe, counted from the start of publishing
    /// [default: halfway: half of --duration, or once half of --messages are published].
    #[arg(long, value_name = "DURATION", value_parser = parse_positive_duration, requires = "replay")]
    pub join_after: Option<Duration>,

    /// The stats endpoint (--serve ADDR and its options).
    #[command(flatten)]
    pub serve: crate::endpoint::EndpointArgs,

    /// With --serve: keep the endpoint up this long after the run has finished and reported (or until
    /// Ctrl-C), so its final, settled numbers can still be read. Default: stop at once.
    #[arg(long, value_name = "DURATION", value_parser = parse_positive_duration, requires = "serve")]
    pub serve_linger: Option<Duration>,

    /// Broker to drive (hidden: the naive baseline is for comparison only).
    #[arg(long, value_enum, default_value_t = EngineKind::Switchyard, hide = true)]
    pub engine: EngineKind,
}

impl LoadArgs {
    /// Checks that involve more than one option. The error has clap's kinds and format, so it exits 2.
    pub fn validate(&self) -> Result<(), clap::Error> {
        if let Some(slow) = self.slow
            && slow.subscriptions > self.subscribers
        {
            return Err(invalid(format!(
                "--slow {}:…: asks for {} slow subscriptions but --subscribers is {}",
                slow.subscriptions, slow.subscriptions, self.subscribers
            )));
        }
        if self.engine == EngineKind::Naive && self.policy == OverflowPolicy::DropOldest {
            return Err(invalid(
                "--policy drop-oldest is not supported by --engine naive (a std channel cannot evict)".into(),
            ));
        }
        let shares = self.ack_shares();
        if shares.iter().sum::<f64>() > 1.0 + 1e-9 {
            return Err(invalid(format!(
                "--nack-share, --timeout-share and --die-share add up to {:.0}% of the receivers; \
                 at most 100%",
                100.0 * shares.iter().sum::<f64>()
            )));
        }
        if self.preallocate && self.engine != EngineKind::Switchyard {
            return Err(invalid(format!(
                "--preallocate is for --engine switchyard; --engine {} decides its own allocation \
                 (--engine floor preallocates, floor-lazy does not)",
                value_name(self.engine)
            )));
        }
        if self.engine.is_floor() {
            let engine = value_name(self.engine);
            if self.ack {
                return Err(invalid(format!(
                    "--ack is not supported by --engine {engine} (it has no acknowledgements)"
                )));
            }
            if self.filters != FilterMode::Exact {
                return Err(invalid(format!(
                    "--filters {} is not supported by --engine {engine} (it routes exact topics \
                     only); use --filters exact",
                    value_name(self.filters)
                )));
            }
            if self.policy == OverflowPolicy::DropOldest {
                return Err(invalid(format!(
                    "--policy drop-oldest is not supported by --engine {engine} (it drops the newest \
                     or blocks)"
                )));
            }
        }
        if let (Some(json), Some(jsonl)) = (&self.json, &self.stats_jsonl)
            && json != Path::new("-")
            && let (Ok(a), Ok(b)) = (OutputFile::resolve(json), OutputFile::resolve(jsonl))
            && a.same_file(&b)
        {
            let names = if json == jsonl {
                json.display().to_string()
            } else {
                format!("{} and {}", json.display(), jsonl.display())
            };
            return Err(invalid(format!(
                "--json and --stats-jsonl name the same file ({names}); the final JSON would \
                 overwrite the JSON lines. Give them different files"
            )));
        }
        self.validate_replay()?;
        if self.serve.serve.is_some() && (self.scenarios || self.engine != EngineKind::Switchyard) {
            return Err(invalid(
                "--serve needs the switchyard engine and a single run (not --scenarios, --engine naive or floor)"
                    .into(),
            ));
        }
        let total_receivers = u64::from(self.subscribers) * u64::from(self.receivers);
        if total_receivers > 10_000_000 {
            return Err(invalid(format!(
                "--subscribers × --receivers is {total_receivers}; at most 10000000 receiver handles"
            )));
        }
        Ok(())
    }

    /// The checks of `--replay-log` and `--replay` against the other options.
    fn validate_replay(&self) -> Result<(), clap::Error> {
        if self.replay.is_some() && self.replay_log.is_none() {
            return Err(invalid(
                "--replay needs --replay-log MESSAGES: late joiners start from the broker's replay \
                 log, and without --replay-log there is none"
                    .into(),
            ));
        }
        let flag = if self.replay.is_some() {
            "--replay"
        } else {
            "--replay-log"
        };
        if self.replay_log.is_some() && self.engine != EngineKind::Switchyard {
            return Err(invalid(format!(
                "{flag} is not supported by --engine {} (it has no replay log)",
                value_name(self.engine)
            )));
        }
        if self.replay.is_none() {
            return Ok(());
        }
        if self.no_drain {
            return Err(invalid(
                "--replay checks what each late joiner got once the queues are drained; leave out \
                 --no-drain"
                    .into(),
            ));
        }
        if let Some(after) = self.join_after
            && self.messages.is_none()
            && after >= self.duration
        {
            return Err(invalid(format!(
                "--join-after {} is not before the end of --duration {}: the late joiners would \
                 subscribe after the publishers stopped",
                humantime::format_duration(after),
                humantime::format_duration(self.duration)
            )));
        }
        Ok(())
    }

    /// `--replay-log` and `--replay` as the run uses them, or `None` without a log.
    pub fn replay_plan(&self) -> Option<ReplayPlan> {
        let max_messages = self.replay_log?;
        let join = match (self.join_after, self.messages) {
            (Some(after), _) => JoinAt::Elapsed(after),
            (None, Some(messages)) => JoinAt::Published(messages / 2),
            (None, None) => JoinAt::Elapsed(self.duration / 2),
        };
        Some(ReplayPlan {
            log: LogBounds {
                max_messages,
                max_bytes: self.replay_log_bytes,
                max_age: self.replay_log_age,
            },
            late_joiners: self.replay.map(|from| LateJoinPlan {
                joiners: self.late_joiners.unwrap_or(1),
                from,
                join,
            }),
        })
    }

    /// Refuses a run whose subscriptions need more memory than this process can have (see
    /// [`memory`](super::memory)), with the same exit status and format as a bad option. `--scenarios`
    /// runs its own fixed sizes and is not checked.
    pub fn check_memory(&self) -> Result<(), clap::Error> {
        if self.scenarios {
            return Ok(());
        }
        let Some(available) = memory::available() else {
            return Ok(());
        };
        Estimate::for_run(
            self.subscribers,
            self.capacity,
            self.receivers,
            self.priorities.as_ref(),
        )
        .check(&available)
        .map_err(invalid)
    }

    /// `--nack-share`, `--timeout-share` and `--die-share`, 0 where not given.
    fn ack_shares(&self) -> [f64; 3] {
        [self.nack_share, self.timeout_share, self.die_share].map(|s| s.unwrap_or(0.0))
    }

    /// The acknowledged run `--ack` asks for, or `None` without it.
    pub fn ack_plan(&self) -> Option<AckPlan> {
        self.ack.then(|| {
            let mut options = AckOptions::new()
                .ack_wait(self.ack_wait)
                .max_in_flight(self.max_in_flight);
            if let Some(n) = self.max_deliveries {
                options = options.max_deliveries(n);
            }
            let receivers = u64::from(self.subscribers) * u64::from(self.receivers);
            AckPlan::new(options, self.ack_shares(), receivers)
        })
    }

    /// Consumer threads to start: the option, or one per receiver up to the number of CPUs.
    pub fn effective_consumer_threads(&self) -> u32 {
        let receivers = u64::from(self.subscribers) * u64::from(self.receivers);
        match self.consumer_threads {
            Some(n) => n.min(u32::try_from(receivers).unwrap_or(u32::MAX)),
            None => {
                let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
                u32::try_from(receivers.min(cpus).max(1)).unwrap_or(1)
            }
        }
    }
}

/// An option value as it is spelled on the command line (`exact`, `naive`).
pub fn value_name(v: impl clap::ValueEnum) -> String {
    v.to_possible_value()
        .map_or_else(String::new, |p| p.get_name().to_string())
}

/// A refusal of options that parse but do not go together, exit status 2.
pub(super) fn invalid(message: String) -> clap::Error {
    clap::Error::raw(ErrorKind::ArgumentConflict, format!("{message}\n"))
}

/// A duration such as `10s`, `500ms` or `1m 30s`; zero is refused.
pub fn parse_positive_duration(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s.trim())
        .map_err(|e| format!("`{s}` is not a duration such as 10s or 500ms ({e})"))?;
    if d.is_zero() {
        return Err(format!(
            "`{s}` is zero; give a positive duration such as 10s or 500ms"
        ));
    }
    Ok(d)
}

fn parse_policy(s: &str) -> Result<OverflowPolicy, String> {
    s.parse::<OverflowPolicy>().map_err(|e| e.to_string())
}

/// `name:weight,...` over low, normal, high, critical; at least one weight above zero.
pub fn parse_priorities(s: &str) -> Result<PriorityMix, String> {
    let mut weights = [0u32; 4];
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, weight) = part
            .split_once(':')
            .ok_or_else(|| format!("`{part}` is not name:weight such as high:2"))?;
        let priority: Priority = name
            .parse()
            .map_err(|e: ParsePriorityError| e.to_string())?;
        let weight: u32 = weight
            .trim()
            .parse()
            .map_err(|_| format!("`{weight}` in `{part}` is not a whole-number weight"))?;
        weights[priority as usize] = weight;
    }
    if weights.iter().all(|w| *w == 0) {
        return Err(format!(
            "`{s}` gives every priority weight 0; use e.g. normal:8,high:2"
        ));
    }
    Ok(PriorityMix { weights })
}

/// `N:DELAY`, with N ≥ 1 and a positive DELAY.
pub fn parse_slow(s: &str) -> Result<SlowSpec, String> {
    let (n, delay) = s
        .split_once(':')
        .ok_or_else(|| format!("`{s}` is not N:DELAY such as 3:1ms"))?;
    let subscriptions: u32 = n
        .trim()
        .parse()
        .map_err(|_| format!("`{n}` in `{s}` is not a number of subscriptions"))?;
    if subscriptions == 0 {
        return Err(format!(
            "`{s}` asks for 0 slow subscriptions; leave --slow out instead"
        ));
    }
    let delay = parse_positive_duration(delay)?;
    Ok(SlowSpec {
        subscriptions,
        delay,
    })
}

/// Checks, before the run starts, that `s` can be written: a regular file or a new name (symbolic
/// links followed), in a directory where a file can be created (the atomic write creates a temporary
/// file there and renames it).
fn check_writable(s: &str) -> Result<PathBuf, String> {
    let path = PathBuf::from(s);
    OutputFile::resolve(&path)
        .and_then(|out| out.check_writable())
        .map_err(|e| crate::error_text::one_line(&e))?;
    Ok(path)
}

/// `--json`: `-` (stdout) or a path whose directory is writable.
pub fn parse_output_path(s: &str) -> Result<PathBuf, String> {
    if s == "-" {
        return Ok(PathBuf::from("-"));
    }
    check_writable(s)
}

/// `--stats-jsonl`: a path whose directory is writable (stdout is kept for the summary or --json).
fn parse_jsonl_path(s: &str) -> Result<PathBuf, String> {
    if s == "-" {
        return Err("--stats-jsonl needs a file path; `-` is not supported".into());
    }
    check_writable(s)
}

#[cfg(test)]
mod tests {
    #[test]
    fn priority_mixes_parse_as_weights_and_bad_ones_name_the_problem() {
        let mix = parse_priorities("low:1, normal:6,high:2,critical:1").unwrap();
        assert_eq!(mix.weights, [1, 6, 2, 1]);
        assert_eq!(mix.to_string(), "low:1,normal:6,high:2,critical:1");
        assert!(parse_priorities("high:0").unwrap_err().contains("weight 0"));
        assert!(
            parse_priorities("urgent:1")
                .unwrap_err()
                .contains("`urgent`")
        );
        assert!(
            parse_priorities("high")
                .unwrap_err()
                .contains("name:weight")
        );
        assert!(parse_priorities("high:x").unwrap_err().contains("`x`"));
    }

    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        load: LoadArgs,
    }

    fn parse(args: &[&str]) -> Result<LoadArgs, clap::Error> {
        let cli = Cli::try_parse_from(std::iter::once("load").chain(args.iter().copied()))?;
        cli.load.validate()?;
        Ok(cli.load)
    }

    fn error_of(args: &[&str]) -> String {
        parse(args).expect_err("should be refused").to_string()
    }

    #[test]
    fn defaults_are_one_to_one_for_ten_seconds_at_full_speed() {
        let a = parse(&[]).unwrap();
        assert_eq!(
            (a.publishers, a.subscribers, a.receivers, a.topics),
            (1, 1, 1, 1)
        );
        assert_eq!(a.duration, Duration::from_secs(10));
        assert_eq!(a.capacity, DEFAULT_CAPACITY);
        assert_eq!(a.policy, OverflowPolicy::DropNewest);
        assert_eq!(a.rate, 0);
        assert_eq!(a.messages, None);
        assert_eq!(a.engine, EngineKind::Switchyard);
    }

    #[test]
    fn zero_counts_are_refused_naming_the_option() {
        for opt in [
            "--publishers",
            "--subscribers",
            "--receivers",
            "--topics",
            "--capacity",
            "--messages",
        ] {
            let e = error_of(&[opt, "0"]);
            assert!(e.contains(opt), "{opt}: {e}");
        }
    }

    #[test]
    fn durations_parse_humantime_and_refuse_zero_and_garbage() {
        assert_eq!(
            parse(&["--duration", "500ms"]).unwrap().duration,
            Duration::from_millis(500)
        );
        assert_eq!(
            parse(&["--duration", "2s"]).unwrap().duration,
            Duration::from_secs(2)
        );
        assert!(error_of(&["--duration", "10x"]).contains("--duration"));
        assert!(error_of(&["--duration", "0s"]).contains("zero"));
        assert!(
            error_of(&["--stats-every", "fast", "--stats-jsonl", "/tmp/x.jsonl"])
                .contains("--stats-every")
        );
    }

    #[test]
    fn policies_parse_with_an_optional_block_timeout() {
        let a = parse(&["--policy", "block:250ms"]).unwrap();
        assert_eq!(
            a.policy,
            OverflowPolicy::Block {
                timeout: Duration::from_millis(250)
            }
        );
        assert_eq!(
            parse(&["--policy", "drop-oldest"]).unwrap().policy,
            OverflowPolicy::DropOldest
        );
        assert!(error_of(&["--policy", "drop-all"]).contains("--policy"));
    }

    #[test]
    fn slow_takes_a_count_and_a_delay_no_larger_than_the_subscriptions() {
        let a = parse(&["--subscribers", "4", "--slow", "2:1ms"]).unwrap();
        assert_eq!(
            a.slow,
            Some(SlowSpec {
                subscriptions: 2,
                delay: Duration::from_millis(1)
            })
        );
        assert!(error_of(&["--slow", "2:1ms"]).contains("--subscribers is 1"));
        assert!(error_of(&["--slow", "0:1ms"]).contains("--slow"));
        assert!(error_of(&["--slow", "1"]).contains("N:DELAY"));
        assert!(error_of(&["--slow", "1:soon"]).contains("--slow"));
    }

    #[test]
    fn messages_and_duration_exclude_each_other() {
        assert_eq!(parse(&["--messages", "10"]).unwrap().messages, Some(10));
        assert!(parse(&["--messages", "10", "--duration", "1s"]).is_err());
    }

    #[test]
    fn payload_must_hold_the_timestamp() {
        assert!(error_of(&["--payload", "7"]).contains("--payload"));
        assert_eq!(parse(&["--payload", "8"]).unwrap().payload, 8);
    }

    #[test]
    fn an_unwritable_json_path_is_refused_before_the_run() {
        let e = error_of(&["--json", "/nonexistent-dir/out.json"]);
        assert!(e.contains("/nonexistent-dir/out.json"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let ok = dir.path().join("out.json");
        let a = parse(&["--json", ok.to_str().unwrap()]).unwrap();
        assert_eq!(a.json.as_deref(), Some(ok.as_path()));
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "the probe file is removed"
        );
    }

    #[test]
    fn stats_every_needs_a_jsonl_path() {
        assert!(parse(&["--stats-every", "1s"]).is_err());
    }

    #[test]
    fn ack_options_need_ack_and_bad_values_name_the_option() {
        let a = parse(&["--ack", "--receivers", "4", "--die-share", "25%"]).unwrap();
        let plan = a.ack_plan().unwrap();
        assert_eq!(plan.dying, 1);
        assert_eq!(plan.ack_wait, Duration::from_secs(1));
        assert_eq!(plan.max_in_flight, AckOptions::DEFAULT_MAX_IN_FLIGHT);
        assert!(parse(&[]).unwrap().ack_plan().is_none());
        for opt in [
            "--nack-share",
            "--timeout-share",
            "--die-share",
            "--max-deliveries",
            "--ack-wait",
        ] {
            let value = if opt == "--ack-wait" { "1s" } else { "1" };
            let e = error_of(&[opt, value]);
            assert!(e.contains("--ack"), "{opt} without --ack: {e}");
        }
        assert!(error_of(&["--ack", "--nack-share", "150%"]).contains("--nack-share"));
        assert!(error_of(&["--ack", "--max-in-flight", "0"]).contains("--max-in-flight"));
        assert!(error_of(&["--ack", "--max-deliveries", "0"]).contains("--max-deliveries"));
        assert!(error_of(&["--ack", "--ack-wait", "0s"]).contains("zero"));
        let e = error_of(&["--ack", "--nack-share", "0.6", "--die-share", "0.6"]);
        assert!(e.contains("120%"), "{e}");
        assert!(error_of(&["--ack", "--engine", "floor"]).contains("--engine floor"));
        let e = error_of(&["--ack", "--engine", "floor-lazy"]);
        assert!(e.contains("--engine floor-lazy"), "{e}");
        assert!(error_of(&["--ack", "--scenarios"]).contains("--scenarios"));
    }

    #[test]
    fn only_needs_scenarios() {
        assert!(parse(&["--scenarios", "--only", "ack"]).is_ok());
        assert!(error_of(&["--only", "ack"]).contains("--scenarios"));
    }

    #[test]
    fn consumer_threads_default_to_receivers_capped_by_cpus() {
        let a = parse(&["--subscribers", "1", "--consumer-threads", "8"]).unwrap();
        assert_eq!(a.effective_consumer_threads(), 1);
        let b = parse(&["--subscribers", "100000"]).unwrap();
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
        assert_eq!(b.effective_consumer_threads(), cpus);
    }
}
