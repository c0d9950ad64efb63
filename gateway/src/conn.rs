//! What `/ws` sessions and `/feed` subscribers share about their WebSocket: bounded writes, how a
//! connection ends, and the close codes (1001 going away, 1008 policy, 1009 too big).

use crate::metrics::Metrics;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures_util::SinkExt;
use std::future::Future;
use std::sync::atomic::Ordering;
use std::time::Duration;

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
