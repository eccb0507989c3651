//! What topics MQTT clients may use and what they mean, checked with Debian's `mosquitto_pub` and
//! `mosquitto_sub`: under the broker's MQTT topic syntax a `*` level is an ordinary level (published and
//! received literally, not a wildcard), and no client may publish under `$` (not routed, not
//! retained, counted), as Mosquitto has it. `scripts/test.sh` installs mosquitto-clients.

use std::time::Duration;

mod common;

use switchyard::{Broker, BrokerOptions, SubscriptionOptions, TopicSyntax};
use switchyard_mqtt::{MqttConfig, MqttServer};

use common::{finish, run, runtime, spawn, stdout, wait_subscribed};

/// A broker as `serve --mqtt` builds it: MQTT's topic syntax.
fn mqtt_broker() -> Broker {
    Broker::with_options(BrokerOptions::new().topic_syntax(TopicSyntax::Mqtt))
}

fn server(runtime: &tokio::runtime::Runtime, broker: &Broker) -> MqttServer {
    let config = MqttConfig::default().sys_interval(Some(Duration::from_millis(100)));
    runtime
        .block_on(MqttServer::bind("127.0.0.1:0", broker.clone(), config))
        .unwrap()
}

#[test]
fn a_star_level_is_published_and_received_literally_and_matches_only_itself() {
    let rt = runtime();
    let broker = mqtt_broker();
    let server = server(&rt, &broker);
    let addr = server.local_addr();
    let literal = spawn(
        "mosquitto_sub",
        addr,
        &["-i", "literal", "-t", "a/*", "-C", "1", "-v", "-W", "10"],
    );
    let plus = spawn(
        "mosquitto_sub",
        addr,
        &["-i", "plus", "-t", "a/+", "-C", "2", "-v", "-W", "10"],
    );
    wait_subscribed(&server, "literal", 1);
    wait_subscribed(&server, "plus", 1);
    for (topic, payload) in [("a/b", "plain"), ("a/*", "star")] {
        let out = run(
            "mosquitto_pub",
            addr,
            &["-t", topic, "-m", payload, "-q", "1"],
        );
        assert!(out.status.success(), "publishing to {topic}: {out:?}");
    }
    let literal = finish(literal, Duration::from_secs(10));
    assert_eq!(stdout(&literal), "a/* star\n", "{literal:?}");
    let plus = finish(plus, Duration::from_secs(10));
    assert_eq!(stdout(&plus), "a/b plain\na/* star\n", "{plus:?}");
    let stats = server.stats();
    assert_eq!(stats.closed_by_reason.protocol_error, 0, "{stats:?}");
    assert!(broker.stats().balances());
}

#[test]
fn a_client_cannot_publish_under_dollar_topics_and_is_still_acknowledged() {
    let rt = runtime();
    let broker = mqtt_broker();
    let server = server(&rt, &broker);
    let addr = server.local_addr();
    let fake = broker.subscribe("$SYS/switchyard/fake/#").unwrap();
    // Retained, at each QoS: acknowledged (mosquitto_pub succeeds), neither routed nor kept.
    for qos in ["0", "1", "2"] {
        let out = run(
            "mosquitto_pub",
            addr,
            &[
                "-t",
                "$SYS/switchyard/fake/alert",
                "-m",
                "pwned",
                "-r",
                "-q",
                qos,
            ],
        );
        assert!(out.status.success(), "qos {qos}: {out:?}");
    }
    // A later `$SYS/#` subscriber gets the listener's own topics, never the client's.
    let out = run("mosquitto_sub", addr, &["-t", "$SYS/#", "-v", "-W", "1"]);
    let seen = stdout(&out);
    assert!(seen.contains("$SYS/switchyard/clients/connected"), "{seen}");
    assert!(!seen.contains("fake"), "{seen}");
    assert!(fake.try_recv().is_err(), "a client's $ publish was routed");
    let stats = server.stats();
    assert_eq!(stats.dollar_topic_refused, 3, "{stats:?}");
    assert_eq!(stats.closed_by_reason.protocol_error, 0, "{stats:?}");
    let replayed = broker
        .subscribe_with(
            "$SYS/switchyard/fake/#",
            SubscriptionOptions::new().receive_retained(true),
        )
        .unwrap();
    assert!(
        replayed.try_recv().is_err(),
        "a client's $ publish was retained"
    );
}
