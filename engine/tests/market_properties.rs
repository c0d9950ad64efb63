//! Properties of the whole market under random operation streams: consignments, assignments,
//! starts and halts, live bids (also two at the same instant), standing bids, voids, clock settings,
//! withdrawals, credit and status changes, book orders, cancels and amends, time passing in random
//! gaps, and the end of the day. After every single `apply` the observer checks:
//!
//! - a round's price never rises: successive samples of `price(t)` and successive award prices of
//!   one round; every award is at `price(award.ts)` of its round, or (multi-buy) at the price the
//!   round stopped at;
//! - nothing sells below the reserve, and a round ends unsold exactly at the first tick below it;
//! - containers are conserved, and each lot's `sold` is what its awards less its voids say;
//! - the first valid live bid of a round wins and a later one gets `too_late` (unless multi-buy),
//!   checked against an oracle computed from the state the bid found;
//! - no buyer's exposure exceeds its credit limit, unless the operator lowered the limit below it,
//!   and then exposure does not grow and nothing is bought until it fits again;
//! - money balances: Σ bought = Σ sold = turnover, Σ fees + Σ commission = the day's fees, and
//!   `day_settled` reports what the day published;
//! - `check_invariants()` holds and no open book is crossed.

mod common;

use common::*;
use huashi_engine::command::{Action, Actor, Command};
use huashi_engine::core::book::BookState;
use huashi_engine::core::clock::{Clock, ClockPhase};
use huashi_engine::core::complaints::Decision;
use huashi_engine::core::dispatch::{DispatchRef, DispatchStatus};
use huashi_engine::core::lots::Lot;
use huashi_engine::core::{Market, MarketConfig};
use huashi_engine::event::Event;
use huashi_engine::reject::{Reject, RejectCode};
use huashi_engine::types::{Day, EngineTime, Fen, LotId, Pk, Side};
use proptest::prelude::*;
use std::collections::BTreeMap;

/// A round as `clock_started` published it.
#[derive(Clone, Copy, Debug)]
struct PublishedRound {
    start_price: Fen,
    step: Fen,
    tick_ms: u32,
    start_ts: EngineTime,
}

impl PublishedRound {
    fn price_at(&self, t: EngineTime) -> Fen {
        let ticks = (t.0 - self.start_ts.0) / (self.tick_ms as u64 * 1000);
        Fen(self.start_price.0 - self.step.0 * ticks as i64)
    }
}

/// What the bid found when it reached the engine (after the timers due by then).
#[derive(Debug)]
enum BidOutlook {
    /// The round is running: the bid may win at `price`.
    Running { price: Fen },
    /// The round stopped at `price` and the multi-buy window is open.
    Window { price: Fen },
    /// The round is over (stopped, ended, halted) or the lot is finished.
    Ended,
    /// The round has not started.
    NotStarted,
    /// Not a buyer, suspended, or no such clock or lot: not this oracle's business.
    Other,
}

#[derive(Default)]
struct Observer {
    rounds: BTreeMap<(LotId, u32), PublishedRound>,
    /// The last price seen of a round: sampled from the clock, or awarded.
    last_price: BTreeMap<(LotId, u32), Fen>,
    /// The price a round stopped at (its first award).
    stop_price: BTreeMap<(LotId, u32), Fen>,
    sold: BTreeMap<LotId, u32>,
    /// The lots as the previous apply left them: an `end_of_day` drops the day's lots, but the
    /// timers it runs first may still report on them.
    prev_lots: BTreeMap<LotId, Lot>,
    standing_max: BTreeMap<(LotId, Pk), Fen>,
    day_trades: u64,
    day_turnover: i64,
    day_fees: i64,
    applies: u64,
    awards: u64,
    days: u64,
    voids: u64,
    unsold: u64,
    multi_buys: u64,
    too_late: u64,
    over_limit: u64,
    presales: u64,
    /// Each dispatch line's status and alarm as last reported: never back, an alarm for good.
    dispatch: BTreeMap<DispatchRef, (DispatchStatus, bool)>,
    dispatch_updates: u64,
    complaints_resolved: u64,
}

