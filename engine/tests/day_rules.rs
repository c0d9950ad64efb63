//! The auction day's rules in the core (issue 14, protocol sections 4 and 11), each on its own:
//! planned starts (at the start time, from the engine's own clock, once a day), the draw, a big
//! `plan_lots` placed in slices on journaled ticks, presales (offer, replace, buy, close, sell out)
//! and seats within their firm's credit.

mod common;

use common::*;
use huashi_engine::command::{Action, ClockPlan, Command, MasterData};
use huashi_engine::core::clock::ClockPhase;
use huashi_engine::core::limits::MarketLimitsPatch;
use huashi_engine::core::lots::{LotStatus, PresaleOffer};
use huashi_engine::core::planning::{day_time, PLAN_SLICE_LOTS};
use huashi_engine::event::Event;
use huashi_engine::reject::RejectCode;
use huashi_engine::types::{EngineTime, Fen, LotId, Pk};

fn plan(h: &mut Harness, n: u16, products: &[&str], start_time: Option<u32>) {
    let plan = ClockPlan { products: products.iter().map(|p| code(p)).collect(), start_time };
    h.ok(op(), Action::SetClockPlan { clock: clock(n), plan });
}

/// What a `LotsPlanned` says: each lot with its clock and position, and the unplanned lots.
type Plan = (Vec<(LotId, u16, u32)>, Vec<LotId>);

fn planned_events(events: &[Event]) -> Option<Plan> {
    events.iter().find_map(|e| match e {
        Event::LotsPlanned { assigned, unplanned, .. } => {
            Some((assigned.iter().map(|p| (p.lot, p.clock.0, p.position)).collect(), unplanned.clone()))
        }
        _ => None,
    })
}

#[test]
fn a_planned_clock_starts_at_its_time_once_a_day() {
    let mut h = Harness::new();
    let grower = h.grower("g1");
    let day = h.market.day();
    // 06:00 now; clock 1 starts at 06:30 by itself.
    plan(&mut h, 1, &["ROSE"], Some(6 * 3600 + 30 * 60));
    let lots: Vec<LotId> = (0..2).map(|_| h.consign(grower, 1, 10, 100, 1)).collect();
    h.ok(op(), Action::PlanLots { start_markup_bp: 5_000 });
    assert_eq!(h.phase(1), ClockPhase::Idle, "not before its time");
    let start = day_time(day, 6 * 3600 + 30 * 60);
    assert_eq!(h.market.next_wake(), Some(start), "the sequencer is woken at the start time");
    h.tick_at(EngineTime(start.0 - 1));
    assert_eq!(h.phase(1), ClockPhase::Idle);
    h.tick_at(start);
    assert_eq!(h.phase(1), ClockPhase::PreRoll, "started by itself at 06:30, by a journaled tick");
    assert!(h.last_events().iter().any(|e| matches!(e, Event::LotOnClock { lot, .. } if lot.id == lots[0])));
    // Halted, it stays idle: a planned start happens once a day.
    h.halt(1);
    h.tick_ms(60_000);
    assert_eq!(h.phase(1), ClockPhase::Idle);
    assert_eq!(h.market.next_wake(), None);
    // The next day it starts again at its time, once it has lots.
    h.ok(op(), Action::EndOfDay);
    let next_day = h.market.day();
    h.consign(grower, 1, 10, 100, 1);
    h.ok(op(), Action::PlanLots { start_markup_bp: 5_000 });
    let start = day_time(next_day, 6 * 3600 + 30 * 60);
    assert_eq!(h.market.next_wake(), Some(start));
    h.tick_at(start);
    assert_eq!(h.phase(1), ClockPhase::PreRoll);
}

#[test]
fn a_clock_planned_for_an_earlier_time_starts_at_the_first_tick_it_can() {
    let mut h = Harness::new();
    let grower = h.grower("g1");
    // Planned for 05:00, but it gets lots only at 06:00: it starts on the tick right after.
    plan(&mut h, 1, &["ROSE"], Some(5 * 3600));
    h.consign(grower, 1, 10, 100, 1);
    h.ok(op(), Action::PlanLots { start_markup_bp: 0 });
    let now = h.now;
    assert_eq!(h.market.next_wake(), Some(now), "due now, never in the past");
    h.tick_ms(0);
    assert_eq!(h.phase(1), ClockPhase::PreRoll);
    let round = h.market.clock(clock(1)).unwrap().phase_until;
    assert!(round > now, "the pre-roll runs from now, not from 05:00");
}

