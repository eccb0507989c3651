//! `switchyard load` and memory: a run whose subscriptions cannot fit in the memory available is refused
//! before it subscribes anything (exit 2, naming the figure and the options to change), and a signal
//! while millions of subscriptions are being made stops the subscribing at once, reports, and exits 0.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn binary() -> std::path::PathBuf {
    assert_cmd::cargo::cargo_bin("switchyard")
}

#[test]
fn a_run_that_cannot_fit_in_memory_is_refused_before_it_starts() {
    // 100,000 subscriptions of 1,000,000 slots: about 1.5 TiB. The address-space limit keeps a
    // regression from eating the machine: without the check the run dies allocating, not with 2.
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -v 8000000; exec '{}' load --subscribers 100000 --capacity 1000000 --duration 1s",
            binary().display()
        ))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    for part in [
        "--subscribers 100,000 need about 1.5 TiB at --capacity 1,000,000",
        "17,002,738 B per subscription with its queues full",
        "is available",
        "Lower --capacity (at most",
        "or --subscribers (at most",
    ] {
        assert!(err.contains(part), "{part:?} not in: {err}");
    }
    assert!(out.stdout.is_empty(), "the run started");
}

#[test]
fn ctrl_c_while_subscribing_a_million_stops_at_once_and_reports() {
    let started = Instant::now();
    let child = Command::new(binary())
        .args(["load", "--no-progress"])
        .args([
            "--subscribers",
            "1000000",
            "--capacity",
            "1",
            "--duration",
            "30s",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Subscribing a million takes seconds; interrupt it early.
    std::thread::sleep(Duration::from_millis(400));
    let status = Command::new("sh")
        .args(["-c", &format!("kill -INT {}", child.id())])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
    // The summary (the JSON of ~100,000 subscriptions would be slow to parse here).
    let summary = String::from_utf8_lossy(&out.stdout);
    let made: u64 = summary
        .split("while subscribing: ")
        .nth(1)
        .and_then(|rest| rest.split(" of 1,000,000").next())
        .map(|n| n.replace(',', "").parse().unwrap())
        .unwrap_or_else(|| panic!("no count of subscriptions made in: {summary}"));
    assert!((1..1_000_000).contains(&made), "{made} subscriptions made");
    assert!(summary.contains("nothing published"), "{summary}");
    assert!(
        summary
            .lines()
            .any(|l| l.starts_with("published") && l.contains(" 0 ")),
        "{summary}"
    );
    assert!(summary.contains("books       balanced"), "{summary}");
}
