//! [`RemoteBroker`]: the [`BrokerLink`] for a broker in another process, read through its stats
//! endpoint (`switchyard dashboard --attach ADDR`).
//!
//! The UI thread never waits on the network for a sample: a background thread fetches
//! `GET /v1/stats?sort=&filter=&limit=` [`REMOTE_SUBSCRIPTIONS`] every refresh, the rows the table's
//! order, `/` filter or radar puts on top ([`RowsWanted`]) (and, with a token, the taps and the
//! selected tap's recent messages) into shared state that [`BrokerLink::snapshot`] only copies. Commands
//! go to a second background thread through the endpoint's command routes and report back as
//! [`LinkEvent`]s; only subscribing (the dashboard selects the new subscription by its id) and "who
//! gets this topic?" (`GET /v1/explain`) wait for their answer, at most [`COMMAND_WAIT`].
//!
//! - **Read-only endpoints**: every command key says why it is unavailable (the endpoint was started
//!   without a token, or this dashboard was given none).
//! - **Subscriptions made here are taps**: the endpoint subscribes and drains them (see
//!   `switchyard_observe`); pause, resume, unsubscribe and the recent-messages pane work on taps. The
//!   service's own subscriptions are shown, not driven.
//! - **A lost connection** is logged with its reason, and retried with back-off (doubling from the
//!   refresh interval up to [`MAX_BACKOFF`]); the last snapshot stays on screen, so the chart keeps
//!   its history. When the broker was restarted (its uptime went back), time on the chart continues
//!   from where it was rather than jumping back.
//! - **MQTT clients and bridges** (`c`) come from the endpoint's `mqtt` and `bridges` sections, which
//!   `switchyard serve` adds (`crate::stats_sections`); an endpoint without them shows none.
//! - **Quitting** never waits for the network: dropping the link only tells its threads to stop.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use switchyard::{Explained, StatsSnapshot, StatsSort, SubscriptionId, TopicLimits};
use switchyard_mqtt::{BridgeStats, MqttStats};
use switchyard_observe::{
    Client, ClientError, EndpointStats, SortBy, StatsParams, TapInfo, TapRequest,
};

use super::consumer::preview;
use super::link::{
    BrokerLink, ConsumerState, DeadLetterRow, LinkEvent, PublishRequest, RECENT_MESSAGES,
    RecentMessage, RowsWanted, SubscribeRequest, TopRows,
};
use crate::stats_sections;

/// Subscriptions fetched per sample, the ones the table's order, `/` filter or radar puts on top
/// ([`RowsWanted`]); the header's totals always cover all of them.
pub const REMOTE_SUBSCRIPTIONS: usize = 1000;

/// Of [`REMOTE_SUBSCRIPTIONS`], the radar's share of the fullest queues and of the most dropped each;
/// the rest are the first by id, so quiet subscriptions keep a history too.
const RADAR_ROWS: usize = 250;

/// The longest wait between two attempts to reach a lost endpoint.
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// How long subscribing and "who gets this topic?" wait for the endpoint's answer before giving up.
pub const COMMAND_WAIT: Duration = Duration::from_secs(2);

/// One HTTP exchange may take this long before the fetcher counts the endpoint as lost.
const FETCH_TIMEOUT: Duration = Duration::from_secs(2);

/// What the fetcher last learnt, read by the UI thread.
#[derive(Debug, Default)]
struct Shared {
    snapshot: StatsSnapshot,
    taps: BTreeMap<SubscriptionId, TapInfo>,
    /// The tap the detail pane shows, and its recent messages.
    selected: Option<SubscriptionId>,
    recent: Vec<RecentMessage>,
    recent_for: Option<SubscriptionId>,
    /// From the endpoint's `endpoint.commands`; `None` until the first answer.
    commands_on: Option<bool>,
    /// Why the endpoint cannot be reached now; `None` while it can.
    down: Option<String>,
    /// The endpoint's `mqtt` section (`switchyard serve --mqtt`), if it has one.
    mqtt: Option<MqttStats>,
    /// The endpoint's `bridges` section.
    bridges: Vec<BridgeStats>,
    /// The rows the dashboard shows on top, which the next fetch asks for.
    wanted: RowsWanted,
}

