//! The shared state of one subscription: its filter, queue, counters and options, which the routing
//! table points at and every receiver handle shares.

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use crate::features::ack::in_flight::{Attempt, InFlight};
use crate::features::ack::options::AckOptions;
use crate::features::dead_letter::DeadLetterQueue;
use crate::features::join::JoinState;
use crate::features::join::{DoneError, JoinError};
use crate::features::replay_log::cursor::ReplayCursor;
use crate::id::SubscriptionId;
use crate::message::Message;
use crate::message::reason::DropReason;
use crate::queue::bytes::ByteBounds;
use crate::queue::lanes::Lanes;
use crate::queue::policy::{AtomicPolicy, OverflowPolicy};
use crate::queue::ready::{AlreadyAttached, ReadyMark, ReadySignal};
use crate::stats::counters::{LiveCounts, RouteShare, SubscriptionCounters};
use crate::stats::features::AckStats;
use crate::stats::snapshot::{SubscriptionCounts, SubscriptionStats};
use crate::sync::barrier;
use crate::sync::waiters::Waiters;
use crate::sync::{AtomicBool, AtomicU32, Ordering};
use crate::topic::Filter;

use super::error::TryAckRecvError;
use super::options::SubscriptionOptions;

/// What a receive of an acknowledged subscription found.
#[derive(Debug)]
pub(super) enum AckTake {
    Got(Attempt),
    Empty,
    WindowFull,
    Closed,
}

impl AckTake {
    /// The attempt, or why there was none, as the receiver reports it.
    #[inline]
    pub(super) fn into_result(self) -> Result<Attempt, TryAckRecvError> {
        match self {
            AckTake::Got(attempt) => Ok(attempt),
            AckTake::Empty => Err(TryAckRecvError::Empty),
            AckTake::WindowFull => Err(TryAckRecvError::WindowFull),
            AckTake::Closed => Err(TryAckRecvError::Closed),
        }
    }
}

/// The shared state of one subscription: what the routing table points at.
pub(crate) struct SubscriptionCore {
    pub(crate) id: SubscriptionId,
    pub(crate) name: Arc<str>,
    pub(crate) filter: Filter,
    pub(super) lanes: Lanes,
    pub(crate) counters: SubscriptionCounters,
    pub(super) policy: AtomicPolicy,
    pub(super) closed: AtomicBool,
    /// Receiver handles. 32 bits, which leaves room beside it for `handle_matched`'s pointer.
    pub(super) receivers: AtomicU32,
    /// What the publisher handles that route here matched (see [`RouteShare`]); allocated by the
    /// first.
    pub(super) handle_matched: once_cell::race::OnceBox<LiveCounts<RouteShare>>,
    pub(super) not_empty: Waiters,
    pub(super) not_full: Waiters,
    /// `Some` for joinable subscriptions only, so the plain path checks a plain field.
    pub(super) join: Option<Box<JoinState>>,
    /// `Some` for byte-bounded subscriptions only.
    pub(super) bytes: Option<Box<ByteBounds>>,
    /// `Some` for acknowledged subscriptions only: the messages handed out and not yet settled.
    pub(super) in_flight: Option<Box<InFlight>>,
    /// The broker's dead-letter queue, when it has one.
    pub(super) dead_letters: Option<Arc<DeadLetterQueue>>,
    /// Notified after every push, for threads that wait on many subscriptions. Set at most once: at
    /// creation ([`SubscriptionOptions::ready_signal`]) or later ([`Subscription::attach_ready_signal`],
    /// for a subscription made elsewhere, such as a restored durable one).
    pub(super) ready_signal: OnceLock<(Arc<ReadySignal>, Arc<ReadyMark>)>,
    /// Outlives its receivers; saved in state files.
    pub(crate) durable: bool,
    /// Its `Normal` lane's slots were allocated with it ([`SubscriptionOptions::preallocate`]); saved
    /// in state files.
    pub(crate) preallocated: bool,
    /// A start from the broker's replay log, read before the queue (see `super::replay`); set once,
    /// before the subscription is routable.
    pub(super) replay: once_cell::race::OnceBox<ReplayCursor>,
}

