//! The live dashboard: `switchyard` with no arguments (or `switchyard dashboard`).
//!
//! A ratatui + crossterm screen over an embedded broker with demo traffic. The pieces:
//! - [`link`]: the one seam to a broker ([`link::BrokerLink`]); [`embedded`] implements it in-process
//!   with [`consumer`] threads and [`demo`] traffic, [`remote`] through another process's stats
//!   endpoint (`--attach ADDR`).
//! - [`app`]: the state (plain data, a [`app::Mode`]); [`keys`] turns key presses into state changes
//!   and [`app::Command`]s; [`actions`] carries commands out through the link; [`forms`] validates input
//!   with the library's own checks.
//! - [`history`]: rates computed from monotonic counters, shared by the header, chart and table.
//! - [`render`]: `impl StatefulWidget for &App` (the state: the tables' scroll positions), one module
//!   per panel.
//! - [`events`]: terminal events and the tick on which stats are sampled.
//! - [`terminal`]: raw mode and the alternate screen, restored on quit, on SIGTERM, SIGHUP and SIGINT,
//!   and on a panic.
//!
//! The UI thread never waits on the broker: sampling reads atomics, publishing runs on its own thread,
//! consumers and demo publishers run on theirs.

mod actions;
mod app;
mod consumer;
mod demo;
mod embedded;
mod events;
mod format;
mod forms;
mod history;
mod keys;
mod link;
mod remote;
mod render;
mod terminal;
mod theme;

#[cfg(test)]
mod app_tests;
#[cfg(test)]
mod consumer_tests;
#[cfg(test)]
mod embedded_tests;
#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod render_tests;

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;

use self::app::App;
use self::embedded::EmbeddedBroker;
use self::events::{Event, Events};
use self::link::BrokerLink;
use self::remote::RemoteBroker;
use self::theme::Theme;
use crate::stats_sections;

/// Options of the dashboard.
#[derive(Debug, Clone, clap::Args)]
// The access options require an MQTT listener; the dashboard's one is --mqtt (`serve` has more).
#[command(group(clap::ArgGroup::new("mqtt_listener").args(["mqtt"])))]
pub struct DashboardArgs {
    /// Start without demo traffic or demo subscriptions (press `d` to start them later).
    #[arg(long)]
    pub no_demo: bool,
    /// Directory where `e` writes `switchyard-<timestamp>.json` snapshots [default: the current
    /// directory].
    #[arg(long, value_name = "DIR")]
    pub export_dir: Option<PathBuf>,
    /// How often stats are sampled and the screen redrawn, from 100ms to 1s.
    #[arg(long, value_name = "DURATION", default_value = "250ms", value_parser = parse_refresh)]
    pub refresh: Duration,
    /// Restore durable subscriptions from this JSON file at start, and save them there after every
    /// subscribe and unsubscribe (written to a temporary file, then renamed). Messages are not saved.
    #[arg(long, value_name = "PATH")]
    pub state: Option<PathBuf>,
    /// With --state: if the file is corrupt, move it aside to PATH.corrupt-<unix seconds> and start with
    /// no durable subscriptions (without it, a corrupt file stops the dashboard and is left untouched).
    #[arg(long, requires = "state")]
    pub state_reset: bool,
    /// Show the broker of another process, through its stats endpoint at ADDR (a service's
    /// `switchyard_observe::serve`, or `switchyard load --serve`), instead of an embedded one.
    #[arg(long, value_name = "ADDR", conflicts_with_all = ["state", "serve", "no_demo", "mqtt"],
          value_parser = crate::cli_args::parse_attach)]
    pub attach: Option<String>,
    /// With --attach: the file holding the endpoint's bearer token, for commands (publish, taps,
    /// pause); without it the attached dashboard only watches.
    #[arg(long, value_name = "PATH", requires = "attach")]
    pub token_file: Option<PathBuf>,
    /// The embedded broker's stats endpoint (--serve ADDR and its options).
    #[command(flatten)]
    pub serve: crate::endpoint::EndpointArgs,
    /// Also serve the embedded broker to MQTT 3.1.1 clients on ADDR, e.g. 127.0.0.1:1883 (default
    /// limits; `switchyard serve --help` lists them).
    #[arg(long, value_name = "ADDR", value_parser = crate::cli_args::parse_socket_addr)]
    pub mqtt: Option<SocketAddr>,
    /// Who may connect to --mqtt and what they may do (--mqtt-password-file, --mqtt-acl-file,
    /// --mqtt-allow-anonymous, as on `switchyard serve`; read once: SIGHUP quits the dashboard, as a
    /// closed terminal should, so only `serve` reloads them).
    #[command(flatten)]
    pub access: crate::mqtt_listener::MqttAccessArgs,
    /// With --mqtt: a bridge to an existing MQTT broker (--bridge URL and its options, as on
    /// `switchyard serve`); its counters show in the MQTT clients view (`c`).
    #[command(flatten)]
    pub bridge: crate::mqtt_listener::BridgeArgs,
}

