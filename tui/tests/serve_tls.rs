//! `switchyard serve` over TLS and WebSockets, with real clients against the real binary:
//! `mosquitto_pub`/`mosquitto_sub` with `--cafile` and with a client certificate, paho-mqtt over TLS,
//! WebSockets and WebSockets over TLS (`tests/clients/transports.py`), a bridge over `mqtts://` to a
//! Mosquitto that requires TLS, a client certificate and a password, and the options refused with
//! exit 2 naming the file at fault. Certificates are made by `openssl` (`tests/support/certs.rs`);
//! loopback only; every wait bounded. `scripts/test.sh` installs mosquitto, mosquitto-clients,
//! paho-mqtt and openssl.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{Killed, free_port, switchyard, wait_or_kill};

#[path = "../../mqtt/tests/bridge_common/mod.rs"]
mod bridge_common;
#[allow(dead_code)] // not every certificate is used here
#[path = "../../tests/support/certs.rs"]
mod certs;

use bridge_common::Mosquitto;
use certs::TestCerts;

const WAIT: Duration = Duration::from_secs(20);

/// A running `switchyard serve`, the port of each listener it printed, and its `--json` file.
struct Served {
    child: Killed,
    json: PathBuf,
    /// (what the line says the listener is: `MQTT`, `MQTT over TLS`, ..., port).
    ports: Vec<(String, String)>,
}

