//! `switchyard`: the live dashboard (default), the headless load generator (`switchyard load`),
//! `switchyard stats`, which reads a broker's stats endpoint, an MQTT server (`switchyard serve`) and
//! `switchyard passwd`, which writes its password files.

mod cli_args;
mod dashboard;
mod endpoint;
mod error_text;
mod export;
mod filter_totals;
mod load;
mod mqtt_listener;
mod mqtt_transport_args;
mod numbers;
mod passwd;
mod radar;
mod serve;
mod serve_signals;
mod snapshot_totals;
mod stats_command;
mod stats_sections;
mod terminal_text;

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
    /// Read a broker's stats from its endpoint (`--attach ADDR`): a table, or JSON, once or every
    /// interval.
    Stats(stats_command::StatsArgs),
    /// Serve an embedded broker over MQTT 3.1.1, its stats endpoint, or both, until Ctrl-C.
    Serve(serve::ServeArgs),
    /// Create or update a password file in Mosquitto's format (`user:$7$...`), for `serve
    /// --mqtt-password-file` or Mosquitto: `passwd [-c] FILE USER` (password from standard input),
    /// `passwd -b FILE USER PASSWORD`, `passwd -D FILE USER`.
    Passwd(passwd::PasswdArgs),
}

impl Cli {
    /// What clap cannot check alone: options that only make sense together, and addresses that
    /// need an opt-in. Each message names the option to use.
    fn check(&self) -> Result<(), String> {
        match &self.command {
            Some(Command::Serve(args)) => args.check(),
            Some(Command::Dashboard(args)) => args.check(),
            Some(Command::Passwd(args)) => args.check(),
            None => self.dashboard.check(),
            _ => Ok(()),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(message) = cli.check() {
        // As clap's own refusals: `error: ...` on stderr, exit 2.
        clap::Error::raw(
            clap::error::ErrorKind::ArgumentConflict,
            format!("{message}\n"),
        )
        .exit();
    }
    let result = match cli.command {
        Some(Command::Load(args)) => load::run(args),
        Some(Command::Serve(args)) => serve::run(args),
        Some(Command::Dashboard(args)) => dashboard::run(args),
        Some(Command::Stats(args)) => stats_command::run(args),
        Some(Command::Passwd(args)) => passwd::run(args),
        None => dashboard::run(cli.dashboard),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            // An error may carry text from outside (an endpoint's answer, a remote broker's).
            eprintln!(
                "switchyard: error: {}",
                terminal_text::escape_controls(&error_text::one_line(&err))
            );
            ExitCode::FAILURE
        }
    }
}
