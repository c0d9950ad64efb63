//! Sequencer + journal throughput with durable group commit, and recovery (replay) speed.
//!
//! `cargo run --release -p huashi-benches --bin sequencer_bench -- [commands] [replay_commands]`
//!
//! Phase 1 pushes `commands` book commands (new orders and cancels from two traders) through a
//! real sequencer with `fdatasync` group commit, measuring commands/s and submit→output latency.
//! Phase 2 writes `replay_commands` commands (no sync, to build the journal quickly) and times a
//! cold recovery of the data directory: genesis + replay of the whole journal.
//!
//! With `BENCH_NATS=nats://a,nats://b,...` and `BENCH_HALL=name` (a hall whose stream is new or
//! empty: use a fresh name per run), phase 1 runs replicated instead, as a clustered leader does:
//! every batch is published to the hall's JetStream stream (`huashi_node::cluster`'s shipper)
//! after its `fdatasync`, and replies wait for both. A follower sequencer in the same process
//! (its own directory, its own `fdatasync`) reads the stream as `huashi follow` does; the lag
//! (leader's last reply minus the follower's last applied command) is sampled every 100 ms, and
//! the two markets' state hashes must agree at the end. Phase 2 is skipped.
//! `BENCH_BATCH_MAX=n` sets the sequencer's commands per sync (and per shipped batch).
//!
//! With `BENCH_DEEP=<resting orders>`, it times instead the replay of a deep book (see `deep`).

use hdrhistogram::Histogram;
use huashi_benches::market::{open_book, register_trader, trading_config, SYMBOL};
use huashi_engine::batch_sink::SinkHandle;
use huashi_engine::command::{Action, Actor, Command, OrderEntry, Roles};
use huashi_engine::core::book::{OrderType, TimeInForce};
use huashi_engine::journal::Durability;
use huashi_engine::sequencer::{Inspection, Output, Sequencer, SequencerConfig, Submission, SubmitError};
use huashi_engine::store;
use huashi_engine::types::{Code, Fen, Pk, Side};
use rand::{Rng, SeedableRng};
use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

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

    if let Some(resting) = std::env::var("BENCH_DEEP").ok().map(|n| n.parse().expect("BENCH_DEEP is a count")) {
        deep(Path::new(&base), resting);
        return;
    }

    if let Ok(urls) = std::env::var("BENCH_NATS") {
        let hall = std::env::var("BENCH_HALL").expect("BENCH_HALL names the hall (a fresh one per run)");
        replicated(Path::new(&base), commands, &urls, &hall);
        return;
    }

    let dir = tempfile::tempdir_in(&base).unwrap();
    let (rate, latency) = run(dir.path(), commands, Durability::Fsync, None);
    println!("durable sequencer: {commands} commands, {rate:.0} commands/s (fdatasync group commit)");
    print_latency(&latency);

    let dir = tempfile::tempdir_in(&base).unwrap();
    run(dir.path(), replay_commands, Durability::None, None);
    replay(dir.path());
    if std::env::var_os("BENCH_KEEP").is_some() {
        println!("kept {}", dir.keep().display());
    }
}

