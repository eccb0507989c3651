//! Acknowledged subscriptions (at least once): the receiver handle, its receives and its waits. The
//! delivery it hands out, and settling, are in `ack_delivery.rs`.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::features::ack::error::AckError;
use crate::features::ack::in_flight::{Attempt, InFlight, Settle};
use crate::features::ack::token::AckToken;
use crate::id::SubscriptionId;
use crate::message::reason::DroppedByReason;
use crate::queue::policy::OverflowPolicy;
use crate::queue::ready::{AlreadyAttached, ReadySignal};
use crate::stats::counters::GapTracker;
use crate::stats::features::AckStats;
use crate::stats::snapshot::SubscriptionStats;
use crate::sync::waiters::Waiters;
use crate::sync::{AtomicBool, Ordering};
use crate::topic::Filter;

use super::ack_delivery::{AckBatch, AckDelivery, ReceiverCore};
use super::core::SubscriptionCore;
use super::error::{RecvError, RecvTimeoutError, TryAckRecvError};
use super::receive::{Delivery, ReceiverGroup, Retire};

/// A receiver of an acknowledged subscription (at least once). Made by
/// [`Broker::subscribe_acked`](crate::Broker::subscribe_acked).
///
/// Each message it hands out ([`AckDelivery`]) stays in flight until it is acked; one that is nacked,
/// passes its deadline, or whose receiver goes away is delivered again, with a new token and a
/// delivery count one higher, and after [`AckOptions::max_deliveries`](crate::AckOptions::max_deliveries)
/// it goes to the dead letters. Clones are competing receivers of the same subscription; dropping a
/// clone hands back the messages it held at once. Dropping the last one unsubscribes (unless durable),
/// and what is still queued or in flight is counted dropped (`unsubscribed`). In-flight messages are
/// not saved across a restart: durable state keeps the subscription's settings only.
///
/// ```
/// use std::time::Duration;
/// use switchyard::{AckOptions, Broker};
///
/// let broker = Broker::new();
/// let jobs = broker.subscribe_acked("jobs", AckOptions::new().ack_wait(Duration::from_secs(10)))?;
/// broker.publish("jobs", "wash")?;
///
/// let worker = jobs.clone();
/// let failed = std::thread::spawn(move || {
///     let _job = worker.recv().unwrap();
///     panic!("the dryer broke"); // the unwinding drops the delivery: handed back at once
/// })
/// .join();
/// assert!(failed.is_err());
///
/// let job = jobs.recv_timeout(Duration::from_secs(5))?;
/// assert_eq!((&job.payload()[..], job.deliveries()), (&b"wash"[..], 2));
/// job.ack()?;
/// assert!(jobs.stats().balances());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct AckSubscription {
    group: Arc<ReceiverGroup>,
    receiver: u64,
    gaps: GapTracker,
    /// Whether this receiver's last `try_recv` found the queue empty: then its next one is likely a
    /// poll of an empty queue too (see `SubscriptionCore::take_acked`). A hint, written only when
    /// it changes.
    found_empty: AtomicBool,
    /// What this receiver's deliveries hold (see [`ReceiverCore`]).
    home: Arc<ReceiverCore>,
}

impl fmt::Debug for AckSubscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AckSubscription")
            .field("id", &self.id())
            .field("name", &self.name())
            .field("filter", &self.filter().as_str())
            .finish()
    }
}

impl Clone for AckSubscription {
    fn clone(&self) -> Self {
        Self::new_receiver(self.group.clone())
    }
}

impl Drop for AckSubscription {
    fn drop(&mut self) {
        let core = &self.group.core;
        let handed = core
            .acked()
            .hand_back(self.receiver, |m, reason| core.drop_message(&m, reason));
        if handed > 0 {
            core.wake_for_redelivery(handed);
        }
        core.receivers.fetch_sub(1, Ordering::Relaxed);
    }
}

