//! `Clearing`: the state machine that turns the engine's events into money and market data. It is
//! pure and deterministic like the core — no I/O, no clock, no threads: engine time comes in with
//! each output — so the same outputs always give the same state (`state_hash`).
//!
//! A day runs like this: awards, presale purchases and book trades become ledger entries, statement
//! lines, cell statistics and index moves; a voided award is reversed; `DaySettled` closes the day
//! (statements, conservation checks, index closes) and parks it as a `SettledDay` until the caller
//! moves it to the archive with `take_settled_day`, so memory holds one running day whatever the
//! history.
//!
//! Firms and seats (protocol §4, §8): the engine names the participant who traded, possibly a
//! firm's seat; clearing books a seat's purchase to its firm (the firm's money, statement and
//! ledger account), the line naming the seat. Money is conserved over firms; a seat only ever
//! gets a view of its firm's statement.
//!
//! After the sale (protocol §12): an accepted complaint's credit is booked as `correction` lines on
//! the statements of the day it is decided (`corrections.rs`), and every dispatch line and lot
//! trace is followed in `goods.rs` (today's and the previous trading day's in memory, older days
//! in the archive).

use crate::corrections::Correction;
use crate::goods::{Goods, GoodsDay, LotTraceView, Named};
use crate::index::{CellVolume, IndexBook, IndexClose, IndexCode, IndexSnapshot, IndexValue};
use crate::ledger::{entries_balance, Account, EntryKind, Ledger, LedgerEntry, Posting};
use crate::money::{from_fen, to_fen, DecimalFees};
use crate::publish::Publisher;
use crate::statement::{Statement, StatementLine, StatementLookup};
use crate::stats::{clearance, CellDay, CellKey, CellStats, LotRecord, MarketStats};
use crate::trades::{Deal, TradeKind, TradeRecord};
use huashi_engine::core::catalogue::{Category, Grade, DEFAULT_PRODUCTS};
use huashi_engine::core::complaints::{Complaint, Decision};
use huashi_engine::core::fees::FeeSchedule;
use huashi_engine::core::hash::hash_of;
use huashi_engine::core::lots::Lot;
use huashi_engine::event::{Award, Event, PresaleSale, Trade};
use huashi_engine::types::{Code, Day, EngineTime, Fen, LotId, Pk, Side};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClearingConfig {
    /// Must be the engine's schedule: clearing recomputes every fee and asserts agreement.
    pub fees: FeeSchedule,
}

/// A public market-data update for the feed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MarketData {
    Stats(CellStats),
    Index(IndexValue),
}

/// A settled day's market-wide figures.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaySummary {
    pub day: Day,
    pub next_day: Day,
    /// Sales that stand (voided awards left out).
    pub trades: u64,
    pub turnover: Decimal,
    pub buyer_fees: Decimal,
    pub commission: Decimal,
    /// The market's income: buyer fees plus commission (`day_settled.fees`).
    pub fees: Decimal,
    /// Participants with a statement (firms, never their seats).
    pub participants: u32,
    /// The fees in force that day.
    pub fee_schedule: FeeSchedule,
}

/// Everything a settled day leaves behind, ready for `Archive::write_day`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettledDay {
    pub summary: DaySummary,
    /// One per participant with activity, in alphabetical order of participant id; a seat's
    /// trades are in its firm's.
    pub statements: Vec<Statement>,
    /// (seat, its firm) for every seat that traded that day, in order of seat id: where a seat's
    /// view of the day is.
    pub seats: Vec<(Code, Code)>,
    /// The sales that stand, in the order they happened.
    pub trades: Vec<TradeRecord>,
    /// Every ledger entry of the day, reversals of voided awards included.
    pub ledger: Vec<LedgerEntry>,
    pub lots: Vec<LotRecord>,
    pub market: MarketStats,
    pub index: IndexClose,
}

impl SettledDay {
    pub fn day(&self) -> Day {
        self.summary.day
    }
}

/// The running day.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct DayBook {
    day: Day,
    /// The fees in force that day.
    fees: FeeSchedule,
    /// Every sale of the day in order, voided awards marked.
    deals: Vec<Deal>,
    /// Per participant: the sales it is party to (deal number, its side); a seat's purchases are
    /// its firm's.
    parties: BTreeMap<Code, Vec<(u32, Side)>>,
    /// Per lot: its awards (deal numbers), to find the one a void undoes.
    lot_deals: BTreeMap<LotId, Vec<u32>>,
    ledger: Ledger,
    /// Every cell that traded today (a cell stays when all its sales were voided).
    cells: BTreeMap<CellKey, CellBook>,
    lots: BTreeMap<LotId, LotRecord>,
    /// Engine time of the latest sale: the `ts` of an intraday index value.
    last_trade_ts: EngineTime,
    /// Accepted credits decided today, in order.
    corrections: Vec<Correction>,
}

impl DayBook {
    fn new(day: Day, fees: FeeSchedule) -> DayBook {
        DayBook {
            day,
            fees,
            deals: Vec::new(),
            parties: BTreeMap::new(),
            lot_deals: BTreeMap::new(),
            ledger: Ledger::default(),
            cells: BTreeMap::new(),
            lots: BTreeMap::new(),
            last_trade_ts: EngineTime(0),
            corrections: Vec::new(),
        }
    }

