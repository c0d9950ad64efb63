//! The sequencer: the one thread that writes market state. It takes submissions off a bounded
//! queue, stamps each command with the engine time, applies each command to the `Market`, appends
//! the batch to the journal, syncs once (group commit), and only then hands the batch's outputs
//! on — a reply that reports a state change never leaves before the change is durable.
//!
//! The sync runs on a second thread, `journal-sync`, which then releases the batch's outputs, in
//! order: while the disk syncs batch k, the sequencer already applies and writes batch k+1. When
//! no submission waits and `journal-sync` is idle, there is no batch k+1 to overlap, and the
//! sequencer syncs and releases the batch itself, sparing the reply a thread wake-up. A query or
//! a snapshot sees the market as the sequencer has it, so before either the sequencer waits
//! until everything it applied is durable.
//!
//! It also wakes at the core's `next_wake()` and journals the `Tick` it applies, so a replay
//! needs no wall clock, and it snapshots the market every `snapshot_every` commands and on
//! shutdown.

use crate::batch_sink::SinkHandle;
use crate::command::{Action, ActionKind, Actor, Command};
use crate::core::look_ahead::AHEAD;
use crate::core::{Applied, Market, MarketConfig};
use crate::event::Event;
use crate::histogram::Histogram;
use crate::journal::{Durability, Journal, JournalError, PendingSync};
use crate::reject::Reject;
use crate::store::{self, JournalEntry, Recovered, StoreError, StoreOptions};
use crate::types::EngineTime;
use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender, TrySendError};
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A read-only look at the market, run on the sequencer thread once the batch it arrived in is
/// applied. It returns what delivers its answer, which runs on the `journal-sync` thread once
/// that batch is durable, after the batch's outputs: an answer never shows a state that a crash
/// could still take back, and a read never makes the sequencer wait for the disk.
pub type Query = Box<dyn FnOnce(&Market) -> Deliver + Send>;

/// Sends a query's answer (through whatever channel the query captured).
pub type Deliver = Box<dyn FnOnce() + Send>;

/// A look at the market that also needs the seq it belongs to (a state hash for `/health`):
/// run like a `Query`, with the last seq applied.
pub type Inspection = Box<dyn FnOnce(u64, &Market) -> Deliver + Send>;

/// What the gateway (and, on a follower, the replication consumer) puts on the queue.
pub enum Submission {
    /// `ticket` is the submitter's own tag, returned on the command's `Output`.
    Command {
        command: Command,
        ticket: u64,
    },
    Query(Query),
    Inspect(Inspection),
    /// A follower's: journal records the leader committed, framed as the journal frames them
    /// (see `batch_sink::ShippedRecords`). Each is checked, journaled byte for byte and applied
    /// at its own engine time, exactly as a replay would.
    Replicated(Vec<u8>),
    /// A follower takes over: from here on the sequencer stamps and journals commands itself.
    /// It first runs the restart rule (clocks that were auctioning are halted, journaled), as a
    /// market does after a restart; `then` runs once that is durable.
    Lead {
        then: Deliver,
    },
}

impl Submission {
    /// The command, if this is one.
    fn command(&self) -> Option<&Command> {
        match self {
            Submission::Command { command, .. } => Some(command),
            _ => None,
        }
    }
}

/// One applied command: its seq and time, the verdict, and every event (timers that fell due on
/// the way first, from `first_command_event` on the command's own).
#[derive(Debug)]
pub struct Output {
    pub seq: u64,
    pub ts: EngineTime,
    pub ticket: u64,
    pub actor: Actor,
    pub action: ActionKind,
    pub result: Result<(), Reject>,
    pub events: Vec<Event>,
    pub first_command_event: usize,
    /// A snapshot of the market right after this command was handed to the snapshot thread (see
    /// `store::snapshot`); it is on disk soon after, or recovery starts from an older one.
    pub snapshot_taken: bool,
    /// When the `journal-sync` thread took its batch, and when the batch was durable and
    /// released (the wall clock `ts` is read from, µs): with `ts`, where a reply's time went
    /// (`/metrics`).
    pub sync_started_us: u64,
    pub durable_us: u64,
}

impl Output {
    /// The output of command `seq`, applied at `ts`, before its batch is durable.
    fn of(seq: u64, ts: EngineTime, ticket: u64, command: &Command, applied: Applied, events: Vec<Event>) -> Output {
        Output {
            seq,
            ts,
            ticket,
            actor: command.actor,
            action: command.action.kind(),
            result: applied.result,
            events,
            first_command_event: applied.first_command_event,
            snapshot_taken: false,
            sync_started_us: 0,
            durable_us: 0,
        }
    }
}

#[derive(Clone, Debug)]
pub struct SequencerConfig {
    pub data_dir: PathBuf,
    pub durability: Durability,
    pub segment_bytes: u64,
    /// A snapshot is taken after this many commands (and on shutdown).
    pub snapshot_every: u64,
    /// Submissions that may wait; past this `try_submit` answers busy.
    pub queue_depth_max: usize,
    /// At most this many commands share one journal sync.
    pub batch_max: usize,
    /// Outputs that may wait for the consumer; the sequencer blocks past this.
    pub output_depth_max: usize,
    /// Recover from the snapshot after this seq (see `StoreOptions::start_at`); None: the newest.
    pub start_at: Option<u64>,
    /// Where each committed batch must also be durable before its replies leave (replication).
    pub sink: Option<SinkHandle>,
    /// Tests of what is fatal (`HUASHI_FAULT`): the sequencer thread panics when it stages the
    /// command that would get this seq, before applying it. It only kills; it never changes what
    /// the core decides.
    pub panic_at_seq: Option<u64>,
    /// A follower's sequencer applies only what it is sent as `Submission::Replicated`: it
    /// stamps nothing, runs no timers of its own and takes no commands, until `Submission::Lead`.
    pub follower: bool,
    /// Unit tests: every sync covering this seq or later fails.
    #[cfg(test)]
    fail_syncs_from: Option<u64>,
}

impl SequencerConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> SequencerConfig {
        SequencerConfig {
            data_dir: data_dir.into(),
            durability: Durability::Fsync,
            segment_bytes: crate::journal::SEGMENT_BYTES_DEFAULT,
            snapshot_every: 100_000,
            queue_depth_max: 65_536,
            batch_max: 1_024,
            output_depth_max: 65_536,
            start_at: None,
            sink: None,
            panic_at_seq: None,
            follower: false,
            #[cfg(test)]
            fail_syncs_from: None,
        }
    }
}

/// The wall clock in µs since the epoch (what `EngineClock` reads; the gateway times a reply's
/// stages on the same clock).
pub fn wall_us() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64)
}

/// The kernel's scheduling slice (ns) asked for by the threads a reply waits on: the shortest it
/// accepts (0.1 ms; the default is several ms).
const PROMPT_SLICE_NS: u64 = 100_000;

