//! `GET /metrics`: OpenMetrics text through `prometheus-client`, read from the broker at scrape time
//! by a [`BrokerCollector`].

use std::fmt::Write as _;
use std::sync::Arc;

use hyper::{Response, StatusCode};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::{Registry, Unit};
use switchyard::{
    AckRefusals, AckStats, AckTotals, Broker, DropReason, StatsSelection, SubscriptionStats,
};

use crate::http::{Body, HttpError, blocking, bytes_response};
use crate::request_counts::RequestCounts;
use crate::sections::{Section, SectionsCollector};

/// The content type of OpenMetrics text.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The registry `/metrics` encodes: one [`BrokerCollector`] that also reports the endpoint's own
/// counters, then the series of the service's sections ([`crate::StatsSection::metrics`]).
pub(crate) struct MetricsEndpoint {
    registry: Arc<Registry>,
}

impl MetricsEndpoint {
    pub(crate) fn new(
        broker: &Broker,
        cap: usize,
        counts: Arc<RequestCounts>,
        sections: Vec<Section>,
    ) -> Self {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(BrokerCollector {
            broker: broker.clone(),
            cap,
            endpoint: Some(counts),
        }));
        registry.register_collector(Box::new(SectionsCollector(sections)));
        Self {
            registry: Arc::new(registry),
        }
    }

    /// Encodes the registry on the blocking pool.
    pub(crate) async fn handle(&self) -> Result<Response<Body>, HttpError> {
        let registry = self.registry.clone();
        let text = blocking(move || encode(&registry)).await?.map_err(|e| {
            HttpError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot encode the metrics: {e}"),
            )
        })?;
        Ok(bytes_response(
            StatusCode::OK,
            OPENMETRICS_CONTENT_TYPE,
            text.into(),
        ))
    }
}

/// The OpenMetrics text of `registry`, ending in `# EOF`.
fn encode(registry: &Registry) -> Result<String, std::fmt::Error> {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, registry)?;
    Ok(text)
}

/// Reads a broker's counters at scrape time: the series of `GET /metrics`. Register it in your own
/// [`Registry`] to put the broker's series beside your service's:
///
/// ```
/// use prometheus_client::registry::Registry;
/// use switchyard::Broker;
/// use switchyard_observe::BrokerCollector;
///
/// let broker = Broker::new();
/// let mut registry = Registry::default();
/// registry.register_collector(Box::new(BrokerCollector::new(&broker, 100)));
/// let mut text = String::new();
/// prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
/// assert!(text.contains("switchyard_published_total 0"));
/// ```
///
/// A `BrokerCollector` is the one source of truth: it holds no metric of its own, it asks the
/// broker ([`switchyard::Broker::stats_query_by`]) on every scrape and writes what it finds. Names
/// follow Prometheus conventions: a `switchyard_` prefix, `_total` on counters (added by the crate),
/// base units (`_seconds`), labels for the split of one quantity.
///
/// | metric | type | labels |
/// |---|---|---|
/// | `switchyard_published_total` | counter | |
/// | `switchyard_unrouted_total` | counter | |
/// | `switchyard_matched_total` | counter | |
/// | `switchyard_delivered_total` | counter | |
/// | `switchyard_dropped_total` | counter | `reason` |
/// | `switchyard_queued_messages` | gauge | |
/// | `switchyard_in_flight_messages` | gauge | |
/// | `switchyard_subscriptions` | gauge | |
/// | `switchyard_uptime_seconds` | gauge | |
/// | `switchyard_acked_total`, `switchyard_nacked_total`, `switchyard_ack_expired_total`, `switchyard_handed_back_total`, `switchyard_redelivered_total`, `switchyard_window_full_total` | counter | |
/// | `switchyard_ack_refused_total` | counter | `reason` |
/// | `switchyard_subscription_depth_messages` | gauge | `id`, `name`, `filter` |
/// | `switchyard_subscription_capacity_messages` | gauge | `id`, `name`, `filter` |
/// | `switchyard_subscription_high_water_messages` | gauge | `id`, `name`, `filter` |
/// | `switchyard_subscription_delivered_total` | counter | `id`, `name`, `filter` |
/// | `switchyard_subscription_dropped_total` | counter | `id`, `name`, `filter`, `reason` |
/// | `switchyard_subscription_in_flight_messages` | gauge | `id`, `name`, `filter` (acknowledged only) |
/// | `switchyard_subscription_window_messages` | gauge | `id`, `name`, `filter` (acknowledged only) |
/// | `switchyard_subscription_stalled_receivers` | gauge | `id`, `name`, `filter` (acknowledged only) |
/// | `switchyard_subscription_acked_total` | counter | `id`, `name`, `filter` (acknowledged only) |
/// | `switchyard_subscription_redelivered_total` | counter | `id`, `name`, `filter` (acknowledged only) |
/// | `switchyard_subscription_window_full_total` | counter | `id`, `name`, `filter` (acknowledged only) |
/// | `switchyard_subscription_ack_refused_total` | counter | `id`, `name`, `filter`, `reason` (acknowledged only) |
/// | `switchyard_subscription_series_omitted` | gauge | |
/// | `switchyard_endpoint_requests_total` | counter | |
/// | `switchyard_endpoint_refused_total` | counter | `reason` |
///
/// Per-subscription series are capped at [`crate::ServeOptions::metrics_subscription_cap`]
/// (default [`crate::DEFAULT_METRICS_SUBSCRIPTION_CAP`]): the subscriptions with the most drops,
/// then the most messages queued or in flight, so the interesting ones are the ones shown; how many
/// were left out is `switchyard_subscription_series_omitted`. The broker-wide series always cover
/// everything. The acknowledged path's series (in flight, the window, stalled receivers, acks,
/// redeliveries, refused acks) are written only for acknowledged subscriptions: a plain one has none
/// of these, and a series of zeros for it would be noise.
#[derive(Debug)]
pub struct BrokerCollector {
    broker: Broker,
    cap: usize,
    endpoint: Option<Arc<RequestCounts>>,
}

