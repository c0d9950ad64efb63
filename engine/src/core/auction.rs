//! The Dutch clocks' rules (protocol section 6): consigning lots, lining them up on supply lines,
//! pre-roll, rounds, live bids, standing bids, multi-buy, the pause and restart price, halts and
//! voided awards. Time only moves through `advance_clocks`, which every command runs first.

use crate::command::{Actor, ClockSettingsPatch, Consignment};
use crate::core::clock::{AwardRecord, Clock, ClockPhase, Round, Stop};
use crate::core::dispatch::{DispatchLine, DispatchRef, DispatchStatus};
use crate::core::limits::check_room;
use crate::core::lots::{Lot, LotStatus};
use crate::core::market::{Market, Waiting};
use crate::core::participants::Role;
use crate::core::standing_bid::StandingBid;
use crate::event::{Award, Event};
use crate::reject::Reject;
use crate::types::{ClockId, Code, EngineTime, Fen, LotId, Pk};

/// Limits on what a consignment may carry, so one message cannot bloat the state.
pub const ORIGIN_BYTES_MAX: usize = 64;
pub const PHOTO_URL_BYTES_MAX: usize = 512;
pub const NOTE_BYTES_MAX: usize = 512;
pub const MASTER_TEXT_BYTES_MAX: usize = 64;
pub const STEM_LENGTH_CM_MAX: u16 = 300;
pub const MATURITY_MAX: u8 = 5;
/// A clock tick longer than a minute is a typo, not a setting.
pub const TICK_MS_MAX: u32 = 60_000;
pub const PHASE_MS_MAX: u32 = 600_000;

impl Market {
    fn clock_index(&self, clock: ClockId) -> Result<usize, Reject> {
        let index = (clock.0 as usize).wrapping_sub(1);
        if index < self.clocks.len() {
            Ok(index)
        } else {
            Err(Reject::not_found(format!("no clock {} (clocks are 1..={})", clock.0, self.clocks.len())))
        }
    }

    fn lot_ref(&self, lot: LotId) -> Result<&Lot, Reject> {
        self.lots.get(&lot).ok_or_else(|| Reject::not_found(format!("no lot {} today", lot.0)))
    }

    fn lot_mut(&mut self, lot: LotId) -> &mut Lot {
        self.lots.get_mut(&lot).expect("lot on a clock exists")
    }

    pub(crate) fn consign_lot(&mut self, actor: Actor, c: &Consignment, out: &mut Vec<Event>) -> Result<(), Reject> {
        let grower = self.participants.authorise(actor, Role::Grower)?.expect("growers are participants");
        let product =
            self.products.get(&c.product).ok_or_else(|| Reject::not_found(format!("no product {}", c.product)))?;
        let (product_number, grade_rank) = (product.number, product.grade_rank(c.grade));
        let Some(grade_rank) = grade_rank else {
            let scale: Vec<&str> = product.grades.iter().map(|g| g.as_str()).collect();
            return Err(Reject::bad_request(format!(
                "grade {} is not on {}'s scale ({})",
                c.grade,
                c.product,
                scale.join(", ")
            )));
        };
        self.check_master_data(&c.master)?;
        if c.units_per_container == 0 {
            return Err(Reject::quantity_invalid("units_per_container must be at least 1"));
        }
        if c.containers == 0 {
            return Err(Reject::quantity_invalid("containers must be at least 1"));
        }
        if c.min_purchase == 0 || c.min_purchase > c.containers {
            return Err(Reject::quantity_invalid("min_purchase must be between 1 and containers"));
        }
        if c.min_price.0 <= 0 {
            return Err(Reject::price_invalid("min_price must be positive"));
        }
        let units = c.units_per_container as u64 * c.containers as u64;
        if c.min_price.checked_mul(units).is_none() {
            return Err(Reject::quantity_invalid("containers × units_per_container × min_price is too large"));
        }
        for (field, text, max) in [
            ("origin", &c.origin, ORIGIN_BYTES_MAX),
            ("photo_url", &c.photo_url, PHOTO_URL_BYTES_MAX),
            ("note", &c.note, NOTE_BYTES_MAX),
        ] {
            if text.len() > max {
                return Err(Reject::bad_request(format!("{field} is longer than {max} bytes")));
            }
            crate::text::check_clean(field, text)?;
        }
        let lots_today = self.participants.get(grower).lots_today;
        check_room("lots_per_grower_day_max", self.limits.lots_per_grower_day_max, lots_today as u64, 1)?;
        // The day's lots leave the core at end_of_day, so the map holds exactly today's.
        check_room("lots_per_day_max", self.limits.lots_per_day_max, self.lots.len() as u64, 1)?;
        let id = LotId(self.next_lot);
        self.next_lot += 1;
        self.participants.get_mut(grower).lots_today += 1;
        let lot = Lot {
            id,
            grower,
            grower_id: self.participants.get(grower).id,
            product: c.product,
            grade: c.grade,
            units_per_container: c.units_per_container,
            containers: c.containers,
            remaining: c.containers,
            sold: 0,
            unsold: 0,
            min_purchase: c.min_purchase,
            min_price: c.min_price,
            origin: c.origin.clone(),
            photo_url: c.photo_url.clone(),
            note: c.note.clone(),
            status: LotStatus::Consigned,
            day: self.day,
            master: c.master.clone(),
            clock: None,
            position: None,
            start_price: None,
            presale: None,
            presales: 0,
            qi: self.complaints.quality(grower).qi,
            sales: Default::default(),
            rounds: 0,
        };
        out.push(Event::LotConsigned { lot: Box::new(lot.clone()) });
        let units = lot.units_per_container as u64 * lot.containers as u64;
        let waiting =
            Waiting { grower, product: product_number, grade: grade_rank as u8, min_price: lot.min_price, units };
        self.waiting.insert(id, waiting);
        self.lots.insert(id, lot);
        Ok(())
    }

