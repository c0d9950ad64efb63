//! The order-book rules of protocol sections 7 and 8 as the market applies them around the book:
//! book states and the opening call, who may send which side, client order ids, the credit a buy
//! order reserves and how fills turn it into purchases and fees, amends, cancels, and the end of
//! the day.

mod common;

use common::*;
use huashi_engine::command::{Action, Actor, OrderEntry};
use huashi_engine::core::book::{BookState, DoneReason, OrderType, TimeInForce};
use huashi_engine::event::{Event, Trade};
use huashi_engine::reject::RejectCode;
use huashi_engine::types::{Fen, Pk, Side};

const ROSE: &str = "ROSE-A";
const LILY: &str = "LILY-A";

struct Desk {
    h: Harness,
    grower: Pk,
    alice: Pk,
    bob: Pk,
}

fn desk() -> Desk {
    let mut h = Harness::new();
    let grower = h.grower("grower");
    let alice = h.buyer("alice", 1_000_000);
    let bob = h.buyer("bob", 1_000_000);
    Desk { h, grower, alice, bob }
}

impl Desk {
    fn set_state(&mut self, symbol: &str, state: BookState) {
        self.h.ok(op(), Action::SetBookState { symbol: code(symbol), state });
    }

    fn place(&mut self, who: Pk, entry: OrderEntry) {
        self.h.ok(actor(who), Action::NewOrder(entry));
    }

    fn buy(&mut self, who: Pk, id: &str, price: i64, quantity: u64) {
        self.place(who, order(id, ROSE, Side::Buy, Some(price), quantity, TimeInForce::Gtc));
    }

    fn sell(&mut self, who: Pk, id: &str, price: i64, quantity: u64) {
        self.place(who, order(id, ROSE, Side::Sell, Some(price), quantity, TimeInForce::Gtc));
    }
}

fn trades(events: &[Event]) -> Vec<Trade> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Traded(trade) => Some(*trade),
            _ => None,
        })
        .collect()
}

fn done(events: &[Event]) -> Vec<(Pk, String, DoneReason)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::OrderDone { owner, client_order_id, reason, .. } => {
                Some((*owner, client_order_id.to_string(), *reason))
            }
            _ => None,
        })
        .collect()
}

/// What a resting buy order of `quantity` at `price` holds: the price plus the fee rounded up to
/// the fen, per unit (0.1 % of 1.50 is 0.0015, held as 0.01).
fn reserve(price: i64, quantity: i64) -> i64 {
    (price + (price * 1_000 + 999_999) / 1_000_000) * quantity
}

#[test]
fn orders_rest_in_pre_open_and_opening_uncrosses_at_one_price() {
    let mut d = desk();
    d.set_state(ROSE, BookState::PreOpen);
    d.buy(d.alice, "a1", 105, 10);
    d.buy(d.bob, "b1", 103, 5);
    d.sell(d.grower, "g1", 100, 8);
    d.sell(d.grower, "g2", 104, 10);
    assert!(trades(&d.h.events).is_empty(), "nothing trades in pre-open");
    let book = &d.h.market.listings()[&code(ROSE)].book;
    assert_eq!((book.best(Side::Buy), book.best(Side::Sell)), (Some(Fen(105)), Some(Fen(100))));

    d.set_state(ROSE, BookState::Open);
    // 10 trade at 1.04 or 1.05 (imbalance 8 both); no last trade, so the lower price.
    let printed = trades(d.h.last_events());
    assert!(!printed.is_empty());
    assert!(printed.iter().all(|t| t.price == Fen(104)), "{printed:?}");
    assert_eq!(printed.iter().map(|t| t.quantity).sum::<u64>(), 10);
    assert!(printed.iter().all(|t| t.buyer == d.alice && t.seller == d.grower));
    assert!(matches!(d.h.last_events().last(), Some(Event::BookStateChanged { state: BookState::Open, .. })));
    let book = &d.h.market.listings()[&code(ROSE)].book;
    assert_eq!((book.best(Side::Buy), book.best(Side::Sell)), (Some(Fen(103)), Some(Fen(104))));
    // Alice paid 1.04, not her 1.05, and holds no more credit for the filled order.
    let paid: i64 = printed.iter().map(|t| t.amount.0 + t.fee.0).sum();
    assert_eq!(d.h.account(d.alice).exposure(), Fen(paid));
    assert_eq!(d.h.account(d.alice).held(), Fen(0));
}