#[test]
fn a_product_belongs_to_one_plan_and_a_draw_is_once_a_day() {
    let mut h = Harness::new();
    plan(&mut h, 1, &["ROSE", "LILY"], None);
    let clash = ClockPlan { products: vec![code("LILY")], start_time: None };
    h.rejected(op(), Action::SetClockPlan { clock: clock(2), plan: clash }, RejectCode::InvalidState);
    let unknown = ClockPlan { products: vec![code("BAMBOO")], start_time: None };
    h.rejected(op(), Action::SetClockPlan { clock: clock(2), plan: unknown }, RejectCode::NotFound);
    let late = ClockPlan { products: vec![], start_time: Some(86_400) };
    h.rejected(op(), Action::SetClockPlan { clock: clock(2), plan: late }, RejectCode::BadRequest);
    let (g1, g2) = (h.grower("g1"), h.grower("g2"));
    h.consign(g2, 1, 10, 100, 1);
    h.consign(g1, 1, 10, 100, 1);
    h.ok(op(), Action::DrawOrder { seed: 7 });
    let first = h.last_events().to_vec();
    // Asked again with another seed: the same answer.
    h.ok(op(), Action::DrawOrder { seed: 8 });
    assert_eq!(h.last_events(), &first[..]);
    let buyer = h.buyer("b1", 1_000);
    h.rejected(actor(buyer), Action::DrawOrder { seed: 1 }, RejectCode::Forbidden);
}

#[test]
fn a_big_plan_is_placed_in_slices_and_answered_with_the_last() {
    let mut h = Harness::new();
    let lots_max = 6 * PLAN_SLICE_LOTS as u64;
    let limits = MarketLimitsPatch {
        lots_per_day_max: Some(lots_max),
        lots_per_grower_day_max: Some(lots_max),
        supply_line_lots_max: Some(lots_max),
        ..MarketLimitsPatch::default()
    };
    h.ok(op(), Action::SetLimits(limits));
    let growers: Vec<Pk> = (0..5).map(|g| h.grower(&format!("g{g}"))).collect();
    plan(&mut h, 1, &["ROSE"], None);
    plan(&mut h, 2, &["LILY"], None);
    // Six slices: every command in between carries one, like a timer, and the ticks the rest.
    let count = 5 * PLAN_SLICE_LOTS + 300;
    let mut lots = Vec::new();
    for i in 0..count {
        let mut c = consignment(1 + (i % 3) as u32, 10, 100 + (i % 50) as i64, 1);
        c.product = code(if i % 2 == 0 { "ROSE" } else { "LILY" });
        c.master = MasterData { variety: "Carola".into(), ..MasterData::default() };
        h.ok(actor(growers[i % growers.len()]), Action::ConsignLot(Box::new(c)));
        lots.push(LotId(h.market.lots().keys().last().unwrap().0));
    }
    h.ok(op(), Action::DrawOrder { seed: 42 });
    let buyer = h.buyer("b1", 100_000_000);
    h.ok(op(), Action::PlanLots { start_markup_bp: 5_000 });
    assert!(planned_events(h.last_events()).is_none(), "the reply comes with the last slice");
    assert!(matches!(h.last_events(), [Event::PlanningStarted { lots }] if *lots as usize == count));
    // Meanwhile: a lot withdrawn, another sold out by presale; both leave the plan. They are the
    // plan's last two: the last drawn grower's two highest ROSE lots (growers in drawn order,
    // then product code, grade, lot id).
    let last_grower = *h.market.draw().unwrap().growers.last().unwrap();
    let mut theirs: Vec<LotId> = lots
        .iter()
        .copied()
        .filter(|l| {
            let lot = h.market.lot(*l).unwrap();
            lot.grower == last_grower && lot.product.as_str() == "ROSE"
        })
        .collect();
    let (withdrawn, sold_out) = (theirs.pop().unwrap(), theirs.pop().unwrap());
    h.ok(op(), Action::WithdrawLot { lot: withdrawn });
    let grower = h.market.lot(sold_out).unwrap().grower;
    let containers = h.market.lot(sold_out).unwrap().containers;
    h.ok(actor(grower), Action::OfferPresale { lot: sold_out, price: Fen(300), containers });
    h.ok(actor(buyer), Action::BuyPresale { lot: sold_out, containers });
    h.rejected(op(), Action::EndOfDay, RejectCode::InvalidState);
    h.rejected(op(), Action::PlanLots { start_markup_bp: 0 }, RejectCode::InvalidState);
    assert_eq!(h.market.next_wake(), Some(h.now), "the sequencer goes on at once");
    let mut steps = 0;
    let (assigned, unplanned) = loop {
        h.apply(Command::tick()).expect("a tick");
        steps += 1;
        if let Some(done) = planned_events(h.last_events()) {
            break done;
        }
        assert!(steps < 10, "the plan never finished");
    };
    assert!(steps >= 1, "placed in slices of {PLAN_SLICE_LOTS}, the last on a tick: {steps}");
    assert!(unplanned.is_empty());
    assert_eq!(assigned.len(), count - 2, "all but the withdrawn and the sold-out lot");
    for n in [1u16, 2] {
        let positions: Vec<u32> = assigned.iter().filter(|a| a.1 == n).map(|a| a.2).collect();
        assert_eq!(positions, (1..=positions.len() as u32).collect::<Vec<_>>(), "clock {n}'s places run 1, 2, 3…");
        let line: Vec<LotId> = h.market.clock(clock(n)).unwrap().supply_line.iter().copied().collect();
        let listed: Vec<LotId> = assigned.iter().filter(|a| a.1 == n).map(|a| a.0).collect();
        assert_eq!(line, listed, "the supply line is the plan's order");
    }
    assert!(h.last_events().iter().any(|e| matches!(e, Event::Catalogue { .. })), "the catalogue follows the reply");
    assert_eq!(h.market.lot(withdrawn).unwrap().status, LotStatus::Withdrawn);
    assert!(h.market.next_wake().is_none_or(|t| t > h.now), "no more ticks at once: the plan is done");
}

