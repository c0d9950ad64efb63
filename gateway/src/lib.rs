//! Huashi's gateway: the HTTP + WebSocket server that speaks protocol.md.
//!
//! ```text
//!  /ws  ──▶ session ──try_submit(Command|Query)──▶ sequencer (engine) ──Output──▶ fan-out thread
//!            ▲   (login, rate limit, JSON → Action)                                   │
//!            └──────── bounded per-session queue: replies, private reports ◀──────────┤
//!  /feed ──▶ subscriber ◀── broadcast ring: public events, rendered once, numbered ◀───┘
//! ```
//!
//! - [`config`]: `huashi serve` flags + TOML file → a validated [`Config`].
//! - [`server`]: [`Gateway`] / [`run`]: engine start, the router (`/ws`, `/feed`, `/health`,
//!   `/metrics`), orderly shutdown.
//! - [`health`]: what `/health` reports (ok, degraded, failed); [`fatal`]: the panic hook and the
//!   watchdog that end the process when the engine cannot go on.
//! - [`session`]: one `/ws` connection: login, rate limit and strikes, requests → engine.
//! - [`subscriber`]: one `/feed` connection: snapshot, then every public event.
//! - [`fanout`]: the thread that routes the engine's outputs: direct replies by ticket, private
//!   reports by participant, public events to the feed; it owns the session directory.
//! - [`feed`]: the feed's view of the market (for snapshots) and the public messages.
//! - [`wire`]: JSON ⇄ typed requests, replies and reports; pure and unit-tested.
//! - [`auth`], [`limits`], [`metrics`], [`conn`], [`sys`]: tokens, token buckets, counters,
//!   WebSocket endings, OS limits.

pub mod auth;
pub mod clearing_service;
pub mod config;
mod conn;
#[cfg(test)]
mod end_to_end;
pub mod error;
mod fanout;
pub mod fatal;
pub mod feed;
pub mod health;
pub mod limits;
pub mod metrics;
pub mod server;
mod session;
mod subscriber;
pub mod sys;
pub mod webapp;
pub mod wire;

pub use config::{Config, ServeArgs};
pub use error::GatewayError;
pub use server::{run, Gateway, Taps};
