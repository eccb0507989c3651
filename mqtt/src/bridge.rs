//! A bridge to an existing MQTT broker: chosen topics go out to it, chosen topics come in from it.
//! See [`Bridge`] for how it behaves.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, QoS, SubscribeFilter};
use serde::{Deserialize, Serialize};
use switchyard::{
    Broker, DroppedByReason, OverflowPolicy, Subscription, SubscriptionOptions, filter_matches,
};
use tokio::task::JoinHandle;

use crate::listener_stats::add_drops;
use crate::receive::ReadyTurns;
use crate::session::lock;

/// How a [`Bridge`] connects and what it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeConfig {
    /// The remote broker's host name or address.
    pub host: String,
    /// The remote broker's port.
    pub port: u16,
    /// Filters whose local messages are published to the remote broker.
    pub out_filters: Vec<String>,
    /// Filters subscribed to on the remote broker; what arrives is published locally.
    pub in_filters: Vec<String>,
    /// The client id the bridge connects with.
    pub client_id: String,
    /// QoS of the bridge's publishes and remote subscriptions (0 or 1).
    pub qos: u8,
    /// Capacity of each out filter's broker queue: how much the bridge keeps while the remote is away.
    pub queue_capacity: usize,
    /// What a full out queue does.
    pub policy: OverflowPolicy,
}

impl BridgeConfig {
    /// Capacity of `rumqttc`'s request channel: messages taken from the out queues and not yet sent.
    pub const CLIENT_CHANNEL: usize = 64;

    /// A bridge to `url` (`mqtt://HOST:PORT`) with no filters yet, QoS 1, queues of 1024, `DropOldest`
    /// (while the remote is away the newest readings are the ones worth keeping).
    ///
    /// # Examples
    /// ```
    /// use switchyard_mqtt::BridgeConfig;
    ///
    /// let config = BridgeConfig::from_url("mqtt://127.0.0.1:1883").unwrap();
    /// assert_eq!((config.host.as_str(), config.port), ("127.0.0.1", 1883));
    /// assert!(BridgeConfig::from_url("http://x:1").is_err());
    /// ```
    pub fn from_url(url: &str) -> Result<Self, BridgeError> {
        let bad = |why: &str| BridgeError::Url {
            url: url.to_string(),
            why: why.to_string(),
        };
        let rest = url
            .strip_prefix("mqtt://")
            .ok_or_else(|| bad("it must start with mqtt://"))?;
        let (host, port) = rest
            .rsplit_once(':')
            .ok_or_else(|| bad("it must name a port: mqtt://HOST:PORT"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(bad("the host is empty"));
        }
        let port = port
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| bad("the port must be a number from 1 to 65535"))?;
        Ok(Self {
            host: host.to_string(),
            port,
            out_filters: Vec::new(),
            in_filters: Vec::new(),
            client_id: format!("switchyard-bridge-{}", std::process::id()),
            qos: 1,
            queue_capacity: 1024,
            policy: OverflowPolicy::DropOldest,
        })
    }
}

/// Why a bridge could not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BridgeError {
    /// The remote's URL is not `mqtt://HOST:PORT`.
    #[error("bridge URL `{url}`: {why}")]
    Url {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        why: String,
    },
    /// A filter the broker refuses.
    #[error("bridge filter `{filter}`: {why}")]
    Filter {
        /// The filter given.
        filter: String,
        /// The broker's reason.
        why: String,
    },
    /// Neither direction has a filter.
    #[error("a bridge needs at least one --bridge-out or --bridge-in filter")]
    NoFilters,
    /// A QoS other than 0 or 1.
    #[error("bridge QoS must be 0 or 1, got {0}")]
    Qos(u8),
}

/// The out direction's counters, per filter.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BridgeOutFilterStats {
    /// The filter.
    pub filter: String,
    /// Its broker subscription's id.
    pub id: u64,
    /// Messages queued for the remote now.
    pub depth: u64,
    /// Matched messages that will never reach the remote, by reason.
    pub dropped_by_reason: DroppedByReason,
}

