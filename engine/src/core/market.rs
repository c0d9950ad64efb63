//! `Market`: the whole market state and the one function that changes it, `apply`. Dispatches each
//! action to its rules (here for participants, reference data and the day; `auction.rs` for clocks;
//! `trading.rs` for books) after first advancing the clocks' timers to the command's engine time.

use crate::command::{Action, Actor, ClockSettings, Command};
use crate::core::book::{BookState, OrderBook};
use crate::core::catalogue::Category;
use crate::core::catalogue::{
    Grade, Instrument, Product, DEFAULT_BAND_PCT, DEFAULT_INSTRUMENTS, DEFAULT_PRODUCTS, DEFAULT_TICK, GRADES_MAX,
};
use crate::core::client_ids::ClientIdsToday;
use crate::core::clock::Clock;
use crate::core::complaints::Complaints;
use crate::core::dispatch::{Centi, Dispatch, DEFAULT_COLD_CHAIN};
use crate::core::fees::FeeSchedule;
use crate::core::hash::hash_of;
use crate::core::limits::{check_room, MarketLimits, CREDIT_LIMIT_MAX};
use crate::core::lots::{Lot, LotStatus};
use crate::core::order_meta::OrderStore;
use crate::core::participants::{Participants, Role};
use crate::core::standing_bid::StandingBid;
use crate::event::Event;
use crate::reject::Reject;
use crate::types::{ClockId, Code, Day, EngineTime, Fen, LotId, Pk};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Clearing publishes a cell's `stats` and an index's intraday value at most once per this much
/// engine time (protocol section 10); the core wakes this long after a sale so that the held-back
/// publications ride on a journaled `Tick`.
pub const MARKET_DATA_INTERVAL_US: u64 = 1_000_000;

/// What a new market starts with. Kept in the market (and so in every snapshot).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarketConfig {
    pub day: Day,
    pub clocks: u16,
    pub fees: FeeSchedule,
    pub clock_defaults: ClockSettings,
    /// The limits a new market starts with; `set_limits` changes the market's own copy.
    pub limits: MarketLimits,
}

impl MarketConfig {
    pub fn new(day: Day) -> MarketConfig {
        MarketConfig {
            day,
            clocks: 4,
            fees: FeeSchedule::default(),
            clock_defaults: ClockSettings::default(),
            limits: MarketLimits::default(),
        }
    }
}

/// An instrument and its live book.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Listing {
    pub instrument: Instrument,
    pub book: OrderBook,
    /// Today's book trades, folded into their product's best-grade cell at `end_of_day`.
    pub day_volume: CellVolume,
}

/// The money and units traded in one cell (product and grade) over a day.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CellVolume {
    pub amount: Fen,
    pub units: u64,
}

impl CellVolume {
    /// The volume-weighted average price per unit, half-even to the fen.
    pub fn vwap(&self) -> Option<Fen> {
        (self.units > 0)
            .then(|| Fen(crate::types::div_round_half_even(self.amount.0 as i128, self.units as i128) as i64))
    }
}

/// A consigned lot as `plan_lots` needs it (see `Market::waiting`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Waiting {
    pub grower: Pk,
    /// The product's `number`, and the grade's place on its scale (0: the best).
    pub product: u16,
    pub grade: u8,
    pub min_price: Fen,
    /// `units_per_container × containers`: a start price times this must fit.
    pub units: u64,
}

/// The day's grower order (`draw_order`, protocol section 11).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Draw {
    pub day: Day,
    pub seed: u64,
    /// The growers with lots that day, in drawn order.
    pub growers: Vec<Pk>,
}

/// The day's market-wide totals, reported by `day_settled`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayTotals {
    pub trades: u64,
    pub turnover: Fen,
    pub fees: Fen,
}

