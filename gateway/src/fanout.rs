//! The fan-out: one std thread that consumes the sequencer's outputs in seq order and routes them.
//!
//! - the direct reply (or the rejection) to the requesting session, found by the output's
//!   `ticket` (`session id << 32 | request number`);
//! - private reports to every session of the participant(s) concerned;
//! - every output, in order, to clearing (whose thread then publishes the public feed).
//!
//! It also owns the session directory (token hash → participant, participant → sessions) and the
//! cancel-on-disconnect bookkeeping. Sessions and subscribers
//! reach it through one control channel; it answers through oneshots and per-session bounded
//! queues. It never blocks on a session: a full queue closes that session ("slow consumer").

use crate::feed_log::Feed;
use crate::messages::{
    Control, Credential, LoginInfo, Outbound, Principal, QueryAnswer, SessionLink, Stamps, Status, LINK_SLOW,
};
use crate::metrics::{Metrics, ReplyStage};
use crate::wire::render::{done_reason, liquidity, DayText, FeesJson, LotJson, Money, Msg, OrderJson};
use axum::extract::ws::Utf8Bytes;
use crossbeam_channel::{Receiver, Sender, TryRecvError};
use huashi_clearing::service::ClearingHandle;
use huashi_clearing::{Archive, Clearing};
use huashi_engine::command::{Action, ActionKind, Actor, Command, Roles};
use huashi_engine::core::credit::Account;
use huashi_engine::core::Market;
use huashi_engine::event::Event;
use huashi_engine::reject::Reject;
use huashi_engine::sequencer::{Output, SequencerHandle, Submission, SubmitError};
use huashi_engine::types::{Code, Day, Pk};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

struct Registered {
    link: SessionLink,
    principal: Principal,
    cancel_on_disconnect: bool,
}

/// Participants as the gateway needs them: to log in and to name them.
struct Directory {
    by_token: HashMap<[u8; 32], Pk>,
    by_pk: Vec<(Code, Roles)>,
    /// Each participant's firm, when it is a seat: a firm sees its seats' purchases too.
    firm_of: Vec<Option<Pk>>,
}

impl Directory {
    fn new(market: &Market) -> Directory {
        let mut directory = Directory { by_token: HashMap::new(), by_pk: Vec::new(), firm_of: Vec::new() };
        for p in market.participants().iter() {
            directory.add(p.pk, p.id, p.roles, p.token_hash, p.firm);
        }
        directory
    }

    fn add(&mut self, pk: Pk, id: Code, roles: Roles, token_hash: [u8; 32], firm: Option<Pk>) {
        assert_eq!(pk.0 as usize, self.by_pk.len(), "participants are registered in pk order");
        self.by_pk.push((id, roles));
        self.firm_of.push(firm);
        self.by_token.insert(token_hash, pk);
    }

    fn id(&self, pk: Pk) -> Option<Code> {
        self.by_pk.get(pk.0 as usize).map(|(id, _)| *id)
    }

    fn firm(&self, pk: Pk) -> Option<Pk> {
        self.firm_of.get(pk.0 as usize).copied().flatten()
    }
}

pub struct FanOutConfig {
    pub outputs: Receiver<Output>,
    pub control: Receiver<Control>,
    pub engine: SequencerHandle,
    pub initial: Arc<Market>,
    pub seq: u64,
    pub status: Arc<Status>,
    pub metrics: Arc<Metrics>,
    /// Every output goes on to clearing here, after it was routed.
    pub tap: Sender<Arc<Output>>,
    pub clearing: ClearingHandle<Feed>,
    /// Where clearing's statement answers come back.
    pub control_tx: Sender<Control>,
    /// A follower submits nothing (cancel-on-disconnect is the leader's).
    pub replica: Arc<crate::replica::Replica>,
}

pub struct FanOut {
    outputs: Receiver<Output>,
    control: Receiver<Control>,
    engine: SequencerHandle,
    status: Arc<Status>,
    metrics: Arc<Metrics>,
    replica: Arc<crate::replica::Replica>,
    sessions: HashMap<u32, Registered>,
    members: HashMap<Principal, Vec<u32>>,
    directory: Directory,
    cancel_on_disconnect: HashMap<Pk, u32>,
    cancel_retry: VecDeque<Pk>,
    tap: Sender<Arc<Output>>,
    clearing: ClearingHandle<Feed>,
    control_tx: Sender<Control>,
    /// A `plan_lots` whose reply comes with its last slice (a later tick's `LotsPlanned`): the
    /// reply it owes (timed by its own command's stamps) and who asked.
    pending_plan: Option<(Reply, Principal)>,
}

/// The direct reply an output owes: to which session, under which ticket, and when its command
/// was stamped and taken here (its timing, `metrics::ReplyStage`).
#[derive(Clone, Copy, Debug)]
struct Reply {
    session: u32,
    ticket: u64,
    stamps: Stamps,
}

/// An output this long after its stamp is worth a log line (a slow journal sync, a stall).
const SLOW_OUTPUT_US: u64 = 50_000;

