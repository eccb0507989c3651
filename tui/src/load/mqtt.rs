//! `switchyard load --mqtt HOST:PORT`: drives any MQTT 3.1.1 broker (a `switchyard serve`, a
//! Mosquitto) with real MQTT clients, so two brokers are measured by the same clients in one run;
//! over TLS with `--mqtt-cafile PEM`.
//!
//! `--publishers` clients publish on the topic `load/mqtt`, `--subscribers` clients subscribe to it,
//! at `--qos` 0 or 1, flat out or at `--rate` messages per second over all publishers, all in this
//! process on a small tokio runtime (`rumqttc` clients). Every `--latency-every`th message carries a timestamp (see [`super::latency`]), read back by the
//! subscribers. The run publishes `--messages` in total (or for `--duration`), then waits until every
//! subscriber has every message or nothing arrived for two seconds; what never arrived is reported as
//! `lost` (at QoS 0 a broker may drop; the broker's own stats say why).
//!
//! Throughput is deliveries per second: messages received by all subscribers, over the time from the
//! first publish to the last delivery.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use hdrhistogram::Histogram;
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, QoS, Transport};
use serde::Serialize;
use switchyard::{Bytes, LatencySummary};
use switchyard_mqtt::TlsClientFiles;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::args::LoadArgs;
use super::latency::{LatencyRecorder, stamped_payload, summarize};
use crate::export::write_json_atomic;

/// The topic every publisher publishes on and every subscriber subscribes to.
const TOPIC: &str = "load/mqtt";
/// How long the run waits for deliveries after the last publish while nothing arrives.
const QUIET_END: Duration = Duration::from_secs(2);

/// The result of one MQTT load run (`--json`), schema `switchyard.mqtt-load/v1`.
#[derive(Debug, Serialize)]
struct MqttLoadReport {
    schema: &'static str,
    broker: String,
    qos: u8,
    /// Messages per second asked for over all publishers; 0 = as fast as possible.
    rate: u64,
    publishers: u32,
    subscribers: u32,
    payload: u64,
    published: u64,
    expected: u64,
    received: u64,
    lost: u64,
    elapsed_s: f64,
    delivered_per_s: f64,
    latency_us: Option<LatencySummary>,
}

/// Runs the MQTT load against `broker` (`HOST:PORT`).
pub fn run(args: &LoadArgs, broker: &str) -> Result<ExitCode> {
    // Checked when the command line was parsed; resolved again here, to the address every client
    // connects to.
    let addr = crate::cli_args::parse_socket_addr(broker)
        .map_err(|e| anyhow::anyhow!("--mqtt {broker}: {e}"))?;
    let (host, port) = (addr.ip().to_string(), addr.port());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the MQTT load runtime")?;
    let report = runtime.block_on(drive(args, broker, host, port))?;
    let line = format!(
        "mqtt load: {} qos {} {}->{}: published {}, received {} of {} (lost {}), {:.0} deliveries/s, p50 {} us, p99 {} us",
        crate::terminal_text::escape_controls(&report.broker),
        report.qos,
        report.publishers,
        report.subscribers,
        report.published,
        report.received,
        report.expected,
        report.lost,
        report.delivered_per_s,
        report
            .latency_us
            .map_or("-".into(), |l| format!("{:.0}", l.p50)),
        report
            .latency_us
            .map_or("-".into(), |l| format!("{:.0}", l.p99)),
    );
    match args.json.as_deref() {
        Some(path) => {
            // With `--json -` the JSON owns stdout and the summary moves to stderr.
            if path.as_os_str() == "-" {
                eprintln!("{line}");
            } else {
                println!("{line}");
            }
            write_json_atomic(path, &report)?;
        }
        None => println!("{line}"),
    }
    Ok(ExitCode::SUCCESS)
}

fn options(
    id: String,
    host: &str,
    port: u16,
    login: Option<(&str, &str)>,
    tls: Option<&Transport>,
) -> MqttOptions {
    let mut options = MqttOptions::new(id, host, port);
    if let Some((user, password)) = login {
        options.set_credentials(user, password);
    }
    options.set_keep_alive(Duration::from_secs(30));
    options.set_max_packet_size(1 << 24, 1 << 24);
    if let Some(tls) = tls {
        options.set_transport(tls.clone());
    }
    options
}

/// The settings every client of a run shares.
struct Clients<'a> {
    host: &'a str,
    port: u16,
    /// This process's id, so two runs against one broker use distinct client ids.
    run_id: u32,
    /// With `--mqtt-cafile`: TLS, its settings read once and shared by every client.
    tls: Option<Transport>,
    qos: QoS,
    /// The clock the latency stamps are read against.
    start: Instant,
    /// `--mqtt-user` and `--mqtt-password`.
    login: Option<(&'a str, &'a str)>,
}

