//! Waiting for the next message of any of several broker subscriptions, in async code.

use std::collections::VecDeque;
use std::sync::Arc;

use switchyard::{Delivery, ReadySignal, RecvError, Subscription, TryRecvError};

/// The next message of any of a fixed set of subscriptions, through their [`ReadySignal`]: a wait
/// costs O(subscriptions with messages), where [`next_delivery`] registers with every subscription on
/// every message. The subscriptions are attached to `signal` with their index as the key.
pub(crate) struct ReadyTurns {
    signal: Arc<ReadySignal>,
    /// Subscriptions to look at before waiting again: handed out by the signal, or served last time
    /// and perhaps with more (the signal hands one out again only on a new message).
    todo: VecDeque<usize>,
    keys: Vec<u64>,
}

impl ReadyTurns {
    pub(crate) fn new(signal: Arc<ReadySignal>) -> Self {
        Self {
            signal,
            todo: VecDeque::new(),
            keys: Vec::new(),
        }
    }

    /// The next message, taking turns between the subscriptions that have some; `Err` when one of
    /// them was closed.
    ///
    /// # Cancel safety
    /// Cancel-safe: a message is taken only in the poll that returns it, and what the signal handed
    /// out is kept in `self`.
    pub(crate) async fn next(
        &mut self,
        subscriptions: &[Subscription],
    ) -> Result<Delivery, RecvError> {
        loop {
            while let Some(index) = self.todo.pop_front() {
                let Some(subscription) = subscriptions.get(index) else {
                    continue;
                };
                match subscription.try_recv() {
                    Ok(delivery) => {
                        self.todo.push_back(index);
                        return Ok(delivery);
                    }
                    Err(TryRecvError::Empty) => {}
                    Err(TryRecvError::Closed) => return Err(RecvError::Closed),
                }
            }
            self.keys.clear();
            self.signal.wait_ready_async(&mut self.keys).await;
            self.todo
                .extend(self.keys.iter().filter_map(|&k| usize::try_from(k).ok()));
        }
    }
}

/// The next message of any of `subscriptions`, with the index of the one it came from; pending
/// forever when there are none.
///
/// # Cancel safety
/// Cancel-safe: [`Subscription::recv_async`] takes a message only in the poll that returns it, so a
/// `select!` branch that loses drops no message.
pub(crate) async fn next_delivery<'a>(
    subscriptions: impl Iterator<Item = &'a Subscription>,
) -> (usize, Result<Delivery, RecvError>) {
    let waits: Vec<_> = subscriptions.map(|s| Box::pin(s.recv_async())).collect();
    if waits.is_empty() {
        return std::future::pending().await;
    }
    let (delivery, index, _) = futures_util::future::select_all(waits).await;
    (index, delivery)
}
