//! Every error code of protocol section 2, produced over the wire; bad messages change nothing
//! and never end a session; nobody can act as someone else; the feed cannot write; oversize
//! frames close with 1009; tokens never reach the log.
//!
//! `internal` ("a server fault; the message was not applied") is the one code no client can
//! provoke on purpose, so no test asks for it; the fuzz test asserts it never appears.

use huashi_tests::*;
use serde_json::{json, Value};
use std::time::Duration;

const T: Duration = REPLY_TIMEOUT;

/// A market with an operator, a grower, two buyers and one lot.
struct Setup {
    server: Server,
    op: Client,
    grower: Client,
    b1: Client,
    b2: Client,
    tokens: Vec<String>,
    lot_id: u64,
}

async fn setup(opts: ServerOpts) -> Setup {
    let server = Server::start(opts);
    let mut op = server.operator().await;
    let tg = register(&mut op, "g1", &["grower"], None).await;
    let t1 = register(&mut op, "b1", &["buyer"], Some("1000.00")).await;
    let t2 = register(&mut op, "b2", &["buyer"], Some("1000.00")).await;
    let mut grower = server.session(&tg).await;
    let b1 = server.session(&t1).await;
    let b2 = server.session(&t2).await;
    let lot = consign(&mut grower, lot_msg("ROSE", "A1", 10, 5, "1.00")).await;
    let lot_id = lot["lot_id"].as_u64().unwrap();
    Setup { server, op, grower, b1, b2, tokens: vec![tg, t1, t2], lot_id }
}

/// Sends `msg` as a request and asserts the reply is error `code`.
async fn expect_error(c: &mut Client, msg: Value, code: &str) -> Value {
    let shown = msg.to_string();
    let reply = c.request(msg).await;
    assert_eq!(reply["type"], "error", "{shown} should fail with {code}, got {reply}");
    assert_error(&reply, code);
    reply
}

/// As `expect_error`, and the message names the offending field.
async fn expect_error_naming(c: &mut Client, msg: Value, code: &str, field: &str) {
    let reply = expect_error(c, msg, code).await;
    let text = reply["message"].as_str().unwrap();
    assert!(text.contains(field), "the error message should name the field `{field}`: {reply}");
}

/// Sends a raw text frame (no req_id to echo) and returns the error it gets.
async fn raw_error(c: &mut Client, text: &str) -> Value {
    c.send_text(text).await;
    let reply = c.next_of_type("error", T).await;
    assert_error(&reply, "bad_request");
    reply
}

/// Open orders without their `ts`: this build stamps an order's `ts` in `get_orders` with the
/// time of the query (reported separately, and checked in auction_morning), which must not make
/// every before/after comparison here fail.
fn orders_without_ts(orders: Vec<Value>) -> Vec<Value> {
    orders
        .into_iter()
        .map(|mut o| {
            if let Some(m) = o.as_object_mut() {
                m.remove("ts");
            }
            o
        })
        .collect()
}

