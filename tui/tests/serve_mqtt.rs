//! `switchyard serve --mqtt`: prints the bound address, serves real MQTT clients (mosquitto_pub and
//! mosquitto_sub, installed by scripts/test.sh), stops cleanly on SIGTERM with a summary, and refuses
//! bad options with a message naming them.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{Killed, mqtt_address, switchyard, wait_or_kill};

/// `switchyard serve --mqtt 127.0.0.1:0 ARGS --json SNAPSHOT`, with the MQTT host and port it printed.
struct Serving {
    server: Killed,
    stdout: BufReader<std::process::ChildStdout>,
    host: String,
    port: String,
}

impl Serving {
    fn start(args: &[&str], snapshot: &std::path::Path) -> Self {
        let mut server = Killed(
            switchyard()
                .args(["serve", "--mqtt", "127.0.0.1:0"])
                .args(args)
                .arg("--json")
                .arg(snapshot)
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let mut stdout = BufReader::new(server.0.stdout.take().unwrap());
        let mut first = String::new();
        stdout.read_line(&mut first).unwrap();
        let addr = mqtt_address(&first);
        let (host, port) = addr.rsplit_once(':').unwrap();
        Self {
            host: host.to_string(),
            port: port.to_string(),
            server,
            stdout,
        }
    }

    /// SIGTERM, and a clean exit within 10 s (the final snapshot is written by then).
    fn stop(&mut self) {
        let killed = Command::new("kill")
            .args(["-TERM", &self.server.0.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let status = wait_or_kill(&mut self.server.0, Duration::from_secs(10));
        assert!(status.success(), "{status}");
    }
}

#[test]
fn serve_prints_its_address_serves_mosquitto_clients_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let snapshot_path = dir.path().join("final.json");
    let mut serving = Serving::start(&["--sys-interval", "100ms"], &snapshot_path);
    let (host, port) = (serving.host.as_str(), serving.port.as_str());

    // A $SYS round arrives every 100 ms, so this returns without a race with a publish.
    let sys = Command::new("mosquitto_sub")
        .args([
            "-h",
            host,
            "-p",
            port,
            "-t",
            "$SYS/switchyard/clients/connected",
            "-C",
            "2",
            "-W",
            "10",
        ])
        .output()
        .expect("mosquitto_sub runs (scripts/test.sh installs mosquitto-clients)");
    assert!(sys.status.success(), "{sys:?}");
    let published = Command::new("mosquitto_pub")
        .args([
            "-h", host, "-p", port, "-t", "serve/t", "-m", "hello", "-q", "1",
        ])
        .status()
        .unwrap();
    assert!(published.success());

    serving.stop();
    let mut rest = String::new();
    serving.stdout.read_to_string(&mut rest).unwrap();
    assert!(
        rest.contains("switchyard serve: stopped; 2 connections accepted"),
        "{rest}"
    );

    // The final snapshot: the v1 schema with the `mqtt` and `bridges` additions, balanced.
    let snapshot: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&snapshot_path).unwrap()).unwrap();
    assert_eq!(snapshot["schema"], "switchyard.stats/v1");
    let totals = &snapshot["totals"];
    assert!(totals["published"].as_u64().unwrap() >= 1);
    assert_eq!(
        totals["matched"].as_u64(),
        Some(
            totals["delivered"].as_u64().unwrap()
                + totals["dropped"].as_u64().unwrap()
                + totals["depth"].as_u64().unwrap()
        )
    );
    assert_eq!(snapshot["mqtt"]["accepted"], 2);
    assert_eq!(snapshot["mqtt"]["open"], 0);
    // Both clients sent DISCONNECT; one that the server had not finished closing when SIGTERM came
    // is counted `shutdown` instead.
    let closed = &snapshot["mqtt"]["closed_by_reason"];
    assert_eq!(
        closed["disconnect"].as_u64().unwrap() + closed["shutdown"].as_u64().unwrap(),
        2,
        "{closed}"
    );
    assert_eq!(snapshot["bridges"], serde_json::json!([]));
}

