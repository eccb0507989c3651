//! The late joiners of `switchyard load --replay`: subscriptions made while the publishers run, each
//! starting from the broker's replay log, and the check that each got every message from its start
//! exactly once, or was told in-band what it missed.
//!
//! # When they join
//! One thread waits until the join point (`--join-after`, by default halfway through the run) or until
//! the publishers are told to stop, whichever comes first: a run that ends early still gets its late
//! joiners, and the report says they joined after publishing. It subscribes them one after the other,
//! each to [`LOG_FILTER`] with `--capacity` and `--policy`, named `late-K`, then serves them in turn
//! with batches of `drain_into`, as a pooled consumer does, until the drain at the end finds every one
//! of them empty. Their deliveries are not in the latency histogram: a replayed message was published
//! long before it is taken, which is the point of a log, not a delay to measure.
//!
//! # The check
//! Every message the log keeps has a sequence number, from 1 with no holes, and a late joiner's
//! filter takes every topic the log keeps. So from the number its start asked for (`seq:N`: N;
//! `last:N`: N before where live delivery took over; `oldest`: the oldest the log held) to the run's
//! last, every number must reach it once, or be among the drops it was told of in-band
//! ([`Drained::missed`](switchyard::Drained::missed): a start the log had already evicted, or live
//! messages its queue refused). The thread marks each number it receives in a bitmap and adds up what
//! it was told; at the end, with the run's last number from the final snapshot, a late joiner passes
//! when:
//! - no number came twice, none outside its range, and every message had one;
//! - the numbers that never came (the holes) are exactly as many as it was told it missed;
//! - what it was told is what the broker counted as dropped for it, reason by reason, and what it
//!   took is what the broker counted as delivered.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use switchyard::{
    Broker, DroppedByReason, Message, OverflowPolicy, ReplayFrom, StatsSnapshot, Subscription,
    SubscriptionOptions, SubscriptionStats,
};

use super::consumers::{BATCH, ConsumerCounters, PHASE_RUNNING, PHASE_STOP, back_off};
use super::engine::CoreEngine;
use super::replay::{JoinAt, LOG_FILTER, LateJoinPlan};
use super::workload::PublisherCounters;

/// How often the thread looks at the clock or the publishers' counts while it waits to join.
const JOIN_CHECK_EVERY: Duration = Duration::from_millis(1);

/// What the late joiners' thread needs from the run.
pub struct JoinContext<'a> {
    /// The broker whose log they replay.
    pub broker: &'a Broker,
    /// How many, from where, and when.
    pub plan: LateJoinPlan,
    /// Queue capacity of each (`--capacity`).
    pub capacity: usize,
    /// Overflow policy of each (`--policy`).
    pub policy: OverflowPolicy,
    /// When publishing started.
    pub publish_start: Instant,
    /// Set when the publishers are told to stop.
    pub stop: &'a AtomicBool,
    /// The consumers' phase: running, draining or stop.
    pub phase: &'a AtomicU8,
    /// The publishers' counts, for a join after so many messages.
    pub publishers: &'a [PublisherCounters],
    /// Where the thread shows what it took, for the progress line.
    pub counters: Arc<ConsumerCounters>,
}

/// The late joiners once their thread has ended: their subscriptions (kept alive until the final
/// snapshot is taken) and what each received.
pub struct LateJoiners {
    joiners: Vec<LateJoiner>,
    /// Seconds after publishing started when they subscribed.
    joined_at_s: f64,
    /// Whether the publishers were still running then.
    while_publishing: bool,
}

/// One late joiner: its subscription and what it received.
struct LateJoiner {
    name: String,
    /// `None` when the subscribe was refused (`start_error` says why).
    subscription: Option<Subscription>,
    start_error: Option<String>,
    /// The first sequence number of its range: where its start pointed.
    from_seq: u64,
    seen: SeenSeqs,
    /// What it was told in-band it missed.
    told: DroppedByReason,
    /// Messages it took.
    taken: u64,
    /// Messages it took that had no sequence number (never, when the check passes).
    unnumbered: u64,
}

impl LateJoiner {
    /// Subscribes late joiner `k` from `from`; a refusal is kept to be reported.
    fn join(
        broker: &Broker,
        k: u32,
        from: ReplayFrom,
        capacity: usize,
        policy: OverflowPolicy,
    ) -> Self {
        let name = format!("late-{k}");
        let options = SubscriptionOptions::new()
            .name(name.clone())
            .capacity(capacity)
            .policy(policy)
            .replay(from);
        let (subscription, start_error, from_seq) = match broker.subscribe_with(LOG_FILTER, options)
        {
            Ok(s) => {
                let start = from_seq(from, &s.stats());
                (Some(s), None, start)
            }
            Err(e) => (
                None,
                Some(format!("{name} could not start at {from}: {e}")),
                0,
            ),
        };
        Self {
            name,
            subscription,
            start_error,
            from_seq,
            seen: SeenSeqs::new(from_seq),
            told: DroppedByReason::default(),
            taken: 0,
            unnumbered: 0,
        }
    }

