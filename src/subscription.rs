//! Subscriptions: a filter, a bounded lock-free queue, its counters, and the handles receivers hold.
//!
//! # Queue
//! Each subscription owns a bounded lock-free MPMC queue of [`Message`]s per priority (a lane, see
//! [`crate::priority`], `crate::lane`). Any number of publishers push and any number of receivers pop
//! without a lock. Nothing is allocated for a queue until its first message: up to a capacity of 1,024
//! it is then crossbeam's `ArrayQueue`, every slot at once; above that crossbeam's `SegQueue` with an
//! atomic bound, whose blocks of 31 slots are allocated as it fills and freed as it drains. An idle
//! subscription therefore costs the same whatever its capacity (see the README's memory figures).
//!
//! # Receivers: fan-out and competing consumers
//! Different subscriptions each get their own copy of a message (a reference-count increment, never a
//! copy of the payload). Clones of one [`Subscription`] handle share its queue: each message goes to
//! exactly one of them, which makes a work queue. Dropping the last handle unsubscribes; what was still
//! queued is counted as dropped (`unsubscribed`).
//!
//! # Waiting
//! Empty-queue receivers park instead of spinning: `recv` blocks the thread and `recv_async` awaits,
//! both through `crate::waiters::Waiters` (an `event_listener::Event` behind a count of waiters).
//! The receiver registers *then* checks the queue again, and the publisher pushes *then* checks for
//! waiters, with a `SeqCst` fence on each side, so a push can never fall between the check and the
//! park (the fences are asymmetric, see `src/barrier.rs`). A publisher pays one load, and a compiler
//! fence where Linux's `membarrier` is available, when nobody is parked: no lock, no system call.
//! `Block` publishers spin briefly (crossbeam's `Backoff`) before they park on the `not_full` side.
//!
//! # Gaps
//! A receiver learns in-band that messages were dropped since it last received: each [`Delivery`] carries
//! [`Delivery::missed`], `Some` with the count per reason when drops happened since this handle's
//! previous receive. Checking costs one load of the counters' line, which the receive has just written
//! (`delivered`). Unlike an error variant, it cannot be skipped by a `while let Ok(..)` loop.

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crossbeam_utils::Backoff;

use crate::barrier;
use crate::counters::{
    DropReason, DroppedByReason, GapTracker, HIGH_WATER_SAMPLE_EVERY, LiveCounts, OwnCount,
    SubscriptionCounters,
};
use crate::dead_letter::DeadLetterQueue;
use crate::join::JoinState;
pub use crate::join::{DoneError, JoinError};
use crate::lane::LaneRef;
use crate::message::Message;
use crate::policy::{AtomicPolicy, OverflowPolicy};
use crate::priority::{Lanes, Priority};
use crate::ready::{AlreadyAttached, ReadyMark, ReadySignal};
use crate::stats::{SubscriptionCounts, SubscriptionStats};
use crate::sync::{AtomicBool, AtomicU32, Ordering, fence};
use crate::topic::Filter;
use crate::waiters::Waiters;

/// Identifies a subscription within its broker. Ids are never reused.
pub type SubscriptionId = u64;

/// How a subscription is set up. Build with [`SubscriptionOptions::new`] and the setters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionOptions {
    /// Queue capacity in messages (non-zero, at most [`SubscriptionOptions::MAX_CAPACITY`]).
    /// This is how far *this* subscription may fall behind, not a broker-wide total.
    pub capacity: usize,
    /// What happens when the queue is full.
    pub policy: OverflowPolicy,
    /// A name shown in stats; `s<id>` when `None`.
    pub name: Option<String>,
    /// Keep the subscription when its last receiver is dropped, and include it in saved state. Needs a
    /// name. See [`crate::durable`].
    pub durable: bool,
    /// Receive the retained messages that match the filter first (see [`crate::retained`]).
    pub receive_retained: bool,
    /// Count unfinished messages so publishers can [`Subscription::join`]; receivers acknowledge with
    /// [`Subscription::done`]. See [`crate::join`].
    pub joinable: bool,
    /// Notified after every push into this subscription, so one thread can wait on many subscriptions
    /// (see [`crate::ready`]).
    pub ready_signal: Option<Arc<ReadySignal>>,
    /// What the ready signal hands out for this subscription: the caller's own key (an index into its
    /// table of subscriptions, say), or the subscription's id when `None`.
    pub ready_key: Option<u64>,
}

impl SubscriptionOptions {
    /// The default capacity: 256 messages. A queue allocates nothing until its first message; then, up
    /// to a capacity of 1,024, all its slots at once (16 bytes each: about 4 KiB at 256), and above
    /// that 16 bytes per message queued, in blocks allocated as it fills and freed as it drains.
    pub const DEFAULT_CAPACITY: usize = 256;
    /// The largest capacity accepted: 2^24 messages (256 MiB of slots when full).
    pub const MAX_CAPACITY: usize = 1 << 24;

