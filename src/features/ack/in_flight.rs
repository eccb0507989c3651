//! The in-flight table of an acknowledged subscription: a fixed set of places, one per message handed
//! out and not yet settled, so the window is the table's size.
//!
//! # Why places, not a map
//! A naive engine keeps one `Mutex<HashMap<token, message>>` that every receive and every ack of every
//! receiver takes. Here each place has its own mutex, taken by the one receiver that holds the attempt
//! (and by a sweep or a hand-back, rarely), so competing receivers never wait for one another; free
//! places and places due for redelivery are lock-free queues of indices. A token is `(place, attempt)`:
//! each attempt on a place gets the next attempt number, so a stale token (an attempt that a redelivery
//! replaced, or a place reused for another message) no longer matches and is refused.
//!
//! # Life of a place
//! `Free` → (a receive takes a new message) → `Out` → ack → `Free`.
//! `Out` → nack, expiry or hand-back → `Waiting` (on the redelivery queue at once, or when its delay is
//! over) → a receive → `Out` again, with one more delivery. After the last allowed delivery, or on
//! `term`, the message leaves the table to the dead letters (the caller counts the drop).
//!
//! The table holds a clone of the message (a reference count) for as long as it is in flight; what
//! leaves it goes back to the caller, which counts it: acked as delivered, dead-lettered as dropped.
//!
//! # Made at the first receive
//! The places and their two queues are made when the subscription hands out its first message, not
//! when it is made: a window of 64 is about 6 KB (a place is 48 bytes, each queue 16 bytes a place
//! plus its padded ends), which every idle acknowledged subscription paid for nothing (an MQTT client's
//! QoS 1 subscription that never got a message, most of what an idle connection cost).
//!
//! # Deadlines
//! No thread watches the clock (a coarse one, [`crate::sync::clock`]). `next_due` is never later than
//! the earliest deadline (or end of a nack delay) of any place: every receive compares it with the
//! clock and sweeps the table when it has passed, one sweeper at a time. A receiver parked on an empty
//! queue wakes at `next_due` (see `AckSubscription::recv_timeout`).

use std::time::{Duration, Instant};

use once_cell::race::OnceBox;

use crate::message::Message;
use crate::message::reason::DropReason;
use crate::sync::clock;
use crate::sync::waiters::Waiters;
use crate::sync::{AtomicBool, AtomicU32, AtomicU64, BoundedQueue, Mutex, MutexGuard, Ordering};

use crate::stats::features::{AckRefusals, AckStats};

use super::error::{AckError, AttemptEnd};
use super::options::AckOptions;

/// One delivery attempt as a receive hands it out.
#[derive(Debug)]
pub(crate) struct Attempt {
    pub(crate) place: u32,
    pub(crate) attempt: u64,
    pub(crate) deliveries: u32,
    pub(crate) message: Message,
}

/// What settling an attempt asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Settle {
    Ack,
    /// Deliver again, after this delay.
    Nack(Duration),
    /// Never deliver again: dead letter it.
    Term,
    /// Still working on it: restart the ack deadline.
    InProgress,
}

/// What a settle did, for the caller to count.
#[derive(Debug)]
pub(crate) enum Settled {
    /// Acked: count it delivered.
    Acked,
    /// Back for another delivery, or its deadline extended: nothing to count.
    Kept,
    /// Out of the table for good: count it dropped for this reason (and dead letter it).
    Dead(Message, DropReason),
}

#[derive(Debug)]
enum State {
    Free {
        ended: AttemptEnd,
    },
    Out {
        message: Message,
        deliveries: u32,
        deadline: u64,
        receiver: u64,
    },
    Waiting {
        message: Message,
        deliveries: u32,
        /// On the deadlines' clock; 0 once it is on the redelivery queue.
        not_before: u64,
        ended: AttemptEnd,
    },
}

#[derive(Debug)]
struct Place {
    attempt: u64,
    state: State,
}

