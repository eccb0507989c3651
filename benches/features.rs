//! The cost of each classic feature against the plain path, measured in the same run:
//! plain publish -> try_recv, publish_with(priority) (Normal and High), a retained publish, a
//! publish -> try_recv -> done on a joinable subscription, and a request/reply round trip.
//!
//! `cargo bench --bench features` (add `-- --quick` on a shared machine).

use std::hint::black_box;
use std::thread;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use switchyard::{Broker, Priority, PublishOptions, SubscriptionOptions};

fn features(c: &mut Criterion) {
    let mut group = c.benchmark_group("features");
    let payload = bytes::Bytes::from_static(b"0123456789abcdef");

    let broker = Broker::new();
    let sub = broker.subscribe("bench/topic").unwrap();
    group.bench_function("plain publish -> try_recv", |b| {
        b.iter(|| {
            broker.publish("bench/topic", payload.clone()).unwrap();
            black_box(sub.try_recv().unwrap());
        })
    });
    for priority in [Priority::Normal, Priority::High] {
        let options = PublishOptions::new().priority(priority);
        group.bench_function(format!("publish_with({priority}) -> try_recv"), |b| {
            b.iter(|| {
                broker
                    .publish_with("bench/topic", payload.clone(), options)
                    .unwrap();
                black_box(sub.try_recv().unwrap());
            })
        });
    }
    let retain = PublishOptions::new().retain(true);
    group.bench_function("retained publish -> try_recv", |b| {
        b.iter(|| {
            broker
                .publish_with("bench/topic", payload.clone(), retain)
                .unwrap();
            black_box(sub.try_recv().unwrap());
        })
    });
    drop(sub);

    let joinable = broker
        .subscribe_with("bench/jobs", SubscriptionOptions::new().joinable(true))
        .unwrap();
    group.bench_function("joinable publish -> try_recv -> done", |b| {
        b.iter(|| {
            broker.publish("bench/jobs", payload.clone()).unwrap();
            black_box(joinable.try_recv().unwrap());
            joinable.done().unwrap();
        })
    });

    let responder_sub = broker.subscribe("bench/rpc").unwrap();
    let responder = thread::spawn(move || {
        while let Ok(req) = responder_sub.recv() {
            let _ = req.reply(req.payload().clone());
        }
    });
    group.bench_function("request/reply round trip (other thread)", |b| {
        b.iter(|| {
            black_box(
                broker
                    .request("bench/rpc", payload.clone(), Duration::from_secs(5))
                    .unwrap(),
            );
        })
    });
    group.finish();
    let id = broker
        .stats()
        .subscriptions
        .iter()
        .find(|s| s.filter == "bench/rpc")
        .map(|s| s.id);
    if let Some(id) = id {
        broker.unsubscribe(id).unwrap();
    }
    responder.join().unwrap();
}

criterion_group!(benches, features);
criterion_main!(benches);
