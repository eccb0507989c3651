//! Reusing a publisher's message allocations.
//!
//! Every publish allocates one [`Message`] (its topic, payload handle and flags, about 112 bytes), and
//! on the cross-thread path the receiver frees it on another core. glibc's thread cache keeps only a
//! few chunks per size, so a steady stream pays its slow paths on both sides: without reuse,
//! `_int_malloc` and `_int_free` take about a quarter of a single-threaded publish + receive.
//!
//! A [`crate::Publisher`] therefore keeps the messages it sent recently in a ring (one slot at
//! first). Before it allocates, it looks at the oldest: if every receiver has let that message go (the
//! ring holds the only handle left), it overwrites the payload, priority and tag in place and sends
//! the same allocation again. The check is safe Rust (`triomphe::Arc::get_mut`, one load of the count:
//! triomphe's `Arc` has no weak count, so std's compare-and-swap on it is not needed): an allocation is reused only
//! when nothing else can see it, so no receiver, dead-letter copy or user-held handle ever observes a
//! message change, and [`Message::ptr_eq`] stays true only for handles of one live message. While the
//! oldest is still held when its turn comes (more messages in flight than the ring holds), the ring
//! grows by a slot, up to [`MAX_RECENT`].
//!
//! The ring starts as one slot kept in the handle itself, and grows into a ring of its own only
//! while messages stay in flight: a service that keeps one `Publisher` per device topic, each
//! publishing now and then, pays 8 bytes a handle for it, not the ring a handle running ahead of its
//! receivers needs. Kept in the handle, that slot costs such a publish no cache miss of its own (at
//! 100,000 handles every ring of their own was a cold line per publish); the last message, whose
//! count the reuse reads, is the only one.
//!
//! What it costs: the ring keeps finished messages alive, and with them their payloads, until they are
//! reused or the publisher is dropped. Only payloads up to [`MAX_RECYCLED_PAYLOAD`] bytes are kept, so
//! a publisher retains at most about 360 KiB, and that only after running a thousand messages ahead
//! of its receivers; a message with a larger payload is allocated afresh and freed by its last
//! receiver.

use bytes::Bytes;

use crate::message::Message;
use crate::message::priority::Priority;
use crate::topic::Topic;

/// How many it keeps at most. The ring grows (one slot per miss) while the oldest message is still
/// held when its turn comes, i.e. while more messages are in flight than the ring holds: a publisher
/// running ahead of its receivers by a queue of 1,024 needs a ring about that long to find its oldest
/// message free.
pub(crate) const MAX_RECENT: usize = 1024;

/// The largest payload whose message is kept for reuse, in bytes.
pub(crate) const MAX_RECYCLED_PAYLOAD: usize = 256;

/// A publisher's ring of recently sent messages, oldest at `next`. See the [module docs](self).
#[derive(Debug, Default)]
pub(crate) struct RecentMessages {
    /// The one slot, while `ring` is empty: what the ring starts as, kept in the handle.
    first: Option<Message>,
    /// Empty until the message in `first` is still held when its turn comes; then the ring, which
    /// starts with that message (moved out of `first`) as its oldest.
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
        if payload.len() > MAX_RECYCLED_PAYLOAD {
            return Message::on_topic(topic, payload, priority).tagged(tag);
        }
        if self.ring.is_empty() {
            // Only the slot in the handle: its message refilled if nothing else holds it; else a
            // new one, and a ring of two (the held one oldest) takes over.
            let payload = match reuse(&mut self.first, payload, priority, tag) {
                Ok(reused) => return reused,
                Err(payload) => payload,
            };
            let fresh = Message::on_topic(topic, payload, priority).tagged(tag);
            match self.first.take() {
                None => self.first = Some(fresh.clone()),
                held => {
                    self.ring = vec![held, Some(fresh.clone())];
                    self.next = 0;
                }
            }
            return fresh;
        }
        let (at, len) = (self.next, self.ring.len());
        let payload = match reuse(&mut self.ring[at], payload, priority, tag) {
            Ok(reused) => {
                self.next = (at + 1) % len;
                return reused;
            }
            Err(payload) => payload,
        };
        let fresh = Message::on_topic(topic, payload, priority).tagged(tag);
        match &mut self.ring[at] {
            empty @ None => {
                *empty = Some(fresh.clone());
                self.next = (at + 1) % len;
            }
            // The oldest is still held: more messages are in flight than the ring holds. Grow by a
            // slot for this one, just before the oldest (so it is the newest), and try the oldest
            // again next time.
            Some(_) if len < MAX_RECENT => {
                self.ring.insert(at, Some(fresh.clone()));
                self.next = (at + 1) % (len + 1);
            }
            // Full length, and still held (a receiver far behind, or a user keeping the message):
            // send a message of its own, and move on so one kept message cannot stop all reuse.
            Some(_) => self.next = (at + 1) % len,
        }
        fresh
    }
}

