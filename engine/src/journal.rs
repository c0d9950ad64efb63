//! The append-only command journal: segmented files of checksummed records, group commit with one
//! `fdatasync` per batch, and recovery that truncates a torn tail but refuses any other damage.
//!
//! - [`format`]: the bytes on disk and the checks that tell good, torn and corrupt records apart.
//! - [`recovery`]: what `Journal::open` does before the first append.
//! - [`reader`]: `Journal::read_after`, the streaming replay of records after a seq.
//! - [`book_records`]: the fast reader of the commonest records' payloads (book orders, cancels).
//!
//! The sequencer appends a batch, calls [`Journal::commit`] once, and only then releases the
//! batch's replies: a command is durable before anything that reports its effect is visible.

pub(crate) mod book_records;
pub(crate) mod format;
mod reader;
mod recovery;

pub use format::RECORD_BYTES_MAX;
pub use reader::JournalReader;

use format::{encode_record, encode_segment_header, segment_file_name, RECORD_HEADER_LEN, SEGMENT_HEADER_LEN};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// 64 MiB keeps segment rolls (one extra sync each) rare and a pruned segment a useful unit.
pub const SEGMENT_BYTES_DEFAULT: u64 = 64 << 20;
/// Encoded records are written out (not synced) once this much is buffered, bounding memory for a
/// caller that appends a very large batch before committing.
const WRITE_BUFFER_BYTES: usize = 1 << 20;
/// The active segment is zero-filled this far ahead of the write position. Overwriting blocks
/// that already exist lets `fdatasync` skip the file-size and extent metadata update that an
/// appending write forces (measured here: ~170 µs instead of ~300 µs per sync).
const PREALLOCATE_BYTES: u64 = 1 << 20;
const LOCK_FILE_NAME: &str = "journal.lock";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// `commit` returns only after `fdatasync`: the production setting.
    Fsync,
    /// Never syncs anything. For benches and tests that do not measure durability.
    None,
}

#[derive(Clone, Debug)]
pub struct JournalConfig {
    pub dir: PathBuf,
    /// A segment is rolled when the next record would take it past this size (a record larger
    /// than a whole segment gets a segment to itself).
    pub segment_bytes: u64,
    pub durability: Durability,
}

impl JournalConfig {
    pub fn new(dir: impl Into<PathBuf>) -> JournalConfig {
        JournalConfig { dir: dir.into(), segment_bytes: SEGMENT_BYTES_DEFAULT, durability: Durability::Fsync }
    }
}

/// What `Journal::open` found and repaired.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Records verified across all segments.
    pub records: u64,
    pub last_seq: u64,
    /// Bytes cut off the end of the last segment: a torn write or zero-filled preallocation.
    pub truncated_bytes: u64,
    pub segments: usize,
}

#[derive(thiserror::Error, Debug)]
#[non_exhaustive]
pub enum JournalError {
    #[error("journal I/O error on {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    /// Writing records (or the zeros ahead of them) failed: a full disk, an I/O error. Fatal to
    /// a running market, which must not acknowledge anything more.
    #[error("journal write failed: {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    /// `fdatasync` (or a directory sync) failed: what reached the disk is unknown.
    #[error("journal sync failed: {path}: {source}")]
    Sync { path: PathBuf, source: io::Error },
    #[error("journal corrupt in {file} at byte {offset}: {reason}")]
    Corrupt { file: PathBuf, offset: u64, reason: String },
    #[error("journal record of {bytes} bytes is over record_bytes_max ({max})")]
    RecordTooLarge { bytes: usize, max: usize },
    #[error("journal records after seq {after} are no longer kept: the oldest segment starts at {first_seq}")]
    Pruned { after: u64, first_seq: u64 },
    #[error("journal directory {dir} is locked by another process")]
    Locked { dir: PathBuf },
    /// A write or sync failed earlier; what reached the disk is unknown (and after a failed
    /// `fdatasync` Linux may already have dropped the dirty pages), so nothing more is accepted.
    /// Reopening recovers the journal from what is actually on disk.
    #[error("journal refused: an earlier write or sync failed; reopen to recover")]
    Poisoned,
    /// The batch sink (see `batch_sink`) could not make a batch durable.
    #[error("batch of seqs {first}..={last} not shipped: {reason}")]
    NotShipped { first: u64, last: u64, reason: String },
}

