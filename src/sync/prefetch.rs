//! A hint to the processor that a cache line is about to be written ([`for_write`]), for the one place
//! where a publisher reads and then at once writes a line that another core wrote last: the count of
//! a recycled message ([`crate::message::recycle`]).
//!
//! # Why
//! Reusing a message reads its reference count (is the publisher's the only handle left?) and then
//! raises it (one handle kept, one sent). Across threads the receiver that let the message go wrote
//! that count last, so the read brings the line in shared, and the locked increment then has to ask
//! the other core for it again: two transfers of one line, each a round trip between cores, where one
//! request for ownership would do. `perf annotate` put 87% of `RecentMessages::make`'s samples on
//! that increment, and `make` was 13–19% of all samples in the cross-thread rows. `prefetchw` asks for
//! the line in the exclusive state before the read, so the read waits for one transfer and the
//! increment finds the line at hand. Single-threaded the line is already in this core's cache and the
//! hint costs an instruction.
//!
//! # Safety
//! This is the crate's only `unsafe` (the rest of the crate denies it): one `prefetchw` in inline
//! assembly. A prefetch never faults, whatever the address, changes no register but the one holding
//! the address (read only), no flag, and no memory a program can observe; it only moves a cache line.
//! It runs only where the processor reports the instruction (CPUID leaf `8000_0001h`, ECX bit 8,
//! `PRFCHW`), read once; elsewhere, and under loom and Miri, [`for_write`] does nothing. Stable Rust
//! has no safe form of it yet: `core::hint::prefetch_write` is unstable, and `_mm_prefetch` with
//! `_MM_HINT_ET0` compiles to a prefetch for reading unless the whole build enables `prfchw`.

/// Hints that the cache line holding `at` will be written soon. Does nothing where the processor has
/// no `prefetchw` (see the [module docs](self)).
#[inline]
pub(crate) fn for_write<T>(at: *const T) {
    imp::for_write(at.cast());
}

#[cfg(all(target_arch = "x86_64", not(switchyard_loom), not(miri)))]
#[allow(unsafe_code)]
mod imp {
    use std::sync::OnceLock;

    /// Whether the processor has `prefetchw`: CPUID leaf `8000_0001h`, ECX bit 8.
    fn supported() -> bool {
        static PRFCHW: OnceLock<bool> = OnceLock::new();
        *PRFCHW.get_or_init(|| {
            let highest = std::arch::x86_64::__cpuid(0x8000_0000).eax;
            highest >= 0x8000_0001 && (std::arch::x86_64::__cpuid(0x8000_0001).ecx >> 8) & 1 == 1
        })
    }

    #[inline]
    pub(super) fn for_write(at: *const u8) {
        if supported() {
            // SAFETY: `prefetchw` is supported (checked above), never faults whatever `at` points
            // to, reads `at` only as an address, and changes no flag, no other register and no
            // memory a program can observe: it only asks for the line in the exclusive state.
            unsafe {
                std::arch::asm!(
                    "prefetchw [{at}]",
                    at = in(reg) at,
                    options(nostack, preserves_flags, readonly)
                );
            }
        }
    }
}

#[cfg(not(all(target_arch = "x86_64", not(switchyard_loom), not(miri))))]
mod imp {
    #[inline]
    pub(super) fn for_write(_: *const u8) {}
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_hint_on_any_address_is_harmless() {
        let value = 7u64;
        super::for_write(&value);
        super::for_write(std::ptr::null::<u64>());
        super::for_write(usize::MAX as *const u64);
        assert_eq!(value, 7);
    }
}
