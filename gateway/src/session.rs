//! A `/ws` trading session (protocol sections 2–8): the first message must be `login`; then each
//! request is rate-limited, parsed, and either answered here (`ping`, bad input, statements for
//! now) or submitted to the sequencer with a ticket. Replies and reports come back from the
//! fan-out through the session's bounded queue; a batch of them is written, then flushed once.

use crate::auth::{digests_equal, new_token, token_hash};
use crate::conn::{
    self, Due, End, Liveness, GOING_AWAY, IDLE_TIMEOUT, LOGIN_TIMEOUT, SLOW_CONSUMER, TOO_LARGE, TOO_MANY_STRIKES,
};
use crate::fanout::answer;
use crate::limits::TokenBucket;
use crate::messages::{
    Control, Credential, Outbound, Principal, QueryAnswer, SessionLink, Stamps, LINK_OPEN, LINK_SLOW,
};
use crate::metrics::ReplyStage;
use crate::server::Shared;
use crate::wire::render::{self, DayText, LotJson, Msg, OrderJson};
use crate::wire::{parse, ReqId, Request};
use axum::extract::ws::{Message, Utf8Bytes, WebSocket};
use huashi_engine::command::{Action, Command};
use huashi_engine::reject::{Reject, RejectCode};
use huashi_engine::sequencer::wall_us;
use huashi_engine::sequencer::{Submission, SubmitError};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit};

/// Room in a WebSocket reply for what is spliced into it (`req_id`) and the frame's header.
const WS_REPLY_HEADROOM: usize = 1024;

/// Outbound messages written before one flush.
const WRITE_BATCH_MAX: usize = 64;
/// How long a condemned session waits for the replies to what it already submitted. Shorter
/// than the shutdown's wait for sessions (`server::CLOSE_WAIT`), so a stopping server still
/// answers before it lets go; the engine answers in milliseconds unless it is stuck.
const SETTLE_WAIT: Duration = Duration::from_secs(3);

/// A request waiting for the engine: what to echo in its reply.
struct Pending {
    req_id: Option<ReqId>,
    /// `register_participant`: the token, shown once, in the requesting session's reply only.
    token: Option<String>,
    /// When the request's frame was read (wall µs), to time its reply (`ReplyStage`).
    received_us: u64,
}

struct Session {
    id: u32,
    shared: Arc<Shared>,
    principal: Option<Principal>,
    /// Whether the fan-out was told about this session (it must then be told it left).
    announced: bool,
    outbound: Option<mpsc::Receiver<Outbound>>,
    link_state: Arc<AtomicU8>,
    pending: HashMap<u64, Pending>,
    next_request: u32,
    rate: TokenBucket,
    strikes: TokenBucket,
    /// When the frame being handled was read (wall µs).
    received_us: u64,
    /// The engine's replies in the batch being written: when each request was read, and its stamps.
    timed: Vec<(u64, Stamps)>,
}

/// Runs one session to its end.
pub async fn serve(mut socket: WebSocket, shared: Arc<Shared>, permit: OwnedSemaphorePermit) {
    let _permit = permit;
    shared.metrics.sessions.fetch_add(1, Ordering::Relaxed);
    let now = Instant::now();
    let limits = &shared.limits;
    let mut session = Session {
        // 0 tags the engine's own commands; never hand it to a session.
        id: loop {
            let id = shared.next_session.fetch_add(1, Ordering::Relaxed);
            if id != 0 {
                break id;
            }
        },
        shared: shared.clone(),
        principal: None,
        announced: false,
        outbound: None,
        link_state: Arc::new(AtomicU8::new(LINK_OPEN)),
        pending: HashMap::new(),
        next_request: 0,
        rate: TokenBucket::new(limits.rate_burst, limits.rate_per_second as f64, now),
        strikes: TokenBucket::per_window(limits.strikes_max, limits.strike_window, now),
        received_us: 0,
        timed: Vec::new(),
    };
    let end = session.run(&mut socket).await;
    let end = session.settle(&mut socket, end).await;
    if session.announced {
        let _ = shared.control.send(Control::Leave { session: session.id });
    }
    conn::finish(&mut socket, end, &shared.metrics).await;
    shared.metrics.sessions.fetch_sub(1, Ordering::Relaxed);
}

