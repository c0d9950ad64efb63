//! Property tests over generated trading days: the event streams are what the engine emits (fees
//! from its own integer `FeeSchedule`, `DaySettled` with its totals), and an independent model in
//! integer fen says what each day's statements must be.

mod support;

use huashi_clearing::{Account, Clearing, ClearingConfig, MarketData, SettledDay, TradeKind};
use huashi_engine::types::{Code, Day, EngineTime, Side};
use proptest::prelude::*;
use rust_decimal::Decimal;
use std::collections::BTreeMap;
use support::{MarketSim, Op, SimOutput};

fn op() -> impl Strategy<Value = Op> {
    (any::<u8>(), any::<u16>(), any::<u16>(), any::<u16>(), any::<u16>(), prop_oneof![0u16..300, 300u16..2_500])
        .prop_map(|(kind, a, b, c, d, wait_ms)| Op { kind, a, b, c, d, wait_ms })
}

fn fen(value: Decimal) -> i64 {
    huashi_clearing::money::to_fen(value).0
}

/// Checks the publication throttle: per cell and per index, non-final updates at least a second
/// apart within a day.
#[derive(Default)]
struct ThrottleCheck {
    cells: BTreeMap<(Day, Code, String), EngineTime>,
    indices: BTreeMap<(Day, String), EngineTime>,
}

impl ThrottleCheck {
    fn check(&mut self, ts: EngineTime, out: &[MarketData], settling: bool) {
        if settling {
            return;
        }
        for data in out {
            match data {
                MarketData::Stats(s) => {
                    let key = (s.day, s.product, s.grade.as_str().to_string());
                    if let Some(last) = self.cells.insert(key, ts) {
                        assert!(ts.0 >= last.0 + 1_000_000, "stats of {} twice within a second", s.product);
                    }
                }
                MarketData::Index(v) => {
                    assert!(!v.is_final, "an intraday publication is not final");
                    assert_eq!(v.ts, ts);
                    if let Some(last) = self.indices.insert((v.day, v.code.as_str().to_string()), ts) {
                        assert!(ts.0 >= last.0 + 1_000_000, "{} twice within a second", v.code.as_str());
                    }
                }
            }
        }
    }
}

/// Every check a settled day must pass against the simulator's model.
fn check_settled_day(settled: &SettledDay, sim: &MarketSim) {
    let summary = &settled.summary;
    // Every ledger entry balances; the participants' nets plus the market's fees are zero.
    for entry in &settled.ledger {
        assert!(entry.sum().is_zero(), "entry {} does not balance", entry.no);
    }
    let nets: Decimal = settled.statements.iter().map(|s| s.net).sum();
    assert_eq!(fen(nets) + fen(summary.fees), 0, "Σ net + fees ≠ 0 on {}", summary.day);
    assert!((nets + summary.fees).is_zero());
    // The ledger's balances per account are the statements' nets and the market's income.
    let mut balances: BTreeMap<Account, Decimal> = BTreeMap::new();
    for posting in settled.ledger.iter().flat_map(|e| e.postings.iter()) {
        *balances.entry(posting.account).or_default() += posting.amount;
    }
    assert_eq!(balances.get(&Account::Market).copied().unwrap_or_default(), summary.fees);
    for statement in &settled.statements {
        assert_eq!(balances[&Account::Participant(statement.participant)], statement.net);
    }

    // Each statement's totals are the sums of its lines.
    for s in &settled.statements {
        let sum = |side: Side, f: fn(&huashi_clearing::StatementLine) -> Decimal| -> Decimal {
            s.lines.iter().filter(|l| l.side == side).map(f).sum()
        };
        assert_eq!(s.total_bought, sum(Side::Buy, |l| l.amount));
        assert_eq!(s.fees, sum(Side::Buy, |l| l.fee));
        assert_eq!(s.total_sold, sum(Side::Sell, |l| l.amount));
        assert_eq!(s.commission, sum(Side::Sell, |l| l.fee));
        assert_eq!(s.net, s.total_sold - s.commission - s.total_bought - s.fees);
        assert!(!s.lines.is_empty(), "a statement without activity");
    }

    // Each sale that stands is exactly one buy line of its buyer and one sell line of its seller.
    type LineKey = (bool, u64, Option<u32>, Code, u64, i64, i64);
    let mut buys: Vec<LineKey> = Vec::new();
    let mut sells: Vec<LineKey> = Vec::new();
    for s in &settled.statements {
        for l in &s.lines {
            let key =
                (l.kind == TradeKind::Book, l.reference, l.round, s.participant, l.units, fen(l.amount), fen(l.fee));
            match l.side {
                Side::Buy => buys.push(key),
                Side::Sell => sells.push(key),
            }
        }
    }
    let standing: Vec<_> = sim.settled_sales.iter().filter(|s| !s.voided).collect();
    let mut expected_buys: Vec<LineKey> =
        standing.iter().map(|s| (s.book, s.reference, s.round, s.buyer, s.units, s.amount, s.fee)).collect();
    let mut expected_sells: Vec<LineKey> =
        standing.iter().map(|s| (s.book, s.reference, s.round, s.seller, s.units, s.amount, s.commission)).collect();
    for list in [&mut buys, &mut sells, &mut expected_buys, &mut expected_sells] {
        list.sort();
    }
    assert_eq!(buys, expected_buys, "buy lines differ from the sales");
    assert_eq!(sells, expected_sells, "sell lines differ from the sales");
    assert_eq!(settled.trades.len(), standing.len());

    // The model's nets, in integer fen, are the statements'.
    let totals = sim.settled_totals();
    assert_eq!(settled.statements.len(), totals.len());
    for s in &settled.statements {
        let t = totals[&s.participant];
        assert_eq!(
            (fen(s.total_bought), fen(s.total_sold), fen(s.fees), fen(s.commission), fen(s.net)),
            (t.bought, t.sold, t.fees, t.commission, t.net()),
            "statement of {}",
            s.participant
        );
    }
    // Every lot ended: sold, unsold or withdrawn.
    for lot in &settled.lots {
        assert_eq!(lot.open, 0);
        assert_eq!(lot.sold + lot.unsold + lot.withdrawn, lot.containers);
    }
}

