//! The delivery of an acknowledged subscription, in flight until it is settled, and the settling
//! itself: what an ack, a nack, a term or a hand-back does to the subscription's window and books.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::features::ack::error::AckError;
use crate::features::ack::in_flight::{InFlight, Settle, Settled};
use crate::features::ack::token::AckToken;
use crate::message::Message;
use crate::message::priority::Priority;
use crate::message::reason::DroppedByReason;

use super::core::SubscriptionCore;
use super::receive::Delivery;

/// One receiver's handle on its subscription, which each of its deliveries holds until it is settled.
/// A delivery holding the subscription's own `Arc` raised and lowered one count that every competing
/// receiver (and the line a publish reads beside it) shares; this count is the receiver's alone.
#[derive(Debug)]
pub(super) struct ReceiverCore {
    pub(super) core: Arc<SubscriptionCore>,
}

/// A message handed out by an [`AckSubscription`](crate::AckSubscription), in flight until it is
/// settled: acked, nacked (delivered again), termed (dead letter), or handed back.
///
/// Dropping it unsettled hands the message back at once for another receiver, so a receiver that
/// panics mid-message loses nothing and nobody waits for its deadline. To settle it later by token
/// instead (an MQTT connection waiting for a PUBACK), keep [`AckDelivery::into_token`].
pub struct AckDelivery {
    pub(super) delivery: Delivery,
    pub(super) token: AckToken,
    pub(super) deliveries: u32,
    /// The receiver's own handle on the subscription, `None` once settled or turned into a token.
    pub(super) core: Option<Arc<ReceiverCore>>,
}

impl fmt::Debug for AckDelivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AckDelivery")
            .field("topic", &self.delivery.topic())
            .field("token", &self.token)
            .field("deliveries", &self.deliveries)
            .finish_non_exhaustive()
    }
}

impl Drop for AckDelivery {
    fn drop(&mut self) {
        if let Some(home) = self.core.take() {
            home.core.hand_back_one(self.token);
        }
    }
}

impl AckDelivery {
    /// The message.
    pub fn message(&self) -> &Message {
        self.delivery.message()
    }

    /// The topic the message was published on.
    pub fn topic(&self) -> &str {
        self.delivery.topic()
    }

    /// The payload.
    pub fn payload(&self) -> &bytes::Bytes {
        self.delivery.payload()
    }

    /// The message's priority.
    pub fn priority(&self) -> Priority {
        self.delivery.priority()
    }

    /// Drops of this subscription since this receiver's previous receive, as
    /// [`Delivery::missed`](crate::Delivery::missed).
    pub fn missed(&self) -> Option<DroppedByReason> {
        self.delivery.missed()
    }

    /// This attempt's token.
    pub fn token(&self) -> AckToken {
        self.token
    }

    /// How many times this message has been delivered, this time included: 1 the first time.
    ///
    /// ```
    /// use switchyard::{AckOptions, Broker};
    ///
    /// let broker = Broker::new();
    /// let jobs = broker.subscribe_acked("jobs", AckOptions::new())?;
    /// broker.publish("jobs", "resize")?;
    ///
    /// let first = jobs.try_recv()?;
    /// assert_eq!((first.deliveries(), first.redelivered()), (1, false));
    /// first.nack()?; // deliver it again
    /// let second = jobs.try_recv()?;
    /// assert_eq!((second.deliveries(), second.redelivered()), (2, true));
    /// second.ack()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn deliveries(&self) -> u32 {
        self.deliveries
    }

    /// Whether this message was delivered before (to this receiver or another).
    pub fn redelivered(&self) -> bool {
        self.deliveries > 1
    }

    /// Acknowledges it: done, never delivered again. Counts it delivered.
    ///
    /// ```
    /// use switchyard::{AckOptions, Broker};
    ///
    /// let broker = Broker::new();
    /// let jobs = broker.subscribe_acked("jobs", AckOptions::new())?;
    /// broker.publish("jobs", "resize")?;
    /// let job = jobs.try_recv()?;
    /// assert_eq!(jobs.stats().in_flight, 1);
    /// job.ack()?;
    /// let s = jobs.stats();
    /// assert_eq!((s.in_flight, s.delivered), (0, 1));
    /// assert!(s.balances()); // matched = delivered + dropped + depth + in_flight
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn ack(self) -> Result<(), AckError> {
        self.settle(Settle::Ack)
    }

    /// Hands it back for another delivery at once (to whichever receiver takes next), unless this was
    /// its last allowed delivery: then it goes to the dead letters (`max_deliveries`).
    pub fn nack(self) -> Result<(), AckError> {
        self.settle(Settle::Nack(Duration::ZERO))
    }

    /// Hands it back for another delivery after `delay` (it keeps its place in the window meanwhile).
    ///
    /// ```
    /// use std::time::Duration;
    /// use switchyard::{AckOptions, Broker, TryAckRecvError};
    ///
    /// let broker = Broker::new();
    /// let jobs = broker.subscribe_acked("jobs", AckOptions::new())?;
    /// broker.publish("jobs", "flaky")?;
    /// jobs.try_recv()?.nack_after(Duration::from_millis(20))?;
    /// assert_eq!(jobs.try_recv().unwrap_err(), TryAckRecvError::Empty); // not yet
    /// let again = jobs.recv_timeout(Duration::from_secs(5))?;
    /// assert_eq!(again.deliveries(), 2);
    /// again.ack()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn nack_after(self, delay: Duration) -> Result<(), AckError> {
        self.settle(Settle::Nack(delay))
    }

    /// Refuses it for good: it goes to the dead letters (if the broker keeps them) and is counted
    /// dropped as `rejected`. For poison messages that no retry will fix.
    ///
    /// ```
    /// use switchyard::{AckOptions, Broker, BrokerOptions, DropReason};
    ///
    /// let broker = Broker::with_options(BrokerOptions::new().dead_letters(10));
    /// let jobs = broker.subscribe_acked("jobs", AckOptions::new())?;
    /// broker.publish("jobs", "not json")?;
    /// jobs.try_recv()?.term()?;
    ///
    /// let letter = broker.dead_letters().unwrap().try_recv().expect("a dead letter");
    /// assert_eq!(letter.reason(), DropReason::Rejected);
    /// assert_eq!(jobs.stats().dropped_by_reason.rejected, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn term(self) -> Result<(), AckError> {
        self.settle(Settle::Term)
    }

    /// Still working on it: restarts its ack deadline.
    pub fn in_progress(&self) -> Result<(), AckError> {
        match &self.core {
            Some(home) => home.core.settle(self.token, Settle::InProgress),
            None => Err(AckError::Closed),
        }
    }

    /// Detaches the token: the message stays in flight for this receiver until it is settled with the
    /// token on the subscription ([`AckSubscription::ack`](crate::AckSubscription::ack) and friends),
    /// its deadline passes, or this receiver's handle is dropped. Dropping the token does nothing.
    ///
    /// ```
    /// use switchyard::{AckOptions, Broker};
    ///
    /// let broker = Broker::new();
    /// let out = broker.subscribe_acked("out/#", AckOptions::new())?;
    /// broker.publish("out/a", "1")?;
    /// let token = out.try_recv()?.into_token(); // e.g. kept until a PUBACK arrives
    /// assert_eq!(out.stats().in_flight, 1);
    /// out.ack(token)?;
    /// assert!(out.ack(token).is_err()); // acked twice: refused and counted
    /// assert_eq!(out.stats().ack.unwrap().refused.ended, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn into_token(mut self) -> AckToken {
        self.core = None;
        self.token
    }

    #[inline]
    fn settle(mut self, how: Settle) -> Result<(), AckError> {
        match self.core.take() {
            Some(home) => home.core.settle(self.token, how),
            None => Err(AckError::Closed),
        }
    }
}

