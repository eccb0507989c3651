//! Why a subscribe or a publish was refused.

use crate::features::ack::options::AckOptionsError;
use crate::id::SubscriptionId;
use crate::subscription::SubscriptionOptions;
use crate::topic::TopicError;

/// Why a subscribe was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubscribeError {
    /// The filter is not valid.
    #[error("invalid filter: {0}")]
    InvalidFilter(#[from] TopicError),
    /// A capacity of zero was asked for.
    #[error("capacity must be at least 1 message, got 0")]
    ZeroCapacity,
    /// A durable subscription was asked for without a name.
    #[error("a durable subscription needs a name (SubscriptionOptions::name)")]
    DurableNeedsName,
    /// A durable subscription of that name exists with another filter.
    #[error("the durable subscription `{name}` already exists with filter `{filter}`")]
    DurableNameTaken {
        /// The name asked for.
        name: String,
        /// The existing subscription's filter.
        filter: String,
    },
    /// A replay start was asked of a broker that keeps no replay log.
    #[error(
        "this broker keeps no replay log to start from (BrokerOptions::replay_log); subscribe without SubscriptionOptions::replay, or with ReplayFrom::Newest"
    )]
    NoReplayLog,
    /// A replay start from a sequence number the log has not reached, or from 0.
    #[error(
        "cannot replay from sequence number {requested}: numbers start at 1, and the next one the log will give is {next}"
    )]
    ReplaySeqOutOfRange {
        /// The sequence number asked for.
        requested: u64,
        /// The next sequence number the log will give: the largest start accepted now.
        next: u64,
    },
    /// A capacity over [`SubscriptionOptions::MAX_CAPACITY`] was asked for.
    #[error("capacity {capacity} is over the limit of {max} messages per subscription")]
    CapacityTooLarge {
        /// What was asked for.
        capacity: usize,
        /// The limit.
        max: usize,
    },
    /// The acknowledgement settings were refused.
    #[error("invalid acknowledgement settings: {0}")]
    AckOptions(#[from] AckOptionsError),
    /// `SubscriptionOptions::ack` was given to `subscribe_with`, whose handle cannot acknowledge.
    #[error(
        "an acknowledged subscription is made with Broker::subscribe_acked_with, not subscribe_with"
    )]
    AckNeedsAckSubscription,
    /// An acknowledged subscription cannot also be joinable: acks already say when work is done.
    #[error(
        "an acknowledged subscription cannot be joinable; acknowledgements already track unfinished work"
    )]
    AckedNotJoinable,
    /// A durable subscription of that name exists, acknowledged where this one is not or the reverse.
    #[error("the durable subscription `{name}` already exists {}", if *acked { "with acknowledgements (use subscribe_acked_with)" } else { "without acknowledgements (use subscribe_with)" })]
    DurableAckMismatch {
        /// The name asked for.
        name: String,
        /// Whether the existing one is acknowledged.
        acked: bool,
    },
}

/// Why a publish was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PublishError {
    /// The topic is not valid.
    #[error("invalid topic: {0}")]
    InvalidTopic(#[from] TopicError),
}

/// An operation named a subscription the broker does not have (never had, or already removed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("no subscription with id {0}")]
pub struct UnknownSubscription(pub SubscriptionId);

/// Refuses a capacity of zero or over [`SubscriptionOptions::MAX_CAPACITY`].
pub(crate) fn check_capacity(capacity: usize) -> Result<(), SubscribeError> {
    if capacity == 0 {
        return Err(SubscribeError::ZeroCapacity);
    }
    if capacity > SubscriptionOptions::MAX_CAPACITY {
        return Err(SubscribeError::CapacityTooLarge {
            capacity,
            max: SubscriptionOptions::MAX_CAPACITY,
        });
    }
    Ok(())
}
