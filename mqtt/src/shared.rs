//! [`ServerShared`]: what the listener's tasks share (the broker, the configuration, the counters and
//! the sessions), below the listener, its connections and its `$SYS` publisher, which all read it;
//! and [`OpenConnection`], a connection as those counters see it, from its accept to its close.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use switchyard::Broker;

use crate::auth::{Access, FailureDelays};
use crate::config::MqttConfig;
use crate::listener_stats::{
    AuthRefusedByReason, AuthStats, CloseReason, MqttStats, ServerCounters,
};
use crate::pending::PendingConnects;
use crate::session::SessionRegistry;
use crate::shared_group::SharedGroups;
use crate::transport::ListenerState;

/// What every connection task shares.
pub(crate) struct ServerShared {
    pub broker: Broker,
    pub config: MqttConfig,
    pub counters: ServerCounters,
    pub sessions: SessionRegistry,
    /// Shared subscriptions, `$share/GROUP/FILTER`.
    pub groups: Arc<SharedGroups>,
    pub pending: PendingConnects,
    pub next_auto_id: AtomicU64,
    pub local_addr: SocketAddr,
    /// Failed logins by address, for the delay before their CONNACK.
    pub failure_delays: FailureDelays,
    /// The password file and ACL in force (swapped by a reload) and what they refused.
    pub access: Access,
    /// Every listener and its counters, the first one's address being `local_addr`.
    pub listeners: Vec<Arc<ListenerState>>,
}

impl ServerShared {
    pub fn stats(&self) -> MqttStats {
        MqttStats {
            clients: self.sessions.stats(&self.broker),
            ..self.totals()
        }
    }

    /// [`ServerShared::stats`] without the per-client list (which costs a look at every session).
    pub fn totals(&self) -> MqttStats {
        let c = &self.counters;
        let (acl, reload) = self.access.stats();
        MqttStats {
            address: self.local_addr.to_string(),
            accepted: c.accepted.load(Ordering::Relaxed),
            open: c.open.load(Ordering::Relaxed),
            pending: self.pending.len() as u64,
            accept_errors: c.accept_errors.load(Ordering::Relaxed),
            closed_by_reason: c.closed(),
            packets_in: c.packets_in.load(Ordering::Relaxed),
            packets_out: c.packets_out.load(Ordering::Relaxed),
            publishes_in: c.publishes_in.load(Ordering::Relaxed),
            retained_refused: c.retained_refused.load(Ordering::Relaxed),
            dollar_topic_refused: c.dollar_topic_refused.load(Ordering::Relaxed),
            wills_published: c.wills_published.load(Ordering::Relaxed),
            acks_unknown: c.acks_unknown.load(Ordering::Relaxed),
            shared_groups: self.groups.len() as u64,
            auth: AuthStats {
                password_file: self.access.passwords().is_some(),
                accepted: c.auth_accepted.load(Ordering::Relaxed),
                certificate: c.auth_certificate.load(Ordering::Relaxed),
                refused_by_reason: AuthRefusedByReason {
                    no_user_name: c.auth_no_user_name.load(Ordering::Relaxed),
                    bad_user_name_or_password: c.auth_bad_login.load(Ordering::Relaxed),
                    no_certificate_name: c.auth_no_certificate_name.load(Ordering::Relaxed),
                },
                delayed: c.auth_delayed.load(Ordering::Relaxed),
                delay_ms: c.auth_delay_ms.load(Ordering::Relaxed),
                delay_addresses: self.failure_delays.len() as u64,
                delay_evicted: c.auth_delay_evicted.load(Ordering::Relaxed),
            },
            acl,
            reload,
            listeners: self.listeners.iter().map(|l| l.stats()).collect(),
            clients: Vec::new(),
        }
    }

    /// Counts a newly accepted connection on `listener` (and in the server's totals).
    pub fn count_accepted(&self, listener: &ListenerState) {
        self.counters.accepted.fetch_add(1, Ordering::Relaxed);
        self.counters.open.fetch_add(1, Ordering::Relaxed);
        listener.count_accepted();
    }
}

/// A connection counted open on its listener and in the server's totals
/// ([`ServerShared::count_accepted`]) until [`OpenConnection::closed`] counts how it ended.
pub(crate) struct OpenConnection {
    pub shared: Arc<ServerShared>,
    listener: Arc<ListenerState>,
}

impl OpenConnection {
    pub(crate) fn new(shared: Arc<ServerShared>, listener: Arc<ListenerState>) -> Self {
        Self { shared, listener }
    }

    /// Counts the connection closed for `reason`.
    pub(crate) fn closed(self, reason: CloseReason) {
        self.shared.counters.count_close(reason);
        self.shared.counters.open.fetch_sub(1, Ordering::Relaxed);
        self.listener.count_closed();
    }
}