/// Counters of the acknowledged path, all monotonic.
#[derive(Debug, Default)]
struct Counts {
    nacked: AtomicU64,
    expired: AtomicU64,
    handed_back: AtomicU64,
    redelivered: AtomicU64,
    terminated: AtomicU64,
    dead_lettered: AtomicU64,
    window_full: AtomicU64,
    refused: [AtomicU64; 4],
}

/// The places and the queues of their indices, made at the first receive (see the module docs).
#[derive(Debug)]
struct Places {
    places: Box<[Mutex<Place>]>,
    free: BoundedQueue<u32>,
    redeliver: BoundedQueue<u32>,
}

impl Places {
    fn new(window: u32) -> Self {
        let free = BoundedQueue::new(window as usize);
        for place in 0..window {
            let _ = free.push(place);
        }
        Self {
            places: (0..window)
                .map(|_| {
                    Mutex::new(Place {
                        attempt: 0,
                        state: State::Free {
                            ended: AttemptEnd::Acked,
                        },
                    })
                })
                .collect(),
            free,
            redeliver: BoundedQueue::new(window as usize),
        }
    }
}

/// The in-flight table. See the [module docs](self).
#[derive(Debug)]
pub(crate) struct InFlight {
    options: AckOptions,
    /// Empty until the first receive.
    table: OnceBox<Places>,
    /// The earliest deadline or delay end of any place, on the deadlines' clock; `u64::MAX`: none.
    next_due: AtomicU64,
    sweeping: AtomicBool,
    next_receiver: AtomicU64,
    stalled: AtomicU32,
    /// Receivers stalled on a full window park here, not on the subscription's `not_empty`: what
    /// frees a place (an ack, a term) wakes them and nobody else, so an ack does not wake a receiver
    /// that waits for new messages only to find none (a futile trip through the kernel for each
    /// ack while receivers are parked). What queues a message for another delivery wakes both.
    window: Waiters,
    counts: Counts,
}

impl InFlight {
    pub(crate) fn new(options: AckOptions) -> Self {
        Self {
            options,
            table: OnceBox::new(),
            next_due: AtomicU64::new(u64::MAX),
            sweeping: AtomicBool::new(false),
            next_receiver: AtomicU64::new(1),
            stalled: AtomicU32::new(0),
            window: Waiters::default(),
            counts: Counts::default(),
        }
    }

    /// The places, made now if no receive made them yet.
    fn table(&self) -> &Places {
        self.table
            .get_or_init(|| Box::new(Places::new(self.options.max_in_flight.max(1))))
    }

    /// The places, if a receive made them: before, nothing is in flight.
    fn made(&self) -> Option<&Places> {
        self.table.get()
    }

    pub(crate) fn options(&self) -> &AckOptions {
        &self.options
    }

    /// Where receivers stalled on a full window wait (see the field's docs).
    pub(crate) fn window(&self) -> &Waiters {
        &self.window
    }

    /// A new receiver's identity, to hand back its attempts when it goes.
    pub(crate) fn new_receiver(&self) -> u64 {
        self.next_receiver.fetch_add(1, Ordering::Relaxed)
    }

    /// Now, in nanoseconds on the deadlines' coarse clock ([`crate::sync::clock`]).
    #[inline]
    pub(crate) fn now(&self) -> u64 {
        clock::now().min(u64::MAX - 1)
    }

    /// When the next deadline or delay falls due, if any.
    pub(crate) fn next_due(&self) -> Option<Instant> {
        match self.next_due.load(Ordering::Acquire) {
            u64::MAX => None,
            due => Some(clock::instant_at(due)),
        }
    }

    #[inline]
    fn place(&self, index: u32) -> MutexGuard<'_, Place> {
        // A place stays consistent if a holder panicked: every change is one assignment.
        self.table().places[index as usize]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    fn after(&self, now: u64, wait: Duration) -> u64 {
        now.saturating_add(u64::try_from(wait.as_nanos()).unwrap_or(u64::MAX))
            .min(u64::MAX - 1)
    }

    /// Lowers `next_due` to `due`. Deadlines mostly grow, so the load usually finds it lower already
    /// and no receiver writes the shared line.
    fn note_due(&self, due: u64) {
        if due < self.next_due.load(Ordering::Acquire) {
            self.next_due.fetch_min(due, Ordering::AcqRel);
        }
    }

