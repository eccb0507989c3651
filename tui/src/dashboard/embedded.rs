//! [`EmbeddedBroker`]: the [`BrokerLink`] for a broker running inside the dashboard's own process.
//!
//! It owns the [`Broker`], one [`Consumer`] per subscription it created, the demo traffic, and a
//! publishing thread. Publishing runs off the UI thread because a subscription with the `block` policy
//! may make a publish wait (up to its timeout, per message); the UI must never wait on the broker.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::{self, JoinHandle};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::mqtt_listener::MqttListener;
use anyhow::Context;
use std::net::SocketAddr;

use switchyard::Explained;
use switchyard::{
    Broker, BrokerOptions, DeadLetters, StatsSnapshot, SubscriptionId, SubscriptionOptions,
    TopicLimits, TopicSyntax,
};
use switchyard_mqtt::{Bridge, BridgeConfig, BridgeStats};

use super::consumer::{Consumer, ConsumerPool, preview};
use super::demo::{self, DemoTraffic};
use super::link::{
    BrokerLink, ConsumerState, DeadLetterRow, LinkEvent, PublishRequest, RECENT_DEAD_LETTERS,
    RecentMessage, SubscribeRequest,
};

/// A broker in this process, with consumers for its subscriptions and optional demo traffic.
pub struct EmbeddedBroker {
    broker: Broker,
    consumers: BTreeMap<SubscriptionId, Consumer>,
    /// The threads that serve every consumer (see [`super::consumer`]); stopped when the link goes.
    pool: Option<ConsumerPool>,
    demo: Option<DemoTraffic>,
    /// Whether the demo's default subscriptions were created (once per run).
    demo_subscribed: bool,
    jobs: Option<Sender<PublishRequest>>,
    publisher: Option<JoinHandle<()>>,
    events: Receiver<LinkEvent>,
    /// `--state`: where durable subscriptions are saved after every subscribe and unsubscribe.
    state_file: Option<PathBuf>,
    /// The broker's dead-letter queue, drained into `dead_letters` on every read.
    dead_letter_queue: Option<DeadLetters>,
    /// The most recent dead letters, oldest first.
    dead_letters: VecDeque<DeadLetterRow>,
    /// `--mqtt --bridge`: the bridge to an existing MQTT broker, closed first when the link goes.
    bridge: Option<Bridge>,
    /// `--mqtt`: the listener serving this broker to MQTT clients, closed next.
    mqtt: Option<MqttListener>,
}

impl EmbeddedBroker {
    /// Serves this broker to MQTT clients on `addr` too (`dashboard --mqtt`) with `config` (the
    /// default limits, and the password and ACL files if given), and bridges it to an existing MQTT
    /// broker when `bridge` is given; its clients and the bridge show in the MQTT clients view.
    /// Returns the bound address.
    pub fn serve_mqtt(
        &mut self,
        addr: SocketAddr,
        config: switchyard_mqtt::MqttConfig,
        bridge: Option<BridgeConfig>,
    ) -> anyhow::Result<SocketAddr> {
        let listener = MqttListener::start(
            vec![switchyard_mqtt::Listener::tcp(addr)],
            &self.broker,
            config,
        )?;
        let bound = listener.local_addr();
        self.bridge = bridge
            .map(|config| listener.start_bridge(&self.broker, config))
            .transpose()?;
        self.mqtt = Some(listener);
        Ok(bound)
    }

    /// A new broker with the default topic syntax, with demo traffic when `demo` is true.
    #[cfg(test)]
    pub fn new(demo: bool) -> anyhow::Result<Self> {
        Self::with_syntax(demo, TopicSyntax::Classic)
    }

    /// A new broker that reads topics under `syntax` (MQTT's when the dashboard serves MQTT), with demo
    /// traffic and its subscriptions when `demo` is true.
    pub fn with_syntax(demo: bool, syntax: TopicSyntax) -> anyhow::Result<Self> {
        let broker = Broker::with_options(
            BrokerOptions::new()
                .dead_letters(DEAD_LETTER_CAPACITY)
                .topic_syntax(syntax),
        );
        let (events_tx, events) = mpsc::channel();
        let (jobs, job_rx) = mpsc::channel::<PublishRequest>();
        let publisher = {
            let broker = broker.clone();
            let events_tx = events_tx.clone();
            thread::Builder::new()
                .name("dashboard-publish".into())
                .spawn(move || publish_jobs(&broker, &job_rx, &events_tx))
                .context("starting the publishing thread")?
        };
        let broker_dead_letters = broker.dead_letters();
        let mut link = Self {
            broker,
            consumers: BTreeMap::new(),
            pool: Some(ConsumerPool::start().context("starting the consumer threads")?),
            demo: None,
            demo_subscribed: false,
            jobs: Some(jobs),
            publisher: Some(publisher),
            events,
            state_file: None,
            dead_letter_queue: broker_dead_letters,
            dead_letters: VecDeque::new(),
            bridge: None,
            mqtt: None,
        };
        if demo {
            link.set_demo(true)?;
        }
        Ok(link)
    }

