//! A publisher handle bound to one topic: the fastest way to publish many messages on it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::{BrokerShared, PublishOptions};
use crate::features::join::JoinError;
use crate::features::replay_log::ReplayLog;
use crate::message::Message;
use crate::message::priority::Priority;
use crate::message::recycle::RecentMessages;
use crate::routing::delivery::{CachedRoute, Route};
use crate::stats::counters::{HandleCounts, LiveCount};
use crate::subscription::{PublishOutcome, Wait};
use crate::topic::Topic;

/// A publishing handle bound to one topic.
///
/// It validates the topic once and caches the list of subscriptions the topic reaches (computed when
/// the handle is made), tagged with the routing table's version. Each publish checks the broker's version (one atomic load) and recomputes
/// the route only when the table changed. This is the fastest way to publish many messages on one topic.
///
/// A cached route keeps removed subscriptions reachable until the next publish notices the new version;
/// they are finalised after that (see "Retiring a subscription" in `src/broker/mod.rs`), so nothing is
/// lost or miscounted.
#[derive(Debug)]
pub struct Publisher {
    shared: Arc<BrokerShared>,
    topic: Topic,
    version: u64,
    routes: Vec<CachedRoute>,
    /// The messages of a `publish_batch` being delivered; empty between calls, kept for its capacity.
    batch: Vec<Message>,
    /// Recently sent messages, whose allocations are reused once receivers let them go.
    recent: RecentMessages,
    /// This handle's publish counts (see [`HandleCounts`]).
    counts: LiveCount<HandleCounts>,
    /// The broker's replay log, if it keeps this topic: then every publish takes a sequence number
    /// first (see `super::replay`).
    log: Option<Arc<ReplayLog>>,
}

impl Publisher {
    /// A handle on `topic` (already validated against the broker's limits), with no route yet.
    pub(super) fn new(shared: Arc<BrokerShared>, topic: Topic) -> Self {
        let counts = shared.publishes.register_handle();
        let log = shared.log_for(topic.as_str()).cloned();
        let mut publisher = Self {
            shared,
            topic,
            version: u64::MAX,
            routes: Vec::new(),
            batch: Vec::new(),
            recent: RecentMessages::default(),
            counts,
            log,
        };
        // The route is walked here, where the handle is made (the control path), not on its first
        // publish: a burst over many handles that each publish a few times (one per device topic)
        // then pays one version check per publish, as a long-lived handle does.
        publisher.refresh();
        publisher
    }

