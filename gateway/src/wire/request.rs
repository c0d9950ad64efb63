//! One request frame → a typed [`Request`]: the session messages (`login`, `ping`), every
//! state-changing request as the engine's `Action`, and the queries. The gateway checks shape only;
//! every market rule (roles, states, limits) is the core's.

use super::fields::{Fields, ReqId, CLIENT_ORDER_ID_CHARS_MAX, CODE_CHARS_MAX};
use crate::config::Secret;
use huashi_engine::command::{
    Action, ActionKind, ClockPlan, ClockSettingsPatch, Consignment, MasterData, OrderEntry, Roles,
};
use huashi_engine::core::auction::{MASTER_TEXT_BYTES_MAX, NOTE_BYTES_MAX, ORIGIN_BYTES_MAX, PHOTO_URL_BYTES_MAX};
use huashi_engine::core::book::{BookState, OrderType, TimeInForce};
use huashi_engine::core::catalogue::{Category, Grade, Packaging, Unit, GRADES_MAX};
use huashi_engine::core::complaints::{ComplaintReason, Decision, NOTE_BYTES_MAX as COMPLAINT_NOTE_BYTES_MAX};
use huashi_engine::core::dispatch::{DispatchRef, DispatchStatus, PLACE_BYTES_MAX};
use huashi_engine::core::fees::FeeSchedule;
use huashi_engine::core::limits::{MarketLimits, MarketLimitsPatch};
use huashi_engine::core::lots::LotStatus;
use huashi_engine::core::planning::START_MARKUP_BP_DEFAULT;
use huashi_engine::reject::Reject;
use huashi_engine::types::{ClockId, Code, Day, Fen, LotId, Side};
use serde_json::Value;

/// What a request is: the session's own messages, an action for the engine, or a query.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestKind {
    Login,
    Ping,
    Action(ActionKind),
    GetAccount,
    GetStatement,
    GetLots,
    GetOrders,
    GetLimits,
    GetFees,
    GetStandingBids,
    GetProducts,
    GetCatalogue,
    GetDispatch,
    GetQuality,
}

impl RequestKind {
    /// The request's `type` on the wire; an action's is the engine's name for it.
    pub const fn name(self) -> &'static str {
        match self {
            RequestKind::Login => "login",
            RequestKind::Ping => "ping",
            RequestKind::Action(kind) => kind.name(),
            RequestKind::GetAccount => "get_account",
            RequestKind::GetStatement => "get_statement",
            RequestKind::GetLots => "get_lots",
            RequestKind::GetOrders => "get_orders",
            RequestKind::GetLimits => "get_limits",
            RequestKind::GetFees => "get_fees",
            RequestKind::GetStandingBids => "get_standing_bids",
            RequestKind::GetProducts => "get_products",
            RequestKind::GetCatalogue => "get_catalogue",
            RequestKind::GetDispatch => "get_dispatch",
            RequestKind::GetQuality => "get_quality",
        }
    }
}

/// Every request of the protocol, in the order of its sections (new ones at the end); the index
/// is a request's `kind` (metrics count by it). Every action but the engine's own is here once
/// (a unit test holds that), and `request()` parses each kind in an exhaustive `match`.
pub const REQUEST_KINDS: [RequestKind; 49] = [
    RequestKind::Login,
    RequestKind::Ping,
    RequestKind::Action(ActionKind::RegisterParticipant),
    RequestKind::Action(ActionKind::SetCreditLimit),
    RequestKind::Action(ActionKind::SuspendParticipant),
    RequestKind::Action(ActionKind::ReinstateParticipant),
    RequestKind::Action(ActionKind::DefineProduct),
    RequestKind::Action(ActionKind::DefineInstrument),
    RequestKind::Action(ActionKind::ConsignLot),
    RequestKind::Action(ActionKind::AssignLot),
    RequestKind::Action(ActionKind::ConfigureClock),
    RequestKind::Action(ActionKind::StartClock),
    RequestKind::Action(ActionKind::HaltClock),
    RequestKind::Action(ActionKind::WithdrawLot),
    RequestKind::Action(ActionKind::VoidAward),
    RequestKind::Action(ActionKind::Bid),
    RequestKind::Action(ActionKind::StandingBid),
    RequestKind::Action(ActionKind::CancelStandingBid),
    RequestKind::Action(ActionKind::SetBookState),
    RequestKind::Action(ActionKind::NewOrder),
    RequestKind::Action(ActionKind::CancelOrder),
    RequestKind::Action(ActionKind::AmendOrder),
    RequestKind::Action(ActionKind::CancelAll),
    RequestKind::GetAccount,
    RequestKind::GetStatement,
    RequestKind::GetLots,
    RequestKind::GetOrders,
    RequestKind::Action(ActionKind::EndOfDay),
    RequestKind::Action(ActionKind::SetLimits),
    RequestKind::GetLimits,
    RequestKind::Action(ActionKind::CancelOrders),
    RequestKind::Action(ActionKind::SetFees),
    RequestKind::GetFees,
    RequestKind::GetStandingBids,
    RequestKind::GetProducts,
    RequestKind::GetCatalogue,
    RequestKind::Action(ActionKind::SetClockPlan),
    RequestKind::Action(ActionKind::DrawOrder),
    RequestKind::Action(ActionKind::PlanLots),
    RequestKind::Action(ActionKind::OfferPresale),
    RequestKind::Action(ActionKind::BuyPresale),
    RequestKind::Action(ActionKind::WithdrawPresale),
    RequestKind::Action(ActionKind::SetColdChain),
    RequestKind::GetDispatch,
    RequestKind::Action(ActionKind::SetDestination),
    RequestKind::Action(ActionKind::UpdateDispatch),
    RequestKind::Action(ActionKind::FileComplaint),
    RequestKind::Action(ActionKind::ResolveComplaint),
    RequestKind::GetQuality,
];

/// The wire names of `REQUEST_KINDS`, in the same order.
pub const REQUEST_TYPES: [&str; REQUEST_KINDS.len()] = {
    let mut names = [""; REQUEST_KINDS.len()];
    let mut i = 0;
    while i < names.len() {
        names[i] = REQUEST_KINDS[i].name();
        i += 1;
    }
    names
};

