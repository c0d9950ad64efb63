//! The data layout under the book: the arena that holds resting orders, one side's sorted price
//! levels, and the id index. Kept apart from the rules so the rules read as rules.

use super::TimeInForce;
use crate::types::Side;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::ops::{Index, IndexMut};

/// "No slot": the end of a level's queue or of the free list.
pub(super) const NIL: u32 = u32::MAX;

/// A resting order. The orders of one level form a doubly linked list in time priority, so a
/// cancel or a requeue is O(1) once its level is found, and nothing moves in memory.
#[derive(Clone, Debug)]
pub(super) struct Slot {
    pub id: u64,
    pub price: i64,
    pub leaves: u64,
    /// Placement sequence: when the order last joined the back of a queue. Orders of one level
    /// are in ascending `seq`; the call auction compares it across sides.
    pub seq: u64,
    pub owner: u32,
    pub prev: u32,
    pub next: u32,
    pub side: Side,
    pub tif: TimeInForce,
    pub post_only: bool,
}

/// Every resting order lives here; freed slots are threaded through `next` and reused, so a book
/// in steady state allocates nothing.
#[derive(Clone, Debug)]
pub(super) struct Arena {
    slots: Vec<Slot>,
    free: u32,
}

impl Arena {
    pub fn new() -> Arena {
        Arena { slots: Vec::new(), free: NIL }
    }

    pub fn alloc(&mut self, slot: Slot) -> u32 {
        if self.free != NIL {
            let idx = self.free;
            self.free = self.slots[idx as usize].next;
            self.slots[idx as usize] = slot;
            idx
        } else {
            let idx = u32::try_from(self.slots.len()).expect("more than u32::MAX resting orders");
            assert!(idx != NIL, "order arena full");
            self.slots.push(slot);
            idx
        }
    }

    pub fn release(&mut self, idx: u32) {
        self.slots[idx as usize].next = self.free;
        self.free = idx;
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

/// One price level: its total open quantity and its queue.
#[derive(Clone, Copy, Debug)]
pub(super) struct Level {
    /// `price` for bids, `-price` for asks: both ladders then sort ascending with the best last.
    pub key: i64,
    pub qty: u64,
    pub head: u32,
    pub tail: u32,
}

/// One side's levels, sorted by `key` so that the best level is the LAST element. Nearly all the
/// traffic (trades, moves toward the touch, new passive orders) lands near the best price, where
/// a `Vec` insert or remove shifts only a few elements and `last_mut`/`pop` are free.
#[derive(Clone, Debug)]
pub(super) struct Ladder {
    pub side: Side,
    pub levels: Vec<Level>,
}

impl Ladder {
    pub fn new(side: Side) -> Ladder {
        Ladder { side, levels: Vec::new() }
    }

    #[inline]
    pub fn key(&self, price: i64) -> i64 {
        match self.side {
            Side::Buy => price,
            Side::Sell => -price,
        }
    }

    /// The price of a level of this ladder (`key` undone).
    #[inline]
    pub fn price(&self, level: &Level) -> i64 {
        self.key(level.key)
    }

    #[inline]
    pub fn best_price(&self) -> Option<i64> {
        self.levels.last().map(|level| self.price(level))
    }

    /// The level at `price`: `Ok(position)`, or `Err(position where it would go)`. Checks the
    /// best level first because that is where most lookups land.
    #[inline]
    pub fn find(&self, price: i64) -> Result<usize, usize> {
        let key = self.key(price);
        let n = self.levels.len();
        if n > 0 && self.levels[n - 1].key == key {
            return Ok(n - 1);
        }
        self.levels.binary_search_by(|level| level.key.cmp(&key))
    }

    pub fn quantity_at(&self, price: i64) -> u64 {
        self.find(price).map_or(0, |pos| self.levels[pos].qty)
    }

    /// Puts the order at the back of the queue of its price (creating the level) and returns the
    /// level's new total.
    #[inline]
    pub fn push_back(&mut self, arena: &mut Arena, idx: u32) -> u64 {
        let (price, leaves) = (arena[idx].price, arena[idx].leaves);
        let pos = match self.find(price) {
            Ok(pos) => pos,
            Err(pos) => {
                let level = Level { key: self.key(price), qty: 0, head: NIL, tail: NIL };
                self.levels.insert(pos, level);
                pos
            }
        };
        let level = &mut self.levels[pos];
        arena[idx].prev = level.tail;
        arena[idx].next = NIL;
        if level.tail == NIL {
            level.head = idx;
        } else {
            arena[level.tail].next = idx;
        }
        level.tail = idx;
        level.qty = level.qty.checked_add(leaves).expect("level quantity overflows u64");
        level.qty
    }

    /// Takes the order out of its level's queue (dropping the level when it empties) and returns
    /// the level's new total. The slot itself is left to the caller.
    #[inline]
    pub fn unlink(&mut self, arena: &mut Arena, idx: u32) -> u64 {
        let (price, leaves, prev, next) = {
            let slot = &arena[idx];
            (slot.price, slot.leaves, slot.prev, slot.next)
        };
        let pos = self.find(price).expect("a resting order's level exists");
        let level = &mut self.levels[pos];
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
            assert_eq!(qty, 0, "empty level at {price} still holds quantity");
            self.levels.remove(pos);
        }
        qty
    }

    /// Lowers a resting order's open quantity in place (its priority is kept).
    pub fn reduce(&mut self, arena: &mut Arena, idx: u32, by: u64) -> u64 {
        let pos = self.find(arena[idx].price).expect("a resting order's level exists");
        arena[idx].leaves -= by;
        self.levels[pos].qty -= by;
        self.levels[pos].qty
    }

    /// The slots of this side in priority order: best level first, each level in time order.
    pub fn for_each_in_priority(&self, arena: &Arena, mut f: impl FnMut(&Slot)) {
        for level in self.levels.iter().rev() {
            let mut cur = level.head;
            while cur != NIL {
                f(&arena[cur]);
                cur = arena[cur].next;
            }
        }
    }
}

/// Order id → arena slot. The hasher is a fixed multiply-rotate (Fx-style): deterministic, and
/// the map is never iterated into output without sorting first.
pub(super) type IdIndex = HashMap<u64, u32, BuildHasherDefault<IdHasher>>;

#[derive(Clone, Copy, Default)]
pub(super) struct IdHasher(u64);

const FX_SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl Hasher for IdHasher {
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.write_u64(u64::from(byte));
        }
    }
    #[inline]
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(FX_SEED);
    }
}
