//! How an endpoint is set up: where it listens, who may send commands, and its limits.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::error::ServeError;
use crate::sections::{Section, StatsSection, check_key};

/// The port the endpoint listens on when none is given. Chosen to sit beside the usual exporter
/// ports (9090-9500) without taking a well-known one; pass another with [`ServeOptions::addr`].
pub const DEFAULT_PORT: u16 = 9475;

/// The address the endpoint listens on when none is given: loopback only.
pub const DEFAULT_ADDR: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), DEFAULT_PORT);

/// Who may send commands (publish, taps, policy changes).
#[derive(Clone, Default, PartialEq, Eq)]
pub enum Access {
    /// No commands: each gets `403`. The default.
    #[default]
    ReadOnly,
    /// Commands with `Authorization: Bearer <token>`; without it, or with another token, `401`.
    Token(String),
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::ReadOnly => f.write_str("ReadOnly"),
            Self::Token(_) => f.write_str("Token(<hidden>)"),
        }
    }
}

/// Options of [`crate::serve`]. `ServeOptions::default()` listens on `127.0.0.1:9475`, read-only.
///
/// ```
/// use switchyard_observe::ServeOptions;
///
/// let options = ServeOptions::default()
///     .addr("127.0.0.1:0".parse().unwrap()) // any free port, as tests do
///     .token("s3cret")                      // commands on, with this bearer token
///     .metrics_subscription_cap(200);
/// assert_eq!(options.metrics_subscription_cap, 200);
/// ```
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Where to listen. Anything but a loopback address needs [`ServeOptions::allow_non_loopback`].
    pub addr: SocketAddr,
    /// Whether `addr` may be a non-loopback address (it exposes the broker's counters, and with a
    /// token its commands, to the network).
    pub allow_non_loopback: bool,
    /// Who may send commands.
    pub access: Access,
    /// Connections served at once; further ones get `503` and are closed.
    pub max_connections: usize,
    /// Connections that have not sent their first request yet, at most: one more closes the oldest
    /// of them, so idle sockets cannot keep real requests out.
    pub max_pending_connections: usize,
    /// How long a new connection may take to send its first request's headers; then it is closed.
    pub first_request_timeout: Duration,
    /// The largest request body accepted; larger ones get `413`.
    pub max_body_bytes: usize,
    /// How long a client may take to send a request's headers, and how long an idle keep-alive
    /// connection stays open; then the connection is closed.
    pub header_timeout: Duration,
    /// How long a client may take to send a request's body; then `408`.
    pub body_timeout: Duration,
    /// How long a command may take once its body has arrived. A `POST /v1/publish` gives the broker
    /// this deadline ([`switchyard::PublishOptions::deadline`]): a message still waiting for room in a
    /// full `block` queue then gives up (dropped as `timeout`), and the publish answers `504`, saying
    /// how many of its messages were published, and publishes no more; taps may not ask for a longer
    /// `block` wait.
    pub command_timeout: Duration,
    /// Subscriptions whose per-subscription series `/metrics` shows (those with the most drops, then
    /// the deepest queues); the rest are counted in `switchyard_subscription_series_omitted`.
    pub metrics_subscription_cap: usize,
    /// Taps open at once; further `POST /v1/taps` get `429`.
    pub max_taps: usize,
    /// The largest capacity a tap may ask for.
    pub max_tap_capacity: usize,
    /// What the service adds beside the broker's counters in `GET /v1/stats` and `GET /metrics`
    /// ([`ServeOptions::section`]).
    pub sections: Vec<Section>,
}

/// Default [`ServeOptions::metrics_subscription_cap`]: enough to show every subscription of a
/// typical service, few enough that a scrape stays small at 100k subscriptions.
pub const DEFAULT_METRICS_SUBSCRIPTION_CAP: usize = 1000;

/// Default [`ServeOptions::command_timeout`]: long enough for a publish of
/// [`MAX_PUBLISH_COUNT`](crate::MAX_PUBLISH_COUNT) messages, short enough that a client (and `curl -m`)
/// gets an answer.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(5);

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            addr: DEFAULT_ADDR,
            allow_non_loopback: false,
            access: Access::ReadOnly,
            max_connections: 64,
            max_pending_connections: 16,
            first_request_timeout: Duration::from_secs(2),
            max_body_bytes: 1 << 20,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            command_timeout: DEFAULT_COMMAND_TIMEOUT,
            metrics_subscription_cap: DEFAULT_METRICS_SUBSCRIPTION_CAP,
            max_taps: 64,
            max_tap_capacity: 65_536,
            sections: Vec::new(),
        }
    }
}

impl ServeOptions {
    /// Read-only on `127.0.0.1:9475`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Listens on `addr` (a loopback address unless [`ServeOptions::allow_non_loopback`]).
    pub fn addr(mut self, addr: SocketAddr) -> Self {
        self.addr = addr;
        self
    }

    /// Allows a non-loopback [`ServeOptions::addr`].
    pub fn allow_non_loopback(mut self, allow: bool) -> Self {
        self.allow_non_loopback = allow;
        self
    }