/// How often the fan-out retries a cancel-on-disconnect the engine was too busy to take.
const RETRY_EVERY: Duration = Duration::from_millis(20);

impl FanOut {
    pub fn new(config: FanOutConfig) -> FanOut {
        config.status.seq.store(config.seq, Ordering::Relaxed);
        config.status.day.store(config.initial.day().0, Ordering::Relaxed);
        FanOut {
            outputs: config.outputs,
            control: config.control,
            engine: config.engine,
            status: config.status,
            metrics: config.metrics,
            replica: config.replica,
            sessions: HashMap::new(),
            members: HashMap::new(),
            directory: Directory::new(&config.initial),
            cancel_on_disconnect: HashMap::new(),
            cancel_retry: VecDeque::new(),
            tap: config.tap,
            clearing: config.clearing,
            control_tx: config.control_tx,
            pending_plan: None,
        }
    }

    /// Runs until the sequencer stops (its outputs channel closes).
    pub fn run(mut self) {
        huashi_engine::sequencer::prefer_prompt_wakeups();
        // After a restart the sequencer's first output halts the clocks that were auctioning;
        // `initial` is the market after it, and every control message (a login) is handled only
        // after the outputs already queued (`drain_outputs`), so no one sees the market before.
        loop {
            crossbeam_channel::select! {
                recv(self.outputs) -> output => match output {
                    Ok(output) => self.route(output),
                    Err(_) => break,
                },
                recv(self.control) -> control => match control {
                    Ok(control) => {
                        self.drain_outputs();
                        self.handle(control);
                    }
                    // Every sender is gone: keep routing until the sequencer stops.
                    Err(_) => self.control = crossbeam_channel::never(),
                },
                default(RETRY_EVERY) => {}
            }
            if !self.cancel_retry.is_empty() {
                self.retry_cancels();
            }
        }
        tracing::debug!("fan-out stopped");
    }