fn bid_outlook(market: &Market, command: &Command, now: EngineTime) -> BidOutlook {
    let (Actor::Participant(pk), Action::Bid { clock, lot, round, .. }) = (command.actor, &command.action) else {
        return BidOutlook::Other;
    };
    let participant = market.participants().get(pk);
    let (Some(c), Some(l)) = (market.clock(*clock), market.lot(*lot)) else { return BidOutlook::Other };
    if !participant.roles.buyer || !participant.active {
        return BidOutlook::Other;
    }
    let on_clock = c.lot == Some(*lot);
    if on_clock && c.phase == ClockPhase::Running && c.round.map(|r| r.number) == Some(*round) {
        return BidOutlook::Running { price: c.round.unwrap().price_at(now) };
    }
    if let (true, ClockPhase::Pause, Some(stop)) = (on_clock, c.phase, c.stop) {
        if stop.round == *round && now < stop.multi_buy_until && l.remaining > 0 {
            return BidOutlook::Window { price: stop.price };
        }
    }
    if l.status.is_finished() || *round <= l.rounds {
        BidOutlook::Ended
    } else {
        BidOutlook::NotStarted
    }
}

impl Observer {
    #[allow(clippy::too_many_arguments)]
    fn check(
        &mut self,
        market: &Market,
        command: &Command,
        now: EngineTime,
        result: &Result<(), Reject>,
        events: &[Event],
        before: &[(Fen, Fen)],
        outlook: &BidOutlook,
        clocks_before: &[Clock],
    ) {
        self.applies += 1;
        market.check_invariants();
        self.check_events(market, events);
        self.check_bid(market, command, result, events, outlook);
        self.check_clocks(market, now, clocks_before);
        self.check_lots(market);
        self.check_credit(market, command, events, before);
        self.check_money(market);
        self.check_dispatch(market, events);
        self.prev_lots = market.lots().clone();
        for (symbol, listing) in market.listings() {
            if listing.book.state() == BookState::Open {
                if let (Some(bid), Some(ask)) = (listing.book.best(Side::Buy), listing.book.best(Side::Sell)) {
                    assert!(bid < ask, "book {symbol} is crossed while open: {bid:?} ≥ {ask:?}");
                }
            }
        }
    }

    /// The lot now, or as it was before this apply if the apply settled the day.
    fn lot(&self, market: &Market, id: LotId) -> Lot {
        market.lot(id).or_else(|| self.prev_lots.get(&id)).cloned().unwrap_or_else(|| panic!("no lot {}", id.0))
    }

