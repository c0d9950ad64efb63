//! Rendering what the gateway sends on `/ws`: replies, private reports, errors and query answers,
//! with the protocol's field names. Money is a decimal string with exactly 2 places (`Fen`'s
//! `Display`), quantities and ids are JSON integers, `ts` is engine time in µs, `day` is
//! `YYYY-MM-DD`.
//!
//! Every message is rendered with `type` first and without `req_id`; [`splice`] inserts the
//! `req_id` (and, for `participant_registered`, the token) into the requesting session's copy, so
//! one rendering serves every session of a participant.

use super::fields::ReqId;
use huashi_engine::command::ClockSettings;
use huashi_engine::core::book::{BookState, DoneReason, OrderType, TimeInForce};
use huashi_engine::core::catalogue::Grade;
use huashi_engine::core::clock::ClockPhase;
use huashi_engine::core::complaints::Quality;
use huashi_engine::core::credit::Account;
use huashi_engine::core::dispatch::{Centi, DispatchView};
use huashi_engine::core::fees::FeeSchedule;
use huashi_engine::core::limits::MarketLimits;
use huashi_engine::core::lots::Lot;
use huashi_engine::event::{Award, Liquidity, OrderReport, PresaleSale};
use huashi_engine::reject::RejectCode;
use huashi_engine::types::{Code, Day, EngineTime, Fen};
use serde::{Serialize, Serializer};

/// Money on the wire: `"3.45"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Money(pub Fen);

impl Serialize for Money {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

/// A trading day on the wire: `"2026-11-29"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DayText(pub Day);

/// A fee schedule on the wire (protocol section 8): percentages and money as decimal strings.
#[derive(Serialize, Clone, Debug, PartialEq, Eq)]
pub struct FeesJson {
    pub commission_pct: String,
    pub clock_fee_per_container: Money,
    pub book_fee_pct: String,
}

impl FeesJson {
    pub fn new(fees: &FeeSchedule) -> FeesJson {
        FeesJson {
            commission_pct: ppm_pct(fees.commission_ppm),
            clock_fee_per_container: Money(fees.clock_fee_per_container),
            book_fee_pct: ppm_pct(fees.book_fee_ppm),
        }
    }
}

/// A fee schedule and the day it is (or will be) in force.
#[derive(Serialize, Clone, Debug, PartialEq, Eq)]
pub struct DatedFees {
    #[serde(flatten)]
    pub fees: FeesJson,
    pub day: DayText,
}

/// Parts per million as a percentage with at least 2 decimal places: 50,000 → "5.00",
/// 1,000 → "0.10", 125 → "0.0125".
pub fn ppm_pct(ppm: u32) -> String {
    let mut pct = rust_decimal::Decimal::new(ppm as i64, 4).normalize();
    if pct.scale() < 2 {
        pct.rescale(2);
    }
    pct.to_string()
}

impl Serialize for DayText {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

pub fn book_state(state: BookState) -> &'static str {
    match state {
        BookState::Closed => "closed",
        BookState::PreOpen => "pre_open",
        BookState::Open => "open",
    }
}

pub fn order_type(order_type: OrderType) -> &'static str {
    match order_type {
        OrderType::Limit => "limit",
        OrderType::Market => "market",
    }
}

pub fn time_in_force(tif: TimeInForce) -> &'static str {
    match tif {
        TimeInForce::Gtc => "gtc",
        TimeInForce::Day => "day",
        TimeInForce::Ioc => "ioc",
        TimeInForce::Fok => "fok",
    }
}

pub fn done_reason(reason: DoneReason) -> &'static str {
    match reason {
        DoneReason::Filled => "filled",
        DoneReason::Cancelled => "cancelled",
        DoneReason::Expired => "expired",
        DoneReason::SelfTrade => "self_trade",
    }
}

pub fn liquidity(liquidity: Liquidity) -> &'static str {
    match liquidity {
        Liquidity::Maker => "maker",
        Liquidity::Taker => "taker",
    }
}

