//! The gateway's counters and their Prometheus text rendering (`GET /metrics`). Hand-rolled
//! atomics: every counter is known up front, so no registry or global recorder is needed.

use crate::wire::REQUEST_TYPES;
use huashi_engine::histogram::{Histogram, HistogramRead};
use huashi_engine::reject::RejectCode;
use huashi_engine::sequencer::{SyncTimes, SYNC_BUCKETS_US};
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

pub struct Metrics {
    pub sessions: AtomicI64,
    pub feed_subscribers: AtomicI64,
    requests: [AtomicU64; REQUEST_TYPES.len()],
    rejects: [AtomicU64; RejectCode::ALL.len()],
    pub slow_session_closes: AtomicU64,
    pub slow_feed_closes: AtomicU64,
    pub strike_closes: AtomicU64,
    pub oversize_closes: AtomicU64,
    pub refused_connections: AtomicU64,
    pub busy: AtomicU64,
    pub feed_events: AtomicU64,
    pub outputs: AtomicU64,
    /// Over the journal sync's bounds, so the two histograms read side by side.
    latency: SyncTimes,
    /// Where a reply's time goes, stage by stage (see `ReplyStage`).
    reply_stages: [Histogram<{ STAGE_BUCKETS_US.len() }>; ReplyStage::ALL.len()],
}

/// The stages of a direct reply's trip through the server, each timed from the wall clock the
/// engine stamps commands with (µs), so the stages of one reply add up to its total.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyStage {
    /// The session read the frame → the sequencer stamped the command: parsing, the engine's
    /// queue and the sequencer thread's wake-up.
    Queued,
    /// Stamped → the `journal-sync` thread took its batch: apply, the journal write, the hand-over,
    /// and the wait for the sync of the batch before (group commit).
    Applied,
    /// The batch's `fdatasync` (with a batch sink, also its shipping).
    Synced,
    /// Durable → the fan-out took it: the `journal-sync` thread's hand-off.
    Released,
    /// The fan-out took it → the reply's frame was written to the socket: rendering, the hand-off
    /// to the session and the write.
    Written,
    /// The session read the frame → the reply was written: the server's whole share.
    Total,
}

impl ReplyStage {
    pub const ALL: [ReplyStage; 6] = [
        ReplyStage::Queued,
        ReplyStage::Applied,
        ReplyStage::Synced,
        ReplyStage::Released,
        ReplyStage::Written,
        ReplyStage::Total,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ReplyStage::Queued => "queued",
            ReplyStage::Applied => "applied",
            ReplyStage::Synced => "synced",
            ReplyStage::Released => "released",
            ReplyStage::Written => "written",
            ReplyStage::Total => "total",
        }
    }

    /// From where to where the stage runs, in a few words (the metric's help, loadgen's table).
    pub fn span(self) -> &'static str {
        match self {
            ReplyStage::Queued => "frame read → engine stamp",
            ReplyStage::Applied => "engine stamp → the sync thread",
            ReplyStage::Synced => "fdatasync",
            ReplyStage::Released => "durable → fan-out",
            ReplyStage::Written => "fan-out → written to the socket",
            ReplyStage::Total => "frame read → written",
        }
    }
}

/// Upper bounds (µs) of the reply stages' buckets: fine below 2.5 ms, where the target is.
pub const STAGE_BUCKETS_US: [u64; 16] =
    [25, 50, 100, 250, 500, 750, 1_000, 1_500, 2_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 1_000_000];

fn get(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

impl Default for Metrics {
    // By hand: `Default` stops at arrays of 32, and the protocol has more request types.
    fn default() -> Metrics {
        Metrics {
            sessions: AtomicI64::new(0),
            feed_subscribers: AtomicI64::new(0),
            requests: std::array::from_fn(|_| AtomicU64::new(0)),
            rejects: std::array::from_fn(|_| AtomicU64::new(0)),
            slow_session_closes: AtomicU64::new(0),
            slow_feed_closes: AtomicU64::new(0),
            strike_closes: AtomicU64::new(0),
            oversize_closes: AtomicU64::new(0),
            refused_connections: AtomicU64::new(0),
            busy: AtomicU64::new(0),
            feed_events: AtomicU64::new(0),
            outputs: AtomicU64::new(0),
            latency: SyncTimes::new(&SYNC_BUCKETS_US),
            reply_stages: std::array::from_fn(|_| Histogram::new(&STAGE_BUCKETS_US)),
        }
    }
}

/// Figures read at scrape time from elsewhere.
pub struct Gauges<'a> {
    pub engine_queue_depth: usize,
    pub fanout_backlog: usize,
    pub seq: u64,
    /// The journal's `fdatasync` times.
    pub journal_sync: &'a SyncTimes,
}