impl BrokerCollector {
    /// A collector of `broker`'s series, with per-subscription series for at most `cap`
    /// subscriptions.
    pub fn new(broker: &Broker, cap: usize) -> Self {
        Self {
            broker: broker.clone(),
            cap,
            endpoint: None,
        }
    }
}

/// One series without labels: `metric`, described as `name` and `help`.
fn single(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    metric: impl EncodeMetric,
) -> Result<(), std::fmt::Error> {
    metric.encode(encoder.encode_descriptor(name, help, unit, metric.metric_type())?)
}

fn counter(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: u64,
) -> Result<(), std::fmt::Error> {
    single(encoder, name, help, None, ConstCounter::new(value))
}

fn gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    value: f64,
) -> Result<(), std::fmt::Error> {
    single(encoder, name, help, unit, ConstGauge::new(value))
}

/// One counter family split by a `reason` label: one series per `(reason, value)`.
fn counter_by_reason<'r>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    by_reason: impl IntoIterator<Item = (&'r str, u64)>,
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (reason, value) in by_reason {
        ConstCounter::new(value).encode(family.encode_family(&[("reason", reason)])?)?;
    }
    Ok(())
}

/// Calls `each` with every shown subscription and its `id`, `name` and `filter` labels.
fn with_subscription_labels<'s>(
    shown: impl IntoIterator<Item = &'s SubscriptionStats>,
    mut each: impl FnMut(&SubscriptionStats, [(&str, &str); 3]) -> Result<(), std::fmt::Error>,
) -> Result<(), std::fmt::Error> {
    let mut id = String::new();
    for s in shown {
        id.clear();
        write!(id, "{}", s.id)?;
        let labels = [
            ("id", id.as_str()),
            ("name", s.name.as_str()),
            ("filter", s.filter.as_str()),
        ];
        each(s, labels)?;
    }
    Ok(())
}

/// One per-subscription family: `value` of each shown subscription, labelled.
fn per_subscription(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    metric_type: MetricType,
    unit: Option<&Unit>,
    shown: &[SubscriptionStats],
    value: impl Fn(&SubscriptionStats) -> u64,
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(name, help, unit, metric_type)?;
    with_subscription_labels(shown, |s, labels| {
        let series = family.encode_family(&labels)?;
        match metric_type {
            MetricType::Counter => ConstCounter::new(value(s)).encode(series),
            _ => ConstGauge::new(value(s) as f64).encode(series),
        }
    })
}