/// The next message the fan-out queued, or never before login.
async fn next_outbound(outbound: &mut Option<mpsc::Receiver<Outbound>>) -> Option<Outbound> {
    match outbound {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

impl Session {
    async fn run(&mut self, socket: &mut WebSocket) -> End {
        let mut shutdown = self.shared.shutdown.clone();
        if *shutdown.borrow_and_update() {
            return GOING_AWAY;
        }
        let login_deadline = tokio::time::sleep(self.shared.limits.login_timeout);
        tokio::pin!(login_deadline);
        // A session that answers nothing, not even a ping, for `idle_timeout` is a dead peer or
        // a squatter on a slot.
        let limits = &self.shared.limits;
        let mut liveness = Liveness::new(limits.ping_interval, limits.idle_timeout);
        // One registration with the shutdown signal for the whole session: a `changed()` made
        // anew each turn joins and leaves the signal's waiter list (a lock) on every message.
        let stopping = shutdown.changed();
        tokio::pin!(stopping);
        loop {
            let result = tokio::select! {
                _ = &mut stopping => return GOING_AWAY,
                _ = &mut login_deadline, if self.principal.is_none() => return LOGIN_TIMEOUT,
                due = liveness.due() => match due {
                    Due::Ping => conn::ping(socket, self.shared.limits.write_timeout).await,
                    Due::Close => return IDLE_TIMEOUT,
                },
                outbound = next_outbound(&mut self.outbound) => match outbound {
                    Some(first) => self.write_batch(socket, first).await,
                    None if self.link_state.load(Ordering::Acquire) == LINK_SLOW => return SLOW_CONSUMER,
                    None => return GOING_AWAY,
                },
                frame = socket.recv() => {
                    liveness.heard();
                    match frame {
                        None => return End::Gone,
                        Some(Err(error)) => return if conn::is_too_large(error) { TOO_LARGE } else { End::Gone },
                        Some(Ok(Message::Text(text))) => self.on_text(socket, text.as_str()).await,
                        Some(Ok(Message::Binary(_))) => {
                            let reject = Reject::bad_request("binary frames are not accepted: send JSON text frames");
                            self.refuse(socket, None, reject).await
                        }
                        Some(Ok(Message::Close(_))) => return End::Gone,
                        // tungstenite answers pings itself; each still costs a message of the rate.
                        Some(Ok(Message::Ping(_) | Message::Pong(_))) => self.control_frame(),
                    }
                }
            };
            if let Err(end) = result {
                return end;
            }
        }
    }

    /// Before the session is closed as `end` says, delivers the replies to every request already
    /// submitted to the engine (protocol section 2): the client learns the fate of each order it
    /// sent, then gets the close frame. Nothing more is read from the socket, so a message that
    /// arrives after the session is condemned is never submitted. Not for a peer that is gone or
    /// stuck, nor for a slow consumer (its queue overflowed: the replies are already lost).
    async fn settle(&mut self, socket: &mut WebSocket, end: End) -> End {
        if !matches!(end, End::Close(..)) || end == SLOW_CONSUMER || self.pending.is_empty() {
            return end;
        }
        let deadline = tokio::time::Instant::now() + SETTLE_WAIT;
        while !self.pending.is_empty() {
            match tokio::time::timeout_at(deadline, next_outbound(&mut self.outbound)).await {
                Ok(Some(first)) => {
                    if let Err(stuck) = self.write_batch(socket, first).await {
                        return stuck;
                    }
                }
                Ok(None) if self.link_state.load(Ordering::Acquire) == LINK_SLOW => return SLOW_CONSUMER,
                Ok(None) => return end,
                Err(_) => {
                    tracing::warn!(
                        session = self.id,
                        unanswered = self.pending.len(),
                        "closing a session before the engine answered all it had taken"
                    );
                    return end;
                }
            }
        }
        end
    }

    /// A ping or pong from the client: within the rate it is free, past it a strike (answering a
    /// ping flood with error messages would only add to what the flood costs).
    fn control_frame(&mut self) -> Result<(), End> {
        let now = Instant::now();
        if self.rate.take(now) || self.strikes.take(now) {
            Ok(())
        } else {
            tracing::info!(session = self.id, "closing a session that floods control frames");
            Err(TOO_MANY_STRIKES)
        }
    }

    /// One text frame from the client.
    async fn on_text(&mut self, socket: &mut WebSocket, text: &str) -> Result<(), End> {
        self.received_us = wall_us();
        let parsed = parse(text);
        let req_id = match &parsed {
            Ok(p) => p.req_id.clone(),
            Err(refused) => refused.req_id.clone(),
        };
        if !self.rate.take(Instant::now()) {
            let message = format!("too many messages: at most {} per second", self.shared.limits.rate_per_second);
            return self.refuse(socket, req_id, Reject::new(RejectCode::RateLimited, message)).await;
        }
        let parsed = match parsed {
            Ok(parsed) => parsed,
            Err(refused) => return self.refuse(socket, refused.req_id, refused.reject).await,
        };
        self.shared.metrics.request(parsed.kind);
        let Some(principal) = self.principal else {
            return match parsed.request {
                Request::Login { token, cancel_on_disconnect } => {
                    self.login(socket, req_id, token.expose(), cancel_on_disconnect).await
                }
                _ => {
                    let reject =
                        Reject::new(RejectCode::Unauthenticated, "log in first: the first message must be login");
                    self.refuse(socket, req_id, reject).await
                }
            };
        };
        match parsed.request {
            Request::Login { .. } => {
                self.answer_error(socket, req_id, Reject::invalid_state("already logged in")).await
            }
            Request::Ping => self.answer(socket, req_id, &Msg::Pong { ts: wall_us() }.text()).await,
            query @ (Request::GetAccount
            | Request::GetLots { .. }
            | Request::GetOrders
            | Request::GetLimits
            | Request::GetFees
            | Request::GetStandingBids
            | Request::GetProducts
            | Request::GetDispatch { .. }
            | Request::GetQuality { .. }
            | Request::GetStatement { .. }) => self.query(socket, req_id, principal, query).await,
            Request::GetCatalogue { day } => {
                let shared = Arc::clone(&self.shared);
                match shared.catalogue.get(&shared.engine, &shared.status, day).await {
                    Ok(body) => {
                        let text = std::str::from_utf8(&body.json).expect("rendered JSON is UTF-8");
                        self.answer(socket, req_id, text).await
                    }
                    Err(reject) => self.refuse(socket, req_id, reject).await,
                }
            }
            // A follower serves reads; what would change the market goes to the leader.
            Request::RegisterParticipant { .. } | Request::Command(_)
                if self.shared.replica.role() == crate::replica::Role::Follower =>
            {
                let refusal = self.shared.replica.refusal();
                self.answer_error(socket, req_id, Reject::invalid_state(refusal)).await
            }
            Request::RegisterParticipant { id, name, roles, credit_limit, firm, daily_limit } => {
                let token = new_token();
                let token_hash = token_hash(&token);
                let action =
                    Action::RegisterParticipant { id, name, roles, credit_limit, token_hash, firm, daily_limit };
                self.submit(socket, req_id, principal, action, Some(token)).await
            }
            Request::Command(action) => self.submit(socket, req_id, principal, action, None).await,
        }
    }

    async fn login(
        &mut self,
        socket: &mut WebSocket,
        req_id: Option<ReqId>,
        token: &str,
        cancel_on_disconnect: bool,
    ) -> Result<(), End> {
        let hash = token_hash(token);
        let credential = if digests_equal(&hash, &self.shared.operator_token_hash) {
            Credential::Operator
        } else {
            Credential::TokenHash(hash)
        };
        let (tx, rx) = mpsc::channel(self.shared.limits.session_queue_max);
        let link = SessionLink { id: self.id, tx, state: self.link_state.clone() };
        let (reply, answer) = oneshot::channel();
        let control = Control::Login { link, credential, cancel_on_disconnect, reply };
        if self.shared.control.send(control).is_err() {
            return Err(GOING_AWAY);
        }
        self.announced = true;
        match answer.await {
            Ok(Some(info)) => {
                self.principal = Some(info.principal);
                self.outbound = Some(rx);
                let msg = Msg::LoggedIn {
                    participant: &info.participant,
                    roles: &info.roles,
                    day: DayText(info.day),
                    firm: info.firm,
                };
                tracing::debug!(session = self.id, participant = %info.participant, "logged in");
                self.answer(socket, req_id, &msg.text()).await
            }
            Ok(None) => {
                let reject = Reject::new(RejectCode::Unauthenticated, "wrong token");
                self.refuse(socket, req_id, reject).await
            }
            Err(_) => Err(GOING_AWAY),
        }
    }

    /// Room for one more request waiting for the engine, or the reason there is none.
    fn ticket(&mut self) -> Result<u64, Reject> {
        if self.pending.len() >= self.shared.limits.session_inflight_max {
            let message = format!(
                "too many requests waiting for the engine: at most {}",
                self.shared.limits.session_inflight_max
            );
            return Err(Reject::new(RejectCode::RateLimited, message));
        }
        self.next_request = self.next_request.wrapping_add(1);
        Ok((self.id as u64) << 32 | self.next_request as u64)
    }

    async fn submit(
        &mut self,
        socket: &mut WebSocket,
        req_id: Option<ReqId>,
        principal: Principal,
        action: Action,
        token: Option<String>,
    ) -> Result<(), End> {
        let ticket = match self.ticket() {
            Ok(ticket) => ticket,
            Err(reject) => return self.refuse(socket, req_id, reject).await,
        };
        let command = Command::new(principal.actor(), action);
        match self.shared.engine.try_submit(Submission::Command { command, ticket }) {
            Ok(()) => {
                self.pending.insert(ticket, Pending { req_id, token, received_us: self.received_us });
                Ok(())
            }
            Err(error) => self.busy(socket, req_id, error).await,
        }
    }

    async fn query(
        &mut self,
        socket: &mut WebSocket,
        req_id: Option<ReqId>,
        principal: Principal,
        query: Request,
    ) -> Result<(), End> {
        let ticket = match self.ticket() {
            Ok(ticket) => ticket,
            Err(reject) => return self.refuse(socket, req_id, reject).await,
        };
        let control = self.shared.control.clone();
        let session = self.id;
        // Looks on the sequencer thread; the answer is sent once its batch is durable, and goes
        // through the fan-out so it arrives after the replies to what came before it.
        let run = Box::new(move |market: &huashi_engine::core::Market| -> huashi_engine::sequencer::Deliver {
            let answer = answer(market, principal, &query);
            Box::new(move || {
                let _ = control.send(Control::Answer { session, ticket, answer });
            })
        });
        match self.shared.engine.try_submit(Submission::Query(run)) {
            Ok(()) => {
                self.pending.insert(ticket, Pending { req_id, token: None, received_us: self.received_us });
                Ok(())
            }
            Err(error) => self.busy(socket, req_id, error).await,
        }
    }

    async fn busy(&mut self, socket: &mut WebSocket, req_id: Option<ReqId>, error: SubmitError) -> Result<(), End> {
        let message = match error {
            SubmitError::Busy => {
                self.shared.metrics.busy.fetch_add(1, Ordering::Relaxed);
                "engine busy, retry"
            }
            SubmitError::Stopped => "the engine is stopping",
        };
        self.answer_error(socket, req_id, Reject::new(RejectCode::Internal, message)).await
    }

    /// Answers a request that was bad or excess, and counts a strike against the session.
    async fn refuse(&mut self, socket: &mut WebSocket, req_id: Option<ReqId>, reject: Reject) -> Result<(), End> {
        self.answer_error(socket, req_id, reject).await?;
        if self.strikes.take(Instant::now()) {
            Ok(())
        } else {
            tracing::info!(session = self.id, "closing a session that keeps sending bad or excess messages");
            Err(TOO_MANY_STRIKES)
        }
    }

    async fn answer_error(&mut self, socket: &mut WebSocket, req_id: Option<ReqId>, reject: Reject) -> Result<(), End> {
        self.shared.metrics.reject(reject.code);
        self.answer(socket, req_id, &render::error(reject.code, &reject.message)).await
    }

    /// Writes a reply made here, straight away.
    async fn answer(&mut self, socket: &mut WebSocket, req_id: Option<ReqId>, body: &str) -> Result<(), End> {
        let refused;
        let body = match self.too_big(body) {
            Some(error) => {
                refused = error;
                &refused
            }
            None => body,
        };
        let text = render::splice(body, req_id.as_ref(), None);
        conn::send(socket, Utf8Bytes::from(text), self.shared.limits.write_timeout).await
    }

    /// One WebSocket message cannot be larger than the connection's write buffer may grow
    /// (`write_buffer_bytes_max`): a reply that would be (a big hall's catalogue or lots) is
    /// answered `limit_reached` instead, naming its size, and the session goes on.
    fn too_big(&self, body: &str) -> Option<String> {
        let max = self.shared.limits.write_buffer_bytes_max;
        if body.len() + WS_REPLY_HEADROOM <= max {
            return None;
        }
        self.shared.metrics.reject(RejectCode::LimitReached);
        let what = body.get(9..).and_then(|rest| rest.split('"').next()).unwrap_or("reply");
        let message = format!(
            "the {what} reply is {} bytes, more than one WebSocket message may carry (write_buffer_bytes_max {max}): \
             ask for less (get_lots with a status) or read it over HTTP (GET /api/catalogue)",
            body.len()
        );
        Some(render::error(RejectCode::LimitReached, &message))
    }

    /// Writes what the fan-out queued: `first`, then whatever else is ready, then one flush, all
    /// under one write deadline.
    async fn write_batch(&mut self, socket: &mut WebSocket, first: Outbound) -> Result<(), End> {
        let timeout = self.shared.limits.write_timeout;
        let written = conn::within(timeout, async {
            let mut next = Some(first);
            let mut written = 0;
            while let Some(outbound) = next.take() {
                let text = self.render(outbound);
                conn::feed(socket, text).await?;
                written += 1;
                if written < WRITE_BATCH_MAX {
                    next = self.outbound.as_mut().and_then(|rx| rx.try_recv().ok());
                }
            }
            conn::flush(socket).await
        })
        .await;
        // Replies that reached the socket are timed; a failed or timed-out write times none.
        if written.is_ok() && !self.timed.is_empty() {
            let written_us = wall_us();
            for (received_us, stamps) in self.timed.drain(..) {
                let metrics = &self.shared.metrics;
                metrics.reply_stage(ReplyStage::Queued, received_us, stamps.stamped_us);
                metrics.reply_stage(ReplyStage::Written, stamps.routed_us, written_us);
                metrics.reply_stage(ReplyStage::Total, received_us, written_us);
            }
        }
        self.timed.clear();
        written
    }

    fn render(&mut self, outbound: Outbound) -> Utf8Bytes {
        // Only an accepted registration shows its token.
        // An engine's reply (not a query's answer) is timed once written.
        let mut stamps: Option<Stamps> = None;
        let (ticket, body, accepted) = match outbound {
            Outbound::Frame(text) => return text,
            Outbound::Reply { ticket, body, stamps: s } => {
                stamps = Some(s);
                (ticket, body.as_str().to_string(), true)
            }
            Outbound::Reject { ticket, reject, stamps: s } => {
                stamps = Some(s);
                (ticket, render::error(reject.code, &reject.message), false)
            }
            Outbound::Answer { ticket, answer: QueryAnswer::Refused(reject) } => {
                self.shared.metrics.reject(reject.code);
                (ticket, render::error(reject.code, &reject.message), false)
            }
            Outbound::Answer { ticket, answer } => {
                let body = render_answer(&answer);
                match self.too_big(&body) {
                    Some(error) => (ticket, error, false),
                    None => (ticket, body, true),
                }
            }
        };
        let pending = self.pending.remove(&ticket);
        if let (Some(stamps), Some(pending)) = (stamps, &pending) {
            self.timed.push((pending.received_us, stamps));
        }
        let (req_id, token) = pending.map_or((None, None), |p| (p.req_id, p.token.filter(|_| accepted)));
        Utf8Bytes::from(render::splice(&body, req_id.as_ref(), token.as_deref()))
    }
}

fn render_answer(answer: &QueryAnswer) -> String {
    match answer {
        QueryAnswer::Account { participant, account } => Msg::account(participant, account).text(),
        QueryAnswer::Lots(lots) => {
            Msg::Lots { lots: lots.iter().map(|(lot, reserve)| LotJson::new(lot, *reserve)).collect() }.text()
        }
        QueryAnswer::Orders(orders) => Msg::Orders { orders: orders.iter().map(OrderJson::new).collect() }.text(),
        QueryAnswer::Statement(statement) => render_statement(statement),
        QueryAnswer::ForwardStatement { .. } => unreachable!("the fan-out forwards statements to clearing"),
        QueryAnswer::Refused(reject) => render::error(reject.code, &reject.message),
        QueryAnswer::StandingBids(bids) => Msg::StandingBids {
            bids: bids
                .iter()
                .map(|(lot, bid, buyer)| render::StandingBidJson {
                    lot_id: lot.0,
                    max_price: render::Money(bid.max_price),
                    containers: bid.containers,
                    placed_ts: bid.placed_at.0,
                    buyer: *buyer,
                })
                .collect(),
        }
        .text(),
        QueryAnswer::Products(data) => render::products(data).text(),
        QueryAnswer::Limits(limits) => Msg::Limits(*limits).text(),
        QueryAnswer::Dispatch { buyer, day, lines } => Msg::Dispatch {
            buyer: *buyer,
            day: render::DayText(*day),
            lines: lines.iter().map(render::DispatchJson::new).collect(),
        }
        .text(),
        QueryAnswer::Quality { grower, quality } => render::quality(*grower, quality).text(),
        QueryAnswer::ForwardDispatch { .. } => unreachable!("the fan-out forwards get_dispatch to clearing"),
        QueryAnswer::Fees { current, next, day } => Msg::Fees {
            current: render::DatedFees { fees: render::FeesJson::new(current), day: render::DayText(*day) },
            next: next
                .map(|fees| render::DatedFees { fees: render::FeesJson::new(&fees), day: render::DayText(day.next()) }),
        }
        .text(),
    }
}

/// `statement {participant, day, lines, total_bought, total_sold, fees, commission, corrections,
/// net}` (protocol section 8); money as 2-dp strings. A seat's statement is a view of its firm's
/// lines: `view_of` names the firm (null on every other statement).
fn render_statement(statement: &huashi_clearing::Statement) -> String {
    let money = |v: rust_decimal::Decimal| format!("{:.2}", v);
    let lines: Vec<serde_json::Value> = statement
        .lines
        .iter()
        .map(|line| {
            serde_json::json!({
                "kind": line.kind.as_str(),
                "ref": line.reference,
                "product": line.product,
                "grade": line.grade.as_str(),
                "side": line.side.as_str(),
                "price": money(line.price),
                "units": line.units,
                "amount": money(line.amount),
                "fee": money(line.fee),
                "seat": line.seat,
                "round": line.round,
                "ts": line.ts.0,
            })
        })
        .collect();
    let body = serde_json::json!({
        "participant": statement.participant,
        "day": statement.day.to_string(),
        "fee_schedule": render::FeesJson::new(&statement.fee_schedule),
        "lines": lines,
        "total_bought": money(statement.total_bought),
        "total_sold": money(statement.total_sold),
        "fees": money(statement.fees),
        "commission": money(statement.commission),
        "corrections": money(statement.corrections),
        "net": money(statement.net),
        "view_of": statement.view_of,
    })
    .to_string();
    // Replies start with their `type` (see `render::splice`).
    format!("{{\"type\":\"statement\",{}", &body[1..])
}
