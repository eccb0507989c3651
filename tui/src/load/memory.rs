//! The memory a run's subscriptions need, estimated before anything is subscribed, against the memory
//! this process can have: a run that cannot fit is refused (exit 2) instead of growing until the kernel
//! or a container limit kills it.
//!
//! The estimate is for the worst case, every queue full. An idle subscription costs [`FIXED_BYTES`]
//! whatever its capacity (the README's memory table, measured with a counting allocator by
//! `cargo run --release -p switchyard --example subscription_memory`): a queue's slots are allocated
//! in blocks of 31 as it fills and freed as it drains. A full lane holds `capacity` slots at
//! [`SLOT_BYTES`] each (a 504-byte block per 31 slots, rounded up) plus [`LANE_BYTES`] (the block its
//! tail is in, and the lane itself for a priority other than `Normal`); each priority lane in use has
//! its own `capacity`. Each receiver handle the generator deals to a consumer thread adds about 80
//! bytes of resident memory (measured: `--receivers 4` against 1 at 100,000 subscriptions), counted as
//! [`RECEIVER_BYTES`]. Queued messages are not counted: a message is shared by every queue it is in.
//!
//! The memory available is the smallest of `MemAvailable` in `/proc/meminfo` and, for each memory
//! cgroup this process is in (v2 `memory.max` / `memory.current`, v1 `memory.limit_in_bytes` /
//! `memory.usage_in_bytes`, the process's own group and its ancestors), the limit minus what is in
//! use. Where none of these can be read (not Linux), nothing is refused.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use switchyard::Priority;

use super::workload::PriorityMix;

/// Heap bytes of one idle subscription, at any capacity: its core (counters, lane table and
/// read-mostly fields), name, filter, receiver group and trie nodes (a filter of its own), as measured
/// by the example (868 B; the resident memory of the generator's idle subscriptions is 813 B each,
/// measured as the `--scenarios` idle-memory rows do). The estimate keeps the previous measurement,
/// 1,250 B, as a margin.
pub const FIXED_BYTES: u64 = 1_250;
/// Bytes of one queue slot in a full lane, the larger of the two kinds: 16 B in an array lane, and in a
/// segmented one a block of 31 slots of 16 B (a pointer to a shared message and its state) and a link is
/// 504 B, 16.3 B a slot, rounded up.
pub const SLOT_BYTES: u64 = 17;
/// Bytes of a full lane besides its slots, the larger of the two kinds: a segmented lane's two partly
/// filled blocks at its ends (2 × 504 B) and its queue's padded ends (384 B); an array lane's queue
/// struct with its padded head and tail (about 400 B) is less.
pub const LANE_BYTES: u64 = 1_392;
/// Bytes of one receiver handle in the generator (the handle and its consumer's slot), rounded up.
pub const RECEIVER_BYTES: u64 = 96;

/// What a run's subscriptions will hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Estimate {
    /// Subscriptions.
    pub subscribers: u64,
    /// Slots per lane.
    pub capacity: u64,
    /// Priority lanes in use per subscription (1 without `--priorities`).
    pub lanes: u64,
    /// Receiver handles per subscription.
    pub receivers: u64,
}

impl Estimate {
    /// The estimate for a run of `subscribers` subscriptions at `capacity`, each with `receivers`
    /// handles, publishing the priority mix `priorities` (the `Normal` lane always exists; another
    /// lane is allocated when its priority is published).
    pub fn for_run(
        subscribers: u32,
        capacity: u64,
        receivers: u32,
        priorities: Option<&PriorityMix>,
    ) -> Self {
        let other_lanes = priorities.map_or(0, |mix| {
            Priority::ALL
                .iter()
                .zip(mix.weights)
                .filter(|(p, w)| **p != Priority::Normal && *w > 0)
                .count() as u64
        });
        Self {
            subscribers: u64::from(subscribers),
            capacity,
            lanes: 1 + other_lanes,
            receivers: u64::from(receivers),
        }
    }