impl AckSubscription {
    pub(crate) fn new(core: Arc<SubscriptionCore>, broker: Arc<dyn Retire>) -> Self {
        Self::new_receiver(ReceiverGroup::new(core, broker))
    }

    fn new_receiver(group: Arc<ReceiverGroup>) -> Self {
        group.core.receivers.fetch_add(1, Ordering::Relaxed);
        Self {
            receiver: group.core.acked().new_receiver(),
            gaps: GapTracker::new(&group.core.counters),
            found_empty: AtomicBool::new(false),
            home: Arc::new(ReceiverCore {
                core: group.core.clone(),
            }),
            group,
        }
    }

    fn core(&self) -> &Arc<SubscriptionCore> {
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

    /// Queue capacity in messages (messages in flight are not in the queue).
    pub fn capacity(&self) -> usize {
        self.core().capacity()
    }

    /// Messages queued now, not counting those in flight.
    pub fn len(&self) -> usize {
        self.core().len()
    }

    /// Whether nothing is queued now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Messages in flight now: handed out and not yet settled, or waiting to be handed out again.
    pub fn in_flight(&self) -> u64 {
        self.core().acked().in_flight()
    }

    /// The overflow policy of the queue in front of the window.
    pub fn policy(&self) -> OverflowPolicy {
        self.core().policy()
    }

    /// Replaces the overflow policy while the subscription runs (see
    /// [`Subscription::set_policy`](crate::Subscription::set_policy)).
    pub fn set_policy(&self, policy: OverflowPolicy) {
        self.core().set_policy(policy);
    }

    /// Whether the subscription has been unsubscribed.
    pub fn is_closed(&self) -> bool {
        self.core().is_closed()
    }

    /// This subscription's counters now; [`SubscriptionStats::ack`] holds the acknowledged path's.
    pub fn stats(&self) -> SubscriptionStats {
        self.core().stats()
    }

    /// The acknowledged path's settings and counters now.
    pub fn ack_stats(&self) -> AckStats {
        let core = self.core();
        core.acked().stats(core.counters.delivered())
    }

    /// Ends the subscription for every receiver; what is queued or in flight is counted dropped
    /// (`unsubscribed`), and later acks are refused ([`AckError::Closed`]).
    pub fn unsubscribe(self) {
        self.group.unsubscribe();
    }

    /// Takes the next message if one is due or queued and the window has room.
    ///
    /// ```
    /// use switchyard::{AckOptions, Broker, TryAckRecvError};
    ///
    /// let broker = Broker::new();
    /// let jobs = broker.subscribe_acked("jobs", AckOptions::new().max_in_flight(1))?;
    /// broker.publish("jobs", "a")?;
    /// broker.publish("jobs", "b")?;
    /// let a = jobs.try_recv()?;
    /// assert_eq!(jobs.try_recv().unwrap_err(), TryAckRecvError::WindowFull); // "a" is not settled
    /// a.ack()?;
    /// assert_eq!(&jobs.try_recv()?.payload()[..], b"b");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_recv(&self) -> Result<AckDelivery, TryAckRecvError> {
        let got = self.take(self.found_empty.load(Ordering::Relaxed));
        self.note_found_empty(matches!(got, Err(TryAckRecvError::Empty)));
        got
    }

    /// Keeps the `found_empty` hint, written only when it changes.
    #[inline]
    fn note_found_empty(&self, empty: bool) {
        if empty != self.found_empty.load(Ordering::Relaxed) {
            self.found_empty.store(empty, Ordering::Relaxed);
        }
    }

