//! One trading day worked by hand: three buyers (B1, B2, B3), two growers (G1, G2), four clock
//! awards (one of them voided and re-sold), four book trades, default fees — grower commission 5 %,
//! buyer fee 0.50 per container at the clock and 0.1 % on the book — rounded half-even to the fen,
//! with several figures landing exactly on a half fen. A second day works a seat of firm B1
//! buying by presale and on the book beside its firm.

use huashi_clearing::export::{statement_csv, summary_csv};
use huashi_clearing::{
    write_statement_csvs, Clearing, ClearingConfig, MarketData, Statement, StatementLookup, TradeKind,
};
use huashi_engine::command::Roles;
use huashi_engine::core::catalogue::Grade;
use huashi_engine::core::fees::FeeSchedule;
use huashi_engine::core::lots::{Lot, LotStatus};
use huashi_engine::event::{Award, Event, PresaleSale, Trade};
use huashi_engine::types::{ClockId, Code, Day, EngineTime, Fen, LotId, OrderId, Pk, Side, TradeId};
use rust_decimal::Decimal;
use std::str::FromStr;

const B1: Pk = Pk(0);
const B2: Pk = Pk(1);
const B3: Pk = Pk(2);
const G1: Pk = Pk(3);
const G2: Pk = Pk(4);
/// A seat of firm B1.
const S1: Pk = Pk(5);

fn id(pk: Pk) -> Code {
    Code::from_static(["B1", "B2", "B3", "G1", "G2", "S1"][pk.0 as usize])
}

fn d(text: &str) -> Decimal {
    Decimal::from_str(text).unwrap()
}

fn day() -> Day {
    Day::parse("2026-11-29").unwrap()
}

fn at(second: u64) -> EngineTime {
    EngineTime((day().0 as u64 * 86_400 - 2 * 3_600 + second) * 1_000_000)
}

fn lot(n: u64, grower: Pk, product: &'static str, grade: Grade, units_per_container: u32, containers: u32) -> Event {
    Event::LotConsigned {
        lot: Box::new(Lot {
            id: LotId(n),
            grower,
            grower_id: id(grower),
            product: Code::from_static(product),
            grade,
            units_per_container,
            containers,
            remaining: containers,
            sold: 0,
            unsold: 0,
            min_purchase: 1,
            min_price: Fen(1),
            origin: "Yunnan".to_string(),
            photo_url: String::new(),
            note: String::new(),
            status: LotStatus::Consigned,
            day: day(),
            clock: None,
            start_price: None,
            master: Default::default(),
            position: None,
            presale: None,
            presales: 0,
            sales: Default::default(),
            rounds: 0,
            qi: None,
        }),
    }
}

/// An award with the figures worked out by hand (amount, fee, commission in fen).
#[allow(clippy::too_many_arguments)]
fn award(
    lot: u64,
    round: u32,
    buyer: Pk,
    grower: Pk,
    product: &'static str,
    grade: Grade,
    price: i64,
    containers: u32,
    units: u64,
    remaining: u32,
    figures: (i64, i64, i64),
    ts: EngineTime,
) -> Event {
    let (amount, fee, commission) = figures;
    // The hand figures are the engine's: guard the arithmetic in the comments below.
    let fees = FeeSchedule::default();
    assert_eq!(Fen(price * units as i64), Fen(amount));
    assert_eq!(fees.clock_fee(containers), Fen(fee));
    assert_eq!(fees.commission(Fen(amount)), Fen(commission));
    Event::Awarded(Box::new(Award {
        clock: ClockId(1),
        lot: LotId(lot),
        round,
        buyer,
        buyer_id: id(buyer),
        grower,
        grower_id: id(grower),
        product: Code::from_static(product),
        grade,
        price: Fen(price),
        containers,
        units,
        amount: Fen(amount),
        fee: Fen(fee),
        commission: Fen(commission),
        remaining,
        ts,
        standing: false,
    }))
}

