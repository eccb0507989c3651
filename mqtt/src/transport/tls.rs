//! TLS with rustls (the `ring` provider; TLS 1.2 and 1.3): the listener's side ([`TlsServer`]: a
//! certificate and key, optionally a CA whose client certificates it requires) and the client's side
//! of a bridge or a load client ([`TlsClientFiles`]: the CA to trust, optionally a certificate of our
//! own).
//!
//! # Client certificates
//! With a client CA, the handshake requires a certificate that CA signed: a client without one, or
//! with another CA's, fails the handshake (counted per listener as a TLS handshake failure, closed as
//! `handshake_failed`). With [`TlsServerFiles::identity_as_user_name`] (Mosquitto's
//! `use_identity_as_username`) the certificate's subject common name (CN) is the client's user name:
//! whatever user name the CONNECT carries is replaced by it, and the password file is not consulted
//! for it, the certificate being the proof of who it is. A certificate without a CN is then refused
//! with CONNACK 5 (not authorized).

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::client::ClientConfig;
use tokio_rustls::rustls::crypto::{CryptoProvider, ring};
use tokio_rustls::rustls::pki_types::CertificateDer;
use tokio_rustls::rustls::server::{ServerConfig, WebPkiClientVerifier};
use tokio_rustls::server::TlsStream;
use x509_cert::der::Decode;

use super::CertificateLogin;
use super::pem::{self, TlsFileError};

/// The one crypto provider, so that the choice is made here and not by whichever crate enables a
/// rustls feature.
///
/// `ring`: it builds with a C compiler in seconds. rustls 0.23.48 deprecated its default set for
/// lacking post-quantum key exchange, which rustls's other provider (`aws-lc-rs`) has; that one
/// builds AWS-LC from C sources, minutes on a small machine. Mosquitto 2.0 with OpenSSL 3.0, what
/// MQTT users run today, has no post-quantum key exchange either.
#[allow(deprecated)]
fn provider() -> Arc<CryptoProvider> {
    Arc::new(ring::default_provider())
}

/// Where a TLS listener's certificate, key and client CA are (`switchyard serve --tls-cert
/// --tls-key --tls-client-ca`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsServerFiles {
    /// The server's certificate chain, PEM, its own certificate first.
    pub cert: PathBuf,
    /// The certificate's private key, PEM (PKCS#8, PKCS#1 or SEC1, unencrypted).
    pub key: PathBuf,
    /// With it: every client must present a certificate signed by a CA of this PEM file.
    pub client_ca: Option<PathBuf>,
    /// Whether a client certificate's common name (CN) is the client's user name (Mosquitto's
    /// `use_identity_as_username`; needs `client_ca`).
    pub identity_as_user_name: bool,
}

/// A TLS listener's settings, read from [`TlsServerFiles`] once, shared by every connection.
///
/// # Examples
/// ```no_run
/// use switchyard_mqtt::{TlsServer, TlsServerFiles};
///
/// let tls = TlsServer::from_files(&TlsServerFiles {
///     cert: "server.pem".into(),
///     key: "server.key".into(),
///     ..TlsServerFiles::default()
/// })
/// .unwrap();
/// assert!(!tls.requires_client_certificates());
/// ```
#[derive(Clone)]
pub struct TlsServer {
    acceptor: TlsAcceptor,
    client_certificates: bool,
    identity_as_user_name: bool,
}

impl std::fmt::Debug for TlsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsServer")
            .field("client_certificates", &self.client_certificates)
            .field("identity_as_user_name", &self.identity_as_user_name)
            .finish_non_exhaustive()
    }
}

