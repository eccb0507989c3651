//! Watching a bridge while it runs: a line per change of state (not per retry), its state under
//! `$SYS/switchyard/bridges/...`, and a remote that wants the user name and password of the URL.

mod bridge_common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bridge_common::{Mosquitto, WAIT, config, free_port, wait_for};
use switchyard::{Broker, SubscriptionOptions};
use switchyard_mqtt::{Bridge, BridgeConfig};

/// Collects the lines a bridge reports.
fn heard(bridge: &Bridge) -> Arc<Mutex<Vec<String>>> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    bridge.report_changes(move |line| sink.lock().unwrap().push(line.to_string()));
    lines
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_remote_is_reported_once_with_why_not_once_per_retry() {
    let port = free_port(); // nobody listens
    let broker = Broker::new();
    let bridge = Bridge::start(&broker, config(port, &["out/#"], &[])).unwrap();
    let lines = heard(&bridge);
    wait_for(&bridge, "three failed attempts", |s| {
        s.connection_errors >= 3
    })
    .await;
    let lines = lines.lock().unwrap().clone();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with(&format!("bridge to 127.0.0.1:{port}: cannot connect: ")),
        "{lines:?}"
    );
    assert!(lines[0].contains("refused"), "{lines:?}");
    let stats = bridge.stats();
    assert!(!stats.connected && !stats.in_subscribed, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_that_wants_a_password_gets_the_one_in_the_url() {
    let port = free_port();
    let mosquitto = Mosquitto::start_with_password(port, "bridge", "p@ss:word");
    let broker = Broker::new();

    // Without a login: refused, with the fix named.
    let anonymous = Bridge::start(&broker, config(port, &[], &["commands/#"])).unwrap();
    wait_for(&anonymous, "a refusal", |s| s.connection_errors >= 1).await;
    let why = anonymous.stats().last_error.unwrap();
    assert!(why.contains("mqtt://USER:PASSWORD@HOST:PORT"), "{why}");
    drop(anonymous);

    let url = format!("mqtt://bridge:p%40ss%3Aword@127.0.0.1:{port}");
    let mut config = BridgeConfig::from_url(&url).unwrap();
    config.in_filters = vec!["commands/#".into()];
    assert!(!format!("{config:?}").contains("p@ss"), "Debug hides it");
    let bridge = Bridge::start(&broker, config).unwrap();
    let lines = heard(&bridge);
    wait_for(&bridge, "the subscription", |s| s.in_subscribed).await;
    let commands = broker.subscribe("commands/#").unwrap();
    let login = Some(("bridge", "p@ss:word"));
    let (_mosquitto, came_in) = tokio::task::spawn_blocking(move || {
        let published = mosquitto.publish("commands/door", "open", login);
        (mosquitto, (published, commands.recv_timeout(WAIT).ok()))
    })
    .await
    .unwrap();
    assert!(came_in.0, "mosquitto_pub with the password");
    assert_eq!(came_in.1.map(|d| d.payload().clone()), Some("open".into()));
    assert_eq!(
        *lines.lock().unwrap(),
        [
            format!("bridge to 127.0.0.1:{port}: connected"),
            format!("bridge to 127.0.0.1:{port}: connected and subscribed to the in filters"),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_state_is_under_sys_while_running_and_cleared_when_the_bridge_stops() {
    let port = free_port();
    let mosquitto = Mosquitto::start(port);
    let broker = Broker::new();
    let mut config = config(port, &["out/#"], &["in/#"]);
    config.sys_interval = Some(Duration::from_secs(60)); // changes are published at once anyway
    let bridge = Bridge::start(&broker, config).unwrap();
    wait_for(&bridge, "the subscription", |s| s.in_subscribed).await;
    let prefix = format!("$SYS/switchyard/bridges/127.0.0.1:{port}");
    let retained = |topic: &str| {
        let options = SubscriptionOptions::new().receive_retained(true);
        let sub = broker.subscribe_with(topic, options).unwrap();
        sub.recv_timeout(Duration::from_millis(200))
            .ok()
            .map(|d| String::from_utf8_lossy(d.payload()).into_owned())
    };
    // A change is published at once; the round runs just after the state changes.
    let deadline = std::time::Instant::now() + WAIT;
    while retained(&format!("{prefix}/stats"))
        .is_none_or(|json| !json.contains("\"in_subscribed\":true"))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no $SYS stats with the subscription"
        );
    }
    assert_eq!(
        retained(&format!("{prefix}/connected")).as_deref(),
        Some("1")
    );
    assert_eq!(
        retained(&format!("{prefix}/last_error")).as_deref(),
        Some("none")
    );

    drop(mosquitto);
    let deadline = std::time::Instant::now() + WAIT;
    while retained(&format!("{prefix}/connected")).as_deref() != Some("0") {
        assert!(
            std::time::Instant::now() < deadline,
            "the outage not published"
        );
    }
    // The error is set just after the connection is marked lost; its round may come just after.
    while retained(&format!("{prefix}/last_error")).is_none_or(|e| e == "none") {
        assert!(
            std::time::Instant::now() < deadline,
            "the outage's error not published"
        );
    }

    drop(bridge);
    assert_eq!(retained(&format!("{prefix}/connected")), None, "cleared");
    assert_eq!(retained(&format!("{prefix}/stats")), None, "cleared");
}
