//! Pooled consumers: a few threads serve every receiver, so 100,000 subscriptions run on as many
//! threads as there are CPUs, not 100,000.
//!
//! Receiver `g` (subscription `g / receivers`, clone `g mod receivers`) is served by thread
//! `g mod threads`, so the competing receivers of one subscription land on different threads. Each
//! thread passes over its receivers round-robin, taking up to [`BATCH`] messages from each with one
//! `drain_into`. A visit that took only a few messages is followed by a pause of about a microsecond
//! ([`gather_pause`]), so a consumer faster than its publishers takes batches instead of single
//! messages on lines the publisher is writing. When a whole pass finds nothing it backs off: it
//! polls a few more passes; then a thread serving a single receiver blocks in the broker's own wait
//! (woken by the next publish, so latency is not inflated by polling); a thread serving many with a
//! `ReadySignal` (one receiver per subscription, no `--slow`) does not pass over them at all: it
//! visits only the subscriptions its signal's ready list hands out, and parks on the signal when
//! there are none (cost O(ready), not O(subscriptions)); otherwise it yields, then sleeps from 20 µs
//! up to 1 ms. The core's signal
//! holds (`ReadySignal::holding`): a subscription handed out stays with its thread, which visits it
//! directly while its burst lasts and lets go of it when it finds it empty a while, so the list is
//! used once per burst, not once per message (see [`ReadyVisits`]).
//!
//! A slow receiver (`--slow`) does not sleep, which would stall every receiver sharing its thread:
//! it is given a due time instead, and takes one message per `delay` on average while the run lasts.
//! During the drain every receiver takes what is queued at full speed, so the run ends promptly.
//!
//! On an acknowledged engine (`--ack`) a thread settles what it took from a receiver before it moves
//! on, as the receiver's [`Role`] says (ack, nack, leave it to time out, or die holding the last
//! message), and counts as delivered only the acks the broker accepted. Its drain also waits, up to a
//! bound, for the messages still in flight to come back and be acked.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::ack::Role;
use super::engine::{Engine, ReadyList};
use super::latency::LatencyRecorder;
use hdrhistogram::Histogram;

/// Messages taken from one receiver per visit: large enough to amortise the `delivered` counter update
/// and the pass overhead, small enough that one busy receiver does not starve the others on its thread.
pub const BATCH: usize = 128;

/// Empty passes a consumer polls before it parks (one receiver) or yields and sleeps (many).
const SPIN_PASSES: u32 = 64;

/// A visit or pass that took fewer messages than this is followed by a [`gather_pause`].
const SMALL_TAKE: usize = 8;
/// Spin-loop hints in a [`gather_pause`]: about a microsecond on the machines we measure on.
const GATHER_SPINS: u32 = 64;

/// After a visit or a pass that took a few messages but fewer than [`SMALL_TAKE`], pauses about a
/// microsecond before looking again, so that the next look finds a batch.
///
/// A consumer faster than its publisher otherwise takes messages one at a time, and every look
/// reads the queue lines the publisher is writing: each push then finds its lines in the
/// consumer's cache and pays a transfer between cores, and the pair runs at the speed of that
/// ping-pong. Measured through `switchyard load` (1→1 lossless, 1 s runs, 2 vCPUs): 2–4 M msg/s when
/// the two threads ran on different CPUs against 7 M/s with both pinned to one CPU (`taskset -c 0`),
/// where the consumer only runs when the publisher has filled a batch; with this pause the 1→1 row
/// read 5.5 M/s, 4.5× the naive broker, where it read 2.2 M/s and 0.8× in the run before
/// (`docs/performance.md`). The pause follows only a take that found messages: an empty look goes
/// on polling, then parks, as before, so a message arriving into an idle consumer is not delayed
/// (p50 at 200k msg/s unchanged, 1.0–1.8 µs).
pub fn gather_pause(taken: usize) {
    if (1..SMALL_TAKE).contains(&taken) {
        for _ in 0..GATHER_SPINS {
            std::hint::spin_loop();
        }
    }
}

/// Consumers keep consuming at the configured pace.
pub const PHASE_RUNNING: u8 = 0;
/// Publishers have stopped: take everything queued at full speed, then exit.
pub const PHASE_DRAINING: u8 = 1;
/// Exit now, leaving what is queued (`--no-drain`).
pub const PHASE_STOP: u8 = 2;