impl Shared {
    /// Keeps the last [`RECENT_MESSAGES`] of the selected subscription's tap, or none when no tap of
    /// it was read.
    fn show_recent(&mut self, recent: Option<(SubscriptionId, TapInfo)>) {
        match recent {
            Some((id, tap)) => {
                let skip = tap.recent.len().saturating_sub(RECENT_MESSAGES);
                self.recent = tap
                    .recent
                    .iter()
                    .skip(skip)
                    .map(|m| RecentMessage {
                        topic: m.topic.clone(),
                        preview: preview(m.payload.as_bytes()),
                        missed: m.missed,
                    })
                    .collect();
                self.recent_for = Some(id);
            }
            None => {
                self.recent.clear();
                self.recent_for = None;
            }
        }
    }
}

/// A command for the command thread.
enum Job {
    Publish(switchyard_observe::PublishRequest),
    Subscribe(TapRequest, Sender<anyhow::Result<SubscriptionId>>),
    Explain(String, Sender<anyhow::Result<Vec<Explained>>>),
    Unsubscribe(SubscriptionId),
    SetPaused(SubscriptionId, bool),
}

/// A broker in another process, through its endpoint. See the [module docs](self).
pub struct RemoteBroker {
    addr: String,
    has_token: bool,
    shared: Arc<Mutex<Shared>>,
    stop: Arc<AtomicBool>,
    jobs: Sender<Job>,
    events: Receiver<LinkEvent>,
}

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