    /// The participant's running statement; no lines when it has not traded (or all were voided)
    /// and has no correction. Its sales first, then its corrections.
    fn statement(&self, participant: &Code) -> Statement {
        let mut lines: Vec<StatementLine> = self
            .parties
            .get(participant)
            .into_iter()
            .flatten()
            .map(|&(no, side)| (&self.deals[no as usize], side))
            .filter(|(deal, _)| !deal.voided)
            .map(|(deal, side)| StatementLine::of(&deal.record, side))
            .collect();
        for correction in &self.corrections {
            if correction.payer == *participant {
                lines.push(correction.line(Side::Buy));
            }
            if correction.seller == *participant {
                lines.push(correction.line(Side::Sell));
            }
        }
        Statement::from_lines(*participant, self.day, self.fees, lines)
    }

    /// Every participant's statement with at least one line, in alphabetical order of id.
    fn statements(&self) -> Vec<Statement> {
        let mut who: Vec<&Code> = self.parties.keys().collect();
        who.extend(self.corrections.iter().flat_map(|c| [&c.payer, &c.seller]));
        who.sort();
        who.dedup();
        let mut statements: Vec<Statement> =
            who.into_iter().map(|p| self.statement(p)).filter(|s| !s.lines.is_empty()).collect();
        statements.sort_by(|a, b| a.participant.as_str().cmp(b.participant.as_str()));
        statements
    }

    /// (seat, firm) of every seat with a sale that stands, in alphabetical order of seat id.
    fn seats_traded(&self) -> Vec<(Code, Code)> {
        let mut pairs: Vec<(Code, Code)> = self
            .deals
            .iter()
            .filter(|d| !d.voided)
            .filter_map(|d| d.record.seat.map(|seat| (seat, d.record.buyer)))
            .collect();
        pairs.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
        pairs.dedup();
        pairs
    }

    fn lot_mut(&mut self, lot: LotId) -> &mut LotRecord {
        let day = self.day;
        self.lots.get_mut(&lot).unwrap_or_else(|| panic!("lot {} of {day} was never consigned", lot.0))
    }

    /// Takes a voided sale out of its cell without rescanning the day: the totals subtract, high
    /// and low come from the cell's price counts, open and last from the nearest sales that stand.
    /// The sale must already be marked voided.
    fn unbook_from_cell(&mut self, key: CellKey, no: u32) {
        let deals = &self.deals;
        let record = &deals[no as usize].record;
        assert!(deals[no as usize].voided, "unbooking a sale that stands");
        let (price, amount, units) = (to_fen(record.price), to_fen(record.amount), record.units);
        let cell = self.cells.get_mut(&key).expect("a booked cell");
        let count = cell.prices.get_mut(&price).expect("the sale's price was counted");
        *count -= 1;
        if *count == 0 {
            cell.prices.remove(&price);
        }
        let stats = cell.stats.as_mut().expect("a cell with a sale that stood has statistics");
        stats.turnover -= amount.0;
        stats.units -= units;
        stats.trades -= 1;
        if stats.trades == 0 {
            cell.stats = None;
        } else {
            stats.low = *cell.prices.keys().next().expect("a cell with trades has prices");
            stats.high = *cell.prices.keys().next_back().expect("a cell with trades has prices");
            let standing_price = |no: &u32| {
                let deal = &deals[*no as usize];
                (!deal.voided).then(|| to_fen(deal.record.price))
            };
            stats.open = cell.deals.iter().find_map(standing_price).expect("a sale stands");
            stats.last = cell.deals.iter().rev().find_map(standing_price).expect("a sale stands");
        }
        debug_assert_eq!(self.cells[&key].stats, self.rebuilt_cell(key), "cell {key:?} drifted");
    }

    /// A cell's statistics rebuilt from scratch from the sales that stand (the reference for
    /// `unbook_from_cell`).
    fn rebuilt_cell(&self, key: CellKey) -> Option<CellDay> {
        let mut stats: Option<CellDay> = None;
        let numbers = self.cells.get(&key).map_or(&[][..], |c| c.deals.as_slice());
        for deal in numbers.iter().map(|&no| &self.deals[no as usize]).filter(|d| !d.voided) {
            let r = &deal.record;
            let (price, amount) = (to_fen(r.price), to_fen(r.amount));
            match &mut stats {
                Some(c) => c.add(price, r.units, amount),
                None => stats = Some(CellDay::first(price, r.units, amount)),
            }
        }
        stats
    }

    /// The statistics of a cell, if it has sales that stand.
    fn cell_stats(&self, key: &CellKey) -> Option<&CellDay> {
        self.cells.get(key).and_then(|c| c.stats.as_ref())
    }
}

/// A cell's running day: its statistics and what correcting them after a void needs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct CellBook {
    category: Category,
    /// `None` once every sale of the cell was voided.
    stats: Option<CellDay>,
    /// Its sales (deal numbers), to find the new open and last after a void.
    deals: Vec<u32>,
    /// How many standing sales at each price, to find the new high and low after a void.
    prices: BTreeMap<Fen, u32>,
}

fn cell_key(record: &TradeRecord) -> CellKey {
    CellKey { product: record.product, grade: record.grade }
}

