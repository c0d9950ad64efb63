//! What the market keeps about a live book order beside the book itself — its owner, its client
//! order id, its terms, the credit it holds, when it was accepted — and `OrderStore`, which keeps
//! them for every live order with the two lookups the rules need: by order id (the books report
//! by id) and by owner and client order id (cancels and amends name the client's id). The book
//! rules around them are in `trading.rs`.
//!
//! Layout, for a deep book's memory and cache: one 64-byte slot per live order in a slab (a
//! `BTreeMap<OrderId, OrderMeta>` took about 200 bytes an order, and the client-id map as much
//! again), two [`SlotTable`]s of 8-byte entries, symbols interned to a number, client order ids of
//! up to 20 characters packed into 16 bytes ([`ClientKey`]), longer ones kept whole on the side.
//! Deterministic: the tables hash with fixed functions and are never iterated; whatever reaches
//! output (snapshots, the state hash, `get_orders`) is sorted by order id first.

use crate::core::book::{OrderType, TimeInForce};
use crate::core::client_ids::ClientKey;
use crate::core::credit::Hold;
use crate::core::slot_table::{hash_words, SlotTable};
use crate::types::{Code, EngineTime, Fen, OrderId, Pk, Side};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
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

/// A slot's `price` for an order without one (a market order).
const NO_PRICE: i64 = i64::MIN;
/// A free slot's `id` (order ids start at 1).
const FREE: u64 = 0;
/// In a slot's `client`: the id is too long to pack and sits in `long_ids` at the low 32 bits.
const LONG_CLIENT: u128 = u128::MAX << 64;

/// One live order, packed: 64 bytes.
#[derive(Clone, Copy, Debug)]
struct Slot {
    client: ClientKey,
    id: u64,
    price: i64,
    principal: i64,
    fee: i64,
    accepted_ts: u64,
    owner: u32,
    symbol: u16,
    /// Side (bit 0: sell), type (bit 1: market), time in force (bits 2–3), post-only (bit 4).
    flags: u8,
}

const _: () = assert!(std::mem::size_of::<Slot>() == 64, "an order's slot is one cache line");

fn flags(meta: &OrderMeta) -> u8 {
    let side = u8::from(meta.side == Side::Sell);
    let order_type = u8::from(meta.order_type == OrderType::Market) << 1;
    let tif = match meta.time_in_force {
        TimeInForce::Gtc => 0,
        TimeInForce::Day => 1,
        TimeInForce::Ioc => 2,
        TimeInForce::Fok => 3,
    } << 2;
    side | order_type | tif | (u8::from(meta.post_only) << 4)
}

/// Slots in chunks of [`CHUNK_SLOTS`]: growing never copies the slots already there (a vector of
/// a million 64-byte slots would copy 64 MB on the sequencer's path when it doubles) and never
/// holds more than one chunk unused (a doubled vector holds up to half its capacity unused).
#[derive(Clone, Debug, Default)]
struct Slab {
    chunks: Vec<Box<[Slot]>>,
    len: u32,
}

const CHUNK_BITS: u32 = 12;
const CHUNK_SLOTS: usize = 1 << CHUNK_BITS;
const UNUSED_SLOT: Slot = Slot {
    client: ClientKey(0),
    id: FREE,
    price: 0,
    principal: 0,
    fee: 0,
    accepted_ts: 0,
    owner: 0,
    symbol: 0,
    flags: 0,
};

impl Slab {
    fn push(&mut self, slot: Slot) -> u32 {
        let at = self.len;
        if at as usize == self.chunks.len() * CHUNK_SLOTS {
            self.chunks.push(vec![UNUSED_SLOT; CHUNK_SLOTS].into_boxed_slice());
        }
        self.len = at.checked_add(1).expect("fewer than 2^32 live orders");
        self[at] = slot;
        at
    }

