//! Packets the codec can read but MQTT 3.1.1 forbids, sent on raw sockets: each closes its connection
//! unanswered and is counted as `protocol_error`. Fixed-header flags other than section 2.2.2's,
//! SUBSCRIBE and UNSUBSCRIBE with packet id 0 (section 2.3.1), a CONNECT with bytes after its last
//! field (section 3.1). And whatever ends a connection, the answers to the packets before it (a
//! PUBACK, a SUBACK) are written first.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

mod common;

use bytes::BytesMut;
use rumqttc::{Connect, Packet, Publish, QoS, Subscribe};
use switchyard::Broker;
use switchyard_mqtt::{MqttConfig, MqttServer, decode};

use common::runtime;

fn connect_bytes(id: &str) -> Vec<u8> {
    let mut buf = BytesMut::new();
    Packet::Connect(Connect::new(id))
        .write(&mut buf, usize::MAX)
        .unwrap();
    buf.to_vec()
}

/// Sends `bytes` on a new connection (after a CONNECT and its CONNACK, unless `bytes` is the first
/// packet) and returns every packet the server sent back before it closed the connection (within 5 s).
fn answers(addr: SocketAddr, connect_first: bool, bytes: &[u8]) -> Vec<Packet> {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buf = BytesMut::new();
    let mut got = Vec::new();
    if connect_first {
        stream.write_all(&connect_bytes("violator")).unwrap();
        while buf.len() < 4 {
            let mut chunk = [0u8; 4];
            let n = stream.read(&mut chunk).unwrap();
            assert!(n > 0, "closed before CONNACK");
            buf.extend_from_slice(&chunk[..n]);
        }
        let connack = decode(&mut buf, 1 << 20).unwrap();
        assert!(matches!(connack, Some(Packet::ConnAck(_))), "{connack:?}");
    }
    stream.write_all(bytes).unwrap();
    let started = Instant::now();
    loop {
        while let Some(packet) = decode(&mut buf, 1 << 20).unwrap() {
            got.push(packet);
        }
        let mut chunk = [0u8; 1024];
        match stream.read(&mut chunk) {
            Ok(0) => return got,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) => panic!(
                "not closed after {:?} ({e}); answered {got:?}",
                started.elapsed()
            ),
        }
    }
}

/// A CONNECT whose remaining length runs three bytes past its last field.
fn connect_with_trailing_bytes() -> Vec<u8> {
    let mut bytes = connect_bytes("trailing");
    assert!(bytes[1] < 0x7D, "a one-byte remaining length");
    bytes[1] += 3;
    bytes.extend_from_slice(b"xyz");
    bytes
}

#[test]
fn reserved_flags_packet_id_0_and_trailing_connect_bytes_close_as_protocol_errors() {
    let rt = runtime();
    let config = MqttConfig::default().sys_interval(None);
    let server = rt
        .block_on(MqttServer::bind("127.0.0.1:0", Broker::new(), config))
        .unwrap();
    let addr = server.local_addr();

    // The control: a well-formed PINGREQ is answered.
    let mut control = TcpStream::connect(addr).unwrap();
    control
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    control.write_all(&connect_bytes("control")).unwrap();
    let mut connack = [0u8; 4];
    control.read_exact(&mut connack).unwrap();
    control.write_all(&[0xC0, 0x00]).unwrap();
    let mut pingresp = [0u8; 2];
    control.read_exact(&mut pingresp).unwrap();
    assert_eq!(pingresp, [0xD0, 0x00]);
    drop(control);

    let violations: [(&str, Vec<u8>); 5] = [
        (
            "SUBSCRIBE flags 0000",
            vec![0x80, 0x06, 0, 1, 0, 1, b'a', 0],
        ),
        ("UNSUBSCRIBE flags 0000", vec![0xA0, 0x05, 0, 1, 0, 1, b'a']),
        ("PUBREL flags 0000", vec![0x60, 0x02, 0, 1]),
        ("PINGREQ flags 0101", vec![0xC5, 0x00]),
        (
            "SUBSCRIBE with packet id 0",
            vec![0x82, 0x06, 0, 0, 0, 1, b'a', 0],
        ),
    ];
    for (what, bytes) in &violations {
        let answered = answers(addr, true, bytes);
        assert!(answered.is_empty(), "{what}: answered {answered:?}");
    }
    let answered = answers(addr, false, &connect_with_trailing_bytes());
    assert!(
        answered.is_empty(),
        "trailing CONNECT: answered {answered:?}"
    );

    let deadline = Instant::now() + Duration::from_secs(5);
    while server.stats().open > 0 || server.stats().closed_by_reason.total() < 7 {
        assert!(Instant::now() < deadline, "{:?}", server.stats());
        std::thread::sleep(Duration::from_millis(10));
    }
    let stats = server.stats();
    assert_eq!(stats.closed_by_reason.protocol_error, 6, "{stats:?}");
    assert!(stats.balances(), "{stats:?}");
}

/// The bytes of `packets`, one after the other.
fn bytes_of(packets: Vec<Packet>) -> Vec<u8> {
    let mut buf = BytesMut::new();
    for packet in packets {
        packet.write(&mut buf, usize::MAX).unwrap();
    }
    buf.to_vec()
}

fn qos1_publish(pkid: u16) -> Packet {
    let mut publish = Publish::new("flush/t", QoS::AtLeastOnce, "m");
    publish.pkid = pkid;
    Packet::Publish(publish)
}

#[test]
fn answers_to_the_packets_before_a_close_are_written_before_it() {
    let rt = runtime();
    let config = MqttConfig::default().sys_interval(None);
    let server = rt
        .block_on(MqttServer::bind("127.0.0.1:0", Broker::new(), config))
        .unwrap();
    let addr = server.local_addr();
    let mut subscribe = Subscribe::new("flush/#", QoS::AtLeastOnce);
    subscribe.pkid = 9;
    // In one write, as a client that does not wait for its acknowledgements sends them.
    let cases: [(&str, Vec<Packet>, &[&str]); 3] = [
        (
            "PUBLISH QoS 1 then DISCONNECT",
            vec![qos1_publish(7), Packet::Disconnect],
            &["PubAck(PubAck { pkid: 7"],
        ),
        (
            "SUBSCRIBE, PUBLISH QoS 1, PINGREQ then DISCONNECT",
            vec![
                Packet::Subscribe(subscribe),
                qos1_publish(8),
                Packet::PingReq,
                Packet::Disconnect,
            ],
            &[
                "SubAck(SubAck { pkid: 9",
                "PubAck(PubAck { pkid: 8",
                "PingResp",
            ],
        ),
        (
            "PUBLISH QoS 1 then a protocol error",
            vec![qos1_publish(10)],
            &["PubAck(PubAck { pkid: 10"],
        ),
    ];
    for (what, packets, expected) in cases {
        let mut bytes = bytes_of(packets);
        if what.ends_with("protocol error") {
            bytes.extend_from_slice(&[0xC5, 0x00]); // PINGREQ with reserved flags 0101
        }
        let answered = format!("{:?}", answers(addr, true, &bytes));
        for packet in expected {
            assert!(answered.contains(packet), "{what}: answered {answered}");
        }
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.stats().open > 0 || server.stats().closed_by_reason.total() < 3 {
        assert!(Instant::now() < deadline, "{:?}", server.stats());
        std::thread::sleep(Duration::from_millis(10));
    }
    let closed = server.stats().closed_by_reason;
    assert_eq!(
        (closed.disconnect, closed.protocol_error),
        (2, 1),
        "{closed:?}"
    );
}
