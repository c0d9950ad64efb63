//! Clearing fed by the real market core: random days of clocks (live presses, standing bids,
//! multi-buy, voids, halts), presales and books, bought by buyers and by seats of buyer firms,
//! every command's events applied in seq order. Clearing's own assertions check every fee against
//! the core's and the day's totals against `DaySettled`; this test also checks each participant's
//! running statement (a seat's view) against the core's account, and that a firm's statement is
//! its seats' views plus its own trades.
//!
//! After the sale (issue 15): a logistics participant moves random lines, buyers set destinations
//! and complain, the operator accepts (with a credit) or rejects. Clearing's dispatch lines of
//! today and the previous day must equal the core's, its copy of each lot the core's lot, its
//! final copy the lot as the core ends it, and corrections keep every day's money conserved.

use huashi_clearing::{Clearing, ClearingConfig, Statement, StatementLookup, TradeKind};
use huashi_engine::command::{Action, Actor, ClockSettingsPatch, Command, Consignment, OrderEntry, Roles};
use huashi_engine::core::book::{BookState, OrderType, TimeInForce};
use huashi_engine::core::catalogue::{Category, Grade, Unit, DEFAULT_INSTRUMENTS, DEFAULT_PRODUCTS};
use huashi_engine::core::clock::ClockPhase;
use huashi_engine::core::complaints::{ComplaintReason, Decision};
use huashi_engine::core::dispatch::{Centi, DispatchStatus};
use huashi_engine::core::lots::{Lot, LotStatus};
use huashi_engine::core::{Market, MarketConfig};
use huashi_engine::event::Event;
use huashi_engine::types::{ClockId, Code, Day, EngineTime, Fen, LotId, Pk, Side};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Product `i` of the default catalogue; one past its end, `MOSS` (Other), which the driver defines.
fn product(i: usize) -> &'static str {
    DEFAULT_PRODUCTS.get(i).map_or("MOSS", |(code, ..)| *code)
}

/// The default instruments' symbols.
fn symbols() -> impl Iterator<Item = &'static str> {
    DEFAULT_INSTRUMENTS.iter().map(|(symbol, _)| *symbol)
}

fn code(text: &str) -> Code {
    Code::parse(text, 36).unwrap()
}

struct Driver {
    market: Market,
    clearing: Clearing,
    rng: ChaCha8Rng,
    now: EngineTime,
    seq: u64,
    buyers: Vec<Pk>,
    growers: Vec<Pk>,
    lots_today: Vec<LotId>,
    next_client_order: u64,
    awards: u64,
    voids: u64,
    trades: u64,
    presales: u64,
    /// Purchases made by seats.
    seat_buys: u64,
    /// (seat, firm) ids.
    seats: Vec<(Code, Code)>,
    logistics: Pk,
    moves: u64,
    complaints: u64,
    credits: u64,
}

impl Driver {
    fn new(seed: u64) -> Driver {
        let day = Day::parse("2026-11-29").unwrap();
        let mut config = MarketConfig::new(day);
        config.clocks = 2;
        let now = EngineTime((day.0 as u64 * 86_400 - 2 * 3_600) * 1_000_000);
        Driver {
            market: Market::new(config.clone()),
            clearing: Clearing::new(ClearingConfig { fees: config.fees }, day),
            rng: ChaCha8Rng::seed_from_u64(seed),
            now,
            seq: 0,
            buyers: Vec::new(),
            growers: Vec::new(),
            lots_today: Vec::new(),
            next_client_order: 1,
            awards: 0,
            voids: 0,
            trades: 0,
            presales: 0,
            seat_buys: 0,
            seats: Vec::new(),
            logistics: Pk(0),
            moves: 0,
            complaints: 0,
            credits: 0,
        }
    }