impl Clients<'_> {
    /// A client named `sy-load-<run>-<role>` and its event loop.
    fn connect(&self, role: &str) -> (AsyncClient, EventLoop) {
        let id = format!("sy-load-{}-{role}", self.run_id);
        AsyncClient::new(
            options(id, self.host, self.port, self.login, self.tls.as_ref()),
            1024,
        )
    }
}

/// What the subscribers count, shared with their tasks.
#[derive(Default)]
struct Tally {
    /// Messages received by all subscribers.
    received: AtomicU64,
    /// When the last message arrived, in nanoseconds since the run started.
    last_receive_ns: AtomicU64,
    /// Subscribers whose SUBACK arrived.
    subscribed: AtomicU64,
    /// The first error a subscriber's connection ended with (the broker refused or went away).
    error: std::sync::Mutex<Option<String>>,
}

impl Tally {
    fn note_error(&self, error: &rumqttc::ConnectionError) {
        let mut first = self.error.lock().unwrap_or_else(|e| e.into_inner());
        first.get_or_insert_with(|| error.to_string());
    }

    fn error(&self) -> Option<String> {
        self.error.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

async fn drive(args: &LoadArgs, broker: &str, host: String, port: u16) -> Result<MqttLoadReport> {
    let clients = Clients {
        host: &host,
        port,
        run_id: std::process::id(),
        tls: args
            .mqtt_cafile
            .as_ref()
            .map(|ca| {
                TlsClientFiles {
                    ca: Some(ca.clone()),
                    cert_and_key: None,
                }
                .transport()
            })
            .transpose()
            .context("--mqtt-cafile")?,
        qos: if args.qos == 0 {
            QoS::AtMostOnce
        } else {
            QoS::AtLeastOnce
        },
        start: Instant::now(),
        login: args.mqtt_user.as_deref().zip(args.mqtt_password.as_deref()),
    };
    let (stop_tx, stop) = watch::channel(false);
    let tally = Arc::new(Tally::default());
    let subscribers = start_subscribers(&clients, args.subscribers, &tally, &stop).await?;
    wait_for_subacks(broker, &tally, args.subscribers).await?;
    let publishing = publish_all(&clients, args, &stop).await?;
    let expected = publishing.published * u64::from(args.subscribers);
    wait_for_deliveries(&tally.received, expected).await;
    let _ = stop_tx.send(true);
    for client in publishing.clients {
        let _ = client.try_disconnect();
    }
    let mut histograms = Vec::new();
    for subscriber in subscribers {
        histograms.push(subscriber.await?);
    }
    let received = tally.received.load(Ordering::Relaxed);
    let elapsed_ns = tally
        .last_receive_ns
        .load(Ordering::Relaxed)
        .saturating_sub(publishing.start_ns)
        .max(1);
    let elapsed_s = elapsed_ns as f64 / 1e9;
    Ok(MqttLoadReport {
        schema: "switchyard.mqtt-load/v1",
        broker: broker.to_string(),
        qos: args.qos,
        rate: args.rate,
        publishers: args.publishers,
        subscribers: args.subscribers,
        payload: args.payload,
        published: publishing.published,
        expected,
        received,
        lost: expected.saturating_sub(received),
        elapsed_s,
        delivered_per_s: received as f64 / elapsed_s,
        latency_us: summarize(histograms),
    })
}

/// Connects and subscribes `count` subscribers; each task counts what arrives until told to stop (or
/// the broker goes away) and returns its latency histogram.
async fn start_subscribers(
    clients: &Clients<'_>,
    count: u32,
    tally: &Arc<Tally>,
    stop: &watch::Receiver<bool>,
) -> Result<Vec<JoinHandle<Histogram<u64>>>> {
    let mut subscribers = Vec::new();
    for i in 0..count {
        let (client, events) = clients.connect(&format!("s{i}"));
        client.subscribe(TOPIC, clients.qos).await?;
        let (tally, stop, start) = (tally.clone(), stop.clone(), clients.start);
        subscribers.push(tokio::spawn(subscribe_loop(
            client, events, tally, stop, start,
        )));
    }
    Ok(subscribers)
}

/// One subscriber: counts SUBACKs and messages, records latencies.
async fn subscribe_loop(
    client: AsyncClient,
    mut events: EventLoop,
    tally: Arc<Tally>,
    mut stop: watch::Receiver<bool>,
    start: Instant,
) -> Histogram<u64> {
    let mut recorder = LatencyRecorder::new(start);
    loop {
        let event = tokio::select! {
            _ = stop.changed() => break,
            event = events.poll() => event,
        };
        match event {
            Ok(Event::Incoming(Packet::SubAck(_))) => {
                tally.subscribed.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                recorder.observe(&p.payload);
                tally.received.fetch_add(1, Ordering::Relaxed);
                tally
                    .last_receive_ns
                    .fetch_max(start.elapsed().as_nanos() as u64, Ordering::Relaxed);
            }
            Ok(_) => {}
            // Refused or gone: what did not arrive is counted lost; before the SUBACKs, the run
            // stops with this error.
            Err(e) => {
                tally.note_error(&e);
                break;
            }
        }
    }
    let _ = client.try_disconnect();
    recorder.into_histogram()
}

/// Waits up to 10 s for every subscriber's SUBACK; a subscriber that could not connect ends the wait
/// at once with its reason.
async fn wait_for_subacks(broker: &str, tally: &Tally, subscribers: u32) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while tally.subscribed.load(Ordering::Relaxed) < u64::from(subscribers) {
        if let Some(error) = tally.error() {
            anyhow::bail!("--mqtt {broker}: cannot connect: {error}");
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "--mqtt {broker}: only {} of {} subscribers got a SUBACK within 10 s",
            tally.subscribed.load(Ordering::Relaxed),
            subscribers
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

/// What the publishers did.
struct Publishing {
    /// Their clients, still connected (so QoS 1 acknowledgements keep flowing until the end).
    clients: Vec<AsyncClient>,
    /// Messages published by all of them.
    published: u64,
    /// When publishing began, in nanoseconds since the run started.
    start_ns: u64,
}

/// Runs the publishers to the end of their share (or of `--duration`).
async fn publish_all(
    clients: &Clients<'_>,
    args: &LoadArgs,
    stop: &watch::Receiver<bool>,
) -> Result<Publishing> {
    let template = vec![0u8; args.payload as usize];
    let shared_payload = Bytes::from(template.clone());
    let published = Arc::new(AtomicU64::new(0));
    let start_ns = clients.start.elapsed().as_nanos() as u64;
    let publish_deadline = Instant::now() + args.duration;
    let mut publishers = Vec::new();
    for p in 0..args.publishers {
        let (client, events) = clients.connect(&format!("p{p}"));
        tokio::spawn(poll_until_stopped(events, stop.clone()));
        let job = PublisherJob {
            share: args.messages.map(|total| {
                total / u64::from(args.publishers)
                    + u64::from(u64::from(p) < total % u64::from(args.publishers))
            }),
            every: u64::from(args.latency_every),
            // --rate is shared evenly; each publisher keeps to its share by the clock, 1 ms at a time.
            per_publisher_rate: args.rate as f64 / f64::from(args.publishers),
            deadline: publish_deadline,
            template: template.clone(),
            shared_payload: shared_payload.clone(),
            published: published.clone(),
            qos: clients.qos,
            start: clients.start,
        };
        publishers.push(tokio::spawn(job.run(client)));
    }
    let mut publisher_clients = Vec::new();
    for publisher in publishers {
        publisher_clients.push(publisher.await?);
    }
    Ok(Publishing {
        clients: publisher_clients,
        published: published.load(Ordering::Relaxed),
        start_ns,
    })
}

/// Drives a publisher's event loop (acknowledgements, pings) until the run stops.
async fn poll_until_stopped(mut events: EventLoop, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            event = events.poll() => if event.is_err() { break },
        }
    }
}

/// What one publisher publishes, and how fast.
struct PublisherJob {
    /// Its share of `--messages`, or `None` to publish until `deadline`.
    share: Option<u64>,
    /// Every Nth message carries a timestamp (0: none).
    every: u64,
    /// Messages per second, 0 = flat out.
    per_publisher_rate: f64,
    deadline: Instant,
    /// The payload a timestamp is written into.
    template: Vec<u8>,
    /// The payload of unstamped messages.
    shared_payload: Bytes,
    /// Messages published by all publishers.
    published: Arc<AtomicU64>,
    qos: QoS,
    start: Instant,
}

impl PublisherJob {
    /// Publishes until its share is done, the deadline passes or the broker goes away; returns the
    /// client, still connected.
    async fn run(self, client: AsyncClient) -> AsyncClient {
        let mut n = 0u64;
        let began = Instant::now();
        loop {
            let done = match self.share {
                Some(share) => n >= share,
                None => Instant::now() >= self.deadline,
            };
            if done {
                break;
            }
            if self.per_publisher_rate > 0.0
                && n as f64 >= began.elapsed().as_secs_f64() * self.per_publisher_rate
            {
                tokio::time::sleep(Duration::from_millis(1)).await;
                continue;
            }
            let payload = if self.every > 0 && n % self.every == 0 {
                stamped_payload(&self.template, self.start)
            } else {
                self.shared_payload.clone()
            };
            if client
                .publish_bytes(TOPIC, self.qos, false, payload)
                .await
                .is_err()
            {
                break;
            }
            self.published.fetch_add(1, Ordering::Relaxed);
            n += 1;
        }
        client
    }
}

/// Waits for the deliveries: all of them, or until nothing arrived for [`QUIET_END`].
async fn wait_for_deliveries(received: &AtomicU64, expected: u64) {
    let mut last_seen = (received.load(Ordering::Relaxed), Instant::now());
    loop {
        let now_received = received.load(Ordering::Relaxed);
        if now_received >= expected {
            break;
        }
        if now_received != last_seen.0 {
            last_seen = (now_received, Instant::now());
        } else if last_seen.1.elapsed() > QUIET_END {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
