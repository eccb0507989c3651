//! The screens, drawn into ratatui's `TestBackend` from fixed data and compared with insta snapshots
//! (in `snapshots/`). Review changes with `cargo insta review`.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

use super::app::App;
use super::fixtures::{self, sample, snapshot_with, sub};
use super::keys::handle_key;
use super::render::ScreenState;

/// Draws `app` as a first frame (tables scrolled to the top, then as far as the selection needs).
fn draw(app: &App, width: u16, height: u16) -> Terminal<TestBackend> {
    draw_with(app, &mut ScreenState::default(), width, height)
}

/// Draws `app` as the next frame after those drawn with `state`.
fn draw_with(app: &App, state: &mut ScreenState, width: u16, height: u16) -> Terminal<TestBackend> {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal
        .draw(|frame| frame.render_stateful_widget(app, frame.area(), state))
        .unwrap();
    terminal
}

fn press(app: &mut App, keys: &str) {
    for c in keys.chars() {
        handle_key(app, KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE));
    }
}

#[test]
fn main_screen_80x24() {
    insta::assert_snapshot!(draw(&fixtures::app(false), 80, 24).backend());
}

#[test]
fn main_screen_120x40() {
    insta::assert_snapshot!(draw(&fixtures::app(false), 120, 40).backend());
}

#[test]
fn main_screen_100x30_with_the_paused_subscriber_selected() {
    let mut app = fixtures::app(false);
    press(&mut app, "G");
    insta::assert_snapshot!(draw(&app, 100, 30).backend());
}

#[test]
fn subscribe_form_with_an_invalid_filter_80x24() {
    let mut app = fixtures::app(false);
    press(&mut app, "sa/#/b");
    insta::assert_snapshot!(draw(&app, 80, 24).backend());
}

#[test]
fn subscribe_form_120x40() {
    let mut app = fixtures::app(false);
    press(&mut app, "sstocks/+/price");
    insta::assert_snapshot!(draw(&app, 120, 40).backend());
}

#[test]
fn publish_form_80x24() {
    let mut app = fixtures::app(false);
    press(&mut app, "pstocks/AAPL/price");
    handle_key(&mut app, KeyEvent::new(KeyCode::Tab, KeyModifiers::NONE));
    press(&mut app, "189.5");
    insta::assert_snapshot!(draw(&app, 80, 24).backend());
}

#[test]
fn publish_form_with_a_wildcard_topic_120x40() {
    let mut app = fixtures::app(false);
    press(&mut app, "pstocks/#");
    insta::assert_snapshot!(draw(&app, 120, 40).backend());
}

#[test]
fn acknowledged_subscriptions_show_in_flight_against_the_window_and_a_stall_100x30() {
    let mut app = fixtures::acked_app();
    press(&mut app, "j");
    insta::assert_snapshot!(draw(&app, 100, 30).backend());
}

#[test]
fn acknowledged_subscriptions_at_80x24_keep_in_flight_and_drops() {
    let mut app = fixtures::acked_app();
    press(&mut app, "j");
    insta::assert_snapshot!(draw(&app, 80, 24).backend());
}

#[test]
fn an_acknowledged_subscription_that_keeps_up_shows_how_attempts_ended_120x40() {
    let mut app = fixtures::acked_app();
    press(&mut app, "jj");
    insta::assert_snapshot!(draw(&app, 120, 40).backend());
}

#[test]
fn the_radar_flags_receivers_stalled_on_a_full_window_first_after_stalls_100x30() {
    let mut app = fixtures::acked_app();
    press(&mut app, "r");
    insta::assert_snapshot!(draw(&app, 100, 30).backend());
}

#[test]
fn help_overlay_80x24() {
    let mut app = fixtures::app(false);
    press(&mut app, "?");
    insta::assert_snapshot!(draw(&app, 80, 24).backend());
}

#[test]
fn help_overlay_120x40() {
    let mut app = fixtures::app(false);
    press(&mut app, "?");
    insta::assert_snapshot!(draw(&app, 120, 40).backend());
}

#[test]
fn unsubscribe_confirmation_80x24() {
    let mut app = fixtures::app(false);
    press(&mut app, "ju");
    insta::assert_snapshot!(draw(&app, 80, 24).backend());
}

#[test]
fn filtered_table_while_typing_80x24() {
    let mut app = fixtures::app(false);
    press(&mut app, "/alert");
    insta::assert_snapshot!(draw(&app, 80, 24).backend());
}

