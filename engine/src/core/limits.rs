//! The market's limits (protocol section 4, `set_limits` / `get_limits`): how much of each thing
//! the single writer may hold, so that no participant within its rate limit can grow the core's
//! memory without bound. They are market state like the fees — seeded by the genesis config,
//! changed only by the journaled `set_limits` — so a replay and every replica decide the same.
//! A limit that is hit is `limit_reached`, with a message naming it.

use crate::core::book::QUANTITY_MAX;
use crate::reject::Reject;
use serde::{Deserialize, Serialize};

/// The most money (fen) one credit limit may be: 10 billion CNY. Together with the ceiling of
/// `participants_max` this keeps every day's sum of purchases, sales, turnover and fees inside
/// `i64` (10^12 × 10^6 = 10^18 < 9.2 × 10^18), so the core's running totals cannot overflow.
pub const CREDIT_LIMIT_MAX: i64 = 1_000_000_000_000;

/// Highest value `participants_max` may be set to (see `CREDIT_LIMIT_MAX`).
pub const PARTICIPANTS_CEILING: u64 = 1_000_000;

/// Highest value `level_quantity_max` may be set to: a level's total plus one more order of up
/// to `QUANTITY_MAX` then still fits a `u64`, so the book's level arithmetic cannot overflow.
pub const LEVEL_QUANTITY_CEILING: u64 = u64::MAX - QUANTITY_MAX;

/// Highest value a count limit may be set to: counts are kept in `u32`.
pub const COUNT_CEILING: u64 = u32::MAX as u64;

/// Every limit, named `x_max` (qualifier last).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarketLimits {
    /// Registered participants (never removed, so this bounds the table for good).
    pub participants_max: u64,
    /// Lots one grower may consign in one trading day.
    pub lots_per_grower_day_max: u64,
    /// Lots in the market in one trading day, every grower's together.
    pub lots_per_day_max: u64,
    /// Lots on one clock's supply line, the one on the clock included.
    pub supply_line_lots_max: u64,
    /// Standing bids one buyer holds at once, over all lots.
    pub standing_bids_per_buyer_max: u64,
    /// Open book orders one participant holds at once, over all books.
    pub orders_open_per_participant_max: u64,
    /// Open book orders in the whole market.
    pub orders_open_total_max: u64,
    /// Book orders one participant may send in one trading day (each keeps its client order id
    /// reserved until the day ends).
    pub orders_per_participant_day_max: u64,
    /// Total open quantity at one price level of one side of a book.
    pub level_quantity_max: u64,
    /// Products in the catalogue.
    pub products_max: u64,
    /// Instruments (books).
    pub instruments_max: u64,
}

impl Default for MarketLimits {
    /// High enough for the biggest hall (Kunming sells some 5,000 lots a day over a few thousand
    /// buyers; Aalsmeer has some 40 clocks), low enough that the state stays in memory.
    fn default() -> MarketLimits {
        MarketLimits {
            participants_max: 100_000,
            lots_per_grower_day_max: 10_000,
            lots_per_day_max: 1_000_000,
            supply_line_lots_max: 10_000,
            standing_bids_per_buyer_max: 10_000,
            orders_open_per_participant_max: 10_000,
            orders_open_total_max: 1_000_000,
            orders_per_participant_day_max: 1_000_000,
            level_quantity_max: 1_000_000_000_000_000,
            products_max: 10_000,
            instruments_max: 10_000,
        }
    }
}

/// `set_limits`: only the limits given change. (Also the config file's `[market_limits]`
/// table, hence unknown keys are refused.)
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarketLimitsPatch {
    pub participants_max: Option<u64>,
    pub lots_per_grower_day_max: Option<u64>,
    pub lots_per_day_max: Option<u64>,
    pub supply_line_lots_max: Option<u64>,
    pub standing_bids_per_buyer_max: Option<u64>,
    pub orders_open_per_participant_max: Option<u64>,
    pub orders_open_total_max: Option<u64>,
    pub orders_per_participant_day_max: Option<u64>,
    pub level_quantity_max: Option<u64>,
    pub products_max: Option<u64>,
    pub instruments_max: Option<u64>,
}

impl MarketLimitsPatch {
    /// The patch's slot for the limit named `name` (its wire name), if there is such a limit.
    pub fn slot_mut(&mut self, name: &str) -> Option<&mut Option<u64>> {
        Some(match name {
            "participants_max" => &mut self.participants_max,
            "lots_per_grower_day_max" => &mut self.lots_per_grower_day_max,
            "lots_per_day_max" => &mut self.lots_per_day_max,
            "supply_line_lots_max" => &mut self.supply_line_lots_max,
            "standing_bids_per_buyer_max" => &mut self.standing_bids_per_buyer_max,
            "orders_open_per_participant_max" => &mut self.orders_open_per_participant_max,
            "orders_open_total_max" => &mut self.orders_open_total_max,
            "orders_per_participant_day_max" => &mut self.orders_per_participant_day_max,
            "level_quantity_max" => &mut self.level_quantity_max,
            "products_max" => &mut self.products_max,
            "instruments_max" => &mut self.instruments_max,
            _ => return None,
        })
    }
}