    fn iter(&self) -> impl Iterator<Item = &Slot> + '_ {
        self.chunks.iter().flat_map(|chunk| chunk.iter()).take(self.len as usize)
    }

    fn heap_bytes(&self) -> usize {
        self.chunks.capacity() * std::mem::size_of::<Box<[Slot]>>()
            + self.chunks.len() * CHUNK_SLOTS * std::mem::size_of::<Slot>()
    }
}

impl std::ops::Index<u32> for Slab {
    type Output = Slot;
    #[inline]
    fn index(&self, at: u32) -> &Slot {
        &self.chunks[(at >> CHUNK_BITS) as usize][at as usize & (CHUNK_SLOTS - 1)]
    }
}

impl std::ops::IndexMut<u32> for Slab {
    #[inline]
    fn index_mut(&mut self, at: u32) -> &mut Slot {
        &mut self.chunks[(at >> CHUNK_BITS) as usize][at as usize & (CHUNK_SLOTS - 1)]
    }
}

/// The live orders' metadata (see the module documentation).
#[derive(Clone, Debug, Default)]
pub struct OrderStore {
    slots: Slab,
    free: Vec<u32>,
    by_id: SlotTable,
    by_client: SlotTable,
    /// Interned symbols: a slot keeps the index.
    symbols: Vec<Code>,
    symbol_index: BTreeMap<Code, u16>,
    /// Client order ids too long to pack, by the index a slot keeps; `None`: free.
    long_ids: Vec<Option<Code>>,
    long_free: Vec<u32>,
}

#[inline]
fn id_hash(id: OrderId) -> u64 {
    hash_words(&[id.0])
}

/// The hash of (owner, packed client order id); `long_hash` for an id too long to pack.
#[inline]
fn packed_hash(owner: Pk, key: ClientKey) -> u64 {
    let [high, low] = key.words();
    hash_words(&[owner.0 as u64, high, low])
}

fn long_hash(owner: Pk, code: &Code) -> u64 {
    let mut words = [u64::MAX, owner.0 as u64, 0, 0, 0, 0, 0];
    for (word, chunk) in words[2..].iter_mut().zip(code.as_bytes().chunks(8)) {
        let mut bytes = [0u8; 8];
        bytes[..chunk.len()].copy_from_slice(chunk);
        *word = u64::from_le_bytes(bytes);
    }
    hash_words(&words)
}

impl OrderStore {
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Heap memory held (capacity, not just what is in use).
    pub fn heap_bytes(&self) -> usize {
        self.slots.heap_bytes()
            + self.free.capacity() * 4
            + self.by_id.heap_bytes()
            + self.by_client.heap_bytes()
            + self.long_ids.capacity() * std::mem::size_of::<Option<Code>>()
            + self.long_free.capacity() * 4
    }

    #[inline]
    fn slot_of(&self, id: OrderId) -> Option<u32> {
        self.by_id.find(id_hash(id), |s| self.slots[s].id == id.0)
    }

    #[inline]
    fn slot(&self, id: OrderId) -> &Slot {
        let at = self.slot_of(id).unwrap_or_else(|| panic!("order {} is not live", id.0));
        &self.slots[at]
    }

    fn client_code(&self, slot: &Slot) -> Code {
        if slot.client.0 & LONG_CLIENT == LONG_CLIENT {
            self.long_ids[slot.client.0 as u32 as usize].expect("a live long id")
        } else {
            slot.client.unpack()
        }
    }

    fn decode(&self, slot: &Slot) -> OrderMeta {
        let f = slot.flags;
        OrderMeta {
            owner: Pk(slot.owner),
            client_order_id: self.client_code(slot),
            symbol: self.symbols[slot.symbol as usize],
            side: if f & 1 == 0 { Side::Buy } else { Side::Sell },
            order_type: if f & 2 == 0 { OrderType::Limit } else { OrderType::Market },
            price: (slot.price != NO_PRICE).then_some(Fen(slot.price)),
            time_in_force: match (f >> 2) & 3 {
                0 => TimeInForce::Gtc,
                1 => TimeInForce::Day,
                2 => TimeInForce::Ioc,
                _ => TimeInForce::Fok,
            },
            post_only: f & 16 != 0,
            reserved: Hold { principal: Fen(slot.principal), fee: Fen(slot.fee) },
            accepted_ts: EngineTime(slot.accepted_ts),
        }
    }

