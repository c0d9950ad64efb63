//! Planning the auction day (protocol section 11): clock plans and their start times, the daily
//! draw of the grower order, `plan_lots` (which lot goes to which clock, in what order, from what
//! price), the catalogue, and the `supply_line` publication of each clock's next six lots.
//!
//! Everything here is decided from market state and journaled inputs only: the draw's seed is in
//! the command, the start prices come from the cells' VWAPs the core kept itself, and a planned
//! start is a timer on engine time, so a replay and every replica plan the same day.

use crate::command::{Actor, ClockPlan};
use crate::core::clock::ClockPhase;
use crate::core::limits::check_room;
use crate::core::lots::{Lot, LotStatus};
use crate::core::market::{Draw, Market};
use crate::core::participants::Role;
use crate::event::{Event, PlannedLot};
use crate::reject::Reject;
use crate::types::{ClockId, Day, EngineTime, Fen, LotId, Pk};
use std::collections::BTreeMap;

/// Seconds in a day: a start time is below this.
pub const DAY_SECONDS: u32 = 86_400;
/// The market's local time is UTC+8 (Shanghai).
const MARKET_OFFSET_SECONDS: i64 = 8 * 3600;
/// `plan_lots` without `start_markup_pct`: 50 %.
pub const START_MARKUP_BP_DEFAULT: u32 = 5_000;
/// A start markup above 1000 % is a typo.
pub const START_MARKUP_BP_MAX: u32 = 100_000;

/// The engine time of `seconds` after the trading day's midnight, market local time.
pub fn day_time(day: Day, seconds: u32) -> EngineTime {
    let unix = day.0 as i64 * DAY_SECONDS as i64 + seconds as i64 - MARKET_OFFSET_SECONDS;
    EngineTime((unix.max(0) as u64).saturating_mul(1_000_000))
}

/// SplitMix64, exactly as protocol section 11 defines it: anyone can recompute the draw.
#[derive(Clone, Copy, Debug)]
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// The protocol's shuffle: for `i` from the last index down to 1, swap element `i` with element
/// `next() mod (i + 1)`.
pub fn shuffle<T>(items: &mut [T], seed: u64) {
    let mut rng = SplitMix64(seed);
    for i in (1..items.len()).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        items.swap(i, j);
    }
}

/// Where a lot falls in the plan: (grower's place, product's place, grade's place, lot id).
type PlanKey = (u32, u32, u32, u64);

/// Rounds `price` up to a whole number of `step`s.
fn round_up_to_step(price: i128, step: i128) -> i128 {
    (price + step - 1).div_euclid(step) * step
}

impl Market {
    pub(crate) fn set_clock_plan(
        &mut self,
        actor: Actor,
        clock: ClockId,
        plan: &ClockPlan,
        out: &mut Vec<Event>,
    ) -> Result<(), Reject> {
        self.participants.authorise(actor, Role::Operator)?;
        let index = self
            .clock(clock)
            .map(|c| c.id.0 as usize - 1)
            .ok_or_else(|| Reject::not_found(format!("no clock {} (clocks are 1..={})", clock.0, self.clocks.len())))?;
        if plan.start_time.is_some_and(|s| s >= DAY_SECONDS) {
            return Err(Reject::bad_request("start_time must be a time of day, 00:00 to 23:59:59"));
        }
        for (i, product) in plan.products.iter().enumerate() {
            if !self.products.contains_key(product) {
                return Err(Reject::not_found(format!("no product {product}")));
            }
            if plan.products[..i].contains(product) {
                return Err(Reject::bad_request(format!("products lists {product} twice")));
            }
            let elsewhere = self
                .clocks
                .iter()
                .find(|c| c.id != clock && c.plan.as_ref().is_some_and(|p| p.products.contains(product)));
            if let Some(other) = elsewhere {
                return Err(Reject::invalid_state(format!(
                    "product {product} is already in clock {}'s plan (a product belongs to at most one plan)",
                    other.id.0
                )));
            }
        }
        self.clocks[index].plan = Some(plan.clone());
        out.push(Event::ClockPlanSet { clock, plan: plan.clone() });
        Ok(())
    }

    /// When clock `index` starts by itself: it has a planned start time, has not started today,
    /// is idle and has lots. Never before the start time, and never before the engine time the
    /// market is at, so a start planned for 06:30 but possible only from 06:40 (lots planned
    /// late) starts at the first journaled tick after 06:40, not in the past.
    pub(crate) fn planned_start(&self, index: usize) -> Option<EngineTime> {
        let clock = &self.clocks[index];
        let start_time = clock.plan.as_ref()?.start_time?;
        if clock.phase != ClockPhase::Idle || clock.started_on == Some(self.day) || clock.supply_line.is_empty() {
            return None;
        }
        Some(day_time(self.day, start_time).max(self.now))
    }

