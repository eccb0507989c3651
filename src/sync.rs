//! The atomics the crate's own synchronisation is written with: `std`'s normally, loom's under
//! `cfg(loom)` so the loom models (`loom_*` tests in the modules that use them) explore every interleaving of our code.

#[cfg(switchyard_loom)]
pub(crate) use loom::sync::atomic::{
    AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering, fence,
};

#[cfg(not(switchyard_loom))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering, fence};
