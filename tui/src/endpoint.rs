//! `--serve ADDR` on `switchyard load` and `switchyard dashboard`: the embedded broker's stats endpoint
//! ([`switchyard_observe`]), so a second terminal (`switchyard stats --attach`, `switchyard dashboard
//! --attach`), `curl` or Prometheus can watch the run.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use switchyard::Broker;
use switchyard_observe::{ObserveHandle, Section, ServeOptions};

/// The endpoint options of the commands that embed a broker.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct EndpointArgs {
    /// Serve the broker's stats endpoint on ADDR (such as 127.0.0.1:9475; port 0 picks a free port).
    /// The bound address is printed on stderr as `switchyard: stats endpoint on http://ADDR`.
    #[arg(long, value_name = "ADDR", value_parser = crate::cli_args::parse_socket_addr)]
    pub serve: Option<SocketAddr>,
    /// With --serve: turn commands on (publish, taps, policy changes) for requests that carry the token
    /// in PATH as `Authorization: Bearer <token>`; the file is created (mode 0600, a fresh random
    /// token) when it does not exist. Without it the endpoint is read-only.
    #[arg(long, value_name = "PATH", requires = "serve")]
    pub serve_token_file: Option<PathBuf>,
    /// With --serve: allow an ADDR that is not a loopback address (the endpoint is then reachable from
    /// other machines).
    #[arg(long, requires = "serve")]
    pub serve_non_loopback: bool,
}

impl EndpointArgs {
    /// Starts the endpoint when --serve was given, with `sections` beside the broker's counters (the
    /// bridges, say; see [`crate::stats_sections`]), and says where on stderr.
    pub fn start(
        &self,
        broker: &Broker,
        sections: Vec<Section>,
    ) -> anyhow::Result<Option<ObserveHandle>> {
        let Some(addr) = self.serve else {
            return Ok(None);
        };
        let mut options = ServeOptions::default()
            .addr(addr)
            .allow_non_loopback(self.serve_non_loopback);
        options.sections = sections;
        let mut note = "read-only";
        if let Some(path) = &self.serve_token_file {
            let (with_token, created) = options.token_file(path)?;
            options = with_token;
            note = if created {
                "commands on, token created in the token file"
            } else {
                "commands on, token from the token file"
            };
        }
        let handle = switchyard_observe::serve(broker, options)
            .with_context(|| format!("--serve {addr}"))?;
        eprintln!(
            "switchyard: stats endpoint on http://{} ({note})",
            handle.local_addr()
        );
        Ok(Some(handle))
    }
}
