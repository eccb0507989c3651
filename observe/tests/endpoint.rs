//! The endpoint in this process, over loopback: every route, its errors, its limits.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use hyper::Method;
use switchyard::{Broker, SubscriptionOptions};
use switchyard_observe::{
    Client, ObserveHandle, PublishRequest, ServeOptions, SortBy, StatsParams, TapRequest, serve,
};

const TOKEN: &str = "test-token";

fn loopback() -> ServeOptions {
    ServeOptions::default().addr("127.0.0.1:0".parse().unwrap())
}

fn start(broker: &Broker, options: ServeOptions) -> (ObserveHandle, Client) {
    let handle = serve(broker, options).unwrap();
    let client = Client::new(&handle.local_addr().to_string()).unwrap();
    (handle, client)
}

fn status_of(client: &Client, method: Method, path: &str, body: Option<&str>) -> (u16, String) {
    let (status, body) = client
        .request(method, path, body.map(|b| b.as_bytes().to_vec()))
        .unwrap();
    (status.as_u16(), String::from_utf8_lossy(&body).into_owned())
}

/// `error` field of a JSON error body.
fn error_text(body: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(body).expect("a JSON error body");
    v["error"].as_str().expect("an `error` string").to_string()
}

#[test]
fn healthz_and_stats_answer_with_totals_over_every_subscription() {
    let broker = Broker::new();
    let subs: Vec<_> = (0..20)
        .map(|i| {
            broker
                .subscribe_with(&format!("t/{i}"), SubscriptionOptions::new().capacity(8))
                .unwrap()
        })
        .collect();
    for i in 0..20 {
        for _ in 0..i {
            broker.publish(&format!("t/{i}"), "x").unwrap();
        }
    }
    let (_h, client) = start(&broker, loopback());
    client.health().unwrap();
    let params = StatsParams {
        sort: SortBy::Key(switchyard::StatsSort::Dropped),
        filter: Some("T/1".into()),
        limit: Some(3),
    };
    let stats = client.stats(&params).unwrap();
    assert_eq!(stats.snapshot.schema, "switchyard.stats/v1");
    assert_eq!(stats.snapshot.totals.subscriptions, 20);
    assert_eq!(stats.snapshot.totals.matched, (0..20).sum::<u64>());
    assert!(stats.snapshot.balances());
    // t/1 and t/10..t/19 pass the filter; most drops first: t/19 (19 - 8 = 11)
    assert_eq!(stats.selection.matching, 11);
    let names: Vec<_> = stats
        .snapshot
        .subscriptions
        .iter()
        .map(|s| s.filter.as_str())
        .collect();
    assert_eq!(names, ["t/19", "t/18", "t/17"]);
    assert_eq!(
        stats.selection.dropped_by_reason.queue_full,
        stats.snapshot.totals.dropped
    );
    assert!(!stats.endpoint.commands);
    drop(subs);
}

#[test]
fn the_raw_json_is_a_v1_snapshot_with_additions() {
    let broker = Broker::new();
    let _s = broker.subscribe("a/#").unwrap();
    let (_h, client) = start(&broker, loopback());
    let (status, body) = status_of(&client, Method::GET, "/v1/stats?limit=1&sort=rate", None);
    assert_eq!(status, 200);
    // A client that knows only v1 reads it as a plain snapshot.
    let snapshot: switchyard::StatsSnapshot = serde_json::from_str(&body).unwrap();
    assert_eq!(snapshot.subscriptions.len(), 1);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["selection"]["sort"], "rate");
    assert!(v["uptime_s"].as_f64().unwrap() > 0.0);
    assert!(v["taken_at"].as_str().unwrap().ends_with('Z'));
}

#[test]
fn bad_queries_and_routes_get_json_errors_naming_the_problem() {
    let broker = Broker::new();
    let (_h, client) = start(&broker, loopback());
    for (path, status, needle) in [
        ("/v1/stats?sort=speed", 400, "`speed`"),
        ("/v1/stats?limit=many", 400, "`many`"),
        ("/v1/stats?colour=red", 400, "`colour`"),
        ("/v1/stats?filter=%zz", 400, "percent"),
        ("/nowhere", 404, "no route"),
    ] {
        let (got, body) = status_of(&client, Method::GET, path, None);
        assert_eq!(got, status, "{path}: {body}");
        assert!(error_text(&body).contains(needle), "{path}: {body}");
    }
    let (got, body) = status_of(&client, Method::POST, "/v1/stats", Some("{}"));
    assert_eq!(got, 405, "{body}");
    let stats = client.stats(&StatsParams::default()).unwrap();
    assert_eq!(stats.endpoint.bad_requests, 6);
}

