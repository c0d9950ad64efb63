//! Huashi's composition root: one market node. It recovers the data directory (the market,
//! clearing and the feed from one common point), starts the threads and wires their channels, and
//! owns the order in which they stop. Nothing else in the workspace decides which threads exist.
//!
//! ```text
//!  Frontend (gateway) ──Submission──▶ sequencer ──▶ journal-sync ──Output──▶ fan-out ──▶ clearing
//!   /ws /feed /api ◀──── replies, private reports ──────────────────────────┘           │
//!        ▲                                                                               ▼
//!        └──────────────── public feed (numbered from the journal) ◀──────────────── Feed
//! ```
//!
//! - [`recovery`]: the market, clearing and the feed's numbering brought back to one seq.
//! - [`cluster`]: a node of a replicated hall (`--nats`): the stream, the shipper, the follower,
//!   the lease (docs/cluster.md).
//! - [`Node`]: start (threads and channels) and serve (then stop in order: the front, the
//!   sequencer with its final snapshot, the fan-out, clearing with its own).
//!
//! A batch is durable when the journal has synced it (`huashi_engine::sequencer`); on a clustered
//! node also when the hall's stream holds it: the shipper plugs in as the sequencer's
//! `BatchSink`, here, without the core or the gateway knowing NATS.

pub mod cluster;
pub mod recovery;

#[cfg(test)]
mod end_to_end;

use huashi_engine::sequencer::Sequencer;
use huashi_engine::types::Day;
use huashi_gateway::auth::token_hash;
use huashi_gateway::fanout::{FanOut, FanOutConfig};
use huashi_gateway::fatal;
use huashi_gateway::feed::FeedView;
use huashi_gateway::feed_log::Feed;
use huashi_gateway::health::Health;
use huashi_gateway::messages::Status;
use huashi_gateway::metrics::Metrics;
use huashi_gateway::replica::{Replica, Role};
use huashi_gateway::{Config, Frontend, FrontendParts, GatewayError};
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI32, AtomicU64};
use std::sync::Arc;
use std::thread::JoinHandle;
use tokio::net::TcpListener;

/// A started node: the market recovered, every thread running, the listener bound.
pub struct Node {
    listener: TcpListener,
    frontend: Frontend,
    sequencer: Sequencer,
    fanout: JoinHandle<()>,
    clearing: JoinHandle<()>,
    health: Arc<Health>,
    local_addr: SocketAddr,
    data_dir: PathBuf,
    day: Day,
    /// A clustered node's replication tasks (follow, lease, hash and lag).
    cluster: Option<cluster::Running>,
}

/// Runs a node on `listener` until `shutdown` resolves.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()>,
) -> Result<(), GatewayError> {
    Node::start(listener, config).await?.serve(shutdown).await
}

