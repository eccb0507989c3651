//! # Switchyard
//!
//! A lock-free, in-memory publish/subscribe broker that accounts for every message.
//!
//! - **Topics and filters** ([`topic`]): hierarchical topics such as `stocks/AAPL/price`; filters with
//!   `+` (or `*`) for one level and `#` for any number of levels, validated with errors that name the
//!   offending level.
//! - **Routing** ([`trie`], [`routing`]): a persistent topic trie behind an `arc-swap`, so publishers never
//!   take a lock and subscribe/unsubscribe swap in a new table atomically.
//! - **Subscriptions** ([`subscription`]): each owns a bounded lock-free MPMC queue; clones of a handle
//!   compete for messages (a work queue), separate subscriptions each get every message (fan-out).
//! - **Overflow** ([`policy`]): per subscription, `DropNewest`, `DropOldest` or `Block { timeout }`.
//! - **Accounting** ([`counters`], [`stats`]): per subscription, `matched = delivered + dropped + depth`
//!   exactly at quiescence; drops are counted by reason, and receivers see gaps in-band.
//!
//! ```
//! use switchyard::{Broker, OverflowPolicy, SubscriptionOptions};
//!
//! let broker = Broker::new();
//! let all_alerts = broker.subscribe("alerts/#").unwrap();
//! let ticks = broker
//!     .subscribe_with("stocks/+/price", SubscriptionOptions::new().capacity(2).policy(OverflowPolicy::DropOldest))
//!     .unwrap();
//!
//! broker.publish("alerts/security/intrusion", "door 3").unwrap();
//! for price in ["1", "2", "3"] {
//!     broker.publish("stocks/AAPL/price", price).unwrap();
//! }
//!
//! assert_eq!(all_alerts.try_recv().unwrap().topic(), "alerts/security/intrusion");
//! let first = ticks.try_recv().unwrap();
//! assert_eq!(&first.payload()[..], b"2"); // "1" was evicted to make room
//! assert_eq!(first.missed().unwrap().evicted, 1); // and the receiver is told, in-band
//!
//! let stats = broker.stats();
//! assert!(stats.balances());
//! ```

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

mod barrier;
mod broker;
pub mod counters;
pub mod dead_letter;
mod delivery;
pub mod durable;
pub mod explain;
pub mod join;
mod lane;
mod message;
pub mod policy;
pub mod priority;
pub mod ready;
mod recycle;
pub mod request;
pub mod retained;
pub mod routing;
pub mod stats;
pub mod stats_query;
pub mod subscription;
mod sync;
pub mod topic;
pub mod trie;
mod waiters;

pub use broker::{
    Broker, BrokerOptions, PublishError, PublishOptions, PublishOutcome, Publisher, SubscribeError,
    UnknownSubscription,
};
pub use bytes::Bytes;
pub use counters::{DropReason, DroppedByReason};
pub use dead_letter::{DeadLetter, DeadLetterStats, DeadLetters};
pub use durable::{DurableState, DurableSubscription, STATE_SCHEMA, StateError};
pub use explain::{Explained, Explanation};
pub use message::Message;
pub use policy::{OverflowPolicy, ParsePolicyError};
pub use priority::{ByPriority, DroppedByPriority, ParsePriorityError, Priority};
pub use ready::{AlreadyAttached, ReadySignal};
pub use request::{PendingReply, ReplyError, RequestError, RequestStats};
pub use retained::{RetainedLimits, RetainedStats};
pub use stats::{LatencySummary, Rates, SCHEMA, StatsSnapshot, SubscriptionStats, Totals};
pub use stats_query::{StatsQuery, StatsSelection, StatsSort};
pub use subscription::{
    Delivery, DoneError, Drained, JoinError, RecvError, RecvTimeoutError, Subscription,
    SubscriptionId, SubscriptionOptions, TryRecvError,
};
pub use topic::{Filter, Topic, TopicError, TopicLimits, filter_matches};

/// The README's Rust examples, compiled and run as doctests so they cannot go stale.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

/// The library guide's examples (`docs/library.md`), compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../docs/library.md")]
struct LibraryDoctests;

/// The architecture guide's examples (`docs/architecture.md`), compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../docs/architecture.md")]
struct ArchitectureDoctests;
