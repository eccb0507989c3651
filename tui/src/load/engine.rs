//! The seam between the generator and the broker it drives.
//!
//! The generator is generic over [`Engine`] so that the same publishers, consumers, pacing and latency
//! measurement drive both the switchyard core and the naive baseline (see [`super::naive`]); the hot
//! loops are monomorphised, so the seam costs nothing on the data path.
//!
//! Acknowledged engines ([`AckedCoreEngine`], and the naive one in [`super::naive_acked`]) hand out
//! messages that stay in flight until they are settled: the consumer settles what it took with
//! [`Engine::ack`], [`Engine::nack`] or [`Engine::abandon`], as its receiver's
//! [role](super::ack::Role) says. For a plain engine taking is delivering, and `ack` only counts.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use switchyard::{
    AckDelivery, AckOptions, AckSubscription, Broker, BrokerOptions, Bytes, Message,
    OverflowPolicy, Priority, PublishOptions, Publisher, ReadySignal, StatsSnapshot, Subscription,
    SubscriptionOptions,
};

/// A consumer thread's ready list: the subscriptions that got a message since they were last handed
/// out, by key. The core's is [`ReadySignal`]; the floor engine brings its own.
pub trait ReadyList: Send + Sync + 'static {
    /// An empty list.
    fn create() -> Arc<Self>;
    /// Appends the keys on the list now to `out`; returns how many.
    fn try_ready(&self, out: &mut Vec<u64>) -> usize;
    /// Like [`ReadyList::try_ready`], parking up to `timeout` while the list is empty.
    fn wait_ready(&self, out: &mut Vec<u64>, timeout: Duration) -> usize;
    /// Whether a subscription handed out stays with its consumer (off the list, its messages not
    /// announced) until the consumer lets go of it with [`Engine::release_ready`]. Otherwise the list
    /// announces the next message of a subscription as soon as it is handed out.
    const HOLDS: bool = false;
}

impl ReadyList for ReadySignal {
    /// A holding signal: a subscription is handed out once per burst, not once per message.
    fn create() -> Arc<Self> {
        ReadySignal::holding()
    }

    const HOLDS: bool = true;

    #[inline]
    fn try_ready(&self, out: &mut Vec<u64>) -> usize {
        ReadySignal::try_ready(self, out)
    }

    fn wait_ready(&self, out: &mut Vec<u64>, timeout: Duration) -> usize {
        ReadySignal::wait_ready(self, out, timeout)
    }
}

/// A broker the generator can drive.
pub trait Engine: Send + Sync + 'static {
    /// A handle that publishes on one topic.
    type Publisher: Send + 'static;
    /// One receiver of one subscription; clones compete for the subscription's messages.
    type Receiver: Send + 'static;
    /// What a receiver takes out of a queue.
    type Message: Send + 'static;
    /// The ready list [`Engine::subscribe_signalled`] attaches (unused unless
    /// [`Engine::SIGNALS_PUSHES`]).
    type Ready: ReadyList;

    /// Subscribes `filter` with the given queue capacity and overflow policy.
    fn subscribe(
        &self,
        filter: &str,
        capacity: usize,
        policy: OverflowPolicy,
    ) -> Result<Self::Receiver>;
    /// Whether [`Engine::subscribe_signalled`] really attaches its signal, so a consumer thread serving
    /// many receivers can take the ones with messages from its ready list instead of polling them all.
    const SIGNALS_PUSHES: bool = false;
    /// Subscribes like [`Engine::subscribe`], with the subscription on `signal`'s ready list whenever
    /// it has messages; the list hands it out as `key` (the consumer's slot index). Engines without
    /// such a signal ignore both.
    fn subscribe_signalled(
        &self,
        filter: &str,
        capacity: usize,
        policy: OverflowPolicy,
        _signal: &Arc<Self::Ready>,
        _key: u64,
    ) -> Result<Self::Receiver> {
        self.subscribe(filter, capacity, policy)
    }
    /// Whether the receiver has a message queued now (a ready list's consumer visits it again).
    fn has_queued(_receiver: &Self::Receiver) -> bool {
        false
    }
    /// Lets go of a receiver its holding ready list ([`ReadyList::HOLDS`]) handed out: its next
    /// message puts it on the list again. Returns true when a message came meanwhile and the
    /// consumer still holds it (it should visit it again).
    fn release_ready(_receiver: &Self::Receiver) -> bool {
        false
    }
    /// Another competing receiver of the same subscription.
    fn add_receiver(receiver: &Self::Receiver) -> Self::Receiver;
    /// A publishing handle for `topic`.
    fn publisher(&self, topic: &str) -> Result<Self::Publisher>;
    /// Publishes one payload; returns how many messages this publish caused to be dropped.
    fn publish(publisher: &mut Self::Publisher, payload: Bytes) -> usize;
    /// Publishes one payload with a priority, retained or not; returns how many messages it caused to be
    /// dropped. Engines without priorities or retention publish it plainly.
    fn publish_with(
        publisher: &mut Self::Publisher,
        payload: Bytes,
        _priority: Priority,
        _retain: bool,
    ) -> usize {
        Self::publish(publisher, payload)
    }
    /// Moves up to `max` queued messages into `out` without waiting; returns how many.
    fn drain(receiver: &Self::Receiver, out: &mut Vec<Self::Message>, max: usize) -> usize;
    /// Waits up to `timeout` for one message (used by a consumer thread that serves one receiver, so it
    /// is woken by the publish instead of polling).
    fn wait(receiver: &Self::Receiver, timeout: Duration) -> Option<Self::Message>;
    /// The payload of a message.
    fn payload(message: &Self::Message) -> &[u8];
    /// A snapshot of every counter.
    fn stats(&self) -> StatsSnapshot;
    /// Acknowledges every message in `taken` (emptying it); returns how many acks were accepted. A
    /// plain engine's messages were delivered when taken, so it only counts them.
    #[inline]
    fn ack(_receiver: &Self::Receiver, taken: &mut Vec<Self::Message>) -> usize {
        let n = taken.len();
        taken.clear();
        n
    }
    /// Hands every message in `taken` back for delivery again now (emptying it). Acknowledged engines
    /// only; a plain engine has nothing to hand back.
    fn nack(_receiver: &Self::Receiver, taken: &mut Vec<Self::Message>) {
        taken.clear();
    }
    /// Leaves every message in `taken` in flight, unsettled, and forgets it (emptying `taken`): it
    /// comes back when its ack deadline passes or its receiver goes away. Acknowledged engines only.
    fn abandon(taken: &mut Vec<Self::Message>) {
        taken.clear();
    }
    /// Messages of the receiver's subscription in flight now (0 for a plain engine): the drain waits
    /// for them to be settled.
    fn in_flight(_receiver: &Self::Receiver) -> u64 {
        0
    }
    /// The switchyard broker behind this engine, for what only the core has: the late joiners of
    /// `--replay`, which replay from its log. `None` for the baselines.
    fn core_broker(&self) -> Option<&Broker> {
        None
    }
}

