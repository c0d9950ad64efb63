//! After the sale in the core (issue 15, protocol section 12), each rule on its own: a line per
//! award (multi-buy's `k`), presale and book fill; a void removes exactly its line; status never
//! goes back; the cold chain's alarm; the complaint window, ownership and caps; the quality index
//! closing at `end_of_day`.

mod common;

use common::*;
use huashi_engine::command::{Action, ClockSettingsPatch};
use huashi_engine::core::book::{BookState, TimeInForce};
use huashi_engine::core::catalogue::Category;
use huashi_engine::core::complaints::{ComplaintReason, Decision};
use huashi_engine::core::dispatch::{Centi, DispatchRef, DispatchStatus, DispatchView};
use huashi_engine::event::Event;
use huashi_engine::reject::RejectCode;
use huashi_engine::types::{Fen, LotId, Pk, Side, TradeId};

fn lines(h: &Harness) -> Vec<DispatchView> {
    h.market.dispatch_lines(h.market.day(), None).unwrap()
}

fn refs(h: &Harness) -> Vec<String> {
    lines(h).iter().map(|l| l.reference.to_string()).collect()
}

fn clock_ref(lot: LotId, round: u32, award: u32) -> DispatchRef {
    DispatchRef::Clock { lot, round, award }
}

fn update(h: &mut Harness, reference: DispatchRef, status: DispatchStatus, temperature: Option<i32>) -> Event {
    h.ok(op(), Action::UpdateDispatch { reference, status, temperature: temperature.map(Centi), location: None });
    h.last_events().last().unwrap().clone()
}

fn complain(
    h: &mut Harness,
    buyer: Pk,
    reference: DispatchRef,
    containers: u64,
) -> Result<(), huashi_engine::reject::Reject> {
    let action = Action::FileComplaint { reference, reason: ComplaintReason::Quality, containers, note: String::new() };
    h.act(actor(buyer), action)
}

/// Three buyers take a round in the multi-buy window; the operator voids the second one's.
fn multi_buy_lot(h: &mut Harness) -> (LotId, [Pk; 3], Pk) {
    let grower = h.grower("g1");
    let buyers = [h.buyer("b1", 1_000_000), h.buyer("b2", 1_000_000), h.buyer("b3", 1_000_000)];
    let lot = h.consign(grower, 6, 10, 100, 1);
    h.configure(1, ClockSettingsPatch { multi_buy_ms: Some(1_000), ..Default::default() });
    h.assign(lot, 1, 200);
    h.start_and_run(1);
    let (round, _) = h.running_round(1);
    for (i, b) in buyers.iter().enumerate() {
        h.bid(*b, 1, lot, round, 1 + i as u32).unwrap();
    }
    (lot, buyers, grower)
}

#[test]
fn every_award_presale_and_fill_is_a_line_and_a_void_removes_exactly_its_own() {
    let mut h = Harness::new();
    let (lot, buyers, _) = multi_buy_lot(&mut h);
    assert_eq!(
        refs(&h),
        [format!("clock:{}:1:1", lot.0), format!("clock:{}:1:2", lot.0), format!("clock:{}:1:3", lot.0)]
    );
    let b2 = h.market.participants().get(buyers[1]).id;
    h.ok(op(), Action::VoidAward { clock: clock(1), lot, round: 1, buyer: Some(b2) });
    assert_eq!(refs(&h), [format!("clock:{}:1:1", lot.0), format!("clock:{}:1:3", lot.0)]);
    let third = lines(&h).into_iter().find(|l| l.reference == clock_ref(lot, 1, 3)).unwrap();
    assert_eq!((third.buyer, third.containers, third.units), (buyers[2], Some(3), 30));
    // The lot leaves the clock: its lines stay as they were, now kept by the dispatch itself.
    h.halt(1);
    assert_eq!(refs(&h), [format!("clock:{}:1:1", lot.0), format!("clock:{}:1:3", lot.0)]);

    // A presale purchase and a book fill.
    let grower = h.grower("g2");
    let presold = h.consign(grower, 4, 5, 80, 1);
    h.ok(actor(grower), Action::OfferPresale { lot: presold, price: Fen(90), containers: 2 });
    h.ok(actor(buyers[0]), Action::BuyPresale { lot: presold, containers: 2 });
    h.ok(op(), Action::SetBookState { symbol: code("ROSE-A"), state: BookState::Open });
    let sell = order("s1", "ROSE-A", Side::Sell, Some(100), 30, TimeInForce::Day);
    h.ok(actor(grower), Action::NewOrder(sell));
    let buy = order("p1", "ROSE-A", Side::Buy, Some(100), 12, TimeInForce::Day);
    h.ok(actor(buyers[2]), Action::NewOrder(buy));
    let trade = h
        .last_events()
        .iter()
        .find_map(|e| match e {
            Event::Traded(t) => Some(t.trade_id),
            _ => None,
        })
        .unwrap();
    let all = lines(&h);
    let presale = all.iter().find(|l| l.reference == DispatchRef::Presale { lot: presold, number: 1 }).unwrap();
    assert_eq!((presale.buyer, presale.containers, presale.units), (buyers[0], Some(2), 10));
    let fill = all.iter().find(|l| l.reference == DispatchRef::Book(trade)).unwrap();
    assert_eq!((fill.buyer, fill.containers, fill.units, fill.grade), (buyers[2], None, 12, None));
    assert!(all.iter().all(|l| l.status == DispatchStatus::Awaiting));
}