#[allow(clippy::too_many_arguments)]
fn trade(
    n: u64,
    symbol: &'static str,
    product: &'static str,
    buyer: Pk,
    seller: Pk,
    price: i64,
    quantity: u64,
    figures: (i64, i64, i64),
    ts: EngineTime,
) -> Event {
    let (amount, fee, commission) = figures;
    let fees = FeeSchedule::default();
    assert_eq!(Fen(price * quantity as i64), Fen(amount));
    assert_eq!(fees.book_fee(Fen(amount)), Fen(fee));
    assert_eq!(fees.commission(Fen(amount)), Fen(commission));
    Event::Traded(Trade {
        trade_id: TradeId(n),
        symbol: Code::from_static(symbol),
        product: Code::from_static(product),
        price: Fen(price),
        quantity,
        amount: Fen(amount),
        aggressor: Side::Buy,
        buyer,
        buyer_id: id(buyer),
        buyer_order: OrderId(2 * n),
        seller,
        seller_id: id(seller),
        seller_order: OrderId(2 * n + 1),
        fee: Fen(fee),
        commission: Fen(commission),
        ts,
    })
}

fn registrations() -> Vec<Event> {
    [B1, B2, B3, G1, G2]
        .into_iter()
        .map(|pk| Event::ParticipantRegistered {
            pk,
            id: id(pk),
            name: id(pk).to_string(),
            roles: Roles { operator: false, grower: pk.0 >= 3, buyer: pk.0 < 3, logistics: false },
            credit_limit: Fen(1_000_000),
            token_hash: [0; 32],
            firm: None,
            daily_limit: None,
        })
        .collect()
}

