//! Stats for many viewers: select, sort and limit subscriptions without disturbing anyone.

use std::cmp::Ordering as CmpOrdering;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use crate::broker::Broker;
use crate::id::SubscriptionId;
use crate::message::reason::DroppedByReason;
pub use crate::stats::snapshot::SubscriptionCounts;
use crate::stats::snapshot::{Rates, SCHEMA, StatsSnapshot, SubscriptionStats, Totals};
use crate::subscription::SubscriptionCore;

/// How [`Broker::stats_query`] orders subscriptions. Every key but [`StatsSort::Id`] sorts largest
/// first; ties go to the lower id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StatsSort {
    /// By id, ascending (the order of [`Broker::stats`]).
    #[default]
    Id,
    /// Messages queued now.
    Depth,
    /// Messages queued now as a share of one lane's capacity.
    Fill,
    /// Drops so far.
    Dropped,
    /// Deliveries so far.
    Delivered,
}

impl StatsSort {
    /// Every key, in the order of the names [`StatsSort::name`] gives.
    pub const ALL: [StatsSort; 5] = [
        StatsSort::Id,
        StatsSort::Depth,
        StatsSort::Fill,
        StatsSort::Dropped,
        StatsSort::Delivered,
    ];

    /// The key's name in query strings and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::Id => "id",
            Self::Depth => "depth",
            Self::Fill => "fill",
            Self::Dropped => "dropped",
            Self::Delivered => "delivered",
        }
    }

    /// This key's value for `c`, larger first (ids are negated so that they sort ascending).
    fn key(self, c: &SubscriptionCounts) -> f64 {
        match self {
            Self::Id => -(c.id as f64),
            Self::Depth => c.depth as f64,
            Self::Fill => c.fill(),
            Self::Dropped => c.dropped as f64,
            Self::Delivered => c.delivered as f64,
        }
    }
}

/// A sort key that is not one of [`StatsSort::ALL`]'s names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown sort key `{0}`; expected one of id, depth, fill, dropped, delivered")]
pub struct ParseSortError(pub String);

impl FromStr for StatsSort {
    type Err = ParseSortError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| ParseSortError(s.to_string()))
    }
}

/// What [`Broker::stats_query`] returns in `subscriptions`.
///
/// [`Broker::stats`] is the whole picture, and its `rates` cover "the time since the previous call",
/// a sample every caller shares: a second viewer polling the same broker halves the interval the first
/// one sees. [`Broker::stats_query`] is the call for viewers that are not alone (an HTTP endpoint, a
/// metrics scrape, an attached dashboard):
///
/// - it never moves the shared rate sample: its `rates` are averages since the broker started, and
///   the snapshot carries the monotonic counters with `uptime_s` and `taken_at`, so a client computes
///   rates over its own interval from two snapshots;
/// - it reads the cheap counters of every subscription (atomics, no allocation), keeps those whose
///   name or filter contains [`StatsQuery::filter`], picks the top [`StatsQuery::limit`] by the sort key
///   with a partial selection, and only then builds the full [`SubscriptionStats`] (strings and all)
///   for the ones it returns. At 100k subscriptions and a limit of 50, that is 50 sets of strings,
///   not 100k;
/// - the totals always cover every subscription, live, retiring and removed, exactly as
///   [`Broker::stats`] does, whatever the filter and limit.
///
/// ```
/// use switchyard::{StatsQuery, StatsSort};
/// use switchyard::Broker;
///
/// let broker = Broker::new();
/// let _a = broker.subscribe("alerts/#").unwrap();
/// let _b = broker.subscribe("stocks/+/price").unwrap();
/// broker.publish("stocks/AAPL/price", "1").unwrap();
///
/// let top = broker.stats_query(&StatsQuery::new().sort(StatsSort::Depth).limit(1));
/// assert_eq!(top.snapshot.subscriptions.len(), 1);
/// assert_eq!(top.snapshot.subscriptions[0].filter, "stocks/+/price");
/// assert_eq!(top.snapshot.totals.subscriptions, 2); // totals cover everything
/// assert_eq!(top.matching, 2);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatsQuery {
    /// Keep subscriptions whose name or filter contains this text, ignoring ASCII case; `None` keeps all.
    pub filter: Option<String>,
    /// The order.
    pub sort: StatsSort,
    /// At most this many subscriptions; `None` returns every one that matches.
    pub limit: Option<usize>,
}

impl StatsQuery {
    /// Every subscription, by id.
    pub fn new() -> Self {
        Self::default()
    }

    /// Keeps subscriptions whose name or filter contains `text` (ASCII case ignored).
    pub fn filter(mut self, text: impl Into<String>) -> Self {
        self.filter = Some(text.into());
        self
    }

    /// Sets the order.
    pub fn sort(mut self, sort: StatsSort) -> Self {
        self.sort = sort;
        self
    }

    /// Returns at most `limit` subscriptions.
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = Some(limit);
        self
    }
}