#[test]
fn a_read_only_endpoint_refuses_every_command_with_403_and_counts_it() {
    let broker = Broker::new();
    let (_h, client) = start(&broker, loopback());
    let client = client.with_token(Some(TOKEN.into()));
    for (method, path, body) in [
        (Method::POST, "/v1/publish", Some(r#"{"topic":"a"}"#)),
        (Method::POST, "/v1/taps", Some(r#"{"filter":"a"}"#)),
        (Method::GET, "/v1/taps", None),
        (
            Method::PUT,
            "/v1/subscriptions/1/policy",
            Some(r#"{"policy":"drop-oldest"}"#),
        ),
    ] {
        let (status, text) = status_of(&client, method, path, body);
        assert_eq!(status, 403, "{path}");
        assert!(error_text(&text).contains("read-only"), "{text}");
    }
    assert_eq!(broker.stats().totals.published, 0);
    let stats = client.stats(&StatsParams::default()).unwrap();
    assert_eq!(stats.endpoint.read_only, 4);
}

#[test]
fn a_missing_or_wrong_token_gets_401_and_the_right_one_publishes() {
    let broker = Broker::new();
    let sub = broker.subscribe("orders/#").unwrap();
    let (_h, anonymous) = start(&broker, loopback().token(TOKEN));
    let body = r#"{"topic":"orders/1","payload":"hi","priority":"high","count":3}"#;
    let (status, text) = status_of(&anonymous, Method::POST, "/v1/publish", Some(body));
    assert_eq!(status, 401);
    assert!(error_text(&text).contains("Authorization"));
    let addr = anonymous.addr().to_string();
    let wrong = Client::new(&addr).unwrap().with_token(Some("nope".into()));
    let (status, text) = status_of(&wrong, Method::POST, "/v1/publish", Some(body));
    assert_eq!(status, 401);
    assert!(error_text(&text).contains("wrong"));
    assert_eq!(broker.stats().totals.published, 0);

    let client = Client::new(&addr).unwrap().with_token(Some(TOKEN.into()));
    let outcome = client
        .publish(&PublishRequest {
            topic: "orders/1".into(),
            payload: "hi".into(),
            priority: Some("high".into()),
            retain: false,
            count: Some(3),
        })
        .unwrap();
    assert_eq!((outcome.published, outcome.queued), (3, 3));
    let d = sub.try_recv().unwrap();
    assert_eq!(d.priority(), switchyard::Priority::High);
    assert_eq!(&d.payload()[..], b"hi");
    let stats = client.stats(&StatsParams::default()).unwrap();
    assert_eq!(stats.endpoint.unauthorized, 2);
    assert!(stats.endpoint.commands);
}

#[test]
fn command_input_errors_carry_the_library_text() {
    let broker = Broker::new();
    let sub = broker.subscribe("a").unwrap();
    let (_h, client) = start(&broker, loopback().token(TOKEN));
    let client = client.with_token(Some(TOKEN.into()));
    for (method, path, body, status, needle) in [
        (
            Method::POST,
            "/v1/publish",
            r#"{"topic":"a/+"}"#,
            400,
            "invalid topic",
        ),
        (
            Method::POST,
            "/v1/publish",
            r#"{"topic":"a","count":0}"#,
            400,
            "count",
        ),
        (
            Method::POST,
            "/v1/publish",
            r#"{"topic":"a","priority":"urgent"}"#,
            400,
            "urgent",
        ),
        (
            Method::POST,
            "/v1/publish",
            r#"{"topic":"a","colour":1}"#,
            400,
            "colour",
        ),
        (
            Method::POST,
            "/v1/publish",
            "{not json",
            400,
            "not valid JSON",
        ),
        (
            Method::POST,
            "/v1/taps",
            r#"{"filter":"a/#/b"}"#,
            400,
            "invalid filter",
        ),
        (
            Method::POST,
            "/v1/taps",
            r#"{"filter":"a","capacity":0}"#,
            400,
            "capacity",
        ),
        (
            Method::POST,
            "/v1/taps",
            r#"{"filter":"a","policy":"sometimes"}"#,
            400,
            "sometimes",
        ),
        (Method::GET, "/v1/taps/999", "", 404, "no tap with id 999"),
        (Method::GET, "/v1/taps/abc", "", 400, "`abc`"),
        (
            Method::PUT,
            "/v1/subscriptions/999/policy",
            r#"{"policy":"drop-oldest"}"#,
            404,
            "999",
        ),
        (
            Method::PUT,
            "/v1/subscriptions/1/policy",
            r#"{"policy":"later"}"#,
            400,
            "later",
        ),
        (Method::PATCH, "/v1/publish", "{}", 405, "PATCH"),
    ] {
        let body = (!body.is_empty()).then_some(body);
        let (got, text) = status_of(&client, method, path, body);
        assert_eq!(got, status, "{path} {body:?}: {text}");
        assert!(error_text(&text).contains(needle), "{path}: {text}");
    }
    client.set_policy(sub.id(), "block:20ms").unwrap();
    assert_eq!(sub.policy().to_string(), "block:20ms");
}

#[test]
fn taps_receive_pause_resume_and_unsubscribe() {
    let broker = Broker::new();
    let (_h, client) = start(&broker, loopback().token(TOKEN));
    let client = client.with_token(Some(TOKEN.into()));
    let tap = client
        .open_tap(&TapRequest {
            filter: "news/#".into(),
            capacity: Some(4),
            policy: None,
            name: Some("watch".into()),
            receive_retained: false,
        })
        .unwrap();
    assert_eq!(tap.name, "watch");
    for i in 0..3 {
        broker.publish("news/x", format!("m{i}")).unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let seen = loop {
        let t = client.tap(tap.id).unwrap();
        if t.received == 3 || Instant::now() > deadline {
            break t;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(seen.received, 3);
    let payloads: Vec<_> = seen.recent.iter().map(|m| m.payload.as_str()).collect();
    assert_eq!(payloads, ["m0", "m1", "m2"]);
    assert_eq!(seen.recent[2].seq, 3);

    // Paused: the queue fills (capacity 4) and drops the oldest, by the tap's default policy.
    assert!(client.set_tap_paused(tap.id, true).unwrap().paused);
    std::thread::sleep(Duration::from_millis(50));
    for i in 0..10 {
        broker.publish("news/x", format!("p{i}")).unwrap();
    }
    let s = broker.subscription_stats(tap.id).unwrap();
    assert_eq!((s.depth, s.dropped_by_reason.evicted), (4, 6));
    assert_eq!(client.tap(tap.id).unwrap().received, 3);
    client.set_tap_paused(tap.id, false).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while client.tap(tap.id).unwrap().received < 7 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let t = client.tap(tap.id).unwrap();
    assert_eq!(t.received, 7);
    assert_eq!(t.recent[3].missed, 6, "{:?}", t.recent);
    assert_eq!(client.taps().unwrap().len(), 1);

    client.delete_tap(tap.id).unwrap();
    assert!(broker.subscription_stats(tap.id).is_none());
    assert_eq!(client.tap(tap.id).unwrap_err().status(), Some(404));
    assert!(broker.stats().balances());
}

#[test]
fn taps_end_with_the_endpoint() {
    let broker = Broker::new();
    let (handle, client) = start(&broker, loopback().token(TOKEN));
    let client = client.with_token(Some(TOKEN.into()));
    let tap = client
        .open_tap(&TapRequest {
            filter: "a".into(),
            capacity: None,
            policy: None,
            name: None,
            receive_retained: false,
        })
        .unwrap();
    assert!(broker.subscription_stats(tap.id).is_some());
    drop(handle);
    assert!(broker.subscription_stats(tap.id).is_none());
    assert!(client.health().is_err());
}

#[test]
fn oversized_bodies_get_413() {
    let broker = Broker::new();
    let (_h, client) = start(&broker, loopback().token(TOKEN).max_body_bytes(1024));
    let client = client.with_token(Some(TOKEN.into()));
    let body = format!(r#"{{"topic":"a","payload":"{}"}}"#, "x".repeat(4096));
    let (status, text) = status_of(&client, Method::POST, "/v1/publish", Some(&body));
    assert_eq!(status, 413);
    assert!(error_text(&text).contains("1024"));
}

#[test]
fn an_idle_connection_is_closed_after_the_header_timeout_and_others_are_served_meanwhile() {
    let broker = Broker::new();
    let (h, client) = start(&broker, loopback().timeouts(Duration::from_millis(300)));
    let mut idle = TcpStream::connect(h.local_addr()).unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\n").unwrap(); // headers never finished
    client.health().unwrap(); // not held up by the slow client
    idle.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let started = Instant::now();
    let mut buf = Vec::new();
    let _ = idle.read_to_end(&mut buf); // returns when the server closes
    assert!(
        started.elapsed() < Duration::from_secs(9),
        "closed by the timeout, not ours"
    );
}

#[test]
fn connections_over_the_limit_get_503_and_are_counted() {
    let broker = Broker::new();
    let (h, client) = start(
        &broker,
        loopback()
            .max_connections(2)
            .timeouts(Duration::from_secs(60)),
    );
    let held: Vec<_> = (0..2)
        .map(|_| TcpStream::connect(h.local_addr()).unwrap())
        .collect();
    // Once the server has accepted the two silent connections, the next one is over the limit.
    let deadline = Instant::now() + Duration::from_secs(10);
    let body = loop {
        let (status, body) = status_of(&client, Method::GET, "/healthz", None);
        if status == 503 {
            break body;
        }
        assert_eq!(status, 200, "{body}");
        assert!(Instant::now() < deadline, "never refused");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(error_text(&body).contains("too many connections"));
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(10);
    let stats = loop {
        match client.stats(&StatsParams::default()) {
            Ok(s) => break s,
            Err(e) if Instant::now() < deadline => {
                assert_eq!(e.status(), Some(503), "{e}");
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("{e}"),
        }
    };
    assert!(stats.endpoint.too_many_connections >= 1);
}

#[test]
fn non_loopback_addresses_need_to_be_asked_for() {
    let broker = Broker::new();
    let e = serve(
        &broker,
        ServeOptions::default().addr("0.0.0.0:0".parse().unwrap()), // refused: never bound
    )
    .unwrap_err();
    assert!(e.to_string().contains("not a loopback address"), "{e}");
}

#[test]
fn a_token_file_is_created_private_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("token");
    let (token, created) = switchyard_observe::load_or_create_token(&path).unwrap();
    assert!(created);
    assert_eq!(token.len(), 64);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let (again, created) = switchyard_observe::load_or_create_token(&path).unwrap();
    assert_eq!((again, created), (token.clone(), false));
    assert_eq!(switchyard_observe::read_token_file(&path).unwrap(), token);
    std::fs::write(&path, "  \n").unwrap();
    assert!(
        switchyard_observe::read_token_file(&path)
            .unwrap_err()
            .to_string()
            .contains("empty")
    );
}

#[test]
fn a_client_names_the_address_it_cannot_reach() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let client = Client::new(&format!("127.0.0.1:{port}")).unwrap();
    let e = client.health().unwrap_err();
    assert!(
        e.to_string()
            .contains(&format!("cannot connect to 127.0.0.1:{port}")),
        "{e}"
    );
}

#[test]
fn garbage_and_oversized_headers_close_the_connection_without_harm() {
    let broker = Broker::new();
    let (h, client) = start(&broker, loopback());
    let answer = |bytes: &[u8]| {
        let mut s = TcpStream::connect(h.local_addr()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(bytes).unwrap();
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    };
    // hyper answers what it cannot parse itself (a plain 400 or 431) and closes the connection.
    assert!(answer(b"NONSENSE\r\n\r\n").starts_with("HTTP/1.1 400"));
    let huge = format!(
        "GET /healthz HTTP/1.1\r\nX-Big: {}\r\n\r\n",
        "x".repeat(64 * 1024)
    );
    let reply = answer(huge.as_bytes());
    assert!(
        reply.is_empty() || reply.starts_with("HTTP/1.1 431"),
        "{reply}"
    );
    client.health().unwrap(); // the server is still serving
}

#[test]
fn explain_answers_who_gets_a_topic_and_refuses_a_filter_with_the_library_text() {
    let broker = Broker::new();
    let _prices = broker.subscribe("stocks/+/price").unwrap();
    let _all = broker.subscribe("#").unwrap();
    let (_h, client) = start(&broker, loopback());
    let answer = client.explain("stocks/AAPL/price").unwrap();
    assert_eq!(answer.topic, "stocks/AAPL/price");
    assert_eq!(
        answer.subscriptions,
        broker.explain("stocks/AAPL/price").unwrap()
    );
    assert_eq!(broker.stats().totals.published, 0, "nothing was published");
    let e = client.explain("stocks/+/price").unwrap_err();
    assert_eq!(e.status(), Some(400));
    let library = broker.explain("stocks/+/price").unwrap_err().to_string();
    assert!(e.to_string().ends_with(&library), "{e}");
    let (status, body) = status_of(&client, Method::GET, "/v1/explain", None);
    assert_eq!(status, 400);
    assert!(error_text(&body).contains("`topic`"));
}