/// Asks the kernel to run the calling thread soon after it wakes, for the threads a reply waits
/// on (the sequencer, `journal-sync`, the fan-out, the sessions' runtime). A reply crosses four
/// threads; on two cores shared with the feed's writers (and, here, with compilers), each wake-up
/// used to wait up to a default slice of whatever held the core: that wait, not the work or the
/// disk, was the reply's tail. A short slice (EEVDF's per-task `sched_runtime`, Linux 6.12) makes
/// a woken thread preempt one that asked for a longer slice; it does not give the thread a
/// larger share of the CPU, and needs no privilege. Elsewhere (an older kernel, another OS) it
/// does nothing.
pub fn prefer_prompt_wakeups() {
    #[cfg(target_os = "linux")]
    {
        /// `struct sched_attr` as `sched_setattr(2)` takes it (the first version, 48 bytes).
        #[repr(C)]
        struct SchedAttr {
            size: u32,
            policy: u32,
            flags: u64,
            nice: i32,
            priority: u32,
            runtime: u64,
            deadline: u64,
            period: u64,
        }
        // The thread's own nice value, kept as it is (a failed read reads as 0, the default).
        // SAFETY: getpriority reads the calling thread's nice value.
        let nice = unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
        let attr = SchedAttr {
            size: std::mem::size_of::<SchedAttr>() as u32,
            policy: libc::SCHED_OTHER as u32,
            flags: 0,
            nice,
            priority: 0,
            runtime: PROMPT_SLICE_NS,
            deadline: 0,
            period: 0,
        };
        // SAFETY: sched_setattr on the calling thread (0) with a valid, fully initialised attr.
        let set = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0) };
        if set != 0 {
            tracing::debug!(error = %std::io::Error::last_os_error(), "no short scheduling slice for this thread");
        }
    }
}

/// The engine's clock: microseconds since the epoch, never running backwards.
#[derive(Default)]
pub struct EngineClock {
    last: u64,
}

impl EngineClock {
    pub fn now(&mut self) -> EngineTime {
        self.last = self.last.max(wall_us());
        EngineTime(self.last)
    }
}

/// The submitting side of the queue, cheap to clone.
#[derive(Clone)]
pub struct SequencerHandle {
    input: Sender<Submission>,
    sync_times: Arc<SyncTimes>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum SubmitError {
    /// The queue is full: answer the client busy, never block.
    Busy,
    /// The sequencer has stopped.
    Stopped,
}

impl SequencerHandle {
    /// How long the journal's syncs take (for `/metrics`).
    pub fn sync_times(&self) -> &SyncTimes {
        &self.sync_times
    }

    pub fn try_submit(&self, submission: Submission) -> Result<(), SubmitError> {
        self.input.try_send(submission).map_err(|e| match e {
            TrySendError::Full(_) => SubmitError::Busy,
            TrySendError::Disconnected(_) => SubmitError::Stopped,
        })
    }
    pub fn queue_depth(&self) -> usize {
        self.input.len()
    }
}

/// How the sequencer thread ended, sent once as it ends (see `Sequencer::ended`).
pub type Ending = Result<(), String>;

/// A running sequencer: the handle to submit, the outputs to consume, and the thread.
pub struct Sequencer {
    pub handle: SequencerHandle,
    pub outputs: Receiver<Output>,
    pub recovered: Recovered,
    /// The market as recovered, before the sequencer took it: for the gateway's first snapshot.
    pub initial: Arc<Market>,
    /// Carries one `Ending` when the thread ends: `Err` with the cause (a journal write or sync
    /// that failed, naming the file) the moment it stops, so a server can fail at once instead of
    /// at shutdown. Closed without a message: the thread panicked.
    pub ended: Receiver<Ending>,
    thread: Option<JoinHandle<Result<(), StoreError>>>,
    stop: Sender<()>,
}

impl Sequencer {
    /// Recovers the data directory and starts the writer thread. Clocks that were auctioning when
    /// the process stopped are halted by a journaled `HaltAllClocks`, so a second replay reaches
    /// the same state. `on_replay` sees every replayed command's events (to rebuild clearing).
    pub fn start(
        config: SequencerConfig,
        genesis: impl FnOnce() -> MarketConfig,
        on_replay: impl FnMut(u64, &JournalEntry, &[Event]),
    ) -> Result<Sequencer, StoreError> {
        let options = StoreOptions {
            durability: config.durability,
            segment_bytes: config.segment_bytes,
            start_at: config.start_at,
        };
        let (market, journal, recovered) = store::open(&config.data_dir, genesis, &options, on_replay)?;
        let (input_tx, input_rx) = bounded(config.queue_depth_max);
        let (output_tx, output_rx) = bounded(config.output_depth_max);
        let (stop_tx, stop_rx) = bounded(1);
        let snapshots = Some(SnapshotWriter::start(config.data_dir.clone())?);
        let sync_times = Arc::new(SyncTimes::new(&SYNC_BUCKETS_US));
        let syncer = Some(Syncer::start(output_tx.clone(), Arc::clone(&sync_times), config.sink.clone())?);
        let mut writer = Writer {
            outputs: output_tx,
            input_waiting: false,
            snapshots,
            syncer,
            sync_times: Arc::clone(&sync_times),
            seq: recovered.last_seq,
            since_snapshot: 0,
            market,
            journal,
            clock: EngineClock::default(),
            market_time: EngineTime(0),
            encoded: Vec::new(),
            window: VecDeque::with_capacity(AHEAD + 1),
            config,
        };
        // Clocks that were auctioning are halted before anyone can see the market. A follower's
        // journal is the leader's, so it halts nothing of its own until it leads.
        if !writer.config.follower {
            writer.halt_interrupted_clocks()?;
        }
        // `initial` is what the first feed snapshot shows: the halt must be durable first.
        writer.wait_synced(u64::MAX)?;
        let initial = Arc::new(writer.market.clone());
        let (ended_tx, ended) = bounded(1);
        let thread = std::thread::Builder::new()
            .name("sequencer".into())
            .spawn(move || {
                prefer_prompt_wakeups();
                let result = writer.run(input_rx, stop_rx);
                // Before the writer (and with it the journal-sync thread) is dropped: the cause
                // is known now, and nothing after the last synced batch was released.
                let _ = ended_tx.send(result.as_ref().map(|_| ()).map_err(|e| e.to_string()));
                result
            })
            .map_err(|e| StoreError::Other(format!("cannot start the sequencer thread: {e}")))?;
        Ok(Sequencer {
            handle: SequencerHandle { input: input_tx, sync_times },
            outputs: output_rx,
            recovered,
            initial,
            ended,
            thread: Some(thread),
            stop: stop_tx,
        })
    }

    /// Stops taking commands, finishes what is queued, snapshots and joins the thread.
    pub fn shutdown(mut self) -> Result<(), StoreError> {
        self.stop_and_join()
    }