/// The result of applying one command: the command's own verdict, and where its events start
/// (the events before are timers that fell due on the way to the command's time).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Applied {
    pub result: Result<(), Reject>,
    pub first_command_event: usize,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Market {
    pub(crate) config: MarketConfig,
    pub(crate) day: Day,
    /// The engine time of the last command applied; time never runs backwards inside the core.
    pub(crate) now: EngineTime,
    pub(crate) participants: Participants,
    pub(crate) products: BTreeMap<Code, Product>,
    pub(crate) listings: BTreeMap<Code, Listing>,
    pub(crate) lots: BTreeMap<LotId, Lot>,
    pub(crate) next_lot: u64,
    pub(crate) clocks: Vec<Clock>,
    pub(crate) standing_bids: BTreeMap<LotId, Vec<StandingBid>>,
    pub(crate) next_standing_seq: u64,
    /// What the live book orders' payloads in the books cannot hold (see `order_meta.rs`).
    pub(crate) orders: OrderStore,
    /// Client order ids used today, per participant (unique per participant per day).
    pub(crate) client_ids_today: ClientIdsToday,
    pub(crate) next_order: u64,
    pub(crate) next_trade: u64,
    pub(crate) totals: DayTotals,
    /// When the public market data (clearing's `stats` and intraday `index`) of sales not yet
    /// published fall due: one second of engine time after the latest sale. The core keeps it
    /// only so that the sequencer journals a `Tick` then: clearing publishes by the engine time of
    /// the outputs it sees, so the feed's events, and their numbers, follow from the journal alone.
    pub(crate) market_data_due: Option<EngineTime>,
    /// The limits in force (protocol section 4, `set_limits`).
    pub(crate) limits: MarketLimits,
    /// The fees in force today: the genesis fees until a `set_fees` takes effect.
    pub(crate) fees: FeeSchedule,
    /// Fees set today for the next trading day (`set_fees`); `end_of_day` puts them in force.
    pub(crate) next_fees: Option<FeeSchedule>,
    /// Each cell's VWAP on the most recent settled day it traded: `plan_lots` starts from it.
    pub(crate) last_vwap: BTreeMap<(Code, Grade), Fen>,
    /// Today's grower order, once drawn.
    pub(crate) draw: Option<Draw>,
    /// The lots still `consigned`, with what `plan_lots` reads of them: a tenth of a lot's
    /// bytes, so planning a big hall's day reads a megabyte, not the lots' ten.
    pub(crate) waiting: BTreeMap<LotId, Waiting>,
    /// A `plan_lots` still placing lots, slice by slice (see `planning.rs`).
    pub(crate) planning: Option<crate::core::planning::PlanJob>,
    /// Each category's cold-chain maximum (`set_cold_chain`, protocol section 12).
    pub(crate) cold_chain: BTreeMap<Category, Centi>,
    /// The lines of today's and the previous trading day's purchases.
    pub(crate) dispatch: Dispatch,
    /// Complaints and the growers' quality index.
    pub(crate) complaints: Complaints,
    /// Set by whatever changes a supply line during an apply, so that only then are the clocks'
    /// first six lots compared with what was published; not state (false between applies).
    #[serde(skip)]
    pub(crate) lines_changed: bool,
    /// Scratch space for the books' reports; not state.
    #[serde(skip)]
    pub(crate) book_scratch: Vec<crate::core::book::BookEvent>,
    /// Set for a replay whose reader ignores the events (see `set_quiet`); not state.
    #[serde(skip)]
    pub(crate) quiet: bool,
    /// A quiet apply made a book trade whose `Traded` it did not build: what `apply` would
    /// otherwise have seen in the events (see `market_data_due`); false between applies.
    #[serde(skip)]
    pub(crate) quiet_sale: bool,
    /// Scratch space for settling them; not state.
    #[serde(skip)]
    pub(crate) settling: crate::core::trading::Settling,
}

