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
        Fen(ppm_of(amount.0, self.commission_ppm))
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
        Fen(ppm_of(amount.0, self.book_fee_ppm))
    }

    /// What an open buy order of `units` at limit `price` holds: `price × units` (protocol section
    /// 7) plus headroom for the largest buyer fee those units can incur however they fill. Each
    /// fill's fee is rounded half-even on its own, so a sum of fills can cost a fen or so more than
    /// one fee on the whole amount; bounding the fee per unit (`ceil(price × rate)`) keeps exposure
    /// under the limit whatever the fills look like.
    pub fn buy_hold(&self, price: Fen, units: u64) -> Option<crate::core::credit::Hold> {
        let fee_per_unit = ppm_ceil_of(price.0, self.book_fee_ppm);
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

/// `amount × ppm / 1,000,000`, rounded half-even: in `i64` when the product fits (any amount up
/// to 9.2 billion yuan), where dividing by the constant compiles to a multiply, instead of an
/// `i128` division call per fee on the book's fill path. The same value either way.
#[inline]
fn ppm_of(amount: i64, ppm: u32) -> i64 {
    const PPM_64: i64 = PPM as i64;
    match amount.checked_mul(i64::from(ppm)) {
        Some(product) => {
            let (quotient, remainder) = (product.div_euclid(PPM_64), product.rem_euclid(PPM_64));
            if remainder * 2 > PPM_64 || (remainder * 2 == PPM_64 && quotient % 2 != 0) {
                quotient + 1
            } else {
                quotient
            }
        }
        None => div_round_half_even(amount as i128 * ppm as i128, PPM) as i64,
    }
}

/// `(price × ppm + 999,999) / 1,000,000` as `i128` arithmetic has it (truncating), in `i64` when
/// that fits, as `ppm_of`.
#[inline]
fn ppm_ceil_of(price: i64, ppm: u32) -> i128 {
    match price.checked_mul(i64::from(ppm)).and_then(|p| p.checked_add(PPM as i64 - 1)) {
        Some(numerator) => i128::from(numerator / PPM as i64),
        None => (price as i128 * ppm as i128 + PPM - 1) / PPM,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_i64_fee_arithmetic_is_the_i128_arithmetic() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(8);
        let edges = [0, 1, -1, 499_999, 500_000, 500_001, 1_500_000, 2_500_000, i64::MAX, i64::MIN, i64::MAX / 1_000];
        let ppms = [0, 1, 999, 1_000, 50_000, 999_999, 1_000_000, u32::MAX];
        let amounts = edges.into_iter().chain((0..20_000).map(|i| match i % 3 {
            0 => rng.gen_range(-10_000_000..10_000_000),
            1 => rng.gen::<i64>() >> rng.gen_range(0..63),
            _ => rng.gen(),
        }));
        for amount in amounts.collect::<Vec<i64>>() {
            for ppm in ppms.into_iter().chain([rng.gen_range(0..=1_000_000)]) {
                let wide = amount as i128 * ppm as i128;
                assert_eq!(ppm_of(amount, ppm), div_round_half_even(wide, PPM) as i64, "{amount} × {ppm}");
                assert_eq!(ppm_ceil_of(amount, ppm), (wide + PPM - 1) / PPM, "{amount} × {ppm}");
            }
        }
    }

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
