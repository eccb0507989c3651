//! Offering a message to a subscription: the one place every overflow policy is decided.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_utils::Backoff;

use crate::message::Message;
use crate::message::reason::DropReason;
use crate::queue::lane::LaneRef;
use crate::queue::policy::OverflowPolicy;
use crate::stats::counters::{HIGH_WATER_SAMPLE_EVERY, OwnCount};
use crate::sync::{Ordering, fence};

use super::core::SubscriptionCore;

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
    pub(super) fn count(&mut self, offer: Offer) {
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
    pub(super) fn as_single(self) -> Offer {
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

impl SubscriptionCore {
    /// Counts `n` matched messages, in the shared counter or a publisher handle's own, and as many
    /// unfinished if the subscription is joinable. Returns the count before them.
    #[inline]
    pub(super) fn count_matched(&self, n: u64, by: MatchedBy<'_>) -> u64 {
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
    pub(super) fn push_or_refuse(&self, lane: LaneRef<'_, Message>, msg: Message) -> Offer {
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
    pub(super) fn push_evicting(&self, lane: LaneRef<'_, Message>, msg: Message) -> Offer {
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
    pub(super) fn push_blocking(&self, lane: LaneRef<'_, Message>, msg: Message) -> Offer {
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
    pub(super) fn notify_receivers(&self) {
        // The ready list's handshake needs a `SeqCst` fence between the push and its flag check;
        // the receivers' wake-up check no longer fences on its own (see `crate::sync::barrier`). A signal
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
}
