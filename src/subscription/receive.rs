//! Receiving: the handles receivers hold, what a receive returns, and how ending the last handle
//! unsubscribes.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::features::join::{DoneError, JoinError};
use crate::id::SubscriptionId;
use crate::message::Message;
use crate::message::priority::Priority;
use crate::message::reason::DroppedByReason;
use crate::message::reply::ReplyError;
use crate::queue::policy::OverflowPolicy;
use crate::queue::ready::{AlreadyAttached, ReadySignal};
use crate::stats::counters::GapTracker;
use crate::stats::snapshot::SubscriptionStats;
use crate::sync::Ordering;
use crate::sync::waiters::Until;
use crate::topic::Filter;

use super::core::SubscriptionCore;
use super::error::{RecvError, RecvTimeoutError, TryRecvError};

/// What routes messages to subscriptions and can take one out of routing: the broker. This is all a
/// subscription knows of it, so that modules depend downwards (the broker knows subscriptions, not the
/// other way round).
pub(crate) trait Retire: Send + Sync {
    /// Removes subscription `id`: out of routing, closed, drained. Returns whether it was live.
    fn retire(&self, id: SubscriptionId) -> bool;
}

/// What all clones of one [`Subscription`] (or [`AckSubscription`](crate::AckSubscription)) share.
/// Dropping it (the last handle) unsubscribes.
pub(crate) struct ReceiverGroup {
    pub(crate) core: Arc<SubscriptionCore>,
    broker: Arc<dyn Retire>,
}

impl ReceiverGroup {
    pub(super) fn new(core: Arc<SubscriptionCore>, broker: Arc<dyn Retire>) -> Arc<Self> {
        Arc::new(Self { core, broker })
    }

    /// Ends the subscription for every receiver.
    pub(super) fn unsubscribe(&self) {
        self.broker.retire(self.core.id);
    }
}

impl Drop for ReceiverGroup {
    fn drop(&mut self) {
        if self.core.durable {
            // Durable subscriptions outlive their receivers; only an explicit unsubscribe ends them.
            return;
        }
        self.broker.retire(self.core.id);
    }
}

/// A message as one receiver got it, with any drops since that receiver's previous receive.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub(super) message: Message,
    /// Boxed: drops are rare, and a `Delivery` of two pointers comes back from a receive in
    /// registers, where one carrying the five counts inline would be copied through the stack.
    pub(super) missed: Option<Box<DroppedByReason>>,
}

