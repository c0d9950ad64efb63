//! Money at the clearing edge: the core's integer fen turned into `Decimal` and back, half-even
//! rounding to the fen, and the fee schedule repeated in decimal arithmetic.
//!
//! The core computes every fee in integer fen (`FeeSchedule`); clearing computes it again here,
//! independently, and asserts that both agree. A disagreement means one of the two is wrong about
//! money, so it stops the process rather than publish a statement nobody can trust.

use huashi_engine::core::fees::FeeSchedule;
use huashi_engine::types::Fen;
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};

/// Money and prices carry exactly two decimal places (fen).
pub const MONEY_DP: u32 = 2;

/// `1234` fen as `12.34`, always with scale 2 so it prints as the wire wants.
pub fn from_fen(fen: Fen) -> Decimal {
    Decimal::new(fen.0, MONEY_DP)
}

/// Rounds to the fen, ties to even (protocol section 8), and pins the scale at 2.
pub fn round_money(value: Decimal) -> Decimal {
    let mut rounded = value.round_dp_with_strategy(MONEY_DP, RoundingStrategy::MidpointNearestEven);
    rounded.rescale(MONEY_DP);
    rounded
}

/// A money value back in fen. Panics if it is not a whole number of fen: every figure clearing
/// keeps has been rounded to the fen, so a fraction here is our own bug.
pub fn to_fen(value: Decimal) -> Fen {
    let mut scaled = value * Decimal::ONE_HUNDRED;
    assert!(scaled.fract().is_zero(), "{value} is not a whole number of fen");
    scaled.rescale(0);
    Fen(scaled.to_i64().unwrap_or_else(|| panic!("{value} does not fit in fen")))
}

/// The fee schedule in decimal form: rates as exact fractions, the per-container fee in CNY.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecimalFees {
    commission_rate: Decimal,
    clock_fee_per_container: Decimal,
    book_fee_rate: Decimal,
}

impl DecimalFees {
    pub fn new(schedule: &FeeSchedule) -> DecimalFees {
        DecimalFees {
            commission_rate: Decimal::new(i64::from(schedule.commission_ppm), 6),
            clock_fee_per_container: from_fen(schedule.clock_fee_per_container),
            book_fee_rate: Decimal::new(i64::from(schedule.book_fee_ppm), 6),
        }
    }

    /// The grower's commission on a sale of `amount` (clock or book).
    pub fn commission(&self, amount: Decimal) -> Decimal {
        round_money(amount * self.commission_rate)
    }

    /// The buyer's fee for `containers` bought at the clock.
    pub fn clock_fee(&self, containers: u32) -> Decimal {
        round_money(self.clock_fee_per_container * Decimal::from(containers))
    }

    /// The buyer's fee on one book purchase of `amount`.
    pub fn book_fee(&self, amount: Decimal) -> Decimal {
        round_money(amount * self.book_fee_rate)
    }
}

/// A share (`part / whole`) rounded half-even to 4 decimal places; zero when `whole` is zero.
pub fn share(part: u64, whole: u64) -> Decimal {
    let mut value = if whole == 0 {
        Decimal::ZERO
    } else {
        (Decimal::from(part) / Decimal::from(whole)).round_dp_with_strategy(4, RoundingStrategy::MidpointNearestEven)
    };
    value.rescale(4);
    value
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn d(text: &str) -> Decimal {
        Decimal::from_str(text).unwrap()
    }

    #[test]
    fn fen_converts_both_ways_with_two_places() {
        assert_eq!(from_fen(Fen(345)).to_string(), "3.45");
        assert_eq!(from_fen(Fen(300)).to_string(), "3.00");
        assert_eq!(from_fen(Fen(-5)).to_string(), "-0.05");
        assert_eq!(to_fen(d("12.34")), Fen(1234));
        assert_eq!(to_fen(d("-0.5")), Fen(-50));
    }

    #[test]
    #[should_panic(expected = "not a whole number of fen")]
    fn a_fraction_of_a_fen_is_a_bug() {
        to_fen(d("0.005"));
    }

    #[test]
    fn rounding_is_half_even_at_the_half_fen() {
        assert_eq!(round_money(d("1.055")).to_string(), "1.06");
        assert_eq!(round_money(d("1.065")).to_string(), "1.06");
        assert_eq!(round_money(d("-1.065")).to_string(), "-1.06");
        assert_eq!(round_money(d("1.0651")).to_string(), "1.07");
        assert_eq!(round_money(d("7")).to_string(), "7.00");
    }

    #[test]
    fn decimal_fees_agree_with_the_core_on_every_amount_up_to_a_thousand_yuan() {
        let schedule = FeeSchedule::default();
        let fees = DecimalFees::new(&schedule);
        for fen in 0..100_000 {
            let amount = from_fen(Fen(fen));
            assert_eq!(to_fen(fees.commission(amount)), schedule.commission(Fen(fen)), "commission on {amount}");
            assert_eq!(to_fen(fees.book_fee(amount)), schedule.book_fee(Fen(fen)), "book fee on {amount}");
        }
        for containers in 0..1_000 {
            assert_eq!(to_fen(fees.clock_fee(containers)), schedule.clock_fee(containers));
        }
    }

    #[test]
    fn shares_round_to_four_places() {
        assert_eq!(share(1, 3).to_string(), "0.3333");
        assert_eq!(share(2, 3).to_string(), "0.6667");
        assert_eq!(share(5, 5).to_string(), "1.0000");
        assert_eq!(share(0, 0).to_string(), "0.0000");
    }
}