    fn stop_and_join(&mut self) -> Result<(), StoreError> {
        let _ = self.stop.try_send(());
        match self.thread.take() {
            Some(thread) => {
                thread.join().unwrap_or_else(|_| Err(StoreError::Other("the sequencer thread panicked".into())))
            }
            None => Ok(()),
        }
    }
}

impl Drop for Sequencer {
    fn drop(&mut self) {
        let _ = self.stop_and_join();
    }
}

/// Writes periodic snapshots off the sequencer's path: the sequencer serialises the market (no
/// I/O) and hands the bytes over; the file write, sync and rename happen here. One snapshot in
/// flight at most: while one is being written the sequencer simply tries again after later
/// batches.
///
/// A periodic snapshot that cannot be written (a full disk) loses nothing: the journal still
/// holds every command, and recovery starts from an older snapshot. So it is a warning and the
/// thread goes on; the next one may succeed once space is freed. Only the journal is fatal.
struct SnapshotWriter {
    input: Sender<(u64, Vec<u8>)>,
    thread: JoinHandle<Result<(), StoreError>>,
}

impl SnapshotWriter {
    fn start(data_dir: PathBuf) -> Result<SnapshotWriter, StoreError> {
        let (input, rx) = bounded::<(u64, Vec<u8>)>(1);
        let thread = std::thread::Builder::new()
            .name("snapshots".into())
            .spawn(move || {
                for (seq, bytes) in rx {
                    if let Err(error) = store::write_snapshot_bytes(&data_dir, seq, &bytes) {
                        tracing::warn!(seq, %error, "could not write a market snapshot; recovery will replay more");
                    }
                }
                Ok(())
            })
            .map_err(|e| StoreError::Other(format!("cannot start the snapshot thread: {e}")))?;
        Ok(SnapshotWriter { input, thread })
    }

    /// Hands a snapshot over; false if the previous one is still being written.
    fn offer(&self, seq: u64, bytes: Vec<u8>) -> bool {
        self.input.try_send((seq, bytes)).is_ok()
    }

    /// Waits for the snapshot in flight; reports a write that failed.
    fn finish(self) -> Result<(), StoreError> {
        drop(self.input);
        self.thread.join().unwrap_or_else(|_| Err(StoreError::Other("the snapshot thread panicked".into())))
    }
}

/// How long the journal's `fdatasync`s take, for `/metrics`: a histogram in microseconds that the
/// `journal-sync` thread (and the sequencer, when it syncs inline) adds to and anyone may read.
pub type SyncTimes = Histogram<{ SYNC_BUCKETS_US.len() }>;

/// The upper bounds of `SyncTimes`' buckets, µs: a good disk syncs in 100 µs–1 ms.
pub const SYNC_BUCKETS_US: [u64; 12] =
    [100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 1_000_000];

/// `sync`, timed into `times`.
fn timed_sync(sync: &PendingSync, times: &SyncTimes) -> Result<u64, JournalError> {
    let started = Instant::now();
    let synced = sync.sync();
    times.record_duration(started.elapsed());
    synced
}

/// Makes one batch durable: the local sync and, with a sink, the shipping, at the same time (a
/// batch waits for the slower of the two, not for their sum). Both must succeed before its
/// outputs are released; a batch shipped but not synced is never acknowledged either (the sync's
/// failure stops the sequencer).
fn make_durable(job: &mut SyncJob, times: &SyncTimes, shipper: Option<&Shipping>) -> Result<(), JournalError> {
    let shipping = match shipper {
        Some(shipper) if !job.records.is_empty() => {
            shipper.start_batch(job.first_seq, job.seq, std::mem::take(&mut job.records));
            Some(shipper)
        }
        _ => None,
    };
    let synced = job.sync.as_ref().map_or(Ok(()), |sync| timed_sync(sync, times).map(drop));
    let shipped = shipping.map_or(Ok(()), |shipper| {
        shipper.finish().map_err(|reason| JournalError::NotShipped { first: job.first_seq, last: job.seq, reason })
    });
    synced.and(shipped)
}

/// The `journal-ship` thread: ships each batch the `journal-sync` thread hands it while that one
/// syncs the same batch, and answers when the sink has it.
struct Shipping {
    batches: Sender<(u64, u64, Vec<u8>)>,
    shipped: Receiver<Result<(), String>>,
}

impl Shipping {
    fn start(sink: SinkHandle) -> Result<Shipping, StoreError> {
        let (batches, batches_rx) = bounded::<(u64, u64, Vec<u8>)>(1);
        let (shipped_tx, shipped) = bounded(1);
        std::thread::Builder::new()
            .name("journal-ship".into())
            .spawn(move || {
                // Ends when `journal-sync` drops its sender, or the sink fails (nothing more ships).
                for (first, last, records) in batches_rx {
                    let result = sink.ship(first, last, &records);
                    let failed = result.is_err();
                    if shipped_tx.send(result).is_err() || failed {
                        return;
                    }
                }
            })
            .map_err(|e| StoreError::Other(format!("cannot start the journal ship thread: {e}")))?;
        Ok(Shipping { batches, shipped })
    }

    fn start_batch(&self, first: u64, last: u64, records: Vec<u8>) {
        // A thread that stopped after a failure is reported by `finish`.
        let _ = self.batches.send((first, last, records));
    }

    fn finish(&self) -> Result<(), String> {
        self.shipped.recv().unwrap_or_else(|_| Err("the journal ship thread stopped".into()))
    }
}

/// One batch handed to the `journal-sync` thread: the sync that makes it durable (none if it
/// already is, or the journal does not sync), then its outputs to release.
struct SyncJob {
    sync: Option<PendingSync>,
    /// The batch's journal records as framed on disk, for the sink (empty without one), and the
    /// seq of the first.
    records: Vec<u8>,
    first_seq: u64,
    outputs: Vec<Output>,
    /// The answers of the batch's queries, delivered after its outputs.
    answers: Vec<Deliver>,
    /// The last seq of the batch.
    seq: u64,
}

/// The `journal-sync` thread: syncs each batch, then releases its outputs, in the order given.
/// After a failed sync it releases nothing more: it reports the failure and stops.
struct Syncer {
    jobs: Sender<SyncJob>,
    /// The seq of each finished job, in order, or the failure that stopped the thread.
    done: Receiver<Result<u64, JournalError>>,
    thread: JoinHandle<()>,
    /// The last seq handed over, and the last one reported done.
    submitted_seq: u64,
    done_seq: u64,
}

/// Batches the sequencer may hand over before it waits for the disk: one syncing, one queued.
/// More would only add latency, since a queued batch is synced by the same call as the next.
const SYNC_JOBS_QUEUED_MAX: usize = 1;

impl Syncer {
    fn start(outputs: Sender<Output>, times: Arc<SyncTimes>, sink: Option<SinkHandle>) -> Result<Syncer, StoreError> {
        let (jobs, jobs_rx) = bounded::<SyncJob>(SYNC_JOBS_QUEUED_MAX);
        let (done_tx, done) = crossbeam_channel::unbounded();
        let shipping = sink.map(Shipping::start).transpose()?;
        let thread = std::thread::Builder::new()
            .name("journal-sync".into())
            .spawn(move || {
                prefer_prompt_wakeups();
                for mut job in jobs_rx {
                    let sync_started_us = wall_us();
                    if let Err(e) = make_durable(&mut job, &times, shipping.as_ref()) {
                        let _ = done_tx.send(Err(e));
                        return;
                    }
                    let seq = job.seq;
                    release(job, &outputs, sync_started_us);
                    let _ = done_tx.send(Ok(seq));
                }
            })
            .map_err(|e| StoreError::Other(format!("cannot start the journal sync thread: {e}")))?;
        Ok(Syncer { jobs, done, thread, submitted_seq: 0, done_seq: 0 })
    }

