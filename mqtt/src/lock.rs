//! [`lock`]: one way to take a std mutex in this crate, below everything that shares state.

use std::sync::{Mutex, MutexGuard};

/// Locks a std mutex, going on with the data if another thread panicked while holding it (every
/// critical section here leaves the data consistent).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