#[test]
fn book_state_changes_are_the_operators() {
    let mut d = desk();
    d.h.rejected(
        actor(d.alice),
        Action::SetBookState { symbol: code(ROSE), state: BookState::Open },
        RejectCode::Forbidden,
    );
    d.h.rejected(op(), Action::SetBookState { symbol: code("NOPE"), state: BookState::Open }, RejectCode::NotFound);
    d.h.rejected(op(), Action::SetBookState { symbol: code(ROSE), state: BookState::Closed }, RejectCode::InvalidState);
    // A closed book takes no orders.
    d.h.rejected(
        actor(d.alice),
        Action::NewOrder(order("x", ROSE, Side::Buy, Some(100), 1, TimeInForce::Gtc)),
        RejectCode::InvalidState,
    );
    assert_eq!(d.h.account(d.alice).exposure(), Fen(0));
}

#[test]
fn buying_needs_the_buyer_role_and_selling_the_grower_role() {
    let mut d = desk();
    let trader = d.h.register("trader", roles(true, true), 1_000_000);
    d.set_state(ROSE, BookState::Open);
    d.h.rejected(
        actor(d.grower),
        Action::NewOrder(order("g", ROSE, Side::Buy, Some(100), 1, TimeInForce::Gtc)),
        RejectCode::Forbidden,
    );
    d.h.rejected(
        actor(d.alice),
        Action::NewOrder(order("a", ROSE, Side::Sell, Some(100), 1, TimeInForce::Gtc)),
        RejectCode::Forbidden,
    );
    d.h.rejected(
        op(),
        Action::NewOrder(order("o", ROSE, Side::Buy, Some(100), 1, TimeInForce::Gtc)),
        RejectCode::Forbidden,
    );
    d.h.set_active(d.bob, false);
    d.h.rejected(
        actor(d.bob),
        Action::NewOrder(order("b", ROSE, Side::Buy, Some(100), 1, TimeInForce::Gtc)),
        RejectCode::Forbidden,
    );
    d.buy(trader, "t-buy", 100, 1);
    d.sell(trader, "t-sell", 110, 1);
    d.buy(d.alice, "a", 100, 1);
    d.sell(d.grower, "g", 110, 1);
}

#[test]
fn a_client_order_id_is_unique_per_participant_per_day() {
    let mut d = desk();
    d.set_state(ROSE, BookState::Open);
    d.buy(d.alice, "same", 100, 1);
    d.h.rejected(
        actor(d.alice),
        Action::NewOrder(order("same", LILY, Side::Buy, Some(90), 1, TimeInForce::Gtc)),
        RejectCode::Duplicate,
    );
    // Another participant may use it.
    d.buy(d.bob, "same", 100, 1);
    // Cancelled, it is still used for the day.
    d.h.ok(actor(d.alice), Action::CancelOrder { client_order_id: code("same") });
    d.h.rejected(
        actor(d.alice),
        Action::NewOrder(order("same", ROSE, Side::Buy, Some(100), 1, TimeInForce::Gtc)),
        RejectCode::Duplicate,
    );
    // A day order ends with the day, and its id is free again the next day.
    d.place(d.alice, order("daily", ROSE, Side::Buy, Some(100), 1, TimeInForce::Day));
    d.set_state(ROSE, BookState::Closed);
    d.h.ok(op(), Action::EndOfDay);
    d.set_state(ROSE, BookState::Open);
    d.buy(d.alice, "same", 100, 1);
    d.buy(d.alice, "daily", 100, 1);
    // Bob's gtc order "same" lives on into the new day: its id stays taken while it does.
    d.h.rejected(
        actor(d.bob),
        Action::NewOrder(order("same", ROSE, Side::Buy, Some(100), 1, TimeInForce::Gtc)),
        RejectCode::Duplicate,
    );
}

