//! A bridge to an existing MQTT broker: chosen topics go out to it, chosen topics come in from it.
//! See [`Bridge`] for how it behaves.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use rumqttc::{
    AsyncClient, ConnectReturnCode, ConnectionError, Event, EventLoop, MqttOptions, Packet, QoS,
    Request, Subscribe, SubscribeFilter, SubscribeReasonCode,
};
use serde::{Deserialize, Serialize};
use switchyard::{
    Broker, DroppedByReason, OverflowPolicy, Subscription, SubscriptionOptions, TopicSyntax,
    filter_matches_with,
};
use tokio::task::JoinHandle;

use crate::lock::lock;
use crate::receive::ReadyTurns;
use crate::transport::{TlsClientFiles, TlsFileError};

mod report;
mod sys;
mod url;

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
    /// The user name and password sent in the CONNECT (`mqtt://USER:PASSWORD@HOST:PORT`, or a user
    /// name with [`BridgeLogin::with_password_file`]), if any.
    pub login: Option<BridgeLogin>,
    /// TLS (`mqtts://`): the CA that the remote's certificate must chain to (the system's CAs
    /// without one) and a client certificate, if the remote requires one. `None`: plain TCP.
    pub tls: Option<TlsClientFiles>,
    /// How often the bridge publishes its state under `$SYS/switchyard/bridges/HOST:PORT/` in the
    /// local broker (also at each change of state); `None`, the default: never.
    pub sys_interval: Option<Duration>,
}

/// The user name and password a bridge connects with. `Debug` shows the password as `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct BridgeLogin {
    /// The user name (not empty).
    pub user: String,
    /// The password; empty: none is sent.
    pub password: String,
}

impl BridgeLogin {
    /// `user` with the password in the first line of `path` (its line ending removed): a password
    /// kept in a file that only its owner reads, rather than on a command line that other local users
    /// see in the process list.
    ///
    /// # Examples
    /// ```
    /// use switchyard_mqtt::BridgeLogin;
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let file = dir.path().join("bridge.password");
    /// std::fs::write(&file, "p@ss\n").unwrap();
    /// let login = BridgeLogin::with_password_file("bridge", &file).unwrap();
    /// assert_eq!(login.password, "p@ss");
    /// ```
    pub fn with_password_file(user: &str, path: &Path) -> Result<Self, BridgeError> {
        let refuse = |why: String| BridgeError::PasswordFile {
            path: path.display().to_string(),
            why,
        };
        if user.is_empty() {
            return Err(refuse("the user name is empty".into()));
        }
        let text =
            std::fs::read_to_string(path).map_err(|e| refuse(format!("cannot read it: {e}")))?;
        let password = text.lines().next().unwrap_or("");
        if password.is_empty() {
            return Err(refuse("its first line, the password, is empty".into()));
        }
        if password.contains('\0') {
            return Err(refuse(
                "the password contains a NUL character, which MQTT forbids".into(),
            ));
        }
        Ok(Self {
            user: user.to_string(),
            password: password.to_string(),
        })
    }
}

impl std::fmt::Debug for BridgeLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BridgeLogin")
            .field("user", &self.user)
            .field("password", &"***")
            .finish()
    }
}

impl BridgeConfig {
    /// Capacity of `rumqttc`'s request channel: messages taken from the out queues and not yet sent.
    pub const CLIENT_CHANNEL: usize = 64;

    /// A bridge to `url` (`mqtt://HOST:PORT`, or `mqtt://USER:PASSWORD@HOST:PORT` with the user
    /// name and password percent-encoded; `mqtts://` for TLS, checked against the system's CAs until
    /// [`BridgeConfig::tls`] names a CA file) with no filters yet, QoS 1, queues of 1024, `DropOldest`
    /// (while the remote is away the newest readings are the ones worth keeping).
    ///
    /// # Examples
    /// ```
    /// use switchyard_mqtt::BridgeConfig;
    ///
    /// let config = BridgeConfig::from_url("mqtt://127.0.0.1:1883").unwrap();
    /// assert_eq!((config.host.as_str(), config.port), ("127.0.0.1", 1883));
    /// let config = BridgeConfig::from_url("mqtt://bridge:p%40ss@broker.lan:1883").unwrap();
    /// let login = config.login.unwrap();
    /// assert_eq!((login.user.as_str(), login.password.as_str()), ("bridge", "p@ss"));
    /// assert!(BridgeConfig::from_url("mqtts://broker.lan:8883").unwrap().tls.is_some());
    /// assert!(BridgeConfig::from_url("http://x:1").is_err());
    /// ```
    pub fn from_url(url: &str) -> Result<Self, BridgeError> {
        let remote = url::parse(url).map_err(|why| BridgeError::Url {
            url: url::redact(url),
            why,
        })?;
        Ok(Self {
            host: remote.host,
            port: remote.port,
            out_filters: Vec::new(),
            in_filters: Vec::new(),
            client_id: format!("switchyard-bridge-{}", std::process::id()),
            qos: 1,
            queue_capacity: 1024,
            policy: OverflowPolicy::DropOldest,
            login: remote.login,
            tls: remote.tls.then(TlsClientFiles::default),
            sys_interval: None,
        })
    }

