//! A participant's money position in the core: credit limit, exposure and the day's running
//! totals. `available = credit_limit − exposure`, where exposure is unsettled purchases plus their
//! fees plus the credit reserved by open buy orders (protocol section 8). The core refuses whatever
//! would take exposure over the limit; clearing settles it at the end of the day.

use crate::reject::Reject;
use crate::types::Fen;
use serde::{Deserialize, Serialize};

/// What an open buy order holds: its `price × quantity` (exposure) and the fee headroom.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    pub principal: Fen,
    pub fee: Fen,
}

impl Hold {
    pub const NONE: Hold = Hold { principal: Fen::ZERO, fee: Fen::ZERO };

    pub fn total(self) -> Fen {
        Fen(self.principal.0 + self.fee.0)
    }

    /// `self − other`, field by field (may be negative: an order that shrank).
    pub fn minus(self, other: Hold) -> Hold {
        Hold { principal: Fen(self.principal.0 - other.principal.0), fee: Fen(self.fee.0 - other.fee.0) }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub credit_limit: Fen,
    /// Unsettled purchases today, amount plus buyer fees.
    pub purchases: Fen,
    /// Credit reserved by open buy orders: `price × quantity` of what is still open (protocol
    /// section 7); part of exposure.
    pub reserved: Fen,
    /// Headroom kept free for the buyer fees those open orders may still incur (see
    /// `FeeSchedule::buy_fee_bound`). Not exposure — nothing is owed yet — but credit checks leave
    /// it free, so a fill's fee can never take exposure over the limit.
    pub fee_hold: Fen,
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

    /// Everything open buy orders hold: their `price × quantity` plus the fee headroom.
    pub fn held(&self) -> Fen {
        Fen(self.reserved.0 + self.fee_hold.0)
    }

    pub fn available(&self) -> Fen {
        Fen(self.credit_limit.0 - self.exposure().0)
    }

    /// Refuses `cost` unless it fits the available credit. Something that costs nothing (a sell
    /// order, a market order's zero reservation) always fits: after the operator lowers a limit
    /// below the exposure, `available` is negative, and that must stop purchases, not sales.
    pub fn check_fits(&self, cost: Fen, what: &str) -> Result<(), Reject> {
        let usable = Fen(self.available().0 - self.fee_hold.0);
        if cost.0 > 0 && cost.0 > usable.0 {
            return Err(Reject::credit_limit(format!("{what} costs {cost} but only {usable} of credit is available")));
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

    pub fn reserve(&mut self, hold: Hold) {
        self.reserved.0 += hold.principal.0;
        self.fee_hold.0 += hold.fee.0;
    }

    pub fn release(&mut self, hold: Hold) {
        self.reserved.0 -= hold.principal.0;
        self.fee_hold.0 -= hold.fee.0;
        assert!(self.reserved.0 >= 0 && self.fee_hold.0 >= 0, "reserved credit went negative");
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
        account.reserve(Hold { principal: Fen(2_000), fee: Fen(0) });
        assert_eq!(account.exposure(), Fen(5_050));
        assert_eq!(account.available(), Fen(4_950));
        assert!(account.check_fits(Fen(4_950), "it").is_ok());
        assert_eq!(account.check_fits(Fen(4_951), "it").unwrap_err().code, crate::reject::RejectCode::CreditLimit);
        account.settle_day();
        assert_eq!(account.exposure(), Fen(2_000));
    }
}