/// One family of the acknowledged path: `value` of each shown acknowledged subscription, labelled;
/// plain subscriptions get no series.
fn per_acked_subscription(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    metric_type: MetricType,
    unit: Option<&Unit>,
    shown: &[SubscriptionStats],
    value: impl Fn(&SubscriptionStats, &AckStats) -> u64,
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(name, help, unit, metric_type)?;
    with_subscription_labels(acked(shown), |s, labels| {
        let Some(ack) = &s.ack else { return Ok(()) };
        let series = family.encode_family(&labels)?;
        match metric_type {
            MetricType::Counter => ConstCounter::new(value(s, ack)).encode(series),
            _ => ConstGauge::new(value(s, ack) as f64).encode(series),
        }
    })
}

/// The acknowledged subscriptions among `shown`.
fn acked(shown: &[SubscriptionStats]) -> impl Iterator<Item = &SubscriptionStats> {
    shown.iter().filter(|s| s.ack.is_some())
}

/// The broker-wide series: publishes, matches, deliveries, drops by reason, depth, subscriptions,
/// uptime.
fn encode_broker(
    e: &mut DescriptorEncoder,
    selection: &StatsSelection,
) -> Result<(), std::fmt::Error> {
    let snapshot = &selection.snapshot;
    let t = &snapshot.totals;
    counter(
        e,
        "switchyard_published",
        "Publishes accepted.",
        t.published,
    )?;
    counter(
        e,
        "switchyard_unrouted",
        "Publishes that matched no subscription.",
        t.unrouted,
    )?;
    counter(
        e,
        "switchyard_matched",
        "Subscription deliveries matched, over every subscription ever made.",
        t.matched,
    )?;
    counter(
        e,
        "switchyard_delivered",
        "Messages handed to a receiver, over every subscription ever made.",
        t.delivered,
    )?;
    counter_by_reason(
        e,
        "switchyard_dropped",
        "Matched messages that will never be delivered, by reason.",
        DropReason::ALL.map(|r| (r.label(), selection.dropped_by_reason.get(r))),
    )?;
    gauge(
        e,
        "switchyard_queued_messages",
        "Messages queued now, over every subscription.",
        None,
        t.depth as f64,
    )?;
    gauge(
        e,
        "switchyard_in_flight_messages",
        "Messages handed out on acknowledged subscriptions and not yet settled (or waiting to be \
         delivered again), now.",
        None,
        t.in_flight as f64,
    )?;
    gauge(
        e,
        "switchyard_subscriptions",
        "Live subscriptions.",
        None,
        t.subscriptions as f64,
    )?;
    encode_ack_totals(e, &t.ack)?;
    gauge(
        e,
        "switchyard_uptime",
        "Time since the broker was created.",
        Some(&Unit::Seconds),
        snapshot.uptime_s,
    )?;
    encode_retained(e, &snapshot.retained)
}

/// The retained store: what it holds, and the retained messages it refused to keep while full
/// (delivered live all the same).
fn encode_retained(
    e: &mut DescriptorEncoder,
    retained: &switchyard::RetainedStats,
) -> Result<(), std::fmt::Error> {
    gauge(
        e,
        "switchyard_retained_messages",
        "Topics with a retained message now.",
        None,
        retained.messages as f64,
    )?;
    gauge(
        e,
        "switchyard_retained_payload",
        "Payload bytes retained now.",
        Some(&Unit::Bytes),
        retained.bytes as f64,
    )?;
    counter(
        e,
        "switchyard_retained_rejected",
        "Retained messages not kept because the store was full (they were delivered live).",
        retained.rejected,
    )
}