    /// Bytes of one subscription with its receivers.
    pub fn per_subscription(&self) -> u64 {
        FIXED_BYTES
            .saturating_add(
                self.lanes.saturating_mul(
                    self.capacity
                        .saturating_mul(SLOT_BYTES)
                        .saturating_add(LANE_BYTES),
                ),
            )
            .saturating_add(self.receivers.saturating_mul(RECEIVER_BYTES))
    }

    /// Bytes of every subscription.
    pub fn total(&self) -> u64 {
        self.subscribers.saturating_mul(self.per_subscription())
    }

    /// The largest capacity at which the run fits in `available` bytes, if any.
    fn capacity_that_fits(&self, available: u64) -> Option<u64> {
        let per_sub = available / self.subscribers.max(1);
        let fixed = FIXED_BYTES + self.receivers * RECEIVER_BYTES + self.lanes * LANE_BYTES;
        let capacity = per_sub.checked_sub(fixed)? / (self.lanes * SLOT_BYTES);
        (capacity >= 1).then_some(capacity)
    }

    /// The most subscriptions that fit in `available` bytes at this capacity.
    fn subscribers_that_fit(&self, available: u64) -> u64 {
        available / self.per_subscription().max(1)
    }

    /// Refuses a run that needs more than `available` bytes, with a message naming the figure, where
    /// it comes from, and the options to change.
    pub fn check(&self, available: &Available) -> Result<(), String> {
        let need = self.total();
        if need <= available.bytes {
            return Ok(());
        }
        let mut text = format!(
            "--subscribers {} need about {} at --capacity {} ({} B per subscription with its queues \
             full: {} B \
             plus {} × ({} slots × {SLOT_BYTES} B + {LANE_BYTES} B)",
            crate::numbers::count(self.subscribers),
            bytes(need),
            crate::numbers::count(self.capacity),
            crate::numbers::count(self.per_subscription()),
            crate::numbers::count(FIXED_BYTES),
            self.lanes,
            crate::numbers::count(self.capacity),
        );
        if self.receivers > 0 {
            let _ = write!(
                text,
                " plus {} receiver(s) × {RECEIVER_BYTES} B",
                self.receivers
            );
        }
        let _ = write!(
            text,
            "), but only {} is available ({}). Lower ",
            bytes(available.bytes),
            available.source
        );
        match self.capacity_that_fits(available.bytes) {
            Some(c) => {
                let _ = write!(
                    text,
                    "--capacity (at most {} fits) or --subscribers (at most {} fit at --capacity {})",
                    crate::numbers::count(c),
                    crate::numbers::count(self.subscribers_that_fit(available.bytes)),
                    crate::numbers::count(self.capacity)
                );
            }
            None => {
                let _ = write!(
                    text,
                    "--subscribers (at most {} fit at --capacity {})",
                    crate::numbers::count(self.subscribers_that_fit(available.bytes)),
                    crate::numbers::count(self.capacity)
                );
            }
        }
        Err(text)
    }
}

/// The memory this process can still use, and which figure said so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Available {
    /// Bytes.
    pub bytes: u64,
    /// Where the figure came from, for the message (`MemAvailable in /proc/meminfo`).
    pub source: String,
}

/// Limits at or above this are "no limit" (cgroup v1 writes one just below `i64::MAX`).
const NO_LIMIT: u64 = 1 << 60;

/// The memory available to this process, read from the system (see the module docs); `None` where it
/// cannot be read.
pub fn available() -> Option<Available> {
    available_under(Path::new("/"))
}

