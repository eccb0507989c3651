//! A subscription's replay: where it starts in the log, how far the log serves it before live
//! delivery takes over, and the receivers' reading of that stretch.
//!
//! # The handover: every logged message once, replayed or live, never both, never neither
//! The classic race of replay-then-subscribe: a message published while the subscription is being
//! made is either in the replay snapshot and routed live (seen twice), or in neither (lost). Here
//! each logged message is decided by its sequence number and by the routing table its publish used.
//!
//! A **publish** on a logged topic (`crate::broker::replay`), in this order:
//! 1. takes its sequence number `n` (`tail.fetch_add`, sequentially consistent), then the light half
//!    of an asymmetric fence (`crate::sync::barrier`);
//! 2. loads the routing table (a publisher handle: reads the table version, and reloads on a change);
//! 3. writes the message into slot `n` with that table's version `V`;
//! 4. offers it to each subscription in that table whose filter matches, except a replaying
//!    subscription `S` with `n < S.live_from` ([`ReplayCursor::takes_live`]).
//!
//! A **subscribe** with a replay start (`Broker::subscribe_with`):
//! 1. `live_from = tail` (read under the log's chunk mutex, which also *holds* the chunks from
//!    `live_from` on: evicted or not, they stay readable until step 4), stored in `S` before `S` can
//!    be seen by any publisher;
//! 2. adds `S` to the routing table: version `v`, stored (release) before the version counter;
//! 3. the heavy half of the fence, then `until = tail` (sequentially consistent);
//! 4. waits for the slots `live_from..until` to be written (their publishers are between steps 1 and
//!    3, which take no lock the subscribe holds) and notes which of them were routed with a table of
//!    version `>= v`: the set `L`. Then it releases the hold.
//!
//! The replay hands out the logged messages in `start..until` that the filter matches, in sequence
//! order, skipping `L`; live delivery (the queue) has everything else. Why that is each message
//! exactly once, for a message `n` whose topic `S`'s filter matches:
//! - `n < live_from`: never offered live (step 4 of the publish). In the replay range: replayed.
//! - `live_from <= n < until`: offered live exactly when its publisher's table had `S`, that is when
//!   `V >= v`, that is when `n` is in `L`; the replay skips exactly `L`.
//! - `n >= until`: the subscriber's read of `tail` (its step 3) did not see `n` taken, so, by the
//!   store-buffering pattern (publisher: take `n`, fence, read the table; subscriber: store the table,
//!   fence, read `tail`), the publisher's read of the table saw `S`: offered live. Not in the replay
//!   range.
//!
//! The fence: on x86 the publisher's `fetch_add` is a full barrier anyway; elsewhere, and in the
//! argument, the pair is `crate::sync::barrier`'s asymmetric fence, whose argument is the same as the
//! parking handshake's. A publisher handle checks the table's version counter rather than the table:
//! the same pattern on that counter, stored after the table.
//!
//! Order: the replay comes first, in sequence order; the queue after it. For one publisher, whose
//! table loads only move forward, its messages in the replay range not routed live are a prefix of
//! its messages: so each publisher's messages arrive in the order it published them, across the
//! switch. Messages of different publishers have no order between them, as without a log.
//!
//! The loom model `loom_replay_then_live_delivers_each_logged_message_once` drives this code (a
//! publisher handle and a publish against a subscribe with replay), and
//! `tests/replay_handover.rs` runs it under concurrent publishers.
//!
//! # Gaps
//! A start the log has already evicted (or a slow replay that the log evicts under) skips to the
//! oldest message still held, and the receiver is told in-band: the skipped sequence numbers (less
//! those routed live, `L`) count as matched and dropped (`evicted`), so the next
//! [`Delivery::missed`](crate::Delivery::missed) reports them and the books stay balanced. They are
//! counted in sequence numbers: with a filter narrower than the log's, some may have been on topics
//! the subscription would not have received (the log no longer knows their topics).

use std::sync::Arc;
use std::time::SystemTime;

use crossbeam_utils::Backoff;

use super::chunks::Chunk;
use super::options::ReplayFrom;
use super::{FilterMatcher, ReplayLog};
use crate::message::Message;
use crate::stats::replay::ReplayStats;
use crate::sync::{AtomicBool, AtomicU64, Mutex, MutexGuard, Ordering, barrier};
use crate::topic::Filter;

