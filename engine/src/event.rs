//! Every output of the market core. One command yields a list of events; the gateway turns each
//! into the protocol's replies, private reports and public feed messages, and clearing books the
//! money. Events carry participant keys (`Pk`) for routing and codes for the wire.

use crate::command::{ClockPlan, ClockSettings, Roles};
use crate::core::book::{BookState, DoneReason, OrderType, TimeInForce};
use crate::core::catalogue::{Category, Grade, Unit};
use crate::core::clock::ClockPhase;
use crate::core::complaints::Complaint;
use crate::core::dispatch::{Centi, DispatchView};
use crate::core::fees::FeeSchedule;
use crate::core::limits::MarketLimits;
use crate::core::lots::Lot;
use crate::reject::Reject;
use crate::types::{ClockId, Code, Day, EngineTime, Fen, LotId, OrderId, Pk, Side, TradeId};
use serde::{Deserialize, Serialize};

/// A clock sale: one buyer, one round, some containers, one price.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Award {
    pub clock: ClockId,
    pub lot: LotId,
    pub round: u32,
    pub buyer: Pk,
    pub buyer_id: Code,
    pub grower: Pk,
    pub grower_id: Code,
    pub product: Code,
    pub grade: Grade,
    pub price: Fen,
    pub containers: u32,
    pub units: u64,
    pub amount: Fen,
    /// The buyer's fee.
    pub fee: Fen,
    /// The grower's commission.
    pub commission: Fen,
    /// Containers left in the lot after this award.
    pub remaining: u32,
    pub ts: EngineTime,
    /// Won by a standing bid rather than a live press.
    pub standing: bool,
}

/// A book trade between two participants.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trade {
    pub trade_id: TradeId,
    pub symbol: Code,
    pub product: Code,
    pub price: Fen,
    pub quantity: u64,
    pub amount: Fen,
    pub aggressor: Side,
    pub buyer: Pk,
    pub buyer_id: Code,
    pub buyer_order: OrderId,
    pub seller: Pk,
    pub seller_id: Code,
    pub seller_order: OrderId,
    /// The buyer's fee.
    pub fee: Fen,
    /// The seller's commission.
    pub commission: Fen,
    pub ts: EngineTime,
}

