//! Crash and corruption recovery of the journal and snapshots, from the outside: torn tails cut at
//! every byte, random bit flips, segment rollover, damaged earlier segments, snapshot fallback.

use huashi_engine::journal::{Durability, Journal, JournalConfig, JournalError, RecoveryReport};
use huashi_engine::snapshot::{latest_snapshot, prune_snapshots, scan_snapshots, write_snapshot};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::{Path, PathBuf};

const SEGMENT_HEADER_LEN: u64 = 24;
const RECORD_HEADER_LEN: u64 = 16;

type Records = Vec<(u64, Vec<u8>)>;
type Damage = fn(&mut Vec<u8>);

fn config(dir: &Path, segment_bytes: u64, durability: Durability) -> JournalConfig {
    JournalConfig { dir: dir.to_path_buf(), segment_bytes, durability }
}

/// Appends `payloads` as seq 1.., committing every `batch` records and at the end.
fn write_journal(dir: &Path, segment_bytes: u64, payloads: &[Vec<u8>], batch: usize) -> Records {
    let (mut journal, _) = Journal::open(config(dir, segment_bytes, Durability::Fsync)).unwrap();
    let mut written = Vec::new();
    for (i, payload) in payloads.iter().enumerate() {
        let seq = i as u64 + 1;
        journal.append(seq, payload).unwrap();
        written.push((seq, payload.clone()));
        if (i + 1) % batch == 0 {
            journal.commit().unwrap();
        }
    }
    journal.commit().unwrap();
    journal.close().unwrap();
    written
}

fn random_payloads(rng: &mut ChaCha8Rng, n: usize, len: std::ops::Range<usize>) -> Vec<Vec<u8>> {
    (0..n)
        .map(|_| {
            let len = rng.gen_range(len.clone());
            (0..len).map(|_| rng.gen()).collect()
        })
        .collect()
}

fn read_all(dir: &Path) -> Result<Records, JournalError> {
    Journal::read_after(dir, 0)?.collect()
}

fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("journal-"))
        .collect();
    files.sort();
    files
}

/// Replaces a file by unlinking and recreating it: rewriting it in place through O_TRUNC makes
/// ext4 start writeback on close, which dominates these tests' run time on a busy disk.
fn replace_file(path: &Path, bytes: &[u8]) {
    std::fs::remove_file(path).unwrap();
    std::fs::write(path, bytes).unwrap();
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, to.join(path.file_name().unwrap())).unwrap();
    }
}

/// Record boundaries of a segment as (start, end), read with the documented frame layout rather
/// than the crate's own parser.
fn record_spans(bytes: &[u8]) -> Vec<(u64, u64)> {
    let mut spans = Vec::new();
    let mut at = SEGMENT_HEADER_LEN as usize;
    while at < bytes.len() {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        let end = at + RECORD_HEADER_LEN as usize + len;
        spans.push((at as u64, end as u64));
        at = end;
    }
    assert_eq!(at, bytes.len(), "a closed journal ends on a record boundary");
    spans
}

