//! The order id → arena slot index of one book.

use super::huge::HugeBuf;
use super::ladder::{Arena, NIL};

/// Order id → arena slot: open addressing with linear probing over 8-byte (key, slot) entries,
/// at most 80 % full, where the key is the id's low 32 bits. Deterministic: a fixed Fibonacci
/// hash, and the table is never iterated into output without sorting first.
///
/// Why 8 bytes and not the id itself: in a deep book the index is the first of the dependent
/// cache misses of every command (id → slot → the order's neighbours). At 8 bytes an entry and
/// 80 % load, the index of 100,000 orders is 1 MB and stays in a core's L2; with 16-byte entries
/// at 50 % it was 4 MB and missed. The slot holds the full id, and the slot is read next anyway,
/// so confirming a key match there costs nothing. Ids that share their low 32 bits (the market
/// numbers orders from 1, so four billion orders apart) only share a probe run.
#[derive(Clone, Debug)]
pub(super) struct IdIndex {
    entries: HugeBuf<IdEntry>,
    /// log2 of the capacity.
    bits: u32,
    len: usize,
}

#[derive(Clone, Copy, Debug)]
struct IdEntry {
    key: u32,
    /// `NIL` marks an empty entry.
    slot: u32,
}

const EMPTY: IdEntry = IdEntry { key: 0, slot: NIL };

impl Default for IdIndex {
    fn default() -> IdIndex {
        IdIndex { entries: HugeBuf::new(16, EMPTY), bits: 4, len: 0 }
    }
}

#[inline]
fn key_of(id: u64) -> u32 {
    id as u32
}

impl IdIndex {
    #[inline]
    fn home(&self, key: u32) -> usize {
        (u64::from(key).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - self.bits)) as usize
    }

    #[inline]
    fn mask(&self) -> usize {
        self.entries.len() - 1
    }

    /// The position holding `id`, or `None`.
    #[inline]
    fn position(&self, id: u64, arena: &Arena) -> Option<usize> {
        let key = key_of(id);
        let mut i = self.home(key);
        loop {
            let entry = self.entries[i];
            if entry.slot == NIL {
                return None;
            }
            if entry.key == key && arena[entry.slot].id == id {
                return Some(i);
            }
            i = (i + 1) & self.mask();
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn heap_bytes(&self) -> usize {
        self.entries.heap_bytes()
    }

    /// The slot of `id`, whose full id the arena confirms.
    #[inline]
    pub fn get(&self, id: u64, arena: &Arena) -> Option<u32> {
        self.position(id, arena).map(|i| self.entries[i].slot)
    }

    /// Adds `id` at `slot`; the caller knows `id` is not in the index.
    pub fn insert(&mut self, id: u64, slot: u32) {
        assert!(slot != NIL);
        if (self.len + 1) * 5 > self.entries.len() * 4 {
            self.grow();
        }
        self.place(IdEntry { key: key_of(id), slot });
        self.len += 1;
    }

    fn place(&mut self, entry: IdEntry) {
        let mut i = self.home(entry.key);
        while self.entries[i].slot != NIL {
            i = (i + 1) & self.mask();
        }
        self.entries[i] = entry;
    }

    /// Removes `id`, shifting later entries of its probe run back so that no tombstones build up.
    pub fn remove(&mut self, id: u64, arena: &Arena) -> Option<u32> {
        let mut hole = self.position(id, arena)?;
        let slot = self.entries[hole].slot;
        self.len -= 1;
        let mask = self.mask();
        let mut next = hole;
        loop {
            next = (next + 1) & mask;
            let entry = self.entries[next];
            if entry.slot == NIL {
                break;
            }
            // The entry may fill the hole only if its home is not in (hole, next] cyclically.
            let home = self.home(entry.key);
            let stays = if hole <= next { hole < home && home <= next } else { hole < home || home <= next };
            if !stays {
                self.entries[hole] = entry;
                hole = next;
            }
        }
        self.entries[hole] = EMPTY;
        Some(slot)
    }

    fn grow(&mut self) {
        let old = std::mem::replace(&mut self.entries, HugeBuf::new(2 << self.bits, EMPTY));
        self.bits += 1;
        for &entry in old.iter().filter(|e| e.slot != NIL) {
            self.place(entry);
        }
    }

    /// The slots in table order: callers sort before anything reaches output.
    pub fn slots(&self) -> impl Iterator<Item = u32> + '_ {
        self.entries.iter().filter(|e| e.slot != NIL).map(|e| e.slot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::book::ladder::Slot;
    use crate::core::book::TimeInForce;
    use crate::types::Side;
    use std::collections::BTreeMap;

    #[test]
    fn id_index_agrees_with_a_btree_map_under_churn() {
        let mut index = IdIndex::default();
        let mut arena = Arena::new();
        let mut model: BTreeMap<u64, u32> = BTreeMap::new();
        let mut x: u64 = 1;
        for step in 0..200_000u32 {
            // xorshift: ids in a few clustered ranges, and ids four billion apart that share
            // their low 32 bits, so probe runs collide, share keys and wrap.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let id = (x % 3_000) + if x % 7 == 1 { (x % 5) << 32 } else { 0 };
            if x % 3 == 1 {
                let removed = index.remove(id, &arena);
                assert_eq!(removed, model.remove(&id), "step {step}");
                if let Some(slot) = removed {
                    arena.release(slot);
                }
            } else if index.get(id, &arena).is_none() {
                let slot = arena.alloc(Slot::new(id, 1, 0, Side::Buy, TimeInForce::Gtc, false));
                index.insert(id, slot);
                model.insert(id, slot);
            }
            assert_eq!(index.len(), model.len());
            if step % 1_000 == 0 {
                for (&id, &slot) in &model {
                    assert_eq!(index.get(id, &arena), Some(slot));
                }
                let mut all: Vec<(u64, u32)> = index.slots().map(|s| (arena[s].id, s)).collect();
                all.sort_unstable();
                assert_eq!(all, model.iter().map(|(&i, &s)| (i, s)).collect::<Vec<_>>());
            }
        }
    }
}
