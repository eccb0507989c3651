//! Topics, filters and the rules that make them valid.
//!
//! A **topic** names what a message is about: levels separated by `/`, such as `stocks/AAPL/price`.
//! A **filter** is a topic pattern a subscription listens on: `+` matches exactly one level, `#` matches
//! any number of levels including none and must be the last level. Under the default
//! [`TopicSyntax::Classic`], a whole `*` level is a synonym for `+`; under [`TopicSyntax::Mqtt`] it is an
//! ordinary level, as MQTT has it.
//!
//! The rules follow MQTT, because that is what people who write topic hierarchies already know:
//!
//! - levels may be empty (`a//b` has three levels, the middle one empty), and `+` matches an empty level;
//! - `+` and `#` must fill a whole level: `a+/b` and `a/b#` are invalid filters, and no topic may contain
//!   `+` or `#` at all;
//! - `*` is a wildcard only as a whole level, and only under [`TopicSyntax::Classic`]; inside a level
//!   (`a*`, `**`) it is an ordinary character under both syntaxes, and under [`TopicSyntax::Mqtt`] it is
//!   ordinary everywhere, so `a/*` is a topic and the filter `a/*` matches only the topic `a/*`;
//! - `alerts/#` also matches `alerts` itself (the parent level);
//! - a topic that begins with `$` is not matched by a filter that begins with a wildcard, so internal
//!   topics such as `$SYS/broker/load` stay out of `#`;
//! - neither may be empty or contain the NUL character, and both are bounded by [`TopicLimits`].
//!
//! Validation happens once, when a filter is subscribed or a topic published, so the matching code in
//! [`crate::topic::trie`] can assume well-formed input. [`filter_matches_with`] is the plain,
//! obviously-correct reference matcher; it is kept as the oracle that the trie is property-tested
//! against, under both syntaxes.

pub(crate) mod trie;

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// What a whole `*` level means: a wildcard (the classic brokers' habit) or an ordinary level (MQTT).
///
/// Chosen once per broker, in its [`TopicLimits::syntax`]: every topic and filter of that broker is
/// validated and matched under it. A broker that serves MQTT clients uses [`TopicSyntax::Mqtt`], so
/// every legal MQTT topic and filter means what MQTT says.
///
/// ```
/// use switchyard::{Filter, TopicLimits, TopicSyntax, Topic};
///
/// let mqtt = TopicLimits { syntax: TopicSyntax::Mqtt, ..TopicLimits::default() };
/// assert!(Topic::new("a/*").is_err()); // classic: `*` is a wildcard, not a topic level
/// assert!(Topic::with_limits("a/*", &mqtt).is_ok()); // MQTT: an ordinary level
///
/// assert!(Filter::new("a/*")?.matches("a/b")); // classic: `*` is `+`
/// let literal = Filter::with_limits("a/*", &mqtt)?;
/// assert!(!literal.matches("a/b") && literal.matches("a/*")); // MQTT: only the topic `a/*`
/// # Ok::<(), switchyard::TopicError>(())
/// ```
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum TopicSyntax {
    /// A whole `*` level is a wildcard, a synonym for `+`; no topic may have one. The default.
    #[default]
    Classic,
    /// MQTT 3.1.1's syntax: `*` is an ordinary character everywhere, in topics and filters alike; only
    /// `+` and `#` are wildcards.
    Mqtt,
}

impl TopicSyntax {
    /// Whether `level` (one whole level of a filter) matches exactly one topic level.
    #[inline]
    pub(crate) fn is_single_wildcard(self, level: &str) -> bool {
        level == "+" || (level == "*" && self == TopicSyntax::Classic)
    }
}