#[test]
fn a_rejected_order_leaves_its_client_order_id_free() {
    let mut d = desk();
    // Rejected by the market (quantity), by the book's state (closed), by credit and by the book
    // (post-only), and none of it uses the id up or changes the market.
    d.h.rejected(
        actor(d.alice),
        Action::NewOrder(order("retry", ROSE, Side::Buy, Some(100), 0, TimeInForce::Gtc)),
        RejectCode::QuantityInvalid,
    );
    let before = d.h.market.state_hash();
    d.h.rejected(
        actor(d.alice),
        Action::NewOrder(order("retry", ROSE, Side::Buy, Some(100), 1, TimeInForce::Gtc)),
        RejectCode::InvalidState,
    );
    assert_eq!(d.h.market.state_hash(), before, "a rejected order changed the market");
    d.set_state(ROSE, BookState::Open);
    d.sell(d.grower, "ask", 100, 1);
    let before = d.h.market.state_hash();
    d.h.rejected(
        actor(d.alice),
        Action::NewOrder(order("retry", ROSE, Side::Buy, Some(100), 1_000_000, TimeInForce::Gtc)),
        RejectCode::CreditLimit,
    );
    assert_eq!(d.h.market.state_hash(), before, "a credit rejection changed the market");
    // Refused by the book itself, after the market's checks: a post-only order that would trade.
    let mut post_only = order("retry", ROSE, Side::Buy, Some(100), 1, TimeInForce::Gtc);
    post_only.post_only = true;
    d.h.rejected(actor(d.alice), Action::NewOrder(post_only), RejectCode::InvalidState);
    assert_eq!(d.h.market.state_hash(), before, "a post-only rejection changed the market");
    d.buy(d.alice, "retry", 100, 1);
    d.h.rejected(
        actor(d.alice),
        Action::NewOrder(order("retry", ROSE, Side::Buy, Some(100), 1, TimeInForce::Gtc)),
        RejectCode::Duplicate,
    );
}

#[test]
fn a_buy_order_reserves_credit_until_cancelled() {
    let mut d = desk();
    d.set_state(ROSE, BookState::Open);
    d.buy(d.alice, "a1", 150, 100);
    let account = d.h.account(d.alice);
    assert_eq!(account.held(), Fen(reserve(150, 100)));
    assert_eq!(account.held(), Fen(15_100));
    // Exposure counts price × quantity (protocol section 7); the fee headroom is held beside it.
    assert_eq!(account.reserved, Fen(15_000));
    assert_eq!(account.exposure(), Fen(15_000));
    assert_eq!(account.available(), Fen(1_000_000 - 15_000));
    // A sell order holds nothing.
    d.sell(d.grower, "g1", 200, 100);
    assert_eq!(d.h.account(d.grower).exposure(), Fen(0));

    d.h.ok(actor(d.alice), Action::CancelOrder { client_order_id: code("a1") });
    assert_eq!(done(d.h.last_events()), vec![(d.alice, "a1".to_string(), DoneReason::Cancelled)]);
    assert_eq!(d.h.account(d.alice).exposure(), Fen(0));
    assert_eq!(d.h.account(d.alice).available(), Fen(1_000_000));
    d.h.rejected(actor(d.alice), Action::CancelOrder { client_order_id: code("a1") }, RejectCode::NotFound);
    d.h.rejected(actor(d.bob), Action::CancelOrder { client_order_id: code("g1") }, RejectCode::NotFound);
}

#[test]
fn a_fill_moves_the_reservation_into_purchases_plus_the_fee() {
    let mut d = desk();
    d.set_state(ROSE, BookState::Open);
    d.buy(d.alice, "a1", 150, 100);
    d.sell(d.grower, "g1", 150, 40);
    let printed = trades(d.h.last_events());
    assert_eq!(printed.len(), 1);
    let t = printed[0];
    assert_eq!((t.price, t.quantity, t.amount, t.aggressor), (Fen(150), 40, Fen(6_000), Side::Sell));
    assert_eq!(t.fee, Fen(6), "0.1 % of 60.00");
    assert_eq!(t.commission, Fen(300), "5 % of 60.00");
    let alice = d.h.account(d.alice);
    assert_eq!(alice.purchases, Fen(6_006));
    assert_eq!(alice.held(), Fen(reserve(150, 60)));
    assert_eq!(alice.exposure(), Fen(6_006 + 9_000), "purchases + fee, plus price × the 60 still open");
    assert_eq!((alice.bought, alice.fees), (Fen(6_000), Fen(6)));
    let grower = d.h.account(d.grower);
    assert_eq!((grower.sold, grower.commission, grower.exposure()), (Fen(6_000), Fen(300), Fen(0)));

    // The rest fills (at the resting bid's price): the reservation is gone, the purchase stays.
    d.sell(d.grower, "g2", 140, 60);
    let alice = d.h.account(d.alice);
    assert_eq!(alice.held(), Fen(0));
    assert_eq!(alice.purchases, Fen(6_006 + 9_000 + 9));
    assert!(done(d.h.last_events()).contains(&(d.alice, "a1".to_string(), DoneReason::Filled)));
}

