//! The broker: publish, subscribe, unsubscribe, stats.
//!
//! # Data path
//! `publish(topic, payload)` validates the topic, loads one routing-table snapshot, walks the trie, and
//! offers the message to each matching subscription's queue under that subscription's overflow policy.
//! The message (topic and payload) is allocated once, lazily, only if something matched, and shared by
//! every subscription it reaches. No lock is taken; no system call is made unless a receiver is parked.
//!
//! # Control path
//! `subscribe` and `unsubscribe` serialise on one mutex, build the next routing table (sharing every
//! unchanged trie node) and swap it in; see [`crate::routing`].
//!
//! # Retiring a subscription without losing a message
//! Unsubscribing removes the subscription from the table, closes it and counts what was queued as
//! dropped (`unsubscribed`). A publisher that loaded the previous table a moment earlier may still be
//! offering it a message. Closed subscriptions count such late offers as `unsubscribed` drops; if one
//! slips into the queue between the close and the drain, it is still there when the subscription is
//! finalised. A removed subscription stays on a *retiring* list, still counted in the totals, until the
//! broker holds its only reference ([`Arc::get_mut`] succeeds: no routing table, cached route or
//! receiver handle can reach it any more, and its reference drops have been acquired); then its queue
//! is drained one last time and its counters are folded into the broker's retired totals. So broker-wide
//! totals never go backwards and `matched = delivered + dropped + depth` holds across churn.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::counters::DroppedByReason;
use crate::dead_letter::{DeadLetterQueue, DeadLetters};
pub use crate::delivery::PublishOutcome;
use crate::delivery::{CachedRoute, HandleCounts, PublishCounters, Route};
use crate::message::Message;
use crate::policy::OverflowPolicy;
use crate::priority::Priority;
use crate::recycle::RecentMessages;
use crate::request::{PendingReply, ReplySlot, RequestCounters, RequestError};
use crate::retained::{RetainedLimits, RetainedStore};
use crate::routing::Routing;
use crate::stats::{Rates, StatsSnapshot, SubscriptionStats, Totals};
use crate::subscription::{
    JoinError, Retire, Subscription, SubscriptionCore, SubscriptionId, SubscriptionOptions,
};
use crate::topic::{Filter, Topic, TopicError, TopicLimits, validate_topic};

/// Why a subscribe was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubscribeError {
    /// The filter is not valid.
    #[error("invalid filter: {0}")]
    InvalidFilter(#[from] TopicError),
    /// A capacity of zero was asked for.
    #[error("capacity must be at least 1 message, got 0")]
    ZeroCapacity,
    /// A durable subscription was asked for without a name.
    #[error("a durable subscription needs a name (SubscriptionOptions::name)")]
    DurableNeedsName,
    /// A durable subscription of that name exists with another filter.
    #[error("the durable subscription `{name}` already exists with filter `{filter}`")]
    DurableNameTaken {
        /// The name asked for.
        name: String,
        /// The existing subscription's filter.
        filter: String,
    },
    /// A capacity over [`SubscriptionOptions::MAX_CAPACITY`] was asked for.
    #[error("capacity {capacity} is over the limit of {max} messages per subscription")]
    CapacityTooLarge {
        /// What was asked for.
        capacity: usize,
        /// The limit.
        max: usize,
    },
}

/// Why a publish was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    /// The topic is not valid.
    #[error("invalid topic: {0}")]
    InvalidTopic(#[from] TopicError),
    /// A retained publish would take the retained store over one of its bounds; nothing was published.
    #[error(
        "cannot retain a message on `{topic}`: the retained store is at its {limit} limit of {max}"
    )]
    RetainedFull {
        /// The topic of the refused message.
        topic: String,
        /// Which bound: `max_messages` or `max_bytes`.
        limit: &'static str,
        /// The bound's value.
        max: usize,
    },
}

/// An operation named a subscription the broker does not have (never had, or already removed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("no subscription with id {0}")]
pub struct UnknownSubscription(pub SubscriptionId);

/// How a broker is set up. `BrokerOptions::default()` is what [`Broker::new`] builds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BrokerOptions {
    /// Limits topics and filters are validated against.
    pub limits: TopicLimits,
    /// Capacity of the dead-letter queue; `None` (the default) keeps no dead letters.
    /// See [`crate::dead_letter`].
    pub dead_letters: Option<usize>,
    /// Bounds of the retained-message store. See [`crate::retained`].
    pub retained: RetainedLimits,
}

