//! Loom models that drive the real subscription core: its offer, take, close and drain, its
//! counters and its ready-list mark, through the crate's `sync` facade. The queue itself (crossbeam)
//! is not instrumented: loom sees each push and pop as one indivisible step, which is what it is to
//! our code (crossbeam's own tests cover its insides).

use std::sync::Arc;

use loom::thread;

use super::core::SubscriptionCore;
use super::*;
use crate::message::Message;
use crate::queue::ready::ReadySignal;
use crate::topic::{Filter, Topic};

fn core(signal: Option<&Arc<ReadySignal>>) -> Arc<SubscriptionCore> {
    let mut options = SubscriptionOptions::new().capacity(1);
    if let Some(signal) = signal {
        options = options.ready_signal(signal);
    }
    Arc::new(SubscriptionCore::new(
        7,
        Filter::new("t").unwrap(),
        &options,
        None,
    ))
}

/// A subscription on `signal` whose first message the list handed out and its consumer took, and a
/// publisher thread offering the second: the start of the ready-list models.
fn taken_once_then_publishing(
    signal: &Arc<ReadySignal>,
) -> (Arc<SubscriptionCore>, thread::JoinHandle<PublishOutcome>) {
    let core = core(Some(signal));
    let mut ready = Vec::new();
    core.offer_owned(message(), Wait::MayBlock);
    signal.try_ready(&mut ready);
    assert_eq!(ready, [7]);
    assert!(core.take().is_some());
    let publisher = {
        let core = core.clone();
        thread::spawn(move || core.offer_owned(message(), Wait::MayBlock))
    };
    (core, publisher)
}

fn message() -> Message {
    Message::new(Topic::new("t").unwrap(), "m")
}

#[test]
fn loom_an_offer_racing_an_unsubscribe_ends_delivered_or_dropped_exactly_once() {
    loom::model(|| {
        let core = core(None);
        let publisher = {
            let core = core.clone();
            thread::spawn(move || core.offer_owned(message(), Wait::MayBlock))
        };
        let unsubscriber = {
            let core = core.clone();
            thread::spawn(move || {
                core.close();
                core.drain_unsubscribed();
                // A receiver after the unsubscribe: `Closed`, never a message that slipped in.
                assert!(
                    core.take().is_none(),
                    "a message taken after the unsubscribe"
                );
            })
        };
        let taken = core.take();
        let offer = publisher.join().unwrap();
        unsubscriber.join().unwrap();
        // What the broker's finalisation does once nothing can reach the subscription.
        core.drain_unsubscribed();
        let s = core.stats();
        assert_eq!(s.matched, 1);
        assert_eq!(s.depth, 0);
        assert_eq!(s.delivered + s.dropped, 1, "counted once: {s:?}");
        assert_eq!(taken.is_some(), s.delivered == 1);
        if offer.queued == 0 {
            assert!(taken.is_none(), "a refused message was received");
            assert_eq!(s.dropped_by_reason.unsubscribed, 1);
        }
    });
}

/// A publisher handle's publishes along its cached route are what the route's subscriptions matched
/// (`RouteShare`, counted before the offer) and fold in as the route goes, while a reader sums: every
/// reading counts the offer at most once, and the last exactly once. Drives the real cached-route
/// delivery (`PublishCounters::deliver_batch`).
#[test]
fn loom_a_handles_matched_count_is_read_once_while_it_lives_and_after_it_folds() {
    use crate::routing::delivery::{CachedRoute, PublishCounters};
    loom::model(|| {
        let core = core(None);
        let publisher = {
            let core = core.clone();
            thread::spawn(move || {
                let publishes = PublishCounters::default();
                let counts = publishes.register_handle();
                let routes = vec![CachedRoute::new(core.clone(), &counts)];
                let outcome = publishes.deliver_batch(&routes, &counts, &mut vec![message()]);
                assert_eq!(outcome.matched, 1);
                drop(routes);
                publishes.fold_handle(&counts);
            })
        };
        let during = core.matched();
        assert!(during <= 1, "counted twice: {during}");
        publisher.join().unwrap();
        assert_eq!(core.matched(), 1);
        assert_eq!(core.stats().matched, 1);
    });
}

#[test]
fn loom_a_message_is_taken_or_its_subscription_is_on_the_ready_list() {
    loom::model(|| {
        let signal = ReadySignal::new();
        // The subscription has been on the list before.
        let (core, publisher) = taken_once_then_publishing(&signal);
        let mut ready = Vec::new();
        // The consumer: take what the list hands out, then receive.
        signal.try_ready(&mut ready);
        let taken = core.take();
        assert_eq!(publisher.join().unwrap(), PublishOutcome::QUEUED);
        if taken.is_none() {
            // The message is still queued: the list must still hand the subscription out.
            ready.clear();
            signal.try_ready(&mut ready);
            assert_eq!(
                ready,
                [7],
                "a queued message with its subscription off the list"
            );
            assert!(core.take().is_some());
        }
    });
}

