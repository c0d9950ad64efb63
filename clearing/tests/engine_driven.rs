//! Clearing fed by the real market core: random days of clocks (live presses, standing bids,
//! multi-buy, voids, halts) and books, every command's events applied in seq order. Clearing's own
//! assertions check every fee against the core's and the day's totals against `DaySettled`; this
//! test also checks each participant's running statement against the core's account.

use huashi_clearing::{Clearing, ClearingConfig, StatementLookup};
use huashi_engine::command::{Action, Actor, ClockSettingsPatch, Command, Consignment, OrderEntry, Roles};
use huashi_engine::core::book::{BookState, OrderType, TimeInForce};
use huashi_engine::core::catalogue::{Category, Grade, Unit, DEFAULT_INSTRUMENTS, DEFAULT_PRODUCTS};
use huashi_engine::core::clock::ClockPhase;
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
        }
    }

    fn run(&mut self, actor: Actor, action: Action) -> Vec<Event> {
        let mut events = Vec::new();
        self.seq += 1;
        self.market.apply(&Command::new(actor, action), self.now, &mut events);
        for event in &events {
            match event {
                Event::Awarded(_) => self.awards += 1,
                Event::AwardVoided { .. } => self.voids += 1,
                Event::Traded(_) => self.trades += 1,
                _ => {}
            }
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
                roles: Roles { operator: false, grower, buyer },
                credit_limit: Fen(50_000_000),
                token_hash: [0; 32],
            });
            let Event::ParticipantRegistered { pk, .. } = events[0] else { panic!("registered") };
            if grower {
                self.growers.push(pk);
            }
            if buyer {
                self.buyers.push(pk);
            }
        }
        self.op(Action::DefineProduct {
            code: code("MOSS"),
            name: "Moss".into(),
            category: Category::Other,
            unit: Unit::Bunch,
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
            };
            let min_price = consignment.min_price;
            let events = self.run(Actor::Participant(grower), Action::ConsignLot(Box::new(consignment)));
            let Event::LotConsigned { lot } = &events[0] else { panic!("consigned") };
            let lot_id = lot.id;
            self.lots_today.push(lot_id);
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
            59..=89 => self.order(),
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

    fn void(&mut self) {
        let clock = ClockId(self.rng.gen_range(1..=2));
        let Some(c) = self.market.clock(clock) else { return };
        let Some(lot) = c.lot else { return };
        let Some(record) = c.awards.iter().rev().find(|a| !a.voided) else { return };
        let round = record.round;
        self.op(Action::VoidAward { clock, lot, round, buyer: None });
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

    /// Each participant's running statement equals the core's account for the day.
    fn check_accounts(&self) {
        let day = self.clearing.day();
        for participant in self.market.participants().iter() {
            let StatementLookup::Found(statement) = self.clearing.statement(&participant.id, day) else {
                panic!("today's statement is in memory")
            };
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
        let events = self.op(Action::EndOfDay);
        assert!(matches!(events.last(), Some(Event::DaySettled { .. })), "the day settled");
        let settled = self.clearing.take_settled_day().expect("a settled day");
        assert!(
            (settled.statements.iter().map(|s| s.net).sum::<rust_decimal::Decimal>() + settled.summary.fees).is_zero()
        );
        assert_eq!(settled.lots.len(), self.lots_today.len());
        assert!(settled.lots.iter().all(|l| l.open == 0));
    }
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
                }
            }
            driver.evening();
        }
        assert_eq!(driver.clearing.index_history().len(), 5);
        assert!(
            driver.awards > 50 && driver.voids > 2 && driver.trades > 50,
            "awards {} voids {} trades {}",
            driver.awards,
            driver.voids,
            driver.trades
        );
        eprintln!("seed {seed}: {} awards, {} voids, {} book trades", driver.awards, driver.voids, driver.trades);
    }
}
