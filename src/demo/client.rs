//! The demo's protocol clients, written as any outside client would be (protocol.md only):
//!
//! - [`Session`]: one `/ws` trading session. `request` stamps an integer `req_id`, paces itself
//!   under the gateway's rate limit, and waits for the frame that echoes it; every frame without
//!   a `req_id` (awards won by standing bids, fills, dropped standing bids) goes to [`Reports`].
//! - [`run_feed`]: one `/feed` subscriber that checks `seq` never skips, republishes every event
//!   to the simulation over a broadcast channel, and resubscribes after a gap.
//! - [`http_get`]: a plain `GET` for `/api/*`.

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

/// How long a reply may take before the request counts as lost.
const REPLY_TIMEOUT: Duration = Duration::from_secs(15);
/// The gateway allows 100 messages a second with a burst of 200 per session (docs/gateway.md);
/// the demo stays well under it so it never collects strikes.
const PACE_PER_SECOND: f64 = 60.0;
const PACE_BURST: f64 = 60.0;
/// How often a request answered `rate_limited` or "engine busy" is tried again.
const RETRIES_MAX: u32 = 5;
/// Frames queued for the socket writer of one session.
const OUTBOX_MAX: usize = 256;

/// An `error` reply, or a request that got no reply at all.
#[derive(Clone, Debug)]
pub struct Rejected {
    pub code: String,
    pub message: String,
}

impl Rejected {
    fn local(code: &str, message: impl Into<String>) -> Rejected {
        Rejected { code: code.to_string(), message: message.into() }
    }

    pub fn is(&self, code: &str) -> bool {
        self.code == code
    }
}

impl std::fmt::Display for Rejected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

/// Frames the server sent without a `req_id`: private reports.
pub type Reports = mpsc::UnboundedReceiver<Value>;

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Value>>>>;

/// A token bucket on the sending side.
struct Pace {
    tokens: f64,
    at: Instant,
}

impl Pace {
    async fn wait(&mut self) {
        loop {
            let now = Instant::now();
            let earned = now.duration_since(self.at).as_secs_f64() * PACE_PER_SECOND;
            self.tokens = (self.tokens + earned).min(PACE_BURST);
            self.at = now;
            if self.tokens >= 1.0 {
                self.tokens -= 1.0;
                return;
            }
            let missing = (1.0 - self.tokens) / PACE_PER_SECOND;
            tokio::time::sleep(Duration::from_secs_f64(missing)).await;
        }
    }
}

/// A logged-in `/ws` session. Cheap to share behind an `Arc`: requests from several tasks
/// interleave, each waits for its own reply.
pub struct Session {
    /// Who this is (participant id), for the log.
    pub who: String,
    outbox: mpsc::Sender<Message>,
    pending: Pending,
    next_req: AtomicU64,
    pace: tokio::sync::Mutex<Pace>,
}

