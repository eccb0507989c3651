//! Request/reply: publish a message that carries a reply address, wait for the first reply.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use crossbeam_utils::CachePadded;

use crate::message::Message;
use crate::message::priority::Priority;
use crate::message::reason::DropReason;
use crate::message::reply::{ReplyAddress, ReplyError};
use crate::stats::features::RequestStats;
use crate::sync::waiters::{Until, Waiters};
use crate::sync::{AtomicU8, AtomicU64, Ordering};
use crate::topic::{Topic, TopicError};

/// Why a request got no reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// The topic is not valid.
    #[error("invalid request topic: {0}")]
    InvalidTopic(#[from] TopicError),
    /// No subscription matched the topic: nobody can answer.
    #[error("no subscription matches `{topic}`: the request has no responder")]
    Unrouted {
        /// The request's topic.
        topic: String,
    },
    /// Subscriptions matched but none queued the request (their lanes were full).
    #[error("the request on `{topic}` matched {matched} subscriptions but every one dropped it")]
    NotQueued {
        /// The request's topic.
        topic: String,
        /// How many subscriptions matched.
        matched: usize,
    },
    /// Every copy of the request was dropped before anyone replied, so no reply can come.
    #[error(
        "the request on `{topic}` was dropped without a reply: {}",
        match dropped {
            Some(reason) => format!("a subscription's queue dropped it ({})", reason.label()),
            None => "every receiver that took it let it go without replying".to_string(),
        }
    )]
    Abandoned {
        /// The request's topic.
        topic: String,
        /// Why a queue dropped it (the last such reason); `None` when receivers took it and let it go.
        dropped: Option<DropReason>,
    },
    /// No reply arrived within the timeout.
    #[error("no reply to the request on `{topic}` within {timeout:?}")]
    Timeout {
        /// The request's topic.
        topic: String,
        /// How long the requester waited.
        timeout: Duration,
    },
}

/// The broker's request counters.
#[derive(Debug, Default)]
pub(crate) struct RequestCounters {
    sent: CachePadded<AtomicU64>,
    replied: AtomicU64,
    timed_out: AtomicU64,
    late_replies: AtomicU64,
    surplus_replies: AtomicU64,
    abandoned: AtomicU64,
}

impl RequestCounters {
    pub(crate) fn count_sent(&self) {
        self.sent.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn stats(&self) -> RequestStats {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        RequestStats {
            sent: l(&self.sent),
            replied: l(&self.replied),
            timed_out: l(&self.timed_out),
            late_replies: l(&self.late_replies),
            abandoned: l(&self.abandoned),
            surplus_replies: l(&self.surplus_replies),
        }
    }
}

enum SlotState {
    Waiting,
    /// Every copy of the request is gone and nobody replied; the drop reason, if a queue dropped it.
    Abandoned(Option<DropReason>),
    Replied(Message),
    /// The requester took its reply or gave up.
    Closed {
        answered: bool,
    },
}

/// Where the reply to one request goes. Shared by the request message and the requester.
pub(crate) struct ReplySlot {
    state: Mutex<SlotState>,
    /// The last reason a queue dropped a copy of the request for (`DropReason` index + 1; 0: none).
    dropped: AtomicU8,
    ready: Waiters,
    counters: Arc<RequestCounters>,
}

impl fmt::Debug for ReplySlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplySlot").finish_non_exhaustive()
    }
}

impl ReplySlot {
    pub(crate) fn new(counters: Arc<RequestCounters>) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(SlotState::Waiting),
            dropped: AtomicU8::new(0),
            ready: Waiters::default(),
            counters,
        })
    }

    fn state(&self) -> MutexGuard<'_, SlotState> {
        // Each update is one assignment: the state is consistent even after a panic elsewhere.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The requester takes the reply, or learns that it was abandoned, if either happened.
    fn take(&self) -> Option<SlotOutcome> {
        let mut state = self.state();
        match std::mem::replace(&mut *state, SlotState::Closed { answered: true }) {
            SlotState::Replied(m) => {
                self.counters.replied.fetch_add(1, Ordering::Relaxed);
                Some(Ok(m))
            }
            SlotState::Abandoned(dropped) => {
                *state = SlotState::Closed { answered: false };
                self.counters.abandoned.fetch_add(1, Ordering::Relaxed);
                Some(Err(dropped))
            }
            other => {
                *state = other;
                None
            }
        }
    }

    /// The requester gives up; a reply that raced in is still taken.
    fn give_up(&self) -> Option<Message> {
        let mut state = self.state();
        match std::mem::replace(&mut *state, SlotState::Closed { answered: false }) {
            SlotState::Waiting => {
                self.counters.timed_out.fetch_add(1, Ordering::Relaxed);
                None
            }
            SlotState::Replied(m) => {
                *state = SlotState::Closed { answered: true };
                self.counters.replied.fetch_add(1, Ordering::Relaxed);
                Some(m)
            }
            SlotState::Abandoned(_) => {
                self.counters.abandoned.fetch_add(1, Ordering::Relaxed);
                None
            }
            closed @ SlotState::Closed { .. } => {
                *state = closed;
                None
            }
        }
    }
}

impl ReplyAddress for ReplySlot {
    /// A responder's reply.
    fn reply(&self, topic: &str, payload: Bytes) -> Result<(), ReplyError> {
        let mut state = self.state();
        match &*state {
            SlotState::Waiting => {
                *state = SlotState::Replied(Message::on_str(topic, payload, Priority::Normal));
                drop(state);
                self.ready.notify(usize::MAX);
                Ok(())
            }
            SlotState::Replied(_) | SlotState::Closed { answered: true } => {
                self.counters
                    .surplus_replies
                    .fetch_add(1, Ordering::Relaxed);
                Err(ReplyError::AlreadyAnswered)
            }
            SlotState::Closed { answered: false } | SlotState::Abandoned(_) => {
                self.counters.late_replies.fetch_add(1, Ordering::Relaxed);
                Err(ReplyError::RequesterGone)
            }
        }
    }