    /// Default options: capacity 256, `DropNewest`, no name.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the queue capacity.
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity;
        self
    }

    /// Sets the overflow policy.
    pub fn policy(mut self, policy: OverflowPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Attaches a [`ReadySignal`], notified after every push into this subscription.
    pub fn ready_signal(mut self, signal: &Arc<ReadySignal>) -> Self {
        self.ready_signal = Some(signal.clone());
        self
    }

    /// Sets the key the [`ReadySignal`] hands out for this subscription (by default its id), so a
    /// consumer can find it by index instead of looking the id up.
    pub fn ready_key(mut self, key: u64) -> Self {
        self.ready_key = Some(key);
        self
    }

    /// Sets the name shown in stats.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Makes the subscription durable (see [`crate::durable`]); it must also have a name.
    pub fn durable(mut self, durable: bool) -> Self {
        self.durable = durable;
        self
    }

    /// Asks for the retained messages that match the filter, before live traffic.
    pub fn receive_retained(mut self, receive: bool) -> Self {
        self.receive_retained = receive;
        self
    }

    /// Makes the subscription joinable (see [`crate::join`]).
    pub fn joinable(mut self, joinable: bool) -> Self {
        self.joinable = joinable;
        self
    }
}

impl Default for SubscriptionOptions {
    fn default() -> Self {
        Self {
            capacity: Self::DEFAULT_CAPACITY,
            policy: OverflowPolicy::default(),
            name: None,
            durable: false,
            receive_retained: false,
            joinable: false,
            ready_signal: None,
            ready_key: None,
        }
    }
}

/// Whether an offer may wait for room under [`OverflowPolicy::Block`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wait {
    /// A publish: a `Block` subscription makes the publisher wait for room, up to its timeout.
    MayBlock,
    /// Replaying retained messages into a subscription nobody can receive from yet: a full lane
    /// refuses the message (`queue_full`) whatever the policy, since waiting could never end well.
    Never,
}

/// Where an offer counts its `matched`.
#[derive(Debug, Clone, Copy)]
pub(crate) enum MatchedBy<'a> {
    /// The subscription's shared counter: `Broker::publish` and friends.
    Shared,
    /// A publisher handle's own counter for this subscription.
    Handle(&'a OwnCount),
}

/// The outcome of offering one message to one subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Offer {
    /// Queued; nothing dropped.
    Queued,
    /// Queued, and an older message was evicted to make room.
    QueuedEvicting,
    /// Not queued; counted as dropped.
    Dropped,
}

/// What offering a batch of messages to one subscription did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Offered {
    /// Messages queued (including those that evicted an older one).
    pub(crate) queued: usize,
    /// Older messages evicted to make room under `DropOldest`.
    pub(crate) evicted: usize,
    /// Messages of the batch not queued; counted as dropped.
    pub(crate) dropped: usize,
}

impl Offered {
    #[inline]
    fn count(&mut self, offer: Offer) {
        match offer {
            Offer::Queued => self.queued += 1,
            Offer::QueuedEvicting => {
                self.queued += 1;
                self.evicted += 1;
            }
            Offer::Dropped => self.dropped += 1,
        }
    }

    /// The outcome of a batch of one.
    #[inline]
    fn as_single(self) -> Offer {
        if self.dropped > 0 {
            Offer::Dropped
        } else if self.evicted > 0 {
            Offer::QueuedEvicting
        } else {
            Offer::Queued
        }
    }
}

/// How many growing spins (crossbeam `Backoff::spin`: 1, 2, 4 .. 64 pause instructions) a `Block`
/// publisher with a short timeout tries before it parks.
const SPINS_BEFORE_PARKING: u32 = 7;

/// A `Block` publisher with at least this long left before its timeout also yields before parking.
const PATIENT_WAIT: Duration = Duration::from_millis(1);

