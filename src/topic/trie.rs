//! The topic trie: which subscriptions does a topic reach?
//!
//! # Shape
//! Each node stands for a filter prefix. A node holds
//! - `children`: exact next levels, keyed by the level text: a slice while there are at most eight,
//!   then a persistent hash map (a compact HAMT hashed with `foldhash`, in `src/topic/trie/wide.rs`), so a
//!   level with a million children is looked up in a few steps and is *not* copied when one child
//!   changes;
//! - `plus`: the child for a `+` level (or a `*` level of a filter read with
//!   [`TopicSyntax::Classic`](crate::TopicSyntax::Classic); under `Mqtt` a `*` level is an exact
//!   child like any other), kept apart so matching never has to scan siblings;
//! - `exact`: the entries whose filter ends at this node;
//! - `multi`: the entries whose filter is this prefix followed by `#`.
//!
//! Matching a topic walks its levels once, following at each node at most the exact child and the `+`
//! child, and collects `multi` entries on the way. Its cost grows with the topic's depth (and the number
//! of `+` branches that also match), not with the number of installed filters.
//!
//! # Persistence
//! A [`Trie`] is immutable. [`Trie::insert`] and [`Trie::remove`] return a new trie that shares every
//! node off the updated path with the old one (path copying), so an update costs about the depth of the
//! filter times a HAMT update, whatever the size of the table. That is what lets the routing table
//! publish a whole new version atomically (see [`crate::routing`]) while readers keep using the old one.
//! Two or more entries on one node are behind an `Arc` too, so copying a node on the path does not copy
//! them; only the list at the updated node is copied, so that cost grows with the number of entries
//! sharing *one* filter.
//!
//! # Memory
//! A filter of its own costs a node per level it does not share with another filter, and a slot (24 to
//! 32 bytes) in its parent's children. A node is 56 bytes in the broker's table (72 with a plain `u64`
//! value) plus its `Arc` header; its one entry, if it has one, lives in it; its children are a slice of
//! exactly their number, or past eight a hash map of about 35 to 50 bytes a child
//! (`src/topic/trie/wide.rs`). The filters of `examples/subscription_memory.rs` cost 337 bytes of
//! trie each; the example prints what they cost among the other parts of a subscription (see
//! `docs/memory.md`).
//!
//! Filters are validated before they reach the trie ([`crate::topic::validate_filter`]); the trie
//! assumes well-formed input.

mod wide;

use super::{Filter, TopicSyntax};

use std::sync::Arc;

use wide::WideMap;

/// A child node and the level text that leads to it.
type Child<T> = (Arc<str>, Arc<Node<T>>);

/// Up to this many children live in a plain slice; more go into a persistent hash map.
const FEW_CHILDREN: usize = 8;

/// A node's exact-level children.
///
/// Most nodes have a handful of children: a linear scan of a few short strings is faster than
/// hashing, and a slice of exactly that many costs one small allocation (a `Vec` grown by `push` would
/// keep room for four). Past [`FEW_CHILDREN`] the children move to a persistent hash map
/// (`src/topic/trie/wide.rs`), so a level with a million children is neither scanned nor copied whole; it
/// is boxed, so that the rare wide node does not make every node bigger.
#[derive(Debug, Clone)]
enum Children<T> {
    Few(Box<[Child<T>]>),
    Many(Box<WideMap<Arc<Node<T>>>>),
}

impl<T> Children<T> {
    #[inline]
    fn get(&self, level: &str) -> Option<&Arc<Node<T>>> {
        match self {
            Self::Few(v) => v.iter().find(|(l, _)| &**l == level).map(|(_, n)| n),
            Self::Many(m) => m.get(level),
        }
    }
}

impl<T: Clone> Children<T> {
    fn insert(&mut self, level: &str, node: Arc<Node<T>>) {
        match self {
            Self::Few(v) => {
                if let Some(slot) = v.iter_mut().find(|(l, _)| &**l == level) {
                    slot.1 = node;
                } else if v.len() < FEW_CHILDREN {
                    // Moved out and back, so the children are neither cloned nor given spare room.
                    let mut grown = std::mem::take(v).into_vec();
                    grown.reserve_exact(1);
                    grown.push((Arc::from(level), node));
                    *v = grown.into_boxed_slice();
                } else {
                    let mut m = WideMap::from_entries(std::mem::take(v).into_vec());
                    m.insert(Arc::from(level), node);
                    *self = Self::Many(Box::new(m));
                }
            }
            Self::Many(m) => {
                m.insert(Arc::from(level), node);
            }
        }
    }

