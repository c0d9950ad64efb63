//! The clearing thread and what makes it durable: feeds every sequencer output to `Clearing` (never
//! on the sequencer's path), hands each output and the market data it produced to a `Publisher`
//! (the public feed, which numbers them), moves settled days into the sled archive, snapshots
//! clearing together with the publisher's image at the same seqs as the market, and answers the
//! questions that read clearing (statements, `/api/*`, a new feed subscriber).
//!
//! Recovery: `recover` picks the newest seq at which both the market and clearing have a good
//! snapshot (genesis counts for both), and the sequencer replays the journal from there through
//! clearing and the publisher too (`replay_hook`), so all of them come back exactly as they were.
//! Nothing here reads a wall clock: what clearing publishes, and when, follows from the journal.

use crate::{Archive, Clearing, ClearingConfig, MarketData};
use crossbeam_channel::{bounded, Receiver, Sender};
use huashi_engine::core::fees::FeeSchedule;
use huashi_engine::event::Event;
use huashi_engine::sequencer::Output;
use huashi_engine::snapshot::{prune_snapshots, snapshot_at, snapshot_seqs, write_snapshot};
use huashi_engine::store::{self, JournalEntry};
use huashi_engine::types::Day;
use huashi_engine::types::EngineTime;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;

/// Outputs and questions that may wait for the clearing thread.
pub const CLEARING_QUEUE_MAX: usize = 65_536;
/// Clearing snapshots kept, like the market's.
const CLEARING_SNAPSHOTS_KEPT: usize = 3;

pub fn clearing_snapshot_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("clearing-snapshots")
}

/// What follows clearing on its thread: the public feed. It sees every output once, in seq
/// order, with the market data clearing made of it, and saves what it must keep across restarts
/// in clearing's snapshots.
pub trait Publisher: Send + 'static {
    /// Publishes output `output`'s public events, then `data`.
    fn publish(&mut self, output: &Output, data: &[MarketData]);
    /// What to save beside clearing in a snapshot taken now.
    fn image(&self) -> Vec<u8>;
}

/// A clearing snapshot: clearing and its publisher's image, taken after the same output. Its file
/// carries the engine's snapshot version (3 since issue 14, when clearing began keeping grade
/// scales, firms and seats, and presales; 4 since issue 15, when it began keeping participants'
/// names, corrections, dispatch lines and lot traces); one that does not decode is skipped for an
/// older point.
#[derive(Deserialize)]
struct ClearingImage {
    clearing: Clearing,
    publisher: Vec<u8>,
}

/// `ClearingImage` as written: borrowed, so a snapshot does not copy clearing first.
#[derive(Serialize)]
struct ClearingImageRef<'a> {
    clearing: &'a Clearing,
    publisher: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Snapshot(#[from] huashi_engine::snapshot::SnapshotError),
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error("archive: {0}")]
    Archive(String),
}

/// Clearing as recovered, the publisher's saved image (none: start it fresh), the seq the market
/// must be recovered from for all of them to agree, the archive, and the clearing snapshots that
/// could not be read (skipped for an older one).
pub struct Recovery {
    pub clearing: Clearing,
    pub publisher: Option<Vec<u8>>,
    pub start_at: u64,
    pub archive: Archive,
    pub skipped: Vec<String>,
}

/// `Recovery` without the archive, for reading a data directory that a server may be using.
pub struct RecoveryPoint {
    pub clearing: Clearing,
    pub publisher: Option<Vec<u8>>,
    pub start_at: u64,
    pub skipped: Vec<String>,
}

/// Chooses the common recovery point and loads clearing there. A new data directory starts
/// clearing with `fees` on the day the market will start; an existing one with the fees and day
/// its genesis market was born with (the config never decides what clearing computes).
pub fn recover(data_dir: &Path, fees: FeeSchedule, new_day: Day) -> Result<Recovery, ServiceError> {
    let RecoveryPoint { clearing, publisher, start_at, skipped } = recovery_point(data_dir, fees, new_day)?;
    let archive =
        Archive::open(crate::archive::archive_dir(data_dir)).map_err(|e| ServiceError::Archive(e.to_string()))?;
    Ok(Recovery { clearing, publisher, start_at, archive, skipped })
}

/// The newest point from which the market, clearing and the publisher can all be recovered, with
/// clearing and the publisher's image loaded there.
pub fn recovery_point(data_dir: &Path, fees: FeeSchedule, new_day: Day) -> Result<RecoveryPoint, ServiceError> {
    let market_points = store::recovery_points(data_dir)?;
    let dir = clearing_snapshot_dir(data_dir);
    let mut start_at = 0;
    let mut found = None;
    let mut skipped = Vec::new();
    for seq in snapshot_seqs(&dir)?.into_iter().rev() {
        if !market_points.contains(&seq) {
            continue;
        }
        if let Some(bytes) = snapshot_at(&dir, seq)? {
            match bincode::deserialize::<ClearingImage>(&bytes) {
                Ok(image) => {
                    found = Some(image);
                    start_at = seq;
                    break;
                }
                // An older point, or genesis, is slower to recover from, never wrong.
                Err(error) => skipped.push(format!("clearing snapshot after seq {seq}: {error}")),
            }
        }
    }
    let (clearing, publisher) = match found {
        Some(image) => (image.clearing, Some(image.publisher)),
        None => {
            let (fees, day) = store::genesis_market(data_dir)?.map_or((fees, new_day), |m| (m.config().fees, m.day()));
            (Clearing::new(ClearingConfig { fees }, day), None)
        }
    };
    Ok(RecoveryPoint { clearing, publisher, start_at, skipped })
}

