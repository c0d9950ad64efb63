//! The auctioneer's part of the morning, over the operator's session: clock settings scaled to
//! the demo's speed, lots lined up on the clocks with start prices from recent prices, clocks
//! started, books opened and closed, and the day ended. Also tidies up a day a previous run left
//! half done, so every morning the demo runs is a whole one.

use super::client::{unexpected, Session};
use super::growers::{auction_order, ConsignedLot};
use super::money::Fen;
use super::prices::PriceBoard;
use super::products::{product, ClockGroup, BOOKS};
use rand::Rng;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

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

    /// Assigns every lot to its group's clock, in catalogue order, at a start price well above
    /// what the cell fetched last time (or 1.6–2× the reserve). Returns the clocks' lines.
    pub async fn line_up(
        &self,
        lots: &[ConsignedLot],
        prices: &std::sync::Mutex<PriceBoard>,
        rng: &mut impl Rng,
    ) -> BTreeMap<u16, Vec<u64>> {
        let mut ordered: Vec<&ConsignedLot> = lots.iter().collect();
        ordered.sort_by_key(|lot| auction_order(lot));
        let mut lines: BTreeMap<u16, Vec<u64>> = BTreeMap::new();
        for lot in ordered {
            let Some(product) = product(lot.cell.0) else { continue };
            let clock = self.clock_of(product.group);
            let recent = prices.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).recent(lot.cell);
            let from_reserve = lot.reserve.cny() * rng.gen_range(1.6..2.0);
            let from_recent = recent.map_or(0.0, |r| r.cny() * rng.gen_range(1.35..1.6));
            let start = Fen::from_cny(from_reserve.max(from_recent)).max(lot.reserve);
            let msg = json!({"type": "assign_lot", "lot_id": lot.lot_id, "clock": clock, "start_price": start.json()});
            if self.session.expect(msg, "lot_assigned").await.is_some() {
                lines.entry(clock).or_default().push(lot.lot_id);
            }
        }
        lines
    }

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
}