    fn check_events(&mut self, market: &Market, events: &[Event]) {
        for event in events {
            match event {
                Event::ClockStarted { lot, round, start_price, step, tick_ms, start_ts, .. } => {
                    let l = self.lot(market, *lot);
                    assert!(*start_price >= l.min_price, "round {round} of lot {} starts below the reserve", lot.0);
                    assert!(
                        Some(*start_price) <= l.start_price,
                        "round {round} of lot {} starts above its start",
                        lot.0
                    );
                    let published = PublishedRound {
                        start_price: *start_price,
                        step: *step,
                        tick_ms: *tick_ms,
                        start_ts: *start_ts,
                    };
                    assert!(self.rounds.insert((*lot, *round), published).is_none(), "round {round} started twice");
                }
                Event::Awarded(award) => {
                    self.awards += 1;
                    let key = (award.lot, award.round);
                    let lot = self.lot(market, award.lot);
                    assert!(award.price >= lot.min_price, "lot {} sold below its reserve: {award:?}", lot.id.0);
                    let round = self.rounds[&key];
                    match self.stop_price.get(&key) {
                        // Multi-buy: later awards of a stopped round are at the price it stopped at.
                        Some(stop) => {
                            assert_eq!(award.price, *stop, "a multi-buy award at another price");
                            self.multi_buys += 1;
                        }
                        None => {
                            assert_eq!(award.price, round.price_at(award.ts), "an award off the clock's price");
                            self.stop_price.insert(key, award.price);
                        }
                    }
                    if let Some(last) = self.last_price.get(&key) {
                        assert!(award.price <= *last, "the price of round {key:?} rose: {last:?} → {:?}", award.price);
                    }
                    self.last_price.insert(key, award.price);
                    if award.standing {
                        let max = self.standing_max[&(award.lot, award.buyer)];
                        assert!(award.price <= max, "a standing bid paid over its max: {award:?}");
                    }
                    let remaining_before = award.remaining + award.containers;
                    assert!(
                        award.containers >= lot.min_purchase.min(remaining_before),
                        "an award under the minimum purchase: {award:?}"
                    );
                    assert_eq!(award.amount, Fen(award.price.0 * award.units as i64));
                    assert_eq!(award.units, lot.units_per_container as u64 * award.containers as u64);
                    *self.sold.entry(award.lot).or_default() += award.containers;
                    self.day_trades += 1;
                    self.day_turnover += award.amount.0;
                    self.day_fees += award.fee.0 + award.commission.0;
                }
                Event::AwardVoided { lot, containers, amount, fee, commission, .. } => {
                    self.voids += 1;
                    *self.sold.get_mut(lot).expect("voided awards were made") -= containers;
                    self.day_trades -= 1;
                    self.day_turnover -= amount.0;
                    self.day_fees -= fee.0 + commission.0;
                }
                Event::PresaleBought(sale) => {
                    self.presales += 1;
                    let lot = self.lot(market, sale.lot);
                    let offered = sale.offer_left + sale.containers;
                    assert!(sale.containers >= lot.min_purchase.min(offered), "a presale under the minimum: {sale:?}");
                    assert_eq!(sale.amount, Fen(sale.price.0 * sale.units as i64));
                    assert_eq!(sale.units, lot.units_per_container as u64 * sale.containers as u64);
                    *self.sold.entry(sale.lot).or_default() += sale.containers;
                    self.day_trades += 1;
                    self.day_turnover += sale.amount.0;
                    self.day_fees += sale.fee.0 + sale.commission.0;
                }
                Event::LotOnClock { lot, .. } => {
                    assert_eq!(lot.presale, None, "lot {}'s presale offer closes when it goes on the clock", lot.id.0);
                }
                Event::Traded(trade) => {
                    self.day_trades += 1;
                    self.day_turnover += trade.amount.0;
                    self.day_fees += trade.fee.0 + trade.commission.0;
                }
                Event::LotUnsold { lot, round, ts, remaining, .. } => {
                    self.unsold += 1;
                    if let Some(l) = market.lot(*lot) {
                        assert_eq!(l.remaining, 0);
                        assert!(l.unsold >= *remaining, "the rest of lot {} is unsold", lot.0);
                    }
                    let l = self.lot(market, *lot);
                    let r = self.rounds[&(*lot, *round)];
                    // Exactly at the first tick below the reserve: the microsecond before still sold.
                    assert!(r.price_at(*ts) < l.min_price, "round {round} of lot {} ended above the reserve", lot.0);
                    assert!(
                        r.price_at(EngineTime(ts.0 - 1)) >= l.min_price,
                        "round {round} of lot {} ended late",
                        lot.0
                    );
                }
                Event::StandingBidAccepted { buyer, lot, max_price, .. } => {
                    self.standing_max.insert((*lot, *buyer), *max_price);
                }
                Event::DaySettled { trades, turnover, fees, .. } => {
                    assert_eq!(*trades, self.day_trades, "day_settled.trades");
                    assert_eq!(turnover.0, self.day_turnover, "day_settled.turnover");
                    assert_eq!(fees.0, self.day_fees, "day_settled.fees");
                    self.day_trades = 0;
                    self.day_turnover = 0;
                    self.day_fees = 0;
                    self.days += 1;
                    self.sold.clear();
                    self.rounds.clear();
                    self.last_price.clear();
                    self.stop_price.clear();
                    self.standing_max.clear();
                }
                _ => {}
            }
        }
    }