impl Served {
    /// Starts `switchyard serve ARGS --json DIR/final.json` and reads its `listeners` listener
    /// lines.
    fn start(dir: &Path, args: &[&str], listeners: usize) -> Self {
        let json = dir.join("final.json");
        let mut child = Killed(
            switchyard()
                .arg("serve")
                .args(args)
                .arg("--json")
                .arg(&json)
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let mut stdout = BufReader::new(child.0.stdout.take().unwrap());
        let mut ports = Vec::new();
        for _ in 0..listeners {
            let mut line = String::new();
            stdout.read_line(&mut line).unwrap();
            // `switchyard serve: MQTT over WebSockets on ws://127.0.0.1:PORT/, ...`
            let (what, rest) = line
                .trim_end()
                .strip_prefix("switchyard serve: ")
                .and_then(|l| l.split_once(" on "))
                .unwrap_or_else(|| panic!("a listener line: {line:?}"));
            let address = rest.split([' ', ',']).next().unwrap();
            let port = address.trim_end_matches('/').rsplit(':').next().unwrap();
            ports.push((what.to_string(), port.to_string()));
        }
        // Drained in the background, so that the server never blocks on a full pipe.
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        Self { child, json, ports }
    }

    /// The port of the listener whose line says `what` (`MQTT`, `MQTT over TLS`, ...).
    fn port(&self, what: &str) -> &str {
        &self
            .ports
            .iter()
            .find(|(w, _)| w == what)
            .unwrap_or_else(|| panic!("no {what} listener in {:?}", self.ports))
            .1
    }

    /// Stops it with SIGTERM; its final snapshot's `mqtt` and `bridges`.
    fn stop(mut self) -> serde_json::Value {
        let killed = Command::new("kill")
            .args(["-TERM", &self.child.0.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let status = wait_or_kill(&mut self.child.0, WAIT);
        assert!(status.success(), "{status}");
        serde_json::from_str(&std::fs::read_to_string(&self.json).unwrap()).unwrap()
    }
}

/// Runs a mosquitto client (`mosquitto_pub`, `mosquitto_sub`) against 127.0.0.1:`port`, killed after
/// [`WAIT`].
fn mosquitto(tool: &str, port: &str, args: &[&str]) -> Output {
    let child = spawn_mosquitto(tool, port, args);
    finish(child)
}

fn spawn_mosquitto(tool: &str, port: &str, args: &[&str]) -> Child {
    Command::new(tool)
        .args(["-h", "127.0.0.1", "-p", port])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{tool} runs (scripts/test.sh installs mosquitto-clients): {e}"))
}

fn finish(mut child: Child) -> Output {
    wait_or_kill(&mut child, WAIT);
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The listener of transport `kind` in a final snapshot's `mqtt`.
fn listener<'a>(mqtt: &'a serde_json::Value, kind: &str) -> &'a serde_json::Value {
    mqtt["listeners"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["transport"] == kind)
        .unwrap()
}

/// A password file with `user` and `password`, made by `switchyard passwd -b`.
fn password_file(dir: &Path, user: &str, password: &str) -> PathBuf {
    let file = dir.join("passwords");
    let out = switchyard()
        .args(["passwd", "-c", "-b", path(&file), user, password])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    file
}

#[test]
fn mosquitto_clients_publish_and_subscribe_over_tls_with_the_ca_file() {
    let dir = tempfile::tempdir().unwrap();
    let certs = TestCerts::make(dir.path());
    let endpoint = format!("127.0.0.1:{}", free_port());
    let served = Served::start(
        dir.path(),
        &[
            "--mqtt-tls",
            "127.0.0.1:0",
            "--tls-cert",
            path(&certs.server_cert),
            "--tls-key",
            path(&certs.server_key),
            "--serve",
            &endpoint,
        ],
        1,
    );
    let port = served.port("MQTT over TLS");
    let ca = ["--cafile", path(&certs.ca)];
    // Retained, so that the subscriber started after it gets it at once.
    let published = mosquitto(
        "mosquitto_pub",
        port,
        &[&ca[..], &["-t", "tls/a", "-m", "sealed", "-r", "-q", "1"]].concat(),
    );
    assert!(published.status.success(), "{}", text(&published.stderr));
    let got = mosquitto(
        "mosquitto_sub",
        port,
        &[&ca[..], &["-t", "tls/#", "-C", "1", "-v", "-W", "10"]].concat(),
    );
    assert_eq!(text(&got.stdout), "tls/a sealed\n", "{}", text(&got.stderr));
    // A client that does not speak TLS to the TLS port gets nowhere, and is counted.
    let plain = mosquitto("mosquitto_pub", port, &["-t", "tls/a", "-m", "clear"]);
    assert!(!plain.status.success());
    // The same counts in /metrics, per listener.
    let metrics = switchyard_observe::Client::new(&endpoint)
        .unwrap()
        .metrics()
        .unwrap();
    let series = |name: &str, labels: &[&str]| -> u64 {
        let line = metrics
            .lines()
            .find(|l| l.starts_with(name) && labels.iter().all(|label| l.contains(label)))
            .unwrap_or_else(|| panic!("no {name} {labels:?} in {metrics}"));
        line.rsplit(' ').next().unwrap().parse::<f64>().unwrap() as u64
    };
    let address = format!("address=\"127.0.0.1:{port}\"");
    let tls_listener = ["transport=\"tls\"", &address];
    let failures = "switchyard_mqtt_listener_handshake_failures_total";
    let tls_failures = [&tls_listener[..], &["handshake=\"tls\""]].concat();
    assert_eq!(series(failures, &tls_failures), 1);
    let ws_failures = [&tls_listener[..], &["handshake=\"websocket\""]].concat();
    assert_eq!(series(failures, &ws_failures), 0);
    let accepted = "switchyard_mqtt_listener_connections_accepted_total";
    assert_eq!(series(accepted, &tls_listener), 3);

    let snapshot = served.stop();
    let mqtt = &snapshot["mqtt"];
    let tls = listener(mqtt, "tls");
    assert_eq!(tls["accepted"], 3, "{tls}");
    assert_eq!(tls["tls_handshake_failures"], 1, "{tls}");
    assert_eq!(mqtt["closed_by_reason"]["handshake_failed"], 1, "{mqtt}");
}

#[test]
fn a_client_certificate_is_the_login_on_tls_and_the_password_file_applies_everywhere_else() {
    let dir = tempfile::tempdir().unwrap();
    let certs = TestCerts::make(dir.path());
    let passwords = password_file(dir.path(), "alice", "wonder");
    let served = Served::start(
        dir.path(),
        &[
            "--mqtt",
            "127.0.0.1:0",
            "--mqtt-tls",
            "127.0.0.1:0",
            "--tls-cert",
            path(&certs.server_cert),
            "--tls-key",
            path(&certs.server_key),
            "--tls-client-ca",
            path(&certs.ca),
            "--tls-use-identity-as-username",
            "--mqtt-password-file",
            path(&passwords),
        ],
        2,
    );
    let (tcp, tls) = (served.port("MQTT"), served.port("MQTT over TLS"));
    let with_cert = [
        "--cafile",
        path(&certs.ca),
        "--cert",
        path(&certs.client_cert),
        "--key",
        path(&certs.client_key),
    ];
    let published = mosquitto(
        "mosquitto_pub",
        tls,
        &[
            &with_cert[..],
            &["-t", "certs/a", "-m", "by-cert", "-r", "-q", "1"],
        ]
        .concat(),
    );
    assert!(published.status.success(), "{}", text(&published.stderr));
    let got = mosquitto(
        "mosquitto_sub",
        tls,
        &[
            &with_cert[..],
            &["-t", "certs/#", "-C", "1", "-v", "-W", "10"],
        ]
        .concat(),
    );
    assert_eq!(
        text(&got.stdout),
        "certs/a by-cert\n",
        "{}",
        text(&got.stderr)
    );

    // Without a certificate, or with another CA's, the handshake fails.
    let no_cert = mosquitto(
        "mosquitto_pub",
        tls,
        &["--cafile", path(&certs.ca), "-t", "x", "-m", "x"],
    );
    assert!(!no_cert.status.success());
    let rogue = [
        "--cafile",
        path(&certs.ca),
        "--cert",
        path(&certs.rogue_cert),
        "--key",
        path(&certs.rogue_key),
    ];
    let rogue = mosquitto(
        "mosquitto_pub",
        tls,
        &[&rogue[..], &["-t", "x", "-m", "x"]].concat(),
    );
    assert!(!rogue.status.success());

    // On the TCP listener the password file applies: no user name, no entry; alice gets in.
    let anonymous = mosquitto("mosquitto_pub", tcp, &["-t", "x", "-m", "x", "-q", "1"]);
    assert!(!anonymous.status.success());
    let alice = mosquitto(
        "mosquitto_pub",
        tcp,
        &[
            "-u", "alice", "-P", "wonder", "-t", "x", "-m", "x", "-q", "1",
        ],
    );
    assert!(alice.status.success(), "{}", text(&alice.stderr));

    let snapshot = served.stop();
    let mqtt = &snapshot["mqtt"];
    let auth = &mqtt["auth"];
    assert_eq!(auth["certificate"], 2, "{auth}");
    assert_eq!(auth["accepted"], 1, "{auth}");
    assert_eq!(auth["refused_by_reason"]["no_user_name"], 1, "{auth}");
    let tls_listener = listener(mqtt, "tls");
    assert_eq!(tls_listener["client_certificates"], true);
    assert_eq!(tls_listener["tls_handshake_failures"], 2, "{tls_listener}");
    assert_eq!(listener(mqtt, "tcp")["accepted"], 2);
}

#[test]
fn paho_clients_speak_tls_websockets_and_websockets_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let certs = TestCerts::make(dir.path());
    let passwords = password_file(dir.path(), "paho", "p@ss word");
    let served = Served::start(
        dir.path(),
        &[
            "--mqtt-tls",
            "127.0.0.1:0",
            "--mqtt-ws",
            "127.0.0.1:0",
            "--mqtt-wss",
            "127.0.0.1:0",
            "--tls-cert",
            path(&certs.server_cert),
            "--tls-key",
            path(&certs.server_key),
            "--mqtt-password-file",
            path(&passwords),
        ],
        3,
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/transports.py");
    let mut child = Command::new("python3")
        .arg(&script)
        .arg(&certs.ca)
        .args([
            served.port("MQTT over TLS"),
            served.port("MQTT over WebSockets"),
            served.port("MQTT over WebSockets and TLS"),
            "paho",
            "p@ss word",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs (scripts/test.sh installs paho-mqtt)");
    let status = wait_or_kill(&mut child, Duration::from_secs(60));
    let (mut out, mut err) = (String::new(), String::new());
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(
        status.success(),
        "transports.py failed ({status}):\n{out}\n{err}"
    );
    assert_eq!(
        out.lines().filter(|l| l.starts_with("ok ")).count(),
        11,
        "{out}"
    );

    let snapshot = served.stop();
    let mqtt = &snapshot["mqtt"];
    assert!(
        listener(mqtt, "ws")["accepted"].as_u64().unwrap() >= 2,
        "{mqtt}"
    );
    assert!(
        listener(mqtt, "wss")["accepted"].as_u64().unwrap() >= 2,
        "{mqtt}"
    );
    assert!(
        listener(mqtt, "tls")["accepted"].as_u64().unwrap() >= 1,
        "{mqtt}"
    );
    assert!(
        mqtt["auth"]["refused_by_reason"]["no_user_name"]
            .as_u64()
            .unwrap()
            >= 1,
        "{mqtt}"
    );
    assert_eq!(mqtt["open"], 0, "{mqtt}");
}

#[test]
fn the_bridge_speaks_mqtts_with_a_client_certificate_and_a_password_file() {
    let dir = tempfile::tempdir().unwrap();
    let certs = TestCerts::make(dir.path());
    let port = free_port();
    let _mosquitto = Mosquitto::start_with_tls(
        port,
        (&certs.ca, &certs.server_cert, &certs.server_key),
        ("bridge", "s3cret"),
    );
    let secret = dir.path().join("bridge.password");
    std::fs::write(&secret, "s3cret\n").unwrap();
    let remote = port.to_string();
    let url = format!("mqtts://localhost:{port}");
    let served = Served::start(
        dir.path(),
        &[
            "--mqtt",
            "127.0.0.1:0",
            "--bridge",
            &url,
            "--bridge-cafile",
            path(&certs.ca),
            "--bridge-certfile",
            path(&certs.client_cert),
            "--bridge-keyfile",
            path(&certs.client_key),
            "--bridge-username",
            "bridge",
            "--bridge-password-file",
            path(&secret),
            "--bridge-out",
            "up/#",
            "--bridge-in",
            "down/#",
        ],
        1,
    );
    let local = served.port("MQTT").to_string();
    let at_mosquitto = [
        "--cafile",
        path(&certs.ca),
        "--cert",
        path(&certs.client_cert),
        "--key",
        path(&certs.client_key),
        "-u",
        "bridge",
        "-P",
        "s3cret",
    ];

    // Out: a publish to switchyard reaches a subscriber at Mosquitto. Sent again until it arrives
    // (the bridge and the subscriber connect in their own time), at most for WAIT.
    let sub = spawn_mosquitto(
        "mosquitto_sub",
        &remote,
        &[&at_mosquitto[..], &["-t", "up/#", "-C", "1", "-v"]].concat(),
    );
    let got = until_received(sub, || {
        mosquitto("mosquitto_pub", &local, &["-t", "up/1", "-m", "rising"]);
    });
    assert_eq!(got, "up/1 rising\n");

    // In: a publish to Mosquitto reaches a subscriber at switchyard.
    let sub = spawn_mosquitto("mosquitto_sub", &local, &["-t", "down/#", "-C", "1", "-v"]);
    let got = until_received(sub, || {
        mosquitto(
            "mosquitto_pub",
            &remote,
            &[&at_mosquitto[..], &["-t", "down/1", "-m", "falling"]].concat(),
        );
    });
    assert_eq!(got, "down/1 falling\n");

    let snapshot = served.stop();
    let bridge = &snapshot["bridges"][0];
    assert_eq!(bridge["tls"], true, "{bridge}");
    assert!(bridge["connects"].as_u64().unwrap() >= 1, "{bridge}");
    assert!(bridge["out_forwarded"].as_u64().unwrap() >= 1, "{bridge}");
    assert!(bridge["in_published"].as_u64().unwrap() >= 1, "{bridge}");
}

/// Calls `publish` every 200 ms until `subscriber` (a `mosquitto_sub -C 1`) exits, at most for
/// [`WAIT`]; returns what it printed.
fn until_received(mut subscriber: Child, publish: impl Fn()) -> String {
    let deadline = Instant::now() + WAIT;
    while subscriber.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "nothing arrived within {WAIT:?}");
        publish();
        std::thread::sleep(Duration::from_millis(200));
    }
    text(&finish(subscriber).stdout)
}

#[test]
fn unusable_certificates_and_missing_options_exit_2_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    let certs = TestCerts::make(dir.path());
    let missing = dir.path().join("missing.key");
    let refused = |args: &[&str], expected: &str| {
        let out = switchyard().arg("serve").args(args).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stderr).contains(expected),
            "{args:?}: {}",
            text(&out.stderr)
        );
    };
    let tls = [
        "--mqtt-tls",
        "127.0.0.1:0",
        "--tls-cert",
        path(&certs.server_cert),
        "--tls-key",
    ];
    refused(&[&tls[..], &[path(&missing)]].concat(), "missing.key");
    let bridge_tls = [
        "--mqtt",
        "127.0.0.1:0",
        "--bridge",
        "mqtts://127.0.0.1:1",
        "--bridge-out",
        "a",
    ];
    refused(
        &[&bridge_tls[..], &["--bridge-cafile", path(&missing)]].concat(),
        "missing.key",
    );
    refused(
        &[&tls[..], &[path(&certs.client_key)]].concat(),
        "does not match",
    );
    refused(
        &[
            &tls[..],
            &[
                path(&certs.server_key),
                "--tls-client-ca",
                path(&certs.server_key),
            ],
        ]
        .concat(),
        "client CA file",
    );
    refused(
        &["--mqtt-wss", "127.0.0.1:0"],
        "--tls-cert PEM --tls-key PEM",
    );
    refused(
        &[
            "--mqtt",
            "127.0.0.1:0",
            "--tls-cert",
            path(&certs.server_cert),
        ],
        "--mqtt-tls ADDR",
    );
    // Checked, never bound: a WebSocket listener off loopback needs a password file.
    refused(&["--mqtt-ws", "0.0.0.0:0"], "--mqtt-password-file");
    refused(
        &[
            "--mqtt",
            "127.0.0.1:0",
            "--bridge",
            "mqtt://127.0.0.1:1",
            "--bridge-out",
            "a",
            "--bridge-cafile",
            path(&certs.ca),
        ],
        "mqtts://",
    );
    refused(
        &[
            "--mqtt",
            "127.0.0.1:0",
            "--bridge",
            "mqtts://127.0.0.1:1",
            "--bridge-out",
            "a",
            "--bridge-username",
            "u",
            "--bridge-password-file",
            path(&missing),
        ],
        "missing.key",
    );
}
