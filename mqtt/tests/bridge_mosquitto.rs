//! The bridge against a real Mosquitto started by the test on a free loopback port (its config binds
//! 127.0.0.1 only): topics go out and come in, echoes are not looped, and while Mosquitto is away the
//! out queue drops by policy, counted, and the bridge reconnects when it is back.
//! `scripts/test.sh` installs mosquitto; a missing binary fails these tests.

mod bridge_common;

use std::time::{Duration, Instant};

use bridge_common::{Mosquitto, WAIT, config, free_port, wait_for};
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, QoS};
use switchyard::{Broker, OverflowPolicy};
use switchyard_mqtt::Bridge;
use tokio::time::timeout;

/// A client of the remote Mosquitto, subscribed to `filter` (SUBACK awaited).
async fn remote_client(port: u16, id: &str, filter: Option<&str>) -> (AsyncClient, EventLoop) {
    let (client, mut events) = AsyncClient::new(MqttOptions::new(id, "127.0.0.1", port), 64);
    if let Some(filter) = filter {
        client.subscribe(filter, QoS::AtLeastOnce).await.unwrap();
        timeout(WAIT, async {
            loop {
                if let Event::Incoming(Packet::SubAck(_)) = events.poll().await.unwrap() {
                    return;
                }
            }
        })
        .await
        .expect("SUBACK from mosquitto");
    }
    (client, events)
}

/// The next PUBLISH on `events` within `within`, or None.
async fn next_publish(events: &mut EventLoop, within: Duration) -> Option<(String, Vec<u8>)> {
    timeout(within, async {
        loop {
            if let Event::Incoming(Packet::Publish(p)) = events.poll().await.unwrap() {
                return (p.topic, p.payload.to_vec());
            }
        }
    })
    .await
    .ok()
}

