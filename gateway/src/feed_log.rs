//! The public feed's numbering and memory (protocol section 9): every public event, the engine's
//! and clearing's `stats` and `index`, gets the next `seq`, and the last `RETAINED` events are
//! kept so that a subscriber can resume with `/feed?from_seq=N`.
//!
//! The numbering is durable state: it runs on the clearing thread, right after clearing, over
//! the outputs in seq order (engine events first, then the market data clearing made of them),
//! so it is a function of the journal alone. `FeedLog` is saved in clearing's snapshots and
//! rebuilt by the replay after them; `Feed` adds the live parts (the view for snapshots and the
//! broadcast to subscribers).

use crate::feed::{render_market_data, render_public, FeedView};
use crate::messages::Status;
use crate::metrics::Metrics;
use axum::extract::ws::Utf8Bytes;
use huashi_clearing::service::Publisher;
use huashi_clearing::MarketData;
use huashi_engine::event::Event;
use huashi_engine::sequencer::Output;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::sync::broadcast;

/// Public events kept for resumes: protocol section 9 promises at least the last 100,000.
pub const RETAINED: usize = 100_000;

/// The feed's numbering and its last `RETAINED` events, rendered.
#[derive(Default)]
pub struct FeedLog {
    /// The seq of the last event published; 0 before the first.
    last: u64,
    /// The last events, oldest first: the last one has seq `last`.
    retained: VecDeque<Utf8Bytes>,
}

/// `FeedLog` as saved in a clearing snapshot.
#[derive(Serialize, Deserialize)]
struct FeedLogImage {
    last: u64,
    retained: Vec<String>,
}

impl FeedLog {
    /// The log saved in a clearing snapshot; a fresh one without (a new market, or clearing
    /// recovered from genesis).
    pub fn restore(image: Option<&[u8]>) -> Result<FeedLog, String> {
        let Some(bytes) = image else { return Ok(FeedLog::default()) };
        let image: FeedLogImage = bincode::deserialize(bytes).map_err(|e| format!("feed log: {e}"))?;
        let retained = image.retained.into_iter().map(Utf8Bytes::from).collect();
        Ok(FeedLog { last: image.last, retained })
    }

    pub fn image(&self) -> Vec<u8> {
        let image =
            FeedLogImage { last: self.last, retained: self.retained.iter().map(|t| t.as_str().to_owned()).collect() };
        bincode::serialize(&image).expect("the feed log serialises")
    }

    /// The seq of the last event published (0: none yet).
    pub fn last_seq(&self) -> u64 {
        self.last
    }

    /// The seq of the oldest event still retained.
    fn oldest(&self) -> u64 {
        self.last + 1 - self.retained.len() as u64
    }

    fn push(&mut self, text: String) -> Utf8Bytes {
        let text = Utf8Bytes::from(text);
        self.last += 1;
        self.retained.push_back(text.clone());
        if self.retained.len() > RETAINED {
            self.retained.pop_front();
        }
        text
    }

    /// Numbers and keeps one output's public events and then its market data; `sent` sees each
    /// event as published.
    pub fn record(&mut self, events: &[Event], data: &[MarketData], mut sent: impl FnMut(&Utf8Bytes)) {
        for event in events {
            if let Some(text) = render_public(event, self.last + 1) {
                sent(&self.push(text));
            }
        }
        for item in data {
            let text = render_market_data(item, self.last + 1);
            sent(&self.push(text));
        }
    }

    /// The events from `from_seq` on, if the log still has them all: the oldest retained ≤
    /// `from_seq` ≤ last + 1 (the last case: nothing yet to send).
    pub fn since(&self, from_seq: u64) -> Option<Vec<Utf8Bytes>> {
        if from_seq < self.oldest() || from_seq > self.last + 1 {
            return None;
        }
        let skip = (from_seq - self.oldest()) as usize;
        Some(self.retained.iter().skip(skip).cloned().collect())
    }
}

/// What a new subscriber starts from.
pub enum Subscription {
    /// The market now, then every event after it.
    Snapshot { snapshot: Utf8Bytes, events: broadcast::Receiver<Utf8Bytes> },
    /// The events from `from_seq` on (`backlog`), then every later one.
    Resumed { from_seq: u64, backlog: Vec<Utf8Bytes>, events: broadcast::Receiver<Utf8Bytes> },
}

/// The live public feed, the clearing thread's publisher.
pub struct Feed {
    log: FeedLog,
    view: FeedView,
    tx: broadcast::Sender<Utf8Bytes>,
    status: Arc<Status>,
    metrics: Arc<Metrics>,
}

impl Feed {
    pub fn new(log: FeedLog, view: FeedView, backlog_max: usize, status: Arc<Status>, metrics: Arc<Metrics>) -> Feed {
        let (tx, _) = broadcast::channel(backlog_max);
        status.feed_seq.store(log.last_seq(), Ordering::Relaxed);
        Feed { log, view, tx, status, metrics }
    }

    /// A new subscriber: resumed at `from_seq` when the log still has every event from there,
    /// otherwise a snapshot. Taken on the clearing thread, so nothing falls between the two.
    pub fn subscribe(&self, from_seq: Option<u64>) -> Subscription {
        let events = self.tx.subscribe();
        match from_seq.and_then(|from| self.log.since(from).map(|backlog| (from, backlog))) {
            Some((from_seq, backlog)) => Subscription::Resumed { from_seq, backlog, events },
            None => {
                Subscription::Snapshot { snapshot: Utf8Bytes::from(self.view.snapshot(self.log.last_seq())), events }
            }
        }
    }
}

impl Publisher for Feed {
    fn publish(&mut self, output: &Output, data: &[MarketData]) {
        for event in &output.events {
            self.view.apply(event);
        }
        for item in data {
            self.view.apply_market_data(item);
        }
        let (tx, metrics) = (&self.tx, &self.metrics);
        self.log.record(&output.events, data, |text| {
            metrics.feed_events.fetch_add(1, Ordering::Relaxed);
            // No subscriber is not an error: the next one starts from a snapshot.
            let _ = tx.send(text.clone());
        });
        self.status.feed_seq.store(self.log.last_seq(), Ordering::Relaxed);
    }

    fn image(&self) -> Vec<u8> {
        self.log.image()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log_of(n: u64) -> FeedLog {
        let mut log = FeedLog::default();
        for i in 0..n {
            log.push(format!("{{\"seq\":{}}}", i + 1));
        }
        log
    }

    #[test]
    fn resumes_from_any_retained_seq_up_to_the_next_one() {
        let log = log_of(5);
        assert_eq!(log.since(1).unwrap().len(), 5);
        assert_eq!(
            log.since(4).unwrap().iter().map(|t| t.as_str()).collect::<Vec<_>>(),
            ["{\"seq\":4}", "{\"seq\":5}"]
        );
        assert_eq!(log.since(6).unwrap().len(), 0, "last + 1: nothing to send yet");
        assert!(log.since(7).is_none(), "a seq not yet published needs a snapshot");
        assert!(log.since(0).is_none(), "seq 0 was never published");
    }

    #[test]
    fn forgets_the_oldest_past_the_retained_count_and_survives_its_image() {
        let log = log_of(RETAINED as u64 + 10);
        assert!(log.since(10).is_none());
        assert_eq!(log.since(11).unwrap().len(), RETAINED);
        let restored = FeedLog::restore(Some(&log.image())).unwrap();
        assert_eq!(restored.last_seq(), RETAINED as u64 + 10);
        assert_eq!(restored.since(11).unwrap(), log.since(11).unwrap());
    }
}
