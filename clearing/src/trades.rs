//! The day's trades as clearing keeps them: clock awards and book trades in one list, each with
//! the money in `Decimal` (already checked against the core's integer figures).

use huashi_engine::core::catalogue::Grade;
use huashi_engine::types::{Code, EngineTime, Pk};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// Where a sale happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TradeKind {
    /// A Dutch-clock award.
    Clock,
    /// A continuous order-book trade.
    Book,
}

impl TradeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TradeKind::Clock => "clock",
            TradeKind::Book => "book",
        }
    }
}

/// One sale: an award or a book trade.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TradeRecord {
    /// Position among the day's sales, from 0 (voided awards keep their number; they are left out
    /// of the archive, so archived numbers can have gaps).
    pub no: u32,
    /// The engine seq of the command that made it.
    pub seq: u64,
    pub kind: TradeKind,
    /// The lot id (clock) or the trade id (book).
    pub reference: u64,
    /// The clock and round (clock only).
    pub clock: Option<u16>,
    pub round: Option<u32>,
    /// The instrument (book only).
    pub symbol: Option<Code>,
    pub product: Code,
    /// The lot's grade; book trades count as `A1`.
    pub grade: Grade,
    pub buyer: Code,
    pub seller: Code,
    /// Per unit.
    pub price: Decimal,
    pub units: u64,
    /// Containers bought (clock only).
    pub containers: Option<u32>,
    pub amount: Decimal,
    /// The buyer's fee.
    pub fee: Decimal,
    /// The seller's commission.
    pub commission: Decimal,
    pub ts: EngineTime,
}

/// A sale inside the running day: the record plus what matching a void needs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Deal {
    pub record: TradeRecord,
    pub buyer_pk: Pk,
    pub seller_pk: Pk,
    pub voided: bool,
}