impl Market {
    pub fn new(config: MarketConfig) -> Market {
        let mut market = Market {
            day: config.day,
            now: EngineTime(0),
            participants: Participants::default(),
            products: BTreeMap::new(),
            listings: BTreeMap::new(),
            lots: BTreeMap::new(),
            next_lot: 1,
            clocks: (1..=config.clocks).map(|n| Clock::new(ClockId(n), config.clock_defaults)).collect(),
            standing_bids: BTreeMap::new(),
            next_standing_seq: 1,
            orders: OrderStore::default(),
            client_ids_today: ClientIdsToday::default(),
            next_order: 1,
            next_trade: 1,
            totals: DayTotals::default(),
            market_data_due: None,
            limits: config.limits,
            fees: config.fees,
            next_fees: None,
            last_vwap: BTreeMap::new(),
            draw: None,
            waiting: BTreeMap::new(),
            planning: None,
            cold_chain: DEFAULT_COLD_CHAIN.into_iter().collect(),
            dispatch: Dispatch::new(config.day),
            complaints: Complaints::new(),
            lines_changed: false,
            book_scratch: Vec::new(),
            quiet: false,
            quiet_sale: false,
            settling: Default::default(),
            config,
        };
        for (code, name, category, unit, grades) in DEFAULT_PRODUCTS {
            let code = Code::from_static(code);
            let grades = grades.iter().map(|g| Grade::from_static(g)).collect();
            let number = market.products.len() as u16;
            market.products.insert(code, Product { code, name: name.to_string(), category, unit, grades, number });
        }
        for (symbol, product) in DEFAULT_INSTRUMENTS {
            let instrument = Instrument {
                symbol: Code::from_static(symbol),
                product: Code::from_static(product),
                tick_size: DEFAULT_TICK,
                price_band_pct: DEFAULT_BAND_PCT,
            };
            market.list(instrument);
        }
        market
    }

    fn list(&mut self, instrument: Instrument) {
        let book = OrderBook::new(instrument.tick_size, instrument.price_band_pct);
        self.listings.insert(instrument.symbol, Listing { instrument, book, day_volume: CellVolume::default() });
    }

    /// Applies one command at engine time `now`: first the timers that fell due up to `now`, then
    /// the command itself. A rejected command changes nothing (the timers before it still ran).
    pub fn apply(&mut self, command: &Command, now: EngineTime, out: &mut Vec<Event>) -> Applied {
        let now = now.max(self.now);
        self.now = now;
        if self.market_data_due.is_some_and(|due| due <= now) {
            self.market_data_due = None;
        }
        let first_event = out.len();
        self.advance_clocks(now, out);
        self.continue_planning(out);
        let first_command_event = out.len();
        let result = self.execute(command, now, out);
        if result.is_err() {
            assert_eq!(out.len(), first_command_event, "a rejected {} emitted events", command.action.name());
        }
        self.publish_supply_lines(out);
        // A second after the latest sale: clearing holds each cell back for a second after its own
        // last publication, which is never later than that.
        let sold_quietly = std::mem::take(&mut self.quiet_sale);
        if sold_quietly || out[first_event..].iter().any(Event::moves_market_data) {
            self.market_data_due = Some(EngineTime(now.0.saturating_add(MARKET_DATA_INTERVAL_US)));
        }
        Applied { result, first_command_event }
    }

    /// Quiet: `apply` no longer builds the books' per-order reports (`OrderAccepted`, `Fill`,
    /// `Traded`, `OrderDone`, `BookLevel`), the bulk of a busy book's events and of replaying it;
    /// every other event still comes. For a replay whose reader ignores the events (`huashi
    /// replay`, a market rebuilt only for its state): what the market decides, and so its state
    /// and `state_hash()`, is exactly what it is loud (the determinism tests compare the two).
    pub fn set_quiet(&mut self, quiet: bool) {
        self.quiet = quiet;
    }

