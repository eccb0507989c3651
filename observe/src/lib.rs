//! # switchyard-observe
//!
//! An HTTP endpoint a service starts beside its [`switchyard::Broker`], so that `switchyard stats
//! --attach`, `switchyard dashboard --attach`, `curl` and Prometheus can watch the broker from another
//! process; and the blocking [`Client`] those tools use.
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
//! - `GET /v1/stats?sort=&limit=&filter=`: a `switchyard.stats/v1` snapshot ([`EndpointStats`]); the
//!   query is a [`StatsParams`]. A service adds what runs beside its broker (an MQTT listener, a
//!   bridge) as [sections](StatsSection) of its own, which `/metrics` shows too.
//! - `GET /v1/explain?topic=`: who gets this topic, a [`switchyard::Explanation`].
//! - `GET /metrics`: OpenMetrics text; the series are listed at [`BrokerCollector`].
//! - [Commands](#commands), only with a token ([`ServeOptions::token`]).
//!
//! Every error is a JSON body `{"error": "..."}` with the status that fits: `400` for bad input
//! (with the library's own error text for topics, filters and policies), `401` for a missing or wrong
//! token, `403` for a command on a read-only endpoint, `404` for an unknown route or id, `405`, `408`
//! for a body that does not arrive in time, `413` for a body over the limit, `429` for too many taps,
//! `503` for too many connections, `504` for a publish that did not finish within
//! [`ServeOptions::command_timeout`].
//!
//! # Commands
//! Publish, taps and policy changes. Off unless the endpoint has a token.
//!
//! | route | body | answer |
//! |---|---|---|
//! | `POST /v1/publish` | [`PublishRequest`] | [`PublishResponse`] |
//! | `POST /v1/taps` | [`TapRequest`] | `201` [`TapInfo`] |
//! | `GET /v1/taps` | | `[TapInfo]` |
//! | `GET /v1/taps/{id}` | | [`TapInfo`] with `recent` |
//! | `POST /v1/taps/{id}/pause`, `/resume` | | [`TapInfo`] |
//! | `DELETE /v1/taps/{id}` | | `{"deleted": id}` |
//! | `PUT /v1/subscriptions/{id}/policy` | [`PolicyRequest`] | `{"id": id, "policy": "..."}` |
//!
//! Every command needs `Authorization: Bearer <token>`: on a read-only endpoint each answers `403`,
//! with a token missing or wrong `401`; both are counted (`endpoint` in `/v1/stats`,
//! `switchyard_endpoint_refused_total` in `/metrics`). Taps show message payloads, so reading them
//! needs the token too.
//!
//! # Never on the data path
//! The server runs on its own thread with a small current-thread tokio runtime. Reading stats takes
//! the broker's control lock (as `Broker::stats` does: subscribe and unsubscribe wait, publishers and
//! receivers never do) and runs on the runtime's blocking pool, as does publishing (a `block`
//! subscription may make a publish wait, up to [`ServeOptions::command_timeout`]), so a slow request
//! never holds up the others. Publishes take turns on one of the pool's threads, so reads never wait
//! behind a publish that waits for room.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod client;
mod commands;
mod error;
mod http;
mod metrics;
mod options;
mod pending;
mod rate_sampler;
mod request_counts;
mod sections;
mod server;
mod state;
mod stats_params;
mod stats_route;
mod taps;
mod wire;

pub use client::{Client, ClientError, DEFAULT_CLIENT_TIMEOUT};
pub use error::ServeError;
pub use metrics::{BrokerCollector, OPENMETRICS_CONTENT_TYPE};
pub use options::{
    Access, DEFAULT_ADDR, DEFAULT_COMMAND_TIMEOUT, DEFAULT_METRICS_SUBSCRIPTION_CAP, DEFAULT_PORT,
    ServeOptions, load_or_create_token, read_token_file,
};
pub use rate_sampler::RATE_WINDOW;
pub use sections::{MetricsWriter, Section, StatsSection};
pub use server::{ObserveHandle, serve};
pub use stats_params::{SortBy, StatsParams};
pub use wire::{
    EndpointCounts, EndpointStats, ErrorBody, MAX_PUBLISH_COUNT, PolicyRequest, PublishRequest,
    PublishResponse, Selection, TAP_PAYLOAD_BYTES, TapInfo, TapMessage, TapRequest,
};