/// Replay of a deep book: the exchange-core mix with `resting` orders prefilled and as many
/// messages after them (`huashi_benches::market::mix_commands`: 1,000 traders' new orders, and
/// cancels and amends by client order id) journaled through a sequencer (no sync, to build the
/// journal quickly), then recovered from genesis as [`replay`] does. Replay applies each chunk
/// with `Market::look_ahead`, as the sequencer applies each batch; the gain it makes is
/// `book_peers`' `market` against `market+ahead`.
fn deep(base: &Path, resting: usize) {
    use huashi_benches::market::{mix_commands, trading_setup};
    use huashi_benches::{generate_shaped, MixShape, Owners, OWNERS, SEED};
    let mix = generate_shaped(SEED, resting, MixShape { resting, owners: Owners::Drawn });
    let (prefill, messages) = mix_commands(&mix);
    let commands: Vec<Command> = trading_setup(OWNERS).into_iter().chain(prefill).chain(messages).collect();
    let dir = tempfile::tempdir_in(base).unwrap();
    let mut config = SequencerConfig::new(dir.path());
    config.durability = Durability::None;
    config.snapshot_every = u64::MAX;
    let sequencer = Sequencer::start(config, trading_config, |_, _, _| {}).unwrap();
    let started = Instant::now();
    let mut refused = 0;
    let mut next = commands.iter().cloned();
    let next = || next.next().expect("as many commands as said");
    pump(&sequencer, commands.len() as u64, next, |output, _| refused += usize::from(output.result.is_err()));
    assert_eq!(refused, 0, "the mix is valid: no command is refused");
    println!(
        "deep book: {resting} resting orders prefilled, then {} messages: {} commands journaled in {:.1} s",
        mix.messages.len(),
        commands.len(),
        started.elapsed().as_secs_f64()
    );
    sequencer.shutdown().unwrap();
    replay(dir.path());
}

/// Times a cold recovery of `dir`: genesis plus the whole journal, for the market alone (quiet:
/// the books' reports are not built, as for `huashi replay`), then with every event built (as a
/// server's restart does, feeding them to clearing). The two must reach the same state.
///
/// `BENCH_REPLAY=quiet` or `=events` runs only that one (to profile it alone).
fn replay(dir: &Path) {
    let only = std::env::var("BENCH_REPLAY").ok();
    if only.as_deref() == Some("events") {
        replay_with_events(dir);
        return;
    }
    let started = Instant::now();
    let (quiet, recovered) = store::read_only_market(dir, true).unwrap();
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "recovery: {} commands replayed from genesis in {seconds:.2} s = {:.0} commands/s (market only, events not built)",
        recovered.replayed,
        recovered.replayed as f64 / seconds
    );
    if only.as_deref() == Some("quiet") {
        return;
    }
    let loud = replay_with_events(dir);
    assert_eq!(quiet.state_hash(), loud, "a quiet replay reached another state");
}

/// The recovery with every event built; returns the market's state hash.
fn replay_with_events(dir: &Path) -> u64 {
    let started = Instant::now();
    let (loud, recovered) = store::read_only(dir, true, |_, _, _| {}).unwrap();
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "recovery with events: {} commands replayed from genesis in {seconds:.2} s = {:.0} commands/s",
        recovered.replayed,
        recovered.replayed as f64 / seconds
    );
    loud.state_hash()
}

/// What a replicated run watches on the leader.
struct Leader {
    sink: SinkHandle,
    /// The seq of the last command whose reply left.
    acked: Arc<AtomicU64>,
    /// When the last reply left, and the leader's state hash (seq, hash) at the end.
    finished: std::sync::Mutex<Option<(Instant, (u64, u64))>>,
}

/// The market's (seq, state hash) after everything released so far.
fn hash_of(sequencer: &Sequencer) -> (u64, u64) {
    let (tx, rx) = std::sync::mpsc::channel();
    let inspection: Inspection = Box::new(move |seq, market| {
        let hash = market.state_hash();
        Box::new(move || {
            let _ = tx.send((seq, hash));
        })
    });
    sequencer.handle.try_submit(Submission::Inspect(inspection)).unwrap_or_else(|_| panic!("cannot inspect"));
    rx.recv_timeout(Duration::from_secs(30)).expect("an inspection is answered")
}

