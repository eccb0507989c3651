//! Route delivery: the one step every publish ends in.
//!
//! Every way to publish — a topic string ([`crate::Broker::publish`] and `publish_with`), a retained
//! message, a request, a [`crate::Publisher`] handle — ends here: [`PublishCounters::deliver`] for one
//! message, [`PublishCounters::deliver_batch`] for a publisher's batch. Both offer the messages to each
//! subscription of the route, under each subscription's policy ([`SubscriptionCore::offer_all`], the
//! one offer, which takes a whole batch at once), add up what happened, and count the publishes: in
//! the broker's shared counters, or in a publisher handle's own ([`HandleCounts`]). A route is either
//! a walk of one routing-table snapshot's trie or a publisher's cached list of subscriptions
//! ([`Route`]).
//!
//! A message is built only when the route reaches a subscription, so a publish that matches nothing
//! allocates nothing; it is built once and shared by every subscription it reaches. Along a cached
//! route the last subscription takes the caller's handles instead of clones.

use std::sync::Arc;

use crate::message::Message;
use crate::routing::table::RoutingTable;
use crate::stats::counters::{CountIn, HandleCounts, LiveCount, LiveCounts, Matched, RouteShare};
use crate::stats::per_thread::PerThreadCounts;
use crate::subscription::{PublishOutcome, SubscriptionCore, Wait};

/// The subscriptions one message goes to.
pub(crate) enum Route<'a> {
    /// Every subscription whose filter matches the topic, in one routing-table snapshot.
    Table(&'a RoutingTable, &'a str),
    /// A publisher's cached list, valid for the table version it was computed from, and the
    /// publisher's own publish counts.
    Cached(&'a [CachedRoute], &'a HandleCounts),
}

/// One subscription of a publisher's cached route, with what the publisher matched to it
/// ([`RouteShare`]: derived from the handle's publish count, so a publish writes nothing per
/// subscription): registered with the subscription when the route is cached, folded into the
/// subscription's shared count when it is dropped.
#[derive(Debug)]
pub(crate) struct CachedRoute {
    pub(crate) core: Arc<SubscriptionCore>,
    share: LiveCount<RouteShare>,
}

impl CachedRoute {
    /// `core` on the route of the handle that counts `handle`, from its publish count now.
    pub(crate) fn new(core: Arc<SubscriptionCore>, handle: &LiveCount<HandleCounts>) -> Self {
        let share = core.register_handle_matched(handle);
        Self { core, share }
    }

    /// Offers `msgs`, already counted in the handle's publishes, which stood at `before` ahead of them.
    #[inline]
    fn offer_all(
        &self,
        msgs: impl ExactSizeIterator<Item = Message>,
        wait: Wait,
        before: u64,
    ) -> PublishOutcome {
        self.core
            .offer_all(msgs, wait, Matched::ByHandle { before })
    }
}

impl Drop for CachedRoute {
    fn drop(&mut self) {
        self.core.fold_handle_matched(&self.share);
    }
}

/// The broker's publish counters: a pair per publishing thread for `Broker::publish` and friends
/// ([`PerThreadCounts`], so no two threads write one line), and one pair per [`crate::Publisher`]
/// handle that only that handle writes.
#[derive(Debug, Default)]
pub(crate) struct PublishCounters {
    shared: PerThreadCounts,
    /// The counts of live `Publisher` handles, folded into the shared pair when they drop.
    handles: LiveCounts<HandleCounts>,
}