/// One subscription's replay. See the [module docs](self).
#[derive(Debug)]
pub(crate) struct ReplayCursor {
    log: Arc<ReplayLog>,
    from: ReplayFrom,
    /// Logged messages numbered below this are never offered to the subscription live.
    live_from: u64,
    /// The subscription's filter, when it may not match every topic the log keeps.
    only: Option<FilterMatcher>,
    /// Whether this replay still holds the log's chunks (from `new` to `open`).
    holding: AtomicBool,
    /// The receivers' position; locked only while replaying.
    state: Mutex<State>,
    /// Set once the replay has handed out its last message and told its last gap: from then on a
    /// receive checks this flag and goes to the queue.
    done: AtomicBool,
    progress: Progress,
}

/// Where the receivers are in the replay.
#[derive(Debug, Default)]
struct State {
    /// The next sequence number to look at.
    next: u64,
    /// The end of the replay range (exclusive): from here on, live delivery has every message.
    until: u64,
    /// The numbers in `live_from..until` that were routed live (`L`), ascending.
    live: Vec<u64>,
    /// The first index of `live` not below `next`.
    live_seen: usize,
    /// The chunk being read.
    chunk: Option<Arc<Chunk>>,
    /// Sequence numbers skipped as evicted and not yet counted.
    untold_gap: u64,
    /// Messages handed out so far.
    replayed: u64,
    /// The last topic matched against the filter, and the answer: logs tend to hold runs of a few
    /// topics, and comparing a topic is cheaper than walking the filter.
    last_topic: LastTopic,
    /// Sequence numbers counted as a gap so far.
    gap: u64,
}

impl State {
    /// Whether `seq` (at least every number asked before) was routed live.
    fn routed_live(&mut self, seq: u64) -> bool {
        while self.live.get(self.live_seen).is_some_and(|&l| l < seq) {
            self.live_seen += 1;
        }
        self.live.get(self.live_seen) == Some(&seq)
    }

    /// How many numbers in `from..to` were not routed live.
    fn not_live(&self, from: u64, to: u64) -> u64 {
        if to <= from {
            return 0;
        }
        let live =
            self.live.partition_point(|&l| l < to) - self.live.partition_point(|&l| l < from);
        to - from - live as u64
    }

    /// Skips `next` forward to `to` over evicted numbers, counting the gap.
    fn skip_evicted(&mut self, to: u64) {
        let to = to.min(self.until).max(self.next);
        self.untold_gap += self.not_live(self.next, to);
        self.next = to;
    }
}

/// A one-topic memo of [`FilterMatcher::matches`].
#[derive(Debug, Default)]
struct LastTopic {
    topic: String,
    matched: bool,
}

impl LastTopic {
    fn matches(&mut self, only: &FilterMatcher, topic: &str) -> bool {
        if self.topic != topic {
            self.matched = only.matches(topic);
            self.topic.clear();
            self.topic.push_str(topic);
        }
        self.matched
    }
}

/// The replay's progress, for stats; written by the receivers as they go.
#[derive(Debug, Default)]
struct Progress {
    first: AtomicU64,
    until: AtomicU64,
    next: AtomicU64,
    replayed: AtomicU64,
    gap: AtomicU64,
}

/// What one [`ReplayCursor::fill`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Filled {
    /// Messages handed out.
    pub(crate) taken: usize,
    /// Sequence numbers skipped as evicted (and not routed live), to count as dropped.
    pub(crate) gap: u64,
}

impl ReplayCursor {
    /// Step 1 of the subscribe ([module docs](self)): a replay from `from` for a subscription with
    /// `filter`, holding the log from the next sequence number on. Make it before the subscription
    /// is in the routing table, then [`Self::open`] it once it is.
    pub(crate) fn new(log: Arc<ReplayLog>, from: ReplayFrom, filter: &Filter) -> Self {
        let live_from = log.hold_next();
        let only = (!covers(filter, log.filter())).then(|| FilterMatcher::new(filter));
        Self {
            log,
            from,
            live_from,
            only,
            holding: AtomicBool::new(true),
            state: Mutex::new(State::default()),
            done: AtomicBool::new(false),
            progress: Progress::default(),
        }
    }

    /// Whether a publish may offer logged message `seq` to this subscription live (step 4 of the
    /// publish): only from `live_from` on; the replay has the ones before.
    #[inline]
    pub(crate) fn takes_live(&self, seq: u64) -> bool {
        seq >= self.live_from
    }