/// Sets up two traders on an open ROSE-A book, then streams orders and cancels.
fn run(dir: &Path, commands: u64, durability: Durability, leader: Option<&Leader>) -> (f64, Histogram<u64>) {
    let mut config = SequencerConfig::new(dir);
    config.durability = durability;
    config.snapshot_every = u64::MAX;
    config.sink = leader.map(|l| l.sink.clone());
    // BENCH_BATCH_MAX: commands per journal sync (and per shipped batch); the server's default
    // otherwise. A replicated batch waits for the sync *and* the stream, so it is worth larger.
    if let Some(max) = std::env::var("BENCH_BATCH_MAX").ok().and_then(|v| v.parse().ok()) {
        config.batch_max = max;
    }
    // Two traders send millions of orders in one engine day: the bench market's order limits
    // are at their ceilings, so the bench measures accepted orders.
    let sequencer = Sequencer::start(config, trading_config, |_, _, _| {}).unwrap();
    let setup = [
        register_trader(Code::from_static("buyer"), Roles { buyer: true, ..Roles::default() }),
        register_trader(Code::from_static("grower"), Roles { grower: true, ..Roles::default() }),
        open_book(SYMBOL),
    ];
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
    let mut stream = CommandStream::new();
    let started = Instant::now();
    let total = setup.len() as u64 + commands;
    let mut setup = setup.into_iter();
    let next = || setup.next().unwrap_or_else(|| stream.next());
    pump(&sequencer, total, next, |output, sent| {
        if let Some(leader) = leader {
            leader.acked.store(output.seq, Ordering::Release);
        }
        histogram.saturating_record(sent.elapsed().as_micros() as u64);
    });
    let rate = total as f64 / started.elapsed().as_secs_f64();
    if let Some(leader) = leader {
        let done = Instant::now();
        *leader.finished.lock().unwrap() = Some((done, hash_of(&sequencer)));
    }
    sequencer.shutdown().unwrap();
    (rate, histogram)
}

/// Submits `total` commands from `next` as fast as the sequencer takes them (tickets 0, 1, …)
/// and hands each one's output to `on_output` with when it was submitted, until every one is
/// answered.
fn pump(
    sequencer: &Sequencer,
    total: u64,
    mut next: impl FnMut() -> Command,
    mut on_output: impl FnMut(&Output, Instant),
) {
    let (mut sent, mut received) = (0u64, 0u64);
    // By ticket; taken by the first output with that ticket (a journaled tick has ticket 0 too).
    let mut sent_at: Vec<Option<Instant>> = Vec::new();
    let mut waiting: Option<Command> = None;
    while received < total {
        while sent < total {
            let command = waiting.take().unwrap_or_else(&mut next);
            match sequencer.handle.try_submit(Submission::Command { command: command.clone(), ticket: sent }) {
                Ok(()) => {
                    sent_at.push(Some(Instant::now()));
                    sent += 1;
                }
                Err(SubmitError::Busy) => {
                    waiting = Some(command);
                    break;
                }
                Err(SubmitError::Stopped) => panic!("sequencer stopped"),
            }
        }
        while let Ok(output) = sequencer.outputs.try_recv() {
            if let Some(at) = sent_at.get_mut(output.ticket as usize).and_then(Option::take) {
                on_output(&output, at);
                received += 1;
            }
        }
        std::thread::yield_now();
    }
}

