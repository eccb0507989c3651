//! `switchyard load --engine floor` (and `floor-lazy`, its queues made at the first message): the
//! hand-written floor runs the generator's exact-topic cases with books that balance, and refuses what
//! it does not do with exit 2 naming the option.

mod common;

use assert_cmd::Command;

#[test]
fn the_floor_engine_runs_a_small_exact_case_and_its_books_balance() {
    for engine in FLOORS {
        small_exact_case(engine);
    }
}

const FLOORS: [&str; 2] = ["floor", "floor-lazy"];

fn small_exact_case(engine: &str) {
    let json = common::load_json(&[
        "--engine",
        engine,
        "--publishers",
        "2",
        "--subscribers",
        "20",
        "--topics",
        "10",
        "--capacity",
        "8",
        "--messages",
        "20000",
    ]);
    assert_eq!(json["load"]["config"]["engine"], engine);
    let result = &json["load"]["result"];
    assert_eq!(result["balanced"], true, "{result}");
    let totals = &json["totals"];
    assert_eq!(totals["published"], 20000);
    assert_eq!(totals["unrouted"], 0);
    // Every topic has two subscriptions: each publish is offered twice, then delivered or dropped.
    let matched = totals["matched"].as_u64().unwrap();
    let delivered = totals["delivered"].as_u64().unwrap();
    let dropped = totals["dropped"].as_u64().unwrap();
    assert_eq!(matched, 40000);
    assert_eq!(matched, delivered + dropped, "drained at the end: {totals}");
    assert_eq!(totals["depth"], 0);
    for sub in json["subscriptions"].as_array().unwrap() {
        assert_eq!(sub["capacity"], 8, "{engine}: {sub}");
    }
}

#[test]
fn the_floor_engine_blocks_without_losing_a_message_under_a_block_policy() {
    for engine in FLOORS {
        blocking_case(engine);
    }
}

fn blocking_case(engine: &str) {
    let json = common::load_json(&[
        "--engine",
        engine,
        "--subscribers",
        "4",
        "--topics",
        "4",
        "--capacity",
        "4",
        "--policy",
        "block:1s",
        "--messages",
        "20000",
    ]);
    let totals = &json["totals"];
    assert_eq!(json["load"]["result"]["balanced"], true);
    assert_eq!(totals["delivered"], 20000, "{totals}");
    assert_eq!(totals["dropped"], 0);
}

fn refused(args: &[&str], expect_in_message: &str) {
    for engine in FLOORS {
        let out = Command::cargo_bin("switchyard")
            .unwrap()
            .args(["load", "--engine", engine, "--messages", "10"])
            .args(args)
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(2),
            "{engine} {args:?} should exit 2"
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(expect_in_message), "{engine} {args:?}: {err}");
        assert!(
            err.contains(&format!("--engine {engine} ")),
            "{engine}: {err}"
        );
        assert!(out.stdout.is_empty(), "{engine} {args:?} printed a summary");
    }
}

#[test]
fn the_floor_engine_refuses_wildcard_and_mixed_filters_naming_the_option() {
    refused(&["--filters", "wildcard"], "--filters wildcard");
    refused(&["--filters", "mixed"], "--filters mixed");
}

#[test]
fn the_floor_engine_refuses_drop_oldest_naming_the_option() {
    refused(&["--policy", "drop-oldest"], "--policy drop-oldest");
}
