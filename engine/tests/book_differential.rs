//! The fast order book against the naive reference book: 100,000 generated commands (every order
//! type and time in force, post-only, cancels, amends, owner cancels, end of day, state changes
//! with pre-open → open uncrosses, a handful of owners so self-trade prevention fires, the price
//! band on). Every command must give the same result and the same events; every 100 commands
//! the state hashes must agree.

use huashi_engine::core::book::{
    BookEvent, BookReject, BookState, DoneReason, NewOrder, OrderBook, OrderType, TimeInForce, QUANTITY_MAX,
};
use huashi_engine::core::reference_book::ReferenceBook;
use huashi_engine::types::{Fen, OrderId, Pk, Side};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, BTreeSet};

const OWNERS: u32 = 6;

/// One run's shape.
struct Config {
    seed: u64,
    commands: usize,
    tick: i64,
    band_pct: u32,
    /// Prices cluster around this (and the reference price); ±18 % with a 15 % band. Ticks
    /// ~840..1,210 straddle a 1,024-tick chunk boundary of the fast book's ladder.
    anchor: i64,
    /// Instead of clustering, draw prices log-uniformly over 1..10⁷ ticks: sparse ladders over
    /// many chunks. Pre-open is rare (the reference's brute-force call scans every tick of the
    /// crossed range) and there is no band (it would reject almost everything).
    wide: bool,
}

const MAIN: Config =
    Config { seed: 0x4855_4153_4849, commands: 100_000, tick: 2, band_pct: 15, anchor: 2_050, wide: false };
const WIDE: Config = Config { seed: 0x5749_4445, commands: 30_000, tick: 3, band_pct: 0, anchor: 0, wide: true };

#[derive(Clone, Copy, Debug)]
enum Command {
    Submit(NewOrder),
    Cancel(OrderId),
    Amend(OrderId, Option<Fen>, Option<u64>),
    CancelOwner(Pk),
    EndOfDay,
    SetState(BookState),
}

struct Generator {
    rng: ChaCha8Rng,
    tick: i64,
    wide: bool,
    next_id: u64,
    live: BTreeSet<u64>,
}

impl Generator {
    /// Mostly on the passive side of `centre`, within 18 % of it (so a few fall outside the 15 %
    /// band); an eighth cross it. On the tick but for a few deliberate mistakes.
    fn price(&mut self, centre: i64, side: Side) -> Fen {
        if self.wide {
            return self.wide_price(side);
        }
        let tick = self.tick;
        let r = self.rng.gen_range(0..100);
        let passive = if self.rng.gen_range(0..8) == 0 { -1 } else { 1 };
        let away = passive * centre * self.rng.gen_range(0..=18) / 100;
        let price = match side {
            Side::Buy => centre - away,
            Side::Sell => centre + away,
        } / tick
            * tick;
        Fen(match r {
            0 => 0,
            1 => -tick,
            2 | 3 => price + self.rng.gen_range(1..tick),
            _ => price.max(tick),
        })
    }

    /// Log-uniform over 1..10⁷ ticks; buys mostly in the lower part, sells in the upper.
    fn wide_price(&mut self, side: Side) -> Fen {
        let (low, high) = match side {
            Side::Buy => (0.0, 6.0),
            Side::Sell => (1.0, 7.0),
        };
        let ticks = 10f64.powf(self.rng.gen_range(low..high)) as i64;
        Fen(ticks.max(1) * self.tick)
    }

    fn live_id(&mut self) -> OrderId {
        if self.live.is_empty() || self.rng.gen_range(0..20) == 0 {
            return OrderId(self.rng.gen_range(0..self.next_id + 2));
        }
        let k = self.rng.gen_range(0..self.live.len());
        OrderId(*self.live.iter().nth(k).unwrap())
    }

    fn command(&mut self, centre: i64, book: &OrderBook) -> Command {
        let r = self.rng.gen_range(0..1000);
        // Cancel more as the book deepens, so it hovers around a hundred and some orders.
        let cancel_share = match book.resting_count() {
            0..=119 => 20,
            120..=249 => 100,
            _ => 350,
        };
        if r < 450 {
            Command::Submit(self.new_order(centre))
        } else if r < 450 + cancel_share {
            Command::Cancel(self.live_id())
        } else if r < 960 {
            let id = self.live_id();
            let side = book.order(id).map_or(Side::Buy, |o| o.side);
            let price = (self.rng.gen_range(0..10) < 7).then(|| self.price(centre, side));
            let quantity = match self.rng.gen_range(0..20) {
                0 => Some(if self.rng.gen() { 0 } else { QUANTITY_MAX + 1 }),
                1..=11 => Some(self.rng.gen_range(1..60)),
                _ => None,
            };
            Command::Amend(id, price, quantity)
        } else if r < 963 {
            Command::CancelOwner(Pk(self.rng.gen_range(0..OWNERS)))
        } else if r < 965 {
            Command::EndOfDay
        } else {
            let state = match self.rng.gen_range(0..20) {
                0..=9 => BookState::Open,
                // Wide runs go through pre-open rarely: the reference's brute-force call scans
                // every tick of the crossed range.
                10..=17 if self.wide => BookState::Open,
                10..=18 => BookState::PreOpen,
                _ => BookState::Closed,
            };
            Command::SetState(state)
        }
    }

