//! Message priorities: how urgent a message is, and counts split by priority.
//!
//! Within one subscription, a receive takes the highest-priority message that was queued when it
//! began, and messages of one priority in the order they were queued (FIFO per priority). How the
//! queue keeps that promise is in `src/queue/lanes.rs`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// How urgent a message is. Receivers take higher priorities first; `Normal` is the default.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "kebab-case")]
#[repr(u8)]
pub enum Priority {
    /// Taken only when nothing else is queued.
    Low = 0,
    /// The default.
    #[default]
    Normal = 1,
    /// Taken before `Normal` and `Low`.
    High = 2,
    /// Taken before everything else.
    Critical = 3,
}

impl Priority {
    /// Every priority, lowest first (the order of [`DroppedByPriority`]'s fields).
    pub const ALL: [Priority; 4] = [
        Priority::Low,
        Priority::Normal,
        Priority::High,
        Priority::Critical,
    ];

    /// The name used in stats and on the command line: `low`, `normal`, `high`, `critical`.
    pub fn name(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Normal => "normal",
            Priority::High => "high",
            Priority::Critical => "critical",
        }
    }

    #[inline]
    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

/// A priority name that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown priority `{0}`; expected `low`, `normal`, `high` or `critical`")]
pub struct ParsePriorityError(pub String);

impl FromStr for Priority {
    type Err = ParsePriorityError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "low" => Ok(Priority::Low),
            "normal" => Ok(Priority::Normal),
            "high" => Ok(Priority::High),
            "critical" => Ok(Priority::Critical),
            _ => Err(ParsePriorityError(s.to_string())),
        }
    }
}

/// Counts split by priority. Serialises as `{ "low": 0, "normal": 0, "high": 0, "critical": 0 }`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ByPriority {
    /// `Low` messages.
    pub low: u64,
    /// `Normal` messages.
    pub normal: u64,
    /// `High` messages.
    pub high: u64,
    /// `Critical` messages.
    pub critical: u64,
}

/// Dropped messages, split by priority (the `dropped_by_priority` object of the stats schema).
pub type DroppedByPriority = ByPriority;

impl ByPriority {
    /// All priorities together.
    pub fn total(&self) -> u64 {
        self.low + self.normal + self.high + self.critical
    }

    /// The count for one priority.
    pub fn get(&self, priority: Priority) -> u64 {
        match priority {
            Priority::Low => self.low,
            Priority::Normal => self.normal,
            Priority::High => self.high,
            Priority::Critical => self.critical,
        }
    }

    pub(crate) fn from_array(a: [u64; 4]) -> Self {
        Self {
            low: a[0],
            normal: a[1],
            high: a[2],
            critical: a[3],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priorities_parse_by_name_and_order_low_to_critical() {
        for p in Priority::ALL {
            assert_eq!(p.name().parse(), Ok(p));
        }
        assert!(Priority::Low < Priority::Normal && Priority::High < Priority::Critical);
        let e = "urgent".parse::<Priority>().unwrap_err();
        assert!(e.to_string().contains("`urgent`"));
    }
}
