//! MQTT over WebSockets (MQTT 3.1.1 section 6): the HTTP upgrade with the `mqtt` subprotocol
//! ([`accept`]), then the WebSocket's binary messages read and written as one byte stream
//! ([`WebSocketBytes`]), so that the connection code is the same as over TCP.
//!
//! # The upgrade
//! Any path is accepted (browsers' clients use `/mqtt`, some `/`), as Mosquitto does. The
//! subprotocol: a client that offers `mqtt` gets `mqtt`; one that offers only MQTT 3.1's `mqttv3.1`
//! gets that; one that offers none is served without a `Sec-WebSocket-Protocol` answer (some older
//! clients send none); one that offers only others is refused with HTTP 400 naming `mqtt`, counted as a
//! WebSocket handshake failure.
//!
//! # Frames
//! MQTT packets travel in binary messages, any number of packets per message and a packet across
//! messages (section 6.0); a text message is an error that closes the connection, as section 6.0
//! asks. What the connection writes at once goes out as one binary message. An incoming message is
//! bounded by the largest packet the listener accepts (at least 64 KiB), so a client cannot make the
//! server buffer more than it would over TCP.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use futures_core::Stream as _;
use futures_sink::Sink;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

/// The subprotocols served, preferred first: MQTT 3.1.1's name, then MQTT 3.1's (the same bytes on
/// the wire for a client that then sends a 3.1.1 CONNECT).
const SUBPROTOCOLS: [&str; 2] = ["mqtt", "mqttv3.1"];

/// The smallest bound on an incoming WebSocket message, whatever the largest packet allowed: a client
/// may put several small packets in one message.
const MIN_MESSAGE_BOUND: usize = 64 * 1024;

/// The server's side of the WebSocket upgrade on `stream`. `max_packet_size` bounds an incoming
/// message (plus room for a fixed header, and at least [`MIN_MESSAGE_BOUND`]).
pub(crate) async fn accept<S>(stream: S, max_packet_size: usize) -> io::Result<WebSocketBytes<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let bound = max_packet_size.saturating_add(5).max(MIN_MESSAGE_BOUND);
    let config = WebSocketConfig::default()
        // Allocated at once for every connection: small, as an idle connection should cost little.
        .read_buffer_size(4 * 1024)
        // Written at once: the connection hands over what it has in one message, then flushes.
        .write_buffer_size(0)
        .max_message_size(Some(bound))
        .max_frame_size(Some(bound));
    let socket = tokio_tungstenite::accept_hdr_async_with_config(stream, negotiate, Some(config))
        .await
        .map_err(into_io)?;
    Ok(WebSocketBytes {
        socket,
        unread: Bytes::new(),
    })
}

/// Answers the upgrade request with the subprotocol chosen by [`choose_subprotocol`], or refuses it.
#[allow(clippy::result_large_err)] // the signature of tungstenite's `Callback`
fn negotiate(request: &Request, mut response: Response) -> Result<Response, ErrorResponse> {
    let offered = request
        .headers()
        .get_all("Sec-WebSocket-Protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(",");
    match choose_subprotocol(&offered) {
        Ok(Some(chosen)) => {
            response
                .headers_mut()
                .insert("Sec-WebSocket-Protocol", HeaderValue::from_static(chosen));
            Ok(response)
        }
        Ok(None) => Ok(response),
        Err(why) => {
            let mut refusal = ErrorResponse::new(Some(why));
            *refusal.status_mut() = StatusCode::BAD_REQUEST;
            Err(refusal)
        }
    }
}

/// The subprotocol to answer for the comma-separated list a client offered: `mqtt` first, then
/// `mqttv3.1`; none when the client offered none; a refusal naming `mqtt` when it offered only others.
pub(crate) fn choose_subprotocol(offered: &str) -> Result<Option<&'static str>, String> {
    let offered: Vec<&str> = offered
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    if offered.is_empty() {
        return Ok(None);
    }
    SUBPROTOCOLS
        .iter()
        .find(|ours| offered.iter().any(|p| p.eq_ignore_ascii_case(ours)))
        .map(|ours| Some(*ours))
        .ok_or_else(|| {
            format!(
                "this is an MQTT server: offer the WebSocket subprotocol `mqtt` (offered: {})",
                offered.join(", ")
            )
        })
}

/// tungstenite's error as an I/O error; a peer that dropped the TCP connection without a close
/// message is an unexpected end of file, as TLS without its `close_notify` is, so that both count as
/// the peer closing (`peer_closed`), as over TCP.
fn into_io(e: WsError) -> io::Error {
    match e {
        WsError::Io(e) => e,
        WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => {
            io::Error::new(io::ErrorKind::UnexpectedEof, e)
        }
        e => io::Error::other(e),
    }
}

/// A WebSocket carrying MQTT, read and written as a byte stream: reads take the binary messages'
/// bytes in order; each write is one binary message.
pub(crate) struct WebSocketBytes<S> {
    socket: WebSocketStream<S>,
    /// What is left of the last binary message read.
    unread: Bytes,
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for WebSocketBytes<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        while this.unread.is_empty() {
            // Pings are answered by tungstenite itself (the pong goes out with the next read or
            // write); a close is answered too, and ends the stream.
            match ready!(Pin::new(&mut this.socket).poll_next(cx)) {
                None | Some(Ok(Message::Close(_))) => return Poll::Ready(Ok(())),
                Some(Ok(Message::Binary(data))) => this.unread = data,
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                Some(Ok(Message::Text(_))) => {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "a WebSocket text message: MQTT travels in binary messages",
                    )));
                }
                Some(Err(e)) => return Poll::Ready(Err(into_io(e))),
            }
        }
        let n = this.unread.len().min(buf.remaining());
        buf.put_slice(&this.unread.split_to(n));
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for WebSocketBytes<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let socket = &mut self.socket;
        ready!(Pin::new(&mut *socket).poll_ready(cx)).map_err(into_io)?;
        Pin::new(socket)
            .start_send(Message::Binary(Bytes::copy_from_slice(buf)))
            .map_err(into_io)?;
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.socket).poll_flush(cx).map_err(into_io)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.socket).poll_close(cx).map_err(into_io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mqtt_is_chosen_first_then_mqtt_3_1_and_others_are_refused() {
        assert_eq!(choose_subprotocol("mqtt"), Ok(Some("mqtt")));
        assert_eq!(choose_subprotocol("mqttv3.1, mqtt"), Ok(Some("mqtt")));
        assert_eq!(choose_subprotocol("MQTT"), Ok(Some("mqtt")));
        assert_eq!(choose_subprotocol("mqttv3.1"), Ok(Some("mqttv3.1")));
        assert_eq!(choose_subprotocol(""), Ok(None));
        assert_eq!(choose_subprotocol(" , "), Ok(None));
        let refusal = choose_subprotocol("chat, graphql-ws").unwrap_err();
        assert!(
            refusal.contains("`mqtt`") && refusal.contains("chat, graphql-ws"),
            "{refusal}"
        );
    }
}
