//! Money as the demo handles it: integer fen inside, the protocol's decimal strings on the wire
//! (`"3.45"`), never a float near an amount. Floats appear only where the simulation draws a
//! price level, and they are rounded to fen at once.

use serde_json::Value;
use std::fmt;

/// An amount or a price per unit, in fen (0.01 CNY).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Fen(pub i64);

impl Fen {
    pub const ZERO: Fen = Fen(0);

    /// CNY as a float (a drawn price level), rounded to the nearest fen.
    pub fn from_cny(cny: f64) -> Fen {
        Fen((cny * 100.0).round() as i64)
    }

    pub fn cny(self) -> f64 {
        self.0 as f64 / 100.0
    }

    /// Parses the protocol's decimal string: `-?digits[.d[d]]`.
    pub fn parse(text: &str) -> Option<Fen> {
        let (negative, digits) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
        if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        if fraction.len() > 2 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let cents = match fraction.len() {
            0 => 0,
            1 => fraction.parse::<i64>().ok()? * 10,
            _ => fraction.parse::<i64>().ok()?,
        };
        let value = whole.parse::<i64>().ok()?.checked_mul(100)?.checked_add(cents)?;
        Some(Fen(if negative { -value } else { value }))
    }

    /// Reads a money field of a protocol message.
    pub fn of(value: &Value) -> Option<Fen> {
        value.as_str().and_then(Fen::parse)
    }

    /// The protocol's wire form, as a JSON string value.
    pub fn json(self) -> Value {
        Value::String(self.to_string())
    }

    /// `self × units`, for an award or a trade.
    pub fn times(self, units: u64) -> Fen {
        Fen(self.0 * units as i64)
    }
}

impl std::ops::Add for Fen {
    type Output = Fen;
    fn add(self, other: Fen) -> Fen {
        Fen(self.0 + other.0)
    }
}

impl std::ops::AddAssign for Fen {
    fn add_assign(&mut self, other: Fen) {
        self.0 += other.0;
    }
}

impl std::ops::Sub for Fen {
    type Output = Fen;
    fn sub(self, other: Fen) -> Fen {
        Fen(self.0 - other.0)
    }
}

impl fmt::Display for Fen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        write!(f, "{sign}{}.{:02}", self.0.abs() / 100, self.0.abs() % 100)
    }
}

/// An amount for people: `12,345.67`.
pub fn grouped(amount: Fen) -> String {
    let plain = amount.to_string();
    let (sign, digits) = match plain.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", plain.as_str()),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, "00"));
    let mut out = String::new();
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    format!("{sign}{out}.{fraction}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_strings_round_trip() {
        assert_eq!(Fen::parse("3.45"), Some(Fen(345)));
        assert_eq!(Fen::parse("3.4"), Some(Fen(340)));
        assert_eq!(Fen::parse("-0.05"), Some(Fen(-5)));
        assert_eq!(Fen::parse("12"), Some(Fen(1200)));
        assert_eq!(Fen::parse("1.234"), None);
        assert_eq!(Fen::parse("x"), None);
        assert_eq!(Fen(-5).to_string(), "-0.05");
        assert_eq!(Fen(123_456_789).to_string(), "1234567.89");
        assert_eq!(grouped(Fen(123_456_789)), "1,234,567.89");
        assert_eq!(grouped(Fen(99)), "0.99");
    }
}
