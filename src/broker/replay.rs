//! The broker's side of the replay log: a publish on a logged topic takes a sequence number and is
//! recorded before it is routed; a subscription with a replay start is set up around its entry into
//! the routing table. The argument that the switch from replay to live loses and repeats nothing is
//! in `crate::features::replay_log::cursor`; the steps it names are here.

use std::sync::Arc;

use bytes::Bytes;

use super::{Broker, BrokerShared, PublishOptions};
use crate::features::replay_log::ReplayLog;
use crate::features::replay_log::cursor::ReplayCursor;
use crate::features::replay_log::options::ReplayFrom;
use crate::message::Message;
use crate::routing::delivery::Route;
use crate::stats::replay::ReplayLogStats;
use crate::subscription::Wait;
use crate::subscription::{PublishOutcome, SubscriptionCore, SubscriptionOptions};

use super::SubscribeError;

impl BrokerShared {
    /// The replay log, if it keeps `topic` (a validated topic). For a broker without a log, one
    /// branch.
    #[inline]
    pub(crate) fn log_for(&self, topic: &str) -> Option<&Arc<ReplayLog>> {
        self.replay_log.as_ref().filter(|log| log.keeps(topic))
    }

    /// Publishes on a topic `log` keeps: the publish's steps 1 to 4 of the handover
    /// (`crate::features::replay_log::cursor`): take a sequence number, load the table, record,
    /// offer.
    pub(crate) fn publish_logged(
        &self,
        log: &ReplayLog,
        topic: &str,
        payload: Bytes,
        options: PublishOptions,
    ) -> PublishOutcome {
        let seq = log.claim(1);
        let msg = Message::on_str(topic, payload, options.priority)
            .tagged(options.tag)
            .sequenced(seq);
        let wait = Wait::for_publish(options.deadline);
        if options.retain {
            return self.publish_retained(msg, Some(log), wait);
        }
        let table = self.routing.load();
        log.record([&msg], table.version);
        self.publishes
            .deliver(Route::Table(&table, topic), wait, move || msg)
    }

    /// Refuses a replay start the broker cannot serve: no log, or a sequence number the log has not
    /// reached (or 0: numbers start at 1). Before anything is subscribed.
    pub(super) fn check_replay(&self, from: Option<ReplayFrom>) -> Result<(), SubscribeError> {
        let (Some(from), log) = (from, &self.replay_log) else {
            return Ok(());
        };
        let log = match (from, log) {
            (ReplayFrom::Newest, _) => return Ok(()),
            (_, None) => return Err(SubscribeError::NoReplayLog),
            (_, Some(log)) => log,
        };
        match from {
            ReplayFrom::Seq(requested) if requested == 0 || requested > log.next_seq() => {
                Err(SubscribeError::ReplaySeqOutOfRange {
                    requested,
                    next: log.next_seq(),
                })
            }
            _ => Ok(()),
        }
    }

    /// Step 1 of the subscribe's handover, for a new subscription not yet in the routing table: its
    /// replay, holding the log from the next sequence number (its `live_from`) on.
    pub(super) fn prepare_replay(&self, core: &SubscriptionCore, options: &SubscriptionOptions) {
        let (Some(from), Some(log)) = (options.replay, &self.replay_log) else {
            return;
        };
        if from != ReplayFrom::Newest {
            core.set_replay(ReplayCursor::new(log.clone(), from, &core.filter));
        }
    }
}

impl Broker {
    /// The replay log's bounds and counters, if the broker keeps one
    /// ([`BrokerOptions::replay_log`](crate::BrokerOptions::replay_log)). Applies the age bound
    /// first.
    ///
    /// ```
    /// use switchyard::{Broker, BrokerOptions, Filter, ReplayLogOptions};
    ///
    /// let log = ReplayLogOptions::new(Filter::new("orders/#")?).max_messages(2);
    /// let broker = Broker::with_options(BrokerOptions::new().replay_log(log));
    /// for order in ["a", "b", "c"] {
    ///     broker.publish("orders/new", order)?;
    /// }
    /// broker.publish("chat", "not logged")?;
    /// let stats = broker.replay_log_stats().expect("a broker with a log");
    /// assert_eq!((stats.first_seq, stats.next_seq, stats.messages), (2, 4, 2));
    /// assert_eq!(stats.evicted.max_messages, 1);
    /// assert!(Broker::new().replay_log_stats().is_none());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn replay_log_stats(&self) -> Option<ReplayLogStats> {
        self.shared.replay_log.as_ref().map(|log| log.stats())
    }
}

#[cfg(all(test, switchyard_loom))]
mod loom_models {
    use loom::thread;

    use crate::{Broker, BrokerOptions, Filter, ReplayFrom, ReplayLogOptions, SubscriptionOptions};

    /// Publishers (one through a `Publisher` handle, which checks the table's version counter, one
    /// through `Broker::publish`, which loads the table) race a subscribe that starts from the
    /// oldest logged message: the subscription gets each logged message exactly once, replayed or
    /// live, and each publisher's in the order it published them.
    #[test]
    fn loom_replay_then_live_delivers_each_logged_message_once() {
        let mut model = loom::model::Builder::new();
        model.preemption_bound = Some(3);
        model.check(|| {
            let log = ReplayLogOptions::new(Filter::new("t/#").unwrap());
            let broker = Broker::with_options(BrokerOptions::new().replay_log(log));
            let by_handle = {
                let broker = broker.clone();
                thread::spawn(move || {
                    let mut publisher = broker.publisher("t/a").unwrap();
                    publisher.publish("a1");
                    publisher.publish("a2");
                })
            };
            let by_topic = {
                let broker = broker.clone();
                thread::spawn(move || {
                    broker.publish("t/b", "b1").unwrap();
                })
            };
            let options = SubscriptionOptions::new().replay(ReplayFrom::Oldest);
            let sub = broker.subscribe_with("t/#", options).unwrap();
            by_handle.join().unwrap();
            by_topic.join().unwrap();
            let mut got = Vec::new();
            while let Ok(delivery) = sub.try_recv() {
                assert_eq!(delivery.missed(), None);
                got.push((
                    delivery.payload().clone(),
                    delivery.message().seq().unwrap(),
                ));
            }
            let mut seqs: Vec<u64> = got.iter().map(|(_, seq)| *seq).collect();
            seqs.sort_unstable();
            assert_eq!(seqs, [1, 2, 3], "each logged message once: {got:?}");
            let a: Vec<_> = got.iter().filter(|(p, _)| p.starts_with(b"a")).collect();
            assert_eq!(
                &a[0].0[..],
                b"a1",
                "a publisher's order across the switch: {got:?}"
            );
            assert!(sub.stats().balances());
        });
    }
}
