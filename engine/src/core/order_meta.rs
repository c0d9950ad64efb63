//! What the market keeps about a live book order beside the book's own record of it — its client
//! order id, the credit it holds, when it was accepted — and how: in the book's slot for the
//! order, as its [`Payload`], so that a live order costs the market no store and no second id
//! index (issue 16: a million resting orders took 165 bytes each in the whole market, the
//! market's own copy of the order, its id index and its client-id index 98 of them). The rest of
//! [`OrderMeta`] is the book's (owner, side, price, time in force, post-only) or follows from which
//! book holds the order (its symbol); only limit orders rest. `OrderStore` keeps what a payload
//! cannot: client order ids too long to pack. The book rules around them are in `trading.rs`.
//!
//! A payload: `key` is the client order id packed into 16 bytes ([`ClientKey`]) or, for one of
//! over 20 characters, a marker word and a hash of it (the whole id is in `long_ids`, and a match
//! by key is confirmed there); `data` is `[accepted_ts, held principal, held fee]`. Each book
//! files its payloads' keys in their owner's client index, so the client-id lookup (cancels and
//! amends name the client's id) asks each book, and an owner's orders are listed from it.

use crate::core::book::{OrderType, Payload, RestingOrder, TimeInForce};
use crate::core::client_ids::ClientKey;
use crate::core::credit::Hold;
use crate::core::slot_table::hash_words;
use crate::types::{Code, EngineTime, Fen, OrderId, Pk, Side};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What the market keeps about a live book order beside the book itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderMeta {
    pub owner: Pk,
    pub client_order_id: Code,
    pub symbol: Code,
    pub side: Side,
    pub order_type: OrderType,
    pub price: Option<Fen>,
    pub time_in_force: TimeInForce,
    pub post_only: bool,
    /// Credit held for the open quantity (buy orders only).
    pub reserved: Hold,
    /// When the order was accepted: `get_orders` reports it.
    pub accepted_ts: EngineTime,
}

/// A payload key's first word for a client order id too long to pack, whose key is a hash: a
/// packed key's first word holds its length (at most 20) in its top five bits, so it is never
/// all ones.
const LONG_KEY: u64 = Payload::HASHED;

/// The payload key of a client order id (`packed`: `ClientKey::pack(code)`).
pub fn client_key(code: &Code, packed: Option<ClientKey>) -> [u64; 2] {
    match packed {
        Some(key) => key.words(),
        None => {
            let mut words = [0u64; 5];
            for (word, chunk) in words.iter_mut().zip(code.as_bytes().chunks(8)) {
                let mut bytes = [0u8; 8];
                bytes[..chunk.len()].copy_from_slice(chunk);
                *word = u64::from_le_bytes(bytes);
            }
            [LONG_KEY, hash_words(&words)]
        }
    }
}

/// The credit a payload says its order holds.
pub fn held(payload: &Payload) -> Hold {
    Hold { principal: Fen(payload.data[1] as i64), fee: Fen(payload.data[2] as i64) }
}

/// Records in a payload's data the credit its order now holds.
pub fn set_held(data: &mut [u64; 3], hold: Hold) {
    data[1] = hold.principal.0 as u64;
    data[2] = hold.fee.0 as u64;
}

/// The client order ids of live orders too long to pack (the payloads keep only their hash).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct OrderStore {
    long_ids: BTreeMap<OrderId, Code>,
}

impl OrderStore {
    /// Heap memory held (an estimate: a B-tree entry and its share of a node).
    pub fn heap_bytes(&self) -> usize {
        self.long_ids.len() * (std::mem::size_of::<(OrderId, Code)>() + 16)
    }

    /// Keeps the client order id of new order `id`, too long to pack.
    pub fn remember_long(&mut self, id: OrderId, code: Code) {
        self.long_ids.insert(id, code);
    }

