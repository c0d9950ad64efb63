//! A big hall's catalogue to every screen at once (issue 14): a running server is given a day of
//! `--lots` consigned lots (10,000 by default) on four planned clocks; `--subscribers` feed
//! readers (1,000) wait for the feed's `catalogue` event that `plan_lots` publishes, and each then
//! fetches the whole catalogue (`GET /api/catalogue`, every lot with its master data). Reports
//! how long each reader waited from the event to the last byte (HdrHistogram percentiles), the
//! size of the catalogue, and the server's CPU time for the whole fan-out.
//!
//! ```sh
//! target/release/huashi serve --listen 127.0.0.1:18090 --data-dir /tmp/cat --operator-token op &
//! target/release/catalogue_load --url ws://127.0.0.1:18090 --operator-token op --server-pid $!
//! ```

use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{sleep_until, timeout};
use tokio_tungstenite::tungstenite::Message;

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;
type Error = Box<dyn std::error::Error + Send + Sync>;

#[derive(Parser, Debug)]
struct Args {
    #[arg(long, default_value = "ws://127.0.0.1:18090")]
    url: String,
    #[arg(long, default_value = "op")]
    operator_token: String,
    #[arg(long, default_value_t = 10_000)]
    lots: usize,
    #[arg(long, default_value_t = 50)]
    growers: usize,
    #[arg(long, default_value_t = 1_000)]
    subscribers: usize,
    /// The server's pid, to report its CPU time for the fan-out.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Ask for the plain JSON rather than gzip (as a client that does not decompress would).
    #[arg(long)]
    plain: bool,
}

/// Requests per second one setup session sends (the server allows 100/s).
const SETUP_RATE: u64 = 80;
const PLANS: [&[&str]; 4] = [
    &["ROSE"],
    &["CARNATION", "CHRYSANTHEMUM", "GERBERA"],
    &["LILY", "TULIP"],
    &["PHALAENOPSIS", "ANTHURIUM", "EUCALYPTUS"],
];
const PRODUCTS: [&str; 9] =
    ["ROSE", "CARNATION", "CHRYSANTHEMUM", "GERBERA", "LILY", "TULIP", "PHALAENOPSIS", "ANTHURIUM", "EUCALYPTUS"];

/// One request at a time, paced under the server's rate limit.
struct Session {
    ws: Ws,
    next_req: u64,
    last_send: Instant,
}

impl Session {
    async fn login(url: &str, token: &str) -> Result<Session, Error> {
        let (ws, _) = tokio_tungstenite::connect_async(format!("{url}/ws")).await?;
        let mut session = Session { ws, next_req: 0, last_send: Instant::now() - Duration::from_secs(1) };
        session.expect(json!({"type": "login", "token": token}), "logged_in").await?;
        Ok(session)
    }

    async fn expect(&mut self, mut request: Value, reply_type: &str) -> Result<Value, Error> {
        sleep_until((self.last_send + Duration::from_micros(1_000_000 / SETUP_RATE)).into()).await;
        self.next_req += 1;
        let req_id = self.next_req;
        request["req_id"] = json!(req_id);
        self.last_send = Instant::now();
        self.ws.send(Message::text(request.to_string())).await?;
        loop {
            let message = timeout(Duration::from_secs(30), self.ws.next()).await.map_err(|_| "no reply in 30 s")?;
            let Some(message) = message else { return Err("connection closed".into()) };
            if let Message::Text(text) = message? {
                let value: Value = serde_json::from_str(text.as_str())?;
                if value["req_id"] == json!(req_id) {
                    if value["type"] != reply_type {
                        return Err(format!("{request} → {value}").into());
                    }
                    return Ok(value);
                }
            }
        }
    }
}

/// `GET path` over a fresh connection; returns the body's length.
async fn http_get(addr: &str, path: &str, gzip: bool) -> Result<usize, Error> {
    let mut stream = TcpStream::connect(addr).await?;
    let accept = if gzip { "Accept-Encoding: gzip\r\n" } else { "" };
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{accept}Connection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await?;
    let head_end = response.windows(4).position(|w| w == b"\r\n\r\n").ok_or("no HTTP header")?;
    if !response.starts_with(b"HTTP/1.1 200") {
        return Err(format!("{}", String::from_utf8_lossy(&response[..head_end])).into());
    }
    let body = &response[head_end + 4..];
    if gzip && !body.starts_with(&[0x1f, 0x8b]) {
        return Err("asked for gzip, got something else".into());
    }
    Ok(body.len())
}

/// The server's CPU time so far (user + system), in clock ticks.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

