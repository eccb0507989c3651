//! The routing table and how publishers read it without a lock.
//!
//! # The `RwLock` way, and why not
//! The obvious table is `RwLock<HashMap<Filter, Vec<Sender>>>`: every publish takes the read lock, every
//! subscribe the write lock. Readers then contend on the lock's counter (one cache line written by every
//! publisher on every message), and a subscribe stalls all publishers while it holds the write lock.
//!
//! # The `ArcSwap` way
//! The table here is immutable: a `RoutingTable` holds a persistent [`Trie`] and a version number.
//! `Routing` keeps the current one in an [`arc_swap::ArcSwap`] (behind `crate::sync::arc_cell`, which
//! loom models replace with a mutex so they see its release and acquire):
//!
//! - **Read path (publish):** one `Routing::load` per publish gives a snapshot of the table, and the
//!   whole routing decision for that message is made on that one snapshot. Two loads in one publish could
//!   see two different tables; we never do that. `load` is lock-free and does not write a shared
//!   counter in the common case (arc-swap's debt slots are per thread).
//! - **Write path (subscribe, unsubscribe):** under the broker's control mutex, which the data path
//!   never touches, the writer builds the next table from the current one ([`Trie::insert`] /
//!   [`Trie::remove`] share every unchanged node, so this costs about the filter's depth), stores it,
//!   then bumps `Routing::version`.
//!
//! # Memory ordering
//! `ArcSwap::store` publishes the new table with release semantics and `load` reads it with acquire,
//! so a publisher that sees the new table sees it fully built, including each new subscription's queue.
//! The separate version counter is stored (release) *after* the table. A publisher handle that caches
//! its route loads the version (acquire) and compares it with the version of the table it routed from:
//! equal means no table newer than its route has been announced; different means it reloads the table
//! and takes the table's own version, never the counter's, so a route is always tagged with the version
//! it was computed from. A cached route may lag a store by the instant between the store and the version
//! bump, which is the same freedom a plain publish has when it loaded the table just before the swap.
//!
//! A publish that loaded the old table may still push into a subscription that the new table no longer
//! has. The broker accounts for that message: see `BrokerShared::retire` and "The books" in
//! `docs/architecture.md`.

use std::sync::Arc;

use crossbeam_utils::CachePadded;

use crate::subscription::SubscriptionCore;
use crate::sync::arc_cell::{ArcCell, ArcGuard};
use crate::sync::{AtomicU64, Ordering};
use crate::topic::trie::Trie;

/// One immutable version of the routing table.
#[derive(Debug, Default)]
pub(crate) struct RoutingTable {
    pub(crate) version: u64,
    pub(crate) trie: Trie<Arc<SubscriptionCore>>,
}

/// The current routing table and its version. See the [module docs](self).
#[derive(Debug)]
pub(crate) struct Routing {
    table: ArcCell<RoutingTable>,
    version: CachePadded<AtomicU64>,
}

impl Routing {
    pub(crate) fn new() -> Self {
        Self {
            table: ArcCell::new(Arc::new(RoutingTable::default())),
            version: CachePadded::new(AtomicU64::new(0)),
        }
    }

    /// A snapshot of the current table. Use one per routing decision.
    #[inline]
    pub(crate) fn load(&self) -> ArcGuard<RoutingTable> {
        self.table.load()
    }

    /// The version of the newest announced table. One atomic load.
    #[inline]
    pub(crate) fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// Replaces the table with `f(current)`. Callers must hold the broker's control mutex, which makes
    /// writers take turns; readers are never blocked.
    pub(crate) fn update(
        &self,
        f: impl FnOnce(&Trie<Arc<SubscriptionCore>>) -> Trie<Arc<SubscriptionCore>>,
    ) {
        let current = self.table.load_full();
        let version = current.version + 1;
        let trie = f(&current.trie);
        self.table.store(Arc::new(RoutingTable { version, trie }));
        self.version.store(version, Ordering::Release);
    }
}
