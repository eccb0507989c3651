//! The dashboard's state: plain data that key handling changes and rendering reads.
//!
//! Nothing here talks to a broker. Data arrives as a [`Sample`] on each tick ([`App::apply`]); what the
//! user asks for leaves as a [`Command`] (see [`super::keys`]) that [`super::actions`] carries out through
//! the [`super::link::BrokerLink`].

use std::cell::Cell;
use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;

use switchyard::{PublishOptions, StatsSnapshot, SubscriptionId, SubscriptionStats, TopicLimits};
use tui_input::Input;

use super::forms::Form;
use super::history::History;
use super::link::{
    ConsumerState, DeadLetterRow, LinkEvent, RecentMessage, Sample, SubscribeRequest,
};
use super::theme::Theme;

/// What the keyboard is talking to right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// The main screen.
    Normal,
    /// The publish form (`p`).
    PublishForm,
    /// The subscribe form (`s`).
    SubscribeForm,
    /// Waiting for `y` to unsubscribe `id` (`u` or Delete).
    ConfirmUnsubscribe {
        /// The subscription.
        id: SubscriptionId,
        /// Its name, for the question.
        name: String,
    },
    /// The key list (`?`).
    Help,
    /// Typing a row filter (`/`).
    Filter,
}

/// Something the user asked the broker (or the file system) for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Publish `payload` on `topic`, `count` times.
    Publish {
        /// The topic.
        topic: String,
        /// The payload.
        payload: String,
        /// How many times.
        count: u64,
        /// Priority and retain flag.
        options: PublishOptions,
    },
    /// Subscribe and start a consumer.
    Subscribe(SubscribeRequest),
    /// Unsubscribe.
    Unsubscribe {
        /// The subscription.
        id: SubscriptionId,
        /// Its name, for the log.
        name: String,
    },
    /// Pause or resume a subscription's consumer.
    SetPaused {
        /// The subscription.
        id: SubscriptionId,
        /// Its name, for the log.
        name: String,
        /// Pause (true) or resume.
        paused: bool,
    },
    /// Write the current snapshot to a JSON file.
    Export,
    /// Start or stop demo traffic.
    SetDemo(bool),
}

/// A column the subscriptions table can be sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortColumn {
    /// Subscription id (creation order).
    #[default]
    Id,
    /// Name.
    Name,
    /// Filter text.
    Filter,
    /// Queue depth as a fraction of capacity.
    Depth,
    /// Delivered count.
    Delivered,
    /// Deliveries per second.
    Rate,
    /// Dropped count.
    Dropped,
}

impl SortColumn {
    /// Every column, in the order of `o`'s cycle and of the keys `1` to `7`.
    pub const ALL: [SortColumn; 7] = [
        Self::Id,
        Self::Name,
        Self::Filter,
        Self::Depth,
        Self::Delivered,
        Self::Rate,
        Self::Dropped,
    ];

    /// The next column in `o`'s cycle.
    pub fn next(self) -> Self {
        let i = Self::ALL.iter().position(|c| *c == self).unwrap_or(0);
        Self::ALL[(i + 1) % Self::ALL.len()]
    }

    /// The column's name in the table header and the log.
    pub fn label(self) -> &'static str {
        match self {
            Self::Id => "id",
            Self::Name => "name",
            Self::Filter => "filter",
            Self::Depth => "depth",
            Self::Delivered => "delivered",
            Self::Rate => "rate",
            Self::Dropped => "dropped",
        }
    }
}

/// How serious a log line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Something the user did, and its result.
    Info,
    /// Something to notice, such as a subscription starting to drop.
    Warn,
    /// Something that failed.
    Error,
}

/// One line of the log pane.
#[derive(Debug, Clone, PartialEq)]
pub struct LogEntry {
    /// Broker uptime when it was logged, in seconds.
    pub t: f64,
    /// How serious.
    pub level: Level,
    /// What happened.
    pub text: String,
}

/// Log lines kept; older ones are forgotten.
const LOG_LINES: usize = 200;