/// Feeds one replayed or live output's events to clearing and archives a settled day.
pub fn feed(clearing: &mut Clearing, archive: &Archive, seq: u64, ts: EngineTime, events: &[Event]) -> Vec<MarketData> {
    let data = clearing.apply(seq, ts, events);
    while let Some(settled) = clearing.take_settled_day() {
        // The archive can always be rebuilt from the journal; a failed write is logged, not fatal.
        if let Err(error) = archive.write_day(&settled) {
            tracing::error!(day = %settled.day(), %error, "could not archive a settled day");
        }
    }
    while let Some(goods) = clearing.take_goods_day() {
        if let Err(error) = archive.write_goods_day(&goods) {
            tracing::error!(day = %goods.day, %error, "could not archive a day's goods");
        }
    }
    data
}

/// The replay hook for `Sequencer::start`: the outputs replayed after `after` go through clearing
/// and then to `publish` (seq, the events, the market data clearing made of them).
pub fn replay_hook<'a>(
    clearing: &'a mut Clearing,
    archive: &'a Archive,
    after: u64,
    mut publish: impl FnMut(u64, &[Event], &[MarketData]) + 'a,
) -> impl FnMut(u64, &JournalEntry, &[Event]) + 'a {
    move |seq, entry, events| {
        if seq > after {
            let data = feed(clearing, archive, seq, entry.ts, events);
            publish(seq, events, &data);
        }
    }
}

/// A question for the clearing thread: it runs there, with clearing, the archive and the
/// publisher, and answers through whatever channel it captured.
pub type Question<P> = Box<dyn FnOnce(&Clearing, &Archive, &mut P) + Send>;

/// The clearing thread's question side (outputs arrive through the fan-out's tap).
pub struct ClearingHandle<P> {
    questions: Sender<Question<P>>,
}

impl<P> Clone for ClearingHandle<P> {
    fn clone(&self) -> Self {
        ClearingHandle { questions: self.questions.clone() }
    }
}

impl<P> ClearingHandle<P> {
    /// Runs `question` on the clearing thread; false if clearing has stopped or is full.
    pub fn ask(&self, question: Question<P>) -> bool {
        self.questions.try_send(question).is_ok()
    }
}

/// Starts the clearing thread on `outputs` (every engine output, in seq order). The thread ends,
/// after a final snapshot, when the output sender is dropped. `panic_at_seq` is the
/// `HUASHI_FAULT` test hook: the thread panics as it takes that output (it only kills).
pub fn start<P: Publisher>(
    data_dir: PathBuf,
    clearing: Clearing,
    archive: Archive,
    publisher: P,
    outputs: Receiver<Arc<Output>>,
    panic_at_seq: Option<u64>,
) -> std::io::Result<(ClearingHandle<P>, JoinHandle<()>)> {
    let (questions, question_rx) = bounded(CLEARING_QUEUE_MAX);
    let thread = std::thread::Builder::new().name("clearing".into()).spawn(move || {
        let mut service = Service { data_dir, clearing, archive, publisher, panic_at_seq };
        service.run(outputs, question_rx)
    })?;
    Ok((ClearingHandle { questions }, thread))
}

struct Service<P> {
    data_dir: PathBuf,
    clearing: Clearing,
    archive: Archive,
    publisher: P,
    panic_at_seq: Option<u64>,
}

impl<P: Publisher> Service<P> {
    fn run(&mut self, outputs: Receiver<Arc<Output>>, questions: Receiver<Question<P>>) {
        loop {
            crossbeam_channel::select! {
                recv(outputs) -> output => match output {
                    Ok(output) => self.take(&output),
                    Err(_) => break,
                },
                recv(questions) -> question => {
                    if let Ok(question) = question {
                        // Read your writes: a participant asks after its reply, and the fan-out
                        // taps an output before it forwards a later question; `select!` picks a
                        // ready channel at random, so take every output already queued first.
                        // Only those queued now: a busy market must not keep the question waiting.
                        for output in outputs.try_iter().take(outputs.len()) {
                            self.take(&output);
                        }
                        question(&self.clearing, &self.archive, &mut self.publisher);
                    }
                },
            }
        }
        // The sequencer's shutdown snapshot is at the last seq it applied, which is the last output.
        if let Some(seq) = self.clearing.last_seq() {
            self.snapshot(seq);
        }
    }

    fn take(&mut self, output: &Output) {
        if self.panic_at_seq == Some(output.seq) {
            panic!("injected fault (HUASHI_FAULT): clearing panics taking output seq {}", output.seq);
        }
        let data = feed(&mut self.clearing, &self.archive, output.seq, output.ts, &output.events);
        self.publisher.publish(output, &data);
        if output.snapshot_taken {
            self.snapshot(output.seq);
        }
    }

    fn snapshot(&self, seq: u64) {
        let dir = clearing_snapshot_dir(&self.data_dir);
        let image = ClearingImageRef { clearing: &self.clearing, publisher: self.publisher.image() };
        let bytes = bincode::serialize(&image).expect("clearing serialises");
        if let Err(error) =
            write_snapshot(&dir, seq, &bytes).and_then(|_| prune_snapshots(&dir, CLEARING_SNAPSHOTS_KEPT))
        {
            // Recovery falls back to an older common point, or genesis: slower, never wrong.
            tracing::error!(seq, %error, "could not snapshot clearing");
        }
    }
}
