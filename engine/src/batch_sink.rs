//! A second way of making a batch durable, beside the local journal's `fdatasync`: a `BatchSink`
//! receives each committed batch's journal records, byte for byte as the journal frames them
//! (CRCs included), on the `journal-sync` thread after the local sync and in batch order. The
//! batch's replies are released only once it returns `Ok`, so a reply never reports what the
//! sink does not hold. Shipping batch k overlaps applying batch k + 1, as the sync does.
//!
//! Replication (a leader shipping its journal to followers) is a sink; the core and the gateway
//! know nothing of it. What a follower receives goes back in through `Submission::Replicated`,
//! checked record by record by [`ShippedRecords`].

use std::fmt;
use std::sync::{Arc, Mutex};

pub trait BatchSink: Send {
    /// Makes the records of seqs `first..=last` durable. An `Err` is fatal to the sequencer:
    /// nothing of this batch or after it is released. A sink that can wait (a replica set that
    /// is briefly unreachable) waits here rather than fail.
    fn ship(&mut self, first: u64, last: u64, records: &[u8]) -> Result<(), String>;
}

/// A sink as the sequencer's config holds it (cheap to clone; used by one thread at a time).
#[derive(Clone)]
pub struct SinkHandle(Arc<Mutex<Box<dyn BatchSink>>>);

impl SinkHandle {
    pub fn new(sink: impl BatchSink + 'static) -> SinkHandle {
        SinkHandle(Arc::new(Mutex::new(Box::new(sink))))
    }

    pub(crate) fn ship(&self, first: u64, last: u64, records: &[u8]) -> Result<(), String> {
        // A sink that panicked poisoned the mutex: the process is stopping anyway (fatal).
        let mut sink = self.0.lock().map_err(|_| "the batch sink panicked".to_string())?;
        sink.ship(first, last, records)
    }
}

impl fmt::Debug for SinkHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SinkHandle")
    }
}

/// The records of a shipped batch, framed as the journal frames them (`u32 len, u32 crc32c,
/// u64 seq, payload`, little-endian): each is checked (length, CRC) as it is read, so a damaged
/// batch is refused before any of it is applied. Whole records only: a batch never ends inside
/// one.
pub struct ShippedRecords<'a> {
    bytes: &'a [u8],
}

impl<'a> ShippedRecords<'a> {
    pub fn new(bytes: &'a [u8]) -> ShippedRecords<'a> {
        ShippedRecords { bytes }
    }

    /// Splits `bytes` at record boundaries into pieces of at most `max_bytes` each (a record
    /// larger than that is a piece of its own): the messages one batch is published as.
    pub fn split(bytes: &[u8], max_bytes: usize) -> Vec<&[u8]> {
        let mut pieces = Vec::new();
        let (mut start, mut at) = (0, 0);
        while at < bytes.len() {
            let len = u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) as usize;
            let next = at + RECORD_HEADER_LEN + len;
            if next - start > max_bytes && at > start {
                pieces.push(&bytes[start..at]);
                start = at;
            }
            at = next;
        }
        if start < bytes.len() {
            pieces.push(&bytes[start..]);
        }
        pieces
    }
}

const RECORD_HEADER_LEN: usize = 16;

impl<'a> Iterator for ShippedRecords<'a> {
    /// (seq, payload), or why the bytes are not a well-formed record.
    type Item = Result<(u64, &'a [u8]), String>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.bytes.is_empty() {
            return None;
        }
        let Some(header) = self.bytes.get(..RECORD_HEADER_LEN) else {
            self.bytes = &[];
            return Some(Err("a shipped batch ends inside a record header".into()));
        };
        let len = u32::from_le_bytes(header[0..4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(header[4..8].try_into().expect("4 bytes"));
        let seq_bytes: [u8; 8] = header[8..16].try_into().expect("8 bytes");
        let seq = u64::from_le_bytes(seq_bytes);
        let Some(payload) = self.bytes.get(RECORD_HEADER_LEN..RECORD_HEADER_LEN + len) else {
            self.bytes = &[];
            return Some(Err(format!("shipped record {seq} is cut short")));
        };
        if crc32c::crc32c_append(crc32c::crc32c(&seq_bytes), payload) != crc {
            self.bytes = &[];
            return Some(Err(format!("shipped record {seq} fails its CRC")));
        }
        self.bytes = &self.bytes[RECORD_HEADER_LEN + len..];
        Some(Ok((seq, payload)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(seqs: std::ops::RangeInclusive<u64>, payload_len: usize) -> Vec<u8> {
        let mut bytes = Vec::new();
        for seq in seqs {
            crate::journal::format::encode_record(&mut bytes, seq, &vec![seq as u8; payload_len]);
        }
        bytes
    }

    #[test]
    fn records_read_back_in_order_and_damage_is_refused() {
        let bytes = framed(1..=5, 10);
        let seqs: Vec<u64> = ShippedRecords::new(&bytes).map(|r| r.unwrap().0).collect();
        assert_eq!(seqs, vec![1, 2, 3, 4, 5]);
        let mut damaged = bytes.clone();
        damaged[16 + 10 + 16 + 3] ^= 1; // a payload byte of record 2
        let read: Vec<_> = ShippedRecords::new(&damaged).collect();
        assert_eq!(read.len(), 2);
        assert!(read[1].as_ref().unwrap_err().contains("record 2 fails its CRC"));
        let cut: Vec<_> = ShippedRecords::new(&bytes[..bytes.len() - 1]).collect();
        assert!(cut.last().unwrap().as_ref().unwrap_err().contains("cut short"));
    }

    #[test]
    fn a_batch_splits_at_record_boundaries_within_the_size() {
        let bytes = framed(1..=10, 84); // 100 bytes a record
        let pieces = ShippedRecords::split(&bytes, 350);
        assert_eq!(pieces.iter().map(|p| p.len()).collect::<Vec<_>>(), vec![300, 300, 300, 100]);
        assert_eq!(pieces.concat(), bytes);
        let oversize = ShippedRecords::split(&bytes[..100], 10);
        assert_eq!(oversize, vec![&bytes[..100]], "a record larger than the limit goes alone");
    }
}