impl Metrics {
    pub fn request(&self, kind: usize) {
        self.requests[kind].fetch_add(1, Ordering::Relaxed);
    }

    pub fn reject(&self, code: RejectCode) {
        let index = RejectCode::ALL.iter().position(|c| *c == code).expect("listed");
        self.rejects[index].fetch_add(1, Ordering::Relaxed);
    }

    /// Time from the sequencer's stamp to the fan-out: queueing, apply and the journal commit.
    pub fn engine_latency(&self, micros: u64) {
        self.latency.record(micros);
    }

    /// One reply spent `from..to` (wall µs) in `stage`; a clock stepped back counts as 0.
    pub fn reply_stage(&self, stage: ReplyStage, from_us: u64, to_us: u64) {
        self.reply_stages[stage as usize].record(to_us.saturating_sub(from_us));
    }

    pub fn render(&self, gauges: &Gauges<'_>) -> String {
        let mut out = String::with_capacity(4096);
        gauge(&mut out, "huashi_sessions", "Open /ws sessions", self.sessions.load(Ordering::Relaxed));
        gauge(
            &mut out,
            "huashi_feed_subscribers",
            "Open /feed subscribers",
            self.feed_subscribers.load(Ordering::Relaxed),
        );
        gauge(
            &mut out,
            "huashi_engine_queue_depth",
            "Submissions waiting for the sequencer",
            gauges.engine_queue_depth as i64,
        );
        gauge(
            &mut out,
            "huashi_fanout_backlog",
            "Engine outputs waiting for the fan-out",
            gauges.fanout_backlog as i64,
        );
        gauge(&mut out, "huashi_engine_seq", "Seq of the last command the fan-out routed", gauges.seq as i64);
        header(&mut out, "huashi_requests_total", "Requests received, by type", "counter");
        for (name, count) in REQUEST_TYPES.iter().zip(&self.requests) {
            let _ = writeln!(out, "huashi_requests_total{{type=\"{name}\"}} {}", get(count));
        }
        header(&mut out, "huashi_rejects_total", "Error replies sent, by code", "counter");
        for (code, count) in RejectCode::ALL.iter().zip(&self.rejects) {
            let _ = writeln!(out, "huashi_rejects_total{{code=\"{}\"}} {}", code.as_str(), get(count));
        }
        header(&mut out, "huashi_closes_total", "Connections the server closed, by reason", "counter");
        for (reason, count) in [
            ("slow_session", &self.slow_session_closes),
            ("slow_feed", &self.slow_feed_closes),
            ("strikes", &self.strike_closes),
            ("oversize", &self.oversize_closes),
        ] {
            let _ = writeln!(out, "huashi_closes_total{{reason=\"{reason}\"}} {}", get(count));
        }
        counter(
            &mut out,
            "huashi_refused_connections_total",
            "Upgrades refused at a connection limit",
            get(&self.refused_connections),
        );
        counter(&mut out, "huashi_engine_busy_total", "Requests answered busy (engine queue full)", get(&self.busy));
        counter(&mut out, "huashi_feed_events_total", "Public events published", get(&self.feed_events));
        counter(&mut out, "huashi_engine_outputs_total", "Engine outputs routed", get(&self.outputs));
        header(
            &mut out,
            "huashi_engine_latency_seconds",
            "From the sequencer's stamp to the fan-out, journal commit included",
            "histogram",
        );
        histogram(&mut out, "huashi_engine_latency_seconds", "", &self.latency.read());
        let stages: Vec<String> = ReplyStage::ALL.iter().map(|s| format!("{} ({})", s.name(), s.span())).collect();
        let help = format!("Where a direct reply's time goes: {}", stages.join(", "));
        header(&mut out, "huashi_reply_stage_seconds", &help, "histogram");
        for (stage, stage_histogram) in ReplyStage::ALL.iter().zip(&self.reply_stages) {
            let labels = format!("stage=\"{}\"", stage.name());
            histogram(&mut out, "huashi_reply_stage_seconds", &labels, &stage_histogram.read());
        }
        header(&mut out, "huashi_journal_sync_seconds", "Time of each journal fdatasync (group commit)", "histogram");
        histogram(&mut out, "huashi_journal_sync_seconds", "", &gauges.journal_sync.read());
        out
    }
}