/// The day, one output per command: (seq, ts, events).
fn the_day() -> Vec<(u64, EngineTime, Vec<Event>)> {
    const A1: Grade = Grade::A1;
    const A2: Grade = Grade::A2;
    vec![
        (1, at(0), registrations()),
        (
            2,
            at(10),
            vec![
                lot(1, G1, "ROSE", A1, 10, 10),
                lot(2, G2, "LILY", A2, 5, 4),
                lot(3, G2, "PHALAENOPSIS", Grade::B1, 1, 6),
            ],
        ),
        // Lot 1, round 1: B1 takes 1 container (10 stems) at 2.11 = 21.10; fee 1 × 0.50 = 0.50;
        // commission 5 % × 21.10 = 1.055, a tie between 1.05 and 1.06: the even neighbour 1.06.
        (3, at(20), vec![award(1, 1, B1, G1, "ROSE", A1, 211, 1, 10, 9, (2_110, 50, 106), at(20))]),
        // Lot 1, round 2: B2 takes 3 containers (30 stems) at 0.71 = 21.30; fee 1.50;
        // commission 1.065, a tie between 1.06 and 1.07: the even neighbour 1.06.
        (4, at(21), vec![award(1, 2, B2, G1, "ROSE", A1, 71, 3, 30, 6, (2_130, 150, 106), at(21))]),
        // Lot 2: B3 takes all 4 containers (20 stems) at 1.50 = 30.00; fee 2.00; commission 1.50.
        (5, at(30), vec![award(2, 1, B3, G2, "LILY", A2, 150, 4, 20, 0, (3_000, 200, 150), at(30))]),
        // Lot 3, round 1: B1 takes 2 pots at 25.00 = 50.00 (fee 1.00, commission 2.50) ...
        (6, at(40), vec![award(3, 1, B1, G2, "PHALAENOPSIS", Grade::B1, 2_500, 2, 2, 4, (5_000, 100, 250), at(40))]),
        // ... pressed by mistake: the operator voids it; the pots go back to the lot.
        (
            7,
            at(41),
            vec![Event::AwardVoided {
                clock: ClockId(1),
                lot: LotId(3),
                round: 1,
                buyer: B1,
                grower: G2,
                containers: 2,
                remaining: 6,
                amount: Fen(5_000),
                fee: Fen(100),
                commission: Fen(250),
            }],
        ),
        // Lot 3, round 2: B2 takes 2 pots at 24.50 = 49.00; fee 1.00; commission 2.45.
        (8, at(43), vec![award(3, 2, B2, G2, "PHALAENOPSIS", Grade::B1, 2_450, 2, 2, 4, (4_900, 100, 245), at(43))]),
        // Lot 3, round 3 falls below the reserve: the 4 pots left are unsold.
        (
            9,
            at(50),
            vec![Event::LotUnsold { clock: ClockId(1), lot: LotId(3), grower: G2, round: 3, remaining: 4, ts: at(50) }],
        ),
        // Book trade 1: B3 buys 250 ROSE from G1 at 0.45 = 112.50; fee 0.1 % = 0.1125 → 0.11;
        // commission 5.625, a tie between 5.62 and 5.63: the even 5.62.
        (10, at(60), vec![trade(1, "ROSE-A", "ROSE", B3, G1, 45, 250, (11_250, 11, 562), at(60))]),
        // Book trade 2: B1 buys 100 LILY from G2 at 2.25 = 225.00; fee 0.225, a tie: the even 0.22;
        // commission 11.25.
        (11, at(61), vec![trade(2, "LILY-A", "LILY", B1, G2, 225, 100, (22_500, 22, 1_125), at(61))]),
        // Book trade 3: B2 buys 50 ROSE from G1 at 0.47 = 23.50; fee 0.0235 → 0.02;
        // commission 1.175, a tie between 1.17 and 1.18: the even 1.18.
        (12, at(62), vec![trade(3, "ROSE-A", "ROSE", B2, G1, 47, 50, (2_350, 2, 118), at(62))]),
        // Book trade 4: B3 buys 30 LILY from G2 at 0.50 = 15.00; fee 0.015, a tie: the even 0.02;
        // commission 0.75.
        (13, at(63), vec![trade(4, "LILY-A", "LILY", B3, G2, 50, 30, (1_500, 2, 75), at(63))]),
        // The day: 8 sales stand; turnover 21.10 + 21.30 + 30.00 + 49.00 + 112.50 + 225.00 + 23.50
        // + 15.00 = 497.40; fees = buyer fees 5.37 + commissions 24.87 = 30.24.
        (
            14,
            at(3_600),
            vec![Event::DaySettled {
                day: day(),
                next_day: day().next(),
                trades: 8,
                turnover: Fen(49_740),
                fees: Fen(3_024),
            }],
        ),
    ]
}

fn found(lookup: StatementLookup) -> Statement {
    match lookup {
        StatementLookup::Found(statement) => statement,
        other => panic!("expected a statement, got {other:?}"),
    }
}

