//! Why a receive returned no message.

/// Why [`Subscription::try_recv`](crate::Subscription::try_recv) returned nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TryRecvError {
    /// Nothing is queued right now.
    #[error("the subscription's queue is empty")]
    Empty,
    /// The subscription was unsubscribed; nothing more will arrive.
    #[error("the subscription was unsubscribed")]
    Closed,
}

/// Why [`AckSubscription::try_recv`](crate::AckSubscription::try_recv) returned nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TryAckRecvError {
    /// Nothing is queued or due for another delivery right now.
    #[error("the subscription's queue is empty")]
    Empty,
    /// Messages are queued, but the window ([`AckOptions::max_in_flight`](crate::AckOptions::max_in_flight))
    /// is full of deliveries not yet settled: ack, nack or term some to take more.
    #[error("the in-flight window is full: settle some deliveries to take more")]
    WindowFull,
    /// The subscription was unsubscribed; nothing more will arrive.
    #[error("the subscription was unsubscribed")]
    Closed,
}

/// Why [`Subscription::recv`](crate::Subscription::recv) or [`Subscription::recv_async`](crate::Subscription::recv_async) returned no message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RecvError {
    /// The subscription was unsubscribed; nothing more will arrive.
    #[error("the subscription was unsubscribed")]
    Closed,
}

/// Why [`Subscription::recv_timeout`](crate::Subscription::recv_timeout) returned no message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RecvTimeoutError {
    /// Nothing arrived within the timeout.
    #[error("no message arrived within the timeout")]
    Timeout,
    /// The subscription was unsubscribed; nothing more will arrive.
    #[error("the subscription was unsubscribed")]
    Closed,
}
