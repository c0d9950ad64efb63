//! Huashi's clearing: the ledger, statements, market statistics and the Shanghai Flower
//! Consumption Index, fed by the engine's events.
//!
//! ```text
//! sequencer Output {seq, ts, events} ──▶ Clearing::apply ──▶ Vec<MarketData> (stats, index) ──▶ feed
//!                                            │
//!                                            ├─ ledger: one balanced entry per award / void / presale / trade
//!                                            ├─ statements, cell stats, clock clearance (today)
//!                                            ├─ index chains (SFCI and its sub-indices)
//!                                            └─ DaySettled ─▶ SettledDay ─take_settled_day─▶ Archive (sled)
//! ```
//!
//! - [`clearing`]: `Clearing`, the pure state machine (no I/O, no clock, no threads).
//! - [`money`]: fen ↔ `Decimal`, half-even rounding, the fee schedule in decimals.
//! - [`ledger`]: double-entry postings; every entry sums to zero.
//! - [`trades`], [`statement`]: the day's sales and each participant's view of them.
//!   A seat's purchases are its firm's; a seat gets a view of its firm's statement.
//! - [`stats`]: per-cell statistics and per-product clearance.
//! - [`index`]: the chained Törnqvist index (the only floating point in clearing).
//! - [`publish`]: once-a-second throttling of the public updates by engine time.
//! - [`corrections`]: an accepted complaint's credit as `correction` lines and a ledger entry.
//! - [`goods`]: dispatch lines with their cold-chain path, and each lot's public trace.
//! - [`archive`]: settled days in sled; [`export`]: statement CSVs and delivery notes.
//! - [`service`]: the clearing thread: outputs in, the publisher (the feed) after it, snapshots
//!   and recovery at the market's seqs, questions answered in order.
//!
//! Money is `rust_decimal::Decimal` with 2 decimal places everywhere here; the core's integer fen
//! come in with the events, and every fee is recomputed and asserted equal to the core's.

pub mod archive;
pub mod clearing;
pub mod corrections;
pub mod export;
pub mod goods;
pub mod index;
pub mod ledger;
pub mod money;
pub mod publish;
pub mod service;
pub mod statement;
pub mod stats;
pub mod trades;

pub use archive::{Archive, ArchiveError};
pub use clearing::{Clearing, ClearingConfig, DaySummary, MarketData, SettledDay};
pub use corrections::Correction;
pub use export::write_statement_csvs;
pub use goods::{GoodsDay, GoodsLine, LotSale, LotTrace, LotTraceView, PathStep};
pub use index::{IndexClose, IndexCode, IndexSnapshot, IndexValue};
pub use ledger::{Account, EntryKind, LedgerEntry, Posting};
pub use statement::{Statement, StatementLine, StatementLookup};
pub use stats::{CellKey, CellStats, LotRecord, MarketStats, ProductClearance};
pub use trades::{TradeKind, TradeRecord};
