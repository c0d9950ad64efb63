//! Every input to the market core. A `Command` is what the journal stores: who asked, and what.
//! The engine time that goes with it is stamped by the sequencer and journaled beside it.
//!
//! Commands are already validated for shape by the gateway (codes parsed, decimals turned into
//! fen); every market rule is checked by the core.

use crate::core::book::{BookState, OrderType, TimeInForce};
use crate::core::catalogue::{Category, Grade, Packaging, Unit};
use crate::core::complaints::{ComplaintReason, Decision};
use crate::core::dispatch::{Centi, DispatchRef, DispatchStatus};
use crate::core::fees::FeeSchedule;
use crate::core::limits::MarketLimitsPatch;
use crate::types::{ClockId, Code, Day, Fen, LotId, Pk, Side};
use serde::{Deserialize, Serialize};

/// Who sent the command. The market's own operator (`--operator-token`) is `Operator`; a
/// registered participant is `Participant`, whatever its roles; timers and recovery are `System`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Actor {
    Operator,
    Participant(Pk),
    System,
}

/// A participant's roles. `operator` may be granted to registered participants too.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Roles {
    pub operator: bool,
    pub grower: bool,
    pub buyer: bool,
    /// Moves bought goods through the cold chain (protocol section 12).
    pub logistics: bool,
}

impl Roles {
    pub fn names(&self) -> Vec<&'static str> {
        let mut names = Vec::new();
        if self.operator {
            names.push("operator");
        }
        if self.grower {
            names.push("grower");
        }
        if self.buyer {
            names.push("buyer");
        }
        if self.logistics {
            names.push("logistics");
        }
        names
    }
}

/// A clock's settings; see protocol section 6 for the defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockSettings {
    pub step: Fen,
    pub tick_ms: u32,
    pub pre_roll_ms: u32,
    pub pause_ms: u32,
    pub restart_ticks: u32,
    pub multi_buy_ms: u32,
}

impl Default for ClockSettings {
    fn default() -> ClockSettings {
        ClockSettings {
            step: Fen(1),
            tick_ms: 10,
            pre_roll_ms: 1000,
            pause_ms: 500,
            restart_ticks: 10,
            multi_buy_ms: 0,
        }
    }
}

/// `configure_clock`: only the fields given change.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockSettingsPatch {
    pub step: Option<Fen>,
    pub tick_ms: Option<u32>,
    pub pre_roll_ms: Option<u32>,
    pub pause_ms: Option<u32>,
    pub restart_ticks: Option<u32>,
    pub multi_buy_ms: Option<u32>,
}

/// A consignment as the grower sends it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consignment {
    pub product: Code,
    pub grade: Grade,
    pub units_per_container: u32,
    pub containers: u32,
    pub min_price: Fen,
    pub min_purchase: u32,
    pub origin: String,
    pub photo_url: String,
    pub note: String,
    /// Master data (protocol section 5); empty strings and `None` when not given.
    pub master: MasterData,
}

/// A lot's master data: what a buyer plans its purchases by (protocol section 5).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MasterData {
    /// The cultivar, e.g. "Carola".
    pub variety: String,
    pub stem_length_cm: Option<u16>,
    /// Opening stage 1–5.
    pub maturity: Option<u8>,
    pub packaging: Option<Packaging>,
    /// The production base or cluster the lot comes from.
    pub base: String,
    /// The grower's harvest batch.
    pub batch: String,
    pub harvest_day: Option<Day>,
}

/// `set_clock_plan`: which products a clock auctions and when it starts by itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockPlan {
    pub products: Vec<Code>,
    /// Seconds after the trading day's midnight, market local time (+08:00).
    pub start_time: Option<u32>,
}

/// A new book order as the participant sends it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderEntry {
    pub client_order_id: Code,
    pub symbol: Code,
    pub side: Side,
    pub order_type: OrderType,
    pub price: Option<Fen>,
    pub quantity: u64,
    pub time_in_force: TimeInForce,
    pub post_only: bool,
}

