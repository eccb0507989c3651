//! Messages: a topic and a payload, shared by every subscription that receives them.

pub(crate) mod priority;
pub(crate) mod reason;
pub(crate) mod recycle;
pub(crate) mod reply;

use std::fmt;
use std::sync::Arc;

/// A message's shared allocation: `triomphe`'s `Arc`, which has no weak count, so telling whether a
/// handle is the only one ([`Message::refill`]) is one load, not a compare-and-swap.
use triomphe::Arc as MessageArc;

use bytes::Bytes;

use priority::Priority;
use reason::DropReason;
use reply::{ReplyAddress, ReplyError};

use crate::topic::Topic;

/// A published message.
///
/// Cloning is one reference-count increment: every subscription a publish reaches holds the same
/// allocation, so fan-out never copies the topic or the payload.
#[derive(Clone)]
pub struct Message(MessageArc<MessageInner>);

/// Topics up to this many bytes are copied into the message's own allocation.
const INLINE_TOPIC_BYTES: usize = 46;

/// The topic text of a message.
///
/// Short topics (nearly all) are copied into the message: copying a few dozen bytes is cheaper than
/// sharing a `Topic`, whose reference count the publisher raises and each receiver lowers on another
/// core (a cache-line transfer per message), and `Broker::publish(&str, ..)` then needs no second
/// allocation. Longer topics share the publisher's `Topic`.
#[derive(Clone)]
enum TopicText {
    Inline {
        len: u8,
        bytes: [u8; INLINE_TOPIC_BYTES],
    },
    Shared(Topic),
}

impl TopicText {
    #[inline]
    fn from_str(topic: &str, shared: impl FnOnce() -> Topic) -> Self {
        if topic.len() <= INLINE_TOPIC_BYTES {
            let mut bytes = [0; INLINE_TOPIC_BYTES];
            bytes[..topic.len()].copy_from_slice(topic.as_bytes());
            Self::Inline {
                len: topic.len() as u8,
                bytes,
            }
        } else {
            Self::Shared(shared())
        }
    }

    #[inline]
    fn as_str(&self) -> &str {
        match self {
            Self::Inline { len, bytes } => {
                // The bytes are a copy of the first `len` bytes of a `&str`, so they are UTF-8.
                std::str::from_utf8(&bytes[..usize::from(*len)]).unwrap_or_default()
            }
            Self::Shared(topic) => topic.as_str(),
        }
    }
}

struct MessageInner {
    topic: TopicText,
    payload: Bytes,
    /// The priority, tag, retained-replay flag and sequence number, in one word.
    facts: Facts,
    /// Where replies go, for messages published by `Broker::request`.
    reply_to: Option<ReplyTo>,
}

/// A message's small facts packed in one word, so that its sequence number costs no more room than
/// the padding its three one-byte facts left (the allocation stays 112 bytes, two cache lines at
/// most): bits 0-7 the tag ([`Message::tag`]), 8-9 the priority, 10 whether it is a retained replay,
/// 11-63 the sequence number in the replay log ([`Message::seq`]; 0 when the log does not keep it).
/// 53 bits number 9 * 10^15 messages: 28 years of a log taking 10 million a second.
#[derive(Clone, Copy)]
struct Facts(u64);

impl Facts {
    const PRIORITY_SHIFT: u32 = 8;
    const RETAINED_REPLAY: u64 = 1 << 10;
    const SEQ_SHIFT: u32 = 11;
    /// The largest sequence number a message can carry.
    const MAX_SEQ: u64 = u64::MAX >> Self::SEQ_SHIFT;

    #[inline]
    fn new(priority: Priority, tag: u8) -> Self {
        Self((priority.index() as u64) << Self::PRIORITY_SHIFT | u64::from(tag))
    }

    #[inline]
    fn priority(self) -> Priority {
        Priority::ALL[(self.0 >> Self::PRIORITY_SHIFT) as usize & 3]
    }

    #[inline]
    fn tag(self) -> u8 {
        self.0 as u8
    }

    #[inline]
    fn retained_replay(self) -> bool {
        self.0 & Self::RETAINED_REPLAY != 0
    }

    #[inline]
    fn seq(self) -> u64 {
        self.0 >> Self::SEQ_SHIFT
    }

    /// These facts with priority and tag replaced.
    #[inline]
    fn with_priority_and_tag(self, priority: Priority, tag: u8) -> Self {
        let kept = self.0 & (Self::RETAINED_REPLAY | Self::MAX_SEQ << Self::SEQ_SHIFT);
        Self(kept | Self::new(priority, tag).0)
    }

    #[inline]
    fn with_retained_replay(self, retained_replay: bool) -> Self {
        Self(
            self.0 & !Self::RETAINED_REPLAY
                | if retained_replay {
                    Self::RETAINED_REPLAY
                } else {
                    0
                },
        )
    }

    /// These facts with the sequence number `seq` (at most [`Self::MAX_SEQ`]).
    #[inline]
    fn with_seq(self, seq: u64) -> Self {
        debug_assert!(seq <= Self::MAX_SEQ, "sequence number {seq} past 2^53");
        Self(
            self.0 & !(Self::MAX_SEQ << Self::SEQ_SHIFT) | (seq & Self::MAX_SEQ) << Self::SEQ_SHIFT,
        )
    }
}