    /// The live order `id`, if it is one.
    pub fn get(&self, id: OrderId) -> Option<OrderMeta> {
        self.slot_of(id).map(|at| self.decode(&self.slots[at]))
    }

    /// The live order `id`; panics if it is not live (the books report only live orders).
    pub fn meta(&self, id: OrderId) -> OrderMeta {
        self.decode(self.slot(id))
    }

    /// The client order id of live order `id`.
    pub fn client_order_id(&self, id: OrderId) -> Code {
        self.client_code(self.slot(id))
    }

    /// The symbol of live order `id`.
    pub fn symbol(&self, id: OrderId) -> Code {
        self.symbols[self.slot(id).symbol as usize]
    }

    /// What a change of hold needs of live order `id` (all but its client order id, which
    /// costs an unpacking): owner, side, type, price and hold.
    pub fn hold_terms(&self, id: OrderId) -> (Pk, Side, OrderType, Option<Fen>, Hold) {
        let slot = self.slot(id);
        let side = if slot.flags & 1 == 0 { Side::Buy } else { Side::Sell };
        let order_type = if slot.flags & 2 == 0 { OrderType::Limit } else { OrderType::Market };
        let price = (slot.price != NO_PRICE).then_some(Fen(slot.price));
        (Pk(slot.owner), side, order_type, price, Hold { principal: Fen(slot.principal), fee: Fen(slot.fee) })
    }

    /// The live order `owner` placed as `client_order_id`.
    pub fn by_client(&self, owner: Pk, client_order_id: &Code) -> Option<OrderId> {
        self.by_client_packed(owner, client_order_id, ClientKey::pack(client_order_id))
    }

    /// `by_client` with the id already packed (`ClientKey::pack(client_order_id)`): a new order
    /// packs its id once for this, the day's ids and the store.
    pub fn by_client_packed(&self, owner: Pk, client_order_id: &Code, packed: Option<ClientKey>) -> Option<OrderId> {
        let hash = match packed {
            Some(key) => packed_hash(owner, key),
            None => long_hash(owner, client_order_id),
        };
        let at = self.by_client.find(hash, |s| {
            let slot = &self.slots[s];
            slot.owner == owner.0
                && match packed {
                    Some(key) => slot.client == key,
                    None => {
                        slot.client.0 & LONG_CLIENT == LONG_CLIENT
                            && self.long_ids[slot.client.0 as u32 as usize] == Some(*client_order_id)
                    }
                }
        })?;
        Some(OrderId(self.slots[at].id))
    }

    fn intern(&mut self, symbol: Code) -> u16 {
        if let Some(&at) = self.symbol_index.get(&symbol) {
            return at;
        }
        let at = u16::try_from(self.symbols.len()).expect("fewer than 65,536 instruments");
        self.symbols.push(symbol);
        self.symbol_index.insert(symbol, at);
        at
    }

    /// Adds live order `id`; its id and its owner's client order id are not live yet.
    pub fn insert(&mut self, id: OrderId, meta: &OrderMeta) {
        self.insert_packed(id, meta, ClientKey::pack(&meta.client_order_id));
    }

