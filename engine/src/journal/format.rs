//! The journal's bytes on disk: segment file names, the segment header, the record frame, and the
//! checks that tell a good record from a torn or corrupt one. Shared by recovery and by readers.
//!
//! A segment is `[header][record][record]…`. The header is
//! `[magic 8][version u32][crc32c u32 over magic+version+first_seq][first_seq u64]`, all little
//! endian. A record is `[len u32][crc32c u32 over seq+payload][seq u64][payload: len bytes]`.

use super::JournalError;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// The largest record, frame included. A command is a few hundred bytes; anything near this is a
/// bug upstream, and the bound keeps a corrupt `len` from driving a huge allocation on recovery.
pub const RECORD_BYTES_MAX: usize = 16 << 20;
pub(crate) const RECORD_HEADER_LEN: usize = 16;
pub(crate) const SEGMENT_HEADER_LEN: u64 = 24;

const SEGMENT_MAGIC: [u8; 8] = *b"HUASHIJ\n";
const SEGMENT_VERSION: u32 = 1;
const SEGMENT_PREFIX: &str = "journal-";
const SEGMENT_SUFFIX: &str = ".log";
/// Twenty digits hold any u64, so names sort in sequence order.
const SEGMENT_SEQ_DIGITS: usize = 20;

pub(crate) fn segment_file_name(first_seq: u64) -> String {
    format!("{SEGMENT_PREFIX}{first_seq:020}{SEGMENT_SUFFIX}")
}

fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix(SEGMENT_PREFIX)?.strip_suffix(SEGMENT_SUFFIX)?;
    if digits.len() != SEGMENT_SEQ_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Every segment in `dir`, oldest first, as (first seq from the name, path).
pub(crate) fn list_segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>, JournalError> {
    let entries = std::fs::read_dir(dir).map_err(|e| JournalError::io(dir, e))?;
    let mut segments = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| JournalError::io(dir, e))?;
        if let Some(seq) = entry.file_name().to_str().and_then(parse_segment_name) {
            segments.push((seq, entry.path()));
        }
    }
    segments.sort_unstable_by_key(|(seq, _)| *seq);
    Ok(segments)
}

pub(crate) fn encode_segment_header(first_seq: u64) -> [u8; SEGMENT_HEADER_LEN as usize] {
    let mut header = [0u8; SEGMENT_HEADER_LEN as usize];
    header[0..8].copy_from_slice(&SEGMENT_MAGIC);
    header[8..12].copy_from_slice(&SEGMENT_VERSION.to_le_bytes());
    header[16..24].copy_from_slice(&first_seq.to_le_bytes());
    let crc = segment_header_crc(&header);
    header[12..16].copy_from_slice(&crc.to_le_bytes());
    header
}

fn segment_header_crc(header: &[u8; SEGMENT_HEADER_LEN as usize]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&header[0..12]), &header[16..24])
}

/// Verifies the header of the segment named for `name_seq`. `Ok(Err(reason))` is a bad header.
pub(crate) fn check_segment_header(file: &File, name_seq: u64, file_len: u64) -> io::Result<Result<(), String>> {
    if file_len < SEGMENT_HEADER_LEN {
        return Ok(Err(format!("segment header cut short at {file_len} bytes")));
    }
    let mut header = [0u8; SEGMENT_HEADER_LEN as usize];
    file.read_exact_at(&mut header, 0)?;
    if header[0..8] != SEGMENT_MAGIC {
        return Ok(Err("not a journal segment: bad magic".into()));
    }
    let stored_crc = u32::from_le_bytes(header[12..16].try_into().unwrap());
    if stored_crc != segment_header_crc(&header) {
        return Ok(Err("segment header checksum mismatch".into()));
    }
    let version = u32::from_le_bytes(header[8..12].try_into().unwrap());
    if version != SEGMENT_VERSION {
        return Ok(Err(format!("unsupported segment version {version}")));
    }
    let first_seq = u64::from_le_bytes(header[16..24].try_into().unwrap());
    if first_seq != name_seq {
        return Ok(Err(format!("header says the segment starts at seq {first_seq}, its name says {name_seq}")));
    }
    Ok(Ok(()))
}