    fn remove(&mut self, level: &str) {
        match self {
            Self::Few(v) => {
                let mut shrunk = std::mem::take(v).into_vec();
                shrunk.retain(|(l, _)| &**l != level);
                *v = shrunk.into_boxed_slice();
            }
            Self::Many(m) => {
                m.remove(level);
                // Move back to the slice well below the threshold, so a level hovering around it
                // does not convert on every update.
                if m.len() <= FEW_CHILDREN / 2 {
                    let mut few = Vec::with_capacity(m.len());
                    m.for_each(|l, n| few.push((l.clone(), n.clone())));
                    *self = Self::Few(few.into_boxed_slice());
                }
            }
        }
    }

    fn is_empty(&self) -> bool {
        match self {
            Self::Few(v) => v.is_empty(),
            Self::Many(m) => m.len() == 0,
        }
    }
}

/// One entry in the trie: an id (to find it again on removal) and the value handed to matchers.
#[derive(Debug, Clone)]
struct Entry<T> {
    id: u64,
    value: T,
}

/// Up to this many entries on one node live in a shared vector; more go into a persistent ordered map.
const FEW_ENTRIES: usize = 16;

/// The entries ending at one node.
///
/// Usually there are none, or one: a filter of its own. That one is kept in the node itself (no
/// allocation, no pointer to follow when matching). More entries are shared between table versions
/// behind one `Arc`, so copying a node on an updated path does not copy them.
///
/// "None" is `Shared(None)` rather than a variant of its own: with a value that has a single invalid
/// bit pattern (the broker's `Arc`, whose pointer is never null), the compiler can then mark `Shared`
/// with that pattern, and `Entries` is as small as one entry (16 bytes instead of 24; three nodes per
/// filter of its own, so 48 bytes per subscription).
#[derive(Debug, Clone)]
enum Entries<T> {
    One(Entry<T>),
    Shared(Option<Arc<SharedEntries<T>>>),
}

/// Two or more entries sharing one filter.
///
/// A few live in a vector of exactly their number, the fastest to walk when matching. When many
/// subscriptions share one filter, a vector would be copied whole on every subscribe and unsubscribe,
/// which would make 100,000 subscriptions to one topic take minutes; past [`FEW_ENTRIES`] they move to a
/// persistent map keyed by id, where an update costs `O(log n)`.
#[derive(Debug, Clone)]
enum SharedEntries<T> {
    Few(Box<[Entry<T>]>),
    Many(imbl::OrdMap<u64, T>),
}

impl<T> Entries<T> {
    #[inline]
    fn for_each<'a>(&'a self, visit: &mut impl FnMut(&'a T)) {
        match self {
            Self::One(e) => visit(&e.value),
            Self::Shared(None) => {}
            Self::Shared(Some(shared)) => match &**shared {
                SharedEntries::Few(list) => list.iter().for_each(|e| visit(&e.value)),
                SharedEntries::Many(map) => map.values().for_each(visit),
            },
        }
    }
}

impl<T: Clone> Entries<T> {
    /// No entries.
    const NONE: Self = Self::Shared(None);

    fn is_empty(&self) -> bool {
        matches!(self, Self::Shared(None))
    }

    fn push(&mut self, entry: Entry<T>) {
        *self = match std::mem::replace(self, Self::NONE) {
            Self::Shared(None) => Self::One(entry),
            Self::One(first) => Self::shared(SharedEntries::Few(Box::new([first, entry]))),
            Self::Shared(Some(shared)) => Self::shared(match &*shared {
                SharedEntries::Few(list) if list.len() < FEW_ENTRIES => {
                    let mut grown = Vec::with_capacity(list.len() + 1);
                    grown.extend_from_slice(list);
                    grown.push(entry);
                    SharedEntries::Few(grown.into_boxed_slice())
                }
                SharedEntries::Few(list) => {
                    let mut map: imbl::OrdMap<u64, T> =
                        list.iter().map(|e| (e.id, e.value.clone())).collect();
                    map.insert(entry.id, entry.value);
                    SharedEntries::Many(map)
                }
                SharedEntries::Many(map) => {
                    let mut map = map.clone();
                    map.insert(entry.id, entry.value);
                    SharedEntries::Many(map)
                }
            }),
        };
    }

    fn shared(entries: SharedEntries<T>) -> Self {
        Self::Shared(Some(Arc::new(entries)))
    }