impl JournalError {
    pub(crate) fn io(path: &Path, source: io::Error) -> JournalError {
        JournalError::Io { path: path.to_path_buf(), source }
    }
    pub(crate) fn write(path: &Path, source: io::Error) -> JournalError {
        JournalError::Write { path: path.to_path_buf(), source }
    }
    pub(crate) fn sync(path: &Path, source: io::Error) -> JournalError {
        JournalError::Sync { path: path.to_path_buf(), source }
    }
    pub(crate) fn corrupt(file: &Path, offset: u64, reason: String) -> JournalError {
        JournalError::Corrupt { file: file.to_path_buf(), offset, reason }
    }
}

/// The segment being appended to.
pub(crate) struct ActiveSegment {
    /// Shared with any `PendingSync` still to sync it.
    pub(crate) file: Arc<File>,
    pub(crate) path: PathBuf,
    /// Bytes of header and records written to the file (the buffer goes after them).
    pub(crate) end: u64,
    /// File length including zero-filled preallocation; `>= end`.
    pub(crate) allocated: u64,
    /// Records in this segment, written or buffered.
    pub(crate) records: u64,
}

pub struct Journal {
    dir: PathBuf,
    segment_bytes: u64,
    durability: Durability,
    /// First seq of every segment on disk, oldest first; the last one is `active`.
    segments: Vec<u64>,
    active: Option<ActiveSegment>,
    /// Records appended since the last write, framed, for the active segment. Reused: the write
    /// path does not allocate once it has grown to the usual batch size.
    buffer: Vec<u8>,
    last_seq: u64,
    committed_seq: u64,
    /// Written since the last sync.
    unsynced: bool,
    poisoned: bool,
    /// Held for the journal's lifetime: two writers on one directory would interleave records.
    _lock: File,
}

impl Journal {
    /// Opens the journal in `config.dir` (creating it if needed) and recovers it: every segment is
    /// read and every record verified. A torn tail of the last segment is truncated and the file
    /// synced; damage anywhere else is `Err(Corrupt)` naming the file and byte offset.
    pub fn open(config: JournalConfig) -> Result<(Journal, RecoveryReport), JournalError> {
        assert!(
            config.segment_bytes > SEGMENT_HEADER_LEN + RECORD_HEADER_LEN as u64,
            "segment_bytes {} leaves no room for a record",
            config.segment_bytes
        );
        create_dir_durably(&config.dir, config.durability == Durability::Fsync)
            .map_err(|e| JournalError::io(&config.dir, e))?;
        let lock = lock_dir(&config.dir)?;
        let recovered = recovery::recover(&config.dir, config.durability)?;
        let journal = Journal {
            dir: config.dir,
            segment_bytes: config.segment_bytes,
            durability: config.durability,
            segments: recovered.segments,
            active: recovered.active,
            buffer: Vec::new(),
            last_seq: recovered.report.last_seq,
            committed_seq: recovered.report.last_seq,
            unsynced: false,
            poisoned: false,
            _lock: lock,
        };
        Ok((journal, recovered.report))
    }

