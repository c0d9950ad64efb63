//! A `/feed` subscriber: the feed (on the clearing thread) hands back a snapshot, or with
//! `from_seq` the retained events from there (`resumed`), and a receiver of every later public
//! event (protocol section 9). Events are written in batches, one flush each.
//! A subscriber that falls more than `feed_backlog_max` events behind, or whose socket does not
//! take a write within `write_timeout`, is closed (1008 "slow consumer"): the broadcast ring
//! never waits for it, so it costs the engine and the other subscribers nothing. Whatever a
//! subscriber sends is read and ignored, but counted: past the session rate (`rate_per_second`,
//! `rate_burst`) each frame, pings and pongs included, is a strike, and too many close it
//! (1008). The server pings a quiet reader every `ping_interval`; one that answers nothing for
//! `idle_timeout` is closed (1008, protocol section 9).

use crate::conn::{self, Due, End, Liveness, GOING_AWAY, IDLE_TIMEOUT, SLOW_CONSUMER, TOO_LARGE, TOO_MANY_STRIKES};
use crate::feed_log::Subscription;
use crate::limits::TokenBucket;
use crate::server::Shared;
use axum::extract::ws::{Message, Utf8Bytes, WebSocket};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::{broadcast, oneshot, OwnedSemaphorePermit};

/// Events written before one flush.
const WRITE_BATCH_MAX: usize = 256;
/// While events keep coming, a subscriber looks only at them (see `wake`); every this many
/// wake-ups it also looks at its socket, its timer and shutdown, so that a firehose of events
/// cannot starve its pongs, its close or its liveness.
const FAIR_EVERY: u32 = 8;

/// Why a subscriber's task woke up.
enum Wake {
    Shutdown,
    Due(Due),
    Frame(Option<Result<Message, axum::Error>>),
    Event(Result<Utf8Bytes, RecvError>),
}

pub async fn serve(mut socket: WebSocket, shared: Arc<Shared>, permit: OwnedSemaphorePermit, from_seq: Option<u64>) {
    let _permit = permit;
    shared.metrics.feed_subscribers.fetch_add(1, Ordering::Relaxed);
    let end = run(&mut socket, &shared, from_seq).await;
    if end == SLOW_CONSUMER || end == End::Stuck {
        shared.metrics.slow_feed_closes.fetch_add(1, Ordering::Relaxed);
    }
    conn::finish(&mut socket, end, &shared.metrics).await;
    shared.metrics.feed_subscribers.fetch_sub(1, Ordering::Relaxed);
}

async fn run(socket: &mut WebSocket, shared: &Shared, from_seq: Option<u64>) -> End {
    let mut shutdown = shared.shutdown.clone();
    if *shutdown.borrow_and_update() {
        return GOING_AWAY;
    }
    let timeout = shared.limits.write_timeout;
    let (reply, subscription) = oneshot::channel();
    let asked = shared.clearing.ask(Box::new(move |_, _, feed| {
        let _ = reply.send(feed.subscribe(from_seq));
    }));
    if !asked {
        return GOING_AWAY;
    }
    let Ok(subscription) = subscription.await else { return GOING_AWAY };
    let mut events = match subscription {
        Subscription::Snapshot { snapshot, events } => {
            if let Err(end) = conn::send(socket, snapshot, timeout).await {
                return end;
            }
            events
        }
        Subscription::Resumed { from_seq, backlog, events } => {
            let resumed = Utf8Bytes::from(format!("{{\"type\":\"resumed\",\"from_seq\":{from_seq}}}"));
            if let Err(end) = conn::send(socket, resumed, timeout).await {
                return end;
            }
            for batch in backlog.chunks(WRITE_BATCH_MAX) {
                let written = async {
                    for text in batch {
                        conn::feed(socket, text.clone()).await?;
                    }
                    conn::flush(socket).await
                };
                if let Err(end) = conn::within(timeout, written).await {
                    return end;
                }
            }
            events
        }
    };
    let limits = &shared.limits;
    let mut liveness = Liveness::new(limits.ping_interval, limits.idle_timeout);
    let now = Instant::now();
    let mut rate = TokenBucket::new(limits.rate_burst, limits.rate_per_second as f64, now);
    let mut strikes = TokenBucket::per_window(limits.strikes_max, limits.strike_window, now);
    // One registration with the shutdown signal for the whole connection, not one per wake-up.
    let stopping = shutdown.changed();
    tokio::pin!(stopping);
    let mut turn = 0u32;
    loop {
        turn = turn.wrapping_add(1);
        match wake(!turn.is_multiple_of(FAIR_EVERY), &mut stopping, &mut liveness, socket, &mut events).await {
            Wake::Shutdown => return GOING_AWAY,
            Wake::Due(Due::Ping) => {
                if let Err(end) = conn::ping(socket, timeout).await {
                    return end;
                }
            }
            Wake::Due(Due::Close) => return IDLE_TIMEOUT,
            Wake::Frame(None | Some(Ok(Message::Close(_)))) => return End::Gone,
            Wake::Frame(Some(Err(error))) => return if conn::is_too_large(error) { TOO_LARGE } else { End::Gone },
            Wake::Frame(Some(Ok(_))) => {
                liveness.heard();
                let now = Instant::now();
                if !rate.take(now) && !strikes.take(now) {
                    return TOO_MANY_STRIKES;
                }
            }
            Wake::Event(event) => {
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

/// The next thing to do. With `events_first`, a waiting event is taken without polling the rest:
/// when one event wakes 10,000 subscribers, polling each one's socket, timer and shutdown signal
/// on the way cost about as much user time as writing the event. Every branch is cancel-safe.
async fn wake<S: std::future::Future<Output = Result<(), tokio::sync::watch::error::RecvError>>>(
    events_first: bool,
    stopping: &mut std::pin::Pin<&mut S>,
    liveness: &mut Liveness,
    socket: &mut WebSocket,
    events: &mut broadcast::Receiver<Utf8Bytes>,
) -> Wake {
    if events_first {
        tokio::select! {
            biased;
            event = events.recv() => Wake::Event(event),
            _ = stopping.as_mut() => Wake::Shutdown,
            due = liveness.due() => Wake::Due(due),
            frame = socket.recv() => Wake::Frame(frame),
        }
    } else {
        tokio::select! {
            _ = stopping.as_mut() => Wake::Shutdown,
            due = liveness.due() => Wake::Due(due),
            frame = socket.recv() => Wake::Frame(frame),
            event = events.recv() => Wake::Event(event),
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
