//! After the sale, end to end (issue 15, protocol section 12), against the real binary over real
//! sockets: a clock award, a presale purchase and a book fill each become a dispatch line with the
//! buyer's destination; a voided award's line is gone; logistics moves lines (never back) and a
//! warm reading raises the alarm to the buyer live; everything survives `kill -9` and replays to
//! the same state hash; complaints are the buyer's own, within what it bought, until the end of
//! the next trading day; the grower's quality index is what the test works out from the
//! complaints it filed and the containers it saw sold.

use huashi_tests::*;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;

const CLOCK_T: Duration = Duration::from_secs(40);

async fn ok(c: &mut Client, msg: Value, ty: &str) -> Value {
    let reply = c.request(msg.clone()).await;
    assert_eq!(reply["type"], ty, "{msg} → {reply}");
    reply
}

fn refused(reply: &Value, code: &str, mentions: &str) {
    assert_eq!((reply["type"].as_str(), reply["code"].as_str()), (Some("error"), Some(code)), "{reply}");
    let message = reply["message"].as_str().unwrap_or_default();
    assert!(message.contains(mentions), "the message names {mentions:?}: {reply}");
}

/// `ref → line` of a `dispatch` reply, checking each line's shape.
fn by_ref(dispatch: &Value) -> BTreeMap<String, Value> {
    dispatch["lines"]
        .as_array()
        .unwrap_or_else(|| panic!("dispatch.lines: {dispatch}"))
        .iter()
        .map(|line| {
            check_object(
                line,
                "dispatch line",
                &[
                    ("ref", Kind::Str),
                    ("kind", Kind::Str),
                    ("buyer", Kind::Str),
                    ("units", Kind::Int),
                    ("destination", Kind::Str),
                    ("status", Kind::Str),
                    ("temperature_alarm", Kind::Bool),
                    ("updated_ts", Kind::Int),
                ],
            );
            (line["ref"].as_str().unwrap().to_string(), line.clone())
        })
        .collect()
}

async fn dispatch_of(c: &mut Client, msg: Value) -> BTreeMap<String, Value> {
    by_ref(&ok(c, msg, "dispatch").await)
}

/// The volatile parts of a line (when it moved) aside, what a restart must give back.
fn lasting(lines: &BTreeMap<String, Value>) -> BTreeMap<String, Value> {
    lines
        .iter()
        .map(|(r, l)| {
            (
                r.clone(),
                json!([
                    l["status"],
                    l["temperature_c"],
                    l["temperature_alarm"],
                    l["location"],
                    l["destination"],
                    l["units"]
                ]),
            )
        })
        .collect()
}

