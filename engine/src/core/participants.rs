//! The participant table: ids, names, roles, whether active, the token's hash and the account.
//! Participants are interned to a `Pk` (their index) so hot paths never touch strings.

use crate::command::{Actor, Roles};
use crate::core::credit::Account;
use crate::reject::Reject;
use crate::types::{Code, Pk};
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
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::Operator => "operator",
            Role::Grower => "grower",
            Role::Buyer => "buyer",
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
        credit_limit: crate::types::Fen,
        token_hash: [u8; 32],
    ) -> Result<Pk, Reject> {
        if self.by_id.contains_key(&id) || id.as_str() == "operator" {
            return Err(Reject::duplicate(format!("participant id {id} is already registered")));
        }
        let pk = Pk(self.table.len() as u32);
        self.table.push(Participant {
            pk,
            id,
            name,
            roles,
            active: true,
            token_hash,
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
