//! Huashi's order book beside the published Rust books, in one process and one run: the same
//! exchange-core message stream (`huashi_benches`) on Huashi's `OrderBook`, on `matchcore` 0.4.0
//! and on `obcore` 0.1.6, at several book depths, with the heap each keeps per resting order and,
//! for Huashi, what the whole market keeps per order.
//!
//! ```text
//! cargo run --release -p huashi-benches --bin book_peers -- \
//!     [--resting 1000,100000,1000000] [--messages 1000000] [--rounds 5] [--seed N] \
//!     [--owners drawn|distinct] [--latency on|off] [--market on|off]
//! ```
//!
//! Pin it (`taskset -c 1`) and compare only figures of one run: the ratios are the point.
//!
//! For each depth N it prints:
//!
//! 1. the stream: N resting GTC orders prefilled, then `--messages` messages that hold the book
//!    around N resting (the mix is in `huashi_benches`);
//! 2. **check**: one untimed pass per engine from the same prefill — fills, quantity traded,
//!    self-trade cancels, rejected messages and orders resting at the end — and whether the
//!    peers agree with Huashi (see "Mapping" for what they must agree on), so that a mapping
//!    bug shows;
//! 3. **heap per resting order**, each engine's book alone, counted by a global allocator
//!    (`huashi_benches::heap`): bytes asked for (allocated − freed, reallocs by their
//!    difference) and bytes of the C allocator's blocks behind them (glibc's usable size plus
//!    its size word), after the prefill divided by N, and after the check pass divided by the
//!    orders resting then (what a book keeps once it has churned);
//! 4. **throughput in interleaved rounds** (Huashi's book twice, plain and with look-ahead, and
//!    Huashi's whole market twice, see "Mapping"): each round runs every engine once on the whole
//!    stream from a freshly prefilled book (prefill and teardown untimed; the engine that goes
//!    first rotates from round to round), `--rounds` rounds; per engine the median (min–max)
//!    of M messages/s and ns per message (wall clock; the median on-CPU ns beside it, which
//!    leaves out the time the thread was descheduled), and Huashi's speed over the peer's as the
//!    median (min–max) of the per-round ratios — one round's engines share one window of the
//!    machine's noise, which the ratio cancels;
//! 5. **latency** (`--latency on`): one more pass per engine reading the TSC around every
//!    message (the timer's own cost subtracted): p50, p99, p99.9, max in ns;
//! 6. **the market** (`--market on`): the prefill's N resting GTC orders placed through
//!    `Market::apply` by their owners (1,000 traders, `huashi_benches::market`): heap per
//!    resting order in the whole market (book, order records, live client order ids and the
//!    day's used ones); then, on a fresh market, the same N orders as IOC into an empty book,
//!    so none rests: heap per order *placed*, which is the day's set of used client order ids
//!    (it grows with orders placed, not resting); and the first less the second: what a
//!    resting order costs the market besides that set (the same keys go into the set both
//!    times, so it is the same size); and, on the first market, how long `get_orders` (which
//!    runs on the sequencer thread) takes to list one trader's orders.
//!
//! It ends with one summary line per depth.
//!
//! # Mapping
//!
//! Every engine gets the same messages: the same sides, limit prices (tick 1), quantities and
//! order of arrival; GTC orders rest, IOC orders cancel what they cannot fill at once, a cancel
//! removes a resting order and a move re-prices one keeping its open quantity (it loses time
//! priority and may trade, in every engine). Each engine's messages are translated before
//! anything is timed.
//!
//! - **Huashi** (`huashi_engine::core::book::OrderBook`): the mix's own messages; self-trade
//!   prevention cancels the resting order of the incoming order's owner and the incoming order
//!   goes on (owners are drawn from 1,000, so it fires now and then).
//! - **huashi+ahead**: the same book and messages, driven as a caller holding a batch drives
//!   it: before each message, `OrderBook::prefetch` is told the orders the next three messages
//!   name (one stage of fetching per message ahead: index entry, slot, queue neighbours), so a
//!   deep book's dependent cache misses overlap. Its check must equal Huashi's exactly (the run
//!   stops otherwise). The peers are driven one message at a time, as their APIs are; both
//!   Huashi lanes' ratios are printed, and the plain one is the like-for-like comparison.
//! - **market** and **market+ahead**: not a book but the product's whole path, for what the
//!   sequencer and replay pay on a deep book: each message is its owner's command through
//!   `Market::apply` on an instrument with tick 1 and no band (`MIX`, of the bench market in
//!   `huashi_benches::market`): `new_order` with client order id `o<mix id>`, `cancel_order`
//!   and `amend_order` naming it, with credit holds, fees, the day's client order ids and every
//!   event the product builds. `market+ahead` calls `Market::look_ahead` before each command,
//!   as the sequencer does over a batch and replay over a chunk. Both must do exactly Huashi's
//!   book's work (the run stops otherwise).
//! - **matchcore** numbers orders itself, by command sequence number (consecutive from 0), so a
//!   mix order id maps to the sequence number of the command that placed it. It has no owners
//!   and no self-trade prevention: where Huashi cancels a same-owner resting order, matchcore
//!   trades with it, and from then on the books differ slightly (a later cancel or move of an
//!   order matchcore had already filled is rejected, which the check counts, and an order
//!   Huashi cancelled may still rest on matchcore's book). A move is its `Amend` with a new
//!   price. matchcore 0.4.0 also trades an incoming limit order that crosses the book past its
//!   limit price (its submit and amend match with no limit: `match_order(.., None, ..)`; a buy
//!   at 101 against asks at 100 and 105 fills at both), so where a move crosses a touch thinner
//!   than the order it sweeps on; the check counts those fills (the IOC orders are priced far
//!   through the book, so their limit never binds). Without either difference matchcore must
//!   agree with Huashi exactly: `--owners distinct` (every order its own owner, otherwise the
//!   same stream) removes the first.
//! - **obcore** takes the mix's ids and owners, with its `STP::CancelMaker`, which is Huashi's
//!   rule, so it must agree with Huashi exactly. It has no amend: a move is a cancel and a new
//!   order with the same id, side, owner and the open quantity at the new price — what a
//!   client of obcore would send; its cost (a lookup for the open quantity, two evaluations)
//!   is in its figures. Its evaluate-then-apply API is driven as its README shows, one message
//!   at a time (`Evaluator::reset` after each, since each message's instructions are applied
//!   at once).
//!
//! # Why ordinary dependencies
//!
//! The peers are `[dependencies]` of `huashi-benches`, not dev-dependencies: a binary in
//! `src/bin` (like `book_mix`, whose run it extends) cannot use dev-dependencies, and a
//! `[[bench]]` target would be run by `cargo bench`, with criterion's conventions, for a run that
//! is not criterion's. `huashi-benches` is never a dependency of the product, so the peers are
//! compiled only with the benches.

