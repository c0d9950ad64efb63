//! The gateway's front: HTTP and WebSocket on one listener (`/ws`, `/feed`, `/health`,
//! `/metrics`, `/api/*`, the web app), given the handles of a running engine, fan-out and
//! clearing (the composition root, `huashi-node`, starts those). Its end is orderly: stop
//! accepting, close sessions and subscribers, let the fan-out take the last cancel-on-disconnects.

use crate::config::Limits;
use crate::conn::WriteDeadline;
use crate::error::GatewayError;
use crate::fatal;
use crate::feed_log::Feed;
use crate::health::{Health, HealthState};
use crate::limits::ConnectionGate;
use crate::messages::{Control, Status};
use crate::metrics::{Gauges, Metrics};
use crate::replica::Replica;
use crate::{session, subscriber};
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use huashi_clearing::service::ClearingHandle;
use huashi_clearing::{TradeKind, TradeRecord};
use huashi_engine::sequencer::{Output, SequencerHandle};
use huashi_engine::types::LotId;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch, Semaphore};

/// How long shutdown waits for sessions and subscribers to say goodbye.
const CLOSE_WAIT: Duration = Duration::from_secs(5);
/// How long, on shutdown, HTTP requests in progress may take to finish (they are short reads);
/// a connection still sending its header (slowloris) is not worth waiting for longer.
const HTTP_CLOSE_WAIT: Duration = Duration::from_secs(2);
/// The pause after a failed accept (typically out of file descriptors) before the next one.
const ACCEPT_PAUSE: Duration = Duration::from_millis(50);
/// What a connection over the gate's bounds is told before it is closed.
const REFUSED_RESPONSE: &[u8] =
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 34\r\nconnection: close\r\n\r\ntoo many connections, retry later\n";
/// The latest sales `GET /api/trades` lists: enough to seed the market page's lists.
const TRADES_LISTED_MAX: usize = 200;

/// What every connection task shares.
pub(crate) struct Shared {
    /// Reads of clearing for `/api/*`, and new feed subscriptions.
    pub clearing: ClearingHandle<Feed>,
    pub limits: Limits,
    pub engine: SequencerHandle,
    pub control: crossbeam_channel::Sender<Control>,
    pub status: Arc<Status>,
    /// What `/health` reports; failed by the watchdog (see `fatal`).
    pub health: Arc<Health>,
    pub metrics: Arc<Metrics>,
    pub replica: Arc<Replica>,
    pub session_slots: Arc<Semaphore>,
    pub subscriber_slots: Arc<Semaphore>,
    pub shutdown: watch::Receiver<bool>,
    pub next_session: AtomicU32,
    pub operator_token_hash: [u8; 32],
    /// The day's catalogue, rendered once per change (`get_catalogue`, `GET /api/catalogue`).
    pub catalogue: crate::catalogue::CatalogueCache,
    outputs_backlog: crossbeam_channel::Receiver<Output>,
    /// Where `/feed` subscribers run (see `Limits::feed_threads`).
    feed_runtime: tokio::runtime::Handle,
    /// The address the server listens on, once it does: a trace QR code's host when the request
    /// has no usable `Host` header.
    listen: std::sync::OnceLock<std::net::SocketAddr>,
}

