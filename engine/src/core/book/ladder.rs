//! The data layout under the book: the arena that holds resting orders and one side's price
//! levels. Kept apart from the rules so the rules read as rules.
//!
//! Why this shape: in the exchange-core mix most commands move an order at a random depth of the
//! book. A sorted `Vec` of levels then spends its time shifting elements; here nothing shifts.
//! Levels live in a slab with stable indices and every order knows its level, so unlinking is
//! O(1). Price order comes from a bitmap over tick offsets, cut into chunks of 1,024 ticks that
//! are created on demand: finding a level by price is two array reads, and finding the next level
//! when the best one empties is a couple of bit scans.

use super::{Payload, TimeInForce};
use crate::core::huge::{prefetch, HugeBuf};
use crate::core::slot_table::{hash_words, SlotTable};
use crate::types::Side;
use std::ops::{Index, IndexMut};

/// "No slot / no level": the end of a queue or of a free list.
pub(super) const NIL: u32 = u32::MAX;

/// A resting order. The orders of one level form a doubly linked list in time priority.
///
/// 48 bytes: the price is its level's (`level`), so it is not kept twice. A deep book is bound
/// by the cache, and each byte here is paid once per resting order: 48-byte slots put 4 orders
/// where 3 of the former 64-byte ones went. Half of them straddle two cache lines, but the two
/// lines are adjacent and fetched in parallel, which costs far less than a second dependent miss.
#[derive(Clone, Copy, Debug)]
pub(super) struct Slot {
    pub id: u64,
    pub leaves: u64,
    /// Placement sequence: when the order last joined the back of a queue. Orders of one level
    /// are in ascending `seq`; the call auction compares it across sides.
    pub seq: u64,
    pub owner: u32,
    pub prev: u32,
    pub next: u32,
    /// The order's level in its side's [`Ladder`], which holds its price.
    pub level: u32,
    pub side: Side,
    pub tif: TimeInForce,
    pub post_only: bool,
    /// The order carries its owner's [`Payload`] and is in the arena's client index.
    pub has_payload: bool,
}

const _: () = assert!(std::mem::size_of::<Slot>() == 48);

impl Slot {
    /// A slot not yet on any level.
    pub fn new(id: u64, leaves: u64, owner: u32, side: Side, tif: TimeInForce, post_only: bool) -> Slot {
        Slot { id, leaves, seq: 0, owner, prev: NIL, next: NIL, level: NIL, side, tif, post_only, has_payload: false }
    }
}

/// What a slot holds before it is handed out.
const UNUSED: Slot = Slot {
    id: 0,
    leaves: 0,
    seq: 0,
    owner: 0,
    prev: NIL,
    next: NIL,
    level: NIL,
    side: Side::Buy,
    tif: TimeInForce::Gtc,
    post_only: false,
    has_payload: false,
};

/// Every resting order lives here; freed slots are threaded through `next` and reused, so a book
/// in steady state allocates nothing.
///
/// One flat array, because every dependent step of a command indexes it (id → slot → the
/// order's neighbours): an arena in pages paid a second dependent load on each. It doubles while
/// small (a copy of under 2 MB); from 2 MB on it is mapped from the kernel on huge pages and
/// grows by a sixteenth at a time in place ([`HugeBuf::grow`]: page tables are moved, not bytes),
/// so a deep book never stops the sequencer for a copy and holds at most a sixteenth unused.
///
/// Beside the slots, in an array of its own (matching never reads it, so it costs the hot path no
/// cache), each order's [`Payload`]: what the book's owner keeps per order (the market: its
/// client order id, credit hold and time of acceptance), so that the owner needs no store, and no
/// second id index, of its own. A book that has never been given a payload has no such array.
/// Orders with a payload are indexed by owner and client key (`clients`), and when they leave,
/// their slots wait in `departed` until the book's next command (see [`Arena::recycle`]) so that
/// the owner can still read what they carried.
///
/// The client index is one table per owner, not one for the book: an owner's orders are then
/// theirs to list (`get_orders`, a cancel-all) in time proportional to their own orders, where
/// a book-wide table made each such request read every order of the book (20 ms at a million, on
/// the sequencer thread). It costs the same bytes (each table holds 8-byte entries, at most four
/// fifths full) and one more load, of the owner's table header, which an active owner keeps in
/// the cache.
#[derive(Clone, Debug)]
pub(super) struct Arena {
    slots: HugeBuf<Slot>,
    /// As long as `slots`, once the first payload arrives.
    payloads: Option<HugeBuf<Payload>>,
    /// Slots handed out at least once: the next fresh slot's index.
    used: usize,
    free: u32,
    /// Slots of orders with a payload that left the book during the current command.
    departed: Vec<u32>,
    /// By owner (`Pk`): client key → slot, for the orders with a payload. `None` for an owner
    /// who never had one here.
    clients: Vec<Option<SlotTable>>,
    /// Resting orders without a payload: while there are any, an owner's orders are found by a
    /// scan (see `OrderBook::owner_slots`).
    plain: usize,
}

