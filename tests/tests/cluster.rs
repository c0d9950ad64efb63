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
    let mut stored = false;
    for _ in 0..10 {
        if publish(&js, &subject, batch(1, 4..=5), Duration::from_secs(3)).await.is_ok() {
            stored = true;
            break;
        }
    }
    assert!(stored, "with one of three nodes down the stream still takes writes");

    nats.kill(1);
    let refused = publish(&js, &subject, batch(1, 6..=6), Duration::from_secs(3)).await;
    assert!(refused.is_err(), "with two of three nodes down nothing is acknowledged: {refused:?}");

    // The refused publish may still be stored once a quorum returns (the stream leader had
    // proposed it): the writer must retry the same message, which the id de-duplicates, and
    // never reuse its seqs for something else.
    nats.restart(1);
    let mut stored = false;
    for _ in 0..20 {
        if publish(&js, &subject, batch(1, 6..=6), Duration::from_secs(3)).await.is_ok() {
            stored = true;
            break;
        }
    }
    assert!(stored, "with a node back the stream takes writes again");
    publish(&js, &subject, batch(1, 7..=7), t).await.unwrap();
    let history = read_stream(&nats.urls(), hall).await;
    assert_eq!(history.command_seqs, (1..=7).collect::<Vec<u64>>(), "{:?}", history.messages);
    assert_eq!(history.terms(), vec![1]);
}
