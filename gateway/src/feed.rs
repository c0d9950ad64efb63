//! The public feed's view of the market and its messages (protocol section 9).
//!
//! `FeedView` lives on the fan-out thread: it starts from the recovered market and is updated
//! from every engine event in seq order, so a new subscriber's `snapshot` and the first event it
//! receives after it are consistent. Each public event is rendered once, with its feed `seq`.

use crate::wire::render::{book_state, DayText, LotJson, Money};
use huashi_engine::command::ClockSettings;
use huashi_engine::core::book::BookState;
use huashi_engine::core::clock::ClockPhase;
use huashi_engine::core::lots::Lot;
use huashi_engine::core::Market;
use huashi_engine::event::Event;
use huashi_engine::types::{ClockId, Code, Day, EngineTime, Fen, Side};
use serde::Serialize;
use std::collections::BTreeMap;

/// What a feed client sees of one clock.
#[derive(Clone, Debug, PartialEq, Eq)]
struct ClockView {
    settings: ClockSettings,
    phase: ClockPhase,
    lot: Option<Box<Lot>>,
    round: Option<u32>,
    start_price: Option<Fen>,
    step: Fen,
    tick_ms: u32,
    start_ts: Option<EngineTime>,
    /// The next (up to) six lots of the supply line (`lot_on_clock`, `supply_line`).
    next: Vec<Lot>,
}

impl ClockView {
    fn clear_lot(&mut self) {
        self.lot = None;
        self.round = None;
        self.start_price = None;
        self.start_ts = None;
        self.step = self.settings.step;
        self.tick_ms = self.settings.tick_ms;
    }

