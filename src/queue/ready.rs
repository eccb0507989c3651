//! Waiting on many subscriptions at once: a ready list.

use std::fmt;
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use once_cell::race::OnceBox;

use crate::sync::spin::SpinPolicy;
use crate::sync::waiters::{Until, Waiters};
use crate::sync::{AtomicBool, Mutex, Ordering, UnboundedQueue, fence};

/// [`crate::Subscription::attach_ready_signal`] on a subscription that already has a ready signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlreadyAttached;

impl fmt::Display for AlreadyAttached {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the subscription already has a ready signal (a subscription has at most one)")
    }
}

impl std::error::Error for AlreadyAttached {}

/// From this many entries on the list a taker clears their flags in address order (a scratch `Vec`,
/// a lock and a sort); below it, in list order: a few lines are fetched in parallel anyway, and the
/// `10 subs exact` scenario, which takes a handful at a time, should not pay for the sort.
const SORT_FROM: usize = 32;

/// A ready list of subscriptions, and the threads parked until it is non-empty.
///
/// A thread that serves thousands of subscriptions (a pooled consumer) cannot block in one
/// subscription's `recv`, and passing over every subscription to find the few with messages costs
/// O(subscriptions) per wake-up: at 100,000 subscriptions the pass *is* the latency. A [`ReadySignal`]
/// attached to subscriptions ([`crate::SubscriptionOptions::ready_signal`]) keeps a *ready list*: a
/// subscription goes on it when a message arrives (or it closes) and it is not on it already, and
/// [`ReadySignal::wait_ready`] parks until the list is non-empty, then hands out the keys on it. The
/// consumer visits exactly those: cost O(ready), not O(subscriptions).
///
/// A subscription's key is its id unless it was attached with
/// [`crate::SubscriptionOptions::ready_key`]: a consumer that keeps its subscriptions in a `Vec` gives
/// each its index, and finds it without a lookup. With 100,000 subscriptions every visit starts on cold
/// cache lines, and a hash lookup per visit is one more.
///
/// # The protocol
/// Each attached subscription has a `queued` flag, true while it is on the list.
///
/// ```text
/// publisher (after a push)                      consumer
/// fence(SeqCst)  (only subscriptions with        take the whole list
///                 a signal pay it)               queued = false for each; fence(SeqCst)
/// if !queued && !queued.swap(true):             receive from those subscriptions
///     push the entry on the list; wake
/// ```
/// With a sequentially consistent fence on each side, either the publisher sees `queued == false` and
/// puts the subscription on the list again, or the consumer's receive, which comes after its fence,
/// sees the message. A message is never left in a subscription that is off the list with nobody
/// coming. A subscription can be handed out with nothing in it (a receive took the message first);
/// that costs one empty receive. A consumer that takes only part of what is queued keeps the
/// subscription on its own to-do list: it is not announced again until another message arrives.
///
/// # Holding ([`ReadySignal::holding`])
/// Clearing the flag at every take hands a busy subscription out once per message: each push finds
/// the flag clear, swaps it and pushes the entry on the list, and the consumer pops it, clears it and
/// fences, which costs more than the message's own queue work when the consumer keeps up. A holding
/// signal leaves the flag set at the take; the consumer receives from the subscription directly for
/// as long as it likes, while each push costs its publisher one load of a flag nobody writes. To let
/// go, the consumer ([`crate::Subscription::release_ready`]) does what a take does (flag clear, fence)
/// and then looks at the queue once more, as its receive would: the same handshake, so either the
/// publisher sees the flag clear and lists the subscription, or the consumer sees the message and
/// takes the flag back (keeping the subscription). The loom model
/// `loom_a_released_subscription_with_a_message_is_kept_or_listed` checks it.
///
/// # The list
/// A lock-free queue (crossbeam's `SegQueue`). A taker that finds a long list pops everything on it
/// into a scratch `Vec` before clearing any flag, then clears the flags in the address order of their
/// marks and hands the keys out in that order: with 100,000 subscriptions every mark is a cache miss,
/// and ascending addresses let the hardware prefetcher help (subscriptions made in a row have their
/// marks in a row). In `benches/ready_list.rs` (100,000 subscriptions with a message each) a take in
/// address order costs about two thirds of one in pop order per entry, and so do the consumer's visits
/// that follow.
///
/// The list is lock-free rather than a `Vec` behind a mutex that the taker swaps out whole: that would
/// be cheaper per entry taken, but it puts every publisher and a polling consumer on one lock's cache
/// line, which costs the `10 subs exact` scenario (two publishers) about a sixth of its publish rate.
///
/// # Cost
/// Only subscriptions with a signal pay: after a push one load of their flag (a cache line written
/// only when they go on or off the list), and the list push with a wake-up check only on the
/// transition to ready; the wake-up itself (a system call) only when a consumer is parked.
///
/// A notification wakes one parked thread, so a signal should be shared only by threads that serve
/// the same subscriptions; give each consumer thread its own.
pub struct ReadySignal {
    waiters: Waiters,
    /// The ready list, made when the first subscription goes on it (see [`ReadySignal::list`]).
    ready: OnceBox<UnboundedQueue<Arc<ReadyMark>>>,
    /// The taker's scratch space, empty between takes and kept for its allocation. Its lock makes
    /// concurrent takers take in turn; publishers never touch it.
    taken: Mutex<Vec<Arc<ReadyMark>>>,
    /// Set by [`ReadySignal::wake`] until a `wait_ready` returns.
    woken: AtomicBool,
    /// Whether a subscription handed out stays with its consumer until released
    /// ([`ReadySignal::holding`]).
    holds: bool,
}

