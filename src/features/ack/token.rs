//! The token that names one delivery attempt.

use crate::id::SubscriptionId;

/// Names one delivery attempt of one message on an acknowledged subscription, to settle it later with
/// [`AckSubscription::ack`](crate::AckSubscription::ack) and friends (an MQTT connection keeps one
/// per packet id until the PUBACK comes).
///
/// Each attempt has its own token: when a message is delivered again (after a nack, an expiry or a
/// receiver that went away), the earlier attempt's token is refused as
/// [`AckError::Stale`](crate::AckError::Stale), so a slow receiver's late ack can never settle the
/// copy another receiver is working on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AckToken {
    pub(crate) subscription: SubscriptionId,
    pub(crate) place: u32,
    pub(crate) attempt: u64,
}

impl AckToken {
    /// The subscription that delivered it.
    pub fn subscription(&self) -> SubscriptionId {
        self.subscription
    }
}
