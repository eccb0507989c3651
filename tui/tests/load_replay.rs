//! `switchyard load --replay-log` and `--replay`: a replay log on the broker under load, and late
//! joiners that subscribe while the publishers run and start from it. Each late joiner gets every
//! message from its start to the end exactly once, or is told in-band of what the log had evicted,
//! and the run's JSON and summary say what they got; bad combinations exit 2 naming the flags.

mod common;

use serde_json::Value;

/// The `load.result.late_joiners` section of a run.
fn late_joiners(json: &Value) -> &Value {
    &json["load"]["result"]["late_joiners"]
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

/// The subscription named `name` in the snapshot.
fn subscription<'a>(json: &'a Value, name: &str) -> &'a Value {
    json["subscriptions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no subscription {name}"))
}

#[test]
fn late_joiners_from_oldest_replay_the_log_then_take_the_rest_live_each_message_once() {
    // They join once half the messages are published (the default), under `block`, so nothing is
    // dropped: each must end with all 20,000 sequence numbers, some from the log, once each.
    let json = common::load_json(&[
        "--publishers",
        "2",
        "--topics",
        "4",
        "--subscribers",
        "4",
        "--messages",
        "20000",
        "--rate",
        "40000",
        "--policy",
        "block:30s",
        "--replay-log",
        "100000",
        "--replay",
        "oldest",
        "--late-joiners",
        "2",
    ]);
    let result = &json["load"]["result"];
    assert_eq!(result["balanced"], true, "{result}");
    let late = late_joiners(&json);
    assert_eq!(late["exactly_once"], true, "{late}");
    assert_eq!(u(&late["gap"]), 0, "oldest has no gap: {late}");
    let joiners = late["joiners"].as_array().unwrap();
    assert_eq!(joiners.len(), 2);
    for j in joiners {
        assert_eq!(j["from_seq"], 1, "the log held everything: {j}");
        assert_eq!(j["last_seq"], 20000, "{j}");
        assert_eq!(u(&j["received"]), 20000, "every number once: {j}");
        assert_eq!(
            (u(&j["holes"]), u(&j["twice"]), u(&j["outside"])),
            (0, 0, 0)
        );
        assert!(
            u(&j["until_seq"]) > 10000,
            "joined after half was published: {j}"
        );
        assert!(
            u(&j["replayed"]) >= 10000,
            "what was published before the join came from the log: {j}"
        );
        assert_eq!(u(&j["replayed"]) + u(&j["live"]), 20000, "{j}");
        let name = j["name"].as_str().unwrap();
        let sub = subscription(&json, name);
        assert_eq!(sub["filter"], "load/#");
        assert_eq!(sub["delivered"], 20000, "{sub}");
        assert_eq!(sub["replay"]["from"], "oldest");
        assert_eq!(sub["replay"]["replayed"], j["replayed"]);
        assert_eq!(sub["replay"]["done"], true);
    }
    let totals = &json["totals"];
    assert_eq!(totals["published"], 20000);
    assert_eq!(
        totals["delivered"],
        20000 + 2 * 20000,
        "one subscription per topic, and the two late joiners: {totals}"
    );
    let log = &json["replay_log"];
    assert_eq!(
        (u(&log["messages"]), u(&log["next_seq"])),
        (20000, 20001),
        "{log}"
    );
    let config = &json["load"]["config"]["replay"];
    assert_eq!(config["log"]["max_messages"], 100000);
    assert_eq!(config["late_joiners"]["from"], "oldest");
    assert_eq!(config["late_joiners"]["count"], 2);
    assert_eq!(config["late_joiners"]["join"]["after_published"], 10000);
}

