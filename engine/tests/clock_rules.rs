//! The Dutch clock rules of protocol section 6, one test per rule, driven through `Market::apply`
//! exactly as the sequencer drives it: every command carries its engine time and timers fall due
//! on the way to it.

mod common;

use common::*;
use huashi_engine::command::{Action, Actor, ClockSettingsPatch};
use huashi_engine::core::clock::ClockPhase;
use huashi_engine::core::lots::LotStatus;
use huashi_engine::event::Event;
use huashi_engine::reject::RejectCode;
use huashi_engine::types::{EngineTime, Fen, LotId, Pk};

/// A market with one grower and two well-funded buyers.
struct Floor {
    h: Harness,
    grower: Pk,
    alice: Pk,
    bob: Pk,
}

fn floor() -> Floor {
    let mut h = Harness::new();
    let grower = h.grower("grower");
    let alice = h.buyer("alice", 10_000_000);
    let bob = h.buyer("bob", 10_000_000);
    Floor { h, grower, alice, bob }
}

impl Floor {
    /// Consigns a lot (10 units per container) and puts it on clock `n` at `start`.
    fn lot_on(&mut self, n: u16, containers: u32, min_price: i64, start: i64) -> LotId {
        let lot = self.h.consign(self.grower, containers, 10, min_price, 1);
        self.h.assign(lot, n, start);
        lot
    }
}

fn patch() -> ClockSettingsPatch {
    ClockSettingsPatch::default()
}

fn clock_started(events: &[Event]) -> Vec<(u32, Fen, Fen, u32, EngineTime, u32)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::ClockStarted { round, start_price, step, tick_ms, start_ts, remaining, .. } => {
                Some((*round, *start_price, *step, *tick_ms, *start_ts, *remaining))
            }
            _ => None,
        })
        .collect()
}

fn lot_unsold(events: &[Event]) -> Vec<(LotId, u32, u32, EngineTime)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::LotUnsold { lot, round, remaining, ts, .. } => Some((*lot, *round, *remaining, *ts)),
            _ => None,
        })
        .collect()
}

fn lots_on_clock(events: &[Event]) -> Vec<LotId> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::LotOnClock { lot, .. } => Some(lot.id),
            _ => None,
        })
        .collect()
}

#[test]
fn pre_roll_runs_before_round_one() {
    let mut f = floor();
    let lot = f.lot_on(1, 5, 100, 300);
    let t0 = f.h.now;
    f.h.start(1);
    let events = f.h.last_events().to_vec();
    assert!(matches!(&events[0], Event::LotOnClock { lot: l, start_price: Fen(300), .. } if l.id == lot));
    assert!(matches!(events[1], Event::ClockState { phase: ClockPhase::PreRoll, .. }));
    assert_eq!(f.h.market.lot(lot).unwrap().status, LotStatus::OnClock);
    assert_eq!(f.h.market.next_deadline(), Some(t0.plus_ms(1000)));

    // One microsecond before the pre-roll ends nothing has started, and a bid is early.
    f.h.tick_at(EngineTime(t0.plus_ms(1000).0 - 1));
    assert_eq!(f.h.phase(1), ClockPhase::PreRoll);
    assert!(clock_started(&f.h.events).is_empty());
    f.h.rejected(
        actor(f.alice),
        Action::Bid { clock: clock(1), lot, round: 1, containers: 1 },
        RejectCode::InvalidState,
    );

    f.h.tick_at(t0.plus_ms(1000));
    assert_eq!(f.h.phase(1), ClockPhase::Running);
    assert_eq!(clock_started(f.h.last_events()), vec![(1, Fen(300), Fen(1), 10, t0.plus_ms(1000), 5)]);
}

/// Starts a round at 500 with step 2 and tick 10 ms, bids `offset_us` after `start_ts`, and
/// returns the price awarded.
fn price_of_bid_after(offset_us: u64) -> Fen {
    let mut f = floor();
    f.h.configure(1, ClockSettingsPatch { step: Some(Fen(2)), tick_ms: Some(10), ..patch() });
    let lot = f.lot_on(1, 5, 100, 500);
    let start_ts = f.h.start_and_run(1);
    f.h.now = EngineTime(start_ts.0 + offset_us);
    f.h.bid(f.alice, 1, lot, 1, 1).expect("a valid bid in a running round wins");
    let award = f.h.last_award();
    assert_eq!(award.ts, f.h.now);
    award.price
}

#[test]
fn price_is_start_minus_step_times_elapsed_ticks_at_exact_boundaries() {
    // price(t) = 500 − 2 × floor((t − start_ts) / 10 ms)
    assert_eq!(price_of_bid_after(0), Fen(500));
    assert_eq!(price_of_bid_after(9_999), Fen(500));
    assert_eq!(price_of_bid_after(10_000), Fen(498));
    assert_eq!(price_of_bid_after(19_999), Fen(498));
    assert_eq!(price_of_bid_after(20_000), Fen(496));
    assert_eq!(price_of_bid_after(55_000), Fen(490));
    assert_eq!(price_of_bid_after(1_000_000), Fen(300));
}

#[test]
fn round_ends_unsold_at_the_first_tick_below_the_reserve_and_the_clock_moves_on() {
    let mut f = floor();
    f.h.configure(1, ClockSettingsPatch { step: Some(Fen(2)), ..patch() });
    // 110, 108, 106, 104, 102 sell; tick 5 would price 100 < 101.
    let first = f.lot_on(1, 4, 101, 110);
    let second = f.lot_on(1, 3, 50, 80);
    let start_ts = f.h.start_and_run(1);
    assert_eq!(f.h.market.next_deadline(), Some(start_ts.plus_ms(50)));

    f.h.tick_at(EngineTime(start_ts.plus_ms(50).0 - 1));
    assert_eq!(f.h.phase(1), ClockPhase::Running);
    assert!(lot_unsold(&f.h.events).is_empty());

    f.h.tick_at(start_ts.plus_ms(50));
    assert_eq!(lot_unsold(f.h.last_events()), vec![(first, 1, 4, start_ts.plus_ms(50))]);
    let lot = f.h.market.lot(first).unwrap();
    assert_eq!((lot.status, lot.remaining, lot.unsold, lot.sold), (LotStatus::Unsold, 0, 4, 0));
    assert_eq!(lots_on_clock(f.h.last_events()), vec![second], "the clock moves to the next lot");
    assert_eq!(f.h.phase(1), ClockPhase::PreRoll);
    // The finished lot takes no more bids.
    f.h.rejected(
        actor(f.alice),
        Action::Bid { clock: clock(1), lot: first, round: 1, containers: 1 },
        RejectCode::TooLate,
    );
}

