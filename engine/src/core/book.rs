//! The continuous limit order book of one instrument (protocol section 7): price-time priority,
//! limit and market orders, the four times in force, post-only, self-trade prevention, the price
//! band and the opening call auction. Pure and deterministic: no clock, no I/O, and no hash-map
//! order ever reaches an event or a hash.
//!
//! Decisions the protocol leaves open, taken here once (the reference book follows them too):
//!
//! - **Validation order** of `submit`: book closed → quantity → price present/absent → order kind
//!   allowed in pre-open → price positive, on the tick, in the band → duplicate id → post-only.
//!   The book only knows the ids of *resting* orders; the market owns id uniqueness beyond that.
//! - **Post-only** is rejected when its price crosses the opposite best price, whoever owns that
//!   order and in pre-open too: a post-only order never rests crossed and never takes liquidity.
//!   A post-only market order is always rejected.
//! - **Fill-or-kill** counts only other owners' orders: its own orders would be removed by
//!   self-trade prevention, not traded. If it cannot fill in full it ends `Done Cancelled` and
//!   changes nothing else (no self-trade cancels either).
//! - **Price band** is measured from the reference price r at the moment the command arrives; the
//!   trades of one sweep do not move it. A market order trades as if limited at the band's edge
//!   on its adverse side (buy: r + ⌊band·r/100⌋, sell: r − ⌊band·r/100⌋): levels beyond are not
//!   touched and the rest is cancelled.
//! - **Amend** with a new price, or a higher quantity at the same price, requeues the order at
//!   the back of its (new) level and may trade as the taker. `post_only` is re-checked whenever
//!   an amend names a price. `(None, None)` and "same price, same quantity" change nothing.
//! - **Call auction** (entering `Open`): the price is chosen over every price on the tick grid,
//!   not just limit prices, so "least imbalance" and "closest to the reference" can pick a price
//!   between two limits. Pairs are matched best bid against best ask in price-time priority; the
//!   later-placed order of a pair is the taker; same-owner pairs cancel the earlier-placed order.
//!   Only if those cancels leave the book crossed is the call run again on what is left.
//! - **Events**: a `Level` event is emitted once per level a command touched, after the level's
//!   last change in that pass (coalesced), so its quantity is the level's new total. Matching
//!   emits per maker `Fill` then (if it left) its `Done`, and the `Level` when it leaves a level;
//!   the taker's own `Done` or resting `Level` comes last. A call emits its fills, then one
//!   `Level` per touched bid level (best first), then per touched ask level.
//! - **Time priority** is a placement sequence (`seq`) given whenever an order joins the back of
//!   a queue; it is part of the state hash and of snapshots, because the call auction compares
//!   it across sides.
//! - `end_of_day` leaves the book's state as it is; the market closes books separately.
//!
//! Layout (`ladder`, `id_index`): orders in one flat slab of 48-byte slots (grown in place by
//! remapping, on huge pages once 2 MB), levels in a slab with a chunked bitmap over tick offsets
//! for price order, ids in an open-addressing table of 8-byte entries. No allocation in steady
//! state; about 60–70 bytes per resting order in a deep book of the exchange-core mix. Beside
//! the slots, in an array matching never reads, the owner's [`Payload`] per order (the market's
//! per-order data: 40 bytes, and 8-byte entries of a client index), once a book has one.
//!
//! A deep book is bound by its cache misses, and those of one command follow one another (index
//! entry → slot → queue neighbours). A caller holding a batch overlaps them across commands with
//! [`OrderBook::prefetch`], a hint that changes nothing.

mod auction;
mod checks;
mod id_index;
mod image;
mod ladder;
mod matching;
#[cfg(test)]
mod tests;

pub use image::{BookHasher, BookHeader, BookImage, RestingOrder};

use crate::reject::RejectCode;
use crate::types::{Fen, OrderId, Pk, Side};
use id_index::IdIndex;
pub(crate) use ladder::DEPARTED_KEPT;
use ladder::{Arena, Ladder, Slot};
use matching::Taker;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The largest quantity one order may carry: far beyond any real order of flowers, and small
/// enough that level totals and `price × quantity` sums stay far from overflow.
pub const QUANTITY_MAX: u64 = 1_000_000_000_000;