impl Shared {
    pub(crate) fn listen_addr(&self) -> std::net::SocketAddr {
        self.listen.get().copied().unwrap_or_else(|| std::net::SocketAddr::from(([127, 0, 0, 1], 8080)))
    }
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

/// What the front needs of the rest of the node.
pub struct FrontendParts {
    pub limits: Limits,
    pub operator_token_hash: [u8; 32],
    pub engine: SequencerHandle,
    /// The sequencer's outputs (read only for their backlog, on `/metrics`).
    pub outputs: crossbeam_channel::Receiver<Output>,
    pub control: crossbeam_channel::Sender<Control>,
    pub clearing: ClearingHandle<Feed>,
    pub status: Arc<Status>,
    pub health: Arc<Health>,
    pub metrics: Arc<Metrics>,
    /// Leader, follower or alone (protocol §13).
    pub replica: Arc<Replica>,
}

/// The HTTP and WebSocket front of a running node.
pub struct Frontend {
    shared: Arc<Shared>,
    feed_runtime: FeedRuntime,
    shutdown: watch::Sender<bool>,
}

impl Frontend {
    pub fn new(parts: FrontendParts) -> Result<Frontend, GatewayError> {
        let feed_runtime = FeedRuntime(Some(
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(parts.limits.feed_threads)
                .thread_name("feed")
                .enable_all()
                .build()?,
        ));
        let (shutdown, shutdown_rx) = watch::channel(false);
        let shared = Arc::new(Shared {
            clearing: parts.clearing,
            engine: parts.engine,
            control: parts.control,
            status: parts.status,
            health: parts.health,
            replica: parts.replica,
            metrics: parts.metrics,
            session_slots: Arc::new(Semaphore::new(parts.limits.sessions_max)),
            subscriber_slots: Arc::new(Semaphore::new(parts.limits.feed_subscribers_max)),
            shutdown: shutdown_rx,
            next_session: AtomicU32::new(1),
            operator_token_hash: parts.operator_token_hash,
            catalogue: crate::catalogue::CatalogueCache::default(),
            outputs_backlog: parts.outputs,
            feed_runtime: feed_runtime.handle(),
            listen: std::sync::OnceLock::new(),
            limits: parts.limits,
        });
        Ok(Frontend { shared, feed_runtime, shutdown })
    }

    /// Serves `listener` until `shutdown` resolves (or the server fails), then closes every
    /// session and subscriber and lets the fan-out handle what they left (their last
    /// cancel-on-disconnects). The engine is still running when this returns.
    pub async fn serve(self, listener: TcpListener, shutdown: impl Future<Output = ()>) -> std::io::Result<()> {
        let Frontend { shared, feed_runtime, shutdown: shutdown_tx } = self;
        if let Ok(addr) = listener.local_addr() {
            let _ = shared.listen.set(addr);
        }
        let app = router(shared.clone());
        let (stop_accepting, stop) = oneshot::channel::<()>();
        let server = accept_loop(listener, app, shared.clone(), stop);
        let mut server = tokio::spawn(server);
        let served = tokio::select! {
            _ = shutdown => None,
            result = &mut server => Some(result),
        };
        tracing::info!("shutting down");
        // From here threads end on purpose: the watchdog leaves it to the node to report.
        shared.health.begin_stopping();
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
        served
    }
}

/// Accepts connections until `stop`, each under the connection gate (`connections_max`, and
/// `connections_per_address_max` per client address) and served by hyper's HTTP/1 with a
/// header timeout that also closes idle keep-alive connections; a WebSocket upgrade leaves the
/// gate for the session and subscriber slots. On `stop`, idle connections close at once and
/// requests in progress finish (graceful shutdown), up to `HTTP_CLOSE_WAIT`.
async fn accept_loop(
    listener: TcpListener,
    app: Router,
    shared: Arc<Shared>,
    mut stop: oneshot::Receiver<()>,
) -> std::io::Result<()> {
    let limits = &shared.limits;
    let gate = ConnectionGate::new(limits.connections_max, limits.connections_per_address_max);
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout).keep_alive(true);
    // Dropped on stop: every connection task then shuts its connection down gracefully.
    let (stopping, stopped) = watch::channel(());
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let (tcp, peer) = tokio::select! {
            _ = &mut stop => break,
            // Reap finished connection tasks so the set stays as large as what is open.
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of descriptors or memory, or the peer gave up during the handshake:
                    // pause briefly rather than spin, and keep serving.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(ACCEPT_PAUSE).await;
                    continue;
                }
            },
        };
        let pass = match gate.admit(peer.ip()) {
            Ok(pass) => pass,
            Err(refused) => {
                shared.metrics.refused_connections.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(%peer, ?refused, "connection refused: too many open");
                // Best effort, never waiting: the socket is closed right after.
                let _ = tcp.try_write(REFUSED_RESPONSE);
                continue;
            }
        };
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
        let service = TowerToHyperService::new(app.clone());
        let io = TokioIo::new(WriteDeadline::new(tcp, limits.write_timeout));
        let connection = http.serve_connection(io, service).with_upgrades();
        let mut stopped = stopped.clone();
        connections.spawn(async move {
            let _pass = pass;
            tokio::pin!(connection);
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(error) = result {
                        tracing::debug!(%peer, %error, "connection ended");
                    }
                    return;
                }
                _ = stopped.changed() => connection.as_mut().graceful_shutdown(),
            }
            let _ = connection.await;
        });
    }
    drop(listener);
    drop(stopping);
    let all_done = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(HTTP_CLOSE_WAIT, all_done).await.is_err() {
        tracing::warn!(open = gate.open(), "some HTTP connections did not finish in time");
        connections.abort_all();
    }
    Ok(())
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
        .route("/api/catalogue", get(api_catalogue))
        .route("/api/products", get(api_products))
        .route("/api/lots/{lot_id}", get(crate::trace::api_lot))
        .route("/api/lots/{lot_id}/qr.svg", get(crate::trace::api_lot_qr))
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