#[test]
fn a_start_the_log_has_evicted_is_told_to_each_late_joiner_as_a_gap_and_counted() {
    // A log of 1,000 messages and a start at sequence number 1, joining after 10,000: numbers 1 to at
    // least 9,000 are gone, told in-band as evicted, and the rest arrive once each.
    let json = common::load_json(&[
        "--messages",
        "20000",
        "--rate",
        "40000",
        "--policy",
        "block:30s",
        "--replay-log",
        "1000",
        "--replay",
        "seq:1",
    ]);
    assert_eq!(json["load"]["result"]["balanced"], true);
    let late = late_joiners(&json);
    assert_eq!(late["exactly_once"], true, "{late}");
    let j = &late["joiners"][0];
    let gap = u(&j["gap"]);
    assert!(
        gap >= 9000,
        "at least 9,000 numbers were evicted before the join: {j}"
    );
    assert_eq!(
        u(&j["told_missed"]["evicted"]),
        gap,
        "the gap is told in-band: {j}"
    );
    assert_eq!(u(&j["holes"]), gap, "nothing is missing but the gap: {j}");
    assert_eq!(u(&j["received"]) + gap, 20000, "{j}");
    assert_eq!(j["from_seq"], 1);
    let sub = subscription(&json, "late-0");
    assert_eq!(u(&sub["replay"]["gap"]), gap);
    assert_eq!(u(&sub["dropped_by_reason"]["evicted"]), gap);
    assert_eq!(
        u(&json["load"]["result"]["dropped_by_reason"]["evicted"]),
        gap
    );
    assert_eq!(u(&late["gap"]), gap);
    let log = &json["replay_log"];
    assert_eq!(u(&log["messages"]), 1000, "{log}");
    assert_eq!(u(&log["evicted"]["max_messages"]), 19000, "{log}");
}

#[test]
fn late_joiners_from_the_last_n_replay_at_most_n() {
    let json = common::load_json(&[
        "--messages",
        "10000",
        "--rate",
        "20000",
        "--policy",
        "block:30s",
        "--replay-log",
        "100000",
        "--replay",
        "last:100",
    ]);
    let late = late_joiners(&json);
    assert_eq!(late["exactly_once"], true, "{late}");
    let j = &late["joiners"][0];
    assert_eq!(u(&j["from_seq"]), u(&j["until_seq"]) - 100, "{j}");
    assert!(u(&j["replayed"]) <= 100, "{j}");
    assert_eq!(u(&j["received"]), 10000 - u(&j["from_seq"]) + 1, "{j}");
}

#[test]
fn late_joiners_also_replay_on_an_acknowledged_run() {
    let json = common::load_json(&[
        "--ack",
        "--messages",
        "5000",
        "--rate",
        "20000",
        "--policy",
        "block:30s",
        "--replay-log",
        "10000",
        "--replay",
        "oldest",
    ]);
    assert_eq!(json["load"]["result"]["balanced"], true);
    let late = late_joiners(&json);
    assert_eq!(late["exactly_once"], true, "{late}");
    assert_eq!(u(&late["joiners"][0]["received"]), 5000, "{late}");
}

#[test]
fn a_log_alone_numbers_every_publish_and_has_no_late_joiners() {
    let json = common::load_json(&["--messages", "3000", "--replay-log", "1000"]);
    assert_eq!(json["load"]["result"]["late_joiners"], Value::Null);
    assert_eq!(
        json["load"]["config"]["replay"]["late_joiners"],
        Value::Null
    );
    let log = &json["replay_log"];
    assert_eq!(
        (u(&log["next_seq"]), u(&log["messages"])),
        (3001, 1000),
        "{log}"
    );
    assert_eq!(log["filter"], "load/#");
    assert_eq!(
        json["load"]["config"]["replay"]["log"]["max_bytes"],
        64 << 20
    );
}

#[test]
fn the_summary_says_what_the_late_joiners_got() {
    let out = common::switchyard()
        .args([
            "load",
            "--no-progress",
            "--messages",
            "4000",
            "--rate",
            "20000",
        ])
        .args([
            "--policy",
            "block:30s",
            "--replay-log",
            "500",
            "--replay",
            "seq:1",
        ])
        .args(["--replay-log-age", "1h"])
        .output()
        .unwrap();
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{summary}");
    for line in [
        "replay      a log of load/#: at most 500 messages, 64.0 MiB of topics and payloads, none \
         older than 1h; 1 late joiner(s) from seq:1, subscribing once 2,000 messages are published",
        "replay log               500   held at the end",
        "evicted 3,500 (max_messages 3,500, max_bytes 0, max_age 0)",
        "timeout 0, unsubscribed 0; the gap, evicted before they got to it: ",
        "late joiners               1   joined at",
        "every message from its start exactly once, or told it missed it: yes",
    ] {
        assert!(summary.contains(line), "{line:?} in\n{summary}");
    }
}

