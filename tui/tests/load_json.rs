//! `switchyard load --json`: the final snapshot is complete, typed as the schema says, and balances.

use std::path::Path;

use assert_cmd::Command;
use serde_json::Value;

fn load() -> Command {
    let mut cmd = Command::cargo_bin("switchyard").expect("the switchyard binary is built");
    cmd.arg("load").arg("--no-progress");
    cmd
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("the JSON file exists"))
        .expect("valid JSON")
}

fn assert_u64(v: &Value, field: &str) {
    assert!(
        v[field].is_u64(),
        "{field} should be an unsigned integer: {v}"
    );
}

fn assert_f64(v: &Value, field: &str) {
    assert!(v[field].is_number(), "{field} should be a number: {v}");
}

#[test]
fn the_json_snapshot_has_every_schema_field_with_its_type_and_balances() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.json");
    load()
        .args([
            "--publishers",
            "2",
            "--subscribers",
            "5",
            "--topics",
            "4",
            "--filters",
            "mixed",
        ])
        .args(["--messages", "4000", "--latency-every", "1", "--json"])
        .arg(&path)
        .assert()
        .success();
    let v = read_json(&path);
    assert_eq!(v["schema"], "switchyard.stats/v1");
    assert!(
        v["taken_at"].as_str().unwrap().ends_with('Z'),
        "{}",
        v["taken_at"]
    );
    assert_f64(&v, "uptime_s");
    let t = &v["totals"];
    for f in [
        "published",
        "unrouted",
        "matched",
        "delivered",
        "dropped",
        "depth",
        "subscriptions",
    ] {
        assert_u64(t, f);
    }
    for f in ["published_per_s", "delivered_per_s", "dropped_per_s"] {
        assert_f64(&v["rates"], f);
    }
    let subs = v["subscriptions"].as_array().unwrap();
    assert_eq!(subs.len(), 5);
    for s in subs {
        for f in [
            "id",
            "capacity",
            "matched",
            "delivered",
            "dropped",
            "depth",
            "high_water",
            "receivers",
        ] {
            assert_u64(s, f);
        }
        for f in ["name", "filter", "policy"] {
            assert!(s[f].is_string(), "{f}: {s}");
        }
        let by = &s["dropped_by_reason"];
        for f in ["queue_full", "evicted", "timeout", "unsubscribed"] {
            assert_u64(by, f);
        }
        let n = |f: &str| s[f].as_u64().unwrap();
        assert_eq!(
            n("matched"),
            n("delivered") + n("dropped") + n("depth"),
            "{s}"
        );
    }
    let lat = &v["latency_us"];
    assert!(lat["count"].as_u64().unwrap() > 0, "{lat}");
    for f in ["p50", "p90", "p99", "p999", "max"] {
        assert_f64(lat, f);
    }
    assert!(lat["p50"].as_f64().unwrap() <= lat["max"].as_f64().unwrap());
    let load = &v["load"];
    assert_eq!(load["config"]["publishers"], 2);
    assert_eq!(load["config"]["filters"], "mixed");
    assert_eq!(load["config"]["policy"], "drop-newest");
    let r = &load["result"];
    assert_eq!(r["published"], 4000);
    assert_eq!(r["complete"], true);
    assert_eq!(r["balanced"], true);
    for f in ["publish_s", "drain_s", "published_per_s", "delivered_per_s"] {
        assert_f64(r, f);
    }
    for f in ["rss_start_bytes", "rss_end_bytes"] {
        assert!(r[f].as_u64().unwrap() > 0, "{f}: {r}");
    }
    assert_eq!(t["published"], 4000);
    assert_eq!(
        t["matched"],
        t["delivered"].as_u64().unwrap()
            + t["dropped"].as_u64().unwrap()
            + t["depth"].as_u64().unwrap()
    );
}

#[test]
fn json_to_stdout_moves_the_summary_to_stderr() {
    let out = load()
        .args(["--messages", "500", "--json", "-"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: Value =
        serde_json::from_slice(&out.stdout).expect("stdout is exactly the JSON snapshot");
    assert_eq!(v["load"]["result"]["published"], 500);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("published") && err.contains("books"), "{err}");
}

#[test]
fn the_human_summary_reports_throughput_latency_drops_and_memory() {
    let out = load().args(["--messages", "1000"]).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for word in [
        "published",
        "delivered",
        "dropped",
        "latency",
        "p99.9",
        "RSS",
        "balanced",
    ] {
        assert!(text.contains(word), "missing {word}: {text}");
    }
}

#[test]
fn stats_jsonl_appends_one_whole_snapshot_per_interval() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stats.jsonl");
    load()
        .args([
            "--duration",
            "650ms",
            "--rate",
            "20000",
            "--stats-every",
            "100ms",
            "--stats-jsonl",
        ])
        .arg(&path)
        .assert()
        .success();
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    assert!((4..=7).contains(&lines.len()), "{} lines", lines.len());
    for l in &lines {
        assert_eq!(l["schema"], "switchyard.stats/v1");
        assert_eq!(l["load"]["result"]["complete"], false);
    }
    let published: Vec<u64> = lines
        .iter()
        .map(|l| l["totals"]["published"].as_u64().unwrap())
        .collect();
    assert!(published.windows(2).all(|w| w[0] <= w[1]), "{published:?}");
}

/// Lines written during a run agree with themselves: the `load.result` counts come from the same
/// snapshot as its `totals` (before, `matched`, the drops by reason and `depth` were 0 beside a non-zero
/// `dropped`), and `balanced`, a verdict on the books at rest, is left out until the final snapshot.
#[test]
fn stats_jsonl_lines_during_a_run_agree_with_their_totals_and_leave_out_balanced() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stats.jsonl");
    let json = dir.path().join("final.json");
    load()
        .args(["--duration", "600ms", "--rate", "20000", "--capacity", "4"])
        .args(["--slow", "1:2ms", "--stats-every", "100ms", "--stats-jsonl"])
        .arg(&path)
        .arg("--json")
        .arg(&json)
        .assert()
        .success();
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    assert!(lines.len() >= 3, "{} lines", lines.len());
    for l in &lines {
        let (r, t) = (&l["load"]["result"], &l["totals"]);
        assert_eq!(r["complete"], false);
        assert!(r.get("balanced").is_none(), "balanced during a run: {r}");
        for f in ["published", "matched", "delivered", "dropped", "depth"] {
            assert_eq!(r[f], t[f], "{f}: {r}");
        }
        let by_reason: u64 = r["dropped_by_reason"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_u64().unwrap())
            .sum();
        assert_eq!(by_reason, r["dropped"].as_u64().unwrap(), "{r}");
    }
    let last = &lines[lines.len() - 1]["load"]["result"];
    assert!(
        last["dropped"].as_u64().unwrap() > 0 && last["matched"].as_u64().unwrap() > 0,
        "the slow consumer with capacity 4 drops: {last}"
    );
    let end = read_json(&json);
    assert_eq!(end["load"]["result"]["balanced"], true);
    assert_eq!(end["load"]["result"]["complete"], true);
}
