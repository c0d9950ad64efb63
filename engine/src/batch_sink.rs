//! A second way of making a batch durable, beside the local journal's `fdatasync`: a `BatchSink`
//! receives each committed batch's journal records, byte for byte as the journal frames them
//! (CRCs included), on the `journal-sync` thread after the local sync and in batch order. The
//! batch's replies are released only once it returns `Ok`, so a reply never reports what the
//! sink does not hold. Shipping batch k overlaps applying batch k + 1, as the sync does.
//!
//! Replication (a leader shipping its journal to followers) is a sink; the core and the gateway
//! know nothing of it.

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
