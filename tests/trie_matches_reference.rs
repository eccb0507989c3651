//! Property tests: the routing trie (and the broker built on it) agree with the reference matcher
//! `filter_matches_with` on random filters and topics, across random subscribe/unsubscribe sequences,
//! under both topic syntaxes (`TopicSyntax::Classic`, where a whole `*` level is a wildcard, and
//! `TopicSyntax::Mqtt`, where it is an ordinary level that topics may have too).

use std::collections::BTreeMap;

use proptest::prelude::*;
use switchyard::Trie;
use switchyard::{
    Broker, BrokerOptions, Filter, TopicLimits, TopicSyntax, filter_matches_with, validate_filter,
    validate_topic,
};

fn limits(syntax: TopicSyntax) -> TopicLimits {
    TopicLimits {
        syntax,
        ..TopicLimits::default()
    }
}

fn syntax_strategy() -> impl Strategy<Value = TopicSyntax> {
    prop_oneof![Just(TopicSyntax::Classic), Just(TopicSyntax::Mqtt)]
}

/// Levels from a small alphabet so that random filters and topics actually collide, including the empty
/// level, a `$` level, and `*` inside a level (an ordinary character there); under MQTT syntax also a
/// whole `*` level, which is an ordinary topic level there.
fn topic_level(syntax: TopicSyntax) -> impl Strategy<Value = String> {
    let mut levels = vec!["a", "b", "", "$s", "a*", "c"];
    if syntax == TopicSyntax::Mqtt {
        levels.push("*");
    }
    prop::sample::select(levels).prop_map(str::to_string)
}

fn topic_strategy(syntax: TopicSyntax) -> impl Strategy<Value = String> {
    // A single empty level would be the empty string, which is not a topic.
    prop::collection::vec(topic_level(syntax), 1..5)
        .prop_map(|levels| levels.join("/"))
        .prop_filter("non-empty", |t| !t.is_empty())
}

fn filter_strategy(syntax: TopicSyntax) -> impl Strategy<Value = String> {
    let level = prop_oneof![
        4 => topic_level(syntax),
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

fn op_strategy(syntax: TopicSyntax) -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => filter_strategy(syntax).prop_map(Op::Subscribe),
        1 => any::<usize>().prop_map(Op::Unsubscribe),
    ]
}

/// A syntax, then `ops` and `topics` generated for it.
fn syntax_ops_topics() -> impl Strategy<Value = (TopicSyntax, Vec<Op>, Vec<String>)> {
    syntax_strategy().prop_flat_map(|syntax| {
        (
            Just(syntax),
            prop::collection::vec(op_strategy(syntax), 1..40),
            prop::collection::vec(topic_strategy(syntax), 1..12),
        )
    })
}

fn syntax_filters_topics() -> impl Strategy<Value = (TopicSyntax, Vec<String>, Vec<String>)> {
    syntax_strategy().prop_flat_map(|syntax| {
        (
            Just(syntax),
            prop::collection::vec(filter_strategy(syntax), 1..12),
            prop::collection::vec(topic_strategy(syntax), 1..12),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(if cfg!(miri) { 8 } else { 256 }))]

    #[test]
    fn generated_topics_and_filters_are_valid(
        (syntax, filters, topics) in syntax_filters_topics(),
    ) {
        for t in &topics {
            prop_assert!(validate_topic(t, &limits(syntax)).is_ok(), "{} {:?}", t, syntax);
        }
        for f in &filters {
            prop_assert!(validate_filter(f, &limits(syntax)).is_ok(), "{} {:?}", f, syntax);
        }
    }

    #[test]
    fn trie_agrees_with_reference_matcher_across_subscribe_and_unsubscribe(
        (syntax, ops, topics) in syntax_ops_topics(),
    ) {
        let filter = |f: &str| Filter::with_limits(f, &limits(syntax)).unwrap();
        let mut trie: Trie<u64> = Trie::new();
        let mut live: BTreeMap<u64, String> = BTreeMap::new();
        let mut versions = Vec::new();
        for (id, op) in ops.iter().enumerate() {
            match op {
                Op::Subscribe(f) => {
                    trie = trie.insert(&filter(f), id as u64, id as u64);
                    live.insert(id as u64, f.clone());
                }
                Op::Unsubscribe(n) if !live.is_empty() => {
                    let (&victim, f) = live.iter().nth(n % live.len()).unwrap();
                    trie = trie
                        .remove(&filter(f), victim)
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
                let want: Vec<u64> = live
                    .iter()
                    .filter(|(_, f)| filter_matches_with(f, t, syntax))
                    .map(|(id, _)| *id)
                    .collect();
                prop_assert_eq!(got, want, "topic {:?} under {:?}", t, syntax);
            }
        }
    }

    #[test]
    fn broker_delivers_exactly_to_matching_subscriptions(
        (syntax, filters, topics) in syntax_filters_topics(),
    ) {
        let broker = Broker::with_options(BrokerOptions::new().topic_syntax(syntax));
        let filter_matches = |f: &str, t: &str| filter_matches_with(f, t, syntax);
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
