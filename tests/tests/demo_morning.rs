//! `huashi demo`, the README's one command, end to end. The real binary runs two fast mornings
//! (`--speed 50 --lots 12 --days 2`) on a fresh data directory and must stop by itself; a
//! `/feed` subscriber watches it. A second run on the same directory must continue the market
//! without registering anyone again. Then `huashi serve` opens the directory and an operator
//! session reads every participant's statement of every settled day.
//!
//! Each morning is a planned day (protocol section 11): the draw's order is recomputed here from
//! the printed seed, the clocks must start by themselves at the printed start time (never by a
//! `start_clock`: every planned clock's first round starts at the same microsecond, not before the
//! start time), lots come to each clock in catalogue order, presales happen before the clocks, and
//! a firm's seats buy on its account.
//!
//! The scenario runs once (it takes seconds); each test below checks one promise of it, so a
//! missing server feature (the index, statements) fails only the test that needs it.

use huashi_tests::*;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The whole scenario must fit the suite's budget on a loaded 2-core machine.
const SCENARIO_MAX: Duration = Duration::from_secs(60);
/// How long one demo run may take before the test gives up on it.
const RUN_MAX: Duration = Duration::from_secs(45);
const LOTS: u32 = 12;
const DAYS: u32 = 2;
const SEED: u64 = 20_261_129;
/// 10 growers, 30 simulated buyers, the visitor's seat, a buyer firm with 3 seats, and the
/// cold-chain company (logistics).
const PARTICIPANTS: usize = 46;
/// The demo's buyer firm and its seats.
const FIRM: &str = "b-lotus-group";
const SEATS: [&str; 3] = ["b-lotus-seat-1", "b-lotus-seat-2", "b-lotus-seat-3"];
/// The market's local time (protocol section 11): +08:00.
const MARKET_OFFSET_S: i64 = 8 * 3600;

/// What one `huashi demo` run printed and how it ended.
struct DemoOutput {
    addr: SocketAddr,
    stdout: Vec<String>,
    stderr: String,
    status: ExitStatus,
    elapsed: Duration,
}

impl DemoOutput {
    /// `day D settled: N trades, turnover X CNY, fees Y CNY (next day E)` lines, parsed.
    fn settled_days(&self) -> Vec<SettledDay> {
        self.stdout.iter().filter_map(|l| parse_settled(l)).collect()
    }

    fn text(&self) -> String {
        self.stdout.join("\n")
    }

    /// Each morning's lines, by trading day (`── morning N · trading day D ──`).
    fn mornings(&self) -> BTreeMap<String, Vec<&str>> {
        let mut mornings: BTreeMap<String, Vec<&str>> = BTreeMap::new();
        let mut current: Option<String> = None;
        for line in &self.stdout {
            if let Some(rest) = line.strip_prefix("── morning ") {
                let day = rest.split(" · trading day ").nth(1).and_then(|r| r.split_whitespace().next());
                current = day.map(str::to_string);
                continue;
            }
            if let Some(day) = &current {
                mornings.entry(day.clone()).or_default().push(line);
            }
        }
        mornings
    }
}

/// What a morning's lines say about its plan.
#[derive(Debug)]
struct MorningPlan {
    seed: u64,
    growers: Vec<String>,
    /// `Some(HH:MM:SS)` when the clocks were to start by themselves; `None` when the demo said it
    /// started them by hand.
    start_time: Option<String>,
}

fn morning_plan(day: &str, lines: &[&str]) -> MorningPlan {
    let draw = lines
        .iter()
        .find_map(|l| l.trim().strip_prefix("draw: seed "))
        .unwrap_or_else(|| panic!("morning {day}: no `draw: seed …` line:\n{}", lines.join("\n")));
    let (seed, order) = draw.split_once(" · grower order ").unwrap_or_else(|| panic!("{draw}"));
    assert_eq!(seed.len(), 16, "the seed is published as 16 hexadecimal digits: {seed}");
    let seed = u64::from_str_radix(seed, 16).unwrap_or_else(|_| panic!("seed {seed} is not hexadecimal"));
    let growers = order.split(", ").map(str::to_string).collect();
    let start_time = lines.iter().find_map(|l| {
        let rest = l.trim().strip_prefix("the hall opens at ")?;
        let (time, rest) = rest.split_once(" (+08:00): clocks ")?;
        rest.ends_with(" start by themselves").then(|| time.to_string())
    });
    let by_hand = lines.iter().any(|l| l.contains("ahead of the calendar") && l.contains("by hand"));
    assert!(
        start_time.is_some() != by_hand,
        "morning {day}: the demo must say either when the clocks start by themselves or why it started them by hand:\n{}",
        lines.join("\n")
    );
    MorningPlan { seed, growers, start_time }
}

