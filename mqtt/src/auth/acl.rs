//! Mosquitto's ACL file ([`AclFile`]) and the rules it gives one client ([`ClientAcl`]).
//!
//! # The format (`mosquitto.conf(5)`, `acl_file`)
//! ```text
//! # lines before any `user` line apply to anonymous clients
//! topic read public/#
//! user alice
//! topic readwrite alice/#
//! topic deny alice/secret
//! pattern write devices/%c/status
//! pattern read users/%u/#
//! ```
//! - `topic [read|write|readwrite|deny] FILTER`: for anonymous clients (before any `user` line) or
//!   for the user of the last `user NAME` line. Without an access word the line grants readwrite
//!   (so `topic read` alone is the filter `read`, as in Mosquitto). The filter is the rest of the line,
//!   trimmed, and may contain spaces.
//! - `pattern [read|write|readwrite|deny] FILTER`: for every client, wherever it stands in the file,
//!   with `%c` replaced by the client id and `%u` by the user name. A pattern with `%u` does not apply
//!   to a client without a user name. While the file has patterns, a client whose id or user name
//!   contains `+` or `#` may do nothing (it could otherwise widen a pattern into a wildcard).
//! - `user NAME`: the following `topic` lines are NAME's. A user listed twice gets both sets.
//! - Blank lines and lines starting with `#` (after leading blanks) are skipped. Anything else refuses
//!   the whole file, naming the line: a half-read ACL would grant what it meant to deny, or lock out.
//!
//! # Deciding (`security_default.c`, `mosquitto_acl_check_default`)
//! A client's rules are its own list (its user's `topic` lines; an anonymous client's are the lines
//! before any `user`), then the patterns. In each list the `deny` lines come first. The first rule
//! whose filter matches the topic decides when it is a `deny` or grants the access asked for; a
//! matching rule that grants only the other access is passed over. No deciding rule: denied. A rule
//! whose filter does not begin with `$` never matches a topic that does (`$SYS/...`), as a
//! subscription would not.
//!
//! # Subscriptions
//! [`ClientAcl::read_class`] sorts a subscription's filter once, when it is made:
//! [`ReadClass::All`] (every topic it can match is readable: no check per message),
//! [`ReadClass::None`] (none is: SUBACK 0x80), or [`ReadClass::Some`] (the filter overlaps a `deny`
//! or reaches past every grant: each topic is checked once and the answer cached, see
//! `crate::auth::permissions`). The sort looks at filters, not topics, so it is exact for `All` and
//! `None` only where one rule decides; where several rules share a filter's topics it answers `Some`,
//! which is always safe (it costs a cached check, never a wrong delivery).

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

/// Read access, as a bit of [`Rule::access`].
pub(crate) const READ: u8 = 1;
/// Write (publish) access.
pub(crate) const WRITE: u8 = 2;

/// One level of a filter.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Level {
    /// `+`: exactly one level.
    Plus,
    /// `#`: any number of levels, none included; always the last.
    Hash,
    Literal(String),
}

/// A parsed topic filter.
#[derive(Clone, PartialEq, Eq)]
struct Filter {
    levels: Vec<Level>,
}

impl fmt::Debug for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text: Vec<&str> = self
            .levels
            .iter()
            .map(|l| match l {
                Level::Plus => "+",
                Level::Hash => "#",
                Level::Literal(s) => s,
            })
            .collect();
        write!(f, "{}", text.join("/"))
    }
}

impl Filter {
    /// Parses an MQTT filter: `+` and `#` fill their whole level, `#` is last, not empty, no NUL.
    fn parse(text: &str) -> Result<Self, String> {
        if text.is_empty() {
            return Err("the filter is empty".into());
        }
        if text.contains('\0') {
            return Err("the filter contains a NUL character".into());
        }
        let parts: Vec<&str> = text.split('/').collect();
        let mut levels = Vec::with_capacity(parts.len());
        for (i, part) in parts.iter().enumerate() {
            levels.push(match *part {
                "+" => Level::Plus,
                "#" if i + 1 == parts.len() => Level::Hash,
                "#" => return Err(format!("`#` must be the last level in `{text}`")),
                p if p.contains(['+', '#']) => {
                    return Err(format!("`+` and `#` must fill a whole level in `{text}`"));
                }
                p => Level::Literal(p.to_string()),
            });
        }
        Ok(Self { levels })
    }

