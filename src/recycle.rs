//! Reusing a publisher's message allocations.
//!
//! Every publish allocates one [`Message`] (its topic, payload handle and flags, about 112 bytes), and
//! on the cross-thread path the receiver frees it on another core. glibc's thread cache keeps only a
//! few chunks per size, so a steady stream pays its slow paths on both sides (about a quarter of a
//! single-threaded publish + receive in a profile, `_int_malloc` and `_int_free`).
//!
//! A [`crate::Publisher`] therefore keeps the last [`RECENT`] messages it sent in a ring. Before it
//! allocates, it looks at the oldest: if every receiver has let that message go (the ring holds the
//! only handle left), it overwrites the payload, priority and tag in place and sends the same
//! allocation again. The check is safe Rust (`Arc::get_mut`): an allocation is reused only when
//! nothing else can see it, so no receiver, dead-letter copy or user-held handle ever observes a
//! message change, and [`Message::ptr_eq`] stays true only for handles of one live message.
//!
//! What it costs: the ring keeps up to [`RECENT`] finished messages alive, and with them their
//! payloads, until they are reused or the publisher is dropped. Only payloads up to
//! [`MAX_RECYCLED_PAYLOAD`] bytes are kept, so one publisher retains at most about 80 KiB; a message
//! with a larger payload is sent as before and freed by its last receiver.

use bytes::Bytes;

use crate::message::Message;
use crate::priority::Priority;
use crate::topic::Topic;

/// How many recently sent messages a publisher keeps for reuse.
pub(crate) const RECENT: usize = 64;

/// The largest payload whose message is kept for reuse, in bytes.
pub(crate) const MAX_RECYCLED_PAYLOAD: usize = 1024;

/// A publisher's ring of recently sent messages. See the [module docs](self).
#[derive(Debug, Default)]
pub(crate) struct RecentMessages {
    ring: Vec<Option<Message>>,
    next: usize,
}

impl RecentMessages {
    /// A message on `topic` (always the same topic for one ring) carrying `payload`: the oldest message
    /// of the ring refilled if nothing else holds it, else a new one.
    #[inline]
    pub(crate) fn make(
        &mut self,
        topic: &Topic,
        payload: Bytes,
        priority: Priority,
        tag: u8,
    ) -> Message {
        if self.ring.len() < RECENT {
            self.ring.resize(RECENT, None);
        }
        let slot = &mut self.ring[self.next];
        self.next = (self.next + 1) % RECENT;
        if payload.len() > MAX_RECYCLED_PAYLOAD {
            return Message::on_topic(topic, payload, priority).tagged(tag);
        }
        match slot {
            Some(old) => match old.refill(payload, priority, tag) {
                Ok(()) => old.clone(),
                // Still held: more messages are in flight than the ring is long. Leave the slot to
                // this message, which is likely free by the time the ring comes round, rather than
                // pay a count increment now and a decrement on a line the receiver holds later.
                Err(payload) => Message::on_topic(topic, payload, priority).tagged(tag),
            },
            None => {
                let fresh = Message::on_topic(topic, payload, priority).tagged(tag);
                *slot = Some(fresh.clone());
                fresh
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic() -> Topic {
        Topic::new("a/b").unwrap()
    }

    #[test]
    fn a_message_nobody_holds_is_reused_with_its_new_contents() {
        let mut recent = RecentMessages::default();
        let topic = topic();
        let first = recent.make(&topic, Bytes::from_static(b"one"), Priority::Normal, 0);
        let first_at = first.addr();
        drop(first);
        // RECENT - 1 more sends come round to the first slot again.
        for _ in 1..RECENT {
            drop(recent.make(&topic, Bytes::from_static(b"x"), Priority::Normal, 0));
        }
        let again = recent.make(&topic, Bytes::from_static(b"two"), Priority::High, 7);
        assert_eq!(
            again.addr(),
            first_at,
            "the allocation nothing held is reused"
        );
        assert_eq!(&again.payload()[..], b"two");
        assert_eq!(
            (again.priority(), again.tag(), again.topic()),
            (Priority::High, 7, "a/b")
        );
    }

    #[test]
    fn a_message_still_held_is_never_changed() {
        let mut recent = RecentMessages::default();
        let topic = topic();
        let held: Vec<Message> = (0..RECENT * 2)
            .map(|i| recent.make(&topic, Bytes::from(i.to_string()), Priority::Normal, 0))
            .collect();
        for (i, m) in held.iter().enumerate() {
            assert_eq!(m.payload(), &Bytes::from(i.to_string()));
        }
        let distinct: std::collections::HashSet<*const u8> =
            held.iter().map(|m| m.payload().as_ptr()).collect();
        assert_eq!(distinct.len(), held.len());
    }

    #[test]
    fn large_payloads_are_not_kept() {
        let mut recent = RecentMessages::default();
        let big = Bytes::from(vec![0u8; MAX_RECYCLED_PAYLOAD + 1]);
        let m = recent.make(&topic(), big, Priority::Normal, 0);
        assert!(recent.ring.iter().all(Option::is_none));
        // A small one after it still takes the slot.
        drop(recent.make(&topic(), Bytes::from_static(b"s"), Priority::Normal, 0));
        assert_eq!(recent.ring.iter().flatten().count(), 1);
        assert_eq!(m.payload().len(), MAX_RECYCLED_PAYLOAD + 1);
    }
}
