//! The dashboard's state: plain data that key handling changes and rendering reads.
//!
//! Nothing here talks to a broker. Data arrives as a [`Sample`] on each tick ([`App::apply`]); what the
//! user asks for leaves as a [`Command`] (see [`super::keys`]) that [`super::actions`] carries out through
//! the [`super::link::BrokerLink`].

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};

use crossterm::event::{Event as CrosstermEvent, KeyEvent};
use switchyard::{
    DropReason, Explained, StatsSnapshot, SubscriptionId, SubscriptionStats, TopicLimits,
};
use switchyard_mqtt::MqttStats;
use tui_input::Input;
use tui_input::backend::crossterm::EventHandler;

use super::forms::{Form, FormOutcome};
use super::history::{History, Notice};
use super::link::{
    ConsumerState, DeadLetterRow, LinkEvent, PublishRequest, RecentMessage, RowsWanted, Sample,
    SubscribeRequest, TopRows,
};
use super::theme::Theme;
use crate::filter_totals::{FilterTotals, by_filter};
use crate::radar::Radar;

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
    /// "Who gets this topic?" (`w`): a topic field and the subscriptions it would reach.
    Explain,
}

/// What the main table shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum View {
    /// Every subscription, sorted by the chosen column.
    #[default]
    Subscriptions,
    /// The slow-consumer radar (`r`): fill against drain, time to full, stalled first.
    Radar,
    /// Totals per distinct filter (`f`).
    Filters,
    /// The MQTT listener's clients (`c`): connections and persistent sessions.
    Connections,
}

impl View {
    /// The table's title.
    pub fn title(self) -> &'static str {
        match self {
            Self::Subscriptions => "Subscriptions",
            Self::Radar => "Radar",
            Self::Filters => "Filters",
            Self::Connections => "MQTT clients",
        }
    }

    /// Whether its rows are subscriptions (rather than filters or MQTT clients).
    pub fn lists_subscriptions(self) -> bool {
        matches!(self, Self::Subscriptions | Self::Radar)
    }
}

/// Something the user asked the broker (or the file system) for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Publish, as the publish form asked.
    Publish(PublishRequest),
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
    /// List the subscriptions a publish on `topic` would reach.
    Explain(String),
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

/// What the broker link last reported. Written only by [`App::apply`] and by the results of commands
/// ([`App::subscribed`], [`App::consumer_changed`], [`App::demo_changed`]); everything else reads it.
#[derive(Debug)]
pub struct Observed {
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
    /// Rates over time, and each subscription's radar.
    pub history: History,
    /// Why the broker cannot be reached now (the header shows it as a banner).
    pub unreachable: Option<String>,
    /// Why command keys are refused now.
    pub commands_unavailable: Option<String>,
    /// The MQTT listener serving this broker (`--mqtt`), if there is one.
    pub mqtt: Option<MqttStats>,
    /// Its bridges to other MQTT brokers.
    pub bridges: Vec<switchyard_mqtt::BridgeStats>,
}

/// The main table's view: which view, its sort, text filter and selection. The scroll position is
/// not here: it belongs to rendering (a ratatui `TableState`, see [`super::render::ScreenState`]).
#[derive(Debug, Default)]
pub struct TableView {
    /// Which rows: subscriptions, the radar, or filters.
    pub view: View,
    /// Sorted by (the subscriptions and filters views; the radar sorts by urgency).
    pub sort: SortColumn,
    /// Largest first.
    pub descending: bool,
    /// Rows must contain this text in their name or filter (case-insensitive).
    pub filter: Input,
    /// The rows in display order, filtered: indexes into the snapshot's subscriptions, or into
    /// `filters` in the filters view.
    pub rows: Vec<usize>,
    /// Totals per distinct filter, ordered by filter text.
    pub filters: Vec<FilterTotals>,
    /// Index into `rows` of the selected row.
    pub selected: usize,
    /// Which subscription is selected, so the selection follows it when rows move (and the detail pane
    /// keeps showing it in the filters view).
    pub selected_id: Option<SubscriptionId>,
}

/// The answer shown by the "who gets this topic?" overlay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    /// The topic asked about.
    pub topic: String,
    /// The subscriptions a publish would reach, or why the link could not say.
    pub result: Result<Vec<Explained>, String>,
}

