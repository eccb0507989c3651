//! Addresses and filters on the command line (issue 18, rows 10 and 15): host names resolve, bad
//! arguments exit 2 naming the argument (a bridge without --mqtt or without a filter too), several
//! bridge filters follow one option, `serve` runs with
//! only the endpoint, and a non-loopback MQTT address needs `--mqtt-password-file` or
//! `--mqtt-allow-anonymous`.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{Killed, switchyard};

/// Runs `args`, which must be refused at once with exit 2 and every `needles` in the message.
fn refused(args: &[&str], needles: &[&str]) {
    let mut child = Killed(
        switchyard()
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // Bounded: a command that is wrongly accepted runs until killed.
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "{args:?} was not refused: it runs"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    child
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(status.code(), Some(2), "{args:?}: {stderr}");
    for needle in needles {
        assert!(
            stderr.contains(needle),
            "{args:?} should say {needle:?}: {stderr}"
        );
    }
}

/// Starts `serve ARGS`, sends SIGTERM once `ready` is seen on stderr or stdout, and returns both.
fn serve_until(args: &[&str], ready: &str) -> (String, String) {
    let mut child = Killed(
        switchyard()
            .arg("serve")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stderr = child.0.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line.clone());
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let mut stdout = BufReader::new(child.0.stdout.take().unwrap());
    let mut first = String::new();
    if !ready.starts_with("switchyard:") {
        stdout.read_line(&mut first).unwrap();
        assert!(first.contains(ready), "{args:?}: {first}");
    } else {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let line = rx
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .unwrap_or_else(|_| panic!("{args:?}: never said {ready:?}"));
            if line.contains(ready) {
                break;
            }
        }
    }
    let killed = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.0.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "{args:?} did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    (first + &rest, reader.join().unwrap())
}

#[test]
fn host_names_resolve_for_mqtt_and_serve() {
    let (stdout, _) = serve_until(
        &["--mqtt", "localhost:0", "--serve", "localhost:0"],
        "MQTT on ",
    );
    assert!(
        stdout.contains("MQTT on 127.0.0.1:") || stdout.contains("MQTT on [::1]:"),
        "{stdout}"
    );
}

#[test]
fn bad_addresses_exit_2_naming_the_argument() {
    refused(
        &["stats", "--attach", "127.0.0.1", "--once"],
        &["--attach", "port"],
    );
    refused(&["stats", "--attach", "", "--once"], &["--attach", "empty"]);
    refused(
        &["dashboard", "--attach", "127.0.0.1"],
        &["--attach", "port"],
    );
    refused(
        &["serve", "--mqtt", "no-such-host.invalid:1883"],
        &["--mqtt", "no-such-host.invalid", "IP address"],
    );
    refused(&["serve", "--serve", "127.0.0.1"], &["--serve", "port"]);
}

#[test]
fn several_bridge_filters_follow_one_option_as_the_readme_writes_them() {
    let (stdout, _) = serve_until(
        &[
            "--mqtt",
            "127.0.0.1:0",
            "--bridge",
            "mqtt://127.0.0.1:1",
            "--bridge-out",
            "a/#",
            "b/#",
            "--bridge-in",
            "c/+",
            "d/#",
        ],
        "MQTT on ",
    );
    for filter in ["\"a/#\"", "\"b/#\"", "\"c/+\"", "\"d/#\""] {
        assert!(stdout.contains(filter), "{filter}: {stdout}");
    }
}

#[test]
fn an_invalid_bridge_filter_exits_2_naming_it() {
    let base = [
        "serve",
        "--mqtt",
        "127.0.0.1:0",
        "--bridge",
        "mqtt://127.0.0.1:1",
    ];
    refused(
        &[&base[..], &["--bridge-out", "a/#/b"]].concat(),
        &["--bridge-out", "a/#/b"],
    );
    refused(
        &[&base[..], &["--bridge-in", "x/y#"]].concat(),
        &["--bridge-in", "x/y#"],
    );
}

#[test]
fn a_bridge_without_mqtt_or_without_filters_exits_2_naming_what_is_missing() {
    let url = "mqtt://127.0.0.1:1"; // refused: nothing listens on port 1
    // Before the terminal check: exit 2 naming the options, not "needs a terminal" with 1.
    for dashboard in [&["dashboard"][..], &[]] {
        refused(
            &[dashboard, &["--bridge", url, "--bridge-out", "a/#"]].concat(),
            &["--bridge", "--mqtt ADDR"],
        );
    }
    refused(
        &[
            "dashboard",
            "--attach",
            "127.0.0.1:9",
            "--bridge",
            url,
            "--bridge-in",
            "a/#",
        ],
        &["--bridge", "--mqtt ADDR"],
    );
    for command in ["serve", "dashboard"] {
        refused(
            &[command, "--mqtt", "127.0.0.1:0", "--bridge", url],
            &["--bridge", "--bridge-out", "--bridge-in"],
        );
    }
}

#[test]
fn serve_runs_with_only_the_endpoint_and_needs_one_of_the_two() {
    let (_, stderr) = serve_until(&["--serve", "127.0.0.1:0"], "switchyard: stats endpoint on");
    assert!(stderr.contains("http://127.0.0.1:"), "{stderr}");
    refused(&["serve"], &["--mqtt", "--serve"]);
}

#[test]
fn a_non_loopback_mqtt_address_needs_a_password_file_or_the_opt_in_and_loopback_does_not() {
    // Every non-loopback address below is refused before anything binds: nothing listens beyond
    // loopback.
    refused(
        &["serve", "--mqtt", "0.0.0.0:0"], // refused
        &["--mqtt-password-file", "--mqtt-allow-anonymous", "0.0.0.0"], // refused
    );
    refused(
        &["dashboard", "--mqtt", "0.0.0.0:0", "--no-demo"], // refused
        &["--mqtt-password-file", "--mqtt-allow-anonymous"],
    );
    refused(
        &["serve", "--serve", "127.0.0.1:0", "--mqtt-allow-anonymous"],
        &["--mqtt"],
    );
    refused(
        &[
            "serve",
            "--serve",
            "127.0.0.1:0",
            "--mqtt-password-file",
            "pw",
        ],
        &["--mqtt"],
    );
    refused(
        &[
            "serve",
            "--mqtt",
            "127.0.0.1:0",
            "--mqtt-password-file",
            "pw",
            "--mqtt-allow-anonymous",
        ],
        &["--mqtt-allow-anonymous", "--mqtt-password-file"],
    );
    // The retired opt-in is gone.
    refused(
        &["serve", "--mqtt", "0.0.0.0:0", "--mqtt-non-loopback"], // refused
        &["--mqtt-non-loopback"],
    );
    serve_until(&["--mqtt", "127.0.0.1:0"], "MQTT on 127.0.0.1:");
}