    /// Takes up to a batch, noting each message's number and what it was told; returns how many.
    fn take(&mut self, buf: &mut Vec<Message>) -> usize {
        let Some(subscription) = &self.subscription else {
            return 0;
        };
        let drained = subscription.drain_into(buf, BATCH);
        if let Some(missed) = drained.missed {
            self.told.add(&missed);
        }
        for message in buf.drain(..) {
            match message.seq() {
                Some(seq) => self.seen.insert(seq),
                None => self.unnumbered += 1,
            }
        }
        self.taken += drained.count as u64;
        drained.count
    }
}

/// The first number of a late joiner's range, from where it asked to start and its replay's stats
/// just after the subscribe: `oldest` starts at the oldest message held then (and has no gap),
/// `last:N` N numbers before where live delivery took over, `seq:N` at N.
fn from_seq(from: ReplayFrom, stats: &SubscriptionStats) -> u64 {
    let replay = stats.replay.clone().unwrap_or_default();
    match from {
        ReplayFrom::Seq(n) => n,
        ReplayFrom::Last(n) => replay.until_seq.saturating_sub(n).max(1),
        ReplayFrom::Oldest | ReplayFrom::Newest | ReplayFrom::Time(_) => replay.first_seq,
    }
}

/// The sequence numbers one late joiner received, as a bitmap from the first number of its range.
#[derive(Debug, Default)]
struct SeenSeqs {
    from: u64,
    bits: Vec<u64>,
    /// Distinct numbers received in the bitmap.
    distinct: u64,
    /// Numbers received a second time (or more).
    twice: u64,
    /// Numbers received below `from`.
    below: u64,
}

impl SeenSeqs {
    fn new(from: u64) -> Self {
        Self {
            from,
            ..Self::default()
        }
    }

    fn insert(&mut self, seq: u64) {
        let Some(offset) = seq.checked_sub(self.from) else {
            self.below += 1;
            return;
        };
        let (word, bit) = ((offset / 64) as usize, offset % 64);
        if word >= self.bits.len() {
            self.bits.resize((word + 1).next_power_of_two(), 0);
        }
        let mask = 1u64 << bit;
        if self.bits[word] & mask != 0 {
            self.twice += 1;
        } else {
            self.bits[word] |= mask;
            self.distinct += 1;
        }
    }

    /// Distinct numbers received above `last`.
    fn above(&self, last: u64) -> u64 {
        let Some(offset) = (last + 1).checked_sub(self.from) else {
            return self.distinct;
        };
        let (word, bit) = ((offset / 64) as usize, offset % 64);
        let Some(first) = self.bits.get(word) else {
            return 0;
        };
        let partial = u64::from((first >> bit).count_ones());
        partial
            + self.bits[word + 1..]
                .iter()
                .map(|w| u64::from(w.count_ones()))
                .sum::<u64>()
    }
}

/// Runs the late joiners: waits for the join point, subscribes them, and serves them until the drain
/// at the end finds them all empty (or the run stops without a drain).
pub fn run(cx: JoinContext<'_>) -> LateJoiners {
    let while_publishing = wait_to_join(&cx);
    let joined_at_s = cx.publish_start.elapsed().as_secs_f64();
    let mut joiners: Vec<LateJoiner> = (0..cx.plan.joiners)
        .map(|k| LateJoiner::join(cx.broker, k, cx.plan.from, cx.capacity, cx.policy))
        .collect();
    let mut buf = Vec::with_capacity(BATCH);
    let mut taken = 0u64;
    let mut idle_passes = 0u32;
    loop {
        // Read before the pass: a pass that finds nothing after the drain began means nothing more
        // will come (every publish happened before the phase changed).
        let phase = cx.phase.load(Ordering::Acquire);
        if phase == PHASE_STOP {
            break;
        }
        let n: usize = joiners.iter_mut().map(|j| j.take(&mut buf)).sum();
        if n > 0 {
            taken += n as u64;
            cx.counters.delivered.store(taken, Ordering::Relaxed);
            idle_passes = 0;
            continue;
        }
        if phase != PHASE_RUNNING {
            break;
        }
        idle_passes += 1;
        back_off::<CoreEngine>(idle_passes, None);
    }
    LateJoiners {
        joiners,
        joined_at_s,
        while_publishing,
    }
}

