//! The rules in force ([`AccessRules`]: the password file and the ACL), swapped whole by a reload
//! ([`Access::replace`]), and what they refused ([`AccessCounters`], shown as [`AclStats`] and
//! [`ReloadStats`]).
//!
//! A connection does not take a lock to read the rules: it keeps the version it compiled its own rules
//! from and compares it with [`Access::version`] (one atomic load) before a decision; only after a
//! reload does it take the read lock, once, to fetch the new rules.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};

use super::acl::AclFile;
use super::password_file::PasswordFile;

/// The files in force. Either may be absent: without a password file clients are anonymous, without
/// an ACL every client may read and write every topic (but `$` topics, which no client writes).
#[derive(Debug, Clone, Default)]
pub(crate) struct AccessRules {
    pub passwords: Option<Arc<PasswordFile>>,
    pub acl: Option<Arc<AclFile>>,
}

/// The rules in force and their version; replaced whole, never edited.
#[derive(Debug, Default)]
pub(crate) struct Access {
    rules: RwLock<Arc<AccessRules>>,
    /// Bumped after each replacement (Release), so a connection that sees a new version (Acquire)
    /// then reads the new rules.
    version: AtomicU64,
    pub counters: AccessCounters,
}

impl Access {
    pub fn new(rules: AccessRules) -> Self {
        Self {
            rules: RwLock::new(Arc::new(rules)),
            version: AtomicU64::new(0),
            counters: AccessCounters::default(),
        }
    }

    /// The version of the rules in force: changes with each [`Access::replace`].
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// The rules in force and their version.
    pub fn current(&self) -> (u64, Arc<AccessRules>) {
        let rules = self.rules.read().unwrap_or_else(|e| e.into_inner()).clone();
        // Read after the rules: a version newer than these rules only makes the caller look again.
        (self.version(), rules)
    }

    /// The password file in force.
    pub fn passwords(&self) -> Option<Arc<PasswordFile>> {
        self.current().1.passwords.clone()
    }

    /// Puts `rules` in force; each connection picks them up before its next decision.
    pub fn replace(&self, rules: AccessRules) {
        *self.rules.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(rules);
        self.version.fetch_add(1, Ordering::Release);
    }

    pub fn stats(&self) -> (AclStats, ReloadStats) {
        let c = &self.counters;
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let acl = self.current().1.acl.clone();
        (
            AclStats {
                acl_file: acl.is_some(),
                lines: acl.map_or(0, |a| a.lines() as u64),
                refused_by_reason: AclRefusedByReason {
                    subscribe: load(&c.subscribe),
                    publish: load(&c.publish),
                    will: load(&c.will),
                    retained_read: load(&c.retained_read),
                    read: load(&c.read),
                },
                revoked_clients: load(&c.revoked),
            },
            ReloadStats {
                reloads: load(&c.reloads),
                refused: load(&c.reloads_refused),
                last_refusal: c
                    .last_refusal
                    .read()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone(),
            },
        )
    }
}

/// What the rules refused, and the reloads.
#[derive(Debug, Default)]
pub(crate) struct AccessCounters {
    pub subscribe: AtomicU64,
    pub publish: AtomicU64,
    pub will: AtomicU64,
    pub retained_read: AtomicU64,
    pub read: AtomicU64,
    pub revoked: AtomicU64,
    pub reloads: AtomicU64,
    pub reloads_refused: AtomicU64,
    pub last_refusal: RwLock<Option<String>>,
}

impl AccessCounters {
    pub fn count(&self, refusal: Refusal) {
        let counter = match refusal {
            Refusal::Subscribe => &self.subscribe,
            Refusal::Publish => &self.publish,
            Refusal::Will => &self.will,
            Refusal::RetainedRead => &self.retained_read,
            Refusal::Read => &self.read,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// What a permission refusal refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    Subscribe,
    Publish,
    Will,
    RetainedRead,
    Read,
}

/// Permission refusals by reason (the `refused_by_reason` object of [`AclStats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclRefusedByReason {
    /// Filters refused in SUBACK (0x80): the client may read no topic the filter matches.
    pub subscribe: u64,
    /// Client publishes not routed (QoS 1/2 still acknowledged, as MQTT 3.1.1 has no negative
    /// acknowledgement).
    pub publish: u64,
    /// Wills not published: their client may not write their topic.
    pub will: u64,
    /// Retained messages a new subscription matched but its client may not read: not sent.
    pub retained_read: u64,
    /// Live messages a subscription's filter matched but its client may not read (a wildcard over a
    /// denied topic, or rules reloaded since it subscribed): not sent.
    pub read: u64,
}

impl AclRefusedByReason {
    /// All reasons together.
    pub fn total(&self) -> u64 {
        self.subscribe + self.publish + self.will + self.retained_read + self.read
    }
}

/// The ACL's work (the `acl` object of [`crate::MqttStats`], a v1 addition; zero without an ACL
/// file, except `revoked_clients`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclStats {
    /// Whether an ACL file is in force.
    pub acl_file: bool,
    /// Its rule lines (`user`, `topic`, `pattern`).
    pub lines: u64,
    /// Permission refusals by reason.
    pub refused_by_reason: AclRefusedByReason,
    /// Connections whose user a reload removed from the password file: they stay connected but may
    /// do nothing more (every publish, subscription and delivery is refused, counted above).
    pub revoked_clients: u64,
}

/// SIGHUP reloads of the password and ACL files (the `reload` object of [`crate::MqttStats`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReloadStats {
    /// Reloads that put new files in force.
    pub reloads: u64,
    /// Reloads refused because a file did not read or parse (the old files stayed in force).
    pub refused: u64,
    /// Why the latest refused reload was refused (file and line).
    pub last_refusal: Option<String>,
}
