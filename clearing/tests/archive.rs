//! The archive: two settled days written to sled, the store closed and reopened, everything read
//! back as it was written; a seat's statement read back as its view of its firm's.

mod support;

use huashi_clearing::{Archive, Clearing, ClearingConfig, SettledDay, StatementLookup};
use huashi_engine::types::{Code, Day};
use rand::SeedableRng;
use support::MarketSim;

fn two_days() -> (Clearing, Vec<SettledDay>) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    let mut sim = MarketSim::new(Day(20_786));
    let mut clearing = Clearing::new(ClearingConfig::default(), sim.day());
    let registration = sim.register(3, 2, 1);
    clearing.apply(registration.seq, registration.ts, &registration.events);
    let seats = sim.register_seats(3);
    clearing.apply(seats.seq, seats.ts, &seats.events);
    let mut settled = Vec::new();
    for _ in 0..2 {
        for _ in 0..400 {
            if let Some(out) = sim.step(support::random_op(&mut rng)) {
                clearing.apply(out.seq, out.ts, &out.events);
            }
        }
        let close = sim.end_day();
        clearing.apply(close.seq, close.ts, &close.events);
        settled.push(clearing.take_settled_day().unwrap());
    }
    (clearing, settled)
}

#[test]
fn two_days_read_back_after_reopening() {
    let (clearing, settled) = two_days();
    let dir = tempfile::tempdir().unwrap();
    {
        let archive = Archive::open(dir.path()).unwrap();
        for day in &settled {
            archive.write_day(day).unwrap();
        }
    }
    let archive = Archive::open(dir.path()).unwrap();
    let days: Vec<Day> = settled.iter().map(SettledDay::day).collect();
    assert_eq!(archive.days().unwrap(), days);
    for day in &settled {
        let d = day.day();
        assert!(!day.statements.is_empty() && !day.trades.is_empty());
        assert_eq!(archive.statements_of_day(d).unwrap(), day.statements);
        for statement in &day.statements {
            assert_eq!(archive.statement(d, &statement.participant).unwrap().as_ref(), Some(statement));
        }
        assert_eq!(archive.statement(d, &Code::from_static("NOBODY")).unwrap(), None);
        // Seats: a view of the firm's archived statement, for each seat that traded that day.
        assert!(!day.seats.is_empty(), "seats traded on {d}");
        assert_eq!(archive.seats(d).unwrap(), day.seats);
        for (seat, firm) in &day.seats {
            let firm_statement = day.statements.iter().find(|s| s.participant == *firm).expect("the firm's statement");
            let view = archive.statement(d, seat).unwrap().expect("the seat's view");
            assert_eq!(view, firm_statement.seat_view(*seat));
            assert_eq!(view.view_of, Some(*firm));
            assert!(!view.lines.is_empty());
        }
        for seat in ["S0", "S1", "S2"].map(Code::from_static) {
            if !day.seats.iter().any(|(s, _)| *s == seat) {
                assert_eq!(archive.statement(d, &seat).unwrap(), None, "{seat} did not trade on {d}");
            }
            assert_eq!(clearing.statement(&seat, d), StatementLookup::InArchive);
        }
        assert_eq!(archive.trades(d).unwrap(), day.trades);
        assert_eq!(archive.ledger(d).unwrap(), day.ledger);
        assert_eq!(archive.lots(d).unwrap(), day.lots);
        assert_eq!(archive.market(d).unwrap().as_ref(), Some(&day.market));
        assert_eq!(archive.summary(d).unwrap().as_ref(), Some(&day.summary));
    }
    assert_eq!(archive.index_history().unwrap(), clearing.index_history());
    // Clearing no longer holds those days: it points at the archive.
    let someone = settled[0].statements[0].participant;
    assert_eq!(clearing.statement(&someone, days[0]), StatementLookup::InArchive);
    // Nothing is archived for a day that did not settle.
    assert!(archive.statements_of_day(clearing.day()).unwrap().is_empty());
    assert_eq!(archive.summary(clearing.day()).unwrap(), None);
}

