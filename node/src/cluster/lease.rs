//! Who leads the hall: a lease in the JetStream key-value bucket `huashi_leaders` (key = the
//! hall, value = the leader's URL), whose stream expires an entry `ttl` after it was written.
//! The leader renews it every `ttl / 4` with a compare-and-set on its revision; a follower that
//! finds it gone and has applied the whole stream takes it with a create (a compare-and-set on
//! "no entry"), publishes its term record (the term is the lease's revision at creation) and
//! leads. The lease decides who may try; the stream's expected-seq check (see `shipper`)
//! decides what is history, so two nodes that both believe they lead still cannot fork it.

use super::follower::{self, Progress};
use super::shipper::{LeaseState, PublishFailure, Publisher};
use super::stream;
use async_nats::jetstream::kv::{CreateErrorKind, Operation, Store, UpdateErrorKind};
use async_nats::jetstream::stream::Stream;
use huashi_engine::sequencer::{SequencerHandle, Submission};
use huashi_gateway::fatal;
use huashi_gateway::health::Health;
use huashi_gateway::replica::{Replica, Role};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// What a lease entry holds: the leader's URL, and which process it is (a node that renewed
/// but never got the answer finds its own entry, and keeps leading).
#[derive(serde::Serialize, serde::Deserialize)]
struct Holder {
    url: String,
    node: u64,
}

pub struct Steward {
    pub kv: Store,
    pub stream: Stream,
    pub hall: String,
    pub url: String,
    pub ttl: Duration,
    pub lease: Arc<LeaseState>,
    pub publisher: Arc<tokio::sync::Mutex<Publisher>>,
    pub progress: Arc<Progress>,
    pub engine: SequencerHandle,
    pub replica: Arc<Replica>,
    pub health: Arc<Health>,
    /// This process, as its lease entries name it.
    pub node: u64,
    /// `/health` was degraded because the lease could not be renewed.
    pub lease_lapsed: std::sync::atomic::AtomicBool,
}

impl Steward {
    /// Follows the stream, and takes over when the lease is free; as leader, keeps it renewed.
    /// Never returns: a deposed leader ends the process.
    pub async fn run(self) {
        let mut following = Some(self.follow());
        let mut revision = 0;
        loop {
            match self.replica.role() {
                Role::Leader => self.renew(&mut revision).await,
                _ => {
                    if let Some(taken) = self.watch(&mut following).await {
                        revision = taken;
                    }
                    // Followers look in no fixed phase, so any caught-up one may be the first
                    // to find the lease free (not always the same).
                    tokio::time::sleep(jitter(self.node, self.ttl / 8)).await;
                }
            }
            tokio::time::sleep(self.ttl / 4).await;
        }
    }

    /// Starts the consumer; a consumer that stops (a gap in the stream) ends the process.
    fn follow(&self) -> JoinHandle<()> {
        let (stream, engine, progress) = (self.stream.clone(), self.engine.clone(), self.progress.clone());
        tokio::spawn(async move {
            let reason = follower::follow(stream, engine, progress).await;
            fatal::exit(fatal::EXIT_FATAL, &format!("cannot follow the hall's stream: {reason}"), None)
        })
    }

    fn holder(&self) -> bytes::Bytes {
        serde_json::to_vec(&Holder { url: self.url.clone(), node: self.node }).expect("serialises").into()
    }

    /// A follower's round: who leads, and if nobody does and this node is caught up, take over.
    /// Returns the lease's revision if it did.
    async fn watch(&self, following: &mut Option<JoinHandle<()>>) -> Option<u64> {
        let (term, mut revision) = match self.kv.entry(&self.hall).await {
            // This node's own create, whose answer was lost (stored once NATS had its quorum
            // back): renewed at once, since its age is unknown here, and then taken up.
            Ok(Some(entry)) if self.is_mine(&entry) => {
                if !self.caught_up().await {
                    return None;
                }
                let asked = Instant::now();
                let renewed = self.kv.update(&self.hall, self.holder(), entry.revision).await.ok()?;
                self.lease.held_until(asked + self.ttl * 3 / 4);
                (entry.revision, renewed)
            }
            Ok(Some(entry)) if entry.operation == Operation::Put => {
                self.replica.set_leader(holder_url(&entry));
                return None;
            }
            Ok(_) => {
                self.replica.set_leader(None);
                if !self.caught_up().await {
                    return None;
                }
                let asked = Instant::now();
                let term = self.kv.create(&self.hall, self.holder()).await.ok()?;
                self.lease.held_until(asked + self.ttl * 3 / 4);
                (term, term)
            }
            Err(error) => {
                tracing::warn!(%error, "cannot read the hall's lease");
                return None;
            }
        };
        self.lease.set_term(term);
        tracing::info!(hall = %self.hall, term, "took the hall's lease; taking over");
        loop {
            if let Some(consumer) = following.take() {
                consumer.abort();
                let _ = consumer.await;
            }
            let (stream_seq, command_seq) =
                (self.progress.stream_seq.load(Ordering::Acquire), self.progress.command_seq.load(Ordering::Acquire));
            match self.publisher.lock().await.take_over(term, stream_seq, command_seq).await {
                Ok(()) => break,
                Err(PublishFailure::Fenced(reason)) => {
                    // The old leader published after this node caught up: apply that first.
                    tracing::info!(%reason, "the stream moved on while taking over; catching up first");
                    *following = Some(self.follow());
                }
                Err(PublishFailure::Unavailable(reason)) => {
                    tracing::warn!(%reason, "cannot publish the term record yet")
                }
            }
            tokio::time::sleep(self.ttl / 8).await;
            self.renew(&mut revision).await;
            while following.is_some() && !self.caught_up().await {
                tokio::time::sleep(self.ttl / 8).await;
                self.renew(&mut revision).await;
            }
        }
        // The term record is in: no older term can publish. Now the sequencer leads.
        let (led, leading) = tokio::sync::oneshot::channel();
        let then: huashi_engine::sequencer::Deliver = Box::new(move || {
            let _ = led.send(());
        });
        if self.engine.try_submit(Submission::Lead { then }).is_err() || leading.await.is_err() {
            fatal::exit(fatal::EXIT_FATAL, "the sequencer stopped while taking over", None);
        }
        self.replica.set_leader(Some(self.url.clone()));
        self.replica.set_role(Role::Leader);
        tracing::info!(hall = %self.hall, term, seq = self.progress.command_seq.load(Ordering::Acquire), "leading");
        Some(revision)
    }