    fn new_order(&mut self, centre: i64) -> NewOrder {
        let id = if !self.live.is_empty() && self.rng.gen_range(0..100) == 0 {
            self.live_id()
        } else {
            self.next_id += 1;
            OrderId(self.next_id)
        };
        let side = if self.rng.gen() { Side::Buy } else { Side::Sell };
        let market = self.rng.gen_range(0..100) < 15;
        let mut price = if market { None } else { Some(self.price(centre, side)) };
        if self.rng.gen_range(0..100) == 0 {
            price = if price.is_some() { None } else { Some(self.price(centre, side)) };
        }
        let quantity = match self.rng.gen_range(0..200) {
            0 | 1 => 0,
            2 => QUANTITY_MAX + 1,
            _ => self.rng.gen_range(1..50),
        };
        let tif = match self.rng.gen_range(0..100) {
            0..=39 => TimeInForce::Gtc,
            40..=64 => TimeInForce::Day,
            65..=84 => TimeInForce::Ioc,
            _ => TimeInForce::Fok,
        };
        NewOrder {
            id,
            owner: Pk(self.rng.gen_range(0..OWNERS)),
            side,
            order_type: if market { OrderType::Market } else { OrderType::Limit },
            price,
            quantity,
            tif,
            post_only: self.rng.gen_range(0..10) == 0,
        }
    }
}

/// What the run exercised, so that a generator that stopped producing some case fails loudly.
#[derive(Default, Debug)]
struct Coverage {
    fills: usize,
    auction_fills: usize,
    self_trades: usize,
    expired: usize,
    fok_killed: usize,
    rejects: BTreeMap<String, usize>,
    max_resting: usize,
}

#[test]
fn fast_book_matches_reference_book_on_100k_commands() {
    let seen = run(&MAIN);
    // The run must have exercised what it claims to.
    assert!(seen.fills > 10_000, "{seen:?}");
    assert!(seen.auction_fills > 200, "{seen:?}");
    assert!(seen.self_trades > 500, "{seen:?}");
    assert!(seen.expired > 100, "{seen:?}");
    assert!(seen.fok_killed > 100, "{seen:?}");
    assert!(seen.max_resting > 100, "{seen:?}");
    for reject in [
        BookReject::NotOpen,
        BookReject::PostOnlyWouldTrade,
        BookReject::PriceOffTick,
        BookReject::PriceNotPositive,
        BookReject::PriceOutOfBand,
        BookReject::QuantityZero,
        BookReject::QuantityTooLarge,
        BookReject::UnknownOrder,
        BookReject::DuplicateOrderId,
        BookReject::MissingPrice,
        BookReject::UnexpectedPrice,
    ] {
        assert!(seen.rejects.get(&format!("{reject:?}")).is_some_and(|&n| n > 10), "{reject:?}: {seen:?}");
    }
}

#[test]
fn fast_book_matches_reference_book_with_prices_spread_over_many_chunks() {
    let seen = run(&WIDE);
    assert!(seen.fills > 1_000 && seen.auction_fills > 10 && seen.max_resting >= 50, "{seen:?}");
}

