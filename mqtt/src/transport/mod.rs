//! How a listener's connections carry MQTT: plain TCP, TLS, WebSockets, or WebSockets over TLS
//! ([`Transport`]), and what a listener counts of them. Each accepted socket is opened with its
//! transport's handshake (the TLS handshake, the WebSocket upgrade: `crate::accept`), then served by
//! the one protocol implementation in `crate::connection`, which only sees a byte stream.
//!
//! Every listener of one [`crate::MqttServer`] serves the same broker, sessions and limits: a client
//! id that connects over WebSockets takes over its session from a TCP connection as it would from
//! another TCP connection, and a password file applies on every listener.
//!
//! # Opening a connection
//! The handshake counts against the connection's CONNECT deadline
//! ([`crate::MqttConfig::connect_timeout`], from the TCP accept to the CONNECT) and the connection is
//! among those waiting for their CONNECT (`crate::pending`) while it lasts, so a peer that opens
//! sockets and never finishes a handshake is bounded as one that never sends CONNECT. A handshake
//! that fails (no client certificate where one is required, a plain MQTT client on the TLS port, a
//! WebSocket upgrade without the `mqtt` subprotocol) closes the connection as `handshake_failed`, and
//! is counted per listener ([`ListenerStats`]).

mod pem;
mod tls;
pub(crate) mod websocket;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite};

pub use pem::TlsFileError;
pub use tls::{TlsClientFiles, TlsServer, TlsServerFiles};

/// What the connection code reads and writes: any byte stream tokio can drive.
pub(crate) trait ByteStream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<S: AsyncRead + AsyncWrite + Unpin + Send> ByteStream for S {}

/// How a listener's connections carry MQTT.
#[derive(Debug, Clone)]
pub enum Transport {
    /// MQTT straight over TCP (port 1883 by custom).
    Tcp,
    /// MQTT over TLS (port 8883 by custom).
    Tls(TlsServer),
    /// MQTT over WebSockets, subprotocol `mqtt` (browsers' clients; port 8080 or 80 by custom).
    WebSocket,
    /// MQTT over WebSockets over TLS (`wss://`; port 8081 or 443 by custom).
    WebSocketTls(TlsServer),
}

/// Which of the [`Transport`]s, as the stats name it: `tcp`, `tls`, `ws`, `wss`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TransportKind {
    /// [`Transport::Tcp`].
    #[default]
    Tcp,
    /// [`Transport::Tls`].
    Tls,
    /// [`Transport::WebSocket`].
    Ws,
    /// [`Transport::WebSocketTls`].
    Wss,
}

impl Transport {
    /// Which transport this is.
    pub fn kind(&self) -> TransportKind {
        match self {
            Transport::Tcp => TransportKind::Tcp,
            Transport::Tls(_) => TransportKind::Tls,
            Transport::WebSocket => TransportKind::Ws,
            Transport::WebSocketTls(_) => TransportKind::Wss,
        }
    }

    /// The TLS settings, for the transports over TLS.
    pub fn tls(&self) -> Option<&TlsServer> {
        match self {
            Transport::Tls(tls) | Transport::WebSocketTls(tls) => Some(tls),
            Transport::Tcp | Transport::WebSocket => None,
        }
    }
}

impl TransportKind {
    /// `tcp`, `tls`, `ws` or `wss`.
    pub fn as_str(self) -> &'static str {
        match self {
            TransportKind::Tcp => "tcp",
            TransportKind::Tls => "tls",
            TransportKind::Ws => "ws",
            TransportKind::Wss => "wss",
        }
    }
}

