//! Throttling of the public market data by engine time: a cell's `stats` and an index's intraday
//! value go out at most once a second each. A change is published at once if the last publication
//! of the same thing was a second or more ago; otherwise it waits (pending) until an output reaches
//! that second (the core journals a tick a second after the latest sale, so one always does). The
//! day's close always goes out.
//!
//! It is saved with the rest of clearing and, since it sees only outputs, replays the same; it is
//! left out of `state_hash`, which is about money and statistics.

use crate::index::{IndexCode, IndexValue};
use crate::stats::CellKey;
use huashi_engine::types::EngineTime;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// At most one publication per cell and per index in this much engine time.
pub const PUBLISH_INTERVAL_US: u64 = 1_000_000;

/// An engine-time minute, the bucket of the intraday series kept for `/api/index`.
const MINUTE_US: u64 = 60_000_000;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Throttle {
    last: Option<EngineTime>,
    pending: bool,
}

impl Throttle {
    fn due_at(&self) -> Option<EngineTime> {
        self.pending.then(|| self.last.map_or(EngineTime(0), |t| EngineTime(t.0.saturating_add(PUBLISH_INTERVAL_US))))
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Publisher {
    cells: BTreeMap<CellKey, Throttle>,
    indices: BTreeMap<IndexCode, Throttle>,
    /// Today's published intraday values: per index, the last one of each minute.
    intraday: BTreeMap<IndexCode, Vec<IndexValue>>,
}

impl Publisher {
    pub fn touch_cell(&mut self, key: CellKey) {
        self.cells.entry(key).or_default().pending = true;
    }

    pub fn touch_index(&mut self, code: IndexCode) {
        self.indices.entry(code).or_default().pending = true;
    }

    /// The cells due for publication at `now`, marked published.
    pub fn due_cells(&mut self, now: EngineTime) -> Vec<CellKey> {
        take_due(&mut self.cells, now)
    }

    pub fn due_indices(&mut self, now: EngineTime) -> Vec<IndexCode> {
        take_due(&mut self.indices, now)
    }

    /// When the earliest pending publication may go out.
    pub fn next_due(&self) -> Option<EngineTime> {
        self.cells.values().chain(self.indices.values()).filter_map(Throttle::due_at).min()
    }

    /// Keeps a published intraday value in today's series (the last one of each minute), so the
    /// series stays bounded (1,440 points per index a day) however busy the market is.
    pub fn record_intraday(&mut self, value: IndexValue) {
        let series = self.intraday.entry(value.code).or_default();
        match series.last_mut() {
            Some(last) if last.ts.0 / MINUTE_US == value.ts.0 / MINUTE_US => *last = value,
            _ => series.push(value),
        }
    }

    /// Today's intraday series, in time order.
    pub fn intraday(&self) -> Vec<IndexValue> {
        let mut points: Vec<IndexValue> = self.intraday.values().flatten().copied().collect();
        points.sort_by_key(|v| (v.ts, v.code));
        points
    }

    /// The day is over: everything was published with the close.
    pub fn reset(&mut self) {
        self.cells.clear();
        self.indices.clear();
        self.intraday.clear();
    }
}

fn take_due<K: Ord + Copy>(map: &mut BTreeMap<K, Throttle>, now: EngineTime) -> Vec<K> {
    let mut due = Vec::new();
    for (key, throttle) in map.iter_mut() {
        if throttle.due_at().is_some_and(|t| t <= now) {
            throttle.pending = false;
            throttle.last = Some(now);
            due.push(*key);
        }
    }
    due
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_goes_out_at_once_then_at_most_once_a_second() {
        let mut publisher = Publisher::default();
        publisher.touch_index(IndexCode::Sfci);
        assert_eq!(publisher.due_indices(EngineTime(5_000_000)), vec![IndexCode::Sfci]);
        publisher.touch_index(IndexCode::Sfci);
        assert!(publisher.due_indices(EngineTime(5_999_999)).is_empty());
        assert_eq!(publisher.next_due(), Some(EngineTime(6_000_000)));
        assert_eq!(publisher.due_indices(EngineTime(6_000_000)), vec![IndexCode::Sfci]);
        assert_eq!(publisher.next_due(), None);
        assert!(publisher.due_indices(EngineTime(9_000_000)).is_empty());
    }
}