/// Issue 18, row 5, through the binary with real clients: a persistent `mosquitto_sub` session that
/// went away keeps no more than `--mqtt-queue-bytes` of 1 KiB messages; the rest are counted as
/// `byte_limit`, in the final snapshot's client and in the balanced books.
#[test]
fn serve_bounds_what_an_away_client_keeps_by_mqtt_queue_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let snapshot_path = dir.path().join("final.json");
    let mut serving = Serving::start(&["--mqtt-queue-bytes", "10KiB"], &snapshot_path);
    let (host, port) = (serving.host.as_str(), serving.port.as_str());
    // -c -i: a persistent session; -E: leave once subscribed.
    let subscribed = Command::new("mosquitto_sub")
        .args([
            "-h", host, "-p", port, "-c", "-i", "slow", "-q", "1", "-t", "big/#", "-E",
        ])
        .status()
        .expect("mosquitto_sub runs (scripts/test.sh installs mosquitto-clients)");
    assert!(subscribed.success());
    let kib = "x".repeat(1024);
    let published = Command::new("mosquitto_pub")
        .args([
            "-h", host, "-p", port, "-t", "big/t", "-m", &kib, "-q", "1", "--repeat", "25",
        ])
        .status()
        .unwrap();
    assert!(published.success());

    serving.stop();
    let snapshot: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&snapshot_path).unwrap()).unwrap();
    let clients = snapshot["mqtt"]["clients"].as_array().unwrap();
    let slow = clients
        .iter()
        .find(|c| c["client_id"] == "slow")
        .unwrap_or_else(|| panic!("the persistent session is kept: {clients:?}"));
    assert_eq!(slow["max_queued_bytes"], 10 * 1024, "{slow}");
    assert_eq!(
        slow["queued_bytes"],
        10 * 1024,
        "filled to the bound: {slow}"
    );
    assert_eq!(slow["dropped_by_reason"]["byte_limit"], 15, "{slow}");
    let totals = &snapshot["totals"];
    assert_eq!(
        totals["matched"].as_u64(),
        Some(
            totals["delivered"].as_u64().unwrap()
                + totals["dropped"].as_u64().unwrap()
                + totals["depth"].as_u64().unwrap()
                + totals["in_flight"].as_u64().unwrap_or(0)
        ),
        "{totals}"
    );
}

