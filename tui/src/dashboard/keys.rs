//! Key handling: each key changes the [`App`]'s state and may ask for a [`Command`]. Nothing here
//! touches the broker, so every binding is tested by feeding keys to an `App`.
//!
//! The main screen's keys are one table, [`BINDINGS`]: the key handler looks keys up in it, the help
//! overlay lists it and the footer shows its short labels, so the three cannot drift apart. The modes
//! (forms, the row filter, the confirmation, the help) take every key, and handle them below.

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::app::{App, Command, Level, Mode, SortColumn, View};
use super::forms::{FormOutcome, Submission};

/// Rows moved by PageUp/PageDown.
const PAGE: isize = 10;

/// What a key on the main screen does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Stop the dashboard.
    Quit,
    /// Show the key list.
    Help,
    /// Move the selection by this many rows.
    Move(isize),
    /// Select the first row.
    Top,
    /// Select the last row.
    Bottom,
    /// Sort by a column (the same one again flips the direction).
    SortBy(SortColumn),
    /// Sort by the next column.
    SortNext,
    /// Flip the sort direction.
    SortFlip,
    /// Type a row filter.
    Filter,
    /// Open the publish form.
    Publish,
    /// Open the subscribe form.
    Subscribe,
    /// Ask to unsubscribe the selected subscription.
    Unsubscribe,
    /// Pause or resume the selected subscription's consumer.
    Pause,
    /// Export a snapshot.
    Export,
    /// Start or stop demo traffic.
    Demo,
    /// Dead letters in place of the log.
    DeadLetters,
    /// Show (or leave) a view of the main table.
    Show(View),
    /// "Who gets this topic?"
    Explain,
}

impl Action {
    /// Whether the action ends in a command to the broker, which a read-only link refuses.
    fn sends_a_command(self) -> bool {
        matches!(
            self,
            Self::Publish | Self::Subscribe | Self::Unsubscribe | Self::Pause | Self::Demo
        )
    }
}

/// One line of the help: the keys, what they do, and (for the footer) a short label.
#[derive(Debug, Clone, Copy)]
pub struct Binding {
    /// The keys as the help and footer show them.
    pub keys: &'static str,
    /// What they do, for the help.
    pub help: &'static str,
    /// The footer's short form (keys, a word or two); `None` keeps it out of the footer.
    pub footer: Option<(&'static str, &'static str)>,
    /// Each key and its action.
    pub on: &'static [(KeyCode, Action)],
}

const fn key(c: char) -> KeyCode {
    KeyCode::Char(c)
}

