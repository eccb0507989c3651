//! Receiving the dashboard's subscriptions' messages on its behalf: a small pool of threads on ready
//! lists.
//!
//! Every subscription the dashboard creates (or restores from a state file) gets a [`Consumer`], so
//! its row shows deliveries as they happen and its detail pane the last messages. A thread per
//! subscription would cost a stack and a few wake-ups a second each even when idle: a thousand
//! subscriptions would be a thousand threads. Instead a [`ConsumerPool`] of a few threads serves them
//! all. Each pool thread has a [`ReadySignal`] attached to the subscriptions it serves and visits only
//! those that got a message ([`ReadySignal::wait_ready`]): the cost follows the traffic, not the number
//! of subscriptions, and an idle dashboard's consumers sleep.
//!
//! # Receivers and pace
//! A consumer stands for `receivers` competing receivers (the work-queue pattern): it holds that many
//! handles, so the subscription reports that many receivers, and each receiver spends `pace` on a
//! message (zero: as fast as the thread goes). A paced receiver is not a sleeping thread: the pool
//! thread notes when each receiver is free again and comes back then, so a slow subscriber never holds
//! up the others a thread serves. A subscription with 4 receivers and a pace of 50 ms takes at most
//! 80 messages a second, as 4 threads that sleep 50 ms after each message would.
//!
//! # Pausing
//! Pausing stops a consumer taking messages, to watch its queue fill up and drop. A pool thread checks
//! the flag before every visit; the dashboard shows `pausing` while a visit that began before the pause
//! may still take messages, then `paused`, after which nothing is taken. Resuming asks the thread to
//! visit again (the messages that queued meanwhile were announced once, while paused).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use switchyard::{Message, ReadySignal, Subscription, SubscriptionId, TryRecvError};

use super::link::{ConsumerState, RECENT_MESSAGES, RecentMessage};

/// Most messages an unpaced consumer takes in one visit before the thread serves the others it has
/// ready; it comes back to the rest right after.
const VISIT_BATCH: usize = 256;

/// Longest a pool thread sleeps with nothing ready and no paced receiver to come back to. Nothing is
/// missed by sleeping: a message, a close or a command wakes it; this only bounds the wait.
const IDLE_WAIT: Duration = Duration::from_secs(5);

/// Most pool threads, whatever the machine: the dashboard's own traffic is light, and a flat-out
/// subscription is drained a batch at a time.
const MAX_THREADS: usize = 4;

/// Longest payload preview kept, in characters.
const PREVIEW_CHARS: usize = 48;

/// The threads that serve every [`Consumer`]. Dropping the pool stops them and drops the handles they
/// hold (which unsubscribes subscriptions that are not durable).
#[derive(Debug)]
pub struct ConsumerPool {
    workers: Vec<Worker>,
    /// The worker the next consumer goes to (round robin).
    next: usize,
}

/// One pool thread and how to reach it.
#[derive(Debug)]
struct Worker {
    signal: Arc<ReadySignal>,
    commands: Sender<Command>,
    thread: Option<JoinHandle<()>>,
}

/// What the dashboard asks a pool thread to do; sent before [`ReadySignal::wake`].
enum Command {
    /// Serve this subscription (its signal is attached after the command is sent, so the thread knows
    /// the subscription before the signal can hand it out).
    Serve(Box<Served>),
    /// Visit this subscription again: it was resumed.
    Visit(SubscriptionId),
    /// Stop serving this subscription and drop its handles.
    Drop(SubscriptionId),
    /// Stop the thread.
    Exit,
}

/// State shared by a consumer's pool thread and the dashboard.
#[derive(Debug, Default)]
struct Shared {
    paused: AtomicBool,
    /// True while the pool thread is visiting the subscription (it may take messages).
    visiting: AtomicBool,
    /// Asked to stop by the dashboard, or the subscription ended.
    stopped: AtomicBool,
    recent: Mutex<VecDeque<RecentMessage>>,
}

/// A subscription as its pool thread serves it.
struct Served {
    /// One handle per receiver; the thread receives through the first.
    handles: Vec<Subscription>,
    pace: Duration,
    /// When each receiver is free to take its next message (paced consumers only).
    free_at: Vec<Instant>,
    /// The time the thread has promised to come back, if any (a paced consumer with messages left).
    comeback: Option<Instant>,
    shared: Arc<Shared>,
}

/// The dashboard's side of one subscription's consumer.
#[derive(Debug)]
pub struct Consumer {
    id: SubscriptionId,
    shared: Arc<Shared>,
    signal: Arc<ReadySignal>,
    commands: Sender<Command>,
}