/// What clearing needs of a product: where its cells count, and the grade book trades count as.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct ProductScale {
    category: Category,
    /// The best grade of its scale (`Product::best_grade`).
    best_grade: Grade,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Clearing {
    config: ClearingConfig,
    /// The seq of the last output applied.
    last_seq: Option<u64>,
    /// Every product's category and best grade (the default catalogue plus `ProductDefined`).
    products: BTreeMap<Code, ProductScale>,
    /// Buyers that are not seats, by key: the firms a seat may belong to.
    firms: BTreeMap<Pk, Code>,
    /// Every seat's firm, by id (seats are registered for good and never change firm).
    seats: BTreeMap<Code, Code>,
    today: DayBook,
    /// Settled days not yet taken by `take_settled_day`, oldest first.
    settled: VecDeque<SettledDay>,
    index: IndexBook,
    /// Publication bookkeeping; not part of `state_hash` (see `publish.rs`).
    publisher: Publisher,
    /// Fees set today for the next trading day (`fees_set`).
    pending_fees: Option<FeeSchedule>,
    /// The fees in force from each day on where they changed (the first entry: the day clearing
    /// began): which fees applied on which day.
    fee_history: BTreeMap<Day, FeeSchedule>,
    /// Every participant by key: ids for lines and corrections, growers' names for traces.
    names: BTreeMap<Pk, Named>,
    /// Dispatch lines and lot traces of the days in memory (`goods.rs`).
    goods: Goods,
    /// Each open complaint's units (containers × units per container, a book trade's units),
    /// worked out when it is filed, while its purchase's line is still in memory.
    complaint_units: BTreeMap<u64, u64>,
}

impl Clearing {
    /// Clearing for a market whose current trading day is `day`.
    pub fn new(config: ClearingConfig, day: Day) -> Clearing {
        let products = DEFAULT_PRODUCTS
            .iter()
            .map(|&(code, _, category, _, grades)| {
                let best_grade = grades.first().map_or(Grade::A1, |g| Grade::from_static(g));
                (Code::from_static(code), ProductScale { category, best_grade })
            })
            .collect();
        Clearing {
            config,
            last_seq: None,
            products,
            firms: BTreeMap::new(),
            seats: BTreeMap::new(),
            today: DayBook::new(day, config.fees),
            settled: VecDeque::new(),
            index: IndexBook::default(),
            publisher: Publisher::default(),
            pending_fees: None,
            fee_history: BTreeMap::from([(day, config.fees)]),
            names: BTreeMap::new(),
            goods: Goods::new(day),
            complaint_units: BTreeMap::new(),
        }
    }

    /// Consumes one applied command's events in seq order. Returns the public market-data updates
    /// to publish: per-cell stats and intraday index values, each at most once a second of engine
    /// time; on `DaySettled` the day's final stats of every cell and the index closes.
    ///
    /// Panics if `seq` does not increase, or if the events disagree with clearing's own
    /// arithmetic (a fee, the day's totals, conservation of money): both are bugs.
    pub fn apply(&mut self, seq: u64, ts: EngineTime, events: &[Event]) -> Vec<MarketData> {
        if let Some(last) = self.last_seq {
            assert!(seq > last, "output seq {seq} after {last}: outputs must come once each, in order");
        }
        self.last_seq = Some(seq);
        let mut out = Vec::new();
        for event in events {
            match event {
                Event::ProductDefined { code, category, grades, .. } => {
                    // The core never defines an empty scale; the default one's best is A1.
                    let best_grade = grades.first().copied().unwrap_or(Grade::A1);
                    self.products.insert(*code, ProductScale { category: *category, best_grade });
                }
                Event::ParticipantRegistered { pk, id, name, roles, firm, .. } => {
                    self.names.insert(*pk, Named { id: *id, name: name.clone(), firm: *firm });
                    self.on_registered(*pk, *id, roles.buyer, *firm)
                }
                Event::PresaleBought(sale) => {
                    self.on_presale(seq, sale);
                    let buyer = self.buyer_of(sale.buyer, sale.buyer_id);
                    self.goods.presale_bought(sale, buyer);
                }
                Event::LotConsigned { lot } => {
                    self.on_consigned(lot);
                    let grower_name = self.names.get(&lot.grower).map_or_else(String::new, |n| n.name.clone());
                    self.goods.consigned(lot, grower_name);
                }
                Event::Awarded(award) => {
                    self.on_award(seq, award);
                    let buyer = self.buyer_of(award.buyer, award.buyer_id);
                    self.goods.awarded(award, buyer);
                }
                Event::AwardVoided { lot, round, buyer, containers, remaining, amount, fee, commission, .. } => {
                    let void = Void {
                        lot: *lot,
                        round: *round,
                        buyer: *buyer,
                        containers: *containers,
                        remaining: *remaining,
                        amount: *amount,
                        fee: *fee,
                        commission: *commission,
                    };
                    let k = self.on_void(seq, void);
                    self.goods.voided(*lot, *round, k, *containers, *remaining);
                }
                Event::LotUnsold { lot, remaining, .. } => {
                    let record = self.today.lot_mut(*lot);
                    assert_eq!(record.open, *remaining, "lot {} ended unsold with other containers left", lot.0);
                    record.unsold += record.open;
                    record.open = 0;
                    record.check();
                    self.goods.ended(*lot, false);
                }
                Event::LotWithdrawn { lot, .. } => {
                    let record = self.today.lot_mut(*lot);
                    record.withdrawn += record.open;
                    record.open = 0;
                    record.check();
                    self.goods.ended(*lot, true);
                }
                Event::Traded(trade) => {
                    self.on_trade(seq, trade);
                    let buyer = self.buyer_of(trade.buyer, trade.buyer_id);
                    self.goods.traded(trade, buyer);
                }
                Event::FeesSet { fees, effective_day } => {
                    assert_eq!(*effective_day, self.today.day.next(), "fees set for a day other than the next");
                    self.pending_fees = Some(*fees);
                }
                Event::DaySettled { day, next_day, trades, turnover, fees } => {
                    let engine = EngineTotals { trades: *trades, turnover: *turnover, fees: *fees };
                    self.on_day_settled(ts, *day, *next_day, engine, &mut out);
                    self.goods.day_settled(*next_day);
                }
                Event::LotAssigned { lot, clock, position } => self.goods.assigned(*lot, *clock, *position, None),
                Event::LotsPlanned { assigned, .. } => {
                    for p in assigned {
                        self.goods.assigned(p.lot, p.clock, p.position, Some(p.start_price));
                    }
                }
                Event::LotOnClock { clock, lot, next, .. } => {
                    self.goods.on_clock(*clock, lot);
                    next.iter().for_each(|lot| self.goods.copied(lot));
                }
                Event::SupplyLine { next, .. } => next.iter().for_each(|lot| self.goods.copied(lot)),
                Event::ClockState { clock, phase } => self.goods.clock_state(*clock, *phase),
                Event::PresaleOffered { lot, price, containers, .. } => {
                    let offer = huashi_engine::core::lots::PresaleOffer { price: *price, containers: *containers };
                    self.goods.presale_offer(*lot, Some(offer));
                }
                Event::PresaleWithdrawn { lot, .. } | Event::PresaleClosed { lot, .. } => {
                    self.goods.presale_offer(*lot, None)
                }
                Event::DestinationSet { buyer, day, destination } => {
                    self.goods.destination_set(*buyer, *day, destination)
                }
                Event::DispatchUpdated { line, reading, .. } => self.goods.updated(line, *reading),
                Event::ComplaintFiled(complaint) => self.on_complaint_filed(complaint),
                Event::ComplaintResolved(complaint) => self.on_complaint_resolved(seq, ts, complaint),
                _ => {}
            }
        }
        self.publish_due_into(ts, &mut out);
        out
    }