/// The longest login token looked at; longer ones are simply wrong.
pub const TOKEN_BYTES_MAX: usize = 256;
/// A participant's or product's display name (the core checks the same bound).
pub const NAME_BYTES_MAX: usize = huashi_engine::text::NAME_BYTES_MAX;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    Login {
        /// Never printed: `Debug` shows `***`.
        token: Secret,
        cancel_on_disconnect: bool,
    },
    Ping,
    /// Becomes `Action::RegisterParticipant` once the session has drawn the token.
    RegisterParticipant {
        id: Code,
        name: String,
        roles: Roles,
        credit_limit: Fen,
        firm: Option<Code>,
        daily_limit: Option<Fen>,
    },
    /// Every other state-changing request.
    Command(Action),
    GetAccount,
    GetLots {
        status: Option<LotStatus>,
    },
    GetOrders,
    GetStatement {
        day: Day,
        participant: Option<Code>,
    },
    GetLimits,
    GetFees,
    GetStandingBids,
    GetProducts,
    /// `day` absent: the current trading day.
    GetCatalogue {
        day: Option<Day>,
    },
    /// `day` absent: the current trading day; `buyer` absent: the asker's own lines (a buyer)
    /// or every buyer's (operator, logistics).
    GetDispatch {
        day: Option<Day>,
        buyer: Option<Code>,
    },
    GetQuality {
        grower: Code,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parsed {
    pub req_id: Option<ReqId>,
    /// Index into [`REQUEST_TYPES`].
    pub kind: usize,
    pub request: Request,
}

/// Why a frame was refused, with the `req_id` to echo when it could be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused {
    pub req_id: Option<ReqId>,
    pub reject: Reject,
}

/// Parses one text frame.
pub fn parse(text: &str) -> Result<Parsed, Refused> {
    let refuse = |req_id: Option<ReqId>, message: String| Refused { req_id, reject: Reject::bad_request(message) };
    let value: Value = serde_json::from_str(text).map_err(|e| refuse(None, format!("not valid JSON: {e}")))?;
    let Value::Object(obj) = value else {
        return Err(refuse(None, "a message must be a JSON object".into()));
    };
    let req_id = ReqId::read(&obj).map_err(|reject| Refused { req_id: None, reject })?;
    let kind_name = match obj.get("type") {
        Some(Value::String(t)) => t.as_str(),
        Some(_) => return Err(refuse(req_id, "field `type` must be a string".into())),
        None => return Err(refuse(req_id, "missing field `type`".into())),
    };
    let Some(kind) = REQUEST_TYPES.iter().position(|t| *t == kind_name) else {
        let shown: String = kind_name.chars().take(40).collect();
        return Err(refuse(req_id, format!("unknown type {shown:?}")));
    };
    match request(REQUEST_KINDS[kind], Fields::new(&obj)) {
        Ok(request) => Ok(Parsed { req_id, kind, request }),
        Err(reject) => Err(Refused { req_id, reject }),
    }
}

const ROLES: &str = "operator, grower, buyer, logistics";
const DISPATCH_STATUSES: &str = "awaiting, picked, cold_store, loaded, delivered";
const COMPLAINT_REASONS: &str = "quality, quantity, grade, damaged";
const DECISIONS: &str = "accepted, rejected";
const DISPATCH_REF: &str = "a dispatch ref like \"clock:12:1:1\", \"presale:12:1\" or \"book:7\"";
const CATEGORIES: &str = "cut_flower, potted_plant, foliage, other";
const UNITS: &str = "stem, pot, bunch";
const GRADES: &str = "a grade code on the product's scale, like A1";
const PACKAGINGS: &str = "bucket, box, tray, cart";
const SIDES: &str = "buy, sell";
const ORDER_TYPES: &str = "limit, market";
const TIMES_IN_FORCE: &str = "gtc, day, ioc, fok";
const BOOK_STATES: &str = "closed, pre_open, open";
const LOT_STATUSES: &str = "consigned, queued, on_clock, sold, partly_sold, unsold, withdrawn";

