//! Memory soak: 30 simulated days × 100,000 transactions through `Clearing::apply`, each settled
//! day moved out with `take_settled_day` and written to a sled archive in a temporary directory.
//! Prints, per day, the process RSS and clearing's serialized size at the busiest moment (just
//! before the close) and after the day went to the archive.
//!
//! ```text
//! cargo run --release -p huashi-clearing --example memory_soak [-- DAYS TRANSACTIONS [CACHE_MIB|none]]
//! ```
//!
//! `CACHE_MIB` sets sled's page cache (default: the archive's own bound); `none` skips the archive,
//! to tell clearing's memory from sled's.

#[path = "../tests/support/mod.rs"]
mod support;

use huashi_clearing::{Archive, Clearing, ClearingConfig};
use huashi_engine::types::Day;
use rand::SeedableRng;
use std::time::Instant;
use support::MarketSim;

/// Resident set size of this process in MiB (Linux), 0 elsewhere.
fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

/// CPU time this thread has used, in nanoseconds: unlike wall time it does not count the moments
/// another process had the core (the soak often shares a 2-core machine with builds).
fn thread_cpu_ns() -> u128 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid timespec for the duration of the call.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime");
    ts.tv_sec as u128 * 1_000_000_000 + ts.tv_nsec as u128
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let days: usize = args.first().map_or(30, |a| a.parse().expect("DAYS is a number"));
    let transactions: usize = args.get(1).map_or(100_000, |a| a.parse().expect("TRANSACTIONS is a number"));
    let cache_bytes = match args.get(2).map(String::as_str) {
        Some("none") => None,
        Some(mib) => Some(mib.parse::<u64>().expect("CACHE_MIB is a number") << 20),
        None => Some(huashi_clearing::archive::CACHE_BYTES_MAX),
    };

    let dir = tempfile::tempdir().expect("a temporary directory");
    let archive = cache_bytes.map(|bytes| Archive::open_with_cache(dir.path(), bytes).expect("the archive opens"));
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2026);
    let mut sim = MarketSim::new(Day(20_786));
    let mut clearing = Clearing::new(ClearingConfig::default(), sim.day());
    let registration = sim.register(200, 100, 20);
    clearing.apply(registration.seq, registration.ts, &registration.events);

    let cache = cache_bytes.map_or("no archive".to_string(), |b| format!("sled cache {} MiB", b >> 20));
    println!("{days} days × {transactions} transactions (applied outputs), 320 participants, {cache}");
    println!("day  sales  rss_peak_MiB  state_peak_KiB  rss_after_MiB  state_after_KiB  archive_ms  apply_cpu_ns/tx");
    let mut first_after = None;
    for n in 1..=days {
        // The day's outputs are generated first, so the timing is clearing's alone.
        let mut outputs = Vec::with_capacity(transactions);
        while outputs.len() < transactions {
            if let Some(out) = sim.step(support::random_op(&mut rng)) {
                outputs.push(out);
            }
        }
        let started = thread_cpu_ns();
        for out in &outputs {
            clearing.apply(out.seq, out.ts, &out.events);
        }
        let apply_ns = (thread_cpu_ns() - started) as f64 / transactions as f64;
        drop(outputs);
        let (rss_peak, state_peak) = (rss_mib(), bincode::serialized_size(&clearing).unwrap() / 1024);
        let close = sim.end_day();
        clearing.apply(close.seq, close.ts, &close.events);
        let settled = clearing.take_settled_day().expect("a settled day");
        let sales = settled.trades.len();
        let archived = Instant::now();
        if let Some(archive) = &archive {
            archive.write_day(&settled).expect("the day is archived");
        }
        // The goods: the settled day as it stands, the day before final (issue 15).
        while let Some(goods) = clearing.take_goods_day() {
            if let Some(archive) = &archive {
                archive.write_goods_day(&goods).expect("the day's goods are archived");
            }
        }
        let archive_ms = archived.elapsed().as_millis();
        drop(settled);
        let state_after = bincode::serialized_size(&clearing).unwrap();
        first_after.get_or_insert(state_after);
        println!(
            "{n:>3}  {sales:>5}  {rss_peak:>12.1}  {state_peak:>14}  {:>13.1}  {:>15.1}  {archive_ms:>10}  {apply_ns:>11.0}",
            rss_mib(),
            state_after as f64 / 1024.0
        );
    }
    let last = bincode::serialized_size(&clearing).unwrap();
    println!(
        "state after day 1: {} B, after day {days}: {last} B (the growth is the index history, one row a day)",
        first_after.unwrap_or(0)
    );
    if archive.is_some() {
        println!("archive on disk: {:.0} MiB", dir_bytes(dir.path()) as f64 / (1 << 20) as f64);
    }
    assert!(clearing.ledger_balanced());
}

fn dir_bytes(path: &std::path::Path) -> u64 {
    std::fs::read_dir(path)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| match entry.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&entry.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}
