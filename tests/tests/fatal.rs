//! Fatal is fatal (issue 11): a real `huashi serve` whose sequencer thread panics, whose
//! clearing thread panics, or whose journal's disk fills, exits non-zero within a second of the
//! command that kills it, logs one clear line saying why (ENOSPC with the journal file's path),
//! and `/health` never answers ok after it. Restarted on the same data directory, every effect a
//! client was told about is there, and `huashi replay` agrees on where the journal ends.
//!
//! The faults come from `HUASHI_FAULT` (a testing hook of `huashi serve`); the disk is a tmpfs
//! with a size limit, mounted by the test (skipped with a message where it cannot be made,
//! except under `CI=true`).
//!
//! No clock runs in these markets, so no timer journals a `Tick`: every command is one seq and
//! the test knows which seq the trigger gets.

use huashi_tests::*;
use serde_json::{json, Value};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

const T: Duration = REPLY_TIMEOUT;
/// The promise: the process is gone within a second of the command that kills it.
const EXIT_WITHIN: Duration = Duration::from_secs(1);
/// How long the test waits for an exit before calling it a zombie.
const EXIT_WAIT_MAX: Duration = Duration::from_secs(10);
const HEALTH_POLL_EVERY: Duration = Duration::from_millis(20);
/// A `/health` poll that starts this soon after the trigger was sent may have been answered
/// before the server even read the trigger; such polls are shown, not judged.
const HEALTH_GRACE: Duration = Duration::from_millis(10);
/// Commands `setup` sends: each is one journaled seq.
const SETUP_COMMANDS: u64 = 7;
/// The seq of the command that kills the server in the panic tests: two acknowledged commands
/// after the set-up, then the trigger.
const TRIGGER_SEQ: u64 = SETUP_COMMANDS + 3;

/// The sessions of the small market, and what its clients were told.
struct Market {
    g_token: String,
    b_token: String,
    op: Client,
    g: Client,
    b: Client,
    /// Lots whose `lot_consigned` arrived.
    lots: Vec<u64>,
    /// Open orders as last acknowledged: (owner is the grower?, client_order_id, leaves).
    orders: Vec<(bool, String, u64)>,
}

fn order(coid: &str, side: &str, price: &str, qty: u64, tif: &str) -> Value {
    json!({"type": "new_order", "client_order_id": coid, "symbol": "ROSE-A", "side": side, "order_type": "limit",
           "price": price, "quantity": qty, "time_in_force": tif})
}

/// A grower and a buyer, one lot, a resting sell, a buy that trades 5 @ 2.00 against it and a
/// resting buy: `SETUP_COMMANDS` commands, each acknowledged before the next.
async fn setup(server: &Server) -> Market {
    let mut op = server.operator().await;
    let g_token = register(&mut op, "g1", &["grower"], None).await;
    let b_token = register(&mut op, "b1", &["buyer"], Some("10000.00")).await;
    let r = op.request(json!({"type": "set_book_state", "symbol": "ROSE-A", "state": "open"})).await;
    assert_eq!(r["type"], "book_state", "{r}");
    let mut g = server.session(&g_token).await;
    let mut b = server.session(&b_token).await;
    let lot = consign(&mut g, lot_msg("ROSE", "A1", 10, 5, "1.00")).await;
    let r = g.request(order("s1", "sell", "2.00", 20, "gtc")).await;
    assert_eq!(r["type"], "order_accepted", "{r}");
    let r = b.request(order("o1", "buy", "2.00", 5, "ioc")).await;
    assert_eq!(r["type"], "order_accepted", "{r}");
    let fill = b.next_matching(|v| v["type"] == "fill" && v["client_order_id"] == "o1", T).await.expect("o1 fills");
    assert_eq!((fill["quantity"].as_u64(), fill["price"].as_str()), (Some(5), Some("2.00")), "{fill}");
    b.next_matching(|v| v["type"] == "order_done" && v["client_order_id"] == "o1", T).await.expect("o1 done");
    g.next_matching(|v| v["type"] == "fill" && v["client_order_id"] == "s1", T).await.expect("the maker's fill");
    let r = b.request(order("o2", "buy", "1.80", 10, "gtc")).await;
    assert_eq!(r["type"], "order_accepted", "{r}");
    let market = Market {
        g_token,
        b_token,
        op,
        g,
        b,
        lots: vec![lot["lot_id"].as_u64().unwrap()],
        orders: vec![(true, "s1".into(), 15), (false, "o2".into(), 10)],
    };
    assert_eq!(engine_seq(server).await, SETUP_COMMANDS, "the set-up is {SETUP_COMMANDS} commands, no timer ran");
    market
}

