//! One test per rule of the book, named after the rule.

use super::*;
use crate::types::{Fen, OrderId, Pk, Side};
use BookEvent::{Done, Fill, Level};
use Side::{Buy, Sell};

const A: Pk = Pk(1);
const B: Pk = Pk(2);
const C: Pk = Pk(3);

fn limit(id: u64, owner: Pk, side: Side, price: i64, quantity: u64) -> NewOrder {
    NewOrder {
        id: OrderId(id),
        owner,
        side,
        order_type: OrderType::Limit,
        price: Some(Fen(price)),
        quantity,
        tif: TimeInForce::Gtc,
        post_only: false,
    }
}

fn with_tif(order: NewOrder, tif: TimeInForce) -> NewOrder {
    NewOrder { tif, ..order }
}

fn market(id: u64, owner: Pk, side: Side, quantity: u64) -> NewOrder {
    NewOrder { order_type: OrderType::Market, price: None, ..limit(id, owner, side, 1, quantity) }
}

fn open_book(tick: i64, band_pct: u32) -> OrderBook {
    let mut book = OrderBook::new(Fen(tick), band_pct);
    book.set_state(BookState::Open, &mut Vec::new());
    book
}

/// A book whose reference price is `last_close`, in the given state.
fn book_with_close(last_close: i64, band_pct: u32, state: BookState) -> OrderBook {
    let header =
        BookHeader { tick: Fen(1), band_pct, state, last_trade: None, last_close: Some(Fen(last_close)), next_seq: 0 };
    OrderBook::from_image(&BookImage { header, orders: Vec::new() }).unwrap()
}

fn submit(book: &mut OrderBook, order: NewOrder) -> Vec<BookEvent> {
    let mut out = Vec::new();
    book.submit(order, &mut out).unwrap();
    out
}

/// (price, quantity, maker, taker) of each fill.
fn fills(events: &[BookEvent]) -> Vec<(i64, u64, u64, u64)> {
    events
        .iter()
        .filter_map(|e| match *e {
            Fill { price, quantity, maker, taker, .. } => Some((price.0, quantity, maker.0, taker.0)),
            _ => None,
        })
        .collect()
}

fn done_of(events: &[BookEvent], id: u64) -> Option<(DoneReason, u64)> {
    events.iter().find_map(|e| match *e {
        Done { order, reason, cancelled, .. } if order.0 == id => Some((reason, cancelled)),
        _ => None,
    })
}

fn leaves(book: &OrderBook, id: u64) -> Option<u64> {
    book.order(OrderId(id)).map(|v| v.leaves)
}

#[test]
fn matching_follows_price_then_time_priority() {
    let mut book = open_book(1, 0);
    submit(&mut book, limit(1, A, Sell, 101, 10));
    submit(&mut book, limit(2, B, Sell, 101, 10));
    submit(&mut book, limit(3, A, Sell, 100, 10));
    let out = submit(&mut book, limit(4, C, Buy, 101, 25));
    assert_eq!(fills(&out), vec![(100, 10, 3, 4), (101, 10, 1, 4), (101, 5, 2, 4)]);
    assert_eq!(done_of(&out, 4), Some((DoneReason::Filled, 0)));
    assert_eq!(leaves(&book, 2), Some(5));
    assert_eq!(book.last_trade(), Some(Fen(101)));
}

#[test]
fn fills_print_at_the_resting_price_and_report_leaves() {
    let mut book = open_book(1, 0);
    submit(&mut book, limit(1, A, Sell, 100, 10));
    let out = submit(&mut book, limit(2, B, Buy, 105, 4));
    assert_eq!(
        out,
        vec![
            Fill {
                price: Fen(100),
                quantity: 4,
                maker: OrderId(1),
                maker_owner: A,
                maker_side: Sell,
                maker_leaves: 6,
                taker: OrderId(2),
                taker_owner: B,
                taker_leaves: 0,
            },
            Level { side: Sell, price: Fen(100), quantity: 6 },
            Done { order: OrderId(2), owner: B, side: Buy, reason: DoneReason::Filled, cancelled: 0 },
        ]
    );
}

#[test]
fn unfilled_limit_remainder_rests_at_its_price() {
    let mut book = open_book(1, 0);
    submit(&mut book, limit(1, A, Sell, 100, 3));
    let out = submit(&mut book, limit(2, B, Buy, 101, 10));
    assert_eq!(out.last(), Some(&Level { side: Buy, price: Fen(101), quantity: 7 }));
    assert_eq!(book.best(Buy), Some(Fen(101)));
    assert_eq!(book.best(Sell), None);
    assert_eq!(book.depth(Buy, 5), vec![(Fen(101), 7)]);
}

#[test]
fn post_only_that_would_trade_is_rejected() {
    let mut book = open_book(1, 0);
    submit(&mut book, limit(1, A, Sell, 100, 10));
    let before = book.state_hash();
    let mut out = Vec::new();
    let crossing = NewOrder { post_only: true, ..limit(2, B, Buy, 100, 5) };
    assert_eq!(book.submit(crossing, &mut out), Err(BookReject::PostOnlyWouldTrade));
    assert!(out.is_empty());
    assert_eq!(book.state_hash(), before);
    // Crossing only its own order is still taking liquidity: rejected too.
    let own = NewOrder { post_only: true, ..limit(3, A, Buy, 100, 5) };
    assert_eq!(book.submit(own, &mut out), Err(BookReject::PostOnlyWouldTrade));
    let passive = NewOrder { post_only: true, ..limit(4, B, Buy, 99, 5) };
    book.submit(passive, &mut out).unwrap();
    assert_eq!(leaves(&book, 4), Some(5));
    let post_only_market = NewOrder { post_only: true, ..market(5, B, Buy, 1) };
    assert_eq!(book.submit(post_only_market, &mut out), Err(BookReject::PostOnlyWouldTrade));
}

