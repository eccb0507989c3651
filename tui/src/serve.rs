//! `switchyard serve`: a broker with no screen, reachable over MQTT 3.1.1, through its stats endpoint,
//! or both, and optionally bridged to an existing MQTT broker, until Ctrl-C.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use serde::Serialize;
use switchyard::{Broker, BrokerOptions, StatsSnapshot, TopicSyntax};
use switchyard_mqtt::{BridgeConfig, BridgeStats, Listener, MqttStats, TransportKind};

use crate::export::write_json_atomic;
use crate::mqtt_listener::{BridgeArgs, MqttListenArgs, MqttListener};
use crate::mqtt_transport_args::MqttTransportArgs;
use crate::stats_sections;
use crate::terminal_text::escape_controls;

/// Options of `switchyard serve`.
#[derive(Debug, Clone, clap::Args)]
#[command(group(clap::ArgGroup::new("listen")
    .args(["mqtt", "mqtt_tls", "mqtt_ws", "mqtt_wss", "serve"]).required(true).multiple(true)))]
#[command(group(clap::ArgGroup::new("mqtt_listener")
    .args(["mqtt", "mqtt_tls", "mqtt_ws", "mqtt_wss"]).multiple(true)))]
pub struct ServeArgs {
    /// Listen for MQTT 3.1.1 clients on ADDR, e.g. 127.0.0.1:1883 or localhost:1883 (port 0 picks a
    /// free port; the bound address is printed). `serve` needs an MQTT listener (--mqtt, --mqtt-tls,
    /// --mqtt-ws, --mqtt-wss), --serve, or both.
    #[arg(long, value_name = "ADDR", value_parser = crate::cli_args::parse_socket_addr)]
    pub mqtt: Option<SocketAddr>,
    /// MQTT over TLS and WebSockets (--mqtt-tls, --mqtt-ws, --mqtt-wss ADDR) and the TLS
    /// certificates (--tls-cert, --tls-key, --tls-client-ca).
    #[command(flatten)]
    pub transports: MqttTransportArgs,
    /// Who may connect (--mqtt-password-file PATH, --mqtt-allow-anonymous).
    #[command(flatten)]
    pub access: crate::mqtt_listener::MqttAccessArgs,
    #[command(flatten)]
    pub listener: MqttListenArgs,
    /// The broker's stats endpoint (--serve ADDR and its options), for `switchyard stats --attach`,
    /// `switchyard dashboard --attach`, curl and Prometheus.
    #[command(flatten)]
    pub endpoint: crate::endpoint::EndpointArgs,
    /// The bridge to an existing MQTT broker (--bridge URL and its options).
    #[command(flatten)]
    pub bridge: BridgeArgs,
    /// When stopped, write the final `switchyard.stats/v1` snapshot with its `mqtt` and `bridges`
    /// sections to PATH (atomically; `-` is stdout).
    #[arg(long, value_name = "PATH")]
    pub json: Option<PathBuf>,
}

/// The `switchyard.stats/v1` snapshot of a served broker, with the v1 additions `mqtt` (the
/// listener: connections, closes by reason, sessions with their drops) and `bridges`.
#[derive(Debug, Serialize)]
struct ServedSnapshot {
    #[serde(flatten)]
    broker: StatsSnapshot,
    /// Absent when `serve` ran without --mqtt.
    #[serde(skip_serializing_if = "Option::is_none")]
    mqtt: Option<MqttStats>,
    bridges: Vec<BridgeStats>,
}

impl ServeArgs {
    /// The checks clap cannot make alone (see `Cli::check`).
    pub fn check(&self) -> Result<(), String> {
        self.transports.check()?;
        let plain = self.mqtt.map(|addr| (addr, false));
        for (addr, client_certificates) in plain.into_iter().chain(self.transports.addresses()) {
            self.access.check(addr, client_certificates)?;
        }
        let first_listener = self
            .mqtt
            .or_else(|| self.transports.addresses().first().map(|(addr, _)| *addr));
        self.bridge.check(first_listener, "the")
    }

