//! Order-book throughput and per-message latency over the exchange-core mix (design.md,
//! "Targets"; the generator is `huashi_benches`).
//!
//! ```text
//! cargo run --release -p huashi-benches --bin book_mix -- [--messages 3000000] [--runs 5] [--seed N]
//! ```
//!
//! The whole message stream is generated before anything is timed. Throughput: each run replays
//! it into a freshly prefilled book with no timer inside the loop. Latency: one more replay reads
//! the TSC (`lfence; rdtsc; lfence`) around every message, subtracts the measured cost of an
//! empty timer pair, converts with a calibrated TSC frequency and records into an HdrHistogram.
//! This is a closed loop (each message starts when the previous returns), so there is no
//! schedule to fall behind and no coordinated omission to correct.

use hdrhistogram::Histogram;
use huashi_benches::tsc::{read_tsc, TscClock};
use huashi_benches::{generate, Message, Mix, SEED};
use huashi_engine::core::book::TimeInForce;
use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Counts heap allocations, to show that the book allocates nothing in steady state.
struct CountingAllocator;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: defers every call to the system allocator; the counter has no effect on memory.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

struct Options {
    messages: usize,
    runs: usize,
    seed: u64,
}

fn parse_options() -> Options {
    let mut options = Options { messages: 3_000_000, runs: 5, seed: SEED };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().unwrap_or_else(|| usage(&format!("{flag} needs a value")));
        let number = || value.parse::<u64>().unwrap_or_else(|_| usage(&format!("{flag}: not a number")));
        match flag.as_str() {
            "--messages" => options.messages = number() as usize,
            "--runs" => options.runs = number().max(1) as usize,
            "--seed" => options.seed = number(),
            _ => usage(&format!("unknown flag {flag}")),
        }
    }
    options
}

fn usage(problem: &str) -> ! {
    eprintln!("book_mix: {problem}\nusage: book_mix [--messages N] [--runs N] [--seed N]");
    std::process::exit(2)
}

fn main() {
    let options = parse_options();
    let started = Instant::now();
    let mix = generate(options.seed, options.messages);
    let s = &mix.stats;
    let share = |n: usize| 100.0 * n as f64 / options.messages as f64;
    println!(
        "exchange-core mix: {} messages after {} prefill (seed {:#x}), generated in {:.1?}",
        options.messages,
        mix.prefill.len(),
        options.seed,
        started.elapsed()
    );
    println!(
        "  GTC {:.1} %, IOC {:.1} %, cancel {:.1} %, move {:.1} %; {:.1} % of messages trade ({} fills)",
        share(s.gtc),
        share(s.ioc),
        share(s.cancels),
        share(s.moves),
        share(s.trading),
        s.fills
    );
    println!("  on average {:.0} resting orders over {:.0} price levels", s.resting_avg, s.levels_avg);

    let book = mix.prefilled_book();
    println!(
        "  memory after prefill: {} KiB for {} resting orders ({} bytes per order)",
        book.heap_bytes() / 1024,
        book.resting_count(),
        book.heap_bytes() / book.resting_count().max(1)
    );

    let mut hashes = Vec::new();
    let mut rates = Vec::new();
    for run in 1..=options.runs {
        let on_cpu_before = thread_on_cpu();
        let (elapsed, hash, allocations, heap_bytes) = replay_untimed(&mix);
        let on_cpu = thread_on_cpu().zip(on_cpu_before).map(|(after, before)| after - before);
        let rate = options.messages as f64 / elapsed.as_secs_f64();
        // On a shared machine the thread may be descheduled; on-CPU time leaves that out.
        let on_cpu_rate = on_cpu
            .map_or(String::new(), |t| format!(", {:.2} M/s on-CPU", options.messages as f64 / t.as_secs_f64() / 1e6));
        println!(
            "throughput run {run}: {:.2} M messages/s ({:.1} ns/message, {:.1?} total{on_cpu_rate}, {allocations} heap allocations)",
            rate / 1e6,
            elapsed.as_nanos() as f64 / options.messages as f64,
            elapsed
        );
        hashes.push(hash);
        rates.push(rate);
        if run == options.runs {
            println!("  memory after the run: {} KiB", heap_bytes / 1024);
        }
    }
    assert!(hashes.windows(2).all(|w| w[0] == w[1]), "replays diverged: {hashes:x?}");
    rates.sort_by(f64::total_cmp);
    println!(
        "throughput: median {:.2} M messages/s, best {:.2} M messages/s over {} runs",
        rates[rates.len() / 2] / 1e6,
        rates[rates.len() - 1] / 1e6,
        rates.len()
    );

    let (clock, overhead) = TscClock::calibrate_and_report();
    let histograms = replay_timed(&mix, &clock, overhead);
    for (name, histogram) in ["all", "gtc", "ioc", "cancel", "move"].iter().zip(&histograms) {
        println!(
            "latency {name:>6} (ns): p50 {} | p90 {} | p99 {} | p99.9 {} | p99.99 {} | max {} | mean {:.1} | n {}",
            histogram.value_at_quantile(0.50),
            histogram.value_at_quantile(0.90),
            histogram.value_at_quantile(0.99),
            histogram.value_at_quantile(0.999),
            histogram.value_at_quantile(0.9999),
            histogram.max(),
            histogram.mean(),
            histogram.len()
        );
    }
}