fn expect_corrupt(result: Result<impl std::fmt::Debug, JournalError>) -> (PathBuf, u64) {
    match result {
        Err(JournalError::Corrupt { file, offset, .. }) => (file, offset),
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

/// Opens a damaged copy, checks what it recovered, appends the next seq, and checks it survives.
fn recover_and_continue(
    dir: &Path,
    kept: &[(u64, Vec<u8>)],
    segment_bytes: u64,
    durability: Durability,
) -> RecoveryReport {
    let (mut journal, report) = Journal::open(config(dir, segment_bytes, durability)).unwrap();
    assert_eq!(report.last_seq, kept.len() as u64);
    assert_eq!(report.records, kept.len() as u64);
    assert_eq!(read_all(dir).unwrap(), kept);
    let next = kept.len() as u64 + 1;
    journal.append(next, b"after recovery").unwrap();
    journal.commit().unwrap();
    drop(journal);
    let (_, reopened) = Journal::open(config(dir, segment_bytes, durability)).unwrap();
    assert_eq!((reopened.last_seq, reopened.truncated_bytes), (next, 0));
    let mut expected = kept.to_vec();
    expected.push((next, b"after recovery".to_vec()));
    assert_eq!(read_all(dir).unwrap(), expected);
    report
}

/// Cuts the last record at every byte (truncating, and separately zero-filling the rest as a
/// preallocated file would show it): recovery keeps exactly the records before it.
fn cut_last_record_everywhere(written: &[(u64, Vec<u8>)], original: &Path, segment_bytes: u64, cut_header: bool) {
    let last_file = segment_files(original).pop().unwrap();
    let bytes = std::fs::read(&last_file).unwrap();
    let (start, end) = *record_spans(&bytes).last().unwrap();
    let first_cut = if cut_header { 0 } else { start };
    let name = last_file.file_name().unwrap();
    for cut in first_cut..end {
        for zero_fill in [false, true] {
            let scratch = tempfile::tempdir().unwrap();
            copy_dir(original, scratch.path());
            let damaged = scratch.path().join(name);
            let mut torn = bytes[..cut as usize].to_vec();
            if zero_fill {
                torn.resize(bytes.len(), 0);
            }
            replace_file(&damaged, &torn);
            assert_eq!(read_all(scratch.path()).unwrap(), written[..written.len() - 1], "reader, cut at {cut}");
            // Syncing changes no outcome here; it is exercised at the two ends and kept out of the
            // hundreds of cuts between for the test's run time.
            let durability = if cut == first_cut || cut == end - 1 { Durability::Fsync } else { Durability::None };
            let report = recover_and_continue(scratch.path(), &written[..written.len() - 1], segment_bytes, durability);
            // Everything from the last record's start goes; a cut header is rewritten, not counted.
            let truncated = (torn.len() as u64).saturating_sub(start);
            assert_eq!(report.truncated_bytes, truncated, "cut at {cut}, zero-filled {zero_fill}");
            assert_eq!(
                std::fs::metadata(&damaged).unwrap().len(),
                start + RECORD_HEADER_LEN + 14,
                "the new record replaced the torn one"
            );
        }
    }
}

#[test]
fn torn_last_record_is_cut_at_every_byte_and_appending_continues() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let written = write_journal(dir.path(), 1 << 20, &random_payloads(&mut rng, 20, 60..100), 8);
    assert_eq!(segment_files(dir.path()).len(), 1);
    cut_last_record_everywhere(&written, dir.path(), 1 << 20, false);
}

#[test]
fn torn_first_record_of_a_new_segment_and_a_headerless_segment_recover() {
    // 40-byte payloads make 56-byte records; 4 fit a 248-byte segment, so record 9 opens segment 3.
    let dir = tempfile::tempdir().unwrap();
    let segment_bytes = SEGMENT_HEADER_LEN + 4 * 56;
    let payloads: Vec<Vec<u8>> = (1..=9u8).map(|i| vec![i; 40]).collect();
    let written = write_journal(dir.path(), segment_bytes, &payloads, 3);
    let files = segment_files(dir.path());
    assert_eq!(files.len(), 3);
    assert!(files[2].ends_with("journal-00000000000000000009.log"));
    cut_last_record_everywhere(&written, dir.path(), segment_bytes, true);
}

#[test]
fn random_bit_flips_never_recover_a_wrong_state() {
    let original = tempfile::tempdir().unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let segment_bytes = 1024;
    let written = write_journal(original.path(), segment_bytes, &random_payloads(&mut rng, 60, 0..100), 5);
    let files = segment_files(original.path());
    assert!(files.len() >= 3, "the flips should hit several segments");
    let contents: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    let total: usize = contents.iter().map(Vec::len).sum();
    let (mut refused, mut torn) = (0, 0);
    let scratch = tempfile::tempdir().unwrap();
    for trial in 0..1000 {
        let mut at = rng.gen_range(0..total);
        let file_index = contents
            .iter()
            .position(|c| {
                at < c.len() || {
                    at -= c.len();
                    false
                }
            })
            .unwrap();
        let bit = rng.gen_range(0..8);
        let trial_dir = scratch.path().join(format!("trial-{trial}"));
        copy_dir(original.path(), &trial_dir);
        let damaged_path = trial_dir.join(files[file_index].file_name().unwrap());
        let mut damaged = contents[file_index].clone();
        damaged[at] ^= 1 << bit;
        replace_file(&damaged_path, &damaged);

        // Where the flip landed: the segment header (offset 0) or the record holding it.
        let spans = record_spans(&contents[file_index]);
        let hit = spans.iter().find(|(s, e)| (*s..*e).contains(&(at as u64))).map_or(0, |(s, _)| *s);
        let in_last_record = file_index == files.len() - 1 && hit == spans.last().unwrap().0;
        let context = format!("trial {trial}: bit {bit} of byte {at} in {:?}", files[file_index]);

        let from_reader = read_all(&trial_dir);
        match Journal::open(config(&trial_dir, segment_bytes, Durability::None)) {
            Err(JournalError::Corrupt { file, offset, .. }) => {
                assert!(!in_last_record, "{context}: a torn tail was refused");
                assert_eq!((file.as_path(), offset), (damaged_path.as_path(), hit), "{context}");
                assert_eq!(expect_corrupt(from_reader), (damaged_path.clone(), hit), "{context}: reader");
                refused += 1;
            }
            Ok((journal, report)) => {
                assert!(in_last_record, "{context}: damage went unnoticed");
                let prefix = &written[..written.len() - 1];
                assert_eq!(report.last_seq, prefix.len() as u64, "{context}");
                assert_eq!(from_reader.unwrap(), prefix, "{context}: reader before repair");
                drop(journal);
                assert_eq!(read_all(&trial_dir).unwrap(), prefix, "{context}: after repair");
                torn += 1;
            }
            Err(other) => panic!("{context}: {other}"),
        }
        std::fs::remove_dir_all(&trial_dir).unwrap();
    }
    assert!(refused > 900 && torn > 0, "refused {refused}, torn {torn}");
}

#[test]
fn rollover_across_many_segments_reads_back_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let segment_bytes = 4096;
    let written = write_journal(dir.path(), segment_bytes, &random_payloads(&mut rng, 1000, 64..100), 64);
    let segments = segment_files(dir.path());
    assert!(segments.len() > 20);
    for file in &segments {
        assert!(std::fs::metadata(file).unwrap().len() <= segment_bytes);
    }
    let (journal, report) = Journal::open(config(dir.path(), segment_bytes, Durability::Fsync)).unwrap();
    let expected = RecoveryReport { records: 1000, last_seq: 1000, truncated_bytes: 0, segments: segments.len() };
    assert_eq!(report, expected);
    assert_eq!(journal.last_seq(), 1000);
    assert_eq!(read_all(dir.path()).unwrap(), written);
    for after in [1, 63, 64, 500, 999, 1000, 5000] {
        let tail: Records = Journal::read_after(dir.path(), after).unwrap().map(Result::unwrap).collect();
        assert_eq!(tail, written[(after as usize).min(1000)..], "after {after}");
    }
}

