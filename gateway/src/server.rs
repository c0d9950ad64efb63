//! The server: starts the engine and the fan-out, serves HTTP and WebSocket on one listener, and
//! shuts down in order — stop accepting, close sessions and subscribers, let the fan-out submit
//! the last cancel-on-disconnects, stop the sequencer (it snapshots), join the fan-out.

use crate::auth::token_hash;
use crate::clearing_service;
use crate::config::{Config, Limits};
use crate::error::GatewayError;
use crate::fanout::{Control, FanOut, FanOutConfig, Status};
use crate::metrics::{Gauges, Metrics};
use crate::{session, subscriber};
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::serve::ListenerExt;
use axum::Router;
use huashi_clearing::{TradeKind, TradeRecord};
use huashi_engine::core::MarketConfig;
use huashi_engine::journal::Durability;
use huashi_engine::sequencer::{Output, Sequencer, SequencerConfig, SequencerHandle};
use huashi_engine::types::{Day, EngineTime, LotId};
use std::collections::BTreeMap;
use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch, Semaphore};

/// How long shutdown waits for sessions and subscribers to say goodbye.
const CLOSE_WAIT: Duration = Duration::from_secs(5);
/// The latest sales `GET /api/trades` lists: enough to seed the market page's lists.
const TRADES_LISTED_MAX: usize = 200;

/// What every connection task shares.
pub(crate) struct Shared {
    /// Reads of clearing for `/api/*` (None when a caller tapped the outputs itself).
    pub clearing: Option<clearing_service::ClearingHandle>,
    pub limits: Limits,
    pub engine: SequencerHandle,
    pub control: crossbeam_channel::Sender<Control>,
    pub status: Arc<Status>,
    pub metrics: Arc<Metrics>,
    pub session_slots: Arc<Semaphore>,
    pub subscriber_slots: Arc<Semaphore>,
    pub shutdown: watch::Receiver<bool>,
    pub next_session: AtomicU32,
    pub operator_token_hash: [u8; 32],
    outputs_backlog: crossbeam_channel::Receiver<Output>,
    /// Where `/feed` subscribers run (see `Limits::feed_threads`).
    feed_runtime: tokio::runtime::Handle,
}

/// Hooks for what is built on the gateway later (clearing, the index).
#[derive(Default)]
pub struct Taps {
    /// Receives every engine output, in seq order, after the gateway routed it. Bounded by its
    /// creator; a full channel slows the fan-out (and so the engine), never loses an output.
    pub outputs: Option<crossbeam_channel::Sender<Arc<Output>>>,
}

/// The feed's runtime. Dropped from async code (a runtime cannot be dropped where blocking is
/// not allowed), so it lets its threads go in the background; its tasks have ended by then.
struct FeedRuntime(Option<tokio::runtime::Runtime>);

impl FeedRuntime {
    fn handle(&self) -> tokio::runtime::Handle {
        self.0.as_ref().expect("running").handle().clone()
    }
}

impl Drop for FeedRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// A started gateway: the engine is recovered and running, the listener bound.
pub struct Gateway {
    listener: TcpListener,
    feed_runtime: FeedRuntime,
    shared: Arc<Shared>,
    sequencer: Sequencer,
    fanout: std::thread::JoinHandle<()>,
    clearing_thread: Option<std::thread::JoinHandle<()>>,
    shutdown: watch::Sender<bool>,
    local_addr: SocketAddr,
    data_dir: PathBuf,
    day: Day,
}

/// Runs a gateway on `listener` until `shutdown` resolves.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()>,
) -> Result<(), GatewayError> {
    Gateway::start(listener, config, Taps::default()).await?.serve(shutdown).await
}

