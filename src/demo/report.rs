//! What the demo tells the person watching it: it follows the public feed, keeps the day's
//! tally — per lot, per clock, per book, the index — prints one line per finished lot, and
//! hands the operator the state it waits on (which lots are done, which clocks are idle). It
//! also records every sale's price for [`PriceBoard`], so tomorrow's reserves and start prices
//! follow today's market.

use super::money::{grouped, Fen};
use super::prices::PriceBoard;
use super::products::{book_product, cell, product, Cell};
use super::roster::GROWERS;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::sync::{Arc, Mutex};
use tokio::sync::{broadcast, watch, Notify};

/// One lot's auction, as the feed shows it.
struct LotTally {
    clock: u64,
    cell: Cell,
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
        self.clocks.clear();
        self.books.clear();
    }

    pub fn is_finished(&self, lot_id: u64) -> bool {
        self.finished.contains(&lot_id)
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
                prices.record((product.code, "A1"), price, quantity);
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
            cell: lot_cell,
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
    let unit = super::products::units(p.map_or("unit", |p| p.unit));
    let grower = GROWERS.iter().find(|g| g.id == lot.grower).map_or(lot.grower.as_str(), |g| g.name);
    let what = format!(
        "  clock {} · lot {:>4} · {name} {} · {} × {} {unit} · {grower}",
        lot.clock, lot_id, lot.cell.1, lot.containers, lot.units_per_container
    );
    let rounds = if lot.rounds == 1 { "1 round".to_string() } else { format!("{} rounds", lot.rounds) };
    let range = match (lot.low, lot.high) {
        (Some(low), Some(high)) if low == high => format!("at {low}"),
        (Some(low), Some(high)) => format!("at {low}–{high}"),
        _ => String::new(),
    };
    match (lot.sold, unsold) {
        (0, _) => format!("{what} — unsold, no bid reached the reserve"),
        (sold, 0) => format!("{what} — sold {sold} in {rounds} {range} · {} CNY", grouped(lot.amount)),
        (sold, unsold) => {
            format!("{what} — sold {sold} in {rounds} {range}, {unsold} unsold · {} CNY", grouped(lot.amount))
        }
    }
}
