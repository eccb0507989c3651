//! An MQTT listener beside a broker in this (synchronous) binary: `switchyard serve --mqtt` and
//! `switchyard dashboard --mqtt`. The listener runs on its own small tokio runtime, so the rest of the
//! binary keeps its threads.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::builder::TypedValueParser as _;
use switchyard::{Broker, OverflowPolicy};
use switchyard_mqtt::{AccessFiles, AclFile, ReloadError, Reloaded};
use switchyard_mqtt::{
    Bridge, BridgeConfig, BridgeLogin, Listener, MqttConfig, MqttServer, MqttStats, PasswordFile,
    TlsClientFiles,
};

use crate::load::parse_positive_duration;

/// Options of an MQTT listener, shared by the subcommands that start one.
#[derive(Debug, Clone, clap::Args)]
pub struct MqttListenArgs {
    /// Capacity of each MQTT subscription's queue (also how many messages a persistent session keeps
    /// per subscription while its client is away).
    #[arg(long, value_name = "N", default_value_t = MqttConfig::default().queue_capacity,
          value_parser = clap::value_parser!(u32).range(1..).map(|n| n as usize))]
    pub mqtt_queue: usize,
    /// Payload bytes one MQTT client may have queued, all its subscriptions together (kept while a
    /// persistent session's client is away): BYTES, or with a KiB, MiB or GiB suffix, or
    /// `unlimited`. A message over it is dropped for that client and counted as byte_limit. A
    /// `$share` group's queue is bounded by the same number.
    #[arg(long, value_name = "BYTES", default_value = "16MiB", value_parser = parse_queue_bytes)]
    pub mqtt_queue_bytes: QueueBytes,
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
            .queue_bytes(self.mqtt_queue_bytes.0)
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
            mqtt_queue_bytes: QueueBytes(config.queue_bytes),
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

/// `--mqtt-queue-bytes`: a bound in bytes, or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueBytes(pub Option<u64>);

/// `1048576`, `512KiB`, `16MiB`, `1GiB` (binary units, as `load` prints them), or `unlimited`.
fn parse_queue_bytes(s: &str) -> Result<QueueBytes, String> {
    if s == "unlimited" {
        return Ok(QueueBytes(None));
    }
    crate::cli_args::parse_byte_size(s)
        .map(|bytes| QueueBytes(Some(bytes)))
        .map_err(|e| format!("{e} (or `unlimited`)"))
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
    /// Bridge to an existing MQTT broker at URL (mqtt://HOST:PORT, mqtts://HOST:PORT for TLS, or
    /// with USER:PASSWORD@ before the host, percent-encoded, though other local users can see a
    /// password in the process list: --bridge-password-file is better): reconnects with back-off,
    /// and never loops a message that comes back.
    #[arg(long, value_name = "URL", value_parser = parse_bridge_url)]
    pub bridge: Option<BridgeConfig>,
    /// With an mqtts:// bridge: the CA certificates (PEM) the remote's certificate must chain to
    /// (default: the system's).
    #[arg(long, value_name = "PEM", requires = "bridge")]
    pub bridge_cafile: Option<PathBuf>,
    /// With an mqtts:// bridge: a client certificate (PEM) for a remote that requires one.
    #[arg(long, value_name = "PEM", requires_all = ["bridge", "bridge_keyfile"])]
    pub bridge_certfile: Option<PathBuf>,
    /// The private key of --bridge-certfile (PEM, unencrypted).
    #[arg(long, value_name = "PEM", requires = "bridge_certfile")]
    pub bridge_keyfile: Option<PathBuf>,
    /// The user name the bridge logs in with (not in the URL then).
    #[arg(long, value_name = "USER", requires = "bridge")]
    pub bridge_username: Option<String>,
    /// The bridge's password: the first line of PATH (a file only you can read, rather than the
    /// command line).
    #[arg(long, value_name = "PATH", requires = "bridge_username")]
    pub bridge_password_file: Option<PathBuf>,
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
    /// Refuses a --bridge without --mqtt (`mqtt`), on whose listener's runtime (`whose` MQTT listener)
    /// it runs, and a --bridge with no filter to carry either way.
    pub fn check(&self, mqtt: Option<SocketAddr>, whose: &str) -> Result<(), String> {
        if self.bridge.is_none() {
            return Ok(());
        }
        if mqtt.is_none() {
            return Err(format!(
                "--bridge needs --mqtt ADDR: the bridge runs on {whose} MQTT listener"
            ));
        }
        if self.bridge_out.is_empty() && self.bridge_in.is_empty() {
            return Err(
                "--bridge needs at least one --bridge-out FILTER (local messages to send to the \
                 remote broker) or --bridge-in FILTER (remote messages to bring in)"
                    .into(),
            );
        }
        Ok(())
    }

    /// The bridge asked for, if --bridge was given, its password file read; an error names the
    /// option or file at fault.
    pub fn config(&self) -> anyhow::Result<Option<BridgeConfig>> {
        let Some(mut config) = self.bridge.clone() else {
            return Ok(None);
        };
        config.out_filters = self.bridge_out.clone();
        config.in_filters = self.bridge_in.clone();
        config.qos = self.bridge_qos;
        config.queue_capacity = self.bridge_queue;
        if let Some(user) = &self.bridge_username {
            anyhow::ensure!(
                config.login.is_none(),
                "--bridge-username: the --bridge URL has a user name already; give it in one place"
            );
            config.login = Some(match &self.bridge_password_file {
                Some(path) => BridgeLogin::with_password_file(user, path)?,
                None => BridgeLogin {
                    user: user.clone(),
                    password: String::new(),
                },
            });
        }
        let tls_files = self.bridge_cafile.is_some() || self.bridge_certfile.is_some();
        match &mut config.tls {
            Some(tls) => {
                *tls = TlsClientFiles {
                    ca: self.bridge_cafile.clone(),
                    cert_and_key: self
                        .bridge_certfile
                        .clone()
                        .zip(self.bridge_keyfile.clone()),
                };
                // Read now, so that a file that cannot be used is refused with the arguments (the
                // bridge reads them again when it starts).
                tls.transport().context("--bridge")?;
            }
            None if tls_files => anyhow::bail!(
                "--bridge-cafile and --bridge-certfile are for TLS: write the --bridge URL as mqtts://HOST:PORT"
            ),
            None => {}
        }
        Ok(Some(config))
    }
}

