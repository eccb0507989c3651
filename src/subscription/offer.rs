//! Offering a message to a subscription: the one place every overflow policy is decided.

use std::time::{Duration, Instant};

use crossbeam_utils::Backoff;

use crate::message::Message;
use crate::message::reason::DropReason;
use crate::queue::lane::LaneRef;
use crate::queue::policy::OverflowPolicy;
use crate::stats::counters::{
    HIGH_WATER_SAMPLE_EVERY, HandleCounts, LiveCount, Matched, RouteShare,
};
use crate::sync::waiters::Until;
use crate::sync::{Ordering, fence};

use super::core::SubscriptionCore;

/// Whether an offer may wait for room under [`OverflowPolicy::Block`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wait {
    /// A publish: a `Block` subscription makes the publisher wait for room, up to its timeout.
    MayBlock,
    /// A publish with a deadline ([`PublishOptions::deadline`](crate::PublishOptions::deadline)): as
    /// `MayBlock`, but never past this instant, whatever the subscription's own timeout; a message
    /// still waiting then is dropped as `timeout`.
    Until(Instant),
    /// Replaying retained messages into a subscription nobody can receive from yet: a full lane
    /// refuses the message (`queue_full`) whatever the policy, since waiting could never end well.
    Never,
}

impl Wait {
    /// How a publish with this `deadline` (if any) may wait.
    #[inline]
    pub(crate) fn for_publish(deadline: Option<Instant>) -> Self {
        deadline.map_or(Self::MayBlock, Self::Until)
    }
}

/// What one publish did: summed over the subscriptions it reached. The one outcome type of the
/// offer: one message to one subscription, a batch to one subscription, and a whole publish all add up
/// into it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PublishOutcome {
    /// Subscriptions whose filter matched the topic.
    pub matched: usize,
    /// Of those, how many queued the message.
    pub queued: usize,
    /// Messages dropped because of this publish: the new message where it was refused (full queue, block
    /// timeout, unsubscribed), plus older messages evicted to make room under `DropOldest`.
    pub dropped: usize,
    /// Retained messages of this publish that the retained store refused to keep because it was at
    /// one of its bounds ([`RetainedLimits`](crate::RetainedLimits)); they were delivered all the same.
    /// Counted in the stats as `retained.rejected`.
    pub retain_refused: usize,
}

impl PublishOutcome {
    /// One message offered to one subscription and queued.
    pub(crate) const QUEUED: Self = Self {
        matched: 1,
        queued: 1,
        dropped: 0,
        retain_refused: 0,
    };
    /// One message offered to one subscription and queued, evicting an older one to make room.
    pub(crate) const QUEUED_EVICTING: Self = Self {
        matched: 1,
        queued: 1,
        dropped: 1,
        retain_refused: 0,
    };
    /// One message offered to one subscription and not queued (counted as dropped).
    pub(crate) const DROPPED: Self = Self {
        matched: 1,
        queued: 0,
        dropped: 1,
        retain_refused: 0,
    };

    /// Adds another outcome to this one.
    #[inline]
    pub fn merge(&mut self, other: PublishOutcome) {
        self.matched += other.matched;
        self.queued += other.queued;
        self.dropped += other.dropped;
        self.retain_refused += other.retain_refused;
    }
}

/// How many growing spins (crossbeam `Backoff::spin`: 1, 2, 4 .. 64 pause instructions) a `Block`
/// publisher with a short timeout tries before it parks.
const SPINS_BEFORE_PARKING: u32 = 7;

/// A `Block` publisher with at least this long left before its timeout also yields before parking.
const PATIENT_WAIT: Duration = Duration::from_millis(1);

impl SubscriptionCore {
    /// Counts `n` matched messages in the shared counter, unless a publisher handle counted them
    /// already ([`Matched`]), and as many unfinished if the subscription is joinable. Returns the
    /// count before them (for sampling the high-water mark).
    #[inline]
    pub(super) fn count_matched(&self, n: u64, by: Matched) -> u64 {
        if let Some(join) = &self.join {
            join.begin(n);
        }
        match by {
            Matched::Shared => self.counters.add_matched(n),
            Matched::ByHandle { before } => before,
        }
    }

    /// A publisher handle (counted by `handle`) starts routing here: from now on its publishes are
    /// counted in this subscription's `matched` ([`RouteShare`]) until [`Self::fold_handle_matched`].
    pub(crate) fn register_handle_matched(
        &self,
        handle: &LiveCount<HandleCounts>,
    ) -> LiveCount<RouteShare> {
        self.handle_matched
            .get_or_init(Box::default)
            .register_route(handle)
    }

    /// A publisher handle lets the route go: what it matched joins the shared count as it leaves
    /// the list.
    pub(crate) fn fold_handle_matched(&self, share: &LiveCount<RouteShare>) {
        self.handle_matched
            .get_or_init(Box::default)
            .fold(share, |s| {
                self.counters.add_matched(s.matched());
            });
    }

    /// Messages matched so far: the shared count plus the live publisher handles' shares.
    pub(crate) fn matched(&self) -> u64 {
        match self.handle_matched.get() {
            None => self.counters.matched(),
            Some(handles) => handles.sum(|| self.counters.matched(), |sum, s| sum + s.matched()),
        }
    }

    /// Offers `msg` to this subscription (a clone: the caller keeps its handle). Publisher side.
    #[inline]
    pub(crate) fn offer(&self, msg: &Message, wait: Wait) -> PublishOutcome {
        self.offer_owned(msg.clone(), wait)
    }