impl Gateway {
    /// Recovers the data directory, starts the sequencer and the fan-out thread.
    pub async fn start(listener: TcpListener, config: Config, taps: Taps) -> Result<Gateway, GatewayError> {
        let local_addr = listener.local_addr()?;
        let data_dir = config.data_dir.clone();
        let sequencer = tokio::task::spawn_blocking({
            let config = config.clone();
            move || start_engine(&config)
        })
        .await
        .map_err(|e| GatewayError::Engine { path: data_dir.clone(), reason: e.to_string() })??;
        let (sequencer, recovery) = sequencer;
        let initial_index = recovery.clearing.index_latest().latest;
        let day = sequencer.initial.day();
        let (control_tx, control_rx) = crossbeam_channel::unbounded();
        // Clearing gets every output from the fan-out's tap, unless a caller tapped them itself.
        let mut taps = taps;
        let clearing = match taps.outputs {
            Some(_) => None,
            None => {
                let (tap_tx, tap_rx) = crossbeam_channel::bounded(clearing_service::CLEARING_QUEUE_MAX);
                taps.outputs = Some(tap_tx);
                let publish = {
                    let control = control_tx.clone();
                    move |data| {
                        let _ = control.send(Control::MarketData(data));
                    }
                };
                Some(clearing_service::start(data_dir.clone(), recovery.clearing, recovery.archive, tap_rx, publish))
            }
        };
        let (clearing, clearing_thread) = match clearing {
            Some((handle, thread)) => (Some(handle), Some(thread)),
            None => (None, None),
        };
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let status =
            Arc::new(Status { seq: AtomicU64::new(0), feed_seq: AtomicU64::new(0), day: AtomicI32::new(day.0) });
        let metrics = Arc::new(Metrics::default());
        let fanout = FanOut::new(FanOutConfig {
            outputs: sequencer.outputs.clone(),
            control: control_rx,
            engine: sequencer.handle.clone(),
            initial: sequencer.initial.clone(),
            seq: sequencer.recovered.last_seq,
            status: status.clone(),
            metrics: metrics.clone(),
            feed_backlog_max: config.limits.feed_backlog_max,
            tap: taps.outputs,
            clearing: clearing.clone(),
            control_tx: control_tx.clone(),
            initial_index,
        });
        let fanout = std::thread::Builder::new()
            .name("fan-out".into())
            .spawn(move || {
                // Without the fan-out no reply leaves: stop loudly; the journal has every command.
                if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| fanout.run())).is_err() {
                    eprintln!("huashi: the fan-out thread panicked; aborting");
                    std::process::abort();
                }
            })
            .map_err(GatewayError::Thread)?;
        let feed_runtime = FeedRuntime(Some(
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(config.limits.feed_threads)
                .thread_name("feed")
                .enable_all()
                .build()?,
        ));
        let shared = Arc::new(Shared {
            clearing: clearing.clone(),
            engine: sequencer.handle.clone(),
            control: control_tx,
            status,
            metrics,
            session_slots: Arc::new(Semaphore::new(config.limits.sessions_max)),
            subscriber_slots: Arc::new(Semaphore::new(config.limits.feed_subscribers_max)),
            shutdown: shutdown_rx,
            next_session: AtomicU32::new(1),
            operator_token_hash: token_hash(config.operator_token.expose()),
            outputs_backlog: sequencer.outputs.clone(),
            feed_runtime: feed_runtime.handle(),
            limits: config.limits,
        });
        Ok(Gateway {
            listener,
            feed_runtime,
            shared,
            sequencer,
            fanout,
            clearing_thread,
            shutdown: shutdown_tx,
            local_addr,
            data_dir,
            day,
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

    /// Serves until `shutdown` resolves, then stops everything in order.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) -> Result<(), GatewayError> {
        let Gateway {
            listener, feed_runtime, shared, sequencer, fanout, clearing_thread, shutdown: shutdown_tx, ..
        } = self;
        let listener = listener.tap_io(|tcp| {
            if let Err(error) = tcp.set_nodelay(true) {
                tracing::debug!(%error, "cannot set TCP_NODELAY");
            }
        });
        let app = router(shared.clone());
        let (stop_accepting, stop) = oneshot::channel::<()>();
        let server = axum::serve(listener, app).with_graceful_shutdown(async move {
            let _ = stop.await;
        });
        let mut server = tokio::spawn(server.into_future());
        let served = tokio::select! {
            _ = shutdown => None,
            result = &mut server => Some(result),
        };
        tracing::info!("shutting down");
        // Sessions and subscribers close themselves (1001) as soon as they see this.
        let _ = shutdown_tx.send(true);
        let _ = stop_accepting.send(());
        let served = match served {
            Some(result) => result,
            None => server.await,
        };
        let served = served.unwrap_or_else(|e| Err(std::io::Error::other(e.to_string())));
        wait_for_close(&shared).await;
        drop(feed_runtime);
        let (drained, done) = oneshot::channel();
        if shared.control.send(Control::Drain { reply: drained }).is_ok() {
            let _ = done.await;
        }
        let stopped = tokio::task::spawn_blocking(move || sequencer.shutdown()).await;
        let _ = tokio::task::spawn_blocking(move || fanout.join()).await;
        // The fan-out held clearing's only output sender: clearing drains, snapshots and ends.
        if let Some(thread) = clearing_thread {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
        served?;
        match stopped {
            Ok(result) => result.map_err(GatewayError::Shutdown),
            Err(e) => Err(GatewayError::Shutdown(huashi_engine::store::StoreError::Other(e.to_string()))),
        }
    }
}

fn start_engine(config: &Config) -> Result<(Sequencer, clearing_service::Recovery), GatewayError> {
    let mut engine_config = SequencerConfig::new(&config.data_dir);
    engine_config.queue_depth_max = config.limits.engine_queue_depth_max;
    engine_config.durability = config.durability;
    engine_config.snapshot_every = config.snapshot_every;
    if config.durability == Durability::None {
        tracing::warn!("engine.durability = none: replies no longer wait for the journal to reach the disk");
    }
    let genesis = MarketConfig {
        day: Day::containing(now()),
        clocks: config.clocks,
        fees: config.fees,
        clock_defaults: config.clock_defaults,
        limits: config.market_limits,
    };
    let expected = genesis.clone();
    let engine_error = |reason: String| GatewayError::Engine { path: config.data_dir.clone(), reason };
    // Clearing and the market recover from the same seq (see clearing_service::recover).
    let mut recovery = clearing_service::recover(&config.data_dir, config.fees, genesis.day)
        .map_err(|e| engine_error(e.to_string()))?;
    engine_config.start_at = Some(recovery.start_at);
    let hook = clearing_service::replay_hook(&mut recovery.clearing, &recovery.archive, recovery.start_at);
    let sequencer = Sequencer::start(engine_config, move || genesis, hook).map_err(|e| engine_error(e.to_string()))?;
    let found = sequencer.initial.config();
    if (found.clocks, found.fees, found.clock_defaults) != (expected.clocks, expected.fees, expected.clock_defaults) {
        tracing::warn!(
            clocks = found.clocks,
            "the data directory already holds a market: its clocks, fees and clock defaults stand, \
             the configured ones apply only to a new data directory"
        );
    }
    if found.limits != expected.limits {
        // The market's limits are its own state (set_limits), like its fees: the file only
        // seeds a new directory, so a replay and every replica decide the same. Compared with
        // the directory's own seed, so limits changed by set_limits alone warn about nothing.
        tracing::warn!(
            "the data directory already holds a market: its limits stand and [market_limits] in the config \
             applies only to a new data directory; change them with set_limits"
        );
    }
    for skipped in &sequencer.recovered.skipped_snapshots {
        tracing::warn!(snapshot = %skipped, "skipped a damaged snapshot");
    }
    tracing::info!(
        seq = sequencer.recovered.last_seq,
        replayed = sequencer.recovered.replayed,
        day = %sequencer.initial.day(),
        "market recovered"
    );
    Ok((sequencer, recovery))
}

fn now() -> EngineTime {
    EngineTime(SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64))
}