    /// While a lot is on the clock nothing of it is unsold yet: what is not remaining is sold.
    fn set_remaining(&mut self, remaining: u32) {
        if let Some(lot) = &mut self.lot {
            lot.remaining = remaining;
            lot.sold = lot.containers - remaining - lot.unsold;
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct BookView {
    state: Option<BookState>,
    bids: BTreeMap<Fen, u64>,
    asks: BTreeMap<Fen, u64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedView {
    day: Day,
    clocks: Vec<ClockView>,
    books: BTreeMap<Code, BookView>,
    /// The latest published value of each index (from clearing), for the snapshot.
    index: BTreeMap<&'static str, Fen>,
}

impl FeedView {
    pub fn new(market: &Market) -> FeedView {
        let clocks = market
            .clocks()
            .iter()
            .map(|c| {
                let lot = c.lot.and_then(|id| market.lot(id)).map(|lot| Box::new(lot.clone()));
                let round = c.round.filter(|_| lot.is_some());
                ClockView {
                    settings: c.settings,
                    phase: c.phase,
                    round: round.map(|r| r.number),
                    start_price: round.map(|r| r.start_price).or(lot.as_ref().and_then(|l| l.start_price)),
                    step: round.map_or(c.settings.step, |r| r.step),
                    tick_ms: round.map_or(c.settings.tick_ms, |r| r.tick_ms),
                    start_ts: round.map(|r| r.start_ts),
                    lot,
                    next: market.next_lots(c.id).into_iter().cloned().collect(),
                }
            })
            .collect();
        let books = market
            .listings()
            .iter()
            .map(|(symbol, listing)| {
                let book = &listing.book;
                let view = BookView {
                    state: Some(book.state()),
                    bids: book.depth(Side::Buy, usize::MAX).into_iter().collect(),
                    asks: book.depth(Side::Sell, usize::MAX).into_iter().collect(),
                };
                (*symbol, view)
            })
            .collect();
        FeedView { day: market.day(), clocks, books, index: BTreeMap::new() }
    }

    pub fn day(&self) -> Day {
        self.day
    }

    /// Changes a lot shown in some clock's `next`, wherever it is.
    fn update_next(&mut self, lot: huashi_engine::types::LotId, change: impl Fn(&mut Lot)) {
        for view in &mut self.clocks {
            view.next.iter_mut().filter(|l| l.id == lot).for_each(&change);
        }
    }

    fn clock(&mut self, clock: ClockId) -> Option<&mut ClockView> {
        self.clocks.get_mut((clock.0 as usize).wrapping_sub(1))
    }

    /// Follows one engine event (public or not: settings and new instruments matter too).
    pub fn apply(&mut self, event: &Event) {
        match event {
            Event::ClockConfigured { clock, settings } => {
                if let Some(view) = self.clock(*clock) {
                    view.settings = *settings;
                    if view.round.is_none() {
                        view.step = settings.step;
                        view.tick_ms = settings.tick_ms;
                    }
                }
            }
            Event::ClockState { clock, phase } => {
                if let Some(view) = self.clock(*clock) {
                    view.phase = *phase;
                    if *phase == ClockPhase::Idle {
                        view.clear_lot();
                    }
                }
            }
            Event::LotOnClock { clock, lot, start_price, next } => {
                if let Some(view) = self.clock(*clock) {
                    view.clear_lot();
                    view.lot = Some(lot.clone());
                    view.start_price = Some(*start_price);
                    view.next = next.clone();
                }
            }
            Event::SupplyLine { clock, next } => {
                if let Some(view) = self.clock(*clock) {
                    view.next = next.clone();
                }
            }
            // A presale changes what a lot in a supply line offers: keep `next` current.
            Event::PresaleOffered { lot, .. }
            | Event::PresaleWithdrawn { lot, .. }
            | Event::PresaleClosed { lot, .. } => {
                let offer = match event {
                    Event::PresaleOffered { price, containers, .. } => {
                        Some(huashi_engine::core::lots::PresaleOffer { price: *price, containers: *containers })
                    }
                    _ => None,
                };
                self.update_next(*lot, |l| l.presale = offer);
            }
            Event::PresaleBought(sale) => {
                let (left, remaining, price) = (sale.offer_left, sale.remaining, sale.price);
                self.update_next(sale.lot, |l| {
                    l.presale =
                        (left > 0).then_some(huashi_engine::core::lots::PresaleOffer { price, containers: left });
                    l.remaining = remaining;
                    l.sold = l.containers - remaining - l.unsold;
                });
            }
            Event::ClockStarted { clock, round, start_price, step, tick_ms, start_ts, remaining, .. } => {
                if let Some(view) = self.clock(*clock) {
                    view.round = Some(*round);
                    view.start_price = Some(*start_price);
                    view.step = *step;
                    view.tick_ms = *tick_ms;
                    view.start_ts = Some(*start_ts);
                    view.set_remaining(*remaining);
                }
            }
            Event::Awarded(award) => {
                if let Some(view) = self.clock(award.clock) {
                    view.set_remaining(award.remaining);
                }
            }
            Event::AwardVoided { clock, remaining, .. } | Event::LotUnsold { clock, remaining, .. } => {
                if let Some(view) = self.clock(*clock) {
                    view.set_remaining(*remaining);
                }
            }
            Event::InstrumentDefined { symbol } => {
                self.books
                    .entry(*symbol)
                    .or_insert_with(|| BookView { state: Some(BookState::Closed), ..BookView::default() });
            }
            Event::BookStateChanged { symbol, state } => {
                self.books.entry(*symbol).or_default().state = Some(*state);
            }
            Event::BookLevel { symbol, side, price, quantity } => {
                let book = self.books.entry(*symbol).or_default();
                let levels = match side {
                    Side::Buy => &mut book.bids,
                    Side::Sell => &mut book.asks,
                };
                if *quantity == 0 {
                    levels.remove(price);
                } else {
                    levels.insert(*price, *quantity);
                }
            }
            Event::DaySettled { next_day, .. } => self.day = *next_day,
            _ => {}
        }
    }

    /// The `snapshot` a new subscriber receives, as of feed seq `seq`.
    pub fn snapshot(&self, seq: u64) -> String {
        let clocks = self
            .clocks
            .iter()
            .enumerate()
            .map(|(i, c)| ClockJson {
                clock: i as u16 + 1,
                state: c.phase.as_str(),
                lot_id: c.lot.as_ref().map(|l| l.id.0),
                lot: c.lot.as_ref().map(|l| LotJson::new(l, false)),
                round: c.round,
                start_price: c.start_price.map(Money),
                step: Money(c.step),
                tick_ms: c.tick_ms,
                start_ts: c.start_ts.map(|t| t.0),
                remaining: c.lot.as_ref().map(|l| l.remaining),
                next: c.next.iter().map(|l| LotJson::new(l, false)).collect(),
            })
            .collect();
        let books = self
            .books
            .iter()
            .map(|(symbol, b)| BookJson {
                symbol: *symbol,
                state: book_state(b.state.unwrap_or(BookState::Closed)),
                bids: b.bids.iter().rev().map(|(p, q)| (Money(*p), *q)).collect(),
                asks: b.asks.iter().map(|(p, q)| (Money(*p), *q)).collect(),
            })
            .collect();
        let index = self.index.iter().map(|(code, value)| (*code, Money(*value))).collect();
        let snapshot = FeedMsg::Snapshot { seq, day: DayText(self.day), clocks, books, index };
        serde_json::to_string(&snapshot).expect("snapshots serialise")
    }
}

#[derive(Serialize)]
struct ClockJson<'a> {
    clock: u16,
    state: &'static str,
    lot: Option<LotJson<'a>>,
    lot_id: Option<u64>,
    round: Option<u32>,
    start_price: Option<Money>,
    step: Money,
    tick_ms: u32,
    start_ts: Option<u64>,
    remaining: Option<u32>,
    next: Vec<LotJson<'a>>,
}

/// One clock of the `catalogue` event: its lots' ids in auction order.
#[derive(Serialize)]
struct CatalogueIds {
    clock: u16,
    lot_ids: Vec<u64>,
}

#[derive(Serialize)]
struct BookJson {
    symbol: Code,
    state: &'static str,
    bids: Vec<(Money, u64)>,
    asks: Vec<(Money, u64)>,
}

/// Everything `/feed` sends.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum FeedMsg<'a> {
    Snapshot {
        seq: u64,
        day: DayText,
        clocks: Vec<ClockJson<'a>>,
        books: Vec<BookJson>,
        /// The latest value of each published index.
        index: BTreeMap<&'static str, Money>,
    },
    LotOnClock {
        seq: u64,
        clock: u16,
        lot: Box<LotJson<'a>>,
        start_price: Money,
        next: Vec<LotJson<'a>>,
    },
    SupplyLine {
        seq: u64,
        clock: u16,
        next: Vec<LotJson<'a>>,
    },
    Presale {
        seq: u64,
        lot_id: u64,
        action: &'static str,
        price: Money,
        containers_left: u32,
    },
    Catalogue {
        seq: u64,
        day: DayText,
        clocks: Vec<CatalogueIds>,
    },
    ClockStarted {
        seq: u64,
        clock: u16,
        lot_id: u64,
        round: u32,
        start_price: Money,
        step: Money,
        tick_ms: u32,
        start_ts: u64,
        remaining: u32,
    },
    ClockAward {
        seq: u64,
        clock: u16,
        lot_id: u64,
        round: u32,
        price: Money,
        containers: u32,
        remaining: u32,
        ts: u64,
    },
    AwardVoided {
        seq: u64,
        clock: u16,
        lot_id: u64,
        round: u32,
        containers: u32,
        remaining: u32,
    },
    LotUnsold {
        seq: u64,
        clock: u16,
        lot_id: u64,
        round: u32,
        remaining: u32,
        ts: u64,
    },
    ClockState {
        seq: u64,
        clock: u16,
        state: &'static str,
    },
    Book {
        seq: u64,
        symbol: Code,
        side: &'static str,
        price: Money,
        quantity: u64,
    },
    Trade {
        seq: u64,
        symbol: Code,
        trade_id: u64,
        price: Money,
        quantity: u64,
        aggressor: &'static str,
        ts: u64,
    },
    BookState {
        seq: u64,
        symbol: Code,
        state: &'static str,
    },
    DaySettled {
        seq: u64,
        day: DayText,
        next_day: DayText,
    },
}

/// The feed message for a public event, numbered `seq`; `None` for events the feed does not carry.
pub fn render_public(event: &Event, seq: u64) -> Option<String> {
    let msg = match event {
        Event::LotOnClock { clock, lot, start_price, next } => FeedMsg::LotOnClock {
            seq,
            clock: clock.0,
            lot: Box::new(LotJson::new(lot, false)),
            start_price: Money(*start_price),
            next: next.iter().map(|l| LotJson::new(l, false)).collect(),
        },
        Event::SupplyLine { clock, next } => {
            FeedMsg::SupplyLine { seq, clock: clock.0, next: next.iter().map(|l| LotJson::new(l, false)).collect() }
        }
        Event::PresaleOffered { lot, price, containers, .. } => FeedMsg::Presale {
            seq,
            lot_id: lot.0,
            action: "offered",
            price: Money(*price),
            containers_left: *containers,
        },
        Event::PresaleBought(sale) => FeedMsg::Presale {
            seq,
            lot_id: sale.lot.0,
            action: "bought",
            price: Money(sale.price),
            containers_left: sale.offer_left,
        },
        Event::PresaleWithdrawn { lot, price, .. } => {
            FeedMsg::Presale { seq, lot_id: lot.0, action: "withdrawn", price: Money(*price), containers_left: 0 }
        }
        Event::PresaleClosed { lot, price, .. } => {
            FeedMsg::Presale { seq, lot_id: lot.0, action: "closed", price: Money(*price), containers_left: 0 }
        }
        Event::Catalogue { day, clocks } => FeedMsg::Catalogue {
            seq,
            day: DayText(*day),
            clocks: clocks
                .iter()
                .map(|(clock, ids)| CatalogueIds { clock: clock.0, lot_ids: ids.iter().map(|l| l.0).collect() })
                .collect(),
        },
        Event::ClockStarted { clock, lot, round, start_price, step, tick_ms, start_ts, remaining } => {
            FeedMsg::ClockStarted {
                seq,
                clock: clock.0,
                lot_id: lot.0,
                round: *round,
                start_price: Money(*start_price),
                step: Money(*step),
                tick_ms: *tick_ms,
                start_ts: start_ts.0,
                remaining: *remaining,
            }
        }
        Event::Awarded(a) => FeedMsg::ClockAward {
            seq,
            clock: a.clock.0,
            lot_id: a.lot.0,
            round: a.round,
            price: Money(a.price),
            containers: a.containers,
            remaining: a.remaining,
            ts: a.ts.0,
        },
        Event::AwardVoided { clock, lot, round, containers, remaining, .. } => FeedMsg::AwardVoided {
            seq,
            clock: clock.0,
            lot_id: lot.0,
            round: *round,
            containers: *containers,
            remaining: *remaining,
        },
        Event::LotUnsold { clock, lot, round, remaining, ts, .. } => {
            FeedMsg::LotUnsold { seq, clock: clock.0, lot_id: lot.0, round: *round, remaining: *remaining, ts: ts.0 }
        }
        Event::ClockState { clock, phase } => FeedMsg::ClockState { seq, clock: clock.0, state: phase.as_str() },
        Event::BookLevel { symbol, side, price, quantity } => {
            FeedMsg::Book { seq, symbol: *symbol, side: side.as_str(), price: Money(*price), quantity: *quantity }
        }
        Event::Traded(t) => FeedMsg::Trade {
            seq,
            symbol: t.symbol,
            trade_id: t.trade_id.0,
            price: Money(t.price),
            quantity: t.quantity,
            aggressor: t.aggressor.as_str(),
            ts: t.ts.0,
        },
        Event::BookStateChanged { symbol, state } => {
            FeedMsg::BookState { seq, symbol: *symbol, state: book_state(*state) }
        }
        Event::DaySettled { day, next_day, .. } => {
            FeedMsg::DaySettled { seq, day: DayText(*day), next_day: DayText(*next_day) }
        }
        _ => return None,
    };
    Some(serde_json::to_string(&msg).expect("feed messages serialise"))
}

/// Fen from a clearing decimal with 2 decimal places (index values, prices).
fn decimal_fen(value: rust_decimal::Decimal) -> Fen {
    use rust_decimal::prelude::ToPrimitive;
    Fen((value * rust_decimal::Decimal::ONE_HUNDRED).round().to_i64().unwrap_or(i64::MAX))
}

impl FeedView {
    /// Keeps the latest index values for the snapshot.
    pub fn apply_market_data(&mut self, data: &huashi_clearing::MarketData) {
        if let huashi_clearing::MarketData::Index(value) = data {
            self.index.insert(value.code.as_str(), decimal_fen(value.value));
        }
    }
}

/// A clearing publication as a public feed event (`stats` or `index`, protocol section 9).
pub fn render_market_data(data: &huashi_clearing::MarketData, seq: u64) -> String {
    let money = |v: Option<rust_decimal::Decimal>| v.map(|v| Money(decimal_fen(v)));
    let msg = match data {
        huashi_clearing::MarketData::Stats(cell) => serde_json::json!({
            "type": "stats",
            "seq": seq,
            "product": cell.product,
            "grade": cell.grade.as_str(),
            "day": DayText(cell.day),
            "open": money(cell.open),
            "high": money(cell.high),
            "low": money(cell.low),
            "last": money(cell.last),
            "vwap": money(cell.vwap),
            "units": cell.units,
            "turnover": Money(decimal_fen(cell.turnover)),
            "trades": cell.trades,
        }),
        huashi_clearing::MarketData::Index(value) => serde_json::json!({
            "type": "index",
            "seq": seq,
            "code": value.code.as_str(),
            "value": Money(decimal_fen(value.value)),
            "day": DayText(value.day),
            "ts": value.ts.0,
            "final": value.is_final,
        }),
    };
    msg.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use huashi_engine::command::{Action, Actor, Command, Consignment, OrderEntry, Roles};
    use huashi_engine::core::book::{OrderType, TimeInForce};
    use huashi_engine::core::catalogue::Grade;
    use huashi_engine::core::MarketConfig;
    use huashi_engine::types::LotId;
    use serde_json::{json, Value};

    struct Sim {
        market: Market,
        view: FeedView,
        now: u64,
        public: Vec<Value>,
    }

    impl Sim {
        fn new() -> Sim {
            let market = Market::new(MarketConfig::new(Day::parse("2026-11-29").unwrap()));
            let view = FeedView::new(&market);
            Sim { market, view, now: 1_800_000_000_000_000, public: Vec::new() }
        }

        fn run(&mut self, actor: Actor, action: Action, advance_ms: u64) {
            self.now += advance_ms * 1000;
            let mut events = Vec::new();
            let applied = self.market.apply(&Command::new(actor, action), EngineTime(self.now), &mut events);
            assert_eq!(applied.result, Ok(()));
            for event in &events {
                self.view.apply(event);
                if let Some(text) = render_public(event, self.public.len() as u64 + 1) {
                    assert!(event.is_public());
                    self.public.push(serde_json::from_str(&text).unwrap());
                }
            }
        }

        fn register(&mut self, id: &'static str, grower: bool, buyer: bool) -> Actor {
            let pk = self.market.participants().len() as u32;
            let roles = Roles { operator: false, grower, buyer, logistics: false };
            let action = Action::RegisterParticipant {
                id: Code::from_static(id),
                name: id.into(),
                roles,
                credit_limit: Fen(10_000_000),
                token_hash: [pk as u8; 32],
                firm: None,
                daily_limit: None,
            };
            self.run(Actor::Operator, action, 0);
            Actor::Participant(huashi_engine::types::Pk(pk))
        }

        /// The view rebuilt from the market must equal the view followed event by event.
        fn check_view(&self) {
            assert_eq!(FeedView::new(&self.market).snapshot(7), self.view.snapshot(7));
        }
    }

    fn consignment() -> Consignment {
        Consignment {
            product: Code::from_static("ROSE"),
            grade: Grade::A1,
            units_per_container: 10,
            containers: 5,
            min_price: Fen(100),
            min_purchase: 1,
            origin: String::new(),
            photo_url: String::new(),
            note: String::new(),
            master: Default::default(),
        }
    }

    #[test]
    fn snapshot_of_a_new_market_lists_clocks_and_books() {
        let sim = Sim::new();
        let snapshot: Value = serde_json::from_str(&sim.view.snapshot(0)).unwrap();
        assert_eq!(snapshot["type"], "snapshot");
        assert_eq!(snapshot["seq"], 0);
        assert_eq!(snapshot["day"], "2026-11-29");
        assert_eq!(snapshot["index"], json!({}));
        assert_eq!(snapshot["clocks"].as_array().unwrap().len(), 4);
        assert_eq!(
            snapshot["clocks"][0],
            json!({"clock": 1, "state": "idle", "lot": null, "lot_id": null, "round": null, "start_price": null,
                "step": "0.01", "tick_ms": 10, "start_ts": null, "remaining": null, "next": []})
        );
        let books = snapshot["books"].as_array().unwrap();
        assert_eq!(books.len(), 3);
        assert_eq!(books[0], json!({"symbol": "LILY-A", "state": "closed", "bids": [], "asks": []}));
    }

    #[test]
    fn the_view_follows_a_clock_through_a_sale() {
        let mut sim = Sim::new();
        let grower = sim.register("g1", true, false);
        let buyer = sim.register("b1", false, true);
        sim.run(grower, Action::ConsignLot(Box::new(consignment())), 0);
        sim.run(Actor::Operator, Action::AssignLot { lot: LotId(1), clock: ClockId(1), start_price: Fen(300) }, 0);
        sim.run(Actor::Operator, Action::StartClock { clock: ClockId(1) }, 0);
        sim.check_view();
        // Past the pre-roll the round runs; bid 30 ticks in.
        sim.run(Actor::Operator, Action::Tick, 1_000);
        sim.check_view();
        sim.run(buyer, Action::Bid { clock: ClockId(1), lot: LotId(1), round: 1, containers: 2 }, 300);
        sim.check_view();
        let snapshot: Value = serde_json::from_str(&sim.view.snapshot(9)).unwrap();
        let clock = &snapshot["clocks"][0];
        assert_eq!(clock["state"], "pause");
        assert_eq!(clock["lot_id"], 1);
        assert_eq!(clock["lot"]["lot_id"], 1);
        assert!(clock["lot"].get("min_price").is_none());
        assert_eq!(clock["round"], 1);
        assert_eq!(clock["start_price"], "3.00");
        assert_eq!(clock["remaining"], 3);
        let types: Vec<&str> = sim.public.iter().map(|m| m["type"].as_str().unwrap()).collect();
        assert_eq!(
            types,
            [
                "supply_line",
                "lot_on_clock",
                "clock_state",
                "clock_state",
                "clock_started",
                "clock_award",
                "clock_state"
            ]
        );
        let seqs: Vec<u64> = sim.public.iter().map(|m| m["seq"].as_u64().unwrap()).collect();
        assert_eq!(seqs, [1, 2, 3, 4, 5, 6, 7]);
        // Assigned: the supply line's next six changed; on the clock: `next` is empty again.
        assert_eq!(sim.public[0]["next"][0]["lot_id"], 1);
        assert!(sim.public[0]["next"][0].get("min_price").is_none());
        assert_eq!(sim.public[1]["next"], json!([]));
        assert!(sim.public[1]["lot"].get("min_price").is_none());
        let award = &sim.public[5];
        assert_eq!(award["price"], "2.70");
        assert!(award.get("buyer").is_none());
        assert_eq!(
            sim.public[4].as_object().unwrap().keys().cloned().collect::<Vec<_>>(),
            ["clock", "lot_id", "remaining", "round", "seq", "start_price", "start_ts", "step", "tick_ms", "type"]
        );
        // Halting puts the clock back to idle with no lot.
        sim.run(Actor::Operator, Action::HaltClock { clock: ClockId(1) }, 0);
        sim.check_view();
        let snapshot: Value = serde_json::from_str(&sim.view.snapshot(9)).unwrap();
        assert_eq!(snapshot["clocks"][0]["lot"], Value::Null);
    }

    #[test]
    fn the_view_follows_book_levels_and_trades() {
        let mut sim = Sim::new();
        let grower = sim.register("g1", true, false);
        let buyer = sim.register("b1", false, true);
        let symbol = Code::from_static("ROSE-A");
        sim.run(Actor::Operator, Action::SetBookState { symbol, state: BookState::Open }, 0);
        let order = |id: &'static str, side, price, quantity| {
            Action::NewOrder(OrderEntry {
                client_order_id: Code::from_static(id),
                symbol,
                side,
                order_type: OrderType::Limit,
                price: Some(Fen(price)),
                quantity,
                time_in_force: TimeInForce::Gtc,
                post_only: false,
            })
        };
        sim.run(buyer, order("b1", Side::Buy, 150, 10), 0);
        sim.run(buyer, order("b2", Side::Buy, 160, 5), 0);
        sim.run(grower, order("s1", Side::Sell, 170, 7), 0);
        sim.run(grower, order("s2", Side::Sell, 160, 3), 0);
        sim.check_view();
        let snapshot: Value = serde_json::from_str(&sim.view.snapshot(0)).unwrap();
        let rose = snapshot["books"].as_array().unwrap().iter().find(|b| b["symbol"] == "ROSE-A").unwrap().clone();
        assert_eq!(
            rose,
            json!({"symbol": "ROSE-A", "state": "open", "bids": [["1.60", 2], ["1.50", 10]], "asks": [["1.70", 7]]})
        );
        let trade = sim.public.iter().find(|m| m["type"] == "trade").unwrap();
        assert_eq!(trade["price"], "1.60");
        assert_eq!(trade["quantity"], 3);
        assert_eq!(trade["aggressor"], "sell");
        assert!(trade.get("buyer").is_none());
        let level = sim.public.iter().find(|m| m["type"] == "book").unwrap();
        assert_eq!(
            level.as_object().unwrap().keys().cloned().collect::<Vec<_>>(),
            ["price", "quantity", "seq", "side", "symbol", "type"]
        );
    }
}
