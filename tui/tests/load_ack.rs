//! `switchyard load --ack`: acknowledged subscriptions with receivers that nack, time out and die, on
//! the switchyard core and on the naive acknowledged engine. Every message ends acked or dead-lettered,
//! nothing is left in flight after the drain, the books balance with in flight as a term, and the JSON
//! and the summary say so.

mod common;

use serde_json::Value;

/// Runs `--ack` with one receiver of each misbehaving kind per subscription, on `engine`.
fn misbehaving_run(engine: &str) -> Value {
    common::load_json(&[
        "--engine",
        engine,
        "--ack",
        "--subscribers",
        "2",
        "--receivers",
        "4",
        "--nack-share",
        "25%",
        "--timeout-share",
        "25%",
        "--die-share",
        "25%",
        "--ack-wait",
        "50ms",
        "--max-deliveries",
        "3",
        "--max-in-flight",
        "64",
        "--policy",
        "block:30s",
        "--messages",
        "20000",
    ])
}

/// What every `--ack` run must show, whatever the engine.
fn assert_every_message_acked_or_dead(json: &Value) {
    let result = &json["load"]["result"];
    assert_eq!(result["balanced"], true, "{result}");
    let totals = &json["totals"];
    assert_eq!(totals["published"], 20000);
    assert_eq!(totals["matched"], 40000, "two subscriptions on one topic");
    assert_eq!(
        totals["in_flight"], 0,
        "the drain settles everything: {totals}"
    );
    assert_eq!(totals["depth"], 0, "{totals}");
    let ack = &result["ack"];
    let acked = ack["acked"].as_u64().unwrap();
    let dead = ack["dead_lettered"].as_u64().unwrap();
    assert_eq!(
        acked + dead,
        40000,
        "each message acked or out of deliveries: {ack}"
    );
    assert_eq!(totals["delivered"].as_u64().unwrap(), acked);
    assert_eq!(
        result["dropped_by_reason"]["max_deliveries"]
            .as_u64()
            .unwrap(),
        dead
    );
    assert_eq!(
        result["dropped"].as_u64().unwrap(),
        dead,
        "nothing else dropped"
    );
    for kind in ["nacked", "expired", "handed_back", "redelivered"] {
        assert!(ack[kind].as_u64().unwrap() > 0, "{kind}: {ack}");
    }
    let redelivered = ack["redelivered"].as_u64().unwrap();
    let ended = ["nacked", "expired", "handed_back"]
        .map(|k| ack[k].as_u64().unwrap())
        .iter()
        .sum::<u64>();
    // Each attempt that ended without an ack is delivered again or dead-lettered, never both.
    assert_eq!(redelivered + dead, ended, "{ack}");
    let config = &json["load"]["config"]["ack"];
    assert_eq!(
        (&config["nacking"], &config["timing_out"], &config["dying"]),
        (&Value::from(2), &Value::from(2), &Value::from(2)),
        "one of each per subscription: {config}"
    );
    assert_eq!(config["ack_wait_ms"], 50);
    for s in json["subscriptions"].as_array().unwrap() {
        assert_eq!(s["ack"]["max_in_flight"], 64, "{s}");
        assert_eq!(s["receivers"], 4, "a dead receiver is replaced: {s}");
    }
}

#[test]
fn misbehaving_receivers_lose_nothing_on_the_switchyard_core() {
    let json = misbehaving_run("switchyard");
    assert_every_message_acked_or_dead(&json);
}

#[test]
fn misbehaving_receivers_lose_nothing_on_the_naive_acknowledged_engine() {
    let json = misbehaving_run("naive");
    assert_every_message_acked_or_dead(&json);
    assert_eq!(json["load"]["config"]["engine"], "naive");
}

#[test]
fn the_summary_reports_acks_redeliveries_dead_letters_and_in_flight() {
    let out = common::switchyard()
        .args(["load", "--no-progress", "--ack", "--receivers", "2"])
        .args(["--nack-share", "50%", "--max-deliveries", "2"])
        .args(["--policy", "block:30s", "--messages", "2000"])
        .output()
        .unwrap();
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{summary}");
    for line in [
        "ack         acknowledged: ack wait 1000 ms, window 1,000, at most 2 deliveries; \
         receivers nacking 1, timing out 0, dying 0",
        "acked ",
        "redelivered ",
        "dead-lettered ",
        "in flight                  0   at the end",
        "books       balanced: matched = delivered + dropped + depth + in_flight",
    ] {
        assert!(summary.contains(line), "{line:?} in\n{summary}");
    }
}

#[test]
fn ack_options_without_ack_and_shares_over_the_whole_are_refused_with_exit_2() {
    for args in [
        &["--nack-share", "10%"][..],
        &["--ack", "--nack-share", "60%", "--die-share", "60%"],
        &["--ack", "--timeout-share", "1.5"],
    ] {
        let out = common::switchyard()
            .arg("load")
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("share"), "{args:?}: {err}");
    }
}
