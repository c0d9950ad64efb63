//! Two trading days over the protocol and the Shanghai Flower Consumption Index they make (issue
//! 6's end-to-end promise, protocol section 10): the feed publishes intraday `index` values
//! (`final:false`) while trades occur and the close (`final:true`) at `end_of_day`; day 1 is the
//! base (1000.00); day 2's SFCI is the chained Törnqvist over the cells traded on both days,
//! recomputed here from the trades; a category first traded on day 2 (pot plants) gets its base
//! there; `/api/index/history` lists both closes, `/api/index` and the feed snapshot the latest;
//! `/api/market` and the feed's `stats` carry the day's cell statistics; after `kill -9` and a
//! restart every value is the same, and `huashi index` prints the history.

use huashi_tests::*;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

const CLOCK_T: Duration = Duration::from_secs(30);
/// Intraday values and stats go out at most once a second of engine time, and a pending one
/// within a second after that; on a loaded machine give it longer.
const PUBLISH_T: Duration = Duration::from_secs(15);

/// One clock sale and one book trade per cell: the day's trades, priced so that each cell's VWAP
/// is known exactly.
struct Desk {
    server_addr: std::net::SocketAddr,
    op: Client,
    feed: Feed,
    grower: Client,
    buyer: Client,
    coid: u32,
}

impl Desk {
    async fn open(server: &Server, grower: &str, buyer: &str) -> Desk {
        Desk {
            server_addr: server.addr,
            op: server.operator().await,
            feed: server.feed().await,
            grower: server.session(grower).await,
            buyer: server.session(buyer).await,
            coid: 0,
        }
    }

    /// Sells `containers` of a consigned lot at exactly `price` per unit, by a standing bid.
    async fn clock_sale(&mut self, product: &str, units_per_container: u64, containers: u64, price: &str) {
        let lot = consign(&mut self.grower, lot_msg(product, "A1", units_per_container, containers, "0.10")).await;
        let lot_id = lot["lot_id"].as_u64().unwrap();
        let bid = json!({"type": "standing_bid", "lot_id": lot_id, "max_price": price, "containers": containers});
        assert_eq!(self.buyer.request(bid).await["type"], "standing_bid_accepted");
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
        assert_eq!(award["price"], price, "{award}");
        self.feed
            .next_matching(|v| v["type"] == "clock_state" && v["clock"] == 1 && v["state"] == "idle", CLOCK_T)
            .await
            .expect("the clock goes idle after its only lot");
    }

    /// One book trade of `quantity` at `price` on `symbol`: the grower rests, the buyer takes.
    async fn book_trade(&mut self, symbol: &str, price: &str, quantity: u64) {
        let r = self.op.request(json!({"type": "set_book_state", "symbol": symbol, "state": "open"})).await;
        assert_eq!(r["type"], "book_state", "{r}");
        self.coid += 1;
        let (sell, buy) = (format!("s{}", self.coid), format!("b{}", self.coid));
        for (c, coid, side, tif) in [(&mut self.grower, &sell, "sell", "gtc"), (&mut self.buyer, &buy, "buy", "ioc")] {
            let r = c
                .request(json!({"type": "new_order", "client_order_id": coid, "symbol": symbol, "side": side,
                                "order_type": "limit", "price": price, "quantity": quantity, "time_in_force": tif}))
                .await;
            assert_eq!(r["type"], "order_accepted", "{r}");
        }
        let done = self
            .buyer
            .next_matching(|v| v["type"] == "order_done" && v["client_order_id"] == buy.as_str(), REPLY_TIMEOUT)
            .await
            .unwrap();
        assert_eq!(done["reason"], "filled", "{done}");
        let r = self.op.request(json!({"type": "set_book_state", "symbol": symbol, "state": "closed"})).await;
        assert_eq!(r["type"], "book_state", "{r}");
    }

    /// The first intraday (`final:false`) SFCI value of `day` on the feed.
    async fn intraday(&mut self, day: &str) -> Value {
        let intraday =
            |v: &Value| v["type"] == "index" && v["code"] == "SFCI" && v["day"] == day && v["final"] == false;
        let ev = self
            .feed
            .first_since(0, intraday, PUBLISH_T)
            .await
            .unwrap_or_else(|| panic!("no intraday SFCI on the feed for {day}"));
        check_fields(
            &ev,
            "index",
            &[("code", Kind::Str), ("value", Kind::Money), ("day", Kind::Day), ("ts", Kind::Ts), ("final", Kind::Bool)],
        );
        ev
    }