/// Waits until every session and subscriber has ended (they hold the slots), or `CLOSE_WAIT`.
async fn wait_for_close(shared: &Shared) {
    let all = async {
        let sessions = shared.session_slots.acquire_many(shared.limits.sessions_max as u32).await;
        let subscribers = shared.subscriber_slots.acquire_many(shared.limits.feed_subscribers_max as u32).await;
        drop((sessions, subscribers));
    };
    if tokio::time::timeout(CLOSE_WAIT, all).await.is_err() {
        tracing::warn!("some connections did not close in time");
    }
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/ws", get(ws))
        .route("/feed", get(feed))
        .route("/health", get(health))
        .route("/api/index", get(api_index))
        .route("/api/index/history", get(api_index_history))
        .route("/api/market", get(api_market))
        .route("/api/trades", get(api_trades))
        .route("/metrics", get(metrics))
        .merge(crate::webapp::routes())
        .with_state(shared)
}

fn configure(upgrade: WebSocketUpgrade, limits: &Limits) -> WebSocketUpgrade {
    upgrade
        // tungstenite zero-fills this much before every read; clients send small frames.
        .read_buffer_size(1024)
        .write_buffer_size(limits.write_buffer_bytes)
        .max_write_buffer_size(limits.write_buffer_bytes_max)
        .max_frame_size(limits.frame_bytes_max)
        .max_message_size(limits.frame_bytes_max)
}