#[test]
fn damaged_earlier_segment_refuses_to_open() {
    let original = tempfile::tempdir().unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    write_journal(original.path(), 1024, &random_payloads(&mut rng, 100, 50..90), 10);
    let files = segment_files(original.path());
    let second = files[1].file_name().unwrap();
    let cases: [(&str, Damage); 3] = [
        ("flipped byte", |b| b[100] ^= 0x40),
        ("cut tail", |b| b.truncate(b.len() - 3)),
        ("zeroed tail", |b| {
            let n = b.len();
            b[n - 30..].fill(0)
        }),
    ];
    for (what, damage) in cases {
        let scratch = tempfile::tempdir().unwrap();
        copy_dir(original.path(), scratch.path());
        let path = scratch.path().join(second);
        let mut bytes = std::fs::read(&path).unwrap();
        damage(&mut bytes);
        replace_file(&path, &bytes);
        let (file, _) = expect_corrupt(Journal::open(config(scratch.path(), 1024, Durability::None)));
        assert_eq!(file, path, "{what}");
        assert_eq!(expect_corrupt(read_all(scratch.path())).0, path, "{what}: reader");
    }
    let scratch = tempfile::tempdir().unwrap();
    copy_dir(original.path(), scratch.path());
    std::fs::remove_file(scratch.path().join(second)).unwrap();
    let (file, offset) = expect_corrupt(Journal::open(config(scratch.path(), 1024, Durability::None)));
    assert_eq!((file.file_name().unwrap(), offset), (files[2].file_name().unwrap(), 0), "a missing segment is a gap");
}