/// Limits on the size of topics and filters, and the syntax they are read with, checked at validation
/// time.
///
/// The defaults are generous for real hierarchies and small enough that a hostile or buggy publisher
/// cannot make one topic cost unbounded work on the data path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicLimits {
    /// Longest topic or filter, in bytes of UTF-8.
    pub max_bytes: usize,
    /// Most levels (`a/b/c` has three). Values over [`TopicLimits::MAX_LEVELS`] act as that ceiling.
    pub max_levels: usize,
    /// What a whole `*` level means ([`TopicSyntax`]); [`TopicSyntax::Classic`] by default.
    #[serde(default)]
    pub syntax: TopicSyntax,
}

impl TopicLimits {
    /// Default limit on the length of a topic or filter, in bytes (the MQTT maximum is 65,535).
    pub const DEFAULT_MAX_BYTES: usize = 1024;
    /// Default limit on the number of levels.
    pub const DEFAULT_MAX_LEVELS: usize = 32;

    /// The most levels any limits allow: a larger [`TopicLimits::max_levels`] acts as this one.
    ///
    /// The trie walks, builds and frees one stack frame per level, so the depth it accepts has to fit
    /// the stack of whatever thread publishes or subscribes. Measured: a debug build on a thread with
    /// the default 2 MiB stack handles 1,000 levels and overflows at 2,000; this ceiling keeps half of
    /// that in reserve for the caller's own frames (tokio's workers also run on 2 MiB stacks).
    pub const MAX_LEVELS: usize = 512;

    /// The level limit in force: [`TopicLimits::max_levels`], capped at [`TopicLimits::MAX_LEVELS`].
    #[inline]
    pub fn levels_allowed(&self) -> usize {
        self.max_levels.min(Self::MAX_LEVELS)
    }
}

impl Default for TopicLimits {
    fn default() -> Self {
        Self {
            max_bytes: Self::DEFAULT_MAX_BYTES,
            max_levels: Self::DEFAULT_MAX_LEVELS,
            syntax: TopicSyntax::Classic,
        }
    }
}

/// Why a topic or filter was rejected. Each variant names the offending input and the rule it broke.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    /// The topic or filter was the empty string.
    #[error("{kind} is empty; it needs at least one level such as `sensors`")]
    Empty {
        /// `"topic"` or `"filter"`.
        kind: &'static str,
    },
    /// Longer than [`TopicLimits::max_bytes`].
    #[error("{kind} `{input}` is {len} bytes long, over the limit of {max} bytes")]
    TooLong {
        /// `"topic"` or `"filter"`.
        kind: &'static str,
        /// The input, cut to its first 64 characters.
        input: String,
        /// Its length in bytes.
        len: usize,
        /// The limit it exceeded.
        max: usize,
    },
    /// More levels than [`TopicLimits::max_levels`] (or than the ceiling [`TopicLimits::MAX_LEVELS`]).
    #[error(
        "{kind} `{input}` has {levels} levels, over the limit of {max} levels{}",
        if *max == TopicLimits::MAX_LEVELS {
            " (the ceiling of TopicLimits::MAX_LEVELS, which no limits can raise)"
        } else {
            ""
        }
    )]
    TooManyLevels {
        /// `"topic"` or `"filter"`.
        kind: &'static str,
        /// The input, cut to its first 64 characters.
        input: String,
        /// How many levels it has.
        levels: usize,
        /// The limit it exceeded.
        max: usize,
    },
    /// The input contained the NUL character.
    #[error("{kind} `{input}` contains the NUL character in level {level}")]
    Nul {
        /// `"topic"` or `"filter"`.
        kind: &'static str,
        /// The input, with NUL shown as `\0`.
        input: String,
        /// Index of the offending level, from 0.
        level: usize,
    },
    /// A topic contained a wildcard; only filters may.
    #[error(
        "topic `{input}` has wildcard `{wildcard}` in level {level} (`{level_text}`); \
         topics name one place, only filters may use `+`, `*` and `#`{}",
        if *wildcard == '*' {
            " (a broker with TopicSyntax::Mqtt takes a `*` level as an ordinary level)"
        } else {
            ""
        }
    )]
    WildcardInTopic {
        /// The topic.
        input: String,
        /// Index of the offending level, from 0.
        level: usize,
        /// The offending level's text.
        level_text: String,
        /// The wildcard character found.
        wildcard: char,
    },
    /// `+` or `#` shared a level with other characters, as in `a+` or `b#`.
    #[error(
        "filter `{input}` has `{wildcard}` mixed with other characters in level {level} (`{level_text}`); \
         a wildcard must fill its whole level, as in `{}`",
        if *wildcard == '#' { "a/#" } else { "a/+/b" }
    )]
    PartialWildcard {
        /// The filter.
        input: String,
        /// Index of the offending level, from 0.
        level: usize,
        /// The offending level's text.
        level_text: String,
        /// The wildcard character found.
        wildcard: char,
    },
    /// `#` appeared before the last level.
    #[error(
        "filter `{input}` has `#` in level {level}, but `#` matches everything below it \
         and must be the last level (as in `alerts/#`)"
    )]
    HashNotLast {
        /// The filter.
        input: String,
        /// Index of the offending level, from 0.
        level: usize,
    },
}

