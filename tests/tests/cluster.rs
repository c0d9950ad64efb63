//! One market on several machines (issue 13, "What it must show"), end to end: a real 3-node NATS
//! JetStream cluster (`huashi_tests::nats::NatsCluster`), a leader and followers of the real
//! `huashi` binary, and docs/cluster-spec's interface (`serve --nats --hall`, `follow`, `/health`
//! role/leader/lag/state_hash/hash_seq, the stream's headers and framing).
//!
//! - the harness's own NATS cluster keeps a hand-written stream through the loss of one node,
//!   refuses it with two down, and the stream checker reads it back;
//! - same market everywhere: a scripted morning on the leader; followers agree on the state hash,
//!   on `huashi replay` of their directories, on the feed, serve reads and refuse commands;
//! - leader killed at random points of a busy morning: a follower leads, every acknowledged
//!   effect is on it, the stream has no gap and no duplicate, a feed on a follower never skips;
//! - split brain: a `SIGSTOP`ped leader past its lease acknowledges nothing once resumed;
//! - NATS node loss: one down, trading goes on; two down, the leader acknowledges nothing and
//!   says `degraded`; one back, it goes on and nothing acknowledged is missing from the stream.
//!
//! Without `nats-server` (or before this `huashi` has `--nats`) the tests say "skipped" and pass,
//! except under `CI=true`, where they fail. No test asserts on speed except the generous
//! "a follower leads within 5 s" bound.

use huashi_tests::nats::*;
use huashi_tests::*;
use serde_json::json;
use std::time::Duration;

fn publish_msg(
    kind: &str,
    id: &str,
    term: u64,
    first: u64,
    last: u64,
    payload: Vec<u8>,
) -> (async_nats::HeaderMap, Vec<u8>) {
    let mut h = async_nats::HeaderMap::new();
    h.insert("Nats-Msg-Id", id);
    h.insert("Huashi-Kind", kind);
    h.insert("Huashi-Term", term.to_string().as_str());
    h.insert("Huashi-First-Seq", first.to_string().as_str());
    h.insert("Huashi-Last-Seq", last.to_string().as_str());
    (h, payload)
}

/// Publishes and waits for the stream's acknowledgement (bounded); Err when none came.
async fn publish(
    js: &async_nats::jetstream::Context,
    subject: &str,
    (headers, payload): (async_nats::HeaderMap, Vec<u8>),
    timeout: Duration,
) -> Result<u64, String> {
    let fut = async {
        let ack =
            js.publish_with_headers(subject.to_string(), headers, payload.into()).await.map_err(|e| e.to_string())?;
        ack.await.map(|a| a.sequence).map_err(|e| e.to_string())
    };
    tokio::time::timeout(timeout, fut).await.map_err(|_| "no acknowledgement in time".to_string())?
}

/// Publishes (the same message each time) until the stream acknowledges it or `within` passes.
async fn publish_within(
    js: &async_nats::jetstream::Context,
    subject: &str,
    msg: impl Fn() -> (async_nats::HeaderMap, Vec<u8>),
    within: Duration,
) -> Result<u64, String> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match publish(js, subject, msg(), Duration::from_secs(3)).await {
            Ok(seq) => return Ok(seq),
            Err(e) if tokio::time::Instant::now() > deadline => return Err(e),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

fn batch(term: u64, seqs: std::ops::RangeInclusive<u64>) -> (async_nats::HeaderMap, Vec<u8>) {
    let (first, last) = (*seqs.start(), *seqs.end());
    let payload: Vec<u8> = seqs.flat_map(|s| encode_record(s, format!("command {s}").as_bytes())).collect();
    publish_msg("batch", &format!("{term}:{first}"), term, first, last, payload)
}

/// The harness itself, without huashi: three nats-servers form a JetStream cluster, an R3 stream
/// written by hand in the spec's format survives one node's loss, refuses writes with two down,
/// takes them again when one returns, and `read_stream` reads it back without gap or duplicate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_harness_nats_cluster_keeps_a_stream_through_node_loss() {
    if !nats_available() {
        assert!(std::env::var("CI").map_or(true, |v| v != "true"), "no nats-server on CI");
        note("skipped: no nats-server");
        return;
    }
    let mut nats = NatsCluster::start(3);
    let client = async_nats::connect(nats.urls().split(',').collect::<Vec<_>>()).await.expect("connect to NATS");
    let js = async_nats::jetstream::new(client);
    let hall = "probe-1";
    let subject = format!("huashi.{hall}.journal");
    js.create_stream(async_nats::jetstream::stream::Config {
        name: stream_name(hall),
        subjects: vec![subject.clone()],
        storage: async_nats::jetstream::stream::StorageType::File,
        num_replicas: 3,
        ..Default::default()
    })
    .await
    .expect("create an R3 stream");
    assert_eq!(stream_name(hall), "HUASHI_PROBE_1");
    let t = Duration::from_secs(15);
    publish(&js, &subject, publish_msg("genesis", "0:0", 0, 0, 0, b"genesis".to_vec()), t).await.unwrap();
    publish(&js, &subject, publish_msg("term", "1:term", 1, 1, 0, Vec::new()), t).await.unwrap();
    publish(&js, &subject, batch(1, 1..=3), t).await.unwrap();
    // A retried publish is de-duplicated by its message id.
    publish(&js, &subject, batch(1, 1..=3), t).await.unwrap();

    nats.kill(0);
    // The stream's Raft group may have to elect a new leader first (some seconds).
    let stored = publish_within(&js, &subject, || batch(1, 4..=5), Duration::from_secs(40)).await;
    assert!(stored.is_ok(), "with one of three nodes down the stream still takes writes: {stored:?}");

    nats.kill(1);
    let refused = publish(&js, &subject, batch(1, 6..=6), Duration::from_secs(3)).await;
    assert!(refused.is_err(), "with two of three nodes down nothing is acknowledged: {refused:?}");

    // The refused publish may still be stored once a quorum returns (the stream leader had
    // proposed it): the writer must retry the same message, which the id de-duplicates, and
    // never reuse its seqs for something else.
    nats.restart(1);
    let stored = publish_within(&js, &subject, || batch(1, 6..=6), Duration::from_secs(40)).await;
    assert!(stored.is_ok(), "with a node back the stream takes writes again: {stored:?}");
    publish(&js, &subject, batch(1, 7..=7), t).await.unwrap();
    let history = read_stream(&nats.urls(), hall).await;
    assert_eq!(history.command_seqs, (1..=7).collect::<Vec<u64>>(), "{:?}", history.messages);
    assert_eq!(history.terms(), vec![1]);

    // The checker catches what a leader must never do: a new term re-publishing a command the
    // stream already has (a new message id, so JetStream stores it again).
    publish(&js, &subject, publish_msg("term", "2:term", 2, 8, 7, Vec::new()), t).await.unwrap();
    publish(&js, &subject, batch(2, 7..=8), t).await.unwrap();
    let (urls, name) = (nats.urls(), hall.to_string());
    let checked = tokio::spawn(async move { read_stream(&urls, &name).await }).await;
    let err = checked.expect_err("a repeated command seq must fail the stream check");
    assert!(err.is_panic(), "{err}");
    let msg = err.into_panic();
    let text = msg.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(text.contains("a duplicate"), "the check names the duplicate: {text}");
}

