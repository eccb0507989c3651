//! The replay log: the broker's bounded record of recent messages on the topics its filter matches,
//! with sequence numbers, from which a new subscription can start (Kafka's offsets, JetStream's
//! stream sequence).
//!
//! # Appending
//! A publish on a logged topic takes the next sequence number (one `fetch_add` on `tail`: numbers
//! are dense, from 1), then loads the routing table, then writes the message into the number's slot
//! with the version of the table it routed with, and only then offers it to the subscriptions
//! (`crate::broker::replay`). Slots are write-once (`chunks`), so readers never lock.
//!
//! # Evicting
//! The oldest message goes as soon as a bound is passed: more than `max_messages` numbers taken, more
//! than `max_bytes` of topic and payload held, or older than `max_age`. Each publish evicts after it
//! writes; each eviction is one compare-and-swap of `head` (the oldest number still held), so
//! publishers evict in order, each message once, and the count by bound adds up to `head - 1`.
//! Eviction stops at a slot whose publisher has taken the number but not written it yet: that
//! publisher evicts after writing. So a chunk of slots is never dropped under an unwritten slot, and
//! a bound can be overrun for as long as a publisher sits between those two steps (nanoseconds, or a
//! preemption). Age is checked whenever the log is touched: a logged publish, a replay start, stats.
//!
//! # Handover: replay, then live, no message lost and none twice
//! The mechanism, in `crate::broker::replay` (subscribe) and here (the steps of the log), is argued in
//! [`cursor`]'s module docs.

pub(crate) mod chunks;
pub(crate) mod cursor;
pub(crate) mod options;

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use crossbeam_utils::{Backoff, CachePadded};

use crate::message::Message;
use crate::stats::replay::{ReplayEvictions, ReplayLogStats};
use crate::sync::{AtomicU64, Ordering, barrier};
use crate::topic::Filter;
use crate::topic::trie::Trie;

use chunks::{Chunk, Chunks, Entry, Located};
use options::ReplayLogOptions;

/// Slots per chunk at most. A full chunk of `OnceLock<Entry>` slots is 32 KiB.
const MAX_CHUNK_LEN: u64 = 1024;

/// The ends of the log, written by every logged publish: on one cache line, which a publish then
/// owns for its three updates.
#[derive(Debug)]
struct Ends {
    /// The next sequence number to take. Sequentially consistent: half of the handover's
    /// store-buffering pattern ([`cursor`]).
    tail: AtomicU64,
    /// The oldest sequence number not evicted. Moves only by a compare-and-swap from `n` to `n + 1`,
    /// for a written entry `n` past a bound.
    head: AtomicU64,
    /// Topic and payload bytes of the entries written and not evicted.
    bytes: AtomicU64,
}

/// Evictions by the bound that caused them, and the newest evicted message's time.
#[derive(Debug, Default)]
struct Evictions {
    by_bound: [AtomicU64; 3],
    /// The append time (nanoseconds since the epoch) plus one of the newest message evicted; 0 when
    /// none was.
    newest_at: AtomicU64,
}

/// Which bound an eviction answered, in the order of `Evictions::by_bound`.
#[derive(Debug, Clone, Copy)]
enum Bound {
    Messages = 0,
    Bytes = 1,
    Age = 2,
}

/// A replay log. See the [module docs](self).
#[derive(Debug)]
pub(crate) struct ReplayLog {
    options: ReplayLogOptions,
    keeps: FilterMatcher,
    chunks: Chunks,
    ends: CachePadded<Ends>,
    evictions: CachePadded<Evictions>,
    /// Times are kept as nanoseconds since this instant...
    epoch: Instant,
    /// ...which was this wall-clock time, for starts given as a [`SystemTime`].
    epoch_wall: SystemTime,
}

impl ReplayLog {
    pub(crate) fn new(options: ReplayLogOptions) -> Self {
        let chunk_len = (options.max_messages / 16)
            .max(1)
            .next_power_of_two()
            .clamp(16, MAX_CHUNK_LEN);
        Self {
            keeps: FilterMatcher::new(&options.filter),
            options,
            chunks: Chunks::new(chunk_len),
            ends: CachePadded::new(Ends {
                tail: AtomicU64::new(1),
                head: AtomicU64::new(1),
                bytes: AtomicU64::new(0),
            }),
            evictions: CachePadded::default(),
            epoch: Instant::now(),
            epoch_wall: SystemTime::now(),
        }
    }

    /// The log's filter.
    pub(crate) fn filter(&self) -> &Filter {
        &self.options.filter
    }

