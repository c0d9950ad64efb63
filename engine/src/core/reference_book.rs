//! A naive order book with the rules of [`OrderBook`](super::book::OrderBook), written as plainly
//! as possible: one `Vec` of resting orders, linear scans, sorting on demand, brute force for the
//! call auction. It exists to be obviously right: the differential test runs both books on the
//! same commands and requires identical events and equal state hashes. Never use it to trade.

use super::book::{
    BookEvent, BookHasher, BookHeader, BookReject, BookState, DoneReason, NewOrder, OrderType, OrderView, RestingOrder,
    TimeInForce, QUANTITY_MAX,
};
use crate::types::{Fen, OrderId, Pk, Side};

#[derive(Clone, Debug)]
pub struct ReferenceBook {
    header: BookHeader,
    /// Resting orders in no particular order; priority is computed when needed.
    orders: Vec<RestingOrder>,
}

/// Whether `a` comes before `b` on the same side: better price, then earlier placement.
fn ahead(a: &RestingOrder, b: &RestingOrder) -> bool {
    if a.price != b.price {
        return match a.side {
            Side::Buy => a.price > b.price,
            Side::Sell => a.price < b.price,
        };
    }
    a.seq < b.seq
}

/// Whether a taker on `side` limited at `limit` may trade at `price`.
fn acceptable(side: Side, price: i64, limit: i64) -> bool {
    match side {
        Side::Buy => price <= limit,
        Side::Sell => price >= limit,
    }
}

impl ReferenceBook {
    pub fn new(tick: Fen, band_pct: u32) -> ReferenceBook {
        assert!(tick.0 > 0);
        let header =
            BookHeader { tick, band_pct, state: BookState::Closed, last_trade: None, last_close: None, next_seq: 0 };
        ReferenceBook { header, orders: Vec::new() }
    }

    pub fn state(&self) -> BookState {
        self.header.state
    }

    pub fn reference_price(&self) -> Option<Fen> {
        self.header.last_trade.or(self.header.last_close)
    }

    pub fn last_trade(&self) -> Option<Fen> {
        self.header.last_trade
    }

    pub fn last_close(&self) -> Option<Fen> {
        self.header.last_close
    }

    pub fn resting_count(&self) -> usize {
        self.orders.len()
    }

    pub fn set_state(&mut self, state: BookState, out: &mut Vec<BookEvent>) {
        if state == BookState::Open && self.header.state != BookState::Open {
            while let Some(price) = self.auction_price() {
                self.call(price, out);
            }
        }
        self.header.state = state;
    }

    pub fn submit(&mut self, order: NewOrder, out: &mut Vec<BookEvent>) -> Result<(), BookReject> {
        let state = self.header.state;
        if state == BookState::Closed {
            return Err(BookReject::NotOpen);
        }
        if order.quantity == 0 {
            return Err(BookReject::QuantityZero);
        }
        if order.quantity > QUANTITY_MAX {
            return Err(BookReject::QuantityTooLarge);
        }
        if order.order_type == OrderType::Limit && order.price.is_none() {
            return Err(BookReject::MissingPrice);
        }
        if order.order_type == OrderType::Market && order.price.is_some() {
            return Err(BookReject::UnexpectedPrice);
        }
        let rests = matches!(order.tif, TimeInForce::Gtc | TimeInForce::Day);
        if state == BookState::PreOpen && (order.order_type == OrderType::Market || !rests) {
            return Err(BookReject::NotOpen);
        }
        if let Some(price) = order.price {
            self.check_price(price)?;
        }
        if self.position(order.id).is_some() {
            return Err(BookReject::DuplicateOrderId);
        }
        if order.post_only {
            let crosses = order.price.is_some_and(|p| self.crosses_opposite(order.side, p.0));
            if order.order_type == OrderType::Market || crosses {
                return Err(BookReject::PostOnlyWouldTrade);
            }
        }
        let done = |reason, cancelled| BookEvent::Done {
            order: order.id,
            owner: order.owner,
            side: order.side,
            reason,
            cancelled,
        };
        if state == BookState::PreOpen {
            self.place(order, order.price.unwrap().0, order.quantity, out);
            return Ok(());
        }
        let limit = order.price.map(|p| p.0);
        if order.tif == TimeInForce::Fok {
            let available: u64 = self
                .orders
                .iter()
                .filter(|o| o.side != order.side && o.owner != order.owner)
                .filter(|o| self.taker_accepts(order.side, limit, o.price.0, self.reference_price()))
                .map(|o| o.leaves)
                .sum();
            if available < order.quantity {
                out.push(done(DoneReason::Cancelled, order.quantity));
                return Ok(());
            }
        }
        let remaining = self.take(order.id, order.owner, order.side, limit, order.quantity, out);
        if remaining == 0 {
            out.push(done(DoneReason::Filled, 0));
        } else if order.order_type == OrderType::Limit && rests {
            self.place(order, order.price.unwrap().0, remaining, out);
        } else {
            out.push(done(DoneReason::Cancelled, remaining));
        }
        Ok(())
    }