#[test]
fn rest_of_a_partly_sold_lot_is_unsold_when_its_round_ends() {
    let mut f = floor();
    f.h.configure(1, ClockSettingsPatch { pause_ms: Some(0), restart_ticks: Some(0), ..patch() });
    let lot = f.lot_on(1, 5, 100, 105);
    f.h.start_and_run(1);
    f.h.bid(f.alice, 1, lot, 1, 2).unwrap();
    // Round 2 starts right away at the award price; it ends once the price would go below 100.
    f.h.tick_ms(1_000);
    let unsold = lot_unsold(&f.h.events);
    assert_eq!(unsold.len(), 1);
    assert_eq!((unsold[0].1, unsold[0].2), (2, 3));
    let lot = f.h.market.lot(lot).unwrap();
    assert_eq!((lot.status, lot.sold, lot.unsold, lot.remaining), (LotStatus::PartlySold, 2, 3, 0));
    assert_eq!(f.h.phase(1), ClockPhase::Idle, "an empty supply line leaves the clock idle");
}

#[test]
fn price_exactly_at_the_reserve_still_sells() {
    let mut f = floor();
    f.h.configure(1, ClockSettingsPatch { step: Some(Fen(2)), ..patch() });
    let lot = f.lot_on(1, 4, 100, 110);
    let start_ts = f.h.start_and_run(1);
    // Tick 5 prices exactly 100 = the reserve: still running, and it sells.
    f.h.now = start_ts.plus_ms(59);
    f.h.bid(f.alice, 1, lot, 1, 1).unwrap();
    assert_eq!(f.h.last_award().price, Fen(100));
    assert!(lot_unsold(&f.h.events).is_empty());
}

#[test]
fn round_at_the_reserve_ends_one_tick_later() {
    let mut f = floor();
    f.h.configure(1, ClockSettingsPatch { step: Some(Fen(2)), ..patch() });
    let lot = f.lot_on(1, 4, 100, 110);
    let start_ts = f.h.start_and_run(1);
    assert_eq!(f.h.market.next_deadline(), Some(start_ts.plus_ms(60)));
    f.h.now = start_ts.plus_ms(60);
    f.h.rejected(actor(f.alice), Action::Bid { clock: clock(1), lot, round: 1, containers: 1 }, RejectCode::TooLate);
    assert_eq!(lot_unsold(&f.h.events).len(), 1);
}

#[test]
fn first_valid_bid_wins_at_the_price_when_received() {
    let mut f = floor();
    let lot = f.lot_on(1, 10, 100, 400);
    let start_ts = f.h.start_and_run(1);
    f.h.now = start_ts.plus_ms(123); // 12 ticks: 388
    f.h.bid(f.alice, 1, lot, 1, 3).unwrap();
    let award = f.h.last_award();
    assert_eq!(
        (award.buyer, award.price, award.containers, award.round, award.remaining),
        (f.alice, Fen(388), 3, 1, 7)
    );
    assert_eq!(award.units, 30);
    assert_eq!(award.amount, Fen(388 * 30));
    assert_eq!(award.fee, Fen(150), "0.50 per container");
    assert_eq!(award.commission, Fen(582), "5 % of 116.40");
    assert!(!award.standing);
    assert_eq!(f.h.phase(1), ClockPhase::Pause, "the winning bid stops the clock");
    // Bob pressed at the same instant but reached the engine second.
    f.h.rejected(actor(f.bob), Action::Bid { clock: clock(1), lot, round: 1, containers: 3 }, RejectCode::TooLate);
    assert_eq!(f.h.awards().len(), 1);
}

#[test]
fn bid_under_the_minimum_purchase_is_quantity_invalid_and_the_clock_runs_on() {
    let mut f = floor();
    let lot = f.h.consign(f.grower, 6, 10, 100, 3);
    f.h.assign(lot, 1, 300);
    let start_ts = f.h.start_and_run(1);
    f.h.now = start_ts.plus_ms(20);
    f.h.rejected(
        actor(f.alice),
        Action::Bid { clock: clock(1), lot, round: 1, containers: 2 },
        RejectCode::QuantityInvalid,
    );
    assert_eq!(f.h.phase(1), ClockPhase::Running);
    f.h.now = start_ts.plus_ms(30);
    f.h.bid(f.bob, 1, lot, 1, 3).unwrap();
    assert_eq!(f.h.last_award().price, Fen(297), "the clock kept falling after the invalid bid");
}

#[test]
fn all_that_remains_satisfies_the_minimum_purchase() {
    let mut f = floor();
    let lot = f.h.consign(f.grower, 5, 10, 100, 3);
    f.h.assign(lot, 1, 300);
    f.h.start_and_run(1);
    f.h.bid(f.alice, 1, lot, 1, 4).unwrap();
    f.h.tick_ms(500); // pause over: round 2 with 1 container left, less than min_purchase
    let (round, _) = f.h.running_round(1);
    assert_eq!(round, 2);
    f.h.bid(f.bob, 1, lot, 2, 1).expect("all that remains may be bought");
    let lot = f.h.market.lot(lot).unwrap();
    assert_eq!((lot.sold, lot.remaining), (5, 0));
}

