//! The end-to-end harness: start the real `huashi` binary and speak protocol.md to it, as an
//! outside client would.
//!
//! - [`Server`] runs `huashi serve` (or `huashi follow`, clustered with `--nats`/`--hall`, issue
//!   13) on `127.0.0.1:0` in a temporary data directory, parses the
//!   one "listening" line from its stdout, sends its stderr (the log) to a file beside the data
//!   directory, and kills the child on drop. It can be stopped, `kill -9`ed and restarted on the
//!   same data directory, and runs `huashi replay` over that directory.
//! - [`Client`] is a `/ws` trading session: `request` stamps a `req_id`, waits for the frame that
//!   echoes it and keeps every other frame buffered for `next_of_type`.
//! - [`Feed`] is a `/feed` subscriber: it reads the snapshot, then checks that every event's `seq`
//!   is the previous + 1. [`StalledFeed`] subscribes and then reads nothing.
//! - The rest are checkers for the wire types of protocol section 1 (money strings with two
//!   decimals, integer quantities and timestamps) and exact money arithmetic in fen.

pub mod kill_model;
pub mod ledger;
pub mod nats;

use futures_util::stream::{SplitSink, StreamExt};
use futures_util::SinkExt;
use serde_json::{json, Map, Value};
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// How long any single expected reply may take. Generous: the suite runs on a loaded 2-core CI
/// machine, and no test asserts on speed.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(15);
/// How long the server may take to print its "listening" line.
pub const START_TIMEOUT: Duration = Duration::from_secs(20);

// ───────────────────────────── the binary ─────────────────────────────

/// `<target>/<profile>/huashi`, found from this test binary's own path (`<target>/<profile>/deps/…`).
pub fn huashi_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let deps = exe.parent().expect("test binary has a parent directory");
    let profile_dir = if deps.ends_with("deps") { deps.parent().expect("profile dir") } else { deps };
    let bin = profile_dir.join(format!("huashi{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "the huashi binary is missing at {}: run `cargo build -p huashi` (or `cargo test --workspace`) first",
        bin.display()
    );
    bin
}

/// `huashi serve --help`, to see which optional flags this build offers.
pub fn serve_help() -> String {
    let out = Command::new(huashi_bin()).args(["serve", "--help"]).output().expect("run huashi serve --help");
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// A token nobody could guess and that is easy to grep for in a log.
pub fn fresh_token(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64;
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{:016x}{:08x}{:04x}", nanos ^ 0x9e37_79b9_7f4a_7c15, std::process::id(), n)
}

/// Microseconds since the Unix epoch, by this machine's clock.
pub fn now_us() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_micros() as i64
}

// ───────────────────────────── the server ─────────────────────────────

#[derive(Clone, Debug)]
pub struct ServerOpts {
    pub operator_token: String,
    pub clocks: Option<u32>,
    /// More `serve` flags, appended as given.
    pub extra_args: Vec<String>,
    /// Environment for the child (e.g. `RUST_LOG`).
    pub env: Vec<(String, String)>,
    /// A `--config` TOML file's text (written beside the data directory), if any.
    pub config_toml: Option<String>,
    /// This data directory (e.g. on a small filesystem the test made) instead of `data` in the
    /// server's own temporary directory.
    pub data_dir: Option<PathBuf>,
    /// `serve` (the default) or `follow` (docs/cluster-spec).
    pub subcommand: String,
    /// `--nats URL[,URL...]`: a clustered node.
    pub nats: Option<String>,
    /// `--hall NAME`.
    pub hall: Option<String>,
    /// `[cluster] lease_ttl_ms = N`, appended to the `--config` TOML (so `config_toml` must not
    /// have a `[cluster]` table of its own when this is set).
    pub lease_ttl_ms: Option<u64>,
}

impl Default for ServerOpts {
    fn default() -> ServerOpts {
        ServerOpts {
            operator_token: fresh_token("optok"),
            clocks: None,
            extra_args: Vec::new(),
            env: Vec::new(),
            config_toml: None,
            data_dir: None,
            subcommand: "serve".to_string(),
            nats: None,
            hall: None,
            lease_ttl_ms: None,
        }
    }
}

impl ServerOpts {
    pub fn clocks(mut self, n: u32) -> ServerOpts {
        self.clocks = Some(n);
        self
    }
    pub fn env(mut self, key: &str, value: &str) -> ServerOpts {
        self.env.push((key.to_string(), value.to_string()));
        self
    }
    /// A clustered node of `hall` on the NATS servers `urls` (`--nats`, `--hall`).
    pub fn cluster(mut self, urls: &str, hall: &str) -> ServerOpts {
        self.nats = Some(urls.to_string());
        self.hall = Some(hall.to_string());
        self
    }
    /// `huashi follow` instead of `huashi serve`.
    pub fn follow(mut self) -> ServerOpts {
        self.subcommand = "follow".to_string();
        self
    }
    /// `huashi serve`.
    pub fn serve(mut self) -> ServerOpts {
        self.subcommand = "serve".to_string();
        self
    }
    /// `[cluster] lease_ttl_ms` in the config file.
    pub fn lease_ttl_ms(mut self, ms: u64) -> ServerOpts {
        self.lease_ttl_ms = Some(ms);
        self
    }

    /// The `--config` file's text: `config_toml` plus the `[cluster]` table, if any.
    fn config_text(&self) -> Option<String> {
        let mut text = self.config_toml.clone();
        if let Some(ms) = self.lease_ttl_ms {
            let t = text.get_or_insert_with(String::new);
            t.push_str(&format!("\n[cluster]\nlease_ttl_ms = {ms}\n"));
        }
        text
    }
}

/// A running `huashi serve`. Dropping it kills the child.
pub struct Server {
    pub addr: SocketAddr,
    pub day: String,
    pub data_dir: PathBuf,
    /// The child's stderr, appended across restarts.
    pub log_path: PathBuf,
    pub opts: ServerOpts,
    child: Option<Child>,
    // Held for its Drop: the whole temporary directory goes when the server does.
    _dir: tempfile::TempDir,
}

impl Server {
    /// Starts a server on a fresh data directory.
    pub fn start(opts: ServerOpts) -> Server {
        let dir = tempfile::Builder::new().prefix("huashi-e2e-").tempdir().expect("tempdir");
        let data_dir = opts.data_dir.clone().unwrap_or_else(|| dir.path().join("data"));
        let log_path = dir.path().join("server-stderr.log");
        let mut server = Server {
            addr: "127.0.0.1:0".parse().unwrap(),
            day: String::new(),
            data_dir,
            log_path,
            opts,
            child: None,
            _dir: dir,
        };
        server.spawn();
        server
    }