    /// The topic this handle publishes on.
    ///
    /// ```
    /// use switchyard::Broker;
    ///
    /// let broker = Broker::new();
    /// let publisher = broker.publisher("sensors/kitchen/temp")?;
    /// assert_eq!(publisher.topic().as_str(), "sensors/kitchen/temp");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn topic(&self) -> &Topic {
        &self.topic
    }

    #[inline]
    fn refresh(&mut self) {
        if self.shared.routing.version() == self.version {
            return;
        }
        let table = self.shared.routing.load();
        self.routes.clear();
        table.trie.for_each_match(self.topic.as_str(), |core| {
            self.routes
                .push(CachedRoute::new(core.clone(), &self.counts))
        });
        self.version = table.version;
    }

    /// Publishes `payload` on this handle's topic. See [`Broker::publish`](crate::Broker::publish).
    ///
    /// ```
    /// use switchyard::Broker;
    ///
    /// let broker = Broker::new();
    /// let all = broker.subscribe("sensors/#")?;
    /// let mut kitchen = broker.publisher("sensors/kitchen/temp")?;
    /// let outcome = kitchen.publish("21.5");
    /// assert_eq!((outcome.matched, outcome.queued), (1, 1));
    ///
    /// // A subscription made later is on the route from the next publish.
    /// let later = broker.subscribe("sensors/kitchen/+")?;
    /// assert_eq!(kitchen.publish("21.6").matched, 2);
    /// assert_eq!((all.len(), later.len()), (2, 1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn publish(&mut self, payload: impl Into<Bytes>) -> PublishOutcome {
        if self.log.is_some() {
            return self.publish_logged(payload.into(), PublishOptions::default());
        }
        self.refresh();
        self.send(payload, Priority::Normal, 0, Wait::MayBlock)
    }

    /// Publishes `payload` on this handle's topic with `options`. See
    /// [`Broker::publish_with`](crate::Broker::publish_with). The topic was validated when the handle
    /// was made, so this cannot fail; a retained message the full retained store refuses to keep is
    /// delivered all the same and counted in [`PublishOutcome::retain_refused`].
    ///
    /// ```
    /// use switchyard::{Broker, Priority, PublishOptions};
    ///
    /// let broker = Broker::new();
    /// let jobs = broker.subscribe("jobs")?;
    /// let mut publisher = broker.publisher("jobs")?;
    /// publisher.publish("routine");
    /// publisher.publish_with("urgent", PublishOptions::new().priority(Priority::Critical));
    ///
    /// let first = jobs.try_recv()?;
    /// assert_eq!(first.priority(), Priority::Critical);
    /// assert_eq!(&first.payload()[..], b"urgent");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn publish_with(
        &mut self,
        payload: impl Into<Bytes>,
        options: PublishOptions,
    ) -> PublishOutcome {
        if self.log.is_some() {
            return self.publish_logged(payload.into(), options);
        }
        let wait = Wait::for_publish(options.deadline);
        if options.retain {
            return self.shared.publish_retained(
                Message::on_topic(&self.topic, payload, options.priority).tagged(options.tag),
                None,
                wait,
            );
        }
        self.refresh();
        self.send(payload, options.priority, options.tag, wait)
    }

    /// Waits up to `timeout` (in all) until every joinable subscription this handle's topic reaches has
    /// processed every message queued on it (see [`SubscriptionOptions::joinable`](crate::SubscriptionOptions::joinable)). Returns how many joinable
    /// subscriptions it waited for; subscriptions that are not joinable are skipped.
    ///
    /// ```
    /// use std::time::Duration;
    /// use switchyard::{Broker, SubscriptionOptions};
    ///
    /// let broker = Broker::new();
    /// let jobs = broker.subscribe_with("jobs", SubscriptionOptions::new().joinable(true))?;
    /// let _audit = broker.subscribe("jobs")?; // not joinable: skipped
    /// let mut publisher = broker.publisher("jobs")?;
    /// publisher.publish("resize");
    /// assert!(publisher.join(Duration::from_millis(1)).is_err()); // not processed yet
    ///
    /// jobs.try_recv()?;
    /// jobs.done()?;
    /// assert_eq!(publisher.join(Duration::from_secs(1))?, 1); // one joinable subscription
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn join(&mut self, timeout: Duration) -> Result<usize, JoinError> {
        self.refresh();
        let deadline = Instant::now().checked_add(timeout);
        let mut joined = 0;
        for core in self
            .routes
            .iter()
            .map(|r| &r.core)
            .filter(|c| c.is_joinable())
        {
            core.join_until(deadline)?;
            joined += 1;
        }
        Ok(joined)
    }

    /// Publishes the payloads in order as one batch, and returns the summed outcome. The route is
    /// checked once, and each subscription is offered the whole batch in one go: its counters and its
    /// receivers' wake-up are paid once per batch instead of once per message, which is what makes a
    /// batch faster than a loop of [`Publisher::publish`] (see `docs/performance.md`).
    /// Receivers see the messages in order, as if published one by one; under `Block` a full queue
    /// makes the publisher wait mid-batch, after waking its receivers.
    ///
    /// ```
    /// use switchyard::Broker;
    ///
    /// let broker = Broker::new();
    /// let sub = broker.subscribe("ticks").unwrap();
    /// let mut publisher = broker.publisher("ticks").unwrap();
    /// let outcome = publisher.publish_batch(["1", "2", "3"]);
    /// assert_eq!(outcome.queued, 3);
    ///
    /// let mut got = Vec::new();
    /// sub.drain_into(&mut got, 64);
    /// let payloads: Vec<_> = got.iter().map(|m| m.payload().clone()).collect();
    /// assert_eq!(payloads, ["1", "2", "3"]);
    /// ```
    pub fn publish_batch<P: Into<Bytes>>(
        &mut self,
        payloads: impl IntoIterator<Item = P>,
    ) -> PublishOutcome {
        let mut batch = std::mem::take(&mut self.batch);
        if let Some(log) = self.log.take() {
            // The log's steps, as in `publish_logged`, once for the whole batch.
            batch.extend(
                payloads.into_iter().map(|payload| {
                    Message::on_topic(&self.topic, payload.into(), Priority::Normal)
                }),
            );
            let first = log.claim(batch.len() as u64);
            for (seq, msg) in (first..).zip(batch.iter_mut()) {
                msg.set_seq(seq);
            }
            self.refresh();
            log.record(&batch, self.version);
            self.log = Some(log);
        } else {
            self.refresh();
            batch.extend(payloads.into_iter().map(|payload| {
                self.recent
                    .make(&self.topic, payload.into(), Priority::Normal, 0)
            }));
        }
        let outcome = self
            .shared
            .publishes
            .deliver_batch(&self.routes, &self.counts, &mut batch);
        self.batch = batch;
        outcome
    }

    /// Publishes on a logged topic: the publish's steps 1 to 4 of the handover
    /// (`crate::features::replay_log::cursor`): take a sequence number, check the table's version
    /// (refreshing the route), record, offer. A fresh message each time: the log holds the ones sent,
    /// so the recycling ring would find none free.
    fn publish_logged(&mut self, payload: Bytes, options: PublishOptions) -> PublishOutcome {
        // Taken out of the handle for the call (the route is refreshed meanwhile), then put back.
        let Some(log) = self.log.take() else {
            return self.publish_with(payload, options);
        };
        let outcome = self.send_logged(&log, payload, options);
        self.log = Some(log);
        outcome
    }

    fn send_logged(
        &mut self,
        log: &ReplayLog,
        payload: Bytes,
        options: PublishOptions,
    ) -> PublishOutcome {
        let seq = log.claim(1);
        let msg = Message::on_topic(&self.topic, payload, options.priority)
            .tagged(options.tag)
            .sequenced(seq);
        let wait = Wait::for_publish(options.deadline);
        if options.retain {
            return self.shared.publish_retained(msg, Some(log), wait);
        }
        self.refresh();
        log.record([&msg], self.version);
        let Self {
            shared,
            routes,
            counts,
            ..
        } = self;
        shared
            .publishes
            .deliver(Route::Cached(routes, counts), wait, move || msg)
    }

    /// Offers one message along the cached route, waiting for room as `wait` allows.
    #[inline]
    fn send(
        &mut self,
        payload: impl Into<Bytes>,
        priority: Priority,
        tag: u8,
        wait: Wait,
    ) -> PublishOutcome {
        let Self {
            shared,
            topic,
            routes,
            recent,
            counts,
            ..
        } = self;
        shared
            .publishes
            .deliver(Route::Cached(routes, counts), wait, || {
                recent.make(topic, payload.into(), priority, tag)
            })
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.shared.publishes.fold_handle(&self.counts);
        // Release cached routes first, then let the broker finalise what they alone kept reachable
        // (those, not the whole retiring list: dropping many handles stays linear).
        let closed: Vec<_> = self
            .routes
            .iter()
            .filter(|r| r.core.is_closed())
            .map(|r| r.core.id)
            .collect();
        self.routes.clear();
        if !closed.is_empty() {
            self.shared.control().finalize_retiring_ids(closed);
        }
    }
}