impl fmt::Debug for SubscriptionCore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SubscriptionCore")
            .field("id", &self.id)
            .field("filter", &self.filter)
            .finish_non_exhaustive()
    }
}

impl SubscriptionCore {
    pub(crate) fn new(
        id: SubscriptionId,
        filter: Filter,
        options: &SubscriptionOptions,
        dead_letters: Option<Arc<DeadLetterQueue>>,
    ) -> Self {
        let name = match &options.name {
            Some(n) => Arc::from(n.as_str()),
            None => Arc::from(format!("s{id}")),
        };
        Self {
            id,
            name,
            filter,
            lanes: Lanes::new(options.capacity, options.preallocate),
            counters: SubscriptionCounters::default(),
            policy: AtomicPolicy::new(options.policy),
            closed: AtomicBool::new(false),
            receivers: AtomicU32::new(0),
            handle_matched: once_cell::race::OnceBox::new(),
            not_empty: Waiters::with_spin(options.spin),
            not_full: Waiters::default(),
            join: options.joinable.then(Box::default),
            bytes: ByteBounds::new(options.max_bytes, options.byte_budget.clone()),
            in_flight: options.ack.map(|ack| Box::new(InFlight::new(ack))),
            dead_letters,
            ready_signal: match &options.ready_signal {
                Some(signal) => OnceLock::from((
                    signal.clone(),
                    ReadySignal::mark_for(options.ready_key.unwrap_or(id)),
                )),
                None => OnceLock::new(),
            },
            durable: options.durable,
            preallocated: options.preallocate,
            replay: once_cell::race::OnceBox::new(),
        }
    }

    /// Counts `msg` dropped for `reason`; it is no longer unfinished work, and it goes to the broker's
    /// dead-letter queue if there is one.
    #[cold]
    pub(super) fn drop_message(&self, msg: &Message, reason: DropReason) {
        self.counters.add_dropped(reason, msg.priority(), 1);
        msg.note_dropped(reason);
        self.abandon(1);
        if let Some(dlq) = &self.dead_letters {
            dlq.offer(msg, self.id, &self.name, reason);
        }
    }

    /// `n` messages counted as unfinished will never be processed.
    #[inline]
    pub(super) fn abandon(&self, n: u64) {
        if let Some(join) = &self.join {
            join.abandon(n);
        }
    }

    /// Pops the highest-priority message, giving its bytes back to the byte bounds.
    #[inline]
    fn pop(&self) -> Option<Message> {
        let msg = self.lanes.pop()?;
        self.release_bytes(&msg);
        Some(msg)
    }

    /// `msg` left the queue (or was refused after it was charged): its bytes are free again.
    #[inline]
    pub(super) fn release_bytes(&self, msg: &Message) {
        if let Some(bytes) = &self.bytes {
            bytes.release(msg.payload().len() as u64);
        }
    }

    /// Charges `msg`'s bytes to the byte bounds before it is queued; `false` when they do not fit.
    #[inline]
    pub(super) fn charge_bytes(&self, msg: &Message) -> bool {
        self.bytes
            .as_ref()
            .is_none_or(|bytes| bytes.charge(msg.payload().len() as u64))
    }

    /// Takes the highest-priority message and counts it delivered. Receiver side.
    #[inline]
    pub(super) fn take(&self) -> Option<Message> {
        let msg = match self.take_replayed() {
            Some(msg) => msg,
            None => self.pop()?,
        };
        self.settle_taken(std::slice::from_ref(&msg)).then_some(msg)
    }

    /// Takes up to `max` messages into `out` as one receive: one count and one wake-up of `Block`
    /// publishers for them all. Returns how many were appended.
    pub(super) fn take_into(&self, out: &mut Vec<Message>, max: usize) -> usize {
        let start = out.len();
        self.take_replayed_into(out, max);
        while out.len() - start < max {
            match self.pop() {
                Some(msg) => out.push(msg),
                None => break,
            }
        }
        if self.settle_taken(&out[start..]) {
            out.len() - start
        } else {
            out.truncate(start);
            0
        }
    }

