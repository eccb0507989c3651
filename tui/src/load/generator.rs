//! One run of the generator: subscribe, start consumers and publishers, watch, stop, drain, snapshot.
//!
//! Threads are scoped ([`std::thread::scope`]), so every one of them is joined before [`execute`]
//! returns, even on an error path (which first tells them all to stop).

use std::fs::File;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::thread::ScopedJoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use serde::Serialize;
use switchyard::{OverflowPolicy, ReadySignal, StatsSnapshot};

use super::args::{EngineKind, FilterMode, LoadArgs, SlowSpec};
use super::consumers::{
    ConsumerCounters, ConsumerResult, PHASE_DRAINING, PHASE_RUNNING, PHASE_STOP, Slot, consume_loop,
};
use super::engine::Engine;
use super::latency;
use super::progress::{Counts, Progress};
use super::report::{self, LoadResult, LoadSection, rss_bytes};
use super::signals;
use super::workload::{
    Pacing, PriorityMix, PublisherCounters, PublisherPlan, PublisherResult, filter_for,
    publish_loop, shared_payload, split, topic_name, topics_of_publisher,
};

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
    #[serde(rename = "duration_s", serialize_with = "report::seconds")]
    pub duration: Option<Duration>,
    /// Total messages (null when bounded by `duration_s`).
    pub messages: Option<u64>,
    /// Queue capacity per subscription.
    pub capacity: u64,
    /// Overflow policy, written as on the command line (`block:250ms`).
    #[serde(serialize_with = "report::display")]
    pub policy: OverflowPolicy,
    /// Slow subscriptions, if any: `{ "subscriptions", "delay_ms" }`.
    #[serde(serialize_with = "report::slow")]
    pub slow: Option<SlowSpec>,
    /// Seed of the random choices.
    pub seed: u64,
    /// One message in this many carries a timestamp (0 = latency not measured).
    pub latency_every: u32,
    /// Whether queues are drained at the end.
    pub drain: bool,
    /// `--priorities` as weights (`low:1,normal:6`), or null for plain Normal publishes.
    #[serde(serialize_with = "report::display_option")]
    pub priorities: Option<PriorityMix>,
    /// `--retain`: every message is published retained.
    pub retain: bool,
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
            policy: a.policy,
            slow: a.slow,
            seed: a.seed,
            latency_every: a.latency_every,
            drain: !a.no_drain,
            priorities: a.priorities,
            retain: a.retain,
        }
    }
}

/// What a run reports to while it publishes.
pub struct Observers {
    /// The progress line (disabled for scenario runs and `--no-progress`).
    pub progress: Option<Duration>,
    /// `--stats-jsonl`: the file and the interval.
    pub jsonl: Option<(File, Duration)>,
}

/// The final snapshot and what the caller must check.
pub struct RunOutcome {
    /// The final `switchyard.stats/v1` snapshot with `latency_us` and `load`.
    pub snapshot: StatsSnapshot<LoadSection>,
    /// Problems found at the end (books, counts); empty when all is well.
    pub problems: Vec<String>,
}

/// While subscribing, how many subscriptions between two looks at the signal flag (about a
/// millisecond of work, so Ctrl-C is honoured at once and the look costs nothing measurable).
const SIGNAL_CHECK_EVERY: u32 = 1024;

/// How often the watching thread wakes to check the deadline, the publishers and signals.
const WATCH_EVERY: Duration = Duration::from_millis(5);