impl Session {
    /// Connects to `/ws` and logs in with `token`; returns the session, the `logged_in` reply
    /// and the stream of private reports.
    pub async fn login(addr: SocketAddr, token: &str, who: &str) -> anyhow::Result<(Arc<Session>, Value, Reports)> {
        let ws = connect(addr, "/ws").await?;
        let (mut sink, mut stream) = ws.split();
        let (outbox, mut outgoing) = mpsc::channel::<Message>(OUTBOX_MAX);
        tokio::spawn(async move {
            while let Some(message) = outgoing.recv().await {
                if sink.send(message).await.is_err() {
                    return;
                }
            }
            let _ = sink.close().await;
        });
        let pending: Pending = Arc::default();
        let (reports_tx, reports) = mpsc::unbounded_channel();
        let reader_pending = pending.clone();
        let reader_who = who.to_string();
        tokio::spawn(async move {
            while let Some(frame) = stream.next().await {
                let text = match frame {
                    Ok(Message::Text(text)) => text,
                    Ok(Message::Close(close)) => {
                        if let Some(close) = close.filter(|c| u16::from(c.code) != 1001) {
                            tracing::warn!(who = %reader_who, code = u16::from(close.code), reason = %close.reason, "session closed by the server");
                        }
                        break;
                    }
                    Ok(_) => continue,
                    Err(_) => break,
                };
                let Ok(value) = serde_json::from_str::<Value>(text.as_str()) else {
                    tracing::warn!(who = %reader_who, frame = %text.as_str(), "the server sent a frame that is not JSON");
                    continue;
                };
                let waiter =
                    value.get("req_id").and_then(Value::as_u64).and_then(|id| lock(&reader_pending).remove(&id));
                match waiter {
                    Some(waiter) => {
                        let _ = waiter.send(value);
                    }
                    None => {
                        let _ = reports_tx.send(value);
                    }
                }
            }
            // Dropping the waiters tells every open request the session is gone.
            lock(&reader_pending).clear();
        });
        let session = Arc::new(Session {
            who: who.to_string(),
            outbox,
            pending,
            next_req: AtomicU64::new(0),
            pace: tokio::sync::Mutex::new(Pace { tokens: PACE_BURST, at: Instant::now() }),
        });
        let reply = session
            .request(serde_json::json!({"type": "login", "token": token}))
            .await
            .map_err(|rejected| anyhow::anyhow!("{who} cannot log in: {rejected}"))?;
        if reply["type"] != "logged_in" {
            anyhow::bail!("{who} cannot log in: unexpected reply {reply}");
        }
        Ok((session, reply, reports))
    }

    /// Sends a request and waits for its reply; an `error` reply is `Err`. Retries what the
    /// gateway asks to retry (`rate_limited`, "engine busy").
    pub async fn request(&self, msg: Value) -> Result<Value, Rejected> {
        let mut attempt = 0;
        loop {
            let result = self.request_once(msg.clone()).await;
            match &result {
                Err(rejected) if attempt < RETRIES_MAX && retryable(rejected) => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(100 << attempt.min(4))).await;
                }
                _ => return result,
            }
        }
    }

    async fn request_once(&self, mut msg: Value) -> Result<Value, Rejected> {
        self.pace.lock().await.wait().await;
        let id = self.next_req.fetch_add(1, Ordering::Relaxed) + 1;
        msg["req_id"] = Value::from(id);
        let (tx, rx) = oneshot::channel();
        lock(&self.pending).insert(id, tx);
        if self.outbox.send(Message::text(msg.to_string())).await.is_err() {
            lock(&self.pending).remove(&id);
            return Err(Rejected::local("closed", "the session is closed"));
        }
        match tokio::time::timeout(REPLY_TIMEOUT, rx).await {
            Ok(Ok(reply)) if reply["type"] == "error" => Err(Rejected {
                code: reply["code"].as_str().unwrap_or("?").to_string(),
                message: reply["message"].as_str().unwrap_or("").to_string(),
            }),
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(_)) => Err(Rejected::local("closed", "the session closed before the reply")),
            Err(_) => {
                lock(&self.pending).remove(&id);
                Err(Rejected::local("timeout", format!("no reply within {REPLY_TIMEOUT:?}")))
            }
        }
    }

    /// A request whose failure would be a surprise: an error is logged with the request (no
    /// message the demo sends this way carries a token) and returned as `None`. A reply of
    /// another type than `want` is logged too.
    pub async fn expect(&self, msg: Value, want: &str) -> Option<Value> {
        match self.request(msg.clone()).await {
            Ok(reply) if reply["type"] == want => Some(reply),
            Ok(reply) => {
                tracing::warn!(who = %self.who, request = %msg, reply = %reply, "unexpected reply (wanted {want})");
                None
            }
            Err(rejected) => {
                unexpected(&self.who, &msg, &rejected);
                None
            }
        }
    }

    /// Says goodbye (a close frame), so the server ends the session at once.
    pub async fn close(&self) {
        let _ = self.outbox.send(Message::Close(None)).await;
    }
}