#[test]
fn amend_lower_quantity_keeps_priority() {
    let mut book = open_book(1, 0);
    submit(&mut book, limit(1, A, Buy, 100, 10));
    submit(&mut book, limit(2, B, Buy, 100, 10));
    let mut out = Vec::new();
    book.amend(OrderId(1), None, Some(4), &mut out).unwrap();
    assert_eq!(out, vec![Level { side: Buy, price: Fen(100), quantity: 14 }]);
    let out = submit(&mut book, limit(3, C, Sell, 100, 6));
    assert_eq!(fills(&out), vec![(100, 4, 1, 3), (100, 2, 2, 3)]);
}

#[test]
fn amend_higher_quantity_loses_priority() {
    let mut book = open_book(1, 0);
    submit(&mut book, limit(1, A, Buy, 100, 10));
    submit(&mut book, limit(2, B, Buy, 100, 10));
    let mut out = Vec::new();
    book.amend(OrderId(1), None, Some(12), &mut out).unwrap();
    assert_eq!(out, vec![Level { side: Buy, price: Fen(100), quantity: 22 }]);
    let out = submit(&mut book, limit(3, C, Sell, 100, 11));
    assert_eq!(fills(&out), vec![(100, 10, 2, 3), (100, 1, 1, 3)]);
}

#[test]
fn amend_new_price_loses_priority_and_may_trade_as_taker() {
    let mut book = open_book(1, 0);
    submit(&mut book, limit(1, A, Buy, 99, 10));
    submit(&mut book, limit(2, B, Buy, 100, 10));
    submit(&mut book, limit(3, C, Sell, 102, 4));
    let mut out = Vec::new();
    book.amend(OrderId(1), Some(Fen(100)), None, &mut out).unwrap();
    assert_eq!(
        out,
        vec![Level { side: Buy, price: Fen(99), quantity: 0 }, Level { side: Buy, price: Fen(100), quantity: 20 },]
    );
    // Now behind order 2 at 100.
    let out = submit(&mut book, limit(4, C, Sell, 100, 12));
    assert_eq!(fills(&out), vec![(100, 10, 2, 4), (100, 2, 1, 4)]);
    // An amended price that crosses trades, the amended order being the taker.
    out_clear_amend(&mut book, 1, Some(102), Some(5), |out| {
        assert_eq!(fills(out), vec![(102, 4, 3, 1)]);
        assert_eq!(out.last(), Some(&Level { side: Buy, price: Fen(102), quantity: 1 }));
    });
    assert_eq!(leaves(&book, 1), Some(1));
    assert_eq!(book.best(Buy), Some(Fen(102)));
}

fn out_clear_amend(
    book: &mut OrderBook,
    id: u64,
    price: Option<i64>,
    quantity: Option<u64>,
    check: impl FnOnce(&[BookEvent]),
) {
    let mut out = Vec::new();
    book.amend(OrderId(id), price.map(Fen), quantity, &mut out).unwrap();
    check(&out);
}

#[test]
fn amend_of_post_only_order_to_a_crossing_price_is_rejected() {
    let mut book = open_book(1, 0);
    submit(&mut book, NewOrder { post_only: true, ..limit(1, A, Buy, 99, 10) });
    submit(&mut book, limit(2, B, Sell, 101, 10));
    submit(&mut book, limit(3, C, Buy, 98, 10));
    let mut out = Vec::new();
    let amend = book.amend(OrderId(1), Some(Fen(101)), None, &mut out);
    assert_eq!(amend, Err(BookReject::PostOnlyWouldTrade));
    // An order that was not post-only is not checked.
    book.amend(OrderId(3), Some(Fen(101)), None, &mut out).unwrap();
    assert_eq!(fills(&out), vec![(101, 10, 2, 3)]);
}

#[test]
fn amend_checks_price_and_quantity_and_state() {
    let mut book = book_with_close(100, 10, BookState::Open);
    submit(&mut book, limit(1, A, Buy, 100, 10));
    let mut out = Vec::new();
    let mut amend = |price: Option<i64>, quantity| book.amend(OrderId(1), price.map(Fen), quantity, &mut out);
    assert_eq!(amend(None, Some(0)), Err(BookReject::QuantityZero));
    assert_eq!(amend(Some(0), None), Err(BookReject::PriceNotPositive));
    assert_eq!(amend(Some(111), None), Err(BookReject::PriceOutOfBand));
    assert_eq!(amend(None, None), Ok(()));
    assert_eq!(amend(Some(100), Some(10)), Ok(()));
    assert!(out.is_empty(), "a no-op amend emits nothing");
    let mut out = Vec::new();
    assert_eq!(book.amend(OrderId(9), None, Some(1), &mut out), Err(BookReject::UnknownOrder));
    book.set_state(BookState::Closed, &mut out);
    assert_eq!(book.amend(OrderId(1), None, Some(1), &mut out), Err(BookReject::NotOpen));
}

#[test]
fn self_trade_cancels_resting_order() {
    let mut book = open_book(1, 0);
    submit(&mut book, limit(1, A, Sell, 100, 10));
    submit(&mut book, limit(2, B, Sell, 100, 5));
    let out = submit(&mut book, limit(3, A, Buy, 100, 5));
    assert_eq!(
        out,
        vec![
            Done { order: OrderId(1), owner: A, side: Sell, reason: DoneReason::SelfTrade, cancelled: 10 },
            Fill {
                price: Fen(100),
                quantity: 5,
                maker: OrderId(2),
                maker_owner: B,
                maker_side: Sell,
                maker_leaves: 0,
                taker: OrderId(3),
                taker_owner: A,
                taker_leaves: 0,
            },
            Done { order: OrderId(2), owner: B, side: Sell, reason: DoneReason::Filled, cancelled: 0 },
            Level { side: Sell, price: Fen(100), quantity: 0 },
            Done { order: OrderId(3), owner: A, side: Buy, reason: DoneReason::Filled, cancelled: 0 },
        ]
    );
    assert_eq!(book.resting_count(), 0);
}

