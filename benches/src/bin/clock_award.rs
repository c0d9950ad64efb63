//! Clock bid → award decision time in the pure core (design.md target: ≤ 1 µs p99).
//!
//! `cargo run --release -p huashi-benches --bin clock_award -- [bids]`
//!
//! One lot of a million containers is on a running clock; the first press stops the round and
//! every later press falls in a long multi-buy window, so each `Market::apply(bid)` takes the
//! whole award path: round and window checks, quantity, credit with the buyer fee, the lot, both
//! accounts and the award event. Each apply is timed with `Instant` (its own cost, measured on an
//! empty pair, is subtracted) into an HdrHistogram.

use hdrhistogram::Histogram;
use huashi_benches::market::register_trader;
use huashi_engine::command::{Action, Actor, ClockSettingsPatch, Command, Consignment, Roles};
use huashi_engine::core::catalogue::Grade;
use huashi_engine::core::{Market, MarketConfig};
use huashi_engine::types::{ClockId, Code, Day, EngineTime, Fen, LotId, Pk};
use std::hint::black_box;
use std::time::Instant;

fn main() {
    let bids: u32 = std::env::args().nth(1).map_or(1_000_000, |a| a.parse().expect("a count"));
    let (mut market, mut now) = market_with_running_clock(bids + 1);
    let mut events = Vec::with_capacity(16);
    let bid = Command::new(
        Actor::Participant(Pk(1)),
        Action::Bid { clock: ClockId(1), lot: LotId(1), round: 1, containers: 1 },
    );
    let timer_cost = timer_cost_ns();
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 10_000_000, 3).unwrap();
    let started = Instant::now();
    for _ in 0..bids {
        now = EngineTime(now.0 + 1);
        events.clear();
        let t0 = Instant::now();
        let applied = market.apply(black_box(&bid), now, &mut events);
        let ns = t0.elapsed().as_nanos() as u64;
        assert!(applied.result.is_ok(), "{:?}", applied.result);
        histogram.saturating_record(ns.saturating_sub(timer_cost).max(1));
    }
    let seconds = started.elapsed().as_secs_f64();
    println!("clock bid → award: {bids} awards, {:.2} M/s including timers", bids as f64 / seconds / 1e6);
    println!(
        "  ns per award: p50 {} p99 {} p99.9 {} max {} (timer cost {timer_cost} ns subtracted)",
        histogram.value_at_quantile(0.5),
        histogram.value_at_quantile(0.99),
        histogram.value_at_quantile(0.999),
        histogram.max()
    );
}

fn timer_cost_ns() -> u64 {
    let mut samples: Vec<u64> = (0..10_000)
        .map(|_| {
            let t0 = Instant::now();
            t0.elapsed().as_nanos() as u64
        })
        .collect();
    samples.sort_unstable();
    samples[samples.len() / 2]
}

/// A grower, a buyer with ample credit, and one big lot whose round is running.
fn market_with_running_clock(containers: u32) -> (Market, EngineTime) {
    let mut market = Market::new(MarketConfig::new(Day::parse("2026-11-29").unwrap()));
    let mut events = Vec::new();
    let mut now = EngineTime(1_795_000_000_000_000);
    let mut apply = |market: &mut Market, actor: Actor, action: Action, now: EngineTime| {
        let applied = market.apply(&Command::new(actor, action), now, &mut events);
        assert!(applied.result.is_ok(), "{:?}", applied.result);
    };
    for (id, grower, buyer) in [("grower", true, false), ("buyer", false, true)] {
        let register =
            register_trader(Code::from_static(id), Roles { operator: false, grower, buyer, logistics: false });
        apply(&mut market, register.actor, register.action, now);
    }
    let consignment = Consignment {
        product: Code::from_static("ROSE"),
        grade: Grade::A1,
        units_per_container: 50,
        containers,
        min_price: Fen(100),
        min_purchase: 1,
        origin: "Yunnan".into(),
        photo_url: String::new(),
        note: String::new(),
        master: Default::default(),
    };
    apply(&mut market, Actor::Participant(Pk(0)), Action::ConsignLot(Box::new(consignment)), now);
    let patch = ClockSettingsPatch { multi_buy_ms: Some(600_000), pre_roll_ms: Some(0), ..Default::default() };
    apply(&mut market, Actor::Operator, Action::ConfigureClock { clock: ClockId(1), patch }, now);
    let assign = Action::AssignLot { lot: LotId(1), clock: ClockId(1), start_price: Fen(500) };
    apply(&mut market, Actor::Operator, assign, now);
    apply(&mut market, Actor::Operator, Action::StartClock { clock: ClockId(1) }, now);
    now = EngineTime(now.0 + 1);
    apply(&mut market, Actor::System, Action::Tick, now);
    (market, now)
}
