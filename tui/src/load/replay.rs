//! `switchyard load --replay-log` and `--replay`: a replay log on the broker under load, and late
//! joiners that subscribe while the publishers run and start from it.
//!
//! The log keeps every topic the run publishes on ([`LOG_FILTER`]), so every publish takes a sequence
//! number and is logged; on its own (`--replay-log` without `--replay`) a run measures what that
//! costs the publishers. With `--replay FROM` the run also has late joiners (see
//! [`super::late_joiners`]): each subscribes to [`LOG_FILTER`] too, at `--join-after`, starting from
//! the log, so the messages it must end up with are exactly the sequence numbers from its start to the
//! last publish, every one received once or told as missed.

use std::time::Duration;

use serde::{Serialize, Serializer};
use switchyard::{Filter, ReplayFrom, ReplayLogOptions};

/// The topics the log keeps and the late joiners subscribe to: every topic of the run.
pub const LOG_FILTER: &str = "load/#";

/// `--replay-log` and `--replay`, as the run uses them; the JSON `load.config.replay` section.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ReplayPlan {
    /// The log's bounds.
    pub log: LogBounds,
    /// The late joiners; null when only a log is asked for.
    pub late_joiners: Option<LateJoinPlan>,
}

/// The replay log's bounds (`--replay-log`, `--replay-log-bytes`, `--replay-log-age`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LogBounds {
    /// At most this many messages.
    pub max_messages: u64,
    /// At most this many bytes of topic and payload.
    pub max_bytes: u64,
    /// Messages older than this are evicted; null: no age limit.
    #[serde(rename = "max_age_ms", serialize_with = "millis")]
    pub max_age: Option<Duration>,
}

impl LogBounds {
    /// The library's options for the broker's log of [`LOG_FILTER`].
    pub fn options(&self) -> ReplayLogOptions {
        let filter = Filter::new(LOG_FILTER).expect("the log's filter is valid");
        let options = ReplayLogOptions::new(filter)
            .max_messages(self.max_messages)
            .max_bytes(self.max_bytes);
        match self.max_age {
            Some(age) => options.max_age(age),
            None => options,
        }
    }
}

/// `--replay`, `--late-joiners` and `--join-after`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LateJoinPlan {
    /// How many late joiners subscribe.
    #[serde(rename = "count")]
    pub joiners: u32,
    /// Where each starts in the log, as on the command line (`oldest`, `last:N`, `seq:N`).
    #[serde(serialize_with = "display")]
    pub from: ReplayFrom,
    /// When they subscribe.
    pub join: JoinAt,
}

/// When the late joiners subscribe: `{ "after_s": 0.5 }` or `{ "after_published": 5000 }`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub enum JoinAt {
    /// This long after publishing started (`--join-after`, or half of `--duration`).
    #[serde(rename = "after_s", serialize_with = "seconds")]
    Elapsed(Duration),
    /// Once the publishers have published this many messages (half of `--messages`).
    #[serde(rename = "after_published")]
    Published(u64),
}

/// `--replay`: `oldest`, `last:N` or `seq:N`, with N at least 1.
pub fn parse_replay_from(s: &str) -> Result<ReplayFrom, String> {
    const FORMS: &str = "oldest, last:N or seq:N";
    let s = s.trim();
    if s == "oldest" {
        return Ok(ReplayFrom::Oldest);
    }
    let (kind, n) = s
        .split_once(':')
        .ok_or_else(|| format!("`{s}` is not a start in the log; give {FORMS}"))?;
    let n: u64 = n
        .trim()
        .parse()
        .ok()
        .filter(|n| *n >= 1)
        .ok_or_else(|| format!("`{n}` in `{s}` is not a number of at least 1"))?;
    match kind.trim() {
        "last" => Ok(ReplayFrom::Last(n)),
        "seq" => Ok(ReplayFrom::Seq(n)),
        other => Err(format!("`{other}` in `{s}` is not a start; give {FORMS}")),
    }
}

fn millis<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    d.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .serialize(s)
}

fn seconds<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

fn display<S: Serializer>(from: &ReplayFrom, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_parse_as_on_the_command_line_and_bad_ones_say_what_is_accepted() {
        assert_eq!(parse_replay_from("oldest"), Ok(ReplayFrom::Oldest));
        assert_eq!(parse_replay_from("last:100"), Ok(ReplayFrom::Last(100)));
        assert_eq!(parse_replay_from("seq:1"), Ok(ReplayFrom::Seq(1)));
        assert!(
            parse_replay_from("newest")
                .unwrap_err()
                .contains("oldest, last:N or seq:N")
        );
        assert!(
            parse_replay_from("seq:0")
                .unwrap_err()
                .contains("at least 1")
        );
        assert!(parse_replay_from("last:x").unwrap_err().contains("`x`"));
        assert!(parse_replay_from("time:5").unwrap_err().contains("`time`"));
    }

    #[test]
    fn the_plan_serialises_the_bounds_the_start_and_the_join() {
        let plan = ReplayPlan {
            log: LogBounds {
                max_messages: 1000,
                max_bytes: 1 << 20,
                max_age: Some(Duration::from_secs(2)),
            },
            late_joiners: Some(LateJoinPlan {
                joiners: 2,
                from: ReplayFrom::Last(10),
                join: JoinAt::Elapsed(Duration::from_millis(500)),
            }),
        };
        let json = serde_json::to_value(plan).unwrap();
        assert_eq!(json["log"]["max_age_ms"], 2000);
        assert_eq!(json["late_joiners"]["from"], "last:10");
        assert_eq!(json["late_joiners"]["count"], 2);
        assert_eq!(json["late_joiners"]["join"]["after_s"], 0.5);
        let options = plan.log.options();
        assert_eq!(options.filter.as_str(), LOG_FILTER);
        assert_eq!(options.max_messages, 1000);
        let by_count = JoinAt::Published(50);
        assert_eq!(
            serde_json::to_value(by_count).unwrap()["after_published"],
            50
        );
    }
}