impl Default for ReadySignal {
    fn default() -> Self {
        Self {
            waiters: Waiters::default(),
            // Under loom the list is made with the signal: loom cannot see `OnceBox`'s
            // synchronisation, so a model whose first entry is listed on one thread and taken on
            // another would report the list's own atomics as unordered. The models are of the
            // handshake; the lazy making is `once_cell`'s, and tested without loom.
            ready: if cfg!(switchyard_loom) {
                OnceBox::with_value(Box::default())
            } else {
                OnceBox::new()
            },
            taken: Mutex::default(),
            woken: AtomicBool::new(false),
            holds: false,
        }
    }
}

/// One attached subscription's place on the ready list.
#[derive(Debug)]
pub(crate) struct ReadyMark {
    /// What the list hands out: [`crate::SubscriptionOptions::ready_key`], or the subscription's id.
    key: u64,
    /// True while the subscription is on the list (or being put there).
    queued: AtomicBool,
}

impl fmt::Debug for ReadySignal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadySignal")
            .field("ready", &self.ready.get().map_or(0, UnboundedQueue::len))
            .finish_non_exhaustive()
    }
}

/// Two signals are equal only if they are the same signal.
impl PartialEq for ReadySignal {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
    }
}

impl Eq for ReadySignal {}

impl ReadySignal {
    /// A new signal, to attach to subscriptions with [`crate::SubscriptionOptions::ready_signal`].
    ///
    /// ```
    /// use switchyard::{Broker, ReadySignal, SubscriptionOptions};
    ///
    /// let broker = Broker::new();
    /// let signal = ReadySignal::new();
    /// let sub = broker.subscribe_with("a", SubscriptionOptions::new().ready_signal(&signal))?;
    /// broker.publish("a", "m")?;
    ///
    /// let mut ready = Vec::new();
    /// assert_eq!(signal.try_ready(&mut ready), 1);
    /// assert_eq!(ready, [sub.id()]); // without a `ready_key`, the key is the subscription's id
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// A new signal whose consumer holds what it is handed: a subscription handed out stays off the
    /// list, and the messages that arrive meanwhile do not announce it again (its publisher only reads
    /// its flag), until the consumer lets go of it with
    /// [`Subscription::release_ready`](crate::Subscription::release_ready). So a busy subscription is
    /// handed out once per burst, not once per message, and its consumer visits it directly while
    /// the burst lasts; let go of it when a visit or a few find it empty, so the list tells you of its
    /// next message. A held subscription that closes is not put on the list: its holder's next
    /// receive says so.
    ///
    /// ```
    /// use switchyard::{Broker, ReadySignal, SubscriptionOptions};
    ///
    /// let broker = Broker::new();
    /// let signal = ReadySignal::holding();
    /// let sub = broker.subscribe_with("a", SubscriptionOptions::new().ready_signal(&signal))?;
    /// broker.publish("a", "1")?;
    /// let mut ready = Vec::new();
    /// assert_eq!(signal.try_ready(&mut ready), 1);
    /// assert!(sub.try_recv().is_ok());
    ///
    /// broker.publish("a", "2")?; // held: not handed out again...
    /// assert_eq!(signal.try_ready(&mut ready), 0);
    /// assert!(sub.try_recv().is_ok()); // ...its holder takes it directly
    ///
    /// assert!(!sub.release_ready()); // empty: let go
    /// broker.publish("a", "3")?;
    /// assert_eq!(signal.try_ready(&mut ready), 1); // handed out again
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn holding() -> Arc<Self> {
        Arc::new(Self {
            holds: true,
            ..Self::default()
        })
    }