/// A lot object (protocol section 5); `min_price` only when the viewer may see the reserve.
#[derive(Serialize, Debug)]
pub struct LotJson<'a> {
    pub lot_id: u64,
    pub grower: Code,
    pub product: Code,
    pub grade: &'a str,
    pub units_per_container: u32,
    pub containers: u32,
    /// What may still be sold, presale offers included (0 once the lot is finished).
    pub remaining: u32,
    pub sold: u32,
    pub unsold: u32,
    pub min_purchase: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_price: Option<Money>,
    pub origin: Option<&'a str>,
    pub photo_url: Option<&'a str>,
    pub note: Option<&'a str>,
    pub status: &'static str,
    pub day: DayText,
    pub variety: Option<&'a str>,
    pub stem_length_cm: Option<u16>,
    pub maturity: Option<u8>,
    pub packaging: Option<&'static str>,
    pub base: Option<&'a str>,
    pub batch: Option<&'a str>,
    pub harvest_day: Option<DayText>,
    pub clock: Option<u16>,
    pub position: Option<u32>,
    pub start_price: Option<Money>,
    pub presale: Option<PresaleJson>,
    /// The grower's quality index (protocol section 12): null until complaints are kept.
    pub qi: Option<Money>,
}

/// A lot's open presale offer.
#[derive(Serialize, Debug, Clone, Copy)]
pub struct PresaleJson {
    pub price: Money,
    pub containers: u32,
}

/// Text the grower left empty is `null` on the wire.
fn text_or_null(text: &str) -> Option<&str> {
    (!text.is_empty()).then_some(text)
}

