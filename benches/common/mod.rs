//! Helpers shared by the benches: run settings, the cross-thread rig, the naive broker baseline, and
//! the filter generator.
//!
//! Every bench measures switchyard beside its baselines in the *same* run, interleaved
//! (`A B C A B C ...`, one round per repetition), because the machines we run on are shared and noisy:
//! only ratios taken within one run mean anything. `scripts/bench-ratios.sh` turns criterion's
//! medians into those ratios.

// Each bench target compiles this module on its own and uses only part of it.
#![allow(dead_code)]

pub mod naive;
pub mod rig;

use std::time::Duration;

use criterion::{BenchmarkGroup, measurement::WallTime};

/// Run settings, read from the environment so that `scripts/bench-ratios.sh --quick` can shorten a
/// run without a second set of benches.
///
/// - `SWITCHYARD_BENCH_QUICK=1`: short warm-up and measurement (about a second per function).
/// - `SWITCHYARD_BENCH_REPS=N`: how many interleaved repetitions of each group (default 3).
/// - `SWITCHYARD_BENCH_SIZES=1,1000,...`: the routing table sizes (default 1, 1k, 100k, 1M).
#[derive(Debug, Clone)]
pub struct Settings {
    pub quick: bool,
    pub reps: usize,
    pub sizes: Vec<usize>,
}

impl Settings {
    pub fn from_env() -> Self {
        let quick =
            std::env::var("SWITCHYARD_BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0");
        let reps = std::env::var("SWITCHYARD_BENCH_REPS")
            .ok()
            .and_then(|v| v.parse().ok())
            .filter(|&n| n > 0)
            .unwrap_or(3);
        let sizes = std::env::var("SWITCHYARD_BENCH_SIZES")
            .ok()
            .map(|v| {
                v.split(',')
                    .filter_map(|s| s.trim().parse().ok())
                    .collect::<Vec<usize>>()
            })
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| vec![1, 1_000, 100_000, 1_000_000]);
        Self { quick, reps, sizes }
    }

    /// Applies the warm-up and measurement times; `full` is the measurement time of a normal run.
    /// Samples are flat (every sample runs the same number of iterations) and few (10): each
    /// iteration of the cross-thread benches is a round of many messages, and what we want from a
    /// sample is a median to divide by the baseline's, not a regression line.
    pub fn configure(&self, group: &mut BenchmarkGroup<'_, WallTime>, full: Duration) {
        group.sample_size(10);
        group.sampling_mode(criterion::SamplingMode::Flat);
        if self.quick {
            group.warm_up_time(Duration::from_millis(300));
            group.measurement_time(Duration::from_millis(700));
        } else {
            group.warm_up_time(Duration::from_millis(700));
            group.measurement_time(full);
        }
    }

    /// The parameter naming repetition `rep` in a benchmark id (`r0`, `r1`, ...).
    pub fn rep_name(rep: usize) -> String {
        format!("r{rep}")
    }
}

/// The routing benches' filter family: 5-level filters `app/<a>/<b>/<c>/metric`, with 1% of them
/// `app/<a>/+/<c>/metric` and 1% `app/<a>/<b>/#` (chosen by a mix of `a`, `b`, `c`, so wildcards
/// land under every prefix). The exact filters are unique for `i < 1M`; the wildcard ones may repeat
/// (several entries on one node), as they do in real tables.
pub fn generated_filter(i: usize) -> String {
    let a = i % 100;
    let b = (i / 100) % 100;
    let c = i / 10_000;
    match (a * 31 + b * 17 + c * 7) % 100 {
        37 => format!("app/{a}/+/{c}/metric"),
        71 => format!("app/{a}/{b}/#"),
        _ => format!("app/{a}/{b}/{c}/metric"),
    }
}

/// The topic every routing bench matches: filter 0, so it matches at every size, plus
/// `app/0/+/0/metric` (filter 6100) from 100k filters and `app/0/0/#` (filter 530000) at 1M.
pub const MATCHED_TOPIC: &str = "app/0/0/0/metric";

/// A filter in the same family that no generated filter equals (the last level differs), for
/// subscribe/unsubscribe benches: it lands next to installed filters, on their existing path.
pub fn fresh_filter(k: usize) -> String {
    format!(
        "app/{}/{}/{}/fresh",
        k % 100,
        (k / 100) % 100,
        (k / 10_000) % 100
    )
}