impl Delivery {
    /// The message.
    ///
    /// ```
    /// use switchyard::Broker;
    ///
    /// let broker = Broker::new();
    /// let sub = broker.subscribe("a/b")?;
    /// broker.publish("a/b", "hi")?;
    /// let delivery = sub.try_recv()?;
    /// let message = delivery.message();
    /// assert_eq!((message.topic(), &message.payload()[..]), ("a/b", &b"hi"[..]));
    /// assert!(!message.is_request());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn message(&self) -> &Message {
        &self.message
    }

    /// The message, by value.
    ///
    /// ```
    /// use switchyard::{Broker, Message};
    ///
    /// let broker = Broker::new();
    /// let sub = broker.subscribe("log")?;
    /// broker.publish("log", "one")?;
    /// broker.publish("log", "two")?;
    ///
    /// let mut kept: Vec<Message> = Vec::new();
    /// while let Ok(delivery) = sub.try_recv() {
    ///     kept.push(delivery.into_message());
    /// }
    /// assert_eq!(&kept[1].payload()[..], b"two");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn into_message(self) -> Message {
        self.message
    }

    /// The topic the message was published on.
    ///
    /// ```
    /// use switchyard::Broker;
    ///
    /// let broker = Broker::new();
    /// let prices = broker.subscribe("stocks/+/price")?;
    /// broker.publish("stocks/AAPL/price", "189.5")?;
    /// assert_eq!(prices.try_recv()?.topic(), "stocks/AAPL/price"); // the topic, not the filter
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn topic(&self) -> &str {
        self.message.topic()
    }

    /// The payload.
    ///
    /// ```
    /// use switchyard::{Broker, Bytes};
    ///
    /// let broker = Broker::new();
    /// let sub = broker.subscribe("raw")?;
    /// broker.publish("raw", vec![0u8, 1, 2])?;
    /// assert_eq!(sub.try_recv()?.payload(), &Bytes::from_static(&[0, 1, 2]));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn payload(&self) -> &bytes::Bytes {
        self.message.payload()
    }

    /// The message's priority.
    ///
    /// ```
    /// use switchyard::{Broker, Priority, PublishOptions};
    ///
    /// let broker = Broker::new();
    /// let sub = broker.subscribe("jobs")?;
    /// broker.publish("jobs", "routine")?;
    /// broker.publish_with("jobs", "urgent", PublishOptions::new().priority(Priority::High))?;
    /// assert_eq!(sub.try_recv()?.priority(), Priority::High);
    /// assert_eq!(sub.try_recv()?.priority(), Priority::Normal);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn priority(&self) -> Priority {
        self.message.priority()
    }

    /// Replies to the request this message carries (see [`PendingReply`](crate::PendingReply)).
    ///
    /// ```
    /// use std::time::Duration;
    /// use switchyard::{Broker, ReplyError};
    ///
    /// let broker = Broker::new();
    /// let inbox = broker.subscribe("echo")?;
    /// let pending = broker.request_async("echo", "ping")?;
    ///
    /// let request = inbox.try_recv()?;
    /// request.reply("pong")?;
    /// assert_eq!(request.reply("again"), Err(ReplyError::AlreadyAnswered)); // the first reply wins
    /// assert_eq!(&pending.wait(Duration::from_secs(1))?.payload()[..], b"pong");
    ///
    /// broker.publish("echo", "plain")?;
    /// assert_eq!(inbox.try_recv()?.reply("?"), Err(ReplyError::NotARequest));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn reply(&self, payload: impl Into<bytes::Bytes>) -> Result<(), ReplyError> {
        self.message.reply(payload)
    }

    /// Messages of this subscription dropped since this handle last received, by reason; `None` when
    /// there were none. With several receivers on one subscription, each handle sees each gap once.
    ///
    /// ```
    /// use switchyard::{Broker, OverflowPolicy, SubscriptionOptions};
    ///
    /// let broker = Broker::new();
    /// let options = SubscriptionOptions::new().capacity(1).policy(OverflowPolicy::DropOldest);
    /// let ticks = broker.subscribe_with("ticks", options)?;
    /// broker.publish("ticks", "1")?;
    /// broker.publish("ticks", "2")?; // evicts "1"
    ///
    /// let delivery = ticks.try_recv()?;
    /// assert_eq!(&delivery.payload()[..], b"2");
    /// assert_eq!(delivery.missed().map(|m| m.evicted), Some(1));
    ///
    /// broker.publish("ticks", "3")?;
    /// assert_eq!(ticks.try_recv()?.missed(), None); // each gap is told once
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn missed(&self) -> Option<DroppedByReason> {
        self.missed.as_deref().copied()
    }
}

/// What [`Subscription::drain_into`] took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Drained {
    /// How many messages were appended.
    pub count: usize,
    /// Drops since this handle's previous receive, as in [`Delivery::missed`].
    pub missed: Option<DroppedByReason>,
}

/// A receiver of one subscription.
///
/// Clone it to add a competing receiver (each message goes to one of them). Drop every clone, or call
/// [`Subscription::unsubscribe`] or [`crate::Broker::unsubscribe`], to end the subscription.
/// `Subscription` is `Send + Sync`; receive methods take `&self`.
pub struct Subscription {
    group: Arc<ReceiverGroup>,
    /// This handle's view of the drop counters at its previous receive, for [`Delivery::missed`].
    gaps: GapTracker,
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("id", &self.id())
            .field("name", &self.name())
            .field("filter", &self.filter().as_str())
            .finish()
    }
}

