//! One client connection: CONNECT, then one task that reads packets, writes packets and takes the
//! client's messages from its broker subscriptions.
//!
//! # One task, no unbounded buffer
//! The task waits (one `select!`) on: the socket becoming readable, the socket accepting the bytes
//! waiting to be written, a message in one of the client's subscriptions (the session's ready list:
//! a wake-up costs the subscriptions with messages, not all of them), the keep-alive deadline, and
//! the signals that end it (a newer connection took the session, the server shuts down). It stops
//! reading while more than [`OUT_HIGH_WATER`] bytes wait to be written, and stops taking messages while
//! that many bytes wait or the in-flight window is full. So a client that does not read holds at most
//! that much memory here; everything else waits in its bounded broker queues, which drop by their
//! overflow policy, counted by reason.
//!
//! # QoS
//! Client publishes: QoS 0 is published to the broker; QoS 1 is published, then PUBACK; QoS 2 is
//! published once and its packet id remembered until PUBREL (a resent PUBLISH with the same id is
//! acknowledged again, not published again), then PUBCOMP. Messages to the client go at the lower of
//! the QoS granted to the subscription that matched them and the publisher's (kept in the message's
//! tag; an in-process publish has none and goes at the granted QoS).
//!
//! QoS 1 and 2 deliveries take the core's acknowledged path (`crate::receiver`): the message stays in
//! flight in its broker subscription, its packet id keeps the attempt's token (`crate::outgoing`), and
//! PUBACK (QoS 1) or PUBREC (QoS 2) acks it there; the packet id is free again at PUBACK or PUBCOMP.
//! Unacknowledged messages are sent again with DUP set when a persistent session reconnects. Shared
//! subscriptions (`$share/GROUP/FILTER`, `crate::shared_group`) are competing receivers of one broker
//! subscription; the connection waits on them apart from its ready list (`Connection::wait_shared`).

