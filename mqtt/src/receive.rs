//! Waiting for the next message of any of several broker subscriptions, in async code, through a
//! ready list.

use std::collections::VecDeque;
use std::sync::Arc;

use switchyard::{Delivery, ReadySignal, RecvError, Subscription, TryRecvError};

/// The next message of any of a fixed set of subscriptions, through their [`ReadySignal`]: a wait
/// costs O(subscriptions with messages), where a `select` over each subscription's `recv_async` would
/// register with every subscription on every message. The subscriptions are attached to `signal`
/// with their index as the key.
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
