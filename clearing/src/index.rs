//! The Shanghai Flower Consumption Index (protocol section 10): a chained Törnqvist price index
//! over cells (product × grade), with one sub-index per category.
//!
//! From one trading day of an index to the next, over the cells traded on both days:
//!
//! ```text
//! I_d = I_{d−1} × exp( Σ_i w_i × ln(p_{i,d} / p_{i,d−1}) ),   w_i = (s_{i,d−1} + s_{i,d}) / 2
//! ```
//!
//! `p` is a cell's VWAP per unit (Σ amount / Σ units, exact, not the rounded published VWAP) and
//! `s` its share of the traded amount among the overlapping cells that day. This file is the one
//! place in clearing where floating point is allowed: `f64` computes the factor, and every value
//! leaves as a `Decimal` rounded half-even to 0.01. Each close chains on the previous *published*
//! close, so anyone can reproduce a day's value from the published figures.

use crate::stats::CellKey;
use huashi_engine::core::catalogue::Category;
use huashi_engine::types::{Day, EngineTime};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The published indices.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum IndexCode {
    /// All products (every category, `other` included).
    #[serde(rename = "SFCI")]
    Sfci,
    #[serde(rename = "SFCI-CUT")]
    SfciCut,
    #[serde(rename = "SFCI-POT")]
    SfciPot,
    #[serde(rename = "SFCI-FOL")]
    SfciFol,
}

impl IndexCode {
    pub const ALL: [IndexCode; 4] = [IndexCode::Sfci, IndexCode::SfciCut, IndexCode::SfciPot, IndexCode::SfciFol];

    pub fn as_str(self) -> &'static str {
        match self {
            IndexCode::Sfci => "SFCI",
            IndexCode::SfciCut => "SFCI-CUT",
            IndexCode::SfciPot => "SFCI-POT",
            IndexCode::SfciFol => "SFCI-FOL",
        }
    }

    pub fn parse(text: &str) -> Option<IndexCode> {
        IndexCode::ALL.into_iter().find(|c| c.as_str() == text)
    }

    /// Whether the index covers cells of `category` (`other` counts only in SFCI).
    pub fn covers(self, category: Category) -> bool {
        match self {
            IndexCode::Sfci => true,
            IndexCode::SfciCut => category == Category::CutFlower,
            IndexCode::SfciPot => category == Category::PottedPlant,
            IndexCode::SfciFol => category == Category::Foliage,
        }
    }
}

/// Every index starts at this value on its base day.
pub const INDEX_BASE: Decimal = Decimal::from_parts(100_000, 0, 0, false, 2);

/// What the index needs of a cell's day: traded amount (fen) and units.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CellVolume {
    pub amount: i64,
    pub units: u64,
}

impl CellVolume {
    fn trades(&self) -> bool {
        self.amount > 0 && self.units > 0
    }
}

/// `exp(Σ w_i ln(p_{i,d}/p_{i,d−1}))` over the cells in both maps; `None` when none overlap.
pub fn tornqvist_factor(
    previous: &BTreeMap<CellKey, CellVolume>,
    today: &BTreeMap<CellKey, CellVolume>,
) -> Option<f64> {
    let overlap: Vec<(CellVolume, CellVolume)> = today
        .iter()
        .filter_map(|(key, now)| previous.get(key).map(|before| (*before, *now)))
        .filter(|(before, now)| before.trades() && now.trades())
        .collect();
    if overlap.is_empty() {
        return None;
    }
    let total_before: f64 = overlap.iter().map(|(before, _)| before.amount as f64).sum();
    let total_now: f64 = overlap.iter().map(|(_, now)| now.amount as f64).sum();
    let log_change: f64 = overlap
        .iter()
        .map(|(before, now)| {
            let weight = (before.amount as f64 / total_before + now.amount as f64 / total_now) / 2.0;
            let p_before = before.amount as f64 / before.units as f64;
            let p_now = now.amount as f64 / now.units as f64;
            weight * (p_now / p_before).ln()
        })
        .sum();
    Some(log_change.exp())
}

/// `previous × factor`, rounded half-even to 0.01 — the edge where `f64` becomes money-like again.
pub fn chain(previous: Decimal, factor: f64) -> Decimal {
    let previous = previous.to_f64().expect("index values fit in f64");
    let value = Decimal::from_f64_retain(previous * factor).expect("index values fit in a Decimal");
    let mut rounded = value.round_dp_with_strategy(2, RoundingStrategy::MidpointNearestEven);
    rounded.rescale(2);
    rounded
}

/// The public `index` message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexValue {
    pub code: IndexCode,
    /// 2 decimal places.
    pub value: Decimal,
    pub day: Day,
    pub ts: EngineTime,
    /// `true` for the day's close, `false` for an intraday value.
    #[serde(rename = "final")]
    pub is_final: bool,
}

/// One settled day's closes: every index published by then (an index appears from its base day).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexClose {
    pub day: Day,
    pub values: BTreeMap<IndexCode, Decimal>,
}

