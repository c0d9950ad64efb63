//! Sequencer + journal throughput with durable group commit, and recovery (replay) speed.
//!
//! `cargo run --release -p huashi-benches --bin sequencer_bench -- [commands] [replay_commands]`
//!
//! Phase 1 pushes `commands` book commands (new orders and cancels from two traders) through a
//! real sequencer with `fdatasync` group commit, measuring commands/s and submit→output latency.
//! Phase 2 writes `replay_commands` commands (no sync, to build the journal quickly) and times a
//! cold recovery of the data directory: genesis + replay of the whole journal.

use hdrhistogram::Histogram;
use huashi_engine::command::{Action, Actor, Command, OrderEntry, Roles};
use huashi_engine::core::book::{BookState, OrderType, TimeInForce};
use huashi_engine::core::MarketConfig;
use huashi_engine::journal::Durability;
use huashi_engine::sequencer::{Sequencer, SequencerConfig, Submission, SubmitError};
use huashi_engine::store;
use huashi_engine::types::{Code, Day, Fen, Pk, Side};
use rand::{Rng, SeedableRng};
use std::collections::VecDeque;
use std::path::Path;
use std::time::Instant;

fn main() {
    let args: Vec<u64> = std::env::args().skip(1).map(|a| a.parse().expect("counts are integers")).collect();
    if let Some(dir) = std::env::var_os("BENCH_REPLAY_ONLY") {
        replay(Path::new(&dir));
        return;
    }
    let commands = args.first().copied().unwrap_or(1_000_000);
    let replay_commands = args.get(1).copied().unwrap_or(10_000_000);
    let base = std::env::var("BENCH_DIR").unwrap_or_else(|_| "target/bench-data".into());
    std::fs::create_dir_all(&base).unwrap();

    let dir = tempfile::tempdir_in(&base).unwrap();
    let (rate, latency) = run(dir.path(), commands, Durability::Fsync);
    println!("durable sequencer: {commands} commands, {rate:.0} commands/s (fdatasync group commit)");
    println!(
        "  submit→output latency µs: p50 {} p99 {} p99.9 {} max {}",
        latency.value_at_quantile(0.5),
        latency.value_at_quantile(0.99),
        latency.value_at_quantile(0.999),
        latency.max()
    );

    let dir = tempfile::tempdir_in(&base).unwrap();
    run(dir.path(), replay_commands, Durability::None);
    replay(dir.path());
    if std::env::var_os("BENCH_KEEP").is_some() {
        println!("kept {}", dir.keep().display());
    }
}

/// Times a cold recovery of `dir`: genesis plus the whole journal.
fn replay(dir: &Path) {
    let started = Instant::now();
    let (_, recovered) = store::read_only(dir, true, |_, _, _| {}).unwrap();
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "recovery: {} commands replayed from genesis in {seconds:.2} s = {:.0} commands/s",
        recovered.replayed,
        recovered.replayed as f64 / seconds
    );
}

fn op(action: Action) -> Command {
    Command::new(Actor::Operator, action)
}

/// Sets up two traders on an open ROSE-A book, then streams orders and cancels.
fn run(dir: &Path, commands: u64, durability: Durability) -> (f64, Histogram<u64>) {
    let mut config = SequencerConfig::new(dir);
    config.durability = durability;
    config.snapshot_every = u64::MAX;
    // Two traders send millions of orders in one engine day: lift the per-day order limit so the
    // bench measures accepted orders, as it did before the limits existed.
    let genesis = || MarketConfig {
        limits: huashi_engine::core::limits::MarketLimits {
            orders_per_participant_day_max: huashi_engine::core::limits::COUNT_CEILING,
            ..Default::default()
        },
        ..MarketConfig::new(Day::parse("2026-11-29").unwrap())
    };
    let sequencer = Sequencer::start(config, genesis, |_, _, _| {}).unwrap();
    let setup = [
        op(Action::RegisterParticipant {
            id: Code::from_static("buyer"),
            name: "Buyer".into(),
            roles: Roles { buyer: true, ..Roles::default() },
            credit_limit: Fen(huashi_engine::core::limits::CREDIT_LIMIT_MAX),
            token_hash: [1; 32],
        }),
        op(Action::RegisterParticipant {
            id: Code::from_static("grower"),
            name: "Grower".into(),
            roles: Roles { grower: true, ..Roles::default() },
            credit_limit: Fen(0),
            token_hash: [2; 32],
        }),
        op(Action::SetBookState { symbol: Code::from_static("ROSE-A"), state: BookState::Open }),
    ];
    let mut sent_at = std::collections::HashMap::new();
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
    let mut stream = CommandStream::new();
    let started = Instant::now();
    let total = setup.len() as u64 + commands;
    let mut received = 0u64;
    let mut next_ticket = 0u64;
    let mut pending: VecDeque<Command> = setup.into_iter().collect();
    while received < total {
        while next_ticket < total {
            let command = pending.pop_front().unwrap_or_else(|| stream.next());
            match sequencer.handle.try_submit(Submission::Command { command: command.clone(), ticket: next_ticket }) {
                Ok(()) => {
                    sent_at.insert(next_ticket, Instant::now());
                    next_ticket += 1;
                }
                Err(SubmitError::Busy) => {
                    pending.push_front(command);
                    break;
                }
                Err(SubmitError::Stopped) => panic!("sequencer stopped"),
            }
        }
        while let Ok(output) = sequencer.outputs.try_recv() {
            if let Some(at) = sent_at.remove(&output.ticket) {
                histogram.saturating_record(at.elapsed().as_micros() as u64);
                received += 1;
            }
        }
        std::thread::yield_now();
    }
    let rate = total as f64 / started.elapsed().as_secs_f64();
    sequencer.shutdown().unwrap();
    (rate, histogram)
}

/// New limit orders on both sides around 10.00 (some crossing), and cancels of earlier ones.
struct CommandStream {
    rng: rand_chacha::ChaCha8Rng,
    next_id: u64,
    live: VecDeque<(Pk, u64)>,
}

impl CommandStream {
    fn new() -> CommandStream {
        CommandStream { rng: rand_chacha::ChaCha8Rng::seed_from_u64(42), next_id: 0, live: VecDeque::new() }
    }

    fn next(&mut self) -> Command {
        if self.live.len() > 500 || (self.rng.gen_ratio(1, 5) && !self.live.is_empty()) {
            let (owner, id) = self.live.pop_front().unwrap();
            return Command::new(Actor::Participant(owner), Action::CancelOrder { client_order_id: client_id(id) });
        }
        self.next_id += 1;
        let side = if self.rng.gen_bool(0.5) { Side::Buy } else { Side::Sell };
        let owner = if side == Side::Buy { Pk(0) } else { Pk(1) };
        let offset: i64 = self.rng.gen_range(-30..30);
        let price = match side {
            Side::Buy => 1_000 - 20 + offset,
            Side::Sell => 1_000 + 20 + offset,
        };
        self.live.push_back((owner, self.next_id));
        Command::new(
            Actor::Participant(owner),
            Action::NewOrder(OrderEntry {
                client_order_id: client_id(self.next_id),
                symbol: Code::from_static("ROSE-A"),
                side,
                order_type: OrderType::Limit,
                price: Some(Fen(price)),
                quantity: self.rng.gen_range(1..100),
                time_in_force: TimeInForce::Gtc,
                post_only: false,
            }),
        )
    }
}

fn client_id(n: u64) -> Code {
    Code::parse(&format!("c{n}"), 36).unwrap()
}
