//! Newtypes for the market's units and ids: money in fen, quantities, ids, days and engine time.
//!
//! Everything inside the core is an integer. `Fen` is 0.01 CNY; prices are per unit (stem, pot,
//! bunch); amounts are `price × units`. Arithmetic on money is overflow-checked: a result that does
//! not fit is a rejection (`Reject::QuantityInvalid` / `PriceInvalid`) at the edge, never a wrap.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Money and prices in fen (0.01 CNY).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Fen(pub i64);

impl Fen {
    pub const ZERO: Fen = Fen(0);

    pub fn checked_add(self, other: Fen) -> Option<Fen> {
        self.0.checked_add(other.0).map(Fen)
    }
    pub fn checked_sub(self, other: Fen) -> Option<Fen> {
        self.0.checked_sub(other.0).map(Fen)
    }
    pub fn checked_mul(self, factor: u64) -> Option<Fen> {
        i64::try_from(factor).ok().and_then(|f| self.0.checked_mul(f)).map(Fen)
    }
}

/// Prints `1234` fen as `12.34`, the wire's decimal-string form.
impl fmt::Display for Fen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        write!(f, "{sign}{}.{:02}", abs / 100, abs % 100)
    }
}

/// Rounds `numerator / denominator` to the nearest integer, ties to even (banker's rounding), the
/// rule protocol section 8 sets for every fee. Exact: no floating point anywhere.
pub fn div_round_half_even(numerator: i128, denominator: i128) -> i128 {
    assert!(denominator > 0, "denominator must be positive");
    let quotient = numerator.div_euclid(denominator);
    let remainder = numerator.rem_euclid(denominator);
    let twice = remainder * 2;
    if twice > denominator || (twice == denominator && quotient % 2 != 0) {
        quotient + 1
    } else {
        quotient
    }
}

/// Engine time: microseconds since the Unix epoch, stamped by the sequencer on every command.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct EngineTime(pub u64);

impl EngineTime {
    pub fn plus_ms(self, ms: u64) -> EngineTime {
        EngineTime(self.0.saturating_add(ms.saturating_mul(1000)))
    }
}

/// A trading day as days since 1970-01-01; printed `YYYY-MM-DD`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Day(pub i32);

impl Day {
    /// The civil day that contains engine time `t` (UTC+8, Shanghai's market day).
    pub fn containing(t: EngineTime) -> Day {
        const SHANGHAI_OFFSET_US: u64 = 8 * 3600 * 1_000_000;
        Day(((t.0 + SHANGHAI_OFFSET_US) / 86_400_000_000) as i32)
    }
    pub fn next(self) -> Day {
        Day(self.0 + 1)
    }
    /// Parses `YYYY-MM-DD`; `None` for anything else, including impossible dates.
    pub fn parse(text: &str) -> Option<Day> {
        let b = text.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return None;
        }
        let num = |s: &str| s.parse::<u32>().ok();
        let (y, m, d) = (num(&text[0..4])?, num(&text[5..7])?, num(&text[8..10])?);
        let day = Day(days_from_civil(y as i32, m, d));
        (day.to_string() == text).then_some(day)
    }
}

impl fmt::Display for Day {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, m, d) = civil_from_days(self.0);
        write!(f, "{y:04}-{m:02}-{d:02}")
    }
}

// Howard Hinnant's civil-calendar algorithms: exact for every day we will ever trade.
fn civil_from_days(z: i32) -> (i32, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i32::from(m <= 2);
    (y, m, d)
}

fn days_from_civil(y: i32, m: u32, d: u32) -> i32 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = m as i32;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i32 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A participant inside the core: an index into the market's participant table. The wire id (a
/// string) is kept in the table; everything hot (books, credit) uses the small integer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Pk(pub u32);

/// A lot's id: unique for the life of the data directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct LotId(pub u64);

/// A clock's number, `1..=N`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ClockId(pub u16);

/// An order's id on the books: unique for the life of the data directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct OrderId(pub u64);

/// A book trade's id: unique for the life of the data directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TradeId(pub u64);

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Side {
    Buy,
    Sell,
}

