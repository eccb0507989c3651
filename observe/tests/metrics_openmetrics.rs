//! `/metrics` parsed by the reference OpenMetrics parser (Python `prometheus_client`, installed by
//! `scripts/test.sh`), before and after churn, with the per-subscription cap in force.
//!
//! Skips only when `python3` itself is missing; a missing `prometheus_client` package fails the test.

use std::collections::BTreeMap;
use std::process::Command;

use serde_json::Value;
use switchyard::{Broker, StatsSnapshot, Subscription, SubscriptionOptions};
use switchyard_observe::{Client, ServeOptions, serve};

const PARSE: &str = r#"
import json, sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
out = {}
for family in text_string_to_metric_families(sys.stdin.read()):
    out[family.name] = {
        "type": family.type,
        "samples": [[s.name, s.labels, s.value] for s in family.samples],
    }
print(json.dumps(out))
"#;

/// The families of `text` as the reference parser reads them, or `None` without python3.
fn parse(text: &str) -> Option<BTreeMap<String, Value>> {
    use std::io::Write;
    let mut child = match Command::new("python3")
        .args(["-c", PARSE])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => panic!("running python3: {e}"),
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the OpenMetrics parser refused the text (is prometheus-client installed? scripts/test.sh \
         installs it):\n{}\n--- text ---\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(serde_json::from_slice(&out.stdout).unwrap())
}

/// The value of the one sample `name` with `labels` in family `family`.
fn sample(
    families: &BTreeMap<String, Value>,
    family: &str,
    name: &str,
    labels: &[(&str, &str)],
) -> f64 {
    let samples = families[family]["samples"].as_array().unwrap();
    let hits: Vec<_> = samples
        .iter()
        .filter(|s| s[0] == name && labels.iter().all(|(k, v)| s[1][*k] == *v))
        .collect();
    assert_eq!(hits.len(), 1, "{family}/{name}{labels:?}: {samples:?}");
    hits[0][2].as_f64().unwrap()
}

fn series_count(families: &BTreeMap<String, Value>, family: &str) -> usize {
    families[family]["samples"].as_array().unwrap().len()
}

#[test]
fn metrics_parse_as_openmetrics_before_and_after_churn_with_the_cap_in_force() {
    let broker = Broker::new();
    let endpoint = serve(
        &broker,
        ServeOptions::default()
            .addr("127.0.0.1:0".parse().unwrap())
            .metrics_subscription_cap(5),
    )
    .unwrap();
    let client = Client::new(&endpoint.local_addr().to_string()).unwrap();

    let Some(before) = parse(&client.metrics().unwrap()) else {
        eprintln!("skipped: python3 is not installed");
        return;
    };
    assert_eq!(before["switchyard_published"]["type"], "counter");
    assert_eq!(
        sample(
            &before,
            "switchyard_published",
            "switchyard_published_total",
            &[]
        ),
        0.0
    );
    assert_eq!(
        series_count(&before, "switchyard_subscription_depth_messages"),
        0
    );

    let _subs = churn(&broker);
    let snapshot = broker.stats();
    let after = parse(&client.metrics().unwrap()).unwrap();

    assert_broker_series(&after, &snapshot);
    assert_cap_in_force(&after, &snapshot);
    assert!(after.contains_key("switchyard_endpoint_refused"));
}

/// Churn: 20 subscriptions, names with characters that need escaping, traffic, drops, removals.
/// Returns the 17 subscriptions still live.
fn churn(broker: &Broker) -> Vec<Subscription> {
    let mut subs = Vec::new();
    for i in 0..20u64 {
        let name = format!("sub \"{i}\"\\n");
        subs.push(
            broker
                .subscribe_with(
                    &format!("t/{i}/+"),
                    SubscriptionOptions::new().capacity(4).name(name),
                )
                .unwrap(),
        );
    }
    for i in 0..20u64 {
        for _ in 0..i {
            broker.publish(&format!("t/{i}/x"), "p").unwrap();
        }
    }
    broker.publish("nobody/listens", "p").unwrap();
    for s in subs.drain(..3) {
        broker.unsubscribe(s.id()).unwrap();
    }
    subs
}

/// The broker-wide series of `after` agree with `snapshot`, taken just before it.
fn assert_broker_series(after: &BTreeMap<String, Value>, snapshot: &StatsSnapshot) {
    let t = &snapshot.totals;
    assert_eq!(
        sample(
            after,
            "switchyard_published",
            "switchyard_published_total",
            &[]
        ),
        t.published as f64
    );
    assert_eq!(
        sample(
            after,
            "switchyard_unrouted",
            "switchyard_unrouted_total",
            &[]
        ),
        1.0
    );
    assert_eq!(
        sample(after, "switchyard_matched", "switchyard_matched_total", &[]),
        t.matched as f64
    );
    let by_reason: f64 = ["queue_full", "evicted", "timeout", "unsubscribed"]
        .iter()
        .map(|r| {
            sample(
                after,
                "switchyard_dropped",
                "switchyard_dropped_total",
                &[("reason", r)],
            )
        })
        .sum();
    assert_eq!(by_reason, t.dropped as f64);
    assert_eq!(
        sample(
            after,
            "switchyard_subscriptions",
            "switchyard_subscriptions",
            &[]
        ),
        17.0
    );
    assert_eq!(after["switchyard_uptime_seconds"]["type"], "gauge");
    assert_eq!(
        sample(
            after,
            "switchyard_retained_rejected",
            "switchyard_retained_rejected_total",
            &[]
        ),
        snapshot.retained.rejected as f64
    );
    assert_eq!(after["switchyard_retained_payload_bytes"]["type"], "gauge");
}