    /// Every sale of the day that stands has its dispatch line; a line never goes back and its
    /// alarm stays; a decision's credit is within the complained amount.
    fn check_dispatch(&mut self, market: &Market, events: &[Event]) {
        let today = market.dispatch_lines(market.day(), None).expect("today's lines");
        assert_eq!(today.len() as u64, self.day_trades, "one dispatch line per sale that stands today");
        for event in events {
            match event {
                Event::DispatchUpdated { line, alarm_raised, max_temperature, reading } => {
                    assert!(reading.is_none() || *reading == line.temperature, "the line keeps the latest reading");
                    self.dispatch_updates += 1;
                    let (status, alarm) =
                        self.dispatch.get(&line.reference).copied().unwrap_or((DispatchStatus::Awaiting, false));
                    assert!(line.status >= status, "line {} went back to {:?}", line.reference, line.status);
                    assert!(line.alarm || !alarm, "line {} lost its alarm", line.reference);
                    if *alarm_raised {
                        assert!(line.temperature > *max_temperature && !alarm, "alarm raised without cause");
                    }
                    self.dispatch.insert(line.reference, (line.status, line.alarm));
                }
                Event::ComplaintResolved(complaint) => {
                    self.complaints_resolved += 1;
                    let (decision, credit) = complaint.decision.expect("decided");
                    assert!(credit <= complaint.credit_max && credit.0 >= 0, "credit beyond the complained amount");
                    if decision == Decision::Rejected {
                        assert_eq!(credit, Fen::ZERO, "a rejected complaint credits nothing");
                    }
                }
                _ => {}
            }
        }
    }

    /// The first valid bid of a running round wins at the clock's price; every bid after it in
    /// that round is `too_late`, unless the multi-buy window takes it at the same price.
    fn check_bid(
        &mut self,
        market: &Market,
        command: &Command,
        result: &Result<(), Reject>,
        events: &[Event],
        outlook: &BidOutlook,
    ) {
        let awards = awards_in(events);
        let code = result.as_ref().err().map(|r| r.code);
        let may_refuse = |code: Option<RejectCode>| {
            matches!(code, Some(RejectCode::QuantityInvalid | RejectCode::CreditLimit | RejectCode::Forbidden))
        };
        match outlook {
            BidOutlook::Running { price } | BidOutlook::Window { price } => {
                if result.is_ok() {
                    assert_eq!(awards.len(), 1, "{command:?} won but awarded {awards:?}");
                    assert_eq!(awards[0].price, *price, "{command:?} won at the wrong price");
                    if let (Actor::Participant(pk), Action::Bid { clock, .. }) = (command.actor, &command.action) {
                        assert_eq!(awards[0].buyer, pk);
                        assert_ne!(market.clock(*clock).unwrap().phase, ClockPhase::Running, "a won round stops");
                    }
                } else {
                    assert!(may_refuse(code), "{command:?} in a live round was refused with {result:?}");
                    assert!(awards.is_empty());
                }
            }
            BidOutlook::Ended => {
                assert_eq!(code, Some(RejectCode::TooLate), "{command:?} for an ended round: {result:?}");
                self.too_late += 1;
            }
            BidOutlook::NotStarted => {
                assert_eq!(code, Some(RejectCode::InvalidState), "{command:?} for a future round: {result:?}");
            }
            BidOutlook::Other => {}
        }
    }

    fn check_clocks(&mut self, market: &Market, now: EngineTime, clocks_before: &[Clock]) {
        for c in market.clocks() {
            if let (ClockPhase::Running, Some(round), Some(lot)) = (c.phase, c.round, c.lot) {
                let price = round.price_at(now);
                assert!(price >= round.min_price, "clock {} runs below the reserve", c.id.0);
                let key = (lot, round.number);
                if let Some(last) = self.last_price.get(&key) {
                    assert!(price <= *last, "the price of round {key:?} rose: {last:?} → {price:?}");
                }
                self.last_price.insert(key, price);
                assert_eq!(self.rounds[&key].price_at(now), price, "the clock disagrees with what it published");
            }
            if c.phase == ClockPhase::Idle {
                assert_eq!(c.lot, None, "an idle clock holds no lot");
            }
        }
        // A clock that went idle put its unfinished lot back at the head of its line.
        for (before, after) in clocks_before.iter().zip(market.clocks()) {
            if let (Some(lot), ClockPhase::Idle) = (before.lot, after.phase) {
                if let Some(l) = market.lot(lot) {
                    if !l.status.is_finished() {
                        assert_eq!(after.supply_line.front(), Some(&lot), "a halted lot is back at the head");
                    }
                }
            }
        }
    }

