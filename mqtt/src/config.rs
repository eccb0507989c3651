//! [`MqttConfig`]: the listener's limits and the queue every client subscription gets.

use std::sync::Arc;
use std::time::Duration;

use switchyard::OverflowPolicy;

use crate::auth::{AclFile, PasswordFile};

/// How an [`crate::MqttServer`] is set up. `MqttConfig::default()` suits a development broker.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use switchyard::OverflowPolicy;
/// use switchyard_mqtt::MqttConfig;
///
/// let config = MqttConfig::default()
///     .max_connections(100)
///     .queue_capacity(64)
///     .queue_bytes(Some(1 << 20))
///     .policy(OverflowPolicy::DropOldest)
///     .sys_interval(Some(Duration::from_secs(1)));
/// assert!(config.validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MqttConfig {
    /// The largest packet a client may send, in bytes of remaining length; a larger one closes the
    /// connection (reason `too_large`).
    pub max_packet_size: usize,
    /// Connections served at once (past their CONNECT); a CONNECT beyond it is refused with return
    /// code 3 (server unavailable). Connections that have not sent CONNECT yet do not count here: they
    /// have their own bound, [`MqttConfig::max_pending_connects`].
    pub max_connections: usize,
    /// Connections accepted that have not sent CONNECT yet. One more closes the oldest of them (counted
    /// as `pending_limit`): a legitimate client sends CONNECT at once, so sockets left idle by a buggy
    /// or hostile peer cannot crowd it out, nor hold more than this many file descriptors for longer
    /// than [`MqttConfig::connect_timeout`].
    pub max_pending_connects: usize,
    /// Sessions kept at once (connected clients and persistent sessions whose client is away); a
    /// CONNECT that would start one more is refused with return code 3.
    pub max_sessions: usize,
    /// Subscriptions one client may hold; a filter beyond it is refused in SUBACK (0x80). With
    /// [`MqttConfig::queue_capacity`] this bounds what one session can queue.
    pub max_subscriptions: usize,
    /// QoS 1 and 2 messages sent to one client and not yet acknowledged. While the window is full the
    /// client's broker subscriptions keep queueing (and drop by their policy when full).
    pub max_inflight: usize,
    /// Capacity of each client subscription's broker queue: how far a client may fall behind, and how
    /// many messages a persistent session keeps per subscription while the client is away.
    pub queue_capacity: usize,
    /// Payload bytes one client may have queued, all its subscriptions together (one
    /// [`switchyard::ByteBudget`] per client id, kept with a persistent session); `None` for no bound.
    /// A message that would go over it is dropped for that client and counted as `byte_limit`,
    /// whatever the policy. Without it, [`MqttConfig::queue_capacity`] alone lets one slow client
    /// hold capacity × [`MqttConfig::max_packet_size`] per subscription: 1 GiB at the defaults. A
    /// shared subscription's queue (`$share/GROUP/FILTER`) belongs to no one client and is bounded
    /// by the same number on its own.
    pub queue_bytes: Option<u64>,
    /// What a full client queue does. `Block` is refused: a publisher on another connection would
    /// wait for a slow client.
    pub policy: OverflowPolicy,
    /// How long a new connection has to send its CONNECT (counted as `connect_timeout` when it does
    /// not).
    pub connect_timeout: Duration,
    /// How often `$SYS/switchyard/...` topics are published (retained); `None` turns them off.
    pub sys_interval: Option<Duration>,
    /// The users and password hashes (Mosquitto's password file, [`PasswordFile::load`]). With one,
    /// every CONNECT needs a user name (else CONNACK 5) and its password (else CONNACK 4), whatever
    /// address it comes from; without one, clients are anonymous and user names are ignored.
    pub password_file: Option<Arc<PasswordFile>>,
    /// Who may read and write which topics (Mosquitto's ACL file, [`AclFile::load`]); without one,
    /// every client may read and write every topic (but `$` topics).
    pub acl_file: Option<Arc<AclFile>>,
}

impl Default for MqttConfig {
    fn default() -> Self {
        Self {
            max_packet_size: 1 << 20,
            max_connections: 10_000,
            max_pending_connects: 128,
            max_sessions: 100_000,
            max_subscriptions: 1_000,
            max_inflight: 64,
            queue_capacity: 1024,
            queue_bytes: Some(Self::DEFAULT_QUEUE_BYTES),
            policy: OverflowPolicy::DropNewest,
            connect_timeout: Duration::from_secs(5),
            sys_interval: Some(Duration::from_secs(10)),
            password_file: None,
            acl_file: None,
        }
    }
}

