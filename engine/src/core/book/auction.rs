//! The opening call auction: when a book enters `Open` it first uncrosses everything that piled
//! up in pre-open at one price, chosen to maximise executed quantity.

use super::ladder::NIL;
use super::{BookEvent, DoneReason, OrderBook};
use crate::types::{Fen, OrderId, Pk, Side};
use std::cmp::Reverse;

/// How good an auction price is; smaller is better: most volume, then least imbalance, then
/// closest to the reference price, then the lower price.
type Rank = (Reverse<u128>, u128, u128, i64);

impl OrderBook {
    /// Runs the call until the book is no longer crossed. Without self-trade prevention one call
    /// always suffices (a maximum-volume price leaves nothing crossed); a same-owner pair that
    /// the call cancels instead of trading can leave a crossed remainder, which a further call
    /// at its own price clears. Every call removes at least one order, so this ends.
    pub(super) fn uncross(&mut self, out: &mut Vec<BookEvent>) {
        while let Some(price) = self.auction_price() {
            self.run_call(price.0, out);
        }
    }

    /// The price of a call auction over the resting orders, or `None` when nothing crosses.
    ///
    /// Every price on the tick grid competes. Executable volume only changes at limit prices,
    /// so it suffices to rank each limit price inside the crossed range, plus, for each gap
    /// between two consecutive limit prices, the one grid price in that gap the tie-breaks
    /// favour (nearest the reference, else the lowest): everything in a gap shares its volume
    /// and imbalance.
    pub(crate) fn auction_price(&self) -> Option<Fen> {
        let best_bid = self.bids.best_price()?;
        let best_ask = self.asks.best_price()?;
        if best_bid < best_ask {
            return None;
        }
        // The levels inside [best ask, best bid], each side best first: only they can trade.
        let bids: Vec<(i64, u64)> =
            self.bids.iter().take_while(|l| l.price >= best_ask).map(|l| (l.price, l.qty)).collect();
        let asks: Vec<(i64, u64)> =
            self.asks.iter().take_while(|l| l.price <= best_bid).map(|l| (l.price, l.qty)).collect();
        let mut points: Vec<i64> = bids.iter().chain(&asks).map(|&(price, _)| price).collect();
        points.sort_unstable();
        points.dedup();

        // supply[i] = asks at or below points[i]; demand[i] = bids at or above points[i].
        let mut supply = Vec::with_capacity(points.len());
        let (mut ask_levels, mut total) = (asks.iter().peekable(), 0u128);
        for &p in &points {
            while let Some(&&(price, qty)) = ask_levels.peek() {
                if price > p {
                    break;
                }
                total += u128::from(qty);
                ask_levels.next();
            }
            supply.push(total);
        }
        let mut demand = vec![0u128; points.len()];
        let (mut bid_levels, mut total) = (bids.iter().peekable(), 0u128);
        for (i, &p) in points.iter().enumerate().rev() {
            while let Some(&&(price, qty)) = bid_levels.peek() {
                if price < p {
                    break;
                }
                total += u128::from(qty);
                bid_levels.next();
            }
            demand[i] = total;
        }

        let reference = self.reference_price().map(|r| r.0);
        let rank = |price: i64, demand: u128, supply: u128| -> Rank {
            let distance = reference.map_or(0, |r| (i128::from(price) - i128::from(r)).unsigned_abs());
            (Reverse(demand.min(supply)), demand.abs_diff(supply), distance, price)
        };
        let mut best = rank(points[0], demand[0], supply[0]);
        for i in 0..points.len() {
            best = best.min(rank(points[i], demand[i], supply[i]));
            if let Some(&next) = points.get(i + 1) {
                let (low, high) = (points[i] + self.tick, next - self.tick);
                if low <= high {
                    // Strictly between two limits: the demand of the upper, the supply of the lower.
                    let price = nearest_on_grid(low, high, reference, self.tick);
                    best = best.min(rank(price, demand[i + 1], supply[i]));
                }
            }
        }
        let (Reverse(volume), _, _, price) = best;
        assert!(volume > 0, "a crossed book always has volume at its best ask");
        Some(Fen(price))
    }