    pub(crate) fn draw_order(&mut self, actor: Actor, seed: u64, out: &mut Vec<Event>) -> Result<(), Reject> {
        self.participants.authorise(actor, Role::Operator)?;
        if self.draw.is_none() {
            let mut growers: Vec<Pk> = self.lots.values().map(|lot| lot.grower).collect();
            growers.sort_by(|a, b| self.participants.get(*a).id.as_str().cmp(self.participants.get(*b).id.as_str()));
            growers.dedup();
            shuffle(&mut growers, seed);
            self.draw = Some(Draw { day: self.day, seed, growers });
        }
        // Drawn once a day: asked again, the same answer.
        let draw = self.draw.as_ref().expect("drawn");
        let growers = draw.growers.iter().map(|pk| self.participants.get(*pk).id).collect();
        out.push(Event::OrderDrawn { day: draw.day, seed: draw.seed, growers });
        Ok(())
    }

    /// `plan_lots`: every consigned lot of the day to the clock whose plan has its product, after
    /// what the supply line already holds, in the order of protocol section 11, from
    /// `max(min_price, the cell's last VWAP) × (1 + markup)` rounded up to the clock's step.
    pub(crate) fn plan_lots(&mut self, actor: Actor, start_markup_bp: u32, out: &mut Vec<Event>) -> Result<(), Reject> {
        self.participants.authorise(actor, Role::Operator)?;
        if start_markup_bp > START_MARKUP_BP_MAX {
            return Err(Reject::bad_request(format!("start_markup_pct must be at most {}", START_MARKUP_BP_MAX / 100)));
        }
        // Small integer ranks instead of strings, so sorting a big hall's day stays cheap.
        let clock_of: BTreeMap<_, usize> = self
            .clocks
            .iter()
            .enumerate()
            .filter_map(|(i, c)| c.plan.as_ref().map(|p| (i, p)))
            .flat_map(|(i, p)| p.products.iter().map(move |product| (*product, i)))
            .collect();
        let product_rank: BTreeMap<_, u32> = {
            let mut codes: Vec<_> = self.products.keys().copied().collect();
            codes.sort_by(|a, b| a.as_str().cmp(b.as_str()));
            codes.into_iter().enumerate().map(|(i, c)| (c, i as u32)).collect()
        };
        let grower_rank = self.grower_ranks();
        let mut planned: Vec<(PlanKey, usize, Fen)> = Vec::new();
        let mut unplanned = Vec::new();
        let mut adding = vec![0u64; self.clocks.len()];
        for lot in self.lots.values().filter(|l| l.status == LotStatus::Consigned && l.day == self.day) {
            let Some(&index) = clock_of.get(&lot.product) else {
                unplanned.push(lot.id);
                continue;
            };
            let Some(start_price) = self.start_price(lot, index, start_markup_bp) else {
                unplanned.push(lot.id);
                continue;
            };
            let product = &self.products[&lot.product];
            let grade_rank = product.grade_rank(lot.grade).unwrap_or(usize::MAX) as u32;
            let key = (grower_rank[&lot.grower], product_rank[&lot.product], grade_rank, lot.id.0);
            planned.push((key, index, start_price));
            adding[index] += 1;
        }
        for (index, count) in adding.iter().enumerate().filter(|(_, n)| **n > 0) {
            let c = &self.clocks[index];
            let held = c.supply_line.len() as u64 + u64::from(c.lot.is_some());
            check_room("supply_line_lots_max", self.limits.supply_line_lots_max, held, *count)?;
        }
        planned.sort_unstable_by_key(|(key, _, _)| *key);
        let mut assigned = Vec::with_capacity(planned.len());
        for ((_, _, _, lot), index, start_price) in planned {
            let position = self.queue_lot(index, LotId(lot), start_price);
            assigned.push(PlannedLot { lot: LotId(lot), clock: self.clocks[index].id, position, start_price });
        }
        out.push(Event::LotsPlanned { day: self.day, assigned, unplanned });
        out.push(Event::Catalogue { day: self.day, clocks: self.catalogue_ids() });
        Ok(())
    }

    /// Each grower's place: its place in the day's draw, then growers not in the draw by id.
    fn grower_ranks(&self) -> BTreeMap<Pk, u32> {
        let drawn = self.draw.as_ref().map_or(&[][..], |d| d.growers.as_slice());
        let mut ranks: BTreeMap<Pk, u32> = drawn.iter().enumerate().map(|(i, pk)| (*pk, i as u32)).collect();
        let mut rest: Vec<Pk> = self.lots.values().map(|l| l.grower).filter(|pk| !ranks.contains_key(pk)).collect();
        rest.sort_by(|a, b| self.participants.get(*a).id.as_str().cmp(self.participants.get(*b).id.as_str()));
        rest.dedup();
        let base = ranks.len() as u32;
        ranks.extend(rest.into_iter().enumerate().map(|(i, pk)| (pk, base + i as u32)));
        ranks
    }