// ───────────────────────────── a hall: one leader, its followers ─────────────────────────────

const HALL: &str = "sh-e2e";
const T: Duration = REPLY_TIMEOUT;
/// How long a clock may take to finish a lot in these scripts (it never takes this long).
const CLOCK_T: Duration = Duration::from_secs(30);
/// How long a node may take to start, join and catch up, or to take the lease.
const JOIN_T: Duration = Duration::from_secs(60);

/// The huashi nodes of one hall on one NATS cluster. `nodes[0]` is started first with `serve`
/// (it leads); the others with `follow`. All share one operator token and config.
struct Hall {
    // Before `nats`: the huashi nodes are killed before the NATS servers (fields drop in order).
    nodes: Vec<Server>,
    nats: NatsCluster,
    opts: ServerOpts,
}

impl Hall {
    async fn start(nats: NatsCluster, followers: usize, clocks: u32, lease_ms: u64) -> Hall {
        let opts = ServerOpts::default().clocks(clocks).cluster(&nats.urls(), HALL).lease_ttl_ms(lease_ms);
        let leader = Server::start(opts.clone());
        let h = wait_role(&leader, "leader", None, JOIN_T).await;
        assert!(
            h["leader"].is_null() || h["leader"] == advertised(&leader).as_str(),
            "a leader names itself (or nobody) as the leader: {h}"
        );
        let mut hall = Hall { nodes: vec![leader], nats, opts };
        for _ in 0..followers {
            hall.add_follower().await;
        }
        hall
    }

    /// Starts `huashi follow` on a fresh data directory and waits until it follows the leader.
    async fn add_follower(&mut self) -> usize {
        let leader = self.leader_index().await;
        let url = advertised(&self.nodes[leader]);
        let f = Server::start(self.opts.clone().follow());
        wait_role(&f, "follower", Some(&url), JOIN_T).await;
        self.nodes.push(f);
        self.nodes.len() - 1
    }

    /// The index of the node that says it leads (waiting for one).
    async fn leader_index(&self) -> usize {
        let live: Vec<&Server> = self.nodes.iter().collect();
        wait_for_leader(&live, JOIN_T).await
    }

    /// What a supervisor does (docs/cluster.md): a node that exited is started again as a
    /// follower (here on a fresh directory). Only a deposed leader (exit 75) may have exited.
    fn supervise(&mut self) {
        for i in 0..self.nodes.len() {
            let Some(status) = self.nodes[i].wait_exit(Duration::ZERO) else { continue };
            let log = self.nodes[i].log();
            let last: Vec<&str> = log.lines().rev().take(12).collect::<Vec<_>>().into_iter().rev().collect();
            note(format!("node {i} exited ({status}); the end of its log:\n{}", last.join("\n")));
            assert_eq!(status.code(), Some(75), "node {i} ended, but not as a deposed leader: {status}");
            self.nodes[i] = Server::start(self.opts.clone().follow());
        }
    }

    /// Waits until the hall agrees (see `wait_same_state`) under whichever node leads, following
    /// a change of leader (a deposed node restarted by `supervise`). Returns the leader's index
    /// and `/health`.
    async fn agree(&mut self) -> (usize, serde_json::Value) {
        let deadline = tokio::time::Instant::now() + JOIN_T;
        loop {
            self.supervise();
            let leader = self.leader_index().await;
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match try_wait_same_state(&self.nodes[leader], &self.others(leader), left).await {
                Ok(h) => return (leader, h),
                Err(Disagreement::LeadershipMoved(why)) if tokio::time::Instant::now() < deadline => {
                    note(format!("waiting for agreement: {why}"));
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => {
                    // What the stream holds, to tell a stuck node from a bad stream (read_stream
                    // itself fails on a gap or a duplicate).
                    let history = read_stream(&self.nats.urls(), HALL).await;
                    let msgs: Vec<String> = history
                        .messages
                        .iter()
                        .map(|m| {
                            format!("{} {} {} {:?}..{:?}", m.stream_seq, m.kind, m.msg_id, m.first_seq, m.last_seq)
                        })
                        .collect();
                    panic!("{e}\nthe stream: {}", msgs.join("; "));
                }
            }
        }
    }

    fn others(&self, i: usize) -> Vec<&Server> {
        self.nodes.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, s)| s).collect()
    }
}

impl Drop for Hall {
    /// On a failure (or with `HUASHI_E2E_LOGS=1`), every node's log (the end of it), to see what
    /// the implementation said.
    fn drop(&mut self) {
        if !std::thread::panicking() && std::env::var("HUASHI_E2E_LOGS").map_or(true, |v| v != "1") {
            return;
        }
        for (i, node) in self.nodes.iter().enumerate() {
            eprintln!(
                "──── huashi node {i} ({}, data {}) log:\n{}",
                node.addr,
                node.data_dir.display(),
                tail(&node.log(), 6000)
            );
        }
        for i in 0..self.nats.len() {
            eprintln!("──── nats n{i} log:\n{}", tail(&self.nats.log(i), 1500));
        }
    }
}