/// A bridge's counters (an element of the `bridges` array of the stats schema, a v1 addition).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BridgeStats {
    /// `HOST:PORT` of the remote broker.
    pub remote: String,
    /// Whether the bridge is connected now.
    pub connected: bool,
    /// Successful connections (CONNACK accepted), the first included.
    pub connects: u64,
    /// Failed connection attempts and lost connections.
    pub connection_errors: u64,
    /// The last connection error, if any.
    pub last_error: Option<String>,
    /// Local messages handed to the MQTT client for the remote.
    pub out_forwarded: u64,
    /// Local messages not sent because they were echoes of messages that came in.
    pub out_loop_skipped: u64,
    /// Drops on the way out, over every out filter, by reason.
    pub out_dropped_by_reason: DroppedByReason,
    /// Each out filter.
    pub out_filters: Vec<BridgeOutFilterStats>,
    /// The in filters.
    pub in_filters: Vec<String>,
    /// Messages received from the remote.
    pub in_received: u64,
    /// Of those, published into the local broker.
    pub in_published: u64,
    /// Of those, refused by the local broker (a topic it does not accept, a full retained store).
    pub in_refused: u64,
    /// Of those, echoes of messages the bridge sent out, not published again.
    pub in_loop_skipped: u64,
}

impl BridgeStats {
    /// Whether every message received from the remote was published, refused or skipped.
    pub fn in_balances(&self) -> bool {
        self.in_received == self.in_published + self.in_refused + self.in_loop_skipped
    }
}

/// Messages sent one way whose echo may come back the other way: (topic, payload), oldest first,
/// at most `capacity`.
#[derive(Debug)]
struct Echoes {
    expected: Mutex<VecDeque<(String, Bytes)>>,
    capacity: usize,
}

impl Echoes {
    fn new(capacity: usize) -> Self {
        Self {
            expected: Mutex::new(VecDeque::new()),
            capacity,
        }
    }

    /// Remembers a message sent, if one of `filters` could bring it back.
    fn expect(&self, filters: &[String], topic: &str, payload: &Bytes) {
        if !filters.iter().any(|f| filter_matches(f, topic)) {
            return;
        }
        let mut expected = lock(&self.expected);
        if expected.len() == self.capacity {
            expected.pop_front();
        }
        expected.push_back((topic.to_string(), payload.clone()));
    }

    /// Whether this message is an awaited echo (and forgets it).
    fn take(&self, topic: &str, payload: &[u8]) -> bool {
        let mut expected = lock(&self.expected);
        match expected
            .iter()
            .position(|(t, p)| t == topic && p[..] == *payload)
        {
            Some(index) => {
                expected.remove(index);
                true
            }
            None => false,
        }
    }
}

#[derive(Debug, Default)]
struct Counters {
    connected: AtomicBool,
    connects: AtomicU64,
    connection_errors: AtomicU64,
    last_error: Mutex<Option<String>>,
    out_forwarded: AtomicU64,
    out_loop_skipped: AtomicU64,
    in_received: AtomicU64,
    in_published: AtomicU64,
    in_refused: AtomicU64,
    in_loop_skipped: AtomicU64,
}

struct BridgeShared {
    config: BridgeConfig,
    broker: Broker,
    counters: Counters,
    /// Sent out; the remote may send them back in.
    sent_out: Echoes,
    /// Published locally from the remote; an out subscription may take them.
    came_in: Echoes,
    /// (filter, broker subscription id) of each out filter.
    out_ids: Vec<(String, u64)>,
}

