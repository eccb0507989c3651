//! Reading packets off a byte buffer with `rumqttc`'s MQTT 3.1.1 codec, and the reason a bad one
//! closes its connection.
//!
//! The codec (`rumqttc::mqttbytes::v4`) frames and parses every packet type; this module only decides
//! what each of its errors means for the connection. [`decode`], [`decode_first`] and [`DecodeError`]
//! are public (at the crate root) only so the decode path can be fuzzed from the outside (see
//! `tests/decode_fuzz.rs` and `tests/limits.rs`).

use bytes::BytesMut;
use rumqttc::Packet;
use rumqttc::mqttbytes::Error as CodecError;

use crate::listener_stats::CloseReason;

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
/// use switchyard_mqtt::decode;
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
    if let Some((level, flags)) = connect_header(buf) {
        if level != 4 {
            return Err(DecodeError::UnsupportedProtocol(format!(
                "protocol level {level}, only 4 (MQTT 3.1.1) is served"
            )));
        }
        // Section 3.1.2: rules on the connect flags the codec does not check.
        if let Some(problem) = flags.and_then(connect_flags_problem) {
            return Err(DecodeError::Malformed(problem.to_string()));
        }
    }
    decode(buf, max_packet_size)
}

/// What is wrong with CONNECT's flags byte, if anything (MQTT 3.1.1 sections 3.1.2.3 to 3.1.2.9).
fn connect_flags_problem(flags: u8) -> Option<&'static str> {
    let will = flags & 0x04 != 0;
    if flags & 0x01 != 0 {
        Some("CONNECT flags have the reserved bit set")
    } else if !will && flags & 0x38 != 0 {
        Some("CONNECT has a will QoS or will retain without a will")
    } else if (flags >> 3) & 0x03 == 3 {
        Some("CONNECT asks for will QoS 3")
    } else if flags & 0x40 != 0 && flags & 0x80 == 0 {
        Some("CONNECT has a password without a user name")
    } else {
        None
    }
}

/// The protocol level byte of a CONNECT at the front of `buf` once it has arrived, and the connect
/// flags byte if that has too: after the fixed header (one type byte, one to four length bytes) and the protocol name (a
/// two-byte length, then the name).
fn connect_header(buf: &[u8]) -> Option<(u8, Option<u8>)> {
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
    let level = i + 3 + name_len;
    Some((*buf.get(level)?, buf.get(level + 1).copied()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connect(level: u8, flags: u8) -> BytesMut {
        let mut body = vec![
            0, 4, b'M', b'Q', b'T', b'T', level, flags, 0, 60, 0, 1, b'c',
        ];
        body.insert(0, body.len() as u8);
        body.insert(0, 0x10);
        BytesMut::from(&body[..])
    }

    #[test]
    fn a_3_1_1_connect_decodes() {
        assert!(matches!(
            decode_first(&mut connect(4, 0b10), 1024),
            Ok(Some(Packet::Connect(_)))
        ));
    }

    #[test]
    fn another_level_is_unsupported_before_the_rest_arrives() {
        let mut partial = connect(5, 0b10);
        partial.truncate(9);
        assert!(matches!(
            decode_first(&mut partial, 1024),
            Err(DecodeError::UnsupportedProtocol(_))
        ));
    }

    #[test]
    fn connect_flags_that_break_the_rules_are_malformed() {
        // reserved bit; will QoS without a will; will retain without a will; password without user
        for flags in [0b0000_0011, 0b0000_1010, 0b0010_0010, 0b0100_0010] {
            assert!(
                matches!(
                    decode_first(&mut connect(4, flags), 1024),
                    Err(DecodeError::Malformed(_))
                ),
                "{flags:#010b}"
            );
        }
    }
}