/// The shared state of one subscription: what the routing table points at.
pub(crate) struct SubscriptionCore {
    pub(crate) id: SubscriptionId,
    pub(crate) name: Arc<str>,
    pub(crate) filter: Filter,
    lanes: Lanes,
    pub(crate) counters: SubscriptionCounters,
    policy: AtomicPolicy,
    closed: AtomicBool,
    /// Receiver handles. 32 bits, which leaves room beside it for `handle_matched`'s pointer.
    receivers: AtomicU32,
    /// The `matched` counts of the publisher handles that route here (see [`LiveCounts`]);
    /// allocated by the first.
    handle_matched: once_cell::race::OnceBox<LiveCounts<OwnCount>>,
    not_empty: Waiters,
    not_full: Waiters,
    /// `Some` for joinable subscriptions only, so the plain path checks a plain field.
    join: Option<Box<JoinState>>,
    /// The broker's dead-letter queue, when it has one.
    dead_letters: Option<Arc<DeadLetterQueue>>,
    /// Notified after every push, for threads that wait on many subscriptions. Set at most once: at
    /// creation ([`SubscriptionOptions::ready_signal`]) or later ([`Subscription::attach_ready_signal`],
    /// for a subscription made elsewhere, such as a restored durable one).
    ready_signal: OnceLock<(Arc<ReadySignal>, Arc<ReadyMark>)>,
    /// Outlives its receivers; saved in state files.
    pub(crate) durable: bool,
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
            lanes: Lanes::new(options.capacity),
            counters: SubscriptionCounters::default(),
            policy: AtomicPolicy::new(options.policy),
            closed: AtomicBool::new(false),
            receivers: AtomicU32::new(0),
            handle_matched: once_cell::race::OnceBox::new(),
            not_empty: Waiters::default(),
            not_full: Waiters::default(),
            join: options.joinable.then(Box::default),
            dead_letters,
            ready_signal: match &options.ready_signal {
                Some(signal) => OnceLock::from((
                    signal.clone(),
                    ReadySignal::mark_for(options.ready_key.unwrap_or(id)),
                )),
                None => OnceLock::new(),
            },
            durable: options.durable,
        }
    }

    /// Counts `msg` dropped for `reason`; it is no longer unfinished work, and it goes to the broker's
    /// dead-letter queue if there is one.
    #[cold]
    fn drop_message(&self, msg: &Message, reason: DropReason) {
        self.counters.add_dropped(reason, msg.priority(), 1);
        msg.note_dropped(reason);
        self.abandon(1);
        if let Some(dlq) = &self.dead_letters {
            dlq.offer(msg, self.id, &self.name, reason);
        }
    }

    /// `n` messages counted as unfinished will never be processed.
    #[inline]
    fn abandon(&self, n: u64) {
        if let Some(join) = &self.join {
            join.abandon(n);
        }
    }

    /// Counts `n` matched messages, in the shared counter or a publisher handle's own, and as many
    /// unfinished if the subscription is joinable. Returns the count before them.
    #[inline]
    fn count_matched(&self, n: u64, by: MatchedBy<'_>) -> u64 {
        if let Some(join) = &self.join {
            join.begin(n);
        }
        match by {
            MatchedBy::Shared => self.counters.add_matched(n),
            MatchedBy::Handle(counter) => counter.add(n),
        }
    }

    /// A publisher handle starts routing here: its own `matched` counter, counted in this
    /// subscription's `matched` until [`Self::fold_handle_matched`].
    pub(crate) fn register_handle_matched(&self) -> Arc<OwnCount> {
        self.handle_matched.get_or_init(Box::default).register()
    }

    /// A publisher handle lets the route go: its count joins the shared one as it leaves the list.
    pub(crate) fn fold_handle_matched(&self, counter: &Arc<OwnCount>) {
        self.handle_matched
            .get_or_init(Box::default)
            .fold(counter, |c| {
                self.counters.add_matched(c.get());
            });
    }

    /// Messages matched so far: the shared count plus the live publisher handles' own.
    pub(crate) fn matched(&self) -> u64 {
        match self.handle_matched.get() {
            None => self.counters.matched(),
            Some(handles) => handles.sum(|| self.counters.matched(), |sum, c| sum + c.get()),
        }
    }

    /// Offers `msg` to this subscription (a clone: the caller keeps its handle). Publisher side.
    #[inline]
    pub(crate) fn offer(&self, msg: &Message, wait: Wait) -> Offer {
        self.offer_owned(msg.clone(), wait)
    }

    /// Offers `msg`, taking the caller's handle (the last subscription of a route saves a
    /// reference-count increment and decrement on a cache line the receiver is about to read): a batch
    /// of one through [`Self::offer_all`].
    #[inline]
    pub(crate) fn offer_owned(&self, msg: Message, wait: Wait) -> Offer {
        self.offer_all(std::iter::once(msg), wait, MatchedBy::Shared)
            .as_single()
    }

    /// The one offer: queues `msgs` in order, each into the lane of its priority under the policy in
    /// force, then wakes receivers once. Publisher side.
    ///
    /// The policy decides a full lane: `DropNewest` refuses, `DropOldest` evicts, `Block` waits
    /// ([`Self::push_blocking`], which wakes receivers before it waits) unless `wait` is
    /// [`Wait::Never`], when it refuses like `DropNewest`. A batch counts its `matched` (and joinable
    /// `unfinished`) in one add before the first push, so `delivered + dropped <= matched` at every
    /// instant, and pays the receivers' wake-up check (a `SeqCst` fence) once.
    #[inline]
    pub(crate) fn offer_all(
        &self,
        msgs: impl ExactSizeIterator<Item = Message>,
        wait: Wait,
        by: MatchedBy<'_>,
    ) -> Offered {
        let n = msgs.len() as u64;
        let mut offered = Offered::default();
        if n == 0 {
            return offered;
        }
        let matched_before = self.count_matched(n, by);
        for msg in msgs {
            if self.closed.load(Ordering::Acquire) {
                self.drop_message(&msg, DropReason::Unsubscribed);
                offered.dropped += 1;
                continue;
            }
            let lane = self.lanes.for_push(msg.priority());
            let outcome = match (self.policy.load(), wait) {
                (OverflowPolicy::DropNewest, _) | (OverflowPolicy::Block { .. }, Wait::Never) => {
                    self.push_or_refuse(lane, msg)
                }
                (OverflowPolicy::DropOldest, _) => self.push_evicting(lane, msg),
                (OverflowPolicy::Block { .. }, Wait::MayBlock) => self.push_blocking(lane, msg),
            };
            offered.count(outcome);
        }
        if offered.queued == 0 {
            return offered;
        }
        // Sampled: reading the depth touches the receivers' lines (see `HIGH_WATER_SAMPLE_EVERY`).
        if matched_before / HIGH_WATER_SAMPLE_EVERY
            != (matched_before + n) / HIGH_WATER_SAMPLE_EVERY
        {
            self.counters.raise_high_water(self.lanes.len() as u64);
        }
        self.notify_receivers();
        offered
    }

    /// Queues `msg`, or refuses it as `queue_full` when the lane is full.
    #[inline]
    fn push_or_refuse(&self, lane: LaneRef<'_, Message>, msg: Message) -> Offer {
        match lane.push(msg) {
            Ok(()) => Offer::Queued,
            Err(msg) => {
                self.counters.raise_high_water(lane.capacity() as u64);
                self.drop_message(&msg, DropReason::QueueFull);
                Offer::Dropped
            }
        }
    }

    /// Queues `msg`, evicting the oldest message (`evicted`) when the lane is full.
    #[inline]
    fn push_evicting(&self, lane: LaneRef<'_, Message>, msg: Message) -> Offer {
        match lane.force_push(msg) {
            None => Offer::Queued,
            Some(evicted) => {
                self.counters.raise_high_water(lane.capacity() as u64);
                self.drop_message(&evicted, DropReason::Evicted);
                Offer::QueuedEvicting
            }
        }
    }

    /// Waits for room in `lane` while the policy is `Block`. Parks on `not_full`, which receivers notify
    /// while the policy is `Block`. Wakes at least every 10 ms to re-read the policy and the closed flag,
    /// so a policy change or an unsubscribe during the wait is honoured promptly even if no receiver runs.
    ///
    /// The deadline is the wait's start plus the timeout of the `Block` policy in force *now*: a
    /// [`Subscription::set_policy`] to another `Block` timeout applies to publishers already waiting
    /// (one whose new deadline has passed gives up at once, as `timeout`). The closed flag is checked
    /// before every push, so a publisher woken by an unsubscribe never queues into the closed
    /// subscription (its message is dropped as `unsubscribed`).
    fn push_blocking(&self, lane: LaneRef<'_, Message>, msg: Message) -> Offer {
        // Room now: the usual case, decided before reading the clock (a `clock_gettime` per publish
        // was a fifth of a single-threaded publish + receive).
        let mut msg = match lane.push(msg) {
            Ok(()) => return Offer::Queued,
            Err(back) => back,
        };
        // Receivers are woken once per batch, after its last push: one parked now must be woken
        // before this publisher waits for it to make room.
        self.notify_receivers();
        let started = Instant::now();
        let dropped = |msg: Message, reason| {
            self.drop_message(&msg, reason);
            Offer::Dropped
        };
        loop {
            if self.closed.load(Ordering::Acquire) {
                return dropped(msg, DropReason::Unsubscribed);
            }
            match lane.push(msg) {
                Ok(()) => return Offer::Queued,
                Err(back) => msg = back,
            }
            self.counters.raise_high_water(lane.capacity() as u64);
            let deadline = match self.policy.load() {
                OverflowPolicy::Block { timeout } => started.checked_add(timeout),
                OverflowPolicy::DropNewest => return dropped(msg, DropReason::QueueFull),
                OverflowPolicy::DropOldest => return self.push_evicting(lane, msg),
            };
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                return dropped(msg, DropReason::Timeout);
            }
            // A receiver usually makes room within microseconds: try again a few times before
            // parking, because parking costs both sides a system call per message. A publisher with a
            // long wait ahead also yields between tries (crossbeam's `Backoff::snooze`); one with a
            // timeout under a millisecond only spins, since a yield can outlast its whole timeout.
            let patient = deadline.is_none_or(|d| d.saturating_duration_since(now) >= PATIENT_WAIT);
            let backoff = Backoff::new();
            let mut spins = 0;
            loop {
                if patient {
                    if backoff.is_completed() {
                        break;
                    }
                    backoff.snooze();
                } else {
                    if spins == SPINS_BEFORE_PARKING {
                        break;
                    }
                    backoff.spin();
                    spins += 1;
                }
                if self.closed.load(Ordering::Acquire) {
                    return dropped(msg, DropReason::Unsubscribed);
                }
                match lane.push(msg) {
                    Ok(()) => return Offer::Queued,
                    Err(back) => msg = back,
                }
            }
            // Park until a receiver makes room, the subscription closes, or the slice ends; then go
            // round again to re-read the closed flag, the policy and the deadline.
            let slice = now + Duration::from_millis(10);
            let mut waiting = Some(msg);
            self.not_full
                .wait_for(Some(deadline.map_or(slice, |d| d.min(slice))), || {
                    if self.closed.load(Ordering::Acquire) {
                        return Some(());
                    }
                    match lane.push(waiting.take()?) {
                        Ok(()) => Some(()),
                        Err(back) => {
                            waiting = Some(back);
                            None
                        }
                    }
                });
            match waiting {
                None => return Offer::Queued,
                Some(back) => msg = back,
            }
        }
    }

    /// After a push: wakes a parked receiver, and the ready signal's waiter if there is a signal.
    #[inline]
    fn notify_receivers(&self) {
        // The ready list's handshake needs a `SeqCst` fence between the push and its flag check;
        // the receivers' wake-up check no longer fences on its own (see `crate::barrier`). A signal
        // attached later is covered by the attach's heavy barrier (`attach_ready_signal`).
        let ready = self.ready_signal.get();
        if ready.is_some() {
            fence(Ordering::SeqCst);
        }
        self.not_empty.notify_one();
        if let Some((signal, mark)) = ready {
            signal.notify(mark);
        }
    }

    /// Takes the highest-priority message and counts it delivered. Receiver side.
    #[inline]
    fn take(&self) -> Option<Message> {
        let msg = self.lanes.pop()?;
        if self.is_closed() {
            // A publisher that loaded the table before the unsubscribe can still slip a message in
            // after the drain; receivers of a closed subscription get `Closed`, never such a message.
            self.drop_message(&msg, DropReason::Unsubscribed);
            return None;
        }
        self.counters.add_delivered(1);
        if self.policy.is_block() {
            self.not_full.notify_one();
        }
        Some(msg)
    }

    /// Marks the subscription closed and wakes everyone waiting on it. Returns `false` if it already was.
    pub(crate) fn close(&self) -> bool {
        let first = !self.closed.swap(true, Ordering::AcqRel);
        self.not_empty.notify_all();
        self.not_full.notify_all();
        if let Some((signal, mark)) = self.ready_signal.get() {
            signal.notify_closed(mark);
        }
        first
    }

    /// Attaches `signal` after creation. Whatever is already queued (or a close that already happened)
    /// puts the subscription on the list at once, so nothing waits for a next message to be noticed.
    fn attach_ready_signal(
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
        // this is the heavy half (`crate::barrier`): either such a publisher's push is visible to
        // the check below, or its look at the signal comes after the barrier and sees it.
        barrier::heavy();
        if self.is_closed() {
            signal.notify_closed(mark);
        } else if self.lanes.len() > 0 {
            signal.notify(mark);
        }
        Ok(())
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Empties the queue, counting each message dropped as `unsubscribed`. Control side, after close.
    pub(crate) fn drain_unsubscribed(&self) -> u64 {
        let mut n = 0;
        while let Some(msg) = self.lanes.pop() {
            self.drop_message(&msg, DropReason::Unsubscribed);
            n += 1;
        }
        n
    }

    pub(crate) fn is_joinable(&self) -> bool {
        self.join.is_some()
    }

    /// Acknowledges one processed message. See [`crate::join`].
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

    /// The counters that cost nothing to read (see [`crate::stats_query`]); raises `high_water` to
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
            capacity: self.capacity() as u64,
        }
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
        }
    }
}

