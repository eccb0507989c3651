//! `switchyard load --mqtt HOST:PORT`: drives any MQTT 3.1.1 broker (a `switchyard serve`, a
//! Mosquitto) with real MQTT clients, so two brokers are measured by the same clients in one run.
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
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde::Serialize;
use switchyard::{Bytes, LatencySummary};
use tokio::sync::watch;

use super::LoadArgs;
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
    let (host, port) = broker
        .rsplit_once(':')
        .and_then(|(h, p)| Some((h.to_string(), p.parse::<u16>().ok()?)))
        .with_context(|| format!("--mqtt {broker}: expected HOST:PORT"))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the MQTT load runtime")?;
    let report = runtime.block_on(drive(args, broker, host, port))?;
    let line = format!(
        "mqtt load: {} qos {} {}->{}: published {}, received {} of {} (lost {}), {:.0} deliveries/s, p50 {} us, p99 {} us",
        report.broker,
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

fn options(id: String, host: &str, port: u16) -> MqttOptions {
    let mut options = MqttOptions::new(id, host, port);
    options.set_keep_alive(Duration::from_secs(30));
    options.set_max_packet_size(1 << 24, 1 << 24);
    options
}

async fn drive(args: &LoadArgs, broker: &str, host: String, port: u16) -> Result<MqttLoadReport> {
    let qos = if args.qos == 0 {
        QoS::AtMostOnce
    } else {
        QoS::AtLeastOnce
    };
    let start = Instant::now();
    let (stop_tx, stop) = watch::channel(false);
    let received = Arc::new(AtomicU64::new(0));
    let last_receive_ns = Arc::new(AtomicU64::new(0));
    let subscribed = Arc::new(AtomicU64::new(0));
    let run_id = std::process::id();

    let mut subscribers = Vec::new();
    for i in 0..args.subscribers {
        let (client, mut events) =
            AsyncClient::new(options(format!("sy-load-{run_id}-s{i}"), &host, port), 1024);
        client.subscribe(TOPIC, qos).await?;
        let (received, last, subscribed, mut stop) = (
            received.clone(),
            last_receive_ns.clone(),
            subscribed.clone(),
            stop.clone(),
        );
        subscribers.push(tokio::spawn(async move {
            let mut recorder = LatencyRecorder::new(start);
            loop {
                let event = tokio::select! {
                    _ = stop.changed() => break,
                    event = events.poll() => event,
                };
                match event {
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        subscribed.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        recorder.observe(&p.payload);
                        received.fetch_add(1, Ordering::Relaxed);
                        last.fetch_max(start.elapsed().as_nanos() as u64, Ordering::Relaxed);
                    }
                    Ok(_) => {}
                    Err(_) => break, // the broker went away: what did not arrive is counted lost
                }
            }
            let _ = client.try_disconnect();
            recorder.into_histogram()
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while subscribed.load(Ordering::Relaxed) < u64::from(args.subscribers) {
        anyhow::ensure!(
            Instant::now() < deadline,
            "--mqtt {broker}: only {} of {} subscribers got a SUBACK within 10 s",
            subscribed.load(Ordering::Relaxed),
            args.subscribers
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let template = vec![0u8; args.payload as usize];
    let shared_payload = Bytes::from(template.clone());
    let published = Arc::new(AtomicU64::new(0));
    let publish_start_ns = start.elapsed().as_nanos() as u64;
    let publish_deadline = Instant::now() + args.duration;
    let mut publishers = Vec::new();
    for p in 0..args.publishers {
        let (client, mut events) =
            AsyncClient::new(options(format!("sy-load-{run_id}-p{p}"), &host, port), 1024);
        let mut stop_poll = stop.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stop_poll.changed() => break,
                    event = events.poll() => if event.is_err() { break },
                }
            }
        });
        let share = args.messages.map(|total| {
            total / u64::from(args.publishers)
                + u64::from(u64::from(p) < total % u64::from(args.publishers))
        });
        let every = u64::from(args.latency_every);
        let (template, shared_payload, published) =
            (template.clone(), shared_payload.clone(), published.clone());
        // --rate is shared evenly; each publisher keeps to its share by the clock, 1 ms at a time.
        let per_publisher_rate = args.rate as f64 / f64::from(args.publishers);
        publishers.push(tokio::spawn(async move {
            let mut n = 0u64;
            let began = Instant::now();
            loop {
                let done = match share {
                    Some(share) => n >= share,
                    None => Instant::now() >= publish_deadline,
                };
                if done {
                    break;
                }
                if per_publisher_rate > 0.0
                    && n as f64 >= began.elapsed().as_secs_f64() * per_publisher_rate
                {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    continue;
                }
                let payload = if every > 0 && n % every == 0 {
                    stamped_payload(&template, start)
                } else {
                    shared_payload.clone()
                };
                if client
                    .publish_bytes(TOPIC, qos, false, payload)
                    .await
                    .is_err()
                {
                    break;
                }
                published.fetch_add(1, Ordering::Relaxed);
                n += 1;
            }
            client
        }));
    }
    let mut publisher_clients = Vec::new();
    for publisher in publishers {
        publisher_clients.push(publisher.await?);
    }
    let published = published.load(Ordering::Relaxed);
    let expected = published * u64::from(args.subscribers);

    // Wait for the deliveries: all of them, or until nothing arrived for QUIET_END.
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
    let _ = stop_tx.send(true);
    for client in publisher_clients {
        let _ = client.try_disconnect();
    }
    let mut histograms = Vec::new();
    for subscriber in subscribers {
        histograms.push(subscriber.await?);
    }
    let received = received.load(Ordering::Relaxed);
    let elapsed_ns = last_receive_ns
        .load(Ordering::Relaxed)
        .saturating_sub(publish_start_ns)
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
        published,
        expected,
        received,
        lost: expected.saturating_sub(received),
        elapsed_s,
        delivered_per_s: received as f64 / elapsed_s,
        latency_us: summarize(histograms),
    })
}