    /// A queue dropped a copy of the request.
    fn note_dropped(&self, reason: DropReason) {
        self.dropped.store(reason as u8 + 1, Ordering::Relaxed);
    }

    /// The last copy of the request is gone: if nobody replied, nobody can, so wake the requester.
    fn abandon(&self) {
        let mut state = self.state();
        if matches!(*state, SlotState::Waiting) {
            let dropped = match self.dropped.load(Ordering::Relaxed) {
                0 => None,
                n => DropReason::ALL.get(usize::from(n) - 1).copied(),
            };
            *state = SlotState::Abandoned(dropped);
            drop(state);
            self.ready.notify(usize::MAX);
        }
    }
}

/// A request waiting for its reply: wait for it with [`PendingReply::wait`], or `.await` it.
///
/// Dropping it gives up: a reply that comes later is counted as late and discarded.
///
/// # Cancel safety
/// Awaiting is cancel-safe in the sense that dropping the future never loses a reply that arrived
/// before the drop *and was returned*; a reply arriving after the drop is counted as late.
///
/// [`crate::Broker::request`] publishes like any message, with a private *reply slot* attached, then
/// waits up to a timeout for a responder to call [`crate::Delivery::reply`]. The reply goes straight into
/// that slot: it is not a publish, matches no subscription and never counts as `unrouted`. The request
/// itself is an ordinary publish, counted and routed as one.
///
/// - **No responder**: a request that matches no subscription fails at once with
///   [`RequestError::Unrouted`] (and counts as an unrouted publish); one that matched but was queued
///   nowhere (every lane full) fails at once with [`RequestError::NotQueued`].
/// - **First reply wins**: with several responders (fan-out, or a retried request) the first reply is
///   kept; later ones get [`ReplyError::AlreadyAnswered`] and are counted as `surplus_replies`.
/// - **Dropped unanswered**: when every copy of the request is gone with no reply (each subscription
///   that queued it dropped it, say because it was unsubscribed, or a receiver took it and let it go
///   without replying), nobody can answer any more: the requester gets [`RequestError::Abandoned`] at
///   once, with the queue's drop reason when a queue dropped it, instead of waiting out its timeout.
///   Counted as `abandoned`. A dead-letter copy of a dropped request carries no reply address.
/// - **Late replies**: once the requester has given up (timeout, or its [`PendingReply`] was dropped), a
///   reply gets [`ReplyError::RequesterGone`] and is counted as `late_replies`, never delivered.
///
/// The async form is [`crate::Broker::request_async`]: it returns a [`PendingReply`], a future. The core
/// depends on no runtime and so has no timer: put the timeout around it with your runtime
/// (`tokio::time::timeout(d, pending)`); dropping the future gives up, and later replies count as late.
///
/// # Cost
/// One reply slot (a small allocation with a mutex) per request; nothing on the plain publish path
/// beyond one pointer in each message.
pub struct PendingReply {
    slot: Arc<ReplySlot>,
    topic: Topic,
    /// The wait of the future form, made on its first poll.
    waiting: Option<Pin<Box<dyn Future<Output = SlotOutcome> + Send>>>,
    finished: bool,
}

/// What the requester finds in its slot: the reply, or the reason every copy was dropped.
type SlotOutcome = Result<Message, Option<DropReason>>;

impl fmt::Debug for PendingReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingReply")
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

impl PendingReply {
    pub(crate) fn new(slot: Arc<ReplySlot>, topic: Topic) -> Self {
        Self {
            slot,
            topic,
            waiting: None,
            finished: false,
        }
    }

    /// The request reached no queue: close the slot without counting a timeout.
    pub(crate) fn never_sent(mut self) {
        self.finished = true;
        *self.slot.state() = SlotState::Closed { answered: false };
    }

    /// Blocks up to `timeout` for the reply.
    pub fn wait(mut self, timeout: Duration) -> Result<Message, RequestError> {
        let slot = self.slot.clone();
        match slot.ready.wait_for(Until::After(timeout), || slot.take()) {
            Some(outcome) => self.finish(outcome),
            None => {
                self.finished = true;
                self.slot.give_up().ok_or_else(|| RequestError::Timeout {
                    topic: self.topic.to_string(),
                    timeout,
                })
            }
        }
    }
}

impl PendingReply {
    /// The requester's answer: the reply, or [`RequestError::Abandoned`].
    fn finish(&mut self, outcome: SlotOutcome) -> Result<Message, RequestError> {
        self.finished = true;
        outcome.map_err(|dropped| RequestError::Abandoned {
            topic: self.topic.to_string(),
            dropped,
        })
    }
}

/// Resolves to the reply, or to [`RequestError::Abandoned`] as soon as every copy of the request was
/// dropped unanswered. It has no timeout of its own: put one around it with your runtime.
impl Future for PendingReply {
    type Output = Result<Message, RequestError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let waiting = this.waiting.get_or_insert_with(|| {
            let slot = this.slot.clone();
            Box::pin(async move { slot.ready.wait_for_async(|| slot.take()).await })
        });
        match waiting.as_mut().poll(cx) {
            Poll::Ready(outcome) => Poll::Ready(this.finish(outcome)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for PendingReply {
    fn drop(&mut self) {
        if !self.finished {
            // Counted as a timed-out request; a reply that raced in is counted as replied but unused.
            let _ = self.slot.give_up();
        }
    }
}
