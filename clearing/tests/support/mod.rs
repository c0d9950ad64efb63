//! A market simulator that writes the engine's event stream directly: consignments, awards (with
//! multi-buy), voids, presale purchases, unsold and withdrawn lots, book trades and `DaySettled`,
//! with every fee from the engine's own integer `FeeSchedule` and the day's totals as the engine
//! would report them. Buyers may be seats of buyer firms: the events name the seat, the model
//! books the money to the firm (protocol §4, §8).
//!
//! An operation is a handful of raw numbers (so proptest can shrink it) that `MarketSim::step`
//! interprets against the simulated market as it stands; one that does not fit (no lot to bid on)
//! does nothing. The simulator also keeps the expected outcome of each day in integer fen — an
//! independent model to check clearing against.

#![allow(dead_code)]

use huashi_clearing::{CellKey, TradeKind};
use huashi_engine::command::Roles;
use huashi_engine::core::catalogue::{Category, Grade, Unit, DEFAULT_INSTRUMENTS, DEFAULT_PRODUCTS};
use huashi_engine::core::fees::FeeSchedule;
use huashi_engine::core::lots::{Lot, LotStatus};
use huashi_engine::event::{Award, Event, PresaleSale, Trade};
use huashi_engine::types::{ClockId, Code, Day, EngineTime, Fen, LotId, OrderId, Pk, Side, TradeId};
use rand::Rng;
use std::collections::BTreeMap;

/// One applied command as the sequencer hands it on.
#[derive(Clone, Debug)]
pub struct SimOutput {
    pub seq: u64,
    pub ts: EngineTime,
    pub events: Vec<Event>,
}

/// Raw numbers; `step` decides what they mean.
#[derive(Clone, Copy, Debug)]
pub struct Op {
    pub kind: u8,
    pub a: u16,
    pub b: u16,
    pub c: u16,
    pub d: u16,
    /// Milliseconds of engine time before the command.
    pub wait_ms: u16,
}

struct SimParticipant {
    pk: Pk,
    id: Code,
    grower: bool,
    buyer: bool,
    /// A seat's firm (index into `participants`).
    firm: Option<usize>,
}

/// A product as the simulator knows it: its code and grade scale, best first.
struct SimProduct {
    code: Code,
    grades: Vec<Grade>,
}

struct SimLot {
    id: LotId,
    grower: usize,
    product: Code,
    grade: Grade,
    units_per_container: u32,
    containers: u32,
    remaining: u32,
    round: u32,
    finished: bool,
    /// It went on the clock (an award or a round): presales are closed.
    clocked: bool,
    presales: u32,
    /// Indices into `sales` of this lot's awards.
    sales: Vec<usize>,
}

/// A sale the model expects to see in the statements: who, what, how much (fen).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ExpectedSale {
    pub kind: TradeKind,
    pub reference: u64,
    pub round: Option<u32>,
    /// Who pays: the firm when a seat bought.
    pub buyer: Code,
    pub seller: Code,
    /// The seat that bought, if one did.
    pub seat: Option<Code>,
    /// The cell it counts in (a book trade: the best grade of the product's scale).
    pub cell: CellKey,
    pub units: u64,
    pub amount: i64,
    pub fee: i64,
    pub commission: i64,
    pub voided: bool,
    buyer_pk: Pk,
    containers: u32,
}

/// One participant's expected day, in fen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExpectedTotals {
    pub bought: i64,
    pub sold: i64,
    pub fees: i64,
    pub commission: i64,
}

impl ExpectedTotals {
    pub fn net(&self) -> i64 {
        self.sold - self.commission - self.bought - self.fees
    }
}