#[test]
fn market_order_trades_only_within_band() {
    let mut book = book_with_close(100, 10, BookState::Open);
    submit(&mut book, limit(1, A, Sell, 105, 10));
    submit(&mut book, limit(2, A, Sell, 110, 10));
    // 111 is outside the band for a new limit; it got there while the reference was higher.
    let mut high = book_with_close(110, 10, BookState::Open);
    submit(&mut high, limit(3, A, Sell, 111, 10));
    let mut image = book.image();
    image.orders.extend(high.image().orders.iter().map(|o| RestingOrder { seq: 2, ..*o }));
    image.header.next_seq = 3;
    let mut book = OrderBook::from_image(&image).unwrap();
    assert_eq!(book.preview(B, Buy, None, 30), (20, Fen(105 * 10 + 110 * 10)));
    let out = submit(&mut book, market(4, B, Buy, 30));
    assert_eq!(fills(&out), vec![(105, 10, 1, 4), (110, 10, 2, 4)]);
    assert_eq!(done_of(&out, 4), Some((DoneReason::Cancelled, 10)));
    assert_eq!(leaves(&book, 3), Some(10), "the level beyond the band is untouched");
}

#[test]
fn market_order_never_rests() {
    let mut book = open_book(1, 0);
    let out = submit(&mut book, market(1, A, Buy, 5));
    assert_eq!(out, vec![Done { order: OrderId(1), owner: A, side: Buy, reason: DoneReason::Cancelled, cancelled: 5 }]);
    submit(&mut book, limit(2, B, Sell, 100, 3));
    let out = submit(&mut book, with_tif(market(3, A, Buy, 5), TimeInForce::Day));
    assert_eq!(fills(&out), vec![(100, 3, 2, 3)]);
    assert_eq!(done_of(&out, 3), Some((DoneReason::Cancelled, 2)));
    assert_eq!(book.resting_count(), 0);
}

#[test]
fn limit_price_outside_band_is_rejected() {
    let mut book = book_with_close(100, 10, BookState::Open);
    let mut out = Vec::new();
    assert_eq!(book.submit(limit(1, A, Buy, 111, 1), &mut out), Err(BookReject::PriceOutOfBand));
    assert_eq!(book.submit(limit(2, A, Sell, 89, 1), &mut out), Err(BookReject::PriceOutOfBand));
    book.submit(limit(3, A, Buy, 110, 1), &mut out).unwrap();
    book.submit(limit(4, B, Sell, 90, 1), &mut out).unwrap();
    // Without a reference price there is no band.
    let mut free = open_book(1, 10);
    free.submit(limit(5, A, Buy, 1_000_000, 1), &mut out).unwrap();
}

#[test]
fn price_must_be_positive_and_on_the_tick() {
    let mut book = open_book(5, 0);
    let mut out = Vec::new();
    assert_eq!(book.submit(limit(1, A, Buy, 0, 1), &mut out), Err(BookReject::PriceNotPositive));
    assert_eq!(book.submit(limit(1, A, Buy, -5, 1), &mut out), Err(BookReject::PriceNotPositive));
    assert_eq!(book.submit(limit(1, A, Buy, 101, 1), &mut out), Err(BookReject::PriceOffTick));
    book.submit(limit(1, A, Buy, 105, 1), &mut out).unwrap();
    assert_eq!(BookReject::PriceOffTick.code(), RejectCode::PriceInvalid);
}

#[test]
fn price_presence_must_match_order_type() {
    let mut book = open_book(1, 0);
    let mut out = Vec::new();
    let no_price = NewOrder { price: None, ..limit(1, A, Buy, 100, 1) };
    assert_eq!(book.submit(no_price, &mut out), Err(BookReject::MissingPrice));
    let priced_market = NewOrder { price: Some(Fen(100)), ..market(2, A, Buy, 1) };
    assert_eq!(book.submit(priced_market, &mut out), Err(BookReject::UnexpectedPrice));
    assert_eq!(book.submit(limit(3, A, Buy, 100, 0), &mut out), Err(BookReject::QuantityZero));
    let huge = limit(3, A, Buy, 100, QUANTITY_MAX + 1);
    assert_eq!(book.submit(huge, &mut out), Err(BookReject::QuantityTooLarge));
    assert!(out.is_empty());
}

#[test]
fn duplicate_resting_order_id_is_rejected() {
    let mut book = open_book(1, 0);
    submit(&mut book, limit(1, A, Buy, 100, 1));
    let mut out = Vec::new();
    assert_eq!(book.submit(limit(1, B, Sell, 200, 1), &mut out), Err(BookReject::DuplicateOrderId));
}

#[test]
fn ioc_remainder_is_cancelled() {
    let mut book = open_book(1, 0);
    submit(&mut book, limit(1, A, Sell, 100, 3));
    let out = submit(&mut book, with_tif(limit(2, B, Buy, 100, 5), TimeInForce::Ioc));
    assert_eq!(fills(&out), vec![(100, 3, 1, 2)]);
    assert_eq!(done_of(&out, 2), Some((DoneReason::Cancelled, 2)));
    assert_eq!(book.resting_count(), 0);
}

#[test]
fn fok_that_cannot_fill_has_no_fills() {
    let mut book = open_book(1, 0);
    submit(&mut book, limit(1, A, Sell, 100, 3));
    submit(&mut book, limit(2, B, Sell, 101, 3));
    let before = book.state_hash();
    // 6 on offer, but 3 of it is the buyer's own: self-trade prevention would remove it.
    let out = submit(&mut book, with_tif(limit(3, A, Buy, 101, 5), TimeInForce::Fok));
    assert_eq!(out, vec![Done { order: OrderId(3), owner: A, side: Buy, reason: DoneReason::Cancelled, cancelled: 5 }]);
    assert_eq!(book.state_hash(), before, "a killed FOK changes nothing, not even self-trade cancels");
}