    /// Buffers one record. `seq` must be `last_seq() + 1`. Nothing is durable until `commit`.
    pub fn append(&mut self, seq: u64, payload: &[u8]) -> Result<(), JournalError> {
        assert_eq!(seq, self.last_seq + 1, "journal append out of sequence");
        let record_len = RECORD_HEADER_LEN + payload.len();
        if record_len > RECORD_BYTES_MAX {
            return Err(JournalError::RecordTooLarge { bytes: record_len, max: RECORD_BYTES_MAX });
        }
        if self.poisoned {
            return Err(JournalError::Poisoned);
        }
        let result = self.make_room(seq, record_len);
        self.poison_on_err(result)?;
        encode_record(&mut self.buffer, seq, payload);
        self.active.as_mut().expect("make_room opened a segment").records += 1;
        self.last_seq = seq;
        if self.buffer.len() >= WRITE_BUFFER_BYTES {
            let result = self.write_buffer();
            self.poison_on_err(result)?;
        }
        Ok(())
    }

    /// Writes what is buffered and, with `Durability::Fsync`, `fdatasync`s once: the group-commit
    /// point. After `Ok`, every appended record survives a crash.
    pub fn commit(&mut self) -> Result<(), JournalError> {
        if self.poisoned {
            return Err(JournalError::Poisoned);
        }
        let result = self.write_buffer().and_then(|()| self.sync_active());
        self.poison_on_err(result)?;
        self.committed_seq = self.last_seq;
        Ok(())
    }

    /// The first half of `commit`, for a caller that overlaps the sync with other work: writes
    /// what is buffered and returns the sync that makes it durable, to run on any thread. The
    /// records are durable only once that sync has returned `Ok`; then call `synced`. `None`
    /// when no sync is needed (nothing written, or `Durability::None`).
    ///
    /// Records written later may be appended while the sync runs: `fdatasync` covers everything
    /// written before it was called, and a segment roll syncs the closed segment itself, on this
    /// thread, before it creates the next one.
    pub fn write_for_sync(&mut self) -> Result<Option<PendingSync>, JournalError> {
        if self.poisoned {
            return Err(JournalError::Poisoned);
        }
        let result = self.write_buffer();
        self.poison_on_err(result)?;
        if !self.unsynced || self.durability == Durability::None {
            self.unsynced = false;
            self.committed_seq = self.last_seq;
            return Ok(None);
        }
        // The duty to sync moves to the returned value.
        self.unsynced = false;
        let active = self.active.as_ref().expect("written data implies an open segment");
        Ok(Some(PendingSync {
            file: Arc::clone(&active.file),
            path: active.path.clone(),
            seq: self.last_seq,
            #[cfg(test)]
            fail: false,
        }))
    }

    /// Records that a `PendingSync` for records up to `seq` succeeded.
    pub fn synced(&mut self, seq: u64) {
        assert!(seq <= self.last_seq, "synced seq {seq} was never appended");
        self.committed_seq = self.committed_seq.max(seq);
    }

    /// Refuses every later append and commit: for a caller whose `PendingSync` failed, since what
    /// reached the disk is then unknown.
    pub fn poison(&mut self) {
        self.poisoned = true;
    }

