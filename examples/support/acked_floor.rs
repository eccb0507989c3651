//! The acknowledged path's design written by hand, with nothing else: the floor that
//! `examples/acked_path_cpu.rs` times beside the library, so the gap between them is what the
//! library's features cost on the path, not the design.
//!
//! The same design as `src/features/ack/in_flight.rs`: a bounded `ArrayQueue` of reference-counted
//! messages in front of a window of places, each behind its own mutex and numbered by attempt, the free
//! places a queue of indices; a delivery holds the floor's `Arc` and is settled by place and attempt.
//! A publisher reuses its recent messages when nothing else holds them, as a `Publisher` does. What it
//! leaves out is everything a subscription also does: topics and routes, priorities, overflow
//! policies, byte bounds, drops and gaps, deadlines and redelivery, wake-ups, closing and the books
//! beyond `matched` and `delivered`.
//!
//! For competing receivers (`benches/acked.rs`, `examples/acked_competing_cpu.rs`) it waits in the
//! simplest way that is correct and not wasteful ([`take_competing`]): a receiver that finds nothing
//! spins and yields as crossbeam-channel's do, then parks on a condition variable ([`Parking`]) that
//! a publish signals when a receiver is parked; a publisher that finds the queue full yields and
//! tries again ([`Floor::publish_blocking`]).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering, fence};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use crossbeam_queue::ArrayQueue;
use crossbeam_utils::Backoff;
use switchyard::Bytes;

/// A message: a short topic inline, the payload and a word of facts, as a `Message` holds them.
pub struct FloorMessage {
    /// Carried, not read: it makes the allocation a message's size.
    #[allow(dead_code)]
    topic: [u8; 48],
    pub payload: Bytes,
    pub facts: u64,
}

/// A publisher's recent messages, each reused when nothing else holds it: a ring that grows by a slot
/// while its oldest is still held, as a `Publisher`'s does (`src/message/recycle.rs`).
#[derive(Default)]
pub struct FloorPublisher {
    ring: Vec<Arc<FloorMessage>>,
    next: usize,
}

impl FloorPublisher {
    fn make(&mut self, payload: &Bytes) -> Arc<FloorMessage> {
        if let Some(oldest) = self.ring.get_mut(self.next) {
            if let Some(m) = Arc::get_mut(oldest) {
                m.payload = payload.clone();
                m.facts = 1;
                let reused = oldest.clone();
                self.next = (self.next + 1) % self.ring.len();
                return reused;
            }
        }
        let fresh = Arc::new(FloorMessage {
            topic: [b't'; 48],
            payload: payload.clone(),
            facts: 1,
        });
        if self.ring.len() < 1024 {
            // Just before the oldest, which is tried again next time.
            self.ring.insert(self.next, fresh.clone());
            self.next = (self.next + 1) % self.ring.len();
        }
        fresh
    }
}

struct Place {
    attempt: u64,
    message: Option<Arc<FloorMessage>>,
    deadline: u64,
}

/// One queue and its window.
pub struct Floor {
    queue: ArrayQueue<Arc<FloorMessage>>,
    free: ArrayQueue<u32>,
    places: Box<[Mutex<Place>]>,
    matched: AtomicU64,
    delivered: AtomicU64,
}

/// A message in flight.
pub struct FloorDelivery {
    floor: Arc<Floor>,
    place: u32,
    attempt: u64,
    pub message: Arc<FloorMessage>,
}

/// What settles a delivery later.
#[derive(Clone, Copy)]
pub struct FloorToken {
    place: u32,
    attempt: u64,
}

impl Floor {
    pub fn new(capacity: usize, window: u32) -> Arc<Self> {
        let free = ArrayQueue::new(window as usize);
        for place in 0..window {
            let _ = free.push(place);
        }
        Arc::new(Self {
            queue: ArrayQueue::new(capacity),
            free,
            places: (0..window)
                .map(|_| {
                    Mutex::new(Place {
                        attempt: 0,
                        message: None,
                        deadline: 0,
                    })
                })
                .collect(),
            matched: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
        })
    }

    /// Queues a message; `false` when the queue is full.
    pub fn publish(&self, publisher: &mut FloorPublisher, payload: &Bytes) -> bool {
        self.matched.fetch_add(1, Ordering::Relaxed);
        self.queue.push(publisher.make(payload)).is_ok()
    }

    /// At most once: the next message, counted delivered.
    pub fn take(&self) -> Option<Arc<FloorMessage>> {
        let message = self.queue.pop()?;
        self.delivered.fetch_add(1, Ordering::Relaxed);
        Some(message)
    }