    fn finish(self) {
        drop(self.jobs);
        let _ = self.thread.join();
    }
}

/// Hands a durable batch's outputs on, then runs its queries' answers, in that order.
fn release(job: SyncJob, outputs: &Sender<Output>, sync_started_us: u64) {
    let durable_us = wall_us();
    for mut output in job.outputs {
        (output.sync_started_us, output.durable_us) = (sync_started_us, durable_us);
        // The consumer went away: the server is stopping; the state is durable.
        let _ = outputs.send(output);
    }
    for deliver in job.answers {
        deliver();
    }
}

struct Writer {
    config: SequencerConfig,
    /// Where a batch synced on this thread releases its outputs (see `sync_here`).
    outputs: Sender<Output>,
    /// More submissions were waiting when the batch being committed was closed.
    input_waiting: bool,
    snapshots: Option<SnapshotWriter>,
    syncer: Option<Syncer>,
    sync_times: Arc<SyncTimes>,
    market: Market,
    journal: Journal,
    seq: u64,
    since_snapshot: u64,
    clock: EngineClock,
    /// The latest engine time applied (a follower's come from the leader's records).
    market_time: EngineTime,
    encoded: Vec<u8>,
    /// Submissions received and not yet taken (`take_waiting`): the commands look-ahead sees.
    window: VecDeque<Submission>,
}

/// The longest the writer sleeps without a deadline: it also checks for the stop signal.
const IDLE_WAKE: Duration = Duration::from_millis(50);

impl Writer {
    /// After a restart: a journaled `HaltAllClocks` if any clock was auctioning when it stopped.
    fn halt_interrupted_clocks(&mut self) -> Result<(), StoreError> {
        if self.market.clocks().iter().any(|c| c.phase != crate::core::clock::ClockPhase::Idle) {
            let mut batch = Batch::default();
            let halt = Command::new(Actor::System, Action::HaltAllClocks);
            self.stage(halt, 0, &mut batch)?;
            self.commit(batch)?;
        }
        Ok(())
    }

    fn run(&mut self, input: Receiver<Submission>, stop: Receiver<()>) -> Result<(), StoreError> {
        let mut batch = Batch::default();
        loop {
            // A failed sync stops the sequencer now, not at the next command it would take.
            self.note_synced()?;
            if stop.try_recv().is_ok() {
                // Drain what was already accepted, then stop.
                while let Ok(submission) = input.try_recv() {
                    self.take(submission, &mut batch)?;
                }
                self.commit(std::mem::take(&mut batch))?;
                break;
            }
            let wait = self.until_deadline();
            match input.recv_timeout(wait) {
                Ok(first) => self.take_waiting(first, &input, &mut batch)?,
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    self.commit(std::mem::take(&mut batch))?;
                    break;
                }
            }
            self.input_waiting = !input.is_empty();
            // A timer that fell due with no command to carry it gets a journaled Tick (a
            // follower gets the leader's).
            if batch.commands == 0 && !self.config.follower {
                if let Some(deadline) = self.market.next_wake() {
                    if deadline <= self.clock.now() {
                        self.stage(Command::tick(), 0, &mut batch)?;
                    }
                }
            }
            self.commit(std::mem::take(&mut batch))?;
        }
        self.wait_synced(self.seq)?;
        if let Some(syncer) = self.syncer.take() {
            syncer.finish();
        }
        if let Some(snapshots) = self.snapshots.take() {
            snapshots.finish()?;
        }
        store::snapshot(&self.config.data_dir, self.seq, &self.market)?;
        self.journal.commit()?;
        Ok(())
    }

    /// Serialises the market and hands it to the snapshot thread; false if that one is busy.
    fn offer_snapshot(&mut self) -> bool {
        let snapshots = self.snapshots.as_ref().expect("the snapshot thread runs until shutdown");
        if snapshots.input.is_full() {
            return false; // do not serialise a snapshot that would be thrown away
        }
        let bytes = bincode::serialize(&self.market).expect("market serialises");
        snapshots.offer(self.seq, bytes)
    }

    /// How long to wait for input before the core's next timer falls due.
    fn until_deadline(&mut self) -> Duration {
        if self.config.follower {
            return IDLE_WAKE;
        }
        let now = self.clock.now();
        match self.market.next_wake() {
            Some(deadline) if deadline <= now => Duration::ZERO,
            Some(deadline) => Duration::from_micros(deadline.0 - now.0).min(IDLE_WAKE),
            None => IDLE_WAKE,
        }
    }

    /// Takes `first` and what else is waiting, in order, until the batch is full. While a book
    /// is deep, each command is applied with the next few already received in view
    /// (`Market::look_ahead`), so that the cache misses of their orders overlap with its work:
    /// the window is filled before the command is taken, never past the batch's room.
    fn take_waiting(
        &mut self,
        first: Submission,
        input: &Receiver<Submission>,
        batch: &mut Batch,
    ) -> Result<(), StoreError> {
        let mut window = std::mem::take(&mut self.window);
        window.push_back(first);
        // Once a batch: whether any book is deep changes slowly, and a shallow market pays
        // nothing more per command.
        let looks_ahead = self.market.looks_ahead();
        let taken = loop {
            // Each submission in the window is at least one command, or a query that costs none.
            while window.len() <= AHEAD && batch.commands + window.len() < self.config.batch_max {
                match input.try_recv() {
                    Ok(next) => window.push_back(next),
                    Err(_) => break,
                }
            }
            let Some(submission) = window.pop_front() else { break Ok(()) };
            if looks_ahead {
                self.market.look_ahead(window.iter().filter_map(Submission::command));
            }
            if let Err(e) = self.take(submission, batch) {
                break Err(e);
            }
        };
        // After an error the sequencer stops; what was received and not taken goes with it, as
        // what was still in the channel does.
        window.clear();
        self.window = window;
        taken
    }

