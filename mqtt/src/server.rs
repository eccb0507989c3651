//! [`MqttServer`]: its listeners (TCP, TLS, WebSockets: `crate::transport`), one task per
//! connection, and the `$SYS` publisher.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use switchyard::Broker;
use tokio::net::{TcpListener, ToSocketAddrs};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::accept;
use crate::auth::{self, AccessFiles, ReloadError, Reloaded};
use crate::config::{ConfigError, MqttConfig};
use crate::listener_stats::{MqttStats, ServerCounters};
use crate::pending::PendingConnects;
use crate::session::SessionRegistry;
use crate::shared::ServerShared;
use crate::sys;
use crate::transport::{Listener, ListenerState, Transport, TransportKind};

/// Why [`MqttServer::bind`] failed.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    /// The configuration was refused.
    #[error("invalid MQTT configuration: {0}")]
    Config(#[from] ConfigError),
    /// The address could not be bound.
    #[error("cannot listen for MQTT: {0}")]
    Io(#[from] io::Error),
    /// One of several listeners could not be bound.
    #[error("cannot listen for MQTT ({transport}) on {addr}: {source}")]
    Listen {
        /// Its transport.
        transport: TransportKind,
        /// Its address.
        addr: SocketAddr,
        /// Why.
        source: io::Error,
    },
    /// [`MqttServer::bind_listeners`] was given no listener.
    #[error("an MQTT server needs at least one listener")]
    NoListener,
}

/// An MQTT 3.1.1 listener serving a [`Broker`]: MQTT clients publish into it and subscribe to it, side
/// by side with in-process publishers and subscribers.
///
/// Runs on the tokio runtime that calls [`MqttServer::bind`]. Dropping the server stops accepting and
/// closes every connection (counted as `shutdown`); persistent sessions end with it.
///
/// # Examples
/// ```
/// use switchyard::Broker;
/// use switchyard_mqtt::{MqttConfig, MqttServer};
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let broker = Broker::new();
/// let server = MqttServer::bind("127.0.0.1:0", broker.clone(), MqttConfig::default())
///     .await
///     .unwrap();
/// println!("MQTT on {}", server.local_addr());
/// assert_eq!(server.stats().open, 0);
/// # });
/// ```
pub struct MqttServer {
    shared: Arc<ServerShared>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for MqttServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttServer")
            .field("local_addr", &self.shared.local_addr)
            .finish_non_exhaustive()
    }
}

impl MqttServer {
    /// Listens on `addr` for MQTT over TCP (port 0 picks a free port; see
    /// [`MqttServer::local_addr`]) and serves `broker` until dropped. Must be called inside a tokio
    /// runtime.
    pub async fn bind(
        addr: impl ToSocketAddrs,
        broker: Broker,
        config: MqttConfig,
    ) -> Result<Self, BindError> {
        config.validate()?;
        let listener = TcpListener::bind(addr).await?;
        Self::serve(vec![(listener, Transport::Tcp)], broker, config)
    }

    /// Listens on each of `listeners` (TCP, TLS, WebSockets, WebSockets over TLS; see
    /// [`Listener`]) and serves `broker` on all of them until dropped: one set of sessions, limits
    /// and counters, with each listener's own in [`MqttStats::listeners`]. Must be called inside a
    /// tokio runtime.
    pub async fn bind_listeners(
        listeners: impl IntoIterator<Item = Listener>,
        broker: Broker,
        config: MqttConfig,
    ) -> Result<Self, BindError> {
        config.validate()?;
        let mut bound = Vec::new();
        for Listener { addr, transport } in listeners {
            let listener = TcpListener::bind(addr)
                .await
                .map_err(|source| BindError::Listen {
                    transport: transport.kind(),
                    addr,
                    source,
                })?;
            bound.push((listener, transport));
        }
        if bound.is_empty() {
            return Err(BindError::NoListener);
        }
        Self::serve(bound, broker, config)
    }

    /// Starts the accept loops of the bound listeners (at least one) and the `$SYS` publisher.
    fn serve(
        bound: Vec<(TcpListener, Transport)>,
        broker: Broker,
        config: MqttConfig,
    ) -> Result<Self, BindError> {
        let mut listeners = Vec::with_capacity(bound.len());
        let mut sockets = Vec::with_capacity(bound.len());
        for (socket, transport) in bound {
            listeners.push(Arc::new(ListenerState::new(
                socket.local_addr()?,
                transport,
            )));
            sockets.push(socket);
        }
        let shared = Arc::new(ServerShared {
            broker,
            counters: ServerCounters::default(),
            sessions: SessionRegistry::default(),
            groups: Default::default(),
            pending: PendingConnects::default(),
            next_auto_id: AtomicU64::new(1),
            local_addr: listeners[0].addr,
            failure_delays: Default::default(),
            access: auth::Access::new(auth::rules(
                config.password_file.clone(),
                config.acl_file.clone(),
            )),
            config,
            listeners: listeners.clone(),
        });
        let (shutdown, stop) = watch::channel(false);
        let mut tasks: Vec<JoinHandle<()>> = sockets
            .into_iter()
            .zip(listeners)
            .map(|(socket, listener)| {
                tokio::spawn(accept_loop(socket, listener, shared.clone(), stop.clone()))
            })
            .collect();
        if let Some(interval) = shared.config.sys_interval {
            tasks.push(tokio::spawn(sys::publish_every(
                interval,
                shared.clone(),
                stop,
            )));
        }
        Ok(Self {
            shared,
            shutdown,
            tasks,
        })
    }

