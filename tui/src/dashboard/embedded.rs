//! [`EmbeddedBroker`]: the [`BrokerLink`] for a broker running inside the dashboard's own process.
//!
//! It owns the [`Broker`], one [`Consumer`] per subscription it created, the demo traffic, and a
//! publishing thread. Publishing runs off the UI thread because a subscription with the `block` policy
//! may make a publish wait (up to its timeout, per message); the UI must never wait on the broker.

use std::collections::BTreeMap;
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use anyhow::Context;
use switchyard::{Broker, StatsSnapshot, SubscriptionId, SubscriptionOptions, TopicLimits};

use super::consumer::Consumer;
use super::demo::{self, DemoTraffic};
use super::link::{BrokerLink, ConsumerState, LinkEvent, RecentMessage, SubscribeRequest};

/// One publish request for the publishing thread.
struct PublishJob {
    topic: String,
    payload: String,
    count: u64,
}

/// A broker in this process, with consumers for its subscriptions and optional demo traffic.
pub struct EmbeddedBroker {
    broker: Broker,
    consumers: BTreeMap<SubscriptionId, Consumer>,
    /// Consumers of removed subscriptions, stopping; joined when the link is dropped.
    stopping: Vec<Consumer>,
    demo: Option<DemoTraffic>,
    /// Whether the demo's default subscriptions were created (once per run).
    demo_subscribed: bool,
    jobs: Option<Sender<PublishJob>>,
    publisher: Option<JoinHandle<()>>,
    events: Receiver<LinkEvent>,
}

impl EmbeddedBroker {
    /// A new broker, with demo traffic and its subscriptions when `demo` is true.
    pub fn new(demo: bool) -> anyhow::Result<Self> {
        let broker = Broker::new();
        let (events_tx, events) = mpsc::channel();
        let (jobs, job_rx) = mpsc::channel::<PublishJob>();
        let publisher = {
            let broker = broker.clone();
            let events_tx = events_tx.clone();
            thread::Builder::new()
                .name("dashboard-publish".into())
                .spawn(move || publish_jobs(&broker, &job_rx, &events_tx))
                .context("starting the publishing thread")?
        };
        let mut link = Self {
            broker,
            consumers: BTreeMap::new(),
            stopping: Vec::new(),
            demo: None,
            demo_subscribed: false,
            jobs: Some(jobs),
            publisher: Some(publisher),
            events,
        };
        if demo {
            link.set_demo(true)?;
        }
        Ok(link)
    }

    /// Subscribes and starts `receivers` consumer threads that each spend `pace` per message.
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
        let subscription = self.broker.subscribe_with(&request.filter, options)?;
        let id = subscription.id();
        // If the threads cannot start, the handle is dropped with them, which unsubscribes.
        let consumer =
            Consumer::start(subscription, receivers, pace).context("starting a consumer thread")?;
        self.consumers.insert(id, consumer);
        Ok(id)
    }

    /// Forgets consumers whose threads have all stopped (their subscription ended on its own).
    fn reap(&mut self) {
        self.stopping
            .retain(|c| c.state() != ConsumerState::Stopped);
    }
}

fn publish_jobs(broker: &Broker, jobs: &Receiver<PublishJob>, events: &Sender<LinkEvent>) {
    for job in jobs {
        let mut queued = 0;
        let mut dropped = 0;
        let mut unrouted = 0;
        let mut failed = None;
        for _ in 0..job.count {
            match broker.publish(&job.topic, job.payload.clone()) {
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
                topic: job.topic,
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
        self.reap();
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

    fn publish(&mut self, topic: &str, payload: &str, count: u64) -> anyhow::Result<()> {
        switchyard::topic::validate_topic(topic, &self.broker.limits())?;
        let job = PublishJob {
            topic: topic.to_string(),
            payload: payload.to_string(),
            count,
        };
        self.jobs
            .as_ref()
            .context("the publishing thread has stopped")?
            .send(job)
            .map_err(|_| anyhow::anyhow!("the publishing thread has stopped"))
    }

    fn subscribe(&mut self, request: &SubscribeRequest) -> anyhow::Result<SubscriptionId> {
        self.subscribe_paced(request, 1, Duration::ZERO)
    }

    fn unsubscribe(&mut self, id: SubscriptionId) -> anyhow::Result<()> {
        self.broker.unsubscribe(id)?;
        if let Some(mut consumer) = self.consumers.remove(&id) {
            consumer.stop();
            self.stopping.push(consumer);
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
}

impl Drop for EmbeddedBroker {
    fn drop(&mut self) {
        self.demo = None;
        self.jobs = None; // ends the publishing thread once its queue is empty
        // Close every subscription first so blocked receivers wake at once, then wait for the threads.
        for (id, mut consumer) in std::mem::take(&mut self.consumers) {
            let _ = self.broker.unsubscribe(id);
            consumer.stop();
            self.stopping.push(consumer);
        }
        for consumer in self.stopping.drain(..) {
            consumer.join();
        }
        if let Some(t) = self.publisher.take() {
            let _ = t.join();
        }
    }
}
