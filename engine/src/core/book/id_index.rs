//! The order id → arena slot index of one book.

use super::ladder::NIL;

/// Order id → arena slot: open addressing with linear probing over (id, slot) pairs, at most
/// half full. A lookup is usually one cache line (a general-purpose map reads its control bytes
/// and then its bucket: two). Deterministic: a fixed Fibonacci hash, and the table is never
/// iterated into output without sorting first.
#[derive(Clone, Debug)]
pub(super) struct IdIndex {
    entries: Vec<IdEntry>,
    /// log2 of the capacity.
    bits: u32,
    len: usize,
}

#[derive(Clone, Copy, Debug)]
struct IdEntry {
    id: u64,
    /// `NIL` marks an empty entry.
    slot: u32,
}

const EMPTY: IdEntry = IdEntry { id: 0, slot: NIL };

impl Default for IdIndex {
    fn default() -> IdIndex {
        IdIndex { entries: vec![EMPTY; 16], bits: 4, len: 0 }
    }
}

impl IdIndex {
    #[inline]
    fn home(&self, id: u64) -> usize {
        (id.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - self.bits)) as usize
    }

    #[inline]
    fn mask(&self) -> usize {
        self.entries.len() - 1
    }

    /// The position holding `id`, or the empty position where it would go.
    #[inline]
    fn probe(&self, id: u64) -> usize {
        let mut i = self.home(id);
        loop {
            let entry = self.entries[i];
            if entry.slot == NIL || entry.id == id {
                return i;
            }
            i = (i + 1) & self.mask();
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn heap_bytes(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<IdEntry>()
    }

    #[inline]
    pub fn get(&self, id: &u64) -> Option<&u32> {
        let entry = &self.entries[self.probe(*id)];
        (entry.slot != NIL).then_some(&entry.slot)
    }

    pub fn contains_key(&self, id: &u64) -> bool {
        self.get(id).is_some()
    }

    pub fn insert(&mut self, id: u64, slot: u32) {
        assert!(slot != NIL);
        if (self.len + 1) * 2 > self.entries.len() {
            self.grow();
        }
        let i = self.probe(id);
        if self.entries[i].slot == NIL {
            self.len += 1;
        }
        self.entries[i] = IdEntry { id, slot };
    }

    /// Removes `id`, shifting later entries of its probe run back so that no tombstones build up.
    pub fn remove(&mut self, id: &u64) -> Option<u32> {
        let mut hole = self.probe(*id);
        let slot = self.entries[hole].slot;
        if slot == NIL {
            return None;
        }
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
            let home = self.home(entry.id);
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
        let old = std::mem::replace(&mut self.entries, vec![EMPTY; 2 << self.bits]);
        self.bits += 1;
        self.len = 0;
        for entry in old.into_iter().filter(|e| e.slot != NIL) {
            self.insert(entry.id, entry.slot);
        }
    }

    /// (id, slot) pairs in table order: callers sort before anything reaches output.
    pub fn iter(&self) -> impl Iterator<Item = (&u64, &u32)> + '_ {
        self.entries.iter().filter(|e| e.slot != NIL).map(|e| (&e.id, &e.slot))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn id_index_agrees_with_a_btree_map_under_churn() {
        let mut index = IdIndex::default();
        let mut model = BTreeMap::new();
        let mut x: u64 = 1;
        for step in 0..200_000u32 {
            // xorshift: ids in a few clustered ranges, so probe runs collide and wrap.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let id = (x % 3_000) << if x % 7 == 1 { 40 } else { 0 };
            if x % 3 == 1 {
                assert_eq!(index.remove(&id), model.remove(&id), "step {step}");
            } else {
                index.insert(id, step);
                model.insert(id, step);
            }
            assert_eq!(index.len(), model.len());
            if step % 1_000 == 0 {
                for (id, slot) in &model {
                    assert_eq!(index.get(id), Some(slot));
                }
                let mut all: Vec<(u64, u32)> = index.iter().map(|(&i, &s)| (i, s)).collect();
                all.sort_unstable();
                assert_eq!(all, model.iter().map(|(&i, &s)| (i, s)).collect::<Vec<_>>());
            }
        }
    }
}