fn shown(input: &str) -> String {
    let mut s: String = input.chars().take(64).collect();
    if s.len() < input.len() {
        s.push('…');
    }
    s.replace('\0', "\\0")
}

fn check_common(kind: &'static str, input: &str, limits: &TopicLimits) -> Result<(), TopicError> {
    if input.is_empty() {
        return Err(TopicError::Empty { kind });
    }
    if input.len() > limits.max_bytes {
        return Err(TopicError::TooLong {
            kind,
            input: shown(input),
            len: input.len(),
            max: limits.max_bytes,
        });
    }
    let levels = input.split('/').count();
    if levels > limits.levels_allowed() {
        return Err(TopicError::TooManyLevels {
            kind,
            input: shown(input),
            levels,
            max: limits.levels_allowed(),
        });
    }
    if let Some(level) = input.split('/').position(|l| l.contains('\0')) {
        return Err(TopicError::Nul {
            kind,
            input: shown(input),
            level,
        });
    }
    Ok(())
}

/// Checks that `topic` is a valid topic under `limits`.
///
/// Runs on every publish, so the common case is one pass over the bytes (`topic_is_plainly_valid`);
/// only a topic that fails it is examined again, level by level, to build an error that names the
/// offending level.
#[inline]
pub fn validate_topic(topic: &str, limits: &TopicLimits) -> Result<(), TopicError> {
    if topic_is_plainly_valid(topic.as_bytes(), limits) {
        return Ok(());
    }
    explain_invalid_topic(topic, limits)
}

/// One pass over the bytes: non-empty, within the limits, no `+`, `#` or NUL, and under
/// [`TopicSyntax::Classic`] no level that is just `*`. Agrees with [`explain_invalid_topic`] on every
/// input (a property test checks it).
#[inline]
fn topic_is_plainly_valid(bytes: &[u8], limits: &TopicLimits) -> bool {
    if bytes.is_empty() || bytes.len() > limits.max_bytes {
        return false;
    }
    let star_is_wildcard = limits.syntax == TopicSyntax::Classic;
    let star_level =
        |start: usize, end: usize| star_is_wildcard && end - start == 1 && bytes[start] == b'*';
    let mut levels = 1;
    let mut level_start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'/' => {
                if star_level(level_start, i) {
                    return false;
                }
                levels += 1;
                level_start = i + 1;
            }
            b'+' | b'#' | 0 => return false,
            _ => {}
        }
    }
    !star_level(level_start, bytes.len()) && levels <= limits.levels_allowed()
}

/// The slow path of [`validate_topic`]: finds what is wrong and says where.
#[cold]
fn explain_invalid_topic(topic: &str, limits: &TopicLimits) -> Result<(), TopicError> {
    check_common("topic", topic, limits)?;
    for (level, text) in topic.split('/').enumerate() {
        let wildcard = if text == "*" && limits.syntax == TopicSyntax::Classic {
            Some('*')
        } else {
            text.chars().find(|c| *c == '+' || *c == '#')
        };
        if let Some(wildcard) = wildcard {
            return Err(TopicError::WildcardInTopic {
                input: shown(topic),
                level,
                level_text: shown(text),
                wildcard,
            });
        }
    }
    Ok(())
}

