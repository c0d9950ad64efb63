//! `huashi index`: prints the Shanghai Flower Consumption Index history (one row per settled day,
//! the close of every index) from the data directory's archive, as a table or `--csv`.

use anyhow::Context;
use clap::Args;
use huashi_clearing::archive::archive_dir;
use huashi_clearing::{Archive, IndexCode};
use std::collections::BTreeSet;
use std::path::PathBuf;

#[derive(Args)]
pub struct IndexArgs {
    /// The data directory whose archive to read (stop the server first: the archive is locked).
    #[arg(long, default_value = "huashi-data")]
    data_dir: PathBuf,
    /// Print CSV instead of a table.
    #[arg(long)]
    csv: bool,
}

pub fn run(args: IndexArgs) -> anyhow::Result<()> {
    let archive = Archive::open(archive_dir(&args.data_dir))
        .with_context(|| format!("cannot open the archive of {}", args.data_dir.display()))?;
    let history = archive.index_history()?;
    let codes: BTreeSet<IndexCode> = history.iter().flat_map(|row| row.values.keys().copied()).collect();
    let cell = |row: &huashi_clearing::IndexClose, code: &IndexCode| {
        row.values.get(code).map_or_else(|| "-".to_string(), |v| v.to_string())
    };
    if args.csv {
        let header: Vec<&str> = codes.iter().map(|c| c.as_str()).collect();
        println!("day,{}", header.join(","));
        for row in &history {
            let values: Vec<String> = codes.iter().map(|c| cell(row, c)).collect();
            println!("{},{}", row.day, values.join(","));
        }
        return Ok(());
    }
    print!("{:<12}", "day");
    for code in &codes {
        print!("{:>12}", code.as_str());
    }
    println!();
    for row in &history {
        print!("{:<12}", row.day.to_string());
        for code in &codes {
            print!("{:>12}", cell(row, code));
        }
        println!();
    }
    if history.is_empty() {
        println!("(no settled day yet)");
    }
    Ok(())
}
