//! The web app in a real browser (Issue 7, "What it must show"): Debian's `chromium`, headless,
//! driven over the DevTools protocol by chromiumoxide, against the real `huashi serve` started by
//! the end-to-end harness. Every test sets the market up over the protocol, does in the page what a
//! person would (type a token, click, type a quantity) and checks what the page shows against what
//! the protocol says, exactly (money as decimal strings and integer fen, never floats).
//!
//! - `buyer_buys_on_the_falling_clock_and_sees_award_and_credit`: `#/buyer`: log in with a buyer's
//!   token, see the credit, watch a started clock's price fall, set a quantity and press Buy; the
//!   award is listed and the credit drops by amount + buyer fee; over the protocol the award was
//!   made at a price no higher than the one on screen when Buy was pressed.
//! - `market_page_draws_the_index_and_the_day_statistics`: `#/market` after two settled days and
//!   a third with book and clock trades: the SFCI chart has the daily closes, the tile shows the
//!   index, the statistics table has a row per product and grade traded today, and the clock sales
//!   and latest trades made before the page opened are listed (`GET /api/trades`, as the feed said).
//! - `operator_starts_a_clock_from_the_console`: `#/operator`: log in with the operator token,
//!   press Start on a clock with a queued lot; the feed says it started and the console shows it;
//!   then a buyer's press is corrected with Void on its row: the feed publishes `award_voided`,
//!   the buyer is told and its exposure released.
//!
//! Screenshots of each view are saved as `target/screenshots/clock-view.png`, `market.png` and
//! `operator.png` (1400×900; the market page whole); open them with any image viewer. A wait that
//! fails saves `failed-….png` there too, with what the page showed. `docs/clock-view.png` is a copy
//! of the clock view for the README, made by hand (the tests never write outside `target/`).
//!
//! The browser is `$HUASHI_CHROMIUM`, `$CHROME`, or `chromium` / `chromium-browser` /
//! `google-chrome` on PATH. Without one the tests say "skipped" and pass, except on CI (`CI=true`),
//! where they fail and say to install chromium. Every browser (and its helper processes) is killed
//! when its test ends, also when it fails.

#[path = "browser/chrome.rs"]
mod chrome;

use chrome::{browser_or_skip, Chrome, Tab, DOM_TIMEOUT};
use huashi_tests::*;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;

const T: Duration = REPLY_TIMEOUT;
const CLOCK_T: Duration = Duration::from_secs(30);

// ───────────────────────────── money as the page shows it ─────────────────────────────

/// Fen as the page formats money: `"12,345.60"` (`money.js` `formatMoney`).
fn grouped(fen: i64) -> String {
    let plain = money(fen.abs());
    let (int, frac) = plain.split_once('.').unwrap();
    let mut out = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    format!("{}{out}.{frac}", if fen < 0 { "-" } else { "" })
}

/// Fen as the page shows an amount of yuan: `"¥12,345.60"` (`money.js` `cny`).
fn cny(fen: i64) -> String {
    let g = grouped(fen);
    match g.strip_prefix('-') {
        Some(rest) => format!("-¥{rest}"),
        None => format!("¥{g}"),
    }
}

/// A wire value with at most two decimals (a money string, or an index value that may come as a
/// string or a number) in hundredths, by its text.
fn hundredths(v: &Value) -> i64 {
    let text = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        other => panic!("not a decimal: {other}"),
    };
    let (neg, body) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.as_str()),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    assert!(frac.len() <= 2 && !int.is_empty(), "more than two decimals: {text}");
    let n = int.parse::<i64>().unwrap() * 100 + format!("{frac:0<2}").parse::<i64>().unwrap();
    if neg {
        -n
    } else {
        n
    }
}

// ───────────────────────────── the market over the protocol ─────────────────────────────

struct Market {
    server: Server,
    feed: Feed,
    op: Client,
}

impl Market {
    async fn open(clocks: u32) -> Market {
        let server = Server::start(ServerOpts::default().clocks(clocks));
        let feed = server.feed().await;
        let op = server.operator().await;
        Market { server, feed, op }
    }

    /// Registers a participant; returns its token and a logged-in session.
    async fn participant(&mut self, id: &str, roles: &[&str], credit: Option<&str>) -> (String, Client) {
        let token = register(&mut self.op, id, roles, credit).await;
        let client = self.server.session(&token).await;
        (token, client)
    }