    /// Routes every output already queued, so that a control message (a query's answer, a new
    /// subscriber) is handled after all the outputs that happened before it.
    fn drain_outputs(&mut self) {
        for _ in 0..self.outputs.len() {
            match self.outputs.try_recv() {
                Ok(output) => self.route(output),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
    }

    fn handle(&mut self, control: Control) {
        match control {
            Control::Login { link, credential, cancel_on_disconnect, reply } => {
                let info = self.login(link, credential, cancel_on_disconnect);
                let _ = reply.send(info);
            }
            Control::Leave { session } => self.drop_session(session),
            Control::Answer { session, ticket, answer: QueryAnswer::ForwardStatement { participant, day } } => {
                self.forward_statement(session, ticket, participant, day);
            }
            Control::Answer { session, ticket, answer: QueryAnswer::ForwardDispatch { who, day } } => {
                self.forward_dispatch(session, ticket, who, day);
            }
            Control::Answer { session, ticket, answer } => {
                self.send(session, Outbound::Answer { ticket, answer });
            }
            Control::Drain { reply } => {
                let _ = reply.send(());
            }
        }
    }

    /// Asks clearing for a statement; its answer comes back as a `Control::Answer`.
    fn forward_statement(&mut self, session: u32, ticket: u64, participant: Code, day: huashi_engine::types::Day) {
        let control = self.control_tx.clone();
        let asked = self.clearing.ask(Box::new(move |clearing, archive, _| {
            let answer = clearing_statement(clearing, archive, participant, day);
            let _ = control.send(Control::Answer { session, ticket, answer });
        }));
        if !asked {
            let reject = Reject::new(huashi_engine::reject::RejectCode::Internal, "clearing is not available, retry");
            self.send(session, Outbound::Answer { ticket, answer: QueryAnswer::Refused(reject) });
        }
    }

    /// Asks clearing for a day's dispatch lines (`get_dispatch`): its memory (today's and the
    /// previous trading day's, current), else the archive (final). A day without trade is an
    /// empty list. Clearing has taken every output before this query's, so a line is never older
    /// than the reply to the request that moved it.
    fn forward_dispatch(&mut self, session: u32, ticket: u64, who: Option<Code>, day: huashi_engine::types::Day) {
        let control = self.control_tx.clone();
        let asked = self.clearing.ask(Box::new(move |clearing, archive, _| {
            let lines = match clearing.goods_of_day(day) {
                Some(goods) => Ok(goods.lines.values().cloned().collect()),
                None => archive.goods_lines(day).map_err(|e| e.to_string()),
            };
            let answer = match lines {
                Ok(lines) => {
                    let mine = |l: &huashi_clearing::GoodsLine| who.is_none_or(|w| l.buyer == w || l.seat == Some(w));
                    let lines = lines.into_iter().filter(mine).map(|l| l.view(day)).collect();
                    QueryAnswer::Dispatch { buyer: who, day, lines }
                }
                Err(error) => QueryAnswer::Refused(Reject::new(
                    huashi_engine::reject::RejectCode::Internal,
                    format!("archive: {error}"),
                )),
            };
            let _ = control.send(Control::Answer { session, ticket, answer });
        }));
        if !asked {
            let reject = Reject::new(huashi_engine::reject::RejectCode::Internal, "clearing is not available, retry");
            self.send(session, Outbound::Answer { ticket, answer: QueryAnswer::Refused(reject) });
        }
    }

    fn login(&mut self, link: SessionLink, credential: Credential, cancel_on_disconnect: bool) -> Option<LoginInfo> {
        let (principal, participant, roles) = match credential {
            Credential::Operator => (Principal::Operator, "operator".to_string(), vec!["operator"]),
            Credential::TokenHash(hash) => {
                let pk = *self.directory.by_token.get(&hash)?;
                let (id, roles) = self.directory.by_pk[pk.0 as usize];
                (Principal::Participant(pk), id.to_string(), roles.names())
            }
        };
        let firm = match principal {
            Principal::Participant(pk) => self.directory.firm(pk).and_then(|f| self.directory.id(f)),
            Principal::Operator => None,
        };
        let cancel_on_disconnect = cancel_on_disconnect && matches!(principal, Principal::Participant(_));
        if let (true, Principal::Participant(pk)) = (cancel_on_disconnect, principal) {
            *self.cancel_on_disconnect.entry(pk).or_default() += 1;
        }
        let id = link.id;
        self.members.entry(principal).or_default().push(id);
        self.sessions.insert(id, Registered { link, principal, cancel_on_disconnect });
        Some(LoginInfo { principal, participant, roles, day: self.status.day(), firm })
    }

    /// Forgets a session; if it was its participant's last cancel-on-disconnect session, cancels
    /// the participant's open orders.
    fn drop_session(&mut self, session: u32) {
        let Some(registered) = self.sessions.remove(&session) else { return };
        if let Some(ids) = self.members.get_mut(&registered.principal) {
            ids.retain(|id| *id != session);
            if ids.is_empty() {
                self.members.remove(&registered.principal);
            }
        }
        if let (true, Principal::Participant(pk)) = (registered.cancel_on_disconnect, registered.principal) {
            let count = self.cancel_on_disconnect.get_mut(&pk).expect("counted at login");
            *count -= 1;
            if *count == 0 {
                self.cancel_on_disconnect.remove(&pk);
                self.submit_cancel(pk);
            }
        }
    }

    fn submit_cancel(&mut self, pk: Pk) {
        if self.replica.role() == crate::replica::Role::Follower {
            // Orders live on the leader, whose own sessions' disconnects cancel them.
            return;
        }
        let command = Command::new(Actor::Participant(pk), Action::CancelOnDisconnect);
        match self.engine.try_submit(Submission::Command { command, ticket: 0 }) {
            Ok(()) | Err(SubmitError::Stopped) => {}
            // Never block the thread the sequencer's outputs depend on: try again shortly.
            Err(SubmitError::Busy) => self.cancel_retry.push_back(pk),
        }
    }

    fn retry_cancels(&mut self) {
        for _ in 0..self.cancel_retry.len() {
            let pk = self.cancel_retry.pop_front().expect("counted");
            self.submit_cancel(pk);
        }
    }

    /// Queues a message for one session; a full queue closes it as a slow consumer.
    fn send(&mut self, session: u32, outbound: Outbound) -> bool {
        let Some(registered) = self.sessions.get(&session) else { return false };
        match registered.link.tx.try_send(outbound) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                registered.link.state.store(LINK_SLOW, Ordering::Release);
                self.metrics.slow_session_closes.fetch_add(1, Ordering::Relaxed);
                tracing::info!(session, "closing a session that does not keep up with its reports");
                self.drop_session(session);
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.drop_session(session);
                false
            }
        }
    }

    /// Sends `body` to every session of `principal`; the requesting session (`reply`) gets it as
    /// its direct reply. Returns whether the reply was delivered.
    fn deliver(&mut self, principal: Principal, body: String, reply: Option<Reply>) -> bool {
        let body = Utf8Bytes::from(body);
        let mut replied = false;
        let members = self.members.get(&principal).cloned().unwrap_or_default();
        for session in members {
            let outbound = match reply {
                Some(Reply { session: requester, ticket, stamps }) if requester == session => {
                    replied = true;
                    Outbound::Reply { ticket, body: body.clone(), stamps }
                }
                _ => Outbound::Frame(body.clone()),
            };
            self.send(session, outbound);
        }
        replied
    }

