//! The scripted trading session of the kill tests, shared by `tests/tests/crash_restart.rs`
//! (`kill -9` and restart on the same data directory) and `tests/tests/cluster.rs` (`kill -9` the
//! leader, a follower takes over): a [`Model`] of every effect a client was told about, the
//! seeded random [`operation`]s that build it, and [`verify`], which holds a (restarted or new)
//! server to it.
//!
//! The script runs operations one at a time; each is acknowledged in full before the next (a
//! crossing order counts only once its fills, its `order_done` and the makers' fills have
//! arrived). The kill lands while one operation is in flight: its effects may or may not have
//! happened, so for what it touched ([`Touched`]) the checks are "at least" instead of "exactly".

use crate::*;
use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// The clocks the script auctions on (`--clocks 2`).
pub const CLOCKS: [u64; 2] = [1, 2];
const T: Duration = REPLY_TIMEOUT;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Role {
    Grower,
    Buyer,
}

#[derive(Clone, Debug)]
pub struct LotModel {
    pub grower: String,
    pub product: String,
    pub containers: u64,
    pub units_per_container: u64,
    pub min_price: i64,
    /// Containers sold by acknowledged awards.
    pub sold: u64,
    /// Acknowledged assignment to a clock.
    pub clock: Option<u64>,
    /// The lot's last status as the server reported it.
    pub status: String,
}

#[derive(Clone, Debug)]
pub struct OrderModel {
    pub side: String,
    pub price: i64,
    pub leaves: u64,
}

/// What the clients were told, and so what must survive a crash.
#[derive(Default)]
pub struct Model {
    pub participants: BTreeMap<String, (String, Role)>,
    pub next_id: u32,
    pub lots: BTreeMap<u64, LotModel>,
    /// Acknowledged purchase amounts (clock and book) per buyer, in fen.
    pub bought: BTreeMap<String, i64>,
    /// Acknowledged sale amounts per grower, in fen.
    pub sold: BTreeMap<String, i64>,
    /// Open orders per (owner, client_order_id).
    pub orders: BTreeMap<(String, String), OrderModel>,
    pub next_coid: u32,
}

impl Model {
    pub fn of_role(&self, role: Role) -> Vec<String> {
        self.participants.iter().filter(|(_, (_, r))| *r == role).map(|(id, _)| id.clone()).collect()
    }
}

/// What the operation in flight at the kill may have changed.
#[derive(Default, Debug)]
pub struct Touched {
    pub participants: BTreeSet<String>,
    pub lots: BTreeSet<u64>,
    /// Growers whose lots an unacknowledged consignment may have added to.
    pub consigning: BTreeSet<String>,
    /// An order the operation may have placed: (owner, client_order_id).
    pub new_order: Option<(String, String)>,
}

/// The rounds on the clocks as the feed showed them, to know which lot must come back `queued`.
#[derive(Default)]
pub struct Clocks {
    /// clock → (lot, round, engine µs until which the lot is surely still being auctioned).
    pub on_clock: BTreeMap<u64, (u64, u64, i64)>,
}

impl Clocks {
    pub fn observe(&mut self, ev: &Value, model: &Model) {
        let clock = ev["clock"].as_u64().unwrap_or(0);
        let round_length = |lot: u64, start: i64, step: i64, tick_ms: i64| -> Option<i64> {
            let min = model.lots.get(&lot)?.min_price;
            Some((start - min).div_euclid(step) * tick_ms * 1000)
        };
        match ev["type"].as_str().unwrap_or("") {
            "clock_started" => {
                let lot = ev["lot_id"].as_u64().unwrap();
                let (start, step, tick) = (fen(&ev["start_price"]), fen(&ev["step"]), ev["tick_ms"].as_i64().unwrap());
                if let Some(len) = round_length(lot, start, step, tick) {
                    let until = ev["start_ts"].as_i64().unwrap() + len;
                    self.on_clock.insert(clock, (lot, ev["round"].as_u64().unwrap(), until));
                }
            }
            "clock_award" => {
                let lot = ev["lot_id"].as_u64().unwrap();
                if ev["remaining"] == 0 {
                    self.on_clock.remove(&clock);
                } else if let Some(entry) = self.on_clock.get_mut(&clock) {
                    // The next round starts at most 10 steps above the award, after a pause.
                    let min = model.lots.get(&lot).map(|l| l.min_price).unwrap_or(i64::MAX);
                    let next_start = fen(&ev["price"]) + 10;
                    entry.2 = ev["ts"].as_i64().unwrap() + (next_start - min).max(0) * 10 * 1000;
                }
            }
            "lot_unsold" => {
                self.on_clock.remove(&clock);
            }
            "clock_state" if ev["state"] == "idle" => {
                self.on_clock.remove(&clock);
            }
            _ => {}
        }
    }