    /// Whether the log keeps messages on `topic` (a validated topic).
    #[inline]
    pub(crate) fn keeps(&self, topic: &str) -> bool {
        self.keeps.matches(topic)
    }

    /// Takes `n` consecutive sequence numbers and returns the first. The caller must then load the
    /// routing table and [`Self::record`] every number it took, before it offers the messages to
    /// anyone (a replay may be waiting for them). Ends with the publisher's half of the handover's
    /// fence ([`cursor`]): the claim is ordered before the table load that follows.
    #[inline]
    pub(crate) fn claim(&self, n: u64) -> u64 {
        let first = self.ends.tail.fetch_add(n, Ordering::SeqCst);
        barrier::light();
        first
    }

    /// Writes the messages of a claim (each already carrying its sequence number), routed with
    /// table version `routed_version`, then evicts what the bounds no longer allow.
    pub(crate) fn record<'m>(
        &self,
        messages: impl IntoIterator<Item = &'m Message>,
        routed_version: u64,
    ) {
        let at = self.now();
        for message in messages {
            let Some(seq) = message.seq() else {
                debug_assert!(false, "a message recorded without its sequence number");
                continue;
            };
            let entry = Entry {
                message: message.clone(),
                routed_version,
                at,
            };
            // Counted before the entry is visible, so the eviction that reads it subtracts after.
            self.ends.bytes.fetch_add(entry.bytes(), Ordering::Relaxed);
            self.chunks.write(seq, entry);
        }
        self.evict(at);
    }

    /// Nanoseconds since the log's epoch.
    fn now(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    /// `time` as nanoseconds since the log's epoch (0 for a time before it).
    fn since_epoch(&self, time: SystemTime) -> u64 {
        time.duration_since(self.epoch_wall)
            .map_or(0, |d| d.as_nanos() as u64)
    }

    /// The next sequence number to be taken. Sequentially consistent: the subscriber's half of the
    /// handover's store-buffering pattern reads it ([`cursor`]).
    pub(crate) fn next_seq(&self) -> u64 {
        self.ends.tail.load(Ordering::SeqCst)
    }

    /// The oldest sequence number not evicted.
    pub(crate) fn head(&self) -> u64 {
        self.ends.head.load(Ordering::Acquire)
    }

    /// Evicts what the age bound no longer allows (the other bounds are kept by every append).
    pub(crate) fn evict_expired(&self) {
        if self.options.max_age.is_some() {
            self.evict(self.now());
        }
    }

    /// Evicts the oldest entries while a bound is passed, `now` being the time in nanoseconds since
    /// the epoch. Stops at an entry not written yet: its publisher evicts after writing it.
    fn evict(&self, now: u64) {
        loop {
            let head = self.ends.head.load(Ordering::Acquire);
            let tail = self.ends.tail.load(Ordering::Acquire);
            if head >= tail {
                return;
            }
            let oldest = self.chunks.oldest();
            if !oldest.contains(head) {
                // Every slot of the evictors' chunk is evicted: move on to the next chunk, if it
                // is made (its first publisher makes it).
                drop(oldest);
                self.chunks.retire_before(head);
                if self.chunks.oldest().contains(head) {
                    continue;
                }
                return;
            }
            let Some(entry) = oldest.entry(head) else {
                return;
            };
            let Some(bound) = self.passed_bound(tail - head, entry, now) else {
                return;
            };
            if self
                .ends
                .head
                .compare_exchange(head, head + 1, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                self.ends.bytes.fetch_sub(entry.bytes(), Ordering::Relaxed);
                self.evictions.by_bound[bound as usize].fetch_add(1, Ordering::Relaxed);
                self.evictions
                    .newest_at
                    .fetch_max(entry.at + 1, Ordering::Relaxed);
                if head + 1 == oldest.end() {
                    drop(oldest);
                    self.chunks.retire_before(head + 1);
                }
            }
        }
    }

    /// The bound the oldest entry (`entry`, one of `held`) passes, if any.
    fn passed_bound(&self, held: u64, entry: &Entry, now: u64) -> Option<Bound> {
        if held > self.options.max_messages {
            return Some(Bound::Messages);
        }
        if self.ends.bytes.load(Ordering::Relaxed) > self.options.max_bytes {
            return Some(Bound::Bytes);
        }
        let max_age = self.options.max_age?;
        (now.saturating_sub(entry.at) > max_age.as_nanos() as u64).then_some(Bound::Age)
    }

    /// Calls `f` with the entry of `seq`, waiting for its publisher to write it if needed; `None`
    /// when it is evicted and its chunk dropped. `seq` must be taken (below [`Self::next_seq`]).
    pub(crate) fn read<R>(&self, seq: u64, f: impl FnOnce(&Entry) -> R) -> Option<R> {
        let chunk = self.chunk_at(seq).ok()?;
        chunk.entry(seq).map(f)
    }

    /// The chunk holding `seq` with its entry written, waiting for its publisher if needed, or, when
    /// `seq` is evicted and its chunk dropped, the oldest sequence number still held. `seq` must be
    /// taken (below [`Self::next_seq`]).
    pub(crate) fn chunk_at(&self, seq: u64) -> Result<Arc<Chunk>, u64> {
        let backoff = Backoff::new();
        loop {
            match self.chunks.locate(seq) {
                Located::In(chunk) => {
                    // An unwritten entry is never evicted, so its chunk stays on the list: wait on
                    // the slot, not on the list's mutex.
                    while chunk.entry(seq).is_none() {
                        wait_for_writer(&backoff);
                    }
                    return Ok(chunk);
                }
                Located::Evicted(first) => return Err(first),
                // Taken, and its chunk not made yet: its publisher is about to make it.
                Located::NotYet => wait_for_writer(&backoff),
            }
        }
    }

    /// Keeps every chunk from the next sequence number on readable, even once evicted, until
    /// [`Self::release`]; returns that number.
    pub(crate) fn hold_next(&self) -> u64 {
        self.chunks.hold_from(|| self.next_seq())
    }

    /// The oldest sequence number whose entry is still readable (evicted or not).
    pub(crate) fn first_held(&self) -> u64 {
        self.chunks.first_held()
    }

    /// Ends a hold.
    pub(crate) fn release(&self, held: u64) {
        self.chunks.release(held);
        self.chunks.retire_before(self.head());
    }

    /// The first sequence number in `[from, until)` appended at or after `time` (`until` when
    /// none is): a binary search over append times, which rise with sequence numbers except between
    /// publishes made at the same instant on different threads. An evicted entry counts as older.
    pub(crate) fn first_at_or_after(&self, time: SystemTime, from: u64, until: u64) -> u64 {
        let time = self.since_epoch(time);
        let (mut lo, mut hi) = (from, until);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.read(mid, |e| e.at >= time).unwrap_or(false) {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        lo
    }

    /// Whether the log has evicted a message appended at or after `time`.
    pub(crate) fn evicted_since(&self, time: SystemTime) -> bool {
        let newest = self.evictions.newest_at.load(Ordering::Relaxed);
        newest != 0 && newest > self.since_epoch(time)
    }

    /// The counters for the stats snapshot (applying the age bound first).
    pub(crate) fn stats(&self) -> ReplayLogStats {
        self.evict_expired();
        let head = self.head();
        let tail = self.ends.tail.load(Ordering::Acquire);
        let by = |b: Bound| self.evictions.by_bound[b as usize].load(Ordering::Relaxed);
        ReplayLogStats {
            filter: self.options.filter.to_string(),
            max_messages: self.options.max_messages,
            max_bytes: self.options.max_bytes,
            max_age_ms: self.options.max_age.map(|a| a.as_millis() as u64),
            messages: tail.saturating_sub(head),
            bytes: self.ends.bytes.load(Ordering::Relaxed),
            first_seq: head,
            next_seq: tail,
            evicted: ReplayEvictions {
                max_messages: by(Bound::Messages),
                max_bytes: by(Bound::Bytes),
                max_age: by(Bound::Age),
            },
        }
    }
}

/// One filter, matched without allocating: a one-entry trie (the reference matcher,
/// [`Filter::matches`], collects the levels).
#[derive(Debug)]
pub(crate) struct FilterMatcher(Trie<()>);

impl FilterMatcher {
    pub(crate) fn new(filter: &Filter) -> Self {
        Self(Trie::new().insert(filter, 0, ()))
    }

    #[inline]
    pub(crate) fn matches(&self, topic: &str) -> bool {
        let mut matched = false;
        self.0.for_each_match(topic, |()| matched = true);
        matched
    }
}

/// Waits a moment for a publisher between taking a sequence number and writing it: spins, then
/// yields (it may have been preempted). Under loom, a yield, so the model runs that publisher.
fn wait_for_writer(backoff: &Backoff) {
    #[cfg(not(switchyard_loom))]
    backoff.snooze();
    #[cfg(switchyard_loom)]
    {
        let _ = backoff;
        crate::sync::spin_loop();
    }
}
