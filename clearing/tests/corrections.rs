//! Property test of corrections (protocol §8, §12): book trades between buyers (one of them a
//! firm's seat) and sellers, complaints about them filed on the day of the trade and decided that
//! day or the next, accepted with a random credit or rejected. However they fall, each day's money
//! is conserved (Σ net + fees = 0, the corrections summing to zero), the market's fees do not
//! move, every correction lands on the day of its decision, and each participant's `corrections`
//! is exactly the credits it received less those it paid.

use huashi_clearing::{Clearing, ClearingConfig, StatementLookup, TradeKind};
use huashi_engine::command::Roles;
use huashi_engine::core::complaints::{Complaint, ComplaintReason, Decision};
use huashi_engine::core::dispatch::DispatchRef;
use huashi_engine::core::fees::FeeSchedule;
use huashi_engine::event::{Event, Trade};
use huashi_engine::types::{Code, Day, EngineTime, Fen, OrderId, Pk, Side, TradeId};
use proptest::prelude::*;
use rust_decimal::Decimal;
use std::collections::BTreeMap;

/// b0, b1 (buyers), s0 (a seat of b0), g0, g1 (sellers), by key 1..=5.
const PEOPLE: [(&str, bool, Option<u32>); 5] =
    [("b0", true, None), ("b1", true, None), ("s0", true, Some(1)), ("g0", false, None), ("g1", false, None)];

fn code(id: &str) -> Code {
    Code::parse(id, 32).unwrap()
}

#[derive(Clone, Debug)]
struct Deal {
    buyer: usize,
    seller: usize,
    price: i64,
    quantity: u64,
    /// A complaint: units, credit in thousandths of the most, accepted, decided the next day.
    complaint: Option<(u64, u16, bool, bool)>,
}

fn deal() -> impl Strategy<Value = Deal> {
    let complaint = prop::option::of((1u64..50, 0u16..=1000, any::<bool>(), any::<bool>()));
    (0usize..3, 3usize..5, 1i64..500, 1u64..50, complaint)
        .prop_map(|(buyer, seller, price, quantity, complaint)| Deal { buyer, seller, price, quantity, complaint })
}

struct Run {
    clearing: Clearing,
    seq: u64,
    ts: EngineTime,
}

impl Run {
    fn apply(&mut self, events: Vec<Event>) {
        self.seq += 1;
        self.ts = EngineTime(self.ts.0 + 1_000);
        self.clearing.apply(self.seq, self.ts, &events);
        assert!(self.clearing.ledger_balanced());
    }