/// The quality index as protocol section 12 defines it, in hundredths, half-even.
fn qi(sold: i128, accepted: i128) -> String {
    money(div_half_even((sold - accepted) * 10_000, sold) as i64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purchases_move_through_the_cold_chain_and_complaints_correct_the_grower_s_quality() {
    let mut server = Server::start(ServerOpts::default().clocks(1));
    let day1 = server.day.clone();
    let mut op = server.operator().await;
    let mut feed = server.feed().await;
    let mut tokens = BTreeMap::new();
    for (id, role, credit) in [
        ("g1", "grower", None),
        ("b1", "buyer", Some("5000.00")),
        ("b2", "buyer", Some("5000.00")),
        ("lg1", "logistics", None),
    ] {
        tokens.insert(id, register(&mut op, id, &[role], credit).await);
    }
    let mut s: BTreeMap<&str, Client> = BTreeMap::new();
    for (id, token) in &tokens {
        s.insert(id, server.session(token).await);
    }
    let logged = s.get_mut("lg1").unwrap().request(json!({"type": "get_account"})).await;
    assert_eq!(logged["type"], "account", "a logistics participant logs in and reads: {logged}");

    // The cold chain as a new market starts it, in the products.
    let products = ok(&mut op, json!({"type": "get_products"}), "products").await;
    let max_of = |code: &str| {
        products["products"].as_array().unwrap().iter().find(|p| p["code"] == code).unwrap()["max_temperature_c"]
            .clone()
    };
    assert_eq!(
        (max_of("ROSE"), max_of("PHALAENOPSIS"), max_of("EUCALYPTUS")),
        (json!("8.00"), json!("15.00"), json!("15.00")),
        "{products}"
    );
    let set = ok(
        &mut op,
        json!({"type": "set_cold_chain", "category": "other", "max_temperature_c": "12"}),
        "cold_chain_set",
    )
    .await;
    assert_eq!(set["max_temperature_c"], "12.00", "{set}");
    refused(
        &s.get_mut("b1")
            .unwrap()
            .request(json!({"type": "set_cold_chain", "category": "other", "max_temperature_c": "30"}))
            .await,
        "forbidden",
        "operator",
    );
    refused(
        &op.request(json!({"type": "set_cold_chain", "category": "cut_flower", "max_temperature_c": 8})).await,
        "bad_request",
        "max_temperature_c",
    );

    // b1 collects at dock D7; a destination is a pickup or a delivery.
    let b1 = s.get_mut("b1").unwrap();
    refused(
        &b1.request(json!({"type": "set_destination", "destination": "the back door"})).await,
        "bad_request",
        "destination",
    );
    let dest = ok(b1, json!({"type": "set_destination", "destination": "pickup:D7"}), "destination_set").await;
    assert_eq!((dest["day"].as_str(), dest["destination"].as_str()), (Some(day1.as_str()), Some("pickup:D7")));

    // A presale: b2 buys 2 of g1's small lot.
    let small = consign(s.get_mut("g1").unwrap(), lot_msg("ROSE", "A2", 10, 4, "1.00")).await;
    let small_id = small["lot_id"].as_u64().unwrap();
    ok(
        s.get_mut("g1").unwrap(),
        json!({"type": "offer_presale", "lot_id": small_id, "price": "1.80", "containers": 2}),
        "presale_offered",
    )
    .await;
    ok(s.get_mut("b2").unwrap(), json!({"type": "buy_presale", "lot_id": small_id, "containers": 2}), "presale_bought")
        .await;

    // The clock: b1 wins 2, the operator voids it in the pause; b1 wins 2 again, b2 the last 4.
    let lot = consign(s.get_mut("g1").unwrap(), lot_msg("ROSE", "A1", 10, 6, "1.00")).await;
    let lot_id = lot["lot_id"].as_u64().unwrap();
    ok(&mut op, json!({"type": "configure_clock", "clock": 1, "step": "0.01", "tick_ms": 10, "pre_roll_ms": 50, "pause_ms": 1500, "restart_ticks": 10, "multi_buy_ms": 0}), "clock_configured").await;
    ok(&mut op, json!({"type": "assign_lot", "lot_id": lot_id, "clock": 1, "start_price": "3.00"}), "lot_assigned")
        .await;
    ok(&mut op, json!({"type": "start_clock", "clock": 1}), "clock_state").await;
    let buy = |round: &Value, containers: u64| json!({"type": "bid", "clock": 1, "lot_id": lot_id, "round": round, "containers": containers});
    let r1 =
        feed.next_matching(|v| v["type"] == "clock_started" && v["lot_id"] == lot_id, CLOCK_T).await.expect("round 1");
    ok(s.get_mut("b1").unwrap(), buy(&r1["round"], 2), "award").await;
    let pending = dispatch_of(s.get_mut("b1").unwrap(), json!({"type": "get_dispatch"})).await;
    let first = format!("clock:{lot_id}:{}:1", r1["round"]);
    assert!(pending.contains_key(&first), "the award is a line at once, its lot still on the clock: {pending:?}");
    ok(
        &mut op,
        json!({"type": "void_award", "clock": 1, "lot_id": lot_id, "round": r1["round"], "buyer": "b1"}),
        "award_voided",
    )
    .await;
    let after_void = dispatch_of(s.get_mut("b1").unwrap(), json!({"type": "get_dispatch"})).await;
    assert!(!after_void.contains_key(&first), "a voided award's line is gone: {after_void:?}");
    let r2 = feed
        .next_matching(|v| v["type"] == "clock_started" && v["lot_id"] == lot_id && v["round"] != r1["round"], CLOCK_T)
        .await
        .expect("round 2");
    let won = ok(s.get_mut("b1").unwrap(), buy(&r2["round"], 2), "award").await;
    let r3 = feed
        .next_matching(
            |v| {
                v["type"] == "clock_started"
                    && v["lot_id"] == lot_id
                    && v["round"] != r2["round"]
                    && v["round"] != r1["round"]
            },
            CLOCK_T,
        )
        .await
        .expect("round 3");
    ok(s.get_mut("b2").unwrap(), buy(&r3["round"], 4), "award").await;
    feed.next_matching(|v| v["type"] == "clock_state" && v["state"] == "idle", CLOCK_T)
        .await
        .expect("the lot is sold out");
    let b1_clock = format!("clock:{lot_id}:{}:1", r2["round"]);
    let b2_clock = format!("clock:{lot_id}:{}:1", r3["round"]);

    // A book fill: g1 sells 30 ROSE-A at 1.00, b1 takes 12.
    ok(&mut op, json!({"type": "set_book_state", "symbol": "ROSE-A", "state": "open"}), "book_state").await;
    let order = |coid: &str, side: &str, qty: u64| json!({"type": "new_order", "client_order_id": coid, "symbol": "ROSE-A", "side": side, "order_type": "limit", "price": "1.00", "quantity": qty, "time_in_force": "day"});
    ok(s.get_mut("g1").unwrap(), order("s1", "sell", 30), "order_accepted").await;
    ok(s.get_mut("b1").unwrap(), order("p1", "buy", 12), "order_accepted").await;
    let fill = s
        .get_mut("b1")
        .unwrap()
        .next_matching(|v| v["type"] == "fill" && v["client_order_id"] == "p1", REPLY_TIMEOUT)
        .await
        .unwrap();
    let book_ref = format!("book:{}", fill["trade_id"]);

    // Each buyer's lines; the operator's and logistics' are everyone's.
    let mine = dispatch_of(s.get_mut("b1").unwrap(), json!({"type": "get_dispatch"})).await;
    assert_eq!(mine.keys().cloned().collect::<Vec<_>>(), {
        let mut want = vec![b1_clock.clone(), book_ref.clone()];
        want.sort();
        want
    });
    let line = &mine[&b1_clock];
    assert_eq!(
        (line["kind"].as_str(), line["lot_id"].as_u64(), line["product"].as_str(), line["grade"].as_str()),
        (Some("clock"), Some(lot_id), Some("ROSE"), Some("A1")),
        "{line}"
    );
    assert_eq!(
        (line["containers"].as_u64(), line["units"].as_u64(), line["status"].as_str()),
        (Some(2), Some(20), Some("awaiting")),
        "{line}"
    );
    assert_eq!(
        (line["destination"].as_str(), line["buyer"].as_str(), line["seat"].clone()),
        (Some("pickup:D7"), Some("b1"), Value::Null),
        "{line}"
    );
    assert_eq!(line["updated_ts"], won["ts"], "an awaiting line dates from its award: {line}");
    let book = &mine[&book_ref];
    assert_eq!(
        (book["kind"].as_str(), book["containers"].clone(), book["units"].as_u64(), book["grade"].clone()),
        (Some("book"), Value::Null, Some(12), Value::Null),
        "{book}"
    );
    let theirs = dispatch_of(s.get_mut("b2").unwrap(), json!({"type": "get_dispatch"})).await;
    assert_eq!(theirs.keys().cloned().collect::<Vec<_>>(), vec![b2_clock.clone(), format!("presale:{small_id}:1")]);
    assert_eq!(theirs[&b2_clock]["destination"], "", "b2 set no destination");
    refused(
        &s.get_mut("b2").unwrap().request(json!({"type": "get_dispatch", "buyer": "b1"})).await,
        "forbidden",
        "own",
    );
    refused(&s.get_mut("g1").unwrap().request(json!({"type": "get_dispatch"})).await, "forbidden", "role");
    let all = dispatch_of(s.get_mut("lg1").unwrap(), json!({"type": "get_dispatch"})).await;
    assert_eq!(all.len(), 4, "{all:?}");
    assert_eq!(dispatch_of(&mut op, json!({"type": "get_dispatch", "buyer": "b2"})).await, theirs);

    // Logistics moves b1's clock line; b1 sees it live; never back; a warm reading alarms.
    let lg = s.get_mut("lg1").unwrap();
    let moved = ok(lg, json!({"type": "update_dispatch", "ref": b1_clock, "status": "picked", "temperature_c": "6.5", "location": "hall 3"}), "dispatch_updated").await;
    assert_eq!(
        (
            moved["status"].as_str(),
            moved["temperature_c"].as_str(),
            moved["location"].as_str(),
            moved["temperature_alarm"].as_bool()
        ),
        (Some("picked"), Some("6.50"), Some("hall 3"), Some(false)),
        "{moved}"
    );
    let live =
        s.get_mut("b1").unwrap().next_matching(|v| v["type"] == "dispatch_updated", REPLY_TIMEOUT).await.unwrap();
    assert_eq!(live["status"], "picked", "the buyer sees its line move: {live}");
    let lg = s.get_mut("lg1").unwrap();
    refused(
        &lg.request(json!({"type": "update_dispatch", "ref": b1_clock, "status": "awaiting"})).await,
        "invalid_state",
        "never goes back",
    );
    refused(
        &lg.request(json!({"type": "update_dispatch", "ref": b1_clock, "status": "moving"})).await,
        "bad_request",
        "status",
    );
    refused(
        &lg.request(json!({"type": "update_dispatch", "ref": "clock:x", "status": "loaded"})).await,
        "bad_request",
        "ref",
    );
    refused(
        &lg.request(json!({"type": "update_dispatch", "ref": "book:999999", "status": "loaded"})).await,
        "not_found",
        "book:999999",
    );
    let warm = ok(lg, json!({"type": "update_dispatch", "ref": b1_clock, "status": "cold_store", "temperature_c": "9.5", "location": "cold store 2"}), "dispatch_updated").await;
    assert_eq!(warm["temperature_alarm"], true, "9.5 °C is above the cut-flower maximum: {warm}");
    let alarm =
        s.get_mut("b1").unwrap().next_matching(|v| v["type"] == "temperature_alarm", REPLY_TIMEOUT).await.unwrap();
    assert_eq!(
        (alarm["ref"].as_str(), alarm["temperature_c"].as_str(), alarm["max_temperature_c"].as_str()),
        (Some(b1_clock.as_str()), Some("9.50"), Some("8.00")),
        "{alarm}"
    );
    let cool = ok(
        s.get_mut("lg1").unwrap(),
        json!({"type": "update_dispatch", "ref": b1_clock, "status": "loaded", "temperature_c": "4"}),
        "dispatch_updated",
    )
    .await;
    assert_eq!(cool["temperature_alarm"], true, "an alarm stays: {cool}");
    refused(
        &s.get_mut("b1")
            .unwrap()
            .request(json!({"type": "update_dispatch", "ref": b1_clock, "status": "delivered"}))
            .await,
        "forbidden",
        "logistics",
    );
    ok(
        &mut op,
        json!({"type": "update_dispatch", "ref": format!("presale:{small_id}:1"), "status": "delivered"}),
        "dispatch_updated",
    )
    .await;

    // The lot's public trace: each step with the reading taken then (none: null), no buyer.
    let (status, trace) = http_get(server.addr, &format!("/api/lots/{lot_id}")).await;
    assert_eq!(status, 200, "{trace}");
    assert!(!trace.contains("\"b1\"") && !trace.contains("pickup:D7"), "buyers stay anonymous: {trace}");
    let trace: Value = serde_json::from_str(&trace).unwrap();
    let goods = trace["goods"].as_array().unwrap();
    let line = goods.iter().find(|g| g["ref"] == b1_clock.as_str()).unwrap_or_else(|| panic!("{trace}"));
    let steps: Vec<(Value, Value, Value)> = line["path"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["status"].clone(), p["temperature_c"].clone(), p["alarm"].clone()))
        .collect();
    assert_eq!(
        steps,
        [
            (json!("picked"), json!("6.50"), json!(false)),
            (json!("cold_store"), json!("9.50"), json!(true)),
            (json!("loaded"), json!("4.00"), json!(true))
        ],
        "{line}"
    );
    let (_, small_trace) = http_get(server.addr, &format!("/api/lots/{small_id}")).await;
    let small_trace: Value = serde_json::from_str(&small_trace).unwrap();
    let step = &small_trace["goods"][0]["path"][0];
    assert_eq!(
        (step["status"].as_str(), step["temperature_c"].clone()),
        (Some("delivered"), Value::Null),
        "{small_trace}"
    );

    // Complaints: one's own purchase, within what was bought.
    let b2 = s.get_mut("b2").unwrap();
    refused(
        &b2.request(json!({"type": "file_complaint", "ref": b1_clock, "reason": "quality", "containers": 1})).await,
        "forbidden",
        "not yours",
    );
    let b1 = s.get_mut("b1").unwrap();
    refused(
        &b1.request(json!({"type": "file_complaint", "ref": b1_clock, "reason": "smell", "containers": 1})).await,
        "bad_request",
        "reason",
    );
    refused(
        &b1.request(json!({"type": "file_complaint", "ref": b1_clock, "reason": "quality", "containers": 3})).await,
        "quantity_invalid",
        "containers",
    );
    let filed = ok(b1, json!({"type": "file_complaint", "ref": b1_clock, "reason": "quality", "containers": 1, "note": "petals browning"}), "complaint_filed").await;
    assert_eq!(
        (filed["ref"].as_str(), filed["reason"].as_str(), filed["containers"].as_u64()),
        (Some(b1_clock.as_str()), Some("quality"), Some(1)),
        "{filed}"
    );
    let on_book = ok(
        b1,
        json!({"type": "file_complaint", "ref": book_ref, "reason": "quantity", "containers": 5}),
        "complaint_filed",
    )
    .await;
    // A credit is at most the complained containers' amount (1 container × 10 stems × the price).
    let price = fen(&won["price"]);
    let too_much = op.request(json!({"type": "resolve_complaint", "complaint_id": filed["complaint_id"], "decision": "accepted", "credit": money(price * 10 + 1)})).await;
    refused(&too_much, "price_invalid", "at most");
    let credit = money(price * 5);
    let resolved = ok(&mut op, json!({"type": "resolve_complaint", "complaint_id": filed["complaint_id"], "decision": "accepted", "credit": credit}), "complaint_resolved").await;
    assert_eq!(
        (resolved["decision"].as_str(), resolved["credit"].as_str()),
        (Some("accepted"), Some(credit.as_str())),
        "{resolved}"
    );
    for who in ["b1", "g1"] {
        let told =
            s.get_mut(who).unwrap().next_matching(|v| v["type"] == "complaint_resolved", REPLY_TIMEOUT).await.unwrap();
        assert_eq!(told["complaint_id"], filed["complaint_id"], "{who} is told: {told}");
    }
    ok(&mut op, json!({"type": "resolve_complaint", "complaint_id": on_book["complaint_id"], "decision": "rejected", "credit": "0"}), "complaint_resolved").await;

    // kill -9: every line, reading and alarm comes back.
    let before = lasting(&dispatch_of(&mut op, json!({"type": "get_dispatch"})).await);
    drop((op, feed, s));
    server.kill9();
    server.start_again();
    let mut op = server.operator().await;
    let after = lasting(&dispatch_of(&mut op, json!({"type": "get_dispatch"})).await);
    assert_eq!(after, before, "the dispatch survives kill -9");
    let mut s: BTreeMap<&str, Client> = BTreeMap::new();
    for (id, token) in &tokens {
        s.insert(id, server.session(token).await);
    }

    // Day 2: yesterday's purchases may still be complained about.
    ok(&mut op, json!({"type": "set_book_state", "symbol": "ROSE-A", "state": "closed"}), "book_state").await;
    let settled = ok(&mut op, json!({"type": "end_of_day"}), "day_settled").await;
    let day2 = settled["next_day"].as_str().unwrap().to_string();
    let quality = ok(&mut op, json!({"type": "get_quality", "grower": "g1"}), "quality").await;
    // Day 1: g1 sold 2 (presale) + 6 (clock) containers; 1 accepted.
    assert_eq!(
        quality,
        json!({"type": "quality", "req_id": quality["req_id"], "grower": "g1", "days": 1, "lots": 2, "containers_sold": 8, "complaints": 1, "accepted": 1, "qi": qi(8, 1)})
    );
    let yesterday = dispatch_of(&mut op, json!({"type": "get_dispatch", "day": day1})).await;
    assert_eq!(lasting(&yesterday), after, "yesterday's lines are still the core's to move");
    let today = ok(&mut op, json!({"type": "get_dispatch"}), "dispatch").await;
    assert_eq!(
        (today["day"].as_str(), today["lines"].as_array().map(Vec::len)),
        (Some(day2.as_str()), Some(0)),
        "{today}"
    );
    let again = ok(
        s.get_mut("b2").unwrap(),
        json!({"type": "file_complaint", "ref": b2_clock, "reason": "damaged", "containers": 2}),
        "complaint_filed",
    )
    .await;
    ok(&mut op, json!({"type": "resolve_complaint", "complaint_id": again["complaint_id"], "decision": "accepted", "credit": "1.00"}), "complaint_resolved").await;
    let lot3 = consign(s.get_mut("g1").unwrap(), lot_msg("LILY", "A1", 10, 1, "1.00")).await;
    assert_eq!(lot3["qi"], json!(qi(8, 1)), "a lot carries its grower's index: {lot3}");

    // Day 3: the window for day 1's purchases has closed.
    ok(&mut op, json!({"type": "end_of_day"}), "day_settled").await;
    let late = s
        .get_mut("b1")
        .unwrap()
        .request(json!({"type": "file_complaint", "ref": b1_clock, "reason": "quality", "containers": 1}))
        .await;
    refused(&late, "invalid_state", "next trading day");
    // Day 1's lines have left the core: clearing answers, final, the same lines.
    let archived = dispatch_of(&mut op, json!({"type": "get_dispatch", "day": day1})).await;
    assert_eq!(lasting(&archived), after, "day 1's lines from clearing are the core's as they were");
    let b1_day1 = dispatch_of(s.get_mut("b1").unwrap(), json!({"type": "get_dispatch", "day": day1})).await;
    assert_eq!(b1_day1.keys().cloned().collect::<Vec<_>>(), mine.keys().cloned().collect::<Vec<_>>());
    assert_eq!(b1_day1[&b1_clock]["day"], day1.as_str(), "{b1_day1:?}");
    refused(&op.request(json!({"type": "get_dispatch", "day": "2999-01-01"})).await, "invalid_state", "not begun");
    let quality = ok(&mut op, json!({"type": "get_quality", "grower": "g1"}), "quality").await;
    // Day 2 adds no sale and one accepted complaint of 2 containers: 3 of 8.
    assert_eq!(
        (quality["days"].as_u64(), quality["complaints"].as_u64(), quality["accepted"].as_u64()),
        (Some(2), Some(2), Some(2)),
        "{quality}"
    );
    assert_eq!(quality["qi"], json!(qi(8, 3)), "{quality}");
    let lot4 = consign(s.get_mut("g1").unwrap(), lot_msg("LILY", "A1", 10, 1, "1.00")).await;
    assert_eq!(lot4["qi"], json!(qi(8, 3)), "{lot4}");
    refused(&op.request(json!({"type": "get_quality", "grower": "b1"})).await, "not_found", "not a grower");
    drop((op, s));
    server.stop_and_check_replays();
}