use hdrhistogram::Histogram;
use huashi_benches::heap::{CountingAllocator, Growth, Window};
use huashi_benches::market::{apply_ok, mix_commands, order_command, trading_market, MIX_SYMBOL, NOW};
use huashi_benches::tsc::{read_tsc, TscClock};
use huashi_benches::{generate_shaped, Message, Mix, MixShape, Owners, OWNERS, SEED};
use huashi_engine::command::{Action, Command};
use huashi_engine::core::book::{BookEvent, DoneReason, OrderBook, Prefetch, TimeInForce};
use huashi_engine::core::look_ahead::AHEAD;
use huashi_engine::core::order_meta::OrderMeta;
use huashi_engine::core::Market;
use huashi_engine::event::Event;
use huashi_engine::types::{Code, Fen, Pk, Side};
use std::hint::black_box;
use std::time::{Duration, Instant};

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

fn main() {
    let options = parse_options();
    println!(
        "book_peers: the exchange-core mix on huashi, matchcore 0.4.0 and obcore 0.1.6; {} messages, {} rounds, seed {:#x}, owners {:?}",
        options.messages, options.rounds, options.seed, options.owners
    );
    let clock = options.latency.then(TscClock::calibrate_and_report);
    let mut summary = Vec::new();
    for &resting in &options.resting {
        summary.push(depth(&options, resting, clock.as_ref()));
    }
    println!("\nsummary (median of interleaved rounds; ratio = huashi's speed over the peer's):");
    for line in summary {
        println!("  {line}");
    }
}

// ---- options ----

/// Bounds that keep a run inside this machine's memory (24 GiB: the default run's largest depth
/// takes about 1.2 GB, dominated by the translated streams and one book at a time) and time.
const RESTING_MAX: usize = 10_000_000;
const MESSAGES_MAX: usize = 20_000_000;
const ROUNDS_MAX: usize = 100;

struct Options {
    resting: Vec<usize>,
    messages: usize,
    rounds: usize,
    seed: u64,
    owners: Owners,
    latency: bool,
    market: bool,
}

fn parse_options() -> Options {
    let mut options = Options {
        resting: vec![1_000, 100_000, 1_000_000],
        messages: 1_000_000,
        rounds: 5,
        seed: SEED,
        owners: Owners::Drawn,
        latency: true,
        market: true,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().unwrap_or_else(|| usage(&format!("{flag} needs a value")));
        let number =
            |text: &str| text.parse::<u64>().unwrap_or_else(|_| usage(&format!("{flag}: {text:?} is not a number")));
        let count = |text: &str, max: usize| match number(text) {
            n @ 1.. if n <= max as u64 => n as usize,
            _ => usage(&format!("{flag}: {text} is not between 1 and {max}")),
        };
        let switch = || match value.as_str() {
            "on" => true,
            "off" => false,
            _ => usage(&format!("{flag}: on or off, not {value:?}")),
        };
        match flag.as_str() {
            "--resting" => options.resting = value.split(',').map(|n| count(n, RESTING_MAX)).collect(),
            "--messages" => options.messages = count(&value, MESSAGES_MAX),
            "--rounds" => options.rounds = count(&value, ROUNDS_MAX),
            "--seed" => options.seed = number(&value),
            "--owners" => {
                options.owners = match value.as_str() {
                    "drawn" => Owners::Drawn,
                    "distinct" => Owners::Distinct,
                    _ => usage(&format!("--owners: drawn or distinct, not {value:?}")),
                }
            }
            "--latency" => options.latency = switch(),
            "--market" => options.market = switch(),
            _ => usage(&format!("unknown flag {flag}")),
        }
    }
    options
}

fn usage(problem: &str) -> ! {
    eprintln!(
        "book_peers: {problem}\nusage: book_peers [--resting N,N,...] [--messages N] [--rounds N] [--seed N] \
         [--owners drawn|distinct] [--latency on|off] [--market on|off]"
    );
    std::process::exit(2)
}

// ---- one depth ----

