//! The process's allocator: mimalloc, called the way its fast path expects.
//!
//! glibc's allocator was a fifth of a request's instructions; mimalloc's
//! thread-local free lists cut that (docs/benchmarks.md). The `mimalloc`
//! crate, though, hands every request to `mi_malloc_aligned`, even the ones
//! any mimalloc block satisfies. In mimalloc 3 that call takes the fast path
//! only while the size class's current page has a free block in hand; when
//! it has none, the aligned path over-allocates from a larger class instead
//! of refilling the page, and so keeps doing for that size (the
//! `*_aligned_at_generic` and `*_overalloc` rows of a request's profile;
//! purpleprotocol/mimalloc_rust#170, microsoft/mimalloc#314). So alignments
//! up to `MAX_ALIGN` go to `mi_malloc` and its relatives, like the standard
//! library's `System` allocator does with `malloc`; larger ones keep the
//! aligned calls.

use std::{
    alloc::{GlobalAlloc, Layout},
    ffi::c_void,
};

use libmimalloc_sys::{
    mi_free, mi_malloc, mi_malloc_aligned, mi_realloc, mi_realloc_aligned, mi_zalloc,
    mi_zalloc_aligned,
};

/// The alignment of every mimalloc block of at least this size
/// (`MI_MAX_ALIGN_SIZE`): on 64-bit targets small size classes are whole
/// multiples of 16 bytes and pages start 16-aligned. Smaller blocks are
/// word-aligned, which is why a request also needs `align <= size`. Secure
/// mode, whose padding would break this, is not enabled (Cargo.toml).
const MAX_ALIGN: usize = 16;

/// Whether a plain `mi_malloc(size)` block is aligned enough.
fn naturally_aligned(size: usize, align: usize) -> bool {
    align <= MAX_ALIGN && align <= size
}

/// mimalloc as the global allocator (see the module documentation).
pub struct MiMalloc;

// SAFETY: every method forwards to the mimalloc call with the same contract,
// and the plain calls are used only where their blocks meet the layout's
// alignment (`naturally_aligned`); all memory is freed with `mi_free`, which
// takes blocks from either family.
unsafe impl GlobalAlloc for MiMalloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: see the impl.
        unsafe {
            if naturally_aligned(layout.size(), layout.align()) {
                mi_malloc(layout.size()).cast()
            } else {
                mi_malloc_aligned(layout.size(), layout.align()).cast()
            }
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: see the impl.
        unsafe {
            if naturally_aligned(layout.size(), layout.align()) {
                mi_zalloc(layout.size()).cast()
            } else {
                mi_zalloc_aligned(layout.size(), layout.align()).cast()
            }
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: see the impl.
        unsafe { mi_free(ptr.cast::<c_void>()) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: see the impl.
        unsafe {
            if naturally_aligned(new_size, layout.align()) {
                mi_realloc(ptr.cast::<c_void>(), new_size).cast()
            } else {
                mi_realloc_aligned(ptr.cast::<c_void>(), new_size, layout.align()).cast()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every size and alignment, through every method, comes back aligned,
    /// usable, zeroed where asked, and with its contents kept by `realloc`;
    /// blocks stay allocated so that each size class fills whole pages.
    #[test]
    fn blocks_meet_their_layouts_alignment() {
        let allocator = MiMalloc;
        let mut live = Vec::new();
        for align in [1, 2, 4, 8, 16, 32, 64, 128, 4096] {
            for size in (1..=1100).chain([2048, 4096, 10_000, 70_000, 300_000]) {
                let layout = Layout::from_size_align(size, align).unwrap();
                for _ in 0..3 {
                    // SAFETY: non-zero sizes; every block is freed below with its layout.
                    unsafe {
                        let block = allocator.alloc(layout);
                        assert!(!block.is_null());
                        assert_eq!(block as usize % align, 0, "alloc({size}, {align})");
                        block.write_bytes(0xa5, size);
                        live.push((block, layout, 0xa5));

                        let zeroed = allocator.alloc_zeroed(layout);
                        assert_eq!(zeroed as usize % align, 0, "alloc_zeroed({size}, {align})");
                        assert!(
                            std::slice::from_raw_parts(zeroed, size)
                                .iter()
                                .all(|b| *b == 0)
                        );
                        live.push((zeroed, layout, 0));
                    }
                }
            }
        }
        for (block, layout, fill) in &mut live {
            let grown = layout.size() * 3 / 2 + 1;
            // SAFETY: the block is live and was allocated with `layout`.
            unsafe {
                let moved = allocator.realloc(*block, *layout, grown);
                assert_eq!(moved as usize % layout.align(), 0, "realloc to {grown}");
                let kept = std::slice::from_raw_parts(moved, layout.size());
                assert!(kept.iter().all(|b| b == fill), "realloc keeps the contents");
                *block = moved;
                *layout = Layout::from_size_align(grown, layout.align()).unwrap();
            }
        }
        for (block, layout, _) in live {
            // SAFETY: allocated above with this layout and not freed since.
            unsafe { allocator.dealloc(block, layout) };
        }
    }
}
