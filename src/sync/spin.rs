//! Whether a receiver polls before it parks, and for how long: [`SpinPolicy`], and the estimate the
//! adaptive policy keeps of how long this receiver's waits last.
//!
//! # The trade-off
//! Parking and being woken costs each side a system call, and on a virtual machine the wake-up itself
//! takes several microseconds (about 8 µs on this project's machine): a receiver woken for each
//! message sees that much latency. Polling for a while first catches a message that follows within
//! the window without either side entering the kernel, and the publisher, finding nobody parked,
//! skips the notification too. But a poll that finds nothing is paid in full: a receiver that polls
//! 20 µs before every message spaced 50 µs apart burns 40% of a core to save nothing.
//!
//! # The adaptive default
//! [`SpinPolicy::Adaptive`] keeps a running estimate (an exponentially weighted mean, weight 1/4) of
//! how long recent waits lasted, from the wait's start to the message, parked or not. It polls only
//! while that estimate is under [`ADAPTIVE_BELOW`], for twice the estimate (at least
//! [`ADAPTIVE_MIN`], at most [`SPIN_LIMIT`]), and otherwise parks at once. So a receiver under steady
//! traffic a few microseconds apart polls and keeps its sub-microsecond wake-ups, and one whose
//! messages come tens of microseconds apart or more parks at once and pays only for messages: its
//! CPU is that of a channel that never polls. The threshold is about where a poll stops being cheaper
//! than a park and a wake-up. A wait that found its message at the first look is not a wait and does
//! not count.
//!
//! # Competing receivers
//! The estimate alone goes wrong when several receivers wait on one subscription (a worker pool): a
//! receiver that parks waits for its wake-up and for the others to take their turn, so its waits look
//! long, so it parks at once, so the next wait is long again. Each message then costs a park, a wake-up
//! that the publisher pays for, and two context switches, and with more receivers than cores the
//! publisher spends its time waking them. So an adaptive receiver that finds others already parked
//! on the same subscription polls at least [`COMPETING_MIN`] before it parks. Measured with
//! `examples/acked_competing_cpu` (four receivers, one publisher, two cores, 3 interleaved rounds), a
//! fixed 5 µs poll took 205–278 ns of wall time a message where the adaptive policy took 383–841, with
//! a tenth of the context switches; 2 µs and 20 µs were close behind 5. A receiver alone on its
//! subscription is not affected, so the moderate-rate CPU figures above hold; competing receivers
//! that are idle poll that long each time one wakes (a `recv_timeout` that expires, say).
//!
//! The estimate is one word written only by receivers, when they wait; publishers never read it.
//! Competing receivers share it (relaxed loads and stores: a lost update only delays the estimate).
//! It is a heuristic that no correctness argument rests on, so it is `std`'s atomic even under loom,
//! where it would only multiply the interleavings the models explore.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// What a receiver does when it finds nothing: poll for a while before it parks, or park at once.
/// Set per subscription ([`crate::SubscriptionOptions::spin`]) and per ready list
/// ([`crate::ReadySignal::with_spin`]). It decides latency against CPU for receivers that wait in
/// `recv`, `recv_timeout` or `wait_ready`; an idle receiver parks whatever the policy, so it costs no
/// CPU.
///
/// | policy | p50 wake-up, messages 5 µs apart | receiver CPU, 20,000 msg/s |
/// |---|---|---|
/// | `Adaptive` (default) | about 1 µs: it polls | as a channel that parks (flume) |
/// | `Never` | a wake-up (about 8 µs on a VM) | as a channel that parks |
/// | `For(20 µs)` | about 1 µs | up to 40% of a core (it polls 20 µs per message) |
///
/// (`cargo run --release -p switchyard --example waiting_cost` measures the last column and the
/// latency at 10,000 msg/s beside flume, crossbeam-channel and tokio's broadcast.)
///
/// ```
/// use std::time::Duration;
/// use switchyard::{Broker, SpinPolicy, SubscriptionOptions};
///
/// let broker = Broker::new();
/// // A latency-critical receiver on a machine with cores to spare: always poll 50 µs first.
/// let quotes = broker.subscribe_with(
///     "quotes/#",
///     SubscriptionOptions::new().spin(SpinPolicy::For(Duration::from_micros(50))),
/// )?;
/// broker.publish("quotes/ACME", "101.5")?;
/// assert_eq!(&quotes.recv()?.payload()[..], b"101.5");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum SpinPolicy {
    /// Poll only while recent waits were short (see the module docs of `src/sync/spin.rs`): up to
    /// twice the recent wait, and not at all when waits last longer than about 10 µs, except that a
    /// receiver that finds other receivers of its subscription parked (competing receivers, a worker
    /// pool) polls at least 5 µs: parking each of them for every message costs the publisher a
    /// wake-up a message.
    #[default]
    Adaptive,
    /// Park at once: the least CPU, and a full wake-up per message that finds the receiver waiting.
    Never,
    /// Always poll up to this long before parking (at most about 4 s): the lowest latency, paid with
    /// CPU while there is nothing to receive.
    For(Duration),
}

