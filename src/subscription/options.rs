//! How a subscription is set up: capacity, overflow policy, name, and what it asks of the broker.

use std::sync::Arc;

use crate::features::ack::options::AckOptions;
use crate::features::replay_log::options::ReplayFrom;
use crate::queue::bytes::ByteBudget;
use crate::queue::policy::OverflowPolicy;
use crate::queue::ready::ReadySignal;
use crate::sync::spin::SpinPolicy;

/// How a subscription is set up. Build with [`SubscriptionOptions::new`] and the setters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionOptions {
    /// Queue capacity in messages (non-zero, at most [`SubscriptionOptions::MAX_CAPACITY`]).
    /// This is how far *this* subscription may fall behind, not a broker-wide total.
    pub capacity: usize,
    /// What happens when the queue is full.
    pub policy: OverflowPolicy,
    /// A name shown in stats; `s<id>` when `None`.
    pub name: Option<String>,
    /// Keep the subscription when its last receiver is dropped, and include it in saved state. Needs a
    /// name. See [`DurableState`](crate::DurableState).
    pub durable: bool,
    /// Receive the retained messages that match the filter first (see [`RetainedLimits`](crate::RetainedLimits)).
    pub receive_retained: bool,
    /// Count unfinished messages so publishers can [`Subscription::join`](crate::Subscription::join); receivers acknowledge with
    /// [`Subscription::done`](crate::Subscription::done). See [`SubscriptionOptions::joinable`](crate::SubscriptionOptions::joinable).
    pub joinable: bool,
    /// Notified after every push into this subscription, so one thread can wait on many subscriptions
    /// (see [`ReadySignal`](crate::ReadySignal)).
    pub ready_signal: Option<Arc<ReadySignal>>,
    /// What the ready signal hands out for this subscription: the caller's own key (an index into its
    /// table of subscriptions, say), or the subscription's id when `None`.
    pub ready_key: Option<u64>,
    /// A bound on the payload bytes queued in this subscription; `None`: bounded by `capacity` only. A
    /// message that would go over it is refused (`byte_limit`), whatever the overflow policy.
    pub max_bytes: Option<u64>,
    /// A byte budget shared with other subscriptions (see [`ByteBudget`]).
    pub byte_budget: Option<Arc<ByteBudget>>,
    /// Acknowledged delivery (at least once): set by [`Broker::subscribe_acked`](crate::Broker::subscribe_acked),
    /// which returns an [`AckSubscription`](crate::AckSubscription). `None`: at most once.
    pub ack: Option<AckOptions>,
    /// Start from the broker's replay log: receive its messages from this point, then live traffic
    /// (see [`ReplayFrom`]). `None`: live traffic only, as [`ReplayFrom::Newest`].
    pub replay: Option<ReplayFrom>,
    /// Whether a receiver that finds the queue empty polls before it parks (see [`SpinPolicy`]).
    pub spin: SpinPolicy,
    /// Allocate the queue's slots when subscribing, not at the first message (see
    /// [`SubscriptionOptions::preallocate`]).
    pub preallocate: bool,
}

impl SubscriptionOptions {
    /// The default capacity: 256 messages. A queue allocates nothing until its first message; then, up
    /// to a capacity of 1,024, all its slots at once (16 bytes each: about 4 KiB at 256), and above
    /// that 16 bytes per message queued, in blocks allocated as it fills and freed as it drains.
    pub const DEFAULT_CAPACITY: usize = 256;
    /// The largest capacity accepted: 2^24 messages (256 MiB of slots when full).
    pub const MAX_CAPACITY: usize = 1 << 24;