    fn run(&mut self, actor: Actor, action: Action) -> Vec<Event> {
        let mut events = Vec::new();
        self.seq += 1;
        self.market.apply(&Command::new(actor, action), self.now, &mut events);
        let is_seat = |id: &Code| self.seats.iter().any(|(seat, _)| seat == id);
        for event in &events {
            let buyer = match event {
                Event::Awarded(award) => {
                    self.awards += 1;
                    Some(award.buyer_id)
                }
                Event::AwardVoided { .. } => {
                    self.voids += 1;
                    None
                }
                Event::Traded(trade) => {
                    self.trades += 1;
                    Some(trade.buyer_id)
                }
                Event::PresaleBought(sale) => {
                    self.presales += 1;
                    Some(sale.buyer_id)
                }
                Event::DispatchUpdated { .. } => {
                    self.moves += 1;
                    None
                }
                Event::ComplaintFiled(_) => {
                    self.complaints += 1;
                    None
                }
                Event::ComplaintResolved(c) => {
                    self.credits +=
                        u64::from(c.decision.is_some_and(|(d, credit)| d == Decision::Accepted && credit.0 > 0));
                    None
                }
                _ => None,
            };
            self.seat_buys += u64::from(buyer.is_some_and(|b| is_seat(&b)));
        }
        self.clearing.apply(self.seq, self.now, &events);
        assert!(self.clearing.ledger_balanced());
        events
    }

    fn op(&mut self, action: Action) -> Vec<Event> {
        self.run(Actor::Operator, action)
    }

    fn setup(&mut self) {
        let participants = [
            ("B0", false, true),
            ("B1", false, true),
            ("B2", false, true),
            ("G0", true, false),
            ("G1", true, false),
            ("D0", true, true),
        ];
        for (id, grower, buyer) in participants {
            let events = self.op(Action::RegisterParticipant {
                id: code(id),
                name: id.to_string(),
                roles: Roles { operator: false, grower, buyer, logistics: false },
                credit_limit: Fen(50_000_000),
                token_hash: [0; 32],
                firm: None,
                daily_limit: None,
            });
            let Event::ParticipantRegistered { pk, .. } = events[0] else { panic!("registered") };
            if grower {
                self.growers.push(pk);
            }
            if buyer {
                self.buyers.push(pk);
            }
        }
        // Seats of two firms, one of which also grows: a seat may even buy its firm's lot.
        for (seat, firm) in [("S0", "B0"), ("S1", "B0"), ("S2", "D0")] {
            let events = self.op(Action::RegisterParticipant {
                id: code(seat),
                name: seat.to_string(),
                roles: Roles { operator: false, grower: false, buyer: true, logistics: false },
                credit_limit: Fen::ZERO,
                token_hash: [0; 32],
                firm: Some(code(firm)),
                daily_limit: Some(Fen(20_000_000)),
            });
            let Event::ParticipantRegistered { pk, .. } = events[0] else { panic!("seat {seat} registered") };
            self.buyers.push(pk);
            self.seats.push((code(seat), code(firm)));
        }
        let events = self.op(Action::RegisterParticipant {
            id: code("L0"),
            name: "Cold chain".to_string(),
            roles: Roles { operator: false, grower: false, buyer: false, logistics: true },
            credit_limit: Fen::ZERO,
            token_hash: [0; 32],
            firm: None,
            daily_limit: None,
        });
        let Event::ParticipantRegistered { pk, .. } = events[0] else { panic!("logistics registered") };
        self.logistics = pk;
        self.op(Action::DefineProduct {
            code: code("MOSS"),
            name: "Moss".into(),
            category: Category::Other,
            unit: Unit::Bunch,
            grades: Vec::new(),
        });
        let patch =
            ClockSettingsPatch { multi_buy_ms: Some(300), pause_ms: Some(200), ..ClockSettingsPatch::default() };
        self.op(Action::ConfigureClock { clock: ClockId(1), patch });
    }

    fn pick(&mut self, from: &[Pk]) -> Pk {
        from[self.rng.gen_range(0..from.len())]
    }

    fn morning(&mut self) {
        self.lots_today.clear();
        for _ in 0..self.rng.gen_range(12..30) {
            let grower = self.pick(&self.growers.clone());
            let consignment = Consignment {
                product: code(product(self.rng.gen_range(0..=DEFAULT_PRODUCTS.len()))),
                grade: Grade::DEFAULT_SCALE[self.rng.gen_range(0..3)],
                units_per_container: self.rng.gen_range(1..30),
                containers: self.rng.gen_range(1..12),
                min_price: Fen(self.rng.gen_range(20..200)),
                min_purchase: 1,
                origin: String::new(),
                photo_url: String::new(),
                note: String::new(),
                master: Default::default(),
            };
            let min_price = consignment.min_price;
            let events = self.run(Actor::Participant(grower), Action::ConsignLot(Box::new(consignment)));
            let Event::LotConsigned { lot } = &events[0] else { panic!("consigned") };
            let (lot_id, containers) = (lot.id, lot.containers);
            self.lots_today.push(lot_id);
            if self.rng.gen_bool(0.3) {
                let price = Fen(min_price.0 + self.rng.gen_range(0..150));
                let containers = self.rng.gen_range(1..=containers);
                let offer = Action::OfferPresale { lot: lot_id, price, containers };
                let events = self.run(Actor::Participant(grower), offer);
                assert!(matches!(events[..], [Event::PresaleOffered { .. }]), "offered: {events:?}");
            }
            if self.rng.gen_bool(0.9) {
                let clock = ClockId(self.rng.gen_range(1..=2));
                let start_price = Fen(min_price.0 + self.rng.gen_range(0..200));
                self.op(Action::AssignLot { lot: lot_id, clock, start_price });
            }
        }
        for clock in 1..=2 {
            self.op(Action::StartClock { clock: ClockId(clock) });
        }
        for symbol in symbols() {
            self.op(Action::SetBookState { symbol: code(symbol), state: BookState::Open });
        }
    }