    /// Is every message in the stream handled?
    async fn caught_up(&self) -> bool {
        match stream::last_stream_seq(&self.stream).await {
            Ok(last) => self.progress.stream_seq.load(Ordering::Acquire) >= last,
            Err(_) => false,
        }
    }

    /// The lease is held again (renewed, or taken again): `/health` is ok again if a lapse of
    /// the lease had degraded it (the shipper says degraded again if the stream still refuses).
    fn hold(&self, asked: Instant) {
        self.lease.held_until(asked + self.ttl * 3 / 4);
        if self.lease_lapsed.swap(false, Ordering::AcqRel) {
            self.health.restore();
        }
    }

    /// Is this lease entry this process's?
    fn is_mine(&self, entry: &async_nats::jetstream::kv::Entry) -> bool {
        entry.operation == Operation::Put
            && serde_json::from_slice::<Holder>(&entry.value).is_ok_and(|holder| holder.node == self.node)
    }

    /// The leader's round: renew the lease; if it lapsed and nobody took it, take it again (a
    /// new term); if somebody did, stop.
    async fn renew(&self, revision: &mut u64) {
        let asked = Instant::now();
        match self.kv.update(&self.hall, self.holder(), *revision).await {
            Ok(next) => {
                *revision = next;
                self.hold(asked);
            }
            Err(error) if error.kind() == UpdateErrorKind::WrongLastRevision => match self.kv.entry(&self.hall).await {
                // A renewal that was stored but whose answer was lost: still this node's.
                Ok(Some(entry)) if self.is_mine(&entry) => {
                    *revision = entry.revision;
                    self.hold(asked);
                    tracing::info!(revision, "found this node's own renewal; leading on");
                }
                Ok(Some(entry)) if entry.operation == Operation::Put => self.lease.depose(&format!(
                    "hall {}'s lease is held by {}",
                    self.hall,
                    holder_url(&entry).as_deref().unwrap_or("another node")
                )),
                Ok(_) => match self.kv.create(&self.hall, self.holder()).await {
                    Ok(term) => {
                        tracing::warn!(term, "the lease lapsed and nobody took it: leading on in a new term");
                        *revision = term;
                        self.lease.set_term(term);
                        self.hold(asked);
                    }
                    // Taken: by another node, or by this one's own earlier create whose answer
                    // was lost (stored once NATS had its quorum back). The entry says which.
                    Err(error) if error.kind() == CreateErrorKind::AlreadyExists => {
                        match self.kv.entry(&self.hall).await {
                            Ok(Some(entry)) if self.is_mine(&entry) => {
                                tracing::warn!(
                                    term = entry.revision,
                                    "found this node's own new lease: leading on in a new term"
                                );
                                *revision = entry.revision;
                                self.lease.set_term(entry.revision);
                                self.hold(asked);
                            }
                            Ok(_) => self
                                .lease
                                .depose(&format!("hall {}'s lease lapsed and another node took it", self.hall)),
                            Err(error) => tracing::warn!(%error, "cannot read the hall's lease"),
                        }
                    }
                    // NATS without a quorum: the lease stays lapsed, the shipper holds every
                    // batch, and the next round tries again.
                    Err(error) => tracing::warn!(%error, "cannot take the lapsed lease again yet"),
                },
                Err(error) => tracing::warn!(%error, "cannot read the hall's lease"),
            },
            Err(error) => {
                tracing::warn!(%error, "cannot renew the hall's lease");
                if !self.lease.is_held() {
                    self.health.degrade(&format!("cannot renew the leader's lease: {error}"));
                    self.lease_lapsed.store(true, Ordering::Release);
                }
            }
        }
    }
}

/// The URL a lease entry names, if it is one of Huashi's.
fn holder_url(entry: &async_nats::jetstream::kv::Entry) -> Option<String> {
    serde_json::from_slice::<Holder>(&entry.value).ok().map(|holder| holder.url)
}

/// A pseudo-random pause below `max`, different on each call and each node.
fn jitter(node: u64, max: Duration) -> Duration {
    use std::sync::atomic::AtomicU64;
    static CALLS: AtomicU64 = AtomicU64::new(0);
    let mut x = node ^ CALLS.fetch_add(1, Ordering::Relaxed).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    // splitmix64: enough to spread two followers' rounds apart.
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^= x >> 31;
    let max_us = max.as_micros().max(1) as u64;
    Duration::from_micros(x % max_us)
}
