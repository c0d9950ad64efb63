//! Invariants of the order book over generated command sequences: never crossed while open,
//! quantity conserved per order, fills never worse than the taker's limit (nor the band for a
//! market order), the opening call at the price a brute force picks, snapshots that round-trip,
//! and agreement with the reference book.

use huashi_engine::core::book::{
    BookEvent, BookImage, BookState, DoneReason, NewOrder, OrderBook, OrderType, RestingOrder, TimeInForce,
};
use huashi_engine::core::reference_book::ReferenceBook;
use huashi_engine::types::{Fen, OrderId, Pk, Side};
use proptest::prelude::*;
use std::collections::BTreeMap;

const BAND_PCT: u32 = 20;

#[derive(Clone, Debug)]
enum Op {
    Submit { owner: u32, buy: bool, market: bool, price: i64, quantity: u64, tif: u8, post_only: bool },
    Cancel(usize),
    Amend { pick: usize, price: Option<i64>, quantity: Option<u64> },
    CancelOwner(u32),
    EndOfDay,
    SetState(u8),
}

fn op(owners: u32) -> impl Strategy<Value = Op> {
    prop_oneof![
        10 => (0..owners, any::<bool>(), prop::bool::weighted(0.15), 78i64..=122, 1u64..30, 0u8..4, prop::bool::weighted(0.1))
            .prop_map(|(owner, buy, market, price, quantity, tif, post_only)| Op::Submit {
                owner, buy, market, price, quantity, tif, post_only
            }),
        2 => any::<usize>().prop_map(Op::Cancel),
        4 => (any::<usize>(), prop::option::of(78i64..=122), prop::option::of(0u64..30))
            .prop_map(|(pick, price, quantity)| Op::Amend { pick, price, quantity }),
        1 => (0..owners).prop_map(Op::CancelOwner),
        1 => Just(Op::EndOfDay),
        2 => (0u8..3).prop_map(Op::SetState),
    ]
}

/// Per-order bookkeeping from the events, to check conservation and limits.
#[derive(Default)]
struct Ledger {
    /// Quantity put on the book: the submitted quantity, adjusted by each amend of open quantity.
    submitted: BTreeMap<u64, i128>,
    filled: BTreeMap<u64, i128>,
    cancelled: BTreeMap<u64, i128>,
    /// The order's current limit (None = market) and side.
    limits: BTreeMap<u64, (Side, Option<i64>)>,
    next_id: u64,
}

struct Run {
    book: OrderBook,
    naive: ReferenceBook,
    ledger: Ledger,
}

impl Run {
    fn new() -> Run {
        Run {
            book: OrderBook::new(Fen(1), BAND_PCT),
            naive: ReferenceBook::new(Fen(1), BAND_PCT),
            ledger: Ledger::default(),
        }
    }