    async fn configure(&mut self, clock: u64, tick_ms: u64, pre_roll_ms: u64, pause_ms: u64) {
        let reply = self
            .op
            .request(json!({"type": "configure_clock", "clock": clock, "step": "0.01", "tick_ms": tick_ms,
                            "pre_roll_ms": pre_roll_ms, "pause_ms": pause_ms, "restart_ticks": 10, "multi_buy_ms": 0}))
            .await;
        assert_eq!(reply["type"], "clock_configured", "{reply}");
    }

    async fn assign(&mut self, lot_id: u64, clock: u64, start_price: &str) {
        let reply = self
            .op
            .request(json!({"type": "assign_lot", "lot_id": lot_id, "clock": clock, "start_price": start_price}))
            .await;
        assert_eq!(reply["type"], "lot_assigned", "{reply}");
    }

    async fn start_clock(&mut self, clock: u64) {
        let reply = self.op.request(json!({"type": "start_clock", "clock": clock})).await;
        assert_eq!(reply["type"], "clock_state", "start_clock {clock}: {reply}");
    }

    async fn set_book(&mut self, symbol: &str, state: &str) {
        let reply = self.op.request(json!({"type": "set_book_state", "symbol": symbol, "state": state})).await;
        assert_eq!(reply["type"], "book_state", "{reply}");
    }

    async fn end_of_day(&mut self) -> Value {
        let reply = self.op.request(json!({"type": "end_of_day"})).await;
        assert_eq!(reply["type"], "day_settled", "{reply}");
        reply
    }

    fn url(&self, view: &str) -> String {
        format!("http://{}/#/{view}", self.server.addr)
    }
}

async fn order(c: &mut Client, coid: &str, side: &str, price: &str, qty: u64) -> Value {
    let reply = c
        .request(json!({"type": "new_order", "client_order_id": coid, "symbol": "ROSE-A", "side": side,
                        "order_type": "limit", "price": price, "quantity": qty, "time_in_force": "gtc"}))
        .await;
    assert_eq!(reply["type"], "order_accepted", "{reply}");
    reply
}

/// Waits for the feed and the login in the page header.
async fn log_in(tab: &Tab, token: &str, participant: &str) {
    tab.wait_for("feed-status", "the feed online", DOM_TIMEOUT, |p| (p.data("status") == Some("online")).then_some(()))
        .await;
    tab.type_into("login-token", token).await;
    tab.click("login-button").await;
    tab.wait_text("participant", participant).await;
    tab.wait_for("session-status", "the session online", DOM_TIMEOUT, |p| {
        (p.data("status") == Some("online")).then_some(())
    })
    .await;
}

/// The last `stats` event of each (product, grade) since the last `day_settled`.
fn today_stats(events: &[Value]) -> BTreeMap<(String, String), Value> {
    let start = events.iter().rposition(|e| e["type"] == "day_settled").map_or(0, |i| i + 1);
    let mut out = BTreeMap::new();
    for e in events[start..].iter().filter(|e| e["type"] == "stats") {
        out.insert((e["product"].as_str().unwrap().to_string(), e["grade"].as_str().unwrap().to_string()), e.clone());
    }
    out
}

/// A wire price in fen from a `data-fen` attribute.
fn data_fen(p: &chrome::Probe) -> Option<i64> {
    p.data("fen").filter(|s| !s.is_empty()).and_then(|s| s.parse().ok())
}