    /// When the earliest held-back publication may go out, if one is waiting. Clearing never
    /// publishes on a timer of its own: the core journals a tick by then (`market_data_due`), and
    /// that output's engine time publishes it, so the feed follows from the journal alone.
    pub fn next_publish_due(&self) -> Option<EngineTime> {
        self.publisher.next_due()
    }

    fn fees(&self) -> DecimalFees {
        DecimalFees::new(&self.config.fees)
    }

    fn category(&self, product: &Code) -> Category {
        // A product the engine accepted is always defined first; `other` is the safe reading
        // if clearing ever missed the definition (it then counts only in SFCI).
        self.products.get(product).map_or(Category::Other, |p| p.category)
    }

    /// The grade a book trade of `product` counts under: the best of the product's scale.
    fn best_grade(&self, product: &Code) -> Grade {
        self.products.get(product).map_or(Grade::A1, |p| p.best_grade)
    }

    fn on_registered(&mut self, pk: Pk, id: Code, buyer: bool, firm: Option<Pk>) {
        match firm {
            Some(firm) => {
                let firm_id = *self.firms.get(&firm).unwrap_or_else(|| panic!("seat {id} of an unknown buyer firm"));
                self.seats.insert(id, firm_id);
            }
            None if buyer => {
                self.firms.insert(pk, id);
            }
            None => {}
        }
    }

    /// Who pays for a purchase by `buyer`, and the seat that made it: a seat's firm pays.
    fn payer(&self, buyer: Code) -> (Code, Option<Code>) {
        match self.seats.get(&buyer) {
            Some(firm) => (*firm, Some(buyer)),
            None => (buyer, None),
        }
    }

    /// A purchase's buyer for its dispatch line: (who bought, the firm that pays, the firm's id,
    /// the seat's id when a seat bought).
    fn buyer_of(&self, pk: Pk, id: Code) -> (Pk, Pk, Code, Option<Code>) {
        let firm_pk = self.names.get(&pk).and_then(|n| n.firm).unwrap_or(pk);
        let (firm, seat) = self.payer(id);
        (pk, firm_pk, firm, seat)
    }

    /// A participant's id by key (registered before anything it does reaches clearing).
    fn id_of(&self, pk: Pk) -> Code {
        self.names.get(&pk).map(|n| n.id).unwrap_or_else(|| panic!("participant {pk:?} was never registered"))
    }

    /// A complaint's units, while its purchase's line is in memory (the core only takes
    /// complaints about lines of today and the previous trading day, which clearing keeps too).
    fn on_complaint_filed(&mut self, complaint: &Complaint) {
        let units = match self.goods.line(complaint.reference) {
            Some(line) => match line.containers {
                Some(containers) if containers > 0 => line.units / containers * complaint.containers,
                _ => complaint.containers,
            },
            None => panic!("complaint {} about {} that clearing never saw", complaint.id, complaint.reference),
        };
        self.complaint_units.insert(complaint.id, units);
    }

    /// An accepted credit above zero becomes today's correction on both statements.
    fn on_complaint_resolved(&mut self, seq: u64, ts: EngineTime, complaint: &Complaint) {
        let units = self.complaint_units.remove(&complaint.id);
        let Some((Decision::Accepted, credit)) = complaint.decision else { return };
        if credit.0 <= 0 {
            return;
        }
        let units = units.unwrap_or_else(|| panic!("complaint {} resolved but never filed", complaint.id));
        let payer = self.id_of(complaint.payer);
        let seat = (complaint.buyer != complaint.payer).then(|| self.id_of(complaint.buyer));
        let correction = Correction {
            no: u32::try_from(self.today.corrections.len()).expect("fewer than 4 G corrections a day"),
            seq,
            complaint: complaint.id,
            reference: complaint.reference,
            product: complaint.product,
            grade: complaint.grade.unwrap_or_else(|| self.best_grade(&complaint.product)),
            payer,
            seat,
            seller: self.id_of(complaint.seller),
            units,
            credit: from_fen(credit),
            ts,
        };
        self.today.ledger.post(correction.entry());
        self.today.corrections.push(correction);
    }

