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
use crate::core::market::{Draw, Market, Waiting};
use crate::core::participants::Role;
use crate::event::{Event, PlannedLot};
use crate::reject::Reject;
use crate::types::{ClockId, Code, Day, EngineTime, Fen, LotId, Pk};

/// Seconds in a day: a start time is below this.
pub const DAY_SECONDS: u32 = 86_400;
/// The market's local time is UTC+8 (Shanghai).
const MARKET_OFFSET_SECONDS: i64 = 8 * 3600;
/// `plan_lots` without `start_markup_pct`: 50 %.
pub const START_MARKUP_BP_DEFAULT: u32 = 5_000;
/// Lots a `plan_lots` places per journaled step: a big hall's 10,000 lots hold the sequencer in
/// slices of well under a millisecond each (benches/src/bin/planning.rs).
pub const PLAN_SLICE_LOTS: usize = 1_000;
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

/// A `plan_lots` in progress: the lots in plan order with their clock and start price, how far
/// it has come, and what it placed so far.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PlanJob {
    order: Vec<PlannedLot>,
    next: usize,
    assigned: Vec<PlannedLot>,
    unplanned: Vec<LotId>,
}

/// A planned product as `plan_lots` needs it: its clock, its place among the product codes,
/// and each of its grades' last VWAP, in scale order.
#[derive(Clone)]
struct ProductPlan {
    clock: usize,
    rank: u128,
    vwaps: Vec<Option<Fen>>,
}

