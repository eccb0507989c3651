//! Broker-wide counts that every publishing thread adds to, kept per thread so that no two threads
//! write one cache line: the `published` and `unrouted` of [`crate::Broker::publish`] and friends.
//!
//! # Why
//! One shared atomic that every publish adds to is a line every publishing core must own in turn: two
//! threads publishing to disjoint topics, which share nothing else, would each pay a cache miss per
//! publish for it, and more cores make it worse. A `Publisher` handle has its own counts (see
//! [`super::counters::OwnCount`]); a publish by topic string has no handle to keep them in, so it
//! counts in its thread's shard.
//!
//! # Shape
//! [`SHARDS`] shards, each on cache lines of its own. A thread takes a shard index the first time it
//! counts (round-robin over the threads of the process, kept in a thread-local) and adds to that shard
//! from then on: up to `SHARDS` publishing threads write lines of their own; more share shards, each
//! shard among a few. A reading is the sum of every shard: exact whenever nothing is in flight, like
//! every other count, since each add is one atomic read-modify-write on one shard and a sum reads
//! each shard once. Which shard a thread uses only spreads the writes; it never changes a total.

use std::cell::Cell;

use crossbeam_utils::CachePadded;

use crate::sync::{AtomicU64, Ordering};

/// How many shards: one line each for up to this many publishing threads.
pub(crate) const SHARDS: usize = 16;

/// A pair of counts (`published`, `unrouted`) sharded by thread. See the [module docs](self).
#[derive(Debug)]
pub(crate) struct PerThreadCounts {
    shards: Box<[CachePadded<[AtomicU64; 2]>]>,
}

impl Default for PerThreadCounts {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS)
                .map(|_| CachePadded::new([AtomicU64::new(0), AtomicU64::new(0)]))
                .collect(),
        }
    }
}

/// The calling thread's shard index, taken on first use. A hint for spreading writes: the std atomic
/// (not the loom facade) is right, since no count depends on which shard a thread picks.
fn shard_index() -> usize {
    use std::sync::atomic::{AtomicUsize, Ordering as StdOrdering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SHARD: Cell<usize> = const { Cell::new(usize::MAX) };
    }
    SHARD.with(|shard| {
        let mut index = shard.get();
        if index == usize::MAX {
            index = NEXT.fetch_add(1, StdOrdering::Relaxed) % SHARDS;
            shard.set(index);
        }
        index
    })
}

impl PerThreadCounts {
    /// Adds `published` and `unrouted` in the calling thread's shard.
    #[inline]
    pub(crate) fn add(&self, published: u64, unrouted: u64) {
        let [p, u] = &*self.shards[shard_index()];
        p.fetch_add(published, Ordering::Relaxed);
        if unrouted > 0 {
            u.fetch_add(unrouted, Ordering::Relaxed);
        }
    }

    /// `(published, unrouted)` summed over every shard.
    pub(crate) fn totals(&self) -> (u64, u64) {
        self.shards.iter().fold((0, 0), |(p, u), shard| {
            (
                p + shard[0].load(Ordering::Relaxed),
                u + shard[1].load(Ordering::Relaxed),
            )
        })
    }
}

#[cfg(all(test, not(switchyard_loom)))]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn adds_from_many_threads_sum_exactly() {
        let counts = Arc::new(PerThreadCounts::default());
        let threads: Vec<_> = (0..SHARDS + 3)
            .map(|_| {
                let counts = counts.clone();
                std::thread::spawn(move || {
                    for i in 0..1000 {
                        counts.add(1, u64::from(i % 4 == 0));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(
            counts.totals(),
            ((SHARDS as u64 + 3) * 1000, (SHARDS as u64 + 3) * 250)
        );
    }

    #[test]
    fn threads_spread_over_the_shards() {
        let indices: std::collections::HashSet<usize> = (0..SHARDS)
            .map(|_| std::thread::spawn(shard_index).join().unwrap())
            .collect();
        // Other tests take indices concurrently, so these threads need not get every shard, but
        // round-robin hands out more than one.
        assert!(indices.len() > 1, "{indices:?}");
    }
}
