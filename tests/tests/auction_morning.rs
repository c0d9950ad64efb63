//! A whole auction morning over real WebSockets, as protocol.md describes it: participants, lots,
//! Dutch clocks (live bids, standing bids, unsold lots, voided awards), the continuous book
//! (pre-open, uncross, continuous trading, order management), accounts and the end of the day.
//! Every reply is checked against the protocol's field names and wire types.

use huashi_tests::ledger::check_statement_shape;
use huashi_tests::*;
use serde_json::{json, Value};
use std::time::Duration;

const T: Duration = REPLY_TIMEOUT;
/// How long we are willing to wait for a clock to finish a lot (it never takes this long).
const CLOCK_T: Duration = Duration::from_secs(30);

/// A market with an operator session and a feed.
struct Market {
    server: Server,
    feed: Feed,
    op: Client,
}

impl Market {
    async fn open() -> Market {
        let server = Server::start(ServerOpts::default());
        let feed = server.feed().await;
        let op = server.operator().await;
        Market { server, feed, op }
    }

    /// Registers a participant and logs a session in for it.
    async fn participant(&mut self, id: &str, roles: &[&str], credit: Option<&str>) -> Client {
        let token = register(&mut self.op, id, roles, credit).await;
        let mut c = self.server.connect("/ws").await;
        let reply = c.login(&token).await;
        assert_eq!(reply["participant"], id, "logged_in.participant: {reply}");
        let mut got: Vec<&str> = reply["roles"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
        got.sort();
        let mut want = roles.to_vec();
        want.sort();
        assert_eq!(got, want, "logged_in.roles: {reply}");
        assert_eq!(reply["day"], self.server.day.as_str(), "logged_in.day: {reply}");
        c
    }

    async fn assign(&mut self, lot_id: u64, clock: u64, start_price: &str) -> Value {
        let reply = self
            .op
            .request(json!({"type": "assign_lot", "lot_id": lot_id, "clock": clock, "start_price": start_price}))
            .await;
        check_fields(&reply, "lot_assigned", &[("lot_id", Kind::Int), ("clock", Kind::Int), ("position", Kind::Int)]);
        assert_eq!(reply["lot_id"], lot_id, "{reply}");
        assert_eq!(reply["clock"], clock, "{reply}");
        reply
    }

    async fn start_clock(&mut self, clock: u64) {
        let reply = self.op.request(json!({"type": "start_clock", "clock": clock})).await;
        check_fields(&reply, "clock_state", &[("clock", Kind::Int), ("state", Kind::Str)]);
        assert_eq!(reply["clock"], clock);
        assert!(["pre_roll", "running"].contains(&reply["state"].as_str().unwrap()), "a started clock: {reply}");
    }

    /// The next `clock_started` of `clock` on the feed, checked.
    async fn round_started(&mut self, clock: u64) -> Value {
        let ev = self
            .feed
            .next_matching(|v| v["type"] == "clock_started" && v["clock"] == clock, CLOCK_T)
            .await
            .unwrap_or_else(|| panic!("no clock_started for clock {clock}"));
        check_fields(&ev, "clock_started", CLOCK_STARTED_FIELDS);
        ev
    }

    /// The lot as the operator sees it.
    async fn op_lot(&mut self, lot_id: u64) -> Value {
        let lots = get_lots(&mut self.op).await;
        lots.into_iter().find(|l| l["lot_id"] == lot_id).unwrap_or_else(|| panic!("lot {lot_id} missing from get_lots"))
    }
}

/// Asserts an award against the round it was won in: the price is price(ts) of protocol section 6.
fn check_award_price(award: &Value, round: &Value) {
    check_fields(award, "award", AWARD_FIELDS);
    let price = fen(&award["price"]);
    let expect = round_price(round, award["ts"].as_i64().unwrap());
    assert!(award["ts"].as_i64() >= round["start_ts"].as_i64(), "an award before its round started: {award} {round}");
    assert_eq!(price, expect, "award price must be price(ts) from clock_started {round}: {award}");
}

fn lot_has_no_reserve(lot: &Value, who: &str) {
    assert!(lot.get("min_price").is_none(), "min_price (the reserve) must not be shown to {who}: {lot}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clock_award_is_priced_from_the_published_round_and_the_rest_is_reoffered() {
    let mut m = Market::open().await;
    // A new data directory: 4 idle clocks and the three closed books of the catalogue.
    let snap = m.feed.snapshot.clone();
    assert_eq!(snap["day"], m.server.day.as_str());
    assert_eq!(snap["clocks"].as_array().unwrap().len(), 4, "default --clocks is 4: {snap}");
    for c in snap["clocks"].as_array().unwrap() {
        assert_eq!(c["state"], "idle", "{snap}");
        assert!(c["lot"].is_null(), "an idle clock without lots has a null lot: {c}");
    }
    let mut symbols: Vec<&str> =
        snap["books"].as_array().unwrap().iter().map(|b| b["symbol"].as_str().unwrap()).collect();
    symbols.sort();
    assert_eq!(symbols, ["LILY-A", "PHALAENOPSIS-A", "ROSE-A"], "{snap}");
    assert!(snap["books"].as_array().unwrap().iter().all(|b| b["state"] == "closed"), "{snap}");
    let health = m.server.health().await;
    assert_eq!(health["day"], m.server.day.as_str());

    let mut g1 = m.participant("g1", &["grower"], None).await;
    let mut b1 = m.participant("b1", &["buyer"], Some("10000.00")).await;
    let mut b2 = m.participant("b2", &["buyer"], Some("5000.00")).await;

    // The grower consigns; it sees its reserve, buyers do not.
    let mut msg = lot_msg("ROSE", "A1", 20, 10, "3.00");
    msg["min_purchase"] = json!(2);
    msg["origin"] = json!("Yunnan");
    msg["note"] = json!("fresh this morning");
    let lot = consign(&mut g1, msg).await;
    let lot_id = lot["lot_id"].as_u64().unwrap();
    assert_eq!(lot["grower"], "g1");
    assert_eq!(lot["product"], "ROSE");
    assert_eq!(lot["grade"], "A1");
    assert_eq!(lot["units_per_container"], 20);
    assert_eq!(lot["containers"], 10);
    assert_eq!(lot["remaining"], 10);
    assert_eq!(lot["min_purchase"], 2);
    assert_eq!(lot["origin"], "Yunnan");
    assert_eq!(lot["note"], "fresh this morning");
    assert_eq!(lot["status"], "consigned");
    assert_eq!(lot["day"], m.server.day.as_str());
    assert_eq!(lot["min_price"], "3.00", "the grower sees its own reserve: {lot}");
    let seen_by_buyer = get_lots(&mut b1).await;
    let l = seen_by_buyer.iter().find(|l| l["lot_id"] == lot_id).expect("a buyer sees all lots of the day");
    lot_has_no_reserve(l, "a buyer");
    let op_view = m.op_lot(lot_id).await;
    assert_eq!(op_view["min_price"], "3.00", "the operator sees the reserve: {op_view}");

    configure_fast_clock(&mut m.op, 1).await;
    let assigned = m.assign(lot_id, 1, "6.00").await;
    assert!(assigned["position"].as_u64().is_some());
    assert_eq!(m.op_lot(lot_id).await["status"], "queued");
    m.start_clock(1).await;

    let on_clock =
        m.feed.next_matching(|v| v["type"] == "lot_on_clock" && v["clock"] == 1, T).await.expect("lot_on_clock");
    check_fields(&on_clock, "lot_on_clock", &[("clock", Kind::Int), ("lot", Kind::Obj), ("start_price", Kind::Money)]);
    check_lot(&on_clock["lot"]);
    lot_has_no_reserve(&on_clock["lot"], "the public feed");
    assert_eq!(on_clock["lot"]["lot_id"], lot_id);
    assert_eq!(on_clock["start_price"], "6.00");

    let r1 = m.round_started(1).await;
    assert_eq!(r1["lot_id"], lot_id);
    assert_eq!(r1["round"], 1);
    assert_eq!(r1["start_price"], "6.00");
    assert_eq!(r1["step"], "0.01");
    assert_eq!(r1["tick_ms"], 10);
    assert_eq!(r1["remaining"], 10);

    // A live bid: the first valid one stops the clock at price(t_received).
    let award = b1.request(json!({"type": "bid", "clock": 1, "lot_id": lot_id, "round": 1, "containers": 3})).await;
    check_award_price(&award, &r1);
    let p1 = fen(&award["price"]);
    assert!(p1 >= 300, "never below the reserve: {award}");
    assert_eq!(award["clock"], 1);
    assert_eq!(award["lot_id"], lot_id);
    assert_eq!(award["round"], 1);
    assert_eq!(award["containers"], 3);
    assert_eq!(award["units"], 60, "units = containers × units_per_container: {award}");
    assert_eq!(fen(&award["amount"]), p1 * 60, "amount = price × units: {award}");
    assert_eq!(fen(&award["fee"]), clock_fee(3), "buyer fee 0.50 per container: {award}");

    let public = m.feed.next_matching(|v| v["type"] == "clock_award" && v["clock"] == 1, T).await.expect("clock_award");
    check_fields(
        &public,
        "clock_award",
        &[
            ("clock", Kind::Int),
            ("lot_id", Kind::Int),
            ("round", Kind::Int),
            ("price", Kind::Money),
            ("containers", Kind::Int),
            ("remaining", Kind::Int),
            ("ts", Kind::Ts),
        ],
    );
    assert_eq!(public["price"], award["price"]);
    assert_eq!(public["containers"], 3);
    assert_eq!(public["remaining"], 7);
    assert_eq!(public["ts"], award["ts"]);
    for key in ["buyer", "participant"] {
        assert!(public.get(key).is_none(), "buyers stay anonymous on the feed: {public}");
    }

    let sale = g1.next_of_type("lot_sale", T).await;
    check_fields(&sale, "lot_sale", LOT_SALE_FIELDS);
    assert_eq!(sale["lot_id"], lot_id);
    assert_eq!(sale["buyer"], "b1");
    assert_eq!(sale["price"], award["price"]);
    assert_eq!(sale["containers"], 3);
    assert_eq!(sale["amount"], award["amount"]);
    assert_eq!(fen(&sale["commission"]), commission(p1 * 60), "commission 5 % half-even: {sale}");

    // Round 2 restarts at min(start, award + restart_ticks × step).
    let r2 = m.round_started(1).await;
    assert_eq!(r2["lot_id"], lot_id);
    assert_eq!(r2["round"], 2);
    assert_eq!(fen(&r2["start_price"]), (p1 + 10).min(600), "round 2 start price: {r2}");
    assert_eq!(r2["remaining"], 7);

    // Under the minimum purchase: an error, and the clock runs on.
    let small = b2.request(json!({"type": "bid", "clock": 1, "lot_id": lot_id, "round": 2, "containers": 1})).await;
    assert_error(&small, "quantity_invalid");
    let award2 = b2.request(json!({"type": "bid", "clock": 1, "lot_id": lot_id, "round": 2, "containers": 2})).await;
    check_award_price(&award2, &r2);
    assert_eq!(award2["round"], 2);
    assert_eq!(award2["containers"], 2);
    let acct = get_account(&mut b2).await;
    assert_eq!(fen(&acct["exposure"]), fen(&award2["amount"]) + fen(&award2["fee"]), "exposure after an award: {acct}");

    // The operator voids b2's award while the lot is still on the clock.
    let voided = m.op.request(json!({"type": "void_award", "clock": 1, "lot_id": lot_id, "round": 2})).await;
    check_fields(&voided, "award_voided", &[("clock", Kind::Int), ("lot_id", Kind::Int), ("round", Kind::Int)]);
    assert_eq!(voided["round"], 2);
    let told = b2.next_of_type("award_voided", T).await;
    assert_eq!(told["lot_id"], lot_id, "{told}");
    assert_eq!(told["round"], 2, "{told}");
    let told_grower = g1.next_of_type("award_voided", T).await;
    assert_eq!(told_grower["lot_id"], lot_id, "the grower is told too: {told_grower}");
    let public_void = m.feed.next_matching(|v| v["type"] == "award_voided", T).await.expect("award_voided on the feed");
    check_fields(
        &public_void,
        "award_voided",
        &[
            ("clock", Kind::Int),
            ("lot_id", Kind::Int),
            ("round", Kind::Int),
            ("containers", Kind::Int),
            ("remaining", Kind::Int),
        ],
    );
    assert_eq!(public_void["containers"], 2);
    assert_eq!(public_void["remaining"], 7, "the containers return to the lot: {public_void}");
    let acct = get_account(&mut b2).await;
    assert_eq!(acct["exposure"], "0.00", "a voided award releases the buyer's exposure: {acct}");
    assert_eq!(acct["bought"], "0.00", "{acct}");

    // Nobody bids again: the rest goes unsold and the clock runs out of lots.
    let unsold =
        m.feed.next_matching(|v| v["type"] == "lot_unsold" && v["clock"] == 1, CLOCK_T).await.expect("lot_unsold");
    check_fields(
        &unsold,
        "lot_unsold",
        &[
            ("clock", Kind::Int),
            ("lot_id", Kind::Int),
            ("round", Kind::Int),
            ("remaining", Kind::Int),
            ("ts", Kind::Ts),
        ],
    );
    assert_eq!(unsold["lot_id"], lot_id);
    assert_eq!(unsold["remaining"], 7);
    m.feed
        .next_matching(|v| v["type"] == "clock_state" && v["clock"] == 1 && v["state"] == "idle", T)
        .await
        .expect("clock 1 idle");
    let final_lot = m.op_lot(lot_id).await;
    assert_eq!(final_lot["status"], "partly_sold", "{final_lot}");

    // Accounts (protocol section 8).
    let a1 = get_account(&mut b1).await;
    assert_eq!(a1["participant"], "b1");
    assert_eq!(a1["credit_limit"], "10000.00");
    assert_eq!(fen(&a1["bought"]), p1 * 60, "{a1}");
    assert_eq!(fen(&a1["fees"]), clock_fee(3), "{a1}");
    assert_eq!(fen(&a1["exposure"]), p1 * 60 + clock_fee(3), "exposure = unsettled purchases + fees: {a1}");
    assert_eq!(fen(&a1["available"]), 1_000_000 - p1 * 60 - clock_fee(3), "{a1}");
    let ag = get_account(&mut g1).await;
    assert_eq!(fen(&ag["sold"]), p1 * 60, "{ag}");

    // A bid for the finished round is too late.
    let late = b2.request(json!({"type": "bid", "clock": 1, "lot_id": lot_id, "round": 1, "containers": 2})).await;
    assert_error(&late, "too_late");

    // The lot keeps saying what was left of it, as lot_unsold did (7 of 10 containers): since
    // protocol v1.1 as `unsold`, while `remaining` is what may still be sold (nothing, it is over).
    assert_eq!(final_lot["unsold"], 7, "after lot_unsold {{remaining: 7}}, get_lots says: {final_lot}");
    assert_eq!((final_lot["sold"].as_u64(), final_lot["remaining"].as_u64()), (Some(3), Some(0)), "{final_lot}");

    // The morning shows in /metrics: every batch was synced (and timed) before its replies left.
    let (status, metrics) = http_get(m.server.addr, "/metrics").await;
    assert_eq!(status, 200, "{metrics}");
    let count = |name: &str| -> u64 {
        let line = metrics.lines().find(|l| l.starts_with(&format!("{name} "))).unwrap_or_else(|| panic!("no {name}"));
        line.rsplit(' ').next().unwrap().parse().unwrap_or_else(|e| panic!("{line}: {e}"))
    };
    let (syncs, outputs) = (count("huashi_journal_sync_seconds_count"), count("huashi_engine_outputs_total"));
    assert!(syncs > 0 && syncs <= outputs, "journal syncs {syncs} for {outputs} outputs (group commit):\n{metrics}");
    // Each engine reply's time, split into its stages, every stage counting the same replies:
    // the fan-out's (applied, synced, released) before it sends a reply, the sessions' (queued,
    // written, total) once the reply is written, which may be a moment after the client read
    // it; so the metrics are read again until the sessions' have caught up.
    let stages = |metrics: &str| {
        ["queued", "applied", "synced", "released", "written", "total"].map(|name| {
            let line = format!("huashi_reply_stage_seconds_count{{stage=\"{name}\"}} ");
            let found = metrics.lines().find_map(|l| l.strip_prefix(line.as_str()));
            found.unwrap_or_else(|| panic!("no {line}\n{metrics}")).parse::<u64>().expect("a count")
        })
    };
    let mut counts = stages(&metrics);
    for _ in 0..50 {
        if counts.iter().all(|&n| n == counts[1]) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        counts = stages(&http_get(m.server.addr, "/metrics").await.1);
    }
    assert!(counts[1] > 10, "the morning's replies were timed: {counts:?}");
    assert!(counts.iter().all(|&n| n == counts[1]), "queued, applied, synced, released, written, total: {counts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standing_bid_wins_at_its_max_price_and_an_unbid_lot_goes_unsold() {
    let mut m = Market::open().await;
    let mut g2 = m.participant("g2", &["grower"], None).await;
    let mut b1 = m.participant("b1", &["buyer"], Some("1000.00")).await;
    let mut b2 = m.participant("b2", &["buyer"], Some("1000.00")).await;

    let c = consign(&mut g2, lot_msg("LILY", "A1", 1, 1, "1.00")).await;
    let lot_c = c["lot_id"].as_u64().unwrap();
    let b = consign(&mut g2, lot_msg("TULIP", "A2", 10, 4, "1.00")).await;
    let lot_b = b["lot_id"].as_u64().unwrap();
    assert_ne!(lot_b, lot_c);

    let sb = b1.request(json!({"type": "standing_bid", "lot_id": lot_c, "max_price": "2.10", "containers": 1})).await;
    check_fields(
        &sb,
        "standing_bid_accepted",
        &[("lot_id", Kind::Int), ("max_price", Kind::Money), ("containers", Kind::Int)],
    );
    assert_eq!(sb["lot_id"], lot_c);
    assert_eq!(sb["max_price"], "2.10");
    assert_eq!(sb["containers"], 1);

    let sb2 = b2.request(json!({"type": "standing_bid", "lot_id": lot_b, "max_price": "1.10", "containers": 4})).await;
    assert_eq!(sb2["type"], "standing_bid_accepted", "{sb2}");
    let cancelled = b2.request(json!({"type": "cancel_standing_bid", "lot_id": lot_b})).await;
    check_fields(&cancelled, "standing_bid_cancelled", &[("lot_id", Kind::Int)]);
    assert_eq!(cancelled["lot_id"], lot_b);

    configure_fast_clock(&mut m.op, 2).await;
    let first = m.assign(lot_c, 2, "2.50").await;
    let second = m.assign(lot_b, 2, "1.20").await;
    assert!(second["position"].as_u64() > first["position"].as_u64(), "the supply line is in order: {first} {second}");
    m.start_clock(2).await;

    let r = m.round_started(2).await;
    assert_eq!(r["lot_id"], lot_c);
    let public =
        m.feed.next_matching(|v| v["type"] == "clock_award" && v["clock"] == 2, CLOCK_T).await.expect("clock_award");
    assert_eq!(public["lot_id"], lot_c);
    assert_eq!(public["price"], "2.10", "a standing bid wins when the price reaches its max_price: {public}");
    assert_eq!(public["remaining"], 0);

    let award = b1.next_of_type("award", T).await;
    check_award_price(&award, &r); // "at that price, at the tick time"
    assert_eq!(award["price"], "2.10");
    assert_eq!(award["lot_id"], lot_c);
    assert_eq!(award["containers"], 1);
    assert_eq!(award["units"], 1);
    assert_eq!(award["amount"], "2.10");
    assert_eq!(award["fee"], "0.50");

    let sale = g2.next_of_type("lot_sale", T).await;
    check_fields(&sale, "lot_sale", LOT_SALE_FIELDS);
    assert_eq!(sale["buyer"], "b1");
    assert_eq!(sale["amount"], "2.10");
    // 5 % of 2.10 is 0.105: half-even gives 0.10 (half-up would say 0.11).
    assert_eq!(sale["commission"], "0.10", "commission rounds half-even: {sale}");

    // The next lot: the cancelled standing bid must not trigger, nobody bids, it goes unsold.
    let rb = m.round_started(2).await;
    assert_eq!(rb["lot_id"], lot_b);
    assert_eq!(rb["start_price"], "1.20");
    let unsold =
        m.feed.next_matching(|v| v["type"] == "lot_unsold" && v["clock"] == 2, CLOCK_T).await.expect("lot_unsold");
    assert_eq!(unsold["lot_id"], lot_b);
    assert_eq!(unsold["round"], 1);
    assert_eq!(unsold["remaining"], 4);
    // price(t) ≥ min_price through tick 20 (1.20 − 0.20 = 1.00); only tick 21 would fall below.
    let earliest = rb["start_ts"].as_i64().unwrap() + 21 * 10_000;
    assert!(
        unsold["ts"].as_i64().unwrap() >= earliest,
        "a round ends only when the price would fall below the reserve: {unsold} {rb}"
    );
    for ev in &m.feed.events {
        if ev["type"] == "clock_award" {
            assert_ne!(ev["lot_id"], lot_b, "a cancelled standing bid won: {ev}");
        }
    }
    m.feed
        .next_matching(|v| v["type"] == "clock_state" && v["clock"] == 2 && v["state"] == "idle", T)
        .await
        .expect("idle");

    let lots = get_lots(&mut m.op).await;
    let status = |id: u64| lots.iter().find(|l| l["lot_id"] == id).map(|l| l["status"].clone()).unwrap();
    assert_eq!(status(lot_c), "sold");
    assert_eq!(status(lot_b), "unsold");
    let a2 = get_account(&mut b2).await;
    assert_eq!(a2["exposure"], "0.00", "{a2}");
    let a1 = get_account(&mut b1).await;
    assert_eq!(a1["exposure"], "2.60", "2.10 + 0.50 fee: {a1}");
    assert_eq!(a1["available"], "997.40", "{a1}");
}

/// Sends a new order and returns `order_accepted` (checked).
async fn new_order(c: &mut Client, coid: &str, side: &str, price: &str, qty: u64, tif: &str) -> Value {
    let reply = c
        .request(json!({"type": "new_order", "client_order_id": coid, "symbol": "ROSE-A", "side": side,
                        "order_type": "limit", "price": price, "quantity": qty, "time_in_force": tif}))
        .await;
    check_fields(&reply, "order_accepted", ORDER_ACCEPTED_FIELDS);
    assert_eq!(reply["client_order_id"], coid);
    assert_eq!(reply["symbol"], "ROSE-A");
    assert_eq!(reply["side"], side);
    assert_eq!(reply["order_type"], "limit");
    assert_eq!(reply["price"], price);
    assert_eq!(reply["quantity"], qty);
    assert_eq!(reply["time_in_force"], tif);
    assert_eq!(reply["post_only"], false);
    reply
}

async fn fill_of(c: &mut Client, coid: &str) -> Value {
    let id = coid.to_string();
    let fill = c
        .next_matching(move |v| v["type"] == "fill" && v["client_order_id"] == id.as_str(), T)
        .await
        .unwrap_or_else(|e| panic!("no fill for {coid}: {e}"));
    check_fields(&fill, "fill", FILL_FIELDS);
    assert!(["maker", "taker"].contains(&fill["liquidity"].as_str().unwrap()), "{fill}");
    fill
}

async fn done_of(c: &mut Client, coid: &str) -> Value {
    let id = coid.to_string();
    let done = c
        .next_matching(move |v| v["type"] == "order_done" && v["client_order_id"] == id.as_str(), T)
        .await
        .unwrap_or_else(|e| panic!("no order_done for {coid}: {e}"));
    check_fields(&done, "order_done", ORDER_DONE_FIELDS);
    done
}

async fn set_book(op: &mut Client, symbol: &str, state: &str) {
    let reply = op.request(json!({"type": "set_book_state", "symbol": symbol, "state": state})).await;
    check_fields(&reply, "book_state", &[("symbol", Kind::Str), ("state", Kind::Str)]);
    assert_eq!(reply["symbol"], symbol);
    assert_eq!(reply["state"], state);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn book_uncrosses_at_one_price_then_trades_continuously() {
    let mut m = Market::open().await;
    let mut g1 = m.participant("g1", &["grower"], None).await;
    let mut g2 = m.participant("g2", &["grower"], None).await;
    let mut b1 = m.participant("b1", &["buyer"], Some("10000.00")).await;
    let mut b2 = m.participant("b2", &["buyer"], Some("10000.00")).await;
    let mut gb = m.participant("gb", &["grower", "buyer"], Some("1000.00")).await;

    set_book(&mut m.op, "ROSE-A", "pre_open").await;
    let ev = m.feed.next_of_type("book_state", T).await;
    assert_eq!(ev["symbol"], "ROSE-A");
    assert_eq!(ev["state"], "pre_open");

    new_order(&mut g1, "g1-s1", "sell", "2.00", 100, "gtc").await;
    new_order(&mut g2, "g2-s1", "sell", "2.05", 50, "gtc").await;
    let b1_accepted = new_order(&mut b1, "b1-b1", "buy", "2.10", 80, "gtc").await;
    new_order(&mut b2, "b2-b1", "buy", "1.95", 40, "day").await;
    // Pre-open: orders rest, nothing trades; the feed shows the levels.
    for (side, price, qty) in [("sell", "2.00", 100), ("sell", "2.05", 50), ("buy", "2.10", 80), ("buy", "1.95", 40)] {
        let ev = m
            .feed
            .next_matching(|v| v["type"] == "book" && v["side"] == side && v["price"] == price, T)
            .await
            .unwrap_or_else(|| panic!("no book event for {side} {price}"));
        check_fields(
            &ev,
            "book",
            &[("symbol", Kind::Str), ("side", Kind::Str), ("price", Kind::Money), ("quantity", Kind::Int)],
        );
        assert_eq!(ev["quantity"], qty, "{ev}");
    }
    assert!(b1.try_next_of_type("fill", Duration::from_millis(300)).await.is_none(), "nothing trades in pre_open");
    let orders = get_orders(&mut b1).await;
    assert_eq!(orders.len(), 1, "{orders:?}");
    assert_eq!(orders[0]["client_order_id"], "b1-b1");
    assert_eq!(orders[0]["price"], "2.10", "{orders:?}");
    assert_eq!(
        orders[0]["ts"], b1_accepted["ts"],
        "an open order's ts is when it was accepted: {orders:?} vs {b1_accepted}"
    );
    let a = get_account(&mut b1).await;
    assert_eq!(a["exposure"], "168.00", "a resting buy reserves price × quantity: {a}");

    // Opening uncrosses: 80 can trade anywhere in 2.00..=2.10; least imbalance picks 2.00.
    set_book(&mut m.op, "ROSE-A", "open").await;
    let f = fill_of(&mut b1, "b1-b1").await;
    assert_eq!(f["side"], "buy");
    assert_eq!(f["price"], "2.00", "uncross price: {f}");
    assert_eq!(f["quantity"], 80);
    assert_eq!(f["leaves"], 0);
    assert_eq!(done_of(&mut b1, "b1-b1").await["reason"], "filled");
    let f = fill_of(&mut g1, "g1-s1").await;
    assert_eq!(f["side"], "sell");
    assert_eq!(f["price"], "2.00");
    assert_eq!(f["quantity"], 80);
    assert_eq!(f["leaves"], 20);
    let trade = m.feed.next_of_type("trade", T).await;
    check_fields(
        &trade,
        "trade",
        &[
            ("symbol", Kind::Str),
            ("trade_id", Kind::Any),
            ("price", Kind::Money),
            ("quantity", Kind::Int),
            ("aggressor", Kind::Any),
            ("ts", Kind::Ts),
        ],
    );
    assert_eq!(trade["price"], "2.00");
    assert_eq!(trade["quantity"], 80);
    let a = get_account(&mut b1).await;
    assert_eq!(a["bought"], "160.00", "{a}");
    assert_eq!(a["fees"], "0.16", "0.1 % of 160.00: {a}");
    assert_eq!(a["exposure"], "160.16", "{a}");

    // Continuous: an IOC buy sweeps 20 @ 2.00 and 10 @ 2.05.
    let acc = b2
        .request(json!({"type": "new_order", "client_order_id": "b2-b2", "symbol": "ROSE-A", "side": "buy",
                        "order_type": "limit", "price": "2.05", "quantity": 30, "time_in_force": "ioc"}))
        .await;
    check_fields(&acc, "order_accepted", ORDER_ACCEPTED_FIELDS);
    let f1 = fill_of(&mut b2, "b2-b2").await;
    assert_eq!(
        (f1["price"].as_str(), f1["quantity"].as_u64(), f1["leaves"].as_u64()),
        (Some("2.00"), Some(20), Some(10)),
        "{f1}"
    );
    assert_eq!(f1["liquidity"], "taker");
    let f2 = fill_of(&mut b2, "b2-b2").await;
    assert_eq!(
        (f2["price"].as_str(), f2["quantity"].as_u64(), f2["leaves"].as_u64()),
        (Some("2.05"), Some(10), Some(0)),
        "{f2}"
    );
    assert_eq!(done_of(&mut b2, "b2-b2").await["reason"], "filled");
    let mf = fill_of(&mut g1, "g1-s1").await;
    assert_eq!((mf["quantity"].as_u64(), mf["leaves"].as_u64()), (Some(20), Some(0)), "{mf}");
    assert_eq!(mf["liquidity"], "maker");
    assert_eq!(done_of(&mut g1, "g1-s1").await["reason"], "filled");
    let mf = fill_of(&mut g2, "g2-s1").await;
    assert_eq!(
        (mf["price"].as_str(), mf["quantity"].as_u64(), mf["leaves"].as_u64()),
        (Some("2.05"), Some(10), Some(40)),
        "{mf}"
    );
    let t1 = m.feed.next_of_type("trade", T).await;
    let t2 = m.feed.next_of_type("trade", T).await;
    assert_eq!((t1["price"].as_str(), t1["quantity"].as_u64()), (Some("2.00"), Some(20)), "{t1}");
    assert_eq!((t2["price"].as_str(), t2["quantity"].as_u64()), (Some("2.05"), Some(10)), "{t2}");
    assert_eq!(t1["aggressor"], "buy", "{t1}");

    // post_only that would trade is rejected; a price outside the 20 % band (ref 2.05) too.
    let po = b1
        .request(json!({"type": "new_order", "client_order_id": "b1-po", "symbol": "ROSE-A", "side": "buy",
                        "order_type": "limit", "price": "2.05", "quantity": 1, "time_in_force": "gtc", "post_only": true}))
        .await;
    assert_error(&po, "invalid_state");
    let band = b1
        .request(json!({"type": "new_order", "client_order_id": "b1-band", "symbol": "ROSE-A", "side": "buy",
                        "order_type": "limit", "price": "2.50", "quantity": 1, "time_in_force": "gtc"}))
        .await;
    assert_error(&band, "price_invalid");
    // FOK that cannot fill in full: cancelled without fills.
    let fok = b1
        .request(json!({"type": "new_order", "client_order_id": "b1-fok", "symbol": "ROSE-A", "side": "buy",
                        "order_type": "limit", "price": "2.05", "quantity": 1000, "time_in_force": "fok"}))
        .await;
    assert_eq!(fok["type"], "order_accepted", "{fok}");
    assert_eq!(done_of(&mut b1, "b1-fok").await["reason"], "cancelled");

    // cancel_order; the reservation goes with it.
    let done = b2.request(json!({"type": "cancel_order", "client_order_id": "b2-b1"})).await;
    check_fields(&done, "order_done", ORDER_DONE_FIELDS);
    assert_eq!(done["reason"], "cancelled");
    assert_eq!(done["client_order_id"], "b2-b1");
    assert!(get_orders(&mut b2).await.is_empty());
    let a = get_account(&mut b2).await;
    assert_eq!(a["bought"], "60.50", "{a}");
    assert_eq!(a["fees"], "0.06", "0.04 + 0.02 (0.0205 half-even): {a}");
    assert_eq!(a["exposure"], "60.56", "no reservation left after the cancel: {a}");

    // amend: a lower quantity, then a new price; the feed's level totals follow.
    let am = g2.request(json!({"type": "amend_order", "client_order_id": "g2-s1", "quantity": 30})).await;
    assert_eq!(am["type"], "order_amended", "{am}");
    assert_eq!(am["client_order_id"], "g2-s1", "{am}");
    m.feed
        .next_matching(|v| v["type"] == "book" && v["price"] == "2.05" && v["quantity"] == 30, T)
        .await
        .expect("the amended level's new total on the feed");
    let am = g2.request(json!({"type": "amend_order", "client_order_id": "g2-s1", "price": "2.06"})).await;
    assert_eq!(am["type"], "order_amended", "{am}");
    m.feed
        .next_matching(|v| v["type"] == "book" && v["price"] == "2.05" && v["quantity"] == 0, T)
        .await
        .expect("the old level removed (quantity 0) on the feed");
    m.feed
        .next_matching(|v| v["type"] == "book" && v["price"] == "2.06" && v["quantity"] == 30, T)
        .await
        .expect("the new level on the feed");

    new_order(&mut g2, "g2-s2", "sell", "2.10", 5, "gtc").await;
    assert_eq!(get_orders(&mut g2).await.len(), 2);
    let all = g2.request(json!({"type": "cancel_all", "symbol": "ROSE-A"})).await;
    check_fields(&all, "cancelled", &[("count", Kind::Int)]);
    assert_eq!(all["count"], 2);
    for price in ["2.06", "2.10"] {
        m.feed
            .next_matching(
                |v| v["type"] == "book" && v["side"] == "sell" && v["price"] == price && v["quantity"] == 0,
                T,
            )
            .await
            .unwrap_or_else(|| panic!("cancel_all must publish the removal of level {price} (quantity 0) on the feed"));
    }
    assert!(get_orders(&mut g2).await.is_empty());

    // Self-trade prevention: the resting order of the same participant is cancelled first.
    new_order(&mut gb, "gb-s", "sell", "2.02", 10, "gtc").await;
    new_order(&mut gb, "gb-b", "buy", "2.02", 10, "gtc").await;
    let st = done_of(&mut gb, "gb-s").await;
    assert_eq!(st["reason"], "self_trade", "{st}");
    assert!(gb.try_next_of_type("fill", Duration::from_millis(200)).await.is_none(), "a self-trade must not print");
    let open = get_orders(&mut gb).await;
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!(open[0]["client_order_id"], "gb-b");

    // A fresh subscriber's snapshot shows the book as it is.
    new_order(&mut g2, "g2-s3", "sell", "2.07", 7, "gtc").await;
    let fresh = m.server.feed().await;
    let book = fresh.snapshot["books"].as_array().unwrap().iter().find(|b| b["symbol"] == "ROSE-A").unwrap().clone();
    assert_eq!(book["state"], "open");
    assert_eq!(book["asks"], json!([["2.07", 7]]), "{book}");
    assert_eq!(book["bids"], json!([["2.02", 10]]), "{book}");
    assert_eq!(fresh.snapshot["seq"].as_u64().unwrap(), {
        m.feed.drain_quiet(Duration::from_millis(300)).await;
        m.feed.last_seq
    });

    let ga = get_account(&mut g1).await;
    assert_eq!(ga["sold"], "200.00", "{ga}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_of_day_settles_every_trade_and_conserves_money() {
    let mut m = Market::open().await;
    let day = m.server.day.clone();
    let mut g1 = m.participant("g1", &["grower"], None).await;
    let mut b1 = m.participant("b1", &["buyer"], Some("1000.00")).await;
    let mut b2 = m.participant("b2", &["buyer"], Some("1000.00")).await;

    // A clock sale by standing bid (deterministic price): 2 containers × 5 stems at 2.30.
    let lot = consign(&mut g1, lot_msg("ROSE", "A1", 5, 2, "1.00")).await;
    let lot_id = lot["lot_id"].as_u64().unwrap();
    b1.request(json!({"type": "standing_bid", "lot_id": lot_id, "max_price": "2.30", "containers": 2})).await;
    configure_fast_clock(&mut m.op, 1).await;
    m.assign(lot_id, 1, "2.60").await;
    m.start_clock(1).await;
    let award = b1.next_of_type("award", CLOCK_T).await;
    assert_eq!(award["price"], "2.30", "{award}");
    assert_eq!(award["amount"], "23.00");
    assert_eq!(award["fee"], "1.00");
    m.feed
        .next_matching(|v| v["type"] == "clock_state" && v["clock"] == 1 && v["state"] == "idle", CLOCK_T)
        .await
        .expect("idle");

    // A book trade: 10 @ 2.05 (fee 0.0205 → 0.02, commission 1.025 → 1.02), plus resting orders.
    set_book(&mut m.op, "ROSE-A", "open").await;
    new_order(&mut g1, "s1", "sell", "2.05", 10, "gtc").await;
    new_order(&mut b2, "x1", "buy", "2.05", 10, "gtc").await;
    assert_eq!(done_of(&mut b2, "x1").await["reason"], "filled");
    new_order(&mut b2, "day1", "buy", "1.90", 5, "day").await;
    new_order(&mut b2, "gtc1", "buy", "1.91", 5, "gtc").await;

    // Not settleable while a book is open.
    let early = m.op.request(json!({"type": "end_of_day"})).await;
    assert_error(&early, "invalid_state");
    set_book(&mut m.op, "ROSE-A", "closed").await;

    let settled = m.op.request(json!({"type": "end_of_day"})).await;
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
    assert_eq!(settled["day"], day.as_str());
    assert!(settled["next_day"].as_str().unwrap() > day.as_str(), "{settled}");
    assert_eq!(settled["trades"], 2, "one award and one book trade: {settled}");
    assert_eq!(settled["turnover"], "43.50", "23.00 + 20.50: {settled}");
    // Commissions 1.15 (23.00 × 5 %) + 1.02, buyer fees 1.00 + 0.02.
    assert_eq!(settled["fees"], "3.19", "{settled}");

    // The day order expired; the gtc one lives on.
    assert_eq!(done_of(&mut b2, "day1").await["reason"], "expired");
    let open = get_orders(&mut b2).await;
    assert_eq!(open.iter().map(|o| o["client_order_id"].clone()).collect::<Vec<_>>(), vec![json!("gtc1")], "{open:?}");

    let ev = m.feed.next_of_type("day_settled", T).await;
    assert_eq!(ev["day"], day.as_str());
    assert_eq!(ev["next_day"], settled["next_day"]);
    // Statements: net = sold − commission − bought − fees; all nets + market fees = 0.
    let mut nets = 0i64;
    for (who, c) in [("g1", &mut g1), ("b1", &mut b1), ("b2", &mut b2)] {
        let s = c.request(json!({"type": "get_statement", "day": day})).await;
        check_statement_shape(&s);
        assert_eq!(s["participant"], who);
        let sum = |side: &str, field: &str| -> i64 {
            s["lines"].as_array().unwrap().iter().filter(|l| l["side"] == side).map(|l| fen(&l[field])).sum()
        };
        assert_eq!(fen(&s["total_sold"]), sum("sell", "amount"), "total_sold = Σ sale lines: {s}");
        assert_eq!(fen(&s["commission"]), sum("sell", "fee"), "commission = Σ sale line fees: {s}");
        assert_eq!(fen(&s["total_bought"]), sum("buy", "amount"), "total_bought = Σ purchase lines: {s}");
        assert_eq!(fen(&s["fees"]), sum("buy", "fee"), "fees = Σ purchase line fees: {s}");
        let net = fen(&s["total_sold"]) - fen(&s["commission"]) - fen(&s["total_bought"]) - fen(&s["fees"]);
        assert_eq!(fen(&s["net"]), net, "net = total_sold − commission − total_bought − fees: {s}");
        nets += net;
        match who {
            "g1" => {
                assert_eq!(s["total_sold"], "43.50", "{s}");
                assert_eq!(s["commission"], "2.17", "1.15 + 1.02: {s}");
                assert_eq!(s["net"], "41.33", "{s}");
                assert_eq!(s["lines"].as_array().unwrap().len(), 2, "{s}");
            }
            "b1" => {
                assert_eq!(s["net"], "-24.00", "{s}");
                let line = &s["lines"][0];
                assert_eq!(line["kind"], "clock");
                assert_eq!(line["ref"], lot_id);
                assert_eq!(line["product"], "ROSE");
                assert_eq!(line["side"], "buy");
                assert_eq!(line["units"], 10);
                assert_eq!(line["amount"], "23.00");
                assert_eq!(line["fee"], "1.00");
            }
            _ => {
                assert_eq!(s["net"], "-20.52", "{s}");
                assert_eq!(s["lines"][0]["kind"], "book");
            }
        }
    }
    assert_eq!(nets + fen(&settled["fees"]), 0, "money is conserved: Σ net + fees = 0");
    // The operator may read anyone's statement.
    let other = m.op.request(json!({"type": "get_statement", "day": day, "participant": "b1"})).await;
    assert_eq!(other["type"], "statement", "{other}");
    assert_eq!(other["participant"], "b1");

    // Exposure from settled trades is released; the gtc order's reservation stays.
    let a = get_account(&mut b1).await;
    assert_eq!(a["exposure"], "0.00", "{a}");
    assert_eq!(a["available"], "1000.00", "{a}");
    let a = get_account(&mut b2).await;
    assert_eq!(a["exposure"], "9.55", "only the gtc reservation 1.91 × 5: {a}");
    let health = m.server.health().await;
    assert_eq!(health["day"], settled["next_day"], "{health}");

    // The index closes on the feed: the first trading day of a data directory at 1000.00.
    let closes: Vec<Value> = m
        .feed
        .drain_quiet(Duration::from_millis(500))
        .await
        .into_iter()
        .chain(m.feed.events.iter().cloned())
        .filter(|v| v["type"] == "index" && v["final"] == true)
        .collect();
    let sfci = closes.iter().find(|v| v["code"] == "SFCI").unwrap_or_else(|| {
        let tail: Vec<&Value> = m.feed.events.iter().rev().take(12).collect();
        panic!("no final SFCI index event on the feed after end_of_day; last events: {tail:?}")
    });
    check_fields(
        sfci,
        "index",
        &[("code", Kind::Str), ("value", Kind::Any), ("day", Kind::Day), ("ts", Kind::Ts), ("final", Kind::Bool)],
    );
    let value: f64 = match &sfci["value"] {
        Value::String(s) => s.parse().unwrap(),
        v => v.as_f64().unwrap(),
    };
    assert_eq!(value, 1000.0, "the first trading day closes at 1000.00: {sfci}");
    assert!(
        closes.iter().all(|v| v["code"] != "SFCI-POT"),
        "no potted plant traded: SFCI-POT is not published yet: {closes:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_on_disconnect_cancels_open_orders_when_the_last_such_session_drops() {
    let mut m = Market::open().await;
    let token = register(&mut m.op, "g1", &["grower"], None).await;
    set_book(&mut m.op, "ROSE-A", "open").await;
    let mut first = m.server.connect("/ws").await;
    let r = first.request(json!({"type": "login", "token": token, "cancel_on_disconnect": true})).await;
    assert_eq!(r["type"], "logged_in", "{r}");
    let mut second = m.server.connect("/ws").await;
    let r = second.request(json!({"type": "login", "token": token, "cancel_on_disconnect": true})).await;
    assert_eq!(r["type"], "logged_in", "{r}");
    new_order(&mut first, "c1", "sell", "2.00", 10, "gtc").await;
    new_order(&mut second, "c2", "sell", "2.01", 10, "gtc").await;

    // One of its sessions drops: the other is still there, the orders stay.
    first.close().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(get_orders(&mut second).await.len(), 2, "orders must stay while a cancel_on_disconnect session lives");

    // The last one drops: both are cancelled, and the feed shows the levels go.
    second.close().await;
    for price in ["2.00", "2.01"] {
        m.feed
            .next_matching(|v| v["type"] == "book" && v["price"] == price && v["quantity"] == 0, T)
            .await
            .unwrap_or_else(|| panic!("level {price} not removed after the last session dropped"));
    }
    let mut third = m.server.session(&token).await;
    assert!(get_orders(&mut third).await.is_empty());
}
