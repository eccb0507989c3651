//! What an idle MQTT connection costs the server: the heap bytes one more connection holds, with a
//! QoS 1 subscription of its own, counted exactly by a counting global allocator (resident memory,
//! which `scripts/mqtt-bench.py idle` measures against Mosquitto, blurs small amounts and depends on
//! which pages the allocator touched). The bound keeps what docs/memory.md says of an idle connection
//! true: a change that makes every connection hold more fails here, not in a benchmark nobody runs.
//!
//! Beside it, the same count for the floor under any tokio server of this design
//! (`examples/support/idle_floor.rs`: a task per connection, idle in a read, holding one acknowledged
//! subscription of the core and nothing else): what `MqttServer` holds above the floor is what its
//! features cost an idle connection.
//!
//! Run with `cargo test --release -p switchyard-mqtt --test idle_memory -- --nocapture` to see the
//! figures.

mod common;

#[path = "../../examples/support/counting_allocator.rs"]
mod counting_allocator;
#[path = "../examples/support/idle_floor.rs"]
mod idle_floor;

use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use common::raw::Raw;
use counting_allocator::{Counting, live_bytes};
use rumqttc::{Connect, ConnectReturnCode, Packet, QoS, Subscribe};
use switchyard::{Broker, BrokerOptions, TopicSyntax};
use switchyard_mqtt::{MqttConfig, MqttServer};

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Connections measured (a warm-up connection is made first, so that what the server makes once, at
/// its first client, is not counted per connection).
const CONNECTIONS: usize = 300;

/// The heap bytes one idle connection with one QoS 1 subscription may hold: everything the listener,
/// the session and the broker keep for it (docs/memory.md, "MQTT connections", says what each byte
/// is). About 5% above what it measured (3,810 B once the session's ready list was made at its first
/// entry, 2026-12-08; the floor of the design, counted beside it, is 1,892 B).
const BUDGET_PER_CONNECTION: usize = 4_000;

/// Opens a client `id` with a 60 s keep-alive and one QoS 1 subscription to its own topic; returns
/// its socket once the SUBACK came (the test's own reading buffer is freed with the rest of `Raw`).
fn subscribed_client(addr: SocketAddr, id: usize) -> TcpStream {
    let mut raw = Raw::connect(addr);
    let mut connect = Connect::new(format!("idle-{id}"));
    connect.keep_alive = 60;
    raw.send(Packet::Connect(connect));
    match raw.read() {
        Some(Packet::ConnAck(ack)) => assert_eq!(ack.code, ConnectReturnCode::Success),
        other => panic!("expected CONNACK, got {other:?}"),
    }
    let mut subscribe = Subscribe::new(format!("idle/{id}"), QoS::AtLeastOnce);
    subscribe.pkid = 1;
    raw.send(Packet::Subscribe(subscribe));
    match raw.read() {
        Some(Packet::SubAck(ack)) => assert_eq!(ack.pkid, 1),
        other => panic!("expected SUBACK, got {other:?}"),
    }
    raw.stream
}

/// The live heap bytes once they stop changing (the server's tasks settle into their waits after
/// the last SUBACK is written), looked at every 20 ms, at most 5 s.
fn settled_live_bytes() -> usize {
    let mut last = live_bytes();
    for _ in 0..250 {
        std::thread::sleep(Duration::from_millis(20));
        let now = live_bytes();
        if now == last {
            return now;
        }
        last = now;
    }
    last
}

/// The heap bytes each of [`CONNECTIONS`] more idle subscribed clients of the server at `addr`
/// holds (after a warm-up client); returns them with the clients, which stay connected.
fn heap_per_connection(addr: SocketAddr) -> (usize, Vec<TcpStream>) {
    let mut clients = vec![subscribed_client(addr, CONNECTIONS)];
    let before = settled_live_bytes();
    for id in 0..CONNECTIONS {
        clients.push(subscribed_client(addr, id));
    }
    let after = settled_live_bytes();
    ((after - before) / CONNECTIONS, clients)
}

fn mqtt_broker() -> Broker {
    Broker::with_options(BrokerOptions::new().topic_syntax(TopicSyntax::Mqtt))
}

#[test]
fn an_idle_connection_with_one_qos_1_subscription_holds_a_bounded_number_of_heap_bytes() {
    let runtime = common::runtime();
    // The floor first, on a broker of its own; its clients stay connected until the end, so what
    // they hold is not freed into the measurement of the server.
    let floor_broker = mqtt_broker();
    let floor_listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let floor_addr = floor_listener.local_addr().unwrap();
    runtime.spawn(idle_floor::serve(floor_listener, floor_broker.clone()));
    let (floor, floor_clients) = heap_per_connection(floor_addr);
    assert_eq!(
        floor_broker.stats().totals.subscriptions,
        CONNECTIONS as u64 + 1,
        "the floor holds one subscription per client"
    );

    let server = runtime
        .block_on(MqttServer::bind(
            "127.0.0.1:0",
            mqtt_broker(),
            MqttConfig::default(),
        ))
        .unwrap();
    let (per_connection, clients) = heap_per_connection(server.local_addr());
    println!(
        "{CONNECTIONS} idle connections, one QoS 1 subscription each: {per_connection} heap bytes \
         per connection (server, session and broker subscription); the floor of a task per \
         connection holding one subscription of the core: {floor}"
    );
    assert_eq!(server.stats().open, CONNECTIONS as u64 + 1);
    assert!(
        per_connection <= BUDGET_PER_CONNECTION,
        "an idle connection holds {per_connection} bytes, over its budget of \
         {BUDGET_PER_CONNECTION}: see docs/memory.md for what each byte is"
    );
    drop(clients);
    drop(floor_clients);
}