/// The switchyard core: publishes through [`Publisher`] handles (validated once, route cached) and
/// receives with `drain_into` batches.
#[derive(Debug, Clone, Default)]
pub struct CoreEngine {
    broker: Broker,
    /// Subscriptions get their slots when made (`--preallocate`).
    preallocate: bool,
}

impl CoreEngine {
    /// An engine on a broker made with `options` (a replay log, with `--replay-log`).
    pub fn new(options: BrokerOptions) -> Self {
        Self {
            broker: Broker::with_options(options),
            preallocate: false,
        }
    }

    /// This engine, making every subscription with its slots allocated (`--preallocate`).
    pub fn preallocating(self, preallocate: bool) -> Self {
        Self {
            preallocate,
            ..self
        }
    }

    /// The broker this engine drives (for `--serve`).
    pub fn broker(&self) -> &Broker {
        &self.broker
    }

    fn subscribe_options(
        &self,
        filter: &str,
        options: SubscriptionOptions,
    ) -> Result<Subscription> {
        self.broker
            .subscribe_with(filter, options.preallocate(self.preallocate))
            .with_context(|| format!("subscribing {filter}"))
    }
}

impl Engine for CoreEngine {
    type Publisher = Publisher;
    type Receiver = Subscription;
    type Message = Message;
    type Ready = ReadySignal;

    fn subscribe(
        &self,
        filter: &str,
        capacity: usize,
        policy: OverflowPolicy,
    ) -> Result<Subscription> {
        self.subscribe_options(
            filter,
            SubscriptionOptions::new().capacity(capacity).policy(policy),
        )
    }

    const SIGNALS_PUSHES: bool = true;

    fn subscribe_signalled(
        &self,
        filter: &str,
        capacity: usize,
        policy: OverflowPolicy,
        signal: &Arc<ReadySignal>,
        key: u64,
    ) -> Result<Subscription> {
        self.subscribe_options(
            filter,
            SubscriptionOptions::new()
                .capacity(capacity)
                .policy(policy)
                .ready_signal(signal)
                .ready_key(key),
        )
    }

    fn has_queued(receiver: &Subscription) -> bool {
        !receiver.is_empty()
    }

    fn release_ready(receiver: &Subscription) -> bool {
        receiver.release_ready()
    }

    fn add_receiver(receiver: &Subscription) -> Subscription {
        receiver.clone()
    }

    fn publisher(&self, topic: &str) -> Result<Publisher> {
        self.broker
            .publisher(topic)
            .with_context(|| format!("publishing on {topic}"))
    }

    #[inline]
    fn publish(publisher: &mut Publisher, payload: Bytes) -> usize {
        publisher.publish(payload).dropped
    }

