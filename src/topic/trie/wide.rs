//! The children of a wide trie level: a persistent hash map from level text to child, as compact as a
//! slice.
//!
//! # Why not `imbl`'s hash map
//! Its nodes are fixed-size chunks: 32 slots at the top, and a collision of two keys in one top slot
//! makes a 16-slot node (about 560 bytes) to hold two to five of them, so a level of 100 children
//! costs about 15 KB, some 150 bytes per child, where the child's own slot is 24. With a filter of its
//! own per subscription that would be a sixth of an idle subscription's memory.
//!
//! # Shape
//! A hash array mapped trie (Bagwell), in its original compressed form: each node holds a 32-bit map of
//! which of its 32 hash buckets are used and a slice of *exactly* that many slots, each either a key and
//! its value or a sub-node for the keys whose hashes share the bucket, and the next 5 bits decide where
//! they go; a node with most of its buckets used keeps a slot for each of the 32, so that the top of a
//! wide level is found without counting (see [`Branch`]). A level of `n` children is about `log32(n)`
//! nodes deep and costs about 35 to 50 bytes a child, whatever `n`. Past the 64 bits of the hash (keys
//! whose hashes are equal), a node is a plain list, scanned.
//!
//! # Persistence
//! A slot array is behind an `Arc`, shared between versions. An insert or a removal copies the arrays on
//! the path to the key (at most 32 slots each, reference counts only), as the rest of the trie does, and
//! shares everything else. A node with one key left after a removal is folded into its parent's slot,
//! so the shape depends only on the keys present, never on the order of updates.

use std::hash::BuildHasher;
use std::sync::Arc;

/// Hash bits used per level: 32 buckets a node.
const BITS: u32 = 5;

/// A persistent map from level text to `V`. See the [module docs](self).
#[derive(Debug, Clone)]
pub(super) struct WideMap<V> {
    root: Branch<V>,
    len: usize,
    hasher: foldhash::fast::RandomState,
}

/// Buckets per node.
const BUCKETS: usize = 32;

/// A node with at least this many buckets used keeps a slot for every bucket (see [`Branch`]).
const DENSE_FROM: u32 = 24;

/// A node: which of its 32 buckets are used, and their slots, in bucket order.
///
/// A node with fewer than [`DENSE_FROM`] buckets used has a slot for each used bucket only, found by
/// counting the used buckets below it (a population count: without the `popcnt` instruction, which
/// the default x86-64 target does not assume, a dozen instructions). A fuller node has all 32 slots
/// (unused ones [`Slot::Empty`]), found by the bucket number alone: the top node of a wide level is
/// usually full, and most lookups then count once, not twice, for at most a third more slots there.
///
/// Past the hash's bits, `used` is 0 and the slots are a plain list of keys with equal hashes.
#[derive(Debug)]
struct Branch<V> {
    used: u32,
    slots: Arc<[Slot<V>]>,
}

impl<V> Clone for Branch<V> {
    fn clone(&self) -> Self {
        Self {
            used: self.used,
            slots: self.slots.clone(),
        }
    }
}

#[derive(Debug, Clone)]
enum Slot<V> {
    Leaf(Arc<str>, V),
    Branch(Branch<V>),
    /// An unused bucket of a dense node.
    Empty,
}

/// The bucket of `hash` in a node at `shift`, or `None` past the hash's bits.
#[inline]
fn bucket(hash: u64, shift: u32) -> Option<u32> {
    (shift < u64::BITS).then(|| ((hash >> shift) & (BUCKETS as u64 - 1)) as u32)
}

impl<V> Branch<V> {
    fn empty() -> Self {
        Self {
            used: 0,
            slots: Arc::new([]),
        }
    }

    /// The slot of bucket `n`, if it is used.
    #[inline]
    fn slot(&self, n: u32) -> Option<&Slot<V>> {
        let bit = 1u32 << n;
        if self.used & bit == 0 {
            return None;
        }
        let at = if self.slots.len() == BUCKETS {
            n as usize
        } else {
            (self.used & (bit - 1)).count_ones() as usize
        };
        Some(&self.slots[at])
    }
}

impl<V: Clone> Branch<V> {
    /// The used buckets and their slots, in bucket order.
    fn buckets(&self) -> Vec<(u32, Slot<V>)> {
        (0..BUCKETS as u32)
            .filter_map(|n| self.slot(n).map(|s| (n, s.clone())))
            .collect()
    }