    /// The broker itself, for what serves it too: the stats endpoint (`--serve`) and MQTT (`--mqtt`).
    pub fn broker(&self) -> &Broker {
        &self.broker
    }

    /// The bridge `serve_mqtt` started, if any, for the stats endpoint to show.
    pub fn bridge(&self) -> Option<&Bridge> {
        self.bridge.as_ref()
    }

    /// The MQTT listener `serve_mqtt` started, if any, for the stats endpoint to show.
    pub fn mqtt_listener(&self) -> Option<&MqttListener> {
        self.mqtt.as_ref()
    }

    /// Subscribes, with a consumer of `receivers` competing receivers that each spend `pace` per
    /// message.
    fn subscribe_paced(
        &mut self,
        request: &SubscribeRequest,
        receivers: usize,
        pace: Duration,
    ) -> anyhow::Result<SubscriptionId> {
        let mut options = SubscriptionOptions::new()
            .capacity(request.capacity)
            .policy(request.policy);
        if let Some(name) = &request.name {
            options = options.name(name.clone());
        }
        options = options
            .durable(request.durable)
            .receive_retained(request.receive_retained);
        let subscription = self.broker.subscribe_with(&request.filter, options)?;
        let id = subscription.id();
        // If the consumer cannot start, the handle is dropped, which unsubscribes.
        let consumer = self.serve(subscription, receivers, pace)?;
        self.consumers.insert(id, consumer);
        Ok(id)
    }

    /// A consumer for `subscription`, served by the pool.
    fn serve(
        &mut self,
        subscription: switchyard::Subscription,
        receivers: usize,
        pace: Duration,
    ) -> anyhow::Result<Consumer> {
        self.pool
            .as_mut()
            .context("the consumer threads have stopped")?
            .serve(subscription, receivers, pace)
            .context("starting a consumer")
    }

    /// `--state PATH`: restores the durable subscriptions saved in `path` (each gets a consumer), then
    /// saves there after every change. A corrupt file is an error naming it, and is left untouched;
    /// with `reset` it is moved aside to `PATH.corrupt-<unix seconds>` and the broker starts empty.
    /// Returns a line for the log.
    pub fn use_state_file(&mut self, path: PathBuf, reset: bool) -> anyhow::Result<String> {
        let mut note = String::new();
        let restored = match self.broker.restore_state(&path) {
            Ok(n) => n,
            Err(e) if e.is_corrupt() && reset => {
                let secs = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                let mut aside = path.clone().into_os_string();
                aside.push(format!(".corrupt-{secs}"));
                let aside = PathBuf::from(aside);
                std::fs::rename(&path, &aside).with_context(|| {
                    format!(
                        "{e}; and it could not be moved aside to {}",
                        aside.display()
                    )
                })?;
                note = format!(" ({e}; moved aside to {})", aside.display());
                0
            }
            Err(e) if e.is_corrupt() => {
                anyhow::bail!(
                    "{e}\nThe file was left as it is. Fix it, or start with --state-reset to move it \
                     aside and start with no durable subscriptions."
                )
            }
            Err(e) => return Err(e.into()),
        };
        for entry in self.broker.durable_state().subscriptions {
            if let Some(sub) = self.broker.attach(&entry.name) {
                let id = sub.id();
                let consumer = self.serve(sub, 1, Duration::ZERO)?;
                self.consumers.insert(id, consumer);
            }
        }
        self.broker.save_state(&path)?;
        let line = format!(
            "state file {}: restored {restored} durable subscriptions{note}",
            path.display()
        );
        self.state_file = Some(path);
        Ok(line)
    }

    /// Saves the durable subscriptions to the `--state` file, if there is one.
    fn save_state(&self) -> anyhow::Result<()> {
        if let Some(path) = &self.state_file {
            self.broker.save_state(path)?;
        }
        Ok(())
    }
}

/// Dead letters the embedded broker keeps between two reads (the view shows the last
/// [`RECENT_DEAD_LETTERS`]; older ones overflow, counted in the snapshot's `dead_letters`).
const DEAD_LETTER_CAPACITY: usize = 4096;

