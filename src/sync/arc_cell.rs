//! A shared `Arc` that readers load without a lock and a writer replaces: `arc-swap`'s `ArcSwap`
//! normally; under loom a loom mutex around the `Arc`, so that a model sees the happens-before edge
//! from a store to the loads that read it (loom cannot see inside `arc-swap`, whose atomics are
//! `std`'s: a reader would then use what the writer built with no edge loom knows of, and loom
//! reports a causality violation that the real acquire and release inside `arc-swap` rule out).

use std::sync::Arc;

/// What [`ArcCell::load`] returns: something that dereferences to the `Arc`.
#[cfg(not(switchyard_loom))]
pub(crate) type ArcGuard<T> = arc_swap::Guard<Arc<T>>;
#[cfg(switchyard_loom)]
pub(crate) type ArcGuard<T> = Arc<T>;

/// See the [module docs](self).
#[derive(Debug)]
pub(crate) struct ArcCell<T> {
    #[cfg(not(switchyard_loom))]
    cell: arc_swap::ArcSwap<T>,
    #[cfg(switchyard_loom)]
    cell: loom::sync::Mutex<Arc<T>>,
}

impl<T> ArcCell<T> {
    pub(crate) fn new(value: Arc<T>) -> Self {
        Self {
            #[cfg(not(switchyard_loom))]
            cell: arc_swap::ArcSwap::new(value),
            #[cfg(switchyard_loom)]
            cell: loom::sync::Mutex::new(value),
        }
    }

    /// The current value, without a lock (`arc-swap`'s `load`: no shared counter written in the
    /// common case).
    #[inline]
    pub(crate) fn load(&self) -> ArcGuard<T> {
        #[cfg(not(switchyard_loom))]
        return self.cell.load();
        #[cfg(switchyard_loom)]
        return self.cell.lock().unwrap().clone();
    }

    /// The current value as an `Arc` of its own.
    pub(crate) fn load_full(&self) -> Arc<T> {
        #[cfg(not(switchyard_loom))]
        return self.cell.load_full();
        #[cfg(switchyard_loom)]
        return self.cell.lock().unwrap().clone();
    }

    /// Replaces the value (release: a load that sees it sees it fully built).
    pub(crate) fn store(&self, value: Arc<T>) {
        #[cfg(not(switchyard_loom))]
        self.cell.store(value);
        #[cfg(switchyard_loom)]
        {
            *self.cell.lock().unwrap() = value;
        }
    }
}