/// Who may connect to the MQTT listener: `switchyard serve`'s `--mqtt-password-file` and
/// `--mqtt-allow-anonymous`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct MqttAccessArgs {
    /// Only clients with a user name and password from PATH may connect, on every listener and
    /// address (loopback, TLS and WebSockets included). PATH is a Mosquitto password file (`user:$7$...`), made with
    /// `switchyard passwd` or `mosquitto_passwd`. No user name gets CONNACK 5, a wrong one or a wrong
    /// password CONNACK 4.
    #[arg(long, value_name = "PATH", requires = "mqtt_listener")]
    pub mqtt_password_file: Option<PathBuf>,
    /// Allow anonymous clients on an MQTT address that is not a loopback address, so that anyone
    /// who can reach it may publish and subscribe. Without it, such an address needs
    /// --mqtt-password-file (or, on a TLS listener, --tls-client-ca).
    #[arg(
        long,
        requires = "mqtt_listener",
        conflicts_with = "mqtt_password_file"
    )]
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
    /// Refuses a non-loopback `addr` with neither option; the message names both. A TLS listener
    /// that requires client certificates (`client_certificates`) lets only their holders in, and
    /// passes too.
    pub fn check(&self, addr: SocketAddr, client_certificates: bool) -> Result<(), String> {
        check_mqtt_addr(
            addr,
            self.mqtt_password_file.is_some() || self.mqtt_allow_anonymous || client_certificates,
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
    /// Binds `listeners` (at least one) and serves `broker` over MQTT on all of them.
    pub fn start(
        listeners: Vec<Listener>,
        broker: &Broker,
        config: MqttConfig,
    ) -> anyhow::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("mqtt")
            .enable_all()
            .build()
            .context("starting the MQTT runtime")?;
        let sys_interval = config.sys_interval;
        let server = runtime.block_on(MqttServer::bind_listeners(
            listeners,
            broker.clone(),
            config,
        ))?;
        Ok(Self {
            server,
            runtime,
            sys_interval,
        })
    }

    /// The bound address of the first listener (the real port when 0 was asked for).
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

    /// A reader of [`MqttListener::stats`] for other threads (the stats endpoint's `mqtt` section).
    pub fn stats_reader(&self) -> impl Fn() -> MqttStats + Send + Sync + 'static {
        self.server.stats_reader()
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
        let err = neither.check(anywhere, false).unwrap_err();
        assert!(err.contains("--mqtt-password-file"), "{err}");
        assert!(err.contains("--mqtt-allow-anonymous"), "{err}");
        assert!(neither.check(loopback, false).is_ok());
        assert!(
            neither.check(anywhere, true).is_ok(),
            "client certificates are a login"
        );
        let with_file = MqttAccessArgs {
            mqtt_password_file: Some("pw".into()),
            ..MqttAccessArgs::default()
        };
        assert!(with_file.check(anywhere, false).is_ok());
        let anonymous = MqttAccessArgs {
            mqtt_allow_anonymous: true,
            ..MqttAccessArgs::default()
        };
        assert!(anonymous.check(anywhere, false).is_ok());
    }

    #[test]
    fn queue_bytes_take_binary_units_or_unlimited_and_refuse_the_rest_by_name() {
        for (text, bytes) in [
            ("1048576", Some(1 << 20)),
            ("512KiB", Some(512 << 10)),
            ("16MiB", Some(16 << 20)),
            ("2GiB", Some(2 << 30)),
            ("unlimited", None),
        ] {
            assert_eq!(parse_queue_bytes(text), Ok(QueueBytes(bytes)), "{text}");
        }
        assert!(parse_queue_bytes("0").unwrap_err().contains("at least 1"));
        assert!(
            parse_queue_bytes("16MB")
                .unwrap_err()
                .contains("unknown unit `MB`")
        );
        assert!(parse_queue_bytes("MiB").unwrap_err().contains("not a size"));
        assert!(
            parse_queue_bytes("99999999999GiB")
                .unwrap_err()
                .contains("too large")
        );
        assert_eq!(
            MqttListenArgs::default().config().queue_bytes,
            Some(MqttConfig::DEFAULT_QUEUE_BYTES)
        );
    }
}