/// The cap: 5 subscriptions shown, the ones with the most drops (t/19 .. t/15), 12 left out.
fn assert_cap_in_force(after: &BTreeMap<String, Value>, snapshot: &StatsSnapshot) {
    assert_eq!(
        series_count(after, "switchyard_subscription_depth_messages"),
        5
    );
    assert_eq!(
        series_count(after, "switchyard_subscription_dropped"),
        5 * switchyard::DropReason::ALL.len()
    );
    assert_eq!(
        sample(
            after,
            "switchyard_subscription_series_omitted",
            "switchyard_subscription_series_omitted",
            &[]
        ),
        12.0
    );
    let top = &snapshot
        .subscriptions
        .iter()
        .find(|s| s.filter == "t/19/+")
        .unwrap();
    let id = top.id.to_string();
    assert_eq!(
        sample(
            after,
            "switchyard_subscription_dropped",
            "switchyard_subscription_dropped_total",
            &[("id", &id), ("reason", "queue_full")]
        ),
        15.0
    );
    let labels = &after["switchyard_subscription_capacity_messages"]["samples"][0][1];
    assert_eq!(
        labels["name"], "sub \"19\"\\n",
        "escaped and read back intact"
    );
    assert_eq!(
        sample(
            after,
            "switchyard_subscription_capacity_messages",
            "switchyard_subscription_capacity_messages",
            &[("id", &id)]
        ),
        4.0
    );
}

/// A section of the service's own (as `switchyard serve` adds its bridges): a family with labels and
/// one without, after the broker's.
struct Uplink(std::sync::atomic::AtomicU64);

impl switchyard_observe::StatsSection for Uplink {
    fn json(&self) -> Value {
        serde_json::json!({ "sent": self.0.load(std::sync::atomic::Ordering::Relaxed) })
    }

    fn metrics(&self, out: &mut switchyard_observe::MetricsWriter<'_, '_>) -> std::fmt::Result {
        let sent = self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        out.gauge(
            "myservice_uplink_connected",
            "Whether the uplink is up.",
            [([] as [(&str, &str); 0], 1.0)],
        )?;
        out.counter(
            "myservice_uplink_sent",
            "Messages sent up, by lane.",
            [([("lane", "fast")], sent), ([("lane", "slow")], 7)],
        )
    }
}

#[test]
fn a_sections_series_parse_as_openmetrics_after_the_brokers_and_are_read_at_each_scrape() {
    let broker = Broker::new();
    let options = ServeOptions::default()
        .addr("127.0.0.1:0".parse().unwrap())
        .section("uplink", Uplink(std::sync::atomic::AtomicU64::new(40)))
        .unwrap();
    let endpoint = serve(&broker, options).unwrap();
    let client = Client::new(&endpoint.local_addr().to_string()).unwrap();
    let first = client.metrics().unwrap();
    let Some(families) = parse(&first) else {
        eprintln!("skipped: python3 is not installed");
        return;
    };
    assert_eq!(families["myservice_uplink_connected"]["type"], "gauge");
    assert_eq!(families["myservice_uplink_sent"]["type"], "counter");
    let fast = [("lane", "fast")];
    assert_eq!(
        sample(
            &families,
            "myservice_uplink_sent",
            "myservice_uplink_sent_total",
            &fast
        ),
        40.0
    );
    assert_eq!(
        sample(
            &families,
            "myservice_uplink_connected",
            "myservice_uplink_connected",
            &[]
        ),
        1.0
    );
    assert!(
        families.contains_key("switchyard_published"),
        "the broker's series stay"
    );
    let again = parse(&client.metrics().unwrap()).unwrap();
    assert_eq!(
        sample(
            &again,
            "myservice_uplink_sent",
            "myservice_uplink_sent_total",
            &fast
        ),
        41.0
    );
}

