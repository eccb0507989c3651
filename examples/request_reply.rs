//! A supervisor and its specialised workers, as in an actor system: the supervisor hands each task to
//! the worker pool for its kind (`tasks/resize`, `tasks/ocr`) with `request`, and collects the results.
//! Workers reply through the message they received. A task nobody can do fails at once (`unrouted`);
//! a worker that is too slow makes the request time out, and its late answer is counted, not delivered.
//!
//! Run with `cargo run --example request_reply -p switchyard`.

use std::thread;
use std::time::Duration;

use switchyard::{Broker, RequestError};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let broker = Broker::new();

    // Two resize workers compete on one subscription; one OCR worker, slow on big pages.
    let resize = broker.subscribe("tasks/resize")?;
    let mut workers = Vec::new();
    for n in 1..=2 {
        let inbox = resize.clone();
        workers.push(thread::spawn(move || {
            while let Ok(task) = inbox.recv() {
                let image = String::from_utf8_lossy(task.payload()).into_owned();
                let _ = task.reply(format!("{image} resized by worker {n}"));
            }
        }));
    }
    let ocr = broker.subscribe("tasks/ocr")?;
    workers.push(thread::spawn(move || {
        while let Ok(task) = ocr.recv() {
            let page = String::from_utf8_lossy(task.payload()).into_owned();
            if page.contains("huge") {
                thread::sleep(Duration::from_millis(200)); // longer than the supervisor waits
            }
            if let Err(e) = task.reply(format!("text of {page}")) {
                println!("  ocr worker: {e}");
            }
        }
    }));

    let tasks = [
        ("tasks/resize", "cat.png"),
        ("tasks/ocr", "letter.pdf"),
        ("tasks/resize", "dog.png"),
        ("tasks/translate", "poem.txt"),
        ("tasks/ocr", "huge-atlas.pdf"),
    ];
    for (kind, input) in tasks {
        match broker.request(kind, input, Duration::from_millis(100)) {
            Ok(result) => println!(
                "{kind:<16} {input:<16} -> {}",
                String::from_utf8_lossy(result.payload())
            ),
            Err(RequestError::Unrouted { .. }) => {
                println!("{kind:<16} {input:<16} -> no worker for this kind")
            }
            Err(e) => println!("{kind:<16} {input:<16} -> {e}"),
        }
    }

    thread::sleep(Duration::from_millis(250)); // let the slow OCR worker finish its late reply
    let stats = broker.stats();
    let r = stats.requests;
    println!(
        "requests: {} sent, {} replied, {} timed out, {} late replies; {} unrouted",
        r.sent, r.replied, r.timed_out, r.late_replies, stats.totals.unrouted
    );
    // Unsubscribing closes a subscription for every receiver: the workers' `recv` returns `Closed`.
    broker.unsubscribe(resize.id())?;
    for s in stats
        .subscriptions
        .iter()
        .filter(|s| s.filter == "tasks/ocr")
    {
        broker.unsubscribe(s.id)?;
    }
    for w in workers {
        w.join().expect("a worker panicked");
    }
    Ok(())
}
