//! Sessions: what a client id owns across connections, and the registry that hands a session to
//! exactly one connection at a time.
//!
//! # Subscriptions are broker subscriptions
//! Each MQTT subscription of a client is one broker subscription (plain for QoS 0, acknowledged for
//! QoS 1 and 2: `crate::receiver`) with the configured capacity and overflow policy, named
//! `mqtt/<client id>/<filter>`; a shared one (`$share/GROUP/FILTER`) is a member's receiver of its
//! group's subscription (`crate::shared_group`). The session owns the handle: while
//! a persistent session's client is away the subscription stays in the broker and keeps queueing (up
//! to its capacity, then dropping by policy, counted), and the next connection delivers what it kept.
//! A clean session's handles are dropped when its connection ends, which unsubscribes them (anything
//! still queued is counted as dropped, `unsubscribed`).
//!
//! # Overlapping subscriptions
//! A message that matches several filters of one client is delivered once per matching subscription,
//! each at that subscription's QoS, as MQTT 3.1.1 section 3.3.5 allows ("the Server MAY deliver further
//! copies of the message, one for each additional matching subscription").
//!
//! # Handing a session over
//! The registry keeps each session behind an async mutex; a connection holds the lock for as long as
//! it lives. A new connection with the same client id kicks the old one (a oneshot) and then waits for
//! the lock, so the old connection's last writes to the session (in-flight messages, subscriptions)
//! happen before the new one reads it.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rumqttc::QoS;
use switchyard::{ByteBudget, SubscriptionId};

use crate::outgoing::Outgoing;
use crate::receive::ReadyTurns;
use crate::receiver::Receiver;
use crate::shared_group::Membership;
use tokio::sync::{OwnedMutexGuard, oneshot};

use crate::listener_stats::{ClientStats, ClientSubscriptionStats};
use crate::lock::lock;

/// One MQTT subscription of a client.
#[derive(Debug)]
pub(crate) struct ClientSubscription {
    /// As the client sent it (`$share/GROUP/FILTER` for a shared one).
    pub filter: String,
    pub qos: QoS,
    pub receiver: Receiver,
    /// How much of `filter` the client may read, sorted once under the rules in force.
    pub read: crate::auth::ClientRead,
    /// `Some` for a shared subscription (`crate::shared_group`), boxed since few are. Declared after
    /// `receiver`, so that the member's receiver hands back what it held before the membership leaves
    /// the group.
    pub shared: Option<Box<Membership>>,
}

/// What a client id owns across connections.
#[derive(Debug, Default)]
pub(crate) struct Session {
    pub subscriptions: Vec<ClientSubscription>,
    /// Turns between the subscriptions above, through their ready list (each is attached to its
    /// signal, keyed by its id): the connection waits on it and visits only subscriptions with
    /// messages. It lives with the session, so what arrives while a persistent session's client is
    /// away is announced to the next connection.
    pub turns: ReadyTurns,
    pub outgoing: Outgoing,
    /// Whether any of `subscriptions` is shared (kept by [`OpenedSession::subscriptions_changed`]):
    /// the connection then also waits on those, which its ready list does not cover.
    pub has_shared: bool,
    /// QoS 2 packet ids received and published, awaiting PUBREL (so a resent PUBLISH is not published
    /// twice: MQTT 3.1.1 section 4.3.3, method B). Made at the first QoS 2 publish: most clients send
    /// none, and an empty set took 48 bytes of every session.
    // Boxed on purpose: what is saved is the empty set's own 48 bytes, not its table.
    #[allow(clippy::box_collection)]
    pub incoming_qos2: Option<Box<HashSet<u16>>>,
    /// Whether any connection has used this session yet (for CONNACK's session-present flag).
    pub used: bool,
}

impl Session {
    /// Forgets everything; dropping the subscriptions unsubscribes them.
    pub fn clear(&mut self) {
        *self = Session::default();
    }

