//! Why an ack (or nack, term, in-progress) was refused, and how an attempt ended.

use crate::id::SubscriptionId;

/// How a delivery attempt ended, told when a token of an attempt that already ended is used again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AttemptEnd {
    /// Acknowledged.
    Acked,
    /// Handed back by a nack, for another delivery.
    Nacked,
    /// Its ack deadline passed; the message is delivered again.
    Expired,
    /// Its receiver went away (the delivery or the receiver handle was dropped unsettled, or its
    /// thread panicked); the message is delivered again at once.
    HandedBack,
    /// Refused for good by `term`, or sent to the dead letters after its last allowed delivery.
    DeadLettered,
    /// The subscription ended while it was in flight.
    Unsubscribed,
}

impl AttemptEnd {
    fn describe(self) -> &'static str {
        match self {
            AttemptEnd::Acked => "was already acknowledged",
            AttemptEnd::Nacked => "was already handed back with a nack",
            AttemptEnd::Expired => "passed its ack deadline and will be delivered again",
            AttemptEnd::HandedBack => "was handed back when its receiver went away",
            AttemptEnd::DeadLettered => "was already sent to the dead letters",
            AttemptEnd::Unsubscribed => "ended with its subscription",
        }
    }
}

impl std::fmt::Display for AttemptEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.describe())
    }
}

/// Why settling a delivery attempt (ack, nack, term, in-progress) was refused. Every refusal is counted
/// in the subscription's [`AckStats::refused`](crate::AckStats::refused); none changes any message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AckError {
    /// This attempt already ended; a second ack, or an ack after a nack, expiry or hand-back.
    #[error("this delivery attempt {0}")]
    Ended(AttemptEnd),
    /// A later attempt replaced this one: the message was delivered again since (or its place now
    /// holds another message). A stale ack is refused so it cannot settle someone else's delivery.
    #[error("this delivery attempt is stale: a later delivery replaced it")]
    Stale,
    /// The token belongs to another subscription.
    #[error("the token belongs to subscription {token}, not to subscription {here}")]
    WrongSubscription {
        /// The token's subscription.
        token: SubscriptionId,
        /// The subscription asked.
        here: SubscriptionId,
    },
    /// The subscription has ended; its messages in flight were counted as dropped (`unsubscribed`).
    #[error("the subscription has ended")]
    Closed,
}

impl AckError {
    pub(crate) fn index(self) -> usize {
        match self {
            AckError::Ended(_) => 0,
            AckError::Stale => 1,
            AckError::WrongSubscription { .. } => 2,
            AckError::Closed => 3,
        }
    }
}
