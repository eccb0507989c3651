//! An MQTT listener beside a broker in this (synchronous) binary: `switchyard serve --mqtt` and
//! `switchyard dashboard --mqtt`. The listener runs on its own small tokio runtime, so the rest of the
//! binary keeps its threads.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::builder::TypedValueParser as _;
use switchyard::{Broker, OverflowPolicy};
use switchyard_mqtt::{AccessFiles, AclFile, PasswordFile, ReloadError, Reloaded};
use switchyard_mqtt::{Bridge, BridgeConfig, MqttConfig, MqttServer, MqttStats};

use crate::load::parse_positive_duration;

/// Options of an MQTT listener, shared by the subcommands that start one.
#[derive(Debug, Clone, clap::Args)]
pub struct MqttListenArgs {
    /// Capacity of each MQTT subscription's queue (also how many messages a persistent session keeps
    /// per subscription while its client is away).
    #[arg(long, value_name = "N", default_value_t = MqttConfig::default().queue_capacity,
          value_parser = clap::value_parser!(u32).range(1..).map(|n| n as usize))]
    pub mqtt_queue: usize,
    /// What a full MQTT client queue does: drop-newest or drop-oldest.
    #[arg(long, value_name = "POLICY", default_value = "drop-newest", value_parser = parse_client_policy)]
    pub mqtt_policy: OverflowPolicy,
    /// Most MQTT connections at once; more are refused with CONNACK code 3.
    #[arg(long, value_name = "N", default_value_t = MqttConfig::default().max_connections,
          value_parser = clap::value_parser!(u32).range(1..).map(|n| n as usize))]
    pub mqtt_max_connections: usize,
    /// Most sessions kept at once (connected, and persistent ones whose client is away); a CONNECT
    /// that would start one more is refused with CONNACK code 3.
    #[arg(long, value_name = "N", default_value_t = MqttConfig::default().max_sessions,
          value_parser = clap::value_parser!(u32).range(1..).map(|n| n as usize))]
    pub mqtt_max_sessions: usize,
    /// Most subscriptions per client; more are refused in SUBACK (0x80).
    #[arg(long, value_name = "N", default_value_t = MqttConfig::default().max_subscriptions,
          value_parser = clap::value_parser!(u32).range(1..).map(|n| n as usize))]
    pub mqtt_max_subscriptions: usize,
    /// QoS 1/2 messages in flight to one client (sent, not yet acknowledged).
    #[arg(long, value_name = "N", default_value_t = MqttConfig::default().max_inflight,
          value_parser = clap::value_parser!(u16).range(1..).map(usize::from))]
    pub mqtt_max_inflight: usize,
    /// Largest packet a client may send, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = MqttConfig::default().max_packet_size,
          value_parser = clap::value_parser!(u32).range(16..).map(|n| n as usize))]
    pub mqtt_max_packet: usize,
    /// How often `$SYS/switchyard/...` stats topics (the listener's and the bridge's) are published.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_positive_duration)]
    pub sys_interval: Duration,
}

impl MqttListenArgs {
    /// The listener configuration these options describe.
    pub fn config(&self) -> MqttConfig {
        MqttConfig::default()
            .queue_capacity(self.mqtt_queue)
            .policy(self.mqtt_policy)
            .max_connections(self.mqtt_max_connections)
            .max_sessions(self.mqtt_max_sessions)
            .max_subscriptions(self.mqtt_max_subscriptions)
            .max_inflight(self.mqtt_max_inflight)
            .max_packet_size(self.mqtt_max_packet)
            .sys_interval(Some(self.sys_interval))
    }
}

impl Default for MqttListenArgs {
    fn default() -> Self {
        let config = MqttConfig::default();
        Self {
            mqtt_queue: config.queue_capacity,
            mqtt_policy: config.policy,
            mqtt_max_connections: config.max_connections,
            mqtt_max_sessions: config.max_sessions,
            mqtt_max_subscriptions: config.max_subscriptions,
            mqtt_max_inflight: config.max_inflight,
            mqtt_max_packet: config.max_packet_size,
            sys_interval: Duration::from_secs(10),
        }
    }
}

fn parse_client_policy(s: &str) -> Result<OverflowPolicy, String> {
    let policy = s.parse::<OverflowPolicy>().map_err(|e| e.to_string())?;
    if matches!(policy, OverflowPolicy::Block { .. }) {
        return Err(
            "`block` is not allowed for MQTT clients (a slow client would stall publishers); use drop-newest or drop-oldest"
                .to_string(),
        );
    }
    Ok(policy)
}