use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use rumqttc::{
    ConnAck, Connect, ConnectReturnCode, LastWill, Packet, Protocol, PubAck, PubComp, PubRec,
    PubRel, Publish, QoS, SubAck, SubscribeReasonCode, UnsubAck,
};
use switchyard::{
    PublishOptions, PublishOutcome, RecvError, SubscriptionId, SubscriptionOptions, Topic,
    validate_topic,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::auth::{Permissions, ReadClass, Refusal as AclRefusal};
use crate::frame::{DecodeError, decode, decode_first};
use crate::listener_stats::CloseReason;
use crate::lock::lock;
use crate::outgoing::{Acknowledged, OutgoingState, publish_packet};
use crate::pending::PendingTicket;
use crate::receiver::{Received, Receiver};
use crate::session::{ClientSubscription, OpenedSession, Session};
use crate::shared::OpenConnection;
use crate::shared::ServerShared;
use crate::shared_group::{GroupSettings, ShareFilter};
use crate::transport::{ByteStream, CertificateLogin, Peer};

/// Bytes waiting to be written above which the connection stops reading and taking messages.
pub(crate) const OUT_HIGH_WATER: usize = 64 * 1024;

/// The most one read takes while the connection holds no read buffer (`poll_read_into_stack`): as
/// much as the buffer it grows to for a packet that spans reads.
const STACK_READ: usize = 4096;

/// How long a closing connection may take to write what is still queued for its client (at most
/// [`OUT_HIGH_WATER`] bytes and a little): short, since a server shutting down waits for its
/// connections to close.
const CLOSE_FLUSH_LIMIT: Duration = Duration::from_millis(500);

/// Serves one connection, its transport open (`crate::transport`), to its end, and counts how it
/// ended (`open`). Its CONNECT must arrive by `connect_by`.
pub(crate) async fn serve<S: ByteStream>(
    mut stream: S,
    peer: Peer,
    pending: PendingTicket,
    connect_by: Instant,
    open: OpenConnection,
    shutdown: watch::Receiver<bool>,
) {
    let mut connection = Connection {
        shared: open.shared.clone(),
        // Empty: the first read makes it (`read_connect`), and it is let go whenever no partial
        // packet waits in it (`serve_session`), so an idle connection holds no read buffer.
        inbuf: BytesMut::new(),
        out: BytesMut::new(),
        unflushed: false,
        counted_connected: false,
        permissions: Permissions::before_connect(),
    };
    let reason = connection
        .run(&mut stream, &peer, pending, connect_by, shutdown)
        .await;
    if connection.counted_connected {
        let connected = &connection.shared.counters.connected;
        connected.fetch_sub(1, Ordering::Relaxed);
    }
    open.closed(reason);
}

/// What woke the connection's task.
enum Wake {
    Close(CloseReason),
    Read,
    Wrote,
    /// The session's ready list handed out subscriptions with messages (now on its to-do list).
    Ready,
    /// One of the session's shared subscriptions gave a message, or closed.
    Shared(SubscriptionId, Result<Received, RecvError>),
}

/// After a packet: go on, or close for this reason.
type Handled = Result<(), CloseReason>;

/// What the session needs of an admitted CONNECT (`Connection::admit_connect`).
struct Admitted {
    client_id: Arc<str>,
    clean: bool,
    keep_alive: u16,
    /// Boxed: few clients leave a will, and it is kept for the connection's life.
    will: Option<Box<LastWill>>,
    /// The authenticated user name, for the stats.
    user_name: Option<String>,
}

/// Why a CONNECT was not admitted: a CONNACK with a refusal code, or a close without one.
enum Refusal {
    Connack(ConnectReturnCode),
    Close(CloseReason),
}

struct Connection {
    shared: Arc<ServerShared>,
    inbuf: BytesMut,
    out: BytesMut,
    /// Whether bytes were written since the stream was last flushed (TLS and WebSockets hold what
    /// they are given until a flush).
    unflushed: bool,
    /// Whether this connection counts in `ServerCounters::connected` (it got past CONNECT's checks
    /// far enough to be counted against `max_connections`).
    counted_connected: bool,
    /// What the ACL lets this client do (`crate::auth::permissions`); nothing until CONNECT is
    /// accepted.
    permissions: Permissions,
}

impl Connection {
    /// The connection's life: its CONNECT, the checks that admit it, the session it opens or resumes,
    /// then the session served until it closes (publishing the will if the close calls for it).
    async fn run<S: ByteStream>(
        &mut self,
        stream: &mut S,
        peer: &Peer,
        pending: PendingTicket,
        connect_by: Instant,
        mut shutdown: watch::Receiver<bool>,
    ) -> CloseReason {
        // Boxed, and freed once the session opens: inline, the CONNECT, the login and the waits of
        // the handshake would take room in the connection's future for its whole life (an async
        // function keeps a place for every local of every step it can await).
        let admitted =
            Box::pin(self.admit_connect(stream, peer, pending, connect_by, &mut shutdown));
        let Admitted {
            client_id,
            clean,
            keep_alive,
            will,
            user_name,
        } = match admitted.await {
            Ok(admitted) => admitted,
            Err(reason) => return reason,
        };
        let mut opened = self.shared.sessions.open(&client_id, clean).await;
        drop(client_id);
        *lock(&opened.info.address) = Some(peer.addr);
        *lock(&opened.info.transport) = Some(peer.transport);
        *lock(&opened.info.user_name) = user_name;
        self.put(Packet::ConnAck(ConnAck::new(
            ConnectReturnCode::Success,
            opened.session_present,
        )));
        self.resend_inflight(&opened);

        let reason = self
            .serve_session(stream, &mut opened, keep_alive, &mut shutdown)
            .await;
        // Not after a failed write, nor when a newer connection takes the session over: it waits
        // for this one to close. Boxed, as it is needed once.
        if !matches!(reason, CloseReason::Io | CloseReason::TakenOver) {
            Box::pin(self.flush_before_close(stream)).await;
        }
        if reason.publishes_will()
            && let Some(will) = &will
        {
            self.publish_will(will);
        }
        let info = opened.info.clone();
        self.shared.sessions.close(&info.client_id, opened, clean);
        reason
    }

    /// The CONNECT, the checks that admit it and the login; the client's permissions are set. What
    /// the session needs of the CONNECT is returned (the rest, the login above all, is dropped here
    /// rather than held for the connection's life); a refusal has been answered.
    async fn admit_connect<S: ByteStream>(
        &mut self,
        stream: &mut S,
        peer: &Peer,
        pending: PendingTicket,
        connect_by: Instant,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<Admitted, CloseReason> {
        let connect = self.await_connect(stream, pending, connect_by).await?;
        let connect = with_certificate_user_name(connect, &peer.certificate_login);
        let client_id = match self.admit(&connect) {
            Ok(client_id) => client_id,
            Err(Refusal::Connack(code)) => return Err(self.refuse(stream, code).await),
            Err(Refusal::Close(reason)) => return Err(reason),
        };
        let user = match self.authenticate(&connect, peer, shutdown).await {
            Ok(user) => user,
            Err(code) => return Err(self.refuse(stream, code).await),
        };
        let user_name = user.clone();
        let client_id: Arc<str> = client_id.into();
        self.permissions = match (&peer.certificate_login, user) {
            (CertificateLogin::CommonName(_), Some(name)) => {
                Permissions::for_certificate_user(&self.shared.access, name, client_id.clone())
            }
            (_, user) => Permissions::new(&self.shared.access, user, client_id.clone()),
        };
        Ok(Admitted {
            client_id,
            clean: connect.clean_session,
            keep_alive: connect.keep_alive,
            will: connect.last_will.map(Box::new),
            user_name,
        })
    }

    /// Waits for the CONNECT until `connect_by`, unless the pending bound closes this socket first to
    /// make room (`crate::pending`). Either way the socket leaves the pending list.
    async fn await_connect<S: ByteStream>(
        &mut self,
        stream: &mut S,
        mut pending: PendingTicket,
        connect_by: Instant,
    ) -> Result<Connect, CloseReason> {
        let read = tokio::select! {
            biased;
            // Closed to make room: the sender fired, or was dropped with it.
            _ = &mut pending.evicted => Err(CloseReason::PendingLimit),
            read = tokio::time::timeout_at(connect_by, self.read_connect(stream)) => {
                read.unwrap_or(Err(CloseReason::ConnectTimeout))
            }
        };
        self.shared.pending.leave(pending.ticket);
        read
    }

    /// The checks a CONNECT must pass: protocol level, the connection bound, the client id, the
    /// session bound, the will's topic. Returns the client id (assigned when the client sent none).
    fn admit(&mut self, connect: &Connect) -> Result<String, Refusal> {
        if connect.protocol != Protocol::V4 {
            return Err(Refusal::Connack(ConnectReturnCode::RefusedProtocolVersion));
        }
        // Only connections past CONNECT count here: those still waiting for theirs have their own
        // bound (`crate::pending`), so they cannot crowd a legitimate client out.
        let connected = self
            .shared
            .counters
            .connected
            .fetch_add(1, Ordering::Relaxed)
            + 1;
        self.counted_connected = true;
        if connected > self.shared.config.max_connections as u64 {
            return Err(Refusal::Connack(ConnectReturnCode::ServiceUnavailable));
        }
        let client_id = if connect.client_id.is_empty() {
            // MQTT 3.1.1 section 3.1.3.1: a server may accept an empty id with a clean session and
            // assign one; without a clean session it must refuse with return code 2.
            if !connect.clean_session {
                return Err(Refusal::Connack(ConnectReturnCode::BadClientId));
            }
            let n = self.shared.next_auto_id.fetch_add(1, Ordering::Relaxed);
            format!("auto-{n}")
        } else {
            connect.client_id.clone()
        };
        if !self
            .shared
            .sessions
            .has_room_for(&client_id, self.shared.config.max_sessions)
        {
            return Err(Refusal::Connack(ConnectReturnCode::ServiceUnavailable));
        }
        if let Some(will) = &connect.last_will
            && Topic::with_limits(&will.topic, &self.shared.broker.limits()).is_err()
        {
            return Err(Refusal::Close(CloseReason::ProtocolError));
        }
        Ok(client_id)
    }

    /// With a password file: the CONNECT's user name and password (`crate::auth`). The hashing runs
    /// on tokio's blocking pool, as it is slow on purpose; its concurrency is bounded by
    /// `max_connections`, which this connection already counts in. A refusal waits first for the
    /// delay its address has earned by failing before (or until the server shuts down).
    ///
    /// Returns the user name it checked; `None` without a password file, where clients are anonymous
    /// (an unchecked user name does not pick ACL rules: anyone could claim it).
    /// On a listener that takes user names from client certificates, the certificate is the login
    /// and the password file is not consulted (`crate::transport`).
    async fn authenticate(
        &self,
        connect: &Connect,
        peer: &Peer,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<Option<String>, ConnectReturnCode> {
        if let Some(decided) = self.certificate_login(&peer.certificate_login) {
            return decided;
        }
        let peer = peer.addr;
        let Some(passwords) = self.shared.access.passwords() else {
            return Ok(None);
        };
        let counters = &self.shared.counters;
        let refusal = match connect.login.clone() {
            Some(login) if !login.username.is_empty() => {
                let user = login.username.clone();
                let verified = tokio::task::spawn_blocking(move || {
                    passwords.verify(&login.username, login.password.as_bytes())
                })
                .await
                .unwrap_or(false);
                if verified {
                    counters.auth_accepted.fetch_add(1, Ordering::Relaxed);
                    self.shared.failure_delays.succeed(peer.ip());
                    return Ok(Some(user));
                }
                counters.auth_bad_login.fetch_add(1, Ordering::Relaxed);
                ConnectReturnCode::BadUserNamePassword
            }
            _ => {
                counters.auth_no_user_name.fetch_add(1, Ordering::Relaxed);
                ConnectReturnCode::NotAuthorized
            }
        };
        let delay = self
            .shared
            .failure_delays
            .fail(peer.ip(), std::time::Instant::now());
        if delay.evicted {
            counters.auth_delay_evicted.fetch_add(1, Ordering::Relaxed);
        }
        counters.auth_delayed.fetch_add(1, Ordering::Relaxed);
        counters
            .auth_delay_ms
            .fetch_add(delay.wait.as_millis() as u64, Ordering::Relaxed);
        tokio::select! {
            _ = tokio::time::sleep(delay.wait) => {}
            _ = shutdown.changed() => {}
        }
        Err(refusal)
    }

    /// The login a client certificate decides (counted), on a listener that takes user names from
    /// certificates: its common name gets in, a certificate without one gets CONNACK 5. `None`
    /// elsewhere: the password file decides.
    fn certificate_login(
        &self,
        login: &CertificateLogin,
    ) -> Option<Result<Option<String>, ConnectReturnCode>> {
        let counters = &self.shared.counters;
        match login {
            CertificateLogin::NotUsed => None,
            CertificateLogin::CommonName(name) => {
                counters.auth_certificate.fetch_add(1, Ordering::Relaxed);
                // The certificate's common name is the user name, for the ACL as for the login.
                Some(Ok(Some(name.to_string())))
            }
            CertificateLogin::NoCommonName => {
                counters
                    .auth_no_certificate_name
                    .fetch_add(1, Ordering::Relaxed);
                Some(Err(ConnectReturnCode::NotAuthorized))
            }
        }
    }

    /// Sends again what a resumed session had in flight: unacknowledged publishes (marked `dup`) and
    /// the PUBRELs of QoS 2 exchanges waiting for their PUBCOMP.
    fn resend_inflight(&mut self, opened: &OpenedSession) {
        for packet in opened.session.outgoing.resend() {
            self.put(packet);
        }
    }

    /// Reads until the first packet, which must be CONNECT.
    async fn read_connect<S: ByteStream>(
        &mut self,
        stream: &mut S,
    ) -> Result<Connect, CloseReason> {
        loop {
            match decode_first(&mut self.inbuf, self.shared.config.max_packet_size) {
                Ok(Some(Packet::Connect(connect))) => {
                    self.shared
                        .counters
                        .packets_in
                        .fetch_add(1, Ordering::Relaxed);
                    return Ok(connect);
                }
                Ok(Some(_)) => return Err(CloseReason::ProtocolError),
                Ok(None) => {}
                Err(DecodeError::UnsupportedProtocol(_)) => {
                    return Err(self
                        .refuse(stream, ConnectReturnCode::RefusedProtocolVersion)
                        .await);
                }
                Err(e) => return Err(e.close_reason()),
            }
            // A CONNECT is seldom larger; a larger one takes more reads.
            self.inbuf.reserve(256);
            match stream.read_buf(&mut self.inbuf).await {
                Ok(0) => return Err(CloseReason::PeerClosed),
                Ok(_) => {}
                Err(e) => return Err(read_error(&e)),
            }
        }
    }

    /// Writes what is still queued for the client, within [`CLOSE_FLUSH_LIMIT`], then closes the
    /// write side: the answers to the packets read before the close (the PUBACK of a QoS 1 PUBLISH
    /// that came just before DISCONNECT, a SUBACK, a PINGRESP) reach the client, which would otherwise
    /// send the publish again, or think it never subscribed. A client that does not read gets what
    /// fits in the limit.
    async fn flush_before_close<S: ByteStream>(&mut self, stream: &mut S) {
        let flush = async {
            while !self.out.is_empty() {
                match stream.write_buf(&mut self.out).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
            let _ = stream.flush().await;
            let _ = stream.shutdown().await;
        };
        let _ = tokio::time::timeout(CLOSE_FLUSH_LIMIT, flush).await;
    }

    /// Answers CONNECT with a refusal and ends the connection.
    async fn refuse<S: ByteStream>(
        &mut self,
        stream: &mut S,
        code: ConnectReturnCode,
    ) -> CloseReason {
        self.put(Packet::ConnAck(ConnAck::new(code, false)));
        let _ = stream.write_all(&self.out).await;
        let _ = stream.flush().await;
        let _ = stream.shutdown().await;
        CloseReason::Refused
    }

    async fn serve_session<S: ByteStream>(
        &mut self,
        stream: &mut S,
        opened: &mut OpenedSession,
        keep_alive_s: u16,
        shutdown: &mut watch::Receiver<bool>,
    ) -> CloseReason {
        // MQTT 3.1.1 section 3.1.2.10: one and a half times the keep-alive without a packet ends the
        // connection; zero turns the mechanism off.
        let keep_alive =
            (keep_alive_s > 0).then(|| Duration::from_millis(u64::from(keep_alive_s) * 1500));
        let far = Duration::from_secs(86_400 * 365);
        let mut deadline = pin!(tokio::time::sleep(keep_alive.unwrap_or(far)));
        // Made once and kept across the loop's waits: a fresh `changed()` each time round registered
        // with the channel and unregistered again (a mutex each way) on every packet.
        let mut shutting_down = pin!(shutdown.changed());
        let max_inflight = self.shared.config.max_inflight;
        loop {
            // Packets already read, while there is room to answer them.
            let mut got_packet = false;
            while self.out.len() < OUT_HIGH_WATER {
                match decode(&mut self.inbuf, self.shared.config.max_packet_size) {
                    Ok(Some(packet)) => {
                        got_packet = true;
                        self.shared
                            .counters
                            .packets_in
                            .fetch_add(1, Ordering::Relaxed);
                        let handled = match packet {
                            Packet::Subscribe(subscribe) => {
                                // Boxed: its waits would otherwise take room in every idle
                                // connection's future.
                                Box::pin(self.subscribe_all(subscribe, opened)).await;
                                Ok(())
                            }
                            packet => self.handle(packet, opened),
                        };
                        if let Err(reason) = handled {
                            return reason;
                        }
                    }
                    Ok(None) => break,
                    Err(e) => return e.close_reason(),
                }
            }
            if got_packet && let Some(keep_alive) = keep_alive {
                deadline.as_mut().reset(Instant::now() + keep_alive);
            }
            if self.take_ready(&mut opened.session) {
                opened.subscriptions_changed();
            }
            opened
                .info
                .inflight
                .store(opened.session.outgoing.len() as u64, Ordering::Relaxed);

            let can_read = self.out.len() < OUT_HIGH_WATER;
            let can_take = can_read && opened.session.outgoing.len() < max_inflight;
            if self.inbuf.is_empty() {
                // Nothing partial to keep: no read buffer while waiting (`poll_io` reads into the
                // stack then); what was read lives on in the packets split off it.
                self.inbuf = BytesMut::new();
            } else if self.inbuf.capacity() - self.inbuf.len() < 256 {
                self.inbuf.reserve(4096);
            }
            let session: &mut Session = &mut opened.session;
            let wait_shared = can_take && session.has_shared;
            // A client without subscriptions (a pure publisher) has nothing on its ready list: not
            // waiting on it saves registering with the signal on every packet.
            let wait_ready = can_take && !session.subscriptions.is_empty();
            let wake = tokio::select! {
                biased;
                _ = &mut opened.kicked => Wake::Close(CloseReason::TakenOver),
                _ = &mut shutting_down => Wake::Close(CloseReason::Shutdown),
                wake = std::future::poll_fn(|cx| self.poll_io(stream, can_read, cx)),
                    if can_read || !self.out.is_empty() || self.unflushed => wake,
                () = session.turns.wait(), if wait_ready => Wake::Ready,
                (id, got) = Self::wait_shared(&session.subscriptions), if wait_shared => Wake::Shared(id, got),
                _ = &mut deadline, if keep_alive.is_some() => Wake::Close(CloseReason::KeepAliveTimeout),
            };
            match wake {
                Wake::Close(reason) => return reason,
                Wake::Read | Wake::Wrote => {}
                Wake::Ready => {}
                Wake::Shared(id, got) => {
                    if self.took(&mut opened.session, id, got) {
                        opened.subscriptions_changed();
                    }
                }
            }
        }
    }

    /// Waits for a message on any of the shared subscriptions in `subscriptions`; a plain or
    /// acknowledged receiver's `recv_async`, so this member wakes for what the ready list does not
    /// tell (the signal goes to one consumer, and a group has many): a new message, a message a
    /// departing member handed back, a place freed in the group's window by another member's ack.
    /// Cancel-safe: a receive takes a message only in the poll that returns it.
    async fn wait_shared(
        subscriptions: &[ClientSubscription],
    ) -> (SubscriptionId, Result<Received, RecvError>) {
        type Wait<'a> = Pin<
            Box<dyn Future<Output = (SubscriptionId, Result<Received, RecvError>)> + Send + 'a>,
        >;
        let mut waits: Vec<Wait<'_>> = subscriptions
            .iter()
            .filter(|s| s.shared.is_some())
            .map(|s| -> Wait<'_> {
                Box::pin(async { (s.receiver.id(), s.receiver.recv_async().await) })
            })
            .collect();
        std::future::poll_fn(|cx| {
            waits
                .iter_mut()
                .find_map(|wait| match wait.as_mut().poll(cx) {
                    Poll::Ready(got) => Some(got),
                    Poll::Pending => None,
                })
                .map_or(Poll::Pending, Poll::Ready)
        })
        .await
    }

    /// What a shared subscription's wait gave: a message, sent as any other, after which the
    /// subscription is on the to-do list while it has more; or its close. Returns whether a
    /// subscription went away.
    fn took(
        &mut self,
        session: &mut Session,
        id: SubscriptionId,
        got: Result<Received, RecvError>,
    ) -> bool {
        let Some(index) = session
            .subscriptions
            .iter()
            .position(|s| s.receiver.id() == id)
        else {
            return false;
        };
        match got {
            Ok(received) => {
                self.deliver(session, index, received);
                session.turns.revisit(id);
                false
            }
            Err(RecvError::Closed) => {
                session.subscriptions.remove(index);
                true
            }
        }
    }

    /// Writes what waits to be written and flushes it, then reads if `can_read`, all in one wake-up:
    /// an answer (a PUBACK) goes out and the task goes back to waiting for the next packet without
    /// another turn of the loop. Returns `Wrote` only when writing brought the buffer back under
    /// [`OUT_HIGH_WATER`], since the loop then has work again (reading, taking messages).
    fn poll_io<S: ByteStream>(
        &mut self,
        stream: &mut S,
        can_read: bool,
        cx: &mut Context<'_>,
    ) -> Poll<Wake> {
        while !self.out.is_empty() {
            match Pin::new(&mut *stream).poll_write(cx, &self.out) {
                Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => {
                    return Poll::Ready(Wake::Close(CloseReason::Io));
                }
                Poll::Ready(Ok(written)) => {
                    self.out.advance(written);
                    self.unflushed = true;
                }
                Poll::Pending => break,
            }
        }
        if self.out.is_empty() && self.unflushed {
            match Pin::new(&mut *stream).poll_flush(cx) {
                Poll::Ready(Ok(())) => self.unflushed = false,
                Poll::Ready(Err(_)) => return Poll::Ready(Wake::Close(CloseReason::Io)),
                Poll::Pending => {}
            }
        }
        if !can_read {
            return if self.out.len() < OUT_HIGH_WATER {
                Poll::Ready(Wake::Wrote)
            } else {
                Poll::Pending
            };
        }
        let read = if self.inbuf.capacity() == 0 {
            self.poll_read_into_stack(stream, cx)
        } else {
            tokio_util::io::poll_read_buf(Pin::new(stream), cx, &mut self.inbuf)
        };
        match read {
            Poll::Ready(Ok(0)) => Poll::Ready(Wake::Close(CloseReason::PeerClosed)),
            Poll::Ready(Ok(_)) => Poll::Ready(Wake::Read),
            Poll::Ready(Err(e)) => Poll::Ready(Wake::Close(read_error(&e))),
            Poll::Pending => Poll::Pending,
        }
    }

    /// Reads into a buffer on the stack and copies what came into a read buffer made to its size: a
    /// connection waiting for its next packet holds no read buffer of its own (a 1 KiB one was a
    /// fifth of an idle connection). The copy is what arrived in one read, at most [`STACK_READ`].
    fn poll_read_into_stack<S: ByteStream>(
        &mut self,
        stream: &mut S,
        cx: &mut Context<'_>,
    ) -> Poll<std::io::Result<usize>> {
        let mut scratch = [std::mem::MaybeUninit::<u8>::uninit(); STACK_READ];
        let mut buf = tokio::io::ReadBuf::uninit(&mut scratch);
        match Pin::new(stream).poll_read(cx, &mut buf) {
            Poll::Ready(Ok(())) => {
                self.inbuf.extend_from_slice(buf.filled());
                Poll::Ready(Ok(buf.filled().len()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }

    /// Takes queued messages while the window and the write buffer have room, from the subscriptions
    /// on the session's to-do list (refilled from its ready list without waiting), in turn: one message
    /// at a time, and a subscription that gave one goes to the back of the list. Returns whether a
    /// subscription went away (unsubscribed through the broker by someone else).
    fn take_ready(&mut self, session: &mut Session) -> bool {
        let max_inflight = self.shared.config.max_inflight;
        let mut removed = false;
        while self.out.len() < OUT_HIGH_WATER && session.outgoing.len() < max_inflight {
            let subscriptions = &session.subscriptions;
            let next = session.turns.try_next(|id| {
                // A linear search by id (at most `max_subscriptions`, 1,000 by default): indices
                // move when the client unsubscribes, ids do not.
                let index = subscriptions.iter().position(|s| s.receiver.id() == id)?;
                Some((index, subscriptions[index].receiver.try_recv()))
            });
            match next {
                None => break,
                Some((index, Ok(received))) => self.deliver(session, index, received),
                Some((index, Err(RecvError::Closed))) => {
                    // Unsubscribed through the broker by someone else: the client no longer has it.
                    session.subscriptions.remove(index);
                    removed = true;
                }
            }
        }
        removed
    }

    /// Sends one message from subscription `index` at the lower of that subscription's QoS and the
    /// publisher's (MQTT 3.1.1 section 3.8.4), with RETAIN set only on a retained message replayed to
    /// a new subscription (section 3.3.1.3). At QoS 1 and 2 it stays in flight in the subscription,
    /// its token kept with its packet id; at QoS 0 an acknowledged subscription's message is acked as
    /// it is written, and so is one the ACL does not let the client read (not sent).
    fn deliver(&mut self, session: &mut Session, index: usize, received: Received) {
        let message = received.message();
        if !self.may_send(
            session,
            index,
            message.topic(),
            message.is_retained_replay(),
        ) {
            received.done();
            return;
        }
        let granted = session.subscriptions[index].qos;
        let published = publisher_qos(message.tag());
        let qos = if (published as u8) < (granted as u8) {
            published
        } else {
            granted
        };
        let publish = match received {
            Received::Acked(delivery) if qos != QoS::AtMostOnce => {
                let from = session.subscriptions[index].receiver.id();
                let message = delivery.message().clone();
                session
                    .outgoing
                    .send(message, qos, from, delivery.into_token())
            }
            // QoS 0; a plain receiver is granted no more (`crate::receiver`).
            received => {
                let publish = publish_packet(received.message(), QoS::AtMostOnce, 0, false);
                received.done();
                publish
            }
        };
        self.put(Packet::Publish(publish));
    }

    /// The client acknowledged `pkid` with `acked`: the flow moves on, and a message whose flight
    /// ended is acked in the subscription it came from (if the client still has it: an unsubscribed
    /// one counted it dropped already). An acknowledgement nothing waits for is counted and ignored.
    fn acknowledge(&mut self, session: &mut Session, pkid: u16, acked: OutgoingState) {
        match session.outgoing.acknowledge(pkid, acked) {
            Acknowledged::Settle(from, token) => {
                if let Some(subscription) = session
                    .subscriptions
                    .iter()
                    .find(|s| s.receiver.id() == from)
                {
                    // Refused only when it cannot matter (the subscription ended), and counted there.
                    let _ = subscription.receiver.ack(token);
                }
            }
            Acknowledged::Done => {}
            Acknowledged::Unknown => {
                self.shared
                    .counters
                    .acks_unknown
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Whether the ACL lets the client read `topic` from subscription `index`: no check for a
    /// subscription whose whole filter it may read, a cached one by topic for a filter that overlaps
    /// denied topics (`crate::auth::permissions`). A refusal is counted (retained or live).
    fn may_send(
        &mut self,
        session: &mut Session,
        index: usize,
        topic: &str,
        retained: bool,
    ) -> bool {
        let subscription = &mut session.subscriptions[index];
        let access = &self.shared.access;
        if subscription.read.may_send(
            &mut self.permissions,
            access,
            subscription_filter(&subscription.filter),
            topic,
        ) {
            return true;
        }
        access.counters.count(if retained {
            AclRefusal::RetainedRead
        } else {
            AclRefusal::Read
        });
        false
    }

    fn handle(&mut self, packet: Packet, opened: &mut OpenedSession) -> Handled {
        let session = &mut opened.session;
        match packet {
            Packet::Publish(publish) => {
                self.shared
                    .counters
                    .publishes_in
                    .fetch_add(1, Ordering::Relaxed);
                let pkid = publish.pkid;
                match publish.qos {
                    QoS::AtMostOnce => self.publish(publish)?,
                    QoS::AtLeastOnce => {
                        self.publish(publish)?;
                        self.put(Packet::PubAck(PubAck::new(pkid)));
                    }
                    QoS::ExactlyOnce => {
                        let received = session.incoming_qos2.get_or_insert_with(Box::default);
                        if !received.contains(&pkid) {
                            self.publish(publish)?;
                            received.insert(pkid);
                        }
                        self.put(Packet::PubRec(PubRec::new(pkid)));
                    }
                }
            }
            Packet::PubAck(ack) => self.acknowledge(session, ack.pkid, OutgoingState::PubAck),
            Packet::PubRec(rec) => {
                self.acknowledge(session, rec.pkid, OutgoingState::PubRec);
                self.put(Packet::PubRel(PubRel::new(rec.pkid)));
            }
            Packet::PubComp(comp) => {
                self.acknowledge(session, comp.pkid, OutgoingState::PubComp);
            }
            Packet::PubRel(rel) => {
                if let Some(received) = &mut session.incoming_qos2 {
                    received.remove(&rel.pkid);
                }
                self.put(Packet::PubComp(PubComp::new(rel.pkid)));
            }
            // Answered by `subscribe_all`, which the read loop awaits.
            Packet::Subscribe(_) => {}
            Packet::Unsubscribe(unsubscribe) => {
                session.unsubscribe(&unsubscribe.topics);
                opened.subscriptions_changed();
                self.put(Packet::UnsubAck(UnsubAck::new(unsubscribe.pkid)));
            }
            Packet::PingReq => self.put(Packet::PingResp),
            Packet::Disconnect => return Err(CloseReason::Disconnect),
            // A second CONNECT (section 3.1.0-2) or a packet only a server sends.
            Packet::Connect(_)
            | Packet::ConnAck(_)
            | Packet::SubAck(_)
            | Packet::UnsubAck(_)
            | Packet::PingResp => return Err(CloseReason::ProtocolError),
        }
        Ok(())
    }

    /// Answers a SUBSCRIBE: each filter granted its QoS, or `Failure` (0x80) when the broker refuses it
    /// or the client holds [`crate::MqttConfig::max_subscriptions`] already.
    ///
    /// A new broker subscription replays the retained messages its filter matches, a walk of the whole
    /// retained store under its mutex (`switchyard`'s retained module); with a full store and a client
    /// that subscribes in a loop, that walk on the runtime's workers stalled every other connection
    /// (PINGREQ answered after seconds). So the subscriptions are made on tokio's blocking pool, and
    /// this connection waits for them without holding a worker; its own later packets wait their turn,
    /// as MQTT asks (section 4.6).
    async fn subscribe_all(&mut self, subscribe: rumqttc::Subscribe, opened: &mut OpenedSession) {
        let session = &mut opened.session;
        let shared = self.shared.clone();
        let config = &shared.config;
        let mut codes = Vec::with_capacity(subscribe.filters.len());
        // (index in `codes`, filter, QoS) of the subscriptions to make.
        let mut new: Vec<(usize, String, QoS)> = Vec::new();
        for f in subscribe.filters {
            let Ok(share) = ShareFilter::parse(&f.path) else {
                codes.push(SubscribeReasonCode::Failure);
                continue;
            };
            // The topic permissions of a shared subscription are those of its FILTER.
            if self.refuse_by_acl(share.map_or(f.path.as_str(), |share| share.filter)) {
                codes.push(SubscribeReasonCode::Failure);
                continue;
            }
            // Section 3.8.4: the same filter again replaces the subscription; its queue is kept,
            // unless a plain one must become acknowledged for a higher QoS (`crate::receiver`).
            if let Some(existing) = session
                .subscriptions
                .iter_mut()
                .find(|s| s.filter == f.path && !replaced_for(s, f.qos))
            {
                existing.qos = existing.receiver.granted(f.qos);
                codes.push(SubscribeReasonCode::Success(existing.qos));
                continue;
            }
            if let Some(again) = new.iter_mut().find(|(_, filter, _)| *filter == f.path) {
                // Twice in one packet: one subscription, the later QoS.
                again.2 = f.qos;
                codes[again.0] = SubscribeReasonCode::Success(f.qos);
            } else if session.subscriptions.len() + new.len() >= config.max_subscriptions
                && !session.subscriptions.iter().any(|s| s.filter == f.path)
            {
                codes.push(SubscribeReasonCode::Failure);
                continue;
            } else {
                new.push((codes.len(), f.path, f.qos));
            }
            codes.push(SubscribeReasonCode::Success(f.qos));
        }
        if !new.is_empty() {
            let broker = self.shared.broker.clone();
            let groups = self.shared.groups.clone();
            let mut base = SubscriptionOptions::new()
                .capacity(config.queue_capacity)
                .policy(config.policy)
                .receive_retained(true)
                .ready_signal(session.turns.signal());
            if let Some(limit) = config.queue_bytes {
                base = base.byte_budget(opened.info.byte_budget(limit));
            }
            let settings = GroupSettings {
                capacity: config.queue_capacity,
                policy: config.policy,
                max_bytes: config.queue_bytes,
                max_inflight: config.max_inflight,
            };
            let client_id = opened.info.client_id.clone();
            let indices: Vec<usize> = new.iter().map(|(index, ..)| *index).collect();
            let made = tokio::task::spawn_blocking(move || {
                new.into_iter()
                    .map(|(index, filter, qos)| {
                        let made = match ShareFilter::parse(&filter) {
                            Ok(Some(share)) => groups
                                .join(&broker, share, qos, settings)
                                .map(|(receiver, member)| (receiver, Some(member))),
                            _ => {
                                let options =
                                    base.clone().name(format!("mqtt/{client_id}/{filter}"));
                                Receiver::subscribe(
                                    &broker,
                                    &filter,
                                    qos,
                                    settings.max_inflight,
                                    options,
                                )
                                .map(|receiver| (receiver, None))
                            }
                        };
                        (index, filter, qos, made)
                    })
                    .collect::<Vec<_>>()
            })
            .await;
            // The closure does not panic (a broker refusal is an `Err`); were it to, its filters are
            // refused rather than taking the connection down.
            let Ok(made) = made else {
                for index in indices {
                    codes[index] = SubscribeReasonCode::Failure;
                }
                opened.subscriptions_changed();
                self.put(Packet::SubAck(SubAck::new(subscribe.pkid, codes)));
                return;
            };
            let session = &mut opened.session;
            for (index, filter, qos, made) in made {
                match made {
                    Ok((receiver, membership)) => {
                        // A plain subscription this one replaces: what it still queued is counted
                        // dropped (`unsubscribed`).
                        session.subscriptions.retain(|s| s.filter != filter);
                        let qos = receiver.granted(qos);
                        codes[index] = SubscribeReasonCode::Success(qos);
                        if session.subscriptions.capacity() == 0 {
                            // Most clients hold one subscription: room for one, not the four a
                            // first push makes (a subscription is about 140 bytes).
                            session.subscriptions.reserve_exact(1);
                        }
                        session.subscriptions.push(ClientSubscription {
                            filter,
                            qos,
                            receiver,
                            read: Default::default(),
                            shared: membership.map(Box::new),
                        });
                    }
                    Err(_) => codes[index] = SubscribeReasonCode::Failure,
                }
            }
        }
        opened.subscriptions_changed();
        self.put(Packet::SubAck(SubAck::new(subscribe.pkid, codes)));
    }

    /// Whether the ACL refuses a subscription to `filter`: the client may read no topic it matches
    /// (counted). A filter that is not valid is left to the broker, which refuses it as before.
    fn refuse_by_acl(&mut self, filter: &str) -> bool {
        let access = &self.shared.access;
        if self.permissions.everything(access)
            || switchyard::validate_filter(filter, &self.shared.broker.limits()).is_err()
            || self.permissions.read_class(access, filter) != ReadClass::None
        {
            return false;
        }
        access.counters.count(AclRefusal::Subscribe);
        true
    }

    /// Whether the ACL refuses the client a publish (or will, as `refusal` says) to `topic`, counted.
    /// A refused topic that is not valid is a protocol error, as it is without an ACL.
    fn refuse_write(&mut self, topic: &str, refusal: AclRefusal) -> Result<bool, CloseReason> {
        let access = &self.shared.access;
        if self.permissions.may_publish(access, topic) {
            return Ok(false);
        }
        if validate_topic(topic, &self.shared.broker.limits()).is_err() {
            return Err(CloseReason::ProtocolError);
        }
        access.counters.count(refusal);
        Ok(true)
    }

    /// Publishes a client's message to the broker. A topic the broker refuses is a protocol error.
    ///
    /// A valid topic beginning with `$` is not published (nor retained): those topics are the
    /// server's own (`$SYS/...`), and clients may not publish under them (MQTT 3.1.1 section 4.7.2:
    /// the server should prevent clients from using them to exchange messages; Mosquitto denies it).
    /// The message is dropped and counted ([`crate::MqttStats::dollar_topic_refused`]); the caller still
    /// acknowledges a QoS 1/2 publish as usual, since MQTT 3.1.1 has no negative acknowledgement.
    /// A topic the ACL does not let the client write is dropped and acknowledged the same way
    /// (counted in [`crate::AclStats`]).
    fn publish(&mut self, publish: Publish) -> Handled {
        if self.refuse_dollar_topic(&publish.topic)?
            || self.refuse_write(&publish.topic, AclRefusal::Publish)?
        {
            return Ok(());
        }
        let options = PublishOptions::new()
            .retain(publish.retain)
            .tag(qos_tag(publish.qos));
        match self
            .shared
            .broker
            .publish_with(&publish.topic, publish.payload, options)
        {
            Ok(outcome) => {
                self.count_retain_refused(&outcome);
                Ok(())
            }
            Err(_) => Err(CloseReason::ProtocolError),
        }
    }

    /// A full retained store refused to keep a retained message (it was delivered all the same).
    fn count_retain_refused(&self, outcome: &PublishOutcome) {
        if outcome.retain_refused > 0 {
            self.shared
                .counters
                .retained_refused
                .fetch_add(outcome.retain_refused as u64, Ordering::Relaxed);
        }
    }

    /// Whether `topic` is a valid topic under `$`, which a client may not publish to (counted); an
    /// invalid topic under `$` is a protocol error as any invalid topic is.
    fn refuse_dollar_topic(&self, topic: &str) -> Result<bool, CloseReason> {
        if !topic.starts_with('$') {
            return Ok(false);
        }
        if validate_topic(topic, &self.shared.broker.limits()).is_err() {
            return Err(CloseReason::ProtocolError);
        }
        self.shared
            .counters
            .dollar_topic_refused
            .fetch_add(1, Ordering::Relaxed);
        Ok(true)
    }

    /// Publishes the client's will; a will under `$` is refused like any publish there, and so is one
    /// whose topic the ACL in force now does not let the client write.
    fn publish_will(&mut self, will: &LastWill) {
        if self.refuse_dollar_topic(&will.topic) != Ok(false)
            || self.refuse_write(&will.topic, AclRefusal::Will) != Ok(false)
        {
            return;
        }
        let options = PublishOptions::new()
            .retain(will.retain)
            .tag(qos_tag(will.qos));
        let published = self
            .shared
            .broker
            .publish_with(&will.topic, will.message.clone(), options);
        if let Ok(outcome) = published {
            self.shared
                .counters
                .wills_published
                .fetch_add(1, Ordering::Relaxed);
            self.count_retain_refused(&outcome);
        }
    }

    /// Queues a packet to write. Our own packets always encode; a message too big for MQTT's length
    /// field (over 256 MiB, which only an in-process publisher could make) is not sent.
    fn put(&mut self, packet: Packet) {
        if packet.write(&mut self.out, usize::MAX).is_ok() {
            self.shared
                .counters
                .packets_out
                .fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The filter whose topics a client subscription reads: FILTER of a shared `$share/GROUP/FILTER`, the
/// whole filter otherwise (what the topic permissions judge).
fn subscription_filter(filter: &str) -> &str {
    match ShareFilter::parse(filter) {
        Ok(Some(share)) => share.filter,
        _ => filter,
    }
}

/// Whether SUBSCRIBE asking `qos` replaces `existing` with a new broker subscription rather than
/// updating it: a plain one of the client's own asked for QoS 1 or 2 (a shared group keeps its kind).
fn replaced_for(existing: &ClientSubscription, qos: QoS) -> bool {
    matches!(existing.receiver, Receiver::Plain(_))
        && existing.shared.is_none()
        && qos != QoS::AtMostOnce
}

/// How a failed read ends the connection: TLS without its `close_notify`, or a WebSocket without
/// its close message, is the peer closing (`peer_closed`), as a TCP peer's zero-byte read is; any
/// other error is `io`.
fn read_error(e: &std::io::Error) -> CloseReason {
    match e.kind() {
        std::io::ErrorKind::UnexpectedEof => CloseReason::PeerClosed,
        _ => CloseReason::Io,
    }
}

/// The CONNECT as the client certificate has it: on a listener that takes user names from
/// certificates, the certificate's common name replaces whatever user name (and password) the CONNECT
/// carried, so everything after the login (topic permissions included) sees that name.
fn with_certificate_user_name(mut connect: Connect, login: &CertificateLogin) -> Connect {
    if let CertificateLogin::CommonName(name) = login {
        connect.login = Some(rumqttc::Login::new(name.clone(), String::new()));
    }
    connect
}

/// The publisher's QoS as the message's tag ([`switchyard::Message::tag`]): QoS + 1, so that 0 keeps
/// meaning "no MQTT publisher" (an in-process publish).
fn qos_tag(qos: QoS) -> u8 {
    qos as u8 + 1
}

/// The QoS a message was published at: from its tag, or the highest for an in-process publish, which
/// then reaches each MQTT subscriber at the QoS it was granted.
fn publisher_qos(tag: u8) -> QoS {
    match tag {
        1 => QoS::AtMostOnce,
        2 => QoS::AtLeastOnce,
        _ => QoS::ExactlyOnce,
    }
}