    fn execute(&mut self, command: &Command, now: EngineTime, out: &mut Vec<Event>) -> Result<(), Reject> {
        let actor = command.actor;
        match &command.action {
            Action::RegisterParticipant { id, name, roles, credit_limit, token_hash, firm, daily_limit } => {
                self.participants.authorise(actor, Role::Operator)?;
                check_limit(*credit_limit)?;
                crate::text::check_name("name", name)?;
                let seat = self.seat_terms(*id, *roles, *credit_limit, *firm, *daily_limit)?;
                check_room("participants_max", self.limits.participants_max, self.participants.len() as u64, 1)?;
                let pk = self.participants.register(*id, name.clone(), *roles, *credit_limit, *token_hash, seat)?;
                let p = self.participants.get(pk);
                out.push(Event::ParticipantRegistered {
                    pk,
                    id: *id,
                    name: name.clone(),
                    roles: *roles,
                    credit_limit: if p.firm.is_some() { Fen::ZERO } else { *credit_limit },
                    token_hash: *token_hash,
                    firm: p.firm,
                    daily_limit: p.daily_limit,
                });
                Ok(())
            }
            Action::SetCreditLimit { participant, limit, daily_limit } => {
                self.participants.authorise(actor, Role::Operator)?;
                let pk = self.participants.lookup(participant)?;
                let seat = self.participants.get(pk).firm.is_some();
                match (seat, limit, daily_limit) {
                    (_, None, None) => return Err(Reject::bad_request("missing field `limit`")),
                    (true, Some(_), _) => {
                        return Err(Reject::bad_request(format!(
                            "{participant} is a seat: it has no credit limit of its own, set its daily_limit"
                        )))
                    }
                    (false, _, Some(_)) => {
                        return Err(Reject::bad_request(format!(
                            "{participant} is not a seat: only seats have a daily_limit"
                        )))
                    }
                    _ => {}
                }
                if let Some(limit) = limit {
                    check_limit(*limit)?;
                    self.participants.account_mut(pk).credit_limit = *limit;
                }
                if let Some(daily) = daily_limit {
                    check_limit(*daily).map_err(|_| {
                        Reject::bad_request("daily_limit must be between 0 and the credit limit's maximum")
                    })?;
                    self.participants.get_mut(pk).daily_limit = Some(*daily);
                    self.participants.account_mut(pk).credit_limit = *daily;
                }
                let p = self.participants.get(pk);
                let limit = if seat { Fen::ZERO } else { p.account.credit_limit };
                out.push(Event::CreditLimitSet { pk, id: *participant, limit, daily_limit: p.daily_limit });
                Ok(())
            }
            Action::SetParticipantActive { participant, active } => {
                self.participants.authorise(actor, Role::Operator)?;
                let pk = self.participants.lookup(participant)?;
                self.participants.get_mut(pk).active = *active;
                out.push(Event::ParticipantStatus { pk, id: *participant, active: *active });
                if !*active {
                    // Suspension means stop (protocol section 4): what the participant has
                    // resting would otherwise still trade, and it could not cancel it itself.
                    self.cancel_owner_orders(pk, None, now, out)?;
                    self.cancel_standing_bids_of(pk, out);
                    self.withdraw_presales_of(pk, out);
                }
                Ok(())
            }
            Action::DefineProduct { code, name, category, unit, grades } => {
                self.participants.authorise(actor, Role::Operator)?;
                crate::text::check_name("name", name)?;
                if self.products.contains_key(code) {
                    return Err(Reject::duplicate(format!("product {code} is already defined")));
                }
                let grades = if grades.is_empty() { Grade::DEFAULT_SCALE.to_vec() } else { grades.clone() };
                if grades.len() > GRADES_MAX {
                    return Err(Reject::bad_request(format!("grades may list at most {GRADES_MAX} grades")));
                }
                if let Some((i, g)) = grades.iter().enumerate().find(|(i, g)| grades[..*i].contains(g)) {
                    return Err(Reject::bad_request(format!("grades lists {g} twice (at {i})")));
                }
                check_room("products_max", self.limits.products_max, self.products.len() as u64, 1)?;
                let product = Product {
                    code: *code,
                    name: name.clone(),
                    category: *category,
                    unit: *unit,
                    grades: grades.clone(),
                    number: self.products.len() as u16,
                };
                self.products.insert(*code, product);
                out.push(Event::ProductDefined {
                    code: *code,
                    name: name.clone(),
                    category: *category,
                    unit: *unit,
                    grades,
                });
                Ok(())
            }
            Action::DefineInstrument { symbol, product, tick_size, price_band_pct } => {
                self.participants.authorise(actor, Role::Operator)?;
                if self.listings.contains_key(symbol) {
                    return Err(Reject::duplicate(format!("instrument {symbol} is already defined")));
                }
                if !self.products.contains_key(product) {
                    return Err(Reject::not_found(format!("no product {product}")));
                }
                if tick_size.0 <= 0 {
                    return Err(Reject::price_invalid("tick_size must be positive"));
                }
                if *price_band_pct > 1_000 {
                    return Err(Reject::bad_request("price_band_pct must be at most 1000"));
                }
                check_room("instruments_max", self.limits.instruments_max, self.listings.len() as u64, 1)?;
                self.list(Instrument {
                    symbol: *symbol,
                    product: *product,
                    tick_size: *tick_size,
                    price_band_pct: *price_band_pct,
                });
                out.push(Event::InstrumentDefined { symbol: *symbol });
                Ok(())
            }
            Action::ConsignLot(consignment) => self.consign_lot(actor, consignment, out),
            Action::AssignLot { lot, clock, start_price } => self.assign_lot(actor, *lot, *clock, *start_price, out),
            Action::ConfigureClock { clock, patch } => self.configure_clock(actor, *clock, patch, out),
            Action::StartClock { clock } => self.start_clock(actor, *clock, now, out),
            Action::HaltClock { clock } => self.halt_clock(actor, *clock, out),
            Action::WithdrawLot { lot } => self.withdraw_lot(actor, *lot, out),
            Action::VoidAward { clock, lot, round, buyer } => self.void_award(actor, *clock, *lot, *round, *buyer, out),
            Action::Bid { clock, lot, round, containers } => {
                self.bid(actor, *clock, *lot, *round, *containers, now, out)
            }
            Action::StandingBid { lot, max_price, containers } => {
                self.place_standing_bid(actor, *lot, *max_price, *containers, now, out)
            }
            Action::CancelStandingBid { lot } => self.cancel_standing_bid(actor, *lot, out),
            Action::SetBookState { symbol, state } => self.set_book_state(actor, *symbol, *state, now, out),
            Action::NewOrder(entry) => self.new_order(actor, entry, now, out),
            Action::CancelOrder { client_order_id } => self.cancel_order(actor, *client_order_id, now, out),
            Action::AmendOrder { client_order_id, price, quantity } => {
                self.amend_order(actor, *client_order_id, *price, *quantity, now, out)
            }
            Action::CancelAll { symbol } => {
                // A suspended participant's requests are `forbidden` (protocol section 2), as
                // `cancel_order` already is; only the engine's own cancel-on-disconnect below
                // still clears a suspended participant's orders.
                self.participants.active_participant(actor)?;
                self.cancel_all(actor, *symbol, now, out)
            }
            Action::CancelOnDisconnect => self.cancel_all(actor, None, now, out),
            Action::EndOfDay => self.end_of_day(actor, now, out),
            Action::Tick => Ok(()),
            Action::HaltAllClocks => {
                if actor != Actor::System {
                    return Err(Reject::forbidden("only the engine halts every clock"));
                }
                self.halt_all_clocks(out);
                Ok(())
            }
            Action::SetLimits(patch) => {
                self.participants.authorise(actor, Role::Operator)?;
                self.limits = self.limits.patched(patch)?;
                out.push(Event::LimitsSet(self.limits));
                Ok(())
            }
            Action::SetFees(fees) => {
                self.participants.authorise(actor, Role::Operator)?;
                fees.check().map_err(Reject::bad_request)?;
                self.next_fees = Some(*fees);
                out.push(Event::FeesSet { fees: *fees, effective_day: self.day.next() });
                Ok(())
            }
            Action::SetClockPlan { clock, plan } => self.set_clock_plan(actor, *clock, plan, out),
            Action::DrawOrder { seed } => self.draw_order(actor, *seed, out),
            Action::PlanLots { start_markup_bp } => self.plan_lots(actor, *start_markup_bp, out),
            Action::OfferPresale { lot, price, containers } => {
                self.offer_presale(actor, *lot, *price, *containers, out)
            }
            Action::BuyPresale { lot, containers } => self.buy_presale(actor, *lot, *containers, now, out),
            Action::WithdrawPresale { lot } => self.withdraw_presale(actor, *lot, out),
            Action::SetColdChain { category, max_temperature } => {
                self.set_cold_chain(actor, *category, *max_temperature, out)
            }
            Action::SetDestination { day, destination } => self.set_destination(actor, *day, destination, out),
            Action::UpdateDispatch { reference, status, temperature, location } => {
                self.update_dispatch(actor, *reference, *status, *temperature, location.as_deref(), now, out)
            }
            Action::FileComplaint { reference, reason, containers, note } => {
                self.file_complaint(actor, *reference, *reason, *containers, note, now, out)
            }
            Action::ResolveComplaint { complaint, decision, credit } => {
                self.resolve_complaint(actor, *complaint, *decision, *credit, out)
            }
            Action::CancelOrders { participant, symbol } => {
                self.participants.authorise(actor, Role::Operator)?;
                let pk = self.participants.lookup(participant)?;
                let count = self.cancel_owner_orders(pk, *symbol, now, out)?;
                out.push(Event::OrdersCancelled { owner: pk, participant: *participant, count });
                Ok(())
            }
        }
    }