/// The departed list's capacity kept after a command that freed more (the book's list of slots
/// and the market's list of what they carried alike).
pub(crate) const DEPARTED_KEPT: usize = 1_024;

/// The hash an owner's client index files an order under.
#[inline]
fn client_hash(key: [u64; 2]) -> u64 {
    hash_words(&key)
}

impl Arena {
    pub fn new() -> Arena {
        Arena {
            slots: HugeBuf::new(16, UNUSED),
            payloads: None,
            used: 0,
            free: NIL,
            departed: Vec::new(),
            clients: Vec::new(),
            plain: 0,
        }
    }

    /// A slot for `slot`; with a payload, the order is also filed in the client index.
    pub fn alloc(&mut self, mut slot: Slot, payload: Option<&Payload>) -> u32 {
        slot.has_payload = payload.is_some();
        self.plain += usize::from(payload.is_none());
        let idx = if self.free != NIL {
            let idx = self.free;
            self.free = self[idx].next;
            self[idx] = slot;
            idx
        } else {
            let idx = u32::try_from(self.used).ok().filter(|&i| i != NIL).expect("order arena full");
            if self.used == self.slots.len() {
                let len = self.used;
                let grown = if self.slots.grows_in_place() { len + len / 16 } else { 2 * len };
                self.slots.grow(grown, UNUSED);
                if let Some(payloads) = &mut self.payloads {
                    payloads.grow(grown, Payload::default());
                }
            }
            self.slots[self.used] = slot;
            self.used += 1;
            idx
        };
        if let Some(payload) = payload {
            self.file_payload(idx, payload);
        }
        idx
    }

    /// Out of line, as are the other payload paths: a book without payloads (the benches'
    /// books, the peers') keeps the hot path it had.
    #[inline(never)]
    fn file_payload(&mut self, idx: u32, payload: &Payload) {
        *self.payload_mut(idx) = *payload;
        let owner = self[idx].owner as usize;
        if self.clients.len() <= owner {
            self.clients.resize_with(owner + 1, || None);
        }
        self.clients[owner].get_or_insert_with(SlotTable::default).insert(client_hash(payload.key), idx);
    }

    /// `owner`'s client index, if they ever had an order with a payload here.
    #[inline]
    fn clients_of(&self, owner: u32) -> Option<&SlotTable> {
        self.clients.get(owner as usize)?.as_ref()
    }

