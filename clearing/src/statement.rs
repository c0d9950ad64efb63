//! Statements (protocol section 8): one participant's day — a line per sale it bought or sold,
//! the totals, and `net = total_sold − commission − total_bought − fees + corrections`, what the
//! market pays it (negative: what it pays the market).
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
    /// The lot id (clock, presale) or the trade id (book); `ref` on the wire.
    #[serde(rename = "ref")]
    pub reference: u64,
    pub product: Code,
    /// Book trades count under the best grade of the product's scale.
    pub grade: Grade,
    pub side: Side,
    /// Per unit.
    pub price: Decimal,
    pub units: u64,
    pub amount: Decimal,
    /// The buyer fee on a buy, the commission on a sale.
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
    /// The sum of the day's `correction` lines (issue 15); zero until corrections exist.
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
    /// Totals the lines.
    pub fn from_lines(participant: Code, day: Day, fee_schedule: FeeSchedule, lines: Vec<StatementLine>) -> Statement {
        let totals = Totals::of(&lines);
        let corrections = Decimal::new(0, 2);
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
            && self.net == totals.net() + self.corrections
    }
}

#[derive(Default)]
struct Totals {
    bought: Decimal,
    sold: Decimal,
    fees: Decimal,
    commission: Decimal,
}

impl Totals {
    fn of(lines: &[StatementLine]) -> Totals {
        let mut totals = Totals {
            bought: Decimal::new(0, 2),
            sold: Decimal::new(0, 2),
            fees: Decimal::new(0, 2),
            commission: Decimal::new(0, 2),
        };
        for line in lines {
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