    fn publish_with(
        publisher: &mut Publisher,
        payload: Bytes,
        priority: Priority,
        retain: bool,
    ) -> usize {
        let options = PublishOptions::new().priority(priority).retain(retain);
        publisher.publish_with(payload, options).dropped
    }

    #[inline]
    fn drain(receiver: &Subscription, out: &mut Vec<Message>, max: usize) -> usize {
        receiver.drain_into(out, max).count
    }

    fn wait(receiver: &Subscription, timeout: Duration) -> Option<Message> {
        receiver
            .recv_timeout(timeout)
            .ok()
            .map(|d| d.into_message())
    }

    #[inline]
    fn payload(message: &Message) -> &[u8] {
        message.payload()
    }

    fn stats(&self) -> StatsSnapshot {
        self.broker.stats()
    }

    fn core_broker(&self) -> Option<&Broker> {
        Some(&self.broker)
    }
}

/// The switchyard core with acknowledged subscriptions (`--ack`): publishes as [`CoreEngine`] does,
/// receives with `AckSubscription::try_recv` (one delivery at a time, each holding a place in the
/// window) and acks each message on its own.
#[derive(Debug, Clone)]
pub struct AckedCoreEngine {
    core: CoreEngine,
    options: AckOptions,
}

impl AckedCoreEngine {
    /// A broker made with `broker`, whose subscriptions are acknowledged with `options`.
    pub fn new(options: AckOptions, broker: BrokerOptions) -> Self {
        Self {
            core: CoreEngine::new(broker),
            options,
        }
    }

    /// The broker this engine drives (for `--serve`).
    pub fn broker(&self) -> &Broker {
        self.core.broker()
    }

    /// This engine, making every subscription with its slots allocated (`--preallocate`).
    pub fn preallocating(self, preallocate: bool) -> Self {
        Self {
            core: self.core.preallocating(preallocate),
            ..self
        }
    }
}

impl Engine for AckedCoreEngine {
    type Publisher = Publisher;
    type Receiver = AckSubscription;
    type Message = AckDelivery;
    /// Unused: receivers of acknowledged subscriptions are polled, not signalled.
    type Ready = ReadySignal;

    fn subscribe(
        &self,
        filter: &str,
        capacity: usize,
        policy: OverflowPolicy,
    ) -> Result<AckSubscription> {
        let options = SubscriptionOptions::new()
            .capacity(capacity)
            .policy(policy)
            .preallocate(self.core.preallocate)
            .ack(self.options);
        self.core
            .broker
            .subscribe_acked_with(filter, options)
            .with_context(|| format!("subscribing {filter} (acknowledged)"))
    }

    fn add_receiver(receiver: &AckSubscription) -> AckSubscription {
        receiver.clone()
    }

    fn publisher(&self, topic: &str) -> Result<Publisher> {
        self.core.publisher(topic)
    }

    #[inline]
    fn publish(publisher: &mut Publisher, payload: Bytes) -> usize {
        CoreEngine::publish(publisher, payload)
    }

    fn publish_with(
        publisher: &mut Publisher,
        payload: Bytes,
        priority: Priority,
        retain: bool,
    ) -> usize {
        CoreEngine::publish_with(publisher, payload, priority, retain)
    }

    #[inline]
    fn drain(receiver: &AckSubscription, out: &mut Vec<AckDelivery>, max: usize) -> usize {
        // Empty, the window full, or closed: nothing more to take now.
        receiver.drain_into(out, max).unwrap_or(0)
    }

    fn wait(receiver: &AckSubscription, timeout: Duration) -> Option<AckDelivery> {
        receiver.recv_timeout(timeout).ok()
    }

    #[inline]
    fn payload(message: &AckDelivery) -> &[u8] {
        message.payload()
    }

    fn stats(&self) -> StatsSnapshot {
        self.core.stats()
    }

    #[inline]
    fn ack(receiver: &AckSubscription, taken: &mut Vec<AckDelivery>) -> usize {
        if let [_] = taken.as_slice() {
            return taken
                .drain(..)
                .map(AckDelivery::ack)
                .filter(Result::is_ok)
                .count();
        }
        let tokens: Vec<_> = taken.drain(..).map(AckDelivery::into_token).collect();
        receiver.ack_batch(&tokens).acked
    }

    fn nack(_receiver: &AckSubscription, taken: &mut Vec<AckDelivery>) {
        for d in taken.drain(..) {
            // A refusal (the subscription ended) is counted by the broker; nothing to do here.
            let _ = d.nack();
        }
    }

    fn abandon(taken: &mut Vec<AckDelivery>) {
        for d in taken.drain(..) {
            let _ = d.into_token();
        }
    }

    fn in_flight(receiver: &AckSubscription) -> u64 {
        receiver.in_flight()
    }

    fn core_broker(&self) -> Option<&Broker> {
        Some(self.broker())
    }
}
