//! The real `switchyard` binary in a real terminal (tmux): subscribe, publish, see the delivery, ask
//! who gets a topic, unsubscribe, export, quit with exit status 0; and SIGTERM, SIGHUP or a panic put
//! the terminal back (cooked mode with echo, the normal screen, the cursor shown). `scripts/test.sh`
//! installs tmux; without it these tests fail and say so.

mod common;

use std::process::Command;

use common::tmux::{Tmux, require_tmux, wait_for_file};

/// The row of the subscriptions table that shows `filter`.
fn row_with<'a>(screen: &'a str, filter: &str) -> Option<&'a str> {
    screen
        .lines()
        .find(|l| l.contains(filter) && l.contains("drop-newest"))
}

#[test]
fn ctrl_c_quits_the_demo_dashboard_with_status_0() {
    require_tmux();
    let dir = tempfile::tempdir().unwrap();
    let exit_file = dir.path().join("exit");
    let command = format!(
        "'{}'; echo $? > '{}'",
        env!("CARGO_BIN_EXE_switchyard"),
        exit_file.display()
    );
    let tmux = Tmux::start(dir.path(), 80, 24, &command);
    tmux.wait_for("demo traffic with drops", |s| {
        let totals = s.lines().nth(1).unwrap_or_default();
        s.contains("DEMO") && totals.contains(" dropped ") && !totals.contains(" dropped 0 ")
    });
    tmux.send(&["C-c"]);
    assert_eq!(wait_for_file(&exit_file).trim(), "0");
}