#[test]
fn an_empty_broker_says_how_to_start_80x24() {
    let app = App::new(
        Default::default(),
        ".".into(),
        super::theme::Theme::new(false),
    );
    insta::assert_snapshot!(draw(&app, 80, 24).backend());
}

#[test]
fn tiny_terminals_get_a_summary_and_never_panic() {
    let mut app = fixtures::app(true);
    for (w, h) in [
        (0, 0),
        (1, 1),
        (10, 5),
        (39, 11),
        (40, 12),
        (80, 1),
        (1, 80),
        (45, 13),
    ] {
        draw(&app, w, h);
    }
    for mode in ["?", "s", "p", "u", "/", "w"] {
        press(&mut app, mode);
        for (w, h) in [(10, 5), (40, 12), (41, 13), (60, 14)] {
            draw(&app, w, h);
        }
        handle_key(&mut app, KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE));
        assert!(
            app.is_running(),
            "Esc in mode {mode} closes it, not the dashboard"
        );
    }
    for view in ["r", "f"] {
        press(&mut app, view);
        for (w, h) in [(10, 5), (40, 12), (41, 13), (60, 14)] {
            draw(&app, w, h);
        }
        press(&mut app, view);
    }
    insta::assert_snapshot!(draw(&fixtures::app(false), 30, 6).backend());
}

#[test]
fn no_color_leaves_cells_uncoloured_and_color_colours_them() {
    use ratatui::style::Color;
    let plain = draw(&fixtures::app(false), 120, 40);
    let coloured = draw(&fixtures::app(true), 120, 40);
    let fgs = |t: &Terminal<TestBackend>| {
        t.backend()
            .buffer()
            .content()
            .iter()
            .filter(|c| c.fg != Color::Reset)
            .count()
    };
    assert_eq!(fgs(&plain), 0, "NO_COLOR: no foreground colours");
    assert!(fgs(&coloured) > 100);
}

#[test]
fn a_thousand_subscriptions_render_only_the_visible_rows_and_scroll_to_the_last() {
    let subs: Vec<_> = (1..=1000)
        .map(|i| sub(i, &format!("sub-{i:04}"), &format!("t/{i}/#"), 64, i, 0, 0))
        .collect();
    let mut app = App::new(
        Default::default(),
        ".".into(),
        super::theme::Theme::new(false),
    );
    app.apply(sample(snapshot_with(1.0, 0, subs), &[]));
    let mut state = ScreenState::default();
    press(&mut app, "G");
    let screen = draw_with(&app, &mut state, 120, 40).backend().to_string();
    assert!(
        screen.contains("sub-1000") && !screen.contains("sub-0001"),
        "{screen}"
    );
    press(&mut app, "k");
    let screen = draw_with(&app, &mut state, 120, 40).backend().to_string();
    assert!(
        screen.contains("sub-1000"),
        "moving up one row does not jump the view"
    );
    for _ in 0..200 {
        press(&mut app, "k");
        draw_with(&app, &mut state, 120, 40);
    }
    let screen = draw_with(&app, &mut state, 120, 40).backend().to_string();
    assert!(screen.contains("▶    799 sub-0799"), "{screen}");
}

#[test]
fn x_shows_recent_dead_letters_with_their_reasons_in_place_of_the_log_100x30() {
    let mut app = fixtures::app(false);
    press(&mut app, "x");
    assert!(app.shows_dead_letters());
    let terminal = draw(&app, 100, 30);
    let text = format!("{:?}", terminal.backend());
    assert!(
        text.contains("queue_full") && text.contains("audit"),
        "{text}"
    );
    insta::assert_snapshot!(terminal.backend());
}

#[test]
fn radar_view_sorts_stalled_dropping_and_filling_first_100x30() {
    let mut app = fixtures::radar_app();
    press(&mut app, "r");
    let terminal = draw(&app, 100, 30);
    let screen = terminal.backend().to_string();
    let row = |name: &str| {
        screen
            .lines()
            .position(|l| l.contains(&format!(" {name} ")))
            .unwrap_or_else(|| panic!("{name} not on screen:\n{screen}"))
    };
    assert!(row("reports") < row("audit") && row("audit") < row("billing"));
    assert!(row("billing") < row("prices"));
    insta::assert_snapshot!(terminal.backend());
}