// ───────────────────────────── 1. the buyer's clock view ─────────────────────────────

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buyer_buys_on_the_falling_clock_and_sees_award_and_credit() {
    let Some(exe) = browser_or_skip() else { return };
    let mut m = Market::open(2).await;
    let (_, mut grower) = m.participant("dounan-roses", &["grower"], None).await;
    let (buyer_token, mut buyer) = m.participant("b-florist", &["buyer"], Some("5000.00")).await;

    let mut msg = lot_msg("ROSE", "A1", 20, 10, "1.00");
    msg["origin"] = json!("Dounan, Yunnan");
    msg["note"] = json!("Carola, 60 cm, cut this morning");
    let rose = consign(&mut grower, msg).await["lot_id"].as_u64().unwrap();
    let mut msg = lot_msg("LILY", "A2", 10, 6, "1.00");
    msg["origin"] = json!("Chongming, Shanghai");
    let lily = consign(&mut grower, msg).await["lot_id"].as_u64().unwrap();
    // Slow clocks: one fen every 100 ms, so the page has all the time it needs; a long pause after
    // an award keeps "sold" on the card for the checks and the screenshot.
    m.configure(1, 100, 300, 30_000).await;
    m.configure(2, 100, 300, 5000).await;
    m.assign(rose, 1, "8.00").await;
    m.assign(lily, 2, "6.00").await;

    let browser = Chrome::launch(&exe).await;
    let tab = browser.open(&m.url("buyer")).await;
    tab.wait_for("clocks", "two clock cards", DOM_TIMEOUT, |p| (p.data("clocks") == Some("2")).then_some(())).await;
    log_in(&tab, &buyer_token, "b-florist").await;

    // The credit, as get_account says it.
    let account = get_account(&mut buyer).await;
    assert_eq!(account["available"], "5000.00", "{account}");
    tab.wait_text("credit-available", &cny(fen(&account["available"]))).await;
    tab.wait_text("credit-limit", "¥5,000.00").await;
    tab.wait_text("credit-exposure", "¥0.00").await;

    // Start both clocks from the operator's session; the page follows the feed.
    m.start_clock(1).await;
    m.start_clock(2).await;
    let round = m
        .feed
        .next_matching(|v| v["type"] == "clock_started" && v["clock"] == 1, CLOCK_T)
        .await
        .expect("clock_started for clock 1");
    assert_eq!(round["lot_id"], rose, "{round}");
    assert_eq!(round["start_price"], "8.00", "{round}");
    tab.wait_text("clock-1-state", "running").await;
    tab.wait_for("clock-1", "clock 1 showing the lot", DOM_TIMEOUT, |p| {
        (p.data("lot") == Some(rose.to_string().as_str())).then_some(())
    })
    .await;
    let product = tab.probe("clock-1-product").await.expect("clock-1-product");
    assert!(product.text.contains("Rose"), "the card names the product: {product:?}");

    // The price falls: two reads, the second lower. Text and data-fen agree.
    let first = tab
        .wait_for("clock-1-price", "a running price on clock 1", DOM_TIMEOUT, |p| {
            data_fen(p).map(|f| (f, p.text.clone()))
        })
        .await;
    assert!(first.0 <= 800 && first.0 > 100, "the price starts at 8.00 and stays above the reserve: {first:?}");
    assert_eq!(first.1, money(first.0), "the price text is data-fen in yuan: {first:?}");
    let second = tab
        .wait_for("clock-1-price", "the price on clock 1 falling", DOM_TIMEOUT, |p| {
            data_fen(p).filter(|&f| f < first.0).map(|f| (f, p.text.clone()))
        })
        .await;
    assert!(second.0 > 100, "still above the reserve: {second:?}");
    assert_eq!(second.1, money(second.0), "{second:?}");

    // Buy 3 containers. A capture-phase listener records the price on the screen at the moment
    // the click lands (before the app's own handler sends the bid).
    tab.type_into("clock-1-quantity", "3").await;
    tab.eval(
        "document.addEventListener('click', (e) => { \
           if (e.target.closest('[data-testid=clock-1-buy]') && window.__shownAtClick === undefined) \
             window.__shownAtClick = document.querySelector('[data-testid=clock-1-price]').dataset.fen; }, true)",
    )
    .await;
    tab.click("clock-1-buy").await;
    let award = m
        .feed
        .next_matching(|v| v["type"] == "clock_award" && v["clock"] == 1, CLOCK_T)
        .await
        .expect("clock_award for the click on Buy");
    let shown: i64 = tab
        .eval("window.__shownAtClick ?? null")
        .await
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no price was on screen when Buy was clicked"));
    let price = fen(&award["price"]);
    assert_eq!(award["lot_id"], rose, "{award}");
    assert_eq!(award["round"], 1, "{award}");
    assert_eq!(award["containers"], 3, "the quantity typed on the page: {award}");
    assert_eq!(award["remaining"], 7, "{award}");
    // The page draws engine time estimated from ping round trips: it may run up to a tick ahead.
    assert!(
        price <= shown + 1,
        "the award ({price} fen) is above the price on screen when Buy was pressed ({shown} fen) by more than a tick"
    );
    assert!(price <= second.0 + 1, "the price only falls: award {price} fen after {second:?} was shown");
    let expect = round_price(&round, award["ts"].as_i64().unwrap());
    assert_eq!(price, expect, "the award is price(ts) of the published round {round}: {award}");

    // The page lists the award, and the credit drops by amount + fee, as the protocol says.
    let amount = price * 3 * 20;
    let fee = clock_fee(3);
    let sale = grower.next_of_type("lot_sale", T).await;
    assert_eq!(sale["buyer"], "b-florist", "the page's buyer bought: {sale}");
    assert_eq!(sale["price"], award["price"], "{sale}");
    assert_eq!(fen(&sale["amount"]), amount, "{sale}");
    let account = get_account(&mut buyer).await;
    assert_eq!(fen(&account["exposure"]), amount + fee, "exposure = amount + buyer fee: {account}");
    assert_eq!(fen(&account["available"]), 500_000 - amount - fee, "{account}");
    assert_eq!(fen(&account["bought"]), amount, "{account}");
    assert_eq!(fen(&account["fees"]), fee, "{account}");
    let row = format!("award-{rose}-1");
    tab.wait_for("awards", "one award listed", DOM_TIMEOUT, |p| {
        (p.data("count").and_then(|c| c.parse::<u32>().ok()) >= Some(1)).then_some(())
    })
    .await;
    let listed = tab.wait_for(&row, "the award row", DOM_TIMEOUT, |p| Some(p.clone())).await;
    for part in [format!("@ ¥{}", award["price"].as_str().unwrap()), "3 × 20 = 60".to_string(), cny(amount), cny(fee)]
    {
        assert!(listed.text.contains(&part), "the award row should show {part:?}: {:?}", listed.text);
    }
    tab.wait_text("credit-available", &cny(fen(&account["available"]))).await;
    tab.wait_text("credit-exposure", &cny(fen(&account["exposure"]))).await;
    tab.wait_text("credit-bought", &cny(amount)).await;
    tab.wait_text("credit-fees", &cny(fee)).await;
    tab.wait_for("clock-1-result", "clock 1 sold", DOM_TIMEOUT, |p| (p.data("kind") == Some("sold")).then_some(()))
        .await;
    tab.wait_text("clock-1-remaining", "7").await;
    tab.wait_text("clock-2-state", "running").await;

    let shot = tab.screenshot("clock-view").await;
    chrome::say(&format!("clock view: {}", shot.display()));
    tab.assert_no_errors().await;
    browser.close().await;
}