/// What routes messages to subscriptions and can take one out of routing: the broker. This is all a
/// subscription knows of it, so that modules depend downwards (the broker knows subscriptions, not the
/// other way round).
pub(crate) trait Retire: Send + Sync {
    /// Removes subscription `id`: out of routing, closed, drained. Returns whether it was live.
    fn retire(&self, id: SubscriptionId) -> bool;
}

/// What all clones of one [`Subscription`] share. Dropping it (the last handle) unsubscribes.
pub(crate) struct ReceiverGroup {
    pub(crate) core: Arc<SubscriptionCore>,
    broker: Arc<dyn Retire>,
}

impl Drop for ReceiverGroup {
    fn drop(&mut self) {
        if self.core.durable {
            // Durable subscriptions outlive their receivers; only an explicit unsubscribe ends them.
            return;
        }
        self.broker.retire(self.core.id);
    }
}

/// A message as one receiver got it, with any drops since that receiver's previous receive.
#[derive(Debug, Clone)]
pub struct Delivery {
    message: Message,
    /// Boxed: drops are rare, and a `Delivery` of two pointers comes back from a receive in
    /// registers where one carrying the five counts inline was copied through the stack.
    missed: Option<Box<DroppedByReason>>,
}

impl Delivery {
    /// The message.
    pub fn message(&self) -> &Message {
        &self.message
    }