#[test]
fn all_that_remains_means_all_of_it() {
    let mut f = floor();
    let lot = f.h.consign(f.grower, 5, 10, 100, 3);
    f.h.assign(lot, 1, 300);
    f.h.start_and_run(1);
    f.h.bid(f.alice, 1, lot, 1, 3).unwrap();
    f.h.tick_ms(500); // 2 left, under min_purchase 3: only both together
    f.h.rejected(
        actor(f.bob),
        Action::Bid { clock: clock(1), lot, round: 2, containers: 1 },
        RejectCode::QuantityInvalid,
    );
    f.h.bid(f.bob, 1, lot, 2, 2).unwrap();
}

#[test]
fn bid_over_what_remains_or_for_nothing_is_quantity_invalid() {
    let mut f = floor();
    let lot = f.lot_on(1, 4, 100, 300);
    f.h.start_and_run(1);
    f.h.rejected(
        actor(f.alice),
        Action::Bid { clock: clock(1), lot, round: 1, containers: 5 },
        RejectCode::QuantityInvalid,
    );
    f.h.rejected(
        actor(f.alice),
        Action::Bid { clock: clock(1), lot, round: 1, containers: 0 },
        RejectCode::QuantityInvalid,
    );
    assert_eq!(f.h.phase(1), ClockPhase::Running);
    f.h.bid(f.alice, 1, lot, 1, 4).unwrap();
}

#[test]
fn credit_check_includes_the_buyer_fee_and_the_clock_runs_on() {
    let mut f = floor();
    // 2 containers × 10 units × 1.00 = 20.00, plus 2 × 0.50 fee = 21.00.
    let short = f.h.buyer("short", 2_099);
    let exact = f.h.buyer("exact", 2_100);
    let lot = f.lot_on(1, 4, 50, 100);
    let start_ts = f.h.start_and_run(1);
    f.h.rejected(actor(short), Action::Bid { clock: clock(1), lot, round: 1, containers: 2 }, RejectCode::CreditLimit);
    assert_eq!(f.h.phase(1), ClockPhase::Running, "an invalid bid leaves the clock running");
    assert_eq!(f.h.account(short).exposure(), Fen(0));
    // One tick later 2 × 10 × 0.99 + 1.00 = 20.80 fits the short buyer.
    f.h.now = start_ts.plus_ms(10);
    f.h.bid(short, 1, lot, 1, 2).unwrap();
    assert_eq!(f.h.account(short).exposure(), Fen(2_080));
    assert_eq!(f.h.account(short).available(), Fen(19));
    f.h.tick_ms(500);
    f.h.bid(exact, 1, lot, 2, 2).unwrap();
    // Round 2 restarts at min(1.00, 0.99 + 10 × 0.01) = 1.00: exactly the exact buyer's limit.
    assert_eq!(f.h.last_award().price, Fen(100));
    assert_eq!(f.h.account(exact).available(), Fen(0));
}

#[test]
fn bid_for_a_stopped_or_ended_round_is_too_late() {
    let mut f = floor();
    f.h.configure(1, ClockSettingsPatch { multi_buy_ms: Some(0), ..patch() });
    let lot = f.lot_on(1, 6, 100, 200);
    f.h.start_and_run(1);
    f.h.bid(f.alice, 1, lot, 1, 2).unwrap();
    // Stopped: in the pause.
    f.h.advance_ms(100);
    f.h.rejected(actor(f.bob), Action::Bid { clock: clock(1), lot, round: 1, containers: 1 }, RejectCode::TooLate);
    // Ended: round 2 is running now.
    f.h.tick_ms(400);
    assert_eq!(f.h.running_round(1).0, 2);
    f.h.rejected(actor(f.bob), Action::Bid { clock: clock(1), lot, round: 1, containers: 1 }, RejectCode::TooLate);
    // A round that has not started yet is a different mistake.
    f.h.rejected(actor(f.bob), Action::Bid { clock: clock(1), lot, round: 3, containers: 1 }, RejectCode::InvalidState);
}

#[test]
fn bid_for_a_halted_round_is_too_late_also_once_the_lot_is_back_on_the_clock() {
    let mut f = floor();
    let lot = f.lot_on(1, 6, 100, 200);
    f.h.start_and_run(1);
    f.h.halt(1);
    // The lot waits at the head of the supply line: round 1 ended without a sale.
    f.h.rejected(actor(f.bob), Action::Bid { clock: clock(1), lot, round: 1, containers: 1 }, RejectCode::TooLate);
    f.h.start(1);
    // In the new pre-roll, round 1 is still over (and round 2 has not started).
    assert_eq!(f.h.phase(1), ClockPhase::PreRoll);
    f.h.rejected(actor(f.bob), Action::Bid { clock: clock(1), lot, round: 1, containers: 1 }, RejectCode::TooLate);
    f.h.rejected(actor(f.bob), Action::Bid { clock: clock(1), lot, round: 2, containers: 1 }, RejectCode::InvalidState);
    f.h.tick_ms(1_000);
    assert_eq!(f.h.running_round(1).0, 2, "rounds keep counting after a halt");
    f.h.bid(f.bob, 1, lot, 2, 1).unwrap();
}

#[test]
fn next_round_restarts_at_award_plus_restart_ticks_after_the_pause() {
    let mut f = floor();
    f.h.configure(1, ClockSettingsPatch { step: Some(Fen(2)), restart_ticks: Some(5), pause_ms: Some(300), ..patch() });
    let lot = f.lot_on(1, 6, 100, 500);
    let start_ts = f.h.start_and_run(1);
    f.h.now = start_ts.plus_ms(200); // 20 ticks: 460
    f.h.bid(f.alice, 1, lot, 1, 2).unwrap();
    let award_ts = f.h.now;
    assert_eq!(f.h.market.next_deadline(), Some(award_ts.plus_ms(300)));
    f.h.tick_at(EngineTime(award_ts.plus_ms(300).0 - 1));
    assert_eq!(f.h.phase(1), ClockPhase::Pause);
    f.h.tick_at(award_ts.plus_ms(300));
    // min(5.00, 4.60 + 5 × 0.02) = 4.70
    assert_eq!(clock_started(f.h.last_events()), vec![(2, Fen(470), Fen(2), 10, award_ts.plus_ms(300), 4)]);
}

