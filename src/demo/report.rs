//! What the demo tells the person watching it: it follows the public feed, keeps the day's
//! tally — per lot, per clock, per book, the index — prints one line per finished lot, and
//! hands the operator the state it waits on (which lots are done, which clocks are idle or have
//! started today). It also records every sale's price for [`PriceBoard`], so tomorrow's reserves
//! follow today's market. And it words the morning's plan (the draw, each clock's catalogue),
//! its presales, and what a firm's seats bought (from the firm's statement).

use super::money::{grouped, Fen};
use super::operator::DayPlan;
use super::presales::Outcome;
use super::prices::PriceBoard;
use super::products::{best_grade, book_product, cell, product, units, Cell};
use super::roster::{FirmSpec, GROWERS, SEATS};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::sync::{Arc, Mutex};
use tokio::sync::{broadcast, watch, Notify};

/// One lot's auction, as the feed shows it.
struct LotTally {
    clock: u64,
    /// Its place in the clock's catalogue.
    position: Option<u64>,
    cell: Cell,
    /// Master data: cultivar and stem length.
    variety: String,
    stem_length_cm: Option<u64>,
    /// Containers sold by presale before it came to the clock.
    presold: u64,
    units_per_container: u64,
    containers: u64,
    grower: String,
    rounds: u64,
    sold: u64,
    amount: Fen,
    low: Option<Fen>,
    high: Option<Fen>,
}

#[derive(Default, Clone, Copy)]
pub struct ClockTally {
    pub lots: u32,
    pub sold_out: u32,
    pub partly: u32,
    pub unsold: u32,
    pub amount: Fen,
}

#[derive(Default, Clone, Copy)]
pub struct BookTally {
    pub trades: u64,
    pub units: u64,
    pub amount: Fen,
    pub low: Option<Fen>,
    pub high: Option<Fen>,
}

#[derive(Default)]
pub struct Tally {
    /// Feed events seen: the market is moving while this grows.
    pub events: u64,
    lots: BTreeMap<u64, LotTally>,
    finished: BTreeSet<u64>,
    clock_states: BTreeMap<u64, String>,
    /// Clocks that have put a lot on the clock today.
    started: BTreeSet<u64>,
    pub clocks: BTreeMap<u64, ClockTally>,
    pub books: BTreeMap<String, BookTally>,
    /// Index closes published on the feed, by day, then code.
    pub index_closes: BTreeMap<String, BTreeMap<String, String>>,
}

impl Tally {
    /// A new day: forget yesterday's lots, clocks and books (index closes stay).
    pub fn begin_day(&mut self) {
        self.lots.clear();
        self.finished.clear();
        self.started.clear();
        self.clocks.clear();
        self.books.clear();
    }

    pub fn is_finished(&self, lot_id: u64) -> bool {
        self.finished.contains(&lot_id)
    }

    /// Whether the clock has started today (by itself or by hand), as far as the feed has said.
    pub fn has_started(&self, clock: u64) -> bool {
        self.started.contains(&clock)
    }

    /// Whether the clock is idle, as far as the feed has said (a clock never heard of is).
    pub fn is_idle(&self, clock: u64) -> bool {
        self.clock_states.get(&clock).is_none_or(|s| s == "idle")
    }
}

/// The reporter's shared state: the tally and a bell rung on every change that matters to the
/// operator.
#[derive(Clone, Default)]
pub struct Progress {
    pub tally: Arc<Mutex<Tally>>,
    pub changed: Arc<Notify>,
}