    pub fn token(&self) -> &str {
        &self.opts.operator_token
    }

    fn spawn(&mut self) {
        assert!(self.child.is_none(), "the server is already running");
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log_path).expect("open server log");
        let mut cmd = Command::new(huashi_bin());
        cmd.arg(&self.opts.subcommand)
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--operator-token")
            .arg(&self.opts.operator_token);
        if let Some(n) = self.opts.clocks {
            cmd.arg("--clocks").arg(n.to_string());
        }
        if let Some(text) = self.opts.config_text() {
            let path = self.log_path.with_file_name("config.toml");
            std::fs::write(&path, text).expect("write config.toml");
            cmd.arg("--config").arg(path);
        }
        if let Some(urls) = &self.opts.nats {
            cmd.arg("--nats").arg(urls);
        }
        if let Some(hall) = &self.opts.hall {
            cmd.arg("--hall").arg(hall);
        }
        cmd.args(&self.opts.extra_args);
        cmd.env_remove("HUASHI_OPERATOR_TOKEN");
        for (k, v) in &self.opts.env {
            cmd.env(k, v);
        }
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::from(log));
        let sub = self.opts.subcommand.clone();
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn huashi {sub}: {e}"));
        let stdout = child.stdout.take().expect("child stdout");
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        // Keep draining stdout for the child's whole life so it never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            let mut first = true;
            loop {
                line.clear();
                match reader.read_line(&mut line) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {
                        if first {
                            first = false;
                            let _ = tx.send(line.trim_end().to_string());
                        }
                    }
                }
            }
        });
        let line = match rx.recv_timeout(START_TIMEOUT) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "huashi {sub} printed no listening line within {START_TIMEOUT:?}; its log:\n{}",
                    tail(&read_lossy(&self.log_path), 4000)
                );
            }
        };
        let (addr, day) = parse_listening_line(&line).unwrap_or_else(|| {
            let _ = child.kill();
            panic!("unexpected first stdout line from huashi {sub}: {line:?} (want `huashi listening on http://ADDR day YYYY-MM-DD data DIR`)")
        });
        assert!(addr.ip().is_loopback(), "the server must listen on 127.0.0.1 only, got {addr}");
        self.addr = addr;
        self.day = day;
        self.child = Some(child);
    }

    /// SIGTERM, then SIGKILL if it has not gone within 10 s.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        unsafe {
            libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `kill -9`: no chance to flush, sync or say goodbye.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            unsafe {
                libc::kill(child.id() as libc::pid_t, libc::SIGKILL);
            }
            let _ = child.wait();
        }
    }

    /// Sends `sig` (e.g. `libc::SIGSTOP`, `libc::SIGCONT`) to the running server.
    pub fn signal(&self, sig: libc::c_int) {
        let pid = self.pid().expect("the server runs");
        let rc = unsafe { libc::kill(pid as libc::pid_t, sig) };
        assert_eq!(rc, 0, "kill({pid}, {sig}): {}", std::io::Error::last_os_error());
    }

    /// Stops the server if it runs and starts it again on the same data directory (new port).
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// Starts it again after `kill9` or `stop`, on the same data directory.
    pub fn start_again(&mut self) {
        self.spawn();
    }

    /// Waits up to `timeout` for the server to exit by itself, checking every 10 ms; returns its
    /// exit status, or None if it still runs (it is left running).
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            let child = self.child.as_mut()?;
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The server process's id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|child| child.id())
    }

    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Everything the server wrote to stderr so far.
    pub fn log(&self) -> String {
        read_lossy(&self.log_path)
    }

    /// `huashi replay --data-dir DIR [--from-genesis]`; the server should be stopped first.
    pub fn replay(&self, from_genesis: bool) -> Replay {
        let mut cmd = Command::new(huashi_bin());
        cmd.arg("replay").arg("--data-dir").arg(&self.data_dir);
        if from_genesis {
            cmd.arg("--from-genesis");
        }
        let out = cmd.output().expect("run huashi replay");
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "huashi replay failed ({}):\nstdout:\n{stdout}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let field = |name: &str| -> String {
            stdout
                .lines()
                .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')).map(str::to_string))
                .unwrap_or_else(|| panic!("huashi replay printed no `{name} …` line:\n{stdout}"))
        };
        Replay {
            commands: field("commands").trim().parse().expect("commands N"),
            last_seq: field("last_seq").trim().parse().expect("last_seq N"),
            state_hash: field("state_hash").trim().to_string(),
            feed_seq: field("feed_seq").trim().parse().expect("feed_seq N"),
            clearing_hash: field("clearing_hash").trim().to_string(),
            stdout,
        }
    }

    /// Stops the server and replays its directory twice from the newest snapshot and once from
    /// genesis: all three must reach the same state hash and last seq (the core is deterministic,
    /// snapshots lose nothing). Returns the first replay.
    pub fn stop_and_check_replays(&mut self) -> Replay {
        self.stop();
        let first = self.replay(false);
        let second = self.replay(false);
        assert_eq!(
            first.state_hash, second.state_hash,
            "two replays of one directory differ:\n{}\n{}",
            first.stdout, second.stdout
        );
        assert_eq!(first.last_seq, second.last_seq, "{}\n{}", first.stdout, second.stdout);
        let genesis = self.replay(true);
        assert_eq!(
            genesis.state_hash, first.state_hash,
            "replay from genesis differs:\n{}\n{}",
            genesis.stdout, first.stdout
        );
        assert_eq!(genesis.last_seq, first.last_seq, "{}", genesis.stdout);
        assert_eq!(
            (genesis.feed_seq, &genesis.clearing_hash),
            (first.feed_seq, &first.clearing_hash),
            "the feed and clearing replayed from genesis differ from their snapshots':\n{}\n{}",
            genesis.stdout,
            first.stdout
        );
        first
    }

    pub async fn connect(&self, path: &str) -> Client {
        Client::connect(self.addr, path).await
    }

    /// A `/ws` session logged in as the market operator.
    pub async fn operator(&self) -> Client {
        let mut c = self.connect("/ws").await;
        let reply = c.login(self.token()).await;
        assert_eq!(reply["participant"], "operator", "the operator id is `operator`: {reply}");
        c
    }

    /// A `/ws` session logged in with `token`.
    pub async fn session(&self, token: &str) -> Client {
        let mut c = self.connect("/ws").await;
        c.login(token).await;
        c
    }

    pub async fn feed(&self) -> Feed {
        Feed::connect(self.addr).await
    }

    pub async fn health(&self) -> Value {
        let (status, body) = http_get(self.addr, "/health").await;
        assert_eq!(status, 200, "GET /health: {body}");
        let v: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET /health is not JSON ({e}): {body}"));
        assert_eq!(v["status"], "ok", "GET /health: {v}");
        assert_day(&v["day"]);
        assert!(v["seq"].is_u64(), "GET /health seq must be an integer: {v}");
        assert!(v["command_seq"].is_u64(), "GET /health command_seq must be an integer: {v}");
        assert!(v["role"].is_string(), "GET /health role must be a string: {v}");
        v
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// What `huashi replay` printed.
#[derive(Clone, Debug)]
pub struct Replay {
    pub commands: u64,
    pub last_seq: u64,
    pub state_hash: String,
    /// The last public feed seq the directory holds (replayed through clearing and the feed).
    pub feed_seq: u64,
    pub clearing_hash: String,
    pub stdout: String,
}

fn parse_listening_line(line: &str) -> Option<(SocketAddr, String)> {
    let rest = line.strip_prefix("huashi listening on http://")?;
    let mut words = rest.split_whitespace();
    let addr: SocketAddr = words.next()?.parse().ok()?;
    if words.next()? != "day" {
        return None;
    }
    let day = words.next()?.to_string();
    if words.next()? != "data" {
        return None;
    }
    words.next()?;
    Some((addr, day))
}

fn read_lossy(path: &Path) -> String {
    let mut bytes = Vec::new();
    if let Ok(mut f) = std::fs::File::open(path) {
        let _ = f.read_to_end(&mut bytes);
    }
    String::from_utf8_lossy(&bytes).to_string()
}

pub fn tail(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut start = s.len() - max;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

/// One `GET` over a fresh connection; returns status and body.
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    try_http_get(addr, path).await.unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

/// Like [`http_get`], but a server that is gone (refused, reset, no complete answer) is an
/// `Err` instead of a panic.
pub async fn try_http_get(addr: SocketAddr, path: &str) -> Result<(u16, String), String> {
    let fut = async {
        let mut stream = TcpStream::connect(addr).await.map_err(|e| format!("connect: {e}"))?;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(req.as_bytes()).await.map_err(|e| format!("write request: {e}"))?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.map_err(|e| format!("read response: {e}"))?;
        Ok::<_, String>(raw)
    };
    let raw = tokio::time::timeout(REPLY_TIMEOUT, fut).await.map_err(|_| "timed out".to_string())??;
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(|| format!("no header end in {text:?}"))?;
    let status: u16 =
        head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| format!("no status in {head:?}"))?;
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    let body = if chunked { dechunk(body) } else { body.to_string() };
    Ok((status, body))
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else { break };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

// ───────────────────────────── WebSocket clients ─────────────────────────────

type Ws = WebSocketStream<TcpStream>;

/// One thing read off a WebSocket.
#[derive(Clone, Debug)]
pub enum Frame {
    Json(Value),
    /// A text frame that is not JSON (the protocol never sends one).
    Text(String),
    Binary(Vec<u8>),
    /// A close frame: its code, if it had one, and reason.
    Close(Option<u16>, String),
    /// The stream ended without a close frame, or failed.
    Ended(String),
}

async fn ws_connect(addr: SocketAddr, path: &str, recv_buffer: Option<u32>) -> Result<Ws, String> {
    let socket = TcpSocket::new_v4().map_err(|e| e.to_string())?;
    if let Some(size) = recv_buffer {
        socket.set_recv_buffer_size(size).map_err(|e| e.to_string())?;
    }
    let tcp = socket.connect(addr).await.map_err(|e| format!("connect {addr}: {e}"))?;
    tcp.set_nodelay(true).map_err(|e| e.to_string())?;
    let config = WebSocketConfig::default().max_message_size(Some(64 << 20)).max_frame_size(Some(64 << 20));
    let url = format!("ws://{addr}{path}");
    let (ws, _response) = tokio_tungstenite::client_async_with_config(url, tcp, Some(config))
        .await
        .map_err(|e| format!("WebSocket handshake for {path}: {e}"))?;
    Ok(ws)
}

fn to_frame(msg: Result<Message, tokio_tungstenite::tungstenite::Error>) -> Option<Frame> {
    match msg {
        Ok(Message::Text(t)) => Some(match serde_json::from_str::<Value>(t.as_str()) {
            Ok(v) => Frame::Json(v),
            Err(_) => Frame::Text(t.to_string()),
        }),
        Ok(Message::Binary(b)) => Some(Frame::Binary(b.to_vec())),
        Ok(Message::Close(cf)) => Some(match cf {
            Some(cf) => Frame::Close(Some(u16::from(cf.code)), cf.reason.to_string()),
            None => Frame::Close(None, String::new()),
        }),
        Ok(Message::Ping(_)) | Ok(Message::Pong(_)) | Ok(Message::Frame(_)) => None,
        Err(e) => Some(Frame::Ended(e.to_string())),
    }
}

/// A `/ws` (or, with care, `/feed`) connection whose frames are read by a background task into
/// an unbounded queue, as any real client keeps reading.
pub struct Client {
    sink: SplitSink<Ws, Message>,
    rx: mpsc::UnboundedReceiver<Frame>,
    buffer: VecDeque<Frame>,
    next_req: u64,
    /// Set once a close or end was read; later reads return it again.
    pub ended: Option<Frame>,
    /// Who this session is logged in as, once it is.
    pub participant: Option<String>,
}

impl Client {
    pub async fn connect(addr: SocketAddr, path: &str) -> Client {
        Client::try_connect(addr, path).await.unwrap_or_else(|e| panic!("{e}"))
    }

    pub async fn try_connect(addr: SocketAddr, path: &str) -> Result<Client, String> {
        let ws = tokio::time::timeout(REPLY_TIMEOUT, ws_connect(addr, path, None))
            .await
            .map_err(|_| format!("connecting to {path} timed out"))??;
        let (sink, mut stream) = ws.split();
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(msg) = stream.next().await {
                if let Some(frame) = to_frame(msg) {
                    let last = matches!(frame, Frame::Close(..) | Frame::Ended(_));
                    if tx.send(frame).is_err() || last {
                        return;
                    }
                }
            }
            let _ = tx.send(Frame::Ended("stream ended".into()));
        });
        Ok(Client { sink, rx, buffer: VecDeque::new(), next_req: 0, ended: None, participant: None })
    }

    pub async fn try_send(&mut self, msg: Message) -> Result<(), String> {
        match tokio::time::timeout(REPLY_TIMEOUT, self.sink.send(msg)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("send timed out".into()),
        }
    }

    pub async fn send_text(&mut self, text: impl Into<String>) {
        let text = text.into();
        if let Err(e) = self.try_send(Message::text(text.clone())).await {
            panic!("sending {}: {e}", preview(&text));
        }
    }

    pub async fn send_json(&mut self, v: &Value) {
        self.send_text(v.to_string()).await;
    }

    pub async fn send_binary(&mut self, bytes: Vec<u8>) {
        if let Err(e) = self.try_send(Message::binary(bytes)).await {
            panic!("sending a binary frame: {e}");
        }
    }

    /// Stamps a fresh `req_id` (unless the message has one) and sends; returns the req_id.
    pub async fn send_request(&mut self, mut msg: Value) -> Value {
        let obj = msg.as_object_mut().expect("a request is a JSON object");
        let req_id = match obj.get("req_id") {
            Some(id) => id.clone(),
            None => {
                self.next_req += 1;
                let id = json!(format!("r{}", self.next_req));
                obj.insert("req_id".into(), id.clone());
                id
            }
        };
        self.send_json(&msg).await;
        req_id
    }

    /// Sends and waits for the frame that echoes the req_id (the answer or an `error`).
    pub async fn request(&mut self, msg: Value) -> Value {
        let shown = preview(&msg.to_string());
        match self.request_timeout(msg, REPLY_TIMEOUT).await {
            Ok(v) => v,
            Err(e) => panic!("request {shown}: {e}"),
        }
    }

    pub async fn request_timeout(&mut self, msg: Value, timeout: Duration) -> Result<Value, String> {
        let req_id = self.send_request(msg).await;
        self.reply_to(&req_id, timeout).await
    }

    /// Waits for the frame whose `req_id` equals `req_id`; other frames stay buffered.
    pub async fn reply_to(&mut self, req_id: &Value, timeout: Duration) -> Result<Value, String> {
        let id = req_id.clone();
        match self.next_matching(move |v| v.get("req_id") == Some(&id), timeout).await {
            Ok(v) => Ok(v),
            Err(e) => Err(format!("no reply echoing req_id {req_id}: {e}")),
        }
    }

    /// Sends `msgs` with up to `window` in flight and returns their replies in the order of
    /// `msgs`. A `rate_limited` reply is retried after a pause (a polite client backs off).
    pub async fn request_many(&mut self, msgs: Vec<Value>, window: usize) -> Vec<Value> {
        let mut replies: Vec<Option<Value>> = vec![None; msgs.len()];
        let mut pending: VecDeque<(usize, Value)> = VecDeque::new();
        let mut next = 0;
        while next < msgs.len() || !pending.is_empty() {
            while next < msgs.len() && pending.len() < window {
                let id = self.send_request(msgs[next].clone()).await;
                pending.push_back((next, id));
                next += 1;
            }
            let (i, id) = pending.pop_front().unwrap();
            let reply = match self.reply_to(&id, REPLY_TIMEOUT).await {
                Ok(r) => r,
                Err(e) => panic!("request {}: {e}", preview(&msgs[i].to_string())),
            };
            if reply["type"] == "error" && reply["code"] == "rate_limited" {
                tokio::time::sleep(Duration::from_millis(50)).await;
                let id = self.send_request(msgs[i].clone()).await;
                pending.push_back((i, id));
                continue;
            }
            replies[i] = Some(reply);
        }
        replies.into_iter().map(Option::unwrap).collect()
    }

    /// `login`, asserting `logged_in` with the protocol's fields.
    pub async fn login(&mut self, token: &str) -> Value {
        let reply = self.request(json!({"type": "login", "token": token})).await;
        assert_eq!(reply["type"], "logged_in", "login failed: {reply}");
        check_fields(&reply, "logged_in", &[("participant", Kind::Str), ("roles", Kind::Arr), ("day", Kind::Day)]);
        self.participant = reply["participant"].as_str().map(str::to_string);
        reply
    }

    async fn read_frame(&mut self, deadline: tokio::time::Instant) -> Option<Frame> {
        if let Some(ended) = &self.ended {
            return Some(ended.clone());
        }
        match tokio::time::timeout_at(deadline, self.rx.recv()).await {
            Ok(Some(frame)) => {
                if matches!(frame, Frame::Close(..) | Frame::Ended(_)) {
                    self.ended = Some(frame.clone());
                }
                Some(frame)
            }
            Ok(None) => {
                let f = Frame::Ended("reader gone".into());
                self.ended = Some(f.clone());
                Some(f)
            }
            Err(_) => None,
        }
    }

    /// The next frame of any kind, buffered ones first.
    pub async fn next_frame(&mut self, timeout: Duration) -> Option<Frame> {
        if let Some(f) = self.buffer.pop_front() {
            return Some(f);
        }
        let deadline = tokio::time::Instant::now() + timeout;
        self.read_frame(deadline).await
    }

    /// The first JSON frame (buffered or new) for which `pred` holds; frames that don't match stay
    /// buffered in order. Fails on timeout or when the connection ends first.
    pub async fn next_matching(&mut self, pred: impl Fn(&Value) -> bool, timeout: Duration) -> Result<Value, String> {
        if let Some(i) = self.buffer.iter().position(|f| matches!(f, Frame::Json(v) if pred(v))) {
            if let Some(Frame::Json(v)) = self.buffer.remove(i) {
                return Ok(v);
            }
        }
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match self.read_frame(deadline).await {
                None => return Err(format!("timed out after {timeout:?}; buffered: {}", self.describe_buffer())),
                Some(Frame::Json(v)) if pred(&v) => return Ok(v),
                Some(f @ (Frame::Close(..) | Frame::Ended(_))) => {
                    return Err(format!("connection ended first: {f:?}; buffered: {}", self.describe_buffer()))
                }
                Some(f) => self.buffer.push_back(f),
            }
        }
    }

    pub async fn next_of_type(&mut self, ty: &str, timeout: Duration) -> Value {
        let t = ty.to_string();
        match self.next_matching(move |v| v["type"] == t.as_str(), timeout).await {
            Ok(v) => v,
            Err(e) => panic!("waiting for a `{ty}` frame: {e}"),
        }
    }

    pub async fn try_next_of_type(&mut self, ty: &str, timeout: Duration) -> Option<Value> {
        let t = ty.to_string();
        self.next_matching(move |v| v["type"] == t.as_str(), timeout).await.ok()
    }

    /// Reads until a close frame or the end; returns the close code (None: closed without code,
    /// or ended without a close frame — see `ended`). Panics if nothing ends within `timeout`.
    pub async fn expect_close(&mut self, timeout: Duration) -> Option<u16> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match self.read_frame(deadline).await {
                None => panic!("the connection was not closed within {timeout:?}"),
                Some(Frame::Close(code, _)) => return code,
                Some(Frame::Ended(_)) => return None,
                Some(f) => self.buffer.push_back(f),
            }
        }
    }

    /// Every frame already received, without waiting.
    pub fn drain_now(&mut self) -> Vec<Frame> {
        let mut out: Vec<Frame> = self.buffer.drain(..).collect();
        while let Ok(f) = self.rx.try_recv() {
            if matches!(f, Frame::Close(..) | Frame::Ended(_)) {
                self.ended = Some(f.clone());
            }
            out.push(f);
        }
        out
    }

    fn describe_buffer(&self) -> String {
        let items: Vec<String> = self.buffer.iter().take(8).map(|f| preview(&format!("{f:?}"))).collect();
        format!("[{}]{}", items.join(", "), if self.buffer.len() > 8 { " …" } else { "" })
    }

    pub async fn ping(&mut self) -> Value {
        let reply = self.request(json!({"type": "ping"})).await;
        assert_eq!(reply["type"], "pong", "ping: {reply}");
        assert_ts(&reply["ts"]);
        reply
    }

    pub async fn close(mut self) {
        let _ = self.sink.send(Message::Close(None)).await;
    }
}