/// The per-subscription series of the `shown` subscriptions (the cap's pick).
fn encode_subscriptions(
    e: &mut DescriptorEncoder,
    shown: &[SubscriptionStats],
) -> Result<(), std::fmt::Error> {
    let messages = Unit::Other("messages".into());
    per_subscription(
        e,
        "switchyard_subscription_depth",
        "Messages queued now in one subscription.",
        MetricType::Gauge,
        Some(&messages),
        shown,
        |s| s.depth,
    )?;
    per_subscription(
        e,
        "switchyard_subscription_capacity",
        "Queue capacity of one subscription, per priority lane.",
        MetricType::Gauge,
        Some(&messages),
        shown,
        |s| s.capacity,
    )?;
    per_subscription(
        e,
        "switchyard_subscription_high_water",
        "The largest depth seen in one subscription.",
        MetricType::Gauge,
        Some(&messages),
        shown,
        |s| s.high_water,
    )?;
    per_subscription(
        e,
        "switchyard_subscription_delivered",
        "Messages one subscription handed to a receiver.",
        MetricType::Counter,
        None,
        shown,
        |s| s.delivered,
    )?;
    encode_subscription_drops(e, shown)?;
    encode_acked_subscriptions(e, shown)
}

/// The acknowledged path's series of the shown acknowledged subscriptions: what is in flight against
/// the window, receivers stalled on a full window, acks, redeliveries and refused acks.
fn encode_acked_subscriptions(
    e: &mut DescriptorEncoder,
    shown: &[SubscriptionStats],
) -> Result<(), std::fmt::Error> {
    let messages = Unit::Other("messages".into());
    per_acked_subscription(
        e,
        "switchyard_subscription_in_flight",
        "Messages one acknowledged subscription handed out and has not had settled, or waits to \
         deliver again, now.",
        MetricType::Gauge,
        Some(&messages),
        shown,
        |s, _| s.in_flight,
    )?;
    per_acked_subscription(
        e,
        "switchyard_subscription_window",
        "The window of one acknowledged subscription: at most this many messages in flight.",
        MetricType::Gauge,
        Some(&messages),
        shown,
        |_, ack| ack.max_in_flight,
    )?;
    per_acked_subscription(
        e,
        "switchyard_subscription_stalled_receivers",
        "Receivers of one acknowledged subscription waiting on a full window now.",
        MetricType::Gauge,
        None,
        shown,
        |_, ack| ack.stalled_receivers,
    )?;
    per_acked_subscription(
        e,
        "switchyard_subscription_acked",
        "Messages one acknowledged subscription had acknowledged.",
        MetricType::Counter,
        None,
        shown,
        |_, ack| ack.acked,
    )?;
    per_acked_subscription(
        e,
        "switchyard_subscription_redelivered",
        "Deliveries after a message's first one (after a nack, an expired deadline or a receiver \
         that went away), on one acknowledged subscription.",
        MetricType::Counter,
        None,
        shown,
        |_, ack| ack.redelivered,
    )?;
    per_acked_subscription(
        e,
        "switchyard_subscription_window_full",
        "Receives on one acknowledged subscription that found messages queued but the window full.",
        MetricType::Counter,
        None,
        shown,
        |_, ack| ack.window_full,
    )?;
    encode_ack_refusals(e, shown)
}