impl Progress {
    pub fn tally(&self) -> std::sync::MutexGuard<'_, Tally> {
        self.tally.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Follows the feed until `stop`.
pub async fn run(
    progress: Progress,
    prices: Arc<Mutex<PriceBoard>>,
    mut feed: broadcast::Receiver<Arc<Value>>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let event = tokio::select! {
            _ = stop.changed() => return,
            event = feed.recv() => event,
        };
        match event {
            Ok(event) => {
                let line = {
                    let mut tally = progress.tally();
                    tally.events += 1;
                    let mut prices = prices.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                    apply(&mut tally, &mut prices, &event)
                };
                if let Some(line) = line {
                    say(&line);
                }
                progress.changed.notify_waiters();
            }
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                tracing::warn!(missed, "the progress report fell behind the feed");
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// Prints a line to stdout at once (stdout may be a pipe, which would otherwise buffer it).
pub fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Folds one feed event into the tally; returns a line to print, if the event ends a lot.
fn apply(tally: &mut Tally, prices: &mut PriceBoard, event: &Value) -> Option<String> {
    let clock = event["clock"].as_u64().unwrap_or(0);
    match event["type"].as_str()? {
        "snapshot" => {
            for c in event["clocks"].as_array().into_iter().flatten() {
                if let (Some(clock), Some(state)) = (c["clock"].as_u64(), c["state"].as_str()) {
                    tally.clock_states.insert(clock, state.to_string());
                    if c["lot"].is_object() {
                        on_lot(tally, clock, &c["lot"]);
                    }
                }
            }
            None
        }
        "lot_on_clock" => {
            tally.started.insert(clock);
            on_lot(tally, clock, &event["lot"]);
            None
        }
        "clock_state" => {
            tally.clock_states.insert(clock, event["state"].as_str().unwrap_or("").to_string());
            None
        }
        "clock_started" => {
            let lot = tally.lots.get_mut(&event["lot_id"].as_u64()?)?;
            lot.rounds = lot.rounds.max(event["round"].as_u64().unwrap_or(0));
            None
        }
        "clock_award" => {
            let lot_id = event["lot_id"].as_u64()?;
            let price = Fen::of(&event["price"])?;
            let containers = event["containers"].as_u64()?;
            let lot = tally.lots.get_mut(&lot_id)?;
            let units = containers * lot.units_per_container;
            lot.sold += containers;
            lot.amount += price.times(units);
            lot.low = Some(lot.low.map_or(price, |l| l.min(price)));
            lot.high = Some(lot.high.map_or(price, |h| h.max(price)));
            prices.record(lot.cell, price, units);
            (event["remaining"].as_u64() == Some(0)).then(|| finish(tally, lot_id, 0))
        }
        "award_voided" => {
            let lot = tally.lots.get_mut(&event["lot_id"].as_u64()?)?;
            lot.sold = lot.sold.saturating_sub(event["containers"].as_u64().unwrap_or(0));
            None
        }
        "lot_unsold" => {
            let lot_id = event["lot_id"].as_u64()?;
            tally.lots.contains_key(&lot_id).then(|| finish(tally, lot_id, event["remaining"].as_u64().unwrap_or(0)))
        }
        "trade" => {
            let symbol = event["symbol"].as_str()?;
            let price = Fen::of(&event["price"])?;
            let quantity = event["quantity"].as_u64()?;
            let book = tally.books.entry(symbol.to_string()).or_default();
            book.trades += 1;
            book.units += quantity;
            book.amount += price.times(quantity);
            book.low = Some(book.low.map_or(price, |l| l.min(price)));
            book.high = Some(book.high.map_or(price, |h| h.max(price)));
            prices.record_trade(symbol, price);
            if let Some(product) = book_product(symbol) {
                prices.record((product.code, best_grade(product)), price, quantity);
            }
            None
        }
        "index" if event["final"] == true => {
            let (day, code, value) = (event["day"].as_str()?, event["code"].as_str()?, event["value"].as_str()?);
            tally.index_closes.entry(day.to_string()).or_default().insert(code.to_string(), value.to_string());
            None
        }
        _ => None,
    }
}

fn on_lot(tally: &mut Tally, clock: u64, lot: &Value) {
    let (Some(lot_id), Some(lot_cell)) =
        (lot["lot_id"].as_u64(), cell(lot["product"].as_str().unwrap_or(""), lot["grade"].as_str().unwrap_or("")))
    else {
        return;
    };
    if tally.lots.contains_key(&lot_id) {
        return;
    }
    tally.clocks.entry(clock).or_default().lots += 1;
    tally.lots.insert(
        lot_id,
        LotTally {
            clock,
            position: lot["position"].as_u64(),
            cell: lot_cell,
            variety: lot["variety"].as_str().unwrap_or("").to_string(),
            stem_length_cm: lot["stem_length_cm"].as_u64(),
            presold: lot["sold"].as_u64().unwrap_or(0),
            units_per_container: lot["units_per_container"].as_u64().unwrap_or(0),
            containers: lot["containers"].as_u64().unwrap_or(0),
            grower: lot["grower"].as_str().unwrap_or("").to_string(),
            rounds: 0,
            sold: 0,
            amount: Fen::ZERO,
            low: None,
            high: None,
        },
    );
}

/// Books a finished lot on its clock and words its line.
fn finish(tally: &mut Tally, lot_id: u64, unsold: u64) -> String {
    tally.finished.insert(lot_id);
    let lot = &tally.lots[&lot_id];
    let clock = tally.clocks.entry(lot.clock).or_default();
    clock.amount += lot.amount;
    match (lot.sold, unsold) {
        (0, _) => clock.unsold += 1,
        (_, 0) => clock.sold_out += 1,
        _ => clock.partly += 1,
    }
    let p = product(lot.cell.0);
    let name = p.map_or(lot.cell.0, |p| p.name);
    let unit = units(p.map_or("unit", |p| p.unit));
    let grower = GROWERS.iter().find(|g| g.id == lot.grower).map_or(lot.grower.as_str(), |g| g.name);
    let place = lot.position.map_or(String::new(), |p| format!(" #{p}"));
    let stem = lot.stem_length_cm.map_or(String::new(), |cm| format!(" {cm} cm"));
    let variety = if lot.variety.is_empty() { String::new() } else { format!(" {}", lot.variety) };
    let presold = if lot.presold > 0 { format!(" ({} presold)", lot.presold) } else { String::new() };
    let what = format!(
        "  clock {}{place} · lot {:>4} · {name}{variety}{stem} {} · {} × {} {unit}{presold} · {grower}",
        lot.clock, lot_id, lot.cell.1, lot.containers, lot.units_per_container
    );
    let rounds = if lot.rounds == 1 { "1 round".to_string() } else { format!("{} rounds", lot.rounds) };
    let range = match (lot.low, lot.high) {
        (Some(low), Some(high)) if low == high => format!("at {low}"),
        (Some(low), Some(high)) => format!("at {low}–{high}"),
        _ => String::new(),
    };
    match (lot.sold, unsold) {
        (0, _) if lot.presold > 0 => format!("{what} — the rest unsold, no bid reached the reserve"),
        (0, _) => format!("{what} — unsold, no bid reached the reserve"),
        (sold, 0) => format!("{what} — sold {sold} in {rounds} {range} · {} CNY", grouped(lot.amount)),
        (sold, unsold) => {
            format!("{what} — sold {sold} in {rounds} {range}, {unsold} unsold · {} CNY", grouped(lot.amount))
        }
    }
}

/// The morning's plan in words: the draw (seed and grower order, so anyone can check it) and
/// each clock's products and catalogue.
pub fn plan_lines(plan: &DayPlan) -> Vec<String> {
    let order: Vec<&str> = plan.growers.iter().map(String::as_str).collect();
    let mut lines = vec![format!("  draw: seed {} · grower order {}", plan.seed, order.join(", "))];
    for (clock, planned) in &plan.clocks {
        let lots: Vec<String> = planned.lots.iter().map(|(_, lot, _)| lot.to_string()).collect();
        let starts = match (planned.lots.iter().map(|l| l.2).min(), planned.lots.iter().map(|l| l.2).max()) {
            (Some(low), Some(high)) if low != high => format!(", start prices {low}–{high}"),
            (Some(low), _) => format!(", start price {low}"),
            _ => String::new(),
        };
        lines.push(format!(
            "  clock {clock} plan: {} — {} lot{}{}{starts}",
            planned.products.join(", "),
            planned.lots.len(),
            if planned.lots.len() == 1 { "" } else { "s" },
            if lots.is_empty() { String::new() } else { format!(" in order {}", lots.join(", ")) },
        ));
    }
    if !plan.unplanned.is_empty() {
        let ids: Vec<String> = plan.unplanned.iter().map(u64::to_string).collect();
        lines.push(format!("  no clock plan takes lots {}: they stay consigned", ids.join(", ")));
    }
    lines
}

/// One presale offer and who bought what of it.
pub fn presale_line(outcome: &Outcome) -> String {
    let lot = &outcome.offer.lot;
    let p = product(lot.cell.0);
    let name = p.map_or(lot.cell.0, |p| p.name);
    let unit = units(p.map_or("unit", |p| p.unit));
    let stem = lot.master.stem_length_cm.map_or(String::new(), |cm| format!(" {cm} cm"));
    let what = format!(
        "  presale · lot {:>4} · {name} {}{stem} {} · {} of {} × {} {unit} at {}",
        lot.lot_id,
        lot.master.variety,
        lot.cell.1,
        outcome.offer.containers,
        lot.containers,
        lot.units_per_container,
        outcome.offer.price
    );
    if outcome.sales.is_empty() {
        return format!("{what} — not taken; the clock sells it");
    }
    let buyers: Vec<String> = outcome.sales.iter().map(|s| format!("{} {}", s.buyer, s.containers)).collect();
    format!("{what} — bought {} · {} CNY", buyers.join(", "), grouped(outcome.amount()))
}

/// The day's presales in one line.
pub fn presales_total(outcomes: &[Outcome]) -> String {
    let sales: usize = outcomes.iter().map(|o| o.sales.len()).sum();
    let containers: u32 = outcomes.iter().map(Outcome::containers_sold).sum();
    let amount = outcomes.iter().fold(Fen::ZERO, |sum, o| sum + o.amount());
    format!(
        "  presales: {} offer{}, {sales} sale{}, {containers} containers — {} CNY",
        outcomes.len(),
        if outcomes.len() == 1 { "" } else { "s" },
        if sales == 1 { "" } else { "s" },
        grouped(amount)
    )
}

/// What a firm's seats bought, from the firm's statement of the day (`get_statement` as the
/// operator): per seat, its purchases by kind and what they cost. Returns the line, and the
/// statement lines that name no seat of the firm (a firm buys only through its seats here).
pub fn seat_purchases(firm: &FirmSpec, statement: &Value) -> (String, Vec<Value>) {
    #[derive(Default)]
    struct Seat {
        purchases: BTreeMap<String, u32>,
        amount: Fen,
        fees: Fen,
    }
    let mut seats: BTreeMap<String, Seat> = BTreeMap::new();
    let mut strays = Vec::new();
    for line in statement["lines"].as_array().into_iter().flatten() {
        let seat = line["seat"]
            .as_str()
            .filter(|s| SEATS.iter().any(|spec| spec.id == *s && spec.firm.is_some_and(|f| f.id == firm.id)));
        let (Some(seat), "buy") = (seat, line["side"].as_str().unwrap_or("")) else {
            strays.push(line.clone());
            continue;
        };
        let tally = seats.entry(seat.to_string()).or_default();
        *tally.purchases.entry(line["kind"].as_str().unwrap_or("?").to_string()).or_default() += 1;
        tally.amount += Fen::of(&line["amount"]).unwrap_or(Fen::ZERO);
        tally.fees += Fen::of(&line["fee"]).unwrap_or(Fen::ZERO);
    }
    let words: Vec<String> = seats
        .iter()
        .map(|(id, seat)| {
            let count: u32 = seat.purchases.values().sum();
            let kinds: Vec<String> = seat.purchases.iter().map(|(kind, n)| format!("{n} {kind}")).collect();
            format!("{id} {count} ({}) {} CNY + fees {}", kinds.join(", "), grouped(seat.amount), seat.fees)
        })
        .collect();
    let net = statement["net"].as_str().unwrap_or("?");
    let line = if words.is_empty() {
        format!("  firm {} ({}): its seats bought nothing today", firm.name, firm.id)
    } else {
        format!(
            "  firm {} ({}) bought through its seats: {} · the firm's net {net} CNY",
            firm.name,
            firm.id,
            words.join(" · ")
        )
    };
    (line, strays)
}