/// Phase 1 replicated through a NATS JetStream hall, with a follower reading the stream.
fn replicated(base: &Path, commands: u64, urls: &str, hall_name: &str) {
    use huashi_gateway::config::ClusterConfig;
    use huashi_node::cluster::{follower, Hall};
    // The shipper block_on's this runtime's handle on the journal-sync thread; the follower's
    // consumer runs on it too.
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let cluster = ClusterConfig {
        nats: urls.split(',').map(str::to_string).collect(),
        hall: hall_name.to_string(),
        advertise: None,
        lease_ttl: Duration::from_secs(3),
        join_only: false,
    };
    let hall = runtime.block_on(Hall::connect(&cluster)).unwrap_or_else(|e| panic!("{e}"));
    runtime.block_on(hall.lead_unleased(1)).unwrap_or_else(|e| panic!("{e}"));
    let sink = {
        let _entered = runtime.enter();
        hall.sink(Arc::new(huashi_gateway::health::Health::default()))
    };
    let leader = Leader { sink, acked: Arc::new(AtomicU64::new(0)), finished: std::sync::Mutex::new(None) };

    let follower_dir = tempfile::tempdir_in(base).unwrap();
    let mut config = SequencerConfig::new(follower_dir.path());
    config.follower = true;
    config.snapshot_every = u64::MAX;
    let follower = Sequencer::start(config, trading_config, |_, _, _| {}).unwrap();
    let applied = Arc::new(AtomicU64::new(0));
    let drain = {
        let (outputs, applied) = (follower.outputs.clone(), applied.clone());
        std::thread::spawn(move || {
            while let Ok(output) = outputs.recv() {
                applied.store(output.seq, Ordering::Release);
            }
        })
    };
    let progress = Arc::new(follower::Progress::default());
    let consumer = runtime.spawn(follower::follow(hall.stream().clone(), follower.handle.clone(), progress));

    // Lag samples every 100 ms while the leader runs and until the follower has caught up.
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (acked, applied, stop) = (leader.acked.clone(), applied.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut lags = Histogram::<u64>::new_with_bounds(1, 1_000_000_000, 3).unwrap();
            while !stop.load(Ordering::Acquire) {
                std::thread::sleep(Duration::from_millis(100));
                let lag = acked.load(Ordering::Acquire).saturating_sub(applied.load(Ordering::Acquire));
                lags.saturating_record(lag);
            }
            lags
        })
    };

    let leader_dir = tempfile::tempdir_in(base).unwrap();
    let (rate, latency) = run(leader_dir.path(), commands, Durability::Fsync, Some(&leader));
    let (last_ack, (leader_seq, leader_hash)) = leader.finished.lock().unwrap().take().expect("the run finished");
    let deadline = Instant::now() + Duration::from_secs(120);
    while applied.load(Ordering::Acquire) < leader_seq {
        if consumer.is_finished() {
            let reason = runtime.block_on(consumer).unwrap_or_else(|e| e.to_string());
            panic!("the follower stopped reading the stream: {reason}");
        }
        assert!(Instant::now() < deadline, "the follower did not catch up in 120 s");
        std::thread::sleep(Duration::from_millis(1));
    }
    let caught_up = last_ack.elapsed();
    stop.store(true, Ordering::Release);
    let lags = sampler.join().unwrap();
    let (follower_seq, follower_hash) = hash_of(&follower);

    println!(
        "replicated sequencer (hall {hall_name}, {urls}): {commands} commands, {rate:.0} commands/s \
         (fdatasync group commit + JetStream acknowledgement)"
    );
    print_latency(&latency);
    println!(
        "  follower lag, commands (leader's last reply − follower's last applied, every 100 ms, {} samples): \
         p50 {} p99 {} max {}",
        lags.len(),
        lags.value_at_quantile(0.5),
        lags.value_at_quantile(0.99),
        lags.max()
    );
    println!("  follower caught up {:.1} ms after the leader's last reply", caught_up.as_secs_f64() * 1e3);
    println!(
        "  state hash: leader {leader_hash:016x} at {leader_seq}, follower {follower_hash:016x} at {follower_seq}"
    );
    if (leader_seq, leader_hash) != (follower_seq, follower_hash) {
        eprintln!("FAIL: the follower's market is not the leader's");
        std::process::exit(1);
    }
    consumer.abort();
    follower.shutdown().unwrap();
    drain.join().unwrap();
    drop(hall);
    runtime.shutdown_timeout(Duration::from_secs(1));
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
                symbol: SYMBOL,
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

/// The submit → output latency line of a run.
fn print_latency(latency: &Histogram<u64>) {
    println!(
        "  submit→output latency µs: p50 {} p99 {} p99.9 {} max {}",
        latency.value_at_quantile(0.5),
        latency.value_at_quantile(0.99),
        latency.value_at_quantile(0.999),
        latency.max()
    );
}
