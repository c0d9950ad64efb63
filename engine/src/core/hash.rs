//! The state hash: FNV-1a (64-bit) over the canonical bincode encoding of the market. Every map in
//! the core is ordered, so the encoding — and the hash — depend only on the state, never on
//! addresses or insertion history.

use std::io;

/// Streams bytes into an FNV-1a 64-bit hash.
pub struct StateHasher {
    state: u64,
}

impl Default for StateHasher {
    fn default() -> StateHasher {
        StateHasher { state: 0xcbf2_9ce4_8422_2325 }
    }
}

impl StateHasher {
    pub fn update(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.state ^= b as u64;
            self.state = self.state.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    pub fn finish(&self) -> u64 {
        self.state
    }
}

impl io::Write for StateHasher {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Hashes any serialisable value through its bincode encoding.
pub fn hash_of<T: serde::Serialize>(value: &T) -> u64 {
    let mut hasher = StateHasher::default();
    bincode::serialize_into(&mut hasher, value).expect("state serialises");
    hasher.finish()
}
