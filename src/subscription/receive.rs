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

/// What all clones of one [`Subscription`] share. Dropping it (the last handle) unsubscribes.
pub(crate) struct ReceiverGroup {
    pub(crate) core: Arc<SubscriptionCore>,
    broker: Arc<dyn Retire>,
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
    message: Message,
    /// Boxed: drops are rare, and a `Delivery` of two pointers comes back from a receive in
    /// registers where one carrying the five counts inline was copied through the stack.
    missed: Option<Box<DroppedByReason>>,
}

impl Delivery {
    /// The message.
    pub fn message(&self) -> &Message {
        &self.message
    }

    /// The message, by value.
    pub fn into_message(self) -> Message {
        self.message
    }

    /// The topic the message was published on.
    pub fn topic(&self) -> &str {
        self.message.topic()
    }

    /// The payload.
    pub fn payload(&self) -> &bytes::Bytes {
        self.message.payload()
    }

    /// The message's priority.
    pub fn priority(&self) -> Priority {
        self.message.priority()
    }

    /// Replies to the request this message carries (see [`PendingReply`](crate::PendingReply)).
    pub fn reply(&self, payload: impl Into<bytes::Bytes>) -> Result<(), ReplyError> {
        self.message.reply(payload)
    }

    /// Messages of this subscription dropped since this handle last received, by reason; `None` when
    /// there were none. With several receivers on one subscription, each handle sees each gap once.
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
        Self::new_receiver(Arc::new(ReceiverGroup { core, broker }))
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
    pub fn id(&self) -> SubscriptionId {
        self.core().id
    }

    /// The subscription's name (`s<id>` unless one was given).
    pub fn name(&self) -> &str {
        &self.core().name
    }

    /// The filter it was subscribed with.
    pub fn filter(&self) -> &Filter {
        &self.core().filter
    }

    /// Queue capacity in messages.
    pub fn capacity(&self) -> usize {
        self.core().capacity()
    }

    /// Messages queued now.
    pub fn len(&self) -> usize {
        self.core().len()
    }

    /// Whether nothing is queued now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The overflow policy in force.
    pub fn policy(&self) -> OverflowPolicy {
        self.core().policy()
    }

    /// Replaces the overflow policy while the subscription runs. Each message is judged by the policy in
    /// force when it meets a full queue; none is lost or counted twice by the change.
    pub fn set_policy(&self, policy: OverflowPolicy) {
        self.core().set_policy(policy);
    }

    /// Whether the subscription has been unsubscribed.
    pub fn is_closed(&self) -> bool {
        self.core().is_closed()
    }

    /// Acknowledges one message this subscription delivered as processed (`task_done`). See
    /// [`SubscriptionOptions::joinable`](crate::SubscriptionOptions::joinable). Any receiver handle of the subscription may acknowledge any delivered message.
    pub fn done(&self) -> Result<(), DoneError> {
        self.core().done()
    }

    /// Waits up to `timeout` until every message queued on this subscription has been received and
    /// acknowledged with [`Subscription::done`](crate::Subscription::done) (or dropped). See [`SubscriptionOptions::joinable`](crate::SubscriptionOptions::joinable).
    pub fn join(&self, timeout: Duration) -> Result<(), JoinError> {
        self.core().join_until(Instant::now().checked_add(timeout))
    }

    /// This subscription's counters now.
    pub fn stats(&self) -> SubscriptionStats {
        self.core().stats()
    }

    /// Ends the subscription for every receiver; what is still queued is counted as dropped
    /// (`unsubscribed`). Equivalent to [`crate::Broker::unsubscribe`] with this id.
    pub fn unsubscribe(self) {
        self.group.broker.retire(self.id());
    }

    fn missed(&self) -> Option<DroppedByReason> {
        self.gaps.check(&self.core().counters)
    }

    /// Takes the next message if one is queued.
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
    pub fn recv(&self) -> Result<Delivery, RecvError> {
        self.recv_until(None).map_err(|_| RecvError::Closed)
    }

    /// Takes the next message, parking the thread up to `timeout` while the queue is empty.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Delivery, RecvTimeoutError> {
        self.recv_until(Instant::now().checked_add(timeout))
    }

    fn recv_until(&self, deadline: Option<Instant>) -> Result<Delivery, RecvTimeoutError> {
        self.core()
            .not_empty
            .poll_then_wait_for(deadline, || match self.try_recv() {
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

    /// Moves up to `max` queued messages into `out` without waiting; counts them delivered in one step.
    ///
    /// Like [`Subscription::try_recv`](crate::Subscription::try_recv), it takes nothing from a closed subscription: a message a late
    /// publisher slipped in after the unsubscribe is counted as dropped (`unsubscribed`) instead.
    pub fn drain_into(&self, out: &mut Vec<Message>, max: usize) -> Drained {
        let count = self.core().take_into(out, max);
        Drained {
            count,
            missed: self.missed(),
        }
    }
}