    /// Takes up to `max` messages without waiting (redeliveries first, then queued messages while the
    /// window has room) and appends them to `out`, each in flight until it is settled, as
    /// [`AckSubscription::try_recv`]'s are: the pull of a batch (JetStream's `fetch`, a RabbitMQ
    /// consumer's prefetch). Cheaper per message than as many `try_recv`s: the batch reads the
    /// clock, looks at the deadlines and wakes `Block` publishers once. Drops since this receiver's
    /// previous receive are on the first delivery's [`AckDelivery::missed`].
    ///
    /// Returns how many it took, at least one; or, when it took none, why: nothing due or queued
    /// (`Empty`), the window is full (`WindowFull`, counted in the stats as `window_full`), or the
    /// subscription ended (`Closed`).
    ///
    /// ```
    /// use switchyard::{AckOptions, Broker, TryAckRecvError};
    ///
    /// let broker = Broker::new();
    /// let jobs = broker.subscribe_acked("jobs", AckOptions::new().max_in_flight(3))?;
    /// for i in 0..5 {
    ///     broker.publish("jobs", i.to_string())?;
    /// }
    ///
    /// let mut batch = Vec::new();
    /// assert_eq!(jobs.drain_into(&mut batch, 10)?, 3); // the window holds 3
    /// assert_eq!(jobs.drain_into(&mut batch, 10), Err(TryAckRecvError::WindowFull));
    /// let tokens: Vec<_> = batch.drain(..).map(|d| d.into_token()).collect();
    /// assert_eq!(jobs.ack_batch(&tokens).acked, 3);
    /// assert_eq!(jobs.drain_into(&mut batch, 10)?, 2);
    /// assert_eq!(&batch[0].payload()[..], b"3"); // in order
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn drain_into(
        &self,
        out: &mut Vec<AckDelivery>,
        max: usize,
    ) -> Result<usize, TryAckRecvError> {
        if max == 0 {
            return Ok(0);
        }
        let core = self.core();
        let mut first = true;
        let (n, stopped) = core.take_acked_into(core.acked(), self.receiver, max, |attempt| {
            // Drops since this receiver's previous receive go with the batch's first delivery.
            let missed = if std::mem::take(&mut first) {
                self.gaps.check(&core.counters).map(Box::new)
            } else {
                None
            };
            out.push(self.delivery(attempt, missed));
        });
        self.note_found_empty(n == 0 && stopped == Some(TryAckRecvError::Empty));
        match (n, stopped) {
            // `max` is at least one, so taking none has a reason.
            (0, Some(why)) => Err(why),
            (n, _) => Ok(n),
        }
    }

    /// [`AckSubscription::try_recv`]; `polling` when this receiver found nothing a moment ago and is
    /// looking again (see `SubscriptionCore::take_acked`).
    #[inline]
    fn take(&self, polling: bool) -> Result<AckDelivery, TryAckRecvError> {
        let core = self.core();
        core.take_acked(core.acked(), self.receiver, polling)
            .into_result()
            .map(|attempt| self.deliver(attempt))
    }

    #[inline]
    fn deliver(&self, attempt: Attempt) -> AckDelivery {
        let missed = self.gaps.check(&self.core().counters).map(Box::new);
        self.delivery(attempt, missed)
    }

    #[inline]
    fn delivery(&self, attempt: Attempt, missed: Option<Box<DroppedByReason>>) -> AckDelivery {
        let core = self.core();
        AckDelivery {
            delivery: Delivery {
                message: attempt.message,
                missed,
            },
            token: AckToken {
                subscription: core.id,
                place: attempt.place,
                attempt: attempt.attempt,
            },
            deliveries: attempt.deliveries,
            core: Some(self.home.clone()),
        }
    }

    /// Takes the next message, parking the thread while there is none (or the window is full).
    pub fn recv(&self) -> Result<AckDelivery, RecvError> {
        if let Some(got) = self.first_look() {
            return got.map_err(|_| RecvError::Closed);
        }
        self.recv_until(None).map_err(|_| RecvError::Closed)
    }