    fn apply(&mut self, op: &Op) -> Result<(), TestCaseError> {
        let mut out = Vec::new();
        let mut naive_out = Vec::new();
        let reference_before = self.book.reference_price();
        let image_before = self.book.image();
        let mut taker: Option<(u64, Side, Option<i64>)> = None;
        let mut opening = false;
        match *op {
            Op::Submit { owner, buy, market, price, quantity, tif, post_only } => {
                self.ledger.next_id += 1;
                let id = self.ledger.next_id;
                let side = if buy { Side::Buy } else { Side::Sell };
                let limit = (!market).then_some(price);
                let order = NewOrder {
                    id: OrderId(id),
                    owner: Pk(owner),
                    side,
                    order_type: if market { OrderType::Market } else { OrderType::Limit },
                    price: limit.map(Fen),
                    quantity,
                    tif: [TimeInForce::Gtc, TimeInForce::Day, TimeInForce::Ioc, TimeInForce::Fok][tif as usize],
                    post_only,
                };
                let preview = self.book.preview(order.owner, side, order.price, quantity);
                let result = self.book.submit(order, &mut out);
                prop_assert_eq!(result, self.naive.submit(order, &mut naive_out));
                if result.is_ok() {
                    self.ledger.submitted.insert(id, i128::from(quantity));
                    self.ledger.limits.insert(id, (side, limit));
                    taker = Some((id, side, limit));
                    let traded: u64 = fills(&out).filter(|f| f.4 == id).map(|f| f.1).sum();
                    if order.tif != TimeInForce::Fok {
                        prop_assert_eq!(traded, preview.0, "preview promised {:?}", preview);
                    } else {
                        prop_assert!(traded == 0 || traded == quantity, "FOK fills all or nothing");
                    }
                } else {
                    prop_assert!(out.is_empty(), "a rejected submit emits nothing");
                    prop_assert_eq!(self.book.image(), image_before.clone());
                }
            }
            Op::Cancel(pick) => {
                let id = self.pick(pick);
                let result = self.book.cancel(id, &mut out);
                prop_assert_eq!(result, self.naive.cancel(id, &mut naive_out));
            }
            Op::Amend { pick, price, quantity } => {
                let id = self.pick(pick);
                let before = self.book.order(id);
                let result = self.book.amend(id, price.map(Fen), quantity, &mut out);
                prop_assert_eq!(result, self.naive.amend(id, price.map(Fen), quantity, &mut naive_out));
                match (result, before) {
                    (Ok(()), Some(before)) => {
                        if let Some(q) = quantity {
                            *self.ledger.submitted.get_mut(&id.0).unwrap() += i128::from(q) - i128::from(before.leaves);
                        }
                        let limit = Some(price.unwrap_or(before.price.0));
                        self.ledger.limits.insert(id.0, (before.side, limit));
                        taker = Some((id.0, before.side, limit));
                    }
                    _ => prop_assert_eq!(self.book.image(), image_before.clone()),
                }
            }
            Op::CancelOwner(owner) => {
                let n = self.book.cancel_owner(Pk(owner), &mut out);
                prop_assert_eq!(n, self.naive.cancel_owner(Pk(owner), &mut naive_out));
            }
            Op::EndOfDay => {
                self.book.end_of_day(&mut out);
                self.naive.end_of_day(&mut naive_out);
            }
            Op::SetState(s) => {
                let state = [BookState::Closed, BookState::PreOpen, BookState::Open][s as usize];
                opening = state == BookState::Open && self.book.state() != BookState::Open;
                self.book.set_state(state, &mut out);
                self.naive.set_state(state, &mut naive_out);
            }
        }
        prop_assert_eq!(&out, &naive_out, "fast and reference books disagree on {:?}", op);
        prop_assert_eq!(self.book.state_hash(), self.naive.state_hash());
        self.record(&out);
        self.check_invariants()?;
        self.check_fill_prices(&out, taker, reference_before)?;
        if opening {
            check_uncross(&image_before, &out)?;
        }
        Ok(())
    }

    /// An id to cancel or amend: mostly an order on the book, sometimes one that is not.
    fn pick(&self, pick: usize) -> OrderId {
        let ids: Vec<u64> = self.ledger.limits.keys().copied().collect();
        if ids.is_empty() {
            return OrderId(pick as u64 % 4);
        }
        OrderId(ids[pick % ids.len()])
    }

    fn record(&mut self, out: &[BookEvent]) {
        for event in out {
            match *event {
                BookEvent::Fill { quantity, maker, taker, .. } => {
                    *self.ledger.filled.entry(maker.0).or_default() += i128::from(quantity);
                    *self.ledger.filled.entry(taker.0).or_default() += i128::from(quantity);
                }
                BookEvent::Done { order, cancelled, reason, .. } => {
                    *self.ledger.cancelled.entry(order.0).or_default() += i128::from(cancelled);
                    if reason == DoneReason::Filled {
                        assert_eq!(cancelled, 0);
                    }
                }
                BookEvent::Level { .. } => {}
            }
        }
    }

