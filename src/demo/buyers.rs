//! Simulated buyers. Each has a private value per product and grade for the day (its trade and
//! taste, the day's market mood, a little noise per lot) and a number of containers it wants.
//! It watches the feed: on `clock_started` it works out, from the round's start price, step,
//! tick and start time, when the falling price will reach its value, and presses `bid` then —
//! the price is computed locally, as protocol section 6 intends; the clock itself is never
//! polled. Whoever presses first wins; the others hear `too_late`. Hotel chains do not sit at
//! the clocks: they look through the morning's lots and leave standing bids. Any buyer may take
//! a presale offer (presales.rs) priced under its value.
//!
//! A firm's seat (protocol section 4) is a buyer like the others, buying on its firm's credit:
//! its trader budgets with a share of the firm's credit line, and learns its own daily limit when
//! the market refuses a purchase over it (`credit_limit`, naming the limit); it then reads its
//! account, which shows what its daily limit leaves it.

use super::client::{unexpected, Rejected, Reports, Session};
use super::growers::ConsignedLot;
use super::money::Fen;
use super::presales::Sale;
use super::products::{self, cell, product, Cell};
use super::roster::BuyerSpec;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::{broadcast, mpsc, watch};
use tokio::time::Instant;

/// The buyer fee per container at the clock (protocol section 8's default), for the budget.
const CLOCK_FEE_PER_CONTAINER: Fen = Fen(50);
/// The chance a buyer is paying attention to a given round of a lot it wants.
const ATTENTION: f64 = 0.9;
/// A standing bid is this share of the buyer's value: it does not watch, so it asks a margin.
const STANDING_SHARE: (f64, f64) = (0.9, 0.98);

/// What a buyer knows and wants today.
#[derive(Default)]
struct Day {
    /// CNY per unit the buyer would pay, per cell.
    values: BTreeMap<Cell, f64>,
    /// Containers still wanted, per cell (standing bids count as bought until they fail).
    wanted: BTreeMap<Cell, u32>,
    /// Credit available, as last read from `get_account` and lowered by awards since.
    available: Fen,
    /// Standing bids out: lot → (cell, containers).
    standing: BTreeMap<u64, (Cell, u32)>,
}

pub struct Buyer {
    pub spec: &'static BuyerSpec,
    pub session: Arc<Session>,
    seed: u64,
    day: Mutex<Day>,
    /// The first purchase the market refused for credit today, in its words.
    refusal: Mutex<Option<String>>,
}

/// A lot on a clock, from `lot_on_clock` (or a snapshot).
#[derive(Clone, Copy)]
struct OnClock {
    lot_id: u64,
    cell: Cell,
    units_per_container: u32,
    min_purchase: u32,
}

/// A press the buyer has decided on and will make at `at`.
#[derive(Clone, Copy)]
struct Press {
    at: Instant,
    clock: u64,
    lot_id: u64,
    round: u64,
    containers: u32,
    cell: Cell,
}

impl Buyer {
    pub fn new(spec: &'static BuyerSpec, session: Arc<Session>, seed: u64) -> Buyer {
        Buyer { spec, session, seed, day: Mutex::new(Day::default()), refusal: Mutex::new(None) }
    }

