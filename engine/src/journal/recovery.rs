//! What `Journal::open` does before the first append: verify every segment in order, cut a torn
//! tail off the last one, and hand back the last segment ready for appending.
//!
//! What counts as a torn tail (truncated, then the file synced):
//! - in the last segment only, a bad record (short, over-long, failed checksum, zero-filled)
//!   with no verifiable record anywhere after it;
//! - a last segment whose header is bad or missing while every byte after the header is zero:
//!   the crash came between creating the segment and writing its header. The header is rewritten.
//!
//! Everything else is `Corrupt`: damage in an earlier segment, damage followed by good records,
//! a segment header that disagrees with its name, or a seq gap between or within segments. Such
//! damage was once durable data; starting over it would silently lose acknowledged commands.

use super::format::{
    check_segment_header, encode_segment_header, is_zero_from, judge_bad_record, list_segments, Frame, RecordCursor,
    SEGMENT_HEADER_LEN,
};
use super::{ActiveSegment, Durability, JournalError, RecoveryReport};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

pub(crate) struct Recovered {
    pub(crate) report: RecoveryReport,
    /// First seq of each segment, oldest first.
    pub(crate) segments: Vec<u64>,
    pub(crate) active: Option<ActiveSegment>,
}

pub(crate) fn recover(dir: &Path, durability: Durability) -> Result<Recovered, JournalError> {
    let listed = list_segments(dir)?;
    let mut report = RecoveryReport { segments: listed.len(), ..RecoveryReport::default() };
    let mut next_seq: Option<u64> = None;
    let mut payload = Vec::new();
    let mut active = None;
    for (i, (first_seq, path)) in listed.iter().enumerate() {
        let is_last = i + 1 == listed.len();
        if let Some(expected) = next_seq {
            if *first_seq != expected {
                let reason = format!("sequence gap: segment starts at seq {first_seq}, expected {expected}");
                return Err(JournalError::corrupt(path, 0, reason));
            }
        }
        let file = OpenOptions::new().read(true).write(is_last).open(path).map_err(|e| JournalError::io(path, e))?;
        let scanned = scan_segment(&file, path, *first_seq, is_last, durability, &mut payload)?;
        report.records += scanned.records;
        report.truncated_bytes += scanned.truncated_bytes;
        next_seq = Some(first_seq + scanned.records);
        if is_last {
            active = Some(ActiveSegment {
                file: Arc::new(file),
                path: path.clone(),
                end: scanned.end,
                allocated: scanned.end,
                records: scanned.records,
            });
        }
    }
    report.last_seq = next_seq.map_or(0, |next| next - 1);
    Ok(Recovered { report, segments: listed.iter().map(|(seq, _)| *seq).collect(), active })
}

struct ScannedSegment {
    records: u64,
    /// End of the last good record: where appending resumes.
    end: u64,
    truncated_bytes: u64,
}

fn scan_segment(
    file: &File,
    path: &Path,
    first_seq: u64,
    is_last: bool,
    durability: Durability,
    payload: &mut Vec<u8>,
) -> Result<ScannedSegment, JournalError> {
    let io_err = |e| JournalError::io(path, e);
    let file_len = file.metadata().map_err(io_err)?.len();
    if let Err(reason) = check_segment_header(file, first_seq, file_len).map_err(io_err)? {
        if is_last && is_zero_from(file, SEGMENT_HEADER_LEN, file_len).map_err(io_err)? {
            rewrite_header(file, path, first_seq, durability)?;
            let truncated_bytes = file_len.saturating_sub(SEGMENT_HEADER_LEN);
            tracing::warn!(
                file = %path.display(),
                offset = 0,
                bytes_dropped = truncated_bytes,
                reason = %reason,
                "journal recovery rewrote a torn segment header and dropped the zeroed bytes after it"
            );
            return Ok(ScannedSegment { records: 0, end: SEGMENT_HEADER_LEN, truncated_bytes });
        }
        return Err(JournalError::corrupt(path, 0, reason));
    }
    let mut cursor = RecordCursor::new(file, file_len).map_err(io_err)?;
    let mut next_seq = first_seq;
    loop {
        let record_offset = cursor.offset();
        match cursor.next_frame(payload).map_err(io_err)? {
            Frame::Record { seq } if seq == next_seq => next_seq += 1,
            Frame::Record { seq } => {
                let reason = format!("record has seq {seq}, expected {next_seq}");
                return Err(JournalError::corrupt(path, record_offset, reason));
            }
            Frame::End => {
                return Ok(ScannedSegment { records: next_seq - first_seq, end: file_len, truncated_bytes: 0 });
            }
            Frame::Bad { offset, reason } => {
                let why = reason.to_string();
                judge_bad_record(file, path, is_last, offset, reason, next_seq - 1, file_len)?;
                truncate(file, path, offset, durability)?;
                let truncated_bytes = file_len - offset;
                // Never silent: a dropped tail is a crash mid-write, or a disk worth a look.
                tracing::warn!(
                    file = %path.display(),
                    offset,
                    bytes_dropped = truncated_bytes,
                    reason = %why,
                    last_seq = next_seq - 1,
                    "journal recovery dropped a torn tail"
                );
                return Ok(ScannedSegment { records: next_seq - first_seq, end: offset, truncated_bytes });
            }
        }
    }
}

