//! One node of a replicated hall (docs/cluster.md): the journal goes through a NATS JetStream
//! stream (`HUASHI_<HALL>`, file storage, R3 on a cluster), one node leads under a lease in the
//! key-value bucket `huashi_leaders`, the others follow and serve readers.
//!
//! - [`stream`]: the stream's messages (genesis, term records, batches) and finding a place in it.
//! - [`shipper`]: the leader's `BatchSink`: a batch's replies leave once the stream holds it.
//! - [`follower`]: a follower's consumer, feeding the sequencer the leader's records.
//! - [`lease`]: who leads; taking over; a deposed leader stops.
//!
//! Every node starts as a follower: it catches up from the stream, then leads if nobody does.

pub mod follower;
pub mod lease;
pub mod shipper;
pub mod stream;

use async_nats::jetstream::{self, kv, stream::Stream, Context};
use huashi_engine::batch_sink::SinkHandle;
use huashi_engine::core::{Market, MarketConfig};
use huashi_engine::journal::Journal;
use huashi_engine::sequencer::{Inspection, SequencerHandle, Submission};
use huashi_engine::store;
use huashi_gateway::config::ClusterConfig;
use huashi_gateway::health::Health;
use huashi_gateway::messages::Status;
use huashi_gateway::replica::{Replica, Role};
use shipper::{LeaseState, PublishFailure, Publisher, Shipper};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

/// How long a node waits for the NATS cluster to be able to hold the hall's stream.
const STREAM_WAIT_MAX: Duration = Duration::from_secs(30);

/// The key-value bucket holding every hall's lease.
pub const LEASE_BUCKET: &str = "huashi_leaders";

/// A connection to the hall's NATS cluster, its stream and its lease bucket.
pub struct Hall {
    pub config: ClusterConfig,
    stream: Stream,
    kv: kv::Store,
    publisher: Arc<tokio::sync::Mutex<Publisher>>,
    lease: Arc<LeaseState>,
}