    pub fn running_round(&self) -> Option<(u64, u64, u64)> {
        self.on_clock.iter().next().map(|(c, (lot, round, _))| (*c, *lot, *round))
    }
}

/// One cycle's connections.
pub struct Sessions {
    pub addr: std::net::SocketAddr,
    pub op: Client,
    pub by_id: BTreeMap<String, Client>,
    pub feed: Feed,
}

pub async fn connect_all(server: &Server, model: &Model) -> Sessions {
    let op = server.operator().await;
    let mut by_id = BTreeMap::new();
    for (id, (token, _)) in &model.participants {
        let mut c = server.connect("/ws").await;
        let reply = c.login(token).await;
        assert_eq!(reply["participant"], id.as_str(), "an acknowledged registration must survive: {reply}");
        by_id.insert(id.clone(), c);
    }
    let feed = server.feed().await;
    Sessions { addr: server.addr, op, by_id, feed }
}

pub fn order_leaves(o: &Value) -> u64 {
    o.get("leaves").and_then(Value::as_u64).or_else(|| o["quantity"].as_u64()).unwrap_or(0)
}

/// Checks every acknowledged effect against the restarted server, then adopts what the server
/// says for whatever the in-flight operation touched.
pub async fn verify(
    s: &mut Sessions,
    model: &mut Model,
    touched: &Touched,
    must_be_queued: &BTreeSet<u64>,
    cycle: usize,
) {
    let ctx = |what: &str| format!("after kill {cycle}: {what}");
    // Clocks come back idle; books keep their state.
    for c in s.feed.snapshot["clocks"].as_array().unwrap() {
        assert_eq!(c["state"], "idle", "{}", ctx(&format!("every clock comes back idle: {c}")));
    }
    let rose = s.feed.snapshot["books"].as_array().unwrap().iter().find(|b| b["symbol"] == "ROSE-A").unwrap().clone();
    assert_eq!(rose["state"], "open", "{}", ctx(&format!("the book's state survives: {rose}")));

    // Lots.
    let lots = get_lots(&mut s.op).await;
    let by_id: BTreeMap<u64, Value> = lots.iter().map(|l| (l["lot_id"].as_u64().unwrap(), l.clone())).collect();
    for (id, lot) in &model.lots {
        let got = by_id.get(id).unwrap_or_else(|| panic!("{}", ctx(&format!("acknowledged lot {id} is gone"))));
        assert_eq!(got["grower"], lot.grower.as_str(), "{}", ctx(&got.to_string()));
        assert_eq!(got["product"], lot.product.as_str(), "{}", ctx(&got.to_string()));
        assert_eq!(got["containers"], lot.containers, "{}", ctx(&got.to_string()));
        assert_eq!(got["units_per_container"], lot.units_per_container, "{}", ctx(&got.to_string()));
        assert_eq!(fen(&got["min_price"]), lot.min_price, "{}", ctx(&got.to_string()));
        let status = got["status"].as_str().unwrap();
        assert_ne!(status, "on_clock", "{}", ctx(&format!("no lot is on a clock after a restart: {got}")));
        if lot.clock.is_some() {
            assert_ne!(status, "consigned", "{}", ctx(&format!("an acknowledged assignment is lost: {got}")));
        }
        if must_be_queued.contains(id) && !touched.lots.contains(id) {
            // A standing bid can take the rest of the lot between the last feed event read and
            // the kill: then the durable award stands (the lot is sold) — but only with more
            // containers sold than the test had seen; otherwise it must be back in the queue.
            let sold_unseen = got["sold"].as_u64().unwrap_or(0) > lot.sold;
            if !(sold_unseen && (status == "sold" || status == "partly_sold")) {
                assert_eq!(status, "queued", "{}", ctx(&format!("the lot being auctioned comes back queued: {got}")));
            }
        }
        // Unsold containers may leave `remaining`; sold ones never come back.
        let remaining = got["remaining"].as_u64().unwrap();
        assert!(
            remaining <= lot.containers - lot.sold,
            "{}",
            ctx(&format!("acknowledged awards undone: {got} vs {lot:?}"))
        );
        if status == "queued" && !touched.lots.contains(id) {
            assert_eq!(remaining, lot.containers - lot.sold, "{}", ctx(&format!("{got} vs {lot:?}")));
        }
    }
    for (id, got) in &by_id {
        if !model.lots.contains_key(id) {
            let grower = got["grower"].as_str().unwrap().to_string();
            assert!(touched.consigning.contains(&grower), "{}", ctx(&format!("a lot nobody consigned: {got}")));
        }
    }
    // Adopt the server's lots (statuses, and a consignment that was in flight).
    for (id, got) in by_id {
        let entry = model.lots.entry(id).or_insert_with(|| LotModel {
            grower: got["grower"].as_str().unwrap().into(),
            product: got["product"].as_str().unwrap().into(),
            containers: got["containers"].as_u64().unwrap(),
            units_per_container: got["units_per_container"].as_u64().unwrap(),
            min_price: fen(&got["min_price"]),
            sold: 0,
            clock: None,
            status: String::new(),
        });
        entry.status = got["status"].as_str().unwrap().into();
        if touched.lots.contains(&id) && entry.status == "queued" {
            entry.sold = entry.containers - got["remaining"].as_u64().unwrap();
        }
    }

    // Accounts and open orders.
    let ids: Vec<String> = model.participants.keys().cloned().collect();
    for id in ids {
        let c = s.by_id.get_mut(&id).unwrap();
        let account = get_account(c).await;
        let role = model.participants[&id].1;
        let (field, book) = match role {
            Role::Buyer => ("bought", &mut model.bought),
            Role::Grower => ("sold", &mut model.sold),
        };
        let want = *book.get(&id).unwrap_or(&0);
        let got = fen(&account[field]);
        if touched.participants.contains(&id) {
            assert!(
                got >= want,
                "{}",
                ctx(&format!("{id}: acknowledged {field} {} but the account says {account}", money(want)))
            );
            book.insert(id.clone(), got);
        } else {
            assert_eq!(
                got,
                want,
                "{}",
                ctx(&format!("{id}: acknowledged {field} {} but the account says {account}", money(want)))
            );
        }

        let open = get_orders(c).await;
        let mut seen = BTreeSet::new();
        for o in &open {
            let coid = o["client_order_id"].as_str().unwrap().to_string();
            seen.insert(coid.clone());
            let key = (id.clone(), coid.clone());
            match model.orders.get_mut(&key) {
                Some(m) => {
                    let leaves = order_leaves(o);
                    if touched.participants.contains(&id) {
                        assert!(leaves <= m.leaves, "{}", ctx(&format!("{o} vs {m:?}")));
                        m.leaves = leaves;
                    } else if o.get("leaves").is_some() {
                        assert_eq!(leaves, m.leaves, "{}", ctx(&format!("{o} vs {m:?}")));
                    }
                    assert_eq!(fen(&o["price"]), m.price, "{}", ctx(&o.to_string()));
                    assert_eq!(o["side"], m.side.as_str(), "{}", ctx(&o.to_string()));
                }
                None => {
                    assert_eq!(
                        touched.new_order.as_ref(),
                        Some(&key),
                        "{}",
                        ctx(&format!("an open order nobody acknowledged: {o}"))
                    );
                    model.orders.insert(
                        key,
                        OrderModel {
                            side: o["side"].as_str().unwrap().into(),
                            price: fen(&o["price"]),
                            leaves: order_leaves(o),
                        },
                    );
                }
            }
        }
        let gone: Vec<(String, String)> =
            model.orders.keys().filter(|(owner, coid)| *owner == id && !seen.contains(coid)).cloned().collect();
        for key in gone {
            assert!(
                touched.participants.contains(&id),
                "{}",
                ctx(&format!("acknowledged open order {key:?} is gone: {open:?}"))
            );
            model.orders.remove(&key);
        }
    }
}

