//! One run of the generator: subscribe, start consumers and publishers, watch, stop, drain, snapshot.
//!
//! Threads are scoped ([`std::thread::scope`]), so every one of them is joined before [`execute`]
//! returns, even on an error path (which first tells them all to stop).

use std::fs::File;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::thread::{Scope, ScopedJoinHandle};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use switchyard::StatsSnapshot;

use super::ack::Role;
use super::consumers::{
    ConsumerCounters, ConsumerResult, PHASE_DRAINING, PHASE_RUNNING, PHASE_STOP, Slot, consume_loop,
};
use super::engine::{Engine, ReadyList};
use super::late_joiners::{self, JoinContext, LateJoiners};
use super::latency;
use super::plan::Plan;
use super::progress::{GeneratorTotals, Progress};
use super::report::{LoadResult, LoadSection, rss_bytes, thread_cpu_s};
use super::signals;
use super::workload::{
    Pacing, PublisherCounters, PublisherPlan, PublisherResult, filter_for, publish_loop,
    shared_payload, split, topic_name, topics_of_publisher,
};

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
    let subscribed = subscribe_all(&engine, plan, threads, capacity)?;
    let rss = RssReadings {
        start: rss_start,
        subscribed: rss_bytes(),
    };
    let publisher_plans = publisher_plans(&engine, plan, payload_len)?;
    // `--replay`: the late joiners' broker and plan; their thread counts as one more consumer.
    let late = plan
        .replay
        .and_then(|r| r.late_joiners)
        .map(|join| {
            let broker = engine
                .core_broker()
                .context("--replay needs the switchyard engine's replay log")?;
            anyhow::Ok((broker, join))
        })
        .transpose()?;
    let shared = Shared::new(plan.publishers, threads + usize::from(late.is_some()));
    let measure_latency = plan.latency_every > 0;

    let joined = std::thread::scope(|scope| -> Result<_> {
        let drain_wait = plan.ack.map_or(Duration::ZERO, |a| a.drain_wait());
        let consumers = spawn_consumers(
            scope,
            subscribed,
            &shared,
            start,
            measure_latency,
            drain_wait,
        )?;
        let publish_start = Instant::now();
        let publishers = spawn_publishers(scope, publisher_plans, &shared, start, publish_start)?;
        let late_joiners = match late {
            Some((broker, join)) => {
                let cx = JoinContext {
                    broker,
                    plan: join,
                    capacity,
                    policy: plan.policy,
                    publish_start,
                    stop: &shared.stop,
                    phase: &shared.phase,
                    publishers: &shared.publisher_counters,
                    counters: shared.consumer_counters[threads].clone(),
                };
                Some(spawn_late_joiners(scope, cx, &shared)?)
            }
            None => None,
        };
        let watch = Watch {
            engine: &engine,
            plan,
            rss,
            publish_start,
        };
        let (interrupted, jsonl_error) = watch.run(&publishers, &shared, &mut observers);
        let joined = join_all(
            publishers,
            consumers,
            late_joiners,
            &shared,
            plan,
            publish_start,
            interrupted,
        )?;
        match jsonl_error {
            Some(e) => Err(e),
            None => Ok(joined),
        }
    })?;
    Ok(final_outcome(&engine, plan, rss, joined))
}

/// The subscriptions made, with their receivers dealt out to the consumer threads.
struct Subscribed<E: Engine> {
    /// One ready signal per consumer thread, when each subscription has one receiver.
    signals: Option<Vec<Arc<E::Ready>>>,
    /// The receivers each consumer thread serves.
    per_thread: Vec<Vec<Slot<E>>>,
}

/// Subscribes, and deals receivers out to consumer threads round-robin. With one receiver per
/// subscription each subscription is served by exactly one thread, so it can carry that thread's
/// ready signal and the thread parks on the signal when idle instead of sleeping.
fn subscribe_all<E: Engine>(
    engine: &E,
    plan: &Plan,
    threads: usize,
    capacity: usize,
) -> Result<Subscribed<E>> {
    let signals: Option<Vec<Arc<E::Ready>>> = (E::SIGNALS_PUSHES && plan.receivers == 1)
        .then(|| (0..threads).map(|_| E::Ready::create()).collect());
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
        let role = |r: u32| {
            plan.ack.map_or(Role::Ack, |ack| {
                ack.role(i, plan.subscribers, r, plan.receivers)
            })
        };
        for r in 1..plan.receivers {
            let slot = Slot::new(E::add_receiver(&receiver), slow, role(r));
            per_thread[next_thread % threads].push(slot);
            next_thread += 1;
        }
        per_thread[next_thread % threads].push(Slot::new(receiver, slow, role(0)));
        next_thread += 1;
    }
    Ok(Subscribed {
        signals,
        per_thread,
    })
}