    /// Whether the first level is a literal beginning with `$`.
    fn dollar(&self) -> bool {
        matches!(self.levels.first(), Some(Level::Literal(s)) if s.starts_with('$'))
    }

    /// Whether the first level is `+` or `#`, which do not match a first level beginning with `$`.
    fn wild_first(&self) -> bool {
        matches!(self.levels.first(), Some(Level::Plus | Level::Hash))
    }

    /// Whether this filter matches `topic`.
    fn matches(&self, topic: &str) -> bool {
        // Most rules of a long file differ from the topic in the first level: reject those on its
        // bytes, before walking levels.
        match self.levels.first() {
            Some(Level::Literal(first)) => {
                let rest = topic.as_bytes().strip_prefix(first.as_bytes());
                if !matches!(rest, Some([] | [b'/', ..])) {
                    return false;
                }
            }
            _ if topic.starts_with('$') => return false,
            _ => {}
        }
        let mut parts = topic.split('/');
        for level in &self.levels {
            match level {
                Level::Hash => return true,
                Level::Plus => {
                    if parts.next().is_none() {
                        return false;
                    }
                }
                Level::Literal(want) => match parts.next() {
                    Some(part) if part == want => {}
                    _ => return false,
                },
            }
        }
        parts.next().is_none()
    }

    /// Whether every topic `inner` matches, this filter matches too.
    fn covers(&self, inner: &Filter) -> bool {
        // A filter that begins with a wildcard misses `$` topics that `inner` may hold.
        if self.wild_first() && inner.dollar() {
            return false;
        }
        let (mut a, mut b) = (self.levels.iter(), inner.levels.iter());
        loop {
            match (a.next(), b.next()) {
                (Some(Level::Hash), _) => return true,
                (None, None) => return true,
                (None, Some(_)) | (Some(_), None) => return false,
                (Some(_), Some(Level::Hash)) => return false,
                (Some(Level::Plus), Some(_)) => {}
                (Some(Level::Literal(x)), Some(Level::Literal(y))) if x == y => {}
                (Some(Level::Literal(_)), Some(_)) => return false,
            }
        }
    }

    /// Whether some topic matches both filters.
    fn overlaps(&self, other: &Filter) -> bool {
        if (self.wild_first() && other.dollar()) || (other.wild_first() && self.dollar()) {
            return false;
        }
        let (mut a, mut b) = (
            self.levels.iter().peekable(),
            other.levels.iter().peekable(),
        );
        loop {
            match (a.next(), b.next()) {
                (Some(Level::Hash), _) | (_, Some(Level::Hash)) => return true,
                (None, None) => return true,
                // `x/#` matches `x`: the longer side may only have a `#` left.
                (None, Some(_)) | (Some(_), None) => return false,
                (Some(Level::Plus), Some(_)) | (Some(_), Some(Level::Plus)) => {}
                (Some(Level::Literal(x)), Some(Level::Literal(y))) if x == y => {}
                (Some(Level::Literal(_)), Some(Level::Literal(_))) => return false,
            }
            // One side ends where the other has only `#` left: `a` and `a/#` share `a`.
            match (a.peek(), b.peek()) {
                (None, Some(Level::Hash)) | (Some(Level::Hash), None) => return true,
                _ => {}
            }
        }
    }
}

/// One `topic` line, or one pattern after `%c` and `%u` were replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    filter: Filter,
    /// [`READ`] | [`WRITE`]; 0 for `deny`.
    access: u8,
}

/// One `pattern` line as written.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pattern {
    text: String,
    access: u8,
}

impl Pattern {
    fn uses_user(&self) -> bool {
        self.text.contains("%u")
    }
}

/// An ACL file that did not parse or could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AclFileError {
    /// The file could not be read.
    #[error("cannot read ACL file {path}: {message}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
    /// A line did not parse.
    #[error("ACL file line {line}: {message}")]
    Line {
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        message: String,
    },
}

