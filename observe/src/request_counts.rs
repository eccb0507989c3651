//! [`RequestCounts`]: the endpoint's own request counters, written by the server and read by the
//! `/v1/stats` and `/metrics` handlers.

use std::sync::atomic::{AtomicU64, Ordering};

use hyper::StatusCode;

use crate::wire::EndpointCounts;

/// The endpoint's own counters: requests answered, and those refused by reason; read as
/// [`EndpointCounts`] (in `/v1/stats`) and by the `/metrics` collector.
#[derive(Debug, Default)]
pub(crate) struct RequestCounts {
    requests: AtomicU64,
    unauthorized: AtomicU64,
    read_only: AtomicU64,
    bad_requests: AtomicU64,
    too_many_connections: AtomicU64,
    timed_out: AtomicU64,
    pub(crate) idle_closed: AtomicU64,
    pub(crate) accept_errors: AtomicU64,
}

impl RequestCounts {
    /// Counts one answered request, and its refusal when `status` says it was refused.
    pub(crate) fn count(&self, status: StatusCode) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let counter = match status {
            StatusCode::UNAUTHORIZED => &self.unauthorized,
            StatusCode::FORBIDDEN => &self.read_only,
            StatusCode::SERVICE_UNAVAILABLE => &self.too_many_connections,
            StatusCode::GATEWAY_TIMEOUT => &self.timed_out,
            s if s.is_client_error() => &self.bad_requests,
            _ => return,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The counts now, as `/v1/stats` shows them; `commands` says whether the endpoint takes commands.
    pub(crate) fn read(&self, commands: bool) -> EndpointCounts {
        EndpointCounts {
            requests: self.requests.load(Ordering::Relaxed),
            commands,
            unauthorized: self.unauthorized.load(Ordering::Relaxed),
            read_only: self.read_only.load(Ordering::Relaxed),
            bad_requests: self.bad_requests.load(Ordering::Relaxed),
            too_many_connections: self.too_many_connections.load(Ordering::Relaxed),
            timed_out: self.timed_out.load(Ordering::Relaxed),
            idle_closed: self.idle_closed.load(Ordering::Relaxed),
            accept_errors: self.accept_errors.load(Ordering::Relaxed),
        }
    }
}