fn request(kind: RequestKind, f: Fields<'_>) -> Result<Request, Reject> {
    let command = Request::Command;
    use ActionKind as A;
    use RequestKind as R;
    Ok(match kind {
        R::Login => {
            let token = f.str("token")?;
            let token = Secret::new(if token.len() > TOKEN_BYTES_MAX { "" } else { token });
            Request::Login { token, cancel_on_disconnect: f.opt_bool("cancel_on_disconnect")?.unwrap_or(false) }
        }
        R::Ping => Request::Ping,
        R::Action(A::RegisterParticipant) => {
            let name = f.name("name", NAME_BYTES_MAX)?;
            let mut roles = Roles::default();
            for role in f.choices("roles", parse_role, ROLES)? {
                match role {
                    Role::Operator => roles.operator = true,
                    Role::Grower => roles.grower = true,
                    Role::Buyer => roles.buyer = true,
                    Role::Logistics => roles.logistics = true,
                }
            }
            Request::RegisterParticipant {
                id: f.code("id", CODE_CHARS_MAX)?,
                name,
                roles,
                credit_limit: f.opt_money("credit_limit")?.unwrap_or(Fen::ZERO),
                firm: f.opt_code("firm", CODE_CHARS_MAX)?,
                daily_limit: f.opt_money("daily_limit")?,
            }
        }
        R::Action(A::SetCreditLimit) => {
            let participant = f.code("participant", CODE_CHARS_MAX)?;
            let daily_limit = f.opt_money("daily_limit")?;
            // `limit` may be left out only when a seat's `daily_limit` is set (protocol section 4).
            let limit = if daily_limit.is_some() { f.opt_money("limit")? } else { Some(f.money("limit")?) };
            command(Action::SetCreditLimit { participant, limit, daily_limit })
        }
        R::Action(A::SuspendParticipant) | R::Action(A::ReinstateParticipant) => {
            command(Action::SetParticipantActive {
                participant: f.code("participant", CODE_CHARS_MAX)?,
                active: kind == R::Action(A::ReinstateParticipant),
            })
        }
        R::Action(A::DefineProduct) => {
            let name = f.name("name", NAME_BYTES_MAX)?;
            command(Action::DefineProduct {
                code: f.code("code", CODE_CHARS_MAX)?,
                name,
                category: f.choice("category", Category::parse, CATEGORIES)?,
                unit: f.choice("unit", Unit::parse, UNITS)?,
                grades: f.opt_list("grades", Grade::parse, GRADES_MAX, "grade codes like \"A1\"")?.unwrap_or_default(),
            })
        }
        R::Action(A::DefineInstrument) => command(Action::DefineInstrument {
            symbol: f.code("symbol", CODE_CHARS_MAX)?,
            product: f.code("product", CODE_CHARS_MAX)?,
            tick_size: f.money("tick_size")?,
            price_band_pct: f.opt_int_u32("price_band_pct")?.unwrap_or(0),
        }),
        R::Action(A::ConsignLot) => command(Action::ConsignLot(Box::new(Consignment {
            product: f.code("product", CODE_CHARS_MAX)?,
            grade: f.choice("grade", Grade::parse, GRADES)?,
            units_per_container: f.count_u32("units_per_container")?,
            containers: f.count_u32("containers")?,
            min_price: f.money("min_price")?,
            min_purchase: f.opt_count_u32("min_purchase")?.unwrap_or(1),
            origin: f.text("origin", ORIGIN_BYTES_MAX)?,
            photo_url: f.text("photo_url", PHOTO_URL_BYTES_MAX)?,
            note: f.text("note", NOTE_BYTES_MAX)?,
            master: MasterData {
                variety: f.text("variety", MASTER_TEXT_BYTES_MAX)?,
                stem_length_cm: f.opt_small_int("stem_length_cm")?,
                maturity: f.opt_small_int("maturity")?,
                packaging: f.opt_choice("packaging", Packaging::parse, PACKAGINGS)?,
                base: f.text("base", MASTER_TEXT_BYTES_MAX)?,
                batch: f.text("batch", MASTER_TEXT_BYTES_MAX)?,
                harvest_day: f.opt_day("harvest_day")?,
            },
        }))),
        R::Action(A::AssignLot) => {
            command(Action::AssignLot { lot: lot_id(&f)?, clock: clock(&f)?, start_price: f.money("start_price")? })
        }
        R::Action(A::ConfigureClock) => command(Action::ConfigureClock {
            clock: clock(&f)?,
            patch: ClockSettingsPatch {
                step: f.opt_money("step")?,
                tick_ms: f.opt_int_u32("tick_ms")?,
                pre_roll_ms: f.opt_int_u32("pre_roll_ms")?,
                pause_ms: f.opt_int_u32("pause_ms")?,
                restart_ticks: f.opt_int_u32("restart_ticks")?,
                multi_buy_ms: f.opt_int_u32("multi_buy_ms")?,
            },
        }),
        R::Action(A::StartClock) => command(Action::StartClock { clock: clock(&f)? }),
        R::Action(A::HaltClock) => command(Action::HaltClock { clock: clock(&f)? }),
        R::Action(A::WithdrawLot) => command(Action::WithdrawLot { lot: lot_id(&f)? }),
        R::Action(A::VoidAward) => command(Action::VoidAward {
            clock: clock(&f)?,
            lot: lot_id(&f)?,
            round: f.int_u32("round")?,
            buyer: f.opt_code("buyer", CODE_CHARS_MAX)?,
        }),
        R::Action(A::Bid) => command(Action::Bid {
            clock: clock(&f)?,
            lot: lot_id(&f)?,
            round: f.int_u32("round")?,
            containers: f.count_u32("containers")?,
        }),
        R::Action(A::StandingBid) => command(Action::StandingBid {
            lot: lot_id(&f)?,
            max_price: f.money("max_price")?,
            containers: f.count_u32("containers")?,
        }),
        R::Action(A::CancelStandingBid) => command(Action::CancelStandingBid { lot: lot_id(&f)? }),
        R::Action(A::SetBookState) => command(Action::SetBookState {
            symbol: f.code("symbol", CODE_CHARS_MAX)?,
            state: f.choice("state", parse_book_state, BOOK_STATES)?,
        }),
        R::Action(A::NewOrder) => command(Action::NewOrder(OrderEntry {
            client_order_id: f.code("client_order_id", CLIENT_ORDER_ID_CHARS_MAX)?,
            symbol: f.code("symbol", CODE_CHARS_MAX)?,
            side: f.choice("side", parse_side, SIDES)?,
            order_type: f.choice("order_type", parse_order_type, ORDER_TYPES)?,
            price: f.opt_money("price")?,
            quantity: f.count_u64("quantity")?,
            time_in_force: f.choice("time_in_force", parse_time_in_force, TIMES_IN_FORCE)?,
            post_only: f.opt_bool("post_only")?.unwrap_or(false),
        })),
        R::Action(A::CancelOrder) => {
            command(Action::CancelOrder { client_order_id: f.code("client_order_id", CLIENT_ORDER_ID_CHARS_MAX)? })
        }
        R::Action(A::AmendOrder) => command(Action::AmendOrder {
            client_order_id: f.code("client_order_id", CLIENT_ORDER_ID_CHARS_MAX)?,
            price: f.opt_money("price")?,
            quantity: f.opt_count_u64("quantity")?,
        }),
        R::Action(A::CancelAll) => command(Action::CancelAll { symbol: f.opt_code("symbol", CODE_CHARS_MAX)? }),
        R::GetAccount => Request::GetAccount,
        R::GetStatement => Request::GetStatement {
            day: Day::parse(f.str("day")?)
                .ok_or_else(|| Reject::bad_request("field `day` must be a date like \"2026-11-29\""))?,
            participant: f.opt_code("participant", CODE_CHARS_MAX)?,
        },
        R::GetLots => Request::GetLots { status: f.opt_choice("status", LotStatus::parse, LOT_STATUSES)? },
        R::GetOrders => Request::GetOrders,
        R::Action(A::EndOfDay) => command(Action::EndOfDay),
        R::Action(A::SetLimits) => command(Action::SetLimits(limits_patch(&f)?)),
        R::GetLimits => Request::GetLimits,
        R::Action(A::SetFees) => command(Action::SetFees(fee_schedule(&f)?)),
        R::GetFees => Request::GetFees,
        R::GetStandingBids => Request::GetStandingBids,
        R::GetProducts => Request::GetProducts,
        R::GetCatalogue => Request::GetCatalogue { day: f.opt_day("day")? },
        R::Action(A::SetClockPlan) => command(Action::SetClockPlan {
            clock: clock(&f)?,
            plan: ClockPlan {
                products: f
                    .opt_list("products", |t| Code::parse(t, CODE_CHARS_MAX), PRODUCTS_PER_PLAN_MAX, "product codes")?
                    .ok_or_else(|| Reject::bad_request("missing field `products`"))?,
                start_time: f.opt_time_of_day("start_time")?,
            },
        }),
        // The seed is drawn here, from the operating system, and journaled with the command: the
        // core never draws, so a replay and every replica come to the same order.
        R::Action(A::DrawOrder) => command(Action::DrawOrder { seed: rand::random() }),
        R::Action(A::PlanLots) => command(Action::PlanLots {
            start_markup_bp: f.opt_pct_bp("start_markup_pct")?.unwrap_or(START_MARKUP_BP_DEFAULT),
        }),
        R::Action(A::OfferPresale) => command(Action::OfferPresale {
            lot: lot_id(&f)?,
            price: f.money("price")?,
            containers: f.count_u32("containers")?,
        }),
        R::Action(A::BuyPresale) => {
            command(Action::BuyPresale { lot: lot_id(&f)?, containers: f.count_u32("containers")? })
        }
        R::Action(A::WithdrawPresale) => command(Action::WithdrawPresale { lot: lot_id(&f)? }),
        R::Action(A::CancelOrders) => command(Action::CancelOrders {
            participant: f.code("participant", CODE_CHARS_MAX)?,
            symbol: f.opt_code("symbol", CODE_CHARS_MAX)?,
        }),
        R::Action(A::SetColdChain) => command(Action::SetColdChain {
            category: f.choice("category", Category::parse, CATEGORIES)?,
            max_temperature: f
                .opt_temperature("max_temperature_c")?
                .ok_or_else(|| Reject::bad_request("missing field `max_temperature_c`"))?,
        }),
        R::GetDispatch => Request::GetDispatch { day: f.opt_day("day")?, buyer: f.opt_code("buyer", CODE_CHARS_MAX)? },
        R::Action(A::SetDestination) => command(Action::SetDestination {
            day: f.opt_day("day")?,
            destination: f.text("destination", PLACE_BYTES_MAX)?,
        }),
        R::Action(A::UpdateDispatch) => command(Action::UpdateDispatch {
            reference: f.choice("ref", DispatchRef::parse, DISPATCH_REF)?,
            status: f.choice("status", DispatchStatus::parse, DISPATCH_STATUSES)?,
            temperature: f.opt_temperature("temperature_c")?,
            location: f.opt_str("location")?.map(|_| f.text("location", PLACE_BYTES_MAX)).transpose()?,
        }),
        R::Action(A::FileComplaint) => command(Action::FileComplaint {
            reference: f.choice("ref", DispatchRef::parse, DISPATCH_REF)?,
            reason: f.choice("reason", ComplaintReason::parse, COMPLAINT_REASONS)?,
            containers: f.count_u64("containers")?,
            note: f.text("note", COMPLAINT_NOTE_BYTES_MAX)?,
        }),
        R::Action(A::ResolveComplaint) => command(Action::ResolveComplaint {
            complaint: f.int_u64("complaint_id")?,
            decision: f.choice("decision", Decision::parse, DECISIONS)?,
            credit: f.money("credit")?,
        }),
        R::GetQuality => Request::GetQuality { grower: f.code("grower", CODE_CHARS_MAX)? },
        // The engine's own actions are never requests (not in REQUEST_KINDS).
        R::Action(A::Tick | A::HaltAllClocks | A::CancelOnDisconnect) => {
            unreachable!("{} is the engine's own action, not a request", kind.name())
        }
    })
}