    /// `end_of_day`, then the closes the feed publishes for the day, by code.
    async fn end_of_day(&mut self, day: &str) -> (String, BTreeMap<String, String>) {
        let mark = self.feed.events.len();
        let settled = self.op.request(json!({"type": "end_of_day"})).await;
        assert_eq!(settled["type"], "day_settled", "{settled}");
        assert_eq!(settled["day"], day, "{settled}");
        // Clearing publishes the closes together, after it has seen the engine's `day_settled`.
        self.feed
            .first_since(mark, |v| v["type"] == "day_settled", CLOCK_T)
            .await
            .unwrap_or_else(|| panic!("no day_settled on the feed after end_of_day of {day}"));
        self.feed
            .first_since(mark, |v| v["type"] == "index" && v["code"] == "SFCI" && v["final"] == true, CLOCK_T)
            .await
            .unwrap_or_else(|| panic!("no SFCI close on the feed after end_of_day of {day}"));
        self.feed.drain_quiet(Duration::from_millis(300)).await;
        let mut closes = BTreeMap::new();
        for ev in self.feed.events[mark..].iter().filter(|v| v["type"] == "index" && v["final"] == true) {
            assert_eq!(ev["day"], day, "a close for the settled day: {ev}");
            let value = ev["value"].as_str().unwrap().to_string();
            assert!(
                closes.insert(ev["code"].as_str().unwrap().to_string(), value).is_none(),
                "one close per index: {ev}"
            );
        }
        (settled["next_day"].as_str().unwrap().to_string(), closes)
    }

    async fn get_json(&self, path: &str) -> Value {
        api(self.server_addr, path).await
    }
}

async fn api(addr: std::net::SocketAddr, path: &str) -> Value {
    let (status, body) = http_get(addr, path).await;
    assert_eq!(status, 200, "GET {path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path} is not JSON ({e}): {body}"))
}

/// Fen as f64 for the index arithmetic (the index is a ratio, not money).
fn yuan(fen: i64) -> f64 {
    fen as f64 / 100.0
}

/// `x` rounded half-even to 0.01, as the protocol's decimal string; refuses values so close to a
/// rounding boundary that f64 could round them the other way.
fn two_places(x: f64) -> String {
    let scaled = x * 100.0;
    let frac = scaled - scaled.floor();
    assert!((frac - 0.5).abs() > 1e-6, "{x} is too close to a rounding boundary for this test");
    format!("{:.2}", scaled.round() / 100.0)
}

/// One cell's day: amount traded and units, in fen and units.
#[derive(Clone, Copy)]
struct Cell {
    amount: i64,
    units: i64,
}

impl Cell {
    fn vwap(self) -> f64 {
        yuan(self.amount) / self.units as f64
    }
}