    fn route(&mut self, output: Output) {
        // Clearing (and after it the public feed) must see every output: it may slow the fan-out,
        // by design. First, before any reply leaves: a client that read its reply and then asks
        // clearing (a statement, a feed snapshot) finds the output already queued there, and
        // clearing takes what is queued before it answers. Its receiver goes only with its
        // thread, so a failed send means clearing died; the binary's panic hook has ended the
        // process before, this is for a node embedded without it.
        let output = Arc::new(output);
        if self.tap.send(Arc::clone(&output)).is_err() {
            crate::fatal::exit(crate::fatal::EXIT_PANIC, "the clearing thread is gone", None);
        }
        self.metrics.outputs.fetch_add(1, Ordering::Relaxed);
        self.status.seq.store(output.seq, Ordering::Relaxed);
        // A follower's outputs were stamped by the leader, maybe long ago (catching up): their
        // latency is replication's, which `/health`'s lag shows.
        let now = huashi_engine::sequencer::wall_us();
        let stamps = Stamps { stamped_us: output.ts.0, routed_us: now };
        let requester = (output.ticket >> 32) as u32;
        if self.replica.role() != crate::replica::Role::Follower {
            let latency_us = now.saturating_sub(output.ts.0);
            if requester != 0 {
                self.metrics.reply_stage(ReplyStage::Applied, output.ts.0, output.sync_started_us);
                self.metrics.reply_stage(ReplyStage::Synced, output.sync_started_us, output.durable_us);
                self.metrics.reply_stage(ReplyStage::Released, output.durable_us, now);
            }
            self.metrics.engine_latency(latency_us);
            if latency_us > SLOW_OUTPUT_US {
                tracing::warn!(seq = output.seq, action = output.action.name(), latency_us, "slow engine output");
            }
        }
        // Before any reply leaves: whoever was told of a change and asks for the catalogue next
        // must not get a copy from before it.
        if output.events.iter().any(crate::catalogue::changes_lots) {
            self.status.lots_version.fetch_add(1, Ordering::Release);
        }
        let actor = Principal::of(output.actor);
        let first = output.first_command_event;
        let reply_at = match &output.result {
            Ok(()) => output.events[first..].iter().position(|e| is_reply(output.action, e)).map(|i| i + first),
            Err(reject) => {
                self.metrics.reject(reject.code);
                if requester != 0 {
                    self.send(requester, Outbound::Reject { ticket: output.ticket, reject: reject.clone(), stamps });
                }
                None
            }
        };
        let mut replied = false;
        for (i, event) in output.events.iter().enumerate() {
            let owed = Reply { session: requester, ticket: output.ticket, stamps };
            let mut reply = (Some(i) == reply_at && requester != 0).then_some(owed);
            let mut to = actor;
            match event {
                // A plan placed in slices: its reply waits for the last one.
                Event::PlanningStarted { .. } if reply_at.is_none() && output.result.is_ok() => {
                    if let Some(principal) = actor.filter(|_| requester != 0) {
                        self.pending_plan = Some((owed, principal));
                    }
                    replied = true;
                }
                Event::LotsPlanned { .. } if reply.is_none() => {
                    if let Some((owed, principal)) = self.pending_plan.take() {
                        reply = Some(owed);
                        to = Some(principal);
                    }
                }
                _ => {}
            }
            replied |= self.report(event, to, reply);
            self.observe(event);
        }
        if output.result.is_ok() && !replied && self.sessions.contains_key(&requester) {
            // Every accepted request has a reply event; answer anyway rather than leave it waiting.
            tracing::warn!(action = output.action.name(), "no reply event for an accepted request");
            let body = format!("{{\"type\":\"ok\",\"action\":\"{}\"}}", output.action.name());
            self.send(requester, Outbound::Reply { ticket: output.ticket, body: Utf8Bytes::from(body), stamps });
        }
    }

    /// Bookkeeping the gateway keeps from events: the directory and the day.
    fn observe(&mut self, event: &Event) {
        match event {
            Event::ParticipantRegistered { pk, id, roles, token_hash, firm, .. } => {
                self.directory.add(*pk, *id, *roles, *token_hash, *firm);
            }
            Event::DaySettled { next_day, .. } => self.status.day.store(next_day.0, Ordering::Relaxed),
            _ => {}
        }
    }