    fn step(&mut self) {
        self.now = self.now.plus_ms(self.rng.gen_range(1..300));
        let roll = self.rng.gen_range(0..100);
        match roll {
            0..=39 => self.press(),
            40..=46 => self.standing_bid(),
            47..=54 => self.void(),
            55..=56 => {
                let clock = ClockId(self.rng.gen_range(1..=2));
                self.op(Action::HaltClock { clock });
                self.op(Action::StartClock { clock });
            }
            57..=58 => {
                let lot = self.lots_today[self.rng.gen_range(0..self.lots_today.len())];
                self.op(Action::WithdrawLot { lot });
            }
            59..=66 => self.buy_presale(),
            67..=69 => self.offer_presale(),
            70..=89 => self.order(),
            90..=93 => self.move_goods(),
            94..=95 => self.complain(),
            96 => self.resolve(),
            97 => {
                let buyer = self.pick(&self.buyers.clone());
                let destination = format!("pickup:D{}", self.rng.gen_range(1..9));
                self.run(Actor::Participant(buyer), Action::SetDestination { day: None, destination });
            }
            _ => {
                self.run(Actor::System, Action::Tick);
            }
        }
    }

    fn press(&mut self) {
        let clock = ClockId(self.rng.gen_range(1..=2));
        let Some(c) = self.market.clock(clock) else { return };
        let (Some(lot), Some(round)) = (c.lot, c.round) else { return };
        let buyer = self.pick(&self.buyers.clone());
        let containers = self.rng.gen_range(1..4);
        self.run(Actor::Participant(buyer), Action::Bid { clock, lot, round: round.number, containers });
    }

    fn standing_bid(&mut self) {
        let lot = self.lots_today[self.rng.gen_range(0..self.lots_today.len())];
        let buyer = self.pick(&self.buyers.clone());
        let max_price = Fen(self.rng.gen_range(20..400));
        let containers = self.rng.gen_range(1..3);
        self.run(Actor::Participant(buyer), Action::StandingBid { lot, max_price, containers });
    }

    /// A buyer (or seat) buys part of an open presale offer, as long as its lot is not on a clock.
    fn buy_presale(&mut self) {
        let offered: Vec<LotId> = self
            .lots_today
            .iter()
            .copied()
            .filter(|l| self.market.lot(*l).is_some_and(|l| l.presale.is_some()))
            .collect();
        if offered.is_empty() {
            return;
        }
        let lot = offered[self.rng.gen_range(0..offered.len())];
        let buyer = self.pick(&self.buyers.clone());
        let containers = self.rng.gen_range(1..4);
        self.run(Actor::Participant(buyer), Action::BuyPresale { lot, containers });
    }

    /// A grower offers part of one of its lots (refused once the lot is on the clock or done).
    fn offer_presale(&mut self) {
        let lot = self.lots_today[self.rng.gen_range(0..self.lots_today.len())];
        let Some(l) = self.market.lot(lot) else { return };
        let (grower, remaining, min_price) = (l.grower, l.remaining, l.min_price);
        if remaining == 0 {
            return;
        }
        let price = Fen(min_price.0 + self.rng.gen_range(0..150));
        let containers = self.rng.gen_range(1..=remaining);
        self.run(Actor::Participant(grower), Action::OfferPresale { lot, price, containers });
    }

    fn void(&mut self) {
        let clock = ClockId(self.rng.gen_range(1..=2));
        let Some(c) = self.market.clock(clock) else { return };
        let Some(lot) = c.lot else { return };
        let Some(record) = c.awards.iter().rev().find(|a| !a.voided) else { return };
        let round = record.round;
        self.op(Action::VoidAward { clock, lot, round, buyer: None });
    }

