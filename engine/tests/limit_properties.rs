//! The core's limits under hostile command streams (issue 12): no sequence of commands, accepted
//! or rejected, panics the core or grows it past its limits. The limits are set small (and
//! changed mid-stream) so they are hit all the time; quantities, prices, credit limits, fees'
//! bases and clock steps are drawn from the edges (`u64::MAX`, `i64::MAX`, `QUANTITY_MAX ± 1`,
//! `CREDIT_LIMIT_MAX ± 1`, the price band's edges). After every apply:
//!
//! - nothing counted by a limit grew past the limit in force (lowering a limit below what is held
//!   keeps what is there, so the check is: after ≤ max(limit, before));
//! - `check_invariants()` holds (reservations, open-order counts, lots' containers);
//! - a rejected command emitted nothing (`Market::apply` asserts it).
//!
//! A panic anywhere (an overflow in debug builds included) fails the property.

mod common;

use common::*;
use huashi_engine::command::{Action, Actor, ClockSettingsPatch, Command, Consignment, OrderEntry};
use huashi_engine::core::book::{BookState, OrderType, TimeInForce, QUANTITY_MAX};
use huashi_engine::core::catalogue::{Category, Grade, Unit};
use huashi_engine::core::limits::{MarketLimits, MarketLimitsPatch, CREDIT_LIMIT_MAX};
use huashi_engine::core::{Market, MarketConfig};
use huashi_engine::event::Event;
use huashi_engine::reject::RejectCode;
use huashi_engine::types::{ClockId, Code, Day, EngineTime, Fen, LotId, Pk, Side};
use proptest::prelude::*;
use std::collections::BTreeMap;

/// One generated operation: a kind and raw parameters, read modulo whatever they pick.
type RawOp = [u64; 6];

const IDS: [&str; 6] = ["p0", "p1", "p2", "p3", "p4", "p5"];
const SYMBOLS: [&str; 3] = ["ROSE-A", "LILY-A", "X-1"];

fn pick<T: Copy>(items: &[T], k: u64) -> T {
    items[(k % items.len() as u64) as usize]
}

fn quantity(k: u64) -> u64 {
    pick(&[1, 2, 7, QUANTITY_MAX / 2, QUANTITY_MAX, QUANTITY_MAX + 1, u64::MAX / 2, u64::MAX], k)
}

fn count_u32(k: u64) -> u32 {
    pick(&[0, 1, 2, 3, 1_000, u32::MAX / 2, u32::MAX], k)
}

/// Prices: small, huge, and at the edges of a 10 % band around the books' usual 100.
fn price(k: u64) -> Fen {
    Fen(pick(&[1, 90, 91, 99, 100, 101, 110, 111, 1_000_000, i64::MAX / 2, i64::MAX, 0, -1], k))
}

fn credit(k: u64) -> Fen {
    Fen(pick(&[0, 1, 10_000, 5_000_000, CREDIT_LIMIT_MAX, CREDIT_LIMIT_MAX + 1, i64::MAX, -1], k))
}

fn small_limit(k: u64) -> Option<u64> {
    pick(&[None, None, Some(1), Some(2), Some(3)], k)
}

fn limits_patch(raw: &RawOp) -> MarketLimitsPatch {
    // Now and then one limit out of range: the whole patch must then be refused.
    let invalid = pick(&[None, None, None, Some(0), Some(u64::MAX)], raw[5]);
    let patch = MarketLimitsPatch {
        participants_max: small_limit(raw[1]).map(|v| v.saturating_add(2)),
        lots_per_grower_day_max: small_limit(raw[1] >> 8).map(|v| v + 3),
        lots_per_day_max: small_limit(raw[1] >> 32).map(|v| v + 8),
        supply_line_lots_max: small_limit(raw[1] >> 16),
        standing_bids_per_buyer_max: small_limit(raw[1] >> 24),
        orders_open_per_participant_max: small_limit(raw[2]),
        orders_open_total_max: small_limit(raw[2] >> 8).map(|v| v.saturating_mul(2)),
        orders_per_participant_day_max: small_limit(raw[2] >> 16).map(|v| v.saturating_mul(3)),
        level_quantity_max: pick(
            &[None, Some(10), Some(QUANTITY_MAX), Some(u64::MAX), Some(u64::MAX - QUANTITY_MAX)],
            raw[3],
        ),
        products_max: small_limit(raw[4]).map(|v| v.saturating_add(5)),
        instruments_max: small_limit(raw[4] >> 8).map(|v| v.saturating_add(2)),
    };
    match invalid {
        Some(value) => MarketLimitsPatch { supply_line_lots_max: Some(value), ..patch },
        None => patch,
    }
}