/// Logs an error reply the demo did not expect, with the request that caused it.
pub fn unexpected(who: &str, request: &Value, rejected: &Rejected) {
    if rejected.is("closed") {
        // The server is going away (Ctrl-C): not news.
        tracing::debug!(who, request = %request, error = %rejected, "request not answered: session closed");
        return;
    }
    tracing::warn!(who, request = %request, code = %rejected.code, message = %rejected.message, "unexpected error");
}

fn retryable(rejected: &Rejected) -> bool {
    rejected.is("rate_limited") || (rejected.is("internal") && rejected.message.contains("busy"))
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

type Ws = tokio_tungstenite::WebSocketStream<TcpStream>;

async fn connect(addr: SocketAddr, path: &str) -> anyhow::Result<Ws> {
    let tcp = TcpStream::connect(addr).await.map_err(|e| anyhow::anyhow!("cannot connect to {addr}: {e}"))?;
    tcp.set_nodelay(true)?;
    let url = format!("ws://{addr}{path}");
    let (ws, _) = tokio_tungstenite::client_async(url, tcp)
        .await
        .map_err(|e| anyhow::anyhow!("WebSocket handshake on {path}: {e}"))?;
    Ok(ws)
}

/// Reads `/feed` until `stop` turns true, republishing every frame (the `snapshot` too, so
/// listeners can resynchronise) to `events`. A gap in `seq` or a dropped connection means a
/// fresh subscription and a fresh snapshot.
pub async fn run_feed(addr: SocketAddr, events: broadcast::Sender<Arc<Value>>, mut stop: watch::Receiver<bool>) {
    loop {
        if *stop.borrow() {
            return;
        }
        let ended = tokio::select! {
            _ = stop.changed() => return,
            ended = follow_feed(addr, &events) => ended,
        };
        if *stop.borrow() {
            return;
        }
        tracing::warn!(reason = %ended, "the feed subscription ended; subscribing again");
        tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
    }
}

/// One subscription; returns why it ended.
async fn follow_feed(addr: SocketAddr, events: &broadcast::Sender<Arc<Value>>) -> String {
    let mut ws = match connect(addr, "/feed").await {
        Ok(ws) => ws,
        Err(error) => return error.to_string(),
    };
    let mut last_seq: Option<u64> = None;
    while let Some(frame) = ws.next().await {
        let text = match frame {
            Ok(Message::Text(text)) => text,
            Ok(Message::Close(close)) => return format!("closed: {close:?}"),
            Ok(_) => continue,
            Err(error) => return error.to_string(),
        };
        let Ok(event) = serde_json::from_str::<Value>(text.as_str()) else {
            return format!("a frame that is not JSON: {}", text.as_str());
        };
        let Some(seq) = event["seq"].as_u64() else {
            return format!("a frame without seq: {event}");
        };
        if let Some(last) = last_seq {
            if event["type"] != "snapshot" && seq != last + 1 {
                return format!("seq went from {last} to {seq}");
            }
        }
        last_seq = Some(seq);
        // Nobody listening is fine (the simulation may be between mornings).
        let _ = events.send(Arc::new(event));
    }
    "the connection ended".to_string()
}

/// `GET path` over a fresh connection: the status and the body.
pub async fn http_get(addr: SocketAddr, path: &str) -> anyhow::Result<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let fetch = async {
        let mut stream = TcpStream::connect(addr).await?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await?;
        anyhow::Ok(raw)
    };
    let raw =
        tokio::time::timeout(REPLY_TIMEOUT, fetch).await.map_err(|_| anyhow::anyhow!("GET {path} timed out"))??;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(|| anyhow::anyhow!("GET {path}: no HTTP header"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| anyhow::anyhow!("GET {path}: no status"))?;
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    let body = if chunked { dechunk(body) } else { body.to_string() };
    Ok((status, body))
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else { break };
        if n == 0 || after.len() < n {
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].trim_start_matches("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_bodies_are_joined() {
        assert_eq!(dechunk("4\r\nabcd\r\n3\r\nefg\r\n0\r\n\r\n"), "abcdefg");
    }
}