#[test]
fn fok_that_can_fill_fills_in_full() {
    let mut book = open_book(1, 0);
    submit(&mut book, limit(1, A, Sell, 100, 3));
    submit(&mut book, limit(2, B, Sell, 101, 3));
    let out = submit(&mut book, with_tif(limit(3, C, Buy, 101, 5), TimeInForce::Fok));
    assert_eq!(fills(&out), vec![(100, 3, 1, 3), (101, 2, 2, 3)]);
    assert_eq!(done_of(&out, 3), Some((DoneReason::Filled, 0)));
}

#[test]
fn day_orders_expire_at_end_of_day() {
    let mut book = open_book(1, 0);
    submit(&mut book, with_tif(limit(2, A, Buy, 99, 5), TimeInForce::Day));
    submit(&mut book, limit(1, A, Buy, 99, 5));
    submit(&mut book, with_tif(limit(3, B, Sell, 101, 5), TimeInForce::Day));
    submit(&mut book, limit(4, C, Sell, 100, 1));
    submit(&mut book, limit(5, B, Buy, 100, 1));
    assert_eq!(book.last_trade(), Some(Fen(100)));
    let mut out = Vec::new();
    book.end_of_day(&mut out);
    assert_eq!(
        out,
        vec![
            Done { order: OrderId(2), owner: A, side: Buy, reason: DoneReason::Expired, cancelled: 5 },
            Level { side: Buy, price: Fen(99), quantity: 5 },
            Done { order: OrderId(3), owner: B, side: Sell, reason: DoneReason::Expired, cancelled: 5 },
            Level { side: Sell, price: Fen(101), quantity: 0 },
        ]
    );
    assert_eq!(leaves(&book, 1), Some(5), "gtc orders stay");
    assert_eq!((book.last_trade(), book.last_close()), (None, Some(Fen(100))));
    assert_eq!(book.reference_price(), Some(Fen(100)));
    // A day without trades keeps the previous close.
    book.end_of_day(&mut out);
    assert_eq!(book.last_close(), Some(Fen(100)));
}

#[test]
fn closed_book_rejects_submit_and_amend_but_allows_cancel() {
    let mut book = open_book(1, 0);
    submit(&mut book, limit(1, A, Buy, 99, 5));
    let mut out = Vec::new();
    book.set_state(BookState::Closed, &mut out);
    assert_eq!(book.submit(limit(2, A, Buy, 99, 5), &mut out), Err(BookReject::NotOpen));
    assert_eq!(book.amend(OrderId(1), None, Some(1), &mut out), Err(BookReject::NotOpen));
    assert!(out.is_empty());
    book.cancel(OrderId(1), &mut out).unwrap();
    assert_eq!(done_of(&out, 1), Some((DoneReason::Cancelled, 5)));
    assert_eq!(book.cancel(OrderId(1), &mut out), Err(BookReject::UnknownOrder));
    assert_eq!(BookReject::NotOpen.code(), RejectCode::InvalidState);
}

#[test]
fn pre_open_rests_limit_orders_and_trades_nothing() {
    let mut book = OrderBook::new(Fen(1), 0);
    let mut out = Vec::new();
    book.set_state(BookState::PreOpen, &mut out);
    submit(&mut book, limit(1, A, Buy, 105, 5));
    let out = submit(&mut book, limit(2, B, Sell, 100, 5));
    assert!(fills(&out).is_empty());
    assert_eq!(book.preview(A, Buy, Some(Fen(200)), 5), (0, Fen(0)));
    let mut out = Vec::new();
    for order in [
        market(3, A, Buy, 1),
        with_tif(limit(4, A, Buy, 100, 1), TimeInForce::Ioc),
        with_tif(limit(5, A, Buy, 100, 1), TimeInForce::Fok),
    ] {
        assert_eq!(book.submit(order, &mut out), Err(BookReject::NotOpen));
    }
    // Amending in pre-open moves the order without trading.
    book.amend(OrderId(1), Some(Fen(106)), None, &mut out).unwrap();
    assert!(fills(&out).is_empty());
    assert_eq!(book.resting_count(), 2);
}

#[test]
fn uncross_maximises_volume_then_least_imbalance_then_reference_then_lower() {
    // Volume: 14 at 103 and at 104, each with imbalance 1; less anywhere else.
    let volume_orders = [
        limit(1, A, Buy, 106, 5),
        limit(2, A, Buy, 104, 10),
        limit(3, A, Buy, 102, 10),
        limit(4, B, Sell, 100, 8),
        limit(5, B, Sell, 103, 6),
        limit(6, B, Sell, 105, 20),
    ];
    assert_eq!(uncross_price(&volume_orders, None), (103, 14), "lower of the two");
    assert_eq!(uncross_price(&volume_orders, Some(104)), (104, 14), "closest to the reference");
    assert_eq!(uncross_price(&volume_orders, Some(90)), (103, 14));
    // Imbalance: volume 10 everywhere in 100..=105, imbalance 0 only in 100..=102.
    let imbalance_orders = [limit(1, A, Buy, 105, 10), limit(2, B, Sell, 100, 10), limit(3, B, Sell, 103, 5)];
    assert_eq!(uncross_price(&imbalance_orders, None), (100, 10));
    assert_eq!(uncross_price(&imbalance_orders, Some(110)), (102, 10), "imbalance beats reference");
    assert_eq!(uncross_price(&imbalance_orders, Some(101)), (101, 10), "a price between two limits");
}

/// The single price and the total quantity of the opening call over these pre-open orders.
fn uncross_price(orders: &[NewOrder], reference: Option<i64>) -> (i64, u64) {
    let mut book = match reference {
        Some(r) => book_with_close(r, 0, BookState::PreOpen),
        None => {
            let mut book = OrderBook::new(Fen(1), 0);
            book.set_state(BookState::PreOpen, &mut Vec::new());
            book
        }
    };
    for &order in orders {
        submit(&mut book, order);
    }
    let mut out = Vec::new();
    book.set_state(BookState::Open, &mut out);
    let fills = fills(&out);
    let price = fills[0].0;
    assert!(fills.iter().all(|f| f.0 == price), "one price for the whole call: {fills:?}");
    assert!(book.best(Buy) < book.best(Sell) || book.best(Sell).is_none());
    (price, fills.iter().map(|f| f.1).sum())
}