fn run(config: &Config) -> Coverage {
    let mut gen = Generator {
        rng: ChaCha8Rng::seed_from_u64(config.seed),
        tick: config.tick,
        wide: config.wide,
        next_id: 0,
        live: BTreeSet::new(),
    };
    let mut fast = OrderBook::new(Fen(config.tick), config.band_pct);
    let mut naive = ReferenceBook::new(Fen(config.tick), config.band_pct);
    let (mut fast_out, mut naive_out) = (Vec::new(), Vec::new());
    let mut seen = Coverage::default();
    let anchor = config.anchor;
    for n in 0..config.commands {
        // Prices follow the reference price, pulled back toward the anchor so they never drift far.
        let centre = fast.reference_price().map_or(anchor, |p| p.0 + (anchor - p.0) / 8);
        let command = gen.command(centre, &fast);
        fast_out.clear();
        naive_out.clear();
        let (fast_result, naive_result) = match command {
            Command::Submit(order) => {
                let limit = order.price;
                let fast_preview = fast.preview(order.owner, order.side, limit, order.quantity);
                let naive_preview = naive.preview(order.owner, order.side, limit, order.quantity);
                assert_eq!(fast_preview, naive_preview, "command {n}: preview of {order:?}");
                let result = (fast.submit(order, &mut fast_out), naive.submit(order, &mut naive_out));
                if result.0.is_ok() && order.tif != TimeInForce::Fok {
                    check_preview_was_honoured(n, &order, fast_preview, &fast_out);
                }
                result
            }
            Command::Cancel(id) => (fast.cancel(id, &mut fast_out), naive.cancel(id, &mut naive_out)),
            Command::Amend(id, price, quantity) => {
                (fast.amend(id, price, quantity, &mut fast_out), naive.amend(id, price, quantity, &mut naive_out))
            }
            Command::CancelOwner(owner) => {
                let counts = (fast.cancel_owner(owner, &mut fast_out), naive.cancel_owner(owner, &mut naive_out));
                assert_eq!(counts.0, counts.1, "command {n}: cancel_owner count");
                (Ok(()), Ok(()))
            }
            Command::EndOfDay => {
                fast.end_of_day(&mut fast_out);
                naive.end_of_day(&mut naive_out);
                (Ok(()), Ok(()))
            }
            Command::SetState(state) => {
                let opening = state == BookState::Open && fast.state() != BookState::Open;
                fast.set_state(state, &mut fast_out);
                naive.set_state(state, &mut naive_out);
                if opening {
                    seen.auction_fills += fast_out.iter().filter(|e| matches!(e, BookEvent::Fill { .. })).count();
                }
                (Ok(()), Ok(()))
            }
        };
        assert_eq!(fast_result, naive_result, "command {n}: {command:?} result");
        assert_eq!(fast_out, naive_out, "command {n}: {command:?} events");
        track(&mut gen, &mut seen, &command, &fast_result, &fast_out, &fast);
        if fast.state() == BookState::Open {
            if let (Some(bid), Some(ask)) = (fast.best(Side::Buy), fast.best(Side::Sell)) {
                assert!(bid < ask, "command {n}: {command:?} left the open book crossed: {fast_out:?}");
            }
        }
        if n % 100 == 99 {
            assert_eq!(fast.state_hash(), naive.state_hash(), "command {n}: state hash");
            assert_eq!(fast.resting_count(), naive.resting_count(), "command {n}: resting count");
            for side in [Side::Buy, Side::Sell] {
                assert_eq!(fast.depth(side, 10), naive.depth(side, 10), "command {n}: depth");
            }
            for owner in 0..OWNERS {
                assert_eq!(fast.orders_of(Pk(owner)), naive.orders_of(Pk(owner)), "command {n}: orders_of");
            }
            assert_eq!(fast.last_close(), naive.last_close());
        }
    }
    assert_eq!(fast.state_hash(), naive.state_hash());
    eprintln!("coverage: {seen:?}");
    seen
}

/// The credit check relies on this: what `preview` promised is exactly what the order then traded.
fn check_preview_was_honoured(n: usize, order: &NewOrder, preview: (u64, Fen), out: &[BookEvent]) {
    let (mut quantity, mut amount) = (0u64, 0i64);
    for event in out {
        if let BookEvent::Fill { price, quantity: q, taker, .. } = *event {
            if taker == order.id {
                quantity += q;
                amount += price.0 * q as i64;
            }
        }
    }
    assert_eq!((quantity, Fen(amount)), preview, "command {n}: preview vs fills of {order:?}");
}

fn track(
    gen: &mut Generator,
    seen: &mut Coverage,
    command: &Command,
    result: &Result<(), BookReject>,
    out: &[BookEvent],
    book: &OrderBook,
) {
    if let Err(reject) = result {
        *seen.rejects.entry(format!("{reject:?}")).or_default() += 1;
    }
    for event in out {
        match *event {
            BookEvent::Fill { .. } => seen.fills += 1,
            BookEvent::Done { order, reason, .. } => {
                gen.live.remove(&order.0);
                match reason {
                    DoneReason::SelfTrade => seen.self_trades += 1,
                    DoneReason::Expired => seen.expired += 1,
                    _ => {}
                }
            }
            BookEvent::Level { .. } => {}
        }
    }
    if let (Command::Submit(order), Ok(())) = (command, result) {
        if book.order(order.id).is_some() {
            gen.live.insert(order.id.0);
        }
        let killed = out.len() == 1 && matches!(out[0], BookEvent::Done { reason: DoneReason::Cancelled, .. });
        if order.tif == TimeInForce::Fok && killed {
            seen.fok_killed += 1;
        }
    }
    seen.max_resting = seen.max_resting.max(book.resting_count());
}
