//! The naive broker: what one writes first, and what switchyard must beat by a wide margin.
//!
//! One `Mutex<Vec<(filter, sender)>>`; every publish locks it and scans every subscription with the
//! reference matcher [`switchyard::filter_matches`]; each subscription is a bounded
//! `std::sync::mpsc::sync_channel`. The message is allocated once per publish, lazily, and shared
//! (`Arc<str>` topic, `Bytes` payload), as switchyard does, so the comparison is about routing and
//! queueing, not about copying.

use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};

use switchyard::Bytes;

use super::rig::Spin;

/// A message as the naive broker delivers it.
pub type NaiveMessage = (Arc<str>, Bytes);

struct NaiveSubscription {
    id: u64,
    filter: String,
    sender: SyncSender<NaiveMessage>,
}

#[derive(Default)]
struct Table {
    next_id: u64,
    subscriptions: Vec<NaiveSubscription>,
}

/// See the [module docs](self).
#[derive(Default)]
pub struct NaiveBroker {
    table: Mutex<Table>,
}

impl NaiveBroker {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a subscription with a queue of `capacity`; returns its id and its receiving end.
    pub fn subscribe(&self, filter: &str, capacity: usize) -> (u64, Receiver<NaiveMessage>) {
        let (sender, receiver) = sync_channel(capacity);
        let mut table = self.table.lock().unwrap();
        let id = table.next_id;
        table.next_id += 1;
        table.subscriptions.push(NaiveSubscription {
            id,
            filter: filter.to_owned(),
            sender,
        });
        (id, receiver)
    }

    /// Removes subscription `id` (a linear search, then an order-keeping removal).
    pub fn unsubscribe(&self, id: u64) -> bool {
        let mut table = self.table.lock().unwrap();
        match table.subscriptions.iter().position(|s| s.id == id) {
            Some(at) => {
                table.subscriptions.remove(at);
                true
            }
            None => false,
        }
    }

    /// Publishes to every matching subscription; returns how many got it. A full queue makes the
    /// publisher spin and yield until there is room (the same back-pressure as the other contenders),
    /// holding the lock, as a naive broker does.
    pub fn publish(&self, topic: &str, payload: &Bytes) -> usize {
        let table = self.table.lock().unwrap();
        let mut message: Option<NaiveMessage> = None;
        let mut delivered = 0;
        for s in table.subscriptions.iter() {
            if !switchyard::filter_matches(&s.filter, topic) {
                continue;
            }
            let mut m = message
                .get_or_insert_with(|| (Arc::from(topic), payload.clone()))
                .clone();
            let mut spin = Spin::new();
            loop {
                match s.sender.try_send(m) {
                    Ok(()) => {
                        delivered += 1;
                        break;
                    }
                    Err(TrySendError::Full(back)) => {
                        m = back;
                        spin.idle(|| format!("naive publisher waiting on subscription {}", s.id));
                    }
                    Err(TrySendError::Disconnected(_)) => break,
                }
            }
        }
        delivered
    }
}
