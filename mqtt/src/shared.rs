//! [`ServerShared`]: what the listener's tasks share (the broker, the configuration, the counters and
//! the sessions), below the listener, its connections and its `$SYS` publisher, which all read it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use switchyard::Broker;

use crate::config::MqttConfig;
use crate::listener_stats::{MqttStats, ServerCounters};
use crate::pending::PendingConnects;
use crate::session::SessionRegistry;

/// What every connection task shares.
pub(crate) struct ServerShared {
    pub broker: Broker,
    pub config: MqttConfig,
    pub counters: ServerCounters,
    pub sessions: SessionRegistry,
    pub pending: PendingConnects,
    pub next_auto_id: AtomicU64,
    pub local_addr: SocketAddr,
}

impl ServerShared {
    pub fn stats(&self) -> MqttStats {
        let c = &self.counters;
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
            clients: self.sessions.stats(&self.broker),
        }
    }
}
