//! Atomic whole-market snapshot files: written under a temporary name, synced, renamed into place,
//! the directory synced; read back newest first, skipping any whose checksums fail.
//!
//! A file `snapshot-{seq:020}.bin` holds the state after command `seq`:
//! `[magic 8][version u32][body crc32c u32][seq u64][body len u64][header crc32c u32][body]`,
//! little endian, the header checksum covering the 32 bytes before it. Recovery is the newest
//! good snapshot plus a replay of the journal after its seq.
//!
//! One writer per directory (the sequencer, or the thread it hands snapshots to): `write_snapshot`
//! and `prune_snapshots` delete leftover temporary files, which would race a second writer.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

const SNAPSHOT_MAGIC: [u8; 8] = *b"HUASHIS\n";
/// 2: the market keeps its fees, limits and when market data falls due; clearing's snapshots
/// carry its fee history and the feed's numbering. A version-1 snapshot is refused by name.
/// 3 (issue 14): grade scales, lot master data, firms and seats, clock plans, the draw, presales
/// and the cells' last VWAPs; a version-2 snapshot is refused by name, as is a data directory
/// whose genesis is one (start it anew).
/// 4 (issue 15): dispatch lines, destinations, cold-chain maxima, complaints and the quality index.
/// 5 (issue 16): the live orders' client-id index is rebuilt on load, not stored; the day's used
/// client order ids are stored per participant.
/// 6 (issue 16): a live book order's client order id, hold and acceptance time are stored with
/// the order in its book (the book's payload); the market keeps only client order ids too long
/// to pack.
const SNAPSHOT_VERSION: u32 = 6;
const SNAPSHOT_HEADER_LEN: usize = 36;
const SNAPSHOT_PREFIX: &str = "snapshot-";
const SNAPSHOT_SUFFIX: &str = ".bin";
const TEMP_SUFFIX: &str = ".bin.tmp";

#[derive(thiserror::Error, Debug)]
#[non_exhaustive]
pub enum SnapshotError {
    #[error("snapshot I/O error on {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> SnapshotError + '_ {
    move |source| SnapshotError::Io { path: path.to_path_buf(), source }
}

/// A snapshot file that was passed over because it did not verify.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkippedSnapshot {
    pub path: PathBuf,
    pub reason: String,
}

/// The newest good snapshot and the newer ones that were skipped on the way to it, which the
/// caller should log: a damaged snapshot means a disk problem worth an operator's attention.
#[derive(Debug, Default)]
pub struct SnapshotScan {
    pub latest: Option<(u64, Vec<u8>)>,
    pub skipped: Vec<SkippedSnapshot>,
}

/// Writes `bytes` as the snapshot taken after command `seq` and makes it durable: temporary
/// file, `fdatasync`, rename, directory fsync. Returns the final path.
pub fn write_snapshot(dir: &Path, seq: u64, bytes: &[u8]) -> Result<PathBuf, SnapshotError> {
    crate::journal::create_dir_durably(dir, true).map_err(io_err(dir))?;
    remove_temp_files(dir)?;
    let path = dir.join(snapshot_file_name(seq));
    let temp = dir.join(format!("{SNAPSHOT_PREFIX}{seq:020}{TEMP_SUFFIX}"));
    let written = (|| {
        let mut file = OpenOptions::new().write(true).create(true).truncate(true).open(&temp)?;
        file.write_all(&encode_header(seq, bytes))?;
        file.write_all(bytes)?;
        // Synced before the rename: otherwise a crash can leave the final name on an empty file.
        file.sync_data()
    })();
    if let Err(error) = written {
        // A half-written snapshot on a full disk would hold the space the journal needs.
        let _ = std::fs::remove_file(&temp);
        return Err(io_err(&temp)(error));
    }
    std::fs::rename(&temp, &path).map_err(io_err(&path))?;
    sync_dir(dir)?;
    Ok(path)
}

/// The newest snapshot whose checksums verify, as (seq, body); `None` if there is none. Damaged
/// newer snapshots are skipped; use [`scan_snapshots`] to learn which and why.
pub fn latest_snapshot(dir: &Path) -> Result<Option<(u64, Vec<u8>)>, SnapshotError> {
    Ok(scan_snapshots(dir)?.latest)
}