#[test]
fn uncross_allocates_in_price_time_priority_and_later_order_is_taker() {
    let mut book = OrderBook::new(Fen(1), 0);
    let mut out = Vec::new();
    book.set_state(BookState::PreOpen, &mut out);
    for order in [
        limit(1, A, Buy, 106, 5),
        limit(2, A, Buy, 104, 10),
        limit(3, A, Buy, 102, 10),
        limit(4, B, Sell, 100, 8),
        limit(5, B, Sell, 103, 6),
        limit(6, B, Sell, 105, 20),
    ] {
        submit(&mut book, order);
    }
    book.set_state(BookState::Open, &mut out);
    assert_eq!(book.state(), BookState::Open);
    assert_eq!(fills(&out), vec![(103, 5, 1, 4), (103, 3, 2, 4), (103, 6, 2, 5)]);
    assert_eq!(
        out[out.len() - 4..],
        [
            Level { side: Buy, price: Fen(106), quantity: 0 },
            Level { side: Buy, price: Fen(104), quantity: 1 },
            Level { side: Sell, price: Fen(100), quantity: 0 },
            Level { side: Sell, price: Fen(103), quantity: 0 },
        ]
    );
    assert_eq!(book.last_trade(), Some(Fen(103)));
    assert_eq!(book.depth(Buy, 9), vec![(Fen(104), 1), (Fen(102), 10)]);
    assert_eq!(book.depth(Sell, 9), vec![(Fen(105), 20)]);
    // Opening an open book runs no second call.
    let mut out = Vec::new();
    book.set_state(BookState::Open, &mut out);
    assert!(out.is_empty());
}

#[test]
fn uncross_applies_self_trade_prevention_and_leaves_the_book_uncrossed() {
    let mut book = OrderBook::new(Fen(1), 0);
    let mut out = Vec::new();
    book.set_state(BookState::PreOpen, &mut out);
    submit(&mut book, limit(1, A, Sell, 100, 10));
    submit(&mut book, limit(2, B, Sell, 108, 10));
    submit(&mut book, limit(3, A, Buy, 110, 10));
    book.set_state(BookState::Open, &mut out);
    assert_eq!(
        out,
        vec![
            // First call at 100: the only pair is A against A; the earlier order goes.
            Done { order: OrderId(1), owner: A, side: Sell, reason: DoneReason::SelfTrade, cancelled: 10 },
            Level { side: Buy, price: Fen(110), quantity: 10 },
            Level { side: Sell, price: Fen(100), quantity: 0 },
            // Still crossed, so a second call at 108 clears the rest.
            Fill {
                price: Fen(108),
                quantity: 10,
                maker: OrderId(2),
                maker_owner: B,
                maker_side: Sell,
                maker_leaves: 0,
                taker: OrderId(3),
                taker_owner: A,
                taker_leaves: 0,
            },
            Done { order: OrderId(2), owner: B, side: Sell, reason: DoneReason::Filled, cancelled: 0 },
            Done { order: OrderId(3), owner: A, side: Buy, reason: DoneReason::Filled, cancelled: 0 },
            Level { side: Buy, price: Fen(110), quantity: 0 },
            Level { side: Sell, price: Fen(108), quantity: 0 },
        ]
    );
}

#[test]
fn cancel_owner_cancels_in_order_id_order() {
    let mut book = open_book(1, 0);
    submit(&mut book, limit(3, A, Buy, 99, 1));
    submit(&mut book, limit(1, A, Sell, 105, 2));
    submit(&mut book, limit(2, B, Buy, 99, 4));
    let mut out = Vec::new();
    assert_eq!(book.cancel_owner(A, &mut out), 2);
    let done: Vec<u64> = out
        .iter()
        .filter_map(|e| match e {
            Done { order, .. } => Some(order.0),
            _ => None,
        })
        .collect();
    assert_eq!(done, vec![1, 3]);
    assert_eq!(book.orders_of(A), vec![]);
    assert_eq!(book.orders_of(B).len(), 1);
    assert_eq!(book.cancel_owner(A, &mut out), 0);
}

#[test]
fn preview_skips_own_orders_and_matches_submit() {
    let mut book = open_book(1, 0);
    submit(&mut book, limit(1, A, Sell, 100, 3));
    submit(&mut book, limit(2, B, Sell, 101, 4));
    submit(&mut book, limit(3, B, Sell, 103, 4));
    let preview = book.preview(A, Buy, Some(Fen(102)), 10);
    assert_eq!(preview, (4, Fen(404)));
    assert_eq!(book.preview(C, Buy, Some(Fen(102)), 5), (5, Fen(300 + 202)));
    assert_eq!(book.preview(C, Buy, None, 100), (11, Fen(300 + 404 + 412)));
    let out = submit(&mut book, limit(4, A, Buy, 102, 10));
    let filled: u64 = fills(&out).iter().map(|f| f.1).sum();
    let amount: i64 = fills(&out).iter().map(|f| f.0 * f.1 as i64).sum();
    assert_eq!((filled, Fen(amount)), preview);
}

#[test]
fn snapshot_round_trips_to_the_same_state_hash() {
    let mut book = book_with_close(100, 20, BookState::Open);
    submit(&mut book, limit(1, A, Buy, 99, 5));
    submit(&mut book, with_tif(limit(2, B, Buy, 99, 6), TimeInForce::Day));
    submit(&mut book, NewOrder { post_only: true, ..limit(3, C, Sell, 101, 7) });
    submit(&mut book, limit(4, A, Sell, 102, 8));
    submit(&mut book, limit(5, B, Buy, 101, 2)); // trades: last_trade 101
    let bytes = bincode::serialize(&book).unwrap();
    let copy: OrderBook = bincode::deserialize(&bytes).unwrap();
    assert_eq!(copy.state_hash(), book.state_hash());
    assert_eq!(copy.image(), book.image());
    // And it behaves the same afterwards.
    let (mut original, mut restored) = (book, copy);
    let order = limit(6, C, Buy, 102, 20);
    assert_eq!(submit(&mut original, order), submit(&mut restored, order));
    assert_eq!(original.state_hash(), restored.state_hash());
}

