//! The screens, drawn into ratatui's `TestBackend` from fixed data and compared with insta snapshots
//! (in `snapshots/`). Review changes with `cargo insta review`.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

use super::app::App;
use super::fixtures::{self, sample, snapshot_with, sub};
use super::keys::handle_key;

fn draw(app: &App, width: u16, height: u16) -> Terminal<TestBackend> {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal
        .draw(|frame| frame.render_widget(app, frame.area()))
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
    for mode in ["?", "s", "p", "u", "/"] {
        press(&mut app, mode);
        for (w, h) in [(10, 5), (40, 12), (41, 13), (60, 14)] {
            draw(&app, w, h);
        }
        handle_key(&mut app, KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE));
        app.running = true;
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
    let started = std::time::Instant::now();
    press(&mut app, "G");
    let screen = draw(&app, 120, 40).backend().to_string();
    assert!(
        screen.contains("sub-1000") && !screen.contains("sub-0001"),
        "{screen}"
    );
    press(&mut app, "k");
    let screen = draw(&app, 120, 40).backend().to_string();
    assert!(
        screen.contains("sub-1000"),
        "moving up one row does not jump the view"
    );
    for _ in 0..200 {
        press(&mut app, "k");
        draw(&app, 120, 40);
    }
    let screen = draw(&app, 120, 40).backend().to_string();
    assert!(screen.contains("▶    799 sub-0799"), "{screen}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn x_shows_recent_dead_letters_with_their_reasons_in_place_of_the_log_100x30() {
    let mut app = fixtures::app(false);
    press(&mut app, "x");
    assert!(app.show_dead_letters);
    let terminal = draw(&app, 100, 30);
    let text = format!("{:?}", terminal.backend());
    assert!(
        text.contains("queue_full") && text.contains("audit"),
        "{text}"
    );
    insta::assert_snapshot!(terminal.backend());
}