#[test]
fn the_worked_day_settles_to_the_fen() {
    let mut clearing = Clearing::new(ClearingConfig::default(), day());
    let mut published = Vec::new();
    for (seq, ts, events) in the_day() {
        if seq == 7 {
            // Before the void B1's running statement shows lot 3 ...
            let b1 = found(clearing.statement(&id(B1), day()));
            assert_eq!(b1.lines.len(), 2);
            assert_eq!(b1.total_bought, d("71.10"));
        }
        published.extend(clearing.apply(seq, ts, &events));
        if seq == 7 {
            // ... and after it, the line has disappeared.
            let b1 = found(clearing.statement(&id(B1), day()));
            assert_eq!(b1.lines.len(), 1);
            assert_eq!((b1.total_bought, b1.fees, b1.net), (d("21.10"), d("0.50"), d("-21.60")));
        }
        assert!(clearing.ledger_balanced());
    }

    let statement = |pk| found(clearing.statement(&id(pk), day()));
    // B1: lot 1 (21.10, fee 0.50) and trade 2 (225.00, fee 0.22); the voided lot 3 is gone.
    // bought 246.10, fees 0.72, net −246.82.
    let b1 = statement(B1);
    assert_eq!(
        b1.lines.iter().map(|l| (l.kind, l.reference, l.side, l.amount, l.fee)).collect::<Vec<_>>(),
        vec![
            (TradeKind::Clock, 1, Side::Buy, d("21.10"), d("0.50")),
            (TradeKind::Book, 2, Side::Buy, d("225.00"), d("0.22"))
        ]
    );
    assert_eq!((b1.total_bought, b1.total_sold, b1.fees, b1.commission), (d("246.10"), d("0"), d("0.72"), d("0")));
    assert_eq!(b1.net.to_string(), "-246.82");
    // B2: 21.30 + 49.00 + 23.50 = 93.80; fees 1.50 + 1.00 + 0.02 = 2.52; net −96.32.
    let b2 = statement(B2);
    assert_eq!((b2.total_bought, b2.fees, b2.net.to_string()), (d("93.80"), d("2.52"), "-96.32".to_string()));
    // B3: 30.00 + 112.50 + 15.00 = 157.50; fees 2.00 + 0.11 + 0.02 = 2.13; net −159.63.
    let b3 = statement(B3);
    assert_eq!((b3.total_bought, b3.fees, b3.net.to_string()), (d("157.50"), d("2.13"), "-159.63".to_string()));
    // G1: 21.10 + 21.30 + 112.50 + 23.50 = 178.40; commission 1.06 + 1.06 + 5.62 + 1.18 = 8.92;
    // net 169.48.
    let g1 = statement(G1);
    assert_eq!(
        g1.lines.iter().map(|l| (l.reference, l.side, l.fee)).collect::<Vec<_>>(),
        vec![
            (1, Side::Sell, d("1.06")),
            (1, Side::Sell, d("1.06")),
            (1, Side::Sell, d("5.62")),
            (3, Side::Sell, d("1.18"))
        ]
    );
    assert_eq!((g1.total_sold, g1.commission, g1.net.to_string()), (d("178.40"), d("8.92"), "169.48".to_string()));
    // G2: 30.00 + 49.00 + 225.00 + 15.00 = 319.00; commission 1.50 + 2.45 + 11.25 + 0.75 = 15.95;
    // net 303.05.
    let g2 = statement(G2);
    assert_eq!((g2.total_sold, g2.commission, g2.net.to_string()), (d("319.00"), d("15.95"), "303.05".to_string()));
    // Conservation: −246.82 − 96.32 − 159.63 + 169.48 + 303.05 = −30.24, and the market earned 30.24.
    let nets: Decimal = [&b1, &b2, &b3, &g1, &g2].iter().map(|s| s.net).sum();
    assert_eq!(nets, d("-30.24"));

    let settled = clearing.take_settled_day().expect("the day settled");
    assert_eq!(settled.summary.fees.to_string(), "30.24");
    assert_eq!(
        (settled.summary.buyer_fees.to_string(), settled.summary.commission.to_string()),
        ("5.37".into(), "24.87".into())
    );
    assert_eq!(settled.summary.turnover.to_string(), "497.40");
    assert_eq!(settled.statements, vec![b1, b2, b3, g1, g2]);
    // 4 awards + 1 reversal + 1 award + 4 trades.
    assert_eq!(settled.ledger.len(), 10);
    assert_eq!(settled.trades.len(), 8);
    assert!(settled.ledger.iter().all(|e| e.sum().is_zero()));
    // Once archived, the day's statements are the archive's to answer.
    assert_eq!(clearing.statement(&id(B1), day()), StatementLookup::InArchive);

    // Statistics. ROSE A1: lot 1's two awards and book trades 1 and 3 (book counts as A1):
    // open 2.11, high 2.11, low 0.45, last 0.47, 340 units for 178.40 → VWAP 0.5247… → 0.52.
    let rose = settled.market.cells.iter().find(|c| c.product.as_str() == "ROSE" && c.grade == Grade::A1).unwrap();
    assert_eq!(
        (rose.open, rose.high, rose.low, rose.last, rose.vwap),
        (Some(d("2.11")), Some(d("2.11")), Some(d("0.45")), Some(d("0.47")), Some(d("0.52")))
    );
    assert_eq!((rose.units, rose.turnover, rose.trades), (340, d("178.40"), 4));
    // LILY A1 (book only): 240.00 for 130 stems → 1.8461… → 1.85.
    let lily = settled.market.cells.iter().find(|c| c.product.as_str() == "LILY" && c.grade == Grade::A1).unwrap();
    assert_eq!(lily.vwap, Some(d("1.85")));
    // The voided award left PHALAENOPSIS B1 with one sale at one price: VWAP = that price.
    let orchid = settled.market.cells.iter().find(|c| c.product.as_str() == "PHALAENOPSIS").unwrap();
    assert_eq!((orchid.trades, orchid.vwap, orchid.turnover), (1, Some(d("24.50")), d("49.00")));
    // Clearance: ROSE 4 of 10 containers sold (6 unsold at the day's end); LILY 4 of 4;
    // PHALAENOPSIS 2 of 6 (4 unsold when round 3 fell below the reserve).
    let shares: Vec<(String, u64, u64, String, String)> = settled
        .market
        .products
        .iter()
        .map(|p| (p.product.to_string(), p.sold, p.unsold, p.sold_share.to_string(), p.unsold_share.to_string()))
        .collect();
    assert_eq!(
        shares,
        vec![
            ("LILY".into(), 4, 0, "1.0000".into(), "0.0000".into()),
            ("PHALAENOPSIS".into(), 2, 4, "0.3333".into(), "0.6667".into()),
            ("ROSE".into(), 4, 6, "0.4000".into(), "0.6000".into()),
        ]
    );

    // The index's first day: every index with cells sets its base; foliage did not trade.
    let closes: Vec<(&str, String, bool)> = published
        .iter()
        .filter_map(|m| match m {
            MarketData::Index(v) if v.is_final => Some((v.code.as_str(), v.value.to_string(), v.is_final)),
            _ => None,
        })
        .collect();
    assert_eq!(
        closes,
        vec![
            ("SFCI", "1000.00".into(), true),
            ("SFCI-CUT", "1000.00".into(), true),
            ("SFCI-POT", "1000.00".into(), true)
        ]
    );

    // CSVs: the summary's net column sums to zero with the market's row.
    let summary = summary_csv(&settled.statements);
    assert_eq!(
        summary,
        "participant,bought,sold,fees,commission,corrections,net\n\
         B1,246.10,0.00,0.72,0.00,0.00,-246.82\n\
         B2,93.80,0.00,2.52,0.00,0.00,-96.32\n\
         B3,157.50,0.00,2.13,0.00,0.00,-159.63\n\
         G1,0.00,178.40,0.00,8.92,0.00,169.48\n\
         G2,0.00,319.00,0.00,15.95,0.00,303.05\n\
         (market),0.00,0.00,5.37,24.87,0.00,30.24\n"
    );
    assert_eq!(
        statement_csv(&settled.statements[0]),
        "participant,day,kind,ref,product,grade,side,price,units,amount,fee\n\
         B1,2026-11-29,clock,1,ROSE,A1,buy,2.11,10,21.10,0.50\n\
         B1,2026-11-29,book,2,LILY,A1,buy,2.25,100,225.00,0.22\n\
         B1,2026-11-29,total_bought,,,,,,,246.10,\n\
         B1,2026-11-29,total_sold,,,,,,,0.00,\n\
         B1,2026-11-29,fees,,,,,,,0.72,\n\
         B1,2026-11-29,commission,,,,,,,0.00,\n\
         B1,2026-11-29,corrections,,,,,,,0.00,\n\
         B1,2026-11-29,net,,,,,,,-246.82,\n"
    );
    let dir = tempfile::tempdir().unwrap();
    let files = write_statement_csvs(&settled.statements, day(), &settled.summary.fee_schedule, dir.path()).unwrap();
    let names: Vec<String> = files.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
    assert_eq!(
        names,
        [
            "statement-B1.csv",
            "statement-B2.csv",
            "statement-B3.csv",
            "statement-G1.csv",
            "statement-G2.csv",
            "summary.csv",
            "fees.csv"
        ]
    );
    assert_eq!(std::fs::read_to_string(dir.path().join("summary.csv")).unwrap(), summary);
}

