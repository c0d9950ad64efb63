//! Validation of new orders and amends: what a command must satisfy before it may touch the
//! book (tick, band, post-only, state), and the limit a market order trades within.

use super::matching::crosses;
use super::{BookReject, BookState, NewOrder, OrderBook, OrderType, QUANTITY_MAX};
use crate::types::{Fen, Side};

impl OrderBook {
    /// Checks a new order; returns the limit it matches with.
    pub(super) fn check_new(&self, order: &NewOrder) -> Result<i64, BookReject> {
        if self.state == BookState::Closed {
            return Err(BookReject::NotOpen);
        }
        if order.quantity == 0 {
            return Err(BookReject::QuantityZero);
        }
        if order.quantity > QUANTITY_MAX {
            return Err(BookReject::QuantityTooLarge);
        }
        match (order.order_type, order.price) {
            (OrderType::Limit, None) => return Err(BookReject::MissingPrice),
            (OrderType::Market, Some(_)) => return Err(BookReject::UnexpectedPrice),
            _ => {}
        }
        if self.state == BookState::PreOpen && (order.order_type == OrderType::Market || !order.tif.rests()) {
            return Err(BookReject::NotOpen);
        }
        let limit = match order.price {
            Some(price) => {
                self.check_price(price)?;
                price.0
            }
            None => self.market_limit(order.side),
        };
        if self.index.get(order.id.0, &self.arena).is_some() {
            return Err(BookReject::DuplicateOrderId);
        }
        if order.post_only && (order.order_type == OrderType::Market || self.crosses_opposite(order.side, limit)) {
            return Err(BookReject::PostOnlyWouldTrade);
        }
        Ok(limit)
    }

    #[inline]
    pub(super) fn check_price(&self, price: Fen) -> Result<(), BookReject> {
        if price.0 <= 0 {
            return Err(BookReject::PriceNotPositive);
        }
        if self.tick != 1 && price.0 % self.tick != 0 {
            return Err(BookReject::PriceOffTick);
        }
        if !self.in_band(price.0) {
            return Err(BookReject::PriceOutOfBand);
        }
        Ok(())
    }

    /// |p − r| × 100 ≤ band × r, in integers.
    #[inline]
    fn in_band(&self, price: i64) -> bool {
        match (self.band_pct, self.reference_price()) {
            (0, _) | (_, None) => true,
            (band, Some(reference)) => {
                let distance = (i128::from(price) - i128::from(reference.0)).abs();
                distance * 100 <= i128::from(band) * i128::from(reference.0)
            }
        }
    }

    /// The worst price a market order may trade at: the band's edge, or no limit at all.
    pub(super) fn market_limit(&self, side: Side) -> i64 {
        match (self.band_pct, self.reference_price()) {
            (0, _) | (_, None) => match side {
                Side::Buy => i64::MAX,
                Side::Sell => i64::MIN,
            },
            (band, Some(reference)) => {
                // For integers, (p − r) × 100 ≤ band × r ⇔ p − r ≤ ⌊band × r / 100⌋.
                let r = i128::from(reference.0);
                let width = r * i128::from(band) / 100;
                let edge = match side {
                    Side::Buy => r + width,
                    Side::Sell => r - width,
                };
                i64::try_from(edge).unwrap_or(i64::MAX)
            }
        }
    }

    pub(super) fn crosses_opposite(&self, side: Side, price: i64) -> bool {
        let best = self.ladder(side.opposite()).best_price();
        best.is_some_and(|best| crosses(side, best, price))
    }
}