impl BrokerOptions {
    /// Default options: default limits, no dead-letter queue.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the topic limits.
    pub fn limits(mut self, limits: TopicLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Sets the bounds of the retained-message store.
    pub fn retained(mut self, limits: RetainedLimits) -> Self {
        self.retained = limits;
        self
    }

    /// Keeps up to `capacity` dead letters (at least 1; a zero is raised to 1).
    pub fn dead_letters(mut self, capacity: usize) -> Self {
        self.dead_letters = Some(capacity.max(1));
        self
    }
}

/// How to publish one message. `PublishOptions::default()` is what [`Broker::publish`] does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PublishOptions {
    /// The message's priority; receivers take higher priorities first.
    pub priority: Priority,
    /// Keep it as the topic's retained message; an empty payload clears it. See [`crate::retained`].
    pub retain: bool,
    /// A byte carried with the message to its receivers ([`Message::tag`]), for protocol adapters; 0
    /// by default.
    pub tag: u8,
}

impl PublishOptions {
    /// `Normal` priority.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the priority.
    pub fn priority(mut self, priority: Priority) -> Self {
        self.priority = priority;
        self
    }

    /// Sets whether the message is retained.
    pub fn retain(mut self, retain: bool) -> Self {
        self.retain = retain;
        self
    }

    /// Sets the byte carried with the message ([`Message::tag`]).
    pub fn tag(mut self, tag: u8) -> Self {
        self.tag = tag;
        self
    }
}

/// Refuses a capacity of zero or over [`SubscriptionOptions::MAX_CAPACITY`].
pub(crate) fn check_capacity(capacity: usize) -> Result<(), SubscribeError> {
    if capacity == 0 {
        return Err(SubscribeError::ZeroCapacity);
    }
    if capacity > SubscriptionOptions::MAX_CAPACITY {
        return Err(SubscribeError::CapacityTooLarge {
            capacity,
            max: SubscriptionOptions::MAX_CAPACITY,
        });
    }
    Ok(())
}

/// Counts folded in from removed subscriptions, so totals stay monotonic.
#[derive(Debug, Default)]
pub(crate) struct RetiredTotals {
    pub(crate) matched: u64,
    pub(crate) delivered: u64,
    pub(crate) dropped: DroppedByReason,
}

#[derive(Debug)]
struct RateSample {
    at: Instant,
    published: u64,
    delivered: u64,
    dropped: u64,
}

/// State only the control path touches, behind the control mutex.
#[derive(Debug)]
pub(crate) struct Control {
    next_id: SubscriptionId,
    live: BTreeMap<SubscriptionId, Arc<SubscriptionCore>>,
    retiring: Vec<Arc<SubscriptionCore>>,
    retired: RetiredTotals,
    last_sample: RateSample,
}

impl Control {
    /// The live durable subscription called `name`.
    pub(crate) fn durable(&self, name: &str) -> Option<&Arc<SubscriptionCore>> {
        self.durables().find(|c| &*c.name == name)
    }

    /// The live durable subscriptions, by id.
    pub(crate) fn durables(&self) -> impl Iterator<Item = &Arc<SubscriptionCore>> {
        self.live.values().filter(|c| c.durable)
    }

    /// Finalises every retiring subscription that nothing but this list can reach any more.
    fn finalize_retiring(&mut self) {
        let retired = &mut self.retired;
        self.retiring.retain_mut(|core| {
            if Arc::get_mut(core).is_none() {
                return true;
            }
            core.drain_unsubscribed();
            let s = core.stats();
            retired.matched += s.matched;
            retired.delivered += s.delivered;
            retired.dropped.add(&s.dropped_by_reason);
            false
        });
    }
}

/// The broker's shared state; [`Broker`] and [`Publisher`] hold it, and [`Subscription`]s hold it as
/// the [`Retire`] that takes them out of routing.
#[derive(Debug)]
pub(crate) struct BrokerShared {
    routing: Routing,
    publishes: PublishCounters,
    control: Mutex<Control>,
    limits: TopicLimits,
    started: Instant,
    dead_letters: Option<Arc<DeadLetterQueue>>,
    requests: Arc<RequestCounters>,
    /// Taken only by retained publishes and by subscribes that ask for retained messages.
    retained: Mutex<RetainedStore>,
}

