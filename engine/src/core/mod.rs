//! The market core: a pure, deterministic state machine. `Market::apply(command, now)` is the only
//! way state changes; time comes in with the command.
//!
//! - `market.rs`: the `Market` struct, dispatch, participants, reference data, the day.
//! - `auction.rs`: the Dutch clocks' rules (lots on clocks, rounds, bids, standing bids, voids).
//! - `trading.rs`: the continuous books' rules around `book::OrderBook` (credit, ids, reports).
//! - `planning.rs`: clock plans, the daily draw, `plan_lots`, the catalogue, supply-line news.
//! - `presale.rs`: presale offers and purchases before a lot reaches the clock.
//! - `clock.rs`, `book.rs`, `lots.rs`, `credit.rs`, `fees.rs`, `participants.rs`,
//!   `catalogue.rs`, `limits.rs`, `standing_bid.rs`, `order_meta.rs` (the live orders' store),
//!   `client_ids.rs` (packed client order ids, the day's used ids), `slot_table.rs`,
//!   `look_ahead.rs` (cache hints for the commands a caller holds): one concept each. The rule
//!   files (`auction.rs`, `trading.rs`) use the market; the market uses only the concepts, so no
//!   two files import each other.

pub mod auction;
pub mod book;
pub mod catalogue;
pub mod client_ids;
pub mod clock;
pub mod complaints;
pub mod credit;
pub mod dispatch;
pub mod fees;
pub mod hash;
mod huge;
pub mod limits;
pub mod look_ahead;
pub mod lots;
pub mod market;
pub mod order_meta;
pub mod participants;
pub mod planning;
pub mod presale;
pub mod reference_book;
pub mod slot_table;
pub mod standing_bid;
pub mod trading;

pub use huge::mapped_bytes;
pub use market::{Applied, Market, MarketConfig};
