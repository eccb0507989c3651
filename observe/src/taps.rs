//! Taps: subscriptions the endpoint owns and drains into a short ring of recent messages, so a remote
//! viewer can watch what a filter receives.
//!
//! Each tap is a bounded subscription (its capacity and policy as asked; `drop-oldest` unless told
//! otherwise, so a tap never slows a publisher unless `block` is asked for) and a task on the
//! endpoint's runtime that receives from it and keeps the last [`TAP_RECENT`] messages. A paused tap
//! takes nothing from its queue, which fills and then drops by its policy, as a paused consumer's
//! does. Taps end when they are deleted, when their subscription is removed, or with the endpoint.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use hyper::StatusCode;
use switchyard::{
    Broker, Message, OverflowPolicy, Subscription, SubscriptionId, SubscriptionOptions,
};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::http::{HttpError, parse_input};
use crate::options::ServeOptions;
use crate::wire::{TAP_PAYLOAD_BYTES, TapInfo, TapMessage, TapRequest};

/// Messages each tap keeps for `GET /v1/taps/{id}`.
pub const TAP_RECENT: usize = 64;

/// Default queue capacity of a tap.
pub const DEFAULT_TAP_CAPACITY: usize = 256;

/// Messages a tap takes from its queue before it lets other tasks run.
const TAP_BATCH: usize = 256;

/// The endpoint's taps, by subscription id.
pub(crate) struct Taps {
    max: usize,
    taps: Mutex<BTreeMap<SubscriptionId, Arc<Tap>>>,
}

struct Tap {
    id: SubscriptionId,
    name: String,
    filter: String,
    paused: AtomicBool,
    /// Woken on pause, resume and close.
    wake: Notify,
    received: AtomicU64,
    recent: Mutex<VecDeque<TapMessage>>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Tap {
    fn info(&self, with_recent: bool) -> TapInfo {
        TapInfo {
            id: self.id,
            name: self.name.clone(),
            filter: self.filter.clone(),
            paused: self.paused.load(Ordering::Relaxed),
            received: self.received.load(Ordering::Relaxed),
            recent: if with_recent {
                lock(&self.recent).iter().cloned().collect()
            } else {
                Vec::new()
            },
        }
    }

    fn record(&self, msg: &Message, missed: u64) {
        let seq = self.received.fetch_add(1, Ordering::Relaxed) + 1;
        let payload = msg.payload();
        let cut = &payload[..payload.len().min(TAP_PAYLOAD_BYTES)];
        let entry = TapMessage {
            seq,
            topic: msg.topic().to_string(),
            priority: msg.priority().name().to_string(),
            payload: String::from_utf8_lossy(cut).into_owned(),
            missed,
        };
        let mut recent = lock(&self.recent);
        if recent.len() == TAP_RECENT {
            recent.pop_front();
        }
        recent.push_back(entry);
    }

    fn is_finished(&self) -> bool {
        lock(&self.task)
            .as_ref()
            .is_none_or(JoinHandle::is_finished)
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every update under these locks is a single push, pop or assignment.
    m.lock().unwrap_or_else(|poison| poison.into_inner())
}

impl Taps {
    pub(crate) fn new(max: usize) -> Self {
        Self {
            max,
            taps: Mutex::new(BTreeMap::new()),
        }
    }

    /// Subscribes a tap and starts its task (on the current runtime).
    pub(crate) fn open(
        &self,
        broker: &Broker,
        request: TapRequest,
        options: &ServeOptions,
    ) -> Result<TapInfo, HttpError> {
        let max_capacity = options.max_tap_capacity;
        let capacity = request.capacity.unwrap_or(DEFAULT_TAP_CAPACITY);
        if capacity == 0 || capacity > max_capacity {
            return Err(HttpError::bad_request(format!(
                "a tap's capacity must be from 1 to {max_capacity} messages, got {capacity}"
            )));
        }
        let policy = request
            .policy
            .as_deref()
            .map(parse_input)
            .transpose()?
            .unwrap_or(OverflowPolicy::DropOldest);
        if let OverflowPolicy::Block { timeout } = policy
            && timeout > options.command_timeout
        {
            return Err(HttpError::bad_request(format!(
                "a tap's `block` wait may be at most the endpoint's command_timeout ({}), got {}: \
                 a publish through the endpoint waits no longer than that",
                humantime::format_duration(options.command_timeout),
                humantime::format_duration(timeout)
            )));
        }
        let mut taps = lock(&self.taps);
        taps.retain(|_, t| !t.is_finished());
        if taps.len() >= self.max {
            return Err(HttpError::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "this endpoint already has {} taps, its limit; delete one first",
                    self.max
                ),
            ));
        }
        let mut options = SubscriptionOptions::new()
            .capacity(capacity)
            .policy(policy)
            .receive_retained(request.receive_retained);
        if let Some(name) = request.name {
            options = options.name(name);
        }
        let subscription = broker
            .subscribe_with(&request.filter, options)
            .map_err(|e| HttpError::bad_request(e.to_string()))?;
        let tap = Arc::new(Tap {
            id: subscription.id(),
            name: subscription.name().to_string(),
            filter: subscription.filter().to_string(),
            paused: AtomicBool::new(false),
            wake: Notify::new(),
            received: AtomicU64::new(0),
            recent: Mutex::new(VecDeque::with_capacity(TAP_RECENT)),
            task: Mutex::new(None),
        });
        let task = tokio::spawn(drain(subscription, tap.clone()));
        *lock(&tap.task) = Some(task);
        taps.insert(tap.id, tap.clone());
        Ok(tap.info(false))
    }

