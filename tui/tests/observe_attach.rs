//! Two real processes over loopback: `switchyard load --serve` serving, `switchyard stats --attach`
//! (and the observe client) reading. The books balance on both sides; a read-only endpoint refuses
//! commands; a wrong token is refused; a client reconnects to a restarted server.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use serde_json::Value;
use switchyard_observe::{Client, PublishRequest};

/// A child process killed when dropped, with its stderr lines on a channel.
struct Running {
    child: Child,
    stderr: Receiver<String>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn switchyard() -> Command {
    Command::new(assert_cmd::cargo::cargo_bin("switchyard"))
}

fn spawn(mut cmd: Command) -> Running {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the switchyard binary starts");
    let (tx, stderr) = mpsc::channel();
    let pipe = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    Running { child, stderr }
}

/// Waits (up to 60 s) for a stderr line containing `needle`; returns it.
fn wait_for_line(run: &Running, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        if let Ok(line) = run.stderr.recv_timeout(Duration::from_millis(100)) {
            if line.contains(needle) {
                return line;
            }
            seen.push(line);
        }
    }
    panic!("no stderr line with `{needle}` within 60 s; saw: {seen:#?}");
}

/// `switchyard load --serve ...` with `extra` options; returns the process and the bound address.
fn serve_load(addr: &str, extra: &[&str]) -> (Running, String) {
    let mut cmd = switchyard();
    cmd.args(["load", "--no-progress", "--serve", addr])
        .args(extra);
    let run = spawn(cmd);
    let line = wait_for_line(&run, "stats endpoint on http://");
    let bound = line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("an address after http://")
        .to_string();
    (run, bound)
}

fn wait_for_file(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn balances(v: &Value) -> bool {
    let bal = |x: &Value| {
        x["matched"].as_u64().unwrap()
            == x["delivered"].as_u64().unwrap()
                + x["dropped"].as_u64().unwrap()
                + x["depth"].as_u64().unwrap()
    };
    bal(&v["totals"]) && v["subscriptions"].as_array().unwrap().iter().all(bal)
}

#[test]
fn the_books_balance_in_the_serving_run_and_in_the_attached_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("run.json");
    let (load, addr) = serve_load(
        "127.0.0.1:0",
        &[
            "--subscribers",
            "20",
            "--topics",
            "5",
            "--filters",
            "mixed",
            "--capacity",
            "16",
            "--messages",
            "20000",
            "--slow",
            "2:50us",
            "--serve-linger",
            "120s",
            "--json",
            json.to_str().unwrap(),
        ],
    );
    wait_for_file(&json);
    wait_for_line(&load, "serving the final numbers");
    let run: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert!(balances(&run), "the serving run's own books: {run}");

    let attached = common::json_output(
        switchyard()
            .args(["stats", "--attach", &addr, "--once", "--json"])
            .output()
            .unwrap(),
    );
    assert_eq!(attached["schema"], "switchyard.stats/v1");
    assert!(
        balances(&attached),
        "the attached snapshot's books: {attached}"
    );
    // The run has ended and unsubscribed; the broker-wide totals keep what every subscription counted.
    for field in [
        "published",
        "unrouted",
        "matched",
        "delivered",
        "dropped",
        "depth",
    ] {
        assert_eq!(
            attached["totals"][field], run["totals"][field],
            "totals.{field}"
        );
    }
    assert_eq!(attached["totals"]["published"], 20000);
    assert!(
        attached["totals"]["dropped"].as_u64().unwrap() > 0,
        "the slow consumers dropped"
    );
    assert_eq!(attached["totals"]["subscriptions"], 0);

    // The read-only endpoint refuses a command, says why, and counts it.
    let client = Client::new(&addr)
        .unwrap()
        .with_token(Some("anything".into()));
    let e = client
        .publish(&PublishRequest {
            topic: "load/p0/t0".into(),
            payload: "x".into(),
            priority: None,
            retain: false,
            count: None,
        })
        .unwrap_err();
    assert_eq!(e.status(), Some(403), "{e}");
    assert!(e.to_string().contains("read-only"), "{e}");
    let after = client.stats(&Default::default()).unwrap();
    assert_eq!(after.endpoint.read_only, 1);
    assert_eq!(
        after.snapshot.totals.published, 20000,
        "nothing was published"
    );
}

