//! QoS 1 and 2 messages sent to a client and not yet acknowledged: the packet ids, where each flow
//! stands, and the token that settles each message in the core.
//!
//! # What is kept here, and what in the core
//! The message itself is in flight in its acknowledged broker subscription (`crate::receiver`): that
//! is where the books count it (`in_flight`), where the window of the subscription is, and where a
//! shared group's departing member hands it back. What MQTT adds is kept here, once: the packet id,
//! the state of the flow (waiting for PUBACK, PUBREC or PUBCOMP), the send order (a reconnecting
//! persistent session gets them again in that order, MQTT 3.1.1 section 4.6), and the token that ends
//! the message's flight.
//!
//! # When the core hears of it
//! PUBACK settles a QoS 1 message. A QoS 2 message is settled at PUBREC: from then on the client has it
//! and the sender must not send the PUBLISH again (section 4.3.3), so it is delivered; what is left,
//! PUBREL and PUBCOMP, only frees the packet id, and the entry stays here until then, counting in the
//! client's window. A message that went out at QoS 0 is acked as it is written and never comes here.

use std::collections::VecDeque;

use rumqttc::{Packet, PubRel, Publish, QoS};
use switchyard::{AckToken, Message, SubscriptionId};

/// Where a QoS 1/2 message sent to the client is in its acknowledgement flow: the packet it waits for.
// Named after the MQTT packets they wait for, which all begin with PUB.
#[allow(clippy::enum_variant_names)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OutgoingState {
    /// QoS 1, PUBLISH sent: waiting for PUBACK.
    PubAck,
    /// QoS 2, PUBLISH sent: waiting for PUBREC.
    PubRec,
    /// QoS 2, PUBREL sent: waiting for PUBCOMP.
    PubComp,
}

/// A message sent to the client and not yet acknowledged.
#[derive(Debug)]
pub(crate) struct InFlight {
    pkid: u16,
    qos: QoS,
    message: Message,
    state: OutgoingState,
    /// The client subscription it came from, and its attempt there; `None` once settled (a QoS 2
    /// message past PUBREC).
    settle: Option<(SubscriptionId, AckToken)>,
}

/// What an acknowledgement from the client did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Acknowledged {
    /// The message's flight ended: settle its attempt in the subscription it came from.
    Settle(SubscriptionId, AckToken),
    /// The flow moved on or ended, with nothing (more) to settle (PUBCOMP).
    Done,
    /// No message with that packet id waits for that acknowledgement: a stale or duplicate one.
    Unknown,
}

/// Messages sent to the client and not yet acknowledged, in the order they were sent (so a reconnect
/// resends them in order, MQTT 3.1.1 section 4.6).
#[derive(Debug, Default)]
pub(crate) struct Outgoing {
    pending: VecDeque<InFlight>,
    last_pkid: u16,
}

impl Outgoing {
    /// Packet ids in use: the client's window.
    pub(crate) fn len(&self) -> usize {
        self.pending.len()
    }

    /// Gives `message`, going out at `qos` (1 or 2), a free packet id and records it until the client
    /// acknowledges it; `token` settles it in subscription `from`. Returns the PUBLISH to write.
    pub(crate) fn send(
        &mut self,
        message: Message,
        qos: QoS,
        from: SubscriptionId,
        token: AckToken,
    ) -> Publish {
        loop {
            self.last_pkid = self.last_pkid.checked_add(1).unwrap_or(1);
            let id = self.last_pkid;
            if !self.pending.iter().any(|p| p.pkid == id) {
                break;
            }
        }
        let state = if qos == QoS::ExactlyOnce {
            OutgoingState::PubRec
        } else {
            OutgoingState::PubAck
        };
        let publish = publish_packet(&message, qos, self.last_pkid, false);
        self.pending.push_back(InFlight {
            pkid: self.last_pkid,
            qos,
            message,
            state,
            settle: Some((from, token)),
        });
        publish
    }

    /// Applies the client's acknowledgement `acked` of `pkid`: PUBACK and PUBCOMP end the flow, PUBREC
    /// moves it on to PUBREL (see the module docs for which of them settle the message).
    pub(crate) fn acknowledge(&mut self, pkid: u16, acked: OutgoingState) -> Acknowledged {
        let Some(index) = self
            .pending
            .iter()
            .position(|p| p.pkid == pkid && p.state == acked)
        else {
            return Acknowledged::Unknown;
        };
        let settle = if acked == OutgoingState::PubRec {
            let entry = &mut self.pending[index];
            entry.state = OutgoingState::PubComp;
            entry.settle.take()
        } else {
            self.pending.remove(index).and_then(|entry| entry.settle)
        };
        match settle {
            Some((from, token)) => Acknowledged::Settle(from, token),
            None => Acknowledged::Done,
        }
    }