/// Appends one framed record to `buf`.
pub(crate) fn encode_record(buf: &mut Vec<u8>, seq: u64, payload: &[u8]) {
    let seq_bytes = seq.to_le_bytes();
    let crc = crc32c::crc32c_append(crc32c::crc32c(&seq_bytes), payload);
    let len = u32::try_from(payload.len()).expect("record length checked against RECORD_BYTES_MAX");
    buf.extend_from_slice(&len.to_le_bytes());
    buf.extend_from_slice(&crc.to_le_bytes());
    buf.extend_from_slice(&seq_bytes);
    buf.extend_from_slice(payload);
}

/// What the next bytes of a segment hold.
pub(crate) enum Frame {
    Record {
        seq: u64,
    },
    End,
    /// A record that does not verify, starting at `offset`.
    Bad {
        offset: u64,
        reason: String,
    },
}

/// Reads records one after another from a segment, verifying each.
pub(crate) struct RecordCursor<F> {
    reader: BufReader<F>,
    offset: u64,
    file_len: u64,
}

impl<F: Read + Seek> RecordCursor<F> {
    /// Big enough that a scan runs at disk speed, small enough to keep a reader cheap.
    const READ_BUFFER_BYTES: usize = 1 << 20;

    /// Starts reading at the first record, right after the header. Bytes past `file_len` are not
    /// looked at, so a reader of a segment being written sees a consistent prefix.
    pub(crate) fn new(file: F, file_len: u64) -> io::Result<Self> {
        let mut reader = BufReader::with_capacity(Self::READ_BUFFER_BYTES, file);
        reader.seek(SeekFrom::Start(SEGMENT_HEADER_LEN))?;
        Ok(RecordCursor { reader, offset: SEGMENT_HEADER_LEN, file_len })
    }

    pub(crate) fn file(&self) -> &F {
        self.reader.get_ref()
    }

    /// Where the next record starts; after a `Record`, the end of the good data so far.
    pub(crate) fn offset(&self) -> u64 {
        self.offset
    }

    /// Reads the next record's payload into `payload` (reusing its capacity). After `Bad` the
    /// cursor must not be used again.
    pub(crate) fn next_frame(&mut self, payload: &mut Vec<u8>) -> io::Result<Frame> {
        let offset = self.offset;
        let remaining = self.file_len - offset;
        if remaining == 0 {
            return Ok(Frame::End);
        }
        let bad = |reason: String| Ok(Frame::Bad { offset, reason });
        if remaining < RECORD_HEADER_LEN as u64 {
            return bad(format!("record header cut short: {remaining} bytes before end of file"));
        }
        let mut header = [0u8; RECORD_HEADER_LEN];
        self.reader.read_exact(&mut header)?;
        let (len, crc, seq) = split_record_header(&header);
        if len > RECORD_BYTES_MAX - RECORD_HEADER_LEN {
            return bad(format!("record length {len} is over record_bytes_max"));
        }
        let record_len = (RECORD_HEADER_LEN + len) as u64;
        if record_len > remaining {
            return bad(format!("record of {record_len} bytes runs {} bytes past end of file", record_len - remaining));
        }
        payload.clear();
        payload.resize(len, 0);
        self.reader.read_exact(payload)?;
        if crc != record_crc(seq, payload) {
            return bad("record checksum mismatch".into());
        }
        self.offset += record_len;
        Ok(Frame::Record { seq })
    }
}

fn split_record_header(header: &[u8; RECORD_HEADER_LEN]) -> (usize, u32, u64) {
    let len = u32::from_le_bytes(header[0..4].try_into().unwrap()) as usize;
    let crc = u32::from_le_bytes(header[4..8].try_into().unwrap());
    let seq = u64::from_le_bytes(header[8..16].try_into().unwrap());
    (len, crc, seq)
}

