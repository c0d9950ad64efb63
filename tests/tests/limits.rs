//! Issue 12 over real sockets: the core's limits (`set_limits` / `get_limits`, each one reached
//! and named in `limit_reached`), suspension that stops trading (orders and standing bids
//! cancelled in the same command, reads still allowed, the operator's `cancel_orders`), clean
//! text, and all of it surviving `kill -9` with replays that agree.

use huashi_tests::*;
use serde_json::{json, Value};
use std::time::Duration;

const T: Duration = REPLY_TIMEOUT;

const LIMIT_NAMES: [&str; 11] = [
    "participants_max",
    "lots_per_grower_day_max",
    "lots_per_day_max",
    "supply_line_lots_max",
    "standing_bids_per_buyer_max",
    "orders_open_per_participant_max",
    "orders_open_total_max",
    "orders_per_participant_day_max",
    "level_quantity_max",
    "products_max",
    "instruments_max",
];

/// Sends `msg` and asserts `limit_reached` naming `limit`.
async fn expect_limit(c: &mut Client, msg: Value, limit: &str) {
    let shown = msg.to_string();
    let reply = c.request(msg).await;
    assert_error(&reply, "limit_reached");
    let text = reply["message"].as_str().unwrap();
    assert!(text.contains(limit), "{shown}: the message should name {limit}: {reply}");
}

async fn expect_error_naming(c: &mut Client, msg: Value, code: &str, field: &str) {
    let shown = msg.to_string();
    let reply = c.request(msg).await;
    assert_error(&reply, code);
    let text = reply["message"].as_str().unwrap();
    assert!(text.contains(field), "{shown}: the message should name `{field}`: {reply}");
}

async fn set_limits(op: &mut Client, limits: Value) -> Value {
    let mut msg = limits.clone();
    msg["type"] = json!("set_limits");
    let reply = op.request(msg).await;
    assert_eq!(reply["type"], "limits_set", "{reply}");
    for name in LIMIT_NAMES {
        assert!(reply[name].as_u64().is_some_and(|v| v > 0), "limits_set carries every limit, {name} missing: {reply}");
    }
    for (name, value) in limits.as_object().unwrap() {
        assert_eq!(&reply[name], value, "{name} was set: {reply}");
    }
    reply
}

/// `get_limits`, without the `req_id` so that answers compare.
async fn get_limits(c: &mut Client) -> Value {
    let mut reply = c.request(json!({"type": "get_limits"})).await;
    reply.as_object_mut().unwrap().remove("req_id");
    assert_eq!(reply["type"], "limits", "{reply}");
    for name in LIMIT_NAMES {
        assert!(reply[name].as_u64().is_some_and(|v| v > 0), "limits carries every limit, {name} missing: {reply}");
    }
    reply
}

fn order(id: &str, side: &str, price: &str, quantity: u64, tif: &str) -> Value {
    json!({"type": "new_order", "client_order_id": id, "symbol": "ROSE-A", "side": side, "order_type": "limit",
           "price": price, "quantity": quantity, "time_in_force": tif})
}

