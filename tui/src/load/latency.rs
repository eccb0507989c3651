//! Publish-to-receive latency: a timestamp in the payload, read back at the consumer.
//!
//! The publisher writes `1 + nanoseconds since the run's start Instant` (little-endian u64) into payload
//! bytes 0..8 of every Nth message (`--latency-every`); other messages share one payload whose first 8
//! bytes are zero. A consumer reads those 8 bytes of every message (they are in cache anyway) and reads
//! the clock only for stamped ones. So the measurement costs one clock read and one payload allocation
//! per N messages at the publisher and one clock read per N at the consumer: at the default N = 32 that
//! is well under the 10% budget. Each consumer thread records into its own HDR histogram; they are
//! merged when the run ends.

use std::time::Instant;

use hdrhistogram::Histogram;
use switchyard::{Bytes, LatencySummary};

/// Bytes of the payload that carry the timestamp.
pub const STAMP_BYTES: usize = 8;

/// A payload like `template` with the current time stamped into its first 8 bytes.
pub fn stamped_payload(template: &[u8], start: Instant) -> Bytes {
    let mut buf = template.to_vec();
    let nanos = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX - 1) + 1;
    buf[..STAMP_BYTES].copy_from_slice(&nanos.to_le_bytes());
    Bytes::from(buf)
}

/// The timestamp in `payload`, if it carries one.
#[inline]
pub fn stamp_of(payload: &[u8]) -> Option<u64> {
    let bytes: [u8; STAMP_BYTES] = payload.get(..STAMP_BYTES)?.try_into().ok()?;
    match u64::from_le_bytes(bytes) {
        0 => None,
        stamp => Some(stamp - 1),
    }
}

/// One consumer thread's latency recorder.
pub struct LatencyRecorder {
    start: Instant,
    histogram: Histogram<u64>,
}

impl LatencyRecorder {
    /// A recorder measuring against the run's `start`.
    pub fn new(start: Instant) -> Self {
        Self {
            start,
            // Auto-resizing, 3 significant digits: about 0.1% error at any magnitude.
            histogram: Histogram::new(3)
                .unwrap_or_else(|_| unreachable!("3 significant figures is valid")),
        }
    }

    /// Records the latency of a received payload if it carries a timestamp.
    #[inline]
    pub fn observe(&mut self, payload: &[u8]) {
        if let Some(sent) = stamp_of(payload) {
            let now = u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX);
            // `record`, not `saturating_record`: the latter clamps to the current top of the range
            // before auto-resizing, which would cap every sample at 2 µs.
            let _ = self.histogram.record(now.saturating_sub(sent).max(1));
        }
    }

    /// The histogram (nanoseconds).
    pub fn into_histogram(self) -> Histogram<u64> {
        self.histogram
    }
}

/// Merges per-thread histograms (nanoseconds) and summarises them in microseconds; `None` if empty.
pub fn summarize(histograms: impl IntoIterator<Item = Histogram<u64>>) -> Option<LatencySummary> {
    let mut merged: Option<Histogram<u64>> = None;
    for h in histograms {
        match &mut merged {
            None => merged = Some(h),
            Some(m) => {
                // Both auto-resize, so adding cannot run out of range.
                let _ = m.add(&h);
            }
        }
    }
    let h = merged.filter(|h| !h.is_empty())?;
    let us = |ns: u64| ns as f64 / 1000.0;
    Some(LatencySummary {
        count: h.len(),
        p50: us(h.value_at_quantile(0.50)),
        p90: us(h.value_at_quantile(0.90)),
        p99: us(h.value_at_quantile(0.99)),
        p999: us(h.value_at_quantile(0.999)),
        max: us(h.max()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamp_round_trips_and_zero_means_unstamped() {
        let start = Instant::now();
        let p = stamped_payload(&[0; 16], start);
        assert_eq!(p.len(), 16);
        assert!(stamp_of(&p).is_some());
        assert_eq!(stamp_of(&[0; 16]), None);
        assert_eq!(stamp_of(&[1, 2]), None);
    }

    #[test]
    fn summaries_merge_threads_and_report_microseconds() {
        let start = Instant::now();
        let mut a = LatencyRecorder::new(start);
        let mut b = LatencyRecorder::new(start);
        a.histogram.record(1_000).unwrap();
        b.histogram.record(3_000).unwrap();
        let s = summarize([a.into_histogram(), b.into_histogram()]).unwrap();
        assert_eq!(s.count, 2);
        assert!((s.max - 3.0).abs() < 0.01, "{s:?}");
    }

    #[test]
    fn observed_latencies_are_not_capped_by_the_initial_histogram_range() {
        let start = Instant::now() - std::time::Duration::from_millis(50);
        let mut r = LatencyRecorder::new(start);
        let mut old = vec![0u8; 8];
        old.copy_from_slice(&1u64.to_le_bytes()); // sent at `start`
        r.observe(&old);
        let s = summarize([r.into_histogram()]).unwrap();
        assert!(s.max >= 50_000.0, "{s:?}");
        assert!(summarize([LatencyRecorder::new(start).into_histogram()]).is_none());
    }
}
