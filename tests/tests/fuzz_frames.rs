//! Thousands of random and mutated frames at a logged-in session (and some before login): every
//! one gets a reply with a protocol error code or a harmless answer, nothing changes, the server
//! stays up, and another session keeps getting answers to `ping` throughout.
//!
//! The fuzzed participant is a buyer with zero credit in a market where nothing can be bought:
//! every book is closed, every lot withdrawn or unsold, every clock idle. So no frame it sends can
//! legitimately change state, and "nothing changed" is exact: the accounts, orders, lots, the feed
//! are the same before and after. The journal the fuzz leaves behind (rejected commands are
//! journaled too) replays to one state hash, from the newest snapshot and from genesis alike.
//! (The state hash itself covers the engine's clock, which every journaled command advances, so
//! it cannot be compared before and after.)

use huashi_tests::*;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

const FRAMES: usize = 3_000;
const PRE_LOGIN_FRAMES: usize = 300;
const WINDOW: usize = 16;
const SEED: u64 = 0x4855_4153_4849_0001;

const ERROR_CODES: &[&str] = &[
    "bad_request",
    "unauthenticated",
    "forbidden",
    "not_found",
    "invalid_state",
    "too_late",
    "quantity_invalid",
    "price_invalid",
    "credit_limit",
    "duplicate",
    "rate_limited",
    "internal",
];

/// Replies that may answer the fuzzed buyer without anything having changed.
const HARMLESS_REPLIES: &[&str] = &["error", "pong", "account", "lots", "orders", "statement", "cancelled"];

/// Raised limits so that the fuzz meets the validation paths, not only the rate limiter. Only
/// used if this build of `huashi serve` takes `--config`.
const FUZZ_CONFIG: &str = "[limits]\nrate_per_second = 1000000\nrate_burst = 1000000\nstrikes_max = 1000000\n";

struct Names {
    lots: Vec<u64>,
    coids: Vec<String>,
    day: String,
}

fn valid_templates(n: &Names, rng: &mut ChaCha8Rng) -> Value {
    let lot = *n.lots.choose(rng).unwrap();
    let coid = n.coids.choose(rng).unwrap().clone();
    let templates = [
        json!({"type": "ping"}),
        json!({"type": "get_account"}),
        json!({"type": "get_lots", "status": "consigned"}),
        json!({"type": "get_orders"}),
        json!({"type": "get_statement", "day": n.day}),
        json!({"type": "get_statement", "day": n.day, "participant": "b1"}),
        json!({"type": "register_participant", "id": "fz2", "name": "Fuzz", "roles": ["operator"], "credit_limit": "100.00"}),
        json!({"type": "set_credit_limit", "participant": "fz", "limit": "100000.00"}),
        json!({"type": "suspend_participant", "participant": "b1"}),
        json!({"type": "reinstate_participant", "participant": "fz"}),
        json!({"type": "define_product", "code": "FZ", "name": "Fuzz", "category": "other", "unit": "pot"}),
        json!({"type": "define_instrument", "symbol": "FZ-A", "product": "ROSE", "tick_size": "0.01", "price_band_pct": 10}),
        json!({"type": "consign_lot", "product": "ROSE", "grade": "A1", "units_per_container": 10, "containers": 5,
               "min_price": "1.00", "min_purchase": 1, "origin": "Kunming", "photo_url": "http://x/y.jpg", "note": "n"}),
        json!({"type": "assign_lot", "lot_id": lot, "clock": 1, "start_price": "3.00"}),
        json!({"type": "configure_clock", "clock": 1, "step": "0.01", "tick_ms": 10, "pre_roll_ms": 50, "pause_ms": 50,
               "restart_ticks": 10, "multi_buy_ms": 0}),
        json!({"type": "start_clock", "clock": 1}),
        json!({"type": "halt_clock", "clock": 2}),
        json!({"type": "withdraw_lot", "lot_id": lot}),
        json!({"type": "void_award", "clock": 1, "lot_id": lot, "round": 1}),
        json!({"type": "bid", "clock": 1, "lot_id": lot, "round": 1, "containers": 1}),
        json!({"type": "standing_bid", "lot_id": lot, "max_price": "2.00", "containers": 1}),
        json!({"type": "cancel_standing_bid", "lot_id": lot}),
        json!({"type": "set_book_state", "symbol": "ROSE-A", "state": "open"}),
        json!({"type": "new_order", "client_order_id": coid, "symbol": "ROSE-A", "side": "buy", "order_type": "limit",
               "price": "2.00", "quantity": 10, "time_in_force": "gtc", "post_only": false}),
        json!({"type": "new_order", "client_order_id": "fz-m", "symbol": "LILY-A", "side": "buy", "order_type": "market",
               "quantity": 10, "time_in_force": "ioc"}),
        json!({"type": "cancel_order", "client_order_id": coid}),
        json!({"type": "amend_order", "client_order_id": coid, "price": "2.01", "quantity": 5}),
        json!({"type": "cancel_all", "symbol": "ROSE-A"}),
        json!({"type": "end_of_day"}),
    ];
    templates.choose(rng).unwrap().clone()
}

