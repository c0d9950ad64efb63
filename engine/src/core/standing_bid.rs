//! A standing bid: a buyer's instruction, left before its lot reaches the clock, to buy when the
//! clock price falls to its maximum (protocol section 6). The clock rules that trigger it are in
//! `auction.rs`; the market keeps them per lot.

use crate::types::{EngineTime, Fen, Pk};
use serde::{Deserialize, Serialize};

/// A buyer's instruction to buy a lot when the clock price reaches `max_price`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StandingBid {
    pub buyer: Pk,
    pub max_price: Fen,
    pub containers: u32,
    /// Placement order: breaks ties between equal `max_price`s.
    pub seq: u64,
    /// When it was placed: it cannot trigger at a tick before that.
    pub placed_at: EngineTime,
}
