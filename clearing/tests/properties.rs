//! Property tests over generated trading days: the event streams are what the engine emits (fees
//! from its own integer `FeeSchedule`, `DaySettled` with its totals), and an independent model in
//! integer fen says what each day's statements must be. Days mix clock awards, voids, presale
//! purchases and book trades, bought by buyers and by seats of buyer firms.

mod support;

use huashi_clearing::{
    Account, CellKey, Clearing, ClearingConfig, MarketData, SettledDay, Statement, StatementLine, StatementLookup,
    TradeKind,
};
use huashi_engine::core::catalogue::Category;
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

    // Each sale that stands is exactly one buy line of its buyer (a seat's firm, the line naming
    // the seat) and one sell line of its seller; presales are lines of kind presale.
    type LineKey = (TradeKind, u64, Option<u32>, Code, Option<Code>, u64, i64, i64);
    let mut buys: Vec<LineKey> = Vec::new();
    let mut sells: Vec<LineKey> = Vec::new();
    for s in &settled.statements {
        for l in &s.lines {
            let key = (l.kind, l.reference, l.round, s.participant, l.seat, l.units, fen(l.amount), fen(l.fee));
            match l.side {
                Side::Buy => buys.push(key),
                Side::Sell => sells.push(key),
            }
        }
    }
    let standing: Vec<_> = sim.settled_sales.iter().filter(|s| !s.voided).collect();
    let mut expected_buys: Vec<LineKey> =
        standing.iter().map(|s| (s.kind, s.reference, s.round, s.buyer, s.seat, s.units, s.amount, s.fee)).collect();
    let mut expected_sells: Vec<LineKey> = standing
        .iter()
        .map(|s| (s.kind, s.reference, s.round, s.seller, None, s.units, s.amount, s.commission))
        .collect();
    for list in [&mut buys, &mut sells, &mut expected_buys, &mut expected_sells] {
        list.sort();
    }
    assert_eq!(buys, expected_buys, "buy lines differ from the sales");
    assert_eq!(sells, expected_sells, "sell lines differ from the sales");
    assert_eq!(settled.trades.len(), standing.len());
    let presales = standing.iter().filter(|s| s.kind == TradeKind::Presale).count();
    let presale_lines = buys.iter().filter(|k| k.0 == TradeKind::Presale).count();
    assert_eq!(presale_lines, presales, "a presale line per presale purchase");
    check_seats(settled, sim);
    check_cells(settled, &standing);

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
    // Every lot ended: sold, unsold or withdrawn; presold containers are among the sold, each
    // one a presale purchase that stands.
    for lot in &settled.lots {
        assert_eq!(lot.open, 0);
        assert_eq!(lot.sold + lot.unsold + lot.withdrawn, lot.containers);
        let presold: u32 = settled
            .trades
            .iter()
            .filter(|t| t.kind == TradeKind::Presale && t.reference == lot.lot_id)
            .map(|t| t.containers.expect("a presale has containers"))
            .sum();
        assert_eq!(lot.presold, presold, "lot {} presold", lot.lot_id);
        assert!(lot.presold <= lot.sold);
    }
}

/// Seats have no statement and count nowhere in conservation; a firm's statement is the sum of
/// its seats' views and its own trades, line for line and total for total.
fn check_seats(settled: &SettledDay, sim: &MarketSim) {
    let seats = sim.seats();
    assert_eq!(settled.summary.participants as usize, settled.statements.len());
    for statement in &settled.statements {
        assert!(!statement.is_view());
        assert!(
            !seats.iter().any(|(seat, _)| *seat == statement.participant),
            "seat {} has a statement",
            statement.participant
        );
    }
    let mut traded: Vec<(Code, Code)> = Vec::new();
    for firm in &settled.statements {
        let own: Vec<StatementLine> = firm.lines.iter().filter(|l| l.seat.is_none()).cloned().collect();
        let mut parts = vec![Statement::from_lines(firm.participant, firm.day, firm.fee_schedule, own)];
        for (seat, _) in seats.iter().filter(|(_, f)| *f == firm.participant) {
            let view = firm.seat_view(*seat);
            assert_eq!(view.view_of, Some(firm.participant));
            assert_eq!(view.participant, *seat);
            assert!(view.totals_match_lines());
            assert!(view.lines.iter().all(|l| l.side == Side::Buy && l.seat == Some(*seat)));
            if !view.lines.is_empty() {
                traded.push((*seat, firm.participant));
            }
            parts.push(view);
        }
        let sum = |f: fn(&Statement) -> Decimal| parts.iter().map(f).sum::<Decimal>();
        assert_eq!(
            (sum(|s| s.total_bought), sum(|s| s.fees), sum(|s| s.total_sold), sum(|s| s.commission), sum(|s| s.net)),
            (firm.total_bought, firm.fees, firm.total_sold, firm.commission, firm.net),
            "{}'s statement ≠ its seats' views plus its own trades",
            firm.participant
        );
        assert_eq!(parts.iter().map(|p| p.lines.len()).sum::<usize>(), firm.lines.len());
    }
    traded.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
    assert_eq!(settled.seats, traded, "the seats that traded, with their firms");
}