const WEIRD_STRINGS: &[&str] = &[
    "",
    " ",
    "1.234",
    "1e5",
    "NaN",
    "Infinity",
    "-0.00",
    "0.001",
    " 1.00",
    "1.00 ",
    "1,00",
    "+1.00",
    "0x10",
    "99999999999999999999999999.99",
    "-99999999999999999999.00",
    "１.００",
    "💐🌹",
    "\u{202e}evil",
    "zero\u{200b}width",
    "\u{0000}",
    "null",
    "true",
    "A1",
    "ROSE-A",
    "b1",
    "operator",
    "../../etc/passwd",
    "'; DROP TABLE lots; --",
    "%s%s%s%n",
];

fn random_string(rng: &mut ChaCha8Rng) -> String {
    if rng.gen_bool(0.6) {
        return WEIRD_STRINGS.choose(rng).unwrap().to_string();
    }
    let len = if rng.gen_bool(0.05) { rng.gen_range(100..5_000) } else { rng.gen_range(0..40) };
    (0..len)
        .map(|_| match rng.gen_range(0..4) {
            0 => rng.gen_range(b'a'..=b'z') as char,
            1 => char::from_u32(rng.gen_range(0x20..0x7f)).unwrap(),
            2 => char::from_u32(rng.gen_range(0x4e00..0x9fa5)).unwrap(),
            _ => char::from_u32(rng.gen_range(0x1f300..0x1f5ff)).unwrap_or('?'),
        })
        .collect()
}

fn random_value(rng: &mut ChaCha8Rng, depth: u32) -> Value {
    match rng.gen_range(0..12) {
        0 => Value::Null,
        1 => json!(rng.gen_bool(0.5)),
        2 => json!(rng.gen_range(-5i64..10)),
        3 => json!(*[u64::MAX, i64::MAX as u64, u32::MAX as u64 + 1, 1 << 53].choose(rng).unwrap()),
        4 => json!(*[i64::MIN, -1, i32::MIN as i64].choose(rng).unwrap()),
        5 => json!(*[1.5f64, -0.0, 3.45, 1e300, 2.00].choose(rng).unwrap()),
        6 | 7 => json!(random_string(rng)),
        8 if depth < 4 => Value::Array((0..rng.gen_range(0..4)).map(|_| random_value(rng, depth + 1)).collect()),
        9 if depth < 4 => {
            let mut m = Map::new();
            for _ in 0..rng.gen_range(0..4) {
                m.insert(random_string(rng), random_value(rng, depth + 1));
            }
            Value::Object(m)
        }
        _ => json!(random_string(rng)),
    }
}

fn nested(depth: usize, open: char, close: char) -> String {
    let mut s = String::with_capacity(depth * 2);
    s.extend(std::iter::repeat_n(open, depth));
    s.extend(std::iter::repeat_n(close, depth));
    s
}

