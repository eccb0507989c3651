//! What a pooled consumer pays per message with 100,000 subscriptions and one message in each: the
//! flat-out `100k subs exact` scenario, where every publish lands on a different subscription and every
//! visit starts on cold cache lines. One thread publishes one message to every subscription in a
//! shuffled order, then one thread takes them all, timed alone, three ways interleaved in one run:
//!
//! - `scan`: a pass over every subscription with `drain_into` (a pooled consumer without a ready list);
//! - `ready, list order`: `try_ready` hands out the keys of the subscriptions with messages (their
//!   indexes, given with `SubscriptionOptions::ready_key`), visited in the order handed out, which is
//!   the publish order;
//! - `ready, sorted`: the same keys visited in ascending order, the order the subscriptions were made
//!   in and so, roughly, the order of their memory, which the hardware prefetcher can follow.
//!
//! It also times `try_ready` alone (the list's own cost per entry) and the publish side with and
//! without the signal attached (the same subscriptions on a second broker).
//!
//! `cargo bench -p switchyard --bench ready_list` (`-- N ROUNDS` to change the 100,000 subscriptions
//! and 7 rounds). Prints nanoseconds per message, median [min–max] over the rounds.

use std::time::Instant;

use bytes::Bytes;
use switchyard::{Broker, Message, Publisher, ReadySignal, Subscription, SubscriptionOptions};

/// How the consumer finds the subscriptions with messages.
#[derive(Clone, Copy, Debug)]
enum Way {
    Scan,
    ReadyListOrder,
    ReadySorted,
}

impl Way {
    const ALL: [Way; 3] = [Way::Scan, Way::ReadyListOrder, Way::ReadySorted];

    fn label(self) -> &'static str {
        match self {
            Way::Scan => "take, scan",
            Way::ReadyListOrder => "take, ready, list order",
            Way::ReadySorted => "take, ready, sorted",
        }
    }
}

/// `n` subscriptions on one broker with their publishers, optionally attached to `signal`.
fn subscriptions(
    n: usize,
    signal: Option<&std::sync::Arc<ReadySignal>>,
) -> (Vec<Subscription>, Vec<Publisher>) {
    let broker = Broker::new();
    let subs = (0..n)
        .map(|i| {
            let mut options = SubscriptionOptions::new().capacity(64);
            if let Some(signal) = signal {
                options = options.ready_signal(signal).ready_key(i as u64);
            }
            broker.subscribe_with(&format!("r/{i}"), options).unwrap()
        })
        .collect();
    let publishers = (0..n)
        .map(|i| broker.publisher(&format!("r/{i}")).unwrap())
        .collect();
    (subs, publishers)
}

/// Publishes one message to each publisher in `order`; nanoseconds per message.
fn publish_all(publishers: &mut [Publisher], order: &[usize], payload: &Bytes) -> f64 {
    let started = Instant::now();
    for &i in order {
        publishers[i].publish(payload.clone());
    }
    started.elapsed().as_nanos() as f64 / order.len() as f64
}

fn drain(sub: &Subscription, buf: &mut Vec<Message>) -> usize {
    let n = sub.drain_into(buf, 128).count;
    buf.clear();
    n
}

fn main() {
    let mut args = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .map(|a| a.parse::<usize>().expect("N and ROUNDS are numbers"));
    let n = args.next().unwrap_or(100_000);
    let rounds = args.next().unwrap_or(7);

    let signal = ReadySignal::new();
    let (subs, mut publishers) = subscriptions(n, Some(&signal));
    let (plain_subs, mut plain_publishers) = subscriptions(n, None);
    // A fixed shuffle (xorshift Fisher-Yates), so every round publishes in the same scattered order.
    let mut order: Vec<usize> = (0..n).collect();
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    for i in (1..n).rev() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        order.swap(i, (seed % (i as u64 + 1)) as usize);
    }
    let payload = Bytes::from_static(&[7; 64]);

    let mut take_ns: Vec<Vec<f64>> = vec![Vec::new(); Way::ALL.len()];
    let (mut list_ns, mut publish_ns, mut plain_publish_ns) = (Vec::new(), Vec::new(), Vec::new());
    let (mut keys, mut buf) = (Vec::new(), Vec::<Message>::with_capacity(128));
    for _ in 0..rounds {
        for (w, way) in Way::ALL.into_iter().enumerate() {
            publish_ns.push(publish_all(&mut publishers, &order, &payload));
            let started = Instant::now();
            let taken: usize = match way {
                Way::Scan => subs.iter().map(|s| drain(s, &mut buf)).sum(),
                Way::ReadyListOrder | Way::ReadySorted => {
                    keys.clear();
                    signal.try_ready(&mut keys);
                    list_ns.push(started.elapsed().as_nanos() as f64 / keys.len() as f64);
                    if matches!(way, Way::ReadySorted) {
                        keys.sort_unstable();
                    }
                    keys.iter()
                        .map(|&k| drain(&subs[k as usize], &mut buf))
                        .sum()
                }
            };
            take_ns[w].push(started.elapsed().as_nanos() as f64 / taken as f64);
            assert_eq!(taken, n, "{way:?} took every message");
            // The scan leaves the subscriptions on the ready list: empty it for the next round.
            keys.clear();
            signal.try_ready(&mut keys);
        }
        plain_publish_ns.push(publish_all(&mut plain_publishers, &order, &payload));
        let taken: usize = plain_subs.iter().map(|s| drain(s, &mut buf)).sum();
        assert_eq!(taken, n);
    }

    println!(
        "{n} subscriptions, one message each, {rounds} interleaved rounds: ns per message, median [min–max]"
    );
    for (way, samples) in Way::ALL.into_iter().zip(take_ns) {
        println!("  {:<28} {}", way.label(), summary(samples));
    }
    println!("  {:<28} {}", "  of which try_ready", summary(list_ns));
    println!(
        "  {:<28} {}",
        "publish, signal attached",
        summary(publish_ns)
    );
    println!(
        "  {:<28} {}",
        "publish, no signal",
        summary(plain_publish_ns)
    );
}

fn summary(mut v: Vec<f64>) -> String {
    v.sort_by(f64::total_cmp);
    format!("{:.0} [{:.0}–{:.0}]", v[v.len() / 2], v[0], v[v.len() - 1])
}
