//! The log's storage: a list of fixed-size chunks of write-once slots, one slot per sequence number.
//!
//! A chunk holds `len` consecutive sequence numbers. Each slot is a `OnceLock`: written once, by the
//! publisher that claimed its sequence number, and then read by any number of replaying receivers
//! without a lock (one acquire load). A slot is never overwritten; a chunk is dropped whole once
//! every slot in it is evicted and no reader holds it, so a reader that holds a chunk can always read
//! what was written in it.
//!
//! The list itself (which chunks exist) changes once per `len` messages: a writer makes the chunk its
//! sequence number falls in, an evictor drops the chunks it has emptied. Those changes, and a reader's
//! move to its next chunk, take the list's mutex; the data path does not. A writer finds its chunk
//! through `newest`, an evictor through `oldest` (each one `ArcSwap` load, `crate::sync::arc_cell`), and a reader keeps the
//! chunk it is reading.

use std::collections::VecDeque;
use std::sync::{Arc, OnceLock};

use crate::message::Message;
use crate::sync::arc_cell::{ArcCell, ArcGuard};
use crate::sync::{Mutex, MutexGuard};

/// One logged message.
#[derive(Debug)]
pub(crate) struct Entry {
    /// The message, carrying its sequence number.
    pub(crate) message: Message,
    /// The version of the routing table the publish routed with: the subscriptions in that table
    /// were offered the message live, so a replay into one of them must skip it (see
    /// [`super::cursor`]).
    pub(crate) routed_version: u64,
    /// When it was appended, in nanoseconds since the log's epoch.
    pub(crate) at: u64,
}

impl Entry {
    /// What the message counts against the log's byte bound: its topic and payload.
    pub(crate) fn bytes(&self) -> u64 {
        (self.message.topic().len() + self.message.payload().len()) as u64
    }
}

/// `len` consecutive slots, from sequence number `first`.
#[derive(Debug)]
pub(crate) struct Chunk {
    first: u64,
    slots: Box<[OnceLock<Entry>]>,
}

impl Chunk {
    fn new(first: u64, len: u64) -> Self {
        Self {
            first,
            slots: (0..len).map(|_| OnceLock::new()).collect(),
        }
    }

    /// The first sequence number past this chunk.
    pub(crate) fn end(&self) -> u64 {
        self.first + self.slots.len() as u64
    }

    pub(crate) fn contains(&self, seq: u64) -> bool {
        seq >= self.first && seq < self.end()
    }

    /// The entry of `seq` (in this chunk), or `None` while its publisher has not written it yet.
    #[inline]
    pub(crate) fn entry(&self, seq: u64) -> Option<&Entry> {
        self.slots[(seq - self.first) as usize].get()
    }

    /// Writes the entry of `seq`, which is in this chunk. Each sequence number is claimed by one
    /// publisher, so its slot is written once.
    fn write(&self, seq: u64, entry: Entry) {
        let written = self.slots[(seq - self.first) as usize].set(entry);
        debug_assert!(written.is_ok(), "sequence number {seq} written twice");
    }
}

/// Where a reader finds a sequence number.
pub(crate) enum Located {
    /// In this chunk.
    In(Arc<Chunk>),
    /// Already evicted, with its chunk: the oldest sequence number still held is this one.
    Evicted(u64),
    /// Its chunk is not made yet: its publisher has claimed it and is about to write it.
    NotYet,
}

/// The chunks of one log, oldest first. See the [module docs](self).
#[derive(Debug)]
pub(crate) struct Chunks {
    len: u64,
    list: Mutex<ChunkList>,
    /// The last chunk of `list`, for writers.
    newest: ArcCell<Chunk>,
    /// The chunk of `list` holding the oldest unevicted sequence number, for evictors.
    oldest: ArcCell<Chunk>,
}

/// What the list's mutex guards.
#[derive(Debug)]
struct ChunkList {
    /// Never empty: the chunks from the one holding the oldest unevicted sequence number on (and,
    /// while a hold stands, from the one holding the held sequence number on).
    chunks: VecDeque<Arc<Chunk>>,
    /// Sequence numbers whose chunks must stay readable even once evicted: a subscription being
    /// made reads the routing versions of the messages published while it was added (see
    /// [`super::cursor`]). Held for the length of one subscribe.
    holds: Vec<u64>,
}

