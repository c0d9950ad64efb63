//! Journal throughput and commit latency: durable group commit the way the sequencer uses it
//! (append a batch, one `commit`), then `read_after` replay and recovery-scan speed.
//!
//! ```text
//! cargo run --release -p huashi-benches --bin journal_bench -- \
//!     [--records 2000000] [--batch 64] [--durability fsync|none] [--segment-mib 64] [--dir .]
//! ```
//!
//! The journal goes in a fresh temporary directory under `--dir`, which must be on the disk being
//! measured (not tmpfs). Commit latency is a closed loop (each commit starts when the previous
//! returns), so there is no schedule to fall behind and no coordinated omission to correct.

use hdrhistogram::Histogram;
use huashi_engine::journal::{Durability, Journal, JournalConfig};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::PathBuf;
use std::time::{Duration, Instant};

struct Options {
    records: u64,
    batch: u64,
    durability: Durability,
    segment_bytes: u64,
    dir: PathBuf,
}

fn parse_options() -> Options {
    let mut options = Options {
        records: 2_000_000,
        batch: 64,
        durability: Durability::Fsync,
        segment_bytes: 64 << 20,
        dir: PathBuf::from("."),
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().unwrap_or_else(|| usage(&format!("{flag} needs a value")));
        let number = || value.parse::<u64>().unwrap_or_else(|_| usage(&format!("{flag}: not a number")));
        match flag.as_str() {
            "--records" => options.records = number(),
            "--batch" => options.batch = number().max(1),
            "--segment-mib" => options.segment_bytes = number() << 20,
            "--dir" => options.dir = PathBuf::from(&value),
            "--durability" => {
                options.durability = match value.as_str() {
                    "fsync" => Durability::Fsync,
                    "none" => Durability::None,
                    _ => usage("--durability is fsync or none"),
                }
            }
            _ => usage(&format!("unknown flag {flag}")),
        }
    }
    options
}

fn usage(problem: &str) -> ! {
    eprintln!("journal_bench: {problem}");
    eprintln!(
        "usage: journal_bench [--records N] [--batch N] [--durability fsync|none] [--segment-mib N] [--dir PATH]"
    );
    std::process::exit(2);
}

fn main() {
    let options = parse_options();
    let scratch = tempfile::tempdir_in(&options.dir).expect("create a temporary directory under --dir");
    let dir = scratch.path().join("journal");
    // A pool of payloads drawn up front, so the timed loop measures the journal, not the RNG.
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    let payloads: Vec<Vec<u8>> = (0..4096).map(|_| (0..rng.gen_range(64..=100)).map(|_| rng.gen()).collect()).collect();

    println!(
        "journal_bench: {} records, payloads 64..=100 B, commit every {}, durability {:?}, segments {} MiB, in {}",
        options.records,
        options.batch,
        options.durability,
        options.segment_bytes >> 20,
        scratch.path().display()
    );

    let config =
        JournalConfig { dir: dir.clone(), segment_bytes: options.segment_bytes, durability: options.durability };
    let (mut journal, _) = Journal::open(config.clone()).expect("open journal");
    let mut commit_ns = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
    let mut payload_bytes = 0u64;
    let started = Instant::now();
    for seq in 1..=options.records {
        let payload = &payloads[(seq % payloads.len() as u64) as usize];
        payload_bytes += payload.len() as u64;
        journal.append(seq, payload).expect("append");
        if seq % options.batch == 0 || seq == options.records {
            let commit_started = Instant::now();
            journal.commit().expect("commit");
            commit_ns.record(commit_started.elapsed().as_nanos() as u64).unwrap();
        }
    }
    let elapsed = started.elapsed();
    journal.close().expect("close");
    println!(
        "append+commit: {:.0} records/s, {:.1} MB/s of payload, {} commits in {:.2} s",
        rate(options.records, elapsed),
        payload_bytes as f64 / elapsed.as_secs_f64() / 1e6,
        commit_ns.len(),
        elapsed.as_secs_f64()
    );
    println!(
        "commit latency (µs): p50 {:.1}  p99 {:.1}  p99.9 {:.1}  max {:.1}",
        commit_ns.value_at_quantile(0.50) as f64 / 1e3,
        commit_ns.value_at_quantile(0.99) as f64 / 1e3,
        commit_ns.value_at_quantile(0.999) as f64 / 1e3,
        commit_ns.max() as f64 / 1e3
    );

    let started = Instant::now();
    let mut read = 0u64;
    let mut read_bytes = 0u64;
    for record in Journal::read_after(&dir, 0).expect("read_after") {
        let (seq, payload) = record.expect("record");
        read += 1;
        read_bytes += payload.len() as u64;
        assert_eq!(seq, read, "records come back in order");
    }
    let elapsed = started.elapsed();
    assert_eq!(read, options.records, "every record reads back");
    println!(
        "read_after(0): {:.0} records/s, {:.1} MB/s of payload ({:.2} s, files in page cache)",
        rate(read, elapsed),
        read_bytes as f64 / elapsed.as_secs_f64() / 1e6,
        elapsed.as_secs_f64()
    );

    let started = Instant::now();
    let (_journal, report) = Journal::open(config).expect("reopen");
    let elapsed = started.elapsed();
    assert_eq!(report.last_seq, options.records);
    println!(
        "open (verify every record): {:.0} records/s ({:.2} s, {} segments)",
        rate(report.records, elapsed),
        elapsed.as_secs_f64(),
        report.segments
    );
}

fn rate(count: u64, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64()
}
