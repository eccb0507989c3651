//! [`RateSampler`]: the endpoint's own previous sample of each subscription's `delivered` counter, for
//! `GET /v1/stats?sort=rate`, never the one `Broker::stats` shares.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use switchyard::SubscriptionCounts;
use switchyard::SubscriptionId;

/// The window a subscription's delivery rate is measured over for `sort=rate`: a rate is recomputed
/// only when its sample is at least this old, so many viewers polling at once see the same rates.
pub const RATE_WINDOW: Duration = Duration::from_secs(1);

/// The endpoint's own previous sample of each subscription's `delivered` counter.
#[derive(Debug, Default)]
pub(crate) struct RateSampler {
    samples: HashMap<SubscriptionId, RateSample>,
    pass: u64,
}

#[derive(Debug)]
struct RateSample {
    at: Instant,
    delivered: u64,
    per_s: f64,
    seen_in_pass: u64,
}

impl RateSampler {
    /// Starts a pass over the subscriptions.
    pub(crate) fn begin(&mut self) {
        self.pass += 1;
    }

    /// The delivery rate of `c`, updating its sample when the window has passed.
    pub(crate) fn rate(&mut self, c: &SubscriptionCounts, now: Instant) -> f64 {
        let pass = self.pass;
        let sample = self.samples.entry(c.id).or_insert(RateSample {
            at: now,
            delivered: c.delivered,
            per_s: 0.0,
            seen_in_pass: pass,
        });
        sample.seen_in_pass = pass;
        let elapsed = now.saturating_duration_since(sample.at);
        if elapsed >= RATE_WINDOW {
            sample.per_s =
                c.delivered.saturating_sub(sample.delivered) as f64 / elapsed.as_secs_f64();
            sample.at = now;
            sample.delivered = c.delivered;
        }
        sample.per_s
    }

    /// Drops the samples of subscriptions the last full pass did not see (removed ones).
    pub(crate) fn forget_unseen(&mut self) {
        let pass = self.pass;
        self.samples.retain(|_, s| s.seen_in_pass == pass);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rate_is_recomputed_only_after_the_window() {
        let mut r = RateSampler::default();
        let t0 = Instant::now();
        let mut c = SubscriptionCounts {
            id: 1,
            ..Default::default()
        };
        r.begin();
        assert_eq!(r.rate(&c, t0), 0.0);
        c.delivered = 500;
        r.begin();
        assert_eq!(r.rate(&c, t0 + Duration::from_millis(500)), 0.0);
        r.begin();
        assert_eq!(r.rate(&c, t0 + Duration::from_secs(2)), 250.0);
        r.begin();
        r.forget_unseen();
        assert!(r.samples.is_empty());
    }
}
