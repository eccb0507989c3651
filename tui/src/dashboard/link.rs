//! The one seam between the dashboard and a broker.
//!
//! Widgets and key handling never touch a [`switchyard::Broker`]: they read plain data ([`Sample`]) and
//! emit commands that go through [`BrokerLink`]. Today the only implementation is
//! [`super::embedded::EmbeddedBroker`], which runs a broker in this process; the same trait is meant to
//! be implemented by a client that attaches to a broker in another process, with the
//! `switchyard.stats/v1` snapshot as its wire format. That is why every method takes and returns owned,
//! serialisable-shaped values and nothing here borrows broker internals.

use std::collections::BTreeMap;

use switchyard::{
    Explained, OverflowPolicy, PublishOptions, StatsSnapshot, SubscriptionId, Topic, TopicLimits,
};

/// What the publish form asks the broker for: `payload` on `topic`, `count` times.
///
/// The topic is a [`Topic`], checked against the broker's limits when the form made the request, so
/// a link carries the request out without checking it again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishRequest {
    /// The topic, validated.
    pub topic: Topic,
    /// The payload, sent as UTF-8 bytes.
    pub payload: String,
    /// How many times to publish it.
    pub count: u64,
    /// Priority and retain flag.
    pub options: PublishOptions,
}

/// What the subscribe form asks the broker for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubscribeRequest {
    /// The filter, already validated by the form (the broker validates it again).
    pub filter: String,
    /// Queue capacity in messages.
    pub capacity: usize,
    /// Overflow policy.
    pub policy: OverflowPolicy,
    /// Name shown in stats; the broker names it `s<id>` when `None`.
    pub name: Option<String>,
    /// Durable: outlives its consumer and is saved with `--state` (needs a name).
    pub durable: bool,
    /// Receive the retained messages matching the filter first.
    pub receive_retained: bool,
}

/// One dead letter, cut down for display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetterRow {
    /// The subscription that dropped it (its name).
    pub subscription: String,
    /// Why: `queue_full`, `evicted`, `timeout`, `unsubscribed`.
    pub reason: String,
    /// The message's topic.
    pub topic: String,
    /// The start of the payload as text.
    pub preview: String,
}

/// How many recent dead letters the dead-letter view keeps.
pub const RECENT_DEAD_LETTERS: usize = 50;

/// What the consumer of one subscription is doing, as the dashboard shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConsumerState {
    /// Receiving messages as fast as it can (or at its configured pace).
    #[default]
    Running,
    /// Asked to pause; at least one of its threads has not yet noticed.
    Pausing,
    /// Paused: nothing is taken from the queue, so it fills and then drops.
    Paused,
    /// Its subscription is gone and the consumer has stopped.
    Stopped,
}

impl ConsumerState {
    /// A short word for tables and the detail pane.
    pub fn label(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Pausing => "pausing",
            Self::Paused => "PAUSED",
            Self::Stopped => "stopped",
        }
    }

    /// Whether a pause has been asked for (acknowledged or not).
    pub fn is_paused(self) -> bool {
        matches!(self, Self::Pausing | Self::Paused)
    }
}

/// One message a consumer received, cut down for display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecentMessage {
    /// The topic it was published on.
    pub topic: String,
    /// The start of the payload as text, control characters replaced.
    pub preview: String,
    /// Messages this consumer was told it missed just before this one (`Delivery::missed`).
    pub missed: u64,
}

/// Something that happened on the broker side between two samples, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkEvent {
    /// A publish request finished.
    Published {
        /// The topic.
        topic: String,
        /// How many messages were published.
        count: u64,
        /// Subscription deliveries queued (summed over the messages).
        queued: u64,
        /// Messages dropped because of these publishes.
        dropped: u64,
        /// Publishes that matched no subscription.
        unrouted: u64,
    },
    /// Something failed in the background.
    Error(String),
}

/// Everything the dashboard reads on one tick: plain data, so rendering never calls the broker.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The broker's counters.
    pub snapshot: StatsSnapshot,
    /// The consumer of each live subscription.
    pub consumers: BTreeMap<SubscriptionId, ConsumerState>,
    /// The last messages received by the consumer of `recent_for`, oldest first.
    pub recent: Vec<RecentMessage>,
    /// Which subscription `recent` belongs to.
    pub recent_for: Option<SubscriptionId>,
    /// Whether demo traffic is running.
    pub demo: bool,
    /// Background results since the previous sample.
    pub events: Vec<LinkEvent>,
    /// The most recent dead letters, newest last.
    pub dead_letters: Vec<DeadLetterRow>,
    /// Why the broker cannot be reached now (an attached dashboard whose endpoint went away); `None`
    /// while it can, and always for an embedded broker. The snapshot is then the last one received.
    pub unreachable: Option<String>,
    /// Why commands (publish, subscribe, unsubscribe, pause, demo) are unavailable, such as a
    /// read-only endpoint; `None` when they can be sent.
    pub commands_unavailable: Option<String>,
    /// The MQTT listener serving the broker (`dashboard --mqtt`): its connections and sessions.
    pub mqtt: Option<switchyard_mqtt::MqttStats>,
    /// The bridges to other MQTT brokers (`dashboard --mqtt --bridge`).
    pub bridges: Vec<switchyard_mqtt::BridgeStats>,
}

