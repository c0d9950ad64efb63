//! Fees as market state, end to end (issue 11's fee promise; protocol §4 and §8, v1.1):
//! - the reproduction that used to brick a restart: clock and book sales, `kill -9` before any
//!   snapshot, a restart with a different `[fees]` in the config: the server comes up, warns that
//!   the fees stand (naming `set_fees`), and every statement still charges the fees that applied;
//! - `set_fees` changes the next trading day's fees only: the same day still charges the old ones,
//!   `end_of_day` puts the new ones in force, they survive `kill -9`, each day's statements, CSVs
//!   (`fees.csv`) and `fee_schedule` carry that day's fees, money is conserved on both days and
//!   the replays agree;
//! - bad `set_fees` input is refused, naming the field, and changes nothing; the config seeds the
//!   fees of a new data directory.
//!
//! Every fee is recomputed here from the private reports with the test's own half-even
//! arithmetic, so a fee charged with the wrong schedule shows as a wrong fen.

use huashi_tests::ledger::{check_statement_shape, get_statement, Line};
use huashi_tests::*;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const CLOCK_T: Duration = Duration::from_secs(30);

/// A fee schedule as the test holds it: rates as percent fractions (numerator, denominator), the
/// clock fee in fen, and how the server must render it on the wire and in `fees.csv`.
#[derive(Clone, Copy, Debug)]
struct Fees {
    commission: (i64, i64),
    clock_fee: i64,
    book_fee: (i64, i64),
    /// `commission_pct`, `clock_fee_per_container`, `book_fee_pct` on the wire (at least 2 decimals).
    wire: [&'static str; 3],
    /// The same in `fees.csv` (percentages normalized).
    csv: [&'static str; 3],
}

/// The genesis fees when the config sets none (protocol §8).
const DEFAULT_FEES: Fees = Fees {
    commission: (5, 1),
    clock_fee: 50,
    book_fee: (1, 10),
    wire: ["5.00", "0.50", "0.10"],
    csv: ["5", "0.50", "0.1"],
};
/// What the operator sets for day 2.
const NEW_FEES: Fees = Fees {
    commission: (7, 1),
    clock_fee: 80,
    book_fee: (2, 10),
    wire: ["7.00", "0.80", "0.20"],
    csv: ["7", "0.80", "0.2"],
};

impl Fees {
    fn commission(&self, amount: i64) -> i64 {
        percent_half_even(amount, self.commission.0, self.commission.1)
    }
    fn book_fee(&self, amount: i64) -> i64 {
        percent_half_even(amount, self.book_fee.0, self.book_fee.1)
    }
    fn clock_fee(&self, containers: u64) -> i64 {
        self.clock_fee * containers as i64
    }
    /// The schedule as `fee_schedule`, `fees_set` and `fees.current` show it.
    fn wire(&self) -> Value {
        json!({"commission_pct": self.wire[0], "clock_fee_per_container": self.wire[1], "book_fee_pct": self.wire[2]})
    }
    fn csv_row(&self, day: &str) -> String {
        format!("{day},{},{},{}", self.csv[0], self.csv[1], self.csv[2])
    }
}

/// The expected statement lines of one day, by participant, worked out from the private reports
/// with the fees the test knows applied.
#[derive(Default)]
struct Books {
    lines: BTreeMap<String, Vec<Line>>,
}

impl Books {
    fn push(&mut self, who: &str, line: Line) {
        self.lines.entry(who.to_string()).or_default().push(line);
    }

    /// A clock sale: the buyer's `award` and the grower's `lot_sale`, each fee checked.
    fn clock(&mut self, fees: &Fees, sale: &ClockSale) {
        let (award, lot_sale) = (&sale.award, &sale.lot_sale);
        check_fields(award, "award", AWARD_FIELDS);
        check_fields(lot_sale, "lot_sale", LOT_SALE_FIELDS);
        let price = fen(&award["price"]);
        let containers = award["containers"].as_u64().unwrap();
        let units = containers * sale.units_per_container;
        let amount = price * units as i64;
        assert_eq!(award["units"], units, "{award}");
        assert_eq!(fen(&award["amount"]), amount, "award.amount = price × units: {award}");
        assert_eq!(fen(&award["fee"]), fees.clock_fee(containers), "award.fee with {fees:?}: {award}");
        assert_eq!(fen(&lot_sale["amount"]), amount, "{lot_sale}");
        assert_eq!(lot_sale["buyer"], sale.buyer.as_str(), "{lot_sale}");
        assert_eq!(
            fen(&lot_sale["commission"]),
            fees.commission(amount),
            "lot_sale.commission with {fees:?}: {lot_sale}"
        );
        let line = |side: &str, fee: i64| Line {
            kind: "clock".into(),
            reference: sale.lot_id,
            product: sale.product.clone(),
            grade: "A1".into(),
            side: side.into(),
            price,
            units,
            amount,
            fee,
            seat: None,
        };
        self.push(&sale.buyer, line("buy", fees.clock_fee(containers)));
        self.push(&sale.grower, line("sell", fees.commission(amount)));
    }

    /// A book trade on ROSE-A (grade A1): both sides' `fill`s.
    fn book(&mut self, fees: &Fees, trade: &BookTrade) {
        for (who, fill) in [(&trade.grower, &trade.sell_fill), (&trade.buyer, &trade.buy_fill)] {
            check_fields(fill, "fill", FILL_FIELDS);
            assert_eq!(fill["trade_id"], trade.buy_fill["trade_id"], "both fills are one trade: {fill}");
            let side = fill["side"].as_str().unwrap().to_string();
            let price = fen(&fill["price"]);
            let units = fill["quantity"].as_u64().unwrap();
            let amount = price * units as i64;
            let fee = if side == "buy" { fees.book_fee(amount) } else { fees.commission(amount) };
            self.push(
                who,
                Line {
                    kind: "book".into(),
                    reference: fill["trade_id"].as_u64().expect("trade_id is an integer"),
                    product: "ROSE".into(),
                    grade: "A1".into(),
                    side,
                    price,
                    units,
                    amount,
                    fee,
                    seat: None,
                },
            );
        }
    }

    fn lines_of(&self, who: &str) -> Vec<Line> {
        let mut lines = self.lines.get(who).cloned().unwrap_or_default();
        lines.sort();
        lines
    }

    /// (bought, fees, sold, commission) of `who`, in fen.
    fn totals_of(&self, who: &str) -> [i64; 4] {
        let lines = self.lines_of(who);
        let sum = |side: &str, f: fn(&Line) -> i64| -> i64 { lines.iter().filter(|l| l.side == side).map(f).sum() };
        [sum("buy", |l| l.amount), sum("buy", |l| l.fee), sum("sell", |l| l.amount), sum("sell", |l| l.fee)]
    }

    fn market_fees(&self) -> i64 {
        self.lines.values().flatten().map(|l| l.fee).sum()
    }

    fn turnover(&self) -> i64 {
        self.lines.values().flatten().filter(|l| l.side == "buy").map(|l| l.amount).sum()
    }

    fn trades(&self) -> u64 {
        self.lines.values().flatten().filter(|l| l.side == "buy").count() as u64
    }

    /// Holds a `statement` against the books: lines, totals, net and the day's `fee_schedule`;
    /// returns the net in fen.
    fn check_statement(&self, who: &str, day: &str, fees: &Fees, statement: &Value) -> i64 {
        check_statement_shape(statement);
        assert_eq!(
            (statement["participant"].as_str(), statement["day"].as_str()),
            (Some(who), Some(day)),
            "{statement}"
        );
        assert_eq!(statement["fee_schedule"], fees.wire(), "{who}'s statement of {day}: the fees that applied");
        let mut got: Vec<Line> = statement["lines"].as_array().unwrap().iter().map(Line::from_wire).collect();
        got.sort();
        assert_eq!(got, self.lines_of(who), "{who}'s statement of {day} (left: server, right: the test's books)");
        let [bought, buyer_fees, sold, commission] = self.totals_of(who);
        assert_eq!(fen(&statement["total_bought"]), bought, "{statement}");
        assert_eq!(fen(&statement["fees"]), buyer_fees, "{statement}");
        assert_eq!(fen(&statement["total_sold"]), sold, "{statement}");
        assert_eq!(fen(&statement["commission"]), commission, "{statement}");
        let net = sold - commission - bought - buyer_fees;
        assert_eq!(fen(&statement["net"]), net, "net = total_sold − commission − total_bought − fees: {statement}");
        net
    }

    /// Checks `day_settled` and every participant's statement (own session), and that money is
    /// conserved: Σ net + the market's fee income = 0.
    async fn check_day(&self, desk: &mut Desk, day: &str, fees: &Fees, settled: &Value) {
        assert_eq!(settled["day"], day, "{settled}");
        assert_eq!(settled["trades"], self.trades(), "{settled}");
        assert_eq!(fen(&settled["turnover"]), self.turnover(), "{settled}");
        assert_eq!(fen(&settled["fees"]), self.market_fees(), "day_settled.fees with {fees:?}: {settled}");
        let mut nets = 0;
        for who in ["g1", "b1"] {
            let statement = get_statement(desk.of(who), day, None).await;
            nets += self.check_statement(who, day, fees, &statement);
        }
        assert_eq!(nets + fen(&settled["fees"]), 0, "Σ net + the market's fees = 0 on {day}");
    }
}

struct ClockSale {
    lot_id: u64,
    product: String,
    units_per_container: u64,
    grower: String,
    buyer: String,
    award: Value,
    lot_sale: Value,
}

struct BookTrade {
    grower: String,
    buyer: String,
    sell_fill: Value,
    buy_fill: Value,
}

/// The next client order id's number.
static NEXT_COID: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);

/// The operator, the feed, one grower (g1) and one buyer (b1).
struct Desk {
    op: Client,
    feed: Feed,
    grower: Client,
    buyer: Client,
}

impl Desk {
    async fn open(server: &Server, tokens: &(String, String)) -> Desk {
        Desk {
            op: server.operator().await,
            feed: server.feed().await,
            grower: server.session(&tokens.0).await,
            buyer: server.session(&tokens.1).await,
        }
    }