#[test]
fn a_line_never_goes_back_and_a_warm_reading_raises_the_alarm_for_good() {
    let mut h = Harness::new();
    let (lot, buyers, _) = multi_buy_lot(&mut h);
    let first = clock_ref(lot, 1, 1);
    // Asked for while the lot is still on the clock: the line is there.
    update(&mut h, first, DispatchStatus::Picked, Some(650));
    h.rejected(
        op(),
        Action::UpdateDispatch {
            reference: first,
            status: DispatchStatus::Awaiting,
            temperature: None,
            location: None,
        },
        RejectCode::InvalidState,
    );
    h.rejected(
        op(),
        Action::UpdateDispatch { reference: first, status: DispatchStatus::Picked, temperature: None, location: None },
        RejectCode::InvalidState,
    );
    // A buyer may not move goods; an unknown ref is not found.
    h.rejected(
        actor(buyers[0]),
        Action::UpdateDispatch { reference: first, status: DispatchStatus::Loaded, temperature: None, location: None },
        RejectCode::Forbidden,
    );
    h.rejected(
        op(),
        Action::UpdateDispatch {
            reference: DispatchRef::Book(TradeId(999)),
            status: DispatchStatus::Loaded,
            temperature: None,
            location: None,
        },
        RejectCode::NotFound,
    );
    // 8.00 °C is the cut-flower maximum: at it, no alarm; above it, the alarm, once.
    let Event::DispatchUpdated { line, alarm_raised, .. } = update(&mut h, first, DispatchStatus::ColdStore, Some(800))
    else {
        panic!()
    };
    assert!(!line.alarm && !alarm_raised);
    let Event::DispatchUpdated { line, alarm_raised, max_temperature, .. } =
        update(&mut h, first, DispatchStatus::ColdStore, Some(801))
    else {
        panic!()
    };
    assert!(line.alarm && alarm_raised && max_temperature == Some(Centi(800)));
    let Event::DispatchUpdated { line, alarm_raised, .. } = update(&mut h, first, DispatchStatus::Loaded, Some(400))
    else {
        panic!()
    };
    assert!(line.alarm && !alarm_raised, "the alarm stays once raised");
    // The operator raises the maximum: market state, like the fees.
    h.ok(op(), Action::SetColdChain { category: Category::CutFlower, max_temperature: Centi(1_200) });
    assert_eq!(h.market.max_temperature(Category::CutFlower), Some(Centi(1_200)));
    let Event::DispatchUpdated { line, alarm_raised, .. } =
        update(&mut h, clock_ref(lot, 1, 2), DispatchStatus::Picked, Some(1_100))
    else {
        panic!()
    };
    assert!(!line.alarm && !alarm_raised);
    update(&mut h, first, DispatchStatus::Delivered, None);
    h.rejected(
        op(),
        Action::UpdateDispatch {
            reference: first,
            status: DispatchStatus::Delivered,
            temperature: Some(Centi(500)),
            location: None,
        },
        RejectCode::InvalidState,
    );
}