    /// A node of `buckets` (in bucket order), dense or not by how many there are.
    fn from_buckets(buckets: Vec<(u32, Slot<V>)>) -> Self {
        let used = buckets.iter().fold(0, |used, (n, _)| used | 1 << n);
        let slots: Arc<[Slot<V>]> = if buckets.len() >= DENSE_FROM as usize {
            let mut dense = vec![Slot::Empty; BUCKETS];
            for (n, slot) in buckets {
                dense[n as usize] = slot;
            }
            dense.into()
        } else {
            buckets.into_iter().map(|(_, slot)| slot).collect()
        };
        Self { used, slots }
    }

    /// This node with bucket `n` holding `slot`, or unused for `None`.
    ///
    /// Built in one allocation, cloning the other slots (reference counts only); a node that crosses
    /// [`DENSE_FROM`] is rebuilt in its other form.
    fn with(&self, n: u32, slot: Option<Slot<V>>) -> Self {
        let bit = 1u32 << n;
        let was = self.used & bit != 0;
        let used = if slot.is_some() {
            self.used | bit
        } else {
            self.used & !bit
        };
        let dense = used.count_ones() >= DENSE_FROM;
        if dense != (self.slots.len() == BUCKETS) {
            let mut buckets = self.buckets();
            let at = buckets.partition_point(|(m, _)| *m < n);
            match slot {
                Some(slot) if was => buckets[at].1 = slot,
                Some(slot) => buckets.insert(at, (n, slot)),
                None if was => {
                    buckets.remove(at);
                }
                None => {}
            }
            return Self::from_buckets(buckets);
        }
        let slots: Arc<[Slot<V>]> = if dense {
            let slot = slot.unwrap_or(Slot::Empty);
            let (before, after) = (&self.slots[..n as usize], &self.slots[n as usize + 1..]);
            before
                .iter()
                .cloned()
                .chain(std::iter::once(slot))
                .chain(after.iter().cloned())
                .collect()
        } else {
            let at = (self.used & (bit - 1)).count_ones() as usize;
            let before = &self.slots[..at];
            let after = &self.slots[(at + usize::from(was)).min(self.slots.len())..];
            before
                .iter()
                .cloned()
                .chain(slot)
                .chain(after.iter().cloned())
                .collect()
        };
        Self { used, slots }
    }
}

impl<V: Clone> WideMap<V> {
    /// A map of `entries` (distinct keys).
    pub(super) fn from_entries(entries: impl IntoIterator<Item = (Arc<str>, V)>) -> Self {
        let mut map = Self {
            root: Branch::empty(),
            len: 0,
            hasher: foldhash::fast::RandomState::default(),
        };
        for (key, value) in entries {
            map.insert(key, value);
        }
        map
    }

    #[inline]
    fn hash(&self, key: &str) -> u64 {
        self.hasher.hash_one(key)
    }

    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// The value of `key`.
    #[inline]
    pub(super) fn get(&self, key: &str) -> Option<&V> {
        let hash = self.hash(key);
        let mut node = &self.root;
        let mut shift = 0;
        loop {
            let Some(n) = bucket(hash, shift) else {
                return node.slots.iter().find_map(|slot| match slot {
                    Slot::Leaf(k, v) if &**k == key => Some(v),
                    _ => None,
                });
            };
            match node.slot(n)? {
                Slot::Leaf(k, v) => return (&**k == key).then_some(v),
                Slot::Branch(branch) => node = branch,
                Slot::Empty => return None,
            }
            shift += BITS;
        }
    }

    /// Sets `key` to `value`, replacing any value it had.
    pub(super) fn insert(&mut self, key: Arc<str>, value: V) {
        let hash = self.hash(&key);
        let (root, added) = self.inserted(&self.root, 0, hash, key, value);
        self.root = root;
        self.len += usize::from(added);
    }

    /// `node` (at `shift`) with `key` set; and whether the key is new.
    fn inserted(
        &self,
        node: &Branch<V>,
        shift: u32,
        hash: u64,
        key: Arc<str>,
        value: V,
    ) -> (Branch<V>, bool) {
        let Some(n) = bucket(hash, shift) else {
            // Past the hash's bits: a list.
            let mut slots = node.slots.to_vec();
            let added = match slots
                .iter_mut()
                .find(|s| matches!(s, Slot::Leaf(k, _) if *k == key))
            {
                Some(slot) => {
                    *slot = Slot::Leaf(key, value);
                    false
                }
                None => {
                    slots.push(Slot::Leaf(key, value));
                    true
                }
            };
            let list = Branch {
                used: 0,
                slots: slots.into(),
            };
            return (list, added);
        };
        let (slot, added) = match node.slot(n) {
            None | Some(Slot::Empty) => (Slot::Leaf(key, value), true),
            Some(Slot::Leaf(k, _)) if *k == key => (Slot::Leaf(key, value), false),
            Some(Slot::Leaf(k, v)) => {
                let other = (self.hash(k), k.clone(), v.clone());
                let pair = pair(shift + BITS, other, (hash, key, value));
                (Slot::Branch(pair), true)
            }
            Some(Slot::Branch(branch)) => {
                let (branch, added) = self.inserted(branch, shift + BITS, hash, key, value);
                (Slot::Branch(branch), added)
            }
        };
        (node.with(n, Some(slot)), added)
    }

