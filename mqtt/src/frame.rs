//! Reading packets off a byte buffer with `rumqttc`'s MQTT 3.1.1 codec, and the reason a bad one
//! closes its connection.
//!
//! The codec (`rumqttc::mqttbytes::v4`) frames and parses every packet type; this module only decides
//! what each of its errors means for the connection. It is public so the decode path can be fuzzed
//! from the outside (see `tests/decode_fuzz.rs`).

use bytes::BytesMut;
use rumqttc::Packet;
use rumqttc::mqttbytes::Error as CodecError;

use crate::stats::CloseReason;

/// A buffer that did not hold a valid packet.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The CONNECT names a protocol or level other than MQTT 3.1.1 (`MQTT`, level 4): answered with
    /// CONNACK return code 1 before closing.
    #[error("unsupported protocol: {0}")]
    UnsupportedProtocol(String),
    /// The packet is larger than the configured maximum.
    #[error("packet of {size} bytes is over the limit of {max}")]
    TooLarge {
        /// Its remaining length.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// Anything else the codec refused.
    #[error("malformed packet: {0}")]
    Malformed(String),
}

impl DecodeError {
    /// How the connection is counted when it closes for this error.
    pub fn close_reason(&self) -> CloseReason {
        match self {
            DecodeError::UnsupportedProtocol(_) => CloseReason::Refused,
            DecodeError::TooLarge { .. } => CloseReason::TooLarge,
            DecodeError::Malformed(_) => CloseReason::Malformed,
        }
    }
}

/// Takes the next complete packet off the front of `buf`: `Ok(None)` when more bytes are needed.
///
/// Never panics, whatever the bytes (property-tested with random and mutated packets).
///
/// # Examples
/// ```
/// use bytes::BytesMut;
/// use switchyard_mqtt::frame::decode;
///
/// let mut buf = BytesMut::from(&[0xC0u8, 0x00][..]); // PINGREQ
/// assert!(matches!(decode(&mut buf, 1024), Ok(Some(rumqttc::Packet::PingReq))));
/// assert!(matches!(decode(&mut buf, 1024), Ok(None)));
/// ```
pub fn decode(buf: &mut BytesMut, max_packet_size: usize) -> Result<Option<Packet>, DecodeError> {
    match Packet::read(buf, max_packet_size) {
        Ok(packet) => Ok(Some(packet)),
        Err(CodecError::InsufficientBytes(_)) => Ok(None),
        Err(CodecError::PayloadSizeLimitExceeded(size)) => Err(DecodeError::TooLarge {
            size,
            max: max_packet_size,
        }),
        Err(e @ (CodecError::InvalidProtocol | CodecError::InvalidProtocolLevel(_))) => {
            Err(DecodeError::UnsupportedProtocol(e.to_string()))
        }
        Err(e) => Err(DecodeError::Malformed(e.to_string())),
    }
}

/// [`decode`] for the first packet of a connection: a CONNECT that asks for another protocol level
/// (MQTT 3.1's 3, MQTT 5's 5) is [`DecodeError::UnsupportedProtocol`] as soon as its level byte has
/// arrived, before the codec reads on into a layout it does not know (MQTT 5 adds properties), so it
/// can be answered with return code 1 as section 3.1.2.2 asks.
pub fn decode_first(
    buf: &mut BytesMut,
    max_packet_size: usize,
) -> Result<Option<Packet>, DecodeError> {
    match connect_level(buf) {
        Some(level) if level != 4 => Err(DecodeError::UnsupportedProtocol(format!(
            "protocol level {level}, only 4 (MQTT 3.1.1) is served"
        ))),
        _ => decode(buf, max_packet_size),
    }
}

/// The protocol level byte of a CONNECT at the front of `buf`, once it has arrived: after the fixed
/// header (one type byte, one to four length bytes) and the protocol name (a two-byte length, then
/// the name).
fn connect_level(buf: &[u8]) -> Option<u8> {
    if buf.first()? >> 4 != 1 {
        return None;
    }
    let mut i = 1;
    while *buf.get(i)? & 0x80 != 0 {
        i += 1;
        if i > 4 {
            return None;
        }
    }
    let name_len = usize::from(u16::from_be_bytes([*buf.get(i + 1)?, *buf.get(i + 2)?]));
    buf.get(i + 3 + name_len).copied()
}
