//! `switchyard load`: the headless load generator.
//!
//! It drives an embedded broker with publisher threads and pooled consumer threads, shows progress on
//! stderr, and ends with a human summary (stdout) and optionally the final `switchyard.stats/v1`
//! snapshot as JSON, whose `load` section ([`report::LoadSection`]) holds the configuration and result.
//! A run whose books do not balance exits 1.
//!
//! - [`args`]: the command line and its validation;
//! - [`plan`]: the effective configuration of a run, as the JSON `load.config` section;
//! - [`workload`]: topics, filter assignment, payloads and the publisher loop;
//! - [`consumers`]: the pooled consumer threads;
//! - [`latency`]: timestamps in payloads and the HDR histograms;
//! - [`memory`]: the memory a run needs, checked against what is available before it starts;
//! - [`generator`]: one run from subscribe to final snapshot;
//! - [`progress`], [`report`]: what the user sees, with numbers written as in [`figures`];
//! - [`mqtt`]: `--mqtt`, the same load through real MQTT clients against any broker;
//! - [`ack`]: `--ack`, acknowledged subscriptions and the receivers that nack, time out or die;
//! - [`replay`], [`late_joiners`]: `--replay-log` and `--replay`, a replay log on the broker and the
//!   late joiners that start from it, each checked to get every message once or hear of it;
//! - [`engine`], [`naive`], [`naive_acked`], [`floor`]: the broker seam (with the acknowledged core),
//!   the naive baselines (plain and acknowledged) and the hand-written floor for comparison;
//! - [`scenarios`]: the standard scenario table (`--scenarios`).

mod ack;
mod args;
mod consumers;
mod engine;
mod figures;
mod floor;
mod generator;
mod late_joiners;
mod latency;
mod memory;
mod mqtt;
mod naive;
mod naive_acked;
mod plan;
mod progress;
mod replay;
mod report;
mod scenarios;
mod signals;
mod workload;

pub(crate) use args::parse_positive_duration;

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args as _;

use args::EngineKind;
pub use args::LoadArgs;
use engine::{AckedCoreEngine, CoreEngine};
use floor::FloorEngine;
use generator::{Observers, RunOutcome, execute};
use naive::NaiveEngine;
use naive_acked::NaiveAckedEngine;
use plan::Plan;
use switchyard::Broker;
use switchyard_observe::ObserveHandle;

use crate::endpoint::EndpointArgs;

/// How long between `--stats-jsonl` snapshots when `--stats-every` is not given.
const DEFAULT_STATS_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Runs `switchyard load`. Exit status: 0 success, 1 runtime failure (books off), 2 bad arguments.
pub fn run(args: LoadArgs) -> Result<ExitCode> {
    let checked = args
        .validate()
        .and_then(|()| scenarios::check_only(&args))
        .and_then(|()| args.check_memory());
    if let Err(e) = checked {
        let mut cmd = LoadArgs::augment_args(clap::Command::new("switchyard load"));
        let e = e.format(&mut cmd);
        let _ = e.print();
        return Ok(ExitCode::from(2));
    }
    signals::install();
    if let Some(broker) = &args.mqtt {
        return mqtt::run(&args, broker);
    }
    if args.scenarios {
        return scenarios::run(&args);
    }
    let plan = Plan::from_args(&args);
    let jsonl = match &args.stats_jsonl {
        Some(path) => {
            let file = crate::export::OutputFile::resolve(path)?.create()?;
            Some((file, args.stats_every.unwrap_or(DEFAULT_STATS_EVERY)))
        }
        None => None,
    };
    let observers = Observers {
        progress: (!args.no_progress).then_some(args.progress_every),
        jsonl,
    };
    let (outcome, endpoint) = execute_plan(&plan, observers, Some(&args.serve))?;
    let code = report(&outcome, args.json.as_deref());
    if let (Some(endpoint), Some(linger)) = (&endpoint, args.serve_linger) {
        eprintln!(
            "switchyard load: serving the final numbers on http://{} for {} (Ctrl-C stops)",
            endpoint.local_addr(),
            humantime::format_duration(linger)
        );
        signals::sleep_unless_interrupted(linger);
    }
    code
}

/// Runs `plan` on the engine it names (acknowledged with `--ack`), with the stats endpoint of
/// `serve` on the switchyard engines' broker; returns the outcome and the endpoint, still up.
fn execute_plan(
    plan: &Plan,
    observers: Observers,
    serve: Option<&EndpointArgs>,
) -> Result<(RunOutcome, Option<ObserveHandle>)> {
    let start_endpoint = |broker: &Broker| serve.map_or(Ok(None), |s| s.start(broker, Vec::new()));
    Ok(match (plan.engine, plan.ack) {
        (EngineKind::Switchyard, None) => {
            let engine = CoreEngine::new(plan.broker_options()).preallocating(plan.preallocate);
            let endpoint = start_endpoint(engine.broker())?;
            (execute(engine, plan, observers)?, endpoint)
        }
        (EngineKind::Switchyard, Some(ack)) => {
            let engine = AckedCoreEngine::new(ack.options(), plan.broker_options())
                .preallocating(plan.preallocate);
            let endpoint = start_endpoint(engine.broker())?;
            (execute(engine, plan, observers)?, endpoint)
        }
        (EngineKind::Naive, None) => (execute(NaiveEngine::default(), plan, observers)?, None),
        (EngineKind::Naive, Some(ack)) => (
            execute(NaiveAckedEngine::new(ack.options()), plan, observers)?,
            None,
        ),
        (EngineKind::Floor, _) => (execute(FloorEngine::default(), plan, observers)?, None),
        (EngineKind::FloorLazy, _) => (execute(FloorEngine::lazy_slots(), plan, observers)?, None),
    })
}

/// Prints the summary and writes the JSON; the exit status says whether the run was sound.
fn report(outcome: &RunOutcome, json: Option<&Path>) -> Result<ExitCode> {
    let summary = report::summary(&outcome.snapshot);
    let json_to_stdout = json == Some(Path::new("-"));
    if let Some(path) = json {
        crate::export::write_json_atomic(path, &outcome.snapshot)?;
    }
    if json_to_stdout {
        eprint!("{summary}");
    } else {
        let mut out = std::io::stdout().lock();
        out.write_all(summary.as_bytes())
            .context("writing the summary")?;
        out.flush().context("writing the summary")?;
    }
    if outcome.problems.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        for p in &outcome.problems {
            eprintln!("switchyard load: error: {p}");
        }
        Ok(ExitCode::FAILURE)
    }
}