    /// A new signal whose [`ReadySignal::wait_ready`] polls as `policy` says before it parks (the
    /// default, [`SpinPolicy::Adaptive`], polls only while recent waits were short; see
    /// [`SpinPolicy`]).
    ///
    /// ```
    /// use switchyard::{ReadySignal, SpinPolicy};
    ///
    /// // A pool thread that serves background subscriptions: park at once, spend no CPU polling.
    /// let signal = ReadySignal::with_spin(SpinPolicy::Never);
    /// # let _ = signal;
    /// ```
    pub fn with_spin(policy: SpinPolicy) -> Arc<Self> {
        Arc::new(Self {
            waiters: Waiters::with_spin(policy),
            ..Self::default()
        })
    }

    /// Hands out the subscriptions that got a message (or closed) since they were last handed out,
    /// appending their keys to `out` (each one's [`crate::SubscriptionOptions::ready_key`], or its
    /// id), parking up to `timeout` while there are none. Returns how many keys it appended (0 on
    /// timeout).
    ///
    /// Receive from each of them (`try_recv` or `drain_into`): a subscription is handed out again only
    /// after another message arrives, so keep one that still has messages after your visit on your own
    /// list. A handed-out subscription may turn out empty (another receiver was faster) or closed.
    ///
    /// ```
    /// use std::time::Duration;
    /// use switchyard::{Broker, ReadySignal, SubscriptionOptions};
    ///
    /// let broker = Broker::new();
    /// let signal = ReadySignal::new();
    /// let subs: Vec<_> = (0..1000)
    ///     .map(|i| {
    ///         let options = SubscriptionOptions::new().ready_signal(&signal).ready_key(i);
    ///         broker.subscribe_with(&format!("sensor/{i}"), options).unwrap()
    ///     })
    ///     .collect();
    /// broker.publish("sensor/417", "21.5").unwrap();
    ///
    /// let mut ready = Vec::new();
    /// signal.wait_ready(&mut ready, Duration::from_secs(1));
    /// assert_eq!(ready, [417]); // only the subscription with a message, not all 1000
    /// assert_eq!(&subs[ready[0] as usize].try_recv().unwrap().payload()[..], b"21.5");
    /// ```
    pub fn wait_ready(&self, out: &mut Vec<u64>, timeout: Duration) -> usize {
        self.waiters
            .poll_then_wait_for(Until::After(timeout), || self.take_ready_or_woken(out))
            .unwrap_or(0)
    }

    /// [`ReadySignal::wait_ready`] for async code, on any executor: awaits until the list is
    /// non-empty (or [`ReadySignal::wake`] is called), never blocking the thread. Bound the wait with
    /// your runtime's timeout if you need one.
    ///
    /// # Cancel safety
    /// Cancel-safe: keys are taken off the list only in the poll that returns them, so dropping the
    /// future (a `select!` branch that lost) loses no subscription's turn.
    ///
    /// ```
    /// use switchyard::{Broker, ReadySignal, SubscriptionOptions};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let broker = Broker::new();
    /// let signal = ReadySignal::new();
    /// let sub = broker
    ///     .subscribe_with("a", SubscriptionOptions::new().ready_signal(&signal).ready_key(3))
    ///     .unwrap();
    /// let publisher = {
    ///     let broker = broker.clone();
    ///     tokio::spawn(async move { broker.publish("a", "m").unwrap() })
    /// };
    /// let mut ready = Vec::new();
    /// assert_eq!(signal.wait_ready_async(&mut ready).await, 1);
    /// assert_eq!(ready, [3]);
    /// assert_eq!(&sub.try_recv().unwrap().payload()[..], b"m");
    /// publisher.await.unwrap();
    /// # }
    /// ```
    pub async fn wait_ready_async(&self, out: &mut Vec<u64>) -> usize {
        self.waiters
            .wait_for_async(|| self.take_ready_or_woken(out))
            .await
    }

    /// What a wait checks: the keys on the list, or a [`ReadySignal::wake`] (which it uses up).
    fn take_ready_or_woken(&self, out: &mut Vec<u64>) -> Option<usize> {
        let n = self.take_ready(out);
        let woken = self.woken.load(Ordering::Relaxed) && self.woken.swap(false, Ordering::AcqRel);
        (n > 0 || woken).then_some(n)
    }

