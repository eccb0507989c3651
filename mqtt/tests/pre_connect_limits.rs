//! Sockets that never send CONNECT cannot crowd legitimate clients out: they have their own bound
//! (`MqttConfig::max_pending_connects`, the oldest closed first, counted `pending_limit`) apart from
//! `max_connections`, and a listener out of file descriptors counts the failed accepts, frees the
//! oldest of them, backs off and keeps accepting.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use bytes::BytesMut;
use rumqttc::{ConnectReturnCode, Packet};
use switchyard::Broker;
use switchyard_mqtt::{MqttConfig, MqttServer, MqttStats, decode};

use common::{runtime, wait_or_kill};

/// Connects, sends CONNECT, and returns CONNACK's return code (`None`: closed, or nothing within
/// `limit`).
fn connack(addr: SocketAddr, id: &str, limit: Duration) -> Option<ConnectReturnCode> {
    let mut stream = TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(limit)).unwrap();
    let mut buf = BytesMut::new();
    Packet::Connect(rumqttc::Connect::new(id))
        .write(&mut buf, usize::MAX)
        .unwrap();
    stream.write_all(&buf).ok()?;
    buf.clear();
    loop {
        if let Some(Packet::ConnAck(ack)) = decode(&mut buf, 1 << 20).ok()? {
            return Some(ack.code);
        }
        let mut chunk = [0u8; 64];
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Whether the server closed `stream` (end of file or reset) within `limit`.
fn closed_within(stream: &mut TcpStream, limit: Duration) -> bool {
    stream.set_read_timeout(Some(limit)).unwrap();
    let mut byte = [0u8; 1];
    match stream.read(&mut byte) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    }
}

fn wait_for(server: &MqttServer, what: &str, done: impl Fn(&MqttStats) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !done(&server.stats()) {
        assert!(Instant::now() < deadline, "{what}: {:?}", server.stats());
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn idle_sockets_before_connect_are_bounded_apart_and_do_not_crowd_out_a_client() {
    let rt = runtime();
    // A long CONNECT deadline, so only the pending bound can close the idle sockets in time.
    let config = MqttConfig::default()
        .max_connections(10)
        .max_pending_connects(4)
        .connect_timeout(Duration::from_secs(30))
        .sys_interval(None);
    let server = rt
        .block_on(MqttServer::bind("127.0.0.1:0", Broker::new(), config))
        .unwrap();
    let addr = server.local_addr();
    let mut idle: Vec<TcpStream> = (0..12).map(|_| TcpStream::connect(addr).unwrap()).collect();
    wait_for(&server, "12 accepted", |s| s.accepted == 12);
    assert_eq!(
        connack(addr, "legit", Duration::from_secs(5)),
        Some(ConnectReturnCode::Success),
        "{:?}",
        server.stats()
    );
    // 12 idle and the client's own socket came in with room for 4 waiting: the 9 oldest were closed.
    wait_for(&server, "9 closed", |s| {
        s.closed_by_reason.pending_limit == 9
    });
    for (i, socket) in idle.iter_mut().enumerate() {
        let closed = closed_within(
            socket,
            Duration::from_millis(if i < 9 { 2000 } else { 100 }),
        );
        assert_eq!(closed, i < 9, "idle socket {i}");
    }
    let stats = server.stats();
    assert_eq!(stats.pending, 3, "{stats:?}");
    assert!(stats.balances(), "{stats:?}");
}

/// Set for the child process of the file-descriptor test.
const CHILD: &str = "SWITCHYARD_MQTT_FD_CHILD";

/// The child of `running_out_of_file_descriptors_is_counted_and_the_listener_recovers`, run by it
/// under `ulimit -n 64` (ignored otherwise): serves MQTT, prints `port N`, and when its standard input
/// closes (or after 40 s) prints `stats JSON` on a line of its own and ends.
#[test]
#[ignore = "run by running_out_of_file_descriptors_is_counted_and_the_listener_recovers"]
fn fd_child() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    let rt = runtime();
    let config = MqttConfig::default()
        .connect_timeout(Duration::from_secs(30))
        .sys_interval(None);
    let server = rt
        .block_on(MqttServer::bind("127.0.0.1:0", Broker::new(), config))
        .unwrap();
    println!("port {}", server.local_addr().port());
    std::io::stdout().flush().unwrap();
    // Until standard input closes, or 40 s at most, so the parent never waits on a lost child.
    let (closed, stdin_closed) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        let _ = closed.send(());
    });
    let _ = stdin_closed.recv_timeout(Duration::from_secs(40));
    println!(
        "\nstats {}",
        serde_json::to_string(&server.stats()).unwrap()
    );
    std::io::stdout().flush().unwrap();
}

#[test]
fn running_out_of_file_descriptors_is_counted_and_the_listener_recovers() {
    let test_binary = std::env::current_exe().unwrap();
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(r#"ulimit -n 64 && exec "$0" --exact fd_child --ignored --nocapture --test-threads 1"#)
        .arg(&test_binary)
        .env(CHILD, "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let port: u16 = lines
        .by_ref()
        .map_while(Result::ok)
        // The harness prints `test fd_child ... ` before it on the same line.
        .find_map(|line| Some(line.split_once("port ")?.1.trim().parse().unwrap()))
        .expect("the child prints its port");
    let addr = SocketAddr::from(([127, 0, 0, 1], port));

    // 300 sockets that never send CONNECT, far more than 64 descriptors.
    let idle: Vec<TcpStream> = (0..300)
        .map_while(|_| TcpStream::connect(addr).ok())
        .collect();
    assert_eq!(idle.len(), 300, "the backlog took every connection");
    // A client behind them still gets in, well before their 30 s CONNECT deadline.
    let started = Instant::now();
    let code = connack(addr, "legit", Duration::from_secs(10));
    let waited = started.elapsed();
    drop(child.stdin.take());
    let stats: MqttStats = lines
        .map_while(Result::ok)
        .find_map(|line| {
            line.strip_prefix("stats ")
                .map(|s| serde_json::from_str(s).unwrap())
        })
        .expect("the child prints its stats");
    wait_or_kill(&mut child, Duration::from_secs(10));
    drop(idle);
    eprintln!(
        "CONNACK after {waited:?}; accept errors {}, closed pending {}",
        stats.accept_errors, stats.closed_by_reason.pending_limit
    );
    assert_eq!(code, Some(ConnectReturnCode::Success), "{stats:?}");
    assert!(stats.accept_errors > 0, "{stats:?}");
    assert!(stats.closed_by_reason.pending_limit > 0, "{stats:?}");
    // Backing off, not spinning: at most one failed accept per socket it had to make room for.
    assert!(stats.accept_errors <= 400, "{stats:?}");
}