struct Run {
    sim: MarketSim,
    clearing: Clearing,
    /// Restored from a bincode copy of `clearing` at some point; then fed the same outputs.
    restored: Option<Clearing>,
    throttle: ThrottleCheck,
    outputs: u64,
    copy_at: u64,
}

impl Run {
    fn new(copy_at: u64) -> Run {
        let sim = MarketSim::new(Day(20_786));
        let clearing = Clearing::new(ClearingConfig::default(), sim.day());
        Run { sim, clearing, restored: None, throttle: ThrottleCheck::default(), outputs: 0, copy_at }
    }

    fn feed(&mut self, output: SimOutput, settling: bool) {
        let out = self.clearing.apply(output.seq, output.ts, &output.events);
        assert!(self.clearing.ledger_balanced());
        self.throttle.check(output.ts, &out, settling);
        if let Some(restored) = &mut self.restored {
            assert_eq!(
                restored.apply(output.seq, output.ts, &output.events),
                out,
                "a restored clearing publishes the same"
            );
        }
        self.outputs += 1;
        if self.outputs == self.copy_at {
            let bytes = bincode::serialize(&self.clearing).unwrap();
            let restored: Clearing = bincode::deserialize(&bytes).unwrap();
            assert_eq!(restored.state_hash(), self.clearing.state_hash());
            assert_eq!(restored, self.clearing);
            self.restored = Some(restored);
        }
    }

    fn day(&mut self, ops: &[Op]) {
        for op in ops {
            if let Some(output) = self.sim.step(*op) {
                self.feed(output, false);
            }
        }
        let close = self.sim.end_day();
        self.feed(close, true);
        let settled = self.clearing.take_settled_day().expect("a settled day");
        assert!(self.clearing.take_settled_day().is_none());
        check_settled_day(&settled, &self.sim);
        if let Some(restored) = &mut self.restored {
            assert_eq!(restored.take_settled_day().as_ref(), Some(&settled));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    /// ~400 runs × 1–9 days ≈ 2,000 generated trading days.
    #[test]
    fn money_is_conserved_and_statements_match_the_sales(
        days in proptest::collection::vec(proptest::collection::vec(op(), 0..60), 1..10),
        copy_at in 1u64..200,
        duals in 0usize..2,
    ) {
        let mut run = Run::new(copy_at);
        let registration = run.sim.register(3, 2, duals);
        run.feed(registration, false);
        for ops in &days {
            run.day(ops);
        }
        if let Some(restored) = &run.restored {
            prop_assert_eq!(restored.state_hash(), run.clearing.state_hash());
        }
        prop_assert_eq!(run.clearing.index_history().len(), days.len());
    }
}

#[test]
fn a_state_restored_from_bincode_hashes_the_same_and_goes_on_the_same() {
    use rand::SeedableRng;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let mut run = Run::new(1_500);
    let registration = run.sim.register(4, 3, 1);
    run.feed(registration, false);
    for _ in 0..5 {
        let ops: Vec<Op> = (0..600).map(|_| support::random_op(&mut rng)).collect();
        run.day(&ops);
    }
    let restored = run.restored.as_ref().expect("copied mid-run");
    assert_eq!(restored.state_hash(), run.clearing.state_hash());
    assert_eq!(restored.index_history(), run.clearing.index_history());
}

#[test]
fn the_state_hash_changes_with_any_sale() {
    let mut sim = MarketSim::new(Day(20_786));
    let mut clearing = Clearing::new(ClearingConfig::default(), sim.day());
    let registration = sim.register(2, 1, 0);
    clearing.apply(registration.seq, registration.ts, &registration.events);
    let before = clearing.state_hash();
    let op = Op { kind: 9, a: 0, b: 0, c: 0, d: 100, wait_ms: 10 };
    let output = sim.step(op).unwrap();
    clearing.apply(output.seq, output.ts, &output.events);
    assert_ne!(clearing.state_hash(), before);
}

#[test]
#[should_panic(expected = "outputs must come once each")]
fn an_output_applied_twice_is_refused() {
    let mut sim = MarketSim::new(Day(20_786));
    let mut clearing = Clearing::new(ClearingConfig::default(), sim.day());
    let registration = sim.register(2, 1, 0);
    clearing.apply(registration.seq, registration.ts, &registration.events);
    clearing.apply(registration.seq, registration.ts, &registration.events);
}

#[test]
#[should_panic(expected = "clearing computes")]
fn a_fee_the_core_got_wrong_stops_clearing() {
    let mut sim = MarketSim::new(Day(20_786));
    let mut clearing = Clearing::new(ClearingConfig::default(), sim.day());
    let registration = sim.register(2, 1, 0);
    clearing.apply(registration.seq, registration.ts, &registration.events);
    let mut output = sim.step(Op { kind: 9, a: 0, b: 0, c: 0, d: 999, wait_ms: 10 }).unwrap();
    if let huashi_engine::event::Event::Traded(trade) = &mut output.events[0] {
        trade.commission.0 += 1;
    }
    clearing.apply(output.seq, output.ts, &output.events);
}