/// Registers `id` and logs a session in on `server`.
async fn desk(server: &Server, op: &mut Client, id: &str, roles: &[&str], credit: Option<&str>) -> (String, Client) {
    let token = register(op, id, roles, credit).await;
    let c = server.session(&token).await;
    (token, c)
}

async fn ok(c: &mut Client, msg: serde_json::Value, reply_type: &str) -> serde_json::Value {
    let reply = c.request(msg.clone()).await;
    assert_eq!(reply["type"], reply_type, "{msg} → {reply}");
    reply
}

fn order(coid: &str, side: &str, price: &str, qty: u64, tif: &str) -> serde_json::Value {
    json!({"type": "new_order", "client_order_id": coid, "symbol": "ROSE-A", "side": side, "order_type": "limit",
           "price": price, "quantity": qty, "time_in_force": tif})
}

/// The next private report `ty` about order `coid`.
async fn report(c: &mut Client, ty: &str, coid: &str) -> serde_json::Value {
    let (t, id) = (ty.to_string(), coid.to_string());
    c.next_matching(move |v| v["type"] == t.as_str() && v["client_order_id"] == id.as_str(), T)
        .await
        .unwrap_or_else(|e| panic!("no {ty} for {coid}: {e}"))
}

/// Asserts a follower's refusal of a command: `invalid_state`, naming the leader's URL.
fn assert_refused_naming(reply: &serde_json::Value, leader_url: &str) {
    assert_error(reply, "invalid_state");
    let msg = reply["message"].as_str().unwrap();
    assert!(msg.contains(leader_url), "a follower's refusal names the leader at {leader_url}: {reply}");
}

/// Stops every node (followers first, so that no one takes over and journals more) and checks
/// that `huashi replay` of each directory agrees with the first's: last_seq, state hash, feed seq
/// and clearing hash (each directory replays alike twice and from genesis, too).
fn stop_and_compare_replays(first: &mut Server, others: &mut [&mut Server]) -> Replay {
    let mut replays = Vec::new();
    for s in others.iter_mut() {
        replays.push((s.data_dir.clone(), s.stop_and_check_replays()));
    }
    let want = first.stop_and_check_replays();
    for (dir, r) in replays {
        assert_eq!(
            (r.last_seq, &r.state_hash, r.feed_seq, &r.clearing_hash),
            (want.last_seq, &want.state_hash, want.feed_seq, &want.clearing_hash),
            "`huashi replay` of {} disagrees with the leader's {}:\n{}\n---\n{}",
            dir.display(),
            first.data_dir.display(),
            r.stdout,
            want.stdout
        );
    }
    want
}

// ───────────────────────────── same market everywhere ─────────────────────────────

