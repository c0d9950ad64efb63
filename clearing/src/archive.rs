//! The archive of settled days in sled 0.34: statements, trades, ledger entries, lots, market
//! statistics and index closes, each in its own tree keyed by big-endian day first, so one day is
//! one contiguous key range and history reads in day order.
//!
//! | tree | key | value (bincode) |
//! |---|---|---|
//! | `days` | day | `DaySummary` — written last: a day is complete once this is there |
//! | `statements` | day ‖ participant id | `Statement` (firms', never a seat's) |
//! | `seat_firms` | day ‖ seat id | `(seat, firm)` ids (`Code`s), for each seat that traded that day |
//! | `trades` | day ‖ chunk no (u32) | `Vec<TradeRecord>` of about `CHUNK_BYTES_TARGET`, in order |
//! | `ledger` | day ‖ chunk no (u32) | `Vec<LedgerEntry>`, likewise |
//! | `lots` | day ‖ chunk no (u32) | `Vec<LotRecord>`, likewise, by lot id |
//! | `market` | day | `MarketStats` |
//! | `index` | day | `IndexClose` |
//! | `goods_lots` | day ‖ chunk no (u32) | `Vec<LotTraceView>`: lots' traces with their dispatch lines and paths, by lot id |
//! | `goods_book` | day ‖ chunk no (u32) | `Vec<GoodsLine>`: the book trades' dispatch lines, by ref |
//! | `lot_ranges` | the day's last lot id (u64) | `LotRange`: the day and the first and last lot id of each `goods_lots` chunk |
//!
//! The `goods_*` trees (issue 15) are written twice for a day: as the day stands when it settles
//! (so its delivery notes and traces answer from the archive at once), and final when the day
//! leaves clearing's memory at the next `end_of_day` (lines may still move, and be complained
//! about, during the next trading day); the second write replaces the first. Lot ids grow across
//! days (the core never reuses one), so `lot_ranges` finds a lot's day and chunk with one range
//! read: the first entry whose key is at least the lot id.
//!
//! `day` is `Day.0` (an `i32`) with its sign bit flipped, big-endian, so byte order is day order.
//! Trades, ledger entries and lots go in chunks of ~16 KiB rather than one key each: a day of 100 k
//! sales is then a couple of thousand sled values instead of 200 k small ones, which sled 0.34
//! writes ten times faster and holds in far less memory (see `CHUNK_BYTES_TARGET`).
//! The archive is not the truth: everything in it is rebuilt from the journal, so sled's `flush`
//! (which in 0.34 does not sync the disk cache on Linux) is never a durability point. Writing a day
//! again replaces it whole, so a rebuild can simply write every day anew. Since issue 14 its records
//! carry seats, presales and `presold` (and the `seat_firms` tree is new): an archive written before
//! does not decode; rebuild it from the journal (`huashi replay --rebuild-archive`).