/// Everything for `resting` orders; returns the summary line.
fn depth(options: &Options, resting: usize, clock: Option<&(TscClock, u64)>) -> String {
    let started = Instant::now();
    let mix = generate_shaped(options.seed, options.messages, MixShape { resting, owners: options.owners });
    print_stream(&mix, resting, started.elapsed());
    let (huashi, ahead, matchcore, obcore, market, market_ahead) = (
        Lane::<Huashi>::new(&mix),
        Lane::<Huashi, true>::new(&mix),
        Lane::<Matchcore>::new(&mix),
        Lane::<Obcore>::new(&mix),
        Lane::<MarketLane>::new(&mix),
        Lane::<MarketLane, true>::new(&mix),
    );
    // In this order: the lanes' indices below (`HUASHI`, …) name them.
    let lanes: [&dyn Timed; 6] = [&huashi, &ahead, &matchcore, &obcore, &market, &market_ahead];

    let checks =
        [huashi.check(), ahead.check(), matchcore.check(), obcore.check(), market.check(), market_ahead.check()];
    print_checks(&lanes, &checks, resting);
    print_agreement(&checks, options.owners);
    let speeds = rounds(&lanes, options);
    if let Some((clock, overhead)) = clock {
        print_latency(&lanes, clock, *overhead);
    }
    let market_heap = options.market.then(|| market_costs(&mix, resting));

    let heap = |check: &Check| check.prefill_heap.per(resting).0;
    let on_cpu = |figure: &Option<Spread>, decimals: usize, unit: &str| {
        figure.map_or(String::new(), |f| format!(" (on-CPU {:.*}{unit})", decimals, f.median))
    };
    // One Huashi lane's figures: its speed, and its speed over matchcore's and obcore's.
    let lane = |ours: usize| {
        let ns = speeds.ns[ours].median;
        let [matchcore, obcore] = [MATCHCORE, OBCORE].map(|peer| &speeds.ratios[ours][peer]);
        format!(
            "{:.2} M/s, {ns:.1} ns/msg{}, {:.2} × matchcore{}, {:.2} × obcore{}",
            1e3 / ns,
            on_cpu(&speeds.on_cpu_ns[ours], 1, " ns"),
            matchcore.0.median,
            on_cpu(&matchcore.1, 2, " ×"),
            obcore.0.median,
            on_cpu(&obcore.1, 2, " ×"),
        )
    };
    let mut line = format!(
        "{resting:>9} resting: huashi {}; with look-ahead {}; heap B/resting order huashi {} | matchcore {} | obcore {}",
        lane(HUASHI),
        lane(HUASHI_AHEAD),
        heap(&checks[HUASHI]),
        heap(&checks[MATCHCORE]),
        heap(&checks[OBCORE]),
    );
    // The whole market, plain and with look-ahead: its speed, and the speedup look-ahead gives.
    let market_lane = |lane: usize| {
        let ns = speeds.ns[lane].median;
        format!(
            "{ns:.1} ns/msg{}, {:.2} × matchcore",
            on_cpu(&speeds.on_cpu_ns[lane], 1, " ns"),
            speeds.ratios[lane][MATCHCORE].0.median
        )
    };
    line += &format!(
        "; the whole market {}, with look-ahead {} ({:.2} × without{})",
        market_lane(MARKET),
        market_lane(MARKET_AHEAD),
        speeds.ratios[MARKET_AHEAD][MARKET].0.median,
        on_cpu(&speeds.ratios[MARKET_AHEAD][MARKET].1, 2, " ×"),
    );
    if let Some((whole, placed)) = market_heap {
        let (whole, placed) = (whole.per(resting).0, placed.per(resting).0);
        line += &format!(
            "; huashi market {} B/resting order besides the day's used client order ids ({whole} with them), which take {placed} B/order placed",
            whole - placed
        );
    }
    line
}

/// The lanes of a depth, by index.
const HUASHI: usize = 0;
const HUASHI_AHEAD: usize = 1;
const MATCHCORE: usize = 2;
const OBCORE: usize = 3;
const MARKET: usize = 4;
const MARKET_AHEAD: usize = 5;

/// The figures of the interleaved rounds, by lane (`HUASHI`, …).
struct Speeds {
    /// Wall-clock ns per message.
    ns: Vec<Spread>,
    on_cpu_ns: Vec<Option<Spread>>,
    /// `ratios[ours][peer]`: lane `ours`'s speed over lane `peer`'s, round by round, wall clock
    /// and on-CPU.
    ratios: Vec<Vec<(Spread, Option<Spread>)>>,
}

/// The interleaved rounds and their table: every lane's ns per message, and both Huashi lanes'
/// speed over every lane's as the median of per-round ratios.
fn rounds(lanes: &[&dyn Timed], options: &Options) -> Speeds {
    println!(
        "throughput, {} interleaved rounds (each runs every engine once on the stream from a fresh prefilled book; prefill untimed):",
        options.rounds
    );
    let per_message = |t: Duration| t.as_nanos() as f64 / options.messages as f64;
    let (mut wall, mut on_cpu) = (vec![Vec::new(); lanes.len()], vec![Vec::new(); lanes.len()]);
    for round in 0..options.rounds {
        for k in 0..lanes.len() {
            let engine = (round + k) % lanes.len();
            let (elapsed, cpu) = lanes[engine].timed_run();
            wall[engine].push(per_message(elapsed));
            on_cpu[engine].extend(cpu.map(per_message));
        }
    }
    // Lane `ours`'s speed over lane `peer`'s, round by round.
    let ratio = |times: &[Vec<f64>], ours: usize, peer: usize| {
        let ratios: Vec<f64> = times[peer].iter().zip(&times[ours]).map(|(theirs, mine)| theirs / mine).collect();
        (!ratios.is_empty()).then(|| Spread::of(&ratios))
    };
    let ratios = (0..lanes.len()).map(|ours| {
        (0..lanes.len())
            .map(|peer| (ratio(&wall, ours, peer).expect("at least one round"), ratio(&on_cpu, ours, peer)))
            .collect::<Vec<_>>()
    });
    let ratios = ratios.collect();
    println!(
        "  {:<12} {:>24} {:>24} {:>24} | {:>24} {:>7} | {:>24} {:>7}",
        "engine",
        "M msgs/s median (min–max)",
        "ns/msg median (min–max)",
        "on-CPU ns/msg",
        "huashi ÷ engine",
        "on-CPU",
        "huashi+ahead ÷ engine",
        "on-CPU"
    );
    let show = |(wall, cpu): &(Spread, Option<Spread>)| {
        (format!("{} ×", wall.show(2)), cpu.as_ref().map_or(String::new(), |r| format!("{:.2} ×", r.median)))
    };
    let mut speeds = Speeds { ns: Vec::new(), on_cpu_ns: Vec::new(), ratios };
    for (engine, lane) in lanes.iter().enumerate() {
        let rates: Vec<f64> = wall[engine].iter().map(|ns| 1e3 / ns).collect();
        let on_cpu_ns = (!on_cpu[engine].is_empty()).then(|| Spread::of(&on_cpu[engine]));
        let (over_huashi, over_huashi_cpu) =
            if engine == HUASHI { Default::default() } else { show(&speeds.ratios[HUASHI][engine]) };
        let (over_ahead, over_ahead_cpu) =
            if engine == HUASHI_AHEAD { Default::default() } else { show(&speeds.ratios[HUASHI_AHEAD][engine]) };
        println!(
            "  {:<12} {:>24} {:>24} {:>24} | {:>24} {:>7} | {:>24} {:>7}",
            lane.name(),
            Spread::of(&rates).show(2),
            Spread::of(&wall[engine]).show(1),
            on_cpu_ns.map_or("-".into(), |s| s.show(1)),
            over_huashi,
            over_huashi_cpu,
            over_ahead,
            over_ahead_cpu,
        );
        speeds.ns.push(Spread::of(&wall[engine]));
        speeds.on_cpu_ns.push(on_cpu_ns);
    }
    speeds
}

