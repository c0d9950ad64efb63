//! Issue 15 in the browser: the pages of the people who are not the operator, after the sale
//! (protocol section 12). Each test sets the market up over the protocol, drives the page as a
//! person would and checks what it shows against what the protocol says.
//!
//! - `buyer_sees_its_goods_move_live_sets_a_destination_and_files_a_complaint`: `#/buyer`'s
//!   goods panel lists the buyer's dispatch line as `get_dispatch` has it, sets the destination,
//!   follows logistics' status changes live (`dispatch_updated`), files a complaint from the line
//!   and shows the operator's decision (`complaint_resolved`).
//! - `grower_page_shows_the_correction_and_the_quality_index`: an accepted complaint with a
//!   credit; after the end of the day the grower's page shows the `correction` line and the
//!   statement's totals as `get_statement` has them, and its quality index as `get_quality` has
//!   it, which is the index the test computes from the complaint it filed; the buyer's statement
//!   shows the credit; the next day the grower's new lot carries that `qi` on the clock view and
//!   in the catalogue.
//! - `logistics_moves_lines_with_big_buttons_and_a_warm_reading_alarms_the_buyer`: `#/logistics`
//!   groups the day's lines by dock and status as the buyers' destinations say, every button and
//!   field at least 48 px; a line moved with the buttons, a reading above the cold-chain maximum
//!   raises `temperature_alarm` to the buyer, whose page shows it at the top.
//! - `a_lots_trace_opens_from_the_qr_code_on_the_delivery_note` (the issue's own): the buyer's
//!   printable delivery note lists its lines; the QR code beside each lot is screenshotted from
//!   the page and decoded (rqrr), the browser goes to the decoded URL and the trace page shows the
//!   lot, its grower, the sale and the goods' path as `GET /api/lots/{id}` has them.
//!
//! Screenshots: `goods.png`, `grower-quality.png`, `logistics.png`, `delivery-note.png`,
//! `trace.png` in `target/screenshots/`.

use super::*;
use chromiumoxide::cdp::browser_protocol::page::CaptureScreenshotFormat;
use chromiumoxide::page::MediaTypeParams;

/// Smallest side of a touch target on the logistics page (WCAG 2.5.5 asks 44 px; gloves, more).
const TOUCH_PX_MIN: f64 = 48.0;

/// A clock sale of the whole of each `(lot, buyer)`: each buyer's standing bid at the start price
/// wins its lot as soon as its round starts. Returns the feed's `clock_award`s, in lot order.
async fn clock_sales(m: &mut Market, sales: &mut [(u64, &mut Client, u64)], price: &str) -> Vec<Value> {
    configure_fast_clock(&mut m.op, 1).await;
    for (lot, buyer, containers) in sales.iter_mut() {
        let sb = buyer
            .request(json!({"type": "standing_bid", "lot_id": *lot, "max_price": price, "containers": *containers}))
            .await;
        assert_eq!(sb["type"], "standing_bid_accepted", "{sb}");
        m.assign(*lot, 1, price).await;
    }
    m.start_clock(1).await;
    let mut awards = Vec::new();
    for (lot, _, containers) in sales.iter() {
        let lot = *lot;
        let award = m
            .feed
            .next_matching(|v| v["type"] == "clock_award" && v["lot_id"] == lot, CLOCK_T)
            .await
            .unwrap_or_else(|| panic!("the standing bid on lot {lot} wins"));
        assert_eq!(
            (award["price"].as_str(), award["containers"].as_u64()),
            (Some(price), Some(*containers)),
            "{award}"
        );
        awards.push(award);
    }
    awards
}

/// `get_dispatch` (of `day`, of `buyer` when given): the lines, their fields checked.
async fn dispatch(c: &mut Client, day: Option<&str>, buyer: Option<&str>) -> Vec<Value> {
    let mut msg = json!({"type": "get_dispatch"});
    if let Some(day) = day {
        msg["day"] = json!(day);
    }
    if let Some(buyer) = buyer {
        msg["buyer"] = json!(buyer);
    }
    let reply = c.request(msg).await;
    check_fields(&reply, "dispatch", &[("day", Kind::Str), ("lines", Kind::Arr)]);
    let lines = reply["lines"].as_array().unwrap().clone();
    for l in &lines {
        for field in
            ["ref", "kind", "buyer", "product", "units", "destination", "status", "location", "temperature_alarm"]
        {
            assert!(l.get(field).is_some(), "a dispatch line has `{field}`: {l}");
        }
        assert!(l["temperature_c"].is_null() || is_money(&l["temperature_c"]), "temperature as a decimal string: {l}");
    }
    lines
}

fn line_of<'a>(lines: &'a [Value], reference: &str) -> &'a Value {
    lines.iter().find(|l| l["ref"] == reference).unwrap_or_else(|| panic!("no line {reference} in {lines:?}"))
}

