//! Statements (protocol section 8): one participant's day — a line per sale it bought or sold,
//! the totals, and `net = total_sold − commission − total_bought − fees + corrections`, what the
//! market pays it (negative: what it pays the market).
//!
//! A `correction` line books an accepted complaint's credit on the day it was decided: `side` buy
//! on the credited buyer's statement (amount +credit), sell on the seller's (−credit), `fee` 0,
//! `ref` the complaint id. It counts in `corrections` and in `net`, never in the other totals.
//!
//! A buyer firm's statement carries its seats' purchases, each line naming its `seat`: money is
//! the firm's (protocol §4, §8). A seat has no statement of its own, only a view of its firm's
//! (`Statement::seat_view`): the lines it traded, totalled, marked with `view_of`; views never
//! count in the conservation of money.

use crate::trades::{TradeKind, TradeRecord};
use huashi_engine::core::catalogue::Grade;
use huashi_engine::core::fees::FeeSchedule;
use huashi_engine::types::{Code, Day, EngineTime, Side};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// One sale as one side saw it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatementLine {
    pub kind: TradeKind,
    /// The lot id (clock, presale), the trade id (book) or the complaint id (correction); `ref`
    /// on the wire.
    #[serde(rename = "ref")]
    pub reference: u64,
    pub product: Code,
    /// Book trades count under the best grade of the product's scale.
    pub grade: Grade,
    pub side: Side,
    /// Per unit (a correction's: the credit per complained unit, rounded half-even to the fen).
    pub price: Decimal,
    pub units: u64,
    /// Signed on a correction line: + credited, − debited.
    pub amount: Decimal,
    /// The buyer fee on a buy, the commission on a sale; 0 on a correction.
    pub fee: Decimal,
    /// An addition to the protocol's line: the clock round (clock lines only).
    pub round: Option<u32>,
    /// An addition to the protocol's line: when the sale happened.
    pub ts: EngineTime,
    /// The firm's seat that traded (buy lines of a firm only); `None` when the firm itself did.
    pub seat: Option<Code>,
}