    /// The firm of seat `participant`; `None` for anyone who is not a seat.
    pub fn firm_of(&self, participant: &Code) -> Option<Code> {
        self.seats.get(participant).copied()
    }

    fn on_consigned(&mut self, lot: &Lot) {
        let previous = self.today.lots.insert(lot.id, LotRecord::of(lot));
        assert!(previous.is_none(), "lot {} consigned twice", lot.id.0);
    }

    /// A sale of a lot's containers (a clock award or a presale): the core's amount, buyer fee
    /// (per container, as at the clock) and commission checked against clearing's own
    /// arithmetic; returns (amount, fee, commission).
    fn lot_sale_money(
        &self,
        what: &str,
        lot: LotId,
        price: Fen,
        units: u64,
        containers: u32,
        core: [Fen; 3],
    ) -> [Decimal; 3] {
        let [core_amount, core_fee, core_commission] = core;
        assert_eq!(price.checked_mul(units), Some(core_amount), "{what} {} ≠ price × units", lot.0);
        let fees = self.fees();
        let amount = from_fen(core_amount);
        let fee = fees.clock_fee(containers);
        let commission = fees.commission(amount);
        agree("buyer fee", what, lot.0, fee, core_fee);
        agree("commission", what, lot.0, commission, core_commission);
        [amount, fee, commission]
    }

    /// `containers` of a lot sold, `remaining` left: returns its record for more bookkeeping.
    fn lot_sold(&mut self, what: &str, lot: LotId, containers: u32, remaining: u32) -> &mut LotRecord {
        let record = self.today.lot_mut(lot);
        assert_eq!(record.open, remaining + containers, "lot {} containers disagree with the {what}", lot.0);
        record.open = remaining;
        record.sold += containers;
        record
    }

    fn on_award(&mut self, seq: u64, award: &Award) {
        let core = [award.amount, award.fee, award.commission];
        let [amount, fee, commission] =
            self.lot_sale_money("award on lot", award.lot, award.price, award.units, award.containers, core);
        let (buyer, seat) = self.payer(award.buyer_id);
        let record = TradeRecord {
            no: 0,
            seq,
            kind: TradeKind::Clock,
            reference: award.lot.0,
            clock: Some(award.clock.0),
            round: Some(award.round),
            symbol: None,
            product: award.product,
            grade: award.grade,
            buyer,
            seller: award.grower_id,
            seat,
            presale_no: None,
            price: from_fen(award.price),
            units: award.units,
            containers: Some(award.containers),
            amount,
            fee,
            commission,
            ts: award.ts,
        };
        self.book_deal(Deal { record, buyer_pk: award.buyer, seller_pk: award.grower, voided: false });
        self.lot_sold("award", award.lot, award.containers, award.remaining).check();
    }

    fn on_trade(&mut self, seq: u64, trade: &Trade) {
        assert_eq!(
            trade.price.checked_mul(trade.quantity),
            Some(trade.amount),
            "trade {} ≠ price × quantity",
            trade.trade_id.0
        );
        let fees = self.fees();
        let amount = from_fen(trade.amount);
        let fee = fees.book_fee(amount);
        let commission = fees.commission(amount);
        agree("buyer fee", "trade", trade.trade_id.0, fee, trade.fee);
        agree("commission", "trade", trade.trade_id.0, commission, trade.commission);
        assert!(self.firm_of(&trade.seller_id).is_none(), "seat {} sold on the book", trade.seller_id);
        let (buyer, seat) = self.payer(trade.buyer_id);
        let record = TradeRecord {
            no: 0,
            seq,
            kind: TradeKind::Book,
            reference: trade.trade_id.0,
            clock: None,
            round: None,
            symbol: Some(trade.symbol),
            product: trade.product,
            grade: self.best_grade(&trade.product),
            buyer,
            seller: trade.seller_id,
            seat,
            presale_no: None,
            price: from_fen(trade.price),
            units: trade.quantity,
            containers: None,
            amount,
            fee,
            commission,
            ts: trade.ts,
        };
        self.book_deal(Deal { record, buyer_pk: trade.buyer, seller_pk: trade.seller, voided: false });
    }

    /// A presale purchase: booked like an award (the clock fee per container), and the lot's
    /// containers leave it as sold before the clock.
    fn on_presale(&mut self, seq: u64, sale: &PresaleSale) {
        let core = [sale.amount, sale.fee, sale.commission];
        let [amount, fee, commission] =
            self.lot_sale_money("presale of lot", sale.lot, sale.price, sale.units, sale.containers, core);
        let (buyer, seat) = self.payer(sale.buyer_id);
        let record = TradeRecord {
            no: 0,
            seq,
            kind: TradeKind::Presale,
            reference: sale.lot.0,
            clock: None,
            round: None,
            symbol: None,
            product: sale.product,
            grade: sale.grade,
            buyer,
            seller: sale.grower_id,
            seat,
            presale_no: Some(sale.number),
            price: from_fen(sale.price),
            units: sale.units,
            containers: Some(sale.containers),
            amount,
            fee,
            commission,
            ts: sale.ts,
        };
        self.book_deal(Deal { record, buyer_pk: sale.buyer, seller_pk: sale.grower, voided: false });
        let lot = self.lot_sold("presale", sale.lot, sale.containers, sale.remaining);
        lot.presold += sale.containers;
        lot.check();
    }