/// The generated operation as a command against the market as it stands.
fn command(market: &Market, raw: &RawOp, next_client: &mut u64) -> Command {
    let participants = market.participants().len() as u64;
    let who = |k: u64| {
        if participants == 0 || k.is_multiple_of(11) {
            Actor::Operator
        } else {
            Actor::Participant(Pk((k % participants) as u32))
        }
    };
    let lot = |k: u64| {
        let lots: Vec<LotId> = market.lots().keys().copied().collect();
        if lots.is_empty() {
            LotId(k % 3)
        } else {
            lots[(k % lots.len() as u64) as usize]
        }
    };
    let clock = |k: u64| ClockId((k % 4) as u16);
    let symbol = |k: u64| code(pick(&SYMBOLS, k));
    let participant = |k: u64| code(pick(&IDS, k));
    let action = match raw[0] % 27 {
        0 | 1 => Action::RegisterParticipant {
            id: participant(raw[1]),
            name: pick(&["A", "", " ", "a\u{0}b", "r\u{202E}l"], raw[2]).to_string(),
            roles: roles(raw[3].is_multiple_of(2), !raw[3].is_multiple_of(3)),
            credit_limit: credit(raw[4]),
            token_hash: [raw[1] as u8; 32],
            firm: None,
            daily_limit: None,
        },
        2 => Action::SetLimits(limits_patch(raw)),
        3 => {
            Action::SetCreditLimit { participant: participant(raw[1]), limit: Some(credit(raw[2])), daily_limit: None }
        }
        4 => Action::SetParticipantActive { participant: participant(raw[1]), active: !raw[2].is_multiple_of(8) },
        5 => Action::DefineProduct {
            code: code(pick(&["P1", "P2", "P3", "P4", "P5", "P6", "P7"], raw[1])),
            name: "P".to_string(),
            category: Category::Other,
            unit: Unit::Pot,
            grades: Vec::new(),
        },
        6 => Action::DefineInstrument {
            symbol: code(pick(&["X-1", "X-2", "X-3", "X-4"], raw[1])),
            product: code("ROSE"),
            tick_size: pick(&[Fen(1), Fen(5), Fen(i64::MAX), Fen(0)], raw[2]),
            price_band_pct: pick(&[0, 10, 1_000, 1_001], raw[3]) as u32,
        },
        7 | 8 | 21 => Action::ConsignLot(Box::new(Consignment {
            product: code("ROSE"),
            grade: Grade::A1,
            units_per_container: count_u32(raw[1]),
            containers: count_u32(raw[2]),
            min_price: price(raw[3]),
            min_purchase: pick(&[1, 2, u32::MAX], raw[4]),
            origin: pick(&["Yunnan", "Yunnan", "Yunnan", "bad\u{7}"], raw[5]).to_string(),
            photo_url: String::new(),
            note: pick(&["", "fresh", "", "\u{2066}x"], raw[5] >> 8).to_string(),
            master: Default::default(),
        })),
        9 => Action::AssignLot { lot: lot(raw[1]), clock: clock(raw[2]), start_price: price(raw[3]) },
        10 => Action::StartClock { clock: clock(raw[1]) },
        11 => Action::HaltClock { clock: clock(raw[1]) },
        12 => {
            let (round, c) =
                market.clocks().iter().find_map(|c| c.round.map(|r| (r.number, c.id))).unwrap_or((1, clock(raw[1])));
            Action::Bid { clock: c, lot: lot(raw[2]), round, containers: count_u32(raw[3]) }
        }
        13 => Action::StandingBid { lot: lot(raw[1]), max_price: price(raw[2]), containers: 1 + (raw[3] % 2) as u32 },
        14 => Action::CancelStandingBid { lot: lot(raw[1]) },
        15 => Action::SetBookState {
            symbol: symbol(raw[1]),
            state: pick(&[BookState::Open, BookState::Open, BookState::PreOpen, BookState::Closed], raw[2]),
        },
        16..=19 => {
            *next_client += 1;
            let client = if raw[4].is_multiple_of(5) { *next_client - 1 } else { *next_client };
            let order_type = if raw[5].is_multiple_of(6) { OrderType::Market } else { OrderType::Limit };
            Action::NewOrder(OrderEntry {
                client_order_id: code(&format!("c{client}")),
                symbol: symbol(raw[1]),
                side: if raw[2].is_multiple_of(2) { Side::Buy } else { Side::Sell },
                order_type,
                price: (order_type == OrderType::Limit).then(|| price(raw[3])),
                quantity: quantity(raw[3] >> 8),
                time_in_force: pick(
                    &[TimeInForce::Gtc, TimeInForce::Gtc, TimeInForce::Day, TimeInForce::Ioc],
                    raw[4] >> 8,
                ),
                post_only: false,
            })
        }
        20 => Action::AmendOrder {
            client_order_id: code(&format!("c{}", next_client.saturating_sub(raw[1] % 4))),
            price: (raw[2].is_multiple_of(2)).then(|| price(raw[3])),
            quantity: (!raw[2].is_multiple_of(3)).then(|| quantity(raw[4])),
        },
        22 if raw[4].is_multiple_of(2) => Action::CancelOrders {
            participant: participant(raw[1]),
            symbol: (raw[2].is_multiple_of(2)).then(|| symbol(raw[3])),
        },
        22 => Action::EndOfDay,
        23 if raw[1].is_multiple_of(3) => Action::StandingBid { lot: lot(raw[2]), max_price: Fen(1), containers: 1 },
        23 if raw[1].is_multiple_of(2) => Action::Tick,
        // Queue more lots than the small supply-line limits allow, on the clocks that exist.
        23 => {
            let lot = lot(raw[2]);
            let start_price = market.lot(lot).map_or(Fen(1), |l| l.min_price);
            Action::AssignLot { lot, clock: ClockId(1 + (raw[3] % 3) as u16), start_price }
        }
        24 => Action::VoidAward { clock: clock(raw[1]), lot: lot(raw[2]), round: (raw[3] % 4) as u32, buyer: None },
        25 => Action::WithdrawLot { lot: lot(raw[1]) },
        _ => Action::ConfigureClock {
            clock: clock(raw[1]),
            patch: ClockSettingsPatch {
                step: Some(pick(&[Fen(1), Fen(i64::MAX), Fen(i64::MAX / 3), Fen(0)], raw[2])),
                tick_ms: Some(pick(&[1, 10, 60_000], raw[3])),
                pre_roll_ms: Some(0),
                pause_ms: Some(pick(&[0, 10], raw[3] >> 8)),
                restart_ticks: Some(pick(&[0, 10, 1_000_000], raw[4])),
                multi_buy_ms: Some(pick(&[0, 50], raw[4] >> 8)),
            },
        },
    };
    let operator_business =
        matches!(raw[0] % 27, 0..=6 | 9..=11 | 15 | 22 | 24..=26) || (raw[0] % 27 == 23 && !raw[1].is_multiple_of(3));
    let actor = if operator_business && !raw[5].is_multiple_of(7) { Actor::Operator } else { who(raw[5]) };
    Command::new(actor, action)
}