    /// The slots of `owner`'s resting orders with a payload, in no order.
    pub fn client_slots(&self, owner: u32) -> impl Iterator<Item = u32> + '_ {
        self.clients_of(owner).into_iter().flat_map(SlotTable::slots)
    }

    /// Whether every resting order carries a payload, and so is in its owner's client index.
    pub fn all_have_payloads(&self) -> bool {
        self.plain == 0
    }

    #[inline]
    pub fn payload(&self, idx: u32) -> &Payload {
        &self.payloads.as_ref().expect("a slot with a payload")[idx as usize]
    }

    /// The payload array, made as long as the slots when the first payload arrives.
    #[inline]
    pub fn payload_mut(&mut self, idx: u32) -> &mut Payload {
        let len = self.slots.len();
        &mut self.payloads.get_or_insert_with(|| HugeBuf::new(len, Payload::default()))[idx as usize]
    }

    /// Hands the departed slots back to the free list: called as each command on the book
    /// starts, once the owner has read what the previous command's departed orders carried.
    #[inline]
    pub fn recycle(&mut self) {
        if !self.departed.is_empty() {
            self.recycle_departed();
        }
    }

    #[inline(never)]
    fn recycle_departed(&mut self) {
        while let Some(idx) = self.departed.pop() {
            self[idx].has_payload = false;
            self[idx].next = self.free;
            self.free = idx;
        }
        // A command that emptied a deep book (an end of day, a suspension) keeps no list its size.
        self.departed.shrink_to(DEPARTED_KEPT);
    }

    /// The slots of the orders with a payload that left during the current command, in the
    /// order they left.
    pub fn departed(&self) -> &[u32] {
        &self.departed
    }

    /// The slot of the live order of `owner` filed under `key` for which `is_order` holds.
    pub fn find_client(&self, owner: u32, key: [u64; 2], mut is_order: impl FnMut(&Slot) -> bool) -> Option<u32> {
        self.clients_of(owner)?.find(client_hash(key), |idx| self.payload(idx).key == key && is_order(&self[idx]))
    }

    /// Look-ahead: asks the cache for where the client index files `owner`'s `key`.
    #[inline]
    pub fn prefetch_client(&self, owner: u32, key: [u64; 2]) {
        if let Some(clients) = self.clients_of(owner) {
            clients.prefetch(client_hash(key));
        }
    }

    /// Look-ahead: the slot the client index probably files `owner`'s `key` at (unconfirmed:
    /// reading the slot and payload is what a later stage prefetches).
    #[inline]
    pub fn probable_client(&self, owner: u32, key: [u64; 2]) -> Option<u32> {
        self.clients_of(owner)?.probable(client_hash(key))
    }

    /// Look-ahead: asks the cache for slot `idx`'s payload (nothing if there is none).
    #[inline]
    pub fn prefetch_payload(&self, idx: u32) {
        if let Some(payload) = self.payloads.as_ref().and_then(|payloads| payloads.get(idx as usize)) {
            prefetch(payload);
        }
    }

    /// What the payloads take: their array, the client index, the departed list.
    pub fn payload_heap_bytes(&self) -> usize {
        let clients = self.clients.iter().flatten().map(SlotTable::heap_bytes).sum::<usize>()
            + self.clients.capacity() * size_of::<Option<SlotTable>>();
        self.payloads.as_ref().map_or(0, HugeBuf::heap_bytes) + self.departed.capacity() * 4 + clients
    }

    /// Slot `idx`, if the arena has one (it may be free).
    #[inline]
    pub fn get(&self, idx: u32) -> Option<&Slot> {
        self.slots.get(idx as usize)
    }

    /// Look-ahead: asks the cache for slot `idx` (nothing if there is no such slot).
    #[inline]
    pub fn prefetch(&self, idx: u32) {
        if let Some(slot) = self.slots.get(idx as usize) {
            prefetch(slot);
        }
    }

    /// Frees a slot whose order has left the book (and the id index). A slot with a payload is
    /// taken out of the client index and kept, payload and all, until [`Arena::recycle`].
    #[inline]
    pub fn release(&mut self, idx: u32) {
        if self[idx].has_payload {
            return self.depart(idx);
        }
        self.plain -= 1;
        self[idx].next = self.free;
        self.free = idx;
    }

    #[inline(never)]
    fn depart(&mut self, idx: u32) {
        let hash = client_hash(self.payload(idx).key);
        let owner = self[idx].owner;
        self.clients[owner as usize].as_mut().expect("a payload's owner has a client index").remove(hash, idx);
        self.departed.push(idx);
    }

    /// Heap memory held, the payloads' included.
    pub fn heap_bytes(&self) -> usize {
        self.slots.heap_bytes() + self.payload_heap_bytes()
    }
}

impl Index<u32> for Arena {
    type Output = Slot;
    #[inline]
    fn index(&self, idx: u32) -> &Slot {
        &self.slots[idx as usize]
    }
}