/// What the actor asks for. One variant per state-changing request of the protocol, plus the
/// engine's own `Tick` and `HaltAllClocks` (recovery).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    // ── reference data and participants (operator) ──
    RegisterParticipant {
        id: Code,
        name: String,
        roles: Roles,
        credit_limit: Fen,
        /// SHA-256 of the token: the token itself is never journaled.
        token_hash: [u8; 32],
        /// A buyer seat of this buyer firm: its purchases use the firm's credit.
        firm: Option<Code>,
        /// A seat's cap on its own purchases in a day (amount, fees and open buy orders' holds).
        daily_limit: Option<Fen>,
    },
    /// `limit` is the credit limit (a seat has none); `daily_limit` a seat's daily cap.
    SetCreditLimit {
        participant: Code,
        limit: Option<Fen>,
        daily_limit: Option<Fen>,
    },
    SetParticipantActive {
        participant: Code,
        active: bool,
    },
    DefineProduct {
        code: Code,
        name: String,
        category: Category,
        unit: Unit,
        /// The grade scale, best first; the default scale when empty.
        grades: Vec<Grade>,
    },
    DefineInstrument {
        symbol: Code,
        product: Code,
        tick_size: Fen,
        price_band_pct: u32,
    },
    // ── lots and clocks ──
    ConsignLot(Box<Consignment>),
    AssignLot {
        lot: LotId,
        clock: ClockId,
        start_price: Fen,
    },
    ConfigureClock {
        clock: ClockId,
        patch: ClockSettingsPatch,
    },
    StartClock {
        clock: ClockId,
    },
    HaltClock {
        clock: ClockId,
    },
    WithdrawLot {
        lot: LotId,
    },
    /// `buyer` (an extension) picks one award when multi-buy made several in the round; without
    /// it the round's latest standing award is voided.
    VoidAward {
        clock: ClockId,
        lot: LotId,
        round: u32,
        buyer: Option<Code>,
    },
    Bid {
        clock: ClockId,
        lot: LotId,
        round: u32,
        containers: u32,
    },
    StandingBid {
        lot: LotId,
        max_price: Fen,
        containers: u32,
    },
    CancelStandingBid {
        lot: LotId,
    },
    // ── books ──
    SetBookState {
        symbol: Code,
        state: BookState,
    },
    NewOrder(OrderEntry),
    CancelOrder {
        client_order_id: Code,
    },
    AmendOrder {
        client_order_id: Code,
        price: Option<Fen>,
        quantity: Option<u64>,
    },
    CancelAll {
        symbol: Option<Code>,
    },
    /// The participant's last `cancel_on_disconnect` session dropped.
    CancelOnDisconnect,
    // ── the day ──
    EndOfDay,
    // ── the engine's own ──
    /// Advance timers to the command's engine time. Every command does that first; a `Tick` does
    /// only that, so the sequencer can wake the core at `next_deadline()`.
    Tick,
    /// After a restart: every clock that was auctioning is halted, as by `halt_clock`.
    HaltAllClocks,
    // ── v1.1, at the end so old journals keep their variant indices ──
    /// `set_limits`: only the limits given change.
    SetLimits(MarketLimitsPatch),
    /// `cancel_orders`: the operator cancels a participant's open book orders.
    CancelOrders {
        participant: Code,
        symbol: Option<Code>,
    },
    /// `set_fees`: the fees from the next trading day on.
    SetFees(FeeSchedule),
    // ── issue 14: planning and presales (protocol section 11) ──
    SetClockPlan {
        clock: ClockId,
        plan: ClockPlan,
    },
    /// `draw_order`: the seed is chosen by the gateway and journaled here, so a replay draws the
    /// same order; a second draw on the same day answers with the first.
    DrawOrder {
        seed: u64,
    },
    /// `plan_lots`: the start markup in hundredths of a percent (`"50"` is 5000).
    PlanLots {
        start_markup_bp: u32,
    },
    OfferPresale {
        lot: LotId,
        price: Fen,
        containers: u32,
    },
    BuyPresale {
        lot: LotId,
        containers: u32,
    },
    WithdrawPresale {
        lot: LotId,
    },
    // ── issue 15: after the sale (protocol section 12) ──
    SetColdChain {
        category: Category,
        max_temperature: Centi,
    },
    /// `set_destination`: `day` absent is today.
    SetDestination {
        day: Option<Day>,
        destination: String,
    },
    UpdateDispatch {
        reference: DispatchRef,
        status: DispatchStatus,
        temperature: Option<Centi>,
        location: Option<String>,
    },
    FileComplaint {
        reference: DispatchRef,
        reason: ComplaintReason,
        containers: u64,
        note: String,
    },
    ResolveComplaint {
        complaint: u64,
        decision: Decision,
        credit: Fen,
    },
}

/// What an action is, without its fields: the one list of the engine's actions. The protocol's
/// names, the gateway's request parser and its reply routing all derive from it (a new action
/// that one of them forgets does not compile).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ActionKind {
    RegisterParticipant,
    SetCreditLimit,
    SuspendParticipant,
    ReinstateParticipant,
    DefineProduct,
    DefineInstrument,
    ConsignLot,
    AssignLot,
    ConfigureClock,
    StartClock,
    HaltClock,
    WithdrawLot,
    VoidAward,
    Bid,
    StandingBid,
    CancelStandingBid,
    SetBookState,
    NewOrder,
    CancelOrder,
    AmendOrder,
    CancelAll,
    CancelOnDisconnect,
    EndOfDay,
    Tick,
    HaltAllClocks,
    SetLimits,
    CancelOrders,
    SetFees,
    SetClockPlan,
    DrawOrder,
    PlanLots,
    OfferPresale,
    BuyPresale,
    WithdrawPresale,
    SetColdChain,
    SetDestination,
    UpdateDispatch,
    FileComplaint,
    ResolveComplaint,
}