/// A running bridge to an existing MQTT broker: chosen topics go out to it, chosen topics come in
/// from it. Dropping it stops both directions and unsubscribes its out filters.
///
/// `--bridge mqtt://HOST:PORT --bridge-out 'sensors/#' --bridge-in 'commands/#'` connects one MQTT
/// client (`rumqttc`) to the remote broker.
///
/// # Out (local to remote)
/// Each out filter is a broker subscription with a bounded queue and an overflow policy, like an MQTT
/// client's. One task takes its messages and publishes them to the remote broker. While the remote is
/// slow or away, `rumqttc`'s request channel fills, the task waits, and the subscription's queue fills
/// and then drops by its policy, counted by reason in the broker's stats and in [`BridgeStats`].
///
/// # In (remote to local)
/// The client subscribes to the in filters on the remote broker (again after every reconnect: the
/// bridge uses a clean session) and publishes what arrives into the local broker. A topic the local
/// broker refuses (a `*` level, say) is counted as `refused`.
///
/// # Reconnecting
/// A lost or refused connection is retried with exponential back-off from 100 ms to 5 s, reset by a
/// successful CONNACK. QoS 1 messages `rumqttc` had in flight are sent again after the reconnect.
///
/// # Loop prevention
/// MQTT 3.1.1 has no "no local" subscription option, so a topic that is both bridged out and bridged
/// in would circle for ever: out to the remote, back in, out again. The bridge remembers what it just
/// sent each way, where the other direction's filters could bring it back (topic and payload, in a
/// bounded list per direction), and drops the echo when it comes back, counted as `loop_skipped`. A
/// message identical to one whose echo is awaited (same topic, same payload) may be taken for the echo;
/// the echo then passes once and is caught on its next lap.
///
/// # What is not carried
/// The core's messages do not say whether they were published retained or at which QoS, so messages
/// go out at the bridge's QoS without the retain flag. Messages inside `rumqttc` (its request channel,
/// at most [`BridgeConfig::CLIENT_CHANNEL`], and its in-flight window) when the bridge is dropped are
/// lost without being counted.
///
/// # Examples
/// ```no_run
/// use switchyard::Broker;
/// use switchyard_mqtt::{Bridge, BridgeConfig};
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let broker = Broker::new();
/// let mut config = BridgeConfig::from_url("mqtt://127.0.0.1:1883").unwrap();
/// config.out_filters.push("sensors/#".into());
/// config.in_filters.push("commands/#".into());
/// let bridge = Bridge::start(&broker, config).unwrap();
/// println!("{:?}", bridge.stats());
/// # });
/// ```
pub struct Bridge {
    shared: Arc<BridgeShared>,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Bridge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bridge")
            .field("remote", &self.shared.config.host)
            .field("port", &self.shared.config.port)
            .finish_non_exhaustive()
    }
}

impl Bridge {
    /// Subscribes the out filters locally and starts connecting to the remote broker. Must be called
    /// inside a tokio runtime. Fails at once on a filter the broker refuses.
    pub fn start(broker: &Broker, config: BridgeConfig) -> Result<Self, BridgeError> {
        if config.out_filters.is_empty() && config.in_filters.is_empty() {
            return Err(BridgeError::NoFilters);
        }
        let qos = match config.qos {
            0 => QoS::AtMostOnce,
            1 => QoS::AtLeastOnce,
            other => return Err(BridgeError::Qos(other)),
        };
        for filter in &config.in_filters {
            switchyard::Filter::with_limits(filter, &broker.limits()).map_err(|e| {
                BridgeError::Filter {
                    filter: filter.clone(),
                    why: e.to_string(),
                }
            })?;
        }
        let mut out_subscriptions = Vec::new();
        let out_turns = ReadyTurns::default();
        for (index, filter) in config.out_filters.iter().enumerate() {
            let options = SubscriptionOptions::new()
                .capacity(config.queue_capacity)
                .policy(config.policy)
                .name(format!("bridge-out/{filter}"))
                .ready_signal(out_turns.signal())
                .ready_key(index as u64);
            let subscription =
                broker
                    .subscribe_with(filter, options)
                    .map_err(|e| BridgeError::Filter {
                        filter: filter.clone(),
                        why: e.to_string(),
                    })?;
            out_subscriptions.push(subscription);
        }
        let echo_capacity = config.queue_capacity.max(BridgeConfig::CLIENT_CHANNEL);
        let shared = Arc::new(BridgeShared {
            out_ids: out_subscriptions
                .iter()
                .map(|s| (s.filter().as_str().to_string(), s.id()))
                .collect(),
            config,
            broker: broker.clone(),
            counters: Counters::default(),
            sent_out: Echoes::new(echo_capacity),
            came_in: Echoes::new(echo_capacity),
        });
        let mut options = MqttOptions::new(
            shared.config.client_id.clone(),
            shared.config.host.clone(),
            shared.config.port,
        );
        options.set_keep_alive(Duration::from_secs(30));
        options.set_clean_session(true);
        let (client, events) = AsyncClient::new(options, BridgeConfig::CLIENT_CHANNEL);
        let tasks = vec![
            tokio::spawn(run_in(shared.clone(), client.clone(), events, qos)),
            tokio::spawn(run_out(
                shared.clone(),
                client,
                out_subscriptions,
                out_turns,
                qos,
            )),
        ];
        Ok(Self { shared, tasks })
    }

