//! The continuous books (protocol section 7) in the simulated morning: growers sell standard
//! products (ROSE-A, LILY-A, PHALAENOPSIS-A) and wholesalers and hotel chains buy them, with
//! limit orders around the day's fair price. Orders rest while the operator holds the books in
//! `pre_open`, the opening call uncrosses them, then orders keep arriving — some resting, some
//! taking what rests — until the operator closes the books. Every order is a `day` order.

use super::buyers::Buyer;
use super::client::{unexpected, Session};
use super::growers::Grower;
use super::money::Fen;
use super::prices::PriceBoard;
use super::products::{best_grade, book_product, BOOKS};
use rand::seq::SliceRandom;
use rand::Rng;
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Orders stay this far inside the 20 % price band around the reference.
const BAND_SHARE: f64 = 0.15;

pub struct BooksDesk {
    growers: Arc<Vec<Grower>>,
    buyers: Arc<Vec<Arc<Buyer>>>,
    prices: Arc<Mutex<PriceBoard>>,
    /// Makes client order ids unique across runs on the same day.
    nonce: u32,
    next_order: AtomicU64,
}

/// Units per order, and the step they come in, per book.
fn lot_size(symbol: &str) -> (u64, u64, u64) {
    match symbol {
        "ROSE-A" => (200, 1_500, 50),
        "LILY-A" => (100, 600, 20),
        _ => (10, 80, 2),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Buy,
    Sell,
}

impl BooksDesk {
    pub fn new(
        growers: Arc<Vec<Grower>>,
        buyers: Arc<Vec<Arc<Buyer>>>,
        prices: Arc<Mutex<PriceBoard>>,
        nonce: u32,
    ) -> BooksDesk {
        BooksDesk { growers, buyers, prices, nonce, next_order: AtomicU64::new(0) }
    }

    fn prices(&self) -> std::sync::MutexGuard<'_, PriceBoard> {
        self.prices.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The orders that rest before the opening call: a few on each side of each book, priced so
    /// that some cross and the call prints.
    pub async fn opening_orders(&self, rng: &mut impl Rng) -> usize {
        let mut placed = 0;
        for symbol in BOOKS {
            for _ in 0..rng.gen_range(2..=4) {
                placed += usize::from(self.order(symbol, Side::Sell, rng.gen_range(0.98..1.06), "day", rng).await);
                placed += usize::from(self.order(symbol, Side::Buy, rng.gen_range(0.94..1.02), "day", rng).await);
            }
        }
        placed
    }

    /// One order during continuous trading: usually a resting one, sometimes one that takes
    /// liquidity (an `ioc` priced through the touch).
    pub async fn next_order(&self, rng: &mut impl Rng) -> bool {
        let symbol = BOOKS[rng.gen_range(0..BOOKS.len())];
        let side = if rng.gen_bool(0.5) { Side::Buy } else { Side::Sell };
        if rng.gen_bool(0.35) {
            let through = if side == Side::Buy { 1.05 } else { 0.95 };
            self.order(symbol, side, through, "ioc", rng).await
        } else {
            let share = if side == Side::Buy { rng.gen_range(0.94..1.0) } else { rng.gen_range(1.0..1.06) };
            self.order(symbol, side, share, "day", rng).await
        }
    }

    /// Places one limit order at `share` of the fair price, from a random participant who may
    /// take that side; true if the market accepted it.
    async fn order(&self, symbol: &str, side: Side, share: f64, time_in_force: &str, rng: &mut impl Rng) -> bool {
        let Some(product) = book_product(symbol) else { return false };
        let (price, reference) = {
            let prices = self.prices();
            let cell = (product.code, best_grade(product));
            (prices.fair(cell) * share, prices.last_trade(symbol).or_else(|| prices.recent(cell)))
        };
        let mut price = Fen::from_cny(price);
        if let Some(reference) = reference {
            let band = (reference.0 as f64 * BAND_SHARE) as i64;
            price = Fen(price.0.clamp(reference.0 - band, reference.0 + band));
        }
        if price.0 <= 0 {
            return false;
        }
        let (least, most, step) = lot_size(symbol);
        let quantity = least + step * rng.gen_range(0..=(most - least) / step);
        let (session, buyer): (&Session, Option<&Buyer>) = match side {
            Side::Sell => {
                let sellers: Vec<&Grower> =
                    self.growers.iter().filter(|g| g.spec.products.contains(&product.code)).collect();
                let Some(&grower) = sellers.choose(rng) else { return false };
                (&grower.session, None)
            }
            Side::Buy => {
                let bidders: Vec<&Buyer> = self
                    .buyers
                    .iter()
                    .map(|b| b.as_ref())
                    .filter(|b| b.spec.kind.trades_books() && b.spec.kind.products().contains(&product.code))
                    .collect();
                let Some(&buyer) = bidders.choose(rng) else { return false };
                (&buyer.session, Some(buyer))
            }
        };
        // A buy order holds its price × quantity plus the largest fee it can incur.
        let hold = price.times(quantity) + Fen((price.0 + 999) / 1000 * quantity as i64);
        if let Some(buyer) = buyer {
            if hold > buyer.available() {
                return false;
            }
        }
        let n = self.next_order.fetch_add(1, Ordering::Relaxed);
        let msg = json!({
            "type": "new_order",
            "client_order_id": format!("demo{:08x}-{n}", self.nonce),
            "symbol": symbol,
            "side": if side == Side::Buy { "buy" } else { "sell" },
            "order_type": "limit",
            "price": price.json(),
            "quantity": quantity,
            "time_in_force": time_in_force,
        });
        match session.request(msg.clone()).await {
            Ok(reply) if reply["type"] == "order_accepted" => {
                if let Some(buyer) = buyer {
                    // The order holds credit and may have filled: read the account again rather
                    // than track every fill.
                    buyer.refresh_available().await;
                }
                true
            }
            Ok(reply) => {
                tracing::warn!(who = %session.who, request = %msg, reply = %reply, "unexpected reply to new_order");
                false
            }
            // The band moved under a stale reference, or credit was held elsewhere: a real desk
            // shrugs and tries again later.
            Err(rejected) if rejected.is("price_invalid") || rejected.is("credit_limit") => {
                tracing::debug!(who = %session.who, request = %msg, error = %rejected, "order refused");
                false
            }
            Err(rejected) => {
                unexpected(&session.who, &msg, &rejected);
                false
            }
        }
    }
}