/// Shortens a long frame for a panic message.
pub fn preview(s: &str) -> String {
    if s.len() <= 300 {
        return s.to_string();
    }
    let mut end = 300;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &s[..end], s.len())
}

/// A `/feed` subscriber: snapshot first, then events whose `seq` never skips.
pub struct Feed {
    pub client: Client,
    pub snapshot: Value,
    pub last_seq: u64,
    /// Every event read so far, in order.
    pub events: Vec<Value>,
}

impl Feed {
    pub async fn connect(addr: SocketAddr) -> Feed {
        let mut client = Client::connect(addr, "/feed").await;
        let first = client.next_frame(REPLY_TIMEOUT).await.expect("the feed sends a snapshot on connect");
        let Frame::Json(snapshot) = first else { panic!("the feed's first frame is not JSON: {first:?}") };
        assert_eq!(snapshot["type"], "snapshot", "the feed's first frame must be a snapshot: {snapshot}");
        check_snapshot(&snapshot);
        let last_seq = snapshot["seq"].as_u64().unwrap();
        Feed { client, snapshot, last_seq, events: Vec::new() }
    }

    /// `/feed?from_seq=N`: expects `resumed {from_seq: N}` first (not a snapshot); the events
    /// that follow are checked to start at `from_seq` and never skip.
    pub async fn resume(addr: SocketAddr, from_seq: u64) -> Feed {
        let mut client = Client::connect(addr, &format!("/feed?from_seq={from_seq}")).await;
        let first = client.next_frame(REPLY_TIMEOUT).await.expect("the feed answers a resume");
        let Frame::Json(resumed) = first else { panic!("the feed's first frame is not JSON: {first:?}") };
        assert_eq!(resumed["type"], "resumed", "a resume from seq {from_seq} must answer `resumed`: {resumed}");
        assert_eq!(resumed["from_seq"], from_seq, "{resumed}");
        Feed { client, snapshot: resumed, last_seq: from_seq - 1, events: Vec::new() }
    }