impl RemoteBroker {
    /// Attaches to the endpoint at `addr`, sending `token` with commands. Returns at once: the first
    /// sample arrives within one `refresh`, or the log says why it could not.
    pub fn attach(addr: &str, token: Option<String>, refresh: Duration) -> anyhow::Result<Self> {
        let has_token = token.is_some();
        let client = || -> anyhow::Result<Client> {
            Ok(Client::new(addr)?
                .with_token(token.clone())
                .with_timeout(FETCH_TIMEOUT))
        };
        let shared = Arc::new(Mutex::new(Shared::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (events_tx, events) = mpsc::channel();
        let (jobs, job_rx) = mpsc::channel();
        {
            let (client, shared, stop, events) =
                (client()?, shared.clone(), stop.clone(), events_tx.clone());
            std::thread::Builder::new()
                .name("dashboard-fetch".into())
                .spawn(move || fetch_loop(&client, &shared, &stop, &events, refresh, has_token))
                .context("starting the fetching thread")?;
        }
        {
            let (client, shared) = (client()?, shared.clone());
            std::thread::Builder::new()
                .name("dashboard-commands".into())
                .spawn(move || command_loop(&client, &shared, &job_rx, &events_tx))
                .context("starting the command thread")?;
        }
        Ok(Self {
            addr: client()?.addr().to_string(),
            has_token,
            shared,
            stop,
            jobs,
            events,
        })
    }

    /// Why commands cannot be sent now; `None` when they can.
    fn why_no_commands(&self) -> Option<String> {
        let shared = lock(&self.shared);
        if shared.commands_on == Some(false) {
            return Some(format!(
                "the endpoint at {} is read-only (its service started it without a token)",
                self.addr
            ));
        }
        if !self.has_token {
            return Some(format!(
                "this dashboard has no token for {} (give it with --token-file)",
                self.addr
            ));
        }
        shared
            .down
            .as_ref()
            .map(|reason| format!("{} cannot be reached ({reason})", self.addr))
    }

    /// Whether commands can be sent; otherwise why not, for the key that asked.
    fn commands_available(&self, what: &str) -> anyhow::Result<()> {
        match self.why_no_commands() {
            Some(reason) => bail!("{what} is unavailable: {reason}"),
            None => Ok(()),
        }
    }

    /// Whether `id` is a tap of the endpoint (the only subscriptions this dashboard can drive).
    fn tap_only(&self, id: SubscriptionId, what: &str) -> anyhow::Result<()> {
        if lock(&self.shared).taps.contains_key(&id) {
            Ok(())
        } else {
            Err(anyhow!(
                "{what} works on taps made from this dashboard; subscription {id} belongs to the \
                 service at {}",
                self.addr
            ))
        }
    }

    /// Waits up to [`COMMAND_WAIT`] for the command thread's answer.
    fn wait<T>(&self, answer: &Receiver<anyhow::Result<T>>, hint: &str) -> anyhow::Result<T> {
        match answer.recv_timeout(COMMAND_WAIT) {
            Ok(result) => result,
            Err(RecvTimeoutError::Timeout) => bail!(
                "{} did not answer within {}s; {hint}",
                self.addr,
                COMMAND_WAIT.as_secs()
            ),
            Err(RecvTimeoutError::Disconnected) => bail!("the command thread has stopped"),
        }
    }

    fn send(&self, job: Job) -> anyhow::Result<()> {
        self.jobs
            .send(job)
            .map_err(|_| anyhow!("the command thread has stopped"))
    }
}

/// Fetches every `refresh` while the endpoint answers; backs off while it does not.
fn fetch_loop(
    client: &Client,
    shared: &Mutex<Shared>,
    stop: &AtomicBool,
    events: &Sender<LinkEvent>,
    refresh: Duration,
    has_token: bool,
) {
    let mut clock = UptimeClock::default();
    let mut backoff = refresh;
    while !stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        let queries = queries(&lock(shared).wanted);
        match fetch_rows(client, &queries) {
            Ok(mut stats) => {
                let (mqtt, bridges) = served_sections(&mut stats.sections);
                let mut snapshot = stats.snapshot;
                snapshot.uptime_s = clock.adjust(snapshot.uptime_s);
                let commands_on = stats.endpoint.commands;
                let selected = lock(shared).selected;
                let taps = (has_token && commands_on)
                    .then(|| client.taps().ok())
                    .flatten();
                let recent = selected
                    .filter(|id| taps.as_ref().is_some_and(|t| t.iter().any(|t| t.id == *id)))
                    .and_then(|id| client.tap(id).ok().map(|t| (id, t)));
                let mut s = lock(shared);
                if let Some(reason) = s.down.take() {
                    let _ = events.send(LinkEvent::Error(format!(
                        "reconnected to {} (it was unreachable: {reason})",
                        client.addr()
                    )));
                }
                s.snapshot = snapshot;
                s.mqtt = mqtt;
                s.bridges = bridges;
                s.commands_on = Some(commands_on);
                s.taps = taps
                    .unwrap_or_default()
                    .into_iter()
                    .map(|t| (t.id, t))
                    .collect();
                s.show_recent(recent);
                backoff = refresh;
            }
            Err(e) => {
                let reason = e.to_string();
                let mut s = lock(shared);
                if s.down.as_deref() != Some(reason.as_str()) {
                    let _ = events.send(LinkEvent::Error(format!(
                        "{reason}; retrying with back-off up to {}s, the chart keeps its history",
                        MAX_BACKOFF.as_secs()
                    )));
                }
                s.down = Some(reason);
                backoff = (backoff * 2).min(MAX_BACKOFF).max(refresh);
            }
        }
        let wait = if lock(shared).down.is_some() {
            backoff
        } else {
            refresh
        };
        sleep_unless(stop, wait.saturating_sub(started.elapsed()));
    }
}

/// The `GET /v1/stats` queries that fetch the rows `wanted` puts on top: one in the table's order,
/// or for the radar the fullest queues (a stalled or filling one is full or filling), the most
/// dropped, and the first by id.
fn queries(wanted: &RowsWanted) -> Vec<StatsParams> {
    let by = |sort, limit| StatsParams {
        sort,
        filter: (!wanted.containing.is_empty()).then(|| wanted.containing.clone()),
        limit: Some(limit),
    };
    let sort = match wanted.top {
        TopRows::FirstById => SortBy::Key(StatsSort::Id),
        TopRows::Fullest => SortBy::Key(StatsSort::Fill),
        TopRows::MostDelivered => SortBy::Key(StatsSort::Delivered),
        TopRows::Fastest => SortBy::Rate,
        TopRows::MostDropped => SortBy::Key(StatsSort::Dropped),
        TopRows::MostUrgent => {
            return vec![
                by(SortBy::Key(StatsSort::Fill), RADAR_ROWS),
                by(SortBy::Key(StatsSort::Dropped), RADAR_ROWS),
                by(
                    SortBy::Key(StatsSort::Id),
                    REMOTE_SUBSCRIPTIONS - 2 * RADAR_ROWS,
                ),
            ];
        }
    };
    vec![by(sort, REMOTE_SUBSCRIPTIONS)]
}

/// The first query's answer, with the subscriptions of the others that it does not hold already.
fn fetch_rows(client: &Client, queries: &[StatsParams]) -> Result<EndpointStats, ClientError> {
    let (first, rest) = queries
        .split_first()
        .expect("queries() asks for at least one");
    let mut stats = client.stats(first)?;
    let mut seen: HashSet<SubscriptionId> =
        stats.snapshot.subscriptions.iter().map(|s| s.id).collect();
    for query in rest {
        let more = client.stats(query)?;
        stats.snapshot.subscriptions.extend(
            more.snapshot
                .subscriptions
                .into_iter()
                .filter(|s| seen.insert(s.id)),
        );
    }
    Ok(stats)
}

/// The MQTT listener and the bridges of the endpoint's sections (`switchyard serve` has them; see
/// `crate::stats_sections`), taken out of `sections`. A section this dashboard cannot read is left
/// out, as an endpoint without one.
fn served_sections(
    sections: &mut BTreeMap<String, serde_json::Value>,
) -> (Option<MqttStats>, Vec<BridgeStats>) {
    let mqtt = sections
        .remove(stats_sections::MQTT)
        .and_then(|v| serde_json::from_value(v).ok());
    let bridges = sections
        .remove(stats_sections::BRIDGES)
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default();
    (mqtt, bridges)
}

/// Sleeps up to `duration`, waking every 20 ms to see whether `stop` was set.
fn sleep_unless(stop: &AtomicBool, duration: Duration) {
    let deadline = Instant::now() + duration;
    while !stop.load(Ordering::Relaxed) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        std::thread::sleep(left.min(Duration::from_millis(20)));
    }
}

