//! [`Permissions`]: one connection's view of the rules in force, with its decisions cached.
//!
//! # Once per topic, once per subscription
//! With an ACL, a client's rules are compiled when it connects (its user's lines, then the patterns
//! with `%c` and `%u` replaced: [`super::acl::ClientAcl`]). Each topic the client publishes to, or
//! reads from through a subscription that needs it, is decided once, by a scan of those rules, and the
//! answer (read and write together) kept in a map by topic: later messages on that topic cost one
//! hash lookup, whatever the number of ACL lines. The map holds at most [`CACHED_TOPICS`] topics; one
//! more empties it (a client that cycles through more topics pays the scan again, never more memory).
//!
//! Each subscription is sorted once ([`super::acl::ReadClass`]): one whose filter lies wholly inside
//! what its client may read delivers with no check at all, one that may read nothing is refused in
//! SUBACK, and only one whose filter overlaps a denied topic (`#` beside `topic deny secret/#`) checks
//! each message's topic in the map. The sort is kept with the subscription, stamped with
//! [`Permissions::generation`], so it is made again only when the rules change.
//!
//! # Reloads
//! Before each decision the connection compares the rules' version with the one it compiled from (one
//! atomic load). After a reload it compiles again, empties the map and takes a new generation, so every
//! subscription is sorted again at its next message: already-queued messages, and retained ones not yet
//! sent, are judged by the new rules too. A connection whose user the reloaded password file no longer
//! lists is refused everything from then on (it keeps its connection, as Mosquitto's clients of a
//! removed user do not; it cannot log in again).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::access::{Access, AccessRules};
use super::acl::{ClientAcl, ReadClass};

/// Topics whose decision one connection remembers.
pub(crate) const CACHED_TOPICS: usize = 4096;

/// Hands out generations: each compilation of any connection's rules gets a new one, so a
/// subscription sorted under other rules (an earlier connection of its persistent session, or before a
/// reload) is sorted again.
static GENERATIONS: AtomicU64 = AtomicU64::new(1);

/// What the rules let this connection do now.
#[derive(Debug)]
enum Rules {
    /// No ACL: everything.
    Everything,
    /// The user was removed from the password file by a reload: nothing.
    Nothing,
    Acl(ClientAcl),
}

/// One connection's permissions (see the module docs).
#[derive(Debug)]
pub(crate) struct Permissions {
    /// The authenticated user name; `None` for an anonymous client.
    user: Option<String>,
    /// Whether the user name is a client certificate's (`crate::transport`), not the password file's:
    /// a password file that does not list it does not revoke it.
    by_certificate: bool,
    /// Shared with the session's `ClientInfo` (one allocation per client id, not one per holder).
    client_id: Arc<str>,
    /// False before CONNECT: nothing is allowed and a reload does not compile rules.
    connected: bool,
    version: u64,
    generation: u64,
    rules: Rules,
    /// (may read, may write) by topic. foldhash: the topics are short and the map bounded, so a
    /// fast seeded hash serves (SipHash doubled the cost of a cached publish).
    topics: HashMap<Box<str>, (bool, bool), foldhash::fast::RandomState>,
}

impl Permissions {
    /// Nothing is allowed: a connection before its CONNECT is accepted. A reload does not change that.
    pub fn before_connect() -> Self {
        Self {
            user: None,
            by_certificate: false,
            client_id: Arc::default(),
            connected: false,
            version: 0,
            generation: 0,
            rules: Rules::Nothing,
            topics: HashMap::default(),
        }
    }

    /// The permissions of `user` (authenticated, or `None`) with `client_id` under the rules in force.
    pub fn new(access: &Access, user: Option<String>, client_id: impl Into<Arc<str>>) -> Self {
        Self::compiled(access, user, false, client_id)
    }

    /// The permissions of `user`, the common name of the client certificate that logged in with
    /// `client_id`: its ACL lines apply as any user's, and the password file is not consulted.
    pub fn for_certificate_user(
        access: &Access,
        user: String,
        client_id: impl Into<Arc<str>>,
    ) -> Self {
        Self::compiled(access, Some(user), true, client_id)
    }

