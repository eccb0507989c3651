//! The HTTP rules every route follows (issue 18, row 14): `Allow` on `405`, `HEAD` wherever `GET` is
//! allowed, the `Bearer` scheme in any case, one rule for unknown and repeated query parameters, and
//! every refused request counted. Real HTTP requests over loopback, some of them raw bytes.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use switchyard::Broker;
use switchyard_observe::{Client, ObserveHandle, ServeOptions, StatsParams, serve};

const TOKEN: &str = "test-token";

fn start() -> (ObserveHandle, Client) {
    let h = serve(
        &Broker::new(),
        ServeOptions::default()
            .addr("127.0.0.1:0".parse().unwrap())
            .token(TOKEN),
    )
    .unwrap();
    let client = Client::new(&h.local_addr().to_string()).unwrap();
    (h, client)
}

/// Sends `bytes` on a fresh connection and reads until the server closes it.
fn raw(addr: SocketAddr, bytes: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(bytes).unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

/// One request with `Connection: close`, answered in full.
fn request(addr: SocketAddr, method: &str, target: &str, headers: &str, body: &str) -> String {
    raw(
        addr,
        format!(
            "{method} {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{headers}\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
}

fn status(reply: &str) -> u16 {
    reply
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {reply:?}"))
}

fn header<'a>(reply: &'a str, name: &str) -> Option<&'a str> {
    let head = reply.split("\r\n\r\n").next()?;
    head.lines().skip(1).find_map(|line| {
        let (k, v) = line.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

#[test]
fn a_405_says_which_methods_are_allowed() {
    let (h, _) = start();
    let auth = format!("Authorization: Bearer {TOKEN}\r\n");
    for (method, target, allow) in [
        ("POST", "/healthz", "GET, HEAD"),
        ("DELETE", "/v1/stats", "GET, HEAD"),
        ("PUT", "/v1/explain?topic=a", "GET, HEAD"),
        ("POST", "/metrics", "GET, HEAD"),
        ("GET", "/v1/publish", "POST"),
        ("PUT", "/v1/taps", "GET, HEAD, POST"),
        ("POST", "/v1/taps/1", "GET, HEAD, DELETE"),
        ("GET", "/v1/taps/1/pause", "POST"),
        ("GET", "/v1/subscriptions/1/policy", "PUT"),
    ] {
        let reply = request(h.local_addr(), method, target, &auth, "");
        assert_eq!(status(&reply), 405, "{method} {target}: {reply}");
        assert_eq!(
            header(&reply, "allow"),
            Some(allow),
            "{method} {target}: {reply}"
        );
    }
}

#[test]
fn head_is_answered_wherever_get_is() {
    let (h, _) = start();
    for target in ["/healthz", "/v1/stats", "/metrics", "/v1/explain?topic=a"] {
        let reply = request(h.local_addr(), "HEAD", target, "", "");
        assert_eq!(status(&reply), 200, "HEAD {target}: {reply}");
        assert!(
            reply.ends_with("\r\n\r\n"),
            "a HEAD answer has no body: {reply:?}"
        );
    }
}

#[test]
fn the_bearer_scheme_is_matched_in_any_case() {
    let (h, _) = start();
    let body = r#"{"topic":"a/b"}"#;
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let auth = format!("Authorization: {scheme} {TOKEN}\r\n");
        let reply = request(h.local_addr(), "POST", "/v1/publish", &auth, body);
        assert_eq!(status(&reply), 200, "{scheme}: {reply}");
    }
    let reply = request(
        h.local_addr(),
        "POST",
        "/v1/publish",
        "Authorization: Basic dXNlcjpwdw==\r\n",
        body,
    );
    assert_eq!(status(&reply), 401, "{reply}");
    assert!(
        reply.contains("`Basic`"),
        "names the scheme it got: {reply}"
    );
}

#[test]
fn unknown_and_repeated_query_parameters_are_refused_on_every_route() {
    let (h, client) = start();
    let auth = format!("Authorization: Bearer {TOKEN}\r\n");
    for (method, target, needle) in [
        ("GET", "/healthz?x=1", "`x`"),
        ("GET", "/metrics?x=1", "`x`"),
        ("GET", "/v1/stats?x=1", "`x`"),
        ("GET", "/v1/explain?topic=a&x=1", "`x`"),
        ("GET", "/v1/taps?x=1", "`x`"),
        ("GET", "/v1/explain?topic=a&topic=b", "`topic`"),
        ("GET", "/v1/stats?limit=1&limit=2", "`limit`"),
        ("GET", "/v1/stats?sort=id&sort=depth", "`sort`"),
    ] {
        let reply = request(h.local_addr(), method, target, &auth, "");
        assert_eq!(status(&reply), 400, "{target}: {reply}");
        assert!(reply.contains(needle), "{target}: {reply}");
        assert!(reply.contains("{\"error\":"), "a JSON error: {reply}");
    }
    let stats = client.stats(&StatsParams::default()).unwrap();
    assert_eq!(stats.endpoint.bad_requests, 8);
}

#[test]
fn every_refused_request_is_counted_even_those_hyper_answers_itself() {
    let (h, client) = start();
    let huge = format!(
        "GET /healthz HTTP/1.1\r\nX-Big: {}\r\n\r\n",
        "x".repeat(64 * 1024)
    );
    let garbage: [&[u8]; 9] = [
        b"NONSENSE\r\n\r\n",
        b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\r\n\r\n",
        b"GET /healthz HTTP/9.9\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nno colon here\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nContent-Length: x\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        b"\x00\x01\x02\x03\r\n\r\n",
        b"GET /\x7f HTTP/1.1\r\n\r\n",
        huge.as_bytes(),
    ];
    for bytes in garbage {
        let reply = raw(h.local_addr(), bytes);
        assert!(
            reply.is_empty() || reply.starts_with("HTTP/1.1 4"),
            "{:?}: {reply}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(40)])
        );
    }
    let stats = client.stats(&StatsParams::default()).unwrap();
    assert_eq!(stats.endpoint.bad_requests, 9, "{:?}", stats.endpoint);
}