/// Every key of the main screen, in the order of the help and the footer.
pub const BINDINGS: &[Binding] = &[
    Binding {
        keys: "q / Esc / Ctrl-C",
        help: "quit",
        footer: Some(("q", "quit")),
        on: &[(key('q'), Action::Quit), (KeyCode::Esc, Action::Quit)],
    },
    Binding {
        keys: "?",
        help: "show / hide this help",
        footer: Some(("?", "help")),
        on: &[(key('?'), Action::Help)],
    },
    Binding {
        keys: "p",
        help: "publish: topic, payload, count, priority, retain",
        footer: Some(("p", "publish")),
        on: &[(key('p'), Action::Publish)],
    },
    Binding {
        keys: "s",
        help: "subscribe: filter, capacity, policy, name, flags",
        footer: Some(("s", "subscribe")),
        on: &[(key('s'), Action::Subscribe)],
    },
    Binding {
        keys: "w",
        help: "who gets this topic? the subscriptions a publish reaches",
        footer: Some(("w", "who gets")),
        on: &[(key('w'), Action::Explain)],
    },
    Binding {
        keys: "r",
        help: "radar: fill vs drain, time to full (again: back)",
        footer: Some(("r", "radar")),
        on: &[(key('r'), Action::Show(View::Radar))],
    },
    Binding {
        keys: "f",
        help: "totals per filter (again: back)",
        footer: Some(("f", "filters")),
        on: &[(key('f'), Action::Show(View::Filters))],
    },
    Binding {
        keys: "c",
        help: "MQTT clients of --mqtt, their drops (again: back)",
        footer: None,
        on: &[(key('c'), Action::Show(View::Connections))],
    },
    Binding {
        keys: "u / Delete",
        help: "unsubscribe the selected subscription (confirm with y)",
        footer: Some(("u", "unsub")),
        on: &[
            (key('u'), Action::Unsubscribe),
            (KeyCode::Delete, Action::Unsubscribe),
        ],
    },
    Binding {
        keys: "space",
        help: "pause / resume the selected subscription's consumer",
        footer: Some(("space", "pause")),
        on: &[(key(' '), Action::Pause)],
    },
    Binding {
        keys: "e",
        help: "export a switchyard.stats/v1 snapshot as JSON",
        footer: Some(("e", "export")),
        on: &[(key('e'), Action::Export)],
    },
    Binding {
        keys: "d",
        help: "start / stop demo traffic",
        footer: Some(("d", "demo")),
        on: &[(key('d'), Action::Demo)],
    },
    Binding {
        keys: "x",
        help: "show / hide recent dead letters (instead of the log)",
        footer: None,
        on: &[(key('x'), Action::DeadLetters)],
    },
    Binding {
        keys: "/",
        help: "filter rows by name or filter (Enter keeps, Esc clears)",
        footer: Some(("/", "filter")),
        on: &[(key('/'), Action::Filter)],
    },
    Binding {
        keys: "1-7, again flips",
        help: "sort: id name filter depth delivered rate dropped",
        footer: None,
        on: &[
            (key('1'), Action::SortBy(SortColumn::Id)),
            (key('2'), Action::SortBy(SortColumn::Name)),
            (key('3'), Action::SortBy(SortColumn::Filter)),
            (key('4'), Action::SortBy(SortColumn::Depth)),
            (key('5'), Action::SortBy(SortColumn::Delivered)),
            (key('6'), Action::SortBy(SortColumn::Rate)),
            (key('7'), Action::SortBy(SortColumn::Dropped)),
        ],
    },
    Binding {
        keys: "o / O",
        help: "sort by the next column / flip the direction",
        footer: Some(("o/O", "sort")),
        on: &[(key('o'), Action::SortNext), (key('O'), Action::SortFlip)],
    },
    Binding {
        keys: "j / ↓, k / ↑",
        help: "select the next / previous row",
        footer: Some(("j/k", "select")),
        on: &[
            (key('j'), Action::Move(1)),
            (KeyCode::Down, Action::Move(1)),
            (key('k'), Action::Move(-1)),
            (KeyCode::Up, Action::Move(-1)),
        ],
    },
    Binding {
        keys: "g / Home, G / End",
        help: "select the first / last row",
        footer: None,
        on: &[
            (key('g'), Action::Top),
            (KeyCode::Home, Action::Top),
            (key('G'), Action::Bottom),
            (KeyCode::End, Action::Bottom),
        ],
    },
    Binding {
        keys: "PgDn / PgUp",
        help: "move the selection by 10 rows",
        footer: None,
        on: &[
            (KeyCode::PageDown, Action::Move(PAGE)),
            (KeyCode::PageUp, Action::Move(-PAGE)),
        ],
    },
];

/// A line the help adds after the bindings: the keys every form shares.
pub const FORM_KEYS: (&str, &str) = (
    "in forms",
    "Tab/↓ next, Shift-Tab/↑ previous, Enter send, Esc cancel",
);

/// The action bound to `code` on the main screen, if any.
pub fn action_for(code: KeyCode) -> Option<Action> {
    BINDINGS
        .iter()
        .flat_map(|b| b.on.iter())
        .find(|(k, _)| *k == code)
        .map(|(_, action)| *action)
}