/// The longest an adaptive receiver polls, and the window of the old fixed policy.
pub(crate) const SPIN_LIMIT: Duration = Duration::from_micros(20);
/// An adaptive receiver polls only while its recent waits lasted less than this.
pub(crate) const ADAPTIVE_BELOW: Duration = Duration::from_micros(10);
/// The shortest poll of an adaptive receiver that polls at all.
pub(crate) const ADAPTIVE_MIN: Duration = Duration::from_micros(2);
/// The shortest poll of an adaptive receiver that finds other receivers parked on its subscription
/// (see the module docs).
pub(crate) const COMPETING_MIN: Duration = Duration::from_micros(5);
/// Waits longer than this count as this long, so one long idle spell does not keep the estimate high
/// for dozens of waits once traffic resumes.
const RECORD_CAP: Duration = Duration::from_micros(200);

/// The adaptive policy's code in [`Spin::policy_ns`].
const ADAPTIVE: u32 = u32::MAX;

/// A receiver side's policy and, for the adaptive one, its estimate. Two words.
#[derive(Debug)]
pub(crate) struct Spin {
    /// [`ADAPTIVE`], or the fixed window in nanoseconds (0: never).
    policy_ns: u32,
    /// The running mean of recent waits, in nanoseconds.
    typical_ns: AtomicU32,
}

impl Default for Spin {
    fn default() -> Self {
        Self::new(SpinPolicy::Adaptive)
    }
}

fn nanos(d: Duration) -> u32 {
    u32::try_from(d.as_nanos()).unwrap_or(u32::MAX - 1)
}

impl Spin {
    pub(crate) fn new(policy: SpinPolicy) -> Self {
        let policy_ns = match policy {
            SpinPolicy::Adaptive => ADAPTIVE,
            SpinPolicy::Never => 0,
            SpinPolicy::For(d) => nanos(d).min(ADAPTIVE - 1),
        };
        Self {
            policy_ns,
            // Start as if waits were short: the first waits poll briefly and teach the estimate.
            typical_ns: AtomicU32::new(nanos(ADAPTIVE_MIN)),
        }
    }

    /// How long to poll before parking now.
    #[inline]
    pub(crate) fn window(&self) -> Duration {
        if self.policy_ns != ADAPTIVE {
            return Duration::from_nanos(u64::from(self.policy_ns));
        }
        let typical = Duration::from_nanos(u64::from(self.typical_ns.load(Ordering::Relaxed)));
        if typical >= ADAPTIVE_BELOW {
            Duration::ZERO
        } else {
            (typical * 2).clamp(ADAPTIVE_MIN, SPIN_LIMIT)
        }
    }

    /// How long to poll before parking now, for a receiver that finds others waiting (`competing`)
    /// or not: an adaptive receiver among others polls at least [`COMPETING_MIN`] (see the module
    /// docs); a fixed policy is what it says.
    #[inline]
    pub(crate) fn window_beside(&self, competing: bool) -> Duration {
        let window = self.window();
        if competing && self.policy_ns == ADAPTIVE {
            window.max(COMPETING_MIN)
        } else {
            window
        }
    }

    /// Records how long a wait lasted (for the adaptive policy; the others ignore it).
    #[inline]
    pub(crate) fn record(&self, waited: Duration) {
        if self.policy_ns != ADAPTIVE {
            return;
        }
        let waited = i64::from(nanos(waited.min(RECORD_CAP)));
        let old = i64::from(self.typical_ns.load(Ordering::Relaxed));
        let new = old + (waited - old) / 4;
        self.typical_ns
            .store(u32::try_from(new).unwrap_or(0), Ordering::Relaxed);
    }
}

