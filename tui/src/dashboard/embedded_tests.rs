//! The dashboard driven end to end in-process: keys into the [`App`], commands through a real
//! [`EmbeddedBroker`], samples back. Waits poll with a deadline instead of sleeping a fixed time.

use std::time::{Duration, Instant};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::actions::execute;
use super::app::{App, Level, Mode};
use super::embedded::EmbeddedBroker;
use super::keys::handle_key;
use super::link::{BrokerLink, ConsumerState};
use super::theme::Theme;

struct Harness {
    app: App,
    link: EmbeddedBroker,
}

impl Harness {
    fn new(demo: bool) -> Self {
        Self::in_dir(demo, std::env::temp_dir())
    }

    fn in_dir(demo: bool, export_dir: std::path::PathBuf) -> Self {
        let link = EmbeddedBroker::new(demo).unwrap();
        let app = App::new(link.limits(), export_dir, Theme::new(false));
        let mut h = Self { app, link };
        h.tick();
        h
    }

    fn press(&mut self, code: KeyCode) {
        if let Some(command) = handle_key(&mut self.app, KeyEvent::new(code, KeyModifiers::NONE)) {
            execute(&mut self.app, command, &mut self.link);
        }
    }

    fn type_text(&mut self, text: &str) {
        text.chars().for_each(|c| self.press(KeyCode::Char(c)));
    }

    fn tick(&mut self) {
        let sample = self.link.sample(self.app.table().selected_id);
        self.app.apply(sample);
    }

