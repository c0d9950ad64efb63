//! `huashi statements`: writes a settled day's statements as CSV for the finance office — one file
//! per participant and `summary.csv` (participant, bought, sold, fees, commission, net, plus the
//! market's fee income) — from the data directory's archive.

use anyhow::Context;
use clap::Args;
use huashi_clearing::archive::archive_dir;
use huashi_clearing::{write_statement_csvs, Archive};
use huashi_engine::types::Day;
use std::path::PathBuf;

#[derive(Args)]
pub struct StatementsArgs {
    /// The data directory whose archive to read (stop the server first: the archive is locked).
    #[arg(long, default_value = "huashi-data")]
    data_dir: PathBuf,
    /// The settled trading day, YYYY-MM-DD.
    #[arg(long)]
    day: String,
    /// Where to write the CSV files (created if missing).
    #[arg(long)]
    out: PathBuf,
}

pub fn run(args: StatementsArgs) -> anyhow::Result<()> {
    let day = Day::parse(&args.day).with_context(|| format!("--day {:?} is not a date YYYY-MM-DD", args.day))?;
    let archive = Archive::open(archive_dir(&args.data_dir))
        .with_context(|| format!("cannot open the archive of {}", args.data_dir.display()))?;
    let summary = archive.summary(day)?.with_context(|| {
        format!("{day} is not a settled day in {} (try `huashi replay --rebuild-archive`)", args.data_dir.display())
    })?;
    let statements = archive.statements_of_day(day)?;
    let written = write_statement_csvs(&statements, day, &summary.fee_schedule, &args.out)?;
    println!(
        "{day}: {} statements, {} trades, turnover {}, market fee income {}",
        statements.len(),
        summary.trades,
        summary.turnover,
        summary.fees
    );
    for path in written {
        println!("  wrote {}", path.display());
    }
    Ok(())
}
