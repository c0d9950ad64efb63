//! A data directory: where the journal and snapshots live, how a market is recovered from them
//! (newest good snapshot + replay of the journal after it), and the record format of one
//! journaled command (`JournalEntry`: engine time + command, bincode).
//!
//! ```text
//! DATA_DIR/journal/journal-…​.log     the commands, in order (see journal.rs)
//! DATA_DIR/snapshots/snapshot-….bin  whole-market images (see snapshot.rs)
//! ```

use crate::command::Command;
use crate::core::{Market, MarketConfig};
use crate::event::Event;
use crate::journal::{Durability, Journal, JournalConfig, JournalError, JournalReader, SEGMENT_BYTES_DEFAULT};
use crate::snapshot::{scan_snapshots, write_snapshot, SnapshotError};
use crate::types::EngineTime;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// One journal record's payload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalEntry {
    pub ts: EngineTime,
    pub command: Command,
}

impl JournalEntry {
    pub fn encode_into(&self, buffer: &mut Vec<u8>) {
        buffer.clear();
        bincode::serialize_into(&mut *buffer, self).expect("commands serialise");
    }
    pub fn decode(bytes: &[u8]) -> Result<JournalEntry, bincode::Error> {
        // Book orders and cancels, most of a busy journal, by the hand-written reader of the same
        // bytes; everything else (and anything it is unsure of) by bincode.
        match crate::journal::book_records::decode(bytes) {
            Some(entry) => Ok(entry),
            None => bincode::deserialize(bytes),
        }
    }
    /// `decode`, written over `self` (a replay reuses the storage of entries it has applied).
    pub fn decode_into(&mut self, bytes: &[u8]) -> Result<(), bincode::Error> {
        if !crate::journal::book_records::decode_into(bytes, self) {
            *self = bincode::deserialize(bytes)?;
        }
        Ok(())
    }
}

#[derive(thiserror::Error, Debug)]
#[non_exhaustive]
pub enum StoreError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    #[error("journal record {seq} does not decode: {reason}")]
    BadRecord { seq: u64, reason: String },
    #[error("snapshot after seq {seq} does not decode: {reason}")]
    BadSnapshot { seq: u64, reason: String },
    #[error("{0}")]
    Other(String),
}

pub fn journal_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("journal")
}
pub fn snapshot_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("snapshots")
}
/// The market as it was born (snapshot 0), kept apart from the periodic snapshots so pruning never
/// takes it: replay from the very beginning starts here.
pub fn genesis_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("genesis")
}

/// What recovery found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovered {
    /// The seq of the snapshot recovery started from (0: the genesis snapshot).
    pub snapshot_seq: u64,
    /// Journal records replayed on top of it.
    pub replayed: u64,
    pub last_seq: u64,
    pub truncated_bytes: u64,
    /// Damaged snapshots that were skipped, with the reason: worth an operator's attention.
    pub skipped_snapshots: Vec<String>,
}

pub struct StoreOptions {
    pub durability: Durability,
    pub segment_bytes: u64,
    /// Start recovery from the snapshot taken after this seq (0: genesis) instead of the newest,
    /// so that state kept downstream (clearing) can be recovered from the same point.
    pub start_at: Option<u64>,
}

impl Default for StoreOptions {
    fn default() -> StoreOptions {
        StoreOptions { durability: Durability::Fsync, segment_bytes: SEGMENT_BYTES_DEFAULT, start_at: None }
    }
}

/// The seqs recovery can start from: 0 (genesis) and every market snapshot on disk.
pub fn recovery_points(data_dir: &Path) -> Result<Vec<u64>, StoreError> {
    let mut seqs = vec![0];
    seqs.extend(crate::snapshot::snapshot_seqs(&snapshot_dir(data_dir))?);
    Ok(seqs)
}