#[test]
fn statements_serialise_as_the_protocol_names_them() {
    let mut clearing = Clearing::new(ClearingConfig::default(), day());
    for (seq, ts, events) in the_day().into_iter().take(3) {
        clearing.apply(seq, ts, &events);
    }
    let json = serde_json::to_value(found(clearing.statement(&id(B1), day()))).unwrap();
    assert_eq!(json["total_bought"], "21.10");
    assert_eq!(json["net"], "-21.60");
    assert_eq!(json["lines"][0]["ref"], 1);
    assert_eq!(json["lines"][0]["kind"], "clock");
    assert_eq!(json["lines"][0]["price"], "2.11");
}

/// Lot 1 (G1, ROSE A1, 10 containers of 10 stems): seat S1 of firm B1 buys 3 containers by
/// presale, B1 itself the other 7 at the clock, and S1 buys 100 ROSE on the book from G2.
fn the_seats_day() -> Vec<(u64, EngineTime, Vec<Event>)> {
    let fees = FeeSchedule::default();
    let mut registrations = registrations();
    registrations.push(Event::ParticipantRegistered {
        pk: S1,
        id: id(S1),
        name: "S1".to_string(),
        roles: Roles { operator: false, grower: false, buyer: true, logistics: false },
        credit_limit: Fen::ZERO,
        token_hash: [0; 32],
        firm: Some(B1),
        daily_limit: Some(Fen(100_000)),
    });
    // Presale: 30 stems at 1.05 = 31.50; fee 3 × 0.50 = 1.50; commission 1.575, a tie: the even 1.58.
    let presale = PresaleSale {
        lot: LotId(1),
        number: 1,
        buyer: S1,
        buyer_id: id(S1),
        grower: G1,
        grower_id: id(G1),
        product: Code::from_static("ROSE"),
        grade: Grade::A1,
        price: Fen(105),
        containers: 3,
        units: 30,
        amount: Fen(3_150),
        fee: Fen(150),
        commission: Fen(158),
        offer_left: 0,
        remaining: 7,
        ts: at(15),
    };
    assert_eq!((fees.clock_fee(3), fees.commission(Fen(3_150))), (Fen(150), Fen(158)));
    vec![
        (1, at(0), registrations),
        (2, at(10), vec![lot(1, G1, "ROSE", Grade::A1, 10, 10)]),
        (3, at(15), vec![Event::PresaleBought(Box::new(presale))]),
        // B1 takes the other 70 stems at 0.95 = 66.50; fee 3.50; commission 3.325: the even 3.32.
        (4, at(20), vec![award(1, 1, B1, G1, "ROSE", Grade::A1, 95, 7, 70, 0, (6_650, 350, 332), at(20))]),
        // S1 buys 100 ROSE from G2 at 0.45 = 45.00; fee 0.045: the even 0.04; commission 2.25.
        (5, at(30), vec![trade(1, "ROSE-A", "ROSE", S1, G2, 45, 100, (4_500, 4, 225), at(30))]),
        // 3 sales, turnover 31.50 + 66.50 + 45.00 = 143.00; fees: buyer 1.50 + 3.50 + 0.04 = 5.04,
        // commission 1.58 + 3.32 + 2.25 = 7.15, together 12.19.
        (
            6,
            at(3_600),
            vec![Event::DaySettled {
                day: day(),
                next_day: day().next(),
                trades: 3,
                turnover: Fen(14_300),
                fees: Fen(1_219),
            }],
        ),
    ]
}

