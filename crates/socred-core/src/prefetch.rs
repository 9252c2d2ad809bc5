//! Hints that start loading memory the fold will read soon, without
//! waiting for it.
//!
//! The one place in socred that holds `unsafe` code, and why: in a batch of
//! millions, records arrive in no useful order, so folding them subject by
//! subject reads each record, its fields and its document from memory that
//! is not in any cache. Reading ahead with ordinary loads
//! stalls the processor until they arrive; a prefetch instruction only asks
//! for the line and goes on. `core::arch::x86_64::_mm_prefetch` is
//! `unsafe` to call only because it is declared for the `sse` target
//! feature, which every x86-64 processor has; it never dereferences its
//! pointer, so no pointer, dangling or not, can make it misbehave. Measured
//! in BENCHMARKS.md ("Prefetching the scattered records"); the stable
//! standard library has no safe form of it yet (`core::hint::prefetch_read`
//! is unstable).
#![allow(unsafe_code)]

/// Asks for the cache line that holds `pointer`. A hint only: it reads
/// nothing the program sees, cannot fault, and does nothing on targets
/// other than x86-64.
#[inline(always)]
pub(crate) fn prefetch<T: ?Sized>(pointer: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `_mm_prefetch` needs the `sse` target feature, part of the
    // x86-64 baseline, so it is present on every processor this code runs
    // on; and it does not dereference its pointer (any address is allowed).
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(pointer.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = pointer;
}

/// The size of a cache line on the processors socred runs on.
const LINE: usize = 64;

/// Asks for every cache line of `value` itself (not what it points to):
/// a value of 120 bytes may lie across three lines.
#[inline(always)]
pub(crate) fn prefetch_value<T>(value: *const T) {
    let address = value.addr();
    let first = value.cast::<u8>().wrapping_sub(address % LINE);
    for line in 0..lines_spanned(address, std::mem::size_of::<T>()) {
        prefetch(first.wrapping_add(line * LINE));
    }
}

/// How many cache lines `size` bytes from `address` touch (one at least;
/// an address at the top of memory counts up to its end).
fn lines_spanned(address: usize, size: usize) -> usize {
    let last = address.saturating_add(size.max(1) - 1);
    last / LINE - address / LINE + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hint_never_reads_so_no_address_can_fault() {
        // A load from any of these would crash the test.
        prefetch(std::ptr::null::<u8>());
        prefetch(std::ptr::without_provenance::<u64>(usize::MAX - 7));
        let freed = {
            let buffer = vec![[0u8; 256]; 4096];
            buffer.as_ptr()
        };
        prefetch_value(freed);
        prefetch_value(std::ptr::without_provenance::<[u8; 120]>(usize::MAX - 60));
    }

    #[test]
    fn a_value_is_asked_for_line_by_line() {
        assert_eq!(lines_spanned(0, 120), 2);
        assert_eq!(lines_spanned(8, 120), 2);
        assert_eq!(lines_spanned(9, 120), 3);
        assert_eq!(lines_spanned(63, 1), 1);
        assert_eq!(lines_spanned(63, 2), 2);
        assert_eq!(lines_spanned(64, 0), 1);
        assert_eq!(lines_spanned(usize::MAX - 60, 120), 1);
    }
}