    /// Removes `key`; whether it was there.
    pub(super) fn remove(&mut self, key: &str) -> bool {
        let hash = self.hash(key);
        let Some(root) = removed(&self.root, 0, hash, key) else {
            return false;
        };
        self.root = match root {
            Removed::Empty => Branch::empty(),
            // The root is never folded away: it keeps its one key in a slot.
            Removed::Leaf(k, v) => {
                let n = bucket(self.hash(&k), 0).expect("the root is within the hash's bits");
                Branch::empty().with(n, Some(Slot::Leaf(k, v)))
            }
            Removed::Branch(branch) => branch,
        };
        self.len -= 1;
        true
    }

    /// Calls `visit` on every key and value, in no particular order.
    pub(super) fn for_each(&self, mut visit: impl FnMut(&Arc<str>, &V)) {
        fn walk<V>(node: &Branch<V>, visit: &mut impl FnMut(&Arc<str>, &V)) {
            for slot in node.slots.iter() {
                match slot {
                    Slot::Leaf(k, v) => visit(k, v),
                    Slot::Branch(branch) => walk(branch, visit),
                    Slot::Empty => {}
                }
            }
        }
        walk(&self.root, &mut visit);
    }
}

/// A node at `shift` holding two keys (with their hashes) whose hashes agree below `shift`.
fn pair<V: Clone>(shift: u32, a: (u64, Arc<str>, V), b: (u64, Arc<str>, V)) -> Branch<V> {
    let (Some(n_a), Some(n_b)) = (bucket(a.0, shift), bucket(b.0, shift)) else {
        let slots: [Slot<V>; 2] = [Slot::Leaf(a.1, a.2), Slot::Leaf(b.1, b.2)];
        return Branch {
            used: 0,
            slots: Arc::new(slots),
        };
    };
    if n_a == n_b {
        let below = Slot::Branch(pair(shift + BITS, a, b));
        return Branch::from_buckets(vec![(n_a, below)]);
    }
    let (first, second) = if n_a < n_b {
        ((n_a, a), (n_b, b))
    } else {
        ((n_b, b), (n_a, a))
    };
    Branch::from_buckets(vec![
        (first.0, Slot::Leaf(first.1.1, first.1.2)),
        (second.0, Slot::Leaf(second.1.1, second.1.2)),
    ])
}

/// A node after a removal below it.
enum Removed<V> {
    /// No keys left.
    Empty,
    /// One key left, with no sub-node: its parent keeps it in its own slot instead.
    Leaf(Arc<str>, V),
    Branch(Branch<V>),
}

impl<V: Clone> Removed<V> {
    /// `node` in its folded form.
    fn of(node: Branch<V>) -> Self {
        let mut live = node.slots.iter().filter(|s| !matches!(s, Slot::Empty));
        match (live.next(), live.next()) {
            (None, _) => Self::Empty,
            (Some(Slot::Leaf(k, v)), None) => Self::Leaf(k.clone(), v.clone()),
            _ => Self::Branch(node),
        }
    }
}