    /// Steps 3 and 4 of the subscribe, once the subscription is in the routing table at version
    /// `routed_version`; then finds where the replay starts. Waits for publishers that have taken a
    /// number and not written it yet, so call it holding no lock a publisher might take.
    pub(crate) fn open(&self, routed_version: u64) {
        barrier::heavy();
        let until = self.log.next_seq();
        let live: Vec<u64> = (self.live_from..until)
            .filter(|&seq| {
                self.log
                    .read(seq, |e| e.routed_version >= routed_version)
                    .unwrap_or(false)
            })
            .collect();
        self.release_hold();
        self.log.evict_expired();
        let head = self.log.head();
        let mut state = State {
            until,
            live,
            ..State::default()
        };
        state.next = self.start(&mut state, head);
        self.progress.first.store(state.next, Ordering::Relaxed);
        self.progress.until.store(until, Ordering::Relaxed);
        self.progress.next.store(state.next, Ordering::Relaxed);
        *self.state() = state;
    }

    /// Where the replay starts, with `head` the oldest number still held; the gap (numbers asked for
    /// and already evicted) goes into `state.untold_gap`.
    fn start(&self, state: &mut State, head: u64) -> u64 {
        let until = state.until;
        let asked = match self.from {
            ReplayFrom::Newest => until,
            ReplayFrom::Oldest => head,
            ReplayFrom::Seq(n) => n,
            ReplayFrom::Time(time) => return self.start_at_time(state, time, head),
            ReplayFrom::Last(n) => self.start_of_last(state, n, head),
        };
        state.next = asked;
        state.skip_evicted(head);
        state.next.min(until)
    }

    /// The start of [`ReplayFrom::Time`]: the first message held appended at or after `time`; if the
    /// log has evicted such messages, the gap runs from the first of them it can still see (the
    /// evicted part of its oldest chunk), and is at least one.
    fn start_at_time(&self, state: &mut State, time: SystemTime, head: u64) -> u64 {
        let start = self
            .log
            .first_at_or_after(time, head.min(state.until), state.until);
        if self.log.evicted_since(time) {
            let first_seen = self
                .log
                .first_at_or_after(time, self.log.first_held(), head);
            state.next = first_seen.min(head.saturating_sub(1)).max(1);
            state.skip_evicted(head);
        }
        start
    }