    /// The lines the core keeps (today's and the previous day's), for the random steps.
    fn lines(&self) -> Vec<huashi_engine::core::dispatch::DispatchView> {
        let today = self.market.day();
        let mut lines = self.market.dispatch_lines(today, None).unwrap_or_default();
        if let Some(previous) = self.market.dispatch_previous_day() {
            lines.extend(self.market.dispatch_lines(previous, None).unwrap_or_default());
        }
        lines
    }

    /// Logistics moves a random line on (or back, which the core refuses), sometimes with a
    /// reading above a cut flower's 8 °C.
    fn move_goods(&mut self) {
        let lines = self.lines();
        if lines.is_empty() {
            return;
        }
        let line = &lines[self.rng.gen_range(0..lines.len())];
        let status = DispatchStatus::ALL[self.rng.gen_range(0..DispatchStatus::ALL.len())];
        let temperature = self.rng.gen_bool(0.7).then(|| Centi(self.rng.gen_range(-200..1_200)));
        let location = self.rng.gen_bool(0.5).then(|| format!("dock {}", self.rng.gen_range(1..5)));
        let action = Action::UpdateDispatch { reference: line.reference, status, temperature, location };
        self.run(Actor::Participant(self.logistics), action);
    }

    /// A buyer (or its seat, or its firm) complains about one of its lines, or someone else's
    /// (refused).
    fn complain(&mut self) {
        let lines = self.lines();
        if lines.is_empty() {
            return;
        }
        let line = &lines[self.rng.gen_range(0..lines.len())];
        let buyer = match line.seat {
            Some((seat, _)) if self.rng.gen_bool(0.5) => seat,
            _ if self.rng.gen_bool(0.9) => line.buyer,
            _ => self.pick(&self.buyers.clone()),
        };
        let quantity = line.containers.unwrap_or(line.units);
        let containers = self.rng.gen_range(1..=quantity.max(1));
        let reason = ComplaintReason::ALL[self.rng.gen_range(0..4)];
        let action = Action::FileComplaint { reference: line.reference, reason, containers, note: String::new() };
        self.run(Actor::Participant(buyer), action);
    }

    /// The operator decides the oldest open complaint: mostly accepted with a credit up to the
    /// complained amount.
    fn resolve(&mut self) {
        let Some(complaint) = self.market.open_complaints().next() else { return };
        let (id, most) = (complaint.id, complaint.credit_max.0);
        let (decision, credit) = match self.rng.gen_range(0..10) {
            0..=1 => (Decision::Rejected, Fen::ZERO),
            2 => (Decision::Accepted, Fen::ZERO),
            _ => (Decision::Accepted, Fen(self.rng.gen_range(0..=most))),
        };
        self.op(Action::ResolveComplaint { complaint: id, decision, credit });
    }

    /// Clearing's dispatch lines of the days the core keeps are the core's, and its copy of each
    /// of today's lots is the core's lot.
    fn check_goods(&self) {
        let today = self.market.day();
        for day in [Some(today), self.market.dispatch_previous_day()].into_iter().flatten() {
            let core = self.market.dispatch_lines(day, None).expect("the core keeps the day");
            let ours = self.clearing.goods_of_day(day).expect("clearing keeps the day");
            assert_eq!(ours.lines.len(), core.len(), "lines of {day}");
            for view in &core {
                let line = &ours.lines[&view.reference];
                assert_eq!(
                    (line.buyer, line.seat, line.containers, line.units, line.product, line.grade),
                    (view.buyer_id, view.seat.map(|s| s.1), view.containers, view.units, view.product, view.grade),
                    "line {}",
                    view.reference
                );
                assert_eq!(
                    (line.status, &line.location, line.temperature, line.alarm, &line.destination),
                    (view.status, &view.location, view.temperature, view.alarm, &view.destination),
                    "line {}",
                    view.reference
                );
                // What `get_dispatch` shows (clearing answers it) is the core's view, whole.
                assert_eq!(line.view(day), *view, "line {} as get_dispatch shows it", view.reference);
            }
        }
        for lot in self.market.lots().values() {
            let trace = self.clearing.lot_trace(lot.id).expect("today's lot has a trace");
            assert_eq!(public(&trace.trace.lot), public(lot), "lot {}", lot.id.0);
            assert_start_price(&trace.trace.lot, lot);
            let sold: u32 = trace.trace.sales.iter().map(|s| s.containers).sum();
            assert_eq!(sold, lot.sold, "lot {}'s sales", lot.id.0);
        }
    }