impl ConsumerPool {
    /// Starts the pool: one thread per core, at most [`MAX_THREADS`].
    pub fn start() -> std::io::Result<Self> {
        let threads = thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, MAX_THREADS);
        Self::with_threads(threads)
    }

    /// Starts a pool of `threads` threads (at least one).
    pub fn with_threads(threads: usize) -> std::io::Result<Self> {
        let mut pool = Self {
            workers: Vec::new(),
            next: 0,
        };
        for i in 0..threads.max(1) {
            let signal = ReadySignal::new();
            let (commands, inbox) = mpsc::channel();
            let thread = {
                let signal = signal.clone();
                thread::Builder::new()
                    .name(format!("consume-{i}"))
                    .spawn(move || serve(&signal, &inbox))?
            };
            pool.workers.push(Worker {
                signal,
                commands,
                thread: Some(thread),
            });
        }
        Ok(pool)
    }

    /// Serves `subscription` with `receivers` competing receivers (at least one) that each spend `pace`
    /// per message (zero: as fast as possible). The pool holds the only handles, so the subscription
    /// reports exactly that many receivers, and ends when the consumer is stopped (unless durable).
    ///
    /// Fails if the subscription already has a ready signal (the dashboard never attaches one).
    pub fn serve(
        &mut self,
        subscription: Subscription,
        receivers: usize,
        pace: Duration,
    ) -> anyhow::Result<Consumer> {
        let worker = &self.workers[self.next % self.workers.len()];
        self.next = self.next.wrapping_add(1);
        let id = subscription.id();
        let shared = Arc::new(Shared::default());
        let first = subscription.clone();
        let mut handles = vec![subscription];
        handles.extend((1..receivers.max(1)).map(|_| first.clone()));
        let served = Served {
            free_at: vec![Instant::now(); handles.len()],
            handles,
            pace,
            comeback: None,
            shared: shared.clone(),
        };
        worker
            .commands
            .send(Command::Serve(Box::new(served)))
            .map_err(|_| anyhow::anyhow!("the consumer thread has stopped"))?;
        let consumer = Consumer {
            id,
            shared,
            signal: worker.signal.clone(),
            commands: worker.commands.clone(),
        };
        // After the command: the thread learns of the subscription before the signal hands it out.
        if let Err(e) = first.attach_ready_signal(&worker.signal, id) {
            consumer.stop(); // the thread lets its handles go
            return Err(e.into());
        }
        Ok(consumer)
    }
}

impl Drop for ConsumerPool {
    fn drop(&mut self) {
        for w in &self.workers {
            let _ = w.commands.send(Command::Exit);
            w.signal.wake();
        }
        for w in &mut self.workers {
            if let Some(t) = w.thread.take() {
                let _ = t.join();
            }
        }
    }
}

impl Consumer {
    /// Pauses or resumes taking messages.
    pub fn set_paused(&self, paused: bool) {
        self.shared.paused.store(paused, Ordering::SeqCst);
        if !paused {
            self.tell(Command::Visit(self.id));
        }
    }