async fn update(
    c: &mut Client,
    reference: &str,
    status: &str,
    temperature: Option<&str>,
    location: Option<&str>,
) -> Value {
    let mut msg = json!({"type": "update_dispatch", "ref": reference, "status": status});
    if let Some(t) = temperature {
        msg["temperature_c"] = json!(t);
    }
    if let Some(l) = location {
        msg["location"] = json!(l);
    }
    let reply = c.request(msg).await;
    assert_eq!(reply["type"], "dispatch_updated", "{reply}");
    reply
}

/// The element's rendered width and height in CSS pixels.
async fn size(tab: &Tab, testid: &str) -> (f64, f64) {
    let js = format!(
        "(() => {{ const r = document.querySelector({sel}).getBoundingClientRect(); return [r.width, r.height]; }})()",
        sel = json!(chrome::selector(testid))
    );
    let v = tab.eval(&js).await;
    (v[0].as_f64().unwrap_or(0.0), v[1].as_f64().unwrap_or(0.0))
}

async fn day_of(m: &Market) -> String {
    m.server.health().await["day"].as_str().unwrap().to_string()
}

// ───────────────────────────── the buyer's goods ─────────────────────────────

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buyer_sees_its_goods_move_live_sets_a_destination_and_files_a_complaint() {
    let Some(exe) = browser_or_skip() else { return };
    let mut m = Market::open(1).await;
    let (_, mut grower) = m.participant("g-kunming", &["grower"], None).await;
    let (buyer_token, mut buyer) = m.participant("b-jingan", &["buyer"], Some("20000.00")).await;
    let (_, mut mover) = m.participant("l-coldchain", &["logistics"], None).await;
    let lot = consign(&mut grower, lot_msg("ROSE", "A1", 20, 3, "1.00")).await["lot_id"].as_u64().unwrap();
    clock_sales(&mut m, &mut [(lot, &mut buyer, 3)], "3.00").await;
    let reference = format!("clock:{lot}:1:1");
    let lines = dispatch(&mut buyer, None, None).await;
    assert_eq!(lines.len(), 1, "one purchase, one line: {lines:?}");
    let line = line_of(&lines, &reference);
    assert_eq!(
        (line["status"].as_str(), line["containers"].as_u64(), line["units"].as_u64()),
        (Some("awaiting"), Some(3), Some(60))
    );

    let browser = Chrome::launch(&exe).await;
    let tab = browser.open(&m.url("buyer")).await;
    log_in(&tab, &buyer_token, "b-jingan").await;
    let row = format!("dispatch-{reference}");
    let shown = tab.wait_for(&row, "the purchase's dispatch line", DOM_TIMEOUT, |p| Some(p.clone())).await;
    assert_eq!(shown.data("status"), Some("awaiting"), "{shown:?}");
    for part in [format!("#{lot}"), "Rose".to_string(), "3 containers · 60 units".to_string(), "Awaiting".to_string()]
    {
        assert!(shown.text.contains(&part), "the line should show {part:?}: {:?}", shown.text);
    }
    tab.wait_for("dispatch", "one line", DOM_TIMEOUT, |p| (p.data("count") == Some("1")).then_some(())).await;

    // The destination, set on the page, is what the server then says of the line.
    choose(&tab, "destination-kind", "pickup").await;
    tab.type_into("destination-place", "D7").await;
    tab.click("destination-submit").await;
    tab.wait_for("destination-current", "the destination set", DOM_TIMEOUT, |p| {
        (p.data("destination") == Some("pickup:D7")).then_some(())
    })
    .await;
    let lines = dispatch(&mut buyer, None, None).await;
    assert_eq!(line_of(&lines, &reference)["destination"], "pickup:D7", "{lines:?}");
    tab.wait_for(&row, "the line going to dock D7", DOM_TIMEOUT, |p| {
        (p.data("destination") == Some("pickup:D7") && p.text.contains("dock D7")).then_some(())
    })
    .await;

    // Logistics moves the line twice: the page follows without a reload.
    let picked = update(&mut mover, &reference, "picked", Some("5.50"), Some("Hall 2")).await;
    assert_eq!(
        (picked["status"].as_str(), picked["temperature_c"].as_str()),
        (Some("picked"), Some("5.50")),
        "{picked}"
    );
    tab.wait_for(&row, "the line picked, live", DOM_TIMEOUT, |p| {
        (p.data("status") == Some("picked")
            && p.data("temperature") == Some("5.50")
            && p.data("location") == Some("Hall 2"))
        .then_some(())
    })
    .await;
    update(&mut mover, &reference, "cold_store", None, Some("Cold store 1")).await;
    tab.wait_for(&format!("{row}-status"), "the line in the cold store, live", DOM_TIMEOUT, |p| {
        p.text.starts_with("Cold store").then_some(())
    })
    .await;
    assert_eq!(
        tab.probe(&row).await.unwrap().data("alarm"),
        Some("false"),
        "5.50 °C is within the 8 °C of cut flowers"
    );
    let shot = tab.screenshot("goods").await;
    chrome::say(&format!("the buyer's goods: {}", shot.display()));

    // A complaint from the line: one container damaged.
    tab.click(&format!("complain-{reference}")).await;
    tab.wait_for("complaint-form", "the complaint form for the line", DOM_TIMEOUT, |p| {
        (p.visible && p.data("ref") == Some(reference.as_str())).then_some(())
    })
    .await;
    choose(&tab, "complaint-reason", "damaged").await;
    tab.type_into("complaint-containers", "1").await;
    tab.type_into("complaint-note", "stems broken in transit").await;
    tab.click("complaint-submit").await;
    tab.wait_for("complaints", "the complaint listed", DOM_TIMEOUT, |p| (p.data("count") == Some("1")).then_some(()))
        .await;
    let ids: Vec<String> = row_ids(&tab, "complaints", "complaint-")
        .await
        .into_iter()
        .filter(|id| id.strip_prefix("complaint-").is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit())))
        .collect();
    assert_eq!(ids.len(), 1, "{ids:?}");
    let complaint_id: u64 = ids[0].strip_prefix("complaint-").unwrap().parse().unwrap();
    let filed = tab.probe(&ids[0]).await.unwrap();
    assert_eq!((filed.data("status"), filed.data("ref")), (Some("open"), Some(reference.as_str())), "{filed:?}");
    assert!(filed.text.contains("Damaged") && filed.text.contains("1 container"), "{filed:?}");

    // The operator accepts it with a credit; the buyer's page shows the decision.
    let resolved = m
        .op
        .request(json!({"type": "resolve_complaint", "complaint_id": complaint_id, "decision": "accepted", "credit": "12.00"}))
        .await;
    assert_eq!(resolved["type"], "complaint_resolved", "{resolved}");
    assert_eq!(
        (resolved["decision"].as_str(), resolved["credit"].as_str()),
        (Some("accepted"), Some("12.00")),
        "{resolved}"
    );
    let outcome = tab
        .wait_for(&ids[0], "the complaint accepted", DOM_TIMEOUT, |p| {
            (p.data("decision") == Some("accepted")).then(|| p.clone())
        })
        .await;
    assert_eq!(outcome.data("credit"), Some("12.00"), "{outcome:?}");
    assert!(outcome.text.contains("¥12.00"), "{outcome:?}");
    tab.assert_no_errors().await;
    browser.close().await;
}