/// Which rows the dashboard shows on top, for a link that sends only some of them: an endpoint in
/// another process sends [`super::remote::REMOTE_SUBSCRIPTIONS`] a sample, so at 100,000
/// subscriptions the first thousand by id would hide the worst one from a sort by drops or the radar.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RowsWanted {
    /// The order the table shows, as far as a broker can sort.
    pub top: TopRows,
    /// Only rows whose name or filter contains this text (case ignored); empty for every row.
    pub containing: String,
}

/// The rows on top of the table's order, in the terms of the broker's own sort keys.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TopRows {
    /// The first by id (the id order, and orders a broker cannot sort by: name, filter, ascending).
    #[default]
    FirstById,
    /// The fullest queues (depth over capacity).
    Fullest,
    /// The most delivered.
    MostDelivered,
    /// The highest delivery rate.
    Fastest,
    /// The most dropped.
    MostDropped,
    /// What the radar puts first: stalled, dropping or filling queues.
    MostUrgent,
}

/// How many recent messages the detail pane shows (and consumers keep).
pub const RECENT_MESSAGES: usize = 8;

/// The commands and reads the dashboard needs from a broker. Nothing more, on purpose: see the module
/// docs. Every method returns promptly; slow work (publishing into a `block` queue) happens elsewhere and
/// reports back through [`BrokerLink::take_events`].
pub trait BrokerLink {
    /// The limits topics and filters are validated against, so forms can validate as the user types.
    fn limits(&self) -> TopicLimits;
    /// A stats snapshot. Its `rates` cover the time since the previous call.
    fn snapshot(&mut self) -> StatsSnapshot;
    /// The state of the consumer of each live subscription.
    fn consumer_states(&self) -> BTreeMap<SubscriptionId, ConsumerState>;
    /// The last messages (up to [`RECENT_MESSAGES`]) the consumer of `id` received, oldest first.
    fn recent_messages(&self, id: SubscriptionId) -> Vec<RecentMessage>;
    /// Publishes `request.payload` on its topic `request.count` times with its options (priority,
    /// retain). The publishing itself may finish later and is reported as a
    /// [`LinkEvent::Published`].
    fn publish(&mut self, request: PublishRequest) -> anyhow::Result<()>;
    /// The most recent dead letters (up to [`RECENT_DEAD_LETTERS`]), oldest first.
    fn recent_dead_letters(&mut self) -> Vec<DeadLetterRow>;
    /// Subscribes and starts a consumer for the new subscription.
    fn subscribe(&mut self, request: &SubscribeRequest) -> anyhow::Result<SubscriptionId>;
    /// Unsubscribes `id`; its queued messages are counted as dropped (`unsubscribed`).
    fn unsubscribe(&mut self, id: SubscriptionId) -> anyhow::Result<()>;
    /// Pauses or resumes the consumer of `id`.
    fn set_paused(&mut self, id: SubscriptionId, paused: bool) -> anyhow::Result<()>;
    /// Whether demo traffic is running.
    fn demo_running(&self) -> bool;
    /// Starts or stops demo traffic.
    fn set_demo(&mut self, on: bool) -> anyhow::Result<()>;
    /// Background results since the previous call.
    fn take_events(&mut self) -> Vec<LinkEvent>;
    /// "Who gets this topic?": every live subscription a publish on `topic` would reach now, with the
    /// filter that matched, ordered by id ([`switchyard::Broker::explain`]). Publishes nothing.
    ///
    /// An invalid topic is an error carrying the library's text (the `TopicError`), never a panic.
    /// A link to a broker in another process asks its endpoint `GET /v1/explain?topic=<urlencoded>`,
    /// which answers `200` with a [`switchyard::Explanation`] as JSON
    /// (`{"topic": "...", "subscriptions": [{"id", "name", "filter", "policy", "depth", "capacity",
    /// "receivers"}, ...]}`) and returns its `subscriptions`; or `400` with a JSON error whose message
    /// is the library's topic error, which the link returns as the error. A connection failure is an
    /// error naming the address; the dashboard shows either in the explainer instead of a result.
    fn explain(&mut self, topic: &str) -> anyhow::Result<Vec<Explained>>;

    /// Why the broker cannot be reached now; see [`Sample::unreachable`].
    fn unreachable(&self) -> Option<String> {
        None
    }

    /// Why commands are unavailable; see [`Sample::commands_unavailable`].
    fn commands_unavailable(&self) -> Option<String> {
        None
    }

    /// The MQTT listener serving the broker, if any; see [`Sample::mqtt`].
    fn mqtt(&self) -> Option<switchyard_mqtt::MqttStats> {
        None
    }

    /// The bridges to other MQTT brokers; see [`Sample::bridges`].
    fn bridges(&self) -> Vec<switchyard_mqtt::BridgeStats> {
        Vec::new()
    }

    /// Which rows the next samples should hold when the link cannot send them all. An embedded broker
    /// sends every row, so by default this does nothing.
    fn want_rows(&mut self, _wanted: &RowsWanted) {}

    /// Reads everything one tick needs. `selected` is the subscription whose recent messages are wanted.
    fn sample(&mut self, selected: Option<SubscriptionId>) -> Sample {
        let snapshot = self.snapshot();
        Sample {
            consumers: self.consumer_states(),
            recent: selected
                .map(|id| self.recent_messages(id))
                .unwrap_or_default(),
            recent_for: selected,
            demo: self.demo_running(),
            events: self.take_events(),
            dead_letters: self.recent_dead_letters(),
            unreachable: self.unreachable(),
            commands_unavailable: self.commands_unavailable(),
            mqtt: self.mqtt(),
            bridges: self.bridges(),
            snapshot,
        }
    }
}
