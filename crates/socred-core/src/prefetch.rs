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

/// Asks for every cache line of `value` itself (not what it points to).
#[inline(always)]
pub(crate) fn prefetch_value<T>(value: *const T) {
    let bytes = value.cast::<u8>();
    let mut offset = 0;
    while offset < std::mem::size_of::<T>() {
        prefetch(bytes.wrapping_add(offset));
        offset += 64;
    }
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
    }
}
