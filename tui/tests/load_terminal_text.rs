//! `switchyard load`'s human summary shows text that came from outside with its control characters
//! escaped (issue 18, row 4): a tap made through `--serve`'s endpoint whose name would clear and
//! recolour the terminal is listed among the subscriptions that dropped, harmless.

use std::process::Stdio;
use std::time::{Duration, Instant};

mod common;
use common::tmux::wait_for_line;
use common::{Killed, switchyard, wait_or_kill};
use switchyard_observe::{Client, StatsParams, TapRequest};

#[test]
fn the_load_summary_escapes_control_characters_in_a_taps_name_and_filter() {
    let dir = tempfile::tempdir().unwrap();
    let stderr = dir.path().join("load.err");
    let token = dir.path().join("token");
    let mut load = Killed(
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
    let evil = "evil\u{1b}[2J\u{1b}[31m\u{202e}red";
    let tap = client
        .open_tap(&TapRequest {
            filter: "load/#".into(),
            capacity: Some(1),
            policy: Some("drop-newest".into()),
            name: Some(evil.into()),
            receive_retained: false,
        })
        .unwrap();
    client.set_tap_paused(tap.id, true).unwrap();
    // Drops on the paused tap, then SIGINT: the run stops early and still reports.
    let deadline = Instant::now() + Duration::from_secs(30);
    while client
        .stats(&StatsParams::default())
        .unwrap()
        .snapshot
        .subscriptions
        .iter()
        .all(|s| s.id != tap.id || s.dropped == 0)
    {
        assert!(Instant::now() < deadline, "the paused tap never dropped");
        std::thread::sleep(Duration::from_millis(20));
    }
    let signalled = std::process::Command::new("kill")
        .args(["-INT", &load.0.id().to_string()])
        .status()
        .unwrap();
    assert!(signalled.success());
    let status = wait_or_kill(&mut load.0, Duration::from_secs(30));
    assert!(status.success(), "{status}");
    let mut summary = String::new();
    std::io::Read::read_to_string(&mut load.0.stdout.take().unwrap(), &mut summary).unwrap();
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
