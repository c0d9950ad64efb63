//! A small harness for driving `Market` from the outside, the way the sequencer does: every command
//! carries an engine time, timers fall due on the way to it, and every event is kept.
//!
//! Also the random operation stream shared by the property and determinism tests: an operation is
//! a handful of raw numbers (so proptest can shrink it) that `Driver::resolve` turns into concrete
//! commands against the market as it stands, so most generated commands are meaningful.

#![allow(dead_code)]

use huashi_engine::command::{Action, Actor, ClockPlan, ClockSettingsPatch, Command, Consignment, OrderEntry, Roles};
use huashi_engine::core::book::{BookState, OrderType, TimeInForce};
use huashi_engine::core::catalogue::Grade;
use huashi_engine::core::clock::ClockPhase;
use huashi_engine::core::complaints::{ComplaintReason, Decision};
use huashi_engine::core::credit::Account;
use huashi_engine::core::dispatch::{Centi, DispatchStatus, DispatchView};
use huashi_engine::core::lots::LotStatus;
use huashi_engine::core::{Applied, Market, MarketConfig};
use huashi_engine::event::{Award, Event};
use huashi_engine::reject::{Reject, RejectCode};
use huashi_engine::types::{ClockId, Code, Day, EngineTime, Fen, LotId, Pk, Side};

pub const DAY: &str = "2026-11-29";

/// 06:00 in Shanghai on `day`: the auction's usual opening hour.
pub fn morning_of(day: Day) -> EngineTime {
    let seconds = day.0 as u64 * 86_400 - 8 * 3_600 + 6 * 3_600;
    EngineTime(seconds * 1_000_000)
}

pub fn code(text: &str) -> Code {
    Code::parse(text, Code::BYTES_MAX).unwrap_or_else(|| panic!("invalid code {text:?}"))
}

pub fn op() -> Actor {
    Actor::Operator
}

pub fn actor(pk: Pk) -> Actor {
    Actor::Participant(pk)
}

pub fn clock(n: u16) -> ClockId {
    ClockId(n)
}

pub fn roles(grower: bool, buyer: bool) -> Roles {
    Roles { operator: false, grower, buyer, logistics: false }
}

/// A consignment of `containers` × `units` units of roses at reserve `min_price` fen per unit.
pub fn consignment(containers: u32, units: u32, min_price: i64, min_purchase: u32) -> Consignment {
    Consignment {
        product: code("ROSE"),
        grade: Grade::A1,
        units_per_container: units,
        containers,
        min_price: Fen(min_price),
        min_purchase,
        origin: "Kunming".to_string(),
        photo_url: String::new(),
        note: String::new(),
        master: Default::default(),
    }
}

pub fn order(
    client_order_id: &str,
    symbol: &str,
    side: Side,
    price: Option<i64>,
    quantity: u64,
    time_in_force: TimeInForce,
) -> OrderEntry {
    OrderEntry {
        client_order_id: code(client_order_id),
        symbol: code(symbol),
        side,
        order_type: if price.is_some() { OrderType::Limit } else { OrderType::Market },
        price: price.map(Fen),
        quantity,
        time_in_force,
        post_only: false,
    }
}

/// The market, the engine time the next command gets, and every event so far.
pub struct Harness {
    pub market: Market,
    pub now: EngineTime,
    pub events: Vec<Event>,
    /// Where the last command's events start in `events` (timers that fell due come before).
    pub last_start: usize,
    /// Where the last command's own events start in `events`.
    pub last_command: usize,
}

impl Default for Harness {
    fn default() -> Harness {
        Harness::new()
    }
}

impl Harness {
    pub fn new() -> Harness {
        let day = Day::parse(DAY).expect("a valid day");
        Harness {
            market: Market::new(MarketConfig::new(day)),
            now: morning_of(day),
            events: Vec::new(),
            last_start: 0,
            last_command: 0,
        }
    }

    /// Applies `command` at the current time; returns the command's own verdict.
    pub fn apply(&mut self, command: Command) -> Result<(), Reject> {
        self.last_start = self.events.len();
        let Applied { result, first_command_event } = self.market.apply(&command, self.now, &mut self.events);
        self.last_command = first_command_event;
        self.market.check_invariants();
        result
    }

