//! [`PendingConnects`]: the connections accepted that have not sent CONNECT yet, bounded on their own.
//!
//! A legitimate client sends CONNECT as soon as its TCP connection is up, so a socket that stays
//! silent is a slow, buggy or hostile peer. Such sockets have their own bound,
//! [`crate::MqttConfig::max_pending_connects`], apart from [`crate::MqttConfig::max_connections`]
//! (which counts only connections past CONNECT, so they cannot crowd legitimate clients out of it),
//! and one more closes the *oldest* of them: refusing the newest instead would let a peer that renews
//! its idle sockets every [`crate::MqttConfig::connect_timeout`] keep every newcomer out.

use std::collections::BTreeMap;
use std::sync::Mutex;

use tokio::sync::oneshot;

use crate::lock::lock;

/// The connections waiting for their CONNECT, oldest first (tickets increase).
#[derive(Debug, Default)]
pub(crate) struct PendingConnects {
    waiting: Mutex<Waiting>,
}

#[derive(Debug, Default)]
struct Waiting {
    next_ticket: u64,
    /// Fired (or dropped) to close the connection holding the ticket.
    by_ticket: BTreeMap<u64, oneshot::Sender<()>>,
}

/// A connection's place among the pending ones; `evicted` completes when it must close.
pub(crate) struct PendingTicket {
    pub ticket: u64,
    pub evicted: oneshot::Receiver<()>,
}

impl PendingConnects {
    /// Registers a newly accepted connection, closing the oldest waiting one if there are now more
    /// than `max`.
    pub fn admit(&self, max: usize) -> PendingTicket {
        let (close, evicted) = oneshot::channel();
        let mut waiting = lock(&self.waiting);
        let ticket = waiting.next_ticket;
        waiting.next_ticket += 1;
        waiting.by_ticket.insert(ticket, close);
        while waiting.by_ticket.len() > max {
            if let Some((_, close)) = waiting.by_ticket.pop_first() {
                let _ = close.send(());
            }
        }
        PendingTicket { ticket, evicted }
    }

    /// Closes the oldest waiting connection, if any (to free its file descriptor); returns whether
    /// there was one.
    pub fn evict_oldest(&self) -> bool {
        let oldest = lock(&self.waiting).by_ticket.pop_first();
        oldest.is_some_and(|(_, close)| close.send(()).is_ok())
    }

    /// The connection holding `ticket` sent its CONNECT or ended.
    pub fn leave(&self, ticket: u64) {
        lock(&self.waiting).by_ticket.remove(&ticket);
    }

    /// How many are waiting now.
    pub fn len(&self) -> usize {
        lock(&self.waiting).by_ticket.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_over_the_bound_closes_the_oldest() {
        let pending = PendingConnects::default();
        let mut first = pending.admit(2);
        let mut second = pending.admit(2);
        assert!(first.evicted.try_recv().is_err() && pending.len() == 2);
        let mut third = pending.admit(2);
        assert!(first.evicted.try_recv().is_ok(), "the oldest is closed");
        assert!(second.evicted.try_recv().is_err() && third.evicted.try_recv().is_err());
        pending.leave(second.ticket);
        assert_eq!(pending.len(), 1);
        assert!(pending.evict_oldest());
        assert!(third.evicted.try_recv().is_ok());
        assert!(!pending.evict_oldest() && pending.len() == 0);
    }
}
