//! A fixed-size buffer for the core's big arrays (the book's arena pages, the slot tables that
//! index orders) that the kernel may back with 2 MB pages.
//!
//! Why: a deep book's commands each touch a few random orders. At a million resting orders the
//! slots and the index span about 65 MB, 16,000 pages of 4 KB, while the TLB maps a few
//! thousand: nearly every touch paid a page walk before its cache miss. A buffer of 2 MB or more
//! is allocated on a 2 MB boundary and advised `MADV_HUGEPAGE` (the kernel's transparent huge
//! pages in `madvise` mode, Debian's default), so 32 such pages cover it. The advice is a hint:
//! if the kernel declines, the buffer is an ordinary one, and behaviour never depends on it.

use std::alloc::{self, Layout};
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;

/// A huge page on x86-64 and aarch64 with 4 KB base pages.
const HUGE_PAGE: usize = 2 << 20;

/// `len` copies of a `Copy` value in one allocation that never grows.
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

    fn layout(len: usize) -> Layout {
        let bytes = len.checked_mul(size_of::<T>()).expect("book buffer size overflows");
        let align = if bytes >= HUGE_PAGE { HUGE_PAGE } else { align_of::<T>() };
        Layout::from_size_align(bytes.max(1), align).expect("book buffer layout")
    }

    /// An allocation for `len` elements whose contents are not yet written: every caller writes
    /// all of them before the buffer is read.
    fn uninit(len: usize) -> HugeBuf<T> {
        assert!(size_of::<T>() > 0 && len > 0);
        let layout = HugeBuf::<T>::layout(len);
        // SAFETY: the layout has a non-zero size.
        let raw = unsafe { alloc::alloc(layout) };
        let Some(ptr) = NonNull::new(raw.cast::<T>()) else { alloc::handle_alloc_error(layout) };
        if layout.align() == HUGE_PAGE {
            // SAFETY: advice on memory we own, of its exact length; a failure changes nothing.
            unsafe { libc::madvise(raw.cast(), layout.size(), libc::MADV_HUGEPAGE) };
        }
        HugeBuf { ptr, len }
    }

    pub fn heap_bytes(&self) -> usize {
        self.len * size_of::<T>()
    }
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
        // SAFETY: allocated in `uninit` with this very layout; T is Copy, so nothing to drop.
        unsafe { alloc::dealloc(self.ptr.as_ptr().cast(), HugeBuf::<T>::layout(self.len)) };
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
    fn a_huge_buffer_holds_its_values_and_grows_by_copy() {
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
        assert_eq!(copy.heap_bytes(), 2_400_000);
    }
}
