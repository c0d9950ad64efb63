//! The leader's side of replication: every batch the sequencer commits is published to the
//! hall's stream before its replies leave (the sequencer's `BatchSink`, on `journal-sync`).
//!
//! Two headers make a publish safe to repeat and impossible to fork:
//! - `Nats-Msg-Id` = `<term>:<first seq>`: a publish retried after a lost acknowledgement is
//!   answered `duplicate` with the first copy's seq, and stored once.
//! - the expected last stream seq: a publish from a leader that is no longer the stream's last
//!   writer is refused (error 10071). That is the fencing. JetStream checks duplicates before the
//!   expected seq, so a deposed leader re-publishing a batch the new leader already stored under
//!   the same id would get a *successful* duplicate; the term in the id makes its ids its own.
//!
//! A new leader publishes a term record first (see `lease`); once it is in, no older term can
//! publish again. If NATS cannot be reached the shipper waits, `/health` says degraded, and the
//! batch's replies wait with it: nothing is acknowledged that is not in the stream.

use super::stream::Kind;
use async_nats::jetstream::context::{Context, PublishErrorKind};
use async_nats::jetstream::message::PublishMessage;
use huashi_engine::batch_sink::{BatchSink, ShippedRecords};
use huashi_gateway::fatal;
use huashi_gateway::health::Health;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What the lease task and the shipper share: the term this node leads in (0: it does not) and
/// until when its lease is surely still held.
#[derive(Debug)]
pub struct LeaseState {
    term: AtomicU64,
    /// Milliseconds after `epoch` until which the lease is held (renewals push it on).
    valid_until_ms: AtomicU64,
    epoch: Instant,
}

impl Default for LeaseState {
    fn default() -> LeaseState {
        LeaseState::new()
    }
}

impl LeaseState {
    pub fn new() -> LeaseState {
        LeaseState { term: AtomicU64::new(0), valid_until_ms: AtomicU64::new(0), epoch: Instant::now() }
    }

    pub fn term(&self) -> u64 {
        self.term.load(Ordering::Acquire)
    }

    pub fn set_term(&self, term: u64) {
        self.term.store(term, Ordering::Release);
    }

    /// The lease is held until `until`.
    pub fn held_until(&self, until: Instant) {
        let ms = until.saturating_duration_since(self.epoch).as_millis() as u64;
        self.valid_until_ms.fetch_max(ms, Ordering::AcqRel);
    }

    pub fn is_held(&self) -> bool {
        (self.epoch.elapsed().as_millis() as u64) < self.valid_until_ms.load(Ordering::Acquire)
    }

    /// Another node leads: this one publishes nothing more, and the process stops.
    pub fn depose(&self, reason: &str) -> ! {
        fatal::exit(fatal::EXIT_DEPOSED, &format!("deposed as leader: {reason}"), None)
    }
}

/// Why a publish did not go through.
#[derive(Debug)]
pub enum PublishFailure {
    /// The stream has moved on without this node: it is not the leader any more.
    Fenced(String),
    /// NATS is unreachable or has no quorum: try again.
    Unavailable(String),
}

/// The one writer of the hall's stream on this node. The shipper and, while a follower takes
/// over, the lease task take turns through a mutex.
pub struct Publisher {
    js: Context,
    subject: String,
    stream_name: String,
    /// The stream's last seq as this node last saw it: the expected last seq of the next publish.
    stream_seq: u64,
    /// The last command seq in the stream.
    command_seq: u64,
    /// The term whose record is in the stream (the shipper publishes a new term's first).
    published_term: u64,
    /// Largest message this node may publish (the server's `max_payload`, less room for headers).
    max_message: usize,
}

/// Room left in a message for its headers.
const HEADER_ROOM: usize = 1024;

impl Publisher {
    pub fn new(js: Context, stream_name: String, subject: String, max_payload: usize) -> Publisher {
        Publisher {
            js,
            subject,
            stream_name,
            stream_seq: 0,
            command_seq: 0,
            published_term: 0,
            max_message: max_payload.saturating_sub(HEADER_ROOM).max(HEADER_ROOM),
        }
    }

    /// Publishes `payload` as `kind`, expecting the stream to end at `self.stream_seq`.
    async fn publish_one(&mut self, kind: Kind, payload: bytes::Bytes) -> Result<(), PublishFailure> {
        let message =
            PublishMessage::build().payload(payload).headers(kind.headers()).expected_last_sequence(self.stream_seq);
        let ack = self.js.send_publish(self.subject.clone(), message).await.map_err(unavailable)?;
        match ack.await {
            Ok(ack) => {
                self.stream_seq = self.stream_seq.max(ack.sequence);
                self.command_seq = self.command_seq.max(kind.last_seq());
                Ok(())
            }
            Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => self.own_or_fenced(kind).await,
            Err(e) => Err(unavailable(e)),
        }
    }

    /// A publish refused because the stream moved on: fenced, unless what moved it on is this
    /// node's own earlier attempt at the same message (one that timed out without a quorum and
    /// was stored when the quorum came back, while the retry was already on its way).
    async fn own_or_fenced(&mut self, kind: Kind) -> Result<(), PublishFailure> {
        let next = self.stream_seq + 1;
        let stream = self.js.get_stream_no_info(self.stream_name.clone()).await.map_err(unavailable)?;
        match super::stream::get(&stream, next).await {
            Ok((found, _)) if found == kind => {
                tracing::info!(?kind, seq = next, "found this node's own earlier publish in the stream");
                self.stream_seq = next;
                self.command_seq = self.command_seq.max(kind.last_seq());
                Ok(())
            }
            Ok(_) => Err(PublishFailure::Fenced(format!(
                "the stream no longer ends at seq {} (another node has published)",
                self.stream_seq
            ))),
            Err(reason) => Err(PublishFailure::Unavailable(reason)),
        }
    }

