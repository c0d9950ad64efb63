//! Corrections (protocol §8, §12): an accepted complaint's credit, booked on the day the operator
//! decided it — not on the day of the purchase, which may be settled already. The credited buyer
//! (the firm, when one of its seats filed) gets `+credit`, the seller pays `−credit`, the market's
//! fees stay as they were: one balanced ledger entry whose market posting is zero, so every day's
//! `Σ net + fees = 0` keeps holding.

use crate::ledger::{Account, EntryKind, LedgerEntry, Posting};
use crate::money::round_money;
use crate::statement::StatementLine;
use crate::trades::TradeKind;
use huashi_engine::core::catalogue::Grade;
use huashi_engine::core::dispatch::DispatchRef;
use huashi_engine::types::{Code, EngineTime, Side};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// One accepted credit, as booked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Correction {
    /// Position among the day's corrections, from 0.
    pub no: u32,
    /// The engine seq of the decision.
    pub seq: u64,
    pub complaint: u64,
    /// The purchase complained about.
    pub reference: DispatchRef,
    pub product: Code,
    /// The lot's grade; a book trade's counts under its product's best grade, as on statements.
    pub grade: Grade,
    /// Who is credited: the firm when a seat filed, else the buyer itself.
    pub payer: Code,
    /// The seat that filed, when one did.
    pub seat: Option<Code>,
    /// Who pays: the lot's grower or the book trade's seller.
    pub seller: Code,
    /// The complained units (containers × units per container; a book trade's units).
    pub units: u64,
    /// Positive: the operator only books credits above zero.
    pub credit: Decimal,
    pub ts: EngineTime,
}

impl Correction {
    /// The credit per complained unit, half-even to the fen: informative only, since `amount` is
    /// the exact credit, which need not be a whole number of fen per unit.
    pub fn price(&self) -> Decimal {
        round_money(self.credit / Decimal::from(self.units.max(1)))
    }

    /// The line on the credited buyer's statement (`Side::Buy`) or on the seller's (`Side::Sell`).
    pub fn line(&self, side: Side) -> StatementLine {
        let (amount, seat) = match side {
            Side::Buy => (self.credit, self.seat),
            Side::Sell => (-self.credit, None),
        };
        StatementLine {
            kind: TradeKind::Correction,
            reference: self.complaint,
            product: self.product,
            grade: self.grade,
            side,
            price: self.price(),
            units: self.units,
            amount,
            fee: Decimal::new(0, 2),
            round: None,
            ts: self.ts,
            seat,
        }
    }

    /// The ledger entry: the payer credited, the seller debited, the market untouched.
    /// `trade_kind` is the kind of the purchase complained about; `reference` the complaint id.
    pub fn entry(&self) -> LedgerEntry {
        let trade_kind = match self.reference {
            DispatchRef::Clock { .. } => TradeKind::Clock,
            DispatchRef::Presale { .. } => TradeKind::Presale,
            DispatchRef::Book(_) => TradeKind::Book,
        };
        LedgerEntry {
            no: 0,
            seq: self.seq,
            kind: EntryKind::Correction,
            trade_kind,
            reference: self.complaint,
            trade_no: self.no,
            postings: [
                Posting { account: Account::Participant(self.payer), amount: self.credit },
                Posting { account: Account::Participant(self.seller), amount: -self.credit },
                Posting { account: Account::Market, amount: Decimal::new(0, 2) },
            ],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use huashi_engine::types::LotId;

    fn correction(credit: Decimal, units: u64, seat: Option<&'static str>) -> Correction {
        Correction {
            no: 0,
            seq: 9,
            complaint: 4,
            reference: DispatchRef::Clock { lot: LotId(3), round: 1, award: 2 },
            product: Code::from_static("ROSE"),
            grade: Grade::A1,
            payer: Code::from_static("F1"),
            seat: seat.map(Code::from_static),
            seller: Code::from_static("G1"),
            units,
            credit,
            ts: EngineTime(5),
        }
    }

    #[test]
    fn a_correction_credits_the_payer_and_debits_the_seller_and_balances() {
        let c = correction(Decimal::new(1_000, 2), 3, Some("S1"));
        let (buy, sell) = (c.line(Side::Buy), c.line(Side::Sell));
        assert_eq!((buy.amount, sell.amount), (Decimal::new(1_000, 2), Decimal::new(-1_000, 2)));
        assert_eq!((buy.seat, sell.seat), (Some(Code::from_static("S1")), None));
        assert_eq!((buy.kind.as_str(), buy.reference, buy.units, buy.fee), ("correction", 4, 3, Decimal::ZERO));
        // 10.00 / 3 units = 3.333… per unit, shown to the fen; the amount stays exact.
        assert_eq!(buy.price.to_string(), "3.33");
        let entry = c.entry();
        assert!(entry.balances());
        assert_eq!((entry.kind, entry.trade_kind, entry.reference), (EntryKind::Correction, TradeKind::Clock, 4));
    }
}