    /// Offers `msg`, taking the caller's handle (the last subscription of a route saves a
    /// reference-count increment and decrement on a cache line the receiver is about to read): a batch
    /// of one through [`Self::offer_all`].
    #[inline]
    pub(crate) fn offer_owned(&self, msg: Message, wait: Wait) -> PublishOutcome {
        self.offer_all(std::iter::once(msg), wait, Matched::Shared)
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
        by: Matched,
    ) -> PublishOutcome {
        let n = msgs.len() as u64;
        let mut offered = PublishOutcome::default();
        if n == 0 {
            return offered;
        }
        let matched_before = self.count_matched(n, by);
        for msg in msgs {
            if self.closed.load(Ordering::Acquire) {
                self.drop_message(&msg, DropReason::Unsubscribed);
                offered.merge(PublishOutcome::DROPPED);
                continue;
            }
            if !self.charge_bytes(&msg) {
                self.drop_message(&msg, DropReason::ByteLimit);
                offered.merge(PublishOutcome::DROPPED);
                continue;
            }
            let lane = self.lanes.for_push(msg.priority());
            let outcome = match (self.policy.load(), wait) {
                (OverflowPolicy::DropNewest, _) | (OverflowPolicy::Block { .. }, Wait::Never) => {
                    self.push_or_refuse(lane, msg)
                }
                (OverflowPolicy::DropOldest, _) => self.push_evicting(lane, msg),
                (OverflowPolicy::Block { .. }, Wait::MayBlock) => {
                    self.push_blocking(lane, msg, None)
                }
                (OverflowPolicy::Block { .. }, Wait::Until(deadline)) => {
                    self.push_blocking(lane, msg, Some(deadline))
                }
            };
            offered.merge(outcome);
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
    pub(super) fn push_or_refuse(
        &self,
        lane: LaneRef<'_, Message>,
        msg: Message,
    ) -> PublishOutcome {
        match lane.push(msg) {
            Ok(()) => PublishOutcome::QUEUED,
            Err(msg) => {
                self.counters.raise_high_water(lane.capacity() as u64);
                self.release_bytes(&msg);
                self.drop_message(&msg, DropReason::QueueFull);
                PublishOutcome::DROPPED
            }
        }
    }

    /// Queues `msg`, evicting the oldest message (`evicted`) when the lane is full.
    #[inline]
    pub(super) fn push_evicting(&self, lane: LaneRef<'_, Message>, msg: Message) -> PublishOutcome {
        match lane.force_push(msg) {
            None => PublishOutcome::QUEUED,
            Some(evicted) => {
                self.counters.raise_high_water(lane.capacity() as u64);
                self.release_bytes(&evicted);
                self.drop_message(&evicted, DropReason::Evicted);
                PublishOutcome::QUEUED_EVICTING
            }
        }
    }

    /// Waits for room in `lane` while the policy is `Block`. Parks on `not_full`, which receivers notify
    /// while the policy is `Block`. Wakes at least every 10 ms to re-read the policy and the closed flag,
    /// so a policy change or an unsubscribe during the wait is honoured promptly even if no receiver runs.
    ///
    /// The deadline is the wait's start plus the timeout of the `Block` policy in force *now*: a
    /// [`Subscription::set_policy`] to another `Block` timeout applies to publishers already waiting
    /// (one whose new deadline has passed gives up at once, as `timeout`), or `until`, the publish's
    /// own deadline, if that comes first. The closed flag is checked before every push, so a publisher
    /// woken by an unsubscribe never queues into the closed subscription (its message is dropped as
    /// `unsubscribed`).
    pub(super) fn push_blocking(
        &self,
        lane: LaneRef<'_, Message>,
        msg: Message,
        until: Option<Instant>,
    ) -> PublishOutcome {
        // Room now: the usual case, decided before reading the clock (a `clock_gettime` per publish
        // was a fifth of a single-threaded publish + receive).
        let mut msg = match lane.push(msg) {
            Ok(()) => return PublishOutcome::QUEUED,
            Err(back) => back,
        };
        // Receivers are woken once per batch, after its last push: one parked now must be woken
        // before this publisher waits for it to make room.
        self.notify_receivers();
        let started = Instant::now();
        // The clock is read once per round of the loop below, the first round's reading being
        // `started` (a clock read costs a system-call-free but slow read of the clock source on
        // some virtual machines, and a `Block` publisher that outruns its receivers comes here for
        // most of its messages).
        let mut now = started;
        let dropped = |msg: Message, reason| {
            self.release_bytes(&msg);
            self.drop_message(&msg, reason);
            PublishOutcome::DROPPED
        };
        loop {
            if self.closed.load(Ordering::Acquire) {
                return dropped(msg, DropReason::Unsubscribed);
            }
            match lane.push(msg) {
                Ok(()) => return PublishOutcome::QUEUED,
                Err(back) => msg = back,
            }
            self.counters.raise_high_water(lane.capacity() as u64);
            let deadline = match self.policy.load() {
                OverflowPolicy::Block { timeout } => started.checked_add(timeout),
                OverflowPolicy::DropNewest => return dropped(msg, DropReason::QueueFull),
                OverflowPolicy::DropOldest => return self.push_evicting(lane, msg),
            };
            let deadline = match (deadline, until) {
                (Some(own), Some(until)) => Some(own.min(until)),
                (own, until) => own.or(until),
            };
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
                    Ok(()) => return PublishOutcome::QUEUED,
                    Err(back) => msg = back,
                }
            }
            // Park until a receiver makes room, the subscription closes, or the slice ends; then go
            // round again to re-read the closed flag, the policy and the deadline.
            let slice = now + Duration::from_millis(10);
            let mut waiting = Some(msg);
            self.not_full
                .wait_for(Until::At(deadline.map_or(slice, |d| d.min(slice))), || {
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
                None => return PublishOutcome::QUEUED,
                Some(back) => msg = back,
            }
            now = Instant::now();
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