    /// The last appended seq (committed or not); 0 for an empty journal.
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// The last seq that a `commit` made durable.
    pub fn committed_seq(&self) -> u64 {
        self.committed_seq
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Streams the records with seq > `after`, in order, verifying each. Works on a directory
    /// whether or not a `Journal` has it open; a torn tail ends the stream, other damage is
    /// `Err(Corrupt)`, and records already pruned are `Err(Pruned)`.
    pub fn read_after(dir: &Path, after: u64) -> Result<JournalReader, JournalError> {
        JournalReader::new(dir, after)
    }

    /// Deletes whole segments whose records all have seq ≤ `seq`, oldest first, never the active
    /// one. Pass the seq of the oldest snapshot still kept, not the newest: if the newest snapshot
    /// turns out damaged, recovery falls back to an older one and needs the journal from there.
    /// Returns how many segments were deleted.
    pub fn prune_before(&mut self, seq: u64) -> Result<usize, JournalError> {
        let mut removed = 0;
        while self.segments.len() > 1 && self.segments[1] - 1 <= seq {
            let path = self.dir.join(segment_file_name(self.segments[0]));
            std::fs::remove_file(&path).map_err(|e| JournalError::io(&path, e))?;
            self.segments.remove(0);
            removed += 1;
        }
        if removed > 0 && self.durability == Durability::Fsync {
            sync_dir(&self.dir)?;
        }
        Ok(removed)
    }

    /// Commits, trims the preallocated tail and syncs, reporting any error (dropping does the
    /// same on a best-effort basis).
    pub fn close(mut self) -> Result<(), JournalError> {
        self.commit()?;
        let result = self.trim_active();
        self.poison_on_err(result)
    }

    /// Opens the segment for `seq` if there is none, or rolls when the record would not fit.
    fn make_room(&mut self, seq: u64, record_len: usize) -> Result<(), JournalError> {
        let Some(active) = &self.active else {
            return self.start_segment(seq);
        };
        let size_after = active.end + (self.buffer.len() + record_len) as u64;
        if active.records > 0 && size_after > self.segment_bytes {
            self.roll(seq)?;
        }
        Ok(())
    }

    fn roll(&mut self, seq: u64) -> Result<(), JournalError> {
        self.write_buffer()?;
        // The closed segment must be complete on disk before the next one exists: recovery holds
        // every segment but the last to have no torn tail, and a crash right after creating the
        // next segment would otherwise leave this one torn in the middle of the journal.
        // Synced here even if a `PendingSync` handed out by `write_for_sync` still covers it: that
        // sync runs on another thread and may not have happened yet when the next segment exists.
        self.unsynced = true;
        self.trim_active()?;
        self.start_segment(seq)
    }

    /// Cuts the zero-filled preallocation off the active segment and syncs it.
    fn trim_active(&mut self) -> Result<(), JournalError> {
        let Some(active) = &mut self.active else {
            return Ok(());
        };
        if active.allocated > active.end {
            active.file.set_len(active.end).map_err(|e| JournalError::write(&active.path, e))?;
            active.allocated = active.end;
            // A full fsync, not fdatasync: should the shrink be lost, a closed segment would come
            // back with a zero tail, which recovery rightly refuses anywhere but in the last one.
            if self.durability == Durability::Fsync {
                active.file.sync_all().map_err(|e| JournalError::sync(&active.path, e))?;
            }
            self.unsynced = false;
        }
        self.sync_active()
    }

    fn start_segment(&mut self, first_seq: u64) -> Result<(), JournalError> {
        let path = self.dir.join(segment_file_name(first_seq));
        let write_err = |e| JournalError::write(&path, e);
        let file = OpenOptions::new().read(true).write(true).create_new(true).open(&path).map_err(write_err)?;
        file.write_all_at(&encode_segment_header(first_seq), 0).map_err(write_err)?;
        if self.durability == Durability::Fsync {
            file.sync_data().map_err(|e| JournalError::sync(&path, e))?;
            // Without this the new name may vanish in a crash even though its data was synced.
            sync_dir(&self.dir)?;
        }
        self.segments.push(first_seq);
        self.active = Some(ActiveSegment {
            file: Arc::new(file),
            path,
            end: SEGMENT_HEADER_LEN,
            allocated: SEGMENT_HEADER_LEN,
            records: 0,
        });
        self.unsynced = false;
        Ok(())
    }

    fn write_buffer(&mut self) -> Result<(), JournalError> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let active = self.active.as_mut().expect("records are buffered only with a segment open");
        let end = active.end + self.buffer.len() as u64;
        if end > active.allocated {
            preallocate(active, end, self.segment_bytes)?;
        }
        active.file.write_all_at(&self.buffer, active.end).map_err(|e| JournalError::write(&active.path, e))?;
        active.end = end;
        self.buffer.clear();
        self.unsynced = true;
        Ok(())
    }

    fn sync_active(&mut self) -> Result<(), JournalError> {
        if !self.unsynced {
            return Ok(());
        }
        if self.durability == Durability::Fsync {
            let active = self.active.as_ref().expect("written data implies an open segment");
            active.file.sync_data().map_err(|e| JournalError::sync(&active.path, e))?;
        }
        self.unsynced = false;
        Ok(())
    }

