//! End to end in real terminals (tmux): `switchyard load --serve` in one session, `switchyard dashboard
//! --attach` in another; the load's subscriptions move on the attached screen, and `q` quits with
//! status 0. And `dashboard --serve` answers `switchyard stats --attach`. `scripts/test.sh` installs
//! tmux; without it these tests fail and say so.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::tmux::{Tmux, require_tmux, wait_for_file, wait_for_line};

/// The table row of the subscription with `filter`, with its counters.
fn row<'a>(screen: &'a str, filter: &str) -> Option<&'a str> {
    screen
        .lines()
        .find(|l| l.contains(filter) && l.contains("drop-newest"))
}

#[test]
fn an_attached_dashboard_shows_a_load_run_moving_and_quits_with_status_0() {
    require_tmux();
    let dir = tempfile::tempdir().unwrap();
    let stderr = dir.path().join("load.err");
    let exit_file = dir.path().join("exit");
    let bin = env!("CARGO_BIN_EXE_switchyard");
    let tmux = Tmux::new(dir.path());
    tmux.start_session(
        "load",
        160,
        40,
        &format!(
            "'{bin}' load --serve 127.0.0.1:0 --subscribers 4 --topics 4 --rate 400 --duration 120s \
             --no-progress 2> '{}'",
            stderr.display()
        ),
    );
    let line = wait_for_line(&stderr, "stats endpoint on http://");
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap()
        .to_string();

    tmux.start_session(
        "dash",
        160,
        40,
        &format!(
            "'{bin}' dashboard --attach {addr}; echo $? > '{}'",
            exit_file.display()
        ),
    );
    let first = tmux.wait_for("the load's subscriptions", |s| {
        s.contains(&format!("attached to {addr}")) && row(s, "load/p0/t3").is_some()
    });
    let before = row(&first, "load/p0/t3").unwrap().to_string();
    tmux.wait_for("the counters to move", |s| {
        row(s, "load/p0/t3").is_some_and(|r| r != before)
    });
    tmux.send(&["q"]);
    assert_eq!(wait_for_file(&exit_file).trim(), "0");
}

#[test]
fn the_dashboard_serves_its_embedded_broker_to_stats_attach() {
    require_tmux();
    let dir = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_switchyard");
    let tmux = Tmux::start(
        dir.path(),
        160,
        40,
        &format!("'{bin}' dashboard --serve 127.0.0.1:0"),
    );
    let screen = tmux.wait_for("the endpoint's address in the log", |s| {
        s.contains("stats endpoint on http://") && s.contains("DEMO")
    });
    let addr = screen
        .split("stats endpoint on http://")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap()
        .trim_end_matches(['│', '┃'])
        .to_string();
    let deadline = Instant::now() + Duration::from_secs(20);
    let snapshot: serde_json::Value = loop {
        let v = common::json_output(
            Command::new(bin)
                .args(["stats", "--attach", &addr, "--once", "--json"])
                .output()
                .unwrap(),
        );
        if v["totals"]["published"].as_u64().unwrap() > 0 || Instant::now() > deadline {
            break v;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        snapshot["totals"]["subscriptions"].as_u64().unwrap() > 0,
        "{snapshot}"
    );
    assert!(
        snapshot["totals"]["published"].as_u64().unwrap() > 0,
        "demo traffic: {snapshot}"
    );
}
