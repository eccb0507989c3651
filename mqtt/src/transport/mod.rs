//! How a listener's connections carry MQTT: plain TCP, TLS, WebSockets, or WebSockets over TLS
//! ([`Transport`]). Each accepted socket is opened here (the TLS handshake, the WebSocket upgrade),
//! then served by the one protocol implementation in `crate::connection`, which only sees a byte
//! stream.
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
mod websocket;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::connection;
use crate::listener_stats::CloseReason;
use crate::pending::PendingTicket;
use crate::shared::ServerShared;

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

/// Why a connection could not be opened.
enum OpenError {
    Tls,
    WebSocket,
    /// The connection deadline passed, or the pending bound closed it.
    Closed(CloseReason),
}

/// Counts a newly accepted connection on `listener` (and in the server's totals).
pub(crate) fn count_accepted(shared: &ServerShared, listener: &ListenerState) {
    shared.counters.accepted.fetch_add(1, Ordering::Relaxed);
    shared.counters.open.fetch_add(1, Ordering::Relaxed);
    listener.accepted.fetch_add(1, Ordering::Relaxed);
    listener.open.fetch_add(1, Ordering::Relaxed);
}

/// Opens an accepted connection over its listener's transport on a task of its own, serves it to its
/// end, and counts how it ended, once (in the server's `closed_by_reason`).
///
/// A TCP connection's task is the connection's future itself, in the one allocation tokio makes for
/// a task: spawning a future that boxed it cost every idle connection a second task-sized allocation
/// (384 bytes). The other transports' tasks box their handshake's future and the connection's apart
/// (`Accepted::open_and_serve`).
pub(crate) fn spawn_accepted(
    tcp: TcpStream,
    addr: SocketAddr,
    listener: Arc<ListenerState>,
    pending: PendingTicket,
    shared: Arc<ServerShared>,
    shutdown: watch::Receiver<bool>,
) {
    let _ = tcp.set_nodelay(true);
    let accepted = Accepted {
        addr,
        pending,
        connect_by: Instant::now() + shared.config.connect_timeout,
        shared,
        listener,
        shutdown,
    };
    if matches!(accepted.listener.transport, Transport::Tcp) {
        // Nothing to open: no handshake to bound.
        tokio::spawn(accepted.serve_open(tcp, CertificateLogin::NotUsed));
    } else {
        tokio::spawn(accepted.open_and_serve(tcp));
    }
}

/// A connection counted open on its listener and in the server's totals ([`count_accepted`]) until
/// [`OpenConnection::closed`] counts how it ended.
pub(crate) struct OpenConnection {
    pub shared: Arc<ServerShared>,
    listener: Arc<ListenerState>,
}

impl OpenConnection {
    /// Counts the connection closed for `reason`.
    pub(crate) fn closed(self, reason: CloseReason) {
        self.shared.counters.count_close(reason);
        self.shared.counters.open.fetch_sub(1, Ordering::Relaxed);
        self.listener.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// An accepted connection before its transport is open.
struct Accepted {
    addr: SocketAddr,
    pending: PendingTicket,
    /// The CONNECT deadline, which the handshake counts against.
    connect_by: Instant,
    shared: Arc<ServerShared>,
    listener: Arc<ListenerState>,
    shutdown: watch::Receiver<bool>,
}

impl Accepted {
    /// Opens a transport with a handshake (TLS, WebSockets, or both), then serves the connection.
    /// Each transport's future is boxed, and the handshake's apart from the connection's: the task
    /// then holds its own transport's state, not room for the largest of them (a WebSocket over TLS,
    /// its handshake included).
    async fn open_and_serve(self, tcp: TcpStream) {
        let listener = self.listener.clone();
        let max_packet = self.shared.config.max_packet_size;
        match &listener.transport {
            Transport::Tcp => self.serve_open(tcp, CertificateLogin::NotUsed).await,
            Transport::Tls(tls) => {
                Box::pin(self.serve(async { tls.accept(tcp).await.map_err(|_| OpenError::Tls) }))
                    .await
            }
            Transport::WebSocket => {
                Box::pin(self.serve(async {
                    let stream = websocket::accept(tcp, max_packet)
                        .await
                        .map_err(|_| OpenError::WebSocket)?;
                    Ok((stream, CertificateLogin::NotUsed))
                }))
                .await
            }
            Transport::WebSocketTls(tls) => {
                Box::pin(self.serve(async {
                    let (stream, login) = tls.accept(tcp).await.map_err(|_| OpenError::Tls)?;
                    let stream = websocket::accept(stream, max_packet)
                        .await
                        .map_err(|_| OpenError::WebSocket)?;
                    Ok((stream, login))
                }))
                .await
            }
        }
    }

    /// Runs the transport's handshake (`opening`) until the CONNECT deadline, unless the pending
    /// bound closes the connection first (`crate::pending`), then serves MQTT over the stream it
    /// opened. A failed handshake is counted on the listener.
    async fn serve<S: ByteStream>(
        mut self,
        opening: impl Future<Output = Result<(S, CertificateLogin), OpenError>>,
    ) {
        let opened = tokio::select! {
            biased;
            _ = &mut self.pending.evicted => Err(OpenError::Closed(CloseReason::PendingLimit)),
            opened = tokio::time::timeout_at(self.connect_by, opening) => {
                opened.unwrap_or(Err(OpenError::Closed(CloseReason::ConnectTimeout)))
            }
        };
        match opened {
            Ok((stream, certificate_login)) => {
                Box::pin(self.serve_open(stream, certificate_login)).await
            }
            Err(error) => {
                self.shared.pending.leave(self.pending.ticket);
                let reason = self.count_failure(error);
                let open = OpenConnection {
                    shared: self.shared,
                    listener: self.listener,
                };
                open.closed(reason);
            }
        }
    }

    /// Serves MQTT over a stream whose transport is open, to the connection's end.
    ///
    /// Not an `async fn`: one would keep its arguments (the stream, this `Accepted`) for its whole
    /// life beside the copies the connection's future holds, in every idle connection; and the
    /// connection's future counts its own close, since a future that awaited it would hold it
    /// twice (once as what it captured, once as what it awaits).
    fn serve_open<S: ByteStream>(
        self,
        stream: S,
        certificate_login: CertificateLogin,
    ) -> impl Future<Output = ()> {
        let Accepted {
            addr,
            pending,
            connect_by,
            shared,
            listener,
            shutdown,
        } = self;
        let peer = Peer {
            addr,
            transport: listener.transport.kind(),
            certificate_login,
        };
        let open = OpenConnection { shared, listener };
        connection::serve(stream, peer, pending, connect_by, open, shutdown)
    }

    fn count_failure(&self, error: OpenError) -> CloseReason {
        let counter = match error {
            OpenError::Tls => &self.listener.tls_handshake_failures,
            OpenError::WebSocket => &self.listener.websocket_handshake_failures,
            OpenError::Closed(reason) => return reason,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        CloseReason::HandshakeFailed
    }
}
