//! `huashi replay`: rebuilds the market from a data directory without changing it and prints what
//! it found; exits non-zero on corruption.

use clap::Args;
use huashi_engine::store;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Args)]
pub struct ReplayArgs {
    /// The data directory to read.
    #[arg(long, default_value = "huashi-data")]
    data_dir: PathBuf,
    /// Replay the whole journal from the genesis snapshot instead of from the newest snapshot.
    #[arg(long)]
    from_genesis: bool,
}

pub fn run(args: ReplayArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let (market, recovered) = store::read_only(&args.data_dir, args.from_genesis, |_, _, _| {})?;
    let elapsed = started.elapsed();
    for skipped in &recovered.skipped_snapshots {
        eprintln!("warning: skipped damaged snapshot {skipped}");
    }
    let rate = recovered.replayed as f64 / elapsed.as_secs_f64().max(1e-9);
    println!("snapshot_seq {}", recovered.snapshot_seq);
    println!("commands {}", recovered.replayed);
    println!("last_seq {}", recovered.last_seq);
    println!("day {}", market.day());
    println!("state_hash {:016x}", market.state_hash());
    println!("replay_seconds {:.3}", elapsed.as_secs_f64());
    println!("replay_commands_per_second {rate:.0}");
    Ok(())
}