    fn check_lots(&self, market: &Market) {
        for lot in market.lots().values() {
            assert_eq!(lot.sold + lot.remaining + lot.unsold, lot.containers, "lot {} lost containers", lot.id.0);
            assert_eq!(
                lot.sold,
                self.sold.get(&lot.id).copied().unwrap_or(0),
                "lot {} sold ≠ awards − voids + presales",
                lot.id.0
            );
            if lot.status.is_finished() {
                assert_eq!(lot.remaining, 0);
            }
        }
    }

    fn check_credit(&mut self, market: &Market, command: &Command, events: &[Event], before: &[(Fen, Fen)]) {
        // A new limit applies from its command on; the timers that ran first (and whatever they
        // bought) saw the old one. Only `set_credit_limit` changes limits, and it changes no
        // exposure, so the exposure after it is the exposure the timers left.
        let limit_changed = matches!(command.action, Action::SetCreditLimit { .. });
        for p in market.participants().iter() {
            let account = &p.account;
            assert!(account.reserved.0 >= 0 && account.purchases.0 >= 0);
            // Exposure plus the fee headroom held for open buy orders: what the buyer is committed
            // to. It never exceeds the limit, so neither does the protocol's exposure (≤ it).
            let exposure = Fen(account.exposure().0 + account.fee_hold.0);
            let limit = if limit_changed { before[p.pk.0 as usize].1 } else { account.credit_limit };
            if exposure <= limit {
                continue;
            }
            // Over the limit: only because the operator lowered it. Then nothing new is bought.
            self.over_limit += 1;
            let (exposure_before, _) = before[p.pk.0 as usize];
            assert!(
                exposure <= exposure_before,
                "{} is over its limit {} and its exposure grew {} → {}",
                p.id,
                account.credit_limit,
                exposure_before,
                exposure
            );
            // A firm pays for its seats' purchases.
            let pays = |buyer: Pk| buyer == p.pk || market.participants().get(buyer).firm == Some(p.pk);
            let bought = awards_in(events).iter().any(|a| pays(a.buyer))
                || events.iter().any(|e| matches!(e, Event::PresaleBought(s) if pays(s.buyer)));
            assert!(!bought, "{} bought at the clock or by presale over its credit limit", p.id);
        }
    }

    fn check_money(&self, market: &Market) {
        let (mut bought, mut sold, mut fees) = (0i64, 0i64, 0i64);
        // Money moves between firms, buyers and growers; a seat's purchases are its firm's too,
        // so seats are counted through their firms (protocol section 8).
        for p in market.participants().iter().filter(|p| p.firm.is_none()) {
            bought += p.account.bought.0;
            sold += p.account.sold.0;
            fees += p.account.fees.0 + p.account.commission.0;
        }
        let totals = market.totals();
        assert_eq!(bought, sold, "what buyers bought ≠ what growers sold");
        assert_eq!(bought, totals.turnover.0);
        assert_eq!(fees, totals.fees.0);
        assert_eq!(totals.turnover.0, self.day_turnover);
        assert_eq!(totals.trades, self.day_trades);
    }
}