#[test]
fn a_buy_order_over_the_available_credit_is_credit_limit() {
    let mut d = desk();
    let small = d.h.buyer("small", 10_000);
    d.set_state(ROSE, BookState::Open);
    // 100 × (1.00 + 0.01) = 101.00 > 100.00
    d.h.rejected(
        actor(small),
        Action::NewOrder(order("s1", ROSE, Side::Buy, Some(100), 100, TimeInForce::Gtc)),
        RejectCode::CreditLimit,
    );
    assert_eq!(d.h.account(small).exposure(), Fen(0));
    d.place(small, order("s2", ROSE, Side::Buy, Some(100), 99, TimeInForce::Gtc));
    // 99.00 reserved (exposure); 0.99 of fee headroom held beside it leaves 0.01 usable.
    assert_eq!(d.h.account(small).available(), Fen(100));
    assert_eq!(d.h.account(small).held(), Fen(9_999));
    d.h.rejected(
        actor(small),
        Action::NewOrder(order("s3", ROSE, Side::Buy, Some(1), 1, TimeInForce::Gtc)),
        RejectCode::CreditLimit,
    );
    // A market buy must fit what it would take right now.
    d.sell(d.grower, "g1", 101, 5);
    d.h.rejected(
        actor(small),
        Action::NewOrder(order("s4", ROSE, Side::Buy, None, 5, TimeInForce::Ioc)),
        RejectCode::CreditLimit,
    );
    assert_eq!(d.h.account(small).exposure(), Fen(9_900), "only s2's price × quantity");
}

#[test]
fn lowering_the_limit_below_the_exposure_stops_buying_but_not_selling() {
    let mut d = desk();
    let trader = d.h.register("trader", roles(true, true), 100_000);
    d.set_state(ROSE, BookState::Open);
    d.buy(trader, "t1", 100, 500); // holds 50,500
    d.h.set_credit_limit(trader, 10_000);
    assert!(d.h.account(trader).available().0 < 0);
    d.h.rejected(
        actor(trader),
        Action::NewOrder(order("t2", ROSE, Side::Buy, Some(100), 1, TimeInForce::Gtc)),
        RejectCode::CreditLimit,
    );
    // Selling costs no credit: it must not be refused for credit.
    d.sell(trader, "t3", 120, 10);
    d.h.ok(actor(trader), Action::AmendOrder { client_order_id: code("t3"), price: Some(Fen(121)), quantity: None });
    // Lowering a buy order's quantity only frees credit.
    d.h.ok(actor(trader), Action::AmendOrder { client_order_id: code("t1"), price: None, quantity: Some(50) });
    assert_eq!(d.h.account(trader).held(), Fen(reserve(100, 50)));
}

#[test]
fn amend_lowering_quantity_keeps_priority_and_raising_it_loses_priority() {
    let mut d = desk();
    d.set_state(ROSE, BookState::Open);
    d.buy(d.alice, "a1", 100, 10);
    d.buy(d.bob, "b1", 100, 10);
    d.h.ok(actor(d.alice), Action::AmendOrder { client_order_id: code("a1"), price: None, quantity: Some(6) });
    assert!(matches!(d.h.last_events(), [Event::OrderAmended(r), ..] if r.quantity == 6));
    assert_eq!(d.h.account(d.alice).held(), Fen(reserve(100, 6)));
    d.sell(d.grower, "g1", 100, 3);
    assert_eq!(trades(d.h.last_events())[0].buyer, d.alice, "a lower quantity keeps its place");

    // Alice has 3 open; raising to 10 sends her behind Bob.
    d.h.ok(actor(d.alice), Action::AmendOrder { client_order_id: code("a1"), price: None, quantity: Some(10) });
    assert_eq!(d.h.account(d.alice).held(), Fen(reserve(100, 10)));
    d.sell(d.grower, "g2", 100, 3);
    assert_eq!(trades(d.h.last_events())[0].buyer, d.bob, "a higher quantity loses its place");
}