    pub fn cancel(&mut self, id: OrderId, out: &mut Vec<BookEvent>) -> Result<(), BookReject> {
        let pos = self.position(id).ok_or(BookReject::UnknownOrder)?;
        self.remove(pos, DoneReason::Cancelled, out);
        Ok(())
    }

    pub fn amend(
        &mut self,
        id: OrderId,
        price: Option<Fen>,
        leaves: Option<u64>,
        out: &mut Vec<BookEvent>,
    ) -> Result<(), BookReject> {
        if self.header.state == BookState::Closed {
            return Err(BookReject::NotOpen);
        }
        let pos = self.position(id).ok_or(BookReject::UnknownOrder)?;
        if leaves == Some(0) {
            return Err(BookReject::QuantityZero);
        }
        if leaves.is_some_and(|q| q > QUANTITY_MAX) {
            return Err(BookReject::QuantityTooLarge);
        }
        let order = self.orders[pos];
        if let Some(p) = price {
            self.check_price(p)?;
            if order.post_only && self.crosses_opposite(order.side, p.0) {
                return Err(BookReject::PostOnlyWouldTrade);
            }
        }
        let new_price = price.unwrap_or(order.price);
        let new_leaves = leaves.unwrap_or(order.leaves);
        if new_price == order.price {
            if new_leaves < order.leaves {
                self.orders[pos].leaves = new_leaves;
                self.push_level(order.side, order.price.0, out);
            } else if new_leaves > order.leaves {
                self.orders.remove(pos);
                let requeued = RestingOrder { leaves: new_leaves, seq: self.take_seq(), ..order };
                self.orders.push(requeued);
                self.push_level(order.side, order.price.0, out);
            }
            return Ok(());
        }
        self.orders.remove(pos);
        self.push_level(order.side, order.price.0, out);
        let remaining = if self.header.state == BookState::Open {
            self.take(id, order.owner, order.side, Some(new_price.0), new_leaves, out)
        } else {
            new_leaves
        };
        if remaining == 0 {
            out.push(BookEvent::Done {
                order: id,
                owner: order.owner,
                side: order.side,
                reason: DoneReason::Filled,
                cancelled: 0,
            });
        } else {
            let moved = RestingOrder { price: new_price, leaves: remaining, seq: self.take_seq(), ..order };
            self.orders.push(moved);
            self.push_level(order.side, new_price.0, out);
        }
        Ok(())
    }

    pub fn cancel_owner(&mut self, owner: Pk, out: &mut Vec<BookEvent>) -> usize {
        let mut ids: Vec<OrderId> = self.orders.iter().filter(|o| o.owner == owner).map(|o| o.id).collect();
        ids.sort();
        for &id in &ids {
            let pos = self.position(id).unwrap();
            self.remove(pos, DoneReason::Cancelled, out);
        }
        ids.len()
    }

