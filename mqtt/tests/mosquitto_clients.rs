//! Debian's `mosquitto_pub` and `mosquitto_sub` against the listener: QoS 0/1/2, retained messages,
//! wills, persistent sessions, `$SYS`, and a refused MQTT 5 CONNECT. `scripts/test.sh` installs
//! mosquitto-clients; a missing tool fails these tests rather than skipping them.

use std::time::{Duration, Instant};

mod common;

use switchyard::Broker;
use switchyard_mqtt::{MqttConfig, MqttServer};

use common::{finish, run, runtime, spawn, stdout, wait_subscribed};

fn server(runtime: &tokio::runtime::Runtime, broker: &Broker) -> MqttServer {
    let config = MqttConfig::default().sys_interval(Some(Duration::from_millis(100)));
    runtime
        .block_on(MqttServer::bind("127.0.0.1:0", broker.clone(), config))
        .unwrap()
}

#[test]
fn mosquitto_pub_reaches_mosquitto_sub_at_qos_0_1_and_2() {
    let rt = runtime();
    let broker = Broker::new();
    let server = server(&rt, &broker);
    let addr = server.local_addr();
    let sub = spawn(
        "mosquitto_sub",
        addr,
        &["-i", "msub", "-t", "mq/#", "-q", "2", "-C", "3", "-v"],
    );
    wait_subscribed(&server, "msub", 1);
    for qos in ["0", "1", "2"] {
        let out = run(
            "mosquitto_pub",
            addr,
            &[
                "-t",
                &format!("mq/{qos}"),
                "-m",
                &format!("at qos {qos}"),
                "-q",
                qos,
            ],
        );
        assert!(out.status.success(), "{out:?}");
    }
    let out = finish(sub, Duration::from_secs(10));
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        stdout(&out),
        "mq/0 at qos 0\nmq/1 at qos 1\nmq/2 at qos 2\n"
    );
    assert!(broker.stats().balances());
}

#[test]
fn a_retained_message_from_mosquitto_pub_reaches_a_later_mosquitto_sub() {
    let rt = runtime();
    let broker = Broker::new();
    let server = server(&rt, &broker);
    let addr = server.local_addr();
    let out = run(
        "mosquitto_pub",
        addr,
        &["-t", "ret/a", "-m", "kept", "-r", "-q", "1"],
    );
    assert!(out.status.success(), "{out:?}");
    let out = run(
        "mosquitto_sub",
        addr,
        &["-t", "ret/#", "-C", "1", "-W", "10"],
    );
    assert_eq!(stdout(&out), "kept\n");
}

#[test]
fn a_killed_mosquitto_sub_has_its_will_published_and_a_disconnecting_one_does_not() {
    let rt = runtime();
    let broker = Broker::new();
    let server = server(&rt, &broker);
    let addr = server.local_addr();
    let wills = broker.subscribe("wills/#").unwrap();
    let will = |id: &str| {
        let topic = format!("wills/{id}");
        let args = [
            "-i",
            id,
            "-t",
            "nothing",
            "--will-topic",
            &topic,
            "--will-payload",
            "gone",
        ];
        spawn("mosquitto_sub", addr, &args)
    };
    // Exits by itself after its subscription is acknowledged: DISCONNECT, no will.
    let polite = spawn(
        "mosquitto_sub",
        addr,
        &[
            "-i",
            "polite",
            "-t",
            "nothing",
            "-E",
            "--will-topic",
            "wills/polite",
            "--will-payload",
            "gone",
        ],
    );
    assert!(finish(polite, Duration::from_secs(10)).status.success());
    let mut killed = will("killed");
    wait_subscribed(&server, "killed", 1);
    killed.kill().unwrap();
    killed.wait().unwrap();
    let got = wills.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(got.topic(), "wills/killed");
    assert_eq!(&got.payload()[..], b"gone");
    assert!(wills.recv_timeout(Duration::from_millis(300)).is_err());
}

#[test]
fn a_persistent_mosquitto_sub_session_gets_what_was_published_while_it_was_away() {
    let rt = runtime();
    let broker = Broker::new();
    let server = server(&rt, &broker);
    let addr = server.local_addr();
    let session = ["-i", "durable-sub", "-c", "-q", "1", "-t", "away/t"];
    let out = run("mosquitto_sub", addr, &[&session[..], &["-E"]].concat());
    assert!(out.status.success(), "{out:?}");
    for i in 0..3 {
        let out = run(
            "mosquitto_pub",
            addr,
            &["-t", "away/t", "-m", &format!("m{i}"), "-q", "1"],
        );
        assert!(out.status.success(), "{out:?}");
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while server
        .stats()
        .client("durable-sub")
        .unwrap()
        .address
        .is_some()
    {
        assert!(
            Instant::now() < deadline,
            "the session never showed its client away"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let stats = server.stats();
    let away = stats.client("durable-sub").unwrap();
    assert_eq!(away.subscriptions[0].depth, 3);
    let out = run(
        "mosquitto_sub",
        addr,
        &[&session[..], &["-C", "3", "-W", "10"]].concat(),
    );
    assert_eq!(stdout(&out), "m0\nm1\nm2\n");
}

#[test]
fn mosquitto_sub_reads_sys_topics_and_an_mqtt_5_connect_is_refused() {
    let rt = runtime();
    let broker = Broker::new();
    let server = server(&rt, &broker);
    let addr = server.local_addr();
    let out = run(
        "mosquitto_sub",
        addr,
        &[
            "-t",
            "$SYS/switchyard/clients/connected",
            "-C",
            "2",
            "-W",
            "10",
        ],
    );
    // The retained value of the latest round (which may have run before this client connected), then
    // a round that counts this client.
    let values = stdout(&out);
    let values: Vec<&str> = values.lines().collect();
    assert_eq!(values.len(), 2, "{out:?}");
    assert!(["0", "1"].contains(&values[0]), "{out:?}");
    assert_eq!(values[1], "1", "{out:?}");
    let out = run(
        "mosquitto_pub",
        addr,
        &["-V", "mqttv5", "-t", "x", "-m", "y"],
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Unsupported Protocol Version"),
        "{out:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.stats().closed_by_reason.refused == 0 {
        assert!(Instant::now() < deadline, "{:?}", server.stats());
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(server.stats().closed_by_reason.refused, 1);
}
