//! The double-entry ledger: every award, every reversal of an award, every presale purchase and
//! every book trade is one entry of three postings — the buyer pays `amount + fee`, the seller
//! receives `amount − commission`, the market earns `fee + commission` — and each entry sums to
//! zero. The buyer's posting goes to the firm when one of its seats bought: seats hold no money.
//! An accepted complaint's credit is one more entry: the payer +credit, the seller −credit.
//!
//! Signs are from the participant's side: a positive balance is money the market owes it, a
//! negative one money it owes the market. At the end of the day a participant's balance is its
//! statement's `net`, and the market's balance is the day's fee income.

use crate::trades::TradeKind;
use huashi_engine::types::Code;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Whose money a posting moves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Account {
    /// The market's fee income (buyer fees and commissions).
    Market,
    Participant(Code),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Posting {
    pub account: Account,
    pub amount: Decimal,
}

/// What an entry books.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EntryKind {
    /// A clock award.
    Award,
    /// The reversal of a voided award: the award's postings negated.
    AwardVoided,
    /// A book trade.
    Trade,
    /// A presale purchase.
    Presale,
    /// An accepted complaint's credit (`corrections.rs`): the payer credited, the seller debited,
    /// the market's posting zero; `reference` is the complaint id, `trade_no` the day's correction
    /// number.
    Correction,
}

/// One balanced entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    /// Position in the day's ledger, from 0.
    pub no: u32,
    /// The engine seq of the command whose events it books.
    pub seq: u64,
    pub kind: EntryKind,
    pub trade_kind: TradeKind,
    /// The lot id (clock, presale) or the trade id (book).
    pub reference: u64,
    /// The day's trade number it books (see `TradeRecord::no`).
    pub trade_no: u32,
    pub postings: [Posting; 3],
}

impl LedgerEntry {
    /// The sum of its postings: zero for every entry we ever keep.
    pub fn sum(&self) -> Decimal {
        self.postings.iter().map(|p| p.amount).sum()
    }

    pub fn balances(&self) -> bool {
        self.sum().is_zero()
    }
}

/// One day's ledger: its entries in order and the running balance of every account.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ledger {
    entries: Vec<LedgerEntry>,
    balances: BTreeMap<Account, Decimal>,
}

impl Ledger {
    /// Books an entry. One that does not balance is our own bug: it never enters the books.
    pub fn post(&mut self, mut entry: LedgerEntry) {
        assert!(
            entry.balances(),
            "ledger entry for {:?} {} does not balance: {:?}",
            entry.kind,
            entry.reference,
            entry
        );
        entry.no = u32::try_from(self.entries.len()).expect("fewer than 4 G entries a day");
        for posting in &entry.postings {
            *self.balances.entry(posting.account).or_default() += posting.amount;
        }
        self.entries.push(entry);
    }

    pub fn balance(&self, account: &Account) -> Decimal {
        self.balances.get(account).copied().unwrap_or_default()
    }

    pub fn entries(&self) -> &[LedgerEntry] {
        &self.entries
    }

    pub fn into_entries(self) -> Vec<LedgerEntry> {
        self.entries
    }

    /// Every entry sums to zero, the balances sum to zero, and each balance is the sum of its
    /// postings.
    pub fn is_balanced(&self) -> bool {
        if !self.entries.iter().all(LedgerEntry::balances) {
            return false;
        }
        if !self.balances.values().copied().sum::<Decimal>().is_zero() {
            return false;
        }
        let mut recomputed: BTreeMap<Account, Decimal> = BTreeMap::new();
        for posting in self.entries.iter().flat_map(|e| e.postings.iter()) {
            *recomputed.entry(posting.account).or_default() += posting.amount;
        }
        recomputed == self.balances
    }
}

/// Checks a finished day's entries on their own (for days already out of the running ledger).
pub fn entries_balance(entries: &[LedgerEntry]) -> bool {
    entries.iter().all(LedgerEntry::balances)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn d(text: &str) -> Decimal {
        Decimal::from_str(text).unwrap()
    }

    fn entry(buyer: Decimal, seller: Decimal, market: Decimal) -> LedgerEntry {
        LedgerEntry {
            no: 0,
            seq: 1,
            kind: EntryKind::Trade,
            trade_kind: TradeKind::Book,
            reference: 7,
            trade_no: 0,
            postings: [
                Posting { account: Account::Participant(Code::from_static("B1")), amount: buyer },
                Posting { account: Account::Participant(Code::from_static("G1")), amount: seller },
                Posting { account: Account::Market, amount: market },
            ],
        }
    }

    #[test]
    fn balanced_entries_move_balances() {
        let mut ledger = Ledger::default();
        ledger.post(entry(d("-10.01"), d("9.50"), d("0.51")));
        assert_eq!(ledger.balance(&Account::Market), d("0.51"));
        assert_eq!(ledger.balance(&Account::Participant(Code::from_static("B1"))), d("-10.01"));
        assert!(ledger.is_balanced());
    }

    #[test]
    #[should_panic(expected = "does not balance")]
    fn an_unbalanced_entry_is_refused() {
        Ledger::default().post(entry(d("-10.01"), d("9.50"), d("0.50")));
    }
}