    fn order(&mut self) {
        let side = if self.rng.gen_bool(0.5) { Side::Buy } else { Side::Sell };
        let owner = match side {
            Side::Buy => self.pick(&self.buyers.clone()),
            Side::Sell => self.pick(&self.growers.clone()),
        };
        let client_order_id = code(&format!("o{}", self.next_client_order));
        self.next_client_order += 1;
        let entry = OrderEntry {
            client_order_id,
            symbol: code(DEFAULT_INSTRUMENTS[self.rng.gen_range(0..DEFAULT_INSTRUMENTS.len())].0),
            side,
            order_type: OrderType::Limit,
            price: Some(Fen(self.rng.gen_range(95..106))),
            quantity: self.rng.gen_range(1..300),
            time_in_force: if self.rng.gen_bool(0.3) { TimeInForce::Ioc } else { TimeInForce::Day },
            post_only: false,
        };
        self.run(Actor::Participant(owner), Action::NewOrder(entry));
    }

    /// Each participant's running statement (a seat's view) equals the core's account for the
    /// day; a firm's statement is its seats' views plus its own trades.
    fn check_accounts(&self) {
        let day = self.clearing.day();
        for participant in self.market.participants().iter() {
            let StatementLookup::Found(statement) = self.clearing.statement(&participant.id, day) else {
                panic!("today's statement is in memory")
            };
            let firm = participant.firm.map(|f| self.market.participants().get(f).id);
            assert_eq!(statement.view_of, firm, "{}'s statement is a view iff it is a seat", participant.id);
            assert_eq!(self.clearing.firm_of(&participant.id), firm);
            self.check_firm(&statement);
            let account = &participant.account;
            let fen = |d| huashi_clearing::money::to_fen(d);
            assert_eq!(
                (
                    fen(statement.total_bought),
                    fen(statement.total_sold),
                    fen(statement.fees),
                    fen(statement.commission)
                ),
                (account.bought, account.sold, account.fees, account.commission),
                "{} on {day}",
                participant.id
            );
        }
    }

    /// A firm's statement is its own lines plus each seat's view, lines and totals.
    fn check_firm(&self, statement: &Statement) {
        if statement.is_view() {
            return;
        }
        let (mut lines, mut bought, mut fees) = (0, statement.total_bought, statement.fees);
        for (seat, _) in self.seats.iter().filter(|(_, firm)| *firm == statement.participant) {
            let StatementLookup::Found(view) = self.clearing.statement(seat, statement.day) else {
                panic!("{seat}'s view of today")
            };
            assert_eq!(view, statement.seat_view(*seat));
            assert!(view.lines.iter().all(|l| l.side == Side::Buy && l.seat == Some(*seat)));
            lines += view.lines.len();
            bought -= view.total_bought;
            fees -= view.fees;
        }
        let own: Vec<_> = statement.lines.iter().filter(|l| l.seat.is_none()).collect();
        assert_eq!(lines + own.len(), statement.lines.len(), "{}'s lines", statement.participant);
        // A correction is no purchase: it counts in `corrections`, not in `total_bought`.
        let own_buys = own.iter().filter(|l| l.side == Side::Buy && l.kind != TradeKind::Correction);
        assert_eq!(bought, own_buys.clone().map(|l| l.amount).sum::<rust_decimal::Decimal>());
        assert_eq!(fees, own_buys.map(|l| l.fee).sum::<rust_decimal::Decimal>());
    }