    fn settle(&mut self, day: Day, trades: u64, turnover: Fen, fees: Fen) {
        self.apply(vec![Event::DaySettled { day, next_day: day.next(), trades, turnover, fees }]);
        while self.clearing.take_goods_day().is_some() {}
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn corrections_conserve_money_on_the_day_of_the_decision(deals in prop::collection::vec(deal(), 1..20)) {
        let schedule = FeeSchedule::default();
        let day1 = Day::parse("2026-11-29").unwrap();
        let mut run = Run { clearing: Clearing::new(ClearingConfig { fees: schedule }, day1), seq: 0, ts: EngineTime(1) };
        let mut registered = Vec::new();
        for (i, (id, buyer, firm)) in PEOPLE.iter().enumerate() {
            registered.push(Event::ParticipantRegistered {
                pk: Pk(i as u32 + 1),
                id: code(id),
                name: id.to_string(),
                roles: Roles { operator: false, grower: !buyer, buyer: *buyer, logistics: false },
                credit_limit: Fen(0),
                token_hash: [0; 32],
                firm: firm.map(Pk),
                daily_limit: None,
            });
        }
        run.apply(registered);
        // Who is credited for a purchase by buyer i: a seat's firm.
        let payer = |i: usize| if i == 2 { 0 } else { i };
        let (mut turnover, mut fees) = (Fen(0), Fen(0));
        let mut expected: [BTreeMap<usize, i64>; 2] = [BTreeMap::new(), BTreeMap::new()];
        let mut next_day = Vec::new();
        for (n, d) in deals.iter().enumerate() {
            let amount = Fen(d.price * d.quantity as i64);
            let (fee, commission) = (schedule.book_fee(amount), schedule.commission(amount));
            turnover = Fen(turnover.0 + amount.0);
            fees = Fen(fees.0 + fee.0 + commission.0);
            let trade = Trade {
                trade_id: TradeId(n as u64 + 1),
                symbol: code("ROSE-A"),
                product: code("ROSE"),
                price: Fen(d.price),
                quantity: d.quantity,
                amount,
                aggressor: Side::Buy,
                buyer: Pk(d.buyer as u32 + 1),
                buyer_id: code(PEOPLE[d.buyer].0),
                buyer_order: OrderId(1),
                seller: Pk(d.seller as u32 + 1),
                seller_id: code(PEOPLE[d.seller].0),
                seller_order: OrderId(2),
                fee,
                commission,
                ts: EngineTime(run.ts.0 + 1),
            };
            run.apply(vec![Event::Traded(trade)]);
            let Some((units, share, accepted, later)) = d.complaint else { continue };
            let units = units.min(d.quantity);
            let credit_max = Fen(d.price * units as i64);
            let mut complaint = Complaint {
                id: n as u64 + 1,
                reference: DispatchRef::Book(TradeId(n as u64 + 1)),
                day: day1,
                buyer: Pk(d.buyer as u32 + 1),
                payer: Pk(payer(d.buyer) as u32 + 1),
                seller: Pk(d.seller as u32 + 1),
                lot: None,
                product: code("ROSE"),
                grade: None,
                reason: ComplaintReason::Quality,
                containers: units,
                note: String::new(),
                credit_max,
                filed: run.ts,
                decision: None,
            };
            run.apply(vec![Event::ComplaintFiled(Box::new(complaint.clone()))]);
            let credit = if accepted { Fen(credit_max.0 * i64::from(share) / 1000) } else { Fen(0) };
            let decision = if accepted { Decision::Accepted } else { Decision::Rejected };
            complaint.decision = Some((decision, credit));
            let on = usize::from(later);
            *expected[on].entry(payer(d.buyer)).or_default() += credit.0;
            *expected[on].entry(d.seller).or_default() -= credit.0;
            if later {
                next_day.push(complaint);
            } else {
                run.apply(vec![Event::ComplaintResolved(Box::new(complaint))]);
            }
        }
        run.settle(day1, deals.len() as u64, turnover, fees);
        let day2 = day1.next();
        for complaint in next_day {
            run.apply(vec![Event::ComplaintResolved(Box::new(complaint))]);
        }
        run.settle(day2, 0, Fen(0), Fen(0));
        for (on, day) in [(0, day1), (1, day2)] {
            let market_fees = if on == 0 { fees.0 } else { 0 };
            let mut nets = 0;
            let mut corrections = 0;
            for (i, (id, _, _)) in PEOPLE.iter().enumerate() {
                let statement = match run.clearing.statement(&code(id), day) {
                    StatementLookup::Found(s) => s,
                    _ => continue,
                };
                let fen = |d: Decimal| huashi_clearing::money::to_fen(d).0;
                prop_assert!(statement.totals_match_lines());
                let lines: i64 = statement.lines.iter().filter(|l| l.kind == TradeKind::Correction).map(|l| fen(l.amount)).sum();
                prop_assert_eq!(fen(statement.corrections), lines);
                if statement.view_of.is_some() {
                    continue;
                }
                let want = expected[on].get(&i).copied().unwrap_or(0);
                prop_assert_eq!(fen(statement.corrections), want, "{}'s corrections on {}", id, day);
                nets += fen(statement.net);
                corrections += fen(statement.corrections);
            }
            prop_assert_eq!(corrections, 0);
            prop_assert_eq!(nets + market_fees, 0, "Σ net + fees on {}", day);
        }
    }
}