/// Waits for the maker fill of `trade_id` on any grower session; returns (grower, fill).
pub async fn maker_fill(s: &mut Sessions, model: &Model, trade_id: &Value) -> (String, Value) {
    let deadline = tokio::time::Instant::now() + T;
    loop {
        for g in model.of_role(Role::Grower) {
            let c = s.by_id.get_mut(&g).unwrap();
            let id = trade_id.clone();
            if let Ok(f) =
                c.next_matching(move |v| v["type"] == "fill" && v["trade_id"] == id, Duration::from_millis(5)).await
            {
                return (g, f);
            }
        }
        assert!(tokio::time::Instant::now() < deadline, "no maker fill for trade {trade_id}");
    }
}

pub fn pump_feed(s: &mut Sessions, clocks: &mut Clocks, model: &Model) {
    for frame in s.feed.client.drain_now() {
        if let Frame::Json(ev) = frame {
            let seq = ev["seq"].as_u64().unwrap();
            assert_eq!(seq, s.feed.last_seq + 1, "the feed skipped: {ev}");
            s.feed.last_seq = seq;
            clocks.observe(&ev, model);
        }
    }
}

/// One scripted operation. It records its own effects in `model` as each is acknowledged, and
/// first declares in `touched` what it may change.
pub async fn operation(
    s: &mut Sessions,
    model: &mut Model,
    clocks: &mut Clocks,
    rng: &mut ChaCha8Rng,
    touched: &mut Touched,
) {
    pump_feed(s, clocks, model);
    let growers = model.of_role(Role::Grower);
    let buyers = model.of_role(Role::Buyer);
    let consigned: Vec<u64> = model.lots.iter().filter(|(_, l)| l.status == "consigned").map(|(id, _)| *id).collect();
    let queued: Vec<u64> = model.lots.iter().filter(|(_, l)| l.status == "queued").map(|(id, _)| *id).collect();
    match rng.gen_range(0..100) {
        0..=7 => {
            // Register a participant; ids are never reused, so an unacknowledged one is harmless.
            model.next_id += 1;
            let (role, id) = if rng.gen_bool(0.5) {
                (Role::Buyer, format!("b{}", model.next_id))
            } else {
                (Role::Grower, format!("g{}", model.next_id))
            };
            let (roles, credit) = match role {
                Role::Buyer => (vec!["buyer"], Some("100000.00")),
                Role::Grower => (vec!["grower"], None),
            };
            let token = register(&mut s.op, &id, &roles, credit).await;
            model.participants.insert(id.clone(), (token.clone(), role));
            let mut c = Client::connect(s.addr, "/ws").await;
            c.login(&token).await;
            s.by_id.insert(id, c);
        }
        8..=27 => {
            let g = growers.choose(rng).unwrap().clone();
            touched.consigning.insert(g.clone());
            let msg = lot_msg(
                ["ROSE", "LILY", "TULIP", "CARNATION"].choose(rng).unwrap(),
                ["A1", "A2", "B1"].choose(rng).unwrap(),
                rng.gen_range(5..=20),
                rng.gen_range(2..=8),
                &money(rng.gen_range(100..=150)),
            );
            let lot = consign(s.by_id.get_mut(&g).unwrap(), msg).await;
            model.lots.insert(
                lot["lot_id"].as_u64().unwrap(),
                LotModel {
                    grower: g,
                    product: lot["product"].as_str().unwrap().into(),
                    containers: lot["containers"].as_u64().unwrap(),
                    units_per_container: lot["units_per_container"].as_u64().unwrap(),
                    min_price: fen(&lot["min_price"]),
                    sold: 0,
                    clock: None,
                    status: "consigned".into(),
                },
            );
        }
        28..=42 if !consigned.is_empty() || !queued.is_empty() => {
            // Line a lot up (if any is free) and start a clock.
            let clock = *CLOCKS.choose(rng).unwrap();
            if let Some(&lot_id) = consigned.choose(rng) {
                touched.lots.insert(lot_id);
                let start = model.lots[&lot_id].min_price + rng.gen_range(200..=300);
                let r =
                    s.op.request(
                        json!({"type": "assign_lot", "lot_id": lot_id, "clock": clock, "start_price": money(start)}),
                    )
                    .await;
                assert_eq!(r["type"], "lot_assigned", "{r}");
                let lot = model.lots.get_mut(&lot_id).unwrap();
                lot.clock = Some(clock);
                lot.status = "queued".into();
            }
            let r = s.op.request(json!({"type": "start_clock", "clock": clock})).await;
            assert!(r["type"] == "clock_state" || r["code"] == "invalid_state", "start_clock: {r}");
        }
        43..=62 => {
            // A live bid on whatever round is running (waiting briefly for one).
            let deadline = tokio::time::Instant::now() + Duration::from_millis(300);
            while clocks.running_round().is_none() && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(10)).await;
                pump_feed(s, clocks, model);
            }
            let Some((clock, lot_id, round)) = clocks.running_round() else { return };
            let Some(lot) = model.lots.get(&lot_id).cloned() else { return };
            let b = buyers.choose(rng).unwrap().clone();
            touched.participants.insert(b.clone());
            touched.participants.insert(lot.grower.clone());
            touched.lots.insert(lot_id);
            let containers = rng.gen_range(1..=3u64).min(lot.containers - lot.sold).max(1);
            let r = s
                .by_id
                .get_mut(&b)
                .unwrap()
                .request(
                    json!({"type": "bid", "clock": clock, "lot_id": lot_id, "round": round, "containers": containers}),
                )
                .await;
            if r["type"] == "award" {
                let amount = fen(&r["amount"]);
                *model.bought.entry(b).or_default() += amount;
                *model.sold.entry(lot.grower.clone()).or_default() += amount;
                model.lots.get_mut(&lot_id).unwrap().sold += r["containers"].as_u64().unwrap();
            } else {
                assert_eq!(r["type"], "error", "{r}");
                let code = r["code"].as_str().unwrap();
                assert!(["too_late", "quantity_invalid", "invalid_state"].contains(&code), "bid: {r}");
            }
        }
        63..=74 => {
            // A resting sell (asks are always ≥ 2.00, bids ≤ 1.99: resting orders never cross).
            let g = growers.choose(rng).unwrap().clone();
            model.next_coid += 1;
            let coid = format!("o{}", model.next_coid);
            touched.participants.insert(g.clone());
            touched.new_order = Some((g.clone(), coid.clone()));
            let price = rng.gen_range(200..=220);
            let qty = rng.gen_range(5..=30);
            let r = s.by_id.get_mut(&g).unwrap().request(order(&coid, "sell", price, qty, "gtc")).await;
            assert_eq!(r["type"], "order_accepted", "{r}");
            model.orders.insert((g, coid), OrderModel { side: "sell".into(), price, leaves: qty });
        }
        75..=82 => {
            let b = buyers.choose(rng).unwrap().clone();
            model.next_coid += 1;
            let coid = format!("o{}", model.next_coid);
            touched.participants.insert(b.clone());
            touched.new_order = Some((b.clone(), coid.clone()));
            let price = rng.gen_range(180..=199);
            let qty = rng.gen_range(5..=20);
            let r = s.by_id.get_mut(&b).unwrap().request(order(&coid, "buy", price, qty, "gtc")).await;
            assert_eq!(r["type"], "order_accepted", "{r}");
            model.orders.insert((b, coid), OrderModel { side: "buy".into(), price, leaves: qty });
        }
        83..=92 => {
            // An IOC buy that takes liquidity; acknowledged once every fill and the done are in.
            let b = buyers.choose(rng).unwrap().clone();
            model.next_coid += 1;
            let coid = format!("o{}", model.next_coid);
            touched.participants.insert(b.clone());
            touched.participants.extend(growers.iter().cloned());
            let qty = rng.gen_range(5..=40);
            let c = s.by_id.get_mut(&b).unwrap();
            let r = c.request(order(&coid, "buy", 220, qty, "ioc")).await;
            assert_eq!(r["type"], "order_accepted", "{r}");
            let mut fills = Vec::new();
            loop {
                let id = coid.clone();
                let v = c
                    .next_matching(
                        move |v| {
                            (v["type"] == "fill" || v["type"] == "order_done") && v["client_order_id"] == id.as_str()
                        },
                        T,
                    )
                    .await
                    .unwrap_or_else(|e| panic!("ioc {coid}: {e}"));
                if v["type"] == "order_done" {
                    break;
                }
                fills.push(v);
            }
            let mut makers = Vec::new();
            for f in &fills {
                makers.push(maker_fill(s, model, &f["trade_id"]).await);
            }
            for f in &fills {
                let amount = fen(&f["price"]) * f["quantity"].as_i64().unwrap();
                *model.bought.entry(b.clone()).or_default() += amount;
            }
            for (g, f) in makers {
                let amount = fen(&f["price"]) * f["quantity"].as_i64().unwrap();
                *model.sold.entry(g.clone()).or_default() += amount;
                let key = (g, f["client_order_id"].as_str().unwrap().to_string());
                let leaves = f["leaves"].as_u64().unwrap();
                if leaves == 0 {
                    model.orders.remove(&key);
                } else if let Some(o) = model.orders.get_mut(&key) {
                    o.leaves = leaves;
                }
            }
        }
        _ => {
            // Cancel one open order.
            let keys: Vec<(String, String)> = model.orders.keys().cloned().collect();
            let Some((owner, coid)) = keys.choose(rng).cloned() else { return };
            touched.participants.insert(owner.clone());
            let r = s
                .by_id
                .get_mut(&owner)
                .unwrap()
                .request(json!({"type": "cancel_order", "client_order_id": coid}))
                .await;
            assert_eq!(r["type"], "order_done", "{r}");
            model.orders.remove(&(owner, coid));
        }
    }
}