    fn of(&mut self, who: &str) -> &mut Client {
        match who {
            "g1" => &mut self.grower,
            "b1" => &mut self.buyer,
            _ => &mut self.op,
        }
    }

    /// Sells a whole lot at exactly `price` per unit, by a standing bid; returns both reports.
    async fn clock_sale(&mut self, product: &str, units_per_container: u64, containers: u64, price: &str) -> ClockSale {
        let lot = consign(&mut self.grower, lot_msg(product, "A1", units_per_container, containers, "0.10")).await;
        let lot_id = lot["lot_id"].as_u64().unwrap();
        let bid = json!({"type": "standing_bid", "lot_id": lot_id, "max_price": price, "containers": containers});
        let r = self.buyer.request(bid).await;
        assert_eq!(r["type"], "standing_bid_accepted", "{r}");
        let start = money(fen(&json!(price)) + 20);
        let r =
            self.op.request(json!({"type": "assign_lot", "lot_id": lot_id, "clock": 1, "start_price": start})).await;
        assert_eq!(r["type"], "lot_assigned", "{r}");
        let r = self.op.request(json!({"type": "start_clock", "clock": 1})).await;
        assert_eq!(r["type"], "clock_state", "{r}");
        let award = self
            .buyer
            .next_matching(|v| v["type"] == "award" && v["lot_id"] == lot_id, CLOCK_T)
            .await
            .unwrap_or_else(|e| panic!("no award for lot {lot_id}: {e}"));
        assert_eq!((award["price"].as_str(), award["containers"].as_u64()), (Some(price), Some(containers)), "{award}");
        let lot_sale = self
            .grower
            .next_matching(|v| v["type"] == "lot_sale" && v["lot_id"] == lot_id, CLOCK_T)
            .await
            .unwrap_or_else(|e| panic!("no lot_sale for lot {lot_id}: {e}"));
        self.feed
            .next_matching(|v| v["type"] == "clock_state" && v["clock"] == 1 && v["state"] == "idle", CLOCK_T)
            .await
            .expect("the clock goes idle after its only lot");
        ClockSale {
            lot_id,
            product: product.into(),
            units_per_container,
            grower: "g1".into(),
            buyer: "b1".into(),
            award,
            lot_sale,
        }
    }