/// `/feed`, or `/feed?from_seq=N` to resume (protocol section 9).
async fn feed(
    State(shared): State<Arc<Shared>>,
    RawQuery(query): RawQuery,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    // The query first: a bad `from_seq` is named whatever else is wrong with the request.
    let from_seq = match from_seq(query.as_deref()) {
        Ok(from_seq) => from_seq,
        Err(message) => return (StatusCode::BAD_REQUEST, message).into_response(),
    };
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(rejection) => return rejection.into_response(),
    };
    let Ok(permit) = shared.subscriber_slots.clone().try_acquire_owned() else {
        return full(&shared, "feed subscribers");
    };
    let limits = shared.limits.clone();
    configure(upgrade, &limits).on_upgrade(move |socket| async move {
        let runtime = shared.feed_runtime.clone();
        runtime.spawn(subscriber::serve(socket, shared, permit, from_seq));
    })
}

/// The `from_seq` of a `/feed` query: absent, or a non-negative integer.
fn from_seq(query: Option<&str>) -> Result<Option<u64>, String> {
    let mut found = None;
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if key == "from_seq" {
            let seq = value
                .parse::<u64>()
                .map_err(|_| format!("from_seq must be a non-negative integer, not {value:?}\n"))?;
            found = Some(seq);
        }
    }
    Ok(found)
}

