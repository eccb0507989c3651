//! Every MQTT 3.1.1 behaviour of the listener, checked by a real client library: paho-mqtt (Python)
//! and raw sockets, in `tests/clients/behaviours.py`. `scripts/test.sh` installs paho-mqtt; a missing
//! `python3` or paho fails this test rather than skipping it.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use switchyard::Broker;
use switchyard_mqtt::{MqttConfig, MqttServer};

use common::wait_or_kill;

/// Runs the script against `addr`, killing it after `limit`; returns its stdout, or panics with its
/// output.
fn run_behaviours(addr: std::net::SocketAddr, limit: Duration) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/behaviours.py");
    let mut child = Command::new("python3")
        .arg(&script)
        .arg(addr.ip().to_string())
        .arg(addr.port().to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs (scripts/test.sh installs paho-mqtt)");
    let status = wait_or_kill(&mut child, limit);
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        status.success(),
        "behaviours.py failed ({status}):\n{stdout}\n{stderr}"
    );
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paho_and_raw_clients_see_every_mqtt_3_1_1_behaviour() {
    let broker = Broker::new();
    let config = MqttConfig::default().sys_interval(Some(Duration::from_millis(200)));
    let server = MqttServer::bind("127.0.0.1:0", broker.clone(), config)
        .await
        .unwrap();
    let addr = server.local_addr();
    let stdout =
        tokio::task::spawn_blocking(move || run_behaviours(addr, Duration::from_secs(120)))
            .await
            .unwrap();
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("ok ")).count(),
        19,
        "{stdout}"
    );

    // Give the last connections a moment to be counted closed.
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.stats().open > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stats = server.stats();
    let closed = stats.closed_by_reason;
    assert!(stats.balances(), "{stats:?}");
    assert_eq!(stats.open, 0);
    assert_eq!(closed.malformed, 2, "{closed:?}");
    assert!(closed.protocol_error >= 3, "{closed:?}");
    assert!(closed.refused >= 3, "{closed:?}");
    assert_eq!(closed.keep_alive_timeout, 1, "{closed:?}");
    assert!(closed.taken_over >= 1, "{closed:?}");
    assert!(stats.wills_published >= 2, "{stats:?}");
    assert!(broker.stats().balances());
}
