//! What a subscription does when its queue is full.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::sync::{AtomicU64, Ordering};

/// The overflow policy of a subscription.
///
/// # `DropNewest` (the default)
/// The incoming message is not queued and is counted as dropped (`queue_full`). What is already queued
/// is delivered in order. Choose it when the oldest data still matters (a job queue, an audit trail).
///
/// # `DropOldest`
/// The oldest queued message is evicted to make room and counted as dropped (`evicted`); the new one is
/// queued. Choose it when only recent data matters (price ticks, sensor readings): a slow receiver
/// catches up with the present instead of working through the past.
///
/// # `Block { timeout }`
/// The publisher waits for room (back-pressure), up to `timeout`; if none appears, the message is counted
/// as dropped (`timeout`). Choose it when the producer can slow down and losing messages is worse than
/// waiting. A publisher blocked on one subscription delays every later subscription of the same publish.
///
/// The policy belongs to one subscription, never to the broker, and can be changed while the
/// subscription runs ([`crate::Subscription::set_policy`]): each message is judged by the policy in force
/// when it meets a full queue, and is counted exactly once either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "policy")]
pub enum OverflowPolicy {
    /// Refuse the incoming message and count it as dropped (`queue_full`).
    #[default]
    DropNewest,
    /// Evict the oldest queued message, count it as dropped (`evicted`), queue the new one.
    DropOldest,
    /// Make the publisher wait up to `timeout` for room; then count the message as dropped (`timeout`).
    Block {
        /// How long a publisher may wait for room.
        #[serde(with = "duration_text")]
        timeout: Duration,
    },
}

impl OverflowPolicy {
    /// The name used in stats and on the command line: `drop-newest`, `drop-oldest` or `block`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::DropNewest => "drop-newest",
            Self::DropOldest => "drop-oldest",
            Self::Block { .. } => "block",
        }
    }

    /// The default wait of [`OverflowPolicy::Block`] when none is given: one second.
    pub const DEFAULT_BLOCK_TIMEOUT: Duration = Duration::from_secs(1);
}

impl fmt::Display for OverflowPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Block { timeout } => write!(f, "block:{}", humantime::format_duration(*timeout)),
            other => f.write_str(other.name()),
        }
    }
}

/// An overflow policy that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown overflow policy `{0}`; expected `drop-newest`, `drop-oldest`, `block` or `block:<timeout>` \
     (such as `block:250ms`)"
)]
pub struct ParsePolicyError(pub String);

impl FromStr for OverflowPolicy {
    type Err = ParsePolicyError;

    /// Parses `drop-newest`, `drop-oldest`, `block` (one second) or `block:<duration>` (`block:250ms`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "drop-newest" => Ok(Self::DropNewest),
            "drop-oldest" => Ok(Self::DropOldest),
            "block" => Ok(Self::Block {
                timeout: Self::DEFAULT_BLOCK_TIMEOUT,
            }),
            other => other
                .strip_prefix("block:")
                .and_then(|t| humantime::parse_duration(t.trim()).ok())
                .map(|timeout| Self::Block { timeout })
                .ok_or_else(|| ParsePolicyError(s.to_string())),
        }
    }
}

/// The `timeout` of `Block` in a state file: a duration text such as `"500us"` or `"1s"`, written
/// exactly to the nanosecond. A number is read as milliseconds, as files written before this form hold.
mod duration_text {
    use std::fmt;
    use std::time::Duration;

    use serde::de::{self, Visitor};
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&humantime::format_duration(*d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        struct DurationVisitor;

        impl Visitor<'_> for DurationVisitor {
            type Value = Duration;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a duration such as \"250ms\" or \"500us\", or a number of milliseconds",
                )
            }

            fn visit_u64<E: de::Error>(self, ms: u64) -> Result<Duration, E> {
                Ok(Duration::from_millis(ms))
            }

            fn visit_i64<E: de::Error>(self, ms: i64) -> Result<Duration, E> {
                u64::try_from(ms)
                    .map(Duration::from_millis)
                    .map_err(|_| E::custom(format!("a negative timeout ({ms} ms)")))
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<Duration, E> {
                humantime::parse_duration(text)
                    .map_err(|e| E::custom(format!("timeout `{text}` is not a duration: {e}")))
            }
        }

        d.deserialize_any(DurationVisitor)
    }
}

const KIND_DROP_NEWEST: u64 = 0;
const KIND_DROP_OLDEST: u64 = 1;
const KIND_BLOCK: u64 = 2;
/// The kind sits in the top two bits, the `Block` timeout in nanoseconds in the other 62.
const KIND_SHIFT: u32 = 62;
/// The longest timeout stored: 2^62 - 1 ns, about 146 years (longer ones are stored as this).
const TIMEOUT_MASK: u64 = (1 << KIND_SHIFT) - 1;