    /// These entries without entry `id`, or `None` when it is not among them.
    fn without(&self, id: u64) -> Option<Self> {
        match self {
            Self::Shared(None) => None,
            Self::One(e) => (e.id == id).then_some(Self::NONE),
            Self::Shared(Some(shared)) => Some(match &**shared {
                SharedEntries::Few(list) => {
                    let at = list.iter().position(|e| e.id == id)?;
                    Self::from_list(
                        list.iter()
                            .enumerate()
                            .filter(|&(i, _)| i != at)
                            .map(|(_, e)| e.clone())
                            .collect(),
                    )
                }
                SharedEntries::Many(map) => {
                    let mut map = map.clone();
                    map.remove(&id)?;
                    if map.len() <= FEW_ENTRIES / 2 {
                        Self::from_list(
                            map.into_iter()
                                .map(|(id, value)| Entry { id, value })
                                .collect(),
                        )
                    } else {
                        Self::shared(SharedEntries::Many(map))
                    }
                }
            }),
        }
    }

    /// `list` (at least one entry) in its smallest form.
    fn from_list(mut list: Vec<Entry<T>>) -> Self {
        if list.len() == 1 {
            Self::One(list.pop().expect("one entry"))
        } else {
            Self::shared(SharedEntries::Few(list.into_boxed_slice()))
        }
    }
}

/// One filter prefix. See the [module docs](self) for what each field holds.
#[derive(Debug, Clone)]
struct Node<T> {
    children: Children<T>,
    plus: Option<Arc<Node<T>>>,
    exact: Entries<T>,
    multi: Entries<T>,
}

impl<T: Clone> Default for Node<T> {
    fn default() -> Self {
        Self {
            children: Children::Few(Box::default()),
            plus: None,
            exact: Entries::NONE,
            multi: Entries::NONE,
        }
    }
}

impl<T: Clone> Node<T> {
    fn is_empty(&self) -> bool {
        self.children.is_empty()
            && self.plus.is_none()
            && self.exact.is_empty()
            && self.multi.is_empty()
    }
}

/// A persistent map from filters to entries, matched by topic.
#[derive(Debug, Clone)]
pub struct Trie<T> {
    root: Arc<Node<T>>,
    len: usize,
}

impl<T: Clone> Default for Trie<T> {
    fn default() -> Self {
        Self {
            root: Arc::new(Node::default()),
            len: 0,
        }
    }
}

impl<T: Clone> Trie<T> {
    /// An empty trie.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the trie has no entries.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// A new trie with `value` installed under `filter` as entry `id`. The old trie is unchanged and
    /// shares every node off the filter's path with the new one.
    ///
    /// ```
    /// use switchyard::{Filter, Trie};
    ///
    /// let empty: Trie<&str> = Trie::new();
    /// let one = empty.insert(&Filter::new("stocks/+/price")?, 1, "prices");
    /// assert_eq!(one.matches("stocks/AAPL/price"), vec!["prices"]);
    /// assert!(empty.matches("stocks/AAPL/price").is_empty()); // persistent: the old version stays
    /// # Ok::<(), switchyard::TopicError>(())
    /// ```
    pub fn insert(&self, filter: &Filter, id: u64, value: T) -> Self {
        let levels: Vec<&str> = filter.as_str().split('/').collect();
        let syntax = filter.syntax();
        Self {
            root: Arc::new(insert_at(&self.root, &levels, syntax, Entry { id, value })),
            len: self.len + 1,
        }
    }

    /// A new trie without entry `id` under `filter`, or `None` when no such entry is installed.
    pub fn remove(&self, filter: &Filter, id: u64) -> Option<Self> {
        let levels: Vec<&str> = filter.as_str().split('/').collect();
        let root = remove_at(&self.root, &levels, filter.syntax(), id)?;
        Some(Self {
            root: Arc::new(root.unwrap_or_default()),
            len: self.len - 1,
        })
    }

    /// Calls `visit` once for every entry whose filter matches `topic` (a validated topic).
    ///
    /// Each matching entry is visited exactly once; the order is unspecified.
    #[inline]
    pub fn for_each_match<'a>(&'a self, topic: &str, mut visit: impl FnMut(&'a T)) {
        let root = &*self.root;
        if topic.starts_with('$') {
            // MQTT: a leading wildcard does not match a `$` topic. Only exact first levels apply.
            let (level, rest) = split_level(topic);
            if let Some(child) = root.children.get(level) {
                walk(child, rest, &mut visit);
            }
        } else {
            walk(root, Some(topic), &mut visit);
        }
    }

