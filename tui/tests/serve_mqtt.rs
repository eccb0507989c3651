//! `switchyard serve --mqtt`: prints the bound address, serves real MQTT clients (mosquitto_pub and
//! mosquitto_sub, installed by scripts/test.sh), stops cleanly on SIGTERM with a summary, and refuses
//! bad options with a message naming them.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn switchyard() -> Command {
    Command::new(env!("CARGO_BIN_EXE_switchyard"))
}

/// Waits up to `limit` for `child` to exit; kills it after that.
fn wait(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            return child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn serve_prints_its_address_serves_mosquitto_clients_and_stops_on_sigterm() {
    let mut server = switchyard()
        .args(["serve", "--mqtt", "127.0.0.1:0", "--sys-interval", "100ms"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(server.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let addr = first
        .split("MQTT on ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no address in {first:?}"))
        .to_string();
    let (host, port) = addr.rsplit_once(':').unwrap();

    // A $SYS round arrives every 100 ms, so this returns without a race with a publish.
    let sys = Command::new("mosquitto_sub")
        .args([
            "-h",
            host,
            "-p",
            port,
            "-t",
            "$SYS/switchyard/clients/connected",
            "-C",
            "2",
            "-W",
            "10",
        ])
        .output()
        .expect("mosquitto_sub runs (scripts/test.sh installs mosquitto-clients)");
    assert!(sys.status.success(), "{sys:?}");
    let published = Command::new("mosquitto_pub")
        .args([
            "-h", host, "-p", port, "-t", "serve/t", "-m", "hello", "-q", "1",
        ])
        .status()
        .unwrap();
    assert!(published.success());

    let killed = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = wait(&mut server, Duration::from_secs(10));
    assert!(status.success(), "{status}");
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    assert!(
        rest.contains("switchyard serve: stopped; 2 connections accepted"),
        "{rest}"
    );
    assert!(rest.contains("\"disconnect\":2"), "{rest}");
}

#[test]
fn serve_refuses_bad_options_naming_them() {
    for (args, expected) in [
        (vec!["serve"], "--mqtt <ADDR>"),
        (
            vec!["serve", "--mqtt", "localhost"],
            "invalid value 'localhost' for '--mqtt <ADDR>'",
        ),
        (
            vec!["serve", "--mqtt", "127.0.0.1:0", "--mqtt-queue", "0"],
            "--mqtt-queue",
        ),
        (
            vec!["serve", "--mqtt", "127.0.0.1:0", "--mqtt-policy", "block"],
            "not allowed for MQTT clients",
        ),
        (
            vec!["serve", "--mqtt", "127.0.0.1:0", "--sys-interval", "0s"],
            "zero",
        ),
    ] {
        let out = switchyard().args(&args).output().unwrap();
        assert!(!out.status.success(), "{args:?} should fail");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}