    /// Whether a receive has made the places yet (see the module docs).
    #[inline]
    pub(crate) fn is_made(&self) -> bool {
        self.made().is_some()
    }

    /// A free place for a new message, or `None` when the window is full.
    #[inline]
    pub(crate) fn reserve(&self) -> Option<u32> {
        self.table().free.pop()
    }

    /// Gives back a place reserved for a message that did not come.
    #[inline]
    pub(crate) fn unreserve(&self, place: u32) {
        self.release(place);
    }

    /// Counts a receive that found the window full while messages were queued.
    pub(crate) fn count_window_full(&self) {
        self.counts.window_full.fetch_add(1, Ordering::Relaxed);
    }

    /// A receiver starts or stops waiting on a full window (the `stalled_receivers` gauge).
    pub(crate) fn set_stalled(&self, stalled: bool) {
        if stalled {
            self.stalled.fetch_add(1, Ordering::Relaxed);
        } else {
            self.stalled.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Hands out `message` as the first attempt on the reserved `place`.
    #[inline]
    pub(crate) fn begin(&self, place: u32, message: Message, receiver: u64, now: u64) -> Attempt {
        let deadline = self.after(now, self.options.ack_wait);
        let attempt = {
            let mut p = self.place(place);
            p.attempt += 1;
            p.state = State::Out {
                message: message.clone(),
                deliveries: 1,
                deadline,
                receiver,
            };
            p.attempt
        };
        self.note_due(deadline);
        Attempt {
            place,
            attempt,
            deliveries: 1,
            message,
        }
    }

    /// Whether a message waits to be delivered again.
    #[inline]
    pub(crate) fn has_redeliveries(&self) -> bool {
        self.made().is_some_and(|t| !t.redeliver.is_empty())
    }

    /// The next message due for another delivery, as a new attempt for `receiver`.
    pub(crate) fn redeliver(&self, receiver: u64, now: u64) -> Option<Attempt> {
        let table = self.made()?;
        while let Some(place) = table.redeliver.pop() {
            let mut p = self.place(place);
            let State::Waiting {
                message,
                deliveries,
                not_before: 0,
                ..
            } = &p.state
            else {
                // Emptied since (the subscription ended): nothing to deliver.
                continue;
            };
            let (message, deliveries) = (message.clone(), deliveries + 1);
            let deadline = self.after(now, self.options.ack_wait);
            p.attempt += 1;
            p.state = State::Out {
                message: message.clone(),
                deliveries,
                deadline,
                receiver,
            };
            let attempt = p.attempt;
            drop(p);
            self.note_due(deadline);
            self.counts.redelivered.fetch_add(1, Ordering::Relaxed);
            return Some(Attempt {
                place,
                attempt,
                deliveries,
                message,
            });
        }
        None
    }

    /// Settles attempt `attempt` on `place`.
    #[inline]
    pub(crate) fn settle(
        &self,
        place: u32,
        attempt: u64,
        how: Settle,
        now: u64,
    ) -> Result<Settled, AckError> {
        let Some(slot) = self.made().and_then(|t| t.places.get(place as usize)) else {
            return Err(self.refuse(AckError::Stale));
        };
        let mut p = slot.lock().unwrap_or_else(|e| e.into_inner());
        if p.attempt != attempt {
            drop(p);
            return Err(self.refuse(AckError::Stale));
        }
        let ended = match &mut p.state {
            State::Out { deadline, .. } if how == Settle::InProgress => {
                *deadline = self.after(now, self.options.ack_wait);
                return Ok(Settled::Kept);
            }
            State::Out { .. } => match how {
                Settle::Ack => AttemptEnd::Acked,
                Settle::Nack(_) => AttemptEnd::Nacked,
                Settle::Term => AttemptEnd::DeadLettered,
                Settle::InProgress => unreachable!("handled above"),
            },
            State::Free { ended } | State::Waiting { ended, .. } => {
                let ended = *ended;
                drop(p);
                return Err(self.refuse(AckError::Ended(ended)));
            }
        };
        let State::Out {
            message,
            deliveries,
            ..
        } = std::mem::replace(&mut p.state, State::Free { ended })
        else {
            unreachable!("matched Out above")
        };
        match how {
            Settle::Ack => {
                drop(p);
                self.release(place);
                // Counted once, by the caller, as the subscription's `delivered`.
                Ok(Settled::Acked)
            }
            Settle::Term => {
                drop(p);
                self.release(place);
                self.counts.terminated.fetch_add(1, Ordering::Relaxed);
                Ok(Settled::Dead(message, DropReason::Rejected))
            }
            Settle::Nack(delay) => {
                self.counts.nacked.fetch_add(1, Ordering::Relaxed);
                let due = if delay.is_zero() {
                    0
                } else {
                    self.after(now, delay)
                };
                Ok(self.again(place, p, message, deliveries, due, AttemptEnd::Nacked))
            }
            Settle::InProgress => unreachable!("handled above"),
        }
    }

    /// Puts an attempt that ended without an ack back for another delivery (at `due`, 0 for at once),
    /// or out of the table when it was the last allowed delivery. Takes the place's guard.
    fn again(
        &self,
        place: u32,
        mut p: MutexGuard<'_, Place>,
        message: Message,
        deliveries: u32,
        due: u64,
        ended: AttemptEnd,
    ) -> Settled {
        if self
            .options
            .max_deliveries
            .is_some_and(|max| deliveries >= max)
        {
            p.state = State::Free {
                ended: AttemptEnd::DeadLettered,
            };
            drop(p);
            self.release(place);
            self.counts.dead_lettered.fetch_add(1, Ordering::Relaxed);
            return Settled::Dead(message, DropReason::MaxDeliveries);
        }
        p.state = State::Waiting {
            message,
            deliveries,
            not_before: due,
            ended,
        };
        drop(p);
        if due == 0 {
            let _ = self.table().redeliver.push(place);
        } else {
            self.note_due(due);
        }
        Settled::Kept
    }

    #[inline]
    fn release(&self, place: u32) {
        let _ = self.table().free.push(place);
    }

    /// Counts a refusal and returns it.
    pub(crate) fn refuse(&self, error: AckError) -> AckError {
        self.counts.refused[error.index()].fetch_add(1, Ordering::Relaxed);
        error
    }

    /// Hands back every attempt `receiver` holds, for delivery to the others at once. Each message past
    /// its last allowed delivery goes to `dead`. Returns how many were handed back or dead-lettered.
    pub(crate) fn hand_back(
        &self,
        receiver: u64,
        mut dead: impl FnMut(Message, DropReason),
    ) -> usize {
        let mut n = 0;
        for place in 0..self.places_made() {
            let p = self.place(place);
            if !matches!(p.state, State::Out { receiver: r, .. } if r == receiver) {
                continue;
            }
            n += 1;
            if let Settled::Dead(m, reason) = self.end_out(place, p, 0, AttemptEnd::HandedBack) {
                dead(m, reason);
            }
        }
        n
    }

    /// Hands back one attempt (its delivery was dropped unsettled). `false` if it had already ended.
    pub(crate) fn hand_back_one(
        &self,
        place: u32,
        attempt: u64,
        mut dead: impl FnMut(Message, DropReason),
    ) -> bool {
        let p = self.place(place);
        if p.attempt != attempt || !matches!(p.state, State::Out { .. }) {
            return false;
        }
        if let Settled::Dead(m, reason) = self.end_out(place, p, 0, AttemptEnd::HandedBack) {
            dead(m, reason);
        }
        true
    }

    /// Ends an `Out` attempt without an ack: expiry or hand-back.
    fn end_out(
        &self,
        place: u32,
        mut p: MutexGuard<'_, Place>,
        due: u64,
        ended: AttemptEnd,
    ) -> Settled {
        let State::Out {
            message,
            deliveries,
            ..
        } = std::mem::replace(&mut p.state, State::Free { ended })
        else {
            return Settled::Kept;
        };
        let counter = match ended {
            AttemptEnd::Expired => &self.counts.expired,
            _ => &self.counts.handed_back,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        self.again(place, p, message, deliveries, due, ended)
    }

    /// Redelivers what passed its deadline and queues what finished its nack delay, if anything is due
    /// by `now`. One sweeper at a time; the others go on at once.
    #[inline]
    pub(crate) fn sweep_if_due(&self, now: u64, dead: impl FnMut(Message, DropReason)) {
        if now >= self.next_due.load(Ordering::Acquire) {
            self.sweep(now, dead);
        }
    }

    #[cold]
    fn sweep(&self, now: u64, mut dead: impl FnMut(Message, DropReason)) {
        if self.sweeping.swap(true, Ordering::Acquire) {
            return;
        }
        // Reset first, then scan: a place written after the scan passed it notes its own deadline
        // after this store, so nothing due is forgotten.
        self.next_due.store(u64::MAX, Ordering::Release);
        let mut earliest = u64::MAX;
        for place in 0..self.places_made() {
            let mut p = self.place(place);
            match &mut p.state {
                State::Out { deadline, .. } if *deadline <= now => {
                    if let Settled::Dead(m, reason) = self.end_out(place, p, 0, AttemptEnd::Expired)
                    {
                        dead(m, reason);
                    }
                }
                State::Out { deadline, .. } => earliest = earliest.min(*deadline),
                State::Waiting { not_before, .. } if *not_before != 0 && *not_before <= now => {
                    *not_before = 0;
                    drop(p);
                    let _ = self.table().redeliver.push(place);
                }
                State::Waiting { not_before, .. } if *not_before != 0 => {
                    earliest = earliest.min(*not_before)
                }
                _ => {}
            }
        }
        self.note_due(earliest);
        self.sweeping.store(false, Ordering::Release);
    }

    /// Empties the table (the subscription ended): each message still in flight goes to `dead` as
    /// `unsubscribed`.
    pub(crate) fn drain(&self, mut dead: impl FnMut(Message, DropReason)) -> u64 {
        let mut n = 0;
        for place in 0..self.places_made() {
            let mut p = self.place(place);
            let state = std::mem::replace(
                &mut p.state,
                State::Free {
                    ended: AttemptEnd::Unsubscribed,
                },
            );
            match state {
                State::Out { message, .. } | State::Waiting { message, .. } => {
                    drop(p);
                    self.release(place);
                    dead(message, DropReason::Unsubscribed);
                    n += 1;
                }
                free @ State::Free { .. } => p.state = free,
            }
        }
        n
    }

    /// Messages in flight now: handed out, or waiting to be handed out again.
    pub(crate) fn in_flight(&self) -> u64 {
        self.made()
            .map_or(0, |t| (t.places.len() - t.free.len()) as u64)
    }

    /// The places made so far: the window once a receive made them, none before.
    fn places_made(&self) -> u32 {
        self.made().map_or(0, |t| t.places.len() as u32)
    }

    /// The settings and counters, for stats; `acked` is the subscription's `delivered`.
    pub(crate) fn stats(&self, acked: u64) -> AckStats {
        let c = &self.counts;
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        AckStats {
            max_in_flight: u64::from(self.options.max_in_flight),
            ack_wait_ms: u64::try_from(self.options.ack_wait.as_millis()).unwrap_or(u64::MAX),
            max_deliveries: self.options.max_deliveries,
            in_flight: self.in_flight(),
            waiting: self.made().map_or(0, |t| t.redeliver.len() as u64),
            acked,
            nacked: load(&c.nacked),
            expired: load(&c.expired),
            handed_back: load(&c.handed_back),
            redelivered: load(&c.redelivered),
            terminated: load(&c.terminated),
            dead_lettered: load(&c.dead_lettered),
            window_full: load(&c.window_full),
            stalled_receivers: u64::from(self.stalled.load(Ordering::Relaxed)),
            refused: AckRefusals {
                ended: load(&c.refused[0]),
                stale: load(&c.refused[1]),
                wrong_subscription: load(&c.refused[2]),
                closed: load(&c.refused[3]),
            },
        }
    }
}
