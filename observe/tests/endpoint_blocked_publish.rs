//! A publish that waits on a full `block` queue never holds up reads, and waits no longer than the
//! request's own limit (issue 18, row 3). Real HTTP requests over loopback.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hyper::Method;
use switchyard::{Broker, OverflowPolicy, SubscriptionOptions};
use switchyard_observe::{Client, PublishRequest, ServeOptions, StatsParams, serve};

const TOKEN: &str = "test-token";

/// A subscription nobody reads, capacity 1, whose publishers wait an hour for room.
fn held_block_queue(broker: &Broker) -> switchyard::Subscription {
    broker
        .subscribe_with(
            "y/#",
            SubscriptionOptions::new()
                .capacity(1)
                .policy(OverflowPolicy::Block {
                    timeout: Duration::from_secs(3600),
                }),
        )
        .unwrap()
}

fn client(addr: SocketAddr, timeout: Duration) -> Client {
    Client::new(&addr.to_string())
        .unwrap()
        .with_token(Some(TOKEN.into()))
        .with_timeout(timeout)
}

fn publish_request() -> PublishRequest {
    PublishRequest {
        topic: "y/1".into(),
        payload: "x".into(),
        priority: None,
        retain: false,
        count: Some(3),
    }
}

#[test]
fn reads_answer_at_once_while_publishes_wait_on_a_full_block_queue() {
    let broker = Broker::new();
    let held = held_block_queue(&broker);
    let h = serve(
        &broker,
        ServeOptions::default()
            .addr("127.0.0.1:0".parse().unwrap())
            .token(TOKEN),
    )
    .unwrap();
    let addr = h.local_addr();
    // Two publishes whose clients give up after 500 ms, as `curl -m 2` did.
    let publishers: Vec<_> = (0..2)
        .map(|_| {
            std::thread::spawn(move || {
                client(addr, Duration::from_millis(500))
                    .publish(&publish_request())
                    .is_err()
            })
        })
        .collect();
    for p in publishers {
        assert!(p.join().unwrap(), "the publish cannot have finished");
    }
    let reader = client(addr, Duration::from_secs(10));
    for path in ["/v1/stats", "/v1/explain?topic=y/1", "/metrics", "/healthz"] {
        let started = Instant::now();
        let (status, body) = reader.request(Method::GET, path, None).unwrap();
        assert_eq!(status.as_u16(), 200, "{path}: {body:?}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{path} took {:?} behind the blocked publishes",
            started.elapsed()
        );
    }
    reader.stats(&StatsParams::default()).unwrap();
    drop(held); // frees whatever still waits
}

#[test]
fn a_publish_waits_no_longer_than_the_request_limit_and_says_what_it_published() {
    let broker = Broker::new();
    let held = held_block_queue(&broker);
    let h = serve(
        &broker,
        ServeOptions::default()
            .addr("127.0.0.1:0".parse().unwrap())
            .token(TOKEN)
            .timeouts(Duration::from_millis(500)),
    )
    .unwrap();
    let started = Instant::now();
    let body = serde_json::to_vec(&publish_request()).unwrap();
    let (status, body) = client(h.local_addr(), Duration::from_secs(5))
        .request(Method::POST, "/v1/publish", Some(body))
        .expect("an answer within the request limit, not the client's");
    let body = String::from_utf8_lossy(&body).into_owned();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(status.as_u16(), 504, "{body}");
    // The first message fit in the queue; the second was waiting for room when time ran out.
    assert!(body.contains("1 of 3"), "{body}");
    assert!(body.contains("block"), "{body}");
    drop(held);
}

#[test]
fn a_tap_whose_block_wait_exceeds_the_request_limit_is_refused() {
    let broker = Broker::new();
    let h = serve(
        &broker,
        ServeOptions::default()
            .addr("127.0.0.1:0".parse().unwrap())
            .token(TOKEN),
    )
    .unwrap();
    let c = client(h.local_addr(), Duration::from_secs(5));
    let (status, body) = c
        .request(
            Method::POST,
            "/v1/taps",
            Some(br#"{"filter":"y/#","capacity":1,"policy":"block:100000000h"}"#.to_vec()),
        )
        .unwrap();
    let body = String::from_utf8_lossy(&body).into_owned();
    assert_eq!(status.as_u16(), 400, "{body}");
    assert!(body.contains("command_timeout"), "{body}");
    let (status, body) = c
        .request(
            Method::POST,
            "/v1/taps",
            Some(br#"{"filter":"y/#","capacity":1,"policy":"block:100ms"}"#.to_vec()),
        )
        .unwrap();
    assert_eq!(status.as_u16(), 201, "{}", String::from_utf8_lossy(&body));
}