pub struct MarketSim {
    pub fees: FeeSchedule,
    day: Day,
    seq: u64,
    ts: EngineTime,
    participants: Vec<SimParticipant>,
    products: Vec<SimProduct>,
    /// (symbol, product) of the books.
    instruments: Vec<(Code, Code)>,
    next_lot: u64,
    next_trade: u64,
    next_order: u64,
    lots: Vec<SimLot>,
    /// Indices into `lots` of the lots not finished, in no particular order.
    open_lots: Vec<usize>,
    sales: Vec<ExpectedSale>,
    /// The sales of the last settled day.
    pub settled_sales: Vec<ExpectedSale>,
}

impl MarketSim {
    pub fn new(day: Day) -> MarketSim {
        MarketSim {
            fees: FeeSchedule::default(),
            day,
            seq: 0,
            ts: morning(day),
            participants: Vec::new(),
            products: DEFAULT_PRODUCTS
                .iter()
                .map(|&(code, _, _, _, grades)| SimProduct {
                    code: Code::from_static(code),
                    grades: grades.iter().map(|g| Grade::from_static(g)).collect(),
                })
                .collect(),
            instruments: DEFAULT_INSTRUMENTS
                .iter()
                .map(|&(symbol, product)| (Code::from_static(symbol), Code::from_static(product)))
                .collect(),
            next_lot: 1,
            next_trade: 1,
            next_order: 1,
            lots: Vec::new(),
            open_lots: Vec::new(),
            sales: Vec::new(),
            settled_sales: Vec::new(),
        }
    }

    pub fn day(&self) -> Day {
        self.day
    }

    fn output(&mut self, wait_ms: u64, events: Vec<Event>) -> SimOutput {
        self.seq += 1;
        self.ts = self.ts.plus_ms(wait_ms);
        SimOutput { seq: self.seq, ts: self.ts, events }
    }

    /// Registers `buyers` buyers `B0…`, `growers` growers `G0…` and `duals` participants `D0…`
    /// that both grow and buy.
    pub fn register(&mut self, buyers: usize, growers: usize, duals: usize) -> SimOutput {
        let mut events = Vec::new();
        let kinds = [("B", buyers, false, true), ("G", growers, true, false), ("D", duals, true, true)];
        for (prefix, count, grower, buyer) in kinds {
            for n in 0..count {
                let pk = Pk(self.participants.len() as u32);
                let id = Code::parse(&format!("{prefix}{n}"), 36).unwrap();
                self.participants.push(SimParticipant { pk, id, grower, buyer, firm: None });
                events.push(Event::ParticipantRegistered {
                    pk,
                    id,
                    name: id.to_string(),
                    roles: Roles { operator: false, grower, buyer, logistics: false },
                    credit_limit: Fen(i64::MAX / 4),
                    token_hash: [0; 32],
                    firm: None,
                    daily_limit: None,
                });
            }
        }
        self.output(1, events)
    }

    /// Registers `seats` seats `S0…`, each of a buyer firm (a buyer that is not a seat), the
    /// firms taken in turn.
    pub fn register_seats(&mut self, seats: usize) -> SimOutput {
        let firms: Vec<usize> = (0..self.participants.len())
            .filter(|&i| self.participants[i].buyer && self.participants[i].firm.is_none())
            .collect();
        assert!(!firms.is_empty() || seats == 0, "seats need a buyer firm");
        let mut events = Vec::new();
        for n in 0..seats {
            let firm = firms[n % firms.len()];
            let pk = Pk(self.participants.len() as u32);
            let id = Code::parse(&format!("S{n}"), 36).unwrap();
            self.participants.push(SimParticipant { pk, id, grower: false, buyer: true, firm: Some(firm) });
            events.push(Event::ParticipantRegistered {
                pk,
                id,
                name: id.to_string(),
                roles: Roles { operator: false, grower: false, buyer: true, logistics: false },
                credit_limit: Fen::ZERO,
                token_hash: [0; 32],
                firm: Some(self.participants[firm].pk),
                daily_limit: Some(Fen(i64::MAX / 8)),
            });
        }
        self.output(1, events)
    }