    /// The message, by value.
    pub fn into_message(self) -> Message {
        self.message
    }

    /// The topic the message was published on.
    pub fn topic(&self) -> &str {
        self.message.topic()
    }

    /// The payload.
    pub fn payload(&self) -> &bytes::Bytes {
        self.message.payload()
    }

    /// The message's priority.
    pub fn priority(&self) -> Priority {
        self.message.priority()
    }

    /// Replies to the request this message carries (see [`crate::request`]).
    pub fn reply(&self, payload: impl Into<bytes::Bytes>) -> Result<(), crate::ReplyError> {
        self.message.reply(payload)
    }

    /// Messages of this subscription dropped since this handle last received, by reason; `None` when
    /// there were none. With several receivers on one subscription, each handle sees each gap once.
    pub fn missed(&self) -> Option<DroppedByReason> {
        self.missed.as_deref().copied()
    }
}

/// Why [`Subscription::try_recv`] returned nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TryRecvError {
    /// Nothing is queued right now.
    #[error("the subscription's queue is empty")]
    Empty,
    /// The subscription was unsubscribed; nothing more will arrive.
    #[error("the subscription was unsubscribed")]
    Closed,
}

/// Why [`Subscription::recv`] or [`Subscription::recv_async`] returned no message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RecvError {
    /// The subscription was unsubscribed; nothing more will arrive.
    #[error("the subscription was unsubscribed")]
    Closed,
}