    /// Removes the subscriptions to `filters`. Dropping a handle unsubscribes it (what it still
    /// queued is counted `unsubscribed`), and the QoS 1/2 flows it started go on (MQTT 3.1.1 section
    /// 3.10.4); a shared group's member instead hands back what it held, for the rest of the group,
    /// and those flows are forgotten.
    pub fn unsubscribe(&mut self, filters: &[String]) {
        let leaving: Vec<SubscriptionId> = self
            .subscriptions
            .iter()
            .filter(|s| s.shared.is_some() && filters.contains(&s.filter))
            .map(|s| s.receiver.id())
            .collect();
        self.subscriptions.retain(|s| !filters.contains(&s.filter));
        if !leaving.is_empty() {
            self.outgoing
                .forget_handed_back(|from| leaving.contains(&from));
        }
    }

    /// The connection serving this session ended: each shared subscription's member hands back the
    /// messages it had sent and not yet had acknowledged, for the rest of its group at once
    /// (`crate::shared_group`), and keeps its place in the group with a fresh receiver. What it sent
    /// from its own subscriptions stays in flight, to be sent again if a persistent session reconnects.
    pub fn end_connection(&mut self) {
        let mut handed_back = Vec::new();
        for subscription in &mut self.subscriptions {
            if subscription.shared.is_some() {
                // The old receiver is dropped here, which hands back what it held.
                subscription.receiver = subscription.receiver.another();
                handed_back.push(subscription.receiver.id());
            }
        }
        if !handed_back.is_empty() {
            self.outgoing
                .forget_handed_back(|from| handed_back.contains(&from));
        }
    }
}

/// What the registry and stats know of a session without taking its lock (the connection holds it).
#[derive(Debug, Default)]
pub(crate) struct ClientInfo {
    /// Shared with the registry's key and the connection's permissions.
    pub client_id: Arc<str>,
    pub clean_session: std::sync::atomic::AtomicBool,
    /// The live connection's address (written out only for the stats: a string per connection
    /// was an allocation every idle connection held).
    pub address: Mutex<Option<std::net::SocketAddr>>,
    /// The live connection's transport and user name, cleared with `address`.
    pub transport: Mutex<Option<crate::TransportKind>>,
    pub user_name: Mutex<Option<String>>,
    pub inflight: AtomicU64,
    /// (broker subscription id, filter, granted QoS), kept in step with the session's subscriptions.
    pub subscriptions: Mutex<Vec<(SubscriptionId, String, u8)>>,
    /// The bytes all of this client's own subscriptions may queue together
    /// ([`crate::MqttConfig::queue_bytes`]), made at its first subscription; it lives as long as the
    /// client id's session, so a persistent session's client is bounded while it is away too.
    bytes: std::sync::OnceLock<Arc<ByteBudget>>,
}

impl ClientInfo {
    /// The client's byte budget, `limit` bytes (the first call's limit: the listener's setting).
    pub fn byte_budget(&self, limit: u64) -> &Arc<ByteBudget> {
        self.bytes.get_or_init(|| ByteBudget::new(limit))
    }

    pub fn set_subscriptions(&self, session: &Session) {
        *lock(&self.subscriptions) = session
            .subscriptions
            .iter()
            .map(|s| (s.receiver.id(), s.filter.clone(), s.qos as u8))
            .collect();
    }

    pub fn stats(&self, broker: &switchyard::Broker) -> ClientStats {
        let mut stats = ClientStats {
            client_id: self.client_id.to_string(),
            address: lock(&self.address).map(|a| a.to_string()),
            transport: *lock(&self.transport),
            user_name: lock(&self.user_name).clone(),
            clean_session: self.clean_session.load(Ordering::Relaxed),
            inflight: self.inflight.load(Ordering::Relaxed),
            queued_bytes: self.bytes.get().map_or(0, |b| b.used()),
            max_queued_bytes: self.bytes.get().map(|b| b.limit()),
            ..ClientStats::default()
        };
        for (id, filter, qos) in lock(&self.subscriptions).iter() {
            let Some(sub) = broker.subscription_stats(*id) else {
                continue;
            };
            let d = sub.dropped_by_reason;
            stats.dropped_by_reason.add(&d);
            stats.subscriptions.push(ClientSubscriptionStats {
                id: *id,
                filter: filter.clone(),
                qos: *qos,
                depth: sub.depth,
                in_flight: sub.in_flight,
                delivered: sub.delivered,
                dropped_by_reason: d,
            });
        }
        stats.dropped = stats.dropped_by_reason.total();
        stats
    }
}

