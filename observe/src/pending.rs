//! [`PendingConnections`]: the connections that have not sent their first request yet, oldest first,
//! with their own small bound. A connection past the bound closes the oldest, so sockets that connect
//! and say nothing cannot keep real requests out; the accept loop also closes the oldest when the
//! operating system runs out of file descriptors.

use std::collections::VecDeque;
use std::sync::Mutex;

use tokio::sync::oneshot;

/// The pending connections, each as the sender that closes it.
pub(crate) struct PendingConnections {
    max: usize,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    next: u64,
    /// Oldest first. Sending `()` closes the connection; dropping the sender (when its first request
    /// arrives, or it ends) closes nothing.
    queue: VecDeque<(u64, oneshot::Sender<()>)>,
}

/// Tells a connection it was evicted: resolves `Ok(())` to close it, `Err` once it is no longer
/// pending.
pub(crate) type Eviction = oneshot::Receiver<()>;

impl PendingConnections {
    pub(crate) fn new(max: usize) -> Self {
        Self {
            max: max.max(1),
            inner: Mutex::new(Inner::default()),
        }
    }

    /// Adds a new connection; returns its key, its eviction notice, and how many older ones it
    /// closed to stay within the bound.
    pub(crate) fn add(&self) -> (u64, Eviction, u64) {
        let (tx, rx) = oneshot::channel();
        let mut inner = self.lock();
        let key = inner.next;
        inner.next += 1;
        let mut evicted = 0;
        while inner.queue.len() >= self.max {
            if let Some((_, oldest)) = inner.queue.pop_front() {
                evicted += u64::from(oldest.send(()).is_ok());
            }
        }
        inner.queue.push_back((key, tx));
        (key, rx, evicted)
    }

    /// Connection `key` sent its first request (or ended): it is no longer pending.
    pub(crate) fn remove(&self, key: u64) {
        let mut inner = self.lock();
        if let Some(i) = inner.queue.iter().position(|(k, _)| *k == key) {
            inner.queue.remove(i);
        }
    }

    /// Closes the oldest pending connection, if any; returns whether one was closed.
    pub(crate) fn evict_oldest(&self) -> bool {
        let oldest = self.lock().queue.pop_front();
        oldest.is_some_and(|(_, tx)| tx.send(()).is_ok())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Every update under this lock is a single push, pop or removal.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_is_closed_past_the_bound_and_a_served_one_is_never_closed() {
        let pending = PendingConnections::new(2);
        let (a, mut a_rx, _) = pending.add();
        let (_b, mut b_rx, _) = pending.add();
        pending.remove(a); // a sent its request
        assert!(a_rx.try_recv().is_err());
        let (_c, _c_rx, evicted) = pending.add();
        assert_eq!(evicted, 0);
        let (_d, _d_rx, evicted) = pending.add();
        assert_eq!(evicted, 1);
        assert_eq!(b_rx.try_recv(), Ok(()));
        assert!(pending.evict_oldest());
    }
}
