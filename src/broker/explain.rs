//! "Who gets this topic?": the subscriptions a publish on a topic would reach, and the filter of each.

use serde::{Deserialize, Serialize};

use crate::broker::Broker;
use crate::id::SubscriptionId;
use crate::topic::{TopicError, validate_topic};

/// One subscription that a publish on the explained topic would reach.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Explained {
    /// The subscription's id.
    pub id: SubscriptionId,
    /// Its name.
    pub name: String,
    /// The filter that matched the topic (the subscription's filter).
    pub filter: String,
    /// Its overflow policy, as in stats: `drop-newest`, `drop-oldest` or `block`.
    pub policy: String,
    /// Messages queued now (every priority lane).
    pub depth: u64,
    /// Queue capacity in messages, per priority lane.
    pub capacity: u64,
    /// Receiver handles alive: 0 means the message would wait in the queue for a receiver.
    pub receivers: u64,
}

/// The answer for one topic, as an endpoint sends it: `{"topic": "...", "subscriptions": [...]}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Explanation {
    /// The topic asked about.
    pub topic: String,
    /// Every subscription a publish on `topic` would reach, by id; empty when it would be unrouted.
    pub subscriptions: Vec<Explained>,
}

impl Broker {
    /// Every live subscription that a publish on `topic` would reach now, with the filter that matched,
    /// ordered by id. Nothing is published and no counter changes.
    ///
    /// Fails with the same error a publish would give when `topic` is not a valid topic (a wildcard, an
    /// empty topic, a limit exceeded).
    ///
    /// # Examples
    /// ```
    /// use switchyard::Broker;
    ///
    /// let broker = Broker::new();
    /// let _prices = broker.subscribe("stocks/+/price").unwrap();
    /// let _everything = broker.subscribe("#").unwrap();
    /// let _alerts = broker.subscribe("alerts/#").unwrap();
    ///
    /// let who = broker.explain("stocks/AAPL/price").unwrap();
    /// let filters: Vec<&str> = who.iter().map(|e| e.filter.as_str()).collect();
    /// assert_eq!(filters, ["stocks/+/price", "#"]);
    ///
    /// // The same subscriptions a publish reaches:
    /// assert_eq!(broker.publish("stocks/AAPL/price", "189.5").unwrap().matched, 2);
    /// assert!(broker.explain("stocks/+/price").is_err()); // a filter is not a topic
    /// ```
    ///
    /// [`Broker::explain`] answers from the same routing-table snapshot and the same trie walk that a
    /// publish uses (one load of the routing table, then [`crate::topic::trie::Trie::for_each_match`]), so its
    /// answer is the publish's fan-out by construction, not a second matcher that could disagree: the
    /// MQTT rules (`+`, `#`, `*` as a whole level, `$` topics out of reach of a leading wildcard) apply
    /// exactly as they do on the data path. It takes no lock and changes no counter; a subscribe or
    /// unsubscribe racing it is either seen or not, as it would be by a publish at that instant.
    ///
    /// The answer is plain serialisable data ([`Explained`], and [`Explanation`] for the wire), so a
    /// dashboard attached to a broker in another process can ask an endpoint for it (the endpoint's
    /// `GET /v1/explain?topic=` returns an [`Explanation`] as JSON).
    pub fn explain(&self, topic: &str) -> Result<Vec<Explained>, TopicError> {
        validate_topic(topic, &self.limits())?;
        let table = self.routing_table();
        let mut reached = Vec::new();
        table.trie.for_each_match(topic, |core| {
            reached.push(Explained {
                id: core.id,
                name: core.name.to_string(),
                filter: core.filter.to_string(),
                policy: core.policy().name().to_string(),
                depth: core.len() as u64,
                capacity: core.capacity() as u64,
                receivers: core.receivers() as u64,
            });
        });
        reached.sort_by_key(|e| e.id);
        Ok(reached)
    }
}