/// A leader and two followers; a morning on the leader: a clock with multi-buy, a voided award,
/// an unsold rest and a standing bid; a book from pre-open through the uncross to continuous
/// trading and a cancel; `end_of_day`. Then every follower has the leader's state hash at the same
/// seq, the same feed (seq by seq, and a `from_seq` resume), the same reads; it refuses commands
/// naming the leader; and `huashi replay` of every directory agrees.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_market_everywhere_after_a_scripted_morning() {
    let Some(nats) = cluster_or_skip(3) else { return };
    let mut hall = Hall::start(nats, 2, 2, 3000).await;
    let leader_url = advertised(&hall.nodes[0]);
    let (l, f1, f2) = (&hall.nodes[0], &hall.nodes[1], &hall.nodes[2]);
    let mut feed = l.feed().await;
    let mut f1_feed = f1.feed().await;
    let start_seq = feed.snapshot["seq"].as_u64().unwrap().max(f1_feed.snapshot["seq"].as_u64().unwrap());
    let mut op = l.operator().await;
    let day = l.day.clone();
    assert_eq!(f1.day, day, "the follower's listening line names the leader's day");

    let (_, mut g1) = desk(l, &mut op, "g1", &["grower"], None).await;
    let (tb1, mut b1) = desk(l, &mut op, "b1", &["buyer"], Some("10000.00")).await;
    let (_, mut b2) = desk(l, &mut op, "b2", &["buyer"], Some("10000.00")).await;
    let (_, mut b3) = desk(l, &mut op, "b3", &["buyer"], Some("1000.00")).await;

    // The clock: multi-buy for 400 ms, short pre-roll and pause.
    ok(
        &mut op,
        json!({"type": "configure_clock", "clock": 1, "step": "0.01", "tick_ms": 10, "pre_roll_ms": 50,
               "pause_ms": 300, "restart_ticks": 10, "multi_buy_ms": 400}),
        "clock_configured",
    )
    .await;
    let lot_a = consign(&mut g1, lot_msg("ROSE", "A1", 20, 10, "3.00")).await["lot_id"].as_u64().unwrap();
    let lot_b = consign(&mut g1, lot_msg("LILY", "A2", 10, 4, "1.00")).await["lot_id"].as_u64().unwrap();
    ok(
        &mut b3,
        json!({"type": "standing_bid", "lot_id": lot_b, "max_price": "1.50", "containers": 4}),
        "standing_bid_accepted",
    )
    .await;
    for (lot, start) in [(lot_a, "3.60"), (lot_b, "2.00")] {
        ok(&mut op, json!({"type": "assign_lot", "lot_id": lot, "clock": 1, "start_price": start}), "lot_assigned")
            .await;
    }
    ok(&mut op, json!({"type": "start_clock", "clock": 1}), "clock_state").await;
    let r1 = feed
        .next_matching(|v| v["type"] == "clock_started" && v["lot_id"] == lot_a, CLOCK_T)
        .await
        .expect("lot A's round 1");
    // Two buyers within the multi-buy window: both win at the stopping price.
    let bid = |c: u64, round: &serde_json::Value| json!({"type": "bid", "clock": 1, "lot_id": lot_a, "round": round, "containers": c});
    b1.send_request(bid(3, &r1["round"])).await;
    b2.send_request(bid(2, &r1["round"])).await;
    let a1 = b1.next_of_type("award", T).await;
    let a2 = b2.next_of_type("award", T).await;
    assert_eq!(a1["price"], a2["price"], "multi-buy awards at the stopping price: {a1} {a2}");
    // The operator voids b2's award (its mistaken press) while the lot is on the clock.
    ok(
        &mut op,
        json!({"type": "void_award", "clock": 1, "lot_id": lot_a, "round": r1["round"], "buyer": "b2"}),
        "award_voided",
    )
    .await;
    // Nobody bids again: the rest of A goes unsold; B goes to b3's standing bid; the clock idles.
    feed.next_matching(|v| v["type"] == "lot_unsold" && v["lot_id"] == lot_a, CLOCK_T).await.expect("A unsold");
    let sb = b3.next_of_type("award", CLOCK_T).await;
    assert_eq!((sb["lot_id"].as_u64(), sb["price"].as_str()), (Some(lot_b), Some("1.50")), "{sb}");
    feed.next_matching(|v| v["type"] == "clock_state" && v["clock"] == 1 && v["state"] == "idle", CLOCK_T)
        .await
        .expect("clock 1 idle");

    // The book: pre-open, the uncross, continuous trading, a cancel.
    ok(&mut op, json!({"type": "set_book_state", "symbol": "ROSE-A", "state": "pre_open"}), "book_state").await;
    ok(&mut g1, order("s1", "sell", "2.00", 100, "gtc"), "order_accepted").await;
    ok(&mut b1, order("o1", "buy", "2.10", 60, "gtc"), "order_accepted").await;
    ok(&mut b2, order("o2", "buy", "1.95", 30, "day"), "order_accepted").await;
    ok(&mut op, json!({"type": "set_book_state", "symbol": "ROSE-A", "state": "open"}), "book_state").await;
    let f = report(&mut b1, "fill", "o1").await;
    assert_eq!((f["price"].as_str(), f["quantity"].as_u64()), (Some("2.00"), Some(60)), "the uncross: {f}");
    ok(&mut b2, order("o3", "buy", "2.05", 20, "ioc"), "order_accepted").await;
    assert_eq!(report(&mut b2, "order_done", "o3").await["reason"], "filled");
    let done = ok(&mut b2, json!({"type": "cancel_order", "client_order_id": "o2"}), "order_done").await;
    assert_eq!(done["reason"], "cancelled", "{done}");
    ok(&mut op, json!({"type": "set_book_state", "symbol": "ROSE-A", "state": "closed"}), "book_state").await;
    let settled = ok(&mut op, json!({"type": "end_of_day"}), "day_settled").await;
    assert_eq!(settled["trades"], 4, "two clock awards standing, the uncross and the ioc: {settled}");

    // Every follower: the leader's state at the same seq, and no lag.
    let lh = wait_same_state(l, &[f1, f2], JOIN_T).await;
    for f in [f1, f2] {
        let fh = cluster_health(f).await;
        assert_eq!(fh["leader"], leader_url.as_str(), "a follower's /health names the leader: {fh}");
        assert_eq!(fh["seq"], lh["seq"], "the follower's feed seq is the leader's: {fh} {lh}");
        assert_eq!(fh["day"], settled["next_day"], "{fh}");
    }

    // The feed: the same events with the same seq numbers on the leader and a follower ...
    let last = lh["seq"].as_u64().unwrap();
    feed.read_until_seq(last, T).await;
    f1_feed.read_until_seq(last, T).await;
    let on = |events: &[serde_json::Value]| -> Vec<String> {
        events.iter().filter(|e| e["seq"].as_u64().unwrap() > start_seq).map(canonical).collect()
    };
    assert_eq!(on(&f1_feed.events), on(&feed.events), "the follower's feed differs from the leader's");
    // ... and a subscriber resumes on the other follower from a seq it read on the leader.
    let from = feed.events.iter().find(|e| e["type"] == "day_settled").unwrap()["seq"].as_u64().unwrap() - 3;
    let mut resumed = Feed::resume(f2.addr, from).await;
    resumed.read_until_seq(last, T).await;
    let tail_of = |events: &[serde_json::Value]| -> Vec<String> {
        events.iter().filter(|e| e["seq"].as_u64().unwrap() >= from).map(canonical).collect()
    };
    assert_eq!(tail_of(&resumed.events), tail_of(&feed.events), "a resume on a follower replays the leader's events");

    // Reads on a follower: login, ping, get_* answer as on the leader; commands are refused.
    let mut fb1 = f1.session(&tb1).await;
    fb1.ping().await;
    for q in
        [json!({"type": "get_account"}), json!({"type": "get_orders"}), json!({"type": "get_statement", "day": day})]
    {
        let there = fb1.request(q.clone()).await;
        let here = b1.request(q.clone()).await;
        assert_ne!(there["type"], "error", "a follower serves {q}: {there}");
        assert_eq!(
            canonical(&strip_volatile(&there)),
            canonical(&strip_volatile(&here)),
            "{q} on a follower vs the leader"
        );
    }
    let mut fop = f2.operator().await;
    let lots_there = get_lots(&mut fop).await;
    assert_eq!(
        lots_there.iter().map(canonical).collect::<Vec<_>>(),
        get_lots(&mut op).await.iter().map(canonical).collect::<Vec<_>>(),
        "get_lots on a follower"
    );
    let refused = fb1.request(order("f1", "buy", "2.00", 1, "gtc")).await;
    assert_refused_naming(&refused, &leader_url);
    let refused = fop.request(json!({"type": "set_book_state", "symbol": "ROSE-A", "state": "open"})).await;
    assert_refused_naming(&refused, &leader_url);
    for path in ["/metrics", "/api/market", "/api/trades", "/api/index"] {
        let (status, body) = http_get(f1.addr, path).await;
        assert_eq!(status, 200, "a follower serves {path}: {body}");
    }
    assert_eq!(cluster_health(l).await["command_seq"], lh["command_seq"], "a refused command changes nothing");

    // One stream, no gap; and `huashi replay` of every directory agrees.
    let stream = read_stream(&hall.nats.urls(), HALL).await;
    assert_eq!(stream.last_command_seq(), lh["command_seq"].as_u64().unwrap(), "the stream ends at the leader's seq");
    drop((op, fop, fb1, g1, b1, b2, b3, feed, f1_feed, resumed));
    let [l, rest @ ..] = hall.nodes.as_mut_slice() else { unreachable!() };
    let mut rest: Vec<&mut Server> = rest.iter_mut().collect();
    let replay = stop_and_compare_replays(l, &mut rest);
    assert_eq!(replay.last_seq, lh["command_seq"].as_u64().unwrap(), "{}", replay.stdout);
    assert_eq!(replay.state_hash, lh["state_hash"].as_str().unwrap(), "replay's hash is /health's: {}", replay.stdout);
}