/// A Mosquitto ACL file: who may read and write which topics (see the module docs for the format
/// and how a decision is made).
///
/// # Examples
/// ```
/// use switchyard_mqtt::AclFile;
///
/// let acl = AclFile::parse("topic read public/#\nuser alice\ntopic alice/#\n").unwrap();
/// assert_eq!(acl.lines(), 3);
/// assert!(AclFile::parse("user alice\ntopic sometimes a/#\n")
///     .unwrap_err()
///     .to_string()
///     .contains("line 2"));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct AclFile {
    /// The `topic` lines before any `user` line, deny first. Shared with every anonymous client's
    /// [`ClientAcl`], as each user's list is with that user's clients: a connection holds a pointer to
    /// its list, not a copy (a user with 1,000 lines and 10,000 connections keeps one list).
    anonymous: Arc<[Rule]>,
    /// Each user's `topic` lines, deny first.
    users: HashMap<String, Arc<[Rule]>>,
    /// The `pattern` lines, deny first.
    patterns: Vec<Pattern>,
    /// Lines that are rules (`topic`, `pattern`, `user`).
    lines: usize,
}

impl fmt::Debug for AclFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "AclFile({} lines, {} users, {} patterns)",
            self.lines,
            self.users.len(),
            self.patterns.len()
        )
    }
}

/// Splits off the first word (separated by spaces or tabs); the rest keeps its inner blanks.
fn first_word(text: &str) -> (&str, &str) {
    let text = text.trim_start_matches([' ', '\t']);
    match text.find([' ', '\t']) {
        Some(at) => (&text[..at], text[at..].trim_matches([' ', '\t'])),
        None => (text, ""),
    }
}

/// Puts `rule` in `list` after the other denies (a deny) or at the end (a grant).
fn add_rule<T>(list: &mut Vec<T>, rule: T, deny: bool, is_deny: impl Fn(&T) -> bool) {
    if deny {
        let at = list.iter().take_while(|r| is_deny(r)).count();
        list.insert(at, rule);
    } else {
        list.push(rule);
    }
}

impl AclFile {
    /// Reads and parses `path`.
    pub fn load(path: &Path) -> Result<Self, AclFileError> {
        let text = std::fs::read_to_string(path).map_err(|e| AclFileError::Read {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        Self::parse(&text)
    }

    /// Parses a file's text; the error names the first bad line.
    pub fn parse(text: &str) -> Result<Self, AclFileError> {
        let mut anonymous: Vec<Rule> = Vec::new();
        let mut users: HashMap<String, Vec<Rule>> = HashMap::new();
        let mut patterns: Vec<Pattern> = Vec::new();
        let mut lines = 0;
        let mut user: Option<String> = None;
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let bad = |message: String| AclFileError::Line { line, message };
            let trimmed = raw.trim_matches([' ', '\t', '\r']);
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let (keyword, rest) = first_word(trimmed);
            match keyword {
                "user" => {
                    if rest.is_empty() {
                        return Err(bad("`user` needs a user name".into()));
                    }
                    user = Some(rest.to_string());
                    users.entry(rest.to_string()).or_default();
                }
                "topic" | "pattern" => {
                    let (access, filter) = parse_access_and_filter(keyword, rest).map_err(bad)?;
                    Filter::parse(filter).map_err(bad)?;
                    if keyword == "pattern" {
                        let pattern = Pattern {
                            text: filter.to_string(),
                            access,
                        };
                        add_rule(&mut patterns, pattern, access == 0, |p| p.access == 0);
                    } else {
                        let rule = Rule {
                            filter: Filter::parse(filter).map_err(bad)?,
                            access,
                        };
                        let list = match &user {
                            Some(name) => users.entry(name.clone()).or_default(),
                            None => &mut anonymous,
                        };
                        add_rule(list, rule, access == 0, |r| r.access == 0);
                    }
                }
                other => {
                    return Err(bad(format!(
                        "`{other}` is not `user`, `topic` or `pattern` (a comment starts with #)"
                    )));
                }
            }
            lines += 1;
        }
        Ok(AclFile {
            anonymous: anonymous.into(),
            users: users
                .into_iter()
                .map(|(name, rules)| (name, rules.into()))
                .collect(),
            patterns,
            lines,
        })
    }

    /// How many rule lines (`user`, `topic`, `pattern`) the file has.
    pub fn lines(&self) -> usize {
        self.lines
    }

    /// The rules for one client: `user` (`None` for an anonymous client) and its client id.
    pub(crate) fn for_client(&self, user: Option<&str>, client_id: &str) -> ClientAcl {
        let own = match user {
            Some(name) => self.users.get(name).cloned().unwrap_or_default(),
            None => self.anonymous.clone(),
        };
        let dangerous = |s: &str| s.contains(['+', '#']);
        if !self.patterns.is_empty() && (dangerous(client_id) || user.is_some_and(dangerous)) {
            return ClientAcl::default();
        }
        let mut patterns = Vec::new();
        for pattern in &self.patterns {
            if pattern.uses_user() && user.is_none() {
                continue;
            }
            let text = pattern
                .text
                .replace("%c", client_id)
                .replace("%u", user.unwrap_or(""));
            // The id and user name hold neither `+` nor `#` (checked above), so the result is a
            // filter whenever the pattern was, except that `%c` alone with an empty id leaves an empty
            // one, which matches nothing: skipped.
            if let Ok(filter) = Filter::parse(&text) {
                patterns.push(Rule {
                    filter,
                    access: pattern.access,
                });
            }
        }
        ClientAcl { own, patterns }
    }
}

/// Parses `[read|write|readwrite|deny] FILTER` after `topic` or `pattern`.
fn parse_access_and_filter<'a>(keyword: &str, rest: &'a str) -> Result<(u8, &'a str), String> {
    if rest.is_empty() {
        return Err(format!("`{keyword}` needs a filter"));
    }
    let (first, after) = first_word(rest);
    if after.is_empty() {
        // One word: the filter, readwrite (Mosquitto reads `topic read` so too).
        return Ok((READ | WRITE, first));
    }
    let access = match first {
        "read" => READ,
        "write" => WRITE,
        "readwrite" => READ | WRITE,
        "deny" => 0,
        other => {
            return Err(format!(
                "the access `{other}` is not read, write, readwrite or deny"
            ));
        }
    };
    Ok((access, after))
}