    /// One call at `price`: pairs the best bid with the best ask while both accept the price.
    fn run_call(&mut self, price: i64, out: &mut Vec<BookEvent>) {
        let (mut touched_bids, mut touched_asks) = (Vec::new(), Vec::new());
        let mut traded = false;
        loop {
            let (best_bid, best_ask) = (self.bids.best(), self.asks.best());
            if best_bid == NIL || best_ask == NIL {
                break;
            }
            let (bid_level, ask_level) = (self.bids.level(best_bid), self.asks.level(best_ask));
            let (bid_price, ask_price) = (bid_level.price, ask_level.price);
            if bid_price < price || ask_price > price {
                break;
            }
            if touched_bids.last() != Some(&bid_price) {
                touched_bids.push(bid_price);
            }
            if touched_asks.last() != Some(&ask_price) {
                touched_asks.push(ask_price);
            }
            let (bid, ask) = (bid_level.head, ask_level.head);
            let (bid_slot, ask_slot) = (&self.arena[bid], &self.arena[ask]);
            let bid_is_maker = bid_slot.seq < ask_slot.seq;
            if bid_slot.owner == ask_slot.owner {
                // Self-trade prevention cancels the resting (earlier-placed) order.
                self.pop_best(if bid_is_maker { Side::Buy } else { Side::Sell }, DoneReason::SelfTrade, out);
                continue;
            }
            let quantity = bid_slot.leaves.min(ask_slot.leaves);
            let (maker, taker) = if bid_is_maker { (bid, ask) } else { (ask, bid) };
            for (side, idx) in [(Side::Buy, bid), (Side::Sell, ask)] {
                let (ladder, arena) = self.ladder_and_arena(side);
                ladder.reduce(arena, idx, quantity);
            }
            let (m, t) = (&self.arena[maker], &self.arena[taker]);
            out.push(BookEvent::Fill {
                price: Fen(price),
                quantity,
                maker: OrderId(m.id),
                maker_owner: Pk(m.owner),
                maker_side: m.side,
                maker_leaves: m.leaves,
                taker: OrderId(t.id),
                taker_owner: Pk(t.owner),
                taker_leaves: t.leaves,
            });
            traded = true;
            for idx in [maker, taker] {
                if self.arena[idx].leaves == 0 {
                    self.pop_best(self.arena[idx].side, DoneReason::Filled, out);
                }
            }
        }
        if traded {
            self.last_trade = Some(Fen(price));
        }
        for (side, prices) in [(Side::Buy, touched_bids), (Side::Sell, touched_asks)] {
            for price in prices {
                let quantity = self.ladder(side).quantity_at(price);
                out.push(BookEvent::Level { side, price: Fen(price), quantity });
            }
        }
    }

    /// Removes the first order of the best level of `side` with a `Done` (its open quantity as
    /// `cancelled`: 0 when filled).
    fn pop_best(&mut self, side: Side, reason: DoneReason, out: &mut Vec<BookEvent>) {
        let ladder = self.ladder(side);
        let idx = ladder.level(ladder.best()).head;
        assert!(idx != NIL, "a level is never empty");
        let slot = &self.arena[idx];
        let (id, owner, leaves) = (slot.id, slot.owner, slot.leaves);
        self.index.remove(id, &self.arena);
        let (ladder, arena) = self.ladder_and_arena(side);
        ladder.unlink(arena, idx);
        self.arena.release(idx);
        out.push(BookEvent::Done { order: OrderId(id), owner: Pk(owner), side, reason, cancelled: leaves });
    }
}

/// The grid price in `[low, high]` (both on the grid) nearest to `reference`, the lower one on a
/// tie; `low` when there is no reference.
fn nearest_on_grid(low: i64, high: i64, reference: Option<i64>, tick: i64) -> i64 {
    let Some(r) = reference else { return low };
    if r <= low {
        return low;
    }
    if r >= high {
        return high;
    }
    let below = r - r.rem_euclid(tick);
    let above = if below == r { r } else { below + tick };
    if r - below <= above - r {
        below
    } else {
        above
    }
}
