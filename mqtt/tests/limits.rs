//! The listener's limits, each hit by a raw client: connections (CONNACK 3), packet size (closed,
//! `too_large`), CONNECT timeout, and the in-flight window (no more than N unacknowledged messages).

use std::time::{Duration, Instant};

mod common;

use rumqttc::{Connect, Packet, PubAck, Publish, QoS, Subscribe};
use switchyard::Broker;
use switchyard_mqtt::{MqttConfig, MqttServer};

use common::raw::Raw;
use common::runtime;

fn wait_closed(server: &MqttServer, count: impl Fn(&switchyard_mqtt::MqttStats) -> u64) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while count(&server.stats()) == 0 {
        assert!(Instant::now() < deadline, "{:?}", server.stats());
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_connection_over_the_limit_is_refused_with_code_3() {
    let rt = runtime();
    let config = MqttConfig::default().max_connections(2).sys_interval(None);
    let server = rt
        .block_on(MqttServer::bind("127.0.0.1:0", Broker::new(), config))
        .unwrap();
    let mut first = Raw::connect(server.local_addr());
    let mut second = Raw::connect(server.local_addr());
    assert_eq!(first.connack_code("a"), rumqttc::ConnectReturnCode::Success);
    assert_eq!(
        second.connack_code("b"),
        rumqttc::ConnectReturnCode::Success
    );
    let mut third = Raw::connect(server.local_addr());
    assert_eq!(
        third.connack_code("c"),
        rumqttc::ConnectReturnCode::ServiceUnavailable
    );
    assert!(third.read().is_none(), "closed after the refusal");
    wait_closed(&server, |s| s.closed_by_reason.refused);
    assert_eq!(server.stats().closed_by_reason.refused, 1);
    drop(first);
    wait_closed(&server, |s| s.closed_by_reason.peer_closed);
    let mut fourth = Raw::connect(server.local_addr());
    assert_eq!(
        fourth.connack_code("d"),
        rumqttc::ConnectReturnCode::Success
    );
}

#[test]
fn a_packet_over_the_size_limit_closes_its_connection_as_too_large() {
    let rt = runtime();
    let broker = Broker::new();
    let config = MqttConfig::default()
        .max_packet_size(100)
        .sys_interval(None);
    let server = rt
        .block_on(MqttServer::bind("127.0.0.1:0", broker.clone(), config))
        .unwrap();
    let topic = broker.subscribe("big/#").unwrap();
    let mut raw = Raw::connect(server.local_addr());
    raw.connack_code("big");
    raw.send(Packet::Publish(Publish::new(
        "big/ok",
        QoS::AtMostOnce,
        vec![0; 50],
    )));
    raw.send(Packet::Publish(Publish::new(
        "big/no",
        QoS::AtMostOnce,
        vec![0; 200],
    )));
    assert!(raw.read().is_none());
    wait_closed(&server, |s| s.closed_by_reason.too_large);
    assert_eq!(topic.try_recv().unwrap().topic(), "big/ok");
    assert!(topic.try_recv().is_err());
}

#[test]
fn a_connection_without_connect_is_closed_after_the_timeout() {
    let rt = runtime();
    let config = MqttConfig::default()
        .connect_timeout(Duration::from_millis(200))
        .sys_interval(None);
    let server = rt
        .block_on(MqttServer::bind("127.0.0.1:0", Broker::new(), config))
        .unwrap();
    let started = Instant::now();
    let mut raw = Raw::connect(server.local_addr());
    assert!(raw.read().is_none());
    assert!(started.elapsed() >= Duration::from_millis(200));
    wait_closed(&server, |s| s.closed_by_reason.connect_timeout);
}

#[test]
fn no_more_than_the_in_flight_window_is_sent_unacknowledged() {
    let rt = runtime();
    let broker = Broker::new();
    let config = MqttConfig::default().max_inflight(3).sys_interval(None);
    let server = rt
        .block_on(MqttServer::bind("127.0.0.1:0", broker.clone(), config))
        .unwrap();
    let mut raw = Raw::connect(server.local_addr());
    raw.connack_code("window");
    let mut subscribe = Subscribe::new("w/t", QoS::AtLeastOnce);
    subscribe.pkid = 1;
    raw.send(Packet::Subscribe(subscribe));
    assert!(matches!(raw.read(), Some(Packet::SubAck(_))));
    for i in 0..10 {
        broker.publish("w/t", format!("m{i}")).unwrap();
    }
    let first = raw.read_for(Duration::from_millis(300));
    assert_eq!(first.len(), 3, "{first:?}");
    assert_eq!(server.stats().client("window").unwrap().inflight, 3);
    let Packet::Publish(oldest) = &first[0] else {
        panic!("{first:?}")
    };
    raw.send(Packet::PubAck(PubAck::new(oldest.pkid)));
    let next = raw.read_for(Duration::from_millis(300));
    assert_eq!(
        next.len(),
        1,
        "one acknowledgement opens one slot: {next:?}"
    );
    let stats = server.stats();
    let client = stats.client("window").unwrap();
    assert_eq!(client.subscriptions[0].depth, 6);
}

#[test]
fn a_filter_beyond_the_subscription_limit_is_refused_with_0x80() {
    let rt = runtime();
    let config = MqttConfig::default()
        .max_subscriptions(2)
        .sys_interval(None);
    let server = rt
        .block_on(MqttServer::bind("127.0.0.1:0", Broker::new(), config))
        .unwrap();
    let mut raw = Raw::connect(server.local_addr());
    raw.connack_code("greedy");
    let mut subscribe = Subscribe::new_many(
        ["a", "b", "c"].map(|f| rumqttc::SubscribeFilter::new(f.to_string(), QoS::AtMostOnce)),
    );
    subscribe.pkid = 1;
    raw.send(Packet::Subscribe(subscribe));
    let Some(Packet::SubAck(ack)) = raw.read() else {
        panic!("expected SUBACK")
    };
    use rumqttc::SubscribeReasonCode::{Failure, Success};
    assert_eq!(
        ack.return_codes,
        [Success(QoS::AtMostOnce), Success(QoS::AtMostOnce), Failure]
    );
    // The same filter again replaces, so it is not refused at the limit.
    let mut again = Subscribe::new("a", QoS::AtLeastOnce);
    again.pkid = 2;
    raw.send(Packet::Subscribe(again));
    let Some(Packet::SubAck(ack)) = raw.read() else {
        panic!("expected SUBACK")
    };
    assert_eq!(ack.return_codes, [Success(QoS::AtLeastOnce)]);
}

#[test]
fn a_new_session_beyond_the_session_limit_is_refused_with_code_3() {
    let rt = runtime();
    let config = MqttConfig::default().max_sessions(1).sys_interval(None);
    let server = rt
        .block_on(MqttServer::bind("127.0.0.1:0", Broker::new(), config))
        .unwrap();
    // A persistent session, its client gone: it keeps the one place.
    let mut away = Raw::connect(server.local_addr());
    let mut connect = Connect::new("kept");
    connect.clean_session = false;
    away.send(Packet::Connect(connect.clone()));
    assert!(matches!(away.read(), Some(Packet::ConnAck(_))));
    away.send(Packet::Disconnect);
    assert!(away.read().is_none());
    wait_closed(&server, |s| s.closed_by_reason.disconnect);

    let mut other = Raw::connect(server.local_addr());
    assert_eq!(
        other.connack_code("other"),
        rumqttc::ConnectReturnCode::ServiceUnavailable
    );
    let mut back = Raw::connect(server.local_addr());
    back.send(Packet::Connect(connect));
    let Some(Packet::ConnAck(ack)) = back.read() else {
        panic!("expected CONNACK")
    };
    assert_eq!(ack.code, rumqttc::ConnectReturnCode::Success);
    assert!(ack.session_present);
}

/// Issue 18, row 5: three clients that never read, large publishes. Each client's own subscriptions
/// share one byte budget (two filters each here), so what one client can hold is bounded in bytes
/// whatever the queue capacity; the rest is dropped as `byte_limit`, and the books balance. The
/// bytes come back when the client returns and takes its messages (QoS 1 ones once taken, before
/// their PUBACK).
#[test]
fn a_client_holds_no_more_than_its_byte_budget_across_its_subscriptions() {
    const BUDGET: u64 = 10_000;
    const PAYLOAD: usize = 1_000;
    const PUBLISHES: usize = 100;
    let rt = runtime();
    let broker = Broker::new();
    let config = MqttConfig::default()
        .queue_bytes(Some(BUDGET))
        .sys_interval(None);
    let server = rt
        .block_on(MqttServer::bind("127.0.0.1:0", broker.clone(), config))
        .unwrap();
    let persistent = |id: &str| {
        let mut connect = Connect::new(id);
        connect.clean_session = false;
        connect
    };
    let ids = ["slow-0", "slow-1", "slow-2"];
    for id in ids {
        let mut raw = Raw::connect(server.local_addr());
        raw.send(Packet::Connect(persistent(id)));
        assert!(matches!(raw.read(), Some(Packet::ConnAck(_))));
        let mut subscribe = Subscribe::new("img/#", QoS::AtMostOnce);
        subscribe.add("img/+".into(), QoS::AtLeastOnce);
        subscribe.pkid = 1;
        raw.send(Packet::Subscribe(subscribe));
        assert!(matches!(raw.read(), Some(Packet::SubAck(_))));
        raw.send(Packet::Disconnect);
        assert!(raw.read().is_none());
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.stats().closed_by_reason.disconnect < 3 {
        assert!(Instant::now() < deadline, "{:?}", server.stats());
        std::thread::sleep(Duration::from_millis(10));
    }
    for _ in 0..PUBLISHES {
        broker.publish("img/cam", vec![7u8; PAYLOAD]).unwrap();
    }

    let stats = server.stats();
    assert_eq!(stats.clients.len(), 3);
    for client in &stats.clients {
        let queued: u64 = client.subscriptions.iter().map(|s| s.depth).sum();
        assert_eq!(client.max_queued_bytes, Some(BUDGET), "{client:?}");
        assert_eq!(client.queued_bytes, queued * PAYLOAD as u64, "{client:?}");
        assert_eq!(
            queued,
            BUDGET / PAYLOAD as u64,
            "filled to the bound: {client:?}"
        );
        assert_eq!(
            client.dropped_by_reason.byte_limit,
            2 * PUBLISHES as u64 - queued,
            "the rest counted as byte_limit: {client:?}"
        );
    }
    assert!(broker.stats().balances());

    // One client comes back and takes what it was kept: its bytes are free again.
    let mut back = Raw::connect(server.local_addr());
    back.send(Packet::Connect(persistent("slow-0")));
    let mut got = 0;
    let mut acked = 0;
    for packet in back.read_for(Duration::from_millis(500)) {
        if let Packet::Publish(publish) = packet {
            got += 1;
            assert_eq!(publish.payload.len(), PAYLOAD);
            if publish.qos == QoS::AtLeastOnce {
                back.send(Packet::PubAck(PubAck::new(publish.pkid)));
                acked += 1;
            }
        }
    }
    assert_eq!(
        got,
        BUDGET / PAYLOAD as u64,
        "kept while away, sent on return"
    );
    assert!(acked > 0, "both subscriptions shared the budget");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let stats = server.stats();
        let slow0 = stats
            .clients
            .iter()
            .find(|c| c.client_id == "slow-0")
            .unwrap();
        if slow0.queued_bytes == 0 && slow0.inflight == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{slow0:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(broker.stats().balances());
}