/// The subscriptions table's view: sort, text filter, selection and scroll position.
#[derive(Debug, Default)]
pub struct TableView {
    /// Sorted by.
    pub sort: SortColumn,
    /// Largest first.
    pub descending: bool,
    /// Rows must contain this text in their name or filter (case-insensitive).
    pub filter: Input,
    /// Indexes into the snapshot's subscriptions, in display order, filtered.
    pub rows: Vec<usize>,
    /// Index into `rows` of the selected row.
    pub selected: usize,
    /// Which subscription is selected, so the selection follows it when rows move.
    pub selected_id: Option<SubscriptionId>,
    /// First row on screen. Written by rendering (which alone knows the table's height) so that
    /// scrolling moves only as far as needed to keep the selection visible, like a `TableState`.
    pub offset: Cell<usize>,
}

/// All the dashboard's state.
#[derive(Debug)]
pub struct App {
    /// False once the user asked to quit.
    pub running: bool,
    /// What the keyboard is talking to.
    pub mode: Mode,
    /// The publish form; kept between uses so a message can be sent again with `p`, Enter.
    pub publish_form: Form,
    /// The subscribe form.
    pub subscribe_form: Form,
    /// The latest snapshot.
    pub snapshot: StatsSnapshot,
    /// Each subscription's consumer.
    pub consumers: BTreeMap<SubscriptionId, ConsumerState>,
    /// The last messages of `recent_for`'s consumer.
    pub recent: Vec<RecentMessage>,
    /// Which subscription `recent` belongs to.
    pub recent_for: Option<SubscriptionId>,
    /// Whether demo traffic runs.
    pub demo: bool,
    /// The most recent dead letters, oldest first.
    pub dead_letters: Vec<DeadLetterRow>,
    /// `x`: the dead-letter view replaces the log pane.
    pub show_dead_letters: bool,
    /// Rates over time.
    pub history: History,
    /// The subscriptions table.
    pub table: TableView,
    /// Actions, errors and notable events, oldest first.
    pub log: VecDeque<LogEntry>,
    /// Topic and filter limits, for validating forms.
    pub limits: TopicLimits,
    /// Where `e` writes snapshots.
    pub export_dir: PathBuf,
    /// Colours, or none under `NO_COLOR`.
    pub theme: Theme,
}

impl App {
    /// A dashboard with no data yet.
    pub fn new(limits: TopicLimits, export_dir: PathBuf, theme: Theme) -> Self {
        Self {
            running: true,
            mode: Mode::Normal,
            publish_form: Form::publish(),
            subscribe_form: Form::subscribe(),
            snapshot: empty_snapshot(),
            consumers: BTreeMap::new(),
            recent: Vec::new(),
            recent_for: None,
            demo: false,
            dead_letters: Vec::new(),
            show_dead_letters: false,
            history: History::default(),
            table: TableView::default(),
            log: VecDeque::new(),
            limits,
            export_dir,
            theme,
        }
    }

    /// Takes in one tick's data: history, log lines for notable events, and the table's rows.
    pub fn apply(&mut self, sample: Sample) {
        let started = self.history.push(&sample.snapshot);
        self.snapshot = sample.snapshot;
        for (id, name) in started {
            let reasons = self
                .snapshot
                .subscriptions
                .iter()
                .find(|s| s.id == id)
                .map(drop_reasons)
                .unwrap_or_default();
            self.log(Level::Warn, format!("{name} started dropping ({reasons})"));
        }
        for event in sample.events {
            match event {
                LinkEvent::Published {
                    topic,
                    count,
                    queued,
                    dropped,
                    unrouted,
                } => {
                    let mut text = format!("published {count}× to {topic}: {queued} queued");
                    if dropped > 0 {
                        text.push_str(&format!(", {dropped} dropped"));
                    }
                    if unrouted > 0 {
                        text.push_str(&format!(", {unrouted} unrouted (no matching subscription)"));
                    }
                    let level = if dropped > 0 || unrouted > 0 {
                        Level::Warn
                    } else {
                        Level::Info
                    };
                    self.log(level, text);
                }
                LinkEvent::Error(text) => self.log(Level::Error, text),
            }
        }
        self.consumers = sample.consumers;
        self.recent = sample.recent;
        self.recent_for = sample.recent_for;
        self.demo = sample.demo;
        self.dead_letters = sample.dead_letters;
        self.rebuild_rows();
    }

    /// Adds a line to the log, stamped with the broker's uptime.
    pub fn log(&mut self, level: Level, text: impl Into<String>) {
        if self.log.len() == LOG_LINES {
            self.log.pop_front();
        }
        self.log.push_back(LogEntry {
            t: self.snapshot.uptime_s,
            level,
            text: text.into(),
        });
    }