#[test]
fn restart_price_never_exceeds_the_start_price() {
    let mut f = floor();
    let lot = f.lot_on(1, 6, 100, 500);
    let start_ts = f.h.start_and_run(1);
    f.h.now = start_ts.plus_ms(30); // 497; 497 + 10 × 0.01 = 5.07 > 5.00
    f.h.bid(f.alice, 1, lot, 1, 2).unwrap();
    f.h.tick_ms(500);
    let started = clock_started(f.h.last_events());
    assert_eq!((started[0].0, started[0].1), (2, Fen(500)));
}

#[test]
fn sold_out_lot_brings_the_next_lot_after_the_pause() {
    let mut f = floor();
    let first = f.lot_on(1, 3, 100, 200);
    let second = f.lot_on(1, 2, 100, 250);
    f.h.start_and_run(1);
    f.h.bid(f.alice, 1, first, 1, 3).unwrap();
    assert_eq!(f.h.phase(1), ClockPhase::Pause);
    f.h.tick_ms(499);
    assert!(lots_on_clock(f.h.last_events()).is_empty());
    f.h.tick_ms(1);
    assert_eq!(lots_on_clock(f.h.last_events()), vec![second]);
    assert_eq!(f.h.market.lot(first).unwrap().status, LotStatus::Sold);
    assert_eq!(f.h.phase(1), ClockPhase::PreRoll);
    f.h.tick_ms(1_000);
    f.h.bid(f.bob, 1, second, 1, 2).unwrap();
    f.h.tick_ms(500);
    assert_eq!(f.h.phase(1), ClockPhase::Idle, "the supply line ran out");
    assert_eq!(f.h.market.next_deadline(), None);
}

#[test]
fn multi_buy_awards_later_bids_in_the_window_at_the_same_price_in_arrival_order() {
    let mut f = floor();
    let carol = f.h.buyer("carol", 10_000_000);
    let dave = f.h.buyer("dave", 10_000_000);
    f.h.configure(1, ClockSettingsPatch { multi_buy_ms: Some(100), ..patch() });
    let lot = f.lot_on(1, 10, 100, 300);
    let start_ts = f.h.start_and_run(1);
    f.h.now = start_ts.plus_ms(50); // 295
    f.h.bid(f.alice, 1, lot, 1, 4).unwrap();
    let stop_ts = f.h.now;
    f.h.advance_ms(40);
    f.h.bid(f.bob, 1, lot, 1, 3).unwrap();
    assert_eq!((f.h.last_award().price, f.h.last_award().remaining), (Fen(295), 3));
    // Two arrivals at the same instant: carol asks for more than is left, dave for the rest.
    f.h.advance_ms(20);
    f.h.rejected(
        actor(carol),
        Action::Bid { clock: clock(1), lot, round: 1, containers: 4 },
        RejectCode::QuantityInvalid,
    );
    f.h.bid(dave, 1, lot, 1, 3).unwrap();
    assert_eq!(f.h.last_award().price, Fen(295));
    // Nothing left: the window is shut even though it has not run out.
    f.h.rejected(actor(carol), Action::Bid { clock: clock(1), lot, round: 1, containers: 1 }, RejectCode::TooLate);
    let buyers: Vec<_> = f.h.awards().iter().map(|a| (a.buyer, a.price, a.containers)).collect();
    assert_eq!(buyers, vec![(f.alice, Fen(295), 4), (f.bob, Fen(295), 3), (dave, Fen(295), 3)]);
    assert!(f.h.now < stop_ts.plus_ms(100));
}

#[test]
fn multi_buy_window_closes_multi_buy_ms_after_the_stopping_bid() {
    let mut f = floor();
    f.h.configure(1, ClockSettingsPatch { multi_buy_ms: Some(100), ..patch() });
    let lot = f.lot_on(1, 10, 100, 300);
    f.h.start_and_run(1);
    f.h.bid(f.alice, 1, lot, 1, 2).unwrap();
    let stop_ts = f.h.now;
    f.h.now = EngineTime(stop_ts.plus_ms(100).0 - 1);
    f.h.bid(f.bob, 1, lot, 1, 2).expect("still inside the window");
    f.h.now = stop_ts.plus_ms(100);
    f.h.rejected(actor(f.bob), Action::Bid { clock: clock(1), lot, round: 1, containers: 2 }, RejectCode::TooLate);
    // The pause follows the window.
    assert_eq!(f.h.market.next_deadline(), Some(stop_ts.plus_ms(600)));
}

#[test]
fn without_multi_buy_a_second_bid_in_the_same_round_is_too_late() {
    let mut f = floor();
    let lot = f.lot_on(1, 10, 100, 300);
    f.h.start_and_run(1);
    f.h.bid(f.alice, 1, lot, 1, 2).unwrap();
    f.h.advance_us(1);
    f.h.rejected(actor(f.bob), Action::Bid { clock: clock(1), lot, round: 1, containers: 2 }, RejectCode::TooLate);
}

#[test]
fn standing_bid_wins_at_the_tick_time_at_the_first_price_at_or_below_its_max() {
    let mut f = floor();
    f.h.configure(1, ClockSettingsPatch { step: Some(Fen(3)), ..patch() });
    let lot = f.lot_on(1, 10, 100, 500);
    // 500, 497, 494: the first price at or below 4.95 is 4.94, at tick 2.
    f.h.standing_bid(f.alice, lot, 495, 4);
    let start_ts = f.h.start_and_run(1);
    assert_eq!(f.h.market.next_deadline(), Some(start_ts.plus_ms(20)));
    f.h.tick_at(EngineTime(start_ts.plus_ms(20).0 - 1));
    assert!(f.h.awards().is_empty());
    f.h.tick_ms(5); // the award is stamped with the tick time, not the time the engine looked
    let award = f.h.last_award();
    assert_eq!((award.buyer, award.price, award.containers, award.ts), (f.alice, Fen(494), 4, start_ts.plus_ms(20)));
    assert!(award.standing);
    assert_eq!(f.h.phase(1), ClockPhase::Pause);
    assert!(f.h.market.standing_bids(lot).is_empty(), "a standing bid wins once");
}

