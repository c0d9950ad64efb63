//! One Dutch clock: its settings, supply line, phase and the price arithmetic of a round.
//!
//! The rules that move lots, money and awards live in `auction.rs`; this file only knows time and
//! price: `price(t) = start_price − step × floor((t − start_ts) / tick_ms)`, and the round runs
//! while `price(t) ≥ min_price`.

use crate::command::{ClockPlan, ClockSettings};
use crate::types::{ClockId, Day, EngineTime, Fen, LotId, Pk};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClockPhase {
    Idle,
    PreRoll,
    Running,
    Pause,
}

impl ClockPhase {
    pub fn as_str(self) -> &'static str {
        match self {
            ClockPhase::Idle => "idle",
            ClockPhase::PreRoll => "pre_roll",
            ClockPhase::Running => "running",
            ClockPhase::Pause => "pause",
        }
    }
}

/// One descent of the clock for a lot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Round {
    pub number: u32,
    pub start_price: Fen,
    pub start_ts: EngineTime,
    pub step: Fen,
    pub tick_ms: u32,
    /// The lot's reserve: the round ends at the first tick priced below it.
    pub min_price: Fen,
}

impl Round {
    /// Ticks elapsed at `t` (0 before the round starts).
    pub fn ticks_at(&self, t: EngineTime) -> u64 {
        let elapsed_us = t.0.saturating_sub(self.start_ts.0);
        elapsed_us / (self.tick_ms as u64 * 1000)
    }

    pub fn price_at(&self, t: EngineTime) -> Fen {
        let ticks = self.ticks_at(t) as i128;
        let price = self.start_price.0 as i128 - self.step.0 as i128 * ticks;
        Fen(price.max(i64::MIN as i128) as i64)
    }

    pub fn tick_time(&self, ticks: u64) -> EngineTime {
        // Saturating: a wide price range at a slow tick can put the round's end beyond u64
        // microseconds (start 4e16 fen at a 60 s tick). Saturated, the round simply never ends
        // by itself, instead of overflowing (a panic, or a wrapped end in the past in release).
        let offset_us = ticks.saturating_mul(self.tick_ms as u64 * 1000);
        EngineTime(self.start_ts.0.saturating_add(offset_us))
    }

    /// The first tick whose price is below the reserve: the round ends unsold there.
    pub fn end_ticks(&self) -> u64 {
        if self.start_price < self.min_price {
            return 0;
        }
        ((self.start_price.0 - self.min_price.0) / self.step.0) as u64 + 1
    }

    pub fn end_ts(&self) -> EngineTime {
        self.tick_time(self.end_ticks())
    }

    /// Whether the round is still selling at `t`.
    pub fn is_live_at(&self, t: EngineTime) -> bool {
        t < self.end_ts()
    }

    /// The first tick at which the price is at or below `max_price`, if that happens before the
    /// round ends.
    pub fn trigger_ticks(&self, max_price: Fen) -> Option<u64> {
        let ticks = if max_price >= self.start_price {
            0
        } else {
            let gap = (self.start_price.0 - max_price.0) as u64;
            let step = self.step.0 as u64;
            gap.div_ceil(step)
        };
        (ticks < self.end_ticks()).then_some(ticks)
    }
}

/// An award of the lot now on the clock, kept so the operator can void a mistaken press and so
/// that its dispatch line can be made when the lot leaves. Small on purpose (32 bytes): it is
/// written on the bid → award path. Its fee and commission follow from the day's fees, which
/// cannot change while the lot is on the clock (`set_fees` takes effect at `end_of_day`, when
/// every clock is idle); its place in its round from the awards before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AwardRecord {
    pub round: u32,
    pub buyer: Pk,
    pub price: Fen,
    pub containers: u32,
    pub voided: bool,
    pub ts: EngineTime,
}

impl Clock {
    /// The 1-based place of award `position` among its round's (the `k` of its dispatch ref):
    /// a round's awards are contiguous.
    pub fn award_number(&self, position: usize) -> u32 {
        let round = self.awards[position].round;
        self.awards[..=position].iter().rev().take_while(|a| a.round == round).count() as u32
    }

    /// The awards from `from` on, each with its place in its round.
    pub fn numbered_awards(&self, from: usize) -> impl Iterator<Item = (&AwardRecord, u32)> {
        let mut previous = from.checked_sub(1).map(|p| (self.awards[p].round, self.award_number(p)));
        self.awards[from..].iter().map(move |a| {
            let k = match previous {
                Some((round, k)) if round == a.round => k + 1,
                _ => 1,
            };
            previous = Some((a.round, k));
            (a, k)
        })
    }
}