impl Hall {
    /// Connects and makes sure the stream and the lease bucket exist.
    pub async fn connect(config: &ClusterConfig) -> Result<Hall, String> {
        let urls = config.nats.join(",");
        let client = async_nats::ConnectOptions::new()
            .name(format!("huashi {}", config.hall))
            .connection_timeout(Duration::from_secs(5))
            .connect(config.nats.clone())
            .await
            .map_err(|e| format!("cannot reach NATS at {urls}: {e}"))?;
        let info = client.server_info();
        // min(3, cluster size): JetStream's own Raft keeps the copies; R1 on a lone server. The
        // cluster's size is the servers it advertises to clients (this one included); it only
        // matters the first time, when the stream is made.
        let replicas = if info.cluster.is_some() { info.connect_urls.len().clamp(1, 3) } else { 1 };
        let max_payload = info.max_payload;
        let mut js = jetstream::new(client);
        js.set_timeout(Duration::from_secs(2));
        let stream_config = jetstream::stream::Config {
            name: config.stream_name(),
            subjects: vec![config.subject()],
            storage: jetstream::stream::StorageType::File,
            num_replicas: replicas,
            duplicate_window: Duration::from_secs(120),
            ..Default::default()
        };
        // A NATS cluster that is still forming cannot place an R3 stream yet ("no suitable
        // peers"): a node started with it waits a little rather than exit.
        let started = std::time::Instant::now();
        let stream = loop {
            match js.get_or_create_stream(stream_config.clone()).await {
                Ok(stream) => break stream,
                Err(e) if started.elapsed() < STREAM_WAIT_MAX => {
                    tracing::warn!(error = %e, stream = %config.stream_name(), "cannot open the hall's stream yet; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(e) => return Err(format!("cannot open the stream {}: {e}", config.stream_name())),
            }
        };
        let (kv, bucket_ttl) = lease_bucket(&js, replicas, config.lease_ttl).await?;
        let mut config = config.clone();
        if bucket_ttl != config.lease_ttl {
            // The bucket's max_age is what expires a lease: renewing on another rhythm would
            // let it lapse between renewals. The first node to make the bucket set it.
            tracing::warn!(
                configured_ms = config.lease_ttl.as_millis() as u64,
                bucket_ms = bucket_ttl.as_millis() as u64,
                "the lease bucket {LEASE_BUCKET} expires leases after its own max_age: using it"
            );
            config.lease_ttl = bucket_ttl;
        }
        let publisher = Publisher::new(js.clone(), config.stream_name(), config.subject(), max_payload);
        tracing::info!(stream = %config.stream_name(), replicas, hall = %config.hall, "connected to the hall's NATS cluster");
        Ok(Hall {
            config,
            stream,
            kv,
            publisher: Arc::new(tokio::sync::Mutex::new(publisher)),
            lease: Arc::new(LeaseState::new()),
        })
    }

    /// Makes the data directory start from the hall's genesis: a new hall's first node
    /// publishes its own (`huashi serve`); a joining node waits for it and writes it down; a
    /// directory of another market is refused.
    pub async fn agree_on_genesis(
        &self,
        data_dir: &Path,
        genesis: impl FnOnce() -> MarketConfig,
    ) -> Result<(), String> {
        let local = store::genesis_bytes(data_dir).map_err(|e| e.to_string())?;
        let mut waited = false;
        while stream::last_stream_seq(&self.stream).await? == 0 {
            if self.config.join_only {
                if !waited {
                    tracing::info!(hall = %self.config.hall, "waiting for the hall's leader to publish its genesis");
                    waited = true;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            if has_journal(data_dir) {
                return Err(format!(
                    "hall {}'s stream is empty but {} already holds a journal: a market that ran alone cannot \
                     become a hall's leader; start from an empty data directory",
                    self.config.hall,
                    data_dir.display()
                ));
            }
            let bytes = match local {
                Some(bytes) => bytes,
                None => {
                    let bytes = bincode_market(&Market::new(genesis()));
                    store::write_genesis(data_dir, &bytes).map_err(|e| e.to_string())?;
                    bytes
                }
            };
            return match self.publisher.lock().await.publish_genesis(bytes).await {
                Ok(()) => {
                    tracing::info!(hall = %self.config.hall, "a new hall: published its genesis");
                    Ok(())
                }
                Err(PublishFailure::Fenced(_)) => Err(format!(
                    "another node started hall {} at the same moment; start this one again with an empty data \
                     directory and it will follow",
                    self.config.hall
                )),
                Err(PublishFailure::Unavailable(reason)) => Err(reason),
            };
        }
        let (kind, theirs) = stream::get(&self.stream, 1).await?;
        if kind != stream::Kind::Genesis {
            return Err(format!("hall {}'s stream does not start with a genesis", self.config.hall));
        }
        match local {
            None => store::write_genesis(data_dir, &theirs).map_err(|e| e.to_string()),
            Some(ours) if ours[..] == theirs[..] => Ok(()),
            Some(_) => Err(format!(
                "{} holds another market than hall {}: use an empty data directory",
                data_dir.display(),
                self.config.hall
            )),
        }
    }

    /// The hall's stream (benchmarks and tools read it directly).
    pub fn stream(&self) -> &Stream {
        &self.stream
    }

    /// Leads without a lease, in `term`, from the stream's end: for benchmarks of the shipping
    /// path alone, never for a market (nothing fences another writer but the stream itself).
    pub async fn lead_unleased(&self, term: u64) -> Result<(), String> {
        let stream_seq = stream::last_stream_seq(&self.stream).await?;
        self.lease.set_term(term);
        self.lease.held_until(std::time::Instant::now() + Duration::from_secs(365 * 24 * 3600));
        let mut publisher = self.publisher.lock().await;
        publisher.take_over(term, stream_seq, 0).await.map_err(|e| format!("{e:?}"))
    }

    /// The sequencer's sink on this node.
    pub fn sink(&self, health: Arc<Health>) -> SinkHandle {
        SinkHandle::new(Shipper {
            publisher: self.publisher.clone(),
            lease: self.lease.clone(),
            health,
            runtime: tokio::runtime::Handle::current(),
        })
    }

    /// Checks that this node's journal is a prefix of the stream, then follows it and stands for
    /// leader. `last_seq`: the journal's last command.
    pub async fn start(self, node: NodeParts) -> Result<Running, String> {
        let NodeParts { data_dir, last_seq, url, engine, status, replica, health } = node;
        if last_seq > 0 {
            let ours = local_record(&data_dir, last_seq)?;
            if stream::record(&self.stream, last_seq).await?.as_deref() != Some(&ours[..]) {
                return Err(format!(
                    "{}'s journal has command {last_seq}, which hall {}'s stream does not hold: this node led and \
                     its last batches never reached the stream. Move the directory aside and follow with an \
                     empty one",
                    data_dir.display(),
                    self.config.hall
                ));
            }
        }
        let progress = Arc::new(follower::Progress::default());
        let position = stream::position_after(&self.stream, last_seq).await?;
        progress.stream_seq.store(position - 1, Ordering::Release);
        progress.command_seq.store(last_seq, Ordering::Release);
        replica.set_role(Role::Follower);
        let steward = lease::Steward {
            kv: self.kv,
            stream: self.stream.clone(),
            hall: self.config.hall.clone(),
            url,
            ttl: self.config.lease_ttl,
            lease: self.lease,
            publisher: self.publisher,
            progress,
            engine: engine.clone(),
            replica: replica.clone(),
            health,
            node: node_id(),
            lease_lapsed: std::sync::atomic::AtomicBool::new(false),
        };
        let lease = tokio::spawn(steward.run());
        let watch = tokio::spawn(watch(self.stream, self.config.subject(), engine, status, replica));
        Ok(Running { tasks: vec![lease, watch] })
    }
}

/// What a clustered node hands the hall once its market is recovered.
pub struct NodeParts {
    pub data_dir: std::path::PathBuf,
    pub last_seq: u64,
    /// This node's URL as others reach it.
    pub url: String,
    pub engine: SequencerHandle,
    pub status: Arc<Status>,
    pub replica: Arc<Replica>,
    pub health: Arc<Health>,
}

/// The hall's tasks on this node; stopped when dropped.
pub struct Running {
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Once a second: the state hash (if the state changed) and, on a follower, the lag.
async fn watch(stream: Stream, subject: String, engine: SequencerHandle, status: Arc<Status>, replica: Arc<Replica>) {
    let mut hashed = None;
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let seq = status.seq.load(Ordering::Relaxed);
        if hashed != Some(seq) {
            let (tx, rx) = tokio::sync::oneshot::channel();
            let inspection: Inspection = Box::new(move |seq, market| {
                let hash = market.state_hash();
                Box::new(move || {
                    let _ = tx.send((seq, hash));
                })
            });
            if engine.try_submit(Submission::Inspect(inspection)).is_ok() {
                if let Ok((seq, hash)) = rx.await {
                    replica.set_state_hash(seq, hash);
                    hashed = Some(seq);
                }
            }
        }
        if replica.role() == Role::Follower {
            if let Ok(last) = stream.get_last_raw_message_by_subject(&subject).await {
                if let Ok(kind) = stream::Kind::parse(Some(&last.headers)) {
                    replica.set_stream_seq(kind.last_seq());
                }
            }
        }
    }
}

/// The lease bucket, made by hand: `create_key_value` cannot read nats-server 2.9's answer, and
/// a bucket is just a stream with these settings (`max_age` = the lease's TTL).
async fn lease_bucket(js: &Context, replicas: usize, ttl: Duration) -> Result<(kv::Store, Duration), String> {
    let name = format!("KV_{LEASE_BUCKET}");
    let mut stream = js
        .get_or_create_stream(jetstream::stream::Config {
            name: name.clone(),
            subjects: vec![format!("$KV.{LEASE_BUCKET}.>")],
            max_messages_per_subject: 1,
            max_age: ttl,
            discard: jetstream::stream::DiscardPolicy::New,
            allow_rollup: true,
            deny_delete: true,
            allow_direct: true,
            num_replicas: replicas,
            storage: jetstream::stream::StorageType::File,
            ..Default::default()
        })
        .await
        .map_err(|e| format!("cannot open the lease bucket {name}: {e}"))?;
    let max_age = stream.info().await.map_err(|e| format!("cannot read the lease bucket {name}: {e}"))?.config.max_age;
    let store = js
        .get_key_value(LEASE_BUCKET)
        .await
        .map_err(|e| format!("cannot open the lease bucket {LEASE_BUCKET}: {e}"))?;
    Ok((store, if max_age.is_zero() { ttl } else { max_age }))
}

/// A number naming this process among a hall's nodes (its lease entries carry it).
fn node_id() -> u64 {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    nanos ^ (u64::from(std::process::id()) << 32)
}

fn bincode_market(market: &Market) -> Vec<u8> {
    bincode::serialize(market).expect("a market serialises")
}

fn has_journal(data_dir: &Path) -> bool {
    let dir = store::journal_dir(data_dir);
    dir.exists() && Journal::read_after(&dir, 0).is_ok_and(|mut records| records.next().is_some())
}

/// This node's journal record `seq`.
fn local_record(data_dir: &Path, seq: u64) -> Result<Vec<u8>, String> {
    let mut records = Journal::read_after(&store::journal_dir(data_dir), seq - 1).map_err(|e| e.to_string())?;
    match records.next() {
        Some(Ok((found, payload))) if found == seq => Ok(payload),
        _ => Err(format!("cannot read journal record {seq} of {}", data_dir.display())),
    }
}
