//! The SFCI against hand-made trading days: values worked out by hand (in the comments), by a
//! second, deliberately plain implementation in this file, and by clearing — all three must agree
//! to the fen.
//!
//! Cells (amount, units) per day; cut flowers ROSE, LILY, TULIP; potted PHALAENOPSIS; foliage
//! EUCALYPTUS:
//!
//! | day | ROSE A1 | LILY A1 | TULIP A1 | PHALAENOPSIS A1 | EUCALYPTUS A1 | EUCALYPTUS B1 |
//! |---|---|---|---|---|---|---|
//! | 1 | 100@1.00 + 100@1.20 | 50@2.00 | | | 10@3.00 | |
//! | 2 | 100@1.32 | 40@2.10 + 10@2.40 | 100@0.80 | | | 20@1.50 |
//! | 3 | 100@1.21 | | 100@0.88 | 2@30.00 | 10@3.30 | 20@1.65 |
//! | 4 | 100@1.21 | | | | | |
//! | 5 | | | | | 10@3.63 | 20@1.65 |

use huashi_clearing::{Clearing, ClearingConfig, IndexCode, MarketData};
use huashi_engine::command::Roles;
use huashi_engine::core::catalogue::Grade;
use huashi_engine::core::fees::FeeSchedule;
use huashi_engine::core::lots::{Lot, LotStatus};
use huashi_engine::event::{Award, Event, Trade};
use huashi_engine::types::{ClockId, Code, Day, EngineTime, Fen, LotId, OrderId, Pk, Side, TradeId};
use rust_decimal::{Decimal, RoundingStrategy};
use std::collections::BTreeMap;
use std::str::FromStr;

const BUYER: Pk = Pk(0);
const GROWER: Pk = Pk(1);