impl MarketLimits {
    /// The wire names and values, in the order the protocol notes list them.
    pub fn named(&self) -> [(&'static str, u64); 11] {
        [
            ("participants_max", self.participants_max),
            ("lots_per_grower_day_max", self.lots_per_grower_day_max),
            ("lots_per_day_max", self.lots_per_day_max),
            ("supply_line_lots_max", self.supply_line_lots_max),
            ("standing_bids_per_buyer_max", self.standing_bids_per_buyer_max),
            ("orders_open_per_participant_max", self.orders_open_per_participant_max),
            ("orders_open_total_max", self.orders_open_total_max),
            ("orders_per_participant_day_max", self.orders_per_participant_day_max),
            ("level_quantity_max", self.level_quantity_max),
            ("products_max", self.products_max),
            ("instruments_max", self.instruments_max),
        ]
    }

    /// The highest value a limit may take; see the constants above for why.
    pub fn ceiling(name: &str) -> u64 {
        match name {
            "participants_max" => PARTICIPANTS_CEILING,
            "level_quantity_max" => LEVEL_QUANTITY_CEILING,
            _ => COUNT_CEILING,
        }
    }

    /// Checks every limit is between 1 and its ceiling.
    pub fn validate(&self) -> Result<(), Reject> {
        for (name, value) in self.named() {
            let ceiling = MarketLimits::ceiling(name);
            if value == 0 || value > ceiling {
                return Err(Reject::bad_request(format!("{name} must be between 1 and {ceiling}")));
            }
        }
        Ok(())
    }

    /// These limits with the patch's given ones changed, validated; `self` is left alone.
    pub fn patched(&self, patch: &MarketLimitsPatch) -> Result<MarketLimits, Reject> {
        let mut next = *self;
        let pairs = [
            (&mut next.participants_max, patch.participants_max),
            (&mut next.lots_per_grower_day_max, patch.lots_per_grower_day_max),
            (&mut next.lots_per_day_max, patch.lots_per_day_max),
            (&mut next.supply_line_lots_max, patch.supply_line_lots_max),
            (&mut next.standing_bids_per_buyer_max, patch.standing_bids_per_buyer_max),
            (&mut next.orders_open_per_participant_max, patch.orders_open_per_participant_max),
            (&mut next.orders_open_total_max, patch.orders_open_total_max),
            (&mut next.orders_per_participant_day_max, patch.orders_per_participant_day_max),
            (&mut next.level_quantity_max, patch.level_quantity_max),
            (&mut next.products_max, patch.products_max),
            (&mut next.instruments_max, patch.instruments_max),
        ];
        for (slot, value) in pairs {
            if let Some(value) = value {
                *slot = value;
            }
        }
        next.validate()?;
        Ok(next)
    }
}

/// Refuses one more of something when `held` already is the limit `max` named `name`. Lowering a
/// limit below what is held keeps what is there and refuses more until it drops under.
pub fn check_room(name: &str, max: u64, held: u64, adding: u64) -> Result<(), Reject> {
    match held.checked_add(adding) {
        Some(total) if total <= max => Ok(()),
        _ => Err(limit_reached(name, max)),
    }
}

/// `limit_reached`, the message naming the limit and its value.
pub fn limit_reached(name: &str, max: u64) -> Reject {
    Reject::limit_reached(format!("{name} ({max}) reached"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reject::RejectCode;

    #[test]
    fn defaults_are_valid_and_a_patch_changes_only_what_it_names() {
        let limits = MarketLimits::default();
        limits.validate().unwrap();
        let patch = MarketLimitsPatch { products_max: Some(3), ..MarketLimitsPatch::default() };
        let next = limits.patched(&patch).unwrap();
        assert_eq!(next.products_max, 3);
        assert_eq!(next.participants_max, limits.participants_max);
    }

    #[test]
    fn zero_and_over_the_ceiling_are_refused_naming_the_limit() {
        let limits = MarketLimits::default();
        let zero = MarketLimitsPatch { supply_line_lots_max: Some(0), ..MarketLimitsPatch::default() };
        assert!(limits.patched(&zero).unwrap_err().message.contains("supply_line_lots_max"));
        let huge = MarketLimitsPatch { participants_max: Some(PARTICIPANTS_CEILING + 1), ..Default::default() };
        assert!(limits.patched(&huge).unwrap_err().message.contains("participants_max"));
    }

    #[test]
    fn every_named_limit_has_a_patch_slot() {
        let mut patch = MarketLimitsPatch::default();
        for (name, value) in MarketLimits::default().named() {
            *patch.slot_mut(name).unwrap_or_else(|| panic!("{name}")) = Some(value);
        }
        assert_eq!(
            MarketLimits { products_max: 1, ..MarketLimits::default() }.patched(&patch),
            Ok(MarketLimits::default())
        );
        assert!(patch.slot_mut("lots_max").is_none());
    }

    #[test]
    fn room_is_checked_without_overflow() {
        assert!(check_room("x_max", 2, 1, 1).is_ok());
        let err = check_room("x_max", 2, 2, 1).unwrap_err();
        assert_eq!(err.code, RejectCode::LimitReached);
        assert_eq!(err.message, "x_max (2) reached");
        assert!(check_room("x_max", u64::MAX, u64::MAX, 1).is_err());
    }
}