/// The reply address a request carries. It goes when the last copy of the request goes: every
/// subscription's copy was either taken by a receiver and let go, or dropped by its queue. If nobody
/// replied by then, nobody can, and the requester is told at once ([`ReplyAddress::abandon`]) instead of
/// waiting out its whole timeout.
struct ReplyTo(Arc<dyn ReplyAddress>);

impl Drop for ReplyTo {
    fn drop(&mut self) {
        self.0.abandon();
    }
}

impl Message {
    /// A message on `topic` carrying `payload`, with [`Priority::Normal`].
    pub fn new(topic: Topic, payload: impl Into<Bytes>) -> Self {
        Self::with_priority(topic, payload, Priority::Normal)
    }

    /// A message on `topic` carrying `payload` with `priority`.
    pub fn with_priority(topic: Topic, payload: impl Into<Bytes>, priority: Priority) -> Self {
        Self::on_topic(&topic, payload, priority)
    }

    /// A message on a validated topic, copying it when short and sharing it otherwise.
    #[inline]
    pub(crate) fn on_topic(topic: &Topic, payload: impl Into<Bytes>, priority: Priority) -> Self {
        Self(MessageArc::new(MessageInner {
            topic: TopicText::from_str(topic.as_str(), || topic.clone()),
            payload: payload.into(),
            facts: Facts::new(priority, 0),
            reply_to: None,
        }))
    }

    /// A message on a topic string the caller has validated.
    #[inline]
    pub(crate) fn on_str(topic: &str, payload: impl Into<Bytes>, priority: Priority) -> Self {
        Self(MessageArc::new(MessageInner {
            topic: TopicText::from_str(topic, || Topic::new_unchecked(topic)),
            payload: payload.into(),
            facts: Facts::new(priority, 0),
            reply_to: None,
        }))
    }

    /// A request: a message whose replies go to `slot`.
    pub(crate) fn request(topic: Topic, payload: Bytes, slot: Arc<dyn ReplyAddress>) -> Self {
        Self(MessageArc::new(MessageInner {
            topic: TopicText::Shared(topic),
            payload,
            facts: Facts::new(Priority::Normal, 0),
            reply_to: Some(ReplyTo(slot)),
        }))
    }

    /// Sets [`Message::tag`] on a message just made (nothing else holds it yet).
    #[inline]
    pub(crate) fn tagged(mut self, tag: u8) -> Self {
        if tag != 0 {
            if let Some(inner) = MessageArc::get_mut(&mut self.0) {
                inner.facts = inner
                    .facts
                    .with_priority_and_tag(inner.facts.priority(), tag);
            }
        }
        self
    }

    /// Gives a message just made (nothing else holds it yet) its place in the replay log, `seq`
    /// ([`Message::seq`]).
    #[inline]
    pub(crate) fn sequenced(mut self, seq: u64) -> Self {
        self.set_seq(seq);
        self
    }

    /// [`Self::sequenced`] in place.
    #[inline]
    pub(crate) fn set_seq(&mut self, seq: u64) {
        if let Some(inner) = MessageArc::get_mut(&mut self.0) {
            inner.facts = inner.facts.with_seq(seq);
        }
    }

    /// Asks for the line of the reference count in the exclusive state, before [`Message::refill`]
    /// reads it and its caller raises it: one transfer from the core that let the message go, not two
    /// ([`crate::sync::prefetch`]).
    #[inline]
    pub(crate) fn prefetch_count(&self) {
        crate::sync::prefetch::for_write(self.0.heap_ptr());
    }

    /// Gives a message that nothing else holds new contents, in place: the reuse of
    /// [`crate::message::recycle`]. The topic stays. Gives `payload` back if another handle to this message
    /// exists (a receiver, a queue, a dead letter or a user still holds it), changing nothing.
    #[inline]
    pub(crate) fn refill(
        &mut self,
        payload: Bytes,
        priority: Priority,
        tag: u8,
    ) -> Result<(), Bytes> {
        match MessageArc::get_mut(&mut self.0) {
            Some(inner) if inner.reply_to.is_none() && !inner.facts.retained_replay() => {
                inner.payload = payload;
                inner.facts = inner.facts.with_priority_and_tag(priority, tag);
                Ok(())
            }
            _ => Err(payload),
        }
    }

    /// The address of the shared allocation, for tests of its reuse.
    #[cfg(test)]
    pub(crate) fn addr(&self) -> usize {
        self.0.heap_ptr() as usize
    }

    /// The copy of a retained message that a new subscription is replayed: the same topic, payload,
    /// priority and tag, marked as a replay ([`Message::is_retained_replay`]).
    pub(crate) fn as_retained_replay(&self) -> Self {
        self.copy_without_reply(true)
    }

