//! What the generator publishes and who listens: topic names, filter assignment, payloads, and the
//! publisher threads' loop (pacing, message budget, timestamp stamping).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use switchyard::{Bytes, Priority};

use super::engine::Engine;
use super::latency;

/// How subscriptions choose their filters. See `--filters` in `--help` for who gets what.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FilterMode {
    /// Subscription `i` listens on exactly topic `i mod topics`.
    Exact,
    /// Wildcards only: `load/+/t<j>` (the same topic through `+`), and every 32nd subscription
    /// `load/p<k>/#` (all topics of one publisher that owns topics).
    Wildcard,
    /// Even subscriptions exact, odd subscriptions as in `wildcard`.
    Mixed,
}

/// The topic with index `j`: `load/p<k>/t<j>`, owned by publisher `k = j mod publishers`.
pub fn topic_name(j: u32, publishers: u32) -> String {
    format!("load/p{}/t{j}", j % publishers)
}

/// The topic indices publisher `p` publishes on: those it owns, or `p mod topics` when there are fewer
/// topics than publishers (then several publishers share a topic).
pub fn topics_of_publisher(p: u32, publishers: u32, topics: u32) -> Vec<u32> {
    if topics < publishers {
        return vec![p % topics];
    }
    (p..topics).step_by(publishers as usize).collect()
}

/// Every `WILDCARD_HASH_EVERY`th wildcard subscription takes a `#` filter over one publisher's topics;
/// the rest take `load/+/t<j>`. `#` subscriptions match many topics, so they are kept rare enough that a
/// 10k-subscription run measures routing rather than one huge fan-out.
pub const WILDCARD_HASH_EVERY: u32 = 32;

/// The filter of subscription `i` (see `--filters` in `--help`).
pub fn filter_for(i: u32, mode: FilterMode, publishers: u32, topics: u32) -> String {
    let exact = |i: u32| topic_name(i % topics, publishers);
    let wildcard = |i: u32| {
        if i % WILDCARD_HASH_EVERY == WILDCARD_HASH_EVERY - 1 {
            // Only publishers that own a topic (k < topics) have anything under `load/p<k>/`.
            format!(
                "load/p{}/#",
                (i / WILDCARD_HASH_EVERY) % publishers.min(topics)
            )
        } else {
            format!("load/+/t{}", i % topics)
        }
    };
    match mode {
        FilterMode::Exact => exact(i),
        FilterMode::Wildcard => wildcard(i),
        FilterMode::Mixed if i % 2 == 0 => exact(i),
        FilterMode::Mixed => wildcard(i),
    }
}

/// The payload every unstamped message shares: `payload` bytes, zero in 0..8 (no timestamp), the rest
/// random from the seed.
///
/// It is leaked on purpose: a `&'static` buffer makes `Bytes::from_static` clones free (no reference
/// count for publishers on different cores to fight over). One buffer per run, `payload` bytes.
pub fn shared_payload(payload: usize, seed: u64) -> &'static [u8] {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut buf = vec![0u8; payload];
    for b in buf.iter_mut().skip(latency::STAMP_BYTES) {
        *b = rng.u8(..);
    }
    Box::leak(buf.into_boxed_slice())
}

/// Counters a publisher thread shares with the progress line, on their own cache line.
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct PublisherCounters {
    /// Messages published so far.
    pub published: AtomicU64,
    /// Messages dropped because of this publisher's publishes.
    pub dropped: AtomicU64,
}

/// `--priorities`: how often each priority is published, as weights (`low:1,normal:6,high:2,critical:1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PriorityMix {
    /// Weights in the order of [`Priority::ALL`] (low, normal, high, critical); their sum is non-zero.
    pub weights: [u32; 4],
}

impl PriorityMix {
    /// Draws a priority with probability proportional to its weight.
    #[inline]
    pub fn pick(&self, rng: &mut fastrand::Rng) -> Priority {
        let total: u32 = self.weights.iter().sum();
        let mut x = rng.u32(..total);
        for (w, p) in self.weights.iter().zip(Priority::ALL) {
            if x < *w {
                return p;
            }
            x -= w;
        }
        Priority::Normal
    }
}

impl std::fmt::Display for PriorityMix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = Priority::ALL
            .iter()
            .zip(self.weights)
            .filter(|(_, w)| *w > 0)
            .map(|(p, w)| format!("{p}:{w}"))
            .collect();
        f.write_str(&parts.join(","))
    }
}

