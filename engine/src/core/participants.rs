//! The participant table: ids, names, roles, whether active, the token's hash and the account.
//! Participants are interned to a `Pk` (their index) so hot paths never touch strings.

use crate::command::{Actor, Roles};
use crate::core::credit::{Account, Hold};
use crate::core::limits::CREDIT_LIMIT_MAX;
use crate::reject::Reject;
use crate::types::{Code, Fen, Pk};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Participant {
    pub pk: Pk,
    pub id: Code,
    pub name: String,
    pub roles: Roles,
    pub active: bool,
    pub token_hash: [u8; 32],
    /// A buyer seat's firm: the seat buys on the firm's credit (protocol section 4).
    pub firm: Option<Pk>,
    /// A seat's cap on its own purchases in a day; `None`: only the firm's credit bounds it.
    pub daily_limit: Option<Fen>,
    /// A seat's account tracks the seat's own purchases and holds, with the daily limit as its
    /// `credit_limit`; the firm's account carries them too.
    pub account: Account,
    /// Counts the limits need on every command, kept here so checking them costs nothing:
    /// lots consigned today, open book orders, book orders accepted today.
    pub lots_today: u32,
    pub orders_open: u32,
    pub orders_today: u32,
}

/// Which role a request needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Operator,
    Grower,
    Buyer,
    Logistics,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::Operator => "operator",
            Role::Grower => "grower",
            Role::Buyer => "buyer",
            Role::Logistics => "logistics",
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Participants {
    table: Vec<Participant>,
    by_id: BTreeMap<Code, Pk>,
}

impl Participants {
    pub fn register(
        &mut self,
        id: Code,
        name: String,
        roles: Roles,
        credit_limit: Fen,
        token_hash: [u8; 32],
        seat: Option<(Pk, Option<Fen>)>,
    ) -> Result<Pk, Reject> {
        if self.by_id.contains_key(&id) || id.as_str() == "operator" {
            return Err(Reject::duplicate(format!("participant id {id} is already registered")));
        }
        let pk = Pk(self.table.len() as u32);
        let (firm, daily_limit) = seat.map_or((None, None), |(firm, limit)| (Some(firm), limit));
        let credit_limit =
            if firm.is_some() { Fen(daily_limit.map_or(CREDIT_LIMIT_MAX, |l| l.0)) } else { credit_limit };
        self.table.push(Participant {
            pk,
            id,
            name,
            roles,
            active: true,
            token_hash,
            firm,
            daily_limit,
            account: Account { credit_limit, ..Account::default() },
            lots_today: 0,
            orders_open: 0,
            orders_today: 0,
        });
        self.by_id.insert(id, pk);
        Ok(pk)
    }

    pub fn lookup(&self, id: &Code) -> Result<Pk, Reject> {
        self.by_id.get(id).copied().ok_or_else(|| Reject::not_found(format!("no participant {id}")))
    }

    pub fn get(&self, pk: Pk) -> &Participant {
        &self.table[pk.0 as usize]
    }

    pub fn get_mut(&mut self, pk: Pk) -> &mut Participant {
        &mut self.table[pk.0 as usize]
    }

    pub fn account_mut(&mut self, pk: Pk) -> &mut Account {
        &mut self.table[pk.0 as usize].account
    }

    /// The participant whose money a purchase by `pk` moves: its firm for a seat, else itself.
    pub fn payer(&self, pk: Pk) -> Pk {
        self.get(pk).firm.unwrap_or(pk)
    }

    /// Whether a purchase costing `cost` fits: a seat's own daily limit first (the error names
    /// it), then the credit of whoever pays.
    pub fn check_purchase(&self, pk: Pk, cost: Fen, what: &str) -> Result<(), Reject> {
        let p = self.get(pk);
        if let Some(firm) = p.firm {
            if let Some(limit) = p.daily_limit {
                let usable = Fen(p.account.available().0 - p.account.fee_hold.0);
                if cost.0 > 0 && cost.0 > usable.0 {
                    return Err(Reject::credit_limit(format!(
                        "{what} costs {cost} but seat {} has only {usable} left of its daily_limit {limit}",
                        p.id
                    )));
                }
            }
            let f = self.get(firm);
            return f.account.check_fits(cost, what).map_err(|reject| {
                Reject::credit_limit(format!("{} (the credit of firm {}, shared by its seats)", reject.message, f.id))
            });
        }
        p.account.check_fits(cost, what)
    }

    /// The accounts a purchase or hold of `pk` moves: its own, and its firm's for a seat.
    fn buyer_accounts(&mut self, pk: Pk, mut change: impl FnMut(&mut Account)) {
        change(self.account_mut(pk));
        if let Some(firm) = self.get(pk).firm {
            change(self.account_mut(firm));
        }
    }

    /// A purchase by `pk` (clock award, presale, book fill): exposure until the day settles.
    pub fn buy(&mut self, pk: Pk, amount: Fen, fee: Fen) {
        self.buyer_accounts(pk, |a| a.buy(amount, fee));
    }

    /// Undoes `buy` (a voided award).
    pub fn unbuy(&mut self, pk: Pk, amount: Fen, fee: Fen) {
        self.buyer_accounts(pk, |a| a.unbuy(amount, fee));
    }

    /// Credit held by `pk`'s open buy orders.
    pub fn reserve(&mut self, pk: Pk, hold: Hold) {
        self.buyer_accounts(pk, |a| a.reserve(hold));
    }

    pub fn release(&mut self, pk: Pk, hold: Hold) {
        self.buyer_accounts(pk, |a| a.release(hold));
    }

    /// The seats of firm `firm`.
    pub fn seats_of(&self, firm: Pk) -> impl Iterator<Item = &Participant> {
        self.table.iter().filter(move |p| p.firm == Some(firm))
    }

    pub fn iter(&self) -> impl Iterator<Item = &Participant> {
        self.table.iter()
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut Participant> {
        self.table.iter_mut()
    }

    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// Checks that `actor` may act in `role`: the market operator may do any operator action; a
    /// participant needs the role and must be active. Returns the participant's key, if any.
    pub fn authorise(&self, actor: Actor, role: Role) -> Result<Option<Pk>, Reject> {
        match actor {
            Actor::Operator | Actor::System if role == Role::Operator => Ok(None),
            Actor::Operator | Actor::System => {
                Err(Reject::forbidden(format!("the market operator cannot act as a {}", role.name())))
            }
            Actor::Participant(pk) => {
                let p = self.table.get(pk.0 as usize).ok_or_else(|| Reject::forbidden("unknown participant"))?;
                let allowed = match role {
                    Role::Operator => p.roles.operator,
                    Role::Grower => p.roles.grower,
                    Role::Buyer => p.roles.buyer,
                    Role::Logistics => p.roles.logistics,
                };
                if !allowed {
                    return Err(Reject::forbidden(format!(
                        "participant {} does not have the {} role",
                        p.id,
                        role.name()
                    )));
                }
                if !p.active {
                    return Err(Reject::forbidden(format!("participant {} is suspended", p.id)));
                }
                Ok(Some(pk))
            }
        }
    }

    /// Checks that `actor` is an active registered participant (any role); returns its key.
    pub fn active_participant(&self, actor: Actor) -> Result<Pk, Reject> {
        match actor {
            Actor::Participant(pk) => {
                let p = self.table.get(pk.0 as usize).ok_or_else(|| Reject::forbidden("unknown participant"))?;
                if !p.active {
                    return Err(Reject::forbidden(format!("participant {} is suspended", p.id)));
                }
                Ok(pk)
            }
            _ => Err(Reject::forbidden("only a registered participant can do this")),
        }
    }
}
