//! Taking the messages of several broker subscriptions in turn, through their ready list.

use std::collections::VecDeque;
use std::sync::Arc;

use switchyard::{Delivery, ReadySignal, RecvError, Subscription, TryRecvError};

/// Turns between the subscriptions attached to one [`ReadySignal`]: a wait costs O(subscriptions
/// with messages), where a `select` over each subscription's `recv_async` would register with every
/// subscription on every message. Each visit takes one message, and a subscription that gave one goes
/// to the back of the to-do list (the signal hands it out again only on a new message).
///
/// Serves the bridge's out direction (keys are indices, [`ReadyTurns::next`]) and each MQTT session
/// (keys are subscription ids, [`ReadyTurns::try_next`] and [`ReadyTurns::wait`]).
#[derive(Debug, Default)]
pub(crate) struct ReadyTurns {
    signal: Arc<ReadySignal>,
    /// Subscriptions to look at before waiting again: handed out by the signal, or served last time
    /// and perhaps with more.
    todo: VecDeque<u64>,
    /// What the signal hands out, moved to `todo` at once; kept for its allocation.
    handed_out: Vec<u64>,
}

impl ReadyTurns {
    /// The signal to attach the subscriptions to (each with its key).
    pub(crate) fn signal(&self) -> &Arc<ReadySignal> {
        &self.signal
    }

    /// Without waiting: the next message of a subscription on the to-do list (refilled from the
    /// ready list), with what `recv` said alongside it; or `Err(Closed)` for a subscription that
    /// closed. `recv(key)` receives from the subscription of `key` (`None`: there is none any more).
    /// `None` when no subscription has a message now.
    pub(crate) fn try_next<T, M>(
        &mut self,
        mut recv: impl FnMut(u64) -> Option<(T, Result<M, TryRecvError>)>,
    ) -> Option<(T, Result<M, RecvError>)> {
        loop {
            let Some(key) = self.todo.pop_front() else {
                if self.signal.try_ready(&mut self.handed_out) == 0 {
                    return None;
                }
                self.todo.extend(self.handed_out.drain(..));
                continue;
            };
            match recv(key) {
                Some((found, Ok(delivery))) => {
                    self.todo.push_back(key);
                    return Some((found, Ok(delivery)));
                }
                Some((found, Err(TryRecvError::Closed))) => {
                    return Some((found, Err(RecvError::Closed)));
                }
                Some((_, Err(TryRecvError::Empty))) | None => {}
            }
        }
    }

    /// Puts `key` on the to-do list: a subscription with messages that the signal does not announce
    /// (a shared group's, which a connection waits on apart, `Connection::wait_shared`).
    pub(crate) fn revisit(&mut self, key: u64) {
        self.todo.push_back(key);
    }

    /// Waits until the signal hands out subscriptions, and puts them on the to-do list.
    ///
    /// # Cancel safety
    /// Cancel-safe: the signal hands keys out only in the poll that completes the wait, and they go
    /// on the to-do list in that same poll.
    pub(crate) async fn wait(&mut self) {
        self.signal.wait_ready_async(&mut self.handed_out).await;
        self.todo.extend(self.handed_out.drain(..));
    }

    /// The next message of `subscriptions` (attached with their index as the key), waiting for one;
    /// `Err` when one of them was closed.
    ///
    /// # Cancel safety
    /// Cancel-safe: a message is taken only in the poll that returns it (see also
    /// [`ReadyTurns::wait`]).
    pub(crate) async fn next(
        &mut self,
        subscriptions: &[Subscription],
    ) -> Result<Delivery, RecvError> {
        loop {
            let next = self.try_next(|key| {
                let subscription = subscriptions.get(usize::try_from(key).ok()?)?;
                Some(((), subscription.try_recv()))
            });
            if let Some(((), received)) = next {
                return received;
            }
            self.wait().await;
        }
    }
}
