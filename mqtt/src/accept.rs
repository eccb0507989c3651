//! An accepted socket's way to a served connection: its transport opened (the TLS handshake, the
//! WebSocket upgrade) within the CONNECT deadline, on a task of its own, then served by
//! `crate::connection`, and counted open until it ends ([`OpenConnection`]).

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::connection;
use crate::listener_stats::CloseReason;
use crate::pending::PendingTicket;
use crate::shared::{OpenConnection, ServerShared};
use crate::transport::{ByteStream, CertificateLogin, ListenerState, Peer, Transport, websocket};

/// Why a connection could not be opened.
enum OpenError {
    Tls,
    WebSocket,
    /// The connection deadline passed, or the pending bound closed it.
    Closed(CloseReason),
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
                OpenConnection::new(self.shared, self.listener).closed(reason);
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
        let open = OpenConnection::new(shared, listener);
        connection::serve(stream, peer, pending, connect_by, open, shutdown)
    }

    fn count_failure(&self, error: OpenError) -> CloseReason {
        let counter = match error {
            OpenError::Tls => ListenerState::count_tls_handshake_failure,
            OpenError::WebSocket => ListenerState::count_websocket_handshake_failure,
            OpenError::Closed(reason) => return reason,
        };
        counter(&self.listener);
        CloseReason::HandshakeFailed
    }
}