impl Default for DashboardArgs {
    fn default() -> Self {
        Self {
            no_demo: false,
            export_dir: None,
            refresh: DEFAULT_REFRESH,
            state: None,
            state_reset: false,
            attach: None,
            token_file: None,
            serve: crate::endpoint::EndpointArgs::default(),
            mqtt: None,
            access: crate::mqtt_listener::MqttAccessArgs::default(),
            bridge: crate::mqtt_listener::BridgeArgs::default(),
        }
    }
}

impl DashboardArgs {
    /// The checks clap cannot make alone (see `Cli::check`).
    pub fn check(&self) -> Result<(), String> {
        if let Some(addr) = self.mqtt {
            self.access.check(addr, false)?;
        }
        self.bridge.check(self.mqtt, "the dashboard's")
    }
}

/// 4 Hz: smooth enough for a live chart, cheap enough to idle at well under 1% of a core.
const DEFAULT_REFRESH: Duration = Duration::from_millis(250);

fn parse_refresh(text: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(text)
        .map_err(|e| format!("`{text}` is not a duration such as 250ms: {e}"))?;
    if d < Duration::from_millis(100) || d > Duration::from_secs(1) {
        return Err(format!("refresh must be from 100ms to 1s, got {text}"));
    }
    Ok(d)
}

/// Runs the dashboard until the user quits.
pub fn run(args: DashboardArgs) -> anyhow::Result<ExitCode> {
    if !std::io::stdout().is_terminal() {
        anyhow::bail!(
            "the dashboard needs a terminal on stdout; for scripts and CI use `switchyard load` \
             (headless, with JSON output: see `switchyard load --help`)"
        );
    }
    let export_dir = match &args.export_dir {
        Some(dir) => {
            anyhow::ensure!(
                dir.is_dir(),
                "--export-dir {} is not a directory",
                dir.display()
            );
            dir.clone()
        }
        None => PathBuf::from("."),
    };
    terminal::watch_signals().context("installing the SIGTERM/SIGHUP handler")?;
    match &args.attach {
        Some(addr) => run_attached(addr, &args, export_dir),
        None => run_embedded(args, export_dir),
    }
}

/// The dashboard on a broker in another process, through its endpoint at `addr`.
fn run_attached(addr: &str, args: &DashboardArgs, export_dir: PathBuf) -> anyhow::Result<ExitCode> {
    let token = args
        .token_file
        .as_deref()
        .map(switchyard_observe::read_token_file)
        .transpose()?;
    let commands = if token.is_some() {
        "commands through its token"
    } else {
        "watching only: no --token-file"
    };
    let link = RemoteBroker::attach(addr, token, args.refresh)
        .with_context(|| format!("attaching to {addr}"))?;
    let mut app = App::new(link.limits(), export_dir, Theme::from_env());
    app.set_attached_to(addr);
    app.log(
        app::Level::Info,
        format!("attached to {addr} ({commands}); ? lists keys"),
    );
    run_session(app, link, args.refresh)
}