#[test]
fn presale_offers_are_the_grower_s_and_close_on_the_clock() {
    let mut h = Harness::new();
    let (g1, g2) = (h.grower("g1"), h.grower("g2"));
    let buyer = h.buyer("b1", 1_000_000);
    let lot = h.consign(g1, 10, 10, 100, 2);
    h.rejected(actor(g2), Action::OfferPresale { lot, price: Fen(150), containers: 2 }, RejectCode::Forbidden);
    h.rejected(actor(g1), Action::OfferPresale { lot, price: Fen(0), containers: 2 }, RejectCode::PriceInvalid);
    h.rejected(actor(g1), Action::OfferPresale { lot, price: Fen(150), containers: 11 }, RejectCode::QuantityInvalid);
    h.rejected(actor(buyer), Action::BuyPresale { lot, containers: 2 }, RejectCode::InvalidState);
    h.ok(actor(g1), Action::OfferPresale { lot, price: Fen(150), containers: 2 });
    // A new offer replaces the open one.
    h.ok(actor(g1), Action::OfferPresale { lot, price: Fen(140), containers: 5 });
    assert_eq!(h.market.lot(lot).unwrap().presale, Some(PresaleOffer { price: Fen(140), containers: 5 }));
    // Under the minimum purchase of 2: refused; 3 bought, charged like a clock purchase.
    h.rejected(actor(buyer), Action::BuyPresale { lot, containers: 1 }, RejectCode::QuantityInvalid);
    h.ok(actor(buyer), Action::BuyPresale { lot, containers: 3 });
    let Some(Event::PresaleBought(sale)) = h.last_events().last() else { panic!("{:?}", h.last_events()) };
    assert_eq!((sale.amount, sale.fee, sale.number, sale.offer_left), (Fen(4_200), Fen(150), 1, 2));
    assert_eq!(h.account(buyer).exposure(), Fen(4_350));
    let l = h.market.lot(lot).unwrap();
    assert_eq!((l.remaining, l.sold, l.status), (7, 3, LotStatus::Consigned));
    // The rest of the offer (2, under... exactly the minimum) may be bought whole.
    h.ok(actor(g1), Action::WithdrawPresale { lot });
    assert!(matches!(h.last_events(), [Event::PresaleWithdrawn { containers: 2, .. }]));
    h.rejected(actor(g1), Action::WithdrawPresale { lot }, RejectCode::NotFound);
    h.ok(actor(g1), Action::OfferPresale { lot, price: Fen(140), containers: 1 });
    // Minimum 2, but only 1 offered: that 1 may be bought.
    h.ok(actor(buyer), Action::BuyPresale { lot, containers: 1 });
    assert_eq!(h.market.lot(lot).unwrap().presale, None, "bought out");
    h.ok(actor(g1), Action::OfferPresale { lot, price: Fen(140), containers: 2 });
    // On the clock the offer closes and what is left is auctioned.
    h.assign(lot, 1, 300);
    h.start(1);
    assert!(h.last_events().iter().any(|e| matches!(e, Event::PresaleClosed { containers: 2, .. })));
    assert_eq!(h.market.lot(lot).unwrap().presale, None);
    h.rejected(actor(g1), Action::OfferPresale { lot, price: Fen(140), containers: 1 }, RejectCode::InvalidState);
}

