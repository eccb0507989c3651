//! `switchyard serve --mqtt-password-file --mqtt-acl-file`, reloaded with SIGHUP under traffic: two
//! `mosquitto_pub -l` publishers and one `mosquitto_sub` keep their connections while the ACL changes
//! under them; a file that does not parse is refused with its line number and the old rules stay;
//! `/metrics` counts the refusals and reloads by reason.
//! Loopback only; every wait bounded. `scripts/test.sh` installs mosquitto and mosquitto-clients.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod common;
use common::{Killed, mqtt_address, switchyard};

const PASSWORD: &str = "pw";
/// v1: bob reads data/a but not data/secret.
const ACL_V1: &str =
    "user alice\ntopic write data/#\nuser bob\ntopic read data/#\ntopic deny data/secret\n";
/// v2: the other way round.
const ACL_V2: &str =
    "user alice\ntopic write data/#\nuser bob\ntopic read data/#\ntopic deny data/a\n";
/// v3: does not parse (line 4).
const ACL_BAD: &str = "user alice\ntopic write data/#\nuser bob\ntopic sometimes data/#\n";

fn passwords(dir: &Path) -> std::path::PathBuf {
    let file = dir.join("passwords");
    for (i, user) in ["alice", "bob"].iter().enumerate() {
        let mut command = Command::new("mosquitto_passwd");
        if i == 0 {
            command.arg("-c");
        }
        let status = command
            .arg("-b")
            .arg(&file)
            .args([user, PASSWORD])
            .stdout(Stdio::null())
            .status()
            .expect("mosquitto_passwd runs (scripts/test.sh installs mosquitto)");
        assert!(status.success());
    }
    file
}

/// Lines a child writes on `pipe`, as they come.
fn lines_of(pipe: impl std::io::Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

/// Waits (up to 10 s) for a line containing `words`; returns it.
fn wait_line(lines: &Receiver<String>, words: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) if line.contains(words) => return line,
            Ok(_) => {}
            Err(e) => panic!("no line with {words:?}: {e}"),
        }
    }
}

fn mosquitto(tool: &str, port: &str, args: &[&str]) -> Killed {
    Killed(
        Command::new(tool)
            .args(["-h", "127.0.0.1", "-p", port, "-q", "1"])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{tool} runs (scripts/test.sh installs it): {e}")),
    )
}

fn signal(child: &Child, name: &str) {
    let sent = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
}

