//! Reading the fields of one request object. Every failure is a `Reject` whose message names the
//! field, so a client can tell what to fix (protocol section 2).
//!
//! - money: a JSON *string*, `-?digits[.digits]`, at most 2 decimal places (trailing zeros
//!   beyond that are accepted: `"3.450"` is 3.45), parsed exactly with `rust_decimal` into fen;
//!   the sign is kept so the core can answer `price_invalid` for a non-positive price;
//! - quantities: non-negative JSON integers; a value past the field's range is `quantity_invalid`;
//! - codes: `[A-Za-z0-9_-]{1,32}` (client order ids up to 36);
//! - `req_id`: a string or an integer of at most 64 characters.
//!
//! A field that is present but `null` counts as absent.

use huashi_engine::core::dispatch::Centi;
use huashi_engine::reject::{Reject, RejectCode};
use huashi_engine::types::{Code, Day, Fen};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde_json::{Map, Value};

/// The longest `req_id` echoed, in characters.
pub const REQ_ID_CHARS_MAX: usize = 64;
/// Ids, product codes and symbols.
pub const CODE_CHARS_MAX: usize = 32;
/// `client_order_id`.
pub const CLIENT_ORDER_ID_CHARS_MAX: usize = 36;

/// A request's `req_id`, kept as the JSON text it is echoed as (`"abc"` or `42`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReqId(Box<str>);

impl ReqId {
    /// Reads `req_id` from a request object: `Ok(None)` when absent or null.
    pub fn read(obj: &Map<String, Value>) -> Result<Option<ReqId>, Reject> {
        let bad = || {
            Reject::bad_request(format!(
                "field `req_id` must be a string or an integer of at most {REQ_ID_CHARS_MAX} characters"
            ))
        };
        match obj.get("req_id") {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) if text.chars().count() <= REQ_ID_CHARS_MAX => {
                Ok(Some(ReqId(serde_json::to_string(text).expect("strings serialise").into())))
            }
            Some(Value::Number(n)) if n.is_i64() || n.is_u64() => Ok(Some(ReqId(n.to_string().into()))),
            Some(_) => Err(bad()),
        }
    }

    /// The JSON text to splice into a reply.
    pub fn json(&self) -> &str {
        &self.0
    }
}

fn bad(message: String) -> Reject {
    Reject::bad_request(message)
}

/// Parses a wire decimal into fen: `-?[0-9]+(\.[0-9]+)?`, at most 2 significant decimal places.
pub fn parse_money(text: &str) -> Result<Fen, &'static str> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let (whole, fraction) = match digits.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (digits, None),
    };
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(whole) || fraction.is_some_and(|f| !all_digits(f)) {
        return Err("must be a decimal string like \"3.45\"");
    }
    let value = Decimal::from_str_exact(text).map_err(|_| "is too large")?;
    let fen = value.checked_mul(Decimal::ONE_HUNDRED).ok_or("is too large")?;
    if !fen.fract().is_zero() {
        return Err("must have at most 2 decimal places");
    }
    fen.to_i64().map(Fen).ok_or("is too large")
}

/// The fields of one request object.
#[derive(Clone, Copy)]
pub struct Fields<'a> {
    obj: &'a Map<String, Value>,
}

impl<'a> Fields<'a> {
    pub fn new(obj: &'a Map<String, Value>) -> Fields<'a> {
        Fields { obj }
    }

    /// The field names present.
    pub fn keys(&self) -> impl Iterator<Item = &'a str> {
        self.obj.keys().map(|k| k.as_str())
    }

