//! Load generator for a running `huashi serve` (design.md "Targets": bid → award over loopback
//! WebSocket with 1,000 connected buyers; one event to many feed subscribers; memory per idle
//! session).
//!
//! It registers a grower and `--buyers` buyers, logs every buyer in (idle sessions), connects
//! `--subscribers` feed readers, consigns one lot per round and runs them on a clock with
//! multi-buy open. For every round that starts (`clock_started` on the feed) it schedules
//! `--bids-per-round` bids, one every `--bid-interval-us`, from buyers taken in turn. Latency is
//! measured from each bid's *scheduled* send time to its reply (`award`, or `too_late` once the
//! lot is gone), so a stalled server cannot hide its stalls (no coordinated omission). Feed
//! latency is measured from each `clock_award`'s engine `ts` to its arrival at every subscriber.
//! With `--server-pid`, the server's RSS is read before and after the idle sessions connect.
//!
//! The feed's floor (issue 16): with `--floor`, as many readers again connect to a minimal
//! writer in this process (`floor`) that writes the server's own `clock_award` frame to each of
//! their sockets in turn; floor rounds alternate with the server's rounds (each waits for the
//! other's deliveries to end), and the report sets the server's per-delivery latency beside the
//! floor's, with the CPU each spent per delivery, user and system apart (from /proc).
//!
//! The journal (issue 16): the server's `/metrics` is read before and after the bidding, and the
//! `fdatasync` histogram of the run (the difference) is printed beside the bid → reply figures,
//! so a tail that the disk sets shows as such.
//!
//! A replicated hall (issue 13): `--url` is the leader (buyers, operator, grower), and
//! `--feed-url` (repeat it) names the nodes whose `/feed` the subscribers read, taken in turn.
//! Every node numbers the same events alike, so each `clock_award` (and `clock_started`) must
//! reach every subscriber with the same `seq` on every node: a mismatch is counted and fails the
//! run. The report adds each event's time to reach *all* subscribers, and per-node figures.
//!
//! ```text
//! huashi serve --listen 127.0.0.1:8080 --data-dir /tmp/lg --operator-token op &
//! cargo run --release -p huashi-benches --bin loadgen -- --url ws://127.0.0.1:8080 \
//!     --operator-token op --buyers 1000 --subscribers 1000 --rounds 20 --server-pid $!
//! ```

use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use huashi_gateway::metrics::ReplyStage;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::{sleep, sleep_until, timeout, Instant};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

// In a folder of its own: a file beside this one would be a binary of its own.
#[path = "loadgen/floor.rs"]
mod floor;
#[path = "loadgen/stamped.rs"]
mod stamped;

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;
/// A buyer's connection: its reads carry the kernel's receive time (see `stamped`).
type BuyerWs = WebSocketStream<stamped::Stamped>;
type Error = Box<dyn std::error::Error + Send + Sync>;

#[derive(Parser, Debug, Clone)]
#[command(about = "Drive a running huashi server with buyers bidding on a clock and feed subscribers")]
struct Args {
    /// The server's base WebSocket URL.
    #[arg(long, default_value = "ws://127.0.0.1:8080")]
    url: String,
    #[arg(long, env = "HUASHI_OPERATOR_TOKEN", hide_env_values = true)]
    operator_token: String,
    /// Buyer sessions (each logged in and idle unless bidding).
    #[arg(long, default_value_t = 1000)]
    buyers: usize,
    /// Feed subscribers.
    #[arg(long, default_value_t = 100)]
    subscribers: usize,
    /// Rounds (one lot each) to bid in.
    #[arg(long, default_value_t = 20)]
    rounds: usize,
    #[arg(long, default_value_t = 50)]
    bids_per_round: usize,
    /// Time between two scheduled bids, µs.
    #[arg(long, default_value_t = 2000)]
    bid_interval_us: u64,
    #[arg(long, default_value_t = 1)]
    clock: u16,
    /// Read this process's RSS (the server's) to report memory per idle session.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Nodes whose `/feed` the subscribers read, in turn (repeat the flag); default: `--url`.
    #[arg(long = "feed-url")]
    feed_urls: Vec<String>,
    /// Server processes whose CPU time (user + system, from /proc) to report for the bidding
    /// phase alone, after every connection is up (repeat the flag; e.g. every node of a hall).
    #[arg(long = "cpu-pid")]
    cpu_pids: Vec<u32>,
    /// Also measure the floor: as many readers on a minimal writer in this process, its rounds
    /// alternating with the server's (see the module's doc).
    #[arg(long)]
    floor: bool,
}

/// Requests per second one loadgen session sends while setting up (the server allows 100/s).
const SETUP_RATE: u64 = 80;

fn now_us() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64)
}

async fn connect(url: &str) -> Result<Ws, Error> {
    let (ws, _) = tokio_tungstenite::connect_async_with_config(url, None, true).await?;
    Ok(ws)
}

/// A request/reply session used for setup: one request at a time, paced under the rate limit.
struct Session {
    ws: Ws,
    next_req: u64,
    last_send: Instant,
}

impl Session {
    async fn login(url: &str, token: &str) -> Result<Session, Error> {
        let ws = connect(&format!("{url}/ws")).await?;
        let mut session = Session { ws, next_req: 0, last_send: Instant::now() - Duration::from_secs(1) };
        let reply = session.call(json!({"type": "login", "token": token})).await?;
        if reply["type"] != "logged_in" {
            return Err(format!("login failed: {reply}").into());
        }
        Ok(session)
    }

