//! Route delivery: the one step every publish ends in.
//!
//! Every way to publish — a topic string ([`crate::Broker::publish`] and `publish_with`), a retained
//! message, a request, a [`crate::Publisher`] handle (one message or a batch) — ends in
//! [`PublishCounters::deliver`]: offer the message to each subscription of its route, under each
//! subscription's policy ([`SubscriptionCore::offer`], the one offer), add up what happened, and count
//! the publish. A route is either a walk of one routing-table snapshot's trie or a publisher's cached
//! list of subscriptions ([`Route`]).
//!
//! The message is built only when the route reaches a subscription, so a publish that matches nothing
//! allocates nothing; it is built once and shared by every subscription it reaches. Along a cached
//! route the last subscription takes the caller's handle instead of a clone.

use std::sync::Arc;

use crossbeam_utils::CachePadded;

use crate::message::Message;
use crate::routing::RoutingTable;
use crate::subscription::{Offer, SubscriptionCore, Wait};
use crate::sync::{AtomicU64, Ordering};

/// What one publish did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PublishOutcome {
    /// Subscriptions whose filter matched the topic.
    pub matched: usize,
    /// Of those, how many queued the message.
    pub queued: usize,
    /// Messages dropped because of this publish: the new message where it was refused (full queue, block
    /// timeout, unsubscribed), plus older messages evicted to make room under `DropOldest`.
    pub dropped: usize,
}

impl PublishOutcome {
    #[inline]
    fn count(&mut self, offer: Offer) {
        self.matched += 1;
        match offer {
            Offer::Queued => self.queued += 1,
            Offer::QueuedEvicting => {
                self.queued += 1;
                self.dropped += 1;
            }
            Offer::Dropped => self.dropped += 1,
        }
    }

    /// Adds another outcome to this one (for batches).
    pub fn merge(&mut self, other: PublishOutcome) {
        self.matched += other.matched;
        self.queued += other.queued;
        self.dropped += other.dropped;
    }
}

/// The subscriptions one message goes to.
pub(crate) enum Route<'a> {
    /// Every subscription whose filter matches the topic, in one routing-table snapshot.
    Table(&'a RoutingTable, &'a str),
    /// A publisher's cached list, valid for the table version it was computed from.
    Cached(&'a [Arc<SubscriptionCore>]),
}

/// The broker-wide publish counters, written by every publish (hence padded apart).
#[derive(Debug, Default)]
pub(crate) struct PublishCounters {
    published: CachePadded<AtomicU64>,
    unrouted: CachePadded<AtomicU64>,
}

impl PublishCounters {
    /// Offers the message `build` makes (called at most once, and only if `route` reaches a
    /// subscription) to every subscription of `route`, and counts the publish.
    #[inline]
    pub(crate) fn deliver(
        &self,
        route: Route<'_>,
        build: impl FnOnce() -> Message,
    ) -> PublishOutcome {
        let mut outcome = PublishOutcome::default();
        match route {
            Route::Table(table, topic) => {
                let mut build = Some(build);
                let mut message: Option<Message> = None;
                table.trie.for_each_match(topic, |core| {
                    if message.is_none() {
                        message = build.take().map(|build| build());
                    }
                    if let Some(msg) = &message {
                        outcome.count(core.offer(msg, Wait::MayBlock));
                    }
                });
            }
            Route::Cached(routes) => {
                if let Some((last, others)) = routes.split_last() {
                    let msg = build();
                    for core in others {
                        outcome.count(core.offer(&msg, Wait::MayBlock));
                    }
                    outcome.count(last.offer_owned(msg, Wait::MayBlock));
                }
            }
        }
        self.published.fetch_add(1, Ordering::Relaxed);
        if outcome.matched == 0 {
            self.unrouted.fetch_add(1, Ordering::Relaxed);
        }
        outcome
    }

    /// Accepted publishes so far.
    pub(crate) fn published(&self) -> u64 {
        self.published.load(Ordering::Relaxed)
    }

    /// Publishes that matched no subscription so far.
    pub(crate) fn unrouted(&self) -> u64 {
        self.unrouted.load(Ordering::Relaxed)
    }
}
