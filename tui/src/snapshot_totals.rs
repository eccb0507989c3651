//! Broker-wide totals summed from subscriptions' stats, for the snapshots this crate builds itself:
//! the naive baseline engine's, and the dashboard's test fixtures.

use switchyard::{SubscriptionStats, Totals};

/// The totals of a snapshot with these `subscriptions`: `published` and `unrouted` as given, the
/// subscriptions counted, and their `matched`, `delivered`, `dropped` and `depth` summed.
pub fn summed(published: u64, unrouted: u64, subscriptions: &[SubscriptionStats]) -> Totals {
    let mut totals = Totals {
        published,
        unrouted,
        subscriptions: subscriptions.len() as u64,
        ..Totals::default()
    };
    for s in subscriptions {
        totals.add(s);
    }
    totals
}