#[test]
fn snapshot_round_trip_falls_back_past_a_damaged_newest_and_ignores_temp_files() {
    let dir = tempfile::tempdir().unwrap();
    write_snapshot(dir.path(), 100, b"state at 100").unwrap();
    let newest = write_snapshot(dir.path(), 250, b"state at 250").unwrap();
    assert_eq!(latest_snapshot(dir.path()).unwrap(), Some((250, b"state at 250".to_vec())));

    let mut bytes = std::fs::read(&newest).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&newest, &bytes).unwrap();
    let temp = dir.path().join("snapshot-00000000000000000300.bin.tmp");
    std::fs::write(&temp, b"half a snapsh").unwrap();

    let scan = scan_snapshots(dir.path()).unwrap();
    assert_eq!(scan.latest, Some((100, b"state at 100".to_vec())));
    assert_eq!(scan.skipped.len(), 1);
    assert_eq!(scan.skipped[0].path, newest);
    assert!(scan.skipped[0].reason.contains("checksum"), "{}", scan.skipped[0].reason);
    assert_eq!(latest_snapshot(dir.path()).unwrap().map(|s| s.0), Some(100));
    assert!(temp.exists(), "reading never deletes: a writer may own the temp file");

    write_snapshot(dir.path(), 400, b"state at 400").unwrap();
    assert!(!temp.exists(), "the next write cleans up");
    assert_eq!(latest_snapshot(dir.path()).unwrap(), Some((400, b"state at 400".to_vec())));
}

#[test]
fn recovery_is_the_newest_snapshot_plus_the_journal_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let (journal_dir, snapshot_dir) = (dir.path().join("journal"), dir.path().join("snapshots"));
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let payloads = random_payloads(&mut rng, 300, 64..100);
    let (mut journal, _) = Journal::open(config(&journal_dir, 2048, Durability::Fsync)).unwrap();
    for (i, payload) in payloads.iter().enumerate() {
        let seq = i as u64 + 1;
        journal.append(seq, payload).unwrap();
        if seq.is_multiple_of(50) {
            journal.commit().unwrap();
            write_snapshot(&snapshot_dir, seq, &seq.to_le_bytes()).unwrap();
            let oldest_kept = prune_snapshots(&snapshot_dir, 2).unwrap().unwrap();
            journal.prune_before(oldest_kept).unwrap();
        }
    }
    journal.commit().unwrap();
    drop(journal);

    let (seq, state) = latest_snapshot(&snapshot_dir).unwrap().unwrap();
    assert_eq!((seq, state), (300, 300u64.to_le_bytes().to_vec()));
    // The older snapshot is still covered by the journal, so it could stand in for the newest.
    let replay: Records = Journal::read_after(&journal_dir, 250).unwrap().map(Result::unwrap).collect();
    assert_eq!(replay.len(), 50);
    assert!(matches!(Journal::read_after(&journal_dir, 100), Err(JournalError::Pruned { .. })));
    let (_, report) = Journal::open(config(&journal_dir, 2048, Durability::Fsync)).unwrap();
    assert_eq!(report.last_seq, 300);
}