/// `node` (at `shift`) without `key`, or `None` when `key` is not in it.
fn removed<V: Clone>(node: &Branch<V>, shift: u32, hash: u64, key: &str) -> Option<Removed<V>> {
    let Some(n) = bucket(hash, shift) else {
        let at = node
            .slots
            .iter()
            .position(|s| matches!(s, Slot::Leaf(k, _) if &**k == key))?;
        let mut slots = node.slots.to_vec();
        slots.remove(at);
        let list = Branch {
            used: 0,
            slots: slots.into(),
        };
        return Some(Removed::of(list));
    };
    let replacement = match node.slot(n)? {
        Slot::Leaf(k, _) if &**k == key => None,
        Slot::Leaf(..) | Slot::Empty => return None,
        Slot::Branch(branch) => match removed(branch, shift + BITS, hash, key)? {
            Removed::Empty => None,
            Removed::Leaf(k, v) => Some(Slot::Leaf(k, v)),
            Removed::Branch(branch) => Some(Slot::Branch(branch)),
        },
    };
    Some(Removed::of(node.with(n, replacement)))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    fn contents(map: &WideMap<u64>) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        map.for_each(|k, v| {
            assert!(out.insert(k.to_string(), *v).is_none(), "key {k} twice");
        });
        out
    }

    #[test]
    fn thousands_of_keys_in_and_out() {
        let mut map = WideMap::from_entries([]);
        for i in 0..5000u64 {
            map.insert(Arc::from(i.to_string()), i);
        }
        assert_eq!(map.len(), 5000);
        for i in 0..5000u64 {
            assert_eq!(map.get(&i.to_string()), Some(&i));
        }
        assert_eq!(map.get("5000"), None);
        let before = map.clone();
        for i in (0..5000u64).step_by(2) {
            assert!(map.remove(&i.to_string()));
            assert!(!map.remove(&i.to_string()), "removed twice");
        }
        assert_eq!(map.len(), 2500);
        for i in 0..5000u64 {
            let want = (i % 2 == 1).then_some(i);
            assert_eq!(map.get(&i.to_string()).copied(), want);
            assert_eq!(before.get(&i.to_string()), Some(&i), "old version intact");
        }
        for i in (1..5000u64).step_by(2) {
            assert!(map.remove(&i.to_string()));
        }
        assert_eq!((map.len(), map.root.slots.len()), (0, 0));
    }

    #[test]
    fn keys_past_the_hash_bits_are_a_list() {
        // Two keys with equal hashes (a hasher cannot be made to collide on demand, so the node is
        // built the way an insert builds it) go down every level to the list past the 64th bit.
        let hash = 0x1234_5678_9abc_def0;
        let root = pair(0, (hash, Arc::from("a"), 1u64), (hash, Arc::from("b"), 2));
        let mut node = &root;
        let mut depth = 0;
        while node.used != 0 {
            assert_eq!(node.slots.len(), 1);
            let Slot::Branch(next) = &node.slots[0] else {
                panic!("a leaf above the list")
            };
            node = next;
            depth += 1;
        }
        assert_eq!(depth, 13, "64 bits, 5 a level");
        assert_eq!(node.slots.len(), 2);
        let gone = removed(&root, 0, hash, "a").expect("present");
        assert!(
            matches!(gone, Removed::Leaf(k, 2) if *k == *"b"),
            "folded up"
        );
        assert!(removed(&root, 0, hash, "c").is_none());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(if cfg!(miri) { 8 } else { 128 }))]

        /// Random inserts and removals over a small key space agree with a `BTreeMap`, and every
        /// earlier version keeps its contents.
        #[test]
        fn agrees_with_a_btreemap(ops in prop::collection::vec((any::<bool>(), 0u64..300, any::<u64>()), 1..400)) {
            let mut map = WideMap::from_entries([]);
            let mut model = BTreeMap::new();
            let mut versions = Vec::new();
            for (insert, key, value) in ops {
                let k = key.to_string();
                if insert {
                    map.insert(Arc::from(k.as_str()), value);
                    model.insert(k, value);
                } else {
                    prop_assert_eq!(map.remove(&k), model.remove(&k).is_some());
                }
                prop_assert_eq!(map.len(), model.len());
                versions.push((map.clone(), model.clone()));
            }
            for (map, model) in &versions {
                prop_assert_eq!(&contents(map), model);
                for key in 0..300u64 {
                    let k = key.to_string();
                    prop_assert_eq!(map.get(&k), model.get(&k));
                }
            }
        }

        /// The shape depends only on the keys: built in two different orders, with removals on
        /// the way, the slot counts agree node for node.
        #[test]
        fn shape_depends_only_on_the_keys(keys in prop::collection::btree_set(0u64..2000, 1..200)) {
            let mut up = WideMap::from_entries([]);
            let mut down = up.clone();
            for k in keys.iter() {
                up.insert(Arc::from(k.to_string()), *k);
                up.insert(Arc::from(format!("x{k}")), *k);
            }
            for k in keys.iter().rev() {
                down.insert(Arc::from(k.to_string()), *k);
            }
            for k in keys.iter() {
                up.remove(&format!("x{k}"));
            }
            fn shape(node: &Branch<u64>, out: &mut Vec<(u32, usize)>) {
                out.push((node.used, node.slots.len()));
                for slot in node.slots.iter() {
                    if let Slot::Branch(b) = slot {
                        shape(b, out);
                    }
                }
            }
            let (mut a, mut b) = (Vec::new(), Vec::new());
            shape(&up.root, &mut a);
            shape(&down.root, &mut b);
            prop_assert_eq!(a, b);
        }
    }
}
