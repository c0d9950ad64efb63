//! A `/feed` subscriber: the fan-out registers it and hands back a snapshot and a receiver of
//! every later public event (protocol section 9). Events are written in batches, one flush each.
//! A subscriber that falls more than `feed_backlog_max` events behind, or whose socket does not
//! take a write within `write_timeout`, is closed (1008 "slow consumer"): the broadcast ring
//! never waits for it, so it costs the engine and the other subscribers nothing. Whatever a
//! subscriber sends is read and ignored.

use crate::conn::{self, End, GOING_AWAY, SLOW_CONSUMER, TOO_LARGE};
use crate::fanout::Control;
use crate::server::Shared;
use axum::extract::ws::{Message, Utf8Bytes, WebSocket};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::{broadcast, oneshot, OwnedSemaphorePermit};

/// Events written before one flush.
const WRITE_BATCH_MAX: usize = 256;

pub async fn serve(mut socket: WebSocket, shared: Arc<Shared>, permit: OwnedSemaphorePermit) {
    let _permit = permit;
    shared.metrics.feed_subscribers.fetch_add(1, Ordering::Relaxed);
    let end = run(&mut socket, &shared).await;
    if end == SLOW_CONSUMER || end == End::Stuck {
        shared.metrics.slow_feed_closes.fetch_add(1, Ordering::Relaxed);
    }
    conn::finish(&mut socket, end, &shared.metrics).await;
    shared.metrics.feed_subscribers.fetch_sub(1, Ordering::Relaxed);
}

async fn run(socket: &mut WebSocket, shared: &Shared) -> End {
    let mut shutdown = shared.shutdown.clone();
    if *shutdown.borrow_and_update() {
        return GOING_AWAY;
    }
    let timeout = shared.limits.write_timeout;
    let (reply, subscription) = oneshot::channel();
    if shared.control.send(Control::Subscribe { reply }).is_err() {
        return GOING_AWAY;
    }
    let Ok((snapshot, mut events)) = subscription.await else { return GOING_AWAY };
    if let Err(end) = conn::send(socket, snapshot, timeout).await {
        return end;
    }
    loop {
        tokio::select! {
            _ = shutdown.changed() => return GOING_AWAY,
            frame = socket.recv() => match frame {
                None | Some(Ok(Message::Close(_))) => return End::Gone,
                Some(Err(error)) => return if conn::is_too_large(error) { TOO_LARGE } else { End::Gone },
                Some(Ok(_)) => {}
            },
            event = events.recv() => {
                let first = match event {
                    Ok(text) => text,
                    Err(RecvError::Lagged(_)) => return SLOW_CONSUMER,
                    Err(RecvError::Closed) => return GOING_AWAY,
                };
                if let Err(end) = conn::within(timeout, write_batch(socket, &mut events, first)).await {
                    return end;
                }
            }
        }
    }
}

/// Writes `first` and whatever else is already waiting (up to a batch), then flushes once.
async fn write_batch(
    socket: &mut WebSocket,
    events: &mut broadcast::Receiver<Utf8Bytes>,
    first: Utf8Bytes,
) -> Result<(), End> {
    conn::feed(socket, first).await?;
    for _ in 1..WRITE_BATCH_MAX {
        match events.try_recv() {
            Ok(text) => conn::feed(socket, text).await?,
            Err(TryRecvError::Empty) => break,
            Err(TryRecvError::Lagged(_)) => return Err(SLOW_CONSUMER),
            Err(TryRecvError::Closed) => return Err(GOING_AWAY),
        }
    }
    conn::flush(socket).await
}