impl IndexMut<u32> for Arena {
    #[inline]
    fn index_mut(&mut self, idx: u32) -> &mut Slot {
        &mut self.slots[idx as usize]
    }
}

/// One price level: its total open quantity and its queue (`head` is first in time). Aligned so
/// that a level never straddles two cache lines.
#[derive(Clone, Copy, Debug)]
#[repr(align(32))]
pub(super) struct Level {
    pub price: i64,
    pub qty: u64,
    pub head: u32,
    pub tail: u32,
    /// The chunk that maps this level's price (stable while the level exists).
    chunk: u32,
}

const CHUNK_SHIFT: u32 = 10;
const CHUNK_TICKS: usize = 1 << CHUNK_SHIFT;
const CHUNK_WORDS: usize = CHUNK_TICKS / 64;

/// 1,024 consecutive ticks: which hold a level (`bits`, with `summary` bit w set iff `bits[w]`
/// is not zero) and which level (`levels`).
#[derive(Clone, Debug)]
struct Chunk {
    key: i64,
    summary: u64,
    bits: [u64; CHUNK_WORDS],
    levels: [u32; CHUNK_TICKS],
}

impl Chunk {
    fn new(key: i64) -> Chunk {
        Chunk { key, summary: 0, bits: [0; CHUNK_WORDS], levels: [NIL; CHUNK_TICKS] }
    }

    fn set(&mut self, offset: usize, level: u32) {
        self.levels[offset] = level;
        self.bits[offset / 64] |= 1 << (offset % 64);
        self.summary |= 1 << (offset / 64);
    }

    fn clear(&mut self, offset: usize) {
        self.levels[offset] = NIL;
        let word = &mut self.bits[offset / 64];
        *word &= !(1 << (offset % 64));
        if *word == 0 {
            self.summary &= !(1 << (offset / 64));
        }
    }

    /// The highest occupied offset below `offset` (`offset` = CHUNK_TICKS: the highest of all).
    fn highest_below(&self, offset: usize) -> Option<usize> {
        let (w, b) = (offset / 64, offset % 64);
        if w < CHUNK_WORDS {
            let word = self.bits[w] & ((1u64 << b) - 1);
            if word != 0 {
                return Some(w * 64 + 63 - word.leading_zeros() as usize);
            }
        }
        let words = self.summary & ((1u64 << w) - 1); // w ≤ CHUNK_WORDS < 64
        if words == 0 {
            return None;
        }
        let w = 63 - words.leading_zeros() as usize;
        Some(w * 64 + 63 - self.bits[w].leading_zeros() as usize)
    }

    /// The lowest occupied offset above `offset` (`offset` = -1 as `None`: the lowest of all).
    fn lowest_above(&self, offset: Option<usize>) -> Option<usize> {
        let first_word = match offset {
            None => 0,
            Some(offset) => {
                let (w, b) = (offset / 64, offset % 64);
                let word = self.bits[w] & if b == 63 { 0 } else { u64::MAX << (b + 1) };
                if word != 0 {
                    return Some(w * 64 + word.trailing_zeros() as usize);
                }
                w + 1
            }
        };
        let words = self.summary & (u64::MAX << first_word); // first_word ≤ CHUNK_WORDS < 64
        if words == 0 {
            return None;
        }
        let w = words.trailing_zeros() as usize;
        Some(w * 64 + self.bits[w].trailing_zeros() as usize)
    }
}

/// One side's price levels. The best level is cached; the next one is found through the bitmap.
#[derive(Clone, Debug)]
pub(super) struct Ladder {
    pub side: Side,
    tick: i64,
    levels: Vec<Level>,
    free_level: u32,
    level_count: usize,
    chunks: Vec<Chunk>,
    free_chunks: Vec<u32>,
    /// (chunk key, chunk index) of the chunks in use, ascending by key.
    chunk_order: Vec<(i64, u32)>,
    /// Direct-mapped cache of `chunk_order` by key: a book's chunks are few and consecutive, so
    /// a lookup is one load instead of a binary search.
    chunk_cache: [(i64, u32); CHUNK_CACHE],
    best: u32,
}

