//! The cross-thread rig: receiver threads that live for a whole bench function, and rounds that time
//! one publisher sending `n` messages until every receiver has taken all of them.
//!
//! Thread start-up is outside the measurement: the threads are spawned when the rig is built and
//! parked between rounds. A round starts the clock, wakes the receivers, runs the publisher on the
//! calling thread, and stops the clock when every receiver reports that it took exactly `n` messages.
//! So the figure is *delivered* messages per second: a lost message never completes its round (the
//! stall watchdog below ends the process with a message instead of hanging).

use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_utils::Backoff;

/// How long a receiver or publisher may wait without progress before the bench declares a message
/// lost and exits. Generous: the machine is shared, and a descheduled thread can stall for a while.
const STALL_LIMIT: Duration = Duration::from_secs(30);

/// Spin, then yield, while waiting for a queue to have room or a message; the same back-off for every
/// contender (crossbeam's `Backoff`: 2^0..2^6 spins, then `yield_now`), with a stall watchdog.
pub struct Spin {
    backoff: Backoff,
    idle: u32,
    since: Option<Instant>,
}

impl Default for Spin {
    fn default() -> Self {
        Self::new()
    }
}

impl Spin {
    pub fn new() -> Self {
        Self {
            backoff: Backoff::new(),
            idle: 0,
            since: None,
        }
    }

    /// Progress was made: start the back-off over.
    #[inline]
    pub fn reset(&mut self) {
        if self.idle != 0 {
            self.backoff.reset();
            self.idle = 0;
            self.since = None;
        }
    }

    /// No progress: back off; exit the process if nothing has moved for [`STALL_LIMIT`].
    #[inline]
    pub fn idle(&mut self, what: impl FnOnce() -> String) {
        self.idle = self.idle.wrapping_add(1);
        if self.idle % 4096 == 0 {
            let since = *self.since.get_or_insert_with(Instant::now);
            if since.elapsed() > STALL_LIMIT {
                eprintln!("bench stalled for {STALL_LIMIT:?}: {}", what());
                std::process::exit(2);
            }
        }
        self.backoff.snooze();
    }
}

/// Calls `try_one` until it has returned `true` `n` times, backing off while it returns `false`.
/// Returns `n`. `who` names the receiver in a stall report.
#[inline]
pub fn receive_exactly(n: u64, who: &str, mut try_one: impl FnMut() -> bool) -> u64 {
    receive_batches(n, who, |_| u64::from(try_one()))
}

/// Calls `take(wanted)`, which takes up to `wanted` messages and returns how many it took, until `n`
/// are taken, backing off while it takes none. Returns `n`.
#[inline]
pub fn receive_batches(n: u64, who: &str, mut take: impl FnMut(u64) -> u64) -> u64 {
    let mut got = 0;
    let mut spin = Spin::new();
    while got < n {
        match take(n - got) {
            0 => spin.idle(|| format!("{who} received {got} of {n} messages")),
            k => {
                got += k;
                spin.reset();
            }
        }
    }
    got
}

/// A receiver thread's body for one round: take exactly `n` messages, return how many were taken.
pub type Receiver = Box<dyn FnMut(u64) -> u64 + Send>;

/// Receiver threads parked between rounds. Dropping the rig ends and joins them.
pub struct Rig {
    starts: Vec<mpsc::Sender<u64>>,
    done: mpsc::Receiver<u64>,
    handles: Vec<JoinHandle<()>>,
}

impl Rig {
    /// Spawns one thread per receiver.
    pub fn spawn(receivers: Vec<Receiver>) -> Self {
        let (done_tx, done) = mpsc::channel();
        let mut starts = Vec::new();
        let mut handles = Vec::new();
        for (i, mut receive) in receivers.into_iter().enumerate() {
            let (start_tx, start_rx) = mpsc::channel::<u64>();
            let done_tx = done_tx.clone();
            starts.push(start_tx);
            handles.push(
                std::thread::Builder::new()
                    .name(format!("bench-receiver-{i}"))
                    .spawn(move || {
                        while let Ok(n) = start_rx.recv() {
                            let got = receive(n);
                            if done_tx.send(got).is_err() {
                                break;
                            }
                        }
                    })
                    .expect("spawn a receiver thread"),
            );
        }
        Self {
            starts,
            done,
            handles,
        }
    }

    /// Times one round: wakes the receivers for `n` messages each, runs `publish(n)` on this thread,
    /// and waits until every receiver has taken its `n`.
    pub fn round(&self, n: u64, publish: impl FnOnce(u64)) -> Duration {
        let start = Instant::now();
        for s in &self.starts {
            s.send(n).expect("receiver thread is alive");
        }
        publish(n);
        for _ in &self.starts {
            let got = self.done.recv().expect("receiver thread is alive");
            assert_eq!(got, n, "a receiver took the wrong number of messages");
        }
        start.elapsed()
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.starts.clear();
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}