/// Everything a limit bounds, measured from the outside.
#[derive(Debug, Default, PartialEq)]
struct Held {
    participants: u64,
    products: u64,
    instruments: u64,
    orders_total: u64,
    lots: u64,
    lots_today: BTreeMap<Pk, u64>,
    orders_open: BTreeMap<Pk, u64>,
    orders_today: BTreeMap<Pk, u64>,
    standing_bids: BTreeMap<Pk, u64>,
    supply_lines: BTreeMap<ClockId, u64>,
    levels: BTreeMap<(Code, bool, i64), u64>,
}

fn held(market: &Market) -> Held {
    let mut h = Held {
        participants: market.participants().len() as u64,
        products: market.products().len() as u64,
        instruments: market.listings().len() as u64,
        lots: market.lots().len() as u64,
        ..Held::default()
    };
    for p in market.participants().iter() {
        h.lots_today.insert(p.pk, market.lots().values().filter(|l| l.grower == p.pk).count() as u64);
        h.orders_open.insert(p.pk, market.open_orders(p.pk).len() as u64);
        h.orders_today.insert(p.pk, p.orders_today as u64);
    }
    h.orders_total = market.listings().values().map(|l| l.book.resting_count() as u64).sum();
    for lot in market.lots().keys() {
        for bid in market.standing_bids(*lot) {
            *h.standing_bids.entry(bid.buyer).or_default() += 1;
        }
    }
    for c in market.clocks() {
        h.supply_lines.insert(c.id, c.supply_line.len() as u64 + u64::from(c.lot.is_some()));
    }
    for (symbol, listing) in market.listings() {
        for side in [Side::Buy, Side::Sell] {
            for (price, qty) in listing.book.depth(side, usize::MAX) {
                h.levels.insert((*symbol, side == Side::Buy, price.0), qty);
            }
        }
    }
    h
}

