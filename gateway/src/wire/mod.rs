//! The wire: JSON text frames ⇄ typed values (protocol sections 1–9).
//!
//! - [`fields`]: reading one field of a request (money, quantities, codes, `req_id`), with
//!   errors that name the field.
//! - [`request`]: a whole request frame → [`request::Request`] (engine `Action`s, queries, session
//!   messages).
//! - [`render`]: replies, private reports, errors and query answers → JSON text.
//!
//! Nothing here does I/O or touches the market: it is pure and unit-tested.

pub mod fields;
pub mod render;
pub mod request;

pub use fields::ReqId;
pub use request::{parse, Parsed, Request, REQUEST_TYPES};
