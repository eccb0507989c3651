//! A subscription's replay from the broker's log, in its receive path: the receivers read the log
//! first (see `crate::features::replay_log::cursor`), then the queue.

use crate::features::replay_log::cursor::{Filled, ReplayCursor};
use crate::message::Message;
use crate::message::priority::Priority;
use crate::message::reason::DropReason;
use crate::stats::counters::Matched;
use crate::stats::replay::ReplayStats;

use super::core::SubscriptionCore;

impl SubscriptionCore {
    /// Gives the subscription its replay, before it is in the routing table (publishers then see its
    /// `live_from` with the subscription itself).
    pub(crate) fn set_replay(&self, cursor: ReplayCursor) {
        let set = self.replay.set(Box::new(cursor));
        debug_assert!(set.is_ok(), "a subscription replays once");
    }

    /// Once the subscription is in the routing table at `routed_version`: fixes where the replay
    /// starts and ends, and puts a subscription with a ready signal on its list (the replay is
    /// something to receive). Waits for publishers between taking a sequence number and writing it,
    /// so the caller holds no broker lock.
    pub(crate) fn open_replay(&self, routed_version: u64) {
        if let Some(replay) = self.replay.get() {
            replay.open(routed_version);
            if self.ready_signal.get().is_some() {
                self.notify_receivers();
            }
        }
    }

    /// Whether a publish may offer `msg` to this subscription now: always, unless it is a logged
    /// message that this subscription's replay hands out instead. One load of the message's sequence
    /// number for an unlogged message; one more of the replay for a logged one.
    #[inline]
    pub(crate) fn takes_live(&self, msg: &Message) -> bool {
        match msg.seq() {
            None => true,
            Some(seq) => self.replay.get().is_none_or(|r| r.takes_live(seq)),
        }
    }

    /// Whether the replay has messages (or a gap) left to hand out.
    pub(super) fn replay_pending(&self) -> bool {
        self.replay.get().is_some_and(|r| !r.is_done())
    }

    /// The next replayed message, counted matched, if the replay is not over. Receiver side: every
    /// receive (plain or acknowledged) asks this before the queue. A replayed message was never
    /// queued, so it has no bytes to give back to a byte bound.
    #[inline]
    pub(super) fn take_replayed(&self) -> Option<Message> {
        let replay = self.replay.get()?;
        if replay.is_done() || self.is_closed() {
            return None;
        }
        let mut taken = None;
        self.count_replayed(replay.fill(1, |msg| taken = Some(msg)));
        taken
    }

    /// Appends up to `max` replayed messages to `out`, counted matched; fewer only once the replay is
    /// over (or the subscription closed). Returns how many.
    pub(super) fn take_replayed_into(&self, out: &mut Vec<Message>, max: usize) -> usize {
        let Some(replay) = self.replay.get() else {
            return 0;
        };
        if replay.is_done() || self.is_closed() {
            return 0;
        }
        let filled = replay.fill(max, |msg| out.push(msg));
        self.count_replayed(filled);
        filled.taken
    }

    /// The books of a replay step: replayed messages are matched (then delivered by the receive that
    /// took them), and skipped evicted sequence numbers are matched and dropped (`evicted`), so the
    /// receiver's next [`Delivery::missed`](crate::Delivery::missed) tells the gap.
    fn count_replayed(&self, filled: Filled) {
        if filled.gap > 0 {
            self.count_matched(filled.gap, Matched::Shared);
            self.counters
                .add_dropped(DropReason::Evicted, Priority::Normal, filled.gap);
            self.abandon(filled.gap);
        }
        if filled.taken > 0 {
            self.count_matched(filled.taken as u64, Matched::Shared);
        }
    }

    /// The replay's progress, for stats; `None` without one.
    pub(crate) fn replay_stats(&self) -> Option<ReplayStats> {
        self.replay.get().map(|r| r.stats())
    }
}
