//! `huashi replay`: rebuilds the market from a data directory without changing it and prints what
//! it found; exits non-zero on corruption. With `--rebuild-archive` it also replays every command
//! from genesis through clearing and writes a fresh archive of every settled day.

use anyhow::Context;
use clap::Args;
use huashi_clearing::archive::archive_dir;
use huashi_clearing::service::recovery_point;
use huashi_clearing::{Archive, Clearing, ClearingConfig};
use huashi_engine::store;
use huashi_gateway::feed_log::FeedLog;
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
    /// Replay from genesis through clearing too and rebuild the archive (stop the server first).
    #[arg(long)]
    rebuild_archive: bool,
}

pub fn run(args: ReplayArgs) -> anyhow::Result<()> {
    if args.rebuild_archive {
        return rebuild_archive(&args);
    }
    let started = Instant::now();
    let (market, recovered) = store::read_only_market(&args.data_dir, args.from_genesis)?;
    let elapsed = started.elapsed();
    for skipped in &recovered.skipped_snapshots {
        eprintln!("warning: skipped damaged snapshot {skipped}");
    }
    let (feed_seq, clearing_hash) = replay_public(&args)?;
    let rate = recovered.replayed as f64 / elapsed.as_secs_f64().max(1e-9);
    println!("snapshot_seq {}", recovered.snapshot_seq);
    println!("commands {}", recovered.replayed);
    println!("last_seq {}", recovered.last_seq);
    println!("day {}", market.day());
    println!("state_hash {:016x}", market.state_hash());
    println!("feed_seq {feed_seq}");
    println!("clearing_hash {clearing_hash:016x}");
    println!("replay_seconds {:.3}", elapsed.as_secs_f64());
    println!("replay_commands_per_second {rate:.0}");
    Ok(())
}

/// Replays clearing and the feed's numbering (from their newest common snapshot with the market,
/// or from genesis) to find the last feed seq the data directory holds, and clearing's hash. Reads
/// only: the archive is not touched.
fn replay_public(args: &ReplayArgs) -> anyhow::Result<(u64, u64)> {
    let genesis = store::genesis_market(&args.data_dir)?
        .with_context(|| format!("{} holds no market (no genesis snapshot)", args.data_dir.display()))?;
    let (mut clearing, mut log, start_at) = if args.from_genesis {
        (Clearing::new(ClearingConfig { fees: genesis.config().fees }, genesis.day()), FeedLog::default(), 0)
    } else {
        let point = recovery_point(&args.data_dir, genesis.config().fees, genesis.day())?;
        for skipped in &point.skipped {
            eprintln!("warning: skipped {skipped}");
        }
        let log = FeedLog::restore(point.publisher.as_deref()).map_err(anyhow::Error::msg)?;
        (point.clearing, log, point.start_at)
    };
    store::read_only_at(&args.data_dir, start_at, |seq, entry, events| {
        let data = clearing.apply(seq, entry.ts, events);
        while clearing.take_settled_day().is_some() {}
        while clearing.take_goods_day().is_some() {}
        log.record(events, &data, |_| {});
    })?;
    Ok((log.last_seq(), clearing.state_hash()))
}

fn rebuild_archive(args: &ReplayArgs) -> anyhow::Result<()> {
    let genesis = store::genesis_market(&args.data_dir)?
        .with_context(|| format!("{} holds no market (no genesis snapshot)", args.data_dir.display()))?;
    let final_dir = archive_dir(&args.data_dir);
    let fresh_dir = args.data_dir.join("archive.rebuild");
    if fresh_dir.exists() {
        std::fs::remove_dir_all(&fresh_dir)?;
    }
    let archive = Archive::open(&fresh_dir)?;
    let mut clearing = Clearing::new(ClearingConfig { fees: genesis.config().fees }, genesis.day());
    let mut days = 0;
    let mut failure = None;
    let (market, recovered) = store::read_only(&args.data_dir, true, |seq, entry, events| {
        clearing.apply(seq, entry.ts, events);
        while let Some(settled) = clearing.take_settled_day() {
            days += 1;
            if let Err(error) = archive.write_day(&settled) {
                failure.get_or_insert(format!("day {}: {error}", settled.day()));
            }
        }
        while let Some(goods) = clearing.take_goods_day() {
            if let Err(error) = archive.write_goods_day(&goods) {
                failure.get_or_insert(format!("goods of day {}: {error}", goods.day));
            }
        }
    })?;
    if let Some(failure) = failure {
        anyhow::bail!("could not write the archive: {failure}");
    }
    drop(archive);
    if final_dir.exists() {
        std::fs::remove_dir_all(&final_dir)?;
    }
    std::fs::rename(&fresh_dir, &final_dir)?;
    println!("commands {}", recovered.replayed);
    println!("last_seq {}", recovered.last_seq);
    println!("settled_days {days}");
    println!("state_hash {:016x}", market.state_hash());
    println!("clearing_hash {:016x}", clearing.state_hash());
    println!("archive {}", final_dir.display());
    Ok(())
}