    /// Default options: capacity 256, `DropNewest`, no name.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the queue capacity.
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity;
        self
    }

    /// Sets the overflow policy.
    pub fn policy(mut self, policy: OverflowPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Attaches a [`ReadySignal`], notified after every push into this subscription.
    pub fn ready_signal(mut self, signal: &Arc<ReadySignal>) -> Self {
        self.ready_signal = Some(signal.clone());
        self
    }

    /// Sets the key the [`ReadySignal`] hands out for this subscription (by default its id), so a
    /// consumer can find it by index instead of looking the id up.
    pub fn ready_key(mut self, key: u64) -> Self {
        self.ready_key = Some(key);
        self
    }

    /// Sets the name shown in stats.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Makes the subscription durable (see [`DurableState`](crate::DurableState)); it must also have a name.
    pub fn durable(mut self, durable: bool) -> Self {
        self.durable = durable;
        self
    }

    /// Asks for the retained messages that match the filter, before live traffic.
    pub fn receive_retained(mut self, receive: bool) -> Self {
        self.receive_retained = receive;
        self
    }

    /// Bounds the payload bytes queued in this subscription: a message that would go over it is refused
    /// and counted as dropped (`byte_limit`), whatever the overflow policy.
    ///
    /// ```
    /// use switchyard::{Broker, SubscriptionOptions};
    ///
    /// let broker = Broker::new();
    /// let images = broker.subscribe_with("images", SubscriptionOptions::new().max_bytes(1 << 20))?;
    /// broker.publish("images", vec![0u8; 600_000])?;
    /// broker.publish("images", vec![0u8; 600_000])?; // 1.2 MB would be over the bound
    /// let s = images.stats();
    /// assert_eq!((s.depth, s.dropped_by_reason.byte_limit), (1, 1));
    /// assert_eq!((s.queued_bytes, s.max_bytes), (Some(600_000), Some(1 << 20)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn max_bytes(mut self, bytes: u64) -> Self {
        self.max_bytes = Some(bytes);
        self
    }

    /// Shares `budget` with the other subscriptions given it (see [`ByteBudget`]).
    pub fn byte_budget(mut self, budget: &Arc<ByteBudget>) -> Self {
        self.byte_budget = Some(budget.clone());
        self
    }

    /// Sets the acknowledgement settings, for [`Broker::subscribe_acked_with`](crate::Broker::subscribe_acked_with).
    pub fn ack(mut self, ack: AckOptions) -> Self {
        self.ack = Some(ack);
        self
    }

    /// Starts the subscription from the broker's replay log
    /// ([`BrokerOptions::replay_log`](crate::BrokerOptions::replay_log)): the logged messages its
    /// filter matches from `from` on, in sequence order, then live traffic, with no message lost or
    /// repeated at the switch. Applies when the subscription is made (not to a durable subscription
    /// that already exists).
    ///
    /// ```
    /// use switchyard::{Broker, BrokerOptions, Filter, ReplayFrom, ReplayLogOptions, SubscriptionOptions};
    ///
    /// let log = ReplayLogOptions::new(Filter::new("orders/#")?);
    /// let broker = Broker::with_options(BrokerOptions::new().replay_log(log));
    /// broker.publish("orders/1", "placed")?;
    /// let audit = broker.subscribe_with("orders/#", SubscriptionOptions::new().replay(ReplayFrom::Oldest))?;
    /// broker.publish("orders/1", "paid")?;
    /// assert_eq!(&audit.try_recv()?.payload()[..], b"placed"); // from the log
    /// assert_eq!(&audit.try_recv()?.payload()[..], b"paid"); // live
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn replay(mut self, from: ReplayFrom) -> Self {
        self.replay = Some(from);
        self
    }

    /// Sets what a receiver waiting in `recv` or `recv_timeout` does when the queue is empty: poll for a
    /// while before it parks, or park at once. The default, [`SpinPolicy::Adaptive`], polls only
    /// while its recent waits were short, so a receiver whose messages come tens of microseconds apart
    /// or more costs no CPU between them; see [`SpinPolicy`] for what each costs.
    ///
    /// ```
    /// use switchyard::{Broker, SpinPolicy, SubscriptionOptions};
    ///
    /// let broker = Broker::new();
    /// // Many background receivers on a busy machine: never spend CPU polling.
    /// let audit = broker.subscribe_with("audit/#", SubscriptionOptions::new().spin(SpinPolicy::Never))?;
    /// broker.publish("audit/login", "alice")?;
    /// assert_eq!(&audit.recv()?.payload()[..], b"alice");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn spin(mut self, policy: SpinPolicy) -> Self {
        self.spin = policy;
        self
    }

    /// Allocates the queue's slots now, when subscribing, instead of at the first message.
    ///
    /// By default a subscription holds no slots until a message arrives (an idle subscription costs
    /// under 1 KiB whatever its capacity), and its first message allocates them: at the default
    /// capacity of 256, 4 KiB, written once and faulted in by the kernel, on the publisher's thread.
    /// That is a one-time cost per subscription, but a service that makes many subscriptions and
    /// publishes to all of them soon pays it on its hot path, spread over its first pass: at 100,000
    /// subscriptions of one exact topic each, preallocated slots made publishing through
    /// per-topic `Publisher` handles 8–15% faster per CPU second in 4–8 s runs
    /// (`docs/performance.md`). Choose it
    /// when every subscription will get messages and the first one's latency matters; it costs the
    /// slots' memory up front (16 bytes per message of capacity, up to a capacity of 1,024; above
    /// that, one block of 31 messages and the queue's ends, as the first message would). Only the
    /// `Normal` priority's queue is preallocated; the others are still made by their first message.
    ///
    /// ```
    /// use switchyard::{Broker, SubscriptionOptions};
    ///
    /// let broker = Broker::new();
    /// let ticks = broker.subscribe_with("ticks/eurusd", SubscriptionOptions::new().preallocate(true))?;
    /// broker.publish("ticks/eurusd", "1.0842")?; // no allocation of slots on this publish
    /// assert_eq!(&ticks.try_recv()?.payload()[..], b"1.0842");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn preallocate(mut self, preallocate: bool) -> Self {
        self.preallocate = preallocate;
        self
    }

    /// Makes the subscription joinable: receivers acknowledge each processed message with
    /// [`Subscription::done`](crate::Subscription::done), and a join waits until none is left (see
    /// [`JoinError`](crate::JoinError)).
    pub fn joinable(mut self, joinable: bool) -> Self {
        self.joinable = joinable;
        self
    }
}

impl Default for SubscriptionOptions {
    fn default() -> Self {
        Self {
            capacity: Self::DEFAULT_CAPACITY,
            policy: OverflowPolicy::default(),
            name: None,
            durable: false,
            receive_retained: false,
            joinable: false,
            ready_signal: None,
            ready_key: None,
            max_bytes: None,
            byte_budget: None,
            ack: None,
            replay: None,
            spin: SpinPolicy::Adaptive,
            preallocate: false,
        }
    }
}