/// Publisher plans: handles made here so a bad topic fails before any thread starts.
fn publisher_plans<E: Engine>(
    engine: &E,
    plan: &Plan,
    payload_len: usize,
) -> Result<Vec<PublisherPlan<E>>> {
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
    Ok(publisher_plans)
}

/// The resident set size before and after subscribing.
#[derive(Clone, Copy)]
struct RssReadings {
    start: Option<u64>,
    subscribed: Option<u64>,
}

/// What the threads of a run share with the thread that watches them.
struct Shared {
    /// Tells the publishers to stop.
    stop: AtomicBool,
    /// Tells the consumers to run, drain or stop.
    phase: AtomicU8,
    publisher_counters: Vec<PublisherCounters>,
    consumer_counters: Vec<Arc<ConsumerCounters>>,
}

impl Shared {
    fn new(publishers: u32, consumer_threads: usize) -> Self {
        Self {
            // A signal during setup: the publishers start stopped and publish nothing.
            stop: AtomicBool::new(signals::interrupted()),
            phase: AtomicU8::new(PHASE_RUNNING),
            publisher_counters: (0..publishers)
                .map(|_| PublisherCounters::default())
                .collect(),
            consumer_counters: (0..consumer_threads)
                .map(|_| Arc::new(ConsumerCounters::default()))
                .collect(),
        }
    }

    /// Stops every thread at once (a thread failed to start).
    fn abort(&self) {
        self.stop.store(true, Ordering::Relaxed);
        self.phase.store(PHASE_STOP, Ordering::Release);
    }

    /// The threads' own counts so far, for the progress line.
    fn totals(&self) -> GeneratorTotals {
        let publishers = &self.publisher_counters;
        GeneratorTotals {
            published: publishers
                .iter()
                .map(|c| c.published.load(Ordering::Relaxed))
                .sum(),
            delivered: self
                .consumer_counters
                .iter()
                .map(|c| c.delivered.load(Ordering::Relaxed))
                .sum(),
            dropped: publishers
                .iter()
                .map(|c| c.dropped.load(Ordering::Relaxed))
                .sum(),
        }
    }
}

type ConsumerHandle<'scope, E> = ScopedJoinHandle<'scope, ConsumerResult<E>>;
type LateJoinersHandle<'scope> = ScopedJoinHandle<'scope, LateJoiners>;
type PublisherHandle<'scope> = ScopedJoinHandle<'scope, PublisherDone>;

/// What a publisher thread hands back: what it published, when its last publish ended, and the CPU
/// seconds it ran until then (`None` off Linux).
struct PublisherDone {
    result: PublisherResult,
    end: Instant,
    cpu: Option<f64>,
}

/// Starts one consumer thread per group of receivers.
fn spawn_consumers<'scope, E: Engine>(
    scope: &'scope Scope<'scope, '_>,
    subscribed: Subscribed<E>,
    shared: &'scope Shared,
    start: Instant,
    measure_latency: bool,
    drain_wait: Duration,
) -> Result<Vec<ConsumerHandle<'scope, E>>> {
    let mut consumers = Vec::with_capacity(subscribed.per_thread.len());
    for (t, slots) in subscribed.per_thread.into_iter().enumerate() {
        let counters = shared.consumer_counters[t].clone();
        let signal = subscribed.signals.as_ref().map(|s| s[t].clone());
        let phase = &shared.phase;
        let spawned = std::thread::Builder::new()
            .name(format!("consumer-{t}"))
            .spawn_scoped(scope, move || {
                consume_loop(
                    slots,
                    start,
                    measure_latency,
                    phase,
                    counters,
                    signal,
                    drain_wait,
                )
            });
        match spawned {
            Ok(h) => consumers.push(h),
            Err(e) => {
                shared.abort();
                return Err(anyhow!(e).context("starting a consumer thread"));
            }
        }
    }
    Ok(consumers)
}

/// Starts the late joiners' thread (`--replay`).
fn spawn_late_joiners<'scope>(
    scope: &'scope Scope<'scope, '_>,
    cx: JoinContext<'scope>,
    shared: &Shared,
) -> Result<LateJoinersHandle<'scope>> {
    std::thread::Builder::new()
        .name("late-joiners".into())
        .spawn_scoped(scope, move || late_joiners::run(cx))
        .map_err(|e| {
            shared.abort();
            anyhow!(e).context("starting the late joiners' thread")
        })
}

