//! The auctioneer's part of the morning, over the operator's session, as a hall plans its day
//! (protocol section 11): clock settings scaled to the demo's speed, each clock planned for a
//! group of products, the day's grower order drawn, the lots planned onto the clocks in catalogue
//! order (start prices by the market's own rule), and a start time fixed at which the clocks
//! start by themselves; then books opened and closed, and the day ended. Also tidies up a day a
//! previous run left half done, so every morning the demo runs is a whole one.

use super::client::{unexpected, Session};
use super::money::Fen;
use super::products::{ClockGroup, BOOKS, PRODUCTS};
use huashi_engine::types::Day;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// How far above the higher of a lot's reserve and its cell's last VWAP a clock starts, percent
/// (`plan_lots {start_markup_pct}`): high enough that every buyer's value lies below the start.
const START_MARKUP_PCT: &str = "70";

/// How fast the price falls at speed 1, fen per second, by clock group: about half a yuan a
/// second for roses and other cheap stems, one for lilies and foliage, five for pots — a round
/// from start to the buyers' values takes a second or a few, as on a real clock.
fn fall_per_second(group: ClockGroup) -> f64 {
    match group {
        ClockGroup::Roses | ClockGroup::CutFlowers => 50.0,
        ClockGroup::LiliesAndFoliage => 100.0,
        ClockGroup::Pots => 500.0,
    }
}

/// One clock's settings at a given speed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClockPace {
    pub step: Fen,
    pub tick_ms: u64,
    pub pre_roll_ms: u64,
    pub pause_ms: u64,
}

/// How much faster than at speed 1 the price falls. Up to 4× it follows the speed; above, only
/// its square root: a press needs a few milliseconds (a journal sync, a loaded machine: a few
/// dozen) to reach the engine, and a round must outlast that or nobody could buy.
fn fall_speedup(speed: f64) -> f64 {
    if speed <= 4.0 {
        speed
    } else {
        4.0 * (speed / 4.0).sqrt()
    }
}

/// At speed 1: a 20 ms tick, the protocol's default pre-roll (1 s) and pause (0.5 s). Faster
/// speeds shorten the tick (down to 2 ms) and then take bigger steps.
pub fn clock_pace(group: ClockGroup, speed: f64) -> ClockPace {
    let tick_ms = (20.0 / fall_speedup(speed)).round().clamp(2.0, 60_000.0) as u64;
    let step = (fall_per_second(group) * fall_speedup(speed) * tick_ms as f64 / 1000.0).round().max(1.0) as i64;
    ClockPace {
        step: Fen(step),
        tick_ms,
        pre_roll_ms: (1000.0 / speed).round().clamp(5.0, 600_000.0) as u64,
        pause_ms: (500.0 / speed).round().clamp(5.0, 600_000.0) as u64,
    }
}

/// The groups in clock order: which kind of product each of the market's clocks sells.
const GROUPS: [ClockGroup; 4] =
    [ClockGroup::Roses, ClockGroup::CutFlowers, ClockGroup::LiliesAndFoliage, ClockGroup::Pots];

/// One clock's part of the day's plan.
#[derive(Clone, Debug, Default)]
pub struct PlannedClock {
    pub products: Vec<&'static str>,
    /// Its lots in catalogue order: (position, lot id, start price).
    pub lots: Vec<(u64, u64, Fen)>,
}

/// The day's plan, as the market answered `draw_order` and `plan_lots`.
#[derive(Clone, Debug, Default)]
pub struct DayPlan {
    /// The draw's seed, 16 hexadecimal digits, and the grower order it gave.
    pub seed: String,
    pub growers: Vec<String>,
    pub clocks: BTreeMap<u16, PlannedClock>,
    /// Lots no clock plan took.
    pub unplanned: Vec<u64>,
}

impl DayPlan {
    /// Every planned lot's id.
    pub fn lot_ids(&self) -> impl Iterator<Item = u64> + '_ {
        self.clocks.values().flat_map(|c| c.lots.iter().map(|(_, lot, _)| *lot))
    }

    /// The clocks with lots to auction.
    pub fn busy_clocks(&self) -> impl Iterator<Item = u16> + '_ {
        self.clocks.iter().filter(|(_, c)| !c.lots.is_empty()).map(|(clock, _)| *clock)
    }
}