    /// Whether any MQTT listener was asked for.
    fn serves_mqtt(&self) -> bool {
        self.mqtt.is_some() || self.transports.any()
    }
}

/// How long a stopping `serve` waits for its MQTT connections to close before the final snapshot.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(2);

/// Serves until SIGINT or SIGTERM (SIGHUP reloads the MQTT password and ACL files), then prints
/// what the listener and the broker counted.
pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let signals = crate::serve_signals::ServeSignals::catch()?;
    // Certificate, key and password files are arguments: one that cannot be used exits 2, as a bad
    // option does, naming the file.
    let files = args
        .transports
        .listeners(args.mqtt)
        .map_err(anyhow::Error::from)
        .and_then(|listeners| Ok((listeners, args.bridge.config()?)));
    let (listeners, bridge) = match files {
        Ok(files) => files,
        Err(e) => {
            eprintln!(
                "switchyard: error: {}",
                escape_controls(&crate::error_text::one_line(&e))
            );
            return Ok(ExitCode::from(2));
        }
    };
    // A broker that serves MQTT reads topics as MQTT does (a whole `*` level is an ordinary level).
    let syntax = if args.serves_mqtt() {
        TopicSyntax::Mqtt
    } else {
        TopicSyntax::Classic
    };
    let broker = Broker::with_options(BrokerOptions::new().topic_syntax(syntax));
    let served = Served::start(&args, &broker, listeners, bridge)?;
    // With `--json -` the snapshot owns stdout and these lines go to stderr.
    let mut out: Box<dyn Write> = match &args.json {
        Some(path) if path.as_os_str() == "-" => Box::new(std::io::stderr()),
        _ => Box::new(std::io::stdout().lock()),
    };
    served.announce(&mut out, &args)?;
    out.flush()?;
    signals.serve_until_stopped(|| served.reload_access(&args));
    served.stop_and_report(&broker, out, &args)?;
    Ok(ExitCode::SUCCESS)
}

/// What `serve` runs beside its broker.
struct Served {
    listener: Option<MqttListener>,
    endpoint: Option<switchyard_observe::ObserveHandle>,
    bridge: Option<switchyard_mqtt::Bridge>,
}

impl Served {
    /// Starts the MQTT `listeners`, the `bridge` and the stats endpoint that `args` ask for; the
    /// endpoint last, so that it shows the bridge while it runs.
    fn start(
        args: &ServeArgs,
        broker: &Broker,
        listeners: Vec<Listener>,
        bridge: Option<BridgeConfig>,
    ) -> anyhow::Result<Self> {
        let listener = if listeners.is_empty() {
            None
        } else {
            let config = args
                .listener
                .config()
                .password_file(args.access.password_file()?)
                .acl_file(args.access.acl_file()?);
            Some(MqttListener::start(listeners, broker, config)?)
        };
        let bridge = match (&listener, bridge) {
            (Some(listener), Some(config)) => Some(listener.start_bridge(broker, config)?),
            _ => None,
        };
        let sections = stats_sections::sections(listener.as_ref(), bridge.as_ref());
        let endpoint = args.endpoint.start(broker, sections)?;
        Ok(Self {
            listener,
            endpoint,
            bridge,
        })
    }

    /// SIGHUP: reads the password and ACL files again; says on stderr what is in force now, or why
    /// the old files still are.
    fn reload_access(&self, args: &ServeArgs) {
        let files = args.access.files();
        let line = match &self.listener {
            Some(_) if files == switchyard_mqtt::AccessFiles::default() => {
                "SIGHUP: no --mqtt-password-file or --mqtt-acl-file to reload".to_string()
            }
            None => "SIGHUP: no MQTT listener, nothing to reload".to_string(),
            Some(listener) => match listener.reload_access(&files) {
                Ok(r) => format!(
                    "SIGHUP: reloaded: {} users, {} ACL lines in force",
                    r.users, r.acl_lines
                ),
                Err(e) => format!("SIGHUP: reload refused, the old files stay in force: {e}"),
            },
        };
        eprintln!("switchyard serve: {}", escape_controls(&line));
    }