#[test]
fn standing_bid_placed_under_a_lower_price_wins_at_once() {
    let mut f = floor();
    let lot = f.lot_on(1, 10, 100, 500);
    let start_ts = f.h.start_and_run(1);
    f.h.now = start_ts.plus_ms(105); // 490
    f.h.standing_bid(f.alice, lot, 495, 2);
    let award = f.h.last_award();
    assert_eq!((award.price, award.ts), (Fen(490), start_ts.plus_ms(105)));
}

#[test]
fn standing_bids_at_the_same_tick_go_to_the_higher_max_then_the_earlier_placed() {
    let mut f = floor();
    let carol = f.h.buyer("carol", 10_000_000);
    f.h.configure(1, ClockSettingsPatch { step: Some(Fen(5)), ..patch() });
    let lot = f.lot_on(1, 10, 100, 500);
    // 500, 495: all three trigger at tick 1.
    f.h.standing_bid(f.alice, lot, 497, 10);
    f.h.standing_bid(f.bob, lot, 499, 10);
    f.h.standing_bid(carol, lot, 499, 10);
    f.h.start_and_run(1);
    f.h.tick_ms(10);
    let award = f.h.last_award();
    assert_eq!((award.buyer, award.price), (f.bob, Fen(495)));
    // The lot sold out: the losing standing bids end with it.
    f.h.tick_ms(500);
    assert_eq!(f.h.market.lot(lot).unwrap().status, LotStatus::Sold);
    assert!(f.h.market.standing_bids(lot).is_empty());
}

#[test]
fn standing_bids_that_lose_a_tick_stay_for_the_next_round() {
    let mut f = floor();
    let lot = f.lot_on(1, 10, 100, 500);
    f.h.standing_bid(f.alice, lot, 495, 4);
    f.h.standing_bid(f.bob, lot, 495, 4);
    f.h.start_and_run(1);
    f.h.tick_ms(50);
    assert_eq!(f.h.last_award().buyer, f.alice, "equal max: the earlier placed wins");
    assert_eq!(f.h.market.standing_bids(lot).len(), 1);
    // Round 2 restarts at 4.95 + 0.10 = 5.00 and falls to 4.95 again after 5 ticks.
    f.h.tick_ms(500);
    f.h.tick_ms(50);
    let award = f.h.last_award();
    assert_eq!((award.buyer, award.round, award.price), (f.bob, 2, Fen(495)));
}

#[test]
fn live_bid_arriving_before_the_trigger_beats_the_standing_bid() {
    let mut f = floor();
    let lot = f.lot_on(1, 10, 100, 500);
    f.h.standing_bid(f.alice, lot, 495, 10);
    let start_ts = f.h.start_and_run(1);
    f.h.now = EngineTime(start_ts.plus_ms(50).0 - 1); // still 496
    f.h.bid(f.bob, 1, lot, 1, 3).unwrap();
    let award = f.h.last_award();
    assert_eq!((award.buyer, award.price, award.standing), (f.bob, Fen(496), false));
    assert_eq!(f.h.awards().len(), 1, "the stopped round triggers no standing bid");
}

#[test]
fn standing_bid_due_at_the_instant_a_live_bid_arrives_wins_first() {
    // Decision: the standing bid acts at the tick time; a live press reaching the engine at that
    // same instant did not arrive earlier, so it finds the round stopped.
    let mut f = floor();
    let lot = f.lot_on(1, 10, 100, 500);
    f.h.standing_bid(f.alice, lot, 495, 10);
    let start_ts = f.h.start_and_run(1);
    f.h.now = start_ts.plus_ms(50);
    f.h.rejected(actor(f.bob), Action::Bid { clock: clock(1), lot, round: 1, containers: 3 }, RejectCode::TooLate);
    let award = f.h.last_award();
    assert_eq!((award.buyer, award.price, award.standing), (f.alice, Fen(495), true));
}

#[test]
fn failing_standing_bid_is_dropped_privately_and_the_next_one_is_tried() {
    let mut f = floor();
    let poor = f.h.buyer("poor", 1_000);
    f.h.configure(1, ClockSettingsPatch { step: Some(Fen(5)), ..patch() });
    let lot = f.lot_on(1, 10, 100, 500);
    f.h.standing_bid(poor, lot, 499, 2); // 2 × 10 × 4.95 does not fit 10.00
    f.h.standing_bid(f.alice, lot, 497, 2);
    f.h.start_and_run(1);
    f.h.tick_ms(10);
    let dropped: Vec<_> =
        f.h.last_events()
            .iter()
            .filter_map(|e| match e {
                Event::StandingBidDropped { buyer, lot, reject } => Some((*buyer, *lot, reject.code)),
                _ => None,
            })
            .collect();
    assert_eq!(dropped, vec![(poor, lot, RejectCode::CreditLimit)]);
    assert_eq!(f.h.last_award().buyer, f.alice);
    assert_eq!(f.h.account(poor).exposure(), Fen(0));
}

#[test]
fn failing_standing_bid_leaves_the_clock_running() {
    let mut f = floor();
    let lot = f.lot_on(1, 3, 100, 500);
    f.h.standing_bid(f.alice, lot, 495, 3);
    f.h.start_and_run(1);
    // Another buyer takes two containers in round 1; in round 2 alice's 3 no longer fit.
    f.h.tick_ms(20);
    f.h.bid(f.bob, 1, lot, 1, 2).unwrap();
    f.h.tick_ms(500);
    f.h.tick_ms(200);
    let dropped = f.h.events.iter().any(|e| {
        matches!(e, Event::StandingBidDropped { buyer, reject, .. } if *buyer == f.alice && reject.code == RejectCode::QuantityInvalid)
    });
    assert!(dropped);
    assert!(f.h.market.standing_bids(lot).is_empty());
    assert_eq!(f.h.phase(1), ClockPhase::Running, "the dropped bid did not stop the round");
}