/// An [`OverflowPolicy`] that can be read on the data path and replaced while publishers run.
///
/// One word: the kind in the top two bits and a `Block` timeout in nanoseconds (at most about 146
/// years) in the rest, so a reader always sees a kind with the timeout that was stored with it, and
/// the policy takes 8 bytes of the subscription's read-mostly line.
#[derive(Debug)]
pub(crate) struct AtomicPolicy {
    word: AtomicU64,
}

impl AtomicPolicy {
    pub(crate) fn new(policy: OverflowPolicy) -> Self {
        Self {
            word: AtomicU64::new(Self::encode(policy)),
        }
    }

    fn encode(policy: OverflowPolicy) -> u64 {
        match policy {
            OverflowPolicy::DropNewest => KIND_DROP_NEWEST << KIND_SHIFT,
            OverflowPolicy::DropOldest => KIND_DROP_OLDEST << KIND_SHIFT,
            OverflowPolicy::Block { timeout } => {
                let ns = u64::try_from(timeout.as_nanos())
                    .map_or(TIMEOUT_MASK, |ns| ns.min(TIMEOUT_MASK));
                (KIND_BLOCK << KIND_SHIFT) | ns
            }
        }
    }

    pub(crate) fn store(&self, policy: OverflowPolicy) {
        self.word.store(Self::encode(policy), Ordering::Release);
    }

    #[inline]
    pub(crate) fn load(&self) -> OverflowPolicy {
        let word = self.word.load(Ordering::Acquire);
        match word >> KIND_SHIFT {
            KIND_DROP_OLDEST => OverflowPolicy::DropOldest,
            KIND_BLOCK => OverflowPolicy::Block {
                timeout: Duration::from_nanos(word & TIMEOUT_MASK),
            },
            _ => OverflowPolicy::DropNewest,
        }
    }

    /// Whether publishers may be waiting for room, so receivers must wake them after taking a message.
    #[inline]
    pub(crate) fn is_block(&self) -> bool {
        self.word.load(Ordering::Relaxed) >> KIND_SHIFT == KIND_BLOCK
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_atomic_policy_gives_back_what_was_stored_and_caps_the_timeout_at_146_years() {
        let policy = AtomicPolicy::new(OverflowPolicy::DropOldest);
        assert_eq!(policy.load(), OverflowPolicy::DropOldest);
        assert!(!policy.is_block());
        let block = OverflowPolicy::Block {
            timeout: Duration::from_millis(250),
        };
        policy.store(block);
        assert_eq!(policy.load(), block);
        assert!(policy.is_block());
        policy.store(OverflowPolicy::DropNewest);
        assert_eq!(policy.load(), OverflowPolicy::DropNewest);
        policy.store(OverflowPolicy::Block {
            timeout: Duration::MAX,
        });
        assert_eq!(
            policy.load(),
            OverflowPolicy::Block {
                timeout: Duration::from_nanos(TIMEOUT_MASK)
            }
        );
        assert!(Duration::from_nanos(TIMEOUT_MASK) > Duration::from_secs(146 * 365 * 86_400));
    }

    #[test]
    fn parses_every_policy_name_and_rejects_others_with_the_input_named() {
        assert_eq!("drop-newest".parse(), Ok(OverflowPolicy::DropNewest));
        assert_eq!("drop-oldest".parse(), Ok(OverflowPolicy::DropOldest));
        assert_eq!(
            "block:250ms".parse(),
            Ok(OverflowPolicy::Block {
                timeout: Duration::from_millis(250)
            })
        );
        let e = "drop-all".parse::<OverflowPolicy>().unwrap_err();
        assert!(e.to_string().contains("`drop-all`"));
        assert!("block:soon".parse::<OverflowPolicy>().is_err());
    }

    #[test]
    fn atomic_policy_round_trips() {
        let p = AtomicPolicy::new(OverflowPolicy::DropOldest);
        assert_eq!(p.load(), OverflowPolicy::DropOldest);
        let block = OverflowPolicy::Block {
            timeout: Duration::from_millis(7),
        };
        p.store(block);
        assert_eq!(p.load(), block);
        assert!(p.is_block());
    }
}

#[cfg(all(test, switchyard_loom))]
mod loom_models {
    use loom::sync::Arc;
    use loom::thread;

    use super::*;

    #[test]
    fn loom_a_reader_that_sees_block_sees_its_timeout() {
        loom::model(|| {
            let policy = Arc::new(AtomicPolicy::new(OverflowPolicy::DropNewest));
            let writer = {
                let p = policy.clone();
                thread::spawn(move || {
                    p.store(OverflowPolicy::Block {
                        timeout: Duration::from_millis(5),
                    })
                })
            };
            if let OverflowPolicy::Block { timeout } = policy.load() {
                assert_eq!(timeout, Duration::from_millis(5));
            }
            writer.join().unwrap();
        });
    }
}