    fn check_invariants(&self) -> Result<(), TestCaseError> {
        let book = &self.book;
        if book.state() == BookState::Open {
            if let (Some(bid), Some(ask)) = (book.best(Side::Buy), book.best(Side::Sell)) {
                prop_assert!(bid < ask, "open book crossed: bid {:?} ask {:?}", bid, ask);
            }
        }
        for (&id, &submitted) in &self.ledger.submitted {
            let filled = self.ledger.filled.get(&id).copied().unwrap_or(0);
            let cancelled = self.ledger.cancelled.get(&id).copied().unwrap_or(0);
            let resting = book.order(OrderId(id)).map_or(0, |o| i128::from(o.leaves));
            prop_assert_eq!(submitted, filled + cancelled + resting, "order {} lost quantity", id);
        }
        // Level totals are the sums of their orders.
        let image = book.image();
        for side in [Side::Buy, Side::Sell] {
            let mut levels: Vec<(Fen, u64)> = Vec::new();
            for order in image.orders.iter().filter(|o| o.side == side) {
                match levels.last_mut() {
                    Some((price, qty)) if *price == order.price => *qty += order.leaves,
                    _ => levels.push((order.price, order.leaves)),
                }
            }
            prop_assert_eq!(book.depth(side, usize::MAX), levels);
        }
        // A snapshot round-trips to the same state.
        let bytes = bincode::serialize(book).unwrap();
        let copy: OrderBook = bincode::deserialize(&bytes).unwrap();
        prop_assert_eq!(copy.state_hash(), book.state_hash());
        Ok(())
    }

    /// Continuous fills: at the maker's price, never worse than the taker's limit; a market
    /// taker never beyond the band from the reference price when it arrived.
    fn check_fill_prices(
        &self,
        out: &[BookEvent],
        taker: Option<(u64, Side, Option<i64>)>,
        reference: Option<Fen>,
    ) -> Result<(), TestCaseError> {
        for (price, _, maker, maker_side, taker_id) in fills(out) {
            let Some((id, side, limit)) = taker else { continue };
            prop_assert_eq!(taker_id, id);
            prop_assert_eq!(maker_side, side.opposite());
            prop_assert_eq!(Some(price), self.ledger.limits[&maker].1, "a maker trades at its own price");
            let worse_by = match side {
                Side::Buy => price - limit.unwrap_or(i64::MAX).min(price),
                Side::Sell => limit.unwrap_or(i64::MIN).max(price) - price,
            };
            prop_assert_eq!(worse_by, 0, "fill at {} beyond the taker's limit {:?}", price, limit);
            if let (None, Some(r)) = (limit, reference) {
                let adverse = match side {
                    Side::Buy => price - r.0,
                    Side::Sell => r.0 - price,
                };
                prop_assert!(adverse * 100 <= i64::from(BAND_PCT) * r.0, "market fill {} outside the band", price);
            }
        }
        Ok(())
    }
}

/// (price, quantity, maker, maker side, taker) of each fill.
fn fills(out: &[BookEvent]) -> impl Iterator<Item = (i64, u64, u64, Side, u64)> + '_ {
    out.iter().filter_map(|e| match *e {
        BookEvent::Fill { price, quantity, maker, maker_side, taker, .. } => {
            Some((price.0, quantity, maker.0, maker_side, taker.0))
        }
        _ => None,
    })
}

/// The opening call traded at the price a brute force over every price picks — most volume,
/// least imbalance, nearest the reference, lowest — and both sides of each fill accepted it.
fn check_uncross(before: &BookImage, out: &[BookEvent]) -> Result<(), TestCaseError> {
    let orders: &[RestingOrder] = &before.orders;
    let limit_of = |id: OrderId| orders.iter().find(|o| o.id == id).map(|o| (o.side, o.price.0));
    let mut total = 0u64;
    let mut prices = Vec::new();
    for event in out {
        if let BookEvent::Fill { price, quantity, maker, taker, .. } = *event {
            for id in [maker, taker] {
                let (side, limit) = limit_of(id).expect("only resting orders trade in the call");
                let accepts = match side {
                    Side::Buy => limit >= price.0,
                    Side::Sell => limit <= price.0,
                };
                prop_assert!(accepts, "order {:?} traded at {} beyond its limit {}", id, price.0, limit);
            }
            total += quantity;
            prices.push(price.0);
        }
    }
    let self_trades = out.iter().any(|e| matches!(e, BookEvent::Done { reason: DoneReason::SelfTrade, .. }));
    let reference = before.header.last_trade.or(before.header.last_close).map(|r| r.0);
    let Some((best_price, best_volume)) = brute_force_call(orders, reference) else {
        prop_assert!(prices.is_empty() && !self_trades, "nothing crossed, yet the call acted");
        return Ok(());
    };
    if !self_trades {
        prop_assert!(prices.iter().all(|&p| p == best_price), "call prices {:?}, expected {}", prices, best_price);
        prop_assert_eq!(u128::from(total), best_volume);
    } else if let Some(&first) = prices.first() {
        // Self-trade cancels may need more than one call; the volume is then less than the
        // brute-force maximum, but no fill is outside the crossed range.
        prop_assert!(u128::from(total) <= best_volume);
        prop_assert!(volume_at(orders, first).0 > 0);
    }
    Ok(())
}

