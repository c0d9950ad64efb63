//! Presales (protocol section 11): a grower sells part of a lot before it reaches the clock, at a
//! fixed price it sets. A lot has at most one open offer; its containers stay in `remaining` until
//! bought; a purchase is checked and charged like a clock purchase (credit, the minimum purchase,
//! the clock fee per container); the offer closes when the lot goes on the clock.

use crate::command::Actor;
use crate::core::dispatch::{DispatchLine, DispatchRef, DispatchStatus};
use crate::core::lots::{LotStatus, PresaleOffer};
use crate::core::market::Market;
use crate::core::participants::Role;
use crate::event::{Event, PresaleSale};
use crate::reject::Reject;
use crate::types::{EngineTime, Fen, LotId, Pk};

impl Market {
    /// A lot a presale may touch: today's, not on the clock and not finished.
    fn presale_lot(&self, lot_id: LotId) -> Result<&crate::core::lots::Lot, Reject> {
        let lot = self.lots.get(&lot_id).ok_or_else(|| Reject::not_found(format!("no lot {} today", lot_id.0)))?;
        match lot.status {
            LotStatus::Consigned | LotStatus::Queued => Ok(lot),
            LotStatus::OnClock => Err(Reject::invalid_state(format!(
                "lot {} is on the clock: presales close when a lot goes on the clock",
                lot_id.0
            ))),
            status => Err(Reject::invalid_state(format!("lot {} is already {}", lot_id.0, status.as_str()))),
        }
    }

    pub(crate) fn offer_presale(
        &mut self,
        actor: Actor,
        lot_id: LotId,
        price: Fen,
        containers: u32,
        out: &mut Vec<Event>,
    ) -> Result<(), Reject> {
        let grower = self.participants.authorise(actor, Role::Grower)?.expect("growers are participants");
        let lot = self.presale_lot(lot_id)?;
        if lot.grower != grower {
            return Err(Reject::forbidden(format!("lot {} is not yours", lot_id.0)));
        }
        if price.0 <= 0 {
            return Err(Reject::price_invalid("price must be positive"));
        }
        if containers == 0 || containers > lot.remaining {
            return Err(Reject::quantity_invalid(format!(
                "containers must be between 1 and the lot's {} remaining",
                lot.remaining
            )));
        }
        let units = lot.units_per_container as u64 * containers as u64;
        if price.checked_mul(units).is_none() {
            return Err(Reject::price_invalid("price × units is too large"));
        }
        // A new offer replaces the open one.
        let lot = self.lots.get_mut(&lot_id).expect("checked");
        lot.presale = Some(PresaleOffer { price, containers });
        lot.check();
        out.push(Event::PresaleOffered { lot: lot_id, grower, price, containers });
        Ok(())
    }