/// One sale: product, grade, units, price in fen.
type Sale = (&'static str, Grade, u64, i64);

fn days() -> Vec<Vec<Sale>> {
    const A1: Grade = Grade::A1;
    const B1: Grade = Grade::B1;
    vec![
        vec![("ROSE", A1, 100, 100), ("ROSE", A1, 100, 120), ("LILY", A1, 50, 200), ("EUCALYPTUS", A1, 10, 300)],
        vec![
            ("ROSE", A1, 100, 132),
            ("LILY", A1, 40, 210),
            ("LILY", A1, 10, 240),
            ("TULIP", A1, 100, 80),
            ("EUCALYPTUS", B1, 20, 150),
        ],
        vec![
            ("ROSE", A1, 100, 121),
            ("TULIP", A1, 100, 88),
            ("PHALAENOPSIS", A1, 2, 3_000),
            ("EUCALYPTUS", A1, 10, 330),
            ("EUCALYPTUS", B1, 20, 165),
        ],
        vec![("ROSE", A1, 100, 121)],
        vec![("EUCALYPTUS", A1, 10, 363), ("EUCALYPTUS", B1, 20, 165)],
    ]
}

fn d(text: &str) -> Decimal {
    Decimal::from_str(text).unwrap()
}

const FIRST_DAY: Day = Day(20_786);

fn code(text: &str) -> Code {
    Code::parse(text, 36).unwrap()
}

/// The events of a day's sales: ROSE and LILY A1 trade on the book (ROSE-A, LILY-A), the rest at
/// the clock, one lot per sale of exactly the units sold.
struct Feed {
    clearing: Clearing,
    seq: u64,
    next_lot: u64,
    next_trade: u64,
    published: Vec<(u32, MarketData)>,
}

impl Feed {
    fn new() -> Feed {
        let mut feed = Feed {
            clearing: Clearing::new(ClearingConfig::default(), FIRST_DAY),
            seq: 0,
            next_lot: 1,
            next_trade: 1,
            published: Vec::new(),
        };
        let events = [(BUYER, "BUYER", false, true), (GROWER, "GROWER", true, false)]
            .into_iter()
            .map(|(pk, id, grower, buyer)| Event::ParticipantRegistered {
                pk,
                id: code(id),
                name: id.to_string(),
                roles: Roles { operator: false, grower, buyer, logistics: false },
                credit_limit: Fen(1 << 40),
                token_hash: [0; 32],
                firm: None,
                daily_limit: None,
            })
            .collect::<Vec<_>>();
        feed.apply(0, EngineTime(1), events);
        feed
    }

    fn apply(&mut self, day: u32, ts: EngineTime, events: Vec<Event>) {
        self.seq += 1;
        for data in self.clearing.apply(self.seq, ts, &events) {
            self.published.push((day, data));
        }
    }

    fn sale(&mut self, day_no: u32, day: Day, ts: EngineTime, (product, grade, units, price): Sale) {
        let fees = FeeSchedule::default();
        let amount = Fen(price * units as i64);
        let book = grade == Grade::A1 && (product == "ROSE" || product == "LILY");
        let events = if book {
            let trade_id = TradeId(self.next_trade);
            self.next_trade += 1;
            vec![Event::Traded(Trade {
                trade_id,
                symbol: code(&format!("{product}-A")),
                product: code(product),
                price: Fen(price),
                quantity: units,
                amount,
                aggressor: Side::Buy,
                buyer: BUYER,
                buyer_id: code("BUYER"),
                buyer_order: OrderId(1),
                seller: GROWER,
                seller_id: code("GROWER"),
                seller_order: OrderId(2),
                fee: fees.book_fee(amount),
                commission: fees.commission(amount),
                ts,
            })]
        } else {
            let id = LotId(self.next_lot);
            self.next_lot += 1;
            let lot = Lot {
                id,
                grower: GROWER,
                grower_id: code("GROWER"),
                product: code(product),
                grade,
                units_per_container: units as u32,
                containers: 1,
                remaining: 1,
                sold: 0,
                unsold: 0,
                min_purchase: 1,
                min_price: Fen(1),
                origin: String::new(),
                photo_url: String::new(),
                note: String::new(),
                status: LotStatus::Consigned,
                day,
                clock: None,
                start_price: None,
                master: Default::default(),
                position: None,
                presale: None,
                presales: 0,
                sales: Default::default(),
                rounds: 0,
                qi: None,
            };
            let award = Award {
                clock: ClockId(1),
                lot: id,
                round: 1,
                buyer: BUYER,
                buyer_id: code("BUYER"),
                grower: GROWER,
                grower_id: code("GROWER"),
                product: code(product),
                grade,
                price: Fen(price),
                containers: 1,
                units,
                amount,
                fee: fees.clock_fee(1),
                commission: fees.commission(amount),
                remaining: 0,
                ts,
                standing: false,
            };
            vec![Event::LotConsigned { lot: Box::new(lot) }, Event::Awarded(Box::new(award))]
        };
        self.apply(day_no, ts, events);
    }

    /// Runs every day, sales two seconds apart, and settles each.
    fn run(days: &[Vec<Sale>]) -> Feed {
        let mut feed = Feed::new();
        for (n, sales) in days.iter().enumerate() {
            let day = Day(FIRST_DAY.0 + n as i32);
            let morning = EngineTime((day.0 as u64 * 86_400 - 2 * 3_600) * 1_000_000);
            for (k, sale) in sales.iter().enumerate() {
                feed.sale(n as u32 + 1, day, morning.plus_ms(2_000 * k as u64), *sale);
            }
            let totals = sales.iter().fold((0, 0), |(count, turnover), s| (count + 1, turnover + s.2 as i64 * s.3));
            let fees: i64 = sales
                .iter()
                .map(|&(product, grade, units, price)| {
                    let schedule = FeeSchedule::default();
                    let amount = Fen(price * units as i64);
                    let book = grade == Grade::A1 && (product == "ROSE" || product == "LILY");
                    let fee = if book { schedule.book_fee(amount) } else { schedule.clock_fee(1) };
                    fee.0 + schedule.commission(amount).0
                })
                .sum();
            let settled = Event::DaySettled {
                day,
                next_day: day.next(),
                trades: totals.0,
                turnover: Fen(totals.1),
                fees: Fen(fees),
            };
            feed.apply(n as u32 + 1, morning.plus_ms(3_600_000), vec![settled]);
            feed.clearing.take_settled_day().expect("settled");
        }
        feed
    }

    /// The closes published on day `n`, by index code.
    fn closes(&self, n: u32) -> BTreeMap<&'static str, String> {
        self.published
            .iter()
            .filter_map(|(day, data)| match data {
                MarketData::Index(v) if *day == n && v.is_final => Some((v.code.as_str(), v.value.to_string())),
                _ => None,
            })
            .collect()
    }
}