/// Keeps the uptime the dashboard sees moving forward across a restart of the remote broker, so the
/// history (which ignores samples that are not newer) keeps charting.
#[derive(Debug, Default)]
struct UptimeClock {
    /// The last remote uptime, as reported, and when it was read.
    last: Option<(f64, Instant)>,
    /// Added to the remote uptime.
    offset: f64,
}

impl UptimeClock {
    fn adjust(&mut self, remote: f64) -> f64 {
        let now = Instant::now();
        if let Some((last, at)) = self.last
            && remote < last
        {
            // Restarted: continue from the last time shown plus the time that has passed since.
            self.offset += last + now.duration_since(at).as_secs_f64() - remote;
        }
        self.last = Some((remote, now));
        remote + self.offset
    }
}

/// Carries out commands one at a time; reports each result as an event.
fn command_loop(
    client: &Client,
    shared: &Mutex<Shared>,
    jobs: &Receiver<Job>,
    events: &Sender<LinkEvent>,
) {
    for job in jobs {
        let event = match job {
            Job::Publish(request) => match client.publish(&request) {
                Ok(r) => LinkEvent::Published {
                    topic: request.topic,
                    count: r.published,
                    queued: r.queued,
                    dropped: r.dropped,
                    unrouted: r.unrouted,
                },
                Err(e) => LinkEvent::Error(format!("publish to {}: {e}", request.topic)),
            },
            Job::Subscribe(request, reply) => {
                let result = client.open_tap(&request).map_err(anyhow::Error::from);
                if let Ok(tap) = &result {
                    lock(shared).taps.insert(tap.id, tap.clone());
                }
                let _ = reply.send(result.map(|t| t.id));
                continue;
            }
            Job::Explain(topic, reply) => {
                let result = client.explain(&topic).map(|e| e.subscriptions);
                let _ = reply.send(result.map_err(|e| match e {
                    // The library's topic error, as the embedded link gives it.
                    ClientError::Status {
                        status: 400,
                        message,
                        ..
                    } => anyhow!(message),
                    other => anyhow::Error::from(other),
                }));
                continue;
            }
            Job::Unsubscribe(id) => match client.delete_tap(id) {
                Ok(()) => {
                    lock(shared).taps.remove(&id);
                    continue;
                }
                Err(e) => LinkEvent::Error(format!("unsubscribe {id}: {e}")),
            },
            Job::SetPaused(id, paused) => match client.set_tap_paused(id, paused) {
                Ok(tap) => {
                    lock(shared).taps.insert(id, tap);
                    continue;
                }
                Err(e) => LinkEvent::Error(format!("pause/resume {id}: {e}")),
            },
        };
        if events.send(event).is_err() {
            return;
        }
    }
}

