//! A buffer for the core's big arrays (the book's order arena, the slot tables that index
//! orders) that the kernel may back with 2 MB pages and that grows without copying.
//!
//! Why huge pages: a deep book's commands each touch a few random orders. At a million resting
//! orders the slots and the index span about 65 MB, 16,000 pages of 4 KB, while the TLB maps a few
//! thousand: nearly every touch paid a page walk before its cache miss. A buffer of 2 MB or more
//! is mapped from the kernel on a 2 MB boundary and advised `MADV_HUGEPAGE` (the kernel's
//! transparent huge pages in `madvise` mode, Debian's default), so 32 such pages cover it. The
//! advice is a hint: if the kernel declines, the buffer is an ordinary one, and behaviour never
//! depends on it.
//!
//! Why growing in place: the arena is indexed on every dependent step of a command (id → slot →
//! its neighbours), so it must be one flat array (an arena in pages cost a second dependent load
//! on each step: 10 % of a shallow book's time). A flat `Vec` copies everything when it doubles
//! (64 MB while the sequencer waited, at a million orders) and holds up to half its capacity
//! unused. A mapped buffer instead grows with `mremap`, which moves page-table entries, not
//! bytes, so it can grow in small steps and stay close to its contents.

use std::alloc::{self, Layout};
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A huge page on x86-64 and aarch64 with 4 KB base pages.
const HUGE_PAGE: usize = 2 << 20;
/// The kernel's base page: mappings are whole pages.
const BASE_PAGE: usize = 4096;

/// Bytes of every buffer mapped from the kernel, now: the global allocator never sees them, so
/// memory figures (the benches' counting allocator) add this.
static MAPPED: AtomicUsize = AtomicUsize::new(0);

/// Asks the cache for the line holding `at` and the next one (a 48-byte order slot may straddle
/// two): a hint for look-ahead over a batch of commands, which never faults and changes nothing.
#[inline(always)]
pub(crate) fn prefetch<T>(at: &T) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let first = (at as *const T).cast::<i8>();
        let last = first.wrapping_add(size_of::<T>() - 1);
        // SAFETY: a prefetch reads nothing the program sees and never faults; `at` is a live
        // reference anyway.
        unsafe {
            _mm_prefetch(first, _MM_HINT_T0);
            _mm_prefetch(last, _MM_HINT_T0);
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = at;
}

/// The bytes the core's big buffers hold in mappings of their own, outside the global allocator.
pub fn mapped_bytes() -> usize {
    MAPPED.load(Ordering::Relaxed)
}

/// `len` copies of a `Copy` value in one allocation: from the global allocator below 2 MB,
/// mapped from the kernel (and grown in place) from 2 MB up.
pub(crate) struct HugeBuf<T: Copy> {
    ptr: NonNull<T>,
    len: usize,
}

// SAFETY: a HugeBuf owns its elements like a Box<[T]> does.
unsafe impl<T: Copy + Send> Send for HugeBuf<T> {}
// SAFETY: shared access only reads, as for a Box<[T]>.
unsafe impl<T: Copy + Sync> Sync for HugeBuf<T> {}

impl<T: Copy> HugeBuf<T> {
    /// `len` copies of `fill`.
    pub fn new(len: usize, fill: T) -> HugeBuf<T> {
        let buf = HugeBuf::<T>::uninit(len);
        for i in 0..len {
            // SAFETY: i < len, inside the allocation; writing does not read the old bytes.
            unsafe { buf.ptr.as_ptr().add(i).write(fill) };
        }
        buf
    }

    /// The first `len` elements are copies of `prefix`, the rest of `fill`.
    pub fn grown_from(prefix: &[T], len: usize, fill: T) -> HugeBuf<T> {
        assert!(prefix.len() <= len);
        let buf = HugeBuf::<T>::uninit(len);
        for i in 0..len {
            let value = if i < prefix.len() { prefix[i] } else { fill };
            // SAFETY: i < len, inside the allocation.
            unsafe { buf.ptr.as_ptr().add(i).write(value) };
        }
        buf
    }