    /// The entries matching `topic`, cloned into a `Vec`.
    pub fn matches(&self, topic: &str) -> Vec<T> {
        let mut out = Vec::new();
        self.for_each_match(topic, |v| out.push(v.clone()));
        out
    }
}

#[inline]
fn split_level(s: &str) -> (&str, Option<&str>) {
    match s.find('/') {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    }
}

/// Visits the entries under `node` that match the remaining topic `rest` (`None`: the topic ended at
/// the level this node stands for).
fn walk<'a, T>(node: &'a Node<T>, rest: Option<&str>, visit: &mut impl FnMut(&'a T)) {
    node.multi.for_each(visit);
    match rest {
        None => {
            node.exact.for_each(visit);
        }
        Some(rest) => {
            let (level, next) = split_level(rest);
            if let Some(child) = node.children.get(level) {
                walk(child, next, visit);
            }
            if let Some(plus) = &node.plus {
                walk(plus, next, visit);
            }
        }
    }
}

fn insert_at<T: Clone>(
    node: &Node<T>,
    levels: &[&str],
    syntax: TopicSyntax,
    entry: Entry<T>,
) -> Node<T> {
    let mut node = node.clone();
    match levels {
        [] => node.exact.push(entry),
        ["#"] => node.multi.push(entry),
        [level, rest @ ..] if syntax.is_single_wildcard(level) => {
            let child = match &node.plus {
                Some(child) => insert_at(child, rest, syntax, entry),
                None => insert_at(&Node::default(), rest, syntax, entry),
            };
            node.plus = Some(Arc::new(child));
        }
        [level, rest @ ..] => {
            let child = match node.children.get(level) {
                Some(child) => insert_at(child, rest, syntax, entry),
                None => insert_at(&Node::default(), rest, syntax, entry),
            };
            node.children.insert(level, Arc::new(child));
        }
    }
    node
}