fn publish_jobs(broker: &Broker, jobs: &Receiver<PublishRequest>, events: &Sender<LinkEvent>) {
    for job in jobs {
        let mut queued = 0;
        let mut dropped = 0;
        let mut unrouted = 0;
        let mut failed = None;
        for _ in 0..job.count {
            match broker.publish_with(job.topic.as_str(), job.payload.clone(), job.options) {
                Ok(outcome) => {
                    queued += outcome.queued as u64;
                    dropped += outcome.dropped as u64;
                    unrouted += u64::from(outcome.matched == 0);
                }
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        let event = match failed {
            Some(e) => LinkEvent::Error(format!("publish to {}: {e}", job.topic)),
            None => LinkEvent::Published {
                topic: job.topic.to_string(),
                count: job.count,
                queued,
                dropped,
                unrouted,
            },
        };
        if events.send(event).is_err() {
            return;
        }
    }
}

impl BrokerLink for EmbeddedBroker {
    fn limits(&self) -> TopicLimits {
        self.broker.limits()
    }

    fn snapshot(&mut self) -> StatsSnapshot {
        self.broker.stats()
    }

    fn consumer_states(&self) -> BTreeMap<SubscriptionId, ConsumerState> {
        self.consumers
            .iter()
            .map(|(id, c)| (*id, c.state()))
            .collect()
    }

    fn recent_messages(&self, id: SubscriptionId) -> Vec<RecentMessage> {
        self.consumers
            .get(&id)
            .map(Consumer::recent)
            .unwrap_or_default()
    }

    fn publish(&mut self, request: PublishRequest) -> anyhow::Result<()> {
        self.jobs
            .as_ref()
            .context("the publishing thread has stopped")?
            .send(request)
            .map_err(|_| anyhow::anyhow!("the publishing thread has stopped"))
    }

    fn recent_dead_letters(&mut self) -> Vec<DeadLetterRow> {
        if let Some(queue) = &self.dead_letter_queue {
            while let Some(letter) = queue.try_recv() {
                if self.dead_letters.len() == RECENT_DEAD_LETTERS {
                    self.dead_letters.pop_front();
                }
                self.dead_letters.push_back(DeadLetterRow {
                    subscription: letter.subscription_name().to_string(),
                    reason: letter.reason().label().to_string(),
                    topic: letter.message().topic().to_string(),
                    preview: preview(letter.message().payload()),
                });
            }
        }
        self.dead_letters.iter().cloned().collect()
    }

    fn subscribe(&mut self, request: &SubscribeRequest) -> anyhow::Result<SubscriptionId> {
        let id = self.subscribe_paced(request, 1, Duration::ZERO)?;
        self.save_state()?;
        Ok(id)
    }

    fn unsubscribe(&mut self, id: SubscriptionId) -> anyhow::Result<()> {
        self.broker.unsubscribe(id)?;
        self.save_state()?;
        if let Some(consumer) = self.consumers.remove(&id) {
            consumer.stop();
        }
        Ok(())
    }

    fn set_paused(&mut self, id: SubscriptionId, paused: bool) -> anyhow::Result<()> {
        let consumer = self
            .consumers
            .get(&id)
            .with_context(|| format!("subscription {id} has no consumer of ours"))?;
        consumer.set_paused(paused);
        Ok(())
    }

    fn demo_running(&self) -> bool {
        self.demo.is_some()
    }

    fn set_demo(&mut self, on: bool) -> anyhow::Result<()> {
        if !on {
            self.demo = None; // dropping joins the publisher thread (it wakes every 20 ms)
            return Ok(());
        }
        if self.demo.is_some() {
            return Ok(());
        }
        if !self.demo_subscribed {
            self.demo_subscribed = true;
            for s in demo::default_subscriptions() {
                self.subscribe_paced(&s.request, s.receivers, s.pace)?;
            }
        }
        self.demo = Some(DemoTraffic::start(&self.broker)?);
        Ok(())
    }

    fn take_events(&mut self) -> Vec<LinkEvent> {
        self.events.try_iter().collect()
    }

    fn mqtt(&self) -> Option<switchyard_mqtt::MqttStats> {
        self.mqtt.as_ref().map(MqttListener::stats)
    }

    fn bridges(&self) -> Vec<BridgeStats> {
        self.bridge.iter().map(Bridge::stats).collect()
    }

    fn explain(&mut self, topic: &str) -> anyhow::Result<Vec<Explained>> {
        Ok(self.broker.explain(topic)?)
    }
}

impl Drop for EmbeddedBroker {
    fn drop(&mut self) {
        self.bridge = None;
        self.mqtt = None; // MQTT connections close before the consumers stop
        self.demo = None;
        self.jobs = None; // ends the publishing thread once its queue is empty
        // Close every subscription, then stop the consumer threads (which drop their handles).
        for id in std::mem::take(&mut self.consumers).into_keys() {
            let _ = self.broker.unsubscribe(id);
        }
        self.pool = None;
        if let Some(t) = self.publisher.take() {
            let _ = t.join();
        }
    }
}