/// Protocol section 11's draw: SplitMix64 from the seed, then for `i` from the last index down to
/// 1, swap element `i` with element `next() mod (i + 1)`.
fn draw(mut growers: Vec<String>, seed: u64) -> Vec<String> {
    let mut x = seed;
    let mut next = || {
        x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    for i in (1..growers.len()).rev() {
        let j = (next() % (i as u64 + 1)) as usize;
        growers.swap(i, j);
    }
    growers
}

/// µs since the epoch of `HH:MM:SS` on `day`, market time (+08:00).
fn market_instant(day: &str, time: &str) -> u64 {
    let date = huashi_engine::types::Day::parse(day).unwrap_or_else(|| panic!("{day} is not a date"));
    let parts: Vec<i64> = time.split(':').map(|p| p.parse().unwrap_or_else(|_| panic!("bad time {time}"))).collect();
    let seconds = parts[0] * 3600 + parts[1] * 60 + parts.get(2).copied().unwrap_or(0);
    ((date.0 as i64 * 86_400 + seconds - MARKET_OFFSET_S) * 1_000_000) as u64
}

/// The market date (+08:00) of an engine time.
fn market_day(ts_us: u64) -> String {
    let local = (ts_us / 1_000_000) as i64 + MARKET_OFFSET_S;
    huashi_engine::types::Day(local.div_euclid(86_400) as i32).to_string()
}

#[derive(Clone, Debug)]
struct SettledDay {
    day: String,
    trades: u64,
    turnover: i64,
    fees: i64,
    next_day: String,
}

/// Everything the scenario observed; the tests only read it.
struct Scenario {
    data_dir: PathBuf,
    first: DemoOutput,
    second: DemoOutput,
    /// The feed during the first run: its snapshot, then every event in order.
    snapshot: Value,
    events: Vec<Value>,
    /// `demo-tokens.json` after each run.
    tokens_after_first: BTreeMap<String, String>,
    tokens_after_second: BTreeMap<String, String>,
    /// `get_statement` replies by day, then participant, read from a restarted `huashi serve`.
    statements: BTreeMap<String, BTreeMap<String, Value>>,
    index_history: (u16, String),
    elapsed: Duration,
    _dir: tempfile::TempDir,
}

fn scenario() -> &'static Scenario {
    static RUN: OnceLock<Result<Scenario, String>> = OnceLock::new();
    let result = RUN.get_or_init(|| {
        std::panic::catch_unwind(|| {
            let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
            runtime.block_on(run_scenario())
        })
        .map_err(|panic| {
            panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "the scenario panicked".into())
        })
    });
    match result {
        Ok(scenario) => scenario,
        Err(message) => panic!("the demo scenario failed: {message}"),
    }
}

async fn run_scenario() -> Scenario {
    let started = Instant::now();
    let dir = tempfile::Builder::new().prefix("huashi-demo-e2e-").tempdir().expect("tempdir");
    let data_dir = dir.path().join("data");

    // The first run, watched over /feed from the moment it says where it listens.
    let token = fresh_token("demo-op");
    let args = ["--speed", "50", "--lots", &LOTS.to_string(), "--days", &DAYS.to_string(), "--seed", &SEED.to_string()];
    let first = DemoProcess::spawn(&data_dir, &token, &args, &dir.path().join("demo-1.log"));
    let mut feed = Feed::connect(first.addr).await;
    let snapshot = feed.snapshot.clone();
    let events = read_feed_to_the_end(&mut feed, first.addr).await;
    let first = first.finish();
    let tokens_after_first = read_tokens(&data_dir);

    // The second run continues the same market with one more morning, a new operator token.
    let args = ["--speed", "50", "--lots", "6", "--days", "1"];
    let second =
        DemoProcess::spawn(&data_dir, &fresh_token("demo-op2"), &args, &dir.path().join("demo-2.log")).finish();
    let tokens_after_second = read_tokens(&data_dir);

    // The market's books, read back by an operator from a plain `huashi serve`.
    let serve_token = fresh_token("serve-op");
    let mut serve = ServeProcess::spawn(&data_dir, &serve_token, &dir.path().join("serve.log"));
    let mut operator = Client::connect(serve.addr, "/ws").await;
    let reply = operator.login(&serve_token).await;
    assert_eq!(reply["participant"], "operator", "{reply}");
    let days: Vec<String> =
        first.settled_days().iter().chain(second.settled_days().iter()).map(|d| d.day.clone()).collect();
    let mut statements = BTreeMap::new();
    for day in days {
        let ids: Vec<String> = tokens_after_second.keys().cloned().collect();
        let msgs: Vec<Value> =
            ids.iter().map(|id| json!({"type": "get_statement", "day": day, "participant": id})).collect();
        let replies = operator.request_many(msgs, 16).await;
        statements.insert(day, ids.into_iter().zip(replies).collect::<BTreeMap<_, _>>());
    }
    let index_history = http_get(serve.addr, "/api/index/history").await;
    operator.close().await;
    serve.stop();

    Scenario {
        data_dir,
        first,
        second,
        snapshot,
        events,
        tokens_after_first,
        tokens_after_second,
        statements,
        index_history,
        elapsed: started.elapsed(),
        _dir: dir,
    }
}

