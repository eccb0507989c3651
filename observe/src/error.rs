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
    /// The token file is a symbolic link: refused, since the file it points to need not be private.
    #[error(
        "token file {} is a symbolic link; give the path of the file itself (a private file: \
         `chmod 600 FILE`)",
        .0.display()
    )]
    TokenFileSymlink(PathBuf),
    /// The token file is not a regular file.
    #[error("token file {} is not a regular file", .0.display())]
    TokenFileNotRegular(PathBuf),
    /// Others than its owner may read or write the token file.
    #[error(
        "token file {} has mode {mode:04o}: others than its owner can read or write it, so anyone on \
         this machine could take the token; run `chmod 600 {}`",
        path.display(),
        path.display()
    )]
    TokenFileNotPrivate {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The token file belongs to another user.
    #[error(
        "token file {} belongs to user id {owner}, not to this process's user ({uid}): that user could \
         change the token; use a file of your own (`chmod 600 {}`)",
        path.display(),
        path.display()
    )]
    TokenFileOwner {
        /// The file.
        path: PathBuf,
        /// Its owner's user id.
        owner: u32,
        /// This process's effective user id.
        uid: u32,
    },
    /// A section ([`crate::ServeOptions::section`]) whose key cannot be used.
    #[error("cannot add the stats section `{key}`: {why}")]
    SectionKey {
        /// The key.
        key: String,
        /// Why not.
        why: String,
    },
    /// The token file holds no token.
    #[error("token file {} is empty", .0.display())]
    EmptyTokenFile(PathBuf),
}