/// Like [`latest_snapshot`], also reporting the snapshots skipped as damaged. A missing directory
/// holds no snapshots.
pub fn scan_snapshots(dir: &Path) -> Result<SnapshotScan, SnapshotError> {
    let mut scan = SnapshotScan::default();
    for (seq, path) in list_snapshots(dir)?.into_iter().rev() {
        match read_snapshot(&path, seq)? {
            Ok(body) => {
                scan.latest = Some((seq, body));
                break;
            }
            Err(reason) => scan.skipped.push(SkippedSnapshot { path, reason }),
        }
    }
    Ok(scan)
}

/// Keeps the `keep` newest snapshots that verify and deletes every snapshot older than the oldest
/// of them, plus leftover temporary files. Damaged snapshots newer than that are left for an
/// operator to look at. Returns the seq of the oldest snapshot kept: the journal may be pruned up
/// to there (not further, so that recovery can still fall back to it).
pub fn prune_snapshots(dir: &Path, keep: usize) -> Result<Option<u64>, SnapshotError> {
    assert!(keep >= 1, "pruning every snapshot would leave recovery only the whole journal");
    remove_temp_files(dir)?;
    let mut good = 0;
    let mut oldest_kept = None;
    for (seq, path) in list_snapshots(dir)?.into_iter().rev() {
        if good == keep {
            std::fs::remove_file(&path).map_err(io_err(&path))?;
        } else if read_snapshot(&path, seq)?.is_ok() {
            good += 1;
            oldest_kept = Some(seq);
        }
    }
    sync_dir(dir)?;
    Ok(oldest_kept)
}

fn snapshot_file_name(seq: u64) -> String {
    format!("{SNAPSHOT_PREFIX}{seq:020}{SNAPSHOT_SUFFIX}")
}

fn parse_snapshot_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix(SNAPSHOT_PREFIX)?.strip_suffix(SNAPSHOT_SUFFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The seqs of the snapshot files in `dir`, oldest first (not yet verified).
pub fn snapshot_seqs(dir: &Path) -> Result<Vec<u64>, SnapshotError> {
    Ok(list_snapshots(dir)?.into_iter().map(|(seq, _)| seq).collect())
}

/// The body of the snapshot taken after `seq`, if that file exists and verifies.
pub fn snapshot_at(dir: &Path, seq: u64) -> Result<Option<Vec<u8>>, SnapshotError> {
    let path = dir.join(snapshot_file_name(seq));
    if !path.exists() {
        return Ok(None);
    }
    Ok(read_snapshot(&path, seq)?.ok())
}

/// Snapshot files in `dir`, oldest first; temporary files are not listed.
fn list_snapshots(dir: &Path) -> Result<Vec<(u64, PathBuf)>, SnapshotError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(dir)(e)),
    };
    let mut snapshots = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io_err(dir))?;
        if let Some(seq) = entry.file_name().to_str().and_then(parse_snapshot_name) {
            snapshots.push((seq, entry.path()));
        }
    }
    snapshots.sort_unstable_by_key(|(seq, _)| *seq);
    Ok(snapshots)
}

fn remove_temp_files(dir: &Path) -> Result<(), SnapshotError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err(dir)(e)),
    };
    for entry in entries {
        let entry = entry.map_err(io_err(dir))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(SNAPSHOT_PREFIX) && name.ends_with(TEMP_SUFFIX) {
            let path = entry.path();
            std::fs::remove_file(&path).map_err(io_err(&path))?;
        }
    }
    Ok(())
}

fn encode_header(seq: u64, body: &[u8]) -> [u8; SNAPSHOT_HEADER_LEN] {
    let mut header = [0u8; SNAPSHOT_HEADER_LEN];
    header[0..8].copy_from_slice(&SNAPSHOT_MAGIC);
    header[8..12].copy_from_slice(&SNAPSHOT_VERSION.to_le_bytes());
    header[12..16].copy_from_slice(&crc32c::crc32c(body).to_le_bytes());
    header[16..24].copy_from_slice(&seq.to_le_bytes());
    header[24..32].copy_from_slice(&(body.len() as u64).to_le_bytes());
    let header_crc = crc32c::crc32c(&header[0..32]);
    header[32..36].copy_from_slice(&header_crc.to_le_bytes());
    header
}

