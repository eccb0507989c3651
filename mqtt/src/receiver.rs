//! A client subscription's broker receiver: a plain subscription for QoS 0, an acknowledged one for
//! QoS 1 and 2, so that a QoS 1/2 message sent to a client is in flight in the core's books until the
//! client acknowledges it.
//!
//! # Which kind, and the QoS granted
//! A subscription granted QoS 1 or 2 is acknowledged: each message taken stays in flight in the core
//! ([`AckSubscription`]) until PUBACK (QoS 1) or PUBREC (QoS 2) settles it with its token (see
//! `crate::outgoing`). A QoS 0 subscription is plain: a message taken is delivered, as before, and pays
//! nothing for acknowledgements. A message that goes out at QoS 0 from an acknowledged subscription
//! (its publisher sent it at QoS 0, or the client lowered the subscription's QoS) is acked as it is
//! written. So a plain receiver only ever sends QoS 0: where a client asks a plain subscription for a
//! higher QoS, the connection replaces it with an acknowledged one, except a shared group's, whose
//! kind its first member chose (`crate::shared_group`); there the SUBACK grants QoS 0, which MQTT
//! allows (section 3.9.3: the server may grant a lower QoS than requested).
//!
//! # No ack deadline
//! MQTT 3.1.1 sends a message again only when a persistent session reconnects (section 4.4), with the
//! same packet id and DUP set; a client slow to acknowledge must not get a second copy under a new
//! packet id. So these subscriptions have no deadline in practice ([`NO_DEADLINE`]) and no delivery
//! limit; a message comes back for another delivery only when a shared group's member goes away
//! (`crate::shared_group`).

use std::time::Duration;

use rumqttc::QoS;
use switchyard::{
    AckDelivery, AckError, AckOptions, AckSubscription, AckToken, Broker, Delivery, Message,
    RecvError, SubscribeError, Subscription, SubscriptionId, SubscriptionOptions, TryAckRecvError,
    TryRecvError,
};

/// The ack deadline of an MQTT delivery: about 136 years, out of reach (see the module docs).
pub(crate) const NO_DEADLINE: Duration = Duration::from_secs(u32::MAX as u64);

/// The broker side of one client subscription.
#[derive(Debug)]
pub(crate) enum Receiver {
    /// QoS 0: at most once.
    Plain(Subscription),
    /// QoS 1 and 2: in flight until the client acknowledges.
    Acked(AckSubscription),
}

/// A message taken from a [`Receiver`].
#[derive(Debug)]
pub(crate) enum Received {
    Plain(Delivery),
    /// In flight until acked, or turned into a token kept with its packet id.
    Acked(AckDelivery),
}

impl Received {
    pub(crate) fn message(&self) -> &Message {
        match self {
            Received::Plain(d) => d.message(),
            Received::Acked(d) => d.message(),
        }
    }

    /// The connection is done with it without a QoS 1/2 flow: written at QoS 0, or not sent at all
    /// (a topic the client may not read). An acknowledged delivery is acked, so it counts delivered as
    /// a plain subscription counts what it hands out; dropping it instead would hand it back, and the
    /// next receive would take it again.
    pub(crate) fn done(self) {
        if let Received::Acked(delivery) = self {
            // Refused only once the subscription ended, which counted the message already.
            let _ = delivery.ack();
        }
    }
}

impl Receiver {
    /// Subscribes `filter` for a client subscription granted `qos`: acknowledged for QoS 1 and 2,
    /// with `window` places (the client's in-flight limit), plain for QoS 0. `options` carries the
    /// rest (capacity, policy, name, ready signal, retained replay).
    pub(crate) fn subscribe(
        broker: &Broker,
        filter: &str,
        qos: QoS,
        window: usize,
        options: SubscriptionOptions,
    ) -> Result<Self, SubscribeError> {
        if qos == QoS::AtMostOnce {
            return broker.subscribe_with(filter, options).map(Receiver::Plain);
        }
        let ack = AckOptions::new()
            .ack_wait(NO_DEADLINE)
            .max_in_flight(u32::try_from(window).unwrap_or(u32::MAX));
        broker
            .subscribe_acked_with(filter, options.ack(ack))
            .map(Receiver::Acked)
    }

    pub(crate) fn id(&self) -> SubscriptionId {
        match self {
            Receiver::Plain(s) => s.id(),
            Receiver::Acked(s) => s.id(),
        }
    }

    pub(crate) fn is_closed(&self) -> bool {
        match self {
            Receiver::Plain(s) => s.is_closed(),
            Receiver::Acked(s) => s.is_closed(),
        }
    }

    /// The QoS this receiver can serve a client that asked for `asked`: a plain one only QoS 0.
    pub(crate) fn granted(&self, asked: QoS) -> QoS {
        match self {
            Receiver::Plain(_) => QoS::AtMostOnce,
            Receiver::Acked(_) => asked,
        }
    }

    /// Another competing receiver of the same subscription (a shared group's next member).
    pub(crate) fn another(&self) -> Self {
        match self {
            Receiver::Plain(s) => Receiver::Plain(s.clone()),
            Receiver::Acked(s) => Receiver::Acked(s.clone()),
        }
    }

    /// Takes the next message without waiting. A full window reads as `Empty`: the receiver is
    /// visited again when an acknowledgement frees a place (see `Connection::wait_shared`).
    pub(crate) fn try_recv(&self) -> Result<Received, TryRecvError> {
        match self {
            Receiver::Plain(s) => s.try_recv().map(Received::Plain),
            Receiver::Acked(s) => match s.try_recv() {
                Ok(d) => Ok(Received::Acked(d)),
                Err(TryAckRecvError::Empty | TryAckRecvError::WindowFull) => {
                    Err(TryRecvError::Empty)
                }
                Err(TryAckRecvError::Closed) => Err(TryRecvError::Closed),
            },
        }
    }

    /// Takes the next message, waiting for one (or, acknowledged, for a place in the window).
    /// Cancel-safe, as the core's `recv_async`.
    pub(crate) async fn recv_async(&self) -> Result<Received, RecvError> {
        match self {
            Receiver::Plain(s) => s.recv_async().await.map(Received::Plain),
            Receiver::Acked(s) => s.recv_async().await.map(Received::Acked),
        }
    }

    /// Settles the attempt `token` names: the client acknowledged it.
    pub(crate) fn ack(&self, token: AckToken) -> Result<(), AckError> {
        match self {
            // Tokens come only from acknowledged receivers: a plain one never made this one.
            Receiver::Plain(_) => Err(AckError::WrongSubscription {
                token: token.subscription(),
                here: self.id(),
            }),
            Receiver::Acked(s) => s.ack(token),
        }
    }
}