    /// Makes a thread waiting in [`ReadySignal::wait_ready`] return now, with whatever is on the list
    /// (perhaps nothing); if none is waiting, the next `wait_ready` returns at once. For a consumer
    /// that waits on the signal and must also notice other work: subscriptions to add or drop, a
    /// paused one to resume, a request to stop.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use switchyard::ReadySignal;
    ///
    /// let signal = ReadySignal::new();
    /// let waker = signal.clone();
    /// let handle = std::thread::spawn(move || waker.wake());
    /// let start = Instant::now();
    /// let mut ready = Vec::new();
    /// assert_eq!(signal.wait_ready(&mut ready, Duration::from_secs(60)), 0);
    /// assert!(start.elapsed() < Duration::from_secs(60));
    /// handle.join().unwrap();
    /// ```
    pub fn wake(&self) {
        self.woken.store(true, Ordering::Release);
        self.waiters.notify_all();
    }

    /// [`ReadySignal::wait_ready`] without waiting: hands out what is on the list now.
    ///
    /// ```
    /// use switchyard::{Broker, ReadySignal, SubscriptionOptions};
    ///
    /// let broker = Broker::new();
    /// let signal = ReadySignal::new();
    /// let options = |key| SubscriptionOptions::new().ready_signal(&signal).ready_key(key);
    /// let a = broker.subscribe_with("a", options(0))?;
    /// let _b = broker.subscribe_with("b", options(1))?;
    /// broker.publish("a", "1")?;
    /// broker.publish("a", "2")?;
    ///
    /// let mut ready = Vec::new();
    /// assert_eq!(signal.try_ready(&mut ready), 1);
    /// assert_eq!(ready, [0]); // once, however many messages arrived
    /// assert_eq!(signal.try_ready(&mut ready), 0); // handed out: `a` stays on the caller's own list
    /// assert_eq!(a.len(), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_ready(&self, out: &mut Vec<u64>) -> usize {
        self.take_ready(out)
    }

    /// Takes every entry on the list, clearing each one's flag before the caller receives from it
    /// (unless the signal holds: then the flags stay set until released).
    fn take_ready(&self, out: &mut Vec<u64>) -> usize {
        let Some(ready) = self.ready.get() else {
            // Nothing was ever listed.
            return 0;
        };
        if self.holds {
            return Self::take_held(ready, out);
        }
        let n = if ready.len() < SORT_FROM {
            Self::take_in_list_order(ready, out)
        } else {
            self.take_in_address_order(ready, out)
        };
        if n > 0 {
            // Pairs with the publisher's fence: see the module docs.
            fence(Ordering::SeqCst);
        }
        n
    }

    /// A holding signal's take: the keys, with every flag left set.
    fn take_held(ready: &UnboundedQueue<Arc<ReadyMark>>, out: &mut Vec<u64>) -> usize {
        let mut n = 0;
        while let Some(mark) = ready.pop() {
            out.push(mark.key);
            n += 1;
        }
        n
    }

    /// A short list: clears each flag as it pops the entry.
    fn take_in_list_order(ready: &UnboundedQueue<Arc<ReadyMark>>, out: &mut Vec<u64>) -> usize {
        let mut n = 0;
        while let Some(mark) = ready.pop() {
            mark.queued.store(false, Ordering::Relaxed);
            out.push(mark.key);
            n += 1;
        }
        n
    }

    /// A long list: pops everything into the scratch space first, then clears the flags in address
    /// order (see "The list" in [`ReadySignal`]'s docs).
    fn take_in_address_order(
        &self,
        ready: &UnboundedQueue<Arc<ReadyMark>>,
        out: &mut Vec<u64>,
    ) -> usize {
        let mut taken = self.taken.lock().unwrap_or_else(PoisonError::into_inner);
        while let Some(mark) = ready.pop() {
            taken.push(mark);
        }
        taken.sort_unstable_by_key(|mark| Arc::as_ptr(mark) as usize);
        let n = taken.len();
        for mark in taken.drain(..) {
            mark.queued.store(false, Ordering::Relaxed);
            out.push(mark.key);
        }
        n
    }

    /// A place on this signal's list for a subscription handed out as `key`.
    pub(crate) fn mark_for(key: u64) -> Arc<ReadyMark> {
        Arc::new(ReadyMark {
            key,
            queued: AtomicBool::new(false),
        })
    }

    /// After a push into the attached subscription `mark` stands for, and after the caller's
    /// `SeqCst` fence: puts it on the list unless it is there, and wakes a parked thread. Returns
    /// whether it put it on the list and found a thread waiting (for the loom models).
    #[inline]
    pub(crate) fn notify(&self, mark: &Arc<ReadyMark>) -> bool {
        if !mark.queued.load(Ordering::Relaxed) && !mark.queued.swap(true, Ordering::AcqRel) {
            self.list(mark);
            return self.waiters.notify_one();
        }
        false
    }

    /// A consumer lets go of the subscription `mark` stands for, which `has_messages` looks into:
    /// clears its flag, then (after a fence that pairs with the publishers', as a take's does) looks
    /// for a message that came while it was held. Returns true when there is one and the caller
    /// holds the subscription again; false when it is let go (or a publisher listed it meanwhile, so
    /// the list hands it out again).
    pub(crate) fn release(&self, mark: &ReadyMark, has_messages: impl FnOnce() -> bool) -> bool {
        mark.queued.store(false, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        has_messages() && !mark.queued.swap(true, Ordering::AcqRel)
    }

    /// Puts `mark` on the list, making the list first if nothing was ever on it.
    ///
    /// Made at the first entry because a `SegQueue` has two cache-padded ends: 256 bytes, which also
    /// align the whole signal to 128, so a signal holding one took 512 in its `Arc`. A signal nothing
    /// was listed on yet (an idle MQTT session's, one per connection) holds none of that. The list is
    /// published by `OnceBox`'s compare-and-swap, which comes before the push, so a taker that sees
    /// no list is in the same place as one that saw it empty (see the protocol above).
    fn list(&self, mark: &Arc<ReadyMark>) {
        self.ready.get_or_init(Box::default).push(mark.clone());
    }

    /// When an attached subscription closes: it goes on the list (so its consumer sees `Closed`) and
    /// everyone re-checks.
    pub(crate) fn notify_closed(&self, mark: &Arc<ReadyMark>) {
        fence(Ordering::SeqCst);
        if !mark.queued.swap(true, Ordering::AcqRel) {
            self.list(mark);
        }
        self.waiters.notify_all();
    }
}

