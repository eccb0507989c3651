//! Key handling: each key changes the [`App`]'s state and may ask for a [`Command`]. Nothing here
//! touches the broker, so every binding is tested by feeding keys to an `App`.

use crossterm::event::{Event as CrosstermEvent, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use tui_input::backend::crossterm::EventHandler;

use super::app::{App, Command, Level, Mode, SortColumn};
use super::forms::{Form, FormOutcome, Submission};

/// Rows moved by PageUp/PageDown.
const PAGE: isize = 10;

/// Every key binding, for the help overlay: (keys, what they do).
pub const BINDINGS: &[(&str, &str)] = &[
    ("j / ↓, k / ↑", "select the next / previous subscription"),
    ("g / Home, G / End", "select the first / last subscription"),
    ("PgDn / PgUp", "move the selection by 10 rows"),
    ("1-7", "sort: id name filter depth delivered rate dropped"),
    ("1-7 again", "flip the sort direction"),
    ("o / O", "sort by the next column / flip the direction"),
    (
        "/",
        "filter rows by name or filter (Enter keeps, Esc clears)",
    ),
    ("p", "publish: topic, payload, count, priority, retain"),
    ("s", "subscribe: filter, capacity, policy, name, flags"),
    (
        "u / Delete",
        "unsubscribe the selected subscription (confirm with y)",
    ),
    (
        "space",
        "pause / resume the selected subscription's consumer",
    ),
    ("e", "export a switchyard.stats/v1 snapshot as JSON"),
    ("d", "start / stop demo traffic"),
    ("x", "show / hide recent dead letters (instead of the log)"),
    ("?", "show / hide this help"),
    ("q / Esc / Ctrl-C", "quit"),
    (
        "in forms",
        "Tab/↓ next, Shift-Tab/↑ previous, Enter send, Esc cancel",
    ),
];

/// Applies one key press. Returns what the user asked the broker (or the file system) for, if anything.
pub fn handle_key(app: &mut App, key: KeyEvent) -> Option<Command> {
    if key.kind == KeyEventKind::Release {
        return None;
    }
    if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
        app.running = false;
        return None;
    }
    match app.mode.clone() {
        Mode::Normal => normal(app, key),
        Mode::Help => {
            app.mode = Mode::Normal;
            None
        }
        Mode::ConfirmUnsubscribe { id, name } => {
            app.mode = Mode::Normal;
            if matches!(key.code, KeyCode::Char('y' | 'Y')) {
                Some(Command::Unsubscribe { id, name })
            } else {
                app.log(Level::Info, format!("kept {name}"));
                None
            }
        }
        Mode::Filter => {
            match key.code {
                KeyCode::Enter => app.mode = Mode::Normal,
                KeyCode::Esc => {
                    app.table.filter.reset();
                    app.mode = Mode::Normal;
                }
                _ => {
                    app.table.filter.handle_event(&CrosstermEvent::Key(key));
                }
            }
            app.rebuild_rows();
            None
        }
        Mode::PublishForm => {
            let outcome = app.publish_form.handle_key(key, &app.limits);
            form_done(app, outcome)
        }
        Mode::SubscribeForm => {
            let outcome = app.subscribe_form.handle_key(key, &app.limits);
            form_done(app, outcome)
        }
    }
}

fn form_done(app: &mut App, outcome: FormOutcome) -> Option<Command> {
    match outcome {
        FormOutcome::Editing => None,
        FormOutcome::Cancelled => {
            app.mode = Mode::Normal;
            None
        }
        FormOutcome::Submitted(submission) => {
            app.mode = Mode::Normal;
            Some(match submission {
                Submission::Publish {
                    topic,
                    payload,
                    count,
                    options,
                } => Command::Publish {
                    topic,
                    payload,
                    count,
                    options,
                },
                Submission::Subscribe(request) => {
                    app.subscribe_form = Form::subscribe();
                    Command::Subscribe(request)
                }
            })
        }
    }
}

fn normal(app: &mut App, key: KeyEvent) -> Option<Command> {
    match key.code {
        KeyCode::Char('q') | KeyCode::Esc => app.running = false,
        KeyCode::Char('?') => app.mode = Mode::Help,
        KeyCode::Char('j') | KeyCode::Down => app.move_selection(1),
        KeyCode::Char('k') | KeyCode::Up => app.move_selection(-1),
        KeyCode::PageDown => app.move_selection(PAGE),
        KeyCode::PageUp => app.move_selection(-PAGE),
        KeyCode::Char('g') | KeyCode::Home => app.select_row(0),
        KeyCode::Char('G') | KeyCode::End => app.select_row(usize::MAX),
        KeyCode::Char('o') => {
            app.table.sort = app.table.sort.next();
            app.rebuild_rows();
        }
        KeyCode::Char('O') => {
            app.table.descending = !app.table.descending;
            app.rebuild_rows();
        }
        KeyCode::Char(c @ '1'..='7') => {
            // The same column again flips the direction, as in k9s.
            let column = SortColumn::ALL[usize::from(c as u8 - b'1')];
            if app.table.sort == column {
                app.table.descending = !app.table.descending;
            } else {
                app.table.sort = column;
            }
            app.rebuild_rows();
        }
        KeyCode::Char('/') => app.mode = Mode::Filter,
        KeyCode::Char('p') => {
            let form = &mut app.publish_form;
            form.attempted = false;
            form.focus = 0;
            form.fields.iter_mut().for_each(|f| f.edited = false);
            app.mode = Mode::PublishForm;
        }
        KeyCode::Char('s') => app.mode = Mode::SubscribeForm,
        KeyCode::Char('u') | KeyCode::Delete => match app.selected() {
            Some(s) => {
                app.mode = Mode::ConfirmUnsubscribe {
                    id: s.id,
                    name: s.name.clone(),
                }
            }
            None => app.log(Level::Info, "no subscription selected to unsubscribe"),
        },
        KeyCode::Char(' ') => {
            let (id, name) = match app.selected() {
                Some(s) => (s.id, s.name.clone()),
                None => {
                    app.log(Level::Info, "no subscription selected to pause");
                    return None;
                }
            };
            let paused = !app.consumer(id).is_paused();
            return Some(Command::SetPaused { id, name, paused });
        }
        KeyCode::Char('e') => return Some(Command::Export),
        KeyCode::Char('d') => return Some(Command::SetDemo(!app.demo)),
        KeyCode::Char('x') => app.show_dead_letters = !app.show_dead_letters,
        _ => {}
    }
    None
}
