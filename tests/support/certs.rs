//! Certificates for TLS tests, made by the `openssl` command line (`scripts/test.sh` installs it) the
//! way the README shows: a CA, a server certificate for `localhost` and `127.0.0.1` signed by it,
//! client certificates signed by it (one with a common name, one without), and a client certificate
//! from another CA. Elliptic-curve P-256 keys, valid for two days. Shared by the test crates of the
//! workspace (each includes this file with `#[path]`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The files [`TestCerts::make`] wrote.
pub struct TestCerts {
    /// The CA's certificate: `--cafile` for clients, `--tls-client-ca` for the server.
    pub ca: PathBuf,
    /// The server's certificate (`subjectAltName` `localhost`, `127.0.0.1`) and key.
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    /// A client certificate with common name [`CLIENT_CN`], and its key.
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    /// A client certificate signed by the CA but with no common name, and its key.
    pub nameless_cert: PathBuf,
    pub nameless_key: PathBuf,
    /// A client certificate (common name [`CLIENT_CN`]) from another CA, and its key.
    pub rogue_cert: PathBuf,
    pub rogue_key: PathBuf,
}

/// The common name of [`TestCerts::client_cert`].
pub const CLIENT_CN: &str = "sensor-1";

/// Runs `openssl ARGS` in `dir`; panics with its output if it fails.
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("openssl runs (scripts/test.sh installs it)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A self-signed CA named `name`: `name.pem`, `name.key`.
fn ca(dir: &Path, name: &str) {
    let (pem, key, subject) = (
        format!("{name}.pem"),
        format!("{name}.key"),
        format!("/CN=Test {name}"),
    );
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &pem,
            "-days",
            "2",
            "-subj",
            &subject,
        ],
    );
}

/// A certificate `name.pem` with key `name.key`, for `subject`, signed by CA `ca`, with the
/// extensions `extensions` (a v3 certificate: webpki refuses v1).
fn leaf(dir: &Path, name: &str, subject: &str, ca: &str, extensions: &str) {
    let (pem, key, csr, ext) = (
        format!("{name}.pem"),
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.ext"),
    );
    std::fs::write(dir.join(&ext), format!("{extensions}\n")).unwrap();
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            subject,
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &format!("{ca}.pem"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-out",
            &pem,
            "-days",
            "2",
            "-extfile",
            &ext,
        ],
    );
}

impl TestCerts {
    /// Makes every certificate in `dir`, readable by other users (a Mosquitto started as root may
    /// read them as its own user).
    pub fn make(dir: &Path) -> Self {
        ca(dir, "ca");
        ca(dir, "rogue-ca");
        leaf(
            dir,
            "server",
            "/CN=localhost",
            "ca",
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth",
        );
        let client_subject = format!("/CN={CLIENT_CN}");
        leaf(
            dir,
            "client",
            &client_subject,
            "ca",
            "extendedKeyUsage=clientAuth",
        );
        leaf(
            dir,
            "nameless",
            "/O=No Name",
            "ca",
            "extendedKeyUsage=clientAuth",
        );
        leaf(
            dir,
            "rogue",
            &client_subject,
            "rogue-ca",
            "extendedKeyUsage=clientAuth",
        );
        make_readable(dir);
        let file = |name: &str| dir.join(name);
        Self {
            ca: file("ca.pem"),
            server_cert: file("server.pem"),
            server_key: file("server.key"),
            client_cert: file("client.pem"),
            client_key: file("client.key"),
            nameless_cert: file("nameless.pem"),
            nameless_key: file("nameless.key"),
            rogue_cert: file("rogue.pem"),
            rogue_key: file("rogue.key"),
        }
    }
}

/// `dir` and its files readable (and the directory searchable) by every user.
pub fn make_readable(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
}
