//! `switchyard load --serve` with a token file: others may publish and tap through the endpoint while
//! the run goes on. What they do is not an error of the run (the broker's counts are then at least the
//! generator's), and the human summary shows what came from them with control characters escaped
//! (issue 18, row 4): a tap whose name would clear and recolour the terminal is listed harmless.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

mod common;
use common::tmux::wait_for_line;
use common::{Killed, switchyard, wait_or_kill};
use switchyard_observe::{Client, PublishRequest, StatsParams, TapInfo, TapRequest};

/// A `load --serve 127.0.0.1:0` run of up to a minute with commands on, and a client with its token.
struct Run {
    load: Killed,
    client: Client,
    stderr: PathBuf,
    _dir: tempfile::TempDir,
}

fn start() -> Run {
    let dir = tempfile::tempdir().unwrap();
    let stderr = dir.path().join("load.err");
    let token = dir.path().join("token");
    let load = Killed(
        switchyard()
            .args([
                "load",
                "--no-progress",
                "--duration",
                "60s",
                "--rate",
                "2000",
            ])
            .args(["--serve", "127.0.0.1:0", "--serve-token-file"])
            .arg(&token)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap(),
    );
    let line = wait_for_line(&stderr, "stats endpoint on http://");
    let addr = line
        .split("http://")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap();
    let client = Client::new(addr)
        .unwrap()
        .with_token(Some(switchyard_observe::read_token_file(&token).unwrap()));
    Run {
        load,
        client,
        stderr,
        _dir: dir,
    }
}

impl Run {
    fn tap(&self, name: &str) -> TapInfo {
        self.client
            .open_tap(&TapRequest {
                filter: "load/#".into(),
                capacity: Some(1),
                policy: Some("drop-newest".into()),
                name: Some(name.into()),
                receive_retained: false,
            })
            .unwrap()
    }

    /// Waits (bounded) until subscription `id` satisfies `done`.
    fn until(&self, id: u64, what: &str, done: impl Fn(&switchyard::SubscriptionStats) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let stats = self.client.stats(&StatsParams::default()).unwrap();
            if stats
                .snapshot
                .subscriptions
                .iter()
                .any(|s| s.id == id && done(s))
            {
                return;
            }
            assert!(Instant::now() < deadline, "{what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGINT (the run stops early and still reports); its summary, once it exited with status 0.
    fn stop(mut self) -> String {
        let signalled = std::process::Command::new("kill")
            .args(["-INT", &self.load.0.id().to_string()])
            .status()
            .unwrap();
        assert!(signalled.success());
        let status = wait_or_kill(&mut self.load.0, Duration::from_secs(30));
        assert!(
            status.success(),
            "{status}: {}",
            std::fs::read_to_string(&self.stderr).unwrap()
        );
        let mut summary = String::new();
        std::io::Read::read_to_string(&mut self.load.0.stdout.take().unwrap(), &mut summary)
            .unwrap();
        summary
    }
}

#[test]
fn publishes_and_taps_through_the_endpoint_are_not_errors_of_the_run() {
    let run = start();
    let tap = run.tap("watcher");
    run.until(tap.id, "the tap took messages", |s| s.delivered > 0);
    let published = run
        .client
        .publish(&PublishRequest {
            topic: "elsewhere/t".into(),
            payload: "x".into(),
            priority: None,
            retain: false,
            count: Some(5),
        })
        .unwrap();
    assert_eq!(published.published, 5);
    let summary = run.stop();
    assert!(summary.contains("books       balanced"), "{summary}");
}

#[test]
fn the_load_summary_escapes_control_characters_in_a_taps_name() {
    let run = start();
    let tap = run.tap("evil\u{1b}[2J\u{1b}[31m\u{202e}red");
    run.client.set_tap_paused(tap.id, true).unwrap();
    run.until(tap.id, "the paused tap never dropped", |s| s.dropped > 0);
    let summary = run.stop();
    assert!(summary.contains("top subscriptions by drops"), "{summary}");
    assert!(
        summary.contains("evil\\x1b[2J\\x1b[31m\\u{202e}red"),
        "the name, escaped: {summary}"
    );
    assert!(
        !summary.contains('\u{1b}') && !summary.contains('\u{202e}'),
        "{summary:?}"
    );
}