/// `/api/index`: the latest value of each published index and today's intraday series.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexSnapshot {
    /// The trading day in progress.
    pub day: Day,
    /// Per index: today's value so far if its cells traded today, else its last close.
    pub latest: Vec<IndexValue>,
    /// Today's published intraday values, at most one per index per engine-time minute (the last
    /// one published in that minute), in time order.
    pub intraday: Vec<IndexValue>,
}

/// One index's chain.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct IndexChain {
    /// The last close; `None` before the base day.
    close: Option<IndexValue>,
    /// The last settled day on which the index had cells, and those cells: the next day's
    /// comparison.
    previous: BTreeMap<CellKey, CellVolume>,
}

impl IndexChain {
    /// The value with `today`'s cells: the base on the first day with cells, the previous close
    /// times the Törnqvist factor after, the previous close unchanged when no cell overlaps.
    fn value_with(&self, today: &BTreeMap<CellKey, CellVolume>) -> Option<Decimal> {
        match &self.close {
            None => today.values().any(CellVolume::trades).then_some(INDEX_BASE),
            Some(close) => Some(tornqvist_factor(&self.previous, today).map_or(close.value, |f| chain(close.value, f))),
        }
    }
}

/// All indices: their chains and the history of closes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct IndexBook {
    chains: BTreeMap<IndexCode, IndexChain>,
    history: Vec<IndexClose>,
}

impl IndexBook {
    /// The index's value with today's cells so far; `None` while it has no base.
    pub fn value_now(&self, code: IndexCode, today: &BTreeMap<CellKey, CellVolume>) -> Option<Decimal> {
        match self.chains.get(&code) {
            Some(chain) => chain.value_with(today),
            None => IndexChain::default().value_with(today),
        }
    }

    /// The last close, if the index has one.
    pub fn last_close(&self, code: IndexCode) -> Option<IndexValue> {
        self.chains.get(&code).and_then(|c| c.close)
    }

    /// Closes `day`: each index with a base gets its close (final), the history a row.
    pub fn settle(
        &mut self,
        day: Day,
        ts: EngineTime,
        mut cells: BTreeMap<IndexCode, BTreeMap<CellKey, CellVolume>>,
    ) -> (IndexClose, Vec<IndexValue>) {
        let mut row = IndexClose { day, values: BTreeMap::new() };
        let mut closes = Vec::new();
        for code in IndexCode::ALL {
            let today = cells.remove(&code).unwrap_or_default();
            let chain = self.chains.entry(code).or_default();
            if let Some(value) = chain.value_with(&today) {
                let close = IndexValue { code, value, day, ts, is_final: true };
                chain.close = Some(close);
                row.values.insert(code, value);
                closes.push(close);
            }
            if today.values().any(CellVolume::trades) {
                chain.previous = today;
            }
        }
        self.history.push(row.clone());
        (row, closes)
    }

    pub fn history(&self) -> &[IndexClose] {
        &self.history
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use huashi_engine::core::catalogue::Grade;
    use huashi_engine::types::Code;

    fn cells(list: &[(&'static str, i64, u64)]) -> BTreeMap<CellKey, CellVolume> {
        list.iter()
            .map(|&(product, amount, units)| {
                (CellKey { product: Code::from_static(product), grade: Grade::A1 }, CellVolume { amount, units })
            })
            .collect()
    }

    #[test]
    fn one_cell_moves_the_index_by_its_price_change() {
        let before = cells(&[("ROSE", 10_000, 100)]);
        let after = cells(&[("ROSE", 5_500, 50)]);
        let factor = tornqvist_factor(&before, &after).unwrap();
        assert!((factor - 1.1).abs() < 1e-12);
        assert_eq!(chain(INDEX_BASE, factor).to_string(), "1100.00");
    }

    #[test]
    fn no_overlap_has_no_factor() {
        assert_eq!(tornqvist_factor(&cells(&[("ROSE", 1, 1)]), &cells(&[("LILY", 1, 1)])), None);
    }

    #[test]
    fn cells_outside_the_overlap_do_not_count() {
        let before = cells(&[("ROSE", 10_000, 100), ("LILY", 99_999, 7)]);
        let after = cells(&[("ROSE", 11_000, 100), ("TULIP", 123, 4)]);
        assert!((tornqvist_factor(&before, &after).unwrap() - 1.1).abs() < 1e-12);
    }

    #[test]
    fn categories_map_to_sub_indices() {
        assert!(IndexCode::Sfci.covers(Category::Other));
        assert!(!IndexCode::SfciCut.covers(Category::Other));
        assert!(IndexCode::SfciPot.covers(Category::PottedPlant));
        assert!(IndexCode::SfciFol.covers(Category::Foliage));
        assert_eq!(IndexCode::parse("SFCI-FOL"), Some(IndexCode::SfciFol));
        assert_eq!(INDEX_BASE.to_string(), "1000.00");
    }
}
