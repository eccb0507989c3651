//! A raw MQTT connection for tests that must send exactly the packets they choose (an acknowledgement
//! never sent, a stale packet id) and read every packet the server sends.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use bytes::BytesMut;
use rumqttc::{Connect, Packet};
use switchyard_mqtt::decode;

/// One packet as bytes.
pub fn encode(packet: Packet) -> Vec<u8> {
    let mut buf = BytesMut::new();
    packet.write(&mut buf, usize::MAX).unwrap();
    buf.to_vec()
}

/// A raw connection that reads whole packets with a 5 s limit per read.
pub struct Raw {
    pub stream: TcpStream,
    buf: BytesMut,
}

impl Raw {
    pub fn connect(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        Self {
            stream,
            buf: BytesMut::new(),
        }
    }

    pub fn send(&mut self, packet: Packet) {
        self.stream.write_all(&encode(packet)).unwrap();
    }

    /// The next packet; `None` when the server closed the connection (or nothing came in 5 s).
    pub fn read(&mut self) -> Option<Packet> {
        loop {
            if let Some(packet) = decode(&mut self.buf, 1 << 20).unwrap() {
                return Some(packet);
            }
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Reads until nothing arrives for `quiet`; returns what arrived.
    pub fn read_for(&mut self, quiet: Duration) -> Vec<Packet> {
        self.stream.set_read_timeout(Some(quiet)).unwrap();
        let mut packets = Vec::new();
        while let Some(packet) = self.read() {
            packets.push(packet);
        }
        self.stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        packets
    }

    /// Sends CONNECT for `id` (clean session) and returns the CONNACK's code.
    pub fn connack_code(&mut self, id: &str) -> rumqttc::ConnectReturnCode {
        self.send(Packet::Connect(Connect::new(id)));
        match self.read() {
            Some(Packet::ConnAck(ack)) => ack.code,
            other => panic!("expected CONNACK, got {other:?}"),
        }
    }
}