/// Why [`Subscription::recv_timeout`] returned no message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RecvTimeoutError {
    /// Nothing arrived within the timeout.
    #[error("no message arrived within the timeout")]
    Timeout,
    /// The subscription was unsubscribed; nothing more will arrive.
    #[error("the subscription was unsubscribed")]
    Closed,
}

/// What [`Subscription::drain_into`] took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Drained {
    /// How many messages were appended.
    pub count: usize,
    /// Drops since this handle's previous receive, as in [`Delivery::missed`].
    pub missed: Option<DroppedByReason>,
}

/// A receiver of one subscription.
///
/// Clone it to add a competing receiver (each message goes to one of them). Drop every clone, or call
/// [`Subscription::unsubscribe`] or [`crate::Broker::unsubscribe`], to end the subscription.
/// `Subscription` is `Send + Sync`; receive methods take `&self`.
pub struct Subscription {
    group: Arc<ReceiverGroup>,
    /// This handle's view of the drop counters at its previous receive, for [`Delivery::missed`].
    gaps: GapTracker,
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("id", &self.id())
            .field("name", &self.name())
            .field("filter", &self.filter().as_str())
            .finish()
    }
}

impl Clone for Subscription {
    fn clone(&self) -> Self {
        Self::new_receiver(self.group.clone())
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.group.core.receivers.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Subscription {
    pub(crate) fn new(core: Arc<SubscriptionCore>, broker: Arc<dyn Retire>) -> Self {
        Self::new_receiver(Arc::new(ReceiverGroup { core, broker }))
    }

    fn new_receiver(group: Arc<ReceiverGroup>) -> Self {
        group.core.receivers.fetch_add(1, Ordering::Relaxed);
        Self {
            gaps: GapTracker::new(&group.core.counters),
            group,
        }
    }

    fn core(&self) -> &SubscriptionCore {
        &self.group.core
    }

    /// The subscription's id.
    pub fn id(&self) -> SubscriptionId {
        self.core().id
    }

    /// The subscription's name (`s<id>` unless one was given).
    pub fn name(&self) -> &str {
        &self.core().name
    }

    /// The filter it was subscribed with.
    pub fn filter(&self) -> &Filter {
        &self.core().filter
    }

    /// Queue capacity in messages.
    pub fn capacity(&self) -> usize {
        self.core().capacity()
    }

    /// Messages queued now.
    pub fn len(&self) -> usize {
        self.core().len()
    }

    /// Whether nothing is queued now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The overflow policy in force.
    pub fn policy(&self) -> OverflowPolicy {
        self.core().policy()
    }

    /// Replaces the overflow policy while the subscription runs. Each message is judged by the policy in
    /// force when it meets a full queue; none is lost or counted twice by the change.
    pub fn set_policy(&self, policy: OverflowPolicy) {
        self.core().set_policy(policy);
    }

    /// Whether the subscription has been unsubscribed.
    pub fn is_closed(&self) -> bool {
        self.core().is_closed()
    }

    /// Acknowledges one message this subscription delivered as processed (`task_done`). See
    /// [`crate::join`]. Any receiver handle of the subscription may acknowledge any delivered message.
    pub fn done(&self) -> Result<(), DoneError> {
        self.core().done()
    }

    /// Waits up to `timeout` until every message queued on this subscription has been received and
    /// acknowledged with [`Subscription::done`] (or dropped). See [`crate::join`].
    pub fn join(&self, timeout: Duration) -> Result<(), JoinError> {
        self.core().join_until(Instant::now().checked_add(timeout))
    }

    /// This subscription's counters now.
    pub fn stats(&self) -> SubscriptionStats {
        self.core().stats()
    }

    /// Ends the subscription for every receiver; what is still queued is counted as dropped
    /// (`unsubscribed`). Equivalent to [`crate::Broker::unsubscribe`] with this id.
    pub fn unsubscribe(self) {
        self.group.broker.retire(self.id());
    }

    fn missed(&self) -> Option<DroppedByReason> {
        self.gaps.check(&self.core().counters)
    }

    /// Takes the next message if one is queued.
    #[inline]
    pub fn try_recv(&self) -> Result<Delivery, TryRecvError> {
        match self.core().take() {
            Some(message) => Ok(Delivery {
                message,
                missed: self.missed().map(Box::new),
            }),
            None if self.core().is_closed() => Err(TryRecvError::Closed),
            None => Err(TryRecvError::Empty),
        }
    }

    /// Takes the next message, parking the thread while the queue is empty.
    ///
    /// Returns [`RecvError::Closed`] once the subscription is unsubscribed.
    pub fn recv(&self) -> Result<Delivery, RecvError> {
        self.recv_until(None).map_err(|_| RecvError::Closed)
    }

    /// Takes the next message, parking the thread up to `timeout` while the queue is empty.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Delivery, RecvTimeoutError> {
        self.recv_until(Instant::now().checked_add(timeout))
    }

    fn recv_until(&self, deadline: Option<Instant>) -> Result<Delivery, RecvTimeoutError> {
        self.core()
            .not_empty
            .poll_then_wait_for(deadline, || match self.try_recv() {
                Ok(d) => Some(Ok(d)),
                Err(TryRecvError::Closed) => Some(Err(RecvTimeoutError::Closed)),
                Err(TryRecvError::Empty) => None,
            })
            .unwrap_or(Err(RecvTimeoutError::Timeout))
    }

    /// Takes the next message, waiting asynchronously while the queue is empty. Works on any executor
    /// (tokio included): it awaits an `event_listener` future and never blocks the thread.
    ///
    /// # Cancel safety
    /// Cancel-safe. A message is taken only in the same poll that returns it, so dropping the future
    /// (in a `tokio::select!` branch that lost, say) never loses a message; if the future was woken for a
    /// message and dropped, the wake-up passes to another waiting receiver.
    pub async fn recv_async(&self) -> Result<Delivery, RecvError> {
        self.core()
            .not_empty
            .wait_for_async(|| match self.try_recv() {
                Ok(d) => Some(Ok(d)),
                Err(TryRecvError::Closed) => Some(Err(RecvError::Closed)),
                Err(TryRecvError::Empty) => None,
            })
            .await
    }

    /// Attaches a [`ReadySignal`] to a subscription made without one, handing it out as `key`: a
    /// subscription you got from [`crate::Broker::attach`] (a restored durable one), say, that a pooled
    /// consumer should serve with the rest. If messages are already queued (or the subscription has
    /// closed), it goes on the ready list at once.
    ///
    /// A subscription has at most one signal: attaching a second one (or one when it was subscribed
    /// with [`SubscriptionOptions::ready_signal`]) is refused with [`AlreadyAttached`], and the first
    /// one stays.
    ///
    /// ```
    /// use std::time::Duration;
    /// use switchyard::{Broker, ReadySignal};
    ///
    /// let broker = Broker::new();
    /// let sub = broker.subscribe("jobs/#").unwrap();
    /// broker.publish("jobs/1", "resize").unwrap();
    ///
    /// let signal = ReadySignal::new();
    /// sub.attach_ready_signal(&signal, 42).unwrap();
    /// let mut ready = Vec::new();
    /// signal.wait_ready(&mut ready, Duration::from_secs(1));
    /// assert_eq!(ready, [42]); // the message queued before attaching counts
    /// assert!(sub.attach_ready_signal(&ReadySignal::new(), 43).is_err());
    /// ```
    pub fn attach_ready_signal(
        &self,
        signal: &Arc<ReadySignal>,
        key: u64,
    ) -> Result<(), AlreadyAttached> {
        self.core().attach_ready_signal(signal, key)
    }

    /// Moves up to `max` queued messages into `out` without waiting; counts them delivered in one step.
    ///
    /// Like [`Subscription::try_recv`], it takes nothing from a closed subscription: a message a late
    /// publisher slipped in after the unsubscribe is counted as dropped (`unsubscribed`) instead.
    pub fn drain_into(&self, out: &mut Vec<Message>, max: usize) -> Drained {
        let core = self.core();
        let start = out.len();
        let mut count = 0;
        while count < max {
            match core.lanes.pop() {
                Some(m) => {
                    out.push(m);
                    count += 1;
                }
                None => break,
            }
        }
        if count > 0 && core.is_closed() {
            for msg in out.drain(start..) {
                core.drop_message(&msg, DropReason::Unsubscribed);
            }
            count = 0;
        }
        if count > 0 {
            core.counters.add_delivered(count as u64);
            if core.policy.is_block() {
                core.not_full.notify(count);
            }
        }
        Drained {
            count,
            missed: self.missed(),
        }
    }
}

/// Loom models that drive the real subscription core: its offer, take, close and drain, its
/// counters and its ready-list mark, through the crate's `sync` facade. The queue itself (crossbeam)
/// is not instrumented: loom sees each push and pop as one indivisible step, which is what it is to
/// our code (crossbeam's own tests cover its insides).
#[cfg(all(test, switchyard_loom))]
mod loom_models {
    use std::sync::Arc;