    /// Turns commands on, for requests that carry `Authorization: Bearer <token>`.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.access = Access::Token(token.into());
        self
    }

    /// Turns commands on with the token in `path`; creates the file (mode 0600, a fresh random
    /// token) if it does not exist. Returns the options and whether the file was created.
    pub fn token_file(self, path: impl AsRef<Path>) -> Result<(Self, bool), ServeError> {
        let (token, created) = load_or_create_token(path.as_ref())?;
        Ok((self.token(token), created))
    }

    /// Sets [`ServeOptions::metrics_subscription_cap`].
    pub fn metrics_subscription_cap(mut self, cap: usize) -> Self {
        self.metrics_subscription_cap = cap;
        self
    }

    /// Sets [`ServeOptions::max_connections`] (at least 1).
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = n.max(1);
        self
    }

    /// Sets [`ServeOptions::max_body_bytes`].
    pub fn max_body_bytes(mut self, n: usize) -> Self {
        self.max_body_bytes = n;
        self
    }

    /// Sets [`ServeOptions::header_timeout`], [`ServeOptions::body_timeout`] and
    /// [`ServeOptions::command_timeout`].
    pub fn timeouts(mut self, timeout: Duration) -> Self {
        self.header_timeout = timeout;
        self.body_timeout = timeout;
        self.command_timeout = timeout;
        self
    }

    /// Sets [`ServeOptions::command_timeout`].
    pub fn command_timeout(mut self, timeout: Duration) -> Self {
        self.command_timeout = timeout;
        self
    }

    /// Adds `source` (a [`StatsSection`], or a closure returning JSON) to the endpoint: its value under
    /// `key` at the top level of `GET /v1/stats`, and its series in `GET /metrics`. `switchyard serve`
    /// adds its MQTT listener (`mqtt`) and bridges (`bridges`) this way.
    ///
    /// Fails when `key` is empty, names a field of the snapshot or of the endpoint's additions
    /// (`totals`, `selection`, ...), or was added before.
    pub fn section(
        mut self,
        key: impl Into<String>,
        source: impl StatsSection,
    ) -> Result<Self, ServeError> {
        let key = key.into();
        check_key(&key, &self.sections)?;
        self.sections.push(Section {
            key,
            source: Arc::new(source),
        });
        Ok(self)
    }

    pub(crate) fn check(&self) -> Result<(), ServeError> {
        for (i, section) in self.sections.iter().enumerate() {
            check_key(&section.key, &self.sections[..i])?;
        }
        if !self.addr.ip().is_loopback() && !self.allow_non_loopback {
            return Err(ServeError::NonLoopback(self.addr));
        }
        if let Access::Token(t) = &self.access
            && t.trim().is_empty()
        {
            return Err(ServeError::EmptyToken);
        }
        Ok(())
    }
}

/// Reads the token in `path` (surrounding white space ignored), or creates the file with a fresh
/// 256-bit token, hex encoded, readable by its owner only. Returns the token and whether it was created.
///
/// An existing file must be private, as ssh wants a private key: a regular file (not a symbolic link),
/// owned by this process's user, neither readable nor writable by group or others (`chmod 600 PATH`);
/// otherwise it is refused with an error that names the fix.
pub fn load_or_create_token(path: &Path) -> Result<(String, bool), ServeError> {
    if let Some(token) = read_private(path)? {
        return Ok((token, false));
    }
    let err = |source| ServeError::TokenFile {
        path: path.to_path_buf(),
        source,
    };
    let token = random_token().map_err(err)?;
    write_private(path, &format!("{token}\n")).map_err(err)?;
    Ok((token, true))
}

/// Reads the token a client sends from `path` (white space trimmed); the file must not be empty, and
/// must be private as [`load_or_create_token`] says.
pub fn read_token_file(path: &Path) -> Result<String, ServeError> {
    read_private(path)?.ok_or_else(|| ServeError::TokenFile {
        path: path.to_path_buf(),
        source: std::io::Error::from(std::io::ErrorKind::NotFound),
    })
}

/// The token in the private file `path`, or `None` if there is no such file.
fn read_private(path: &Path) -> Result<Option<String>, ServeError> {
    use std::io::Read;
    let err = |source| ServeError::TokenFile {
        path: path.to_path_buf(),
        source,
    };
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => {
            return Err(ServeError::TokenFileSymlink(path.to_path_buf()));
        }
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(err(e)),
    }
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // Not followed if a link was put in its place since the check above.
        options.custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32);
    }
    let mut file = options.open(path).map_err(err)?;
    let meta = file.metadata().map_err(err)?;
    if !meta.is_file() {
        return Err(ServeError::TokenFileNotRegular(path.to_path_buf()));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let uid = rustix::process::geteuid().as_raw();
        if meta.uid() != uid {
            return Err(ServeError::TokenFileOwner {
                path: path.to_path_buf(),
                owner: meta.uid(),
                uid,
            });
        }
        if meta.mode() & 0o077 != 0 {
            return Err(ServeError::TokenFileNotPrivate {
                path: path.to_path_buf(),
                mode: meta.mode() & 0o7777,
            });
        }
    }
    let mut text = String::new();
    file.read_to_string(&mut text).map_err(err)?;
    let token = text.trim();
    if token.is_empty() {
        return Err(ServeError::EmptyTokenFile(path.to_path_buf()));
    }
    Ok(Some(token.to_string()))
}

/// 32 bytes from the operating system's random source, as 64 hex digits.
fn random_token() -> std::io::Result<String> {
    use std::io::Read;
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Creates `path` (it must not exist) readable and writable by its owner only, and writes `text`.
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}