use crate::clearing::{DaySummary, SettledDay};
use crate::goods::{GoodsDay, GoodsLine, LotTraceView};
use crate::index::IndexClose;
use crate::ledger::LedgerEntry;
use crate::statement::Statement;
use crate::stats::{LotRecord, MarketStats};
use crate::trades::TradeRecord;
use huashi_engine::types::{Code, Day, LotId};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ArchiveError {
    #[error("archive store: {0}")]
    Store(#[from] sled::Error),
    #[error("archive record does not decode: {0}")]
    Decode(#[from] bincode::Error),
}

pub type Result<T> = std::result::Result<T, ArchiveError>;

/// sled's page cache for the archive: history is written once a day and read now and then.
pub const CACHE_BYTES_MAX: u64 = 64 * 1024 * 1024;

/// A chunk of records (trades, ledger entries, lots) is closed once its encoding reaches this.
/// Measured with sled 0.34: values of ~16 KiB keep the process's RSS flat over months of days,
/// while values of 64 KiB and more (stored as blobs) make it grow with the archive.
pub const CHUNK_BYTES_TARGET: u64 = 16 * 1024;

/// The key prefix of a day: sign-flipped big-endian, so keys sort by day.
pub fn day_key(day: Day) -> [u8; 4] {
    ((day.0 as u32) ^ 0x8000_0000).to_be_bytes()
}

fn day_of_key(key: &[u8]) -> Day {
    let bytes: [u8; 4] = key[..4].try_into().expect("keys start with a day");
    Day((u32::from_be_bytes(bytes) ^ 0x8000_0000) as i32)
}

fn key(day: Day, rest: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(4 + rest.len());
    key.extend_from_slice(&day_key(day));
    key.extend_from_slice(rest);
    key
}

pub struct Archive {
    db: sled::Db,
    days: sled::Tree,
    statements: sled::Tree,
    seat_firms: sled::Tree,
    trades: sled::Tree,
    ledger: sled::Tree,
    lots: sled::Tree,
    market: sled::Tree,
    index: sled::Tree,
    goods_lots: sled::Tree,
    goods_book: sled::Tree,
    lot_ranges: sled::Tree,
}

/// Where a day's lot traces are: its day and, per `goods_lots` chunk, the first and last lot id.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct LotRange {
    day: Day,
    chunks: Vec<(LotId, LotId)>,
}

impl Archive {
    /// Opens (or creates) the archive in directory `path`, with sled's page cache bounded to
    /// `CACHE_BYTES_MAX`.
    pub fn open(path: impl AsRef<Path>) -> Result<Archive> {
        Archive::open_with_cache(path, CACHE_BYTES_MAX)
    }

    /// Opens the archive with a page cache of at most `cache_bytes` (sled's default is 1 GiB, more
    /// than an archive that is mostly written and seldom read deserves).
    pub fn open_with_cache(path: impl AsRef<Path>, cache_bytes: u64) -> Result<Archive> {
        let config = sled::Config::new().path(path).cache_capacity(cache_bytes);
        let db = open_waiting_for_lock(&config)?;
        Ok(Archive {
            days: db.open_tree("days")?,
            statements: db.open_tree("statements")?,
            seat_firms: db.open_tree("seat_firms")?,
            trades: db.open_tree("trades")?,
            ledger: db.open_tree("ledger")?,
            lots: db.open_tree("lots")?,
            market: db.open_tree("market")?,
            index: db.open_tree("index")?,
            goods_lots: db.open_tree("goods_lots")?,
            goods_book: db.open_tree("goods_book")?,
            lot_ranges: db.open_tree("lot_ranges")?,
            db,
        })
    }

    /// Writes a settled day, replacing whatever the archive held for that day, and flushes.
    pub fn write_day(&self, settled: &SettledDay) -> Result<()> {
        let day = settled.day();
        // The summary goes last and comes out first: a day half-written by a crash reads as absent.
        self.days.remove(day_key(day))?;
        replace_range(
            &self.statements,
            day,
            settled.statements.iter().map(|s| (s.participant.as_str().as_bytes().to_vec(), s)),
        )?;
        replace_range(
            &self.seat_firms,
            day,
            settled.seats.iter().map(|pair| (pair.0.as_str().as_bytes().to_vec(), pair)),
        )?;
        replace_chunks(&self.trades, day, &settled.trades)?;
        replace_chunks(&self.ledger, day, &settled.ledger)?;
        replace_chunks(&self.lots, day, &settled.lots)?;
        self.market.insert(day_key(day), bincode::serialize(&settled.market)?)?;
        self.index.insert(day_key(day), bincode::serialize(&settled.index)?)?;
        self.days.insert(day_key(day), bincode::serialize(&settled.summary)?)?;
        // Not for durability (see the module comment): it keeps what the OS has to redo small.
        self.db.flush()?;
        Ok(())
    }

    /// Writes a day's goods (lot traces and dispatch lines), replacing what the archive held for
    /// that day, and flushes.
    pub fn write_goods_day(&self, goods: &GoodsDay) -> Result<()> {
        let day = goods.day;
        let traces: Vec<LotTraceView> =
            goods.lots.keys().map(|id| goods.trace(*id).expect("a lot of the day has a trace")).collect();
        let bounds = chunk_bounds(&traces)?;
        let chunks: Vec<(LotId, LotId)> =
            bounds.iter().map(|&(first, last)| (traces[first].trace.lot.id, traces[last].trace.lot.id)).collect();
        replace_chunks(&self.goods_lots, day, &traces)?;
        let book: Vec<GoodsLine> = goods.book_lines().cloned().collect();
        replace_chunks(&self.goods_book, day, &book)?;
        if let Some(&(_, last)) = chunks.last() {
            // The day's lots are fixed once it settled: a second write has the same last lot.
            self.lot_ranges.insert(last.0.to_be_bytes(), bincode::serialize(&LotRange { day, chunks })?)?;
        }
        self.db.flush()?;
        Ok(())
    }

    /// A lot's trace, if the archive holds its day's goods.
    pub fn trace(&self, lot: LotId) -> Result<Option<LotTraceView>> {
        let Some(entry) = self.lot_ranges.range(lot.0.to_be_bytes()..).next() else { return Ok(None) };
        let range: LotRange = bincode::deserialize(&entry?.1)?;
        let Some(n) = range.chunks.iter().position(|&(first, last)| first <= lot && lot <= last) else {
            return Ok(None);
        };
        let Some(chunk) = get::<Vec<LotTraceView>>(&self.goods_lots, &key(range.day, &(n as u32).to_be_bytes()))?
        else {
            return Ok(None);
        };
        Ok(chunk.into_iter().find(|t| t.trace.lot.id == lot))
    }

    /// Every dispatch line of a day the archive holds goods of, by ref.
    pub fn goods_lines(&self, day: Day) -> Result<Vec<GoodsLine>> {
        let traces: Vec<LotTraceView> = scan_chunks(&self.goods_lots, day)?;
        let mut lines: Vec<GoodsLine> = traces.into_iter().flat_map(|t| t.goods).collect();
        lines.extend(scan_chunks::<GoodsLine>(&self.goods_book, day)?);
        lines.sort_by_key(|l| l.reference);
        Ok(lines)
    }

    /// The settled days the archive holds, oldest first.
    pub fn days(&self) -> Result<Vec<Day>> {
        self.days.iter().keys().map(|k| Ok(day_of_key(&k?))).collect()
    }

    pub fn summary(&self, day: Day) -> Result<Option<DaySummary>> {
        get(&self.days, &day_key(day))
    }

    /// One participant's statement of a settled day; `None` if it had no activity that day. For a
    /// seat that traded that day: its view of its firm's statement (`Statement::view_of`).
    pub fn statement(&self, day: Day, participant: &Code) -> Result<Option<Statement>> {
        let id = participant.as_str().as_bytes();
        if let Some(statement) = get(&self.statements, &key(day, id))? {
            return Ok(Some(statement));
        }
        let Some((_, firm)) = get::<(Code, Code)>(&self.seat_firms, &key(day, id))? else { return Ok(None) };
        let firm_statement: Option<Statement> = get(&self.statements, &key(day, firm.as_str().as_bytes()))?;
        Ok(firm_statement.map(|s| s.seat_view(*participant)))
    }

    /// (seat, firm) for every seat that traded on a settled day, ordered by seat id.
    pub fn seats(&self, day: Day) -> Result<Vec<(Code, Code)>> {
        scan(&self.seat_firms, day)
    }

    /// Every statement of a settled day (firms' only: seats have views), ordered by participant id.
    pub fn statements_of_day(&self, day: Day) -> Result<Vec<Statement>> {
        scan(&self.statements, day)
    }

    /// The sales of a settled day that stand, in the order they happened.
    pub fn trades(&self, day: Day) -> Result<Vec<TradeRecord>> {
        scan_chunks(&self.trades, day)
    }

    pub fn ledger(&self, day: Day) -> Result<Vec<LedgerEntry>> {
        scan_chunks(&self.ledger, day)
    }

    pub fn lots(&self, day: Day) -> Result<Vec<LotRecord>> {
        scan_chunks(&self.lots, day)
    }

    pub fn market(&self, day: Day) -> Result<Option<MarketStats>> {
        get(&self.market, &day_key(day))
    }

    /// Every archived day's index closes, oldest first.
    pub fn index_history(&self) -> Result<Vec<IndexClose>> {
        self.index.iter().values().map(|v| Ok(bincode::deserialize(&v?)?)).collect()
    }
}

/// How long `open` waits for the file lock of an archive that was just closed.
pub const OPEN_LOCK_WAIT_MS: u64 = 2_000;

/// sled 0.34 lets go of its file lock from a background thread a moment after the `Db` is
/// dropped, so reopening an archive in the same process can briefly find it locked: wait for it.
fn open_waiting_for_lock(config: &sled::Config) -> Result<sled::Db> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(OPEN_LOCK_WAIT_MS);
    loop {
        match config.open() {
            Err(sled::Error::Io(e))
                if e.to_string().contains("could not acquire lock") && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            other => return Ok(other?),
        }
    }
}