/// Starts the publisher threads; each returns what it published and when it finished.
///
/// A thread's publishing ends with its last publish: its handles are dropped after that instant, so
/// tearing down 100,000 handles (the `Publisher`s' counts folded, their routes let go) is not counted
/// as time spent publishing, on any engine. What churning handles costs is measured on its own
/// (`benches/handles.rs`).
fn spawn_publishers<'scope, E: Engine>(
    scope: &'scope Scope<'scope, '_>,
    publisher_plans: Vec<PublisherPlan<E>>,
    shared: &'scope Shared,
    start: Instant,
    publish_start: Instant,
) -> Result<Vec<PublisherHandle<'scope>>> {
    let mut publishers = Vec::new();
    for (p, pplan) in publisher_plans.into_iter().enumerate() {
        let (stop, counters) = (&shared.stop, &shared.publisher_counters[p]);
        let spawned = std::thread::Builder::new()
            .name(format!("publisher-{p}"))
            .spawn_scoped(scope, move || {
                let cpu_start = thread_cpu_s();
                let mut pplan = pplan;
                let r = publish_loop(&mut pplan, start, publish_start, stop, counters);
                let end = Instant::now();
                let cpu = cpu_start.zip(thread_cpu_s()).map(|(a, b)| b - a);
                drop(pplan);
                PublisherDone {
                    result: r,
                    end,
                    cpu,
                }
            });
        match spawned {
            Ok(h) => publishers.push(h),
            Err(e) => {
                shared.abort();
                return Err(anyhow!(e).context("starting a publisher thread"));
            }
        }
    }
    Ok(publishers)
}

/// The watching thread's view of the run while it publishes.
struct Watch<'a, E> {
    engine: &'a E,
    plan: &'a Plan,
    rss: RssReadings,
    publish_start: Instant,
}

