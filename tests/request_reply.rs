//! Request/reply: first reply wins, no responder fails at once, timeouts, late and surplus replies are
//! counted and never delivered, and replies stay out of the publish accounting.

use std::thread;
use std::time::{Duration, Instant};

use switchyard::{Broker, ReplyError, RequestError, SubscriptionOptions};

fn spawn_responder(sub: switchyard::Subscription, prefix: &'static str) -> thread::JoinHandle<u64> {
    thread::spawn(move || {
        let mut n = 0;
        while let Ok(req) = sub.recv() {
            let answer = format!("{prefix}{}", String::from_utf8_lossy(req.payload()));
            let _ = req.reply(answer);
            n += 1;
        }
        n
    })
}

#[test]
fn a_request_gets_the_reply_of_its_responder() {
    let broker = Broker::new();
    let responder = spawn_responder(broker.subscribe("math/double").unwrap(), "2x");
    let reply = broker
        .request("math/double", "21", Duration::from_secs(5))
        .unwrap();
    assert_eq!(&reply.payload()[..], b"2x21");
    let stats = broker.stats();
    assert_eq!((stats.requests.sent, stats.requests.replied), (1, 1));
    assert_eq!(stats.totals.unrouted, 0, "the reply is not a publish");
    assert_eq!(stats.totals.published, 1, "only the request is");
    assert!(stats.balances());
    broker.unsubscribe(stats.subscriptions[0].id).unwrap();
    assert_eq!(responder.join().unwrap(), 1);
}

#[test]
fn a_request_nobody_subscribes_to_fails_at_once_as_unrouted() {
    let broker = Broker::new();
    let started = Instant::now();
    let err = broker
        .request("nobody/home", "hello", Duration::from_secs(10))
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(
        err,
        RequestError::Unrouted {
            topic: "nobody/home".into()
        }
    );
    let stats = broker.stats();
    assert_eq!(stats.totals.unrouted, 1, "the request itself was unrouted");
    assert_eq!(stats.requests.sent, 0);
    assert_eq!(stats.requests.timed_out, 0);
}

#[test]
fn a_request_every_subscription_drops_fails_at_once_as_not_queued() {
    let broker = Broker::new();
    let busy = broker
        .subscribe_with("svc", SubscriptionOptions::new().capacity(1))
        .unwrap();
    broker.publish("svc", "filler").unwrap();
    let err = broker
        .request("svc", "q", Duration::from_secs(10))
        .unwrap_err();
    assert_eq!(
        err,
        RequestError::NotQueued {
            topic: "svc".into(),
            matched: 1
        }
    );
    drop(busy);
}

#[test]
fn a_request_times_out_and_a_late_reply_is_counted_not_delivered() {
    let broker = Broker::new();
    let slow = broker.subscribe("slow").unwrap();
    let started = Instant::now();
    let err = broker
        .request("slow", "q", Duration::from_millis(30))
        .unwrap_err();
    assert!(started.elapsed() >= Duration::from_millis(30));
    assert!(matches!(err, RequestError::Timeout { .. }), "{err}");
    let req = slow.try_recv().unwrap();
    assert_eq!(req.reply("too late"), Err(ReplyError::RequesterGone));
    let r = broker.stats().requests;
    assert_eq!(
        (r.sent, r.replied, r.timed_out, r.late_replies),
        (1, 0, 1, 1)
    );
}

#[test]
fn the_first_reply_wins_and_later_ones_are_counted_as_surplus() {
    let broker = Broker::new();
    let a = broker.subscribe("q").unwrap();
    let b = broker.subscribe("q").unwrap();
    let requester = {
        let broker = broker.clone();
        thread::spawn(move || broker.request("q", "?", Duration::from_secs(5)))
    };
    let ra = a.recv_timeout(Duration::from_secs(5)).unwrap();
    let rb = b.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(ra.reply("from a"), Ok(()));
    assert_eq!(rb.reply("from b"), Err(ReplyError::AlreadyAnswered));
    assert_eq!(&requester.join().unwrap().unwrap().payload()[..], b"from a");
    assert_eq!(broker.stats().requests.surplus_replies, 1);
}