const CHUNK_CACHE: usize = 64;

impl Ladder {
    pub fn new(side: Side, tick: i64) -> Ladder {
        assert!(tick > 0, "tick must be positive");
        Ladder {
            side,
            tick,
            levels: Vec::new(),
            free_level: NIL,
            level_count: 0,
            chunks: Vec::new(),
            free_chunks: Vec::new(),
            chunk_order: Vec::new(),
            chunk_cache: [(0, NIL); CHUNK_CACHE],
            best: NIL,
        }
    }

    /// The best level, or `NIL`.
    #[inline]
    pub fn best(&self) -> u32 {
        self.best
    }

    #[inline]
    pub fn best_price(&self) -> Option<i64> {
        (self.best != NIL).then(|| self.levels[self.best as usize].price)
    }

    #[inline]
    pub fn level(&self, idx: u32) -> &Level {
        &self.levels[idx as usize]
    }

    #[inline]
    pub fn level_mut(&mut self, idx: u32) -> &mut Level {
        &mut self.levels[idx as usize]
    }

    pub fn level_count(&self) -> usize {
        self.level_count
    }

    pub fn heap_bytes(&self) -> usize {
        self.levels.capacity() * std::mem::size_of::<Level>()
            + self.chunks.capacity() * std::mem::size_of::<Chunk>()
            + self.free_chunks.capacity() * 4
            + self.chunk_order.capacity() * 16
    }

    /// (chunk key, offset in chunk) of a price on this ladder's tick grid.
    #[inline]
    fn locate(&self, price: i64) -> (i64, usize) {
        let ticks = if self.tick == 1 { price } else { price / self.tick };
        (ticks >> CHUNK_SHIFT, (ticks & (CHUNK_TICKS as i64 - 1)) as usize)
    }

    #[inline]
    fn chunk_position(&self, key: i64) -> Result<usize, usize> {
        self.chunk_order.binary_search_by_key(&key, |&(k, _)| k)
    }

    /// The chunk index for `key`, or `NIL` when no chunk covers it.
    #[inline]
    fn chunk_of(&self, key: i64) -> u32 {
        let (cached_key, chunk) = self.chunk_cache[key as usize % CHUNK_CACHE];
        if chunk != NIL && cached_key == key {
            return chunk;
        }
        match self.chunk_position(key) {
            Ok(pos) => self.chunk_order[pos].1,
            Err(_) => NIL,
        }
    }

    /// The level at `price`, or `NIL`.
    #[inline]
    pub fn find(&self, price: i64) -> u32 {
        let (key, offset) = self.locate(price);
        match self.chunk_of(key) {
            NIL => NIL,
            chunk => self.chunks[chunk as usize].levels[offset],
        }
    }

    pub fn quantity_at(&self, price: i64) -> u64 {
        match self.find(price) {
            NIL => 0,
            idx => self.levels[idx as usize].qty,
        }
    }

    /// Whether `a` is a better price than `b` for this side.
    #[inline]
    fn better(&self, a: i64, b: i64) -> bool {
        match self.side {
            Side::Buy => a > b,
            Side::Sell => a < b,
        }
    }

    /// Creates the (empty) level at `price`.
    fn insert_level(&mut self, price: i64) -> u32 {
        let (key, offset) = self.locate(price);
        let mut chunk = self.chunk_of(key);
        if chunk == NIL {
            chunk = self.add_chunk(key);
        }
        let level = Level { price, qty: 0, head: NIL, tail: NIL, chunk };
        let idx = if self.free_level != NIL {
            let idx = self.free_level;
            self.free_level = self.levels[idx as usize].head;
            self.levels[idx as usize] = level;
            idx
        } else {
            self.levels.push(level);
            u32::try_from(self.levels.len() - 1).expect("level slab full")
        };
        self.level_count += 1;
        self.chunks[chunk as usize].set(offset, idx);
        if self.best == NIL || self.better(price, self.levels[self.best as usize].price) {
            self.best = idx;
        }
        idx
    }