/// A planned lot's start price: `max(min_price, vwap) × (1 + markup)`, up to the fen and then
/// to the clock's step; `None` when it would not fit the price arithmetic (the lot stays
/// unplanned rather than overflow).
fn start_price(lot: &Waiting, vwap: Option<Fen>, step: Fen, markup_bp: u32) -> Option<Fen> {
    let reference = vwap.map_or(lot.min_price, |v| v.max(lot.min_price)).0;
    let marked = reference.checked_mul(10_000 + markup_bp as i64)?.checked_add(9_999)? / 10_000;
    let price = Fen(marked.checked_add(step.0 - 1)? / step.0 * step.0);
    price.checked_mul(lot.units)?;
    Some(price)
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
        if self.planning.is_some() {
            return Err(Reject::invalid_state("plan_lots is already placing lots; it ends in a moment"));
        }
        if start_markup_bp > START_MARKUP_BP_MAX {
            return Err(Reject::bad_request(format!("start_markup_pct must be at most {}", START_MARKUP_BP_MAX / 100)));
        }
        // Small tables and integer keys instead of maps and strings: a big hall plans 10,000
        // lots in one command, and the sequencer waits for it (benches/src/bin/planning.rs).
        let mut codes: Vec<Code> = self.products.keys().copied().collect();
        codes.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        // By product number: which clock plans it, its place among the codes, its grades' VWAPs.
        let mut tables: Vec<Option<ProductPlan>> = vec![None; self.products.len()];
        for (index, plan) in self.clocks.iter().enumerate().filter_map(|(i, c)| c.plan.as_ref().map(|p| (i, p))) {
            for code in &plan.products {
                let product = &self.products[code];
                tables[product.number as usize] = Some(ProductPlan {
                    clock: index,
                    rank: codes.iter().position(|c| c == code).expect("a listed product") as u128,
                    vwaps: product.grades.iter().map(|g| self.last_vwap(*code, *g)).collect(),
                });
            }
        }
        let grower_rank = self.grower_ranks();
        // In id order: the lot, its clock, its start price, and (below) its position; beside it,
        // its place in the plan as one integer: grower's place, product's place, grade's place,
        // and last its index in `planned`, which orders as the lot id does.
        let mut planned: Vec<PlannedLot> = Vec::new();
        let mut keys: Vec<u128> = Vec::new();
        let mut unplanned = Vec::new();
        let mut adding = vec![0u64; self.clocks.len()];
        for (id, lot) in &self.waiting {
            let Some(table) = &tables[lot.product as usize] else {
                unplanned.push(*id);
                continue;
            };
            let step = self.clocks[table.clock].settings.step;
            let Some(start_price) = start_price(lot, table.vwaps[lot.grade as usize], step, start_markup_bp) else {
                unplanned.push(*id);
                continue;
            };
            let grower = grower_rank[lot.grower.0 as usize] as u128;
            keys.push(grower << 96 | table.rank << 80 | (lot.grade as u128) << 64 | planned.len() as u128);
            let clock = self.clocks[table.clock].id;
            planned.push(PlannedLot { lot: *id, clock, position: 0, start_price });
            adding[table.clock] += 1;
        }
        for (index, count) in adding.iter().enumerate().filter(|(_, n)| **n > 0) {
            let c = &self.clocks[index];
            let held = c.supply_line.len() as u64 + u64::from(c.lot.is_some());
            check_room("supply_line_lots_max", self.limits.supply_line_lots_max, held, *count)?;
        }
        keys.sort_unstable();
        let order = keys.iter().map(|key| planned[*key as u64 as usize]).collect();
        self.planning = Some(PlanJob { order, next: 0, assigned: Vec::new(), unplanned });
        out.push(Event::PlanningStarted { lots: planned.len() as u32 });
        // A plan of one slice is placed now; a bigger one on the journaled ticks that follow at
        // once, a slice each (the drawing up above is this command's share).
        if planned.len() <= PLAN_SLICE_LOTS {
            self.continue_planning(out);
        }
        Ok(())
    }

    /// Places the next slice of a `plan_lots` in progress (at most `PLAN_SLICE_LOTS` lots), each
    /// still `consigned` at the end of its clock's line at the next position; when the plan is
    /// done, the reply (`LotsPlanned`) and the `Catalogue`. Runs before every command, like the
    /// clocks' timers, and `next_wake` asks for a tick at once while a plan is in progress.
    pub(crate) fn continue_planning(&mut self, out: &mut Vec<Event>) {
        let Some(mut job) = self.planning.take() else { return };
        let end = (job.next + PLAN_SLICE_LOTS).min(job.order.len());
        let slice = &job.order[job.next..end];
        let mut placed = Vec::with_capacity(slice.len());
        for plan in slice {
            // A lot sold out by presale, withdrawn or assigned by hand since the plan was drawn
            // up is no longer the plan's.
            if self.waiting.remove(&plan.lot).is_none() {
                continue;
            }
            self.lines_changed = true;
            let c = &mut self.clocks[plan.clock.0 as usize - 1];
            c.supply_line.push_back(plan.lot);
            let position = c.next_position;
            c.next_position += 1;
            placed.push(PlannedLot { position, ..*plan });
        }
        job.next = end;
        // The lots of the slice in id order, written in one pass over the lots.
        let mut by_id: Vec<&PlannedLot> = placed.iter().collect();
        by_id.sort_unstable_by_key(|p| p.lot);
        let mut next = by_id.into_iter().peekable();
        if let Some(first) = next.peek().map(|p| p.lot) {
            for (id, lot) in self.lots.range_mut(first..) {
                // Matched by key: the lots passed over are not read at all.
                let Some(plan) = next.next_if(|p| p.lot == *id) else { continue };
                lot.clock = Some(plan.clock);
                lot.position = Some(plan.position);
                lot.start_price = Some(plan.start_price);
                lot.status = LotStatus::Queued;
                if next.peek().is_none() {
                    break;
                }
            }
        }
        // The reply lists the lots in plan order, the day's drawn order across the clocks.
        job.assigned.extend(placed);
        if job.next < job.order.len() {
            self.planning = Some(job);
            return;
        }
        out.push(Event::LotsPlanned { day: self.day, assigned: job.assigned, unplanned: job.unplanned });
        out.push(Event::Catalogue { day: self.day, clocks: self.catalogue_ids() });
    }

    /// Each grower's place, by participant key: its place in the day's draw, then growers not in
    /// the draw by id (`u32::MAX` for participants with no lots).
    fn grower_ranks(&self) -> Vec<u32> {
        let mut ranks = vec![u32::MAX; self.participants.len()];
        let drawn = self.draw.as_ref().map_or(&[][..], |d| d.growers.as_slice());
        for (i, pk) in drawn.iter().enumerate() {
            ranks[pk.0 as usize] = i as u32;
        }
        let mut rest: Vec<Pk> =
            self.waiting.values().map(|l| l.grower).filter(|pk| ranks[pk.0 as usize] == u32::MAX).collect();
        rest.sort_unstable();
        rest.dedup();
        rest.sort_by(|a, b| self.participants.get(*a).id.as_str().cmp(self.participants.get(*b).id.as_str()));
        for (i, pk) in rest.into_iter().enumerate() {
            ranks[pk.0 as usize] = (drawn.len() + i) as u32;
        }
        ranks
    }

    /// Every clock's lots of the day in auction order: each lot in the slot of its position.
    fn catalogue_ids(&self) -> Vec<(ClockId, Vec<LotId>)> {
        let mut slots: Vec<Vec<Option<LotId>>> =
            self.clocks.iter().map(|c| vec![None; c.next_position.saturating_sub(1) as usize]).collect();
        for lot in self.lots.values() {
            if let (Some(clock), Some(position)) = (lot.clock, lot.position) {
                if let Some(slot) = slots[clock.0 as usize - 1].get_mut(position as usize - 1) {
                    *slot = Some(lot.id);
                }
            }
        }
        self.clocks.iter().zip(slots).map(|(c, slots)| (c.id, slots.into_iter().flatten().collect())).collect()
    }

    /// The next (up to) six lots of a clock's supply line, as the feed shows them.
    pub fn next_lots(&self, clock: ClockId) -> Vec<&Lot> {
        self.clock(clock).map_or_else(Vec::new, |c| c.next_lots().map(|id| &self.lots[&id]).collect())
    }

    /// After every command: a `supply_line` event for each clock whose first six lots changed.
    pub(crate) fn publish_supply_lines(&mut self, out: &mut Vec<Event>) {
        if !std::mem::take(&mut self.lines_changed) {
            return;
        }
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
        // Worked out apart from this code (protocol section 11's generator and swaps, in Python):
        // seed 42 draws a b c d e into b c a e d.
        assert_eq!(items, vec!["b", "c", "a", "e", "d"]);
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
