//! Durable subscriptions: they outlive their receivers, save to and restore from a state file written
//! atomically, and a corrupt file is a clear error that leaves the file untouched.

use std::fs;
use std::path::PathBuf;
use std::time::Duration;

use switchyard::{Broker, OverflowPolicy, StateError, SubscribeError, SubscriptionOptions};

fn temp_dir(test: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("switchyard-durable-{test}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

fn durable(name: &str) -> SubscriptionOptions {
    SubscriptionOptions::new().name(name).durable(true)
}

#[test]
fn a_durable_subscription_keeps_queueing_after_its_last_receiver_is_dropped() {
    let broker = Broker::new();
    let sub = broker
        .subscribe_with("orders/#", durable("billing"))
        .unwrap();
    drop(sub);
    broker.publish("orders/1", "while nobody listens").unwrap();
    let again = broker.attach("billing").unwrap();
    assert_eq!(
        &again.try_recv().unwrap().payload()[..],
        b"while nobody listens"
    );
    let same = broker
        .subscribe_with("orders/#", durable("billing"))
        .unwrap();
    assert_eq!(
        same.id(),
        again.id(),
        "subscribing again attaches to the same subscription"
    );
    assert!(broker.stats().subscriptions[0].durable);
    again.unsubscribe();
    assert!(
        broker.attach("billing").is_none(),
        "an explicit unsubscribe ends it"
    );
}

#[test]
fn durable_subscriptions_need_a_unique_name_per_filter() {
    let broker = Broker::new();
    assert_eq!(
        broker
            .subscribe_with("a", SubscriptionOptions::new().durable(true))
            .unwrap_err(),
        SubscribeError::DurableNeedsName
    );
    let _a = broker.subscribe_with("a", durable("x")).unwrap();
    let err = broker.subscribe_with("b", durable("x")).unwrap_err();
    assert_eq!(
        err,
        SubscribeError::DurableNameTaken {
            name: "x".into(),
            filter: "a".into()
        }
    );
}

#[test]
fn saved_state_restores_the_durable_subscriptions_with_their_options_but_not_their_messages() {
    let dir = temp_dir("roundtrip");
    let path = dir.join("state.json");
    let broker = Broker::new();
    let opts = durable("audit")
        .capacity(32)
        .policy(OverflowPolicy::Block {
            timeout: Duration::from_millis(250),
        })
        .joinable(true);
    let _audit = broker.subscribe_with("events/#", opts).unwrap();
    let _plain = broker.subscribe("not/durable").unwrap();
    broker.publish("events/x", "in memory only").unwrap();
    broker.save_state(&path).unwrap();

    let restarted = Broker::new();
    assert_eq!(restarted.restore_state(&path).unwrap(), 1);
    let audit = restarted.attach("audit").unwrap();
    assert_eq!(audit.filter().as_str(), "events/#");
    assert_eq!(audit.capacity(), 32);
    assert_eq!(
        audit.policy(),
        OverflowPolicy::Block {
            timeout: Duration::from_millis(250)
        }
    );
    assert!(audit.try_recv().is_err(), "messages are not persisted");
    assert_eq!(restarted.stats().subscriptions.len(), 1);
    assert_eq!(restarted.durable_state(), broker.durable_state());
    let leftovers: Vec<_> = fs::read_dir(&dir).unwrap().collect();
    assert_eq!(leftovers.len(), 1, "no temporary file is left behind");
}

#[test]
fn a_missing_state_file_restores_nothing() {
    let dir = temp_dir("missing");
    assert_eq!(
        Broker::new().restore_state(dir.join("none.json")).unwrap(),
        0
    );
}

#[test]
fn a_corrupt_state_file_is_an_error_naming_the_file_and_the_problem_and_is_left_untouched() {
    let dir = temp_dir("corrupt");
    let path = dir.join("state.json");
    for (content, expect) in [
        (&b"{ half a file"[..], "line 1"),
        (br#"{"schema":"other/v9","subscriptions":[]}"#, "other/v9"),
        (
            br#"{"schema":"switchyard.state/v1","subscriptions":[{"name":"a","filter":"a/#/b","capacity":4,"policy":"drop-newest"}]}"#,
            "subscription `a`",
        ),
    ] {
        fs::write(&path, content).unwrap();
        let err = Broker::new().restore_state(&path).unwrap_err();
        assert!(err.is_corrupt(), "{err}");
        let text = err.to_string();
        assert!(text.contains("state.json"), "{text}");
        assert!(text.contains(expect), "{text}");
        assert_eq!(fs::read(&path).unwrap(), content, "the file is never overwritten");
    }
}

#[test]
fn an_unreadable_state_path_is_an_io_error_not_corruption() {
    let dir = temp_dir("unreadable");
    let err = Broker::new().restore_state(&dir).unwrap_err();
    assert!(matches!(err, StateError::Unreadable { .. }), "{err}");
    assert!(!err.is_corrupt());
}
