//! The feed's `seq` is durable (protocol section 9 v1.1, issue 11): every public event, clearing's
//! `stats` and `index` included, is numbered from the journal alone, so after `kill -9` a new
//! subscriber's snapshot is never behind what subscribers saw before, and `/feed?from_seq=N`
//! resumes across the restart with every event from `N` on, no gap, no duplicate, each one
//! byte for byte what was published before the kill. `/health` and `huashi replay` report the
//! same last feed seq.

use huashi_tests::*;
use serde_json::{json, Value};
use std::time::Duration;

const CLOCK_T: Duration = Duration::from_secs(30);
/// Quiet this long and the feed has published everything: held-back `stats` and `index` go out
/// one second of engine time after a sale (a journaled tick), so a few seconds covers a loaded
/// machine.
const QUIET: Duration = Duration::from_secs(3);

struct Desk {
    op: Client,
    grower: Client,
    buyer: Client,
    orders: u32,
}

impl Desk {
    /// One book trade on ROSE-A: the grower rests a sell, the buyer takes it.
    async fn book_trade(&mut self, price: &str, quantity: u64) {
        let r = self.op.request(json!({"type": "set_book_state", "symbol": "ROSE-A", "state": "open"})).await;
        assert_eq!(r["type"], "book_state", "{r}");
        self.orders += 1;
        let (sell, buy) = (format!("s{}", self.orders), format!("b{}", self.orders));
        for (c, coid, side, tif) in [(&mut self.grower, &sell, "sell", "gtc"), (&mut self.buyer, &buy, "buy", "ioc")] {
            let r = c
                .request(json!({"type": "new_order", "client_order_id": coid, "symbol": "ROSE-A", "side": side,
                                "order_type": "limit", "price": price, "quantity": quantity, "time_in_force": tif}))
                .await;
            assert_eq!(r["type"], "order_accepted", "{r}");
        }
        let done = self
            .buyer
            .next_matching(|v| v["type"] == "order_done" && v["client_order_id"] == buy.as_str(), REPLY_TIMEOUT)
            .await
            .unwrap();
        assert_eq!(done["reason"], "filled", "{done}");
        let r = self.op.request(json!({"type": "set_book_state", "symbol": "ROSE-A", "state": "closed"})).await;
        assert_eq!(r["type"], "book_state", "{r}");
    }

    /// One lot sold at the clock by a standing bid at `price`.
    async fn clock_sale(&mut self, price: &str) {
        let lot = consign(&mut self.grower, lot_msg("LILY", "A1", 10, 2, "0.10")).await;
        let lot_id = lot["lot_id"].as_u64().unwrap();
        let bid = json!({"type": "standing_bid", "lot_id": lot_id, "max_price": price, "containers": 2});
        assert_eq!(self.buyer.request(bid).await["type"], "standing_bid_accepted");
        let start = money(fen(&json!(price)) + 20);
        let r =
            self.op.request(json!({"type": "assign_lot", "lot_id": lot_id, "clock": 1, "start_price": start})).await;
        assert_eq!(r["type"], "lot_assigned", "{r}");
        let r = self.op.request(json!({"type": "start_clock", "clock": 1})).await;
        assert_eq!(r["type"], "clock_state", "{r}");
        self.buyer
            .next_matching(|v| v["type"] == "award" && v["lot_id"] == lot_id, CLOCK_T)
            .await
            .unwrap_or_else(|e| panic!("no award for lot {lot_id}: {e}"));
    }
}

async fn open_desk(server: &Server, grower: &str, buyer: &str) -> Desk {
    let mut op = server.operator().await;
    configure_fast_clock(&mut op, 1).await;
    Desk { op, grower: server.session(grower).await, buyer: server.session(buyer).await, orders: 0 }
}