    fn evening(&mut self) {
        for clock in 1..=2 {
            if self.market.clock(ClockId(clock)).is_some_and(|c| c.phase != ClockPhase::Idle) {
                self.op(Action::HaltClock { clock: ClockId(clock) });
            }
        }
        for symbol in symbols() {
            self.op(Action::SetBookState { symbol: code(symbol), state: BookState::Closed });
        }
        self.check_accounts();
        self.check_goods();
        // The lots as the core ends them: clearing's final copies must be these.
        let mut ended: Vec<Lot> = self.market.lots().values().cloned().collect();
        for lot in &mut ended {
            if !lot.status.is_finished() {
                lot.clock = None;
                lot.finish();
            }
        }
        let events = self.op(Action::EndOfDay);
        assert!(matches!(events.last(), Some(Event::DaySettled { .. })), "the day settled");
        let settled = self.clearing.take_settled_day().expect("a settled day");
        assert!(
            (settled.statements.iter().map(|s| s.net).sum::<rust_decimal::Decimal>() + settled.summary.fees).is_zero()
        );
        assert!(settled
            .statements
            .iter()
            .all(|s| !s.is_view() && !self.seats.iter().any(|(seat, _)| *seat == s.participant)));
        // Presales are statement lines of kind presale and count in their cells like any sale.
        let presales: Vec<_> = settled.trades.iter().filter(|t| t.kind == TradeKind::Presale).collect();
        let presale_lines = settled.statements.iter().flat_map(|s| &s.lines).filter(|l| l.kind == TradeKind::Presale);
        assert_eq!(presale_lines.count(), 2 * presales.len(), "a buy and a sell line per presale");
        for cell in &settled.market.cells {
            let sales = settled.trades.iter().filter(|t| t.product == cell.product && t.grade == cell.grade);
            assert_eq!(cell.trades, sales.clone().count() as u64, "{} {}", cell.product, cell.grade);
            assert_eq!(cell.turnover, sales.map(|t| t.amount).sum::<rust_decimal::Decimal>());
        }
        assert_eq!(settled.lots.len(), self.lots_today.len());
        assert!(settled.lots.iter().all(|l| l.open == 0));
        for lot in &ended {
            let trace = self.clearing.lot_trace(lot.id).expect("the settled day's traces stay a day");
            assert_eq!(public(&trace.trace.lot), public(lot), "lot {} as the day ended", lot.id.0);
            assert_start_price(&trace.trace.lot, lot);
            assert!(lot.status != LotStatus::OnClock && lot.status != LotStatus::Queued);
        }
        while let Some(goods) = self.clearing.take_goods_day() {
            assert!(goods.day <= settled.day());
        }
        self.check_goods();
    }
}

/// A start price set by `assign_lot` reaches clearing only with a copy of the lot (on the clock,
/// or among the six next of its supply line): until then clearing's copy has none.
fn assert_start_price(ours: &Lot, core: &Lot) {
    assert!(ours.start_price.is_none() || ours.start_price == core.start_price, "lot {}'s start price", core.id.0);
    if ours.start_price.is_none() && core.start_price.is_some() {
        assert!(core.rounds == 0, "lot {} reached the clock without its start price", core.id.0);
    }
}

/// What a lot object shows (protocol §5), as a comparable tuple (the start price apart).
#[allow(clippy::type_complexity)]
fn public(lot: &Lot) -> (LotStatus, u32, u32, u32, Option<ClockId>, Option<u32>, Option<(Fen, u32)>, Option<u32>, u32) {
    (
        lot.status,
        lot.remaining,
        lot.sold,
        lot.unsold,
        lot.clock,
        lot.position,
        lot.presale.map(|p| (p.price, p.containers)),
        lot.qi,
        lot.presales,
    )
}

#[test]
fn clearing_agrees_with_the_core_over_random_days() {
    for seed in 0..6 {
        let mut driver = Driver::new(seed);
        driver.setup();
        for _ in 0..5 {
            driver.morning();
            for _ in 0..400 {
                driver.step();
                if driver.rng.gen_ratio(1, 50) {
                    driver.check_accounts();
                    driver.check_goods();
                }
            }
            driver.evening();
        }
        assert_eq!(driver.clearing.index_history().len(), 5);
        assert!(
            driver.awards > 50
                && driver.voids > 2
                && driver.trades > 50
                && driver.presales > 10
                && driver.seat_buys > 20,
            "awards {} voids {} trades {} presales {} seat purchases {}",
            driver.awards,
            driver.voids,
            driver.trades,
            driver.presales,
            driver.seat_buys
        );
        assert!(
            driver.moves > 50 && driver.complaints > 10 && driver.credits > 5,
            "moves {} complaints {} credits {}",
            driver.moves,
            driver.complaints,
            driver.credits
        );
        eprintln!(
            "seed {seed}: {} awards, {} voids, {} book trades, {} presales, {} seat purchases, {} moves, \
             {} complaints, {} credits",
            driver.awards,
            driver.voids,
            driver.trades,
            driver.presales,
            driver.seat_buys,
            driver.moves,
            driver.complaints,
            driver.credits
        );
    }
}
