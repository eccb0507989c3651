//! Sections a service adds beside the broker ([`ServeOptions::section`]): each under its own key in
//! `GET /v1/stats`, read at each request, and never in place of a field of the schema.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use switchyard::Broker;
use switchyard_observe::{Client, ServeError, ServeOptions, StatsParams, serve};

fn loopback() -> ServeOptions {
    ServeOptions::default().addr("127.0.0.1:0".parse().unwrap())
}

#[test]
fn a_section_is_read_at_each_request_under_its_key_beside_the_snapshot() {
    let broker = Broker::new();
    let reads = Arc::new(AtomicU64::new(0));
    let counted = reads.clone();
    let options = loopback()
        .section(
            "uplink",
            move || serde_json::json!({ "reads": counted.fetch_add(1, Ordering::Relaxed) + 1 }),
        )
        .unwrap()
        .section("cache", || serde_json::json!([1, 2]))
        .unwrap();
    let endpoint = serve(&broker, options).unwrap();
    let client = Client::new(&endpoint.local_addr().to_string()).unwrap();
    let first = client.stats(&StatsParams::default()).unwrap();
    let second = client.stats(&StatsParams::default()).unwrap();
    assert_eq!(first.sections["uplink"]["reads"], 1);
    assert_eq!(second.sections["uplink"]["reads"], 2);
    assert_eq!(second.sections["cache"], serde_json::json!([1, 2]));
    assert_eq!(second.sections.len(), 2, "{:?}", second.sections);
    assert_eq!(second.snapshot.schema, "switchyard.stats/v1");

    // At the top level of the JSON, beside the schema's fields.
    let (_, body) = client
        .request(hyper::Method::GET, "/v1/stats", None)
        .unwrap();
    let raw: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(raw["cache"], serde_json::json!([1, 2]));
    assert!(raw["totals"].is_object());
}

#[test]
fn a_section_may_not_take_a_key_of_the_schema_or_of_another_section() {
    let refused = |options: Result<ServeOptions, ServeError>, key: &str, why: &str| {
        let err = options.expect_err(key).to_string();
        assert!(
            err.contains(&format!("`{key}`")) && err.contains(why),
            "{err}"
        );
    };
    let nothing = || serde_json::Value::Null;
    for key in ["totals", "subscriptions", "selection", "endpoint", "schema"] {
        refused(
            loopback().section(key, nothing),
            key,
            "snapshot has a field",
        );
    }
    refused(loopback().section(" ", nothing), " ", "needs a key");
    refused(
        loopback()
            .section("mqtt", nothing)
            .unwrap()
            .section("mqtt", nothing),
        "mqtt",
        "another section",
    );
    // Pushed by hand past the builder: refused when the endpoint starts.
    let mut options = loopback();
    options.sections = loopback()
        .section("a", nothing)
        .unwrap()
        .sections
        .into_iter()
        .cycle()
        .take(2)
        .collect();
    let err = serve(&Broker::new(), options).unwrap_err().to_string();
    assert!(err.contains("another section has that key"), "{err}");
}