/// Checks that `filter` is a valid filter under `limits`. (A whole `*` level is valid under both
/// syntaxes: a wildcard under [`TopicSyntax::Classic`], an ordinary level under [`TopicSyntax::Mqtt`].)
pub fn validate_filter(filter: &str, limits: &TopicLimits) -> Result<(), TopicError> {
    check_common("filter", filter, limits)?;
    let levels = filter.split('/').count();
    for (level, text) in filter.split('/').enumerate() {
        match text {
            "+" | "*" => {}
            "#" if level + 1 == levels => {}
            "#" => {
                return Err(TopicError::HashNotLast {
                    input: shown(filter),
                    level,
                });
            }
            _ => {
                if let Some(wildcard) = text.chars().find(|c| *c == '+' || *c == '#') {
                    return Err(TopicError::PartialWildcard {
                        input: shown(filter),
                        level,
                        level_text: shown(text),
                        wildcard,
                    });
                }
            }
        }
    }
    Ok(())
}

/// The reference matcher under the default [`TopicSyntax::Classic`]: does `filter` match `topic`?
///
/// The same as [`filter_matches_with`]`(filter, topic, TopicSyntax::Classic)`.
pub fn filter_matches(filter: &str, topic: &str) -> bool {
    filter_matches_with(filter, topic, TopicSyntax::Classic)
}

/// The reference matcher: does `filter` match `topic` under `syntax`?
///
/// Both are assumed valid under `syntax` (see [`validate_topic`] and [`validate_filter`]). This is a
/// direct reading of the rules in the module doc, written for clarity rather than speed; the routing
/// trie must agree with it on every input, which the property tests check.
///
/// ```
/// use switchyard::{TopicSyntax, filter_matches_with};
///
/// assert!(filter_matches_with("a/*", "a/b", TopicSyntax::Classic));
/// assert!(!filter_matches_with("a/*", "a/b", TopicSyntax::Mqtt));
/// assert!(filter_matches_with("a/*", "a/*", TopicSyntax::Mqtt));
/// ```
pub fn filter_matches_with(filter: &str, topic: &str, syntax: TopicSyntax) -> bool {
    let filter_levels: Vec<&str> = filter.split('/').collect();
    let topic_levels: Vec<&str> = topic.split('/').collect();
    let first = filter_levels[0];
    if topic.starts_with('$') && (first == "#" || syntax.is_single_wildcard(first)) {
        return false;
    }
    let mut i = 0;
    loop {
        match (filter_levels.get(i), topic_levels.get(i)) {
            (Some(&"#"), _) => return true,
            (Some(f), Some(_)) if syntax.is_single_wildcard(f) => {}
            (Some(f), Some(t)) if f == t => {}
            (None, None) => return true,
            _ => return false,
        }
        i += 1;
    }
}

/// A validated topic, cheap to clone and share between messages.
///
/// Making a `Topic` once (for example in a [`crate::Publisher`]) saves validating and allocating the
/// topic string on every publish.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Topic(Arc<str>);

impl Topic {
    /// Validates `topic` under the default [`TopicLimits`].
    pub fn new(topic: &str) -> Result<Self, TopicError> {
        Self::with_limits(topic, &TopicLimits::default())
    }

    /// Validates `topic` under `limits`.
    pub fn with_limits(topic: &str, limits: &TopicLimits) -> Result<Self, TopicError> {
        validate_topic(topic, limits)?;
        Ok(Self(Arc::from(topic)))
    }

    /// A topic from a string the caller has already validated.
    pub(crate) fn new_unchecked(topic: &str) -> Self {
        Self(Arc::from(topic))
    }

    /// The topic as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The topic's levels, in order.
    pub fn levels(&self) -> std::str::Split<'_, char> {
        self.0.split('/')
    }
}