    /// Delivers an event's private reports; returns whether the direct reply went out.
    fn report(&mut self, event: &Event, actor: Option<Principal>, reply: Option<Reply>) -> bool {
        use Principal::Participant as P;
        let to_actor = |msg: Msg<'_>| actor.map(|a| (a, msg.text()));
        let deliveries: Vec<(Principal, String)> = match event {
            Event::ParticipantRegistered { id, .. } => {
                to_actor(Msg::ParticipantRegistered { id: *id }).into_iter().collect()
            }
            Event::CreditLimitSet { pk, id, limit, daily_limit } => {
                let seat = self.directory.firm(*pk).is_some();
                let msg = Msg::CreditLimitSet {
                    participant: *id,
                    limit: (!seat).then_some(Money(*limit)),
                    daily_limit: daily_limit.map(Money),
                };
                to_actor(msg).into_iter().collect()
            }
            Event::ParticipantStatus { id, active, .. } => {
                to_actor(Msg::ParticipantStatus { participant: *id, active: *active }).into_iter().collect()
            }
            Event::ProductDefined { code, .. } => to_actor(Msg::ProductDefined { code: *code }).into_iter().collect(),
            Event::InstrumentDefined { symbol } => {
                to_actor(Msg::InstrumentDefined { symbol: *symbol }).into_iter().collect()
            }
            Event::LotConsigned { lot } => {
                vec![(P(lot.grower), Msg::LotConsigned { lot: LotJson::new(lot, true) }.text())]
            }
            Event::LotAssigned { lot, clock, position } => {
                to_actor(Msg::LotAssigned { lot_id: lot.0, clock: clock.0, position: *position }).into_iter().collect()
            }
            Event::LotWithdrawn { lot, grower } => {
                // The operator's reply, and the grower is told (protocol section 5).
                let text = Msg::LotWithdrawn { lot_id: lot.0 }.text();
                let mut to: Vec<Principal> = actor.into_iter().collect();
                if !to.contains(&P(*grower)) {
                    to.push(P(*grower));
                }
                to.into_iter().map(|p| (p, text.clone())).collect()
            }
            Event::ClockConfigured { clock, settings } => {
                to_actor(Msg::clock_configured(clock.0, settings)).into_iter().collect()
            }
            // Public events that are also the reply to the request that caused them.
            Event::ClockState { clock, phase } if reply.is_some() => {
                to_actor(Msg::clock_state(clock.0, *phase)).into_iter().collect()
            }
            Event::BookStateChanged { symbol, state } if reply.is_some() => {
                let state = crate::wire::render::book_state(*state);
                to_actor(Msg::BookState { symbol: *symbol, state }).into_iter().collect()
            }
            Event::DaySettled { day, next_day, trades, turnover, fees } if reply.is_some() => {
                to_actor(Msg::DaySettled {
                    day: DayText(*day),
                    next_day: DayText(*next_day),
                    trades: *trades,
                    turnover: Money(*turnover),
                    fees: Money(*fees),
                })
                .into_iter()
                .collect()
            }
            Event::Awarded(award) => {
                vec![(P(award.buyer), Msg::award(award).text()), (P(award.grower), Msg::lot_sale(award).text())]
            }
            Event::PresaleBought(sale) => vec![
                (P(sale.buyer), Msg::presale_bought(sale).text()),
                (P(sale.grower), Msg::presale_lot_sale(sale).text()),
            ],
            Event::PresaleOffered { lot, grower, price, containers } => vec![(
                P(*grower),
                Msg::PresaleOffered { lot_id: lot.0, price: Money(*price), containers: *containers }.text(),
            )],
            Event::PresaleWithdrawn { lot, grower, containers, .. } => {
                vec![(P(*grower), Msg::PresaleWithdrawn { lot_id: lot.0, containers: *containers }.text())]
            }
            Event::ClockPlanSet { clock, plan } => to_actor(Msg::ClockPlan {
                clock: clock.0,
                products: plan.products.clone(),
                start_time: plan.start_time.map(crate::wire::render::time_of_day),
            })
            .into_iter()
            .collect(),
            Event::OrderDrawn { day, seed, growers } => {
                to_actor(Msg::OrderDrawn { day: DayText(*day), seed: crate::wire::render::seed_hex(*seed), growers })
                    .into_iter()
                    .collect()
            }
            Event::LotsPlanned { day, assigned, unplanned } => to_actor(Msg::LotsPlanned {
                day: DayText(*day),
                assigned: assigned
                    .iter()
                    .map(|p| crate::wire::render::PlannedJson {
                        lot_id: p.lot.0,
                        clock: p.clock.0,
                        position: p.position,
                        start_price: Money(p.start_price),
                    })
                    .collect(),
                unplanned: unplanned.iter().map(|l| l.0).collect(),
            })
            .into_iter()
            .collect(),
            Event::AwardVoided { clock, lot, round, buyer, grower, containers, remaining, .. } => {
                let text = Msg::AwardVoided {
                    clock: clock.0,
                    lot_id: lot.0,
                    round: *round,
                    containers: *containers,
                    remaining: *remaining,
                    buyer: self.directory.id(*buyer),
                }
                .text();
                let mut to: Vec<Principal> = actor.into_iter().collect();
                for party in [P(*buyer), P(*grower)] {
                    if !to.contains(&party) {
                        to.push(party);
                    }
                }
                to.into_iter().map(|p| (p, text.clone())).collect()
            }
            Event::StandingBidAccepted { buyer, lot, max_price, containers } => vec![(
                P(*buyer),
                Msg::StandingBidAccepted { lot_id: lot.0, max_price: Money(*max_price), containers: *containers }
                    .text(),
            )],
            Event::StandingBidCancelled { buyer, lot } => {
                vec![(P(*buyer), Msg::StandingBidCancelled { lot_id: lot.0 }.text())]
            }
            Event::StandingBidDropped { buyer, lot, reject } => {
                let message = format!("standing bid on lot {} dropped: {}", lot.0, reject.message);
                let text = Msg::Error { code: reject.code.as_str(), message: &message, lot_id: Some(lot.0) }.text();
                self.metrics.reject(reject.code);
                vec![(P(*buyer), text)]
            }
            Event::OrderAccepted(r) => vec![(P(r.owner), Msg::OrderAccepted(OrderJson::new(r)).text())],
            Event::OrderAmended(r) => vec![(P(r.owner), Msg::OrderAmended(OrderJson::new(r)).text())],
            Event::Fill {
                owner,
                order_id,
                client_order_id,
                trade_id,
                symbol,
                side,
                price,
                quantity,
                leaves,
                liquidity: l,
                ts,
            } => vec![(
                P(*owner),
                Msg::Fill {
                    order_id: order_id.0,
                    client_order_id: *client_order_id,
                    trade_id: trade_id.0,
                    symbol: *symbol,
                    side: side.as_str(),
                    price: Money(*price),
                    quantity: *quantity,
                    leaves: *leaves,
                    liquidity: liquidity(*l),
                    ts: ts.0,
                }
                .text(),
            )],
            Event::OrderDone { owner, order_id, client_order_id, symbol, reason, ts } => vec![(
                P(*owner),
                Msg::OrderDone {
                    order_id: order_id.0,
                    client_order_id: *client_order_id,
                    symbol: *symbol,
                    reason: done_reason(*reason),
                    ts: ts.0,
                }
                .text(),
            )],
            Event::Cancelled { owner, count } => {
                vec![(P(*owner), Msg::Cancelled { participant: None, count: *count }.text())]
            }
            Event::OrdersCancelled { participant, count, .. } => {
                to_actor(Msg::Cancelled { participant: Some(*participant), count: *count }).into_iter().collect()
            }
            Event::LimitsSet(limits) => to_actor(Msg::LimitsSet(*limits)).into_iter().collect(),
            Event::FeesSet { fees, effective_day } => {
                to_actor(Msg::FeesSet { fees: FeesJson::new(fees), effective_day: DayText(*effective_day) })
                    .into_iter()
                    .collect()
            }
            Event::ColdChainSet { category, max_temperature } => to_actor(Msg::ColdChainSet {
                category: category.as_str(),
                max_temperature_c: crate::wire::render::temperature(*max_temperature),
            })
            .into_iter()
            .collect(),
            Event::DestinationSet { buyer, day, destination } => {
                vec![(P(*buyer), Msg::DestinationSet { day: DayText(*day), destination }.text())]
            }
            Event::DispatchUpdated { line, alarm_raised, max_temperature, .. } => {
                // The mover's reply, and the buyer (the seat that bought; its firm by the rule
                // below) sees its line move live (protocol section 12).
                let owner = P(line.seat.map_or(line.buyer, |(seat, _)| seat));
                let text = Msg::DispatchUpdated(crate::wire::render::DispatchJson::new(line)).text();
                let mut to: Vec<(Principal, String)> = actor.map(|a| (a, text.clone())).into_iter().collect();
                if actor != Some(owner) {
                    to.push((owner, text));
                }
                if *alarm_raised {
                    let alarm = Msg::TemperatureAlarm {
                        reference: line.reference.to_string(),
                        lot_id: line.reference.lot().map(|l| l.0),
                        product: line.product,
                        temperature_c: line.temperature.map(crate::wire::render::temperature),
                        max_temperature_c: max_temperature.map(crate::wire::render::temperature),
                        location: &line.location,
                        ts: line.updated.0,
                    };
                    to.push((owner, alarm.text()));
                }
                to
            }
            Event::ComplaintFiled(complaint) => to_actor(Msg::ComplaintFiled {
                complaint_id: complaint.id,
                reference: complaint.reference.to_string(),
                reason: complaint.reason.as_str(),
                containers: complaint.containers,
            })
            .into_iter()
            .collect(),
            Event::ComplaintResolved(complaint) => {
                let (decision, credit) = complaint.decision.expect("a resolved complaint has its decision");
                let text = Msg::ComplaintResolved {
                    complaint_id: complaint.id,
                    decision: decision.as_str(),
                    credit: Money(credit),
                    reference: complaint.reference.to_string(),
                    containers: complaint.containers,
                }
                .text();
                // The operator's reply, the buyer who filed it and the seller who pays.
                let mut to: Vec<Principal> = actor.into_iter().collect();
                for p in [P(complaint.buyer), P(complaint.seller)] {
                    if !to.contains(&p) {
                        to.push(p);
                    }
                }
                to.into_iter().map(|p| (p, text.clone())).collect()
            }
            _ => Vec::new(),
        };
        // A firm sees everything of its seats' (protocol section 4): their purchases, fills,
        // orders and standing bids reach the firm's sessions too, as plain frames.
        let firm_copies: Vec<(Principal, String)> = deliveries
            .iter()
            .filter_map(|(to, text)| match to {
                P(pk) => self.directory.firm(*pk).map(|firm| (P(firm), text.clone())),
                Principal::Operator => None,
            })
            .collect();
        let mut replied = false;
        for (principal, text) in deliveries.into_iter().chain(firm_copies) {
            replied |= self.deliver(principal, text, reply);
        }
        replied
    }
}

