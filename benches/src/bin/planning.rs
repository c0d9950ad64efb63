//! Planning a big hall's day in the core (issue 14): how long `plan_lots` holds the sequencer
//! for 10,000 consigned lots (the whole `Market::apply`, events included), and how long the
//! sequencer spends copying the day's catalogue for `get_catalogue` / `GET /api/catalogue` (the
//! gateway renders it off that thread, once per change).
//!
//! ```sh
//! cargo run --release -p huashi-benches --bin planning -- [LOTS] [RUNS]
//! ```
//!
//! Each run plans a fresh copy of the same day (cloned outside the timing): 200 growers, nine
//! products on four planned clocks, grades across each scale, last VWAPs from a settled day.

use hdrhistogram::Histogram;
use huashi_engine::command::{Action, Actor, ClockPlan, Command, Consignment, MasterData, Roles};
use huashi_engine::core::catalogue::{Grade, Packaging};
use huashi_engine::core::limits::MarketLimitsPatch;
use huashi_engine::core::{Market, MarketConfig};
use huashi_engine::event::Event;
use huashi_engine::types::{ClockId, Code, Day, EngineTime, Fen};
use rand::{Rng, SeedableRng};
use std::time::Instant;

const GROWERS: usize = 200;
/// Lots a catalogue query copies at a time (as `gateway/src/catalogue.rs`).
const SLICE: usize = 1_000;
const PLANS: [&[&str]; 4] = [
    &["ROSE"],
    &["CARNATION", "CHRYSANTHEMUM", "GERBERA"],
    &["LILY", "TULIP"],
    &["PHALAENOPSIS", "ANTHURIUM", "EUCALYPTUS"],
];

fn apply(market: &mut Market, actor: Actor, action: Action, now: EngineTime) {
    let mut out = Vec::new();
    let name = action.name();
    if let Err(reject) = market.apply(&Command::new(actor, action), now, &mut out).result {
        panic!("{name}: {reject}");
    }
}

/// A market with `lots` consigned lots, four planned clocks and a draw, ready for `plan_lots`.
fn day_to_plan(lots: usize) -> (Market, EngineTime) {
    let day = Day::parse("2026-12-07").expect("a day");
    let mut config = MarketConfig::new(day);
    config.clocks = PLANS.len() as u16;
    let mut market = Market::new(config);
    let mut now = EngineTime(1_796_000_000_000_000);
    let op = Actor::Operator;
    let limits = MarketLimitsPatch {
        lots_per_day_max: Some(lots as u64 * 2),
        lots_per_grower_day_max: Some(lots as u64),
        supply_line_lots_max: Some(lots as u64),
        participants_max: Some(GROWERS as u64 + 10),
        ..MarketLimitsPatch::default()
    };
    apply(&mut market, op, Action::SetLimits(limits), now);
    for g in 0..GROWERS {
        let id = Code::parse(&format!("g{g:03}"), Code::BYTES_MAX).expect("an id");
        let roles = Roles { operator: false, grower: true, buyer: false, logistics: false };
        let register = Action::RegisterParticipant {
            id,
            name: format!("grower {g}"),
            roles,
            credit_limit: Fen(0),
            token_hash: [g as u8; 32],
            firm: None,
            daily_limit: None,
        };
        apply(&mut market, op, register, now);
    }
    let products: Vec<(Code, Vec<Grade>)> = market.products().values().map(|p| (p.code, p.grades.clone())).collect();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(14);
    for _ in 0..lots {
        let grower = huashi_engine::types::Pk(rng.gen_range(0..GROWERS as u32));
        let (product, grades) = &products[rng.gen_range(0..products.len())];
        let consignment = Consignment {
            product: *product,
            grade: grades[rng.gen_range(0..grades.len())],
            units_per_container: 20,
            containers: rng.gen_range(1..20),
            min_price: Fen(rng.gen_range(50..500)),
            min_purchase: 1,
            origin: "Yunnan".into(),
            photo_url: String::new(),
            note: String::new(),
            master: MasterData {
                variety: "Carola".into(),
                stem_length_cm: Some(60),
                maturity: Some(2),
                packaging: Some(Packaging::Bucket),
                base: "Dounan".into(),
                batch: "B-1".into(),
                harvest_day: Some(day),
            },
        };
        now = EngineTime(now.0 + 10);
        apply(&mut market, Actor::Participant(grower), Action::ConsignLot(Box::new(consignment)), now);
    }
    for (i, products) in PLANS.iter().enumerate() {
        let products = products.iter().map(|p| Code::parse(p, Code::BYTES_MAX).expect("a code")).collect();
        let plan = ClockPlan { products, start_time: Some(6 * 3600 + 30 * 60) };
        apply(&mut market, op, Action::SetClockPlan { clock: ClockId(i as u16 + 1), plan }, now);
    }
    apply(&mut market, op, Action::DrawOrder { seed: 0x5eed }, now);
    (market, now)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let lots: usize = args.next().map_or(10_000, |a| a.parse().expect("LOTS"));
    let runs: usize = args.next().map_or(30, |a| a.parse().expect("RUNS"));
    let (template, now) = day_to_plan(lots);
    let mut plan = Histogram::<u64>::new(3).expect("a histogram");
    let mut copy = Histogram::<u64>::new(3).expect("a histogram");
    let mut steps = 0;
    for _ in 0..runs {
        let mut market = template.clone();
        let mut out = Vec::with_capacity(16);
        // The command, then the journaled ticks that place the rest in slices: each is one stop
        // of the sequencer.
        let mut command = Command::new(Actor::Operator, Action::PlanLots { start_markup_bp: 5_000 });
        let mut at = now;
        loop {
            out.clear();
            let start = Instant::now();
            let applied = market.apply(&command, at, &mut out);
            plan.record(start.elapsed().as_micros() as u64).expect("recorded");
            applied.result.expect("planned");
            steps += 1;
            if out.iter().any(|e| matches!(e, Event::LotsPlanned { .. })) {
                break;
            }
            command = Command::tick();
            at = EngineTime(at.0 + 1);
        }
        // What a catalogue query does on the sequencer thread: copy the next 1,000 of the day's
        // catalogue lots (gateway/src/catalogue.rs copies in such slices).
        let mut from = huashi_engine::types::LotId(0);
        let mut copied = 0;
        loop {
            let start = Instant::now();
            let slice: Vec<huashi_engine::core::lots::Lot> = market
                .lots()
                .range(from..)
                .filter(|(_, l)| l.clock.is_some() && l.position.is_some())
                .take(SLICE)
                .map(|(_, l)| l.clone())
                .collect();
            copy.record(start.elapsed().as_micros() as u64).expect("recorded");
            copied += slice.len();
            match slice.last() {
                Some(last) if slice.len() == SLICE => from = huashi_engine::types::LotId(last.id.0 + 1),
                _ => break,
            }
            std::hint::black_box(slice);
        }
        assert_eq!(copied, lots);
    }
    println!("plan_lots of {lots} lots, {runs} runs, {} steps each (the command, then ticks):", steps / runs);
    println!(
        "  sequencer held per step: p50 {} µs, p99 {} µs, max {} µs",
        plan.value_at_quantile(0.5),
        plan.value_at_quantile(0.99),
        plan.max()
    );
    println!(
        "catalogue copy, one query's slice of {SLICE} lots: p50 {} µs, p99 {} µs, max {} µs",
        copy.value_at_quantile(0.5),
        copy.value_at_quantile(0.99),
        copy.max()
    );
}