/// `seq` is the feed's: the last public event published (what a snapshot taken now would say).
/// Runs `read` on the clearing thread and answers its JSON, or 503 when clearing cannot answer.
async fn ask_clearing(
    shared: &Shared,
    read: impl FnOnce(&huashi_clearing::Clearing) -> serde_json::Value + Send + 'static,
) -> Response {
    let (tx, rx) = oneshot::channel();
    let asked = shared.clearing.ask(Box::new(move |clearing, _archive, _feed| {
        let _ = tx.send(read(clearing));
    }));
    match (asked, rx.await) {
        (true, Ok(body)) => ([(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response(),
        _ => (StatusCode::SERVICE_UNAVAILABLE, "clearing is not available, retry").into_response(),
    }
}

fn index_money(value: rust_decimal::Decimal) -> String {
    format!("{value:.2}")
}

/// `GET /api/catalogue?day=`: the day's lots in auction order per clock, public fields only
/// (protocol section 11); a day other than the current trading day is 404.
async fn api_catalogue(
    State(shared): State<Arc<Shared>>,
    RawQuery(query): RawQuery,
    headers: axum::http::HeaderMap,
) -> Response {
    let asked = query.as_deref().unwrap_or("").split('&').find_map(|pair| pair.strip_prefix("day="));
    let day = match asked.filter(|d| !d.is_empty()).map(huashi_engine::types::Day::parse) {
        Some(None) => return (StatusCode::BAD_REQUEST, "day must be a date like 2026-11-29\n").into_response(),
        Some(Some(day)) => Some(day),
        None => None,
    };
    let gzip = headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|e| e.trim().split(';').next() == Some("gzip")));
    match shared.catalogue.get(&shared.engine, &shared.status, day).await {
        Ok(body) if gzip => (
            [
                (header::CONTENT_TYPE, "application/json"),
                (header::CONTENT_ENCODING, "gzip"),
                (header::VARY, "accept-encoding"),
            ],
            body.gzip,
        )
            .into_response(),
        Ok(body) => {
            ([(header::CONTENT_TYPE, "application/json"), (header::VARY, "accept-encoding")], body.json).into_response()
        }
        Err(reject) if reject.code == huashi_engine::reject::RejectCode::NotFound => {
            (StatusCode::NOT_FOUND, reject.message).into_response()
        }
        Err(reject) => (StatusCode::SERVICE_UNAVAILABLE, reject.message).into_response(),
    }
}

/// `GET /api/products`: the products with their grade scales, and the instruments.
async fn api_products(State(shared): State<Arc<Shared>>) -> Response {
    let (tx, rx) = oneshot::channel();
    let read = Box::new(move |market: &huashi_engine::core::Market| -> huashi_engine::sequencer::Deliver {
        let data = crate::wire::render::ReferenceData::of(market);
        Box::new(move || {
            let _ = tx.send(data);
        })
    });
    if shared.engine.try_submit(huashi_engine::sequencer::Submission::Query(read)).is_err() {
        return (StatusCode::SERVICE_UNAVAILABLE, "engine busy, retry").into_response();
    }
    match rx.await {
        Ok(data) => {
            ([(header::CONTENT_TYPE, "application/json")], crate::wire::render::products(&data).text()).into_response()
        }
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "the engine is stopping").into_response(),
    }
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
        // The feed's `presale {action:"bought"}`, with what was bought.
        TradeKind::Presale => serde_json::json!({
            "type": "presale", "action": "bought", "lot_id": t.reference, "price": price,
            "containers": t.containers, "ts": t.ts.0, "product": t.product, "grade": t.grade.as_str(),
        }),
        TradeKind::Correction => unreachable!("clearing lists sales only; a correction is no sale"),
    }
}

/// `GET /health`: `200 {"status":"ok",…}`, or `503 {"status":"failed"|"degraded","reason":…}`.
async fn health(State(shared): State<Arc<Shared>>) -> Response {
    let json = [(header::CONTENT_TYPE, "application/json")];
    let (state, reason) = match fatal::panic_cause() {
        Some(cause) => (HealthState::Failed, Some(cause.to_string())),
        None => shared.health.read(),
    };
    if state != HealthState::Ok {
        let mut body = serde_json::json!({"status": state.as_str(), "reason": reason.unwrap_or_default()});
        if shared.replica.role() != crate::replica::Role::Single {
            // Clients of a degraded or failing node still learn where the leader is.
            body["role"] = shared.replica.role().as_str().into();
            body["leader"] = shared.replica.leader().into();
        }
        return (StatusCode::SERVICE_UNAVAILABLE, json, body.to_string()).into_response();
    }
    let command_seq = shared.status.seq.load(Ordering::Relaxed);
    let body = format!(
        "{{\"status\":\"ok\",\"day\":\"{}\",\"seq\":{},\"command_seq\":{command_seq},{}}}",
        shared.status.day(),
        shared.status.feed_seq.load(Ordering::Relaxed),
        shared.replica.health_fields(command_seq),
    );
    (json, body).into_response()
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    let gauges = Gauges {
        engine_queue_depth: shared.engine.queue_depth(),
        fanout_backlog: shared.outputs_backlog.len(),
        seq: shared.status.seq.load(Ordering::Relaxed),
        journal_sync: shared.engine.sync_times(),
    };
    let text = shared.metrics.render(&gauges);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}