    /// The next event, checked for `seq` = previous + 1. None on timeout; panics on a gap or if
    /// the feed ends.
    pub async fn next_event(&mut self, timeout: Duration) -> Option<Value> {
        let frame = self.client.next_frame(timeout).await?;
        let v = match frame {
            Frame::Json(v) => v,
            other => panic!("the feed sent a non-event after seq {}: {other:?}", self.last_seq),
        };
        let seq = v["seq"].as_u64().unwrap_or_else(|| panic!("feed event without an integer seq: {v}"));
        assert_eq!(seq, self.last_seq + 1, "the feed skipped or repeated a seq (previous {}): {v}", self.last_seq);
        assert!(v["type"].is_string(), "feed event without a type: {v}");
        self.last_seq = seq;
        self.events.push(v.clone());
        Some(v)
    }

    pub async fn next_matching(&mut self, pred: impl Fn(&Value) -> bool, timeout: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let v = self.next_event(left).await?;
            if pred(&v) {
                return Some(v);
            }
        }
    }

    /// The first event from `events[from..]` on (already read or still to come) that matches.
    pub async fn first_since(
        &mut self,
        from: usize,
        pred: impl Fn(&Value) -> bool,
        timeout: Duration,
    ) -> Option<Value> {
        if let Some(v) = self.events.get(from..).unwrap_or_default().iter().find(|v| pred(v)) {
            return Some(v.clone());
        }
        self.next_matching(pred, timeout).await
    }

    pub async fn next_of_type(&mut self, ty: &str, timeout: Duration) -> Value {
        let t = ty.to_string();
        self.next_matching(move |v| v["type"] == t.as_str(), timeout)
            .await
            .unwrap_or_else(|| panic!("no `{ty}` event on the feed within {timeout:?} (last seq {})", self.last_seq))
    }

    /// Reads every event until the feed has been quiet for `quiet`.
    pub async fn drain_quiet(&mut self, quiet: Duration) -> Vec<Value> {
        let mut out = Vec::new();
        while let Some(v) = self.next_event(quiet).await {
            out.push(v);
        }
        out
    }

    /// Reads until `seq` has been seen (panics after `timeout`).
    pub async fn read_until_seq(&mut self, seq: u64, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        while self.last_seq < seq {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if self.next_event(left).await.is_none() {
                panic!("the feed did not reach seq {seq} within {timeout:?} (at {})", self.last_seq);
            }
        }
    }
}