// ───────────────────────────── the leader killed ─────────────────────────────

/// `kill -9` the leader at seeded random points of a busy morning (the crash_restart script:
/// registrations, consignments, clocks with live bids, resting and crossing orders, cancels), 10
/// times under `CI=true` and 3 otherwise. Each time a follower leads and acknowledges a command
/// within 5 s of the kill; every acknowledged effect is on it (`kill_model::verify`); a feed on
/// a follower never skips a seq across the failover; the killed node comes back as a fresh
/// `huashi follow`. At the end: statements hold every acknowledged purchase and sale, the stream
/// has no gap and no duplicate and one term record per takeover, and every replay agrees.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_takes_over_from_a_killed_leader_and_loses_nothing_acknowledged() {
    use huashi_tests::kill_model::*;
    use rand::SeedableRng;
    let Some(nats) = cluster_or_skip(3) else { return };
    let kills = if std::env::var("CI").is_ok_and(|v| v == "true") { 10 } else { 3 };
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0x4841_4c4c_2d31_3300);
    let mut hall = Hall::start(nats, 2, CLOCKS.len() as u32, 1500).await;
    let mut model = Model::default();
    set_up(&mut hall.nodes[0].operator().await, &mut model).await;

    let mut touched = Touched::default();
    let mut must_be_queued = std::collections::BTreeSet::new();
    let mut leader = 0usize;
    let mut in_flight_kills = 0;
    let mut worst = Duration::ZERO;
    // A feed subscriber on a follower, moved (by `from_seq` resume) to another follower before
    // each kill, so that it always lives through the failover.
    let mut sub: Option<(usize, Feed)> = None;
    for cycle in 0..=kills {
        let mut s = connect_all(&hall.nodes[leader], &model).await;
        verify(&mut s, &mut model, &touched, &must_be_queued, cycle).await;
        if cycle == kills {
            break;
        }
        touched = Touched::default();
        let follower = (0..hall.nodes.len()).find(|i| *i != leader).unwrap();
        sub = Some(match sub.take() {
            Some((at, feed)) if at != leader => (at, feed),
            Some((_, mut feed)) => {
                feed.drain_quiet(Duration::from_millis(100)).await;
                let from = feed.last_seq + 1;
                let mut moved = Feed::resume(hall.nodes[follower].addr, from).await;
                moved.events = feed.events;
                moved.last_seq = from - 1;
                (follower, moved)
            }
            None => (follower, hall.nodes[follower].feed().await),
        });
        let (in_flight, queued) = up_to_a_kill(&mut s, &mut model, &mut rng, &mut touched).await;
        in_flight_kills += usize::from(in_flight);
        must_be_queued = queued;

        // The kill, and the clock to the first command the new leader acknowledges.
        let killed_at = tokio::time::Instant::now();
        hall.nodes[leader].kill9();
        drop(s);
        let (new_leader, took) = first_acknowledgement(&hall, leader, killed_at).await;
        note(format!("kill {cycle}: node {new_leader} acknowledged a command {took:?} after the leader's death"));
        worst = worst.max(took);
        assert!(
            took <= Duration::from_secs(5),
            "kill {cycle}: the first command acknowledged by a new leader came {took:?} after the kill"
        );

        // The subscriber on a follower read through the failover without a gap (Feed checks).
        let (_, feed) = sub.as_mut().unwrap();
        let seq_now = cluster_health(&hall.nodes[new_leader]).await["seq"].as_u64().unwrap();
        feed.read_until_seq(seq_now, JOIN_T).await;

        // The dead node comes back as a follower on a fresh directory: three nodes again.
        let url = advertised(&hall.nodes[new_leader]);
        let fresh = Server::start(hall.opts.clone().follow());
        wait_role(&fresh, "follower", Some(&url), JOIN_T).await;
        hall.nodes[leader] = fresh;
        if let Some((at, _)) = &sub {
            assert_ne!(*at, leader, "the subscriber was on the killed node");
        }
        leader = new_leader;
    }
    note(format!("{kills} kills, {in_flight_kills} with an operation in flight; slowest takeover {worst:?}"));

    // Statements of the day hold every acknowledged purchase and sale.
    let l = &hall.nodes[leader];
    let mut op = l.operator().await;
    ok(&mut op, json!({"type": "set_book_state", "symbol": "ROSE-A", "state": "closed"}), "book_state").await;
    for clock in CLOCKS {
        let r = op.request(json!({"type": "halt_clock", "clock": clock})).await;
        assert!(r["type"] == "clock_state" || r["code"] == "invalid_state", "{r}");
    }
    let day = l.day.clone();
    let settled = op.request(json!({"type": "end_of_day"})).await;
    assert_eq!(settled["type"], "day_settled", "{settled}");
    for (id, (_, role)) in &model.participants {
        let s = op.request(json!({"type": "get_statement", "day": day, "participant": id})).await;
        assert_eq!(s["type"], "statement", "{s}");
        let (field, want) = match role {
            Role::Buyer => ("total_bought", model.bought.get(id)),
            Role::Grower => ("total_sold", model.sold.get(id)),
        };
        assert_eq!(fen(&s[field]), *want.unwrap_or(&0), "{id}'s statement after the failovers: {s}");
    }

    // One history in the stream, and every directory replays to it.
    let lh = wait_same_state(l, &hall.others(leader), JOIN_T).await;
    let stream = read_stream(&hall.nats.urls(), HALL).await;
    assert_eq!(stream.last_command_seq(), lh["command_seq"].as_u64().unwrap(), "the stream ends at the leader's seq");
    assert!(stream.terms().len() >= kills, "one term record per takeover at least: {:?}", stream.terms());
    drop(op);
    if let Some((_, mut feed)) = sub.take() {
        feed.read_until_seq(lh["seq"].as_u64().unwrap(), T).await;
    }
    let mut nodes = std::mem::take(&mut hall.nodes);
    let mut first = nodes.remove(leader);
    let mut rest: Vec<&mut Server> = nodes.iter_mut().collect();
    stop_and_compare_replays(&mut first, &mut rest);
}

