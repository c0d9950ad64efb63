//! The gateway's counters and their Prometheus text rendering (`GET /metrics`). Hand-rolled
//! atomics: every counter is known up front, so no registry or global recorder is needed.

use crate::wire::REQUEST_TYPES;
use huashi_engine::reject::RejectCode;
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// Upper bounds (µs) of the engine-latency histogram buckets.
const LATENCY_BUCKETS_US: [u64; 12] =
    [100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 1_000_000];

#[derive(Default)]
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
    latency_buckets: [AtomicU64; LATENCY_BUCKETS_US.len()],
    latency_count: AtomicU64,
    latency_sum_us: AtomicU64,
}

/// Figures read at scrape time from elsewhere.
pub struct Gauges {
    pub engine_queue_depth: usize,
    pub fanout_backlog: usize,
    pub seq: u64,
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
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        self.latency_sum_us.fetch_add(micros, Ordering::Relaxed);
        if let Some(i) = LATENCY_BUCKETS_US.iter().position(|b| micros <= *b) {
            self.latency_buckets[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn render(&self, gauges: &Gauges) -> String {
        let mut out = String::with_capacity(4096);
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
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
        let mut cumulative = 0;
        for (bound, count) in LATENCY_BUCKETS_US.iter().zip(&self.latency_buckets) {
            cumulative += get(count);
            let _ =
                writeln!(out, "huashi_engine_latency_seconds_bucket{{le=\"{}\"}} {cumulative}", *bound as f64 / 1e6);
        }
        let total = get(&self.latency_count);
        let _ = writeln!(out, "huashi_engine_latency_seconds_bucket{{le=\"+Inf\"}} {total}");
        let _ = writeln!(out, "huashi_engine_latency_seconds_sum {}", get(&self.latency_sum_us) as f64 / 1e6);
        let _ = writeln!(out, "huashi_engine_latency_seconds_count {total}");
        out
    }
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
        let text = metrics.render(&Gauges { engine_queue_depth: 3, fanout_backlog: 0, seq: 9 });
        assert!(text.contains("huashi_requests_total{type=\"bid\"} 1\n"));
        assert!(text.contains("huashi_rejects_total{code=\"too_late\"} 1\n"));
        assert!(text.contains("huashi_engine_queue_depth 3\n"));
        assert!(text.contains("huashi_engine_latency_seconds_bucket{le=\"0.001\"} 1\n"));
        assert!(text.contains("huashi_engine_latency_seconds_bucket{le=\"0.0005\"} 0\n"));
        assert!(text.contains("# TYPE huashi_sessions gauge\n"));
    }
}