/// One fuzz frame: text (usually) or binary.
fn fuzz_frame(n: &Names, rng: &mut ChaCha8Rng, allowed_types: &[&str]) -> Message {
    if rng.gen_bool(0.03) {
        let len = rng.gen_range(0..200);
        return Message::binary((0..len).map(|_| rng.gen::<u8>()).collect::<Vec<u8>>());
    }
    let text = match rng.gen_range(0..20) {
        // Garbage and non-objects.
        0 => random_string(rng),
        1 => random_value(rng, 0).to_string(),
        2 => ["1e400", "18446744073709551616", "-9223372036854775809", "[]", "{}", "{\"type\":null}", "\u{feff}{}"]
            .choose(rng)
            .unwrap()
            .to_string(),
        3 => {
            let depth = rng.gen_range(100..3_000);
            if rng.gen_bool(0.5) {
                nested(depth, '[', ']')
            } else {
                format!("{{\"type\":\"ping\",\"x\":{}}}", nested(depth, '[', ']'))
            }
        }
        // Valid messages, mutated.
        _ => {
            let mut msg = valid_templates(n, rng);
            let mutations = rng.gen_range(0..4);
            for _ in 0..mutations {
                mutate(&mut msg, rng);
            }
            if msg["type"].as_str().is_some_and(|t| !allowed_types.contains(&t)) {
                msg["type"] = json!("ping");
            }
            if rng.gen_bool(0.7) {
                msg["req_id"] = match rng.gen_range(0..6) {
                    0 => json!(rng.gen_range(0u64..1_000_000)),
                    1 => json!("r".repeat(rng.gen_range(60..70))),
                    2 => random_value(rng, 2),
                    _ => json!(format!("f{}", rng.gen::<u32>())),
                };
            }
            let mut text = msg.to_string();
            match rng.gen_range(0..10) {
                0 => {
                    let mut cut = rng.gen_range(0..=text.len());
                    while !text.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    text.truncate(cut);
                }
                1 => {
                    let mut at = rng.gen_range(0..=text.len());
                    while !text.is_char_boundary(at) {
                        at -= 1;
                    }
                    let junk = *["\"", "}", ",", ":", "\\", "\u{0}", "🌸", "{", "]"].choose(rng).unwrap();
                    text.insert_str(at, junk);
                }
                _ => {}
            }
            text
        }
    };
    Message::text(text)
}

fn mutate(msg: &mut Value, rng: &mut ChaCha8Rng) {
    let obj = msg.as_object_mut().unwrap();
    let keys: Vec<String> = obj.keys().cloned().collect();
    match rng.gen_range(0..6) {
        0 if !keys.is_empty() => {
            let k = keys.choose(rng).unwrap();
            obj.remove(k);
        }
        1 | 2 if !keys.is_empty() => {
            let k = keys.choose(rng).unwrap().clone();
            obj.insert(k, random_value(rng, 0));
        }
        3 => {
            let k = *["participant", "buyer", "grower", "owner", "id", "roles", "token", "extra", "type"]
                .choose(rng)
                .unwrap();
            let v = if rng.gen_bool(0.5) { json!("b1") } else { random_value(rng, 1) };
            obj.insert(k.to_string(), v);
        }
        4 => {
            obj.insert("type".into(), json!(random_string(rng)));
        }
        _ => {
            let k = random_string(rng);
            obj.insert(k, random_value(rng, 1));
        }
    }
}

fn frame_req_id(msg: &Message) -> Option<Value> {
    let Message::Text(t) = msg else { return None };
    let v: Value = serde_json::from_str(t.as_str()).ok()?;
    let id = v.as_object()?.get("req_id")?.clone();
    match &id {
        Value::String(s) if s.chars().count() <= 64 => Some(id),
        Value::Number(n) if n.is_u64() && n.to_string().len() <= 64 => Some(id),
        _ => None,
    }
}

#[derive(Default)]
struct Tally {
    sent: usize,
    replies: BTreeMap<String, usize>,
    closes: usize,
    unexpected: Vec<String>,
}