/// Reads every feed event until the demo's server closes the feed, checking `seq` never skips.
async fn read_feed_to_the_end(feed: &mut Feed, addr: SocketAddr) -> Vec<Value> {
    let deadline = Instant::now() + RUN_MAX;
    let mut events = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "the demo on {addr} was still running after {RUN_MAX:?}");
        match feed.client.next_frame(left).await {
            Some(Frame::Json(event)) => {
                let seq = event["seq"].as_u64().unwrap_or_else(|| panic!("feed event without seq: {event}"));
                assert_eq!(seq, feed.last_seq + 1, "the feed skipped or repeated a seq: {event}");
                feed.last_seq = seq;
                events.push(event);
            }
            Some(Frame::Close(..) | Frame::Ended(_)) => return events,
            Some(other) => panic!("the feed sent a frame that is not a JSON event: {other:?}"),
            None => {}
        }
    }
}

// ───────────────────────────── the processes ─────────────────────────────

/// A running `huashi demo`; its stdout is collected line by line as it comes.
struct DemoProcess {
    addr: SocketAddr,
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
    log_path: PathBuf,
    started: Instant,
}

impl DemoProcess {
    fn spawn(data_dir: &Path, token: &str, args: &[&str], log_path: &Path) -> DemoProcess {
        let log = std::fs::File::create(log_path).expect("create the demo's log");
        let mut child = Command::new(huashi_bin())
            .args(["demo", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .args(["--operator-token", token])
            .args(args)
            .env_remove("HUASHI_OPERATOR_TOKEN")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn huashi demo");
        let started = Instant::now();
        let stdout = child.stdout.take().expect("the demo's stdout");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (first_tx, first_rx) = std::sync::mpsc::channel::<String>();
        let reader = {
            let lines = lines.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { return };
                    if line.starts_with("huashi demo: market open at ") {
                        let _ = first_tx.send(line.clone());
                    }
                    lines.lock().unwrap().push(line);
                }
            })
        };
        let Ok(line) = first_rx.recv_timeout(START_TIMEOUT) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "huashi demo printed no `huashi demo: market open at http://ADDR/` line within {START_TIMEOUT:?}\n\
                 stdout:\n{}\nstderr:\n{}",
                lines.lock().unwrap().join("\n"),
                tail(&std::fs::read_to_string(log_path).unwrap_or_default(), 4000)
            );
        };
        let addr = parse_open_line(&line).unwrap_or_else(|| panic!("cannot read the address in {line:?}"));
        assert!(addr.ip().is_loopback(), "the demo must listen where it was told (127.0.0.1): {addr}");
        DemoProcess { addr, child, lines, reader: Some(reader), log_path: log_path.to_path_buf(), started }
    }

    /// Waits for the demo to stop by itself (it has `--days`).
    fn finish(mut self) -> DemoOutput {
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait for huashi demo") {
                break status;
            }
            if self.started.elapsed() > RUN_MAX {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "huashi demo did not stop by itself within {RUN_MAX:?}\nstdout:\n{}\nstderr:\n{}",
                    self.lines.lock().unwrap().join("\n"),
                    tail(&std::fs::read_to_string(&self.log_path).unwrap_or_default(), 4000)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let elapsed = self.started.elapsed();
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        let stdout = self.lines.lock().unwrap().clone();
        let stderr = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        note(format!("huashi demo ran {elapsed:?}, {status}; stdout:\n{}", stdout.join("\n")));
        DemoOutput { addr: self.addr, stdout, stderr, status, elapsed }
    }
}

impl Drop for DemoProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `huashi serve` on the demo's data directory.
struct ServeProcess {
    addr: SocketAddr,
    child: Child,
}