/// A book order's report to its owner.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderReport {
    pub owner: Pk,
    pub order_id: OrderId,
    pub client_order_id: Code,
    pub symbol: Code,
    pub side: Side,
    pub order_type: OrderType,
    pub price: Option<Fen>,
    /// Open quantity (for `order_accepted`, the quantity asked for).
    pub quantity: u64,
    pub time_in_force: TimeInForce,
    pub post_only: bool,
    pub ts: EngineTime,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Liquidity {
    Maker,
    Taker,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    // ── participants and reference data ──
    ParticipantRegistered {
        pk: Pk,
        id: Code,
        name: String,
        roles: Roles,
        credit_limit: Fen,
        token_hash: [u8; 32],
        /// The buyer firm whose seat this is: its trades are the firm's (protocol section 4).
        firm: Option<Pk>,
        daily_limit: Option<Fen>,
    },
    CreditLimitSet {
        pk: Pk,
        id: Code,
        limit: Fen,
        daily_limit: Option<Fen>,
    },
    ParticipantStatus {
        pk: Pk,
        id: Code,
        active: bool,
    },
    ProductDefined {
        code: Code,
        name: String,
        category: Category,
        unit: Unit,
        grades: Vec<Grade>,
    },
    InstrumentDefined {
        symbol: Code,
    },
    // ── lots and clocks ──
    /// To the grower (with the reserve) — and the reply to `consign_lot`.
    LotConsigned {
        lot: Box<Lot>,
    },
    LotAssigned {
        lot: LotId,
        clock: ClockId,
        position: u32,
    },
    LotWithdrawn {
        lot: LotId,
        grower: Pk,
    },
    ClockConfigured {
        clock: ClockId,
        settings: ClockSettings,
    },
    /// Public and the reply to `start_clock` / `halt_clock`.
    ClockState {
        clock: ClockId,
        phase: ClockPhase,
    },
    /// Public: the next lot is on the clock (the feed hides `min_price`).
    LotOnClock {
        clock: ClockId,
        lot: Box<Lot>,
        start_price: Fen,
        /// The next (up to) six lots of the supply line.
        next: Vec<Lot>,
    },
    /// Public: a round starts; clients draw the falling price from these figures.
    ClockStarted {
        clock: ClockId,
        lot: LotId,
        round: u32,
        start_price: Fen,
        step: Fen,
        tick_ms: u32,
        start_ts: EngineTime,
        remaining: u32,
    },
    /// To the buyer (`award`), the grower (`lot_sale`), the feed (`clock_award`), clearing.
    Awarded(Box<Award>),
    AwardVoided {
        clock: ClockId,
        lot: LotId,
        round: u32,
        buyer: Pk,
        grower: Pk,
        containers: u32,
        remaining: u32,
        amount: Fen,
        fee: Fen,
        commission: Fen,
    },
    /// Public: a round ended below the reserve; the rest of the lot is unsold.
    LotUnsold {
        clock: ClockId,
        lot: LotId,
        grower: Pk,
        round: u32,
        remaining: u32,
        ts: EngineTime,
    },
    StandingBidAccepted {
        buyer: Pk,
        lot: LotId,
        max_price: Fen,
        containers: u32,
    },
    StandingBidCancelled {
        buyer: Pk,
        lot: LotId,
    },
    /// A standing bid failed when it triggered (quantity or credit): private to the buyer.
    StandingBidDropped {
        buyer: Pk,
        lot: LotId,
        reject: Reject,
    },
    // ── books ──
    BookStateChanged {
        symbol: Code,
        state: BookState,
    },
    OrderAccepted(OrderReport),
    OrderAmended(OrderReport),
    Fill {
        owner: Pk,
        order_id: OrderId,
        client_order_id: Code,
        trade_id: TradeId,
        symbol: Code,
        side: Side,
        price: Fen,
        quantity: u64,
        leaves: u64,
        liquidity: Liquidity,
        ts: EngineTime,
    },
    OrderDone {
        owner: Pk,
        order_id: OrderId,
        client_order_id: Code,
        symbol: Code,
        reason: DoneReason,
        ts: EngineTime,
    },
    /// Reply to `cancel_all` / cancel-on-disconnect.
    Cancelled {
        owner: Pk,
        count: u32,
    },
    /// Public (`trade`) and clearing.
    Traded(Trade),
    /// Public: a level's new total (0 removes it).
    BookLevel {
        symbol: Code,
        side: Side,
        price: Fen,
        quantity: u64,
    },
    // ── the day ──
    DaySettled {
        day: Day,
        next_day: Day,
        trades: u64,
        turnover: Fen,
        fees: Fen,
    },
    // ── v1.1, at the end so the variant indices above stay put ──
    /// Reply to `set_limits`: every limit as it now stands.
    LimitsSet(MarketLimits),
    /// Reply to the operator's `cancel_orders`: how many of `participant`'s orders were
    /// cancelled (each owner is told by its own `OrderDone`).
    OrdersCancelled {
        owner: Pk,
        participant: Code,
        count: u32,
    },
    /// Reply to `set_fees`: the fees that apply from `effective_day`.
    FeesSet {
        fees: FeeSchedule,
        effective_day: Day,
    },
    // ── issue 14: planning, the catalogue and presales (protocol section 11) ──
    ClockPlanSet {
        clock: ClockId,
        plan: ClockPlan,
    },
    /// The day's grower order and the seed it was drawn from.
    OrderDrawn {
        day: Day,
        seed: u64,
        growers: Vec<Code>,
    },
    /// Reply to `plan_lots`.
    LotsPlanned {
        day: Day,
        assigned: Vec<PlannedLot>,
        unplanned: Vec<LotId>,
    },
    /// Public, after planning: every clock's lots of the day in auction order.
    Catalogue {
        day: Day,
        clocks: Vec<(ClockId, Vec<LotId>)>,
    },
    /// Public: the first six lots of a clock's supply line changed.
    SupplyLine {
        clock: ClockId,
        next: Vec<Lot>,
    },
    /// Reply to `offer_presale` (to the grower) and public (`presale`, action `offered`).
    PresaleOffered {
        lot: LotId,
        grower: Pk,
        price: Fen,
        containers: u32,
    },
    /// To the buyer (`presale_bought`), the grower (`lot_sale`), the feed and clearing.
    PresaleBought(Box<PresaleSale>),
    /// Reply to `withdraw_presale`; also when a suspension withdraws the grower's offers.
    PresaleWithdrawn {
        lot: LotId,
        grower: Pk,
        price: Fen,
        containers: u32,
    },
    /// Public: the offer closed because the lot went on the clock (or ended before it).
    PresaleClosed {
        lot: LotId,
        grower: Pk,
        price: Fen,
        containers: u32,
    },
    /// `plan_lots` accepted: it places `lots` lots in slices, and its reply (`LotsPlanned`)
    /// comes with the last slice, on a journaled tick (the gateway holds the request till then).
    PlanningStarted {
        lots: u32,
    },
    // ── issue 15: after the sale (protocol section 12) ──
    ColdChainSet {
        category: Category,
        max_temperature: Centi,
    },
    /// To the buyer.
    DestinationSet {
        buyer: Pk,
        day: Day,
        destination: String,
    },
    /// To the mover and the buyer (and its seat), and clearing (the lot's trace). `alarm_raised`:
    /// this reading is the one above `max_temperature` that raised the line's alarm.
    DispatchUpdated {
        line: Box<DispatchView>,
        alarm_raised: bool,
        max_temperature: Option<Centi>,
        /// The reading this update recorded, if it recorded one (the line keeps the latest).
        reading: Option<Centi>,
    },
    /// To the buyer who filed it.
    ComplaintFiled(Box<Complaint>),
    /// To the operator, the buyer and the seller; clearing books an accepted credit.
    ComplaintResolved(Box<Complaint>),
}