impl<'a> LotJson<'a> {
    pub fn new(lot: &'a Lot, with_reserve: bool) -> LotJson<'a> {
        let m = &lot.master;
        LotJson {
            lot_id: lot.id.0,
            grower: lot.grower_id,
            product: lot.product,
            grade: lot.grade.as_str(),
            units_per_container: lot.units_per_container,
            containers: lot.containers,
            remaining: lot.remaining,
            sold: lot.sold,
            unsold: lot.unsold,
            min_purchase: lot.min_purchase,
            min_price: with_reserve.then_some(Money(lot.min_price)),
            origin: text_or_null(&lot.origin),
            photo_url: text_or_null(&lot.photo_url),
            note: text_or_null(&lot.note),
            status: lot.status.as_str(),
            day: DayText(lot.day),
            variety: text_or_null(&m.variety),
            stem_length_cm: m.stem_length_cm,
            maturity: m.maturity,
            packaging: m.packaging.map(|p| p.as_str()),
            base: text_or_null(&m.base),
            batch: text_or_null(&m.batch),
            harvest_day: m.harvest_day.map(DayText),
            clock: lot.clock.map(|c| c.0),
            position: lot.position,
            start_price: lot.start_price.map(Money),
            presale: lot.presale.map(|o| PresaleJson { price: Money(o.price), containers: o.containers }),
            qi: lot.qi.map(|qi| Money(Fen(qi as i64))),
        }
    }
}

/// An order as `order_accepted`, `order_amended` and `get_orders` show it; `quantity` is the
/// open quantity (for `order_accepted`, the quantity asked for); `price` is null for market orders.
#[derive(Serialize, Debug)]
pub struct OrderJson {
    pub order_id: u64,
    pub client_order_id: Code,
    pub symbol: Code,
    pub side: &'static str,
    pub order_type: &'static str,
    pub price: Option<Money>,
    pub quantity: u64,
    pub time_in_force: &'static str,
    pub post_only: bool,
    pub ts: u64,
}

impl OrderJson {
    pub fn new(r: &OrderReport) -> OrderJson {
        OrderJson {
            order_id: r.order_id.0,
            client_order_id: r.client_order_id,
            symbol: r.symbol,
            side: r.side.as_str(),
            order_type: order_type(r.order_type),
            price: r.price.map(Money),
            quantity: r.quantity,
            time_in_force: time_in_force(r.time_in_force),
            post_only: r.post_only,
            ts: r.ts.0,
        }
    }
}

/// Every message a `/ws` session receives, by its protocol `type`.
#[derive(Serialize, Debug)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Msg<'a> {
    Error {
        code: &'static str,
        message: &'a str,
        /// On a dropped standing bid: the lot it was for.
        #[serde(skip_serializing_if = "Option::is_none")]
        lot_id: Option<u64>,
    },
    LoggedIn {
        participant: &'a str,
        roles: &'a [&'static str],
        day: DayText,
        /// A seat's firm (protocol section 4); null for everyone else.
        firm: Option<Code>,
    },
    Pong {
        ts: u64,
    },
    ParticipantRegistered {
        id: Code,
    },
    CreditLimitSet {
        participant: Code,
        /// A seat has no credit limit of its own: null.
        limit: Option<Money>,
        daily_limit: Option<Money>,
    },
    ParticipantStatus {
        participant: Code,
        active: bool,
    },
    ProductDefined {
        code: Code,
    },
    InstrumentDefined {
        symbol: Code,
    },
    LotConsigned {
        lot: LotJson<'a>,
    },
    LotAssigned {
        lot_id: u64,
        clock: u16,
        position: u32,
    },
    ClockConfigured {
        clock: u16,
        step: Money,
        tick_ms: u32,
        pre_roll_ms: u32,
        pause_ms: u32,
        restart_ticks: u32,
        multi_buy_ms: u32,
    },
    ClockState {
        clock: u16,
        state: &'static str,
    },
    LotWithdrawn {
        lot_id: u64,
    },
    AwardVoided {
        clock: u16,
        lot_id: u64,
        round: u32,
        containers: u32,
        remaining: u32,
        #[serde(skip_serializing_if = "Option::is_none")]
        buyer: Option<Code>,
    },
    Award {
        clock: u16,
        lot_id: u64,
        round: u32,
        price: Money,
        containers: u32,
        units: u64,
        amount: Money,
        fee: Money,
        ts: u64,
        remaining: u32,
        standing: bool,
    },
    LotSale {
        lot_id: u64,
        buyer: Code,
        price: Money,
        containers: u32,
        amount: Money,
        commission: Money,
        ts: u64,
        /// `clock` or `presale` (protocol section 11).
        kind: &'static str,
        /// The clock and round of a clock sale; null for a presale.
        clock: Option<u16>,
        round: Option<u32>,
        units: u64,
        remaining: u32,
    },
    StandingBidAccepted {
        lot_id: u64,
        max_price: Money,
        containers: u32,
    },
    StandingBidCancelled {
        lot_id: u64,
    },
    BookState {
        symbol: Code,
        state: &'static str,
    },
    OrderAccepted(OrderJson),
    OrderAmended(OrderJson),
    Fill {
        order_id: u64,
        client_order_id: Code,
        trade_id: u64,
        symbol: Code,
        side: &'static str,
        price: Money,
        quantity: u64,
        leaves: u64,
        liquidity: &'static str,
        ts: u64,
    },
    OrderDone {
        order_id: u64,
        client_order_id: Code,
        symbol: Code,
        reason: &'static str,
        ts: u64,
    },
    Cancelled {
        /// Only in the reply to the operator's `cancel_orders` (whose orders they were).
        #[serde(skip_serializing_if = "Option::is_none")]
        participant: Option<Code>,
        count: u32,
    },
    /// `limits_set` and `limits`: every limit by its `x_max` name.
    LimitsSet(MarketLimits),
    Limits(MarketLimits),
    /// The reply to `set_fees`.
    FeesSet {
        #[serde(flatten)]
        fees: FeesJson,
        effective_day: DayText,
    },
    /// The reply to `get_fees`: today's fees, and those set for the next day.
    Fees {
        current: DatedFees,
        next: Option<DatedFees>,
    },
    Account {
        participant: &'a str,
        credit_limit: Money,
        exposure: Money,
        available: Money,
        bought: Money,
        sold: Money,
        fees: Money,
        commission: Money,
    },
    Lots {
        lots: Vec<LotJson<'a>>,
    },
    Orders {
        orders: Vec<OrderJson>,
    },
    DaySettled {
        day: DayText,
        next_day: DayText,
        trades: u64,
        turnover: Money,
        fees: Money,
    },
    // ── issue 14: planning, the catalogue, presales (protocol section 11) ──
    ClockPlan {
        clock: u16,
        products: Vec<Code>,
        start_time: Option<String>,
    },
    OrderDrawn {
        day: DayText,
        /// 16 hexadecimal digits.
        seed: String,
        growers: &'a [Code],
    },
    LotsPlanned {
        day: DayText,
        assigned: Vec<PlannedJson>,
        unplanned: Vec<u64>,
    },
    Catalogue {
        day: DayText,
        clocks: Vec<CatalogueClock<'a>>,
    },
    PresaleOffered {
        lot_id: u64,
        price: Money,
        containers: u32,
    },
    PresaleBought {
        lot_id: u64,
        price: Money,
        containers: u32,
        units: u64,
        amount: Money,
        fee: Money,
        ts: u64,
        /// The lot's presale purchase number (its dispatch ref `presale:<lot_id>:<n>`).
        number: u32,
        /// Containers still offered after this purchase.
        containers_left: u32,
    },
    PresaleWithdrawn {
        lot_id: u64,
        containers: u32,
    },
    StandingBids {
        bids: Vec<StandingBidJson>,
    },
    Products {
        products: Vec<ProductJson<'a>>,
        instruments: Vec<InstrumentJson>,
    },
    // ── issue 15: after the sale (protocol section 12) ──
    ColdChainSet {
        category: &'static str,
        max_temperature_c: Money,
    },
    Dispatch {
        buyer: Option<Code>,
        day: DayText,
        lines: Vec<DispatchJson>,
    },
    DestinationSet {
        day: DayText,
        destination: &'a str,
    },
    DispatchUpdated(DispatchJson),
    /// To the buyer, when a reading above the category's maximum marks a line (an extension).
    TemperatureAlarm {
        #[serde(rename = "ref")]
        reference: String,
        lot_id: Option<u64>,
        product: Code,
        temperature_c: Option<Money>,
        max_temperature_c: Option<Money>,
        location: &'a str,
        ts: u64,
    },
    ComplaintFiled {
        complaint_id: u64,
        #[serde(rename = "ref")]
        reference: String,
        reason: &'static str,
        containers: u64,
    },
    ComplaintResolved {
        complaint_id: u64,
        decision: &'static str,
        credit: Money,
        #[serde(rename = "ref")]
        reference: String,
        containers: u64,
    },
    Quality {
        grower: Code,
        days: u64,
        lots: u64,
        containers_sold: u64,
        complaints: u64,
        accepted: u64,
        qi: Option<Money>,
    },
}

