//! A Rust MQTT client (rumqttc) against the listener: publishes at every QoS reach in-process and MQTT
//! subscribers, in-process publishes reach MQTT subscribers, a slow client's drops are counted.

use std::time::Duration;

use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, QoS};
use switchyard::{Broker, OverflowPolicy};
use switchyard_mqtt::{MqttConfig, MqttServer};
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(10);

fn client(server: &MqttServer, id: &str) -> (AsyncClient, EventLoop) {
    let addr = server.local_addr();
    let mut options = MqttOptions::new(id, addr.ip().to_string(), addr.port());
    options.set_keep_alive(Duration::from_secs(5));
    AsyncClient::new(options, 64)
}

/// Polls until a PUBLISH arrives; fails the test after `WAIT`.
async fn next_publish(events: &mut EventLoop) -> rumqttc::Publish {
    timeout(WAIT, async {
        loop {
            if let Event::Incoming(Packet::Publish(p)) = events.poll().await.expect("connection") {
                return p;
            }
        }
    })
    .await
    .expect("a publish within 10 s")
}

/// Polls until the SUBACK arrives and returns its codes.
async fn suback(events: &mut EventLoop) -> Vec<rumqttc::SubscribeReasonCode> {
    timeout(WAIT, async {
        loop {
            if let Event::Incoming(Packet::SubAck(ack)) = events.poll().await.expect("connection") {
                return ack.return_codes;
            }
        }
    })
    .await
    .expect("a SUBACK within 10 s")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_at_each_qos_reach_an_mqtt_subscriber_and_an_in_process_one() {
    let broker = Broker::new();
    let server = MqttServer::bind("127.0.0.1:0", broker.clone(), MqttConfig::default())
        .await
        .unwrap();
    let local = broker.subscribe("rust/#").unwrap();
    let (sub, mut sub_events) = client(&server, "rust-sub");
    sub.subscribe("rust/+", QoS::ExactlyOnce).await.unwrap();
    assert_eq!(
        suback(&mut sub_events).await,
        vec![rumqttc::SubscribeReasonCode::Success(QoS::ExactlyOnce)]
    );
    let (publisher, mut pub_events) = client(&server, "rust-pub");
    tokio::spawn(async move { while pub_events.poll().await.is_ok() {} });
    for (i, qos) in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce]
        .into_iter()
        .enumerate()
    {
        publisher
            .publish(format!("rust/{i}"), qos, false, format!("m{i}"))
            .await
            .unwrap();
        let got = next_publish(&mut sub_events).await;
        assert_eq!(got.topic, format!("rust/{i}"));
        assert_eq!(&got.payload[..], format!("m{i}").as_bytes());
        assert_eq!(
            got.qos, qos,
            "the lower of the granted QoS (2) and the publisher's"
        );
        assert!(!got.retain, "a live message goes without RETAIN");
        let delivery = local.recv_async().await.unwrap();
        assert_eq!(delivery.topic(), format!("rust/{i}"));
    }

    broker.publish("rust/inproc", "from inside").unwrap();
    let got = next_publish(&mut sub_events).await;
    assert_eq!(got.topic, "rust/inproc");
    assert_eq!(
        got.qos,
        QoS::ExactlyOnce,
        "an in-process publish goes at the granted QoS"
    );
    assert!(broker.stats().balances());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retained_message_replayed_to_a_new_subscription_carries_retain_and_a_live_one_does_not()
{
    let broker = Broker::new();
    let server = MqttServer::bind("127.0.0.1:0", broker.clone(), MqttConfig::default())
        .await
        .unwrap();
    let (publisher, mut pub_events) = client(&server, "retainer");
    tokio::spawn(async move { while pub_events.poll().await.is_ok() {} });
    publisher
        .publish("state/door", QoS::AtLeastOnce, true, "open")
        .await
        .unwrap();
    // The retained message is stored once the broker has it.
    timeout(WAIT, async {
        while broker.stats().retained.stored == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the retained publish reached the broker");
    let (sub, mut sub_events) = client(&server, "late-sub");
    sub.subscribe("state/#", QoS::AtLeastOnce).await.unwrap();
    let replayed = next_publish(&mut sub_events).await;
    assert_eq!(&replayed.payload[..], b"open");
    assert!(
        replayed.retain,
        "a replayed retained message carries RETAIN"
    );
    assert_eq!(replayed.qos, QoS::AtLeastOnce);
    publisher
        .publish("state/door", QoS::AtMostOnce, true, "closed")
        .await
        .unwrap();
    let live = next_publish(&mut sub_events).await;
    assert_eq!(&live.payload[..], b"closed");
    assert!(
        !live.retain,
        "a live message goes without RETAIN, retained or not"
    );
    assert_eq!(live.qos, QoS::AtMostOnce, "the publisher's QoS 0 caps it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_does_not_read_loses_messages_by_policy_and_the_drops_are_counted() {
    let broker = Broker::new();
    let config = MqttConfig::default()
        .queue_capacity(8)
        .max_inflight(4)
        .policy(OverflowPolicy::DropOldest);
    let server = MqttServer::bind("127.0.0.1:0", broker.clone(), config)
        .await
        .unwrap();
    let (sub, mut events) = client(&server, "slow");
    sub.subscribe("slow/topic", QoS::AtLeastOnce).await.unwrap();
    suback(&mut events).await;
    // The client stops polling: its PUBACKs stop, the window fills, then its queue.
    let payload = vec![0u8; 1024];
    for _ in 0..200 {
        broker.publish("slow/topic", payload.clone()).unwrap();
    }
    // Quiescent once the window is full: the connection takes nothing more.
    let deadline = std::time::Instant::now() + WAIT;
    while server.stats().client("slow").is_none_or(|c| c.inflight < 4) {
        assert!(std::time::Instant::now() < deadline, "{:?}", server.stats());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let stats = server.stats();
    let slow = stats.client("slow").expect("the session");
    assert_eq!(slow.subscriptions.len(), 1);
    assert!(slow.dropped_by_reason.evicted > 0, "{slow:?}");
    assert_eq!(slow.dropped, slow.dropped_by_reason.evicted);
    let sub_stats = &slow.subscriptions[0];
    assert_eq!(sub_stats.in_flight, 4, "the window, unacknowledged");
    assert_eq!(
        200,
        sub_stats.delivered + sub_stats.in_flight + sub_stats.depth + slow.dropped,
        "every message acknowledged, in flight to the client, queued or dropped by reason"
    );
    assert!(broker.stats().balances());
    drop(events);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_with_hundreds_of_subscriptions_gets_each_message_once_in_order_per_filter() {
    let broker = Broker::new();
    let server = MqttServer::bind("127.0.0.1:0", broker.clone(), MqttConfig::default())
        .await
        .unwrap();
    let (sub, mut events) = client(&server, "many-filters");
    let filters: Vec<_> = (0..300)
        .map(|i| rumqttc::SubscribeFilter::new(format!("dev/{i}/t"), QoS::AtMostOnce))
        .collect();
    sub.subscribe_many(filters).await.unwrap();
    let codes = suback(&mut events).await;
    assert_eq!(codes.len(), 300);
    // A few devices, several messages each, interleaved.
    let devices = [3, 150, 299];
    for round in 0..5 {
        for d in devices {
            broker
                .publish(&format!("dev/{d}/t"), format!("{round}"))
                .unwrap();
        }
    }
    let mut seen: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for _ in 0..15 {
        let p = next_publish(&mut events).await;
        seen.entry(p.topic.clone())
            .or_default()
            .push(String::from_utf8_lossy(&p.payload).into_owned());
    }
    for d in devices {
        assert_eq!(
            seen[&format!("dev/{d}/t")],
            ["0", "1", "2", "3", "4"],
            "device {d}: once each, in order"
        );
    }
    // Nothing more: each message went out once.
    let extra = timeout(Duration::from_millis(200), next_publish(&mut events)).await;
    assert!(extra.is_err(), "a message went out twice: {extra:?}");

    // A subscription ended through the broker (by someone else) leaves the session; the rest go on.
    let gone = broker
        .stats()
        .subscriptions
        .iter()
        .find(|s| s.filter == "dev/3/t")
        .unwrap()
        .id;
    broker.unsubscribe(gone).unwrap();
    broker.publish("dev/150/t", "after").unwrap();
    let p = next_publish(&mut events).await;
    assert_eq!(
        (p.topic.as_str(), &p.payload[..]),
        ("dev/150/t", &b"after"[..])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_retained_store_still_delivers_retained_publishes_and_wills_live() {
    use switchyard::{BrokerOptions, RetainedLimits};
    let broker = Broker::with_options(BrokerOptions::new().retained(RetainedLimits {
        max_messages: 3,
        max_bytes: 1 << 20,
    }));
    let server = MqttServer::bind(
        "127.0.0.1:0",
        broker.clone(),
        MqttConfig::default().sys_interval(None),
    )
    .await
    .unwrap();
    for i in 0..3 {
        broker
            .publish_with(
                &format!("fill/{i}"),
                "x",
                switchyard::PublishOptions::new().retain(true),
            )
            .unwrap();
    }
    assert_eq!(broker.stats().retained.messages, 3, "the store is full");

    let (sub, mut sub_events) = client(&server, "full-sub");
    sub.subscribe("live/#", QoS::AtLeastOnce).await.unwrap();
    suback(&mut sub_events).await;

    // A retained QoS 1 publish while the store is full: not kept, delivered live all the same.
    let (publisher, mut pub_events) = client(&server, "full-pub");
    tokio::spawn(async move { while pub_events.poll().await.is_ok() {} });
    publisher
        .publish("live/t", QoS::AtLeastOnce, true, "now")
        .await
        .unwrap();
    let got = next_publish(&mut sub_events).await;
    assert_eq!(
        (got.topic.as_str(), &got.payload[..]),
        ("live/t", &b"now"[..])
    );

    // A retained will of a client that goes away uncleanly: delivered live too.
    let addr = server.local_addr();
    let mut options = MqttOptions::new("full-will", addr.ip().to_string(), addr.port());
    options.set_keep_alive(Duration::from_secs(5));
    options.set_last_will(rumqttc::LastWill::new(
        "live/will",
        "gone",
        QoS::AtLeastOnce,
        true,
    ));
    let (dying, mut dying_events) = AsyncClient::new(options, 8);
    timeout(WAIT, async {
        loop {
            if let Event::Incoming(Packet::ConnAck(_)) = dying_events.poll().await.unwrap() {
                break;
            }
        }
    })
    .await
    .expect("connected");
    drop(dying);
    drop(dying_events); // the socket closes without DISCONNECT: the will is published
    let will = next_publish(&mut sub_events).await;
    assert_eq!(
        (will.topic.as_str(), &will.payload[..]),
        ("live/will", &b"gone"[..])
    );

    let stats = broker.stats();
    assert_eq!(stats.retained.messages, 3, "neither was kept");
    assert_eq!(stats.retained.rejected, 2, "both refusals are counted");
    assert!(stats.balances(), "{stats:?}");
}