    /// Drops an empty level; if it was the best, the next one becomes best.
    pub fn remove_level(&mut self, idx: u32) {
        let level = self.levels[idx as usize];
        assert!(level.head == NIL && level.qty == 0, "removing a non-empty level at {}", level.price);
        if self.best == idx {
            self.best = self.next_worse(idx);
        }
        let (key, offset) = self.locate(level.price);
        let chunk = &mut self.chunks[level.chunk as usize];
        chunk.clear(offset);
        if chunk.summary == 0 {
            self.remove_chunk(key, level.chunk);
        }
        self.levels[idx as usize].head = self.free_level;
        self.free_level = idx;
        self.level_count -= 1;
    }

    /// Starts covering the ticks of chunk `key` (reusing a freed chunk when there is one).
    fn add_chunk(&mut self, key: i64) -> u32 {
        let chunk = match self.free_chunks.pop() {
            Some(chunk) => {
                self.chunks[chunk as usize].key = key;
                chunk
            }
            None => {
                self.chunks.push(Chunk::new(key));
                u32::try_from(self.chunks.len() - 1).expect("chunk slab full")
            }
        };
        let pos = self.chunk_position(key).expect_err("chunk added twice");
        self.chunk_order.insert(pos, (key, chunk));
        self.chunk_cache[key as usize % CHUNK_CACHE] = (key, chunk);
        chunk
    }

    fn remove_chunk(&mut self, key: i64, chunk: u32) {
        let pos = self.chunk_position(key).expect("a chunk in use is listed");
        self.chunk_order.remove(pos);
        self.free_chunks.push(chunk);
        let cached = &mut self.chunk_cache[key as usize % CHUNK_CACHE];
        if cached.1 == chunk {
            *cached = (0, NIL);
        }
    }

    /// The level after `idx` in priority order (the next worse price), or `NIL`.
    pub fn next_worse(&self, idx: u32) -> u32 {
        let level = &self.levels[idx as usize];
        let (key, offset) = self.locate(level.price);
        let chunk = &self.chunks[level.chunk as usize];
        match self.side {
            Side::Buy => {
                if let Some(found) = chunk.highest_below(offset) {
                    return chunk.levels[found];
                }
                // Chunks in use are never empty, so the neighbour's highest level is the answer.
                let pos = self.chunk_position(key).expect("a chunk in use is listed");
                match pos.checked_sub(1) {
                    Some(prev) => {
                        let chunk = &self.chunks[self.chunk_order[prev].1 as usize];
                        chunk.levels[chunk.highest_below(CHUNK_TICKS).expect("chunk in use")]
                    }
                    None => NIL,
                }
            }
            Side::Sell => {
                if let Some(found) = chunk.lowest_above(Some(offset)) {
                    return chunk.levels[found];
                }
                let pos = self.chunk_position(key).expect("a chunk in use is listed");
                match self.chunk_order.get(pos + 1) {
                    Some(&(_, next)) => {
                        let chunk = &self.chunks[next as usize];
                        chunk.levels[chunk.lowest_above(None).expect("chunk in use")]
                    }
                    None => NIL,
                }
            }
        }
    }