/// Waits until the join point or the publishers' stop; returns whether they were still publishing.
fn wait_to_join(cx: &JoinContext<'_>) -> bool {
    loop {
        if cx.stop.load(Ordering::Relaxed) || cx.phase.load(Ordering::Acquire) != PHASE_RUNNING {
            return false;
        }
        let due = match cx.plan.join {
            JoinAt::Elapsed(after) => cx.publish_start.elapsed() >= after,
            JoinAt::Published(n) => {
                let published: u64 = cx
                    .publishers
                    .iter()
                    .map(|c| c.published.load(Ordering::Relaxed))
                    .sum();
                published >= n
            }
        };
        if due {
            return true;
        }
        std::thread::sleep(JOIN_CHECK_EVERY);
    }
}

/// What the late joiners got, over all of them and one by one (the JSON `load.result.late_joiners`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct LateJoinersResult {
    /// Seconds after publishing started when they subscribed.
    pub joined_at_s: f64,
    /// Whether the publishers were still running when they subscribed.
    pub while_publishing: bool,
    /// Messages they took from the log, together.
    pub replayed: u64,
    /// Messages they took live (from their queues), together.
    pub live: u64,
    /// Sequence numbers asked for and already evicted from the log, together (each told in-band, and
    /// counted as dropped, `evicted`).
    pub gap: u64,
    /// What they were told in-band they missed, together, by reason (the gap among `evicted`).
    pub told_missed: DroppedByReason,
    /// Whether every late joiner got every message from its start exactly once or was told of it.
    pub exactly_once: bool,
    /// Each late joiner.
    pub joiners: Vec<LateJoinerResult>,
}

/// What one late joiner got.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LateJoinerResult {
    /// Its subscription's name, `late-K`.
    pub name: String,
    /// Why it could not subscribe (`seq:N` beyond the log's next number), or null.
    pub error: Option<String>,
    /// The first sequence number of its range: where its start pointed.
    pub from_seq: u64,
    /// Where live delivery took over from the replay.
    pub until_seq: u64,
    /// The last number of its range: the run's last logged message.
    pub last_seq: u64,
    /// Messages it took (the broker's `delivered` for it).
    pub received: u64,
    /// Of those, from the log.
    pub replayed: u64,
    /// Of those, live.
    pub live: u64,
    /// Numbers asked for that the log had evicted (counted as dropped, `evicted`).
    pub gap: u64,
    /// What it was told in-band it missed, by reason.
    pub told_missed: DroppedByReason,
    /// Numbers of its range it never received.
    pub holes: u64,
    /// Numbers it received more than once.
    pub twice: u64,
    /// Numbers it received outside its range, and messages without a number.
    pub outside: u64,
    /// Every number of its range received once or told as missed, and the broker's counts agree.
    pub exactly_once: bool,
}

impl LateJoiners {
    /// Checks each late joiner against the final `snapshot` (see the [module docs](self)); returns
    /// the result and a sentence for each one that failed.
    pub fn check(&self, snapshot: &StatsSnapshot) -> (LateJoinersResult, Vec<String>) {
        let last = snapshot
            .replay_log
            .as_ref()
            .map_or(0, |log| log.next_seq.saturating_sub(1));
        let mut result = LateJoinersResult {
            joined_at_s: self.joined_at_s,
            while_publishing: self.while_publishing,
            exactly_once: true,
            ..LateJoinersResult::default()
        };
        let mut problems = Vec::new();
        for joiner in &self.joiners {
            let stats = joiner.subscription.as_ref().and_then(|s| {
                let id = s.id();
                snapshot.subscriptions.iter().find(|st| st.id == id)
            });
            let one = joiner.result(stats, last);
            if let Some(problem) = one.problem() {
                problems.push(problem);
            }
            result.replayed += one.replayed;
            result.live += one.live;
            result.gap += one.gap;
            result.told_missed.add(&one.told_missed);
            result.exactly_once &= one.exactly_once;
            result.joiners.push(one);
        }
        (result, problems)
    }

    /// Messages the late joiners took, together.
    pub fn taken(&self) -> u64 {
        self.joiners.iter().map(|j| j.taken).sum()
    }
}

impl LateJoiner {
    /// Its result, against its subscription's final `stats` and the run's `last` number.
    fn result(&self, stats: Option<&SubscriptionStats>, last: u64) -> LateJoinerResult {
        let Some(stats) = stats else {
            return LateJoinerResult {
                name: self.name.clone(),
                error: Some(
                    self.start_error
                        .clone()
                        .unwrap_or_else(|| format!("{} is not in the final snapshot", self.name)),
                ),
                ..LateJoinerResult::default()
            };
        };
        let replay = stats.replay.clone().unwrap_or_default();
        let range = (last + 1).saturating_sub(self.from_seq);
        let above = self.seen.above(last);
        let in_range = self.seen.distinct - above;
        let holes = range - in_range;
        let outside = self.seen.below + above + self.unnumbered;
        let exactly_once = self.seen.twice == 0
            && outside == 0
            && holes == self.told.total()
            && self.told == stats.dropped_by_reason
            && self.taken == stats.delivered;
        LateJoinerResult {
            name: self.name.clone(),
            error: None,
            from_seq: self.from_seq,
            until_seq: replay.until_seq,
            last_seq: last,
            received: self.taken,
            replayed: replay.replayed,
            live: self.taken.saturating_sub(replay.replayed),
            gap: replay.gap,
            told_missed: self.told,
            holes,
            twice: self.seen.twice,
            outside,
            exactly_once,
        }
    }
}