/// How many tokens of a batch were settled, and the first refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AckBatch {
    /// Tokens settled.
    pub acked: usize,
    /// Tokens refused (each counted in stats).
    pub refused: usize,
    /// The first refusal, if any.
    pub first_error: Option<AckError>,
}

impl SubscriptionCore {
    pub(super) fn acked(&self) -> &InFlight {
        self.in_flight()
            .expect("an AckSubscription is only made on an acknowledged subscription")
    }

    /// Settles one attempt, counting what leaves the table.
    #[inline]
    pub(super) fn settle(&self, token: AckToken, how: Settle) -> Result<(), AckError> {
        self.settle_waking(token, how).map(drop)
    }

    /// [`SubscriptionCore::settle`], saying whether it saw a receiver waiting for what the settle
    /// made available (for the loom model of the window's handshake).
    #[inline]
    pub(super) fn settle_waking(&self, token: AckToken, how: Settle) -> Result<bool, AckError> {
        let in_flight = self.acked();
        if token.subscription != self.id {
            return Err(in_flight.refuse(AckError::WrongSubscription {
                token: token.subscription,
                here: self.id,
            }));
        }
        if self.is_closed() {
            return Err(in_flight.refuse(AckError::Closed));
        }
        // The clock is read only where a deadline is set; receives watch the deadlines.
        let now = match how {
            Settle::InProgress | Settle::Nack(_) => in_flight.now(),
            Settle::Ack | Settle::Term => 0,
        };
        let settled = in_flight.settle(token.place, token.attempt, how, now)?;
        let woke = match (&settled, how) {
            // A place freed: for a receiver stalled on the full window.
            (Settled::Acked | Settled::Dead(..), _) => in_flight.window().notify_one(),
            // Back for another delivery, now or later (a parked receiver then looks again when it
            // should wake): for any receiver.
            (Settled::Kept, Settle::Nack(_)) => self.wake_for_redelivery(1),
            (Settled::Kept, _) => false,
        };
        self.count_settled(settled);
        Ok(woke)
    }

    /// `n` messages wait for another delivery (or a nack's delay moved the next due time): wakes
    /// receivers waiting for messages and receivers stalled on the window alike, since a redelivery
    /// needs no new place. Says whether anyone was waiting.
    pub(super) fn wake_for_redelivery(&self, n: usize) -> bool {
        let waiting = self.not_empty.notify_one();
        if n > 1 {
            self.not_empty.notify(n - 1);
        }
        let stalled = self.acked().window().notify_one();
        if n > 1 {
            self.acked().window().notify(n - 1);
        }
        waiting || stalled
    }

    #[inline]
    fn count_settled(&self, settled: Settled) {
        match settled {
            Settled::Acked => self.counters.add_delivered(1),
            Settled::Kept => {}
            Settled::Dead(message, reason) => self.drop_message(&message, reason),
        }
    }

    pub(super) fn hand_back_one(&self, token: AckToken) {
        if self
            .acked()
            .hand_back_one(token.place, token.attempt, |m, reason| {
                self.drop_message(&m, reason)
            })
        {
            self.wake_for_redelivery(1);
        }
    }
}