/// Applies one key press. Returns what the user asked the broker (or the file system) for, if anything.
pub fn handle_key(app: &mut App, key: KeyEvent) -> Option<Command> {
    if key.kind == KeyEventKind::Release {
        return None;
    }
    if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
        app.quit();
        return None;
    }
    match app.mode().clone() {
        Mode::Normal => action_for(key.code).and_then(|action| act(app, action)),
        Mode::Help => {
            app.set_mode(Mode::Normal);
            None
        }
        Mode::ConfirmUnsubscribe { id, name } => {
            app.set_mode(Mode::Normal);
            if matches!(key.code, KeyCode::Char('y' | 'Y')) {
                Some(Command::Unsubscribe { id, name })
            } else {
                app.log(Level::Info, format!("kept {name}"));
                None
            }
        }
        Mode::Filter => {
            match key.code {
                KeyCode::Enter => app.set_mode(Mode::Normal),
                KeyCode::Esc => {
                    app.clear_filter();
                    app.set_mode(Mode::Normal);
                }
                _ => app.filter_key(key),
            }
            None
        }
        Mode::PublishForm | Mode::SubscribeForm | Mode::Explain => {
            let outcome = app.form_key(key);
            form_done(app, outcome)
        }
    }
}

fn form_done(app: &mut App, outcome: FormOutcome) -> Option<Command> {
    match outcome {
        FormOutcome::Editing => None,
        FormOutcome::Cancelled => {
            app.set_mode(Mode::Normal);
            None
        }
        FormOutcome::Submitted(Submission::Explain { topic }) => {
            // The explainer stays open with its answer, ready for another topic.
            Some(Command::Explain(topic))
        }
        FormOutcome::Submitted(submission) => {
            app.set_mode(Mode::Normal);
            Some(match submission {
                Submission::Publish(request) => Command::Publish(request),
                Submission::Subscribe(request) => {
                    app.reset_subscribe_form();
                    Command::Subscribe(request)
                }
                Submission::Explain { topic } => Command::Explain(topic),
            })
        }
    }
}

/// Does what a main-screen key is bound to.
fn act(app: &mut App, action: Action) -> Option<Command> {
    if action.sends_a_command() {
        if let Some(reason) = app.observed().commands_unavailable.clone() {
            app.log(Level::Warn, reason);
            return None;
        }
    }
    match action {
        Action::Quit => app.quit(),
        Action::Help => app.set_mode(Mode::Help),
        Action::Move(delta) => app.move_selection(delta),
        Action::Top => app.select_row(0),
        Action::Bottom => app.select_row(usize::MAX),
        Action::SortBy(column) => app.sort_by(column),
        Action::SortNext => app.sort_by_next_column(),
        Action::SortFlip => app.flip_sort(),
        Action::Filter => app.set_mode(Mode::Filter),
        Action::Publish => app.set_mode(Mode::PublishForm),
        Action::Subscribe => app.set_mode(Mode::SubscribeForm),
        Action::Explain => app.set_mode(Mode::Explain),
        Action::Show(view) => app.toggle_view(view),
        Action::DeadLetters => app.toggle_dead_letters(),
        Action::Unsubscribe => match app.selected() {
            Some(s) => {
                let (id, name) = (s.id, s.name.clone());
                app.set_mode(Mode::ConfirmUnsubscribe { id, name });
            }
            None => app.log(Level::Info, "no subscription selected to unsubscribe"),
        },
        Action::Pause => {
            let Some(s) = app.selected() else {
                app.log(Level::Info, "no subscription selected to pause");
                return None;
            };
            let (id, name) = (s.id, s.name.clone());
            let paused = !app.consumer(id).is_paused();
            return Some(Command::SetPaused { id, name, paused });
        }
        Action::Export => return Some(Command::Export),
        Action::Demo => return Some(Command::SetDemo(!app.observed().demo)),
    }
    None
}
