//! A whole trading day over the protocol, settled (issue 5's end-to-end promise): clock sales by
//! standing and live bids, a voided award, unsold lots, book trades with fees on the half-even
//! boundary, expiring `day` orders, then `end_of_day`. The test keeps its own books from the private
//! reports (`award`, `fill`; see `huashi_tests::ledger`) and holds against them:
//! - every participant's `get_statement` (own session and operator), line by line and in total,
//!   and money conserved (Σ net + the market's fees = 0);
//! - the CSVs `huashi statements` writes for the finance office, read from a `kill -9`ed data dir;
//! - after `kill -9` and a restart: the same statements (the settled day and the running one),
//!   the same accounts, and, after a graceful stop, byte-identical CSVs.

use huashi_tests::ledger::{get_statement, Ledger};
use huashi_tests::*;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const CLOCK_T: Duration = Duration::from_secs(30);
const PARTICIPANTS: [(&str, &str, Option<&str>); 5] = [
    ("g1", "grower", None),
    ("g2", "grower", None),
    ("b1", "buyer", Some("5000.00")),
    ("b2", "buyer", Some("5000.00")),
    ("b3", "buyer", Some("200.00")),
];

/// Everyone's session, by participant id.
struct Desks {
    op: Client,
    feed: Feed,
    by_id: BTreeMap<&'static str, Client>,
}

impl Desks {
    async fn connect(server: &Server, tokens: &BTreeMap<&'static str, String>) -> Desks {
        let mut by_id = BTreeMap::new();
        for (id, token) in tokens {
            let mut c = server.connect("/ws").await;
            let reply = c.login(token).await;
            assert_eq!(reply["participant"], *id, "{reply}");
            by_id.insert(*id, c);
        }
        Desks { op: server.operator().await, feed: server.feed().await, by_id }
    }

    fn of(&mut self, id: &str) -> &mut Client {
        self.by_id.get_mut(id).unwrap_or_else(|| panic!("no session for {id}"))
    }

    async fn consign(&mut self, ledger: &mut Ledger, grower: &str, msg: Value) -> u64 {
        let lot = consign(self.of(grower), msg).await;
        ledger.consigned(&lot);
        lot["lot_id"].as_u64().unwrap()
    }

    async fn request_ok(&mut self, who: &str, msg: Value, reply_type: &str) -> Value {
        let c = if who == "operator" { &mut self.op } else { self.of(who) };
        let reply = c.request(msg.clone()).await;
        assert_eq!(reply["type"], reply_type, "{who}: {msg} → {reply}");
        reply
    }

    /// The next `clock_started` of `lot_id` on the feed.
    async fn round_started(&mut self, lot_id: u64) -> Value {
        let ev = self
            .feed
            .next_matching(|v| v["type"] == "clock_started" && v["lot_id"] == lot_id, CLOCK_T)
            .await
            .unwrap_or_else(|| panic!("lot {lot_id} never started a round"));
        check_fields(&ev, "clock_started", CLOCK_STARTED_FIELDS);
        ev
    }

    async fn clock_idle(&mut self, clock: u64) {
        self.feed
            .next_matching(|v| v["type"] == "clock_state" && v["clock"] == clock && v["state"] == "idle", CLOCK_T)
            .await
            .unwrap_or_else(|| panic!("clock {clock} never went idle"));
    }

    /// The next `award` report (from a standing bid) on `buyer`'s session.
    async fn award_report(&mut self, buyer: &str, lot_id: u64) -> Value {
        let award = self
            .of(buyer)
            .next_matching(|v| v["type"] == "award" && v["lot_id"] == lot_id, CLOCK_T)
            .await
            .unwrap_or_else(|e| panic!("{buyer} won nothing of lot {lot_id}: {e}"));
        check_fields(&award, "award", AWARD_FIELDS);
        award
    }

