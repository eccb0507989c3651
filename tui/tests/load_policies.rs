//! `--slow` with each overflow policy: drop-newest drops (and says which subscription), block loses
//! nothing.

mod common;

use common::load_json;

#[test]
fn a_slow_consumer_under_drop_newest_drops_and_the_books_still_balance() {
    let v = load_json(&[
        "--subscribers",
        "3",
        "--slow",
        "1:1ms",
        "--capacity",
        "16",
        "--messages",
        "3000",
    ]);
    let slow = &v["subscriptions"][0];
    assert!(
        slow["dropped_by_reason"]["queue_full"].as_u64().unwrap() > 0,
        "{slow}"
    );
    assert_eq!(slow["high_water"], 16);
    assert_eq!(v["load"]["result"]["balanced"], true);
    assert_eq!(v["load"]["config"]["slow"]["subscriptions"], 1);
}

#[test]
fn a_slow_consumer_under_block_loses_nothing() {
    let v = load_json(&[
        "--subscribers",
        "2",
        "--slow",
        "1:100us",
        "--capacity",
        "8",
        "--policy",
        "block:10s",
        "--messages",
        "1500",
    ]);
    let t = &v["totals"];
    assert_eq!(t["published"], 1500);
    assert_eq!(t["dropped"], 0, "{t}");
    assert_eq!(t["matched"], 3000);
    assert_eq!(t["delivered"], t["matched"], "{t}");
    assert_eq!(v["subscriptions"][0]["policy"], "block");
    assert_eq!(v["load"]["config"]["policy"], "block:10s");
}

#[test]
fn no_drain_leaves_what_is_queued_counted_as_depth() {
    let v = load_json(&[
        "--subscribers",
        "1",
        "--slow",
        "1:50ms",
        "--capacity",
        "64",
        "--messages",
        "64",
        "--no-drain",
    ]);
    let t = &v["totals"];
    assert!(t["depth"].as_u64().unwrap() > 0, "{t}");
    assert_eq!(v["load"]["result"]["balanced"], true);
}