#[test]
fn stats_exits_1_naming_the_address_it_cannot_reach() {
    let port = common::free_port();
    let addr = format!("127.0.0.1:{port}");
    let out = switchyard()
        .args(["stats", "--attach", &addr, "--once"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("cannot connect to {addr}")), "{err}");
}

#[test]
fn a_wrong_token_is_refused_and_the_token_file_one_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    let (_load, addr) = serve_load(
        "127.0.0.1:0",
        &[
            "--subscribers",
            "2",
            "--rate",
            "100",
            "--duration",
            "60s",
            "--serve-token-file",
            token_file.to_str().unwrap(),
        ],
    );
    let token = switchyard_observe::read_token_file(&token_file).unwrap();
    let publish = PublishRequest {
        topic: "load/p0/t0".into(),
        payload: "from the test".into(),
        priority: None,
        retain: false,
        count: Some(5),
    };
    let wrong = Client::new(&addr)
        .unwrap()
        .with_token(Some("not-the-token".into()));
    let e = wrong.publish(&publish).unwrap_err();
    assert_eq!(e.status(), Some(401), "{e}");
    let right = Client::new(&addr).unwrap().with_token(Some(token));
    // The endpoint is up before the run has subscribed: wait for its two subscriptions.
    let deadline = Instant::now() + Duration::from_secs(60);
    while right
        .stats(&Default::default())
        .unwrap()
        .snapshot
        .totals
        .subscriptions
        < 2
    {
        assert!(Instant::now() < deadline, "the load never subscribed");
        std::thread::sleep(Duration::from_millis(20));
    }
    let outcome = right.publish(&publish).unwrap();
    assert_eq!((outcome.published, outcome.matched), (5, 10));
    assert_eq!(
        right
            .stats(&Default::default())
            .unwrap()
            .endpoint
            .unauthorized,
        1
    );
}

#[test]
fn an_attached_stats_client_reconnects_to_a_restarted_server() {
    let port = common::free_port();
    let addr = format!("127.0.0.1:{port}");
    let serve = |subscribers: &str| {
        serve_load(
            &addr,
            &[
                "--subscribers",
                subscribers,
                "--rate",
                "200",
                "--duration",
                "60s",
            ],
        )
    };
    let (first, _) = serve("3");
    let mut stats = switchyard();
    stats.args([
        "stats",
        "--attach",
        &addr,
        "--interval",
        "100ms",
        "--count",
        "300",
        "--jsonl",
        "--reconnect-for",
        "30s",
    ]);
    let mut watcher = spawn(stats);
    let mut lines = BufReader::new(watcher.child.stdout.take().unwrap()).lines();
    let mut next_subscriptions = || -> u64 {
        let line = lines
            .next()
            .expect("a snapshot line")
            .expect("readable stdout");
        let v: Value = serde_json::from_str(&line).unwrap();
        v["totals"]["subscriptions"].as_u64().unwrap()
    };
    // The first snapshots may come before the run has subscribed.
    let deadline = Instant::now() + Duration::from_secs(60);
    while next_subscriptions() != 3 {
        assert!(
            Instant::now() < deadline,
            "never saw the first server's subscriptions"
        );
    }
    drop(first); // killed
    wait_for_line(&watcher, "retrying"); // the watcher noticed
    let (_second, _) = serve("7");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(Instant::now() < deadline, "never saw the restarted server");
        if next_subscriptions() == 7 {
            break;
        }
    }
    wait_for_line(&watcher, "reconnected to");
}