impl BrokerLink for RemoteBroker {
    fn limits(&self) -> TopicLimits {
        // The endpoint does not say which limits its broker uses; it validates again with its own.
        TopicLimits::default()
    }

    fn snapshot(&mut self) -> StatsSnapshot {
        lock(&self.shared).snapshot.clone()
    }

    fn consumer_states(&self) -> BTreeMap<SubscriptionId, ConsumerState> {
        lock(&self.shared)
            .taps
            .values()
            .map(|t| {
                let state = if t.paused {
                    ConsumerState::Paused
                } else {
                    ConsumerState::Running
                };
                (t.id, state)
            })
            .collect()
    }

    fn recent_messages(&self, id: SubscriptionId) -> Vec<RecentMessage> {
        let mut shared = lock(&self.shared);
        shared.selected = Some(id); // the fetcher reads this tap's messages from the next tick on
        if shared.recent_for == Some(id) {
            shared.recent.clone()
        } else {
            Vec::new()
        }
    }

    fn publish(&mut self, request: PublishRequest) -> anyhow::Result<()> {
        self.commands_available("publishing")?;
        self.send(Job::Publish(switchyard_observe::PublishRequest {
            topic: request.topic.to_string(),
            payload: request.payload,
            priority: Some(request.options.priority.name().to_string()),
            retain: request.options.retain,
            count: Some(request.count),
        }))
    }

    fn recent_dead_letters(&mut self) -> Vec<DeadLetterRow> {
        // The endpoint serves the dead-letter counts (in the snapshot), not the letters themselves.
        Vec::new()
    }

    fn subscribe(&mut self, request: &SubscribeRequest) -> anyhow::Result<SubscriptionId> {
        self.commands_available("subscribing")?;
        if request.durable {
            bail!(
                "a durable subscription cannot be made through an endpoint: subscriptions made here \
                 are taps, which end with the endpoint"
            );
        }
        let (reply, answer) = mpsc::channel();
        self.send(Job::Subscribe(
            TapRequest {
                filter: request.filter.clone(),
                capacity: Some(request.capacity),
                policy: Some(request.policy.to_string()),
                name: request.name.clone(),
                receive_retained: request.receive_retained,
            },
            reply,
        ))?;
        self.wait(&answer, "the tap may still appear")
    }

    fn unsubscribe(&mut self, id: SubscriptionId) -> anyhow::Result<()> {
        self.commands_available("unsubscribing")?;
        self.tap_only(id, "unsubscribing")?;
        self.send(Job::Unsubscribe(id))
    }

    fn set_paused(&mut self, id: SubscriptionId, paused: bool) -> anyhow::Result<()> {
        self.commands_available("pausing")?;
        self.tap_only(id, "pausing")?;
        self.send(Job::SetPaused(id, paused))
    }

    fn demo_running(&self) -> bool {
        false
    }

    fn set_demo(&mut self, _on: bool) -> anyhow::Result<()> {
        bail!(
            "demo traffic runs only in the dashboard's own broker; this one is attached to {}",
            self.addr
        )
    }

    fn want_rows(&mut self, wanted: &RowsWanted) {
        let mut shared = lock(&self.shared);
        if shared.wanted != *wanted {
            shared.wanted = wanted.clone();
        }
    }

    fn take_events(&mut self) -> Vec<LinkEvent> {
        self.events.try_iter().collect()
    }

    fn unreachable(&self) -> Option<String> {
        lock(&self.shared)
            .down
            .as_ref()
            .map(|reason| format!("cannot reach {}: {reason}", self.addr))
    }

    fn mqtt(&self) -> Option<MqttStats> {
        lock(&self.shared).mqtt.clone()
    }

    fn bridges(&self) -> Vec<BridgeStats> {
        lock(&self.shared).bridges.clone()
    }

    fn commands_unavailable(&self) -> Option<String> {
        self.why_no_commands().map(|reason| {
            format!("publish, subscribe, unsubscribe and pause are unavailable: {reason}")
        })
    }

