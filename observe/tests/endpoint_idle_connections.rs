//! Connections that have not sent a request have their own small bound and a short deadline, so idle
//! sockets cannot keep real requests out (issue 18, row 7, the HTTP part). Raw sockets on loopback.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use switchyard::Broker;
use switchyard_observe::{Client, ServeOptions, StatsParams, serve};

#[test]
fn idle_sockets_do_not_keep_real_requests_out() {
    let broker = Broker::new();
    let h = serve(
        &broker,
        ServeOptions::default().addr("127.0.0.1:0".parse().unwrap()),
    )
    .unwrap();
    // 128 sockets that connect and say nothing, or half a request line.
    let idle: Vec<TcpStream> = (0..128)
        .map(|i| {
            let mut s = TcpStream::connect(h.local_addr()).unwrap();
            if i % 2 == 0 {
                s.write_all(b"GET /healthz HTTP/1.1\r\n").unwrap();
            }
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200)); // the server has accepted them
    let client = Client::new(&h.local_addr().to_string())
        .unwrap()
        .with_timeout(Duration::from_secs(5));
    for _ in 0..20 {
        let started = Instant::now();
        client
            .health()
            .expect("a real request is served beside idle sockets");
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
    }
    let stats = client.stats(&StatsParams::default()).unwrap();
    assert!(stats.endpoint.idle_closed >= 100, "{:?}", stats.endpoint);
    drop(idle);
}

#[test]
fn a_socket_that_sends_no_request_is_closed_after_the_first_request_timeout() {
    let broker = Broker::new();
    let mut options = ServeOptions::default().addr("127.0.0.1:0".parse().unwrap());
    options.first_request_timeout = Duration::from_millis(300);
    let h = serve(&broker, options).unwrap();
    let mut idle = TcpStream::connect(h.local_addr()).unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let started = Instant::now();
    let mut buf = Vec::new();
    let _ = idle.read_to_end(&mut buf);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}