/// What one publisher thread does.
pub struct PublisherPlan<E: Engine> {
    /// One handle per topic it publishes on.
    pub handles: Vec<E::Publisher>,
    /// Messages to publish, or `None` until stopped.
    pub budget: Option<u64>,
    /// When its messages are due, or `None` for as fast as possible.
    pub pacing: Option<Pacing>,
    /// Every Nth message carries a timestamp (0: none).
    pub latency_every: u32,
    /// The shared unstamped payload.
    pub payload: &'static [u8],
    /// Seeds the topic choice.
    pub seed: u64,
    /// `--priorities`: the mix to publish with; `None` publishes plain (`Normal`) messages.
    pub priorities: Option<PriorityMix>,
    /// `--retain`: publish every message as retained.
    pub retain: bool,
}

/// When a paced publisher's messages are due: message `k` at `first + k × interval` after the run's
/// publish start.
///
/// `--rate` is the total over all publishers. With `P` publishers at `R` messages per second the run's
/// messages are due one every `1/R`, dealt round-robin: publisher `p` sends the run's messages
/// `p, p + P, p + 2P, ...`, each in the middle of its `1/R` slot. So a run of duration `D` publishes
/// `R × D` messages (rounded), none at the very start and none racing the deadline.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pacing {
    /// When this publisher's first message is due.
    pub first: Duration,
    /// Time between two messages of this publisher.
    pub interval: Duration,
}

impl Pacing {
    /// The pacing of publisher `p` of `publishers` sharing a total `rate` (messages per second > 0).
    pub fn for_publisher(p: u32, publishers: u32, rate: u64) -> Self {
        let slot = 1.0 / rate as f64;
        Self {
            first: Duration::from_secs_f64((f64::from(p) + 0.5) * slot),
            interval: Duration::from_secs_f64(f64::from(publishers) * slot),
        }
    }

    /// When message `k` of this publisher is due.
    fn due(&self, publish_start: Instant, k: u64) -> Instant {
        publish_start + self.first + self.interval.mul_f64(k as f64)
    }
}

/// What a publisher thread did.
#[derive(Debug, Clone, Copy, Default)]
pub struct PublisherResult {
    /// Messages published.
    pub published: u64,
    /// Messages dropped because of its publishes.
    pub dropped: u64,
}

/// Publishes until the budget is spent or `stop` is set. `start` is the run's start (the zero of the
/// latency stamps), `publish_start` the instant the pacing counts from (shared by every publisher).
pub fn publish_loop<E: Engine>(
    plan: &mut PublisherPlan<E>,
    start: Instant,
    publish_start: Instant,
    stop: &AtomicBool,
    counters: &PublisherCounters,
) -> PublisherResult {
    let mut rng = fastrand::Rng::with_seed(plan.seed);
    let topics = plan.handles.len();
    let budget = plan.budget.unwrap_or(u64::MAX);
    let every = u64::from(plan.latency_every);
    let mut published = 0u64;
    let mut dropped = 0u64;
    while published < budget && !stop.load(Ordering::Relaxed) {
        // A wait cut short by the stop publishes nothing: the run is over.
        if let Some(pacing) = plan.pacing
            && !pace(pacing.due(publish_start, published), stop)
        {
            break;
        }
        let payload = if every != 0 && published % every == 0 {
            latency::stamped_payload(plan.payload, start)
        } else {
            Bytes::from_static(plan.payload)
        };
        let t = if topics == 1 { 0 } else { rng.usize(..topics) };
        dropped += if plan.priorities.is_none() && !plan.retain {
            E::publish(&mut plan.handles[t], payload)
        } else {
            let priority = plan
                .priorities
                .map_or(Priority::Normal, |mix| mix.pick(&mut rng));
            E::publish_with(&mut plan.handles[t], payload, priority, plan.retain)
        } as u64;
        published += 1;
        // A store to this publisher's own cache line: about a nanosecond, and the progress line stays
        // exact even when each publish fans out to thousands of subscriptions.
        counters.published.store(published, Ordering::Relaxed);
        counters.dropped.store(dropped, Ordering::Relaxed);
    }
    counters.published.store(published, Ordering::Relaxed);
    counters.dropped.store(dropped, Ordering::Relaxed);
    PublisherResult { published, dropped }
}

/// Waits until `at`: sleeps while more than 200 µs remain (sleep overshoots by tens of µs), then
/// yields, so a paced publisher neither burns a core nor bunches its messages. Returns false when
/// `stop` ended the wait before `at`.
fn pace(at: Instant, stop: &AtomicBool) -> bool {
    loop {
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        let now = Instant::now();
        if now >= at {
            return true;
        }
        let left = at - now;
        if left > Duration::from_micros(200) {
            std::thread::sleep((left - Duration::from_micros(100)).min(Duration::from_millis(50)));
        } else {
            std::thread::yield_now();
        }
    }
}

