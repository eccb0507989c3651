//! QoS 1 and 2 deliveries on the core's acknowledged path, seen by raw clients that choose every
//! acknowledgement: a message is in flight in the broker's books until PUBACK (QoS 1) or PUBREC
//! (QoS 2), a stale acknowledgement is counted and changes nothing, a persistent session gets its
//! unacknowledged messages again with DUP, QoS 0 stays plain, and shared subscriptions
//! (`$share/GROUP/FILTER`) are competing receivers whose departing member hands back what it held.

use std::time::{Duration, Instant};

mod common;

use rumqttc::{
    Connect, Packet, PubAck, PubComp, PubRec, Publish, QoS, Subscribe, SubscribeReasonCode,
    Unsubscribe,
};
use switchyard::{Broker, PublishOptions, SubscriptionStats};
use switchyard_mqtt::{MqttConfig, MqttServer, MqttStats};

use common::raw::Raw;
use common::runtime;

/// A listener without `$SYS` traffic, on a fresh broker.
fn listener(config: MqttConfig) -> (tokio::runtime::Runtime, Broker, MqttServer) {
    let rt = runtime();
    let broker = Broker::new();
    let server = rt
        .block_on(MqttServer::bind(
            "127.0.0.1:0",
            broker.clone(),
            config.sys_interval(None),
        ))
        .unwrap();
    (rt, broker, server)
}

/// Subscribes `raw` to `filter` at `qos`; returns the SUBACK's code.
fn subscribe(raw: &mut Raw, filter: &str, qos: QoS) -> SubscribeReasonCode {
    let mut subscribe = Subscribe::new(filter, qos);
    subscribe.pkid = 1;
    raw.send(Packet::Subscribe(subscribe));
    match raw.read() {
        Some(Packet::SubAck(ack)) => ack.return_codes[0],
        other => panic!("expected SUBACK, got {other:?}"),
    }
}

/// Reads `n` PUBLISH packets (anything else is a failure).
fn read_publishes(raw: &mut Raw, n: usize) -> Vec<Publish> {
    (0..n)
        .map(|i| match raw.read() {
            Some(Packet::Publish(p)) => p,
            other => panic!("expected PUBLISH {i} of {n}, got {other:?}"),
        })
        .collect()
}

/// The broker's stats of the subscription behind the client's subscription `index`.
fn broker_side(
    broker: &Broker,
    server: &MqttServer,
    client: &str,
    index: usize,
) -> SubscriptionStats {
    let id = server.stats().client(client).unwrap().subscriptions[index].id;
    broker.subscription_stats(id).unwrap()
}

