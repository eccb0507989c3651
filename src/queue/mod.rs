//! A subscription's queue and its waiting: one bounded lane per priority, the overflow policy that
//! decides what a full lane does, the byte bounds, and the ready list a consumer of many subscriptions
//! waits on.

pub(crate) mod bytes;
pub(crate) mod lane;
pub(crate) mod lanes;
pub(crate) mod policy;
pub(crate) mod ready;
