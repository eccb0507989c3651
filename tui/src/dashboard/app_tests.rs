//! Key handling and state, on fixed data: no broker, no terminal.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::app::{Command, Level, Mode, SortColumn, View};
use super::fixtures::{self, sample, snapshot_at, snapshot_with, sub};
use super::keys::handle_key;
use super::link::{PublishRequest, SubscribeRequest};
use crate::radar::Verdict;

fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

fn ch(c: char) -> KeyEvent {
    key(KeyCode::Char(c))
}

fn type_text(app: &mut super::app::App, text: &str) {
    for c in text.chars() {
        assert_eq!(
            handle_key(app, ch(c)),
            None,
            "typing {c:?} asked for a command"
        );
    }
}

/// Clears the focused field and types `text`.
fn select_all_and_type(app: &mut super::app::App, text: &str) {
    for _ in 0..32 {
        handle_key(app, key(KeyCode::Backspace));
    }
    type_text(app, text);
}

fn selected_name(app: &super::app::App) -> String {
    app.selected().map(|s| s.name.clone()).unwrap_or_default()
}

#[test]
fn j_k_g_and_big_g_move_the_selection_within_the_table() {
    let mut app = fixtures::app(true);
    assert_eq!(selected_name(&app), "prices");
    handle_key(&mut app, ch('k'));
    assert_eq!(selected_name(&app), "prices", "k at the top stays");
    handle_key(&mut app, ch('j'));
    handle_key(&mut app, key(KeyCode::Down));
    assert_eq!(selected_name(&app), "security");
    handle_key(&mut app, ch('G'));
    assert_eq!(selected_name(&app), "slow-audit");
    handle_key(&mut app, ch('j'));
    assert_eq!(selected_name(&app), "slow-audit", "j at the bottom stays");
    handle_key(&mut app, key(KeyCode::Up));
    assert_eq!(selected_name(&app), "log-workers");
    handle_key(&mut app, ch('g'));
    assert_eq!(selected_name(&app), "prices");
}

#[test]
fn the_selection_follows_its_subscription_when_rows_are_resorted() {
    let mut app = fixtures::app(true);
    handle_key(&mut app, ch('G')); // slow-audit, id 5
    handle_key(&mut app, ch('O')); // descending by id: slow-audit moves to the top
    assert_eq!(app.table().selected, 0);
    assert_eq!(selected_name(&app), "slow-audit");
}

#[test]
fn o_cycles_the_sort_column_and_big_o_flips_the_direction() {
    let mut app = fixtures::app(true);
    assert_eq!(app.table().sort, SortColumn::Id);
    handle_key(&mut app, ch('o'));
    assert_eq!(app.table().sort, SortColumn::Name);
    let names: Vec<_> = app
        .table()
        .rows
        .iter()
        .map(|&i| app.snapshot().subscriptions[i].name.clone())
        .collect();
    assert_eq!(
        names,
        [
            "all-alerts",
            "log-workers",
            "prices",
            "security",
            "slow-audit"
        ]
    );
    for _ in 0..5 {
        handle_key(&mut app, ch('o'));
    }
    assert_eq!(app.table().sort, SortColumn::Dropped);
    handle_key(&mut app, ch('O'));
    assert!(app.table().descending);
    let top = app.table().rows[0];
    assert_eq!(app.snapshot().subscriptions[top].name, "slow-audit");
    handle_key(&mut app, ch('o'));
    assert_eq!(app.table().sort, SortColumn::Id, "the cycle wraps around");
}

#[test]
fn number_keys_sort_by_a_column_and_the_same_key_again_flips_it() {
    let mut app = fixtures::app(true);
    handle_key(&mut app, ch('7'));
    assert_eq!(
        (app.table().sort, app.table().descending),
        (SortColumn::Dropped, false)
    );
    handle_key(&mut app, ch('7'));
    assert_eq!(
        (app.table().sort, app.table().descending),
        (SortColumn::Dropped, true)
    );
    assert_eq!(
        app.snapshot().subscriptions[app.table().rows[0]].name,
        "slow-audit"
    );
    handle_key(&mut app, ch('2'));
    assert_eq!(
        (app.table().sort, app.table().descending),
        (SortColumn::Name, true)
    );
}