impl BrokerShared {
    fn retained(&self) -> MutexGuard<'_, RetainedStore> {
        // Every update of the store is completed before anything that could panic.
        self.retained
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Stores `msg` as its topic's retained message and routes it. The store update and the table load
    /// happen under the retained mutex, so a subscription being replayed the store sees the message
    /// exactly once; the offers happen after the mutex is released, so a `Block` subscription that makes
    /// this publish wait holds up neither [`Broker::stats`] nor other retained publishes. See
    /// [`crate::retained`].
    #[cold]
    fn publish_retained(&self, msg: Message) -> Result<PublishOutcome, PublishError> {
        let table = {
            let mut store = self.retained();
            store
                .retain(&msg)
                .map_err(|full| PublishError::RetainedFull {
                    topic: msg.topic().to_string(),
                    limit: full.limit,
                    max: full.max,
                })?;
            self.routing.load()
        };
        let routed = msg.clone();
        Ok(self
            .publishes
            .deliver(Route::Table(&table, msg.topic()), move || routed))
    }

    pub(crate) fn control(&self) -> MutexGuard<'_, Control> {
        // The control state stays consistent even if a holder panicked: every update to it is a
        // single assignment or push after the fallible work is done.
        self.control
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

impl Retire for BrokerShared {
    /// Removes subscription `id`: out of the table, closed, drained. Returns whether it was live.
    fn retire(&self, id: SubscriptionId) -> bool {
        let mut ctl = self.control();
        let Some(core) = ctl.live.remove(&id) else {
            return false;
        };
        self.routing.update(|trie| {
            trie.remove(core.filter.as_str(), id)
                .unwrap_or_else(|| trie.clone())
        });
        core.close();
        core.drain_unsubscribed();
        ctl.retiring.push(core);
        ctl.finalize_retiring();
        true
    }
}

/// A lock-free publish/subscribe broker. Cheap to clone: clones share one broker.
///
/// ```
/// use switchyard::Broker;
///
/// let broker = Broker::new();
/// let prices = broker.subscribe("stocks/+/price").unwrap();
/// broker.publish("stocks/AAPL/price", "189.5").unwrap();
/// let d = prices.try_recv().unwrap();
/// assert_eq!(d.topic(), "stocks/AAPL/price");
/// assert_eq!(&d.payload()[..], b"189.5");
/// ```
#[derive(Debug, Clone)]
pub struct Broker {
    shared: Arc<BrokerShared>,
}

impl Default for Broker {
    fn default() -> Self {
        Self::new()
    }
}

impl Broker {
    /// A broker with the default [`TopicLimits`].
    pub fn new() -> Self {
        Self::with_limits(TopicLimits::default())
    }

    /// A broker that validates topics and filters against `limits`.
    pub fn with_limits(limits: TopicLimits) -> Self {
        Self::with_options(BrokerOptions::new().limits(limits))
    }

    /// A broker set up with `options`.
    pub fn with_options(options: BrokerOptions) -> Self {
        let BrokerOptions {
            limits,
            dead_letters,
            retained,
        } = options;
        // Registering for the asymmetric fence can take milliseconds once threads run (the kernel
        // waits for a grace period); here, usually before the data path's threads exist, it costs
        // no message its latency.
        crate::barrier::prepare();
        let now = Instant::now();
        Self {
            shared: Arc::new(BrokerShared {
                routing: Routing::new(),
                publishes: PublishCounters::default(),
                control: Mutex::new(Control {
                    next_id: 1,
                    live: BTreeMap::new(),
                    retiring: Vec::new(),
                    retired: RetiredTotals::default(),
                    last_sample: RateSample {
                        at: now,
                        published: 0,
                        delivered: 0,
                        dropped: 0,
                    },
                }),
                limits,
                started: now,
                dead_letters: dead_letters.map(|c| Arc::new(DeadLetterQueue::new(c.max(1)))),
                retained: Mutex::new(RetainedStore::new(retained)),
                requests: Arc::new(RequestCounters::default()),
            }),
        }
    }

    /// The shared state, for the feature modules' `impl Broker` blocks.
    pub(crate) fn shared(&self) -> &Arc<BrokerShared> {
        &self.shared
    }

    /// A reader of the dead-letter queue, if the broker keeps one ([`BrokerOptions::dead_letters`]).
    pub fn dead_letters(&self) -> Option<DeadLetters> {
        self.shared.dead_letters.clone().map(DeadLetters::new)
    }

    /// The limits topics and filters are validated against.
    pub fn limits(&self) -> TopicLimits {
        self.shared.limits
    }