    /// The bookkeeping of messages a receive just popped, written once for every receive. A publisher
    /// that loaded the table before the unsubscribe can still slip a message in after the drain;
    /// receivers of a closed subscription never get such a message: it is counted as dropped
    /// (`unsubscribed`) and `false` is returned. Otherwise the messages count as delivered and as many
    /// `Block` publishers are woken.
    fn settle_taken(&self, taken: &[Message]) -> bool {
        if taken.is_empty() {
            return true;
        }
        if self.is_closed() {
            for msg in taken {
                self.drop_message(msg, DropReason::Unsubscribed);
            }
            return false;
        }
        self.counters.add_delivered(taken.len() as u64);
        if self.policy.is_block() {
            self.not_full.notify(taken.len());
        }
        true
    }

    /// Takes a message for `receiver` of an acknowledged subscription: one due for another delivery
    /// first, else a new one if the window has room. Receiver side.
    ///
    /// A new message is counted in the books as in flight (the window's place is taken before the
    /// pop) and as delivered only when it is acked.
    ///
    /// `polling`: the receiver found nothing a moment ago and is looking again (its wait loop), so
    /// the queue is likely empty (see below).
    #[inline]
    pub(super) fn take_acked(&self, in_flight: &InFlight, receiver: u64, polling: bool) -> AckTake {
        let now = in_flight.now();
        in_flight.sweep_if_due(now, |m, reason| self.drop_message(&m, reason));
        let (got, from_queue) = self.take_one_acked(in_flight, receiver, polling, now);
        if from_queue && self.policy.is_block() {
            self.not_full.notify(1);
        }
        got
    }

    /// [`Self::take_acked`] for up to `max` messages, each handed to `got`, redeliveries first: one
    /// clock read and one look at the deadlines for the batch, and one wake-up call for the `Block`
    /// publishers its new messages made room for. Returns how many it took and why it stopped
    /// (`None` when it took `max`): the end of a batch is where a receiver learns that the queue
    /// ran empty or the window filled.
    pub(super) fn take_acked_into(
        &self,
        in_flight: &InFlight,
        receiver: u64,
        max: usize,
        mut got: impl FnMut(Attempt),
    ) -> (usize, Option<TryAckRecvError>) {
        let now = in_flight.now();
        in_flight.sweep_if_due(now, |m, reason| self.drop_message(&m, reason));
        let (mut taken, mut new, mut stopped) = (0, 0, None);
        while taken < max {
            let (take, from_queue) = self.take_one_acked(in_flight, receiver, false, now);
            match take.into_result() {
                Ok(attempt) => {
                    got(attempt);
                    taken += 1;
                    new += usize::from(from_queue);
                }
                Err(why) => {
                    stopped = Some(why);
                    break;
                }
            }
        }
        if new > 0 && self.policy.is_block() {
            self.not_full.notify(new);
        }
        (taken, stopped)
    }

    /// One message for `receiver`: one due for another delivery first, else a new one from the queue
    /// (then `true`: it made room in the queue, for the caller to wake a `Block` publisher).
    #[inline]
    fn take_one_acked(
        &self,
        in_flight: &InFlight,
        receiver: u64,
        polling: bool,
        now: u64,
    ) -> (AckTake, bool) {
        if in_flight.has_redeliveries() {
            if let Some(attempt) = in_flight.redeliver(receiver, now) {
                return (AckTake::Got(attempt), false);
            }
        }
        let got = self.take_new_acked(in_flight, receiver, polling, now);
        let from_queue = matches!(got, AckTake::Got(_));
        (got, from_queue)
    }

