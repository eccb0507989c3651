//! `switchyard serve`: a broker with no screen, reachable over MQTT 3.1.1 and optionally bridged to
//! an existing MQTT broker, until Ctrl-C.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::mpsc;

use anyhow::Context;
use serde::Serialize;
use switchyard::{Broker, BrokerOptions, StatsSnapshot, TopicSyntax};
use switchyard_mqtt::{BridgeStats, MqttStats};

use crate::export::write_json_atomic;
use crate::mqtt_listener::{BridgeArgs, MqttListenArgs, MqttListener};

/// Options of `switchyard serve`.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Listen for MQTT 3.1.1 clients on ADDR, e.g. 127.0.0.1:1883 (port 0 picks a free port; the bound
    /// address is printed).
    #[arg(long, value_name = "ADDR")]
    pub mqtt: SocketAddr,
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
    mqtt: MqttStats,
    bridges: Vec<BridgeStats>,
}

/// Serves until SIGINT or SIGTERM, then prints what the listener and the broker counted.
pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let (stop_tx, stop_rx) = mpsc::channel();
    ctrlc::set_handler(move || {
        let _ = stop_tx.send(());
    })
    .context("installing the Ctrl-C handler")?;
    // It serves MQTT, so it reads topics as MQTT does (a whole `*` level is an ordinary level).
    let broker = Broker::with_options(BrokerOptions::new().topic_syntax(TopicSyntax::Mqtt));
    let listener = MqttListener::start(args.mqtt, &broker, args.listener.config())?;
    let endpoint = args.endpoint.start(&broker)?;
    let bridge = args
        .bridge
        .config()
        .map(|config| listener.start_bridge(&broker, config))
        .transpose()?;
    // With `--json -` the snapshot owns stdout and these lines go to stderr.
    let mut out: Box<dyn Write> = match &args.json {
        Some(path) if path.as_os_str() == "-" => Box::new(std::io::stderr()),
        _ => Box::new(std::io::stdout().lock()),
    };
    writeln!(
        out,
        "switchyard serve: MQTT on {} (Ctrl-C to stop)",
        listener.local_addr()
    )?;
    if let Some(bridge) = &bridge {
        writeln!(
            out,
            "switchyard serve: bridging to {}",
            bridge.stats().remote
        )?;
        // Connected, or why not: once per change, not once per retry.
        bridge.report_changes(|line| eprintln!("switchyard serve: {line}"));
    }
    out.flush()?;
    let _ = stop_rx.recv();

    let mqtt = listener.stats();
    let bridge_stats = bridge.as_ref().map(|b| b.stats());
    drop(bridge);
    drop(listener);
    drop(endpoint);
    let snapshot = broker.stats();
    let totals = snapshot.totals;
    let closed = serde_json::to_string(&mqtt.closed_by_reason)?;
    writeln!(
        out,
        "switchyard serve: stopped; {} connections accepted, closed by reason {closed}; \
         broker published {}, delivered {}, dropped {}",
        mqtt.accepted, totals.published, totals.delivered, totals.dropped
    )?;
    if let Some(stats) = &bridge_stats {
        writeln!(
            out,
            "switchyard serve: bridge {}",
            serde_json::to_string(stats)?
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
    Ok(ExitCode::SUCCESS)
}