#[test]
fn acknowledged_subscriptions_show_in_flight_the_window_stalls_redeliveries_and_refusals() {
    use std::time::{Duration, Instant};
    use switchyard::{AckError, AckOptions, TryAckRecvError};

    let broker = Broker::new();
    let endpoint = serve(
        &broker,
        ServeOptions::default().addr("127.0.0.1:0".parse().unwrap()),
    )
    .unwrap();
    let client = Client::new(&endpoint.local_addr().to_string()).unwrap();
    let _plain = broker.subscribe("jobs").unwrap();
    let jobs = broker
        .subscribe_acked("jobs", AckOptions::new().max_in_flight(2))
        .unwrap();
    for i in 0..4 {
        broker.publish("jobs", format!("job {i}")).unwrap();
    }
    let first = jobs.try_recv().unwrap();
    let stale = first.token();
    first.nack().unwrap();
    let again = jobs.try_recv().unwrap();
    assert_eq!(jobs.ack(stale), Err(AckError::Stale));
    let second = jobs.try_recv().unwrap();
    assert_eq!(jobs.try_recv().unwrap_err(), TryAckRecvError::WindowFull);

    // A receiver that waits on the full window counts as stalled while it waits.
    let waiter = jobs.clone();
    let waiting = std::thread::spawn(move || {
        let job = waiter.recv_timeout(Duration::from_secs(30)).unwrap();
        job.ack().unwrap();
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while jobs.ack_stats().stalled_receivers == 0 {
        assert!(Instant::now() < deadline, "the waiter never stalled");
        std::thread::sleep(Duration::from_millis(1));
    }

    let Some(stalled) = parse(&client.metrics().unwrap()) else {
        eprintln!("skipped: python3 is not installed");
        return;
    };
    let id = jobs.id().to_string();
    let of = |families: &BTreeMap<String, Value>, family: &str, name: &str| {
        sample(families, family, name, &[("id", &id)])
    };
    assert_eq!(
        sample(
            &stalled,
            "switchyard_in_flight_messages",
            "switchyard_in_flight_messages",
            &[]
        ),
        2.0
    );
    for (family, want) in [
        ("switchyard_subscription_in_flight_messages", 2.0),
        ("switchyard_subscription_window_messages", 2.0),
        ("switchyard_subscription_stalled_receivers", 1.0),
    ] {
        assert_eq!(stalled[family]["type"], "gauge", "{family}");
        assert_eq!(of(&stalled, family, family), want, "{family}");
        assert_eq!(
            series_count(&stalled, family),
            1,
            "{family}: plain has none"
        );
    }
    let counter = |families: &BTreeMap<String, Value>, family: &str| {
        assert_eq!(families[family]["type"], "counter", "{family}");
        assert_eq!(
            series_count(families, family),
            1,
            "{family}: plain has none"
        );
        of(families, family, &format!("{family}_total"))
    };
    assert_eq!(
        counter(&stalled, "switchyard_subscription_redelivered"),
        1.0
    );
    // The same broker-wide, where they stay after the subscription goes (checked below).
    let total = |families: &BTreeMap<String, Value>, family: &str| {
        assert_eq!(families[family]["type"], "counter", "{family}");
        sample(families, family, &format!("{family}_total"), &[])
    };
    assert_eq!(total(&stalled, "switchyard_redelivered"), 1.0);
    assert_eq!(total(&stalled, "switchyard_nacked"), 1.0);
    assert_eq!(
        sample(
            &stalled,
            "switchyard_ack_refused",
            "switchyard_ack_refused_total",
            &[("reason", "stale")]
        ),
        1.0
    );
    assert_eq!(counter(&stalled, "switchyard_subscription_acked"), 0.0);
    assert!(counter(&stalled, "switchyard_subscription_window_full") >= 1.0);
    let refused = |families: &BTreeMap<String, Value>, reason: &str| {
        sample(
            families,
            "switchyard_subscription_ack_refused",
            "switchyard_subscription_ack_refused_total",
            &[("id", &id), ("reason", reason)],
        )
    };
    assert_eq!(refused(&stalled, "stale"), 1.0);
    assert_eq!(refused(&stalled, "ended"), 0.0);
    assert_eq!(
        series_count(&stalled, "switchyard_subscription_ack_refused"),
        4,
        "one series per reason, for the acknowledged subscription only"
    );

    // Acks free the window: the waiter takes the third job, and nothing is stalled or in flight.
    again.ack().unwrap();
    second.ack().unwrap();
    waiting.join().unwrap();
    let settled = parse(&client.metrics().unwrap()).unwrap();
    let gauge = |family: &str| of(&settled, family, family);
    assert_eq!(gauge("switchyard_subscription_stalled_receivers"), 0.0);
    assert_eq!(gauge("switchyard_subscription_in_flight_messages"), 0.0);
    assert_eq!(counter(&settled, "switchyard_subscription_acked"), 3.0);
    assert_eq!(
        sample(
            &settled,
            "switchyard_in_flight_messages",
            "switchyard_in_flight_messages",
            &[]
        ),
        0.0
    );
    assert!(jobs.stats().balances());

    // The subscription goes; the broker-wide counters keep what it counted.
    jobs.unsubscribe();
    let gone = parse(&client.metrics().unwrap()).unwrap();
    assert_eq!(total(&gone, "switchyard_acked"), 3.0);
    assert_eq!(total(&gone, "switchyard_redelivered"), 1.0);
    assert!(
        gone.get("switchyard_subscription_redelivered")
            .and_then(|f| f["samples"].as_array())
            .is_none_or(|samples| samples.is_empty()),
        "no series for a subscription that is gone"
    );
}
