//! Waiting for the next message of any of several broker subscriptions, in async code.

use switchyard::{Delivery, RecvError, Subscription};

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