    /// Subscribes to `filter` with default options (capacity 256, `DropNewest`).
    pub fn subscribe(&self, filter: &str) -> Result<Subscription, SubscribeError> {
        self.subscribe_with(filter, SubscriptionOptions::default())
    }

    /// Subscribes to `filter` with `options`. Publishes that start after this returns reach the new
    /// subscription.
    pub fn subscribe_with(
        &self,
        filter: &str,
        options: SubscriptionOptions,
    ) -> Result<Subscription, SubscribeError> {
        let filter = Filter::with_limits(filter, &self.shared.limits)?;
        check_capacity(options.capacity)?;
        // Lock order: retained store, then control. Held across the table swap and the replay, so no
        // retained publish falls between them (see `crate::retained`).
        let mut retained = options.receive_retained.then(|| self.shared.retained());
        let mut ctl = self.shared.control();
        ctl.finalize_retiring();
        if options.durable {
            let name = options
                .name
                .as_deref()
                .ok_or(SubscribeError::DurableNeedsName)?;
            if let Some(existing) = ctl.durable(name) {
                if existing.filter.as_str() != filter.as_str() {
                    return Err(SubscribeError::DurableNameTaken {
                        name: name.to_string(),
                        filter: existing.filter.to_string(),
                    });
                }
                // The same durable subscription again: a new receiver of it.
                return Ok(Subscription::new(existing.clone(), self.shared.clone()));
            }
        }
        let core = self.add_subscription(&mut ctl, filter, &options);
        drop(ctl);
        if let Some(store) = retained.as_mut() {
            store.replay_into(&core);
        }
        Ok(Subscription::new(core, self.shared.clone()))
    }

    /// Creates a subscription and swaps it into the routing table. Under the control lock.
    pub(crate) fn add_subscription(
        &self,
        ctl: &mut Control,
        filter: Filter,
        options: &SubscriptionOptions,
    ) -> Arc<SubscriptionCore> {
        let id = ctl.next_id;
        ctl.next_id += 1;
        let core = Arc::new(SubscriptionCore::new(
            id,
            filter,
            options,
            self.shared.dead_letters.clone(),
        ));
        self.shared
            .routing
            .update(|trie| trie.insert(core.filter.as_str(), id, core.clone()));
        ctl.live.insert(id, core.clone());
        core
    }

    /// Removes subscription `id` for every receiver; what it still had queued is counted as dropped
    /// (`unsubscribed`). Its receivers then get `Closed`.
    pub fn unsubscribe(&self, id: SubscriptionId) -> Result<(), UnknownSubscription> {
        if self.shared.retire(id) {
            Ok(())
        } else {
            Err(UnknownSubscription(id))
        }
    }

    /// Changes the overflow policy of subscription `id` while it runs.
    pub fn set_policy(
        &self,
        id: SubscriptionId,
        policy: OverflowPolicy,
    ) -> Result<(), UnknownSubscription> {
        let ctl = self.shared.control();
        let core = ctl.live.get(&id).ok_or(UnknownSubscription(id))?;
        core.set_policy(policy);
        Ok(())
    }

    /// Publishes `payload` on `topic`.
    ///
    /// Returns what happened: how many subscriptions matched, queued it, or dropped a message. A publish
    /// that matches nothing is counted as `unrouted`. Never blocks unless a matching subscription uses
    /// [`OverflowPolicy::Block`] and its queue is full.
    #[inline]
    pub fn publish(
        &self,
        topic: &str,
        payload: impl Into<Bytes>,
    ) -> Result<PublishOutcome, PublishError> {
        self.publish_with(topic, payload, PublishOptions::default())
    }

    /// Publishes `payload` on `topic` with `options`: a priority, and whether to retain it.
    ///
    /// Without `retain` this is [`Broker::publish`] with the message in the lane of its priority, at the
    /// same cost. With `retain` the message also becomes the topic's retained message (see
    /// [`crate::retained`]); that path takes the retained store's mutex and may fail with
    /// [`PublishError::RetainedFull`].
    pub fn publish_with(
        &self,
        topic: &str,
        payload: impl Into<Bytes>,
        options: PublishOptions,
    ) -> Result<PublishOutcome, PublishError> {
        validate_topic(topic, &self.shared.limits)?;
        if options.retain {
            return self.shared.publish_retained(
                Message::on_str(topic, payload, options.priority).tagged(options.tag),
            );
        }
        let table = self.shared.routing.load();
        Ok(self
            .shared
            .publishes
            .deliver(Route::Table(&table, topic), || {
                Message::on_str(topic, payload, options.priority).tagged(options.tag)
            }))
    }