impl fmt::Debug for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Topic {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// A validated filter, and the [`TopicSyntax`] it was validated under (which decides what a whole `*`
/// level means when it is matched).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Filter {
    text: Arc<str>,
    syntax: TopicSyntax,
}

impl Filter {
    /// Validates `filter` under the default [`TopicLimits`].
    pub fn new(filter: &str) -> Result<Self, TopicError> {
        Self::with_limits(filter, &TopicLimits::default())
    }

    /// Validates `filter` under `limits` (and reads it with their [`TopicLimits::syntax`]).
    pub fn with_limits(filter: &str, limits: &TopicLimits) -> Result<Self, TopicError> {
        validate_filter(filter, limits)?;
        Ok(Self {
            text: Arc::from(filter),
            syntax: limits.syntax,
        })
    }

    /// The filter as a string.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The syntax it was validated under.
    pub fn syntax(&self) -> TopicSyntax {
        self.syntax
    }

    /// Whether this filter matches `topic` under its syntax (the reference matcher,
    /// [`filter_matches_with`]).
    pub fn matches(&self, topic: &str) -> bool {
        filter_matches_with(&self.text, topic, self.syntax)
    }

    /// The filter's levels, in order.
    pub fn levels(&self) -> std::str::Split<'_, char> {
        self.text.split('/')
    }
}