    pub fn end_of_day(&mut self, out: &mut Vec<BookEvent>) {
        let mut ids: Vec<OrderId> = self.orders.iter().filter(|o| o.tif == TimeInForce::Day).map(|o| o.id).collect();
        ids.sort();
        for id in ids {
            let pos = self.position(id).unwrap();
            self.remove(pos, DoneReason::Expired, out);
        }
        if self.header.last_trade.is_some() {
            self.header.last_close = self.header.last_trade;
            self.header.last_trade = None;
        }
    }

    pub fn order(&self, id: OrderId) -> Option<OrderView> {
        self.position(id).map(|pos| view(&self.orders[pos]))
    }

    pub fn orders_of(&self, owner: Pk) -> Vec<OrderView> {
        let mut views: Vec<OrderView> = self.orders.iter().filter(|o| o.owner == owner).map(view).collect();
        views.sort_by_key(|v| v.id);
        views
    }

    pub fn best(&self, side: Side) -> Option<Fen> {
        self.in_priority(side).first().map(|o| o.price)
    }

    pub fn depth(&self, side: Side, levels_max: usize) -> Vec<(Fen, u64)> {
        let mut levels: Vec<(Fen, u64)> = Vec::new();
        for order in self.in_priority(side) {
            match levels.last_mut() {
                Some((price, qty)) if *price == order.price => *qty += order.leaves,
                _ => levels.push((order.price, order.leaves)),
            }
        }
        levels.truncate(levels_max);
        levels
    }

    pub fn preview(&self, owner: Pk, side: Side, limit: Option<Fen>, quantity: u64) -> (u64, Fen) {
        if self.header.state != BookState::Open {
            return (0, Fen(0));
        }
        let (mut filled, mut amount) = (0u64, 0i128);
        for maker in self.in_priority(side.opposite()) {
            let reference = self.reference_price();
            if filled == quantity || !self.taker_accepts(side, limit.map(|p| p.0), maker.price.0, reference) {
                break;
            }
            if maker.owner != owner {
                let q = maker.leaves.min(quantity - filled);
                filled += q;
                amount += i128::from(maker.price.0) * i128::from(q);
            }
        }
        (filled, Fen(i64::try_from(amount).unwrap_or(i64::MAX)))
    }

    pub fn state_hash(&self) -> u64 {
        let mut hasher = BookHasher::new(&self.header);
        for side in [Side::Buy, Side::Sell] {
            for order in self.in_priority(side) {
                hasher.order(&order);
            }
        }
        hasher.finish()
    }

    // ---- helpers ----

    fn position(&self, id: OrderId) -> Option<usize> {
        self.orders.iter().position(|o| o.id == id)
    }