    /// The limits in force (`get_limits`).
    pub fn limits(&self) -> &MarketLimits {
        &self.limits
    }

    /// Cancels every standing bid of `buyer`, lot by lot, telling it each time.
    fn cancel_standing_bids_of(&mut self, buyer: Pk, out: &mut Vec<Event>) {
        let lots: Vec<LotId> = self
            .standing_bids
            .iter()
            .filter(|(_, bids)| bids.iter().any(|b| b.buyer == buyer))
            .map(|(lot, _)| *lot)
            .collect();
        for lot in lots {
            self.remove_standing_bid(lot, buyer);
            out.push(Event::StandingBidCancelled { buyer, lot });
        }
    }

    /// `end_of_day`: needs every clock idle and every book closed; expires `day` orders, ends the
    /// day's unfinished lots, settles exposure and starts the next day.
    fn end_of_day(&mut self, actor: Actor, now: EngineTime, out: &mut Vec<Event>) -> Result<(), Reject> {
        self.participants.authorise(actor, Role::Operator)?;
        if self.planning.is_some() {
            return Err(Reject::invalid_state("plan_lots is still placing lots"));
        }
        if let Some(clock) = self.clocks.iter().find(|c| c.phase != crate::core::clock::ClockPhase::Idle) {
            return Err(Reject::invalid_state(format!("clock {} is not idle", clock.id.0)));
        }
        if let Some((symbol, _)) = self.listings.iter().find(|(_, l)| l.book.state() != BookState::Closed) {
            return Err(Reject::invalid_state(format!("book {symbol} is not closed")));
        }
        self.expire_day_orders(now, out);
        for clock in &mut self.clocks {
            clock.supply_line.clear();
            clock.next_position = 1;
        }
        self.lines_changed = true;
        self.close_cells();
        self.draw = None;
        self.waiting.clear();
        for lot in self.lots.values_mut() {
            if !lot.status.is_finished() {
                lot.clock = None;
                lot.finish();
            }
        }
        self.standing_bids.clear();
        for participant in self.participants.iter_mut() {
            participant.account.settle_day();
            participant.lots_today = 0;
            participant.orders_today = 0;
        }
        let day = self.day;
        self.close_quality_day(self.dispatch.previous.as_ref().map(|d| d.day));
        self.day = day.next();
        self.dispatch.roll(self.day);
        if let Some(next) = self.next_fees.take() {
            self.fees = next;
            // Resting buy orders hold credit for the book fee at the old rate: hold it at the new.
            self.rehold_at_new_fees(now, out);
        }
        // The settled day's lots leave memory: clearing has them in its archive.
        self.lots.clear();
        self.client_ids_today.clear();
        let totals = std::mem::take(&mut self.totals);
        // The emptied supply lines are news before the day's close, which stays the last word.
        self.publish_supply_lines(out);
        out.push(Event::DaySettled {
            day,
            next_day: self.day,
            trades: totals.trades,
            turnover: totals.turnover,
            fees: totals.fees,
        });
        Ok(())
    }