impl Clone for Subscription {
    fn clone(&self) -> Self {
        Self::new_receiver(self.group.clone())
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.group.core.receivers.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Subscription {
    pub(crate) fn new(core: Arc<SubscriptionCore>, broker: Arc<dyn Retire>) -> Self {
        Self::new_receiver(ReceiverGroup::new(core, broker))
    }

    fn new_receiver(group: Arc<ReceiverGroup>) -> Self {
        group.core.receivers.fetch_add(1, Ordering::Relaxed);
        Self {
            gaps: GapTracker::new(&group.core.counters),
            group,
        }
    }

    fn core(&self) -> &SubscriptionCore {
        &self.group.core
    }

    /// The subscription's id.
    ///
    /// ```
    /// use switchyard::Broker;
    ///
    /// let broker = Broker::new();
    /// let a = broker.subscribe("a")?;
    /// let b = broker.subscribe("b")?;
    /// assert_ne!(a.id(), b.id());
    /// assert_eq!(a.clone().id(), a.id()); // a clone is another receiver of the same subscription
    /// assert_eq!(broker.subscription_stats(a.id()).unwrap().filter, "a");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn id(&self) -> SubscriptionId {
        self.core().id
    }

    /// The subscription's name (`s<id>` unless one was given).
    ///
    /// ```
    /// use switchyard::{Broker, SubscriptionOptions};
    ///
    /// let broker = Broker::new();
    /// let unnamed = broker.subscribe("a")?;
    /// assert_eq!(unnamed.name(), format!("s{}", unnamed.id()));
    /// let billing = broker.subscribe_with("orders/#", SubscriptionOptions::new().name("billing"))?;
    /// assert_eq!(billing.name(), "billing");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn name(&self) -> &str {
        &self.core().name
    }