    pub fn act(&mut self, actor: Actor, action: Action) -> Result<(), Reject> {
        self.apply(Command::new(actor, action))
    }

    /// Applies and insists it was accepted.
    pub fn ok(&mut self, actor: Actor, action: Action) {
        let name = action.name();
        if let Err(reject) = self.act(actor, action) {
            panic!("{name} was rejected: {reject}");
        }
    }

    /// Applies and insists it was rejected with `code`; also that it emitted nothing of its own.
    pub fn rejected(&mut self, actor: Actor, action: Action, code: RejectCode) -> Reject {
        let name = action.name();
        match self.act(actor, action) {
            Ok(()) => panic!("{name} was accepted, expected {}", code.as_str()),
            Err(reject) => {
                assert_eq!(reject.code, code, "{name}: {reject}");
                assert_eq!(self.events.len(), self.last_command, "a rejected {name} emitted events");
                reject
            }
        }
    }

    // ── time ──

    pub fn advance_us(&mut self, us: u64) {
        self.now = EngineTime(self.now.0 + us);
    }

    pub fn advance_ms(&mut self, ms: u64) {
        self.advance_us(ms * 1000);
    }

    /// Moves time to `t` (never backwards) and runs the timers due by then.
    pub fn tick_at(&mut self, t: EngineTime) {
        assert!(t >= self.now, "time runs forwards");
        self.now = t;
        self.apply(Command::tick()).expect("a tick is always accepted");
    }

    pub fn tick_ms(&mut self, ms: u64) {
        self.advance_ms(ms);
        self.apply(Command::tick()).expect("a tick is always accepted");
    }

    // ── participants ──

    pub fn register(&mut self, id: &str, roles: Roles, credit_limit: i64) -> Pk {
        self.ok(
            op(),
            Action::RegisterParticipant {
                id: code(id),
                name: format!("{id} trading"),
                roles,
                credit_limit: Fen(credit_limit),
                token_hash: [7; 32],
                firm: None,
                daily_limit: None,
            },
        );
        match self.events.last() {
            Some(Event::ParticipantRegistered { pk, .. }) => *pk,
            other => panic!("expected participant_registered, got {other:?}"),
        }
    }

    pub fn buyer(&mut self, id: &str, credit_limit: i64) -> Pk {
        self.register(id, roles(false, true), credit_limit)
    }

    pub fn grower(&mut self, id: &str) -> Pk {
        self.register(id, roles(true, false), 0)
    }

    pub fn account(&self, pk: Pk) -> Account {
        self.market.participants().get(pk).account.clone()
    }

    pub fn set_credit_limit(&mut self, pk: Pk, limit: i64) {
        let id = self.market.participants().get(pk).id;
        self.ok(op(), Action::SetCreditLimit { participant: id, limit: Some(Fen(limit)), daily_limit: None });
    }

    pub fn set_active(&mut self, pk: Pk, active: bool) {
        let id = self.market.participants().get(pk).id;
        self.ok(op(), Action::SetParticipantActive { participant: id, active });
    }

    // ── lots and clocks ──

    pub fn consign(&mut self, grower: Pk, containers: u32, units: u32, min_price: i64, min_purchase: u32) -> LotId {
        let c = consignment(containers, units, min_price, min_purchase);
        self.ok(actor(grower), Action::ConsignLot(Box::new(c)));
        match self.events.last() {
            Some(Event::LotConsigned { lot }) => lot.id,
            other => panic!("expected lot_consigned, got {other:?}"),
        }
    }

    pub fn assign(&mut self, lot: LotId, n: u16, start_price: i64) {
        self.ok(op(), Action::AssignLot { lot, clock: clock(n), start_price: Fen(start_price) });
    }

    pub fn configure(&mut self, n: u16, patch: ClockSettingsPatch) {
        self.ok(op(), Action::ConfigureClock { clock: clock(n), patch });
    }

    pub fn start(&mut self, n: u16) {
        self.ok(op(), Action::StartClock { clock: clock(n) });
    }

    pub fn halt(&mut self, n: u16) {
        self.ok(op(), Action::HaltClock { clock: clock(n) });
    }

