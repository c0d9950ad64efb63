//! The market core: a pure, deterministic state machine. `Market::apply(command, now)` is the only
//! way state changes; time comes in with the command.
//!
//! - `market.rs`: the `Market` struct, dispatch, participants, reference data, the day.
//! - `auction.rs`: the Dutch clocks' rules (lots on clocks, rounds, bids, standing bids, voids).
//! - `trading.rs`: the continuous books' rules around `book::OrderBook` (credit, ids, reports).
//! - `clock.rs`, `book.rs`, `lots.rs`, `credit.rs`, `fees.rs`, `participants.rs`,
//!   `catalogue.rs`, `limits.rs`: one concept each.

pub mod auction;
pub mod book;
pub mod catalogue;
pub mod clock;
pub mod credit;
pub mod fees;
pub mod hash;
pub mod limits;
pub mod lots;
pub mod market;
pub mod participants;
pub mod reference_book;
pub mod trading;

pub use market::{Applied, Market, MarketConfig};