/// Every cell's statistics (the index's inputs) count exactly the sales that stand in it: clock,
/// presale and book (a book trade under the best grade of its product's scale).
fn check_cells(settled: &SettledDay, standing: &[&support::ExpectedSale]) {
    let mut expected: BTreeMap<CellKey, (u64, i64, u64)> = BTreeMap::new();
    for sale in standing {
        let cell = expected.entry(sale.cell).or_default();
        cell.0 += 1;
        cell.1 += sale.amount;
        cell.2 += sale.units;
    }
    let cells: BTreeMap<CellKey, (u64, i64, u64)> = settled
        .market
        .cells
        .iter()
        .map(|c| (CellKey { product: c.product, grade: c.grade }, (c.trades, fen(c.turnover), c.units)))
        .collect();
    assert_eq!(cells, expected, "the cells count other sales than those that stand");
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
        self.check_seat_lookups();
        let settled = self.clearing.take_settled_day().expect("a settled day");
        assert!(self.clearing.take_settled_day().is_none());
        check_settled_day(&settled, &self.sim);
        if let Some(restored) = &mut self.restored {
            assert_eq!(restored.take_settled_day().as_ref(), Some(&settled));
        }
        let day = settled.day();
        for (seat, _) in self.sim.seats() {
            assert_eq!(self.clearing.statement(&seat, day), StatementLookup::InArchive);
        }
    }

    /// A seat's statement is a view of its firm's, on the settled day (still in memory) and on
    /// the new day (no lines yet); the firm's `firm_of` is nobody.
    fn check_seat_lookups(&self) {
        let settled = Day(self.clearing.day().0 - 1);
        for (seat, firm) in self.sim.seats() {
            assert_eq!(self.clearing.firm_of(&seat), Some(firm));
            assert_eq!(self.clearing.firm_of(&firm), None);
            let firm_statement = match self.clearing.statement(&firm, settled) {
                StatementLookup::Found(statement) => Some(statement),
                StatementLookup::NoActivity => None,
                StatementLookup::InArchive => panic!("the settled day is still in memory"),
            };
            let view = firm_statement.map(|s| s.seat_view(seat)).filter(|v| !v.lines.is_empty());
            match self.clearing.statement(&seat, settled) {
                StatementLookup::Found(found) => assert_eq!(Some(found), view),
                StatementLookup::NoActivity => assert_eq!(view, None),
                StatementLookup::InArchive => panic!("the settled day is still in memory"),
            }
            let StatementLookup::Found(today) = self.clearing.statement(&seat, self.clearing.day()) else {
                panic!("today's view is in memory")
            };
            assert_eq!((today.view_of, today.lines.len()), (Some(firm), 0));
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
        seats in 0usize..5,
    ) {
        let mut run = Run::new(copy_at);
        let registration = run.sim.register(3, 2, duals);
        run.feed(registration, false);
        let seats = run.sim.register_seats(seats);
        run.feed(seats, false);
        // A product whose scale does not start at A1: its book trades count under M1.
        let moss = run.sim.define_product("MOSS", Category::Other, &["M1", "M2"]);
        run.feed(moss, false);
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
    let seats = run.sim.register_seats(4);
    run.feed(seats, false);
    let (mut presales, mut seat_lines) = (0, 0);
    for _ in 0..5 {
        let ops: Vec<Op> = (0..600).map(|_| support::random_op(&mut rng)).collect();
        run.day(&ops);
        let standing = run.sim.settled_sales.iter().filter(|s| !s.voided);
        presales += standing.clone().filter(|s| s.kind == TradeKind::Presale).count();
        seat_lines += standing.filter(|s| s.seat.is_some()).count();
    }
    assert!(presales > 20 && seat_lines > 100, "{presales} presales, {seat_lines} seat purchases");
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
