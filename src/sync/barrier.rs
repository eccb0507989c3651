//! An asymmetric fence for the parking handshake of [`crate::sync::waiters`]: the side that runs on every
//! message pays a compiler fence, the side that is about to park pays a system call.
//!
//! # Why
//! The handshake needs a `SeqCst` fence on each side (a store-buffering pattern, see
//! [`crate::sync::waiters`]). On x86 a fence drains the store buffer, and on the data path the buffer
//! holds the store that just published a queue slot, whose cache line the other core has: with a
//! fence there, every push and every `Block` receive waits for that line's transfer, about a fifth of
//! the publisher's time in the 1→1 hop.
//!
//! # How
//! Linux's `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)` runs a full memory barrier on every CPU
//! currently running a thread of this process (an inter-processor interrupt), and a thread that is
//! not running gets one from its next context switch. So the frequent side ([`light`]) needs only to
//! keep the compiler from reordering its accesses, and the rare side ([`heavy`]) makes the barrier
//! happen in every other thread at once. The handshake's argument still holds: for each notifier,
//! the barrier the waiter forces falls either before the notifier reads the waiter count (which then
//! sees the waiter's announcement, made before the system call) or after its progress store (which
//! the waiter's re-check, after the call returns, then sees). This is the technique of liburcu's
//! `urcu-memb` flavour and folly's `asymmetricHeavyBarrier`.
//!
//! Where the system call is missing or refused (another OS, an old kernel, a seccomp filter), and
//! under loom (whose models cannot express a barrier in another thread), both sides are a `SeqCst`
//! fence. The mode is decided once, when the first broker is made ([`prepare`]) or by
//! the first call of either side, so both sides always agree on it.
//!
//! # What it costs
//! [`heavy`] is a system call with interrupts to the other cores running this process's threads
//! (about a microsecond here), paid by a thread that is about to park anyway: only after a receiver's
//! 20 µs of polling found nothing, or a `Block` publisher's back-off found no room. Async waiters,
//! which register every time they find nothing and must not interrupt a runtime's worker threads per
//! wait, switch their event to the symmetric fence once instead ([`crate::sync::waiters`]).

#[cfg(all(target_os = "linux", not(switchyard_loom)))]
mod imp {
    use std::sync::OnceLock;
    use std::sync::atomic::{Ordering, compiler_fence, fence};

    use rustix::thread::{MembarrierCommand, membarrier};

    /// Whether this process is registered for private expedited barriers: decided by the first
    /// caller of either side (one system call), then one load.
    static REGISTERED: OnceLock<bool> = OnceLock::new();

    #[inline]
    fn registered() -> bool {
        *REGISTERED.get_or_init(|| membarrier(MembarrierCommand::RegisterPrivateExpedited).is_ok())
    }

    pub(crate) fn prepare() {
        registered();
    }

    #[inline]
    pub(crate) fn light() {
        if registered() {
            compiler_fence(Ordering::SeqCst);
        } else {
            fence(Ordering::SeqCst);
        }
    }

    pub(crate) fn heavy() {
        fence(Ordering::SeqCst);
        if registered() {
            // Registered, so the kernel cannot refuse; if it ever did, a notifier could miss this
            // waiter, so it is not a failure to carry on from.
            membarrier(MembarrierCommand::PrivateExpedited)
                .expect("membarrier failed after the process registered for it");
        }
    }
}

#[cfg(not(all(target_os = "linux", not(switchyard_loom))))]
mod imp {
    use crate::sync::{Ordering, fence};

    pub(crate) fn prepare() {}

    #[inline]
    pub(crate) fn light() {
        fence(Ordering::SeqCst);
    }

    pub(crate) fn heavy() {
        fence(Ordering::SeqCst);
    }
}

/// Decides the mode now (registering for `membarrier` where there is one), so that no message
/// waits for it: registering can take milliseconds in a process whose threads already run.
pub(crate) fn prepare() {
    imp::prepare();
}

/// The frequent side's half: after making progress visible, before reading whether anyone waits.
#[inline]
pub(crate) fn light() {
    imp::light();
}

/// The rare side's half: after announcing itself, before re-checking for progress. Slow (a system
/// call where available); see the [module docs](self).
pub(crate) fn heavy() {
    imp::heavy();
}