/// The dashboard on a broker in this process, with its state file, endpoint and MQTT listener as
/// asked.
fn run_embedded(args: DashboardArgs, export_dir: PathBuf) -> anyhow::Result<ExitCode> {
    // A broker that serves MQTT reads topics as MQTT does (a whole `*` level is an ordinary level).
    let syntax = if args.mqtt.is_some() {
        switchyard::TopicSyntax::Mqtt
    } else {
        switchyard::TopicSyntax::Classic
    };
    let mut link = EmbeddedBroker::with_syntax(!args.no_demo, syntax)
        .context("starting the embedded broker")?;
    let state_note = match args.state {
        Some(path) => Some(link.use_state_file(path, args.state_reset)?),
        None => None,
    };
    let mqtt = args
        .mqtt
        .map(|addr| {
            let config = crate::mqtt_listener::MqttListenArgs::default()
                .config()
                .password_file(args.access.password_file()?)
                .acl_file(args.access.acl_file()?);
            link.serve_mqtt(addr, config, args.bridge.config()?)
        })
        .transpose()?;
    let sections = stats_sections::sections(link.mqtt_listener(), link.bridge());
    let endpoint = args.serve.start(link.broker(), sections)?;
    let mut app = App::new(link.limits(), export_dir, Theme::from_env());
    if let Some(note) = state_note {
        app.log(app::Level::Info, note);
    }
    if let Some(endpoint) = &endpoint {
        app.log(
            app::Level::Info,
            format!("stats endpoint on http://{}", endpoint.local_addr()),
        );
    }
    if let Some(mqtt) = mqtt {
        app.log(
            app::Level::Info,
            format!("MQTT on {mqtt}; c shows its clients"),
        );
    }
    app.log(
        app::Level::Info,
        if args.no_demo {
            "dashboard started without demo traffic: s subscribes, p publishes, d starts the demo, ? lists keys"
        } else {
            "dashboard started with demo traffic: space pauses a consumer, ? lists keys"
        },
    );

    let result = run_session(app, link, args.refresh);
    drop(endpoint); // after the terminal is back and the broker's threads have stopped
    result
}

/// Runs the event loop in the terminal until the user quits or a signal ends it; then gives the
/// terminal back, drops the link (closing MQTT connections, then stopping an embedded broker's
/// threads), and reports a signal.
fn run_session(
    mut app: App,
    mut link: impl BrokerLink,
    refresh: Duration,
) -> anyhow::Result<ExitCode> {
    let mut session = terminal::Session::enter().context("setting up the terminal")?;
    let result = event_loop(&mut session.terminal, &mut app, &mut link, refresh);
    drop(session); // the terminal is back before anything else is printed
    drop(link); // stops demo traffic and consumers after the terminal is back
    // A signal ends the loop early; after a hangup, drawing also fails: the signal is the news.
    if let Some(signal) = terminal::received() {
        terminal::report(signal);
        return Ok(ExitCode::from(terminal::exit_status(signal)));
    }
    result.map(|()| ExitCode::SUCCESS)
}

/// Fault injection for the end-to-end test of the panic path: when this variable holds a character,
/// pressing that key panics on the UI thread. Nothing else reads it.
const PANIC_KEY_VARIABLE: &str = "SWITCHYARD_TEST_PANIC_KEY";

fn event_loop(
    terminal: &mut ratatui::DefaultTerminal,
    app: &mut App,
    link: &mut dyn BrokerLink,
    refresh: Duration,
) -> anyhow::Result<()> {
    let panic_key = std::env::var(PANIC_KEY_VARIABLE)
        .ok()
        .and_then(|v| v.chars().next());
    let mut events = Events::new(refresh);
    let mut screen = render::ScreenState::default();
    while app.is_running() && terminal::received().is_none() {
        match events.next().context("reading terminal events")? {
            Event::Tick => {
                link.want_rows(&app.rows_wanted());
                app.apply(link.sample(app.table().selected_id));
            }
            Event::Key(key) => {
                if panic_key.is_some_and(|c| key.code == crossterm::event::KeyCode::Char(c)) {
                    panic!("{PANIC_KEY_VARIABLE}: the test asked for a panic on the UI thread");
                }
                if let Some(command) = keys::handle_key(app, key) {
                    actions::execute(app, command, link);
                }
            }
            Event::Resize => {}
        }
        if app.is_running() && terminal::received().is_none() {
            terminal
                .draw(|frame| frame.render_stateful_widget(&*app, frame.area(), &mut screen))
                .context("drawing the dashboard")?;
        }
    }
    Ok(())
}
