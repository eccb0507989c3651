//! Messages: a topic and a payload, shared by every subscription that receives them.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;

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
}

impl Message {
    /// A message on `topic` carrying `payload`.
    pub fn new(topic: Topic, payload: impl Into<Bytes>) -> Self {
        Self(Arc::new(MessageInner {
            topic,
            payload: payload.into(),
        }))
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
            .finish()
    }
}