    fn take(&mut self, submission: Submission, batch: &mut Batch) -> Result<(), StoreError> {
        match submission {
            Submission::Command { command, ticket } if self.config.follower => {
                // The gateway refuses commands on a follower before they get here; one that
                // slipped through is dropped rather than fork the leader's history.
                tracing::error!(ticket, action = ?command.action.kind(), "a follower was sent a command; dropped");
                Ok(())
            }
            Submission::Command { command, ticket } => self.stage(command, ticket, batch),
            Submission::Query(query) => {
                batch.queries.push(query);
                Ok(())
            }
            Submission::Inspect(inspection) => {
                batch.inspections.push(inspection);
                Ok(())
            }
            Submission::Replicated(records) => self.stage_replicated(&records, batch),
            Submission::Lead { then } => {
                self.commit(std::mem::take(batch))?;
                self.config.follower = false;
                // The engine time never runs backwards past what the old leader stamped.
                self.clock.last = self.clock.last.max(self.market_time.0);
                self.halt_interrupted_clocks()?;
                batch.answers.push(then);
                Ok(())
            }
        }
    }

    /// A follower's: applies and journals records the leader committed, checking each one's CRC
    /// and that the seqs follow on from the journal's with no gap.
    fn stage_replicated(&mut self, records: &[u8], batch: &mut Batch) -> Result<(), StoreError> {
        if !self.config.follower {
            return Err(StoreError::Other("a leader was sent replicated records".into()));
        }
        // Decoded before any is applied, up to the first bad one, so that each command is
        // applied with the ones after it in view (`Market::look_ahead`), as the leader applied
        // them; the records before a bad one are still applied and journaled first.
        let mut decoded = Vec::new();
        let mut bad = None;
        for record in crate::batch_sink::ShippedRecords::new(records) {
            let entry = record.map_err(StoreError::Other).and_then(|(seq, payload)| {
                let entry =
                    JournalEntry::decode(payload).map_err(|e| StoreError::BadRecord { seq, reason: e.to_string() })?;
                Ok((seq, payload, entry))
            });
            match entry {
                Ok(entry) => decoded.push(entry),
                Err(e) => {
                    bad = Some(e);
                    break;
                }
            }
        }
        let looks_ahead = self.market.looks_ahead();
        for (i, (seq, payload, entry)) in decoded.iter().enumerate() {
            let seq = *seq;
            if seq != self.seq + 1 {
                return Err(StoreError::Other(format!(
                    "replicated record {seq} does not follow the journal's last, {}",
                    self.seq
                )));
            }
            if looks_ahead {
                self.market.look_ahead(decoded[i + 1..].iter().map(|(_, _, later)| &later.command));
            }
            let mut events = Vec::with_capacity(EVENTS_PER_COMMAND_TYPICAL);
            let applied = self.market.apply(&entry.command, entry.ts, &mut events);
            self.market_time = self.market_time.max(entry.ts);
            self.seq = seq;
            self.journal.append(seq, payload)?;
            batch.commands += 1;
            self.since_snapshot += 1;
            batch.outputs.push(Output::of(seq, entry.ts, 0, &entry.command, applied, events));
        }
        bad.map_or(Ok(()), Err)
    }

    /// Applies one command and journals it (buffered); its output waits for the batch's sync.
    /// Rejected commands are journaled too: the market's rejections are deterministic, and the
    /// command still moved the engine time and may have run timers on its way.
    fn stage(&mut self, command: Command, ticket: u64, batch: &mut Batch) -> Result<(), StoreError> {
        if self.config.panic_at_seq == Some(self.seq + 1) {
            panic!("injected fault (HUASHI_FAULT): the sequencer panics staging seq {}", self.seq + 1);
        }
        let ts = self.clock.now();
        // Room for the usual few events, so most commands allocate once for them.
        let mut events = Vec::with_capacity(EVENTS_PER_COMMAND_TYPICAL);
        let applied = self.market.apply(&command, ts, &mut events);
        self.seq += 1;
        let entry = JournalEntry { ts, command };
        entry.encode_into(&mut self.encoded);
        self.journal.append(self.seq, &self.encoded)?;
        if self.config.sink.is_some() {
            if batch.records.is_empty() {
                batch.first_seq = self.seq;
            }
            crate::journal::format::encode_record(&mut batch.records, self.seq, &self.encoded);
        }
        batch.commands += 1;
        self.since_snapshot += 1;
        batch.outputs.push(Output::of(self.seq, ts, ticket, &entry.command, applied, events));
        Ok(())
    }

    /// The group-commit point: the batch is written and its sync handed to `journal-sync`, which
    /// releases the outputs and the queries' answers once it is durable. Only a snapshot, which
    /// must hold nothing a crash could take back, waits for the disk here.
    fn commit(&mut self, mut batch: Batch) -> Result<(), StoreError> {
        let mut sync = if batch.commands > 0 { self.journal.write_for_sync()? } else { None };
        #[cfg(test)]
        if let (Some(from), Some(pending)) = (self.config.fail_syncs_from, sync.take()) {
            sync = Some(if pending.seq() >= from { pending.failing() } else { pending });
        }
        let snapshot_due = self.since_snapshot >= self.config.snapshot_every;
        if snapshot_due {
            // The snapshot holds the market as applied so far, which must all be durable first.
            self.wait_synced(u64::MAX)?;
            if let Some(sync) = sync.take() {
                // Synced here, but its outputs still go through `journal-sync` (in order), which
                // reports the batch done once they are released.
                match timed_sync(&sync, &self.sync_times) {
                    Ok(seq) => self.journal.synced(seq),
                    Err(e) => {
                        self.journal.poison();
                        return Err(e.into());
                    }
                }
            }
        }
        if snapshot_due && self.offer_snapshot() {
            self.since_snapshot = 0;
            // Downstream state (clearing) snapshots itself at the same seq when it gets here, so
            // recovery can start both from one point.
            if let Some(last) = batch.outputs.last_mut() {
                last.snapshot_taken = true;
            }
        }
        let mut answers: Vec<Deliver> = batch.queries.into_iter().map(|query| query(&self.market)).collect();
        answers.extend(batch.inspections.into_iter().map(|inspect| inspect(self.seq, &self.market)));
        answers.extend(batch.answers);
        if sync.is_some() || !batch.outputs.is_empty() || !answers.is_empty() {
            let (records, first_seq) = (batch.records, batch.first_seq);
            let job = SyncJob { sync, records, first_seq, outputs: batch.outputs, answers, seq: self.seq };
            if self.sync_here()? {
                self.sync_inline(job)?;
            } else {
                self.hand_over(job)?;
            }
        }
        self.note_synced()
    }