    use loom::thread;

    use super::*;
    use crate::topic::Topic;

    fn core(signal: Option<&Arc<ReadySignal>>) -> Arc<SubscriptionCore> {
        let mut options = SubscriptionOptions::new().capacity(1);
        if let Some(signal) = signal {
            options = options.ready_signal(signal);
        }
        Arc::new(SubscriptionCore::new(
            7,
            Filter::new("t").unwrap(),
            &options,
            None,
        ))
    }

    fn message() -> Message {
        Message::new(Topic::new("t").unwrap(), "m")
    }

    #[test]
    fn loom_an_offer_racing_an_unsubscribe_ends_delivered_or_dropped_exactly_once() {
        loom::model(|| {
            let core = core(None);
            let publisher = {
                let core = core.clone();
                thread::spawn(move || core.offer_owned(message(), Wait::MayBlock))
            };
            let unsubscriber = {
                let core = core.clone();
                thread::spawn(move || {
                    core.close();
                    core.drain_unsubscribed();
                    // A receiver after the unsubscribe: `Closed`, never a message that slipped in.
                    assert!(
                        core.take().is_none(),
                        "a message taken after the unsubscribe"
                    );
                })
            };
            let taken = core.take();
            let offer = publisher.join().unwrap();
            unsubscriber.join().unwrap();
            // What the broker's finalisation does once nothing can reach the subscription.
            core.drain_unsubscribed();
            let s = core.stats();
            assert_eq!(s.matched, 1);
            assert_eq!(s.depth, 0);
            assert_eq!(s.delivered + s.dropped, 1, "counted once: {s:?}");
            assert_eq!(taken.is_some(), s.delivered == 1);
            if offer == Offer::Dropped {
                assert!(taken.is_none(), "a refused message was received");
                assert_eq!(s.dropped_by_reason.unsubscribed, 1);
            }
        });
    }

