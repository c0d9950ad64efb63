//! Client order ids as the market keeps them: `ClientKey`, a client order id of up to 20
//! characters packed into 16 bytes (a `Code` takes 37), and `ClientIdsToday`, the ids each
//! participant has used today (unique per participant per day, protocol section 7).
//!
//! The day's ids grow with every order placed, so their layout decides the market's memory per
//! order: each participant's ids sit in a vector while they arrive in rising order (a counter, the
//! usual client scheme: an append, no search), and in an ordered set otherwise.

use crate::types::{Code, Pk};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeSet;

/// The longest client order id that packs into a `ClientKey`.
pub const PACKED_CHARS_MAX: usize = 20;
const BITS_PER_CHAR: u32 = 6;
/// The length sits in the top 5 bits, then the characters from the first, 6 bits each.
const LEN_SHIFT: u32 = 123;

/// A client order id of at most [`PACKED_CHARS_MAX`] characters, packed: its length, then each
/// character as its rank in `[-0-9A-Z_a-z]` (ASCII order). Comparing keys compares length, then
/// characters: the order of `Code`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClientKey(pub u128);

/// Each code character's rank in ASCII order among the 64 a code may hold (other bytes: 0, and
/// never met: codes are checked when parsed).
const RANKS: [u8; 256] = {
    let mut ranks = [0u8; 256];
    let mut i = 0;
    while i < 64 {
        ranks[CHARS[i] as usize] = i as u8;
        i += 1;
    }
    ranks
};

const CHARS: &[u8; 64] = b"-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz";

impl ClientKey {
    /// The packed key of `code`, if it is short enough.
    #[inline]
    pub fn pack(code: &Code) -> Option<ClientKey> {
        let bytes = code.as_bytes();
        if bytes.len() > PACKED_CHARS_MAX {
            return None;
        }
        // The characters into the low bits, first one highest, then moved up under the length.
        let mut chars: u128 = 0;
        for &b in bytes {
            chars = (chars << BITS_PER_CHAR) | RANKS[b as usize] as u128;
        }
        let unused = BITS_PER_CHAR * (PACKED_CHARS_MAX - bytes.len()) as u32;
        let first_shift = LEN_SHIFT - BITS_PER_CHAR * PACKED_CHARS_MAX as u32;
        Some(ClientKey(((bytes.len() as u128) << LEN_SHIFT) | (chars << (unused + first_shift))))
    }

    /// The code this key packs.
    pub fn unpack(self) -> Code {
        let len = (self.0 >> LEN_SHIFT) as usize;
        let mut text = [0u8; PACKED_CHARS_MAX];
        for (i, c) in text.iter_mut().enumerate().take(len) {
            let shift = LEN_SHIFT - BITS_PER_CHAR * (i as u32 + 1);
            *c = CHARS[((self.0 >> shift) & 63) as usize];
        }
        Code::from_valid_bytes(&text[..len])
    }

    /// The key's two halves, for hashing (and a payload's key).
    #[inline]
    pub fn words(self) -> [u64; 2] {
        [(self.0 >> 64) as u64, self.0 as u64]
    }

    /// The key whose `words` these are.
    #[inline]
    pub fn from_words(words: [u64; 2]) -> ClientKey {
        ClientKey(u128::from(words[0]) << 64 | u128::from(words[1]))
    }
}

/// One participant's client order ids used today.
#[derive(Clone, Debug, Default)]
struct OwnerIds {
    /// Packed ids in the order they arrived, while each was greater than the one before.
    rising: Vec<ClientKey>,
    /// Packed ids that arrived out of order.
    others: BTreeSet<ClientKey>,
    /// Ids too long to pack.
    long: BTreeSet<Code>,
}

impl OwnerIds {
    fn contains(&self, code: &Code) -> bool {
        match ClientKey::pack(code) {
            Some(key) => self.rising.binary_search(&key).is_ok() || self.others.contains(&key),
            None => self.long.contains(code),
        }
    }

    fn insert(&mut self, code: Code, packed: Option<ClientKey>) -> bool {
        let Some(key) = packed else {
            return self.long.insert(code);
        };
        if self.rising.last().is_none_or(|last| *last < key) {
            // Greater than every rising id, and every other id was smaller than a rising one when
            // it arrived: new, with no search.
            self.rising.push(key);
            return true;
        }
        self.rising.binary_search(&key).is_err() && self.others.insert(key)
    }

    fn remove(&mut self, code: &Code) {
        match ClientKey::pack(code) {
            Some(key) if self.rising.last() == Some(&key) => {
                self.rising.pop();
            }
            Some(key) => {
                if let Ok(at) = self.rising.binary_search(&key) {
                    self.rising.remove(at);
                } else {
                    self.others.remove(&key);
                }
            }
            None => {
                self.long.remove(code);
            }
        }
    }

    fn len(&self) -> usize {
        self.rising.len() + self.others.len() + self.long.len()
    }
}