/// One receiver as a consumer thread holds it.
pub struct Slot<E: Engine> {
    /// The receiver handle.
    pub receiver: E::Receiver,
    /// Per-message delay for a slow subscription.
    pub slow: Option<Duration>,
    /// What it does with what it takes (acknowledged engines; `Ack` otherwise).
    pub role: Role,
    next_due: Option<Instant>,
}

impl<E: Engine> Slot<E> {
    /// A slot for `receiver`, slow if `slow` is set, settling as `role` says.
    pub fn new(receiver: E::Receiver, slow: Option<Duration>, role: Role) -> Self {
        Self {
            receiver,
            slow,
            role,
            next_due: None,
        }
    }

    /// Settles what this receiver took (in `taken`, emptied) as its role says; while `draining`,
    /// every receiver acks. Returns how many acks the broker accepted (for a plain engine, every
    /// message taken).
    fn settle(&mut self, taken: &mut Vec<E::Message>, draining: bool) -> usize {
        let role = if draining { Role::Ack } else { self.role };
        match role {
            Role::Ack => E::ack(&self.receiver, taken),
            Role::Nack => {
                E::nack(&self.receiver, taken);
                0
            }
            Role::TimeOut => {
                E::abandon(taken);
                0
            }
            Role::Die if taken.is_empty() => 0,
            Role::Die => {
                // Mid-message: the last one is still in hand, unsettled, when the handle goes, and
                // goes back at once; a new receiver takes this one's place.
                let mut held = taken.split_off(taken.len() - 1);
                let acked = E::ack(&self.receiver, taken);
                E::abandon(&mut held);
                let restarted = E::add_receiver(&self.receiver);
                drop(std::mem::replace(&mut self.receiver, restarted));
                acked
            }
        }
    }

    /// How many messages this slow slot may take now: none before its due time, then one per `delay`
    /// on average: every turn that has come due since the last visit (the thread may have slept),
    /// but never more than a batch banked.
    fn turns_due(&mut self, delay: Duration) -> Option<usize> {
        let now = Instant::now();
        let due = *self.next_due.get_or_insert(now);
        if now < due {
            return None;
        }
        let turns = (now.duration_since(due).as_nanos() / delay.as_nanos().max(1))
            .min(BATCH as u128 - 1) as u32
            + 1;
        let floor = now
            .checked_sub(delay.saturating_mul(BATCH as u32))
            .unwrap_or(due);
        self.next_due = Some(due.max(floor) + delay.saturating_mul(turns));
        Some(turns as usize)
    }
}

/// Counters a consumer thread shares with the progress line, on their own cache line.
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct ConsumerCounters {
    /// Messages taken so far.
    pub delivered: AtomicU64,
}

/// What a consumer thread hands back when it ends: its receivers (kept alive until the final snapshot
/// is taken, since dropping the last handle would unsubscribe) and its latency histogram.
pub struct ConsumerResult<E: Engine> {
    /// The receivers it served, held only so the subscriptions outlive the final snapshot.
    #[expect(dead_code, reason = "held to keep the subscriptions alive, never read")]
    pub slots: Vec<Slot<E>>,
    /// Latencies it measured, in nanoseconds.
    pub histogram: Histogram<u64>,
    /// Messages it took.
    pub delivered: u64,
}

