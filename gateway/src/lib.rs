//! Huashi's gateway: the HTTP + WebSocket front that speaks protocol.md, and the threads that
//! carry the engine's outputs to it. The composition root (`huashi-node`) starts them.
//!
//! ```text
//!  /ws  ──▶ session ──try_submit(Command|Query)──▶ sequencer (engine) ──Output──▶ fan-out thread
//!            ▲   (login, rate limit, JSON → Action)                                   │
//!            └──────── bounded per-session queue: replies, private reports ◀──────────┤
//!                                                                                      ▼
//!  /feed ──▶ subscriber ◀── broadcast: public events, numbered ◀── Feed ◀── clearing thread
//! ```
//!
//! - [`config`]: `huashi serve` flags + TOML file → a validated [`Config`].
//! - [`server`]: [`Frontend`]: the router (`/ws`, `/feed`, `/health`, `/metrics`, `/api/*`) and
//!   the orderly end of every connection.
//! - [`health`]: what `/health` reports (ok, degraded, failed); [`fatal`]: the panic hook and the
//!   watchdog that end the process when the engine cannot go on.
//! - [`session`]: one `/ws` connection: login, rate limit and strikes, requests → engine.
//! - [`subscriber`]: one `/feed` connection: snapshot (or resume), then every public event.
//! - [`fanout`]: the thread that routes the engine's outputs: direct replies by ticket, private
//!   reports by participant, every output on to clearing; it owns the session directory.
//! - [`messages`]: what those threads and tasks send each other, and the shared `Status`.
//! - [`feed`]: the feed's view of the market (for snapshots) and the public messages;
//!   [`feed_log`]: their durable numbering and the retained events, run on the clearing thread.
//! - [`wire`]: JSON ⇄ typed requests, replies and reports; pure and unit-tested.
//! - [`auth`], [`limits`], [`metrics`], [`conn`], [`sys`]: tokens, token buckets, counters,
//!   WebSocket endings, OS limits.

pub mod auth;
pub mod catalogue;
pub mod config;
mod conn;
pub mod error;
pub mod fanout;
pub mod fatal;
pub mod feed;
pub mod feed_log;
pub mod health;
pub mod limits;
pub mod messages;
pub mod metrics;
pub mod replica;
pub mod server;
mod session;
mod subscriber;
pub mod sys;
pub mod trace;
pub mod webapp;
pub mod wire;

pub use config::{Config, ServeArgs};
pub use error::GatewayError;
pub use server::{Frontend, FrontendParts};