/// Two more acknowledged commands: a lot and a resting buy.
async fn two_more(m: &mut Market) {
    let lot = consign(&mut m.g, lot_msg("LILY", "A1", 10, 4, "1.00")).await;
    m.lots.push(lot["lot_id"].as_u64().unwrap());
    let r = m.b.request(order("o3", "buy", "1.70", 3, "gtc")).await;
    assert_eq!(r["type"], "order_accepted", "{r}");
    m.orders.push((false, "o3".into(), 3));
}

/// `huashi_engine_seq` from `/metrics`: the seq of the last command the fan-out routed.
async fn engine_seq(server: &Server) -> u64 {
    let (status, text) = http_get(server.addr, "/metrics").await;
    assert_eq!(status, 200, "{text}");
    text.lines()
        .find_map(|l| l.strip_prefix("huashi_engine_seq "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no huashi_engine_seq in /metrics:\n{text}"))
}

/// Sends `msg` without waiting; the send time is the trigger's moment.
async fn send_now(c: &mut Client, msg: Value, req_id: &str) -> Instant {
    let mut msg = msg;
    msg["req_id"] = json!(req_id);
    // Taken before the send: whatever was answered before this moment was answered before the
    // server could have seen the trigger.
    let sent = Instant::now();
    c.try_send(Message::text(msg.to_string())).await.expect("the server is up when the trigger is sent");
    sent
}

/// One `/health` poll: when its request started, when its answer came, and the answer (status,
/// body) or why none came.
type HealthSample = (Instant, Instant, Result<(u16, String), String>);

/// `GET /health` every `HEALTH_POLL_EVERY` from a background task, each answer kept with the
/// moment its request started.
struct HealthPoller {
    samples: Arc<Mutex<Vec<HealthSample>>>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl HealthPoller {
    fn start(server: &Server) -> HealthPoller {
        let samples = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let addr = server.addr;
        let task = tokio::spawn({
            let (samples, stop) = (samples.clone(), stop.clone());
            async move {
                while !stop.load(Ordering::Relaxed) {
                    let started = Instant::now();
                    let answer = try_http_get(addr, "/health").await;
                    samples.lock().unwrap().push((started, Instant::now(), answer));
                    tokio::time::sleep(HEALTH_POLL_EVERY).await;
                }
            }
        });
        HealthPoller { samples, stop, task }
    }

    /// Waits until some poll (started after `since`, past the grace) matched `seen`, at most
    /// `EXIT_WAIT_MAX`.
    async fn wait_for(&self, since: Instant, seen: impl Fn(&Result<(u16, String), String>) -> bool) {
        let deadline = Instant::now() + EXIT_WAIT_MAX;
        while Instant::now() < deadline {
            if self.samples.lock().unwrap().iter().any(|(started, _, answer)| *started >= since && seen(answer)) {
                return;
            }
            tokio::time::sleep(HEALTH_POLL_EVERY).await;
        }
    }

    /// Returns once the server has answered one poll: the polls before the trigger are the
    /// evidence that the poller sees the server at all.
    async fn answered_once(&self) {
        let start = Instant::now() - Duration::from_secs(3600);
        self.wait_for(start, |answer| matches!(answer, Ok((200, _)))).await;
    }

    /// Stops polling (once a poll found the server gone) and checks every poll that started
    /// after `trigger` (+ the grace): never `ok`; a 503 says `failed` with a reason.
    async fn never_ok_after(self, trigger: Instant) {
        self.wait_for(trigger + HEALTH_GRACE, Result::is_err).await;
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap();
        let samples = self.samples.lock().unwrap();
        let (mut before, mut grace, mut failed, mut gone) = (0, 0, 0, 0);
        for (started, finished, answer) in samples.iter() {
            // Answered before the trigger was sent: the server was surely still well. (A poll
            // that started before it but was answered after may see the failure: not judged.)
            if *finished < trigger {
                before += 1;
                let (status, body) = answer.as_ref().expect("the server answers /health before the trigger");
                assert_eq!(*status, 200, "before the trigger: {body}");
                continue;
            }
            if *started < trigger + HEALTH_GRACE {
                grace += 1;
                note(format!("/health {:?} after the trigger (not judged): {answer:?}", *started - trigger));
                continue;
            }
            match answer {
                Err(_) => gone += 1,
                Ok((status, body)) => {
                    let v: Value =
                        serde_json::from_str(body).unwrap_or_else(|e| panic!("/health not JSON ({e}): {body}"));
                    assert_ne!(v["status"], "ok", "/health said ok {:?} after the trigger: {body}", *started - trigger);
                    assert_eq!((*status, &v["status"]), (503, &json!("failed")), "{body}");
                    assert!(v["reason"].as_str().is_some_and(|r| !r.is_empty()), "a failed /health says why: {body}");
                    failed += 1;
                }
            }
        }
        note(format!(
            "/health polls: {before} ok before the trigger, {grace} within the grace, {failed} failed and {gone} \
             unanswered (the process gone) after it"
        ));
        assert!(before > 0 && gone > 0, "the poller saw the server before and after the trigger");
    }
}

/// Waits for the server to exit by itself; asserts a non-zero status within `EXIT_WITHIN` of the
/// trigger and exactly one fatal line in its log, which is returned.
fn exits_fatally(server: &mut Server, trigger: Instant) -> String {
    let status = tokio::task::block_in_place(|| server.wait_exit(EXIT_WAIT_MAX));
    let took = trigger.elapsed();
    let log = server.log();
    let Some(status) = status else {
        panic!("the server still runs {EXIT_WAIT_MAX:?} after the trigger; its log:\n{}", tail(&log, 4000))
    };
    note(format!("the server exited with {status} {took:?} after the trigger"));
    assert!(!status.success(), "a fatal failure exits non-zero, got {status}");
    assert!(
        took <= EXIT_WITHIN,
        "the server took {took:?} to exit (at most {EXIT_WITHIN:?}); log:\n{}",
        tail(&log, 4000)
    );
    let fatal: Vec<&str> = log.lines().filter(|l| l.contains("huashi: fatal:")).collect();
    assert_eq!(fatal.len(), 1, "one clear fatal line, got {fatal:?}; log:\n{}", tail(&log, 4000));
    note(format!("its last word: {}", fatal[0]));
    fatal[0].to_string()
}

/// Restarts without the fault and checks every acknowledged effect; returns the sessions.
async fn restart_and_verify(server: &mut Server, m: &Market, lots_expected: &[u64]) -> (Client, Client) {
    server.opts.env.retain(|(k, _)| k != "HUASHI_FAULT");
    server.start_again();
    server.health().await;
    let mut g = server.session(&m.g_token).await;
    let mut b = server.session(&m.b_token).await;
    let mut lots: Vec<u64> = get_lots(&mut g).await.iter().map(|l| l["lot_id"].as_u64().unwrap()).collect();
    lots.sort_unstable();
    assert_eq!(lots, lots_expected, "the grower's lots after the restart");
    for (is_grower, coid, leaves) in &m.orders {
        let open = get_orders(if *is_grower { &mut g } else { &mut b }).await;
        let o = open
            .iter()
            .find(|o| o["client_order_id"] == coid.as_str())
            .unwrap_or_else(|| panic!("acknowledged order {coid} is gone after the restart: {open:?}"));
        let left = o.get("leaves").and_then(Value::as_u64).or_else(|| o["quantity"].as_u64());
        assert_eq!(left, Some(*leaves), "order {coid} after the restart: {o}");
    }
    let account = get_account(&mut b).await;
    assert_eq!(account["bought"], "10.00", "the buyer's trade stands: {account}");
    let account = get_account(&mut g).await;
    assert_eq!(account["sold"], "10.00", "the grower's sale stands: {account}");
    (g, b)
}

/// The panic tests: the set-up, two more acknowledged commands, the trigger at `TRIGGER_SEQ`.
async fn panic_at_trigger(thread: &str) -> (Server, Market, Instant, String) {
    let fault = format!("panic:{thread}:seq={TRIGGER_SEQ}");
    // A backtrace is an operator's opt-in that delays the exit while it is symbolised (long, for
    // a debug build): this test measures the exit itself.
    let opts = ServerOpts::default().env("HUASHI_FAULT", &fault).env("RUST_BACKTRACE", "0");
    let mut server = Server::start(opts);
    let mut m = setup(&server).await;
    two_more(&mut m).await;
    assert_eq!(engine_seq(&server).await, TRIGGER_SEQ - 1);
    server.health().await;
    let poller = HealthPoller::start(&server);
    poller.answered_once().await;
    let trigger = send_now(&mut m.g, lot_msg("TULIP", "A1", 10, 3, "1.00"), "trigger").await;
    let fatal = exits_fatally(&mut server, trigger);
    poller.never_ok_after(trigger).await;
    assert!(fatal.contains(&format!("thread '{thread}' panicked at")), "{fatal}");
    assert!(fatal.contains("injected fault (HUASHI_FAULT)"), "{fatal}");
    (server, m, trigger, fatal)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sequencer_panic_ends_the_process_and_a_restart_keeps_every_acknowledged_effect() {
    let (mut server, mut m, _, _) = panic_at_trigger("sequencer").await;
    // The sequencer died staging the trigger: it was never applied, journaled or acknowledged.
    let reply = m.g.reply_to(&json!("trigger"), Duration::from_secs(2)).await;
    assert!(reply.is_err(), "the trigger was acknowledged by a server whose sequencer died on it: {reply:?}");
    // Read the journal as the crash left it: after the restart the engine may journal a tick
    // of its own (a timer that fell due while it was down).
    let replay = server.replay(false);
    assert_eq!(replay.last_seq, TRIGGER_SEQ - 1, "the journal ends before the trigger: {}", replay.stdout);
    let expected = m.lots.clone();
    let (_g, _b) = restart_and_verify(&mut server, &m, &expected).await;
    drop((m.op, m.g, m.b));
    server.stop_and_check_replays();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clearing_panic_ends_the_process_and_a_restart_keeps_every_acknowledged_effect() {
    let (mut server, mut m, _, _) = panic_at_trigger("clearing").await;
    // Clearing takes an output only once it is durable: the trigger's lot is there, whether or
    // not its reply got out before the process ended.
    let reply = m.g.reply_to(&json!("trigger"), Duration::from_secs(2)).await;
    note(format!("the trigger's reply: {reply:?}"));
    let replay = server.replay(false);
    assert_eq!(replay.last_seq, TRIGGER_SEQ, "the trigger was durable before clearing saw it: {}", replay.stdout);
    let mut expected = m.lots.clone();
    expected.push(m.lots.last().unwrap() + 1);
    let (_g, mut b) = restart_and_verify(&mut server, &m, &expected).await;
    // Clearing came back from the journal: the buyer's statement has the trade.
    let day = server.day.clone();
    let statement = b.request(json!({"type": "get_statement", "day": day})).await;
    assert_eq!(statement["type"], "statement", "{statement}");
    assert_eq!(statement["total_bought"], "10.00", "clearing recovered the trade: {statement}");
    drop((m.op, m.g, m.b));
    server.stop_and_check_replays();
}

// ───────────────────────────── disk full ─────────────────────────────

/// A tmpfs of `bytes` mounted on a fresh directory, unmounted on drop.
struct SmallDisk {
    dir: PathBuf,
    _parent: tempfile::TempDir,
}

impl SmallDisk {
    /// None (with the reason) where it cannot be made: not root, no tmpfs, no `mount`.
    fn mount(bytes: u64) -> Result<SmallDisk, String> {
        let parent = tempfile::Builder::new().prefix("huashi-small-disk-").tempdir().map_err(|e| e.to_string())?;
        let dir = parent.path().join("mnt");
        std::fs::create_dir(&dir).map_err(|e| e.to_string())?;
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(&dir)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "mount -t tmpfs failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(SmallDisk { dir, _parent: parent })
    }

    /// Writes `path` until the filesystem has no room left; returns the bytes written.
    fn fill(path: &Path) -> u64 {
        let mut file = std::fs::File::create(path).expect("create the filler");
        let mut written = 0u64;
        for chunk in [64 << 10, 4 << 10, 512] {
            let zeros = vec![0u8; chunk];
            loop {
                match file.write(&zeros) {
                    Ok(n) if n > 0 => written += n as u64,
                    Ok(_) => break,
                    Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
                    Err(e) => panic!("filling {}: {e}", path.display()),
                }
            }
        }
        written
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let umount = |lazy: bool| {
            let mut cmd = std::process::Command::new("umount");
            if lazy {
                cmd.arg("-l");
            }
            cmd.arg(&self.dir).status().is_ok_and(|s| s.success())
        };
        if !umount(false) && !umount(true) {
            eprintln!("could not unmount {}", self.dir.display());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_ends_the_process_naming_the_journal_file_and_a_restart_keeps_every_acknowledged_effect() {
    let disk = match SmallDisk::mount(8 << 20) {
        Ok(disk) => disk,
        Err(reason) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("CI=true, and the disk-full test cannot make its small filesystem: {reason}")
        }
        Err(reason) => {
            eprintln!("skipped: the disk-full test cannot make its small filesystem: {reason}");
            return;
        }
    };
    // Small journal segments: the next segment (a new page) is needed after a few hundred
    // bytes' worth of commands instead of after 64 MiB, which is what runs out of room here.
    let opts = ServerOpts {
        data_dir: Some(disk.dir.join("data")),
        config_toml: Some("[engine]\nsegment_bytes = 8192\n".into()),
        ..ServerOpts::default()
    };
    let mut server = Server::start(opts);
    let mut m = setup(&server).await;
    server.health().await;
    let filler = disk.dir.join("filler");
    let filled = SmallDisk::fill(&filler);
    note(format!("filler: {filled} bytes; the disk is full"));

    let poller = HealthPoller::start(&server);
    poller.answered_once().await;
    // Consign until a reply does not come: that command found the disk full.
    let mut trigger = None;
    for n in 0..2_000 {
        let msg = lot_msg("ROSE", "A2", 10, 1, "1.00");
        let sent = send_now(&mut m.g, msg, &format!("fill-{n}")).await;
        match m.g.reply_to(&json!(format!("fill-{n}")), T).await {
            Ok(reply) => {
                assert_eq!(reply["type"], "lot_consigned", "{reply}");
                m.lots.push(reply["lot"]["lot_id"].as_u64().unwrap());
            }
            Err(error) => {
                note(format!("command {n} after the filler got no reply: {error}"));
                trigger = Some(sent);
                break;
            }
        }
    }
    let trigger = trigger.expect("the journal ran out of room within 2,000 commands");
    let fatal = exits_fatally(&mut server, trigger);
    poller.never_ok_after(trigger).await;
    assert!(fatal.contains("No space left on device"), "{fatal}");
    let journal_dir = disk.dir.join("data").join("journal");
    assert!(fatal.contains(&format!("{}/", journal_dir.display())), "the line names the journal file: {fatal}");

    std::fs::remove_file(&filler).expect("free the space");
    let expected = m.lots.clone();
    let replay = server.replay(false);
    let acked = SETUP_COMMANDS + expected.len() as u64 - 1;
    assert_eq!(replay.last_seq, acked, "the journal ends with the last acknowledged command: {}", replay.stdout);
    let (_g, _b) = restart_and_verify(&mut server, &m, &expected).await;
    drop((m.op, m.g, m.b));
    server.stop_and_check_replays();
    drop(server);
    drop(disk);
}