    /// The hash of the whole market state: equal hashes, equal markets.
    pub fn state_hash(&self) -> u64 {
        hash_of(self)
    }

    pub fn day(&self) -> Day {
        self.day
    }
    pub fn now(&self) -> EngineTime {
        self.now
    }
    pub fn config(&self) -> &MarketConfig {
        &self.config
    }
    /// The fees in force today.
    pub fn fees(&self) -> FeeSchedule {
        self.fees
    }
    /// The fees `set_fees` set for the next trading day, if any.
    pub fn next_fees(&self) -> Option<FeeSchedule> {
        self.next_fees
    }
    pub fn participants(&self) -> &Participants {
        &self.participants
    }
    pub fn products(&self) -> &BTreeMap<Code, Product> {
        &self.products
    }
    pub fn listings(&self) -> &BTreeMap<Code, Listing> {
        &self.listings
    }
    pub fn lots(&self) -> &BTreeMap<LotId, Lot> {
        &self.lots
    }
    pub fn lot(&self, id: LotId) -> Option<&Lot> {
        self.lots.get(&id)
    }
    pub fn clocks(&self) -> &[Clock] {
        &self.clocks
    }
    pub fn totals(&self) -> DayTotals {
        self.totals
    }

    /// `get_lots`: a grower sees its own lots; buyers and operators see all of the day.
    pub fn visible_lots(&self, actor: Actor, status: Option<LotStatus>) -> Result<Vec<&Lot>, Reject> {
        let own = match actor {
            Actor::Operator | Actor::System => None,
            Actor::Participant(pk) => {
                let p = self.participants.get(pk);
                if p.roles.buyer || p.roles.operator {
                    None
                } else {
                    Some(pk)
                }
            }
        };
        Ok(self
            .lots
            .values()
            .filter(|lot| own.is_none_or(|pk| lot.grower == pk))
            .filter(|lot| status.is_none_or(|s| lot.status == s))
            .collect())
    }

