//! Retained messages: the last message published with `retain` on each topic, replayed to new

use std::collections::BTreeMap;

use crate::message::Message;
use crate::stats::features::RetainedStats;
use crate::topic::Filter;

/// Bounds of the retained store.
///
/// subscriptions that ask for it.
///
/// # Behaviour
/// Publishing with [`crate::PublishOptions::retain`] stores the message as its topic's retained message,
/// replacing the previous one, and routes it as usual. A retained publish with an empty payload clears
/// the topic's retained message (and is still routed, as an empty message). A subscription created with
/// [`crate::SubscriptionOptions::receive_retained`] first receives every retained message its filter
/// matches (in topic order), then live traffic.
///
/// # Exactly once per subscription
/// A retained publish updates the store and loads the routing table under the store's mutex; a
/// subscription that asks for retained messages is added to the routing table and replayed under the
/// same mutex. So each retained message reaches a new subscription exactly once: either it was stored
/// before the subscription was added (replayed; the publish loaded a table without it) or after (routed
/// live, from a table with it; not in the replay), never both and never neither. The publish offers the
/// message *after* releasing the mutex, so one that waits on a full `Block` subscription holds up neither
/// [`crate::Broker::stats`] nor other retained publishes and subscribes.
///
/// # Accounting
/// A replayed message counts as `matched` by the subscription it is replayed into (and then as delivered,
/// dropped or queued like any other), so `matched = delivered + dropped + depth` keeps holding. It is not
/// a new publish: `published` does not move. Replay never waits: under `Block`, a full lane refuses the
/// replayed message as `queue_full`.
///
/// # Bounds and cost
/// The store holds at most `max_messages` topics and `max_bytes` of payload ([`RetainedLimits`]). A
/// retained message that would exceed either is not kept, but it is delivered live all the same (as
/// Mosquitto does): the refusal is counted (`retained.rejected` in the stats, `/metrics`) and told in
/// [`PublishOutcome::retain_refused`](crate::PublishOutcome::retain_refused). Ordinary publishes never
/// touch the store; retained publishes take its mutex.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetainedLimits {
    /// At most this many topics have a retained message.
    pub max_messages: usize,
    /// At most this many payload bytes are retained in all.
    pub max_bytes: usize,
}

impl Default for RetainedLimits {
    /// 10,000 messages and 16 MiB.
    fn default() -> Self {
        Self {
            max_messages: 10_000,
            max_bytes: 16 << 20,
        }
    }
}

/// The store, behind the broker's retained mutex.
#[derive(Debug)]
pub(crate) struct RetainedStore {
    limits: RetainedLimits,
    by_topic: BTreeMap<String, Message>,
    bytes: usize,
    stats: RetainedStats,
}

impl RetainedStore {
    pub(crate) fn new(limits: RetainedLimits) -> Self {
        Self {
            limits,
            by_topic: BTreeMap::new(),
            bytes: 0,
            stats: RetainedStats::default(),
        }
    }

    /// Stores `msg` as its topic's retained message, or clears the topic when the payload is empty.
    /// Returns `false` (and counts it as rejected) when the store is at one of its bounds.
    pub(crate) fn retain(&mut self, msg: &Message) -> bool {
        let topic = msg.topic();
        let old_len = self.by_topic.get(topic).map(|m| m.payload().len());
        if msg.payload().is_empty() {
            if let Some(old) = old_len {
                self.by_topic.remove(topic);
                self.bytes -= old;
                self.stats.cleared += 1;
            }
            return true;
        }
        if old_len.is_none() && self.by_topic.len() >= self.limits.max_messages {
            self.stats.rejected += 1;
            return false;
        }
        let bytes = self.bytes - old_len.unwrap_or(0) + msg.payload().len();
        if bytes > self.limits.max_bytes {
            self.stats.rejected += 1;
            return false;
        }
        self.by_topic.insert(topic.to_string(), msg.clone());
        self.bytes = bytes;
        self.stats.stored += 1;
        true
    }

    /// Hands every retained message `filter` matches to `offer`, in topic order, marked as a
    /// replay. The broker calls it with the store's mutex held, after the subscription was added to
    /// the routing table (see the module docs), and offers without ever waiting (a full lane refuses,
    /// as `queue_full`).
    pub(crate) fn replay(&mut self, filter: &Filter, mut offer: impl FnMut(&Message)) {
        let mut replayed = 0;
        for (_, msg) in self.by_topic.iter().filter(|(t, _)| filter.matches(t)) {
            offer(&msg.as_retained_replay());
            replayed += 1;
        }
        self.stats.replayed += replayed;
    }

    pub(crate) fn stats(&self) -> RetainedStats {
        RetainedStats {
            messages: self.by_topic.len() as u64,
            bytes: self.bytes as u64,
            max_messages: self.limits.max_messages as u64,
            max_bytes: self.limits.max_bytes as u64,
            ..self.stats
        }
    }
}