impl Node {
    /// Recovers the data directory and starts the sequencer, the fan-out, clearing (with the
    /// feed after it) and the front.
    pub async fn start(listener: TcpListener, config: Config) -> Result<Node, GatewayError> {
        let local_addr = listener.local_addr()?;
        let data_dir = config.data_dir.clone();
        let health = Arc::new(Health::default());
        // A clustered node first agrees with its hall on where the market began; its
        // sequencer then starts as a follower, shipping through the hall once it leads.
        let hall = match &config.cluster {
            Some(cluster) => {
                let hall = cluster::Hall::connect(cluster).await.map_err(GatewayError::Cluster)?;
                hall.agree_on_genesis(&data_dir, || recovery::genesis(&config)).await.map_err(GatewayError::Cluster)?;
                Some(hall)
            }
            None => None,
        };
        let sink = hall.as_ref().map(|hall| hall.sink(health.clone()));
        let recovered = tokio::task::spawn_blocking({
            let config = config.clone();
            move || recovery::recover(&config, sink)
        })
        .await
        .map_err(|e| GatewayError::Engine { path: data_dir.clone(), reason: e.to_string() })??;
        let recovery::Recovered { sequencer, clearing, archive, feed_log } = recovered;
        let day = sequencer.initial.day();
        let status = Arc::new(Status {
            seq: AtomicU64::new(0),
            feed_seq: AtomicU64::new(feed_log.last_seq()),
            day: AtomicI32::new(day.0),
            lots_version: AtomicU64::new(0),
        });
        let metrics = Arc::new(Metrics::default());
        let replica = Arc::new(match &config.cluster {
            Some(cluster) => Replica::new(Role::Follower, &cluster.hall),
            None => Replica::default(),
        });

        // Clearing, and the public feed right after it on the same thread: the feed's numbering
        // follows the journal (see huashi_gateway::feed_log). Its snapshot view starts from the
        // recovered market and the index values clearing recovered with.
        let mut view = FeedView::new(&sequencer.initial);
        for value in clearing.index_latest().latest {
            view.apply_market_data(&huashi_clearing::MarketData::Index(value));
        }
        let feed = Feed::new(feed_log, view, config.limits.feed_backlog_max, status.clone(), metrics.clone());
        let (tap, tapped) = crossbeam_channel::bounded(huashi_clearing::service::CLEARING_QUEUE_MAX);
        let panic_at = huashi_gateway::config::Fault::clearing_panic_at(config.fault);
        let (clearing_handle, clearing_thread) =
            huashi_clearing::service::start(data_dir.clone(), clearing, archive, feed, tapped, panic_at)
                .map_err(GatewayError::Thread)?;

        // The fan-out: replies and private reports, then every output on to clearing.
        let (control_tx, control_rx) = crossbeam_channel::unbounded();
        let fanout = FanOut::new(FanOutConfig {
            outputs: sequencer.outputs.clone(),
            control: control_rx,
            engine: sequencer.handle.clone(),
            initial: sequencer.initial.clone(),
            seq: sequencer.recovered.last_seq,
            status: status.clone(),
            metrics: metrics.clone(),
            tap,
            clearing: clearing_handle.clone(),
            control_tx: control_tx.clone(),
            replica: replica.clone(),
        });
        let fanout = std::thread::Builder::new()
            .name("fan-out".into())
            .spawn(move || {
                // Without the fan-out no reply leaves: stop loudly; the journal has every command.
                // The binary's panic hook has already exited by the time this could run; this is
                // for a node embedded without it, and ends the process the same way.
                if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| fanout.run())).is_err() {
                    fatal::exit(fatal::EXIT_PANIC, "the fan-out thread panicked", None);
                }
            })
            .map_err(GatewayError::Thread)?;
        // A sequencer that stops on its own (a journal write or sync failed) ends the process.
        fatal::watch_sequencer(sequencer.ended.clone(), health.clone()).map_err(GatewayError::Thread)?;

        let frontend = Frontend::new(FrontendParts {
            operator_token_hash: token_hash(config.operator_token.expose()),
            engine: sequencer.handle.clone(),
            outputs: sequencer.outputs.clone(),
            control: control_tx,
            clearing: clearing_handle,
            status: status.clone(),
            health: health.clone(),
            metrics,
            limits: config.limits,
            replica: replica.clone(),
        })?;
        let cluster = match hall {
            Some(hall) => {
                let url = match &hall.config.advertise {
                    Some(url) => url.clone(),
                    None => format!("http://{local_addr}"),
                };
                let parts = cluster::NodeParts {
                    data_dir: data_dir.clone(),
                    last_seq: sequencer.recovered.last_seq,
                    url,
                    engine: sequencer.handle.clone(),
                    status,
                    replica,
                    health: health.clone(),
                };
                Some(hall.start(parts).await.map_err(GatewayError::Cluster)?)
            }
            None => None,
        };
        Ok(Node {
            listener,
            frontend,
            sequencer,
            fanout,
            clearing: clearing_thread,
            health,
            local_addr,
            data_dir,
            day,
            cluster,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The trading day the market is in.
    pub fn day(&self) -> Day {
        self.day
    }

    pub fn data_dir(&self) -> &std::path::Path {
        &self.data_dir
    }

    /// What `/health` reports (replication degrades it while the stream cannot take batches).
    pub fn health(&self) -> Arc<Health> {
        self.health.clone()
    }

    /// Serves until `shutdown` resolves, then stops in order: the front (every connection
    /// closed, the last cancel-on-disconnects submitted), the sequencer (it drains its queue and
    /// snapshots), the fan-out (it routes the last outputs), clearing (it snapshots too).
    pub async fn serve(self, shutdown: impl Future<Output = ()>) -> Result<(), GatewayError> {
        let Node { listener, frontend, sequencer, fanout, clearing, cluster, .. } = self;
        let served = frontend.serve(listener, shutdown).await;
        // A follower stops following before its sequencer stops; a leader's lease lapses.
        drop(cluster);
        let stopped = tokio::task::spawn_blocking(move || sequencer.shutdown()).await;
        let _ = tokio::task::spawn_blocking(move || fanout.join()).await;
        // The fan-out held clearing's only output sender: clearing drains, snapshots and ends.
        let _ = tokio::task::spawn_blocking(move || clearing.join()).await;
        served?;
        match stopped {
            Ok(result) => result.map_err(GatewayError::Shutdown),
            Err(e) => Err(GatewayError::Shutdown(huashi_engine::store::StoreError::Other(e.to_string()))),
        }
    }
}
