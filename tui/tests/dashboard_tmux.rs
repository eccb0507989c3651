//! The real `switchyard` binary in a real terminal (tmux): subscribe, publish, see the delivery,
//! unsubscribe, export, quit with exit status 0. CI installs tmux; without it this test fails and says so.

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
            .expect(
                "tmux is required for this test (CI installs it; here: apt-get install -y tmux)",
            )
    }

    fn send(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "dash"];
        args.extend_from_slice(keys);
        let out = self.run(&args);
        assert!(
            out.status.success(),
            "send-keys failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Types `text` literally (no key-name interpretation).
    fn type_text(&self, text: &str) {
        self.send(&["-l", text]);
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.run(&["capture-pane", "-p", "-t", "dash"]).stdout)
            .into_owned()
    }

    /// Polls the screen until `done` holds; fails after 10 s showing the last screen.
    fn wait_for(&self, what: &str, done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let screen = self.screen();
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

fn wait_for_file(path: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            if text.ends_with('\n') {
                return text;
            }
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The row of the subscriptions table that shows `filter`.
fn row_with<'a>(screen: &'a str, filter: &str) -> Option<&'a str> {
    screen
        .lines()
        .find(|l| l.contains(filter) && l.contains("drop-newest"))
}

fn require_tmux() {
    let found = Command::new("tmux").arg("-V").output();
    assert!(
        found.is_ok_and(|o| o.status.success()),
        "tmux is required for this test (CI installs it; here: apt-get install -y tmux)"
    );
}

#[test]
fn ctrl_c_quits_the_demo_dashboard_with_status_0() {
    require_tmux();
    let dir = tempfile::tempdir().unwrap();
    let exit_file = dir.path().join("exit");
    let tmux = Tmux {
        socket: dir.path().join("tmux.sock"),
    };
    let command = format!(
        "'{}'; echo $? > '{}'",
        env!("CARGO_BIN_EXE_switchyard"),
        exit_file.display()
    );
    let out = tmux.run(&[
        "new-session",
        "-d",
        "-x",
        "80",
        "-y",
        "24",
        "-s",
        "dash",
        "sh",
        "-c",
        &command,
    ]);
    assert!(
        out.status.success(),
        "tmux new-session failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    tmux.wait_for("demo traffic with drops", |s| {
        let totals = s.lines().nth(1).unwrap_or_default();
        s.contains("DEMO") && totals.contains(" dropped ") && !totals.contains(" dropped 0 ")
    });
    tmux.send(&["C-c"]);
    assert_eq!(wait_for_file(&exit_file).trim(), "0");
}

#[test]
fn subscribe_publish_unsubscribe_export_and_quit_in_a_real_terminal() {
    require_tmux();
    let dir = tempfile::tempdir().unwrap();
    let export_dir = dir.path().join("exports");
    std::fs::create_dir(&export_dir).unwrap();
    let exit_file = dir.path().join("exit");
    let tmux = Tmux {
        socket: dir.path().join("tmux.sock"),
    };
    let command = format!(
        "'{}' --no-demo --export-dir '{}'; echo $? > '{}'",
        env!("CARGO_BIN_EXE_switchyard"),
        export_dir.display(),
        exit_file.display()
    );
    let out = tmux.run(&[
        "new-session",
        "-d",
        "-x",
        "120",
        "-y",
        "40",
        "-s",
        "dash",
        "sh",
        "-c",
        &command,
    ]);
    assert!(
        out.status.success(),
        "tmux new-session failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    tmux.wait_for("the dashboard", |s| {
        s.contains("SWITCHYARD") && s.contains("no subscriptions yet")
    });

    // Subscribe with `s`: filter, default capacity and policy.
    tmux.send(&["s"]);
    tmux.wait_for("the subscribe form", |s| {
        s.contains("Subscribe") && s.contains("Capacity")
    });
    tmux.type_text("e2e/#");
    tmux.send(&["Enter"]);
    tmux.wait_for("the new subscription", |s| row_with(s, "e2e/#").is_some());

    // Publish with `p`: topic, payload, count.
    tmux.send(&["p"]);
    tmux.wait_for("the publish form", |s| {
        s.contains("Publish") && s.contains("Payload")
    });
    tmux.type_text("e2e/hello");
    tmux.send(&["Tab"]);
    tmux.type_text("hello from tmux");
    tmux.send(&["Enter"]);
    let screen = tmux.wait_for("a delivery in the table", |s| {
        row_with(s, "e2e/#").is_some()
            && s.contains("matched 1  delivered 1  dropped 0")
            && s.contains("hello from tmux")
    });
    let row = row_with(&screen, "e2e/#").unwrap();
    assert!(row.contains("s1"), "{row}");

    // Unsubscribe with `u`, confirm with `y`.
    tmux.send(&["u"]);
    tmux.wait_for("the confirmation", |s| s.contains("Unsubscribe s1"));
    tmux.send(&["y"]);
    tmux.wait_for("the row to go", |s| {
        row_with(s, "e2e/#").is_none() && s.contains("unsubscribed s1")
    });

    // Export with `e`: a v1 snapshot in the export directory, its path in the log.
    tmux.send(&["e"]);
    tmux.wait_for("the export in the log", |s| {
        s.contains("exported snapshot to")
    });
    let files: Vec<_> = std::fs::read_dir(&export_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let json: serde_json::Value = serde_json::from_str(&wait_for_file(&files[0])).unwrap();
    assert_eq!(json["schema"], "switchyard.stats/v1");
    assert_eq!(json["totals"]["published"], 1);
    assert_eq!(json["totals"]["delivered"], 1);

    // Quit with `q`: the process exits 0.
    tmux.send(&["q"]);
    assert_eq!(wait_for_file(&exit_file).trim(), "0");
}

#[test]
fn dashboard_with_mqtt_serves_mosquitto_clients_and_shows_their_subscription() {
    require_tmux();
    let dir = tempfile::tempdir().unwrap();
    let exit_file = dir.path().join("exit");
    let tmux = Tmux {
        socket: dir.path().join("tmux.sock"),
    };
    // A free loopback port: bound, then released for the dashboard.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let command = format!(
        "'{}' --no-demo --mqtt 127.0.0.1:{port}; echo $? > '{}'",
        env!("CARGO_BIN_EXE_switchyard"),
        exit_file.display()
    );
    let out = tmux.run(&[
        "new-session",
        "-d",
        "-x",
        "120",
        "-y",
        "40",
        "-s",
        "dash",
        "sh",
        "-c",
        &command,
    ]);
    assert!(out.status.success(), "{out:?}");
    tmux.wait_for("the MQTT listener in the log", |s| {
        s.contains(&format!("MQTT on 127.0.0.1:{port}"))
    });
    let mosquitto = |tool: &str, args: &[&str]| {
        Command::new(tool)
            .args(["-h", "127.0.0.1", "-p", &port])
            .args(args)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("mosquitto clients are installed by scripts/test.sh")
    };
    let sub = mosquitto("mosquitto_sub", &["-t", "dash/#", "-C", "1", "-W", "10"]);
    tmux.wait_for("the MQTT client's subscription", |s| {
        row_with(s, "dash/#").is_some()
    });
    let status = mosquitto("mosquitto_pub", &["-t", "dash/x", "-m", "over mqtt"])
        .wait()
        .unwrap();
    assert!(status.success());
    let received = sub.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&received.stdout), "over mqtt\n");
    tmux.send(&["C-c"]);
    assert_eq!(wait_for_file(&exit_file).trim(), "0");
}