fn record_crc(seq: u64, payload: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&seq.to_le_bytes()), payload)
}

/// Decides what a bad record at `bad_offset` means. In the last segment, with no verifiable
/// record after it, it is a torn tail: `Ok(())`. Anywhere else it is corruption of data that was
/// once durable, and the journal must not be opened over it.
pub(crate) fn judge_bad_record(
    file: &File,
    path: &Path,
    is_last_segment: bool,
    bad_offset: u64,
    reason: String,
    last_good_seq: u64,
    file_len: u64,
) -> Result<(), JournalError> {
    if !is_last_segment {
        let reason = format!("{reason} in a segment that is not the last");
        return Err(JournalError::corrupt(path, bad_offset, reason));
    }
    let later = later_valid_record(file, bad_offset, file_len, last_good_seq).map_err(|e| JournalError::io(path, e))?;
    match later {
        None => Ok(()),
        Some(at) => {
            let reason = format!("{reason}, yet a valid record follows at offset {at}");
            Err(JournalError::corrupt(path, bad_offset, reason))
        }
    }
}

/// Looks for any verifiable record starting after `bad_offset`, which would prove the bad record
/// is damage in the middle of the journal rather than the tail of an interrupted write. The
/// length field of the bad record cannot be trusted, so every byte offset is a candidate; a cheap
/// plausibility test on the seq field (it must be a little above `last_good_seq`) rejects nearly
/// all of them, including zero-filled space, before any checksum is computed.
fn later_valid_record(file: &File, bad_offset: u64, file_len: u64, last_good_seq: u64) -> io::Result<Option<u64>> {
    const WINDOW_BYTES: usize = 1 << 20;
    let mut window = vec![0u8; WINDOW_BYTES + RECORD_HEADER_LEN];
    let mut payload = Vec::new();
    let mut base = bad_offset + 1;
    while base + RECORD_HEADER_LEN as u64 <= file_len {
        let n = (file_len - base).min(window.len() as u64) as usize;
        file.read_exact_at(&mut window[..n], base)?;
        let candidates = (n - RECORD_HEADER_LEN + 1).min(WINDOW_BYTES);
        for i in 0..candidates {
            let at = base + i as u64;
            let header: &[u8; RECORD_HEADER_LEN] = window[i..i + RECORD_HEADER_LEN].try_into().unwrap();
            let (len, crc, seq) = split_record_header(header);
            // Between bad_offset and `at` fit at most (at - bad_offset) / 16 records.
            let seq_max = last_good_seq + 2 + (at - bad_offset) / RECORD_HEADER_LEN as u64;
            if seq <= last_good_seq || seq > seq_max {
                continue;
            }
            if len > RECORD_BYTES_MAX - RECORD_HEADER_LEN || at + (RECORD_HEADER_LEN + len) as u64 > file_len {
                continue;
            }
            payload.resize(len, 0);
            file.read_exact_at(&mut payload, at + RECORD_HEADER_LEN as u64)?;
            if crc == record_crc(seq, &payload) {
                return Ok(Some(at));
            }
        }
        base += candidates as u64;
    }
    Ok(None)
}