    /// Starts clock `n` and runs its pre-roll out; returns round 1's `start_ts`.
    pub fn start_and_run(&mut self, n: u16) -> EngineTime {
        self.start(n);
        let pre_roll = self.market.clock(clock(n)).unwrap().settings.pre_roll_ms as u64;
        self.tick_ms(pre_roll);
        let (round, start_ts) = self.running_round(n);
        assert_eq!(start_ts, self.now, "round {round} starts when the pre-roll ends");
        start_ts
    }

    /// The running round of clock `n`: (number, start_ts).
    pub fn running_round(&self, n: u16) -> (u32, EngineTime) {
        let c = self.market.clock(clock(n)).unwrap();
        assert_eq!(c.phase, ClockPhase::Running, "clock {n} is not running");
        let round = c.round.expect("a running clock has a round");
        (round.number, round.start_ts)
    }

    pub fn phase(&self, n: u16) -> ClockPhase {
        self.market.clock(clock(n)).unwrap().phase
    }

    pub fn bid(&mut self, buyer: Pk, n: u16, lot: LotId, round: u32, containers: u32) -> Result<(), Reject> {
        self.act(actor(buyer), Action::Bid { clock: clock(n), lot, round, containers })
    }

    pub fn standing_bid(&mut self, buyer: Pk, lot: LotId, max_price: i64, containers: u32) {
        self.ok(actor(buyer), Action::StandingBid { lot, max_price: Fen(max_price), containers });
    }

    // ── events ──

    /// The events of the last `apply` (timers and command).
    pub fn last_events(&self) -> &[Event] {
        &self.events[self.last_start..]
    }

    pub fn awards(&self) -> Vec<Award> {
        awards_in(&self.events)
    }

    pub fn last_awards(&self) -> Vec<Award> {
        awards_in(self.last_events())
    }

    /// The one award the last command made.
    pub fn last_award(&self) -> Award {
        let awards = self.last_awards();
        assert_eq!(awards.len(), 1, "expected one award, got {awards:?}");
        awards[0].clone()
    }
}

pub fn awards_in(events: &[Event]) -> Vec<Award> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Awarded(award) => Some((**award).clone()),
            _ => None,
        })
        .collect()
}

// ─────────────────────────────── random operations ───────────────────────────────

/// One generated operation: a kind selector and raw parameters, read modulo whatever they pick.
pub type RawOp = [u32; 6];

pub const BUYERS: usize = 4;
pub const GROWERS: usize = 2;
/// Seats of buyer 1's firm: one with a tight daily limit, one with none of its own.
pub const SEATS: usize = 2;
pub const CLOCKS: u16 = 3;
pub const SYMBOLS: [&str; 2] = ["ROSE-A", "LILY-A"];

/// Resolves raw operations against the market as it stands and keeps the roster.
pub struct Driver {
    pub buyers: Vec<Pk>,
    pub growers: Vec<Pk>,
    /// One participant holding both roles, so self-trade prevention and "cannot buy your own lot"
    /// get exercised.
    pub trader: Pk,
    /// Buyer seats of `buyers[1]`: they buy on its credit within their daily limits.
    pub seats: Vec<Pk>,
    next_client_order: u64,
}

/// The commands the roster needs, applied before any generated operation.
pub fn roster_commands() -> Vec<Command> {
    let mut commands = Vec::new();
    let mut register = |id: String, roles: Roles, limit: i64, seat: Option<(&str, Option<i64>)>| {
        commands.push(Command::new(
            Actor::Operator,
            Action::RegisterParticipant {
                id: code(&id),
                name: id.clone(),
                roles,
                credit_limit: Fen(limit),
                token_hash: [1; 32],
                firm: seat.map(|(firm, _)| code(firm)),
                daily_limit: seat.and_then(|(_, daily)| daily.map(Fen)),
            },
        ))
    };
    for b in 0..BUYERS {
        // From tight to generous, so credit rejections happen.
        register(format!("buyer{b}"), roles(false, true), [30_000, 150_000, 600_000, 3_000_000][b], None);
    }
    for g in 0..GROWERS {
        register(format!("grower{g}"), roles(true, false), 0, None);
    }
    register("trader".to_string(), roles(true, true), 200_000, None);
    register("seat0".to_string(), roles(false, true), 0, Some(("buyer1", Some(40_000))));
    register("seat1".to_string(), roles(false, true), 0, Some(("buyer1", None)));
    commands
}