/// Loom models of the list itself: a taker that finds the list empty and goes to park is always seen
/// by the publisher that lists a subscription (the emptiness check must not hide the entry). The flag
/// half of the protocol, driven through a real subscription, is modelled in `src/subscription/loom_models.rs`.
#[cfg(all(test, not(switchyard_loom)))]
mod tests {
    use super::*;

    #[test]
    fn the_list_is_made_at_the_first_entry_and_a_signal_without_one_hands_out_nothing() {
        let signal = ReadySignal::new();
        let mut keys = Vec::new();
        assert_eq!(signal.try_ready(&mut keys), 0);
        assert!(signal.ready.get().is_none(), "a take made no list");
        assert!(
            std::mem::size_of::<ReadySignal>() <= 128,
            "an idle signal stays small"
        );
        let mark = ReadySignal::mark_for(7);
        signal.notify(&mark);
        assert!(signal.ready.get().is_some());
        assert_eq!(
            (signal.try_ready(&mut keys), keys.as_slice()),
            (1, &[7][..])
        );
        // Listed again after the take cleared its flag, on the same list.
        signal.notify(&mark);
        assert_eq!(signal.try_ready(&mut keys), 1);
        assert_eq!(keys, [7, 7]);
    }
}

#[cfg(all(test, switchyard_loom))]
mod loom_models {
    use loom::thread;

    use super::*;

    #[test]
    fn loom_a_taker_going_to_park_either_takes_the_entry_or_is_seen_waiting() {
        loom::model(|| {
            let signal = ReadySignal::new();
            // The taker does what `wait_ready` does: register, look at the list once more, and park
            // if it is empty. A taker left parked with the entry on the list is a deadlock, which
            // loom reports. (The taker is the spawned thread: the publisher may unpark it, and under
            // loom a thread must not carry an unpark it never parked for into a later `join`.)
            let taker = {
                let signal = signal.clone();
                thread::spawn(move || {
                    let mut registration = signal.waiters.register();
                    let mut keys = Vec::new();
                    signal.take_ready(&mut keys);
                    if keys.is_empty() {
                        assert!(registration.park(None), "woken without a notification");
                        signal.take_ready(&mut keys);
                    }
                    keys
                })
            };
            let mark = ReadySignal::mark_for(7);
            // The receivers' wake-up check after a push has made this fence.
            fence(Ordering::SeqCst);
            signal.notify(&mark);
            assert_eq!(taker.join().unwrap(), [7]);
        });
    }
}