fn print_latency(lanes: &[&dyn Timed], clock: &TscClock, overhead: u64) {
    println!("latency per message, one pass each (ns):");
    for lane in lanes {
        let h = lane.latency(clock, overhead);
        println!(
            "  {:<10} p50 {:>6} | p99 {:>6} | p99.9 {:>7} | max {:>9} | mean {:.1}",
            lane.name(),
            h.value_at_quantile(0.5),
            h.value_at_quantile(0.99),
            h.value_at_quantile(0.999),
            h.max(),
            h.mean()
        );
    }
}

fn print_stream(mix: &Mix, resting: usize, generated_in: Duration) {
    let s = &mix.stats;
    let count = mix.messages.len();
    let share = |n: usize| 100.0 * n as f64 / count as f64;
    println!(
        "\n== {resting} resting orders: {} prefilled, then {count} messages (generated in {:.1?})",
        mix.prefill.len(),
        generated_in
    );
    println!(
        "  GTC {:.1} %, IOC {:.1} %, cancel {:.1} %, move {:.1} %; {:.1} % of messages trade ({} fills); on average {:.0} resting over {:.0} levels",
        share(s.gtc),
        share(s.ioc),
        share(s.cancels),
        share(s.moves),
        share(s.trading),
        s.fills,
        s.resting_avg,
        s.levels_avg
    );
}

fn print_checks(lanes: &[&dyn Timed], checks: &[Check], resting: usize) {
    println!("check (untimed, one pass each from the same prefill) and heap per resting order of the book alone:");
    println!(
        "  {:<10} {:>9} {:>12} {:>10} {:>10} {:>8} {:>9} | {:>21} | {:>21}",
        "engine",
        "fills",
        "quantity",
        "self-trade",
        "past limit",
        "rejected",
        "resting",
        "B/order after prefill",
        "B/order after the run"
    );
    for (lane, check) in lanes.iter().zip(checks) {
        let (requested, blocks) = check.prefill_heap.per(resting);
        let (run_requested, run_blocks) = check.run_heap.per(check.tally.resting);
        let t = &check.tally;
        println!(
            "  {:<10} {:>9} {:>12} {:>10} {:>10} {:>8} {:>9} | {:>21} | {:>21}",
            lane.name(),
            t.fills,
            t.quantity,
            t.self_trade,
            t.past_limit,
            t.rejected,
            t.resting,
            format!("{requested} ({blocks} in blocks)"),
            format!("{run_requested} ({run_blocks} in blocks)"),
        );
    }
    for (lane, check) in lanes.iter().zip(checks) {
        if let Some(bytes) = check.own_heap_bytes {
            println!("  ({}'s own account after the prefill: {} B/order)", lane.name(), bytes / resting);
        }
    }
}

/// Says whether the peers agree with Huashi on what they must agree on (see "Mapping"); a
/// disagreement that the mapping does not explain stops the run: its figures would compare
/// different work.
fn print_agreement(checks: &[Check; 6], owners: Owners) {
    let same = |a: &Tally, b: &Tally| {
        (a.fills, a.quantity, a.resting, a.rejected) == (b.fills, b.quantity, b.resting, b.rejected)
    };
    let [huashi, ahead, matchcore, obcore, market, market_ahead] = checks.each_ref().map(|c| &c.tally);
    assert!(
        same(huashi, ahead) && huashi.self_trade == ahead.self_trade,
        "look-ahead changed what huashi's book did: {ahead:?} vs {huashi:?}"
    );
    // The market's book is the same book under its owners' rules, which the mix never trips
    // (credit at its ceiling, fresh client order ids): it must do exactly the book's work.
    for whole in [market, market_ahead] {
        assert!(
            same(huashi, whole) && huashi.self_trade == whole.self_trade && whole.past_limit == 0,
            "the whole market did not do what its book does alone: {whole:?} vs {huashi:?}"
        );
    }
    assert!(huashi.rejected == 0, "huashi rejected {} messages of a mix generated valid", huashi.rejected);
    assert!(owners == Owners::Drawn || huashi.self_trade == 0, "self-trades with distinct owners");
    assert!(huashi.past_limit + obcore.past_limit == 0, "a fill past the taker's limit: {huashi:?}, {obcore:?}");
    assert!(
        same(huashi, obcore) && huashi.self_trade == obcore.self_trade,
        "obcore does not agree with huashi: {obcore:?} vs {huashi:?}"
    );
    if huashi.self_trade == 0 && matchcore.past_limit == 0 {
        assert!(same(huashi, matchcore), "matchcore does not agree with huashi: {matchcore:?} vs {huashi:?}");
        println!("  all three agree on every count");
        return;
    }
    let mut why = Vec::new();
    if huashi.self_trade > 0 {
        why.push(format!(
            "it traded with {} resting orders that huashi's self-trade prevention cancelled",
            huashi.self_trade
        ));
    }
    if matchcore.past_limit > 0 {
        why.push(format!("it filled {} times past a crossing order's limit price", matchcore.past_limit));
    }
    println!(
        "  obcore agrees with huashi on every count; matchcore differs as its rules do (module doc, \"Mapping\"): {}; so its book drifts, and {} of its later cancels/moves found no order",
        why.join(", and "),
        matchcore.rejected
    );
}

// ---- engines ----

/// What a pass saw: fills (one per maker order touched), quantity traded, resting orders that
/// self-trade prevention cancelled, messages the engine refused, orders resting at the end, and
/// fills at a price worse than the taker's limit (which no engine should make).
#[derive(Clone, Copy, Debug, Default)]
struct Tally {
    fills: u64,
    quantity: u64,
    self_trade: u64,
    rejected: u64,
    resting: usize,
    past_limit: u64,
}

/// Whether a fill at `price` is worse for a `taker` than its `limit` (which no engine should
/// make).
fn past_limit(taker: Side, price: Fen, limit: Option<Fen>) -> bool {
    match (taker, limit) {
        (Side::Buy, Some(limit)) => price > limit,
        (Side::Sell, Some(limit)) => price < limit,
        (_, None) => false,
    }
}

