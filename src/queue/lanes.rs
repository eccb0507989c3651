//! A subscription's queue: one lane per message priority.
//!
//! # Guarantee
//! Within one subscription, a receive takes the highest-priority message that was queued when it began,
//! and messages of one priority in the order they were queued (FIFO per priority). Across subscriptions
//! nothing is ordered. The lanes are separate lock-free queues checked highest first, not one atomic
//! heap: a message that arrives *during* a receive, in a lane the receive has already looked at, may be
//! overtaken by a lower-priority message found in the same call; the next receive takes it. A steady stream of higher-priority messages can starve lower ones: that is what priority
//! means here, not a weighted share.
//!
//! # Lanes
//! A subscription has one bounded lock-free queue (a *lane*, `src/queue/lane.rs`, which allocates
//! nothing until its first message) per priority. The `Normal`
//! lane is part of the subscription; the `Low`, `High` and `Critical` lanes are allocated on the first
//! message of that priority (a [`std::sync::OnceLock`]), so a subscription that only ever sees
//! `Normal` pays for them one pointer each. Those pointers and the bit mask below sit beside the
//! `Normal` lane. Each lane has the
//! subscription's full `capacity` (capacity is **per lane**, not shared: a shared budget would need a
//! counter every publisher and receiver of every lane writes). The overflow policy applies per lane:
//! `DropNewest` refuses a message when *its* lane is full, `DropOldest` evicts the oldest message of
//! the same priority, `Block` waits for room in that lane.
//!
//! # What the receiver pays
//! A bit mask of allocated lanes sits beside the lanes. It is written once per lane, when the lane is
//! allocated, and read (one load) on every receive: while it is zero, a receive is a pop of the
//! `Normal` lane alone. The bit is set inside the lane's one-time initialiser, so every thread that can
//! push into a lane does so after the bit is set; a receiver that was woken for a message in a lane
//! therefore sees the lane's bit (the push, the notification and the receiver's re-check are ordered
//! by the `SeqCst` fences of `crate::sync::waiters`, as for the `Normal` lane).

use std::sync::OnceLock;

use super::lane::{Lane, LaneRef};
use crate::message::Message;
use crate::message::priority::{ByPriority, Priority};
use crate::sync::{AtomicU8, Ordering};

/// A subscription's queues, one lane per priority. See the [module docs](self) for the design.
pub(crate) struct Lanes {
    /// The `Normal` lane, with the other lanes kept beside its count (room the lane's padding leaves).
    normal: Lane<Message, OtherLanes>,
}

/// The indices of the lazily allocated lanes in [`OtherLanes::lazy`], and their bits in `in_use`.
const LOW: usize = 0;
const HIGH: usize = 1;
const CRITICAL: usize = 2;

/// The `Low`, `High` and `Critical` lanes, allocated on first use.
struct OtherLanes {
    /// Bit `i` is set once `lazy[i]` is allocated (`Low` = 0, `High` = 1, `Critical` = 2). Set inside the
    /// lane's initialiser, so before any message can be pushed into it; read (acquire) on every receive.
    in_use: AtomicU8,
    /// Boxed so an unused lane costs one pointer.
    lazy: [OnceLock<Box<Lane<Message>>>; 3],
}

impl Lanes {
    /// Lanes of `capacity` each; with `preallocate`, the `Normal` lane's slots are allocated now (see
    /// [`crate::SubscriptionOptions::preallocate`]), the others still on first use.
    pub(crate) fn new(capacity: usize, preallocate: bool) -> Self {
        Self {
            normal: Lane::with_owner_state(
                capacity,
                OtherLanes {
                    in_use: AtomicU8::new(0),
                    lazy: [OnceLock::new(), OnceLock::new(), OnceLock::new()],
                },
                preallocate,
            ),
        }
    }

    fn others(&self) -> &OtherLanes {
        self.normal.owner_state()
    }

    /// The capacity of each lane.
    pub(crate) fn capacity(&self) -> usize {
        self.normal.capacity()
    }

    /// Where `priority`'s lane lives: `None` for `Normal` (the lane the others are kept beside),
    /// else its index in [`OtherLanes::lazy`].
    #[inline]
    fn lazy_slot(priority: Priority) -> Option<usize> {
        match priority {
            Priority::Normal => None,
            Priority::Low => Some(LOW),
            Priority::High => Some(HIGH),
            Priority::Critical => Some(CRITICAL),
        }
    }

