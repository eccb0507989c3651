//! The yardstick server of `support/idle_floor.rs` on an address of your choice, for
//! `scripts/mqtt-bench.py idle`, which measures its resident memory per idle connection beside
//! `switchyard serve --mqtt` and Mosquitto:
//!
//! ```text
//! cargo run --release -p switchyard-mqtt --example idle_floor -- 127.0.0.1:1884
//! ```

#[path = "support/idle_floor.rs"]
mod idle_floor;

use switchyard::{Broker, BrokerOptions, TopicSyntax};

fn main() {
    let Some(addr) = std::env::args().nth(1) else {
        eprintln!("usage: idle_floor ADDRESS (for instance 127.0.0.1:1884)");
        std::process::exit(2);
    };
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    let served = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(&addr).await?;
        let broker = Broker::with_options(BrokerOptions::new().topic_syntax(TopicSyntax::Mqtt));
        idle_floor::serve(listener, broker).await
    });
    if let Err(e) = served {
        eprintln!("idle_floor: cannot serve on {addr}: {e}");
        std::process::exit(1);
    }
}
