//! The auction day as a hall runs it (issue 14), over the real protocol against the real binary:
//!
//! - `a_planned_day_runs_by_itself_in_catalogue_order`: master data checked and shown; clocks
//!   planned by product group with a start time; the day's draw recomputed here from the
//!   published seed with the test's own SplitMix64 and shuffle (protocol section 11); `plan_lots`
//!   placed exactly as the documented ordering and start-price rule say (the rule's VWAP taken
//!   from the previous day's sales, which the test made); the catalogue event, `get_catalogue`
//!   and `GET /api/catalogue` agree; the clocks start at their start time without `start_clock`,
//!   and auction the lots in catalogue order with `next` showing what comes; then the next day
//!   plans from the day's VWAPs; `huashi replay` reproduces the state hash.
//! - `presales_then_the_clock_conserve_money`: a lot partly sold by presale, then by the clock;
//!   offers closed when the lot goes on the clock; statements, fees, the day's cells and
//!   Σ net + fees = 0 all agree with the test's own books.
//! - `seats_buy_on_their_firm_s_credit_within_their_daily_limits`: a seat over its daily limit
//!   is refused while another seat of the firm still buys; the firm's credit bounds them all;
//!   the firm's statement names each line's seat and a seat's statement is its view of them.

use huashi_tests::ledger::{get_statement, Ledger};
use huashi_tests::*;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;

const CLOCK_T: Duration = Duration::from_secs(40);

// ───────────────────────────── protocol section 11, done again here ─────────────────────────────

