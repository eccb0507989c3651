//! `switchyard`: the live dashboard (default), the headless load generator (`switchyard load`) and an
//! MQTT server (`switchyard serve`).

mod dashboard;
mod export;
mod load;
mod mqtt_listener;
mod numbers;
mod serve;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Switchyard: a lock-free in-memory pub/sub broker, with a live dashboard and a load generator.
#[derive(Debug, Parser)]
#[command(
    name = "switchyard",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Options of the dashboard, which runs when no subcommand is given.
    #[command(flatten)]
    dashboard: dashboard::DashboardArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Open the live dashboard on an embedded broker (the default).
    Dashboard(dashboard::DashboardArgs),
    /// Drive an embedded broker headlessly and report throughput, latency and drops.
    Load(load::LoadArgs),
    /// Serve an embedded broker over MQTT 3.1.1 until Ctrl-C.
    Serve(serve::ServeArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Load(args)) => load::run(args),
        Some(Command::Serve(args)) => serve::run(args),
        Some(Command::Dashboard(args)) => dashboard::run(args),
        None => dashboard::run(cli.dashboard),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("switchyard: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