/// Reads and verifies one snapshot file: `Ok(Ok(body))`, or `Ok(Err(reason))` if it is damaged.
fn read_snapshot(path: &Path, name_seq: u64) -> Result<Result<Vec<u8>, String>, SnapshotError> {
    let mut bytes = std::fs::read(path).map_err(io_err(path))?;
    if let Err(reason) = verify(&bytes, name_seq) {
        return Ok(Err(reason));
    }
    bytes.drain(..SNAPSHOT_HEADER_LEN);
    Ok(Ok(bytes))
}

fn verify(bytes: &[u8], name_seq: u64) -> Result<(), String> {
    if bytes.len() < SNAPSHOT_HEADER_LEN {
        return Err(format!("file of {} bytes is shorter than a snapshot header", bytes.len()));
    }
    let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
    let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap());
    if bytes[0..8] != SNAPSHOT_MAGIC {
        return Err("not a snapshot: bad magic".into());
    }
    if u32_at(32) != crc32c::crc32c(&bytes[0..32]) {
        return Err("header checksum mismatch".into());
    }
    if u32_at(8) != SNAPSHOT_VERSION {
        return Err(format!("unsupported snapshot version {}", u32_at(8)));
    }
    if u64_at(16) != name_seq {
        return Err(format!("header says seq {}, the name says {name_seq}", u64_at(16)));
    }
    let body = &bytes[SNAPSHOT_HEADER_LEN..];
    if u64_at(24) != body.len() as u64 {
        return Err(format!("header says {} body bytes, the file holds {}", u64_at(24), body.len()));
    }
    if u32_at(12) != crc32c::crc32c(body) {
        return Err("body checksum mismatch".into());
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> Result<(), SnapshotError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io_err(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_newest_wins() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(latest_snapshot(dir.path()).unwrap(), None);
        write_snapshot(dir.path(), 10, b"ten").unwrap();
        let path = write_snapshot(dir.path(), 200, b"two hundred").unwrap();
        assert_eq!(path.file_name().unwrap(), "snapshot-00000000000000000200.bin");
        write_snapshot(dir.path(), 30, b"thirty").unwrap();
        assert_eq!(latest_snapshot(dir.path()).unwrap(), Some((200, b"two hundred".to_vec())));
    }

    #[test]
    fn empty_body_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        write_snapshot(dir.path(), 1, b"").unwrap();
        assert_eq!(latest_snapshot(dir.path()).unwrap(), Some((1, Vec::new())));
    }

    #[test]
    fn every_flipped_bit_is_detected() {
        let body = b"market state";
        let mut bytes = encode_header(5, body).to_vec();
        bytes.extend_from_slice(body);
        assert_eq!(verify(&bytes, 5), Ok(()));
        for bit in 0..bytes.len() * 8 {
            let mut damaged = bytes.clone();
            damaged[bit / 8] ^= 1 << (bit % 8);
            assert!(verify(&damaged, 5).is_err(), "bit {bit}");
        }
        assert!(verify(&bytes[..bytes.len() - 1], 5).is_err());
        assert!(verify(&bytes, 6).is_err(), "a renamed snapshot is not trusted");
    }

    #[test]
    fn missing_directory_has_no_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(latest_snapshot(&dir.path().join("nope")).unwrap(), None);
    }

    #[test]
    fn prune_keeps_the_newest_good_ones_and_reports_the_oldest_kept() {
        let dir = tempfile::tempdir().unwrap();
        for seq in [10, 20, 30, 40] {
            write_snapshot(dir.path(), seq, &seq.to_le_bytes()).unwrap();
        }
        let newest = dir.path().join(snapshot_file_name(40));
        std::fs::write(&newest, b"damaged").unwrap();
        assert_eq!(prune_snapshots(dir.path(), 2).unwrap(), Some(20));
        let left: Vec<u64> = list_snapshots(dir.path()).unwrap().into_iter().map(|s| s.0).collect();
        assert_eq!(left, vec![20, 30, 40]);
        assert_eq!(latest_snapshot(dir.path()).unwrap(), Some((30, 30u64.to_le_bytes().to_vec())));
    }
}
