//! `huashi delivery-note`: a settled day's delivery notes as CSV (protocol §12) — one per buyer,
//! a row per dispatch line (ref, lot, product, grade, containers, units, seat, destination,
//! status, the lot's trace URL) — from the data directory's archive, beside `huashi statements`.
//!
//! A buyer firm's note lists its seats' purchases too (the `seat` column names them); `--buyer`
//! with a seat's id lists only that seat's. A day is in the archive as it stood at its
//! `end_of_day`, and final after the next one (lines may move during the next trading day).

use anyhow::Context;
use clap::Args;
use huashi_clearing::archive::archive_dir;
use huashi_clearing::export::delivery_note_csv;
use huashi_clearing::{Archive, GoodsLine};
use huashi_engine::types::Day;
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Args)]
pub struct DeliveryNoteArgs {
    /// The data directory whose archive to read (stop the server first: the archive is locked).
    #[arg(long, default_value = "huashi-data")]
    data_dir: PathBuf,
    /// The settled trading day, YYYY-MM-DD.
    #[arg(long)]
    day: String,
    /// One buyer's note (a firm's includes its seats'; a seat's, only its own lines).
    #[arg(long)]
    buyer: Option<String>,
    /// With --buyer: the CSV file to write (standard output when absent). Without: the directory
    /// that gets `delivery-note-<buyer>-<day>.csv` for every buyer of the day (created if missing).
    #[arg(long)]
    out: Option<PathBuf>,
    /// The market's address as buyers reach it: each lot's trace URL is `<base-url>/lot/<lot_id>`.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    base_url: String,
}

pub fn run(args: DeliveryNoteArgs) -> anyhow::Result<()> {
    let day = Day::parse(&args.day).with_context(|| format!("--day {:?} is not a date YYYY-MM-DD", args.day))?;
    if !(args.base_url.starts_with("http://") || args.base_url.starts_with("https://")) {
        anyhow::bail!("--base-url {:?} must start with http:// or https://", args.base_url);
    }
    let archive = Archive::open(archive_dir(&args.data_dir))
        .with_context(|| format!("cannot open the archive of {}", args.data_dir.display()))?;
    archive.summary(day)?.with_context(|| {
        format!("{day} is not a settled day in {} (try `huashi replay --rebuild-archive`)", args.data_dir.display())
    })?;
    let lines = archive.goods_lines(day)?;
    match &args.buyer {
        Some(buyer) => {
            let mine: Vec<&GoodsLine> = lines
                .iter()
                .filter(|l| l.buyer.as_str() == buyer || l.seat.is_some_and(|s| s.as_str() == buyer))
                .collect();
            let csv = delivery_note_csv(mine.iter().copied(), &args.base_url);
            match &args.out {
                Some(path) => {
                    std::fs::write(path, csv).with_context(|| format!("cannot write {}", path.display()))?;
                    eprintln!("{day}: {} lines of {buyer}, wrote {}", mine.len(), path.display());
                }
                None => print!("{csv}"),
            }
        }
        None => {
            let dir = args.out.as_ref().context("--out DIR is needed without --buyer (one file per buyer)")?;
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
            let mut by_buyer: BTreeMap<&str, Vec<&GoodsLine>> = BTreeMap::new();
            for line in &lines {
                by_buyer.entry(line.buyer.as_str()).or_default().push(line);
            }
            println!("{day}: {} lines of {} buyers", lines.len(), by_buyer.len());
            for (buyer, mine) in by_buyer {
                let path = dir.join(format!("delivery-note-{buyer}-{day}.csv"));
                std::fs::write(&path, delivery_note_csv(mine, &args.base_url))
                    .with_context(|| format!("cannot write {}", path.display()))?;
                println!("  wrote {}", path.display());
            }
        }
    }
    Ok(())
}
