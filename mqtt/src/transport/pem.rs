//! Certificates and keys read from PEM files, with errors that name the file and say what is wrong
//! with it ([`TlsFileError`]). Read with `rustls-pki-types`' own PEM reader (`PemObject`), so no
//! separate PEM crate is needed.

use std::path::{Path, PathBuf};

use tokio_rustls::rustls::RootCertStore;
use tokio_rustls::rustls::pki_types::pem::{self, PemObject};
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// A certificate, key or CA file that could not be used, or a TLS setting that cannot work.
///
/// The message names the file and what it was for (`certificate file`, `private key file`, `client CA
/// file`, `CA file`), then why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlsFileError {
    /// A file that cannot be read, or holds no usable PEM item of the kind it is for.
    #[error("{role} {}: {why}", path.display())]
    File {
        /// What the file was for: `certificate file`, `private key file`, `client CA file`, `CA file`.
        role: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// The private key is not the certificate's.
    #[error(
        "the private key file {} does not match the certificate file {}: {why}",
        key.display(),
        cert.display()
    )]
    KeyMismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// rustls's reason.
        why: String,
    },
    /// A setting that cannot work: a user name from client certificates without a client CA, an
    /// empty system CA store.
    #[error("{0}")]
    Setting(String),
}

impl TlsFileError {
    fn file(role: &'static str, path: &Path, why: impl Into<String>) -> Self {
        Self::File {
            role,
            path: path.to_path_buf(),
            why: why.into(),
        }
    }
}

/// Why a PEM file could not be read, in words (the I/O error's own text for an unreadable file).
fn pem_error(error: pem::Error, kind: &str) -> String {
    match error {
        pem::Error::Io(e) => format!("cannot read it: {e}"),
        pem::Error::NoItemsFound => {
            format!("no {kind} in it (expected a PEM `-----BEGIN ...` block)")
        }
        other => format!("not a valid PEM file: {other}"),
    }
}

/// The certificates of `path` (a chain: the first is the end entity's), at least one.
pub(crate) fn certificates(
    role: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsFileError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|items| items.collect::<Result<Vec<_>, _>>())
        .map_err(|e| TlsFileError::file(role, path, pem_error(e, "certificate")))?;
    if certs.is_empty() {
        return Err(TlsFileError::file(
            role,
            path,
            "no certificate in it (expected a `-----BEGIN CERTIFICATE-----` block)",
        ));
    }
    Ok(certs)
}

/// The private key of `path`: PKCS#8, PKCS#1 (RSA) or SEC1 (EC), not encrypted.
pub(crate) fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsFileError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| {
        let why = match e {
            pem::Error::NoItemsFound => "no private key in it (expected an unencrypted PKCS#8, \
                 PKCS#1 or SEC1 PEM block, `-----BEGIN PRIVATE KEY-----` or similar)"
                .to_string(),
            e => pem_error(e, "private key"),
        };
        TlsFileError::file("private key file", path, why)
    })
}

/// The CA certificates of `path` as trust anchors; every certificate must be usable as one.
pub(crate) fn roots(role: &'static str, path: &Path) -> Result<RootCertStore, TlsFileError> {
    let mut store = RootCertStore::empty();
    for (index, cert) in certificates(role, path)?.into_iter().enumerate() {
        store.add(cert).map_err(|e| {
            TlsFileError::file(
                role,
                path,
                format!(
                    "certificate {} is not a usable CA certificate: {e}",
                    index + 1
                ),
            )
        })?;
    }
    Ok(store)
}

/// The system's CA certificates (`rustls-native-certs`: `/etc/ssl/certs` and the like, or
/// `SSL_CERT_FILE`), for a remote with a certificate from a public CA.
pub(crate) fn system_roots() -> Result<RootCertStore, TlsFileError> {
    let found = rustls_native_certs::load_native_certs();
    let mut store = RootCertStore::empty();
    store.add_parsable_certificates(found.certs);
    if store.is_empty() {
        return Err(TlsFileError::Setting(format!(
            "no CA certificate found in the system's store ({} error(s) reading it); give a CA file",
            found.errors.len()
        )));
    }
    Ok(store)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_file_and_what_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let err = certificates("certificate file", &missing).unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("certificate file "), "{text}");
        assert!(
            text.contains("missing.pem") && text.contains("cannot read it"),
            "{text}"
        );

        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not pem at all\n").unwrap();
        let text = certificates("client CA file", &empty)
            .unwrap_err()
            .to_string();
        assert!(
            text.contains("empty.pem") && text.contains("no certificate"),
            "{text}"
        );
        let text = private_key(&empty).unwrap_err().to_string();
        assert!(
            text.contains("private key file") && text.contains("no private key"),
            "{text}"
        );

        let garbled = dir.path().join("garbled.pem");
        std::fs::write(
            &garbled,
            "-----BEGIN CERTIFICATE-----\n!!!not base64!!!\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let text = certificates("certificate file", &garbled)
            .unwrap_err()
            .to_string();
        assert!(
            text.contains("garbled.pem") && text.contains("not a valid PEM"),
            "{text}"
        );
    }

    #[test]
    fn a_certificate_that_is_not_der_is_not_a_usable_ca() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        // Valid PEM and base64, but not an X.509 certificate.
        std::fs::write(
            &path,
            "-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let text = roots("CA file", &path).unwrap_err().to_string();
        assert!(text.contains("certificate 1 is not a usable CA"), "{text}");
    }
}