    /// At least once: the next message, in flight on a free place.
    pub fn take_acked(self: &Arc<Self>, now: u64) -> Option<FloorDelivery> {
        let place = self.free.pop()?;
        let Some(message) = self.queue.pop() else {
            let _ = self.free.push(place);
            return None;
        };
        let attempt = {
            let mut p = self.places[place as usize].lock().unwrap();
            p.attempt += 1;
            p.message = Some(message.clone());
            p.deadline = now + 30_000_000_000;
            p.attempt
        };
        Some(FloorDelivery {
            floor: self.clone(),
            place,
            attempt,
            message,
        })
    }

    /// Settles one attempt; `false` for a stale token.
    pub fn ack(&self, token: FloorToken) -> bool {
        if !self.settle(token) {
            return false;
        }
        self.delivered.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// Settles a batch; how many were acked.
    pub fn ack_batch(&self, tokens: &[FloorToken]) -> u64 {
        let acked = tokens.iter().filter(|t| self.settle(**t)).count() as u64;
        self.delivered.fetch_add(acked, Ordering::Relaxed);
        acked
    }

    fn settle(&self, token: FloorToken) -> bool {
        let message = {
            let mut p = self.places[token.place as usize].lock().unwrap();
            if p.attempt != token.attempt {
                return false;
            }
            p.message.take()
        };
        drop(message);
        let _ = self.free.push(token.place);
        true
    }

    /// Queues a message, yielding and trying again while the queue is full (a `Block` policy), then
    /// signals a parked receiver: counted matched once, however many tries it takes.
    pub fn publish_blocking(
        &self,
        publisher: &mut FloorPublisher,
        payload: &Bytes,
        parking: &Parking,
    ) {
        self.matched.fetch_add(1, Ordering::Relaxed);
        let mut message = publisher.make(payload);
        while let Err(back) = self.queue.push(message) {
            std::thread::yield_now();
            message = back;
        }
        parking.signal();
    }

    /// Whether a message is queued (it may be taken by the time the caller looks).
    pub fn has_queued(&self) -> bool {
        !self.queue.is_empty()
    }

    /// Whether the books balance (nothing queued or in flight).
    pub fn balances(&self) -> bool {
        self.queue.is_empty()
            && self.free.is_full()
            && self.matched.load(Ordering::Relaxed) == self.delivered.load(Ordering::Relaxed)
    }
}

impl FloorDelivery {
    pub fn token(&self) -> FloorToken {
        FloorToken {
            place: self.place,
            attempt: self.attempt,
        }
    }

    pub fn ack(self) -> bool {
        self.floor.ack(self.token())
    }
}

/// The floor's waiting: receivers that found nothing park on a condition variable; a publish signals
/// it when a receiver is parked. No lost wake-up: a receiver counts itself parked (a sequentially
/// consistent read-modify-write) under the lock and then looks at the queue; a publisher pushes,
/// fences, then reads the count, and signals under the lock. Either the receiver sees the message or
/// the publisher sees it parked, and the lock makes the signal come after the receiver waits.
#[derive(Default)]
pub struct Parking {
    parked: AtomicUsize,
    lock: Mutex<()>,
    wake: Condvar,
}

impl Parking {
    pub fn signal(&self) {
        fence(Ordering::SeqCst);
        if self.parked.load(Ordering::Relaxed) > 0 {
            let _guard = self.lock.lock().unwrap();
            self.wake.notify_one();
        }
    }

    pub fn wait_unless(&self, ready: impl Fn() -> bool, timeout: Duration) {
        let guard = self.lock.lock().unwrap();
        self.parked.fetch_add(1, Ordering::SeqCst);
        let guard = if ready() {
            guard
        } else {
            self.wake.wait_timeout(guard, timeout).unwrap().0
        };
        self.parked.fetch_sub(1, Ordering::Relaxed);
        drop(guard);
    }
}

/// How long a competing receiver parks before it looks again (and its caller sees whether to stop).
const PARK: Duration = Duration::from_millis(1);

/// A competing receiver's turn: takes one message and acks it, or waits as crossbeam-channel's
/// receivers do (spin, then yield: `Backoff` until it is completed), then parks until a publish
/// signals or [`PARK`] passes, and tries once more. Whether it took one.
pub fn take_competing(floor: &Arc<Floor>, parking: &Parking, now: u64) -> bool {
    let take = || match floor.take_acked(now) {
        Some(d) => {
            std::hint::black_box(&d.message.payload);
            assert!(d.ack(), "an ack of the floor's only attempt was refused");
            true
        }
        None => false,
    };
    let backoff = Backoff::new();
    while !backoff.is_completed() {
        if take() {
            return true;
        }
        backoff.snooze();
    }
    parking.wait_unless(|| floor.has_queued(), PARK);
    take()
}