#[test]
fn radar_rows_that_need_a_look_are_coloured() {
    use ratatui::style::Color;
    let mut app = fixtures::radar_app();
    press(&mut app, "r");
    let plain_colour = draw(&app, 100, 30);
    assert!(
        plain_colour
            .backend()
            .buffer()
            .content()
            .iter()
            .all(|c| c.fg == Color::Reset),
        "NO_COLOR: no colours in the radar either"
    );
}

#[test]
fn filters_view_totals_per_filter_100x30() {
    let mut app = fixtures::radar_app();
    press(&mut app, "f");
    insta::assert_snapshot!(draw(&app, 100, 30).backend());
}

#[test]
fn filters_view_80x24() {
    let mut app = fixtures::app(false);
    press(&mut app, "f");
    insta::assert_snapshot!(draw(&app, 80, 24).backend());
}

/// The radar fixture's subscriptions in a real broker, so the explainer shows the library's answer.
fn explain_with_a_real_broker(app: &mut App, topic: &str) {
    let broker = switchyard::Broker::new();
    let _subs: Vec<_> = app
        .snapshot()
        .subscriptions
        .iter()
        .map(|s| {
            broker
                .subscribe_with(
                    &s.filter,
                    switchyard::SubscriptionOptions::new()
                        .name(s.name.clone())
                        .capacity(s.capacity as usize),
                )
                .unwrap()
        })
        .collect();
    broker.publish("orders/eu/1", "queued").unwrap();
    let result = broker.explain(topic).map_err(|e| e.to_string());
    app.explained(topic.to_string(), result);
}

#[test]
fn who_gets_this_topic_lists_each_subscription_and_its_filter_100x30() {
    let mut app = fixtures::radar_app();
    press(&mut app, "w");
    press(&mut app, "orders/eu/7");
    let command = handle_key(&mut app, KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE));
    assert_eq!(
        command,
        Some(super::app::Command::Explain("orders/eu/7".into()))
    );
    explain_with_a_real_broker(&mut app, "orders/eu/7");
    let terminal = draw(&app, 100, 30);
    let screen = terminal.backend().to_string();
    assert!(
        screen.contains("reaches 2 subscriptions") && screen.contains("billing"),
        "{screen}"
    );
    insta::assert_snapshot!(terminal.backend());
}

#[test]
fn who_gets_this_topic_says_when_nobody_does_and_shows_topic_errors_80x24() {
    let mut app = fixtures::radar_app();
    press(&mut app, "w");
    press(&mut app, "nobody/listens");
    handle_key(&mut app, KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE));
    explain_with_a_real_broker(&mut app, "nobody/listens");
    press(&mut app, "/#");
    let terminal = draw(&app, 80, 24);
    let screen = terminal.backend().to_string();
    assert!(screen.contains("would be unrouted"), "{screen}");
    assert!(screen.contains("has wildcard `#`"), "{screen}");
    insta::assert_snapshot!(terminal.backend());
}

#[test]
fn an_unreachable_attached_broker_shows_a_banner_and_command_keys_say_why_80x24() {
    let mut app = fixtures::app(false);
    let mut lost = sample(fixtures::snapshot_at(80.25), &[5]);
    lost.unreachable = Some("cannot reach 127.0.0.1:9475: connection refused".into());
    lost.commands_unavailable = Some(
        "publish, subscribe, unsubscribe and pause are unavailable: 127.0.0.1:9475 cannot be reached"
            .into(),
    );
    app.apply(lost);
    press(&mut app, "p");
    assert_eq!(*app.mode(), super::app::Mode::Normal, "no form opened");
    let screen = draw(&app, 80, 24).backend().to_string();
    assert!(
        screen.contains("DISCONNECTED cannot reach 127.0.0.1:9475"),
        "{screen}"
    );
    insta::assert_snapshot!(draw(&app, 80, 24).backend());
}