#[test]
fn slash_filters_rows_case_insensitively_and_esc_clears_the_filter() {
    let mut app = fixtures::app(true);
    handle_key(&mut app, ch('/'));
    assert_eq!(*app.mode(), Mode::Filter);
    type_text(&mut app, "ALERTS");
    let shown: Vec<_> = app
        .table()
        .rows
        .iter()
        .map(|&i| app.snapshot().subscriptions[i].name.clone())
        .collect();
    assert_eq!(
        shown,
        ["all-alerts", "security"],
        "matches the name or the filter"
    );
    handle_key(&mut app, key(KeyCode::Enter));
    assert_eq!(*app.mode(), Mode::Normal);
    app.apply(sample(snapshot_at(80.25), &[]));
    assert_eq!(app.table().rows.len(), 2, "the filter survives new samples");
    handle_key(&mut app, ch('/'));
    handle_key(&mut app, key(KeyCode::Esc));
    assert_eq!(app.table().rows.len(), 5);
    assert!(app.is_running(), "Esc in the filter does not quit");
}

#[test]
fn q_esc_and_ctrl_c_quit_but_esc_in_a_form_only_closes_it() {
    for quit in [
        ch('q'),
        key(KeyCode::Esc),
        KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL),
    ] {
        let mut app = fixtures::app(true);
        handle_key(&mut app, quit);
        assert!(!app.is_running(), "{quit:?} should quit");
    }
    let mut app = fixtures::app(true);
    handle_key(&mut app, ch('p'));
    assert_eq!(*app.mode(), Mode::PublishForm);
    handle_key(&mut app, ch('q')); // typed into the topic
    handle_key(&mut app, key(KeyCode::Esc));
    assert_eq!(*app.mode(), Mode::Normal);
    assert!(app.is_running());
    handle_key(&mut app, ch('s'));
    handle_key(
        &mut app,
        KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL),
    );
    assert!(!app.is_running(), "Ctrl-C quits from a form too");
}

#[test]
fn the_subscribe_form_validates_as_you_type_and_shows_the_library_error() {
    let mut app = fixtures::app(true);
    handle_key(&mut app, ch('s'));
    assert_eq!(
        app.subscribe_form().visible_error(app.limits()),
        None,
        "nothing typed, nothing shown"
    );
    type_text(&mut app, "alerts/#/x");
    let error = app
        .subscribe_form()
        .visible_error(app.limits())
        .expect("an inline error");
    assert_eq!(error.field, 0);
    assert!(
        error.message.contains("must be the last level"),
        "{}",
        error.message
    );
    assert_eq!(
        handle_key(&mut app, key(KeyCode::Enter)),
        None,
        "an invalid form sends nothing"
    );
    assert_eq!(*app.mode(), Mode::SubscribeForm, "and stays open");
    for _ in 0..2 {
        handle_key(&mut app, key(KeyCode::Backspace));
    }
    assert_eq!(
        app.subscribe_form().visible_error(app.limits()),
        None,
        "alerts/# is valid"
    );
    handle_key(&mut app, key(KeyCode::Tab));
    handle_key(
        &mut app,
        KeyEvent::new(KeyCode::Char('u'), KeyModifiers::CONTROL),
    ); // clear the line
    type_text(&mut app, "0");
    let error = app
        .subscribe_form()
        .visible_error(app.limits())
        .expect("capacity 0 is refused");
    assert_eq!(
        (error.field, error.message.as_str()),
        (1, "capacity must be at least 1 message, got 0")
    );
    handle_key(&mut app, key(KeyCode::Backspace));
    type_text(&mut app, "8");
    handle_key(&mut app, key(KeyCode::Tab));
    handle_key(
        &mut app,
        KeyEvent::new(KeyCode::Char('u'), KeyModifiers::CONTROL),
    );
    type_text(&mut app, "drop-all");
    let error = app
        .subscribe_form()
        .visible_error(app.limits())
        .expect("unknown policy");
    assert!(
        error.message.contains("unknown overflow policy `drop-all`"),
        "{}",
        error.message
    );
    handle_key(
        &mut app,
        KeyEvent::new(KeyCode::Char('u'), KeyModifiers::CONTROL),
    );
    type_text(&mut app, "drop-oldest");
    handle_key(&mut app, key(KeyCode::Tab));
    type_text(&mut app, "mine");
    let command = handle_key(&mut app, key(KeyCode::Enter));
    assert_eq!(
        command,
        Some(Command::Subscribe(SubscribeRequest {
            filter: "alerts/#".into(),
            capacity: 8,
            policy: switchyard::OverflowPolicy::DropOldest,
            name: Some("mine".into()),
            ..SubscribeRequest::default()
        }))
    );
    assert_eq!(*app.mode(), Mode::Normal);
}