#[test]
fn complaints_are_the_buyer_s_own_within_what_it_bought_until_the_next_trading_day_ends() {
    let mut h = Harness::new();
    let (lot, buyers, grower) = multi_buy_lot(&mut h);
    h.halt(1);
    let second = clock_ref(lot, 1, 2); // b2's two containers of 10 units at the stop price
    let price = lines(&h).iter().find(|l| l.reference == second).map(|l| l.reference).unwrap();
    assert_eq!(price, second);
    assert_eq!(complain(&mut h, buyers[0], second, 1).unwrap_err().code, RejectCode::Forbidden);
    assert_eq!(complain(&mut h, grower, second, 1).unwrap_err().code, RejectCode::Forbidden);
    assert_eq!(complain(&mut h, buyers[1], second, 3).unwrap_err().code, RejectCode::QuantityInvalid);
    complain(&mut h, buyers[1], second, 1).unwrap();
    let Some(Event::ComplaintFiled(filed)) = h.last_events().last().cloned() else { panic!() };
    let stop_price = h.awards()[1].price;
    assert_eq!(filed.credit_max, Fen(stop_price.0 * 10), "the amount of the complained container");
    complain(&mut h, buyers[1], second, 1).unwrap();
    assert_eq!(
        complain(&mut h, buyers[1], second, 1).unwrap_err().code,
        RejectCode::QuantityInvalid,
        "both containers complained about"
    );
    // Decisions: a credit above the complained amount or on a rejection is refused.
    let (one, two) = (filed.id, filed.id + 1);
    let resolve = |complaint, decision, credit| Action::ResolveComplaint { complaint, decision, credit: Fen(credit) };
    h.rejected(actor(buyers[1]), resolve(one, Decision::Accepted, 1), RejectCode::Forbidden);
    h.rejected(op(), resolve(one, Decision::Accepted, stop_price.0 * 10 + 1), RejectCode::PriceInvalid);
    h.rejected(op(), resolve(two, Decision::Rejected, 1), RejectCode::PriceInvalid);
    h.ok(op(), resolve(one, Decision::Accepted, 500));
    h.ok(op(), resolve(two, Decision::Rejected, 0));
    h.rejected(op(), resolve(two, Decision::Rejected, 0), RejectCode::NotFound);

    // The next trading day the first day's purchases can still be complained about; the day
    // after, not.
    let first = clock_ref(lot, 1, 1);
    h.ok(op(), Action::EndOfDay);
    complain(&mut h, buyers[0], first, 1).unwrap();
    h.ok(op(), Action::EndOfDay);
    assert_eq!(complain(&mut h, buyers[0], first, 1).unwrap_err().code, RejectCode::InvalidState);
    // The decision is still taken after the window.
    let open: Vec<u64> = h.market.open_complaints().map(|c| c.id).collect();
    assert_eq!(open.len(), 1);
    h.ok(op(), resolve(open[0], Decision::Accepted, 100));
}

#[test]
fn the_quality_index_counts_accepted_containers_against_sold_ones_at_end_of_day() {
    let mut h = Harness::new();
    let (lot, buyers, grower) = multi_buy_lot(&mut h);
    h.halt(1);
    assert_eq!(h.market.quality(grower).qi, None, "no settled day yet");
    complain(&mut h, buyers[2], clock_ref(lot, 1, 3), 2).unwrap();
    let id = h.market.open_complaints().next().unwrap().id;
    h.ok(op(), Action::ResolveComplaint { complaint: id, decision: Decision::Accepted, credit: Fen(100) });
    assert_eq!(h.market.quality(grower).qi, None, "the index moves at end_of_day");
    h.ok(op(), Action::EndOfDay);
    // 6 containers sold, 2 of them accepted in a complaint: 100 × (1 − 2/6) = 66.67.
    let q = h.market.quality(grower);
    assert_eq!((q.days, q.lots, q.containers_sold, q.complaints, q.accepted), (1, 1, 6, 1, 1));
    assert_eq!(q.qi, Some(6_667));
    // A new lot of the grower carries its index.
    let next = h.consign(grower, 2, 10, 100, 1);
    assert_eq!(h.market.lot(next).unwrap().qi, Some(6_667));
}