    /// The filter it was subscribed with.
    ///
    /// ```
    /// use switchyard::Broker;
    ///
    /// let broker = Broker::new();
    /// let prices = broker.subscribe("stocks/+/price")?;
    /// assert_eq!(prices.filter().as_str(), "stocks/+/price");
    /// assert!(prices.filter().matches("stocks/AAPL/price"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn filter(&self) -> &Filter {
        &self.core().filter
    }

    /// Queue capacity in messages.
    ///
    /// ```
    /// use switchyard::{Broker, SubscriptionOptions};
    ///
    /// let broker = Broker::new();
    /// assert_eq!(broker.subscribe("a")?.capacity(), SubscriptionOptions::DEFAULT_CAPACITY);
    /// let small = broker.subscribe_with("b", SubscriptionOptions::new().capacity(8))?;
    /// assert_eq!(small.capacity(), 8);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn capacity(&self) -> usize {
        self.core().capacity()
    }

    /// Messages queued now.
    ///
    /// ```
    /// use switchyard::Broker;
    ///
    /// let broker = Broker::new();
    /// let jobs = broker.subscribe("jobs")?;
    /// broker.publish("jobs", "a")?;
    /// broker.publish("jobs", "b")?;
    /// assert_eq!(jobs.len(), 2);
    /// jobs.try_recv()?;
    /// assert_eq!(jobs.len(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn len(&self) -> usize {
        self.core().len()
    }

    /// Whether nothing is queued now.
    ///
    /// ```
    /// use switchyard::Broker;
    ///
    /// let broker = Broker::new();
    /// let jobs = broker.subscribe("jobs")?;
    /// assert!(jobs.is_empty());
    /// broker.publish("jobs", "a")?;
    /// assert!(!jobs.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The overflow policy in force.
    ///
    /// ```
    /// use switchyard::{Broker, OverflowPolicy, SubscriptionOptions};
    ///
    /// let broker = Broker::new();
    /// assert_eq!(broker.subscribe("jobs")?.policy(), OverflowPolicy::DropNewest);
    /// let options = SubscriptionOptions::new().policy(OverflowPolicy::DropOldest);
    /// assert_eq!(broker.subscribe_with("ticks", options)?.policy().name(), "drop-oldest");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn policy(&self) -> OverflowPolicy {
        self.core().policy()
    }

    /// Replaces the overflow policy while the subscription runs. Each message is judged by the policy in
    /// force when it meets a full queue; none is lost or counted twice by the change.
    ///
    /// ```
    /// use switchyard::{Broker, OverflowPolicy, SubscriptionOptions};
    ///
    /// let broker = Broker::new();
    /// let ticks = broker.subscribe_with("ticks", SubscriptionOptions::new().capacity(1))?;
    /// broker.publish("ticks", "1")?;
    /// broker.publish("ticks", "2")?; // `DropNewest`: "2" is refused
    /// ticks.set_policy(OverflowPolicy::DropOldest);
    /// broker.publish("ticks", "3")?; // `DropOldest`: "1" is evicted
    ///
    /// assert_eq!(&ticks.try_recv()?.payload()[..], b"3");
    /// let dropped = ticks.stats().dropped_by_reason;
    /// assert_eq!((dropped.queue_full, dropped.evicted), (1, 1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set_policy(&self, policy: OverflowPolicy) {
        self.core().set_policy(policy);
    }

    /// Whether the subscription has been unsubscribed.
    ///
    /// ```
    /// use switchyard::Broker;
    ///
    /// let broker = Broker::new();
    /// let jobs = broker.subscribe("jobs")?;
    /// assert!(!jobs.is_closed());
    /// broker.unsubscribe(jobs.id())?;
    /// assert!(jobs.is_closed());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_closed(&self) -> bool {
        self.core().is_closed()
    }

    /// Acknowledges one message this subscription delivered as processed (`task_done`). See
    /// [`SubscriptionOptions::joinable`](crate::SubscriptionOptions::joinable). Any receiver handle of the subscription may acknowledge any delivered message.
    ///
    /// ```
    /// use switchyard::{Broker, SubscriptionOptions};
    ///
    /// let broker = Broker::new();
    /// let jobs = broker.subscribe_with("jobs", SubscriptionOptions::new().joinable(true))?;
    /// broker.publish("jobs", "resize")?;
    /// let _job = jobs.try_recv()?;
    /// assert_eq!(jobs.stats().unfinished, Some(1));
    ///
    /// jobs.done()?;
    /// assert_eq!(jobs.stats().unfinished, Some(0));
    /// assert!(jobs.done().is_err()); // nothing left to acknowledge
    /// assert!(broker.subscribe("plain")?.done().is_err()); // not joinable
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn done(&self) -> Result<(), DoneError> {
        self.core().done()
    }

    /// Waits up to `timeout` until every message queued on this subscription has been received and
    /// acknowledged with [`Subscription::done`](crate::Subscription::done) (or dropped). See [`SubscriptionOptions::joinable`](crate::SubscriptionOptions::joinable).
    ///
    /// ```
    /// use std::time::Duration;
    /// use switchyard::{Broker, SubscriptionOptions};
    ///
    /// let broker = Broker::new();
    /// let jobs = broker.subscribe_with("jobs", SubscriptionOptions::new().joinable(true))?;
    /// let worker = {
    ///     let jobs = jobs.clone();
    ///     std::thread::spawn(move || {
    ///         for _ in 0..2 {
    ///             jobs.recv_timeout(Duration::from_secs(5)).expect("a job");
    ///             jobs.done().expect("a delivered job to acknowledge");
    ///         }
    ///     })
    /// };
    /// broker.publish("jobs", "a")?;
    /// broker.publish("jobs", "b")?;
    ///
    /// jobs.join(Duration::from_secs(5))?; // returns once the worker acknowledged both
    /// assert_eq!(jobs.stats().unfinished, Some(0));
    /// worker.join().unwrap();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn join(&self, timeout: Duration) -> Result<(), JoinError> {
        self.core().join_until(Instant::now().checked_add(timeout))
    }

    /// This subscription's counters now.
    ///
    /// ```
    /// use switchyard::{Broker, SubscriptionOptions};
    ///
    /// let broker = Broker::new();
    /// let ticks = broker.subscribe_with("ticks", SubscriptionOptions::new().capacity(1))?;
    /// broker.publish("ticks", "1")?;
    /// broker.publish("ticks", "2")?; // refused: the queue is full
    /// ticks.try_recv()?;
    ///
    /// let s = ticks.stats();
    /// assert_eq!((s.matched, s.delivered, s.dropped, s.depth), (2, 1, 1, 0));
    /// assert!(s.balances()); // matched = delivered + dropped + depth
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn stats(&self) -> SubscriptionStats {
        self.core().stats()
    }

    /// Ends the subscription for every receiver; what is still queued is counted as dropped
    /// (`unsubscribed`). Equivalent to [`crate::Broker::unsubscribe`] with this id.
    ///
    /// ```
    /// use switchyard::{Broker, TryRecvError};
    ///
    /// let broker = Broker::new();
    /// let jobs = broker.subscribe("jobs")?;
    /// let other_receiver = jobs.clone();
    /// broker.publish("jobs", "never received")?;
    ///
    /// jobs.unsubscribe();
    /// assert_eq!(other_receiver.try_recv().unwrap_err(), TryRecvError::Closed);
    /// assert_eq!(broker.publish("jobs", "too late")?.matched, 0);
    /// assert_eq!(broker.stats().totals.dropped, 1); // the queued message, as `unsubscribed`
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn unsubscribe(self) {
        self.group.unsubscribe();
    }

    fn missed(&self) -> Option<DroppedByReason> {
        self.gaps.check(&self.core().counters)
    }

    /// Takes the next message if one is queued.
    ///
    /// ```
    /// use switchyard::{Broker, TryRecvError};
    ///
    /// let broker = Broker::new();
    /// let jobs = broker.subscribe("jobs")?;
    /// assert_eq!(jobs.try_recv().unwrap_err(), TryRecvError::Empty);
    ///
    /// broker.publish("jobs", "a")?;
    /// assert_eq!(&jobs.try_recv()?.payload()[..], b"a");
    ///
    /// broker.unsubscribe(jobs.id())?;
    /// assert_eq!(jobs.try_recv().unwrap_err(), TryRecvError::Closed);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn try_recv(&self) -> Result<Delivery, TryRecvError> {
        match self.core().take() {
            Some(message) => Ok(Delivery {
                message,
                missed: self.missed().map(Box::new),
            }),
            None if self.core().is_closed() => Err(TryRecvError::Closed),
            None => Err(TryRecvError::Empty),
        }
    }

    /// Takes the next message, parking the thread while the queue is empty.
    ///
    /// Returns [`RecvError::Closed`] once the subscription is unsubscribed.
    ///
    /// ```
    /// use switchyard::{Broker, RecvError};
    ///
    /// let broker = Broker::new();
    /// let jobs = broker.subscribe("jobs")?;
    /// broker.publish("jobs", "a")?;
    /// assert_eq!(&jobs.recv()?.payload()[..], b"a"); // queued already: no wait
    ///
    /// broker.unsubscribe(jobs.id())?;
    /// assert_eq!(jobs.recv().unwrap_err(), RecvError::Closed); // returns instead of parking forever
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn recv(&self) -> Result<Delivery, RecvError> {
        self.recv_until(Until::Forever)
            .map_err(|_| RecvError::Closed)
    }

    /// Takes the next message, parking the thread up to `timeout` while the queue is empty.
    ///
    /// ```
    /// use std::time::Duration;
    /// use switchyard::{Broker, RecvTimeoutError};
    ///
    /// let broker = Broker::new();
    /// let jobs = broker.subscribe("jobs")?;
    /// let nothing = jobs.recv_timeout(Duration::from_millis(1));
    /// assert_eq!(nothing.unwrap_err(), RecvTimeoutError::Timeout);
    ///
    /// let publisher = {
    ///     let broker = broker.clone();
    ///     std::thread::spawn(move || broker.publish("jobs", "from another thread"))
    /// };
    /// let delivery = jobs.recv_timeout(Duration::from_secs(5))?;
    /// assert_eq!(&delivery.payload()[..], b"from another thread");
    /// publisher.join().unwrap()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Delivery, RecvTimeoutError> {
        // The deadline is made only if the first look finds nothing (see `Until`).
        self.recv_until(Until::After(timeout))
    }

    fn recv_until(&self, until: Until) -> Result<Delivery, RecvTimeoutError> {
        self.core()
            .not_empty
            .poll_then_wait_for(until, || match self.try_recv() {
                Ok(d) => Some(Ok(d)),
                Err(TryRecvError::Closed) => Some(Err(RecvTimeoutError::Closed)),
                Err(TryRecvError::Empty) => None,
            })
            .unwrap_or(Err(RecvTimeoutError::Timeout))
    }

    /// Takes the next message, waiting asynchronously while the queue is empty. Works on any executor
    /// (tokio included): it awaits an `event_listener` future and never blocks the thread.
    ///
    /// # Cancel safety
    /// Cancel-safe. A message is taken only in the same poll that returns it, so dropping the future
    /// (in a `tokio::select!` branch that lost, say) never loses a message; if the future was woken for a
    /// message and dropped, the wake-up passes to another waiting receiver.
    ///
    /// ```
    /// use std::time::Duration;
    /// use switchyard::Broker;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let broker = Broker::new();
    /// let jobs = broker.subscribe("jobs")?;
    /// let publisher = {
    ///     let broker = broker.clone();
    ///     tokio::spawn(async move { broker.publish("jobs", "a") })
    /// };
    /// let delivery = tokio::time::timeout(Duration::from_secs(5), jobs.recv_async()).await??;
    /// assert_eq!(&delivery.payload()[..], b"a");
    /// publisher.await??;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn recv_async(&self) -> Result<Delivery, RecvError> {
        self.core()
            .not_empty
            .wait_for_async(|| match self.try_recv() {
                Ok(d) => Some(Ok(d)),
                Err(TryRecvError::Closed) => Some(Err(RecvError::Closed)),
                Err(TryRecvError::Empty) => None,
            })
            .await
    }

    /// Attaches a [`ReadySignal`] to a subscription made without one, handing it out as `key`: a
    /// subscription you got from [`crate::Broker::attach`] (a restored durable one), say, that a pooled
    /// consumer should serve with the rest. If messages are already queued (or the subscription has
    /// closed), it goes on the ready list at once.
    ///
    /// A subscription has at most one signal: attaching a second one (or one when it was subscribed
    /// with [`SubscriptionOptions::ready_signal`](crate::SubscriptionOptions::ready_signal)) is refused with [`AlreadyAttached`], and the first
    /// one stays.
    ///
    /// ```
    /// use std::time::Duration;
    /// use switchyard::{Broker, ReadySignal};
    ///
    /// let broker = Broker::new();
    /// let sub = broker.subscribe("jobs/#").unwrap();
    /// broker.publish("jobs/1", "resize").unwrap();
    ///
    /// let signal = ReadySignal::new();
    /// sub.attach_ready_signal(&signal, 42).unwrap();
    /// let mut ready = Vec::new();
    /// signal.wait_ready(&mut ready, Duration::from_secs(1));
    /// assert_eq!(ready, [42]); // the message queued before attaching counts
    /// assert!(sub.attach_ready_signal(&ReadySignal::new(), 43).is_err());
    /// ```
    pub fn attach_ready_signal(
        &self,
        signal: &Arc<ReadySignal>,
        key: u64,
    ) -> Result<(), AlreadyAttached> {
        self.core().attach_ready_signal(signal, key)
    }

    /// Lets go of this subscription after its [`ReadySignal::holding`] signal handed it out: its next
    /// message puts it on the ready list again. Returns true if a message arrived while it was held:
    /// then it is still yours, and the list will not announce it; visit it again (and release it
    /// again when you find it empty). Returns false without a signal, and after a non-holding
    /// signal's take unless a message is queued (harmless: the list announces the next one anyway).
    ///
    /// ```
    /// use switchyard::{Broker, ReadySignal, SubscriptionOptions};
    ///
    /// let broker = Broker::new();
    /// let signal = ReadySignal::holding();
    /// let sub = broker.subscribe_with("a", SubscriptionOptions::new().ready_signal(&signal))?;
    /// broker.publish("a", "1")?;
    /// let mut ready = Vec::new();
    /// signal.try_ready(&mut ready);
    /// broker.publish("a", "2")?; // while held
    /// assert!(sub.release_ready()); // a message came meanwhile: still ours
    /// assert_eq!(sub.len(), 2);
    /// while sub.try_recv().is_ok() {}
    /// assert!(!sub.release_ready()); // empty now: let go
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn release_ready(&self) -> bool {
        self.core().release_ready()
    }

    /// Moves up to `max` queued messages into `out` without waiting; counts them delivered in one step.
    ///
    /// Like [`Subscription::try_recv`](crate::Subscription::try_recv), it takes nothing from a closed subscription: a message a late
    /// publisher slipped in after the unsubscribe is counted as dropped (`unsubscribed`) instead.
    ///
    /// ```
    /// use switchyard::Broker;
    ///
    /// let broker = Broker::new();
    /// let ticks = broker.subscribe("ticks")?;
    /// for i in 0..5 {
    ///     broker.publish("ticks", i.to_string())?;
    /// }
    ///
    /// let mut batch = Vec::new();
    /// let drained = ticks.drain_into(&mut batch, 3);
    /// assert_eq!((drained.count, batch.len(), ticks.len()), (3, 3, 2));
    /// assert_eq!(&batch[0].payload()[..], b"0"); // in order
    /// assert_eq!(ticks.stats().delivered, 3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn drain_into(&self, out: &mut Vec<Message>, max: usize) -> Drained {
        let count = self.core().take_into(out, max);
        Drained {
            count,
            missed: self.missed(),
        }
    }
}