/// Opens a data directory for writing: recovers the market, replaying every journaled command
/// through `on_events` (so downstream state such as clearing can be rebuilt), and returns the
/// journal ready for appends. A new directory starts with `genesis`, written as snapshot 0.
pub fn open(
    data_dir: &Path,
    genesis: impl FnOnce() -> MarketConfig,
    options: &StoreOptions,
    on_events: impl FnMut(u64, &JournalEntry, &[Event]),
) -> Result<(Market, Journal, Recovered), StoreError> {
    std::fs::create_dir_all(data_dir)
        .map_err(|e| StoreError::Other(format!("cannot create {}: {e}", data_dir.display())))?;
    let (journal, report) = Journal::open(JournalConfig {
        dir: journal_dir(data_dir),
        segment_bytes: options.segment_bytes,
        durability: options.durability,
    })?;
    let (mut market, mut recovered) = match options.start_at {
        None => load_snapshot(data_dir)?,
        Some(0) => load_genesis(data_dir)?,
        Some(seq) => {
            let bytes = crate::snapshot::snapshot_at(&snapshot_dir(data_dir), seq)?
                .ok_or_else(|| StoreError::Other(format!("no good snapshot after seq {seq}")))?;
            let market: Market =
                bincode::deserialize(&bytes).map_err(|e| StoreError::BadSnapshot { seq, reason: e.to_string() })?;
            (Some(market), Recovered { snapshot_seq: seq, ..Recovered::default() })
        }
    };
    if recovered.snapshot_seq == 0 && market.is_none() {
        if report.last_seq > 0 {
            // Most often a data directory written by an older Huashi, whose snapshots (the
            // genesis too) this version no longer reads: say which and why.
            let why = if recovered.skipped_snapshots.is_empty() {
                String::new()
            } else {
                format!(
                    " (passed over: {}; a data directory from another version of Huashi is not read: start a new one)",
                    recovered.skipped_snapshots.join("; ")
                )
            };
            return Err(StoreError::Other(format!(
                "{} has a journal but no snapshot to start it from{why}",
                data_dir.display()
            )));
        }
        let fresh = Market::new(genesis());
        let bytes = bincode::serialize(&fresh).expect("market serialises");
        write_snapshot(&genesis_dir(data_dir), 0, &bytes)?;
        market = Some(fresh);
    }
    let mut market = market.expect("a market from a snapshot or genesis");
    recovered.replayed = replay_into(data_dir, &mut market, recovered.snapshot_seq, Replay::Loud, on_events)?;
    recovered.last_seq = recovered.snapshot_seq + recovered.replayed;
    recovered.truncated_bytes = report.truncated_bytes;
    if recovered.last_seq != journal.last_seq() && recovered.replayed > 0 {
        return Err(StoreError::Other(format!(
            "replay reached seq {} but the journal ends at {}",
            recovered.last_seq,
            journal.last_seq()
        )));
    }
    recovered.last_seq = recovered.last_seq.max(journal.last_seq());
    Ok((market, journal, recovered))
}

/// Reads a data directory without changing it: the market as of the last good record, from the
/// newest snapshot, or with `from_genesis` by replaying the whole journal from the beginning.
pub fn read_only(
    data_dir: &Path,
    from_genesis: bool,
    on_events: impl FnMut(u64, &JournalEntry, &[Event]),
) -> Result<(Market, Recovered), StoreError> {
    read_only_as(data_dir, from_genesis, Replay::Loud, on_events)
}

/// `read_only` for a reader that wants the market alone, not the events: the replay runs quiet
/// (`Market::set_quiet`: the books' per-order reports are never built), which is most of the
/// work of replaying busy books. The market, and its state hash, are the same.
pub fn read_only_market(data_dir: &Path, from_genesis: bool) -> Result<(Market, Recovered), StoreError> {
    read_only_as(data_dir, from_genesis, Replay::Quiet, |_, _, _| {})
}

fn read_only_as(
    data_dir: &Path,
    from_genesis: bool,
    replay: Replay,
    on_events: impl FnMut(u64, &JournalEntry, &[Event]),
) -> Result<(Market, Recovered), StoreError> {
    let (market, mut recovered) = if from_genesis { load_genesis(data_dir)? } else { load_snapshot(data_dir)? };
    let mut market =
        market.ok_or_else(|| StoreError::Other(format!("{} holds no market (no snapshot)", data_dir.display())))?;
    recovered.replayed = replay_into(data_dir, &mut market, recovered.snapshot_seq, replay, on_events)?;
    recovered.last_seq = recovered.snapshot_seq + recovered.replayed;
    Ok((market, recovered))
}

/// Whether a replay builds every event (its reader sees them) or runs quiet (nobody reads them).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Replay {
    Loud,
    Quiet,
}

/// Like `read_only`, from the snapshot taken after `seq` (0: genesis), the point at which the
/// state kept downstream (clearing) was saved too.
pub fn read_only_at(
    data_dir: &Path,
    seq: u64,
    on_events: impl FnMut(u64, &JournalEntry, &[Event]),
) -> Result<(Market, Recovered), StoreError> {
    let market = if seq == 0 {
        load_genesis(data_dir)?.0
    } else {
        let bytes = crate::snapshot::snapshot_at(&snapshot_dir(data_dir), seq)?;
        match bytes {
            Some(bytes) => {
                Some(bincode::deserialize(&bytes).map_err(|e| StoreError::BadSnapshot { seq, reason: e.to_string() })?)
            }
            None => None,
        }
    };
    let mut market = market
        .ok_or_else(|| StoreError::Other(format!("{} has no good snapshot after seq {seq}", data_dir.display())))?;
    let mut recovered = Recovered { snapshot_seq: seq, ..Recovered::default() };
    recovered.replayed = replay_into(data_dir, &mut market, seq, Replay::Loud, on_events)?;
    recovered.last_seq = seq + recovered.replayed;
    Ok((market, recovered))
}

