//! Shared subscriptions, `$share/GROUP/FILTER`: every client subscribed with the same GROUP and FILTER
//! is a competing receiver of one broker subscription, so each message matching FILTER goes to one
//! member of the group. Mosquitto, EMQX and HiveMQ accept them from MQTT 3.1.1 clients; MQTT 5 (section
//! 4.8.2) defines them, and the rules below follow it where 3.1.1 says nothing.
//!
//! # The group's subscription
//! One broker subscription per (GROUP, FILTER), made by the first member, named
//! `mqtt/$share/GROUP/FILTER` (its filter is FILTER), with the listener's queue capacity and policy.
//! Its kind is the first member's: acknowledged if that member asked for QoS 1 or 2, plain for QoS 0
//! (a later member asking a plain group for more is granted QoS 0, see `crate::receiver`). Each member
//! gets a message at the lower of its own granted QoS and the publisher's.
//!
//! The window of an acknowledged group is the group's, not a member's: at least
//! [`AckOptions::DEFAULT_MAX_IN_FLIGHT`](switchyard::AckOptions::DEFAULT_MAX_IN_FLIGHT) (1,000), so
//! each of many members can fill its own in-flight limit ([`crate::MqttConfig::max_inflight`]), which
//! the connection keeps as it does for any subscription. A group whose window is full shows stalled
//! receivers in the subscription's `ack` stats.
//!
//! # Members that go away
//! When a member's connection ends, its messages in hand (sent and not yet acknowledged: QoS 1, and
//! QoS 2 before PUBREC) go back to the group at once, for the other members (counted `handed_back`,
//! then `redelivered`), as MQTT 5 allows (section 4.8.2: "MAY attempt to send the message to another
//! Client as soon as it loses its connection"). They go to the next member as a new PUBLISH, so with
//! DUP 0 (DUP marks a packet sent again, section 3.3.1.1, and that member never got it). A QoS 2
//! message past PUBREC is the member's (see `crate::outgoing`) and stays with it. Unsubscribing from the
//! group hands back the same way.
//!
//! A persistent session stays a member while its client is away, taking nothing: the group lives on
//! and the connected members get the messages. When the last member leaves (unsubscribes, or its
//! clean session ends) the group is removed, as Mosquitto does: its subscription is unsubscribed and
//! what it still queued is counted dropped (`unsubscribed`); a later member starts a new group.
//!
//! # Retained messages
//! None are sent to a shared subscription, new or not (MQTT 5 section 4.8.2: "retained messages are
//! not sent"; a retained message would otherwise go to one arbitrary member each time one joins).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rumqttc::QoS;
use switchyard::{AckOptions, Broker, SubscribeError, SubscriptionId, SubscriptionOptions};

use crate::lock::lock;
use crate::receiver::Receiver;

/// The prefix that makes a filter shared.
const PREFIX: &str = "$share/";

/// A shared subscription's parts: `$share/GROUP/FILTER`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ShareFilter<'a> {
    pub group: &'a str,
    pub filter: &'a str,
}

/// A `$share/...` filter that is not `$share/GROUP/FILTER` with a GROUP of at least one character and
/// no `+` or `#` (MQTT 5 section 4.8.2), and a FILTER; refused with SUBACK 0x80.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BadShareFilter;

impl<'a> ShareFilter<'a> {
    /// `Ok(None)` for a filter that is not shared; the FILTER part is left to the broker to check.
    pub(crate) fn parse(filter: &'a str) -> Result<Option<Self>, BadShareFilter> {
        let Some(rest) = filter.strip_prefix(PREFIX) else {
            return Ok(None);
        };
        let (group, filter) = rest.split_once('/').ok_or(BadShareFilter)?;
        if group.is_empty() || group.contains(['+', '#']) || filter.is_empty() {
            return Err(BadShareFilter);
        }
        Ok(Some(Self { group, filter }))
    }
}

/// The shared groups of one listener.
#[derive(Debug, Default)]
pub(crate) struct SharedGroups {
    groups: Mutex<HashMap<(String, String), Group>>,
}

#[derive(Debug)]
struct Group {
    /// The group's own receiver, which takes nothing: the handle new members are cloned from. It is
    /// counted among the subscription's `receivers` (members + 1).
    receiver: Receiver,
    members: usize,
}

/// A client's place in a group. Dropping it leaves the group (after the member's receiver, declared
/// before it in `ClientSubscription`, handed back what it held); the last to leave removes it.
#[derive(Debug)]
pub(crate) struct Membership {
    groups: Arc<SharedGroups>,
    key: (String, String),
    /// The group's subscription when this member joined: a group unsubscribed through the broker and
    /// made again is another group.
    id: SubscriptionId,
}

/// What the listener gives every group's subscription.
#[derive(Debug, Clone, Copy)]
pub(crate) struct GroupSettings {
    pub capacity: usize,
    pub policy: switchyard::OverflowPolicy,
    /// The group queue's byte bound ([`crate::MqttConfig::queue_bytes`]).
    pub max_bytes: Option<u64>,
    /// A member's in-flight limit; the group's window is at least 1,000 (see the module docs).
    pub max_inflight: usize,
}

