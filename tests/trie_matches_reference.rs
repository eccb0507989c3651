//! Property tests: the routing trie (and the broker built on it) agree with the reference matcher
//! `filter_matches` on random filters and topics, across random subscribe/unsubscribe sequences.

use std::collections::BTreeMap;

use proptest::prelude::*;
use switchyard::Trie;
use switchyard::{Broker, Filter, TopicLimits, filter_matches, validate_filter, validate_topic};

/// Levels from a small alphabet so that random filters and topics actually collide, including the empty
/// level, a `$` level, and `*` inside a level (an ordinary character there).
fn topic_level() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("a".to_string()),
        Just("b".to_string()),
        Just("".to_string()),
        Just("$s".to_string()),
        Just("a*".to_string()),
        Just("c".to_string()),
    ]
}

fn topic_strategy() -> impl Strategy<Value = String> {
    // A single empty level would be the empty string, which is not a topic.
    prop::collection::vec(topic_level(), 1..5)
        .prop_map(|levels| levels.join("/"))
        .prop_filter("non-empty", |t| !t.is_empty())
}

fn filter_strategy() -> impl Strategy<Value = String> {
    let level = prop_oneof![
        4 => topic_level(),
        2 => Just("+".to_string()),
        1 => Just("*".to_string()),
    ];
    (prop::collection::vec(level, 1..5), any::<bool>())
        .prop_map(|(mut levels, hash)| {
            if hash {
                levels.push("#".to_string());
            }
            levels.join("/")
        })
        .prop_filter("non-empty", |f| !f.is_empty())
}

#[derive(Debug, Clone)]
enum Op {
    Subscribe(String),
    /// Unsubscribe the n-th live entry (modulo the number live).
    Unsubscribe(usize),
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => filter_strategy().prop_map(Op::Subscribe),
        1 => any::<usize>().prop_map(Op::Unsubscribe),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(if cfg!(miri) { 8 } else { 256 }))]

    #[test]
    fn generated_topics_and_filters_are_valid(t in topic_strategy(), f in filter_strategy()) {
        let limits = TopicLimits::default();
        prop_assert!(validate_topic(&t, &limits).is_ok(), "{}", t);
        prop_assert!(validate_filter(&f, &limits).is_ok(), "{}", f);
    }

    #[test]
    fn trie_agrees_with_reference_matcher_across_subscribe_and_unsubscribe(
        ops in prop::collection::vec(op_strategy(), 1..40),
        topics in prop::collection::vec(topic_strategy(), 1..12),
    ) {
        let mut trie: Trie<u64> = Trie::new();
        let mut live: BTreeMap<u64, String> = BTreeMap::new();
        let mut versions = Vec::new();
        for (id, op) in ops.iter().enumerate() {
            match op {
                Op::Subscribe(f) => {
                    trie = trie.insert(&Filter::new(f).unwrap(), id as u64, id as u64);
                    live.insert(id as u64, f.clone());
                }
                Op::Unsubscribe(n) if !live.is_empty() => {
                    let (&victim, f) = live.iter().nth(n % live.len()).unwrap();
                    trie = trie
                        .remove(&Filter::new(f).unwrap(), victim)
                        .expect("a live entry is found");
                    live.remove(&victim);
                }
                Op::Unsubscribe(_) => {}
            }
            versions.push((trie.clone(), live.clone()));
        }
        // Every version, old ones included (persistence), matches like the reference.
        for (trie, live) in &versions {
            prop_assert_eq!(trie.len(), live.len());
            for t in &topics {
                let mut got = trie.matches(t);
                got.sort_unstable();
                let want: Vec<u64> = live.iter().filter(|(_, f)| filter_matches(f, t)).map(|(id, _)| *id).collect();
                prop_assert_eq!(got, want, "topic {:?}", t);
            }
        }
    }

    #[test]
    fn broker_delivers_exactly_to_matching_subscriptions(
        filters in prop::collection::vec(filter_strategy(), 1..12),
        topics in prop::collection::vec(topic_strategy(), 1..12),
    ) {
        let broker = Broker::new();
        let subs: Vec<_> = filters.iter().map(|f| broker.subscribe(f).unwrap()).collect();
        for t in &topics {
            let outcome = broker.publish(t, t.clone()).unwrap();
            let want = filters.iter().filter(|f| filter_matches(f, t)).count();
            prop_assert_eq!(outcome.matched, want, "topic {:?}", t);
        }
        for (f, sub) in filters.iter().zip(&subs) {
            let got: Vec<String> = std::iter::from_fn(|| sub.try_recv().ok())
                .map(|d| d.topic().to_string())
                .collect();
            let want: Vec<String> = topics.iter().filter(|t| filter_matches(f, t)).cloned().collect();
            prop_assert_eq!(got, want, "filter {:?}", f);
        }
        prop_assert!(broker.stats().balances());
    }
}