    /// The address the (first) listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr
    }

    /// The address of the first listener of transport `kind`, if there is one.
    pub fn local_addr_of(&self, kind: TransportKind) -> Option<SocketAddr> {
        self.shared
            .listeners
            .iter()
            .find(|l| l.transport.kind() == kind)
            .map(|l| l.addr)
    }

    /// The broker it serves.
    pub fn broker(&self) -> &Broker {
        &self.shared.broker
    }

    /// Connections, sessions and their drops now.
    pub fn stats(&self) -> MqttStats {
        self.shared.stats()
    }

    /// Reads `files` again and puts them in force for new and existing connections alike; see
    /// [`ListenerHandle::reload_access`].
    pub fn reload_access(&self, files: &AccessFiles) -> Result<Reloaded, ReloadError> {
        auth::reload(&self.shared.access, files)
    }

    /// A handle that reads the stats and reloads the files from any thread, for as long as it is
    /// kept (after the server is dropped it reads the last counts).
    pub fn handle(&self) -> ListenerHandle {
        ListenerHandle {
            shared: self.shared.clone(),
        }
    }

    /// A reader of [`MqttServer::stats`] that other threads can keep, such as a stats endpoint's
    /// section (`switchyard serve` shows its listener in `/v1/stats` and `/metrics` this way). Once the
    /// server is dropped it reads the final counters.
    ///
    /// ```
    /// use switchyard::Broker;
    /// use switchyard_mqtt::{MqttConfig, MqttServer};
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let server = MqttServer::bind("127.0.0.1:0", Broker::new(), MqttConfig::default()).await.unwrap();
    /// let read = server.stats_reader();
    /// let open = std::thread::spawn(move || read().open).join().unwrap();
    /// assert_eq!(open, 0);
    /// # });
    /// ```
    pub fn stats_reader(&self) -> impl Fn() -> MqttStats + Send + Sync + 'static {
        let shared = self.shared.clone();
        move || shared.stats()
    }

    /// Stops accepting and closes every connection (each counted as `shutdown`), as dropping the
    /// server does, but keeps the server so its [`stats`](Self::stats) can still be read: a final
    /// snapshot then counts those connections closed. The connections close on their own tasks, so
    /// `open` reaches 0 a moment later.
    pub fn close_connections(&self) {
        let _ = self.shutdown.send(true);
    }
}

impl Drop for MqttServer {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// The first wait after a failed accept; each failure in a row doubles it, up to
/// [`ACCEPT_BACKOFF_MAX`], and an accept that succeeds starts again from here.
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(5);
/// The longest wait between accepts that fail in a row.
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_millis(500);

/// Accepts connections until `stop`. Each new one is admitted among the connections that have not
/// sent CONNECT (`crate::pending`), which closes the oldest of them beyond their bound.
///
/// An accept that fails (out of file descriptors, `EMFILE`, is the one that matters) is counted
/// ([`MqttStats::accept_errors`]); out of descriptors, the oldest connection that has not sent CONNECT
/// is closed to free one; then the loop waits, longer for each failure in a row (from
/// [`ACCEPT_BACKOFF_MIN`] to [`ACCEPT_BACKOFF_MAX`]), and accepts again. It never spins and never
/// gives up.
async fn accept_loop(
    socket: TcpListener,
    listener: Arc<ListenerState>,
    shared: Arc<ServerShared>,
    mut stop: watch::Receiver<bool>,
) {
    let mut backoff = ACCEPT_BACKOFF_MIN;
    loop {
        let accepted = tokio::select! {
            _ = stop.changed() => return,
            accepted = socket.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => {
                backoff = ACCEPT_BACKOFF_MIN;
                accepted
            }
            Err(e) => {
                shared
                    .counters
                    .accept_errors
                    .fetch_add(1, Ordering::Relaxed);
                if out_of_descriptors(&e) {
                    shared.pending.evict_oldest();
                }
                tokio::select! {
                    _ = stop.changed() => return,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
                continue;
            }
        };
        shared.count_accepted(&listener);
        let pending = shared.pending.admit(shared.config.max_pending_connects);
        accept::spawn_accepted(
            stream,
            peer,
            listener.clone(),
            pending,
            shared.clone(),
            stop.clone(),
        );
    }
}

/// Whether an accept failed for want of a file descriptor: `EMFILE` (this process) or `ENFILE` (the
/// system), 24 and 23 on Linux and the BSDs.
fn out_of_descriptors(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(23 | 24))
}

/// What other threads may do with a running [`MqttServer`]: read its stats (a metrics collector),
/// reload its password and ACL files (a signal handler). From [`MqttServer::handle`].
#[derive(Clone)]
pub struct ListenerHandle {
    shared: Arc<ServerShared>,
}

impl std::fmt::Debug for ListenerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListenerHandle")
            .field("local_addr", &self.shared.local_addr)
            .finish_non_exhaustive()
    }
}

impl ListenerHandle {
    /// See [`MqttServer::stats`].
    pub fn stats(&self) -> MqttStats {
        self.shared.stats()
    }

    /// The stats without the per-client list: cheap at any number of sessions (for a metrics
    /// scrape).
    pub fn totals(&self) -> MqttStats {
        self.shared.totals()
    }

    /// Reads both files and, if both parse, puts them in force: new CONNECTs are checked against the
    /// new password file, and every connection judges its next publish, subscription and delivery by
    /// the new ACL (connections stay open). If either does not parse, nothing changes; the refusal is
    /// counted ([`crate::ReloadStats`]) and returned, naming the file and the line.
    pub fn reload_access(&self, files: &AccessFiles) -> Result<Reloaded, ReloadError> {
        auth::reload(&self.shared.access, files)
    }
}