#[test]
fn halt_clock_puts_the_lot_back_at_the_head_and_leaves_the_clock_idle() {
    let mut f = floor();
    let first = f.lot_on(1, 5, 100, 300);
    let second = f.lot_on(1, 5, 100, 300);
    f.h.start_and_run(1);
    f.h.tick_ms(30);
    f.h.halt(1);
    assert!(
        matches!(f.h.last_events(), [Event::ClockState { phase: ClockPhase::Idle, .. }, Event::SupplyLine { next, .. }] if next.iter().map(|l| l.id).eq([first, second]))
    );
    let c = f.h.market.clock(clock(1)).unwrap();
    assert_eq!(c.phase, ClockPhase::Idle);
    assert_eq!(c.lot, None);
    assert_eq!(c.supply_line.iter().copied().collect::<Vec<_>>(), vec![first, second]);
    assert_eq!(f.h.market.lot(first).unwrap().status, LotStatus::Queued);
    assert_eq!(f.h.market.lot(first).unwrap().remaining, 5);
    assert_eq!(f.h.market.next_deadline(), None);
    f.h.tick_ms(10_000);
    assert_eq!(f.h.phase(1), ClockPhase::Idle, "a halted clock stays idle");
    f.h.rejected(op(), Action::HaltClock { clock: clock(1) }, RejectCode::InvalidState);
    // Restarting takes the same lot again.
    f.h.start(1);
    assert_eq!(lots_on_clock(f.h.last_events()), vec![first]);
}

#[test]
fn start_clock_needs_a_non_empty_supply_line() {
    let mut f = floor();
    f.h.rejected(op(), Action::StartClock { clock: clock(2) }, RejectCode::InvalidState);
    f.h.rejected(op(), Action::StartClock { clock: clock(9) }, RejectCode::NotFound);
    f.lot_on(2, 1, 100, 200);
    f.h.start(2);
    f.h.rejected(op(), Action::StartClock { clock: clock(2) }, RejectCode::InvalidState);
}

#[test]
fn assigning_lots_to_an_idle_clock_does_not_start_it() {
    let mut f = floor();
    let first = f.lot_on(1, 1, 100, 200);
    f.h.start_and_run(1);
    f.h.bid(f.alice, 1, first, 1, 1).unwrap();
    f.h.tick_ms(500);
    assert_eq!(f.h.phase(1), ClockPhase::Idle);
    let later = f.lot_on(1, 2, 100, 200);
    assert_eq!(f.h.phase(1), ClockPhase::Idle);
    assert_eq!(f.h.market.next_deadline(), None);
    f.h.tick_ms(5_000);
    assert_eq!(f.h.phase(1), ClockPhase::Idle);
    assert_eq!(f.h.market.lot(later).unwrap().status, LotStatus::Queued);
    assert!(lots_on_clock(&f.h.events).iter().all(|l| *l != later));
}

#[test]
fn void_award_returns_the_containers_and_releases_the_exposure() {
    let mut f = floor();
    let lot = f.lot_on(1, 6, 100, 300);
    f.h.start_and_run(1);
    let before = (f.h.account(f.alice), f.h.account(f.grower), f.h.market.totals());
    f.h.bid(f.alice, 1, lot, 1, 4).unwrap();
    let award = f.h.last_award();
    assert_eq!(f.h.account(f.alice).exposure(), Fen(award.amount.0 + award.fee.0));
    assert_eq!(f.h.account(f.alice).available(), Fen(10_000_000 - award.amount.0 - award.fee.0));

    f.h.advance_ms(100);
    f.h.ok(op(), Action::VoidAward { clock: clock(1), lot, round: 1, buyer: None });
    let voided = f.h.last_events().to_vec();
    assert!(matches!(
        voided.as_slice(),
        [Event::AwardVoided { round: 1, containers: 4, remaining: 6, buyer, .. }] if *buyer == f.alice
    ));
    assert_eq!(f.h.account(f.alice), before.0);
    assert_eq!(f.h.account(f.alice).exposure(), Fen(0));
    assert_eq!(f.h.account(f.grower), before.1);
    assert_eq!(f.h.market.totals(), before.2);
    let l = f.h.market.lot(lot).unwrap();
    assert_eq!((l.remaining, l.sold), (6, 0));
    // The same award cannot be voided twice.
    f.h.rejected(op(), Action::VoidAward { clock: clock(1), lot, round: 1, buyer: None }, RejectCode::NotFound);
    // The containers are for sale again in round 2.
    f.h.tick_ms(400);
    f.h.bid(f.bob, 1, lot, 2, 6).unwrap();
}

#[test]
fn void_award_only_while_the_lot_is_on_the_clock() {
    let mut f = floor();
    let lot = f.lot_on(1, 2, 100, 300);
    f.lot_on(1, 2, 100, 300);
    f.h.start_and_run(1);
    f.h.bid(f.alice, 1, lot, 1, 2).unwrap();
    f.h.tick_ms(500); // sold out: the next lot is on the clock
    f.h.rejected(op(), Action::VoidAward { clock: clock(1), lot, round: 1, buyer: None }, RejectCode::InvalidState);
    assert_eq!(f.h.account(f.alice).exposure(), Fen(2 * 10 * 300 + 100));
    let l = f.h.market.lot(lot).unwrap();
    assert_eq!((l.status, l.sold), (LotStatus::Sold, 2));
    f.h.rejected(
        actor(f.alice),
        Action::VoidAward { clock: clock(1), lot, round: 1, buyer: None },
        RejectCode::Forbidden,
    );
}

#[test]
fn void_award_of_a_sold_out_lot_in_its_pause_reopens_it() {
    let mut f = floor();
    let lot = f.lot_on(1, 2, 100, 300);
    f.h.start_and_run(1);
    f.h.bid(f.alice, 1, lot, 1, 2).unwrap();
    f.h.ok(op(), Action::VoidAward { clock: clock(1), lot, round: 1, buyer: None });
    f.h.tick_ms(500);
    assert_eq!(f.h.running_round(1).0, 2, "the lot has containers again, so the next round comes");
}