    /// The selected subscription's counters.
    pub fn selected(&self) -> Option<&SubscriptionStats> {
        let row = *self.table.rows.get(self.table.selected)?;
        self.snapshot.subscriptions.get(row)
    }

    /// The state of the consumer of `id`.
    pub fn consumer(&self, id: SubscriptionId) -> ConsumerState {
        self.consumers.get(&id).copied().unwrap_or_default()
    }

    /// How many consumers are paused (or pausing), for the header's badge.
    pub fn paused_count(&self) -> usize {
        self.consumers.values().filter(|c| c.is_paused()).count()
    }

    /// Moves the selection by `delta` rows, staying within the table.
    pub fn move_selection(&mut self, delta: isize) {
        let last = self.table.rows.len().saturating_sub(1);
        let to = self.table.selected.saturating_add_signed(delta).min(last);
        self.select_row(to);
    }

    /// Selects row `row` (clamped).
    pub fn select_row(&mut self, row: usize) {
        let row = row.min(self.table.rows.len().saturating_sub(1));
        self.table.selected = row;
        self.table.selected_id = self
            .table
            .rows
            .get(row)
            .and_then(|&i| self.snapshot.subscriptions.get(i))
            .map(|s| s.id);
    }

    /// Recomputes the table's rows from the snapshot, sort and text filter, keeping the selection on
    /// the same subscription when it is still shown.
    pub fn rebuild_rows(&mut self) {
        let needle = self.table.filter.value().to_lowercase();
        let subs = &self.snapshot.subscriptions;
        let mut rows: Vec<usize> = (0..subs.len())
            .filter(|&i| {
                needle.is_empty()
                    || subs[i].name.to_lowercase().contains(&needle)
                    || subs[i].filter.to_lowercase().contains(&needle)
            })
            .collect();
        let history = &self.history;
        let rate = |s: &SubscriptionStats| {
            history
                .subscription(s.id)
                .map_or(0.0, |h| h.delivered_per_s())
        };
        let fill = |s: &SubscriptionStats| s.depth as f64 / s.capacity.max(1) as f64;
        rows.sort_by(|&a, &b| {
            let (a, b) = (&subs[a], &subs[b]);
            let order = match self.table.sort {
                SortColumn::Id => a.id.cmp(&b.id),
                SortColumn::Name => a.name.to_lowercase().cmp(&b.name.to_lowercase()),
                SortColumn::Filter => a.filter.cmp(&b.filter),
                SortColumn::Depth => fill(a).total_cmp(&fill(b)),
                SortColumn::Delivered => a.delivered.cmp(&b.delivered),
                SortColumn::Rate => rate(a).total_cmp(&rate(b)),
                SortColumn::Dropped => a.dropped.cmp(&b.dropped),
            };
            let order = order.then(a.id.cmp(&b.id));
            if self.table.descending {
                order.reverse()
            } else {
                order
            }
        });
        self.table.rows = rows;
        let keep = self
            .table
            .selected_id
            .and_then(|id| self.table.rows.iter().position(|&i| subs[i].id == id));
        self.select_row(keep.unwrap_or(self.table.selected));
    }
}

/// Drop counts by reason, such as `queue_full 12, evicted 3`, for the log.
fn drop_reasons(s: &SubscriptionStats) -> String {
    let d = &s.dropped_by_reason;
    let parts: Vec<String> = [
        ("queue full", d.queue_full),
        ("evicted", d.evicted),
        ("timeout", d.timeout),
        ("unsubscribed", d.unsubscribed),
    ]
    .iter()
    .filter(|(_, n)| *n > 0)
    .map(|(what, n)| format!("{what} {n}"))
    .collect();
    let mut text = parts.join(", ");
    text.push_str(&format!("; depth {}/{}", s.depth, s.capacity));
    text
}

/// A snapshot with nothing in it, shown until the first tick.
pub fn empty_snapshot() -> StatsSnapshot {
    StatsSnapshot {
        schema: switchyard::SCHEMA.to_string(),
        taken_at: String::new(),
        uptime_s: 0.0,
        totals: Default::default(),
        rates: Default::default(),
        subscriptions: Vec::new(),
        latency_us: None,
        load: None,
        ..Default::default()
    }
}