impl Default for Driver {
    fn default() -> Driver {
        Driver::new()
    }
}

impl Driver {
    /// The roster's keys, in the order `roster_commands` registers them on a fresh market.
    pub fn new() -> Driver {
        let buyers = (0..BUYERS as u32).map(Pk).collect();
        let growers = (BUYERS as u32..(BUYERS + GROWERS) as u32).map(Pk).collect();
        let first_seat = (BUYERS + GROWERS + 1) as u32;
        let seats = (first_seat..first_seat + SEATS as u32).map(Pk).collect();
        Driver { buyers, growers, trader: Pk((BUYERS + GROWERS) as u32), seats, next_client_order: 0 }
    }

    /// How long to wait before the operation, in microseconds: mostly short, now and then long
    /// enough for rounds to run out, and sometimes exactly nothing (simultaneous arrivals).
    pub fn gap_us(raw: &RawOp) -> u64 {
        let g = raw[5];
        match g % 16 {
            0 | 1 => 0,
            2 => (g / 16) as u64 % 3_000_000,
            3 => 10_000 * ((g / 16) as u64 % 50),
            _ => (g / 16) as u64 % 120_000,
        }
    }

    fn buyer_actor(&self, k: u32) -> Actor {
        // Mostly real buyers, some growers (forbidden) and the dual-role trader.
        match k % 10 {
            0 => Actor::Participant(self.growers[(k / 10) as usize % GROWERS]),
            1 => Actor::Participant(self.trader),
            2 | 3 => Actor::Participant(self.seats[(k / 10) as usize % SEATS]),
            _ => Actor::Participant(self.buyers[(k / 10) as usize % BUYERS]),
        }
    }

    fn seller_actor(&self, k: u32) -> Actor {
        match k % 8 {
            0 => Actor::Participant(self.buyers[(k / 8) as usize % BUYERS]),
            1 => Actor::Participant(self.trader),
            _ => Actor::Participant(self.growers[(k / 8) as usize % GROWERS]),
        }
    }

    fn pick_lot(market: &Market, k: u32) -> Option<LotId> {
        let lots = market.lots();
        if lots.is_empty() {
            return None;
        }
        // Prefer recent lots: they are the ones still in play.
        let n = lots.len().min(8);
        lots.keys().rev().nth(k as usize % n).copied()
    }

    /// A lot not yet on a clock nor finished, if there is one.
    fn pick_waiting_lot(market: &Market, k: u32) -> Option<LotId> {
        let waiting: Vec<LotId> = market
            .lots()
            .values()
            .filter(|l| matches!(l.status, LotStatus::Consigned | LotStatus::Queued))
            .map(|l| l.id)
            .collect();
        (!waiting.is_empty()).then(|| waiting[k as usize % waiting.len()])
    }

    fn pick_clock(k: u32) -> ClockId {
        ClockId(1 + (k % CLOCKS as u32) as u16)
    }

    fn client_order_id(&mut self, market: &Market, actor: Actor, reuse: bool) -> Code {
        // Now and then reuse a live id of the actor (duplicate, or the target of cancel/amend).
        if reuse {
            if let Actor::Participant(pk) = actor {
                if let Some(report) = market.open_orders(pk).first() {
                    return report.client_order_id;
                }
            }
        }
        self.next_client_order += 1;
        code(&format!("c{}", self.next_client_order))
    }

