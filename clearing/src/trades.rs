//! The day's trades as clearing keeps them: clock awards, presale purchases and book trades in one
//! list, each with the money in `Decimal` (already checked against the core's integer figures).
//! A trade is booked to the participant whose money it moves: a seat's purchase is its firm's.

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
    /// A presale purchase: part of a lot at the grower's price, before the clock (protocol §11).
    Presale,
    /// Never a sale: the kind of a statement line that books an accepted complaint's credit
    /// (protocol §8, §12). Last, so the bincode indices of archived lines stay put.
    Correction,
}

impl TradeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TradeKind::Clock => "clock",
            TradeKind::Book => "book",
            TradeKind::Presale => "presale",
            TradeKind::Correction => "correction",
        }
    }
}

/// One sale: an award, a presale purchase or a book trade.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TradeRecord {
    /// Position among the day's sales, from 0 (voided awards keep their number; they are left out
    /// of the archive, so archived numbers can have gaps).
    pub no: u32,
    /// The engine seq of the command that made it.
    pub seq: u64,
    pub kind: TradeKind,
    /// The lot id (clock, presale) or the trade id (book).
    pub reference: u64,
    /// The clock and round (clock only).
    pub clock: Option<u16>,
    pub round: Option<u32>,
    /// The instrument (book only).
    pub symbol: Option<Code>,
    pub product: Code,
    /// The lot's grade; book trades count under the best grade of the product's scale.
    pub grade: Grade,
    /// Whose money buys: the firm when one of its seats traded (see `seat`).
    pub buyer: Code,
    pub seller: Code,
    /// The firm's seat that traded, if a seat did (`buyer` is then its firm).
    pub seat: Option<Code>,
    /// The lot's 1-based presale purchase (presale only).
    pub presale_no: Option<u32>,
    /// Per unit.
    pub price: Decimal,
    pub units: u64,
    /// Containers bought (clock and presale).
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
    /// The participant who traded (a seat, not its firm: voids name the seat).
    pub buyer_pk: Pk,
    pub seller_pk: Pk,
    pub voided: bool,
}