    /// One trade of `quantity` at `price` on ROSE-A: the grower rests, the buyer takes.
    async fn book_trade(&mut self, price: &str, quantity: u64) -> BookTrade {
        let r = self.op.request(json!({"type": "set_book_state", "symbol": "ROSE-A", "state": "open"})).await;
        assert_eq!(r["type"], "book_state", "{r}");
        // Unique across desks: a restart brings a new desk, but the day remembers its ids.
        let n = NEXT_COID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (sell, buy) = (format!("s{n}"), format!("b{n}"));
        for (c, coid, side, tif) in [(&mut self.grower, &sell, "sell", "gtc"), (&mut self.buyer, &buy, "buy", "ioc")] {
            let r = c
                .request(json!({"type": "new_order", "client_order_id": coid, "symbol": "ROSE-A", "side": side,
                                "order_type": "limit", "price": price, "quantity": quantity, "time_in_force": tif}))
                .await;
            assert_eq!(r["type"], "order_accepted", "{r}");
        }
        let fill_of = |coid: String| move |v: &Value| v["type"] == "fill" && v["client_order_id"] == coid.as_str();
        let buy_fill = self.buyer.next_matching(fill_of(buy.clone()), REPLY_TIMEOUT).await.unwrap();
        let sell_fill = self.grower.next_matching(fill_of(sell.clone()), REPLY_TIMEOUT).await.unwrap();
        for (fill, who) in [(&buy_fill, "buyer"), (&sell_fill, "grower")] {
            assert_eq!(
                (fill["quantity"].as_u64(), fill["leaves"].as_u64()),
                (Some(quantity), Some(0)),
                "{who}: {fill}"
            );
        }
        let r = self.op.request(json!({"type": "set_book_state", "symbol": "ROSE-A", "state": "closed"})).await;
        assert_eq!(r["type"], "book_state", "{r}");
        BookTrade { grower: "g1".into(), buyer: "b1".into(), sell_fill, buy_fill }
    }

