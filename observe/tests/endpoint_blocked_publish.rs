//! A publish that waits on a full `block` queue never holds up reads, waits no longer than the
//! request's own limit (its message gives up then, `PublishOptions::deadline`), and stops when its
//! client goes away (issue 18, row 3). Real HTTP requests over loopback.

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
    // The first message fit in the queue; the second waited for room until the request's limit and
    // was dropped there (the queue's own hour was not waited out); the third was never published.
    assert!(
        body.contains("2 of 3 messages published (1 of them dropped, 1 queued)"),
        "{body}"
    );
    assert!(body.contains("block"), "{body}");
    let s = held.stats();
    assert_eq!((s.matched, s.dropped_by_reason.timeout, s.depth), (2, 1, 1));
    drop(held);
}

#[test]
fn a_publish_whose_client_went_away_stops_and_its_wait_ends_at_the_request_limit() {
    let broker = Broker::new();
    let held = held_block_queue(&broker);
    let h = serve(
        &broker,
        ServeOptions::default()
            .addr("127.0.0.1:0".parse().unwrap())
            .token(TOKEN)
            .command_timeout(Duration::from_secs(1)),
    )
    .unwrap();
    // The client gives up long before the request's limit, as `curl -m` does.
    let gone = client(h.local_addr(), Duration::from_millis(100)).publish(&publish_request());
    assert!(gone.is_err(), "{gone:?}");
    // The message waiting for room gives up at the request's limit, not the queue's hour.
    let deadline = Instant::now() + Duration::from_secs(20);
    while held.stats().dropped_by_reason.timeout == 0 {
        assert!(
            Instant::now() < deadline,
            "the abandoned publish still waits: {:?}",
            held.stats()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Its work stopped there: the third message was never published.
    assert_eq!(broker.stats().totals.published, 2);
    // And the next publish gets the publish thread at once (not "nothing published: another publish
    // is still waiting"), and its own limit: its one message is published, and dropped when the
    // limit ends its wait.
    let answer = client(h.local_addr(), Duration::from_secs(10))
        .publish(&PublishRequest {
            count: Some(1),
            ..publish_request()
        })
        .unwrap();
    assert_eq!((answer.published, answer.queued, answer.dropped), (1, 0, 1));
    assert_eq!(held.stats().dropped_by_reason.timeout, 2);
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