/// Serves `slots` until the phase says to stop (or, when draining, until a pass finds nothing and
/// nothing is in flight, waiting at most `drain_wait` for what is).
pub fn consume_loop<E: Engine>(
    mut slots: Vec<Slot<E>>,
    start: Instant,
    measure_latency: bool,
    phase: &AtomicU8,
    counters: Arc<ConsumerCounters>,
    signal: Option<Arc<E::Ready>>,
    drain_wait: Duration,
) -> ConsumerResult<E> {
    let mut latency = LatencyRecorder::new(start);
    let mut buf: Vec<E::Message> = Vec::with_capacity(BATCH);
    let mut delivered = 0u64;
    let mut took = |n: u64| {
        delivered += n;
        counters.delivered.store(delivered, Ordering::Relaxed);
    };
    let mut idle_passes = 0u32;
    let single = slots.len() == 1 && slots[0].slow.is_none();
    // Slow receivers pace themselves by due times, which a push notification knows nothing about.
    let signal = signal.filter(|_| slots.iter().all(|s| s.slow.is_none()));
    let mut ready = signal.map(|signal| ReadyVisits::new(signal, &slots));
    let mut drain_deadline = None;
    loop {
        let phase_now = phase.load(Ordering::Acquire);
        if phase_now == PHASE_STOP {
            break;
        }
        let draining = phase_now == PHASE_DRAINING;
        if draining && drain_deadline.is_none() {
            drain_deadline = Some(Instant::now() + drain_wait);
        }
        if let Some(ready) = ready.as_mut().filter(|_| !draining) {
            let n = ready.visit::<E>(&slots, &mut buf, |m| {
                if measure_latency {
                    latency.observe(E::payload(m));
                }
            });
            if n > 0 {
                took(n as u64);
                gather_pause(n);
            }
            continue;
        }
        let recorder = measure_latency.then_some(&mut latency);
        let (taken, acked) = pass(&mut slots, &mut buf, draining, recorder);
        if taken > 0 {
            took(acked as u64);
            idle_passes = 0;
            gather_pause(taken);
            continue;
        }
        if draining {
            // Messages still in flight come back (a deadline passes, a receiver went away) to a
            // later pass; wait for them, but not for ever.
            let in_flight = slots.iter().any(|s| E::in_flight(&s.receiver) > 0);
            if !in_flight || drain_deadline.is_some_and(|d| Instant::now() >= d) {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
            continue;
        }
        idle_passes += 1;
        let waited_on = single.then(|| &slots[0].receiver);
        if let Some(m) = back_off::<E>(idle_passes, waited_on) {
            if measure_latency {
                latency.observe(E::payload(&m));
            }
            buf.push(m);
            let acked = slots[0].settle(&mut buf, false);
            took(acked as u64);
        }
    }
    counters.delivered.store(delivered, Ordering::Relaxed);
    ConsumerResult {
        slots,
        histogram: latency.into_histogram(),
        delivered,
    }
}

/// One pass over every slot: up to a batch from each, or from a slow slot the turns that came due,
/// settled as the slot's role says; `latency` records the stamps when latency is measured. Returns how
/// many messages it took, and how many of them were acked (all of them on a plain engine).
fn pass<E: Engine>(
    slots: &mut [Slot<E>],
    buf: &mut Vec<E::Message>,
    draining: bool,
    mut latency: Option<&mut LatencyRecorder>,
) -> (usize, usize) {
    let mut taken = 0usize;
    let mut acked = 0usize;
    for slot in slots {
        let max = match (slot.slow, draining) {
            (Some(delay), false) => match slot.turns_due(delay) {
                Some(turns) => turns,
                None => continue,
            },
            _ => BATCH,
        };
        let n = E::drain(&slot.receiver, buf, max);
        if n == 0 {
            continue;
        }
        if let Some(latency) = latency.as_deref_mut() {
            for m in buf.iter() {
                latency.observe(E::payload(m));
            }
        }
        taken += n;
        acked += slot.settle(buf, draining);
    }
    (taken, acked)
}

/// After a pass that found nothing: spin for [`SPIN_PASSES`], then wait on the one receiver
/// (`waited_on`) in the broker's own wait, or with many receivers yield, then sleep from 20 µs up to
/// 1 ms. Returns the message a wait received.
pub fn back_off<E: Engine>(
    idle_passes: u32,
    waited_on: Option<&E::Receiver>,
) -> Option<E::Message> {
    if idle_passes <= SPIN_PASSES {
        // A message is usually a few hundred nanoseconds away under load: polling briefly
        // avoids a park and a wake-up (two system calls) per batch.
        std::hint::spin_loop();
    } else if let Some(receiver) = waited_on {
        return E::wait(receiver, Duration::from_millis(10));
    } else if idle_passes <= SPIN_PASSES + 4 {
        std::thread::yield_now();
    } else {
        let micros = 20u64 << (idle_passes - SPIN_PASSES - 4).min(6);
        std::thread::sleep(Duration::from_micros(micros.min(1000)));
    }
    None
}

/// A consumer thread's use of its ready list: which of its slots have messages, without passing over
/// the others. Each subscription was attached with its slot index as its ready key, so what the list
/// hands out indexes `slots` directly.
///
/// A list that lets its consumer hold what it hands out ([`ReadyList::HOLDS`], the core's
/// `ReadySignal::holding`) is taken once per burst, not once per message: a held subscription stays
/// off the list, its publisher only reads its flag, and this thread visits it directly until it has
/// found it empty on [`PATIENCE_BUDGET`]` / held` visits in a row; then it lets go (and keeps it if a
/// message came meanwhile). With many subscriptions held the patience falls to nothing, so the cost
/// stays O(ready).
struct ReadyVisits<R> {
    signal: Arc<R>,
    /// Slots this thread visits: handed out by the list and not let go of yet, in slot order.
    held: Vec<Held>,
    /// Whether a slot is in `held`.
    holding: Vec<bool>,
    keys: Vec<u64>,
    empty_rounds: u32,
}

/// A slot in a consumer's hands, and how many visits in a row found it empty.
#[derive(Clone, Copy)]
struct Held {
    slot: usize,
    idle: u32,
}

/// Empty visits a thread spends on its held subscriptions before it lets one go, shared among them:
/// with 1 held, it is let go after 64 empty visits in a row (as many as the polls before parking,
/// [`SPIN_PASSES`]), with 2 after 32 each; with more than 64 held, at the first visit that leaves it
/// empty, as with a list that does not hold.
const PATIENCE_BUDGET: usize = SPIN_PASSES as usize;

impl<R: ReadyList> ReadyVisits<R> {
    fn new<E: Engine>(signal: Arc<R>, slots: &[Slot<E>]) -> Self {
        Self {
            signal,
            held: Vec::new(),
            holding: vec![false; slots.len()],
            keys: Vec::new(),
            empty_rounds: 0,
        }
    }

    /// Takes what the ready list hands out (parking up to 10 ms when there is nothing to do, so a phase
    /// change is noticed), visits those slots and the ones it holds, and returns how many messages it
    /// took. Each message is shown to `observe` before the buffer is cleared.
    fn visit<E: Engine>(
        &mut self,
        slots: &[Slot<E>],
        buf: &mut Vec<E::Message>,
        mut observe: impl FnMut(&E::Message),
    ) -> usize {
        self.keys.clear();
        if self.held.is_empty() && self.empty_rounds > SPIN_PASSES {
            self.signal
                .wait_ready(&mut self.keys, Duration::from_millis(10));
        } else if !R::HOLDS || self.held.len() < slots.len() {
            // (Holding every slot, there is nothing the list could hand out.)
            self.signal.try_ready(&mut self.keys);
        }
        let mut added = false;
        for &key in &self.keys {
            let slot = key as usize;
            if !std::mem::replace(&mut self.holding[slot], true) {
                self.held.push(Held { slot, idle: 0 });
                added = true;
            }
        }
        // Visit in slot order, which is the order the subscriptions were made in and so, roughly, the
        // order of their memory: with 100,000 subscriptions every visit starts on cold cache lines,
        // and ascending addresses let the hardware prefetcher help (`benches/ready_list.rs`: 341 ns
        // per message sorted, 403 in the order handed out, 588 in publish order). The list hands
        // them out nearly in that order already; the sort merges in the slots still held.
        if added {
            self.held.sort_unstable_by_key(|h| h.slot);
        }
        let patience = if R::HOLDS {
            (PATIENCE_BUDGET / self.held.len().max(1)) as u32
        } else {
            0
        };
        let mut taken = 0;
        let holding = &mut self.holding;
        self.held.retain_mut(|h| {
            let receiver = &slots[h.slot].receiver;
            let n = E::drain(receiver, buf, BATCH);
            taken += n;
            buf.iter().for_each(&mut observe);
            buf.clear();
            // A full batch may have left messages behind: visit again.
            if n == BATCH && (R::HOLDS || E::has_queued(receiver)) {
                h.idle = 0;
                return true;
            }
            h.idle = if n > 0 { 0 } else { h.idle + 1 };
            if h.idle < patience {
                return true;
            }
            // Let go: the list announces its next message. A list that does not hold already
            // does (it cleared the flag when it handed the slot out); one that holds keeps it for
            // us if a message came in the meantime.
            if R::HOLDS && E::release_ready(receiver) {
                h.idle = 0;
                return true;
            }
            holding[h.slot] = false;
            false
        });
        if taken == 0 {
            self.empty_rounds = self.empty_rounds.saturating_add(1);
            // A message is usually a few hundred nanoseconds away under load: poll briefly before
            // parking, offering the core now and then to a publisher that may share it (with more
            // busy threads than cores, a consumer that only polls starves the thread it waits for).
            if self.empty_rounds % 16 == 0 {
                std::thread::yield_now();
            } else {
                std::hint::spin_loop();
            }
        } else {
            self.empty_rounds = 0;
        }
        taken
    }
}