    /// Grows to `len` elements, the new ones copies of `fill`. A mapped buffer grows in place
    /// (its pages are remapped, never copied); a small one is copied, as a `Vec` would be.
    pub fn grow(&mut self, len: usize, fill: T) {
        assert!(len >= self.len);
        let (old_bytes, new_bytes) = (HugeBuf::<T>::bytes(self.len), HugeBuf::<T>::bytes(len));
        if !mapped(old_bytes) {
            *self = HugeBuf::grown_from(self, len, fill);
            return;
        }
        let raw = remap(self.ptr.as_ptr().cast(), old_bytes, new_bytes);
        self.ptr = NonNull::new(raw.cast::<T>()).expect("mremap returns a mapping");
        for i in self.len..len {
            // SAFETY: i < len, inside the grown mapping.
            unsafe { self.ptr.as_ptr().add(i).write(fill) };
        }
        self.len = len;
    }

    /// Whether growing is cheap (a remapping, no copy): callers then grow in small steps.
    pub fn grows_in_place(&self) -> bool {
        mapped(HugeBuf::<T>::bytes(self.len))
    }

    fn bytes(len: usize) -> usize {
        len.checked_mul(size_of::<T>()).expect("book buffer size overflows").max(1)
    }

    fn layout(bytes: usize) -> Layout {
        Layout::from_size_align(bytes, align_of::<T>()).expect("book buffer layout")
    }

    /// An allocation for `len` elements whose contents are not yet written: every caller writes
    /// all of them before the buffer is read.
    fn uninit(len: usize) -> HugeBuf<T> {
        assert!(size_of::<T>() > 0 && len > 0);
        assert!(align_of::<T>() <= BASE_PAGE);
        let bytes = HugeBuf::<T>::bytes(len);
        let raw = if mapped(bytes) {
            map(bytes)
        } else {
            let layout = HugeBuf::<T>::layout(bytes);
            // SAFETY: the layout has a non-zero size.
            let raw = unsafe { alloc::alloc(layout) };
            if raw.is_null() {
                alloc::handle_alloc_error(layout);
            }
            raw
        };
        HugeBuf { ptr: NonNull::new(raw.cast::<T>()).expect("non-null buffer"), len }
    }

    /// The bytes this buffer holds (a mapping counts its whole pages: see [`mapping_len`]).
    pub fn heap_bytes(&self) -> usize {
        let bytes = HugeBuf::<T>::bytes(self.len);
        if mapped(bytes) {
            mapping_len(bytes)
        } else {
            bytes
        }
    }
}

/// Buffers of this many bytes and more are mapped from the kernel. Unit tests map from 64 KB,
/// so that the books and tables of a few thousand orders they build grow by remapping too.
const MAPPED_MIN: usize = if cfg!(test) { 64 << 10 } else { HUGE_PAGE };

/// Whether a buffer of `bytes` is mapped from the kernel rather than the global allocator.
fn mapped(bytes: usize) -> bool {
    bytes >= MAPPED_MIN
}

/// Fails loudly: the core cannot go on without the memory its state needs.
fn mapping_failed(what: &str, bytes: usize) -> ! {
    panic!("{what} of {bytes} bytes failed: {}", std::io::Error::last_os_error())
}

/// From this many bytes on, a mapping ends on a huge-page boundary (see [`mapping_len`]).
const WHOLE_HUGE_PAGES_MIN: usize = 8 << 20;

/// The length of the mapping that holds `bytes`. The kernel backs a 2 MB range with a huge page
/// only if the mapping covers all of it when the range is first touched; a mapping that ended
/// inside it (a buffer grown in steps that are not whole huge pages, each step's new elements
/// written at once) got 4 KB pages there, and kept them: at a million orders, nearly all of the
/// arena. So from [`WHOLE_HUGE_PAGES_MIN`] on a mapping is whole huge pages, and a buffer's last
/// huge page is whole from its first touch: it holds up to 2 MB that the buffer does not use
/// yet, which its next growths fill without a remapping. Below that, where 2 MB would be a
/// quarter or more of the buffer (and its pages fit the TLB's reach), whole base pages.
fn mapping_len(bytes: usize) -> usize {
    if bytes >= WHOLE_HUGE_PAGES_MIN {
        bytes.next_multiple_of(HUGE_PAGE)
    } else {
        bytes.next_multiple_of(BASE_PAGE)
    }
}