impl TlsServer {
    /// Reads the certificate, the key and the client CA; the error names the file at fault.
    pub fn from_files(files: &TlsServerFiles) -> Result<Self, TlsFileError> {
        if files.identity_as_user_name && files.client_ca.is_none() {
            return Err(TlsFileError::Setting(
                "taking the user name from the client certificate needs a client CA file to \
                 check the certificates with"
                    .into(),
            ));
        }
        let certs = pem::certificates("certificate file", &files.cert)?;
        let key = pem::private_key(&files.key)?;
        let provider = provider();
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsFileError::Setting(e.to_string()))?;
        let builder = match &files.client_ca {
            Some(path) => {
                let roots = pem::roots("client CA file", path)?;
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                        .build()
                        .map_err(|e| TlsFileError::File {
                            role: "client CA file",
                            path: path.clone(),
                            why: e.to_string(),
                        })?;
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let config =
            builder
                .with_single_cert(certs, key)
                .map_err(|e| TlsFileError::KeyMismatch {
                    cert: files.cert.clone(),
                    key: files.key.clone(),
                    why: e.to_string(),
                })?;
        Ok(Self {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            client_certificates: files.client_ca.is_some(),
            identity_as_user_name: files.identity_as_user_name,
        })
    }

    /// Whether every client must present a certificate signed by the client CA.
    pub fn requires_client_certificates(&self) -> bool {
        self.client_certificates
    }

    /// Whether a client certificate's common name is the client's user name.
    pub fn identity_as_user_name(&self) -> bool {
        self.identity_as_user_name
    }

    /// The server's side of the handshake on `tcp`, then who the client certificate says the client
    /// is (when the listener takes user names from certificates).
    pub(crate) async fn accept(
        &self,
        tcp: TcpStream,
    ) -> io::Result<(TlsStream<TcpStream>, CertificateLogin)> {
        let stream = self.acceptor.accept(tcp).await?;
        let login = if self.identity_as_user_name {
            let (_, connection) = stream.get_ref();
            match connection
                .peer_certificates()
                .and_then(|chain| chain.first())
                .and_then(common_name)
            {
                Some(name) => CertificateLogin::CommonName(name),
                None => CertificateLogin::NoCommonName,
            }
        } else {
            CertificateLogin::NotUsed
        };
        Ok((stream, login))
    }
}

/// The subject common name (CN) of a DER certificate, if it has one that is text.
pub(crate) fn common_name(cert: &CertificateDer<'_>) -> Option<String> {
    let cert = x509_cert::Certificate::from_der(cert.as_ref()).ok()?;
    let name = cert.tbs_certificate().subject().common_name().ok()??;
    Some(String::from(name)).filter(|n| !n.is_empty())
}

/// How a client (a bridge, the load generator) checks a TLS server and proves who it is.
///
/// # Examples
/// ```no_run
/// use switchyard_mqtt::TlsClientFiles;
///
/// let files = TlsClientFiles {
///     ca: Some("ca.pem".into()),
///     cert_and_key: Some(("client.pem".into(), "client.key".into())),
/// };
/// let transport = files.transport().unwrap(); // for rumqttc::MqttOptions::set_transport
/// # drop(transport);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsClientFiles {
    /// The CA certificates (PEM) the server's certificate must chain to; `None`: the system's.
    pub ca: Option<PathBuf>,
    /// A client certificate (PEM chain) and its private key, for servers that require one.
    pub cert_and_key: Option<(PathBuf, PathBuf)>,
}

impl TlsClientFiles {
    /// A `rumqttc` transport over TLS with these files: the server is checked against the CA (and
    /// its certificate must name the host connected to), and the client certificate, if any, is
    /// offered.
    pub fn transport(&self) -> Result<rumqttc::Transport, TlsFileError> {
        let config = self.client_config()?;
        Ok(rumqttc::Transport::tls_with_config(
            rumqttc::TlsConfiguration::Rustls(config),
        ))
    }

    fn client_config(&self) -> Result<Arc<ClientConfig>, TlsFileError> {
        let roots = match &self.ca {
            Some(path) => pem::roots("CA file", path)?,
            None => pem::system_roots()?,
        };
        let builder = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsFileError::Setting(e.to_string()))?
            .with_root_certificates(roots);
        let config = match &self.cert_and_key {
            Some((cert, key)) => {
                let certs = pem::certificates("certificate file", cert)?;
                let private_key = pem::private_key(key)?;
                builder
                    .with_client_auth_cert(certs, private_key)
                    .map_err(|e| TlsFileError::KeyMismatch {
                        cert: cert.clone(),
                        key: key.clone(),
                        why: e.to_string(),
                    })?
            }
            None => builder.with_no_client_auth(),
        };
        Ok(Arc::new(config))
    }
}
