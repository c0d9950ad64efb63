//! The messages between the gateway's threads and tasks: what a session is (`Principal`,
//! `SessionLink`), what the fan-out hands it (`Outbound`, `QueryAnswer`), what sessions ask the
//! fan-out (`Control`), and the figures other threads read (`Status`). Kept apart from the
//! threads that exchange them, so that no two of those import each other.

use axum::extract::ws::Utf8Bytes;
use huashi_engine::command::Actor;
use huashi_engine::core::credit::Account;
use huashi_engine::core::lots::Lot;
use huashi_engine::event::OrderReport;
use huashi_engine::reject::Reject;
use huashi_engine::types::{Code, Day, Pk};
use std::sync::atomic::{AtomicI32, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Who a session acts as: the market operator, or a registered participant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Principal {
    Operator,
    Participant(Pk),
}

impl Principal {
    pub fn actor(self) -> Actor {
        match self {
            Principal::Operator => Actor::Operator,
            Principal::Participant(pk) => Actor::Participant(pk),
        }
    }

    pub(crate) fn of(actor: Actor) -> Option<Principal> {
        match actor {
            Actor::Operator => Some(Principal::Operator),
            Actor::Participant(pk) => Some(Principal::Participant(pk)),
            Actor::System => None,
        }
    }
}

/// What the fan-out hands a session.
#[derive(Debug)]
pub enum Outbound {
    /// A private report, rendered once for every session of the participant.
    Frame(Utf8Bytes),
    /// The direct reply to this session's request `ticket` (the session splices in its `req_id`).
    Reply { ticket: u64, body: Utf8Bytes, stamps: Stamps },
    /// The engine refused request `ticket`.
    Reject { ticket: u64, reject: Reject, stamps: Stamps },
    /// A query's answer, in order after every output the query saw.
    Answer { ticket: u64, answer: QueryAnswer },
}

/// When a reply's command was stamped by the engine and taken by the fan-out (wall µs): the
/// session adds when it read the request and wrote the reply (`metrics::ReplyStage`).
#[derive(Clone, Copy, Debug, Default)]
pub struct Stamps {
    pub stamped_us: u64,
    pub routed_us: u64,
}

/// A query's result, taken from the market on the sequencer thread and rendered by the session.
#[derive(Debug)]
pub enum QueryAnswer {
    Account {
        participant: String,
        account: Account,
    },
    /// Each lot with whether the viewer may see its reserve.
    Lots(Vec<(Lot, bool)>),
    Orders(Vec<OrderReport>),
    /// A statement from clearing.
    Statement(Box<huashi_clearing::Statement>),
    /// Allowed by the market; clearing holds the figures: the fan-out forwards it there.
    ForwardStatement {
        participant: Code,
        day: huashi_engine::types::Day,
    },
    /// The query was refused (answered as an `error`).
    Refused(Reject),
    Limits(huashi_engine::core::limits::MarketLimits),
    /// `get_fees`: today's fees, those set for the next trading day, and today.
    Fees {
        current: huashi_engine::core::fees::FeeSchedule,
        next: Option<huashi_engine::core::fees::FeeSchedule>,
        day: Day,
    },
    /// `get_standing_bids`: (lot, bid, the id of the buyer or seat that placed it).
    StandingBids(Vec<(huashi_engine::types::LotId, huashi_engine::core::standing_bid::StandingBid, Code)>),
    /// `get_products`: a copy of the reference data, rendered by the session.
    Products(Box<crate::wire::render::ReferenceData>),
    /// `get_dispatch`: the lines, copied by clearing and rendered by the session.
    Dispatch {
        buyer: Option<Code>,
        day: Day,
        lines: Vec<huashi_engine::core::dispatch::DispatchView>,
    },
    Quality {
        grower: Code,
        quality: huashi_engine::core::complaints::Quality,
    },
    /// `get_dispatch`, allowed: the fan-out asks clearing (`who`: the buyer whose lines, none
    /// for every buyer's).
    ForwardDispatch {
        who: Option<Code>,
        day: Day,
    },
}

/// Why the fan-out dropped a session (read by the session when its queue ends).
pub const LINK_OPEN: u8 = 0;
pub const LINK_SLOW: u8 = 1;

/// A session as the fan-out knows it.
pub struct SessionLink {
    pub id: u32,
    pub tx: mpsc::Sender<Outbound>,
    pub state: Arc<AtomicU8>,
}

pub enum Credential {
    Operator,
    TokenHash([u8; 32]),
}

pub struct LoginInfo {
    pub principal: Principal,
    pub participant: String,
    pub roles: Vec<&'static str>,
    pub day: Day,
    /// A seat's firm.
    pub firm: Option<Code>,
}

pub enum Control {
    Login {
        link: SessionLink,
        credential: Credential,
        cancel_on_disconnect: bool,
        reply: oneshot::Sender<Option<LoginInfo>>,
    },
    Leave {
        session: u32,
    },
    Answer {
        session: u32,
        ticket: u64,
        answer: QueryAnswer,
    },
    /// Answered once everything sent before it has been handled (used at shutdown).
    Drain {
        reply: oneshot::Sender<()>,
    },
}

/// Figures other threads read: `/health`, `/metrics`, `logged_in.day`.
pub struct Status {
    /// The engine seq of the last output routed.
    pub seq: AtomicU64,
    /// The feed seq of the last public event published.
    pub feed_seq: AtomicU64,
    pub day: AtomicI32,
    /// How many outputs so far may have changed a lot (see `catalogue.rs`).
    pub lots_version: AtomicU64,
}

impl Status {
    pub fn day(&self) -> Day {
        Day(self.day.load(Ordering::Relaxed))
    }
}