    fn day(&self) -> std::sync::MutexGuard<'_, Day> {
        self.day.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Draws the day's values and wants. `scale` shrinks demand with a smaller morning.
    pub async fn new_day(&self, fair: &BTreeMap<Cell, f64>, day_number: u64, scale: f64) {
        let kind = self.spec.kind;
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed ^ day_number.wrapping_mul(0x2545_f491_4f6c_dd1d));
        let mut values = BTreeMap::new();
        let mut wanted = BTreeMap::new();
        for code in kind.products() {
            let Some(product) = product(code) else { continue };
            for grade in products::scale(product).iter().take(kind.grades_taken()) {
                let cell: Cell = (product.code, grade);
                // Not every buyer wants everything every day.
                if !rng.gen_bool(0.8) {
                    continue;
                }
                let (low, high) = kind.value_range();
                let Some(fair) = fair.get(&cell) else { continue };
                values.insert(cell, fair * rng.gen_range(low..high));
                let (least, most) = kind.demand_range();
                let containers = (rng.gen_range(least..=most) as f64 * scale).ceil().max(1.0) as u32;
                wanted.insert(cell, containers);
            }
        }
        let available = match self.spec.firm {
            // A seat starts the day with its share of the firm's line (see the module's note).
            Some(_) => Some(Fen(self.spec.credit_cny * 100)),
            None => self.read_available().await,
        };
        *self.refusal.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = None;
        let mut day = self.day();
        *day = Day { values, wanted, available: available.unwrap_or(Fen::ZERO), standing: BTreeMap::new() };
    }

    /// The first purchase refused for credit today, as the market worded it.
    pub fn refusal(&self) -> Option<String> {
        self.refusal.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    /// Notes a purchase refused for credit: the buyer's own tally was behind (book orders hold
    /// credit too), or a seat met its daily limit. It buys nothing more until it has re-read
    /// its account.
    pub fn credit_refused(&self, rejected: &Rejected) {
        tracing::debug!(who = self.spec.id, error = %rejected, "purchase refused for credit; re-reading the account");
        self.refusal
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get_or_insert_with(|| rejected.to_string());
        self.day().available = Fen::ZERO;
    }

    /// How many containers of a presale offer of `offered` at `price` this buyer takes, if any:
    /// a lot it wants, at a price under its value of the lot, that it can pay for.
    pub fn presale_wish(&self, lot: &ConsignedLot, price: Fen, offered: u32) -> Option<u32> {
        let value = Fen::from_cny(self.lot_value(lot.lot_id, lot.cell)?);
        let wanted = self.day().wanted.get(&lot.cell).copied().unwrap_or(0);
        let smallest = lot.min_purchase.min(offered);
        if price > value || wanted < smallest {
            return None;
        }
        let (_, most) = self.spec.kind.press_range();
        let mut containers = most.min(wanted).min(offered).max(smallest);
        let cost =
            |c: u32| price.times(lot.units_per_container as u64 * c as u64) + Fen(CLOCK_FEE_PER_CONTAINER.0 * c as i64);
        let available = self.available();
        while containers > smallest && cost(containers) > available {
            containers -= 1;
        }
        (cost(containers) <= available).then_some(containers)
    }

    /// Books a presale purchase: fewer containers wanted, less credit left.
    pub fn bought_presale(&self, cell: Cell, sale: &Sale) {
        let mut day = self.day();
        let wanted = day.wanted.entry(cell).or_default();
        *wanted = wanted.saturating_sub(sale.containers);
        day.available = day.available - sale.amount - sale.fee;
    }

    async fn read_available(&self) -> Option<Fen> {
        let reply = self.session.expect(json!({"type": "get_account"}), "account").await?;
        Fen::of(&reply["available"])
    }

    /// Credit the buyer believes it has left.
    pub fn available(&self) -> Fen {
        self.day().available
    }

    /// Re-reads the credit left from the market.
    pub async fn refresh_available(&self) {
        if let Some(available) = self.read_available().await {
            self.day().available = available;
        }
    }

    /// A lot's value to this buyer: the cell's value with a little noise of its own (the look
    /// of the lot), the same every round.
    fn lot_value(&self, lot_id: u64, cell: Cell) -> Option<f64> {
        let value = self.day().values.get(&cell).copied()?;
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed ^ lot_id.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        Some(value * rng.gen_range(0.96..1.04))
    }

    /// Looks through the morning's queued lots (`get_lots`) and leaves standing bids on those it
    /// wants, at a margin under its value. Returns how many it placed.
    pub async fn leave_standing_bids(&self) -> usize {
        if !self.spec.kind.leaves_standing_bids() {
            return 0;
        }
        let Some(reply) = self.session.expect(json!({"type": "get_lots", "status": "queued"}), "lots").await else {
            return 0;
        };
        let mut placed = 0;
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed ^ 0x5354_414e_4449_4e47);
        for lot in reply["lots"].as_array().into_iter().flatten() {
            let (Some(lot_id), Some(lot_cell)) = (
                lot["lot_id"].as_u64(),
                cell(lot["product"].as_str().unwrap_or(""), lot["grade"].as_str().unwrap_or("")),
            ) else {
                continue;
            };
            let units = lot["units_per_container"].as_u64().unwrap_or(0);
            let containers_on_lot = lot["containers"].as_u64().unwrap_or(0) as u32;
            let min_purchase = lot["min_purchase"].as_u64().unwrap_or(1) as u32;
            let Some(value) = self.lot_value(lot_id, lot_cell) else { continue };
            let wanted = self.day().wanted.get(&lot_cell).copied().unwrap_or(0);
            let (least, most) = self.spec.kind.press_range();
            let containers = rng.gen_range(least..=most).min(wanted).min(containers_on_lot).max(min_purchase);
            if wanted < min_purchase || containers > containers_on_lot || units == 0 {
                continue;
            }
            let max_price = Fen::from_cny(value * rng.gen_range(STANDING_SHARE.0..STANDING_SHARE.1));
            let cost = max_price.times(units * containers as u64) + Fen(CLOCK_FEE_PER_CONTAINER.0 * containers as i64);
            if max_price.0 <= 0 || cost > self.available() {
                continue;
            }
            let msg = json!({"type": "standing_bid", "lot_id": lot_id, "max_price": max_price.json(), "containers": containers});
            if self.session.expect(msg, "standing_bid_accepted").await.is_some() {
                let mut day = self.day();
                *day.wanted.entry(lot_cell).or_default() -= containers;
                day.standing.insert(lot_id, (lot_cell, containers));
                day.available = day.available - cost;
                placed += 1;
            }
        }
        placed
    }

    /// Decides whether and when to press in a round that just started.
    fn plan_press(&self, lot: OnClock, started: &Value, rng: &mut ChaCha8Rng) -> Option<Press> {
        if self.spec.kind.leaves_standing_bids() || !rng.gen_bool(ATTENTION) {
            return None;
        }
        let clock = started["clock"].as_u64()?;
        let round = started["round"].as_u64()?;
        let start_price = Fen::of(&started["start_price"])?;
        let step = Fen::of(&started["step"])?;
        let tick_ms = started["tick_ms"].as_u64()?;
        let start_ts = started["start_ts"].as_u64()?;
        let remaining = started["remaining"].as_u64()? as u32;
        if step.0 <= 0 || tick_ms == 0 || remaining == 0 {
            return None;
        }
        let wanted = self.day().wanted.get(&lot.cell).copied().unwrap_or(0);
        if wanted == 0 {
            return None;
        }
        let value = Fen::from_cny(self.lot_value(lot.lot_id, lot.cell)?);
        // The first tick at which price(t) = start − step × ticks is at or under the value.
        let ticks = if value >= start_price { 0 } else { (start_price.0 - value.0 + step.0 - 1) / step.0 };
        let price = Fen(start_price.0 - ticks * step.0);
        if price.0 <= 0 {
            return None;
        }
        let (least, most) = self.spec.kind.press_range();
        let mut containers = rng.gen_range(least..=most).min(wanted).min(remaining);
        let smallest = lot.min_purchase.min(remaining);
        containers = containers.max(smallest);
        let cost =
            |c: u32| price.times(lot.units_per_container as u64 * c as u64) + Fen(CLOCK_FEE_PER_CONTAINER.0 * c as i64);
        let available = self.available();
        while containers > smallest && cost(containers) > available {
            containers -= 1;
        }
        if cost(containers) > available {
            return None;
        }
        // Press a little into the tick: a machine-assisted buyer, but not an instant one.
        let reaction_us = (tick_ms * 1000) as f64 * rng.gen_range(0.1..0.5);
        let at_us = start_ts + ticks as u64 * tick_ms * 1000 + reaction_us as u64;
        let now_us = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64);
        let at = Instant::now() + Duration::from_micros(at_us.saturating_sub(now_us));
        Some(Press { at, clock, lot_id: lot.lot_id, round, containers, cell: lot.cell })
    }

    /// Watches the feed and presses, until `stop`. Runs across days.
    pub async fn run(
        self: Arc<Self>,
        mut feed: broadcast::Receiver<Arc<Value>>,
        mut reports: Reports,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed ^ 0x0050_5245_5353);
        let mut on_clock: BTreeMap<u64, OnClock> = BTreeMap::new();
        let mut presses: BTreeMap<u64, Press> = BTreeMap::new();
        let (outcomes_tx, mut outcomes) = mpsc::unbounded_channel::<(Press, Result<Value, Rejected>)>();
        loop {
            let next = presses.values().map(|p| p.at).min();
            tokio::select! {
                _ = stop.changed() => return,
                event = feed.recv() => match event {
                    Ok(event) => self.on_event(&event, &mut on_clock, &mut presses, &mut rng),
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::warn!(who = self.spec.id, missed, "fell behind the feed; forgetting the clocks");
                        on_clock.clear();
                        presses.clear();
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                Some(report) = reports.recv() => self.on_report(&report),
                Some((press, outcome)) = outcomes.recv() => {
                    if self.on_outcome(press, outcome) {
                        let me = self.clone();
                        tokio::spawn(async move { me.refresh_available().await });
                    }
                }
                _ = tokio::time::sleep_until(next.unwrap_or_else(Instant::now)), if next.is_some() => {
                    let now = Instant::now();
                    let due: Vec<u64> = presses.iter().filter(|(_, p)| p.at <= now).map(|(c, _)| *c).collect();
                    for clock in due {
                        let Some(press) = presses.remove(&clock) else { continue };
                        let session = self.session.clone();
                        let outcomes_tx = outcomes_tx.clone();
                        tokio::spawn(async move {
                            let msg = json!({"type": "bid", "clock": press.clock, "lot_id": press.lot_id,
                                             "round": press.round, "containers": press.containers});
                            let outcome = session.request(msg).await;
                            let _ = outcomes_tx.send((press, outcome));
                        });
                    }
                }
            }
        }
    }

    fn on_event(
        &self,
        event: &Value,
        on_clock: &mut BTreeMap<u64, OnClock>,
        presses: &mut BTreeMap<u64, Press>,
        rng: &mut ChaCha8Rng,
    ) {
        let clock = event["clock"].as_u64().unwrap_or(0);
        match event["type"].as_str().unwrap_or("") {
            "snapshot" => {
                on_clock.clear();
                presses.clear();
                for c in event["clocks"].as_array().into_iter().flatten() {
                    if let (Some(clock), Some(lot)) = (c["clock"].as_u64(), read_lot(&c["lot"])) {
                        on_clock.insert(clock, lot);
                    }
                }
            }
            "lot_on_clock" => {
                presses.remove(&clock);
                match read_lot(&event["lot"]) {
                    Some(lot) => on_clock.insert(clock, lot),
                    None => on_clock.remove(&clock),
                };
            }
            "clock_started" => {
                presses.remove(&clock);
                let Some(lot) = on_clock.get(&clock).copied() else { return };
                if event["lot_id"].as_u64() != Some(lot.lot_id) {
                    return;
                }
                if let Some(press) = self.plan_press(lot, event, rng) {
                    presses.insert(clock, press);
                }
            }
            // The round is over, whoever won it: a press still pending would only be too late.
            "clock_award" | "lot_unsold"
                if presses.get(&clock).is_some_and(|p| event["round"].as_u64() == Some(p.round)) =>
            {
                presses.remove(&clock);
            }
            "clock_state" if event["state"] == "idle" => {
                presses.remove(&clock);
                on_clock.remove(&clock);
            }
            _ => {}
        }
    }

    /// Books a bid's outcome; true when the buyer should re-read its account.
    fn on_outcome(&self, press: Press, outcome: Result<Value, Rejected>) -> bool {
        match outcome {
            Ok(award) if award["type"] == "award" => {
                let containers = award["containers"].as_u64().unwrap_or(0) as u32;
                let spent =
                    Fen::of(&award["amount"]).unwrap_or(Fen::ZERO) + Fen::of(&award["fee"]).unwrap_or(Fen::ZERO);
                let mut day = self.day();
                let wanted = day.wanted.entry(press.cell).or_default();
                *wanted = wanted.saturating_sub(containers);
                day.available = day.available - spent;
                false
            }
            Ok(other) => {
                tracing::warn!(who = self.spec.id, reply = %other, "unexpected reply to a bid");
                false
            }
            // Somebody pressed first, or the price reached the reserve: that is the auction.
            Err(rejected) if rejected.is("too_late") => false,
            Err(rejected) if rejected.is("credit_limit") => {
                self.credit_refused(&rejected);
                true
            }
            Err(rejected) => {
                let msg = json!({"type": "bid", "clock": press.clock, "lot_id": press.lot_id,
                                 "round": press.round, "containers": press.containers});
                unexpected(self.spec.id, &msg, &rejected);
                false
            }
        }
    }

    fn on_report(&self, report: &Value) {
        match report["type"].as_str().unwrap_or("") {
            // A standing bid won: its containers were counted when it was placed.
            "award" => {
                if let Some(lot_id) = report["lot_id"].as_u64() {
                    let mut day = self.day();
                    day.standing.remove(&lot_id);
                }
            }
            "error" if report["lot_id"].is_u64() => {
                // A standing bid that no longer fits (the lot sold down, or credit ran short):
                // the buyer still wants those containers.
                let lot_id = report["lot_id"].as_u64().unwrap_or(0);
                tracing::debug!(who = self.spec.id, report = %report, "standing bid dropped");
                let mut day = self.day();
                if let Some((cell, containers)) = day.standing.remove(&lot_id) {
                    *day.wanted.entry(cell).or_default() += containers;
                }
            }
            "error" => tracing::warn!(who = self.spec.id, report = %report, "unexpected error report"),
            _ => {}
        }
    }
}

fn read_lot(lot: &Value) -> Option<OnClock> {
    let product = product(lot["product"].as_str()?)?;
    Some(OnClock {
        lot_id: lot["lot_id"].as_u64()?,
        cell: cell(product.code, lot["grade"].as_str()?)?,
        units_per_container: lot["units_per_container"].as_u64()? as u32,
        min_purchase: lot["min_purchase"].as_u64().unwrap_or(1) as u32,
    })
}
