//! Subscribers as tokio tasks: `recv_async` awaits without blocking a worker thread, and is
//! cancel-safe, so it can sit in a `tokio::select!` beside a shutdown signal.
//!
//! Run with `cargo run --example async_tokio -p switchyard`.

use std::time::Duration;

use switchyard::Broker;
use tokio::sync::watch;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let broker = Broker::new();
    let (stop_tx, stop_rx) = watch::channel(false);

    let mut tasks = Vec::new();
    for filter in ["orders/+/created", "orders/#"] {
        let sub = broker.subscribe(filter)?;
        let mut stop = stop_rx.clone();
        tasks.push(tokio::spawn(async move {
            let mut seen = 0u32;
            loop {
                tokio::select! {
                    d = sub.recv_async() => match d {
                        Ok(d) => {
                            seen += 1;
                            println!("[{filter}] {} {}", d.topic(), String::from_utf8_lossy(d.payload()));
                        }
                        Err(_closed) => break,
                    },
                    _ = stop.changed() => break,
                }
            }
            (filter, seen)
        }));
    }

    for i in 0..5 {
        broker.publish(&format!("orders/{i}/created"), format!("order {i}"))?;
        broker.publish(&format!("orders/{i}/paid"), format!("order {i}"))?;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    stop_tx.send(true)?;
    for t in tasks {
        let (filter, seen) = t.await?;
        println!("{filter}: {seen} messages");
    }
    Ok(())
}
