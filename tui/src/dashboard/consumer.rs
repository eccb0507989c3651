//! The threads that receive a subscription's messages on the dashboard's behalf.
//!
//! Each subscription the dashboard creates gets one or more consumer threads (several compete for its
//! messages, the work-queue pattern), so its row shows deliveries as they happen. A consumer can be
//! paused from the dashboard to watch its queue fill up and start dropping.
//!
//! # Pausing
//! The core has no way to wait for a message without taking it, so a thread blocked in `recv` would take
//! one more message after a pause was asked for. Threads therefore wait with `recv_timeout` in short
//! slices ([`RECV_SLICE`]) and check the pause flag between slices; each thread acknowledges the pause,
//! and the dashboard shows `pausing` until every thread has. Once `Paused`, nothing is taken from the
//! queue. A paused thread parks until it is resumed (or stopped) and unparked.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use switchyard::{Delivery, RecvTimeoutError, Subscription};

use super::link::{ConsumerState, RECENT_MESSAGES, RecentMessage};

/// How long a running consumer waits for a message before it looks at its pause and stop flags again.
/// Short enough that a pause takes effect within a quarter second; long enough that a thousand idle
/// consumers cost a few thousand wake-ups a second, not a core.
pub const RECV_SLICE: Duration = Duration::from_millis(250);

/// How long a paused consumer parks before it checks its flags, in case an unpark was missed.
const PAUSED_PARK: Duration = Duration::from_secs(1);

/// Longest payload preview kept, in characters.
const PREVIEW_CHARS: usize = 48;

/// State shared by a subscription's consumer threads and the dashboard.
#[derive(Debug, Default)]
struct Shared {
    paused: AtomicBool,
    /// How many threads have seen `paused` and stopped taking messages.
    acknowledged: AtomicUsize,
    /// How many threads are still running their loop.
    alive: AtomicUsize,
    stop: AtomicBool,
    recent: Mutex<VecDeque<RecentMessage>>,
}

/// The consumer threads of one subscription.
#[derive(Debug)]
pub struct Consumer {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

impl Consumer {
    /// Starts `threads` (at least one) consumer threads on `subscription`, each sleeping `pace` after
    /// every message (zero: as fast as possible). The threads own the only handles, so the subscription
    /// reports exactly that many receivers, and ends when they have all stopped.
    pub fn start(
        subscription: Subscription,
        threads: usize,
        pace: Duration,
    ) -> std::io::Result<Self> {
        let threads = threads.max(1);
        let shared = Arc::new(Shared::default());
        let mut handles = Vec::with_capacity(threads);
        let name = format!("consume-{}", subscription.id());
        let mut handles_to_give: Vec<Subscription> =
            (1..threads).map(|_| subscription.clone()).collect();
        handles_to_give.push(subscription);
        for sub in handles_to_give {
            let for_thread = shared.clone();
            shared.alive.fetch_add(1, Ordering::SeqCst);
            let spawned = thread::Builder::new()
                .name(name.clone())
                .spawn(move || consume(&sub, &for_thread, pace));
            match spawned {
                Ok(h) => handles.push(h),
                Err(e) => {
                    // The closure (and its handle) was dropped; do not count it.
                    shared.alive.fetch_sub(1, Ordering::SeqCst);
                    Self {
                        shared,
                        threads: handles,
                    }
                    .stop();
                    return Err(e);
                }
            }
        }
        Ok(Self {
            shared,
            threads: handles,
        })
    }

    /// Pauses or resumes taking messages.
    pub fn set_paused(&self, paused: bool) {
        self.shared.paused.store(paused, Ordering::SeqCst);
        if !paused {
            for t in &self.threads {
                t.thread().unpark();
            }
        }
    }

    /// What the consumer is doing now.
    pub fn state(&self) -> ConsumerState {
        let alive = self.shared.alive.load(Ordering::SeqCst);
        if alive == 0 || self.shared.stop.load(Ordering::SeqCst) {
            ConsumerState::Stopped
        } else if self.shared.paused.load(Ordering::SeqCst) {
            if self.shared.acknowledged.load(Ordering::SeqCst) >= alive {
                ConsumerState::Paused
            } else {
                ConsumerState::Pausing
            }
        } else {
            ConsumerState::Running
        }
    }

    /// The last messages received, oldest first.
    pub fn recent(&self) -> Vec<RecentMessage> {
        let recent = self
            .shared
            .recent
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        recent.iter().cloned().collect()
    }

    /// Asks the threads to stop without waiting for them. They notice within [`RECV_SLICE`], at once if
    /// the subscription was closed (unsubscribing wakes every receiver).
    pub fn stop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for t in &self.threads {
            t.thread().unpark();
        }
    }

    /// Stops the threads and waits for them.
    pub fn join(mut self) {
        self.stop();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// One consumer thread's loop.
fn consume(sub: &Subscription, shared: &Shared, pace: Duration) {
    let mut acknowledged = false;
    while !shared.stop.load(Ordering::SeqCst) {
        if shared.paused.load(Ordering::SeqCst) {
            if !acknowledged {
                shared.acknowledged.fetch_add(1, Ordering::SeqCst);
                acknowledged = true;
            }
            if sub.is_closed() {
                break;
            }
            thread::park_timeout(PAUSED_PARK);
            continue;
        }
        if acknowledged {
            shared.acknowledged.fetch_sub(1, Ordering::SeqCst);
            acknowledged = false;
        }
        match sub.recv_timeout(RECV_SLICE) {
            Ok(delivery) => {
                remember(shared, &delivery);
                if !pace.is_zero() {
                    thread::sleep(pace);
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Closed) => break,
        }
    }
    if acknowledged {
        shared.acknowledged.fetch_sub(1, Ordering::SeqCst);
    }
    shared.alive.fetch_sub(1, Ordering::SeqCst);
}

fn remember(shared: &Shared, delivery: &Delivery) {
    let entry = RecentMessage {
        topic: delivery.topic().to_string(),
        preview: preview(delivery.payload()),
        missed: delivery.missed().map_or(0, |m| m.total()),
    };
    let mut recent = shared.recent.lock().unwrap_or_else(PoisonError::into_inner);
    if recent.len() == RECENT_MESSAGES {
        recent.pop_front();
    }
    recent.push_back(entry);
}

/// The start of a payload as one line of text: invalid UTF-8 replaced, control characters shown as `·`.
pub fn preview(payload: &[u8]) -> String {
    let head = &payload[..payload.len().min(PREVIEW_CHARS * 4)];
    let text = String::from_utf8_lossy(head);
    let mut out: String = text
        .chars()
        .take(PREVIEW_CHARS)
        .map(|c| if c.is_control() { '·' } else { c })
        .collect();
    if text.chars().count() > PREVIEW_CHARS || head.len() < payload.len() {
        out.push('…');
    }
    out
}