/// One lot of `lots_planned`.
#[derive(Serialize, Debug)]
pub struct PlannedJson {
    pub lot_id: u64,
    pub clock: u16,
    pub position: u32,
    pub start_price: Money,
}

/// One clock of a catalogue: its lots of the day in auction order (public fields).
#[derive(Serialize, Debug)]
pub struct CatalogueClock<'a> {
    pub clock: u16,
    pub lots: Vec<LotJson<'a>>,
}

/// A standing bid as `get_standing_bids` lists it; `buyer` (an addition) names the seat that
/// placed it when a firm lists its seats' bids.
#[derive(Serialize, Debug)]
pub struct StandingBidJson {
    pub lot_id: u64,
    pub max_price: Money,
    pub containers: u32,
    pub placed_ts: u64,
    pub buyer: Code,
}

/// A product with its grade scale (`get_products`, `GET /api/products`).
#[derive(Serialize, Debug)]
pub struct ProductJson<'a> {
    pub code: Code,
    pub name: &'a str,
    pub category: &'static str,
    pub unit: &'static str,
    pub grades: Vec<&'a str>,
    /// The category's cold-chain maximum (protocol section 12): null until it is kept.
    pub max_temperature_c: Option<String>,
}

#[derive(Serialize, Debug)]
pub struct InstrumentJson {
    pub symbol: Code,
    pub product: Code,
    pub tick_size: Money,
    pub price_band_pct: u32,
    pub state: &'static str,
}

/// A start time on the wire: `"06:30"`, or `"06:30:15"` when it has seconds.
pub fn time_of_day(seconds: u32) -> String {
    let (h, m, s) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    if s == 0 {
        format!("{h:02}:{m:02}")
    } else {
        format!("{h:02}:{m:02}:{s:02}")
    }
}

