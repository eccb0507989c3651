//! How a broker is set up, and how one message is published.

use std::time::Instant;

use crate::features::replay_log::options::ReplayLogOptions;
use crate::features::retained::RetainedLimits;
use crate::message::priority::Priority;
use crate::topic::{TopicLimits, TopicSyntax};

/// How a broker is set up. `BrokerOptions::default()` is what [`Broker::new`](crate::Broker::new) builds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BrokerOptions {
    /// Limits topics and filters are validated against.
    pub limits: TopicLimits,
    /// Capacity of the dead-letter queue; `None` (the default) keeps no dead letters.
    /// See [`DeadLetters`](crate::DeadLetters).
    pub dead_letters: Option<usize>,
    /// Bounds of the retained-message store. See [`RetainedLimits`](crate::RetainedLimits).
    pub retained: RetainedLimits,
    /// The replay log: which topics it keeps and its bounds; `None` (the default) keeps none. See
    /// [`BrokerOptions::replay_log`].
    pub replay_log: Option<ReplayLogOptions>,
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

    /// Sets the topic syntax ([`TopicLimits::syntax`]): [`TopicSyntax::Mqtt`] for a broker that serves
    /// MQTT clients, so a whole `*` level is an ordinary level, as MQTT has it.
    pub fn topic_syntax(mut self, syntax: TopicSyntax) -> Self {
        self.limits.syntax = syntax;
        self
    }

    /// Sets the bounds of the retained-message store.
    pub fn retained(mut self, limits: RetainedLimits) -> Self {
        self.retained = limits;
        self
    }

    /// Keeps a replay log of the topics `options.filter` matches, bounded by count, bytes and age:
    /// every publish on such a topic takes the next sequence number
    /// ([`Message::seq`](crate::Message::seq)), and a subscription can start from the log
    /// ([`SubscriptionOptions::replay`](crate::SubscriptionOptions::replay)). Publishes on other
    /// topics, and brokers without a log, pay one branch for it.
    ///
    /// ```
    /// use switchyard::{Broker, BrokerOptions, Filter, ReplayFrom, ReplayLogOptions, SubscriptionOptions};
    ///
    /// let log = ReplayLogOptions::new(Filter::new("sensors/#")?).max_messages(10_000);
    /// let broker = Broker::with_options(BrokerOptions::new().replay_log(log));
    /// broker.publish("sensors/kitchen/temp", "21.5")?;
    ///
    /// let late = broker.subscribe_with("sensors/#", SubscriptionOptions::new().replay(ReplayFrom::Seq(1)))?;
    /// assert_eq!(&late.try_recv()?.payload()[..], b"21.5");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn replay_log(mut self, options: ReplayLogOptions) -> Self {
        self.replay_log = Some(options);
        self
    }

    /// Keeps up to `capacity` dead letters (at least 1; a zero is raised to 1).
    pub fn dead_letters(mut self, capacity: usize) -> Self {
        self.dead_letters = Some(capacity.max(1));
        self
    }
}

/// How to publish one message. `PublishOptions::default()` is what [`Broker::publish`](crate::Broker::publish) does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PublishOptions {
    /// The message's priority; receivers take higher priorities first.
    pub priority: Priority,
    /// Keep it as the topic's retained message; an empty payload clears it. See [`RetainedLimits`](crate::RetainedLimits).
    pub retain: bool,
    /// A byte carried with the message to its receivers ([`Message::tag`](crate::Message::tag)), for protocol adapters; 0
    /// by default.
    pub tag: u8,
    /// The latest instant a [`Block`](crate::OverflowPolicy::Block) subscription may keep this
    /// publish waiting for room: each waits until the earlier of its own timeout and this, then drops
    /// the message as `timeout`, as when its own timeout ends. `None` (the default): each
    /// subscription's own timeout. For a caller that has a limit of its own, such as a request
    /// with a deadline; other policies never wait, so it changes nothing for them.
    pub deadline: Option<Instant>,
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

    /// Sets the byte carried with the message ([`Message::tag`](crate::Message::tag)).
    pub fn tag(mut self, tag: u8) -> Self {
        self.tag = tag;
        self
    }

    /// Waits for room in a `Block` subscription no later than `deadline` ([`PublishOptions::deadline`]).
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use switchyard::{Broker, OverflowPolicy, PublishOptions, SubscriptionOptions};
    ///
    /// let broker = Broker::new();
    /// let hour = OverflowPolicy::Block { timeout: Duration::from_secs(3600) };
    /// let full = broker.subscribe_with("jobs", SubscriptionOptions::new().capacity(1).policy(hour))?;
    /// broker.publish("jobs", "first")?; // fills the queue
    ///
    /// // Nobody receives: without a deadline this would wait an hour.
    /// let soon = PublishOptions::new().deadline(Instant::now() + Duration::from_millis(20));
    /// let outcome = broker.publish_with("jobs", "second", soon)?;
    /// assert_eq!((outcome.queued, outcome.dropped), (0, 1));
    /// assert_eq!(full.stats().dropped_by_reason.timeout, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn deadline(mut self, deadline: Instant) -> Self {
        self.deadline = Some(deadline);
        self
    }
}
