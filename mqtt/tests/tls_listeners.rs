//! The TLS and WebSocket listeners of one server: rumqttc clients over TLS with and without client
//! certificates, a certificate's common name as the user name beside a password file, every failed
//! handshake counted on its listener, a socket that never finishes its handshake closed at the
//! CONNECT deadline, a WebSocket upgrade without the `mqtt` subprotocol refused, and PEM errors that
//! name the file. Certificates are made by `openssl` (`tests/support/certs.rs`); loopback only.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, ConnectReturnCode, ConnectionError, Event, MqttOptions, Packet, QoS};
use switchyard::Broker;
use switchyard_mqtt::{
    Listener, MqttConfig, MqttServer, MqttStats, PasswordFile, PasswordHash, TlsClientFiles,
    TlsFileError, TlsServer, TlsServerFiles, TransportKind,
};
use tokio::time::timeout;

mod common;

use common::certs::{CLIENT_CN, TestCerts};

const WAIT: Duration = Duration::from_secs(10);

fn any_port() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

fn tls_server(certs: &TestCerts, client_certificates: bool) -> TlsServer {
    TlsServer::from_files(&TlsServerFiles {
        cert: certs.server_cert.clone(),
        key: certs.server_key.clone(),
        client_ca: client_certificates.then(|| certs.ca.clone()),
        identity_as_user_name: client_certificates,
    })
    .unwrap()
}

/// A rumqttc client to `addr` over TLS (trusting the test CA) offering `cert_and_key`, or over TCP.
fn client(
    id: &str,
    addr: SocketAddr,
    tls: Option<(&TestCerts, Option<(&std::path::Path, &std::path::Path)>)>,
) -> (AsyncClient, rumqttc::EventLoop) {
    // `localhost`, which the server certificate names (so does 127.0.0.1, as an IP address).
    let mut options = MqttOptions::new(id, "localhost", addr.port());
    options.set_keep_alive(Duration::from_secs(5));
    if let Some((certs, cert_and_key)) = tls {
        let files = TlsClientFiles {
            ca: Some(certs.ca.clone()),
            cert_and_key: cert_and_key.map(|(c, k)| (c.to_path_buf(), k.to_path_buf())),
        };
        options.set_transport(files.transport().unwrap());
    }
    AsyncClient::new(options, 16)
}

/// Polls `events` until its CONNACK (`Ok`) or the connection's first error.
async fn connect_outcome(events: &mut rumqttc::EventLoop) -> Result<(), ConnectionError> {
    timeout(WAIT, async {
        loop {
            if let Event::Incoming(Packet::ConnAck(_)) = events.poll().await? {
                return Ok(());
            }
        }
    })
    .await
    .expect("a CONNACK or an error within 10 s")
}

