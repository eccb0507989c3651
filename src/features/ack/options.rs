//! How an acknowledged subscription treats the messages it hands out: how long a receiver has, how many
//! attempts a message gets, and how many may be out at once.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The settings of an acknowledged subscription (see [`AckSubscription`](crate::AckSubscription)).
///
/// ```
/// use std::time::Duration;
/// use switchyard::AckOptions;
///
/// let options = AckOptions::new()
///     .ack_wait(Duration::from_secs(5))
///     .max_deliveries(3)
///     .max_in_flight(64);
/// assert_eq!(options.max_deliveries, Some(3));
/// assert_eq!(AckOptions::default().max_in_flight, AckOptions::DEFAULT_MAX_IN_FLIGHT);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AckOptions {
    /// How long a receiver has to settle a delivery before it is redelivered. Extended by
    /// [`AckDelivery::in_progress`](crate::AckDelivery::in_progress).
    #[serde(with = "millis")]
    pub ack_wait: Duration,
    /// After this many deliveries without an ack, a message goes to the dead letters (reason
    /// `max_deliveries`) instead of being delivered again; `None`: no limit.
    pub max_deliveries: Option<u32>,
    /// The window: messages handed out and not yet settled (including those waiting to be delivered
    /// again), at most this many. A receiver that finds it full takes nothing new until an ack frees a
    /// place, and counts as stalled meanwhile.
    pub max_in_flight: u32,
}

impl AckOptions {
    /// 30 s, as JetStream's default `AckWait`.
    pub const DEFAULT_ACK_WAIT: Duration = Duration::from_secs(30);
    /// 1,000 messages, as JetStream's default `MaxAckPending`.
    pub const DEFAULT_MAX_IN_FLIGHT: u32 = 1_000;
    /// The largest window accepted: 2^20 messages (each place costs about 64 bytes, taken at subscribe).
    pub const MAX_IN_FLIGHT: u32 = 1 << 20;

    /// 30 s to ack, no delivery limit, a window of 1,000.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets how long a receiver has to settle a delivery.
    pub fn ack_wait(mut self, wait: Duration) -> Self {
        self.ack_wait = wait;
        self
    }

    /// Sets how many deliveries a message gets before it goes to the dead letters.
    pub fn max_deliveries(mut self, deliveries: u32) -> Self {
        self.max_deliveries = Some(deliveries);
        self
    }

    /// Sets the window: how many messages may be handed out and not yet settled.
    pub fn max_in_flight(mut self, window: u32) -> Self {
        self.max_in_flight = window;
        self
    }

    /// Refuses settings that cannot work, naming the setting.
    pub(crate) fn check(&self) -> Result<(), AckOptionsError> {
        if self.ack_wait.is_zero() {
            return Err(AckOptionsError::ZeroAckWait);
        }
        if self.max_deliveries == Some(0) {
            return Err(AckOptionsError::ZeroMaxDeliveries);
        }
        if self.max_in_flight == 0 || self.max_in_flight > Self::MAX_IN_FLIGHT {
            return Err(AckOptionsError::Window {
                asked: self.max_in_flight,
                max: Self::MAX_IN_FLIGHT,
            });
        }
        Ok(())
    }
}

impl Default for AckOptions {
    fn default() -> Self {
        Self {
            ack_wait: Self::DEFAULT_ACK_WAIT,
            max_deliveries: None,
            max_in_flight: Self::DEFAULT_MAX_IN_FLIGHT,
        }
    }
}

/// Why [`AckOptions`] were refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AckOptionsError {
    /// `ack_wait` was zero: every delivery would expire at once.
    #[error("ack_wait must be more than zero")]
    ZeroAckWait,
    /// `max_deliveries` was zero: no message could ever be delivered.
    #[error("max_deliveries must be at least 1 (or None for no limit)")]
    ZeroMaxDeliveries,
    /// `max_in_flight` was zero or over the limit.
    #[error("max_in_flight must be between 1 and {max}, got {asked}")]
    Window {
        /// What was asked for.
        asked: u32,
        /// The limit, [`AckOptions::MAX_IN_FLIGHT`].
        max: u32,
    },
}

/// A `Duration` as whole milliseconds in state files.
mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}
