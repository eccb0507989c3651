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
    /// A packet the codec reads but MQTT 3.1.1 forbids: fixed-header flags other than the ones
    /// section 2.2.2 fixes for its type, a SUBSCRIBE or UNSUBSCRIBE with packet id 0 (section 2.3.1),
    /// a CONNECT with bytes after its last field (section 3.1).
    #[error("protocol violation: {0}")]
    Protocol(String),
}

impl DecodeError {
    /// How the connection is counted when it closes for this error.
    pub fn close_reason(&self) -> CloseReason {
        match self {
            DecodeError::UnsupportedProtocol(_) => CloseReason::Refused,
            DecodeError::TooLarge { .. } => CloseReason::TooLarge,
            DecodeError::Malformed(_) => CloseReason::Malformed,
            DecodeError::Protocol(_) => CloseReason::ProtocolError,
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
    if let Some(&first) = buf.first()
        && let Some(problem) = fixed_header_flags_problem(first)
    {
        return Err(DecodeError::Protocol(problem));
    }
    match Packet::read(buf, max_packet_size) {
        Ok(Packet::Subscribe(s)) if s.pkid == 0 => Err(zero_packet_id("SUBSCRIBE")),
        Ok(Packet::Unsubscribe(u)) if u.pkid == 0 => Err(zero_packet_id("UNSUBSCRIBE")),
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

fn zero_packet_id(kind: &str) -> DecodeError {
    DecodeError::Protocol(format!(
        "{kind} with packet id 0; MQTT 3.1.1 section 2.3.1 requires a non-zero packet id"
    ))
}

/// What is wrong with the flags (the low four bits) of a packet's first byte, if anything: MQTT 3.1.1
/// section 2.2.2 fixes them for every type but PUBLISH (whose DUP, QoS and RETAIN the codec reads),
/// and a receiver that gets other flags must close the connection. The reserved types 0 and 15 are
/// left to the codec, which refuses them as malformed.
fn fixed_header_flags_problem(first: u8) -> Option<String> {
    let (kind, flags) = (first >> 4, first & 0x0F);
    let (name, required) = match kind {
        1 => ("CONNECT", 0),
        2 => ("CONNACK", 0),
        4 => ("PUBACK", 0),
        5 => ("PUBREC", 0),
        6 => ("PUBREL", 0b0010),
        7 => ("PUBCOMP", 0),
        8 => ("SUBSCRIBE", 0b0010),
        9 => ("SUBACK", 0),
        10 => ("UNSUBSCRIBE", 0b0010),
        11 => ("UNSUBACK", 0),
        12 => ("PINGREQ", 0),
        13 => ("PINGRESP", 0),
        14 => ("DISCONNECT", 0),
        _ => return None,
    };
    (flags != required).then(|| {
        format!(
            "{name} with fixed-header flags {flags:#06b}; MQTT 3.1.1 section 2.2.2 requires {required:#06b}"
        )
    })
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
        if let Some(extra) = connect_trailing_bytes(buf) {
            return Err(DecodeError::Protocol(format!(
                "CONNECT has {extra} bytes after its last field; its remaining length must end \
                 where its fields do (MQTT 3.1.1 section 3.1)"
            )));
        }
    }
    decode(buf, max_packet_size)
}

/// How many bytes a whole CONNECT at the front of `buf` has after its last field (the fields its
/// connect flags announce), when there are any. `None` also while the packet is incomplete, and when
/// its fields run past its end (the codec refuses that as malformed).
fn connect_trailing_bytes(buf: &[u8]) -> Option<usize> {
    let (header_len, remaining) = fixed_header_lengths(buf)?;
    let body = buf.get(header_len..header_len + remaining)?;
    let field = |at: usize| -> Option<usize> {
        let len = u16::from_be_bytes([*body.get(at)?, *body.get(at + 1)?]);
        Some(at + 2 + usize::from(len))
    };
    // Protocol name, level, flags, keep-alive, client id.
    let level_at = field(0)?;
    let flags = *body.get(level_at + 1)?;
    let mut end = field(level_at + 4)?;
    if flags & 0x04 != 0 {
        end = field(field(end)?)?; // will topic, will message
    }
    if flags & 0x80 != 0 {
        end = field(end)?; // user name
    }
    if flags & 0x40 != 0 {
        end = field(end)?; // password
    }
    (end < remaining).then(|| remaining - end)
}

/// The fixed header's length and the remaining length it announces, once they have arrived (`None`
/// before, and for a length field over four bytes, which the codec refuses).
fn fixed_header_lengths(buf: &[u8]) -> Option<(usize, usize)> {
    let mut remaining = 0usize;
    for i in 1..=4 {
        let byte = *buf.get(i)?;
        remaining |= usize::from(byte & 0x7F) << (7 * (i - 1));
        if byte & 0x80 == 0 {
            return Some((i + 1, remaining));
        }
    }
    None
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
    fn wrong_fixed_header_flags_are_protocol_errors() {
        // SUBSCRIBE, UNSUBSCRIBE and PUBREL need 0b0010; PINGREQ needs 0.
        for bytes in [
            &[0x80u8, 0x06, 0, 1, 0, 1, b'a', 0][..],
            &[0xA0, 0x05, 0, 1, 0, 1, b'a'],
            &[0x60, 0x02, 0, 1],
            &[0xC5, 0x00],
        ] {
            let got = decode(&mut BytesMut::from(bytes), 1024);
            assert!(
                matches!(got, Err(DecodeError::Protocol(_))),
                "{bytes:x?}: {got:?}"
            );
        }
        let mut right = BytesMut::from(&[0x62u8, 0x02, 0, 1, 0xC0, 0x00][..]);
        assert!(matches!(
            decode(&mut right, 1024),
            Ok(Some(Packet::PubRel(_)))
        ));
        assert!(matches!(
            decode(&mut right, 1024),
            Ok(Some(Packet::PingReq))
        ));
    }

    #[test]
    fn subscribe_and_unsubscribe_with_packet_id_0_are_protocol_errors() {
        let subscribe = [0x82u8, 0x06, 0, 0, 0, 1, b'a', 0];
        let unsubscribe = [0xA2u8, 0x05, 0, 0, 0, 1, b'a'];
        for bytes in [&subscribe[..], &unsubscribe[..]] {
            let got = decode(&mut BytesMut::from(bytes), 1024);
            let Err(DecodeError::Protocol(problem)) = got else {
                panic!("{bytes:x?}: {got:?}")
            };
            assert!(problem.contains("packet id 0"), "{problem}");
        }
    }

    #[test]
    fn a_connect_with_trailing_bytes_is_a_protocol_error() {
        let mut trailing = connect(4, 0b10);
        trailing[1] += 3;
        trailing.extend_from_slice(b"xyz");
        let got = decode_first(&mut trailing, 1024);
        let Err(DecodeError::Protocol(problem)) = got else {
            panic!("{got:?}")
        };
        assert!(
            problem.contains("3 bytes after its last field"),
            "{problem}"
        );
        // A will, a user name and a password are fields, not trailing bytes.
        let mut full = rumqttc::Connect::new("c");
        full.set_login("u", "p");
        full.last_will = Some(rumqttc::LastWill::new(
            "w",
            "gone",
            rumqttc::QoS::AtMostOnce,
            false,
        ));
        let mut buf = BytesMut::new();
        Packet::Connect(full).write(&mut buf, 1024).unwrap();
        assert!(matches!(
            decode_first(&mut buf, 1024),
            Ok(Some(Packet::Connect(_)))
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