    /// Books a sale: ledger entry, both parties' statements, its cell, and marks what to publish.
    fn book_deal(&mut self, mut deal: Deal) {
        let no = u32::try_from(self.today.deals.len()).expect("fewer than 4 G sales a day");
        deal.record.no = no;
        let record = &deal.record;
        let kind = match record.kind {
            TradeKind::Clock => EntryKind::Award,
            TradeKind::Book => EntryKind::Trade,
            TradeKind::Presale => EntryKind::Presale,
            TradeKind::Correction => unreachable!("a correction is booked by `on_complaint_resolved`, never as a sale"),
        };
        self.today.ledger.post(entry_for(record, kind, Decimal::ONE));
        self.today.parties.entry(record.buyer).or_default().push((no, Side::Buy));
        self.today.parties.entry(record.seller).or_default().push((no, Side::Sell));
        if record.kind == TradeKind::Clock {
            self.today.lot_deals.entry(LotId(record.reference)).or_default().push(no);
        }
        let key = cell_key(record);
        let category = self.category(&key.product);
        let cell = self.today.cells.entry(key).or_insert_with(|| CellBook {
            category,
            stats: None,
            deals: Vec::new(),
            prices: BTreeMap::new(),
        });
        let (price, amount) = (to_fen(record.price), to_fen(record.amount));
        cell.deals.push(no);
        *cell.prices.entry(price).or_default() += 1;
        match &mut cell.stats {
            Some(stats) => stats.add(price, record.units, amount),
            None => cell.stats = Some(CellDay::first(price, record.units, amount)),
        }
        self.today.last_trade_ts = self.today.last_trade_ts.max(record.ts);
        self.touch(key, category);
        self.today.deals.push(deal);
    }

    /// Undoes an award exactly as the core did: the latest standing award of that buyer in that
    /// round of that lot. Returns its place in the round (1-based, voided awards counted): the `k`
    /// of its dispatch ref.
    fn on_void(&mut self, seq: u64, void: Void) -> u32 {
        let deals = &self.today.deals;
        let position = self
            .today
            .lot_deals
            .get(&void.lot)
            .and_then(|numbers| {
                numbers.iter().rev().copied().find(|&no| {
                    let d = &deals[no as usize];
                    !d.voided && d.record.round == Some(void.round) && d.buyer_pk == void.buyer
                })
            })
            .unwrap_or_else(|| panic!("voided award on lot {} round {} was never booked", void.lot.0, void.round));
        let deal = &mut self.today.deals[position as usize];
        let record = &deal.record;
        assert_eq!(
            (to_fen(record.amount), to_fen(record.fee), to_fen(record.commission), record.containers),
            (void.amount, void.fee, void.commission, Some(void.containers)),
            "the void of lot {} round {} does not match the award",
            void.lot.0,
            void.round
        );
        deal.voided = true;
        let mut reversal = entry_for(record, EntryKind::AwardVoided, Decimal::NEGATIVE_ONE);
        reversal.seq = seq;
        let key = cell_key(record);
        self.today.ledger.post(reversal);
        self.today.unbook_from_cell(key, position);
        let category = self.today.cells[&key].category;
        self.touch(key, category);
        let lot = self.today.lot_mut(void.lot);
        lot.open += void.containers;
        lot.sold -= void.containers;
        assert_eq!(lot.open, void.remaining, "lot {} containers disagree with the void", void.lot.0);
        lot.check();
        let deals = &self.today.deals;
        let in_round = |no: &&u32| **no <= position && deals[**no as usize].record.round == Some(void.round);
        self.today.lot_deals[&void.lot].iter().filter(in_round).count() as u32
    }

    fn touch(&mut self, key: CellKey, category: Category) {
        self.publisher.touch_cell(key);
        for code in IndexCode::ALL.into_iter().filter(|c| c.covers(category)) {
            self.publisher.touch_index(code);
        }
    }

    fn on_day_settled(
        &mut self,
        ts: EngineTime,
        day: Day,
        next_day: Day,
        engine: EngineTotals,
        out: &mut Vec<MarketData>,
    ) {
        assert_eq!(day, self.today.day, "the engine settled {day} while clearing is on {}", self.today.day);
        for lot in self.today.lots.values_mut() {
            lot.unsold += lot.open;
            lot.open = 0;
            lot.check();
        }
        let statements = self.today.statements();
        let seats = self.today.seats_traded();
        let summary = self.summarise(next_day, &statements);
        self.check_settlement(&summary, &statements, engine);

        // The close of the feed: every cell the day touched, then every index with a base.
        for (key, cell) in &self.today.cells {
            out.push(MarketData::Stats(CellStats::of(*key, day, cell.stats.as_ref())));
        }
        let (index, closes) = self.index.settle(day, ts, self.index_cells());
        out.extend(closes.into_iter().map(MarketData::Index));

        let market = self.market_stats();
        // Fees set during the day (`fees_set`) apply from the next one, as in the core.
        if let Some(fees) = self.pending_fees.take() {
            self.config.fees = fees;
            self.fee_history.insert(next_day, fees);
        }
        let book = std::mem::replace(&mut self.today, DayBook::new(next_day, self.config.fees));
        self.settled.push_back(SettledDay {
            summary,
            statements,
            seats,
            trades: book.deals.into_iter().filter(|d| !d.voided).map(|d| d.record).collect(),
            ledger: book.ledger.into_entries(),
            lots: book.lots.into_values().collect(),
            market,
            index,
        });
        self.publisher.reset();
    }