#[test]
fn enter_on_an_untouched_invalid_form_shows_every_error() {
    let mut app = fixtures::app(true);
    handle_key(&mut app, ch('s'));
    handle_key(&mut app, key(KeyCode::Enter));
    let error = app
        .subscribe_form()
        .visible_error(app.limits())
        .expect("the empty filter is reported");
    assert!(
        error.message.contains("filter is empty"),
        "{}",
        error.message
    );
    assert_eq!(*app.mode(), Mode::SubscribeForm);
}

#[test]
fn the_publish_form_refuses_wildcards_and_bad_counts_then_sends() {
    let mut app = fixtures::app(true);
    handle_key(&mut app, ch('p'));
    type_text(&mut app, "stocks/+/price");
    let error = app
        .publish_form()
        .visible_error(app.limits())
        .expect("a wildcard topic is refused");
    assert!(
        error.message.contains("only filters may use"),
        "{}",
        error.message
    );
    for _ in 0.."+/price".len() {
        handle_key(&mut app, key(KeyCode::Backspace));
    }
    type_text(&mut app, "AAPL/price");
    handle_key(&mut app, key(KeyCode::Tab));
    type_text(&mut app, "189.5");
    handle_key(&mut app, key(KeyCode::Tab));
    type_text(&mut app, "x");
    assert!(
        app.publish_form()
            .visible_error(app.limits())
            .is_some_and(|e| e.field == 2)
    );
    handle_key(&mut app, key(KeyCode::Backspace));
    type_text(&mut app, "0");
    assert_eq!(
        handle_key(&mut app, key(KeyCode::Enter)),
        Some(Command::Publish(PublishRequest {
            topic: switchyard::Topic::new("stocks/AAPL/price").unwrap(),
            payload: "189.5".into(),
            count: 10,
            options: switchyard::PublishOptions::default(),
        }))
    );
    // The form keeps its values, so `p` then Enter sends the same message again.
    handle_key(&mut app, ch('p'));
    assert!(matches!(
        handle_key(&mut app, key(KeyCode::Enter)),
        Some(Command::Publish(PublishRequest { count: 10, .. }))
    ));
}

#[test]
fn unsubscribe_asks_for_confirmation_first() {
    let mut app = fixtures::app(true);
    handle_key(&mut app, ch('u'));
    assert_eq!(
        *app.mode(),
        Mode::ConfirmUnsubscribe {
            id: 1,
            name: "prices".into()
        }
    );
    assert_eq!(handle_key(&mut app, ch('n')), None);
    assert_eq!(*app.mode(), Mode::Normal);
    handle_key(&mut app, key(KeyCode::Delete));
    assert_eq!(
        handle_key(&mut app, ch('y')),
        Some(Command::Unsubscribe {
            id: 1,
            name: "prices".into()
        })
    );
}

#[test]
fn space_toggles_the_selected_consumer_and_e_d_ask_for_export_and_demo() {
    let mut app = fixtures::app(true);
    assert!(matches!(
        handle_key(&mut app, ch(' ')),
        Some(Command::SetPaused {
            id: 1,
            paused: true,
            ..
        })
    ));
    handle_key(&mut app, ch('G')); // slow-audit is paused in the fixture
    assert!(matches!(
        handle_key(&mut app, ch(' ')),
        Some(Command::SetPaused {
            id: 5,
            paused: false,
            ..
        })
    ));
    assert_eq!(handle_key(&mut app, ch('e')), Some(Command::Export));
    assert_eq!(handle_key(&mut app, ch('d')), Some(Command::SetDemo(false)));
}

