//! A stalled `/feed` subscriber (socket open, never read) must not delay the engine or the other
//! subscribers: they receive every event, gapless; the stalled one is eventually closed with 1008,
//! or, if the server could still hold everything for it, it gets every event too — never a
//! silent gap.

use huashi_tests::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const FAST_SUBSCRIBERS: usize = 3;
/// Orders per side per round; each order and each cancellation is one public `book` event.
const ORDERS: usize = 4000;
const ROUNDS: usize = 3;

/// A small feed backlog so that a stalled subscriber falls behind quickly, and room for the
/// generator to pipeline. Only used if this build of `huashi serve` takes `--config`.
const CONFIG: &str =
    "[limits]\nfeed_backlog_max = 512\nrate_per_second = 1000000\nrate_burst = 1000000\nwrite_timeout_ms = 3000\n";

fn order(coid: String, side: &str, price_fen: i64) -> Value {
    json!({"type": "new_order", "client_order_id": coid, "symbol": "ROSE-A", "side": side, "order_type": "limit",
           "price": money(price_fen), "quantity": 1, "time_in_force": "gtc"})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_feed_subscriber_never_delays_the_others() {
    let mut opts = ServerOpts::default();
    if serve_help().contains("--config") {
        opts.config_toml = Some(CONFIG.to_string());
    }
    let server = Server::start(opts);
    let mut op = server.operator().await;
    let tg = register(&mut op, "g1", &["grower"], None).await;
    let tb = register(&mut op, "b1", &["buyer"], Some("100000.00")).await;
    let mut grower = server.session(&tg).await;
    let mut buyer = server.session(&tb).await;
    let r = op.request(json!({"type": "set_book_state", "symbol": "ROSE-A", "state": "open"})).await;
    assert_eq!(r["type"], "book_state", "{r}");

    let stalled = StalledFeed::connect(server.addr).await;
    let mut fast = Vec::new();
    for _ in 0..FAST_SUBSCRIBERS {
        fast.push(server.feed().await);
    }
    let start_seq = fast[0].snapshot["seq"].as_u64().unwrap();
    assert!(fast.iter().all(|f| f.snapshot["seq"] == start_seq), "nothing happened between the snapshots");

    let started = Instant::now();
    for round in 0..ROUNDS {
        // Bids from 1.00 up, asks from above the best bid + 1.00: never crossing, one level each.
        let sells = (0..ORDERS).map(|i| order(format!("s{round}-{i}"), "sell", 200 + (ORDERS + i) as i64)).collect();
        let buys = (0..ORDERS).map(|i| order(format!("b{round}-{i}"), "buy", 100 + i as i64)).collect();
        let (rs, rb) = tokio::join!(grower.request_many(sells, 32), buyer.request_many(buys, 32));
        for r in rs.iter().chain(rb.iter()) {
            assert_eq!(r["type"], "order_accepted", "{r}");
        }
        // Cancelled one by one (cancel_all's feed output is checked in auction_morning).
        let cancel = |prefix: char| -> Vec<Value> {
            (0..ORDERS)
                .map(|i| json!({"type": "cancel_order", "client_order_id": format!("{prefix}{round}-{i}")}))
                .collect()
        };
        let (rs, rb) = tokio::join!(grower.request_many(cancel('s'), 32), buyer.request_many(cancel('b'), 32));
        for r in rs.iter().chain(rb.iter()) {
            assert_eq!(r["type"], "order_done", "{r}");
        }
    }
    let generated = started.elapsed();
    // Each order placed and each order cancelled is one public `book` event.
    let end_seq = start_seq + (ROUNDS * ORDERS * 4) as u64;

    // The fast subscribers get everything, gapless (Feed checks every seq), within generous time.
    for (i, feed) in fast.iter_mut().enumerate() {
        feed.read_until_seq(end_seq, Duration::from_secs(60)).await;
        assert_eq!(feed.last_seq, end_seq, "subscriber {i}");
    }
    // Every order placed and every order cancelled is a public `book` event, and the
    // last word on every level is 0: the book is empty again.
    let mut levels = std::collections::BTreeMap::new();
    let mut books = 0;
    for e in fast[0].events.iter().filter(|e| e["type"] == "book") {
        books += 1;
        levels.insert((e["side"].to_string(), e["price"].to_string()), e["quantity"].as_u64().unwrap());
    }
    let kinds: std::collections::BTreeSet<String> = fast[0].events.iter().map(|e| e["type"].to_string()).collect();
    let left = levels.values().filter(|q| **q != 0).count();
    assert_eq!(left, 0, "{left} of {} levels were never published as removed (0) after their orders were cancelled; event types {kinds:?}", levels.len());
    assert_eq!(books, ROUNDS * ORDERS * 4, "one book event per order placed and per level cancelled; types {kinds:?}");
    note(format!(
        "{} events generated in {generated:?}; fast subscribers done {:?} after start",
        end_seq - start_seq,
        started.elapsed()
    ));

    // A newcomer still gets its snapshot while the stalled one sits there.
    let newcomer = server.feed().await;
    assert!(newcomer.snapshot["seq"].as_u64().unwrap() >= end_seq);

    // The engine is still answering promptly.
    buyer.ping().await;

    // Now look at what the stalled subscriber was left with.
    let outcome = stalled.drain(Duration::from_secs(5)).await;
    let first = outcome.snapshot_seq.expect("the stalled subscriber got its snapshot");
    let mut expect = first + 1;
    for e in &outcome.events {
        assert_eq!(e["seq"].as_u64(), Some(expect), "the stalled subscriber saw a gap without being closed: {e}");
        expect += 1;
    }
    let last = expect - 1;
    match &outcome.close {
        Some(Frame::Close(code, reason)) => {
            assert_eq!(*code, Some(1008), "a slow consumer is closed with 1008, got {code:?} {reason:?}");
            note(format!("stalled subscriber closed with 1008 ({reason:?}) after seq {last} of {end_seq}"));
        }
        Some(other) => {
            note(format!(
                "stalled subscriber's connection ended without a close frame ({other:?}) after seq {last} of {end_seq}"
            ));
        }
        None => {
            assert!(
                last >= end_seq,
                "the stalled subscriber was neither closed nor given every event (stopped at {last} of {end_seq})"
            );
            note("stalled subscriber was not closed: the server held every event for it");
        }
    }
}