/// The chained Törnqvist step of protocol section 10 over cells traded on both days.
fn tornqvist(previous: f64, yesterday: &[Cell], today: &[Cell]) -> f64 {
    let total = |cells: &[Cell]| cells.iter().map(|c| c.amount).sum::<i64>() as f64;
    let (t0, t1) = (total(yesterday), total(today));
    let log_change: f64 = yesterday
        .iter()
        .zip(today)
        .map(|(a, b)| {
            let w = (a.amount as f64 / t0 + b.amount as f64 / t1) / 2.0;
            w * (b.vwap() / a.vwap()).ln()
        })
        .sum();
    previous * log_change.exp()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_days_publish_the_index_live_and_at_the_close_and_it_survives_kill_9() {
    let mut server = Server::start(ServerOpts::default().clocks(1));
    let day1 = server.day.clone();
    let (grower, buyer) = {
        let mut op = server.operator().await;
        configure_fast_clock(&mut op, 1).await;
        (register(&mut op, "g1", &["grower"], None).await, register(&mut op, "b1", &["buyer"], Some("20000.00")).await)
    };
    let mut d = Desk::open(&server, &grower, &buyer).await;
    assert_eq!(d.feed.snapshot["index"], json!({}), "no index before the first trading day");

    // ── Day 1, the base: ROSE A1 sells 20 stems at 2.00 (clock) and 20 at 2.30 (book, grade A1);
    // LILY A1 10 stems at 3.00.
    d.clock_sale("ROSE", 10, 2, "2.00").await;
    let live = d.intraday(&day1).await;
    assert_eq!(live["value"], "1000.00", "the base day's intraday value: {live}");
    d.book_trade("ROSE-A", "2.30", 20).await;
    d.clock_sale("LILY", 5, 2, "3.00").await;
    let (day2, closes1) = d.end_of_day(&day1).await;
    let want1: BTreeMap<String, String> =
        [("SFCI", "1000.00"), ("SFCI-CUT", "1000.00")].iter().map(|(c, v)| (c.to_string(), v.to_string())).collect();
    assert_eq!(closes1, want1, "day 1 closes at the base; no pot plant or foliage traded yet");
    let rose1 = Cell { amount: 4000 + 4600, units: 40 };
    let lily1 = Cell { amount: 3000, units: 10 };

    // ── Day 2: ROSE A1 at 2.20 (clock) and 2.50 (book), LILY A1 at 2.70, and two cells without a
    // day 1: CARNATION A1 (carried by no overlap, so it moves nothing) and PHALAENOPSIS A1, the
    // pot-plant sub-index's base day.
    d.clock_sale("ROSE", 10, 2, "2.20").await;
    let live = d.intraday(&day2).await;
    let rose_so_far = Cell { amount: 4400, units: 20 };
    let expected_live = tornqvist(1000.0, &[rose1], &[rose_so_far]);
    assert_eq!(live["value"], two_places(expected_live), "day 2's first intraday value (ROSE alone): {live}");
    d.book_trade("ROSE-A", "2.50", 20).await;
    d.clock_sale("LILY", 5, 2, "2.70").await;
    d.clock_sale("CARNATION", 20, 1, "0.90").await;
    d.clock_sale("PHALAENOPSIS", 6, 1, "12.00").await;

    // The day's statistics, live: the ROSE A1 cell combines the clock and the book.
    let rose_stats = d
        .feed
        .first_since(
            0,
            |v| {
                v["type"] == "stats"
                    && v["product"] == "ROSE"
                    && v["grade"] == "A1"
                    && v["day"] == day2.as_str()
                    && v["trades"] == 2
            },
            PUBLISH_T,
        )
        .await
        .expect("stats for ROSE A1 with both of day 2's trades");
    let want_stats = json!({"open": "2.20", "high": "2.50", "low": "2.20", "last": "2.50", "vwap": "2.35",
                            "units": 40, "turnover": "94.00", "trades": 2});
    for (k, v) in want_stats.as_object().unwrap() {
        assert_eq!(&rose_stats[k], v, "stats.{k}: {rose_stats}");
    }
    let market = d.get_json("/api/market").await;
    assert_eq!(market["day"], day2.as_str(), "{market}");
    let cell =
        market["cells"].as_array().unwrap().iter().find(|c| c["product"] == "ROSE" && c["grade"] == "A1").cloned();
    let cell = cell.unwrap_or_else(|| panic!("/api/market has no ROSE A1 cell: {market}"));
    for (k, v) in want_stats.as_object().unwrap() {
        assert_eq!(&cell[k], v, "/api/market ROSE A1 {k}: {cell}");
    }

    let (_day3, closes2) = d.end_of_day(&day2).await;
    let rose2 = Cell { amount: 4400 + 5000, units: 40 };
    let lily2 = Cell { amount: 2700, units: 10 };
    let sfci2 = two_places(tornqvist(1000.0, &[rose1, lily1], &[rose2, lily2]));
    assert_ne!(sfci2, "1000.00", "the test's prices must move the index");
    let want2: BTreeMap<String, String> =
        [("SFCI", sfci2.as_str()), ("SFCI-CUT", sfci2.as_str()), ("SFCI-POT", "1000.00")]
            .iter()
            .map(|(c, v)| (c.to_string(), v.to_string()))
            .collect();
    assert_eq!(closes2, want2, "day 2's closes: the cut flowers' Törnqvist step; pot plants' base day");

    // ── The history and the latest values, over HTTP and in a new feed's snapshot.
    let history = d.get_json("/api/index/history").await;
    let expected_history = json!({"rows": [
        {"day": day1, "closes": want1},
        {"day": day2, "closes": want2},
    ]});
    assert_eq!(history, expected_history, "/api/index/history");
    let latest = d.get_json("/api/index").await;
    assert_eq!(latest["values"], json!(want2), "/api/index after the close: {latest}");
    let snapshot_index = server.feed().await.snapshot["index"].clone();
    assert_eq!(snapshot_index, json!(want2), "the feed snapshot's index");
    drop(d);

    // ── kill -9 and restart: the same history, latest values and snapshot.
    server.kill9();
    server.start_again();
    assert_eq!(api(server.addr, "/api/index/history").await, expected_history, "history after kill -9");
    assert_eq!(api(server.addr, "/api/index").await["values"], json!(want2), "/api/index after kill -9");
    assert_eq!(server.feed().await.snapshot["index"], json!(want2), "the snapshot's index after kill -9");

    // ── `huashi index` prints the same history from the stopped server's directory.
    server.stop();
    let table = index_cli(&server, &[]);
    for (day, closes) in [(&day1, &want1), (&day2, &want2)] {
        let row = table.lines().find(|l| l.contains(day.as_str())).unwrap_or_else(|| panic!("no {day} in:\n{table}"));
        for value in closes.values() {
            assert!(row.contains(value.as_str()), "{day}'s row lacks {value}:\n{table}");
        }
    }
    let csv = index_cli(&server, &["--csv"]);
    let mut rows = csv.lines();
    let header: Vec<&str> = rows.next().expect("a header").split(',').collect();
    assert_eq!(header[0], "day", "{csv}");
    for (row, (day, closes)) in rows.zip([(&day1, &want1), (&day2, &want2)]) {
        let cells: Vec<&str> = row.split(',').collect();
        assert_eq!(cells[0], day.as_str(), "{csv}");
        for (code, value) in closes {
            let at = header.iter().position(|h| h == code).unwrap_or_else(|| panic!("no {code} column: {csv}"));
            assert_eq!(cells[at], value.as_str(), "{day} {code} in:\n{csv}");
        }
    }
}

fn index_cli(server: &Server, extra: &[&str]) -> String {
    let out = Command::new(huashi_bin())
        .arg("index")
        .arg("--data-dir")
        .arg(&server.data_dir)
        .args(extra)
        .output()
        .expect("run huashi index");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "huashi index {extra:?} failed: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    stdout
}