// ───────────────────────────── the grower: correction and quality ─────────────────────────────

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grower_page_shows_the_correction_and_the_quality_index() {
    let Some(exe) = browser_or_skip() else { return };
    let mut m = Market::open(1).await;
    let (grower_token, mut grower) = m.participant("g-songjiang", &["grower"], None).await;
    let (buyer_token, mut buyer) = m.participant("b-pudong", &["buyer"], Some("20000.00")).await;
    let day1 = day_of(&m).await;

    // 4 containers sold by presale at 2.00 × 20 stems; 2 of them complained about and accepted.
    let lot = consign(&mut grower, lot_msg("ROSE", "A1", 20, 4, "1.00")).await["lot_id"].as_u64().unwrap();
    let offer = grower.request(json!({"type": "offer_presale", "lot_id": lot, "price": "2.00", "containers": 4})).await;
    assert_eq!(offer["type"], "presale_offered", "{offer}");
    let bought = buyer.request(json!({"type": "buy_presale", "lot_id": lot, "containers": 4})).await;
    assert_eq!(bought["type"], "presale_bought", "{bought}");
    let reference = format!("presale:{lot}:1");
    let filed = buyer
        .request(json!({"type": "file_complaint", "ref": reference, "reason": "quality", "containers": 2, "note": "petals browning"}))
        .await;
    assert_eq!(filed["type"], "complaint_filed", "{filed}");
    let complaint_id = filed["complaint_id"].as_u64().unwrap();
    let credit = "30.00";
    let resolved = m
        .op
        .request(json!({"type": "resolve_complaint", "complaint_id": complaint_id, "decision": "accepted", "credit": credit}))
        .await;
    assert_eq!(resolved["type"], "complaint_resolved", "{resolved}");
    let before = grower.request(json!({"type": "get_quality", "grower": "g-songjiang"})).await;
    assert_eq!(before["type"], "quality", "{before}");
    assert!(before["qi"].is_null(), "the index moves only at the end of the day: {before}");
    m.end_of_day().await;

    // The index the test computes from the complaint it filed: 100 × (1 − 2 / 4).
    let quality = grower.request(json!({"type": "get_quality", "grower": "g-songjiang"})).await;
    assert_eq!(quality["type"], "quality", "{quality}");
    assert_eq!((quality["containers_sold"].as_u64(), quality["accepted"].as_u64()), (Some(4), Some(1)), "{quality}");
    assert_eq!(quality["complaints"].as_u64(), Some(1), "{quality}");
    assert_eq!(quality["qi"], "50.00", "100 × (1 − 2 accepted containers / 4 sold): {quality}");

    // The statements of the day of the decision carry the correction (grower pays, buyer gets).
    let statement = |who: &str| json!({"type": "get_statement", "day": day1, "participant": who});
    let grower_statement = m.op.request(statement("g-songjiang")).await;
    let buyer_statement = m.op.request(statement("b-pudong")).await;
    for (s, sign) in [(&grower_statement, -1), (&buyer_statement, 1)] {
        assert_eq!(s["type"], "statement", "{s}");
        let corrections: Vec<&Value> =
            s["lines"].as_array().unwrap().iter().filter(|l| l["kind"] == "correction").collect();
        assert_eq!(corrections.len(), 1, "one correction line: {s}");
        assert_eq!(corrections[0]["ref"].as_u64(), Some(complaint_id), "{s}");
        assert_eq!(fen(&corrections[0]["amount"]), sign * 3000, "{s}");
        assert_eq!(fen(&s["corrections"]), sign * 3000, "{s}");
    }

    let browser = Chrome::launch(&exe).await;
    let tab = browser.open(&m.url("grower")).await;
    log_in(&tab, &grower_token, "g-songjiang").await;
    for (testid, field) in [
        ("days", "days"),
        ("lots", "lots"),
        ("containers-sold", "containers_sold"),
        ("complaints", "complaints"),
        ("accepted", "accepted"),
    ] {
        tab.wait_text(&format!("quality-{testid}"), &quality[field].to_string()).await;
    }
    tab.wait_text("quality-qi", "50.00").await;
    tab.type_into("grower-statement-day", &day1).await;
    tab.click("grower-statement-submit").await;
    let line = tab
        .wait_for(
            &format!("grower-statement-line-correction-{complaint_id}"),
            "the correction line",
            DOM_TIMEOUT,
            |p| Some(p.clone()),
        )
        .await;
    assert_eq!(line.data("amount"), Some("-30.00"), "{line:?}");
    assert!(line.text.contains("-¥30.00"), "{line:?}");
    tab.wait_text("grower-statement-corrections", &cny(fen(&grower_statement["corrections"]))).await;
    tab.wait_text("grower-statement-net", &cny(fen(&grower_statement["net"]))).await;
    tab.wait_text("grower-statement-sold", &cny(fen(&grower_statement["total_sold"]))).await;
    let shot = tab.screenshot_full("grower-quality").await;
    chrome::say(&format!("grower quality and statement: {}", shot.display()));

    // The buyer's statement shows the credit.
    let buyer_tab = browser.open(&m.url("buyer")).await;
    log_in(&buyer_tab, &buyer_token, "b-pudong").await;
    buyer_tab.type_into("buyer-statement-day", &day1).await;
    buyer_tab.click("buyer-statement-submit").await;
    let credited = buyer_tab
        .wait_for(&format!("buyer-statement-line-correction-{complaint_id}"), "the buyer's credit", DOM_TIMEOUT, |p| {
            Some(p.clone())
        })
        .await;
    assert_eq!(credited.data("amount"), Some(credit), "{credited:?}");
    assert!(credited.text.contains("+¥30.00"), "{credited:?}");
    buyer_tab.wait_text("buyer-statement-net", &cny(fen(&buyer_statement["net"]))).await;

    // The next day the grower's new lot carries the index: on the clock view and in the catalogue.
    let next = consign(&mut grower, lot_msg("ROSE", "A2", 20, 5, "1.00")).await;
    assert_eq!(next["qi"], "50.00", "a lot object carries its grower's qi: {next}");
    let next_id = next["lot_id"].as_u64().unwrap();
    let plan = m.op.request(json!({"type": "set_clock_plan", "clock": 1, "products": ["ROSE"]})).await;
    assert_eq!(plan["type"], "clock_plan", "{plan}");
    let planned = m.op.request(json!({"type": "plan_lots"})).await;
    assert_eq!(planned["type"], "lots_planned", "{planned}");
    buyer_tab
        .wait_for(&format!("clock-1-next-{next_id}"), "the next lot's qi", DOM_TIMEOUT, |p| {
            (p.data("qi") == Some("50.00") && p.text.contains("QI 50.00")).then_some(())
        })
        .await;
    // A new hash is a navigation within the page (no load event to wait for).
    buyer_tab.eval("location.hash = '#/catalogue'").await;
    buyer_tab
        .wait_for(&format!("catalogue-lot-{next_id}"), "the catalogue row with the qi", DOM_TIMEOUT, |p| {
            (p.data("qi") == Some("50.00")).then_some(())
        })
        .await;
    buyer_tab.wait_text(&format!("catalogue-qi-{next_id}"), "50.00").await;
    // On the clock: the lot card shows it too, and links to the lot's trace.
    buyer_tab.eval("location.hash = '#/buyer'").await;
    m.configure(1, 100, 300, 5000).await;
    m.start_clock(1).await;
    buyer_tab
        .wait_for("clock-1-qi", "the qi of the lot on the clock", DOM_TIMEOUT, |p| {
            (p.data("qi") == Some("50.00") && p.text == "QI 50.00").then_some(())
        })
        .await;
    let href = buyer_tab
        .eval(&format!("document.querySelector({}).getAttribute('href')", json!(chrome::selector("clock-1-trace"))))
        .await;
    assert_eq!(href, json!(format!("/lot/{next_id}")), "the lot card links to the lot's trace");
    tab.assert_no_errors().await;
    buyer_tab.assert_no_errors().await;
    browser.close().await;
}