impl ActionKind {
    pub const ALL: [ActionKind; 39] = [
        ActionKind::RegisterParticipant,
        ActionKind::SetCreditLimit,
        ActionKind::SuspendParticipant,
        ActionKind::ReinstateParticipant,
        ActionKind::DefineProduct,
        ActionKind::DefineInstrument,
        ActionKind::ConsignLot,
        ActionKind::AssignLot,
        ActionKind::ConfigureClock,
        ActionKind::StartClock,
        ActionKind::HaltClock,
        ActionKind::WithdrawLot,
        ActionKind::VoidAward,
        ActionKind::Bid,
        ActionKind::StandingBid,
        ActionKind::CancelStandingBid,
        ActionKind::SetBookState,
        ActionKind::NewOrder,
        ActionKind::CancelOrder,
        ActionKind::AmendOrder,
        ActionKind::CancelAll,
        ActionKind::CancelOnDisconnect,
        ActionKind::EndOfDay,
        ActionKind::Tick,
        ActionKind::HaltAllClocks,
        ActionKind::SetLimits,
        ActionKind::CancelOrders,
        ActionKind::SetFees,
        ActionKind::SetClockPlan,
        ActionKind::DrawOrder,
        ActionKind::PlanLots,
        ActionKind::OfferPresale,
        ActionKind::BuyPresale,
        ActionKind::WithdrawPresale,
        ActionKind::SetColdChain,
        ActionKind::SetDestination,
        ActionKind::UpdateDispatch,
        ActionKind::FileComplaint,
        ActionKind::ResolveComplaint,
    ];

    /// The protocol's name (the request's `type`); the engine's own actions have one too, for
    /// metrics and logs.
    pub const fn name(self) -> &'static str {
        match self {
            ActionKind::RegisterParticipant => "register_participant",
            ActionKind::SetCreditLimit => "set_credit_limit",
            ActionKind::SuspendParticipant => "suspend_participant",
            ActionKind::ReinstateParticipant => "reinstate_participant",
            ActionKind::DefineProduct => "define_product",
            ActionKind::DefineInstrument => "define_instrument",
            ActionKind::ConsignLot => "consign_lot",
            ActionKind::AssignLot => "assign_lot",
            ActionKind::ConfigureClock => "configure_clock",
            ActionKind::StartClock => "start_clock",
            ActionKind::HaltClock => "halt_clock",
            ActionKind::WithdrawLot => "withdraw_lot",
            ActionKind::VoidAward => "void_award",
            ActionKind::Bid => "bid",
            ActionKind::StandingBid => "standing_bid",
            ActionKind::CancelStandingBid => "cancel_standing_bid",
            ActionKind::SetBookState => "set_book_state",
            ActionKind::NewOrder => "new_order",
            ActionKind::CancelOrder => "cancel_order",
            ActionKind::AmendOrder => "amend_order",
            ActionKind::CancelAll => "cancel_all",
            ActionKind::CancelOnDisconnect => "cancel_on_disconnect",
            ActionKind::EndOfDay => "end_of_day",
            ActionKind::Tick => "tick",
            ActionKind::HaltAllClocks => "halt_all_clocks",
            ActionKind::SetLimits => "set_limits",
            ActionKind::CancelOrders => "cancel_orders",
            ActionKind::SetFees => "set_fees",
            ActionKind::SetClockPlan => "set_clock_plan",
            ActionKind::DrawOrder => "draw_order",
            ActionKind::PlanLots => "plan_lots",
            ActionKind::OfferPresale => "offer_presale",
            ActionKind::BuyPresale => "buy_presale",
            ActionKind::WithdrawPresale => "withdraw_presale",
            ActionKind::SetColdChain => "set_cold_chain",
            ActionKind::SetDestination => "set_destination",
            ActionKind::UpdateDispatch => "update_dispatch",
            ActionKind::FileComplaint => "file_complaint",
            ActionKind::ResolveComplaint => "resolve_complaint",
        }
    }

    pub fn from_name(name: &str) -> Option<ActionKind> {
        ActionKind::ALL.into_iter().find(|kind| kind.name() == name)
    }

    /// Actions only the engine issues (timers, recovery, a dropped session), never a request.
    pub const fn is_engine_own(self) -> bool {
        matches!(self, ActionKind::Tick | ActionKind::HaltAllClocks | ActionKind::CancelOnDisconnect)
    }
}