/// Which event of an accepted command is its direct reply (protocol sections 3–8). Exhaustive
/// over the kinds, so a new action cannot go without a reply.
fn is_reply(action: ActionKind, event: &Event) -> bool {
    use ActionKind as A;
    match action {
        A::RegisterParticipant => matches!(event, Event::ParticipantRegistered { .. }),
        A::SetCreditLimit => matches!(event, Event::CreditLimitSet { .. }),
        A::SuspendParticipant | A::ReinstateParticipant => matches!(event, Event::ParticipantStatus { .. }),
        A::DefineProduct => matches!(event, Event::ProductDefined { .. }),
        A::DefineInstrument => matches!(event, Event::InstrumentDefined { .. }),
        A::ConsignLot => matches!(event, Event::LotConsigned { .. }),
        A::AssignLot => matches!(event, Event::LotAssigned { .. }),
        A::ConfigureClock => matches!(event, Event::ClockConfigured { .. }),
        A::StartClock | A::HaltClock => matches!(event, Event::ClockState { .. }),
        A::WithdrawLot => matches!(event, Event::LotWithdrawn { .. }),
        A::VoidAward => matches!(event, Event::AwardVoided { .. }),
        A::Bid => matches!(event, Event::Awarded(_)),
        A::StandingBid => matches!(event, Event::StandingBidAccepted { .. }),
        A::CancelStandingBid => matches!(event, Event::StandingBidCancelled { .. }),
        A::SetBookState => matches!(event, Event::BookStateChanged { .. }),
        A::NewOrder => matches!(event, Event::OrderAccepted(_)),
        A::CancelOrder => matches!(event, Event::OrderDone { .. }),
        A::AmendOrder => matches!(event, Event::OrderAmended(_)),
        A::CancelAll => matches!(event, Event::Cancelled { .. }),
        A::EndOfDay => matches!(event, Event::DaySettled { .. }),
        A::SetLimits => matches!(event, Event::LimitsSet(_)),
        A::CancelOrders => matches!(event, Event::OrdersCancelled { .. }),
        A::SetFees => matches!(event, Event::FeesSet { .. }),
        A::SetClockPlan => matches!(event, Event::ClockPlanSet { .. }),
        A::DrawOrder => matches!(event, Event::OrderDrawn { .. }),
        A::PlanLots => matches!(event, Event::LotsPlanned { .. }),
        A::OfferPresale => matches!(event, Event::PresaleOffered { .. }),
        A::BuyPresale => matches!(event, Event::PresaleBought(_)),
        A::WithdrawPresale => matches!(event, Event::PresaleWithdrawn { .. }),
        A::SetColdChain => matches!(event, Event::ColdChainSet { .. }),
        A::SetDestination => matches!(event, Event::DestinationSet { .. }),
        A::UpdateDispatch => matches!(event, Event::DispatchUpdated { .. }),
        A::FileComplaint => matches!(event, Event::ComplaintFiled(_)),
        A::ResolveComplaint => matches!(event, Event::ComplaintResolved(_)),
        // The engine's own: no one is waiting for a reply.
        A::Tick | A::HaltAllClocks | A::CancelOnDisconnect => false,
    }
}