impl PublishCounters {
    /// Offers the message `build` makes (called at most once, and only if `route` reaches a
    /// subscription) to every subscription of `route`, waiting for room in a `Block` subscription as
    /// `wait` allows, and counts the publish.
    #[inline]
    pub(crate) fn deliver(
        &self,
        route: Route<'_>,
        wait: Wait,
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
                        if !core.takes_live(msg) {
                            outcome.merge(replayed_instead(1));
                            return;
                        }
                        outcome.merge(core.offer_all(
                            std::iter::once(msg.clone()),
                            wait,
                            Matched::Shared,
                        ));
                    }
                });
                self.count_publishes(CountIn::Shared, 1, &outcome);
                outcome
            }
            Route::Cached([], counts) => {
                let outcome = PublishOutcome::default();
                self.count_publishes(CountIn::Handle(counts), 1, &outcome);
                outcome
            }
            Route::Cached(routes, counts) => self.deliver_cached(routes, counts, wait, build()),
        }
    }

    /// Offers a publisher's batch (emptied) along its cached route: each subscription is offered the
    /// whole batch at once ([`SubscriptionCore::offer_all`]), so its counters and its receivers'
    /// wake-up are paid once per batch, not once per message. Counts `batch.len()` publishes.
    #[inline]
    pub(crate) fn deliver_batch(
        &self,
        routes: &[CachedRoute],
        counts: &HandleCounts,
        batch: &mut Vec<Message>,
    ) -> PublishOutcome {
        self.deliver_cached(routes, counts, Wait::MayBlock, batch)
    }

    /// The cached-route delivery of [`Self::deliver`] and [`Self::deliver_batch`]: every subscription
    /// but the last is offered clones, the last takes the caller's handles.
    ///
    /// The publishes are counted first, in the handle's counts: that count is also what each
    /// subscription of the route matched ([`RouteShare`]), so it must come before any push, for
    /// `delivered + dropped <= matched` to hold at every instant.
    #[inline]
    fn deliver_cached(
        &self,
        routes: &[CachedRoute],
        counts: &HandleCounts,
        wait: Wait,
        batch: impl Batch,
    ) -> PublishOutcome {
        let n = batch.len();
        let before = counts.add(n as u64, routes.is_empty());
        let mut outcome = PublishOutcome::default();
        // A batch takes its sequence numbers in one step, so a replay's `live_from` is never inside
        // it: its first message decides for all of them.
        let takes_live =
            |route: &CachedRoute| batch.first().is_none_or(|m| route.core.takes_live(m));
        match routes.split_last() {
            Some((last, others)) => {
                for route in others {
                    outcome.merge(if takes_live(route) {
                        route.offer_all(batch.clones(), wait, before)
                    } else {
                        route.replayed_instead(n)
                    });
                }
                outcome.merge(if takes_live(last) {
                    last.offer_all(batch.into_handles(), wait, before)
                } else {
                    drop(batch.into_handles());
                    last.replayed_instead(n)
                });
            }
            None => drop(batch.into_handles()),
        }
        outcome
    }

    /// Counts `n` publishes that did `outcome` between them.
    #[inline]
    fn count_publishes(&self, counts: CountIn<'_, HandleCounts>, n: u64, outcome: &PublishOutcome) {
        let unrouted = outcome.matched == 0;
        match counts {
            CountIn::Handle(handle) => {
                handle.add(n, unrouted);
            }
            CountIn::Shared => self.shared.add(n, if unrouted { n } else { 0 }),
        }
    }

    /// Counts for a new `Publisher` handle, included in [`Self::totals`] until
    /// [`Self::fold_handle`].
    pub(crate) fn register_handle(&self) -> LiveCount<HandleCounts> {
        self.handles.register()
    }

    /// A `Publisher` handle is going: its counts join the shared pair as they leave the list.
    pub(crate) fn fold_handle(&self, counts: &LiveCount<HandleCounts>) {
        self.handles
            .fold(counts, |c| self.shared.add(c.published(), c.unrouted()));
    }

    /// `(published, unrouted)`: accepted publishes, and those that matched no subscription, so far.
    pub(crate) fn totals(&self) -> (u64, u64) {
        self.handles.sum(
            || self.shared.totals(),
            |(p, u), h| (p + h.published(), u + h.unrouted()),
        )
    }
}

impl CachedRoute {
    /// [`replayed_instead`] along a cached route: the replay counts those messages matched when it
    /// hands them out, so the handle's share leaves them out.
    fn replayed_instead(&self, n: usize) -> PublishOutcome {
        self.share.count_replayed(n as u64);
        replayed_instead(n)
    }
}

/// `n` logged messages a subscription matched and was not offered live, because its replay hands
/// them out (see `crate::features::replay_log::cursor`): matched, but neither queued nor dropped here.
fn replayed_instead(n: usize) -> PublishOutcome {
    PublishOutcome {
        matched: n,
        ..PublishOutcome::default()
    }
}

/// The messages of one cached-route delivery: one message, or a publisher's batch.
trait Batch {
    fn len(&self) -> usize;
    /// The first message, if any.
    fn first(&self) -> Option<&Message>;
    /// A clone of each message, for every subscription but the last.
    fn clones(&self) -> impl ExactSizeIterator<Item = Message>;
    /// The messages themselves, for the last subscription.
    fn into_handles(self) -> impl ExactSizeIterator<Item = Message>;
}

impl Batch for Message {
    fn len(&self) -> usize {
        1
    }

    fn first(&self) -> Option<&Message> {
        Some(self)
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

    fn first(&self) -> Option<&Message> {
        self.as_slice().first()
    }

    fn clones(&self) -> impl ExactSizeIterator<Item = Message> {
        self.iter().cloned()
    }

    fn into_handles(self) -> impl ExactSizeIterator<Item = Message> {
        self.drain(..)
    }
}