    /// What the consumer is doing now.
    pub fn state(&self) -> ConsumerState {
        if self.shared.stopped.load(Ordering::SeqCst) {
            ConsumerState::Stopped
        } else if self.shared.paused.load(Ordering::SeqCst) {
            // `paused` was stored before this load of `visiting` (both `SeqCst`): a visit that starts
            // later sees the pause and takes nothing.
            if self.shared.visiting.load(Ordering::SeqCst) {
                ConsumerState::Pausing
            } else {
                ConsumerState::Paused
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

    /// Stops serving the subscription: its pool thread drops the handles soon after (which
    /// unsubscribes it unless it is durable).
    pub fn stop(&self) {
        self.shared.stopped.store(true, Ordering::SeqCst);
        self.tell(Command::Drop(self.id));
    }

    fn tell(&self, command: Command) {
        // A send fails only once the pool has stopped, and then there is nothing left to tell.
        if self.commands.send(command).is_ok() {
            self.signal.wake();
        }
    }
}

/// One pool thread: waits on its signal, obeys commands, visits what is ready or due.
fn serve(signal: &ReadySignal, inbox: &Receiver<Command>) {
    let mut served: HashMap<SubscriptionId, Served> = HashMap::new();
    // Paced consumers to come back to, earliest first (stale entries are skipped).
    let mut comebacks: BinaryHeap<Reverse<(Instant, SubscriptionId)>> = BinaryHeap::new();
    // Consumers that stopped at a full batch, visited again without waiting.
    let mut again: Vec<SubscriptionId> = Vec::new();
    let mut visit: Vec<u64> = Vec::new();
    let mut messages: Vec<Message> = Vec::with_capacity(VISIT_BATCH);
    loop {
        visit.clear();
        if again.is_empty() {
            let wait = comebacks.peek().map_or(IDLE_WAIT, |Reverse((at, _))| {
                at.saturating_duration_since(Instant::now())
            });
            signal.wait_ready(&mut visit, wait);
        } else {
            signal.try_ready(&mut visit);
            visit.append(&mut again);
        }
        for command in inbox.try_iter() {
            match command {
                Command::Serve(s) => {
                    let id = s.handles[0].id();
                    served.insert(id, *s);
                }
                Command::Visit(id) => visit.push(id),
                Command::Drop(id) => {
                    served.remove(&id);
                }
                Command::Exit => return, // every `Served` drops with the map
            }
        }
        let now = Instant::now();
        while let Some(Reverse((at, id))) = comebacks.peek().copied() {
            if at > now {
                break;
            }
            comebacks.pop();
            if let Some(s) = served.get_mut(&id)
                && s.comeback == Some(at)
            {
                s.comeback = None;
                visit.push(id);
            }
        }
        for &id in &visit {
            let Some(s) = served.get_mut(&id) else {
                continue; // dropped already, or a stale key
            };
            match s.visit(&mut messages) {
                Visited::Done => {}
                Visited::More => again.push(id),
                Visited::ComeBackAt(at) => {
                    if s.comeback.is_none_or(|t| at < t) {
                        s.comeback = Some(at);
                        comebacks.push(Reverse((at, id)));
                    }
                }
                Visited::Closed => {
                    served.remove(&id);
                }
            }
        }
        again.sort_unstable();
        again.dedup();
    }
}

/// A consumer whose pool thread lets it go (dropped by the dashboard, its subscription closed, or the
/// pool stopping) is stopped, and its handles go with it.
impl Drop for Served {
    fn drop(&mut self) {
        self.shared.stopped.store(true, Ordering::SeqCst);
    }
}

/// What a visit left behind.
enum Visited {
    /// Nothing more to take now; the signal announces the next message.
    Done,
    /// A full batch was taken and more may be queued: visit again soon.
    More,
    /// Every receiver is busy (paced) and messages may be queued: come back then.
    ComeBackAt(Instant),
    /// The subscription ended.
    Closed,
}

impl Served {
    /// Takes what the consumer may take now.
    fn visit(&mut self, messages: &mut Vec<Message>) -> Visited {
        self.shared.visiting.store(true, Ordering::SeqCst);
        let visited = if self.shared.paused.load(Ordering::SeqCst) {
            if self.handles[0].is_closed() {
                Visited::Closed
            } else {
                Visited::Done // resuming asks for a visit
            }
        } else if self.pace.is_zero() {
            self.take_batch(messages)
        } else {
            self.take_paced()
        };
        self.shared.visiting.store(false, Ordering::SeqCst);
        visited
    }

    /// An unpaced consumer: up to a batch at once.
    fn take_batch(&self, messages: &mut Vec<Message>) -> Visited {
        let sub = &self.handles[0];
        messages.clear();
        let drained = sub.drain_into(messages, VISIT_BATCH);
        if drained.count == 0 {
            return if sub.is_closed() {
                Visited::Closed
            } else {
                Visited::Done
            };
        }
        let missed = drained.missed.map_or(0, |m| m.total());
        let keep = messages.len().saturating_sub(RECENT_MESSAGES);
        self.remember(
            messages[keep..]
                .iter()
                .enumerate()
                .map(|(i, m)| (m, if i == 0 { missed } else { 0 })),
        );
        if drained.count == VISIT_BATCH {
            Visited::More
        } else {
            Visited::Done
        }
    }

    /// A paced consumer: one message for each receiver that is free, then come back when the first is
    /// free again.
    fn take_paced(&mut self) -> Visited {
        let now = Instant::now();
        for receiver in 0..self.free_at.len() {
            if self.free_at[receiver] > now {
                continue;
            }
            match self.handles[0].try_recv() {
                Ok(delivery) => {
                    let missed = delivery.missed().map_or(0, |m| m.total());
                    self.remember(std::iter::once((delivery.message(), missed)));
                    self.free_at[receiver] = now + self.pace;
                }
                Err(TryRecvError::Empty) => return Visited::Done,
                Err(TryRecvError::Closed) => return Visited::Closed,
            }
        }
        let first_free = self.free_at.iter().min().copied().unwrap_or(now);
        Visited::ComeBackAt(first_free)
    }

    /// Keeps the last messages received (with what each one's receiver missed just before it).
    fn remember<'m>(&self, taken: impl Iterator<Item = (&'m Message, u64)>) {
        let mut recent = self
            .shared
            .recent
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for (message, missed) in taken {
            if recent.len() == RECENT_MESSAGES {
                recent.pop_front();
            }
            recent.push_back(RecentMessage {
                topic: message.topic().to_string(),
                preview: preview(message.payload()),
                missed,
            });
        }
    }
}

/// The start of a payload as one line of text: invalid UTF-8 replaced, control characters escaped
/// ([`escape_controls`](crate::terminal_text::escape_controls)).
pub fn preview(payload: &[u8]) -> String {
    let head = &payload[..payload.len().min(PREVIEW_CHARS * 4)];
    let text = String::from_utf8_lossy(head);
    let cut: String = text.chars().take(PREVIEW_CHARS).collect();
    let mut out = crate::terminal_text::escape_controls(&cut).into_owned();
    if text.chars().count() > PREVIEW_CHARS || head.len() < payload.len() {
        out.push('…');
    }
    out
}