struct Slot {
    session: Arc<tokio::sync::Mutex<Session>>,
    info: Arc<ClientInfo>,
    /// Tells the connection that holds the session now to end.
    kick: Option<oneshot::Sender<()>>,
    generation: u64,
}

/// A session held by one connection.
pub(crate) struct OpenedSession {
    pub session: OwnedMutexGuard<Session>,
    pub info: Arc<ClientInfo>,
    pub session_present: bool,
    /// Fires when a newer connection takes the session over.
    pub kicked: oneshot::Receiver<()>,
    pub generation: u64,
}

impl OpenedSession {
    /// After the session's subscriptions changed: what the connection and the stats know of them.
    pub fn subscriptions_changed(&mut self) {
        self.session.has_shared = self
            .session
            .subscriptions
            .iter()
            .any(|s| s.shared.is_some());
        self.info.set_subscriptions(&self.session);
    }
}

/// Sessions by client id.
#[derive(Default)]
pub(crate) struct SessionRegistry {
    slots: Mutex<HashMap<Arc<str>, Slot>>,
    next_generation: AtomicU64,
}

impl SessionRegistry {
    /// Takes the session of `client_id` (kicking the connection that has it), or starts one. A clean
    /// session starts empty; a persistent one keeps what it had and reports `session_present`.
    pub async fn open(&self, client_id: &Arc<str>, clean: bool) -> OpenedSession {
        let (kick, kicked) = oneshot::channel();
        let generation = self.next_generation.fetch_add(1, Ordering::Relaxed);
        let (session, info) = {
            let mut slots = lock(&self.slots);
            let slot = slots.entry(client_id.clone()).or_insert_with(|| Slot {
                session: Arc::default(),
                info: Arc::new(ClientInfo {
                    client_id: client_id.clone(),
                    ..ClientInfo::default()
                }),
                kick: None,
                generation,
            });
            if let Some(old) = slot.kick.replace(kick) {
                let _ = old.send(());
            }
            slot.generation = generation;
            (slot.session.clone(), slot.info.clone())
        };
        let mut session = session.lock_owned().await;
        if clean {
            session.clear();
        }
        let session_present = !clean && session.used;
        session.used = true;
        info.clean_session.store(clean, Ordering::Relaxed);
        info.set_subscriptions(&session);
        OpenedSession {
            session,
            info,
            session_present,
            kicked,
            generation,
        }
    }

    /// The connection of `generation` ended. A clean session is discarded (its subscriptions
    /// unsubscribed) unless a newer connection already took it; a persistent one is kept.
    pub fn close(&self, client_id: &str, mut opened: OpenedSession, clean: bool) {
        opened.session.end_connection();
        let mut slots = lock(&self.slots);
        let current = slots
            .get(client_id)
            .is_some_and(|s| s.generation == opened.generation);
        if current {
            *lock(&opened.info.address) = None;
            *lock(&opened.info.transport) = None;
            *lock(&opened.info.user_name) = None;
            opened.info.inflight.store(
                opened.session.outgoing.len() as u64,
                std::sync::atomic::Ordering::Relaxed,
            );
            if clean {
                slots.remove(client_id);
            } else if let Some(slot) = slots.get_mut(client_id) {
                slot.kick = None;
            }
        }
        if clean {
            // A clean session ends with its connection, even when a newer one waits for it.
            opened.session.clear();
        }
        // Dropping the guard lets a waiting newer connection in.
    }

    /// Whether a CONNECT with `client_id` may go on: its session exists, or there is room for one
    /// more. (Checked before [`SessionRegistry::open`]; two CONNECTs racing for the last place may
    /// both pass, so the bound can be exceeded by the connections in that race.)
    pub fn has_room_for(&self, client_id: &str, max_sessions: usize) -> bool {
        let slots = lock(&self.slots);
        slots.contains_key(client_id) || slots.len() < max_sessions
    }

    /// Every session's stats, by client id.
    pub fn stats(&self, broker: &switchyard::Broker) -> Vec<ClientStats> {
        let infos: Vec<Arc<ClientInfo>> =
            lock(&self.slots).values().map(|s| s.info.clone()).collect();
        let mut clients: Vec<ClientStats> = infos.iter().map(|i| i.stats(broker)).collect();
        clients.sort_by(|a, b| a.client_id.cmp(&b.client_id));
        clients
    }
}