/// The client order ids each participant has used today.
#[derive(Clone, Debug, Default)]
pub struct ClientIdsToday {
    /// By participant key.
    owners: Vec<OwnerIds>,
}

impl ClientIdsToday {
    pub fn contains(&self, owner: Pk, code: &Code) -> bool {
        self.owners.get(owner.0 as usize).is_some_and(|ids| ids.contains(code))
    }

    /// Records `code` as used by `owner` today; false if it already was.
    pub fn insert(&mut self, owner: Pk, code: Code) -> bool {
        self.insert_packed(owner, code, ClientKey::pack(&code))
    }

    /// `insert` with the id already packed (`ClientKey::pack(&code)`).
    pub fn insert_packed(&mut self, owner: Pk, code: Code, packed: Option<ClientKey>) -> bool {
        debug_assert_eq!(packed, ClientKey::pack(&code));
        let at = owner.0 as usize;
        if self.owners.len() <= at {
            self.owners.resize_with(at + 1, OwnerIds::default);
        }
        self.owners[at].insert(code, packed)
    }

    /// Gives back an id just claimed by `insert` (its order was rejected).
    pub fn remove(&mut self, owner: Pk, code: &Code) {
        if let Some(ids) = self.owners.get_mut(owner.0 as usize) {
            ids.remove(code);
        }
    }

    /// A new day: every id may be used again.
    pub fn clear(&mut self) {
        self.owners.clear();
    }

    pub fn len(&self) -> usize {
        self.owners.iter().map(OwnerIds::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Each participant's ids in order (length, then characters): the canonical form that
    /// snapshots and the state hash see, whatever order the ids arrived in.
    fn canonical(&self) -> Vec<(Pk, Vec<Code>)> {
        let mut all = Vec::new();
        for (pk, ids) in self.owners.iter().enumerate().filter(|(_, ids)| ids.len() > 0) {
            let mut packed: Vec<ClientKey> = ids.rising.iter().chain(ids.others.iter()).copied().collect();
            packed.sort_unstable();
            // Every packed id is shorter than every long one: packed first keeps the code order.
            let codes = packed.into_iter().map(ClientKey::unpack).chain(ids.long.iter().copied()).collect();
            all.push((Pk(pk as u32), codes));
        }
        all
    }
}

impl Serialize for ClientIdsToday {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.canonical().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for ClientIdsToday {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<ClientIdsToday, D::Error> {
        let all = Vec::<(Pk, Vec<Code>)>::deserialize(deserializer)?;
        let mut ids = ClientIdsToday::default();
        for (owner, codes) in all {
            for code in codes {
                if !ids.insert(owner, code) {
                    return Err(serde::de::Error::custom(format!("client order id {code} appears twice")));
                }
            }
        }
        Ok(ids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(text: &str) -> Code {
        Code::parse(text, Code::BYTES_MAX).unwrap()
    }

    #[test]
    fn packed_keys_unpack_and_order_as_codes_do() {
        let texts = ["-", "0", "9", "A", "Z", "_", "a", "z", "c1", "c10", "c9", "zz-__09AZaz", "abcdefghijklmnopqrst"];
        for a in texts {
            let ka = ClientKey::pack(&code(a)).unwrap();
            assert_eq!(ka.unpack(), code(a));
            for b in texts {
                let kb = ClientKey::pack(&code(b)).unwrap();
                assert_eq!(ka.cmp(&kb), code(a).cmp(&code(b)), "{a} vs {b}");
            }
        }
        assert_eq!(ClientKey::pack(&code("abcdefghijklmnopqrstu")), None);
    }

    #[test]
    fn the_days_ids_refuse_repeats_in_any_order_and_give_back_claims() {
        let mut ids = ClientIdsToday::default();
        let long = "x".repeat(30);
        for text in ["c1", "c2", "c10", "b7", long.as_str(), "c11"] {
            assert!(ids.insert(Pk(1), code(text)), "{text}");
        }
        for text in ["c1", "c2", "c10", "b7", long.as_str(), "c11"] {
            assert!(!ids.insert(Pk(1), code(text)), "{text} again");
            assert!(ids.contains(Pk(1), &code(text)));
            assert!(!ids.contains(Pk(0), &code(text)));
        }
        assert!(ids.insert(Pk(0), code("c1")), "another participant's ids are its own");
        ids.remove(Pk(1), &code("b7"));
        ids.remove(Pk(1), &code("c11"));
        assert!(!ids.contains(Pk(1), &code("b7")) && !ids.contains(Pk(1), &code("c11")));
        assert_eq!(ids.len(), 5);
        let bytes = bincode::serialize(&ids).unwrap();
        let back: ClientIdsToday = bincode::deserialize(&bytes).unwrap();
        assert_eq!(bincode::serialize(&back).unwrap(), bytes);
        assert_eq!(back.canonical()[1].1, vec![code("c1"), code("c2"), code("c10"), code(&long)]);
    }
}
