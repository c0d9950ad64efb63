//! Abuse from outside (issue 12): a client that bursts past its rate limit learns the fate of
//! every order the engine took before it is closed; silent and slowloris TCP connections are
//! timed out before they can starve the market of file descriptors.

use huashi_tests::*;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

const T: Duration = Duration::from_secs(15);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_past_the_rate_limit_is_answered_for_every_accepted_order_before_the_close() {
    let server = Server::start(ServerOpts::default());
    let mut op = server.operator().await;
    let token = register(&mut op, "b1", &["buyer"], Some("100000.00")).await;
    let r = op.request(json!({"type": "set_book_state", "symbol": "ROSE-A", "state": "open"})).await;
    assert_eq!(r["type"], "book_state", "{r}");

    let mut burst = server.session(&token).await;
    // 1,000 orders at once, never waiting for a reply: far past the default burst of 200.
    let mut sent = 0;
    for i in 0..1_000 {
        let order = json!({"type": "new_order", "req_id": i, "client_order_id": format!("o{i}"),
            "symbol": "ROSE-A", "side": "buy", "order_type": "limit", "price": "1.00", "quantity": 1,
            "time_in_force": "gtc"});
        if burst.try_send(Message::text(order.to_string())).await.is_err() {
            break; // closed under us: its close frame is waiting to be read
        }
        sent += 1;
    }
    // Everything up to the close: every reply must come before it.
    let mut acknowledged: HashMap<String, Value> = HashMap::new();
    let mut refused = 0;
    let close = loop {
        match burst.next_frame(T).await {
            Some(Frame::Json(v)) if v["type"] == "order_accepted" && !v["req_id"].is_null() => {
                let coid = v["client_order_id"].as_str().expect("client_order_id").to_string();
                assert!(acknowledged.insert(coid, v.clone()).is_none(), "acknowledged twice: {v}");
            }
            Some(Frame::Json(v)) if v["type"] == "error" => {
                assert!(["rate_limited", "internal"].contains(&v["code"].as_str().unwrap_or("")), "{v}");
                refused += 1;
            }
            Some(Frame::Json(_)) => {} // private reports about the orders
            Some(Frame::Close(code, _)) => break code,
            Some(other) => panic!("the burst must end with a close frame, not {other:?}"),
            None => panic!("no close within {T:?} after {sent} orders"),
        }
    };
    note(format!("burst: sent {sent}, acknowledged {}, refused {refused}, close {close:?}", acknowledged.len()));
    assert_eq!(close, Some(1008), "a client bursting past its rate limit is closed with 1008");
    assert!(!acknowledged.is_empty(), "the first orders are within the burst and accepted");
    assert!(refused > 0, "1,000 orders at once meet rate_limited");

    // What the engine holds, seen from a second session of the same participant.
    let mut second = server.session(&token).await;
    let orders = second.request(json!({"type": "get_orders"})).await;
    assert_eq!(orders["type"], "orders", "{orders}");
    let open: HashSet<String> = orders["orders"]
        .as_array()
        .expect("orders[]")
        .iter()
        .map(|o| o["client_order_id"].as_str().expect("client_order_id").to_string())
        .collect();
    let unacknowledged: Vec<&String> = open.iter().filter(|coid| !acknowledged.contains_key(*coid)).collect();
    assert!(unacknowledged.is_empty(), "orders the engine took but never acknowledged: {unacknowledged:?}");
    let missing: Vec<&String> = acknowledged.keys().filter(|coid| !open.contains(*coid)).collect();
    assert!(missing.is_empty(), "acknowledged orders the engine does not hold: {missing:?}");
}
