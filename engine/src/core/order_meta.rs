//! What the market keeps about a live book order beside the book itself: its owner, its client
//! order id, its terms and the credit it holds. The book rules around it are in `trading.rs`.

use crate::core::book::{OrderType, TimeInForce};
use crate::core::credit::Hold;
use crate::types::{Code, EngineTime, Fen, Pk, Side};
use serde::{Deserialize, Serialize};

/// What the market keeps about a live book order beside the book itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderMeta {
    pub owner: Pk,
    pub client_order_id: Code,
    pub symbol: Code,
    pub side: Side,
    pub order_type: OrderType,
    pub price: Option<Fen>,
    pub time_in_force: TimeInForce,
    pub post_only: bool,
    /// Credit held for the open quantity (buy orders only).
    pub reserved: Hold,
    /// When the order was accepted: `get_orders` reports it.
    pub accepted_ts: EngineTime,
}