    fn poison_on_err<T>(&mut self, result: Result<T, JournalError>) -> Result<T, JournalError> {
        if result.is_err() {
            self.poisoned = true;
        }
        result
    }
}

/// A sync owed by `Journal::write_for_sync`: `fdatasync` of the segment written to. Holds the
/// file open, so it stays valid across a segment roll.
#[derive(Debug)]
pub struct PendingSync {
    file: Arc<File>,
    path: PathBuf,
    seq: u64,
    /// Unit tests make a sync fail on purpose (see `failing`).
    #[cfg(test)]
    fail: bool,
}

impl PendingSync {
    /// This sync, made to fail as a full or broken disk would.
    #[cfg(test)]
    pub(crate) fn failing(self) -> PendingSync {
        PendingSync { fail: true, ..self }
    }

    /// The last seq this sync makes durable.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Syncs; on `Ok(seq)` every record up to `seq` survives a crash. On `Err` the journal that
    /// issued it must be poisoned (`Journal::poison`).
    pub fn sync(&self) -> Result<u64, JournalError> {
        #[cfg(test)]
        if self.fail {
            return Err(JournalError::sync(&self.path, io::Error::other("injected fdatasync failure")));
        }
        self.file.sync_data().map_err(|e| JournalError::sync(&self.path, e))?;
        Ok(self.seq)
    }
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("dir", &self.dir)
            .field("segments", &self.segments.len())
            .field("last_seq", &self.last_seq)
            .field("committed_seq", &self.committed_seq)
            .field("poisoned", &self.poisoned)
            .finish()
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        // Best effort, so that a clean shutdown leaves no zero tail for the next open to report
        // as truncated. Uncommitted records are not written: nothing was promised about them.
        if !self.poisoned {
            self.buffer.clear();
            let _ = self.trim_active();
        }
    }
}

/// Zero-fills the active segment from `needed` up to the next preallocation step (at most the
/// segment size, but always at least `needed`), so the data write lands in existing blocks.
fn preallocate(active: &mut ActiveSegment, needed: u64, segment_bytes: u64) -> Result<(), JournalError> {
    static ZEROS: [u8; 64 << 10] = [0; 64 << 10];
    let target = (active.allocated + PREALLOCATE_BYTES).min(segment_bytes).max(needed);
    let mut at = needed;
    while at < target {
        let n = (target - at).min(ZEROS.len() as u64) as usize;
        active.file.write_all_at(&ZEROS[..n], at).map_err(|e| JournalError::write(&active.path, e))?;
        at += n as u64;
    }
    active.allocated = target;
    Ok(())
}

/// Creates `dir` (and missing parents); when `sync`, fsyncs the parent of each directory it
/// created, since a synced file in a directory whose own entry was lost is lost with it.
pub(crate) fn create_dir_durably(dir: &Path, sync: bool) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let parent = dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    create_dir_durably(parent, sync)?;
    match std::fs::create_dir(dir) {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
        _ => {}
    }
    if sync {
        File::open(parent)?.sync_all()?;
    }
    Ok(())
}

pub(crate) fn sync_dir(dir: &Path) -> Result<(), JournalError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| JournalError::sync(dir, e))
}

