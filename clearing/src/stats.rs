//! Market statistics: per cell (product × grade; book trades count under the best grade of the
//! product's scale) the day's open, high, low, last, VWAP per unit, units, turnover and number of
//! trades (clock, presale and book); per product the clearance of its lots (how much of what was
//! consigned sold, by presale or at the clock). Kept in integer fen, printed as `Decimal`.

use crate::money::{from_fen, share};
use huashi_engine::core::catalogue::Grade;
use huashi_engine::core::lots::Lot;
use huashi_engine::types::{div_round_half_even, Code, Day, Fen, LotId};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The unit of the statistics and of the index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct CellKey {
    pub product: Code,
    pub grade: Grade,
}

/// A cell's day so far, in fen and units.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CellDay {
    pub open: Fen,
    pub high: Fen,
    pub low: Fen,
    pub last: Fen,
    /// Σ amount, in fen.
    pub turnover: i64,
    pub units: u64,
    pub trades: u64,
}

impl CellDay {
    pub fn first(price: Fen, units: u64, amount: Fen) -> CellDay {
        CellDay { open: price, high: price, low: price, last: price, turnover: amount.0, units, trades: 1 }
    }

    pub fn add(&mut self, price: Fen, units: u64, amount: Fen) {
        self.high = self.high.max(price);
        self.low = self.low.min(price);
        self.last = price;
        self.turnover += amount.0;
        self.units += units;
        self.trades += 1;
    }

    /// Volume-weighted average price per unit, rounded half-even to the fen (exact integers).
    pub fn vwap(&self) -> Fen {
        assert!(self.units > 0, "a cell with trades has units");
        Fen(div_round_half_even(i128::from(self.turnover), i128::from(self.units)) as i64)
    }
}

/// The public `stats` message for one cell.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CellStats {
    pub product: Code,
    pub grade: Grade,
    pub day: Day,
    /// `None` only when every trade of the cell was voided (an award undone).
    pub open: Option<Decimal>,
    pub high: Option<Decimal>,
    pub low: Option<Decimal>,
    pub last: Option<Decimal>,
    /// Σ amount / Σ units, half-even to 0.01.
    pub vwap: Option<Decimal>,
    pub units: u64,
    pub turnover: Decimal,
    pub trades: u64,
}

impl CellStats {
    pub fn of(key: CellKey, day: Day, cell: Option<&CellDay>) -> CellStats {
        let price = |f: fn(&CellDay) -> Fen| cell.map(|c| from_fen(f(c)));
        CellStats {
            product: key.product,
            grade: key.grade,
            day,
            open: price(|c| c.open),
            high: price(|c| c.high),
            low: price(|c| c.low),
            last: price(|c| c.last),
            vwap: price(CellDay::vwap),
            units: cell.map_or(0, |c| c.units),
            turnover: from_fen(Fen(cell.map_or(0, |c| c.turnover))),
            trades: cell.map_or(0, |c| c.trades),
        }
    }
}

/// A lot as clearing follows it through the day: what was consigned and how it ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LotRecord {
    pub lot_id: u64,
    pub grower: Code,
    pub product: Code,
    pub grade: Grade,
    pub units_per_container: u32,
    pub containers: u32,
    /// The reserve (secret to the grower and the operator: the archive is not public).
    pub min_price: Decimal,
    pub origin: String,
    /// Containers sold, at the clock or by presale (voided awards given back).
    pub sold: u32,
    /// Of `sold`, the containers sold by presale before the clock.
    pub presold: u32,
    /// Containers that ended unsold (a round below the reserve, or unfinished at the day's end).
    pub unsold: u32,
    /// Containers withdrawn by the operator.
    pub withdrawn: u32,
    /// Containers still for sale (zero once the day is settled).
    pub open: u32,
}

impl LotRecord {
    pub fn of(lot: &Lot) -> LotRecord {
        LotRecord {
            lot_id: lot.id.0,
            grower: lot.grower_id,
            product: lot.product,
            grade: lot.grade,
            units_per_container: lot.units_per_container,
            containers: lot.containers,
            min_price: from_fen(lot.min_price),
            origin: lot.origin.clone(),
            sold: lot.sold,
            // A lot is consigned before any presale of it.
            presold: 0,
            unsold: lot.unsold,
            withdrawn: 0,
            open: lot.remaining,
        }
    }

    pub fn check(&self) {
        assert_eq!(
            self.sold + self.unsold + self.withdrawn + self.open,
            self.containers,
            "lot {} lost containers in clearing",
            self.lot_id
        );
    }
}

/// One product's clock clearance for the day: containers consigned and what became of them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProductClearance {
    pub product: Code,
    pub lots: u32,
    pub consigned: u64,
    pub sold: u64,
    pub unsold: u64,
    pub withdrawn: u64,
    /// Still for sale (zero after the day's end).
    pub open: u64,
    /// `sold / consigned`, half-even to 4 places.
    pub sold_share: Decimal,
    /// `unsold / consigned`; withdrawn containers are counted apart.
    pub unsold_share: Decimal,
    pub withdrawn_share: Decimal,
}

/// Per-product clearance over a day's lots, in alphabetical order of product code.
pub fn clearance(lots: &BTreeMap<LotId, LotRecord>) -> Vec<ProductClearance> {
    let mut by_product: BTreeMap<Code, [u64; 6]> = BTreeMap::new();
    for lot in lots.values() {
        let row = by_product.entry(lot.product).or_default();
        row[0] += 1;
        row[1] += u64::from(lot.containers);
        row[2] += u64::from(lot.sold);
        row[3] += u64::from(lot.unsold);
        row[4] += u64::from(lot.withdrawn);
        row[5] += u64::from(lot.open);
    }
    let mut rows: Vec<ProductClearance> = by_product
        .into_iter()
        .map(|(product, [lots, consigned, sold, unsold, withdrawn, open])| ProductClearance {
            product,
            lots: lots as u32,
            consigned,
            sold,
            unsold,
            withdrawn,
            open,
            sold_share: share(sold, consigned),
            unsold_share: share(unsold, consigned),
            withdrawn_share: share(withdrawn, consigned),
        })
        .collect();
    rows.sort_by(|a, b| a.product.as_str().cmp(b.product.as_str()));
    rows
}

/// `/api/market`: the day's cells and the clock clearance per product.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarketStats {
    pub day: Day,
    pub cells: Vec<CellStats>,
    pub products: Vec<ProductClearance>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vwap_is_turnover_over_units_half_even() {
        let mut cell = CellDay::first(Fen(100), 3, Fen(300));
        cell.add(Fen(101), 1, Fen(101));
        // 401 / 4 = 100.25 fen → 100
        assert_eq!(cell.vwap(), Fen(100));
        cell.add(Fen(102), 4, Fen(408));
        // 809 / 8 = 101.125 → 101
        assert_eq!(cell.vwap(), Fen(101));
        assert_eq!((cell.open, cell.high, cell.low, cell.last), (Fen(100), Fen(102), Fen(100), Fen(102)));
    }

    #[test]
    fn a_cell_at_one_price_has_that_price_as_vwap() {
        let mut cell = CellDay::first(Fen(357), 20, Fen(7_140));
        cell.add(Fen(357), 13, Fen(4_641));
        assert_eq!(cell.vwap(), Fen(357));
    }
}