    /// `insert` with the client order id already packed (see `by_client_packed`).
    pub fn insert_packed(&mut self, id: OrderId, meta: &OrderMeta, packed: Option<ClientKey>) {
        assert!(id.0 != FREE, "order ids start at 1");
        debug_assert_eq!(packed, ClientKey::pack(&meta.client_order_id));
        let client = match packed {
            Some(key) => key,
            None => {
                let at = self.long_free.pop().unwrap_or_else(|| {
                    self.long_ids.push(None);
                    u32::try_from(self.long_ids.len() - 1).expect("fewer than 2^32 long ids")
                });
                self.long_ids[at as usize] = Some(meta.client_order_id);
                ClientKey(LONG_CLIENT | at as u128)
            }
        };
        let slot = Slot {
            client,
            id: id.0,
            price: meta.price.map_or(NO_PRICE, |p| p.0),
            principal: meta.reserved.principal.0,
            fee: meta.reserved.fee.0,
            accepted_ts: meta.accepted_ts.0,
            owner: meta.owner.0,
            symbol: self.intern(meta.symbol),
            flags: flags(meta),
        };
        let at = match self.free.pop() {
            Some(at) => {
                self.slots[at] = slot;
                at
            }
            None => self.slots.push(slot),
        };
        self.by_id.insert(id_hash(id), at);
        let hash = match packed {
            Some(key) => packed_hash(meta.owner, key),
            None => long_hash(meta.owner, &meta.client_order_id),
        };
        self.by_client.insert(hash, at);
    }

    /// A live order's new price and hold (an amend, a fill, new fees).
    pub fn set_terms(&mut self, id: OrderId, price: Option<Fen>, reserved: Hold) {
        let at = self.slot_of(id).unwrap_or_else(|| panic!("order {} is not live", id.0));
        let slot = &mut self.slots[at];
        slot.price = price.map_or(NO_PRICE, |p| p.0);
        slot.principal = reserved.principal.0;
        slot.fee = reserved.fee.0;
    }

    /// A live order's new hold.
    pub fn set_reserved(&mut self, id: OrderId, reserved: Hold) {
        let at = self.slot_of(id).unwrap_or_else(|| panic!("order {} is not live", id.0));
        let slot = &mut self.slots[at];
        slot.principal = reserved.principal.0;
        slot.fee = reserved.fee.0;
    }

    /// Removes live order `id`, returning what was kept about it.
    pub fn remove(&mut self, id: OrderId) -> Option<OrderMeta> {
        let at = self.slot_of(id)?;
        let meta = self.decode(&self.slots[at]);
        let slot = self.slots[at];
        let long = slot.client.0 & LONG_CLIENT == LONG_CLIENT;
        let hash =
            if long { long_hash(meta.owner, &meta.client_order_id) } else { packed_hash(meta.owner, slot.client) };
        self.by_id.remove(id_hash(id), at);
        self.by_client.remove(hash, at);
        let slot = &mut self.slots[at];
        if long {
            let long = slot.client.0 as u32;
            self.long_ids[long as usize] = None;
            self.long_free.push(long);
        }
        slot.id = FREE;
        self.free.push(at);
        Some(meta)
    }

    /// The ids of the live orders for which `keep` holds, in order-id order.
    fn ids_where(&self, keep: impl Fn(&Slot) -> bool) -> Vec<OrderId> {
        let mut ids: Vec<OrderId> =
            self.slots.iter().filter(|s| s.id != FREE && keep(s)).map(|s| OrderId(s.id)).collect();
        ids.sort_unstable();
        ids
    }

    /// Every live order, in order-id order.
    pub fn sorted(&self) -> Vec<(OrderId, OrderMeta)> {
        let mut all: Vec<(OrderId, OrderMeta)> =
            self.slots.iter().filter(|s| s.id != FREE).map(|s| (OrderId(s.id), self.decode(s))).collect();
        all.sort_unstable_by_key(|(id, _)| *id);
        all
    }

    /// `owner`'s live orders' ids, oldest first. A scan of the slab (64 bytes an order), as the
    /// book's own `orders_of` scans its orders: a per-owner index would cost every order more.
    pub fn ids_of(&self, owner: Pk) -> Vec<OrderId> {
        self.ids_where(|s| s.owner == owner.0)
    }

    /// The live buy orders that hold credit, oldest first.
    pub fn holding_buys(&self) -> Vec<OrderId> {
        self.ids_where(|s| s.flags & 1 == 0 && (s.principal, s.fee) != (0, 0))
    }
}

// Snapshots and the state hash see the orders as the ordered map they used to be:
// `OrderId → OrderMeta`, oldest first.
impl Serialize for OrderStore {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.sorted().iter().map(|(id, meta)| (id, meta)))
    }
}