fn types(events: &[Value]) -> Vec<String> {
    events.iter().map(|v| v["type"].as_str().unwrap_or("?").to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_feed_seq_survives_kill_9_and_a_resume_crosses_it_without_a_gap() {
    let mut server = Server::start(ServerOpts::default());
    let mut op = server.operator().await;
    let grower = register(&mut op, "g-feed", &["grower"], None).await;
    let buyer = register(&mut op, "b-feed", &["buyer"], Some("100000.00")).await;
    let mut desk = open_desk(&server, &grower, &buyer).await;
    // `early` reads up to seq N and leaves; `late` reads everything until the kill.
    let mut early = server.feed().await;
    let mut late = server.feed().await;

    desk.book_trade("10.00", 5).await;
    desk.clock_sale("3.00").await;
    early.drain_quiet(QUIET).await;
    let n = early.last_seq;
    let seen = types(&early.events);
    for ty in ["trade", "clock_award", "stats", "index"] {
        assert!(seen.iter().any(|t| t == ty), "no `{ty}` on the feed before the kill: {seen:?}");
    }
    drop(early);

    // Events N+1..M: seen live by `late` only.
    desk.book_trade("10.50", 3).await;
    desk.clock_sale("3.10").await;
    late.drain_quiet(QUIET).await;
    let m = late.last_seq;
    assert!(m > n + 3, "the second round of trading published little: {n} → {m}");
    let health = server.health().await;
    assert_eq!(health["seq"], m, "/health seq is the feed's last seq: {health}");
    assert!(health["command_seq"].as_u64().is_some_and(|c| c > 0), "/health command_seq: {health}");
    let before_kill: Vec<Value> = late.events.iter().filter(|v| v["seq"].as_u64().unwrap() > n).cloned().collect();
    assert_eq!(before_kill.len() as u64, m - n);

    server.kill9();
    drop((desk, late));
    server.restart();

    let fresh = server.feed().await;
    assert!(
        fresh.last_seq >= m,
        "after kill -9 a new subscriber's snapshot is at seq {}, behind the {m} published before",
        fresh.last_seq
    );
    assert_eq!(server.health().await["seq"], fresh.last_seq);

    // Trading goes on after the restart: events M+1.. are new.
    let mut desk = open_desk(&server, &grower, &buyer).await;
    desk.orders = 100; // client order ids are unique per day, across the restart too
    desk.book_trade("11.00", 2).await;
    let mut after = server.feed().await;
    after.drain_quiet(QUIET).await;
    let last = after.last_seq.max(after.snapshot["seq"].as_u64().unwrap());
    assert!(last > m, "no event after the restart");

    // A resume from N + 1 gets every event from there: those published before the kill, exactly
    // as they were, then those after the restart.
    let mut resumed = Feed::resume(server.addr, n + 1).await;
    resumed.read_until_seq(last, REPLY_TIMEOUT).await;
    assert_eq!(resumed.events.len() as u64, last - n);
    for (old, new) in before_kill.iter().zip(&resumed.events) {
        assert_eq!(canonical(old), canonical(new), "an event published before the kill came back different");
    }
    assert!(resumed.next_event(Duration::from_millis(300)).await.is_none(), "a resume sent more than was published");

    // The last seq + 1 resumes with nothing to send yet; further on is a snapshot.
    let mut at_end = Feed::resume(server.addr, last + 1).await;
    assert!(at_end.next_event(Duration::from_millis(300)).await.is_none());
    let mut beyond = Client::connect(server.addr, &format!("/feed?from_seq={}", last + 1_000)).await;
    match beyond.next_frame(REPLY_TIMEOUT).await {
        Some(Frame::Json(v)) => {
            assert_eq!(v["type"], "snapshot", "a from_seq the feed never reached gets a snapshot: {v}");
            assert_eq!(v["seq"], last, "{v}");
        }
        other => panic!("no snapshot for a from_seq beyond the last: {other:?}"),
    }
    for bad in ["abc", "-1", "1.5", ""] {
        let (status, body) = http_get(server.addr, &format!("/feed?from_seq={bad}")).await;
        assert_eq!(status, 400, "from_seq={bad:?} must be refused with 400: {body}");
        assert!(body.contains("from_seq"), "the refusal names from_seq: {body}");
    }

    drop((desk, resumed, at_end, beyond, after, fresh));
    let replay = server.stop_and_check_replays();
    assert_eq!(replay.feed_seq, last, "huashi replay reports the feed's last seq:\n{}", replay.stdout);
}