/// A setting [`MqttConfig::validate`] refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A limit was zero.
    #[error("{0} must be at least 1")]
    Zero(&'static str),
    /// The in-flight window was larger than packet ids allow.
    #[error("max_inflight {0} is over 65535, the number of MQTT packet ids")]
    InflightTooLarge(usize),
    /// The overflow policy was `Block`.
    #[error(
        "the `block` policy is not allowed for MQTT clients: a slow client would stall publishers on other connections; use drop-newest or drop-oldest"
    )]
    BlockPolicy,
}

impl MqttConfig {
    /// The default [`MqttConfig::queue_bytes`]: 16 MiB a client, far above what small messages
    /// reach at the default queue capacity (1,024 of 1 KiB is 1 MiB), and 16 of the largest packets.
    pub const DEFAULT_QUEUE_BYTES: u64 = 16 << 20;

    /// Sets [`MqttConfig::max_packet_size`].
    pub fn max_packet_size(mut self, bytes: usize) -> Self {
        self.max_packet_size = bytes;
        self
    }

    /// Sets [`MqttConfig::max_connections`].
    pub fn max_connections(mut self, connections: usize) -> Self {
        self.max_connections = connections;
        self
    }

    /// Sets [`MqttConfig::max_pending_connects`].
    pub fn max_pending_connects(mut self, connections: usize) -> Self {
        self.max_pending_connects = connections;
        self
    }

    /// Sets [`MqttConfig::max_sessions`].
    pub fn max_sessions(mut self, sessions: usize) -> Self {
        self.max_sessions = sessions;
        self
    }

    /// Sets [`MqttConfig::max_subscriptions`].
    pub fn max_subscriptions(mut self, subscriptions: usize) -> Self {
        self.max_subscriptions = subscriptions;
        self
    }

    /// Sets [`MqttConfig::max_inflight`].
    pub fn max_inflight(mut self, messages: usize) -> Self {
        self.max_inflight = messages;
        self
    }

    /// Sets [`MqttConfig::queue_capacity`].
    pub fn queue_capacity(mut self, messages: usize) -> Self {
        self.queue_capacity = messages;
        self
    }

    /// Sets [`MqttConfig::queue_bytes`].
    pub fn queue_bytes(mut self, bytes: Option<u64>) -> Self {
        self.queue_bytes = bytes;
        self
    }

    /// Sets [`MqttConfig::policy`].
    pub fn policy(mut self, policy: OverflowPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Sets [`MqttConfig::connect_timeout`].
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets [`MqttConfig::sys_interval`].
    pub fn sys_interval(mut self, interval: Option<Duration>) -> Self {
        self.sys_interval = interval;
        self
    }

    /// Sets [`MqttConfig::password_file`].
    pub fn password_file(mut self, file: Option<PasswordFile>) -> Self {
        self.password_file = file.map(Arc::new);
        self
    }

    /// Sets [`MqttConfig::acl_file`].
    pub fn acl_file(mut self, file: Option<AclFile>) -> Self {
        self.acl_file = file.map(Arc::new);
        self
    }

    /// Checks every limit; the error names the first one that is wrong.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (name, value) in [
            ("max_packet_size", self.max_packet_size),
            ("max_connections", self.max_connections),
            ("max_pending_connects", self.max_pending_connects),
            ("max_sessions", self.max_sessions),
            ("max_subscriptions", self.max_subscriptions),
            ("max_inflight", self.max_inflight),
            ("queue_capacity", self.queue_capacity),
        ] {
            if value == 0 {
                return Err(ConfigError::Zero(name));
            }
        }
        if self.queue_bytes == Some(0) {
            return Err(ConfigError::Zero("queue_bytes"));
        }
        if self.max_inflight > usize::from(u16::MAX) {
            return Err(ConfigError::InflightTooLarge(self.max_inflight));
        }
        if matches!(self.policy, OverflowPolicy::Block { .. }) {
            return Err(ConfigError::BlockPolicy);
        }
        Ok(())
    }
}