#[test]
fn corrupt_snapshot_is_refused() {
    let mut book = open_book(5, 0);
    submit(&mut book, limit(1, A, Buy, 100, 5));
    let mut image = book.image();
    image.orders[0].price = Fen(101);
    assert!(OrderBook::from_image(&image).is_err());
    let mut image = book.image();
    image.orders.push(image.orders[0]);
    assert!(OrderBook::from_image(&image).is_err());
}

#[test]
fn state_hash_sees_every_field_that_matters() {
    let mut base = open_book(1, 0);
    submit(&mut base, limit(1, A, Buy, 99, 5));
    submit(&mut base, limit(2, B, Buy, 99, 5));
    let hash = base.state_hash();
    let mut reduced = base.clone();
    reduced.amend(OrderId(1), None, Some(4), &mut Vec::new()).unwrap();
    assert_ne!(reduced.state_hash(), hash);
    let mut requeued = base.clone();
    requeued.amend(OrderId(1), None, Some(6), &mut Vec::new()).unwrap();
    requeued.amend(OrderId(1), None, Some(5), &mut Vec::new()).unwrap();
    assert_ne!(requeued.state_hash(), hash, "priority order is state");
    let mut closed = base.clone();
    closed.set_state(BookState::Closed, &mut Vec::new());
    assert_ne!(closed.state_hash(), hash);
    assert_eq!(base.clone().state_hash(), hash);
}

#[test]
fn reject_codes_follow_the_protocol() {
    use RejectCode::*;
    let expected = [
        (BookReject::NotOpen, InvalidState),
        (BookReject::PostOnlyWouldTrade, InvalidState),
        (BookReject::PriceOffTick, PriceInvalid),
        (BookReject::PriceNotPositive, PriceInvalid),
        (BookReject::PriceOutOfBand, PriceInvalid),
        (BookReject::QuantityZero, QuantityInvalid),
        (BookReject::QuantityTooLarge, QuantityInvalid),
        (BookReject::UnknownOrder, NotFound),
        (BookReject::DuplicateOrderId, Duplicate),
        (BookReject::MissingPrice, BadRequest),
        (BookReject::UnexpectedPrice, BadRequest),
    ];
    for (reject, code) in expected {
        assert_eq!(reject.code(), code, "{reject:?}");
        assert!(!reject.message().is_empty());
    }
}

/// A deep book across many arena and index growths (remapped in place or moved, from 64 KB in
/// unit tests): 30,000 resting orders, then cancels,
/// price moves (some crossing and trading), quantity amends and sweeping IOCs, ids sharing their
/// low 32 bits. An independent model built only from the events (what each command added, what
/// each `Fill` left, what each `Done` removed) must agree with every order the book reports, the
/// level totals must be the sums of their orders, and an image must rebuild the same book.
#[test]
fn a_deep_book_keeps_every_order_across_arena_growths() {
    use std::collections::BTreeMap;
    let mut book = open_book(1, 0);
    // id → (side, price, leaves), from events alone.
    let mut model: BTreeMap<u64, (Side, i64, u64)> = BTreeMap::new();
    let mut live: Vec<u64> = Vec::new();
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut out = Vec::new();
    let mut next_id = 0u64;
    let mut fills = 0usize;
    for step in 0..120_000u32 {
        let r = next();
        if step % 500 == 0 {
            live = model.keys().copied().collect();
        }
        // A live order: `live` is refreshed now and then, so skip what has left since.
        let pick = |live: &Vec<u64>, model: &BTreeMap<u64, (Side, i64, u64)>, r: u64| {
            (0..live.len())
                .map(|k| live[((r >> 20) as usize + k * 7_919) % live.len()])
                .find(|id| model.contains_key(id))
        };
        let picked = if step < 30_000 || r % 100 < 16 || live.is_empty() { None } else { pick(&live, &model, r) };
        out.clear();
        // (id, what rests if nothing trades) of the command's own order, if it may rest.
        let own: Option<(u64, Side, i64, u64)> = if let Some(id) = picked {
            if r % 100 < 22 {
                book.cancel(OrderId(id), &mut out).expect("live");
                None
            } else {
                let (side, price, leaves) = model[&id];
                if r % 100 < 28 {
                    let new_leaves = 1 + (r >> 40) % 60;
                    book.amend(OrderId(id), None, Some(new_leaves), &mut out).expect("live");
                    Some((id, side, price, new_leaves))
                } else {
                    // Toward the other side; now and then through it.
                    let step = 1 + (r >> 24) as i64 % 40;
                    let new_price = if side == Buy { price + step * 10 } else { price - step * 10 }.max(1);
                    book.amend(OrderId(id), Some(Fen(new_price)), None, &mut out).expect("live");
                    Some((id, side, new_price, leaves))
                }
            }
        } else {
            next_id += 1;
            // Every fifth id shares its low 32 bits with the id placed two before it.
            let id = if next_id.is_multiple_of(5) { (next_id - 2) | (1 << 32) } else { next_id };
            let side = if r & 1 == 0 { Buy } else { Sell };
            let offset = 1 + (r >> 8) as i64 % 3_000;
            let price = if side == Buy { 100_000 - offset } else { 100_000 + offset };
            let quantity = 1 + (r >> 40) % 50;
            let ioc = step >= 30_000 && r % 100 < 3;
            let order = if ioc {
                let through = if side == Buy { 101_000 } else { 99_000 };
                with_tif(limit(id, Pk((r >> 32) as u32 % 500), side, through, quantity), TimeInForce::Ioc)
            } else {
                limit(id, Pk((r >> 32) as u32 % 500), side, price, quantity)
            };
            book.submit(order, &mut out).expect("accepted");
            (!ioc).then_some((id, side, price, quantity))
        };
        if let Some((id, side, price, leaves)) = own {
            model.insert(id, (side, price, leaves));
        }
        for event in &out {
            match *event {
                Fill { maker, maker_leaves, taker, taker_leaves, .. } => {
                    model.get_mut(&maker.0).expect("maker is live").2 = maker_leaves;
                    if let Some(taker) = model.get_mut(&taker.0) {
                        taker.2 = taker_leaves;
                    }
                }
                Done { order, .. } => {
                    model.remove(&order.0);
                }
                Level { .. } => {}
            }
        }
        fills += out.iter().filter(|e| matches!(e, Fill { .. })).count();
        if step % 10_000 == 9_999 || step == 29_999 {
            assert_eq!(book.resting_count(), model.len(), "step {step}");
            // Deep: the arena and the index are mapped buffers grown many times (mapped from 64 KB in
            // unit tests).
            assert!(step < 29_999 || model.len() > 10_000, "only {} orders rest at step {step}", model.len());
            let mut totals: BTreeMap<(bool, i64), u64> = BTreeMap::new();
            for (&id, &(side, price, leaves)) in &model {
                let view = book.order(OrderId(id)).unwrap_or_else(|| panic!("order {id} lost at step {step}"));
                assert_eq!((view.side, view.price.0, view.leaves), (side, price, leaves), "order {id}");
                *totals.entry((side == Buy, price)).or_default() += leaves;
            }
            for (&(buy, price), &total) in &totals {
                assert_eq!(book.quantity_at(if buy { Buy } else { Sell }, Fen(price)), total);
            }
            assert_eq!(book.level_count(Buy) + book.level_count(Sell), totals.len());
            let rebuilt = OrderBook::from_image(&book.image()).expect("image");
            assert_eq!(rebuilt.state_hash(), book.state_hash());
        }
    }
    assert!(fills > 5_000, "only {fills} fills: the moves and IOCs should trade");
}

