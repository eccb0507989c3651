//! [`ServeError`]: why the endpoint could not start.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Why the endpoint could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A non-loopback address without [`crate::ServeOptions::allow_non_loopback`].
    #[error(
        "refusing to listen on {0}: it is not a loopback address; the endpoint exposes the broker's \
         counters (and, with a token, its commands), so listening beyond this machine must be asked \
         for explicitly (ServeOptions::allow_non_loopback)"
    )]
    NonLoopback(SocketAddr),
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The server thread or its runtime could not start.
    #[error("cannot start the endpoint's thread: {0}")]
    Start(std::io::Error),
    /// An empty token was given.
    #[error("the command token is empty")]
    EmptyToken,
    /// The token file could not be read or created.
    #[error("token file {}: {source}", path.display())]
    TokenFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The token file holds no token.
    #[error("token file {} is empty", .0.display())]
    EmptyTokenFile(PathBuf),
}