/// A `/feed` subscriber that never reads after the handshake, with a small socket receive buffer
/// so that the server's side fills up soon.
pub struct StalledFeed {
    ws: Ws,
}

/// What a stalled subscriber finally finds when it reads.
#[derive(Debug)]
pub struct StalledOutcome {
    pub snapshot_seq: Option<u64>,
    pub events: Vec<Value>,
    pub close: Option<Frame>,
}

impl StalledFeed {
    pub async fn connect(addr: SocketAddr) -> StalledFeed {
        let ws = ws_connect(addr, "/feed", Some(4096)).await.unwrap_or_else(|e| panic!("{e}"));
        StalledFeed { ws }
    }

    /// Reads everything the server left for it until quiet for `quiet`, the close, or the end.
    pub async fn drain(mut self, quiet: Duration) -> StalledOutcome {
        let mut out = StalledOutcome { snapshot_seq: None, events: Vec::new(), close: None };
        loop {
            let msg = match tokio::time::timeout(quiet, self.ws.next()).await {
                Err(_) => return out,
                Ok(None) => {
                    out.close = Some(Frame::Ended("stream ended".into()));
                    return out;
                }
                Ok(Some(m)) => m,
            };
            match to_frame(msg) {
                None => {}
                Some(Frame::Json(v)) if v["type"] == "snapshot" && out.snapshot_seq.is_none() => {
                    out.snapshot_seq = v["seq"].as_u64();
                }
                Some(Frame::Json(v)) => out.events.push(v),
                Some(f) => {
                    out.close = Some(f);
                    return out;
                }
            }
        }
    }
}