/// Look-ahead is only a hint: a deep book (past `LOOK_AHEAD_MIN`) driven with `prefetch` before
/// every command, for the orders the next three commands name, including orders gone by then
/// and ids never seen, does exactly what the same book does without it: the same events for
/// every command and the same state hash.
#[test]
fn look_ahead_changes_nothing_a_book_does() {
    let mut plain = open_book(1, 0);
    let mut ahead = open_book(1, 0);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    // (id, what): what 0 = new GTC, 1 = cancel, 2 = move.
    let mut commands: Vec<(u64, u8, Side, i64, u64)> = Vec::new();
    let resting = LOOK_AHEAD_MIN as u64 + 6_000;
    for id in 1..=resting {
        let side = if id % 2 == 0 { Buy } else { Sell };
        let price = if side == Buy { 9_000 - (next() % 500) as i64 } else { 10_000 + (next() % 500) as i64 };
        commands.push((id, 0, side, price, 1 + next() % 9));
    }
    let mut id_next = resting + 1;
    for _ in 0..40_000 {
        let r = next();
        let target = 1 + next() % id_next;
        match r % 10 {
            0 | 1 => {
                let side = if id_next.is_multiple_of(2) { Buy } else { Sell };
                // Some cross: they trade, and the orders they fill are gone when named later.
                let price = if side == Buy { 9_400 + (next() % 700) as i64 } else { 9_600 + (next() % 700) as i64 };
                commands.push((id_next, 0, side, price, 1 + next() % 9));
                id_next += 1;
            }
            2 => commands.push((target, 1, Buy, 0, 0)),
            _ => {
                // Orders keep to their side of the book (even ids buy), crossing only the
                // crossing new orders that still rest.
                let price = if target.is_multiple_of(2) {
                    8_500 + (next() % 600) as i64
                } else {
                    9_900 + (next() % 600) as i64
                };
                commands.push((target + u64::from(r % 50 == 0) * 10_000_000, 2, Buy, price, 0));
            }
        }
    }
    let apply = |book: &mut OrderBook, &(id, what, side, price, quantity): &(u64, u8, Side, i64, u64)| {
        let mut out = Vec::new();
        let result = match what {
            0 => book.submit(limit(id, Pk((id % 97) as u32), side, price, quantity), &mut out),
            1 => book.cancel(OrderId(id), &mut out),
            _ => book.amend(OrderId(id), Some(Fen(price)), None, &mut out),
        };
        (result, out)
    };
    let mut prefetched = 0;
    for (i, command) in commands.iter().enumerate() {
        for distance in 1..=3 {
            if let Some(&(id, ..)) = commands.get(i + distance).filter(|c| c.1 != 0) {
                ahead.prefetch(OrderId(id), Prefetch::at(distance));
                prefetched += 1;
            }
        }
        assert_eq!(apply(&mut plain, command), apply(&mut ahead, command), "command {i}: {command:?}");
    }
    assert!(plain.resting_count() > LOOK_AHEAD_MIN, "the book stayed deep: {}", plain.resting_count());
    assert!(prefetched > 80_000);
    assert_eq!(plain.state_hash(), ahead.state_hash());
}

fn payload(n: u64) -> Payload {
    Payload { key: [n, n * 3], data: [n, n + 1, n + 2] }
}