#[test]
fn replying_to_a_plain_message_is_an_error() {
    let broker = Broker::new();
    let sub = broker.subscribe("a").unwrap();
    broker.publish("a", "x").unwrap();
    let d = sub.try_recv().unwrap();
    assert!(!d.message().is_request());
    assert_eq!(d.reply("?"), Err(ReplyError::NotARequest));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_async_form_awaits_the_reply_and_a_dropped_future_makes_the_reply_late() {
    let broker = Broker::new();
    let sub = broker.subscribe("echo").unwrap();
    let pending = broker.request_async("echo", "ping").unwrap();
    let req = sub.recv_async().await.unwrap();
    req.reply("pong").unwrap();
    assert_eq!(&pending.await.unwrap().payload()[..], b"pong");

    let pending = broker.request_async("echo", "ping").unwrap();
    let timed = tokio::time::timeout(Duration::from_millis(20), pending).await;
    assert!(timed.is_err(), "nobody answered yet");
    let req = sub.recv_async().await.unwrap();
    assert_eq!(req.reply("late"), Err(ReplyError::RequesterGone));
    let r = broker.stats().requests;
    assert_eq!(
        (r.sent, r.replied, r.timed_out, r.late_replies),
        (2, 1, 1, 1)
    );
}

#[test]
fn concurrent_requests_with_timeouts_each_get_their_own_reply_or_time_out_and_the_counts_add_up() {
    let broker = Broker::new();
    let workers = broker
        .subscribe_with("work", SubscriptionOptions::new().capacity(4096))
        .unwrap();
    // Responders answer requests whose payload is even at once and sleep past the timeout on odd ones.
    let responders: Vec<_> = (0..3)
        .map(|_| {
            let sub = workers.clone();
            thread::spawn(move || {
                while let Ok(req) = sub.recv() {
                    let n: u32 = String::from_utf8_lossy(req.payload()).parse().unwrap();
                    if n % 2 == 1 {
                        thread::sleep(Duration::from_millis(30));
                    }
                    let _ = req.reply(format!("{n}"));
                }
            })
        })
        .collect();
    let requesters: Vec<_> = (0..4)
        .map(|r| {
            let broker = broker.clone();
            thread::spawn(move || {
                let (mut ok, mut timed_out) = (0u64, 0u64);
                for i in 0..50u32 {
                    let n = r * 1000 + i;
                    match broker.request("work", n.to_string(), Duration::from_millis(10)) {
                        Ok(reply) => {
                            assert_eq!(String::from_utf8_lossy(reply.payload()), n.to_string());
                            ok += 1;
                        }
                        Err(RequestError::Timeout { .. }) => timed_out += 1,
                        Err(e) => panic!("{e}"),
                    }
                }
                (ok, timed_out)
            })
        })
        .collect();
    let (mut ok, mut timed_out) = (0, 0);
    for r in requesters {
        let (o, t) = r.join().unwrap();
        ok += o;
        timed_out += t;
    }
    let id = workers.id();
    drop(workers);
    broker.unsubscribe(id).unwrap();
    for r in responders {
        r.join().unwrap();
    }
    let s = broker.stats();
    assert_eq!(s.requests.sent, 200);
    assert_eq!(s.requests.replied, ok);
    assert_eq!(s.requests.timed_out, timed_out);
    assert!(timed_out >= 100, "every odd request timed out");
    assert!(s.requests.late_replies <= timed_out);
    assert!(s.balances(), "{s:?}");
}

#[test]
fn a_request_whose_only_copy_is_dropped_by_an_unsubscribe_fails_at_once_with_the_reason() {
    let broker = Broker::new();
    let sub = broker.subscribe("jobs").unwrap();
    let pending = broker.request_async("jobs", "work").unwrap();
    broker.unsubscribe(sub.id()).unwrap();
    // The timeout is a bound for a broken build; the error must come from the drop, not from it.
    let err = pending.wait(Duration::from_secs(60)).unwrap_err();
    assert!(
        matches!(
            err,
            RequestError::Abandoned {
                dropped: Some(switchyard::DropReason::Unsubscribed),
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("unsubscribed"), "{err}");
    let stats = broker.stats().requests;
    assert_eq!((stats.abandoned, stats.timed_out), (1, 0));
}

#[test]
fn a_request_a_receiver_drops_unanswered_fails_at_once() {
    let broker = Broker::new();
    let sub = broker.subscribe("jobs").unwrap();
    let responder = thread::spawn(move || {
        let req = sub.recv().unwrap();
        drop(req); // taken, never answered
        sub
    });
    let err = broker
        .request("jobs", "work", Duration::from_secs(60))
        .unwrap_err();
    assert!(
        matches!(err, RequestError::Abandoned { dropped: None, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("without replying"), "{err}");
    drop(responder.join().unwrap());
}

#[test]
fn a_request_still_held_by_one_of_two_responders_waits_for_its_reply() {
    let broker = Broker::new();
    let quiet = broker.subscribe("jobs").unwrap();
    let answering = broker.subscribe("jobs").unwrap();
    let pending = broker.request_async("jobs", "work").unwrap();
    drop(quiet.try_recv().unwrap()); // one copy let go unanswered
    let held = answering.try_recv().unwrap();
    let replier = thread::spawn(move || {
        thread::sleep(Duration::from_millis(20));
        held.reply("done").unwrap();
    });
    assert_eq!(
        &pending.wait(Duration::from_secs(60)).unwrap().payload()[..],
        b"done"
    );
    replier.join().unwrap();
}

#[test]
fn a_dead_letter_of_a_request_cannot_be_answered_and_does_not_hold_the_requester() {
    let broker = Broker::with_options(switchyard::BrokerOptions::new().dead_letters(8));
    let full = broker
        .subscribe_with("jobs", SubscriptionOptions::new().capacity(1))
        .unwrap();
    broker.publish("jobs", "fills the queue").unwrap();
    let err = broker
        .request("jobs", "work", Duration::from_secs(60))
        .unwrap_err();
    assert!(matches!(err, RequestError::NotQueued { .. }), "{err}");
    let letter = broker.dead_letters().unwrap().try_recv().unwrap();
    assert!(!letter.message().is_request());
    drop(full);
}
