//! A subscribe's retained replay must not stall other connections: with a full retained store, two
//! clients SUBSCRIBE and UNSUBSCRIBE in a loop (each new subscription walks the whole store), while a
//! third client's PINGREQ round trips stay fast. The listener runs on two tokio workers, as on a small
//! machine, so replays on the workers would hold both of them.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

mod common;

use bytes::BytesMut;
use rumqttc::{Connect, Packet, QoS, Subscribe, Unsubscribe};
use switchyard::{Broker, PublishOptions};
use switchyard_mqtt::{MqttConfig, MqttServer, decode};

use common::runtime;

/// Retained messages in the store: the default limit, so the store is full.
const RETAINED: usize = 10_000;
/// SUBSCRIBE/UNSUBSCRIBE pairs each churning client sends per round before reading the answers.
const PAIRS: u16 = 1_000;
/// PINGREQ round trips measured.
const PINGS: usize = 20;

fn write(stream: &mut TcpStream, packet: Packet) {
    let mut buf = BytesMut::new();
    packet.write(&mut buf, usize::MAX).unwrap();
    stream.write_all(&buf).unwrap();
}

/// Reads packets until `count` have arrived (or the connection ends, or 30 s pass).
fn read_packets(stream: &mut TcpStream, buf: &mut BytesMut, count: usize) -> usize {
    let mut got = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while got < count && Instant::now() < deadline {
        while got < count && decode(buf, 1 << 20).unwrap().is_some() {
            got += 1;
        }
        if got == count {
            break;
        }
        let mut chunk = [0u8; 16 * 1024];
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => break,
        }
    }
    got
}

fn connected(addr: SocketAddr, id: &str) -> (TcpStream, BytesMut) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    stream.set_nodelay(true).unwrap();
    write(&mut stream, Packet::Connect(Connect::new(id)));
    let mut buf = BytesMut::new();
    assert_eq!(
        read_packets(&mut stream, &mut buf, 1),
        1,
        "CONNACK for {id}"
    );
    (stream, buf)
}

/// Subscribes and unsubscribes `PAIRS` filters per round until `stop`, reading the answers of each
/// round before the next (and none once stopped: the connection just goes).
fn churn(addr: SocketAddr, id: &str, stop: Arc<AtomicBool>) {
    let (mut stream, mut buf) = connected(addr, id);
    loop {
        for i in 0..PAIRS {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            // Matches one retained message; replaying it walks the whole store.
            let filter = format!("fill/{i}");
            let mut subscribe = Subscribe::new(&filter, QoS::AtMostOnce);
            subscribe.pkid = 2 * i + 1;
            write(&mut stream, Packet::Subscribe(subscribe));
            let mut unsubscribe = Unsubscribe::new(&filter);
            unsubscribe.pkid = 2 * i + 2;
            write(&mut stream, Packet::Unsubscribe(unsubscribe));
        }
        read_packets(&mut stream, &mut buf, 2 * usize::from(PAIRS));
    }
}

#[test]
fn pingreq_round_trips_stay_fast_while_other_clients_subscribe_over_a_full_retained_store() {
    let rt = runtime();
    let broker = Broker::new();
    for i in 0..RETAINED {
        broker
            .publish_with(
                &format!("fill/{i}"),
                "x",
                PublishOptions::new().retain(true),
            )
            .unwrap();
    }
    assert_eq!(broker.stats().retained.messages as usize, RETAINED);
    let config = MqttConfig::default().sys_interval(None);
    let server = rt
        .block_on(MqttServer::bind("127.0.0.1:0", broker.clone(), config))
        .unwrap();
    let addr = server.local_addr();

    let (mut pinger, mut buf) = connected(addr, "pinger");
    let stop = Arc::new(AtomicBool::new(false));
    let churners: Vec<_> = ["churn-a", "churn-b"]
        .map(|id| {
            let stop = stop.clone();
            std::thread::spawn(move || churn(addr, id, stop))
        })
        .into();
    // Let the churn get going.
    std::thread::sleep(Duration::from_millis(300));
    let mut round_trips = Vec::with_capacity(PINGS);
    for _ in 0..PINGS {
        let sent = Instant::now();
        write(&mut pinger, Packet::PingReq);
        let got = read_packets(&mut pinger, &mut buf, 1);
        round_trips.push(sent.elapsed());
        assert_eq!(got, 1, "no PINGRESP within 30 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, Ordering::Relaxed);
    for churner in churners {
        churner.join().unwrap();
    }
    round_trips.sort();
    let median = round_trips[PINGS / 2];
    let max = round_trips[PINGS - 1];
    eprintln!("PINGREQ round trips under churn: median {median:?}, max {max:?}");
    let churned = broker.stats().retained.replayed;
    assert!(churned > 0, "the churn never replayed the store");
    // Generous bounds for a noisy machine; replays on the workers gave a median of seconds.
    assert!(
        median < Duration::from_millis(250),
        "median {median:?}, max {max:?}"
    );
    assert!(
        max < Duration::from_secs(1),
        "median {median:?}, max {max:?}"
    );
}