    fn explain(&mut self, topic: &str) -> anyhow::Result<Vec<Explained>> {
        // Read-only: no token needed. Through the command thread, so the wait is bounded.
        let (reply, answer) = mpsc::channel();
        self.send(Job::Explain(topic.to_string(), reply))?;
        self.wait(&answer, "ask again")
    }
}

impl Drop for RemoteBroker {
    fn drop(&mut self) {
        // The threads notice within 20 ms, or when their request ends; nobody waits for them.
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use switchyard::{Broker, OverflowPolicy};
    use switchyard_observe::{ServeOptions, serve};

    use super::*;

    const TICK: Duration = Duration::from_millis(50);

    fn free_addr() -> SocketAddr {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
    }

    /// Samples until `done` holds (up to 20 s); returns the last snapshot.
    fn until(
        link: &mut RemoteBroker,
        mut done: impl FnMut(&StatsSnapshot) -> bool,
    ) -> StatsSnapshot {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let s = link.snapshot();
            if done(&s) {
                return s;
            }
            assert!(Instant::now() < deadline, "condition not met; last {s:?}");
            std::thread::sleep(TICK);
        }
    }

    fn publish_request(topic: &str, payload: &str, count: u64) -> PublishRequest {
        PublishRequest {
            topic: switchyard::Topic::new(topic).unwrap(),
            payload: payload.into(),
            count,
            options: switchyard::PublishOptions::new(),
        }
    }

    fn request(filter: &str) -> SubscribeRequest {
        SubscribeRequest {
            filter: filter.into(),
            capacity: 8,
            policy: OverflowPolicy::DropOldest,
            name: Some("tap".into()),
            durable: false,
            receive_retained: false,
        }
    }

    /// Issue 19, item 6: past [`REMOTE_SUBSCRIPTIONS`], the worst subscription is fetched when the
    /// table sorts by drops, in the radar, and when `/` names it, though it is not among the first
    /// thousand by id.
    #[test]
    fn the_rows_the_view_puts_on_top_are_fetched_past_the_first_thousand() {
        let broker = Broker::new();
        let quiet: Vec<_> = (0..REMOTE_SUBSCRIPTIONS + 100)
            .map(|i| broker.subscribe(&format!("quiet/{i}")).unwrap())
            .collect();
        let options = switchyard::SubscriptionOptions::new()
            .capacity(1)
            .name("needle");
        let worst = broker.subscribe_with("hot/#", options).unwrap();
        for _ in 0..5 {
            broker.publish("hot/t", "x").unwrap();
        }
        let endpoint = serve(&broker, ServeOptions::default().addr(free_addr())).unwrap();
        let mut link =
            RemoteBroker::attach(&endpoint.local_addr().to_string(), None, TICK).unwrap();
        let has_worst = |s: &StatsSnapshot| s.subscriptions.iter().any(|r| r.id == worst.id());
        let by_id = until(&mut link, |s| {
            s.totals.subscriptions == quiet.len() as u64 + 1
        });
        assert_eq!(by_id.subscriptions.len(), REMOTE_SUBSCRIPTIONS);
        assert!(!has_worst(&by_id), "the first thousand by id leave it out");
        for top in [TopRows::MostDropped, TopRows::Fullest, TopRows::MostUrgent] {
            link.want_rows(&RowsWanted {
                top,
                containing: String::new(),
            });
            let s = until(&mut link, has_worst);
            assert!(s.subscriptions.len() <= REMOTE_SUBSCRIPTIONS, "{top:?}");
        }
        link.want_rows(&RowsWanted::default());
        until(&mut link, |s| !has_worst(s));
        link.want_rows(&RowsWanted {
            top: TopRows::FirstById,
            containing: "NEEDLE".into(),
        });
        let s = until(&mut link, has_worst);
        assert_eq!(s.subscriptions.len(), 1, "only what / names");
    }