/// A fresh read-write mapping of `bytes` (rounded up by [`mapping_len`]) on a 2 MB boundary, advised
/// to use huge pages.
fn map(bytes: usize) -> *mut u8 {
    let len = mapping_len(bytes);
    let start = reserve(len, libc::PROT_READ | libc::PROT_WRITE);
    // SAFETY: advice on our own fresh mapping of exactly `len` bytes; a refusal changes nothing.
    unsafe { libc::madvise(start.cast(), len, libc::MADV_HUGEPAGE) };
    MAPPED.fetch_add(len, Ordering::Relaxed);
    start
}

/// An anonymous mapping of `len` bytes (a multiple of the base page) starting on a 2 MB
/// boundary: maps 2 MB more and unmaps the slack either side.
fn reserve(len: usize, prot: libc::c_int) -> *mut u8 {
    let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS;
    // SAFETY: a new anonymous mapping; it overlaps nothing of ours.
    let raw = unsafe { libc::mmap(std::ptr::null_mut(), len + HUGE_PAGE, prot, flags, -1, 0) };
    if raw == libc::MAP_FAILED {
        mapping_failed("mmap", len + HUGE_PAGE);
    }
    let raw = raw.cast::<u8>();
    let head = (raw as usize).next_multiple_of(HUGE_PAGE) - raw as usize;
    let tail = HUGE_PAGE - head;
    // SAFETY: both ranges lie inside the mapping just made and outside the part kept.
    unsafe {
        if head > 0 {
            libc::munmap(raw.cast(), head);
        }
        if tail > 0 {
            libc::munmap(raw.add(head + len).cast(), tail);
        }
        raw.add(head)
    }
}

/// Grows the mapping at `old` from `old_bytes` to `new_bytes`: in place when the addresses after
/// it are free, else moved (page tables, not bytes) onto a fresh 2 MB-aligned range.
fn remap(old: *mut u8, old_bytes: usize, new_bytes: usize) -> *mut u8 {
    let (old_len, new_len) = (mapping_len(old_bytes), mapping_len(new_bytes));
    if new_len == old_len {
        return old;
    }
    // SAFETY: `old` is our mapping of `old_len` bytes; without MREMAP_MAYMOVE it stays put or fails.
    let grown = unsafe { libc::mremap(old.cast(), old_len, new_len, 0) };
    let start = if grown != libc::MAP_FAILED {
        grown.cast::<u8>()
    } else {
        let target = reserve(new_len, libc::PROT_NONE);
        let flags = libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED;
        // SAFETY: moves our mapping onto `target`, a range we reserved for it (MREMAP_FIXED
        // replaces the reservation); the old range is released by the move.
        let moved = unsafe { libc::mremap(old.cast(), old_len, new_len, flags, target) };
        if moved == libc::MAP_FAILED {
            mapping_failed("mremap", new_len);
        }
        moved.cast::<u8>()
    };
    // SAFETY: advice on our mapping of exactly `new_len` bytes.
    unsafe { libc::madvise(start.cast(), new_len, libc::MADV_HUGEPAGE) };
    MAPPED.fetch_add(new_len - old_len, Ordering::Relaxed);
    start
}

