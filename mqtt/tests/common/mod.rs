//! Helpers shared by the integration tests.

#![allow(dead_code)] // each test file uses some of them

use std::net::SocketAddr;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use switchyard_mqtt::MqttServer;

pub mod raw;

/// Starts a mosquitto client (`mosquitto_pub`, `mosquitto_sub`) against `addr` with `args`, its
/// output piped.
pub fn spawn(tool: &str, addr: SocketAddr, args: &[&str]) -> Child {
    Command::new(tool)
        .args(["-h", &addr.ip().to_string(), "-p", &addr.port().to_string()])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{tool} runs (scripts/test.sh installs mosquitto-clients): {e}"))
}

/// Runs a mosquitto client to its end, killing it after `limit`.
pub fn finish(mut child: Child, limit: Duration) -> Output {
    wait_or_kill(&mut child, limit);
    child.wait_with_output().unwrap()
}

/// Runs a mosquitto client to its end, killing it after 20 s.
pub fn run(tool: &str, addr: SocketAddr, args: &[&str]) -> Output {
    finish(spawn(tool, addr, args), Duration::from_secs(20))
}

/// A client's standard output, as text.
pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Waits until the session `client_id` has `subscriptions` subscriptions.
pub fn wait_subscribed(server: &MqttServer, client_id: &str, subscriptions: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while server
        .stats()
        .client(client_id)
        .is_none_or(|c| c.subscriptions.len() < subscriptions)
    {
        assert!(Instant::now() < deadline, "{client_id} never subscribed");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A two-worker tokio runtime for tests that drive blocking clients from the test thread.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[path = "../../../tests/support/process.rs"]
mod process;
#[allow(unused_imports)] // as dead_code above: not every test file waits for a child
pub use process::{Killed, wait_or_kill};

#[path = "../../../tests/support/certs.rs"]
pub mod certs;