    /// Ticks until `done` holds, failing after five seconds with `what`.
    fn wait_for(&mut self, what: &str, done: impl Fn(&App) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            self.tick();
            if done(&self.app) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; log: {:#?}",
                self.app.log_entries()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn subscribe(&mut self, filter: &str, capacity: &str) {
        self.press(KeyCode::Char('s'));
        self.type_text(filter);
        self.press(KeyCode::Tab);
        self.press(KeyCode::Backspace);
        self.press(KeyCode::Backspace);
        self.press(KeyCode::Backspace);
        self.type_text(capacity);
        self.press(KeyCode::Enter);
        assert_eq!(*self.app.mode(), Mode::Normal, "the form closed");
    }

    fn publish(&mut self, topic: &str, payload: &str, count: &str) {
        self.press(KeyCode::Char('p'));
        self.type_text(topic);
        self.press(KeyCode::Tab);
        self.type_text(payload);
        self.press(KeyCode::Tab);
        self.press(KeyCode::Backspace);
        self.type_text(count);
        self.press(KeyCode::Enter);
        assert_eq!(*self.app.mode(), Mode::Normal, "the form closed");
    }

    fn delivered(&self) -> u64 {
        self.app.selected().map_or(0, |s| s.delivered)
    }
}

#[test]
fn a_subscription_made_with_s_appears_selected_with_a_running_consumer() {
    let mut h = Harness::new(false);
    h.subscribe("e2e/#", "256");
    h.wait_for("the new row", |app| {
        app.selected().is_some_and(|s| s.filter == "e2e/#")
    });
    let s = h.app.selected().unwrap();
    assert_eq!(
        (s.capacity, s.receivers, s.policy.as_str()),
        (256, 1, "drop-newest")
    );
    assert_eq!(h.app.consumer(s.id), ConsumerState::Running);
    assert!(
        h.app
            .log_entries()
            .iter()
            .any(|e| e.text.starts_with("subscribed s1 to e2e/#"))
    );
}

#[test]
fn a_message_published_with_p_is_delivered_and_shown_in_the_detail_pane() {
    let mut h = Harness::new(false);
    h.subscribe("e2e/#", "256");
    h.publish("e2e/hello", "hi there", "3");
    h.wait_for("3 deliveries", |app| {
        app.selected().is_some_and(|s| s.delivered == 3)
    });
    h.wait_for("the recent messages", |app| {
        app.observed().recent.len() == 3
    });
    assert_eq!(h.app.observed().recent[0].topic, "e2e/hello");
    assert_eq!(h.app.observed().recent[0].preview, "hi there");
    assert!(
        h.app
            .log_entries()
            .iter()
            .any(|e| e.text == "published 3× to e2e/hello: 3 queued"),
        "{:?}",
        h.app.log_entries()
    );
}

#[test]
fn a_publish_nobody_hears_is_logged_as_unrouted() {
    let mut h = Harness::new(false);
    h.publish("nobody/home", "x", "1");
    h.wait_for("the publish result", |app| {
        app.log_entries()
            .iter()
            .any(|e| e.text.contains("unrouted"))
    });
    assert_eq!(h.app.snapshot().totals.unrouted, 1);
}

#[test]
fn unsubscribing_with_u_and_y_removes_the_row() {
    let mut h = Harness::new(false);
    h.subscribe("a/+", "16");
    h.subscribe("b/#", "16");
    h.wait_for("two rows", |app| app.table().rows.len() == 2);
    h.press(KeyCode::Char('g'));
    h.press(KeyCode::Char('u'));
    h.press(KeyCode::Char('y'));
    h.wait_for("one row", |app| app.table().rows.len() == 1);
    assert_eq!(h.app.selected().unwrap().filter, "b/#");
    assert!(
        h.app
            .log_entries()
            .iter()
            .any(|e| e.text == "unsubscribed s1")
    );
}

#[test]
fn pausing_stops_deliveries_so_the_queue_fills_and_drops_until_resumed() {
    let mut h = Harness::new(false);
    h.subscribe("p/#", "4");
    h.wait_for("the row", |app| app.selected().is_some());
    h.press(KeyCode::Char(' '));
    let id = h.app.selected().unwrap().id;
    h.wait_for("the consumer to pause", |app| {
        app.consumer(id) == ConsumerState::Paused
    });
    assert_eq!(h.app.paused_count(), 1);
    h.publish("p/x", "m", "10");
    h.wait_for("10 matched", |app| {
        app.selected().is_some_and(|s| s.matched == 10)
    });
    let s = h.app.selected().unwrap().clone();
    assert_eq!((s.delivered, s.depth, s.dropped), (0, 4, 6), "{s:?}");
    assert!(
        h.app
            .log_entries()
            .iter()
            .any(|e| e.level == Level::Warn && e.text.starts_with("s1 started dropping")),
        "{:?}",
        h.app.log_entries()
    );
    h.press(KeyCode::Char(' '));
    h.wait_for("the queue to drain", |app| {
        app.selected()
            .is_some_and(|s| s.delivered == 4 && s.depth == 0)
    });
    assert_eq!(h.app.consumer(id), ConsumerState::Running);
    assert!(h.delivered() == 4);
}

#[test]
fn export_writes_a_v1_snapshot_and_logs_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = Harness::in_dir(false, dir.path().to_path_buf());
    h.subscribe("x/#", "8");
    h.tick();
    h.press(KeyCode::Char('e'));
    h.press(KeyCode::Char('e')); // a second export in the same instant gets its own file
    let files: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 2, "{files:?}");
    for path in files {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        assert!(
            name.starts_with("switchyard-") && name.ends_with(".json"),
            "{name}"
        );
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(json["schema"], "switchyard.stats/v1");
        assert_eq!(json["subscriptions"][0]["filter"], "x/#");
        assert!(
            h.app
                .log_entries()
                .iter()
                .any(|e| e.text == format!("exported snapshot to {}", path.display()))
        );
    }
}

#[test]
fn a_failed_export_is_logged_as_an_error() {
    let mut h = Harness::in_dir(false, "/nonexistent-switchyard-dir".into());
    h.press(KeyCode::Char('e'));
    let last = h.app.log_entries().back().unwrap();
    assert_eq!(last.level, Level::Error);
    assert!(
        last.text.starts_with("export failed:")
            && last.text.contains("/nonexistent-switchyard-dir"),
        "{}",
        last.text
    );
}

