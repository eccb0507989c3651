//! The books: per-subscription counters on the data path, and the snapshot types they are read into.

pub(crate) mod counters;
pub(crate) mod features;
pub(crate) mod per_thread;
pub(crate) mod replay;
pub(crate) mod snapshot;