    /// Checks the invariants that tie the parts together; panics if our own code broke one.
    pub fn check_invariants(&self) {
        for lot in self.lots.values() {
            lot.check();
            assert_eq!(
                self.waiting.contains_key(&lot.id),
                lot.status == LotStatus::Consigned,
                "lot {} is {} but {} the planning index",
                lot.id.0,
                lot.status.as_str(),
                if self.waiting.contains_key(&lot.id) { "in" } else { "not in" }
            );
        }
        assert!(self.waiting.keys().all(|id| self.lots.contains_key(id)), "the planning index has lots of no day");
        let all_orders = self.live_orders(None);
        for participant in self.participants.iter() {
            // A firm's account holds for its seats' orders too.
            let participants = &self.participants;
            let orders = all_orders
                .iter()
                .map(|(_, o)| o)
                .filter(|o| o.owner == participant.pk || participants.get(o.owner).firm == Some(participant.pk));
            let (principal, fee) = orders.fold((0, 0), |(p, f), o| (p + o.reserved.principal.0, f + o.reserved.fee.0));
            assert_eq!(
                participant.account.reserved.0, principal,
                "participant {} reservations drifted",
                participant.id
            );
            assert_eq!(participant.account.fee_hold.0, fee, "participant {} fee headroom drifted", participant.id);
            let open = all_orders.iter().filter(|(_, o)| o.owner == participant.pk).count();
            assert_eq!(
                participant.orders_open as usize, open,
                "participant {} open order count drifted",
                participant.id
            );
        }
        // Dispatch: lines of the kept days only, unique refs, nothing complained about beyond
        // what was bought.
        for day in self.dispatch.previous.iter().chain(std::iter::once(&self.dispatch.today)) {
            let mut refs = BTreeSet::new();
            for line in &day.lines {
                assert!(refs.insert(line.reference), "dispatch line {} appears twice", line.reference);
                let complained = self.complaints.complained.get(&line.reference).copied().unwrap_or(0);
                assert!(complained <= line.quantity, "line {} complained about beyond its quantity", line.reference);
            }
        }
        for complaint in self.complaints.open.values() {
            assert!(complaint.decision.is_none(), "open complaint {} has a decision", complaint.id);
        }
    }
}

