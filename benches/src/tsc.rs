//! Per-message timing for the latency runs: the CPU's time-stamp counter, fenced, calibrated
//! against the OS clock, with the cost of an empty read pair measured so that it can be
//! subtracted.

use std::time::{Duration, Instant};

pub struct TscClock {
    pub ticks_per_ns: f64,
}

impl TscClock {
    /// Measures the TSC rate against the OS monotonic clock over a busy 200 ms.
    pub fn calibrate() -> TscClock {
        let (wall, tsc) = (Instant::now(), read_tsc());
        while wall.elapsed() < Duration::from_millis(200) {
            std::hint::spin_loop();
        }
        let (elapsed, ticks) = (wall.elapsed(), read_tsc() - tsc);
        TscClock { ticks_per_ns: ticks as f64 / elapsed.as_nanos() as f64 }
    }

    /// The median cost, in ticks, of two back-to-back timer reads.
    /// A calibrated clock and the cost of an empty timer pair, both printed, as every latency run
    /// starts.
    pub fn calibrate_and_report() -> (TscClock, u64) {
        let clock = TscClock::calibrate();
        let overhead = clock.pair_overhead();
        println!(
            "timer: TSC at {:.3} GHz, an empty lfence-rdtsc pair costs {:.1} ns (median; subtracted)",
            clock.ticks_per_ns,
            overhead as f64 / clock.ticks_per_ns
        );
        (clock, overhead)
    }

    pub fn pair_overhead(&self) -> u64 {
        let mut samples: Vec<u64> = (0..1_000_000)
            .map(|_| {
                let start = read_tsc();
                let end = read_tsc();
                end - start
            })
            .collect();
        samples.sort_unstable();
        samples[samples.len() / 2]
    }

    /// `ticks` measured around one message, less the timer's own `overhead`, in whole
    /// nanoseconds (at least 1, the histograms' lowest value).
    pub fn ns(&self, ticks: u64, overhead: u64) -> u64 {
        ((ticks.saturating_sub(overhead) as f64 / self.ticks_per_ns).round() as u64).max(1)
    }
}

/// The time-stamp counter, fenced so that the measured work cannot drift across the read.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
#[allow(unused_unsafe)]
pub fn read_tsc() -> u64 {
    use std::arch::x86_64::{_mm_lfence, _rdtsc};
    // SAFETY: lfence and rdtsc exist on every x86_64 CPU and touch no memory.
    unsafe {
        _mm_lfence();
        let t = _rdtsc();
        _mm_lfence();
        t
    }
}

/// Elsewhere: nanoseconds from the monotonic clock (calibration then finds 1 tick per ns).
#[cfg(not(target_arch = "x86_64"))]
pub fn read_tsc() -> u64 {
    use std::sync::OnceLock;
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64
}