/// True when every byte of `file` in `from..file_len` is zero: space that was allocated (or a
/// header that was never written) rather than data that was damaged.
pub(crate) fn is_zero_from(file: &File, from: u64, file_len: u64) -> io::Result<bool> {
    let mut chunk = vec![0u8; 64 << 10];
    let mut at = from;
    while at < file_len {
        let n = (file_len - at).min(chunk.len() as u64) as usize;
        file.read_exact_at(&mut chunk[..n], at)?;
        if chunk[..n].iter().any(|&b| b != 0) {
            return Ok(false);
        }
        at += n as u64;
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn segment_names_round_trip_and_sort_by_seq() {
        let names: Vec<String> = [1u64, 9, 10, u64::MAX].iter().map(|&s| segment_file_name(s)).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        assert_eq!(parse_segment_name(&names[3]), Some(u64::MAX));
        assert_eq!(parse_segment_name("journal-1.log"), None);
        assert_eq!(parse_segment_name("journal-0000000000000000000a.log"), None);
        assert_eq!(parse_segment_name("journal-00000000000000000001.log.tmp"), None);
    }

    #[test]
    fn segment_header_rejects_any_flipped_bit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seg");
        let good = encode_segment_header(42);
        for bit in 0..good.len() * 8 {
            let mut bytes = good;
            bytes[bit / 8] ^= 1 << (bit % 8);
            std::fs::write(&path, bytes).unwrap();
            let file = File::open(&path).unwrap();
            assert!(check_segment_header(&file, 42, bytes.len() as u64).unwrap().is_err(), "bit {bit}");
        }
        std::fs::write(&path, good).unwrap();
        let file = File::open(&path).unwrap();
        assert!(check_segment_header(&file, 42, good.len() as u64).unwrap().is_ok());
        assert!(check_segment_header(&file, 43, good.len() as u64).unwrap().is_err());
    }

    #[test]
    fn cursor_reads_back_encoded_records_then_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seg");
        let mut bytes = encode_segment_header(7).to_vec();
        encode_record(&mut bytes, 7, b"");
        encode_record(&mut bytes, 8, b"tulips");
        File::create(&path).unwrap().write_all(&bytes).unwrap();
        let file = File::open(&path).unwrap();
        let mut cursor = RecordCursor::new(&file, bytes.len() as u64).unwrap();
        let mut payload = Vec::new();
        assert!(matches!(cursor.next_frame(&mut payload).unwrap(), Frame::Record { seq: 7 }));
        assert!(payload.is_empty());
        assert!(matches!(cursor.next_frame(&mut payload).unwrap(), Frame::Record { seq: 8 }));
        assert_eq!(payload, b"tulips");
        assert!(matches!(cursor.next_frame(&mut payload).unwrap(), Frame::End));
        assert_eq!(cursor.offset(), bytes.len() as u64);
    }

    #[test]
    fn zero_filled_space_is_a_bad_frame_with_no_valid_record_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seg");
        let mut bytes = encode_segment_header(1).to_vec();
        encode_record(&mut bytes, 1, b"rose");
        let good_end = bytes.len() as u64;
        bytes.resize(bytes.len() + 4096, 0);
        std::fs::write(&path, &bytes).unwrap();
        let file = File::open(&path).unwrap();
        let len = bytes.len() as u64;
        let mut cursor = RecordCursor::new(&file, len).unwrap();
        let mut payload = Vec::new();
        assert!(matches!(cursor.next_frame(&mut payload).unwrap(), Frame::Record { seq: 1 }));
        let Frame::Bad { offset, .. } = cursor.next_frame(&mut payload).unwrap() else { panic!() };
        assert_eq!(offset, good_end);
        assert_eq!(later_valid_record(&file, offset, len, 1).unwrap(), None);
        assert!(is_zero_from(&file, good_end, len).unwrap());
    }

    #[test]
    fn a_valid_record_after_damage_is_found_at_its_offset() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seg");
        let mut bytes = encode_segment_header(1).to_vec();
        encode_record(&mut bytes, 1, b"lily");
        let damaged_at = bytes.len();
        encode_record(&mut bytes, 2, b"peony");
        let second_at = bytes.len() as u64;
        encode_record(&mut bytes, 3, b"orchid");
        bytes[damaged_at] ^= 0x10; // the length of record 2
        std::fs::write(&path, &bytes).unwrap();
        let file = File::open(&path).unwrap();
        let found = later_valid_record(&file, damaged_at as u64, bytes.len() as u64, 1).unwrap();
        assert_eq!(found, Some(second_at));
    }
}