/// A listener with a connected client that drops, a persistent session whose client is away, and a
/// quiet one.
fn mqtt_stats() -> switchyard_mqtt::MqttStats {
    use switchyard::DroppedByReason;
    use switchyard_mqtt::{ClientStats, ClosedByReason, MqttStats};
    let client = |id: &str, address: Option<&str>, inflight, queue_full, evicted| ClientStats {
        client_id: id.into(),
        address: address.map(str::to_string),
        clean_session: address.is_some(),
        inflight,
        dropped: queue_full + evicted,
        dropped_by_reason: DroppedByReason {
            queue_full,
            evicted,
            ..DroppedByReason::default()
        },
        subscriptions: Vec::new(),
        ..ClientStats::default()
    };
    MqttStats {
        address: "127.0.0.1:1883".into(),
        accepted: 5,
        open: 2,
        closed_by_reason: ClosedByReason {
            disconnect: 2,
            keep_alive_timeout: 1,
            ..ClosedByReason::default()
        },
        clients: vec![
            // Its byte budget is nearly used up, and it refused 7 messages.
            ClientStats {
                queued_bytes: 16_500_000,
                max_queued_bytes: Some(16 << 20),
                dropped: 127,
                dropped_by_reason: DroppedByReason {
                    queue_full: 120,
                    byte_limit: 7,
                    ..DroppedByReason::default()
                },
                ..client("sensor-7", Some("127.0.0.1:51234"), 3, 120, 0)
            },
            client("audit", None, 0, 0, 40),
            client("ui", Some("127.0.0.1:51300"), 0, 0, 0),
        ],
        ..MqttStats::default()
    }
}

#[test]
fn c_shows_the_mqtt_clients_with_their_drops_and_away_sessions_100x30() {
    let mut app = fixtures::app(false);
    let mut with_mqtt = sample(fixtures::snapshot_at(80.25), &[5]);
    with_mqtt.mqtt = Some(mqtt_stats());
    with_mqtt.bridges = vec![switchyard_mqtt::BridgeStats {
        remote: "127.0.0.1:1884".into(),
        connected: false,
        out_forwarded: 1_200,
        in_published: 35,
        out_dropped_by_reason: switchyard::DroppedByReason {
            queue_full: 17,
            ..Default::default()
        },
        ..Default::default()
    }];
    app.apply(with_mqtt);
    press(&mut app, "c7");
    assert_eq!(app.table().view, super::app::View::Connections);
    let screen = draw(&app, 100, 30).backend().to_string();
    assert!(
        screen.contains("MQTT clients on 127.0.0.1:1883"),
        "{screen}"
    );
    assert!(screen.contains("away (session kept)"), "{screen}");
    assert!(
        screen.contains("bridge 127.0.0.1:1884 DOWN dropped 17"),
        "{screen}"
    );
    insta::assert_snapshot!(draw(&app, 100, 30).backend());
    // Wider, the client's byte budget shows too: queued over the bound (`--mqtt-queue-bytes`).
    let wide = draw(&app, 140, 30).backend().to_string();
    assert!(wide.contains("queued B"), "{wide}");
    assert!(
        wide.contains("queue_full 120, byte_limit 7 16.5M/16.8M"),
        "{wide}"
    );
    press(&mut app, "c");
    assert_eq!(app.table().view, super::app::View::Subscriptions);
}

/// Text that would reorder a line on a terminal that honours bidirectional overrides (ratatui drops
/// C0 and C1 controls, not these), and an ESC.
const REORDER: &str = "\u{202e}ab\u{2066}\u{1b}[2J";

/// Whether `screen` holds a bidirectional override or isolate, or a C0/C1 control.
fn holds_controls(screen: &str) -> bool {
    screen.chars().any(|c| {
        matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
            || (c.is_control() && c != '\n')
    })
}

#[test]
fn names_filters_client_ids_and_bridge_errors_from_outside_are_shown_escaped() {
    let mut app = fixtures::app(false);
    let outside = format!("x{REORDER}");
    let mut subscriptions = fixtures::snapshot_at(80.25).subscriptions;
    subscriptions.push(sub(6, &outside, &format!("{outside}/#"), 8, 1, 0, 0));
    let mut s = sample(snapshot_with(80.25, 100, subscriptions), &[]);
    s.dead_letters[0].topic = outside.clone();
    s.dead_letters[0].subscription = outside.clone();
    let mut mqtt = mqtt_stats();
    mqtt.clients[0].client_id = outside.clone();
    s.mqtt = Some(mqtt);
    s.bridges = vec![switchyard_mqtt::BridgeStats {
        remote: outside.clone(),
        last_error: Some(outside.clone()),
        ..Default::default()
    }];
    app.apply(s);
    app.log(super::app::Level::Warn, format!("unsubscribed {outside}"));
    let escaped = "x\\u{202e}ab\\u{2066}\\x1b[2J";
    press(&mut app, "G"); // the table and the detail pane of subscription 6
    let screen = draw(&app, 160, 40).backend().to_string();
    assert!(!holds_controls(&screen), "{screen}");
    assert!(screen.contains(escaped), "{screen}");
    press(&mut app, "x"); // dead letters in place of the log
    let screen = draw(&app, 160, 40).backend().to_string();
    assert!(!holds_controls(&screen), "{screen}");
    press(&mut app, "c"); // MQTT clients and the bridge
    let screen = draw(&app, 200, 40).backend().to_string();
    assert!(!holds_controls(&screen), "{screen}");
    assert!(
        screen.contains(&format!("bridge {escaped} DOWN ({escaped})")),
        "{screen}"
    );
}