    /// A publisher handle counts its offers in its own counter and folds it in as it goes, while a
    /// reader sums: every reading counts the offer at most once, and the last exactly once.
    #[test]
    fn loom_a_handles_matched_count_is_read_once_while_it_lives_and_after_it_folds() {
        loom::model(|| {
            let core = core(None);
            let publisher = {
                let core = core.clone();
                thread::spawn(move || {
                    let counter = core.register_handle_matched();
                    core.offer_all(
                        std::iter::once(message()),
                        Wait::MayBlock,
                        MatchedBy::Handle(&counter),
                    );
                    core.fold_handle_matched(&counter);
                })
            };
            let during = core.matched();
            assert!(during <= 1, "counted twice: {during}");
            publisher.join().unwrap();
            assert_eq!(core.matched(), 1);
            assert_eq!(core.stats().matched, 1);
        });
    }

    #[test]
    fn loom_a_message_is_taken_or_its_subscription_is_on_the_ready_list() {
        loom::model(|| {
            let signal = ReadySignal::new();
            let core = core(Some(&signal));
            let mut ready = Vec::new();
            // A first message, handed out and taken: the subscription has been on the list before.
            core.offer_owned(message(), Wait::MayBlock);
            signal.try_ready(&mut ready);
            assert_eq!(ready, [7]);
            assert!(core.take().is_some());
            ready.clear();
            let publisher = {
                let core = core.clone();
                thread::spawn(move || core.offer_owned(message(), Wait::MayBlock))
            };
            // The consumer: take what the list hands out, then receive.
            signal.try_ready(&mut ready);
            let taken = core.take();
            assert_eq!(publisher.join().unwrap(), Offer::Queued);
            if taken.is_none() {
                // The message is still queued: the list must still hand the subscription out.
                ready.clear();
                signal.try_ready(&mut ready);
                assert_eq!(
                    ready,
                    [7],
                    "a queued message with its subscription off the list"
                );
                assert!(core.take().is_some());
            }
        });
    }

    #[test]
    fn loom_a_signal_attached_while_a_message_arrives_lists_the_subscription() {
        loom::model(|| {
            let signal = ReadySignal::new();
            let core = core(None);
            let publisher = {
                let core = core.clone();
                thread::spawn(move || core.offer_owned(message(), Wait::MayBlock))
            };
            core.attach_ready_signal(&signal, 9).unwrap();
            assert_eq!(publisher.join().unwrap(), Offer::Queued);
            // Either the publisher saw the signal, or attaching saw the message: never neither.
            // (The `OnceLock` holding the signal is std's, which loom does not see; without the
            // attach's fence loom reports the publisher reading the new mark's flag unordered.)
            let mut ready = Vec::new();
            signal.try_ready(&mut ready);
            assert_eq!(ready, [9], "a queued message and nobody told");
        });
    }
}