/// One order book under test, with the scratch space it needs between messages.
trait Engine {
    const NAME: &'static str;
    /// A mix message in this engine's terms.
    type Command;
    /// What the engine needs besides its book (event buffers), made before the book so that
    /// the book's heap figure leaves it out.
    type Scratch;
    /// The prefill and the messages in this engine's terms, in order.
    fn translate(mix: &Mix) -> (Vec<Self::Command>, Vec<Self::Command>);
    fn scratch() -> Self::Scratch;
    fn new(scratch: Self::Scratch) -> Self;
    /// The timed path: applies one message, its outcome only kept from being optimised away.
    fn apply(&mut self, command: &Self::Command);
    /// The checking path: applies one message and counts what it did.
    fn apply_counted(&mut self, command: &Self::Command, tally: &mut Tally);
    /// The lane's name when driven with look-ahead (`Lane<E, true>`): before each message,
    /// [`Engine::look_ahead`] sees the ones after it, as a caller holding a batch (a sequencer,
    /// a replay) can show them. Only Huashi's engines take hints; the peers' loops are as before.
    const AHEAD_NAME: &'static str = "";
    /// Whether hints can act on the engine as it is (a book deep enough): asked once a run,
    /// after the prefill, as the product asks once a batch or chunk.
    fn looks_ahead(&self) -> bool {
        false
    }
    /// Hints about the messages after the one about to be applied (`later`, nearest first; the
    /// engine looks at most [`AHEAD`] of them).
    fn look_ahead(&self, _later: &[Self::Command]) {}
    fn resting(&self) -> usize;
    /// The book's own account of its heap, where it keeps one: a cross-check of the counting
    /// allocator.
    fn own_heap_bytes(&self) -> Option<usize> {
        None
    }
}

/// An engine with its translated stream; with `AHEAD`, driven with look-ahead.
struct Lane<E: Engine, const AHEAD: bool = false> {
    prefill: Vec<E::Command>,
    messages: Vec<E::Command>,
}

struct Check {
    tally: Tally,
    prefill_heap: Growth,
    run_heap: Growth,
    /// The book's own account after the prefill, where it keeps one.
    own_heap_bytes: Option<usize>,
}

impl<E: Engine, const AHEAD: bool> Lane<E, AHEAD> {
    fn new(mix: &Mix) -> Lane<E, AHEAD> {
        let (prefill, messages) = E::translate(mix);
        Lane { prefill, messages }
    }

    /// A fresh book with the prefill applied (untimed in every use).
    fn prefilled(&self) -> E {
        let mut engine = E::new(E::scratch());
        for command in &self.prefill {
            engine.apply(command);
        }
        engine
    }

    fn check(&self) -> Check {
        let scratch = E::scratch();
        let window = Window::open();
        let mut engine = E::new(scratch);
        let mut prefill_tally = Tally::default();
        for command in &self.prefill {
            engine.apply_counted(command, &mut prefill_tally);
        }
        let prefill_heap = window.peek();
        let own_heap_bytes = engine.own_heap_bytes();
        assert_eq!(prefill_tally.fills + prefill_tally.rejected, 0, "{}: the prefill rests whole", E::NAME);
        assert_eq!(engine.resting(), self.prefill.len(), "{}: every prefill order rests", E::NAME);
        let mut tally = Tally::default();
        let ahead = AHEAD && engine.looks_ahead();
        for (i, command) in self.messages.iter().enumerate() {
            if ahead {
                engine.look_ahead(&self.messages[i + 1..]);
            }
            engine.apply_counted(command, &mut tally);
        }
        let run_heap = window.close();
        tally.resting = engine.resting();
        Check { tally, prefill_heap, run_heap, own_heap_bytes }
    }
}

/// The type-erased face of a lane, for the rounds.
trait Timed {
    fn name(&self) -> &'static str;
    /// One run of the stream from a fresh prefilled book: wall time, and on-CPU time where the
    /// platform tells (on a shared machine the thread may be descheduled; that leaves it out).
    fn timed_run(&self) -> (Duration, Option<Duration>);
    fn latency(&self, clock: &TscClock, overhead: u64) -> Histogram<u64>;
}

impl<E: Engine, const AHEAD: bool> Timed for Lane<E, AHEAD> {
    fn name(&self) -> &'static str {
        if AHEAD {
            E::AHEAD_NAME
        } else {
            E::NAME
        }
    }

    fn timed_run(&self) -> (Duration, Option<Duration>) {
        let mut engine = self.prefilled();
        let ahead = AHEAD && engine.looks_ahead();
        let on_cpu = thread_on_cpu();
        let start = Instant::now();
        for (i, command) in self.messages.iter().enumerate() {
            if ahead {
                engine.look_ahead(&self.messages[i + 1..]);
            }
            engine.apply(command);
        }
        let elapsed = start.elapsed();
        let on_cpu = thread_on_cpu().zip(on_cpu).map(|(after, before)| after - before);
        drop(black_box(engine));
        (elapsed, on_cpu)
    }

    fn latency(&self, clock: &TscClock, overhead: u64) -> Histogram<u64> {
        let mut engine = self.prefilled();
        // Raw ticks into a preallocated Vec; the histogram is filled afterwards so that its
        // bookkeeping does not disturb the caches between messages.
        let mut ticks = Vec::with_capacity(self.messages.len());
        let ahead = AHEAD && engine.looks_ahead();
        for (i, command) in self.messages.iter().enumerate() {
            let start = read_tsc();
            if ahead {
                engine.look_ahead(&self.messages[i + 1..]);
            }
            engine.apply(command);
            let end = read_tsc();
            ticks.push(end.wrapping_sub(start));
        }
        drop(engine);
        let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).expect("histogram bounds");
        for t in ticks {
            histogram.record(clock.ns(t, overhead)).expect("latency within histogram bounds");
        }
        histogram
    }
}

/// Huashi's book, on the mix's own messages.
struct Huashi {
    book: OrderBook,
    out: Vec<BookEvent>,
}

/// With look-ahead (`huashi+ahead`), the book is driven as a batch-applying caller drives it:
/// before each message, the order that each of the next three names is fetched into the cache in
/// stages ([`OrderBook::prefetch`], [`Prefetch::at`] its distance). Same book, same messages, same
/// results (the check asserts it); only the cache misses of a deep book overlap instead of
/// following one another.
impl Engine for Huashi {
    const NAME: &'static str = "huashi";
    const AHEAD_NAME: &'static str = "huashi+ahead";
    type Command = Message;
    type Scratch = Vec<BookEvent>;