    pub(crate) fn buy_presale(
        &mut self,
        actor: Actor,
        lot_id: LotId,
        containers: u32,
        now: EngineTime,
        out: &mut Vec<Event>,
    ) -> Result<(), Reject> {
        let buyer = self.participants.authorise(actor, Role::Buyer)?.expect("buyers are participants");
        let lot = self.presale_lot(lot_id)?;
        if lot.grower == buyer {
            return Err(Reject::forbidden(format!("participant cannot buy its own lot {}", lot_id.0)));
        }
        let offer =
            lot.presale.ok_or_else(|| Reject::invalid_state(format!("lot {} has no open presale offer", lot_id.0)))?;
        let least = lot.min_purchase.min(offer.containers);
        if containers == 0 || containers > offer.containers || containers < least {
            return Err(Reject::quantity_invalid(format!(
                "containers must be between the minimum purchase {least} and the {} offered",
                offer.containers
            )));
        }
        let units = lot.units_per_container as u64 * containers as u64;
        let amount = offer.price.checked_mul(units).ok_or_else(|| Reject::quantity_invalid("amount is too large"))?;
        let fee =
            self.fees.checked_clock_fee(containers).ok_or_else(|| Reject::quantity_invalid("fee is too large"))?;
        let commission = self.fees.commission(amount);
        let cost = amount.checked_add(fee).ok_or_else(|| Reject::quantity_invalid("amount is too large"))?;
        self.participants.check_purchase(buyer, cost, "this presale purchase")?;

        let lot = self.lots.get_mut(&lot_id).expect("checked");
        let offer_left = offer.containers - containers;
        lot.presale = (offer_left > 0).then_some(PresaleOffer { price: offer.price, containers: offer_left });
        lot.remaining -= containers;
        lot.sold += containers;
        lot.sales.amount.0 += amount.0;
        lot.sales.units += units;
        lot.presales += 1;
        lot.check();
        let sale = PresaleSale {
            lot: lot_id,
            number: lot.presales,
            buyer,
            buyer_id: self.participants.get(buyer).id,
            grower: lot.grower,
            grower_id: lot.grower_id,
            product: lot.product,
            grade: lot.grade,
            price: offer.price,
            containers,
            units,
            amount,
            fee,
            commission,
            offer_left,
            remaining: lot.remaining,
            ts: now,
        };
        if lot.remaining == 0 {
            // Sold out before the clock: it leaves its supply line and its standing bids.
            lot.finish();
            let clock = lot.clock;
            if let Some(clock) = clock {
                self.clocks[clock.0 as usize - 1].supply_line.retain(|l| *l != lot_id);
                self.lines_changed = true;
            }
            self.standing_bids.remove(&lot_id);
            self.waiting.remove(&lot_id);
        }
        self.participants.buy(buyer, amount, fee);
        self.participants.account_mut(sale.grower).sell(amount, commission);
        self.totals.trades += 1;
        self.totals.turnover.0 += amount.0;
        self.totals.fees.0 += fee.0 + commission.0;
        self.dispatch.append(DispatchLine {
            reference: DispatchRef::Presale { lot: lot_id, number: sale.number },
            buyer,
            seller: sale.grower,
            product: sale.product,
            grade: Some(sale.grade),
            quantity: containers as u64,
            units_per_container: (units / containers as u64) as u32,
            price: sale.price,
            status: DispatchStatus::Awaiting,
            alarm: false,
            voided: false,
            temperature: None,
            updated: now,
        });
        out.push(Event::PresaleBought(Box::new(sale)));
        Ok(())
    }

    pub(crate) fn withdraw_presale(&mut self, actor: Actor, lot_id: LotId, out: &mut Vec<Event>) -> Result<(), Reject> {
        let grower = self.participants.authorise(actor, Role::Grower)?.expect("growers are participants");
        let lot = self.lots.get(&lot_id).ok_or_else(|| Reject::not_found(format!("no lot {} today", lot_id.0)))?;
        if lot.grower != grower {
            return Err(Reject::forbidden(format!("lot {} is not yours", lot_id.0)));
        }
        let offer =
            lot.presale.ok_or_else(|| Reject::not_found(format!("lot {} has no open presale offer", lot_id.0)))?;
        self.lots.get_mut(&lot_id).expect("checked").presale = None;
        out.push(Event::PresaleWithdrawn { lot: lot_id, grower, price: offer.price, containers: offer.containers });
        Ok(())
    }

    /// Closes a lot's open offer: it went on the clock, or was withdrawn.
    pub(crate) fn close_presale(&mut self, lot_id: LotId, out: &mut Vec<Event>) {
        let lot = self.lots.get_mut(&lot_id).expect("lot exists");
        if let Some(offer) = lot.presale.take() {
            out.push(Event::PresaleClosed {
                lot: lot_id,
                grower: lot.grower,
                price: offer.price,
                containers: offer.containers,
            });
        }
    }

    /// A suspended grower's open offers are withdrawn (protocol section 4).
    pub(crate) fn withdraw_presales_of(&mut self, grower: Pk, out: &mut Vec<Event>) {
        for lot in self.lots.values_mut().filter(|l| l.grower == grower) {
            if let Some(offer) = lot.presale.take() {
                out.push(Event::PresaleWithdrawn {
                    lot: lot.id,
                    grower,
                    price: offer.price,
                    containers: offer.containers,
                });
            }
        }
    }

    /// `get_standing_bids`: a buyer's own; a firm's include its seats'. As (lot, bid).
    pub fn standing_bids_of(&self, buyer: Pk) -> Vec<(LotId, crate::core::standing_bid::StandingBid)> {
        let participants = &self.participants;
        let mine = |pk: Pk| pk == buyer || participants.get(pk).firm == Some(buyer);
        self.standing_bids
            .iter()
            .flat_map(|(lot, bids)| bids.iter().filter(|b| mine(b.buyer)).map(move |b| (*lot, *b)))
            .collect()
    }
}