impl std::fmt::Display for TransportKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One address an [`crate::MqttServer`] listens on, and the transport its connections speak.
///
/// # Examples
/// ```
/// use switchyard::Broker;
/// use switchyard_mqtt::{Listener, MqttConfig, MqttServer, TransportKind};
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let listeners = [
///     Listener::tcp("127.0.0.1:0".parse().unwrap()),
///     Listener::websocket("127.0.0.1:0".parse().unwrap()),
/// ];
/// let server = MqttServer::bind_listeners(listeners, Broker::new(), MqttConfig::default())
///     .await
///     .unwrap();
/// assert!(server.local_addr_of(TransportKind::Ws).is_some());
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct Listener {
    /// Where to listen (port 0 picks a free port).
    pub addr: SocketAddr,
    /// What its connections speak.
    pub transport: Transport,
}

impl Listener {
    /// MQTT over TCP on `addr`.
    pub fn tcp(addr: SocketAddr) -> Self {
        Self {
            addr,
            transport: Transport::Tcp,
        }
    }

    /// MQTT over TLS on `addr`.
    pub fn tls(addr: SocketAddr, tls: TlsServer) -> Self {
        Self {
            addr,
            transport: Transport::Tls(tls),
        }
    }

    /// MQTT over WebSockets on `addr`.
    pub fn websocket(addr: SocketAddr) -> Self {
        Self {
            addr,
            transport: Transport::WebSocket,
        }
    }

    /// MQTT over WebSockets over TLS on `addr`.
    pub fn websocket_tls(addr: SocketAddr, tls: TlsServer) -> Self {
        Self {
            addr,
            transport: Transport::WebSocketTls(tls),
        }
    }
}

/// One listener's counters (an element of `listeners` in [`crate::MqttStats`], a v1 addition).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListenerStats {
    /// The bound address.
    pub address: String,
    /// `tcp`, `tls`, `ws` or `wss`.
    pub transport: TransportKind,
    /// Whether its TLS handshake requires a client certificate.
    #[serde(default)]
    pub client_certificates: bool,
    /// Connections accepted on it.
    pub accepted: u64,
    /// Of those, open now.
    pub open: u64,
    /// TLS handshakes that failed: no client certificate where one is required, one from another CA,
    /// a client that does not speak TLS, no protocol version or cipher in common. Each is also a close
    /// counted as `handshake_failed`.
    pub tls_handshake_failures: u64,
    /// WebSocket upgrades that failed: not an HTTP upgrade, or no `mqtt` subprotocol among those
    /// offered. Each is also a close counted as `handshake_failed`.
    pub websocket_handshake_failures: u64,
}

/// A bound listener as its connections share it.
pub(crate) struct ListenerState {
    pub addr: SocketAddr,
    pub transport: Transport,
    accepted: AtomicU64,
    open: AtomicU64,
    tls_handshake_failures: AtomicU64,
    websocket_handshake_failures: AtomicU64,
}

impl ListenerState {
    pub fn new(addr: SocketAddr, transport: Transport) -> Self {
        Self {
            addr,
            transport,
            accepted: AtomicU64::new(0),
            open: AtomicU64::new(0),
            tls_handshake_failures: AtomicU64::new(0),
            websocket_handshake_failures: AtomicU64::new(0),
        }
    }

    /// Counts a connection accepted on this listener, and open.
    pub(crate) fn count_accepted(&self) {
        self.accepted.fetch_add(1, Ordering::Relaxed);
        self.open.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a connection of this listener closed.
    pub(crate) fn count_closed(&self) {
        self.open.fetch_sub(1, Ordering::Relaxed);
    }

    /// Counts a failed TLS handshake.
    pub(crate) fn count_tls_handshake_failure(&self) {
        self.tls_handshake_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a failed WebSocket upgrade.
    pub(crate) fn count_websocket_handshake_failure(&self) {
        self.websocket_handshake_failures
            .fetch_add(1, Ordering::Relaxed);
    }

    pub fn stats(&self) -> ListenerStats {
        ListenerStats {
            address: self.addr.to_string(),
            transport: self.transport.kind(),
            client_certificates: self
                .transport
                .tls()
                .is_some_and(TlsServer::requires_client_certificates),
            accepted: self.accepted.load(Ordering::Relaxed),
            open: self.open.load(Ordering::Relaxed),
            tls_handshake_failures: self.tls_handshake_failures.load(Ordering::Relaxed),
            websocket_handshake_failures: self.websocket_handshake_failures.load(Ordering::Relaxed),
        }
    }
}

/// What a client certificate says about the user, on a listener that takes user names from them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CertificateLogin {
    /// The listener does not take user names from certificates (or has none).
    NotUsed,
    /// The certificate's common name: the client's user name, proven by the handshake.
    CommonName(String),
    /// The certificate has no common name to use: refused with CONNACK 5.
    NoCommonName,
}

/// Who is at the other end of a connection, as its transport knows it.
pub(crate) struct Peer {
    pub addr: SocketAddr,
    pub transport: TransportKind,
    pub certificate_login: CertificateLogin,
}