/// A cell of the second implementation: name, amount (fen), units.
type PlainCell = (String, f64, f64);

/// The second implementation: the protocol's formula written out plainly over the raw sales.
fn reference_closes(days: &[Vec<Sale>]) -> Vec<BTreeMap<&'static str, String>> {
    fn category(product: &str) -> &'static str {
        match product {
            "PHALAENOPSIS" | "ANTHURIUM" => "pot",
            "EUCALYPTUS" => "fol",
            _ => "cut",
        }
    }
    let indices: [(&str, Option<&str>); 4] =
        [("SFCI", None), ("SFCI-CUT", Some("cut")), ("SFCI-POT", Some("pot")), ("SFCI-FOL", Some("fol"))];
    // Per index: its last close and its previous trading day's cells.
    let mut state: Vec<(Option<f64>, Vec<PlainCell>)> = vec![(None, Vec::new()); 4];
    let mut out = Vec::new();
    for sales in days {
        let mut row = BTreeMap::new();
        for (i, (name, cat)) in indices.iter().enumerate() {
            // This index's cells today: (cell, amount, units).
            let mut today: Vec<PlainCell> = Vec::new();
            for &(product, grade, units, price) in sales {
                if cat.is_some_and(|c| c != category(product)) {
                    continue;
                }
                let cell = format!("{product}/{}", grade.as_str());
                let amount = (price * units as i64) as f64;
                match today.iter_mut().find(|c| c.0 == cell) {
                    Some(c) => {
                        c.1 += amount;
                        c.2 += units as f64;
                    }
                    None => today.push((cell, amount, units as f64)),
                }
            }
            let (close, previous) = &mut state[i];
            let value = match *close {
                None if today.is_empty() => None,
                None => Some(1000.0),
                Some(last) => {
                    let both: Vec<(&PlainCell, &PlainCell)> =
                        today.iter().filter_map(|t| previous.iter().find(|p| p.0 == t.0).map(|p| (p, t))).collect();
                    if both.is_empty() {
                        Some(last)
                    } else {
                        let sum_before: f64 = both.iter().map(|(p, _)| p.1).sum();
                        let sum_now: f64 = both.iter().map(|(_, t)| t.1).sum();
                        let mut log = 0.0;
                        for (p, t) in &both {
                            let w = 0.5 * (p.1 / sum_before + t.1 / sum_now);
                            log += w * ((t.1 / t.2) / (p.1 / p.2)).ln();
                        }
                        Some(last * log.exp())
                    }
                }
            };
            // Each close rounds half-even to 0.01, and the next day chains on the rounded close.
            let rounded = value.map(|v| {
                Decimal::from_f64_retain(v).unwrap().round_dp_with_strategy(2, RoundingStrategy::MidpointNearestEven)
            });
            if let Some(r) = rounded {
                *close = Some(r.to_string().parse().unwrap());
                row.insert(*name, format!("{r:.2}"));
            }
            if !today.is_empty() {
                *previous = today;
            }
        }
        out.push(row);
    }
    out
}