fn get<T: DeserializeOwned>(tree: &sled::Tree, key: &[u8]) -> Result<Option<T>> {
    tree.get(key)?.map(|v| bincode::deserialize(&v).map_err(ArchiveError::from)).transpose()
}

fn scan<T: DeserializeOwned>(tree: &sled::Tree, day: Day) -> Result<Vec<T>> {
    tree.scan_prefix(day_key(day)).values().map(|v| Ok(bincode::deserialize(&v?)?)).collect()
}

fn scan_chunks<T: DeserializeOwned>(tree: &sled::Tree, day: Day) -> Result<Vec<T>> {
    let mut records = Vec::new();
    for chunk in tree.scan_prefix(day_key(day)).values() {
        records.extend(bincode::deserialize::<Vec<T>>(&chunk?)?);
    }
    Ok(records)
}

/// The chunks of `records` (first and last index of each): about `CHUNK_BYTES_TARGET` each.
fn chunk_bounds<T: Serialize>(records: &[T]) -> Result<Vec<(usize, usize)>> {
    let mut bounds = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, record) in records.iter().enumerate() {
        bytes += bincode::serialized_size(record)?;
        if bytes >= CHUNK_BYTES_TARGET || i + 1 == records.len() {
            bounds.push((start, i));
            (start, bytes) = (i + 1, 0);
        }
    }
    Ok(bounds)
}

