//! Totals per distinct filter: several subscriptions often share one filter (a work queue per service,
//! one per tenant), and the question "what is `orders/#` costing us?" is about all of them together.
//!
//! Pure arithmetic over a snapshot's subscriptions, so an attached client computes it the same way as
//! the embedded dashboard.

use std::collections::BTreeMap;

use switchyard::SubscriptionStats;

/// The counters of every subscription with one filter, summed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FilterTotals {
    /// The filter, as subscribed.
    pub filter: String,
    /// Subscriptions with this filter.
    pub subscriptions: u64,
    /// Sum of `matched`.
    pub matched: u64,
    /// Sum of `delivered`.
    pub delivered: u64,
    /// Sum of `dropped`.
    pub dropped: u64,
    /// Sum of `depth`: messages queued now.
    pub depth: u64,
    /// Sum of `capacity`.
    pub capacity: u64,
}

/// One [`FilterTotals`] per distinct filter among `subscriptions`, ordered by filter text.
pub fn by_filter<'a>(
    subscriptions: impl IntoIterator<Item = &'a SubscriptionStats>,
) -> Vec<FilterTotals> {
    let mut totals: BTreeMap<&str, FilterTotals> = BTreeMap::new();
    for s in subscriptions {
        let t = totals
            .entry(s.filter.as_str())
            .or_insert_with(|| FilterTotals {
                filter: s.filter.clone(),
                ..FilterTotals::default()
            });
        t.subscriptions += 1;
        t.matched += s.matched;
        t.delivered += s.delivered;
        t.dropped += s.dropped;
        t.depth += s.depth;
        t.capacity += s.capacity;
    }
    totals.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(filter: &str, matched: u64, delivered: u64, dropped: u64) -> SubscriptionStats {
        SubscriptionStats {
            filter: filter.into(),
            matched,
            delivered,
            dropped,
            depth: matched - delivered - dropped,
            capacity: 16,
            ..SubscriptionStats::default()
        }
    }

    #[test]
    fn subscriptions_sharing_a_filter_are_summed_and_others_kept_apart() {
        let subs = [
            sub("orders/#", 10, 6, 1),
            sub("alerts/+", 5, 5, 0),
            sub("orders/#", 20, 10, 8),
        ];
        let totals = by_filter(&subs);
        assert_eq!(
            totals,
            [
                FilterTotals {
                    filter: "alerts/+".into(),
                    subscriptions: 1,
                    matched: 5,
                    delivered: 5,
                    dropped: 0,
                    depth: 0,
                    capacity: 16,
                },
                FilterTotals {
                    filter: "orders/#".into(),
                    subscriptions: 2,
                    matched: 30,
                    delivered: 16,
                    dropped: 9,
                    depth: 5,
                    capacity: 32,
                },
            ]
        );
        assert!(by_filter(&[]).is_empty());
    }
}