#[test]
fn keys_that_need_a_selection_log_instead_of_failing_on_an_empty_table() {
    let mut app = super::app::App::new(
        Default::default(),
        ".".into(),
        super::theme::Theme::new(false),
    );
    for k in ['u', ' ', 'j', 'k', 'G', 'g', 'o', 'O'] {
        assert_eq!(handle_key(&mut app, ch(k)), None);
    }
    assert_eq!(*app.mode(), Mode::Normal);
    assert!(
        app.log_entries()
            .iter()
            .any(|e| e.text.contains("no subscription selected"))
    );
}

#[test]
fn help_opens_with_a_question_mark_and_any_key_closes_it() {
    let mut app = fixtures::app(true);
    handle_key(&mut app, ch('?'));
    assert_eq!(*app.mode(), Mode::Help);
    handle_key(&mut app, ch('x'));
    assert_eq!(*app.mode(), Mode::Normal);
    assert!(app.is_running());
}

#[test]
fn headline_rates_equal_the_charts_last_point() {
    let app = fixtures::app(true);
    let last = *app.history().points().back().unwrap();
    assert_eq!(app.history().latest(), last);
    assert!((last.published - 184.0).abs() < 1e-6, "{last:?}");
    assert!((last.delivered - 234.0).abs() < 1e-6, "{last:?}");
    assert!((last.dropped - 72.0).abs() < 1e-6, "{last:?}");
    let first = app.history().points().front().unwrap();
    assert!(
        last.t - first.t <= 60.0,
        "the chart keeps the last minute only"
    );
}

#[test]
fn a_subscription_starting_to_drop_is_logged_once() {
    let app = fixtures::app(true);
    let started: Vec<_> = app
        .log_entries()
        .iter()
        .filter(|e| e.text.contains("started dropping"))
        .collect();
    assert_eq!(started.len(), 1, "{:?}", app.log_entries());
    assert_eq!(started[0].level, Level::Warn);
    assert!(
        started[0]
            .text
            .starts_with("slow-audit started dropping (queue full"),
        "{}",
        started[0].text
    );
    // A quiet spell, then new drops: logged again.
    let quiet = |t: f64, dropped: u64| {
        snapshot_with(t, 0, vec![sub(9, "bursty", "x/#", 4, 10, dropped, 0)])
    };
    let mut app = fixtures::app(true);
    app.apply(sample(quiet(100.0, 1), &[]));
    app.apply(sample(quiet(105.0, 1), &[]));
    app.apply(sample(quiet(106.0, 2), &[]));
    app.apply(sample(quiet(120.0, 3), &[]));
    let bursty = app
        .log_entries()
        .iter()
        .filter(|e| e.text.starts_with("bursty started dropping"))
        .count();
    assert_eq!(bursty, 2);
}

#[test]
fn receivers_stalling_on_a_full_window_are_logged_once_with_the_window() {
    let app = fixtures::acked_app();
    let stalled: Vec<_> = app
        .log_entries()
        .iter()
        .filter(|e| e.text.contains("full window"))
        .collect();
    assert_eq!(stalled.len(), 1, "{:?}", app.log_entries());
    assert_eq!(stalled[0].level, Level::Warn);
    assert_eq!(
        stalled[0].text,
        "dishes: 2 receivers wait on a full window (16/16 in flight, not yet acked)"
    );
    assert_eq!(app.radar(2).verdict, Verdict::StalledOnWindow);
    assert!(!app.radar(3).stalled_on_window, "jobs keeps acking");
}

#[test]
fn the_publish_form_takes_a_priority_and_a_retain_flag() {
    let mut app = fixtures::app(true);
    handle_key(&mut app, ch('p'));
    type_text(&mut app, "alerts/db");
    for _ in 0..3 {
        handle_key(&mut app, key(KeyCode::Tab));
    }
    select_all_and_type(&mut app, "critical");
    handle_key(&mut app, key(KeyCode::Tab));
    select_all_and_type(&mut app, "yes");
    let command = handle_key(&mut app, key(KeyCode::Enter));
    assert!(
        matches!(
            command,
            Some(Command::Publish(PublishRequest { options, .. }))
                if options.priority == switchyard::Priority::Critical && options.retain
        ),
        "{command:?}"
    );
}