/// A draw's seed as protocol section 11 publishes it: 16 hexadecimal digits.
pub fn seed_hex(seed: u64) -> String {
    format!("{seed:016x}")
}

/// The reference data `get_products` and `GET /api/products` show, copied from the market on the
/// sequencer thread (tens of products: a cheap copy) and rendered off it.
#[derive(Clone, Debug)]
pub struct ReferenceData {
    pub products: Vec<huashi_engine::core::catalogue::Product>,
    pub instruments: Vec<(huashi_engine::core::catalogue::Instrument, BookState)>,
    /// Each category's cold-chain maximum.
    pub cold_chain: Vec<(huashi_engine::core::catalogue::Category, Centi)>,
}

impl ReferenceData {
    pub fn of(market: &huashi_engine::core::Market) -> ReferenceData {
        ReferenceData {
            products: market.products().values().cloned().collect(),
            instruments: market.listings().values().map(|l| (l.instrument.clone(), l.book.state())).collect(),
            cold_chain: huashi_engine::core::catalogue::Category::ALL
                .into_iter()
                .filter_map(|c| market.max_temperature(c).map(|t| (c, t)))
                .collect(),
        }
    }
}

/// The products and instruments of the market (`get_products`, `GET /api/products`).
pub fn products(data: &ReferenceData) -> Msg<'_> {
    let products = data
        .products
        .iter()
        .map(|p| ProductJson {
            code: p.code,
            name: &p.name,
            category: p.category.as_str(),
            unit: p.unit.as_str(),
            grades: p.grades.iter().map(|g| g.as_str()).collect(),
            max_temperature_c: data
                .cold_chain
                .iter()
                .find(|(c, _)| *c == p.category)
                .map(|(_, t)| temperature(*t).0.to_string()),
        })
        .collect();
    let instruments = data
        .instruments
        .iter()
        .map(|(instrument, state)| InstrumentJson {
            symbol: instrument.symbol,
            product: instrument.product,
            tick_size: Money(instrument.tick_size),
            price_band_pct: instrument.price_band_pct,
            state: book_state(*state),
        })
        .collect();
    Msg::Products { products, instruments }
}

impl Msg<'_> {
    pub fn text(&self) -> String {
        serde_json::to_string(self).expect("messages serialise")
    }

    pub fn clock_configured(clock: u16, s: &ClockSettings) -> Msg<'static> {
        Msg::ClockConfigured {
            clock,
            step: Money(s.step),
            tick_ms: s.tick_ms,
            pre_roll_ms: s.pre_roll_ms,
            pause_ms: s.pause_ms,
            restart_ticks: s.restart_ticks,
            multi_buy_ms: s.multi_buy_ms,
        }
    }

    pub fn clock_state(clock: u16, phase: ClockPhase) -> Msg<'static> {
        Msg::ClockState { clock, state: phase.as_str() }
    }

    pub fn award(a: &Award) -> Msg<'static> {
        Msg::Award {
            clock: a.clock.0,
            lot_id: a.lot.0,
            round: a.round,
            price: Money(a.price),
            containers: a.containers,
            units: a.units,
            amount: Money(a.amount),
            fee: Money(a.fee),
            ts: a.ts.0,
            remaining: a.remaining,
            standing: a.standing,
        }
    }

    pub fn lot_sale(a: &Award) -> Msg<'static> {
        Msg::LotSale {
            lot_id: a.lot.0,
            buyer: a.buyer_id,
            price: Money(a.price),
            containers: a.containers,
            amount: Money(a.amount),
            commission: Money(a.commission),
            ts: a.ts.0,
            kind: "clock",
            clock: Some(a.clock.0),
            round: Some(a.round),
            units: a.units,
            remaining: a.remaining,
        }
    }

    /// The grower's `lot_sale {kind:"presale"}`.
    pub fn presale_lot_sale(p: &PresaleSale) -> Msg<'static> {
        Msg::LotSale {
            lot_id: p.lot.0,
            buyer: p.buyer_id,
            price: Money(p.price),
            containers: p.containers,
            amount: Money(p.amount),
            commission: Money(p.commission),
            ts: p.ts.0,
            kind: "presale",
            clock: None,
            round: None,
            units: p.units,
            remaining: p.remaining,
        }
    }

    pub fn presale_bought(p: &PresaleSale) -> Msg<'static> {
        Msg::PresaleBought {
            lot_id: p.lot.0,
            price: Money(p.price),
            containers: p.containers,
            units: p.units,
            amount: Money(p.amount),
            fee: Money(p.fee),
            ts: p.ts.0,
            number: p.number,
            containers_left: p.offer_left,
        }
    }

    pub fn account<'p>(participant: &'p str, account: &Account) -> Msg<'p> {
        Msg::Account {
            participant,
            credit_limit: Money(account.credit_limit),
            exposure: Money(account.exposure()),
            available: Money(account.available()),
            bought: Money(account.bought),
            sold: Money(account.sold),
            fees: Money(account.fees),
            commission: Money(account.commission),
        }
    }
}

