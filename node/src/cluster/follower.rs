//! A follower's consumer: reads the hall's stream from where this node's journal ends, checks
//! that the command seqs follow on with no gap, and hands each batch's records to the sequencer
//! (`Submission::Replicated`), which checks their CRCs, journals them byte for byte and applies
//! them. Clearing, the feed and `/api/*` then follow as on the leader.

use super::stream::Kind;
use async_nats::jetstream::consumer::pull::OrderedConfig;
use async_nats::jetstream::consumer::DeliverPolicy;
use async_nats::jetstream::stream::Stream;
use futures_util::StreamExt;
use huashi_engine::batch_sink::ShippedRecords;
use huashi_engine::sequencer::{SequencerHandle, Submission, SubmitError};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How long the consumer may deliver nothing before the node checks the stream has not moved on.
const QUIET_CHECK: Duration = Duration::from_secs(1);

/// How far the consumer has got: read by the lease task (is this node caught up?) and `/health`.
#[derive(Debug, Default)]
pub struct Progress {
    /// The stream seq of the last message handled.
    pub stream_seq: AtomicU64,
    /// The last command seq handed to the sequencer.
    pub command_seq: AtomicU64,
}

/// Follows the stream until aborted (the node takes over) or a record is out of order (fatal:
/// returns why).
pub async fn follow(stream: Stream, engine: SequencerHandle, progress: Arc<Progress>) -> String {
    loop {
        let from = progress.stream_seq.load(Ordering::Acquire) + 1;
        let config = OrderedConfig {
            deliver_policy: DeliverPolicy::ByStartSequence { start_sequence: from },
            ..OrderedConfig::default()
        };
        let messages = match stream.create_consumer(config).await {
            Ok(consumer) => consumer.messages().await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        let mut messages = match messages {
            Ok(messages) => messages,
            Err(error) => {
                tracing::warn!(%error, from, "cannot read the hall's stream; trying again");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        loop {
            // A consumer whose NATS server went away may neither deliver nor fail: when nothing
            // came for a while but the stream has moved on, read it again from where this node is.
            let message = match tokio::time::timeout(QUIET_CHECK, messages.next()).await {
                Ok(Some(Ok(message))) => message,
                Ok(None) => break,
                Ok(Some(Err(error))) => {
                    tracing::warn!(%error, "lost the hall's stream; reading it again");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    break;
                }
                Err(_) => {
                    let at = progress.stream_seq.load(Ordering::Acquire);
                    match super::stream::last_stream_seq(&stream).await {
                        Ok(last) if last > at => {
                            tracing::warn!(
                                at,
                                last,
                                "the stream's consumer went quiet behind the stream; reading it again"
                            );
                            break;
                        }
                        _ => continue,
                    }
                }
            };
            let stream_seq = match message.info() {
                Ok(info) => info.stream_sequence,
                Err(error) => return format!("a stream message without its position: {error}"),
            };
            if let Err(reason) = apply(&message.message, &engine, &progress).await {
                return reason;
            }
            progress.stream_seq.store(stream_seq, Ordering::Release);
        }
    }
}

/// Hands one message's records on, skipping any this node already has.
async fn apply(message: &async_nats::Message, engine: &SequencerHandle, progress: &Progress) -> Result<(), String> {
    let (first, last) = match Kind::parse(message.headers.as_ref())? {
        Kind::Genesis | Kind::Term { .. } => return Ok(()),
        Kind::Batch { first, last, .. } => (first, last),
    };
    let applied = progress.command_seq.load(Ordering::Acquire);
    if last <= applied {
        return Ok(()); // already applied (read again after a reconnect)
    }
    if first > applied + 1 {
        return Err(format!("the hall's stream skips from command {applied} to {first}"));
    }
    let mut records = &message.payload[..];
    if first <= applied {
        // Starts inside what this node has: keep the records after it.
        let skip: usize = ShippedRecords::new(records)
            .take((applied + 1 - first) as usize)
            .map(|r| r.map(|(_, payload)| payload.len() + 16))
            .sum::<Result<usize, String>>()?;
        records = &records[skip..];
    }
    let mut submission = Submission::Replicated(records.to_vec());
    loop {
        match engine.try_submit(submission) {
            Ok(()) => break,
            Err(SubmitError::Stopped) => return Err("the sequencer has stopped".into()),
            Err(SubmitError::Busy) => {
                // Busy returns the submission in no form: rebuild it (rare: the queue is full).
                tokio::time::sleep(Duration::from_millis(1)).await;
                submission = Submission::Replicated(records.to_vec());
            }
        }
    }
    progress.command_seq.store(last, Ordering::Release);
    Ok(())
}