    /// The lane for `priority`, allocating it on first use. Publisher side.
    #[inline]
    pub(crate) fn for_push(&self, priority: Priority) -> LaneRef<'_, Message> {
        let Some(slot) = Self::lazy_slot(priority) else {
            return self.normal.view();
        };
        let others = self.others();
        others.lazy[slot]
            .get_or_init(|| {
                let lane = Box::new(Lane::new(self.normal.capacity()));
                // Before the lane is published by the `OnceLock`: whoever can push into it sees the bit.
                others.in_use.fetch_or(1 << slot, Ordering::Release);
                lane
            })
            .view()
    }

    /// The lane for `priority` if it was ever allocated.
    #[inline]
    fn get(&self, priority: Priority) -> Option<LaneRef<'_, Message>> {
        match Self::lazy_slot(priority) {
            None => Some(self.normal.view()),
            Some(slot) => self.others().lazy[slot].get().map(|lane| lane.view()),
        }
    }

    /// Takes the highest-priority message queued. While only `Normal` was ever used this is one load of
    /// `in_use` and the `Normal` pop.
    #[inline]
    pub(crate) fn pop(&self) -> Option<Message> {
        let in_use = self.others().in_use.load(Ordering::Acquire);
        if in_use == 0 {
            return self.normal.pop();
        }
        self.pop_by_priority(in_use)
    }

    #[cold]
    fn pop_by_priority(&self, in_use: u8) -> Option<Message> {
        let lazy = |slot: usize| -> Option<Message> {
            if in_use & (1 << slot) == 0 {
                return None;
            }
            self.others().lazy[slot].get().and_then(|lane| lane.pop())
        };
        lazy(CRITICAL)
            .or_else(|| lazy(HIGH))
            .or_else(|| self.normal.pop())
            .or_else(|| lazy(LOW))
    }

    /// Messages queued now, over every lane.
    pub(crate) fn len(&self) -> usize {
        let mut n = self.normal.len();
        if self.others().in_use.load(Ordering::Acquire) != 0 {
            n += self
                .others()
                .lazy
                .iter()
                .filter_map(|l| l.get())
                .map(|l| l.len())
                .sum::<usize>();
        }
        n
    }

    /// Messages queued now, by priority.
    pub(crate) fn len_by_priority(&self) -> ByPriority {
        ByPriority::from_array(std::array::from_fn(|i| {
            self.get(Priority::ALL[i]).map_or(0, |l| l.len() as u64)
        }))
    }
}

#[cfg(all(test, switchyard_loom))]
mod loom_models {
    use loom::sync::Arc;
    use loom::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering, fence};
    use loom::thread;

    /// The lane protocol of `Lanes` (above) with the queue and the `OnceLock` reduced to atomics:
    /// the initialiser sets the lane's bit *before* publishing the lane (the `OnceLock` completion, a
    /// release), a second publisher that sees the lane pushes and then notifies (`SeqCst` fence, then a
    /// look at the waiter count, as [`crate::sync::waiters::Waiters`] does), and the receiver announces itself, fences,
    /// then checks the bit and the lane. Either the receiver finds the message or a publisher saw it
    /// waiting and wakes it: a message in a lazily allocated lane is never stranded.
    #[test]
    fn loom_a_message_in_a_new_lane_is_found_or_its_receiver_woken() {
        let mut model = loom::model::Builder::new();
        model.preemption_bound = Some(2);
        model.check(|| {
            let in_use = Arc::new(AtomicU8::new(0));
            let lane_ready = Arc::new(AtomicBool::new(false));
            let lane_len = Arc::new(AtomicUsize::new(0));
            let waiting = Arc::new(AtomicBool::new(false));
            let woken = Arc::new(AtomicBool::new(false));

            let initialiser = {
                let (in_use, lane_ready) = (in_use.clone(), lane_ready.clone());
                thread::spawn(move || {
                    in_use.fetch_or(1, Ordering::Release);
                    lane_ready.store(true, Ordering::Release);
                })
            };
            let publisher = {
                let (lane_ready, lane_len, waiting, woken) = (
                    lane_ready.clone(),
                    lane_len.clone(),
                    waiting.clone(),
                    woken.clone(),
                );
                thread::spawn(move || {
                    if lane_ready.load(Ordering::Acquire) {
                        lane_len.fetch_add(1, Ordering::Release);
                        fence(Ordering::SeqCst);
                        if waiting.load(Ordering::Relaxed) {
                            woken.store(true, Ordering::Relaxed);
                        }
                        true
                    } else {
                        false
                    }
                })
            };
            waiting.store(true, Ordering::Relaxed);
            fence(Ordering::SeqCst);
            let found = in_use.load(Ordering::Acquire) & 1 != 0
                && lane_ready.load(Ordering::Acquire)
                && lane_len.load(Ordering::Acquire) > 0;
            initialiser.join().unwrap();
            let pushed = publisher.join().unwrap();
            if pushed {
                assert!(
                    found || woken.load(Ordering::Relaxed),
                    "a message in a new lane was stranded"
                );
            }
        });
    }
}
