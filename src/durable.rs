//! Durable subscriptions: subscriptions that outlive their receivers and can be saved and restored.
//!
//! A subscription created with [`crate::SubscriptionOptions::durable`] (it must have a name) is not
//! removed when its last receiver handle is dropped: it keeps matching and queueing (up to its
//! capacity, under its overflow policy) until [`crate::Broker::unsubscribe`] removes it. Get a receiver
//! for it again with [`crate::Broker::attach`], or by subscribing again with the same name and filter.
//!
//! [`crate::Broker::save_state`] writes the durable subscriptions (name, filter and options) to a JSON
//! file; [`crate::Broker::restore_state`] recreates them. The write goes to a temporary file in the
//! same directory, is flushed to disk, then renamed over the target, so the file is always either the
//! old or the new state, never half written.
//!
//! **Messages are not persisted.** The queues live in memory: a restart restores the subscriptions,
//! empty. Counters start again from zero.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::policy::OverflowPolicy;
use crate::subscription::SubscriptionOptions;

/// The schema identifier of a state file.
pub const STATE_SCHEMA: &str = "switchyard.state/v1";

/// The durable subscriptions of a broker, as saved to a state file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DurableState {
    /// Always [`STATE_SCHEMA`].
    pub schema: String,
    /// The durable subscriptions, by id order.
    pub subscriptions: Vec<DurableSubscription>,
}

/// One durable subscription in a state file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DurableSubscription {
    /// Its name (unique among durable subscriptions).
    pub name: String,
    /// Its filter.
    pub filter: String,
    /// Capacity per priority lane.
    pub capacity: usize,
    /// Overflow policy.
    #[serde(flatten)]
    pub policy: OverflowPolicy,
    /// Whether it is joinable.
    #[serde(default)]
    pub joinable: bool,
}

impl DurableSubscription {
    /// The options that recreate it.
    pub fn options(&self) -> SubscriptionOptions {
        SubscriptionOptions::new()
            .name(self.name.clone())
            .capacity(self.capacity)
            .policy(self.policy)
            .joinable(self.joinable)
            .durable(true)
    }
}

/// Why saving or restoring a state file failed. Each names the file.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The file exists but could not be read.
    #[error("cannot read the state file {}: {source}", path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file was read but is not a valid state file.
    #[error("the state file {} is corrupt: {problem}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// The new state could not be written.
    #[error("cannot write the state file {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

impl StateError {
    /// Whether the file's content is at fault (as opposed to I/O), so setting it aside can help.
    pub fn is_corrupt(&self) -> bool {
        matches!(self, StateError::Corrupt { .. })
    }
}

/// Reads and validates a state file. A missing file is an empty state.
pub fn read_state(path: &Path) -> Result<DurableState, StateError> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(DurableState {
                schema: STATE_SCHEMA.to_string(),
                subscriptions: Vec::new(),
            });
        }
        Err(source) => {
            return Err(StateError::Unreadable {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let corrupt = |problem: String| StateError::Corrupt {
        path: path.to_path_buf(),
        problem,
    };
    let state: DurableState = serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
    if state.schema != STATE_SCHEMA {
        return Err(corrupt(format!(
            "schema is `{}`, expected `{STATE_SCHEMA}`",
            state.schema
        )));
    }
    let mut names = std::collections::HashSet::new();
    for s in &state.subscriptions {
        if !names.insert(s.name.as_str()) {
            return Err(corrupt(format!(
                "the name `{}` appears more than once",
                s.name
            )));
        }
    }
    Ok(state)
}

/// Writes `state` to `path` atomically: a temporary file in the same directory, flushed, then renamed.
pub fn write_state(path: &Path, state: &DurableState) -> Result<(), StateError> {
    let write_err = |source| StateError::Write {
        path: path.to_path_buf(),
        source,
    };
    let json = serde_json::to_vec_pretty(state).map_err(|e| write_err(std::io::Error::other(e)))?;
    let file_name = path
        .file_name()
        .ok_or_else(|| write_err(std::io::Error::other("the path has no file name")))?;
    let mut tmp_name = file_name.to_os_string();
    tmp_name.push(format!(".tmp-{}", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    let result = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(&json)?;
        f.write_all(b"\n")?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(write_err)
}