#[test]
fn the_subscribe_form_refuses_a_durable_subscription_without_a_name() {
    let mut app = fixtures::app(true);
    handle_key(&mut app, ch('s'));
    type_text(&mut app, "orders/#");
    for _ in 0..4 {
        handle_key(&mut app, key(KeyCode::Tab));
    }
    select_all_and_type(&mut app, "yes");
    handle_key(&mut app, key(KeyCode::Tab));
    select_all_and_type(&mut app, "yes");
    assert_eq!(
        handle_key(&mut app, key(KeyCode::Enter)),
        None,
        "no name yet"
    );
    let error = app.subscribe_form().visible_error(app.limits()).unwrap();
    assert_eq!(error.field, 3);
    assert!(error.message.contains("needs a name"), "{}", error.message);
    // Focus went to the Name field with the error; type one and submit.
    type_text(&mut app, "billing");
    let command = handle_key(&mut app, key(KeyCode::Enter));
    assert!(
        matches!(
            command,
            Some(Command::Subscribe(SubscribeRequest { durable: true, receive_retained: true, ref name, .. }))
                if name.as_deref() == Some("billing")
        ),
        "{command:?}"
    );
}

fn shown_names(app: &super::app::App) -> Vec<String> {
    app.table()
        .rows
        .iter()
        .map(|&i| app.snapshot().subscriptions[i].name.clone())
        .collect()
}

#[test]
fn r_shows_the_radar_with_stalled_dropping_and_filling_first_and_r_again_goes_back() {
    let mut app = fixtures::radar_app();
    handle_key(&mut app, ch('r'));
    assert_eq!(app.table().view, View::Radar);
    assert_eq!(
        shown_names(&app),
        ["reports", "audit", "billing", "prices", "alerts", "archive"]
    );
    let verdict = |app: &super::app::App, id| app.radar(id).verdict;
    assert_eq!(verdict(&app, 4), Verdict::Stalled);
    assert_eq!(verdict(&app, 2), Verdict::Dropping);
    assert_eq!(verdict(&app, 3), Verdict::Filling);
    assert_eq!(verdict(&app, 5), Verdict::Idle);
    let billing = app.radar(3);
    assert!((billing.fill_per_s - 28.0).abs() < 0.5, "{billing:?}");
    assert!((billing.drain_per_s - 20.0).abs() < 0.5, "{billing:?}");
    // 80 queued of 256 at +8/s: 22 s to full.
    assert_eq!(billing.time_to_full_label(), "22s");
    assert_eq!(
        selected_name(&app),
        "prices",
        "the selection stays on its subscription"
    );
    handle_key(&mut app, ch('g'));
    assert_eq!(selected_name(&app), "reports");
    handle_key(&mut app, ch('j'));
    assert_eq!(selected_name(&app), "audit");
    handle_key(&mut app, ch('r'));
    assert_eq!(app.table().view, View::Subscriptions);
    assert_eq!(
        selected_name(&app),
        "audit",
        "the selection follows its subscription"
    );
}

#[test]
fn a_sort_key_in_the_radar_shows_the_subscriptions_sorted_that_way() {
    let mut app = fixtures::radar_app();
    handle_key(&mut app, ch('r'));
    handle_key(&mut app, ch('2'));
    assert_eq!(app.table().view, View::Subscriptions);
    assert_eq!(app.table().sort, SortColumn::Name);
    assert_eq!(shown_names(&app)[0], "alerts");
}