#[test]
fn sighup_reloads_the_acl_under_traffic_and_keeps_every_connection() {
    let dir = tempfile::tempdir().unwrap();
    let passwords = passwords(dir.path());
    let acl = dir.path().join("acl");
    std::fs::write(&acl, ACL_V1).unwrap();
    let snapshot = dir.path().join("final.json");
    let mut server = Killed(
        switchyard()
            .args(["serve", "--mqtt", "127.0.0.1:0", "--mqtt-password-file"])
            .arg(&passwords)
            .arg("--mqtt-acl-file")
            .arg(&acl)
            .arg("--json")
            .arg(&snapshot)
            .args(["--serve", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let out = lines_of(server.0.stdout.take().unwrap());
    let err = lines_of(server.0.stderr.take().unwrap());
    let endpoint = wait_line(&err, "stats endpoint on http://");
    let endpoint = endpoint
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .unwrap()
        .to_string();
    let first = wait_line(&out, "MQTT on");
    assert!(first.contains("ACL file"), "{first}");
    let addr = mqtt_address(&first);
    let port = addr.rsplit_once(':').unwrap().1.to_string();

    let mut bob = mosquitto(
        "mosquitto_sub",
        &port,
        &[
            "-u", "bob", "-P", PASSWORD, "-i", "bob", "-v", "-t", "data/#",
        ],
    );
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let bob_lines = lines_of(bob.0.stdout.take().unwrap());
    let collected = seen.clone();
    std::thread::spawn(move || {
        for line in bob_lines {
            collected.lock().unwrap().push(line);
        }
    });
    let publisher = |topic: &str, id: &str| {
        mosquitto(
            "mosquitto_pub",
            &port,
            &["-u", "alice", "-P", PASSWORD, "-i", id, "-l", "-t", topic],
        )
    };
    let mut to_a = publisher("data/a", "pub-a");
    let mut to_secret = publisher("data/secret", "pub-secret");
    let inputs: Vec<ChildStdin> = vec![
        to_a.0.stdin.take().unwrap(),
        to_secret.0.stdin.take().unwrap(),
    ];

    // Traffic: both publishers, every 2 ms, each payload saying the phase it was sent in.
    let phase = Arc::new(AtomicU32::new(1));
    let stop = Arc::new(AtomicBool::new(false));
    let traffic = {
        let (phase, stop) = (phase.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut inputs = inputs;
            for n in 0..20_000u32 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let line = format!("{}-{n}\n", phase.load(Ordering::Relaxed));
                for input in &mut inputs {
                    input.write_all(line.as_bytes()).unwrap();
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            inputs
        })
    };
    let wait_seen = |what: &str, done: &dyn Fn(&[String]) -> bool| {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !done(&seen.lock().unwrap()) {
            assert!(Instant::now() < deadline, "bob never saw {what}");
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    wait_seen("phase 1 on data/a", &|s| {
        s.iter().filter(|l| l.starts_with("data/a 1-")).count() >= 20
    });

    std::fs::write(&acl, ACL_V2).unwrap();
    signal(&server.0, "HUP");
    wait_line(&err, "reloaded: 2 users, 5 ACL lines");
    phase.store(2, Ordering::Relaxed);
    wait_seen("phase 2 on data/secret", &|s| {
        s.iter().filter(|l| l.starts_with("data/secret 2-")).count() >= 20
    });

    std::fs::write(&acl, ACL_BAD).unwrap();
    signal(&server.0, "HUP");
    let refused = wait_line(&err, "reload refused");
    assert!(refused.contains("line 4"), "{refused}");
    assert!(refused.contains("old files stay in force"), "{refused}");
    phase.store(3, Ordering::Relaxed);
    wait_seen("phase 3 on data/secret", &|s| {
        s.iter().filter(|l| l.starts_with("data/secret 3-")).count() >= 20
    });
    stop.store(true, Ordering::Relaxed);
    let inputs = traffic.join().unwrap();

    // Nobody reconnected: the same three processes are still running.
    for (who, child) in [
        ("bob", &mut bob),
        ("pub-a", &mut to_a),
        ("pub-secret", &mut to_secret),
    ] {
        assert!(child.0.try_wait().unwrap().is_none(), "{who} ended");
    }
    // The same counts in /metrics, by reason.
    let metrics = switchyard_observe::Client::new(&endpoint)
        .unwrap()
        .metrics()
        .unwrap();
    let series = |name: &str| -> u64 {
        let line = metrics
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} in {metrics}"));
        line.rsplit(' ').next().unwrap().parse::<f64>().unwrap() as u64
    };
    assert!(series("switchyard_mqtt_acl_refused_total{reason=\"read\"}") >= 40);
    assert_eq!(
        series("switchyard_mqtt_acl_refused_total{reason=\"publish\"}"),
        0
    );
    assert_eq!(series("switchyard_mqtt_reloads_total{result=\"ok\"}"), 1);
    assert_eq!(
        series("switchyard_mqtt_reloads_total{result=\"refused\"}"),
        1
    );
    assert_eq!(series("switchyard_mqtt_logins_accepted_total"), 3);
    assert_eq!(series("switchyard_mqtt_connections_open"), 3);
    drop(inputs);
    signal(&server.0, "TERM");
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.0.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "serve did not stop");
        std::thread::sleep(Duration::from_millis(20));
    }

    let seen = seen.lock().unwrap().clone();
    // Published after the reload, a message is judged by the new rules; before it, the old rules
    // decided anything delivered before the reload (a message still queued then meets the new ones).
    for line in &seen {
        assert!(
            !line.starts_with("data/a 2-"),
            "{line}: data/a denied since v2"
        );
        assert!(!line.starts_with("data/a 3-"), "{line}: v2 still in force");
    }
    let snapshot: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&snapshot).unwrap()).unwrap();
    let mqtt = &snapshot["mqtt"];
    assert_eq!(mqtt["accepted"], 3, "one connection each: {mqtt}");
    assert_eq!(
        mqtt["closed_by_reason"]["shutdown"].as_u64().unwrap()
            + mqtt["closed_by_reason"]["peer_closed"].as_u64().unwrap()
            + mqtt["closed_by_reason"]["disconnect"].as_u64().unwrap(),
        3,
        "{mqtt}"
    );
    let reload = &mqtt["reload"];
    assert_eq!(reload["reloads"], 1, "{reload}");
    assert_eq!(reload["refused"], 1, "{reload}");
    assert!(
        reload["last_refusal"].as_str().unwrap().contains("line 4"),
        "{reload}"
    );
    let refused = &mqtt["acl"]["refused_by_reason"];
    assert!(refused["read"].as_u64().unwrap() >= 40, "{refused}");
    assert_eq!(refused["publish"], 0, "{refused}");
}

#[test]
fn serve_refuses_an_acl_file_that_does_not_parse_naming_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let acl = dir.path().join("acl");
    std::fs::write(&acl, ACL_BAD).unwrap();
    let mut child = Killed(
        switchyard()
            .args(["serve", "--mqtt", "127.0.0.1:0", "--mqtt-acl-file"])
            .arg(&acl)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let status = common::wait_or_kill(&mut child.0, Duration::from_secs(20));
    assert!(!status.success());
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.0.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(stderr.contains("ACL file line 4"), "{stderr}");
    assert!(stderr.contains("sometimes"), "{stderr}");
}
