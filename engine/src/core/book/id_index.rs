//! The order id → arena slot index of one book: a [`SlotTable`] keyed by the order id, whose
//! matches the arena's slot confirms.

use super::ladder::Arena;
use crate::core::slot_table::SlotTable;

/// Order id → arena slot, in a [`SlotTable`] (8-byte entries, at most 80 % full).
///
/// Why 8 bytes and not the id itself: in a deep book the index is the first of the dependent
/// cache misses of every command (id → slot → the order's neighbours). At 8 bytes an entry and
/// 80 % load, the index of 100,000 orders is 1 MB and stays in a core's L2; with 16-byte entries
/// at 50 % it was 4 MB and missed. The slot holds the full id, and the slot is read next anyway,
/// so confirming a match there costs nothing.
#[derive(Clone, Debug, Default)]
pub(super) struct IdIndex {
    table: SlotTable,
}

/// A Fibonacci hash: the market numbers orders consecutively, and the product's high bits (the
/// table's tag and home) spread consecutive ids evenly.
#[inline]
fn hash(id: u64) -> u64 {
    id.wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

impl IdIndex {
    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn heap_bytes(&self) -> usize {
        self.table.heap_bytes()
    }

    /// The slot of `id`, whose full id the arena confirms.
    #[inline]
    pub fn get(&self, id: u64, arena: &Arena) -> Option<u32> {
        self.table.find(hash(id), |slot| arena[slot].id == id)
    }

    /// Look-ahead: asks the cache for where `id`'s entry is.
    #[inline]
    pub fn prefetch(&self, id: u64) {
        self.table.prefetch(hash(id));
    }

    /// Look-ahead: the slot `id` probably has (unconfirmed: reading the slot is what a later
    /// stage prefetches).
    #[inline]
    pub fn probable(&self, id: u64) -> Option<u32> {
        self.table.probable(hash(id))
    }

    /// Adds `id` at `slot`; the caller knows `id` is not in the index.
    pub fn insert(&mut self, id: u64, slot: u32) {
        self.table.insert(hash(id), slot);
    }

    /// Removes `id` (its slot must still hold it) and returns its slot.
    pub fn remove(&mut self, id: u64, arena: &Arena) -> Option<u32> {
        let slot = self.get(id, arena)?;
        self.table.remove(hash(id), slot);
        Some(slot)
    }

    /// The slots in table order: callers sort before anything reaches output.
    pub fn slots(&self) -> impl Iterator<Item = u32> + '_ {
        self.table.slots()
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
            // xorshift: ids in a few clustered ranges, and ids four billion apart, so probe runs
            // collide and wrap.
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
                let slot = arena.alloc(Slot::new(id, 1, 0, Side::Buy, TimeInForce::Gtc, false), None);
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
