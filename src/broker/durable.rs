//! Durable subscriptions: subscriptions that outlive their receivers and can be saved and restored.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use crate::broker::{Broker, SubscribeError, check_capacity};
use crate::features::ack::options::AckOptions;
use crate::queue::policy::OverflowPolicy;
use crate::subscription::{AckSubscription, Subscription, SubscriptionCore, SubscriptionOptions};
use crate::topic::Filter;

/// The schema identifier of a state file.
pub const STATE_SCHEMA: &str = "switchyard.state/v1";

/// The durable subscriptions of a broker, as saved to a state file.
///
/// A subscription created with [`crate::SubscriptionOptions::durable`] (it must have a name) is not
/// removed when its last receiver handle is dropped: it keeps matching and queueing (up to its
/// capacity, under its overflow policy) until [`crate::Broker::unsubscribe`] removes it. Get a receiver
/// for it again with [`crate::Broker::attach`], or by subscribing again with the same name and filter.
///
/// [`crate::Broker::save_state`] writes the durable subscriptions (name, filter and options) to a JSON
/// file; [`crate::Broker::restore_state`] recreates them. The write goes to a temporary file in the
/// same directory, is flushed to disk, then renamed over the target, and the directory is synced, so the
/// file is always either the old or the new state, never half written, and the rename survives a crash.
/// Temporary files that a process killed mid-save left behind are removed by the next save or restore.
///
/// Restoring is all or nothing: every entry is checked (its filter, its capacity, and that no live
/// durable subscription has its name with another filter) before any is subscribed.
///
/// **Messages are not persisted**, neither queued nor in flight on an acknowledged subscription (its
/// settings are). The queues live in memory: a restart restores the subscriptions,
/// empty. Counters start again from zero.
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
    /// Its acknowledgement settings, if it is acknowledged (messages in flight are not saved).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ack: Option<AckOptions>,
    /// Whether its slots are allocated when it is made ([`SubscriptionOptions::preallocate`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub preallocate: bool,
}

impl DurableSubscription {
    /// The options that recreate it.
    pub fn options(&self) -> SubscriptionOptions {
        let options = SubscriptionOptions::new()
            .name(self.name.clone())
            .capacity(self.capacity)
            .policy(self.policy)
            .joinable(self.joinable)
            .preallocate(self.preallocate)
            .durable(true);
        match self.ack {
            Some(ack) => options.ack(ack),
            None => options,
        }
    }
}

/// The state-file entry of a durable subscription.
fn entry_of(core: &SubscriptionCore) -> DurableSubscription {
    DurableSubscription {
        name: core.name.to_string(),
        filter: core.filter.to_string(),
        capacity: core.capacity(),
        policy: core.policy(),
        joinable: core.is_joinable(),
        ack: core.ack_options(),
        preallocate: core.preallocated,
    }
}

/// The broker's durable-subscription calls. Subscribing a durable subscription (by name, attaching to
/// an existing one) is part of [`Broker::subscribe_with`].
impl Broker {
    /// A new receiver of the durable subscription called `name`, if there is one. See
    /// [`DurableState`](crate::DurableState).
    ///
    /// ```
    /// use switchyard::{Broker, SubscriptionOptions};
    ///
    /// let broker = Broker::new();
    /// let options = SubscriptionOptions::new().name("billing").durable(true);
    /// drop(broker.subscribe_with("orders/#", options)?); // durable: still subscribed
    /// broker.publish("orders/1", "42.00")?;
    ///
    /// let billing = broker.attach("billing").expect("a durable subscription called billing");
    /// assert_eq!(&billing.try_recv()?.payload()[..], b"42.00");
    /// assert!(broker.attach("nobody").is_none());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    /// `None` also when it is acknowledged: attach those with [`Broker::attach_acked`].
    pub fn attach(&self, name: &str) -> Option<Subscription> {
        let core = self.shared().control().durable(name)?.clone();
        (!core.is_acked()).then(|| Subscription::new(core, self.shared().clone()))
    }

    /// A new receiver of the durable acknowledged subscription called `name`, if there is one.
    ///
    /// ```
    /// use switchyard::{AckOptions, Broker, SubscriptionOptions};
    ///
    /// let broker = Broker::new();
    /// let ack = AckOptions::new().max_deliveries(3);
    /// let options = SubscriptionOptions::new().name("billing").durable(true).ack(ack);
    /// drop(broker.subscribe_acked_with("orders/#", options)?);
    /// broker.publish("orders/1", "42.00")?;
    ///
    /// let billing = broker.attach_acked("billing").expect("durable");
    /// billing.try_recv()?.ack()?;
    /// assert!(broker.attach("billing").is_none()); // a plain handle could not ack
    /// assert_eq!(broker.durable_state().subscriptions[0].ack, Some(ack)); // saved with its settings
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn attach_acked(&self, name: &str) -> Option<AckSubscription> {
        let core = self.shared().control().durable(name)?.clone();
        core.is_acked()
            .then(|| AckSubscription::new(core, self.shared().clone()))
    }