    fn summarise(&self, next_day: Day, statements: &[Statement]) -> DaySummary {
        let standing = || self.today.deals.iter().filter(|d| !d.voided).map(|d| &d.record);
        let zero = Decimal::new(0, 2);
        let turnover = standing().fold(zero, |sum, r| sum + r.amount);
        let buyer_fees = standing().fold(zero, |sum, r| sum + r.fee);
        let commission = standing().fold(zero, |sum, r| sum + r.commission);
        DaySummary {
            day: self.today.day,
            next_day,
            trades: standing().count() as u64,
            turnover,
            buyer_fees,
            commission,
            fees: buyer_fees + commission,
            participants: statements.len() as u32,
            fee_schedule: self.today.fees,
        }
    }

    /// The day's money checks; any failure is a bug in the core or here, so it stops the process.
    fn check_settlement(&self, summary: &DaySummary, statements: &[Statement], engine: EngineTotals) {
        let day = summary.day;
        assert_eq!(summary.trades, engine.trades, "{day}: clearing counts other trades than the engine");
        assert_eq!(to_fen(summary.turnover), engine.turnover, "{day}: clearing's turnover differs from the engine's");
        assert_eq!(to_fen(summary.fees), engine.fees, "{day}: clearing's fee income differs from the engine's");
        let ledger = &self.today.ledger;
        assert!(ledger.is_balanced(), "{day}: the ledger does not balance");
        let corrections: Decimal = statements.iter().map(|s| s.corrections).sum();
        assert!(corrections.is_zero(), "{day}: the corrections sum to {corrections}, not 0");
        let nets: Decimal = statements.iter().map(|s| s.net).sum();
        assert!((nets + summary.fees).is_zero(), "{day}: Σ net {nets} + fees {} ≠ 0", summary.fees);
        assert_eq!(ledger.balance(&Account::Market), summary.fees, "{day}: the market's account ≠ its fee income");
        for statement in statements {
            assert!(statement.totals_match_lines(), "{day}: statement of {} does not add up", statement.participant);
            // Seats hold no money: their trades are their firms'.
            assert!(
                self.firm_of(&statement.participant).is_none(),
                "{day}: seat {} has a statement",
                statement.participant
            );
            let account = Account::Participant(statement.participant);
            assert_eq!(ledger.balance(&account), statement.net, "{day}: {}'s account ≠ its net", statement.participant);
        }
        // A participant whose every sale was voided has no statement and must owe nothing.
        for participant in self.today.parties.keys() {
            if find_statement(statements, participant).is_none() {
                assert!(
                    ledger.balance(&Account::Participant(*participant)).is_zero(),
                    "{day}: {participant} is left owing"
                );
            }
        }
    }

    /// Each index's cells today: the VWAP inputs (amount, units) of every cell of its categories
    /// with sales that stand.
    fn index_cells(&self) -> BTreeMap<IndexCode, BTreeMap<CellKey, CellVolume>> {
        let mut by_index: BTreeMap<IndexCode, BTreeMap<CellKey, CellVolume>> = BTreeMap::new();
        for (key, cell) in &self.today.cells {
            let Some(stats) = &cell.stats else { continue };
            let volume = CellVolume { amount: stats.turnover, units: stats.units };
            for code in IndexCode::ALL.into_iter().filter(|c| c.covers(cell.category)) {
                by_index.entry(code).or_default().insert(*key, volume);
            }
        }
        by_index
    }

    fn publish_due_into(&mut self, now: EngineTime, out: &mut Vec<MarketData>) {
        let day = self.today.day;
        for key in self.publisher.due_cells(now) {
            out.push(MarketData::Stats(CellStats::of(key, day, self.today.cell_stats(&key))));
        }
        let due = self.publisher.due_indices(now);
        if due.is_empty() {
            return;
        }
        let mut cells = self.index_cells();
        for code in due {
            if let Some(value) = self.index.value_now(code, &cells.remove(&code).unwrap_or_default()) {
                let value = IndexValue { code, value, day, ts: now, is_final: false };
                self.publisher.record_intraday(value);
                out.push(MarketData::Index(value));
            }
        }
    }

    /// The fees in force on `day` (those clearing began with for a day before it began).
    pub fn fees_on(&self, day: Day) -> FeeSchedule {
        let at_or_before = self.fee_history.range(..=day).next_back();
        at_or_before.or_else(|| self.fee_history.iter().next()).map_or(self.config.fees, |(_, fees)| *fees)
    }

    /// The fees set for the next trading day, if any.
    pub fn pending_fees(&self) -> Option<FeeSchedule> {
        self.pending_fees
    }

    /// A participant's statement for `day`: today's running one, a settled day still in memory,
    /// or where to look instead. For a seat, its view of its firm's statement (`view_of`):
    /// today's always (possibly without lines), a settled day's when it traded that day.
    pub fn statement(&self, participant: &Code, day: Day) -> StatementLookup {
        let Some(firm) = self.firm_of(participant) else { return self.own_statement(participant, day) };
        match self.own_statement(&firm, day) {
            StatementLookup::Found(statement) => {
                let view = statement.seat_view(*participant);
                if view.lines.is_empty() && day != self.today.day {
                    StatementLookup::NoActivity
                } else {
                    StatementLookup::Found(view)
                }
            }
            elsewhere => elsewhere,
        }
    }

    fn own_statement(&self, participant: &Code, day: Day) -> StatementLookup {
        if day == self.today.day {
            return StatementLookup::Found(self.today.statement(participant));
        }
        if let Some(settled) = self.settled.iter().find(|s| s.day() == day) {
            return match find_statement(&settled.statements, participant) {
                Some(statement) => StatementLookup::Found(statement.clone()),
                None => StatementLookup::NoActivity,
            };
        }
        if day < self.today.day {
            StatementLookup::InArchive
        } else {
            StatementLookup::NoActivity
        }
    }