    fn in_priority(&self, side: Side) -> Vec<RestingOrder> {
        let mut orders: Vec<RestingOrder> = self.orders.iter().filter(|o| o.side == side).copied().collect();
        orders.sort_by(|a, b| {
            if ahead(a, b) {
                std::cmp::Ordering::Less
            } else if ahead(b, a) {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        });
        orders
    }

    fn level_quantity(&self, side: Side, price: i64) -> u64 {
        self.orders.iter().filter(|o| o.side == side && o.price.0 == price).map(|o| o.leaves).sum()
    }

    fn push_level(&self, side: Side, price: i64, out: &mut Vec<BookEvent>) {
        out.push(BookEvent::Level { side, price: Fen(price), quantity: self.level_quantity(side, price) });
    }

    fn take_seq(&mut self) -> u64 {
        self.header.next_seq += 1;
        self.header.next_seq - 1
    }

    fn check_price(&self, price: Fen) -> Result<(), BookReject> {
        if price.0 <= 0 {
            return Err(BookReject::PriceNotPositive);
        }
        if price.0 % self.header.tick.0 != 0 {
            return Err(BookReject::PriceOffTick);
        }
        if let (true, Some(r)) = (self.header.band_pct > 0, self.reference_price()) {
            let distance = (i128::from(price.0) - i128::from(r.0)).abs();
            if distance * 100 > i128::from(self.header.band_pct) * i128::from(r.0) {
                return Err(BookReject::PriceOutOfBand);
            }
        }
        Ok(())
    }

    fn crosses_opposite(&self, side: Side, price: i64) -> bool {
        self.orders.iter().any(|o| o.side != side && acceptable(side, o.price.0, price))
    }

    /// Whether a taker may trade at `price`: within its limit, or for a market order (`None`)
    /// no further than the band from `reference` (the reference price when the command arrived)
    /// on its unfavourable side.
    fn taker_accepts(&self, side: Side, limit: Option<i64>, price: i64, reference: Option<Fen>) -> bool {
        match limit {
            Some(limit) => acceptable(side, price, limit),
            None => match (self.header.band_pct, reference) {
                (0, _) | (_, None) => true,
                (band, Some(r)) => {
                    let worse_by = match side {
                        Side::Buy => i128::from(price) - i128::from(r.0),
                        Side::Sell => i128::from(r.0) - i128::from(price),
                    };
                    worse_by * 100 <= i128::from(band) * i128::from(r.0)
                }
            },
        }
    }

    /// Puts an order at the back of its level.
    fn place(&mut self, order: NewOrder, price: i64, leaves: u64, out: &mut Vec<BookEvent>) {
        let seq = self.take_seq();
        self.orders.push(RestingOrder {
            id: order.id,
            owner: order.owner,
            side: order.side,
            price: Fen(price),
            leaves,
            tif: order.tif,
            post_only: order.post_only,
            seq,
        });
        self.push_level(order.side, price, out);
    }

    fn remove(&mut self, pos: usize, reason: DoneReason, out: &mut Vec<BookEvent>) {
        let order = self.orders.remove(pos);
        out.push(BookEvent::Done {
            order: order.id,
            owner: order.owner,
            side: order.side,
            reason,
            cancelled: order.leaves,
        });
        self.push_level(order.side, order.price.0, out);
    }

    /// Continuous matching of an incoming order; returns what is left. A `Level` event goes out
    /// whenever matching leaves a price level it touched.
    fn take(
        &mut self,
        id: OrderId,
        owner: Pk,
        side: Side,
        limit: Option<i64>,
        mut remaining: u64,
        out: &mut Vec<BookEvent>,
    ) -> u64 {
        let maker_side = side.opposite();
        let reference = self.reference_price();
        let mut level: Option<i64> = None;
        while remaining > 0 {
            let Some(maker) = self.in_priority(maker_side).into_iter().next() else { break };
            if !self.taker_accepts(side, limit, maker.price.0, reference) {
                break;
            }
            if level != Some(maker.price.0) {
                if let Some(done) = level {
                    self.push_level(maker_side, done, out);
                }
                level = Some(maker.price.0);
            }
            let pos = self.position(maker.id).unwrap();
            if maker.owner == owner {
                self.orders.remove(pos);
                out.push(BookEvent::Done {
                    order: maker.id,
                    owner,
                    side: maker_side,
                    reason: DoneReason::SelfTrade,
                    cancelled: maker.leaves,
                });
                continue;
            }
            let quantity = maker.leaves.min(remaining);
            remaining -= quantity;
            self.orders[pos].leaves -= quantity;
            self.header.last_trade = Some(maker.price);
            out.push(BookEvent::Fill {
                price: maker.price,
                quantity,
                maker: maker.id,
                maker_owner: maker.owner,
                maker_side,
                maker_leaves: maker.leaves - quantity,
                taker: id,
                taker_owner: owner,
                taker_leaves: remaining,
            });
            if maker.leaves == quantity {
                self.orders.remove(pos);
                out.push(BookEvent::Done {
                    order: maker.id,
                    owner: maker.owner,
                    side: maker_side,
                    reason: DoneReason::Filled,
                    cancelled: 0,
                });
            }
        }
        if let Some(done) = level {
            self.push_level(maker_side, done, out);
        }
        remaining
    }

    /// Brute force over every grid price between the best ask and the best bid.
    fn auction_price(&self) -> Option<i64> {
        let best_bid = self.best(Side::Buy)?.0;
        let best_ask = self.best(Side::Sell)?.0;
        if best_bid < best_ask {
            return None;
        }
        let reference = self.reference_price().map(|r| i128::from(r.0));
        let mut best: Option<(u128, u128, i128, i64)> = None;
        let mut price = best_ask;
        while price <= best_bid {
            let sum = |side: Side, ok: &dyn Fn(i64) -> bool| -> u128 {
                let matching = self.orders.iter().filter(|o| o.side == side && ok(o.price.0));
                matching.map(|o| u128::from(o.leaves)).sum()
            };
            let demand = sum(Side::Buy, &|p| p >= price);
            let supply = sum(Side::Sell, &|p| p <= price);
            let volume = demand.min(supply);
            let imbalance = demand.max(supply) - volume;
            let distance = reference.map_or(0, |r| (i128::from(price) - r).abs());
            let better = match best {
                None => true,
                Some((v, i, d, _)) => {
                    volume > v || (volume == v && (imbalance < i || (imbalance == i && distance < d)))
                }
            };
            if better {
                best = Some((volume, imbalance, distance, price));
            }
            price += self.header.tick.0;
        }
        best.map(|(_, _, _, price)| price)
    }

    /// One call at `price`, best bid against best ask while both accept it.
    fn call(&mut self, price: i64, out: &mut Vec<BookEvent>) {
        let mut touched: [Vec<i64>; 2] = [Vec::new(), Vec::new()];
        let mut traded = false;
        loop {
            let bid = self.in_priority(Side::Buy).into_iter().find(|o| o.price.0 >= price);
            let ask = self.in_priority(Side::Sell).into_iter().find(|o| o.price.0 <= price);
            let (Some(bid), Some(ask)) = (bid, ask) else { break };
            // (the best of each side is the one found: prices are sorted best first)
            for (i, order) in [bid, ask].iter().enumerate() {
                if touched[i].last() != Some(&order.price.0) {
                    touched[i].push(order.price.0);
                }
            }
            let (maker, taker) = if bid.seq < ask.seq { (bid, ask) } else { (ask, bid) };
            if bid.owner == ask.owner {
                let pos = self.position(maker.id).unwrap();
                let removed = self.orders.remove(pos);
                out.push(BookEvent::Done {
                    order: removed.id,
                    owner: removed.owner,
                    side: removed.side,
                    reason: DoneReason::SelfTrade,
                    cancelled: removed.leaves,
                });
                continue;
            }
            let quantity = bid.leaves.min(ask.leaves);
            for order in [bid, ask] {
                let pos = self.position(order.id).unwrap();
                self.orders[pos].leaves -= quantity;
            }
            traded = true;
            out.push(BookEvent::Fill {
                price: Fen(price),
                quantity,
                maker: maker.id,
                maker_owner: maker.owner,
                maker_side: maker.side,
                maker_leaves: maker.leaves - quantity,
                taker: taker.id,
                taker_owner: taker.owner,
                taker_leaves: taker.leaves - quantity,
            });
            for order in [maker, taker] {
                if order.leaves == quantity {
                    let pos = self.position(order.id).unwrap();
                    self.orders.remove(pos);
                    out.push(BookEvent::Done {
                        order: order.id,
                        owner: order.owner,
                        side: order.side,
                        reason: DoneReason::Filled,
                        cancelled: 0,
                    });
                }
            }
        }
        if traded {
            self.header.last_trade = Some(Fen(price));
        }
        for (side, prices) in [(Side::Buy, &touched[0]), (Side::Sell, &touched[1])] {
            for &p in prices {
                self.push_level(side, p, out);
            }
        }
    }
}

fn view(order: &RestingOrder) -> OrderView {
    OrderView {
        id: order.id,
        owner: order.owner,
        side: order.side,
        price: order.price,
        leaves: order.leaves,
        tif: order.tif,
    }
}