/// How much of a subscription's filter its client may read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReadClass {
    /// Every topic the filter matches: deliver without a check.
    All,
    /// Some topics may be readable and some not: check each topic (once, cached).
    Some,
    /// No topic the filter matches: refuse the subscription.
    None,
}

/// One client's rules, in the order they decide: its own list then the patterns, deny first in each.
#[derive(Debug, Clone, Default)]
pub(crate) struct ClientAcl {
    /// Its user's list (or the anonymous one), shared with the [`AclFile`].
    own: Arc<[Rule]>,
    /// The patterns with this client's id and user name filled in.
    patterns: Vec<Rule>,
}

impl ClientAcl {
    fn rules(&self) -> impl Iterator<Item = &Rule> {
        self.own.iter().chain(&self.patterns)
    }

    /// Whether `topic` may be accessed for `access` ([`READ`] or [`WRITE`]).
    #[cfg(test)]
    pub fn allows(&self, topic: &str, access: u8) -> bool {
        let (read, write) = self.permits(topic);
        if access == READ { read } else { write }
    }

    /// Both answers for `topic` in one scan: (may read, may write). Each is what a scan for that
    /// access alone would decide: the first matching rule that denies or grants it.
    pub fn permits(&self, topic: &str) -> (bool, bool) {
        let (mut read, mut write) = (None, None);
        for rule in self.rules() {
            if !rule.filter.matches(topic) {
                continue;
            }
            if rule.access == 0 || rule.access & READ != 0 {
                read.get_or_insert(rule.access != 0);
            }
            if rule.access == 0 || rule.access & WRITE != 0 {
                write.get_or_insert(rule.access != 0);
            }
            if read.is_some() && write.is_some() {
                break;
            }
        }
        (read.unwrap_or(false), write.unwrap_or(false))
    }

