//! The core is a pure function of its commands and their engine times: the same command list
//! applied to fresh markets gives the same events and the same state hash, and a market that went
//! through bincode (as a snapshot does) carries on exactly as the one that did not.

mod common;

use common::*;
use huashi_engine::command::Command;
use huashi_engine::core::clock::ClockPhase;
use huashi_engine::core::{Market, MarketConfig};
use huashi_engine::event::Event;
use huashi_engine::types::{Day, EngineTime};

const OPERATIONS: usize = 7_000;
const DAYS_MIN: usize = 4;
const HASH_EVERY: usize = 100;

fn fresh_market() -> Market {
    Market::new(MarketConfig::new(Day::parse(DAY).unwrap()))
}

/// Applies `commands` to `market`; returns every event and the state hash every `HASH_EVERY`
/// commands.
fn replay(market: &mut Market, commands: &[(Command, EngineTime)]) -> (Vec<Event>, Vec<u64>) {
    let mut events = Vec::new();
    let mut hashes = Vec::new();
    for (i, (command, now)) in commands.iter().enumerate() {
        market.apply(command, *now, &mut events);
        if i % HASH_EVERY == 0 {
            hashes.push(market.state_hash());
        }
    }
    (events, hashes)
}

fn assert_same_events(left: &[Event], right: &[Event]) {
    if let Some(i) = left.iter().zip(right).position(|(a, b)| a != b) {
        panic!("event {i} differs:\n  {:?}\n  {:?}", left[i], right[i]);
    }
    assert_eq!(left.len(), right.len(), "one run has more events");
}

fn commands() -> Vec<(Command, EngineTime)> {
    let commands = generate_commands(0x4875_6173_6869, OPERATIONS, DAYS_MIN);
    assert!(commands.len() >= 5_000, "only {} commands", commands.len());
    commands
}

#[test]
fn same_commands_give_the_same_events_and_state_hash() {
    let commands = commands();
    let (mut first, mut second) = (fresh_market(), fresh_market());
    let (events_1, hashes_1) = replay(&mut first, &commands);
    let (events_2, hashes_2) = replay(&mut second, &commands);
    assert_same_events(&events_1, &events_2);
    assert_eq!(hashes_1, hashes_2, "the state hashes diverged along the way");
    assert_eq!(first.state_hash(), second.state_hash());

    // Not vacuous: the stream trades, settles several days, and the hash follows the state.
    assert!(settled_days(&events_1) >= DAYS_MIN, "only {} days settled", settled_days(&events_1));
    assert!(awards_in(&events_1).len() > 50, "only {} clock awards", awards_in(&events_1).len());
    assert!(events_1.iter().filter(|e| matches!(e, Event::Traded(_))).count() > 50, "too few book trades");
    let distinct: std::collections::BTreeSet<_> = hashes_1.iter().collect();
    assert!(distinct.len() > hashes_1.len() / 2, "the state hash hardly changes");
}

/// Where to cut the stream for a snapshot: as much going on as possible (clocks mid-round,
/// resting orders, standing bids), so the round trip has everything to lose.
fn busy_point(commands: &[(Command, EngineTime)]) -> usize {
    let mut market = fresh_market();
    let mut events = Vec::new();
    let mut best = (0, commands.len() / 2);
    for (i, (command, now)) in commands.iter().enumerate() {
        market.apply(command, *now, &mut events);
        let running = market.clocks().iter().filter(|c| c.phase != ClockPhase::Idle).count();
        let resting: usize = market.listings().values().map(|l| l.book.resting_count()).sum();
        let standing: usize = market.lots().keys().map(|lot| market.standing_bids(*lot).len()).sum();
        let score = running * 100 + resting.min(50) + standing * 10;
        if score > best.0 && i > commands.len() / 4 && i < commands.len() * 3 / 4 {
            best = (score, i + 1);
        }
    }
    best.1
}

#[test]
fn a_bincode_round_trip_mid_way_changes_nothing() {
    let commands = commands();
    for cut in [busy_point(&commands), commands.len() / 3] {
        let (head, tail) = commands.split_at(cut);
        let mut original = fresh_market();
        replay(&mut original, head);
        let bytes = bincode::serialize(&original).expect("the market serialises");
        let mut restored: Market = bincode::deserialize(&bytes).expect("the market deserialises");
        assert_eq!(restored.state_hash(), original.state_hash(), "the round trip changed the state (cut {cut})");
        assert_eq!(bincode::serialize(&restored).unwrap(), bytes, "the round trip is not canonical (cut {cut})");
        assert_eq!(restored.next_deadline(), original.next_deadline());

        let (events_original, hashes_original) = replay(&mut original, tail);
        let (events_restored, hashes_restored) = replay(&mut restored, tail);
        assert_same_events(&events_original, &events_restored);
        assert_eq!(hashes_original, hashes_restored, "the restored market diverged (cut {cut})");
        assert_eq!(restored.state_hash(), original.state_hash());
        assert!(!events_original.is_empty());
    }
}

#[test]
fn the_busy_cut_is_busy() {
    // The round-trip test means most when the snapshot catches clocks and books mid-flight.
    let commands = commands();
    let cut = busy_point(&commands);
    let mut market = fresh_market();
    replay(&mut market, &commands[..cut]);
    assert!(market.clocks().iter().any(|c| c.phase != ClockPhase::Idle), "no clock is busy at the cut");
    assert!(market.listings().values().any(|l| l.book.resting_count() > 0), "no book has orders at the cut");
}

/// A quiet market (a replay nobody reads the events of) decides exactly what a loud one does:
/// the same state hash along the way, the same next wake-up (which follows the sales it no
/// longer reports), and every event but the books' per-order reports.
#[test]
fn a_quiet_market_reaches_the_same_state_as_a_loud_one() {
    let commands = commands();
    let (mut loud, mut quiet) = (fresh_market(), fresh_market());
    quiet.set_quiet(true);
    let (mut loud_events, mut quiet_events) = (Vec::new(), Vec::new());
    let mut reports = 0;
    for (i, (command, now)) in commands.iter().enumerate() {
        let (from_loud, from_quiet) = (loud_events.len(), quiet_events.len());
        let loud_applied = loud.apply(command, *now, &mut loud_events);
        let quiet_applied = quiet.apply(command, *now, &mut quiet_events);
        assert_eq!(loud_applied.result, quiet_applied.result, "command {i} was judged otherwise");
        assert_eq!(loud.next_wake(), quiet.next_wake(), "command {i}: another next wake-up");
        let is_report = |e: &&Event| {
            matches!(
                e,
                Event::OrderAccepted(_)
                    | Event::Fill { .. }
                    | Event::Traded(_)
                    | Event::OrderDone { .. }
                    | Event::BookLevel { .. }
            )
        };
        reports += loud_events[from_loud..].iter().filter(is_report).count();
        assert!(!quiet_events[from_quiet..].iter().any(|e| is_report(&e)), "command {i}: a quiet report");
        let others: Vec<&Event> = loud_events[from_loud..].iter().filter(|e| !is_report(e)).collect();
        let quiet_others: Vec<&Event> = quiet_events[from_quiet..].iter().collect();
        assert_eq!(others, quiet_others, "command {i}: other events differ");
        if i % HASH_EVERY == 0 {
            assert_eq!(loud.state_hash(), quiet.state_hash(), "the state diverged at command {i}");
        }
    }
    assert_eq!(loud.state_hash(), quiet.state_hash());
    assert!(reports > 1_000, "only {reports} book reports: the stream hardly uses the books");
}