/// Polls the surviving nodes until one leads and acknowledges an operator command (a harmless
/// `configure_clock`); returns its index and the time since `killed_at`.
async fn first_acknowledgement(hall: &Hall, dead: usize, killed_at: tokio::time::Instant) -> (usize, Duration) {
    let deadline = killed_at + JOIN_T;
    loop {
        for (i, node) in hall.nodes.iter().enumerate() {
            if i == dead {
                continue;
            }
            let Ok((200, h)) = health_of(node).await else { continue };
            if h["role"] != "leader" {
                continue;
            }
            let Ok(mut op) = Client::try_connect(node.addr, "/ws").await else { continue };
            let Ok(login) = op.request_timeout(json!({"type": "login", "token": node.token()}), T).await else {
                continue;
            };
            assert_eq!(login["type"], "logged_in", "{login}");
            let msg = json!({"type": "configure_clock", "clock": 1, "step": "0.01", "tick_ms": 10,
                             "pre_roll_ms": 50, "pause_ms": 50, "restart_ticks": 10, "multi_buy_ms": 0});
            if let Ok(r) = op.request_timeout(msg, T).await {
                if r["type"] == "clock_configured" {
                    return (i, killed_at.elapsed());
                }
                note(format!("node {i} says it leads but answered {r}"));
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no follower acknowledged a command within {JOIN_T:?} of the leader's death; logs:\n{}",
            hall.others(dead).iter().map(|s| tail(&s.log(), 2000).to_string()).collect::<Vec<_>>().join("\n---\n")
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ───────────────────────────── split brain ─────────────────────────────

/// `SIGSTOP` the leader past its lease; a follower takes over and trades; `SIGCONT` the old one
/// with a command waiting in its socket: it acknowledges nothing after resuming (that command nor
/// a later one), and then exits 75 naming the new leader (or, the other option, follows it
/// and refuses). One history: the stream has no gap or duplicate and ends at the new leader's
/// seq, the old leader's orders are not in it, and the new leader's and the other follower's
/// directories replay alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_leader_acknowledges_nothing_after_a_follower_took_over() {
    let Some(nats) = cluster_or_skip(3) else { return };
    let mut hall = Hall::start(nats, 2, 1, 1500).await;
    let old = &hall.nodes[0];
    let mut op = old.operator().await;
    let (tg, mut g1) = desk(old, &mut op, "g1", &["grower"], None).await;
    let (tb, _) = desk(old, &mut op, "b1", &["buyer"], Some("10000.00")).await;
    ok(&mut op, json!({"type": "set_book_state", "symbol": "ROSE-A", "state": "open"}), "book_state").await;
    ok(&mut g1, order("s1", "sell", "2.00", 10, "gtc"), "order_accepted").await;
    wait_same_state(old, &hall.others(0), JOIN_T).await;

    // Frozen: its lease runs out while a command waits for it.
    old.signal(libc::SIGSTOP);
    let paused_at = tokio::time::Instant::now();
    let late = g1.send_request(order("late1", "sell", "2.01", 5, "gtc")).await;
    let others = hall.others(0);
    let n = wait_for_leader(&others, JOIN_T).await + 1;
    let new = &hall.nodes[n];
    let new_url = advertised(new);
    note(format!("node {n} leads {:?} after the pause", paused_at.elapsed()));

    // The new leader trades: a buy fills against the old leader's acknowledged sell.
    let mut nb = new.session(&tb).await;
    ok(&mut nb, order("b1", "buy", "2.00", 4, "ioc"), "order_accepted").await;
    let fill = report(&mut nb, "fill", "b1").await;
    assert_eq!(fill["quantity"], 4, "{fill}");
    let mut ng = new.session(&tg).await;
    ok(&mut ng, order("n1", "sell", "2.02", 3, "gtc"), "order_accepted").await;

    // Resumed: nothing it answers is a success, for the waiting command or a new one.
    old.signal(libc::SIGCONT);
    let success =
        |v: &serde_json::Value| ["order_accepted", "fill", "order_done"].contains(&v["type"].as_str().unwrap_or(""));
    let answer = g1.reply_to(&late, Duration::from_secs(5)).await;
    if let Ok(v) = &answer {
        assert!(!success(v), "the deposed leader acknowledged a command after resuming: {v}");
    }
    if g1.ended.is_none() {
        if let Ok(v) = g1.request_timeout(order("late2", "sell", "2.03", 5, "gtc"), Duration::from_secs(3)).await {
            assert!(!success(&v), "the deposed leader acknowledged a command after resuming: {v}");
        }
    }
    for frame in g1.drain_now() {
        if let Frame::Json(v) = frame {
            assert!(!success(&v), "the deposed leader reported an order after resuming: {v}");
        }
    }
    let old = &mut hall.nodes[0];
    match old.wait_exit(Duration::from_secs(20)) {
        Some(status) => {
            assert_eq!(
                status.code(),
                Some(75),
                "a deposed leader exits 75 (\"deposed\"): {status}\n{}",
                tail(&old.log(), 3000)
            );
            assert!(
                old.log().contains(&new_url),
                "the deposed leader's log names the new leader {new_url}:\n{}",
                tail(&old.log(), 3000)
            );
        }
        None => {
            let h = wait_role(old, "follower", Some(&new_url), JOIN_T).await;
            note(format!("the old leader follows instead of exiting: {h}"));
            let mut c = old.session(&tg).await;
            let r = c.request(order("late3", "sell", "2.04", 5, "gtc")).await;
            assert_refused_naming(&r, &new_url);
        }
    }

    // One history.
    let new = &hall.nodes[n];
    let other = &hall.nodes[3 - n];
    let lh = wait_same_state(new, &[other], JOIN_T).await;
    let stream = read_stream(&hall.nats.urls(), HALL).await;
    assert_eq!(
        stream.last_command_seq(),
        lh["command_seq"].as_u64().unwrap(),
        "the stream ends at the new leader's seq"
    );
    let orders: Vec<String> =
        get_orders(&mut ng).await.iter().map(|o| o["client_order_id"].as_str().unwrap().to_string()).collect();
    assert!(orders.contains(&"s1".to_string()) && orders.contains(&"n1".to_string()), "{orders:?}");
    assert!(
        !orders.iter().any(|c| c.starts_with("late")),
        "an order the deposed leader took is in the history: {orders:?}"
    );
    drop((op, g1, nb, ng));
    let (a, b) = hall.nodes.split_at_mut(2);
    let (new, other) = if n == 1 { (&mut a[1], &mut b[0]) } else { (&mut b[0], &mut a[1]) };
    stop_and_compare_replays(new, &mut [other]);
}

// ───────────────────────────── NATS node loss ─────────────────────────────

/// A grower's desk that follows the hall's leader: a command whose answer never comes (its node
/// was deposed and closed the connection) is looked up on the node that leads now and sent
/// again if it is not there, as a client that lost its connection does.
struct Desk {
    token: String,
    at: usize,
    c: Client,
    /// Takeovers the desk had to follow.
    moved: usize,
}

impl Desk {
    /// Grower g1, registered on the leader (node 0) with book ROSE-A opened, logged in there.
    async fn open_book(hall: &Hall) -> Desk {
        let mut op = hall.nodes[0].operator().await;
        let token = register(&mut op, "g1", &["grower"], None).await;
        ok(&mut op, json!({"type": "set_book_state", "symbol": "ROSE-A", "state": "open"}), "book_state").await;
        drop(op);
        let c = hall.nodes[0].session(&token).await;
        Desk { token, at: 0, c, moved: 0 }
    }
}

impl Desk {
    /// Sends `msg` (a `new_order` with `coid`) until some leader acknowledges it (bounded).
    async fn acknowledged(&mut self, hall: &mut Hall, coid: &str, msg: serde_json::Value, timeout: Duration) {
        // The desk's node may have been deposed while the desk was idle: a send that fails is
        // an unanswered command like any other.
        let mut stamped = msg.clone();
        stamped["req_id"] = json!(format!("desk-{coid}"));
        let sent = self.c.try_send(tokio_tungstenite::tungstenite::Message::text(stamped.to_string())).await;
        let answer = match sent {
            Ok(()) => self.c.reply_to(&stamped["req_id"], timeout).await,
            Err(e) => Err(format!("sending: {e}")),
        };
        self.settle(hall, answer, coid, msg).await;
    }

    /// Goes on from the `answer` to `msg`; see [`Desk::acknowledged`].
    async fn settle(
        &mut self,
        hall: &mut Hall,
        answer: Result<serde_json::Value, String>,
        coid: &str,
        msg: serde_json::Value,
    ) {
        match answer {
            Ok(v) if v["type"] == "order_accepted" => return,
            Ok(v) => note(format!("{coid}: node {} answered {v}", self.at)),
            Err(e) => note(format!("{coid}: no answer from node {}: {e}", self.at)),
        }
        // The node we spoke to is not leading any more: it must have exited as deposed. Its
        // supervisor starts it again as a follower (docs/cluster.md): here on a fresh directory.
        let old = self.at;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while hall.nodes[old].is_running() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let exited = !hall.nodes[old].is_running();
        hall.supervise();
        self.at = hall.leader_index().await;
        assert!(exited || self.at != old, "node {old} still leads but did not acknowledge {coid}");
        self.moved += 1;
        note(format!("{coid}: node {} leads now; looking for it there", self.at));
        self.c = hall.nodes[self.at].session(&self.token).await;
        let open = get_orders(&mut self.c).await;
        if open.iter().any(|o| o["client_order_id"] == coid) {
            note(format!("{coid} is in node {}'s history: the deposed node had replicated it", self.at));
        } else {
            note(format!("{coid} is not in node {}'s history: sending it again", self.at));
            ok(&mut self.c, msg, "order_accepted").await;
        }
    }
}

/// Kill one of the three NATS servers while trading: commands are still acknowledged. Kill a
/// second: the leader acknowledges nothing (a command sent now gets no success) and `/health`
/// says `503 degraded`. Start one again: the waiting command is acknowledged and trading goes on.
/// Nothing acknowledged is missing, from the leader's reads nor from the stream.
///
/// A NATS server's death can stall the lease's key-value stream for longer than the lease (its
/// Raft group elects a new leader after some seconds), so a follower may legitimately take over
/// in between: the desk then follows the new leader, as a client would, and the test says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_nats_servers_stops_acknowledgements_and_loses_nothing() {
    let Some(nats) = cluster_or_skip(3) else { return };
    let mut hall = Hall::start(nats, 1, 1, 1500).await;
    let mut g1 = Desk::open_book(&hall).await;
    let mut acked: Vec<String> = Vec::new();
    let mut next = 0u32;
    let sell = |n: &mut u32| -> (String, serde_json::Value) {
        *n += 1;
        let coid = format!("s{n}");
        let msg = order(&coid, "sell", &money(200 + i64::from(*n)), 5, "gtc");
        (coid, msg)
    };
    for _ in 0..3 {
        let (coid, msg) = sell(&mut next);
        ok(&mut g1.c, msg, "order_accepted").await;
        acked.push(coid);
    }

    // One NATS server down: the stream keeps its quorum, trading goes on.
    hall.nats.kill(0);
    for _ in 0..3 {
        let (coid, msg) = sell(&mut next);
        g1.acknowledged(&mut hall, &coid, msg, Duration::from_secs(30)).await;
        acked.push(coid);
    }
    if g1.moved > 0 {
        note(format!("losing one NATS server deposed the leader: node {} leads now", g1.at));
    }
    let (status, h) = health_of(&hall.nodes[g1.at]).await.unwrap();
    assert_eq!((status, &h["role"]), (200, &json!("leader")), "once it acknowledges again it is a healthy leader: {h}");

    // Two down: no quorum. A command gets no success; /health says degraded.
    hall.nats.kill(1);
    let l = &hall.nodes[g1.at];
    let (pending, msg) = sell(&mut next);
    let pending_req = g1.c.send_request(msg.clone()).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let degraded = loop {
        let got = health_of(l).await;
        if let Ok((503, v)) = &got {
            break v.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the leader's /health never said degraded with two of three NATS servers down: {got:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(degraded["status"], "degraded", "{degraded}");
    assert!(degraded["reason"].as_str().is_some_and(|r| !r.is_empty()), "a degraded /health says why: {degraded}");
    // An outage of a few lease TTLs: the lease lapses for sure, as in a real quorum loss.
    let early = g1.c.reply_to(&pending_req, Duration::from_secs(4)).await;
    if let Ok(v) = &early {
        assert_ne!(v["type"], "order_accepted", "acknowledged with two of three NATS servers down: {v}");
    }
    let log = l.log();
    assert!(log.contains("cannot replicate"), "the leader's log says it cannot replicate:\n{}", tail(&log, 3000));

    // One back: the waiting command is acknowledged (or, by a new leader, sent again).
    hall.nats.restart(1);
    let back = tokio::time::Instant::now();
    let answer = match early {
        Ok(v) => Ok(v),
        Err(_) => g1.c.reply_to(&pending_req, Duration::from_secs(30)).await,
    };
    g1.settle(&mut hall, answer, &pending, msg).await;
    note(format!("{pending} acknowledged {:?} after NATS had a quorum again", back.elapsed()));
    acked.push(pending);
    for _ in 0..2 {
        let (coid, msg) = sell(&mut next);
        g1.acknowledged(&mut hall, &coid, msg, Duration::from_secs(30)).await;
        acked.push(coid);
    }
    note(format!("the desk followed {} takeover(s)", g1.moved));
    let (leader, lh) = hall.agree().await;
    g1.c = hall.nodes[leader].session(&g1.token).await;

    // Nothing acknowledged is missing: not from the leader's book, not from the stream.
    let open: Vec<String> =
        get_orders(&mut g1.c).await.iter().map(|o| o["client_order_id"].as_str().unwrap().to_string()).collect();
    for coid in &acked {
        assert!(open.contains(coid), "acknowledged order {coid} is missing after the NATS outage: {open:?}");
    }
    let stream = read_stream(&hall.nats.urls(), HALL).await;
    assert_eq!(stream.last_command_seq(), lh["command_seq"].as_u64().unwrap(), "the stream ends at the leader's seq");
    drop(g1);
    let (a, b) = hall.nodes.split_at_mut(1);
    let (l, f) = if leader == 0 { (&mut a[0], &mut b[0]) } else { (&mut b[0], &mut a[0]) };
    stop_and_compare_replays(l, &mut [f]);
}

/// A rolling restart of the NATS servers (as for an upgrade): each in turn is killed while
/// trading goes on and started again. Every huashi node loses the server it was connected to at
/// some point; after each step every follower has caught up with the leader (same state hash at
/// the same seq), and in the end the stream and every directory hold one history.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn followers_keep_up_through_a_rolling_restart_of_the_nats_servers() {
    let Some(nats) = cluster_or_skip(3) else { return };
    let mut hall = Hall::start(nats, 2, 1, 1500).await;
    let mut g1 = Desk::open_book(&hall).await;
    let mut acked = Vec::new();
    for step in 0..hall.nats.len() {
        hall.nats.kill(step);
        for k in 0..2 {
            let coid = format!("r{step}x{k}");
            let msg = order(&coid, "sell", &money(200 + 10 * step as i64 + k), 5, "gtc");
            g1.acknowledged(&mut hall, &coid, msg, Duration::from_secs(30)).await;
            acked.push(coid);
        }
        hall.nats.restart(step);
        let back = tokio::time::Instant::now();
        let (_, lh) = hall.agree().await;
        note(format!(
            "NATS server {step} restarted: every follower at command {} {:?} later",
            lh["command_seq"],
            back.elapsed()
        ));
    }
    note(format!("the desk followed {} takeover(s)", g1.moved));
    let (leader, lh) = hall.agree().await;
    let mut reader = hall.nodes[leader].session(&g1.token).await;
    let open: Vec<String> =
        get_orders(&mut reader).await.iter().map(|o| o["client_order_id"].as_str().unwrap().to_string()).collect();
    for coid in &acked {
        assert!(open.contains(coid), "acknowledged order {coid} is missing after the rolling restart: {open:?}");
    }
    drop(reader);
    let stream = read_stream(&hall.nats.urls(), HALL).await;
    assert_eq!(stream.last_command_seq(), lh["command_seq"].as_u64().unwrap(), "the stream ends at the leader's seq");
    drop(g1);
    let mut nodes = std::mem::take(&mut hall.nodes);
    let mut first = nodes.remove(leader);
    let mut rest: Vec<&mut Server> = nodes.iter_mut().collect();
    stop_and_compare_replays(&mut first, &mut rest);
}