impl<E: Engine> Watch<'_, E> {
    /// Watches until the publishers finish, the deadline passes or a signal arrives: draws progress
    /// and writes the periodic snapshots. Returns whether a signal ended it, and a failed
    /// `--stats-jsonl` write (which also ends it).
    fn run(
        &self,
        publishers: &[PublisherHandle<'_>],
        shared: &Shared,
        observers: &mut Observers,
    ) -> (bool, Option<anyhow::Error>) {
        let plan = self.plan;
        let mut progress = Progress::new(
            observers.progress.is_some(),
            observers.progress.unwrap_or_default(),
            self.publish_start,
        );
        let total_label = total_label(plan);
        let mut next_jsonl = observers
            .jsonl
            .as_ref()
            .map(|(_, every)| self.publish_start + *every);
        let mut jsonl_error = None;
        let interrupted = loop {
            let now = Instant::now();
            let elapsed = now.duration_since(self.publish_start);
            if signals::interrupted() {
                break true;
            }
            if publishers.iter().all(|h| h.is_finished())
                || plan.duration.is_some_and(|d| elapsed >= d)
            {
                break false;
            }
            progress.tick(now, elapsed, &total_label, shared.totals());
            if let (Some(at), Some((file, every))) = (next_jsonl, observers.jsonl.as_mut())
                && now >= at
            {
                if let Err(e) = self.append_snapshot(file, elapsed) {
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
        (interrupted, jsonl_error)
    }

    /// Appends a `--stats-jsonl` line: the broker's snapshot with the run so far as its `load`.
    fn append_snapshot(&self, file: &mut File, elapsed: Duration) -> Result<()> {
        let snap = self.engine.stats();
        let counted = LoadResult::counted(&snap);
        let result = LoadResult {
            publish_s: elapsed.as_secs_f64(),
            published_per_s: counted.published as f64 / elapsed.as_secs_f64(),
            delivered_per_s: counted.delivered as f64 / elapsed.as_secs_f64(),
            rss_start_bytes: self.rss.start,
            rss_subscribed_bytes: self.rss.subscribed,
            rss_end_bytes: rss_bytes(),
            ..counted
        };
        let snap = snap.with_load(LoadSection {
            config: self.plan.clone(),
            result,
        });
        crate::export::append_json_line(file, &snap)
    }
}

/// How long the run is, for the progress line: `10.0s` or `5000 msgs`.
fn total_label(plan: &Plan) -> String {
    match (plan.duration, plan.messages) {
        (Some(d), _) => format!("{:.1}s", d.as_secs_f64()),
        (None, Some(m)) => format!("{m} msgs"),
        (None, None) => "?".into(),
    }
}

/// What the threads did, once all are joined.
struct Joined<E: Engine> {
    published: PublisherResult,
    results: Vec<ConsumerResult<E>>,
    late: Option<LateJoiners>,
    publish_s: f64,
    /// CPU seconds of the publisher threads until their last publish, summed.
    publish_cpu_s: Option<f64>,
    drain_s: f64,
    interrupted: bool,
}

/// Stops the publishers and joins them, then lets the consumers and late joiners drain (or stop)
/// and joins them.
fn join_all<E: Engine>(
    publishers: Vec<PublisherHandle<'_>>,
    consumers: Vec<ConsumerHandle<'_, E>>,
    late_joiners: Option<LateJoinersHandle<'_>>,
    shared: &Shared,
    plan: &Plan,
    publish_start: Instant,
    interrupted: bool,
) -> Result<Joined<E>> {
    shared.stop.store(true, Ordering::Relaxed);
    let mut published = PublisherResult::default();
    let mut publish_end = publish_start;
    let mut panicked = false;
    let mut publish_cpu_s = Some(0.0);
    for h in publishers {
        match h.join() {
            Ok(PublisherDone { result, end, cpu }) => {
                published.published += result.published;
                published.dropped += result.dropped;
                publish_end = publish_end.max(end);
                publish_cpu_s = publish_cpu_s.zip(cpu).map(|(sum, c)| sum + c);
            }
            Err(_) => panicked = true,
        }
    }
    // Every publish happened before this store (the joins), so a consumer that sees DRAINING
    // and then finds its queues empty may stop: nothing more will arrive.
    shared.phase.store(
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
    let late = match late_joiners.map(ScopedJoinHandle::join) {
        Some(Ok(late)) => Some(late),
        Some(Err(_)) => {
            panicked = true;
            None
        }
        None => None,
    };
    if panicked {
        return Err(anyhow!("a publisher or consumer thread panicked"));
    }
    Ok(Joined {
        published,
        results,
        late,
        publish_s: publish_end.duration_since(publish_start).as_secs_f64(),
        publish_cpu_s,
        drain_s: if plan.drain {
            drain_start.elapsed().as_secs_f64()
        } else {
            0.0
        },
        interrupted,
    })
}

/// The final snapshot, taken while every receiver handle is still alive (dropping the last one
/// would unsubscribe and count what is queued as dropped), with the run's result and problems.
fn final_outcome<E: Engine>(
    engine: &E,
    plan: &Plan,
    rss: RssReadings,
    joined: Joined<E>,
) -> RunOutcome {
    let Joined {
        published,
        results,
        late,
        publish_s,
        publish_cpu_s,
        drain_s,
        interrupted,
    } = joined;
    let mut snapshot = engine.stats();
    let delivered_by_consumers: u64 = results.iter().map(|r| r.delivered).sum::<u64>()
        + late.as_ref().map_or(0, LateJoiners::taken);
    snapshot.latency_us = if plan.latency_every == 0 {
        None
    } else {
        latency::summarize(results.iter().map(|r| r.histogram.clone()))
    };
    let rss_end = rss_bytes();
    let balanced = snapshot.balances();
    let mut problems = problems(
        plan,
        &snapshot,
        balanced,
        &published,
        delivered_by_consumers,
        interrupted,
    );
    let late_joiners = late.as_ref().map(|late| {
        let (result, late_problems) = late.check(&snapshot);
        problems.extend(late_problems);
        result
    });
    let t = snapshot.totals;
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
        publish_cpu_s,
        published_per_cpu_s: publish_cpu_s
            .filter(|&c| c > 0.0)
            .map(|c| published.published as f64 / c),
        rss_start_bytes: rss.start,
        rss_subscribed_bytes: rss.subscribed,
        rss_end_bytes: rss_end,
        balanced: Some(balanced),
        late_joiners,
        ..LoadResult::counted(&snapshot)
    };
    let snapshot = snapshot.with_load(LoadSection {
        config: plan.clone(),
        result,
    });
    // Unsubscribes every subscription, after the snapshot.
    drop(results);
    drop(late);
    RunOutcome { snapshot, problems }
}

/// What is wrong at the end: books that do not balance, or counts the broker and the threads
/// disagree on.
fn problems(
    plan: &Plan,
    snapshot: &StatsSnapshot,
    balanced: bool,
    published: &PublisherResult,
    delivered_by_consumers: u64,
    interrupted: bool,
) -> Vec<String> {
    let t = &snapshot.totals;
    let mut problems = Vec::new();
    if !balanced {
        problems.push(
            "the books do not balance: matched != delivered + dropped + depth + in_flight"
                .to_string(),
        );
    }
    // With the endpoint's commands on, others may publish beside the publishers and take messages
    // through taps beside the consumers: the broker's counts are then at least the generator's.
    let agree = |broker: u64, generator: u64| {
        if plan.shared {
            broker >= generator
        } else {
            broker == generator
        }
    };
    if !agree(t.published, published.published) {
        problems.push(format!(
            "the broker counted {} publishes but the publishers made {}",
            t.published, published.published
        ));
    }
    if !agree(t.delivered, delivered_by_consumers) {
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
    problems
}
