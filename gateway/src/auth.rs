//! Tokens: participants' tokens are 32 random bytes in hex, shown once at registration; the core
//! keeps only their SHA-256. The operator token is compared by its SHA-256 in constant time.

use rand::RngCore;
use sha2::{Digest, Sha256};

/// A new participant token: 32 bytes from the OS's generator, as 64 lowercase hex digits.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let mut text = String::with_capacity(64);
    for byte in bytes {
        text.push(char::from_digit((byte >> 4) as u32, 16).expect("a nibble"));
        text.push(char::from_digit((byte & 0x0f) as u32, 16).expect("a nibble"));
    }
    text
}

/// What the core stores and the directory looks tokens up by.
pub fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Equal digests, in time that does not depend on where they differ.
pub fn digests_equal(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_64_hex_digits_and_differ() {
        let a = new_token();
        let b = new_token();
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_ne!(a, b);
    }

    #[test]
    fn hashes_compare_by_value() {
        assert!(digests_equal(&token_hash("op"), &token_hash("op")));
        assert!(!digests_equal(&token_hash("op"), &token_hash("oq")));
    }
}