    pub(crate) fn list(&self) -> Vec<TapInfo> {
        let mut taps = lock(&self.taps);
        taps.retain(|_, t| !t.is_finished());
        taps.values().map(|t| t.info(false)).collect()
    }

    fn find(&self, id: SubscriptionId) -> Result<Arc<Tap>, HttpError> {
        let mut taps = lock(&self.taps);
        taps.retain(|_, t| !t.is_finished());
        taps.get(&id)
            .cloned()
            .ok_or_else(|| HttpError::not_found(format!("no tap with id {id}")))
    }

    pub(crate) fn get(&self, id: SubscriptionId) -> Result<TapInfo, HttpError> {
        Ok(self.find(id)?.info(true))
    }

    pub(crate) fn set_paused(
        &self,
        id: SubscriptionId,
        paused: bool,
    ) -> Result<TapInfo, HttpError> {
        let tap = self.find(id)?;
        tap.paused.store(paused, Ordering::Relaxed);
        tap.wake.notify_one();
        Ok(tap.info(false))
    }

    /// Unsubscribes tap `id` and stops its task.
    pub(crate) fn close(&self, broker: &Broker, id: SubscriptionId) -> Result<(), HttpError> {
        let tap = self.find(id)?;
        lock(&self.taps).remove(&id);
        let _ = broker.unsubscribe(id);
        if let Some(task) = lock(&tap.task).take() {
            task.abort();
        }
        Ok(())
    }
}

/// A tap's task: receive while not paused, keep the recent messages; end when the subscription does.
async fn drain(subscription: Subscription, tap: Arc<Tap>) {
    let mut batch = Vec::with_capacity(TAP_BATCH);
    loop {
        if tap.paused.load(Ordering::Relaxed) {
            tap.wake.notified().await;
            continue;
        }
        // Biased: a pause asked for is seen before another message is taken.
        tokio::select! {
            biased;
            () = tap.wake.notified() => continue,
            received = subscription.recv_async() => {
                let Ok(delivery) = received else { return };
                tap.record(delivery.message(), delivery.missed().map_or(0, |m| m.total()));
            }
        }
        if !tap.paused.load(Ordering::Relaxed) {
            batch.clear();
            let drained = subscription.drain_into(&mut batch, TAP_BATCH);
            let mut missed = drained.missed.map_or(0, |m| m.total());
            for msg in &batch {
                tap.record(msg, std::mem::take(&mut missed));
            }
        }
        tokio::task::yield_now().await;
    }
}