/// [`available`] with `/proc` and `/sys` under `root`, so tests can lay out their own files.
fn available_under(root: &Path) -> Option<Available> {
    let mut best: Option<Available> = None;
    let mut consider = |bytes: u64, source: String| {
        if best.as_ref().is_none_or(|b| bytes < b.bytes) {
            best = Some(Available { bytes, source });
        }
    };
    if let Some(kb) = std::fs::read_to_string(root.join("proc/meminfo"))
        .ok()
        .and_then(|m| meminfo_field(&m, "MemAvailable:"))
    {
        consider(
            kb.saturating_mul(1024),
            "MemAvailable in /proc/meminfo".into(),
        );
    }
    let groups = std::fs::read_to_string(root.join("proc/self/cgroup")).unwrap_or_default();
    for line in groups.lines() {
        // `0::/path` (v2) or `4:memory:/path` (v1).
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let (mount, limit_file, usage_file) = if controllers.is_empty() {
            ("sys/fs/cgroup", "memory.max", "memory.current")
        } else if controllers.split(',').any(|c| c == "memory") {
            (
                "sys/fs/cgroup/memory",
                "memory.limit_in_bytes",
                "memory.usage_in_bytes",
            )
        } else {
            continue;
        };
        for dir in cgroup_dirs(&root.join(mount), path) {
            let read = |file: &str| {
                std::fs::read_to_string(dir.join(file))
                    .ok()
                    .and_then(|t| t.trim().parse::<u64>().ok())
            };
            // `max` (v2) does not parse: no limit.
            if let Some(limit) = read(limit_file).filter(|l| *l < NO_LIMIT) {
                let used = read(usage_file).unwrap_or(0);
                let shown = Path::new("/").join(dir.strip_prefix(root).unwrap_or(&dir));
                consider(
                    limit.saturating_sub(used),
                    format!(
                        "the cgroup limit {} minus {} in use, {}",
                        bytes(limit),
                        bytes(used),
                        shown.join(limit_file).display()
                    ),
                );
            }
        }
    }
    best
}

/// The directories of the cgroup `path` under the hierarchy mounted at `mount`, innermost first, up
/// to the mount itself. Inside a container the mount shows only the container's part of the
/// hierarchy, so `path` is matched by its longest tail that exists there.
fn cgroup_dirs(mount: &Path, path: &str) -> Vec<PathBuf> {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let Some(own) = (0..=parts.len())
        .map(|skip| mount.join(parts[skip..].join("/")))
        .find(|d| d.is_dir())
    else {
        return Vec::new();
    };
    own.ancestors()
        .take_while(|d| d.starts_with(mount))
        .map(Path::to_path_buf)
        .collect()
}

