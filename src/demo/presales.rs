//! Presales (protocol section 11): before the clocks start, some growers offer part of a lot at
//! a fixed price of their own, and buyers who value the lot above that price take containers of
//! it — certainty of supply for the buyer, of price for the grower. What nobody takes stays in
//! the lot and is auctioned: the offer closes when the lot goes on the clock.

use super::buyers::Buyer;
use super::client::{unexpected, Rejected};
use super::growers::{ConsignedLot, Grower};
use super::money::Fen;
use super::prices::PriceBoard;
use rand::seq::SliceRandom;
use rand::Rng;
use serde_json::json;
use std::sync::{Arc, Mutex};

/// About one lot in this many is offered for presale.
const OFFER_EVERY: f64 = 3.5;
/// The share of a lot's containers offered, and the price asked as a share of the cell's fair
/// price today: a little above it, the price of a sure purchase.
const OFFER_SHARE: (f64, f64) = (0.25, 0.45);
const PRICE_SHARE: (f64, f64) = (0.97, 1.08);
/// Buyers who look at one offer before it is left to the clock.
const TAKERS_MAX: usize = 4;

/// An open presale offer.
#[derive(Clone, Debug)]
pub struct Offer {
    pub lot: ConsignedLot,
    pub price: Fen,
    pub containers: u32,
}

/// One presale purchase, as `presale_bought` told the buyer.
#[derive(Clone, Debug)]
pub struct Sale {
    pub buyer: &'static str,
    pub containers: u32,
    pub units: u64,
    pub amount: Fen,
    pub fee: Fen,
}

/// An offer and what was bought of it.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub offer: Offer,
    pub sales: Vec<Sale>,
}

/// Growers offer part of some of their planned lots; returns the offers the market took.
pub async fn offer(
    growers: &[Grower],
    lots: &[ConsignedLot],
    prices: &Mutex<PriceBoard>,
    rng: &mut impl Rng,
) -> Vec<Offer> {
    let mut offers = Vec::new();
    for lot in lots {
        if lot.containers < 4 || !rng.gen_bool(1.0 / OFFER_EVERY) {
            continue;
        }
        let Some(grower) = growers.get(lot.grower) else { continue };
        let fair = prices.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).fair(lot.cell);
        let price = Fen::from_cny(fair * rng.gen_range(PRICE_SHARE.0..PRICE_SHARE.1)).max(lot.reserve);
        let share = rng.gen_range(OFFER_SHARE.0..OFFER_SHARE.1);
        let containers = ((lot.containers as f64 * share).round() as u32).clamp(lot.min_purchase, lot.containers - 1);
        let msg =
            json!({"type": "offer_presale", "lot_id": lot.lot_id, "price": price.json(), "containers": containers});
        let Some(reply) = grower.session.expect(msg.clone(), "presale_offered").await else { continue };
        if reply["lot_id"] != lot.lot_id || Fen::of(&reply["price"]) != Some(price) || reply["containers"] != containers
        {
            tracing::warn!(request = %msg, reply = %reply, "presale_offered does not match the offer");
            continue;
        }
        offers.push(Offer { lot: lot.clone(), price, containers });
    }
    offers
}

/// Buyers look at each offer in turn, a few in random order, and buy what they want of it.
pub async fn take(buyers: &[Arc<Buyer>], offers: Vec<Offer>, rng: &mut impl Rng) -> Vec<Outcome> {
    let mut outcomes = Vec::with_capacity(offers.len());
    for offer in offers {
        let mut left = offer.containers;
        let mut sales = Vec::new();
        let mut lookers: Vec<&Arc<Buyer>> = buyers.iter().collect();
        lookers.shuffle(rng);
        for buyer in lookers.into_iter().take(TAKERS_MAX) {
            if left == 0 {
                break;
            }
            let Some(containers) = buyer.presale_wish(&offer.lot, offer.price, left) else { continue };
            let msg = json!({"type": "buy_presale", "lot_id": offer.lot.lot_id, "containers": containers});
            match buyer.session.request(msg.clone()).await {
                Ok(reply) if reply["type"] == "presale_bought" => {
                    let sale = Sale {
                        buyer: buyer.spec.id,
                        containers: reply["containers"].as_u64().unwrap_or(0) as u32,
                        units: reply["units"].as_u64().unwrap_or(0),
                        amount: Fen::of(&reply["amount"]).unwrap_or(Fen::ZERO),
                        fee: Fen::of(&reply["fee"]).unwrap_or(Fen::ZERO),
                    };
                    let units = containers as u64 * offer.lot.units_per_container as u64;
                    if Fen::of(&reply["price"]) != Some(offer.price)
                        || sale.containers != containers
                        || sale.units != units
                    {
                        tracing::warn!(request = %msg, reply = %reply, "presale_bought does not match the offer");
                    }
                    buyer.bought_presale(offer.lot.cell, &sale);
                    left = left.saturating_sub(sale.containers);
                    sales.push(sale);
                }
                Ok(reply) => tracing::warn!(request = %msg, reply = %reply, "unexpected reply to buy_presale"),
                Err(rejected) => refused(buyer, &msg, &rejected).await,
            }
        }
        outcomes.push(Outcome { offer, sales });
    }
    outcomes
}

/// A purchase the market refused: credit is the buyer's own business (a seat learns its daily
/// limit this way); anything else is a surprise.
async fn refused(buyer: &Buyer, msg: &serde_json::Value, rejected: &Rejected) {
    if rejected.is("credit_limit") {
        buyer.credit_refused(rejected);
        buyer.refresh_available().await;
    } else {
        unexpected(buyer.spec.id, msg, rejected);
    }
}

impl Outcome {
    pub fn containers_sold(&self) -> u32 {
        self.sales.iter().map(|s| s.containers).sum()
    }

    pub fn amount(&self) -> Fen {
        self.sales.iter().fold(Fen::ZERO, |sum, s| sum + s.amount)
    }
}