    /// The payload a new order carries (`packed`: `ClientKey::pack` of its client order id, which
    /// `remember_long` keeps if that is `None`).
    pub fn payload(&self, meta: &OrderMeta, packed: Option<ClientKey>) -> Payload {
        debug_assert_eq!(packed, ClientKey::pack(&meta.client_order_id));
        let mut data = [meta.accepted_ts.0, 0, 0];
        set_held(&mut data, meta.reserved);
        Payload { key: client_key(&meta.client_order_id, packed), data }
    }

    /// Order `id` is no longer live.
    pub fn forget(&mut self, id: OrderId, payload_key: [u64; 2]) {
        if payload_key[0] == LONG_KEY {
            self.long_ids.remove(&id);
        }
    }

    /// Whether order `id`, found under the key of `code`, is the order of that client order id
    /// (a long id's key is a hash: the whole id confirms it).
    pub fn confirms(&self, id: OrderId, code: &Code, packed: Option<ClientKey>) -> bool {
        packed.is_some() || self.long_ids.get(&id) == Some(code)
    }

    /// The client order id of live order `id`, whose payload key is `key`.
    pub fn client_code(&self, id: OrderId, key: [u64; 2]) -> Code {
        if key[0] == LONG_KEY {
            *self.long_ids.get(&id).expect("a live long client order id is kept")
        } else {
            ClientKey::from_words(key).unpack()
        }
    }

    /// A resting order's metadata from its book's record and payload.
    pub fn decode(&self, symbol: Code, order: &RestingOrder, payload: &Payload) -> OrderMeta {
        OrderMeta {
            owner: order.owner,
            client_order_id: self.client_code(order.id, payload.key),
            symbol,
            side: order.side,
            order_type: OrderType::Limit,
            price: Some(order.price),
            time_in_force: order.tif,
            post_only: order.post_only,
            reserved: held(payload),
            accepted_ts: EngineTime(payload.data[0]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip_client_ids_and_holds() {
        let mut store = OrderStore::default();
        for (n, client) in ["c1", "ABCDEFGHIJ-abcdefgh_", &"L".repeat(30), &"L".repeat(36)].into_iter().enumerate() {
            let code = Code::parse(client, Code::BYTES_MAX).unwrap();
            let packed = ClientKey::pack(&code);
            let meta = OrderMeta {
                owner: Pk(3),
                client_order_id: code,
                symbol: Code::from_static("ROSE-A"),
                side: Side::Buy,
                order_type: OrderType::Limit,
                price: Some(Fen(1_234)),
                time_in_force: TimeInForce::Gtc,
                post_only: true,
                reserved: Hold { principal: Fen(1_234 * 7), fee: Fen(9) },
                accepted_ts: EngineTime(42 + n as u64),
            };
            let id = OrderId(10 + n as u64);
            let payload = store.payload(&meta, packed);
            if packed.is_none() {
                store.remember_long(id, code);
            }
            assert_eq!(payload.key, client_key(&code, packed));
            assert_eq!(payload.key[0] == LONG_KEY, packed.is_none(), "{client}");
            assert!(store.confirms(id, &code, packed));
            assert!(!store.confirms(OrderId(99), &code, packed) || packed.is_some());
            let resting = RestingOrder {
                id,
                owner: meta.owner,
                side: meta.side,
                price: Fen(1_234),
                leaves: 7,
                tif: meta.time_in_force,
                post_only: true,
                seq: 0,
            };
            assert_eq!(store.decode(meta.symbol, &resting, &payload), meta);
            store.forget(id, payload.key);
            assert!(packed.is_some() || !store.confirms(id, &code, packed));
        }
        assert!(store.long_ids.is_empty());
        // Two long ids that share a prefix have different keys.
        let a = Code::parse(&format!("{}a", "L".repeat(30)), Code::BYTES_MAX).unwrap();
        let b = Code::parse(&format!("{}b", "L".repeat(30)), Code::BYTES_MAX).unwrap();
        assert_ne!(client_key(&a, None), client_key(&b, None));
    }
}