// ───────────────────────────── wire types ─────────────────────────────

/// The wire type a field must have (protocol section 1).
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    /// A non-negative JSON integer (quantities, ids, counts).
    Int,
    /// A money or price string with exactly two decimals.
    Money,
    /// An integer number of microseconds since the epoch.
    Ts,
    /// `"YYYY-MM-DD"`.
    Day,
    Str,
    Bool,
    Arr,
    Obj,
    /// Null or a money string.
    MoneyOrNull,
    /// Null or an integer.
    IntOrNull,
    /// Present, any value.
    Any,
}

pub fn is_money(v: &Value) -> bool {
    let Some(s) = v.as_str() else { return false };
    let s = s.strip_prefix('-').unwrap_or(s);
    match s.split_once('.') {
        Some((int, frac)) => {
            !int.is_empty()
                && int.bytes().all(|b| b.is_ascii_digit())
                && frac.len() == 2
                && frac.bytes().all(|b| b.is_ascii_digit())
        }
        None => false,
    }
}

pub fn is_day(v: &Value) -> bool {
    let Some(s) = v.as_str() else { return false };
    let b = s.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter().enumerate().all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}

pub fn kind_ok(v: &Value, kind: Kind) -> bool {
    match kind {
        Kind::Int => v.is_u64(),
        Kind::Money => is_money(v),
        // Microseconds since 2001 at least: catches milliseconds or seconds by mistake.
        Kind::Ts => v.as_i64().is_some_and(|t| t > 1_000_000_000_000_000),
        Kind::Day => is_day(v),
        Kind::Str => v.is_string(),
        Kind::Bool => v.is_boolean(),
        Kind::Arr => v.is_array(),
        Kind::Obj => v.is_object(),
        Kind::MoneyOrNull => v.is_null() || is_money(v),
        Kind::IntOrNull => v.is_null() || v.is_u64(),
        Kind::Any => true,
    }
}

/// Asserts `v` is a `ty` message carrying each field with its wire kind.
pub fn check_fields(v: &Value, ty: &str, fields: &[(&str, Kind)]) {
    assert_eq!(v["type"], ty, "expected a `{ty}` message, got {v}");
    check_object(v, ty, fields);
}

/// Asserts an object (a message or a nested one) has each field with its wire kind.
pub fn check_object(v: &Value, what: &str, fields: &[(&str, Kind)]) {
    let obj = v.as_object().unwrap_or_else(|| panic!("{what} is not an object: {v}"));
    for (name, kind) in fields {
        let field = obj.get(*name).unwrap_or_else(|| panic!("{what} lacks field `{name}`: {v}"));
        assert!(kind_ok(field, *kind), "{what}.{name} must be {kind:?}, got {field} in {v}");
    }
}

pub fn assert_ts(v: &Value) {
    assert!(kind_ok(v, Kind::Ts), "ts must be integer microseconds since the epoch, got {v}");
}

pub fn assert_day(v: &Value) {
    assert!(is_day(v), "day must be \"YYYY-MM-DD\", got {v}");
}

/// The fields of a `lot` object (protocol section 5).
pub const LOT_FIELDS: &[(&str, Kind)] = &[
    ("lot_id", Kind::Int),
    ("grower", Kind::Str),
    ("product", Kind::Str),
    ("grade", Kind::Str),
    ("units_per_container", Kind::Int),
    ("containers", Kind::Int),
    ("remaining", Kind::Int),
    ("min_purchase", Kind::Int),
    ("origin", Kind::Any),
    ("photo_url", Kind::Any),
    ("note", Kind::Any),
    ("status", Kind::Str),
    ("day", Kind::Day),
    // v1.1: master data, the plan's place and price, the sales so far, the presale offer, qi.
    ("variety", Kind::Any),
    ("stem_length_cm", Kind::Any),
    ("maturity", Kind::Any),
    ("packaging", Kind::Any),
    ("base", Kind::Any),
    ("batch", Kind::Any),
    ("harvest_day", Kind::Any),
    ("clock", Kind::Any),
    ("position", Kind::Any),
    ("start_price", Kind::MoneyOrNull),
    ("sold", Kind::Int),
    ("unsold", Kind::Int),
    ("presale", Kind::Any),
    ("qi", Kind::Any),
];

pub const LOT_STATUSES: &[&str] = &["consigned", "queued", "on_clock", "sold", "partly_sold", "unsold", "withdrawn"];

pub fn check_lot(lot: &Value) {
    check_object(lot, "lot", LOT_FIELDS);
    let status = lot["status"].as_str().unwrap();
    assert!(LOT_STATUSES.contains(&status), "unknown lot status in {lot}");
    let grade = lot["grade"].as_str().unwrap();
    assert!(!grade.is_empty() && grade.len() <= 8, "a grade is a short code: {lot}");
    let count = |field: &str| lot[field].as_u64().unwrap();
    assert_eq!(count("sold") + count("remaining") + count("unsold"), count("containers"), "containers lost: {lot}");
    if !lot["presale"].is_null() {
        assert!(is_money(&lot["presale"]["price"]), "presale.price: {lot}");
        assert!(lot["presale"]["containers"].as_u64() <= lot["remaining"].as_u64(), "offer over remaining: {lot}");
    }
}