/// Which histogram a message belongs to (after "all").
fn kind(message: &Message) -> usize {
    match message {
        Message::New(order) if order.tif == TimeInForce::Gtc => 1,
        Message::New(_) => 2,
        Message::Cancel(_) => 3,
        Message::Move { .. } => 4,
    }
}

/// Replays the stream into a fresh prefilled book; returns the time, the final state hash, the
/// heap allocations made during the replay and the book's heap size at the end.
fn replay_untimed(mix: &Mix) -> (Duration, u64, u64, usize) {
    let mut book = mix.prefilled_book();
    let mut out = Vec::with_capacity(1024);
    let mut rejected = 0usize;
    let allocations = ALLOCATIONS.load(Ordering::Relaxed);
    let start = Instant::now();
    for message in &mix.messages {
        out.clear();
        rejected += usize::from(message.apply(&mut book, &mut out).is_err());
        black_box(&out);
    }
    let elapsed = start.elapsed();
    let allocations = ALLOCATIONS.load(Ordering::Relaxed) - allocations;
    assert_eq!(rejected, 0, "the mix is generated valid");
    (elapsed, book.state_hash(), allocations, book.heap_bytes())
}

/// Per-message latency histograms: all messages, then by kind (see [`kind`]).
fn replay_timed(mix: &Mix, clock: &TscClock, overhead: u64) -> Vec<Histogram<u64>> {
    let mut book = mix.prefilled_book();
    let mut out = Vec::with_capacity(1024);
    // Raw tick counts go into a preallocated Vec; the histogram is filled afterwards so that
    // its bookkeeping does not disturb the caches between messages.
    let mut ticks = Vec::with_capacity(mix.messages.len());
    for message in &mix.messages {
        out.clear();
        let start = read_tsc();
        let result = message.apply(&mut book, &mut out);
        let end = read_tsc();
        black_box(result.is_ok());
        ticks.push(end.wrapping_sub(start));
    }
    let new_histogram = || Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).expect("histogram bounds");
    let mut histograms: Vec<Histogram<u64>> = (0..5).map(|_| new_histogram()).collect();
    for (message, t) in mix.messages.iter().zip(ticks) {
        let ns = clock.ns(t, overhead);
        for k in [0, kind(message)] {
            histograms[k].record(ns).expect("latency within histogram bounds");
        }
    }
    histograms
}

/// Time this thread has spent on a CPU (Linux `schedstat`), if the platform tells.
fn thread_on_cpu() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().next()?.parse().ok().map(Duration::from_nanos)
}