    pub(crate) fn assign_lot(
        &mut self,
        actor: Actor,
        lot_id: LotId,
        clock: ClockId,
        start_price: Fen,
        out: &mut Vec<Event>,
    ) -> Result<(), Reject> {
        self.participants.authorise(actor, Role::Operator)?;
        let index = self.clock_index(clock)?;
        let lot = self.lot_ref(lot_id)?;
        match lot.status {
            LotStatus::Consigned | LotStatus::Queued => {}
            status => {
                return Err(Reject::invalid_state(format!("lot {} is {}", lot_id.0, status.as_str())));
            }
        }
        if start_price < lot.min_price {
            return Err(Reject::price_invalid(format!(
                "start_price {start_price} is below the lot's reserve {}",
                lot.min_price
            )));
        }
        let units = lot.units_per_container as u64 * lot.containers as u64;
        if start_price.checked_mul(units).is_none() {
            return Err(Reject::price_invalid("start_price × units is too large"));
        }
        // The lot on the clock counts too: a halt puts it back at the head of the line. A lot
        // already queued on this clock moves within its line and takes no new place.
        let c = &self.clocks[index];
        let held = c.supply_line.len() as u64 + u64::from(c.lot.is_some());
        let queued_here = u64::from(lot.clock == Some(clock) && lot.status == LotStatus::Queued);
        check_room("supply_line_lots_max", self.limits.supply_line_lots_max, held - queued_here, 1)?;
        // Re-assigning a queued lot moves it to the end of the new line.
        if let Some(previous) = lot.clock {
            let line = &mut self.clocks[previous.0 as usize - 1].supply_line;
            line.retain(|l| *l != lot_id);
        }
        let position = self.queue_lot(index, lot_id, start_price);
        out.push(Event::LotAssigned { lot: lot_id, clock, position });
        Ok(())
    }

    /// Puts a lot at the end of clock `index`'s supply line, at the next place in the clock's
    /// auction order of the day; returns that place.
    pub(crate) fn queue_lot(&mut self, index: usize, lot_id: LotId, start_price: Fen) -> u32 {
        self.waiting.remove(&lot_id);
        self.lines_changed = true;
        let c = &mut self.clocks[index];
        c.supply_line.push_back(lot_id);
        let position = c.next_position;
        c.next_position += 1;
        let clock = c.id;
        let lot = self.lot_mut(lot_id);
        lot.clock = Some(clock);
        lot.position = Some(position);
        lot.start_price = Some(start_price);
        lot.status = LotStatus::Queued;
        position
    }

    /// Master data a grower sends (protocol section 5): bounded text, a stem length and an
    /// opening stage in range, no harvest after the trading day.
    fn check_master_data(&self, m: &crate::command::MasterData) -> Result<(), Reject> {
        for (field, text) in [("variety", &m.variety), ("base", &m.base), ("batch", &m.batch)] {
            if text.len() > MASTER_TEXT_BYTES_MAX {
                return Err(Reject::bad_request(format!("{field} is longer than {MASTER_TEXT_BYTES_MAX} bytes")));
            }
            crate::text::check_clean(field, text)?;
        }
        if m.stem_length_cm.is_some_and(|cm| cm == 0 || cm > STEM_LENGTH_CM_MAX) {
            return Err(Reject::bad_request(format!("stem_length_cm must be between 1 and {STEM_LENGTH_CM_MAX}")));
        }
        if m.maturity.is_some_and(|stage| stage == 0 || stage > MATURITY_MAX) {
            return Err(Reject::bad_request(format!("maturity must be an opening stage between 1 and {MATURITY_MAX}")));
        }
        if let Some(harvest) = m.harvest_day.filter(|d| *d > self.day) {
            return Err(Reject::bad_request(format!("harvest_day {harvest} is after the trading day {}", self.day)));
        }
        Ok(())
    }