    /// The bridge's counters now.
    pub fn stats(&self) -> BridgeStats {
        let c = &self.shared.counters;
        let mut stats = BridgeStats {
            remote: format!("{}:{}", self.shared.config.host, self.shared.config.port),
            connected: c.connected.load(Ordering::Relaxed),
            connects: c.connects.load(Ordering::Relaxed),
            connection_errors: c.connection_errors.load(Ordering::Relaxed),
            last_error: lock(&c.last_error).clone(),
            out_forwarded: c.out_forwarded.load(Ordering::Relaxed),
            out_loop_skipped: c.out_loop_skipped.load(Ordering::Relaxed),
            in_filters: self.shared.config.in_filters.clone(),
            in_received: c.in_received.load(Ordering::Relaxed),
            in_published: c.in_published.load(Ordering::Relaxed),
            in_refused: c.in_refused.load(Ordering::Relaxed),
            in_loop_skipped: c.in_loop_skipped.load(Ordering::Relaxed),
            ..BridgeStats::default()
        };
        for (filter, id) in &self.shared.out_ids {
            let Some(sub) = self.shared.broker.subscription_stats(*id) else {
                continue;
            };
            let d = sub.dropped_by_reason;
            add_drops(&mut stats.out_dropped_by_reason, &d);
            stats.out_filters.push(BridgeOutFilterStats {
                filter: filter.clone(),
                id: *id,
                depth: sub.depth,
                dropped_by_reason: d,
            });
        }
        stats
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Back-off between connection attempts.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Drives the MQTT client: connects, reconnects with back-off, subscribes the in filters after each
/// CONNACK, and publishes what arrives into the local broker.
async fn run_in(shared: Arc<BridgeShared>, client: AsyncClient, mut events: EventLoop, qos: QoS) {
    let c = &shared.counters;
    let mut backoff = BACKOFF_MIN;
    loop {
        match events.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                c.connected.store(true, Ordering::Relaxed);
                c.connects.fetch_add(1, Ordering::Relaxed);
                backoff = BACKOFF_MIN;
                if !shared.config.in_filters.is_empty() {
                    let filters = shared
                        .config
                        .in_filters
                        .iter()
                        .map(|f| SubscribeFilter::new(f.clone(), qos));
                    if let Err(e) = client.try_subscribe_many(filters) {
                        *lock(&c.last_error) = Some(format!("subscribing the in filters: {e}"));
                    }
                }
            }
            Ok(Event::Incoming(Packet::Publish(publish))) => {
                c.in_received.fetch_add(1, Ordering::Relaxed);
                if shared.sent_out.take(&publish.topic, &publish.payload) {
                    c.in_loop_skipped.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                shared
                    .came_in
                    .expect(&shared.config.out_filters, &publish.topic, &publish.payload);
                match shared.broker.publish(&publish.topic, publish.payload) {
                    Ok(_) => c.in_published.fetch_add(1, Ordering::Relaxed),
                    Err(_) => c.in_refused.fetch_add(1, Ordering::Relaxed),
                };
            }
            Ok(_) => {}
            Err(e) => {
                c.connected.store(false, Ordering::Relaxed);
                c.connection_errors.fetch_add(1, Ordering::Relaxed);
                *lock(&c.last_error) = Some(e.to_string());
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}

/// Takes messages from the out subscriptions and hands them to the MQTT client; waits while the
/// client's channel is full (the remote is slow or away), so the subscriptions' queues absorb it.
async fn run_out(
    shared: Arc<BridgeShared>,
    client: AsyncClient,
    subscriptions: Vec<Subscription>,
    mut turns: ReadyTurns,
    qos: QoS,
) {
    let c = &shared.counters;
    loop {
        let Ok(delivery) = turns.next(&subscriptions).await else {
            // Unsubscribed through the broker by someone else: this direction ends.
            return;
        };
        let message = delivery.message();
        if shared.came_in.take(message.topic(), message.payload()) {
            c.out_loop_skipped.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        shared.sent_out.expect(
            &shared.config.in_filters,
            message.topic(),
            message.payload(),
        );
        if client
            .publish_bytes(message.topic(), qos, false, message.payload().clone())
            .await
            .is_err()
        {
            return; // the event loop is gone: the bridge is being dropped
        }
        c.out_forwarded.fetch_add(1, Ordering::Relaxed);
    }
}