    async fn end_of_day(&mut self) -> Value {
        let settled = self.op.request(json!({"type": "end_of_day"})).await;
        check_fields(
            &settled,
            "day_settled",
            &[
                ("day", Kind::Day),
                ("next_day", Kind::Day),
                ("trades", Kind::Int),
                ("turnover", Kind::Money),
                ("fees", Kind::Money),
            ],
        );
        settled
    }
}

/// A new market with one fast clock, g1 (grower) and b1 (buyer); returns their tokens.
async fn set_up(server: &Server) -> (String, String) {
    let mut op = server.operator().await;
    configure_fast_clock(&mut op, 1).await;
    (register(&mut op, "g1", &["grower"], None).await, register(&mut op, "b1", &["buyer"], Some("5000.00")).await)
}

/// `get_fees` over `c`, its shape checked.
async fn get_fees(c: &mut Client) -> Value {
    let reply = c.request(json!({"type": "get_fees"})).await;
    check_fields(&reply, "fees", &[("current", Kind::Obj), ("next", Kind::Any)]);
    reply
}

/// `fees.current` or `fees.next`: the schedule and the day it is in force.
fn dated(fees: &Fees, day: &str) -> Value {
    let mut v = fees.wire();
    v["day"] = json!(day);
    v
}

/// Files (not directories) under `dir`, recursively; none if it does not exist.
fn files_under(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path.display().to_string());
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_different_fees_config_after_kill_9_restarts_and_charges_the_fees_that_applied() {
    let mut server = Server::start(ServerOpts::default().clocks(1));
    let day = server.day.clone();
    let tokens = set_up(&server).await;
    let mut d = Desk::open(&server, &tokens).await;
    let mut books = Books::default();

    // The sale of the original report: 200 stems at 1.90 = 380.00, commission 19.00 at 5 %
    // (26.60 had the restart used 7 %); and a book trade (61.50: commission 3.075 → 3.08).
    let sale = d.clock_sale("ROSE", 10, 20, "1.90").await;
    assert_eq!(sale.lot_sale["commission"], "19.00", "{}", sale.lot_sale);
    books.clock(&DEFAULT_FEES, &sale);
    books.book(&DEFAULT_FEES, &d.book_trade("2.05", 30).await);
    drop(d);

    // kill -9 before any clearing snapshot, so that recovery replays clearing from genesis.
    let snapshots = files_under(&server.data_dir.join("clearing-snapshots"));
    assert!(snapshots.is_empty(), "the reproduction needs no clearing snapshot yet: {snapshots:?}");
    assert!(!server.log().contains("set_fees"), "no fee warning before the config changes");
    server.kill9();
    server.opts.config_toml = Some("[fees]\ncommission_pct = \"7\"\n".into());
    // start_again panics unless the server prints its listening line: it must come up.
    server.start_again();
    let log = server.log();
    assert!(
        log.lines().any(|l| l.contains("set_fees") && l.contains("WARN")),
        "a differing [fees] logs a warning naming set_fees:\n{}",
        tail(&log, 3000)
    );

    let mut d = Desk::open(&server, &tokens).await;
    for who in ["g1", "op", "b1"] {
        assert_eq!(
            strip_volatile(&get_fees(d.of(who)).await),
            json!({"type": "fees", "current": dated(&DEFAULT_FEES, &day), "next": null}),
            "{who}: the market's fees stand after a restart with [fees] commission_pct = 7"
        );
    }
    // The running day's statements still charge what applied, to the fen.
    for who in ["g1", "b1"] {
        let statement = get_statement(d.of(who), &day, None).await;
        books.check_statement(who, &day, &DEFAULT_FEES, &statement);
    }
    // A trade after the restart is charged the market's fees too, not the config's.
    books.book(&DEFAULT_FEES, &d.book_trade("2.10", 10).await);
    let settled = d.end_of_day().await;
    books.check_day(&mut d, &day, &DEFAULT_FEES, &settled).await;
    drop(d);
    server.stop_and_check_replays();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_fees_changes_the_next_day_survives_kill_9_and_each_day_keeps_its_own_fees() {
    let mut server = Server::start(ServerOpts::default().clocks(1));
    let day1 = server.day.clone();
    let tokens = set_up(&server).await;
    let mut d = Desk::open(&server, &tokens).await;
    assert_eq!(
        strip_volatile(&get_fees(&mut d.buyer).await),
        json!({"type": "fees", "current": dated(&DEFAULT_FEES, &day1), "next": null}),
        "a new market without [fees] charges the defaults"
    );
    let mut books1 = Books::default();

    // ── Day 1, before set_fees: 61.50 → commission 3.075 → 3.08 (half-even up), fee 3 × 0.50.
    books1.clock(&DEFAULT_FEES, &d.clock_sale("ROSE", 10, 3, "2.05").await);

    // ── set_fees for the next trading day.
    let set =
        json!({"type": "set_fees", "commission_pct": "7", "clock_fee_per_container": "0.80", "book_fee_pct": "0.2"});
    let reply = d.op.request(set).await;
    check_fields(
        &reply,
        "fees_set",
        &[
            ("commission_pct", Kind::Str),
            ("clock_fee_per_container", Kind::Money),
            ("book_fee_pct", Kind::Str),
            ("effective_day", Kind::Day),
        ],
    );
    let day2 = reply["effective_day"].as_str().unwrap().to_string();
    assert!(day2 > day1, "fees set on {day1} take effect on a later day: {reply}");
    let mut want = NEW_FEES.wire();
    want["type"] = json!("fees_set");
    want["effective_day"] = json!(day2);
    assert_eq!(strip_volatile(&reply), want, "fees_set echoes the schedule, percentages with 2 decimals");
    let pending = json!({"type": "fees", "current": dated(&DEFAULT_FEES, &day1), "next": dated(&NEW_FEES, &day2)});
    for who in ["g1", "b1", "op"] {
        assert_eq!(strip_volatile(&get_fees(d.of(who)).await), pending, "{who}: today's fees and the next day's");
    }

    // ── Still day 1: the old fees. LILY 42.10 → commission 2.105 → 2.10 (half-even down); the
    // book's 61.50 → buyer fee 0.0615 → 0.06, commission 3.08.
    books1.clock(&DEFAULT_FEES, &d.clock_sale("LILY", 5, 2, "4.21").await);
    books1.book(&DEFAULT_FEES, &d.book_trade("2.05", 30).await);
    for who in ["g1", "b1"] {
        let running = get_statement(d.of(who), &day1, None).await;
        books1.check_statement(who, &day1, &DEFAULT_FEES, &running);
    }
    let settled1 = d.end_of_day().await;
    assert_eq!(settled1["next_day"], day2.as_str(), "effective_day is the next trading day: {settled1}");
    books1.check_day(&mut d, &day1, &DEFAULT_FEES, &settled1).await;
    drop(d);

    // ── kill -9: the new fees are market state, in force on day 2.
    server.kill9();
    server.start_again();
    let mut d = Desk::open(&server, &tokens).await;
    let in_force = json!({"type": "fees", "current": dated(&NEW_FEES, &day2), "next": null});
    for who in ["g1", "b1", "op"] {
        assert_eq!(strip_volatile(&get_fees(d.of(who)).await), in_force, "{who}: day 2's fees after kill -9");
    }
    assert!(
        !server.log().contains("change them with set_fees"),
        "no config, no warning:\n{}",
        tail(&server.log(), 3000)
    );
    // Day 1's statements still carry day 1's fees.
    for who in ["g1", "b1"] {
        let statement = get_statement(d.of(who), &day1, None).await;
        books1.check_statement(who, &day1, &DEFAULT_FEES, &statement);
    }

    // ── Day 2 at 7 %, 0.80 a container, 0.2 %, on half-even boundaries both ways:
    // ROSE 11.50 → commission 0.805 → 0.80; LILY 12.50 → 0.875 → 0.88; fees 1 and 2 × 0.80;
    // book 22.50 → buyer fee 0.045 → 0.04, commission 1.575 → 1.58; book 27.50 → 0.055 → 0.06,
    // 1.925 → 1.92 (prices within the book's 20 % band around day 1's close of 2.05).
    let mut books2 = Books::default();
    let rose = d.clock_sale("ROSE", 10, 1, "1.15").await;
    assert_eq!((rose.award["fee"].as_str(), rose.lot_sale["commission"].as_str()), (Some("0.80"), Some("0.80")));
    books2.clock(&NEW_FEES, &rose);
    let lily = d.clock_sale("LILY", 5, 2, "1.25").await;
    assert_eq!((lily.award["fee"].as_str(), lily.lot_sale["commission"].as_str()), (Some("1.60"), Some("0.88")));
    books2.clock(&NEW_FEES, &lily);
    books2.book(&NEW_FEES, &d.book_trade("2.25", 10).await);
    books2.book(&NEW_FEES, &d.book_trade("2.50", 11).await);
    let want_fees: Vec<i64> = books2.lines_of("b1").iter().map(|l| l.fee).collect();
    let mut sorted = want_fees.clone();
    sorted.sort();
    assert_eq!(sorted, [4, 6, 80, 160], "b1's day 2 fees, as worked out by hand");
    let want_commission: Vec<i64> = books2.lines_of("g1").iter().map(|l| l.fee).collect();
    let mut sorted = want_commission.clone();
    sorted.sort();
    assert_eq!(sorted, [80, 88, 158, 192], "g1's day 2 commissions, as worked out by hand");
    let settled2 = d.end_of_day().await;
    books2.check_day(&mut d, &day2, &NEW_FEES, &settled2).await;
    for who in ["g1", "b1"] {
        let statement = get_statement(d.of(who), &day1, None).await;
        books1.check_statement(who, &day1, &DEFAULT_FEES, &statement);
    }
    // The new fees stay in force on day 3 (nothing pending).
    let day3 = settled2["next_day"].as_str().unwrap();
    assert_eq!(
        strip_volatile(&get_fees(&mut d.op).await),
        json!({"type": "fees", "current": dated(&NEW_FEES, day3), "next": null}),
        "fees stay until set again"
    );
    drop(d);

    // ── The replays agree; the finance office's CSVs say which fees applied on which day.
    server.stop_and_check_replays();
    let out = tempfile::tempdir().unwrap();
    for (day, fees, books, settled) in
        [(&day1, &DEFAULT_FEES, &books1, &settled1), (&day2, &NEW_FEES, &books2, &settled2)]
    {
        let dir = out.path().join(day);
        statements_cli(&server.data_dir, day, &dir);
        check_csvs(&dir, day, fees, books, fen(&settled["fees"]));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_set_fees_is_refused_naming_the_field_and_the_config_seeds_a_new_market() {
    // [fees] seeds a new data directory.
    let opts = ServerOpts {
        config_toml: Some("[fees]\ncommission_pct = \"6.5\"\nclock_fee_per_container = \"0.45\"\n".into()),
        ..ServerOpts::default()
    };
    let mut server = Server::start(opts);
    let day = server.day.clone();
    let (_grower, buyer) = set_up(&server).await;
    let mut op = server.operator().await;
    let seeded = json!({"type": "fees", "next": null,
        "current": {"commission_pct": "6.50", "clock_fee_per_container": "0.45", "book_fee_pct": "0.10", "day": day}});
    assert_eq!(strip_volatile(&get_fees(&mut op).await), seeded, "the config seeds a new market's fees");

    // Only the operator sets fees.
    let good =
        json!({"type": "set_fees", "commission_pct": "7", "clock_fee_per_container": "0.80", "book_fee_pct": "0.2"});
    let mut b1 = server.session(&buyer).await;
    assert_error(&b1.request(good.clone()).await, "forbidden");

    // Each bad field is named; nothing is set.
    let with = |field: &str, value: Value| {
        let mut msg = good.clone();
        msg[field] = value;
        msg
    };
    let mut missing = good.clone();
    missing.as_object_mut().unwrap().remove("book_fee_pct");
    let cases = [
        (with("commission_pct", json!("101")), "commission_pct"),
        (with("commission_pct", json!("-1")), "commission_pct"),
        (with("commission_pct", json!("5.00001")), "commission_pct"),
        (with("commission_pct", json!(5)), "commission_pct"),
        (with("commission_pct", json!("five")), "commission_pct"),
        (with("book_fee_pct", json!("100.01")), "book_fee_pct"),
        (with("clock_fee_per_container", json!("0.001")), "clock_fee_per_container"),
        (with("clock_fee_per_container", json!("-0.50")), "clock_fee_per_container"),
        (with("clock_fee_per_container", json!(0.5)), "clock_fee_per_container"),
        (missing, "book_fee_pct"),
    ];
    for (msg, field) in cases {
        let reply = op.request(msg.clone()).await;
        assert_error(&reply, "bad_request");
        assert!(reply["message"].as_str().unwrap().contains(field), "{msg} → {reply}: the message names `{field}`");
    }
    for c in [&mut op, &mut b1] {
        assert_eq!(strip_volatile(&get_fees(c).await), seeded, "refused set_fees change nothing");
    }

    // The bounds themselves are accepted: 0 % and 100 % and a free clock.
    let edge =
        json!({"type": "set_fees", "commission_pct": "100", "clock_fee_per_container": "0.00", "book_fee_pct": "0"});
    let reply = op.request(edge).await;
    assert_eq!(reply["type"], "fees_set", "{reply}");
    assert_eq!(
        (reply["commission_pct"].as_str(), reply["clock_fee_per_container"].as_str(), reply["book_fee_pct"].as_str()),
        (Some("100.00"), Some("0.00"), Some("0.00")),
        "{reply}"
    );
    assert_eq!(get_fees(&mut b1).await["current"], seeded["current"], "today's fees stay");
    // A second set_fees the same day replaces the pending one.
    let again =
        json!({"type": "set_fees", "commission_pct": "6", "clock_fee_per_container": "0.40", "book_fee_pct": "0.05"});
    assert_eq!(op.request(again).await["type"], "fees_set");
    let pending = json!({"commission_pct": "6.00", "clock_fee_per_container": "0.40", "book_fee_pct": "0.05"});
    let fees = get_fees(&mut b1).await;
    assert_eq!(
        (&fees["current"], fees["next"]["commission_pct"].as_str()),
        (&seeded["current"], Some("6.00")),
        "{fees}"
    );
    drop((op, b1));
    // The file that seeded the market is no "differing [fees]": a restart with it warns of nothing,
    // though set_fees has changed the next day's fees.
    server.restart();
    assert!(!server.log().contains("set_fees"), "a warning about an unchanged [fees]:\n{}", tail(&server.log(), 3000));
    let fees = get_fees(&mut server.operator().await).await;
    assert_eq!(fees["current"], seeded["current"], "{fees}");
    let mut want_next = pending;
    let next_day = fees["next"]["day"].clone();
    assert!(next_day.as_str() > Some(day.as_str()), "the pending fees are for a later day: {fees}");
    want_next["day"] = next_day;
    assert_eq!(fees["next"], want_next, "the pending fees survive a restart");
    server.stop_and_check_replays();
}

/// `huashi statements --data-dir DIR --day D --out OUT` on a stopped server's directory.
fn statements_cli(data_dir: &Path, day: &str, out: &Path) {
    let run = Command::new(huashi_bin())
        .args(["statements", "--day", day])
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--out")
        .arg(out)
        .output()
        .expect("run huashi statements");
    assert!(
        run.status.success(),
        "huashi statements --day {day} failed ({}):\n{}\n{}",
        run.status,
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `fees.csv` holds the day's schedule; `summary.csv` and each participant's CSV hold the books
/// worked out with it.
fn check_csvs(dir: &Path, day: &str, fees: &Fees, books: &Books, market_fees: i64) {
    let fees_csv = read(&dir.join("fees.csv"));
    assert_eq!(
        fees_csv,
        format!("day,commission_pct,clock_fee_per_container,book_fee_pct\n{}\n", fees.csv_row(day)),
        "fees.csv of {day}"
    );
    let summary = read(&dir.join("summary.csv"));
    let mut want = vec!["participant,bought,sold,fees,commission,corrections,net".to_string()];
    let mut net_column = market_fees;
    for who in ["b1", "g1"] {
        let [bought, buyer_fees, sold, commission] = books.totals_of(who);
        let net = sold - commission - bought - buyer_fees;
        net_column += net;
        // No complaint is decided in this test: corrections are zero.
        want.push(format!(
            "{who},{},{},{},{},{},{}",
            money(bought),
            money(sold),
            money(buyer_fees),
            money(commission),
            money(0),
            money(net)
        ));

        let file = read(&dir.join(format!("statement-{who}.csv")));
        let mut got: Vec<&str> = file.lines().collect();
        assert_eq!(got.remove(0), "participant,day,kind,ref,product,grade,side,price,units,amount,fee", "{file}");
        let totals: Vec<String> = [
            ("total_bought", bought),
            ("total_sold", sold),
            ("fees", buyer_fees),
            ("commission", commission),
            ("corrections", 0),
            ("net", net),
        ]
        .iter()
        .map(|(label, v)| format!("{who},{day},{label},,,,,,,{},", money(*v)))
        .collect();
        let (lines, got_totals) = got.split_at(got.len().saturating_sub(totals.len()));
        assert_eq!(got_totals, totals.iter().map(String::as_str).collect::<Vec<_>>(), "{who}'s totals in {file}");
        let mut lines = lines.to_vec();
        lines.sort();
        let mut want_lines: Vec<String> = books.lines_of(who).iter().map(|l| l.csv_row(who, day)).collect();
        want_lines.sort();
        assert_eq!(
            lines,
            want_lines.iter().map(String::as_str).collect::<Vec<_>>(),
            "{who}'s lines of {day} in the CSV"
        );
    }
    assert_eq!(net_column, 0, "Σ net + the market's fees = 0 in {day}'s CSVs");
    let got: Vec<&str> = summary.lines().filter(|l| !l.starts_with("(market)")).collect();
    assert_eq!(got, want.iter().map(String::as_str).collect::<Vec<_>>(), "summary.csv of {day}");
    let market =
        summary.lines().find(|l| l.starts_with("(market),")).unwrap_or_else(|| panic!("no market row: {summary}"));
    assert!(market.ends_with(&format!(",{}", money(market_fees))), "the market's income in {market:?}");
}
