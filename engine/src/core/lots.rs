//! Lots: one grower's consignment of one product and grade, its status, and the container
//! arithmetic that must always balance: `sold + remaining + unsold = containers`.

use crate::core::catalogue::Grade;
use crate::types::{ClockId, Code, Day, Fen, LotId, Pk};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum LotStatus {
    Consigned,
    Queued,
    OnClock,
    Sold,
    PartlySold,
    Unsold,
    Withdrawn,
}

impl LotStatus {
    pub const ALL: [LotStatus; 7] = [
        LotStatus::Consigned,
        LotStatus::Queued,
        LotStatus::OnClock,
        LotStatus::Sold,
        LotStatus::PartlySold,
        LotStatus::Unsold,
        LotStatus::Withdrawn,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            LotStatus::Consigned => "consigned",
            LotStatus::Queued => "queued",
            LotStatus::OnClock => "on_clock",
            LotStatus::Sold => "sold",
            LotStatus::PartlySold => "partly_sold",
            LotStatus::Unsold => "unsold",
            LotStatus::Withdrawn => "withdrawn",
        }
    }
    pub fn parse(text: &str) -> Option<LotStatus> {
        LotStatus::ALL.into_iter().find(|s| s.as_str() == text)
    }
    /// A finished lot takes no more bids, assignments or standing bids.
    pub fn is_finished(self) -> bool {
        matches!(self, LotStatus::Sold | LotStatus::PartlySold | LotStatus::Unsold | LotStatus::Withdrawn)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lot {
    pub id: LotId,
    pub grower: Pk,
    pub grower_id: Code,
    pub product: Code,
    pub grade: Grade,
    pub units_per_container: u32,
    pub containers: u32,
    pub remaining: u32,
    pub sold: u32,
    pub unsold: u32,
    pub min_purchase: u32,
    /// The reserve: per unit, secret to the grower and the operator.
    pub min_price: Fen,
    pub origin: String,
    pub photo_url: String,
    pub note: String,
    pub status: LotStatus,
    pub day: Day,
    /// The clock whose supply line holds it, once assigned.
    pub clock: Option<ClockId>,
    pub start_price: Option<Fen>,
    /// Rounds run so far; the next round is `rounds + 1`, also after a halt.
    pub rounds: u32,
}

impl Lot {
    /// The least a bid may take: `min_purchase`, or all that remains when less remains.
    pub fn least_purchase(&self) -> u32 {
        self.min_purchase.min(self.remaining)
    }

    /// Ends the lot: whatever remains is unsold; the status says how it went.
    pub fn finish(&mut self) {
        self.unsold += self.remaining;
        self.remaining = 0;
        self.status = if self.sold == self.containers {
            LotStatus::Sold
        } else if self.sold > 0 {
            LotStatus::PartlySold
        } else {
            LotStatus::Unsold
        };
        self.check();
    }

    pub fn check(&self) {
        assert_eq!(self.sold + self.remaining + self.unsold, self.containers, "lot {} lost containers", self.id.0);
    }
}