    /// A new hall's first message: its genesis market.
    pub async fn publish_genesis(&mut self, genesis: Vec<u8>) -> Result<(), PublishFailure> {
        self.stream_seq = 0;
        self.publish_one(Kind::Genesis, genesis.into()).await
    }

    /// Takes up the stream where a follower left it: `stream_seq` messages, commands to
    /// `command_seq`, then publishes the record of `term`, which fences every older one.
    pub async fn take_over(&mut self, term: u64, stream_seq: u64, command_seq: u64) -> Result<(), PublishFailure> {
        self.stream_seq = stream_seq;
        self.command_seq = command_seq;
        self.publish_term(term).await
    }

    async fn publish_term(&mut self, term: u64) -> Result<(), PublishFailure> {
        self.publish_one(Kind::Term { term, last: self.command_seq }, bytes::Bytes::new()).await?;
        self.published_term = term;
        Ok(())
    }

    /// Publishes one committed batch (as several messages of whole records if it is larger than a
    /// message may be), pipelined: all are sent, then the acknowledgements awaited in order.
    pub async fn publish_batch(&mut self, term: u64, records: &[u8]) -> Result<(), PublishFailure> {
        if self.published_term != term {
            self.publish_term(term).await?;
        }
        // After a failed attempt, the pieces already acknowledged are not sent again.
        let pieces: Vec<&[u8]> = ShippedRecords::split(records, self.max_message)
            .into_iter()
            .filter(|piece| first_and_last(piece).1 > self.command_seq)
            .collect();
        let mut acks = Vec::with_capacity(pieces.len());
        for (i, piece) in pieces.iter().enumerate() {
            let (first, last) = first_and_last(piece);
            let kind = Kind::Batch { term, first, last };
            let message = PublishMessage::build()
                .payload(bytes::Bytes::copy_from_slice(piece))
                .headers(kind.headers())
                .expected_last_sequence(self.stream_seq + i as u64);
            acks.push((kind, self.js.send_publish(self.subject.clone(), message).await.map_err(unavailable)?));
        }
        for (kind, ack) in acks {
            match ack.await {
                Ok(ack) => {
                    self.stream_seq = self.stream_seq.max(ack.sequence);
                    self.command_seq = self.command_seq.max(kind.last_seq());
                }
                // The first refusal, after every earlier piece was stored: fenced, unless the
                // stream holds this very piece already. (A piece after one that failed is
                // refused too, and goes again with the retry.)
                Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => {
                    self.own_or_fenced(kind).await?;
                    return Err(PublishFailure::Unavailable("a piece was stored by an earlier attempt".into()));
                }
                Err(e) => return Err(unavailable(e)),
            }
        }
        Ok(())
    }
}

fn unavailable(error: impl std::fmt::Display) -> PublishFailure {
    PublishFailure::Unavailable(format!("cannot publish to the hall's stream: {error}"))
}

/// The first and last seq of a piece of whole, already checked records.
fn first_and_last(piece: &[u8]) -> (u64, u64) {
    let mut seqs = ShippedRecords::new(piece).map(|r| r.expect("records this node framed").0);
    let first = seqs.next().expect("a piece holds a record");
    (first, seqs.last().unwrap_or(first))
}

/// The sequencer's `BatchSink` on a clustered node.
pub struct Shipper {
    pub publisher: Arc<tokio::sync::Mutex<Publisher>>,
    pub lease: Arc<LeaseState>,
    pub health: Arc<Health>,
    pub runtime: tokio::runtime::Handle,
}

/// How long the shipper waits between attempts while NATS is unreachable.
const RETRY_EVERY: Duration = Duration::from_millis(100);

impl BatchSink for Shipper {
    fn ship(&mut self, first: u64, last: u64, records: &[u8]) -> Result<(), String> {
        let mut publisher = self.publisher.blocking_lock();
        let mut degraded = false;
        loop {
            let term = self.lease.term();
            if term == 0 || !self.lease.is_held() {
                // A lease not renewed in time: publish nothing until the lease task has renewed
                // it or found it lost (and then ended the process).
                if !degraded {
                    tracing::warn!(first, last, "holding batch: this node's lease is not renewed");
                    self.health.degrade("the leader's lease is not renewed; acknowledging nothing");
                    degraded = true;
                }
                std::thread::sleep(RETRY_EVERY / 10);
                continue;
            }
            match self.runtime.block_on(publisher.publish_batch(term, records)) {
                Ok(()) => {
                    if degraded {
                        tracing::info!(first, last, "replicating again");
                        self.health.restore();
                    }
                    return Ok(());
                }
                Err(PublishFailure::Fenced(reason)) => self.lease.depose(&reason),
                Err(PublishFailure::Unavailable(reason)) => {
                    if !degraded {
                        tracing::warn!(first, last, %reason, "cannot replicate; acknowledging nothing until NATS answers");
                        degraded = true;
                    }
                    // Said again on every attempt: the lease task may have restored health
                    // (its renewal went through) while the stream still refuses.
                    self.health.degrade(&format!("cannot replicate: {reason}"));
                    std::thread::sleep(RETRY_EVERY);
                }
            }
        }
    }
}