    /// Says where it listens (a line per MQTT listener, the first with how clients log in), and
    /// where it bridges to.
    fn announce(&self, out: &mut dyn Write, args: &ServeArgs) -> anyhow::Result<()> {
        match (&self.listener, &self.endpoint) {
            (Some(listener), _) => {
                let login = format!(
                    "{}{}",
                    match &args.access.mqtt_password_file {
                        Some(_) => ", clients log in with the password file",
                        None => "",
                    },
                    match &args.access.mqtt_acl_file {
                        Some(_) => ", topics checked against the ACL file (SIGHUP reloads)",
                        None => "",
                    }
                );
                for (i, bound) in listener.stats().listeners.iter().enumerate() {
                    let (over, address) = match bound.transport {
                        TransportKind::Tcp => ("", bound.address.clone()),
                        TransportKind::Tls => (" over TLS", bound.address.clone()),
                        TransportKind::Ws => {
                            (" over WebSockets", format!("ws://{}/", bound.address))
                        }
                        TransportKind::Wss => (
                            " over WebSockets and TLS",
                            format!("wss://{}/", bound.address),
                        ),
                    };
                    let certificates = match bound.client_certificates {
                        true => ", client certificates required",
                        false => "",
                    };
                    let first = match i {
                        0 => format!("{login} (Ctrl-C to stop)"),
                        _ => String::new(),
                    };
                    writeln!(
                        out,
                        "switchyard serve: MQTT{over} on {address}{certificates}{first}"
                    )?;
                }
            }
            (None, Some(endpoint)) => writeln!(
                out,
                "switchyard serve: stats endpoint on http://{}, no MQTT (Ctrl-C to stop)",
                endpoint.local_addr()
            )?,
            (None, None) => anyhow::bail!("serve needs --mqtt ADDR, --serve ADDR, or both"),
        }
        if let Some(bridge) = &self.bridge {
            writeln!(
                out,
                "switchyard serve: bridging to {}",
                escape_controls(&bridge.stats().remote)
            )?;
            // Connected, or why not: once per change, not once per retry.
            bridge.report_changes(|line| eprintln!("switchyard serve: {line}"));
        }
        Ok(())
    }

    /// Stops: the bridge, then every MQTT connection, then the final snapshot, so it counts them
    /// closed. Prints the stop lines and writes `--json`.
    fn stop_and_report(
        self,
        broker: &Broker,
        mut out: Box<dyn Write>,
        args: &ServeArgs,
    ) -> anyhow::Result<()> {
        let Self {
            listener,
            endpoint,
            bridge,
        } = self;
        let bridge_stats = bridge.as_ref().map(|b| b.stats());
        drop(bridge);
        if let Some(listener) = &listener
            && !listener.close_connections(SHUTDOWN_WAIT)
        {
            eprintln!(
                "switchyard serve: some MQTT connections were still closing after {SHUTDOWN_WAIT:?}"
            );
        }
        let mqtt = listener.as_ref().map(MqttListener::stats);
        drop(listener);
        drop(endpoint);
        let snapshot = broker.stats();
        let totals = snapshot.totals;
        let connections = match &mqtt {
            Some(mqtt) => format!(
                "{} connections accepted, closed by reason {}; ",
                mqtt.accepted,
                serde_json::to_string(&mqtt.closed_by_reason)?
            ),
            None => String::new(),
        };
        writeln!(
            out,
            "switchyard serve: stopped; {connections}broker published {}, delivered {}, dropped {}",
            totals.published, totals.delivered, totals.dropped
        )?;
        if let Some(stats) = &bridge_stats {
            writeln!(
                out,
                "switchyard serve: bridge {}",
                escape_controls(&serde_json::to_string(stats)?)
            )?;
        }
        drop(out);
        if let Some(path) = &args.json {
            let served = ServedSnapshot {
                broker: snapshot,
                mqtt,
                bridges: bridge_stats.into_iter().collect(),
            };
            write_json_atomic(path, &served)?;
        }
        Ok(())
    }
}