    fn compiled(
        access: &Access,
        user: Option<String>,
        by_certificate: bool,
        client_id: impl Into<Arc<str>>,
    ) -> Self {
        let mut permissions = Self {
            user,
            by_certificate,
            client_id: client_id.into(),
            connected: true,
            version: 0,
            generation: 0,
            rules: Rules::Everything,
            topics: HashMap::default(),
        };
        let (version, rules) = access.current();
        permissions.compile(version, &rules, access);
        permissions
    }

    fn compile(&mut self, version: u64, rules: &AccessRules, access: &Access) {
        let revoked = match (&self.user, &rules.passwords) {
            (Some(user), Some(passwords)) if !self.by_certificate => passwords.get(user).is_none(),
            _ => false,
        };
        if revoked && !matches!(self.rules, Rules::Nothing) {
            access.counters.revoked.fetch_add(1, Ordering::Relaxed);
        }
        self.rules = match (&rules.acl, revoked) {
            (_, true) => Rules::Nothing,
            (None, false) => Rules::Everything,
            (Some(acl), false) => Rules::Acl(acl.for_client(self.user.as_deref(), &self.client_id)),
        };
        self.version = version;
        self.generation = GENERATIONS.fetch_add(1, Ordering::Relaxed);
        self.topics.clear();
    }

    /// Compiles again if a reload changed the rules since.
    fn refresh(&mut self, access: &Access) {
        if self.connected && access.version() != self.version {
            let (version, rules) = access.current();
            self.compile(version, &rules, access);
        }
    }

    /// Stamps the sorts made under the rules compiled now; see [`ClientRead`].
    pub fn generation(&mut self, access: &Access) -> u64 {
        self.refresh(access);
        self.generation
    }

    /// Whether everything is allowed (no ACL, not revoked): the caller may skip the checks.
    pub fn everything(&mut self, access: &Access) -> bool {
        self.refresh(access);
        matches!(self.rules, Rules::Everything)
    }

    /// Whether the client may publish to `topic`.
    pub fn may_publish(&mut self, access: &Access, topic: &str) -> bool {
        self.refresh(access);
        self.decide(topic).1
    }

    /// Whether the client may read `topic`.
    pub fn may_read(&mut self, access: &Access, topic: &str) -> bool {
        self.refresh(access);
        self.decide(topic).0
    }

    /// How much of `filter` the client may read.
    pub fn read_class(&mut self, access: &Access, filter: &str) -> ReadClass {
        self.refresh(access);
        match &self.rules {
            Rules::Everything => ReadClass::All,
            Rules::Nothing => ReadClass::None,
            Rules::Acl(acl) => acl.read_class(filter),
        }
    }

    fn decide(&mut self, topic: &str) -> (bool, bool) {
        let acl = match &self.rules {
            Rules::Everything => return (true, true),
            Rules::Nothing => return (false, false),
            Rules::Acl(acl) => acl,
        };
        if let Some(both) = self.topics.get(topic) {
            return *both;
        }
        let both = acl.permits(topic);
        if self.topics.len() >= CACHED_TOPICS {
            self.topics.clear();
        }
        self.topics.insert(topic.into(), both);
        both
    }
}

/// A subscription's sort ([`ReadClass`]) and the generation of the rules it was made under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ClientRead {
    pub generation: u64,
    pub class: ReadClass,
}

impl Default for ClientRead {
    /// Not sorted yet: generation 0 is never handed out.
    fn default() -> Self {
        Self {
            generation: 0,
            class: ReadClass::All,
        }
    }
}

impl ClientRead {
    /// Whether a message on `topic` from a subscription to `filter` may be sent, sorting the
    /// subscription again first if the rules changed since.
    pub fn may_send(
        &mut self,
        permissions: &mut Permissions,
        access: &Access,
        filter: &str,
        topic: &str,
    ) -> bool {
        let generation = permissions.generation(access);
        if self.generation != generation {
            *self = ClientRead {
                generation,
                class: permissions.read_class(access, filter),
            };
        }
        match self.class {
            ReadClass::All => true,
            ReadClass::None => false,
            ReadClass::Some => permissions.may_read(access, topic),
        }
    }
}

