//! Fuzzing the decode path on stable: random bytes and mutated valid packets never panic the codec
//! wrapper, and sent to a live listener they close only their own connection, counted by reason.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use rumqttc::{
    Connect, LastWill, Packet, PubAck, PubRel, Publish, QoS, Subscribe, SubscribeFilter,
    Unsubscribe,
};
use switchyard::Broker;
use switchyard_mqtt::{MqttConfig, MqttServer, decode, decode_first};

const MAX: usize = 4096;

fn qos() -> impl Strategy<Value = QoS> {
    prop_oneof![
        Just(QoS::AtMostOnce),
        Just(QoS::AtLeastOnce),
        Just(QoS::ExactlyOnce)
    ]
}

/// Valid packets of every kind a client sends.
fn client_packet() -> impl Strategy<Value = Packet> {
    let topic = "[a-z/+#$]{1,20}";
    prop_oneof![
        (
            "[a-z0-9]{0,12}",
            any::<bool>(),
            any::<u16>(),
            proptest::option::of((topic, any::<Vec<u8>>(), qos(), any::<bool>()))
        )
            .prop_map(|(id, clean, keep_alive, will)| {
                let mut c = Connect::new(id);
                c.clean_session = clean;
                c.keep_alive = keep_alive;
                c.last_will = will.map(|(t, m, q, r)| LastWill::new(t, m, q, r));
                Packet::Connect(c)
            }),
        (
            topic,
            qos(),
            1..u16::MAX,
            any::<bool>(),
            any::<bool>(),
            proptest::collection::vec(any::<u8>(), 0..64)
        )
            .prop_map(|(t, q, pkid, retain, dup, payload)| {
                let mut p = Publish::from_bytes(t, q, Bytes::from(payload));
                p.pkid = if q == QoS::AtMostOnce { 0 } else { pkid };
                p.retain = retain;
                p.dup = dup;
                Packet::Publish(p)
            }),
        (1..u16::MAX, proptest::collection::vec((topic, qos()), 1..4)).prop_map(|(pkid, fs)| {
            let mut s =
                Subscribe::new_many(fs.into_iter().map(|(f, q)| SubscribeFilter::new(f, q)));
            s.pkid = pkid;
            Packet::Subscribe(s)
        }),
        (1..u16::MAX, topic).prop_map(|(pkid, t)| {
            let mut u = Unsubscribe::new(t);
            u.pkid = pkid;
            Packet::Unsubscribe(u)
        }),
        any::<u16>().prop_map(|id| Packet::PubAck(PubAck::new(id))),
        any::<u16>().prop_map(|id| Packet::PubRel(PubRel::new(id))),
        Just(Packet::PingReq),
        Just(Packet::Disconnect),
    ]
}

fn encode(packet: &Packet) -> Vec<u8> {
    let mut buf = BytesMut::new();
    packet.write(&mut buf, usize::MAX).unwrap();
    buf.to_vec()
}

/// Byte-level mutations: flip, overwrite, insert, delete, truncate.
#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Set(usize, u8),
    Insert(usize, u8),
    Delete(usize),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1..=255u8).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<usize>().prop_map(Mutation::Delete),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn mutate(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        if bytes.is_empty() {
            break;
        }
        let n = bytes.len();
        match *m {
            Mutation::Flip(i, b) => bytes[i % n] ^= b,
            Mutation::Set(i, b) => bytes[i % n] = b,
            Mutation::Insert(i, b) => bytes.insert(i % (n + 1), b),
            Mutation::Delete(i) => {
                bytes.remove(i % n);
            }
            Mutation::Truncate(i) => bytes.truncate(i % n),
        }
    }
    bytes
}

/// Decodes everything in `bytes` the way a connection does: until more bytes are needed or an error.
fn decode_all(bytes: &[u8]) -> usize {
    let mut buf = BytesMut::from(bytes);
    let mut packets = 0;
    if !matches!(decode_first(&mut buf, MAX), Ok(Some(_))) {
        return 0;
    }
    while let Ok(Some(_)) = decode(&mut buf, MAX) {
        packets += 1;
    }
    packets
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_bytes_never_panic_the_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        decode_all(&bytes);
    }

    #[test]
    fn valid_packets_decode_to_themselves(packet in client_packet()) {
        let mut buf = BytesMut::from(&encode(&packet)[..]);
        let decoded = decode(&mut buf, MAX).unwrap().unwrap();
        prop_assert_eq!(decoded, packet);
        prop_assert!(buf.is_empty());
    }

    #[test]
    fn mutated_packets_never_panic_the_decoder(
        packets in proptest::collection::vec(client_packet(), 1..4),
        mutations in proptest::collection::vec(mutation(), 1..6),
    ) {
        let bytes: Vec<u8> = packets.iter().flat_map(encode).collect();
        decode_all(&mutate(bytes, &mutations));
    }
}

/// Sends `bytes` after a valid CONNECT and reads until the server closes or 2 s pass.
fn send_to_server(addr: std::net::SocketAddr, bytes: &[u8]) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let _ = stream.write_all(&encode(&Packet::Connect(Connect::new("fuzz"))));
    let _ = stream.write_all(bytes);
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let mut sink = [0u8; 4096];
    while let Ok(n) = stream.read(&mut sink) {
        if n == 0 {
            break;
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn mutated_packets_close_only_their_connection_with_a_counted_reason(
        packets in proptest::collection::vec(client_packet(), 1..4),
        mutations in proptest::collection::vec(mutation(), 1..6),
    ) {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let broker = Broker::new();
        let server = runtime.block_on(MqttServer::bind(
            "127.0.0.1:0",
            broker.clone(),
            MqttConfig::default().max_packet_size(MAX).sys_interval(None),
        )).unwrap();
        let addr = server.local_addr();
        let bytes: Vec<u8> = packets.iter().flat_map(encode).collect();
        send_to_server(addr, &mutate(bytes, &mutations));
        // The server still serves a well-behaved client afterwards.
        send_to_server(addr, &encode(&Packet::PingReq));
        let deadline = Instant::now() + Duration::from_secs(5);
        while server.stats().open > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        let stats = server.stats();
        prop_assert_eq!(stats.accepted, 2);
        prop_assert_eq!(stats.open, 0);
        prop_assert!(stats.balances(), "{:?}", stats);
        prop_assert!(broker.stats().balances());
        drop(server);
    }
}
