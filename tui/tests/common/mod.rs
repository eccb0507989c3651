//! Helpers shared by the end-to-end tests that drive the real binary: in tmux, or for its JSON.

// Each test target compiles this module on its own and uses only part of it.
#![allow(dead_code)]

pub mod tmux;

#[path = "../../../tests/support/process.rs"]
mod process;
#[allow(unused_imports)] // as dead_code above: not every test file spawns the binary
pub use process::{Killed, wait_or_kill};

/// The binary under test.
pub fn switchyard() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
}

/// The MQTT address in `serve`'s first line (`switchyard serve: MQTT on ADDR ...`).
pub fn mqtt_address(line: &str) -> String {
    line.split("MQTT on ")
        .nth(1)
        .and_then(|rest| rest.split([' ', ',']).next())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_string()
}

/// A free loopback port: bound, then released for the process under test.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("a loopback port is free")
        .local_addr()
        .expect("the bound port")
        .port()
}

/// The stdout of a run of the binary (usually with `--json -`) parsed as JSON; fails the test with
/// the run's stderr unless it exited successfully.
pub fn json_output(out: std::process::Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("stdout is JSON")
}

/// `switchyard load --no-progress --json - ARGS`: its final snapshot, after checking it succeeded.
pub fn load_json(args: &[&str]) -> serde_json::Value {
    json_output(
        assert_cmd::Command::cargo_bin("switchyard")
            .expect("the switchyard binary is built")
            .args(["load", "--no-progress", "--json", "-"])
            .args(args)
            .output()
            .expect("the binary runs"),
    )
}
