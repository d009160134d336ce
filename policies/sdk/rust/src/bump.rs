//! The policy's memory allocator: a bump allocator over linear memory.
//!
//! runway runs each decision in a fresh instance, so a policy's heap lives for one call.
//! Rust's default allocator on `wasm32-unknown-unknown` (dlmalloc) grows memory on its first
//! allocation whatever the free space, and `memory.grow` is a system call on the host; a bump
//! allocator hands out the memory the module starts with and grows it only when that is used
//! up. Memory is reused when every allocation has been freed (the end of a call, for an
//! instance that serves several calls) and when the latest allocation is freed or resized.
//!
//! It is installed as the global allocator by the `bump-allocator` feature (on by default);
//! a policy that brings its own `#[global_allocator]` turns the feature off.

use core::alloc::{GlobalAlloc, Layout};
use core::cell::Cell;
use core::ptr;

const WASM_PAGE: usize = 64 * 1024;

/// A bump allocator: `next` is the first free byte, `live` the allocations not yet freed.
pub struct BumpAllocator {
    next: Cell<usize>,
    live: Cell<usize>,
}

// SAFETY: policies run on one thread (`wasm32-unknown-unknown` without the threads proposal
// has no way to start another), so the cells are never touched concurrently.
unsafe impl Sync for BumpAllocator {}

impl BumpAllocator {
    pub const fn new() -> Self {
        BumpAllocator {
            next: Cell::new(0),
            live: Cell::new(0),
        }
    }

    fn heap_start() -> usize {
        unsafe extern "C" {
            // Set by the linker: the first byte after the stack and static data.
            static __heap_base: u8;
        }
        // Only the address of the linker symbol is taken, never its value.
        ptr::addr_of!(__heap_base) as usize
    }

    fn next_free(&self) -> usize {
        match self.next.get() {
            0 => Self::heap_start(),
            next => next,
        }
    }

    /// Makes linear memory at least `end` bytes long; false when the host refuses.
    fn ensure_memory(end: usize) -> bool {
        // Saturates only for a full 4 GiB memory, where every address is in it.
        let size = memory_size().saturating_mul(WASM_PAGE);
        if end <= size {
            return true;
        }
        memory_grow((end - size).div_ceil(WASM_PAGE))
    }
}

impl Default for BumpAllocator {
    fn default() -> Self {
        Self::new()
    }
}

// SAFETY: every block returned lies in linear memory at or above `__heap_base`, is aligned
// as asked and does not overlap a live block: `next` only moves back over blocks that were
// freed (the latest one, or all of them).
unsafe impl GlobalAlloc for BumpAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let align_mask = layout.align() - 1;
        let Some(start) = self
            .next_free()
            .checked_add(align_mask)
            .map(|n| n & !align_mask)
        else {
            return ptr::null_mut();
        };
        let Some(end) = start.checked_add(layout.size()) else {
            return ptr::null_mut();
        };
        if !Self::ensure_memory(end) {
            return ptr::null_mut();
        }
        self.next.set(end);
        self.live.set(self.live.get() + 1);
        start as *mut u8
    }

    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        let live = self.live.get().saturating_sub(1);
        self.live.set(live);
        if live == 0 {
            self.next.set(Self::heap_start());
        } else if block as usize + layout.size() == self.next.get() {
            self.next.set(block as usize);
        }
    }

    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let start = block as usize;
        // The latest block grows or shrinks in place.
        if start + layout.size() == self.next.get() {
            let Some(end) = start.checked_add(new_size) else {
                return ptr::null_mut();
            };
            if !Self::ensure_memory(end) {
                return ptr::null_mut();
            }
            self.next.set(end);
            return block;
        }
        if new_size <= layout.size() {
            return block;
        }
        // SAFETY: the caller guarantees `new_size`, rounded up to the alignment, fits an
        // isize; the alignment is the block's, already valid.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: a non-zero size (it exceeds the old one).
        let moved = unsafe { self.alloc(new_layout) };
        if !moved.is_null() {
            // SAFETY: both blocks are live and distinct; the old one holds `layout.size()`
            // bytes, fewer than the new one.
            unsafe {
                ptr::copy_nonoverlapping(block, moved, layout.size());
                self.dealloc(block, layout);
            }
        }
        moved
    }
}

fn memory_size() -> usize {
    core::arch::wasm32::memory_size(0)
}

fn memory_grow(pages: usize) -> bool {
    core::arch::wasm32::memory_grow(0, pages) != usize::MAX
}