/// Runs the plan against `engine` and returns the final snapshot.
pub fn execute<E: Engine>(engine: E, plan: &Plan, mut observers: Observers) -> Result<RunOutcome> {
    let rss_start = rss_bytes();
    let start = Instant::now();
    let threads = plan.consumer_threads.max(1) as usize;
    let capacity =
        usize::try_from(plan.capacity).context("--capacity does not fit this machine")?;
    let payload_len =
        usize::try_from(plan.payload).context("--payload does not fit this machine")?;

    // Subscribe, and deal receivers out to consumer threads round-robin. With one receiver per
    // subscription each subscription is served by exactly one thread, so it can carry that thread's
    // ready signal and the thread parks on the signal when idle instead of sleeping.
    let signals: Option<Vec<Arc<ReadySignal>>> = (E::SIGNALS_PUSHES && plan.receivers == 1)
        .then(|| (0..threads).map(|_| ReadySignal::new()).collect());
    let mut per_thread: Vec<Vec<Slot<E>>> = (0..threads).map(|_| Vec::new()).collect();
    let mut next_thread = 0usize;
    for i in 0..plan.subscribers {
        // Subscribing millions takes seconds: a signal stops it here, and the run reports what it made.
        if i % SIGNAL_CHECK_EVERY == 0 && signals::interrupted() {
            break;
        }
        let filter = filter_for(i, plan.filters, plan.publishers, plan.topics);
        let receiver = match &signals {
            // One receiver per subscription here: the key is the slot this receiver is about to take.
            Some(signals) => engine.subscribe_signalled(
                &filter,
                capacity,
                plan.policy,
                &signals[next_thread % threads],
                per_thread[next_thread % threads].len() as u64,
            )?,
            None => engine.subscribe(&filter, capacity, plan.policy)?,
        };
        let slow = plan.slow.filter(|s| i < s.subscriptions).map(|s| s.delay);
        for _ in 1..plan.receivers {
            per_thread[next_thread % threads].push(Slot::new(E::add_receiver(&receiver), slow));
            next_thread += 1;
        }
        per_thread[next_thread % threads].push(Slot::new(receiver, slow));
        next_thread += 1;
    }
    let rss_subscribed = rss_bytes();

    // Publisher plans: handles made here so a bad topic fails before any thread starts.
    let payload = shared_payload(payload_len, plan.seed);
    let mut publisher_plans = Vec::with_capacity(plan.publishers as usize);
    for p in 0..plan.publishers {
        let handles = topics_of_publisher(p, plan.publishers, plan.topics)
            .into_iter()
            .map(|j| engine.publisher(&topic_name(j, plan.publishers)))
            .collect::<Result<Vec<_>>>()?;
        publisher_plans.push(PublisherPlan::<E> {
            handles,
            budget: plan.messages.map(|m| split(m, plan.publishers, p)),
            pacing: (plan.rate > 0).then(|| Pacing::for_publisher(p, plan.publishers, plan.rate)),
            latency_every: plan.latency_every,
            payload,
            seed: plan.seed.wrapping_add(u64::from(p) + 1),
            priorities: plan.priorities,
            retain: plan.retain,
        });
    }

    // A signal during setup: the publishers start stopped and publish nothing.
    let stop = AtomicBool::new(signals::interrupted());
    let phase = AtomicU8::new(PHASE_RUNNING);
    let publisher_counters: Vec<PublisherCounters> = (0..plan.publishers)
        .map(|_| PublisherCounters::default())
        .collect();
    let consumer_counters: Vec<Arc<ConsumerCounters>> = (0..threads)
        .map(|_| Arc::new(ConsumerCounters::default()))
        .collect();
    let config = plan.clone();
    let measure_latency = plan.latency_every > 0;

    let watched = std::thread::scope(|scope| -> Result<_> {
        let abort = || {
            stop.store(true, Ordering::Relaxed);
            phase.store(PHASE_STOP, Ordering::Release);
        };
        let mut consumers: Vec<ScopedJoinHandle<'_, ConsumerResult<E>>> =
            Vec::with_capacity(threads);
        for (t, slots) in per_thread.into_iter().enumerate() {
            let counters = consumer_counters[t].clone();
            let signal = signals.as_ref().map(|s| s[t].clone());
            let phase = &phase;
            let spawned = std::thread::Builder::new()
                .name(format!("consumer-{t}"))
                .spawn_scoped(scope, move || {
                    consume_loop(slots, start, measure_latency, phase, counters, signal)
                });
            match spawned {
                Ok(h) => consumers.push(h),
                Err(e) => {
                    abort();
                    return Err(anyhow!(e).context("starting a consumer thread"));
                }
            }
        }
        let publish_start = Instant::now();
        let mut publishers: Vec<ScopedJoinHandle<'_, (PublisherResult, Instant)>> = Vec::new();
        for (p, pplan) in publisher_plans.into_iter().enumerate() {
            let (stop, counters) = (&stop, &publisher_counters[p]);
            let spawned = std::thread::Builder::new()
                .name(format!("publisher-{p}"))
                .spawn_scoped(scope, move || {
                    let r = publish_loop(pplan, start, publish_start, stop, counters);
                    (r, Instant::now())
                });
            match spawned {
                Ok(h) => publishers.push(h),
                Err(e) => {
                    abort();
                    return Err(anyhow!(e).context("starting a publisher thread"));
                }
            }
        }

        // Watch: progress, periodic snapshots, the deadline, the budget, signals.
        let counts = || Counts {
            published: publisher_counters
                .iter()
                .map(|c| c.published.load(Ordering::Relaxed))
                .sum(),
            delivered: consumer_counters
                .iter()
                .map(|c| c.delivered.load(Ordering::Relaxed))
                .sum(),
            dropped: publisher_counters
                .iter()
                .map(|c| c.dropped.load(Ordering::Relaxed))
                .sum(),
        };
        let total_label = match (plan.duration, plan.messages) {
            (Some(d), _) => format!("{:.1}s", d.as_secs_f64()),
            (None, Some(m)) => format!("{m} msgs"),
            (None, None) => "?".into(),
        };
        let mut progress = Progress::new(
            observers.progress.is_some(),
            observers.progress.unwrap_or_default(),
            publish_start,
        );
        let mut next_jsonl = observers
            .jsonl
            .as_ref()
            .map(|(_, every)| publish_start + *every);
        let mut jsonl_error = None;
        let interrupted = loop {
            let now = Instant::now();
            let elapsed = now.duration_since(publish_start);
            if signals::interrupted() {
                break true;
            }
            if publishers.iter().all(|h| h.is_finished())
                || plan.duration.is_some_and(|d| elapsed >= d)
            {
                break false;
            }
            progress.tick(now, elapsed, &total_label, counts());
            if let (Some(at), Some((file, every))) = (next_jsonl, observers.jsonl.as_mut())
                && now >= at
            {
                let snap = engine.stats();
                let counted = LoadResult::counted(&snap);
                let result = LoadResult {
                    publish_s: elapsed.as_secs_f64(),
                    published_per_s: counted.published as f64 / elapsed.as_secs_f64(),
                    delivered_per_s: counted.delivered as f64 / elapsed.as_secs_f64(),
                    rss_start_bytes: rss_start,
                    rss_subscribed_bytes: rss_subscribed,
                    rss_end_bytes: rss_bytes(),
                    ..counted
                };
                let snap = snap.with_load(LoadSection {
                    config: config.clone(),
                    result,
                });
                if let Err(e) = crate::export::append_json_line(file, &snap) {
                    jsonl_error = Some(e);
                    break false;
                }
                next_jsonl = Some(at + *every);
            }
            let left = plan
                .duration
                .map_or(WATCH_EVERY, |d| d.saturating_sub(elapsed));
            std::thread::sleep(left.min(WATCH_EVERY));
        };
        progress.finish();

        stop.store(true, Ordering::Relaxed);
        let mut published = PublisherResult::default();
        let mut publish_end = publish_start;
        let mut panicked = false;
        for h in publishers {
            match h.join() {
                Ok((r, end)) => {
                    published.published += r.published;
                    published.dropped += r.dropped;
                    publish_end = publish_end.max(end);
                }
                Err(_) => panicked = true,
            }
        }
        // Every publish happened before this store (the joins), so a consumer that sees DRAINING
        // and then finds its queues empty may stop: nothing more will arrive.
        phase.store(
            if plan.drain && !panicked {
                PHASE_DRAINING
            } else {
                PHASE_STOP
            },
            Ordering::Release,
        );
        let drain_start = Instant::now();
        let mut results = Vec::with_capacity(consumers.len());
        for h in consumers {
            match h.join() {
                Ok(r) => results.push(r),
                Err(_) => panicked = true,
            }
        }
        if panicked {
            return Err(anyhow!("a publisher or consumer thread panicked"));
        }
        if let Some(e) = jsonl_error {
            return Err(e);
        }
        let publish_s = publish_end.duration_since(publish_start).as_secs_f64();
        let drain_s = if plan.drain {
            drain_start.elapsed().as_secs_f64()
        } else {
            0.0
        };
        Ok((published, results, publish_s, drain_s, interrupted))
    })?;
    let (published, results, publish_s, drain_s, interrupted) = watched;

    // The final snapshot, taken while every receiver handle is still alive (dropping the last one
    // would unsubscribe and count what is queued as dropped).
    let mut snapshot = engine.stats();
    let delivered_by_consumers: u64 = results.iter().map(|r| r.delivered).sum();
    snapshot.latency_us = if plan.latency_every == 0 {
        None
    } else {
        latency::summarize(results.iter().map(|r| r.histogram.clone()))
    };
    let rss_end = rss_bytes();
    let balanced = snapshot.balances();
    let t = snapshot.totals;
    let mut problems = Vec::new();
    if !balanced {
        problems
            .push("the books do not balance: matched != delivered + dropped + depth".to_string());
    }
    if t.published != published.published {
        problems.push(format!(
            "the broker counted {} publishes but the publishers made {}",
            t.published, published.published
        ));
    }
    if t.delivered != delivered_by_consumers {
        problems.push(format!(
            "the broker counted {} deliveries but the consumers took {}",
            t.delivered, delivered_by_consumers
        ));
    }
    if let Some(m) = plan.messages
        && !interrupted
        && published.published != m
    {
        problems.push(format!(
            "asked for {m} messages but {} were published",
            published.published
        ));
    }
    let result = LoadResult {
        complete: true,
        interrupted,
        publish_s,
        drain_s,
        published: published.published,
        published_per_s: if publish_s > 0.0 {
            published.published as f64 / publish_s
        } else {
            0.0
        },
        delivered_per_s: if publish_s + drain_s > 0.0 {
            t.delivered as f64 / (publish_s + drain_s)
        } else {
            0.0
        },
        rss_start_bytes: rss_start,
        rss_subscribed_bytes: rss_subscribed,
        rss_end_bytes: rss_end,
        balanced: Some(balanced),
        ..LoadResult::counted(&snapshot)
    };
    let snapshot = snapshot.with_load(LoadSection { config, result });
    drop(results); // unsubscribes every subscription, after the snapshot
    Ok(RunOutcome { snapshot, problems })
}
