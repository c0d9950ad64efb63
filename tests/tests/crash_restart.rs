//! `kill -9` the server at 22 seeded random points of a scripted trading session and restart it
//! on the same data directory each time. Every effect a client was told about must still be there
//! (protocol section 3: replies are sent only after the journal has the command): registered
//! participants log in, consigned lots are listed, acknowledged awards and fills are in the
//! accounts and open orders, and clocks come back idle with their lot queued. At the end,
//! `huashi replay` gives the same state hash twice, and from genesis too.
//!
//! The script, its model of acknowledged effects and the checks are `huashi_tests::kill_model`
//! (shared with the leader kills of tests/tests/cluster.rs).

use huashi_tests::kill_model::*;
use huashi_tests::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

const CYCLES: usize = 22;
const SEED: u64 = 0x4b49_4c4c_2d39_0022;
const T: Duration = REPLY_TIMEOUT;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_effect_survives_kill_9() {
    let mut rng = ChaCha8Rng::seed_from_u64(SEED);
    let mut server = Server::start(ServerOpts::default().clocks(CLOCKS.len() as u32));
    let mut model = Model::default();

    // The morning's set-up, acknowledged before the first kill.
    set_up(&mut server.operator().await, &mut model).await;

    let mut queued_checks = 0;
    let mut in_flight_kills = 0;
    let mut touched = Touched::default();
    let mut must_be_queued = BTreeSet::new();
    for cycle in 0..=CYCLES {
        let mut s = connect_all(&server, &model).await;
        verify(&mut s, &mut model, &touched, &must_be_queued, cycle).await;
        queued_checks += must_be_queued.iter().filter(|l| !touched.lots.contains(l)).count();
        if cycle == CYCLES {
            break;
        }
        touched = Touched::default();
        let (in_flight, queued) = up_to_a_kill(&mut s, &mut model, &mut rng, &mut touched).await;
        in_flight_kills += usize::from(in_flight);
        must_be_queued = queued;
        server.kill9();
        drop(s);
        server.start_again();
    }
    note(format!(
        "{CYCLES} kills, {in_flight_kills} with an operation in flight; {queued_checks} lots checked back in queue"
    ));
    note(format!(
        "{} participants, {} lots, {} open orders",
        model.participants.len(),
        model.lots.len(),
        model.orders.len()
    ));
    assert!(in_flight_kills >= 3, "the seeded kills should often land mid-operation ({in_flight_kills})");

    // Replay the stopped server's data directory: deterministic, and the same from genesis.
    let first = server.stop_and_check_replays();
    assert!(first.commands > 0 || first.last_seq > 0, "{}", first.stdout);
}

/// The deterministic companion of the random kills: a clock killed in each of its busy states
/// (`pre_roll`, `running`, `pause`) comes back `idle`, its lot `queued` at the head of the supply
/// line with every acknowledged award standing, and it auctions the lot again when started.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clock_killed_in_any_state_comes_back_idle_with_its_lot_queued() {
    let mut server = Server::start(ServerOpts::default().clocks(3));
    let mut op = server.operator().await;
    let tg = register(&mut op, "g1", &["grower"], None).await;
    let tb = register(&mut op, "b1", &["buyer"], Some("10000.00")).await;
    let mut g = server.session(&tg).await;
    let mut b = server.session(&tb).await;
    let mut feed = server.feed().await;
    // Clock 1 sits in a long pre-roll, clock 2 in a long round, clock 3 in a long pause.
    let settings = [
        (1u64, json!({"pre_roll_ms": 60_000, "pause_ms": 50})),
        (2, json!({"pre_roll_ms": 50, "pause_ms": 50, "tick_ms": 1_000})),
        (3, json!({"pre_roll_ms": 50, "pause_ms": 60_000})),
    ];
    let mut lots = BTreeMap::new();
    for (clock, extra) in &settings {
        let mut msg = json!({"type": "configure_clock", "clock": clock, "step": "0.01", "tick_ms": 10});
        for (k, v) in extra.as_object().unwrap() {
            msg[k] = v.clone();
        }
        let r = op.request(msg).await;
        assert_eq!(r["type"], "clock_configured", "{r}");
        let lot = consign(&mut g, lot_msg("ROSE", "A1", 10, 5, "1.00")).await["lot_id"].as_u64().unwrap();
        op.request(json!({"type": "assign_lot", "lot_id": lot, "clock": clock, "start_price": "5.00"})).await;
        op.request(json!({"type": "start_clock", "clock": clock})).await;
        lots.insert(*clock, lot);
    }
    feed.next_matching(|v| v["type"] == "lot_on_clock" && v["clock"] == 1, T).await.expect("clock 1 pre-rolls");
    feed.next_matching(|v| v["type"] == "clock_started" && v["clock"] == 2, T).await.expect("clock 2 runs");
    let r3 = feed.next_matching(|v| v["type"] == "clock_started" && v["clock"] == 3, T).await.expect("clock 3 runs");
    let award =
        b.request(json!({"type": "bid", "clock": 3, "lot_id": lots[&3], "round": r3["round"], "containers": 2})).await;
    assert_eq!(award["type"], "award", "{award}");
    feed.next_matching(|v| v["type"] == "clock_state" && v["clock"] == 3 && v["state"] == "pause", T)
        .await
        .expect("pause");
    let snapshot = server.feed().await.snapshot;
    let states: Vec<Value> = snapshot["clocks"].as_array().unwrap().iter().map(|c| c["state"].clone()).collect();
    assert_eq!(states, vec![json!("pre_roll"), json!("running"), json!("pause")], "before the kill: {snapshot}");
    drop((op, g, b, feed));

    let r2 = snapshot["clocks"][1].clone();
    server.kill9();
    server.start_again();
    // From the moment it says it is listening, the clocks are idle ...
    let after = server.feed().await.snapshot;
    let states: Vec<Value> = after["clocks"].as_array().unwrap().iter().map(|c| c["state"].clone()).collect();
    assert_eq!(states, vec![json!("idle"); 3], "every clock comes back idle after a restart: {after}");
    // ... and the round that was running is over: a bid for it loses.
    let mut b = server.session(&tb).await;
    let late =
        b.request(json!({"type": "bid", "clock": 2, "lot_id": lots[&2], "round": r2["round"], "containers": 1})).await;
    assert_eq!(late["type"], "error", "a round running at the crash must not sell after the restart: {late}");
    let mut op = server.operator().await;
    let listed = get_lots(&mut op).await;
    for (clock, lot) in &lots {
        let l = listed.iter().find(|l| l["lot_id"] == *lot).unwrap();
        assert_eq!(l["status"], "queued", "clock {clock}'s lot comes back queued: {l}");
        let remaining = if *clock == 3 { 3 } else { 5 };
        assert_eq!(l["remaining"], remaining, "acknowledged awards stand: {l}");
    }
    let a = get_account(&mut b).await;
    assert_eq!(a["bought"], award["amount"], "the award before the crash stands: {a}");

    // Started again, clock 2 auctions its lot from the head of the supply line.
    let mut feed = server.feed().await;
    let r = op.request(json!({"type": "start_clock", "clock": 2})).await;
    assert_eq!(r["type"], "clock_state", "{r}");
    let ev =
        feed.next_matching(|v| v["type"] == "lot_on_clock" && v["clock"] == 2, T).await.expect("lot back on clock 2");
    assert_eq!(ev["lot"]["lot_id"], lots[&2], "{ev}");
}