#[test]
fn a_lot_sold_out_by_presale_leaves_its_supply_line() {
    let mut h = Harness::new();
    let g1 = h.grower("g1");
    let buyer = h.buyer("b1", 1_000_000);
    let lot = h.consign(g1, 4, 10, 100, 1);
    let other = h.consign(g1, 4, 10, 100, 1);
    h.assign(lot, 1, 200);
    h.assign(other, 1, 200);
    h.ok(actor(g1), Action::OfferPresale { lot, price: Fen(150), containers: 4 });
    h.ok(actor(buyer), Action::BuyPresale { lot, containers: 4 });
    assert_eq!(h.market.lot(lot).unwrap().status, LotStatus::Sold);
    let line: Vec<LotId> = h.market.clock(clock(1)).unwrap().supply_line.iter().copied().collect();
    assert_eq!(line, vec![other]);
    assert!(h.last_events().iter().any(|e| matches!(e, Event::SupplyLine { next, .. } if next.len() == 1)));
    // A suspended grower's open offers are withdrawn.
    h.ok(actor(g1), Action::OfferPresale { lot: other, price: Fen(150), containers: 1 });
    h.set_active(g1, false);
    assert_eq!(h.market.lot(other).unwrap().presale, None);
}

#[test]
fn seats_buy_within_their_daily_limits_and_their_firm_s_credit() {
    let mut h = Harness::new();
    let g1 = h.grower("g1");
    let firm = h.buyer("f1", 10_000);
    let seat = |h: &mut Harness, id: &str, daily: Option<i64>| {
        h.ok(
            op(),
            Action::RegisterParticipant {
                id: code(id),
                name: id.into(),
                roles: roles(false, true),
                credit_limit: Fen(0),
                token_hash: [3; 32],
                firm: Some(code("f1")),
                daily_limit: daily.map(Fen),
            },
        );
        h.market.participants().lookup(&code(id)).unwrap()
    };
    let s1 = seat(&mut h, "s1", Some(3_000));
    let s2 = seat(&mut h, "s2", None);
    let lot = h.consign(g1, 100, 10, 10, 1);
    h.ok(actor(g1), Action::OfferPresale { lot, price: Fen(20), containers: 100 });
    // A container: 10 × 0.20 + 0.50 fee = 2.50.
    h.ok(actor(s1), Action::BuyPresale { lot, containers: 12 });
    let refused = h.rejected(actor(s1), Action::BuyPresale { lot, containers: 1 }, RejectCode::CreditLimit);
    assert!(refused.message.contains("daily_limit"), "{refused}");
    // The other seat buys on: up to the firm's 100.00 in all.
    h.ok(actor(s2), Action::BuyPresale { lot, containers: 28 });
    let refused = h.rejected(actor(s2), Action::BuyPresale { lot, containers: 1 }, RejectCode::CreditLimit);
    assert!(refused.message.contains("f1"), "{refused}");
    assert_eq!(h.account(firm).exposure(), Fen(10_000));
    assert_eq!(h.account(s1).exposure(), Fen(3_000));
    // The firm's own purchases count against the same credit.
    h.rejected(actor(firm), Action::BuyPresale { lot, containers: 1 }, RejectCode::CreditLimit);
    // Raising the seat's daily limit does not raise the firm's credit.
    h.ok(op(), Action::SetCreditLimit { participant: code("s1"), limit: None, daily_limit: Some(Fen(5_000)) });
    h.rejected(actor(s1), Action::BuyPresale { lot, containers: 1 }, RejectCode::CreditLimit);
    let not_a_seat = Action::SetCreditLimit { participant: code("f1"), limit: None, daily_limit: Some(Fen(1)) };
    h.rejected(op(), not_a_seat, RejectCode::BadRequest);
    // Settled, the day's purchases are paid: both seats buy again.
    h.ok(op(), Action::EndOfDay);
    assert_eq!(h.account(firm).exposure(), Fen(0));
    assert_eq!(h.account(s1).exposure(), Fen(0));
}