/// The forms, kept between uses so a message can be sent again with `p`, Enter.
#[derive(Debug)]
struct Forms {
    publish: Form,
    subscribe: Form,
    explain: Form,
}

/// All the dashboard's state. Fields are private: key handling, commands and samples change it through
/// the methods below, and rendering reads it through the accessors.
#[derive(Debug)]
pub struct App {
    running: bool,
    /// The endpoint of the broker in another process (`--attach`), if the dashboard watches one.
    attached_to: Option<String>,
    mode: Mode,
    forms: Forms,
    observed: Observed,
    table: TableView,
    explanation: Option<Explanation>,
    /// `x`: the dead-letter view replaces the log pane.
    show_dead_letters: bool,
    log: VecDeque<LogEntry>,
    limits: TopicLimits,
    export_dir: PathBuf,
    theme: Theme,
}

impl App {
    /// A dashboard with no data yet.
    pub fn new(limits: TopicLimits, export_dir: PathBuf, theme: Theme) -> Self {
        Self {
            running: true,
            attached_to: None,
            mode: Mode::Normal,
            forms: Forms {
                publish: Form::publish(),
                subscribe: Form::subscribe(),
                explain: Form::explain(),
            },
            observed: Observed {
                snapshot: empty_snapshot(),
                consumers: BTreeMap::new(),
                recent: Vec::new(),
                recent_for: None,
                demo: false,
                dead_letters: Vec::new(),
                history: History::default(),
                unreachable: None,
                commands_unavailable: None,
                mqtt: None,
                bridges: Vec::new(),
            },
            table: TableView::default(),
            explanation: None,
            show_dead_letters: false,
            log: VecDeque::new(),
            limits,
            export_dir,
            theme,
        }
    }

