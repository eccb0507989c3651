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

mod durable;
mod error;
mod explain;
mod options;
mod publisher;
mod replay;
mod stats_query;

pub use durable::{DurableState, DurableSubscription, STATE_SCHEMA, StateError};
pub(crate) use error::check_capacity;
pub use error::{PublishError, SubscribeError, UnknownSubscription};
pub use explain::{Explained, Explanation};
pub use options::{BrokerOptions, PublishOptions};
pub use publisher::Publisher;
pub use stats_query::{StatsQuery, StatsSelection, StatsSort};

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::features::ack::options::AckOptions;
use crate::features::dead_letter::{DeadLetterQueue, DeadLetters};
use crate::features::join::JoinError;
use crate::features::replay_log::ReplayLog;
use crate::features::request::{PendingReply, ReplySlot, RequestCounters, RequestError};
use crate::features::retained::RetainedStore;
use crate::id::SubscriptionId;
use crate::message::Message;
use crate::message::reason::DroppedByReason;
use crate::queue::policy::OverflowPolicy;
use crate::routing::delivery::{PublishCounters, Route};
use crate::routing::table::Routing;
use crate::stats::features::AckTotals;
use crate::stats::snapshot::{Rates, StatsSnapshot, SubscriptionStats, Totals};
use crate::subscription::PublishOutcome;
use crate::subscription::{
    AckSubscription, Retire, Subscription, SubscriptionCore, SubscriptionOptions, Wait,
};
use crate::topic::{Filter, Topic, TopicError, TopicLimits, validate_topic};