async fn run(args: Args) -> Result<(), Error> {
    let addr = args.url.trim_start_matches("ws://").to_string();
    let mut op = Session::login(&args.url, &args.operator_token).await?;
    let limits = json!({"type": "set_limits", "lots_per_day_max": args.lots * 2, "lots_per_grower_day_max": args.lots,
                        "supply_line_lots_max": args.lots, "participants_max": args.growers + 100});
    op.expect(limits, "limits_set").await?;
    let stamp = std::process::id();
    let mut tokens = Vec::new();
    for g in 0..args.growers {
        let register = json!({"type": "register_participant", "id": format!("cg{stamp}-{g}"), "name": format!("grower {g}"), "roles": ["grower"]});
        tokens.push(
            op.expect(register, "participant_registered").await?["token"].as_str().unwrap_or_default().to_string(),
        );
    }
    println!("consigning {} lots from {} growers…", args.lots, args.growers);
    let started = Instant::now();
    let per_grower = args.lots.div_ceil(args.growers);
    let mut consigning = Vec::new();
    for (g, token) in tokens.into_iter().enumerate() {
        let url = args.url.clone();
        let count = per_grower.min(args.lots.saturating_sub(g * per_grower));
        consigning.push(tokio::spawn(async move {
            let mut grower = Session::login(&url, &token).await?;
            for i in 0..count {
                let n = g * per_grower + i;
                let lot = json!({"type": "consign_lot", "product": PRODUCTS[n % PRODUCTS.len()], "grade": "A1",
                    "units_per_container": 20, "containers": 1 + n % 12, "min_price": format!("{}.{:02}", 1 + n % 5, n % 100),
                    "origin": "Dounan, Yunnan", "variety": "Carola", "stem_length_cm": 40 + n % 40, "maturity": 1 + n % 5,
                    "packaging": "bucket", "base": "Dounan", "batch": format!("B-{}", n % 30)});
                grower.expect(lot, "lot_consigned").await?;
            }
            Ok::<(), Error>(())
        }));
    }
    for task in consigning {
        task.await??;
    }
    println!("  done in {:.1} s", started.elapsed().as_secs_f64());
    for (i, products) in PLANS.iter().enumerate() {
        op.expect(json!({"type": "set_clock_plan", "clock": i + 1, "products": products}), "clock_plan").await?;
    }
    op.expect(json!({"type": "draw_order"}), "order_drawn").await?;

    // The screens: feed readers that fetch the catalogue when the feed says it is planned.
    let waits = Arc::new(Mutex::new(Histogram::<u64>::new(3)?));
    let sizes = Arc::new(Mutex::new(Vec::new()));
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<()>(args.subscribers);
    let mut readers = Vec::new();
    for _ in 0..args.subscribers {
        let (url, addr, waits, sizes, ready) =
            (args.url.clone(), addr.clone(), Arc::clone(&waits), Arc::clone(&sizes), ready_tx.clone());
        let gzip = !args.plain;
        readers.push(tokio::spawn(async move {
            let (mut feed, _) = tokio_tungstenite::connect_async(format!("{url}/feed")).await?;
            ready.send(()).await.map_err(|_| "setup gone")?;
            loop {
                let message = timeout(Duration::from_secs(120), feed.next()).await.map_err(|_| "no catalogue event")?;
                let Some(message) = message else { return Err::<(), Error>("feed closed".into()) };
                if let Message::Text(text) = message? {
                    if text.as_str().contains("\"type\":\"catalogue\"") {
                        let heard = Instant::now();
                        let bytes = http_get(&addr, "/api/catalogue", gzip).await?;
                        waits.lock().expect("not poisoned").record(heard.elapsed().as_micros() as u64)?;
                        sizes.lock().expect("not poisoned").push(bytes);
                        return Ok(());
                    }
                }
            }
        }));
    }
    for _ in 0..args.subscribers {
        ready_rx.recv().await.ok_or("a reader failed to connect")?;
    }
    println!("{} feed readers connected; planning…", args.subscribers);
    let cpu_before = args.server_pid.and_then(cpu_ticks);
    let planned_at = Instant::now();
    let planned = op.expect(json!({"type": "plan_lots"}), "lots_planned").await?;
    let assigned = planned["assigned"].as_array().map_or(0, Vec::len);
    let mut failed = 0;
    for reader in readers {
        if reader.await.map_err(|e| e.to_string())?.is_err() {
            failed += 1;
        }
    }
    let all_done = planned_at.elapsed();
    let cpu = args.server_pid.and_then(cpu_ticks).zip(cpu_before).map(|(after, before)| after - before);
    let waits = waits.lock().expect("not poisoned");
    let sizes = sizes.lock().expect("not poisoned");
    let encoding = if args.plain { "plain JSON" } else { "gzip" };
    println!(
        "plan_lots assigned {assigned} lots; the catalogue is {} bytes ({encoding})",
        sizes.first().copied().unwrap_or(0)
    );
    println!(
        "catalogue event → whole catalogue, {} readers ({failed} failed): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; all done {:.2} s after plan_lots",
        waits.len(),
        waits.value_at_quantile(0.5) as f64 / 1000.0,
        waits.value_at_quantile(0.99) as f64 / 1000.0,
        waits.max() as f64 / 1000.0,
        all_done.as_secs_f64()
    );
    if let Some(ticks) = cpu {
        let hz = 100.0;
        println!(
            "server CPU for plan + fan-out: {:.2} s ({:.2} ms per reader)",
            ticks as f64 / hz,
            ticks as f64 / hz * 1000.0 / args.subscribers as f64
        );
    }
    Ok(())
}

fn main() {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a runtime");
    if let Err(error) = runtime.block_on(run(args)) {
        eprintln!("catalogue_load: {error}");
        std::process::exit(1);
    }
}