/// Splits `total` over `parts` as evenly as possible (the first `total mod parts` get one more).
pub fn split(total: u64, parts: u32, index: u32) -> u64 {
    let parts = u64::from(parts);
    total / parts + u64::from(u64::from(index) < total % parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_filters_cycle_over_the_topics() {
        let f: Vec<_> = (0..4)
            .map(|i| filter_for(i, FilterMode::Exact, 2, 3))
            .collect();
        assert_eq!(f, ["load/p0/t0", "load/p1/t1", "load/p0/t2", "load/p0/t0"]);
    }

    #[test]
    fn wildcard_filters_use_plus_and_every_32nd_a_hash_over_one_publisher() {
        assert_eq!(filter_for(0, FilterMode::Wildcard, 2, 3), "load/+/t0");
        assert_eq!(filter_for(31, FilterMode::Wildcard, 2, 3), "load/p0/#");
        assert_eq!(filter_for(63, FilterMode::Wildcard, 2, 3), "load/p1/#");
    }

    #[test]
    fn mixed_filters_alternate_exact_and_wildcard() {
        assert_eq!(filter_for(0, FilterMode::Mixed, 1, 4), "load/p0/t0");
        assert_eq!(filter_for(1, FilterMode::Mixed, 1, 4), "load/+/t1");
        assert_eq!(filter_for(2, FilterMode::Mixed, 1, 4), "load/p0/t2");
        assert_eq!(filter_for(31, FilterMode::Mixed, 1, 4), "load/p0/#");
    }

    #[test]
    fn every_filter_matches_some_topic_that_is_published() {
        for mode in [FilterMode::Exact, FilterMode::Wildcard, FilterMode::Mixed] {
            for (publishers, topics) in [(1, 1), (3, 2), (2, 7), (4, 100)] {
                let published: Vec<String> = (0..publishers)
                    .flat_map(|p| topics_of_publisher(p, publishers, topics))
                    .map(|j| topic_name(j, publishers))
                    .collect();
                for i in 0..200 {
                    let f = filter_for(i, mode, publishers, topics);
                    assert!(
                        published.iter().any(|t| switchyard::filter_matches(&f, t)),
                        "{mode:?} {publishers}p {topics}t: {f} matches nothing"
                    );
                }
            }
        }
    }

    #[test]
    fn publishers_own_disjoint_topics_or_share_when_there_are_fewer() {
        assert_eq!(topics_of_publisher(0, 2, 5), [0, 2, 4]);
        assert_eq!(topics_of_publisher(1, 2, 5), [1, 3]);
        assert_eq!(topics_of_publisher(3, 4, 2), [1]);
    }

    #[test]
    fn paced_publishers_take_turns_in_the_middle_of_each_slot_of_the_total_rate() {
        let t0 = Instant::now();
        // 4 publishers sharing 2 messages/s: the run's messages are due at 0.25 s, 0.75 s, 1.25 s, ...
        let mut due: Vec<Duration> = (0..4)
            .flat_map(|p| {
                let pacing = Pacing::for_publisher(p, 4, 2);
                (0..3).map(move |k| pacing.due(t0, k) - t0)
            })
            .collect();
        due.sort();
        for (i, d) in due.iter().enumerate() {
            let want = (i as f64 + 0.5) / 2.0;
            assert!(
                (d.as_secs_f64() - want).abs() < 1e-6,
                "message {i} due at {d:?}"
            );
        }
    }

    #[test]
    fn a_pace_cut_short_by_the_stop_says_so() {
        let stop = AtomicBool::new(true);
        assert!(!pace(Instant::now() + Duration::from_secs(60), &stop));
        let go = AtomicBool::new(false);
        assert!(pace(Instant::now(), &go));
    }

    #[test]
    fn split_hands_out_exactly_the_total() {
        for (total, parts) in [(10, 3), (2, 4), (0, 1), (7, 7)] {
            assert_eq!(
                (0..parts).map(|i| split(total, parts, i)).sum::<u64>(),
                total
            );
        }
        assert_eq!(split(10, 3, 0), 4);
        assert_eq!(split(10, 3, 2), 3);
    }

    #[test]
    fn the_shared_payload_has_no_timestamp_and_is_seeded() {
        let a = shared_payload(32, 7);
        assert_eq!(&a[..8], &[0; 8]);
        assert_eq!(a, shared_payload(32, 7));
        assert_ne!(a, shared_payload(32, 8));
    }
}