#[test]
fn demo_traffic_shows_drops_on_the_slow_subscriber_and_d_stops_it() {
    let mut h = Harness::new(true);
    h.wait_for("slow-audit to drop", |app| {
        app.snapshot()
            .subscriptions
            .iter()
            .any(|s| s.name == "slow-audit" && s.dropped > 0)
    });
    let filters: Vec<_> = h
        .app
        .snapshot()
        .subscriptions
        .iter()
        .map(|s| s.filter.as_str())
        .collect();
    assert!(filters.iter().any(|f| f.contains('+')) && filters.iter().any(|f| f.contains('#')));
    assert!(h.app.observed().demo);
    h.press(KeyCode::Char('d'));
    assert!(!h.app.observed().demo && !h.link.demo_running());
    h.tick();
    let before = h.app.snapshot().totals.published;
    std::thread::sleep(Duration::from_millis(100));
    h.tick();
    assert_eq!(
        h.app.snapshot().totals.published,
        before,
        "no demo traffic after d"
    );
    h.press(KeyCode::Char('d'));
    assert!(h.link.demo_running());
    assert_eq!(
        h.app.snapshot().totals.subscriptions,
        5,
        "turning the demo on again adds no subscriptions"
    );
}

fn state_dir(test: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("switchyard-state-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn a_corrupt_state_file_stops_the_start_and_is_left_untouched() {
    let dir = state_dir("corrupt");
    let path = dir.join("state.json");
    std::fs::write(&path, "not json").unwrap();
    let mut link = EmbeddedBroker::new(false).unwrap();
    let err = link
        .use_state_file(path.clone(), false)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("state.json") && err.contains("corrupt"),
        "{err}"
    );
    assert!(err.contains("--state-reset"), "{err}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "not json");
}

#[test]
fn state_reset_moves_a_corrupt_file_aside_and_starts_empty() {
    let dir = state_dir("reset");
    let path = dir.join("state.json");
    std::fs::write(&path, "not json").unwrap();
    let mut link = EmbeddedBroker::new(false).unwrap();
    let note = link.use_state_file(path.clone(), true).unwrap();
    assert!(note.contains("moved aside"), "{note}");
    let aside: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("state.json.corrupt-")
        })
        .collect();
    assert_eq!(aside.len(), 1);
    assert_eq!(
        std::fs::read_to_string(aside[0].path()).unwrap(),
        "not json"
    );
    let fresh: switchyard::DurableState =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert!(fresh.subscriptions.is_empty());
}

#[test]
fn durable_subscriptions_in_the_state_file_are_restored_with_a_consumer() {
    let dir = state_dir("restore");
    let path = dir.join("state.json");
    let broker = switchyard::Broker::new();
    let _s = broker
        .subscribe_with(
            "orders/#",
            switchyard::SubscriptionOptions::new()
                .name("billing")
                .durable(true),
        )
        .unwrap();
    broker.save_state(&path).unwrap();
    let mut link = EmbeddedBroker::new(false).unwrap();
    let note = link.use_state_file(path, false).unwrap();
    assert!(note.contains("restored 1"), "{note}");
    let snapshot = link.snapshot();
    assert_eq!(snapshot.subscriptions.len(), 1);
    assert!(snapshot.subscriptions[0].durable);
    assert_eq!(snapshot.subscriptions[0].receivers, 1);
}

#[test]
fn w_asks_the_embedded_broker_who_gets_a_topic_and_shows_its_answer() {
    let mut h = Harness::new(false);
    h.subscribe("orders/#", "64");
    h.subscribe("orders/+/paid", "64");
    h.subscribe("alerts/#", "64");
    h.press(KeyCode::Char('w'));
    h.type_text("orders/eu/paid");
    h.press(KeyCode::Enter);
    assert_eq!(*h.app.mode(), Mode::Explain);
    let answer = h.app.explanation().expect("an answer").clone();
    assert_eq!(answer.topic, "orders/eu/paid");
    let filters: Vec<String> = answer
        .result
        .expect("a valid topic")
        .into_iter()
        .map(|e| e.filter)
        .collect();
    assert_eq!(filters, ["orders/#", "orders/+/paid"]);
    // The answer is what a publish does.
    h.press(KeyCode::Esc);
    h.publish("orders/eu/paid", "42", "1");
    h.wait_for("the publish to be logged", |app| {
        app.log_entries().iter().any(|e| {
            e.text
                .starts_with("published 1× to orders/eu/paid: 2 queued")
        })
    });
}