fn load_snapshot(data_dir: &Path) -> Result<(Option<Market>, Recovered), StoreError> {
    let mut scan = scan_snapshots(&snapshot_dir(data_dir))?;
    if scan.latest.is_none() {
        let genesis = scan_snapshots(&genesis_dir(data_dir))?;
        scan.latest = genesis.latest;
        scan.skipped.extend(genesis.skipped);
    }
    let mut recovered = Recovered {
        skipped_snapshots: scan.skipped.iter().map(|s| format!("{}: {}", s.path.display(), s.reason)).collect(),
        ..Recovered::default()
    };
    let Some((seq, bytes)) = scan.latest else {
        return Ok((None, recovered));
    };
    let market: Market =
        bincode::deserialize(&bytes).map_err(|e| StoreError::BadSnapshot { seq, reason: e.to_string() })?;
    recovered.snapshot_seq = seq;
    Ok((Some(market), recovered))
}

/// The market as it was born, if the directory has one.
pub fn genesis_market(data_dir: &Path) -> Result<Option<Market>, StoreError> {
    Ok(load_genesis(data_dir)?.0)
}

/// The genesis snapshot's bytes as written (a serialised `Market`), if the directory has one:
/// what a leader ships so its followers start from the very same market.
pub fn genesis_bytes(data_dir: &Path) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(scan_snapshots(&genesis_dir(data_dir))?.latest.map(|(_, bytes)| bytes))
}

/// Writes a genesis received from a leader into a new data directory, after checking that it
/// is a market; recovery then starts from it as from its own.
pub fn write_genesis(data_dir: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    bincode::deserialize::<Market>(bytes).map_err(|e| StoreError::BadSnapshot { seq: 0, reason: e.to_string() })?;
    std::fs::create_dir_all(data_dir)
        .map_err(|e| StoreError::Other(format!("cannot create {}: {e}", data_dir.display())))?;
    write_snapshot(&genesis_dir(data_dir), 0, bytes)?;
    Ok(())
}

fn load_genesis(data_dir: &Path) -> Result<(Option<Market>, Recovered), StoreError> {
    let scan = scan_snapshots(&genesis_dir(data_dir))?;
    let market = match scan.latest {
        Some((seq, bytes)) => {
            Some(bincode::deserialize(&bytes).map_err(|e| StoreError::BadSnapshot { seq, reason: e.to_string() })?)
        }
        None => None,
    };
    Ok((market, Recovered::default()))
}

/// Replays every journal record after `after` into `market`; returns how many.
///
/// Reading, checking and decoding the records (a fifth of the work, and none of it needs the
/// market) runs on a helper thread, a chunk ahead of this one, which only applies. The records
/// are applied in journal order all the same, and an error ends the replay as it would inline.
/// Quiet, `on_events` sees only the events a quiet market still builds.
fn replay_into(
    data_dir: &Path,
    market: &mut Market,
    after: u64,
    replay: Replay,
    on_events: impl FnMut(u64, &JournalEntry, &[Event]),
) -> Result<u64, StoreError> {
    market.set_quiet(replay == Replay::Quiet);
    let replayed = replay_records(data_dir, market, after, on_events);
    market.set_quiet(false);
    replayed
}

fn replay_records(
    data_dir: &Path,
    market: &mut Market,
    after: u64,
    mut on_events: impl FnMut(u64, &JournalEntry, &[Event]),
) -> Result<u64, StoreError> {
    let records = Journal::read_after(&journal_dir(data_dir), after)?;
    let (chunks_tx, chunks_rx) = crossbeam_channel::bounded(REPLAY_CHUNKS_AHEAD);
    let (spent_tx, spent_rx) = crossbeam_channel::bounded(REPLAY_CHUNKS_AHEAD + 1);
    std::thread::scope(|scope| {
        // Owned by this closure, so an early return or a panic in `on_events` drops it and the
        // decoder's next send fails instead of blocking the scope's join forever.
        let chunks_rx = chunks_rx;
        std::thread::Builder::new()
            .name("replay-decode".into())
            .spawn_scoped(scope, move || decode_chunks(records, &chunks_tx, &spent_rx))
            .map_err(|e| StoreError::Other(format!("cannot start the replay decoder thread: {e}")))?;
        let mut events = Vec::new();
        let mut replayed = 0;
        for chunk in &chunks_rx {
            let chunk = chunk?;
            // By reference: moving each entry out would copy its ~190 bytes again.
            let records = chunk.records();
            // Asked once a chunk: see `Market::looks_ahead`.
            let looks_ahead = market.looks_ahead();
            for (i, (seq, entry)) in records.iter().enumerate() {
                if looks_ahead {
                    market.look_ahead(records[i + 1..].iter().map(|(_, later)| &later.command));
                }
                events.clear();
                market.apply(&entry.command, entry.ts, &mut events);
                on_events(*seq, entry, &events);
                replayed += 1;
            }
            // Handing the chunk back saves the decoder an allocation, and it decodes over the
            // spent entries in place; if it has finished already, the chunk is simply dropped.
            let _ = spent_tx.try_send(chunk);
        }
        Ok(replayed)
    })
}