/// `set_limits`: each limit given is a positive integer (the core checks its ceiling); at
/// least one must be given, and a name that is no limit is refused rather than ignored.
/// `set_fees`: every field required; the rates exact to 4 places, the clock fee to the fen.
fn fee_schedule(f: &Fields<'_>) -> Result<FeeSchedule, Reject> {
    let fees = FeeSchedule {
        commission_ppm: f.pct_ppm("commission_pct")?,
        clock_fee_per_container: f.money("clock_fee_per_container")?,
        book_fee_ppm: f.pct_ppm("book_fee_pct")?,
    };
    fees.check().map_err(Reject::bad_request)?;
    Ok(fees)
}

fn limits_patch(f: &Fields<'_>) -> Result<MarketLimitsPatch, Reject> {
    let names: Vec<&str> = MarketLimits::default().named().iter().map(|(name, _)| *name).collect();
    if let Some(unknown) = f.keys().find(|k| k.ends_with("_max") && !names.contains(k)) {
        let shown: String = unknown.chars().take(40).collect();
        return Err(Reject::bad_request(format!("unknown limit {shown:?} (limits: {})", names.join(", "))));
    }
    let mut patch = MarketLimitsPatch::default();
    for name in &names {
        if let Some(value) = f.opt_count_u64(name)? {
            if value == 0 {
                return Err(Reject::bad_request(format!("field `{name}` must be a positive integer")));
            }
            *patch.slot_mut(name).expect("every named limit has a slot") = Some(value);
        }
    }
    if patch == MarketLimitsPatch::default() {
        return Err(Reject::bad_request(format!("set_limits needs at least one of {}", names.join(", "))));
    }
    Ok(patch)
}

/// A clock plan lists at most this many products (a hall has tens).
const PRODUCTS_PER_PLAN_MAX: usize = 256;

/// `clock`: an integer; a number no clock can have is `not_found`, like clock 0.
fn clock(f: &Fields<'_>) -> Result<ClockId, Reject> {
    let n = f.int_u64("clock")?;
    u16::try_from(n).map(ClockId).map_err(|_| Reject::not_found(format!("no clock {n}")))
}

fn lot_id(f: &Fields<'_>) -> Result<LotId, Reject> {
    f.int_u64("lot_id").map(LotId)
}