#[test]
fn a_seats_presale_and_book_purchase_are_its_firms_to_the_fen() {
    let mut clearing = Clearing::new(ClearingConfig::default(), day());
    for (seq, ts, events) in the_seats_day() {
        if seq == 6 {
            // The seat's running view: its presale and its book purchase, totalled.
            let view = found(clearing.statement(&id(S1), day()));
            assert_eq!(view.view_of, Some(id(B1)));
            assert_eq!((view.total_bought, view.fees, view.net), (d("76.50"), d("1.54"), d("-78.04")));
        }
        clearing.apply(seq, ts, &events);
    }
    assert_eq!(clearing.firm_of(&id(S1)), Some(id(B1)));
    // B1 carries all three purchases, the seat's lines naming it; bought 143.00, fees 5.04.
    let b1 = found(clearing.statement(&id(B1), day()));
    assert_eq!(
        b1.lines.iter().map(|l| (l.kind, l.reference, l.side, l.amount, l.fee, l.seat)).collect::<Vec<_>>(),
        vec![
            (TradeKind::Presale, 1, Side::Buy, d("31.50"), d("1.50"), Some(id(S1))),
            (TradeKind::Clock, 1, Side::Buy, d("66.50"), d("3.50"), None),
            (TradeKind::Book, 1, Side::Buy, d("45.00"), d("0.04"), Some(id(S1))),
        ]
    );
    assert_eq!((b1.total_bought, b1.fees, b1.corrections, b1.net), (d("143.00"), d("5.04"), d("0"), d("-148.04")));
    assert_eq!(b1.view_of, None);
    // The seat's view of the settled day: its two lines, 76.50 + 1.54.
    let s1 = found(clearing.statement(&id(S1), day()));
    assert_eq!(s1, b1.seat_view(id(S1)));
    assert_eq!((s1.participant, s1.lines.len(), s1.net), (id(S1), 2, d("-78.04")));
    // G1 sold 98.00 less 4.90 commission; G2 45.00 less 2.25.
    let g1 = found(clearing.statement(&id(G1), day()));
    let g2 = found(clearing.statement(&id(G2), day()));
    assert_eq!(g1.lines[0].kind, TradeKind::Presale);
    assert_eq!((g1.net, g2.net), (d("93.10"), d("42.75")));

    let settled = clearing.take_settled_day().unwrap();
    // Conservation over firms: −148.04 + 93.10 + 42.75 + 12.19 = 0; the seat is in no sum.
    let ids: Vec<Code> = settled.statements.iter().map(|s| s.participant).collect();
    assert_eq!(ids, vec![id(B1), id(G1), id(G2)]);
    assert_eq!(settled.summary.participants, 3);
    assert_eq!(settled.summary.fees, d("12.19"));
    assert!((settled.statements.iter().map(|s| s.net).sum::<Decimal>() + settled.summary.fees).is_zero());
    assert_eq!(settled.seats, vec![(id(S1), id(B1))]);
    // The trades name the firm as buyer and the seat beside it; the lot was presold in part.
    assert_eq!(
        settled.trades.iter().map(|t| (t.kind, t.buyer, t.seat, t.presale_no)).collect::<Vec<_>>(),
        vec![
            (TradeKind::Presale, id(B1), Some(id(S1)), Some(1)),
            (TradeKind::Clock, id(B1), None, None),
            (TradeKind::Book, id(B1), Some(id(S1)), None),
        ]
    );
    assert_eq!((settled.lots[0].sold, settled.lots[0].presold, settled.lots[0].open), (10, 3, 0));
    // One cell, ROSE A1: the presale, the award and the book trade; VWAP 143.00 / 200 = 0.715 → 0.72.
    let cell = &settled.market.cells[0];
    assert_eq!((settled.market.cells.len(), cell.trades, cell.units), (1, 3, 200));
    assert_eq!((cell.turnover, cell.vwap), (d("143.00"), Some(d("0.72"))));
}