    /// `HOST:PORT` (`[HOST]:PORT` for an IPv6 address), without the user name and password.
    pub fn remote(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// Why a bridge could not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BridgeError {
    /// The remote's URL is not `mqtt://[USER[:PASSWORD]@]HOST:PORT`.
    #[error("bridge URL `{url}`: {why}")]
    Url {
        /// The URL given, its password replaced by `***`.
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
    /// A CA, certificate or key file for `mqtts://` that cannot be used.
    #[error("bridge TLS: {0}")]
    Tls(#[from] TlsFileError),
    /// The password file cannot be used.
    #[error("bridge password file {path}: {why}")]
    PasswordFile {
        /// The file given.
        path: String,
        /// What is wrong with it.
        why: String,
    },
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
    /// Whether the bridge connects over TLS (`mqtts://`).
    #[serde(default)]
    pub tls: bool,
    /// Whether the bridge is connected now.
    pub connected: bool,
    /// Successful connections (CONNACK accepted), the first included.
    pub connects: u64,
    /// Failed connection attempts and lost connections.
    pub connection_errors: u64,
    /// The last connection error, if any.
    pub last_error: Option<String>,
    /// Whether the remote has acknowledged the in filters on this connection (true with no in
    /// filters once connected).
    #[serde(default)]
    pub in_subscribed: bool,
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

    /// Remembers a message sent, if one of `filters` (read in the local broker's `syntax`) could bring
    /// it back.
    fn expect(&self, filters: &[String], syntax: TopicSyntax, topic: &str, payload: &Bytes) {
        if !filters
            .iter()
            .any(|f| filter_matches_with(f, topic, syntax))
        {
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
    in_subscribed: AtomicBool,
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
    /// The state as a line of text, reported once per change.
    state: report::StateLine,
    /// Set when the bridge stops: no `$SYS` round after it.
    sys_stopped: Mutex<bool>,
}

impl BridgeShared {
    fn stats(&self) -> BridgeStats {
        let c = &self.counters;
        let mut stats = BridgeStats {
            remote: self.config.remote(),
            tls: self.config.tls.is_some(),
            connected: c.connected.load(Ordering::Relaxed),
            connects: c.connects.load(Ordering::Relaxed),
            connection_errors: c.connection_errors.load(Ordering::Relaxed),
            last_error: lock(&c.last_error).clone(),
            in_subscribed: c.in_subscribed.load(Ordering::Relaxed),
            out_forwarded: c.out_forwarded.load(Ordering::Relaxed),
            out_loop_skipped: c.out_loop_skipped.load(Ordering::Relaxed),
            in_filters: self.config.in_filters.clone(),
            in_received: c.in_received.load(Ordering::Relaxed),
            in_published: c.in_published.load(Ordering::Relaxed),
            in_refused: c.in_refused.load(Ordering::Relaxed),
            in_loop_skipped: c.in_loop_skipped.load(Ordering::Relaxed),
            ..BridgeStats::default()
        };
        for (filter, id) in &self.out_ids {
            let Some(sub) = self.broker.subscription_stats(*id) else {
                continue;
            };
            let d = sub.dropped_by_reason;
            stats.out_dropped_by_reason.add(&d);
            stats.out_filters.push(BridgeOutFilterStats {
                filter: filter.clone(),
                id: *id,
                depth: sub.depth,
                dropped_by_reason: d,
            });
        }
        stats
    }

    /// A line for the state reporter: `bridge to HOST:PORT: WHAT`.
    fn set_state(&self, what: impl std::fmt::Display) {
        self.state
            .set(format!("bridge to {}: {what}", self.config.remote()));
    }
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
/// The client subscribes to the in filters on the remote broker and publishes what arrives into the
/// local broker. A topic the local broker refuses (a `*` level, say) is counted as `refused`.
///
/// # Reconnecting
/// A lost or refused connection is retried with exponential back-off from 100 ms to 5 s, reset by a
/// successful CONNACK. The bridge uses a clean session, so after every CONNACK it subscribes to the in
/// filters again, ahead of any publish waiting to go out: a full out direction never holds the
/// subscribe back ([`BridgeStats::in_subscribed`] says when the remote has acknowledged it). QoS 1
/// publishes that were in flight or waiting in `rumqttc` when the connection was lost are sent again
/// after the subscribe (at least once: the remote may get some twice).
///
/// # Watching it
/// [`Bridge::stats`] at any time; [`Bridge::report_changes`] for a line of text at each change of
/// state (once per change of error, not once per retry); with [`BridgeConfig::sys_interval`], the state
/// under `$SYS/switchyard/bridges/HOST:PORT/` in the local broker.
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
            .field("remote", &self.shared.config.remote())
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
            state: report::StateLine::default(),
            sys_stopped: Mutex::new(false),
        });
        let mut options = MqttOptions::new(
            shared.config.client_id.clone(),
            shared.config.host.clone(),
            shared.config.port,
        );
        options.set_keep_alive(Duration::from_secs(30));
        options.set_clean_session(true);
        if let Some(login) = &shared.config.login {
            options.set_credentials(login.user.clone(), login.password.clone());
        }
        if let Some(tls) = &shared.config.tls {
            options.set_transport(tls.transport()?);
        }
        let (client, events) = AsyncClient::new(options, BridgeConfig::CLIENT_CHANNEL);
        let mut tasks = vec![
            tokio::spawn(run_in(shared.clone(), client.clone(), events, qos)),
            tokio::spawn(run_out(
                shared.clone(),
                client,
                out_subscriptions,
                out_turns,
                qos,
            )),
        ];
        if let Some(interval) = shared.config.sys_interval {
            tasks.push(tokio::spawn(sys::publish_every(interval, shared.clone())));
        }
        Ok(Self { shared, tasks })
    }

    /// The bridge's counters now.
    pub fn stats(&self) -> BridgeStats {
        self.shared.stats()
    }

    /// A reader of [`Bridge::stats`] that other threads can keep, such as a stats endpoint's section
    /// (`switchyard serve` shows its bridges in `/v1/stats` and `/metrics` this way). Once the bridge
    /// has stopped it reads the final counters, `connected` false.
    ///
    /// ```no_run
    /// # use switchyard_mqtt::{Bridge, BridgeConfig};
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let broker = switchyard::Broker::new();
    /// # let mut config = BridgeConfig::from_url("mqtt://127.0.0.1:1883").unwrap();
    /// # config.in_filters.push("commands/#".into());
    /// let bridge = Bridge::start(&broker, config).unwrap();
    /// let read = bridge.stats_reader();
    /// std::thread::spawn(move || println!("{:?}", read()));
    /// # });
    /// ```
    pub fn stats_reader(&self) -> impl Fn() -> BridgeStats + Send + Sync + 'static {
        let shared = self.shared.clone();
        move || shared.stats()
    }

    /// Calls `report` with a line of text (`bridge to HOST:PORT: connected`, `bridge to HOST:PORT:
    /// cannot connect: ...`) now and at each change of the bridge's state: once per change, not once
    /// per retry. `report` runs on the bridge's task: keep it short (`eprintln!`, say).
    ///
    /// # Examples
    /// ```no_run
    /// # use switchyard_mqtt::{Bridge, BridgeConfig};
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let broker = switchyard::Broker::new();
    /// # let mut config = BridgeConfig::from_url("mqtt://127.0.0.1:1883").unwrap();
    /// # config.in_filters.push("commands/#".into());
    /// let bridge = Bridge::start(&broker, config).unwrap();
    /// bridge.report_changes(|line| eprintln!("{line}"));
    /// # });
    /// ```
    pub fn report_changes(&self, report: impl Fn(&str) + Send + Sync + 'static) {
        self.shared.state.report_to(Box::new(report));
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
        // A `stats_reader` may outlive the bridge: it is no longer connected.
        self.shared
            .counters
            .connected
            .store(false, Ordering::Relaxed);
        if self.shared.config.sys_interval.is_some() {
            sys::clear(&self.shared);
        }
    }
}

/// Back-off between connection attempts.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Drives the MQTT client: connects, reconnects with back-off, subscribes the in filters after each
/// CONNACK, and publishes what arrives into the local broker.
///
/// The subscribe never waits in `rumqttc`'s request channel, which the out direction may keep full:
/// it goes to the front of the event loop's `pending` queue, which the event loop sends before
/// anything from the channel. Publishes that were in flight or in the channel when a connection was
/// lost are kept across the reconnect (with a clean session `rumqttc` would forget them) and sent
/// again after the subscribe.
///
/// `_open` is a handle of the client, so that the request channel stays open if the out direction
/// ends.
async fn run_in(shared: Arc<BridgeShared>, _open: AsyncClient, mut events: EventLoop, qos: QoS) {
    let c = &shared.counters;
    let mut backoff = BACKOFF_MIN;
    // Publishes not acknowledged on a lost connection, to send again on the next one.
    let mut unsent: Vec<Request> = Vec::new();
    loop {
        match events.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                c.connected.store(true, Ordering::Relaxed);
                c.connects.fetch_add(1, Ordering::Relaxed);
                backoff = BACKOFF_MIN;
                events.pending.clear(); // a clean session: nothing to resume (taken into `unsent`)
                events.pending.extend(unsent.drain(..));
                let subscribe = in_subscribe(&shared.config.in_filters, qos);
                c.in_subscribed
                    .store(subscribe.is_none(), Ordering::Relaxed);
                match subscribe {
                    Some(subscribe) => {
                        events.pending.push_front(Request::Subscribe(subscribe));
                        shared.set_state("connected");
                    }
                    None => shared.set_state("connected"),
                }
            }
            Ok(Event::Incoming(Packet::SubAck(ack))) => {
                let refused: Vec<&str> = ack
                    .return_codes
                    .iter()
                    .zip(&shared.config.in_filters)
                    .filter(|(code, _)| matches!(code, SubscribeReasonCode::Failure))
                    .map(|(_, filter)| filter.as_str())
                    .collect();
                if refused.is_empty() {
                    c.in_subscribed.store(true, Ordering::Relaxed);
                    shared.set_state("connected and subscribed to the in filters");
                } else {
                    let why = format!("the remote refused the in filters {refused:?}");
                    *lock(&c.last_error) = Some(why.clone());
                    shared.set_state(format!("connected; {why}"));
                }
            }
            Ok(Event::Incoming(Packet::Publish(publish))) => {
                publish_in(&shared, &publish.topic, publish.payload);
            }
            Ok(_) => {}
            Err(e) => {
                let was_connected = c.connected.swap(false, Ordering::Relaxed);
                c.in_subscribed.store(false, Ordering::Relaxed);
                c.connection_errors.fetch_add(1, Ordering::Relaxed);
                let why = connection_error(&e, shared.config.login.is_some());
                let what = if was_connected {
                    "connection lost"
                } else {
                    "cannot connect"
                };
                shared.set_state(format_args!(
                    "{what}: {why}; retrying every {} s at most",
                    BACKOFF_MAX.as_secs()
                ));
                *lock(&c.last_error) = Some(why);
                unsent.extend(
                    events
                        .pending
                        .drain(..)
                        .filter(|r| matches!(r, Request::Publish(_))),
                );
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}

/// What went wrong, with the fix when the remote wants a user name and password that were not given.
fn connection_error(e: &ConnectionError, login_given: bool) -> String {
    match e {
        ConnectionError::ConnectionRefused(
            ConnectReturnCode::BadUserNamePassword | ConnectReturnCode::NotAuthorized,
        ) if !login_given => format!(
            "{e} (the remote wants a user name and password: give a user name with a password file, or mqtt://USER:PASSWORD@HOST:PORT)"
        ),
        _ => e.to_string(),
    }
}

/// The SUBSCRIBE of the in filters, or None without in filters.
fn in_subscribe(filters: &[String], qos: QoS) -> Option<Subscribe> {
    if filters.is_empty() {
        return None;
    }
    Some(Subscribe::new_many(
        filters.iter().map(|f| SubscribeFilter::new(f.clone(), qos)),
    ))
}

/// A message from the remote: skipped if it is the echo of one sent out, else published locally.
fn publish_in(shared: &BridgeShared, topic: &str, payload: Bytes) {
    let c = &shared.counters;
    c.in_received.fetch_add(1, Ordering::Relaxed);
    if shared.sent_out.take(topic, &payload) {
        c.in_loop_skipped.fetch_add(1, Ordering::Relaxed);
        return;
    }
    shared.came_in.expect(
        &shared.config.out_filters,
        shared.broker.limits().syntax,
        topic,
        &payload,
    );
    match shared.broker.publish(topic, payload) {
        Ok(_) => c.in_published.fetch_add(1, Ordering::Relaxed),
        Err(_) => c.in_refused.fetch_add(1, Ordering::Relaxed),
    };
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
        // The in filters are the remote broker's subscriptions: MQTT's syntax.
        shared.sent_out.expect(
            &shared.config.in_filters,
            TopicSyntax::Mqtt,
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