    /// A new message from the queue onto a free place of the window (the caller wakes `Block`
    /// publishers for the room it made).
    #[inline]
    fn take_new_acked(
        &self,
        in_flight: &InFlight,
        receiver: u64,
        polling: bool,
        now: u64,
    ) -> AckTake {
        // A receiver polling for its next message asks whether the queue is empty before it
        // reserves a place: reserving first writes the window's shared free list twice (take a
        // place, give it back) on every look that finds nothing, and competing receivers polling
        // did that on every poll, on the lines the receiver that got a message needs. A first look
        // reserves first: under load the message is there, and reading the queue's ends just
        // before the pop writes them would fetch each of those lines twice (through the binary,
        // four competing receivers ran at 0.92x [0.45-1.23] with the check on every look). Before
        // the first message nothing is in flight, and reserving would make the table (about 6 KB
        // at the default window) for a receive that takes nothing (an idle receiver polling, an
        // MQTT session's first look).
        if (polling || !in_flight.is_made()) && self.lanes.len() == 0 && !self.replay_pending() {
            return self.empty_or_closed();
        }
        let Some(place) = in_flight.reserve() else {
            if self.lanes.len() > 0 || self.replay_pending() {
                in_flight.count_window_full();
                return AckTake::WindowFull;
            }
            return self.empty_or_closed();
        };
        let Some(msg) = self.take_replayed().or_else(|| self.pop()) else {
            in_flight.unreserve(place);
            return self.empty_or_closed();
        };
        if self.is_closed() {
            in_flight.unreserve(place);
            self.drop_message(&msg, DropReason::Unsubscribed);
            return AckTake::Closed;
        }
        AckTake::Got(in_flight.begin(place, msg, receiver, now))
    }

    fn empty_or_closed(&self) -> AckTake {
        if self.is_closed() {
            AckTake::Closed
        } else {
            AckTake::Empty
        }
    }

    /// Whether this is an acknowledged subscription.
    pub(crate) fn is_acked(&self) -> bool {
        self.in_flight.is_some()
    }

    /// The acknowledgement settings, for acknowledged subscriptions.
    pub(crate) fn ack_options(&self) -> Option<AckOptions> {
        self.in_flight().map(|f| *f.options())
    }

    /// The in-flight table, for acknowledged subscriptions.
    pub(super) fn in_flight(&self) -> Option<&InFlight> {
        self.in_flight.as_deref()
    }

    /// Marks the subscription closed and wakes everyone waiting on it. Returns `false` if it already was.
    pub(crate) fn close(&self) -> bool {
        let first = !self.closed.swap(true, Ordering::AcqRel);
        self.not_empty.notify_all();
        self.not_full.notify_all();
        if let Some(in_flight) = self.in_flight() {
            in_flight.window().notify_all();
        }
        if let Some((signal, mark)) = self.ready_signal.get() {
            signal.notify_closed(mark);
        }
        first
    }

    /// Attaches `signal` after creation. Whatever is already queued (or a close that already happened)
    /// puts the subscription on the list at once, so nothing waits for a next message to be noticed.
    pub(super) fn attach_ready_signal(
        &self,
        signal: &Arc<ReadySignal>,
        key: u64,
    ) -> Result<(), AlreadyAttached> {
        self.ready_signal
            .set((signal.clone(), ReadySignal::mark_for(key)))
            .map_err(|_| AlreadyAttached)?;
        let (signal, mark) = self.ready_signal.get().ok_or(AlreadyAttached)?;
        // A publisher fences after its push only when it sees a signal (`notify_receivers`); one that
        // looked before the signal was set made only the light half of the parking handshake. So
        // this is the heavy half (`crate::sync::barrier`): either such a publisher's push is visible to
        // the check below, or its look at the signal comes after the barrier and sees it.
        barrier::heavy();
        if self.is_closed() {
            signal.notify_closed(mark);
        } else if self.lanes.len() > 0 {
            signal.notify(mark);
        }
        Ok(())
    }

