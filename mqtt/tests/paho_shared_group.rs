//! A real client dies with QoS 1 messages in hand, and its `$share` group gets them: two paho-mqtt
//! processes (`tests/clients/shared_group.py`) in one group; the first takes ten messages and never
//! acknowledges them, and is killed (SIGKILL: no DISCONNECT, no PUBACK); the second gets all ten at
//! once, each as a first PUBLISH to it (DUP 0), and the broker's books balance with nothing in flight.
//! `scripts/test.sh` installs paho-mqtt; a missing `python3` or paho fails this test.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

mod common;

use switchyard::Broker;
use switchyard_mqtt::{MqttConfig, MqttServer};

use common::{Killed, runtime, wait_or_kill};

const FILTER: &str = "$share/g/jobs/#";
const COUNT: usize = 10;

/// One `shared_group.py` process and the lines it prints.
struct Member {
    process: Killed,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
}

impl Member {
    fn spawn(role: &str, addr: SocketAddr) -> Self {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/shared_group.py");
        let mut child = Command::new("python3")
            .arg(&script)
            .args([role, &addr.ip().to_string(), &addr.port().to_string()])
            .args([FILTER, &COUNT.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 runs (scripts/test.sh installs paho-mqtt)");
        let stdout = child.stdout.take().unwrap();
        let stdin = child.stdin.take();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let member = Self {
            process: Killed(child),
            stdin,
            lines,
        };
        assert_eq!(member.next_line(), "subscribed", "{role}");
        member
    }

    /// The next line it prints, within 10 s.
    fn next_line(&self) -> String {
        self.lines
            .recv_timeout(Duration::from_secs(10))
            .expect("a line from shared_group.py within 10 s")
    }

    /// The next `n` `got PAYLOAD dup=D qos=Q` lines, as (payload, dup, qos).
    fn messages(&self, n: usize) -> Vec<(String, String, String)> {
        (0..n)
            .map(|_| {
                let line = self.next_line();
                let fields: Vec<&str> = line.split(' ').collect();
                match fields[..] {
                    ["got", payload, dup, qos] => {
                        (payload.to_string(), dup.to_string(), qos.to_string())
                    }
                    _ => panic!("expected a message, got {line:?}"),
                }
            })
            .collect()
    }
}

#[test]
fn a_paho_client_killed_with_qos_1_messages_in_hand_hands_them_to_its_group() {
    let rt = runtime();
    let broker = Broker::new();
    let config = MqttConfig::default().sys_interval(None);
    let server = rt
        .block_on(MqttServer::bind("127.0.0.1:0", broker.clone(), config))
        .unwrap();
    let addr = server.local_addr();

    let mut holder = Member::spawn("holder", addr);
    for i in 0..COUNT {
        broker.publish(&format!("jobs/{i}"), i.to_string()).unwrap();
    }
    let held = holder.messages(COUNT);
    assert!(
        held.iter()
            .all(|(_, dup, qos)| dup == "dup=0" && qos == "qos=1"),
        "{held:?}"
    );
    let group = server.stats().client("paho-holder").unwrap().subscriptions[0].id;
    let stats = broker.subscription_stats(group).unwrap();
    assert_eq!((stats.in_flight, stats.delivered), (COUNT as u64, 0));

    let mut worker = Member::spawn("worker", addr);
    assert!(
        worker
            .lines
            .recv_timeout(Duration::from_millis(300))
            .is_err(),
        "nothing for the worker while the holder holds everything"
    );
    holder.process.0.kill().unwrap();
    wait_or_kill(&mut holder.process.0, Duration::from_secs(5));

    let mut got = worker.messages(COUNT);
    assert_eq!(worker.next_line(), "done");
    assert!(
        got.iter()
            .all(|(_, dup, qos)| dup == "dup=0" && qos == "qos=1"),
        "a first PUBLISH to the worker is no retransmission (MQTT 3.1.1 section 3.3.1.1): {got:?}"
    );
    got.sort();
    let mut expected = held;
    expected.sort();
    assert_eq!(got, expected, "the same ten messages, each once");

    // The worker acknowledged each (paho acks after its callback): the group's books.
    let deadline = Instant::now() + Duration::from_secs(5);
    let stats = loop {
        let stats = broker.subscription_stats(group).unwrap();
        if stats.delivered == COUNT as u64 || Instant::now() > deadline {
            break stats;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let ack = stats.ack.unwrap();
    assert_eq!(
        (
            stats.matched,
            stats.delivered,
            stats.in_flight,
            stats.dropped
        ),
        (COUNT as u64, COUNT as u64, 0, 0),
        "{stats:#?}"
    );
    assert_eq!(
        (ack.handed_back, ack.redelivered),
        (COUNT as u64, COUNT as u64)
    );
    assert!(broker.stats().balances());
    assert_eq!(server.stats().closed_by_reason.peer_closed, 1);

    // The worker leaves cleanly: it was the last member, so the group goes.
    worker.stdin.take().unwrap().write_all(b"quit\n").unwrap();
    let status = wait_or_kill(&mut worker.process.0, Duration::from_secs(10));
    assert!(status.success(), "worker: {status}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.stats().shared_groups > 0 {
        assert!(Instant::now() < deadline, "{:#?}", server.stats());
        std::thread::sleep(Duration::from_millis(10));
    }
    let stats = broker.stats();
    assert!(broker.subscription_stats(group).is_none());
    let totals = stats.totals;
    assert_eq!(
        (
            totals.matched,
            totals.delivered,
            totals.dropped,
            totals.in_flight
        ),
        (COUNT as u64, COUNT as u64, 0, 0)
    );
    assert!(stats.balances());
    assert!(server.stats().balances());
}