    async fn call(&mut self, mut request: Value) -> Result<Value, Error> {
        sleep_until(self.last_send + Duration::from_micros(1_000_000 / SETUP_RATE)).await;
        self.next_req += 1;
        let req_id = self.next_req;
        request["req_id"] = json!(req_id);
        self.last_send = Instant::now();
        self.ws.send(Message::text(request.to_string())).await?;
        loop {
            let message = timeout(Duration::from_secs(10), self.ws.next()).await.map_err(|_| "no reply in 10 s")?;
            let Some(message) = message else { return Err("connection closed".into()) };
            if let Message::Text(text) = message? {
                let value: Value = serde_json::from_str(text.as_str())?;
                if value["req_id"] == json!(req_id) {
                    return Ok(value);
                }
            }
        }
    }

    async fn expect(&mut self, request: Value, reply_type: &str) -> Result<Value, Error> {
        let reply = self.call(request.clone()).await?;
        if reply["type"] != reply_type {
            return Err(format!("{request} → {reply}").into());
        }
        Ok(reply)
    }
}

/// A process's CPU time so far (user + system), in clock ticks, from /proc.
fn cpu_ticks(pid: u32) -> Option<u64> {
    process_cpu(pid).map(|(user, system)| user + system)
}

/// A process's CPU time so far (user, system), in clock ticks.
fn process_cpu(pid: u32) -> Option<(u64, u64)> {
    stat_ticks(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// `utime` and `stime` of a /proc `stat` line.
fn stat_ticks(stat: &str) -> Option<(u64, u64)> {
    // Fields after the command name (which may hold spaces), from its closing parenthesis.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some((fields.get(11)?.parse::<u64>().ok()?, fields.get(12)?.parse::<u64>().ok()?))
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 on Linux).
const CLOCK_TICKS: f64 = 100.0;

/// The server's resident memory, from /proc.
fn rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[derive(Default)]
struct Stats {
    bids: Mutex<Option<Histogram<u64>>>,
    /// The same replies timed from the moment the bid actually left (service time).
    sent: Mutex<Option<Histogram<u64>>>,
    /// From the moment the bid actually left to the kernel's receive time of its reply: the
    /// server's and the wire's share, without the client's own wake-up (see `stamped`).
    arrived: Mutex<Option<Histogram<u64>>>,
    /// Only the first bid of each round: the one that stops the clock.
    stopping: Mutex<Option<Histogram<u64>>>,
    awards: AtomicU64,
    too_late: AtomicU64,
    other: AtomicU64,
    feed: Mutex<Option<Histogram<u64>>>,
    feed_deliveries: AtomicU64,
    /// Every feed message any subscriber received (ticks and state changes as well as awards).
    feed_messages: AtomicU64,
    feed_gaps: AtomicU64,
    feed_closed: AtomicU64,
    /// Per `--feed-url` (by index): clock_award deliveries, from the engine `ts`.
    feed_by_node: Mutex<HashMap<usize, Histogram<u64>>>,
    /// Every clock_award / clock_started, keyed by its text without the seq: the seq the first
    /// subscriber saw, how many saw it, and the latest arrival (µs after the engine `ts`).
    events: Mutex<HashMap<u64, Seen>>,
    /// Subscribers that saw an event under another seq than the first one did.
    seq_mismatches: AtomicU64,
}

struct Seen {
    seq: u64,
    award: bool,
    subscribers: u64,
    latest_us: u64,
}

/// A feed message's identity on every node: its text without the `"seq":N` field.
fn event_key(text: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    match text.find("\"seq\":") {
        Some(start) => {
            let digits = text[start + 6..].chars().take_while(char::is_ascii_digit).count();
            text[..start].hash(&mut hasher);
            text[start + 6 + digits..].hash(&mut hasher);
        }
        None => text.hash(&mut hasher),
    }
    hasher.finish()
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid bounds")
}

fn record(slot: &Mutex<Option<Histogram<u64>>>, micros: u64) {
    let mut guard = slot.lock().expect("not poisoned");
    let _ = guard.get_or_insert_with(histogram).record(micros.max(1));
}

fn summary(slot: &Mutex<Option<Histogram<u64>>>) -> String {
    let guard = slot.lock().expect("not poisoned");
    match guard.as_ref() {
        Some(h) if !h.is_empty() => format!(
            "n {} p50 {:.3} ms  p99 {:.3} ms  p99.9 {:.3} ms  max {:.3} ms",
            h.len(),
            h.value_at_quantile(0.5) as f64 / 1e3,
            h.value_at_quantile(0.99) as f64 / 1e3,
            h.value_at_quantile(0.999) as f64 / 1e3,
            h.max() as f64 / 1e3
        ),
        _ => "no samples".to_string(),
    }
}

/// One bid to send at `at`.
struct Job {
    at: Instant,
    req_id: u64,
    text: String,
    first: bool,
}

/// A buyer session: sends its scheduled bids on time and times each reply from the schedule.
async fn buyer(ws: BuyerWs, arrived_us: Arc<AtomicU64>, mut jobs: mpsc::Receiver<Job>, stats: Arc<Stats>) {
    let (mut sink, mut stream) = ws.split();
    let mut queue: VecDeque<Job> = VecDeque::new();
    // Per request: when it was due, when it left (monotonic and wall µs), whether it stops the round.
    let mut waiting: HashMap<u64, (Instant, Instant, u64, bool)> = HashMap::new();
    let mut open = true;
    while open || !queue.is_empty() || !waiting.is_empty() {
        let next_at = queue.front().map(|j| j.at);
        tokio::select! {
            job = jobs.recv(), if open => match job {
                Some(job) => queue.push_back(job),
                None => open = false,
            },
            _ = sleep_until(next_at.unwrap_or_else(Instant::now)), if next_at.is_some() => {
                let job = queue.pop_front().expect("a job is due");
                waiting.insert(job.req_id, (job.at, Instant::now(), now_us(), job.first));
                if sink.send(Message::text(job.text)).await.is_err() {
                    return;
                }
            }
            message = stream.next() => {
                let Some(Ok(message)) = message else { return };
                let Message::Text(text) = message else { continue };
                let Ok(value) = serde_json::from_str::<Value>(text.as_str()) else { continue };
                let Some((at, sent, sent_us, first)) = value["req_id"].as_u64().and_then(|id| waiting.remove(&id)) else { continue };
                let now = Instant::now();
                // No kernel timestamp (or one from before the send): no sample, rather than a
                // perfect one.
                let arrived = arrived_us.load(Ordering::Relaxed);
                if arrived >= sent_us {
                    record(&stats.arrived, arrived - sent_us);
                }
                if std::env::var_os("LOADGEN_VERBOSE").is_some() && now.duration_since(sent) > Duration::from_millis(20) {
                    let engine_ts = value["ts"].as_u64().unwrap_or_default();
                    let now_wall = now_us();
                    let sent_wall = now_wall - now.duration_since(sent).as_micros() as u64;
                    eprintln!("slow reply: sent→engine {} µs, engine→received {} µs", engine_ts.saturating_sub(sent_wall), now_wall.saturating_sub(engine_ts));
                }
                record(&stats.bids, now.duration_since(at).as_micros() as u64);
                record(&stats.sent, now.duration_since(sent).as_micros() as u64);
                if first {
                    record(&stats.stopping, now.duration_since(at).as_micros() as u64);
                }
                let counter = match (value["type"].as_str(), value["code"].as_str()) {
                    (Some("award"), _) => &stats.awards,
                    (_, Some("too_late")) => &stats.too_late,
                    _ => {
                        eprintln!("unexpected reply to a bid: {value}");
                        &stats.other
                    }
                };
                counter.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    let _ = sink.close().await;
}

/// The number after `"field":` in a JSON text, without parsing the whole message.
fn number_after(text: &str, field: &str) -> Option<u64> {
    let start = text.find(field)? + field.len();
    let digits: String = text[start..].chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().ok()
}

/// A feed subscriber: checks seq continuity and times every `clock_award` from its engine `ts`.
async fn subscriber(mut ws: Ws, node: usize, stats: Arc<Stats>, mut stop: watch::Receiver<bool>) {
    let mut last_seq = None;
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            message = ws.next() => {
                let Some(Ok(message)) = message else {
                    stats.feed_closed.fetch_add(1, Ordering::Relaxed);
                    return;
                };
                let Message::Text(text) = message else {
                    if let Message::Close(_) = message {
                        stats.feed_closed.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                    continue;
                };
                let text = text.as_str();
                stats.feed_messages.fetch_add(1, Ordering::Relaxed);
                let seq = number_after(text, "\"seq\":");
                if let (Some(last), Some(seq)) = (last_seq, seq) {
                    if seq != last + 1 && !text.starts_with("{\"type\":\"snapshot\"") {
                        stats.feed_gaps.fetch_add(1, Ordering::Relaxed);
                    }
                }
                last_seq = seq.or(last_seq);
                let award = text.starts_with("{\"type\":\"clock_award\"");
                if award || text.starts_with("{\"type\":\"clock_started\"") {
                    if let (Some(ts), Some(seq)) = (number_after(text, "\"ts\":"), seq) {
                        let latency = now_us().saturating_sub(ts);
                        if award {
                            record(&stats.feed, latency);
                            stats.feed_deliveries.fetch_add(1, Ordering::Relaxed);
                            let mut by_node = stats.feed_by_node.lock().expect("not poisoned");
                            let _ = by_node.entry(node).or_insert_with(histogram).record(latency.max(1));
                        }
                        let mut events = stats.events.lock().expect("not poisoned");
                        let seen = events.entry(event_key(text)).or_insert(Seen { seq, award, subscribers: 0, latest_us: 0 });
                        if seen.seq != seq {
                            stats.seq_mismatches.fetch_add(1, Ordering::Relaxed);
                            eprintln!("seq mismatch: node {node} numbers {seq} what another numbered {}: {text}", seen.seq);
                        }
                        seen.subscribers += 1;
                        seen.latest_us = seen.latest_us.max(latency);
                    }
                }
            }
        }
    }
    let _ = ws.close(None).await;
}

/// Registers the grower and the buyers over several paced operator sessions; returns tokens.
async fn register(args: &Args, prefix: &str) -> Result<(String, Vec<String>), Error> {
    let sessions = (args.buyers + 1).div_ceil(SETUP_RATE as usize).clamp(1, 50);
    let mut set = JoinSet::new();
    for s in 0..sessions {
        let (url, token, prefix) = (args.url.clone(), args.operator_token.clone(), prefix.to_string());
        let mine: Vec<usize> = (0..args.buyers).filter(|i| i % sessions == s).collect();
        set.spawn(async move {
            let mut op = Session::login(&url, &token).await?;
            let mut tokens = Vec::new();
            for i in mine {
                let request = json!({"type": "register_participant", "id": format!("{prefix}b{i}"), "name": "load buyer",
                    "roles": ["buyer"], "credit_limit": "100000000.00"});
                let reply = op.expect(request, "participant_registered").await?;
                tokens.push((i, reply["token"].as_str().unwrap_or_default().to_string()));
            }
            Ok::<_, Error>(tokens)
        });
    }
    let mut tokens = vec![String::new(); args.buyers];
    while let Some(joined) = set.join_next().await {
        for (i, token) in joined?? {
            tokens[i] = token;
        }
    }
    let mut op = Session::login(&args.url, &args.operator_token).await?;
    let request =
        json!({"type": "register_participant", "id": format!("{prefix}g"), "name": "load grower", "roles": ["grower"]});
    let grower = op.expect(request, "participant_registered").await?;
    Ok((grower["token"].as_str().unwrap_or_default().to_string(), tokens))
}

/// Opens `count` connections with bounded concurrency.
async fn open_many<T: Send + 'static>(
    count: usize,
    make: impl Fn(usize) -> tokio::task::JoinHandle<Result<T, Error>>,
) -> Result<Vec<T>, Error> {
    let mut out = Vec::with_capacity(count);
    for chunk in (0..count).collect::<Vec<_>>().chunks(100) {
        let handles: Vec<_> = chunk.iter().map(|&i| make(i)).collect();
        for handle in handles {
            out.push(handle.await??);
        }
    }
    Ok(out)
}

async fn login_buyer(url: String, token: String) -> Result<(BuyerWs, Arc<AtomicU64>), Error> {
    let url = format!("{url}/ws");
    let host = http_host(&url).ok_or("a buyer needs a ws:// URL")?;
    let tcp = TcpStream::connect(&host).await?;
    tcp.set_nodelay(true)?;
    let (stream, arrived_us) = stamped::Stamped::new(tcp)?;
    let (mut ws, _) = tokio_tungstenite::client_async_with_config(url, stream, None).await?;
    ws.send(Message::text(json!({"type": "login", "token": token}).to_string())).await?;
    match timeout(Duration::from_secs(10), ws.next()).await {
        Ok(Some(Ok(Message::Text(text)))) if text.as_str().contains("\"logged_in\"") => Ok((ws, arrived_us)),
        other => Err(format!("buyer login failed: {other:?}").into()),
    }
}

async fn subscribe(url: String) -> Result<Ws, Error> {
    let mut ws = connect(&format!("{url}/feed")).await?;
    match timeout(Duration::from_secs(10), ws.next()).await {
        Ok(Some(Ok(Message::Text(text)))) if text.as_str().starts_with("{\"type\":\"snapshot\"") => Ok(ws),
        other => Err(format!("no feed snapshot: {other:?}").into()),
    }
}

fn mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

/// `buyers_runtime` runs the buyers' connections and nothing else (see `main`).
async fn run(args: Args, buyers_runtime: tokio::runtime::Handle) -> Result<(), Error> {
    let prefix = format!("lg{}", now_us() / 1_000_000 % 1_000_000_000);
    let stats = Arc::new(Stats::default());
    println!(
        "loadgen {prefix}: {} buyers, {} subscribers, {} rounds × {} bids every {} µs, clock {}",
        args.buyers, args.subscribers, args.rounds, args.bids_per_round, args.bid_interval_us, args.clock
    );
    let started = Instant::now();
    let (grower_token, buyer_tokens) = register(&args, &prefix).await?;
    println!("registered {} buyers in {:.1} s", args.buyers, started.elapsed().as_secs_f64());

    let rss_before = args.server_pid.and_then(rss_kb);
    let url = args.url.clone();
    let buyers =
        open_many(args.buyers, |i| buyers_runtime.spawn(login_buyer(url.clone(), buyer_tokens[i].clone()))).await?;
    sleep(Duration::from_millis(500)).await;
    let rss_buyers = args.server_pid.and_then(rss_kb);
    let feed_urls = if args.feed_urls.is_empty() { vec![args.url.clone()] } else { args.feed_urls.clone() };
    let feeds =
        open_many(args.subscribers, |i| tokio::spawn(subscribe(feed_urls[i % feed_urls.len()].clone()))).await?;
    sleep(Duration::from_millis(500)).await;
    let rss_feeds = args.server_pid.and_then(rss_kb);
    println!(
        "connected {} buyers and {} subscribers in {:.1} s",
        args.buyers,
        args.subscribers,
        started.elapsed().as_secs_f64()
    );

    let floor = match args.floor {
        true => {
            let n = args.subscribers;
            let floor = tokio::task::spawn_blocking(move || floor::Floor::start(n)).await??;
            println!("connected {n} floor readers to the floor's writer");
            Some(Arc::new(Mutex::new(floor)))
        }
        false => None,
    };

    let cpu_before: Vec<Option<u64>> = args.cpu_pids.iter().map(|&pid| cpu_ticks(pid)).collect();
    let messages_before = stats.feed_messages.load(Ordering::Relaxed);
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut subscribers = JoinSet::new();
    for (i, ws) in feeds.into_iter().enumerate() {
        subscribers.spawn(subscriber(ws, i % feed_urls.len(), stats.clone(), stop_rx.clone()));
    }
    let mut alternation = Alternation::default();
    let metrics_url = http_host(&args.url);
    let metrics_before = match &metrics_url {
        Some(host) => scrape_metrics(host).await,
        None => None,
    };
    let mut buyer_jobs = Vec::new();
    let mut buyer_tasks = JoinSet::new();
    for (ws, arrived_us) in buyers {
        let (tx, rx) = mpsc::channel(1024);
        buyer_jobs.push(tx);
        buyer_tasks.spawn_on(buyer(ws, arrived_us, rx, stats.clone()), &buyers_runtime);
    }

    // The grower's session must keep reading: every award sends it a lot_sale.
    let mut grower = Session::login(&args.url, &grower_token).await?;
    let mut lots = HashSet::new();
    for _ in 0..args.rounds {
        let request = json!({"type": "consign_lot", "product": "ROSE", "grade": "A1", "units_per_container": 10,
            "containers": args.bids_per_round, "min_price": "1.00"});
        let reply = grower.expect(request, "lot_consigned").await?;
        lots.insert(reply["lot"]["lot_id"].as_u64().unwrap_or_default());
    }
    let grower_reader = tokio::spawn(async move { while let Some(Ok(_)) = grower.ws.next().await {} });

    let mut control = subscribe(args.url.clone()).await?;
    let mut op = Session::login(&args.url, &args.operator_token).await?;
    let window_ms = args.bids_per_round as u64 * args.bid_interval_us / 1000 + 1_000;
    let clock = args.clock;
    op.expect(
        json!({"type": "configure_clock", "clock": clock, "tick_ms": 10, "pre_roll_ms": 100, "pause_ms": 50,
            "multi_buy_ms": window_ms, "step": "0.01", "restart_ticks": 10}),
        "clock_configured",
    )
    .await?;
    let mut ordered: Vec<u64> = lots.iter().copied().collect();
    ordered.sort_unstable();
    for lot in &ordered {
        op.expect(
            json!({"type": "assign_lot", "lot_id": lot, "clock": clock, "start_price": "100.00"}),
            "lot_assigned",
        )
        .await?;
    }
    op.expect(json!({"type": "start_clock", "clock": clock}), "clock_state").await?;

    let mut rounds = 0;
    let mut next_buyer = 0;
    let mut req_id = 0u64;
    let deadline = Instant::now() + Duration::from_secs(60 + args.rounds as u64 * (window_ms / 1000 + 5));
    while rounds < args.rounds && Instant::now() < deadline {
        let Ok(Some(Ok(message))) = timeout(Duration::from_secs(30), control.next()).await else {
            return Err("the control feed stopped".into());
        };
        // The server pings idle connections (tungstenite answers them): skip anything not text.
        let Message::Text(text) = message else { continue };
        let event: Value = serde_json::from_str(text.as_str())?;
        if event["type"] == "clock_award" && event["clock"] == json!(clock) {
            alternation.award = Some(text.as_str().to_string());
        }
        if event["type"] != "clock_started" || event["clock"] != json!(clock) {
            continue;
        }
        let lot = event["lot_id"].as_u64().unwrap_or_default();
        if !lots.contains(&lot) {
            continue;
        }
        rounds += 1;
        if let Some(floor) = &floor {
            alternation.settle(&stats, args.subscribers, Some(text.as_str())).await;
            alternation.close_window(&stats, args.server_pid);
            alternation.floor_round(floor).await;
            alternation.open_window(&stats, args.server_pid);
        }
        let round = event["round"].as_u64().unwrap_or_default();
        let t0 = Instant::now() + Duration::from_millis(5);
        for i in 0..args.bids_per_round {
            req_id += 1;
            let text = json!({"type": "bid", "req_id": req_id, "clock": clock, "lot_id": lot, "round": round, "containers": 1})
                .to_string();
            let job =
                Job { at: t0 + Duration::from_micros(i as u64 * args.bid_interval_us), req_id, text, first: i == 0 };
            let _ = buyer_jobs[next_buyer % buyer_jobs.len()].send(job).await;
            next_buyer += 1;
        }
        alternation.bids += args.bids_per_round as u64;
    }
    drop(buyer_jobs);
    let _ = timeout(Duration::from_secs(30), async { while buyer_tasks.join_next().await.is_some() {} }).await;
    if floor.is_some() {
        alternation.settle(&stats, args.subscribers, None).await;
        alternation.close_window(&stats, args.server_pid);
    }
    let metrics_after = match &metrics_url {
        Some(host) => scrape_metrics(host).await,
        None => None,
    };
    sleep(Duration::from_millis(500)).await;
    let _ = stop_tx.send(true);
    let _ = timeout(Duration::from_secs(10), async { while subscribers.join_next().await.is_some() {} }).await;
    let cpu_after: Vec<Option<u64>> = args.cpu_pids.iter().map(|&pid| cpu_ticks(pid)).collect();
    let messages = stats.feed_messages.load(Ordering::Relaxed) - messages_before;
    let _ = op.call(json!({"type": "halt_clock", "clock": clock})).await;
    grower_reader.abort();

    println!();
    println!(
        "bid → reply ({} award, {} too_late, {} other), from the scheduled send time:",
        stats.awards.load(Ordering::Relaxed),
        stats.too_late.load(Ordering::Relaxed),
        stats.other.load(Ordering::Relaxed)
    );
    println!("  {}", summary(&stats.bids));
    println!("  the stopping bid of each round: {}", summary(&stats.stopping));
    println!("  from the actual send time: {}", summary(&stats.sent));
    println!("  from the actual send to the reply's arrival (kernel receive time): {}", summary(&stats.arrived));
    if let (Some(before), Some(after)) = (&metrics_before, &metrics_after) {
        for (name, what) in [
            ("huashi_journal_sync_seconds", "journal fdatasync (the server's /metrics, this run's difference)"),
            ("huashi_engine_latency_seconds", "engine stamp → fan-out (the server's /metrics, this run's difference)"),
        ] {
            println!("  {what}: {}", histogram_delta(before, after, name, ""));
        }
        println!("  where the server's share went, per reply (the server's /metrics, this run's difference):");
        for stage in ReplyStage::ALL {
            let labels = format!("stage=\"{}\"", stage.name());
            let delta = histogram_delta(before, after, "huashi_reply_stage_seconds", &labels);
            println!("    {:<9} {:<32} {delta}", stage.name(), stage.span());
        }
    }
    println!(
        "feed clock_award → subscriber ({} deliveries to {} subscribers, {} seq gaps, {} closed by the server):",
        stats.feed_deliveries.load(Ordering::Relaxed),
        args.subscribers,
        stats.feed_gaps.load(Ordering::Relaxed),
        stats.feed_closed.load(Ordering::Relaxed)
    );
    println!("  {}", summary(&stats.feed));
    if let Some(floor) = &floor {
        alternation.report(&stats, floor, args.subscribers).await;
    }
    if feed_urls.len() > 1 {
        let by_node = stats.feed_by_node.lock().expect("not poisoned");
        for (i, url) in feed_urls.iter().enumerate() {
            let line = by_node.get(&i).map_or("no samples".to_string(), |h| {
                format!(
                    "n {} p50 {:.3} ms  p99 {:.3} ms  max {:.3} ms",
                    h.len(),
                    h.value_at_quantile(0.5) as f64 / 1e3,
                    h.value_at_quantile(0.99) as f64 / 1e3,
                    h.max() as f64 / 1e3
                )
            });
            println!("  via {url}: {line}");
        }
    }
    let (all, partial, mut to_all) = {
        let events = stats.events.lock().expect("not poisoned");
        let mut to_all = histogram();
        let (mut all, mut partial) = (0, 0);
        for seen in events.values().filter(|seen| seen.award) {
            if seen.subscribers == args.subscribers as u64 {
                all += 1;
                let _ = to_all.record(seen.latest_us.max(1));
            } else {
                partial += 1;
            }
        }
        (all, partial, Some(to_all))
    };
    let to_all = Mutex::new(to_all.take());
    println!(
        "clock_award to all {} subscribers ({all} awards seen by all, {partial} by fewer): {}",
        args.subscribers,
        summary(&to_all)
    );
    let mismatches = stats.seq_mismatches.load(Ordering::Relaxed);
    println!(
        "feed seq agreement over {} nodes: {} (clock_award and clock_started, every subscriber)",
        feed_urls.len(),
        if mismatches == 0 {
            "every subscriber saw the same seq for the same event".to_string()
        } else {
            format!("{mismatches} MISMATCHES")
        }
    );
    if !args.cpu_pids.is_empty() {
        let mut total = 0.0;
        let mut line = String::from("server CPU while bidding (connections up, setup excluded):");
        for (i, pid) in args.cpu_pids.iter().enumerate() {
            if let (Some(before), Some(after)) = (cpu_before[i], cpu_after[i]) {
                let seconds = after.saturating_sub(before) as f64 / CLOCK_TICKS;
                total += seconds;
                line.push_str(&format!(" pid {pid} {seconds:.2} s;"));
            }
        }
        println!(
            "{line} total {total:.2} s over {rounds} rounds, {messages} feed messages delivered ({:.1} µs per message, \
             all work included)",
            total * 1e6 / messages.max(1) as f64
        );
    }
    if let (Some(before), Some(buyers), Some(feeds)) = (rss_before, rss_buyers, rss_feeds) {
        let per =
            |after: u64, base: u64, n: usize| after.saturating_sub(base) as f64 * 1024.0 / n.max(1) as f64 / 1000.0;
        println!(
            "server RSS: {:.1} MB before; {:.1} MB with {} idle sessions ({:.1} KB each); {:.1} MB with {} subscribers ({:.1} KB each)",
            mb(before),
            mb(buyers),
            args.buyers,
            per(buyers, before, args.buyers),
            mb(feeds),
            args.subscribers,
            per(feeds, buyers, args.subscribers)
        );
    }
    if mismatches > 0 {
        return Err(format!("{mismatches} feed deliveries carried another seq than the same event elsewhere").into());
    }
    Ok(())
}

/// Server rounds and floor rounds, taken in turn (`--floor`): each starts once the other's
/// deliveries have ended, so neither pays for the other's traffic. The server's CPU is summed over
/// its own windows only.
#[derive(Default)]
struct Alternation {
    /// The last `clock_award` text the control feed saw: the floor's frame.
    award: Option<String>,
    /// Bids scheduled so far.
    bids: u64,
    floor_rounds: u64,
    floor_cost: floor::RoundCost,
    floor_failed: u64,
    /// The open server window: CPU ticks (user, system) and feed messages at its start.
    window: Option<((u64, u64), u64)>,
    server_ticks: (u64, u64),
    server_messages: u64,
}

/// How long one side may take to deliver before the other goes anyway.
const SETTLE_MAX: Duration = Duration::from_secs(10);
/// The feed must have been quiet this long before a floor round starts.
const QUIET: Duration = Duration::from_millis(30);

impl Alternation {
    /// Waits until every scheduled bid has its reply, every award and `started` (the
    /// clock_started text just seen) reached every open subscriber, and the feed went quiet.
    async fn settle(&self, stats: &Stats, subscribers: usize, started: Option<&str>) {
        let started = started.map(event_key);
        let until = Instant::now() + SETTLE_MAX;
        let delivered = || {
            let replies = stats.awards.load(Ordering::Relaxed)
                + stats.too_late.load(Ordering::Relaxed)
                + stats.other.load(Ordering::Relaxed);
            let open = (subscribers as u64).saturating_sub(stats.feed_closed.load(Ordering::Relaxed));
            let awards = stats.awards.load(Ordering::Relaxed);
            let started_seen = started.is_none_or(|key| {
                stats.events.lock().expect("not poisoned").get(&key).is_some_and(|seen| seen.subscribers >= open)
            });
            replies >= self.bids && stats.feed_deliveries.load(Ordering::Relaxed) >= awards * open && started_seen
        };
        while !delivered() && Instant::now() < until {
            sleep(Duration::from_millis(1)).await;
        }
        let mut last = stats.feed_messages.load(Ordering::Relaxed);
        loop {
            sleep(QUIET).await;
            let now = stats.feed_messages.load(Ordering::Relaxed);
            if now == last || Instant::now() >= until {
                break;
            }
            last = now;
        }
    }

    fn open_window(&mut self, stats: &Stats, server_pid: Option<u32>) {
        let ticks = server_pid.and_then(process_cpu).unwrap_or_default();
        self.window = Some((ticks, stats.feed_messages.load(Ordering::Relaxed)));
    }

    fn close_window(&mut self, stats: &Stats, server_pid: Option<u32>) {
        let Some(((user, system), messages)) = self.window.take() else { return };
        let (user_now, system_now) = server_pid.and_then(process_cpu).unwrap_or_default();
        self.server_ticks.0 += user_now.saturating_sub(user);
        self.server_ticks.1 += system_now.saturating_sub(system);
        self.server_messages += stats.feed_messages.load(Ordering::Relaxed) - messages;
    }

    /// One floor round: the last award's frame to every floor reader, then waits for them all.
    async fn floor_round(&mut self, floor: &Arc<Mutex<floor::Floor>>) {
        let Some(text) = self.award.as_deref().and_then(floor::template) else { return };
        self.floor_rounds += 1;
        let (floor, seq) = (Arc::clone(floor), self.floor_rounds);
        let round = move || floor.lock().expect("not poisoned").round(&text, seq, SETTLE_MAX);
        let cost = tokio::task::spawn_blocking(round).await.unwrap_or_default();
        self.floor_cost.took += cost.took;
        self.floor_cost.user_ticks += cost.user_ticks;
        self.floor_cost.system_ticks += cost.system_ticks;
        self.floor_failed += cost.writes_failed;
    }

    async fn report(&self, stats: &Stats, floor: &Arc<Mutex<floor::Floor>>, subscribers: usize) {
        let floor = Arc::clone(floor);
        let (floor_summary, floor_p99) =
            tokio::task::spawn_blocking(move || floor.lock().expect("not poisoned").report()).await.unwrap_or_default();
        println!(
            "  the floor (one thread writing the same frame to {subscribers} readers, {} rounds alternating with the \
             server's; {} writes failed):",
            self.floor_rounds, self.floor_failed
        );
        println!("  {floor_summary}");
        let server_p99 = stats
            .feed
            .lock()
            .expect("not poisoned")
            .as_ref()
            .filter(|h| !h.is_empty())
            .map(|h| h.value_at_quantile(0.99));
        if let (Some(server), Some(floor)) = (server_p99, floor_p99) {
            println!("  server p99 / floor p99: {:.2}", server as f64 / floor.max(1) as f64);
        }
        let deliveries = (self.floor_rounds * subscribers as u64).max(1) as f64;
        let us = |ticks: u64, n: f64| ticks as f64 / CLOCK_TICKS * 1e6 / n;
        println!(
            "  CPU per delivery: the floor's writer user {:.2} µs + system {:.2} µs ({:.1} ms a round); the server \
             user {:.2} µs + system {:.2} µs over its rounds ({} feed messages delivered, every kind, all the \
             server's threads)",
            us(self.floor_cost.user_ticks, deliveries),
            us(self.floor_cost.system_ticks, deliveries),
            self.floor_cost.took.as_secs_f64() * 1e3 / self.floor_rounds.max(1) as f64,
            us(self.server_ticks.0, self.server_messages.max(1) as f64),
            us(self.server_ticks.1, self.server_messages.max(1) as f64),
            self.server_messages
        );
    }
}

/// `host:port` of a `ws://` URL, for plain HTTP to the same server.
fn http_host(url: &str) -> Option<String> {
    let rest = url.strip_prefix("ws://")?;
    Some(rest.split('/').next()?.to_string())
}

/// The server's `GET /metrics` text.
async fn scrape_metrics(host: &str) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let read = async {
        let mut socket = TcpStream::connect(host).await.ok()?;
        let request = format!("GET /metrics HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n\r\n");
        socket.write_all(request.as_bytes()).await.ok()?;
        let mut response = Vec::new();
        socket.read_to_end(&mut response).await.ok()?;
        let text = String::from_utf8(response).ok()?;
        Some(text.split_once("\r\n\r\n")?.1.to_string())
    };
    timeout(Duration::from_secs(5), read).await.ok().flatten()
}

/// A Prometheus histogram: cumulative buckets (bound in seconds, count), count and sum.
type Scraped = (Vec<(f64, u64)>, u64, f64);

/// A histogram out of a `/metrics` text; `labels` (`stage="total"`, or empty) pick one of a
/// labelled family.
fn prometheus_histogram(text: &str, base: &str, labels: &str) -> Option<Scraped> {
    let mut buckets = Vec::new();
    let (mut count, mut sum) = (None, None);
    let (bucket, closed) = if labels.is_empty() {
        (format!("{base}_bucket{{le=\""), String::new())
    } else {
        (format!("{base}_bucket{{{labels},le=\""), format!("{{{labels}}}"))
    };
    for line in text.lines() {
        let Some((key, value)) = line.rsplit_once(' ') else { continue };
        if let Some(le) = key.strip_prefix(&bucket).and_then(|rest| rest.strip_suffix("\"}")) {
            let bound = if le == "+Inf" { f64::INFINITY } else { le.parse().ok()? };
            buckets.push((bound, value.parse().ok()?));
        } else if key == format!("{base}_count{closed}") {
            count = value.parse().ok();
        } else if key == format!("{base}_sum{closed}") {
            sum = value.parse().ok();
        }
    }
    Some((buckets, count?, sum?))
}

/// What a histogram gained between two scrapes: count, mean and the bucket bound under which
/// each percentile falls.
fn histogram_delta(before: &str, after: &str, name: &str, labels: &str) -> String {
    let (Some((b0, n0, s0)), Some((b1, n1, s1))) =
        (prometheus_histogram(before, name, labels), prometheus_histogram(after, name, labels))
    else {
        return "not in /metrics".to_string();
    };
    let n = n1.saturating_sub(n0);
    if n == 0 || b0.len() != b1.len() {
        return "no samples".to_string();
    }
    let delta: Vec<(f64, u64)> =
        b1.iter().zip(&b0).map(|((bound, c1), (_, c0))| (*bound, c1.saturating_sub(*c0))).collect();
    let at = |q: f64| {
        let rank = (q * n as f64).ceil() as u64;
        let bound = delta.iter().find(|(_, c)| *c >= rank).map_or(f64::INFINITY, |(b, _)| *b);
        if bound.is_finite() {
            format!("≤ {} ms", bound * 1e3)
        } else {
            "over the last bound".to_string()
        }
    };
    // The share over 2 ms counts what lies beyond the first bound at or above 2 ms.
    let (over_bound, within) = delta.iter().find(|(b, _)| *b >= 0.002).map_or((f64::INFINITY, n), |(b, c)| (*b, *c));
    format!(
        "n {n}, mean {:.3} ms, p50 {}, p99 {}, p99.9 {}, max {}; {} ({:.2} %) over {} ms",
        (s1 - s0) / n as f64 * 1e3,
        at(0.5),
        at(0.99),
        at(0.999),
        at(1.0),
        n - within,
        (n - within) as f64 * 100.0 / n as f64,
        over_bound * 1e3
    )
}

fn main() {
    // The floor's helpers (see `floor`): this same program, in another role.
    let mut argv = std::env::args().skip(1);
    let role = argv.next();
    let count = |arg: Option<String>| arg.and_then(|n| n.parse().ok()).unwrap_or(0);
    let helper = match role.as_deref() {
        Some("floor-writer") => Some(floor::writer_main(count(argv.next())).map_err(Error::from)),
        Some("floor-readers") => {
            let url = argv.next().unwrap_or_default();
            Some(floor::readers_main(url, count(argv.next())))
        }
        _ => None,
    };
    if let Some(result) = helper {
        if let Err(error) = result {
            eprintln!("loadgen {}: {error}", role.unwrap_or_default());
            std::process::exit(1);
        }
        return;
    }
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a tokio runtime");
    // The buyers get a thread of their own, which sends bids and reads replies and nothing else:
    // on the runtime that reads the feed, a reply that came with an award waited behind the
    // award's 100 feed copies before it was read and timed, which added the client's own work to
    // the server's figure.
    // It also wakes as promptly as the server's reply threads do (a short scheduling slice, see
    // `prefer_prompt_wakeups`): on the 2 cores it shares with the server, the 100 feed readers and
    // the server's feed writers, a default slice kept a reply waiting up to tens of ms after it
    // had arrived (the kernel receive time shows it) before the client read and timed it.
    let buyers = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("buyers")
        .on_thread_start(huashi_engine::sequencer::prefer_prompt_wakeups)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    if let Err(error) = runtime.block_on(run(args, buyers.handle().clone())) {
        eprintln!("loadgen: {error}");
        std::process::exit(1);
    }
}