/// The options of a bridge to an existing MQTT broker, on `switchyard serve` and `switchyard
/// dashboard --mqtt`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct BridgeArgs {
    /// Bridge to an existing MQTT broker at URL (mqtt://HOST:PORT, or mqtt://USER:PASSWORD@HOST:PORT
    /// percent-encoded; other local users can see a password in the process list): reconnects with
    /// back-off, and never loops a message that comes back.
    #[arg(long, value_name = "URL", value_parser = parse_bridge_url)]
    pub bridge: Option<BridgeConfig>,
    /// Local messages matching FILTER go out to the bridged broker (one or more after the option,
    /// and the option may be repeated: `--bridge-out 'a/#' 'b/#'`).
    #[arg(long, value_name = "FILTER", requires = "bridge", num_args = 1..,
          value_parser = crate::cli_args::parse_bridge_filter)]
    pub bridge_out: Vec<String>,
    /// Messages matching FILTER on the bridged broker come in to this one (one or more, repeatable).
    #[arg(long, value_name = "FILTER", requires = "bridge", num_args = 1..,
          value_parser = crate::cli_args::parse_bridge_filter)]
    pub bridge_in: Vec<String>,
    /// QoS of the bridge's publishes and subscriptions: 0 or 1.
    #[arg(long, value_name = "QOS", default_value_t = 1, value_parser = clap::value_parser!(u8).range(0..=1))]
    pub bridge_qos: u8,
    /// Capacity of each --bridge-out queue: what is kept (newest first) while the bridged broker is
    /// away.
    #[arg(long, value_name = "N", default_value_t = 1024,
          value_parser = clap::value_parser!(u32).range(1..).map(|n| n as usize))]
    pub bridge_queue: usize,
}

impl BridgeArgs {
    /// The bridge asked for, if --bridge was given.
    pub fn config(&self) -> Option<BridgeConfig> {
        let mut config = self.bridge.clone()?;
        config.out_filters = self.bridge_out.clone();
        config.in_filters = self.bridge_in.clone();
        config.qos = self.bridge_qos;
        config.queue_capacity = self.bridge_queue;
        Some(config)
    }
}

/// Who may connect to the MQTT listener: `switchyard serve`'s `--mqtt-password-file` and
/// `--mqtt-allow-anonymous`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct MqttAccessArgs {
    /// With --mqtt: only clients with a user name and password from PATH may connect, on any address
    /// (loopback included). PATH is a Mosquitto password file (`user:$7$...`), made with
    /// `switchyard passwd` or `mosquitto_passwd`. No user name gets CONNACK 5, a wrong one or a wrong
    /// password CONNACK 4.
    #[arg(long, value_name = "PATH", requires = "mqtt")]
    pub mqtt_password_file: Option<PathBuf>,
    /// With --mqtt: allow anonymous clients on an ADDR that is not a loopback address, so that anyone
    /// who can reach it may publish and subscribe. Without it, such an ADDR needs
    /// --mqtt-password-file.
    #[arg(long, requires = "mqtt", conflicts_with = "mqtt_password_file")]
    pub mqtt_allow_anonymous: bool,
    /// With --mqtt: who may read and write which topics, from a Mosquitto ACL file (`user NAME`,
    /// `topic [read|write|readwrite|deny] FILTER`, `pattern ...` with %c and %u). A refused
    /// subscription gets SUBACK 0x80; a refused publish or will is acknowledged but not routed; a
    /// subscriber never gets a message it may not read. On `switchyard serve`, SIGHUP reads it (and
    /// the password file) again.
    #[arg(long, value_name = "PATH", requires = "mqtt")]
    pub mqtt_acl_file: Option<PathBuf>,
}

impl MqttAccessArgs {
    /// Refuses a non-loopback `addr` with neither option; the message names both.
    pub fn check(&self, addr: SocketAddr) -> Result<(), String> {
        check_mqtt_addr(
            addr,
            self.mqtt_password_file.is_some() || self.mqtt_allow_anonymous,
        )
    }

    /// The ACL file, read and parsed (an error names the bad line), if one was given.
    pub fn acl_file(&self) -> anyhow::Result<Option<AclFile>> {
        self.mqtt_acl_file
            .as_deref()
            .map(AclFile::load)
            .transpose()
            .map_err(Into::into)
    }

    /// Where the files are, for a reload.
    pub fn files(&self) -> AccessFiles {
        AccessFiles {
            password_file: self.mqtt_password_file.clone(),
            acl_file: self.mqtt_acl_file.clone(),
        }
    }