impl Market {
    /// The checks on a participant registered as a firm's seat (protocol section 4): the firm is
    /// a registered buyer and no seat itself, the seat is a buyer only, with no credit limit of
    /// its own.
    fn seat_terms(
        &self,
        id: Code,
        roles: crate::command::Roles,
        credit_limit: Fen,
        firm: Option<Code>,
        daily_limit: Option<Fen>,
    ) -> Result<Option<(Pk, Option<Fen>)>, Reject> {
        let Some(firm_id) = firm else {
            if daily_limit.is_some() {
                return Err(Reject::bad_request("daily_limit is for a firm's seat: give `firm` too"));
            }
            return Ok(None);
        };
        let firm = self.participants.lookup(&firm_id)?;
        let f = self.participants.get(firm);
        if !f.roles.buyer || f.firm.is_some() {
            return Err(Reject::bad_request(format!(
                "firm {firm_id} is not a buyer firm (a buyer that is not a seat)"
            )));
        }
        if !roles.buyer || roles.grower || roles.operator {
            return Err(Reject::bad_request(format!("seat {id} of firm {firm_id} must have the buyer role only")));
        }
        if credit_limit.0 != 0 {
            return Err(Reject::bad_request(format!(
                "seat {id} buys on firm {firm_id}'s credit: give it a daily_limit, not a credit_limit"
            )));
        }
        if let Some(limit) = daily_limit {
            check_limit(limit)
                .map_err(|_| Reject::bad_request("daily_limit must be between 0 and the credit limit's maximum"))?;
        }
        Ok(Some((firm, daily_limit)))
    }

    /// `end_of_day`: the day's cells (book trades under their product's best grade) become each
    /// cell's last VWAP, which `plan_lots` starts the next days' prices from.
    fn close_cells(&mut self) {
        let mut cells: BTreeMap<(Code, Grade), CellVolume> = BTreeMap::new();
        let mut add = |cell: (Code, Grade), volume: CellVolume| {
            let sum = cells.entry(cell).or_default();
            sum.amount.0 += volume.amount.0;
            sum.units += volume.units;
        };
        for lot in self.lots.values().filter(|l| l.sales.units > 0) {
            add((lot.product, lot.grade), lot.sales);
        }
        for listing in self.listings.values_mut() {
            let volume = std::mem::take(&mut listing.day_volume);
            if volume.units > 0 {
                let best = self.products[&listing.instrument.product].best_grade();
                add((listing.instrument.product, best), volume);
            }
        }
        for (cell, volume) in cells {
            if let Some(vwap) = volume.vwap() {
                self.last_vwap.insert(cell, vwap);
            }
        }
    }

    /// The VWAP a cell had on the most recent settled day it traded.
    pub fn last_vwap(&self, product: Code, grade: Grade) -> Option<Fen> {
        self.last_vwap.get(&(product, grade)).copied()
    }

    /// Today's grower order, once drawn.
    pub fn draw(&self) -> Option<&Draw> {
        self.draw.as_ref()
    }
}

fn check_limit(limit: Fen) -> Result<(), Reject> {
    if limit.0 < 0 {
        return Err(Reject::bad_request("credit_limit must not be negative"));
    }
    // Bounded so that no sum of purchases, sales or fees in a day can overflow (limits.rs).
    if limit.0 > CREDIT_LIMIT_MAX {
        return Err(Reject::bad_request(format!("credit_limit must be at most {}", Fen(CREDIT_LIMIT_MAX))));
    }
    Ok(())
}