impl SharedGroups {
    /// Joins group `share` as a member asking for `qos`, making the group's subscription if there is
    /// none (or it was unsubscribed through the broker). Returns the member's receiver.
    pub(crate) fn join(
        self: &Arc<Self>,
        broker: &Broker,
        share: ShareFilter<'_>,
        qos: QoS,
        settings: GroupSettings,
    ) -> Result<(Receiver, Membership), SubscribeError> {
        let key = (share.group.to_string(), share.filter.to_string());
        let mut groups = lock(&self.groups);
        let group = match groups.get_mut(&key) {
            Some(group) if !group.receiver.is_closed() => group,
            _ => {
                let mut options = SubscriptionOptions::new()
                    .capacity(settings.capacity)
                    .policy(settings.policy)
                    .name(format!("mqtt/{PREFIX}{}/{}", share.group, share.filter));
                if let Some(bytes) = settings.max_bytes {
                    options = options.max_bytes(bytes);
                }
                let window = settings
                    .max_inflight
                    .max(AckOptions::DEFAULT_MAX_IN_FLIGHT as usize);
                let receiver = Receiver::subscribe(broker, share.filter, qos, window, options)?;
                // A closed group's members still hold memberships of its id; they leave it, not this.
                groups.insert(
                    key.clone(),
                    Group {
                        receiver,
                        members: 0,
                    },
                );
                groups.get_mut(&key).expect("inserted above")
            }
        };
        group.members += 1;
        let membership = Membership {
            groups: self.clone(),
            id: group.receiver.id(),
            key,
        };
        Ok((group.receiver.another(), membership))
    }

    /// How many groups there are now.
    pub(crate) fn len(&self) -> usize {
        lock(&self.groups).len()
    }

    fn leave(&self, key: &(String, String), id: SubscriptionId) {
        let removed = {
            let mut groups = lock(&self.groups);
            let Some(group) = groups.get_mut(key) else {
                return;
            };
            if group.receiver.id() != id {
                return;
            }
            group.members -= 1;
            if group.members > 0 {
                return;
            }
            groups.remove(key)
        };
        // Dropped outside the lock: the last handle unsubscribes, which takes the broker's control lock.
        drop(removed);
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        self.groups.leave(&self.key, self.id);
    }
}

#[cfg(test)]
mod tests {
    use switchyard::OverflowPolicy;

    use super::*;

    const SETTINGS: GroupSettings = GroupSettings {
        capacity: 16,
        policy: OverflowPolicy::DropNewest,
        max_bytes: None,
        max_inflight: 4,
    };

    #[test]
    fn share_filters_parse_into_group_and_filter_and_bad_ones_are_refused() {
        let parsed = ShareFilter::parse("$share/workers/jobs/#")
            .unwrap()
            .unwrap();
        assert_eq!((parsed.group, parsed.filter), ("workers", "jobs/#"));
        assert_eq!(ShareFilter::parse("jobs/#"), Ok(None));
        assert_eq!(ShareFilter::parse("$SYS/#"), Ok(None));
        for bad in [
            "$share/",
            "$share/g",
            "$share//jobs",
            "$share/g/",
            "$share/+/a",
            "$share/#/a",
        ] {
            assert_eq!(ShareFilter::parse(bad), Err(BadShareFilter), "{bad}");
        }
    }

    #[test]
    fn members_compete_for_one_subscription_and_the_last_to_leave_removes_it() {
        let broker = Broker::new();
        let groups = Arc::new(SharedGroups::default());
        let share = ShareFilter::parse("$share/g/jobs/#").unwrap().unwrap();
        let (a, a_member) = groups
            .join(&broker, share, QoS::AtLeastOnce, SETTINGS)
            .unwrap();
        let (b, b_member) = groups
            .join(&broker, share, QoS::AtMostOnce, SETTINGS)
            .unwrap();
        assert_eq!(a.id(), b.id());
        assert_eq!(b.granted(QoS::AtMostOnce), QoS::AtMostOnce);
        let stats = broker.subscription_stats(a.id()).unwrap();
        assert_eq!(stats.name, "mqtt/$share/g/jobs/#");
        assert_eq!(stats.filter, "jobs/#");
        assert_eq!(stats.ack.unwrap().max_in_flight, 1_000);
        assert_eq!(stats.receivers, 3, "two members and the group's own handle");

        let id = a.id();
        drop((a, a_member));
        assert_eq!(groups.len(), 1);
        broker.publish("jobs/1", "x").unwrap();
        drop((b, b_member));
        assert_eq!(groups.len(), 0);
        assert!(broker.subscription_stats(id).is_none(), "unsubscribed");
        let stats = broker.stats();
        assert_eq!(stats.totals.dropped, 1, "the queued message, unsubscribed");
        assert!(stats.balances());
    }

    #[test]
    fn a_plain_group_grants_qos_0_and_a_closed_group_is_made_again() {
        let broker = Broker::new();
        let groups = Arc::new(SharedGroups::default());
        let share = ShareFilter::parse("$share/g/t").unwrap().unwrap();
        let (first, first_member) = groups
            .join(&broker, share, QoS::AtMostOnce, SETTINGS)
            .unwrap();
        let (second, _second_member) = groups
            .join(&broker, share, QoS::ExactlyOnce, SETTINGS)
            .unwrap();
        assert_eq!(second.granted(QoS::ExactlyOnce), QoS::AtMostOnce);

        broker.unsubscribe(first.id()).unwrap();
        let (third, _third_member) = groups
            .join(&broker, share, QoS::AtLeastOnce, SETTINGS)
            .unwrap();
        assert_ne!(third.id(), first.id(), "a new group");
        assert_eq!(third.granted(QoS::AtLeastOnce), QoS::AtLeastOnce);
        drop((first, first_member));
        assert_eq!(
            groups.len(),
            1,
            "leaving the old group leaves the new one alone"
        );
        assert!(!third.is_closed());
    }
}
