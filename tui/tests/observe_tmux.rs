//! End to end in real terminals (tmux): `switchyard load --serve` in one session, `switchyard dashboard
//! --attach` in another; the load's subscriptions move on the attached screen, and `q` quits at once
//! with status 0. CI installs tmux (scripts/test.sh); without it this test fails and says so.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// A tmux server of our own (its own socket), so the test never touches the user's sessions.
struct Tmux {
    socket: PathBuf,
}

impl Tmux {
    fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("tmux is required for this test (scripts/test.sh installs it)")
    }

    fn start(&self, session: &str, command: &str) {
        let out = self.run(&[
            "new-session",
            "-d",
            "-x",
            "160",
            "-y",
            "40",
            "-s",
            session,
            "sh",
            "-c",
            command,
        ]);
        assert!(
            out.status.success(),
            "tmux new-session failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn screen(&self, session: &str) -> String {
        String::from_utf8_lossy(&self.run(&["capture-pane", "-p", "-t", session]).stdout)
            .into_owned()
    }

    /// Polls the screen of `session` until `done` holds; fails after 20 s showing the last screen.
    fn wait_for(&self, session: &str, what: &str, done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let screen = self.screen(session);
            if done(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; the screen was:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

/// Waits (up to 20 s) until `path` holds a line containing `needle`; returns that line.
fn wait_for_line(path: &Path, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if let Some(line) = text.lines().find(|l| l.contains(needle)) {
            return line.to_string();
        }
        assert!(
            Instant::now() < deadline,
            "no `{needle}` in {}: {text}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The table row of subscription `name`, with its counters.
fn row<'a>(screen: &'a str, filter: &str) -> Option<&'a str> {
    screen
        .lines()
        .find(|l| l.contains(filter) && l.contains("drop-newest"))
}

#[test]
fn an_attached_dashboard_shows_a_load_run_moving_and_quits_at_once() {
    let found = Command::new("tmux").arg("-V").output();
    assert!(
        found.is_ok_and(|o| o.status.success()),
        "tmux is required for this test (scripts/test.sh installs it)"
    );
    let dir = tempfile::tempdir().unwrap();
    let stderr = dir.path().join("load.err");
    let exit_file = dir.path().join("exit");
    let tmux = Tmux {
        socket: dir.path().join("tmux.sock"),
    };
    let bin = env!("CARGO_BIN_EXE_switchyard");
    tmux.start(
        "load",
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
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();

    tmux.start(
        "dash",
        &format!(
            "'{bin}' dashboard --attach {addr}; echo $? > '{}'",
            exit_file.display()
        ),
    );
    let first = tmux.wait_for("dash", "the load's subscriptions", |s| {
        s.contains(&format!("attached to {addr}")) && row(s, "load/p0/t3").is_some()
    });
    let before = row(&first, "load/p0/t3").unwrap().to_string();
    tmux.wait_for("dash", "the counters to move", |s| {
        row(s, "load/p0/t3").is_some_and(|r| r != before)
    });

    let out = tmux.run(&["send-keys", "-t", "dash", "q"]);
    assert!(out.status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Ok(text) = std::fs::read_to_string(&exit_file)
            && text.ends_with('\n')
        {
            break text;
        }
        assert!(Instant::now() < deadline, "the dashboard did not quit");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.trim(), "0");
}

#[test]
fn the_dashboard_serves_its_embedded_broker_to_stats_attach() {
    let dir = tempfile::tempdir().unwrap();
    let tmux = Tmux {
        socket: dir.path().join("tmux.sock"),
    };
    let bin = env!("CARGO_BIN_EXE_switchyard");
    tmux.start("dash", &format!("'{bin}' dashboard --serve 127.0.0.1:0"));
    let screen = tmux.wait_for("dash", "the endpoint's address in the log", |s| {
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
        let out = Command::new(bin)
            .args(["stats", "--attach", &addr, "--once", "--json"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
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
