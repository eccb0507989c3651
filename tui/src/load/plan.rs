//! The effective configuration of a run ([`Plan`]), from the command line, in the types the generator
//! uses; it serialises as the JSON `load.config` section.

use std::fmt;
use std::time::Duration;

use serde::{Serialize, Serializer};
use switchyard::{BrokerOptions, OverflowPolicy};

use super::ack::AckPlan;
use super::args::{EngineKind, LoadArgs, SlowSpec};
use super::replay::ReplayPlan;
use super::workload::{FilterMode, PriorityMix};

/// The effective configuration of a run, in the types the generator uses. It serialises as the JSON
/// `load.config` section, with units in the field names there (`payload_bytes`, `rate_per_s`,
/// `duration_s`) and the policy, `--slow` and `--priorities` written as on the command line.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// Which broker: `switchyard` or `naive`.
    pub engine: EngineKind,
    /// Publisher threads.
    pub publishers: u32,
    /// Subscriptions.
    pub subscribers: u32,
    /// Receivers per subscription.
    pub receivers: u32,
    /// Consumer threads serving the receivers.
    pub consumer_threads: u32,
    /// Distinct topics.
    pub topics: u32,
    /// Filter assignment.
    pub filters: FilterMode,
    /// Payload bytes.
    #[serde(rename = "payload_bytes")]
    pub payload: u64,
    /// Total messages per second asked for, 0 = flat out.
    #[serde(rename = "rate_per_s")]
    pub rate: u64,
    /// Publishing time (null when bounded by `messages`).
    #[serde(rename = "duration_s", serialize_with = "seconds")]
    pub duration: Option<Duration>,
    /// Total messages (null when bounded by `duration_s`).
    pub messages: Option<u64>,
    /// Queue capacity per subscription.
    pub capacity: u64,
    /// `--preallocate`: every subscription's slots are allocated when it is made.
    pub preallocate: bool,
    /// Overflow policy, written as on the command line (`block:250ms`).
    #[serde(serialize_with = "display")]
    pub policy: OverflowPolicy,
    /// Slow subscriptions, if any: `{ "subscriptions", "delay_ms" }`.
    #[serde(serialize_with = "slow")]
    pub slow: Option<SlowSpec>,
    /// Seed of the random choices.
    pub seed: u64,
    /// One message in this many carries a timestamp (0 = latency not measured).
    pub latency_every: u32,
    /// Whether queues are drained at the end.
    pub drain: bool,
    /// `--priorities` as weights (`low:1,normal:6`), or null for plain Normal publishes.
    #[serde(serialize_with = "display_option")]
    pub priorities: Option<PriorityMix>,
    /// `--retain`: every message is published retained.
    pub retain: bool,
    /// `--ack` and its options: acknowledged subscriptions and who misbehaves; null without `--ack`.
    pub ack: Option<AckPlan>,
    /// `--replay-log` and `--replay`: the broker's replay log and the late joiners that start from
    /// it; null without `--replay-log`.
    pub replay: Option<ReplayPlan>,
    /// Whether others may publish and take messages beside the generator: `--serve` with a token file
    /// turns the endpoint's commands on (publishes, taps). The broker's counts are then at least the
    /// generator's, not equal to them. Not part of the JSON: it describes the run, not the load.
    #[serde(skip)]
    pub shared: bool,
}

impl Plan {
    /// The plan the command line asks for.
    pub fn from_args(a: &LoadArgs) -> Self {
        Self {
            engine: a.engine,
            publishers: a.publishers,
            subscribers: a.subscribers,
            receivers: a.receivers,
            consumer_threads: a.effective_consumer_threads(),
            topics: a.topics,
            filters: a.filters,
            payload: a.payload,
            rate: a.rate,
            duration: if a.messages.is_some() {
                None
            } else {
                Some(a.duration)
            },
            messages: a.messages,
            capacity: a.capacity,
            preallocate: a.preallocate,
            policy: a.policy,
            slow: a.slow,
            seed: a.seed,
            latency_every: a.latency_every,
            drain: !a.no_drain,
            priorities: a.priorities,
            retain: a.retain,
            ack: a.ack_plan(),
            replay: a.replay_plan(),
            shared: a.serve.serve_token_file.is_some(),
        }
    }

    /// How the switchyard engines make their broker: with the replay log `--replay-log` asks for.
    pub fn broker_options(&self) -> BrokerOptions {
        let options = BrokerOptions::new();
        match &self.replay {
            Some(replay) => options.replay_log(replay.log.options()),
            None => options,
        }
    }
}

/// Serialises an optional duration as seconds (`null` when absent).
fn seconds<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    d.map(|d| d.as_secs_f64()).serialize(s)
}

/// Serialises a value as its `Display` text (a policy as on the command line).
fn display<T: fmt::Display, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

/// Serialises an optional value as its `Display` text, or `null`.
fn display_option<T: fmt::Display, S: Serializer>(v: &Option<T>, s: S) -> Result<S::Ok, S::Error> {
    v.as_ref().map(ToString::to_string).serialize(s)
}

/// Serialises `--slow` as `{ "subscriptions": N, "delay_ms": D }`, or `null`.
fn slow<S: Serializer>(v: &Option<SlowSpec>, s: S) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct Slow {
        subscriptions: u32,
        delay_ms: f64,
    }
    v.map(|v| Slow {
        subscriptions: v.subscriptions,
        delay_ms: v.delay.as_secs_f64() * 1e3,
    })
    .serialize(s)
}