/// `switchyard_subscription_ack_refused`: each shown acknowledged subscription's refused acks, nacks,
/// terms and in-progress calls, by reason.
fn encode_ack_refusals(
    e: &mut DescriptorEncoder,
    shown: &[SubscriptionStats],
) -> Result<(), std::fmt::Error> {
    let mut family = e.encode_descriptor(
        "switchyard_subscription_ack_refused",
        "Acks (and nacks, terms, in-progress calls) one acknowledged subscription refused, by reason.",
        None,
        MetricType::Counter,
    )?;
    with_subscription_labels(acked(shown), |s, [id, name, filter]| {
        let Some(ack) = &s.ack else { return Ok(()) };
        for (reason, value) in refusals_by_reason(&ack.refused) {
            let labels = [id, name, filter, ("reason", reason)];
            ConstCounter::new(value).encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    })
}

/// The acknowledged path broker-wide (`totals.ack`): acks, nacks, expiries, hand-backs,
/// redeliveries, receives that found a window full, and refused acks by reason, over every
/// acknowledged subscription ever made. Written on every broker, zeros where nothing was ever
/// acknowledged, like the other broker-wide counters.
fn encode_ack_totals(e: &mut DescriptorEncoder, a: &AckTotals) -> Result<(), std::fmt::Error> {
    for (name, help, value) in [
        (
            "switchyard_acked",
            "Messages acknowledged, over every acknowledged subscription ever made.",
            a.acked,
        ),
        (
            "switchyard_nacked",
            "Delivery attempts handed back by a nack, over every acknowledged subscription ever made.",
            a.nacked,
        ),
        (
            "switchyard_ack_expired",
            "Delivery attempts whose ack deadline passed, over every acknowledged subscription ever \
             made.",
            a.expired,
        ),
        (
            "switchyard_handed_back",
            "Delivery attempts handed back because their receiver went away, over every acknowledged \
             subscription ever made.",
            a.handed_back,
        ),
        (
            "switchyard_redelivered",
            "Deliveries after a message's first one, over every acknowledged subscription ever made.",
            a.redelivered,
        ),
        (
            "switchyard_window_full",
            "Receives that found messages queued but the window full, over every acknowledged \
             subscription ever made.",
            a.window_full,
        ),
    ] {
        counter(e, name, help, value)?;
    }
    counter_by_reason(
        e,
        "switchyard_ack_refused",
        "Acks (and nacks, terms, in-progress calls) refused, by reason, over every acknowledged \
         subscription ever made.",
        refusals_by_reason(&a.refused),
    )
}

/// Refused acks by the reason label `/metrics` gives them, in the order of the stats schema.
fn refusals_by_reason(r: &AckRefusals) -> [(&'static str, u64); 4] {
    [
        ("ended", r.ended),
        ("stale", r.stale),
        ("wrong_subscription", r.wrong_subscription),
        ("closed", r.closed),
    ]
}

/// `switchyard_subscription_dropped`: each shown subscription's drops, by reason.
fn encode_subscription_drops(
    e: &mut DescriptorEncoder,
    shown: &[SubscriptionStats],
) -> Result<(), std::fmt::Error> {
    let mut family = e.encode_descriptor(
        "switchyard_subscription_dropped",
        "Messages one subscription dropped, by reason.",
        None,
        MetricType::Counter,
    )?;
    with_subscription_labels(shown, |s, [id, name, filter]| {
        for reason in DropReason::ALL {
            let labels = [id, name, filter, ("reason", reason.label())];
            ConstCounter::new(s.dropped_by_reason.get(reason))
                .encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    })
}

/// The endpoint's own series: requests answered, and those refused by reason.
fn encode_endpoint(
    e: &mut DescriptorEncoder,
    counts: &RequestCounts,
) -> Result<(), std::fmt::Error> {
    let endpoint = counts.read(false);
    counter(
        e,
        "switchyard_endpoint_requests",
        "Requests the stats endpoint answered.",
        endpoint.requests,
    )?;
    counter_by_reason(
        e,
        "switchyard_endpoint_refused",
        "Requests the stats endpoint refused, by reason.",
        [
            ("unauthorized", endpoint.unauthorized),
            ("read_only", endpoint.read_only),
            ("bad_request", endpoint.bad_requests),
            ("too_many_connections", endpoint.too_many_connections),
            ("timed_out", endpoint.timed_out),
            ("idle_closed", endpoint.idle_closed),
            ("accept_error", endpoint.accept_errors),
        ],
    )
}

impl Collector for BrokerCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let selection = self
            .broker
            .stats_query_by(None, Some(self.cap), |c| (c.dropped, c.depth + c.in_flight));
        let shown = &selection.snapshot.subscriptions;
        let e = &mut encoder;
        encode_broker(e, &selection)?;
        encode_subscriptions(e, shown)?;
        gauge(
            e,
            "switchyard_subscription_series_omitted",
            "Live subscriptions left out of the per-subscription series by the cap.",
            None,
            selection
                .snapshot
                .totals
                .subscriptions
                .saturating_sub(shown.len() as u64) as f64,
        )?;
        if let Some(counts) = &self.endpoint {
            encode_endpoint(e, counts)?;
        }
        Ok(())
    }
}
