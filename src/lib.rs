//! # Switchyard
//!
//! A lock-free, in-memory publish/subscribe broker that accounts for every message.
//!
//! - **Topics and filters** : hierarchical topics such as `stocks/AAPL/price`; filters with
//!   `+` (or `*`) for one level and `#` for any number of levels, validated with errors that name the
//!   offending level.
//! - **Routing** : a persistent topic trie behind an `arc-swap`, so publishers never
//!   take a lock and subscribe/unsubscribe swap in a new table atomically.
//! - **Subscriptions** : each owns a bounded lock-free MPMC queue; clones of a handle
//!   compete for messages (a work queue), separate subscriptions each get every message (fan-out).
//! - **Overflow** : per subscription, `DropNewest`, `DropOldest` or `Block { timeout }`.
//! - **Accounting** : per subscription, `matched = delivered + dropped + depth + in_flight`
//!   exactly at quiescence; drops are counted by reason, and receivers see gaps in-band.
//! - **Delivery** : at most once by default; at least once with [`Broker::subscribe_acked`] (ack,
//!   nack, term, deadlines, delivery limits, a window; see [`delivery`]).
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

// One `unsafe` block in the crate, allowed in `sync/prefetch.rs` alone (a cache hint; see there).
#![deny(unsafe_code)]
#![warn(missing_docs)]

// The modules, alphabetically (rustfmt keeps them so). The layers, bottom up, each importing only
// from the layers below it: `id`, `sync` and `topic`; `message`; `queue` and `stats`; `features`;
// `subscription`; `routing`; `broker`.
mod broker; // the broker, its publisher handle, and its extensions: durable, explain, stats query
mod features; // acks, join, dead letters, retained messages, request/reply: below the subscription
mod id; // the subscription id every layer above shares
mod message; // a message, its priority, why it can be dropped, where a request's replies go
mod queue; // one subscription's lanes, the overflow policy, the ready list
mod routing; // the routing table and one message's delivery along a route
mod stats; // per-subscription counters and the snapshot types
mod subscription; // options, core, offer, receive, acknowledged receive
mod sync; // the loom facade, the asymmetric barrier, every wait (`Waiters`), the write prefetch
mod topic; // topics, filters and the persistent topic trie

pub use broker::{
    Broker, BrokerOptions, DurableState, DurableSubscription, Explained, Explanation, PublishError,
    PublishOptions, Publisher, STATE_SCHEMA, StateError, StatsQuery, StatsSelection, StatsSort,
    SubscribeError, UnknownSubscription,
};
pub use bytes::Bytes;
pub use features::ack::error::{AckError, AttemptEnd};
pub use features::ack::options::{AckOptions, AckOptionsError};
pub use features::ack::token::AckToken;
pub use features::dead_letter::{DeadLetter, DeadLetters};
pub use features::join::{DoneError, JoinError};
pub use features::replay_log::options::{ReplayFrom, ReplayLogOptions};
pub use features::request::{PendingReply, RequestError};
pub use features::retained::RetainedLimits;
pub use id::SubscriptionId;
pub use message::Message;
pub use message::priority::{ByPriority, DroppedByPriority, ParsePriorityError, Priority};
pub use message::reason::{DropReason, DroppedByReason};
pub use message::reply::ReplyError;
pub use queue::bytes::ByteBudget;
pub use queue::policy::{OverflowPolicy, ParsePolicyError};
pub use queue::ready::{AlreadyAttached, ReadySignal};
pub use stats::features::{
    AckRefusals, AckStats, AckTotals, DeadLetterStats, RequestStats, RetainedStats,
};
pub use stats::replay::{ReplayEvictions, ReplayLogStats, ReplayStats};
pub use stats::snapshot::{
    LatencySummary, Rates, SCHEMA, StatsSnapshot, SubscriptionCounts, SubscriptionStats, Totals,
};
pub use subscription::{
    AckBatch, AckDelivery, AckSubscription, Delivery, Drained, PublishOutcome, RecvError,
    RecvTimeoutError, Subscription, SubscriptionOptions, TryAckRecvError, TryRecvError,
};
pub use sync::spin::SpinPolicy;
pub use topic::trie::Trie;
pub use topic::{
    Filter, Topic, TopicError, TopicLimits, TopicSyntax, filter_matches, filter_matches_with,
    validate_filter, validate_topic,
};

/// The library guide (`docs/library.md`): each feature with an example, compiled and run as a
/// doctest so it cannot go stale.
#[doc = include_str!("../docs/library.md")]
pub mod guide {}

/// The architecture guide (`docs/architecture.md`): the layers and one message's path through them.
#[doc = include_str!("../docs/architecture.md")]
pub mod architecture {}

/// The delivery guarantees (`docs/delivery.md`): at most once, and acknowledged (at least once), stated
/// as promises with their order and their limits.
#[doc = include_str!("../docs/delivery.md")]
pub mod delivery {}

/// The README's Rust examples, compiled and run as doctests so they cannot go stale.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
