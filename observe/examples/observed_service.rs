//! A small service with the stats endpoint on: order traffic, two fast workers and a slow audit
//! consumer that falls behind and drops.
//!
//! ```text
//! cargo run --release -p switchyard-observe --example observed_service
//! cargo run --release -p switchyard-observe --example observed_service -- 127.0.0.1:9475 --token-file /tmp/sy.token --for 60s
//! ```
//!
//! Then, from a second terminal:
//!
//! ```text
//! switchyard stats --attach 127.0.0.1:9475 --sort dropped --interval 1s
//! switchyard dashboard --attach 127.0.0.1:9475 --token-file /tmp/sy.token
//! curl -s 127.0.0.1:9475/metrics
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use switchyard::{Broker, OverflowPolicy, SubscriptionOptions};
use switchyard_observe::{DEFAULT_ADDR, ServeOptions, serve};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut addr = DEFAULT_ADDR;
    let mut token_file = None;
    let mut run_for = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--token-file" => token_file = Some(args.next().ok_or("--token-file needs a path")?),
            "--for" => {
                let text = args.next().ok_or("--for needs a duration such as 30s")?;
                run_for = Some(humantime::parse_duration(&text)?);
            }
            other => addr = other.parse().map_err(|e| format!("`{other}`: {e}"))?,
        }
    }

    let broker = Broker::new();
    let mut options = ServeOptions::default().addr(addr);
    if let Some(path) = &token_file {
        let (with_token, created) = options.token_file(path)?;
        options = with_token;
        let what = if created { "created" } else { "read" };
        println!("commands on: token {what} in {path}");
    }
    // The endpoint runs on its own thread until `endpoint` is dropped.
    let endpoint = serve(&broker, options)?;
    println!(
        "stats endpoint on http://{0}\n  switchyard stats --attach {0} --sort dropped --interval 1s\n  \
         switchyard dashboard --attach {0}",
        endpoint.local_addr()
    );

    let stop = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    // Two workers share the order queue (a work queue); the audit log gets every order, slowly.
    let workers = broker.subscribe_with(
        "orders/#",
        SubscriptionOptions::new()
            .name("order-workers")
            .capacity(1024),
    )?;
    for _ in 0..2 {
        let (rx, stop) = (workers.clone(), stop.clone());
        threads.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let _ = rx.recv_timeout(Duration::from_millis(50));
            }
        }));
    }
    let audit = broker.subscribe_with(
        "orders/+/created",
        SubscriptionOptions::new()
            .name("audit-log")
            .capacity(64)
            .policy(OverflowPolicy::DropOldest),
    )?;
    {
        let stop = stop.clone();
        threads.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if audit.recv_timeout(Duration::from_millis(50)).is_ok() {
                    std::thread::sleep(Duration::from_millis(2)); // slower than the orders arrive
                }
            }
        }));
    }
    // Nobody reads the alerts: the queue fills, then drops.
    let _alerts =
        broker.subscribe_with("alerts/#", SubscriptionOptions::new().name("alerts-unread"))?;

    let started = Instant::now();
    let regions = ["eu", "us", "apac"];
    let mut n = 0u64;
    while run_for.is_none_or(|d| started.elapsed() < d) {
        let region = regions[(n % 3) as usize];
        broker.publish(&format!("orders/{region}/created"), format!("order {n}"))?;
        if n % 50 == 0 {
            broker.publish("alerts/latency", format!("p99 high at order {n}"))?;
        }
        n += 1;
        std::thread::sleep(Duration::from_micros(1000));
    }
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        let _ = t.join();
    }
    let stats = broker.stats();
    println!(
        "published {}, delivered {}, dropped {}",
        stats.totals.published, stats.totals.delivered, stats.totals.dropped
    );
    drop(endpoint);
    Ok(())
}
