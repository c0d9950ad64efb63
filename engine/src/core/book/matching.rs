//! Continuous matching: an incoming order against the opposite side in price-time priority,
//! with self-trade prevention, and the dry run of it that `preview` and fill-or-kill use.

use super::ladder::NIL;
use super::{BookEvent, DoneReason, OrderBook};
use crate::types::{Fen, OrderId, Pk, Side};

/// The incoming side of a match: a new order, or an amended one re-entering the book.
pub(super) struct Taker {
    pub id: u64,
    pub owner: u32,
    pub side: Side,
    /// The worst price it accepts (for a market order: the band edge, or the extreme).
    pub limit: i64,
}

/// Whether a taker on `side` with this limit trades against a resting price.
#[inline]
pub(super) fn crosses(side: Side, resting: i64, limit: i64) -> bool {
    match side {
        Side::Buy => resting <= limit,
        Side::Sell => resting >= limit,
    }
}

impl OrderBook {
    /// Trades an incoming order against the opposite side in price-time priority, cancelling
    /// the owner's own resting orders on the way (self-trade prevention). Returns what is left.
    pub(super) fn match_incoming(&mut self, taker: &Taker, mut remaining: u64, out: &mut Vec<BookEvent>) -> u64 {
        let (opposite, arena, index) = match taker.side {
            Side::Buy => (&mut self.asks, &mut self.arena, &mut self.index),
            Side::Sell => (&mut self.bids, &mut self.arena, &mut self.index),
        };
        let maker_side = opposite.side;
        while remaining > 0 {
            let best = opposite.best();
            if best == NIL {
                break;
            }
            let level = *opposite.level(best);
            let price = level.price;
            if !crosses(taker.side, price, taker.limit) {
                break;
            }
            let (mut cur, mut qty, mut traded) = (level.head, level.qty, false);
            while cur != NIL {
                let maker = &mut arena[cur];
                let next = maker.next;
                if maker.owner == taker.owner {
                    qty -= maker.leaves;
                    out.push(BookEvent::Done {
                        order: OrderId(maker.id),
                        owner: Pk(maker.owner),
                        side: maker_side,
                        reason: DoneReason::SelfTrade,
                        cancelled: maker.leaves,
                    });
                } else {
                    let quantity = maker.leaves.min(remaining);
                    maker.leaves -= quantity;
                    remaining -= quantity;
                    qty -= quantity;
                    traded = true;
                    out.push(BookEvent::Fill {
                        price: Fen(price),
                        quantity,
                        maker: OrderId(maker.id),
                        maker_owner: Pk(maker.owner),
                        maker_side,
                        maker_leaves: maker.leaves,
                        taker: OrderId(taker.id),
                        taker_owner: Pk(taker.owner),
                        taker_leaves: remaining,
                    });
                    if maker.leaves > 0 {
                        break; // the taker is done; the maker keeps its place
                    }
                    out.push(BookEvent::Done {
                        order: OrderId(maker.id),
                        owner: Pk(maker.owner),
                        side: maker_side,
                        reason: DoneReason::Filled,
                        cancelled: 0,
                    });
                }
                let id = maker.id;
                index.remove(id, arena);
                arena.release(cur);
                cur = next;
                if remaining == 0 {
                    break;
                }
            }
            if traded {
                self.last_trade = Some(Fen(price));
            }
            out.push(BookEvent::Level { side: maker_side, price: Fen(price), quantity: qty });
            let top = opposite.level_mut(best);
            top.head = cur;
            top.qty = qty;
            if cur == NIL {
                top.tail = NIL;
                opposite.remove_level(best);
            } else {
                arena[cur].prev = NIL;
            }
        }
        remaining
    }

    /// What `taker` could execute now against other owners' orders: (quantity, Σ price × qty).
    pub(super) fn executable(&self, taker: &Taker, quantity: u64) -> (u64, i128) {
        let opposite = self.ladder(taker.side.opposite());
        let (mut filled, mut amount) = (0u64, 0i128);
        for level in opposite.iter() {
            let price = level.price;
            if filled == quantity || !crosses(taker.side, price, taker.limit) {
                break;
            }
            let mut cur = level.head;
            while cur != NIL && filled < quantity {
                let maker = &self.arena[cur];
                if maker.owner != taker.owner {
                    let take = maker.leaves.min(quantity - filled);
                    filled += take;
                    amount += i128::from(price) * i128::from(take);
                }
                cur = maker.next;
            }
        }
        (filled, amount)
    }
}
