//! What `/ws` sessions and `/feed` subscribers share about their WebSocket: bounded writes, how a
//! connection ends, and the close codes (1001 going away, 1008 policy, 1009 too big).

use crate::metrics::Metrics;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures_util::SinkExt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// How a connection ends.
#[derive(Debug, PartialEq, Eq)]
pub enum End {
    /// The peer closed or vanished: nothing more to say.
    Gone,
    /// Close with this code and reason.
    Close(u16, &'static str),
    /// A write did not complete in time: drop the socket without a goodbye.
    Stuck,
}

pub const GOING_AWAY: End = End::Close(1001, "server shutting down");
pub const SLOW_CONSUMER: End = End::Close(1008, "slow consumer");
pub const TOO_MANY_STRIKES: End = End::Close(1008, "too many bad or excess messages");
pub const LOGIN_TIMEOUT: End = End::Close(1008, "login timeout");
pub const TOO_LARGE: End = End::Close(1009, "frame too large");
pub const IDLE_TIMEOUT: End = End::Close(1008, "idle timeout");

/// How long a closing handshake may take before the socket is simply dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// Whether a read failed because a frame or message was over `frame_bytes_max`.
pub fn is_too_large(error: axum::Error) -> bool {
    let inner = error.into_inner();
    matches!(inner.downcast_ref::<tungstenite::Error>(), Some(tungstenite::Error::Capacity(_)))
}

/// Runs a write (a batch of `feed`s and its `flush`) under one deadline: one timer per batch,
/// not per frame.
pub async fn within<T>(timeout: Duration, write: impl Future<Output = Result<T, End>>) -> Result<T, End> {
    tokio::time::timeout(timeout, write).await.unwrap_or(Err(End::Stuck))
}

/// Queues a text frame (no flush).
pub async fn feed(socket: &mut WebSocket, text: Utf8Bytes) -> Result<(), End> {
    socket.feed(Message::Text(text)).await.map_err(|_| End::Gone)
}

pub async fn flush(socket: &mut WebSocket) -> Result<(), End> {
    socket.flush().await.map_err(|_| End::Gone)
}

/// Writes one text frame now, giving up after `timeout`.
pub async fn send(socket: &mut WebSocket, text: Utf8Bytes, timeout: Duration) -> Result<(), End> {
    within(timeout, async {
        feed(socket, text).await?;
        flush(socket).await
    })
    .await
}

/// Whether the peer is alive: it must send something (a message, a ping, a pong) within
/// `idle_timeout`; after `ping_interval` of silence it is pinged, so a live peer whose
/// WebSocket library answers pings (all do) is never closed for listening quietly. The timer is
/// not reset per frame (a busy session would pay for it per message): `heard` only records the
/// time, and the timer, when it fires, looks at it.
pub struct Liveness {
    heard: Instant,
    ping_interval: Duration,
    idle_timeout: Duration,
    timer: Pin<Box<Sleep>>,
}

/// What a quiet peer is due.
#[derive(Debug, PartialEq, Eq)]
pub enum Due {
    Ping,
    Close,
}

impl Liveness {
    pub fn new(ping_interval: Duration, idle_timeout: Duration) -> Liveness {
        let now = Instant::now();
        Liveness {
            heard: now,
            ping_interval,
            idle_timeout,
            timer: Box::pin(tokio::time::sleep_until(now + ping_interval)),
        }
    }

    /// The peer sent a frame.
    pub fn heard(&mut self) {
        self.heard = Instant::now();
    }

    /// Resolves when the peer is to be pinged or closed. Cancel-safe: nothing changes between
    /// the timer firing and the return.
    pub async fn due(&mut self) -> Due {
        loop {
            self.timer.as_mut().await;
            let now = Instant::now();
            let give_up = self.heard + self.idle_timeout;
            if now >= give_up {
                return Due::Close;
            }
            let ping_at = self.heard + self.ping_interval;
            if now >= ping_at {
                self.timer.as_mut().reset((now + self.ping_interval).min(give_up));
                return Due::Ping;
            }
            // Heard from since the timer was set: look again when the silence is long enough.
            self.timer.as_mut().reset(ping_at);
        }
    }
}

/// Sends a ping (a quiet peer's proof of life is its pong), giving up after `timeout`.
pub async fn ping(socket: &mut WebSocket, timeout: Duration) -> Result<(), End> {
    within(timeout, async { socket.send(Message::Ping(Default::default())).await.map_err(|_| End::Gone) }).await
}

/// Ends the connection as `end` says, counting server-side closes.
pub async fn finish(socket: &mut WebSocket, end: End, metrics: &Metrics) {
    if end == TOO_LARGE {
        metrics.oversize_closes.fetch_add(1, Ordering::Relaxed);
    } else if end == TOO_MANY_STRIKES {
        metrics.strike_closes.fetch_add(1, Ordering::Relaxed);
    }
    let End::Close(code, reason) = end else { return };
    let frame = CloseFrame { code, reason: Utf8Bytes::from_static(reason) };
    let _ = tokio::time::timeout(CLOSE_GRACE, async {
        if socket.send(Message::Close(Some(frame))).await.is_err() {
            return;
        }
        // Wait for the peer's close (or anything else) so the handshake completes.
        while let Some(Ok(message)) = socket.recv().await {
            if matches!(message, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
}

/// A socket whose writes fail (`TimedOut`) once one has waited `timeout` for the peer to take
/// data: plain HTTP responses get the same write deadline as WebSocket writes, so a client that
/// sends requests and never reads the answers cannot hold a connection forever. The timer
/// exists only while a write is blocked; a write that completes costs nothing more.
pub struct WriteDeadline<T> {
    inner: T,
    timeout: Duration,
    blocked: Option<Pin<Box<Sleep>>>,
}

impl<T> WriteDeadline<T> {
    pub fn new(inner: T, timeout: Duration) -> WriteDeadline<T> {
        WriteDeadline { inner, timeout, blocked: None }
    }

    /// What a write that returned `poll` means, given how long writes have been blocked.
    fn check<R>(&mut self, cx: &mut Context<'_>, poll: Poll<std::io::Result<R>>) -> Poll<std::io::Result<R>> {
        if poll.is_ready() {
            self.blocked = None;
            return poll;
        }
        let timeout = self.timeout;
        let blocked = self.blocked.get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        match blocked.as_mut().poll(cx) {
            Poll::Ready(()) => {
                Poll::Ready(Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "the peer takes no data")))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for WriteDeadline<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for WriteDeadline<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.check(cx, poll)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.check(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_flush(cx);
        self.check(cx, poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.check(cx, poll)
    }
}