/// Each measure after the command is within the limit in force, or did not grow.
fn check_bounded(before: &Held, after: &Held, limits: &MarketLimits, command: &Command) {
    let within = |what: &str, b: u64, a: u64, max: u64| {
        assert!(a <= max.max(b), "{what} grew past its limit {max}: {b} → {a} after {command:?}");
    };
    within("participants", before.participants, after.participants, limits.participants_max);
    within("products", before.products, after.products, limits.products_max);
    within("instruments", before.instruments, after.instruments, limits.instruments_max);
    within("open orders", before.orders_total, after.orders_total, limits.orders_open_total_max);
    within("lots today", before.lots, after.lots, limits.lots_per_day_max);
    let maps = [
        ("lots today", &before.lots_today, &after.lots_today, limits.lots_per_grower_day_max),
        ("open orders of one", &before.orders_open, &after.orders_open, limits.orders_open_per_participant_max),
        ("orders today of one", &before.orders_today, &after.orders_today, limits.orders_per_participant_day_max),
        ("standing bids of one", &before.standing_bids, &after.standing_bids, limits.standing_bids_per_buyer_max),
    ];
    for (what, b, a, max) in maps {
        for (pk, value) in a {
            within(what, b.get(pk).copied().unwrap_or(0), *value, max);
        }
    }
    for (clock, value) in &after.supply_lines {
        within(
            "supply line",
            before.supply_lines.get(clock).copied().unwrap_or(0),
            *value,
            limits.supply_line_lots_max,
        );
    }
    for (level, value) in &after.levels {
        within("level quantity", before.levels.get(level).copied().unwrap_or(0), *value, limits.level_quantity_max);
    }
}

/// Rejections by code, and which limits were reached.
type Seen = (BTreeMap<RejectCode, u64>, std::collections::BTreeSet<String>);

fn run(ops: &[RawOp]) -> Seen {
    let day = Day::parse(DAY).unwrap();
    let mut market = Market::new(MarketConfig::new(day));
    let mut now = morning_of(day);
    let mut events: Vec<Event> = Vec::new();
    let mut next_client = 0;
    let mut rejects = BTreeMap::new();
    let mut reached = std::collections::BTreeSet::new();
    // A roster to start from (participants that grow and buy), so the stream gets to the
    // business instead of spending itself on registrations.
    for id in ["r0", "r1", "r2"] {
        let register = Action::RegisterParticipant {
            id: code(id),
            name: id.to_string(),
            roles: roles(true, true),
            credit_limit: Fen(50_000_000),
            token_hash: [7; 32],
            firm: None,
            daily_limit: None,
        };
        market.apply(&Command::new(Actor::Operator, register), now, &mut events).result.expect("roster");
    }
    for raw in ops {
        now = EngineTime(now.0 + (raw[5] >> 32) % 200_000);
        // Timers due by `now` run first on their own, so `before` is what the command finds.
        market.apply(&Command::tick(), now, &mut events).result.expect("a tick is always accepted");
        let command = command(&market, raw, &mut next_client);
        let before = held(&market);
        let limits_before = *market.limits();
        events.clear();
        let applied = market.apply(&command, now, &mut events);
        market.check_invariants();
        let after = held(&market);
        match &applied.result {
            Ok(()) => {
                // `set_limits` is the one command that may change the bound; it grows nothing.
                if matches!(command.action, Action::SetLimits(_)) {
                    assert_eq!(before, after);
                } else {
                    assert_eq!(*market.limits(), limits_before);
                }
            }
            Err(reject) => {
                *rejects.entry(reject.code).or_default() += 1;
                if reject.code == RejectCode::LimitReached {
                    let name = reject.message.split(' ').next().unwrap_or_default();
                    assert!(name.ends_with("_max"), "limit_reached names its limit: {}", reject.message);
                    reached.insert(name.to_string());
                }
                assert_eq!(events.len(), applied.first_command_event, "a rejected command emitted events");
            }
        }
        check_bounded(&before, &after, market.limits(), &command);
    }
    (rejects, reached)
}

fn ops(max_len: usize) -> impl Strategy<Value = Vec<RawOp>> {
    proptest::collection::vec(any::<RawOp>(), 1..max_len)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn no_command_stream_panics_the_core_or_grows_it_past_its_limits(ops in ops(400)) {
        run(&ops);
    }
}

/// A long fixed stream, so the property above is known to reach the limits at all.
#[test]
fn generated_streams_hit_the_limits() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(12);
    let ops: Vec<RawOp> = (0..40_000).map(|_| rng.gen()).collect();
    let (rejects, reached) = run(&ops);
    eprintln!("rejects: {rejects:?}\nlimits reached: {reached:?}");
    let all = MarketLimits::default().named().len();
    assert_eq!(reached.len(), all, "only {reached:?} reached: {rejects:?}");
}