/// Runs one generated stream, checking every apply. Returns the observer for coverage checks.
fn run(ops: &[RawOp]) -> Observer {
    let day = Day::parse(DAY).unwrap();
    let mut market = Market::new(MarketConfig::new(day));
    let mut now = morning_of(day);
    let mut events = Vec::new();
    let mut observer = Observer::default();
    for command in roster_commands() {
        market.apply(&command, now, &mut events).result.expect("the roster registers");
    }
    let mut driver = Driver::new();
    let mut history = History::default();
    for raw in ops {
        now = EngineTime(now.0 + Driver::gap_us(raw));
        for command in driver.resolve(&market, raw) {
            let is_bid = matches!(command.action, Action::Bid { .. });
            if is_bid {
                // Run the timers due by now on their own, so the oracle sees what the bid finds.
                let tick = Command::tick();
                apply_checked(&mut market, &mut observer, &tick, now, &mut events, &BidOutlook::Other, &mut history);
            }
            let outlook = if is_bid { bid_outlook(&market, &command, now) } else { BidOutlook::Other };
            apply_checked(&mut market, &mut observer, &command, now, &mut events, &outlook, &mut history);
        }
    }
    observer
}

/// The last few applies, printed when a check fails: random streams shrink poorly, so the
/// failure has to explain itself.
#[derive(Default)]
struct History {
    entries: std::collections::VecDeque<String>,
}

impl History {
    const ENTRIES_MAX: usize = 16;

    fn record(&mut self, entry: String) {
        if self.entries.len() == Self::ENTRIES_MAX {
            self.entries.pop_front();
        }
        self.entries.push_back(entry);
    }
}

#[allow(clippy::too_many_arguments)]
fn apply_checked(
    market: &mut Market,
    observer: &mut Observer,
    command: &Command,
    now: EngineTime,
    events: &mut Vec<Event>,
    outlook: &BidOutlook,
    history: &mut History,
) {
    let before: Vec<(Fen, Fen)> = market
        .participants()
        .iter()
        .map(|p| (Fen(p.account.exposure().0 + p.account.fee_hold.0), p.account.credit_limit))
        .collect();
    let clocks_before = market.clocks().to_vec();
    events.clear();
    let applied = market.apply(command, now, events);
    history.record(format!("t={} {command:?} → {:?}\n    {events:?}", now.0, applied.result));
    let checked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        observer.check(market, command, now, &applied.result, events, &before, outlook, &clocks_before)
    }));
    if let Err(panic) = checked {
        for entry in &history.entries {
            eprintln!("{entry}");
        }
        std::panic::resume_unwind(panic);
    }
}

fn ops(max_len: usize) -> impl Strategy<Value = Vec<RawOp>> {
    proptest::collection::vec(any::<RawOp>(), 1..max_len)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn market_rules_hold_after_every_apply(ops in ops(600)) {
        run(&ops);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Only clock business (no books), so the rounds get crowded: more races, more multi-buy.
    #[test]
    fn clock_rules_hold_under_crowded_bidding(ops in ops(500)) {
        let clock_only: Vec<RawOp> = ops
            .into_iter()
            .map(|mut raw| {
                // Fold the book and credit kinds onto bids and standing bids.
                if (59..92).contains(&(raw[0] % 100)) {
                    raw[0] = 23 + raw[0] % 29;
                }
                raw
            })
            .collect();
        run(&clock_only);
    }
}

/// A long fixed stream, to be sure the generator reaches the interesting places at all: if it
/// stopped producing awards, voids, unsold rounds or settled days, the properties above would pass
/// vacuously.
#[test]
fn generated_streams_exercise_the_rules() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(29);
    let ops: Vec<RawOp> = (0..6_000).map(|_| rng.gen()).collect();
    let observer = run(&ops);
    let o = &observer;
    let seen = [
        ("awards", o.awards, 50),
        ("settled days", o.days, 2),
        ("voided awards", o.voids, 2),
        ("unsold rounds", o.unsold, 20),
        ("multi-buy awards", o.multi_buys, 2),
        ("too-late bids", o.too_late, 50),
        ("participants over a lowered limit", o.over_limit, 20),
        ("presale purchases", o.presales, 20),
        ("dispatch updates", o.dispatch_updates, 20),
        ("complaint decisions", o.complaints_resolved, 5),
    ];
    for (what, count, least) in seen {
        assert!(count >= least, "only {count} {what} (want {least})");
    }
    assert!(observer.applies > 6_000);
}
