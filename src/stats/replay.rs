//! The stats of the replay log and of a subscription's replay (v1 additions to the stats schema:
//! the snapshot's `replay_log` object and a subscription's `replay` object).

use serde::{Deserialize, Serialize};

/// The replay log's bounds and counters (the `replay_log` object of the stats schema).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplayLogStats {
    /// The topics it keeps.
    pub filter: String,
    /// The bound on `messages`.
    pub max_messages: u64,
    /// The bound on `bytes`.
    pub max_bytes: u64,
    /// The bound on age in milliseconds; `null` when there is none.
    pub max_age_ms: Option<u64>,
    /// Messages held now (from `first_seq` to `next_seq`).
    pub messages: u64,
    /// Topic and payload bytes held now.
    pub bytes: u64,
    /// The oldest sequence number held.
    pub first_seq: u64,
    /// The sequence number the next logged publish takes; `next_seq - 1` messages were logged.
    pub next_seq: u64,
    /// Messages evicted, by the bound that evicted them; they add up to `first_seq - 1`.
    pub evicted: ReplayEvictions,
}

/// Messages the replay log evicted, by bound.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplayEvictions {
    /// To keep within `max_messages`.
    pub max_messages: u64,
    /// To keep within `max_bytes`.
    pub max_bytes: u64,
    /// Older than `max_age_ms`.
    pub max_age: u64,
}

impl ReplayEvictions {
    /// Every bound together.
    pub fn total(&self) -> u64 {
        self.max_messages + self.max_bytes + self.max_age
    }
}

/// A subscription's replay from the log (its `replay` object in the stats schema; `null` for a
/// subscription that did not ask for one).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplayStats {
    /// Where it asked to start: `oldest`, `seq:N`, `time:RFC3339`, `last:N`.
    pub from: String,
    /// The sequence number the replay started at.
    pub first_seq: u64,
    /// The first sequence number of live delivery: the replay covers `first_seq..until_seq`.
    pub until_seq: u64,
    /// The next sequence number the replay will look at.
    pub next_seq: u64,
    /// Messages replayed so far (each also counted in `matched` and `delivered`).
    pub replayed: u64,
    /// Sequence numbers asked for that the log had evicted before the replay reached them (each
    /// also counted in `matched` and as dropped, `evicted`).
    pub gap: u64,
    /// Whether the replay is over and the subscription is on live delivery alone.
    pub done: bool,
}