    /// Takes in one tick's data: history, log lines for notable events, and the table's rows.
    pub fn apply(&mut self, sample: Sample) {
        let notices = self.observed.history.push(&sample.snapshot);
        self.observed.snapshot = sample.snapshot;
        for notice in notices {
            self.log_notice(notice);
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
        self.observed.consumers = sample.consumers;
        self.observed.recent = sample.recent;
        self.observed.recent_for = sample.recent_for;
        self.observed.demo = sample.demo;
        self.observed.dead_letters = sample.dead_letters;
        self.observed.unreachable = sample.unreachable;
        self.observed.commands_unavailable = sample.commands_unavailable;
        self.observed.mqtt = sample.mqtt;
        self.observed.bridges = sample.bridges;
        self.rebuild_rows();
    }

    /// Logs what a sample showed starting: drops, or receivers waiting on a full window.
    fn log_notice(&mut self, notice: Notice) {
        let text = match notice {
            Notice::StartedDropping { id, name } => {
                let reasons = self
                    .observed
                    .snapshot
                    .subscriptions
                    .iter()
                    .find(|s| s.id == id)
                    .map(drop_reasons)
                    .unwrap_or_default();
                format!("{name} started dropping ({reasons})")
            }
            Notice::StalledOnWindow {
                name,
                in_flight,
                window,
                waiting,
            } => {
                let who = match waiting {
                    0 => "receivers find".to_string(),
                    1 => "1 receiver waits on".to_string(),
                    n => format!("{n} receivers wait on"),
                };
                format!(
                    "{name}: {who} a full window ({in_flight}/{window} in flight, not yet acked)"
                )
            }
        };
        self.log(Level::Warn, text);
    }

    /// Adds a line to the log, stamped with the broker's uptime.
    pub fn log(&mut self, level: Level, text: impl Into<String>) {
        if self.log.len() == LOG_LINES {
            self.log.pop_front();
        }
        self.log.push_back(LogEntry {
            t: self.observed.snapshot.uptime_s,
            level,
            text: text.into(),
        });
    }

    // ---- reading ----

    /// False once the user asked to quit.
    pub fn is_running(&self) -> bool {
        self.running
    }

    /// What the keyboard is talking to.
    pub fn mode(&self) -> &Mode {
        &self.mode
    }

    /// What the link last reported.
    /// Marks the dashboard as attached to the endpoint at `addr` (the header says so).
    pub fn set_attached_to(&mut self, addr: &str) {
        self.attached_to = Some(addr.to_string());
    }

    /// The endpoint the dashboard is attached to, if it is.
    pub fn attached_to(&self) -> Option<&str> {
        self.attached_to.as_deref()
    }

    pub fn observed(&self) -> &Observed {
        &self.observed
    }

    /// The latest snapshot.
    pub fn snapshot(&self) -> &StatsSnapshot {
        &self.observed.snapshot
    }

    /// Rates over time.
    pub fn history(&self) -> &History {
        &self.observed.history
    }

    /// The main table's view and rows.
    pub fn table(&self) -> &TableView {
        &self.table
    }

    /// The rows this view shows on top, for a link that sends only some (see [`RowsWanted`]).
    pub fn rows_wanted(&self) -> RowsWanted {
        let t = &self.table;
        let top = match (t.view, t.sort, t.descending) {
            (View::Radar, ..) => TopRows::MostUrgent,
            (_, SortColumn::Depth, true) => TopRows::Fullest,
            (_, SortColumn::Delivered, true) => TopRows::MostDelivered,
            (_, SortColumn::Rate, true) => TopRows::Fastest,
            (_, SortColumn::Dropped, true) => TopRows::MostDropped,
            _ => TopRows::FirstById,
        };
        RowsWanted {
            top,
            containing: t.filter.value().to_string(),
        }
    }

    /// The publish form.
    pub fn publish_form(&self) -> &Form {
        &self.forms.publish
    }

    /// The subscribe form.
    pub fn subscribe_form(&self) -> &Form {
        &self.forms.subscribe
    }

    /// The "who gets this topic?" form.
    pub fn explain_form(&self) -> &Form {
        &self.forms.explain
    }

    /// The latest "who gets this topic?" answer.
    pub fn explanation(&self) -> Option<&Explanation> {
        self.explanation.as_ref()
    }

    /// Whether the dead-letter view replaces the log pane.
    pub fn shows_dead_letters(&self) -> bool {
        self.show_dead_letters
    }

    /// Actions, errors and notable events, oldest first.
    pub fn log_entries(&self) -> &VecDeque<LogEntry> {
        &self.log
    }

    /// Topic and filter limits, for validating forms.
    pub fn limits(&self) -> &TopicLimits {
        &self.limits
    }

    /// Where `e` writes snapshots.
    pub fn export_dir(&self) -> &Path {
        &self.export_dir
    }

    /// Colours, or none under `NO_COLOR`.
    pub fn theme(&self) -> &Theme {
        &self.theme
    }

    /// The selected subscription's counters (in the filters view: the one selected before).
    pub fn selected(&self) -> Option<&SubscriptionStats> {
        let subs = &self.observed.snapshot.subscriptions;
        if self.table.view.lists_subscriptions() {
            let row = *self.table.rows.get(self.table.selected)?;
            subs.get(row)
        } else {
            let id = self.table.selected_id?;
            subs.iter().find(|s| s.id == id)
        }
    }

    /// The state of the consumer of `id`.
    pub fn consumer(&self, id: SubscriptionId) -> ConsumerState {
        self.observed
            .consumers
            .get(&id)
            .copied()
            .unwrap_or_default()
    }

    /// The radar's reading of subscription `id` (all zero before its first sample).
    pub fn radar(&self, id: SubscriptionId) -> Radar {
        self.observed
            .history
            .subscription(id)
            .map(|h| h.radar)
            .unwrap_or_default()
    }

    /// How many consumers are paused (or pausing), for the header's badge.
    pub fn paused_count(&self) -> usize {
        self.observed
            .consumers
            .values()
            .filter(|c| c.is_paused())
            .count()
    }

    // ---- what keys change ----

    /// Asks the event loop to stop.
    pub fn quit(&mut self) {
        self.running = false;
    }

    /// Switches what the keyboard talks to. Opening a form reopens it as it was left.
    pub fn set_mode(&mut self, mode: Mode) {
        match mode {
            Mode::PublishForm => self.forms.publish.reopen(),
            Mode::Explain => self.forms.explain.reopen(),
            _ => {}
        }
        self.mode = mode;
    }

    /// Passes a key to the open form.
    pub fn form_key(&mut self, key: KeyEvent) -> FormOutcome {
        let form = match self.mode {
            Mode::PublishForm => &mut self.forms.publish,
            Mode::SubscribeForm => &mut self.forms.subscribe,
            Mode::Explain => &mut self.forms.explain,
            _ => return FormOutcome::Cancelled,
        };
        form.handle_key(key, &self.limits)
    }

    /// Empties the subscribe form (after a subscribe was sent), so the next one starts fresh.
    pub fn reset_subscribe_form(&mut self) {
        self.forms.subscribe = Form::subscribe();
    }

    /// Passes a key to the row filter being typed.
    pub fn filter_key(&mut self, key: KeyEvent) {
        self.table.filter.handle_event(&CrosstermEvent::Key(key));
        self.rebuild_rows();
    }

    /// Clears the row filter.
    pub fn clear_filter(&mut self) {
        self.table.filter.reset();
        self.rebuild_rows();
    }

    /// Shows `view` in the main table, or the subscriptions again if it is already shown.
    pub fn toggle_view(&mut self, view: View) {
        self.table.view = if self.table.view == view {
            View::Subscriptions
        } else {
            view
        };
        self.table.selected = 0;
        self.rebuild_rows();
    }

    /// Sorts by `column`; the same column again flips the direction, as in k9s.
    pub fn sort_by(&mut self, column: SortColumn) {
        self.leave_radar();
        if self.table.sort == column {
            self.table.descending = !self.table.descending;
        } else {
            self.table.sort = column;
        }
        self.rebuild_rows();
    }

    /// Sorts by the next column in `o`'s cycle.
    pub fn sort_by_next_column(&mut self) {
        self.leave_radar();
        self.table.sort = self.table.sort.next();
        self.rebuild_rows();
    }

    /// Flips the sort direction.
    pub fn flip_sort(&mut self) {
        self.leave_radar();
        self.table.descending = !self.table.descending;
        self.rebuild_rows();
    }

    /// The radar has its own order, so a sort key there shows the subscriptions sorted as asked.
    fn leave_radar(&mut self) {
        if self.table.view == View::Radar {
            self.table.view = View::Subscriptions;
        }
    }

    /// Shows or hides the dead letters in place of the log.
    pub fn toggle_dead_letters(&mut self) {
        self.show_dead_letters = !self.show_dead_letters;
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
        if self.table.view.lists_subscriptions() {
            self.table.selected_id = self
                .table
                .rows
                .get(row)
                .and_then(|&i| self.observed.snapshot.subscriptions.get(i))
                .map(|s| s.id);
        }
    }

    // ---- what command results change ----

    /// A subscribe succeeded: select the new subscription and show its consumer running.
    pub fn subscribed(&mut self, id: SubscriptionId) {
        self.table.selected_id = Some(id);
        self.observed.consumers.insert(id, ConsumerState::Running);
    }

    /// A pause or resume was accepted: show it until the next sample says more.
    pub fn consumer_changed(&mut self, id: SubscriptionId, state: ConsumerState) {
        self.observed.consumers.insert(id, state);
    }

    /// Demo traffic was started or stopped.
    pub fn demo_changed(&mut self, on: bool) {
        self.observed.demo = on;
    }

    /// The link answered "who gets `topic`?".
    pub fn explained(&mut self, topic: String, result: Result<Vec<Explained>, String>) {
        self.explanation = Some(Explanation { topic, result });
    }

    /// Recomputes the table's rows from the snapshot, view, sort and text filter, keeping the
    /// selection on the same subscription when it is still shown.
    pub fn rebuild_rows(&mut self) {
        let needle = self.table.filter.value().to_lowercase();
        let matches = |text: &str| needle.is_empty() || text.to_lowercase().contains(&needle);
        match self.table.view {
            View::Connections => {
                self.table.rows = self.connection_rows(matches);
                let selected = self.table.selected;
                self.select_row(selected);
            }
            View::Filters => {
                self.table.filters = by_filter(&self.observed.snapshot.subscriptions);
                self.table.rows = self.filter_rows(matches);
                let selected = self.table.selected;
                self.select_row(selected);
            }
            View::Subscriptions | View::Radar => {
                self.table.rows = self.subscription_rows(matches);
                let subs = &self.observed.snapshot.subscriptions;
                let keep = self
                    .table
                    .selected_id
                    .and_then(|id| self.table.rows.iter().position(|&i| subs[i].id == id));
                self.select_row(keep.unwrap_or(self.table.selected));
            }
        }
    }

    /// `order`, reversed when the table sorts largest first.
    fn directed(&self, order: std::cmp::Ordering) -> std::cmp::Ordering {
        if self.table.descending {
            order.reverse()
        } else {
            order
        }
    }

    /// The MQTT clients whose id `matches`, sorted by drops or in-flight, then by id.
    fn connection_rows(&self, matches: impl Fn(&str) -> bool) -> Vec<usize> {
        let clients = self
            .observed
            .mqtt
            .as_ref()
            .map_or(&[][..], |m| m.clients.as_slice());
        let mut rows: Vec<usize> = (0..clients.len())
            .filter(|&i| matches(&clients[i].client_id))
            .collect();
        rows.sort_by(|&a, &b| {
            let (a, b) = (&clients[a], &clients[b]);
            let order = match self.table.sort {
                SortColumn::Dropped => a.dropped.cmp(&b.dropped),
                SortColumn::Depth => a.inflight.cmp(&b.inflight),
                _ => std::cmp::Ordering::Equal,
            };
            self.directed(order.then(a.client_id.cmp(&b.client_id)))
        });
        rows
    }

    /// The filters (in `table.filters`) that `matches`, sorted by the sort column, then by filter.
    fn filter_rows(&self, matches: impl Fn(&str) -> bool) -> Vec<usize> {
        let filters = &self.table.filters;
        let mut rows: Vec<usize> = (0..filters.len())
            .filter(|&i| matches(&filters[i].filter))
            .collect();
        let fill = |f: &FilterTotals| f.depth as f64 / f.capacity.max(1) as f64;
        rows.sort_by(|&a, &b| {
            let (a, b) = (&filters[a], &filters[b]);
            let order = match self.table.sort {
                SortColumn::Id | SortColumn::Name | SortColumn::Filter => std::cmp::Ordering::Equal,
                SortColumn::Depth => fill(a).total_cmp(&fill(b)),
                SortColumn::Delivered | SortColumn::Rate => a.delivered.cmp(&b.delivered),
                SortColumn::Dropped => a.dropped.cmp(&b.dropped),
            };
            self.directed(order.then(a.filter.cmp(&b.filter)))
        });
        rows
    }

    /// The subscriptions whose name or filter `matches`: in the radar most urgent first, otherwise by
    /// the sort column, then by id.
    fn subscription_rows(&self, matches: impl Fn(&str) -> bool) -> Vec<usize> {
        let subs = &self.observed.snapshot.subscriptions;
        let mut rows: Vec<usize> = (0..subs.len())
            .filter(|&i| matches(&subs[i].name) || matches(&subs[i].filter))
            .collect();
        let history = &self.observed.history;
        let rate = |s: &SubscriptionStats| {
            history
                .subscription(s.id)
                .map_or(0.0, |h| h.delivered_per_s())
        };
        let radar = |s: &SubscriptionStats| {
            history
                .subscription(s.id)
                .map(|h| h.radar)
                .unwrap_or_default()
        };
        let fill = |s: &SubscriptionStats| s.depth as f64 / s.capacity.max(1) as f64;
        if self.table.view == View::Radar {
            // Most urgent first, whatever the sort: stalled, dropping, then the soonest full.
            rows.sort_by(|&a, &b| {
                let (a, b) = (&subs[a], &subs[b]);
                radar(a).urgency(&radar(b)).then(a.id.cmp(&b.id))
            });
        } else {
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
                self.directed(order.then(a.id.cmp(&b.id)))
            });
        }
        rows
    }
}

/// Drop counts by reason, such as `queue_full 12, evicted 3`, for the log.
fn drop_reasons(s: &SubscriptionStats) -> String {
    let d = &s.dropped_by_reason;
    let parts: Vec<String> = DropReason::ALL
        .into_iter()
        .filter(|r| d.get(*r) > 0)
        .map(|r| format!("{} {}", r.label().replace('_', " "), d.get(r)))
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