#[test]
fn amend_to_a_new_price_moves_the_reservation_and_may_trade() {
    let mut d = desk();
    let small = d.h.buyer("small", 5_000);
    d.set_state(ROSE, BookState::Open);
    d.place(small, order("s1", ROSE, Side::Buy, Some(100), 40, TimeInForce::Gtc));
    assert_eq!(d.h.account(small).held(), Fen(4_040));
    // 40 × 1.30 would not fit 50.00: refused, nothing changes.
    d.h.rejected(
        actor(small),
        Action::AmendOrder { client_order_id: code("s1"), price: Some(Fen(130)), quantity: None },
        RejectCode::CreditLimit,
    );
    assert_eq!(d.h.account(small).held(), Fen(4_040));
    d.h.ok(actor(small), Action::AmendOrder { client_order_id: code("s1"), price: Some(Fen(110)), quantity: None });
    assert_eq!(d.h.account(small).held(), Fen(reserve(110, 40)));
    // Lowering the price frees credit; a crossing new price trades.
    d.sell(d.grower, "g1", 105, 10);
    assert_eq!(trades(d.h.last_events()).len(), 1, "1.05 crosses the bid at 1.10");
    d.h.ok(actor(small), Action::AmendOrder { client_order_id: code("s1"), price: Some(Fen(90)), quantity: None });
    assert_eq!(d.h.account(small).held(), Fen(reserve(90, 30)));
    d.sell(d.grower, "g2", 100, 10);
    d.h.ok(actor(small), Action::AmendOrder { client_order_id: code("s1"), price: Some(Fen(100)), quantity: None });
    assert_eq!(trades(d.h.last_events()).len(), 1, "the amended bid takes the 1.00 offer");
    assert_eq!(d.h.account(small).held(), Fen(reserve(100, 20)));
    d.h.rejected(
        actor(small),
        Action::AmendOrder { client_order_id: code("s1"), price: None, quantity: Some(0) },
        RejectCode::QuantityInvalid,
    );
    d.h.rejected(
        actor(d.bob),
        Action::AmendOrder { client_order_id: code("s1"), price: None, quantity: Some(1) },
        RejectCode::NotFound,
    );
}

#[test]
fn cancel_all_cancels_the_owners_orders_and_reports_how_many() {
    let mut d = desk();
    d.set_state(ROSE, BookState::Open);
    d.set_state(LILY, BookState::PreOpen);
    d.buy(d.alice, "a1", 100, 10);
    d.buy(d.alice, "a2", 99, 10);
    d.place(d.alice, order("a3", LILY, Side::Buy, Some(200), 5, TimeInForce::Day));
    d.buy(d.bob, "b1", 100, 10);
    d.h.ok(actor(d.alice), Action::CancelAll { symbol: Some(code(ROSE)) });
    assert!(matches!(d.h.last_events().last(), Some(Event::Cancelled { count: 2, owner }) if *owner == d.alice));
    assert_eq!(d.h.account(d.alice).held(), Fen(reserve(200, 5)));
    d.h.ok(actor(d.alice), Action::CancelAll { symbol: None });
    assert!(matches!(d.h.last_events().last(), Some(Event::Cancelled { count: 1, .. })));
    assert_eq!(d.h.account(d.alice).exposure(), Fen(0));
    d.h.ok(actor(d.alice), Action::CancelAll { symbol: None });
    assert!(matches!(d.h.last_events().last(), Some(Event::Cancelled { count: 0, .. })));
    assert_eq!(d.h.account(d.bob).held(), Fen(reserve(100, 10)), "other owners keep theirs");
    d.h.rejected(actor(d.alice), Action::CancelAll { symbol: Some(code("NOPE")) }, RejectCode::NotFound);
}

