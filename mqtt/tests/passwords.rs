//! Password files: one made by `mosquitto_passwd` read by the listener, with `mosquitto_pub` logging in
//! with the right and wrong passwords and without any; the exact CONNACK codes on a raw socket; the
//! delay failed attempts earn; and one of our own hashes read by a real Mosquitto.
//! `scripts/test.sh` installs mosquitto and mosquitto-clients; a missing tool fails these tests.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

mod bridge_common;
mod common;

use bytes::BytesMut;
use rumqttc::{Connect, Login};
use switchyard::Broker;
use switchyard_mqtt::{MqttConfig, MqttServer, MqttStats};
use switchyard_mqtt::{PasswordFile, PasswordHash};

use bridge_common::{Mosquitto, free_port};
use common::{runtime, wait_or_kill};

fn mosquitto_passwd_file(dir: &Path, user: &str, password: &str) -> std::path::PathBuf {
    let file = dir.join("passwords");
    let status = Command::new("mosquitto_passwd")
        .args(["-c", "-b"])
        .arg(&file)
        .args([user, password])
        .stdout(Stdio::null())
        .status()
        .expect("mosquitto_passwd runs (scripts/test.sh installs mosquitto)");
    assert!(status.success());
    file
}

fn server(rt: &tokio::runtime::Runtime, file: &Path) -> MqttServer {
    let passwords = PasswordFile::load(file).unwrap();
    let config = MqttConfig::default()
        .sys_interval(None)
        .password_file(Some(passwords));
    rt.block_on(MqttServer::bind("127.0.0.1:0", Broker::new(), config))
        .unwrap()
}

fn mosquitto_pub(addr: SocketAddr, login: &[&str]) -> Output {
    let mut child = Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &addr.port().to_string()])
        .args(["-q", "1", "-t", "t/1", "-m", "hello"])
        .args(login)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mosquitto_pub runs (scripts/test.sh installs mosquitto-clients)");
    wait_or_kill(&mut child, Duration::from_secs(20));
    child.wait_with_output().unwrap()
}

/// Sends a CONNECT on a raw socket and returns the CONNACK's return code.
fn connack_code(addr: SocketAddr, login: Option<(&str, &str)>) -> u8 {
    let mut connect = Connect::new("raw");
    connect.login = login.map(|(u, p)| Login::new(u, p));
    let mut bytes = BytesMut::new();
    connect.write(&mut bytes).unwrap();
    let mut socket = TcpStream::connect(addr).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    socket.write_all(&bytes).unwrap();
    let mut connack = [0u8; 4];
    socket.read_exact(&mut connack).unwrap();
    assert_eq!(connack[..2], [0x20, 0x02], "a CONNACK");
    connack[3]
}

fn wait_stats(server: &MqttServer, what: &str, done: impl Fn(&MqttStats) -> bool) -> MqttStats {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let stats = server.stats();
        if done(&stats) {
            return stats;
        }
        assert!(Instant::now() < deadline, "{what}: {:?}", stats.auth);
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_mosquitto_passwd_file_admits_the_right_password_only() {
    let dir = tempfile::tempdir().unwrap();
    let file = mosquitto_passwd_file(dir.path(), "alice", "s3cret");
    let rt = runtime();
    let server = server(&rt, &file);
    let addr = server.local_addr();

    let right = mosquitto_pub(addr, &["-u", "alice", "-P", "s3cret"]);
    assert!(right.status.success(), "{right:?}");

    let wrong = mosquitto_pub(addr, &["-u", "alice", "-P", "wrong"]);
    assert!(!wrong.status.success());
    let err = String::from_utf8_lossy(&wrong.stderr);
    assert!(err.contains("bad user name or password"), "{err}");

    let unknown = mosquitto_pub(addr, &["-u", "mallory", "-P", "s3cret"]);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("bad user name or password"));

    // Anonymous, on loopback: refused all the same.
    let anonymous = mosquitto_pub(addr, &[]);
    assert!(!anonymous.status.success());
    let err = String::from_utf8_lossy(&anonymous.stderr);
    assert!(err.contains("not authorised"), "{err}");

    let stats = wait_stats(&server, "four logins counted", |s| {
        s.closed_by_reason.refused == 3 && s.open == 0
    });
    assert!(stats.auth.password_file);
    assert_eq!(stats.auth.accepted, 1);
    assert_eq!(stats.auth.refused_by_reason.bad_user_name_or_password, 2);
    assert_eq!(stats.auth.refused_by_reason.no_user_name, 1);
    assert_eq!(stats.auth.delayed, 3);
    assert!(stats.balances());
}

#[test]
fn refusals_carry_connack_4_or_5_and_wait_longer_each_time() {
    let dir = tempfile::tempdir().unwrap();
    let file = mosquitto_passwd_file(dir.path(), "alice", "s3cret");
    let rt = runtime();
    let server = server(&rt, &file);
    let addr = server.local_addr();

    assert_eq!(connack_code(addr, Some(("alice", "s3cret"))), 0);
    assert_eq!(connack_code(addr, None), 5, "no user name: not authorized");
    assert_eq!(connack_code(addr, Some(("alice", "nope"))), 4);
    let started = Instant::now();
    assert_eq!(connack_code(addr, Some(("bob", "s3cret"))), 4);
    // The address's third failure: 100 ms, then 200, then 400 before this CONNACK.
    assert!(started.elapsed() >= Duration::from_millis(400));

    let stats = wait_stats(&server, "counted", |s| s.open == 0);
    assert_eq!(stats.auth.refused_by_reason.no_user_name, 1);
    assert_eq!(stats.auth.refused_by_reason.bad_user_name_or_password, 2);
    assert_eq!(stats.auth.delayed, 3);
    assert_eq!(stats.auth.delay_ms, 100 + 200 + 400);
    assert_eq!(stats.auth.delay_addresses, 1);
    // A success forgets the address's failures.
    assert_eq!(connack_code(addr, Some(("alice", "s3cret"))), 0);
    let stats = wait_stats(&server, "forgotten", |s| s.open == 0);
    assert_eq!(stats.auth.delay_addresses, 0);
    assert_eq!(stats.auth.accepted, 2);
}

#[test]
fn without_a_password_file_user_names_are_ignored() {
    let rt = runtime();
    let server = rt
        .block_on(MqttServer::bind(
            "127.0.0.1:0",
            Broker::new(),
            MqttConfig::default().sys_interval(None),
        ))
        .unwrap();
    assert_eq!(connack_code(server.local_addr(), None), 0);
    assert_eq!(connack_code(server.local_addr(), Some(("x", "y"))), 0);
    assert!(!server.stats().auth.password_file);
}

#[test]
fn our_hashes_are_read_by_a_real_mosquitto() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("passwords");
    let hash = PasswordHash::new(b"open sesame").unwrap();
    std::fs::write(&file, format!("carol:{hash}\n")).unwrap();
    let port = free_port();
    let mosquitto = Mosquitto::start_with_password_file(port, &file);
    assert!(mosquitto.publish("t/1", "hi", Some(("carol", "open sesame"))));
    assert!(!mosquitto.publish("t/1", "hi", Some(("carol", "open sesame!"))));
    assert!(!mosquitto.publish("t/1", "hi", None));
}