    /// A planned lot's start price; `None` when it would not fit the price arithmetic.
    fn start_price(&self, lot: &Lot, index: usize, markup_bp: u32) -> Option<Fen> {
        let reference = self.last_vwap(lot.product, lot.grade).map_or(lot.min_price, |v| v.max(lot.min_price));
        let marked = (reference.0 as i128 * (10_000 + markup_bp as i128) + 9_999) / 10_000;
        let price = round_up_to_step(marked, self.clocks[index].settings.step.0 as i128);
        let price = Fen(i64::try_from(price).ok()?);
        let units = lot.units_per_container as u64 * lot.containers as u64;
        price.checked_mul(units)?;
        Some(price)
    }

    /// Every clock's lots of the day in auction order (by position).
    fn catalogue_ids(&self) -> Vec<(ClockId, Vec<LotId>)> {
        self.catalogue().into_iter().map(|(clock, lots)| (clock, lots.iter().map(|l| l.id).collect())).collect()
    }

    /// `get_catalogue`: every clock's lots of the day, in auction order.
    pub fn catalogue(&self) -> Vec<(ClockId, Vec<&Lot>)> {
        let mut clocks: Vec<(ClockId, Vec<&Lot>)> = self.clocks.iter().map(|c| (c.id, Vec::new())).collect();
        for lot in self.lots.values() {
            if let (Some(clock), Some(_)) = (lot.clock, lot.position) {
                clocks[clock.0 as usize - 1].1.push(lot);
            }
        }
        for (_, lots) in &mut clocks {
            lots.sort_by_key(|l| l.position);
        }
        clocks
    }

    /// The next (up to) six lots of a clock's supply line, as the feed shows them.
    pub fn next_lots(&self, clock: ClockId) -> Vec<&Lot> {
        self.clock(clock).map_or_else(Vec::new, |c| c.next_lots().map(|id| &self.lots[&id]).collect())
    }

    /// After every command: a `supply_line` event for each clock whose first six lots changed.
    pub(crate) fn publish_supply_lines(&mut self, out: &mut Vec<Event>) {
        for index in 0..self.clocks.len() {
            let clock = &self.clocks[index];
            if clock.next_lots().eq(clock.published_next.iter().copied()) {
                continue;
            }
            let published: Vec<LotId> = clock.next_lots().collect();
            let next = published.iter().map(|id| self.lots[id].clone()).collect();
            let clock = &mut self.clocks[index];
            clock.published_next = published;
            out.push(Event::SupplyLine { clock: clock.id, next });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix64_matches_the_published_reference_values() {
        // The reference outputs for seed 1234567 (Vigna's splitmix64.c).
        let mut rng = SplitMix64(1_234_567);
        let first: Vec<u64> = (0..3).map(|_| rng.next_u64()).collect();
        assert_eq!(first, vec![6_457_827_717_110_365_317, 3_203_168_211_198_807_973, 9_817_491_932_198_370_423]);
    }

    #[test]
    fn the_shuffle_swaps_from_the_last_index_down() {
        let mut items = vec!["a", "b", "c", "d", "e"];
        shuffle(&mut items, 42);
        let mut again = vec!["a", "b", "c", "d", "e"];
        shuffle(&mut again, 42);
        assert_eq!(items, again, "the same seed draws the same order");
        let mut sorted = items.clone();
        sorted.sort();
        assert_eq!(sorted, vec!["a", "b", "c", "d", "e"], "a permutation");
        // By hand: i = 4, 3, 2, 1 with j = next() mod (i + 1).
        let mut rng = SplitMix64(42);
        let mut by_hand = vec!["a", "b", "c", "d", "e"];
        for i in (1..5usize).rev() {
            let j = (rng.next_u64() % (i as u64 + 1)) as usize;
            by_hand.swap(i, j);
        }
        assert_eq!(items, by_hand);
    }

    #[test]
    fn a_day_time_is_market_local() {
        let day = Day::parse("2026-12-06").unwrap();
        // 06:30 in Shanghai is 22:30 UTC the evening before.
        let t = day_time(day, 6 * 3600 + 30 * 60);
        assert_eq!(t.0 / 1_000_000 % 86_400, 22 * 3600 + 30 * 60);
        assert_eq!(Day::containing(t), day);
    }
}