    pub(crate) fn configure_clock(
        &mut self,
        actor: Actor,
        clock: ClockId,
        patch: &ClockSettingsPatch,
        out: &mut Vec<Event>,
    ) -> Result<(), Reject> {
        self.participants.authorise(actor, Role::Operator)?;
        let index = self.clock_index(clock)?;
        let mut settings = self.clocks[index].settings;
        if let Some(step) = patch.step {
            if step.0 <= 0 {
                return Err(Reject::price_invalid("step must be positive"));
            }
            settings.step = step;
        }
        if let Some(tick_ms) = patch.tick_ms {
            if tick_ms == 0 || tick_ms > TICK_MS_MAX {
                return Err(Reject::bad_request(format!("tick_ms must be between 1 and {TICK_MS_MAX}")));
            }
            settings.tick_ms = tick_ms;
        }
        for (field, value, slot) in [
            ("pre_roll_ms", patch.pre_roll_ms, &mut settings.pre_roll_ms),
            ("pause_ms", patch.pause_ms, &mut settings.pause_ms),
            ("multi_buy_ms", patch.multi_buy_ms, &mut settings.multi_buy_ms),
        ] {
            if let Some(value) = value {
                if value > PHASE_MS_MAX {
                    return Err(Reject::bad_request(format!("{field} must be at most {PHASE_MS_MAX}")));
                }
                *slot = value;
            }
        }
        if let Some(restart_ticks) = patch.restart_ticks {
            if restart_ticks > 1_000_000 {
                return Err(Reject::bad_request("restart_ticks must be at most 1000000"));
            }
            settings.restart_ticks = restart_ticks;
        }
        // A running round keeps the step and tick it started with; the next round uses these.
        self.clocks[index].settings = settings;
        out.push(Event::ClockConfigured { clock, settings });
        Ok(())
    }

    pub(crate) fn start_clock(
        &mut self,
        actor: Actor,
        clock: ClockId,
        now: EngineTime,
        out: &mut Vec<Event>,
    ) -> Result<(), Reject> {
        self.participants.authorise(actor, Role::Operator)?;
        let index = self.clock_index(clock)?;
        let c = &self.clocks[index];
        if c.phase != ClockPhase::Idle {
            return Err(Reject::invalid_state(format!("clock {} is already {}", clock.0, c.phase.as_str())));
        }
        if c.supply_line.is_empty() {
            return Err(Reject::invalid_state(format!("clock {} has no lots in its supply line", clock.0)));
        }
        self.clocks[index].started_on = Some(self.day);
        self.next_lot_on_clock(index, now, out);
        Ok(())
    }

    pub(crate) fn halt_clock(&mut self, actor: Actor, clock: ClockId, out: &mut Vec<Event>) -> Result<(), Reject> {
        self.participants.authorise(actor, Role::Operator)?;
        let index = self.clock_index(clock)?;
        if self.clocks[index].phase == ClockPhase::Idle {
            return Err(Reject::invalid_state(format!("clock {} is already idle", clock.0)));
        }
        self.halt(index, out);
        Ok(())
    }

    pub(crate) fn halt_all_clocks(&mut self, out: &mut Vec<Event>) {
        for index in 0..self.clocks.len() {
            if self.clocks[index].phase != ClockPhase::Idle {
                self.halt(index, out);
            }
        }
    }

    /// Makes the dispatch lines of clock `index`'s awards that have none yet (protocol section
    /// 12). Called when the lot leaves the clock and when a line is asked for before that: the
    /// bid → award path only records the award.
    pub(crate) fn dispatch_clock_awards(&mut self, index: usize) {
        let clock = &mut self.clocks[index];
        let Some(lot_id) = clock.lot else { return };
        let lot = &self.lots[&lot_id];
        for (record, k) in clock.numbered_awards(clock.dispatched) {
            if !record.voided {
                self.dispatch.append(award_line(lot, record, k));
            }
        }
        clock.dispatched = clock.awards.len();
    }