#[test]
fn end_of_day_needs_every_clock_idle_and_every_book_closed() {
    let mut d = desk();
    d.h.rejected(actor(d.alice), Action::EndOfDay, RejectCode::Forbidden);
    d.set_state(ROSE, BookState::PreOpen);
    d.h.rejected(op(), Action::EndOfDay, RejectCode::InvalidState);
    d.set_state(ROSE, BookState::Closed);
    let lot = d.h.consign(d.grower, 2, 10, 100, 1);
    d.h.assign(lot, 3, 200);
    d.h.start(3);
    d.h.rejected(op(), Action::EndOfDay, RejectCode::InvalidState);
    d.h.tick_ms(1_000);
    d.h.rejected(op(), Action::EndOfDay, RejectCode::InvalidState);
    d.h.halt(3);
    let day = d.h.market.day();
    d.h.ok(op(), Action::EndOfDay);
    assert!(
        matches!(d.h.last_events().last(), Some(Event::DaySettled { day: settled, next_day, .. }) if *settled == day && *next_day == day.next())
    );
    assert_eq!(d.h.market.day(), day.next());
    assert!(d.h.market.lots().is_empty(), "the settled day's lots are gone");
}

#[test]
fn end_of_day_expires_day_orders_and_resets_purchases_to_leave_the_reservations() {
    let mut d = desk();
    d.set_state(ROSE, BookState::Open);
    d.place(d.alice, order("day", ROSE, Side::Buy, Some(100), 10, TimeInForce::Day));
    d.place(d.alice, order("gtc", ROSE, Side::Buy, Some(90), 10, TimeInForce::Gtc));
    d.place(d.grower, order("sell-day", ROSE, Side::Sell, Some(120), 10, TimeInForce::Day));
    d.sell(d.grower, "hit", 100, 4);
    assert_eq!(d.h.account(d.alice).purchases, Fen(400));
    d.set_state(ROSE, BookState::Closed);
    d.h.ok(op(), Action::EndOfDay);
    let expired = done(d.h.last_events());
    assert_eq!(
        expired,
        vec![
            (d.alice, "day".to_string(), DoneReason::Expired),
            (d.grower, "sell-day".to_string(), DoneReason::Expired)
        ]
    );
    let alice = d.h.account(d.alice);
    assert_eq!(alice.purchases, Fen(0));
    assert_eq!(alice.held(), Fen(reserve(90, 10)));
    assert_eq!(alice.exposure(), alice.reserved);
    assert_eq!(alice.reserved, Fen(90 * 10), "a resting buy reserves price × quantity (protocol section 7)");
    assert_eq!((alice.bought, alice.fees), (Fen(0), Fen(0)));
    let open: Vec<_> = d.h.market.open_orders(d.alice).iter().map(|r| r.client_order_id.to_string()).collect();
    assert_eq!(open, vec!["gtc".to_string()]);
}

#[test]
fn open_orders_are_the_owners_live_orders_in_the_order_they_were_placed() {
    let mut d = desk();
    d.set_state(ROSE, BookState::Open);
    // Client order ids out of alphabetical order, interleaved between two neighbouring owners.
    for (who, id, price) in [(d.alice, "z", 90), (d.bob, "m", 91), (d.alice, "a", 92), (d.bob, "b", 93)] {
        d.buy(who, id, price, 1);
    }
    d.sell(d.grower, "s", 200, 5);
    d.h.ok(actor(d.alice), Action::CancelOrder { client_order_id: code("z") });
    d.buy(d.alice, "k", 94, 1);
    let open = |who| d.h.market.open_orders(who).iter().map(|r| r.client_order_id.to_string()).collect::<Vec<_>>();
    assert_eq!(open(d.alice), ["a", "k"]);
    assert_eq!(open(d.bob), ["m", "b"]);
    assert_eq!(open(d.grower), ["s"]);
}