    /// Publishes a request on `topic` and blocks up to `timeout` for the first reply. See
    /// [`crate::request`].
    ///
    /// Fails at once with [`RequestError::Unrouted`] when no subscription matches, and with
    /// [`RequestError::NotQueued`] when every matching subscription dropped it.
    pub fn request(
        &self,
        topic: &str,
        payload: impl Into<Bytes>,
        timeout: Duration,
    ) -> Result<Message, RequestError> {
        self.request_async(topic, payload)?.wait(timeout)
    }

    /// Publishes a request on `topic` and returns the reply as a future ([`PendingReply`]). Routing
    /// errors come at once, as for [`Broker::request`]. Put a timeout around the future with your
    /// runtime; dropping it gives up (later replies count as late).
    pub fn request_async(
        &self,
        topic: &str,
        payload: impl Into<Bytes>,
    ) -> Result<PendingReply, RequestError> {
        let topic = Topic::with_limits(topic, &self.shared.limits)?;
        let slot = ReplySlot::new(self.shared.requests.clone());
        let msg = Message::request(topic.clone(), payload.into(), slot.clone());
        let pending = PendingReply::new(slot, topic.clone());
        let table = self.shared.routing.load();
        let outcome = self
            .shared
            .publishes
            .deliver(Route::Table(&table, topic.as_str()), move || msg);
        if outcome.matched == 0 {
            pending.never_sent();
            return Err(RequestError::Unrouted {
                topic: topic.to_string(),
            });
        }
        if outcome.queued == 0 {
            pending.never_sent();
            return Err(RequestError::NotQueued {
                topic: topic.to_string(),
                matched: outcome.matched,
            });
        }
        self.shared.requests.count_sent();
        Ok(pending)
    }

    /// A publishing handle bound to `topic`: validated once, its route cached (see [`Publisher`]).
    pub fn publisher(&self, topic: &str) -> Result<Publisher, TopicError> {
        Ok(Publisher {
            shared: self.shared.clone(),
            topic: Topic::with_limits(topic, &self.shared.limits)?,
            version: u64::MAX,
            routes: Vec::new(),
            batch: Vec::new(),
            recent: RecentMessages::default(),
            counts: self.shared.publishes.register_handle(),
        })
    }

    /// Waits up to `timeout` until every message of joinable subscription `id` has been processed
    /// (received and acknowledged with [`Subscription::done`]) or dropped. See [`crate::join`].
    pub fn join(&self, id: SubscriptionId, timeout: Duration) -> Result<(), JoinError> {
        let core = self
            .shared
            .control()
            .live
            .get(&id)
            .cloned()
            .ok_or(JoinError::Unknown(id))?;
        core.join_until(Instant::now().checked_add(timeout))
    }

    /// The counters of live subscription `id`.
    pub fn subscription_stats(&self, id: SubscriptionId) -> Option<SubscriptionStats> {
        self.shared.control().live.get(&id).map(|c| c.stats())
    }

    /// The routing table in force now, for read-only views of routing such as [`Broker::explain`].
    pub(crate) fn routing_table(&self) -> arc_swap::Guard<Arc<crate::routing::RoutingTable>> {
        self.shared.routing.load()
    }
}

/// The control state a stats query reads, under the control mutex (see [`crate::stats_query`]).
pub(crate) struct ControlView<'a> {
    pub(crate) live: &'a BTreeMap<SubscriptionId, Arc<SubscriptionCore>>,
    pub(crate) retiring: &'a [Arc<SubscriptionCore>],
    pub(crate) retired: &'a RetiredTotals,
}