    /// The start of [`ReplayFrom::Last`]: `n` numbers back from `until` when the filter takes every
    /// logged topic, else the `n`-th message back that it matches. Counting down stops at the oldest
    /// message held; then, if the log has evicted any, the ones missing are a gap (in sequence
    /// numbers, at most the number evicted).
    fn start_of_last(&self, state: &mut State, n: u64, head: u64) -> u64 {
        let until = state.until;
        let Some(only) = &self.only else {
            return until.saturating_sub(n).max(1);
        };
        let mut found = 0;
        let mut seq = until;
        while found < n && seq > head {
            seq -= 1;
            let matches = self
                .log
                .read(seq, |e| only.matches(e.message.topic()))
                .unwrap_or(false);
            found += u64::from(matches);
        }
        if found < n {
            let evicted = state.not_live(1, head.min(until));
            state.untold_gap += (n - found).min(evicted);
        }
        seq
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Every change to the state is completed before anything that could panic.
        self.state
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Whether the replay is over: every receive goes to the queue now.
    #[inline]
    pub(crate) fn is_done(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }

    /// Hands up to `max` replayed messages to `push`, in sequence order; returns how many, and the
    /// gap found on the way. Fewer than `max` only once the replay is over.
    pub(crate) fn fill(&self, max: usize, mut push: impl FnMut(Message)) -> Filled {
        let mut state = self.state();
        let mut taken = 0;
        let mut chunk = state.chunk.take();
        let backoff = Backoff::new();
        while taken < max {
            let seq = state.next;
            if seq >= state.until {
                break;
            }
            let current = match chunk.take() {
                Some(c) if c.contains(seq) => c,
                _ => match self.log.chunk_at(seq) {
                    Ok(c) => c,
                    Err(first_held) => {
                        state.skip_evicted(first_held);
                        continue;
                    }
                },
            };
            let Some(entry) = current.entry(seq) else {
                // Its publisher took the number and has not written it yet.
                chunk = Some(current);
                super::wait_for_writer(&backoff);
                continue;
            };
            state.next += 1;
            let wanted = !state.routed_live(seq)
                && self
                    .only
                    .as_ref()
                    .is_none_or(|only| state.last_topic.matches(only, entry.message.topic()));
            if wanted {
                push(entry.message.clone());
                taken += 1;
            }
            chunk = Some(current);
        }
        state.chunk = chunk;
        let gap = std::mem::take(&mut state.untold_gap);
        if state.next >= state.until {
            state.chunk = None;
            self.done.store(true, Ordering::Release);
        }
        // Written under the state's lock: plain stores, no read-modify-write per receive.
        state.replayed += taken as u64;
        state.gap += gap;
        self.progress.next.store(state.next, Ordering::Relaxed);
        self.progress
            .replayed
            .store(state.replayed, Ordering::Relaxed);
        if gap > 0 {
            self.progress.gap.store(state.gap, Ordering::Relaxed);
        }
        Filled { taken, gap }
    }

    /// Progress, for the subscription's stats.
    pub(crate) fn stats(&self) -> ReplayStats {
        let first = self.progress.first.load(Ordering::Relaxed);
        let until = self.progress.until.load(Ordering::Relaxed);
        let next = self.progress.next.load(Ordering::Relaxed);
        ReplayStats {
            from: self.from.to_string(),
            first_seq: first,
            until_seq: until,
            next_seq: next,
            replayed: self.progress.replayed.load(Ordering::Relaxed),
            gap: self.progress.gap.load(Ordering::Relaxed),
            done: self.is_done(),
        }
    }
}

/// Whether every topic `log` matches, `filter` matches too: then the replay need not match topics.
/// Level by level: a `#` in `filter` takes the rest of `log` (any number of levels, none included);
/// a single-level wildcard takes any one level of `log` but its `#`; a literal takes only the same
/// literal. A wildcard in `filter`'s first level does not take the `$` topics that a literal first
/// level of `log` may name (the MQTT rule). Filters read under different syntaxes: only when equal.
fn covers(filter: &Filter, log: &Filter) -> bool {
    if filter.syntax() != log.syntax() {
        return filter.as_str() == log.as_str();
    }
    let syntax = filter.syntax();
    let wildcard = |level: &str| level == "#" || syntax.is_single_wildcard(level);
    let (mut ours, mut theirs) = (filter.levels(), log.levels());
    let mut first = true;
    loop {
        match (ours.next(), theirs.next()) {
            (None, None) | (Some("#"), None) => return true,
            (Some("#"), Some(level)) => return !(first && level.starts_with('$')),
            (Some(our), Some(level)) if syntax.is_single_wildcard(our) => {
                if level == "#" || (first && level.starts_with('$')) {
                    return false;
                }
            }
            (Some(our), Some(level)) if our == level && !wildcard(level) => {}
            _ => return false,
        }
        first = false;
    }
}

impl ReplayCursor {
    fn release_hold(&self) {
        if self.holding.swap(false, Ordering::AcqRel) {
            self.log.release(self.live_from);
        }
    }
}

/// A replay never opened (its subscribe did not finish) still lets the log's chunks go.
impl Drop for ReplayCursor {
    fn drop(&mut self) {
        self.release_hold();
    }
}

#[cfg(test)]
mod tests {
    use super::covers;
    use crate::topic::{Filter, TopicLimits, TopicSyntax};

    fn covers_str(filter: &str, log: &str) -> bool {
        covers(&Filter::new(filter).unwrap(), &Filter::new(log).unwrap())
    }

    #[test]
    fn a_filter_covers_a_log_filter_only_when_it_matches_every_topic_the_log_keeps() {
        for (filter, log) in [
            ("orders/#", "orders/#"),
            ("#", "orders/#"),
            ("#", "+/x"),
            ("orders/#", "orders/eu/+"),
            ("orders/+/x", "orders/eu/x"),
            ("a/#", "a"), // `#` matches no level as well
            ("a/b/#", "a/b"),
            ("+/#", "a/+/c"),
            ("*/x", "+/x"), // `*` is `+` in the classic syntax
        ] {
            assert!(covers_str(filter, log), "{filter} covers {log}");
        }
        for (filter, log) in [
            ("orders/eu/#", "orders/#"),
            ("orders/+", "orders/#"),
            ("a/+/#", "a/#"), // the log keeps `a`, which `a/+/#` does not match
            ("a/b", "a/+"),
            ("a/b", "a/b/c"),
            ("a/b/c", "a/b"),
            ("#", "$SYS/#"), // a leading wildcard never matches a `$` topic
            ("+/x", "$SYS/x"),
        ] {
            assert!(!covers_str(filter, log), "{filter} does not cover {log}");
        }
        let mqtt = TopicLimits {
            syntax: TopicSyntax::Mqtt,
            ..TopicLimits::default()
        };
        let star = Filter::with_limits("*/x", &mqtt).unwrap(); // a literal `*` level in MQTT
        assert!(!covers(&star, &Filter::new("+/x").unwrap()));
    }
}