impl StatementLine {
    /// `record` as its buyer (`Side::Buy`) or its seller (`Side::Sell`) sees it.
    pub fn of(record: &TradeRecord, side: Side) -> StatementLine {
        StatementLine {
            kind: record.kind,
            reference: record.reference,
            product: record.product,
            grade: record.grade,
            side,
            price: record.price,
            units: record.units,
            amount: record.amount,
            fee: match side {
                Side::Buy => record.fee,
                Side::Sell => record.commission,
            },
            round: record.round,
            ts: record.ts,
            seat: match side {
                Side::Buy => record.seat,
                Side::Sell => None,
            },
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Statement {
    pub participant: Code,
    pub day: Day,
    pub lines: Vec<StatementLine>,
    pub total_bought: Decimal,
    pub total_sold: Decimal,
    /// Buyer fees paid.
    pub fees: Decimal,
    /// Commission paid on sales.
    pub commission: Decimal,
    /// The sum of the day's `correction` lines' amounts.
    pub corrections: Decimal,
    pub net: Decimal,
    /// The fees in force that day (an addition to the protocol's statement): what every line's
    /// `fee` was computed with.
    pub fee_schedule: FeeSchedule,
    /// `Some(firm)`: this is not a statement but seat `participant`'s view of firm `firm`'s — the
    /// firm's lines that the seat traded, totalled over those lines (an addition to the protocol).
    pub view_of: Option<Code>,
}

impl Statement {
    /// Totals the lines (correction lines into `corrections` only).
    pub fn from_lines(participant: Code, day: Day, fee_schedule: FeeSchedule, lines: Vec<StatementLine>) -> Statement {
        let totals = Totals::of(&lines);
        let corrections = totals.corrections;
        Statement {
            participant,
            day,
            fee_schedule,
            lines,
            total_bought: totals.bought,
            total_sold: totals.sold,
            fees: totals.fees,
            commission: totals.commission,
            corrections,
            net: totals.net() + corrections,
            view_of: None,
        }
    }

    /// Seat `seat`'s view of this, its firm's statement: the lines the seat traded, totalled over
    /// those lines, marked `view_of` the firm.
    pub fn seat_view(&self, seat: Code) -> Statement {
        assert!(self.view_of.is_none(), "a view of {}'s view", self.participant);
        let lines = self.lines.iter().filter(|l| l.seat == Some(seat)).cloned().collect();
        Statement { view_of: Some(self.participant), ..Statement::from_lines(seat, self.day, self.fee_schedule, lines) }
    }

    /// Whether this is a seat's view of its firm's statement rather than a statement.
    pub fn is_view(&self) -> bool {
        self.view_of.is_some()
    }

    /// Whether the stated totals are exactly the sums of the lines.
    pub fn totals_match_lines(&self) -> bool {
        let totals = Totals::of(&self.lines);
        self.total_bought == totals.bought
            && self.total_sold == totals.sold
            && self.fees == totals.fees
            && self.commission == totals.commission
            && self.corrections == totals.corrections
            && self.net == totals.net() + self.corrections
    }
}

#[derive(Default)]
struct Totals {
    bought: Decimal,
    sold: Decimal,
    fees: Decimal,
    commission: Decimal,
    corrections: Decimal,
}

impl Totals {
    fn of(lines: &[StatementLine]) -> Totals {
        let mut totals = Totals {
            bought: Decimal::new(0, 2),
            sold: Decimal::new(0, 2),
            fees: Decimal::new(0, 2),
            commission: Decimal::new(0, 2),
            corrections: Decimal::new(0, 2),
        };
        for line in lines {
            if line.kind == TradeKind::Correction {
                totals.corrections += line.amount;
                continue;
            }
            match line.side {
                Side::Buy => {
                    totals.bought += line.amount;
                    totals.fees += line.fee;
                }
                Side::Sell => {
                    totals.sold += line.amount;
                    totals.commission += line.fee;
                }
            }
        }
        totals
    }

    fn net(&self) -> Decimal {
        self.sold - self.commission - self.bought - self.fees
    }
}

/// Where a participant's statement for a day is.
// A lookup answers one question and is gone: boxing the statement would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StatementLookup {
    /// In memory: today's running statement (possibly with no lines yet), or a settled day not yet
    /// moved to the archive. For a seat: its view of its firm's (`Statement::view_of`).
    Found(Statement),
    /// The day was settled and moved out of memory: ask `Archive::statement` (which gives a seat
    /// its view too).
    InArchive,
    /// A settled day still in memory on which the participant had no activity, or a day that has
    /// not begun.
    NoActivity,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn line(kind: TradeKind, side: Side, amount: &str, fee: &str, seat: Option<&'static str>) -> StatementLine {
        StatementLine {
            kind,
            reference: 1,
            product: Code::from_static("ROSE"),
            grade: Grade::A1,
            side,
            price: Decimal::from_str(amount).unwrap(),
            units: 1,
            amount: Decimal::from_str(amount).unwrap(),
            fee: Decimal::from_str(fee).unwrap(),
            round: None,
            ts: EngineTime(0),
            seat: seat.map(Code::from_static),
        }
    }

    #[test]
    fn a_seats_view_totals_its_own_lines_of_the_firms_statement() {
        let lines = vec![
            line(TradeKind::Presale, Side::Buy, "31.50", "1.50", Some("S1")),
            line(TradeKind::Clock, Side::Buy, "66.50", "3.50", None),
            line(TradeKind::Book, Side::Buy, "45.00", "0.04", Some("S1")),
            line(TradeKind::Clock, Side::Buy, "10.00", "0.50", Some("S2")),
        ];
        let firm = Statement::from_lines(Code::from_static("B1"), Day(1), FeeSchedule::default(), lines);
        assert_eq!(
            (firm.total_bought, firm.fees, firm.corrections),
            (Decimal::new(15_300, 2), Decimal::new(554, 2), Decimal::ZERO)
        );
        assert!(!firm.is_view() && firm.totals_match_lines());
        let view = firm.seat_view(Code::from_static("S1"));
        assert_eq!((view.participant, view.view_of), (Code::from_static("S1"), Some(Code::from_static("B1"))));
        assert_eq!(view.lines.len(), 2);
        assert_eq!(
            (view.total_bought, view.fees, view.net),
            (Decimal::new(7_650, 2), Decimal::new(154, 2), Decimal::new(-7_804, 2))
        );
        assert!(view.is_view() && view.totals_match_lines());
        assert!(firm.seat_view(Code::from_static("S9")).lines.is_empty());
    }

    #[test]
    #[should_panic(expected = "a view of")]
    fn a_view_has_no_views() {
        let firm = Statement::from_lines(Code::from_static("B1"), Day(1), FeeSchedule::default(), Vec::new());
        firm.seat_view(Code::from_static("S1")).seat_view(Code::from_static("S1"));
    }
}