#[test]
fn halt_all_clocks_leaves_every_clock_idle_with_its_lot_at_the_head() {
    let mut f = floor();
    let pre_roll = f.lot_on(1, 3, 100, 300);
    let running = f.lot_on(2, 3, 100, 300);
    let paused = f.lot_on(3, 3, 100, 300);
    let waiting = f.lot_on(3, 3, 100, 300);
    f.h.start_and_run(2);
    f.h.start_and_run(3);
    f.h.bid(f.alice, 3, paused, 1, 1).unwrap();
    f.h.start(1);
    let phases: Vec<_> = (1..=4).map(|n| f.h.phase(n)).collect();
    assert_eq!(phases, vec![ClockPhase::PreRoll, ClockPhase::Running, ClockPhase::Pause, ClockPhase::Idle]);
    f.h.rejected(op(), Action::HaltAllClocks, RejectCode::Forbidden);
    f.h.ok(Actor::System, Action::HaltAllClocks);
    for n in 1..=4 {
        assert_eq!(f.h.phase(n), ClockPhase::Idle);
        assert_eq!(f.h.market.clock(clock(n)).unwrap().lot, None);
    }
    let heads: Vec<_> = (1..=3).map(|n| f.h.market.clock(clock(n)).unwrap().supply_line.front().copied()).collect();
    assert_eq!(heads, vec![Some(pre_roll), Some(running), Some(paused)]);
    assert_eq!(f.h.market.clock(clock(3)).unwrap().supply_line.get(1), Some(&waiting));
    assert_eq!(f.h.market.lot(paused).unwrap().sold, 1, "awards before the halt stand");
    assert_eq!(f.h.market.next_deadline(), None);
}

#[test]
fn configure_clock_applies_from_the_next_round() {
    let mut f = floor();
    let lot = f.lot_on(1, 6, 100, 500);
    let start_ts = f.h.start_and_run(1);
    f.h.configure(1, ClockSettingsPatch { step: Some(Fen(5)), tick_ms: Some(20), restart_ticks: Some(2), ..patch() });
    // The running round keeps step 0.01 and tick 10 ms.
    f.h.now = start_ts.plus_ms(100);
    f.h.bid(f.alice, 1, lot, 1, 1).unwrap();
    assert_eq!(f.h.last_award().price, Fen(490));
    f.h.tick_ms(500);
    let started = clock_started(f.h.last_events());
    // Restart: min(5.00, 4.90 + 2 × 0.05) = 5.00 with the new step and tick.
    assert_eq!(started, vec![(2, Fen(500), Fen(5), 20, f.h.now, 5)]);
    let round_2 = f.h.now;
    f.h.now = round_2.plus_ms(45); // 2 ticks of 20 ms
    f.h.bid(f.bob, 1, lot, 2, 1).unwrap();
    assert_eq!(f.h.last_award().price, Fen(490));
}

#[test]
fn configure_clock_checks_its_settings() {
    let mut f = floor();
    f.h.rejected(
        op(),
        Action::ConfigureClock { clock: clock(1), patch: ClockSettingsPatch { step: Some(Fen(0)), ..patch() } },
        RejectCode::PriceInvalid,
    );
    f.h.rejected(
        op(),
        Action::ConfigureClock { clock: clock(1), patch: ClockSettingsPatch { tick_ms: Some(0), ..patch() } },
        RejectCode::BadRequest,
    );
    let buyer = f.alice;
    f.h.rejected(actor(buyer), Action::ConfigureClock { clock: clock(1), patch: patch() }, RejectCode::Forbidden);
}

#[test]
fn a_grower_cannot_bid() {
    let mut f = floor();
    let other = f.h.grower("other-grower");
    let lot = f.lot_on(1, 3, 100, 300);
    f.h.start_and_run(1);
    f.h.rejected(actor(other), Action::Bid { clock: clock(1), lot, round: 1, containers: 1 }, RejectCode::Forbidden);
    f.h.rejected(actor(other), Action::StandingBid { lot, max_price: Fen(200), containers: 1 }, RejectCode::Forbidden);
    assert_eq!(f.h.phase(1), ClockPhase::Running);
}

#[test]
fn a_buyer_cannot_run_the_clocks() {
    let mut f = floor();
    let lot = f.lot_on(1, 3, 100, 300);
    let buyer = f.alice;
    f.h.rejected(actor(buyer), Action::StartClock { clock: clock(1) }, RejectCode::Forbidden);
    f.h.rejected(
        actor(buyer),
        Action::AssignLot { lot, clock: clock(2), start_price: Fen(300) },
        RejectCode::Forbidden,
    );
    f.h.rejected(actor(buyer), Action::WithdrawLot { lot }, RejectCode::Forbidden);
    f.h.rejected(actor(buyer), Action::ConsignLot(Box::new(consignment(1, 1, 100, 1))), RejectCode::Forbidden);
    f.h.start(1);
    f.h.rejected(actor(buyer), Action::HaltClock { clock: clock(1) }, RejectCode::Forbidden);
}

#[test]
fn a_suspended_participant_is_forbidden() {
    let mut f = floor();
    let lot = f.lot_on(1, 3, 100, 300);
    f.h.standing_bid(f.bob, lot, 250, 1);
    f.h.set_active(f.alice, false);
    f.h.set_active(f.bob, false);
    // Protocol v1.1 section 4: suspension cancels Bob's standing bid in the same command (before
    // v1.1 it stayed and was dropped only when it triggered).
    let cancelled =
        f.h.last_events()
            .iter()
            .any(|e| matches!(e, Event::StandingBidCancelled { buyer, lot: l } if *buyer == f.bob && *l == lot));
    assert!(cancelled, "{:?}", f.h.last_events());
    assert!(f.h.market.standing_bids(lot).is_empty());
    f.h.start_and_run(1);
    f.h.rejected(actor(f.alice), Action::Bid { clock: clock(1), lot, round: 1, containers: 1 }, RejectCode::Forbidden);
    f.h.rejected(actor(f.bob), Action::StandingBid { lot, max_price: Fen(250), containers: 1 }, RejectCode::Forbidden);
    // Past the price Bob's bid was for: nothing triggers.
    f.h.tick_ms(600);
    assert!(!f.h.events.iter().any(|e| matches!(e, Event::StandingBidDropped { .. })));
    assert!(f.h.awards().is_empty());
    f.h.set_active(f.alice, true);
    f.h.bid(f.alice, 1, lot, 1, 1).unwrap();
}