    #[test]
    fn the_mqtt_and_bridges_sections_are_read_and_unreadable_ones_left_out() {
        let bridge = switchyard_mqtt::BridgeStats {
            remote: "10.0.0.1:1883".into(),
            last_error: Some("refused".into()),
            ..Default::default()
        };
        let mqtt = switchyard_mqtt::MqttStats {
            address: "127.0.0.1:1883".into(),
            open: 3,
            ..Default::default()
        };
        let mut mqtt_json = serde_json::to_value(&mqtt).unwrap();
        mqtt_json["clients_omitted"] = 0.into(); // what `stats_sections` adds
        let mut sections = BTreeMap::from([
            ("mqtt".to_string(), mqtt_json),
            ("bridges".to_string(), serde_json::json!([bridge])),
            ("cache".to_string(), serde_json::json!({"entries": 1})),
        ]);
        assert_eq!(served_sections(&mut sections), (Some(mqtt), vec![bridge]));
        assert_eq!(sections.len(), 1, "other sections stay: {sections:?}");

        let mut unreadable = BTreeMap::from([
            ("mqtt".to_string(), serde_json::json!("up")),
            ("bridges".to_string(), serde_json::json!({"remote": 1})),
        ]);
        assert_eq!(served_sections(&mut unreadable), (None, Vec::new()));
    }

    #[test]
    fn samples_arrive_and_read_only_commands_say_why_they_are_unavailable() {
        let broker = Broker::new();
        let _s = broker.subscribe("orders/#").unwrap();
        let endpoint = serve(&broker, ServeOptions::default().addr(free_addr())).unwrap();
        let mut link =
            RemoteBroker::attach(&endpoint.local_addr().to_string(), Some("t".into()), TICK)
                .unwrap();
        let s = until(&mut link, |s| s.totals.subscriptions == 1);
        assert_eq!(s.subscriptions[0].filter, "orders/#");
        let e = link
            .publish(publish_request("orders/1", "x", 1))
            .unwrap_err();
        assert!(e.to_string().contains("read-only"), "{e}");
        let e = link.subscribe(&request("a")).unwrap_err();
        assert!(e.to_string().contains("read-only"), "{e}");
        // The keys learn it before any form opens.
        let why = link.commands_unavailable().expect("commands are refused");
        assert!(why.contains("read-only"), "{why}");
        assert_eq!(link.unreachable(), None);
        assert!(
            link.set_demo(true)
                .unwrap_err()
                .to_string()
                .contains("attached")
        );

        let with_token = serve(
            &broker,
            ServeOptions::default().addr(free_addr()).token("t"),
        )
        .unwrap();
        let mut tokenless =
            RemoteBroker::attach(&with_token.local_addr().to_string(), None, TICK).unwrap();
        until(&mut tokenless, |s| s.totals.subscriptions == 1);
        let e = tokenless
            .publish(publish_request("orders/1", "x", 1))
            .unwrap_err();
        assert!(e.to_string().contains("--token-file"), "{e}");
    }

    #[test]
    fn with_a_token_taps_are_subscribed_fed_paused_and_removed() {
        let broker = Broker::new();
        let endpoint = serve(
            &broker,
            ServeOptions::default().addr(free_addr()).token("t"),
        )
        .unwrap();
        let mut link =
            RemoteBroker::attach(&endpoint.local_addr().to_string(), Some("t".into()), TICK)
                .unwrap();
        until(&mut link, |s| !s.schema.is_empty());
        let id = link.subscribe(&request("news/#")).unwrap();
        link.publish(publish_request("news/a", "hello", 2)).unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut events = Vec::new();
        let recent = loop {
            let sample = link.sample(Some(id));
            events.extend(sample.events.clone());
            if sample.recent.len() == 2 {
                break sample.recent;
            }
            assert!(
                Instant::now() < deadline,
                "recent messages never came: {sample:?}"
            );
            std::thread::sleep(TICK);
        };
        assert_eq!(
            (recent[0].topic.as_str(), recent[0].preview.as_str()),
            ("news/a", "hello")
        );
        let published = events.into_iter().chain(link.take_events()).any(|e| {
            matches!(
                e,
                LinkEvent::Published {
                    count: 2,
                    queued: 2,
                    ..
                }
            )
        });
        assert!(published);

        link.set_paused(id, true).unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while link.consumer_states().get(&id) != Some(&ConsumerState::Paused) {
            assert!(Instant::now() < deadline);
            std::thread::sleep(TICK);
        }
        let e = link.set_paused(424242, true).unwrap_err();
        assert!(e.to_string().contains("taps"), "{e}");
        link.unsubscribe(id).unwrap();
        until(&mut link, |s| s.totals.subscriptions == 0);
    }