#[test]
fn subscribe_publish_explain_unsubscribe_export_and_quit_in_a_real_terminal() {
    require_tmux();
    let dir = tempfile::tempdir().unwrap();
    let export_dir = dir.path().join("exports");
    std::fs::create_dir(&export_dir).unwrap();
    let exit_file = dir.path().join("exit");
    let command = format!(
        "'{}' --no-demo --export-dir '{}'; echo $? > '{}'",
        env!("CARGO_BIN_EXE_switchyard"),
        export_dir.display(),
        exit_file.display()
    );
    let tmux = Tmux::start(dir.path(), 120, 40, &command);
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

    // Who gets this topic? `w`, a topic, Enter: the subscription and the filter that matched.
    tmux.send(&["w"]);
    tmux.wait_for("the explainer", |s| s.contains("Who gets this topic?"));
    tmux.type_text("e2e/hello/again");
    tmux.send(&["Enter"]);
    let screen = tmux.wait_for("the explainer's answer", |s| {
        s.contains("e2e/hello/again reaches 1 subscription:")
    });
    let answer = screen
        .lines()
        .find(|l| l.contains(" s1 ") && l.contains("e2e/#"))
        .unwrap_or_else(|| panic!("no row naming s1 and its filter:\n{screen}"));
    assert!(answer.contains("drop-newest"), "{answer}");
    tmux.send(&["Escape"]);
    tmux.wait_for("the explainer to close", |s| {
        !s.contains("Who gets this topic?") && row_with(s, "e2e/#").is_some()
    });

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

/// The dashboard in a pane, started as `sh -c 'echo $$ > pid; exec switchyard --no-demo'` (so `pid` is
/// the dashboard's own) inside an outer shell that records, once it ends, its exit status and the
/// terminal's `stty -a`, then keeps the pane open to be inspected.
struct EndedDashboard {
    tmux: Tmux,
    dir: tempfile::TempDir,
}

impl EndedDashboard {
    fn start(env: &str) -> Self {
        require_tmux();
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display();
        let command = format!(
            "{env} sh -c 'echo $$ > {d}/pid; exec {bin} --no-demo'; echo $? > {d}/status.tmp; \
             stty -a > {d}/stty; mv {d}/status.tmp {d}/status; echo ENDED; sleep 600",
            bin = env!("CARGO_BIN_EXE_switchyard"),
        );
        let tmux = Tmux::start(dir.path(), 100, 30, &command);
        tmux.wait_for("the dashboard", |s| s.contains("no subscriptions yet"));
        let ended = Self { tmux, dir };
        // While it runs the terminal is raw, on the alternate screen, the cursor hidden: the state the
        // checks below must see undone.
        let tty = ended.pane("#{pane_tty}");
        let stty = Command::new("stty")
            .args(["-a", "-F", &tty])
            .output()
            .unwrap();
        let modes = String::from_utf8_lossy(&stty.stdout).into_owned();
        assert!(
            has_mode(&modes, "-icanon") && has_mode(&modes, "-echo"),
            "{modes}"
        );
        assert_eq!(ended.pane("#{alternate_on}"), "1");
        ended
    }

    fn pane(&self, format: &str) -> String {
        let out = self
            .tmux
            .run(&["display-message", "-p", "-t", "dash", format]);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn pid(&self) -> String {
        wait_for_file(&self.dir.path().join("pid"))
            .trim()
            .to_string()
    }

    /// Waits for the end and checks the terminal is back: cooked mode with echo, the normal screen,
    /// the cursor shown. Returns the exit status and the screen.
    fn restored(&self) -> (String, String) {
        let status = wait_for_file(&self.dir.path().join("status"))
            .trim()
            .to_string();
        let modes = std::fs::read_to_string(self.dir.path().join("stty")).unwrap();
        assert!(
            has_mode(&modes, "icanon") && has_mode(&modes, "echo"),
            "{modes}"
        );
        let screen = self
            .tmux
            .wait_for("the shell after the dashboard", |s| s.contains("ENDED"));
        assert_eq!(
            self.pane("#{alternate_on}"),
            "0",
            "still on the alternate screen"
        );
        assert_eq!(self.pane("#{cursor_flag}"), "1", "the cursor is hidden");
        (status, screen)
    }
}

/// Whether `stty -a` output lists `mode` (`echo` is not `-echo`, nor `echoe`).
fn has_mode(stty: &str, mode: &str) -> bool {
    stty.split(|c: char| c.is_whitespace() || c == ';')
        .any(|m| m == mode)
}

fn kill(signal: &str, pid: &str) {
    let status = Command::new("sh")
        .args(["-c", &format!("kill -{signal} {pid}")])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn sigterm_restores_the_terminal_and_exits_143() {
    let d = EndedDashboard::start("");
    kill("TERM", &d.pid());
    let (status, screen) = d.restored();
    assert_eq!(status, "143");
    assert!(screen.contains("SIGTERM received"), "{screen}");
}

#[test]
fn sighup_restores_the_terminal_and_exits_129() {
    let d = EndedDashboard::start("");
    kill("HUP", &d.pid());
    let (status, _) = d.restored();
    assert_eq!(status, "129");
}

#[test]
fn a_panic_on_the_ui_thread_restores_the_terminal_before_its_message() {
    let d = EndedDashboard::start("SWITCHYARD_TEST_PANIC_KEY=!");
    d.tmux.type_text("!");
    let (status, screen) = d.restored();
    assert_eq!(status, "101", "Rust's exit status for a panic");
    assert!(screen.contains("the test asked for a panic"), "{screen}");
}

#[test]
fn a_start_up_error_names_its_cause_once() {
    require_tmux();
    let dir = tempfile::tempdir().unwrap();
    // A directory where the state file should be: it cannot be read.
    let command = format!(
        "'{}' --no-demo --state '{}'; echo \"status $?\"; sleep 600",
        env!("CARGO_BIN_EXE_switchyard"),
        dir.path().display()
    );
    let tmux = Tmux::start(dir.path(), 200, 20, &command);
    let screen = tmux.wait_for("the error", |s| s.contains("status "));
    assert!(screen.contains("status 1"), "{screen}");
    assert!(
        screen.contains("switchyard: error: cannot read the state file"),
        "{screen}"
    );
    assert_eq!(screen.matches("Is a directory").count(), 1, "{screen}");
}

#[test]
fn dashboard_with_mqtt_serves_mosquitto_clients_and_shows_their_subscription() {
    require_tmux();
    let dir = tempfile::tempdir().unwrap();
    let exit_file = dir.path().join("exit");
    let port = common::free_port().to_string();
    let command = format!(
        "'{}' --no-demo --mqtt 127.0.0.1:{port}; echo $? > '{}'",
        env!("CARGO_BIN_EXE_switchyard"),
        exit_file.display()
    );
    let tmux = Tmux::start(dir.path(), 120, 40, &command);
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
    // `c` lists the MQTT clients: mosquitto_sub's connection (its id is assigned, `auto-N`, or its
    // own `mosq-…`).
    tmux.type_text("c");
    tmux.wait_for("the MQTT clients view", |s| {
        s.contains(&format!("MQTT clients on 127.0.0.1:{port}"))
            && s.contains("open 1")
            && (s.contains("auto-") || s.contains("mosq"))
    });
    tmux.type_text("c");
    let status = mosquitto("mosquitto_pub", &["-t", "dash/x", "-m", "over mqtt"])
        .wait()
        .unwrap();
    assert!(status.success());
    let received = sub.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&received.stdout), "over mqtt\n");
    tmux.send(&["C-c"]);
    assert_eq!(wait_for_file(&exit_file).trim(), "0");
}