    /// Ends the running round without a sale and puts the lot back at the head of the supply line.
    fn halt(&mut self, index: usize, out: &mut Vec<Event>) {
        self.dispatch_clock_awards(index);
        let clock = &mut self.clocks[index];
        let clock_id = clock.id;
        if let Some(lot_id) = clock.lot {
            let lot = self.lots.get_mut(&lot_id).expect("lot on a clock exists");
            if lot.remaining > 0 {
                lot.status = LotStatus::Queued;
                clock.supply_line.push_front(lot_id);
                self.lines_changed = true;
            } else {
                lot.finish();
                self.standing_bids.remove(&lot_id);
            }
        }
        clock.clear_lot();
        clock.phase = ClockPhase::Idle;
        out.push(Event::ClockState { clock: clock_id, phase: ClockPhase::Idle });
    }

    pub(crate) fn withdraw_lot(&mut self, actor: Actor, lot_id: LotId, out: &mut Vec<Event>) -> Result<(), Reject> {
        self.participants.authorise(actor, Role::Operator)?;
        let lot = self.lot_ref(lot_id)?;
        match lot.status {
            LotStatus::Consigned | LotStatus::Queued => {}
            LotStatus::OnClock => {
                return Err(Reject::invalid_state(format!("lot {} is on the clock: halt the clock first", lot_id.0)));
            }
            status => return Err(Reject::invalid_state(format!("lot {} is already {}", lot_id.0, status.as_str()))),
        }
        if let Some(clock) = lot.clock {
            self.clocks[clock.0 as usize - 1].supply_line.retain(|l| *l != lot_id);
            self.lines_changed = true;
        }
        self.standing_bids.remove(&lot_id);
        self.close_presale(lot_id, out);
        self.waiting.remove(&lot_id);
        let lot = self.lot_mut(lot_id);
        lot.finish();
        lot.status = LotStatus::Withdrawn;
        lot.clock = None;
        let grower = lot.grower;
        out.push(Event::LotWithdrawn { lot: lot_id, grower });
        Ok(())
    }

    /// Undoes one award of the lot now on the clock: containers back to the lot, money back to
    /// the buyer and out of the grower's sales.
    pub(crate) fn void_award(
        &mut self,
        actor: Actor,
        clock: ClockId,
        lot_id: LotId,
        round: u32,
        buyer: Option<Code>,
        out: &mut Vec<Event>,
    ) -> Result<(), Reject> {
        self.participants.authorise(actor, Role::Operator)?;
        let index = self.clock_index(clock)?;
        self.lot_ref(lot_id)?;
        let buyer = buyer.map(|id| self.participants.lookup(&id)).transpose()?;
        let c = &self.clocks[index];
        if c.lot != Some(lot_id) {
            return Err(Reject::invalid_state(format!("lot {} is no longer on clock {}", lot_id.0, clock.0)));
        }
        let position = c
            .awards
            .iter()
            .rposition(|a| a.round == round && !a.voided && buyer.is_none_or(|b| a.buyer == b))
            .ok_or_else(|| Reject::not_found(format!("no award to void in round {round} of lot {}", lot_id.0)))?;
        let record = c.awards[position];
        let award = c.award_number(position);
        self.clocks[index].awards[position].voided = true;
        let reference = DispatchRef::Clock { lot: lot_id, round, award };
        if let Some((_, line)) = self.dispatch.find(reference) {
            line.voided = true;
        }
        let lot = self.lot_mut(lot_id);
        lot.remaining += record.containers;
        lot.sold -= record.containers;
        lot.check();
        let (grower, remaining, units) = (lot.grower, lot.remaining, lot.units_per_container as u64);
        // The award computed this amount with checked arithmetic when it was made.
        let amount = record.price.checked_mul(units * record.containers as u64).expect("an award's amount fits");
        lot.sales.amount.0 -= amount.0;
        lot.sales.units -= units * record.containers as u64;
        // The fees in force when the award was made: they change only at `end_of_day`.
        let fee = self.fees.checked_clock_fee(record.containers).expect("the award's fee fitted");
        let commission = self.fees.commission(amount);
        self.participants.unbuy(record.buyer, amount, fee);
        self.participants.account_mut(grower).unsell(amount, commission);
        self.totals.trades -= 1;
        self.totals.turnover.0 -= amount.0;
        self.totals.fees.0 -= fee.0 + commission.0;
        out.push(Event::AwardVoided {
            clock,
            lot: lot_id,
            round,
            buyer: record.buyer,
            grower,
            containers: record.containers,
            remaining,
            amount,
            fee,
            commission,
        });
        Ok(())
    }