impl Action {
    pub fn kind(&self) -> ActionKind {
        match self {
            Action::RegisterParticipant { .. } => ActionKind::RegisterParticipant,
            Action::SetCreditLimit { .. } => ActionKind::SetCreditLimit,
            Action::SetParticipantActive { active: false, .. } => ActionKind::SuspendParticipant,
            Action::SetParticipantActive { active: true, .. } => ActionKind::ReinstateParticipant,
            Action::DefineProduct { .. } => ActionKind::DefineProduct,
            Action::DefineInstrument { .. } => ActionKind::DefineInstrument,
            Action::ConsignLot(_) => ActionKind::ConsignLot,
            Action::AssignLot { .. } => ActionKind::AssignLot,
            Action::ConfigureClock { .. } => ActionKind::ConfigureClock,
            Action::StartClock { .. } => ActionKind::StartClock,
            Action::HaltClock { .. } => ActionKind::HaltClock,
            Action::WithdrawLot { .. } => ActionKind::WithdrawLot,
            Action::VoidAward { .. } => ActionKind::VoidAward,
            Action::Bid { .. } => ActionKind::Bid,
            Action::StandingBid { .. } => ActionKind::StandingBid,
            Action::CancelStandingBid { .. } => ActionKind::CancelStandingBid,
            Action::SetBookState { .. } => ActionKind::SetBookState,
            Action::NewOrder(_) => ActionKind::NewOrder,
            Action::CancelOrder { .. } => ActionKind::CancelOrder,
            Action::AmendOrder { .. } => ActionKind::AmendOrder,
            Action::CancelAll { .. } => ActionKind::CancelAll,
            Action::CancelOnDisconnect => ActionKind::CancelOnDisconnect,
            Action::EndOfDay => ActionKind::EndOfDay,
            Action::Tick => ActionKind::Tick,
            Action::HaltAllClocks => ActionKind::HaltAllClocks,
            Action::SetLimits(_) => ActionKind::SetLimits,
            Action::CancelOrders { .. } => ActionKind::CancelOrders,
            Action::SetFees(_) => ActionKind::SetFees,
            Action::SetClockPlan { .. } => ActionKind::SetClockPlan,
            Action::DrawOrder { .. } => ActionKind::DrawOrder,
            Action::PlanLots { .. } => ActionKind::PlanLots,
            Action::OfferPresale { .. } => ActionKind::OfferPresale,
            Action::BuyPresale { .. } => ActionKind::BuyPresale,
            Action::WithdrawPresale { .. } => ActionKind::WithdrawPresale,
            Action::SetColdChain { .. } => ActionKind::SetColdChain,
            Action::SetDestination { .. } => ActionKind::SetDestination,
            Action::UpdateDispatch { .. } => ActionKind::UpdateDispatch,
            Action::FileComplaint { .. } => ActionKind::FileComplaint,
            Action::ResolveComplaint { .. } => ActionKind::ResolveComplaint,
        }
    }

    /// The protocol's name for the request, for metrics and logs.
    pub fn name(&self) -> &'static str {
        self.kind().name()
    }
}

/// One journaled input: who, and what.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command {
    pub actor: Actor,
    pub action: Action,
}

impl Command {
    pub fn new(actor: Actor, action: Action) -> Command {
        Command { actor, action }
    }
    pub fn tick() -> Command {
        Command { actor: Actor::System, action: Action::Tick }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_kind_has_one_name_and_is_found_by_it() {
        for kind in ActionKind::ALL {
            assert_eq!(ActionKind::from_name(kind.name()), Some(kind));
        }
        let mut names: Vec<&str> = ActionKind::ALL.iter().map(|k| k.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), ActionKind::ALL.len(), "action names are unique");
        assert_eq!(ActionKind::from_name("no_such_action"), None);
    }

    #[test]
    fn an_action_s_kind_tells_suspend_from_reinstate() {
        let participant = Code::from_static("b1");
        let suspend = Action::SetParticipantActive { participant, active: false };
        let reinstate = Action::SetParticipantActive { participant, active: true };
        assert_eq!((suspend.kind(), suspend.name()), (ActionKind::SuspendParticipant, "suspend_participant"));
        assert_eq!((reinstate.kind(), reinstate.name()), (ActionKind::ReinstateParticipant, "reinstate_participant"));
        assert_eq!(Action::Tick.kind(), ActionKind::Tick);
        assert!(ActionKind::Tick.is_engine_own() && !ActionKind::Bid.is_engine_own());
    }
}