    /// Turns one raw operation into commands (usually one; a race is two, closing the day a few).
    pub fn resolve(&mut self, market: &Market, raw: &RawOp) -> Vec<Command> {
        let [kind, a, b, c, d, _] = *raw;
        let one = |actor: Actor, action: Action| vec![Command::new(actor, action)];
        match kind % 100 {
            // Consign a lot.
            0..=7 => {
                let grower = self.seller_actor(a);
                let containers = 1 + b % 12;
                let consignment = Consignment {
                    product: code(["ROSE", "LILY", "TULIP"][(c % 3) as usize]),
                    grade: Grade::DEFAULT_SCALE[(c / 3 % 3) as usize],
                    units_per_container: 1 + d % 20,
                    containers,
                    min_price: Fen(20 + (c / 9 % 400) as i64),
                    min_purchase: 1 + (b / 12) % containers.min(4),
                    origin: String::new(),
                    photo_url: String::new(),
                    note: String::new(),
                    master: Default::default(),
                };
                one(grower, Action::ConsignLot(Box::new(consignment)))
            }
            // Assign a lot, mostly one still waiting, mostly above its reserve.
            8..=17 => {
                let waiting = Self::pick_waiting_lot(market, a).filter(|_| c % 7 != 0);
                let Some(lot) = waiting.or_else(|| Self::pick_lot(market, a)) else { return vec![Command::tick()] };
                let min = market.lot(lot).map_or(100, |l| l.min_price.0);
                let start = if c % 20 == 0 { min - 1 } else { min + 20 + (d % 200) as i64 };
                one(Actor::Operator, Action::AssignLot { lot, clock: Self::pick_clock(b), start_price: Fen(start) })
            }
            18..=22 => {
                // Mostly a clock that can start.
                let ready: Vec<ClockId> = market
                    .clocks()
                    .iter()
                    .filter(|c| c.phase == ClockPhase::Idle && !c.supply_line.is_empty())
                    .map(|c| c.id)
                    .collect();
                let clock =
                    if ready.is_empty() || b % 6 == 0 { Self::pick_clock(a) } else { ready[a as usize % ready.len()] };
                one(Actor::Operator, Action::StartClock { clock })
            }
            23 => one(Actor::Operator, Action::HaltClock { clock: Self::pick_clock(a) }),
            // A live bid on the round a clock is running (or a nearby one).
            24..=43 => self.bid_on_clock(market, a, b, c, d).into_iter().collect(),
            // Two buyers press at the same instant: the first in sequence order must win.
            44..=48 => {
                let first = self.bid_on_clock(market, a, b, c, d);
                let second = self.bid_on_clock(market, a, b.wrapping_add(7), c, d.wrapping_add(3));
                first.into_iter().chain(second).collect()
            }
            49..=53 => {
                let Some(lot) = Self::pick_lot(market, a) else { return vec![Command::tick()] };
                let (min, start) = market
                    .lot(lot)
                    .map_or((100, 200), |l| (l.min_price.0, l.start_price.map_or(l.min_price.0 + 60, |p| p.0)));
                let max_price = (min - 5 + (c % (start - min + 15).max(1) as u32) as i64).max(1);
                let containers = d % 6;
                one(self.buyer_actor(b), Action::StandingBid { lot, max_price: Fen(max_price), containers })
            }
            54 => {
                let Some(lot) = Self::pick_lot(market, a) else { return vec![Command::tick()] };
                one(self.buyer_actor(b), Action::CancelStandingBid { lot })
            }
            55..=56 => {
                // Mostly a clock with awards to void.
                let awarded: Vec<ClockId> =
                    market.clocks().iter().filter(|c| !c.awards.is_empty()).map(|c| c.id).collect();
                let clock = if awarded.is_empty() || c % 5 == 0 {
                    Self::pick_clock(a)
                } else {
                    awarded[a as usize % awarded.len()]
                };
                let Some(c) = market.clock(clock) else { return vec![Command::tick()] };
                let lot = c.lot.or_else(|| Self::pick_lot(market, b)).unwrap_or(LotId(1));
                let round = c.round.map_or(1, |r| r.number).saturating_sub(d % 2);
                one(Actor::Operator, Action::VoidAward { clock, lot, round, buyer: None })
            }
            57..=58 => {
                let patch = ClockSettingsPatch {
                    step: (b % 3 == 0).then_some(Fen(1 + (b / 3 % 4) as i64)),
                    tick_ms: (c % 3 == 0).then_some(5 + c / 3 % 30),
                    pre_roll_ms: (d % 4 == 0).then_some(d / 4 % 600),
                    pause_ms: (d % 5 == 1).then_some(d / 5 % 400),
                    restart_ticks: (b % 5 == 2).then_some(b / 5 % 15),
                    multi_buy_ms: (c % 3 == 1).then_some(if c % 9 == 1 { 0 } else { 20 + c / 9 % 100 }),
                };
                one(Actor::Operator, Action::ConfigureClock { clock: Self::pick_clock(a), patch })
            }
            59 => {
                let Some(lot) = Self::pick_lot(market, a) else { return vec![Command::tick()] };
                one(Actor::Operator, Action::WithdrawLot { lot })
            }
            60..=61 => {
                let pk = self.participant(a);
                let id = market.participants().get(pk).id;
                let exposure = market.participants().get(pk).account.exposure().0;
                // Sometimes below what the participant already owes.
                let limit = match b % 4 {
                    0 => exposure / 2,
                    1 => exposure + (c % 5_000) as i64,
                    _ => (c % 2_000_000) as i64,
                };
                one(
                    Actor::Operator,
                    Action::SetCreditLimit { participant: id, limit: Some(Fen(limit)), daily_limit: None },
                )
            }
            62 => {
                let pk = self.participant(a);
                let id = market.participants().get(pk).id;
                // Reinstating is more common than suspending, so nobody stays out for long.
                one(Actor::Operator, Action::SetParticipantActive { participant: id, active: b % 9 != 0 })
            }
            63..=65 => {
                let symbol = code(SYMBOLS[(a % 2) as usize]);
                let state = [BookState::Closed, BookState::PreOpen, BookState::Open, BookState::Open, BookState::Open]
                    [(b % 5) as usize];
                one(Actor::Operator, Action::SetBookState { symbol, state })
            }
            66..=79 => {
                let side = if b % 2 == 0 { Side::Buy } else { Side::Sell };
                let actor = if side == Side::Buy { self.buyer_actor(b / 2) } else { self.seller_actor(b / 2) };
                let market_order = c % 10 == 0;
                let entry = OrderEntry {
                    client_order_id: self.client_order_id(market, actor, d % 25 == 0),
                    symbol: code(SYMBOLS[(a % 2) as usize]),
                    side,
                    order_type: if market_order { OrderType::Market } else { OrderType::Limit },
                    price: (!market_order).then_some(Fen(90 + (c / 10 % 25) as i64)),
                    quantity: (d % 80) as u64,
                    time_in_force: [
                        TimeInForce::Gtc,
                        TimeInForce::Day,
                        TimeInForce::Day,
                        TimeInForce::Ioc,
                        TimeInForce::Fok,
                    ][(d / 80 % 5) as usize],
                    post_only: d / 400 % 9 == 0,
                };
                one(actor, Action::NewOrder(entry))
            }
            80..=82 => {
                let actor = Actor::Participant(self.participant(a));
                one(actor, Action::CancelOrder { client_order_id: self.client_order_id(market, actor, b % 8 != 0) })
            }
            83..=85 => {
                let actor = Actor::Participant(self.participant(a));
                let price = (c % 2 == 0).then_some(Fen(90 + (c / 2 % 25) as i64));
                let quantity = (c % 3 != 1).then_some((d % 60) as u64);
                let client_order_id = self.client_order_id(market, actor, b % 8 != 0);
                one(actor, Action::AmendOrder { client_order_id, price, quantity })
            }
            86 => {
                let actor = Actor::Participant(self.participant(a));
                let symbol = (b % 2 == 0).then(|| code(SYMBOLS[(c % 2) as usize]));
                one(actor, Action::CancelAll { symbol })
            }
            // The rare, drastic ones: most of the time they are just a tick, so days last.
            87 if b % 4 == 0 => one(Actor::System, Action::HaltAllClocks),
            88 if b % 8 == 0 => one(Actor::Operator, Action::EndOfDay),
            89 if b % 16 == 0 => self.close_the_day(market),
            // After the sale: a line moves on (or back), a complaint, a decision.
            87..=89 => self.after_sale(market, a, b, c, d),
            // Presales: an offer on a waiting lot (mostly by its grower), purchases, withdrawals.
            90..=92 => {
                let Some(lot) = Self::pick_waiting_lot(market, a).or_else(|| Self::pick_lot(market, a)) else {
                    return vec![Command::tick()];
                };
                let l = market.lot(lot);
                let grower = match (l, b % 6) {
                    (Some(l), 1..) => Actor::Participant(l.grower),
                    _ => self.seller_actor(b),
                };
                let min = l.map_or(100, |l| l.min_price.0);
                let remaining = l.map_or(1, |l| l.remaining);
                let containers = match d % 7 {
                    0 => remaining + 1,
                    _ => 1 + d / 7 % remaining.max(1),
                };
                let price = Fen(if c % 11 == 0 { 0 } else { min + (c % 300) as i64 - 20 });
                one(grower, Action::OfferPresale { lot, price, containers })
            }
            93..=96 => {
                let offered: Vec<LotId> =
                    market.lots().values().filter(|l| l.presale.is_some()).map(|l| l.id).collect();
                let lot = if offered.is_empty() || c % 9 == 0 {
                    match Self::pick_lot(market, a) {
                        Some(lot) => lot,
                        None => return vec![Command::tick()],
                    }
                } else {
                    offered[a as usize % offered.len()]
                };
                let left = market.lot(lot).and_then(|l| l.presale).map_or(1, |o| o.containers);
                let containers = match d % 8 {
                    0 => 0,
                    1 => left + 1,
                    _ => 1 + d / 8 % left,
                };
                one(self.buyer_actor(b), Action::BuyPresale { lot, containers })
            }
            97 => {
                let Some(lot) = Self::pick_lot(market, a) else { return vec![Command::tick()] };
                let grower = market.lot(lot).map_or(self.seller_actor(b), |l| Actor::Participant(l.grower));
                one(grower, Action::WithdrawPresale { lot })
            }
            // Planning: clock plans (with a start time now and then), the draw, plan_lots.
            98 => {
                let products: Vec<Code> = ["ROSE", "LILY", "TULIP"]
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| (b >> i) & 1 == 1)
                    .map(|(_, p)| code(p))
                    .collect();
                let start_time = (c % 3 == 0).then_some(6 * 3600 + c % 7_200);
                let plan = ClockPlan { products, start_time };
                one(Actor::Operator, Action::SetClockPlan { clock: Self::pick_clock(a), plan })
            }
            99 => match b % 3 {
                0 => one(Actor::Operator, Action::DrawOrder { seed: ((c as u64) << 32) | d as u64 }),
                _ => one(Actor::Operator, Action::PlanLots { start_markup_bp: c % 12_000 }),
            },
            _ => vec![Command::tick()],
        }
    }

    /// A dispatch update, a complaint or a decision, mostly about a line or complaint that
    /// exists, by whoever may (now and then by whoever may not).
    fn after_sale(&mut self, market: &Market, a: u32, b: u32, c: u32, d: u32) -> Vec<Command> {
        let one = |actor: Actor, action: Action| vec![Command::new(actor, action)];
        let days = [Some(market.day()), market.dispatch_previous_day()];
        let lines: Vec<DispatchView> =
            days.iter().flatten().filter_map(|day| market.dispatch_lines(*day, None)).flatten().collect();
        match b % 3 {
            0 => {
                let Some(line) = (!lines.is_empty()).then(|| &lines[a as usize % lines.len()]) else {
                    return vec![Command::tick()];
                };
                let status = DispatchStatus::ALL[(c % 5) as usize];
                let temperature = (!d.is_multiple_of(3)).then_some(Centi(200 + (d % 1_400) as i32));
                let actor = if c.is_multiple_of(13) { self.buyer_actor(d) } else { Actor::Operator };
                let location = (d % 4 == 1).then(|| format!("dock {}", d % 9));
                one(actor, Action::UpdateDispatch { reference: line.reference, status, temperature, location })
            }
            1 => {
                let Some(line) = (!lines.is_empty()).then(|| &lines[a as usize % lines.len()]) else {
                    return vec![Command::tick()];
                };
                // Mostly the buyer who bought; now and then someone else.
                let actor = if c.is_multiple_of(7) {
                    self.buyer_actor(d)
                } else {
                    Actor::Participant(line.seat.map_or(line.buyer, |(seat, _)| seat))
                };
                let bought = line.containers.unwrap_or(line.units);
                let containers = if d.is_multiple_of(9) { bought + 1 } else { 1 + d as u64 % bought.max(1) };
                let reason = ComplaintReason::ALL[(c % 4) as usize];
                one(actor, Action::FileComplaint { reference: line.reference, reason, containers, note: String::new() })
            }
            _ => {
                let open: Vec<(u64, Fen)> = market.open_complaints().map(|c| (c.id, c.credit_max)).collect();
                let (id, max) =
                    if open.is_empty() { (1 + a as u64 % 5, Fen(100)) } else { open[a as usize % open.len()] };
                let decision = if c.is_multiple_of(3) { Decision::Rejected } else { Decision::Accepted };
                let credit = match (decision, d % 6) {
                    (Decision::Rejected, 0) => Fen(1),
                    (Decision::Rejected, _) => Fen::ZERO,
                    (_, 0) => Fen(max.0 + 1),
                    _ => Fen(max.0 * (d % 5) as i64 / 4),
                };
                one(Actor::Operator, Action::ResolveComplaint { complaint: id, decision, credit })
            }
        }
    }

    fn participant(&self, k: u32) -> Pk {
        Pk(k % (BUYERS + GROWERS + 1 + SEATS) as u32)
    }

    /// A bid on the round clock `a` is running (or, now and then, the one before or after).
    fn bid_on_clock(&self, market: &Market, a: u32, b: u32, c: u32, d: u32) -> Option<Command> {
        // Mostly a clock that has a lot on it: that is where bids matter.
        let busy: Vec<ClockId> = market.clocks().iter().filter(|c| c.lot.is_some()).map(|c| c.id).collect();
        let clock =
            if !busy.is_empty() && !c.is_multiple_of(9) { busy[a as usize % busy.len()] } else { Self::pick_clock(a) };
        let cl = market.clock(clock)?;
        let lot = cl.lot.or_else(|| Self::pick_lot(market, b))?;
        let current = market.lot(lot).map_or(1, |l| l.rounds.max(1));
        let round = match c % 12 {
            0 => current + 1,
            1 => current.saturating_sub(1).max(1),
            _ => current,
        };
        let remaining = market.lot(lot).map_or(1, |l| l.remaining);
        let containers = match d % 6 {
            0 => 0,
            1 => remaining + 1,
            _ => 1 + d / 6 % remaining.max(1),
        };
        Some(Command::new(self.buyer_actor(b), Action::Bid { clock, lot, round, containers }))
    }

    /// What an operator does at the end of the day: halt every clock, close every book, settle.
    pub fn close_the_day(&self, market: &Market) -> Vec<Command> {
        let mut commands = Vec::new();
        for c in market.clocks() {
            if c.phase != ClockPhase::Idle {
                commands.push(Command::new(Actor::Operator, Action::HaltClock { clock: c.id }));
            }
        }
        for (symbol, listing) in market.listings() {
            if listing.book.state() != BookState::Closed {
                commands.push(Command::new(
                    Actor::Operator,
                    Action::SetBookState { symbol: *symbol, state: BookState::Closed },
                ));
            }
        }
        commands.push(Command::new(Actor::Operator, Action::EndOfDay));
        commands
    }
}