    fn looks_ahead(&self) -> bool {
        self.book.looks_ahead()
    }

    #[inline]
    fn look_ahead(&self, later: &[Message]) {
        for (distance, later) in (1..).zip(later.iter().take(AHEAD)) {
            if let Message::Cancel(id) | Message::Move { id, .. } = *later {
                self.book.prefetch(id, Prefetch::at(distance));
            }
        }
    }

    fn translate(mix: &Mix) -> (Vec<Message>, Vec<Message>) {
        (mix.prefill.clone(), mix.messages.clone())
    }

    fn scratch() -> Vec<BookEvent> {
        Vec::with_capacity(1024)
    }

    fn new(out: Vec<BookEvent>) -> Huashi {
        Huashi { book: huashi_benches::new_book(), out }
    }

    #[inline]
    fn apply(&mut self, message: &Message) {
        self.out.clear();
        black_box(message.apply(&mut self.book, &mut self.out).is_ok());
        black_box(&self.out);
    }

    fn apply_counted(&mut self, message: &Message, tally: &mut Tally) {
        self.out.clear();
        if message.apply(&mut self.book, &mut self.out).is_err() {
            tally.rejected += 1;
        }
        let limit = match *message {
            Message::New(order) => order.price,
            Message::Move { price, .. } => Some(price),
            Message::Cancel(_) => None,
        };
        for event in &self.out {
            match *event {
                BookEvent::Fill { quantity, price, maker_side, .. } => {
                    tally.fills += 1;
                    tally.quantity += quantity;
                    tally.past_limit += u64::from(past_limit(maker_side.opposite(), price, limit));
                }
                BookEvent::Done { reason: DoneReason::SelfTrade, .. } => tally.self_trade += 1,
                _ => {}
            }
        }
    }

    fn resting(&self) -> usize {
        self.book.resting_count()
    }

    fn own_heap_bytes(&self) -> Option<usize> {
        Some(self.book.heap_bytes())
    }
}

/// matchcore 0.4.0: orders are numbered by the sequence number of the command that placed them.
struct Matchcore {
    book: matchcore::OrderBook,
}

impl Engine for Matchcore {
    const NAME: &'static str = "matchcore";
    type Command = matchcore::Command;
    type Scratch = ();

    fn translate(mix: &Mix) -> (Vec<matchcore::Command>, Vec<matchcore::Command>) {
        use matchcore::{
            AmendCmd, AmendPatch, CancelCmd, CommandKind, CommandMeta, LimitOrder, LimitOrderPatch, OrderFlags,
            OrderId, OrderKind, Price, Quantity, QuantityPolicy, SequenceNumber, SubmitCmd, Timestamp,
        };
        // matchcore's id of each mix order id (mix ids count up from 1, one per new order).
        let orders = mix.prefill.len() + mix.messages.len();
        let mut ids = vec![u64::MAX; orders + 1];
        let mut seq = 0u64;
        let mut translate = |message: &Message| {
            let kind = match *message {
                Message::New(order) => {
                    ids[order.id.0 as usize] = seq;
                    let side = match order.side {
                        Side::Buy => matchcore::Side::Buy,
                        Side::Sell => matchcore::Side::Sell,
                    };
                    let tif = match order.tif {
                        TimeInForce::Gtc => matchcore::TimeInForce::Gtc,
                        TimeInForce::Ioc => matchcore::TimeInForce::Ioc,
                        other => unreachable!("the mix has no {other:?} orders"),
                    };
                    let price = Price(order.price.expect("the mix has limit orders only").0 as u64);
                    let quantity = QuantityPolicy::Standard { quantity: Quantity(order.quantity) };
                    let limit = LimitOrder::new(price, quantity, OrderFlags::new(side, false, tif));
                    CommandKind::Submit(SubmitCmd { order: matchcore::NewOrder::Limit(limit) })
                }
                Message::Cancel(id) => CommandKind::Cancel(CancelCmd {
                    order_id: OrderId(ids[id.0 as usize]),
                    order_kind: OrderKind::Limit,
                }),
                Message::Move { id, price } => CommandKind::Amend(AmendCmd {
                    order_id: OrderId(ids[id.0 as usize]),
                    patch: AmendPatch::Limit(LimitOrderPatch::new().with_price(Price(price.0 as u64))),
                }),
            };
            let meta = CommandMeta { sequence_number: SequenceNumber(seq), timestamp: Timestamp(0) };
            seq += 1;
            matchcore::Command { meta, kind }
        };
        let prefill = mix.prefill.iter().map(&mut translate).collect();
        let messages = mix.messages.iter().map(&mut translate).collect();
        (prefill, messages)
    }

    fn scratch() {}

    fn new(_: ()) -> Matchcore {
        Matchcore { book: matchcore::OrderBook::new(MIX_SYMBOL.as_str()) }
    }

    #[inline]
    fn apply(&mut self, command: &matchcore::Command) {
        black_box(self.book.execute(command));
    }

    fn apply_counted(&mut self, command: &matchcore::Command, tally: &mut Tally) {
        use matchcore::{CommandKind, CommandOutcome, CommandReport, NewOrder, Price};
        // The price the command named, to catch fills beyond it (see "Mapping").
        let limit = match &command.kind {
            CommandKind::Submit(submit) => match &submit.order {
                NewOrder::Limit(order) => Some(order.price()),
                _ => None,
            },
            CommandKind::Amend(amend) => match &amend.patch {
                matchcore::AmendPatch::Limit(patch) => patch.price,
                _ => None,
            },
            CommandKind::Cancel(_) => None,
        };
        let past = |side: matchcore::Side, price: Price| match (side, limit) {
            (matchcore::Side::Buy, Some(limit)) => price > limit,
            (matchcore::Side::Sell, Some(limit)) => price < limit,
            (_, None) => false,
        };
        match self.book.execute(command) {
            CommandOutcome::Applied(CommandReport::Submit(effects) | CommandReport::Amend(effects)) => {
                let target = std::iter::once(effects.target_order());
                for result in target.chain(effects.triggered_orders()).filter_map(|o| o.match_result()) {
                    for trade in result.trades() {
                        tally.fills += 1;
                        tally.quantity += trade.quantity().0;
                        tally.past_limit += u64::from(past(result.taker_side(), trade.price()));
                    }
                }
            }
            CommandOutcome::Applied(CommandReport::Cancel) => {}
            CommandOutcome::Rejected(_) => tally.rejected += 1,
        }
    }

