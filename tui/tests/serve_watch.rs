//! Watching `switchyard serve` while it runs (issue 18, row 11): its stats endpoint shows the MQTT
//! listener and the bridge in `/v1/stats` and `/metrics` (up and down, the last error, counts both
//! ways), and an attached dashboard shows them in its MQTT clients view. The remote broker is a second
//! `switchyard serve`, stopped halfway through; messages come in through its own endpoint.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::tmux::{Tmux, require_tmux, wait_for_line};
use common::{Killed, free_port, switchyard};
use switchyard_observe::{Client, PublishRequest, StatsParams};

/// A running `switchyard serve --mqtt 127.0.0.1:0 --serve 127.0.0.1:0` with a token file and `extra`
/// options; its stdout and stderr go to files in `dir`.
struct Served {
    process: Killed,
    mqtt: String,
    client: Client,
    stderr: PathBuf,
}

fn serve(dir: &Path, name: &str, extra: &[&str]) -> Served {
    let stdout = dir.join(format!("{name}.out"));
    let stderr = dir.join(format!("{name}.err"));
    let token = dir.join(format!("{name}.token"));
    let process = Killed(
        switchyard()
            .args(["serve", "--mqtt", "127.0.0.1:0", "--serve", "127.0.0.1:0"])
            .arg("--serve-token-file")
            .arg(&token)
            .args(extra)
            .stdout(std::fs::File::create(&stdout).unwrap())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let endpoint = wait_for_line(&stderr, "stats endpoint on http://");
    let endpoint = endpoint
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap();
    let mqtt = common::mqtt_address(&wait_for_line(&stdout, "MQTT on "));
    let client = Client::new(endpoint)
        .unwrap()
        .with_token(Some(switchyard_observe::read_token_file(&token).unwrap()));
    Served {
        process,
        mqtt,
        client,
        stderr,
    }
}

/// The first bridge of `/v1/stats`, once `done` holds for it (within 20 s).
fn bridge_when(
    served: &Served,
    what: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let stats = served.client.stats(&StatsParams::default()).unwrap();
        let bridges = stats.sections.get("bridges");
        let bridge = bridges.expect("a `bridges` section in /v1/stats")[0].clone();
        if done(&bridge) {
            return bridge;
        }
        assert!(Instant::now() < deadline, "{what}: {bridge}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn publish(served: &Served, topic: &str, count: u64) {
    served
        .client
        .publish(&PublishRequest {
            topic: topic.into(),
            payload: "m".into(),
            priority: None,
            retain: false,
            count: Some(count),
        })
        .unwrap();
}

/// The value of the series that starts with `series` (name and labels) in OpenMetrics `text`.
fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
}

#[test]
fn while_serve_runs_its_endpoint_shows_the_bridge_up_and_down_with_counts_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    let remote = serve(dir.path(), "remote", &[]);
    let url = format!("mqtt://{}", remote.mqtt);
    let local = serve(
        dir.path(),
        "local",
        &[
            "--bridge",
            &url,
            "--bridge-out",
            "out/#",
            "--bridge-in",
            "in/#",
        ],
    );
    let up = bridge_when(&local, "connected and subscribed", |b| {
        b["connected"] == true && b["in_subscribed"] == true
    });
    assert_eq!(up["remote"], remote.mqtt.as_str());

    publish(&local, "out/t", 3);
    publish(&remote, "in/t", 2);
    let counted = bridge_when(&local, "3 out, 2 in", |b| {
        b["out_forwarded"] == 3 && b["in_published"] == 2
    });
    assert_eq!(counted["in_received"], 2, "{counted}");

    let text = local.client.metrics().unwrap();
    let remote_label = format!("{{remote=\"{}\"}}", remote.mqtt);
    assert_eq!(
        metric(&text, &format!("switchyard_bridge_connected{remote_label}")),
        1.0
    );
    assert_eq!(
        metric(
            &text,
            &format!("switchyard_bridge_out_forwarded_total{remote_label}")
        ),
        3.0
    );
    assert_eq!(
        metric(
            &text,
            &format!("switchyard_bridge_in_published_total{remote_label}")
        ),
        2.0
    );
    // The listener's own series: the bridge of the remote is not a client here, nothing is open.
    assert_eq!(metric(&text, "switchyard_mqtt_connections_open"), 0.0);
    let stats = remote.client.stats(&StatsParams::default()).unwrap();
    assert_eq!(
        stats.sections["mqtt"]["open"], 1,
        "the local bridge is the remote's client"
    );

    drop(remote); // killed: the bridge loses its connection and cannot make a new one
    let down = bridge_when(&local, "down with an error", |b| {
        b["connected"] == false && !b["last_error"].is_null()
    });
    assert!(down["connection_errors"].as_u64().unwrap() >= 1, "{down}");
    let text = local.client.metrics().unwrap();
    assert_eq!(
        metric(&text, &format!("switchyard_bridge_connected{remote_label}")),
        0.0
    );
    // Said on stderr as it happened, with the reason.
    let said = std::fs::read_to_string(&local.stderr).unwrap();
    assert!(
        said.contains(&format!(
            "bridge to {}: connected",
            up["remote"].as_str().unwrap()
        )),
        "{said}"
    );
    drop(local.process);
}

#[test]
fn an_attached_dashboard_shows_the_mqtt_listener_and_a_down_bridge_of_serve() {
    require_tmux();
    let dir = tempfile::tempdir().unwrap();
    let dead = format!("127.0.0.1:{}", free_port()); // nothing listens there
    let local = serve(
        dir.path(),
        "local",
        &[
            "--bridge",
            &format!("mqtt://{dead}"),
            "--bridge-out",
            "out/#",
        ],
    );
    bridge_when(&local, "down with an error", |b| !b["last_error"].is_null());
    let bin = env!("CARGO_BIN_EXE_switchyard");
    let tmux = Tmux::start(
        dir.path(),
        200,
        30,
        &format!("'{bin}' dashboard --attach {}", local.client.addr()),
    );
    tmux.wait_for("the attached dashboard", |s| s.contains("attached to"));
    tmux.send(&["c"]);
    let screen = tmux.wait_for("the MQTT clients view with the bridge down", |s| {
        s.contains(&format!("MQTT clients on {}", local.mqtt))
            && s.contains(&format!("bridge {dead} DOWN"))
    });
    assert!(screen.contains("refused"), "the reason is shown: {screen}");
    tmux.send(&["q"]);
}