    /// The password file, read and parsed (an error names the bad line), if one was given.
    pub fn password_file(&self) -> anyhow::Result<Option<PasswordFile>> {
        self.mqtt_password_file
            .as_deref()
            .map(PasswordFile::load)
            .transpose()
            .map_err(Into::into)
    }
}

/// Refuses a non-loopback MQTT address unless `allowed` (a password file, or
/// `--mqtt-allow-anonymous`): as Mosquitto 2.0, a listener that leaves the machine is not open to
/// anyone by default. The message names both options.
pub fn check_mqtt_addr(addr: SocketAddr, allowed: bool) -> Result<(), String> {
    if addr.ip().is_loopback() || allowed {
        return Ok(());
    }
    Err(format!(
        "refusing to serve MQTT on {addr}: it is not a loopback address, and without a password \
         file anyone who can reach it could publish and subscribe; give --mqtt-password-file PATH \
         (made with `switchyard passwd` or mosquitto_passwd) so that clients must log in, or \
         --mqtt-allow-anonymous to let anyone in anyway"
    ))
}

fn parse_bridge_url(url: &str) -> Result<BridgeConfig, String> {
    BridgeConfig::from_url(url).map_err(|e| e.to_string())
}

/// A running MQTT listener and the runtime it runs on. Dropping it closes every connection: the
/// server is dropped first (fields drop in order), which tells its tasks to stop, then the runtime.
pub struct MqttListener {
    server: MqttServer,
    runtime: tokio::runtime::Runtime,
    /// The listener's `$SYS` interval, which its bridges use too.
    sys_interval: Option<Duration>,
}

impl MqttListener {
    /// Binds `addr` and serves `broker` over MQTT.
    pub fn start(addr: SocketAddr, broker: &Broker, config: MqttConfig) -> anyhow::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("mqtt")
            .enable_all()
            .build()
            .context("starting the MQTT runtime")?;
        let sys_interval = config.sys_interval;
        let server = runtime
            .block_on(MqttServer::bind(addr, broker.clone(), config))
            .with_context(|| format!("MQTT on {addr}"))?;
        Ok(Self {
            server,
            runtime,
            sys_interval,
        })
    }

    /// The bound address (the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// Connections, sessions and their drops now.
    pub fn stats(&self) -> MqttStats {
        self.server.stats()
    }

    /// Reads the password and ACL files again and puts them in force if both parse; see
    /// [`switchyard_mqtt::ListenerHandle::reload_access`].
    pub fn reload_access(&self, files: &AccessFiles) -> Result<Reloaded, ReloadError> {
        self.server.reload_access(files)
    }

    /// A handle on the listener's stats for other threads (the stats endpoint's `/metrics`).
    pub fn handle(&self) -> switchyard_mqtt::ListenerHandle {
        self.server.handle()
    }

    /// Closes every MQTT connection (counted as `shutdown`) and waits up to `wait` until none is
    /// open, so that a final snapshot counts them closed. Returns whether they all closed in time.
    pub fn close_connections(&self, wait: Duration) -> bool {
        self.server.close_connections();
        let deadline = std::time::Instant::now() + wait;
        loop {
            if self.server.stats().open == 0 {
                return true;
            }
            if std::time::Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Starts a bridge on the listener's runtime, publishing its `$SYS` topics at the listener's
    /// interval; it stops when dropped.
    pub fn start_bridge(
        &self,
        broker: &Broker,
        mut config: BridgeConfig,
    ) -> anyhow::Result<Bridge> {
        config.sys_interval = self.sys_interval;
        let _guard = self.runtime.enter();
        Ok(Bridge::start(broker, config)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_non_loopback_address_needs_a_password_file_or_the_anonymous_opt_in() {
        let anywhere: SocketAddr = "0.0.0.0:1883".parse().unwrap(); // checked, never bound
        let loopback: SocketAddr = "127.0.0.1:1883".parse().unwrap();
        let neither = MqttAccessArgs::default();
        let err = neither.check(anywhere).unwrap_err();
        assert!(err.contains("--mqtt-password-file"), "{err}");
        assert!(err.contains("--mqtt-allow-anonymous"), "{err}");
        assert!(neither.check(loopback).is_ok());
        let with_file = MqttAccessArgs {
            mqtt_password_file: Some("pw".into()),
            ..MqttAccessArgs::default()
        };
        assert!(with_file.check(anywhere).is_ok());
        let anonymous = MqttAccessArgs {
            mqtt_allow_anonymous: true,
            ..MqttAccessArgs::default()
        };
        assert!(anonymous.check(anywhere).is_ok());
    }
}
