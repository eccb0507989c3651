//! Demo traffic, so a newcomer sees the dashboard move from the first second.
//!
//! One background thread publishes on three families of topics at roughly fixed rates:
//! `stocks/<sym>/price` (a random walk, about 120 msg/s in all), `logs/<app>` (about 60 msg/s) and
//! `alerts/<kind>/<name>` (a few per second). [`default_subscriptions`] lists the subscriptions the
//! dashboard creates with it: `+` and `#` filters, competing receivers on one, and one deliberately slow
//! consumer with a small queue so drops are visible at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use switchyard::{Broker, OverflowPolicy, Publisher};

use super::link::SubscribeRequest;

/// How often the publisher thread wakes. Each wake publishes a small batch; 50 wakes a second keeps the
/// traffic smooth on the chart at a negligible CPU cost.
const STEP: Duration = Duration::from_millis(20);

const SYMBOLS: [&str; 8] = [
    "AAPL", "MSFT", "GOOG", "AMZN", "NVDA", "TSLA", "META", "ORCL",
];
const APPS: [&str; 3] = ["api", "billing", "worker"];
const ALERTS: [(&str, &str); 4] = [
    ("security", "login-failed"),
    ("disk", "db-01"),
    ("latency", "checkout"),
    ("security", "port-scan"),
];
const LOG_LINES: [&str; 5] = [
    "GET /orders 200 12ms",
    "POST /checkout 201 48ms",
    "job finished in 1.2s",
    "cache miss for user:42",
    "retrying upstream call",
];

/// A subscription the demo starts with, and how its consumer behaves.
#[derive(Debug, Clone)]
pub struct DemoSubscription {
    /// What to subscribe.
    pub request: SubscribeRequest,
    /// Competing consumer threads.
    pub receivers: usize,
    /// Time a consumer spends on each message.
    pub pace: Duration,
}

/// The subscriptions created with the demo traffic.
pub fn default_subscriptions() -> Vec<DemoSubscription> {
    let sub =
        |name: &str, filter: &str, capacity: usize, policy, receivers, pace_ms| DemoSubscription {
            request: SubscribeRequest {
                filter: filter.to_string(),
                capacity,
                policy,
                name: Some(name.to_string()),
                ..SubscribeRequest::default()
            },
            receivers,
            pace: Duration::from_millis(pace_ms),
        };
    vec![
        sub(
            "prices",
            "stocks/+/price",
            1024,
            OverflowPolicy::DropOldest,
            1,
            0,
        ),
        sub(
            "all-alerts",
            "alerts/#",
            256,
            OverflowPolicy::DropNewest,
            1,
            0,
        ),
        sub(
            "security",
            "alerts/security/+",
            64,
            OverflowPolicy::DropNewest,
            1,
            0,
        ),
        sub(
            "log-workers",
            "logs/+",
            512,
            OverflowPolicy::DropNewest,
            2,
            5,
        ),
        // About 50 msg/s against ~120 msg/s of prices, with a queue of 16: drops from the first second.
        sub(
            "slow-audit",
            "stocks/#",
            16,
            OverflowPolicy::DropNewest,
            1,
            20,
        ),
    ]
}

/// The running demo publisher. Dropping it stops the thread.
#[derive(Debug)]
pub struct DemoTraffic {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl DemoTraffic {
    /// Starts publishing on `broker`.
    pub fn start(broker: &Broker) -> anyhow::Result<Self> {
        let mut publishers = Publishers::new(broker)?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = thread::Builder::new()
            .name("demo-traffic".into())
            .spawn(move || {
                let mut next = Instant::now();
                while !flag.load(Ordering::Relaxed) {
                    publishers.step();
                    next += STEP;
                    let now = Instant::now();
                    if next > now {
                        thread::sleep(next - now);
                    } else {
                        next = now; // fell behind (suspended?): do not burst to catch up
                    }
                }
            })?;
        Ok(Self {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for DemoTraffic {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Publisher handles (cached routes) for every demo topic, and the state of the price random walk.
struct Publishers {
    rng: fastrand::Rng,
    prices: Vec<(Publisher, f64)>,
    logs: Vec<Publisher>,
    alerts: Vec<Publisher>,
}

impl Publishers {
    fn new(broker: &Broker) -> anyhow::Result<Self> {
        let mut rng = fastrand::Rng::with_seed(0x5717c4);
        let prices = SYMBOLS
            .iter()
            .map(|s| {
                Ok((
                    broker.publisher(&format!("stocks/{s}/price"))?,
                    50.0 + rng.f64() * 400.0,
                ))
            })
            .collect::<anyhow::Result<_>>()?;
        let logs = APPS
            .iter()
            .map(|a| Ok(broker.publisher(&format!("logs/{a}"))?))
            .collect::<anyhow::Result<_>>()?;
        let alerts = ALERTS
            .iter()
            .map(|(k, n)| Ok(broker.publisher(&format!("alerts/{k}/{n}"))?))
            .collect::<anyhow::Result<_>>()?;
        Ok(Self {
            rng,
            prices,
            logs,
            alerts,
        })
    }

    /// One step of traffic: each symbol ticks with probability 0.3 (8 × 0.3 × 50 = 120 msg/s), each app
    /// logs with probability 0.4 (60 msg/s), and an alert fires with probability 0.06 (3 msg/s).
    fn step(&mut self) {
        for (publisher, price) in &mut self.prices {
            if self.rng.f64() < 0.3 {
                *price = (*price * (1.0 + (self.rng.f64() - 0.5) * 0.004)).max(1.0);
                publisher.publish(format!("{price:.2}"));
            }
        }
        for publisher in &mut self.logs {
            if self.rng.f64() < 0.4 {
                let line = LOG_LINES[self.rng.usize(..LOG_LINES.len())];
                publisher.publish(line);
            }
        }
        if self.rng.f64() < 0.06 {
            let i = self.rng.usize(..self.alerts.len());
            let level = ["warn", "critical"][self.rng.usize(..2)];
            self.alerts[i].publish(format!("{level}: {}", ALERTS[i].1));
        }
    }
}