/// What [`Broker::stats_query`] found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StatsSelection {
    /// The snapshot: totals over every subscription, the selected subscriptions in order, and
    /// `rates` as averages since the broker started (see [`StatsQuery`]).
    pub snapshot: StatsSnapshot,
    /// Broker-wide drops by reason (the split of `totals.dropped`).
    pub dropped_by_reason: DroppedByReason,
    /// Live subscriptions that passed the filter, before the limit.
    pub matching: u64,
}

impl Broker {
    /// A snapshot of every counter, in the `switchyard.stats/v1` schema: every subscription, by id.
    ///
    /// `rates` cover the interval since the previous call on this broker (or since it was created), a
    /// sample every caller shares; a viewer that is not alone uses [`Broker::stats_query`] and computes
    /// its own rates from two snapshots. Exact (`balances()` is true) when taken with no publish or
    /// receive in flight.
    ///
    /// ```
    /// use switchyard::Broker;
    ///
    /// let broker = Broker::new();
    /// let jobs = broker.subscribe("jobs")?;
    /// broker.publish("jobs", "a")?;
    /// broker.publish("nowhere", "b")?; // unrouted
    /// jobs.try_recv()?;
    ///
    /// let stats = broker.stats();
    /// assert_eq!(stats.schema, "switchyard.stats/v1");
    /// let t = &stats.totals;
    /// assert_eq!((t.published, t.unrouted, t.matched, t.delivered), (2, 1, 1, 1));
    /// assert_eq!(stats.subscriptions[0].filter, "jobs");
    /// assert!(stats.balances());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn stats(&self) -> StatsSnapshot {
        let mut snapshot = self.stats_query(&StatsQuery::new()).snapshot;
        snapshot.rates = self.rates_since_last_call(&snapshot.totals);
        snapshot
    }

    /// A snapshot that selects, sorts and limits subscriptions as `query` says, without moving the
    /// rate sample [`Broker::stats`] shares. See [`StatsQuery`](crate::StatsQuery).
    ///
    /// ```
    /// use switchyard::{Broker, StatsQuery, StatsSort};
    ///
    /// let broker = Broker::new();
    /// let _orders = broker.subscribe("orders/#")?;
    /// let _eu = broker.subscribe("orders/eu/#")?;
    /// let _logs = broker.subscribe("logs/#")?;
    /// broker.publish("orders/eu/1", "x")?;
    /// broker.publish("orders/us/2", "y")?;
    ///
    /// let query = StatsQuery::new().filter("ORDERS").sort(StatsSort::Depth).limit(1);
    /// let found = broker.stats_query(&query);
    /// assert_eq!(found.matching, 2); // two filters contain "orders", ASCII case ignored
    /// assert_eq!(found.snapshot.subscriptions.len(), 1); // the limit
    /// assert_eq!(found.snapshot.subscriptions[0].filter, "orders/#"); // the deepest queue
    /// assert_eq!(found.snapshot.totals.subscriptions, 3); // totals cover every subscription
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn stats_query(&self, query: &StatsQuery) -> StatsSelection {
        let sort = query.sort;
        self.stats_query_by(query.filter.as_deref(), query.limit, |c| sort.key(c))
    }

    /// Like [`Broker::stats_query`] with the order given by `key`: largest first, ties to the lower
    /// id. `key` sees the counts of every live subscription that passes `filter` (once each, under
    /// the broker's control lock, so keep it cheap), which also lets a caller keep its own
    /// per-subscription history, such as the previous sample for a rate.
    ///
    /// ```
    /// use switchyard::Broker;
    ///
    /// let broker = Broker::new();
    /// let a = broker.subscribe("a")?;
    /// let _b = broker.subscribe("b")?;
    /// broker.publish("b", "1")?;
    ///
    /// // Largest key first: here, the subscription that matched most.
    /// let top = broker.stats_query_by(None, Some(1), |c| c.matched);
    /// assert_eq!(top.snapshot.subscriptions[0].filter, "b");
    ///
    /// // `key` sees each subscription that passes the filter, once.
    /// let mut seen = Vec::new();
    /// broker.stats_query_by(Some("a"), None, |c| seen.push(c.id));
    /// assert_eq!(seen, [a.id()]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn stats_query_by<K: PartialOrd>(
        &self,
        filter: Option<&str>,
        limit: Option<usize>,
        mut key: impl FnMut(&SubscriptionCounts) -> K,
    ) -> StatsSelection {
        let needle = filter.map(str::to_ascii_lowercase);
        self.with_control(|view| {
            let mut totals = Totals::default();
            let mut dropped = view.retired.dropped;
            totals.matched = view.retired.matched;
            totals.delivered = view.retired.delivered;
            totals.ack = view.retired.ack;
            // A subscription that may be returned is counted into the totals from the same reading
            // as its row (below), so that under load the totals still add up to the rows.
            let mut chosen: Vec<(
                K,
                SubscriptionId,
                &Arc<SubscriptionCore>,
                SubscriptionCounts,
            )> = Vec::new();
            for core in view.live.values() {
                let c = core.counts();
                if needle.as_deref().is_none_or(|n| {
                    contains_ascii_ci(&core.name, n) || contains_ascii_ci(core.filter.as_str(), n)
                }) {
                    chosen.push((key(&c), c.id, core, c));
                } else {
                    add_counts(&mut totals, &mut dropped, core, &c);
                }
            }
            for core in view.retiring.values() {
                add_counts(&mut totals, &mut dropped, core, &core.counts());
            }
            totals.subscriptions = view.live.len() as u64;
            let matching = chosen.len() as u64;
            let order = |a: &(
                K,
                SubscriptionId,
                &Arc<SubscriptionCore>,
                SubscriptionCounts,
            ),
                         b: &(
                K,
                SubscriptionId,
                &Arc<SubscriptionCore>,
                SubscriptionCounts,
            )| {
                b.0.partial_cmp(&a.0)
                    .unwrap_or(CmpOrdering::Equal)
                    .then(a.1.cmp(&b.1))
            };
            let limit = limit.unwrap_or(usize::MAX).min(chosen.len());
            if limit < chosen.len() {
                if limit > 0 {
                    chosen.select_nth_unstable_by(limit - 1, order);
                }
                for (_, _, core, c) in chosen.drain(limit..) {
                    add_counts(&mut totals, &mut dropped, core, &c);
                }
            }
            chosen.sort_unstable_by(order);
            let subscriptions: Vec<SubscriptionStats> =
                chosen.iter().map(|(_, _, core, _)| core.stats()).collect();
            for s in &subscriptions {
                totals.add(s);
                dropped.add(&s.dropped_by_reason);
            }
            // The rows' drops were added above, the others' only by reason: the total is theirs.
            totals.dropped = dropped.total();
            Counted {
                totals,
                dropped_by_reason: dropped,
                matching,
                subscriptions,
            }
        })
        .finish(self)
    }
}