enum Role {
    Operator,
    Grower,
    Buyer,
    Logistics,
}

fn parse_role(text: &str) -> Option<Role> {
    match text {
        "operator" => Some(Role::Operator),
        "grower" => Some(Role::Grower),
        "buyer" => Some(Role::Buyer),
        "logistics" => Some(Role::Logistics),
        _ => None,
    }
}

pub fn parse_side(text: &str) -> Option<Side> {
    match text {
        "buy" => Some(Side::Buy),
        "sell" => Some(Side::Sell),
        _ => None,
    }
}

pub fn parse_order_type(text: &str) -> Option<OrderType> {
    match text {
        "limit" => Some(OrderType::Limit),
        "market" => Some(OrderType::Market),
        _ => None,
    }
}

pub fn parse_time_in_force(text: &str) -> Option<TimeInForce> {
    match text {
        "gtc" => Some(TimeInForce::Gtc),
        "day" => Some(TimeInForce::Day),
        "ioc" => Some(TimeInForce::Ioc),
        "fok" => Some(TimeInForce::Fok),
        _ => None,
    }
}

pub fn parse_book_state(text: &str) -> Option<BookState> {
    match text {
        "closed" => Some(BookState::Closed),
        "pre_open" => Some(BookState::PreOpen),
        "open" => Some(BookState::Open),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use huashi_engine::reject::RejectCode;
    use serde_json::json;

    fn ok(value: Value) -> Parsed {
        parse(&value.to_string()).unwrap_or_else(|e| panic!("{value}: {:?}", e.reject))
    }

    fn refused(value: Value) -> Refused {
        parse(&value.to_string()).expect_err("should be refused")
    }

    fn action(value: Value) -> Action {
        match ok(value).request {
            Request::Command(action) => action,
            other => panic!("not a command: {other:?}"),
        }
    }

    fn code(text: &'static str) -> Code {
        Code::from_static(text)
    }

    #[test]
    fn frames_that_are_not_request_objects_are_bad_requests() {
        for text in ["", "nope", "[1]", "3", "\"login\"", "{\"type\":1}", "{}", "{\"type\":\"fly\"}"] {
            let e = parse(text).expect_err(text);
            assert_eq!(e.reject.code, RejectCode::BadRequest, "{text}");
        }
        assert_eq!(parse("{}").unwrap_err().reject.message, "missing field `type`");
        assert_eq!(parse("{\"type\":\"fly\"}").unwrap_err().reject.message, "unknown type \"fly\"");
    }

    #[test]
    fn refusals_echo_a_readable_req_id() {
        let e = refused(json!({"type": "bid", "req_id": "r1", "clock": 1}));
        assert_eq!(e.req_id.unwrap().json(), "\"r1\"");
        assert_eq!(e.reject.message, "missing field `lot_id`");
        let e = refused(json!({"type": "nope", "req_id": 7}));
        assert_eq!(e.req_id.unwrap().json(), "7");
        let e = refused(json!({"type": "ping", "req_id": [1]}));
        assert_eq!(e.req_id, None);
        assert!(e.reject.message.contains("req_id"));
    }

    #[test]
    fn every_request_type_parses() {
        let cases = [
            json!({"type": "login", "token": "t"}),
            json!({"type": "ping"}),
            json!({"type": "register_participant", "id": "g1", "name": "G", "roles": ["grower"]}),
            json!({"type": "set_credit_limit", "participant": "b1", "limit": "100.00"}),
            json!({"type": "suspend_participant", "participant": "b1"}),
            json!({"type": "reinstate_participant", "participant": "b1"}),
            json!({"type": "define_product", "code": "P", "name": "P", "category": "other", "unit": "pot"}),
            json!({"type": "define_instrument", "symbol": "P-A", "product": "P", "tick_size": "0.05"}),
            json!({"type": "consign_lot", "product": "ROSE", "grade": "A1", "units_per_container": 50, "containers": 4, "min_price": "0.80"}),
            json!({"type": "assign_lot", "lot_id": 1, "clock": 1, "start_price": "2.00"}),
            json!({"type": "configure_clock", "clock": 1}),
            json!({"type": "start_clock", "clock": 1}),
            json!({"type": "halt_clock", "clock": 1}),
            json!({"type": "withdraw_lot", "lot_id": 1}),
            json!({"type": "void_award", "clock": 1, "lot_id": 1, "round": 1}),
            json!({"type": "bid", "clock": 1, "lot_id": 1, "round": 1, "containers": 2}),
            json!({"type": "standing_bid", "lot_id": 1, "max_price": "1.00", "containers": 1}),
            json!({"type": "cancel_standing_bid", "lot_id": 1}),
            json!({"type": "set_book_state", "symbol": "ROSE-A", "state": "open"}),
            json!({"type": "new_order", "client_order_id": "c1", "symbol": "ROSE-A", "side": "buy", "order_type": "limit", "price": "1.00", "quantity": 10, "time_in_force": "gtc"}),
            json!({"type": "cancel_order", "client_order_id": "c1"}),
            json!({"type": "amend_order", "client_order_id": "c1", "quantity": 5}),
            json!({"type": "cancel_all"}),
            json!({"type": "get_account"}),
            json!({"type": "get_statement", "day": "2026-11-29"}),
            json!({"type": "get_lots"}),
            json!({"type": "get_orders"}),
            json!({"type": "end_of_day"}),
            json!({"type": "set_limits", "products_max": 5}),
            json!({"type": "get_limits"}),
            json!({"type": "cancel_orders", "participant": "b1"}),
            json!({"type": "set_fees", "commission_pct": "7", "clock_fee_per_container": "0.60", "book_fee_pct": "0.15"}),
            json!({"type": "get_fees"}),
            json!({"type": "get_standing_bids"}),
            json!({"type": "get_products"}),
            json!({"type": "get_catalogue"}),
            json!({"type": "set_clock_plan", "clock": 1, "products": ["ROSE"], "start_time": "06:30"}),
            json!({"type": "draw_order"}),
            json!({"type": "plan_lots"}),
            json!({"type": "offer_presale", "lot_id": 1, "price": "1.20", "containers": 2}),
            json!({"type": "buy_presale", "lot_id": 1, "containers": 1}),
            json!({"type": "withdraw_presale", "lot_id": 1}),
            json!({"type": "set_cold_chain", "category": "cut_flower", "max_temperature_c": "8"}),
            json!({"type": "get_dispatch"}),
            json!({"type": "set_destination", "destination": "pickup:D7"}),
            json!({"type": "update_dispatch", "ref": "clock:1:1:1", "status": "picked", "temperature_c": "-1.5"}),
            json!({"type": "file_complaint", "ref": "book:3", "reason": "quality", "containers": 2}),
            json!({"type": "resolve_complaint", "complaint_id": 1, "decision": "accepted", "credit": "5.00"}),
            json!({"type": "get_quality", "grower": "g1"}),
        ];
        assert_eq!(cases.len(), REQUEST_TYPES.len());
        for (kind, case) in cases.into_iter().enumerate() {
            assert_eq!(ok(case).kind, kind);
        }
    }

    #[test]
    fn every_action_but_the_engine_s_own_is_a_request_once() {
        for action in ActionKind::ALL {
            let listed = REQUEST_KINDS.iter().filter(|k| **k == RequestKind::Action(action)).count();
            let expected = usize::from(!action.is_engine_own());
            assert_eq!(listed, expected, "{} is listed {listed} times in REQUEST_KINDS", action.name());
        }
        let mut names = REQUEST_TYPES.to_vec();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), REQUEST_TYPES.len(), "request names are unique");
    }

    #[test]
    fn set_fees_reads_exact_percentages_and_names_what_is_wrong() {
        let fees = |c: &str, f: &str, b: &str| json!({"type": "set_fees", "commission_pct": c, "clock_fee_per_container": f, "book_fee_pct": b});
        assert_eq!(
            action(fees("7", "0.60", "0.0125")),
            Action::SetFees(FeeSchedule {
                commission_ppm: 70_000,
                clock_fee_per_container: Fen(60),
                book_fee_ppm: 125
            })
        );
        assert!(refused(fees("100.5", "0.60", "0.1"))
            .reject
            .message
            .contains("`commission_pct` must be between 0 and 100"));
        assert!(refused(fees("5", "0.60", "-1")).reject.message.contains("`book_fee_pct`"));
        assert!(refused(fees("5.00001", "0.60", "0.1")).reject.message.contains("more than 4 decimal places"));
        assert!(refused(fees("5", "-0.01", "0.1")).reject.message.contains("clock_fee_per_container"));
        assert!(refused(fees("5", "0.601", "0.1")).reject.message.contains("clock_fee_per_container"));
        let number =
            json!({"type": "set_fees", "commission_pct": 5, "clock_fee_per_container": "0.50", "book_fee_pct": "0.1"});
        assert!(refused(number).reject.message.contains("not a JSON number"));
        let missing = json!({"type": "set_fees", "commission_pct": "5", "book_fee_pct": "0.1"});
        assert!(refused(missing).reject.message.contains("clock_fee_per_container"));
    }

    #[test]
    fn login_reads_token_and_cancel_on_disconnect() {
        let p = ok(json!({"type": "login", "token": "abc", "cancel_on_disconnect": true, "req_id": 1}));
        assert_eq!(p.request, Request::Login { token: Secret::new("abc"), cancel_on_disconnect: true });
        assert!(!format!("{:?}", p.request).contains("abc"));
        assert_eq!(refused(json!({"type": "login"})).reject.message, "missing field `token`");
        assert_eq!(refused(json!({"type": "login", "token": 5})).reject.message, "field `token` must be a string");
        let e = refused(json!({"type": "login", "token": "t", "cancel_on_disconnect": "yes"}));
        assert_eq!(e.reject.message, "field `cancel_on_disconnect` must be true or false");
    }

    #[test]
    fn register_participant_reads_roles_and_optional_credit() {
        let p = ok(
            json!({"type": "register_participant", "id": "b1", "name": "Buyer One", "roles": ["buyer", "grower"], "credit_limit": "5000.00"}),
        );
        let Request::RegisterParticipant { id, name, roles, credit_limit, firm: None, daily_limit: None } = p.request
        else {
            panic!()
        };
        assert_eq!((id, name.as_str(), credit_limit), (code("b1"), "Buyer One", Fen(500_000)));
        assert!(roles.buyer && roles.grower && !roles.operator);
        let e = refused(json!({"type": "register_participant", "id": "b1", "name": "B", "roles": ["king"]}));
        assert!(e.reject.message.contains("`roles`"));
        let e = refused(json!({"type": "register_participant", "id": "b 1", "name": "B", "roles": ["buyer"]}));
        assert!(e.reject.message.contains("`id`"));
        let e = refused(
            json!({"type": "register_participant", "id": "b1", "name": "B", "roles": ["buyer"], "credit_limit": 5}),
        );
        assert!(e.reject.message.contains("`credit_limit`"));
    }

    #[test]
    fn consign_lot_reads_every_field() {
        let a = action(json!({"type": "consign_lot", "product": "ROSE", "grade": "B1", "units_per_container": 50,
            "containers": 4, "min_price": "0.80", "min_purchase": 2, "origin": "Yunnan", "photo_url": "http://x/p.jpg", "note": "fresh"}));
        let Action::ConsignLot(c) = a else { panic!() };
        assert_eq!(c.grade, Grade::B1);
        assert_eq!((c.units_per_container, c.containers, c.min_purchase, c.min_price), (50, 4, 2, Fen(80)));
        assert_eq!((c.origin.as_str(), c.photo_url.as_str(), c.note.as_str()), ("Yunnan", "http://x/p.jpg", "fresh"));
        // Whether a grade is on the product's scale is the core's check; here only its shape.
        let e = refused(
            json!({"type": "consign_lot", "product": "ROSE", "grade": "A 1", "units_per_container": 50, "containers": 4, "min_price": "0.80"}),
        );
        assert_eq!(e.reject.message, "field `grade` must be one of a grade code on the product's scale, like A1");
        let a = action(json!({"type": "consign_lot", "product": "ROSE", "grade": "B2", "units_per_container": 50,
            "containers": 4, "min_price": "0.80", "variety": "Carola", "stem_length_cm": 60, "maturity": 2,
            "packaging": "bucket", "base": "Dounan", "batch": "D-1205", "harvest_day": "2026-12-04"}));
        let Action::ConsignLot(c) = a else { panic!() };
        assert_eq!(c.grade.as_str(), "B2");
        let m = &c.master;
        assert_eq!((m.variety.as_str(), m.stem_length_cm, m.maturity), ("Carola", Some(60), Some(2)));
        assert_eq!((m.base.as_str(), m.batch.as_str()), ("Dounan", "D-1205"));
        assert_eq!(m.packaging, Some(huashi_engine::core::catalogue::Packaging::Bucket));
        assert_eq!(m.harvest_day, Day::parse("2026-12-04"));
        let e = refused(json!({"type": "consign_lot", "product": "ROSE", "grade": "A1", "units_per_container": 5,
            "containers": 4, "min_price": "1", "packaging": "sack"}));
        assert_eq!(e.reject.message, "field `packaging` must be one of bucket, box, tray, cart");
        let e = refused(json!({"type": "consign_lot", "product": "ROSE", "grade": "A1", "units_per_container": 5,
            "containers": 4, "min_price": "1", "harvest_day": "yesterday"}));
        assert!(e.reject.message.contains("`harvest_day`"), "{}", e.reject.message);
        let e = refused(
            json!({"type": "consign_lot", "product": "ROSE", "grade": "A1", "units_per_container": -5, "containers": 4, "min_price": "0.80"}),
        );
        assert_eq!(e.reject.message, "field `units_per_container` must not be negative");
        let e = refused(
            json!({"type": "consign_lot", "product": "ROSE", "grade": "A1", "units_per_container": 5, "containers": 4, "min_price": "0.805"}),
        );
        assert_eq!(e.reject.message, "field `min_price` must have at most 2 decimal places");
        let e = refused(
            json!({"type": "consign_lot", "product": "ROSE", "grade": "A1", "units_per_container": 5, "containers": 4, "min_price": "1", "note": "x".repeat(513)}),
        );
        assert!(e.reject.message.contains("`note`"));
    }

    #[test]
    fn planning_requests_read_times_percentages_and_lists() {
        let plan = action(
            json!({"type": "set_clock_plan", "clock": 2, "products": ["ROSE", "LILY"], "start_time": "06:30:15"}),
        );
        let expected =
            ClockPlan { products: vec![code("ROSE"), code("LILY")], start_time: Some(6 * 3600 + 30 * 60 + 15) };
        assert_eq!(plan, Action::SetClockPlan { clock: ClockId(2), plan: expected });
        let plan = action(json!({"type": "set_clock_plan", "clock": 1, "products": []}));
        assert_eq!(
            plan,
            Action::SetClockPlan { clock: ClockId(1), plan: ClockPlan { products: vec![], start_time: None } }
        );
        for bad in ["6:30", "24:00", "06:60", "06:30:60", "0630", "06:30:00:00"] {
            let e = refused(json!({"type": "set_clock_plan", "clock": 1, "products": [], "start_time": bad}));
            assert!(e.reject.message.contains("`start_time`"), "{bad}: {}", e.reject.message);
        }
        let e = refused(json!({"type": "set_clock_plan", "clock": 1}));
        assert_eq!(e.reject.message, "missing field `products`");
        let e = refused(json!({"type": "set_clock_plan", "clock": 1, "products": "ROSE"}));
        assert!(e.reject.message.contains("`products`"));
        assert_eq!(action(json!({"type": "plan_lots"})), Action::PlanLots { start_markup_bp: 5_000 });
        assert_eq!(
            action(json!({"type": "plan_lots", "start_markup_pct": "12.5"})),
            Action::PlanLots { start_markup_bp: 1_250 }
        );
        for bad in [json!("-1"), json!("1000.01"), json!("1.005"), json!(50), json!("fifty")] {
            let e = refused(json!({"type": "plan_lots", "start_markup_pct": bad}));
            assert!(e.reject.message.contains("`start_markup_pct`"), "{bad}: {}", e.reject.message);
        }
        // The seed is the gateway's own draw, a fresh one each time.
        let seeds: Vec<u64> = (0..4)
            .map(|_| match action(json!({"type": "draw_order"})) {
                Action::DrawOrder { seed } => seed,
                other => panic!("{other:?}"),
            })
            .collect();
        assert!(seeds.windows(2).any(|w| w[0] != w[1]), "{seeds:?}");
        assert_eq!(
            action(json!({"type": "offer_presale", "lot_id": 3, "price": "1.20", "containers": 2})),
            Action::OfferPresale { lot: LotId(3), price: Fen(120), containers: 2 }
        );
    }

    #[test]
    fn seats_register_with_a_firm_and_a_daily_limit() {
        let p = ok(json!({"type": "register_participant", "id": "s1", "name": "Seat 1", "roles": ["buyer"],
            "firm": "f1", "daily_limit": "5000.00"}));
        let Request::RegisterParticipant { firm, daily_limit, .. } = p.request else { panic!() };
        assert_eq!((firm, daily_limit), (Some(code("f1")), Some(Fen(500_000))));
        assert_eq!(
            action(json!({"type": "set_credit_limit", "participant": "s1", "daily_limit": "100.00"})),
            Action::SetCreditLimit { participant: code("s1"), limit: None, daily_limit: Some(Fen(10_000)) }
        );
        let e = refused(json!({"type": "set_credit_limit", "participant": "b1"}));
        assert_eq!(e.reject.message, "missing field `limit`");
    }

    #[test]
    fn clock_requests_read_clock_lot_round() {
        assert_eq!(
            action(json!({"type": "bid", "clock": 2, "lot_id": 9, "round": 3, "containers": 1})),
            Action::Bid { clock: ClockId(2), lot: LotId(9), round: 3, containers: 1 }
        );
        let e = refused(json!({"type": "bid", "clock": 70000, "lot_id": 9, "round": 3, "containers": 1}));
        assert_eq!(e.reject.code, RejectCode::NotFound);
        let e = refused(json!({"type": "bid", "clock": "1", "lot_id": 9, "round": 3, "containers": 1}));
        assert_eq!(e.reject.message, "field `clock` must be a non-negative integer");
        let e = refused(json!({"type": "bid", "clock": 1, "lot_id": 9, "round": 3, "containers": 1.5}));
        assert_eq!(e.reject.message, "field `containers` must be a non-negative integer");
        assert_eq!(
            action(json!({"type": "void_award", "clock": 1, "lot_id": 4, "round": 2, "buyer": "b1"})),
            Action::VoidAward { clock: ClockId(1), lot: LotId(4), round: 2, buyer: Some(code("b1")) }
        );
        assert_eq!(
            action(json!({"type": "configure_clock", "clock": 1, "step": "0.05", "tick_ms": 20, "multi_buy_ms": 100})),
            Action::ConfigureClock {
                clock: ClockId(1),
                patch: ClockSettingsPatch {
                    step: Some(Fen(5)),
                    tick_ms: Some(20),
                    multi_buy_ms: Some(100),
                    ..ClockSettingsPatch::default()
                }
            }
        );
        assert_eq!(
            action(json!({"type": "assign_lot", "lot_id": 1, "clock": 1, "start_price": "2.5"})),
            Action::AssignLot { lot: LotId(1), clock: ClockId(1), start_price: Fen(250) }
        );
    }

    #[test]
    fn order_requests_read_their_enums_and_money() {
        let a = action(json!({"type": "new_order", "client_order_id": "c-1", "symbol": "ROSE-A", "side": "sell",
            "order_type": "market", "quantity": 10, "time_in_force": "ioc", "post_only": false}));
        let Action::NewOrder(entry) = a else { panic!() };
        assert_eq!(
            (entry.side, entry.order_type, entry.price, entry.quantity, entry.time_in_force),
            (Side::Sell, OrderType::Market, None, 10, TimeInForce::Ioc)
        );
        let e = refused(json!({"type": "new_order", "client_order_id": "c1", "symbol": "ROSE-A", "side": "buy",
            "order_type": "limit", "price": 1.5, "quantity": 10, "time_in_force": "gtc"}));
        assert!(e.reject.message.contains("`price`"));
        let e = refused(json!({"type": "new_order", "client_order_id": "c1", "symbol": "ROSE-A", "side": "buy",
            "order_type": "limit", "price": "1.50", "quantity": "10", "time_in_force": "gtc"}));
        assert!(e.reject.message.contains("`quantity`"));
        let e = refused(json!({"type": "new_order", "client_order_id": "c1", "symbol": "ROSE-A", "side": "buy",
            "order_type": "stop", "price": "1.50", "quantity": 10, "time_in_force": "gtc"}));
        assert_eq!(e.reject.message, "field `order_type` must be one of limit, market");
        let e = refused(json!({"type": "new_order", "client_order_id": "c1", "symbol": "ROSE-A", "side": "buy",
            "order_type": "limit", "price": "1.50", "quantity": 10, "time_in_force": "gtd"}));
        assert_eq!(e.reject.message, "field `time_in_force` must be one of gtc, day, ioc, fok");
        assert_eq!(
            action(json!({"type": "amend_order", "client_order_id": "c1", "price": "1.10"})),
            Action::AmendOrder { client_order_id: code("c1"), price: Some(Fen(110)), quantity: None }
        );
        assert_eq!(
            action(json!({"type": "cancel_all", "symbol": "LILY-A"})),
            Action::CancelAll { symbol: Some(code("LILY-A")) }
        );
        assert_eq!(
            action(json!({"type": "set_book_state", "symbol": "ROSE-A", "state": "pre_open"})),
            Action::SetBookState { symbol: code("ROSE-A"), state: BookState::PreOpen }
        );
    }

    #[test]
    fn set_limits_reads_positive_limits_and_refuses_unknown_ones() {
        let Action::SetLimits(patch) = action(json!({"type": "set_limits", "products_max": 5, "participants_max": 9}))
        else {
            panic!()
        };
        assert_eq!((patch.products_max, patch.participants_max, patch.instruments_max), (Some(5), Some(9), None));
        assert!(refused(json!({"type": "set_limits", "products_max": 0})).reject.message.contains("`products_max`"));
        assert!(refused(json!({"type": "set_limits", "lots_max": 3})).reject.message.contains("\"lots_max\""));
        assert!(refused(json!({"type": "set_limits"})).reject.message.contains("at least one"));
        assert_eq!(
            action(json!({"type": "cancel_orders", "participant": "b1", "symbol": "ROSE-A"})),
            Action::CancelOrders { participant: code("b1"), symbol: Some(code("ROSE-A")) }
        );
    }

    #[test]
    fn text_fields_refuse_control_and_bidi_characters_and_names_are_not_empty() {
        let e = refused(json!({"type": "register_participant", "id": "b1", "name": "", "roles": ["buyer"]}));
        assert!(e.reject.message.contains("`name`") && e.reject.message.contains("empty"), "{}", e.reject.message);
        let e = refused(json!({"type": "register_participant", "id": "b1", "name": "a\u{0}b", "roles": ["buyer"]}));
        assert!(e.reject.message.contains("`name`"), "{}", e.reject.message);
        let e = refused(
            json!({"type": "define_product", "code": "P", "name": "x\u{202E}y", "category": "other", "unit": "pot"}),
        );
        assert!(e.reject.message.contains("`name`"), "{}", e.reject.message);
        for field in ["origin", "photo_url", "note"] {
            let mut lot = json!({"type": "consign_lot", "product": "ROSE", "grade": "A1", "units_per_container": 5,
                "containers": 4, "min_price": "1.00"});
            lot[field] = json!("evil\u{2067}text");
            let e = refused(lot);
            assert_eq!(e.reject.code, RejectCode::BadRequest);
            assert!(e.reject.message.contains(&format!("`{field}`")), "{}", e.reject.message);
        }
    }

    #[test]
    fn queries_read_their_filters() {
        assert_eq!(
            ok(json!({"type": "get_lots", "status": "on_clock"})).request,
            Request::GetLots { status: Some(LotStatus::OnClock) }
        );
        assert!(refused(json!({"type": "get_lots", "status": "lost"})).reject.message.contains("`status`"));
        let e = refused(json!({"type": "get_statement", "day": "2026-13-01"}));
        assert!(e.reject.message.contains("`day`"));
    }
}