    /// Levels best first.
    pub fn iter(&self) -> impl Iterator<Item = &Level> + '_ {
        let mut cur = self.best;
        std::iter::from_fn(move || {
            if cur == NIL {
                return None;
            }
            let level = &self.levels[cur as usize];
            cur = self.next_worse(cur);
            Some(level)
        })
    }

    /// Puts the order at the back of the queue of `price` (creating the level) and returns the
    /// level's new total.
    #[inline]
    pub fn push_back(&mut self, arena: &mut Arena, idx: u32, price: i64) -> u64 {
        let leaves = arena[idx].leaves;
        let found = self.find(price);
        let level_idx = if found == NIL { self.insert_level(price) } else { found };
        let level = &mut self.levels[level_idx as usize];
        let slot = &mut arena[idx];
        slot.prev = level.tail;
        slot.next = NIL;
        slot.level = level_idx;
        if level.tail == NIL {
            level.head = idx;
        } else {
            arena[level.tail].next = idx;
        }
        level.tail = idx;
        // The market refuses an order that would take a level past `level_quantity_max`, whose
        // ceiling leaves room for one more order: overflowing here would be our own bug.
        level.qty = level.qty.checked_add(leaves).expect("level quantity overflows u64");
        level.qty
    }

    /// Takes the order out of its level's queue (dropping the level when it empties) and returns
    /// the level's new total. The slot itself is left to the caller.
    #[inline]
    pub fn unlink(&mut self, arena: &mut Arena, idx: u32) -> u64 {
        let (leaves, prev, next, level_idx) = {
            let slot = &arena[idx];
            (slot.leaves, slot.prev, slot.next, slot.level)
        };
        let level = &mut self.levels[level_idx as usize];
        if prev == NIL {
            level.head = next;
        } else {
            arena[prev].next = next;
        }
        if next == NIL {
            level.tail = prev;
        } else {
            arena[next].prev = prev;
        }
        level.qty -= leaves;
        let qty = level.qty;
        if level.head == NIL {
            self.remove_level(level_idx);
        }
        qty
    }

    /// Lowers a resting order's open quantity in place (its priority is kept).
    pub fn reduce(&mut self, arena: &mut Arena, idx: u32, by: u64) -> u64 {
        arena[idx].leaves -= by;
        let level = &mut self.levels[arena[idx].level as usize];
        level.qty -= by;
        level.qty
    }

    /// (price, slot) of this side in priority order: best level first, each level in time order.
    pub fn for_each_in_priority(&self, arena: &Arena, mut f: impl FnMut(i64, &Slot)) {
        for level in self.iter() {
            let mut cur = level.head;
            while cur != NIL {
                f(level.price, &arena[cur]);
                cur = arena[cur].next;
            }
        }
    }

    /// (slot index, slot) of this side in priority order.
    pub fn for_each_in_priority_at(&self, arena: &Arena, mut f: impl FnMut(u32, &Slot)) {
        for level in self.iter() {
            let mut cur = level.head;
            while cur != NIL {
                f(cur, &arena[cur]);
                cur = arena[cur].next;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn ladder_walks_levels_in_price_order_across_chunks() {
        for side in [Side::Buy, Side::Sell] {
            let mut ladder = Ladder::new(side, 3);
            let mut arena = Arena::new();
            let mut model: BTreeMap<i64, Vec<u32>> = BTreeMap::new();
            let mut x: u64 = 7;
            for step in 0..20_000u64 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                // Prices on the grid, clustered at chunk edges and spread over many chunks.
                let ticks = match x % 4 {
                    0 => 1_024 * (x % 9) as i64 + (x % 3) as i64 - 1,
                    1 => (x % 70_000) as i64,
                    _ => 60 + (x % 130) as i64,
                };
                let price = 3 * ticks.max(1);
                let live: Vec<u32> = model.values().flatten().copied().collect();
                if x % 5 < 2 && !live.is_empty() {
                    let idx = live[(x as usize / 5) % live.len()];
                    let price = ladder.level(arena[idx].level).price;
                    ladder.unlink(&mut arena, idx);
                    arena.release(idx);
                    let queue = model.get_mut(&price).unwrap();
                    queue.retain(|&i| i != idx);
                    if queue.is_empty() {
                        model.remove(&price);
                    }
                } else {
                    let slot = Slot::new(step, 1 + x % 5, 0, side, TimeInForce::Gtc, false);
                    let idx = arena.alloc(slot, None);
                    ladder.push_back(&mut arena, idx, price);
                    model.entry(price).or_default().push(idx);
                }
                if step % 97 == 0 {
                    let mut expected: Vec<(i64, u64)> =
                        model.iter().map(|(&p, q)| (p, q.iter().map(|&i| arena[i].leaves).sum())).collect();
                    if side == Side::Buy {
                        expected.reverse();
                    }
                    let walked: Vec<(i64, u64)> = ladder.iter().map(|l| (l.price, l.qty)).collect();
                    assert_eq!(walked, expected, "{side:?} step {step}");
                    assert_eq!(ladder.level_count(), model.len());
                    for (&price, queue) in &model {
                        let level = ladder.level(ladder.find(price));
                        assert_eq!(level.head, queue[0]);
                    }
                }
            }
        }
    }
}