/// Sends `count` fuzz frames on sessions logged in with `token` (or not logged in at all),
/// reconnecting when the server closes one with 1008 as the protocol allows.
async fn fuzz_session(
    server: &Server,
    token: Option<&str>,
    names: &Names,
    rng: &mut ChaCha8Rng,
    count: usize,
    types: &[&str],
) -> Tally {
    let mut tally = Tally::default();
    let mut session: Option<Client> = None;
    while tally.sent < count {
        let c = match session.as_mut() {
            Some(c) => c,
            None => {
                let mut c = server.connect("/ws").await;
                if let Some(t) = token {
                    c.login(t).await;
                }
                session.insert(c)
            }
        };
        let n = WINDOW.min(count - tally.sent);
        let mut expect_ids = HashSet::new();
        let mut shown = Vec::new();
        for _ in 0..n {
            let frame = fuzz_frame(names, rng, types);
            if let Some(id) = frame_req_id(&frame) {
                expect_ids.insert(id.to_string());
            }
            shown.push(preview(&format!("{frame:?}")));
            if c.try_send(frame).await.is_err() {
                break;
            }
            tally.sent += 1;
        }
        let mut got = 0;
        let mut closed = false;
        while got < n {
            match c.next_frame(REPLY_TIMEOUT).await {
                Some(Frame::Json(v)) => {
                    got += 1;
                    let ty = v["type"].as_str().unwrap_or("?").to_string();
                    if ty == "error" {
                        let code = v["code"].as_str().unwrap_or("?").to_string();
                        if !ERROR_CODES.contains(&code.as_str())
                            || code == "internal"
                            || v["message"].as_str().is_none_or(str::is_empty)
                        {
                            tally.unexpected.push(format!("bad error {v} for one of {shown:?}"));
                        }
                        *tally.replies.entry(format!("error:{code}")).or_default() += 1;
                    } else {
                        if !HARMLESS_REPLIES.contains(&ty.as_str()) {
                            tally.unexpected.push(format!("state-changing reply {v} to one of {shown:?}"));
                        }
                        *tally.replies.entry(ty).or_default() += 1;
                    }
                    if let Some(id) = v.get("req_id") {
                        expect_ids.remove(&id.to_string());
                    }
                }
                Some(Frame::Close(code, reason)) => {
                    if code != Some(1008) {
                        tally.unexpected.push(format!("closed with {code:?} {reason:?} after one of {shown:?}"));
                    }
                    closed = true;
                    break;
                }
                Some(other) => {
                    tally.unexpected.push(format!("unexpected {other:?} after one of {shown:?}"));
                    closed = true;
                    break;
                }
                None => {
                    tally
                        .unexpected
                        .push(format!("only {got} replies to {n} frames within {REPLY_TIMEOUT:?}: {shown:?}"));
                    closed = true;
                    break;
                }
            }
        }
        if closed {
            tally.closes += 1;
            session = None;
            continue;
        }
        if !expect_ids.is_empty() {
            tally.unexpected.push(format!("req_ids never echoed: {expect_ids:?} in {shown:?}"));
        }
        if tally.unexpected.len() > 20 {
            break;
        }
    }
    tally
}