/// Everything a participant can observe about the market, for before/after comparisons.
async fn observe(s: &mut Setup) -> Vec<String> {
    let mut out = Vec::new();
    for c in [&mut s.b1, &mut s.b2, &mut s.grower] {
        out.push(canonical(&strip_volatile(&get_account(c).await)));
        out.push(canonical(&json!(orders_without_ts(get_orders(c).await))));
    }
    out.push(canonical(&json!(get_lots(&mut s.op).await)));
    // The public state, seq included: a rejected message publishes nothing.
    out.push(canonical(&s.server.feed().await.snapshot));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_frames_get_bad_request_and_change_nothing() {
    let mut s = setup(ServerOpts::default()).await;
    let lot_id = s.lot_id;
    let before = observe(&mut s).await;
    let b = &mut s.b1;

    // Not JSON, not an object.
    for text in ["not json", "{\"type\":\"ping\"", "[1,2,3]", "42", "\"ping\"", "null", ""] {
        raw_error(b, text).await;
    }
    b.send_binary(br#"{"type":"ping","req_id":"bin"}"#.to_vec()).await;
    let reply = b.next_of_type("error", T).await;
    assert_error(&reply, "bad_request");

    // Unknown or missing type.
    let reply = expect_error(b, json!({"type": "frobnicate", "req_id": "u1"}), "bad_request").await;
    assert_eq!(reply["req_id"], "u1", "the error echoes the req_id: {reply}");
    expect_error(b, json!({"req_id": "nt", "lot_id": 1}), "bad_request").await;
    expect_error(b, json!({"type": 5}), "bad_request").await;

    // Missing and mistyped fields; bad decimals; JSON floats for money; bad quantities.
    let sb = |extra: Value| {
        let mut m = json!({"type": "standing_bid", "lot_id": lot_id, "max_price": "2.00", "containers": 1});
        for (k, v) in extra.as_object().unwrap() {
            if v.is_null() {
                m.as_object_mut().unwrap().remove(k);
            } else {
                m[k] = v.clone();
            }
        }
        m
    };
    expect_error_naming(b, sb(json!({"lot_id": null})), "bad_request", "lot_id").await;
    expect_error_naming(b, sb(json!({"max_price": null})), "bad_request", "max_price").await;
    expect_error_naming(b, sb(json!({"lot_id": "seven"})), "bad_request", "lot_id").await;
    expect_error_naming(b, sb(json!({"max_price": "1.234"})), "bad_request", "max_price").await;
    expect_error_naming(b, sb(json!({"max_price": 1.5})), "bad_request", "max_price").await;
    expect_error_naming(b, sb(json!({"max_price": "1,50"})), "bad_request", "max_price").await;
    expect_error_naming(b, sb(json!({"max_price": "1e2"})), "bad_request", "max_price").await;
    expect_error_naming(b, sb(json!({"containers": -1})), "bad_request", "containers").await;
    expect_error_naming(b, sb(json!({"containers": 2.5})), "bad_request", "containers").await;
    expect_error_naming(b, sb(json!({"containers": "2"})), "bad_request", "containers").await;
    let order = json!({"type": "new_order", "client_order_id": "o1", "symbol": "ROSE-A", "side": "sideways",
                       "order_type": "limit", "price": "2.00", "quantity": 1, "time_in_force": "gtc"});
    expect_error_naming(b, order.clone(), "bad_request", "side").await;
    let mut o = order.clone();
    o["side"] = json!("buy");
    o["time_in_force"] = json!("gtd");
    expect_error_naming(b, o.clone(), "bad_request", "time_in_force").await;
    o["time_in_force"] = json!("gtc");
    o["client_order_id"] = json!("has space");
    expect_error_naming(b, o.clone(), "bad_request", "client_order_id").await;
    o["client_order_id"] = json!("x".repeat(37));
    expect_error_naming(b, o.clone(), "bad_request", "client_order_id").await;
    // A req_id over 64 characters is itself malformed (and so cannot be echoed).
    raw_error(b, &json!({"type": "ping", "req_id": "r".repeat(65)}).to_string()).await;

    // An integer req_id is echoed as an integer; the session is still fine.
    let pong = b.request(json!({"type": "ping", "req_id": 77})).await;
    assert_eq!(pong["type"], "pong", "{pong}");
    assert_eq!(pong["req_id"], 77, "{pong}");
    assert!(b.ended.is_none(), "a bad message never closes the session: {:?}", b.ended);

    let after = observe(&mut s).await;
    assert_eq!(before, after, "bad messages must not change state");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_but_login_before_login_and_wrong_tokens_are_unauthenticated() {
    let s = setup(ServerOpts::default()).await;
    let mut c = s.server.connect("/ws").await;
    expect_error(&mut c, json!({"type": "ping"}), "unauthenticated").await;
    expect_error(&mut c, json!({"type": "get_account"}), "unauthenticated").await;
    expect_error(
        &mut c,
        json!({"type": "register_participant", "id": "evil", "name": "x", "roles": ["operator"]}),
        "unauthenticated",
    )
    .await;
    expect_error(&mut c, json!({"type": "login", "token": "not-a-token"}), "unauthenticated").await;
    let mut wrong = s.tokens[1].clone();
    wrong.push('x');
    expect_error(&mut c, json!({"type": "login", "token": wrong}), "unauthenticated").await;
    expect_error(&mut c, json!({"type": "login", "token": s.server.token().to_uppercase()}), "unauthenticated").await;
    expect_error_naming(&mut c, json!({"type": "login"}), "bad_request", "token").await;
    expect_error_naming(&mut c, json!({"type": "login", "token": 12}), "bad_request", "token").await;
    let ok = c.login(&s.tokens[1]).await;
    assert_eq!(ok["participant"], "b1");
    assert!(!ok.to_string().contains(&s.tokens[1]), "tokens are never echoed after registration: {ok}");
    c.ping().await;
    // The evil registration did not happen.
    let mut op = s.server.operator().await;
    register(&mut op, "evil", &["buyer"], None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_and_suspension_are_forbidden() {
    let mut s = setup(ServerOpts::default()).await;
    let lot_id = s.lot_id;
    let before = observe(&mut s).await;
    let b = &mut s.b1;
    expect_error(b, json!({"type": "register_participant", "id": "x1", "name": "x", "roles": ["buyer"]}), "forbidden")
        .await;
    expect_error(b, json!({"type": "set_credit_limit", "participant": "b1", "limit": "99999.00"}), "forbidden").await;
    expect_error(b, json!({"type": "assign_lot", "lot_id": lot_id, "clock": 1, "start_price": "3.00"}), "forbidden")
        .await;
    expect_error(b, json!({"type": "start_clock", "clock": 1}), "forbidden").await;
    expect_error(b, json!({"type": "set_book_state", "symbol": "ROSE-A", "state": "open"}), "forbidden").await;
    expect_error(b, json!({"type": "end_of_day"}), "forbidden").await;
    expect_error(b, json!({"type": "reinstate_participant", "participant": "b1"}), "forbidden").await;
    expect_error(b, lot_msg("ROSE", "A1", 10, 5, "1.00"), "forbidden").await;
    expect_error(
        b,
        json!({"type": "new_order", "client_order_id": "s1", "symbol": "ROSE-A", "side": "sell", "order_type": "limit",
               "price": "2.00", "quantity": 1, "time_in_force": "gtc"}),
        "forbidden",
    )
    .await;
    let g = &mut s.grower;
    expect_error(g, json!({"type": "bid", "clock": 1, "lot_id": lot_id, "round": 1, "containers": 1}), "forbidden")
        .await;
    expect_error(
        g,
        json!({"type": "standing_bid", "lot_id": lot_id, "max_price": "2.00", "containers": 1}),
        "forbidden",
    )
    .await;
    expect_error(
        g,
        json!({"type": "new_order", "client_order_id": "b1", "symbol": "ROSE-A", "side": "buy", "order_type": "limit",
               "price": "2.00", "quantity": 1, "time_in_force": "gtc"}),
        "forbidden",
    )
    .await;
    expect_error(g, json!({"type": "withdraw_lot", "lot_id": lot_id}), "forbidden").await;
    let day = s.server.day.clone();
    let after = observe(&mut s).await;
    assert_eq!(before, after, "forbidden messages must not change state");

    // Suspension: the buyer's session stays, but it may not trade until reinstated.
    let st = s.op.request(json!({"type": "suspend_participant", "participant": "b2"})).await;
    check_fields(&st, "participant_status", &[("participant", Kind::Str), ("active", Kind::Bool)]);
    assert_eq!(st["participant"], "b2");
    assert_eq!(st["active"], false);
    let sb = json!({"type": "standing_bid", "lot_id": lot_id, "max_price": "2.00", "containers": 1});
    expect_error(&mut s.b2, sb.clone(), "forbidden").await;
    let st = s.op.request(json!({"type": "reinstate_participant", "participant": "b2"})).await;
    assert_eq!(st["type"], "participant_status", "{st}");
    assert_eq!(st["active"], true, "{st}");
    let ok = s.b2.request(sb).await;
    assert_eq!(ok["type"], "standing_bid_accepted", "a reinstated buyer may bid again: {ok}");
    // A suspended grower cannot consign either.
    s.op.request(json!({"type": "suspend_participant", "participant": "g1"})).await;
    expect_error(&mut s.grower, lot_msg("ROSE", "A1", 10, 5, "1.00"), "forbidden").await;
    // Statements: own only, the operator's any.
    expect_error(&mut s.b1, json!({"type": "get_statement", "day": day, "participant": "b2"}), "forbidden").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_things_are_not_found() {
    let mut s = setup(ServerOpts::default()).await;
    let before = observe(&mut s).await;
    let op = &mut s.op;
    expect_error(op, json!({"type": "assign_lot", "lot_id": 999_999, "clock": 1, "start_price": "3.00"}), "not_found")
        .await;
    expect_error(
        op,
        json!({"type": "assign_lot", "lot_id": s.lot_id, "clock": 99, "start_price": "3.00"}),
        "not_found",
    )
    .await;
    expect_error(op, json!({"type": "configure_clock", "clock": 99, "tick_ms": 10}), "not_found").await;
    expect_error(op, json!({"type": "start_clock", "clock": 99}), "not_found").await;
    expect_error(op, json!({"type": "withdraw_lot", "lot_id": 999_999}), "not_found").await;
    expect_error(op, json!({"type": "set_credit_limit", "participant": "ghost", "limit": "5.00"}), "not_found").await;
    expect_error(op, json!({"type": "suspend_participant", "participant": "ghost"}), "not_found").await;
    expect_error(op, json!({"type": "set_book_state", "symbol": "NOPE-A", "state": "open"}), "not_found").await;
    expect_error(
        op,
        json!({"type": "define_instrument", "symbol": "NOPE-B", "product": "NOPE", "tick_size": "0.01"}),
        "not_found",
    )
    .await;
    let day = s.server.day.clone();
    expect_error(&mut s.grower, lot_msg("NOPE", "A1", 10, 5, "1.00"), "not_found").await;
    let b = &mut s.b1;
    expect_error(
        b,
        json!({"type": "new_order", "client_order_id": "n1", "symbol": "NOPE-A", "side": "buy", "order_type": "limit",
               "price": "2.00", "quantity": 1, "time_in_force": "gtc"}),
        "not_found",
    )
    .await;
    expect_error(b, json!({"type": "cancel_order", "client_order_id": "never-sent"}), "not_found").await;
    expect_error(b, json!({"type": "amend_order", "client_order_id": "never-sent", "quantity": 1}), "not_found").await;
    expect_error(
        b,
        json!({"type": "standing_bid", "lot_id": 999_999, "max_price": "2.00", "containers": 1}),
        "not_found",
    )
    .await;
    expect_error(b, json!({"type": "cancel_standing_bid", "lot_id": s.lot_id}), "not_found").await;
    expect_error(b, json!({"type": "bid", "clock": 99, "lot_id": s.lot_id, "round": 1, "containers": 1}), "not_found")
        .await;
    let after = observe(&mut s).await;
    assert_eq!(before, after, "not_found must not change state");
    expect_error(&mut s.op, json!({"type": "get_statement", "day": day, "participant": "ghost"}), "not_found").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_state_messages_are_invalid_state() {
    let mut s = setup(ServerOpts::default()).await;
    let lot_id = s.lot_id;
    let op = &mut s.op;
    expect_error(op, json!({"type": "start_clock", "clock": 1}), "invalid_state").await;
    expect_error(op, json!({"type": "void_award", "clock": 1, "lot_id": lot_id, "round": 1}), "invalid_state").await;
    let order = json!({"type": "new_order", "client_order_id": "c1", "symbol": "ROSE-A", "side": "buy", "order_type": "limit",
                       "price": "2.00", "quantity": 1, "time_in_force": "gtc"});
    expect_error(&mut s.b1, order.clone(), "invalid_state").await;
    // The rejected order did not use up its client_order_id.
    let reply = s.op.request(json!({"type": "set_book_state", "symbol": "ROSE-A", "state": "open"})).await;
    assert_eq!(reply["type"], "book_state", "{reply}");
    let ok = s.b1.request(order).await;
    assert_eq!(ok["type"], "order_accepted", "a rejected order must not consume its client_order_id: {ok}");
    expect_error(&mut s.op, json!({"type": "end_of_day"}), "invalid_state").await;
    // A withdrawn lot cannot be withdrawn again, assigned or bid for.
    let w = s.op.request(json!({"type": "withdraw_lot", "lot_id": lot_id})).await;
    check_fields(&w, "lot_withdrawn", &[("lot_id", Kind::Int)]);
    expect_error(&mut s.op, json!({"type": "withdraw_lot", "lot_id": lot_id}), "invalid_state").await;
    expect_error(
        &mut s.op,
        json!({"type": "assign_lot", "lot_id": lot_id, "clock": 1, "start_price": "3.00"}),
        "invalid_state",
    )
    .await;
    expect_error(
        &mut s.b2,
        json!({"type": "standing_bid", "lot_id": lot_id, "max_price": "2.00", "containers": 1}),
        "invalid_state",
    )
    .await;
    let lots = get_lots(&mut s.op).await;
    assert_eq!(lots.iter().find(|l| l["lot_id"] == lot_id).unwrap()["status"], "withdrawn");
}

/// A lot on a slowly falling clock (about 8 s from 9.00 to 1.00) and its round.
async fn running_lot(s: &mut Setup, feed: &mut Feed, containers: u64, min_purchase: u64) -> (u64, Value) {
    let mut msg = lot_msg("LILY", "A1", 10, containers, "1.00");
    msg["min_purchase"] = json!(min_purchase);
    let lot = consign(&mut s.grower, msg).await;
    let lot_id = lot["lot_id"].as_u64().unwrap();
    configure_fast_clock(&mut s.op, 1).await;
    s.op.request(json!({"type": "assign_lot", "lot_id": lot_id, "clock": 1, "start_price": "9.00"})).await;
    s.op.request(json!({"type": "start_clock", "clock": 1})).await;
    let round = feed
        .next_matching(|v| v["type"] == "clock_started" && v["lot_id"] == lot_id, T)
        .await
        .expect("clock_started for the lot");
    (lot_id, round)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clock_bid_errors_too_late_quantity_and_credit() {
    let mut s = setup(ServerOpts::default()).await;
    let mut feed = s.server.feed().await;
    let tp = register(&mut s.op, "poor", &["buyer"], Some("1.00")).await;
    let mut poor = s.server.session(&tp).await;
    let (lot_id, round) = running_lot(&mut s, &mut feed, 6, 2).await;
    let r = round["round"].as_u64().unwrap();
    let bid = |n: u64| json!({"type": "bid", "clock": 1, "lot_id": lot_id, "round": r, "containers": n});

    // Invalid bids get errors and the clock runs on.
    expect_error(&mut s.b1, bid(0), "quantity_invalid").await;
    expect_error(&mut s.b1, bid(1), "quantity_invalid").await; // under min_purchase 2
    expect_error(&mut s.b1, bid(7), "quantity_invalid").await; // over remaining 6
    expect_error(&mut poor, bid(2), "credit_limit").await;
    expect_error(
        &mut s.b1,
        json!({"type": "bid", "clock": 1, "lot_id": lot_id, "round": r + 5, "containers": 2}),
        "invalid_state", // a round that has not started yet is not "too late"
    )
    .await;
    assert!(
        feed.events.iter().all(|v| v["type"] != "clock_award" && v["type"] != "lot_unsold"),
        "invalid bids must not stop the clock: {:?}",
        feed.events
    );
    let a = get_account(&mut poor).await;
    assert_eq!(a["exposure"], "0.00", "{a}");

    // The first valid bid wins; a second one for the same round is too late.
    let award = s.b1.request(bid(2)).await;
    assert_eq!(award["type"], "award", "{award}");
    expect_error(&mut s.b2, bid(2), "too_late").await;
    let a = get_account(&mut s.b2).await;
    assert_eq!(a["exposure"], "0.00", "a too-late bid buys nothing: {a}");
    s.op.request(json!({"type": "halt_clock", "clock": 1})).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn price_quantity_credit_and_duplicate_errors_on_the_book() {
    let mut s = setup(ServerOpts::default()).await;
    let op = &mut s.op;
    let def = op
        .request(json!({"type": "define_instrument", "symbol": "TULIP-5", "product": "TULIP", "tick_size": "0.05"}))
        .await;
    check_fields(&def, "instrument_defined", &[("symbol", Kind::Str)]);
    let set = op.request(json!({"type": "set_book_state", "symbol": "TULIP-5", "state": "open"})).await;
    assert_eq!(set["type"], "book_state", "{set}");
    op.request(json!({"type": "set_book_state", "symbol": "ROSE-A", "state": "open"})).await;
    expect_error(
        op,
        json!({"type": "register_participant", "id": "b1", "name": "again", "roles": ["buyer"]}),
        "duplicate",
    )
    .await;
    expect_error(
        op,
        json!({"type": "assign_lot", "lot_id": s.lot_id, "clock": 1, "start_price": "0.00"}),
        "price_invalid",
    )
    .await;

    let order = |coid: &str, symbol: &str, price: &str, qty: u64| {
        json!({"type": "new_order", "client_order_id": coid, "symbol": symbol, "side": "buy", "order_type": "limit",
               "price": price, "quantity": qty, "time_in_force": "gtc"})
    };
    let b = &mut s.b1;
    expect_error(b, order("p1", "TULIP-5", "1.02", 1), "price_invalid").await; // off the 0.05 grid
    expect_error(b, order("p2", "ROSE-A", "0.00", 1), "price_invalid").await;
    expect_error(b, order("p3", "ROSE-A", "-1.00", 1), "price_invalid").await;
    expect_error(b, order("q1", "ROSE-A", "2.00", 0), "quantity_invalid").await;
    expect_error(b, order("c1", "ROSE-A", "2.00", 501), "credit_limit").await; // 1002.00 > 1000.00
    expect_error(
        b,
        json!({"type": "standing_bid", "lot_id": s.lot_id, "max_price": "0.00", "containers": 1}),
        "price_invalid",
    )
    .await;
    expect_error(
        b,
        json!({"type": "standing_bid", "lot_id": s.lot_id, "max_price": "2.00", "containers": 0}),
        "quantity_invalid",
    )
    .await;
    let ok = b.request(order("d1", "TULIP-5", "1.05", 2)).await;
    assert_eq!(ok["type"], "order_accepted", "{ok}");
    expect_error(b, order("d1", "ROSE-A", "2.00", 1), "duplicate").await;
    b.request(json!({"type": "cancel_order", "client_order_id": "d1"})).await;
    expect_error(b, order("d1", "ROSE-A", "2.00", 1), "duplicate").await; // unique per day, not per open order
    let a = get_account(b).await;
    assert_eq!(a["exposure"], "0.00", "{a}");
    // The band: a trade at 2.00 sets the reference; 20 % away is rejected.
    let sell = json!({"type": "new_order", "client_order_id": "s1", "symbol": "ROSE-A", "side": "sell", "order_type": "limit",
                      "price": "2.00", "quantity": 1, "time_in_force": "gtc"});
    s.grower.request(sell).await;
    s.b2.request(order("t1", "ROSE-A", "2.00", 1)).await;
    s.b2.next_of_type("fill", T).await;
    expect_error(&mut s.b1, order("band1", "ROSE-A", "2.41", 1), "price_invalid").await;
    let ok = s.b1.request(order("band2", "ROSE-A", "2.40", 1)).await;
    assert_eq!(ok["type"], "order_accepted", "exactly 20 % away is inside the band: {ok}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_keeps_sending_bad_messages_is_closed_with_1008() {
    let s = setup(ServerOpts::default()).await;
    let mut pest = s.server.session(&s.tokens[2]).await;
    let mut other = s.server.session(&s.tokens[1]).await;
    // One at a time, each answered, so this is about bad messages, not about the rate.
    let mut answered = 0;
    let mut code = None;
    for i in 0..1_000 {
        if pest.try_send(tokio_tungstenite::tungstenite::Message::text(format!("not json {i}"))).await.is_err() {
            // The server closed first: its close frame is waiting to be read.
            code = Some(pest.expect_close(T).await);
            break;
        }
        match pest.next_frame(T).await {
            Some(Frame::Json(v)) => {
                assert_eq!(v["type"], "error", "{v}");
                assert!(["bad_request", "rate_limited"].contains(&v["code"].as_str().unwrap()), "{v}");
                answered += 1;
            }
            Some(Frame::Close(c, _)) => {
                code = Some(c);
                break;
            }
            other => panic!("after {answered} bad messages: {other:?}"),
        }
    }
    note(format!("closed after {answered} bad messages with {code:?}"));
    assert!(answered >= 1, "the first bad message is answered, not punished");
    assert_eq!(code, Some(Some(1008)), "1,000 bad messages in a row must end with a 1008 close");
    // The rest of the market does not notice.
    other.ping().await;
    let mut again = s.server.session(&s.tokens[2]).await;
    again.ping().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_is_rate_limited_and_others_are_still_served() {
    let s = setup(ServerOpts::default()).await;
    let mut flooder = s.server.session(&s.tokens[2]).await;
    let mut other = s.server.session(&s.tokens[1]).await;
    let n = 2_000;
    let mut sent = 0;
    for i in 0..n {
        if flooder
            .try_send(tokio_tungstenite::tungstenite::Message::text(json!({"type": "ping", "req_id": i}).to_string()))
            .await
            .is_err()
        {
            break; // closed under us: allowed ("the server may then close with 1008")
        }
        sent += 1;
    }
    let mut limited = 0;
    let mut pongs = 0;
    let mut close = None;
    loop {
        match flooder.next_frame(Duration::from_secs(5)).await {
            Some(Frame::Json(v)) if v["type"] == "error" => {
                assert_error(&v, "rate_limited");
                limited += 1;
            }
            Some(Frame::Json(v)) if v["type"] == "pong" => pongs += 1,
            Some(Frame::Json(v)) => panic!("unexpected reply to a ping flood: {v}"),
            Some(Frame::Close(code, _)) => {
                close = Some(code);
                break;
            }
            Some(other) => {
                close = Some(None);
                note(format!("flood ended with {other:?}"));
                break;
            }
            None => break,
        }
    }
    note(format!("flood: sent {sent}, pongs {pongs}, rate_limited {limited}, close {close:?}"));
    assert!(limited > 0, "{sent} pings at once must meet rate_limited (got {pongs} pongs, close {close:?})");
    if let Some(code) = close {
        assert_eq!(code, Some(1008), "a flooder is closed with 1008");
    }
    other.ping().await;
    get_account(&mut other).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_buyer_can_never_act_as_another_participant() {
    let mut s = setup(ServerOpts::default()).await;
    let mut feed = s.server.feed().await;
    s.op.request(json!({"type": "set_book_state", "symbol": "ROSE-A", "state": "open"})).await;
    let b2_order = json!({"type": "new_order", "client_order_id": "b2-o", "symbol": "ROSE-A", "side": "buy",
                          "order_type": "limit", "price": "1.50", "quantity": 10, "time_in_force": "gtc"});
    assert_eq!(s.b2.request(b2_order).await["type"], "order_accepted");
    let b2_before = (
        canonical(&strip_volatile(&get_account(&mut s.b2).await)),
        canonical(&json!(orders_without_ts(get_orders(&mut s.b2).await))),
    );

    // b1 cannot touch b2's order by its client_order_id.
    expect_error(&mut s.b1, json!({"type": "cancel_order", "client_order_id": "b2-o"}), "not_found").await;
    expect_error(&mut s.b1, json!({"type": "amend_order", "client_order_id": "b2-o", "quantity": 1}), "not_found")
        .await;
    let r = s.b1.request(json!({"type": "cancel_all"})).await;
    assert_eq!(r["type"], "cancelled", "{r}");
    assert_eq!(r["count"], 0, "cancel_all cancels only the sender's orders: {r}");

    // Fields naming another participant are rejected or ignored, never obeyed.
    let spoof = json!({"type": "new_order", "client_order_id": "spoof", "symbol": "ROSE-A", "side": "buy",
                       "order_type": "limit", "price": "1.40", "quantity": 3, "time_in_force": "gtc",
                       "participant": "b2", "buyer": "b2", "owner": "b2", "account": "b2"});
    let r = s.b1.request(spoof).await;
    if r["type"] == "order_accepted" {
        let mine = get_orders(&mut s.b1).await;
        assert!(
            mine.iter().any(|o| o["client_order_id"] == "spoof"),
            "an accepted order belongs to its sender: {mine:?}"
        );
    } else {
        assert_eq!(r["type"], "error", "{r}");
    }
    for probe in
        [json!({"type": "get_account", "participant": "b2"}), json!({"type": "get_orders", "participant": "b2"})]
    {
        let r = s.b1.request(probe.clone()).await;
        if r["type"] == "error" {
            assert!(["bad_request", "forbidden"].contains(&r["code"].as_str().unwrap()), "{probe} → {r}");
        } else {
            assert!(!r.to_string().contains("b2-o"), "b1 must not see b2's orders: {probe} → {r}");
            if r["type"] == "account" {
                assert_eq!(r["participant"], "b1", "b1 must see only its own account: {r}");
            }
        }
    }
    let day = s.server.day.clone();
    let r = s.b1.request(json!({"type": "get_statement", "day": day, "participant": "b2"})).await;
    if r["type"] == "error" {
        assert!(
            ["forbidden", "bad_request", "not_found", "invalid_state"].contains(&r["code"].as_str().unwrap()),
            "{r}"
        );
    } else {
        assert_eq!(r["participant"], "b1", "b1 must never read b2's statement: {r}");
    }

    // A bid that names b2 buys for b1, or is rejected.
    let (lot_id, round) = running_lot(&mut s, &mut feed, 4, 1).await;
    let r =
        s.b1.request(json!({"type": "bid", "clock": 1, "lot_id": lot_id, "round": round["round"], "containers": 1,
                        "buyer": "b2", "participant": "b2"}))
            .await;
    if r["type"] == "award" {
        let sale = s.grower.next_of_type("lot_sale", T).await;
        assert_eq!(sale["buyer"], "b1", "the award is the sender's: {sale}");
    } else {
        assert_eq!(r["type"], "error", "{r}");
    }
    s.op.request(json!({"type": "halt_clock", "clock": 1})).await;
    let b2_after = (
        canonical(&strip_volatile(&get_account(&mut s.b2).await)),
        canonical(&json!(orders_without_ts(get_orders(&mut s.b2).await))),
    );
    assert_eq!(b2_before, b2_after, "nothing b1 sent may change b2's account or orders");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_feed_ignores_what_is_sent_to_it_and_stays_gapless() {
    let mut s = setup(ServerOpts::default()).await;
    let mut feed = s.server.feed().await;
    let token = s.server.token().to_string();
    for text in [
        json!({"type": "login", "token": token}).to_string(),
        json!({"type": "register_participant", "req_id": 1, "id": "feedhack", "name": "x", "roles": ["buyer"], "credit_limit": "99999.00"})
            .to_string(),
        json!({"type": "set_book_state", "symbol": "ROSE-A", "state": "open"}).to_string(),
        json!({"type": "bid", "clock": 1, "lot_id": s.lot_id, "round": 1, "containers": 1}).to_string(),
        "garbage".to_string(),
    ] {
        feed.client.send_text(text).await;
    }
    let _ = feed.client.try_send(tokio_tungstenite::tungstenite::Message::binary(vec![0u8, 1, 2])).await;
    // Nothing is published in answer; no frame that is not an event arrives.
    let quiet = feed.drain_quiet(Duration::from_millis(500)).await;
    assert!(quiet.is_empty(), "writing to the feed must not produce events: {quiet:?}");
    // The feed did not act: the id is free and the book is still closed.
    register(&mut s.op, "feedhack", &["buyer"], None).await;
    let fresh = s.server.feed().await;
    let rose = fresh.snapshot["books"].as_array().unwrap().iter().find(|b| b["symbol"] == "ROSE-A").unwrap().clone();
    assert_eq!(rose["state"], "closed", "{rose}");
    // And it keeps publishing, gapless.
    s.op.request(json!({"type": "set_book_state", "symbol": "ROSE-A", "state": "pre_open"})).await;
    let ev = feed.next_of_type("book_state", T).await;
    assert_eq!(ev["state"], "pre_open");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_over_64_kib_close_with_1009() {
    let s = setup(ServerOpts::default()).await;
    let mut ok = s.server.session(&s.tokens[1]).await;
    // Just under the limit: an answer of some kind, the session lives.
    let pad = "p".repeat(60 * 1024);
    let r = ok.request(json!({"type": "ping", "note": pad})).await;
    assert!(r["type"] == "pong" || r["type"] == "error", "{}", preview(&r.to_string()));
    ok.ping().await;

    let mut big = s.server.session(&s.tokens[2]).await;
    let pad = "p".repeat(70 * 1024);
    let _ = big
        .try_send(tokio_tungstenite::tungstenite::Message::text(
            json!({"type": "ping", "req_id": "big", "note": pad}).to_string(),
        ))
        .await;
    let code = big.expect_close(T).await;
    assert_eq!(code, Some(1009), "a frame over 64 KiB closes with 1009 (ended: {:?})", big.ended);
    // Before login too.
    let mut anon = s.server.connect("/ws").await;
    let _ = anon.try_send(tokio_tungstenite::tungstenite::Message::text("x".repeat(65 * 1024 + 1))).await;
    assert_eq!(anon.expect_close(T).await, Some(1009), "{:?}", anon.ended);
    ok.ping().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_never_reach_the_log() {
    let s = setup(ServerOpts::default().env("RUST_LOG", "debug")).await;
    let mut c = s.server.connect("/ws").await;
    expect_error(&mut c, json!({"type": "login", "token": format!("{}-wrong", s.tokens[0])}), "unauthenticated").await;
    c.login(&s.tokens[0]).await;
    let mut c2 = s.server.connect("/ws").await;
    c2.login(s.server.token()).await;
    let t = register(&mut c2, "late", &["buyer", "grower"], Some("10.00")).await;
    let mut c3 = s.server.session(&t).await;
    c3.ping().await;
    drop(c3);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let log = s.server.log();
    let mut secrets = s.tokens.clone();
    secrets.push(t);
    secrets.push(s.server.token().to_string());
    for secret in &secrets {
        assert!(!log.contains(secret.as_str()), "a token appeared in the server's log");
    }
    note(format!("server log with RUST_LOG=debug: {} bytes", log.len()));
}
