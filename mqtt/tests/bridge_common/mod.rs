//! Helpers of the bridge tests: a real Mosquitto of our own on a free loopback port (its config binds
//! 127.0.0.1 only), and waits bounded by [`WAIT`].
//! `scripts/test.sh` installs mosquitto and mosquitto-clients; a missing binary fails these tests.

#![allow(dead_code)] // each test file uses some of them

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use switchyard_mqtt::{Bridge, BridgeConfig, BridgeStats};

/// The longest any one wait of these tests lasts.
pub const WAIT: Duration = Duration::from_secs(10);

/// A Mosquitto of our own, killed (by its pid) when dropped.
pub struct Mosquitto {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

fn binary(name: &str) -> PathBuf {
    ["/usr/sbin", "/usr/bin"]
        .iter()
        .map(|dir| Path::new(dir).join(name))
        .find(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from(name))
}

impl Mosquitto {
    /// Anonymous clients allowed.
    pub fn start(port: u16) -> Self {
        Self::start_with(port, None)
    }

    /// Only `user` with `password` allowed (a password file made with `mosquitto_passwd`).
    pub fn start_with_password(port: u16, user: &str, password: &str) -> Self {
        Self::start_with(port, Some((user, password)))
    }

    /// Only the users of `file` (a password file in Mosquitto's format) allowed. Mosquitto started as
    /// root reads it after dropping to its own user, so a private (0600) file is handed to that user
    /// first, as an administrator would (best effort: as another user, there is nothing to drop).
    pub fn start_with_password_file(port: u16, file: &Path) -> Self {
        Self::start_with_files(port, file, None)
    }

    /// As [`Mosquitto::start_with_password_file`], with topic permissions from `acl` (an ACL file in
    /// Mosquitto's format, handed to its user the same way).
    pub fn start_with_files(port: u16, passwords: &Path, acl: Option<&Path>) -> Self {
        for file in std::iter::once(passwords).chain(acl) {
            let _ = Command::new("chown")
                .arg("mosquitto")
                .arg(file)
                .stderr(Stdio::null())
                .status();
        }
        let dir = tempfile::tempdir().unwrap();
        let mut text = format!(
            "listener {port} 127.0.0.1\npersistence false\nallow_anonymous false\npassword_file {}\n",
            passwords.display()
        );
        if let Some(acl) = acl {
            text.push_str(&format!("acl_file {}\n", acl.display()));
        }
        Self::run(port, dir, text)
    }

    /// A TLS listener only: the server certificate `cert`/`key`, client certificates required and
    /// checked against `ca`, and only `user` with `password` allowed (Mosquitto's `require_certificate`
    /// without `use_identity_as_username`: a client needs both).
    pub fn start_with_tls(
        port: u16,
        (ca, cert, key): (&Path, &Path, &Path),
        login: (&str, &str),
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("passwords");
        let status = Command::new(binary("mosquitto_passwd"))
            .args(["-b", "-c"])
            .arg(&file)
            .args([login.0, login.1])
            .stdout(Stdio::null())
            .status()
            .expect("mosquitto_passwd runs (scripts/test.sh installs mosquitto)");
        assert!(status.success(), "mosquitto_passwd: {status}");
        let text = format!(
            "listener {port} 127.0.0.1\npersistence false\nallow_anonymous false\npassword_file {}\n\
             cafile {}\ncertfile {}\nkeyfile {}\nrequire_certificate true\n",
            file.display(),
            ca.display(),
            cert.display(),
            key.display()
        );
        Self::run(port, dir, text)
    }

    fn start_with(port: u16, login: Option<(&str, &str)>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut text = format!("listener {port} 127.0.0.1\npersistence false\n");
        match login {
            None => text.push_str("allow_anonymous true\n"),
            Some((user, password)) => {
                let file = dir.path().join("passwords");
                let status = Command::new(binary("mosquitto_passwd"))
                    .args(["-b", "-c"])
                    .arg(&file)
                    .args([user, password])
                    .stdout(Stdio::null())
                    .status()
                    .expect("mosquitto_passwd runs (scripts/test.sh installs mosquitto)");
                assert!(status.success(), "mosquitto_passwd: {status}");
                text.push_str(&format!(
                    "allow_anonymous false\npassword_file {}\n",
                    file.display()
                ));
            }
        }
        Self::run(port, dir, text)
    }

    fn run(port: u16, dir: tempfile::TempDir, text: String) -> Self {
        let conf = dir.path().join("mosquitto.conf");
        std::fs::write(&conf, text).unwrap();
        let child = Command::new(binary("mosquitto"))
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto runs (scripts/test.sh installs it)");
        let deadline = Instant::now() + WAIT;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "mosquitto did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Self {
            child,
            port,
            _dir: dir,
        }
    }

    /// Publishes one QoS 1 message with `mosquitto_pub`; whether it was accepted.
    pub fn publish(&self, topic: &str, payload: &str, login: Option<(&str, &str)>) -> bool {
        let mut command = Command::new(binary("mosquitto_pub"));
        command
            .args(["-h", "127.0.0.1", "-q", "1", "-p"])
            .arg(self.port.to_string())
            .args(["-t", topic, "-m", payload]);
        if let Some((user, password)) = login {
            command.args(["-u", user, "-P", password]);
        }
        command.stdout(Stdio::null()).stderr(Stdio::null());
        let mut child = command
            .spawn()
            .expect("mosquitto_pub runs (scripts/test.sh installs mosquitto-clients)");
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status.success();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits (up to [`WAIT`]) until the bridge's stats satisfy `done`.
pub async fn wait_for(bridge: &Bridge, what: &str, done: impl Fn(&BridgeStats) -> bool) {
    let deadline = Instant::now() + WAIT;
    while !done(&bridge.stats()) {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {:?}",
            bridge.stats()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A bridge config to the Mosquitto on `port` with these filters.
pub fn config(port: u16, out: &[&str], inward: &[&str]) -> BridgeConfig {
    let mut config = BridgeConfig::from_url(&format!("mqtt://127.0.0.1:{port}")).unwrap();
    config.out_filters = out.iter().map(|f| f.to_string()).collect();
    config.in_filters = inward.iter().map(|f| f.to_string()).collect();
    config
}