/// Publishes `topic` on the remote every 100 ms until `local` receives one (the bridge's remote
/// subscription is in place), bounded by `WAIT`.
async fn until_bridged_in(remote: &AsyncClient, topic: &str, local: &switchyard::Subscription) {
    let deadline = Instant::now() + WAIT;
    loop {
        remote
            .publish(topic, QoS::AtLeastOnce, false, "probe")
            .await
            .unwrap();
        if local.recv_timeout(Duration::from_millis(100)).is_ok() {
            return;
        }
        assert!(Instant::now() < deadline, "nothing bridged in on {topic}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sensors_go_out_and_commands_come_in_through_a_real_mosquitto() {
    let mosquitto = Mosquitto::start(free_port());
    let broker = Broker::new();
    let bridge = Bridge::start(
        &broker,
        config(mosquitto.port, &["sensors/#"], &["commands/#"]),
    )
    .unwrap();
    wait_for(&bridge, "the connection", |s| s.connected).await;

    let (_watcher, mut watcher_events) =
        remote_client(mosquitto.port, "watcher", Some("sensors/#")).await;
    let drive = tokio::spawn(async move {
        let got = next_publish(&mut watcher_events, WAIT).await;
        (got, watcher_events)
    });
    broker.publish("sensors/t1", "21.5").unwrap();
    let (got, _) = drive.await.unwrap();
    assert_eq!(got, Some(("sensors/t1".to_string(), b"21.5".to_vec())));

    let commands = broker.subscribe("commands/#").unwrap();
    let (commander, mut commander_events) = remote_client(mosquitto.port, "commander", None).await;
    tokio::spawn(async move { while commander_events.poll().await.is_ok() {} });
    until_bridged_in(&commander, "commands/probe", &commands).await;
    commander
        .publish("commands/door", QoS::AtLeastOnce, false, "open")
        .await
        .unwrap();
    let deadline = Instant::now() + WAIT;
    let door = loop {
        let d = commands.recv_timeout(WAIT).unwrap();
        if d.topic() == "commands/door" {
            break d;
        }
        assert!(Instant::now() < deadline);
    };
    assert_eq!(&door.payload()[..], b"open");
    // The counter moves just after the local publish returns, so it may trail the delivery a moment.
    wait_for(&bridge, "the in counters", |s| s.in_published >= 2).await;
    let stats = bridge.stats();
    assert_eq!(stats.out_forwarded, 1);
    assert!(stats.in_balances());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_bridged_both_ways_is_not_looped() {
    let mosquitto = Mosquitto::start(free_port());
    let broker = Broker::new();
    let bridge = Bridge::start(&broker, config(mosquitto.port, &["loop/#"], &["loop/#"])).unwrap();
    wait_for(&bridge, "the connection", |s| s.connected).await;
    let local = broker.subscribe("loop/#").unwrap();
    let (remote, mut remote_events) = remote_client(mosquitto.port, "looper", Some("loop/#")).await;

    // Wait until the bridge's remote subscription is there: a local publish comes back as an echo.
    broker.publish("loop/local", "from here").unwrap();
    assert_eq!(
        next_publish(&mut remote_events, WAIT).await,
        Some(("loop/local".to_string(), b"from here".to_vec()))
    );
    wait_for(&bridge, "the echo of the local message", |s| {
        s.in_loop_skipped == 1
    })
    .await;
    remote
        .publish("loop/remote", QoS::AtLeastOnce, false, "from there")
        .await
        .unwrap();
    // The remote client sees its own message once (Mosquitto), and never a second copy via the bridge.
    assert_eq!(
        next_publish(&mut remote_events, WAIT).await,
        Some(("loop/remote".to_string(), b"from there".to_vec()))
    );
    assert_eq!(
        next_publish(&mut remote_events, Duration::from_millis(500)).await,
        None
    );
    let topics: Vec<String> = std::iter::from_fn(|| local.try_recv().ok())
        .map(|d| d.topic().to_string())
        .collect();
    assert_eq!(topics, ["loop/local", "loop/remote"]);
    let stats = bridge.stats();
    assert_eq!(
        (stats.out_forwarded, stats.out_loop_skipped),
        (1, 1),
        "{stats:?}"
    );
    assert_eq!(
        (stats.in_published, stats.in_loop_skipped),
        (1, 1),
        "{stats:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_the_remote_is_away_the_out_queue_drops_by_policy_and_the_bridge_reconnects() {
    let port = free_port();
    let mosquitto = Mosquitto::start(port);
    let broker = Broker::new();
    let mut config = config(port, &["away/#"], &[]);
    config.queue_capacity = 16;
    config.policy = OverflowPolicy::DropOldest;
    let bridge = Bridge::start(&broker, config).unwrap();
    wait_for(&bridge, "the connection", |s| s.connected).await;
    drop(mosquitto);
    wait_for(&bridge, "the disconnection", |s| !s.connected).await;

    for i in 0..500 {
        broker.publish("away/t", format!("m{i}")).unwrap();
    }
    // The client's channel takes what it can; the rest waits in the queue of 16, the oldest evicted.
    wait_for(&bridge, "drops while away", |s| {
        s.out_dropped_by_reason.evicted > 0 && s.out_filters[0].depth == 16
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let away = bridge.stats();
    assert_eq!(
        away.out_dropped_by_reason.evicted,
        away.out_dropped_by_reason.total()
    );
    let sub = broker.subscription_stats(away.out_filters[0].id).unwrap();
    assert_eq!(sub.matched, 500);
    assert_eq!(sub.matched, sub.delivered + sub.dropped + sub.depth);
    // Taken from the queue: handed to the client, plus at most one waiting for room in its channel.
    assert!(
        (away.out_forwarded..=away.out_forwarded + 1).contains(&sub.delivered),
        "{away:?} {sub:?}"
    );

    let _mosquitto = Mosquitto::start(port);
    wait_for(&bridge, "the reconnection", |s| {
        s.connected && s.connects >= 2
    })
    .await;
    let (_watcher, mut events) = remote_client(port, "after", Some("away/#")).await;
    wait_for(&bridge, "the backlog forwarded", |s| {
        s.out_filters[0].depth == 0
    })
    .await;
    broker.publish("away/t", "after the return").unwrap();
    let deadline = Instant::now() + WAIT;
    loop {
        let (_, payload) = next_publish(&mut events, WAIT).await.expect("a message");
        if payload == b"after the return" {
            break;
        }
        assert!(Instant::now() < deadline);
    }
    assert!(bridge.stats().connection_errors >= 1);
}