#[test]
fn c_counts_logins_and_permission_refusals_by_reason_above_the_clients_100x30() {
    use switchyard_mqtt::{AclRefusedByReason, AclStats, AuthRefusedByReason, AuthStats};
    let mut app = fixtures::app(false);
    let mut with_mqtt = sample(fixtures::snapshot_at(80.25), &[5]);
    let mut mqtt = mqtt_stats();
    mqtt.auth = AuthStats {
        password_file: true,
        accepted: 12,
        refused_by_reason: AuthRefusedByReason {
            no_user_name: 1,
            bad_user_name_or_password: 2,
            ..AuthRefusedByReason::default()
        },
        ..AuthStats::default()
    };
    mqtt.acl = AclStats {
        acl_file: true,
        lines: 40,
        refused_by_reason: AclRefusedByReason {
            subscribe: 1,
            publish: 2,
            will: 3,
            retained_read: 4,
            read: 53,
        },
        revoked_clients: 0,
    };
    mqtt.reload.reloads = 1;
    mqtt.reload.refused = 1;
    with_mqtt.mqtt = Some(mqtt);
    app.apply(with_mqtt);
    press(&mut app, "c");
    let screen = draw(&app, 100, 30).backend().to_string();
    assert!(
        screen.contains("logins 12 ok · refused 3: no user name 1, bad user name/password 2"),
        "{screen}"
    );
    assert!(
        screen.contains(
            "ACL (40 lines) refused 63: subscribe 1, publish 2, will 3, retained read 4, read 53"
        ),
        "{screen}"
    );
    assert!(screen.contains("reloads 1 (1 refused)"), "{screen}");
    assert!(
        screen.contains("sensor-7"),
        "the clients still show: {screen}"
    );
    insta::assert_snapshot!(draw(&app, 100, 30).backend());
}

#[test]
fn c_without_an_mqtt_listener_says_how_to_start_one_80x24() {
    let mut app = fixtures::app(false);
    press(&mut app, "c");
    let screen = draw(&app, 80, 24).backend().to_string();
    assert!(screen.contains("no MQTT listener"), "{screen}");
}

#[test]
fn the_header_warns_when_a_full_retained_store_refused_to_keep_messages() {
    let mut app = fixtures::app(false);
    let mut snapshot = fixtures::snapshot_at(80.25);
    snapshot.retained.messages = 10_000;
    snapshot.retained.rejected = 3;
    app.apply(sample(snapshot, &[5]));
    let terminal = draw(&app, 120, 40);
    let header: String = (0..120)
        .map(|x| terminal.backend().buffer()[(x, 1)].symbol().to_string())
        .collect();
    assert!(
        header.contains("retained 10,000 (3 not kept: store full)")
            || header.contains("retained 10000 (3 not kept: store full)"),
        "{header}"
    );
}

#[test]
fn an_attached_dashboard_names_what_it_is_attached_to_in_the_header() {
    let mut app = App::new(
        Default::default(),
        ".".into(),
        super::theme::Theme::new(false),
    );
    app.set_attached_to("127.0.0.1:9475");
    let screen = format!("{:?}", draw(&app, 100, 24).backend());
    // The buffer's first two rows are the header.
    let header: String = screen
        .lines()
        .skip_while(|l| !l.contains("content: ["))
        .take(3)
        .collect();
    assert!(header.contains("attached to 127.0.0.1:9475"), "{screen}");
    assert!(!header.contains("demo off"), "{screen}");
}

#[test]
fn the_explainer_says_which_topic_syntax_the_broker_reads() {
    let limits = switchyard::TopicLimits {
        syntax: switchyard::TopicSyntax::Mqtt,
        ..Default::default()
    };
    let mut app = App::new(limits, ".".into(), super::theme::Theme::new(false));
    press(&mut app, "w");
    let screen = format!("{:?}", draw(&app, 100, 30).backend());
    assert!(screen.contains("MQTT topics: `*` is literal"), "{screen}");
}
