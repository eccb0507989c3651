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

/// A publisher handle counts its offers in its own counter and folds it in as it goes, while a
/// reader sums: every reading counts the offer at most once, and the last exactly once.
#[test]
fn loom_a_handles_matched_count_is_read_once_while_it_lives_and_after_it_folds() {
    loom::model(|| {
        let core = core(None);
        let publisher = {
            let core = core.clone();
            thread::spawn(move || {
                let counter = core.register_handle_matched();
                core.offer_all(
                    std::iter::once(message()),
                    Wait::MayBlock,
                    crate::stats::counters::CountIn::Handle(&counter),
                );
                core.fold_handle_matched(&counter);
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
        let core = core(Some(&signal));
        let mut ready = Vec::new();
        // A first message, handed out and taken: the subscription has been on the list before.
        core.offer_owned(message(), Wait::MayBlock);
        signal.try_ready(&mut ready);
        assert_eq!(ready, [7]);
        assert!(core.take().is_some());
        ready.clear();
        let publisher = {
            let core = core.clone();
            thread::spawn(move || core.offer_owned(message(), Wait::MayBlock))
        };
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
