//! SIGTERM to `switchyard serve` closes the MQTT connections first, then takes the final snapshot
//! (issue 18, row 12): a client still connected is counted closed by `shutdown`, none left open.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{Killed, mqtt_address, switchyard};

/// CONNECT, MQTT 3.1.1, clean session, keep-alive 60 s, client id `c1`.
const CONNECT: [u8; 16] = [
    0x10, 14, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 60, 0, 2, b'c', b'1',
];

#[test]
fn sigterm_closes_connections_before_the_final_snapshot() {
    let mut server = Killed(
        switchyard()
            .args(["serve", "--mqtt", "127.0.0.1:0", "--json", "-"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut stderr = BufReader::new(server.0.stderr.take().unwrap());
    let mut first = String::new();
    stderr.read_line(&mut first).unwrap();
    let addr = mqtt_address(&first);
    let mut client = TcpStream::connect(&addr).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    client.write_all(&CONNECT).unwrap();
    let mut connack = [0u8; 4];
    client.read_exact(&mut connack).unwrap();
    assert_eq!(connack, [0x20, 2, 0, 0], "CONNACK accepted");

    let killed = Command::new("kill")
        .args(["-TERM", &server.0.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.0.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "serve did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut stdout = String::new();
    server
        .0
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    let snapshot: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let mqtt = &snapshot["mqtt"];
    assert_eq!(mqtt["open"], 0, "{mqtt}");
    assert_eq!(mqtt["closed_by_reason"]["shutdown"], 1, "{mqtt}");
}