#[test]
fn an_io_error_in_the_log_names_its_cause_once() {
    let dir = state_dir("cause-once");
    let path = dir.join("state.json");
    let mut h = Harness::new(false);
    h.link.use_state_file(path.clone(), false).unwrap();
    // The state file's name now holds a directory: saving after the subscribe cannot rename over it.
    std::fs::remove_file(&path).unwrap();
    std::fs::create_dir(&path).unwrap();
    h.subscribe("cause/#", "16");
    let last = h.app.log_entries().back().unwrap();
    assert_eq!(last.level, Level::Error);
    assert!(last.text.contains("state.json"), "{}", last.text);
    assert_eq!(
        last.text.matches("os error").count(),
        1,
        "the cause once: {}",
        last.text
    );
}

#[test]
fn an_mqtt_listener_and_its_bridge_show_in_the_sample_and_a_client_appears_in_the_view() {
    use std::io::{Read, Write};
    let mut h = Harness::new(false);
    // A bridge to a loopback port nobody listens on: it stays down, retrying, and says so.
    let nobody = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_port = nobody.local_addr().unwrap().port();
    drop(nobody);
    let mut bridge =
        switchyard_mqtt::BridgeConfig::from_url(&format!("mqtt://127.0.0.1:{dead_port}")).unwrap();
    bridge.out_filters = vec!["out/#".into()];
    let addr = h
        .link
        .serve_mqtt(
            "127.0.0.1:0".parse().unwrap(),
            crate::mqtt_listener::MqttListenArgs::default().config(),
            Some(bridge),
        )
        .unwrap();
    // A raw MQTT 3.1.1 CONNECT (clean session, client id "raw-1"); CONNACK 0 back.
    let mut client = std::net::TcpStream::connect(addr).unwrap();
    client
        .write_all(&[
            0x10, 17, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 60, 0, 5, b'r', b'a', b'w', b'-',
            b'1',
        ])
        .unwrap();
    let mut connack = [0u8; 4];
    client.read_exact(&mut connack).unwrap();
    assert_eq!(connack, [0x20, 2, 0, 0]);
    h.wait_for("the MQTT client in the sample", |app| {
        app.observed()
            .mqtt
            .as_ref()
            .is_some_and(|m| m.open == 1 && m.client("raw-1").is_some())
    });
    let bridges = &h.app.observed().bridges;
    assert_eq!(bridges.len(), 1);
    assert!(
        !bridges[0].connected,
        "nobody listens at the bridge's remote"
    );
    assert_eq!(bridges[0].remote, format!("127.0.0.1:{dead_port}"));
    h.press(KeyCode::Char('c'));
    assert_eq!(h.app.table().rows.len(), 1, "one client row");
}

#[test]
fn dashboard_mqtt_with_an_acl_refuses_a_subscription_and_the_sample_counts_it() {
    use std::io::{Read, Write};
    let mut h = Harness::new(false);
    let acl = switchyard_mqtt::AclFile::parse("topic read public/#\n").unwrap();
    let config = crate::mqtt_listener::MqttListenArgs::default()
        .config()
        .acl_file(Some(acl));
    let addr = h
        .link
        .serve_mqtt("127.0.0.1:0".parse().unwrap(), config, None)
        .unwrap();
    let mut client = std::net::TcpStream::connect(addr).unwrap();
    client
        .write_all(&[
            0x10, 17, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 60, 0, 5, b'r', b'a', b'w', b'-',
            b'2',
        ])
        .unwrap();
    let mut connack = [0u8; 4];
    client.read_exact(&mut connack).unwrap();
    assert_eq!(connack, [0x20, 2, 0, 0]);
    // SUBSCRIBE packet id 1 to `secret/#`: nothing there is readable, so SUBACK 0x80.
    let mut subscribe = vec![0x82, 13, 0, 1, 0, 8];
    subscribe.extend_from_slice(b"secret/#");
    subscribe.push(0);
    client.write_all(&subscribe).unwrap();
    let mut suback = [0u8; 5];
    client.read_exact(&mut suback).unwrap();
    assert_eq!(suback, [0x90, 3, 0, 1, 0x80]);
    h.wait_for("the refusal in the sample", |app| {
        app.observed()
            .mqtt
            .as_ref()
            .is_some_and(|m| m.acl.acl_file && m.acl.refused_by_reason.subscribe == 1)
    });
}
