//! A histogram over microsecond bounds that one thread records into while any other reads it:
//! the journal's `fdatasync` times here, the gateway's engine latency and reply stages there.
//! Relaxed atomics: a reader may see a record's count before its bucket, which a scrape shrugs
//! off; no lock is ever taken on the recording side.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Per-bucket counts over `bounds` (µs; a value goes to the first bound it does not exceed, and
/// past the last only into `count` and `sum`), with the count and the sum in µs.
#[derive(Debug)]
pub struct Histogram<const N: usize> {
    bounds: &'static [u64; N],
    buckets: [AtomicU64; N],
    count: AtomicU64,
    sum_us: AtomicU64,
}

/// What a histogram held when read: per-bucket counts (not cumulative), the count, the sum in µs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HistogramRead<'a, const N: usize> {
    pub bounds: &'a [u64; N],
    pub buckets: [u64; N],
    pub count: u64,
    pub sum_us: u64,
}

impl<const N: usize> Histogram<N> {
    pub fn new(bounds: &'static [u64; N]) -> Histogram<N> {
        Histogram {
            bounds,
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            count: AtomicU64::new(0),
            sum_us: AtomicU64::new(0),
        }
    }

    pub fn record(&self, micros: u64) {
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(micros, Ordering::Relaxed);
        if let Some(i) = self.bounds.iter().position(|b| micros <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn record_duration(&self, took: Duration) {
        self.record(u64::try_from(took.as_micros()).unwrap_or(u64::MAX));
    }

    pub fn read(&self) -> HistogramRead<'_, N> {
        HistogramRead {
            bounds: self.bounds,
            buckets: std::array::from_fn(|i| self.buckets[i].load(Ordering::Relaxed)),
            count: self.count.load(Ordering::Relaxed),
            sum_us: self.sum_us.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_counts_in_the_first_bucket_it_fits_and_always_in_count_and_sum() {
        static BOUNDS: [u64; 3] = [10, 100, 1_000];
        let histogram = Histogram::new(&BOUNDS);
        for micros in [0, 10, 11, 1_000, 5_000] {
            histogram.record(micros);
        }
        histogram.record_duration(Duration::from_micros(99));
        let read = histogram.read();
        assert_eq!(read.buckets, [2, 2, 1]);
        assert_eq!((read.count, read.sum_us), (6, 6_120));
    }
}
