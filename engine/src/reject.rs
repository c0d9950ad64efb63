//! Business rejections: the typed "no" the market gives a command, one variant per error code of
//! protocol section 2. A rejection is a value, never a panic and never an `Err` of the I/O kind;
//! a rejected command changes nothing.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The error codes of protocol section 2, in the order the protocol lists them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum RejectCode {
    BadRequest,
    Unauthenticated,
    Forbidden,
    NotFound,
    InvalidState,
    TooLate,
    QuantityInvalid,
    PriceInvalid,
    CreditLimit,
    Duplicate,
    RateLimited,
    Internal,
    /// v1.1: after `Internal` so the variant indices of the codes before it stay put.
    LimitReached,
}

impl RejectCode {
    pub const ALL: [RejectCode; 13] = [
        RejectCode::BadRequest,
        RejectCode::Unauthenticated,
        RejectCode::Forbidden,
        RejectCode::NotFound,
        RejectCode::InvalidState,
        RejectCode::TooLate,
        RejectCode::QuantityInvalid,
        RejectCode::PriceInvalid,
        RejectCode::CreditLimit,
        RejectCode::Duplicate,
        RejectCode::RateLimited,
        RejectCode::LimitReached,
        RejectCode::Internal,
    ];

    /// The wire name (`"too_late"`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            RejectCode::BadRequest => "bad_request",
            RejectCode::Unauthenticated => "unauthenticated",
            RejectCode::Forbidden => "forbidden",
            RejectCode::NotFound => "not_found",
            RejectCode::InvalidState => "invalid_state",
            RejectCode::TooLate => "too_late",
            RejectCode::QuantityInvalid => "quantity_invalid",
            RejectCode::PriceInvalid => "price_invalid",
            RejectCode::CreditLimit => "credit_limit",
            RejectCode::Duplicate => "duplicate",
            RejectCode::RateLimited => "rate_limited",
            RejectCode::Internal => "internal",
            RejectCode::LimitReached => "limit_reached",
        }
    }
}

/// A rejection: its code and a human-readable message that names the offending field or reason.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reject {
    pub code: RejectCode,
    pub message: String,
}

impl Reject {
    pub fn new(code: RejectCode, message: impl Into<String>) -> Reject {
        Reject { code, message: message.into() }
    }
    pub fn bad_request(message: impl Into<String>) -> Reject {
        Reject::new(RejectCode::BadRequest, message)
    }
    pub fn forbidden(message: impl Into<String>) -> Reject {
        Reject::new(RejectCode::Forbidden, message)
    }
    pub fn not_found(message: impl Into<String>) -> Reject {
        Reject::new(RejectCode::NotFound, message)
    }
    pub fn invalid_state(message: impl Into<String>) -> Reject {
        Reject::new(RejectCode::InvalidState, message)
    }
    pub fn too_late(message: impl Into<String>) -> Reject {
        Reject::new(RejectCode::TooLate, message)
    }
    pub fn quantity_invalid(message: impl Into<String>) -> Reject {
        Reject::new(RejectCode::QuantityInvalid, message)
    }
    pub fn price_invalid(message: impl Into<String>) -> Reject {
        Reject::new(RejectCode::PriceInvalid, message)
    }
    pub fn credit_limit(message: impl Into<String>) -> Reject {
        Reject::new(RejectCode::CreditLimit, message)
    }
    pub fn duplicate(message: impl Into<String>) -> Reject {
        Reject::new(RejectCode::Duplicate, message)
    }
    pub fn limit_reached(message: impl Into<String>) -> Reject {
        Reject::new(RejectCode::LimitReached, message)
    }
}

impl fmt::Display for Reject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}
