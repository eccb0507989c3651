//! [`MqttServer`]: the TCP listener, one task per connection, and the `$SYS` publisher.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use switchyard::Broker;
use tokio::net::{TcpListener, ToSocketAddrs};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::auth::{self, AccessFiles, ReloadError, Reloaded};
use crate::config::{ConfigError, MqttConfig};
use crate::connection;
use crate::listener_stats::{MqttStats, ServerCounters};
use crate::pending::PendingConnects;
use crate::session::SessionRegistry;
use crate::shared::ServerShared;
use crate::sys;

/// Why [`MqttServer::bind`] failed.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    /// The configuration was refused.
    #[error("invalid MQTT configuration: {0}")]
    Config(#[from] ConfigError),
    /// The address could not be bound.
    #[error("cannot listen for MQTT: {0}")]
    Io(#[from] io::Error),
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
    /// Listens on `addr` (port 0 picks a free port; see [`MqttServer::local_addr`]) and serves
    /// `broker` until dropped. Must be called inside a tokio runtime.
    pub async fn bind(
        addr: impl ToSocketAddrs,
        broker: Broker,
        config: MqttConfig,
    ) -> Result<Self, BindError> {
        config.validate()?;
        let listener = TcpListener::bind(addr).await?;
        let shared = Arc::new(ServerShared {
            broker,
            counters: ServerCounters::default(),
            sessions: SessionRegistry::default(),
            groups: Default::default(),
            pending: PendingConnects::default(),
            next_auto_id: AtomicU64::new(1),
            local_addr: listener.local_addr()?,
            failure_delays: Default::default(),
            access: auth::Access::new(auth::rules(
                config.password_file.clone(),
                config.acl_file.clone(),
            )),
            config,
        });
        let (shutdown, stop) = watch::channel(false);
        let mut tasks = vec![tokio::spawn(accept_loop(
            listener,
            shared.clone(),
            stop.clone(),
        ))];
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

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr
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
    listener: TcpListener,
    shared: Arc<ServerShared>,
    mut stop: watch::Receiver<bool>,
) {
    let mut backoff = ACCEPT_BACKOFF_MIN;
    loop {
        let accepted = tokio::select! {
            _ = stop.changed() => return,
            accepted = listener.accept() => accepted,
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
        shared.counters.accepted.fetch_add(1, Ordering::Relaxed);
        shared.counters.open.fetch_add(1, Ordering::Relaxed);
        let pending = shared.pending.admit(shared.config.max_pending_connects);
        tokio::spawn(connection::serve(
            stream,
            peer,
            pending,
            shared.clone(),
            stop.clone(),
        ));
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