#[test]
fn day_settled_counts_the_days_trades_turnover_and_fees() {
    let mut d = desk();
    // Two clock awards, one of them voided, and two book trades.
    let lot = d.h.consign(d.grower, 5, 10, 100, 1);
    d.h.assign(lot, 1, 300);
    d.h.start_and_run(1);
    d.h.bid(d.alice, 1, lot, 1, 2).unwrap(); // 2 × 10 × 3.00 = 60.00, fee 1.00, commission 3.00
    d.h.ok(op(), Action::VoidAward { clock: clock(1), lot, round: 1, buyer: None });
    d.h.tick_ms(500);
    d.h.tick_ms(100); // round 2 from 3.00, ten ticks down: 2.90
    d.h.bid(d.bob, 1, lot, 2, 3).unwrap(); // 3 × 10 × 2.90 = 87.00, fee 1.50, commission 4.35
    d.h.halt(1);
    d.set_state(ROSE, BookState::Open);
    d.buy(d.alice, "a1", 150, 40);
    d.sell(d.grower, "g1", 150, 40); // 60.00, fee 0.06, commission 3.00
    d.set_state(LILY, BookState::Open);
    d.place(d.bob, order("b1", LILY, Side::Buy, Some(333), 5, TimeInForce::Day));
    d.place(d.grower, order("g2", LILY, Side::Sell, Some(333), 5, TimeInForce::Day)); // 16.65, fee 0.02 (1.665 fen), commission 0.83 (83.25)
    d.set_state(ROSE, BookState::Closed);
    d.set_state(LILY, BookState::Closed);
    d.h.ok(op(), Action::EndOfDay);
    let settled = d.h.last_events().last().cloned();
    let Some(Event::DaySettled { trades: count, turnover, fees, .. }) = settled else {
        panic!("no day_settled: {settled:?}")
    };
    assert_eq!(count, 3);
    assert_eq!(turnover, Fen(8_700 + 6_000 + 1_665));
    assert_eq!(fees, Fen(150 + 435 + 6 + 300 + 2 + 83));
    // The event agrees with the awards and trades the day published, less the voided one.
    let all_awards = d.h.awards();
    let book_trades = trades(&d.h.events);
    let voided: i64 =
        d.h.events
            .iter()
            .filter_map(|e| match e {
                Event::AwardVoided { amount, .. } => Some(amount.0),
                _ => None,
            })
            .sum();
    let published: i64 = all_awards.iter().map(|a| a.amount.0).chain(book_trades.iter().map(|t| t.amount.0)).sum();
    assert_eq!(turnover.0, published - voided);
}

#[test]
fn cancel_on_disconnect_cancels_every_open_order() {
    let mut d = desk();
    d.set_state(ROSE, BookState::Open);
    d.buy(d.alice, "a1", 100, 10);
    d.buy(d.alice, "a2", 101, 10);
    d.h.ok(actor(d.alice), Action::CancelOnDisconnect);
    assert!(matches!(d.h.last_events().last(), Some(Event::Cancelled { count: 2, .. })));
    assert_eq!(d.h.account(d.alice).exposure(), Fen(0));
    d.h.rejected(Actor::Operator, Action::CancelAll { symbol: None }, RejectCode::Forbidden);
}

#[test]
fn suspension_cancels_open_orders_and_the_suspended_participant_cannot_act() {
    // Protocol v1.1 section 4: suspending cancels the participant's open orders in the same
    // command (before v1.1 they stayed and kept trading, and only a disconnect cleared them).
    let mut d = desk();
    d.set_state(ROSE, BookState::Open);
    d.buy(d.alice, "a1", 100, 10);
    d.h.set_active(d.alice, false);
    let done = d.h.last_events().iter().any(|e| {
        matches!(e, Event::OrderDone { reason: DoneReason::Cancelled, client_order_id, .. } if *client_order_id == code("a1"))
    });
    assert!(done, "suspension cancels a1: {:?}", d.h.last_events());
    assert_eq!(d.h.account(d.alice).held(), Fen(0));
    d.h.rejected(actor(d.alice), Action::CancelOrder { client_order_id: code("a1") }, RejectCode::Forbidden);
    d.h.rejected(actor(d.alice), Action::CancelAll { symbol: None }, RejectCode::Forbidden);
    d.h.rejected(
        actor(d.alice),
        Action::AmendOrder { client_order_id: code("a1"), price: None, quantity: Some(5) },
        RejectCode::Forbidden,
    );
    let order = OrderEntry {
        client_order_id: code("a2"),
        symbol: code(ROSE),
        side: Side::Buy,
        order_type: OrderType::Limit,
        price: Some(Fen(100)),
        quantity: 1,
        time_in_force: TimeInForce::Gtc,
        post_only: false,
    };
    d.h.rejected(actor(d.alice), Action::NewOrder(order), RejectCode::Forbidden);
    d.h.ok(actor(d.alice), Action::CancelOnDisconnect);
    assert!(matches!(d.h.last_events().last(), Some(Event::Cancelled { count: 0, .. })));
}