/// Answers a query from the market (runs on the sequencer thread; keep it a copy, no rendering).
pub fn answer(market: &Market, principal: Principal, query: &crate::wire::Request) -> QueryAnswer {
    use crate::wire::Request;
    match query {
        Request::GetAccount => match principal {
            Principal::Operator => QueryAnswer::Account { participant: "operator".into(), account: Account::default() },
            Principal::Participant(pk) => {
                let p = market.participants().get(pk);
                QueryAnswer::Account { participant: p.id.to_string(), account: p.account.clone() }
            }
        },
        Request::GetLots { status } => {
            let sees_all_reserves = match principal {
                Principal::Operator => true,
                Principal::Participant(pk) => market.participants().get(pk).roles.operator,
            };
            let lots = market.visible_lots(principal.actor(), *status).unwrap_or_default();
            QueryAnswer::Lots(
                lots.into_iter()
                    .map(|lot| {
                        let reserve = sees_all_reserves || Principal::Participant(lot.grower) == principal;
                        (lot.clone(), reserve)
                    })
                    .collect(),
            )
        }
        Request::GetOrders => match principal {
            Principal::Operator => QueryAnswer::Orders(Vec::new()),
            // A firm sees its seats' open orders beside its own (protocol section 4).
            Principal::Participant(pk) => QueryAnswer::Orders(
                std::iter::once(pk)
                    .chain(market.participants().seats_of(pk).map(|seat| seat.pk))
                    .flat_map(|owner| market.open_orders(owner))
                    .collect(),
            ),
        },
        Request::GetStatement { participant, day } => match statement(market, principal, *participant) {
            Ok(participant) => QueryAnswer::ForwardStatement { participant, day: *day },
            Err(reject) => QueryAnswer::Refused(reject),
        },
        Request::GetLimits => QueryAnswer::Limits(*market.limits()),
        Request::GetStandingBids => match principal {
            Principal::Operator => QueryAnswer::StandingBids(Vec::new()),
            Principal::Participant(pk) => QueryAnswer::StandingBids(
                market
                    .standing_bids_of(pk)
                    .into_iter()
                    .map(|(lot, bid)| (lot, bid, market.participants().get(bid.buyer).id))
                    .collect(),
            ),
        },
        Request::GetProducts => QueryAnswer::Products(Box::new(crate::wire::render::ReferenceData::of(market))),

        Request::GetDispatch { day, buyer } => dispatch(market, principal, *day, *buyer),
        Request::GetQuality { grower } => match market.participants().lookup(grower) {
            Ok(pk) if market.participants().get(pk).roles.grower => {
                QueryAnswer::Quality { grower: *grower, quality: market.quality(pk) }
            }
            Ok(_) => QueryAnswer::Refused(Reject::not_found(format!("{grower} is not a grower"))),
            Err(reject) => QueryAnswer::Refused(reject),
        },
        Request::GetFees => QueryAnswer::Fees { current: market.fees(), next: market.next_fees(), day: market.day() },
        other => unreachable!("{other:?} is not a query"),
    }
}