/// A `Name:   123 kB` field of `/proc/meminfo`, in kB.
fn meminfo_field(meminfo: &str, name: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with(name))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// `1.5 GiB`, `300.0 MiB`.
pub fn bytes(b: u64) -> String {
    const GIB: f64 = (1u64 << 30) as f64;
    const MIB: f64 = (1u64 << 20) as f64;
    if b >= 1 << 40 {
        format!("{:.1} TiB", b as f64 / (GIB * 1024.0))
    } else if b >= 1 << 30 {
        format!("{:.1} GiB", b as f64 / GIB)
    } else {
        format!("{:.1} MiB", b as f64 / MIB)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn estimate(subscribers: u64, capacity: u64) -> Estimate {
        Estimate {
            subscribers,
            capacity,
            lanes: 1,
            receivers: 0,
        }
    }

    #[test]
    fn the_estimate_bounds_a_full_queue_of_31_slot_blocks() {
        // A lane of capacity c holds its c messages in at most c/31 (rounded up) blocks of 504 B, plus
        // one more when they straddle a block boundary or the tail has installed the next block.
        for capacity in [1u64, 16, 31, 64, 256, 1024, 65_536] {
            let full = FIXED_BYTES + (capacity.div_ceil(31) + 1) * 504;
            let estimate = estimate(1, capacity).per_subscription();
            assert!(estimate >= full, "capacity {capacity}: {estimate} < {full}");
            assert!(
                estimate <= full + full / 16 + 1_392,
                "capacity {capacity}: {estimate} is far above {full}"
            );
        }
        let two_million = estimate(2_000_000, 256);
        assert_eq!(two_million.total(), 2_000_000 * 6_994);
        let lanes = Estimate {
            lanes: 4,
            receivers: 2,
            ..two_million
        };
        assert_eq!(
            lanes.per_subscription(),
            FIXED_BYTES + 4 * (256 * 17 + 1_392) + 2 * RECEIVER_BYTES
        );
    }

    #[test]
    fn lanes_are_normal_plus_each_other_priority_published() {
        let mix = PriorityMix {
            weights: [1, 0, 2, 0],
        };
        let e = Estimate::for_run(10, 64, 3, Some(&mix));
        assert_eq!(
            (e.subscribers, e.capacity, e.lanes, e.receivers),
            (10, 64, 3, 3)
        );
        assert_eq!(Estimate::for_run(10, 64, 1, None).lanes, 1);
    }

    #[test]
    fn a_run_that_does_not_fit_is_refused_naming_the_figure_and_the_options() {
        let available = Available {
            bytes: 8 << 30,
            source: "MemAvailable in /proc/meminfo".into(),
        };
        assert!(estimate(100_000, 256).check(&available).is_ok());
        let err = estimate(2_000_000, 256).check(&available).unwrap_err();
        for part in [
            "--subscribers 2,000,000 need about 13.0 GiB at --capacity 256",
            "6,994 B per subscription with its queues full: 1,250 B plus 1 × (256 slots × 17 B + 1392 B)",
            "only 8.0 GiB is available (MemAvailable in /proc/meminfo)",
            "--capacity (at most 97 fits)",
            "--subscribers (at most 1,228,186 fit at --capacity 256)",
        ] {
            assert!(err.contains(part), "{part:?} not in: {err}");
        }
        // So many that no capacity fits: only --subscribers is offered.
        let err = estimate(10_000_000, 1).check(&available).unwrap_err();
        assert!(!err.contains("--capacity (at most"), "{err}");
    }

    fn write(root: &Path, path: &str, text: &str) {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn available_memory_is_the_least_of_meminfo_and_the_cgroup_limits() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        write(
            r,
            "proc/meminfo",
            "MemTotal: 8000000 kB\nMemAvailable: 4000000 kB\n",
        );
        assert_eq!(available_under(r).unwrap().bytes, 4_000_000 * 1024);
        // cgroup v2: the own group (seen from inside a container as a tail of its path) is limited.
        write(r, "proc/self/cgroup", "0::/machine/job/run\n");
        write(r, "sys/fs/cgroup/memory.max", "max\n");
        write(r, "sys/fs/cgroup/job/run/memory.max", "1073741824\n");
        write(r, "sys/fs/cgroup/job/run/memory.current", "268435456\n");
        let a = available_under(r).unwrap();
        assert_eq!(a.bytes, (1 << 30) - (1 << 28));
        assert!(
            a.source.contains("/sys/fs/cgroup/job/run/memory.max"),
            "{}",
            a.source
        );
        // cgroup v1: a tighter limit on the memory hierarchy's root; v1's "no limit" is ignored.
        write(r, "proc/self/cgroup", "4:memory:/\n3:cpu:/\n");
        write(
            r,
            "sys/fs/cgroup/memory/memory.limit_in_bytes",
            "536870912\n",
        );
        write(r, "sys/fs/cgroup/memory/memory.usage_in_bytes", "0\n");
        assert_eq!(available_under(r).unwrap().bytes, 1 << 29);
        write(
            r,
            "sys/fs/cgroup/memory/memory.limit_in_bytes",
            "9223372036854771712\n",
        );
        assert_eq!(available_under(r).unwrap().bytes, 4_000_000 * 1024);
    }

    #[test]
    fn this_machine_reports_some_memory() {
        if cfg!(target_os = "linux") {
            assert!(available().unwrap().bytes > 0);
        }
    }
}