/// Waits (up to 5 s) until `done` holds of the listener's stats, and returns them.
fn wait_stats(server: &MqttServer, done: impl Fn(&MqttStats) -> bool) -> MqttStats {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let stats = server.stats();
        if done(&stats) {
            return stats;
        }
        assert!(Instant::now() < deadline, "{stats:#?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits (up to 5 s) until `done` holds of subscription `id`'s stats, and returns them.
fn wait_subscription(
    broker: &Broker,
    id: u64,
    done: impl Fn(&SubscriptionStats) -> bool,
) -> SubscriptionStats {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let stats = broker.subscription_stats(id).unwrap();
        if done(&stats) {
            return stats;
        }
        assert!(Instant::now() < deadline, "{stats:#?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_qos_1_message_is_in_flight_in_the_books_until_its_puback() {
    let (_rt, broker, server) = listener(MqttConfig::default());
    let mut raw = Raw::connect(server.local_addr());
    raw.connack_code("acker");
    assert_eq!(
        subscribe(&mut raw, "jobs/#", QoS::AtLeastOnce),
        SubscribeReasonCode::Success(QoS::AtLeastOnce)
    );
    for i in 0..3 {
        broker.publish(&format!("jobs/{i}"), "work").unwrap();
    }
    let sent = read_publishes(&mut raw, 3);
    assert!(sent.iter().all(|p| p.qos == QoS::AtLeastOnce && !p.dup));

    let stats = broker_side(&broker, &server, "acker", 0);
    assert_eq!((stats.in_flight, stats.delivered, stats.depth), (3, 0, 0));
    assert_eq!(stats.ack.unwrap().max_in_flight, 64, "the client's window");
    assert!(broker.stats().balances());
    let client = server.stats().client("acker").unwrap().clone();
    assert_eq!((client.inflight, client.subscriptions[0].in_flight), (3, 3));

    raw.send(Packet::PubAck(PubAck::new(sent[1].pkid)));
    let id = stats.id;
    let stats = wait_subscription(&broker, id, |s| s.delivered == 1);
    assert_eq!((stats.in_flight, stats.ack.unwrap().acked), (2, 1));
    for p in [&sent[0], &sent[2]] {
        raw.send(Packet::PubAck(PubAck::new(p.pkid)));
    }
    let stats = wait_subscription(&broker, id, |s| s.delivered == 3);
    assert_eq!(stats.in_flight, 0);
    assert!(broker.stats().balances());
    assert_eq!(server.stats().acks_unknown, 0);
}

#[test]
fn a_stale_puback_is_counted_and_changes_nothing() {
    let (_rt, broker, server) = listener(MqttConfig::default());
    let mut raw = Raw::connect(server.local_addr());
    raw.connack_code("confused");
    subscribe(&mut raw, "t", QoS::AtLeastOnce);
    broker.publish("t", "one").unwrap();
    let [sent] = read_publishes(&mut raw, 1).try_into().unwrap();

    // A packet id never used, and a PUBCOMP for a QoS 1 message: nothing waits for either.
    raw.send(Packet::PubAck(PubAck::new(sent.pkid.wrapping_add(100))));
    raw.send(Packet::PubComp(PubComp::new(sent.pkid)));
    wait_stats(&server, |s| s.acks_unknown == 2);
    let stats = broker_side(&broker, &server, "confused", 0);
    assert_eq!((stats.in_flight, stats.delivered), (1, 0));

    // The real one, then the same again: a duplicate is stale too.
    raw.send(Packet::PubAck(PubAck::new(sent.pkid)));
    raw.send(Packet::PubAck(PubAck::new(sent.pkid)));
    wait_stats(&server, |s| s.acks_unknown == 3);
    let stats = broker_side(&broker, &server, "confused", 0);
    assert_eq!((stats.in_flight, stats.delivered), (0, 1));
    assert_eq!(
        stats.ack.unwrap().refused.ended,
        0,
        "never reached the core"
    );

    raw.send(Packet::PingReq);
    assert_eq!(raw.read(), Some(Packet::PingResp), "still connected");
    assert!(broker.stats().balances());
}

#[test]
fn a_qos_2_message_is_delivered_at_pubrec_and_its_packet_id_freed_at_pubcomp() {
    let (_rt, broker, server) = listener(MqttConfig::default().max_inflight(1));
    let mut raw = Raw::connect(server.local_addr());
    raw.connack_code("exactly");
    subscribe(&mut raw, "t", QoS::ExactlyOnce);
    broker.publish("t", "first").unwrap();
    broker.publish("t", "second").unwrap();
    let [first] = read_publishes(&mut raw, 1).try_into().unwrap();
    assert_eq!(
        (first.qos, &first.payload[..]),
        (QoS::ExactlyOnce, &b"first"[..])
    );
    let id = broker_side(&broker, &server, "exactly", 0).id;
    assert_eq!(broker.subscription_stats(id).unwrap().in_flight, 1);

    raw.send(Packet::PubRec(PubRec::new(first.pkid)));
    assert_eq!(
        raw.read(),
        Some(Packet::PubRel(rumqttc::PubRel::new(first.pkid)))
    );
    let stats = wait_subscription(&broker, id, |s| s.delivered == 1);
    assert_eq!(stats.in_flight, 0, "the client has it from PUBREC on");
    assert_eq!(server.stats().client("exactly").unwrap().inflight, 1);
    assert!(
        raw.read_for(Duration::from_millis(200)).is_empty(),
        "the packet id still fills the window of 1 until PUBCOMP"
    );

    raw.send(Packet::PubComp(PubComp::new(first.pkid)));
    let [second] = read_publishes(&mut raw, 1).try_into().unwrap();
    assert_eq!(&second.payload[..], b"second");
    raw.send(Packet::PubRec(PubRec::new(second.pkid)));
    assert!(matches!(raw.read(), Some(Packet::PubRel(_))));
    raw.send(Packet::PubComp(PubComp::new(second.pkid)));
    wait_stats(&server, |s| s.client("exactly").unwrap().inflight == 0);
    let stats = broker.subscription_stats(id).unwrap();
    assert_eq!((stats.delivered, stats.in_flight), (2, 0));
    assert_eq!(server.stats().acks_unknown, 0);
    assert!(broker.stats().balances());
}

#[test]
fn a_persistent_session_gets_its_unacknowledged_messages_again_with_dup() {
    let (_rt, broker, server) = listener(MqttConfig::default());
    let mut connect = Connect::new("returning");
    connect.clean_session = false;
    let mut raw = Raw::connect(server.local_addr());
    raw.send(Packet::Connect(connect.clone()));
    assert!(matches!(raw.read(), Some(Packet::ConnAck(_))));
    subscribe(&mut raw, "t", QoS::AtLeastOnce);
    broker.publish("t", "a").unwrap();
    broker.publish("t", "b").unwrap();
    let first = read_publishes(&mut raw, 2);
    raw.send(Packet::PubAck(PubAck::new(first[0].pkid)));
    let id = broker_side(&broker, &server, "returning", 0).id;
    wait_subscription(&broker, id, |s| s.delivered == 1);
    drop(raw); // gone without DISCONNECT, "b" unacknowledged
    wait_stats(&server, |s| s.closed_by_reason.peer_closed == 1);
    broker.publish("t", "c").unwrap(); // queued while the client is away

    let stats = broker.subscription_stats(id).unwrap();
    assert_eq!(
        (stats.in_flight, stats.depth, stats.delivered),
        (1, 1, 1),
        "in flight while its client is away, not expired"
    );
    let mut again = Raw::connect(server.local_addr());
    again.send(Packet::Connect(connect));
    let Some(Packet::ConnAck(ack)) = again.read() else {
        panic!("expected CONNACK")
    };
    assert!(ack.session_present);
    let [resent, queued] = read_publishes(&mut again, 2).try_into().unwrap();
    assert_eq!(
        (&resent.payload[..], resent.pkid, resent.dup),
        (&b"b"[..], first[1].pkid, true),
        "the same packet id, DUP set"
    );
    assert_eq!((&queued.payload[..], queued.dup), (&b"c"[..], false));
    assert_eq!(
        broker
            .subscription_stats(id)
            .unwrap()
            .ack
            .unwrap()
            .redelivered,
        0
    );
    for p in [&resent, &queued] {
        again.send(Packet::PubAck(PubAck::new(p.pkid)));
    }
    let stats = wait_subscription(&broker, id, |s| s.delivered == 3);
    assert_eq!(stats.in_flight, 0);
    assert!(broker.stats().balances());
}

#[test]
fn qos_0_stays_plain_and_a_qos_0_publish_to_a_qos_1_subscriber_is_acked_as_written() {
    let (_rt, broker, server) = listener(MqttConfig::default());
    let mut raw = Raw::connect(server.local_addr());
    raw.connack_code("mixed");
    subscribe(&mut raw, "zero", QoS::AtMostOnce);
    let mut subscribe_one = Subscribe::new("one", QoS::AtLeastOnce);
    subscribe_one.pkid = 2;
    raw.send(Packet::Subscribe(subscribe_one));
    assert!(matches!(raw.read(), Some(Packet::SubAck(_))));
    assert!(
        broker_side(&broker, &server, "mixed", 0).ack.is_none(),
        "plain"
    );
    assert!(
        broker_side(&broker, &server, "mixed", 1).ack.is_some(),
        "acknowledged"
    );

    broker.publish("zero", "z").unwrap();
    // Published at QoS 0 (the listener keeps the publisher's QoS + 1 in the tag).
    broker
        .publish_with("one", "o", PublishOptions::new().tag(1))
        .unwrap();
    let got = read_publishes(&mut raw, 2);
    assert!(got.iter().all(|p| p.qos == QoS::AtMostOnce), "{got:?}");
    let stats = broker_side(&broker, &server, "mixed", 1);
    assert_eq!((stats.delivered, stats.in_flight), (1, 0));

    // Asking the plain subscription for QoS 1 makes it acknowledged.
    assert_eq!(
        subscribe(&mut raw, "zero", QoS::AtLeastOnce),
        SubscribeReasonCode::Success(QoS::AtLeastOnce)
    );
    let client = server.stats().client("mixed").unwrap().clone();
    assert_eq!(client.subscriptions.len(), 2);
    let zero = client
        .subscriptions
        .iter()
        .find(|s| s.filter == "zero")
        .unwrap();
    assert!(broker.subscription_stats(zero.id).unwrap().ack.is_some());
    assert!(broker.stats().balances());
}

/// Connects `id` (clean session) and joins `filter` at QoS 1.
fn member(server: &MqttServer, id: &str, filter: &str) -> Raw {
    let mut raw = Raw::connect(server.local_addr());
    raw.connack_code(id);
    assert_eq!(
        subscribe(&mut raw, filter, QoS::AtLeastOnce),
        SubscribeReasonCode::Success(QoS::AtLeastOnce)
    );
    raw
}

#[test]
fn a_shared_group_member_that_goes_away_hands_its_messages_to_the_group_at_once() {
    let (_rt, broker, server) = listener(MqttConfig::default());
    let mut holder = member(&server, "holder", "$share/g/jobs/#");
    let group = broker_side(&broker, &server, "holder", 0);
    assert_eq!(
        (group.name.as_str(), group.filter.as_str()),
        ("mqtt/$share/g/jobs/#", "jobs/#")
    );
    for i in 0..10 {
        broker
            .publish(&format!("jobs/{i}"), format!("{i}"))
            .unwrap();
    }
    let held = read_publishes(&mut holder, 10);
    let mut worker = member(&server, "worker", "$share/g/jobs/#");
    assert_eq!(
        broker_side(&broker, &server, "worker", 0).id,
        group.id,
        "one subscription"
    );
    assert!(
        worker.read_for(Duration::from_millis(200)).is_empty(),
        "all in the holder's hands"
    );
    assert_eq!(broker.subscription_stats(group.id).unwrap().in_flight, 10);

    drop(holder); // closed without a single PUBACK
    let got = read_publishes(&mut worker, 10);
    let mut payloads: Vec<_> = got.iter().map(|p| p.payload.clone()).collect();
    payloads.sort();
    let mut sent: Vec<_> = held.iter().map(|p| p.payload.clone()).collect();
    sent.sort();
    assert_eq!(payloads, sent);
    assert!(
        got.iter().all(|p| !p.dup),
        "a first PUBLISH to this client: DUP 0"
    );
    for p in &got {
        worker.send(Packet::PubAck(PubAck::new(p.pkid)));
    }
    let stats = wait_subscription(&broker, group.id, |s| s.delivered == 10);
    let ack = stats.ack.unwrap();
    assert_eq!(
        (stats.in_flight, ack.handed_back, ack.redelivered),
        (0, 10, 10)
    );
    assert_eq!(server.stats().shared_groups, 1);

    // The last member leaves: the group goes, and the books still balance.
    let mut unsubscribe = Unsubscribe::new("$share/g/jobs/#");
    unsubscribe.pkid = 3;
    worker.send(Packet::Unsubscribe(unsubscribe));
    assert!(matches!(worker.read(), Some(Packet::UnsubAck(_))));
    wait_stats(&server, |s| s.shared_groups == 0);
    assert!(broker.subscription_stats(group.id).is_none());
    let totals = broker.stats().totals;
    assert_eq!(
        (totals.delivered, totals.dropped, totals.in_flight),
        (10, 0, 0)
    );
    assert!(broker.stats().balances());
}

#[test]
fn members_of_a_group_each_get_a_share_and_every_message_once() {
    let (_rt, broker, server) = listener(MqttConfig::default().max_inflight(4));
    let mut a = member(&server, "a", "$share/workers/w");
    let mut b = member(&server, "b", "$share/workers/w");
    for i in 0..40 {
        broker.publish("w", format!("{i}")).unwrap();
    }
    // Each client's window is 4: acking as they come, both keep taking until all 40 are done.
    let mut seen = Vec::new();
    let (mut from_a, mut from_b) = (0, 0);
    let deadline = Instant::now() + Duration::from_secs(10);
    while seen.len() < 40 {
        assert!(Instant::now() < deadline, "got {} of 40", seen.len());
        for (raw, count) in [(&mut a, &mut from_a), (&mut b, &mut from_b)] {
            for packet in raw.read_for(Duration::from_millis(20)) {
                let Packet::Publish(p) = packet else { continue };
                raw.send(Packet::PubAck(PubAck::new(p.pkid)));
                seen.push(String::from_utf8(p.payload.to_vec()).unwrap());
                *count += 1;
            }
        }
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 40, "each message once");
    assert!(from_a > 0 && from_b > 0, "a: {from_a}, b: {from_b}");
    let id = broker_side(&broker, &server, "a", 0).id;
    let stats = wait_subscription(&broker, id, |s| s.delivered == 40);
    assert_eq!(stats.in_flight, 0);
    assert!(broker.stats().balances());
}

#[test]
fn a_shared_subscription_gets_no_retained_messages_and_bad_share_filters_are_refused() {
    let (_rt, broker, server) = listener(MqttConfig::default());
    broker
        .publish_with("news/today", "old", PublishOptions::new().retain(true))
        .unwrap();
    let mut raw = member(&server, "reader", "$share/g/news/#");
    assert!(
        raw.read_for(Duration::from_millis(200)).is_empty(),
        "no retained message"
    );
    for bad in ["$share/g", "$share//news", "$share/g+/news", "$share/g/"] {
        assert_eq!(
            subscribe(&mut raw, bad, QoS::AtLeastOnce),
            SubscribeReasonCode::Failure,
            "{bad}"
        );
    }
    broker.publish("news/today", "new").unwrap();
    let [live] = read_publishes(&mut raw, 1).try_into().unwrap();
    assert_eq!((&live.payload[..], live.retain), (&b"new"[..], false));
}

#[test]
fn a_qos_0_shared_group_is_plain_and_grants_qos_0() {
    let (_rt, broker, server) = listener(MqttConfig::default());
    let mut first = Raw::connect(server.local_addr());
    first.connack_code("first");
    assert_eq!(
        subscribe(&mut first, "$share/g/t", QoS::AtMostOnce),
        SubscribeReasonCode::Success(QoS::AtMostOnce)
    );
    let mut second = Raw::connect(server.local_addr());
    second.connack_code("second");
    assert_eq!(
        subscribe(&mut second, "$share/g/t", QoS::AtLeastOnce),
        SubscribeReasonCode::Success(QoS::AtMostOnce),
        "the group is plain: QoS 0 granted"
    );
    let group = broker_side(&broker, &server, "first", 0);
    assert!(group.ack.is_none());
    for i in 0..6 {
        broker.publish("t", format!("{i}")).unwrap();
    }
    let mut got = first.read_for(Duration::from_millis(200));
    got.extend(second.read_for(Duration::from_millis(200)));
    assert_eq!(got.len(), 6, "each message to one member: {got:?}");
    assert!(
        got.iter()
            .all(|p| matches!(p, Packet::Publish(p) if p.qos == QoS::AtMostOnce))
    );
    assert!(broker.stats().balances());
}

#[test]
fn a_persistent_member_that_goes_away_hands_back_too_and_is_not_sent_them_again() {
    let (_rt, broker, server) = listener(MqttConfig::default());
    let mut connect = Connect::new("away");
    connect.clean_session = false;
    let mut away = Raw::connect(server.local_addr());
    away.send(Packet::Connect(connect.clone()));
    assert!(matches!(away.read(), Some(Packet::ConnAck(_))));
    subscribe(&mut away, "$share/g/t", QoS::AtLeastOnce);
    let group = broker_side(&broker, &server, "away", 0).id;
    for i in 0..5 {
        broker.publish("t", format!("{i}")).unwrap();
    }
    let held = read_publishes(&mut away, 5);
    let mut worker = member(&server, "worker", "$share/g/t");

    drop(away); // its session stays, and so does its membership; what it held goes on at once
    let handed = read_publishes(&mut worker, 5);
    assert!(handed.iter().all(|p| !p.dup));
    let payloads = |ps: &[Publish]| {
        let mut v: Vec<_> = ps.iter().map(|p| p.payload.clone()).collect();
        v.sort();
        v
    };
    assert_eq!(payloads(&handed), payloads(&held));
    for p in &handed {
        worker.send(Packet::PubAck(PubAck::new(p.pkid)));
    }
    let stats = wait_subscription(&broker, group, |s| s.delivered == 5);
    assert_eq!((stats.in_flight, stats.ack.unwrap().handed_back), (0, 5));

    let mut back = Raw::connect(server.local_addr());
    back.send(Packet::Connect(connect));
    let Some(Packet::ConnAck(ack)) = back.read() else {
        panic!("expected CONNACK")
    };
    assert!(ack.session_present, "still a member");
    assert!(
        back.read_for(Duration::from_millis(200)).is_empty(),
        "what it handed back is not sent to it again"
    );
    assert_eq!(server.stats().client("away").unwrap().inflight, 0);
    assert!(broker.stats().balances());
}

#[test]
fn topic_permissions_judge_a_shared_subscription_by_its_filter_and_a_refused_read_is_settled() {
    let acl =
        switchyard_mqtt::AclFile::parse("topic deny jobs/secret\ntopic read jobs/#\n").unwrap();
    let (_rt, broker, server) = listener(MqttConfig::default().acl_file(Some(acl)));
    let mut raw = member(&server, "reader", "$share/g/jobs/#");
    assert_eq!(
        subscribe(&mut raw, "$share/g/other/#", QoS::AtLeastOnce),
        SubscribeReasonCode::Failure
    );
    broker.publish("jobs/secret", "refused").unwrap();
    broker.publish("jobs/1", "allowed").unwrap();
    let [got] = read_publishes(&mut raw, 1).try_into().unwrap();
    assert_eq!(&got.payload[..], b"allowed");
    raw.send(Packet::PubAck(PubAck::new(got.pkid)));
    let group = broker_side(&broker, &server, "reader", 0).id;
    let stats = wait_subscription(&broker, group, |s| s.delivered == 2);
    assert_eq!(
        (stats.in_flight, stats.ack.unwrap().redelivered),
        (0, 0),
        "the refused read is acked where it was taken, not handed back to be taken again"
    );
    assert!(raw.read_for(Duration::from_millis(100)).is_empty());
    assert!(broker.stats().balances());
}