async fn observe(server: &Server, tokens: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for t in tokens {
        let mut c = server.session(t).await;
        out.push(canonical(&strip_volatile(&get_account(&mut c).await)));
        // Without each order's `ts`: this build stamps it with the time of the query (reported
        // separately and checked in auction_morning).
        let orders: Vec<Value> = get_orders(&mut c)
            .await
            .into_iter()
            .map(|mut o| {
                o.as_object_mut().unwrap().remove("ts");
                o
            })
            .collect();
        out.push(canonical(&json!(orders)));
        out.push(canonical(&json!(get_lots(&mut c).await)));
    }
    // The public state, seq included: nothing may have been published. (`/health`'s seq is not
    // compared: this build reports the journal's sequence there, and rejected commands are
    // journaled too.)
    out.push(canonical(&server.feed().await.snapshot));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_bad_frames_change_nothing_and_the_server_keeps_serving() {
    let mut opts = ServerOpts::default();
    let help = serve_help();
    if help.contains("--config") {
        opts.config_toml = Some(FUZZ_CONFIG.to_string());
    } else {
        note("huashi serve has no --config: fuzzing under the default rate limits");
    }
    let mut server = Server::start(opts);
    let day = server.day.clone();

    // A market where nothing can be bought: every lot withdrawn or unsold, every book closed.
    let mut op = server.operator().await;
    let tg = register(&mut op, "g1", &["grower"], None).await;
    let tb = register(&mut op, "b1", &["buyer"], Some("1000.00")).await;
    let tf = register(&mut op, "fz", &["buyer"], Some("0.00")).await;
    let mut g = server.session(&tg).await;
    let mut b = server.session(&tb).await;
    let l1 = consign(&mut g, lot_msg("ROSE", "A1", 10, 5, "1.00")).await["lot_id"].as_u64().unwrap();
    let l2 = consign(&mut g, lot_msg("LILY", "B1", 10, 3, "1.00")).await["lot_id"].as_u64().unwrap();
    op.request(json!({"type": "withdraw_lot", "lot_id": l1})).await;
    configure_fast_clock(&mut op, 1).await;
    let mut feed = server.feed().await;
    op.request(json!({"type": "assign_lot", "lot_id": l2, "clock": 1, "start_price": "1.05"})).await;
    op.request(json!({"type": "start_clock", "clock": 1})).await;
    feed.next_matching(
        |v| v["type"] == "clock_state" && v["clock"] == 1 && v["state"] == "idle",
        Duration::from_secs(30),
    )
    .await
    .expect("the unsold lot leaves the clock idle");
    op.request(json!({"type": "set_book_state", "symbol": "ROSE-A", "state": "open"})).await;
    for (c, coid, side, price) in [(&mut g, "g1-s", "sell", "2.00"), (&mut b, "b1-b", "buy", "1.90")] {
        let r = c
            .request(json!({"type": "new_order", "client_order_id": coid, "symbol": "ROSE-A", "side": side,
                            "order_type": "limit", "price": price, "quantity": 10, "time_in_force": "gtc"}))
            .await;
        assert_eq!(r["type"], "order_accepted", "{r}");
    }
    op.request(json!({"type": "set_book_state", "symbol": "ROSE-A", "state": "closed"})).await;
    drop((op, g, b, feed));

    let tokens = vec![tg.clone(), tb.clone(), tf.clone()];
    let before = observe(&server, &tokens).await;

    // Another session pings throughout.
    let stop = Arc::new(AtomicBool::new(false));
    let pongs = Arc::new(AtomicU64::new(0));
    let mut pinger = server.session(&tb).await;
    let pinger_task = {
        let (stop, pongs) = (stop.clone(), pongs.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                pinger.request_timeout(json!({"type": "ping"}), REPLY_TIMEOUT).await?;
                pongs.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            Ok::<(), String>(())
        })
    };
    let mut feed = server.feed().await;

    let names = Names {
        lots: vec![l1, l2, 0, 999_999, u32::MAX as u64],
        coids: vec!["g1-s".into(), "b1-b".into(), "fz-1".into()],
        day,
    };
    let mut rng = ChaCha8Rng::seed_from_u64(SEED);
    // Everything but `login`: a failed re-login might fairly end the session's login.
    let logged_in_types = [
        "ping",
        "get_account",
        "get_lots",
        "get_orders",
        "get_statement",
        "register_participant",
        "set_credit_limit",
        "suspend_participant",
        "reinstate_participant",
        "define_product",
        "define_instrument",
        "consign_lot",
        "assign_lot",
        "configure_clock",
        "start_clock",
        "halt_clock",
        "withdraw_lot",
        "void_award",
        "bid",
        "standing_bid",
        "cancel_standing_bid",
        "set_book_state",
        "new_order",
        "cancel_order",
        "amend_order",
        "cancel_all",
        "end_of_day",
    ];
    let pre = fuzz_session(&server, None, &names, &mut rng, PRE_LOGIN_FRAMES, &logged_in_types).await;
    let main = fuzz_session(&server, Some(&tf), &names, &mut rng, FRAMES, &logged_in_types).await;
    stop.store(true, Ordering::Relaxed);
    let pinged = pinger_task.await.expect("pinger task");
    note(format!("pre-login: sent {} replies {:?} closes {}", pre.sent, pre.replies, pre.closes));
    note(format!("logged in: sent {} replies {:?} closes {}", main.sent, main.replies, main.closes));
    note(format!("pings answered during the fuzz: {}", pongs.load(Ordering::Relaxed)));

    assert!(server.is_running(), "the server died under fuzz; log tail:\n{}", tail(&server.log(), 3000));
    assert!(pre.unexpected.is_empty(), "pre-login fuzz:\n{}", pre.unexpected.join("\n"));
    assert!(main.unexpected.is_empty(), "logged-in fuzz:\n{}", main.unexpected.join("\n"));
    for (code, n) in &pre.replies {
        assert!(
            code == "error:unauthenticated" || code == "error:bad_request" || code == "error:rate_limited",
            "before login only unauthenticated/bad_request may answer, got {n} × {code}"
        );
    }
    assert!(pinged.is_ok(), "a second session stopped getting pongs during the fuzz: {pinged:?}");
    assert!(pongs.load(Ordering::Relaxed) > 0);
    let events = feed.drain_quiet(Duration::from_millis(300)).await;
    assert!(events.is_empty(), "the fuzz published events (state changed): {:?}", &events[..events.len().min(5)]);
    let after = observe(&server, &tokens).await;
    assert_eq!(before.len(), after.len());
    for (i, (b, a)) in before.iter().zip(&after).enumerate() {
        assert_eq!(b, a, "fuzz frames changed what participants can see (observation {i})");
    }

    server.stop_and_check_replays();
}