    async fn order(&mut self, who: &str, coid: &str, side: &str, price: &str, qty: u64, tif: &str) -> Value {
        let msg = json!({"type": "new_order", "client_order_id": coid, "symbol": "ROSE-A", "side": side,
                         "order_type": "limit", "price": price, "quantity": qty, "time_in_force": tif});
        self.request_ok(who, msg, "order_accepted").await
    }

    /// The next private report of `ty` about order `coid` on `who`'s session.
    async fn report(&mut self, who: &str, ty: &str, coid: &str) -> Value {
        let (t, id) = (ty.to_string(), coid.to_string());
        self.of(who)
            .next_matching(move |v| v["type"] == t.as_str() && v["client_order_id"] == id.as_str(), REPLY_TIMEOUT)
            .await
            .unwrap_or_else(|e| panic!("no {ty} for {who}'s {coid}: {e}"))
    }

    async fn set_book(&mut self, state: &str) {
        self.request_ok(
            "operator",
            json!({"type": "set_book_state", "symbol": "ROSE-A", "state": state}),
            "book_state",
        )
        .await;
    }
}

/// What a participant's desk can read about its money: statements and account, for comparing
/// before and after a crash.
async fn books_of(desks: &mut Desks, who: &str, days: &[&str]) -> Vec<String> {
    let mut seen = Vec::new();
    for day in days {
        seen.push(canonical(&strip_volatile(&get_statement(desks.of(who), day, None).await)));
    }
    seen.push(canonical(&strip_volatile(&get_account(desks.of(who)).await)));
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_settled_day_s_statements_match_the_csvs_and_survive_kill_9() {
    let mut server = Server::start(ServerOpts::default().clocks(2));
    let day1 = server.day.clone();
    let mut tokens = BTreeMap::new();
    {
        let mut op = server.operator().await;
        for (id, role, credit) in PARTICIPANTS {
            tokens.insert(id, register(&mut op, id, &[role], credit).await);
        }
    }
    let mut d = Desks::connect(&server, &tokens).await;
    let mut ledger = Ledger::default();
    // Slow enough ticks that a live press has seconds of round left on a loaded machine (clock 1:
    // 4 s before lot 2 goes below its reserve; clock 2: 3 s before b3's standing bid would win);
    // clock 2 pauses 3 s after an award, so the operator can void it while the lot is on the clock.
    for (clock, tick_ms, pause_ms) in [(1, 40, 50), (2, 100, 3_000)] {
        let msg = json!({"type": "configure_clock", "clock": clock, "step": "0.01", "tick_ms": tick_ms,
                         "pre_roll_ms": 50, "pause_ms": pause_ms, "restart_ticks": 10, "multi_buy_ms": 0});
        d.request_ok("operator", msg, "clock_configured").await;
    }

    // ── Clock 2: b1 presses by mistake, the operator voids it, b3's standing bid takes the lot.
    let l4 = d.consign(&mut ledger, "g2", lot_msg("ROSE", "A2", 10, 3, "1.00")).await;
    let msg = json!({"type": "standing_bid", "lot_id": l4, "max_price": "1.20", "containers": 3});
    d.request_ok("b3", msg, "standing_bid_accepted").await;
    d.request_ok(
        "operator",
        json!({"type": "assign_lot", "lot_id": l4, "clock": 2, "start_price": "1.50"}),
        "lot_assigned",
    )
    .await;
    d.request_ok("operator", json!({"type": "start_clock", "clock": 2}), "clock_state").await;
    let round = d.round_started(l4).await;
    let bid = json!({"type": "bid", "clock": 2, "lot_id": l4, "round": round["round"], "containers": 1});
    let mistaken = d.request_ok("b1", bid, "award").await;
    assert!(fen(&mistaken["price"]) > 120, "the press came before the standing bid's price: {mistaken}");
    ledger.award("b1", &mistaken);
    let void = json!({"type": "void_award", "clock": 2, "lot_id": l4, "round": round["round"]});
    d.request_ok("operator", void, "award_voided").await;
    ledger.voided(l4, round["round"].as_u64().unwrap(), "b1");
    let award = d.award_report("b3", l4).await;
    assert_eq!((award["price"].as_str(), award["containers"].as_u64()), (Some("1.20"), Some(3)), "{award}");
    ledger.award("b3", &award);
    d.clock_idle(2).await;

    // ── Clock 1: two standing bids share a lot; a live press; two lots (partly) unsold.
    let l1 = d.consign(&mut ledger, "g1", lot_msg("ROSE", "A1", 10, 4, "1.00")).await;
    let l2 = d.consign(&mut ledger, "g2", lot_msg("LILY", "A2", 5, 3, "2.00")).await;
    let l3 = d.consign(&mut ledger, "g1", lot_msg("CARNATION", "B1", 20, 2, "0.50")).await;
    for (buyer, max_price) in [("b1", "2.35"), ("b2", "2.10")] {
        let msg = json!({"type": "standing_bid", "lot_id": l1, "max_price": max_price, "containers": 2});
        d.request_ok(buyer, msg, "standing_bid_accepted").await;
    }
    for (lot, start) in [(l1, "2.65"), (l2, "3.00"), (l3, "0.80")] {
        let msg = json!({"type": "assign_lot", "lot_id": lot, "clock": 1, "start_price": start});
        d.request_ok("operator", msg, "lot_assigned").await;
    }
    d.request_ok("operator", json!({"type": "start_clock", "clock": 1}), "clock_state").await;
    for (buyer, price) in [("b1", "2.35"), ("b2", "2.10")] {
        let award = d.award_report(buyer, l1).await;
        assert_eq!((award["price"].as_str(), award["containers"].as_u64()), (Some(price), Some(2)), "{award}");
        ledger.award(buyer, &award);
    }
    let round = d.round_started(l2).await;
    let bid = json!({"type": "bid", "clock": 1, "lot_id": l2, "round": round["round"], "containers": 1});
    let live = d.request_ok("b2", bid, "award").await;
    let price = fen(&live["price"]);
    assert!((200..=300).contains(&price), "a live award within the round's prices: {live}");
    ledger.award("b2", &live);
    for lot in [l2, l3] {
        let unsold = d
            .feed
            .next_matching(|v| v["type"] == "lot_unsold" && v["lot_id"] == lot, CLOCK_T)
            .await
            .unwrap_or_else(|| panic!("lot {lot}'s rest should go unsold"));
        // l2: 3 containers less b2's one; l3: both.
        assert_eq!(unsold["remaining"], 2, "{unsold}");
    }
    d.clock_idle(1).await;

    // ── The ROSE-A book: fees on the half-even boundary (commission on 61.50 is 3.075 → 3.08).
    d.set_book("open").await;
    d.order("g1", "s1", "sell", "2.05", 100, "gtc").await;
    d.order("b1", "x1", "buy", "2.05", 30, "ioc").await;
    d.order("b2", "x2", "buy", "2.10", 45, "gtc").await;
    d.order("b3", "x3", "buy", "2.05", 3, "fok").await;
    for (who, coid) in [("b1", "x1"), ("b2", "x2"), ("b3", "x3")] {
        let fill = d.report(who, "fill", coid).await;
        ledger.fill(who, "ROSE", &fill);
        let maker = d.report("g1", "fill", "s1").await;
        assert_eq!(maker["trade_id"], fill["trade_id"], "g1's fill is the other side of {who}'s: {maker}");
        ledger.fill("g1", "ROSE", &maker);
    }
    d.order("b2", "d1", "buy", "1.90", 10, "day").await;
    d.order("g2", "d2", "sell", "2.15", 20, "day").await;
    d.set_book("closed").await;

    // ── End of day.
    let settled = d.request_ok("operator", json!({"type": "end_of_day"}), "day_settled").await;
    assert_eq!(settled["day"], day1.as_str(), "{settled}");
    assert_eq!(settled["trades"], ledger.trades(), "awards not voided + book trades: {settled}");
    assert_eq!(fen(&settled["turnover"]), ledger.turnover(), "{settled}");
    assert_eq!(fen(&settled["fees"]), ledger.market_fees(), "commissions + buyer fees: {settled}");
    let day2 = settled["next_day"].as_str().unwrap().to_string();
    for (who, coid) in [("b2", "d1"), ("g2", "d2")] {
        assert_eq!(d.report(who, "order_done", coid).await["reason"], "expired", "{who}'s day order");
    }

    // Every statement, as the participant and as the operator sees it; money is conserved.
    let mut nets = 0;
    for who in ledger.participants() {
        let own = get_statement(d.of(&who), &day1, None).await;
        nets += ledger.check_statement(&who, &day1, &own);
        let ops = get_statement(&mut d.op, &day1, Some(&who)).await;
        assert_eq!(strip_volatile(&ops), strip_volatile(&own), "the operator reads the same statement of {who}");
    }
    assert_eq!(ledger.participants().len(), PARTICIPANTS.len(), "everyone traded: {:?}", ledger.participants());
    assert_eq!(nets + fen(&settled["fees"]), 0, "Σ net + the market's fees = 0");
    for buyer in ["b1", "b2", "b3"] {
        let a = get_account(d.of(buyer)).await;
        assert_eq!(a["exposure"], "0.00", "settled purchases and expired orders release exposure: {a}");
    }

    // ── The next day's running statement: one more book trade before the crash.
    d.set_book("open").await;
    let mut today = Ledger::default();
    d.order("b1", "y1", "buy", "2.05", 10, "ioc").await;
    let fill = d.report("b1", "fill", "y1").await;
    today.fill("b1", "ROSE", &fill);
    today.fill("g1", "ROSE", &d.report("g1", "fill", "s1").await);
    for who in ["b1", "g1"] {
        let running = get_statement(d.of(who), &day2, None).await;
        today.check_statement(who, &day2, &running);
    }

    let mut before = BTreeMap::new();
    for (id, _, _) in PARTICIPANTS {
        let days: &[&str] = if ["b1", "g1"].contains(&id) { &[&day1, &day2] } else { &[&day1] };
        before.insert(id, books_of(&mut d, id, days).await);
    }

    // ── kill -9: the finance office's CSVs come from the dead server's directory.
    server.kill9();
    drop(d);
    let out = tempfile::tempdir().unwrap();
    let after_kill = out.path().join("after-kill");
    let printed = statements_cli(&server.data_dir, &day1, &after_kill).unwrap_or_else(|e| panic!("{e}"));
    assert!(printed.contains(&format!("{day1}: {} statements", PARTICIPANTS.len())), "{printed}");
    check_csvs(&after_kill, &day1, &ledger, fen(&settled["fees"]));
    let refused = statements_cli(&server.data_dir, &day2, &out.path().join("running")).expect_err("day 2 is open");
    assert!(refused.contains("not a settled day"), "{refused}");

    // ── Restart: the same statements and balances, to the fen.
    server.start_again();
    let mut d = Desks::connect(&server, &tokens).await;
    for (id, _, _) in PARTICIPANTS {
        let days: &[&str] = if ["b1", "g1"].contains(&id) { &[&day1, &day2] } else { &[&day1] };
        let after = books_of(&mut d, id, days).await;
        assert_eq!(after, before[id], "{id}'s statements and account after kill -9 (left: after, right: before)");
    }
    drop(d);
    server.stop();
    let after_stop = out.path().join("after-stop");
    statements_cli(&server.data_dir, &day1, &after_stop).unwrap_or_else(|e| panic!("{e}"));
    for entry in std::fs::read_dir(&after_kill).unwrap() {
        let name = entry.unwrap().file_name();
        let (a, b) = (read(&after_kill.join(&name)), read(&after_stop.join(&name)));
        assert_eq!(a, b, "{name:?} differs between the CSVs written after the kill and after the restart");
    }
}

/// `huashi statements --data-dir DIR --day D --out OUT`: stdout on success, stderr on failure.
fn statements_cli(data_dir: &Path, day: &str, out: &Path) -> Result<String, String> {
    let run = Command::new(huashi_bin())
        .args(["statements", "--day", day])
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--out")
        .arg(out)
        .output()
        .expect("run huashi statements");
    let (stdout, stderr) = (String::from_utf8_lossy(&run.stdout), String::from_utf8_lossy(&run.stderr));
    if run.status.success() {
        Ok(stdout.into_owned())
    } else {
        Err(format!("huashi statements --day {day} failed ({}):\n{stdout}\n{stderr}", run.status))
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The CSVs hold exactly the test's books: each participant's lines and totals, and a summary
/// whose `net` column (participants and the market) sums to zero.
fn check_csvs(dir: &Path, day: &str, ledger: &Ledger, market_fees: i64) {
    let summary = read(&dir.join("summary.csv"));
    let mut rows = summary.lines();
    assert_eq!(rows.next(), Some("participant,bought,sold,fees,commission,corrections,net"), "{summary}");
    let mut net_column = 0;
    let mut seen = Vec::new();
    for row in rows {
        let cells: Vec<&str> = row.split(',').collect();
        assert_eq!(cells.len(), 7, "summary row {row:?}");
        let cell = |i: usize| fen(&json!(cells[i]));
        net_column += cell(6);
        // No complaint is decided in this test: corrections are zero.
        assert_eq!(cell(5), 0, "corrections: {row}");
        if cells[0] == "(market)" {
            assert_eq!(cell(3) + cell(4), market_fees, "the market's row: buyer fees + commission: {row}");
            assert_eq!(cell(6), market_fees, "the market's income: {row}");
            continue;
        }
        let who = cells[0];
        seen.push(who.to_string());
        let lines = ledger.lines_of(who);
        let sum = |side: &str, f: fn(&huashi_tests::ledger::Line) -> i64| -> i64 {
            lines.iter().filter(|l| l.side == side).map(f).sum()
        };
        let (bought, fees, sold, commission) =
            (sum("buy", |l| l.amount), sum("buy", |l| l.fee), sum("sell", |l| l.amount), sum("sell", |l| l.fee));
        assert_eq!([cell(1), cell(2), cell(3), cell(4)], [bought, sold, fees, commission], "summary row {row}");
        assert_eq!(cell(6), sold - commission - bought - fees, "net: {row}");

        let file = read(&dir.join(format!("statement-{who}.csv")));
        let mut got: Vec<&str> = file.lines().collect();
        assert_eq!(got.remove(0), "participant,day,kind,ref,product,grade,side,price,units,amount,fee");
        let totals: Vec<String> = [
            ("total_bought", bought),
            ("total_sold", sold),
            ("fees", fees),
            ("commission", commission),
            ("corrections", 0),
            ("net", sold - commission - bought - fees),
        ]
        .iter()
        .map(|(label, v)| format!("{who},{day},{label},,,,,,,{},", money(*v)))
        .collect();
        let (got_lines, got_totals) = got.split_at(got.len().saturating_sub(totals.len()));
        assert_eq!(got_totals, totals.iter().map(String::as_str).collect::<Vec<_>>(), "{who}'s totals in {file}");
        let mut got_lines: Vec<&str> = got_lines.to_vec();
        got_lines.sort();
        let mut want: Vec<String> = lines.iter().map(|l| l.csv_row(who, day)).collect();
        want.sort();
        assert_eq!(got_lines, want.iter().map(String::as_str).collect::<Vec<_>>(), "{who}'s lines in the CSV");
    }
    assert_eq!(net_column, 0, "summary.csv's net column sums to zero:\n{summary}");
    seen.sort();
    assert_eq!(seen, ledger.participants(), "one summary row per participant with activity:\n{summary}");
}
