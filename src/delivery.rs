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
use crate::subscription::{Offered, SubscriptionCore, Wait};
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
    /// Adds what offering `n` messages to one subscription did.
    #[inline]
    fn add(&mut self, n: usize, offered: Offered) {
        self.matched += n;
        self.queued += offered.queued;
        self.dropped += offered.evicted + offered.dropped;
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
        match route {
            Route::Table(table, topic) => {
                let mut outcome = PublishOutcome::default();
                let mut build = Some(build);
                let mut message: Option<Message> = None;
                table.trie.for_each_match(topic, |core| {
                    if message.is_none() {
                        message = build.take().map(|build| build());
                    }
                    if let Some(msg) = &message {
                        outcome.add(
                            1,
                            core.offer_all(std::iter::once(msg.clone()), Wait::MayBlock),
                        );
                    }
                });
                self.count_publishes(1, &outcome);
                outcome
            }
            Route::Cached([]) => {
                let outcome = PublishOutcome::default();
                self.count_publishes(1, &outcome);
                outcome
            }
            Route::Cached(routes) => self.deliver_cached(routes, build()),
        }
    }

    /// Offers a publisher's batch (emptied) along its cached route: each subscription is offered the
    /// whole batch at once ([`SubscriptionCore::offer_all`]), so its counters and its receivers'
    /// wake-up are paid once per batch, not once per message. Counts `batch.len()` publishes.
    #[inline]
    pub(crate) fn deliver_batch(
        &self,
        routes: &[Arc<SubscriptionCore>],
        batch: &mut Vec<Message>,
    ) -> PublishOutcome {
        self.deliver_cached(routes, batch)
    }

    /// The cached-route delivery of [`Self::deliver`] and [`Self::deliver_batch`]: every subscription
    /// but the last is offered clones, the last takes the caller's handles.
    #[inline]
    fn deliver_cached(
        &self,
        routes: &[Arc<SubscriptionCore>],
        batch: impl Batch,
    ) -> PublishOutcome {
        let n = batch.len();
        let mut outcome = PublishOutcome::default();
        match routes.split_last() {
            Some((last, others)) => {
                for core in others {
                    outcome.add(n, core.offer_all(batch.clones(), Wait::MayBlock));
                }
                outcome.add(n, last.offer_all(batch.into_handles(), Wait::MayBlock));
            }
            None => drop(batch.into_handles()),
        }
        self.count_publishes(n as u64, &outcome);
        outcome
    }

    /// Counts `n` publishes that did `outcome` between them.
    #[inline]
    fn count_publishes(&self, n: u64, outcome: &PublishOutcome) {
        self.published.fetch_add(n, Ordering::Relaxed);
        if outcome.matched == 0 {
            self.unrouted.fetch_add(n, Ordering::Relaxed);
        }
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

/// The messages of one cached-route delivery: one message, or a publisher's batch.
trait Batch {
    fn len(&self) -> usize;
    /// A clone of each message, for every subscription but the last.
    fn clones(&self) -> impl ExactSizeIterator<Item = Message>;
    /// The messages themselves, for the last subscription.
    fn into_handles(self) -> impl ExactSizeIterator<Item = Message>;
}

impl Batch for Message {
    fn len(&self) -> usize {
        1
    }

    fn clones(&self) -> impl ExactSizeIterator<Item = Message> {
        std::iter::once(self.clone())
    }

    fn into_handles(self) -> impl ExactSizeIterator<Item = Message> {
        std::iter::once(self)
    }
}

impl Batch for &mut Vec<Message> {
    fn len(&self) -> usize {
        Vec::len(self)
    }

    fn clones(&self) -> impl ExactSizeIterator<Item = Message> {
        self.iter().cloned()
    }

    fn into_handles(self) -> impl ExactSizeIterator<Item = Message> {
        self.drain(..)
    }
}
