//! The atomics the crate's own synchronisation is written with: `std`'s normally, loom's under
//! `cfg(loom)` so the loom models in `tests/loom_*.rs` explore every interleaving of our code.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