/// Waits (bounded) until `done` holds for the server's stats.
async fn wait_stats(server: &MqttServer, what: &str, done: impl Fn(&MqttStats) -> bool) {
    let deadline = Instant::now() + WAIT;
    while !done(&server.stats()) {
        assert!(Instant::now() < deadline, "{what}: {:#?}", server.stats());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn listener(stats: &MqttStats, kind: TransportKind) -> &switchyard_mqtt::ListenerStats {
    stats
        .listeners
        .iter()
        .find(|l| l.transport == kind)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_crosses_from_a_tcp_client_to_a_tls_client_of_the_same_server() {
    let dir = tempfile::tempdir().unwrap();
    let certs = TestCerts::make(dir.path());
    let listeners = [
        Listener::tcp(any_port()),
        Listener::tls(any_port(), tls_server(&certs, false)),
    ];
    let server = MqttServer::bind_listeners(listeners, Broker::new(), MqttConfig::default())
        .await
        .unwrap();
    let tls_addr = server.local_addr_of(TransportKind::Tls).unwrap();
    let (sub, mut sub_events) = client("tls-sub", tls_addr, Some((&certs, None)));
    sub.subscribe("over/#", QoS::AtLeastOnce).await.unwrap();
    timeout(WAIT, async {
        while !matches!(
            sub_events.poll().await.unwrap(),
            Event::Incoming(Packet::SubAck(_))
        ) {}
    })
    .await
    .unwrap();
    let (publisher, mut pub_events) = client("tcp-pub", server.local_addr(), None);
    tokio::spawn(async move { while pub_events.poll().await.is_ok() {} });
    publisher
        .publish("over/tls", QoS::AtLeastOnce, false, "sealed")
        .await
        .unwrap();
    let got = timeout(WAIT, async {
        loop {
            if let Event::Incoming(Packet::Publish(p)) = sub_events.poll().await.unwrap() {
                return p;
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(
        (got.topic.as_str(), &got.payload[..]),
        ("over/tls", &b"sealed"[..])
    );
    let stats = server.stats();
    assert_eq!(listener(&stats, TransportKind::Tls).accepted, 1);
    assert_eq!(listener(&stats, TransportKind::Tcp).accepted, 1);
    assert_eq!(stats.accepted, 2, "the totals are over every listener");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_certificate_is_required_and_its_common_name_is_the_user_name() {
    let dir = tempfile::tempdir().unwrap();
    let certs = TestCerts::make(dir.path());
    // A password file that does not list the certificate's name: the certificate is the login there,
    // and the file still applies on the TCP listener.
    let hash = PasswordHash::new(b"secret").unwrap();
    let passwords = PasswordFile::parse(&format!("alice:{hash}\n")).unwrap();
    let config = MqttConfig::default().password_file(Some(passwords));
    let listeners = [
        Listener::tcp(any_port()),
        Listener::tls(any_port(), tls_server(&certs, true)),
    ];
    let server = MqttServer::bind_listeners(listeners, Broker::new(), config)
        .await
        .unwrap();
    let tls_addr = server.local_addr_of(TransportKind::Tls).unwrap();

    let client_pair = (certs.client_cert.as_path(), certs.client_key.as_path());
    let (_with_cert, mut events) = client("with-cert", tls_addr, Some((&certs, Some(client_pair))));
    connect_outcome(&mut events)
        .await
        .expect("a CA-signed certificate logs in");
    assert_eq!(server.stats().auth.certificate, 1);
    let stats = server.stats();
    let session = stats.client("with-cert").unwrap();
    assert_eq!(
        session.user_name.as_deref(),
        Some(CLIENT_CN),
        "the certificate's name"
    );
    assert_eq!(session.transport, Some(TransportKind::Tls));

    let (_none, mut events) = client("no-cert", tls_addr, Some((&certs, None)));
    assert!(
        connect_outcome(&mut events).await.is_err(),
        "no certificate: no handshake"
    );
    let rogue_pair = (certs.rogue_cert.as_path(), certs.rogue_key.as_path());
    let (_rogue, mut events) = client("rogue", tls_addr, Some((&certs, Some(rogue_pair))));
    assert!(
        connect_outcome(&mut events).await.is_err(),
        "another CA's certificate: no handshake"
    );

    let nameless_pair = (certs.nameless_cert.as_path(), certs.nameless_key.as_path());
    let (_nameless, mut events) = client("nameless", tls_addr, Some((&certs, Some(nameless_pair))));
    match connect_outcome(&mut events).await {
        Err(ConnectionError::ConnectionRefused(ConnectReturnCode::NotAuthorized)) => {}
        other => panic!("a certificate without a common name gets CONNACK 5, not {other:?}"),
    }

    let (_anonymous, mut events) = client("anonymous", server.local_addr(), None);
    match connect_outcome(&mut events).await {
        Err(ConnectionError::ConnectionRefused(ConnectReturnCode::NotAuthorized)) => {}
        other => panic!("the password file applies on the TCP listener: {other:?}"),
    }

    wait_stats(&server, "two failed handshakes", |s| {
        listener(s, TransportKind::Tls).tls_handshake_failures == 2
            && s.closed_by_reason.handshake_failed == 2
    })
    .await;
    let stats = server.stats();
    assert!(listener(&stats, TransportKind::Tls).client_certificates);
    assert_eq!(stats.auth.refused_by_reason.no_certificate_name, 1);
    assert_eq!(stats.auth.refused_by_reason.no_user_name, 1);
    assert_eq!(stats.auth.accepted, 0, "nobody logged in with a password");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_client_on_the_tls_port_fails_the_handshake_and_a_silent_one_times_out() {
    let dir = tempfile::tempdir().unwrap();
    let certs = TestCerts::make(dir.path());
    let config = MqttConfig::default().connect_timeout(Duration::from_millis(300));
    let listeners = [Listener::tls(any_port(), tls_server(&certs, false))];
    let server = MqttServer::bind_listeners(listeners, Broker::new(), config)
        .await
        .unwrap();
    let addr = server.local_addr();
    let (_plain, mut events) = client("plain", addr, None);
    assert!(connect_outcome(&mut events).await.is_err());
    let silent = tokio::task::spawn_blocking(move || {
        let mut socket = TcpStream::connect(addr).unwrap();
        socket.set_read_timeout(Some(WAIT)).unwrap();
        let started = Instant::now();
        let mut byte = [0u8; 1];
        let read = socket.read(&mut byte);
        (started.elapsed(), read.map_err(|e| e.kind()))
    });
    let (waited, read) = silent.await.unwrap();
    assert_eq!(read, Ok(0), "closed by the server after {waited:?}");
    wait_stats(&server, "one failure, one timeout", |s| {
        s.closed_by_reason.handshake_failed == 1 && s.closed_by_reason.connect_timeout == 1
    })
    .await;
    let stats = server.stats();
    assert_eq!(
        listener(&stats, TransportKind::Tls).tls_handshake_failures,
        1
    );
    assert!(stats.balances(), "{stats:?}");
}

/// An HTTP upgrade request to `addr` offering `subprotocol`; the status line and headers answered.
fn upgrade(addr: SocketAddr, subprotocol: &str) -> String {
    let mut socket = TcpStream::connect(addr).unwrap();
    socket.set_read_timeout(Some(WAIT)).unwrap();
    write!(
        socket,
        "GET /mqtt HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: {subprotocol}\r\n\r\n"
    )
    .unwrap();
    let mut answer = Vec::new();
    let mut byte = [0u8; 1];
    while !answer.ends_with(b"\r\n\r\n") && socket.read(&mut byte).unwrap_or(0) == 1 {
        answer.push(byte[0]);
    }
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_upgrade_gets_the_mqtt_subprotocol_or_a_400() {
    let listeners = [Listener::websocket(any_port())];
    let server = MqttServer::bind_listeners(listeners, Broker::new(), MqttConfig::default())
        .await
        .unwrap();
    let addr = server.local_addr();
    let (accepted, refused) = tokio::task::spawn_blocking(move || {
        (upgrade(addr, "mqttv3.1, mqtt"), upgrade(addr, "chat"))
    })
    .await
    .unwrap();
    assert!(accepted.starts_with("HTTP/1.1 101"), "{accepted}");
    assert!(
        accepted
            .to_ascii_lowercase()
            .contains("sec-websocket-protocol: mqtt\r\n"),
        "{accepted}"
    );
    assert!(refused.starts_with("HTTP/1.1 400"), "{refused}");
    wait_stats(&server, "one failed upgrade", |s| {
        listener(s, TransportKind::Ws).websocket_handshake_failures == 1
    })
    .await;
}

#[test]
fn certificate_and_key_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let certs = TestCerts::make(dir.path());
    let files = |cert: &std::path::Path, key: &std::path::Path| TlsServerFiles {
        cert: cert.to_path_buf(),
        key: key.to_path_buf(),
        ..TlsServerFiles::default()
    };
    let missing = dir.path().join("missing.key");
    let err = TlsServer::from_files(&files(&certs.server_cert, &missing)).unwrap_err();
    assert!(
        err.to_string().starts_with("private key file ") && err.to_string().contains("missing.key"),
        "{err}"
    );
    let err = TlsServer::from_files(&files(&certs.server_key, &certs.server_key)).unwrap_err();
    assert!(
        err.to_string().contains("server.key") && err.to_string().contains("no certificate"),
        "{err}"
    );
    let err = TlsServer::from_files(&files(&certs.server_cert, &certs.client_key)).unwrap_err();
    assert!(matches!(err, TlsFileError::KeyMismatch { .. }), "{err}");
    assert!(
        err.to_string().contains("client.key") && err.to_string().contains("server.pem"),
        "{err}"
    );
    let identity_without_ca = TlsServerFiles {
        identity_as_user_name: true,
        ..files(&certs.server_cert, &certs.server_key)
    };
    let err = TlsServer::from_files(&identity_without_ca).unwrap_err();
    assert!(err.to_string().contains("client CA"), "{err}");
}
