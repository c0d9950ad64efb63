//! A book's logical content — header plus resting orders — as the snapshot stores it and as the
//! state hash reads it. Internal indexes never reach a snapshot: loading rebuilds them.

use super::ladder::Slot;
use super::{BookState, OrderBook, Payload, TimeInForce, QUANTITY_MAX};
use crate::types::{Fen, OrderId, Pk, Side};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Everything about a book except its orders.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookHeader {
    pub tick: Fen,
    pub band_pct: u32,
    pub state: BookState,
    pub last_trade: Option<Fen>,
    pub last_close: Option<Fen>,
    /// The placement sequence the next queued order gets.
    pub next_seq: u64,
}

/// One resting order with everything that decides its future: its place in time is `seq`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestingOrder {
    pub id: OrderId,
    pub owner: Pk,
    pub side: Side,
    pub price: Fen,
    pub leaves: u64,
    pub tif: TimeInForce,
    pub post_only: bool,
    pub seq: u64,
}

/// A snapshot of a book: the header and the resting orders in priority order (bids best first,
/// then asks best first, each level in time order).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookImage {
    pub header: BookHeader,
    pub orders: Vec<RestingOrder>,
}

/// The state hash: a fixed 64-bit mix over the header and then each resting order in priority
/// order. Both the book and the reference book feed it the same words, so equal content gives
/// equal hashes whatever the data layout.
pub struct BookHasher {
    state: u64,
    orders: u64,
}

impl BookHasher {
    pub fn new(header: &BookHeader) -> BookHasher {
        let mut hasher = BookHasher { state: 0x6875_6173_6869_0001, orders: 0 };
        hasher.word(header.tick.0 as u64);
        hasher.word(u64::from(header.band_pct));
        hasher.word(header.state as u64);
        for price in [header.last_trade, header.last_close] {
            hasher.word(price.map_or(0, |p| 1 + p.0 as u64));
        }
        hasher.word(header.next_seq);
        hasher
    }

    pub fn order(&mut self, order: &RestingOrder) {
        self.orders += 1;
        self.word(order.id.0);
        self.word(u64::from(order.owner.0));
        self.word(order.side as u64);
        self.word(order.price.0 as u64);
        self.word(order.leaves);
        self.word(order.tif as u64);
        self.word(u64::from(order.post_only));
        self.word(order.seq);
    }

    pub fn finish(mut self) -> u64 {
        self.word(self.orders);
        self.state
    }

    /// splitmix64's finaliser over the running state: every input bit reaches every output bit.
    fn word(&mut self, x: u64) {
        let mut z = (self.state ^ x).wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        self.state = z ^ (z >> 31);
    }
}

impl OrderBook {
    /// The book's content in snapshot form.
    pub fn image(&self) -> BookImage {
        let mut orders = Vec::with_capacity(self.resting_count());
        self.for_each_resting(|order| orders.push(order));
        BookImage { header: self.header(), orders }
    }

    /// Rebuilds a book from a snapshot, checking it: a corrupt image is an error, never a book
    /// that breaks its invariants later.
    pub fn from_image(image: &BookImage) -> Result<OrderBook, String> {
        OrderBook::from_image_with(image, &[])
    }

    /// `from_image`, the orders carrying `payloads` (by order id, in the image's order): each
    /// order gets its payload as it is placed, not by a lookup afterwards (a million random
    /// lookups were a tenth of loading a deep book).
    fn from_image_with(image: &BookImage, payloads: &[(OrderId, Payload)]) -> Result<OrderBook, String> {
        let header = &image.header;
        if header.tick.0 <= 0 {
            return Err(format!("tick {} is not positive", header.tick.0));
        }
        let mut book = OrderBook::new(header.tick, header.band_pct);
        book.state = header.state;
        book.last_trade = header.last_trade;
        book.last_close = header.last_close;
        book.next_seq = header.next_seq;
        // Within a level, time priority is ascending `seq`; queueing in `seq` order restores
        // every level exactly.
        let mut carried = payloads.iter().peekable();
        let mut orders: Vec<(RestingOrder, Option<Payload>)> = image
            .orders
            .iter()
            .map(|order| (*order, carried.next_if(|(id, _)| *id == order.id).map(|(_, payload)| *payload)))
            .collect();
        if let Some((id, _)) = carried.next() {
            return Err(format!("payload of order {}: no such resting order, or out of order", id.0));
        }
        orders.sort_unstable_by_key(|(order, _)| order.seq);
        let mut previous_seq = None;
        for (order, payload) in &orders {
            let id = order.id.0;
            if order.price.0 <= 0 || order.price.0 % book.tick != 0 {
                return Err(format!("order {id}: price {} is off the grid", order.price.0));
            }
            if order.leaves == 0 || order.leaves > QUANTITY_MAX {
                return Err(format!("order {id}: open quantity {} is invalid", order.leaves));
            }
            if !order.tif.rests() {
                return Err(format!("order {id}: {:?} orders never rest", order.tif));
            }
            if order.seq >= header.next_seq || previous_seq == Some(order.seq) {
                return Err(format!("order {id}: placement sequence {} is invalid", order.seq));
            }
            if book.index.get(id, &book.arena).is_some() {
                return Err(format!("order {id} appears twice"));
            }
            // Keys are unique per owner unless the owner files hashes (it confirms matches).
            if let Some(payload) = payload.filter(|p| p.key[0] != Payload::HASHED) {
                if book.arena.find_client(order.owner.0, payload.key, |_| true).is_some() {
                    return Err(format!("order {id}: its owner's key is on another order too"));
                }
            }
            previous_seq = Some(order.seq);
            let mut slot = Slot::new(id, order.leaves, order.owner.0, order.side, order.tif, order.post_only);
            slot.seq = order.seq;
            let idx = book.arena.alloc(slot, payload.as_ref());
            book.index.insert(id, idx);
            let (ladder, arena) = book.ladder_and_arena(order.side);
            ladder.push_back(arena, idx, order.price.0);
        }
        Ok(book)
    }
}

impl OrderBook {
    /// The payloads of the resting orders that carry one, in priority order.
    fn payloads(&self) -> Vec<(OrderId, Payload)> {
        let mut payloads = Vec::new();
        for ladder in [&self.bids, &self.asks] {
            ladder.for_each_in_priority_at(&self.arena, |idx, slot| {
                if slot.has_payload {
                    payloads.push((OrderId(slot.id), *self.arena.payload(idx)));
                }
            });
        }
        payloads
    }
}

/// A snapshot is the [`BookImage`] and the resting orders' payloads: deterministic (priority
/// order, no hash-map order) and free of arena indexes.
impl Serialize for OrderBook {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        (self.image(), self.payloads()).serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for OrderBook {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<OrderBook, D::Error> {
        let (image, payloads) = <(BookImage, Vec<(OrderId, Payload)>)>::deserialize(deserializer)?;
        OrderBook::from_image_with(&image, &payloads).map_err(serde::de::Error::custom)
    }
}
