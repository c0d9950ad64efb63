//! The whole market's memory per book order, and how long a snapshot of a deep market takes to
//! load (issue 16).
//!
//! ```text
//! cargo run --release -p huashi-benches --bin market_orders -- [resting_orders 1000000]
//! ```
//!
//! Places `resting_orders` GTC limit orders that do not cross (buys below 10.00, sells above,
//! spread over 2,000 price levels a side, client order ids `c1`, `c2`, … from two traders) into
//! a `Market` through `apply`, as the sequencer would, and counts the heap with a global
//! allocator that tracks live bytes:
//!
//! - **per resting order**: everything the market holds for them — the book, the live orders'
//!   metadata and indexes, their client order ids — measured after `end_of_day`, which empties
//!   the day's set of used client order ids and leaves the GTC orders resting;
//! - **per order placed**: what that day's set of used client order ids held before it emptied.
//!
//! Then writes a snapshot of the market (as the sequencer does) and times loading it — reading
//! and verifying the file, decoding the market — best of three, per million resting orders.

use huashi_engine::command::{Action, Actor, Command, OrderEntry, Roles};
use huashi_engine::core::book::{BookState, OrderType, TimeInForce};
use huashi_engine::core::limits::{MarketLimits, COUNT_CEILING, CREDIT_LIMIT_MAX};
use huashi_engine::core::{Market, MarketConfig};
use huashi_engine::event::Event;
use huashi_engine::types::{Code, Day, EngineTime, Fen, Pk, Side};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// Tracks the bytes currently allocated on the heap.
struct CountingAllocator;

static LIVE_BYTES: AtomicUsize = AtomicUsize::new(0);

// SAFETY: defers every call to the system allocator; the counter has no effect on memory.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(layout.size(), Ordering::Relaxed);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size(), Ordering::Relaxed);
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE_BYTES.fetch_add(new_size, Ordering::Relaxed);
        LIVE_BYTES.fetch_sub(layout.size(), Ordering::Relaxed);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// The heap, plus the core's big buffers mapped from the kernel outside the allocator.
fn live_bytes() -> usize {
    LIVE_BYTES.load(Ordering::Relaxed) + huashi_engine::core::mapped_bytes()
}

const SYMBOL: Code = Code::literal("ROSE-A");

fn main() {
    let resting: u64 = std::env::args().nth(1).map_or(1_000_000, |a| a.parse().expect("a count of orders"));
    let mut config = MarketConfig::new(Day::parse("2026-11-29").expect("a day"));
    config.limits = MarketLimits {
        orders_open_per_participant_max: COUNT_CEILING,
        orders_open_total_max: COUNT_CEILING,
        orders_per_participant_day_max: COUNT_CEILING,
        ..MarketLimits::default()
    };
    let mut market = Market::new(config);
    let mut events = Vec::new();
    let mut now = 0u64;
    let mut apply = |market: &mut Market, actor: Actor, action: Action, events: &mut Vec<Event>| {
        now += 1;
        events.clear();
        let command = Command::new(actor, action);
        let applied = market.apply(&command, EngineTime(now), events);
        applied.result.unwrap_or_else(|r| panic!("{} was rejected: {r:?}", command.action.name()));
    };
    for (id, buyer) in [("buyer", true), ("grower", false)] {
        let roles =
            if buyer { Roles { buyer: true, ..Roles::default() } } else { Roles { grower: true, ..Roles::default() } };
        let register = Action::RegisterParticipant {
            id: Code::parse(id, Code::BYTES_MAX).expect("a code"),
            name: id.into(),
            roles,
            credit_limit: Fen(if buyer { CREDIT_LIMIT_MAX } else { 0 }),
            token_hash: [buyer as u8; 32],
            firm: None,
            daily_limit: None,
        };
        apply(&mut market, Actor::Operator, register, &mut events);
    }
    apply(&mut market, Actor::Operator, Action::SetBookState { symbol: SYMBOL, state: BookState::Open }, &mut events);
    events = Vec::new();
    let before = live_bytes();

    let started = Instant::now();
    for n in 1..=resting {
        let side = if n % 2 == 0 { Side::Buy } else { Side::Sell };
        let owner = if side == Side::Buy { Pk(0) } else { Pk(1) };
        // 2,000 levels a side, a tick apart, never crossing.
        let offset = 1 + (n.wrapping_mul(7_919) % 2_000) as i64;
        let price = if side == Side::Buy { 1_000 - offset / 2 - 1 } else { 1_000 + offset };
        let entry = OrderEntry {
            client_order_id: Code::parse(&format!("c{n}"), Code::BYTES_MAX).expect("a code"),
            symbol: SYMBOL,
            side,
            order_type: OrderType::Limit,
            price: Some(Fen(price.max(1))),
            quantity: 1 + n % 97,
            time_in_force: TimeInForce::Gtc,
            post_only: false,
        };
        apply(&mut market, Actor::Participant(owner), Action::NewOrder(entry), &mut events);
    }
    let placing = started.elapsed().as_secs_f64();
    events = Vec::new();
    let book = &market.listings()[&SYMBOL].book;
    assert_eq!(book.resting_count() as u64, resting, "every order rests");
    let book_bytes = book.heap_bytes();
    let payload_bytes = book.payload_heap_bytes();
    let with_day_ids = live_bytes() - before;

    apply(&mut market, Actor::Operator, Action::SetBookState { symbol: SYMBOL, state: BookState::Closed }, &mut events);
    apply(&mut market, Actor::Operator, Action::EndOfDay, &mut events);
    events = Vec::new();
    drop(events);
    assert_eq!(market.listings()[&SYMBOL].book.resting_count() as u64, resting, "GTC orders outlive the day");
    let whole = live_bytes() - before;
    let day_ids = with_day_ids.saturating_sub(whole);
    let per = |bytes: usize| bytes as f64 / resting as f64;
    println!("{resting} resting GTC orders placed through Market::apply in {placing:.2} s");
    println!(
        "heap per resting order, whole market: {:.1} B (the book's own structures {:.1} B; the market's \
         in the book — order payloads: client order id, hold, time; the client-id index — {:.1} B; the \
         rest — long client order ids, the market's own structures — {:.1} B)",
        per(whole),
        per(book_bytes - payload_bytes),
        per(payload_bytes),
        per(whole.saturating_sub(book_bytes))
    );
    println!("heap per order placed, the day's set of used client order ids: {:.1} B", per(day_ids));

    let dir = tempfile::tempdir().expect("a temporary directory");
    let started = Instant::now();
    let bytes = bincode::serialize(&market).expect("the market serialises");
    huashi_engine::snapshot::write_snapshot(dir.path(), 1, &bytes).expect("the snapshot is written");
    let writing = started.elapsed().as_secs_f64();
    let hash = market.state_hash();
    drop(market);
    let mut best = f64::MAX;
    for _ in 0..3 {
        let started = Instant::now();
        let (_, body) = huashi_engine::snapshot::latest_snapshot(dir.path()).expect("readable").expect("a snapshot");
        let loaded: Market = bincode::deserialize(&body).expect("the snapshot decodes");
        best = best.min(started.elapsed().as_secs_f64());
        assert_eq!(loaded.state_hash(), hash, "the loaded market is the one saved");
    }
    let millions = resting as f64 / 1e6;
    println!(
        "snapshot of {} MB: written in {writing:.2} s; loaded (read, verify, decode) in {best:.3} s = {:.3} s per million resting orders",
        bytes.len() / 1_000_000,
        best / millions
    );
}
