//! Messages: a topic and a payload, shared by every subscription that receives them.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;

use crate::priority::Priority;
use crate::request::{ReplyError, ReplySlot};
use crate::topic::Topic;

/// A published message.
///
/// Cloning is one reference-count increment: every subscription a publish reaches holds the same
/// allocation, so fan-out never copies the topic or the payload.
#[derive(Clone)]
pub struct Message(Arc<MessageInner>);

struct MessageInner {
    topic: Topic,
    payload: Bytes,
    priority: Priority,
    /// Where replies go, for messages published by `Broker::request`.
    reply_to: Option<Arc<ReplySlot>>,
}

impl Message {
    /// A message on `topic` carrying `payload`, with [`Priority::Normal`].
    pub fn new(topic: Topic, payload: impl Into<Bytes>) -> Self {
        Self::with_priority(topic, payload, Priority::Normal)
    }

    /// A message on `topic` carrying `payload` with `priority`.
    pub fn with_priority(topic: Topic, payload: impl Into<Bytes>, priority: Priority) -> Self {
        Self(Arc::new(MessageInner {
            topic,
            payload: payload.into(),
            priority,
            reply_to: None,
        }))
    }

    /// A request: a message whose replies go to `slot`.
    pub(crate) fn request(topic: Topic, payload: Bytes, slot: Arc<ReplySlot>) -> Self {
        Self(Arc::new(MessageInner {
            topic,
            payload,
            priority: Priority::Normal,
            reply_to: Some(slot),
        }))
    }

    /// Whether it was published by a request and can be replied to.
    pub fn is_request(&self) -> bool {
        self.0.reply_to.is_some()
    }

    /// Replies to a request. The first reply to a request is delivered to the requester; see
    /// [`crate::request`] for late and surplus replies.
    pub fn reply(&self, payload: impl Into<Bytes>) -> Result<(), ReplyError> {
        let slot = self.0.reply_to.as_ref().ok_or(ReplyError::NotARequest)?;
        slot.reply(&self.0.topic, payload.into())
    }

    /// Its priority.
    #[inline]
    pub fn priority(&self) -> Priority {
        self.0.priority
    }

    /// The topic it was published on.
    pub fn topic(&self) -> &Topic {
        &self.0.topic
    }

    /// The payload. Cloning the returned `Bytes` shares it rather than copying it.
    pub fn payload(&self) -> &Bytes {
        &self.0.payload
    }

    /// Whether two handles refer to the same published message (the same allocation).
    pub fn ptr_eq(a: &Self, b: &Self) -> bool {
        Arc::ptr_eq(&a.0, &b.0)
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("topic", &self.0.topic)
            .field("payload_len", &self.0.payload.len())
            .field("priority", &self.0.priority)
            .finish()
    }
}
