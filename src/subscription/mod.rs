//! Subscriptions: a filter, a bounded lock-free queue, its counters, and the handles receivers hold.
//!
//! # Queue
//! Each subscription owns a bounded lock-free MPMC queue of [`Message`]s per priority (a lane, see
//! `src/queue/lane.rs`; the lanes of one subscription, `src/queue/lanes.rs`). Any number of publishers push and any number of receivers pop
//! without a lock. Nothing is allocated for a queue until its first message: up to a capacity of 1,024
//! it is then crossbeam's `ArrayQueue`, every slot at once; above that crossbeam's `SegQueue` with an
//! atomic bound, whose blocks of 31 slots are allocated as it fills and freed as it drains. An idle
//! subscription therefore costs the same whatever its capacity (see `docs/memory.md`).
//!
//! # Receivers: fan-out and competing consumers
//! Different subscriptions each get their own copy of a message (a reference-count increment, never a
//! copy of the payload). Clones of one [`Subscription`] handle share its queue: each message goes to
//! exactly one of them, which makes a work queue. Dropping the last handle unsubscribes; what was still
//! queued is counted as dropped (`unsubscribed`).
//!
//! # Waiting
//! Empty-queue receivers park instead of spinning: `recv` blocks the thread and `recv_async` awaits,
//! both through `crate::sync::waiters::Waiters` (an `event_listener::Event` behind a count of waiters).
//! The receiver registers *then* checks the queue again, and the publisher pushes *then* checks for
//! waiters, with a `SeqCst` fence on each side, so a push can never fall between the check and the
//! park (the fences are asymmetric, see `src/sync/barrier.rs`). A publisher pays one load, and a compiler
//! fence where Linux's `membarrier` is available, when nobody is parked: no lock, no system call.
//! `Block` publishers spin briefly (crossbeam's `Backoff`) before they park on the `not_full` side.
//!
//! # Gaps
//! A receiver learns in-band that messages were dropped since it last received: each [`Delivery`] carries
//! [`Delivery::missed`], `Some` with the count per reason when drops happened since this handle's
//! previous receive. Checking costs one load of the counters' line, which the receive has just written
//! (`delivered`). Unlike an error variant, it cannot be skipped by a `while let Ok(..)` loop.

mod ack_delivery;
mod acked;
mod core;
mod error;
mod offer;
mod options;
mod receive;
mod replay;

pub use ack_delivery::{AckBatch, AckDelivery};
pub use acked::AckSubscription;
pub(crate) use core::SubscriptionCore;
pub use error::{RecvError, RecvTimeoutError, TryAckRecvError, TryRecvError};
pub use offer::PublishOutcome;
pub(crate) use offer::Wait;
pub use options::SubscriptionOptions;
pub(crate) use receive::Retire;
pub use receive::{Delivery, Drained, Subscription};

#[cfg(all(test, switchyard_loom))]
mod loom_models;