#[test]
fn an_acknowledged_summary_says_which_deliveries_were_not_acked() {
    // The late joiner is a plain subscription: its 3,000 deliveries are in `delivered` and are
    // not acks, so the summary must not call every delivery acked.
    let out = common::switchyard()
        .args(["load", "--no-progress", "--ack", "--messages", "3000"])
        .args(["--rate", "20000", "--policy", "block:30s"])
        .args(["--replay-log", "10000", "--replay", "oldest"])
        .output()
        .unwrap();
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{summary}");
    for line in [
        "delivered              6,000",
        "acked                  3,000   (of the delivered above; the other 3,000 were taken by plain \
         subscriptions, which do not ack)",
    ] {
        assert!(summary.contains(line), "{line:?} in\n{summary}");
    }
    let alone = common::switchyard()
        .args(["load", "--no-progress", "--ack", "--messages", "3000"])
        .args(["--policy", "block:30s"])
        .output()
        .unwrap();
    let summary = String::from_utf8_lossy(&alone.stdout);
    assert!(
        summary.contains("acked                  3,000   (the delivered above)"),
        "{summary}"
    );
}

#[test]
fn a_start_beyond_the_log_fails_the_run_naming_the_late_joiner() {
    let out = common::switchyard()
        .args([
            "load",
            "--no-progress",
            "--messages",
            "1000",
            "--replay-log",
            "10000",
        ])
        .args(["--replay", "seq:1000000"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("late joiner late-0 could not start at seq:1000000"),
        "{err}"
    );
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(summary.contains("told it missed it: NO"), "{summary}");
}

/// Runs `load ARGS`, which must exit 2 before anything runs, naming each of `names`.
fn refused(args: &[&str], names: &[&str]) {
    let out = common::switchyard()
        .arg("load")
        .args(args)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    for name in names {
        assert!(err.contains(name), "{args:?} should name {name}: {err}");
    }
    assert!(out.stdout.is_empty(), "{args:?} printed a summary");
}

#[test]
fn bad_replay_combinations_exit_2_naming_the_flags() {
    refused(&["--replay", "oldest"], &["--replay needs --replay-log"]);
    refused(
        &["--replay-log", "10", "--engine", "naive"],
        &["--replay-log", "--engine naive"],
    );
    refused(
        &[
            "--replay-log",
            "10",
            "--replay",
            "oldest",
            "--engine",
            "floor",
        ],
        &["--replay", "--engine floor"],
    );
    refused(
        &[
            "--replay-log",
            "10",
            "--replay",
            "oldest",
            "--mqtt",
            "127.0.0.1:1883",
        ],
        &["--replay", "--mqtt"],
    );
    refused(
        &["--replay-log", "10", "--scenarios"],
        &["--replay-log", "--scenarios"],
    );
    refused(&["--late-joiners", "2"], &["--late-joiners", "--replay"]);
    refused(&["--join-after", "1s"], &["--join-after", "--replay"]);
    refused(
        &["--replay-log-bytes", "1MiB"],
        &["--replay-log-bytes", "--replay-log"],
    );
    refused(
        &["--replay-log", "10", "--replay", "oldest", "--no-drain"],
        &["--replay", "--no-drain"],
    );
    refused(
        &[
            "--replay-log",
            "10",
            "--replay",
            "oldest",
            "--duration",
            "1s",
            "--join-after",
            "2s",
        ],
        &["--join-after 2s", "--duration 1s"],
    );
    refused(
        &["--replay-log", "10", "--replay", "newest"],
        &["--replay", "oldest, last:N or seq:N"],
    );
    refused(
        &["--replay-log", "10", "--replay", "seq:0"],
        &["--replay", "at least 1"],
    );
    refused(
        &["--replay-log", "10", "--replay-log-bytes", "1MB"],
        &["--replay-log-bytes", "unknown unit `MB`"],
    );
    refused(&["--replay-log", "0"], &["--replay-log"]);
    refused(
        &[
            "--replay-log",
            "10",
            "--replay",
            "oldest",
            "--late-joiners",
            "65",
        ],
        &["--late-joiners"],
    );
}