/// Removes entry `id` below `node`. `None`: not found. `Some(None)`: found, and the node is now empty
/// (the caller prunes it). `Some(Some(n))`: found, `n` is the updated node.
fn remove_at<T: Clone>(
    node: &Node<T>,
    levels: &[&str],
    syntax: TopicSyntax,
    id: u64,
) -> Option<Option<Node<T>>> {
    let mut node = node.clone();
    match levels {
        [] => node.exact = node.exact.without(id)?,
        ["#"] => node.multi = node.multi.without(id)?,
        [level, rest @ ..] if syntax.is_single_wildcard(level) => {
            let child = remove_at(node.plus.as_deref()?, rest, syntax, id)?;
            node.plus = child.map(Arc::new);
        }
        [level, rest @ ..] => {
            match remove_at(node.children.get(level)?, rest, syntax, id)? {
                Some(child) => node.children.insert(level, Arc::new(child)),
                None => node.children.remove(level),
            };
        }
    }
    Some(if node.is_empty() { None } else { Some(node) })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A filter from a literal the test knows to be valid.
    fn f(filter: &str) -> Filter {
        Filter::new(filter).expect("a valid test filter")
    }
    use crate::topic::filter_matches;

    fn sorted(mut v: Vec<u64>) -> Vec<u64> {
        v.sort_unstable();
        v
    }

    #[test]
    fn classic_broker_demo_routes_as_expected() {
        let filters = [
            "stocks/+/price",
            "alerts/#",
            "#",
            "stocks/*/price",
            "logs/application",
        ];
        let mut trie = Trie::new();
        for (i, filter) in filters.iter().enumerate() {
            trie = trie.insert(&f(filter), i as u64, i as u64);
        }
        assert_eq!(sorted(trie.matches("stocks/AAPL/price")), vec![0, 2, 3]);
        assert_eq!(sorted(trie.matches("alerts/system/health")), vec![1, 2]);
        assert_eq!(sorted(trie.matches("alerts")), vec![1, 2]);
        assert_eq!(sorted(trie.matches("logs/application")), vec![2, 4]);
        assert_eq!(sorted(trie.matches("$SYS/x")), Vec::<u64>::new());
    }

    #[test]
    fn removal_prunes_and_keeps_the_old_version_intact() {
        let t1 = Trie::new()
            .insert(&f("a/b/c"), 1, 1u64)
            .insert(&f("a/+/c"), 2, 2);
        let t2 = t1.remove(&f("a/b/c"), 1).expect("installed");
        assert_eq!(t1.matches("a/b/c").len(), 2, "old version unchanged");
        assert_eq!(t2.matches("a/b/c"), vec![2]);
        let t3 = t2.remove(&f("a/+/c"), 2).expect("installed");
        assert!(
            t3.is_empty() && t3.root.is_empty(),
            "empty nodes are pruned"
        );
        assert!(
            t3.remove(&f("a/+/c"), 2).is_none(),
            "removing twice reports not found"
        );
        assert!(
            t1.remove(&f("a/b/c"), 99).is_none(),
            "wrong id is not found"
        );
    }

    #[test]
    fn same_filter_many_entries() {
        let mut t = Trie::new();
        for i in 0..100u64 {
            t = t.insert(&f("x/#"), i, i);
        }
        assert_eq!(t.matches("x/y").len(), 100);
        for i in 0..50u64 {
            t = t.remove(&f("x/#"), i).unwrap();
        }
        assert_eq!(sorted(t.matches("x")), (50..100).collect::<Vec<_>>());
        assert_eq!(t.len(), 50);
    }

    #[test]
    fn entries_sharing_one_filter_move_between_vector_and_map_without_loss() {
        let mut t = Trie::new();
        for i in 0..40u64 {
            t = t.insert(&f("same/+"), i, i);
            assert_eq!(sorted(t.matches("same/x")), (0..=i).collect::<Vec<_>>());
        }
        for i in (0..40u64).rev() {
            t = t.remove(&f("same/+"), i).expect("installed");
            assert_eq!(sorted(t.matches("same/x")), (0..i).collect::<Vec<_>>());
        }
        assert!(t.root.is_empty());
    }

    #[test]
    fn one_entry_lives_in_the_node_and_a_broker_node_is_56_bytes() {
        // `Entries` takes the niche of the value's non-null pointer (see its docs): no bigger than one
        // entry, so a node of the broker's table (three words of entries' worth saved per filter of its
        // own) is 56 bytes.
        assert_eq!(size_of::<Entries<Arc<u8>>>(), size_of::<Entry<Arc<u8>>>());
        assert_eq!(size_of::<Node<Arc<u8>>>(), 56);
        let t = Trie::new().insert(&f("a/b"), 1, Arc::new(1u8));
        let b = t.root.children.get("a").unwrap().children.get("b").unwrap();
        assert!(matches!(&b.exact, Entries::One(e) if e.id == 1));
        let t = t
            .insert(&f("a/b"), 2, Arc::new(2))
            .remove(&f("a/b"), 1)
            .unwrap();
        let b = t.root.children.get("a").unwrap().children.get("b").unwrap();
        assert!(
            matches!(&b.exact, Entries::One(e) if e.id == 2),
            "back to one entry in the node"
        );
    }

    #[test]
    fn children_move_between_slice_and_map_without_loss() {
        // Past `FEW_CHILDREN` children a level moves to the hash map, and back well below it.
        let mut t = Trie::new().insert(&f("w/+"), 1000, 1000u64);
        for i in 0..40u64 {
            t = t.insert(&f(&format!("w/{i}")), i, i);
            for j in 0..=i {
                assert_eq!(sorted(t.matches(&format!("w/{j}"))), vec![j, 1000]);
            }
        }
        for i in (0..40u64).rev() {
            t = t.remove(&f(&format!("w/{i}")), i).expect("installed");
            assert_eq!(t.matches(&format!("w/{i}")), vec![1000]);
            for j in 0..i {
                assert_eq!(sorted(t.matches(&format!("w/{j}"))), vec![j, 1000]);
            }
        }
        let t = t.remove(&f("w/+"), 1000).expect("installed");
        assert!(t.root.is_empty());
    }

    #[test]
    fn agrees_with_reference_on_a_small_grid() {
        let filters = [
            "#", "+", "a", "a/#", "a/+", "+/b", "+/+", "a/b", "/#", "+/", "a//b", "$x/#", "+/#",
        ];
        let topics = [
            "a", "a/b", "/b", "a/", "/", "a//b", "b/c/d", "$x/a", "$x", "a/b/c",
        ];
        let mut trie = Trie::new();
        for (i, filter) in filters.iter().enumerate() {
            trie = trie.insert(&f(filter), i as u64, i as u64);
        }
        for t in topics {
            let want: Vec<u64> = (0..filters.len() as u64)
                .filter(|&i| filter_matches(filters[i as usize], t))
                .collect();
            assert_eq!(sorted(trie.matches(t)), want, "topic {t}");
        }
    }
}
