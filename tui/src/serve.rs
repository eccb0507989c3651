//! `switchyard serve`: a broker with no screen, reachable over MQTT 3.1.1, until Ctrl-C.

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::mpsc;

use anyhow::Context;
use switchyard::Broker;

use crate::mqtt_listener::{MqttListenArgs, MqttListener};

/// Options of `switchyard serve`.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Listen for MQTT 3.1.1 clients on ADDR, e.g. 127.0.0.1:1883 (port 0 picks a free port; the bound
    /// address is printed).
    #[arg(long, value_name = "ADDR")]
    pub mqtt: SocketAddr,
    #[command(flatten)]
    pub listener: MqttListenArgs,
}

/// Serves until SIGINT or SIGTERM, then prints what the listener and the broker counted.
pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let (stop_tx, stop_rx) = mpsc::channel();
    ctrlc::set_handler(move || {
        let _ = stop_tx.send(());
    })
    .context("installing the Ctrl-C handler")?;
    let broker = Broker::new();
    let listener = MqttListener::start(args.mqtt, &broker, args.listener.config())?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "switchyard serve: MQTT on {} (Ctrl-C to stop)",
        listener.local_addr()
    )?;
    out.flush()?;
    let _ = stop_rx.recv();

    let mqtt = listener.stats();
    drop(listener);
    let totals = broker.stats().totals;
    let closed = serde_json::to_string(&mqtt.closed_by_reason)?;
    writeln!(
        out,
        "switchyard serve: stopped; {} connections accepted, closed by reason {closed}; \
         broker published {}, delivered {}, dropped {}",
        mqtt.accepted, totals.published, totals.delivered, totals.dropped
    )?;
    Ok(ExitCode::SUCCESS)
}