fn truncate(file: &File, path: &Path, len: u64, durability: Durability) -> Result<(), JournalError> {
    let io_err = |e| JournalError::io(path, e);
    file.set_len(len).map_err(io_err)?;
    if durability == Durability::Fsync {
        file.sync_all().map_err(io_err)?;
    }
    Ok(())
}

fn rewrite_header(file: &File, path: &Path, first_seq: u64, durability: Durability) -> Result<(), JournalError> {
    truncate(file, path, 0, Durability::None)?;
    file.write_all_at(&encode_segment_header(first_seq), 0).map_err(|e| JournalError::io(path, e))?;
    if durability == Durability::Fsync {
        file.sync_all().map_err(|e| JournalError::io(path, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::format::{encode_record, segment_file_name};
    use super::*;

    /// Writes a segment holding `count` records from `first_seq` on.
    fn write_segment(dir: &Path, first_seq: u64, count: u64) -> Vec<u8> {
        let mut bytes = encode_segment_header(first_seq).to_vec();
        for seq in first_seq..first_seq + count {
            encode_record(&mut bytes, seq, format!("payload {seq}").as_bytes());
        }
        std::fs::write(dir.join(segment_file_name(first_seq)), &bytes).unwrap();
        bytes
    }

    fn corrupt_offset(result: Result<Recovered, JournalError>) -> (String, u64) {
        match result {
            Err(JournalError::Corrupt { file, offset, .. }) => {
                (file.file_name().unwrap().to_string_lossy().into(), offset)
            }
            Err(other) => panic!("expected Corrupt, got {other}"),
            Ok(r) => panic!("expected Corrupt, recovered {:?}", r.report),
        }
    }

    #[test]
    fn header_only_last_segment_after_a_roll_is_accepted() {
        let dir = tempfile::tempdir().unwrap();
        write_segment(dir.path(), 1, 5);
        write_segment(dir.path(), 6, 0);
        let r = recover(dir.path(), Durability::None).unwrap();
        assert_eq!((r.report.last_seq, r.report.records, r.report.segments), (5, 5, 2));
        assert_eq!(r.active.unwrap().end, SEGMENT_HEADER_LEN);
    }

    #[test]
    fn empty_or_zeroed_last_segment_gets_its_header_back() {
        for len in [0usize, 10, 24, 4096] {
            let dir = tempfile::tempdir().unwrap();
            write_segment(dir.path(), 1, 3);
            let path = dir.path().join(segment_file_name(4));
            std::fs::write(&path, vec![0u8; len]).unwrap();
            let r = recover(dir.path(), Durability::Fsync).unwrap();
            assert_eq!(r.report.last_seq, 3, "len {len}");
            assert_eq!(std::fs::read(&path).unwrap(), encode_segment_header(4));
            assert!(recover(dir.path(), Durability::None).is_ok());
        }
    }

    #[test]
    fn damaged_header_of_a_last_segment_holding_records_is_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        write_segment(dir.path(), 1, 3);
        let mut bytes = write_segment(dir.path(), 4, 3);
        bytes[3] ^= 1;
        std::fs::write(dir.path().join(segment_file_name(4)), &bytes).unwrap();
        assert_eq!(corrupt_offset(recover(dir.path(), Durability::None)), (segment_file_name(4), 0));
    }

    #[test]
    fn seq_gap_between_segments_is_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        write_segment(dir.path(), 1, 3);
        write_segment(dir.path(), 5, 2);
        assert_eq!(corrupt_offset(recover(dir.path(), Durability::None)), (segment_file_name(5), 0));
    }

    #[test]
    fn well_checksummed_record_with_the_wrong_seq_is_corrupt_even_at_the_tail() {
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = write_segment(dir.path(), 1, 2);
        let at = bytes.len() as u64;
        encode_record(&mut bytes, 2, b"again");
        std::fs::write(dir.path().join(segment_file_name(1)), &bytes).unwrap();
        assert_eq!(corrupt_offset(recover(dir.path(), Durability::None)), (segment_file_name(1), at));
    }

    #[test]
    fn torn_tail_in_an_earlier_segment_is_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = write_segment(dir.path(), 1, 3);
        write_segment(dir.path(), 4, 1);
        let path = dir.path().join(segment_file_name(1));
        std::fs::write(&path, &bytes[..bytes.len() - 1]).unwrap();
        let (file, offset) = corrupt_offset(recover(dir.path(), Durability::None));
        assert_eq!(file, segment_file_name(1));
        assert!(offset > SEGMENT_HEADER_LEN && offset < bytes.len() as u64);
    }

    #[test]
    fn garbage_tail_is_cut_and_reported() {
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = write_segment(dir.path(), 1, 3);
        let good = bytes.len() as u64;
        bytes.extend_from_slice(&[0xAB; 37]);
        let path = dir.path().join(segment_file_name(1));
        std::fs::write(&path, &bytes).unwrap();
        let r = recover(dir.path(), Durability::Fsync).unwrap();
        assert_eq!((r.report.last_seq, r.report.truncated_bytes), (3, 37));
        assert_eq!(std::fs::metadata(&path).unwrap().len(), good);
    }
}