/// `get_dispatch`: a buyer its own lines (a firm with its seats'); the operator and logistics
/// any buyer's, or every line. The sequencer only checks who may ask; clearing answers.
fn dispatch(market: &Market, principal: Principal, day: Option<Day>, buyer: Option<Code>) -> QueryAnswer {
    let participants = market.participants();
    let day = day.unwrap_or(market.day());
    let (own, sees_all) = match principal {
        Principal::Operator => (None, true),
        Principal::Participant(pk) => {
            let p = participants.get(pk);
            (p.roles.buyer.then_some(pk), p.roles.operator || p.roles.logistics)
        }
    };
    let whose = match (buyer, own, sees_all) {
        (Some(id), _, true) => match participants.lookup(&id) {
            Ok(pk) => Some(pk),
            Err(reject) => return QueryAnswer::Refused(reject),
        },
        (None, _, true) => None,
        (Some(id), Some(own), false) if participants.get(own).id != id => {
            return QueryAnswer::Refused(Reject::forbidden("a buyer may read only its own dispatch lines"))
        }
        (_, Some(own), false) => Some(own),
        (_, None, false) => {
            return QueryAnswer::Refused(Reject::forbidden("get_dispatch needs the buyer, logistics or operator role"))
        }
    };
    if day > market.day() {
        return QueryAnswer::Refused(Reject::invalid_state(format!(
            "day {day} has not begun: today is {}",
            market.day()
        )));
    }
    // The lines themselves are clearing's to copy and filter, off the sequencer: it has every
    // line of every day, current to the outputs before this query.
    QueryAnswer::ForwardDispatch { who: whose.map(|pk| participants.get(pk).id), day }
}

/// `get_statement`: own, or any for operators; the statement itself comes from clearing.
fn statement(market: &Market, principal: Principal, participant: Option<Code>) -> Result<Code, Reject> {
    let participants = market.participants();
    let (own, operator) = match principal {
        Principal::Operator => (None, true),
        Principal::Participant(pk) => {
            let p = participants.get(pk);
            (Some(p.id), p.roles.operator)
        }
    };
    match (participant, own) {
        (Some(id), _) if operator => participants.lookup(&id).map(|_| id),
        (Some(id), Some(own)) if id != own => Err(Reject::forbidden("a participant may read only its own statement")),
        (None, None) => Err(Reject::bad_request("missing field `participant`: the market operator has no statement")),
        (_, Some(own)) => Ok(own),
        (Some(id), None) => Ok(id),
    }
}

/// `get_statement` from clearing: today's (or a settled day still in memory), else the archive's;
/// a day on which the participant had no activity is an empty statement; a day not yet begun is
/// `invalid_state`.
fn clearing_statement(clearing: &Clearing, archive: &Archive, participant: Code, day: Day) -> QueryAnswer {
    use huashi_clearing::StatementLookup;
    if day > clearing.day() {
        return QueryAnswer::Refused(Reject::invalid_state(format!("day {day} has not begun")));
    }
    let found = match clearing.statement(&participant, day) {
        StatementLookup::Found(statement) => Some(statement),
        StatementLookup::InArchive => match archive.statement(day, &participant) {
            Ok(found) => found,
            Err(error) => {
                let reject = Reject::new(huashi_engine::reject::RejectCode::Internal, format!("archive: {error}"));
                return QueryAnswer::Refused(reject);
            }
        },
        StatementLookup::NoActivity => None,
    };
    let statement = found.unwrap_or_else(|| {
        let mut empty = huashi_clearing::Statement::from_lines(participant, day, clearing.fees_on(day), Vec::new());
        // A seat's empty statement is still a view of its firm's.
        empty.view_of = clearing.firm_of(&participant);
        empty
    });
    QueryAnswer::Statement(Box::new(statement))
}