    fn resting(&self) -> usize {
        self.book.limit().orders().len()
    }
}

/// An order as obcore holds it: the mix's id and owner, price and quantities.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct ObOrder {
    id: u64,
    owner: u32,
    is_buy: bool,
    ioc: bool,
    price: u64,
    quantity: u64,
    remaining: u64,
}

impl obcore::OrderInterface for ObOrder {
    type I = u64;
    type N = u64;
    type O = u32;

    fn id(&self) -> &u64 {
        &self.id
    }
    fn is_buy(&self) -> bool {
        self.is_buy
    }
    fn price(&self) -> u64 {
        self.price
    }
    fn quantity(&self) -> u64 {
        self.quantity
    }
    fn remaining(&self) -> u64 {
        self.remaining
    }
    fn fill(&mut self, quantity: u64) {
        self.remaining -= quantity;
    }
    fn owner(&self) -> &u32 {
        &self.owner
    }
    fn tif(&self) -> obcore::TIF {
        if self.ioc {
            obcore::TIF::IOC
        } else {
            obcore::TIF::GTC
        }
    }
    /// Huashi's rule: the resting same-owner order is cancelled, the incoming one goes on.
    fn stp(&self) -> obcore::STP {
        obcore::STP::CancelMaker
    }
}

/// A mix message for obcore, which has no amend.
enum ObCommand {
    Insert(ObOrder),
    Cancel(u64),
    /// Cancel, then a new order with the same id, side, owner and open quantity at `price`.
    Move {
        id: u64,
        price: u64,
    },
}

/// obcore 0.1.6, evaluate-then-apply one message at a time.
struct Obcore {
    book: obcore::OrderBook<ObOrder>,
    eval: obcore::Evaluator<ObOrder>,
}

impl Obcore {
    /// Evaluates `op`, applies its instructions, and counts them when asked to.
    #[inline]
    fn run(&mut self, op: obcore::Op<ObOrder>, mut tally: Option<&mut Tally>) {
        use obcore::{Instruction, Msg};
        let Obcore { book, eval } = self;
        let taker = match &op {
            obcore::Op::Insert(order) => Some((order.is_buy, order.price)),
            obcore::Op::Delete(_) => None,
        };
        for instruction in eval.eval(book, op) {
            if let Some(tally) = tally.as_deref_mut() {
                match instruction {
                    Instruction::Fill(_, _, price, quantity, false) => {
                        tally.fills += 1;
                        tally.quantity += quantity;
                        tally.past_limit += u64::from(match taker {
                            Some((true, limit)) => price > limit,
                            Some((false, limit)) => price < limit,
                            None => false,
                        });
                    }
                    Instruction::Delete(_, Msg::StpCancelMaker) => tally.self_trade += 1,
                    Instruction::NoOp(_, Msg::OrderNotFound | Msg::OrderAlreadyExists) => tally.rejected += 1,
                    _ => {}
                }
            }
            black_box(book.apply(instruction));
        }
        // The evaluator remembers what earlier evaluations would have changed until reset;
        // each message's instructions are applied at once, so nothing is left to remember
        // (and a moved order, cancelled and re-entered under its id, must be seen afresh).
        eval.reset();
    }

    #[inline]
    fn dispatch(&mut self, command: &ObCommand, mut tally: Option<&mut Tally>) {
        match *command {
            ObCommand::Insert(order) => self.run(obcore::Op::Insert(order), tally),
            ObCommand::Cancel(id) => self.run(obcore::Op::Delete(id), tally),
            ObCommand::Move { id, price } => {
                let Some(&order) = self.book.order(&id) else {
                    if let Some(tally) = tally {
                        tally.rejected += 1;
                    }
                    return;
                };
                self.run(obcore::Op::Delete(id), tally.as_deref_mut());
                let moved = ObOrder { price, quantity: order.remaining, ..order };
                self.run(obcore::Op::Insert(moved), tally);
            }
        }
    }
}

impl Engine for Obcore {
    const NAME: &'static str = "obcore";
    type Command = ObCommand;
    type Scratch = obcore::Evaluator<ObOrder>;

    fn translate(mix: &Mix) -> (Vec<ObCommand>, Vec<ObCommand>) {
        let translate = |message: &Message| match *message {
            Message::New(order) => ObCommand::Insert(ObOrder {
                id: order.id.0,
                owner: order.owner.0,
                is_buy: order.side == Side::Buy,
                ioc: order.tif == TimeInForce::Ioc,
                price: order.price.expect("the mix has limit orders only").0 as u64,
                quantity: order.quantity,
                remaining: order.quantity,
            }),
            Message::Cancel(id) => ObCommand::Cancel(id.0),
            Message::Move { id, price } => ObCommand::Move { id: id.0, price: price.0 as u64 },
        };
        (mix.prefill.iter().map(translate).collect(), mix.messages.iter().map(translate).collect())
    }

    fn scratch() -> obcore::Evaluator<ObOrder> {
        obcore::Evaluator::default()
    }

    fn new(eval: obcore::Evaluator<ObOrder>) -> Obcore {
        Obcore { book: obcore::OrderBook::default(), eval }
    }

    #[inline]
    fn apply(&mut self, command: &ObCommand) {
        self.dispatch(command, None);
    }

    fn apply_counted(&mut self, command: &ObCommand, tally: &mut Tally) {
        self.dispatch(command, Some(tally));
    }

    fn resting(&self) -> usize {
        self.book.len()
    }
}

// ---- the whole market, timed (Huashi) ----

/// Huashi's whole market on the mix, as the sequencer applies it: each message is its owner's
/// command (`new_order` with client order id `o<mix id>`, `cancel_order` and `amend_order` by
/// that id) through `Market::apply`, with credit, fees, client order ids and every event the
/// product builds. Not a like-for-like peer of the books: it shows what the product's own path
/// costs on a deep book, and what look-ahead does for it.
struct MarketLane {
    market: Market,
    out: Vec<Event>,
}