pub const ACCOUNT_FIELDS: &[(&str, Kind)] = &[
    ("participant", Kind::Str),
    ("credit_limit", Kind::Money),
    ("exposure", Kind::Money),
    ("available", Kind::Money),
    ("bought", Kind::Money),
    ("sold", Kind::Money),
    ("fees", Kind::Money),
];

pub const ORDER_ACCEPTED_FIELDS: &[(&str, Kind)] = &[
    ("order_id", Kind::Any),
    ("client_order_id", Kind::Str),
    ("symbol", Kind::Str),
    ("side", Kind::Str),
    ("order_type", Kind::Str),
    ("price", Kind::MoneyOrNull),
    ("quantity", Kind::Int),
    ("time_in_force", Kind::Str),
    ("post_only", Kind::Bool),
    ("ts", Kind::Ts),
];

pub const FILL_FIELDS: &[(&str, Kind)] = &[
    ("order_id", Kind::Any),
    ("client_order_id", Kind::Str),
    ("trade_id", Kind::Any),
    ("symbol", Kind::Str),
    ("side", Kind::Str),
    ("price", Kind::Money),
    ("quantity", Kind::Int),
    ("leaves", Kind::Int),
    ("liquidity", Kind::Str),
    ("ts", Kind::Ts),
];

pub const ORDER_DONE_FIELDS: &[(&str, Kind)] =
    &[("order_id", Kind::Any), ("client_order_id", Kind::Str), ("reason", Kind::Str), ("ts", Kind::Ts)];

pub const AWARD_FIELDS: &[(&str, Kind)] = &[
    ("clock", Kind::Int),
    ("lot_id", Kind::Int),
    ("round", Kind::Int),
    ("price", Kind::Money),
    ("containers", Kind::Int),
    ("units", Kind::Int),
    ("amount", Kind::Money),
    ("fee", Kind::Money),
    ("ts", Kind::Ts),
];

pub const LOT_SALE_FIELDS: &[(&str, Kind)] = &[
    ("lot_id", Kind::Int),
    ("buyer", Kind::Str),
    ("price", Kind::Money),
    ("containers", Kind::Int),
    ("amount", Kind::Money),
    ("commission", Kind::Money),
    ("ts", Kind::Ts),
];

pub const CLOCK_STARTED_FIELDS: &[(&str, Kind)] = &[
    ("seq", Kind::Int),
    ("clock", Kind::Int),
    ("lot_id", Kind::Int),
    ("round", Kind::Int),
    ("start_price", Kind::Money),
    ("step", Kind::Money),
    ("tick_ms", Kind::Int),
    ("start_ts", Kind::Ts),
    ("remaining", Kind::Int),
];

/// Checks the `snapshot` shape of protocol section 9.
pub fn check_snapshot(s: &Value) {
    check_fields(
        s,
        "snapshot",
        &[("seq", Kind::Int), ("day", Kind::Day), ("clocks", Kind::Arr), ("books", Kind::Arr), ("index", Kind::Obj)],
    );
    for c in s["clocks"].as_array().unwrap() {
        check_object(
            c,
            "snapshot clock",
            &[
                ("clock", Kind::Int),
                ("state", Kind::Str),
                ("lot", Kind::Any),
                ("round", Kind::IntOrNull),
                ("start_price", Kind::MoneyOrNull),
                ("step", Kind::MoneyOrNull),
                ("tick_ms", Kind::IntOrNull),
                ("start_ts", Kind::Any),
                ("remaining", Kind::IntOrNull),
            ],
        );
        assert!(["idle", "pre_roll", "running", "pause"].contains(&c["state"].as_str().unwrap()), "clock state: {c}");
    }
    for b in s["books"].as_array().unwrap() {
        check_object(
            b,
            "snapshot book",
            &[("symbol", Kind::Str), ("state", Kind::Str), ("bids", Kind::Arr), ("asks", Kind::Arr)],
        );
        for level in b["bids"].as_array().unwrap().iter().chain(b["asks"].as_array().unwrap()) {
            let l = level.as_array().unwrap_or_else(|| panic!("a book level is [price, quantity]: {b}"));
            assert!(l.len() == 2 && is_money(&l[0]) && l[1].is_u64(), "a book level is [price, quantity]: {b}");
        }
    }
}

/// Asserts `reply` is an `error` with `code`, a non-empty message, echoing `req_id` if given.
pub fn assert_error(reply: &Value, code: &str) {
    assert_eq!(reply["type"], "error", "expected error `{code}`, got {reply}");
    assert_eq!(reply["code"], code, "expected error code `{code}`, got {reply}");
    let msg = reply["message"].as_str().unwrap_or("");
    assert!(!msg.trim().is_empty(), "an error's message must be non-empty: {reply}");
}

// ───────────────────────────── money ─────────────────────────────

/// A money string's value in fen (panics unless it has the protocol's form).
pub fn fen(v: &Value) -> i64 {
    assert!(is_money(v), "money must be a decimal string with two decimals, got {v}");
    let s = v.as_str().unwrap();
    let neg = s.starts_with('-');
    let (int, frac) = s.trim_start_matches('-').split_once('.').unwrap();
    let value = int.parse::<i64>().unwrap() * 100 + frac.parse::<i64>().unwrap();
    if neg {
        -value
    } else {
        value
    }
}

/// Fen as the protocol's decimal string.
pub fn money(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    format!("{sign}{}.{:02}", fen.abs() / 100, fen.abs() % 100)
}

/// `num / den` rounded half to even (den > 0).
pub fn div_half_even(num: i128, den: i128) -> i128 {
    assert!(den > 0);
    let q = num.div_euclid(den);
    let r = num.rem_euclid(den);
    match (2 * r).cmp(&den) {
        std::cmp::Ordering::Less => q,
        std::cmp::Ordering::Greater => q + 1,
        std::cmp::Ordering::Equal => {
            if q % 2 == 0 {
                q
            } else {
                q + 1
            }
        }
    }
}

/// `amount × pct / 100`, half-even, in fen.
pub fn percent_half_even(amount_fen: i64, pct_num: i64, pct_den: i64) -> i64 {
    div_half_even(amount_fen as i128 * pct_num as i128, 100 * pct_den as i128) as i64
}

