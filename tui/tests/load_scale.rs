//! A hundred thousand subscriptions run on a few pooled consumer threads.
//!
//! Subscribing is the core's cost, not the generator's: 100,000 subscribes take about 2.7 s in a release
//! build and 15 s unoptimised, so a debug test run checks 10,000 (the same code path, pooled on the
//! same threads) and `cargo test --release` checks the full 100,000.

mod common;

const SUBSCRIPTIONS: u64 = if cfg!(debug_assertions) {
    10_000
} else {
    100_000
};

#[test]
fn a_hundred_thousand_subscriptions_run_on_pooled_consumers_in_release_ten_thousand_in_debug() {
    let v = common::load_json(&[
        "--capacity",
        "4",
        "--subscribers",
        &SUBSCRIPTIONS.to_string(),
        "--topics",
        "1000",
        "--messages",
        "2000",
    ]);
    assert_eq!(v["totals"]["subscriptions"], SUBSCRIPTIONS);
    assert_eq!(v["load"]["result"]["balanced"], true);
    let threads = v["load"]["config"]["consumer_threads"].as_u64().unwrap();
    assert!(threads <= std::thread::available_parallelism().unwrap().get() as u64);
    // Each message on topic j reaches the subscriptions whose index is j mod 1000.
    assert_eq!(v["totals"]["matched"], 2000 * (SUBSCRIPTIONS / 1000));
}