fn row(values: &[(&'static str, &str)]) -> BTreeMap<&'static str, String> {
    values.iter().map(|(k, v)| (*k, v.to_string())).collect()
}

#[test]
fn the_index_matches_the_hand_figures_and_a_second_implementation() {
    // Day 1: the base of SFCI, SFCI-CUT and SFCI-FOL; no potted plant traded, no SFCI-POT.
    //
    // Day 2, SFCI and SFCI-CUT alike (the overlap is ROSE A1 and LILY A1; TULIP and EUCALYPTUS
    // B1 are new, EUCALYPTUS A1 did not trade):
    //   ROSE A1: p 1.10 → 1.32 (× 1.2), shares 220/320 = 0.6875 and 132/240 = 0.55, w = 0.61875
    //   LILY A1: p 2.00 → 2.16 (× 1.08), shares 0.3125 and 0.45, w = 0.38125
    //   Σ w ln = 0.61875 × 0.1823216 + 0.38125 × 0.0769610 = 0.1421529; exp = 1.1527528 → 1152.75
    // SFCI-FOL: its only cell today (EUCALYPTUS B1) did not trade on day 1: no overlap, 1000.00.
    //
    // Day 3, SFCI (overlap with day 2: ROSE A1, TULIP A1, EUCALYPTUS B1; 242.00 both days):
    //   ROSE 1.32 → 1.21 (× 0.916667), w = (132/242 + 121/242)/2 = 0.522727
    //   TULIP 0.80 → 0.88 (× 1.1),      w = (80/242 + 88/242)/2  = 0.347107
    //   EUC B1 1.50 → 1.65 (× 1.1),     w = (30/242 + 33/242)/2  = 0.130165
    //   Σ w ln = −0.0454831 + 0.0330829 + 0.0124060 = 0.0000057; 1152.75 × 1.0000057 = 1152.7566 → 1152.76
    // SFCI-CUT: ROSE w = (132/212 + 121/209)/2 = 0.600794, TULIP 0.399206:
    //   Σ w ln = −0.0522750 + 0.0380492 = −0.0142276; 1152.75 × 0.9858731 = 1136.4652 → 1136.47
    // SFCI-POT: PHALAENOPSIS trades for the first time: its base, 1000.00.
    // SFCI-FOL: compared with day 2, its previous trading day: EUCALYPTUS B1 × 1.1 → 1100.00
    //   (EUCALYPTUS A1 traded on day 1, not day 2, so it is not in the overlap).
    //
    // Day 4: only ROSE A1, at day 3's price: SFCI and SFCI-CUT unchanged; POT and FOL have no cells
    // and carry their closes.
    //
    // Day 5: only EUCALYPTUS. SFCI's previous trading day is day 4 (ROSE only): no overlap, it
    // carries 1152.76. SFCI-FOL's previous trading day is day 3: A1 3.30 → 3.63 (× 1.1),
    // w = (33/66 + 36.30/69.30)/2 = 0.5119048; B1 unchanged; Σ w ln = 0.0487897;
    // 1100.00 × 1.0499995 = 1154.9995 → 1155.00.
    let expected = vec![
        row(&[("SFCI", "1000.00"), ("SFCI-CUT", "1000.00"), ("SFCI-FOL", "1000.00")]),
        row(&[("SFCI", "1152.75"), ("SFCI-CUT", "1152.75"), ("SFCI-FOL", "1000.00")]),
        row(&[("SFCI", "1152.76"), ("SFCI-CUT", "1136.47"), ("SFCI-POT", "1000.00"), ("SFCI-FOL", "1100.00")]),
        row(&[("SFCI", "1152.76"), ("SFCI-CUT", "1136.47"), ("SFCI-POT", "1000.00"), ("SFCI-FOL", "1100.00")]),
        row(&[("SFCI", "1152.76"), ("SFCI-CUT", "1136.47"), ("SFCI-POT", "1000.00"), ("SFCI-FOL", "1155.00")]),
    ];
    let days = days();
    assert_eq!(reference_closes(&days), expected, "the second implementation disagrees with the hand figures");

    let feed = Feed::run(&days);
    for (n, expected) in expected.iter().enumerate() {
        assert_eq!(&feed.closes(n as u32 + 1), expected, "closes of day {}", n + 1);
    }
    // The history has a row per settled day with the same closes.
    let history = feed.clearing.index_history();
    assert_eq!(history.len(), 5);
    for (row, expected) in history.iter().zip(&expected) {
        let values: BTreeMap<&'static str, String> =
            row.values.iter().map(|(c, v)| (c.as_str(), v.to_string())).collect();
        assert_eq!(&values, expected);
    }
    assert_eq!(history[2].day, Day(FIRST_DAY.0 + 2));
}

#[test]
fn a_sub_index_is_not_published_before_its_base_day() {
    let feed = Feed::run(&days());
    let pot: Vec<u32> = feed
        .published
        .iter()
        .filter_map(|(day, data)| match data {
            MarketData::Index(v) if v.code == IndexCode::SfciPot => Some(*day),
            _ => None,
        })
        .collect();
    assert!(!pot.is_empty());
    assert!(pot.iter().all(|day| *day >= 3), "SFCI-POT published on day {pot:?}");
}

#[test]
fn a_cell_traded_at_one_price_has_that_price_as_vwap() {
    let feed = Feed::run(&days()[..3]);
    let stats = feed
        .published
        .iter()
        .rev()
        .find_map(|(_, data)| match data {
            MarketData::Stats(s) if s.product.as_str() == "PHALAENOPSIS" => Some(s.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        (stats.vwap, stats.open, stats.last, stats.trades),
        (Some(d("30.00")), Some(d("30.00")), Some(d("30.00")), 1)
    );
}

#[test]
fn intraday_values_move_with_the_trades_at_most_once_a_second() {
    let mut feed = Feed::run(&days()[..1]);
    let day = Day(FIRST_DAY.0 + 1);
    let t0 = EngineTime((day.0 as u64 * 86_400 - 2 * 3_600) * 1_000_000);
    // ROSE A1 at 1.32 against day 1's 1.10: with only ROSE in the overlap so far, × 1.2 → 1200.00,
    // published at once (nothing was published in the last second).
    feed.sale(2, day, t0, ("ROSE", Grade::A1, 100, 132));
    // LILY 0.3 s later: held back (SFCI and SFCI-CUT went out less than a second ago) ...
    feed.sale(2, day, t0.plus_ms(300), ("LILY", Grade::A1, 40, 210));
    let intraday = |feed: &Feed| -> Vec<(IndexCode, String, u64)> {
        feed.published
            .iter()
            .filter_map(|(n, data)| match data {
                MarketData::Index(v) if *n == 2 && !v.is_final => Some((v.code, v.value.to_string(), v.ts.0 - t0.0)),
                _ => None,
            })
            .collect()
    };
    assert_eq!(
        intraday(&feed),
        vec![(IndexCode::Sfci, "1200.00".to_string(), 0), (IndexCode::SfciCut, "1200.00".to_string(), 0)]
    );
    assert_eq!(feed.clearing.next_publish_due(), Some(t0.plus_ms(1_000)));
    // ... until a second has passed: then the value with both cells goes out.
    // ROSE 1.32/1.10, LILY 2.10/2.00; shares day 1 220/320, 100/320; today 132/216, 84/216:
    // w = 0.649306, 0.350694; Σ w ln = 0.118382 + 0.017110 = 0.135492 → 1145.10.
    // The engine journals a tick then (the core's market data falls due): an output with no
    // events, which is all clearing needs to publish what it held back.
    let before = feed.published.len();
    feed.apply(2, t0.plus_ms(1_000), Vec::new());
    let values: Vec<(IndexCode, String)> = feed.published[before..]
        .iter()
        .filter_map(|(_, m)| match m {
            MarketData::Index(v) => Some((v.code, v.value.to_string())),
            _ => None,
        })
        .collect();
    assert_eq!(values, vec![(IndexCode::Sfci, "1145.10".to_string()), (IndexCode::SfciCut, "1145.10".to_string())]);
    // The API's latest values are the same, and the intraday series has both points.
    let snapshot = feed.clearing.index_latest();
    let latest: Vec<(IndexCode, String, bool)> =
        snapshot.latest.iter().map(|v| (v.code, v.value.to_string(), v.is_final)).collect();
    assert_eq!(
        latest,
        vec![
            (IndexCode::Sfci, "1145.10".into(), false),
            (IndexCode::SfciCut, "1145.10".into(), false),
            (IndexCode::SfciFol, "1000.00".into(), true),
        ]
    );
    assert_eq!(snapshot.intraday.len(), 2, "one point per index per minute: the later replaced the earlier");
}