/// The message in `slot` refilled with `payload`, if nothing but the slot holds it; else `payload`
/// back.
#[inline]
fn reuse(
    slot: &mut Option<Message>,
    payload: Bytes,
    priority: Priority,
    tag: u8,
) -> Result<Message, Bytes> {
    match slot {
        Some(old) => {
            old.prefetch_count();
            old.refill(payload, priority, tag).map(|()| old.clone())
        }
        None => Err(payload),
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
        // The next send comes round to the one slot again.
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
        drop(again);
        // A receiver that lets each go before the next is sent: the one slot in the handle is enough.
        for i in 0..1000 {
            let m = recent.make(&topic, Bytes::from(i.to_string()), Priority::Normal, 0);
            assert_eq!(m.addr(), first_at, "message {i} reused the one allocation");
        }
        assert!(recent.ring.is_empty(), "no ring of its own was allocated");
    }

    #[test]
    fn a_message_still_held_is_never_changed() {
        let mut recent = RecentMessages::default();
        let topic = topic();
        let held: Vec<Message> = (0..8)
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
    fn the_ring_grows_while_more_messages_are_in_flight_than_it_holds_then_reuses() {
        let mut recent = RecentMessages::default();
        let topic = topic();
        let in_flight: Vec<Message> = (0..3)
            .map(|i| recent.make(&topic, Bytes::from(i.to_string()), Priority::Normal, 0))
            .collect();
        assert_eq!(recent.ring.len(), 3);
        let addrs: std::collections::HashSet<usize> = in_flight.iter().map(Message::addr).collect();
        drop(in_flight);
        // Everything was let go: the next lap reuses every allocation, in order, and grows no more.
        for i in 0..3 {
            let m = recent.make(&topic, Bytes::from_static(b"again"), Priority::Normal, 0);
            assert!(
                addrs.contains(&m.addr()),
                "message {i} reused an allocation"
            );
        }
        assert_eq!(recent.ring.len(), 3);
    }

    #[test]
    fn the_ring_stops_growing_at_its_limit_and_a_kept_message_does_not_stop_reuse() {
        let mut recent = RecentMessages::default();
        let topic = topic();
        let kept = recent.make(&topic, Bytes::from_static(b"kept"), Priority::Normal, 0);
        let held: Vec<Message> = (0..MAX_RECENT + 10)
            .map(|_| recent.make(&topic, Bytes::from_static(b"x"), Priority::Normal, 0))
            .collect();
        assert_eq!(recent.ring.len(), MAX_RECENT);
        drop(held);
        let reused = (0..2 * MAX_RECENT)
            .filter(|_| {
                let before: Vec<usize> = recent.ring.iter().flatten().map(Message::addr).collect();
                let m = recent.make(&topic, Bytes::from_static(b"y"), Priority::Normal, 0);
                before.contains(&m.addr())
            })
            .count();
        assert!(reused >= 2 * MAX_RECENT - 2, "only {reused} reused");
        assert_eq!(&kept.payload()[..], b"kept", "a held message never changes");
    }

    #[test]
    fn large_payloads_are_not_kept() {
        let mut recent = RecentMessages::default();
        let big = Bytes::from(vec![0u8; MAX_RECYCLED_PAYLOAD + 1]);
        let m = recent.make(&topic(), big, Priority::Normal, 0);
        assert!(recent.first.is_none() && recent.ring.is_empty());
        // A small one after it still takes the slot.
        drop(recent.make(&topic(), Bytes::from_static(b"s"), Priority::Normal, 0));
        assert!(recent.first.is_some() && recent.ring.is_empty());
        assert_eq!(m.payload().len(), MAX_RECYCLED_PAYLOAD + 1);
    }
}