    /// What to send again when a persistent session reconnects, in the order first sent: PUBLISH with
    /// DUP set for messages not yet received, PUBREL for QoS 2 messages received and not completed.
    pub(crate) fn resend(&self) -> impl Iterator<Item = Packet> + '_ {
        self.pending.iter().map(|entry| match entry.state {
            OutgoingState::PubAck | OutgoingState::PubRec => {
                Packet::Publish(publish_packet(&entry.message, entry.qos, entry.pkid, true))
            }
            OutgoingState::PubComp => Packet::PubRel(PubRel::new(entry.pkid)),
        })
    }

    /// Forgets the unsettled messages that came from subscriptions `handed_back` says: their
    /// attempts were handed back to the core (a shared group's member left), so they go to another
    /// receiver and are not sent here again. A later acknowledgement of their packet ids is `Unknown`.
    pub(crate) fn forget_handed_back(&mut self, handed_back: impl Fn(SubscriptionId) -> bool) {
        self.pending
            .retain(|entry| !entry.settle.is_some_and(|(from, _)| handed_back(from)));
    }
}

/// The PUBLISH that carries `message` at `qos` with packet id `pkid` (ignored at QoS 0), DUP as given,
/// RETAIN set only on a retained message replayed to a new subscription (section 3.3.1.3).
pub(crate) fn publish_packet(message: &Message, qos: QoS, pkid: u16, dup: bool) -> Publish {
    let mut publish = Publish::from_bytes(message.topic(), qos, message.payload().clone());
    publish.retain = message.is_retained_replay();
    publish.dup = dup;
    if qos != QoS::AtMostOnce {
        publish.pkid = pkid;
    }
    publish
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use switchyard::{AckOptions, Broker};

    use super::*;

    /// A message in flight on an acknowledged subscription, its token, and the subscription.
    fn taken(broker: &Broker, topic: &str) -> (switchyard::AckSubscription, Message, AckToken) {
        let sub = broker.subscribe_acked(topic, AckOptions::new()).unwrap();
        broker.publish(topic, "m").unwrap();
        let delivery = sub.recv_timeout(Duration::from_secs(1)).unwrap();
        let message = delivery.message().clone();
        (sub, message, delivery.into_token())
    }

    #[test]
    fn puback_settles_pubrec_settles_and_pubcomp_only_frees_the_packet_id() {
        let broker = Broker::new();
        let (one, m1, t1) = taken(&broker, "one");
        let (two, m2, t2) = taken(&broker, "two");
        let mut out = Outgoing::default();
        let p1 = out.send(m1, QoS::AtLeastOnce, one.id(), t1);
        let p2 = out.send(m2, QoS::ExactlyOnce, two.id(), t2);
        assert_eq!((p1.pkid, p2.pkid, out.len()), (1, 2, 2));

        assert_eq!(
            out.acknowledge(2, OutgoingState::PubAck),
            Acknowledged::Unknown,
            "a PUBACK for a QoS 2 message acknowledges nothing"
        );
        assert_eq!(
            out.acknowledge(2, OutgoingState::PubRec),
            Acknowledged::Settle(two.id(), t2)
        );
        assert_eq!(out.len(), 2, "the packet id stays taken until PUBCOMP");
        assert_eq!(
            out.acknowledge(2, OutgoingState::PubRec),
            Acknowledged::Unknown
        );
        let resent: Vec<Packet> = out.resend().collect();
        assert!(
            matches!(&resent[..], [Packet::Publish(p), Packet::PubRel(r)] if p.dup && p.pkid == 1 && r.pkid == 2),
            "{resent:?}"
        );
        assert_eq!(
            out.acknowledge(2, OutgoingState::PubComp),
            Acknowledged::Done
        );
        assert_eq!(
            out.acknowledge(1, OutgoingState::PubAck),
            Acknowledged::Settle(one.id(), t1)
        );
        assert_eq!(out.len(), 0);
        assert_eq!(
            out.acknowledge(1, OutgoingState::PubAck),
            Acknowledged::Unknown
        );
    }

    #[test]
    fn handed_back_messages_are_forgotten_but_a_settled_qos_2_flow_is_kept() {
        let broker = Broker::new();
        let (shared, m1, t1) = taken(&broker, "shared");
        let (_, m2, t2) = taken(&broker, "own");
        let (_, m3, t3) = taken(&broker, "shared-2");
        let mut out = Outgoing::default();
        out.send(m1, QoS::AtLeastOnce, shared.id(), t1);
        out.send(m2, QoS::AtLeastOnce, t2.subscription(), t2);
        out.send(m3, QoS::ExactlyOnce, shared.id(), t3);
        out.acknowledge(3, OutgoingState::PubRec);
        out.forget_handed_back(|from| from == shared.id());
        let left: Vec<Packet> = out.resend().collect();
        assert!(
            matches!(&left[..], [Packet::Publish(p), Packet::PubRel(r)] if p.pkid == 2 && r.pkid == 3),
            "{left:?}"
        );
    }

    #[test]
    fn packet_ids_in_use_are_skipped_when_the_counter_wraps() {
        let broker = Broker::new();
        let (sub, message, token) = taken(&broker, "t");
        let mut out = Outgoing::default();
        out.send(message.clone(), QoS::AtLeastOnce, sub.id(), token);
        out.last_pkid = u16::MAX;
        let next = out.send(message, QoS::AtLeastOnce, sub.id(), token);
        assert_eq!(next.pkid, 2, "0 is never a packet id and 1 is taken");
    }
}