#[test]
fn writing_a_day_again_replaces_it_whole() {
    let (_, settled) = two_days();
    let dir = tempfile::tempdir().unwrap();
    let archive = Archive::open(dir.path()).unwrap();
    // A first write with more records than the real day (as if an older run had more) ...
    let mut bloated = settled[0].clone();
    let mut extra = bloated.trades[0].clone();
    extra.no = 999_999;
    bloated.trades.push(extra);
    archive.write_day(&bloated).unwrap();
    assert_eq!(archive.trades(settled[0].day()).unwrap().len(), settled[0].trades.len() + 1);
    // ... is replaced, not merged, by the rebuilt day.
    archive.write_day(&settled[0]).unwrap();
    assert_eq!(archive.trades(settled[0].day()).unwrap(), settled[0].trades);
    assert_eq!(archive.days().unwrap(), vec![settled[0].day()]);
}

#[test]
fn statement_csvs_can_be_written_from_the_archive() {
    let (_, settled) = two_days();
    let dir = tempfile::tempdir().unwrap();
    let archive = Archive::open(dir.path().join("archive")).unwrap();
    archive.write_day(&settled[1]).unwrap();
    let day = settled[1].day();
    let statements = archive.statements_of_day(day).unwrap();
    let out = dir.path().join("csv");
    let fees = archive.summary(day).unwrap().unwrap().fee_schedule;
    let files = huashi_clearing::write_statement_csvs(&statements, day, &fees, &out).unwrap();
    assert_eq!(files.len(), statements.len() + 2);
    let fees_csv = std::fs::read_to_string(out.join("fees.csv")).unwrap();
    assert_eq!(fees_csv, format!("day,commission_pct,clock_fee_per_container,book_fee_pct\n{day},5,0.50,0.1\n"));
    // The summary's net column sums to zero: participants' nets plus the market's income.
    let summary = std::fs::read_to_string(out.join("summary.csv")).unwrap();
    let total: i64 = summary
        .lines()
        .skip(1)
        .map(|line| {
            let net = line.rsplit(',').next().unwrap();
            huashi_clearing::money::to_fen(net.parse().unwrap()).0
        })
        .sum();
    assert_eq!(total, 0);
    assert_eq!(summary.lines().count(), statements.len() + 2);
}

/// The goods of a day (issue 15): written as the day settles and again, final, when it leaves
/// memory; every lot's trace and every line read back after reopening, the second write
/// replacing the first.
#[test]
fn goods_days_read_back_and_a_final_write_replaces_the_first() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(12);
    let mut sim = MarketSim::new(Day(20_786));
    let mut clearing = Clearing::new(ClearingConfig::default(), sim.day());
    let registration = sim.register(3, 2, 1);
    clearing.apply(registration.seq, registration.ts, &registration.events);
    let dir = tempfile::tempdir().unwrap();
    let mut written = Vec::new();
    for _ in 0..3 {
        for _ in 0..1_500 {
            if let Some(out) = sim.step(support::random_op(&mut rng)) {
                clearing.apply(out.seq, out.ts, &out.events);
            }
        }
        let close = sim.end_day();
        clearing.apply(close.seq, close.ts, &close.events);
        clearing.take_settled_day().unwrap();
        let archive = Archive::open(dir.path()).unwrap();
        while let Some(goods) = clearing.take_goods_day() {
            archive.write_goods_day(&goods).unwrap();
            written.retain(|g: &huashi_clearing::GoodsDay| g.day != goods.day);
            written.push(goods);
        }
    }
    // Day 1 and 2 final, day 3 as it settled: each the last written.
    assert_eq!(written.iter().map(|g| g.day).collect::<Vec<_>>(), vec![Day(20_786), Day(20_787), Day(20_788)]);
    let archive = Archive::open(dir.path()).unwrap();
    for goods in &written {
        assert!(!goods.lines.is_empty(), "a day of sales on {}", goods.day);
        // More lots than one ~16 KiB chunk holds: the lookup must find the right chunk.
        let bytes = bincode::serialized_size(&goods.lots).unwrap();
        assert!(bytes > 3 * huashi_clearing::archive::CHUNK_BYTES_TARGET, "{bytes} bytes of lots on {}", goods.day);
        let lines: Vec<_> = goods.lines.values().cloned().collect();
        assert_eq!(archive.goods_lines(goods.day).unwrap(), lines);
        for lot in goods.lots.keys() {
            assert_eq!(archive.trace(*lot).unwrap(), goods.trace(*lot));
        }
    }
    assert_eq!(archive.trace(huashi_engine::types::LotId(u64::MAX)).unwrap(), None);
    assert!(archive.goods_lines(Day(20_000)).unwrap().is_empty());
}