    /// Takes the next message, parking the thread up to `timeout` while there is none (or the window
    /// is full). A parked receiver also wakes when a deadline of a message in flight passes, to deliver
    /// it again.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<AckDelivery, RecvTimeoutError> {
        if let Some(got) = self.first_look() {
            return got;
        }
        self.recv_until(Instant::now().checked_add(timeout))
    }

    /// One `try_recv` before any clock is read: under load the message is there, and the deadline
    /// and the next due time (`Instant::now`, slow on some virtual machines) are not needed.
    fn first_look(&self) -> Option<Result<AckDelivery, RecvTimeoutError>> {
        match self.try_recv() {
            Ok(d) => Some(Ok(d)),
            Err(TryAckRecvError::Closed) => Some(Err(RecvTimeoutError::Closed)),
            Err(TryAckRecvError::Empty | TryAckRecvError::WindowFull) => None,
        }
    }

    /// A look for a waiting receiver: `Some` ends the wait on the waiters it is parked on, with a
    /// delivery, the end, or word that the reason to wait changed (from an empty queue to a full
    /// window or back), so the receiver moves to the other waiters.
    fn look(&self, stalled: &mut Stalled<'_>) -> Option<Look> {
        match self.take(true) {
            Ok(d) => Some(Look::Got(d)),
            Err(TryAckRecvError::Closed) => Some(Look::Closed),
            Err(TryAckRecvError::WindowFull) if stalled.counted => None,
            Err(TryAckRecvError::Empty) if !stalled.counted => None,
            Err(TryAckRecvError::WindowFull) => {
                stalled.set(true);
                Some(Look::Moved)
            }
            Err(TryAckRecvError::Empty) => {
                stalled.set(false);
                Some(Look::Moved)
            }
        }
    }

    /// Where a receiver in this state parks: on the window's waiters while stalled on a full window
    /// (an ack frees a place), else on the subscription's (a publish brings a message).
    fn waiters(&self, stalled: &Stalled<'_>) -> &Waiters {
        if stalled.counted {
            self.core().acked().window()
        } else {
            &self.core().not_empty
        }
    }

    fn recv_until(&self, deadline: Option<Instant>) -> Result<AckDelivery, RecvTimeoutError> {
        let mut stalled = Stalled::new(self.core().acked());
        loop {
            // Wake for the next ack deadline too: nobody else watches the clock.
            let due = self.core().acked().next_due();
            let wake = match (deadline, due) {
                (Some(d), Some(n)) => Some(d.min(n)),
                (d, n) => d.or(n),
            };
            let got = self
                .waiters(&stalled)
                .poll_then_wait_for(wake.into(), || self.look(&mut stalled));
            match got {
                Some(Look::Got(d)) => return Ok(d),
                Some(Look::Closed) => return Err(RecvTimeoutError::Closed),
                Some(Look::Moved) => continue,
                None if deadline.is_some_and(|d| Instant::now() >= d) => {
                    return Err(RecvTimeoutError::Timeout);
                }
                None => continue,
            }
        }
    }

    /// Takes the next message, waiting asynchronously while there is none (or the window is full).
    /// Cancel-safe, as [`Subscription::recv_async`](crate::Subscription::recv_async).
    ///
    /// The core has no timer: a receiver parked here notices an expired deadline when it is next woken
    /// (a publish, a nack, a receiver going away, or while it waits on a full window an ack). To
    /// redeliver on time while all receivers are parked, wrap it in your runtime's timeout until
    /// [`AckSubscription::next_due`].
    pub async fn recv_async(&self) -> Result<AckDelivery, RecvError> {
        let mut stalled = Stalled::new(self.core().acked());
        loop {
            let waiters = self.waiters(&stalled);
            match waiters.wait_for_async(|| self.look(&mut stalled)).await {
                Look::Got(d) => return Ok(d),
                Look::Closed => return Err(RecvError::Closed),
                Look::Moved => continue,
            }
        }
    }

    /// Attaches a [`ReadySignal`] to a subscription made without one, handing it out as `key`, as
    /// [`Subscription::attach_ready_signal`](crate::Subscription::attach_ready_signal) does: for a
    /// pooled consumer that serves acknowledged subscriptions with the rest (an MQTT connection).
    /// A message handed back or due again is found by the next `try_recv` of any receiver; the signal
    /// tells of new messages.
    ///
    /// ```
    /// use std::time::Duration;
    /// use switchyard::{AckOptions, Broker, ReadySignal};
    ///
    /// let broker = Broker::new();
    /// let jobs = broker.subscribe_acked("jobs", AckOptions::new())?;
    /// let signal = ReadySignal::new();
    /// jobs.attach_ready_signal(&signal, 7).unwrap();
    /// broker.publish("jobs", "a")?;
    /// let mut ready = Vec::new();
    /// signal.wait_ready(&mut ready, Duration::from_secs(1));
    /// assert_eq!(ready, [7]);
    /// jobs.try_recv()?.ack()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn attach_ready_signal(
        &self,
        signal: &Arc<ReadySignal>,
        key: u64,
    ) -> Result<(), AlreadyAttached> {
        self.core().attach_ready_signal(signal, key)
    }

    /// When the next ack deadline (or nack delay) of a message in flight falls due, if any.
    pub fn next_due(&self) -> Option<Instant> {
        self.core().acked().next_due()
    }

    /// Acknowledges the attempt `token` names (see [`AckDelivery::into_token`]).
    pub fn ack(&self, token: AckToken) -> Result<(), AckError> {
        self.core().settle(token, Settle::Ack)
    }

    /// Acknowledges a batch of attempts: each token is checked on its own (a refusal does not stop
    /// the rest) and receivers waiting on the window are woken once for the batch.
    ///
    /// ```
    /// use switchyard::{AckOptions, Broker};
    ///
    /// let broker = Broker::new();
    /// let ticks = broker.subscribe_acked("ticks", AckOptions::new())?;
    /// for i in 0..10 {
    ///     broker.publish("ticks", i.to_string())?;
    /// }
    /// let tokens: Vec<_> = (0..10).map(|_| ticks.try_recv().unwrap().into_token()).collect();
    /// let batch = ticks.ack_batch(&tokens);
    /// assert_eq!((batch.acked, batch.refused), (10, 0));
    /// assert_eq!(ticks.ack_batch(&tokens[..2]).refused, 2); // already acked
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn ack_batch(&self, tokens: &[AckToken]) -> AckBatch {
        let core = self.core();
        let in_flight = core.acked();
        let mut batch = AckBatch {
            acked: 0,
            refused: 0,
            first_error: None,
        };
        for &token in tokens {
            let settled = if token.subscription != core.id {
                Err(in_flight.refuse(AckError::WrongSubscription {
                    token: token.subscription,
                    here: core.id,
                }))
            } else if core.is_closed() {
                Err(in_flight.refuse(AckError::Closed))
            } else {
                in_flight.settle(token.place, token.attempt, Settle::Ack, 0)
            };
            match settled {
                Ok(_) => batch.acked += 1,
                Err(e) => {
                    batch.refused += 1;
                    batch.first_error.get_or_insert(e);
                }
            }
        }
        core.counters.add_delivered(batch.acked as u64);
        if batch.acked > 0 {
            in_flight.window().notify(batch.acked);
        }
        batch
    }

    /// Hands the attempt `token` names back for another delivery at once.
    pub fn nack(&self, token: AckToken) -> Result<(), AckError> {
        self.core().settle(token, Settle::Nack(Duration::ZERO))
    }

    /// Hands the attempt `token` names back for another delivery after `delay`.
    pub fn nack_after(&self, token: AckToken, delay: Duration) -> Result<(), AckError> {
        self.core().settle(token, Settle::Nack(delay))
    }

    /// Refuses the message `token` names for good (dead letter, `rejected`).
    pub fn term(&self, token: AckToken) -> Result<(), AckError> {
        self.core().settle(token, Settle::Term)
    }

    /// Restarts the ack deadline of the attempt `token` names.
    pub fn in_progress(&self, token: AckToken) -> Result<(), AckError> {
        self.core().settle(token, Settle::InProgress)
    }

    /// Delivers again now what passed its deadline, without waiting for a receive to notice. For
    /// async receivers, with a timer at [`AckSubscription::next_due`].
    pub fn redeliver_due(&self) {
        let core = self.core();
        let in_flight = core.acked();
        in_flight.sweep_if_due(in_flight.now(), |m, reason| core.drop_message(&m, reason));
        if in_flight.has_redeliveries() {
            core.wake_for_redelivery(1);
        }
    }
}