    /// Whether to make a batch durable on this thread rather than hand it to `journal-sync`:
    /// when that thread has nothing in flight and no more submissions wait. The hand-over is a
    /// thread wake-up on every reply's path; the overlap it buys (applying batch k + 1 while
    /// batch k syncs) pays only when there is a batch k + 1, i.e. when submissions wait. Not with
    /// a sink, whose shipping runs beside the `journal-sync` thread.
    fn sync_here(&mut self) -> Result<bool, StoreError> {
        if self.input_waiting || self.config.sink.is_some() {
            return Ok(false);
        }
        self.note_synced()?;
        Ok(self.syncer.as_ref().is_some_and(|s| s.done_seq >= s.submitted_seq))
    }

    /// Syncs `job` here and releases its outputs (nothing is in flight on `journal-sync`, so
    /// they still leave in seq order); a failed sync releases nothing and stops the sequencer.
    fn sync_inline(&mut self, mut job: SyncJob) -> Result<(), StoreError> {
        let sync_started_us = wall_us();
        if let Err(e) = make_durable(&mut job, &self.sync_times, None) {
            self.journal.poison();
            return Err(e.into());
        }
        self.journal.synced(job.seq);
        release(job, &self.outputs, sync_started_us);
        Ok(())
    }

    fn syncer(&mut self) -> &mut Syncer {
        self.syncer.as_mut().expect("the sync thread runs until shutdown")
    }

    fn hand_over(&mut self, job: SyncJob) -> Result<(), StoreError> {
        let seq = job.seq;
        if self.syncer().jobs.send(job).is_err() {
            // The thread stopped after a failed sync; its report says why.
            self.wait_synced(u64::MAX)?;
            self.journal.poison();
            return Err(StoreError::Other("the journal sync thread stopped".into()));
        }
        self.syncer().submitted_seq = seq;
        Ok(())
    }

    /// Takes note of the syncs finished so far, without waiting.
    fn note_synced(&mut self) -> Result<(), StoreError> {
        while let Ok(done) = self.syncer().done.try_recv() {
            self.after_sync(done)?;
        }
        Ok(())
    }

    /// Waits until every batch handed over up to `seq` is durable and its outputs released
    /// (`u64::MAX`: every batch handed over).
    fn wait_synced(&mut self, seq: u64) -> Result<(), StoreError> {
        while self.syncer.as_ref().is_some_and(|s| s.done_seq < seq.min(s.submitted_seq)) {
            // A closed channel means the thread is gone without a report: treat it as a failure.
            let done = self.syncer().done.recv().unwrap_or(Err(JournalError::Poisoned));
            self.after_sync(done)?;
        }
        Ok(())
    }

    fn after_sync(&mut self, done: Result<u64, JournalError>) -> Result<(), StoreError> {
        match done {
            Ok(seq) => {
                self.journal.synced(seq);
                let syncer = self.syncer();
                syncer.done_seq = syncer.done_seq.max(seq);
                Ok(())
            }
            Err(e) => {
                // What reached the disk is unknown: accept nothing more (see `JournalError::Poisoned`).
                self.journal.poison();
                Err(e.into())
            }
        }
    }
}

/// Most commands emit at most this many events (the command's own, a level, a fill or two).
const EVENTS_PER_COMMAND_TYPICAL: usize = 4;

#[derive(Default)]
struct Batch {
    commands: usize,
    /// The batch's journal records, framed, when a sink needs them; `first_seq` is the first's.
    records: Vec<u8>,
    first_seq: u64,
    outputs: Vec<Output>,
    queries: Vec<Query>,
    inspections: Vec<Inspection>,
    /// Run once the batch is durable, after its outputs (e.g. `Submission::Lead`'s `then`).
    answers: Vec<Deliver>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::Roles;
    use crate::types::{Code, Day, Fen};
    use std::time::Duration;

    fn register(n: u64) -> Command {
        Command::new(
            Actor::Operator,
            Action::RegisterParticipant {
                id: Code::parse(&format!("g{n}"), Code::BYTES_MAX).expect("a valid id"),
                name: format!("grower {n}"),
                roles: Roles { operator: false, grower: true, buyer: false, logistics: false },
                credit_limit: Fen(0),
                token_hash: [n as u8; 32],
                firm: None,
                daily_limit: None,
            },
        )
    }

    /// A deep market (books past `LOOK_AHEAD_MIN`) through the sequencer, which applies each
    /// command with the next few it holds in view (`Market::look_ahead`), decides command for
    /// command what a market applying them one at a time decides; and its replay from genesis,
    /// which looks ahead over each chunk, ends in the state the sequencer left.
    #[test]
    fn a_deep_market_decides_the_same_with_look_ahead_live_and_in_replay() {
        use crate::core::look_ahead::tests::{config, day};
        let commands = day(0xdee9_0001);
        let mut by_hand = Market::new(config());
        let expected: Vec<bool> =
            commands.iter().map(|c| by_hand.apply(c, EngineTime(1), &mut Vec::new()).result.is_ok()).collect();

        let dir = tempfile::tempdir().unwrap();
        let mut sequencer_config = SequencerConfig::new(dir.path());
        sequencer_config.durability = Durability::None;
        let sequencer = Sequencer::start(sequencer_config, config, |_, _, _| {}).expect("starts");
        let mut got = vec![None; commands.len()];
        let take =
            |got: &mut Vec<Option<bool>>, output: Output| got[output.ticket as usize] = Some(output.result.is_ok());
        for (ticket, command) in commands.iter().enumerate() {
            let submission = || Submission::Command { command: command.clone(), ticket: ticket as u64 };
            // A full queue waits for the sequencer, whose outputs are taken meanwhile.
            while let Err(error) = sequencer.handle.try_submit(submission()) {
                assert_eq!(error, SubmitError::Busy, "the sequencer stopped");
                if let Ok(output) = sequencer.outputs.recv_timeout(Duration::from_millis(100)) {
                    take(&mut got, output);
                }
            }
        }
        while got.iter().any(Option::is_none) {
            let output = sequencer.outputs.recv_timeout(Duration::from_secs(30)).expect("every command is answered");
            take(&mut got, output);
        }
        let got: Vec<bool> = got.into_iter().map(|ok| ok.expect("answered")).collect();
        let differs = got.iter().zip(&expected).position(|(a, b)| a != b);
        assert_eq!(differs, None, "the sequencer decided differently at command {differs:?}");
        assert!(got.iter().filter(|ok| !**ok).count() > 100, "some commands are refused (ids of gone orders)");
        sequencer.shutdown().expect("stops cleanly");

        let (last, _) = store::read_only_market(dir.path(), false).expect("the final snapshot loads");
        let (replayed, _) = store::read_only_market(dir.path(), true).expect("the journal replays");
        let deep = replayed.listings().values().filter(|listing| listing.book.looks_ahead()).count();
        assert_eq!(deep, 2, "both books are deep enough to look ahead");
        assert_eq!(replayed.state_hash(), last.state_hash(), "replay ends where the sequencer did");
    }