#[test]
fn serve_refuses_bad_options_naming_them() {
    for (args, expected) in [
        (vec!["serve"], "--mqtt <ADDR>"),
        (
            vec!["serve", "--mqtt", "localhost"],
            "invalid value 'localhost' for '--mqtt <ADDR>'",
        ),
        (
            vec!["serve", "--mqtt", "127.0.0.1:0", "--mqtt-queue", "0"],
            "--mqtt-queue",
        ),
        (
            vec![
                "serve",
                "--mqtt",
                "127.0.0.1:0",
                "--mqtt-queue-bytes",
                "16MB",
            ],
            "unknown unit `MB`",
        ),
        (
            vec!["serve", "--mqtt", "127.0.0.1:0", "--mqtt-policy", "block"],
            "not allowed for MQTT clients",
        ),
        (
            vec!["serve", "--mqtt", "127.0.0.1:0", "--sys-interval", "0s"],
            "zero",
        ),
    ] {
        let out = switchyard().args(&args).output().unwrap();
        assert!(!out.status.success(), "{args:?} should fail");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}

#[test]
fn serve_bridges_a_topic_to_a_real_mosquitto() {
    // Mosquitto of our own on a free loopback port, killed by its pid at the end.
    let port = common::free_port().to_string();
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"),
    )
    .unwrap();
    let _mosquitto = Killed(
        Command::new("/usr/sbin/mosquitto")
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto runs (scripts/test.sh installs it)"),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(format!("127.0.0.1:{port}")).is_err() {
        assert!(
            Instant::now() < deadline,
            "mosquitto did not listen on {port}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let remote = format!("mqtt://127.0.0.1:{port}");
    let mut server = Killed(
        switchyard()
            .args(["serve", "--mqtt", "127.0.0.1:0", "--bridge", &remote])
            .args(["--bridge-out", "sensors/#", "--bridge-in", "commands/#"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut stdout = BufReader::new(server.0.stdout.take().unwrap());
    let mut lines = [String::new(), String::new()];
    for line in &mut lines {
        stdout.read_line(line).unwrap();
    }
    assert!(
        lines[1].contains(&format!("bridging to 127.0.0.1:{port}")),
        "{lines:?}"
    );
    let local = mqtt_address(&lines[0]);
    let (local_host, local_port) = local.rsplit_once(':').unwrap();

    // A reading published to switchyard over MQTT reaches a subscriber of mosquitto. The bridge may
    // still be connecting: publish every 200 ms until the subscriber has one (bounded by -W 10).
    let watcher = Command::new("mosquitto_sub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-t",
            "sensors/#",
            "-C",
            "1",
            "-W",
            "10",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut watcher = watcher;
    let deadline = Instant::now() + Duration::from_secs(10);
    while watcher.try_wait().unwrap().is_none() && Instant::now() < deadline {
        Command::new("mosquitto_pub")
            .args([
                "-h",
                local_host,
                "-p",
                local_port,
                "-t",
                "sensors/t",
                "-m",
                "21.5",
            ])
            .status()
            .unwrap();
        std::thread::sleep(Duration::from_millis(200));
    }
    let got = watcher.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&got.stdout), "21.5\n");

    Command::new("kill")
        .args(["-TERM", &server.0.id().to_string()])
        .status()
        .unwrap();
    assert!(wait_or_kill(&mut server.0, Duration::from_secs(10)).success());
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    assert!(rest.contains("switchyard serve: bridge {"), "{rest}");
    assert!(rest.contains("\"connects\":1"), "{rest}");
}

#[test]
fn load_mqtt_drives_a_switchyard_serve_at_qos_1_without_loss() {
    let mut server = Killed(
        switchyard()
            .args(["serve", "--mqtt", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut first = String::new();
    BufReader::new(server.0.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let addr = mqtt_address(&first);
    let out = switchyard()
        .args(["load", "--mqtt", &addr, "--qos", "1", "--messages", "1000"])
        .args(["--publishers", "2", "--subscribers", "3", "--json", "-"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["schema"], "switchyard.mqtt-load/v1");
    assert_eq!(report["published"], 1000);
    assert_eq!(report["expected"], 3000);
    assert_eq!(report["received"], 3000, "{report}");
    assert_eq!(report["lost"], 0);
    assert!(report["latency_us"]["p99"].as_f64().unwrap() > 0.0);
    assert!(String::from_utf8_lossy(&out.stderr).contains("deliveries/s"));

    // Paced: 200 messages at 1000/s cannot take less than about 0.2 s from first publish to last
    // delivery (a lower bound set by the pacing, not a speed claim).
    let out = switchyard()
        .args([
            "load",
            "--mqtt",
            &addr,
            "--messages",
            "200",
            "--rate",
            "1000",
            "--json",
            "-",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let paced: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(paced["rate"], 1000);
    assert_eq!(paced["received"], 200);
    assert!(paced["elapsed_s"].as_f64().unwrap() >= 0.19, "{paced}");

    for (args, expected) in [
        (vec!["load", "--qos", "1"], "--mqtt <HOST:PORT>"),
        (
            vec!["load", "--mqtt", &addr, "--qos", "2"],
            "2 is not in 0..=1",
        ),
        (
            vec!["load", "--mqtt", "nowhere", "--messages", "1"],
            "has no port; give HOST:PORT",
        ),
    ] {
        let out = switchyard().args(&args).output().unwrap();
        assert!(!out.status.success(), "{args:?} should fail");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}