/// Hooks for [`crate::stats_query`], which reads what [`Broker::stats`] reads without touching its
/// rate sample.
impl Broker {
    /// Runs `f` under the control mutex, after finalising what can be, as [`Broker::stats`] does.
    pub(crate) fn with_control<R>(&self, f: impl FnOnce(ControlView<'_>) -> R) -> R {
        let mut ctl = self.shared.control();
        ctl.finalize_retiring();
        f(ControlView {
            live: &ctl.live,
            retiring: &ctl.retiring,
            retired: &ctl.retired,
        })
    }

    /// `(published, unrouted, when the broker started)`.
    pub(crate) fn publish_counts(&self) -> (u64, u64, Instant) {
        let (published, unrouted) = self.shared.publishes.totals();
        (published, unrouted, self.shared.started)
    }

    /// Rates over the interval since the previous call (or since the broker started), from `totals`
    /// now, and makes `totals` the start of the next interval: the one rate sample
    /// [`Broker::stats`] shares among its callers.
    pub(crate) fn rates_since_last_call(&self, totals: &Totals) -> Rates {
        let now = Instant::now();
        let mut ctl = self.shared.control();
        let last = &ctl.last_sample;
        let secs = now.duration_since(last.at).as_secs_f64();
        let per_s = |now: u64, before: u64| {
            if secs > 0.0 {
                now.saturating_sub(before) as f64 / secs
            } else {
                0.0
            }
        };
        let rates = Rates {
            published_per_s: per_s(totals.published, last.published),
            delivered_per_s: per_s(totals.delivered, last.delivered),
            dropped_per_s: per_s(totals.dropped, last.dropped),
        };
        ctl.last_sample = RateSample {
            at: now,
            published: totals.published,
            delivered: totals.delivered,
            dropped: totals.dropped,
        };
        rates
    }

    /// A snapshot with only the dead-letter, retained and request sections filled in.
    pub(crate) fn stats_sections(&self) -> StatsSnapshot {
        StatsSnapshot {
            dead_letters: self.shared.dead_letters.as_ref().map(|q| q.stats()),
            retained: self.shared.retained().stats(),
            requests: self.shared.requests.stats(),
            ..StatsSnapshot::default()
        }
    }
}

/// A publishing handle bound to one topic.
///
/// It validates the topic once and caches the list of subscriptions the topic reaches, tagged with the
/// routing table's version. Each publish checks the broker's version (one atomic load) and recomputes
/// the route only when the table changed. This is the fastest way to publish many messages on one topic.
///
/// A cached route keeps removed subscriptions reachable until the next publish notices the new version;
/// they are finalised after that (see the broker's module docs), so nothing is lost or miscounted.
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
    counts: Arc<HandleCounts>,
}

impl Publisher {
    /// The topic this handle publishes on.
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
            self.routes.push(CachedRoute::new(core.clone()))
        });
        self.version = table.version;
    }

    /// Publishes `payload` on this handle's topic. See [`Broker::publish`].
    #[inline]
    pub fn publish(&mut self, payload: impl Into<Bytes>) -> PublishOutcome {
        self.refresh();
        self.send(payload, Priority::Normal, 0)
    }

    /// Publishes `payload` on this handle's topic with `options`. See [`Broker::publish_with`]; only a
    /// retained publish can fail.
    pub fn publish_with(
        &mut self,
        payload: impl Into<Bytes>,
        options: PublishOptions,
    ) -> Result<PublishOutcome, PublishError> {
        if options.retain {
            return self.shared.publish_retained(
                Message::on_topic(&self.topic, payload, options.priority).tagged(options.tag),
            );
        }
        self.refresh();
        Ok(self.send(payload, options.priority, options.tag))
    }

    /// Waits up to `timeout` (in all) until every joinable subscription this handle's topic reaches has
    /// processed every message queued on it (see [`crate::join`]). Returns how many joinable
    /// subscriptions it waited for; subscriptions that are not joinable are skipped.
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
    /// batch faster than a loop of [`Publisher::publish`] (see the README's performance section).
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
        self.refresh();
        let mut batch = std::mem::take(&mut self.batch);
        batch.extend(payloads.into_iter().map(|payload| {
            self.recent
                .make(&self.topic, payload.into(), Priority::Normal, 0)
        }));
        let outcome = self
            .shared
            .publishes
            .deliver_batch(&self.routes, &self.counts, &mut batch);
        self.batch = batch;
        outcome
    }

    /// Offers one message along the cached route.
    #[inline]
    fn send(&mut self, payload: impl Into<Bytes>, priority: Priority, tag: u8) -> PublishOutcome {
        let Self {
            shared,
            topic,
            routes,
            recent,
            counts,
            ..
        } = self;
        shared.publishes.deliver(Route::Cached(routes, counts), || {
            recent.make(topic, payload.into(), priority, tag)
        })
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.shared.publishes.fold_handle(&self.counts);
        // Release cached routes first, then let the broker finalise anything they kept reachable.
        let had_closed = self.routes.iter().any(|r| r.core.is_closed());
        self.routes.clear();
        if had_closed {
            self.shared.control().finalize_retiring();
        }
    }
}