impl LateJoinerResult {
    /// What is wrong with this late joiner, in a sentence; `None` when it passed.
    fn problem(&self) -> Option<String> {
        if let Some(error) = &self.error {
            return Some(format!("late joiner {error}"));
        }
        if self.exactly_once {
            return None;
        }
        Some(format!(
            "late joiner {} (sequence numbers {} to {}) did not get each message once or hear of it: \
             {} never came and it was told of {}, {} came twice, {} outside its range or unnumbered",
            self.name,
            self.from_seq,
            self.last_seq,
            self.holes,
            self.told_missed.total(),
            self.twice,
            self.outside,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bitmap_counts_distinct_twice_below_and_above() {
        let mut seen = SeenSeqs::new(10);
        for seq in [10, 11, 11, 75, 200, 3] {
            seen.insert(seq);
        }
        assert_eq!((seen.distinct, seen.twice, seen.below), (4, 1, 1));
        assert_eq!(seen.above(200), 0);
        assert_eq!(seen.above(199), 1);
        assert_eq!(seen.above(74), 2);
        assert_eq!(seen.above(9), 4);
        assert_eq!(seen.above(5), 4);
    }

    #[test]
    fn a_start_points_where_it_asked() {
        let stats = SubscriptionStats {
            replay: Some(switchyard::ReplayStats {
                first_seq: 40,
                until_seq: 100,
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(from_seq(ReplayFrom::Oldest, &stats), 40);
        assert_eq!(from_seq(ReplayFrom::Seq(7), &stats), 7);
        assert_eq!(from_seq(ReplayFrom::Last(10), &stats), 90);
        assert_eq!(from_seq(ReplayFrom::Last(1000), &stats), 1);
    }

    fn joiner(from: u64, seqs: &[u64], told: DroppedByReason) -> LateJoiner {
        let mut seen = SeenSeqs::new(from);
        seqs.iter().for_each(|&s| seen.insert(s));
        LateJoiner {
            name: "late-0".into(),
            subscription: None,
            start_error: None,
            from_seq: from,
            seen,
            told,
            taken: seqs.len() as u64,
            unnumbered: 0,
        }
    }

    #[test]
    fn a_joiner_passes_only_when_every_number_came_once_or_was_told() {
        let gap = DroppedByReason {
            evicted: 2,
            ..Default::default()
        };
        let stats = |delivered, dropped: DroppedByReason| SubscriptionStats {
            delivered,
            dropped: dropped.total(),
            dropped_by_reason: dropped,
            ..Default::default()
        };
        // 5..=9: 5 and 6 evicted and told, 7 to 9 received.
        let ok = joiner(5, &[7, 8, 9], gap).result(Some(&stats(3, gap)), 9);
        assert!(ok.exactly_once, "{ok:?}");
        assert_eq!((ok.holes, ok.outside), (2, 0));
        // A hole nobody was told of.
        let lost = joiner(5, &[7, 9], gap).result(Some(&stats(2, gap)), 9);
        assert!(!lost.exactly_once);
        assert!(
            lost.problem()
                .unwrap()
                .contains("3 never came and it was told of 2")
        );
        // A number twice.
        let twice = joiner(5, &[7, 8, 8, 9], gap).result(Some(&stats(4, gap)), 9);
        assert!(!twice.exactly_once);
        assert_eq!(twice.twice, 1);
        // Told, but the broker counted something else.
        let other =
            joiner(5, &[7, 8, 9], gap).result(Some(&stats(3, DroppedByReason::default())), 9);
        assert!(!other.exactly_once);
        // A number beyond the last.
        let beyond = joiner(5, &[5, 6, 7, 8, 9, 10], DroppedByReason::default())
            .result(Some(&stats(6, DroppedByReason::default())), 9);
        assert_eq!(beyond.outside, 1);
        assert!(!beyond.exactly_once);
    }

    #[test]
    fn a_refused_start_is_reported() {
        let mut j = joiner(0, &[], DroppedByReason::default());
        j.start_error = Some("late-0 could not start at seq:99: out of range".into());
        let r = j.result(None, 9);
        assert!(!r.exactly_once);
        assert!(r.problem().unwrap().contains("seq:99"));
    }
}
