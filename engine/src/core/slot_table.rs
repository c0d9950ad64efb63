//! An open-addressing hash index from a key to a slot number, for stores that keep their values
//! (and so their keys) in a slab: the table holds only (hash tag, slot) pairs, 8 bytes an entry,
//! and the caller confirms a tag match against the slot's own key.
//!
//! Why not a general-purpose map: a deep book keeps a million live orders, and a map holding the
//! key and value beside its control bytes costs several times the 8 bytes here. Deterministic: the
//! hash is a fixed function of the key (no random state), and what [`SlotTable::slots`] yields in
//! table order is sorted by its callers before it reaches output. Tables of 2 MB and more sit on
//! huge pages ([`HugeBuf`]): a deep book's index is read on every command.

use crate::core::huge::{prefetch, HugeBuf};

/// Marks an empty entry.
const NIL: u32 = u32::MAX;
/// The smallest table, as log2 of its entries.
/// Four entries: a book keeps one table per owner with orders in it (its client index), and
/// most owners have few.
const BITS_MIN: u32 = 2;

#[derive(Clone, Copy, Debug)]
struct Entry {
    /// The top 32 bits of the key's hash: they also give the entry's home position.
    tag: u32,
    slot: u32,
}

const EMPTY: Entry = Entry { tag: 0, slot: NIL };

/// Linear probing, at most four fifths full (an entry is 8 bytes, so even a miss's longer probe
/// run stays within a few cache lines), with backward-shift deletion (no tombstones).
#[derive(Clone, Debug)]
pub struct SlotTable {
    entries: HugeBuf<Entry>,
    bits: u32,
    len: usize,
}

impl Default for SlotTable {
    fn default() -> SlotTable {
        SlotTable { entries: HugeBuf::new(1 << BITS_MIN, EMPTY), bits: BITS_MIN, len: 0 }
    }
}

/// A well-spread 64-bit hash of a sequence of words (FxHash's step with a final multiply): the
/// high bits, which the table uses, depend on every bit of every word.
#[inline]
pub fn hash_words(words: &[u64]) -> u64 {
    let mut h: u64 = 0;
    for &w in words {
        h = (h.rotate_left(26) ^ w).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
    // Fold the well-mixed high half back so that keys differing only in the last word's high bits
    // still differ in the top bits after one more multiply.
    (h ^ (h >> 31)).wrapping_mul(0xbf58_476d_1ce4_e5b9)
}

impl SlotTable {
    #[inline]
    fn home(&self, tag: u32) -> usize {
        (tag >> (32 - self.bits)) as usize
    }

    #[inline]
    fn mask(&self) -> usize {
        self.entries.len() - 1
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn heap_bytes(&self) -> usize {
        self.entries.heap_bytes()
    }

    /// The slot whose key has `hash` and for which `is_key` holds.
    #[inline]
    pub fn find(&self, hash: u64, mut is_key: impl FnMut(u32) -> bool) -> Option<u32> {
        let tag = (hash >> 32) as u32;
        let mut i = self.home(tag);
        loop {
            let entry = self.entries[i];
            if entry.slot == NIL {
                return None;
            }
            if entry.tag == tag && is_key(entry.slot) {
                return Some(entry.slot);
            }
            i = (i + 1) & self.mask();
        }
    }

    /// Asks the cache for the entries where `hash`'s probe starts: look-ahead for a later `find`.
    #[inline]
    pub fn prefetch(&self, hash: u64) {
        prefetch(&self.entries[self.home((hash >> 32) as u32)]);
    }

    /// The first slot filed under `hash`'s tag, its key NOT confirmed: for look-ahead only (a
    /// tag shared by two keys gives the wrong slot, which only wastes the hint).
    #[inline]
    pub fn probable(&self, hash: u64) -> Option<u32> {
        self.find(hash, |_| true)
    }

    /// Adds `slot` under `hash`; the caller knows its key is not in the table yet.
    pub fn insert(&mut self, hash: u64, slot: u32) {
        assert!(slot != NIL, "slot {slot} is the empty marker");
        if (self.len + 1) * 5 > self.entries.len() * 4 {
            self.grow();
        }
        self.place(Entry { tag: (hash >> 32) as u32, slot });
        self.len += 1;
    }

    fn place(&mut self, entry: Entry) {
        let mut i = self.home(entry.tag);
        while self.entries[i].slot != NIL {
            i = (i + 1) & self.mask();
        }
        self.entries[i] = entry;
    }

    /// Removes `slot`, filed under `hash`; shifts later entries of its probe run back.
    pub fn remove(&mut self, hash: u64, slot: u32) {
        let tag = (hash >> 32) as u32;
        let mask = self.mask();
        let mut hole = self.home(tag);
        loop {
            let entry = self.entries[hole];
            assert!(entry.slot != NIL, "slot {slot} is not in the table");
            if entry.slot == slot {
                break;
            }
            hole = (hole + 1) & mask;
        }
        self.len -= 1;
        let mut next = hole;
        loop {
            next = (next + 1) & mask;
            let entry = self.entries[next];
            if entry.slot == NIL {
                break;
            }
            // The entry may fill the hole only if its home is not in (hole, next] cyclically.
            let home = self.home(entry.tag);
            let stays = if hole <= next { hole < home && home <= next } else { hole < home || home <= next };
            if !stays {
                self.entries[hole] = entry;
                hole = next;
            }
        }
        self.entries[hole] = EMPTY;
    }

    fn grow(&mut self) {
        assert!(self.bits < 32, "a slot table holds fewer than 2^32 entries");
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
    use std::collections::BTreeMap;

    #[test]
    fn slot_table_agrees_with_a_btree_map_under_churn() {
        let mut table = SlotTable::default();
        // The "slab": slot → key, as a store would keep it.
        let mut keys: Vec<u64> = Vec::new();
        let mut free: Vec<u32> = Vec::new();
        let mut model: BTreeMap<u64, u32> = BTreeMap::new();
        let mut x: u64 = 7;
        for step in 0..200_000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let key = x % 5_000;
            let hash = hash_words(&[key]);
            if let Some(&slot) = model.get(&key) {
                assert_eq!(table.find(hash, |s| keys[s as usize] == key), Some(slot), "step {step}");
                if x.is_multiple_of(2) {
                    table.remove(hash, slot);
                    model.remove(&key);
                    free.push(slot);
                }
            } else {
                assert_eq!(table.find(hash, |s| keys[s as usize] == key), None, "step {step}");
                let slot = free.pop().unwrap_or_else(|| {
                    keys.push(0);
                    keys.len() as u32 - 1
                });
                keys[slot as usize] = key;
                table.insert(hash, slot);
                model.insert(key, slot);
            }
            assert_eq!(table.len(), model.len());
        }
        for (key, slot) in &model {
            assert_eq!(table.find(hash_words(&[*key]), |s| keys[s as usize] == *key), Some(*slot));
        }
    }
}
