//! The bridge across a restart of the remote Mosquitto while local messages keep going out: it
//! subscribes to its in filters again after every reconnect, whatever the out direction is doing.

mod bridge_common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bridge_common::{Mosquitto, config, free_port, wait_for};
use switchyard::{Broker, Subscription};
use switchyard_mqtt::{Bridge, BridgeConfig};

/// Publishes `topic` on the remote with `mosquitto_pub` until `local` receives it; whether it did
/// within `within`. Mosquitto drops what nobody is subscribed to, so it is sent again until the
/// bridge's subscription is in place.
fn until_bridged_in(
    mosquitto: &Mosquitto,
    topic: &str,
    local: &Subscription,
    within: Duration,
) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        mosquitto.publish(topic, "open", None);
        if local.recv_timeout(Duration::from_millis(100)).is_ok() {
            return true;
        }
    }
    false
}

/// How long a command may take to come in once the bridge is connected.
const WITHIN: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_remote_restarts_under_outgoing_load_commands_come_in_again() {
    let port = free_port();
    let mosquitto = Mosquitto::start(port);
    let broker = Broker::new();
    let bridge = Bridge::start(&broker, config(port, &["sensors/#"], &["commands/#"])).unwrap();
    wait_for(&bridge, "the connection", |s| s.connected).await;
    let commands = broker.subscribe("commands/#").unwrap();
    // mosquitto_pub and the local receive block: off the runtime's workers.
    let (mosquitto, before) = tokio::task::spawn_blocking({
        let commands = commands.clone();
        move || {
            let came_in = until_bridged_in(&mosquitto, "commands/x", &commands, WITHIN);
            (mosquitto, came_in)
        }
    })
    .await
    .unwrap();
    assert!(before, "commands came in before the restart");

    drop(mosquitto);
    wait_for(&bridge, "the disconnection", |s| !s.connected).await;
    for i in 0..200 {
        broker.publish("sensors/t", format!("{i}")).unwrap();
    }
    // The client's request channel is full: what the unfixed bridge's subscribe could not get into.
    wait_for(&bridge, "a full request channel", |s| {
        s.out_forwarded >= BridgeConfig::CLIENT_CHANNEL as u64
    })
    .await;
    // Outgoing load through the restart and after it.
    let stop = Arc::new(AtomicBool::new(false));
    let load = std::thread::spawn({
        let (broker, stop) = (broker.clone(), stop.clone());
        move || {
            for i in 0..100_000 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                broker.publish("sensors/t", format!("load {i}")).unwrap();
                std::thread::sleep(Duration::from_micros(500));
            }
        }
    });

    let mosquitto = Mosquitto::start(port);
    wait_for(&bridge, "the reconnection", |s| {
        s.connected && s.connects >= 2
    })
    .await;
    let (_mosquitto, came_in) = tokio::task::spawn_blocking(move || {
        let came_in = until_bridged_in(&mosquitto, "commands/x", &commands, WITHIN);
        (mosquitto, came_in)
    })
    .await
    .unwrap();
    stop.store(true, Ordering::Relaxed);
    load.join().unwrap();
    let stats = bridge.stats();
    assert!(
        came_in,
        "nothing came in from the remote after its restart: {stats:?}"
    );
    assert!(
        stats.out_forwarded > 200,
        "the load went out too: {stats:?}"
    );
}