/// Adds one subscription's counts to the totals.
fn add_counts(
    totals: &mut Totals,
    dropped: &mut DroppedByReason,
    core: &SubscriptionCore,
    c: &SubscriptionCounts,
) {
    totals.matched += c.matched;
    totals.delivered += c.delivered;
    totals.depth += c.depth;
    totals.in_flight += c.in_flight;
    if let Some(ack) = core.ack_stats() {
        totals.ack.add(&ack);
    }
    if c.dropped > 0 {
        dropped.add(&core.counters.dropped_by_reason());
    }
}

/// Whether `haystack` contains `needle_lower` (already lower case), ignoring ASCII case.
fn contains_ascii_ci(haystack: &str, needle_lower: &str) -> bool {
    let (h, n) = (haystack.as_bytes(), needle_lower.as_bytes());
    n.is_empty()
        || h.windows(n.len())
            .any(|w| w.iter().zip(n).all(|(a, b)| a.to_ascii_lowercase() == *b))
}

/// What the part of a query under the control lock found; [`Counted::finish`] adds the rest.
struct Counted {
    totals: Totals,
    dropped_by_reason: DroppedByReason,
    matching: u64,
    subscriptions: Vec<SubscriptionStats>,
}

impl Counted {
    /// Adds the counters read without the control lock and the time, into a selection.
    fn finish(self, broker: &Broker) -> StatsSelection {
        let Counted {
            mut totals,
            dropped_by_reason,
            matching,
            subscriptions,
        } = self;
        let (published, unrouted, started) = broker.publish_counts();
        totals.published = published;
        totals.unrouted = unrouted;
        let uptime_s = Instant::now().duration_since(started).as_secs_f64();
        let per_s = |n: u64| {
            if uptime_s > 0.0 {
                n as f64 / uptime_s
            } else {
                0.0
            }
        };
        let rates = Rates {
            published_per_s: per_s(totals.published),
            delivered_per_s: per_s(totals.delivered),
            dropped_per_s: per_s(totals.dropped),
        };
        StatsSelection {
            snapshot: StatsSnapshot {
                schema: SCHEMA.to_string(),
                taken_at: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
                uptime_s,
                totals,
                rates,
                subscriptions,
                ..broker.stats_sections()
            },
            dropped_by_reason,
            matching,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::subscription::SubscriptionOptions;

    #[test]
    fn ascii_case_is_ignored_and_empty_needles_match() {
        assert!(contains_ascii_ci("Stocks/+/Price", "price"));
        assert!(contains_ascii_ci("abc", ""));
        assert!(!contains_ascii_ci("ab", "abc"));
    }

    #[test]
    fn sort_keys_parse_from_their_names_and_reject_others() {
        for k in StatsSort::ALL {
            assert_eq!(k.name().parse::<StatsSort>(), Ok(k));
        }
        let e = "rate".parse::<StatsSort>().unwrap_err();
        assert!(e.to_string().contains("`rate`"));
    }

    #[test]
    fn limit_zero_returns_no_subscriptions_but_full_totals() {
        let broker = Broker::new();
        let _s = broker
            .subscribe_with("a", SubscriptionOptions::new())
            .unwrap();
        broker.publish("a", "x").unwrap();
        let sel = broker.stats_query(&StatsQuery::new().limit(0));
        assert!(sel.snapshot.subscriptions.is_empty());
        assert_eq!(sel.snapshot.totals.matched, 1);
        assert_eq!(sel.matching, 1);
    }
}