    /// (seat, firm) ids of every seat.
    pub fn seats(&self) -> Vec<(Code, Code)> {
        let participants = &self.participants;
        participants.iter().filter_map(|p| p.firm.map(|f| (p.id, participants[f].id))).collect()
    }

    /// Defines a product of `category` with grade scale `grades` (best first); it trades at the
    /// clock like any other, and on a book `{code}-BK`.
    pub fn define_product(&mut self, code: &str, category: Category, grades: &[&'static str]) -> SimOutput {
        let code = Code::parse(code, 36).unwrap();
        let grades: Vec<Grade> = grades.iter().map(|g| Grade::from_static(g)).collect();
        self.products.push(SimProduct { code, grades: grades.clone() });
        self.instruments.push((Code::parse(&format!("{code}-BK"), 36).unwrap(), code));
        let event = Event::ProductDefined { code, name: code.to_string(), category, unit: Unit::Stem, grades };
        self.output(1, vec![event])
    }

    /// Whose money a purchase by participant `buyer` moves, and the seat if one bought.
    fn payer(&self, buyer: usize) -> (Code, Option<Code>) {
        let p = &self.participants[buyer];
        match p.firm {
            Some(firm) => (self.participants[firm].id, Some(p.id)),
            None => (p.id, None),
        }
    }

    fn best_grade(&self, product: Code) -> Grade {
        self.products.iter().find(|p| p.code == product).expect("a known product").grades[0]
    }

    fn pick(&self, sel: u16, role: impl Fn(&SimParticipant) -> bool, not: Option<usize>) -> Option<usize> {
        let candidates: Vec<usize> =
            (0..self.participants.len()).filter(|&i| role(&self.participants[i]) && Some(i) != not).collect();
        (!candidates.is_empty()).then(|| candidates[sel as usize % candidates.len()])
    }

    fn open_lot(&self, sel: u16) -> Option<usize> {
        (!self.open_lots.is_empty()).then(|| self.open_lots[sel as usize % self.open_lots.len()])
    }

    /// Applies one operation; `None` when it does not fit the market as it stands.
    pub fn step(&mut self, op: Op) -> Option<SimOutput> {
        let events = match op.kind % 14 {
            0 | 1 => self.consign(op),
            2..=4 => self.award(op),
            5 => self.new_round(op),
            6 => self.void(op),
            7 => self.end_lot(op, false),
            8 => self.end_lot(op, true),
            9..=11 => self.trade(op),
            _ => self.presale(op),
        }?;
        Some(self.output(u64::from(op.wait_ms), events))
    }

    fn consign(&mut self, op: Op) -> Option<Vec<Event>> {
        let grower = self.pick(op.a, |p| p.grower, None)?;
        let id = LotId(self.next_lot);
        self.next_lot += 1;
        let scale = &self.products[op.b as usize % self.products.len()];
        let (product, grade) = (scale.code, scale.grades[op.c as usize % scale.grades.len()]);
        let units_per_container = 1 + u32::from(op.d % 50);
        let containers = 1 + u32::from(op.d / 50 % 20);
        let p = &self.participants[grower];
        let lot = Lot {
            id,
            grower: p.pk,
            grower_id: p.id,
            product,
            grade,
            units_per_container,
            containers,
            remaining: containers,
            sold: 0,
            unsold: 0,
            min_purchase: 1,
            min_price: Fen(1),
            origin: "Kunming".to_string(),
            photo_url: String::new(),
            note: String::new(),
            status: LotStatus::Consigned,
            day: self.day,
            clock: None,
            start_price: None,
            master: Default::default(),
            position: None,
            presale: None,
            presales: 0,
            sales: Default::default(),
            rounds: 0,
            qi: None,
        };
        self.lots.push(SimLot {
            id,
            grower,
            product,
            grade,
            units_per_container,
            containers,
            remaining: containers,
            round: 1,
            finished: false,
            clocked: false,
            presales: 0,
            sales: Vec::new(),
        });
        self.open_lots.push(self.lots.len() - 1);
        Some(vec![Event::LotConsigned { lot: Box::new(lot) }])
    }

    /// One award, or several at one price (multi-buy) when `op.c` says so.
    fn award(&mut self, op: Op) -> Option<Vec<Event>> {
        let index = self.open_lot(op.a)?;
        let price = Fen(1 + i64::from(op.d % 4_000));
        let buyers = 1 + usize::from(op.c.is_multiple_of(7)) + usize::from(op.c.is_multiple_of(21));
        let mut events = Vec::new();
        for k in 0..buyers {
            let lot = &self.lots[index];
            if lot.remaining == 0 {
                break;
            }
            let sel = op.b.wrapping_add(k as u16 * 7);
            let Some(buyer) = self.pick(sel, |p| p.buyer, Some(lot.grower)) else { break };
            let containers = 1 + u32::from(op.c) % lot.remaining;
            events.push(self.book_award(index, buyer, containers, price));
        }
        (!events.is_empty()).then_some(events)
    }

    fn book_award(&mut self, index: usize, buyer: usize, containers: u32, price: Fen) -> Event {
        let ts = self.ts;
        let (payer, seat) = self.payer(buyer);
        let lot = &mut self.lots[index];
        lot.remaining -= containers;
        lot.clocked = true;
        let units = u64::from(lot.units_per_container) * u64::from(containers);
        let amount = price.checked_mul(units).unwrap();
        let fee = self.fees.clock_fee(containers);
        let commission = self.fees.commission(amount);
        let (b, g) = (&self.participants[buyer], &self.participants[lot.grower]);
        lot.sales.push(self.sales.len());
        self.sales.push(ExpectedSale {
            kind: TradeKind::Clock,
            reference: lot.id.0,
            round: Some(lot.round),
            buyer: payer,
            seller: g.id,
            seat,
            cell: CellKey { product: lot.product, grade: lot.grade },
            units,
            amount: amount.0,
            fee: fee.0,
            commission: commission.0,
            voided: false,
            buyer_pk: b.pk,
            containers,
        });
        Event::Awarded(Box::new(Award {
            clock: ClockId(1),
            lot: lot.id,
            round: lot.round,
            buyer: b.pk,
            buyer_id: b.id,
            grower: g.pk,
            grower_id: g.id,
            product: lot.product,
            grade: lot.grade,
            price,
            containers,
            units,
            amount,
            fee,
            commission,
            remaining: lot.remaining,
            ts,
            standing: false,
        }))
    }

    fn new_round(&mut self, op: Op) -> Option<Vec<Event>> {
        let index = self.open_lot(op.a)?;
        self.lots[index].round += 1;
        self.lots[index].clocked = true;
        // The engine would publish `ClockStarted`; clearing ignores it, which is the point.
        let lot = &self.lots[index];
        Some(vec![Event::ClockStarted {
            clock: ClockId(1),
            lot: lot.id,
            round: lot.round,
            start_price: Fen(5_000),
            step: Fen(1),
            tick_ms: 10,
            start_ts: self.ts,
            remaining: lot.remaining,
        }])
    }

    /// Voids, as the engine does, the latest standing award of one buyer in the lot's current round.
    fn void(&mut self, op: Op) -> Option<Vec<Event>> {
        let index = self.open_lot(op.a)?;
        let (lot_id, round) = (self.lots[index].id, self.lots[index].round);
        let candidates: Vec<usize> = self.lots[index]
            .sales
            .iter()
            .copied()
            .filter(|&i| {
                let s = &self.sales[i];
                s.kind == TradeKind::Clock && !s.voided && s.reference == lot_id.0 && s.round == Some(round)
            })
            .collect();
        let chosen = *candidates.get(op.b as usize % candidates.len().max(1))?;
        let buyer_pk = self.sales[chosen].buyer_pk;
        let target = candidates
            .iter()
            .rev()
            .copied()
            .find(|&i| self.sales[i].buyer_pk == buyer_pk)
            .expect("the chosen one at least");
        let sale = &mut self.sales[target];
        sale.voided = true;
        let lot = &mut self.lots[index];
        lot.remaining += sale.containers;
        Some(vec![Event::AwardVoided {
            clock: ClockId(1),
            lot: lot_id,
            round,
            buyer: buyer_pk,
            grower: self.participants[lot.grower].pk,
            containers: sale.containers,
            remaining: lot.remaining,
            amount: Fen(sale.amount),
            fee: Fen(sale.fee),
            commission: Fen(sale.commission),
        }])
    }

    fn end_lot(&mut self, op: Op, withdraw: bool) -> Option<Vec<Event>> {
        let index = self.open_lot(op.a)?;
        let position = self.open_lots.iter().position(|&i| i == index).expect("an open lot");
        self.open_lots.swap_remove(position);
        let lot = &mut self.lots[index];
        lot.finished = true;
        let grower = self.participants[lot.grower].pk;
        let event = if withdraw {
            Event::LotWithdrawn { lot: lot.id, grower }
        } else {
            Event::LotUnsold {
                clock: ClockId(1),
                lot: lot.id,
                grower,
                round: lot.round,
                remaining: lot.remaining,
                ts: self.ts,
            }
        };
        lot.remaining = 0;
        Some(vec![event])
    }

    fn trade(&mut self, op: Op) -> Option<Vec<Event>> {
        let seller = self.pick(op.a, |p| p.grower, None)?;
        let buyer = self.pick(op.b, |p| p.buyer, Some(seller))?;
        let (symbol, product) = self.instruments[op.c as usize % self.instruments.len()];
        let (payer, seat) = self.payer(buyer);
        let cell = CellKey { product, grade: self.best_grade(product) };
        let price = Fen(1 + i64::from(op.d % 3_000));
        let quantity = 1 + u64::from(op.c / 3 % 500);
        let amount = price.checked_mul(quantity).unwrap();
        let fee = self.fees.book_fee(amount);
        let commission = self.fees.commission(amount);
        let trade_id = TradeId(self.next_trade);
        self.next_trade += 1;
        self.next_order += 2;
        let (b, s) = (&self.participants[buyer], &self.participants[seller]);
        self.sales.push(ExpectedSale {
            kind: TradeKind::Book,
            reference: trade_id.0,
            round: None,
            buyer: payer,
            seller: s.id,
            seat,
            cell,
            units: quantity,
            amount: amount.0,
            fee: fee.0,
            commission: commission.0,
            voided: false,
            buyer_pk: b.pk,
            containers: 0,
        });
        Some(vec![Event::Traded(Trade {
            trade_id,
            symbol,
            product,
            price,
            quantity,
            amount,
            aggressor: if op.d.is_multiple_of(2) { Side::Buy } else { Side::Sell },
            buyer: b.pk,
            buyer_id: b.id,
            buyer_order: OrderId(self.next_order - 2),
            seller: s.pk,
            seller_id: s.id,
            seller_order: OrderId(self.next_order - 1),
            fee,
            commission,
            ts: self.ts,
        })])
    }

    /// A presale purchase of part of a lot not yet on the clock, at a price the grower set; a lot
    /// sold out by presales ends there, with no event (as in the core).
    fn presale(&mut self, op: Op) -> Option<Vec<Event>> {
        let index = self.open_lot(op.a)?;
        if self.lots[index].clocked || self.lots[index].remaining == 0 {
            return None;
        }
        let buyer = self.pick(op.b, |p| p.buyer, Some(self.lots[index].grower))?;
        let (payer, seat) = self.payer(buyer);
        let price = Fen(1 + i64::from(op.d % 2_500));
        let ts = self.ts;
        let lot = &mut self.lots[index];
        let containers = 1 + u32::from(op.c) % lot.remaining;
        lot.remaining -= containers;
        lot.presales += 1;
        let units = u64::from(lot.units_per_container) * u64::from(containers);
        let amount = price.checked_mul(units).unwrap();
        let fee = self.fees.clock_fee(containers);
        let commission = self.fees.commission(amount);
        let (b, g) = (&self.participants[buyer], &self.participants[lot.grower]);
        self.sales.push(ExpectedSale {
            kind: TradeKind::Presale,
            reference: lot.id.0,
            round: None,
            buyer: payer,
            seller: g.id,
            seat,
            cell: CellKey { product: lot.product, grade: lot.grade },
            units,
            amount: amount.0,
            fee: fee.0,
            commission: commission.0,
            voided: false,
            buyer_pk: b.pk,
            containers,
        });
        let sale = PresaleSale {
            lot: lot.id,
            number: lot.presales,
            buyer: b.pk,
            buyer_id: b.id,
            grower: g.pk,
            grower_id: g.id,
            product: lot.product,
            grade: lot.grade,
            price,
            containers,
            units,
            amount,
            fee,
            commission,
            offer_left: 0,
            remaining: lot.remaining,
            ts,
        };
        if lot.remaining == 0 {
            lot.finished = true;
            let position = self.open_lots.iter().position(|&i| i == index).expect("an open lot");
            self.open_lots.swap_remove(position);
        }
        Some(vec![Event::PresaleBought(Box::new(sale))])
    }

    /// `end_of_day`: `DaySettled` with the engine's totals; the next day starts.
    pub fn end_day(&mut self) -> SimOutput {
        let standing: Vec<&ExpectedSale> = self.sales.iter().filter(|s| !s.voided).collect();
        let event = Event::DaySettled {
            day: self.day,
            next_day: self.day.next(),
            trades: standing.len() as u64,
            turnover: Fen(standing.iter().map(|s| s.amount).sum()),
            fees: Fen(standing.iter().map(|s| s.fee + s.commission).sum()),
        };
        self.day = self.day.next();
        self.lots.clear();
        self.open_lots.clear();
        self.settled_sales = std::mem::take(&mut self.sales);
        let out = self.output(1, vec![event]);
        // The next morning.
        self.ts = self.ts.max(morning(self.day));
        out
    }

    /// The last settled day's expected totals per participant, in fen.
    pub fn settled_totals(&self) -> BTreeMap<Code, ExpectedTotals> {
        let mut totals: BTreeMap<Code, ExpectedTotals> = BTreeMap::new();
        for sale in self.settled_sales.iter().filter(|s| !s.voided) {
            let buyer = totals.entry(sale.buyer).or_default();
            buyer.bought += sale.amount;
            buyer.fees += sale.fee;
            let seller = totals.entry(sale.seller).or_default();
            seller.sold += sale.amount;
            seller.commission += sale.commission;
        }
        totals
    }
}

/// 06:00 in Shanghai on `day`.
pub fn morning(day: Day) -> EngineTime {
    let seconds = day.0 as u64 * 86_400 - 8 * 3_600 + 6 * 3_600;
    EngineTime(seconds * 1_000_000)
}

/// A random operation mostly of sales (for soaks): about 1 in 8 consigns, 1 in 100 voids, 1 in 12
/// presales.
pub fn random_op(rng: &mut impl Rng) -> Op {
    let roll = rng.gen_range(0..100);
    let kind = match roll {
        0..=11 => 0,
        12..=55 => 2,
        56 => 6,
        57..=58 => 7,
        59 => 8,
        60..=61 => 5,
        62..=69 => 12,
        _ => 9,
    };
    Op { kind, a: rng.gen(), b: rng.gen(), c: rng.gen(), d: rng.gen(), wait_ms: rng.gen_range(0..400) }
}