/// Polls `check` for up to `window` from `started` (and not past `deadline`), with a pause between
/// polls; every 16 polls reads the clock and yields.
#[cfg(not(switchyard_loom))]
#[inline]
pub(crate) fn spin_for<T>(
    started: Instant,
    window: Duration,
    deadline: Option<Instant>,
    check: &mut impl FnMut() -> Option<T>,
) -> Option<T> {
    let until = deadline.map_or(started + window, |d| d.min(started + window));
    loop {
        for _ in 0..16 {
            if let Some(value) = check() {
                return Some(value);
            }
            std::hint::spin_loop();
        }
        if Instant::now() >= until {
            return None;
        }
        // Offer the core to another runnable thread (the one this thread may be waiting for, on a
        // machine with fewer cores than busy threads); with a core to spare this returns at once.
        std::thread::yield_now();
    }
}

/// Under loom the models must park: no polling.
#[cfg(switchyard_loom)]
#[inline]
pub(crate) fn spin_for<T>(
    _: Instant,
    _: Duration,
    _: Option<Instant>,
    _: &mut impl FnMut() -> Option<T>,
) -> Option<T> {
    None
}

#[cfg(all(test, not(switchyard_loom)))]
mod tests {
    use super::*;

    #[test]
    fn adaptive_polls_while_waits_are_short_and_parks_once_they_are_long() {
        let spin = Spin::new(SpinPolicy::Adaptive);
        for _ in 0..16 {
            spin.record(Duration::from_micros(3));
        }
        let w = spin.window();
        assert!(
            w >= Duration::from_micros(5) && w <= Duration::from_micros(7),
            "{w:?}"
        );
        for _ in 0..16 {
            spin.record(Duration::from_micros(50));
        }
        assert_eq!(spin.window(), Duration::ZERO);
        // Traffic picks up again: short waits bring polling back.
        for _ in 0..40 {
            spin.record(Duration::from_nanos(500));
        }
        assert_eq!(spin.window(), ADAPTIVE_MIN);
    }

    #[test]
    fn an_adaptive_receiver_among_others_polls_even_when_its_waits_are_long() {
        let spin = Spin::new(SpinPolicy::Adaptive);
        for _ in 0..16 {
            spin.record(Duration::from_micros(50));
        }
        assert_eq!(spin.window_beside(false), Duration::ZERO);
        assert_eq!(spin.window_beside(true), COMPETING_MIN);
        // Short waits poll as long as they would alone, or longer.
        for _ in 0..40 {
            spin.record(Duration::from_micros(8));
        }
        assert_eq!(spin.window_beside(true), spin.window());
        // Fixed policies are what they say, among others too.
        assert_eq!(
            Spin::new(SpinPolicy::Never).window_beside(true),
            Duration::ZERO
        );
        let fixed = Spin::new(SpinPolicy::For(Duration::from_micros(1)));
        assert_eq!(fixed.window_beside(true), Duration::from_micros(1));
    }

    #[test]
    fn one_long_idle_spell_weighs_no_more_than_the_cap() {
        let spin = Spin::new(SpinPolicy::Adaptive);
        spin.record(Duration::from_secs(3600));
        let mut waits = 0;
        while spin.window().is_zero() {
            spin.record(Duration::from_micros(1));
            waits += 1;
        }
        assert!(waits <= 12, "{waits} short waits to poll again");
    }

    #[test]
    fn fixed_policies_ignore_the_estimate() {
        let never = Spin::new(SpinPolicy::Never);
        never.record(Duration::from_nanos(10));
        assert_eq!(never.window(), Duration::ZERO);
        let fixed = Spin::new(SpinPolicy::For(Duration::from_micros(50)));
        fixed.record(Duration::from_secs(1));
        assert_eq!(fixed.window(), Duration::from_micros(50));
        let long = Spin::new(SpinPolicy::For(Duration::from_secs(3600)));
        assert_eq!(long.window(), Duration::from_nanos(u64::from(u32::MAX - 1)));
    }
}