/// With look-ahead (`market+ahead`), driven as the product's sequencer and replay drive it:
/// before each command, `Market::look_ahead` sees the next ones.
impl Engine for MarketLane {
    const NAME: &'static str = "market";
    const AHEAD_NAME: &'static str = "market+ahead";
    type Command = Command;
    type Scratch = Vec<Event>;

    fn looks_ahead(&self) -> bool {
        self.market.looks_ahead()
    }

    #[inline]
    fn look_ahead(&self, later: &[Command]) {
        self.market.look_ahead(later);
    }

    fn translate(mix: &Mix) -> (Vec<Command>, Vec<Command>) {
        mix_commands(mix)
    }

    fn scratch() -> Vec<Event> {
        Vec::with_capacity(1024)
    }

    fn new(out: Vec<Event>) -> MarketLane {
        MarketLane { market: trading_market(OWNERS), out }
    }

    #[inline]
    fn apply(&mut self, command: &Command) {
        self.out.clear();
        black_box(self.market.apply(command, NOW, &mut self.out).result.is_ok());
        black_box(&self.out);
    }

    fn apply_counted(&mut self, command: &Command, tally: &mut Tally) {
        self.out.clear();
        if self.market.apply(command, NOW, &mut self.out).result.is_err() {
            tally.rejected += 1;
        }
        let limit = match &command.action {
            Action::NewOrder(entry) => entry.price,
            Action::AmendOrder { price, .. } => *price,
            _ => None,
        };
        for event in &self.out {
            match event {
                Event::Traded(trade) => {
                    tally.fills += 1;
                    tally.quantity += trade.quantity;
                    tally.past_limit += u64::from(past_limit(trade.aggressor, trade.price, limit));
                }
                Event::OrderDone { reason: DoneReason::SelfTrade, .. } => tally.self_trade += 1,
                _ => {}
            }
        }
    }

    fn resting(&self) -> usize {
        self.market.listings()[&MIX_SYMBOL].book.resting_count()
    }
}

// ---- the whole market (Huashi) ----

/// Heap growth of `Market::apply` placing the prefill's N resting orders, and, on a fresh
/// market, placing N orders that do not rest.
fn market_costs(mix: &Mix, resting: usize) -> (Growth, Growth) {
    // The market's traders are the mix's owners (with --owners distinct, folded onto them).
    let as_trader = |message: &Message| {
        let Message::New(mut order) = *message else { unreachable!("the prefill is new orders") };
        order.owner = Pk(order.owner.0 % OWNERS);
        order
    };
    let mut out = Vec::with_capacity(64);
    let mut market = trading_market(OWNERS);
    let commands: Vec<_> = mix.prefill.iter().map(|m| order_command(&as_trader(m))).collect();
    let window = Window::open();
    for command in &commands {
        apply_ok(&mut market, command, &mut out);
    }
    let whole = window.close();
    assert_eq!(market.listings()[&MIX_SYMBOL].book.resting_count(), resting, "the prefill rests in the market");
    // `get_orders` runs on the sequencer thread: what listing one trader's orders costs.
    let mut listing: Vec<(Duration, usize)> = (0..11)
        .map(|trader| {
            let started = Instant::now();
            let orders = black_box(market.open_orders(Pk(trader))).len();
            (started.elapsed(), orders)
        })
        .collect();
    listing.sort_unstable();
    let (took, orders) = listing[listing.len() / 2];
    println!("  get_orders of one trader (the median of 11 traders): {orders} orders listed in {took:.1?}");
    drop(market);

    // The same orders as IOC into an empty book: each is accepted and cancelled at once, so the
    // market keeps only what it keeps of every order placed.
    let mut market = trading_market(OWNERS);
    let commands: Vec<_> = mix
        .prefill
        .iter()
        .map(|m| order_command(&huashi_engine::core::book::NewOrder { tif: TimeInForce::Ioc, ..as_trader(m) }))
        .collect();
    let window = Window::open();
    for command in &commands {
        apply_ok(&mut market, command, &mut out);
    }
    let placed = window.close();
    assert_eq!(market.listings()[&MIX_SYMBOL].book.resting_count(), 0, "IOC orders do not rest");
    let (whole_requested, whole_blocks) = whole.per(resting);
    let (placed_requested, placed_blocks) = placed.per(resting);
    println!("the whole market (Market::apply, {OWNERS} traders), heap per order:");
    println!(
        "  {resting} resting GTC orders: {whole_requested} B each ({whole_blocks} in blocks): the book, order records, live client order ids and the day's used ones"
    );
    println!(
        "  the same {resting} orders placed as IOC into an empty book (none rests): {placed_requested} B each ({placed_blocks} in blocks): the day's used client order ids, which grow with orders placed"
    );
    println!(
        "  so a resting order costs the market {} B ({} in blocks) besides the day's used client order ids",
        whole_requested - placed_requested,
        whole_blocks - placed_blocks
    );
    // Where it goes, for whoever shrinks it: the records the market keeps per order (each in
    // an ordered map, whose nodes add their own share).
    println!(
        "  (the market's records: an order record (OrderMeta) is {} B, a client order id key (Pk, Code) {} B)",
        std::mem::size_of::<OrderMeta>(),
        std::mem::size_of::<(Pk, Code)>()
    );
    (whole, placed)
}

// ---- statistics ----

/// The median, least and greatest of some figures.
#[derive(Clone, Copy, Debug)]
struct Spread {
    median: f64,
    min: f64,
    max: f64,
}

impl Spread {
    fn of(values: &[f64]) -> Spread {
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let median = if n % 2 == 1 { sorted[n / 2] } else { (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0 };
        Spread { median, min: sorted[0], max: sorted[n - 1] }
    }

    fn show(&self, decimals: usize) -> String {
        format!("{:.*} ({:.*}–{:.*})", decimals, self.median, decimals, self.min, decimals, self.max)
    }
}

/// Time this thread has spent on a CPU (Linux `schedstat`), if the platform tells.
fn thread_on_cpu() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().next()?.parse().ok().map(Duration::from_nanos)
}