#[test]
fn loom_a_released_subscription_with_a_message_is_kept_or_listed() {
    loom::model(|| {
        let signal = ReadySignal::holding();
        // The consumer holds the subscription.
        let (core, publisher) = taken_once_then_publishing(&signal);
        let mut ready = Vec::new();
        // The consumer found it empty and lets go, racing the publisher's next message.
        let kept = core.release_ready();
        assert_eq!(publisher.join().unwrap(), PublishOutcome::QUEUED);
        signal.try_ready(&mut ready);
        if kept {
            assert!(ready.is_empty(), "kept and listed: handed out twice");
        } else {
            assert_eq!(ready, [7], "let go with a message queued and nobody told");
        }
        assert!(core.take().is_some());
    });
}

#[test]
fn loom_a_signal_attached_while_a_message_arrives_lists_the_subscription() {
    loom::model(|| {
        let signal = ReadySignal::new();
        let core = core(None);
        let publisher = {
            let core = core.clone();
            thread::spawn(move || core.offer_owned(message(), Wait::MayBlock))
        };
        core.attach_ready_signal(&signal, 9).unwrap();
        assert_eq!(publisher.join().unwrap(), PublishOutcome::QUEUED);
        // Either the publisher saw the signal, or attaching saw the message: never neither.
        // (The `OnceLock` holding the signal is std's, which loom does not see; without the
        // attach's fence loom reports the publisher reading the new mark's flag unordered.)
        let mut ready = Vec::new();
        signal.try_ready(&mut ready);
        assert_eq!(ready, [9], "a queued message and nobody told");
    });
}

/// An acknowledged subscription's core with a window of one, and one message taken by receiver 1.
fn acked_core_with_one_taken() -> (Arc<SubscriptionCore>, crate::AckToken) {
    let options = SubscriptionOptions::new()
        .capacity(1)
        .ack(crate::AckOptions::new().max_in_flight(1));
    let core = Arc::new(SubscriptionCore::new(
        9,
        Filter::new("t").unwrap(),
        &options,
        None,
    ));
    core.offer_owned(message(), Wait::Never);
    let super::core::AckTake::Got(attempt) = core.take_acked(core.in_flight().unwrap(), 1, false)
    else {
        panic!("a queued message and room in the window");
    };
    let token = crate::AckToken {
        subscription: core.id,
        place: attempt.place,
        attempt: attempt.attempt,
    };
    (core, token)
}

#[test]
fn loom_a_hand_back_racing_a_late_ack_and_another_receiver_settles_the_message_once() {
    use crate::features::ack::in_flight::Settle;
    loom::model(|| {
        let (core, token) = acked_core_with_one_taken();
        // Receiver 1's delivery is dropped unsettled while its late ack races it.
        let dropper = {
            let core = core.clone();
            thread::spawn(move || core.hand_back_one(token))
        };
        let late_ack = {
            let core = core.clone();
            thread::spawn(move || core.settle(token, Settle::Ack).is_ok())
        };
        // Receiver 2 takes whatever is there meanwhile.
        let taken = match core.take_acked(core.in_flight().unwrap(), 2, false) {
            super::core::AckTake::Got(attempt) => Some(attempt),
            _ => None,
        };
        dropper.join().unwrap();
        let acked_late = late_ack.join().unwrap();
        // What is left over is taken now (a redelivery does not wait for a deadline).
        let taken = taken.or_else(
            || match core.take_acked(core.in_flight().unwrap(), 2, false) {
                super::core::AckTake::Got(attempt) => Some(attempt),
                _ => None,
            },
        );
        if acked_late {
            assert!(taken.is_none(), "an acked message was delivered again");
        } else {
            let attempt = taken.expect("a handed-back message is delivered again at once");
            assert_eq!(attempt.deliveries, 2);
            let again = crate::AckToken {
                subscription: core.id,
                place: attempt.place,
                attempt: attempt.attempt,
            };
            assert!(
                core.settle(token, Settle::Ack).is_err(),
                "the stale token is refused"
            );
            core.settle(again, Settle::Ack).unwrap();
        }
        let s = core.stats();
        assert_eq!((s.matched, s.delivered, s.in_flight, s.depth), (1, 1, 0, 0));
        assert!(s.balances());
    });
}