impl Side {
    pub fn opposite(self) -> Side {
        match self {
            Side::Buy => Side::Sell,
            Side::Sell => Side::Buy,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Buy => "buy",
            Side::Sell => "sell",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fen_prints_as_two_decimal_yuan() {
        assert_eq!(Fen(345).to_string(), "3.45");
        assert_eq!(Fen(5).to_string(), "0.05");
        assert_eq!(Fen(-1234).to_string(), "-12.34");
        assert_eq!(Fen(0).to_string(), "0.00");
    }

    #[test]
    fn half_even_rounds_ties_to_even() {
        assert_eq!(div_round_half_even(5, 10), 0);
        assert_eq!(div_round_half_even(15, 10), 2);
        assert_eq!(div_round_half_even(25, 10), 2);
        assert_eq!(div_round_half_even(26, 10), 3);
        assert_eq!(div_round_half_even(-5, 10), 0);
        assert_eq!(div_round_half_even(-15, 10), -2);
    }

    #[test]
    fn days_round_trip_through_text() {
        let day = Day::parse("2026-11-29").unwrap();
        assert_eq!(day.to_string(), "2026-11-29");
        assert_eq!(day.next().to_string(), "2026-11-30");
        assert_eq!(Day::parse("2024-02-29").unwrap().next().to_string(), "2024-03-01");
        assert!(Day::parse("2026-02-30").is_none());
        assert!(Day::parse("2026-1-01").is_none());
        // 2026-11-29 00:30 in Shanghai is still 2026-11-28 in UTC.
        let t = EngineTime(((day.0 as u64) * 86_400 - 7 * 3600 - 1800) * 1_000_000);
        assert_eq!(Day::containing(t), day);
    }

    #[test]
    fn codes_order_by_length_then_bytes_as_the_derived_order_did() {
        let texts = ["a", "b", "Z", "-", "_", "9", "ab", "aa", "ba", "c10", "c9", "c100", "c099"];
        let long = ["x".repeat(36), format!("{}y", "x".repeat(35)), format!("y{}", "x".repeat(35)), "x".repeat(33)];
        let all: Vec<&str> = texts.iter().copied().chain(long.iter().map(String::as_str)).collect();
        for a in &all {
            for b in &all {
                let (ca, cb) = (Code::parse(a, 36).unwrap(), Code::parse(b, 36).unwrap());
                let expected = (a.len(), a.as_bytes()).cmp(&(b.len(), b.as_bytes()));
                assert_eq!(ca.cmp(&cb), expected, "{a} vs {b}");
                assert_eq!(ca == cb, a == b);
            }
        }
    }

    #[test]
    fn codes_decode_from_bincode_and_refuse_bad_text() {
        let code = Code::from_static("ROSE-A");
        let bytes = bincode::serialize(&code).unwrap();
        assert_eq!(bincode::deserialize::<Code>(&bytes).unwrap(), code);
        let bad = bincode::serialize("no spaces").unwrap();
        assert!(bincode::deserialize::<Code>(&bad).is_err());
        assert!(bincode::deserialize::<Code>(&bincode::serialize(&"x".repeat(37)).unwrap()).is_err());
    }
}

/// A short identifier from the wire (`[A-Za-z0-9_-]{1,36}`): participant ids, product codes,
/// instrument symbols, client order ids. Stored inline and `Copy`, so events and orders carry
/// them without allocating on the sequencer's path.
///
/// Ordered by length, then bytes (the order of the fields, as a derived `Ord` would have it):
/// ordered maps keyed by codes, and so snapshots and state hashes, depend on exactly this order.
#[derive(Clone, Copy, Eq)]
pub struct Code {
    len: u8,
    bytes: [u8; Code::BYTES_MAX],
}

impl Code {
    pub const BYTES_MAX: usize = 36;
    /// Orders before every real code (those have at least one byte): the start of a range of
    /// keys `(owner, code)` that covers one owner.
    pub const MIN: Code = Code { len: 0, bytes: [0; Code::BYTES_MAX] };

    /// Accepts `[A-Za-z0-9_-]{1,max}`; `None` for anything else.
    pub fn parse(text: &str, max: usize) -> Option<Code> {
        let ok = !text.is_empty()
            && text.len() <= max.min(Code::BYTES_MAX)
            && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !ok {
            return None;
        }
        let mut bytes = [0u8; Code::BYTES_MAX];
        bytes[..text.len()].copy_from_slice(text.as_bytes());
        Some(Code { len: text.len() as u8, bytes })
    }

    /// A code from bytes known to be one (unpacked from a `ClientKey`): the hot path of a fill
    /// report skips the check `parse` makes, which a debug build still makes.
    pub(crate) fn from_valid_bytes(text: &[u8]) -> Code {
        debug_assert!(Code::parse(std::str::from_utf8(text).unwrap_or(" "), Code::BYTES_MAX).is_some());
        let mut bytes = [0u8; Code::BYTES_MAX];
        bytes[..text.len()].copy_from_slice(text);
        Code { len: text.len() as u8, bytes }
    }

    /// For constants: a literal code checked at compile time (a bad one fails the build).
    pub const fn literal(text: &'static str) -> Code {
        let b = text.as_bytes();
        assert!(!b.is_empty() && b.len() <= Code::BYTES_MAX, "a code is 1 to 36 bytes");
        let mut bytes = [0u8; Code::BYTES_MAX];
        let mut i = 0;
        while i < b.len() {
            let c = b[i];
            assert!(c.is_ascii_alphanumeric() || c == b'_' || c == b'-', "a code is [A-Za-z0-9_-]");
            bytes[i] = c;
            i += 1;
        }
        Code { len: b.len() as u8, bytes }
    }

    /// For literals in code and tests; panics on an invalid code.
    pub fn from_static(text: &'static str) -> Code {
        Code::parse(text, Code::BYTES_MAX).unwrap_or_else(|| panic!("invalid code {text:?}"))
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII is ever stored (checked in `parse`).
        std::str::from_utf8(&self.bytes[..self.len as usize]).expect("codes are ASCII")
    }

    /// The code's bytes (ASCII), without the UTF-8 check `as_str` makes.
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }

    /// The bytes as big-endian words: comparing these compares the bytes lexicographically.
    #[inline]
    fn words(&self) -> [u64; 5] {
        let b = &self.bytes;
        let word = |i: usize| u64::from_be_bytes(b[i..i + 8].try_into().expect("8 bytes"));
        let tail = u32::from_be_bytes(b[32..36].try_into().expect("4 bytes"));
        [word(0), word(8), word(16), word(24), u64::from(tail)]
    }
}

// Written out rather than derived: the derived comparison of `[u8; 36]` is a call to libc
// `memcmp` per key, and lookups in the maps keyed by `(Pk, Code)` were a sixth of replay time.
impl Ord for Code {
    #[inline]
    fn cmp(&self, other: &Code) -> std::cmp::Ordering {
        self.len.cmp(&other.len).then_with(|| {
            let (a, b) = (self.words(), other.words());
            for i in 0..a.len() {
                if a[i] != b[i] {
                    return a[i].cmp(&b[i]);
                }
            }
            std::cmp::Ordering::Equal
        })
    }
}

// Written out for the same reason as `Ord`: five word compares instead of a `memcmp` call, on
// every lookup of a product, a plan's products and a participant's client order ids. The same
// relation as the derived one (unused bytes are always zero), so `Hash` stays consistent.
impl PartialEq for Code {
    #[inline]
    fn eq(&self, other: &Code) -> bool {
        self.len == other.len && self.words() == other.words()
    }
}

// What a derived `Hash` would do, written out beside the hand-written `PartialEq`.
impl std::hash::Hash for Code {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.len.hash(state);
        self.bytes.hash(state);
    }
}

impl PartialOrd for Code {
    #[inline]
    fn partial_cmp(&self, other: &Code) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Debug for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Code {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Code, D::Error> {
        // A visitor rather than `String`/`Cow<str>` (serde's `Cow` always allocates): decoding a
        // journaled command then allocates nothing for its codes.
        struct CodeVisitor;
        impl serde::de::Visitor<'_> for CodeVisitor {
            type Value = Code;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a code: 1 to 36 of [A-Za-z0-9_-]")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Code, E> {
                Code::parse(text, Code::BYTES_MAX).ok_or_else(|| E::custom(format!("invalid code {text:?}")))
            }
        }
        deserializer.deserialize_str(CodeVisitor)
    }
}