/// `{"type":"error","code":…,"message":…}` (the `req_id` is spliced in by the caller).
pub fn error(code: RejectCode, message: &str) -> String {
    Msg::Error { code: code.as_str(), message, lot_id: None }.text()
}

/// Inserts `"req_id":…` and, when given, `"token":…` right after a message's leading `type`
/// field. Messages rendered here always start with `{"type":"name"`, and names hold no comma.
pub fn splice(body: &str, req_id: Option<&ReqId>, token: Option<&str>) -> String {
    if req_id.is_none() && token.is_none() {
        return body.to_string();
    }
    debug_assert!(body.starts_with("{\"type\":\""), "unexpected message {body}");
    let cut = body.find(',').unwrap_or(body.len() - 1);
    let mut out = String::with_capacity(body.len() + 96);
    out.push_str(&body[..cut]);
    if let Some(req_id) = req_id {
        out.push_str(",\"req_id\":");
        out.push_str(req_id.json());
    }
    if let Some(token) = token {
        out.push_str(",\"token\":");
        out.push_str(&serde_json::to_string(token).expect("strings serialise"));
    }
    out.push_str(&body[cut..]);
    out
}

/// Engine time as the wire's `ts`.
pub fn ts(t: EngineTime) -> u64 {
    t.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use huashi_engine::core::catalogue::Grade;
    use huashi_engine::core::lots::LotStatus;
    use huashi_engine::event::OrderReport;
    use huashi_engine::types::{ClockId, LotId, OrderId, Pk, Side};
    use serde_json::{json, Value};

    fn parse(text: &str) -> Value {
        serde_json::from_str(text).unwrap()
    }

    fn lot() -> Lot {
        Lot {
            id: LotId(7),
            grower: Pk(1),
            grower_id: Code::from_static("g1"),
            product: Code::from_static("ROSE"),
            grade: Grade::A2,
            units_per_container: 50,
            containers: 4,
            remaining: 3,
            sold: 1,
            unsold: 0,
            min_purchase: 1,
            min_price: Fen(80),
            origin: "Yunnan".into(),
            photo_url: String::new(),
            note: "n".into(),
            status: LotStatus::OnClock,
            day: Day::parse("2026-11-29").unwrap(),
            master: huashi_engine::command::MasterData {
                variety: "Carola".into(),
                stem_length_cm: Some(60),
                maturity: Some(2),
                packaging: Some(huashi_engine::core::catalogue::Packaging::Bucket),
                ..Default::default()
            },
            clock: Some(ClockId(1)),
            position: Some(3),
            start_price: Some(Fen(300)),
            presale: None,
            presales: 0,
            sales: Default::default(),
            rounds: 1,
            qi: None,
        }
    }

    #[test]
    fn splice_puts_req_id_and_token_after_type() {
        let id: ReqId = ReqId::read(json!({"req_id": "a"}).as_object().unwrap()).unwrap().unwrap();
        assert_eq!(splice(r#"{"type":"pong","ts":5}"#, Some(&id), None), r#"{"type":"pong","req_id":"a","ts":5}"#);
        assert_eq!(splice(r#"{"type":"x"}"#, Some(&id), None), r#"{"type":"x","req_id":"a"}"#);
        assert_eq!(
            splice(r#"{"type":"participant_registered","id":"b1"}"#, None, Some("ff")),
            r#"{"type":"participant_registered","token":"ff","id":"b1"}"#
        );
        assert_eq!(splice(r#"{"type":"x"}"#, None, None), r#"{"type":"x"}"#);
    }

    #[test]
    fn lot_object_has_protocol_fields_and_hides_the_reserve() {
        let lot = lot();
        let public = parse(&Msg::LotConsigned { lot: LotJson::new(&lot, false) }.text());
        assert_eq!(
            public,
            json!({"type": "lot_consigned", "lot": {"lot_id": 7, "grower": "g1", "product": "ROSE", "grade": "A2",
                "units_per_container": 50, "containers": 4, "remaining": 3, "sold": 1, "unsold": 0, "min_purchase": 1,
                "origin": "Yunnan", "photo_url": null, "note": "n", "status": "on_clock", "day": "2026-11-29",
                "variety": "Carola", "stem_length_cm": 60, "maturity": 2, "packaging": "bucket", "base": null,
                "batch": null, "harvest_day": null, "clock": 1, "position": 3, "start_price": "3.00", "presale": null,
                "qi": null}})
        );
        let own = parse(&Msg::LotConsigned { lot: LotJson::new(&lot, true) }.text());
        assert_eq!(own["lot"]["min_price"], "0.80");
    }

    #[test]
    fn award_and_lot_sale_shapes() {
        let award = Award {
            clock: ClockId(2),
            lot: LotId(7),
            round: 1,
            buyer: Pk(3),
            buyer_id: Code::from_static("b1"),
            grower: Pk(1),
            grower_id: Code::from_static("g1"),
            product: Code::from_static("ROSE"),
            grade: Grade::A1,
            price: Fen(345),
            containers: 2,
            units: 100,
            amount: Fen(34_500),
            fee: Fen(100),
            commission: Fen(1_725),
            remaining: 2,
            ts: EngineTime(1_700_000_000_000_000),
            standing: false,
        };
        assert_eq!(
            parse(&Msg::award(&award).text()),
            json!({"type": "award", "clock": 2, "lot_id": 7, "round": 1, "price": "3.45", "containers": 2, "units": 100,
                "amount": "345.00", "fee": "1.00", "ts": 1_700_000_000_000_000u64, "remaining": 2, "standing": false})
        );
        let sale = parse(&Msg::lot_sale(&award).text());
        for (field, value) in [
            ("type", json!("lot_sale")),
            ("lot_id", json!(7)),
            ("buyer", json!("b1")),
            ("price", json!("3.45")),
            ("containers", json!(2)),
            ("amount", json!("345.00")),
            ("commission", json!("17.25")),
            ("ts", json!(1_700_000_000_000_000u64)),
        ] {
            assert_eq!(sale[field], value, "{field}");
        }
    }

    #[test]
    fn order_reports_match_section_7() {
        let report = OrderReport {
            owner: Pk(1),
            order_id: OrderId(12),
            client_order_id: Code::from_static("c1"),
            symbol: Code::from_static("ROSE-A"),
            side: Side::Buy,
            order_type: OrderType::Limit,
            price: Some(Fen(150)),
            quantity: 10,
            time_in_force: TimeInForce::Gtc,
            post_only: false,
            ts: EngineTime(9),
        };
        assert_eq!(
            parse(&Msg::OrderAccepted(OrderJson::new(&report)).text()),
            json!({"type": "order_accepted", "order_id": 12, "client_order_id": "c1", "symbol": "ROSE-A", "side": "buy",
                "order_type": "limit", "price": "1.50", "quantity": 10, "time_in_force": "gtc", "post_only": false, "ts": 9})
        );
        let market = OrderReport { order_type: OrderType::Market, price: None, ..report };
        assert_eq!(parse(&Msg::OrderAmended(OrderJson::new(&market)).text())["price"], Value::Null);
        let fill = Msg::Fill {
            order_id: 12,
            client_order_id: Code::from_static("c1"),
            trade_id: 3,
            symbol: Code::from_static("ROSE-A"),
            side: "buy",
            price: Money(Fen(150)),
            quantity: 4,
            leaves: 6,
            liquidity: liquidity(Liquidity::Maker),
            ts: 9,
        };
        assert_eq!(
            parse(&fill.text()),
            json!({"type": "fill", "order_id": 12, "client_order_id": "c1", "trade_id": 3, "symbol": "ROSE-A",
                "side": "buy", "price": "1.50", "quantity": 4, "leaves": 6, "liquidity": "maker", "ts": 9})
        );
        let done = Msg::OrderDone {
            order_id: 12,
            client_order_id: Code::from_static("c1"),
            symbol: Code::from_static("ROSE-A"),
            reason: done_reason(DoneReason::SelfTrade),
            ts: 9,
        };
        assert_eq!(parse(&done.text())["reason"], "self_trade");
    }

    #[test]
    fn account_and_settings_shapes() {
        let account =
            Account { credit_limit: Fen(100_000), purchases: Fen(3_450), reserved: Fen(50), ..Account::default() };
        assert_eq!(
            parse(&Msg::account("b1", &account).text()),
            json!({"type": "account", "participant": "b1", "credit_limit": "1000.00", "exposure": "35.00",
                "available": "965.00", "bought": "0.00", "sold": "0.00", "fees": "0.00", "commission": "0.00"})
        );
        assert_eq!(
            parse(&Msg::clock_configured(1, &ClockSettings::default()).text()),
            json!({"type": "clock_configured", "clock": 1, "step": "0.01", "tick_ms": 10, "pre_roll_ms": 1000,
                "pause_ms": 500, "restart_ticks": 10, "multi_buy_ms": 0})
        );
        assert_eq!(
            parse(&error(RejectCode::TooLate, "late")),
            json!({"type": "error", "code": "too_late", "message": "late"})
        );
        let day = Day::parse("2026-11-29").unwrap();
        assert_eq!(
            parse(
                &Msg::DaySettled {
                    day: DayText(day),
                    next_day: DayText(day.next()),
                    trades: 3,
                    turnover: Money(Fen(12_345)),
                    fees: Money(Fen(5))
                }
                .text()
            ),
            json!({"type": "day_settled", "day": "2026-11-29", "next_day": "2026-11-30", "trades": 3, "turnover": "123.45", "fees": "0.05"})
        );
    }
}

/// A dispatch line (protocol section 12); temperatures are decimal strings in °C.
#[derive(Serialize, Debug)]
pub struct DispatchJson {
    #[serde(rename = "ref")]
    pub reference: String,
    pub kind: &'static str,
    pub buyer: Code,
    pub seat: Option<Code>,
    pub lot_id: Option<u64>,
    pub product: Code,
    pub grade: Option<Grade>,
    pub containers: Option<u64>,
    pub units: u64,
    pub destination: String,
    pub status: &'static str,
    pub location: String,
    pub temperature_c: Option<Money>,
    pub temperature_alarm: bool,
    pub updated_ts: u64,
    /// The trading day of the purchase (an extension: a line of yesterday may still move today).
    pub day: DayText,
}

impl DispatchJson {
    pub fn new(line: &DispatchView) -> DispatchJson {
        DispatchJson {
            reference: line.reference.to_string(),
            kind: line.reference.kind(),
            buyer: line.buyer_id,
            seat: line.seat.map(|(_, id)| id),
            lot_id: line.reference.lot().map(|l| l.0),
            product: line.product,
            grade: line.grade,
            containers: line.containers,
            units: line.units,
            destination: line.destination.clone(),
            status: line.status.as_str(),
            location: line.location.clone(),
            temperature_c: line.temperature.map(temperature),
            temperature_alarm: line.alarm,
            updated_ts: line.updated.0,
            day: DayText(line.day),
        }
    }
}

/// A temperature in hundredths of a degree, shown like money: `"7.50"`.
pub fn temperature(t: Centi) -> Money {
    Money(Fen(t.0 as i64))
}

/// `quality {…}`: `qi` as a decimal string with two places (`"97.50"`), null with no sales.
pub fn quality(grower: Code, q: &Quality) -> Msg<'static> {
    Msg::Quality {
        grower,
        days: q.days,
        lots: q.lots,
        containers_sold: q.containers_sold,
        complaints: q.complaints,
        accepted: q.accepted,
        qi: q.qi.map(|qi| Money(Fen(qi as i64))),
    }
}