#[test]
fn a_participant_cannot_buy_its_own_lot() {
    let mut f = floor();
    let both = f.h.register("both", roles(true, true), 10_000_000);
    let lot = f.h.consign(both, 3, 10, 100, 1);
    f.h.assign(lot, 1, 300);
    f.h.start_and_run(1);
    f.h.rejected(actor(both), Action::Bid { clock: clock(1), lot, round: 1, containers: 1 }, RejectCode::Forbidden);
    f.h.rejected(actor(both), Action::StandingBid { lot, max_price: Fen(200), containers: 1 }, RejectCode::Forbidden);
}

#[test]
fn withdraw_lot_takes_a_waiting_lot_off_the_market() {
    let mut f = floor();
    let consigned = f.h.consign(f.grower, 3, 10, 100, 1);
    let queued = f.lot_on(1, 4, 100, 300);
    let next = f.lot_on(1, 4, 100, 300);
    f.h.standing_bid(f.alice, queued, 250, 1);

    f.h.ok(op(), Action::WithdrawLot { lot: consigned });
    assert!(matches!(f.h.last_events(), [Event::LotWithdrawn { lot, .. }] if *lot == consigned));
    f.h.ok(op(), Action::WithdrawLot { lot: queued });
    let l = f.h.market.lot(queued).unwrap();
    assert_eq!((l.status, l.remaining, l.unsold), (LotStatus::Withdrawn, 0, 4));
    assert!(f.h.market.standing_bids(queued).is_empty());
    assert_eq!(f.h.market.clock(clock(1)).unwrap().supply_line.iter().copied().collect::<Vec<_>>(), vec![next]);

    // Finished lots cannot be withdrawn or assigned again.
    f.h.rejected(op(), Action::WithdrawLot { lot: queued }, RejectCode::InvalidState);
    f.h.rejected(
        op(),
        Action::AssignLot { lot: queued, clock: clock(1), start_price: Fen(300) },
        RejectCode::InvalidState,
    );
    f.h.rejected(op(), Action::WithdrawLot { lot: LotId(999) }, RejectCode::NotFound);
    f.h.start(1);
    assert_eq!(lots_on_clock(f.h.last_events()), vec![next]);
}

#[test]
fn withdraw_lot_on_the_clock_is_invalid_state_until_halted() {
    let mut f = floor();
    let lot = f.lot_on(1, 4, 100, 300);
    f.h.start_and_run(1);
    f.h.bid(f.alice, 1, lot, 1, 1).unwrap();
    f.h.rejected(op(), Action::WithdrawLot { lot }, RejectCode::InvalidState);
    f.h.halt(1);
    f.h.ok(op(), Action::WithdrawLot { lot });
    let l = f.h.market.lot(lot).unwrap();
    // What was sold stays sold; the rest is withdrawn.
    assert_eq!((l.status, l.sold, l.unsold, l.remaining), (LotStatus::Withdrawn, 1, 3, 0));
    assert!(f.h.market.clock(clock(1)).unwrap().supply_line.is_empty());
    f.h.rejected(op(), Action::StartClock { clock: clock(1) }, RejectCode::InvalidState);
}

#[test]
fn assign_lot_needs_a_start_price_at_or_above_the_reserve() {
    let mut f = floor();
    let lot = f.h.consign(f.grower, 3, 10, 100, 1);
    f.h.rejected(op(), Action::AssignLot { lot, clock: clock(1), start_price: Fen(99) }, RejectCode::PriceInvalid);
    f.h.ok(op(), Action::AssignLot { lot, clock: clock(1), start_price: Fen(100) });
    // The clock's next six changed: the feed hears of it (protocol section 9, `supply_line`).
    assert!(
        matches!(f.h.last_events(), [Event::LotAssigned { position: 1, .. }, Event::SupplyLine { next, .. }] if next.len() == 1 && next[0].id == lot)
    );
}

#[test]
fn clocks_far_in_the_future_do_not_overflow_time() {
    // A huge price range at a slow tick puts the end of the round beyond u64 microseconds.
    let mut f = floor();
    f.h.configure(1, ClockSettingsPatch { tick_ms: Some(60_000), restart_ticks: Some(1_000_000), ..patch() });
    let lot = f.h.consign(f.grower, 1, 1, 1, 1);
    f.h.assign(lot, 1, 4_000_000_000_000_000_000);
    f.h.start_and_run(1);
    assert!(f.h.market.next_deadline().is_some());
    f.h.tick_ms(120_000);
    f.h.bid(f.alice, 1, lot, 1, 1).expect_err("far beyond anyone's credit");
    assert_eq!(f.h.phase(1), ClockPhase::Running);
}

#[test]
fn restart_price_with_a_huge_step_is_capped_by_the_start_price() {
    let mut f = floor();
    // Credit limits are bounded (limits.rs CREDIT_LIMIT_MAX), so the sale happens three ticks
    // down, at 1 fen: `restart_ticks × step` still overflows i64 and must saturate.
    let buyer = f.h.buyer("thrifty", 1_000_000);
    f.h.configure(
        1,
        ClockSettingsPatch { step: Some(Fen(1_000_000_000_000_000_000)), restart_ticks: Some(10), ..patch() },
    );
    let lot = f.h.consign(f.grower, 2, 1, 1, 1);
    f.h.assign(lot, 1, 3_000_000_000_000_000_001);
    f.h.start_and_run(1);
    f.h.tick_ms(30);
    f.h.bid(buyer, 1, lot, 1, 1).unwrap();
    assert_eq!(f.h.last_award().price, Fen(1));
    f.h.tick_ms(500);
    let started = clock_started(f.h.last_events());
    assert_eq!((started[0].0, started[0].1), (2, Fen(3_000_000_000_000_000_001)));
}