/// What a waiting receiver's look found.
enum Look {
    Got(AckDelivery),
    Closed,
    /// The reason to wait changed: wait on the other waiters.
    Moved,
}

/// This receiver counts in the `stalled_receivers` gauge while its last look found the window full.
struct Stalled<'a> {
    in_flight: &'a InFlight,
    counted: bool,
}

impl<'a> Stalled<'a> {
    fn new(in_flight: &'a InFlight) -> Self {
        Self {
            in_flight,
            counted: false,
        }
    }

    fn set(&mut self, stalled: bool) {
        if stalled != self.counted {
            self.in_flight.set_stalled(stalled);
            self.counted = stalled;
        }
    }
}

impl Drop for Stalled<'_> {
    fn drop(&mut self) {
        self.set(false);
    }
}

#[cfg(test)]
mod tests {
    use crate::{AckOptions, Broker, TryAckRecvError};

    #[test]
    fn a_receive_that_finds_nothing_makes_no_in_flight_table() {
        let broker = Broker::new();
        let sub = broker.subscribe_acked("jobs", AckOptions::new()).unwrap();
        assert_eq!(sub.try_recv().unwrap_err(), TryAckRecvError::Empty);
        assert!(
            !sub.core().acked().is_made(),
            "a receive on an empty subscription made the in-flight table"
        );
        broker.publish("jobs", "a").unwrap();
        sub.try_recv().unwrap().ack().unwrap();
        assert!(sub.core().acked().is_made(), "the first message made it");
        assert_eq!(sub.try_recv().unwrap_err(), TryAckRecvError::Empty);
        assert!(sub.stats().balances());
    }