    /// A live press. Timers up to `now` have already run, so the clock is exactly where it was
    /// when the press reached the engine.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn bid(
        &mut self,
        actor: Actor,
        clock: ClockId,
        lot_id: LotId,
        round: u32,
        containers: u32,
        now: EngineTime,
        out: &mut Vec<Event>,
    ) -> Result<(), Reject> {
        let buyer = self.participants.authorise(actor, Role::Buyer)?.expect("buyers are participants");
        let index = self.clock_index(clock)?;
        let lot = self.lot_ref(lot_id)?;
        let c = &self.clocks[index];
        let too_late = || Reject::too_late(format!("round {round} of lot {} is no longer running", lot_id.0));
        if c.lot != Some(lot_id) {
            if lot.status.is_finished() || round <= lot.rounds {
                return Err(too_late());
            }
            return Err(Reject::invalid_state(format!("lot {} is not on clock {}", lot_id.0, clock.0)));
        }
        // The lot's rounds so far, not the clock's round: after a halt the lot comes back in a
        // pre-roll with no round on the clock, and a bid for its halted round is `too_late`, not
        // a round that "has not started".
        let current = lot.rounds;
        let price = match (c.phase, c.stop) {
            (ClockPhase::Running, _) if round == current => c.round.expect("running").price_at(now),
            (ClockPhase::Pause, Some(stop))
                if round == stop.round && now < stop.multi_buy_until && lot.remaining > 0 =>
            {
                stop.price
            }
            _ if round <= current => return Err(too_late()),
            _ => return Err(Reject::invalid_state(format!("round {round} of lot {} has not started", lot_id.0))),
        };
        let stops_round = c.phase == ClockPhase::Running;
        self.award(index, buyer, containers, price, now, false, out)?;
        if stops_round {
            self.stop_round(index, price, now, out);
        }
        Ok(())
    }

    /// Checks a purchase of `containers` of the lot on clock `index` at `price` and books it.
    #[allow(clippy::too_many_arguments)]
    fn award(
        &mut self,
        index: usize,
        buyer: Pk,
        containers: u32,
        price: Fen,
        ts: EngineTime,
        standing: bool,
        out: &mut Vec<Event>,
    ) -> Result<(), Reject> {
        let clock = &self.clocks[index];
        let lot_id = clock.lot.expect("awards need a lot on the clock");
        let round = clock.round.expect("awards need a round").number;
        let lot = &self.lots[&lot_id];
        if lot.grower == buyer {
            return Err(Reject::forbidden(format!("participant cannot buy its own lot {}", lot_id.0)));
        }
        if containers == 0 || containers > lot.remaining {
            return Err(Reject::quantity_invalid(format!(
                "containers must be between 1 and the {} remaining",
                lot.remaining
            )));
        }
        if containers < lot.least_purchase() {
            return Err(Reject::quantity_invalid(format!(
                "containers must be at least the minimum purchase of {}",
                lot.least_purchase()
            )));
        }
        let units = lot.units_per_container as u64 * containers as u64;
        let amount = price.checked_mul(units).ok_or_else(|| Reject::quantity_invalid("amount is too large"))?;
        let fee =
            self.fees.checked_clock_fee(containers).ok_or_else(|| Reject::quantity_invalid("fee is too large"))?;
        let commission = self.fees.commission(amount);
        let cost = amount.checked_add(fee).ok_or_else(|| Reject::quantity_invalid("amount is too large"))?;
        self.participants.check_purchase(buyer, cost, "this purchase")?;

        let lot = self.lots.get_mut(&lot_id).expect("lot exists");
        lot.remaining -= containers;
        lot.sold += containers;
        lot.sales.amount.0 += amount.0;
        lot.sales.units += units;
        lot.check();
        let (grower, grower_id, product, grade, remaining) =
            (lot.grower, lot.grower_id, lot.product, lot.grade, lot.remaining);
        self.participants.buy(buyer, amount, fee);
        self.participants.account_mut(grower).sell(amount, commission);
        self.totals.trades += 1;
        self.totals.turnover.0 += amount.0;
        self.totals.fees.0 += fee.0 + commission.0;
        let awards = &mut self.clocks[index].awards;
        awards.push(AwardRecord { round, buyer, price, containers, voided: false, ts });
        out.push(Event::Awarded(Box::new(Award {
            clock: self.clocks[index].id,
            lot: lot_id,
            round,
            buyer,
            buyer_id: self.participants.get(buyer).id,
            grower,
            grower_id,
            product,
            grade,
            price,
            containers,
            units,
            amount,
            fee,
            commission,
            remaining,
            ts,
            standing,
        })));
        Ok(())
    }

    /// The round stopped on a sale at `price`: pause, and keep the price open for multi-buy.
    fn stop_round(&mut self, index: usize, price: Fen, ts: EngineTime, out: &mut Vec<Event>) {
        let clock = &mut self.clocks[index];
        let round = clock.round.expect("a stopped round").number;
        let multi_buy_until = ts.plus_ms(clock.settings.multi_buy_ms as u64);
        clock.stop = Some(Stop { round, price, multi_buy_until });
        clock.phase = ClockPhase::Pause;
        clock.phase_until = multi_buy_until.plus_ms(clock.settings.pause_ms as u64);
        out.push(Event::ClockState { clock: clock.id, phase: ClockPhase::Pause });
    }

    /// Takes the next lot of the supply line onto the clock (pre-roll), or leaves the clock idle.
    fn next_lot_on_clock(&mut self, index: usize, ts: EngineTime, out: &mut Vec<Event>) {
        self.dispatch_clock_awards(index);
        let clock = &mut self.clocks[index];
        clock.clear_lot();
        let Some(lot_id) = clock.supply_line.pop_front() else {
            clock.phase = ClockPhase::Idle;
            out.push(Event::ClockState { clock: clock.id, phase: ClockPhase::Idle });
            return;
        };
        clock.lot = Some(lot_id);
        clock.phase = ClockPhase::PreRoll;
        clock.phase_until = ts.plus_ms(clock.settings.pre_roll_ms as u64);
        let clock_id = clock.id;
        clock.published_next = clock.next_lots().collect();
        // What is left of a presale offer is auctioned now (protocol section 11).
        self.close_presale(lot_id, out);
        let next = self.clocks[index].published_next.iter().map(|id| self.lots[id].clone()).collect();
        let lot = self.lots.get_mut(&lot_id).expect("queued lot exists");
        lot.status = LotStatus::OnClock;
        let start_price = lot.start_price.expect("queued lots have a start price");
        out.push(Event::LotOnClock { clock: clock_id, lot: Box::new(lot.clone()), start_price, next });
        out.push(Event::ClockState { clock: clock_id, phase: ClockPhase::PreRoll });
    }

    fn start_round(&mut self, index: usize, start_price: Fen, ts: EngineTime, out: &mut Vec<Event>) {
        let clock = &mut self.clocks[index];
        let lot_id = clock.lot.expect("rounds need a lot");
        let lot = self.lots.get_mut(&lot_id).expect("lot on a clock exists");
        lot.rounds += 1;
        let round = Round {
            number: lot.rounds,
            start_price,
            start_ts: ts,
            step: clock.settings.step,
            tick_ms: clock.settings.tick_ms,
            min_price: lot.min_price,
        };
        clock.round = Some(round);
        clock.stop = None;
        clock.phase = ClockPhase::Running;
        out.push(Event::ClockState { clock: clock.id, phase: ClockPhase::Running });
        out.push(Event::ClockStarted {
            clock: clock.id,
            lot: lot_id,
            round: round.number,
            start_price,
            step: round.step,
            tick_ms: round.tick_ms,
            start_ts: ts,
            remaining: lot.remaining,
        });
    }

    /// When the earliest timer of clock `index` falls due, if it has one.
    fn clock_deadline(&self, index: usize) -> Option<EngineTime> {
        let clock = &self.clocks[index];
        match clock.phase {
            ClockPhase::Idle => self.planned_start(index),
            ClockPhase::PreRoll | ClockPhase::Pause => Some(clock.phase_until),
            ClockPhase::Running => {
                let round = clock.round.expect("running clocks have a round");
                let end = round.end_ts();
                let trigger = self.standing_trigger(clock.lot.expect("running clocks have a lot"), &round);
                Some(trigger.map_or(end, |t| t.min(end)))
            }
        }
    }

    /// The time at which the lot's earliest standing bid triggers in `round`, if any does.
    fn standing_trigger(&self, lot: LotId, round: &Round) -> Option<EngineTime> {
        let bids = self.standing_bids.get(&lot)?;
        bids.iter().filter_map(|b| trigger_time(b, round)).min()
    }

    /// The next engine time at which the core has something to do by itself.
    pub fn next_deadline(&self) -> Option<EngineTime> {
        (0..self.clocks.len()).filter_map(|i| self.clock_deadline(i)).min()
    }

    /// When the sequencer must next wake the core with a `Tick`: the next clock timer, or the
    /// moment held-back market data falls due (see `Market::market_data_due`).
    pub fn next_wake(&self) -> Option<EngineTime> {
        // A plan still placing lots goes on at once.
        let planning = self.planning.as_ref().map(|_| self.now);
        self.next_deadline().into_iter().chain(self.market_data_due).chain(planning).min()
    }

    /// Runs every timer due at or before `now`, earliest first (ties: lower clock number first).
    pub(crate) fn advance_clocks(&mut self, now: EngineTime, out: &mut Vec<Event>) {
        loop {
            let due = (0..self.clocks.len())
                .filter_map(|i| self.clock_deadline(i).map(|t| (t, i)))
                .filter(|(t, _)| *t <= now)
                .min();
            let Some((t, index)) = due else { return };
            self.fire(index, t, out);
        }
    }

    fn fire(&mut self, index: usize, t: EngineTime, out: &mut Vec<Event>) {
        let clock = &self.clocks[index];
        match clock.phase {
            ClockPhase::Idle => {
                // Only a planned start is due on an idle clock.
                self.clocks[index].started_on = Some(self.day);
                self.next_lot_on_clock(index, t, out);
            }
            ClockPhase::PreRoll => {
                let lot = &self.lots[&clock.lot.expect("pre-roll has a lot")];
                let start = lot.start_price.expect("queued lots have a start price");
                self.start_round(index, start, t, out);
            }
            ClockPhase::Pause => {
                let lot = &self.lots[&clock.lot.expect("pause has a lot")];
                if lot.remaining > 0 {
                    let stop = clock.stop.expect("a pause follows a stop");
                    // Saturating: `step` may be any positive price and `restart_ticks` up to a
                    // million, so the product can exceed i64; the start price caps it anyway.
                    let rise = (clock.settings.restart_ticks as i64).saturating_mul(clock.settings.step.0);
                    let restart = Fen(stop.price.0.saturating_add(rise));
                    let start = restart.min(lot.start_price.expect("queued lots have a start price"));
                    self.start_round(index, start, t, out);
                } else {
                    self.finish_lot(index, out);
                    self.next_lot_on_clock(index, t, out);
                }
            }
            ClockPhase::Running => {
                let round = clock.round.expect("running");
                if t >= round.end_ts() {
                    let lot = &self.lots[&clock.lot.expect("running has a lot")];
                    out.push(Event::LotUnsold {
                        clock: clock.id,
                        lot: lot.id,
                        grower: lot.grower,
                        round: round.number,
                        remaining: lot.remaining,
                        ts: t,
                    });
                    self.finish_lot(index, out);
                    self.next_lot_on_clock(index, t, out);
                } else {
                    self.trigger_standing_bids(index, round, t, out);
                }
            }
        }
    }

    fn finish_lot(&mut self, index: usize, _out: &mut Vec<Event>) {
        let lot_id = self.clocks[index].lot.expect("a lot to finish");
        self.lot_mut(lot_id).finish();
        self.standing_bids.remove(&lot_id);
    }

    /// The standing bids that trigger at `t`: highest `max_price` first, then the earliest placed.
    /// Each either wins (and stops the round) or fails and is dropped with a private error; with
    /// multi-buy the others triggered at the same tick are served at the same price.
    fn trigger_standing_bids(&mut self, index: usize, round: Round, t: EngineTime, out: &mut Vec<Event>) {
        let lot_id = self.clocks[index].lot.expect("running has a lot");
        let mut triggered: Vec<StandingBid> =
            self.standing_bids[&lot_id].iter().filter(|b| trigger_time(b, &round) == Some(t)).copied().collect();
        triggered.sort_by_key(|b| (std::cmp::Reverse(b.max_price), b.seq));
        let price = round.price_at(t);
        let multi_buy = self.clocks[index].settings.multi_buy_ms > 0;
        let mut stopped = false;
        for bid in triggered {
            if stopped && (!multi_buy || self.lots[&lot_id].remaining == 0) {
                break;
            }
            self.remove_standing_bid(lot_id, bid.buyer);
            let won = self
                .participants
                .authorise(Actor::Participant(bid.buyer), Role::Buyer)
                .and_then(|_| self.award(index, bid.buyer, bid.containers, price, t, true, out));
            match won {
                Ok(()) => {
                    if !stopped {
                        self.stop_round(index, price, t, out);
                        stopped = true;
                    }
                }
                Err(reject) => out.push(Event::StandingBidDropped { buyer: bid.buyer, lot: lot_id, reject }),
            }
        }
    }

    pub(crate) fn remove_standing_bid(&mut self, lot: LotId, buyer: Pk) -> Option<StandingBid> {
        let bids = self.standing_bids.get_mut(&lot)?;
        let position = bids.iter().position(|b| b.buyer == buyer)?;
        let bid = bids.remove(position);
        if bids.is_empty() {
            self.standing_bids.remove(&lot);
        }
        Some(bid)
    }

    pub(crate) fn place_standing_bid(
        &mut self,
        actor: Actor,
        lot_id: LotId,
        max_price: Fen,
        containers: u32,
        now: EngineTime,
        out: &mut Vec<Event>,
    ) -> Result<(), Reject> {
        let buyer = self.participants.authorise(actor, Role::Buyer)?.expect("buyers are participants");
        let lot = self.lot_ref(lot_id)?;
        if lot.status.is_finished() {
            return Err(Reject::invalid_state(format!("lot {} is already {}", lot_id.0, lot.status.as_str())));
        }
        if lot.grower == buyer {
            return Err(Reject::forbidden(format!("participant cannot buy its own lot {}", lot_id.0)));
        }
        if max_price.0 <= 0 {
            return Err(Reject::price_invalid("max_price must be positive"));
        }
        if containers == 0 || containers > lot.remaining || containers < lot.least_purchase() {
            return Err(Reject::quantity_invalid(format!(
                "containers must be between the minimum purchase {} and the {} remaining",
                lot.least_purchase(),
                lot.remaining
            )));
        }
        let units = lot.units_per_container as u64 * containers as u64;
        if max_price.checked_mul(units).is_none() {
            return Err(Reject::price_invalid("max_price × units is too large"));
        }
        let held = self
            .standing_bids
            .iter()
            .filter(|(lot, bids)| **lot != lot_id && bids.iter().any(|b| b.buyer == buyer))
            .count();
        check_room("standing_bids_per_buyer_max", self.limits.standing_bids_per_buyer_max, held as u64, 1)?;
        // A new standing bid replaces the buyer's earlier one on the same lot.
        self.remove_standing_bid(lot_id, buyer);
        let seq = self.next_standing_seq;
        self.next_standing_seq += 1;
        self.standing_bids.entry(lot_id).or_default().push(StandingBid {
            buyer,
            max_price,
            containers,
            seq,
            placed_at: now,
        });
        out.push(Event::StandingBidAccepted { buyer, lot: lot_id, max_price, containers });
        // Placed under a price already at or below its max: it triggers now.
        self.advance_clocks(now, out);
        Ok(())
    }

    pub(crate) fn cancel_standing_bid(
        &mut self,
        actor: Actor,
        lot_id: LotId,
        out: &mut Vec<Event>,
    ) -> Result<(), Reject> {
        let buyer = self.participants.authorise(actor, Role::Buyer)?.expect("buyers are participants");
        self.remove_standing_bid(lot_id, buyer)
            .ok_or_else(|| Reject::not_found(format!("no standing bid of yours on lot {}", lot_id.0)))?;
        out.push(Event::StandingBidCancelled { buyer, lot: lot_id });
        Ok(())
    }

    /// The standing bids on a lot, in placement order.
    pub fn standing_bids(&self, lot: LotId) -> &[StandingBid] {
        self.standing_bids.get(&lot).map_or(&[], |b| b.as_slice())
    }

    /// A clock by number.
    pub fn clock(&self, clock: ClockId) -> Option<&Clock> {
        self.clocks.get((clock.0 as usize).wrapping_sub(1))
    }
}

/// When a standing bid triggers in a round: at the first tick priced at or below its max, but not
/// before it was placed; never once the round has ended.
fn trigger_time(bid: &StandingBid, round: &Round) -> Option<EngineTime> {
    let ticks = round.trigger_ticks(bid.max_price)?;
    let t = round.tick_time(ticks).max(bid.placed_at);
    (round.is_live_at(t) && round.price_at(t) <= bid.max_price).then_some(t)
}

/// The dispatch line of a clock award of `lot`.
pub(crate) fn award_line(lot: &Lot, record: &AwardRecord, award: u32) -> DispatchLine {
    DispatchLine {
        reference: DispatchRef::Clock { lot: lot.id, round: record.round, award },
        buyer: record.buyer,
        seller: lot.grower,
        product: lot.product,
        grade: Some(lot.grade),
        quantity: record.containers as u64,
        units_per_container: lot.units_per_container,
        price: record.price,
        status: DispatchStatus::Awaiting,
        alarm: false,
        voided: false,
        temperature: None,
        updated: record.ts,
    }
}