    /// Today's per-cell statistics and per-product clock clearance (`/api/market`), in alphabetical
    /// order of product (then grade).
    pub fn market_stats(&self) -> MarketStats {
        let day = self.today.day;
        let mut cells: Vec<CellStats> = self
            .today
            .cells
            .iter()
            .filter_map(|(key, cell)| cell.stats.as_ref().map(|stats| CellStats::of(*key, day, Some(stats))))
            .collect();
        cells.sort_by(|a, b| (a.product.as_str(), a.grade).cmp(&(b.product.as_str(), b.grade)));
        MarketStats { day, cells, products: clearance(&self.today.lots) }
    }

    /// Today's sales that stand, in the order they happened (`/api/trades`). Voided awards are
    /// left out, as from the statements and the archive.
    pub fn trades_today(&self) -> impl Iterator<Item = &TradeRecord> {
        self.today.deals.iter().filter(|d| !d.voided).map(|d| &d.record)
    }

    /// A lot consigned today, as clearing follows it.
    pub fn lot_today(&self, lot: LotId) -> Option<&LotRecord> {
        self.today.lots.get(&lot)
    }

    /// The latest value of each published index and today's intraday series (`/api/index`).
    pub fn index_latest(&self) -> IndexSnapshot {
        let day = self.today.day;
        let mut cells_by_index = self.index_cells();
        let latest = IndexCode::ALL
            .into_iter()
            .filter_map(|code| {
                let cells = cells_by_index.remove(&code).unwrap_or_default();
                if cells.is_empty() {
                    return self.index.last_close(code);
                }
                let value = self.index.value_now(code, &cells)?;
                Some(IndexValue { code, value, day, ts: self.today.last_trade_ts, is_final: false })
            })
            .collect();
        IndexSnapshot { day, latest, intraday: self.publisher.intraday() }
    }

    /// One row per settled day with the close of every index published by then.
    pub fn index_history(&self) -> Vec<IndexClose> {
        self.index.history().to_vec()
    }

    /// Every ledger entry in memory balances, and the running day's balances sum to zero.
    pub fn ledger_balanced(&self) -> bool {
        self.today.ledger.is_balanced() && self.settled.iter().all(|d| entries_balance(&d.ledger))
    }

    /// A hash of the clearing state (FNV-1a over its bincode encoding, like the core's), without
    /// the publication bookkeeping.
    pub fn state_hash(&self) -> u64 {
        hash_of(&(
            &self.config,
            &self.last_seq,
            &self.products,
            &self.firms,
            &self.seats,
            &self.today,
            &self.settled,
            &self.index,
            &self.pending_fees,
            &self.fee_history,
            &self.names,
            &self.goods,
            &self.complaint_units,
        ))
    }

    /// A lot's public trace, when its day is in memory (today's or the previous trading day's);
    /// `None`: ask the archive (`Archive::trace`).
    pub fn lot_trace(&self, lot: LotId) -> Option<LotTraceView> {
        self.goods.trace(lot)
    }

    /// A day's goods, when the day is in memory.
    pub fn goods_of_day(&self, day: Day) -> Option<&GoodsDay> {
        self.goods.day(day)
    }

    /// The next day of goods to write to the archive (see `goods.rs`).
    pub fn take_goods_day(&mut self) -> Option<GoodsDay> {
        self.goods.take_leaving()
    }

    /// Moves the oldest settled day out of memory, for the caller to write to the archive.
    pub fn take_settled_day(&mut self) -> Option<SettledDay> {
        self.settled.pop_front()
    }

    /// The trading day in progress.
    pub fn day(&self) -> Day {
        self.today.day
    }

    /// The seq of the last output applied: a restored clearing skips outputs up to it.
    pub fn last_seq(&self) -> Option<u64> {
        self.last_seq
    }

    pub fn config(&self) -> &ClearingConfig {
        &self.config
    }
}

/// The day's totals as the engine reports them in `DaySettled`.
#[derive(Clone, Copy)]
struct EngineTotals {
    trades: u64,
    turnover: Fen,
    fees: Fen,
}

/// An `AwardVoided` event's figures.
#[derive(Clone, Copy)]
struct Void {
    lot: LotId,
    round: u32,
    buyer: Pk,
    containers: u32,
    remaining: u32,
    amount: Fen,
    fee: Fen,
    commission: Fen,
}

/// The three postings of a sale (`sign` +1) or of its reversal (−1).
fn entry_for(record: &TradeRecord, kind: EntryKind, sign: Decimal) -> LedgerEntry {
    LedgerEntry {
        no: 0,
        seq: record.seq,
        kind,
        trade_kind: record.kind,
        reference: record.reference,
        trade_no: record.no,
        postings: [
            Posting { account: Account::Participant(record.buyer), amount: -(record.amount + record.fee) * sign },
            Posting {
                account: Account::Participant(record.seller),
                amount: (record.amount - record.commission) * sign,
            },
            Posting { account: Account::Market, amount: (record.fee + record.commission) * sign },
        ],
    }
}

/// A participant's statement among a day's (sorted alphabetically by id).
fn find_statement<'a>(statements: &'a [Statement], participant: &Code) -> Option<&'a Statement> {
    statements.binary_search_by(|s| s.participant.as_str().cmp(participant.as_str())).ok().map(|i| &statements[i])
}

/// Clearing's decimal figure must be the core's integer one, to the fen.
fn agree(what: &str, of: &str, reference: u64, ours: Decimal, core: Fen) {
    assert_eq!(to_fen(ours), core, "{what} of {of} {reference}: clearing computes {ours}, the core {core}");
}
