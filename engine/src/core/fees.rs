//! The fee schedule (protocol section 8) and the exact integer fee arithmetic the core needs for
//! credit checks. Clearing repeats the arithmetic in `rust_decimal`; both round half-even per line,
//! so they agree to the fen.

use crate::types::{div_round_half_even, Fen};
use serde::{Deserialize, Serialize};

/// Rates in parts per million, so every fee is exact integer arithmetic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeeSchedule {
    /// Grower's commission on a sale, clock or book (default 5 % = 50,000 ppm).
    pub commission_ppm: u32,
    /// Buyer's fee per container bought at the clock (default 0.50).
    pub clock_fee_per_container: Fen,
    /// Buyer's fee on a book purchase (default 0.1 % = 1,000 ppm).
    pub book_fee_ppm: u32,
}

impl Default for FeeSchedule {
    fn default() -> FeeSchedule {
        FeeSchedule { commission_ppm: 50_000, clock_fee_per_container: Fen(50), book_fee_ppm: 1_000 }
    }
}

const PPM: i128 = 1_000_000;

/// The highest clock fee per container `set_fees` accepts (10,000.00).
pub const CLOCK_FEE_MAX: Fen = Fen(1_000_000);

impl FeeSchedule {
    /// Whether the schedule is one the market can charge: rates of 0–100 %, a clock fee of
    /// 0–10,000.00 per container. The message names the field.
    pub fn check(&self) -> Result<(), String> {
        if self.commission_ppm > PPM as u32 {
            return Err("commission_pct must be between 0 and 100".into());
        }
        if self.book_fee_ppm > PPM as u32 {
            return Err("book_fee_pct must be between 0 and 100".into());
        }
        if self.clock_fee_per_container.0 < 0 || self.clock_fee_per_container > CLOCK_FEE_MAX {
            return Err("clock_fee_per_container must be between 0.00 and 10000.00".into());
        }
        Ok(())
    }

    /// The grower's commission on a sale of `amount`, rounded half-even to the fen.
    pub fn commission(&self, amount: Fen) -> Fen {
        Fen(div_round_half_even(amount.0 as i128 * self.commission_ppm as i128, PPM) as i64)
    }

    /// The buyer's fee for `containers` bought at the clock (clearing's view, where the award
    /// already exists; the core uses `checked_clock_fee`).
    pub fn clock_fee(&self, containers: u32) -> Fen {
        Fen(self.clock_fee_per_container.0 * containers as i64)
    }

    /// `clock_fee`, or `None` if it overflows: the core refuses the award, never panics.
    pub fn checked_clock_fee(&self, containers: u32) -> Option<Fen> {
        self.clock_fee_per_container.0.checked_mul(containers as i64).map(Fen)
    }

    /// The buyer's fee on one book purchase of `amount`, rounded half-even to the fen.
    pub fn book_fee(&self, amount: Fen) -> Fen {
        Fen(div_round_half_even(amount.0 as i128 * self.book_fee_ppm as i128, PPM) as i64)
    }

    /// What an open buy order of `units` at limit `price` holds: `price × units` (protocol section
    /// 7) plus headroom for the largest buyer fee those units can incur however they fill. Each
    /// fill's fee is rounded half-even on its own, so a sum of fills can cost a fen or so more than
    /// one fee on the whole amount; bounding the fee per unit (`ceil(price × rate)`) keeps exposure
    /// under the limit whatever the fills look like.
    pub fn buy_hold(&self, price: Fen, units: u64) -> Option<crate::core::credit::Hold> {
        let fee_per_unit = (price.0 as i128 * self.book_fee_ppm as i128 + PPM - 1) / PPM;
        let principal = i64::try_from((price.0 as i128).checked_mul(units as i128)?).ok()?;
        let fee = i64::try_from(fee_per_unit.checked_mul(units as i128)?).ok()?;
        principal.checked_add(fee)?;
        Some(crate::core::credit::Hold { principal: Fen(principal), fee: Fen(fee) })
    }

    /// An upper bound for the cost of buying `units` for `amount` in any number of fills (a market
    /// order): each fill's fee is at most its exact fee plus one fen.
    pub fn buy_cost_bound(&self, amount: Fen, units: u64) -> Option<Fen> {
        let exact_ceil = (amount.0 as i128 * self.book_fee_ppm as i128 + PPM - 1) / PPM;
        let total = amount.0 as i128 + exact_ceil + units as i128;
        i64::try_from(total).ok().map(Fen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commission_rounds_half_even_at_the_half_fen() {
        let fees = FeeSchedule::default();
        // 5 % of 0.10 is 0.005: a tie, rounds to the even 0.00.
        assert_eq!(fees.commission(Fen(10)), Fen(0));
        // 5 % of 0.30 is 0.015: a tie, rounds to the even 0.02.
        assert_eq!(fees.commission(Fen(30)), Fen(2));
        assert_eq!(fees.commission(Fen(12_345)), Fen(617)); // 617.25
    }

    #[test]
    fn book_fee_rounds_half_even() {
        let fees = FeeSchedule::default();
        assert_eq!(fees.book_fee(Fen(500)), Fen(0)); // 0.5 fen → 0
        assert_eq!(fees.book_fee(Fen(1_500)), Fen(2)); // 1.5 fen → 2
        assert_eq!(fees.book_fee(Fen(2_500)), Fen(2)); // 2.5 fen → 2
    }

    #[test]
    fn buy_hold_covers_every_way_of_filling() {
        let fees = FeeSchedule::default();
        let price = Fen(1_499);
        let units = 37;
        let reserve = fees.buy_hold(price, units).unwrap().total();
        // Fill one unit at a time: the worst case for rounding.
        let one_by_one: i64 = (0..units).map(|_| price.0 + fees.book_fee(price).0).sum();
        assert!(one_by_one <= reserve.0);
        let at_once = price.0 * units as i64 + fees.book_fee(Fen(price.0 * units as i64)).0;
        assert!(at_once <= reserve.0);
    }
}