/// Counts folded in from removed subscriptions, so totals stay monotonic.
#[derive(Debug, Default)]
pub(crate) struct RetiredTotals {
    pub(crate) matched: u64,
    pub(crate) delivered: u64,
    pub(crate) dropped: DroppedByReason,
    pub(crate) ack: AckTotals,
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
    /// By id, so the holder that lets one go can finalise that one alone: a scan of the whole list
    /// for every unsubscribe and every dropped `Publisher` was quadratic when 100,000 handles held
    /// routes to 100,000 unsubscribed subscriptions (minutes to drop them).
    retiring: BTreeMap<SubscriptionId, Arc<SubscriptionCore>>,
    /// The size of `retiring` after its last full scan: an unsubscribe scans it all again only once
    /// it has doubled (so the scans cost O(1) per unsubscribe, amortised, and what could be
    /// finalised never piles up beyond twice what cannot).
    retiring_scanned: usize,
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
        self.retiring
            .retain(|_, core| !Self::finalize(retired, core));
        self.retiring_scanned = self.retiring.len();
    }

    /// Finalises the retiring subscriptions `ids` (those a holder just let go) if nothing but this
    /// list can reach them any more.
    pub(crate) fn finalize_retiring_ids(&mut self, ids: impl IntoIterator<Item = SubscriptionId>) {
        for id in ids {
            if let Some(core) = self.retiring.get_mut(&id)
                && Self::finalize(&mut self.retired, core)
            {
                self.retiring.remove(&id);
            }
        }
    }

    /// Puts a removed subscription on the retiring list, and finalises it if nothing else holds it.
    fn start_retiring(&mut self, core: Arc<SubscriptionCore>) {
        let id = core.id;
        self.retiring.insert(id, core);
        self.finalize_retiring_ids([id]);
        if self.retiring.len() >= 2 * self.retiring_scanned.max(16) {
            self.finalize_retiring();
        }
    }

    /// Folds `core` into the retired totals if this list holds its only reference; says whether it
    /// did (then the caller takes it off the list).
    fn finalize(retired: &mut RetiredTotals, core: &mut Arc<SubscriptionCore>) -> bool {
        if Arc::get_mut(core).is_none() {
            return false;
        }
        core.drain_unsubscribed();
        let s = core.stats();
        retired.matched += s.matched;
        retired.delivered += s.delivered;
        retired.dropped.add(&s.dropped_by_reason);
        if let Some(ack) = &s.ack {
            retired.ack.add(ack);
        }
        true
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
    /// The replay log, if the broker keeps one (see `replay`).
    replay_log: Option<Arc<ReplayLog>>,
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
    /// this publish wait holds up neither [`Broker::stats`] nor other retained publishes. A full store
    /// refuses only the storing: the message is routed all the same, and the refusal is counted
    /// (`retained.rejected`) and told in [`PublishOutcome::retain_refused`]. See
    /// [`RetainedLimits`](crate::RetainedLimits).
    /// A logged message (`log`) has taken its sequence number already; it is recorded with the
    /// table loaded here.
    #[cold]
    fn publish_retained(
        &self,
        msg: Message,
        log: Option<&ReplayLog>,
        wait: Wait,
    ) -> PublishOutcome {
        let (table, stored) = {
            let mut store = self.retained();
            let stored = store.retain(&msg);
            (self.routing.load(), stored)
        };
        if let Some(log) = log {
            log.record([&msg], table.version);
        }
        let routed = msg.clone();
        let mut outcome =
            self.publishes
                .deliver(Route::Table(&table, msg.topic()), wait, move || routed);
        if !stored {
            outcome.retain_refused += 1;
        }
        outcome
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
            trie.remove(&core.filter, id)
                .unwrap_or_else(|| trie.clone())
        });
        core.close();
        core.drain_unsubscribed();
        ctl.start_retiring(core);
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
    ///
    /// ```
    /// use switchyard::{Broker, TopicLimits};
    ///
    /// let broker = Broker::new();
    /// assert_eq!(broker.limits(), TopicLimits::default());
    /// assert!(broker.dead_letters().is_none());
    /// assert_eq!(broker.stats().totals.subscriptions, 0);
    /// ```
    pub fn new() -> Self {
        Self::with_limits(TopicLimits::default())
    }

    /// A broker that validates topics and filters against `limits`.
    ///
    /// ```
    /// use switchyard::{Broker, TopicLimits};
    ///
    /// let broker = Broker::with_limits(TopicLimits {
    ///     max_bytes: 64,
    ///     max_levels: 3,
    ///     ..TopicLimits::default()
    /// });
    /// assert!(broker.publish("a/b/c", "fits").is_ok());
    /// assert!(broker.publish("a/b/c/d", "one level too many").is_err());
    /// assert!(broker.subscribe("a/b/c/#").is_err()); // filters are held to the same limits
    /// ```
    pub fn with_limits(limits: TopicLimits) -> Self {
        Self::with_options(BrokerOptions::new().limits(limits))
    }

    /// A broker set up with `options`.
    ///
    /// ```
    /// use switchyard::{Broker, BrokerOptions, RetainedLimits};
    ///
    /// let options = BrokerOptions::new()
    ///     .dead_letters(1_000)
    ///     .retained(RetainedLimits { max_messages: 10, max_bytes: 1 << 20 });
    /// let broker = Broker::with_options(options);
    /// assert!(broker.dead_letters().is_some());
    /// assert_eq!(broker.stats().retained.max_messages, 10);
    /// ```
    pub fn with_options(options: BrokerOptions) -> Self {
        let BrokerOptions {
            limits,
            dead_letters,
            retained,
            replay_log,
        } = options;
        // Registering for the asymmetric fence can take milliseconds once threads run (the kernel
        // waits for a grace period); here, usually before the data path's threads exist, it costs
        // no message its latency.
        crate::sync::barrier::prepare();
        let now = Instant::now();
        Self {
            shared: Arc::new(BrokerShared {
                routing: Routing::new(),
                publishes: PublishCounters::default(),
                control: Mutex::new(Control {
                    next_id: 1,
                    live: BTreeMap::new(),
                    retiring: BTreeMap::new(),
                    retiring_scanned: 0,
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
                replay_log: replay_log.map(|options| Arc::new(ReplayLog::new(options))),
            }),
        }
    }

    /// The shared state, for the feature modules' `impl Broker` blocks.
    pub(crate) fn shared(&self) -> &Arc<BrokerShared> {
        &self.shared
    }

    /// A reader of the dead-letter queue, if the broker keeps one ([`BrokerOptions::dead_letters`]).
    ///
    /// ```
    /// use switchyard::{Broker, BrokerOptions, DropReason, SubscriptionOptions};
    ///
    /// let broker = Broker::with_options(BrokerOptions::new().dead_letters(100));
    /// let dead = broker.dead_letters().expect("this broker keeps dead letters");
    /// let _jobs = broker.subscribe_with("jobs", SubscriptionOptions::new().capacity(1))?;
    /// broker.publish("jobs", "first")?;
    /// broker.publish("jobs", "second")?; // the queue is full: refused (`DropNewest`)
    ///
    /// let letter = dead.try_recv().expect("one dead letter");
    /// assert_eq!(&letter.message().payload()[..], b"second");
    /// assert_eq!(letter.reason(), DropReason::QueueFull);
    /// assert!(Broker::new().dead_letters().is_none()); // off by default
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn dead_letters(&self) -> Option<DeadLetters> {
        self.shared.dead_letters.clone().map(DeadLetters::new)
    }

    /// The limits topics and filters are validated against.
    ///
    /// ```
    /// use switchyard::{Broker, TopicLimits};
    ///
    /// let limits = TopicLimits { max_bytes: 128, max_levels: 8, ..TopicLimits::default() };
    /// assert_eq!(Broker::with_limits(limits).limits(), limits);
    /// assert_eq!(Broker::new().limits().max_levels, TopicLimits::DEFAULT_MAX_LEVELS);
    /// ```
    pub fn limits(&self) -> TopicLimits {
        self.shared.limits
    }

    /// Subscribes to `filter` with default options (capacity 256, `DropNewest`).
    ///
    /// ```
    /// use switchyard::{Broker, OverflowPolicy};
    ///
    /// let broker = Broker::new();
    /// let temps = broker.subscribe("sensors/+/temp")?;
    /// assert_eq!((temps.capacity(), temps.policy()), (256, OverflowPolicy::DropNewest));
    ///
    /// broker.publish("sensors/kitchen/temp", "21.5")?;
    /// assert_eq!(temps.try_recv()?.topic(), "sensors/kitchen/temp");
    /// assert!(broker.subscribe("sensors/#/temp").is_err()); // `#` must be the last level
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn subscribe(&self, filter: &str) -> Result<Subscription, SubscribeError> {
        self.subscribe_with(filter, SubscriptionOptions::default())
    }

    /// Subscribes to `filter` with `options`. Publishes that start after this returns reach the new
    /// subscription.
    ///
    /// ```
    /// use switchyard::{Broker, OverflowPolicy, SubscriptionOptions};
    ///
    /// let broker = Broker::new();
    /// let options = SubscriptionOptions::new()
    ///     .name("ticks")
    ///     .capacity(2)
    ///     .policy(OverflowPolicy::DropOldest);
    /// let ticks = broker.subscribe_with("stocks/+/price", options)?;
    /// assert_eq!(ticks.name(), "ticks");
    ///
    /// for price in ["1", "2", "3"] {
    ///     broker.publish("stocks/AAPL/price", price)?;
    /// }
    /// assert_eq!(ticks.len(), 2); // "1" was evicted to make room
    /// assert_eq!(&ticks.try_recv()?.payload()[..], b"2");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn subscribe_with(
        &self,
        filter: &str,
        options: SubscriptionOptions,
    ) -> Result<Subscription, SubscribeError> {
        if options.ack.is_some() {
            return Err(SubscribeError::AckNeedsAckSubscription);
        }
        let core = self.subscribe_core(filter, options)?;
        Ok(Subscription::new(core, self.shared.clone()))
    }

    /// Subscribes to `filter` with acknowledged delivery (at least once): each message a receiver takes
    /// stays in flight until it is acked, and is delivered again if it is nacked, its deadline passes or
    /// its receiver goes away. See [`AckSubscription`].
    ///
    /// ```
    /// use switchyard::{AckOptions, Broker};
    ///
    /// let broker = Broker::new();
    /// let jobs = broker.subscribe_acked("jobs/#", AckOptions::new().max_deliveries(5))?;
    /// broker.publish("jobs/resize", "photo.jpg")?;
    /// let job = jobs.try_recv()?;
    /// assert_eq!(job.topic(), "jobs/resize");
    /// job.ack()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn subscribe_acked(
        &self,
        filter: &str,
        ack: AckOptions,
    ) -> Result<AckSubscription, SubscribeError> {
        self.subscribe_acked_with(filter, SubscriptionOptions::new().ack(ack))
    }

    /// [`Broker::subscribe_acked`] with the other subscription options too (capacity, policy, name,
    /// durable...); `options.ack` holds the acknowledgement settings (the defaults when `None`).
    ///
    /// ```
    /// use switchyard::{AckOptions, Broker, SubscriptionOptions};
    ///
    /// let broker = Broker::new();
    /// let options = SubscriptionOptions::new()
    ///     .name("dryers")
    ///     .capacity(64)
    ///     .ack(AckOptions::new().max_in_flight(4));
    /// let dryers = broker.subscribe_acked_with("dishes", options)?;
    /// assert_eq!(dryers.ack_stats().max_in_flight, 4);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn subscribe_acked_with(
        &self,
        filter: &str,
        mut options: SubscriptionOptions,
    ) -> Result<AckSubscription, SubscribeError> {
        let ack = options.ack.get_or_insert_with(AckOptions::default);
        ack.check()?;
        if options.joinable {
            return Err(SubscribeError::AckedNotJoinable);
        }
        let core = self.subscribe_core(filter, options)?;
        Ok(AckSubscription::new(core, self.shared.clone()))
    }

    /// The subscription `subscribe_with` and `subscribe_acked_with` make (or find, for a durable name).
    fn subscribe_core(
        &self,
        filter: &str,
        options: SubscriptionOptions,
    ) -> Result<Arc<SubscriptionCore>, SubscribeError> {
        let filter = Filter::with_limits(filter, &self.shared.limits)?;
        check_capacity(options.capacity)?;
        self.shared.check_replay(options.replay)?;
        // Lock order: retained store, then control. Held across the table swap and the replay, so no
        // retained publish falls between them (see `crate::features::retained`).
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
                if existing.is_acked() != options.ack.is_some() {
                    return Err(SubscribeError::DurableAckMismatch {
                        name: name.to_string(),
                        acked: existing.is_acked(),
                    });
                }
                // The same durable subscription again: a new receiver of it.
                return Ok(existing.clone());
            }
        }
        let core = self.add_subscription(&mut ctl, filter, &options);
        let routed_version = self.shared.routing.version();
        drop(ctl);
        if let Some(store) = retained.as_mut() {
            store.replay(&core.filter, |msg| {
                core.offer(msg, Wait::Never);
            });
        }
        drop(retained);
        core.open_replay(routed_version);
        Ok(core)
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
        self.shared.prepare_replay(&core, options);
        self.shared
            .routing
            .update(|trie| trie.insert(&core.filter, id, core.clone()));
        ctl.live.insert(id, core.clone());
        core
    }

    /// Removes subscription `id` for every receiver; what it still had queued is counted as dropped
    /// (`unsubscribed`). Its receivers then get `Closed`.
    ///
    /// ```
    /// use switchyard::{Broker, TryRecvError};
    ///
    /// let broker = Broker::new();
    /// let jobs = broker.subscribe("jobs")?;
    /// broker.publish("jobs", "still queued")?;
    ///
    /// broker.unsubscribe(jobs.id())?;
    /// assert_eq!(jobs.try_recv().unwrap_err(), TryRecvError::Closed);
    /// assert_eq!(jobs.stats().dropped_by_reason.unsubscribed, 1);
    /// assert_eq!(broker.publish("jobs", "too late")?.matched, 0);
    /// assert!(broker.unsubscribe(jobs.id()).is_err()); // already removed
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn unsubscribe(&self, id: SubscriptionId) -> Result<(), UnknownSubscription> {
        if self.shared.retire(id) {
            Ok(())
        } else {
            Err(UnknownSubscription(id))
        }
    }

    /// Changes the overflow policy of subscription `id` while it runs.
    ///
    /// ```
    /// use std::time::Duration;
    /// use switchyard::{Broker, OverflowPolicy};
    ///
    /// let broker = Broker::new();
    /// let jobs = broker.subscribe("jobs")?;
    /// let block = OverflowPolicy::Block { timeout: Duration::from_millis(5) };
    /// broker.set_policy(jobs.id(), block)?;
    /// assert_eq!(jobs.policy(), block);
    /// assert!(broker.set_policy(999, OverflowPolicy::DropOldest).is_err()); // no such subscription
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
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
    ///
    /// ```
    /// use switchyard::Broker;
    ///
    /// let broker = Broker::new();
    /// let everything = broker.subscribe("alerts/#")?;
    /// let fires = broker.subscribe("alerts/fire")?;
    ///
    /// let outcome = broker.publish("alerts/fire", "building 2")?;
    /// assert_eq!((outcome.matched, outcome.queued, outcome.dropped), (2, 2, 0));
    /// assert_eq!((everything.len(), fires.len()), (1, 1));
    ///
    /// assert_eq!(broker.publish("weather/rain", "nobody listens")?.matched, 0);
    /// assert_eq!(broker.stats().totals.unrouted, 1);
    /// assert!(broker.publish("alerts/+", "no wildcards in a topic").is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
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
    /// [`RetainedLimits`](crate::RetainedLimits)); that path takes the retained store's mutex. A full
    /// store refuses only the storing: the message is delivered all the same, and
    /// [`PublishOutcome::retain_refused`] says it was not kept.
    ///
    /// ```
    /// use switchyard::{Broker, Priority, PublishOptions, SubscriptionOptions};
    ///
    /// let broker = Broker::new();
    /// let jobs = broker.subscribe("jobs")?;
    /// broker.publish("jobs", "routine")?;
    /// broker.publish_with("jobs", "urgent", PublishOptions::new().priority(Priority::High))?;
    /// assert_eq!(&jobs.try_recv()?.payload()[..], b"urgent"); // higher priorities first
    /// assert_eq!(&jobs.try_recv()?.payload()[..], b"routine");
    ///
    /// // A retained message is replayed to later subscriptions that ask for it.
    /// broker.publish_with("status/door", "open", PublishOptions::new().retain(true))?;
    /// let late = broker.subscribe_with("status/#", SubscriptionOptions::new().receive_retained(true))?;
    /// assert_eq!(&late.try_recv()?.payload()[..], b"open");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn publish_with(
        &self,
        topic: &str,
        payload: impl Into<Bytes>,
        options: PublishOptions,
    ) -> Result<PublishOutcome, PublishError> {
        validate_topic(topic, &self.shared.limits)?;
        let wait = Wait::for_publish(options.deadline);
        if let Some(log) = self.shared.log_for(topic) {
            return Ok(self
                .shared
                .publish_logged(log, topic, payload.into(), options));
        }
        if options.retain {
            return Ok(self.shared.publish_retained(
                Message::on_str(topic, payload, options.priority).tagged(options.tag),
                None,
                wait,
            ));
        }
        let table = self.shared.routing.load();
        Ok(self
            .shared
            .publishes
            .deliver(Route::Table(&table, topic), wait, || {
                Message::on_str(topic, payload, options.priority).tagged(options.tag)
            }))
    }

    /// Publishes a request on `topic` and blocks up to `timeout` for the first reply. See
    /// [`PendingReply`](crate::PendingReply).
    ///
    /// Fails at once with [`RequestError::Unrouted`] when no subscription matches, and with
    /// [`RequestError::NotQueued`] when every matching subscription dropped it.
    ///
    /// ```
    /// use std::time::Duration;
    /// use switchyard::Broker;
    ///
    /// let broker = Broker::new();
    /// let inbox = broker.subscribe("math/double")?;
    /// let responder = std::thread::spawn(move || {
    ///     let request = inbox.recv_timeout(Duration::from_secs(5)).expect("a request");
    ///     let n: u32 = std::str::from_utf8(request.payload()).unwrap().parse().unwrap();
    ///     request.reply((2 * n).to_string()).unwrap();
    /// });
    ///
    /// let reply = broker.request("math/double", "21", Duration::from_secs(5))?;
    /// assert_eq!(&reply.payload()[..], b"42");
    /// responder.join().unwrap();
    ///
    /// // Nobody subscribed: an error at once, not after the timeout.
    /// assert!(broker.request("nobody/home", "?", Duration::from_secs(60)).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
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
    ///
    /// ```
    /// use std::time::Duration;
    /// use switchyard::Broker;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let broker = Broker::new();
    /// let inbox = broker.subscribe("math/double")?;
    /// let pending = broker.request_async("math/double", "21")?;
    ///
    /// inbox.try_recv()?.reply("42")?; // a responder replies through the message it received
    /// let reply = tokio::time::timeout(Duration::from_secs(5), pending).await??;
    /// assert_eq!(&reply.payload()[..], b"42");
    /// # Ok(())
    /// # }
    /// ```
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
        let outcome = self.shared.publishes.deliver(
            Route::Table(&table, topic.as_str()),
            Wait::MayBlock,
            move || msg,
        );
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
    ///
    /// ```
    /// use switchyard::Broker;
    ///
    /// let broker = Broker::new();
    /// let ticks = broker.subscribe("ticks/#")?;
    /// let mut aapl = broker.publisher("ticks/AAPL")?;
    /// for price in ["189.5", "189.6", "189.4"] {
    ///     aapl.publish(price);
    /// }
    /// assert_eq!(ticks.len(), 3);
    /// assert!(broker.publisher("ticks/+").is_err()); // validated once, here
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn publisher(&self, topic: &str) -> Result<Publisher, TopicError> {
        let topic = Topic::with_limits(topic, &self.shared.limits)?;
        Ok(Publisher::new(self.shared.clone(), topic))
    }

    /// Waits up to `timeout` until every message of joinable subscription `id` has been processed
    /// (received and acknowledged with [`Subscription::done`]) or dropped. See [`SubscriptionOptions::joinable`](crate::SubscriptionOptions::joinable).
    ///
    /// ```
    /// use std::time::Duration;
    /// use switchyard::{Broker, SubscriptionOptions};
    ///
    /// let broker = Broker::new();
    /// let jobs = broker.subscribe_with("jobs", SubscriptionOptions::new().joinable(true))?;
    /// broker.publish("jobs", "resize")?;
    /// assert!(broker.join(jobs.id(), Duration::from_millis(1)).is_err()); // not processed yet
    ///
    /// let _job = jobs.try_recv()?;
    /// jobs.done()?; // processed
    /// broker.join(jobs.id(), Duration::from_secs(1))?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
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
    ///
    /// ```
    /// use switchyard::Broker;
    ///
    /// let broker = Broker::new();
    /// let jobs = broker.subscribe("jobs")?;
    /// broker.publish("jobs", "a")?;
    /// broker.publish("jobs", "b")?;
    /// jobs.try_recv()?;
    ///
    /// let stats = broker.subscription_stats(jobs.id()).expect("a live subscription");
    /// assert_eq!((stats.matched, stats.delivered, stats.depth), (2, 1, 1));
    /// assert!(stats.balances());
    /// assert!(broker.subscription_stats(999).is_none());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn subscription_stats(&self, id: SubscriptionId) -> Option<SubscriptionStats> {
        self.shared.control().live.get(&id).map(|c| c.stats())
    }

    /// The routing table in force now, for read-only views of routing such as [`Broker::explain`].
    pub(crate) fn routing_table(
        &self,
    ) -> crate::sync::arc_cell::ArcGuard<crate::routing::table::RoutingTable> {
        self.shared.routing.load()
    }
}

