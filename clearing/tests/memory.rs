//! Memory stays bounded over days: once each settled day is moved to the archive, clearing's
//! state after day 30 is the size it was after day 1, but for the index history's one row a day.
//! The goods of the previous trading day (dispatch lines and lot traces, which may still move) stay
//! in memory by design until the next `end_of_day`: they are measured apart, and must not grow
//! with the days either.
//! (The full 30 days × 100 k transactions run is `examples/memory_soak.rs`.)

mod support;

use huashi_clearing::{Archive, Clearing, ClearingConfig};
use huashi_engine::types::Day;
use rand::SeedableRng;
use support::MarketSim;

const DAYS: usize = 30;
const OUTPUTS_PER_DAY: usize = 2_000;

#[test]
fn state_does_not_grow_with_days_once_they_are_archived() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(30);
    let mut sim = MarketSim::new(Day(20_786));
    let mut clearing = Clearing::new(ClearingConfig::default(), sim.day());
    let registration = sim.register(20, 10, 2);
    clearing.apply(registration.seq, registration.ts, &registration.events);
    let dir = tempfile::tempdir().unwrap();
    let archive = Archive::open(dir.path()).unwrap();

    let mut sizes = Vec::new();
    let mut goods_sizes = Vec::new();
    let mut peak_in_day = 0;
    for _ in 0..DAYS {
        let mut applied = 0;
        while applied < OUTPUTS_PER_DAY {
            if let Some(out) = sim.step(support::random_op(&mut rng)) {
                clearing.apply(out.seq, out.ts, &out.events);
                applied += 1;
            }
        }
        peak_in_day = peak_in_day.max(bincode::serialized_size(&clearing).unwrap());
        let close = sim.end_day();
        clearing.apply(close.seq, close.ts, &close.events);
        let settled = clearing.take_settled_day().expect("a settled day");
        archive.write_day(&settled).unwrap();
        while let Some(goods) = clearing.take_goods_day() {
            archive.write_goods_day(&goods).unwrap();
        }
        let history = bincode::serialized_size(&clearing.index_history()).unwrap();
        let previous = clearing.goods_of_day(settled.day()).expect("the settled day's goods stay a day");
        let goods = bincode::serialized_size(previous).unwrap();
        sizes.push((bincode::serialized_size(&clearing).unwrap() - goods, history));
        goods_sizes.push(goods);
    }
    // One day's goods in memory after each day, never more: the day before has left.
    let goods_max = *goods_sizes.iter().max().unwrap();
    let goods_min = *goods_sizes.iter().min().unwrap();
    assert!(goods_max <= 2 * goods_min, "goods in memory vary from {goods_min} to {goods_max} bytes");
    let ((first, first_history), (last, last_history)) = (sizes[0], sizes[DAYS - 1]);
    eprintln!(
        "state after day 1: {first} B (index history {first_history} B), after day {DAYS}: {last} B \
         (index history {last_history} B); running day peak {peak_in_day} B"
    );
    // Apart from the index history (one small row a day, kept for /api/index/history), the state
    // after every day is the size it was after the first, within a few per cent.
    let base = first - first_history;
    for (day, (size, history)) in sizes.iter().enumerate() {
        let rest = size - history;
        assert!(rest * 100 <= base * 105, "day {}: state without history grew from {base} to {rest} bytes", day + 1);
    }
    assert!(last < 3 * first, "state grew from {first} to {last} bytes");
    // And the settled state is tiny next to one running day.
    assert!(last * 20 < peak_in_day, "settled state {last} B vs a running day {peak_in_day} B");
    assert_eq!(archive.days().unwrap().len(), DAYS);
}