#[test]
fn f_shows_totals_per_filter_sorted_and_filtered_like_the_table() {
    let mut app = fixtures::radar_app();
    let before = selected_name(&app);
    handle_key(&mut app, ch('f'));
    assert_eq!(app.table().view, View::Filters);
    let filters: Vec<_> = app
        .table()
        .rows
        .iter()
        .map(|&i| app.table().filters[i].filter.clone())
        .collect();
    assert_eq!(
        filters,
        [
            "alerts/#",
            "orders/#",
            "reports/#",
            "stocks/#",
            "stocks/+/price"
        ]
    );
    assert_eq!(app.table().selected, 0, "the first filter is selected");
    let orders = app
        .table()
        .filters
        .iter()
        .find(|f| f.filter == "orders/#")
        .expect("orders/# is listed");
    assert_eq!(orders.subscriptions, 2);
    assert_eq!(
        (orders.delivered, orders.depth, orders.capacity),
        (200, 80, 320)
    );
    handle_key(&mut app, ch('7'));
    handle_key(&mut app, ch('7'));
    assert_eq!(
        app.table().filters[app.table().rows[0]].filter,
        "stocks/#",
        "dropped, largest first"
    );
    handle_key(&mut app, ch('/'));
    type_text(&mut app, "ORDERS");
    handle_key(&mut app, key(KeyCode::Enter));
    assert_eq!(app.table().rows.len(), 1);
    assert_eq!(
        selected_name(&app),
        before,
        "the detail pane keeps the subscription selected before"
    );
    handle_key(&mut app, ch('f'));
    assert_eq!(app.table().view, View::Subscriptions);
}

#[test]
fn w_asks_who_gets_a_valid_topic_and_stays_open_until_esc() {
    let mut app = fixtures::app(true);
    handle_key(&mut app, ch('w'));
    assert_eq!(*app.mode(), Mode::Explain);
    type_text(&mut app, "stocks/+");
    let error = app
        .explain_form()
        .visible_error(app.limits())
        .expect("a wildcard is not a topic");
    assert!(
        error.message.contains("only filters may use"),
        "{}",
        error.message
    );
    assert_eq!(handle_key(&mut app, key(KeyCode::Enter)), None);
    handle_key(&mut app, key(KeyCode::Backspace));
    type_text(&mut app, "AAPL/price");
    assert_eq!(
        handle_key(&mut app, key(KeyCode::Enter)),
        Some(Command::Explain("stocks/AAPL/price".into()))
    );
    assert_eq!(
        *app.mode(),
        Mode::Explain,
        "the answer shows in the open overlay"
    );
    app.explained("stocks/AAPL/price".into(), Ok(Vec::new()));
    assert_eq!(
        app.explanation().map(|e| e.topic.as_str()),
        Some("stocks/AAPL/price")
    );
    handle_key(&mut app, ch('q'));
    assert_eq!(*app.mode(), Mode::Explain, "q is typed into the topic");
    handle_key(&mut app, key(KeyCode::Esc));
    assert_eq!(*app.mode(), Mode::Normal);
    assert!(app.is_running());
    handle_key(&mut app, ch('w'));
    assert_eq!(
        app.explain_form().fields[0].value(),
        "stocks/AAPL/priceq",
        "the topic is kept for the next question"
    );
}

#[test]
fn every_binding_is_handled_and_no_key_is_bound_twice() {
    use super::keys::{Action, BINDINGS, action_for};
    let mut seen = std::collections::HashSet::new();
    for binding in BINDINGS {
        assert!(!binding.on.is_empty(), "{} has no keys", binding.keys);
        for (code, action) in binding.on {
            assert!(seen.insert(*code), "{code:?} is bound twice");
            assert_eq!(action_for(*code), Some(*action));
        }
    }
    // Each action does something observable from a fresh app (or asks for a command).
    for binding in BINDINGS {
        for (code, action) in binding.on {
            let mut app = fixtures::app(true);
            handle_key(&mut app, ch('j'));
            let before = format!("{:?}", (app.mode(), app.table().view, app.table().selected));
            let before_sort = (app.table().sort, app.table().descending);
            let command = handle_key(&mut app, key(*code));
            let after = format!("{:?}", (app.mode(), app.table().view, app.table().selected));
            let changed = command.is_some()
                || before != after
                || before_sort != (app.table().sort, app.table().descending)
                || !app.is_running()
                || app.shows_dead_letters();
            assert!(changed, "{code:?} ({action:?}) did nothing");
            if *action == Action::Quit {
                assert!(!app.is_running());
            }
        }
    }
}