impl ServeProcess {
    fn spawn(data_dir: &Path, token: &str, log_path: &Path) -> ServeProcess {
        let log = std::fs::File::create(log_path).expect("create the server's log");
        let mut child = Command::new(huashi_bin())
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .args(["--operator-token", token])
            .env_remove("HUASHI_OPERATOR_TOKEN")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn huashi serve");
        let stdout = child.stdout.take().expect("the server's stdout");
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                let _ = tx.send(line);
            }
        });
        let line = rx.recv_timeout(START_TIMEOUT).unwrap_or_else(|_| {
            let _ = child.kill();
            panic!(
                "huashi serve on the demo's data directory did not start; its log:\n{}",
                tail(&std::fs::read_to_string(log_path).unwrap_or_default(), 4000)
            )
        });
        let addr = line
            .strip_prefix("huashi listening on http://")
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line from huashi serve: {line:?}"));
        ServeProcess { addr, child }
    }

    fn stop(&mut self) {
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ───────────────────────────── parsing ─────────────────────────────

fn parse_open_line(line: &str) -> Option<SocketAddr> {
    line.strip_prefix("huashi demo: market open at http://")?.strip_suffix('/')?.parse().ok()
}

/// `  day 2026-11-29 settled: 87 trades, turnover 29959.80 CNY, fees 1575.20 CNY (next day 2026-11-30)`
fn parse_settled(line: &str) -> Option<SettledDay> {
    let rest = line.trim().strip_prefix("day ")?;
    let (day, rest) = rest.split_once(" settled: ")?;
    let (trades, rest) = rest.split_once(" trades, turnover ")?;
    let (turnover, rest) = rest.split_once(" CNY, fees ")?;
    let (fees, rest) = rest.split_once(" CNY (next day ")?;
    let next_day = rest.strip_suffix(')')?;
    Some(SettledDay {
        day: day.to_string(),
        trades: trades.parse().ok()?,
        turnover: fen(&json!(turnover)),
        fees: fen(&json!(fees)),
        next_day: next_day.to_string(),
    })
}

fn read_tokens(data_dir: &Path) -> BTreeMap<String, String> {
    let path = data_dir.join("demo-tokens.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let value: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
    value["participants"]
        .as_object()
        .unwrap_or_else(|| panic!("{} has no `participants` object: {value}", path.display()))
        .iter()
        .map(|(id, token)| (id.clone(), token.as_str().expect("a token is a string").to_string()))
        .collect()
}

/// The feed's events of each settled day (a day's events end with its `day_settled`).
fn events_by_day(s: &Scenario) -> BTreeMap<String, Vec<&Value>> {
    let mut days = BTreeMap::new();
    let mut current = Vec::new();
    for event in &s.events {
        if event["type"] == "day_settled" {
            current.push(event);
            days.insert(event["day"].as_str().unwrap().to_string(), std::mem::take(&mut current));
        } else {
            current.push(event);
        }
    }
    days
}

// ───────────────────────────── the tests ─────────────────────────────

#[test]
fn demo_prints_where_to_join_and_keeps_the_tokens() {
    let s = scenario();
    let out = s.first.text();
    assert!(out.contains(&format!("huashi demo: market open at http://{}/", s.first.addr)), "{out}");
    assert!(out.contains("operator token: demo-op-"), "the operator token is printed:\n{out}");
    assert_eq!(
        s.tokens_after_first.len(),
        PARTICIPANTS,
        "every participant's token is kept: {:?}",
        s.tokens_after_first.keys()
    );
    let visitor = &s.tokens_after_first["b-visitor"];
    assert!(out.contains(&format!("b-visitor · token {visitor}")), "the visitor's seat and token are printed:\n{out}");
    let shown = s.first.stdout.iter().find(|l| l.contains("simulated buyers")).expect("simulated buyers' tokens");
    let buyers_shown =
        s.tokens_after_first.iter().filter(|(id, token)| shown.contains(&format!("{id} {token}"))).count();
    assert!(buyers_shown >= 3, "a few simulated buyers' tokens are printed: {shown}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(s.data_dir.join("demo-tokens.json")).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "demo-tokens.json holds secrets: only its owner may read it ({mode:o})");
    }
}

#[test]
fn demo_stops_by_itself_after_its_days_and_in_time() {
    let s = scenario();
    for (run, out) in [("first", &s.first), ("second", &s.second)] {
        assert!(
            out.status.success(),
            "the {run} run failed ({}):\n{}\n{}",
            out.status,
            out.text(),
            tail(&out.stderr, 4000)
        );
        assert!(out.text().contains("huashi demo: market closed"), "the {run} run closes the market:\n{}", out.text());
    }
    assert_eq!(
        s.first.settled_days().len(),
        DAYS as usize,
        "--days {DAYS}: {} days settled:\n{}",
        DAYS,
        s.first.text()
    );
    assert!(
        s.elapsed < SCENARIO_MAX,
        "the scenario took {:?} (first run {:?}, second {:?})",
        s.elapsed,
        s.first.elapsed,
        s.second.elapsed
    );
}

#[test]
fn demo_checks_every_reply_and_meets_no_surprise() {
    let s = scenario();
    for (run, out) in [("first", &s.first), ("second", &s.second)] {
        let surprises: Vec<&str> = out
            .stderr
            .lines()
            .filter(|l| l.contains("unexpected") || l.contains("ERROR") || l.contains("panicked"))
            .collect();
        assert!(surprises.is_empty(), "the {run} run met errors it did not expect:\n{}", surprises.join("\n"));
    }
}

#[test]
fn demo_sells_lots_at_the_clocks_and_leaves_some_unsold() {
    let s = scenario();
    let of = |ty: &str| s.events.iter().filter(|e| e["type"] == ty).collect::<Vec<_>>();
    let awards = of("clock_award");
    let unsold = of("lot_unsold");
    assert!(!awards.is_empty(), "no lot was sold at the clocks (no clock_award on the feed)");
    assert!(!unsold.is_empty(), "every lot sold: the demo is meant to leave some unsold (no lot_unsold on the feed)");
    assert!(!of("trade").is_empty(), "the books never traded");
    // Every award is at a price its round reached: on or under the round's start price.
    let mut rounds = BTreeMap::new();
    for e in of("clock_started") {
        rounds.insert((e["clock"].as_u64(), e["lot_id"].as_u64(), e["round"].as_u64()), e);
    }
    for a in &awards {
        let Some(round) = rounds.get(&(a["clock"].as_u64(), a["lot_id"].as_u64(), a["round"].as_u64())) else {
            continue;
        };
        let price = fen(&a["price"]);
        assert!(price > 0 && price <= fen(&round["start_price"]), "award {a} outside its round {round}");
    }
    let clocks: BTreeSet<u64> = awards.iter().filter_map(|a| a["clock"].as_u64()).collect();
    assert!(clocks.len() >= 2, "lots sold on more than one clock: {clocks:?}");
    note(format!("{} awards, {} unsold lots, {} book trades", awards.len(), unsold.len(), of("trade").len()));
}

/// Issue 15: every morning the cold-chain company delivers every purchase, one warm cold store
/// raises an alarm on a cut-flower line, and one complaint is accepted with a credit that shows
/// as a correction on the buyer's and the grower's statements of the day, money still conserved.
#[test]
fn demo_moves_the_goods_raises_an_alarm_and_corrects_a_complaint() {
    let s = scenario();
    for (day, lines) in s.first.mornings() {
        let cold = lines.iter().find_map(|l| l.trim().strip_prefix("cold chain: "));
        let cold = cold.unwrap_or_else(|| panic!("{day}: no `cold chain:` line:\n{}", lines.join("\n")));
        let (delivered, rest) = cold.split_once(" of ").unwrap_or_else(|| panic!("{cold}"));
        let total = rest.split_whitespace().next().unwrap_or_default();
        assert_eq!(delivered, total, "{day}: every purchase delivered: {cold}");
        assert!(total.parse::<u64>().unwrap_or(0) > 0, "{day}: no purchase to move: {cold}");
        let alarm = lines.iter().find(|l| l.contains("cold-chain alarm:"));
        let alarm = alarm.unwrap_or_else(|| panic!("{day}: no cold-chain alarm:\n{}", lines.join("\n")));
        assert!(alarm.contains("9.40 °C") && alarm.contains("8.00 °C maximum"), "{alarm}");
        let complaint = lines.iter().find(|l| l.contains("complaint #") && l.contains("accepted"));
        let complaint = complaint.unwrap_or_else(|| panic!("{day}: no complaint accepted:\n{}", lines.join("\n")));
        let statements = &s.statements[&day];
        let corrections: Vec<(&String, i64)> = statements
            .iter()
            // A seat's statement is a view of its firm's: count the firm's.
            .filter(|(_, st)| st["view_of"].is_null())
            .map(|(who, st)| (who, fen(&st["corrections"])))
            .filter(|(_, c)| *c != 0)
            .collect();
        assert_eq!(corrections.len(), 2, "{day}: a buyer credited and a grower debited: {corrections:?} ({complaint})");
        assert_eq!(corrections.iter().map(|(_, c)| c).sum::<i64>(), 0, "{day}: corrections net to zero");
    }
}

#[test]
fn demo_settles_each_day_and_moves_to_the_next() {
    let s = scenario();
    let settled = s.first.settled_days();
    let on_feed: Vec<&Value> = s.events.iter().filter(|e| e["type"] == "day_settled").collect();
    assert_eq!(on_feed.len(), settled.len(), "day_settled on the feed vs the demo's lines:\n{}", s.first.text());
    for (printed, event) in settled.iter().zip(&on_feed) {
        assert_eq!(event["day"], printed.day.as_str(), "{event}");
        assert_eq!(event["next_day"], printed.next_day.as_str(), "{event}");
        assert!(printed.trades > 0 && printed.turnover > 0 && printed.fees > 0, "a day without trade: {printed:?}");
    }
    assert_eq!(s.snapshot["day"], settled[0].day.as_str(), "the first morning trades the market's first day");
    assert_eq!(settled[1].day, settled[0].next_day, "the second morning trades the next day");
}

#[test]
fn demo_second_run_continues_the_market() {
    let s = scenario();
    assert_eq!(s.tokens_after_second, s.tokens_after_first, "the second run registered participants again");
    let out = s.second.text();
    assert!(
        out.contains(&format!("0 participants registered now, {PARTICIPANTS} already known")),
        "the second run finds everyone registered:\n{out}"
    );
    let last = s.first.settled_days().last().cloned().expect("the first run settled days");
    let next = s.second.settled_days();
    assert_eq!(next.len(), 1, "--days 1:\n{out}");
    assert_eq!(next[0].day, last.next_day, "the second run trades the day after the first run's last");
}

/// Money is conserved (protocol section 8): for every settled day, the participants' `net` plus
/// the market's fees is zero, participant by participant from the statements (a seat's statement
/// is a view of its firm's: the firm counts); and from the feed: the day's awards, presales and
/// trades, priced and charged by the protocol's fee rules, must add up to the turnover and fees
/// `day_settled` reported.
#[test]
fn demo_conserves_money() {
    let s = scenario();
    let settled: BTreeMap<String, SettledDay> =
        s.first.settled_days().into_iter().chain(s.second.settled_days()).map(|d| (d.day.clone(), d)).collect();
    let sample = s.statements.values().flat_map(|m| m.values()).next();
    assert!(
        s.statements.values().flat_map(|m| m.values()).any(|r| r["type"] == "statement"),
        "no participant has a statement for a settled day: {sample:?}"
    );
    for (day, statements) in &s.statements {
        let mut net = 0;
        let mut charged = 0;
        for (participant, reply) in statements {
            if reply["type"] == "error" && reply["code"] == "not_found" {
                continue;
            }
            assert_eq!(reply["type"], "statement", "get_statement {day} {participant}: {reply}");
            if SEATS.contains(&participant.as_str()) {
                // A seat's statement is a view of its firm's lines; the firm's counts (§8).
                assert_eq!(reply["view_of"], FIRM, "{day}: seat {participant}'s statement is a view of its firm's");
                continue;
            }
            net += fen(&reply["net"]);
            charged += fen(&reply["fees"]) + fen(&reply["commission"]);
        }
        let fees = settled[day].fees;
        assert_eq!(charged, fees, "{day}: statements' fees and commissions vs day_settled.fees");
        assert_eq!(net + fees, 0, "{day}: Σ net + fees must be zero");
    }
    // From the feed, for the days it saw whole (the first run's, from its first morning).
    let mut checked = 0u32;
    for (day, events) in events_by_day(s) {
        let mut units_per_container = BTreeMap::new();
        let (mut turnover, mut fees, mut trades) = (0i64, 0i64, 0u64);
        // Presales: (lot, price, containers) bought, from each offer's `containers_left`.
        let mut offered: BTreeMap<u64, i64> = BTreeMap::new();
        let mut presales = Vec::new();
        for e in &events {
            match e["type"].as_str().unwrap_or("") {
                "presale" => {
                    let lot = e["lot_id"].as_u64().unwrap_or_else(|| panic!("presale without lot_id: {e}"));
                    let left =
                        e["containers_left"].as_i64().unwrap_or_else(|| panic!("presale without containers_left: {e}"));
                    if e["action"] == "bought" {
                        let before = offered
                            .get(&lot)
                            .copied()
                            .unwrap_or_else(|| panic!("a presale bought before it was offered: {e}"));
                        presales.push((lot, fen(&e["price"]), before - left));
                    }
                    offered.insert(lot, left);
                }
                "lot_on_clock" => {
                    units_per_container
                        .insert(e["lot"]["lot_id"].as_u64(), e["lot"]["units_per_container"].as_i64().unwrap());
                }
                "clock_award" => {
                    let units = units_per_container.get(&e["lot_id"].as_u64()).copied().unwrap_or_else(|| {
                        panic!("an award for a lot the feed never put on a clock: {e}");
                    });
                    let amount = fen(&e["price"]) * units * e["containers"].as_i64().unwrap();
                    turnover += amount;
                    fees += commission(amount) + clock_fee(e["containers"].as_u64().unwrap());
                    trades += 1;
                }
                "award_voided" => panic!("the demo voids no award: {e}"),
                "trade" => {
                    let amount = fen(&e["price"]) * e["quantity"].as_i64().unwrap();
                    turnover += amount;
                    fees += commission(amount) + book_fee(amount);
                    trades += 1;
                }
                _ => {}
            }
        }
        for (lot, price, containers) in presales {
            // The demo offers part of a lot only: what is left always comes to the clock.
            let units = units_per_container.get(&Some(lot)).copied().unwrap_or_else(|| {
                panic!("{day}: lot {lot} was presold but never came to a clock");
            });
            let amount = price * units * containers;
            turnover += amount;
            fees += commission(amount) + clock_fee(containers as u64);
            trades += 1;
        }
        let printed = &settled[&day];
        assert_eq!(
            money(turnover),
            money(printed.turnover),
            "{day}: Σ awards, presales and trades vs day_settled.turnover"
        );
        assert_eq!(money(fees), money(printed.fees), "{day}: fees by the protocol's rules vs day_settled.fees");
        assert_eq!(trades, printed.trades, "{day}: awards, presales and trades vs day_settled.trades");
        checked += 1;
    }
    assert_eq!(checked, DAYS, "the feed saw every day of the first run");
}

/// The Shanghai Flower Consumption Index (protocol section 10) is published: an `index` close
/// (`final: true`) on the feed, or rows in `/api/index/history`.
#[test]
fn demo_publishes_the_index() {
    let s = scenario();
    let closes: Vec<&Value> = s.events.iter().filter(|e| e["type"] == "index" && e["final"] == true).collect();
    let (status, body) = &s.index_history;
    let rows = if *status == 200 {
        serde_json::from_str::<Value>(body).ok().map_or(0, |v| match &v {
            Value::Array(a) => a.len(),
            other => other.as_object().and_then(|o| o.values().find_map(Value::as_array)).map_or(0, Vec::len),
        })
    } else {
        0
    };
    assert!(
        !closes.is_empty() || rows > 0,
        "no index published: no final `index` event on the feed, and GET /api/index/history answered {status}: {}",
        preview(body)
    );
    if !closes.is_empty() {
        let codes: BTreeSet<&str> = closes.iter().filter_map(|e| e["code"].as_str()).collect();
        assert!(codes.contains("SFCI"), "the all-products index closes: {codes:?}");
    }
}

/// Protocol section 11, as the demo runs it each morning: the grower order is the one the
/// documented generator gives from the published seed; each clock auctions its lots in catalogue
/// order (its `lot_on_clock` lots in increasing `position`, the order of the day's `catalogue`,
/// growers in the drawn order); and the clocks start by themselves at the printed start time.
#[test]
fn demo_plans_the_day_and_the_clocks_start_by_themselves() {
    let s = scenario();
    let mornings = s.first.mornings();
    let mut started_by_themselves = 0;
    for (day, events) in events_by_day(s) {
        let lines =
            mornings.get(&day).unwrap_or_else(|| panic!("no morning printed for day {day}:\n{}", s.first.text()));
        let plan = morning_plan(&day, lines);

        // The lots each clock put on the clock, in order, and their growers.
        let mut on_clock: BTreeMap<u64, Vec<&Value>> = BTreeMap::new();
        for e in events.iter().filter(|e| e["type"] == "lot_on_clock") {
            on_clock.entry(e["clock"].as_u64().unwrap()).or_default().push(&e["lot"]);
        }
        assert!(!on_clock.is_empty(), "{day}: no lot came to a clock");
        let mut growers: Vec<String> =
            on_clock.values().flatten().map(|lot| lot["grower"].as_str().unwrap().to_string()).collect();
        growers.sort();
        growers.dedup();
        assert_eq!(plan.growers, draw(growers, plan.seed), "{day}: the printed order is the seed's draw");

        let catalogue = events
            .iter()
            .rfind(|e| e["type"] == "catalogue")
            .unwrap_or_else(|| panic!("{day}: no catalogue event on the feed"));
        assert_eq!(catalogue["day"], day.as_str(), "{catalogue}");
        for (clock, lots) in &on_clock {
            let positions: Vec<u64> =
                lots.iter().map(|l| l["position"].as_u64().expect("a planned lot has a position")).collect();
            assert!(
                positions.windows(2).all(|w| w[0] < w[1]),
                "{day}: clock {clock} went out of catalogue order: {positions:?}"
            );
            let listed: Vec<u64> = catalogue["clocks"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["clock"] == *clock)
                .map(|c| c["lot_ids"].as_array().unwrap().iter().map(|id| id.as_u64().unwrap()).collect())
                .unwrap_or_default();
            let came: Vec<u64> = lots.iter().map(|l| l["lot_id"].as_u64().unwrap()).collect();
            assert_eq!(came, listed, "{day}: clock {clock} auctions its catalogue, in its order");
            let ranks: Vec<usize> = lots
                .iter()
                .map(|l| plan.growers.iter().position(|g| l["grower"] == g.as_str()).expect("a drawn grower"))
                .collect();
            assert!(
                ranks.windows(2).all(|w| w[0] <= w[1]),
                "{day}: clock {clock}'s growers follow the draw: {ranks:?}"
            );
        }

        // Every planned clock's first round: when the clocks start by themselves they start in
        // the same journaled tick, so their first rounds start at the same microsecond (separate
        // `start_clock` commands could not), never before the start time.
        let mut first_rounds: BTreeMap<u64, u64> = BTreeMap::new();
        for e in events.iter().filter(|e| e["type"] == "clock_started") {
            first_rounds.entry(e["clock"].as_u64().unwrap()).or_insert_with(|| e["start_ts"].as_u64().unwrap());
        }
        let starts: BTreeSet<u64> = first_rounds.values().copied().collect();
        assert_eq!(first_rounds.len(), on_clock.len(), "{day}: every clock with lots started a round");
        match &plan.start_time {
            Some(time) => {
                let planned = market_instant(&day, time);
                assert!(first_rounds.len() >= 2, "{day}: lots on one clock only: {first_rounds:?}");
                assert_eq!(
                    starts.len(),
                    1,
                    "{day}: the clocks started together at {time}: first rounds {first_rounds:?}"
                );
                let start_ts = *starts.first().unwrap();
                assert!(start_ts >= planned, "{day}: a clock started before its time {time}: {start_ts} < {planned}");
                started_by_themselves += 1;
            }
            None => {
                // The demo said the day is ahead of the calendar: check it is.
                let started_on = market_day(*starts.first().unwrap());
                assert!(
                    day > started_on,
                    "{day}: started by hand on {started_on}, a day that is not ahead of the calendar"
                );
            }
        }
    }
    assert!(started_by_themselves >= 1, "no morning's clocks started by themselves:\n{}", s.first.text());
}

/// Presales (protocol section 11): offered and bought before the lot comes to the clock, shown on
/// the feed, and in the statements as `kind:"presale"` lines on both sides.
#[test]
fn demo_sells_presales_before_the_clock() {
    let s = scenario();
    let presales: Vec<&Value> = s.events.iter().filter(|e| e["type"] == "presale").collect();
    assert!(presales.iter().any(|e| e["action"] == "offered"), "no presale offered on the feed");
    assert!(presales.iter().any(|e| e["action"] == "bought"), "no presale bought on the feed");
    let mut on_clock = BTreeSet::new();
    for e in &s.events {
        match e["type"].as_str().unwrap_or("") {
            "lot_on_clock" => {
                on_clock.insert(e["lot"]["lot_id"].as_u64());
            }
            "presale" if on_clock.contains(&e["lot_id"].as_u64()) => {
                assert_eq!(e["action"], "closed", "only a close after the lot came to the clock: {e}");
            }
            _ => {}
        }
    }
    let lines: Vec<(&String, &Value)> = s
        .statements
        .values()
        .flat_map(|m| m.iter())
        .filter(|(_, r)| r["type"] == "statement" && r["view_of"].is_null())
        .flat_map(|(who, r)| r["lines"].as_array().unwrap().iter().map(move |l| (who, l)))
        .filter(|(_, l)| l["kind"] == "presale")
        .collect();
    assert!(lines.iter().any(|(_, l)| l["side"] == "buy"), "no buyer's statement has a presale line");
    assert!(
        lines.iter().any(|(who, l)| l["side"] == "sell" && who.starts_with("g-")),
        "no grower's statement has a presale sale"
    );
    for (who, line) in &lines {
        assert_eq!(fen(&line["amount"]), fen(&line["price"]) * line["units"].as_i64().unwrap(), "{who}: {line}");
    }
    note(format!("{} presale events, {} presale statement lines", presales.len(), lines.len()));
}

/// A buyer firm's seats (protocol section 4): they buy on the firm's account; the firm's statement
/// carries their purchases, each line naming its seat; a seat's statement is a view of those lines.
#[test]
fn demo_seats_buy_for_their_firm() {
    let s = scenario();
    let mut seat_lines = 0;
    for (day, statements) in &s.statements {
        let Some(firm) = statements.get(FIRM).filter(|r| r["type"] == "statement") else { continue };
        let lines = firm["lines"].as_array().unwrap();
        for line in lines {
            let seat = line["seat"]
                .as_str()
                .unwrap_or_else(|| panic!("{day}: a line of the firm's statement names no seat: {line}"));
            assert!(SEATS.contains(&seat), "{day}: {seat} is not one of the firm's seats: {line}");
            seat_lines += 1;
        }
        for seat in SEATS {
            let Some(view) = statements.get(seat).filter(|r| r["type"] == "statement") else { continue };
            let own: Vec<&Value> = lines.iter().filter(|l| l["seat"] == seat).collect();
            let seen: Vec<&Value> = view["lines"].as_array().unwrap().iter().collect();
            assert_eq!(seen, own, "{day}: seat {seat} sees exactly its own lines of the firm's statement");
        }
    }
    assert!(seat_lines > 0, "no seat bought anything on the firm's account");
    let out = s.first.text();
    assert!(out.contains("firm Lotus Flower Group (b-lotus-group) bought through its seats"), "{out}");
}

/// Lots carry varied master data (protocol section 5), as growers of a real hall give it: a
/// cultivar, a stem length for cut flowers (roses 40–80 cm), an opening stage 1–5, a packaging,
/// the production base, a harvest batch and day (the trading day or the day before), and a
/// grade on the product's scale.
#[test]
fn demo_lots_carry_master_data() {
    let s = scenario();
    let scales: BTreeMap<&str, Vec<&str>> = [
        ("ROSE", vec!["A1", "A2", "B1", "B2", "C1"]),
        ("CARNATION", vec!["A1", "A2", "B1", "B2"]),
        ("LILY", vec!["A1", "A2", "B1", "B2"]),
        ("CHRYSANTHEMUM", vec!["A1", "A2", "B1", "B2"]),
    ]
    .into_iter()
    .collect();
    let mut varieties = BTreeSet::new();
    let mut bases = BTreeSet::new();
    let mut checked = 0;
    for (day, events) in events_by_day(s) {
        let before = huashi_engine::types::Day(huashi_engine::types::Day::parse(&day).unwrap().0 - 1).to_string();
        for lot in events.iter().filter(|e| e["type"] == "lot_on_clock").map(|e| &e["lot"]) {
            let product = lot["product"].as_str().unwrap();
            let variety = lot["variety"].as_str().unwrap_or_else(|| panic!("a lot without a variety: {lot}"));
            varieties.insert(variety.to_string());
            bases.insert(lot["base"].as_str().unwrap_or_else(|| panic!("a lot without a base: {lot}")).to_string());
            assert!(lot["batch"].as_str().is_some_and(|b| !b.is_empty()), "a lot without a batch: {lot}");
            let maturity = lot["maturity"].as_u64().unwrap_or_else(|| panic!("a lot without maturity: {lot}"));
            assert!((1..=5).contains(&maturity), "{lot}");
            assert!(["bucket", "box", "tray", "cart"].contains(&lot["packaging"].as_str().unwrap_or("")), "{lot}");
            let harvest = lot["harvest_day"].as_str().unwrap_or("");
            assert!(harvest == day || harvest == before, "{day}: harvested {harvest}: {lot}");
            if let Some(scale) = scales.get(product) {
                assert!(scale.contains(&lot["grade"].as_str().unwrap()), "a grade off {product}'s scale: {lot}");
            }
            if product == "ROSE" {
                let stem =
                    lot["stem_length_cm"].as_u64().unwrap_or_else(|| panic!("a rose without a stem length: {lot}"));
                assert!((40..=80).contains(&stem), "{lot}");
            }
            checked += 1;
        }
    }
    assert!(checked > 0, "no lot came to a clock");
    assert!(varieties.len() >= 5 && bases.len() >= 3, "varied master data: {varieties:?} from {bases:?}");
}