impl<T: Copy> Deref for HugeBuf<T> {
    type Target = [T];
    #[inline]
    fn deref(&self) -> &[T] {
        // SAFETY: `len` initialised elements, owned by self.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: Copy> DerefMut for HugeBuf<T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: `len` initialised elements, owned by self, borrowed mutably once.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: Copy> Clone for HugeBuf<T> {
    fn clone(&self) -> HugeBuf<T> {
        HugeBuf::grown_from(self, self.len, self[0])
    }
}

impl<T: Copy> Drop for HugeBuf<T> {
    fn drop(&mut self) {
        let bytes = HugeBuf::<T>::bytes(self.len);
        if mapped(bytes) {
            let len = mapping_len(bytes);
            // SAFETY: our mapping of exactly `len` bytes (made by `map` or grown by `remap`);
            // T is Copy, so nothing to drop.
            unsafe { libc::munmap(self.ptr.as_ptr().cast(), len) };
            MAPPED.fetch_sub(len, Ordering::Relaxed);
        } else {
            // SAFETY: allocated in `uninit` with this very layout; T is Copy, so nothing to drop.
            unsafe { alloc::dealloc(self.ptr.as_ptr().cast(), HugeBuf::<T>::layout(bytes)) };
        }
    }
}

impl<T: Copy + std::fmt::Debug> std::fmt::Debug for HugeBuf<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HugeBuf({} × {})", self.len, std::any::type_name::<T>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_huge_buffer_holds_its_values_and_a_copy_grows_from_it() {
        let mut small = HugeBuf::new(10, 7u64);
        small[3] = 4;
        assert_eq!(small.iter().sum::<u64>(), 9 * 7 + 4);
        let big = HugeBuf::grown_from(&small, 300_000, 1u64);
        assert_eq!(big.len(), 300_000);
        assert_eq!(big.as_ptr() as usize % HUGE_PAGE, 0, "2.4 MB is placed on a huge-page boundary");
        assert_eq!(&big[..10], &small[..]);
        assert_eq!(big[10..].iter().sum::<u64>(), 300_000 - 10);
        let copy = big.clone();
        assert_eq!(&copy[..], &big[..]);
        assert_eq!(copy.heap_bytes(), 2_400_256, "a small mapping is whole 4 KB pages");
    }

    #[test]
    fn a_mapped_buffer_grows_in_place_or_moved_and_keeps_every_value() {
        let mut buf = HugeBuf::new(300_000, 0u64);
        let mut model = vec![0u64; 300_000];
        let mut moves = 0;
        for step in 0..12u64 {
            for (i, value) in model.iter_mut().enumerate().skip(step as usize).step_by(997) {
                *value = step * 1_000_000 + i as u64;
                buf[i] = *value;
            }
            // Every other step, occupy the page right after the buffer, so that it cannot grow in
            // place and must be moved.
            let end = buf.heap_bytes() + buf.as_ptr() as usize;
            let blocker = if step % 2 == 1 {
                let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE;
                // SAFETY: a new page at a free address (NOREPLACE fails rather than overlap).
                let page = unsafe { libc::mmap(end as *mut _, BASE_PAGE, libc::PROT_NONE, flags, -1, 0) };
                assert_eq!(page as usize, end, "the page after the buffer is free");
                Some(page)
            } else {
                None
            };
            let before = buf.as_ptr();
            // At least a huge page more: a growth inside the mapping's last huge page remaps
            // nothing (checked after the loop).
            let len = buf.len() + buf.len() / 8 + HUGE_PAGE / 8;
            buf.grow(len, step);
            model.resize(len, step);
            moves += usize::from(buf.as_ptr() != before);
            // Unblocked, it may still move: another mapping may have been placed after it.
            assert!(blocker.is_none() || buf.as_ptr() != before, "a blocked buffer moved, step {step}");
            assert_eq!(&buf[..], &model[..], "step {step}");
            assert_eq!(buf.as_ptr() as usize % HUGE_PAGE, 0, "still on a huge-page boundary");
            let whole = if len * 8 >= WHOLE_HUGE_PAGES_MIN { HUGE_PAGE } else { BASE_PAGE };
            assert_eq!(buf.heap_bytes(), (len * 8).next_multiple_of(whole));
            if let Some(page) = blocker {
                // SAFETY: the page mapped above.
                unsafe { libc::munmap(page, BASE_PAGE) };
            }
        }
        assert!(moves >= 6, "{moves} moves");
        let (before, room) = (buf.as_ptr(), buf.heap_bytes() / 8 - buf.len());
        assert!(
            buf.heap_bytes() >= WHOLE_HUGE_PAGES_MIN && room > 0,
            "a big mapping ends on a huge page, past the buffer"
        );
        let len = buf.len() + room;
        buf.grow(len, 99);
        model.resize(len, 99);
        assert_eq!(buf.as_ptr(), before, "a growth inside the last huge page stays put");
        assert_eq!(&buf[..], &model[..]);
        let small = HugeBuf::new(10, 3u32);
        let mut grown = small.clone();
        grown.grow(20, 4);
        assert_eq!(&grown[..], &[[3; 10], [4; 10]].concat()[..]);
    }
}