    #[test]
    fn a_lost_endpoint_is_reported_retried_and_rejoined_with_time_moving_forward() {
        let addr = free_addr();
        let first = Broker::new();
        let _a = first.subscribe("a").unwrap();
        let endpoint = serve(&first, ServeOptions::default().addr(addr)).unwrap();
        let mut link = RemoteBroker::attach(&addr.to_string(), None, TICK).unwrap();
        let before = until(&mut link, |s| s.totals.subscriptions == 1);
        std::thread::sleep(Duration::from_millis(300));
        drop(endpoint);

        let deadline = Instant::now() + Duration::from_secs(20);
        let lost = loop {
            let events = link.take_events();
            if let Some(LinkEvent::Error(text)) = events.into_iter().next() {
                break text;
            }
            assert!(Instant::now() < deadline, "the loss was never reported");
            std::thread::sleep(TICK);
        };
        assert!(
            lost.contains(&addr.to_string()) && lost.contains("retrying"),
            "{lost}"
        );
        let kept = link.snapshot();
        assert_eq!(
            kept.totals.subscriptions, 1,
            "the last snapshot stays on screen"
        );
        let banner = link.unreachable().expect("the banner's reason");
        assert!(banner.contains(&addr.to_string()), "{banner}");
        assert!(kept.uptime_s >= before.uptime_s);

        // A new broker (younger uptime) on the same address.
        let second = Broker::new();
        let _b = second.subscribe("b").unwrap();
        let _c = second.subscribe("c").unwrap();
        let _endpoint = serve(&second, ServeOptions::default().addr(addr)).unwrap();
        let after = until(&mut link, |s| s.totals.subscriptions == 2);
        assert_eq!(link.unreachable(), None, "the banner goes once it answers");
        assert!(
            after.uptime_s > kept.uptime_s,
            "{} <= {}",
            after.uptime_s,
            kept.uptime_s
        );
        let rejoined = link
            .take_events()
            .into_iter()
            .any(|e| matches!(e, LinkEvent::Error(ref t) if t.starts_with("reconnected to")));
        assert!(rejoined);
    }

    #[test]
    fn dropping_the_link_does_not_wait_for_a_request_in_flight() {
        // An endpoint that accepts connections and never answers: the fetcher sits in a request
        // that only its 2 s timeout ends.
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let link =
            RemoteBroker::attach(&silent.local_addr().unwrap().to_string(), None, TICK).unwrap();
        std::thread::sleep(Duration::from_millis(200));
        let started = Instant::now();
        drop(link);
        assert!(
            started.elapsed() < FETCH_TIMEOUT / 2,
            "quitting waited for the network"
        );
    }

    #[test]
    fn who_gets_a_topic_is_asked_of_the_endpoint_without_a_token() {
        let broker = Broker::new();
        let _prices = broker.subscribe("stocks/+/price").unwrap();
        let _all = broker.subscribe("#").unwrap();
        let _other = broker.subscribe("alerts/#").unwrap();
        let endpoint = serve(&broker, ServeOptions::default().addr(free_addr())).unwrap();
        let mut link =
            RemoteBroker::attach(&endpoint.local_addr().to_string(), None, TICK).unwrap();
        let who = link.explain("stocks/AAPL/price").unwrap();
        assert_eq!(who, broker.explain("stocks/AAPL/price").unwrap());
        assert_eq!(who.len(), 2);
        let e = link.explain("stocks/+/price").unwrap_err();
        let library = broker.explain("stocks/+/price").unwrap_err();
        assert_eq!(e.to_string(), library.to_string());
        drop(endpoint);
        let e = link.explain("a").unwrap_err();
        assert!(e.to_string().contains("cannot connect"), "{e}");
    }

    #[test]
    fn uptime_keeps_moving_forward_across_a_restart() {
        let mut clock = UptimeClock::default();
        assert_eq!(clock.adjust(10.0), 10.0);
        assert_eq!(clock.adjust(11.0), 11.0);
        let restarted = clock.adjust(0.5);
        assert!(restarted > 11.0, "{restarted}");
        assert!(clock.adjust(1.5) > restarted);
    }
}