/// From this many resting orders on, [`OrderBook::prefetch`] fetches: the slots (48 B) and the
/// index (8 B an entry, at most 80 % full) of 32,768 orders take about 2 MB, half a core's L2.
pub const LOOK_AHEAD_MIN: usize = 32_768;

/// The stages of [`OrderBook::prefetch`], by how far ahead of its command each runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prefetch {
    /// Three commands ahead: the order's entry in the id index.
    Index,
    /// Two ahead: the order's slot.
    Order,
    /// One ahead: the orders before and after it in its queue.
    Neighbours,
}

impl Prefetch {
    /// The stage due for a command `distance` commands after the one about to be applied (1 is
    /// the next).
    pub fn at(distance: usize) -> Prefetch {
        match distance {
            1 => Prefetch::Neighbours,
            2 => Prefetch::Order,
            _ => Prefetch::Index,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BookState {
    Closed,
    PreOpen,
    Open,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrderType {
    Limit,
    Market,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TimeInForce {
    Gtc,
    Day,
    Ioc,
    Fok,
}

impl TimeInForce {
    /// Whether what is left of an order with this time in force rests on the book.
    pub fn rests(self) -> bool {
        matches!(self, TimeInForce::Gtc | TimeInForce::Day)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DoneReason {
    Filled,
    Cancelled,
    Expired,
    SelfTrade,
}

/// What the book's owner keeps beside each resting order (the market: its client order id, the
/// credit it holds, when it was accepted), in the order's arena slot, so that the owner needs no
/// store and no id index of its own. `key` is filed with the order's owner in the book's client
/// index ([`OrderBook::find_by_client`]) and stays as given while the order rests; `data` is the
/// owner's to change ([`OrderBook::payload_data_mut`]). The book never reads either: it keeps
/// them, reports them, and snapshots them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payload {
    /// Unique per owner among their resting orders, unless its first word is [`Payload::HASHED`]:
    /// then it is a hash, which two orders may share (the owner confirms a match).
    pub key: [u64; 2],
    pub data: [u64; 3],
}

impl Payload {
    /// A key's first word that marks it a hash (see `key`).
    pub const HASHED: u64 = u64::MAX;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewOrder {
    pub id: OrderId,
    pub owner: Pk,
    pub side: Side,
    pub order_type: OrderType,
    /// `Some` for limit orders, `None` for market orders.
    pub price: Option<Fen>,
    pub quantity: u64,
    pub tif: TimeInForce,
    pub post_only: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BookEvent {
    /// One execution. The taker is the incoming (aggressing) order; in the opening call auction
    /// the later-placed order of the pair counts as taker.
    Fill {
        price: Fen,
        quantity: u64,
        maker: OrderId,
        maker_owner: Pk,
        maker_side: Side,
        maker_leaves: u64,
        taker: OrderId,
        taker_owner: Pk,
        taker_leaves: u64,
    },
    /// An order left the book (or an incoming order ended without resting). `cancelled` = the
    /// open quantity removed without trading (0 when Filled).
    Done { order: OrderId, owner: Pk, side: Side, reason: DoneReason, cancelled: u64 },
    /// A price level's new total open quantity on one side (0 = level removed).
    Level { side: Side, price: Fen, quantity: u64 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BookReject {
    /// The book is closed, or an IOC/FOK/market order arrived during pre-open.
    NotOpen,
    PostOnlyWouldTrade,
    PriceOffTick,
    PriceNotPositive,
    PriceOutOfBand,
    QuantityZero,
    /// Over [`QUANTITY_MAX`].
    QuantityTooLarge,
    UnknownOrder,
    DuplicateOrderId,
    MissingPrice,
    UnexpectedPrice,
    /// Reserved for the market; the book never returns it (a FOK that cannot fill is accepted
    /// and ends `Done Cancelled`).
    WouldNotFill,
}

impl BookReject {
    pub fn code(&self) -> RejectCode {
        match self {
            BookReject::NotOpen | BookReject::PostOnlyWouldTrade | BookReject::WouldNotFill => RejectCode::InvalidState,
            BookReject::PriceOffTick | BookReject::PriceNotPositive | BookReject::PriceOutOfBand => {
                RejectCode::PriceInvalid
            }
            BookReject::QuantityZero | BookReject::QuantityTooLarge => RejectCode::QuantityInvalid,
            BookReject::UnknownOrder => RejectCode::NotFound,
            BookReject::DuplicateOrderId => RejectCode::Duplicate,
            BookReject::MissingPrice | BookReject::UnexpectedPrice => RejectCode::BadRequest,
        }
    }

    pub fn message(&self) -> &'static str {
        match self {
            BookReject::NotOpen => "book is not open for this order",
            BookReject::PostOnlyWouldTrade => "post_only order would trade",
            BookReject::PriceOffTick => "price is not a multiple of the tick",
            BookReject::PriceNotPositive => "price must be positive",
            BookReject::PriceOutOfBand => "price is outside the price band",
            BookReject::QuantityZero => "quantity must be positive",
            BookReject::QuantityTooLarge => "quantity is too large",
            BookReject::UnknownOrder => "no such open order",
            BookReject::DuplicateOrderId => "order id already in use",
            BookReject::MissingPrice => "price is required for a limit order",
            BookReject::UnexpectedPrice => "a market order has no price",
            BookReject::WouldNotFill => "order cannot be filled",
        }
    }
}

impl fmt::Display for BookReject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for BookReject {}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderView {
    pub id: OrderId,
    pub owner: Pk,
    pub side: Side,
    pub price: Fen,
    pub leaves: u64,
    pub tif: TimeInForce,
}

/// See the module documentation for the rules and the decisions taken.
#[derive(Clone, Debug)]
pub struct OrderBook {
    tick: i64,
    band_pct: u32,
    state: BookState,
    last_trade: Option<Fen>,
    last_close: Option<Fen>,
    next_seq: u64,
    bids: Ladder,
    asks: Ladder,
    arena: Arena,
    index: IdIndex,
}

impl OrderBook {
    /// A closed, empty book. `band_pct` 0 means no band.
    pub fn new(tick: Fen, band_pct: u32) -> OrderBook {
        assert!(tick.0 > 0, "tick must be positive");
        OrderBook {
            tick: tick.0,
            band_pct,
            state: BookState::Closed,
            last_trade: None,
            last_close: None,
            next_seq: 0,
            bids: Ladder::new(Side::Buy, tick.0),
            asks: Ladder::new(Side::Sell, tick.0),
            arena: Arena::new(),
            index: IdIndex::default(),
        }
    }

    pub fn state(&self) -> BookState {
        self.state
    }

    pub fn tick(&self) -> Fen {
        Fen(self.tick)
    }

    pub fn band_pct(&self) -> u32 {
        self.band_pct
    }

    /// Entering `Open` from anything else first runs the call auction.
    pub fn set_state(&mut self, state: BookState, out: &mut Vec<BookEvent>) {
        self.arena.recycle();
        if state == BookState::Open && self.state != BookState::Open {
            self.uncross(out);
        }
        self.state = state;
    }

    #[inline]
    pub fn submit(&mut self, order: NewOrder, out: &mut Vec<BookEvent>) -> Result<(), BookReject> {
        self.submit_with(order, None, out)
    }

    /// `submit`, the order carrying `payload` if it rests (see [`Payload`]).
    pub fn submit_with(
        &mut self,
        order: NewOrder,
        payload: Option<&Payload>,
        out: &mut Vec<BookEvent>,
    ) -> Result<(), BookReject> {
        self.arena.recycle();
        let limit = self.check_new(&order)?;
        if self.state == BookState::PreOpen {
            self.rest_new(&order, order.quantity, payload, out);
            return Ok(());
        }
        let taker = Taker { id: order.id.0, owner: order.owner.0, side: order.side, limit };
        if order.tif == TimeInForce::Fok && self.executable(&taker, order.quantity).0 < order.quantity {
            out.push(done(&taker, DoneReason::Cancelled, order.quantity));
            return Ok(());
        }
        let remaining = self.match_incoming(&taker, order.quantity, out);
        if remaining == 0 {
            out.push(done(&taker, DoneReason::Filled, 0));
        } else if order.order_type == OrderType::Limit && order.tif.rests() {
            self.rest_new(&order, remaining, payload, out);
        } else {
            out.push(done(&taker, DoneReason::Cancelled, remaining));
        }
        Ok(())
    }

    /// Look-ahead over a batch of commands: a deep book's command waits on a chain of cache
    /// misses (the index entry, then the order's slot, then its neighbours in the queue), each
    /// known only once the one before has arrived. A caller holding the next commands of a batch
    /// (the sequencer's, replay's) calls this for the order a later command names, one stage
    /// per command ahead: `Index` three commands ahead, `Order` two, `Neighbours` one. Each stage
    /// reads only what the stage before fetched. A hint: it changes nothing, and a stale one
    /// (the order gone meanwhile) only wastes the fetch. A book of fewer than
    /// [`LOOK_AHEAD_MIN`] orders sits in a core's cache already, and there the hint would only
    /// cost (a quarter more time at 1,000 orders), so it returns at once.
    #[inline]
    pub fn prefetch(&self, id: OrderId, stage: Prefetch) {
        if !self.looks_ahead() {
            return;
        }
        match stage {
            Prefetch::Index => self.index.prefetch(id.0),
            Prefetch::Order => {
                if let Some(idx) = self.index.probable(id.0) {
                    self.arena.prefetch(idx);
                }
            }
            Prefetch::Neighbours => {
                let Some(idx) = self.index.probable(id.0) else { return };
                let Some(slot) = self.arena.get(idx).filter(|slot| slot.id == id.0) else { return };
                self.arena.prefetch(slot.prev);
                self.arena.prefetch(slot.next);
            }
        }
    }

    /// [`OrderBook::prefetch`] for the order `owner` filed under `key` in its payload: the market
    /// names the orders of a cancel or an amend by client order id, and finds them through the
    /// client index before this book's own index. `Index` fetches the client index's entry,
    /// `Order` the slot and its payload (both read to confirm the match), `Neighbours` the
    /// order's id-index entry (the command then finds the order by id) and its neighbours in the
    /// queue. A hint, under the same rules as `prefetch`.
    #[inline]
    pub fn prefetch_client(&self, owner: Pk, key: [u64; 2], stage: Prefetch) {
        if !self.looks_ahead() {
            return;
        }
        match stage {
            Prefetch::Index => self.arena.prefetch_client(owner.0, key),
            Prefetch::Order => {
                if let Some(idx) = self.arena.probable_client(owner.0, key) {
                    self.arena.prefetch(idx);
                    self.arena.prefetch_payload(idx);
                }
            }
            Prefetch::Neighbours => {
                let Some(idx) = self.arena.probable_client(owner.0, key) else { return };
                let Some(slot) = self.arena.get(idx).filter(|slot| slot.has_payload && slot.owner == owner.0) else {
                    return;
                };
                self.index.prefetch(slot.id);
                self.arena.prefetch(slot.prev);
                self.arena.prefetch(slot.next);
            }
        }
    }

    /// Whether [`OrderBook::prefetch`] and [`OrderBook::prefetch_client`] act: the book holds at
    /// least [`LOOK_AHEAD_MIN`] orders.
    #[inline]
    pub fn looks_ahead(&self) -> bool {
        self.index.len() >= LOOK_AHEAD_MIN
    }

    /// Allowed in every state.
    pub fn cancel(&mut self, id: OrderId, out: &mut Vec<BookEvent>) -> Result<(), BookReject> {
        self.arena.recycle();
        let idx = self.index.get(id.0, &self.arena).ok_or(BookReject::UnknownOrder)?;
        self.remove_resting(idx, DoneReason::Cancelled, out);
        Ok(())
    }

    /// `leaves` is the new OPEN quantity. Lowering it keeps priority; a new price or a higher
    /// quantity requeues the order at the back of its level, and a new price may trade.
    pub fn amend(
        &mut self,
        id: OrderId,
        price: Option<Fen>,
        leaves: Option<u64>,
        out: &mut Vec<BookEvent>,
    ) -> Result<(), BookReject> {
        self.arena.recycle();
        if self.state == BookState::Closed {
            return Err(BookReject::NotOpen);
        }
        let idx = self.index.get(id.0, &self.arena).ok_or(BookReject::UnknownOrder)?;
        match leaves {
            Some(0) => return Err(BookReject::QuantityZero),
            Some(q) if q > QUANTITY_MAX => return Err(BookReject::QuantityTooLarge),
            _ => {}
        }
        let slot = &self.arena[idx];
        let (side, owner, old_leaves) = (slot.side, slot.owner, slot.leaves);
        let old_price = self.ladder(side).level(slot.level).price;
        if let Some(p) = price {
            self.check_price(p)?;
            if slot.post_only && self.crosses_opposite(side, p.0) {
                return Err(BookReject::PostOnlyWouldTrade);
            }
        }
        let new_price = price.map_or(old_price, |p| p.0);
        let new_leaves = leaves.unwrap_or(old_leaves);
        if new_price == old_price {
            if new_leaves < old_leaves {
                let (ladder, arena) = self.ladder_and_arena(side);
                let qty = ladder.reduce(arena, idx, old_leaves - new_leaves);
                out.push(BookEvent::Level { side, price: Fen(old_price), quantity: qty });
            } else if new_leaves > old_leaves {
                // The level cannot cross (the book is not crossed at a resting price while open,
                // and nothing trades before open), so this is a pure requeue: one Level event.
                let (ladder, arena) = self.ladder_and_arena(side);
                ladder.unlink(arena, idx);
                self.arena[idx].leaves = new_leaves;
                self.requeue(idx, old_price, out);
            }
            return Ok(());
        }
        let (ladder, arena) = self.ladder_and_arena(side);
        let qty = ladder.unlink(arena, idx);
        out.push(BookEvent::Level { side, price: Fen(old_price), quantity: qty });
        let remaining = if self.state == BookState::Open {
            let taker = Taker { id: id.0, owner, side, limit: new_price };
            self.match_incoming(&taker, new_leaves, out)
        } else {
            new_leaves
        };
        if remaining == 0 {
            self.index.remove(id.0, &self.arena);
            self.arena.release(idx);
            out.push(BookEvent::Done { order: id, owner: Pk(owner), side, reason: DoneReason::Filled, cancelled: 0 });
        } else {
            self.arena[idx].leaves = remaining;
            self.requeue(idx, new_price, out);
        }
        Ok(())
    }

    /// Cancels every resting order of `owner`, in order-id order; returns how many.
    pub fn cancel_owner(&mut self, owner: Pk, out: &mut Vec<BookEvent>) -> usize {
        self.arena.recycle();
        let ids = self.owner_slots(owner);
        for &(_, idx) in &ids {
            self.remove_resting(idx, DoneReason::Cancelled, out);
        }
        ids.len()
    }

    /// Expires every Day order (in order-id order); today's last trade becomes the last close.
    pub fn end_of_day(&mut self, out: &mut Vec<BookEvent>) {
        self.arena.recycle();
        for (_, idx) in self.resting_ids(|slot| slot.tif == TimeInForce::Day) {
            self.remove_resting(idx, DoneReason::Expired, out);
        }
        if let Some(last) = self.last_trade.take() {
            self.last_close = Some(last);
        }
    }

    pub fn order(&self, id: OrderId) -> Option<OrderView> {
        self.index.get(id.0, &self.arena).map(|idx| self.view(idx))
    }

    /// The owner's resting orders by order id.
    pub fn orders_of(&self, owner: Pk) -> Vec<OrderView> {
        let ids = self.owner_slots(owner);
        ids.into_iter().map(|(_, idx)| self.view(idx)).collect()
    }

    /// Up to `levels_max` levels of one side, best first.
    pub fn depth(&self, side: Side, levels_max: usize) -> Vec<(Fen, u64)> {
        let levels = self.ladder(side).iter().take(levels_max);
        levels.map(|level| (Fen(level.price), level.qty)).collect()
    }

    /// The open quantity resting at `price` on `side` (0 when there is no level).
    pub fn quantity_at(&self, side: Side, price: Fen) -> u64 {
        self.ladder(side).quantity_at(price.0)
    }

    /// How many price levels one side has.
    pub fn level_count(&self, side: Side) -> usize {
        self.ladder(side).level_count()
    }

    pub fn best(&self, side: Side) -> Option<Fen> {
        self.ladder(side).best_price().map(Fen)
    }

    /// Today's last trade, else the last close.
    pub fn reference_price(&self) -> Option<Fen> {
        self.last_trade.or(self.last_close)
    }

    pub fn last_trade(&self) -> Option<Fen> {
        self.last_trade
    }

    pub fn last_close(&self) -> Option<Fen> {
        self.last_close
    }

    /// What an incoming order of `owner` would execute right now with this limit (`None` =
    /// market, band-limited): (quantity, Σ price × quantity, saturating). Skips the owner's own
    /// orders, which self-trade prevention would cancel. `(0, 0)` unless the book is open.
    pub fn preview(&self, owner: Pk, side: Side, limit: Option<Fen>, quantity: u64) -> (u64, Fen) {
        if self.state != BookState::Open {
            return (0, Fen::ZERO);
        }
        let limit = limit.map_or_else(|| self.market_limit(side), |p| p.0);
        let taker = Taker { id: 0, owner: owner.0, side, limit };
        let (filled, amount) = self.executable(&taker, quantity);
        (filled, Fen(i64::try_from(amount).unwrap_or(i64::MAX)))
    }

    // ---- the owner's payloads (see `Payload`) ----

    /// The payload resting order `id` carries, if it is resting with one.
    pub fn payload(&self, id: OrderId) -> Option<Payload> {
        let idx = self.index.get(id.0, &self.arena)?;
        self.arena[idx].has_payload.then(|| *self.arena.payload(idx))
    }

    /// The changeable part of the payload of resting order `id`.
    pub fn payload_data_mut(&mut self, id: OrderId) -> Option<&mut [u64; 3]> {
        let idx = self.index.get(id.0, &self.arena)?;
        if !self.arena[idx].has_payload {
            return None;
        }
        Some(&mut self.arena.payload_mut(idx).data)
    }

    /// The resting order of `owner` whose payload's key is `key` and for which `is_order` holds
    /// (an owner whose keys are hashes confirms the match).
    pub fn find_by_client(
        &self,
        owner: Pk,
        key: [u64; 2],
        mut is_order: impl FnMut(OrderId) -> bool,
    ) -> Option<OrderId> {
        let idx = self.arena.find_client(owner.0, key, |slot| is_order(OrderId(slot.id)))?;
        Some(OrderId(self.arena[idx].id))
    }

    /// The orders with a payload that left the book during the last command (filled, cancelled,
    /// expired), in the order they left, with what they carried: readable until the next command.
    pub fn departed(&self) -> impl Iterator<Item = (OrderId, Payload)> + '_ {
        self.arena.departed().iter().map(|&idx| (OrderId(self.arena[idx].id), *self.arena.payload(idx)))
    }

    /// The resting orders with a payload (of `owner`, or all), by order id.
    pub fn resting_payloads(&self, owner: Option<Pk>) -> Vec<(RestingOrder, Payload)> {
        let ids = match owner {
            Some(owner) => self.owner_slots(owner),
            None => self.resting_ids(|slot| slot.has_payload),
        };
        ids.into_iter().filter(|&(_, idx)| self.arena[idx].has_payload).map(|(_, idx)| self.resting_at(idx)).collect()
    }

    /// Resting order `id` and its payload, if it rests with one.
    pub fn resting_payload(&self, id: OrderId) -> Option<(RestingOrder, Payload)> {
        let idx = self.index.get(id.0, &self.arena)?;
        self.arena[idx].has_payload.then(|| self.resting_at(idx))
    }

    fn resting_at(&self, idx: u32) -> (RestingOrder, Payload) {
        let slot = &self.arena[idx];
        (resting(self.ladder(slot.side).level(slot.level).price, slot), *self.arena.payload(idx))
    }

    pub fn resting_count(&self) -> usize {
        self.index.len()
    }

    /// Heap memory held by the book's structures (capacity, not just what is in use), its
    /// owner's payloads included.
    pub fn heap_bytes(&self) -> usize {
        self.arena.heap_bytes() + self.bids.heap_bytes() + self.asks.heap_bytes() + self.index.heap_bytes()
    }

    /// The part of `heap_bytes` that holds the owner's payloads: their pages and client index.
    pub fn payload_heap_bytes(&self) -> usize {
        self.arena.payload_heap_bytes()
    }

    /// A hash of everything that matters — state, tick, band, last prices, placement counter and
    /// every resting order in priority order — computed by [`BookHasher`], exactly as the
    /// reference book computes it.
    pub fn state_hash(&self) -> u64 {
        let mut hasher = BookHasher::new(&self.header());
        self.for_each_resting(|order| hasher.order(&order));
        hasher.finish()
    }

    // ---- resting orders ----

    fn rest_new(&mut self, order: &NewOrder, leaves: u64, payload: Option<&Payload>, out: &mut Vec<BookEvent>) {
        let price = order.price.expect("only limit orders rest").0;
        let slot = Slot::new(order.id.0, leaves, order.owner.0, order.side, order.tif, order.post_only);
        let idx = self.arena.alloc(slot, payload);
        self.index.insert(order.id.0, idx);
        self.requeue(idx, price, out);
    }

    /// Puts an (unlinked) order at the back of the level of `price` with a new placement
    /// sequence.
    fn requeue(&mut self, idx: u32, price: i64, out: &mut Vec<BookEvent>) {
        let seq = self.next_seq;
        self.next_seq += 1;
        let slot = &mut self.arena[idx];
        slot.seq = seq;
        let side = slot.side;
        let (ladder, arena) = self.ladder_and_arena(side);
        let quantity = ladder.push_back(arena, idx, price);
        out.push(BookEvent::Level { side, price: Fen(price), quantity });
    }

    /// Takes a resting order off the book: `Done` with its open quantity, then its level.
    fn remove_resting(&mut self, idx: u32, reason: DoneReason, out: &mut Vec<BookEvent>) {
        let slot = &self.arena[idx];
        let (id, owner, side, leaves) = (slot.id, slot.owner, slot.side, slot.leaves);
        let price = self.ladder(side).level(slot.level).price;
        self.index.remove(id, &self.arena);
        let (ladder, arena) = self.ladder_and_arena(side);
        let quantity = ladder.unlink(arena, idx);
        self.arena.release(idx);
        out.push(BookEvent::Done { order: OrderId(id), owner: Pk(owner), side, reason, cancelled: leaves });
        out.push(BookEvent::Level { side, price: Fen(price), quantity });
    }

    /// (id, slot) of `owner`'s resting orders, by order id: from their client index when every
    /// order carries a payload (the market's books: the cost is the owner's orders, not the
    /// book's), else by a scan of the book.
    fn owner_slots(&self, owner: Pk) -> Vec<(u64, u32)> {
        if !self.arena.all_have_payloads() {
            return self.resting_ids(|slot| slot.owner == owner.0);
        }
        let mut ids: Vec<(u64, u32)> = self.arena.client_slots(owner.0).map(|idx| (self.arena[idx].id, idx)).collect();
        ids.sort_unstable();
        ids
    }

    /// (id, slot) of the resting orders that satisfy `keep`, by order id.
    fn resting_ids(&self, keep: impl Fn(&Slot) -> bool) -> Vec<(u64, u32)> {
        let mut ids: Vec<(u64, u32)> =
            self.index.slots().filter(|&idx| keep(&self.arena[idx])).map(|idx| (self.arena[idx].id, idx)).collect();
        ids.sort_unstable();
        ids
    }

    fn view(&self, idx: u32) -> OrderView {
        let slot = &self.arena[idx];
        OrderView {
            id: OrderId(slot.id),
            owner: Pk(slot.owner),
            side: slot.side,
            price: Fen(self.ladder(slot.side).level(slot.level).price),
            leaves: slot.leaves,
            tif: slot.tif,
        }
    }

    fn ladder(&self, side: Side) -> &Ladder {
        match side {
            Side::Buy => &self.bids,
            Side::Sell => &self.asks,
        }
    }

    fn ladder_and_arena(&mut self, side: Side) -> (&mut Ladder, &mut Arena) {
        match side {
            Side::Buy => (&mut self.bids, &mut self.arena),
            Side::Sell => (&mut self.asks, &mut self.arena),
        }
    }

    fn header(&self) -> BookHeader {
        BookHeader {
            tick: Fen(self.tick),
            band_pct: self.band_pct,
            state: self.state,
            last_trade: self.last_trade,
            last_close: self.last_close,
            next_seq: self.next_seq,
        }
    }

    /// Every resting order in priority order: bids best first, then asks best first.
    fn for_each_resting(&self, mut f: impl FnMut(RestingOrder)) {
        for ladder in [&self.bids, &self.asks] {
            ladder.for_each_in_priority(&self.arena, |price, slot| f(resting(price, slot)));
        }
    }
}

fn done(taker: &Taker, reason: DoneReason, cancelled: u64) -> BookEvent {
    BookEvent::Done { order: OrderId(taker.id), owner: Pk(taker.owner), side: taker.side, reason, cancelled }
}

fn resting(price: i64, slot: &Slot) -> RestingOrder {
    RestingOrder {
        id: OrderId(slot.id),
        owner: Pk(slot.owner),
        side: slot.side,
        price: Fen(price),
        leaves: slot.leaves,
        tif: slot.tif,
        post_only: slot.post_only,
        seq: slot.seq,
    }
}
