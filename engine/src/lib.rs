//! Huashi's engine: the pure market core, its journal and the single writer that drives it.
//!
//! Data flows one way:
//!
//! ```text
//! gateway ──Command──▶ sequencer ──(journal, group commit)──▶ core::Market::apply ──Event──▶ fan-out
//! ```
//!
//! - [`types`]: newtypes for money (`Fen`), quantities, ids, days and engine time.
//! - [`reject`]: the typed business rejections, one per protocol error code.
//! - [`text`]: what a text field may hold (no control or bidirectional characters).
//! - [`command`]: every input to the core, and [`event`]: every output.
//! - [`core`]: the deterministic state machine (participants, lots, Dutch clocks, order books,
//!   credit). No I/O, no clock reads, no randomness.
//! - [`journal`] and [`snapshot`]: durable storage of commands and of whole-market images.
//! - [`store`]: a data directory: recovery from snapshot + journal replay.
//! - [`sequencer`]: the writer thread: queue in, journal, apply, events out; [`batch_sink`]: a
//!   second way a committed batch becomes durable (replication) before its replies leave.

pub mod batch_sink;
pub mod command;
pub mod core;
pub mod event;
pub mod histogram;
pub mod journal;
pub mod reject;
pub mod sequencer;
pub mod snapshot;
pub mod store;
pub mod text;
pub mod types;