    /// Sorts `filter` (a valid MQTT filter) by what its client may read of it; see [`ReadClass`].
    pub fn read_class(&self, filter: &str) -> ReadClass {
        let Ok(filter) = Filter::parse(filter) else {
            return ReadClass::None;
        };
        let mut granted_some = false;
        let mut denied_some = false;
        for rule in self.rules() {
            if rule.access == 0 {
                if rule.filter.covers(&filter) {
                    return if granted_some {
                        ReadClass::Some
                    } else {
                        ReadClass::None
                    };
                }
                denied_some |= rule.filter.overlaps(&filter);
            } else if rule.access & READ != 0 {
                if rule.filter.covers(&filter) {
                    return if denied_some {
                        ReadClass::Some
                    } else {
                        ReadClass::All
                    };
                }
                granted_some |= rule.filter.overlaps(&filter);
            }
        }
        if granted_some {
            ReadClass::Some
        } else {
            ReadClass::None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(text: &str) -> Filter {
        Filter::parse(text).unwrap()
    }

    #[test]
    fn filters_match_cover_and_overlap_as_mqtt_says() {
        for (filter, topic, want) in [
            ("a/+", "a/b", true),
            ("a/+", "a", false),
            ("a/+", "a/", true),
            ("a/#", "a", true),
            ("a/#", "a/b/c", true),
            ("#", "$SYS/x", false),
            ("+/x", "$SYS/x", false),
            ("$SYS/#", "$SYS/x", true),
            ("a/b", "a/b/c", false),
        ] {
            assert_eq!(f(filter).matches(topic), want, "{filter} ~ {topic}");
        }
        for (outer, inner, want) in [
            ("#", "a/+/b", true),
            ("a/#", "a", true),
            ("a/+", "a/#", false),
            ("a/+", "a/x", true),
            ("a/x", "a/+", false),
            ("+/+", "a/b", true),
            ("#", "$SYS/#", false),
            ("$SYS/#", "$SYS/a", true),
        ] {
            assert_eq!(f(outer).covers(&f(inner)), want, "{outer} ⊇ {inner}");
        }
        for (a, b, want) in [
            ("a/+", "+/b", true),
            ("a/b", "a/c", false),
            ("a", "a/#", true),
            ("a/#", "a", true),
            ("a", "a/+", false),
            ("a/+/c", "a/b", false),
            ("#", "$SYS/x", false),
            ("$SYS/+", "$SYS/#", true),
            ("x/#", "y/#", false),
        ] {
            assert_eq!(f(a).overlaps(&f(b)), want, "{a} ∩ {b}");
            assert_eq!(f(b).overlaps(&f(a)), want, "{b} ∩ {a}");
        }
    }

    /// Every line kind, and who may do what: the table the issue asks for.
    const TABLE_ACL: &str = "\
# anonymous clients
topic read public/#

user alice
topic readwrite alice/#
topic deny alice/secret/#
topic write shared/in
topic shared/both

user bob
topic read alice/+
topic   read   with space/x  
pattern write devices/%c/status
pattern read users/%u/#
pattern deny users/%u/private
";

    #[test]
    fn every_line_kind_decides_as_mosquitto_does() {
        let acl = AclFile::parse(TABLE_ACL).unwrap();
        assert_eq!(acl.lines(), 12);
        let anon = acl.for_client(None, "c0");
        let alice = acl.for_client(Some("alice"), "c1");
        let bob = acl.for_client(Some("bob"), "dev7");
        let carol = acl.for_client(Some("carol"), "c3");
        let cases: &[(&ClientAcl, &str, &str, bool)] = &[
            (&anon, "public/news", "read", true),
            (&anon, "public/news", "write", false),
            (&anon, "alice/x", "read", false),
            (&anon, "devices/c0/status", "write", true),
            // %u patterns skip a client without a user name.
            (&anon, "users//x", "read", false),
            (&alice, "public/news", "read", false), // anonymous lines are not alice's
            (&alice, "alice/x", "write", true),
            (&alice, "alice/x", "read", true),
            (&alice, "alice/secret/k", "read", false), // deny first, though written after
            (&alice, "shared/in", "write", true),
            (&alice, "shared/in", "read", false),
            (&alice, "shared/both", "read", true), // no access word: readwrite
            (&alice, "devices/c1/status", "write", true),
            (&alice, "devices/c2/status", "write", false),
            (&alice, "users/alice/a", "read", true),
            (&alice, "users/alice/private", "read", false),
            (&alice, "users/bob/a", "read", false),
            (&bob, "alice/x", "read", true),
            (&bob, "alice/x", "write", false),
            (&bob, "alice/x/y", "read", false),
            (&bob, "with space/x", "read", true),
            (&bob, "devices/dev7/status", "write", true),
            (&carol, "users/carol/z", "read", true), // an unlisted user gets the patterns
            (&carol, "public/news", "read", false),
        ];
        for (who, topic, what, want) in cases {
            let access = if *what == "read" { READ } else { WRITE };
            assert_eq!(
                who.allows(topic, access),
                *want,
                "{what} {topic} for {who:?}"
            );
        }
    }

    #[test]
    fn a_client_id_or_user_name_with_a_wildcard_gets_nothing_under_patterns() {
        let acl = AclFile::parse("topic read #\npattern read d/%c/#\n").unwrap();
        assert!(acl.for_client(None, "x").allows("d/x/1", READ));
        assert!(!acl.for_client(None, "#").allows("d/a/1", READ));
        assert!(!acl.for_client(None, "x").allows("d/y/1", WRITE));
        assert!(!acl.for_client(Some("a+b"), "x").allows("d/x/1", READ));
    }

    #[test]
    fn dollar_topics_need_a_rule_that_names_them() {
        let acl = AclFile::parse("topic read #\ntopic read $SYS/broker/#\n").unwrap();
        let anon = acl.for_client(None, "c");
        assert!(anon.allows("a/b", READ));
        assert!(!anon.allows("$SYS/x", READ));
        assert!(anon.allows("$SYS/broker/load", READ));
    }

    #[test]
    fn subscriptions_are_sorted_by_what_their_client_may_read() {
        let acl = AclFile::parse(TABLE_ACL).unwrap();
        let alice = acl.for_client(Some("alice"), "c1");
        for (filter, want) in [
            ("alice/#", ReadClass::Some),        // covers alice/secret/#, denied
            ("alice/public/+", ReadClass::All),  // inside the grant, away from the deny
            ("alice/secret/#", ReadClass::None), // covered by the deny
            ("#", ReadClass::Some),              // reaches past every grant
            ("shared/in", ReadClass::None),      // write only
            ("bob/#", ReadClass::None),
            ("users/alice/+", ReadClass::Some), // the private deny overlaps it
            ("users/alice/x/y", ReadClass::All),
        ] {
            assert_eq!(alice.read_class(filter), want, "{filter}");
        }
    }

    #[test]
    fn bad_lines_are_refused_with_their_line_number() {
        for (text, line, words) in [
            (
                "topic read a\nbogus a\n",
                2,
                "not `user`, `topic` or `pattern`",
            ),
            ("user\n", 1, "needs a user name"),
            ("\n\ntopic\n", 3, "needs a filter"),
            (
                "topic sometimes a/b\n",
                1,
                "not read, write, readwrite or deny",
            ),
            ("topic read a/#/b\n", 1, "last level"),
            ("pattern read a+/b\n", 1, "whole level"),
            ("topic read a\r\ntopic write x#\r\n", 2, "whole level"),
        ] {
            let err = AclFile::parse(text).unwrap_err();
            assert_eq!(
                err,
                AclFileError::Line {
                    line,
                    message: match &err {
                        AclFileError::Line { message, .. } => message.clone(),
                        _ => unreachable!(),
                    }
                },
                "{text:?}"
            );
            assert!(err.to_string().contains(words), "{text:?}: {err}");
            assert!(err.to_string().contains(&format!("line {line}")), "{err}");
        }
        let err = AclFile::load(Path::new("/nonexistent/acl")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/acl"), "{err}");
    }

    #[test]
    fn no_rule_means_denied_and_a_write_grant_does_not_hide_a_later_read_grant() {
        let acl = AclFile::parse("topic write a/#\ntopic read a/b\n").unwrap();
        let anon = acl.for_client(None, "c");
        assert!(anon.allows("a/b", READ));
        assert!(!anon.allows("a/c", READ));
        assert!(!anon.allows("z", WRITE));
        assert_eq!(
            AclFile::parse("")
                .unwrap()
                .for_client(None, "c")
                .permits("a"),
            (false, false)
        );
    }
}