impl<'de> Deserialize<'de> for OrderStore {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<OrderStore, D::Error> {
        struct StoreVisitor;
        impl<'de> serde::de::Visitor<'de> for StoreVisitor {
            type Value = OrderStore;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a map of order ids to live orders")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<OrderStore, A::Error> {
                let mut store = OrderStore::default();
                while let Some((id, meta)) = map.next_entry::<OrderId, OrderMeta>()? {
                    if id.0 == FREE || store.slot_of(id).is_some() {
                        return Err(serde::de::Error::custom(format!("order {} is invalid or twice", id.0)));
                    }
                    if store.by_client(meta.owner, &meta.client_order_id).is_some() {
                        return Err(serde::de::Error::custom(format!(
                            "client order id {} is live twice",
                            meta.client_order_id
                        )));
                    }
                    store.insert(id, &meta);
                }
                Ok(store)
            }
        }
        deserializer.deserialize_map(StoreVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(owner: u32, client: &str, side: Side, price: Option<i64>) -> OrderMeta {
        OrderMeta {
            owner: Pk(owner),
            client_order_id: Code::parse(client, Code::BYTES_MAX).unwrap(),
            symbol: Code::from_static("ROSE-A"),
            side,
            order_type: if price.is_some() { OrderType::Limit } else { OrderType::Market },
            price: price.map(Fen),
            time_in_force: TimeInForce::Day,
            post_only: true,
            reserved: Hold { principal: Fen(price.unwrap_or(0) * 3), fee: Fen(5) },
            accepted_ts: EngineTime(42),
        }
    }

    #[test]
    fn the_store_agrees_with_ordered_maps_under_churn() {
        let mut store = OrderStore::default();
        let mut model: BTreeMap<OrderId, OrderMeta> = BTreeMap::new();
        let long = "L".repeat(30);
        let mut x: u64 = 99;
        for n in 1..20_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if x.is_multiple_of(3) && !model.is_empty() {
                let victim = *model.keys().nth((x as usize / 3) % model.len()).unwrap();
                let gone = model.remove(&victim).unwrap();
                assert_eq!(store.remove(victim), Some(gone));
                assert_eq!(store.by_client(gone.owner, &gone.client_order_id), None);
                continue;
            }
            let client = if x.is_multiple_of(11) { format!("{long}{n}") } else { format!("c{n}") };
            let side = if x.is_multiple_of(2) { Side::Buy } else { Side::Sell };
            let m = meta((x % 4) as u32, &client, side, (!x.is_multiple_of(5)).then_some(1_000 + (x % 50) as i64));
            store.insert(OrderId(n), &m);
            model.insert(OrderId(n), m);
            if n % 7 == 0 {
                let hold = Hold { principal: Fen(n as i64), fee: Fen(1) };
                store.set_reserved(OrderId(n), hold);
                model.get_mut(&OrderId(n)).unwrap().reserved = hold;
            }
        }
        assert_eq!(store.len(), model.len());
        for (id, m) in &model {
            assert_eq!(store.get(*id), Some(*m));
            assert_eq!(store.by_client(m.owner, &m.client_order_id), Some(*id));
            assert_eq!(store.by_client(Pk(m.owner.0 + 10), &m.client_order_id), None);
        }
        assert_eq!(store.sorted(), model.iter().map(|(i, m)| (*i, *m)).collect::<Vec<_>>());
        // Serialised exactly as the ordered map was, and back.
        let bytes = bincode::serialize(&store).unwrap();
        assert_eq!(bytes, bincode::serialize(&model).unwrap());
        let back: OrderStore = bincode::deserialize(&bytes).unwrap();
        assert_eq!(back.sorted(), store.sorted());
        let owner = Pk(2);
        let own: Vec<OrderId> = model.iter().filter(|(_, m)| m.owner == owner).map(|(i, _)| *i).collect();
        assert_eq!(store.ids_of(owner), own);
    }
}