impl fmt::Debug for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.text, f)
    }
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use proptest::strategy::Strategy;

    use super::*;

    fn topic_ok(t: &str) -> bool {
        validate_topic(t, &TopicLimits::default()).is_ok()
    }
    fn filter_ok(f: &str) -> bool {
        validate_filter(f, &TopicLimits::default()).is_ok()
    }

    #[test]
    fn topics_with_empty_levels_and_stars_inside_levels_are_valid() {
        for t in [
            "a", "a/b/c", "a//b", "/", "/a", "a/", "$SYS/x", "a*", "**", "a/b*c",
        ] {
            assert!(topic_ok(t), "{t} should be a valid topic");
        }
    }

    #[test]
    fn topics_with_wildcards_empty_or_nul_are_rejected() {
        for t in [
            "", "+", "a/+", "a+b", "#", "a/#", "a/b#", "*", "a/*/b", "a\0b",
        ] {
            assert!(!topic_ok(t), "{t:?} should be rejected as a topic");
        }
    }

    #[test]
    fn filters_accept_whole_level_wildcards_and_a_final_hash() {
        for f in [
            "#", "+", "*", "a/+/c", "a/*/c", "a/#", "+/+", "a//#", "a*", "**/x",
        ] {
            assert!(filter_ok(f), "{f} should be a valid filter");
        }
    }

    #[test]
    fn filters_reject_partial_wildcards_and_inner_hash() {
        for f in ["", "a+/b", "a/b#", "#/a", "a/#/b", "++", "a\0"] {
            assert!(!filter_ok(f), "{f:?} should be rejected as a filter");
        }
    }

    #[test]
    fn errors_name_the_offending_level_and_rule() {
        let e = validate_filter("a/b+/c", &TopicLimits::default()).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("level 1") && msg.contains("`b+`"), "{msg}");
        let e = validate_filter("a/#/c", &TopicLimits::default()).unwrap_err();
        assert!(e.to_string().contains("must be the last level"), "{e}");
        let e = validate_topic("x/+", &TopicLimits::default()).unwrap_err();
        assert!(e.to_string().contains("only filters"), "{e}");
    }

    proptest::proptest! {
        #[test]
        fn the_fast_topic_check_agrees_with_the_explaining_one(
            topic in proptest::collection::vec(
                proptest::sample::select(vec!['a', '/', '+', '#', '*', '\0', 'é']), 0..12
            ).prop_map(|cs| cs.into_iter().collect::<String>()),
            mqtt in proptest::bool::ANY,
        ) {
            let syntax = if mqtt { TopicSyntax::Mqtt } else { TopicSyntax::Classic };
            let limits = TopicLimits { max_bytes: 10, max_levels: 4, syntax };
            let fast = topic_is_plainly_valid(topic.as_bytes(), &limits);
            proptest::prop_assert_eq!(fast, explain_invalid_topic(&topic, &limits).is_ok(), "{:?}", topic);
        }
    }

    #[test]
    fn limits_are_enforced_with_an_error_naming_the_limit() {
        let limits = TopicLimits {
            max_bytes: 8,
            max_levels: 3,
            ..TopicLimits::default()
        };
        let e = validate_topic("abcdefghij", &limits).unwrap_err();
        assert!(
            matches!(
                e,
                TopicError::TooLong {
                    len: 10,
                    max: 8,
                    ..
                }
            ),
            "{e}"
        );
        let e = validate_filter("a/b/c/d", &limits).unwrap_err();
        assert!(
            matches!(
                e,
                TopicError::TooManyLevels {
                    levels: 4,
                    max: 3,
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("limit of 3 levels"));
    }

    #[test]
    fn reference_matcher_follows_the_mqtt_rules() {
        let cases = [
            ("stocks/+/price", "stocks/AAPL/price", true),
            ("stocks/+/price", "stocks/AAPL/volume", false),
            ("stocks/*/price", "stocks/AAPL/price", true),
            ("alerts/#", "alerts", true),
            ("alerts/#", "alerts/a/b", true),
            ("alerts/#", "alert", false),
            ("#", "anything/at/all", true),
            ("+", "a", true),
            ("+", "a/b", false),
            ("+/b", "/b", true),
            ("a/+", "a/", true),
            ("a/+", "a", false),
            ("a*", "a*", true),
            ("a*", "ab", false),
            ("#", "$SYS/load", false),
            ("+/load", "$SYS/load", false),
            ("$SYS/#", "$SYS/load", true),
            ("a/b", "a/b", true),
            ("a/b", "a/b/c", false),
        ];
        for (f, t, want) in cases {
            assert_eq!(filter_matches(f, t), want, "filter {f} topic {t}");
        }
    }

    const MQTT: TopicLimits = TopicLimits {
        max_bytes: TopicLimits::DEFAULT_MAX_BYTES,
        max_levels: TopicLimits::DEFAULT_MAX_LEVELS,
        syntax: TopicSyntax::Mqtt,
    };

    #[test]
    fn under_mqtt_syntax_a_star_level_is_an_ordinary_topic_level() {
        for t in ["*", "a/*", "a/*/b", "*/*", "$SYS/*"] {
            assert!(validate_topic(t, &MQTT).is_ok(), "{t} is an MQTT topic");
        }
        for t in ["+", "a/#", "a+b", "a\0b", ""] {
            assert!(
                validate_topic(t, &MQTT).is_err(),
                "{t:?} is not a topic under MQTT either"
            );
        }
        let e = validate_topic("a/*", &TopicLimits::default()).unwrap_err();
        assert!(e.to_string().contains("TopicSyntax::Mqtt"), "{e}");
    }

    #[test]
    fn under_mqtt_syntax_a_star_level_matches_only_itself() {
        let cases = [
            ("a/*", "a/*", true),
            ("a/*", "a/b", false),
            ("*", "a", false),
            ("*", "*", true),
            ("*/#", "*/x/y", true),
            ("+/b", "*/b", true),
            ("a/+", "a/*", true),
            ("#", "*", true),
            ("*/x", "$SYS/x", false),
        ];
        for (f, t, want) in cases {
            assert_eq!(
                filter_matches_with(f, t, TopicSyntax::Mqtt),
                want,
                "filter {f} topic {t}"
            );
            assert_eq!(Filter::with_limits(f, &MQTT).unwrap().matches(t), want);
        }
        assert!(filter_matches_with("a/*", "a/b", TopicSyntax::Classic));
        assert!(Filter::new("a/*").unwrap().matches("a/b"));
    }
}