    fn get(&self, name: &str) -> Option<&'a Value> {
        self.obj.get(name).filter(|v| !v.is_null())
    }

    fn required(&self, name: &str) -> Result<&'a Value, Reject> {
        self.get(name).ok_or_else(|| bad(format!("missing field `{name}`")))
    }

    pub fn opt_str(&self, name: &str) -> Result<Option<&'a str>, Reject> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(bad(format!("field `{name}` must be a string"))),
        }
    }

    pub fn str(&self, name: &str) -> Result<&'a str, Reject> {
        self.required(name)?;
        Ok(self.opt_str(name)?.expect("present"))
    }

    /// Free text of at most `bytes_max` bytes, clean (protocol section 2); absent is empty.
    pub fn text(&self, name: &str, bytes_max: usize) -> Result<String, Reject> {
        let text = self.opt_str(name)?.unwrap_or("");
        if text.len() > bytes_max {
            return Err(bad(format!("field `{name}` must be at most {bytes_max} bytes")));
        }
        huashi_engine::text::check_clean(name, text)?;
        Ok(text.to_string())
    }

    /// A display name: required, not empty, at most `bytes_max` bytes, clean.
    pub fn name(&self, name: &str, bytes_max: usize) -> Result<String, Reject> {
        let text = self.str(name)?;
        if text.len() > bytes_max {
            return Err(bad(format!("field `{name}` must be at most {bytes_max} bytes")));
        }
        huashi_engine::text::check_name(name, text)?;
        Ok(text.to_string())
    }

    pub fn opt_code(&self, name: &str, chars_max: usize) -> Result<Option<Code>, Reject> {
        match self.opt_str(name)? {
            None => Ok(None),
            Some(text) => Code::parse(text, chars_max)
                .map(Some)
                .ok_or_else(|| bad(format!("field `{name}` must match [A-Za-z0-9_-]{{1,{chars_max}}}"))),
        }
    }

    pub fn code(&self, name: &str, chars_max: usize) -> Result<Code, Reject> {
        self.required(name)?;
        Ok(self.opt_code(name, chars_max)?.expect("present"))
    }

    pub fn opt_money(&self, name: &str) -> Result<Option<Fen>, Reject> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(text)) => {
                parse_money(text).map(Some).map_err(|why| bad(format!("field `{name}` {why}")))
            }
            Some(_) => Err(bad(format!("field `{name}` must be a decimal string like \"3.45\", not a JSON number"))),
        }
    }

    /// A percentage of 0–100 as a decimal string, exact to parts per million (4 places).
    pub fn pct_ppm(&self, name: &str) -> Result<u32, Reject> {
        self.required(name)?;
        let Some(Value::String(text)) = self.get(name) else {
            return Err(bad(format!(
                "field `{name}` must be a decimal string like \"5\" or \"0.1\", not a JSON number"
            )));
        };
        let shown: String = text.chars().take(20).collect();
        let pct = rust_decimal::Decimal::from_str_exact(text.trim())
            .map_err(|_| bad(format!("field `{name}` must be a decimal percentage, not {shown:?}")))?;
        if pct.is_sign_negative() || pct > rust_decimal::Decimal::ONE_HUNDRED {
            return Err(bad(format!("field `{name}` must be between 0 and 100")));
        }
        let ppm = pct * rust_decimal::Decimal::from(10_000);
        if !ppm.fract().is_zero() {
            return Err(bad(format!("field `{name}` has more than 4 decimal places")));
        }
        use rust_decimal::prelude::ToPrimitive;
        ppm.to_u32().ok_or_else(|| bad(format!("field `{name}` must be between 0 and 100")))
    }

    pub fn money(&self, name: &str) -> Result<Fen, Reject> {
        self.required(name)?;
        Ok(self.opt_money(name)?.expect("present"))
    }

    fn opt_unsigned(&self, name: &str) -> Result<Option<u64>, Reject> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Number(n)) => match n.as_u64() {
                Some(v) => Ok(Some(v)),
                None if n.as_i64().is_some() => Err(bad(format!("field `{name}` must not be negative"))),
                // A float, or an integer past u64 (serde_json reads those as floats).
                None => Err(bad(format!("field `{name}` must be a non-negative integer"))),
            },
            Some(_) => Err(bad(format!("field `{name}` must be a non-negative integer"))),
        }
    }

    /// A quantity (containers, units): past `u32` it can never be valid, so `quantity_invalid`.
    pub fn opt_count_u32(&self, name: &str) -> Result<Option<u32>, Reject> {
        self.opt_unsigned(name)?
            .map(|v| {
                u32::try_from(v)
                    .map_err(|_| Reject::new(RejectCode::QuantityInvalid, format!("field `{name}` is too large")))
            })
            .transpose()
    }

    pub fn count_u32(&self, name: &str) -> Result<u32, Reject> {
        self.required(name)?;
        Ok(self.opt_count_u32(name)?.expect("present"))
    }

    pub fn opt_count_u64(&self, name: &str) -> Result<Option<u64>, Reject> {
        self.opt_unsigned(name)
    }

    pub fn count_u64(&self, name: &str) -> Result<u64, Reject> {
        self.required(name)?;
        Ok(self.opt_unsigned(name)?.expect("present"))
    }

    /// A non-quantity integer (ids, settings): past the range is `bad_request`.
    pub fn opt_int_u32(&self, name: &str) -> Result<Option<u32>, Reject> {
        self.opt_unsigned(name)?
            .map(|v| u32::try_from(v).map_err(|_| bad(format!("field `{name}` must be at most {}", u32::MAX))))
            .transpose()
    }

    pub fn int_u32(&self, name: &str) -> Result<u32, Reject> {
        self.required(name)?;
        Ok(self.opt_int_u32(name)?.expect("present"))
    }

    pub fn int_u64(&self, name: &str) -> Result<u64, Reject> {
        self.required(name)?;
        Ok(self.opt_unsigned(name)?.expect("present"))
    }

    pub fn opt_bool(&self, name: &str) -> Result<Option<bool>, Reject> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(bad(format!("field `{name}` must be true or false"))),
        }
    }

    /// One of a fixed set of names; `allowed` lists them for the message.
    pub fn opt_choice<T>(&self, name: &str, parse: fn(&str) -> Option<T>, allowed: &str) -> Result<Option<T>, Reject> {
        match self.opt_str(name) {
            Ok(None) => Ok(None),
            Ok(Some(text)) => {
                parse(text).map(Some).ok_or_else(|| bad(format!("field `{name}` must be one of {allowed}")))
            }
            Err(_) => Err(bad(format!("field `{name}` must be one of {allowed}"))),
        }
    }

    pub fn choice<T>(&self, name: &str, parse: fn(&str) -> Option<T>, allowed: &str) -> Result<T, Reject> {
        self.required(name)?;
        Ok(self.opt_choice(name, parse, allowed)?.expect("present"))
    }

    /// An array of at most `max` items, each parsed by `parse` (`what` names them in errors);
    /// `None` when absent.
    pub fn opt_list<T>(
        &self,
        name: &str,
        parse: impl Fn(&str) -> Option<T>,
        max: usize,
        what: &str,
    ) -> Result<Option<Vec<T>>, Reject> {
        let Some(value) = self.get(name) else { return Ok(None) };
        let wrong = || bad(format!("field `{name}` must be an array of at most {max} {what}"));
        let Value::Array(items) = value else { return Err(wrong()) };
        if items.len() > max {
            return Err(wrong());
        }
        items
            .iter()
            .map(|item| item.as_str().and_then(&parse).ok_or_else(wrong))
            .collect::<Result<Vec<T>, _>>()
            .map(Some)
    }

    /// A small integer (a stem length, a maturity stage); the core checks its range.
    pub fn opt_small_int<T: TryFrom<u64>>(&self, name: &str) -> Result<Option<T>, Reject> {
        self.opt_unsigned(name)?
            .map(|v| T::try_from(v).map_err(|_| bad(format!("field `{name}` is out of range"))))
            .transpose()
    }

    /// A trading day, `"YYYY-MM-DD"`.
    pub fn opt_day(&self, name: &str) -> Result<Option<Day>, Reject> {
        self.opt_str(name)?
            .map(|text| {
                Day::parse(text).ok_or_else(|| bad(format!("field `{name}` must be a date like \"2026-11-29\"")))
            })
            .transpose()
    }

    /// A temperature in °C as a decimal string (`"7.5"`, `"-18"`), to hundredths of a degree.
    pub fn opt_temperature(&self, name: &str) -> Result<Option<Centi>, Reject> {
        let Some(value) = self.get(name) else { return Ok(None) };
        let Value::String(text) = value else {
            return Err(bad(format!("field `{name}` must be a decimal string like \"7.5\", not a JSON number")));
        };
        let centi = parse_money(text).map_err(|e| bad(format!("field `{name}` {e}")))?;
        i32::try_from(centi.0)
            .ok()
            .map(Centi)
            .filter(|c| (Centi::MIN..=Centi::MAX).contains(c))
            .map(Some)
            .ok_or_else(|| bad(format!("field `{name}` must be between -50 and 60 °C")))
    }

    /// A time of day, `"HH:MM"` or `"HH:MM:SS"`, as seconds after midnight.
    pub fn opt_time_of_day(&self, name: &str) -> Result<Option<u32>, Reject> {
        let Some(text) = self.opt_str(name)? else { return Ok(None) };
        let wrong = || bad(format!("field `{name}` must be a time of day like \"06:30\" or \"06:30:00\""));
        let parts: Vec<&str> = text.split(':').collect();
        if !(2..=3).contains(&parts.len())
            || parts.iter().any(|p| p.len() != 2 || !p.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(wrong());
        }
        let number = |i: usize| parts.get(i).map_or(0, |p| p.parse::<u32>().expect("two digits"));
        let (h, m, sec) = (number(0), number(1), number(2));
        if h > 23 || m > 59 || sec > 59 {
            return Err(wrong());
        }
        Ok(Some(h * 3600 + m * 60 + sec))
    }

    /// A percentage of 0–1000 as a decimal string, exact to hundredths of a percent, in basis
    /// points (`"50"` is 5000).
    pub fn opt_pct_bp(&self, name: &str) -> Result<Option<u32>, Reject> {
        let Some(value) = self.get(name) else { return Ok(None) };
        let Value::String(text) = value else {
            return Err(bad(format!("field `{name}` must be a decimal string like \"50\", not a JSON number")));
        };
        let shown: String = text.chars().take(20).collect();
        let pct = rust_decimal::Decimal::from_str_exact(text.trim())
            .map_err(|_| bad(format!("field `{name}` must be a decimal percentage, not {shown:?}")))?;
        let bp = pct * rust_decimal::Decimal::ONE_HUNDRED;
        if pct.is_sign_negative() || pct > rust_decimal::Decimal::from(1000) || !bp.fract().is_zero() {
            return Err(bad(format!("field `{name}` must be between 0 and 1000 with at most 2 decimal places")));
        }
        Ok(bp.to_u32())
    }

    /// A non-empty array of names from a fixed set.
    pub fn choices<T>(&self, name: &str, parse: fn(&str) -> Option<T>, allowed: &str) -> Result<Vec<T>, Reject> {
        let wrong = || bad(format!("field `{name}` must be a non-empty array of {allowed}"));
        let Value::Array(items) = self.required(name)? else { return Err(wrong()) };
        if items.is_empty() || items.len() > 16 {
            return Err(wrong());
        }
        items.iter().map(|item| item.as_str().and_then(parse).ok_or_else(wrong)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn money_parses_exactly_into_fen() {
        assert_eq!(parse_money("3.45"), Ok(Fen(345)));
        assert_eq!(parse_money("3"), Ok(Fen(300)));
        assert_eq!(parse_money("3.4"), Ok(Fen(340)));
        assert_eq!(parse_money("0.01"), Ok(Fen(1)));
        assert_eq!(parse_money("3.450"), Ok(Fen(345)));
        assert_eq!(parse_money("-1.50"), Ok(Fen(-150)));
        assert_eq!(parse_money("0"), Ok(Fen(0)));
        assert_eq!(parse_money("92233720368547758.07"), Ok(Fen(i64::MAX)));
    }

    #[test]
    fn money_rejects_what_is_not_a_plain_two_place_decimal() {
        for text in ["", " 1", "1 ", "1e2", "1.", ".5", "+1", "1_000", "0x10", "NaN", "--1", "1.2.3", "١"] {
            assert_eq!(parse_money(text), Err("must be a decimal string like \"3.45\""), "{text:?}");
        }
        assert_eq!(parse_money("3.456"), Err("must have at most 2 decimal places"));
        assert_eq!(parse_money("0.001"), Err("must have at most 2 decimal places"));
        assert_eq!(parse_money("92233720368547758.08"), Err("is too large"));
        assert_eq!(parse_money("99999999999999999999999999999999"), Err("is too large"));
    }

    #[test]
    fn money_fields_must_be_strings() {
        let o = obj(json!({"price": 3.45, "p2": "x", "p3": 3}));
        let f = Fields::new(&o);
        let e = f.money("price").unwrap_err();
        assert_eq!(e.code, RejectCode::BadRequest);
        assert!(e.message.contains("`price`") && e.message.contains("not a JSON number"), "{}", e.message);
        assert!(f.money("p2").unwrap_err().message.contains("`p2`"));
        assert!(f.money("p3").is_err());
        assert_eq!(f.money("absent").unwrap_err().message, "missing field `absent`");
        assert_eq!(f.opt_money("absent").unwrap(), None);
    }

    #[test]
    fn quantities_are_non_negative_integers() {
        let o = obj(json!({"a": 5, "neg": -1, "float": 1.0, "text": "5", "big": 5_000_000_000u64, "huge": 1e30}));
        let f = Fields::new(&o);
        assert_eq!(f.count_u32("a").unwrap(), 5);
        let neg = f.count_u32("neg").unwrap_err();
        assert_eq!((neg.code, neg.message.as_str()), (RejectCode::BadRequest, "field `neg` must not be negative"));
        assert_eq!(f.count_u32("float").unwrap_err().message, "field `float` must be a non-negative integer");
        assert_eq!(f.count_u32("text").unwrap_err().message, "field `text` must be a non-negative integer");
        assert_eq!(f.count_u32("big").unwrap_err().code, RejectCode::QuantityInvalid);
        assert_eq!(f.count_u64("big").unwrap(), 5_000_000_000);
        assert_eq!(f.count_u64("huge").unwrap_err().code, RejectCode::BadRequest);
        assert_eq!(f.int_u32("big").unwrap_err().code, RejectCode::BadRequest);
    }

    #[test]
    fn codes_follow_the_protocol_alphabet_and_lengths() {
        let long = "a".repeat(33);
        let o = obj(json!({"ok": "ROSE-A_1", "space": "RO SE", "long": long, "num": 5, "coid": "c".repeat(36)}));
        let f = Fields::new(&o);
        assert_eq!(f.code("ok", CODE_CHARS_MAX).unwrap().as_str(), "ROSE-A_1");
        assert!(f.code("space", CODE_CHARS_MAX).unwrap_err().message.contains("`space`"));
        assert!(f.code("long", CODE_CHARS_MAX).is_err());
        assert!(f.code("num", CODE_CHARS_MAX).unwrap_err().message.contains("must be a string"));
        assert!(f.code("coid", CODE_CHARS_MAX).is_err());
        assert!(f.code("coid", CLIENT_ORDER_ID_CHARS_MAX).is_ok());
    }

    #[test]
    fn req_id_is_a_short_string_or_an_integer() {
        let read = |v: Value| ReqId::read(&obj(json!({ "req_id": v })));
        assert_eq!(read(json!("a\"b")).unwrap().unwrap().json(), r#""a\"b""#);
        assert_eq!(read(json!(42)).unwrap().unwrap().json(), "42");
        assert_eq!(read(json!(-7)).unwrap().unwrap().json(), "-7");
        assert_eq!(read(json!(null)).unwrap(), None);
        assert!(read(json!("x".repeat(64))).is_ok());
        assert!(read(json!("x".repeat(65))).unwrap_err().message.contains("`req_id`"));
        assert!(read(json!(1.5)).is_err());
        assert!(read(json!({"a": 1})).is_err());
        assert!(read(json!([1])).is_err());
        assert_eq!(ReqId::read(&obj(json!({}))).unwrap(), None);
    }

    #[test]
    fn choices_name_the_allowed_values() {
        let o = obj(json!({"side": "up", "roles": [], "r2": ["buyer", "x"], "r3": ["buyer", "grower"]}));
        let f = Fields::new(&o);
        let parse_side = |t: &str| (t == "buy" || t == "sell").then_some(t.len());
        let e = f.choice("side", parse_side, "buy, sell").unwrap_err();
        assert_eq!(e.message, "field `side` must be one of buy, sell");
        assert!(f.choices("roles", parse_side, "x").is_err());
        assert!(f.choices("r2", |t| (t == "buyer").then_some(()), "buyer").is_err());
        assert_eq!(f.choices("r3", |t| Some(t.len()), "any").unwrap(), vec![5, 6]);
    }
}