/// Generates a whole command list from `seed`, resolving against a market that runs alongside.
/// Returns (command, engine time) pairs; the roster comes first.
pub fn generate_commands(seed: u64, operations: usize, days_min: usize) -> Vec<(Command, EngineTime)> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let day = Day::parse(DAY).unwrap();
    let mut market = Market::new(MarketConfig::new(day));
    let mut now = morning_of(day);
    let mut driver = Driver::new();
    let mut out_events = Vec::new();
    let mut list = Vec::new();
    let mut push = |market: &mut Market, command: Command, now: EngineTime, list: &mut Vec<(Command, EngineTime)>| {
        out_events.clear();
        market.apply(&command, now, &mut out_events);
        list.push((command, now));
    };
    for command in roster_commands() {
        push(&mut market, command, now, &mut list);
    }
    let days_every = operations / (days_min + 1);
    for i in 0..operations {
        let raw: RawOp = rng.gen();
        now = EngineTime(now.0 + Driver::gap_us(&raw));
        let commands = if days_every > 0 && i % days_every == days_every - 1 {
            driver.close_the_day(&market)
        } else {
            driver.resolve(&market, &raw)
        };
        for command in commands {
            push(&mut market, command, now, &mut list);
        }
    }
    list
}

/// How many days `events` settled.
pub fn settled_days(events: &[Event]) -> usize {
    events.iter().filter(|e| matches!(e, Event::DaySettled { .. })).count()
}

pub fn is_idle(market: &Market, n: u16) -> bool {
    market.clock(ClockId(n)).is_some_and(|c| c.phase == ClockPhase::Idle)
}
