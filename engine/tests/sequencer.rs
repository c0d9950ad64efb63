//! The sequencer end to end on a real data directory: durable outputs in seq order, timers that
//! fire with no input, recovery (snapshot + replay = replay from genesis), the journaled halt of
//! clocks after a restart, and the busy answer of a full queue.

use huashi_engine::command::{Action, Actor, ClockSettingsPatch, Command, Consignment, Roles};
use huashi_engine::core::catalogue::Grade;
use huashi_engine::core::clock::ClockPhase;
use huashi_engine::core::lots::LotStatus;
use huashi_engine::core::{Market, MarketConfig};
use huashi_engine::event::Event;
use huashi_engine::journal::Durability;
use huashi_engine::sequencer::{Output, Query, Sequencer, SequencerConfig, Submission, SubmitError};
use huashi_engine::store;
use huashi_engine::types::{ClockId, Code, Day, Fen, LotId, Pk};
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

fn genesis() -> MarketConfig {
    MarketConfig::new(Day::parse("2026-11-29").unwrap())
}

fn start(dir: &Path) -> Sequencer {
    let mut config = SequencerConfig::new(dir);
    config.snapshot_every = 7;
    config.segment_bytes = 4096;
    Sequencer::start(config, genesis, |_, _, _| {}).expect("sequencer starts")
}

fn op(action: Action) -> Command {
    Command::new(Actor::Operator, action)
}

fn register(id: &str, grower: bool, buyer: bool) -> Command {
    op(Action::RegisterParticipant {
        id: Code::from_static(Box::leak(id.to_string().into_boxed_str())),
        name: id.to_string(),
        roles: Roles { operator: false, grower, buyer, logistics: false },
        credit_limit: Fen(10_000_000),
        token_hash: [7; 32],
        firm: None,
        daily_limit: None,
    })
}

fn consign(grower: Pk, containers: u32) -> Command {
    Command::new(
        Actor::Participant(grower),
        Action::ConsignLot(Box::new(Consignment {
            product: Code::from_static("ROSE"),
            grade: Grade::A1,
            units_per_container: 50,
            containers,
            min_price: Fen(100),
            min_purchase: 1,
            origin: "Yunnan".into(),
            photo_url: String::new(),
            note: String::new(),
            master: Default::default(),
        })),
    )
}

/// Submits and waits for the command's own output.
fn submit(sequencer: &Sequencer, command: Command, ticket: u64) -> Output {
    sequencer.handle.try_submit(Submission::Command { command, ticket }).expect("queue has room");
    loop {
        let output = sequencer.outputs.recv_timeout(Duration::from_secs(10)).expect("an output");
        if output.ticket == ticket {
            return output;
        }
    }
}

fn hash_now(sequencer: &Sequencer) -> u64 {
    let (tx, rx) = mpsc::channel();
    let query: Query = Box::new(move |m: &Market| {
        let hash = m.state_hash();
        Box::new(move || tx.send(hash).unwrap())
    });
    sequencer.handle.try_submit(Submission::Query(query)).unwrap();
    rx.recv_timeout(Duration::from_secs(10)).unwrap()
}

#[test]
fn outputs_come_in_seq_order_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let sequencer = start(dir.path());
    let mut last_seq = 0;
    for (ticket, command) in
        [register("g1", true, false), register("b1", false, true), consign(Pk(0), 10), consign(Pk(0), 5)]
            .into_iter()
            .enumerate()
    {
        let output = submit(&sequencer, command, ticket as u64 + 1);
        assert!(output.result.is_ok(), "{:?}", output.result);
        assert_eq!(output.seq, last_seq + 1, "seqs are gapless");
        last_seq = output.seq;
    }
    // A rejected command is journaled too (it moved time) but changes nothing.
    let rejected = submit(&sequencer, consign(Pk(1), 3), 99);
    assert_eq!(rejected.result.unwrap_err().code, huashi_engine::reject::RejectCode::Forbidden);
    let live_hash = hash_now(&sequencer);
    sequencer.shutdown().unwrap();

    let (market, recovered) = store::read_only(dir.path(), false, |_, _, _| {}).unwrap();
    assert_eq!(market.state_hash(), live_hash);
    assert_eq!(recovered.last_seq, last_seq + 1);
    assert_eq!(market.lots().len(), 2);

    let restarted = start(dir.path());
    assert_eq!(hash_now(&restarted), live_hash, "restart recovers the same state");
    let next = submit(&restarted, consign(Pk(0), 1), 1);
    assert_eq!(next.seq, last_seq + 2, "seq continues where it was");
    let lot = next.events.iter().find_map(|e| match e {
        Event::LotConsigned { lot } => Some(lot.id),
        _ => None,
    });
    assert_eq!(lot, Some(LotId(3)), "lot ids continue where they were");
}