// ───────────────────────────── the logistics page ─────────────────────────────

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logistics_moves_lines_with_big_buttons_and_a_warm_reading_alarms_the_buyer() {
    let Some(exe) = browser_or_skip() else { return };
    let mut m = Market::open(1).await;
    let (_, mut grower) = m.participant("g-chongming", &["grower"], None).await;
    let (buyer_token, mut dock_buyer) = m.participant("b-huangpu", &["buyer"], Some("20000.00")).await;
    let (_, mut van_buyer) = m.participant("b-minhang", &["buyer"], Some("20000.00")).await;
    let (mover_token, _mover) = m.participant("l-tablet", &["logistics"], None).await;
    let roses = consign(&mut grower, lot_msg("ROSE", "A1", 20, 2, "1.00")).await["lot_id"].as_u64().unwrap();
    let lilies = consign(&mut grower, lot_msg("LILY", "A1", 10, 3, "1.00")).await["lot_id"].as_u64().unwrap();
    for (c, destination) in [(&mut dock_buyer, "pickup:D3"), (&mut van_buyer, "delivery:88 Caoan Rd")] {
        let set = c.request(json!({"type": "set_destination", "destination": destination})).await;
        assert_eq!(
            (set["type"].as_str(), set["destination"].as_str()),
            (Some("destination_set"), Some(destination)),
            "{set}"
        );
    }
    clock_sales(&mut m, &mut [(roses, &mut dock_buyer, 2), (lilies, &mut van_buyer, 3)], "2.50").await;
    let rose_ref = format!("clock:{roses}:1:1");
    let lily_ref = format!("clock:{lilies}:1:1");

    let browser = Chrome::launch(&exe).await;
    let tab = browser.open(&m.url("logistics")).await;
    log_in(&tab, &mover_token, "l-tablet").await;
    tab.wait_for("view-logistics", "the logistics page", DOM_TIMEOUT, |p| p.visible.then_some(())).await;
    tab.wait_for("logistics", "both lines", DOM_TIMEOUT, |p| (p.data("count") == Some("2")).then_some(())).await;
    // Grouped as the destinations say: dock D3 first, the deliveries apart; each by status.
    assert_eq!(
        row_ids(&tab, "logistics", "log-group-")
            .await
            .into_iter()
            .filter(|id| !id.ends_with("awaiting"))
            .collect::<Vec<_>>(),
        vec!["log-group-dock-D3".to_string(), "log-group-delivery".to_string()]
    );
    let in_group = |group: &str, reference: &str| {
        format!(
            "!!document.querySelector('[data-testid=\"log-group-{group}-awaiting\"] [data-testid=\"log-line-{reference}\"]')"
        )
    };
    assert_eq!(tab.eval(&in_group("dock-D3", &rose_ref)).await, json!(true), "the roses wait at dock D3");
    assert_eq!(tab.eval(&in_group("delivery", &lily_ref)).await, json!(true), "the lilies go by van");

    // Touch targets for gloved hands.
    for testid in [
        format!("move-{rose_ref}-picked"),
        format!("move-{rose_ref}-delivered"),
        format!("record-{rose_ref}"),
        format!("temp-{rose_ref}"),
        format!("place-{rose_ref}"),
    ] {
        let (w, h) = size(&tab, &testid).await;
        assert!(w >= TOUCH_PX_MIN && h >= TOUCH_PX_MIN, "{testid} is {w}×{h} px, under {TOUCH_PX_MIN} px");
    }

    // The buyer's page, open beside it.
    let buyer_tab = browser.open(&m.url("buyer")).await;
    log_in(&buyer_tab, &buyer_token, "b-huangpu").await;
    buyer_tab.wait_for(&format!("dispatch-{rose_ref}"), "the buyer's line", DOM_TIMEOUT, |p| Some(p.clone())).await;

    // Picked with one press; the buyer is told.
    tab.click(&format!("move-{rose_ref}-picked")).await;
    tab.wait_for(&format!("log-line-{rose_ref}"), "the roses picked", DOM_TIMEOUT, |p| {
        (p.data("status") == Some("picked")).then_some(())
    })
    .await;
    let moved = dock_buyer
        .next_matching(|v| v["type"] == "dispatch_updated" && v["status"] == "picked", T)
        .await
        .expect("the buyer told of the move");
    assert_eq!(moved["ref"], rose_ref.as_str(), "{moved}");
    buyer_tab
        .wait_for(&format!("dispatch-{rose_ref}"), "picked on the buyer's page", DOM_TIMEOUT, |p| {
            (p.data("status") == Some("picked")).then_some(())
        })
        .await;

    // Into the cold store at 9.50 °C: above the 8.00 °C of cut flowers.
    let products = m.op.request(json!({"type": "get_products"})).await;
    let rose_max = products["products"].as_array().unwrap().iter().find(|p| p["code"] == "ROSE").unwrap()
        ["max_temperature_c"]
        .clone();
    assert_eq!(rose_max, "8.00", "{products}");
    tab.type_into(&format!("temp-{rose_ref}"), "9.5").await;
    tab.type_into(&format!("place-{rose_ref}"), "Cold store 2").await;
    tab.click(&format!("move-{rose_ref}-cold_store")).await;
    let card = tab
        .wait_for(&format!("log-line-{rose_ref}"), "the roses in the cold store, alarmed", DOM_TIMEOUT, |p| {
            (p.data("status") == Some("cold_store") && p.data("alarm") == Some("true")).then(|| p.clone())
        })
        .await;
    assert_eq!((card.data("temperature"), card.data("location")), (Some("9.50"), Some("Cold store 2")), "{card:?}");
    let alarm = dock_buyer.next_of_type("temperature_alarm", T).await;
    assert_eq!(
        (alarm["ref"].as_str(), alarm["temperature_c"].as_str(), alarm["max_temperature_c"].as_str()),
        (Some(rose_ref.as_str()), Some("9.50"), Some("8.00")),
        "{alarm}"
    );
    assert_eq!(alarm["lot_id"].as_u64(), Some(roses), "{alarm}");
    let banner = buyer_tab
        .wait_for("temperature-alarms", "the alarm at the top of the buyer's page", DOM_TIMEOUT, |p| {
            p.visible.then(|| p.clone())
        })
        .await;
    assert_eq!(banner.data("count"), Some("1"), "{banner:?}");
    let item =
        buyer_tab.wait_for(&format!("alarm-{rose_ref}"), "the alarmed line", DOM_TIMEOUT, |p| Some(p.clone())).await;
    for part in ["9.50 °C", "max 8.00 °C", "Cold store 2"] {
        assert!(item.text.contains(part), "the alarm should say {part:?}: {:?}", item.text);
    }
    buyer_tab
        .wait_for(&format!("dispatch-{rose_ref}"), "the line alarmed", DOM_TIMEOUT, |p| {
            (p.data("alarm") == Some("true")).then_some(())
        })
        .await;
    let shot = buyer_tab.screenshot("goods-alarm").await;
    chrome::say(&format!("the buyer's alarm: {}", shot.display()));

    // Straight to delivered (a step may be skipped); then nothing more to press.
    tab.click(&format!("move-{rose_ref}-delivered")).await;
    tab.wait_for(&format!("log-line-{rose_ref}"), "the roses delivered", DOM_TIMEOUT, |p| {
        (p.data("status") == Some("delivered") && p.data("alarm") == Some("true")).then_some(())
    })
    .await;
    assert!(tab.probe(&format!("move-{rose_ref}-loaded")).await.is_none(), "no move after delivered");
    let lines = dispatch(&mut dock_buyer, None, None).await;
    let line = line_of(&lines, &rose_ref);
    assert_eq!(
        (line["status"].as_str(), line["temperature_alarm"].as_bool(), line["temperature_c"].as_str()),
        (Some("delivered"), Some(true), Some("9.50")),
        "the alarm stays for good: {line}"
    );
    tab.wait_for("log-group-dock-D3-delivered", "the delivered bucket", DOM_TIMEOUT, |p| {
        (p.data("count") == Some("1")).then_some(())
    })
    .await;
    let shot = tab.screenshot("logistics").await;
    chrome::say(&format!("logistics: {}", shot.display()));
    tab.assert_no_errors().await;
    buyer_tab.assert_no_errors().await;
    browser.close().await;
}