    /// A receive after one that found nothing looks at the queue before it reserves a place (the
    /// `found_empty` hint): it still takes what came meanwhile, still says when the window is full,
    /// and an empty look leaves the window as it was.
    #[test]
    fn a_receive_after_an_empty_one_takes_what_came_and_reports_a_full_window() {
        let broker = Broker::new();
        let sub = broker
            .subscribe_acked("jobs", AckOptions::new().max_in_flight(1))
            .unwrap();
        broker.publish("jobs", "a").unwrap();
        let a = sub.try_recv().unwrap();
        for _ in 0..3 {
            assert_eq!(sub.try_recv().unwrap_err(), TryAckRecvError::Empty);
            assert_eq!(sub.in_flight(), 1, "an empty look changed the window");
        }
        broker.publish("jobs", "b").unwrap();
        assert_eq!(sub.try_recv().unwrap_err(), TryAckRecvError::WindowFull);
        a.ack().unwrap();
        let b = sub.try_recv().unwrap();
        assert_eq!(&b.payload()[..], b"b");
        assert_eq!(sub.try_recv().unwrap_err(), TryAckRecvError::Empty);
        broker.publish("jobs", "c").unwrap();
        let c = sub.try_recv();
        assert_eq!(
            c.unwrap_err(),
            TryAckRecvError::WindowFull,
            "b is in flight"
        );
        b.ack().unwrap();
        sub.try_recv().unwrap().ack().unwrap();
        assert!(sub.stats().balances());
    }
}