pub fn order(coid: &str, side: &str, price: i64, qty: u64, tif: &str) -> Value {
    json!({"type": "new_order", "client_order_id": coid, "symbol": "ROSE-A", "side": side, "order_type": "limit",
           "price": money(price), "quantity": qty, "time_in_force": tif})
}

/// The morning's set-up, acknowledged before the first kill: growers g1, g2, buyers b1, b2, fast
/// clocks, ROSE-A open.
pub async fn set_up(op: &mut Client, model: &mut Model) {
    for (id, role) in [("g1", Role::Grower), ("g2", Role::Grower), ("b1", Role::Buyer), ("b2", Role::Buyer)] {
        let token = match role {
            Role::Grower => register(op, id, &["grower"], None).await,
            Role::Buyer => register(op, id, &["buyer"], Some("100000.00")).await,
        };
        model.participants.insert(id.to_string(), (token, role));
    }
    model.next_id = 10;
    for clock in CLOCKS {
        configure_fast_clock(op, clock).await;
    }
    let r = op.request(json!({"type": "set_book_state", "symbol": "ROSE-A", "state": "open"})).await;
    assert_eq!(r["type"], "book_state", "{r}");
}

/// Drives the market to a kill point: usually the auctioneer starts the clocks with queued lots
/// again first (so kills land in running rounds), then a few acknowledged operations, then, four
/// times in five, one left in flight when the kill comes (`touched` says what it may have done;
/// it is cleared if it finished in time). Returns whether an operation was in flight, and the
/// lots on a clock long enough that they must be back in the queue after the kill.
pub async fn up_to_a_kill(
    s: &mut Sessions,
    model: &mut Model,
    rng: &mut ChaCha8Rng,
    touched: &mut Touched,
) -> (bool, BTreeSet<u64>) {
    let mut clocks = Clocks::default();
    if rng.gen_bool(0.75) {
        let with_lots: BTreeSet<u64> =
            model.lots.values().filter(|l| l.status == "queued").filter_map(|l| l.clock).collect();
        for clock in with_lots {
            let r = s.op.request(json!({"type": "start_clock", "clock": clock})).await;
            assert_eq!(r["type"], "clock_state", "a clock with queued lots starts: {r}");
        }
    }
    for _ in 0..rng.gen_range(1..=6) {
        let mut scratch = Touched::default();
        operation(s, model, &mut clocks, rng, &mut scratch).await;
    }
    let mut in_flight = false;
    if !rng.gen_bool(0.2) {
        let delay = Duration::from_micros(rng.gen_range(0..3_000));
        let op = operation(s, model, &mut clocks, rng, touched);
        if tokio::time::timeout(delay, op).await.is_err() {
            in_flight = true;
        } else {
            // It finished in time: acknowledged in full, nothing uncertain.
            *touched = Touched::default();
        }
    }
    pump_feed(s, &mut clocks, model);
    let kill_us = now_us();
    let must_be_queued = clocks
        .on_clock
        .values()
        .filter(|(_, _, until)| *until > kill_us + 300_000)
        .map(|(lot, _, _)| *lot)
        // An acknowledged bid can take the last container before the feed's award reaches
        // the pump: that lot is sold out, not coming back to the queue.
        .filter(|lot| model.lots.get(lot).is_none_or(|l| l.sold < l.containers))
        .collect();
    (in_flight, must_be_queued)
}
