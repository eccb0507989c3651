//! The progress line on stderr while a run publishes.
//!
//! On a terminal it is one line rewritten in place (`\r` and erase-to-end-of-line) at each interval; when
//! stderr is a file or a pipe (CI logs) it is one plain line per interval, so the log stays readable.
//! Figures come from the generator's own per-thread counters, not from `Broker::stats()`, which walks
//! every subscription (costly with 100,000 of them) and would reset the broker's rate interval.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use super::figures::{count, rate};

/// The messages the generator's own threads published, took and saw dropped, cumulative at one
/// instant.
#[derive(Debug, Clone, Copy, Default)]
pub struct GeneratorTotals {
    /// Messages published.
    pub published: u64,
    /// Messages taken by consumers.
    pub delivered: u64,
    /// Messages dropped (as publishers saw it).
    pub dropped: u64,
}

/// Draws the progress line.
pub struct Progress {
    enabled: bool,
    terminal: bool,
    every: Duration,
    last_at: Instant,
    last: GeneratorTotals,
    drawn: bool,
}

impl Progress {
    /// A progress line updated every `every`; nothing is drawn when `enabled` is false.
    pub fn new(enabled: bool, every: Duration, start: Instant) -> Self {
        let terminal = std::io::stderr().is_terminal();
        Self {
            enabled,
            terminal,
            // A terminal line is cheap to redraw; redraw it often enough to look alive.
            every: if terminal {
                every.min(Duration::from_millis(250))
            } else {
                every
            },
            last_at: start,
            last: GeneratorTotals::default(),
            drawn: false,
        }
    }

    /// Redraws if an interval has passed. `elapsed` and `total` describe the run so far.
    pub fn tick(&mut self, now: Instant, elapsed: Duration, total: &str, counts: GeneratorTotals) {
        if !self.enabled || now.duration_since(self.last_at) < self.every {
            return;
        }
        let secs = now.duration_since(self.last_at).as_secs_f64();
        let per_s = |a: u64, b: u64| a.saturating_sub(b) as f64 / secs;
        let line = format!(
            "[{:>6.1}s/{total}] published {} ({}/s)  delivered {} ({}/s)  dropped {} ({}/s)",
            elapsed.as_secs_f64(),
            count(counts.published),
            rate(per_s(counts.published, self.last.published)),
            count(counts.delivered),
            rate(per_s(counts.delivered, self.last.delivered)),
            count(counts.dropped),
            rate(per_s(counts.dropped, self.last.dropped)),
        );
        let mut err = std::io::stderr().lock();
        // Progress output is best effort: a closed stderr must not end the run.
        let _ = if self.terminal {
            write!(err, "\r{line}\x1b[K")
        } else {
            writeln!(err, "{line}")
        };
        let _ = err.flush();
        self.drawn = true;
        self.last_at = now;
        self.last = counts;
    }

    /// Ends the in-place line so the summary starts on a fresh one.
    pub fn finish(&mut self) {
        if self.enabled && self.terminal && self.drawn {
            let _ = writeln!(std::io::stderr());
        }
    }
}