#[test]
fn snapshot_plus_replay_equals_replay_from_genesis() {
    let dir = tempfile::tempdir().unwrap();
    let sequencer = start(dir.path());
    submit(&sequencer, register("g1", true, false), 1);
    for i in 0..40 {
        submit(&sequencer, consign(Pk(0), 1 + i % 7), 2 + i as u64);
    }
    sequencer.shutdown().unwrap();
    let (from_snapshot, a) = store::read_only(dir.path(), false, |_, _, _| {}).unwrap();
    let (from_genesis, b) = store::read_only(dir.path(), true, |_, _, _| {}).unwrap();
    assert!(a.snapshot_seq > 0, "snapshots were taken every 7 commands");
    assert_eq!(b.snapshot_seq, 0);
    assert_eq!(b.replayed, 41);
    assert_eq!(from_snapshot.state_hash(), from_genesis.state_hash());
    let (quiet, c) = store::read_only_market(dir.path(), true).unwrap();
    assert_eq!((c.replayed, quiet.state_hash()), (41, from_genesis.state_hash()), "a quiet replay differs");
}

#[test]
fn timers_fire_without_input_and_a_restart_halts_the_clock() {
    let dir = tempfile::tempdir().unwrap();
    let sequencer = start(dir.path());
    submit(&sequencer, register("g1", true, false), 1);
    submit(&sequencer, consign(Pk(0), 10), 2);
    let patch = ClockSettingsPatch { pre_roll_ms: Some(20), tick_ms: Some(1_000), ..Default::default() };
    submit(&sequencer, op(Action::ConfigureClock { clock: ClockId(1), patch }), 3);
    submit(&sequencer, op(Action::AssignLot { lot: LotId(1), clock: ClockId(1), start_price: Fen(100_000) }), 4);
    submit(&sequencer, op(Action::StartClock { clock: ClockId(1) }), 5);
    // Nobody sends anything: the pre-roll ends by a journaled Tick.
    let started = loop {
        let output = sequencer.outputs.recv_timeout(Duration::from_secs(10)).expect("a tick output");
        if output.events.iter().any(|e| matches!(e, Event::ClockStarted { .. })) {
            break output;
        }
    };
    assert_eq!(started.action, huashi_engine::command::ActionKind::Tick);
    drop(sequencer); // like a crash after the round started: no snapshot at shutdown matters

    let restarted = start(dir.path());
    let (tx, rx) = mpsc::channel();
    let query: Query = Box::new(move |m: &Market| {
        let seen = (m.clock(ClockId(1)).unwrap().phase, m.lot(LotId(1)).unwrap().status);
        Box::new(move || tx.send(seen).unwrap())
    });
    restarted.handle.try_submit(Submission::Query(query)).unwrap();
    let (phase, status) = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(phase, ClockPhase::Idle);
    assert_eq!(status, LotStatus::Queued, "the lot is back at the head of the supply line");
    let hash = hash_now(&restarted);
    drop(restarted);
    let (replayed, _) = store::read_only(dir.path(), true, |_, _, _| {}).unwrap();
    assert_eq!(replayed.state_hash(), hash, "the halt is journaled, so replay reaches the same state");
}

#[test]
fn a_full_queue_answers_busy() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = SequencerConfig::new(dir.path());
    config.queue_depth_max = 4;
    config.durability = Durability::None;
    let sequencer = Sequencer::start(config, genesis, |_, _, _| {}).unwrap();
    // Hold the writer inside a query so the queue fills up behind it.
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let (entered_tx, entered_rx) = mpsc::channel::<()>();
    let query: Query = Box::new(move |_: &Market| {
        entered_tx.send(()).unwrap();
        release_rx.recv().unwrap();
        Box::new(|| {})
    });
    sequencer.handle.try_submit(Submission::Query(query)).unwrap();
    entered_rx.recv_timeout(Duration::from_secs(10)).unwrap();
    let mut busy = false;
    for ticket in 0..10 {
        match sequencer.handle.try_submit(Submission::Command { command: Command::tick(), ticket }) {
            Ok(()) => {}
            Err(SubmitError::Busy) => busy = true,
            Err(SubmitError::Stopped) => panic!("stopped"),
        }
    }
    assert!(busy, "a queue of 4 cannot take 10 while the writer is held");
    release_tx.send(()).unwrap();
}
