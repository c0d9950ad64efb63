//! A participant's money position in the core: credit limit, exposure and the day's running
//! totals. `available = credit_limit − exposure`, where exposure is unsettled purchases plus their
//! fees plus the credit reserved by open buy orders (protocol section 8). The core refuses whatever
//! would take exposure over the limit; clearing settles it at the end of the day.

use crate::reject::Reject;
use crate::types::Fen;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub credit_limit: Fen,
    /// Unsettled purchases today, amount plus buyer fees.
    pub purchases: Fen,
    /// Credit held by open buy orders (see `FeeSchedule::buy_reserve`).
    pub reserved: Fen,
    /// Today's running totals, reset when the day settles.
    pub bought: Fen,
    pub sold: Fen,
    pub fees: Fen,
    pub commission: Fen,
}

impl Account {
    pub fn exposure(&self) -> Fen {
        Fen(self.purchases.0 + self.reserved.0)
    }

    pub fn available(&self) -> Fen {
        Fen(self.credit_limit.0 - self.exposure().0)
    }

    /// Refuses `cost` unless it fits the available credit. Something that costs nothing (a sell
    /// order, a market order's zero reservation) always fits: after the operator lowers a limit
    /// below the exposure, `available` is negative, and that must stop purchases, not sales.
    pub fn check_fits(&self, cost: Fen, what: &str) -> Result<(), Reject> {
        if cost.0 > 0 && cost.0 > self.available().0 {
            return Err(Reject::credit_limit(format!(
                "{what} costs {cost} but only {} of credit is available",
                self.available()
            )));
        }
        Ok(())
    }

    /// A purchase (clock award or book fill) becomes exposure until the day settles.
    pub fn buy(&mut self, amount: Fen, fee: Fen) {
        self.purchases.0 += amount.0 + fee.0;
        self.bought.0 += amount.0;
        self.fees.0 += fee.0;
    }

    /// Undoes `buy` (a voided award).
    pub fn unbuy(&mut self, amount: Fen, fee: Fen) {
        self.purchases.0 -= amount.0 + fee.0;
        self.bought.0 -= amount.0;
        self.fees.0 -= fee.0;
        assert!(self.purchases.0 >= 0, "purchases went negative");
    }

    pub fn sell(&mut self, amount: Fen, commission: Fen) {
        self.sold.0 += amount.0;
        self.commission.0 += commission.0;
    }

    pub fn unsell(&mut self, amount: Fen, commission: Fen) {
        self.sold.0 -= amount.0;
        self.commission.0 -= commission.0;
    }

    pub fn reserve(&mut self, amount: Fen) {
        self.reserved.0 += amount.0;
    }

    pub fn release(&mut self, amount: Fen) {
        self.reserved.0 -= amount.0;
        assert!(self.reserved.0 >= 0, "reserved credit went negative");
    }

    /// The day is settled: purchases are paid, totals start again. Reservations of open orders stay.
    pub fn settle_day(&mut self) {
        self.purchases = Fen::ZERO;
        self.bought = Fen::ZERO;
        self.sold = Fen::ZERO;
        self.fees = Fen::ZERO;
        self.commission = Fen::ZERO;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn available_is_limit_minus_purchases_and_reservations() {
        let mut account = Account { credit_limit: Fen(10_000), ..Account::default() };
        account.buy(Fen(3_000), Fen(50));
        account.reserve(Fen(2_000));
        assert_eq!(account.exposure(), Fen(5_050));
        assert_eq!(account.available(), Fen(4_950));
        assert!(account.check_fits(Fen(4_950), "it").is_ok());
        assert_eq!(account.check_fits(Fen(4_951), "it").unwrap_err().code, crate::reject::RejectCode::CreditLimit);
        account.settle_day();
        assert_eq!(account.exposure(), Fen(2_000));
    }
}