fn full(shared: &Shared, what: &str) -> Response {
    shared.metrics.refused_connections.fetch_add(1, Ordering::Relaxed);
    (StatusCode::SERVICE_UNAVAILABLE, format!("too many {what}, try again later\n")).into_response()
}

async fn ws(State(shared): State<Arc<Shared>>, upgrade: WebSocketUpgrade) -> Response {
    let Ok(permit) = shared.session_slots.clone().try_acquire_owned() else { return full(&shared, "sessions") };
    let limits = shared.limits.clone();
    configure(upgrade, &limits).on_upgrade(move |socket| session::serve(socket, shared, permit))
}

async fn feed(State(shared): State<Arc<Shared>>, upgrade: WebSocketUpgrade) -> Response {
    let Ok(permit) = shared.subscriber_slots.clone().try_acquire_owned() else {
        return full(&shared, "feed subscribers");
    };
    let limits = shared.limits.clone();
    configure(upgrade, &limits).on_upgrade(move |socket| async move {
        let runtime = shared.feed_runtime.clone();
        runtime.spawn(subscriber::serve(socket, shared, permit));
    })
}

/// `seq` is the feed's: the last public event published (what a snapshot taken now would say).
/// Runs `read` on the clearing thread and answers its JSON, or 503 when clearing cannot answer.
async fn ask_clearing(
    shared: &Shared,
    read: impl FnOnce(&huashi_clearing::Clearing) -> serde_json::Value + Send + 'static,
) -> Response {
    let (tx, rx) = oneshot::channel();
    let asked = shared.clearing.as_ref().is_some_and(|clearing| {
        clearing.ask(Box::new(move |clearing, _archive| {
            let _ = tx.send(read(clearing));
        }))
    });
    match (asked, rx.await) {
        (true, Ok(body)) => ([(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response(),
        _ => (StatusCode::SERVICE_UNAVAILABLE, "clearing is not available, retry").into_response(),
    }
}

fn index_money(value: rust_decimal::Decimal) -> String {
    format!("{value:.2}")
}

/// `GET /api/index`: the latest value of each published index and today's intraday series.
async fn api_index(State(shared): State<Arc<Shared>>) -> Response {
    ask_clearing(&shared, |clearing| {
        let snapshot = clearing.index_latest();
        let values: serde_json::Map<String, serde_json::Value> =
            snapshot.latest.iter().map(|v| (v.code.as_str().to_string(), index_money(v.value).into())).collect();
        let mut intraday: serde_json::Map<String, serde_json::Value> = serde_json::Map::new();
        for v in &snapshot.intraday {
            let series = intraday.entry(v.code.as_str().to_string()).or_insert_with(|| serde_json::json!([]));
            if let Some(series) = series.as_array_mut() {
                series.push(serde_json::json!({"ts": v.ts.0, "value": index_money(v.value)}));
            }
        }
        serde_json::json!({"day": snapshot.day.to_string(), "values": values, "intraday": intraday})
    })
    .await
}

/// `GET /api/index/history`: one row per settled day with the close of every index.
async fn api_index_history(State(shared): State<Arc<Shared>>) -> Response {
    ask_clearing(&shared, |clearing| {
        let rows: Vec<serde_json::Value> = clearing
            .index_history()
            .iter()
            .map(|row| {
                let closes: serde_json::Map<String, serde_json::Value> =
                    row.values.iter().map(|(code, v)| (code.as_str().to_string(), index_money(*v).into())).collect();
                serde_json::json!({"day": row.day.to_string(), "closes": closes})
            })
            .collect();
        serde_json::json!({ "rows": rows })
    })
    .await
}

/// `GET /api/market`: today's statistics per product and grade, and clearance per product.
async fn api_market(State(shared): State<Arc<Shared>>) -> Response {
    ask_clearing(&shared, |clearing| {
        let stats = clearing.market_stats();
        let money = |v: Option<rust_decimal::Decimal>| v.map(index_money);
        let cells: Vec<serde_json::Value> = stats
            .cells
            .iter()
            .map(|c| {
                serde_json::json!({
                    "product": c.product, "grade": c.grade.as_str(), "open": money(c.open), "high": money(c.high),
                    "low": money(c.low), "last": money(c.last), "vwap": money(c.vwap), "units": c.units,
                    "turnover": index_money(c.turnover), "trades": c.trades,
                })
            })
            .collect();
        let clearance: Vec<serde_json::Value> = stats
            .products
            .iter()
            .map(|p| {
                serde_json::json!({
                    "product": p.product, "lots": p.lots, "consigned": p.consigned, "sold": p.sold,
                    "unsold": p.unsold, "withdrawn": p.withdrawn, "open": p.open,
                })
            })
            .collect();
        serde_json::json!({"day": stats.day.to_string(), "cells": cells, "clearance": clearance})
    })
    .await
}

/// `GET /api/trades`: today's sales that stand (voided awards left out), oldest first, at most the
/// last `TRADES_LISTED_MAX`, each in the shape of its feed event (`clock_award` or `trade`, without
/// `seq`) plus the product (and a lot's grade). Buyers and sellers stay anonymous. Clearing does not
/// keep a book trade's aggressor, so that field is left out; an award's `remaining` counts the
/// awards that stand, so it can differ from the feed's when an earlier award was voided later.
async fn api_trades(State(shared): State<Arc<Shared>>) -> Response {
    ask_clearing(&shared, |clearing| {
        // `remaining` after each award needs every award of the lot before it, listed or not.
        let mut sold: BTreeMap<u64, u32> = BTreeMap::new();
        let sales: Vec<(&TradeRecord, Option<u32>)> = clearing
            .trades_today()
            .map(|t| {
                let remaining = t.containers.and_then(|containers| {
                    let sold = sold.entry(t.reference).or_default();
                    *sold += containers;
                    clearing.lot_today(LotId(t.reference)).map(|lot| lot.containers.saturating_sub(*sold))
                });
                (t, remaining)
            })
            .collect();
        let listed = &sales[sales.len().saturating_sub(TRADES_LISTED_MAX)..];
        let trades: Vec<serde_json::Value> = listed.iter().map(|(t, remaining)| sale_json(t, *remaining)).collect();
        serde_json::json!({"day": clearing.day().to_string(), "trades": trades})
    })
    .await
}

/// One sale as the feed published it (see `api_trades`).
fn sale_json(t: &TradeRecord, remaining: Option<u32>) -> serde_json::Value {
    let price = index_money(t.price);
    match t.kind {
        TradeKind::Clock => serde_json::json!({
            "type": "clock_award", "clock": t.clock, "lot_id": t.reference, "round": t.round, "price": price,
            "containers": t.containers, "remaining": remaining, "ts": t.ts.0,
            "product": t.product, "grade": t.grade.as_str(),
        }),
        TradeKind::Book => serde_json::json!({
            "type": "trade", "symbol": t.symbol, "trade_id": t.reference, "price": price, "quantity": t.units,
            "ts": t.ts.0, "product": t.product,
        }),
    }
}

async fn health(State(shared): State<Arc<Shared>>) -> Response {
    let body = format!(
        "{{\"status\":\"ok\",\"day\":\"{}\",\"seq\":{}}}",
        shared.status.day(),
        shared.status.feed_seq.load(Ordering::Relaxed)
    );
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    let gauges = Gauges {
        engine_queue_depth: shared.engine.queue_depth(),
        fanout_backlog: shared.outputs_backlog.len(),
        seq: shared.status.seq.load(Ordering::Relaxed),
        journal_sync: shared.engine.sync_times().read(),
    };
    let text = shared.metrics.render(&gauges);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}
