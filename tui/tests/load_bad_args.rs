//! Bad arguments exit 2 before anything runs, with a message naming the problem, and leave no file.

use assert_cmd::Command;

fn refused(args: &[&str], expect_in_message: &str) {
    let out = Command::cargo_bin("switchyard")
        .unwrap()
        .arg("load")
        .args(args)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{args:?} should exit 2");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(expect_in_message), "{args:?}: {err}");
    assert!(out.stdout.is_empty(), "{args:?} printed a summary");
}

#[test]
fn zero_publishers_are_refused() {
    refused(&["--publishers", "0"], "--publishers");
}

#[test]
fn zero_capacity_is_refused() {
    refused(&["--capacity", "0"], "--capacity");
}

#[test]
fn a_malformed_duration_is_refused() {
    refused(&["--duration", "10 parsecs"], "--duration");
    refused(&["--duration", "0s"], "--duration");
}

#[test]
fn an_unknown_policy_is_refused() {
    refused(&["--policy", "drop-everything"], "--policy");
}

#[test]
fn an_only_that_matches_no_scenario_is_refused_naming_them() {
    refused(
        &["--scenarios", "--only", "nothing-like-it"],
        "matches no scenario; the scenarios are: ",
    );
}

#[test]
fn preallocate_on_an_engine_that_decides_its_own_allocation_is_refused() {
    for engine in ["naive", "floor", "floor-lazy"] {
        refused(
            &["--engine", engine, "--filters", "exact", "--preallocate"],
            "--preallocate is for --engine switchyard",
        );
    }
}

#[test]
fn more_slow_subscriptions_than_subscriptions_are_refused() {
    refused(&["--subscribers", "2", "--slow", "3:1ms"], "--slow");
}

#[test]
fn an_mqtt_address_that_is_not_host_port_or_does_not_resolve_is_refused() {
    refused(
        &["--mqtt", "no-such-host.invalid:1883"],
        "cannot resolve host",
    );
    refused(&["--mqtt", "127.0.0.1"], "has no port");
    refused(&["--mqtt", ""], "the address is empty");
    refused(&["--mqtt", ":1883"], "has no host");
    refused(&["--mqtt", "localhost:99999"], "not a port");
}

#[test]
fn an_mqtt_broker_that_refuses_the_connection_is_named_with_the_reason() {
    // A free port: nothing listens there, so the connection is refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = Command::cargo_bin("switchyard")
        .unwrap()
        .args(["load", "--no-progress", "--messages", "10", "--mqtt"])
        .arg(format!("localhost:{port}"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("--mqtt localhost:{port}: cannot connect"))
            && err.contains("refused"),
        "{err}"
    );
}

#[test]
fn an_unwritable_json_path_is_refused_before_the_run_and_no_file_is_left() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-dir").join("out.json");
    refused(
        &["--messages", "10", "--json", missing.to_str().unwrap()],
        missing.to_str().unwrap(),
    );
    assert!(!missing.exists());
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "nothing left behind"
    );
}

#[test]
fn help_documents_every_option_with_its_default() {
    let out = Command::cargo_bin("switchyard")
        .unwrap()
        .args(["load", "--help"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for opt in [
        "--publishers",
        "--subscribers",
        "--receivers",
        "--topics",
        "--filters",
        "--payload",
        "--rate",
        "--duration",
        "--messages",
        "--capacity",
        "--policy",
        "--slow",
        "--seed",
        "--latency-every",
        "--json",
        "--stats-every",
        "--stats-jsonl",
        "--no-drain",
    ] {
        assert!(help.contains(opt), "--help lacks {opt}");
    }
    for default in [
        "[default: 1]",
        "[default: 10s]",
        "[default: 256]",
        "[default: drop-newest]",
        "[default: 64]",
    ] {
        assert!(help.contains(default), "--help lacks {default}");
    }
}