    /// A disk that fails to sync: nothing of that batch or after is released, the sequencer
    /// stops with the error instead of hanging, and what was released before stands.
    #[test]
    fn a_failed_sync_releases_nothing_more_and_stops_the_sequencer() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = SequencerConfig::new(dir.path());
        config.fail_syncs_from = Some(3);
        let genesis = || MarketConfig::new(Day::parse("2026-11-29").unwrap());
        let sequencer = Sequencer::start(config, genesis, |_, _, _| {}).expect("starts");
        for n in 1..=2 {
            sequencer.handle.try_submit(Submission::Command { command: register(n), ticket: n }).unwrap();
            let output = sequencer.outputs.recv_timeout(Duration::from_secs(10)).expect("a synced batch is released");
            assert_eq!((output.seq, output.ticket), (n, n));
        }
        let read = sequencer.handle.sync_times().read();
        let (buckets, syncs) = (read.buckets, read.count);
        assert_eq!(syncs, 2, "each released batch was synced once, and timed");
        assert!(buckets.iter().sum::<u64>() <= syncs);
        sequencer.handle.try_submit(Submission::Command { command: register(3), ticket: 3 }).unwrap();
        // The cause is reported the moment the thread stops, naming the file, not at shutdown.
        match sequencer.ended.recv_timeout(Duration::from_secs(10)) {
            Ok(Err(reason)) => {
                assert!(reason.contains("journal sync failed"), "{reason}");
                assert!(reason.contains("injected fdatasync failure") && reason.contains(".log"), "{reason}");
            }
            other => panic!("expected the sequencer to report the failed sync, got {other:?}"),
        }
        // The sequencer stops: its outputs channel closes without ever carrying seq 3.
        match sequencer.outputs.recv_timeout(Duration::from_secs(10)) {
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {}
            other => panic!("expected the outputs to end after the failed sync, got {other:?}"),
        }
        // It notices without being sent anything more, and then takes nothing.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while sequencer.handle.try_submit(Submission::Query(Box::new(|_| Box::new(|| {})))) != Err(SubmitError::Stopped)
        {
            assert!(std::time::Instant::now() < deadline, "the sequencer still takes submissions");
            std::thread::sleep(Duration::from_millis(10));
        }
        let error = sequencer.shutdown().expect_err("shutdown reports the failed sync");
        assert!(error.to_string().contains("injected fdatasync failure"), "{error}");
    }

    /// `panic_at_seq` (HUASHI_FAULT) kills the thread before the command is applied or
    /// journaled: what was released before stands, and the thread ends without a report, which
    /// is how a server tells a panic from a clean stop.
    #[test]
    fn an_injected_panic_ends_the_thread_without_a_report_and_journals_nothing_more() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = SequencerConfig::new(dir.path());
        config.panic_at_seq = Some(3);
        let genesis = || MarketConfig::new(Day::parse("2026-11-29").unwrap());
        let sequencer = Sequencer::start(config, genesis, |_, _, _| {}).expect("starts");
        for n in 1..=2 {
            sequencer.handle.try_submit(Submission::Command { command: register(n), ticket: n }).unwrap();
            let output = sequencer.outputs.recv_timeout(Duration::from_secs(10)).expect("released before the panic");
            assert_eq!(output.seq, n);
        }
        sequencer.handle.try_submit(Submission::Command { command: register(3), ticket: 3 }).unwrap();
        match sequencer.ended.recv_timeout(Duration::from_secs(10)) {
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {}
            other => panic!("a panicked sequencer sends no ending, got {other:?}"),
        }
        let error = sequencer.shutdown().expect_err("shutdown reports the panic");
        assert!(error.to_string().contains("panicked"), "{error}");
        let journaled = crate::journal::Journal::read_after(&crate::store::journal_dir(dir.path()), 0)
            .unwrap()
            .map(|r| r.unwrap().0)
            .collect::<Vec<_>>();
        assert_eq!(journaled, vec![1, 2], "seq 3 was never journaled");
    }

    /// A query looks at the market as applied, which its batch's sync has not yet made durable:
    /// its answer must wait for that sync, and never come if the sync fails.
    #[test]
    fn a_query_answers_only_after_the_state_it_saw_is_durable() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = SequencerConfig::new(dir.path());
        config.fail_syncs_from = Some(1);
        let genesis = || MarketConfig::new(Day::parse("2026-11-29").unwrap());
        let sequencer = Sequencer::start(config, genesis, |_, _, _| {}).expect("starts");
        let (tx, rx) = std::sync::mpsc::channel();
        sequencer.handle.try_submit(Submission::Command { command: register(1), ticket: 1 }).unwrap();
        let query: Query = Box::new(move |market: &Market| {
            let participants = market.participants().len();
            Box::new(move || tx.send(participants).unwrap())
        });
        sequencer.handle.try_submit(Submission::Query(query)).unwrap();
        let answer = rx.recv_timeout(Duration::from_secs(2));
        assert!(answer.is_err(), "a query answered {answer:?} from a state whose sync failed");
        assert!(sequencer.shutdown().is_err());
    }

    /// What a `Recorder` was shipped: (first seq, last seq, records) per batch.
    type Shipped = Arc<std::sync::Mutex<Vec<(u64, u64, Vec<u8>)>>>;

    /// Records what it is shipped; fails every batch reaching `fail_from`.
    struct Recorder {
        shipped: Shipped,
        fail_from: Option<u64>,
    }

    impl crate::batch_sink::BatchSink for Recorder {
        fn ship(&mut self, first: u64, last: u64, records: &[u8]) -> Result<(), String> {
            if self.fail_from.is_some_and(|from| last >= from) {
                return Err("injected shipping failure".into());
            }
            self.shipped.lock().unwrap().push((first, last, records.to_vec()));
            Ok(())
        }
    }

    /// Splits framed records (`len, crc, seq, payload`) back into (seq, payload), checking CRCs.
    fn unframe(mut bytes: &[u8]) -> Vec<(u64, Vec<u8>)> {
        let mut records = Vec::new();
        while !bytes.is_empty() {
            let len = u32::from_le_bytes(bytes[0..4].try_into().unwrap()) as usize;
            let crc = u32::from_le_bytes(bytes[4..8].try_into().unwrap());
            let seq_bytes: [u8; 8] = bytes[8..16].try_into().unwrap();
            let payload = &bytes[16..16 + len];
            assert_eq!(crc, crc32c::crc32c_append(crc32c::crc32c(&seq_bytes), payload), "a shipped record's CRC");
            records.push((u64::from_le_bytes(seq_bytes), payload.to_vec()));
            bytes = &bytes[16 + len..];
        }
        records
    }

    /// The sink gets every committed record once, in order, exactly as the journal holds it, and
    /// before the batch's outputs are released.
    #[test]
    fn a_batch_sink_receives_the_journal_records_before_the_replies_leave() {
        let dir = tempfile::tempdir().unwrap();
        let shipped = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut config = SequencerConfig::new(dir.path());
        config.sink = Some(SinkHandle::new(Recorder { shipped: Arc::clone(&shipped), fail_from: None }));
        let genesis = || MarketConfig::new(Day::parse("2026-11-29").unwrap());
        let sequencer = Sequencer::start(config, genesis, |_, _, _| {}).expect("starts");
        for n in 1..=20 {
            sequencer.handle.try_submit(Submission::Command { command: register(n), ticket: n }).unwrap();
        }
        for n in 1..=20 {
            let output = sequencer.outputs.recv_timeout(Duration::from_secs(10)).expect("released");
            assert_eq!(output.seq, n);
            let last_shipped = shipped.lock().unwrap().last().map(|(_, last, _)| *last).unwrap_or(0);
            assert!(last_shipped >= n, "output {n} released before its batch was shipped (shipped to {last_shipped})");
        }
        sequencer.shutdown().unwrap();
        let batches = shipped.lock().unwrap().clone();
        let mut records = Vec::new();
        for (first, last, bytes) in &batches {
            let batch = unframe(bytes);
            assert_eq!((batch.first().unwrap().0, batch.last().unwrap().0), (*first, *last));
            records.extend(batch);
        }
        let journal: Vec<(u64, Vec<u8>)> = crate::journal::Journal::read_after(&store::journal_dir(dir.path()), 0)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(records, journal, "the sink got the journal's records, once each, in order");
    }

    /// A batch the sink cannot take is never acknowledged, and the sequencer stops.
    #[test]
    fn a_batch_the_sink_refuses_is_never_released() {
        let dir = tempfile::tempdir().unwrap();
        let shipped = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut config = SequencerConfig::new(dir.path());
        config.sink = Some(SinkHandle::new(Recorder { shipped, fail_from: Some(3) }));
        let genesis = || MarketConfig::new(Day::parse("2026-11-29").unwrap());
        let sequencer = Sequencer::start(config, genesis, |_, _, _| {}).expect("starts");
        for n in 1..=2 {
            sequencer.handle.try_submit(Submission::Command { command: register(n), ticket: n }).unwrap();
            assert_eq!(sequencer.outputs.recv_timeout(Duration::from_secs(10)).expect("released").seq, n);
        }
        sequencer.handle.try_submit(Submission::Command { command: register(3), ticket: 3 }).unwrap();
        match sequencer.outputs.recv_timeout(Duration::from_secs(10)) {
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {}
            other => panic!("expected the outputs to end after the refused batch, got {other:?}"),
        }
        let error = sequencer.shutdown().expect_err("shutdown reports the refused batch");
        assert!(error.to_string().contains("injected shipping failure"), "{error}");
    }

    /// The state hash after everything released so far.
    fn hash_of(sequencer: &Sequencer) -> (u64, u64) {
        let (tx, rx) = std::sync::mpsc::channel();
        let inspection: Inspection = Box::new(move |seq, market: &Market| {
            let hash = market.state_hash();
            Box::new(move || tx.send((seq, hash)).unwrap())
        });
        sequencer.handle.try_submit(Submission::Inspect(inspection)).unwrap();
        rx.recv_timeout(Duration::from_secs(10)).expect("an inspection is answered")
    }

    /// A follower sent the leader's shipped batches has the leader's journal byte for byte and
    /// its state; damaged or out-of-order batches stop it; once it leads, it stamps its own.
    #[test]
    fn a_follower_applies_shipped_batches_then_leads() {
        let (leader_dir, follower_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let shipped = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut config = SequencerConfig::new(leader_dir.path());
        config.sink = Some(SinkHandle::new(Recorder { shipped: Arc::clone(&shipped), fail_from: None }));
        let genesis = || MarketConfig::new(Day::parse("2026-11-29").unwrap());
        let leader = Sequencer::start(config, genesis, |_, _, _| {}).expect("starts");
        for n in 1..=30 {
            leader.handle.try_submit(Submission::Command { command: register(n), ticket: n }).unwrap();
        }
        for _ in 1..=30 {
            leader.outputs.recv_timeout(Duration::from_secs(10)).expect("released");
        }
        let leader_hash = hash_of(&leader);
        leader.shutdown().unwrap();

        let mut config = SequencerConfig::new(follower_dir.path());
        config.follower = true;
        let follower = Sequencer::start(config, genesis, |_, _, _| {}).expect("starts");
        for (_, _, records) in shipped.lock().unwrap().iter() {
            follower.handle.try_submit(Submission::Replicated(records.clone())).unwrap();
        }
        for n in 1..=30 {
            let output = follower.outputs.recv_timeout(Duration::from_secs(10)).expect("applied");
            assert_eq!((output.seq, output.ticket), (n, 0));
        }
        assert_eq!(hash_of(&follower), leader_hash, "the follower is the leader's market");
        // A command sent to a follower is dropped, not journaled.
        follower.handle.try_submit(Submission::Command { command: register(99), ticket: 99 }).unwrap();
        let (led_tx, led_rx) = std::sync::mpsc::channel();
        follower.handle.try_submit(Submission::Lead { then: Box::new(move || led_tx.send(()).unwrap()) }).unwrap();
        led_rx.recv_timeout(Duration::from_secs(10)).expect("it leads");
        follower.handle.try_submit(Submission::Command { command: register(31), ticket: 31 }).unwrap();
        let output = follower.outputs.recv_timeout(Duration::from_secs(10)).expect("its own command");
        assert_eq!((output.seq, output.ticket), (31, 31));
        follower.shutdown().unwrap();
        let read = |dir: &std::path::Path| -> Vec<(u64, Vec<u8>)> {
            crate::journal::Journal::read_after(&store::journal_dir(dir), 0).unwrap().map(Result::unwrap).collect()
        };
        let (led, followed) = (read(leader_dir.path()), read(follower_dir.path()));
        assert_eq!(followed[..30], led[..], "the follower's journal is the leader's, byte for byte");
        assert_eq!(followed.len(), 31);

        // A gap or a damaged record stops a follower before it applies anything of the batch.
        for damage in ["gap", "crc"] {
            let dir = tempfile::tempdir().unwrap();
            let mut config = SequencerConfig::new(dir.path());
            config.follower = true;
            let follower = Sequencer::start(config, genesis, |_, _, _| {}).expect("starts");
            let mut records = shipped.lock().unwrap()[0].2.clone();
            match damage {
                // Every record but the first: seq 2 cannot follow an empty journal.
                "gap" => records = crate::batch_sink::ShippedRecords::split(&records, 1)[1..].concat(),
                _ => *records.last_mut().unwrap() ^= 1,
            }
            follower.handle.try_submit(Submission::Replicated(records)).unwrap();
            let reason = follower.ended.recv_timeout(Duration::from_secs(10)).expect("it stops").unwrap_err();
            assert!(reason.contains("does not follow") || reason.contains("CRC"), "{damage}: {reason}");
            assert!(follower.shutdown().is_err());
        }
    }
}
