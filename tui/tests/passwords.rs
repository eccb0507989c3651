//! Password files on the binary: `switchyard passwd` writes files a real Mosquitto reads, and
//! `switchyard serve --mqtt-password-file` reads files `mosquitto_passwd` writes, with mosquitto_pub
//! logging in with the right password, the wrong one and none. Loopback only; every wait bounded.
//! `scripts/test.sh` installs mosquitto and mosquitto-clients.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{Killed, mqtt_address, switchyard};

#[path = "../../mqtt/tests/bridge_common/mod.rs"]
mod bridge_common;

use bridge_common::{Mosquitto, free_port};

/// Runs `switchyard ARGS` with `stdin` as its standard input, killed after 20 s.
fn run(args: &[&str], stdin: &str) -> Output {
    let mut child = Killed(
        switchyard()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    child
        .0
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.0.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "{args:?} did not end");
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut out = Output {
        status: child.0.wait().unwrap(),
        stdout: Vec::new(),
        stderr: Vec::new(),
    };
    child
        .0
        .stdout
        .take()
        .unwrap()
        .read_to_end(&mut out.stdout)
        .unwrap();
    child
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_end(&mut out.stderr)
        .unwrap();
    out
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn users(file: &Path) -> Vec<String> {
    std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .map(|line| line.split(':').next().unwrap().to_string())
        .collect()
}

fn mosquitto_pub(port: &str, login: &[&str]) -> Output {
    let mut child = Killed(
        Command::new("mosquitto_pub")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                port,
                "-q",
                "1",
                "-t",
                "t/1",
                "-m",
                "x",
            ])
            .args(login)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("mosquitto_pub runs (scripts/test.sh installs mosquitto-clients)"),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.0.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "mosquitto_pub did not end");
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut out = Output {
        status: child.0.wait().unwrap(),
        stdout: Vec::new(),
        stderr: Vec::new(),
    };
    child
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_end(&mut out.stderr)
        .unwrap();
    out
}

#[test]
fn switchyard_passwd_writes_a_private_file_that_mosquitto_reads() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("passwords");
    let f = file.to_str().unwrap();

    let made = run(&["passwd", "-c", "-b", f, "alice", "first"], "");
    assert!(made.status.success(), "{}", stderr(&made));
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.starts_with("alice:$7$101$"), "{text}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    }
    // From a line of standard input (not a terminal); then alice's password changes in place.
    assert!(run(&["passwd", f, "bob"], "from stdin\n").status.success());
    assert!(
        run(&["passwd", "-b", f, "alice", "second"], "")
            .status
            .success()
    );
    assert!(
        run(&["passwd", "-b", f, "carol", "third"], "")
            .status
            .success()
    );
    assert!(run(&["passwd", "-D", f, "carol"], "").status.success());
    assert_eq!(users(&file), ["alice", "bob"]);
    let missing = run(&["passwd", "-D", f, "carol"], "");
    assert!(!missing.status.success());
    assert!(stderr(&missing).contains("carol"), "{}", stderr(&missing));

    let mosquitto = Mosquitto::start_with_password_file(free_port(), &file);
    assert!(mosquitto.publish("t/1", "hi", Some(("alice", "second"))));
    assert!(mosquitto.publish("t/1", "hi", Some(("bob", "from stdin"))));
    assert!(!mosquitto.publish("t/1", "hi", Some(("alice", "first"))));
    assert!(!mosquitto.publish("t/1", "hi", Some(("carol", "third"))));
    assert!(!mosquitto.publish("t/1", "hi", None));
}

#[test]
fn switchyard_passwd_refuses_what_a_file_cannot_hold() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("pw");
    let f = f.to_str().unwrap();
    let no_file = run(&["passwd", "-b", f, "alice", "x"], "");
    assert!(stderr(&no_file).contains("-c"), "{}", stderr(&no_file));
    let colon = run(&["passwd", "-c", "-b", f, "a:b", "x"], "");
    assert_eq!(colon.status.code(), Some(2), "{}", stderr(&colon));
    let no_b = run(&["passwd", "-c", f, "alice", "x"], "");
    assert_eq!(no_b.status.code(), Some(2));
    assert!(stderr(&no_b).contains("-b"), "{}", stderr(&no_b));
    let empty = run(&["passwd", "-c", f, "alice"], "\n");
    assert!(!empty.status.success());
    assert!(stderr(&empty).contains("empty"), "{}", stderr(&empty));
    // A file that does not parse is not rewritten; its bad line is named.
    std::fs::write(f, "# users\nalice plaintext\n").unwrap();
    let bad = run(&["passwd", "-b", f, "bob", "x"], "");
    assert!(stderr(&bad).contains("line 2"), "{}", stderr(&bad));
    assert_eq!(
        std::fs::read_to_string(f).unwrap(),
        "# users\nalice plaintext\n"
    );
}

#[test]
fn serve_reads_a_mosquitto_passwd_file_and_counts_refusals_by_reason() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("passwords");
    let status = Command::new("mosquitto_passwd")
        .args(["-c", "-b"])
        .arg(&file)
        .args(["alice", "s3cret"])
        .stdout(Stdio::null())
        .status()
        .expect("mosquitto_passwd runs (scripts/test.sh installs mosquitto)");
    assert!(status.success());
    let snapshot = dir.path().join("final.json");
    let mut server = Killed(
        switchyard()
            .args(["serve", "--mqtt", "127.0.0.1:0", "--mqtt-password-file"])
            .arg(&file)
            .arg("--json")
            .arg(&snapshot)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut stdout = BufReader::new(server.0.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    assert!(
        first.contains("clients log in with the password file"),
        "{first}"
    );
    let addr = mqtt_address(&first);
    let port = addr.rsplit_once(':').unwrap().1.to_string();

    assert!(
        mosquitto_pub(&port, &["-u", "alice", "-P", "s3cret"])
            .status
            .success()
    );
    let wrong = mosquitto_pub(&port, &["-u", "alice", "-P", "nope"]);
    assert!(!wrong.status.success());
    assert!(
        stderr(&wrong).contains("bad user name or password"),
        "{}",
        stderr(&wrong)
    );
    let anonymous = mosquitto_pub(&port, &[]);
    assert!(!anonymous.status.success());
    assert!(
        stderr(&anonymous).contains("not authorised"),
        "{}",
        stderr(&anonymous)
    );

    let killed = Command::new("kill")
        .args(["-TERM", &server.0.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.0.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "serve did not stop");
        std::thread::sleep(Duration::from_millis(20));
    }
    let snapshot: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&snapshot).unwrap()).unwrap();
    let auth = &snapshot["mqtt"]["auth"];
    assert_eq!(auth["password_file"], true, "{auth}");
    assert_eq!(auth["accepted"], 1, "{auth}");
    assert_eq!(
        auth["refused_by_reason"]["bad_user_name_or_password"], 1,
        "{auth}"
    );
    assert_eq!(auth["refused_by_reason"]["no_user_name"], 1, "{auth}");
    assert_eq!(auth["delayed"], 2, "{auth}");
}

#[test]
fn serve_refuses_a_password_file_that_does_not_parse_naming_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("passwords");
    std::fs::write(&file, "# ok\nalice:$7$101$AAAA\n").unwrap();
    let out = run(
        &[
            "serve",
            "--mqtt",
            "127.0.0.1:0",
            "--mqtt-password-file",
            file.to_str().unwrap(),
        ],
        "",
    );
    assert!(!out.status.success());
    assert!(stderr(&out).contains("line 2"), "{}", stderr(&out));
}