/// One lot as `plan_lots` placed it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedLot {
    pub lot: LotId,
    pub clock: ClockId,
    pub position: u32,
    pub start_price: Fen,
}

/// A presale purchase: one buyer, part of a lot, at the grower's price.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresaleSale {
    pub lot: LotId,
    /// The lot's 1-based presale purchase number.
    pub number: u32,
    pub buyer: Pk,
    pub buyer_id: Code,
    pub grower: Pk,
    pub grower_id: Code,
    pub product: Code,
    pub grade: Grade,
    pub price: Fen,
    pub containers: u32,
    pub units: u64,
    pub amount: Fen,
    pub fee: Fen,
    pub commission: Fen,
    /// Containers still offered after this purchase.
    pub offer_left: u32,
    /// Containers left in the lot.
    pub remaining: u32,
    pub ts: EngineTime,
}

impl Event {
    /// Whether the event changes the day's sales, and so clearing's `stats` and `index` values.
    pub fn moves_market_data(&self) -> bool {
        matches!(self, Event::Awarded(_) | Event::AwardVoided { .. } | Event::Traded(_) | Event::PresaleBought(_))
    }

    /// Whether the public feed carries this event (in some form).
    pub fn is_public(&self) -> bool {
        matches!(
            self,
            Event::ClockState { .. }
                | Event::LotOnClock { .. }
                | Event::ClockStarted { .. }
                | Event::Awarded(_)
                | Event::AwardVoided { .. }
                | Event::LotUnsold { .. }
                | Event::BookStateChanged { .. }
                | Event::Traded(_)
                | Event::BookLevel { .. }
                | Event::DaySettled { .. }
                | Event::Catalogue { .. }
                | Event::SupplyLine { .. }
                | Event::PresaleOffered { .. }
                | Event::PresaleBought(_)
                | Event::PresaleWithdrawn { .. }
                | Event::PresaleClosed { .. }
        )
    }
}