    /// The durable subscriptions now, as a state file holds them.
    ///
    /// ```
    /// use switchyard::{Broker, OverflowPolicy, STATE_SCHEMA, SubscriptionOptions};
    ///
    /// let broker = Broker::new();
    /// let _logs = broker.subscribe("logs/#")?; // not durable: not in the state
    /// let options = SubscriptionOptions::new().name("billing").durable(true).capacity(64);
    /// let _billing = broker.subscribe_with("orders/#", options)?;
    ///
    /// let state = broker.durable_state();
    /// assert_eq!(state.schema, STATE_SCHEMA);
    /// assert_eq!(state.subscriptions.len(), 1);
    /// let entry = &state.subscriptions[0];
    /// assert_eq!((entry.name.as_str(), entry.filter.as_str()), ("billing", "orders/#"));
    /// assert_eq!((entry.capacity, entry.policy), (64, OverflowPolicy::DropNewest));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn durable_state(&self) -> DurableState {
        let ctl = self.shared().control();
        DurableState {
            schema: STATE_SCHEMA.to_string(),
            subscriptions: ctl.durables().map(|c| entry_of(c)).collect(),
        }
    }

    /// Saves the durable subscriptions to `path` (write to a temporary file, then rename). Messages are
    /// not saved. See [`DurableState`](crate::DurableState).
    ///
    /// ```
    /// use switchyard::{Broker, SubscriptionOptions};
    ///
    /// let path = std::env::temp_dir().join(format!("switchyard-save-{}.json", std::process::id()));
    /// let broker = Broker::new();
    /// let options = SubscriptionOptions::new().name("billing").durable(true);
    /// let _billing = broker.subscribe_with("orders/#", options)?;
    ///
    /// broker.save_state(&path)?;
    /// let saved = std::fs::read_to_string(&path)?;
    /// assert!(saved.contains("switchyard.state/v1") && saved.contains("orders/#"));
    /// std::fs::remove_file(&path)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn save_state(&self, path: impl AsRef<Path>) -> Result<(), StateError> {
        write_state(path.as_ref(), &self.durable_state())
    }

    /// Recreates the durable subscriptions saved in `path` (a missing file restores nothing) and
    /// returns how many entries the file has; ones that already exist here with the same filter are
    /// kept as they are. The file is never modified (temporary files that a process killed mid-save
    /// left beside it are removed).
    ///
    /// All or nothing: every entry is checked before any is subscribed. A file that is not a valid
    /// state file, or has an invalid filter or capacity, is [`StateError::Corrupt`], naming the file and
    /// the problem; a name that a live durable subscription has with another filter is
    /// [`StateError::NameTaken`]. Either way nothing is subscribed.
    ///
    /// ```
    /// use switchyard::{Broker, SubscriptionOptions};
    ///
    /// let path = std::env::temp_dir().join(format!("switchyard-restore-{}.json", std::process::id()));
    /// let broker = Broker::new();
    /// let options = SubscriptionOptions::new().name("billing").durable(true);
    /// let _billing = broker.subscribe_with("orders/#", options)?;
    /// broker.publish("orders/1", "42.00")?;
    /// broker.save_state(&path)?;
    ///
    /// let restarted = Broker::new();
    /// assert_eq!(restarted.restore_state(&path)?, 1);
    /// let billing = restarted.attach("billing").expect("restored");
    /// assert_eq!(billing.filter().as_str(), "orders/#");
    /// assert!(billing.is_empty()); // messages are not saved
    /// std::fs::remove_file(&path)?;
    /// assert_eq!(Broker::new().restore_state(&path)?, 0); // a missing file restores nothing
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn restore_state(&self, path: impl AsRef<Path>) -> Result<usize, StateError> {
        let path = path.as_ref();
        let state = read_state(path)?;
        remove_stale_temporaries(path);
        let mut ctl = self.shared().control();
        let mut fresh = Vec::new();
        for entry in &state.subscriptions {
            let corrupt = |e: SubscribeError| StateError::Corrupt {
                path: path.to_path_buf(),
                problem: format!("subscription `{}`: {e}; nothing was restored", entry.name),
            };
            let filter = Filter::with_limits(&entry.filter, &self.limits())
                .map_err(|e| corrupt(e.into()))?;
            check_capacity(entry.capacity).map_err(corrupt)?;
            if let Some(ack) = &entry.ack {
                ack.check().map_err(|e| corrupt(e.into()))?;
            }
            match ctl.durable(&entry.name) {
                Some(live) if live.filter.as_str() != filter.as_str() => {
                    return Err(StateError::NameTaken {
                        path: path.to_path_buf(),
                        name: entry.name.clone(),
                        existing: live.filter.to_string(),
                        filter: entry.filter.clone(),
                    });
                }
                Some(_) => {}
                None => fresh.push((filter, entry.options())),
            }
        }
        for (filter, options) in fresh {
            self.add_subscription(&mut ctl, filter, &options);
        }
        Ok(state.subscriptions.len())
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
    /// The file names a durable subscription that already exists here with another filter. Nothing
    /// was restored.
    #[error(
        "cannot restore the state file {}: the durable subscription `{name}` already exists with \
         filter `{existing}`, the file has `{filter}`; nothing was restored",
        path.display()
    )]
    NameTaken {
        /// The file.
        path: PathBuf,
        /// The subscription's name.
        name: String,
        /// The live subscription's filter.
        existing: String,
        /// The filter in the file.
        filter: String,
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
    // The schema first, so that another kind of JSON file (a stats snapshot, say) is named as such
    // instead of being reported by the first field it lacks.
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| corrupt(format!("not JSON: {e}")))?;
    match value.get("schema").and_then(|s| s.as_str()) {
        Some(STATE_SCHEMA) => {}
        Some(crate::stats::snapshot::SCHEMA) => {
            return Err(corrupt(format!(
                "it is a stats snapshot (schema `{}`), not a state file (schema `{STATE_SCHEMA}`, \
                 written by Broker::save_state)",
                crate::stats::snapshot::SCHEMA
            )));
        }
        Some(other) => {
            return Err(corrupt(format!(
                "schema is `{other}`, expected `{STATE_SCHEMA}`"
            )));
        }
        None => {
            return Err(corrupt(format!(
                "it has no \"schema\" field; a state file is a JSON object with \
                 \"schema\": \"{STATE_SCHEMA}\""
            )));
        }
    }
    let state: DurableState = serde_json::from_value(value)
        .map_err(|e| corrupt(format!("not a valid `{STATE_SCHEMA}` file: {e}")))?;
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