/// Decoded records per hand-over between the decoder and the replaying thread. The decoder is the
/// faster of the two, so it waits on a full queue and every chunk taken wakes it (a futex call on
/// each side, a tenth of the replaying thread's time at 256): large chunks make that rare.
const REPLAY_CHUNK_RECORDS: usize = 1024;
/// Chunks the decoder may run ahead: enough to ride out a slow read, little memory.
const REPLAY_CHUNKS_AHEAD: usize = 4;

/// Decoded records, in order: the first `len` of `entries`. The entries after them are spent ones
/// kept for their storage: the next decode writes over them rather than into new ones.
struct DecodedChunk {
    entries: Vec<(u64, JournalEntry)>,
    len: usize,
}

impl DecodedChunk {
    fn new() -> DecodedChunk {
        DecodedChunk { entries: Vec::with_capacity(REPLAY_CHUNK_RECORDS), len: 0 }
    }

    fn records(&self) -> &[(u64, JournalEntry)] {
        &self.entries[..self.len]
    }

    fn decode(&mut self, seq: u64, payload: &[u8]) -> Result<(), StoreError> {
        let bad = |e: bincode::Error| StoreError::BadRecord { seq, reason: e.to_string() };
        match self.entries.get_mut(self.len) {
            Some(slot) => {
                slot.1.decode_into(payload).map_err(bad)?;
                slot.0 = seq;
            }
            None => self.entries.push((seq, JournalEntry::decode(payload).map_err(bad)?)),
        }
        self.len += 1;
        Ok(())
    }
}

/// The replay's helper thread: reads and decodes `records` into chunks, in order; sends the first
/// error after the records before it, then stops. Stops early if the replaying side has gone.
fn decode_chunks(
    mut records: JournalReader,
    chunks: &crossbeam_channel::Sender<Result<DecodedChunk, StoreError>>,
    spent: &crossbeam_channel::Receiver<DecodedChunk>,
) {
    let mut chunk = DecodedChunk::new();
    while let Some(record) = records.next_borrowed() {
        let decoded = record.map_err(StoreError::from).and_then(|(seq, payload)| chunk.decode(seq, payload));
        if let Err(e) = decoded {
            if chunk.len > 0 && chunks.send(Ok(chunk)).is_err() {
                return;
            }
            let _ = chunks.send(Err(e));
            return;
        }
        if chunk.len == REPLAY_CHUNK_RECORDS {
            let next = spent.try_recv().map_or_else(|_| DecodedChunk::new(), |spent| DecodedChunk { len: 0, ..spent });
            if chunks.send(Ok(std::mem::replace(&mut chunk, next))).is_err() {
                return;
            }
        }
    }
    if chunk.len > 0 {
        let _ = chunks.send(Ok(chunk));
    }
}

/// Writes a snapshot of `market` as the state after `seq`, and keeps the newest few.
pub fn snapshot(data_dir: &Path, seq: u64, market: &Market) -> Result<(), StoreError> {
    write_snapshot_bytes(data_dir, seq, &bincode::serialize(market).expect("market serialises"))
}

/// Writes an already serialised market (see `snapshot`): the part that does I/O, so the
/// sequencer can leave it to another thread.
pub fn write_snapshot_bytes(data_dir: &Path, seq: u64, bytes: &[u8]) -> Result<(), StoreError> {
    let dir = snapshot_dir(data_dir);
    write_snapshot(&dir, seq, bytes)?;
    crate::snapshot::prune_snapshots(&dir, SNAPSHOTS_KEPT)?;
    Ok(())
}

/// Older snapshots are kept as fallbacks in case the newest is damaged.
pub const SNAPSHOTS_KEPT: usize = 3;