    /// Lets go of this subscription on its holding ready list (see [`ReadySignal::holding`]);
    /// whether the caller holds it still (a message came meanwhile). False without a signal.
    pub(crate) fn release_ready(&self) -> bool {
        self.ready_signal
            .get()
            .is_some_and(|(signal, mark)| signal.release(mark, || self.lanes.len() > 0))
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Empties the queue and the in-flight table, counting each message dropped as `unsubscribed`.
    /// Control side, after close.
    pub(crate) fn drain_unsubscribed(&self) -> u64 {
        let mut n = 0;
        while let Some(msg) = self.pop() {
            self.drop_message(&msg, DropReason::Unsubscribed);
            n += 1;
        }
        if let Some(in_flight) = self.in_flight() {
            n += in_flight.drain(|msg, reason| self.drop_message(&msg, reason));
        }
        n
    }

    pub(crate) fn is_joinable(&self) -> bool {
        self.join.is_some()
    }

    /// Acknowledges one processed message. See [`SubscriptionOptions::joinable`](crate::SubscriptionOptions::joinable).
    pub(crate) fn done(&self) -> Result<(), DoneError> {
        let join = self.join.as_ref().ok_or(DoneError::NotJoinable(self.id))?;
        join.done(self.id, || self.counters.delivered())
    }

    /// Waits until nothing is unfinished, or until `deadline`.
    pub(crate) fn join_until(&self, deadline: Option<Instant>) -> Result<(), JoinError> {
        let join = self.join.as_ref().ok_or(JoinError::NotJoinable(self.id))?;
        join.wait_idle(self.id, deadline)
    }

    pub(crate) fn set_policy(&self, policy: OverflowPolicy) {
        self.policy.store(policy);
        // Publishers blocked under the old policy re-read it when woken.
        self.not_full.notify_all();
    }

    pub(crate) fn policy(&self) -> OverflowPolicy {
        self.policy.load()
    }

    pub(crate) fn receivers(&self) -> usize {
        self.receivers.load(Ordering::Relaxed) as usize
    }

    /// Capacity of each lane.
    pub(crate) fn capacity(&self) -> usize {
        self.lanes.capacity()
    }

    pub(crate) fn len(&self) -> usize {
        self.lanes.len()
    }

    /// The counters that cost nothing to read (see [`StatsQuery`](crate::StatsQuery)); raises `high_water` to
    /// the depth read, as [`SubscriptionCore::stats`] does.
    pub(crate) fn counts(&self) -> SubscriptionCounts {
        let depth = self.len() as u64;
        self.counters.raise_high_water(depth);
        SubscriptionCounts {
            id: self.id,
            matched: self.matched(),
            delivered: self.counters.delivered(),
            dropped: self.counters.dropped_total(),
            depth,
            in_flight: self.in_flight().map_or(0, InFlight::in_flight),
            capacity: self.capacity() as u64,
        }
    }

    /// An acknowledged subscription's settings and counters now; `None` for a plain one.
    pub(crate) fn ack_stats(&self) -> Option<AckStats> {
        self.in_flight().map(|f| f.stats(self.counters.delivered()))
    }

    pub(crate) fn stats(&self) -> SubscriptionStats {
        let depth_by_priority = self.lanes.len_by_priority();
        let depth = depth_by_priority.total();
        self.counters.raise_high_water(depth);
        let dropped_by_reason = self.counters.dropped_by_reason();
        SubscriptionStats {
            id: self.id,
            name: self.name.to_string(),
            filter: self.filter.to_string(),
            policy: self.policy().name().to_string(),
            capacity: self.capacity() as u64,
            matched: self.matched(),
            delivered: self.counters.delivered(),
            dropped: dropped_by_reason.total(),
            dropped_by_reason,
            dropped_by_priority: self.counters.dropped_by_priority(),
            depth,
            depth_by_priority,
            high_water: self.counters.high_water(),
            receivers: self.receivers() as u64,
            unfinished: self.join.as_ref().map(|j| j.unfinished()),
            durable: self.durable,
            in_flight: self.in_flight().map_or(0, InFlight::in_flight),
            queued_bytes: self.bytes.as_ref().map(|b| b.queued()),
            max_bytes: self.bytes.as_ref().and_then(|b| b.max_bytes()),
            ack: self.ack_stats(),
            replay: self.replay_stats(),
        }
    }
}