/// Writes `state` to `path` atomically: a temporary file in the same directory, flushed, renamed over
/// `path`, and the directory synced so the rename itself survives a crash. Temporary files left by
/// processes that died mid-save (`<name>.tmp-<pid>-<n>`) are removed first.
pub fn write_state(path: &Path, state: &DurableState) -> Result<(), StateError> {
    static SAVES: AtomicU64 = AtomicU64::new(0);
    let write_err = |source| StateError::Write {
        path: path.to_path_buf(),
        source,
    };
    let json = serde_json::to_vec_pretty(state).map_err(|e| write_err(std::io::Error::other(e)))?;
    let file_name = path
        .file_name()
        .ok_or_else(|| write_err(std::io::Error::other("the path has no file name")))?;
    remove_stale_temporaries(path);
    let mut tmp_name = file_name.to_os_string();
    tmp_name.push(format!(
        "{TMP_INFIX}{}-{}",
        std::process::id(),
        SAVES.fetch_add(1, Ordering::Relaxed)
    ));
    let tmp = path.with_file_name(tmp_name);
    let result = (|| {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(&json)?;
        f.write_all(b"\n")?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        sync_directory_of(path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(write_err)
}

/// What separates a state file's name from the writer's pid in its temporary files.
const TMP_INFIX: &str = ".tmp-";

/// Makes a rename in `path`'s directory durable (a no-op where directories cannot be opened).
fn sync_directory_of(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        fs::File::open(dir)?.sync_all()?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Removes `<name>.tmp-<pid>-…` files beside `path` whose writing process is gone. Best effort: a file
/// that cannot be listed or removed is left alone, and so is every file of a live process.
pub(crate) fn remove_stale_temporaries(path: &Path) {
    let (Some(name), Some(dir)) = (path.file_name().and_then(|n| n.to_str()), path.parent()) else {
        return;
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let prefix = format!("{name}{TMP_INFIX}");
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(pid) = file_name
            .to_str()
            .and_then(|n| n.strip_prefix(&prefix))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !process_is_alive(pid) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// Whether process `pid` exists. Where that cannot be told (no `/proc`), every process is taken as
/// alive, so nothing that may be in use is removed.
fn process_is_alive(pid: u32) -> bool {
    let proc = Path::new("/proc");
    !proc.join("self").exists() || proc.join(pid.to_string()).exists()
}
