//! A hand-written reader for the journal's commonest records, book orders and cancels: the very
//! bytes bincode writes for them (nothing on disk changes), read without serde's generic path, so
//! replay decodes the bulk of a busy journal in a fraction of the time. Anything else, anything
//! unusual (a bad tag, a code that does not check, trailing bytes), is left to bincode, which
//! then gives the same value or the same error as ever.
//!
//! bincode 1's default encoding, as `bincode::serialize` writes it: integers little endian at
//! full width, enum variants as a `u32` index, `Option` and `bool` as one byte (0 or 1), a string
//! as a `u64` length and its bytes.

use crate::command::{Action, Actor, Command, OrderEntry};
use crate::core::book::{OrderType, TimeInForce};
use crate::store::JournalEntry;
use crate::types::{Code, EngineTime, Fen, Pk, Side};

/// Variant indices of `Actor` and `Action` (new variants go at the end, so these never move;
/// `decodes_exactly_what_bincode_decodes` checks them against bincode).
const ACTOR_PARTICIPANT: u32 = 1;
const ACTION_NEW_ORDER: u32 = 16;
const ACTION_CANCEL_ORDER: u32 = 17;

/// The entry in `bytes` if it is a participant's `NewOrder` or `CancelOrder` that decodes cleanly;
/// `None` sends the record to bincode.
pub(crate) fn decode(bytes: &[u8]) -> Option<JournalEntry> {
    let mut entry = JournalEntry { ts: EngineTime(0), command: Command::tick() };
    decode_into(bytes, &mut entry).then_some(entry)
}

/// `decode`, written over `entry` (whose storage a replay reuses, so the ~190 bytes of an entry
/// are not copied again); `false` leaves `entry` as it was.
pub(crate) fn decode_into(bytes: &[u8], entry: &mut JournalEntry) -> bool {
    match parse(bytes) {
        Some((ts, actor, action)) => {
            entry.ts = ts;
            entry.command.actor = actor;
            entry.command.action = action;
            true
        }
        None => false,
    }
}

fn parse(bytes: &[u8]) -> Option<(EngineTime, Actor, Action)> {
    let mut r = Bytes(bytes);
    let ts = EngineTime(r.u64()?);
    if r.u32()? != ACTOR_PARTICIPANT {
        return None;
    }
    let actor = Actor::Participant(Pk(r.u32()?));
    let action = match r.u32()? {
        ACTION_NEW_ORDER => Action::NewOrder(OrderEntry {
            client_order_id: r.code()?,
            symbol: r.code()?,
            side: match r.u32()? {
                0 => Side::Buy,
                1 => Side::Sell,
                _ => return None,
            },
            order_type: match r.u32()? {
                0 => OrderType::Limit,
                1 => OrderType::Market,
                _ => return None,
            },
            price: match r.u8()? {
                0 => None,
                1 => Some(Fen(r.u64()? as i64)),
                _ => return None,
            },
            quantity: r.u64()?,
            time_in_force: match r.u32()? {
                0 => TimeInForce::Gtc,
                1 => TimeInForce::Day,
                2 => TimeInForce::Ioc,
                3 => TimeInForce::Fok,
                _ => return None,
            },
            post_only: match r.u8()? {
                0 => false,
                1 => true,
                _ => return None,
            },
        }),
        ACTION_CANCEL_ORDER => Action::CancelOrder { client_order_id: r.code()? },
        _ => return None,
    };
    // bincode would ignore trailing bytes; a record with any is left to it all the same.
    r.0.is_empty().then_some((ts, actor, action))
}

struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    #[inline]
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(*head)
    }
    #[inline]
    fn u8(&mut self) -> Option<u8> {
        Some(self.take::<1>()?[0])
    }
    #[inline]
    fn u32(&mut self) -> Option<u32> {
        self.take().map(u32::from_le_bytes)
    }
    #[inline]
    fn u64(&mut self) -> Option<u64> {
        self.take().map(u64::from_le_bytes)
    }
    /// A code as `Code`'s `Deserialize` accepts it: 1 to 36 of `[A-Za-z0-9_-]` (so ASCII, and
    /// the UTF-8 check bincode makes first cannot fail).
    #[inline]
    fn code(&mut self) -> Option<Code> {
        let len = usize::try_from(self.u64()?).ok()?;
        if len == 0 || len > Code::BYTES_MAX || len > self.0.len() {
            return None;
        }
        let (text, rest) = self.0.split_at(len);
        if !text.iter().all(|&b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
            return None;
        }
        self.0 = rest;
        Some(Code::from_valid_bytes(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn bincode_decode(bytes: &[u8]) -> Option<JournalEntry> {
        bincode::deserialize(bytes).ok()
    }

    fn random_code(rng: &mut impl Rng) -> Code {
        const ALPHABET: &[u8] = b"abcXYZ019_-";
        let len = rng.gen_range(1..=Code::BYTES_MAX);
        let text: String = (0..len).map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char).collect();
        Code::parse(&text, Code::BYTES_MAX).unwrap()
    }

    fn random_entry(rng: &mut impl Rng) -> JournalEntry {
        let actor = match rng.gen_range(0..8) {
            0 => Actor::Operator,
            1 => Actor::System,
            _ => Actor::Participant(Pk(rng.gen())),
        };
        let action = match rng.gen_range(0..6) {
            0 => Action::CancelOrder { client_order_id: random_code(rng) },
            1 => Action::CancelAll { symbol: Some(random_code(rng)) },
            2 => Action::Tick,
            _ => Action::NewOrder(OrderEntry {
                client_order_id: random_code(rng),
                symbol: random_code(rng),
                side: if rng.gen() { Side::Buy } else { Side::Sell },
                order_type: if rng.gen() { OrderType::Limit } else { OrderType::Market },
                price: rng.gen::<bool>().then(|| Fen(rng.gen())),
                quantity: rng.gen(),
                time_in_force: [TimeInForce::Gtc, TimeInForce::Day, TimeInForce::Ioc, TimeInForce::Fok]
                    [rng.gen_range(0..4)],
                post_only: rng.gen(),
            }),
        };
        JournalEntry { ts: EngineTime(rng.gen()), command: Command { actor, action } }
    }

    /// The fast reader may only ever say what bincode says: on every encoded entry, and on every
    /// damaged copy of one (a changed byte, a cut, an extra byte), it either steps aside or
    /// returns exactly bincode's value.
    #[test]
    fn decodes_exactly_what_bincode_decodes() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(16);
        let (mut fast, mut damaged_fast) = (0, 0);
        for _ in 0..20_000 {
            let entry = random_entry(&mut rng);
            let bytes = bincode::serialize(&entry).unwrap();
            let decoded = decode(&bytes);
            let is_book = matches!(entry.command.actor, Actor::Participant(_))
                && matches!(entry.command.action, Action::NewOrder(_) | Action::CancelOrder { .. });
            assert_eq!(decoded.is_some(), is_book, "{entry:?}");
            if let Some(decoded) = decoded {
                assert_eq!(decoded, entry);
                fast += 1;
            }
            for _ in 0..4 {
                let mut damaged = bytes.clone();
                match rng.gen_range(0..4) {
                    0 => damaged.truncate(rng.gen_range(0..bytes.len())),
                    1 => damaged.push(rng.gen()),
                    _ => {
                        let at = rng.gen_range(0..bytes.len());
                        damaged[at] = rng.gen();
                    }
                }
                if let Some(decoded) = decode(&damaged) {
                    assert_eq!(Some(decoded), bincode_decode(&damaged), "{damaged:?}");
                    damaged_fast += 1;
                }
            }
        }
        assert!(fast > 10_000 && damaged_fast > 5_000, "fast {fast}, damaged {damaged_fast}");
    }

    #[test]
    fn codes_bincode_refuses_are_left_to_bincode() {
        let entry = |coid: &str| {
            let mut bytes = bincode::serialize(&JournalEntry {
                ts: EngineTime(1),
                command: Command::new(
                    Actor::Participant(Pk(0)),
                    Action::CancelOrder { client_order_id: Code::from_static("x") },
                ),
            })
            .unwrap();
            bytes.truncate(bytes.len() - 9);
            bytes.extend_from_slice(&(coid.len() as u64).to_le_bytes());
            bytes.extend_from_slice(coid.as_bytes());
            bytes
        };
        assert!(decode(&entry("ok_1")).is_some());
        for bad in ["", "has space", "é", &"x".repeat(37)] {
            assert!(decode(&entry(bad)).is_none(), "{bad:?}");
            assert!(bincode_decode(&entry(bad)).is_none(), "{bad:?}");
        }
    }
}
