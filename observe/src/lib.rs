//! # switchyard-observe
//!
//! An HTTP endpoint a service starts beside its [`switchyard::Broker`], so that `switchyard stats
//! --attach`, `switchyard dashboard --attach`, `curl` and Prometheus can watch the broker from another
//! process; and the blocking [`client::Client`] those tools use.
//!
//! ```no_run
//! use switchyard::Broker;
//! use switchyard_observe::{serve, ServeOptions};
//!
//! let broker = Broker::new();
//! let endpoint = serve(&broker, ServeOptions::default())?; // 127.0.0.1:9475, read-only
//! println!("stats on http://{}/v1/stats", endpoint.local_addr());
//! // ... the service runs; dropping `endpoint` stops the server.
//! # Ok::<(), switchyard_observe::ServeError>(())
//! ```
//!
//! # Routes
//! - `GET /healthz`: `{"status":"ok"}`.
//! - `GET /v1/stats?sort=&limit=&filter=`: a `switchyard.stats/v1` snapshot ([`wire::EndpointStats`]);
//!   see [`stats`].
//! - `GET /v1/explain?topic=`: who gets this topic, a [`switchyard::Explanation`].
//! - `GET /metrics`: OpenMetrics text; see [`metrics`].
//! - Commands, only with a token ([`ServeOptions::token`]); see [`commands`]:
//!   `POST /v1/publish`, `POST /v1/taps`, `GET /v1/taps`, `GET /v1/taps/{id}`,
//!   `POST /v1/taps/{id}/pause`, `POST /v1/taps/{id}/resume`, `DELETE /v1/taps/{id}`,
//!   `PUT /v1/subscriptions/{id}/policy`.
//!
//! Every error is a JSON body `{"error": "..."}` with the status that fits: `400` for bad input
//! (with the library's own error text for topics, filters and policies), `401` for a missing or wrong
//! token, `403` for a command on a read-only endpoint, `404` for an unknown route or id, `405`, `408`
//! for a body that does not arrive in time, `413` for a body over the limit, `429` for too many taps,
//! `503` for too many connections.
//!
//! # Never on the data path
//! The server runs on its own thread with a small current-thread tokio runtime. Reading stats takes
//! the broker's control lock (as `Broker::stats` does: subscribe and unsubscribe wait, publishers and
//! receivers never do) and runs on the runtime's blocking pool, as does publishing (a `block`
//! subscription may make a publish wait), so a slow request never holds up the others.

#![warn(missing_docs)]

pub mod client;
pub mod commands;
mod http;
pub mod metrics;
mod options;
mod server;
pub mod stats;
mod taps;
pub mod wire;

use std::net::SocketAddr;
use std::path::PathBuf;

pub use options::{
    Access, DEFAULT_ADDR, DEFAULT_METRICS_SUBSCRIPTION_CAP, DEFAULT_PORT, ServeOptions,
    load_or_create_token, read_token_file,
};
pub use server::{ObserveHandle, serve};

/// Why the endpoint could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A non-loopback address without [`ServeOptions::allow_non_loopback`].
    #[error(
        "refusing to listen on {0}: it is not a loopback address; the endpoint exposes the broker's \
         counters (and, with a token, its commands), so listening beyond this machine must be asked \
         for explicitly (ServeOptions::allow_non_loopback)"
    )]
    NonLoopback(SocketAddr),
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The server thread or its runtime could not start.
    #[error("cannot start the endpoint's thread: {0}")]
    Start(std::io::Error),
    /// An empty token was given.
    #[error("the command token is empty")]
    EmptyToken,
    /// The token file could not be read or created.
    #[error("token file {}: {source}", path.display())]
    TokenFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The token file holds no token.
    #[error("token file {} is empty", .0.display())]
    EmptyTokenFile(PathBuf),
}