#[test]
fn the_operator_cancels_a_participants_orders() {
    let mut d = desk();
    d.set_state(ROSE, BookState::Open);
    d.buy(d.alice, "a1", 100, 10);
    d.buy(d.alice, "a2", 101, 10);
    let id = d.h.market.participants().get(d.alice).id;
    d.h.rejected(actor(d.alice), Action::CancelOrders { participant: id, symbol: None }, RejectCode::Forbidden);
    d.h.ok(Actor::Operator, Action::CancelOrders { participant: id, symbol: Some(code(ROSE)) });
    assert!(matches!(d.h.last_events().last(), Some(Event::OrdersCancelled { count: 2, .. })));
    assert_eq!(d.h.account(d.alice).held(), Fen(0));
    assert!(d.h.market.open_orders(d.alice).is_empty());
    d.h.rejected(
        Actor::Operator,
        Action::CancelOrders { participant: code("nobody"), symbol: None },
        RejectCode::NotFound,
    );
}

/// Found by `limit_properties`: a buy order amended to a negative price and a huge quantity made
/// a negative credit hold whose difference with the old one overflowed (a panic in the writer).
#[test]
fn amending_to_a_negative_price_is_price_invalid_not_an_overflow() {
    let mut d = desk();
    d.set_state(ROSE, BookState::Open);
    d.buy(d.alice, "a1", 100, 10);
    for price in [0, -1, i64::MIN] {
        d.h.rejected(
            actor(d.alice),
            Action::AmendOrder { client_order_id: code("a1"), price: Some(Fen(price)), quantity: Some(u64::MAX / 2) },
            RejectCode::PriceInvalid,
        );
    }
    assert_eq!(d.h.account(d.alice).held(), Fen(reserve(100, 10)));
}

/// `set_fees` raises the book fee from the next day: a buy order resting across `end_of_day`
/// then holds the fee at the new rate, so its fills (charged at the new rate) never cost more
/// than it held; one whose owner's credit cannot take the higher hold is cancelled.
#[test]
fn a_resting_buy_holds_the_new_book_fee_after_the_fees_change() {
    use huashi_engine::core::fees::FeeSchedule;
    let mut d = desk();
    let tight = d.h.buyer("tight", reserve(10_000, 10));
    d.set_state(ROSE, BookState::Open);
    d.buy(d.alice, "a1", 10_000, 10);
    d.buy(tight, "t1", 10_000, 10);
    assert_eq!(d.h.account(d.alice).reserved.0 + d.h.account(d.alice).fee_hold.0, reserve(10_000, 10));
    let fees = FeeSchedule { book_fee_ppm: 2_000, ..FeeSchedule::default() };
    d.h.ok(op(), Action::SetFees(fees));
    d.set_state(ROSE, BookState::Closed);
    d.h.ok(op(), Action::EndOfDay);
    // 0.2 % of 100.00 is 20 fen a unit: alice's hold grows, tight's order is cancelled.
    let alice = d.h.account(d.alice);
    assert_eq!(alice.reserved.0 + alice.fee_hold.0, (10_000 + 20) * 10);
    assert_eq!(done(d.h.last_events()), vec![(tight, "t1".to_string(), DoneReason::Cancelled)]);
    assert_eq!(d.h.account(tight).reserved.0 + d.h.account(tight).fee_hold.0, 0);
    // Day 2: a partial fill is charged at the new rate and releases what it held.
    d.set_state(ROSE, BookState::Open);
    d.sell(d.grower, "s1", 10_000, 3);
    let trade = trades(d.h.last_events())[0];
    assert_eq!((trade.quantity, trade.fee), (3, Fen(60)));
    let alice = d.h.account(d.alice);
    assert_eq!(alice.reserved.0 + alice.fee_hold.0, (10_000 + 20) * 7);
    d.h.market.check_invariants();
}
