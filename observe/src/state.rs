//! [`State`]: what every request handler shares (the broker, the options, the counters, the taps, the
//! rate samples and the metrics registry), below the handlers and the server that routes to them.

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use switchyard::Broker;

use crate::metrics::MetricsEndpoint;
use crate::options::ServeOptions;
use crate::rate_sampler::RateSampler;
use crate::request_counts::RequestCounts;
use crate::taps::Taps;

/// What every request handler shares.
pub(crate) struct State {
    pub(crate) broker: Broker,
    pub(crate) options: ServeOptions,
    pub(crate) counts: Arc<RequestCounts>,
    pub(crate) taps: Taps,
    pub(crate) rates: std::sync::Mutex<RateSampler>,
    pub(crate) metrics: MetricsEndpoint,
    /// Held by the one `POST /v1/publish` that may run on the blocking pool at a time: a publish can
    /// wait on a full `block` queue for as long as that queue's policy says, and must not take the
    /// threads reads need.
    pub(crate) publish_slot: Arc<tokio::sync::Semaphore>,
    /// Connections that have not sent their first request yet.
    pub(crate) pending: crate::pending::PendingConnections,
    /// Connections open now (the server counts them against `options.max_connections`).
    pub(crate) open: AtomicUsize,
}

impl State {
    pub(crate) fn new(broker: Broker, options: ServeOptions) -> Self {
        let counts = Arc::new(RequestCounts::default());
        Self {
            pending: crate::pending::PendingConnections::new(options.max_pending_connections),
            metrics: MetricsEndpoint::new(
                &broker,
                options.metrics_subscription_cap,
                counts.clone(),
                options.sections.clone(),
            ),
            taps: Taps::new(options.max_taps),
            broker,
            options,
            counts,
            rates: std::sync::Mutex::new(RateSampler::default()),
            publish_slot: Arc::new(tokio::sync::Semaphore::new(1)),
            open: AtomicUsize::new(0),
        }
    }
}