// ───────────────────────────── 2. the market page ─────────────────────────────

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn market_page_draws_the_index_and_the_day_statistics() {
    let Some(exe) = browser_or_skip() else { return };
    let mut m = Market::open(1).await;
    let (_, mut grower) = m.participant("songjiang-farm", &["grower"], None).await;
    let (_, mut buyer) = m.participant("b-hotel", &["buyer"], Some("100000.00")).await;

    // Two settled days of roses on the book: 10 @ 2.00, then 10 @ 2.10.
    for (day, price) in [(1, "2.00"), (2, "2.10")] {
        m.set_book("ROSE-A", "open").await;
        order(&mut grower, &format!("s{day}"), "sell", price, 10).await;
        order(&mut buyer, &format!("b{day}"), "buy", price, 10).await;
        grower.next_of_type("order_done", T).await;
        m.set_book("ROSE-A", "closed").await;
        let settled = m.end_of_day().await;
        assert_eq!(settled["trades"], 1, "{settled}");
    }

    // Today: a book trade and a clock sale (a standing bid at the start price wins at once), and
    // resting orders so the book has depth.
    m.set_book("ROSE-A", "open").await;
    order(&mut grower, "s3", "sell", "2.20", 20).await;
    order(&mut buyer, "b3", "buy", "2.20", 20).await;
    order(&mut grower, "s4", "sell", "2.30", 5).await;
    order(&mut buyer, "b4", "buy", "2.15", 8).await;
    let tulip = consign(&mut grower, lot_msg("TULIP", "A2", 10, 2, "1.00")).await["lot_id"].as_u64().unwrap();
    let sb =
        buyer.request(json!({"type": "standing_bid", "lot_id": tulip, "max_price": "3.00", "containers": 2})).await;
    assert_eq!(sb["type"], "standing_bid_accepted", "{sb}");
    configure_fast_clock(&mut m.op, 1).await;
    m.assign(tulip, 1, "3.00").await;
    m.start_clock(1).await;
    let sold = m.feed.next_matching(|v| v["type"] == "clock_award" && v["lot_id"] == tulip, CLOCK_T).await;
    assert_eq!(sold.expect("the standing bid wins")["price"], "3.00");

    // What the protocol says: the last `stats` of each cell traded today, and two index closes.
    let want = [("ROSE", "A1"), ("TULIP", "A2")];
    let deadline = tokio::time::Instant::now() + CLOCK_T;
    while !want.iter().all(|(p, g)| today_stats(&m.feed.events).contains_key(&(p.to_string(), g.to_string()))) {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if m.feed.next_event(left).await.is_none() {
            panic!("no stats events for today's trades: {:?}", today_stats(&m.feed.events));
        }
    }
    m.feed.drain_quiet(Duration::from_millis(300)).await;
    let stats = today_stats(&m.feed.events);
    let sfci_closes =
        m.feed.events.iter().filter(|e| e["type"] == "index" && e["final"] == true && e["code"] == "SFCI");
    assert_eq!(sfci_closes.count(), 2, "one SFCI close per settled day on the feed");
    let (status, body) = http_get(m.server.addr, "/api/index/history").await;
    assert_eq!(status, 200, "GET /api/index/history: {body}");
    let history: Value = serde_json::from_str(&body).expect("history is JSON");
    let rows = history["rows"].as_array().unwrap_or_else(|| panic!("history rows: {history}"));
    assert_eq!(rows.len(), 2, "two settled days: {history}");
    assert_eq!(hundredths(&rows[0]["closes"]["SFCI"]), 100_000, "the first day closes at 1000.00: {history}");
    // The chart draws one point per settled day and published index (SFCI, SFCI-CUT here).
    let codes = ["SFCI", "SFCI-CUT", "SFCI-POT", "SFCI-FOL"];
    let points: usize = rows.iter().map(|r| codes.iter().filter(|c| !r["closes"][**c].is_null()).count()).sum();
    assert!(points >= 2, "{history}");

    // Today's sales as the feed published them, and as `GET /api/trades` lists them for a page
    // opened now: the same fields (but a trade's aggressor, which clearing does not keep), no buyer.
    let today = m.feed.events.iter().rposition(|e| e["type"] == "day_settled").map_or(0, |i| i + 1);
    let sales: Vec<Value> = m.feed.events[today..]
        .iter()
        .filter(|e| e["type"] == "clock_award" || e["type"] == "trade")
        .map(|e| {
            let mut e = e.clone();
            e.as_object_mut().unwrap().remove("seq");
            e
        })
        .collect();
    assert_eq!(sales.iter().filter(|e| e["type"] == "clock_award").count(), 1, "{sales:?}");
    assert_eq!(sales.iter().filter(|e| e["type"] == "trade").count(), 1, "{sales:?}");
    let (status, body) = http_get(m.server.addr, "/api/trades").await;
    assert_eq!(status, 200, "GET /api/trades: {body}");
    let listed: Value = serde_json::from_str(&body).expect("/api/trades is JSON");
    assert_eq!(listed["day"], m.feed.events[today - 1]["next_day"], "today: {listed}");
    let listed = listed["trades"].as_array().unwrap_or_else(|| panic!("trades: {listed}"));
    assert_eq!(listed.len(), sales.len(), "today's sales, oldest first: {listed:?} feed {sales:?}");
    for (api, feed) in listed.iter().zip(&sales) {
        for (key, value) in feed.as_object().unwrap() {
            if key == "aggressor" {
                assert!(api.get(key).is_none(), "clearing does not know the aggressor, so it is left out: {api}");
                continue;
            }
            assert_eq!(&api[key], value, "{key}: /api/trades {api} feed {feed}");
        }
        assert!(api.get("buyer").is_none() && api.get("seller").is_none(), "buyers stay anonymous: {api}");
    }

    let browser = Chrome::launch(&exe).await;
    let tab = browser.open(&m.url("market")).await;
    tab.wait_for("view-market", "the market view", DOM_TIMEOUT, |p| p.visible.then_some(())).await;
    let want_points = points.to_string();
    tab.wait_for("index-chart", "the daily closes drawn", DOM_TIMEOUT, |p| {
        (p.data("points") == Some(want_points.as_str())).then_some(())
    })
    .await;
    let sfci_path = tab.eval("document.querySelector('[data-testid=index-chart] path[data-code=SFCI]') !== null").await;
    assert_eq!(sfci_path, json!(true), "the SFCI line is drawn in index-chart");

    // The tile shows the index as the server has it now (roses rose 2.00 → 2.10 → 2.20 over the
    // days: the index is above its base of 1000.00).
    let deadline = tokio::time::Instant::now() + DOM_TIMEOUT;
    loop {
        let (status, body) = http_get(m.server.addr, "/api/index").await;
        assert_eq!(status, 200, "GET /api/index: {body}");
        let now: Value = serde_json::from_str(&body).expect("/api/index is JSON");
        let sfci = now["values"]["SFCI"].clone();
        assert!(!sfci.is_null() && hundredths(&sfci) > 100_000, "SFCI today: {now}");
        let tile = tab.probe("index-SFCI-value").await.expect("index-SFCI-value");
        if tile.text == grouped(hundredths(&sfci)) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the SFCI tile shows {tile:?}, the server says {now}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Today's statistics per product and grade, as the feed's last `stats` said.
    for ((product, grade), ev) in &stats {
        let id = format!("stats-{product}-{grade}");
        let row = tab.wait_for(&id, &format!("the {product} {grade} row"), DOM_TIMEOUT, |p| Some(p.clone())).await;
        let cells: Vec<String> = serde_json::from_value(
            tab.eval(&format!(
                "[...document.querySelector('[data-testid=\"{id}\"]').children].map((c) => c.textContent.trim())"
            ))
            .await,
        )
        .unwrap();
        assert_eq!(cells.len(), 10, "product, grade, open, high, low, last, vwap, units, turnover, trades: {cells:?}");
        assert_eq!(cells[1], *grade, "{cells:?}");
        for (i, key) in ["open", "high", "low", "last", "vwap"].iter().enumerate() {
            assert_eq!(cells[2 + i], grouped(fen(&ev[*key])), "{key} of {id}: page {cells:?}, feed {ev}");
        }
        assert_eq!(cells[7].replace(',', ""), ev["units"].to_string(), "units of {id}: {cells:?} {ev}");
        assert_eq!(cells[8], cny(fen(&ev["turnover"])), "turnover of {id}: {cells:?} {ev}");
        assert_eq!(cells[9], ev["trades"].to_string(), "trades of {id}: {cells:?} {ev}");
        assert!(row.visible, "{id} is visible");
    }
    let rose = &stats[&("ROSE".to_string(), "A1".to_string())];
    assert_eq!(rose["last"], "2.20", "book trades count under grade A1: {rose}");
    let tulip_stats = &stats[&("TULIP".to_string(), "A2".to_string())];
    assert_eq!(tulip_stats["last"], "3.00", "{tulip_stats}");
    tab.wait_for("book-ROSE-A-state", "ROSE-A open", DOM_TIMEOUT, |p| (p.data("state") == Some("open")).then_some(()))
        .await;

    // The sales made before the page opened are listed: the clock sale and the book trade.
    for sale in &sales {
        let (id, parts) = if sale["type"] == "clock_award" {
            let id = format!("clock-sale-{}-{}", sale["lot_id"], sale["round"]);
            (
                id,
                vec![
                    format!("Clock {}", sale["clock"]),
                    format!("{} × ¥{}", sale["containers"], money(fen(&sale["price"]))),
                ],
            )
        } else {
            let id = format!("trade-{}", sale["trade_id"]);
            (
                id,
                vec![
                    sale["symbol"].as_str().unwrap().to_string(),
                    grouped(fen(&sale["price"])),
                    format!("× {}", sale["quantity"]),
                ],
            )
        };
        let row = tab.wait_for(&id, &format!("{id} listed"), DOM_TIMEOUT, |p| Some(p.clone())).await;
        for part in parts {
            assert!(row.text.contains(&part), "{id} should show {part:?}: {:?}", row.text);
        }
        assert!(row.visible, "{id} is visible");
    }

    let shot = tab.screenshot_full("market").await;
    chrome::say(&format!("market page: {}", shot.display()));
    tab.assert_no_errors().await;
    browser.close().await;
}

// ───────────────────────────── 3. the operator console ─────────────────────────────

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_starts_a_clock_from_the_console() {
    let Some(exe) = browser_or_skip() else { return };
    let mut m = Market::open(2).await;
    let (_, mut grower) = m.participant("pudong-nursery", &["grower"], None).await;
    let lot = consign(&mut grower, lot_msg("PHALAENOPSIS", "A1", 1, 12, "20.00")).await["lot_id"].as_u64().unwrap();
    m.configure(2, 100, 300, 1000).await;
    m.assign(lot, 2, "60.00").await;

    let browser = Chrome::launch(&exe).await;
    let tab = browser.open(&m.url("operator")).await;
    let token = m.server.token().to_string();
    log_in(&tab, &token, "operator").await;
    tab.wait_for("view-operator", "the console", DOM_TIMEOUT, |p| p.visible.then_some(())).await;
    tab.wait_text("op-clock-2-state", "idle").await;
    tab.wait_for(&format!("op-lot-{lot}"), "the queued lot listed", DOM_TIMEOUT, |p| {
        (p.data("status") == Some("queued")).then_some(())
    })
    .await;

    tab.click("start-clock-2").await;
    let state = m
        .feed
        .next_matching(|v| v["type"] == "clock_state" && v["clock"] == 2, CLOCK_T)
        .await
        .expect("clock_state for clock 2 after Start");
    assert!(["pre_roll", "running"].contains(&state["state"].as_str().unwrap()), "{state}");
    let started = m
        .feed
        .next_matching(|v| v["type"] == "clock_started" && v["clock"] == 2, CLOCK_T)
        .await
        .expect("clock_started for clock 2");
    assert_eq!(started["lot_id"], lot, "{started}");
    assert_eq!(started["start_price"], "60.00", "{started}");
    assert!(
        !m.feed
            .events
            .iter()
            .any(|e| e["clock"] == 1 && ["clock_state", "clock_started"].contains(&e["type"].as_str().unwrap())),
        "only clock 2 was started: {:?}",
        m.feed.events
    );

    tab.wait_text("op-clock-2-state", "running").await;
    let lot_cell = tab.probe("op-clock-2-lot").await.expect("op-clock-2-lot");
    assert!(lot_cell.text.starts_with(&format!("#{lot} ")), "the console names the lot on the clock: {lot_cell:?}");
    let price = tab
        .wait_for("op-clock-2-price", "a live price", DOM_TIMEOUT, |p| is_money(&json!(p.text)).then(|| p.text.clone()))
        .await;
    assert!(hundredths(&json!(price)) <= 6000, "at most the start price: {price}");
    // The console's live price falls as the clock runs.
    tab.wait_for("op-clock-2-price", "the console's price falling", DOM_TIMEOUT, |p| {
        (is_money(&json!(p.text)) && hundredths(&json!(p.text)) < 6000).then_some(())
    })
    .await;
    let start = tab.probe("start-clock-2").await.expect("start-clock-2");
    assert!(start.disabled, "Start is disabled on a running clock");
    tab.wait_enabled("halt-clock-2").await;
    tab.wait_text("op-clock-1-state", "idle").await;

    // A buyer's mistaken press, corrected from the console: Void on the award's row.
    let (_, mut buyer) = m.participant("songjiang-florist", &["buyer"], Some("1000.00")).await;
    let bid = json!({"type": "bid", "clock": 2, "lot_id": lot, "round": started["round"], "containers": 1});
    let award = buyer.request(bid).await;
    assert_eq!(award["type"], "award", "{award}");
    let round = award["round"].as_u64().unwrap();
    let row = format!("op-award-2-{lot}-{round}");
    tab.wait_for(&row, "the award listed in the console", DOM_TIMEOUT, |p| Some(p.clone())).await;
    tab.wait_enabled(&format!("void-2-{lot}-{round}")).await;
    let shot = tab.screenshot("operator").await;
    chrome::say(&format!("operator console: {}", shot.display()));
    tab.click(&format!("void-2-{lot}-{round}")).await;
    let voided = m
        .feed
        .next_matching(|v| v["type"] == "award_voided" && v["clock"] == 2, CLOCK_T)
        .await
        .expect("award_voided on the feed after Void");
    assert_eq!((voided["lot_id"].as_u64(), voided["round"].as_u64()), (Some(lot), Some(round)), "{voided}");
    assert_eq!(voided["remaining"], 12, "the container went back to the lot: {voided}");
    let told = buyer.next_of_type("award_voided", T).await;
    assert_eq!(told["lot_id"], lot, "the buyer is told: {told}");
    let account = get_account(&mut buyer).await;
    assert_eq!(account["exposure"], "0.00", "the voided award's exposure is released: {account}");
    tab.wait_for(&row, "the row marked voided", DOM_TIMEOUT, |p| p.text.contains("voided").then_some(())).await;
    tab.assert_no_errors().await;
    browser.close().await;
}
