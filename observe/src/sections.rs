//! Sections a service adds beside the broker's own counters: a part that runs next to the broker (an
//! MQTT listener, a bridge to another broker) shows its state in `GET /v1/stats`, under a key of its
//! own at the top level, and its series in `GET /metrics`, read at each request like the broker's.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use crate::error::ServeError;
use crate::wire::EndpointStats;

/// A part of a service that shows itself in the endpoint beside the broker: its value in
/// `GET /v1/stats` and, optionally, its series in `GET /metrics`. Both are read at each request, on
/// the endpoint's blocking pool, never on the broker's data path.
///
/// A closure that returns JSON is a section with no series:
///
/// ```
/// use switchyard::Broker;
/// use switchyard_observe::{serve, Client, ServeOptions, StatsParams};
///
/// let broker = Broker::new();
/// let options = ServeOptions::default()
///     .addr("127.0.0.1:0".parse().unwrap())
///     .section("cache", || serde_json::json!({"entries": 12}))?;
/// let endpoint = serve(&broker, options)?;
/// let stats = Client::new(&endpoint.local_addr().to_string())?.stats(&StatsParams::default())?;
/// assert_eq!(stats.sections["cache"]["entries"], 12);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// A section with series implements the trait:
///
/// ```
/// use switchyard_observe::{MetricsWriter, StatsSection};
///
/// struct Uplink { connected: bool, sent: u64 }
///
/// impl StatsSection for Uplink {
///     fn json(&self) -> serde_json::Value {
///         serde_json::json!({"connected": self.connected, "sent": self.sent})
///     }
///     fn metrics(&self, out: &mut MetricsWriter<'_, '_>) -> std::fmt::Result {
///         out.gauge("myservice_uplink_connected", "Whether the uplink is connected.",
///                   [([("uplink", "main")], f64::from(u8::from(self.connected)))])?;
///         out.counter("myservice_uplink_sent", "Messages sent up.", [([("uplink", "main")], self.sent)])
///     }
/// }
/// ```
pub trait StatsSection: Send + Sync + 'static {
    /// The section's value in `GET /v1/stats` now.
    fn json(&self) -> serde_json::Value;

    /// Writes the section's series into `GET /metrics`; none by default.
    fn metrics(&self, out: &mut MetricsWriter<'_, '_>) -> fmt::Result {
        let _ = out;
        Ok(())
    }
}

impl<F> StatsSection for F
where
    F: Fn() -> serde_json::Value + Send + Sync + 'static,
{
    fn json(&self) -> serde_json::Value {
        self()
    }
}

/// One section added to an endpoint ([`crate::ServeOptions::section`]): its key in `GET /v1/stats`
/// and what it reads.
#[derive(Clone)]
pub struct Section {
    /// Its key at the top level of `GET /v1/stats`.
    pub key: String,
    /// What it reads.
    pub source: Arc<dyn StatsSection>,
}

impl fmt::Debug for Section {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Section")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

/// Refuses a key that is empty, already taken by the snapshot or the endpoint (`totals`,
/// `selection`, ...), or taken by an earlier section: a section never hides a field of the schema.
pub(crate) fn check_key(key: &str, earlier: &[Section]) -> Result<(), ServeError> {
    let refuse = |why: String| {
        Err(ServeError::SectionKey {
            key: key.to_string(),
            why,
        })
    };
    if key.trim().is_empty() {
        return refuse("a section needs a key".into());
    }
    let schema = serde_json::to_value(EndpointStats::default()).unwrap_or_default();
    if schema.get(key).is_some() {
        return refuse("the stats snapshot has a field of that name".into());
    }
    if earlier.iter().any(|s| s.key == key) {
        return refuse("another section has that key".into());
    }
    Ok(())
}

/// Every section's value now, by key.
pub(crate) fn read_all(sections: &[Section]) -> BTreeMap<String, serde_json::Value> {
    sections
        .iter()
        .map(|s| (s.key.clone(), s.source.json()))
        .collect()
}

/// Writes the series of a [`StatsSection`] into `GET /metrics`: counter and gauge families, each
/// with one series per label set. Names follow the Prometheus conventions the broker's own series
/// use ([`crate::BrokerCollector`]): a prefix of your service's, base units, and no `_total` on a
/// counter's name (it is added).
pub struct MetricsWriter<'w, 'e> {
    encoder: &'w mut DescriptorEncoder<'e>,
}

impl MetricsWriter<'_, '_> {
    /// A counter family `name` (`_total` is added), with one series per `(labels, value)`; labels may
    /// be empty (`[] as [(&str, &str); 0]`) for a family of one series.
    pub fn counter<'l, L>(
        &mut self,
        name: &str,
        help: &str,
        series: impl IntoIterator<Item = (L, u64)>,
    ) -> fmt::Result
    where
        L: AsRef<[(&'l str, &'l str)]>,
    {
        self.family(name, help, MetricType::Counter, series, |value, series| {
            ConstCounter::new(value).encode(series)
        })
    }

    /// A gauge family `name`, with one series per `(labels, value)`.
    pub fn gauge<'l, L>(
        &mut self,
        name: &str,
        help: &str,
        series: impl IntoIterator<Item = (L, f64)>,
    ) -> fmt::Result
    where
        L: AsRef<[(&'l str, &'l str)]>,
    {
        self.family(name, help, MetricType::Gauge, series, |value, series| {
            ConstGauge::new(value).encode(series)
        })
    }

    fn family<'l, L, V>(
        &mut self,
        name: &str,
        help: &str,
        metric_type: MetricType,
        series: impl IntoIterator<Item = (L, V)>,
        encode: impl Fn(V, prometheus_client::encoding::MetricEncoder<'_>) -> fmt::Result,
    ) -> fmt::Result
    where
        L: AsRef<[(&'l str, &'l str)]>,
    {
        let mut family = self
            .encoder
            .encode_descriptor(name, help, None, metric_type)?;
        for (labels, value) in series {
            encode(value, family.encode_family(&labels.as_ref())?)?;
        }
        Ok(())
    }
}

/// The sections' series, after the broker's in `GET /metrics`.
pub(crate) struct SectionsCollector(pub(crate) Vec<Section>);

impl fmt::Debug for SectionsCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|s| &s.key))
            .finish()
    }
}

impl Collector for SectionsCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let mut out = MetricsWriter {
            encoder: &mut encoder,
        };
        for section in &self.0 {
            section.source.metrics(&mut out)?;
        }
        Ok(())
    }
}