/// Replaces `day`'s records in a chunked tree: values of about `CHUNK_BYTES_TARGET`, in order.
fn replace_chunks<T: Serialize>(tree: &sled::Tree, day: Day, records: &[T]) -> Result<()> {
    let mut values: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    for (n, (first, last)) in chunk_bounds(records)?.into_iter().enumerate() {
        values.push(((n as u32).to_be_bytes().to_vec(), bincode::serialize(&records[first..=last])?));
    }
    replace_raw(tree, day, values)
}

/// Replaces every record of `day` in `tree` with `records` (key suffix, value), in one batch.
fn replace_range<'a, T: Serialize + 'a>(
    tree: &sled::Tree,
    day: Day,
    records: impl Iterator<Item = (Vec<u8>, &'a T)>,
) -> Result<()> {
    let values: Vec<(Vec<u8>, Vec<u8>)> =
        records.map(|(suffix, record)| Ok((suffix, bincode::serialize(record)?))).collect::<Result<_>>()?;
    replace_raw(tree, day, values)
}

/// Replaces every value of `day` in `tree` with `values` (key suffix, bytes), in one batch.
fn replace_raw(tree: &sled::Tree, day: Day, values: Vec<(Vec<u8>, Vec<u8>)>) -> Result<()> {
    let mut batch = sled::Batch::default();
    for old in tree.scan_prefix(day_key(day)).keys() {
        batch.remove(old?);
    }
    for (suffix, value) in values {
        batch.insert(key(day, &suffix), value);
    }
    tree.apply_batch(batch)?;
    Ok(())
}

/// Where a data directory keeps its archive.
pub fn archive_dir(data_dir: &Path) -> std::path::PathBuf {
    data_dir.join("archive")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_keys_sort_by_day_across_the_epoch() {
        let days = [Day(-3), Day(-1), Day(0), Day(1), Day(20_000)];
        let keys: Vec<[u8; 4]> = days.iter().map(|d| day_key(*d)).collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]));
        for day in days {
            assert_eq!(day_of_key(&day_key(day)), day);
        }
    }
}