/// SplitMix64 as protocol section 11 writes it.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// The published draw: growers with lots sorted by id, then from the last index down to 1 swap
/// element `i` with element `next() mod (i + 1)`.
fn draw(growers_with_lots: &[&str], seed_hex: &str) -> Vec<String> {
    assert_eq!(seed_hex.len(), 16, "the seed is 16 hexadecimal digits: {seed_hex}");
    let mut rng = SplitMix64(u64::from_str_radix(seed_hex, 16).expect("hexadecimal seed"));
    let mut order: Vec<String> = growers_with_lots.iter().map(|g| g.to_string()).collect();
    order.sort();
    order.dedup();
    for i in (1..order.len()).rev() {
        let j = (rng.next() % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
    order
}

/// A lot as the test consigned it, for working out the plan.
#[derive(Clone, Debug)]
struct Consigned {
    id: u64,
    grower: String,
    product: String,
    grade: String,
    min_price: i64,
}

/// A planned lot: (lot, clock, position, start price in fen).
type Placed = (u64, u64, u64, i64);

/// What `plan_lots` must do (protocol section 11): each planned product's consigned lots to its
/// clock, ordered by drawn grower order, then product code, then grade by its place on the scale,
/// then lot id; start price `max(min_price, the cell's last VWAP) × (1 + markup)` rounded up to the
/// step (0.01 here). Returns (lot, clock, position, start price in fen) and the unplanned lots.
fn expected_plan(
    lots: &[Consigned],
    order: &[String],
    plans: &BTreeMap<&str, u64>,
    scales: &BTreeMap<String, Vec<String>>,
    vwap: &BTreeMap<(&str, &str), i64>,
    markup_pct: i64,
) -> (Vec<Placed>, Vec<u64>) {
    let rank = |g: &str| order.iter().position(|o| o == g).expect("every grower with lots is drawn");
    let mut planned: Vec<&Consigned> = lots.iter().filter(|l| plans.contains_key(l.product.as_str())).collect();
    planned.sort_by_key(|l| {
        let grade = scales[&l.product].iter().position(|g| *g == l.grade).expect("grade on the scale");
        (rank(&l.grower), l.product.clone(), grade, l.id)
    });
    let mut next_position: BTreeMap<u64, u64> = BTreeMap::new();
    let assigned = planned
        .into_iter()
        .map(|l| {
            let clock = plans[l.product.as_str()];
            let position = next_position.entry(clock).or_insert(0);
            *position += 1;
            let base = vwap.get(&(l.product.as_str(), l.grade.as_str())).map_or(l.min_price, |v| (*v).max(l.min_price));
            // Up to the fen (the step is 0.01).
            let start = (base * (100 + markup_pct) + 99) / 100;
            (l.id, clock, *position, start)
        })
        .collect();
    let unplanned = lots.iter().filter(|l| !plans.contains_key(l.product.as_str())).map(|l| l.id).collect();
    (assigned, unplanned)
}

/// What a `lots_planned` reply placed, in its order.
fn placed(reply: &Value) -> Vec<Placed> {
    reply["assigned"]
        .as_array()
        .unwrap_or_else(|| panic!("lots_planned.assigned: {reply}"))
        .iter()
        .map(|a| {
            let int = |field: &str| a[field].as_u64().unwrap_or_else(|| panic!("{field}: {a}"));
            (int("lot_id"), int("clock"), int("position"), fen(&a["start_price"]))
        })
        .collect()
}

/// Seconds after midnight in Shanghai (+08:00) of engine time `ts` (µs).
fn shanghai_seconds(ts: u64) -> u64 {
    (ts / 1_000_000 + 8 * 3600) % 86_400
}

fn hhmmss(seconds: u64) -> String {
    format!("{:02}:{:02}:{:02}", seconds / 3600, seconds / 60 % 60, seconds % 60)
}

/// Consigns with master data; returns the lot.
async fn consign_with(
    grower: &mut Client,
    product: &str,
    grade: &str,
    containers: u64,
    min_price: &str,
    extra: Value,
) -> Value {
    let mut msg = lot_msg(product, grade, 10, containers, min_price);
    for (key, value) in extra.as_object().unwrap() {
        msg[key] = value.clone();
    }
    consign(grower, msg).await
}

fn assert_error(reply: &Value, code: &str, mentions: &str) {
    assert_eq!(reply["type"], "error", "expected error {code}, got {reply}");
    assert_eq!(reply["code"], code, "{reply}");
    let message = reply["message"].as_str().unwrap_or_default();
    assert!(message.contains(mentions), "the message names {mentions:?}: {reply}");
}

/// Registers the growers and the buyers (each with `credit`) and logs each in on its own session.
async fn desks(
    server: &Server,
    op: &mut Client,
    growers: &[&'static str],
    buyers: &[&'static str],
    credit: &str,
) -> BTreeMap<&'static str, Client> {
    let mut sessions = BTreeMap::new();
    let everyone =
        growers.iter().map(|g| (*g, "grower", None)).chain(buyers.iter().map(|b| (*b, "buyer", Some(credit))));
    for (id, role, credit) in everyone {
        let token = register(op, id, &[role], credit).await;
        sessions.insert(id, server.session(&token).await);
    }
    sessions
}

async fn ok(c: &mut Client, msg: Value, ty: &str) -> Value {
    let reply = c.request(msg.clone()).await;
    assert_eq!(reply["type"], ty, "{msg} → {reply}");
    reply
}

// ───────────────────────────── a planned day ─────────────────────────────

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_planned_day_runs_by_itself_in_catalogue_order() {
    let mut server = Server::start(ServerOpts::default().clocks(2));
    let mut op = server.operator().await;
    let mut feed = server.feed().await;
    let mut sessions = desks(&server, &mut op, &["g1", "g2", "g3", "g4"], &["b1", "b2"], "100000.00").await;
    for clock in [1, 2] {
        configure_fast_clock(&mut op, clock).await;
    }

    // Products and their grade scales, as the operator's console and the growers read them.
    let products = ok(&mut op, json!({"type": "get_products"}), "products").await;
    let scales: BTreeMap<String, Vec<String>> = products["products"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let grades = p["grades"].as_array().unwrap().iter().map(|g| g.as_str().unwrap().to_string()).collect();
            (p["code"].as_str().unwrap().to_string(), grades)
        })
        .collect();
    assert_eq!(scales["ROSE"], ["A1", "A2", "B1", "B2", "C1"], "ROSE's scale: {products}");
    let (status, api) = http_get(server.addr, "/api/products").await;
    assert_eq!(status, 200, "{api}");
    let api: Value = serde_json::from_str(&api).unwrap();
    assert_eq!(api["products"], products["products"], "/api/products and get_products agree");
    assert!(api["instruments"].as_array().unwrap().iter().any(|i| i["symbol"] == "ROSE-A"), "{api}");

    // Master data is checked: the grade on the product's scale, maturity 1–5, stem length 1–300,
    // a harvest no later than the day.
    let g1 = sessions.get_mut("g1").unwrap();
    let bad = [
        (json!({"grade": "C1", "product": "LILY"}), "bad_request", "grade"),
        (json!({"maturity": 6}), "bad_request", "maturity"),
        (json!({"stem_length_cm": 0}), "bad_request", "stem_length_cm"),
        (json!({"stem_length_cm": 301}), "bad_request", "stem_length_cm"),
        (json!({"harvest_day": "2999-01-01"}), "bad_request", "harvest_day"),
        (json!({"packaging": "sack"}), "bad_request", "packaging"),
        (json!({"variety": "x\u{202E}y"}), "bad_request", "variety"),
    ];
    for (fields, code, mentions) in bad {
        let mut msg = lot_msg("ROSE", "A1", 10, 2, "1.00");
        for (key, value) in fields.as_object().unwrap() {
            msg[key] = value.clone();
        }
        let reply = g1.request(msg).await;
        assert_error(&reply, code, mentions);
    }

    // ── Day 1: the planned auction, started by itself.
    let day1 = server.day.clone();
    let master = json!({"variety": "Carola", "stem_length_cm": 60, "maturity": 2, "packaging": "bucket",
                        "base": "Dounan, Yunnan", "batch": "D-01", "harvest_day": day1});
    let mut lots: Vec<Consigned> = Vec::new();
    let day1_lots = [
        ("g3", "ROSE", "B2", "1.00"),
        ("g1", "ROSE", "A1", "2.00"),
        ("g2", "LILY", "A1", "1.00"),
        ("g1", "ROSE", "B1", "1.50"),
        ("g4", "CARNATION", "A2", "0.50"),
        ("g2", "ROSE", "A1", "1.80"),
        ("g3", "LILY", "B1", "0.80"),
        ("g4", "EUCALYPTUS", "A1", "0.30"),
        ("g1", "PHALAENOPSIS", "A1", "3.00"),
    ];
    for (grower, product, grade, min_price) in day1_lots {
        let lot = consign_with(sessions.get_mut(grower).unwrap(), product, grade, 2, min_price, master.clone()).await;
        assert_eq!((lot["variety"].as_str(), lot["stem_length_cm"].as_u64()), (Some("Carola"), Some(60)), "{lot}");
        assert_eq!((lot["maturity"].as_u64(), lot["packaging"].as_str()), (Some(2), Some("bucket")), "{lot}");
        assert_eq!((lot["base"].as_str(), lot["batch"].as_str()), (Some("Dounan, Yunnan"), Some("D-01")), "{lot}");
        assert_eq!(lot["harvest_day"], day1, "{lot}");
        assert_eq!((lot["clock"].clone(), lot["position"].clone()), (Value::Null, Value::Null), "{lot}");
        lots.push(Consigned {
            id: lot["lot_id"].as_u64().unwrap(),
            grower: grower.into(),
            product: product.into(),
            grade: grade.into(),
            min_price: fen(&json!(min_price)),
        });
    }

    // Clock 1 auctions roses and carnations, clock 2 lilies and moth orchids, from a few seconds on.
    let ts = op.ping().await["ts"].as_u64().unwrap();
    let mut start = shanghai_seconds(ts) + 4;
    if start >= 86_400 {
        // Too close to midnight in Shanghai for a start time today: wait for the new day.
        tokio::time::sleep(Duration::from_secs(6)).await;
        start = 0;
    }
    let start_time = hhmmss(start);
    let plan1 =
        json!({"type": "set_clock_plan", "clock": 1, "products": ["ROSE", "CARNATION"], "start_time": start_time});
    let reply = ok(&mut op, plan1, "clock_plan").await;
    // The reply echoes a start on a whole minute as "HH:MM" (docs/protocol-notes.md).
    let echoed = if start.is_multiple_of(60) { start_time[..5].to_string() } else { start_time.clone() };
    assert_eq!(
        reply,
        json!({"type": "clock_plan", "req_id": reply["req_id"], "clock": 1, "products": ["ROSE", "CARNATION"], "start_time": echoed})
    );
    let clash = op.request(json!({"type": "set_clock_plan", "clock": 2, "products": ["LILY", "ROSE"]})).await;
    assert_error(&clash, "invalid_state", "ROSE");
    let plan2 =
        json!({"type": "set_clock_plan", "clock": 2, "products": ["LILY", "PHALAENOPSIS"], "start_time": start_time});
    ok(&mut op, plan2, "clock_plan").await;
    let plans: BTreeMap<&str, u64> = [("ROSE", 1), ("CARNATION", 1), ("LILY", 2), ("PHALAENOPSIS", 2)].into();

    // The draw, recomputed from the published seed.
    let drawn = ok(&mut op, json!({"type": "draw_order"}), "order_drawn").await;
    assert_eq!(drawn["day"], day1, "{drawn}");
    let growers: Vec<&str> = lots.iter().map(|l| l.grower.as_str()).collect();
    let order = draw(&growers, drawn["seed"].as_str().unwrap());
    let published: Vec<String> =
        drawn["growers"].as_array().unwrap().iter().map(|g| g.as_str().unwrap().into()).collect();
    assert_eq!(published, order, "the published order is the documented shuffle of the seed: {drawn}");
    let again = ok(&mut op, json!({"type": "draw_order"}), "order_drawn").await;
    assert_eq!((&again["seed"], &again["growers"]), (&drawn["seed"], &drawn["growers"]), "drawn once a day");

    // No VWAP yet: every start price is the reserve plus 50 %.
    let planned = ok(&mut op, json!({"type": "plan_lots"}), "lots_planned").await;
    let (want, unplanned) = expected_plan(&lots, &order, &plans, &scales, &BTreeMap::new(), 50);
    let got = placed(&planned);
    assert_eq!(got, want, "plan_lots follows protocol section 11: {planned}");
    assert_eq!(planned["unplanned"], json!(unplanned), "EUCALYPTUS is in no plan: {planned}");

    // The catalogue: the feed's event, the request and the page's JSON agree.
    let event = feed.next_of_type("catalogue", REPLY_TIMEOUT).await;
    let by_clock = |clock: u64| -> Vec<u64> { want.iter().filter(|w| w.1 == clock).map(|w| w.0).collect() };
    assert_eq!(event["clocks"], json!([{"clock": 1, "lot_ids": by_clock(1)}, {"clock": 2, "lot_ids": by_clock(2)}]));
    let catalogue = ok(&mut op, json!({"type": "get_catalogue"}), "catalogue").await;
    let (status, page) = http_get(server.addr, "/api/catalogue").await;
    assert_eq!(status, 200, "{page}");
    let page: Value = serde_json::from_str(&page).unwrap();
    assert_eq!(page["clocks"], catalogue["clocks"], "GET /api/catalogue = get_catalogue");
    for (i, clock) in catalogue["clocks"].as_array().unwrap().iter().enumerate() {
        let lots_here = clock["lots"].as_array().unwrap();
        let ids: Vec<u64> = lots_here.iter().map(|l| l["lot_id"].as_u64().unwrap()).collect();
        assert_eq!(ids, by_clock(i as u64 + 1), "catalogue order on clock {}", i + 1);
        for (p, lot) in lots_here.iter().enumerate() {
            check_lot(lot);
            assert!(lot.get("min_price").is_none(), "the catalogue never shows the reserve: {lot}");
            assert_eq!((lot["position"].as_u64(), lot["status"].as_str()), (Some(p as u64 + 1), Some("queued")));
            assert_eq!(lot["variety"], "Carola", "master data in the catalogue: {lot}");
        }
    }
    let (status, other_day) = http_get(server.addr, "/api/catalogue?day=2001-01-01").await;
    assert_eq!(status, 404, "{other_day}");
    let reply = op.request(json!({"type": "get_catalogue", "day": "2001-01-01"})).await;
    assert_error(&reply, "not_found", "2001-01-01");

    // Standing bids so that some lots sell: b1 takes the first ROSE A1 at 2.40, b2 the LILY A1 at 1.20.
    let first_rose_a1 = lots.iter().find(|l| l.product == "ROSE" && l.grade == "A1" && l.grower == "g1").unwrap().id;
    let lily_a1 = lots.iter().find(|l| l.product == "LILY" && l.grade == "A1").unwrap().id;
    for (buyer, lot, max_price) in [("b1", first_rose_a1, "2.40"), ("b2", lily_a1, "1.20")] {
        let msg = json!({"type": "standing_bid", "lot_id": lot, "max_price": max_price, "containers": 2});
        ok(sessions.get_mut(buyer).unwrap(), msg, "standing_bid_accepted").await;
    }
    let bids = ok(sessions.get_mut("b1").unwrap(), json!({"type": "get_standing_bids"}), "standing_bids").await;
    assert_eq!(bids["bids"].as_array().unwrap().len(), 1, "{bids}");
    assert_eq!(
        (bids["bids"][0]["lot_id"].as_u64(), bids["bids"][0]["max_price"].as_str()),
        (Some(first_rose_a1), Some("2.40"))
    );
    assert!(bids["bids"][0]["placed_ts"].as_u64().is_some(), "{bids}");

    // The clocks start by themselves at the start time: nobody sends start_clock. Each clock's
    // lots come in catalogue order; `next` shows the following (up to) six.
    let mut seen: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    let mut first_round_ts = None;
    let mut idle = 0;
    while idle < 2 {
        let wanted = |v: &Value| {
            v["type"] == "lot_on_clock"
                || (v["type"] == "clock_started" && v["round"] == 1)
                || (v["type"] == "clock_state" && v["state"] == "idle")
        };
        let ev = feed.next_matching(wanted, CLOCK_T).await.expect("the planned clocks start and run their lots");
        let clock = ev["clock"].as_u64().unwrap();
        match ev["type"].as_str().unwrap() {
            "clock_state" => idle += 1,
            "clock_started" => {
                first_round_ts.get_or_insert(ev["start_ts"].as_u64().unwrap());
            }
            _ => {
                let order_here = by_clock(clock);
                let lot_id = ev["lot"]["lot_id"].as_u64().unwrap();
                let at = order_here.iter().position(|id| *id == lot_id).expect("a planned lot");
                let next: Vec<u64> =
                    ev["next"].as_array().unwrap().iter().map(|l| l["lot_id"].as_u64().unwrap()).collect();
                let want_next: Vec<u64> = order_here[at + 1..].iter().take(6).copied().collect();
                assert_eq!(next, want_next, "next after lot {lot_id}: {ev}");
                seen.entry(clock).or_default().push(lot_id);
            }
        }
    }
    assert_eq!(seen.get(&1).cloned().unwrap_or_default(), by_clock(1), "clock 1 ran its lots in catalogue order");
    assert_eq!(seen.get(&2).cloned().unwrap_or_default(), by_clock(2), "clock 2 ran its lots in catalogue order");
    // The first round began after the planned start and its pre-roll, not before.
    let began = shanghai_seconds(first_round_ts.expect("a round started"));
    assert!(began >= start || start == 0, "the clocks started at {} ≥ {start_time}", hhmmss(began));
    for (buyer, lot, price) in [("b1", first_rose_a1, "2.40"), ("b2", lily_a1, "1.20")] {
        let lots_now = ok(sessions.get_mut(buyer).unwrap(), json!({"type": "get_lots"}), "lots").await;
        let lot = lots_now["lots"].as_array().unwrap().iter().find(|l| l["lot_id"] == lot).unwrap().clone();
        assert_eq!(
            (lot["status"].as_str(), lot["sold"].as_u64()),
            (Some("sold"), Some(2)),
            "{buyer} bought at {price}: {lot}"
        );
    }
    // The day's sales at 2.40 (ROSE A1) and 1.20 (LILY A1) are the next day's VWAPs.
    let settled = ok(&mut op, json!({"type": "end_of_day"}), "day_settled").await;
    let day2 = settled["next_day"].as_str().unwrap().to_string();

    // ── Day 2: a new draw and plan, from yesterday's prices; planned clocks start on their own
    // time, which is tomorrow's morning here, so the operator starts them by hand.
    let mut lots2: Vec<Consigned> = Vec::new();
    for (grower, product, grade, min_price) in [
        ("g2", "ROSE", "A1", "1.00"),
        ("g1", "ROSE", "A1", "3.00"),
        ("g3", "LILY", "A1", "1.00"),
        ("g3", "ROSE", "A2", "1.00"),
    ] {
        let lot = consign_with(sessions.get_mut(grower).unwrap(), product, grade, 1, min_price, json!({})).await;
        assert_eq!(lot["day"], day2, "{lot}");
        lots2.push(Consigned {
            id: lot["lot_id"].as_u64().unwrap(),
            grower: grower.into(),
            product: product.into(),
            grade: grade.into(),
            min_price: fen(&json!(min_price)),
        });
    }
    let drawn2 = ok(&mut op, json!({"type": "draw_order"}), "order_drawn").await;
    assert_eq!(drawn2["day"], day2);
    let growers2: Vec<&str> = lots2.iter().map(|l| l.grower.as_str()).collect();
    let order2 = draw(&growers2, drawn2["seed"].as_str().unwrap());
    assert_eq!(drawn2["growers"], json!(order2), "{drawn2}");
    let planned2 = ok(&mut op, json!({"type": "plan_lots", "start_markup_pct": "20"}), "lots_planned").await;
    let vwap: BTreeMap<(&str, &str), i64> = [(("ROSE", "A1"), 240), (("LILY", "A1"), 120)].into();
    let (want2, _) = expected_plan(&lots2, &order2, &plans, &scales, &vwap, 20);
    let got2 = placed(&planned2);
    assert_eq!(got2, want2, "day 2 starts from day 1's VWAPs: {planned2}");
    // ROSE A1 at 1.00: max(1.00, 2.40) × 1.2 = 2.88; at 3.00: 3.60; LILY A1: 1.44; ROSE A2: no VWAP, 1.20.
    let start_of = |id: u64| got2.iter().find(|g| g.0 == id).unwrap().3;
    assert_eq!(lots2.iter().map(|l| start_of(l.id)).collect::<Vec<_>>(), [288, 360, 144, 120]);
    for clock in [1, 2] {
        ok(&mut op, json!({"type": "start_clock", "clock": clock}), "clock_state").await;
    }
    let mut idle = 0;
    while idle < 2 {
        feed.next_matching(|v| v["type"] == "clock_state" && v["state"] == "idle", CLOCK_T)
            .await
            .expect("day 2 runs out");
        idle += 1;
    }
    ok(&mut op, json!({"type": "end_of_day"}), "day_settled").await;
    drop((op, feed, sessions));
    server.stop_and_check_replays();
}

// ───────────────────────────── presales ─────────────────────────────

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presales_then_the_clock_conserve_money() {
    let mut server = Server::start(ServerOpts::default().clocks(1));
    let day = server.day.clone();
    let mut op = server.operator().await;
    let mut feed = server.feed().await;
    let mut s = desks(&server, &mut op, &["g1", "g2"], &["b1", "b2"], "5000.00").await;
    let mut ledger = Ledger::default();
    // Slow enough that b2's live press lands while the price is well above the reserve.
    let settings = json!({"type": "configure_clock", "clock": 1, "step": "0.01", "tick_ms": 40, "pre_roll_ms": 50,
                          "pause_ms": 50, "restart_ticks": 10, "multi_buy_ms": 0});
    ok(&mut op, settings, "clock_configured").await;

    // g1's lot: 10 containers × 20 stems; 4 offered at 1.80 before the clock.
    let lot = consign(s.get_mut("g1").unwrap(), lot_msg("ROSE", "A1", 20, 10, "1.00")).await;
    ledger.consigned(&lot);
    let lot_id = lot["lot_id"].as_u64().unwrap();
    // A second lot sold out entirely by presale.
    let small = consign(s.get_mut("g2").unwrap(), lot_msg("LILY", "A2", 10, 2, "1.00")).await;
    ledger.consigned(&small);
    let small_id = small["lot_id"].as_u64().unwrap();

    let offer = json!({"type": "offer_presale", "lot_id": lot_id, "price": "1.80", "containers": 4});
    let foreign = s.get_mut("g2").unwrap().request(offer.clone()).await;
    assert_error(&foreign, "forbidden", "not yours");
    let too_many = s
        .get_mut("g1")
        .unwrap()
        .request(json!({"type": "offer_presale", "lot_id": lot_id, "price": "1.80", "containers": 11}))
        .await;
    assert_error(&too_many, "quantity_invalid", "containers");
    let offered = ok(s.get_mut("g1").unwrap(), offer, "presale_offered").await;
    assert_eq!(
        (offered["lot_id"].as_u64(), offered["price"].as_str(), offered["containers"].as_u64()),
        (Some(lot_id), Some("1.80"), Some(4))
    );
    let ev = feed.next_of_type("presale", REPLY_TIMEOUT).await;
    assert_eq!(
        (ev["action"].as_str(), ev["containers_left"].as_u64(), ev["price"].as_str()),
        (Some("offered"), Some(4), Some("1.80")),
        "{ev}"
    );
    ok(
        s.get_mut("g2").unwrap(),
        json!({"type": "offer_presale", "lot_id": small_id, "price": "2.00", "containers": 2}),
        "presale_offered",
    )
    .await;

    // b1 buys 3 of the 4; the grower hears of it as a presale; b2 cannot take 2 of the 1 left.
    let bought = ok(
        s.get_mut("b1").unwrap(),
        json!({"type": "buy_presale", "lot_id": lot_id, "containers": 3}),
        "presale_bought",
    )
    .await;
    assert_eq!(
        (bought["amount"].as_str(), bought["fee"].as_str(), bought["units"].as_u64()),
        (Some("108.00"), Some("1.50"), Some(60)),
        "{bought}"
    );
    assert_ts(&bought["ts"]);
    ledger.presale("b1", &bought);
    let sale = s.get_mut("g1").unwrap().next_of_type("lot_sale", REPLY_TIMEOUT).await;
    assert_eq!(
        (sale["kind"].as_str(), sale["buyer"].as_str(), sale["commission"].as_str()),
        (Some("presale"), Some("b1"), Some("5.40")),
        "{sale}"
    );
    let over =
        s.get_mut("b2").unwrap().request(json!({"type": "buy_presale", "lot_id": lot_id, "containers": 2})).await;
    assert_error(&over, "quantity_invalid", "1 offered");
    let own = s.get_mut("g1").unwrap().request(json!({"type": "buy_presale", "lot_id": lot_id, "containers": 1})).await;
    assert_error(&own, "forbidden", "buyer");
    let all = ok(
        s.get_mut("b2").unwrap(),
        json!({"type": "buy_presale", "lot_id": small_id, "containers": 2}),
        "presale_bought",
    )
    .await;
    ledger.presale("b2", &all);
    let lots = ok(&mut op, json!({"type": "get_lots"}), "lots").await;
    let find = |id: u64| lots["lots"].as_array().unwrap().iter().find(|l| l["lot_id"] == id).unwrap().clone();
    let (big, sold_out) = (find(lot_id), find(small_id));
    check_lot(&big);
    assert_eq!(
        (big["remaining"].as_u64(), big["sold"].as_u64(), big["status"].as_str()),
        (Some(7), Some(3), Some("consigned")),
        "{big}"
    );
    assert_eq!(big["presale"], json!({"price": "1.80", "containers": 1}), "{big}");
    assert_eq!((sold_out["status"].as_str(), sold_out["remaining"].as_u64()), (Some("sold"), Some(0)), "{sold_out}");
    // The day's cells count presale sales like clock sales.
    let (_, market) = http_get(server.addr, "/api/market").await;
    let market: Value = serde_json::from_str(&market).unwrap();
    let cell =
        market["cells"].as_array().unwrap().iter().find(|c| c["product"] == "ROSE" && c["grade"] == "A1").cloned();
    let cell = cell.unwrap_or_else(|| panic!("the ROSE A1 cell has the presale: {market}"));
    assert_eq!((cell["units"].as_u64(), cell["vwap"].as_str()), (Some(60), Some("1.80")), "{cell}");

    // On the clock, the offer closes; an offer on a lot on the clock is invalid_state.
    ok(&mut op, json!({"type": "assign_lot", "lot_id": lot_id, "clock": 1, "start_price": "3.00"}), "lot_assigned")
        .await;
    ok(&mut op, json!({"type": "start_clock", "clock": 1}), "clock_state").await;
    let closed = feed
        .next_matching(|v| v["type"] == "presale" && v["action"] == "closed", REPLY_TIMEOUT)
        .await
        .expect("the offer closes");
    assert_eq!((closed["lot_id"].as_u64(), closed["containers_left"].as_u64()), (Some(lot_id), Some(0)), "{closed}");
    let late = s
        .get_mut("g1")
        .unwrap()
        .request(json!({"type": "offer_presale", "lot_id": lot_id, "price": "1.50", "containers": 1}))
        .await;
    assert_error(&late, "invalid_state", "on the clock");
    let late_buy =
        s.get_mut("b2").unwrap().request(json!({"type": "buy_presale", "lot_id": lot_id, "containers": 1})).await;
    assert_error(&late_buy, "invalid_state", "on the clock");
    let round =
        feed.next_matching(|v| v["type"] == "clock_started" && v["lot_id"] == lot_id, CLOCK_T).await.expect("a round");
    assert_eq!(round["remaining"], 7, "what the presale left is auctioned: {round}");
    let bid = json!({"type": "bid", "clock": 1, "lot_id": lot_id, "round": round["round"], "containers": 2});
    let award = ok(s.get_mut("b2").unwrap(), bid, "award").await;
    ledger.award("b2", &award);
    feed.next_matching(|v| v["type"] == "clock_state" && v["state"] == "idle", CLOCK_T).await.expect("the lot ends");

    // The day settles; the statements, the fees and Σ net + fees = 0 agree with the test's books.
    let settled = ok(&mut op, json!({"type": "end_of_day"}), "day_settled").await;
    assert_eq!(settled["trades"], ledger.trades(), "{settled}");
    assert_eq!(fen(&settled["turnover"]), ledger.turnover(), "{settled}");
    assert_eq!(fen(&settled["fees"]), ledger.market_fees(), "{settled}");
    let mut sum = 0;
    for who in ["g1", "g2", "b1", "b2"] {
        let statement = get_statement(&mut op, &day, Some(who)).await;
        sum += ledger.check_statement(who, &day, &statement);
        let own = get_statement(s.get_mut(who).unwrap(), &day, None).await;
        assert_eq!(own["lines"], statement["lines"], "{who}'s own statement is the operator's view");
    }
    let b1 = get_statement(&mut op, &day, Some("b1")).await;
    assert_eq!(b1["lines"][0]["kind"], "presale", "{b1}");
    assert_eq!(sum + fen(&settled["fees"]), 0, "Σ net + fees = 0 with presales in the mix");
    drop((op, feed, s));
    server.stop_and_check_replays();
}

// ───────────────────────────── firms and seats ─────────────────────────────

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seats_buy_on_their_firm_s_credit_within_their_daily_limits() {
    let mut server = Server::start(ServerOpts::default().clocks(1));
    let day = server.day.clone();
    let mut op = server.operator().await;
    let mut ledger = Ledger::default();
    let g1 = register(&mut op, "g1", &["grower"], None).await;
    let f1 = register(&mut op, "f1", &["buyer"], Some("1000.00")).await;
    // Seats: a buyer only, of a buyer firm, with no credit of their own.
    let seat = |id: &str, limit: &str| json!({"type": "register_participant", "id": id, "name": format!("{id} seat"), "roles": ["buyer"], "firm": "f1", "daily_limit": limit});
    let mut with_credit = seat("s9", "10.00");
    with_credit["credit_limit"] = json!("10.00");
    assert_error(&op.request(with_credit).await, "bad_request", "daily_limit");
    let mut grower_seat = seat("s9", "10.00");
    grower_seat["roles"] = json!(["buyer", "grower"]);
    assert_error(&op.request(grower_seat).await, "bad_request", "buyer role only");
    let mut of_grower = seat("s9", "10.00");
    of_grower["firm"] = json!("g1");
    assert_error(&op.request(of_grower).await, "bad_request", "not a buyer firm");
    let mut no_firm = seat("s9", "10.00");
    no_firm["firm"] = json!("nobody");
    assert_error(&op.request(no_firm).await, "not_found", "nobody");
    let mut tokens = BTreeMap::new();
    for (id, limit) in [("s1", "300.00"), ("s2", "800.00")] {
        let reply = ok(&mut op, seat(id, limit), "participant_registered").await;
        tokens.insert(id, reply["token"].as_str().unwrap().to_string());
        ledger.seat(id, "f1");
    }
    let mut grower = server.session(&g1).await;
    let mut firm = server.session(&f1).await;
    let mut s1 = server.connect("/ws").await;
    let login = s1.login(&tokens["s1"]).await;
    assert_eq!((login["participant"].as_str(), login["firm"].as_str()), (Some("s1"), Some("f1")), "{login}");
    let mut s2 = server.session(&tokens["s2"]).await;

    // One big lot offered by presale: a container is 10 stems at 2.00 plus the 0.50 fee = 20.50.
    let lot = consign(&mut grower, lot_msg("ROSE", "A1", 10, 100, "1.00")).await;
    ledger.consigned(&lot);
    let lot_id = lot["lot_id"].as_u64().unwrap();
    ok(
        &mut grower,
        json!({"type": "offer_presale", "lot_id": lot_id, "price": "2.00", "containers": 100}),
        "presale_offered",
    )
    .await;
    let buy = |n: u64| json!({"type": "buy_presale", "lot_id": lot_id, "containers": n});

    // s1: 14 containers (287.00) fit its 300.00; one more does not — named as its daily limit.
    let bought = ok(&mut s1, buy(14), "presale_bought").await;
    ledger.presale("s1", &bought);
    let copy = firm.next_of_type("presale_bought", REPLY_TIMEOUT).await;
    assert_eq!(copy["containers"], 14, "the firm sees its seat's purchase: {copy}");
    let refused = s1.request(buy(1)).await;
    assert_error(&refused, "credit_limit", "daily_limit");
    assert!(refused["message"].as_str().unwrap().contains("s1"), "{refused}");
    // s2, same firm, still buys: 30 containers (615.00) of its 800.00.
    let bought = ok(&mut s2, buy(30), "presale_bought").await;
    ledger.presale("s2", &bought);
    // 5 more (102.50) fit s2's own limit but not the firm's credit: 287 + 615 + 102.50 > 1000.
    let refused = s2.request(buy(5)).await;
    assert_error(&refused, "credit_limit", "f1");
    let bought = ok(&mut s2, buy(4), "presale_bought").await;
    ledger.presale("s2", &bought);
    // An open buy order holds the seat's daily limit too: 1 stem at 20.00 no longer fits s1.
    ok(&mut op, json!({"type": "set_book_state", "symbol": "ROSE-A", "state": "pre_open"}), "book_state").await;
    let order = json!({"type": "new_order", "client_order_id": "o1", "symbol": "ROSE-A", "side": "buy", "order_type": "limit",
                       "price": "20.00", "quantity": 1, "time_in_force": "day"});
    assert_error(&s1.request(order).await, "credit_limit", "daily_limit");
    // s2's order fits: its firm sees it among its own open orders, s1 does not.
    let small = json!({"type": "new_order", "client_order_id": "o2", "symbol": "ROSE-A", "side": "buy", "order_type": "limit",
                       "price": "1.00", "quantity": 1, "time_in_force": "day"});
    ok(&mut s2, small, "order_accepted").await;
    // Every private report of a seat reaches its firm too: here s2's order.
    let seen = firm.next_matching(|v| v["type"] == "order_accepted", REPLY_TIMEOUT).await.expect("the firm sees it");
    assert_eq!(seen["client_order_id"], "o2", "{seen}");
    let coids = |orders: &Value| -> Vec<String> {
        orders["orders"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["client_order_id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(coids(&ok(&mut firm, json!({"type": "get_orders"}), "orders").await), ["o2"]);
    assert_eq!(coids(&ok(&mut s1, json!({"type": "get_orders"}), "orders").await), Vec::<String>::new());

    // Accounts: a seat's shows its daily limit and its own purchases; the firm's, all of them.
    let a1 = get_account(&mut s1).await;
    assert_eq!((a1["credit_limit"].as_str(), a1["exposure"].as_str()), (Some("300.00"), Some("287.00")), "{a1}");
    let af = get_account(&mut firm).await;
    // 984.00 bought by its seats, and 1.00 held by s2's open order.
    assert_eq!((af["credit_limit"].as_str(), af["exposure"].as_str()), (Some("1000.00"), Some("985.00")), "{af}");
    // The operator changes a seat's daily limit (a seat has no credit limit of its own).
    let set = ok(
        &mut op,
        json!({"type": "set_credit_limit", "participant": "s1", "daily_limit": "350.00"}),
        "credit_limit_set",
    )
    .await;
    assert_eq!((set["limit"].clone(), set["daily_limit"].as_str()), (Value::Null, Some("350.00")), "{set}");
    assert_error(
        &op.request(json!({"type": "set_credit_limit", "participant": "s1", "limit": "10.00"})).await,
        "bad_request",
        "seat",
    );

    // Standing bids: a seat sees its own, the firm all of its seats'.
    let other = consign(&mut grower, lot_msg("LILY", "A1", 10, 2, "1.00")).await;
    let msg = json!({"type": "standing_bid", "lot_id": other["lot_id"], "max_price": "1.10", "containers": 1});
    ok(&mut s1, msg, "standing_bid_accepted").await;
    let seen_by = |bids: &Value| {
        bids["bids"].as_array().unwrap().iter().map(|b| b["buyer"].as_str().unwrap().to_string()).collect::<Vec<_>>()
    };
    assert_eq!(seen_by(&ok(&mut firm, json!({"type": "get_standing_bids"}), "standing_bids").await), ["s1"]);
    assert_eq!(
        seen_by(&ok(&mut s2, json!({"type": "get_standing_bids"}), "standing_bids").await),
        Vec::<String>::new()
    );
    ok(&mut op, json!({"type": "set_book_state", "symbol": "ROSE-A", "state": "closed"}), "book_state").await;

    // The day settles over firms: f1's statement carries its seats' lines, each naming its seat;
    // a seat reads its own lines; Σ net + fees = 0 without the seats.
    let settled = ok(&mut op, json!({"type": "end_of_day"}), "day_settled").await;
    let mut sum = 0;
    for who in ["g1", "f1"] {
        let statement = get_statement(&mut op, &day, Some(who)).await;
        sum += ledger.check_statement(who, &day, &statement);
    }
    assert_eq!(sum + fen(&settled["fees"]), 0, "money is conserved over firms");
    let f1_statement = get_statement(&mut firm, &day, None).await;
    let seats: Vec<&str> =
        f1_statement["lines"].as_array().unwrap().iter().map(|l| l["seat"].as_str().unwrap()).collect();
    assert_eq!(seats, ["s1", "s2", "s2"], "{f1_statement}");
    let s1_view = get_statement(&mut s1, &day, None).await;
    let lines = s1_view["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 1, "s1 sees its own line only: {s1_view}");
    assert_eq!((lines[0]["seat"].as_str(), lines[0]["units"].as_u64()), (Some("s1"), Some(140)), "{s1_view}");
    let peek = s2.request(json!({"type": "get_statement", "day": day, "participant": "s1"})).await;
    assert_error(&peek, "forbidden", "own");
    drop((op, grower, firm, s1, s2));
    server.stop_and_check_replays();
}

// ───────────────────────────── a big hall's plan ─────────────────────────────

/// More lots than one slice of `plan_lots` places (1,000): the core places them on journaled
/// ticks, and the gateway answers the request once, with every lot, when the last slice is in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_big_plan_is_answered_once_when_its_last_slice_is_placed() {
    // A small write buffer, so that this day's catalogue (about half a megabyte) is more than one
    // WebSocket reply may carry.
    let opts =
        ServerOpts { config_toml: Some("[limits]\nwrite_buffer_bytes_max = 262144\n".into()), ..ServerOpts::default() };
    let mut server = Server::start(opts.clocks(2));
    let mut op = server.operator().await;
    let mut feed = server.feed().await;
    let growers = 6;
    let per_grower = 190;
    let mut sessions = Vec::new();
    for g in 0..growers {
        let token = register(&mut op, &format!("g{g}"), &["grower"], None).await;
        let mut c = server.connect("/ws").await;
        c.login(&token).await;
        sessions.push(c);
    }
    let mut lot_ids = Vec::new();
    for (g, grower) in sessions.iter_mut().enumerate() {
        let msgs: Vec<Value> = (0..per_grower)
            .map(|i| lot_msg(if (g + i) % 3 == 0 { "LILY" } else { "ROSE" }, "A1", 10, 1, "1.00"))
            .collect();
        for reply in grower.request_many(msgs, 32).await {
            assert_eq!(reply["type"], "lot_consigned", "{reply}");
            lot_ids.push(reply["lot"]["lot_id"].as_u64().unwrap());
        }
    }
    let total = growers * per_grower;
    ok(&mut op, json!({"type": "set_clock_plan", "clock": 1, "products": ["ROSE"]}), "clock_plan").await;
    ok(&mut op, json!({"type": "set_clock_plan", "clock": 2, "products": ["LILY"]}), "clock_plan").await;
    ok(&mut op, json!({"type": "draw_order"}), "order_drawn").await;
    let planned = ok(&mut op, json!({"type": "plan_lots", "start_markup_pct": "10"}), "lots_planned").await;
    let assigned = planned["assigned"].as_array().unwrap();
    assert_eq!(assigned.len(), total, "one reply with every lot: {}", preview(&planned.to_string()));
    for clock in [1, 2] {
        let positions: Vec<u64> =
            assigned.iter().filter(|a| a["clock"] == clock).map(|a| a["position"].as_u64().unwrap()).collect();
        assert_eq!(positions, (1..=positions.len() as u64).collect::<Vec<_>>(), "clock {clock}");
        assert!(assigned.iter().all(|a| a["start_price"] == "1.10"), "1.00 + 10 %");
    }
    // Nothing else of the operator's is answered out of turn: the next request's reply follows.
    ok(&mut op, json!({"type": "get_limits"}), "limits").await;
    let event = feed.next_of_type("catalogue", REPLY_TIMEOUT).await;
    let listed: usize =
        event["clocks"].as_array().unwrap().iter().map(|c| c["lot_ids"].as_array().unwrap().len()).sum();
    assert_eq!(listed, total);
    let own = ok(&mut sessions[0], json!({"type": "get_lots", "status": "queued"}), "lots").await;
    assert_eq!(own["lots"].as_array().unwrap().len(), per_grower, "a grower's own lots, all queued");
    // Too big for one reply on /ws: a clear error naming what and how big, the session goes on;
    // HTTP serves the catalogue whole.
    let too_big = op.request(json!({"type": "get_catalogue"})).await;
    assert_error(&too_big, "limit_reached", "GET /api/catalogue");
    assert!(too_big["message"].as_str().unwrap().starts_with("the catalogue reply is "), "{too_big}");
    let too_many = op.request(json!({"type": "get_lots"})).await;
    assert_error(&too_many, "limit_reached", "the lots reply is");
    ok(&mut op, json!({"type": "get_limits"}), "limits").await;
    let (status, page) = http_get(server.addr, "/api/catalogue").await;
    assert_eq!(status, 200);
    let page: Value = serde_json::from_str(&page).unwrap();
    let listed: usize = page["clocks"].as_array().unwrap().iter().map(|c| c["lots"].as_array().unwrap().len()).sum();
    assert_eq!(listed, total);
    drop((op, feed, sessions));
    server.stop_and_check_replays();
}