/// (demand, supply) at `price`.
fn volume_at(orders: &[RestingOrder], price: i64) -> (u128, u128) {
    let sum = |side: Side, ok: &dyn Fn(i64) -> bool| {
        orders.iter().filter(|o| o.side == side && ok(o.price.0)).map(|o| u128::from(o.leaves)).sum::<u128>()
    };
    (sum(Side::Buy, &|p| p >= price), sum(Side::Sell, &|p| p <= price))
}

fn brute_force_call(orders: &[RestingOrder], reference: Option<i64>) -> Option<(i64, u128)> {
    let low = orders.iter().map(|o| o.price.0).min()?;
    let high = orders.iter().map(|o| o.price.0).max()?;
    let mut best: Option<(u128, u128, i64, i64)> = None;
    for price in low..=high {
        let (demand, supply) = volume_at(orders, price);
        let volume = demand.min(supply);
        let key = (volume, demand.abs_diff(supply), reference.map_or(0, |r| (price - r).abs()), price);
        let better = match best {
            None => true,
            Some((v, i, d, p)) => (std::cmp::Reverse(key.0), key.1, key.2, key.3) < (std::cmp::Reverse(v), i, d, p),
        };
        if better {
            best = Some(key);
        }
    }
    best.filter(|b| b.0 > 0).map(|(volume, _, _, price)| (price, volume))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 600, ..ProptestConfig::default() })]

    /// Few owners: self-trade prevention fires often.
    #[test]
    fn invariants_hold_with_self_trades(ops in prop::collection::vec(op(3), 1..80)) {
        let mut run = Run::new();
        for op in &ops {
            run.apply(op)?;
        }
    }

    /// Many owners: the opening call is checked exactly against the brute force.
    #[test]
    fn invariants_hold_with_many_owners(ops in prop::collection::vec(op(1_000), 1..80)) {
        let mut run = Run::new();
        for op in &ops {
            run.apply(op)?;
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1_000, ..ProptestConfig::default() })]

    /// Pre-open orders from distinct owners, then open: one price, the brute-force one.
    #[test]
    fn uncross_price_is_the_brute_force_optimum(
        orders in prop::collection::vec((any::<bool>(), 90i64..=110, 1u64..40), 1..30),
        reference in prop::option::of(80i64..=120),
    ) {
        let header = huashi_engine::core::book::BookHeader {
            tick: Fen(1), band_pct: 0, state: BookState::PreOpen, last_trade: None,
            last_close: reference.map(Fen), next_seq: 0,
        };
        let mut book = OrderBook::from_image(&BookImage { header, orders: Vec::new() }).unwrap();
        let mut out = Vec::new();
        for (i, &(buy, price, quantity)) in orders.iter().enumerate() {
            let order = NewOrder {
                id: OrderId(i as u64), owner: Pk(i as u32), side: if buy { Side::Buy } else { Side::Sell },
                order_type: OrderType::Limit, price: Some(Fen(price)), quantity,
                tif: TimeInForce::Gtc, post_only: false,
            };
            book.submit(order, &mut out).unwrap();
        }
        let before = book.image();
        out.clear();
        book.set_state(BookState::Open, &mut out);
        check_uncross(&before, &out)?;
        if let (Some(bid), Some(ask)) = (book.best(Side::Buy), book.best(Side::Sell)) {
            prop_assert!(bid < ask);
        }
    }
}