/// A histogram's lines (after its header), in seconds; `labels` (`stage="x"`, or empty) go on
/// every line, before a bucket's `le`.
fn histogram<const N: usize>(out: &mut String, name: &str, labels: &str, read: &HistogramRead<'_, N>) {
    let (before_le, alone) = if labels.is_empty() {
        (String::new(), String::new())
    } else {
        (format!("{labels},"), format!("{{{labels}}}"))
    };
    let mut cumulative = 0;
    for (bound, n) in read.bounds.iter().zip(read.buckets) {
        cumulative += n;
        let _ = writeln!(out, "{name}_bucket{{{before_le}le=\"{}\"}} {cumulative}", *bound as f64 / 1e6);
    }
    let _ = writeln!(out, "{name}_bucket{{{before_le}le=\"+Inf\"}} {}", read.count);
    let _ = writeln!(out, "{name}_sum{alone} {}", read.sum_us as f64 / 1e6);
    let _ = writeln!(out, "{name}_count{alone} {}", read.count);
}

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn gauge(out: &mut String, name: &str, help: &str, value: i64) {
    header(out, name, help, "gauge");
    let _ = writeln!(out, "{name} {value}");
}

fn counter(out: &mut String, name: &str, help: &str, value: u64) {
    header(out, name, help, "counter");
    let _ = writeln!(out, "{name} {value}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let metrics = Metrics::default();
        metrics.request(REQUEST_TYPES.iter().position(|t| *t == "bid").unwrap());
        metrics.reject(RejectCode::TooLate);
        metrics.engine_latency(700);
        metrics.reply_stage(ReplyStage::Total, 1_000, 1_300);
        let journal_sync = SyncTimes::new(&SYNC_BUCKETS_US);
        journal_sync.record(150); // two syncs of 100–250 µs
        journal_sync.record(250);
        let gauges = Gauges { engine_queue_depth: 3, fanout_backlog: 0, seq: 9, journal_sync: &journal_sync };
        let text = metrics.render(&gauges);
        assert!(text.contains("huashi_requests_total{type=\"bid\"} 1\n"));
        assert!(text.contains("huashi_rejects_total{code=\"too_late\"} 1\n"));
        assert!(text.contains("huashi_engine_queue_depth 3\n"));
        assert!(text.contains("huashi_engine_latency_seconds_bucket{le=\"0.001\"} 1\n"));
        assert!(text.contains("huashi_engine_latency_seconds_bucket{le=\"0.0005\"} 0\n"));
        assert!(text.contains("# TYPE huashi_sessions gauge\n"));
        assert!(text.contains("huashi_journal_sync_seconds_bucket{le=\"0.0001\"} 0\n"), "{text}");
        assert!(text.contains("huashi_journal_sync_seconds_bucket{le=\"0.00025\"} 2\n"), "{text}");
        assert!(text.contains("huashi_journal_sync_seconds_sum 0.0004\n"), "{text}");
        assert!(text.contains("huashi_journal_sync_seconds_count 2\n"), "{text}");
        assert!(text.contains("huashi_reply_stage_seconds_bucket{stage=\"total\",le=\"0.00025\"} 0\n"), "{text}");
        assert!(text.contains("huashi_reply_stage_seconds_bucket{stage=\"total\",le=\"0.0005\"} 1\n"), "{text}");
        assert!(text.contains("huashi_reply_stage_seconds_count{stage=\"total\"} 1\n"), "{text}");
        assert!(text.contains("huashi_reply_stage_seconds_sum{stage=\"queued\"} 0\n"), "{text}");
    }
}
