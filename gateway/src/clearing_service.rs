//! The clearing thread: feeds every sequencer output to `Clearing` (never on the sequencer's
//! path), moves settled days into the sled archive, snapshots clearing at the same seqs as the
//! market, hands the market data it produces (stats, index) back to the fan-out for the feed, and
//! answers the queries that read clearing (statements, `/api/*`).
//!
//! Recovery: `recover` picks the newest seq at which both the market and clearing have a good
//! snapshot (genesis counts for both), and the sequencer replays the journal from there through
//! clearing too, so both come back exactly as they were.

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender};
use huashi_clearing::{Archive, Clearing, ClearingConfig, MarketData};
use huashi_engine::core::fees::FeeSchedule;
use huashi_engine::event::Event;
use huashi_engine::sequencer::Output;
use huashi_engine::snapshot::{prune_snapshots, snapshot_at, snapshot_seqs, write_snapshot};
use huashi_engine::store::{self, JournalEntry};
use huashi_engine::types::{Day, EngineTime};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A read of clearing state, run on the clearing thread; it answers through a channel it captured.
pub type ClearingQuery = Box<dyn FnOnce(&Clearing, &Archive) + Send>;

pub enum ClearingMsg {
    Output(Arc<Output>),
    Query(ClearingQuery),
}

/// Outputs and queries that may wait for the clearing thread.
pub const CLEARING_QUEUE_MAX: usize = 65_536;
/// Clearing snapshots kept, like the market's.
const CLEARING_SNAPSHOTS_KEPT: usize = 3;

pub fn clearing_snapshot_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("clearing-snapshots")
}

pub fn archive_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("archive")
}

#[derive(Debug, thiserror::Error)]
pub enum ClearingServiceError {
    #[error("clearing snapshot after seq {seq} does not decode: {reason}")]
    BadSnapshot { seq: u64, reason: String },
    #[error(transparent)]
    Snapshot(#[from] huashi_engine::snapshot::SnapshotError),
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error("archive: {0}")]
    Archive(String),
}

/// Clearing as recovered, the seq the market must be recovered from for both to agree, and the
/// archive.
pub struct Recovery {
    pub clearing: Clearing,
    pub start_at: u64,
    pub archive: Archive,
}

/// Chooses the common recovery point and loads clearing there. A new data directory starts clearing
/// on the day the market will start.
pub fn recover(data_dir: &Path, fees: FeeSchedule, new_day: Day) -> Result<Recovery, ClearingServiceError> {
    let market_points = store::recovery_points(data_dir)?;
    let dir = clearing_snapshot_dir(data_dir);
    let mut start_at = 0;
    let mut clearing = None;
    for seq in snapshot_seqs(&dir)?.into_iter().rev() {
        if !market_points.contains(&seq) {
            continue;
        }
        if let Some(bytes) = snapshot_at(&dir, seq)? {
            let loaded: Clearing = bincode::deserialize(&bytes)
                .map_err(|e| ClearingServiceError::BadSnapshot { seq, reason: e.to_string() })?;
            clearing = Some(loaded);
            start_at = seq;
            break;
        }
    }
    let clearing = match clearing {
        Some(clearing) => clearing,
        None => {
            let day = store::genesis_market(data_dir)?.map_or(new_day, |m| m.day());
            Clearing::new(ClearingConfig { fees }, day)
        }
    };
    let archive = Archive::open(archive_dir(data_dir)).map_err(|e| ClearingServiceError::Archive(e.to_string()))?;
    Ok(Recovery { clearing, start_at, archive })
}

/// Feeds one replayed or live output to clearing and archives a settled day.
pub fn feed(clearing: &mut Clearing, archive: &Archive, seq: u64, ts: EngineTime, events: &[Event]) -> Vec<MarketData> {
    let data = clearing.apply(seq, ts, events);
    while let Some(settled) = clearing.take_settled_day() {
        // The archive can always be rebuilt from the journal; a failed write is logged, not fatal.
        if let Err(error) = archive.write_day(&settled) {
            tracing::error!(day = %settled.day(), %error, "could not archive a settled day");
        }
    }
    data
}

/// The replay hook for `Sequencer::start`: replayed outputs go through clearing too.
pub fn replay_hook<'a>(
    clearing: &'a mut Clearing,
    archive: &'a Archive,
    after: u64,
) -> impl FnMut(u64, &JournalEntry, &[Event]) + 'a {
    move |seq, entry, events| {
        if seq > after {
            feed(clearing, archive, seq, entry.ts, events);
        }
    }
}

pub struct ClearingService {
    pub input: Sender<ClearingMsg>,
    thread: Option<JoinHandle<()>>,
}

impl ClearingService {
    /// Starts the clearing thread. `publish` receives the market data to put on the feed, in the
    /// order produced.
    pub fn start(
        data_dir: PathBuf,
        clearing: Clearing,
        archive: Archive,
        publish: impl Fn(Vec<MarketData>) + Send + 'static,
    ) -> ClearingService {
        let (input, rx) = bounded(CLEARING_QUEUE_MAX);
        let thread = std::thread::Builder::new()
            .name("clearing".into())
            .spawn(move || run(data_dir, clearing, archive, rx, publish))
            .expect("the clearing thread starts");
        ClearingService { input, thread: Some(thread) }
    }

    /// Drops this sender and waits for the thread to drain its queue (once every other sender,
    /// such as the fan-out's, is gone too) and snapshot.
    pub fn join(self) {
        let ClearingService { input, thread } = self;
        drop(input);
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }
}

fn engine_now() -> EngineTime {
    EngineTime(SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64))
}

fn run(
    data_dir: PathBuf,
    mut clearing: Clearing,
    archive: Archive,
    input: Receiver<ClearingMsg>,
    publish: impl Fn(Vec<MarketData>),
) {
    loop {
        // Wake for held-back publications even when the market is quiet.
        let wait = clearing.next_publish_due().map_or(Duration::from_millis(250), |due| {
            Duration::from_micros(due.0.saturating_sub(engine_now().0)).min(Duration::from_millis(250))
        });
        match input.recv_timeout(wait) {
            Ok(ClearingMsg::Output(output)) => {
                let data = feed(&mut clearing, &archive, output.seq, output.ts, &output.events);
                if !data.is_empty() {
                    publish(data);
                }
                if output.snapshot_taken {
                    snapshot(&data_dir, output.seq, &clearing);
                }
            }
            Ok(ClearingMsg::Query(query)) => query(&clearing, &archive),
            Err(RecvTimeoutError::Timeout) => {
                let data = clearing.publish_due(engine_now());
                if !data.is_empty() {
                    publish(data);
                }
            }
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    // The sequencer's shutdown snapshot is at the last seq it applied, which is the last output.
    if let Some(seq) = clearing.last_seq() {
        snapshot(&data_dir, seq, &clearing);
    }
}

fn snapshot(data_dir: &Path, seq: u64, clearing: &Clearing) {
    let dir = clearing_snapshot_dir(data_dir);
    let bytes = bincode::serialize(clearing).expect("clearing serialises");
    if let Err(error) = write_snapshot(&dir, seq, &bytes).and_then(|_| prune_snapshots(&dir, CLEARING_SNAPSHOTS_KEPT)) {
        // Recovery falls back to an older common point, or genesis: slower, never wrong.
        tracing::error!(seq, %error, "could not snapshot clearing");
    }
}
