//! Heap bytes held, counted by a global allocator, for the memory figures of the book benches:
//! the bytes a structure asked for, and the bytes the C allocator's blocks behind them take.
//! The core's big buffers (a deep book's arena and indexes) are mapped from the kernel, outside
//! the allocator: a window adds what they grew by ([`huashi_engine::core::mapped_bytes`]).
//! Counting is off unless a [`Window`] is open, so that the timed runs of an engine that
//! allocates per message do not pay for the counters.
//!
//! A binary installs it with
//! `#[global_allocator] static GLOBAL: huashi_benches::heap::CountingAllocator = huashi_benches::heap::CountingAllocator;`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

/// Defers every call to the system allocator and, while a window is open, counts.
pub struct CountingAllocator;

static COUNTING: AtomicBool = AtomicBool::new(false);
/// Bytes asked for (allocated − freed, reallocs by their difference) while counting.
static REQUESTED: AtomicI64 = AtomicI64::new(0);
/// The same in the C allocator's blocks: usable size plus its one-word header per block.
static BLOCKS: AtomicI64 = AtomicI64::new(0);

/// What the C allocator's block for `ptr` takes: glibc keeps one size word before each block.
#[cfg(target_os = "linux")]
fn block_bytes(ptr: *mut u8) -> i64 {
    // SAFETY: `ptr` is a live block of the system allocator (malloc, calloc, realloc or
    // posix_memalign), which is what malloc_usable_size reads.
    let usable = unsafe { libc::malloc_usable_size(ptr.cast()) };
    usable as i64 + std::mem::size_of::<usize>() as i64
}

/// Elsewhere the requested size stands in for the block.
#[cfg(not(target_os = "linux"))]
fn block_bytes(_ptr: *mut u8) -> i64 {
    0
}

fn counted(ptr: *mut u8, size: usize, sign: i64) {
    if !ptr.is_null() && COUNTING.load(Ordering::Relaxed) {
        REQUESTED.fetch_add(sign * size as i64, Ordering::Relaxed);
        BLOCKS.fetch_add(sign * block_bytes(ptr), Ordering::Relaxed);
    }
}

// SAFETY: every call is the system allocator's; the counters never touch the memory handed out.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = System.alloc(layout);
        counted(ptr, layout.size(), 1);
        ptr
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let ptr = System.alloc_zeroed(layout);
        counted(ptr, layout.size(), 1);
        ptr
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        counted(ptr, layout.size(), -1);
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        counted(ptr, layout.size(), -1);
        let new = System.realloc(ptr, layout, new_size);
        if new.is_null() {
            // The old block is still there.
            counted(ptr, layout.size(), 1);
        } else {
            counted(new, new_size, 1);
        }
        new
    }
}

/// Heap growth while a window is open.
#[derive(Clone, Copy, Debug, Default)]
pub struct Growth {
    /// Bytes the program asked for.
    pub requested: i64,
    /// Bytes of the C allocator's blocks behind them (0 where unknown).
    pub blocks: i64,
}

impl Growth {
    /// Per item, rounded to the byte.
    pub fn per(&self, items: usize) -> (i64, i64) {
        let n = items.max(1) as f64;
        ((self.requested as f64 / n).round() as i64, (self.blocks as f64 / n).round() as i64)
    }
}

/// Counts from its opening until [`Window::close`]. One at a time: a second window while one is
/// open would stop the first's counting when it closes.
pub struct Window {
    requested: i64,
    blocks: i64,
    mapped: i64,
}

fn mapped() -> i64 {
    huashi_engine::core::mapped_bytes() as i64
}

impl Window {
    pub fn open() -> Window {
        COUNTING.store(true, Ordering::SeqCst);
        Window { requested: REQUESTED.load(Ordering::SeqCst), blocks: BLOCKS.load(Ordering::SeqCst), mapped: mapped() }
    }

    /// The growth so far; the window stays open.
    pub fn peek(&self) -> Growth {
        let mapped = mapped() - self.mapped;
        Growth {
            requested: REQUESTED.load(Ordering::SeqCst) - self.requested + mapped,
            blocks: BLOCKS.load(Ordering::SeqCst) - self.blocks + mapped,
        }
    }

    /// The growth since the opening. Blocks allocated before the window and freed inside it
    /// count negative, so a window should hold only the building of what it measures.
    pub fn close(self) -> Growth {
        let growth = self.peek();
        COUNTING.store(false, Ordering::SeqCst);
        growth
    }
}