/// The control state a stats query reads, under the control mutex (see [`StatsQuery`](crate::StatsQuery)).
pub(crate) struct ControlView<'a> {
    pub(crate) live: &'a BTreeMap<SubscriptionId, Arc<SubscriptionCore>>,
    pub(crate) retiring: &'a BTreeMap<SubscriptionId, Arc<SubscriptionCore>>,
    pub(crate) retired: &'a RetiredTotals,
}

/// Hooks for [`StatsQuery`](crate::StatsQuery), which reads what [`Broker::stats`] reads without touching its
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
            replay_log: self.shared.replay_log.as_ref().map(|log| log.stats()),
            ..StatsSnapshot::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn retiring(broker: &Broker) -> usize {
        broker.shared.control().retiring.len()
    }

    #[test]
    fn subscriptions_dropped_before_the_handles_routing_to_them_are_finalised_as_the_handles_go() {
        let broker = Broker::new();
        let n = 2_000;
        let subs: Vec<_> = (0..n)
            .map(|i| broker.subscribe(&format!("t/{i}")).unwrap())
            .collect();
        let mut handles: Vec<_> = (0..n)
            .map(|i| broker.publisher(&format!("t/{i}")).unwrap())
            .collect();
        for h in &mut handles {
            h.publish("x");
        }
        drop(subs);
        // The handles' cached routes still reach every one: retiring, and still in the totals.
        assert_eq!(retiring(&broker), n);
        let s = broker.stats();
        assert!(s.balances());
        assert_eq!((s.totals.matched, s.totals.dropped), (n as u64, n as u64));
        drop(handles);
        assert_eq!(
            retiring(&broker),
            0,
            "each handle finalises what it alone held"
        );
        let s = broker.stats();
        assert!(s.balances());
        assert_eq!((s.totals.matched, s.totals.dropped), (n as u64, n as u64));
    }

    #[test]
    fn dropped_subscriptions_do_not_pile_up_on_the_retiring_list() {
        let broker = Broker::new();
        let subs: Vec<_> = (0..2_000)
            .map(|i| broker.subscribe(&format!("t/{i}")).unwrap())
            .collect();
        for i in 0..2_000 {
            broker.publish(&format!("t/{i}"), "x").unwrap();
        }
        for sub in subs {
            // Its receiver still holds it while it retires, so a later scan finalises it.
            drop(sub);
            assert!(retiring(&broker) <= 32, "{} retiring", retiring(&broker));
        }
        let s = broker.stats();
        assert!(s.balances());
        assert_eq!(retiring(&broker), 0, "stats finalise the rest");
        assert_eq!((s.totals.matched, s.totals.dropped), (2_000, 2_000));
    }
}
