//! The clock of ack deadlines: coarse, because an acknowledged receive reads it once per message and
//! deadlines are milliseconds to minutes.
//!
//! On Linux it is `CLOCK_MONOTONIC_COARSE` (a read of the kernel's last tick through the vDSO, a few
//! nanoseconds, never a system call; resolution one tick, 1 to 4 ms). A profile of one-ack-per-message
//! receiving spent 45% of its time in `Instant::now` (`CLOCK_MONOTONIC`, which on virtual machines
//! often reads a slow clock source). Elsewhere it is `Instant` against a process-wide base.

use std::time::{Duration, Instant};

/// Nanoseconds on the coarse monotonic clock (an arbitrary origin, the same for the whole process).
#[inline]
pub(crate) fn now() -> u64 {
    imp::now()
}

/// How far apart two readings of [`now`] can be for the same instant: the clock's resolution.
pub(crate) fn resolution() -> Duration {
    imp::resolution()
}

/// The `Instant` at which [`now`] will read at least `at`: for a thread that parks until then.
pub(crate) fn instant_at(at: u64) -> Instant {
    let ahead = Duration::from_nanos(at.saturating_sub(now()));
    // One resolution later, so a waiter woken then finds the coarse clock past `at`.
    Instant::now() + ahead + resolution()
}

#[cfg(all(target_os = "linux", not(switchyard_loom)))]
mod imp {
    use std::sync::OnceLock;
    use std::time::Duration;

    use rustix::time::{ClockId, clock_getres, clock_gettime};

    #[inline]
    pub(super) fn now() -> u64 {
        nanos(clock_gettime(ClockId::MonotonicCoarse))
    }

    pub(super) fn resolution() -> Duration {
        static RESOLUTION: OnceLock<Duration> = OnceLock::new();
        *RESOLUTION
            .get_or_init(|| Duration::from_nanos(nanos(clock_getres(ClockId::MonotonicCoarse))))
    }

    fn nanos(t: rustix::time::Timespec) -> u64 {
        u64::try_from(t.tv_sec)
            .unwrap_or(0)
            .saturating_mul(1_000_000_000)
            .saturating_add(u64::try_from(t.tv_nsec).unwrap_or(0))
    }
}

#[cfg(not(all(target_os = "linux", not(switchyard_loom))))]
mod imp {
    use std::sync::OnceLock;
    use std::time::{Duration, Instant};

    fn base() -> Instant {
        static BASE: OnceLock<Instant> = OnceLock::new();
        *BASE.get_or_init(Instant::now)
    }

    #[inline]
    pub(super) fn now() -> u64 {
        u64::try_from(base().elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    pub(super) fn resolution() -> Duration {
        Duration::ZERO
    }
}