#[test]
fn loom_an_unsubscribe_racing_an_ack_ends_acked_or_dropped_exactly_once() {
    use crate::features::ack::in_flight::Settle;
    loom::model(|| {
        let (core, token) = acked_core_with_one_taken();
        let unsubscriber = {
            let core = core.clone();
            thread::spawn(move || {
                core.close();
                core.drain_unsubscribed();
            })
        };
        let acked = core.settle(token, Settle::Ack).is_ok();
        unsubscriber.join().unwrap();
        core.drain_unsubscribed();
        let s = core.stats();
        assert_eq!(s.delivered + s.dropped_by_reason.unsubscribed, 1);
        assert_eq!(s.delivered, u64::from(acked));
        assert_eq!(s.in_flight, 0);
        assert!(s.balances());
    });
}

#[test]
fn loom_a_receiver_stalled_on_a_full_window_takes_the_place_an_ack_frees_or_is_woken() {
    use crate::features::ack::in_flight::Settle;
    loom::model(|| {
        // A window of one, held by receiver 1's message; a second message waits for the place.
        let (core, token) = acked_core_with_one_taken();
        core.offer_owned(message(), Wait::Never);
        let acker = {
            let core = core.clone();
            thread::spawn(move || core.settle_waking(token, Settle::Ack).unwrap())
        };
        // Receiver 2, stalled: it registers on the window's waiters, looks, and parks if the window
        // is still full. Left parked beside the place the ack freed is a deadlock, which loom
        // reports. (It is the spawned thread: the acker may unpark it, and under loom a thread must
        // not carry an unpark it never parked for into a later `join`.)
        let receiver = {
            let core = core.clone();
            thread::spawn(move || {
                let in_flight = core.in_flight().unwrap();
                let take = || match core.take_acked(in_flight, 2, true) {
                    super::core::AckTake::Got(attempt) => Some(attempt),
                    _ => None,
                };
                let mut registration = in_flight.window().register();
                match take() {
                    Some(attempt) => attempt,
                    None => {
                        assert!(registration.park(None), "woken without a notification");
                        take().expect("the freed place takes the second message")
                    }
                }
            })
        };
        acker.join().unwrap();
        let attempt = receiver.join().unwrap();
        core.settle(
            crate::AckToken {
                subscription: core.id,
                place: attempt.place,
                attempt: attempt.attempt,
            },
            Settle::Ack,
        )
        .unwrap();
        let s = core.stats();
        assert_eq!((s.matched, s.delivered, s.in_flight, s.depth), (2, 2, 0, 0));
        assert!(s.balances());
    });
}

#[test]
fn loom_a_batch_take_racing_a_hand_back_takes_every_message_once() {
    use crate::features::ack::in_flight::Settle;
    loom::model(|| {
        // A window of one, held by receiver 1's message; a second message queued behind it.
        let (core, token) = acked_core_with_one_taken();
        core.offer_owned(message(), Wait::Never);
        let dropper = {
            let core = core.clone();
            thread::spawn(move || core.hand_back_one(token))
        };
        // Receiver 2 pulls a batch of up to two meanwhile: nothing (the window is full), or the
        // handed-back message, first; the queued one never fits beside it in a window of one.
        let in_flight = core.in_flight().unwrap();
        let mut taken = Vec::new();
        let (n, stopped) = core.take_acked_into(in_flight, 2, 2, |attempt| taken.push(attempt));
        assert_eq!(n, taken.len());
        assert!(n <= 1, "a window of one holds one");
        assert_eq!(stopped, Some(TryAckRecvError::WindowFull));
        if let Some(attempt) = taken.first() {
            assert_eq!(attempt.deliveries, 2, "the handed-back message goes first");
        }
        dropper.join().unwrap();
        // Settle what it took, and pull until both messages were acked, each once.
        let mut acked = 0;
        while acked < 2 {
            for attempt in taken.drain(..) {
                let token = crate::AckToken {
                    subscription: core.id,
                    place: attempt.place,
                    attempt: attempt.attempt,
                };
                core.settle(token, Settle::Ack).unwrap();
                acked += 1;
            }
            if acked < 2 {
                let (n, _) = core.take_acked_into(in_flight, 2, 2, |attempt| taken.push(attempt));
                assert_eq!(n, 1, "a message is left, and the window has room");
            }
        }
        assert!(
            core.settle(token, Settle::Ack).is_err(),
            "the stale token is refused"
        );
        let s = core.stats();
        assert_eq!((s.matched, s.delivered, s.in_flight, s.depth), (2, 2, 0, 0));
        assert!(s.balances());
    });
}
