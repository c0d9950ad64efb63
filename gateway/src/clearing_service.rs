//! The clearing thread: feeds every sequencer output to `Clearing` (never on the sequencer's
//! path), moves settled days into the sled archive, snapshots clearing at the same seqs as the
//! market, hands the market data it produces (stats, index) back to the fan-out for the feed, and
//! answers the queries that read clearing (statements, `/api/*`).
//!
//! Recovery: `recover` picks the newest seq at which both the market and clearing have a good
//! snapshot (genesis counts for both), and the sequencer replays the journal from there through
//! clearing too, so both come back exactly as they were.

use crossbeam_channel::{bounded, Receiver, Sender};
use huashi_clearing::{Archive, Clearing, ClearingConfig, MarketData};
use huashi_engine::core::fees::FeeSchedule;
use huashi_engine::event::Event;
use huashi_engine::sequencer::Output;
use huashi_engine::snapshot::{prune_snapshots, snapshot_at, snapshot_seqs, write_snapshot};
use huashi_engine::store::{self, JournalEntry};
use huashi_engine::types::{Code, Day, EngineTime};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A read of clearing state, run on the clearing thread; it answers through a channel it captured.
pub type ClearingQuery = Box<dyn FnOnce(&Clearing, &Archive) + Send>;

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

/// The clearing thread's query side (outputs arrive through the fan-out's tap).
#[derive(Clone)]
pub struct ClearingHandle {
    queries: Sender<ClearingQuery>,
}

impl ClearingHandle {
    /// Runs `query` on the clearing thread; false if clearing has stopped or is full.
    pub fn ask(&self, query: ClearingQuery) -> bool {
        self.queries.try_send(query).is_ok()
    }
}

/// Starts the clearing thread on `outputs` (every engine output, in seq order). `publish` receives
/// the market data to put on the feed, in the order produced. The thread ends, after a final
/// snapshot, when the output sender is dropped. `panic_at_seq` is the `HUASHI_FAULT` test hook:
/// the thread panics as it takes that output.
pub fn start(
    data_dir: PathBuf,
    clearing: Clearing,
    archive: Archive,
    outputs: Receiver<Arc<Output>>,
    publish: impl Fn(Vec<MarketData>) + Send + 'static,
    panic_at_seq: Option<u64>,
) -> (ClearingHandle, JoinHandle<()>) {
    let (queries, query_rx) = bounded(CLEARING_QUEUE_MAX);
    let thread = std::thread::Builder::new()
        .name("clearing".into())
        .spawn(move || run(data_dir, clearing, archive, outputs, query_rx, publish, panic_at_seq))
        .expect("the clearing thread starts");
    (ClearingHandle { queries }, thread)
}

fn engine_now() -> EngineTime {
    EngineTime(SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64))
}

fn run(
    data_dir: PathBuf,
    mut clearing: Clearing,
    archive: Archive,
    outputs: Receiver<Arc<Output>>,
    queries: Receiver<ClearingQuery>,
    publish: impl Fn(Vec<MarketData>),
    panic_at_seq: Option<u64>,
) {
    loop {
        // Wake for held-back publications even when the market is quiet.
        let wait = clearing.next_publish_due().map_or(Duration::from_millis(250), |due| {
            Duration::from_micros(due.0.saturating_sub(engine_now().0)).min(Duration::from_millis(250))
        });
        let take = |clearing: &mut Clearing, output: Arc<Output>| {
            if panic_at_seq == Some(output.seq) {
                panic!("injected fault (HUASHI_FAULT): clearing panics taking output seq {}", output.seq);
            }
            let data = feed(clearing, &archive, output.seq, output.ts, &output.events);
            if !data.is_empty() {
                publish(data);
            }
            if output.snapshot_taken {
                snapshot(&data_dir, output.seq, clearing);
            }
        };
        crossbeam_channel::select! {
            recv(outputs) -> output => match output {
                Ok(output) => take(&mut clearing, output),
                Err(_) => break,
            },
            recv(queries) -> query => {
                if let Ok(query) = query {
                    // Read your writes: a participant asks after its reply, and the fan-out taps
                    // an output before it forwards a later question; `select!` picks a ready
                    // channel at random, so take every output already queued first.
                    // Only those queued now: a busy market must not keep the question waiting.
                    for output in outputs.try_iter().take(outputs.len()) {
                        take(&mut clearing, output);
                    }
                    query(&clearing, &archive);
                }
            },
            default(wait) => {
                let data = clearing.publish_due(engine_now());
                if !data.is_empty() {
                    publish(data);
                }
            }
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

/// `get_statement` from clearing: today's (or a settled day still in memory), else the archive's;
/// a day on which the participant had no activity is an empty statement; a day not yet begun is
/// `invalid_state`.
pub fn statement(clearing: &Clearing, archive: &Archive, participant: Code, day: Day) -> crate::fanout::QueryAnswer {
    use crate::fanout::QueryAnswer;
    use huashi_clearing::StatementLookup;
    use huashi_engine::reject::Reject;
    if day > clearing.day() {
        return QueryAnswer::Refused(Reject::invalid_state(format!("day {day} has not begun")));
    }
    let found = match clearing.statement(&participant, day) {
        StatementLookup::Found(statement) => Some(statement),
        StatementLookup::InArchive => match archive.statement(day, &participant) {
            Ok(found) => found,
            Err(error) => {
                let reject = Reject::new(huashi_engine::reject::RejectCode::Internal, format!("archive: {error}"));
                return QueryAnswer::Refused(reject);
            }
        },
        StatementLookup::NoActivity => None,
    };
    let statement = found.unwrap_or_else(|| huashi_clearing::Statement {
        participant,
        day,
        lines: Vec::new(),
        total_bought: rust_decimal::Decimal::ZERO,
        total_sold: rust_decimal::Decimal::ZERO,
        fees: rust_decimal::Decimal::ZERO,
        commission: rust_decimal::Decimal::ZERO,
        net: rust_decimal::Decimal::ZERO,
    });
    QueryAnswer::Statement(Box::new(statement))
}