    /// A new message with this one's topic, payload, priority and tag, no reply address, and
    /// `retained_replay` as given.
    fn copy_without_reply(&self, retained_replay: bool) -> Self {
        Self(MessageArc::new(MessageInner {
            topic: self.0.topic.clone(),
            payload: self.0.payload.clone(),
            facts: self.0.facts.with_retained_replay(retained_replay),
            reply_to: None,
        }))
    }

    /// The byte the publisher attached with [`crate::PublishOptions::tag`] (0 when none). The broker
    /// never reads it: it is for protocol adapters that need one more fact about a message end to end.
    /// The MQTT listener keeps the publisher's QoS in it, so a subscriber gets the lower of that and
    /// its own, as MQTT requires.
    pub fn tag(&self) -> u8 {
        self.0.facts.tag()
    }

    /// Whether this copy was replayed from the retained store into a subscription made with
    /// [`crate::SubscriptionOptions::receive_retained`], rather than routed live. (MQTT sends such a
    /// message with its RETAIN flag set, a live one without.)
    pub fn is_retained_replay(&self) -> bool {
        self.0.facts.retained_replay()
    }

    /// A copy for the dead-letter queue: a dropped request there no longer carries its reply address,
    /// so the requester learns of the drop at once, and a dead letter cannot be answered.
    pub(crate) fn for_dead_letter(&self) -> Self {
        match &self.0.reply_to {
            None => self.clone(),
            Some(_) => self.copy_without_reply(self.0.facts.retained_replay()),
        }
    }

    /// A queue dropped this copy for `reason`: a request remembers why, to tell its requester if no
    /// copy is left to answer it.
    pub(crate) fn note_dropped(&self, reason: DropReason) {
        if let Some(ReplyTo(slot)) = &self.0.reply_to {
            slot.note_dropped(reason);
        }
    }

    /// Its sequence number in the broker's replay log, if the log keeps its topic
    /// ([`BrokerOptions::replay_log`](crate::BrokerOptions::replay_log)); `None` otherwise. Numbers
    /// start at 1 and have no holes: each logged publish takes the next one, so a receiver that
    /// sees them in a row knows it missed nothing of what the log keeps.
    ///
    /// ```
    /// use switchyard::{Broker, BrokerOptions, Filter, ReplayLogOptions};
    ///
    /// let log = ReplayLogOptions::new(Filter::new("orders/#")?);
    /// let broker = Broker::with_options(BrokerOptions::new().replay_log(log));
    /// let all = broker.subscribe("#")?;
    /// broker.publish("orders/1", "new")?;
    /// broker.publish("chat/general", "hello")?;
    /// assert_eq!(all.try_recv()?.message().seq(), Some(1));
    /// assert_eq!(all.try_recv()?.message().seq(), None); // not a logged topic
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn seq(&self) -> Option<u64> {
        let seq = self.0.facts.seq();
        (seq != 0).then_some(seq)
    }

    /// Whether it was published by a request and can be replied to.
    pub fn is_request(&self) -> bool {
        self.0.reply_to.is_some()
    }

    /// Replies to a request. The first reply to a request is delivered to the requester; see
    /// [`PendingReply`](crate::PendingReply) for late and surplus replies.
    pub fn reply(&self, payload: impl Into<Bytes>) -> Result<(), ReplyError> {
        let ReplyTo(slot) = self.0.reply_to.as_ref().ok_or(ReplyError::NotARequest)?;
        slot.reply(self.topic(), payload.into())
    }

    /// Its priority.
    #[inline]
    pub fn priority(&self) -> Priority {
        self.0.facts.priority()
    }

    /// The topic it was published on.
    #[inline]
    pub fn topic(&self) -> &str {
        self.0.topic.as_str()
    }

    /// The payload. Cloning the returned `Bytes` shares it rather than copying it.
    pub fn payload(&self) -> &Bytes {
        &self.0.payload
    }

    /// Whether two handles refer to the same published message (the same allocation).
    pub fn ptr_eq(a: &Self, b: &Self) -> bool {
        MessageArc::ptr_eq(&a.0, &b.0)
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("topic", &self.topic())
            .field("payload_len", &self.0.payload.len())
            .field("priority", &self.0.facts.priority())
            .finish()
    }
}

#[cfg(test)]
mod facts_tests {
    use super::*;

    #[test]
    fn each_fact_reads_back_what_was_set_whatever_the_others() {
        for priority in Priority::ALL {
            for tag in [0, 1, 0x7f, 0xff] {
                for retained_replay in [false, true] {
                    for seq in [0, 1, 12_345, Facts::MAX_SEQ] {
                        let facts = Facts::new(Priority::Normal, 9)
                            .with_seq(seq)
                            .with_retained_replay(retained_replay)
                            .with_priority_and_tag(priority, tag);
                        assert_eq!(facts.priority(), priority);
                        assert_eq!(facts.tag(), tag);
                        assert_eq!(facts.retained_replay(), retained_replay);
                        assert_eq!(facts.seq(), seq);
                    }
                }
            }
        }
    }

    /// The sequence number takes no room of its own: a message is the size it was without it.
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn a_message_allocation_is_112_bytes() {
        assert_eq!(size_of::<MessageInner>() + size_of::<usize>(), 112);
    }
}
