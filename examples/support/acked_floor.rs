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

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crossbeam_queue::ArrayQueue;
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
