//! `Journal::read_after`: streams verified records with seq above a point, segment by segment,
//! holding one segment open and one record in memory at a time. Read-only: it never repairs, so
//! it can run beside a live writer (it then sees a consistent prefix) or on a copied directory.

use super::format::{
    check_segment_header, is_zero_from, judge_bad_record, list_segments, Frame, RecordCursor, SEGMENT_HEADER_LEN,
};
use super::JournalError;
use std::fs::File;
use std::path::{Path, PathBuf};

/// The records with seq > `after`, in order. Ends at the journal's end or at a torn tail; yields
/// one `Err` and then ends on damage.
pub struct JournalReader {
    /// Segments not yet opened, newest last, as (first seq, path).
    pending: std::vec::IntoIter<(u64, PathBuf)>,
    current: Option<OpenSegment>,
    after: u64,
    /// The seq the next record must carry.
    next_seq: u64,
    /// The current record's payload, reused between records: `next_borrowed` lends it, the
    /// `Iterator` hands it out by `mem::take` (so each yielded Vec is the caller's).
    payload: Vec<u8>,
    done: bool,
}

struct OpenSegment {
    cursor: RecordCursor<File>,
    path: PathBuf,
    file_len: u64,
    is_last: bool,
}

impl JournalReader {
    pub(crate) fn new(dir: &Path, after: u64) -> Result<JournalReader, JournalError> {
        let mut listed = list_segments(dir)?;
        // The segment holding seq after+1 is the last one starting at or before it.
        let start = listed.iter().rposition(|(first, _)| *first <= after.saturating_add(1)).unwrap_or(0);
        if let Some((first_seq, _)) = listed.get(start) {
            if *first_seq > after.saturating_add(1) {
                return Err(JournalError::Pruned { after, first_seq: *first_seq });
            }
        }
        let next_seq = listed.get(start).map_or(0, |(first, _)| *first);
        listed.drain(..start);
        Ok(JournalReader {
            pending: listed.into_iter(),
            current: None,
            after,
            next_seq,
            payload: Vec::new(),
            done: false,
        })
    }

    /// Opens the next segment; `Ok(false)` when there is none, or when the last one is a
    /// header-less remnant of a crash right after it was created (nothing in it yet).
    fn open_next(&mut self) -> Result<bool, JournalError> {
        let Some((first_seq, path)) = self.pending.next() else {
            return Ok(false);
        };
        let is_last = self.pending.len() == 0;
        if first_seq != self.next_seq {
            let reason = format!("sequence gap: segment starts at seq {first_seq}, expected {}", self.next_seq);
            return Err(JournalError::corrupt(&path, 0, reason));
        }
        let io_err = |e| JournalError::io(&path, e);
        let file = File::open(&path).map_err(io_err)?;
        let file_len = file.metadata().map_err(io_err)?.len();
        if let Err(reason) = check_segment_header(&file, first_seq, file_len).map_err(io_err)? {
            if is_last && is_zero_from(&file, SEGMENT_HEADER_LEN, file_len).map_err(io_err)? {
                return Ok(false);
            }
            return Err(JournalError::corrupt(&path, 0, reason));
        }
        let cursor = RecordCursor::new(file, file_len).map_err(io_err)?;
        self.current = Some(OpenSegment { cursor, path, file_len, is_last });
        Ok(true)
    }

    /// The next record, lent rather than handed over: a replay that decodes each payload and
    /// drops it allocates nothing per record. Same records, checks and end as the `Iterator`.
    pub fn next_borrowed(&mut self) -> Option<Result<(u64, &[u8]), JournalError>> {
        match self.next_seq_checked()? {
            Ok(seq) => Some(Ok((seq, &self.payload))),
            Err(e) => Some(Err(e)),
        }
    }

    /// Reads the next record into `self.payload`; `None` once the stream has ended. After the
    /// first `None` or `Err` the stream is over.
    fn next_seq_checked(&mut self) -> Option<Result<u64, JournalError>> {
        if self.done {
            return None;
        }
        let result = self.next_record().transpose();
        if !matches!(result, Some(Ok(_))) {
            self.done = true;
            self.current = None;
        }
        result
    }

    fn next_record(&mut self) -> Result<Option<u64>, JournalError> {
        loop {
            let Some(segment) = &mut self.current else {
                if !self.open_next()? {
                    return Ok(None);
                }
                continue;
            };
            let record_offset = segment.cursor.offset();
            let frame = segment.cursor.next_frame(&mut self.payload).map_err(|e| JournalError::io(&segment.path, e))?;
            match frame {
                Frame::Record { seq } if seq != self.next_seq => {
                    let reason = format!("record has seq {seq}, expected {}", self.next_seq);
                    return Err(JournalError::corrupt(&segment.path, record_offset, reason));
                }
                Frame::Record { seq } => {
                    self.next_seq += 1;
                    if seq > self.after {
                        return Ok(Some(seq));
                    }
                }
                Frame::End => self.current = None,
                Frame::Bad { offset, reason } => {
                    let file = segment.cursor.file();
                    let last_good = self.next_seq - 1;
                    judge_bad_record(
                        file,
                        &segment.path,
                        segment.is_last,
                        offset,
                        reason,
                        last_good,
                        segment.file_len,
                    )?;
                    return Ok(None);
                }
            }
        }
    }
}

impl Iterator for JournalReader {
    type Item = Result<(u64, Vec<u8>), JournalError>;

    fn next(&mut self) -> Option<Self::Item> {
        let result = self.next_seq_checked()?;
        Some(result.map(|seq| (seq, std::mem::take(&mut self.payload))))
    }
}
