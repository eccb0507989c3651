//! The least an idle MQTT connection can cost a tokio server built the way `MqttServer` is: a task
//! per connection, idle in a wait for its socket to become readable, holding one acknowledged
//! subscription of the core (made with the options `MqttServer` gives a QoS 1 subscription). Nothing
//! else: no session, no registry, no keep-alive timer, no write buffer, no permissions, no wait on
//! the subscription. It answers CONNECT, SUBSCRIBE and PINGREQ and nothing more; it never delivers.
//!
//! A yardstick, not a server: `tests/idle_memory.rs` counts its heap bytes per connection beside
//! `MqttServer`'s, and `scripts/mqtt-bench.py idle` its resident memory beside Mosquitto's (through
//! the `idle_floor` example). What `MqttServer` holds above it is what its features cost an idle
//! connection; what it holds above Mosquitto is what a task per connection and the core's
//! subscription cost.

use std::io;
use std::time::Duration;

use bytes::BytesMut;
use rumqttc::{ConnAck, ConnectReturnCode, Packet, QoS, SubAck, SubscribeReasonCode};
use switchyard::{AckOptions, AckSubscription, Broker, SubscriptionOptions};
use switchyard_mqtt::{MqttConfig, decode};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

/// The most one read takes (into the stack: an idle connection holds no read buffer).
const READ_CHUNK: usize = 4096;

/// Accepts connections on `listener` for ever, a task each, subscribing them to `broker`.
pub async fn serve(listener: TcpListener, broker: Broker) -> io::Result<()> {
    loop {
        let (stream, _) = listener.accept().await?;
        tokio::spawn(connection(stream, broker.clone()));
    }
}

/// One connection, until its peer closes it or sends what the floor does not answer.
async fn connection(mut stream: TcpStream, broker: Broker) {
    // Held until the connection ends, never received from.
    let mut subscriptions: Vec<AckSubscription> = Vec::new();
    let mut inbuf = BytesMut::new();
    let max_packet = MqttConfig::default().max_packet_size;
    loop {
        let packet = match decode(&mut inbuf, max_packet) {
            Ok(Some(packet)) => packet,
            Ok(None) => {
                // Nothing partial to keep: no read buffer while idle.
                if inbuf.is_empty() {
                    inbuf = BytesMut::new();
                }
                if !read_some(&mut stream, &mut inbuf).await {
                    return;
                }
                continue;
            }
            Err(_) => return,
        };
        let Some(answer) = answer(packet, &broker, &mut subscriptions) else {
            return;
        };
        if stream.write_all(&answer).await.is_err() {
            return;
        }
    }
}

/// The bytes that answer `packet`, subscribing to `broker` for a SUBSCRIBE; `None` for a packet the
/// floor does not answer (it then closes).
fn answer(
    packet: Packet,
    broker: &Broker,
    subscriptions: &mut Vec<AckSubscription>,
) -> Option<BytesMut> {
    let answer = match packet {
        Packet::Connect(_) => Packet::ConnAck(ConnAck::new(ConnectReturnCode::Success, false)),
        Packet::Subscribe(subscribe) => {
            let config = MqttConfig::default();
            let codes = subscribe
                .filters
                .iter()
                .map(|filter| {
                    let ack = AckOptions::new()
                        .ack_wait(Duration::from_secs(u64::from(u32::MAX)))
                        .max_in_flight(u32::try_from(config.max_inflight).unwrap_or(u32::MAX));
                    let options = SubscriptionOptions::new()
                        .capacity(config.queue_capacity)
                        .policy(config.policy)
                        .ack(ack);
                    match broker.subscribe_acked_with(&filter.path, options) {
                        Ok(subscription) => {
                            if subscriptions.capacity() == 0 {
                                subscriptions.reserve_exact(1);
                            }
                            subscriptions.push(subscription);
                            SubscribeReasonCode::Success(QoS::AtLeastOnce)
                        }
                        Err(_) => SubscribeReasonCode::Failure,
                    }
                })
                .collect();
            Packet::SubAck(SubAck::new(subscribe.pkid, codes))
        }
        Packet::PingReq => Packet::PingResp,
        _ => return None,
    };
    let mut out = BytesMut::new();
    answer.write(&mut out, usize::MAX).ok()?;
    Some(out)
}

/// Waits until the socket is readable, then reads into the stack and appends what came to `inbuf`;
/// false when the peer closed or the socket failed.
async fn read_some(stream: &mut TcpStream, inbuf: &mut BytesMut) -> bool {
    loop {
        if stream.readable().await.is_err() {
            return false;
        }
        let mut chunk = [0u8; READ_CHUNK];
        match stream.try_read(&mut chunk) {
            Ok(0) => return false,
            Ok(n) => {
                inbuf.extend_from_slice(&chunk[..n]);
                return true;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(_) => return false,
        }
    }
}