#[test]
fn payloads_rest_with_their_orders_and_stay_readable_until_the_next_command() {
    let mut book = open_book(1, 0);
    let mut out = Vec::new();
    for (id, owner, price) in [(1, A, 100), (2, A, 101), (3, B, 101), (4, C, 102)] {
        book.submit_with(limit(id, owner, Sell, price, 5), Some(&payload(id)), &mut out).unwrap();
    }
    assert_eq!(book.payload(OrderId(2)), Some(payload(2)));
    assert_eq!(book.find_by_client(A, payload(2).key, |_| true), Some(OrderId(2)));
    // The key is filed with its owner, and the owner's confirmation counts.
    assert_eq!(book.find_by_client(B, payload(2).key, |_| true), None);
    assert_eq!(book.find_by_client(A, payload(2).key, |_| false), None);
    book.payload_data_mut(OrderId(3)).unwrap()[1] = 77;
    assert_eq!(book.payload(OrderId(3)).unwrap().data, [3, 77, 5]);
    // The makers a taker fills depart with their payloads.
    out.clear();
    book.submit_with(limit(5, C, Buy, 101, 17), Some(&payload(5)), &mut out).unwrap();
    let departed: Vec<(OrderId, Payload)> = book.departed().collect();
    let mut expected = payload(3);
    expected.data[1] = 77;
    assert_eq!(departed, vec![(OrderId(1), payload(1)), (OrderId(2), payload(2)), (OrderId(3), expected)]);
    assert_eq!(book.payload(OrderId(1)), None);
    assert_eq!(book.find_by_client(A, payload(1).key, |_| true), None);
    // The taker rested with 2 after 15 filled: its payload is there.
    assert_eq!(book.payload(OrderId(5)), Some(payload(5)));
    assert_eq!(book.find_by_client(C, payload(5).key, |_| true), Some(OrderId(5)));
    // The next command recycles the departed slots; an order without a payload has none.
    out.clear();
    book.submit(limit(6, B, Sell, 110, 1), &mut out).unwrap();
    assert_eq!(book.departed().count(), 0);
    assert_eq!(book.payload(OrderId(6)), None);
    let (resting, carried) = book.resting_payload(OrderId(4)).unwrap();
    assert_eq!((resting.id, resting.owner, resting.price, carried), (OrderId(4), C, Fen(102), payload(4)));
    let all: Vec<OrderId> = book.resting_payloads(None).iter().map(|(o, _)| o.id).collect();
    assert_eq!(all, vec![OrderId(4), OrderId(5)]);
    assert_eq!(book.resting_payloads(Some(B)).len(), 0);
    // A snapshot keeps them, and rebuilds the client index.
    let back: OrderBook = bincode::deserialize(&bincode::serialize(&book).unwrap()).unwrap();
    assert_eq!(back.state_hash(), book.state_hash());
    assert_eq!(back.resting_payloads(None), book.resting_payloads(None));
    assert_eq!(back.find_by_client(C, payload(4).key, |_| true), Some(OrderId(4)));
    assert_eq!(back.payload(OrderId(6)), None);
    // Cancels and amends that fill depart the order too.
    out.clear();
    book.cancel(OrderId(4), &mut out).unwrap();
    assert_eq!(book.departed().collect::<Vec<_>>(), vec![(OrderId(4), payload(4))]);
    out.clear();
    book.submit_with(limit(7, A, Sell, 104, 1), Some(&payload(7)), &mut out).unwrap();
    assert_eq!(book.departed().count(), 0);
    out.clear();
    book.amend(OrderId(5), Some(Fen(104)), Some(1), &mut out).unwrap();
    let left: Vec<OrderId> = book.departed().map(|(id, _)| id).collect();
    assert_eq!(left, vec![OrderId(7), OrderId(5)]);
}

/// An owner's orders come from their own client index when every order has a payload, and from
/// a scan of the book while any has none: either way, exactly the orders a scan finds, by order
/// id, through fills, cancels, amends, an owner's cancel-all and a snapshot.
#[test]
fn an_owners_orders_are_what_a_scan_of_the_book_finds() {
    let owners = [A, B, C, Pk(40), Pk(7)];
    let mut book = open_book(1, 0);
    let mut out = Vec::new();
    let mut state = 0x5eed_0ad5_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let by_scan = |book: &OrderBook, owner: Pk| {
        let ids = book.resting_ids(|slot| slot.owner == owner.0);
        ids.into_iter().map(|(id, _)| OrderId(id)).collect::<Vec<_>>()
    };
    let check = |book: &OrderBook, step: u64| {
        for owner in owners {
            let listed: Vec<OrderId> = book.orders_of(owner).iter().map(|view| view.id).collect();
            assert_eq!(listed, by_scan(book, owner), "owner {owner:?}, step {step}");
            let carried: Vec<OrderId> = book.resting_payloads(Some(owner)).iter().map(|(o, _)| o.id).collect();
            let with_payload: Vec<OrderId> = listed.iter().copied().filter(|id| book.payload(*id).is_some()).collect();
            assert_eq!(carried, with_payload, "owner {owner:?}, step {step}");
        }
    };
    let mut listed_from_index = 0;
    for step in 1..=4_000u64 {
        let owner = owners[(next() % owners.len() as u64) as usize];
        let roll = next() % 100;
        out.clear();
        match roll {
            0..=54 => {
                let side = if next() % 2 == 0 { Buy } else { Sell };
                let price = 100 + (next() % 21) as i64 - 10;
                let order = limit(step, owner, side, price, 1 + next() % 9);
                // From step 3,000 on, some orders carry no payload: the scan takes over.
                let payload = (step < 3_000 || roll % 5 != 0).then(|| payload(step));
                let _ = book.submit_with(order, payload.as_ref(), &mut out);
            }
            55..=79 => {
                let _ = book.cancel(OrderId(1 + next() % step), &mut out);
            }
            80..=97 => {
                let price = Some(Fen(95 + (next() % 11) as i64));
                let _ = book.amend(OrderId(1 + next() % step), price, None, &mut out);
            }
            _ => {
                let expected = by_scan(&book, owner).len();
                assert_eq!(book.cancel_owner(owner, &mut out), expected, "step {step}");
                assert_eq!(by_scan(&book, owner), vec![], "step {step}");
            }
        }
        listed_from_index += usize::from(book.arena.all_have_payloads() && book.resting_count() > 0);
        check(&book, step);
    }
    assert!(!book.arena.all_have_payloads(), "orders without a payload came in at the end");
    assert!(listed_from_index > 2_000, "most steps listed owners from their index: {listed_from_index}");
    let back: OrderBook = bincode::deserialize(&bincode::serialize(&book).unwrap()).unwrap();
    check(&back, 0);
}