pub struct Operator {
    pub session: Arc<Session>,
    /// Clocks the market has (from the feed's snapshot).
    pub clocks: u16,
}

impl Operator {
    /// The clock a group sells on, in a market of `self.clocks` clocks.
    fn clock_of(&self, group: ClockGroup) -> u16 {
        (group.home_clock() - 1) % self.clocks.max(1) + 1
    }

    /// The group a clock is set up for (the first that maps to it).
    fn group_of(&self, clock: u16) -> ClockGroup {
        GROUPS.into_iter().find(|g| self.clock_of(*g) == clock).unwrap_or(ClockGroup::Roses)
    }

    pub async fn configure_clocks(&self, speed: f64) {
        for clock in 1..=self.clocks.min(GROUPS.len() as u16) {
            let pace = clock_pace(self.group_of(clock), speed);
            let msg = json!({"type": "configure_clock", "clock": clock, "step": pace.step.json(),
                             "tick_ms": pace.tick_ms, "pre_roll_ms": pace.pre_roll_ms, "pause_ms": pace.pause_ms,
                             "restart_ticks": 10, "multi_buy_ms": 0});
            self.session.expect(msg, "clock_configured").await;
        }
    }

    /// The products each clock auctions: its groups' products.
    fn clock_products(&self) -> BTreeMap<u16, Vec<&'static str>> {
        let mut plans: BTreeMap<u16, Vec<&'static str>> = BTreeMap::new();
        for product in &PRODUCTS {
            plans.entry(self.clock_of(product.group)).or_default().push(product.code);
        }
        plans
    }

    /// Sets each clock's plan: its products and, with `start_time` (`HH:MM:SS`, market time), when
    /// it starts by itself; without one, it waits for a start time (a plan kept from yesterday
    /// would otherwise start a clock as soon as lots are planned on it). Returns the plans the
    /// market accepted.
    pub async fn plan_clocks(&self, start_time: Option<&str>) -> BTreeMap<u16, Vec<&'static str>> {
        let mut accepted = BTreeMap::new();
        for (clock, products) in self.clock_products() {
            let mut msg = json!({"type": "set_clock_plan", "clock": clock, "products": products});
            if let Some(start_time) = start_time {
                msg["start_time"] = json!(start_time);
            }
            let Some(reply) = self.session.expect(msg.clone(), "clock_plan").await else { continue };
            let agrees = reply["clock"] == clock
                && reply["products"] == json!(products)
                && reply["start_time"].as_str().and_then(seconds_of_day) == start_time.and_then(seconds_of_day);
            if !agrees {
                tracing::warn!(request = %msg, reply = %reply, "clock_plan does not match the plan asked for");
            }
            accepted.insert(clock, products);
        }
        accepted
    }

    /// Draws the day's grower order, plans every consigned lot onto the clocks and reads the
    /// plan back; `None` if the market refused.
    pub async fn plan_day(&self) -> Option<DayPlan> {
        let products = self.plan_clocks(None).await;
        let drawn = self.session.expect(json!({"type": "draw_order"}), "order_drawn").await?;
        let planned = json!({"type": "plan_lots", "start_markup_pct": START_MARKUP_PCT});
        let planned = self.session.expect(planned, "lots_planned").await?;
        let mut plan = DayPlan {
            seed: drawn["seed"].as_str().unwrap_or("?").to_string(),
            growers: drawn["growers"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|g| g.as_str().map(String::from))
                .collect(),
            clocks: products
                .into_iter()
                .map(|(c, products)| (c, PlannedClock { products, lots: Vec::new() }))
                .collect(),
            unplanned: planned["unplanned"].as_array().into_iter().flatten().filter_map(Value::as_u64).collect(),
        };
        for a in planned["assigned"].as_array().into_iter().flatten() {
            let (Some(lot), Some(clock), Some(position), Some(start)) =
                (a["lot_id"].as_u64(), a["clock"].as_u64(), a["position"].as_u64(), Fen::of(&a["start_price"]))
            else {
                tracing::warn!(assigned = %a, "unexpected entry in lots_planned.assigned");
                continue;
            };
            plan.clocks.entry(clock as u16).or_default().lots.push((position, lot, start));
        }
        for clock in plan.clocks.values_mut() {
            clock.lots.sort_unstable();
        }
        Some(plan)
    }

    /// The engine's time (`pong.ts`), microseconds since the epoch.
    pub async fn engine_time(&self) -> Option<u64> {
        self.session.expect(json!({"type": "ping"}), "pong").await?["ts"].as_u64()
    }

    /// Starts a clock by hand: only when its planned start cannot come in time.
    pub async fn start_clock(&self, clock: u16) -> bool {
        self.session.expect(json!({"type": "start_clock", "clock": clock}), "clock_state").await.is_some()
    }

    pub async fn halt_clock(&self, clock: u16) {
        match self.session.request(json!({"type": "halt_clock", "clock": clock})).await {
            Ok(_) => {}
            // Already idle: nothing to halt.
            Err(rejected) if rejected.is("invalid_state") => {}
            Err(rejected) => unexpected(&self.session.who, &json!({"type": "halt_clock", "clock": clock}), &rejected),
        }
    }

    /// Moves a book to `state`; a book already there is fine.
    pub async fn set_book(&self, symbol: &str, state: &str) {
        let msg = json!({"type": "set_book_state", "symbol": symbol, "state": state});
        match self.session.request(msg.clone()).await {
            Ok(reply) if reply["type"] == "book_state" && reply["state"] == state => {}
            Ok(reply) => tracing::warn!(request = %msg, reply = %reply, "unexpected reply to set_book_state"),
            Err(rejected) if rejected.is("invalid_state") && rejected.message.contains("already") => {}
            Err(rejected) => unexpected(&self.session.who, &msg, &rejected),
        }
    }

    pub async fn set_books(&self, state: &str) {
        for symbol in BOOKS {
            self.set_book(symbol, state).await;
        }
    }

    /// Every lot of the day, as the operator sees them.
    pub async fn lots(&self) -> Vec<Value> {
        let reply = self.session.expect(json!({"type": "get_lots"}), "lots").await;
        reply.and_then(|r| r["lots"].as_array().cloned()).unwrap_or_default()
    }

    /// `end_of_day`, retried while a clock is still finishing its last pause; a clock that
    /// does not come to rest within a few seconds is halted.
    pub async fn end_of_day(&self) -> Option<Value> {
        let msg = json!({"type": "end_of_day"});
        for attempt in 1..=100 {
            match self.session.request(msg.clone()).await {
                Ok(reply) if reply["type"] == "day_settled" => return Some(reply),
                Ok(reply) => {
                    tracing::warn!(reply = %reply, "unexpected reply to end_of_day");
                    return None;
                }
                Err(rejected) if rejected.is("invalid_state") && rejected.message.contains("clock") => {
                    if attempt == 30 {
                        tracing::warn!("a clock is still busy after its lots are done: halting the clocks");
                        for clock in 1..=self.clocks {
                            self.halt_clock(clock).await;
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(rejected) => {
                    unexpected(&self.session.who, &msg, &rejected);
                    return None;
                }
            }
        }
        tracing::warn!("end_of_day: the clocks did not come to rest");
        None
    }

    /// Settles a day a previous run left unfinished (lots still queued, books open): withdraws
    /// what was not auctioned, closes the books and ends the day. Returns the `day_settled`
    /// reply, or `None` when there was nothing to tidy.
    pub async fn tidy_up(&self, snapshot: &Value) -> Option<Value> {
        let lots = self.lots().await;
        let books_open: Vec<&str> = snapshot["books"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|b| b["state"] != "closed")
            .filter_map(|b| b["symbol"].as_str())
            .collect();
        if lots.is_empty() && books_open.is_empty() {
            return None;
        }
        for c in snapshot["clocks"].as_array().into_iter().flatten() {
            if c["state"] != "idle" {
                if let Some(clock) = c["clock"].as_u64() {
                    self.halt_clock(clock as u16).await;
                }
            }
        }
        for lot in &lots {
            let (Some(lot_id), Some(status)) = (lot["lot_id"].as_u64(), lot["status"].as_str()) else { continue };
            if matches!(status, "consigned" | "queued") {
                self.session.expect(json!({"type": "withdraw_lot", "lot_id": lot_id}), "lot_withdrawn").await;
            }
        }
        for symbol in books_open {
            self.set_book(symbol, "closed").await;
        }
        self.end_of_day().await
    }
}

/// The market's local time is Shanghai's, UTC+8 (protocol section 11).
const MARKET_OFFSET_S: i64 = 8 * 3600;
const DAY_S: i64 = 86_400;

/// The market date and the seconds since its midnight of an engine time (µs since the epoch).
pub fn market_time(ts_us: u64) -> (Day, u32) {
    let local = (ts_us / 1_000_000) as i64 + MARKET_OFFSET_S;
    (Day(local.div_euclid(DAY_S) as i32), local.rem_euclid(DAY_S) as u32)
}

/// The engine time (µs since the epoch) of `seconds` after midnight of `day`, market time: when
/// a clock planned to start at that time of that trading day starts.
pub fn market_instant(day: Day, seconds: u32) -> u64 {
    let unix = day.0 as i64 * DAY_S + seconds as i64 - MARKET_OFFSET_S;
    unix.max(0) as u64 * 1_000_000
}

/// `HH:MM:SS` of seconds since midnight.
pub fn time_of_day(seconds: u32) -> String {
    format!("{:02}:{:02}:{:02}", seconds / 3600, seconds / 60 % 60, seconds % 60)
}

/// Seconds since midnight of `HH:MM` or `HH:MM:SS` (the market echoes a whole minute as `HH:MM`).
fn seconds_of_day(time: &str) -> Option<u32> {
    let mut parts = time.split(':').map(|p| p.parse::<u32>().ok());
    let (h, m, s) = (parts.next()??, parts.next()??, parts.next().unwrap_or(Some(0))?);
    (parts.next().is_none() && h < 24 && m < 60 && s < 60).then_some(h * 3600 + m * 60 + s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speed_one_is_a_real_clock_and_faster_speeds_fall_faster() {
        let real = clock_pace(ClockGroup::Roses, 1.0);
        assert_eq!(real, ClockPace { step: Fen(1), tick_ms: 20, pre_roll_ms: 1000, pause_ms: 500 });
        assert_eq!(clock_pace(ClockGroup::Pots, 1.0).step, Fen(10));
        let fast = clock_pace(ClockGroup::Roses, 50.0);
        assert_eq!(fast.tick_ms, 2);
        // Rounded to whole fen on a 2 ms tick: five yuan a second, ten times speed 1.
        assert_eq!(fast.step, Fen(1));
        assert_eq!(clock_pace(ClockGroup::Pots, 50.0).step, Fen(14));
        assert_eq!((fast.pre_roll_ms, fast.pause_ms), (20, 10));
        assert_eq!(clock_pace(ClockGroup::Roses, 2.0).tick_ms, 10);
        let slow = clock_pace(ClockGroup::Roses, 0.5);
        assert_eq!((slow.step, slow.tick_ms), (Fen(1), 40));
    }

    #[test]
    fn market_time_is_shanghai_time() {
        // 2026-12-05 22:04:45 UTC is 06:04:45 on the 6th in Shanghai.
        let ts = 1_796_508_285_000_000;
        let (day, seconds) = market_time(ts + 123);
        assert_eq!((day.to_string(), time_of_day(seconds)), ("2026-12-06".to_string(), "06:04:45".to_string()));
        assert_eq!(market_instant(day, seconds), ts);
    }

    #[test]
    fn start_times_read_with_or_without_seconds() {
        assert_eq!(seconds_of_day("06:30"), Some(23_400));
        assert_eq!(seconds_of_day("06:30:15"), Some(23_415));
        assert_eq!(seconds_of_day("24:00"), None);
        assert_eq!(seconds_of_day("06:30:15:1"), None);
    }
}