/// The grower commission: 5 % of the sale amount, half-even.
pub fn commission(amount_fen: i64) -> i64 {
    percent_half_even(amount_fen, 5, 1)
}

/// The buyer fee on the book: 0.1 % of the amount, half-even.
pub fn book_fee(amount_fen: i64) -> i64 {
    percent_half_even(amount_fen, 1, 10)
}

/// The buyer fee at the clock: 0.50 per container.
pub fn clock_fee(containers: u64) -> i64 {
    50 * containers as i64
}

/// `price(t) = start_price − step × floor((t − start_ts) / tick_ms)`, t and start_ts in µs.
pub fn clock_price(start_price: i64, step: i64, tick_ms: i64, start_ts: i64, t: i64) -> i64 {
    start_price - step * (t - start_ts).div_euclid(tick_ms * 1000)
}

/// `price(ts)` of the round a `clock_started` event published.
pub fn round_price(round: &Value, ts: i64) -> i64 {
    let int = |field: &str| round[field].as_i64().unwrap_or_else(|| panic!("clock_started.{field}: {round}"));
    clock_price(fen(&round["start_price"]), fen(&round["step"]), int("tick_ms"), int("start_ts"), ts)
}

// ───────────────────────────── small conveniences ─────────────────────────────

/// Registers a participant; returns its token.
pub async fn register(op: &mut Client, id: &str, roles: &[&str], credit_limit: Option<&str>) -> String {
    let mut msg = json!({"type": "register_participant", "id": id, "name": format!("{id} Ltd."), "roles": roles});
    if let Some(limit) = credit_limit {
        msg["credit_limit"] = json!(limit);
    }
    let reply = op.request(msg).await;
    check_fields(&reply, "participant_registered", &[("id", Kind::Str), ("token", Kind::Str)]);
    assert_eq!(reply["id"], id, "participant_registered.id: {reply}");
    let token = reply["token"].as_str().unwrap().to_string();
    assert!(!token.is_empty(), "empty token: {reply}");
    token
}

/// Fast clock settings for tests; `pre_roll_ms` and `pause_ms` short.
pub async fn configure_fast_clock(op: &mut Client, clock: u64) -> Value {
    let reply = op
        .request(json!({"type": "configure_clock", "clock": clock, "step": "0.01", "tick_ms": 10,
                        "pre_roll_ms": 50, "pause_ms": 50, "restart_ticks": 10, "multi_buy_ms": 0}))
        .await;
    check_fields(
        &reply,
        "clock_configured",
        &[
            ("clock", Kind::Int),
            ("step", Kind::Money),
            ("tick_ms", Kind::Int),
            ("pre_roll_ms", Kind::Int),
            ("pause_ms", Kind::Int),
            ("restart_ticks", Kind::Int),
            ("multi_buy_ms", Kind::Int),
        ],
    );
    reply
}

/// A consignment message with sensible defaults; override fields on the returned value.
pub fn lot_msg(product: &str, grade: &str, units_per_container: u64, containers: u64, min_price: &str) -> Value {
    json!({"type": "consign_lot", "product": product, "grade": grade, "units_per_container": units_per_container,
           "containers": containers, "min_price": min_price})
}

/// Consigns and returns the `lot` object of `lot_consigned`.
pub async fn consign(grower: &mut Client, msg: Value) -> Value {
    let reply = grower.request(msg).await;
    check_fields(&reply, "lot_consigned", &[("lot", Kind::Obj)]);
    check_lot(&reply["lot"]);
    reply["lot"].clone()
}

pub async fn get_account(c: &mut Client) -> Value {
    let reply = c.request(json!({"type": "get_account"})).await;
    check_fields(&reply, "account", ACCOUNT_FIELDS);
    let a = &reply;
    assert_eq!(
        fen(&a["available"]),
        fen(&a["credit_limit"]) - fen(&a["exposure"]),
        "available = credit_limit − exposure: {a}"
    );
    reply
}

pub async fn get_lots(c: &mut Client) -> Vec<Value> {
    let reply = c.request(json!({"type": "get_lots"})).await;
    check_fields(&reply, "lots", &[("lots", Kind::Arr)]);
    let lots = reply["lots"].as_array().unwrap().clone();
    for lot in &lots {
        check_lot(lot);
    }
    lots
}

pub async fn get_orders(c: &mut Client) -> Vec<Value> {
    let reply = c.request(json!({"type": "get_orders"})).await;
    check_fields(&reply, "orders", &[("orders", Kind::Arr)]);
    reply["orders"].as_array().unwrap().clone()
}

/// A stable textual form of a JSON value (object keys sorted), for before/after comparisons.
pub fn canonical(v: &Value) -> String {
    fn sort(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                let mut out = Map::new();
                for k in keys {
                    out.insert(k.clone(), sort(&m[k]));
                }
                Value::Object(out)
            }
            Value::Array(a) => Value::Array(a.iter().map(sort).collect()),
            other => other.clone(),
        }
    }
    sort(v).to_string()
}

/// `v` without `req_id` (and `ts`), for comparing two answers to the same question.
pub fn strip_volatile(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(o) = v.as_object_mut() {
        o.remove("req_id");
        o.remove("ts");
    }
    v
}

/// Writes a note to stderr (shown by `cargo test -- --nocapture`, and with failures).
pub fn note(msg: impl AsRef<str>) {
    let mut err = std::io::stderr();
    let _ = writeln!(err, "[e2e] {}", msg.as_ref());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_helpers_round_half_even() {
        assert_eq!(commission(210), 10); // 0.105 → 0.10
        assert_eq!(commission(230), 12); // 0.115 → 0.12
        assert_eq!(commission(2050), 102); // 1.025 → 1.02
        assert_eq!(book_fee(2050), 2);
        assert_eq!(book_fee(16000), 16);
        assert_eq!(money(-5), "-0.05");
        assert_eq!(fen(&json!("12.34")), 1234);
        assert!(!is_money(&json!("1.2")) && !is_money(&json!(1.25)) && is_money(&json!("0.00")));
        assert_eq!(clock_price(500, 1, 10, 1_000_000, 1_000_000 + 25_000), 498);
    }

    #[test]
    fn listening_line_parses() {
        let (addr, day) =
            parse_listening_line("huashi listening on http://127.0.0.1:4242 day 2026-11-29 data /tmp/x").unwrap();
        assert_eq!(addr.port(), 4242);
        assert_eq!(day, "2026-11-29");
    }
}