impl Chunks {
    /// An empty log whose first sequence number is 1, in chunks of `len` messages.
    pub(crate) fn new(len: u64) -> Self {
        let first = Arc::new(Chunk::new(1, len));
        Self {
            len,
            list: Mutex::new(ChunkList {
                chunks: VecDeque::from([first.clone()]),
                holds: Vec::new(),
            }),
            newest: ArcCell::new(first.clone()),
            oldest: ArcCell::new(first),
        }
    }

    fn list(&self) -> MutexGuard<'_, ChunkList> {
        // Each change to the list is one push or pop, completed before anything that could panic.
        self.list
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Writes `entry` at `seq`, a sequence number the caller claimed (so it is not evicted yet).
    pub(crate) fn write(&self, seq: u64, entry: Entry) {
        let newest = self.newest.load();
        if newest.contains(seq) {
            newest.write(seq, entry);
            return;
        }
        drop(newest);
        let chunk = {
            let list = &mut self.list().chunks;
            while list.back().is_some_and(|c| c.end() <= seq) {
                let end = list.back().map_or(1, |c| c.end());
                let next = Arc::new(Chunk::new(end, self.len));
                self.newest.store(next.clone());
                list.push_back(next);
            }
            let front = list.front().map_or(1, |c| c.first);
            list.get(((seq - front) / self.len) as usize).cloned()
        };
        // Always `Some`: eviction stops at the oldest unwritten entry, and chunks are dropped only
        // behind it, so a claimed sequence number's chunk stays on the list until it is written.
        debug_assert!(
            chunk.is_some(),
            "sequence number {seq} lost its chunk before it was written"
        );
        if let Some(chunk) = chunk {
            chunk.write(seq, entry);
        }
    }

    /// The evictors' chunk: it holds the oldest unevicted sequence number, or every one of its slots
    /// is evicted (then [`Self::retire_before`] moves it on, once the next chunk is made).
    pub(crate) fn oldest(&self) -> ArcGuard<Chunk> {
        self.oldest.load()
    }

    /// Drops the chunks wholly before `head` (the oldest unevicted sequence number) and every hold,
    /// keeping at least one, and moves the evictors' chunk to the one holding `head`.
    pub(crate) fn retire_before(&self, head: u64) {
        let mut list = self.list();
        let keep_from = list.holds.iter().copied().fold(head, u64::min);
        let chunks = &mut list.chunks;
        while chunks.len() > 1 && chunks.front().is_some_and(|c| c.end() <= keep_from) {
            chunks.pop_front();
        }
        // The evictors' chunk: the one holding `head` (a held chunk before it stays on the list).
        if let Some(at_head) = chunks.iter().find(|c| c.end() > head).or(chunks.back()) {
            self.oldest.store(at_head.clone());
        }
    }

    /// Keeps the chunks from the sequence number `next()` returns on readable until
    /// [`Self::release`], and returns that number. `next` is read under the list's mutex, so no chunk
    /// holding it or a later number can be dropped in between.
    pub(crate) fn hold_from(&self, next: impl FnOnce() -> u64) -> u64 {
        let mut list = self.list();
        let seq = next();
        list.holds.push(seq);
        seq
    }

    /// Ends a hold [`Self::hold_from`] returned.
    pub(crate) fn release(&self, seq: u64) {
        let mut list = self.list();
        if let Some(i) = list.holds.iter().position(|&h| h == seq) {
            list.holds.swap_remove(i);
        }
    }

    /// The first sequence number of the oldest chunk kept.
    pub(crate) fn first_held(&self) -> u64 {
        self.list().chunks.front().map_or(1, |c| c.first)
    }

    /// Where a reader finds `seq`.
    pub(crate) fn locate(&self, seq: u64) -> Located {
        let list = &self.list().chunks;
        let (Some(front), Some(back)) = (list.front(), list.back()) else {
            return Located::NotYet;
        };
        if seq < front.first {
            return Located::Evicted(front.first);
        }
        if seq >= back.end() {
            return Located::NotYet;
        }
        match list.get(((seq - front.first) / self.len) as usize) {
            Some(chunk) => Located::In(chunk.clone()),
            None => Located::NotYet,
        }
    }
}