/// After a round stops on a bid: the price it stopped at and until when more buyers may join.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stop {
    pub round: u32,
    pub price: Fen,
    pub multi_buy_until: EngineTime,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Clock {
    pub id: ClockId,
    pub settings: ClockSettings,
    pub supply_line: VecDeque<LotId>,
    pub phase: ClockPhase,
    /// The lot being auctioned (pre-roll, running, pause).
    pub lot: Option<LotId>,
    /// The running round, or the last one of the current lot.
    pub round: Option<Round>,
    /// When the pre-roll or pause ends.
    pub phase_until: EngineTime,
    pub stop: Option<Stop>,
    pub awards: Vec<AwardRecord>,
    /// The awards before this one have their dispatch lines: a line is made when its lot leaves
    /// the clock (or when something asks for it first), not on the bid → award path.
    pub dispatched: usize,
    /// What the clock auctions and when it starts by itself (`set_clock_plan`).
    pub plan: Option<ClockPlan>,
    /// The trading day on which the clock last started (by itself or by `start_clock`): a
    /// planned start happens once per day.
    pub started_on: Option<Day>,
    /// The auction-order position the next lot assigned today gets (1-based).
    pub next_position: u32,
    /// The first lots of the supply line as last published (`lot_on_clock`, `supply_line`).
    pub published_next: Vec<LotId>,
}

/// How many lots of a supply line `next` shows (protocol section 9).
pub const NEXT_LOTS: usize = 6;

impl Clock {
    pub fn new(id: ClockId, settings: ClockSettings) -> Clock {
        Clock {
            id,
            settings,
            supply_line: VecDeque::new(),
            phase: ClockPhase::Idle,
            lot: None,
            round: None,
            phase_until: EngineTime(0),
            stop: None,
            awards: Vec::new(),
            dispatched: 0,
            plan: None,
            started_on: None,
            next_position: 1,
            published_next: Vec::new(),
        }
    }

    /// The first (up to) six lots of the supply line.
    pub fn next_lots(&self) -> impl Iterator<Item = LotId> + '_ {
        self.supply_line.iter().take(NEXT_LOTS).copied()
    }

    /// The running round, if the clock is running.
    pub fn running_round(&self) -> Option<&Round> {
        match self.phase {
            ClockPhase::Running => self.round.as_ref(),
            _ => None,
        }
    }

    /// Leaves the current lot behind: no lot, no round, no awards to void.
    pub fn clear_lot(&mut self) {
        assert!(
            self.awards[self.dispatched..].iter().all(|a| a.voided),
            "clock {}: awards left without their dispatch lines",
            self.id.0
        );
        self.dispatched = 0;
        self.lot = None;
        self.round = None;
        self.stop = None;
        self.awards.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(start: i64, step: i64, tick_ms: u32, min: i64) -> Round {
        Round {
            number: 1,
            start_price: Fen(start),
            start_ts: EngineTime(1_000_000),
            step: Fen(step),
            tick_ms,
            min_price: Fen(min),
        }
    }

    #[test]
    fn price_falls_one_step_per_tick() {
        let r = round(500, 2, 10, 100);
        assert_eq!(r.price_at(EngineTime(1_000_000)), Fen(500));
        assert_eq!(r.price_at(EngineTime(1_009_999)), Fen(500));
        assert_eq!(r.price_at(EngineTime(1_010_000)), Fen(498));
        assert_eq!(r.price_at(EngineTime(1_055_000)), Fen(490));
    }

    #[test]
    fn round_ends_at_the_first_tick_below_the_reserve() {
        let r = round(500, 2, 10, 101);
        // 500 − 2k ≥ 101 ⇔ k ≤ 199; tick 200 prices 100 < 101.
        assert_eq!(r.end_ticks(), 200);
        assert_eq!(r.price_at(r.tick_time(199)), Fen(102));
        assert!(r.is_live_at(EngineTime(r.end_ts().0 - 1)));
        assert!(!r.is_live_at(r.end_ts()));
        // Exactly at the reserve still sells.
        let exact = round(500, 2, 10, 100);
        assert_eq!(exact.price_at(exact.tick_time(exact.end_ticks() - 1)), Fen(100));
    }

    #[test]
    fn standing_bid_triggers_at_first_tick_at_or_below_its_max() {
        let r = round(500, 3, 10, 100);
        assert_eq!(r.trigger_ticks(Fen(600)), Some(0));
        assert_eq!(r.trigger_ticks(Fen(500)), Some(0));
        assert_eq!(r.trigger_ticks(Fen(499)), Some(1)); // 497 ≤ 499
        assert_eq!(r.trigger_ticks(Fen(497)), Some(1));
        assert_eq!(r.trigger_ticks(Fen(496)), Some(2));
        assert_eq!(r.trigger_ticks(Fen(99)), None); // below the reserve: never
    }
}