// ───────────────────────────── the delivery note's QR code → the lot's trace ─────────────────────────────

/// Decodes the one QR code in a PNG.
fn decode_qr(png: &[u8]) -> String {
    let img = image::load_from_memory_with_format(png, image::ImageFormat::Png).expect("a PNG").to_luma8();
    let (w, h) = img.dimensions();
    let mut prepared = rqrr::PreparedImage::prepare_from_greyscale(w as usize, h as usize, |x, y| {
        img.get_pixel(x as u32, y as u32)[0]
    });
    let grids = prepared.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code in the {w}×{h} screenshot");
    let (_, content) = grids[0].decode().unwrap_or_else(|e| panic!("decoding the QR code: {e:?}"));
    content
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lots_trace_opens_from_the_qr_code_on_the_delivery_note() {
    let Some(exe) = browser_or_skip() else { return };
    let mut m = Market::open(1).await;
    let (_, mut grower) = m.participant("g-dounan", &["grower"], None).await;
    let (buyer_token, mut buyer) = m.participant("b-xuhui", &["buyer"], Some("20000.00")).await;
    let (_, mut mover) = m.participant("l-hall", &["logistics"], None).await;
    let mut msg = master_lot("ROSE", "A1", 20, 2, "1.00", "Carola", 60, 3, "bucket");
    msg["origin"] = json!("Dounan, Yunnan");
    msg["base"] = json!("Dounan-3");
    msg["batch"] = json!("B-1204");
    msg["harvest_day"] = json!("2026-12-04");
    let lot = consign(&mut grower, msg).await["lot_id"].as_u64().unwrap();
    let awards = clock_sales(&mut m, &mut [(lot, &mut buyer, 2)], "3.10").await;
    let reference = format!("clock:{lot}:1:1");
    let set = buyer.request(json!({"type": "set_destination", "destination": "pickup:D5"})).await;
    assert_eq!(set["type"], "destination_set", "{set}");
    update(&mut mover, &reference, "picked", Some("6.20"), Some("Hall 1")).await;
    update(&mut mover, &reference, "cold_store", Some("4.00"), Some("Cold store 3")).await;
    let day = day_of(&m).await;

    let browser = Chrome::launch(&exe).await;
    let tab = browser.open(&format!("http://{}/#/delivery-note?day={day}", m.server.addr)).await;
    log_in(&tab, &buyer_token, "b-xuhui").await;
    tab.wait_for("delivery-note", "the delivery note", DOM_TIMEOUT, |p| {
        (p.data("state") == Some("shown") && p.data("day") == Some(day.as_str())).then_some(())
    })
    .await;
    tab.wait_text("note-buyer", "b-xuhui").await;
    let row =
        tab.wait_for(&format!("note-line-{reference}"), "the line on the note", DOM_TIMEOUT, |p| Some(p.clone())).await;
    for part in [
        reference.clone(),
        format!("#{lot}"),
        "Rose".to_string(),
        "A1".to_string(),
        "40".to_string(),
        "dock D5".to_string(),
        "Cold store".to_string(),
    ] {
        assert!(row.text.contains(&part), "the note's line should show {part:?}: {:?}", row.text);
    }
    let written = tab
        .wait_for(&format!("note-url-{lot}"), "the trace URL written out", DOM_TIMEOUT, |p| Some(p.text.clone()))
        .await;
    assert_eq!(written, format!("http://{}/lot/{lot}", m.server.addr));

    // The QR code as a phone sees it: a screenshot of the code and its white margin, decoded.
    let img = chrome::selector(&format!("note-qr-{lot}"));
    let loaded = format!(
        "(() => {{ const i = document.querySelector({}); return i.complete && i.naturalWidth > 0; }})()",
        json!(img)
    );
    let deadline = tokio::time::Instant::now() + DOM_TIMEOUT;
    while tab.eval(&loaded).await != json!(true) {
        assert!(tokio::time::Instant::now() < deadline, "the QR code image never loaded (GET /api/lots/{lot}/qr.svg)");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // chromiumoxide adds the scroll offset twice to an element's clip: keep the page unscrolled.
    tab.eval("window.scrollTo(0, 0)").await;
    let shot = tab.screenshot_full("delivery-note").await;
    chrome::say(&format!("delivery note: {}", shot.display()));
    let qr_box =
        tab.page.find_element(chrome::selector(&format!("note-qr-box-{lot}"))).await.expect("the QR code's box");
    let png = qr_box.screenshot(CaptureScreenshotFormat::Png).await.expect("a screenshot of the QR code");
    std::fs::write(chrome::screenshot_dir().join("delivery-note-qr.png"), &png).expect("save the QR screenshot");
    let url = decode_qr(&png);
    assert_eq!(url, written, "the QR code encodes the URL written beside it");

    // On paper: the sheet alone, the QR code on it; the app's bar and tools are not printed.
    tab.page.emulate_media_type(MediaTypeParams::Print).await.expect("print media");
    let printed =
        |testid: &str| format!("document.querySelector({}).checkVisibility()", json!(chrome::selector(testid)));
    for (testid, shown) in
        [("delivery-note", true), (&format!("note-qr-{lot}"), true), ("note-print", false), ("tab-buyer", false)]
    {
        assert_eq!(tab.eval(&printed(testid)).await, json!(shown), "{testid} printed: {shown}");
    }
    tab.page.emulate_media_type(MediaTypeParams::Screen).await.expect("screen media");

    // The phone opens it: the lot's trace.
    let (status, body) = http_get(m.server.addr, &format!("/api/lots/{lot}")).await;
    assert_eq!(status, 200, "GET /api/lots/{lot}: {body}");
    let trace: Value = serde_json::from_str(&body).expect("the trace is JSON");
    tab.page.goto(url.as_str()).await.unwrap_or_else(|e| panic!("goto {url}: {e}"));
    tab.wait_for("trace", "the lot's trace", DOM_TIMEOUT, |p| {
        (p.data("state") == Some("shown") && p.data("lot") == Some(lot.to_string().as_str())).then_some(())
    })
    .await;
    tab.wait_for("view-trace", "the trace view", DOM_TIMEOUT, |p| p.visible.then_some(())).await;
    for (testid, want) in [
        ("trace-variety", "Carola"),
        ("trace-base", "Dounan-3"),
        ("trace-batch", "B-1204"),
        ("trace-harvest-day", "2026-12-04"),
        ("trace-origin", "Dounan, Yunnan"),
        ("trace-grade", "A1"),
    ] {
        tab.wait_text(testid, want).await;
    }
    assert!(tab.probe("trace-product").await.unwrap().text.contains("Rose"));
    let grower_shown = tab.probe("trace-grower").await.unwrap();
    assert!(grower_shown.text.contains(trace["grower"]["id"].as_str().unwrap()), "{grower_shown:?} {trace}");
    let qi = tab.probe("trace-qi").await.unwrap();
    assert_eq!(qi.data("qi"), Some(trace["grower"]["qi"].as_str().unwrap_or("")), "{qi:?} {trace}");
    // Each sale, anonymous, as the trace has it.
    let sales = trace["sales"].as_array().expect("sales");
    assert_eq!(sales.len(), 1, "{trace}");
    assert_eq!((sales[0]["price"].as_str(), sales[0]["containers"].as_u64()), (awards[0]["price"].as_str(), Some(2)));
    let sale = tab.wait_for("trace-sale-1", "the sale", DOM_TIMEOUT, |p| Some(p.clone())).await;
    assert_eq!(
        (sale.data("price"), sale.data("containers"), sale.data("kind")),
        (Some("3.10"), Some("2"), Some("clock"))
    );
    assert!(!tab.probe("trace").await.unwrap().text.contains("b-xuhui"), "buyers stay anonymous on the trace");
    // The goods' path, with times, places and temperatures.
    let goods = tab
        .wait_for(&format!("trace-goods-{reference}"), "the goods on the trace", DOM_TIMEOUT, |p| Some(p.clone()))
        .await;
    assert_eq!((goods.data("status"), goods.data("alarm")), (Some("cold_store"), Some("false")), "{goods:?}");
    let path = trace["goods"][0]["path"].as_array().expect("the goods' path");
    for (i, step) in path.iter().enumerate() {
        let shown = tab.probe(&format!("trace-goods-{reference}-step-{}", i + 1)).await.expect("a step of the path");
        assert_eq!(shown.data("status"), step["status"].as_str(), "{shown:?} {step}");
        assert_eq!(shown.data("temperature"), Some(step["temperature_c"].as_str().unwrap_or("")), "{shown:?} {step}");
        if let Some(place) = step["location"].as_str().filter(|l| !l.is_empty()) {
            assert!(shown.text.contains(place), "{shown:?} {step}");
        }
    }
    let temperatures: Vec<&str> = path.iter().filter_map(|s| s["temperature_c"].as_str()).collect();
    assert!(temperatures.contains(&"6.20") && temperatures.contains(&"4.00"), "both readings on the path: {trace}");
    assert!(tab.probe("trace-alarm").await.is_none(), "no alarm within the maximum");
    let shot = tab.screenshot_full("trace").await;
    chrome::say(&format!("the lot's trace: {}", shot.display()));

    // Loaded onto a warm van: the trace shows the alarm, on the goods and on the step.
    update(&mut mover, &reference, "loaded", Some("11.00"), Some("Van 6")).await;
    tab.page.reload().await.expect("reload the trace");
    let banner = tab.wait_for("trace-alarm", "the alarm on the trace", DOM_TIMEOUT, |p| Some(p.clone())).await;
    assert_eq!(banner.data("count"), Some("1"), "{banner:?}");
    tab.wait_for(&format!("trace-goods-{reference}"), "the goods alarmed on the trace", DOM_TIMEOUT, |p| {
        (p.data("status") == Some("loaded") && p.data("alarm") == Some("true")).then_some(())
    })
    .await;
    let (_, body) = http_get(m.server.addr, &format!("/api/lots/{lot}")).await;
    let trace: Value = serde_json::from_str(&body).expect("the trace is JSON");
    let path = trace["goods"][0]["path"].as_array().expect("the goods' path");
    let last = path.last().expect("a step");
    assert_eq!((last["temperature_c"].as_str(), last["alarm"].as_bool()), (Some("11.00"), Some(true)), "{trace}");
    let step = tab.probe(&format!("trace-goods-{reference}-step-{}", path.len())).await.expect("the warm step");
    assert_eq!((step.data("alarm"), step.data("temperature")), (Some("true"), Some("11.00")), "{step:?}");
    assert!(step.text.contains("Van 6"), "{step:?}");

    // The market page links each clock sale to its lot's trace.
    tab.page.goto(m.url("market")).await.expect("to the market page");
    let link = format!("clock-sale-{lot}-1-trace");
    tab.wait_for(&link, "the clock sale's trace link", DOM_TIMEOUT, |p| Some(p.clone())).await;
    let href =
        tab.eval(&format!("document.querySelector({}).getAttribute('href')", json!(chrome::selector(&link)))).await;
    assert_eq!(href, json!(format!("/lot/{lot}")), "the market page's link to the trace");
    tab.assert_no_errors().await;
    browser.close().await;
}