async fn accepted(c: &mut Client, msg: Value) -> Value {
    let shown = msg.to_string();
    let reply = c.request(msg).await;
    assert_eq!(reply["type"], "order_accepted", "{shown}: {reply}");
    reply
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_limit_is_reached_over_the_protocol_and_named() {
    let mut server = Server::start(ServerOpts::default());
    let mut op = server.operator().await;
    let tg = register(&mut op, "g1", &["grower"], None).await;
    let t1 = register(&mut op, "b1", &["buyer"], Some("1000.00")).await;
    let t2 = register(&mut op, "b2", &["buyer"], Some("1000.00")).await;
    let mut g1 = server.session(&tg).await;
    let mut b1 = server.session(&t1).await;
    let mut b2 = server.session(&t2).await;

    // Anyone reads the limits; only the operator sets them, each a positive integer.
    let defaults = get_limits(&mut b1).await;
    assert_eq!(defaults["participants_max"], 100_000, "{defaults}");
    let reply = b1.request(json!({"type": "set_limits", "products_max": 5})).await;
    assert_error(&reply, "forbidden");
    expect_error_naming(&mut op, json!({"type": "set_limits", "products_max": 0}), "bad_request", "products_max").await;
    expect_error_naming(&mut op, json!({"type": "set_limits", "products_max": -3}), "bad_request", "products_max")
        .await;
    expect_error_naming(
        &mut op,
        json!({"type": "set_limits", "participants_max": 2_000_000}),
        "bad_request",
        "participants_max",
    )
    .await;
    expect_error_naming(&mut op, json!({"type": "set_limits", "lots_max": 3}), "bad_request", "lots_max").await;
    assert_eq!(get_limits(&mut op).await, defaults, "refused set_limits change nothing");

    // participants_max: three are registered.
    set_limits(&mut op, json!({"participants_max": 3})).await;
    let msg = json!({"type": "register_participant", "id": "b3", "name": "B3", "roles": ["buyer"]});
    expect_limit(&mut op, msg, "participants_max").await;

    // products_max and instruments_max: the default catalogue already fills them.
    set_limits(&mut op, json!({"products_max": 1})).await;
    let msg = json!({"type": "define_product", "code": "XPROD", "name": "X product", "category": "cut_flower", "unit": "stem"});
    expect_limit(&mut op, msg, "products_max").await;
    set_limits(&mut op, json!({"instruments_max": 3})).await;
    let msg = json!({"type": "define_instrument", "symbol": "XPROD-A", "product": "ROSE", "tick_size": "0.01"});
    expect_limit(&mut op, msg, "instruments_max").await;

    // lots_per_grower_day_max.
    set_limits(&mut op, json!({"lots_per_grower_day_max": 2})).await;
    let lot1 = consign(&mut g1, lot_msg("ROSE", "A1", 10, 5, "1.00")).await["lot_id"].as_u64().unwrap();
    let lot2 = consign(&mut g1, lot_msg("ROSE", "A1", 10, 5, "1.00")).await["lot_id"].as_u64().unwrap();
    expect_limit(&mut g1, lot_msg("ROSE", "A1", 10, 5, "1.00"), "lots_per_grower_day_max").await;
    // lots_per_day_max: every grower's lots of the day together.
    set_limits(&mut op, json!({"lots_per_grower_day_max": 10, "lots_per_day_max": 2})).await;
    expect_limit(&mut g1, lot_msg("ROSE", "A1", 10, 5, "1.00"), "lots_per_day_max").await;

    // supply_line_lots_max: one lot per clock.
    set_limits(&mut op, json!({"supply_line_lots_max": 1})).await;
    let assign =
        |lot: u64, clock: u64| json!({"type": "assign_lot", "lot_id": lot, "clock": clock, "start_price": "3.00"});
    assert_eq!(op.request(assign(lot1, 1)).await["type"], "lot_assigned");
    expect_limit(&mut op, assign(lot2, 1), "supply_line_lots_max").await;
    assert_eq!(op.request(assign(lot2, 2)).await["type"], "lot_assigned");

    // standing_bids_per_buyer_max.
    set_limits(&mut op, json!({"standing_bids_per_buyer_max": 1})).await;
    let sb = |lot: u64| json!({"type": "standing_bid", "lot_id": lot, "max_price": "1.50", "containers": 1});
    assert_eq!(b1.request(sb(lot1)).await["type"], "standing_bid_accepted");
    // Replacing the bid on the same lot takes no new place.
    assert_eq!(b1.request(sb(lot1)).await["type"], "standing_bid_accepted");
    expect_limit(&mut b1, sb(lot2), "standing_bids_per_buyer_max").await;

    // orders_open_per_participant_max, orders_open_total_max, orders_per_participant_day_max.
    assert_eq!(
        op.request(json!({"type": "set_book_state", "symbol": "ROSE-A", "state": "open"})).await["type"],
        "book_state"
    );
    set_limits(
        &mut op,
        json!({"orders_open_per_participant_max": 2, "orders_open_total_max": 3, "orders_per_participant_day_max": 4}),
    )
    .await;
    accepted(&mut b1, order("o1", "buy", "1.00", 1, "gtc")).await;
    accepted(&mut b1, order("o2", "buy", "1.01", 1, "gtc")).await;
    expect_limit(&mut b1, order("o3", "buy", "1.02", 1, "gtc"), "orders_open_per_participant_max").await;
    // An order that cannot rest holds no place: an IOC still goes.
    accepted(&mut b1, order("o4", "buy", "1.02", 1, "ioc")).await;
    accepted(&mut b2, order("p1", "buy", "1.00", 1, "gtc")).await;
    expect_limit(&mut b2, order("p2", "buy", "1.00", 1, "gtc"), "orders_open_total_max").await;
    // b1 has sent 3 orders today (o1, o2, o4); one more, then the day's count is full even
    // after cancelling.
    let cancelled = b1.request(json!({"type": "cancel_order", "client_order_id": "o1"})).await;
    assert_eq!(cancelled["type"], "order_done", "{cancelled}");
    accepted(&mut b1, order("o5", "buy", "1.00", 1, "gtc")).await;
    b1.request(json!({"type": "cancel_all"})).await;
    expect_limit(&mut b1, order("o6", "buy", "1.00", 1, "gtc"), "orders_per_participant_day_max").await;

    // level_quantity_max: the total at one price of one side.
    set_limits(&mut op, json!({"orders_open_total_max": 100, "level_quantity_max": 100})).await;
    accepted(&mut g1, order("s1", "sell", "5.00", 60, "gtc")).await;
    expect_limit(&mut g1, order("s2", "sell", "5.00", 50, "gtc"), "level_quantity_max").await;
    accepted(&mut g1, order("s3", "sell", "5.00", 40, "gtc")).await;
    let amend = g1.request(json!({"type": "amend_order", "client_order_id": "s3", "quantity": 41})).await;
    assert_error(&amend, "limit_reached");
    // Quantities near u64::MAX are refused, never a panic.
    let huge = g1.request(order("s4", "sell", "6.00", u64::MAX, "gtc")).await;
    assert_eq!(huge["type"], "error", "{huge}");

    // The limits are market state: they survive kill -9 and replays agree.
    let before = get_limits(&mut op).await;
    server.kill9();
    server.start_again();
    let mut op = server.operator().await;
    assert_eq!(get_limits(&mut op).await, before, "the limits survive kill -9");
    let msg = json!({"type": "register_participant", "id": "b3", "name": "B3", "roles": ["buyer"]});
    expect_limit(&mut op, msg, "participants_max").await;
    server.stop_and_check_replays();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_config_seeds_the_limits_of_a_new_market_only() {
    let opts = ServerOpts {
        config_toml: Some("[market_limits]\nproducts_max = 77\nparticipants_max = 500\n".into()),
        ..ServerOpts::default()
    };
    let mut server = Server::start(opts);
    let mut op = server.operator().await;
    let limits = get_limits(&mut op).await;
    assert_eq!((limits["products_max"].as_u64(), limits["participants_max"].as_u64()), (Some(77), Some(500)));
    // set_limits changes the market, not its seed: a restart with the same file warns of nothing.
    set_limits(&mut op, json!({"products_max": 78})).await;
    server.restart();
    assert!(!server.log().contains("change them with set_limits"), "{}", tail(&server.log(), 3000));
    // An existing market keeps its own limits whatever the file says, and the log says so.
    server.opts.config_toml = Some("[market_limits]\nproducts_max = 99\n".into());
    server.restart();
    let mut op = server.operator().await;
    assert_eq!(get_limits(&mut op).await["products_max"], 78, "an existing market keeps its limits");
    let log = server.log();
    assert!(log.contains("set_limits"), "a differing config logs a warning naming set_limits:\n{}", tail(&log, 3000));
    // A bad value in the file is refused at start, naming it.
    let out = std::process::Command::new(huashi_bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--operator-token", "t", "--data-dir"])
        .arg(server.data_dir.join("never"))
        .arg("--config")
        .arg({
            let path = server.data_dir.with_file_name("bad.toml");
            std::fs::write(&path, "[market_limits]\nproducts_max = 0\n").unwrap();
            path
        })
        .output()
        .expect("run huashi serve");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("products_max"), "{}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suspension_stops_trading_reads_still_work_and_it_survives_kill9() {
    let mut server = Server::start(ServerOpts::default());
    let mut op = server.operator().await;
    let tg = register(&mut op, "g1", &["grower"], None).await;
    let t1 = register(&mut op, "b1", &["buyer"], Some("1000.00")).await;
    let t2 = register(&mut op, "b2", &["buyer"], Some("1000.00")).await;
    let mut g1 = server.session(&tg).await;
    let mut b1 = server.session(&t1).await;
    let mut b2 = server.session(&t2).await;
    let mut feed = server.feed().await;
    let day = server.day.clone();

    // b1 rests a buy order and a standing bid; b2 rests two orders.
    assert_eq!(
        op.request(json!({"type": "set_book_state", "symbol": "ROSE-A", "state": "open"})).await["type"],
        "book_state"
    );
    accepted(&mut b1, order("o1", "buy", "2.00", 10, "gtc")).await;
    accepted(&mut b2, order("p1", "buy", "1.50", 5, "gtc")).await;
    accepted(&mut b2, order("p2", "buy", "1.40", 5, "gtc")).await;
    let lot = consign(&mut g1, lot_msg("ROSE", "A1", 10, 5, "2.50")).await["lot_id"].as_u64().unwrap();
    let sb = b1.request(json!({"type": "standing_bid", "lot_id": lot, "max_price": "2.90", "containers": 1})).await;
    assert_eq!(sb["type"], "standing_bid_accepted", "{sb}");
    feed.next_matching(|v| v["type"] == "book" && v["price"] == "2.00" && v["quantity"] == 10, T)
        .await
        .expect("b1's level");

    // Suspending b1 cancels its order and standing bid in the same command.
    let st = op.request(json!({"type": "suspend_participant", "participant": "b1"})).await;
    assert_eq!((st["type"].as_str(), st["active"].as_bool()), (Some("participant_status"), Some(false)), "{st}");
    let done =
        b1.next_matching(|v| v["type"] == "order_done" && v["client_order_id"] == "o1", T).await.expect("order_done");
    assert_eq!(done["reason"], "cancelled", "{done}");
    b1.next_matching(|v| v["type"] == "standing_bid_cancelled" && v["lot_id"] == lot, T)
        .await
        .expect("standing bid cancelled");
    let level = feed.next_matching(|v| v["type"] == "book" && v["price"] == "2.00" && v["side"] == "buy", T).await;
    assert_eq!(level.expect("the feed shows the level go")["quantity"], 0);

    // A sell at b1's old price no longer trades with it.
    accepted(&mut g1, order("s1", "sell", "2.00", 10, "gtc")).await;
    // Fills are reported before the order's reply, so this is not a race.
    let fill = g1.try_next_of_type("fill", Duration::from_millis(300)).await;
    assert!(fill.is_none(), "a suspended buyer's order must not trade: {fill:?}");
    let resting = get_orders(&mut g1).await;
    assert_eq!((resting.len(), resting[0]["quantity"].as_u64()), (1, Some(10)), "s1 rests whole: {resting:?}");

    // The suspended buyer may read, nothing else.
    // It may still log in (a new session), as well as keep the one it has.
    server.session(&t1).await.close().await;
    assert!(get_orders(&mut b1).await.is_empty(), "b1 has no open orders");
    get_account(&mut b1).await;
    let statement = b1.request(json!({"type": "get_statement", "day": day})).await;
    assert_eq!(statement["type"], "statement", "a suspended participant reads its statement: {statement}");
    get_limits(&mut b1).await;
    assert_error(&b1.request(order("o2", "buy", "2.00", 1, "gtc")).await, "forbidden");
    assert_error(&b1.request(json!({"type": "cancel_all"})).await, "forbidden");
    let sb = json!({"type": "standing_bid", "lot_id": lot, "max_price": "2.90", "containers": 1});
    assert_error(&b1.request(sb).await, "forbidden");

    // The clock runs through b1's old max price: nothing triggers for it.
    configure_fast_clock(&mut op, 1).await;
    let assigned = op.request(json!({"type": "assign_lot", "lot_id": lot, "clock": 1, "start_price": "3.00"})).await;
    assert_eq!(assigned["type"], "lot_assigned", "{assigned}");
    assert_eq!(op.request(json!({"type": "start_clock", "clock": 1})).await["type"], "clock_state");
    let end = feed
        .next_matching(
            |v| (v["type"] == "lot_unsold" || v["type"] == "clock_award") && v["lot_id"] == lot,
            Duration::from_secs(20),
        )
        .await
        .expect("the lot ends");
    assert_eq!(end["type"], "lot_unsold", "no standing bid of a suspended buyer triggers: {end}");

    // The operator cancels another participant's orders.
    assert_error(&b2.request(json!({"type": "cancel_orders", "participant": "b2"})).await, "forbidden");
    let reply = op.request(json!({"type": "cancel_orders", "participant": "b2", "symbol": "ROSE-A"})).await;
    check_fields(&reply, "cancelled", &[("participant", Kind::Str), ("count", Kind::Int)]);
    assert_eq!((reply["participant"].as_str(), reply["count"].as_u64()), (Some("b2"), Some(2)), "{reply}");
    for id in ["p1", "p2"] {
        let done = b2.next_matching(|v| v["type"] == "order_done" && v["client_order_id"] == id, T).await.expect(id);
        assert_eq!(done["reason"], "cancelled", "{done}");
    }
    let none = op.request(json!({"type": "cancel_orders", "participant": "b2"})).await;
    assert_eq!(none["count"], 0, "{none}");
    assert_error(&op.request(json!({"type": "cancel_orders", "participant": "ghost"})).await, "not_found");

    // All of it survives kill -9.
    server.kill9();
    server.start_again();
    let mut b1 = server.session(&t1).await;
    let mut b2 = server.session(&t2).await;
    let mut g1 = server.session(&tg).await;
    assert!(get_orders(&mut b1).await.is_empty());
    assert!(get_orders(&mut b2).await.is_empty());
    assert_eq!(get_orders(&mut g1).await.len(), 1, "g1's sell rests, untraded");
    assert_error(&b1.request(order("o3", "buy", "2.00", 1, "gtc")).await, "forbidden");
    let mut op = server.operator().await;
    let st = op.request(json!({"type": "reinstate_participant", "participant": "b1"})).await;
    assert_eq!(st["active"], true, "{st}");
    // Reinstated, b1 trades again (against g1's resting sell).
    accepted(&mut b1, order("o4", "buy", "2.00", 1, "gtc")).await;
    b1.next_of_type("fill", T).await;
    server.stop_and_check_replays();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_fields_refuse_control_and_bidirectional_characters() {
    let mut server = Server::start(ServerOpts::default());
    let mut op = server.operator().await;
    let tg = register(&mut op, "g1", &["grower"], None).await;
    let mut g1 = server.session(&tg).await;

    let participant =
        |name: &str| json!({"type": "register_participant", "id": "x1", "name": name, "roles": ["buyer"]});
    for name in ["", "   ", "nul\u{0}byte", "new\nline", "\u{202E}gpj.exe", "iso\u{2066}late", "mark\u{200F}"] {
        expect_error_naming(&mut op, participant(name), "bad_request", "name").await;
    }
    let product = json!({"type": "define_product", "code": "TULIP", "name": "Tu\u{202D}lip", "category": "cut_flower", "unit": "stem"});
    expect_error_naming(&mut op, product, "bad_request", "name").await;
    for (field, text) in
        [("origin", "Yun\u{7}nan"), ("note", "fresh\u{2067}"), ("photo_url", "http://x/\u{85}p.jpg"), ("note", "\u{0}")]
    {
        let mut msg = lot_msg("ROSE", "A1", 10, 5, "1.00");
        msg[field] = json!(text);
        expect_error_naming(&mut g1, msg, "bad_request", field).await;
    }
    assert!(get_lots(&mut g1).await.is_empty(), "refused consignments change nothing");
    // Clean text in other scripts is fine.
    let mut msg = lot_msg("ROSE", "A1", 10, 5, "1.00");
    msg["origin"] = json!("云南 斗南");
    msg["note"] = json!("fresh 🌹 עברית");
    consign(&mut g1, msg).await;
    let reply = op.request(participant("Dounan Rose Co-op 斗南")).await;
    assert_eq!(reply["type"], "participant_registered", "{reply}");
    server.stop_and_check_replays();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_torn_journal_tail_is_dropped_with_a_warning_naming_file_offset_and_bytes() {
    let mut server = Server::start(ServerOpts::default());
    let mut op = server.operator().await;
    register(&mut op, "b1", &["buyer"], Some("10.00")).await;
    server.kill9();
    // A crash mid-write: a few bytes of a record that never completed.
    let journal = server.data_dir.join("journal");
    let mut segments: Vec<_> = std::fs::read_dir(&journal)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    segments.sort();
    let last = segments.last().expect("a journal segment").clone();
    // Segments are preallocated with zeros: the torn record goes right after the last written
    // record, found by walking the frames (`[len u32][crc u32][seq u64][payload]` after a 24-byte
    // segment header; a zero length is the preallocated rest). A record may itself end in zero
    // bytes (an absent option), so the last non-zero byte is not its end.
    let bytes = std::fs::read(&last).unwrap();
    let mut end = 24usize;
    loop {
        let len = u32::from_le_bytes(bytes[end..end + 4].try_into().unwrap()) as usize;
        if len == 0 {
            break;
        }
        end += 16 + len;
    }
    let end = end as u64;
    let file = std::fs::OpenOptions::new().write(true).open(&last).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&file, &[0x5a; 7], end).unwrap();
    drop(file);
    server.start_again();
    let log = server.log();
    let line = log
        .lines()
        .find(|l| l.contains("torn tail"))
        .unwrap_or_else(|| panic!("no torn-tail warning:\n{}", tail(&log, 3000)));
    let name = last.file_name().unwrap().to_str().unwrap();
    assert!(line.contains("WARN") && line.contains(name), "{line}");
    let number = |key: &str| -> u64 {
        let at = line.find(key).unwrap_or_else(|| panic!("{key} missing: {line}")) + key.len();
        line[at..].split(|c: char| !c.is_ascii_digit()).next().unwrap().parse().unwrap()
    };
    let (offset, dropped) = (number("offset="), number("bytes_dropped="));
    assert_eq!(offset, end, "the torn record starts where the written records end: {line}");
    assert_eq!(offset + dropped, bytes.len() as u64, "everything from the offset on is dropped: {line}");
    // Nothing acknowledged was lost.
    let mut op = server.operator().await;
    let again = op.request(json!({"type": "register_participant", "id": "b1", "name": "B1", "roles": ["buyer"]})).await;
    assert_error(&again, "duplicate");
    server.stop_and_check_replays();
}