/// The rules as loaded from files, for [`Access::new`] and [`Access::replace`].
pub(crate) fn rules(
    passwords: Option<Arc<super::PasswordFile>>,
    acl: Option<Arc<super::AclFile>>,
) -> AccessRules {
    AccessRules { passwords, acl }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::AclFile;

    fn access(acl: &str) -> Access {
        Access::new(rules(None, Some(Arc::new(AclFile::parse(acl).unwrap()))))
    }

    #[test]
    fn decisions_are_cached_by_topic_and_forgotten_at_a_reload() {
        let access = access("topic read a/#\ntopic deny a/secret\n");
        let mut p = Permissions::new(&access, None, "c");
        assert!(p.may_read(&access, "a/x"));
        assert!(!p.may_read(&access, "a/secret"));
        assert_eq!(p.topics.len(), 2);
        let before = p.generation(&access);
        access.replace(rules(
            None,
            Some(Arc::new(AclFile::parse("topic read a/secret\n").unwrap())),
        ));
        assert!(p.may_read(&access, "a/secret"));
        assert!(!p.may_read(&access, "a/x"));
        assert_ne!(p.generation(&access), before);
    }

    #[test]
    fn a_user_removed_from_the_password_file_by_a_reload_may_do_nothing_more() {
        use crate::auth::{PasswordFile, PasswordHash};
        let hash = PasswordHash::pbkdf2_with(b"pw", 1, b"salt".to_vec());
        let both = PasswordFile::parse(&format!("alice:{hash}\nbob:{hash}\n")).unwrap();
        let bob_only = PasswordFile::parse(&format!("bob:{hash}\n")).unwrap();
        let access = Access::new(rules(Some(Arc::new(both)), None));
        let mut alice = Permissions::new(&access, Some("alice".into()), "a");
        let mut bob = Permissions::new(&access, Some("bob".into()), "b");
        assert!(alice.everything(&access));
        access.replace(rules(Some(Arc::new(bob_only)), None));
        assert!(!alice.may_publish(&access, "t"));
        assert_eq!(alice.read_class(&access, "#"), ReadClass::None);
        assert!(bob.may_publish(&access, "t"));
        assert_eq!(access.stats().0.revoked_clients, 1);
        assert!(!Permissions::before_connect().may_read(&access, "t"));
    }

    #[test]
    fn a_certificate_user_is_not_revoked_by_a_password_file_without_it_and_gets_its_acl_lines() {
        use crate::auth::{PasswordFile, PasswordHash};
        let hash = PasswordHash::pbkdf2_with(b"pw", 1, b"salt".to_vec());
        let alice = Arc::new(PasswordFile::parse(&format!("alice:{hash}\n")).unwrap());
        let acl = AclFile::parse("user sensor-1\ntopic write sensors/1/#\n").unwrap();
        let access = Access::new(rules(Some(alice), Some(Arc::new(acl))));
        let mut sensor = Permissions::for_certificate_user(&access, "sensor-1".into(), "s");
        assert!(sensor.may_publish(&access, "sensors/1/t"));
        assert!(!sensor.may_publish(&access, "sensors/2/t"));
        let mut claimed = Permissions::new(&access, Some("sensor-1".into()), "s");
        assert!(
            !claimed.may_publish(&access, "sensors/1/t"),
            "not in the password file"
        );
    }

    #[test]
    fn the_topic_map_is_bounded() {
        let access = access("topic read #\n");
        let mut p = Permissions::new(&access, None, "c");
        for i in 0..CACHED_TOPICS + 10 {
            assert!(p.may_read(&access, &format!("t/{i}")));
        }
        assert!(p.topics.len() <= CACHED_TOPICS);
    }

    #[test]
    fn a_subscription_is_sorted_again_after_a_reload() {
        let access = access("topic read a/#\n");
        let mut p = Permissions::new(&access, None, "c");
        let mut read = ClientRead::default();
        assert!(read.may_send(&mut p, &access, "a/#", "a/1"));
        assert_eq!(read.class, ReadClass::All);
        access.replace(rules(
            None,
            Some(Arc::new(
                AclFile::parse("topic read a/#\ntopic deny a/2\n").unwrap(),
            )),
        ));
        assert!(read.may_send(&mut p, &access, "a/#", "a/1"));
        assert!(!read.may_send(&mut p, &access, "a/#", "a/2"));
        assert_eq!(read.class, ReadClass::Some);
    }
}
