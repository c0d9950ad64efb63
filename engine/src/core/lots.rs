//! Lots: one grower's consignment of one product and grade, its status, and the container
//! arithmetic that must always balance: `sold + remaining + unsold = containers`.

use crate::command::MasterData;
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

/// A presale offer: part of a lot at the grower's fixed price before the clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresaleOffer {
    pub price: Fen,
    pub containers: u32,
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
    /// Variety, stem length, maturity, packaging, base, batch, harvest day.
    pub master: MasterData,
    /// The clock whose supply line holds it, once assigned.
    pub clock: Option<ClockId>,
    /// Its 1-based place in its clock's auction order of the day, fixed once assigned.
    pub position: Option<u32>,
    pub start_price: Option<Fen>,
    /// The grower's open presale offer (protocol section 11); its containers stay in `remaining`.
    pub presale: Option<PresaleOffer>,
    /// Presale purchases so far: the next is number `presales + 1`.
    pub presales: u32,
    /// What its clock and presale sales that stand came to: its cell's share of the day, which
    /// `end_of_day` adds up into the cells' VWAPs (kept here, beside `sold`, so a sale touches
    /// no other map).
    pub sales: crate::core::market::CellVolume,
    /// Rounds run so far; the next round is `rounds + 1`, also after a halt.
    pub rounds: u32,
    /// The grower's quality index when the lot was consigned, in hundredths (protocol section
    /// 12): the index moves only at `end_of_day`, when the day's lots leave, so it is current.
    pub qi: Option<u32>,
}

impl Lot {
    /// The least a bid may take: `min_purchase`, or all that remains when less remains.
    pub fn least_purchase(&self) -> u32 {
        self.min_purchase.min(self.remaining)
    }

    /// Ends the lot: whatever remains is unsold (an open presale offer closes with it); the
    /// status says how it went.
    pub fn finish(&mut self) {
        self.presale = None;
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
        if let Some(offer) = self.presale {
            assert!(
                offer.containers > 0 && offer.containers <= self.remaining,
                "lot {} offers more than it has",
                self.id.0
            );
        }
    }
}