fn lock_dir(dir: &Path) -> Result<File, JournalError> {
    let path = dir.join(LOCK_FILE_NAME);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| JournalError::io(&path, e))?;
    // SAFETY: flock on a descriptor we own; no memory is involved.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        let err = io::Error::last_os_error();
        if err.kind() == io::ErrorKind::WouldBlock {
            return Err(JournalError::Locked { dir: dir.to_path_buf() });
        }
        return Err(JournalError::io(&path, err));
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &Path, segment_bytes: u64) -> JournalConfig {
        JournalConfig { dir: dir.to_path_buf(), segment_bytes, durability: Durability::Fsync }
    }

    fn read_all(dir: &Path) -> Vec<(u64, Vec<u8>)> {
        Journal::read_after(dir, 0).unwrap().collect::<Result<_, _>>().unwrap()
    }

    #[test]
    fn empty_directory_opens_empty_and_first_seq_is_one() {
        let dir = tempfile::tempdir().unwrap();
        let (mut journal, report) = Journal::open(config(dir.path(), 4096)).unwrap();
        assert_eq!(report, RecoveryReport::default());
        assert_eq!(journal.last_seq(), 0);
        journal.append(1, b"first").unwrap();
        journal.commit().unwrap();
        assert_eq!(journal.committed_seq(), 1);
        drop(journal);
        assert_eq!(read_all(dir.path()), vec![(1, b"first".to_vec())]);
    }

    #[test]
    #[should_panic(expected = "out of sequence")]
    fn append_with_a_gap_is_a_broken_invariant() {
        let dir = tempfile::tempdir().unwrap();
        let (mut journal, _) = Journal::open(config(dir.path(), 4096)).unwrap();
        journal.append(2, b"skips one").unwrap();
    }

    #[test]
    fn oversize_record_is_rejected_and_the_journal_stays_usable() {
        let dir = tempfile::tempdir().unwrap();
        let (mut journal, _) = Journal::open(config(dir.path(), 4096)).unwrap();
        let big = vec![0u8; RECORD_BYTES_MAX];
        assert!(matches!(journal.append(1, &big), Err(JournalError::RecordTooLarge { .. })));
        journal.append(1, b"small").unwrap();
        journal.commit().unwrap();
        assert_eq!(journal.last_seq(), 1);
    }

    #[test]
    fn second_open_of_the_same_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (_journal, _) = Journal::open(config(dir.path(), 4096)).unwrap();
        assert!(matches!(Journal::open(config(dir.path(), 4096)), Err(JournalError::Locked { .. })));
    }

    #[test]
    fn clean_close_leaves_no_preallocated_tail() {
        let dir = tempfile::tempdir().unwrap();
        let (mut journal, _) = Journal::open(config(dir.path(), 1 << 20)).unwrap();
        for seq in 1..=10 {
            journal.append(seq, b"carnation").unwrap();
        }
        journal.commit().unwrap();
        let path = dir.path().join(segment_file_name(1));
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 1 << 20, "commit preallocates");
        journal.close().unwrap();
        let expected = SEGMENT_HEADER_LEN + 10 * (RECORD_HEADER_LEN as u64 + 9);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), expected);
        let (_journal, report) = Journal::open(config(dir.path(), 1 << 20)).unwrap();
        assert_eq!(report.truncated_bytes, 0);
        assert_eq!(report.last_seq, 10);
    }

    #[test]
    fn rolls_keep_every_segment_within_its_size_and_closed_ones_exact() {
        let dir = tempfile::tempdir().unwrap();
        let (mut journal, _) = Journal::open(config(dir.path(), 512)).unwrap();
        for seq in 1..=100 {
            journal.append(seq, &[seq as u8; 40]).unwrap();
            if seq % 7 == 0 {
                journal.commit().unwrap();
            }
        }
        journal.commit().unwrap();
        let segments = format::list_segments(dir.path()).unwrap();
        assert!(segments.len() > 5);
        for (_, path) in &segments[..segments.len() - 1] {
            let len = std::fs::metadata(path).unwrap().len();
            assert!(len <= 512);
            assert_eq!((len - SEGMENT_HEADER_LEN) % 56, 0, "{path:?} is not whole records");
        }
        drop(journal);
        let records = read_all(dir.path());
        assert_eq!(records.len(), 100);
        assert!(records.iter().enumerate().all(|(i, (seq, p))| *seq == i as u64 + 1 && p == &[*seq as u8; 40]));
    }

    #[test]
    fn a_record_larger_than_a_segment_gets_one_to_itself() {
        let dir = tempfile::tempdir().unwrap();
        let (mut journal, _) = Journal::open(config(dir.path(), 256)).unwrap();
        journal.append(1, &[1; 10]).unwrap();
        journal.append(2, &[2; 1000]).unwrap();
        journal.append(3, &[3; 10]).unwrap();
        journal.commit().unwrap();
        drop(journal);
        assert_eq!(format::list_segments(dir.path()).unwrap().len(), 3);
        let (_, report) = Journal::open(config(dir.path(), 256)).unwrap();
        assert_eq!((report.records, report.last_seq, report.segments), (3, 3, 3));
    }

    #[test]
    fn prune_deletes_only_segments_wholly_at_or_below_the_seq() {
        let dir = tempfile::tempdir().unwrap();
        let (mut journal, _) = Journal::open(config(dir.path(), 200)).unwrap();
        for seq in 1..=30 {
            journal.append(seq, &[0; 24]).unwrap(); // 40-byte records: 4 per segment
        }
        journal.commit().unwrap();
        let firsts: Vec<u64> = format::list_segments(dir.path()).unwrap().iter().map(|s| s.0).collect();
        assert_eq!(&firsts[..3], &[1, 5, 9]);
        assert_eq!(journal.prune_before(7).unwrap(), 1, "segment 5..=8 still holds seq 8");
        assert_eq!(journal.prune_before(8).unwrap(), 1);
        assert!(matches!(Journal::read_after(dir.path(), 3), Err(JournalError::Pruned { after: 3, first_seq: 9 })));
        let after_8: Vec<u64> = Journal::read_after(dir.path(), 8).unwrap().map(|r| r.unwrap().0).collect();
        assert_eq!(after_8, (9..=30).collect::<Vec<_>>());
        assert_eq!(journal.prune_before(u64::MAX).unwrap(), firsts.len() - 3);
        assert_eq!(format::list_segments(dir.path()).unwrap().len(), 1, "the active segment stays");
        journal.append(31, b"more").unwrap();
        journal.commit().unwrap();
        drop(journal);
        let (_, report) = Journal::open(config(dir.path(), 200)).unwrap();
        assert_eq!(report.last_seq, 31);
    }

    #[test]
    fn a_sync_handed_to_another_thread_is_accounted_for_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let (mut journal, _) = Journal::open(config(dir.path(), 4096)).unwrap();
        for seq in 1..=3 {
            journal.append(seq, b"tulip").unwrap();
        }
        let pending = journal.write_for_sync().unwrap().expect("written, not yet synced");
        assert_eq!(pending.seq(), 3);
        journal.append(4, b"while the disk syncs").unwrap();
        let synced = std::thread::spawn(move || pending.sync().unwrap()).join().unwrap();
        journal.synced(synced);
        assert_eq!(journal.committed_seq(), 3);
        assert!(journal.write_for_sync().unwrap().is_some());
        assert!(journal.write_for_sync().unwrap().is_none(), "nothing new to sync");
        drop(journal);
        assert_eq!(read_all(dir.path()).len(), 4);

        let unsynced = JournalConfig { durability: Durability::None, ..config(&dir.path().join("none"), 4096) };
        let (mut journal, _) = Journal::open(unsynced).unwrap();
        journal.append(1, b"lily").unwrap();
        assert!(journal.write_for_sync().unwrap().is_none());
        assert_eq!(journal.committed_seq(), 1);
    }

    #[test]
    fn large_batches_are_written_in_pieces_and_all_survive() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = JournalConfig { durability: Durability::None, ..config(dir.path(), 64 << 20) };
        let (mut journal, _) = Journal::open(cfg.clone()).unwrap();
        let payload = vec![9u8; 1000];
        for seq in 1..=3000 {
            journal.append(seq, &payload).unwrap();
        }
        assert!(journal.buffer.len() < WRITE_BUFFER_BYTES);
        journal.commit().unwrap();
        drop(journal);
        let (_, report) = Journal::open(cfg).unwrap();
        assert_eq!(report.records, 3000);
    }
}
