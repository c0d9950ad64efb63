//! A real NATS JetStream cluster for the replication tests (issue 13), and what the tests read
//! from it and from the clustered `huashi` nodes.
//!
//! - [`NatsCluster`]: N `nats-server` processes on free loopback ports, each with its own store
//!   directory and config file, JetStream on, routed to each other; `kill(i)` / `restart(i)` (same
//!   ports, same store) and all killed on drop.
//! - [`nats_available`] / [`cluster_or_skip`]: the "skipped: no nats-server" rule (a failure under
//!   `CI=true`), as the browser tests do for chromium.
//! - [`read_stream`] / [`StreamHistory`]: the hall's stream read message by message with
//!   async-nats, checked against docs/cluster-spec's headers and framing: genesis first, terms that
//!   only grow, command seqs 1, 2, 3, … over the batches with no gap and no repeat, CRCs intact.
//! - [`cluster_health`], [`wait_for_leader`], [`wait_same_state`]: a clustered node's `/health`
//!   (role, leader, lag, state_hash, hash_seq) and the waits the tests build on it.

use crate::{note, tail, try_http_get, Server};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a NATS cluster may take to elect its JetStream meta leader (fresh or after a restart).
pub const NATS_READY_TIMEOUT: Duration = Duration::from_secs(30);

// ───────────────────────────── finding nats-server ─────────────────────────────

/// `$HUASHI_NATS_SERVER`, else `nats-server` on PATH, else Debian's `/usr/sbin/nats-server`
/// (`/usr/sbin` is not on every user's PATH).
pub fn nats_server_bin() -> Option<PathBuf> {
    if let Ok(value) = std::env::var("HUASHI_NATS_SERVER") {
        if !value.trim().is_empty() {
            let p = PathBuf::from(value.trim());
            assert!(is_executable(&p), "HUASHI_NATS_SERVER={} is not an executable", p.display());
            return Some(p);
        }
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("nats-server"))
        .chain(["/usr/sbin/nats-server", "/usr/local/bin/nats-server"].map(PathBuf::from))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn on_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Whether a `nats-server` binary is there to run.
pub fn nats_available() -> bool {
    nats_server_bin().is_some()
}

/// Whether this `huashi` build has the cluster flags of docs/cluster-spec (`serve --nats`).
pub fn huashi_has_cluster() -> bool {
    crate::serve_help().contains("--nats")
}

/// A started 3-node (or `n`-node) cluster, or None after saying "skipped: no nats-server" — except
/// under `CI=true`, where a missing `nats-server` (or a `huashi` without `--nats`) is a failure.
pub fn cluster_or_skip(n: usize) -> Option<NatsCluster> {
    if !nats_available() {
        assert!(
            !on_ci(),
            "no nats-server found on CI: install it (`apt-get install -y nats-server`) or set HUASHI_NATS_SERVER"
        );
        note("skipped: no nats-server (install Debian's nats-server or set HUASHI_NATS_SERVER)");
        return None;
    }
    if !huashi_has_cluster() {
        assert!(!on_ci(), "this huashi build has no `serve --nats` (issue 13 replication)");
        note("skipped: this huashi build has no `serve --nats` yet");
        return None;
    }
    Some(NatsCluster::start(n))
}

// ───────────────────────────── the NATS cluster ─────────────────────────────

struct NatsNode {
    name: String,
    client_port: u16,
    http_port: u16,
    config: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

/// `n` clustered `nats-server`s with JetStream on loopback. Dropping it kills them all.
pub struct NatsCluster {
    nodes: Vec<NatsNode>,
    // Held for its Drop: store directories, configs and logs go with the cluster.
    dir: tempfile::TempDir,
    // One cluster at a time per test binary: three NATS servers and three huashi nodes per test
    // already fill a 2-core machine, and lease timing suffers when tests pile up.
    _turn: std::sync::MutexGuard<'static, ()>,
}

static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Free loopback ports, all bound at once so that they differ (then released for the servers).
fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> =
        (0..n).map(|_| TcpListener::bind("127.0.0.1:0").expect("bind a free loopback port")).collect();
    listeners.iter().map(|l| l.local_addr().unwrap().port()).collect()
}

impl NatsCluster {
    /// Starts `n` nodes and waits (bounded) until every one sees the same JetStream meta leader.
    pub fn start(n: usize) -> NatsCluster {
        assert!(n >= 1);
        // A test that failed while holding the turn poisons the lock; the turn is still free.
        let turn = ONE_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let bin = nats_server_bin().expect("nats-server (see cluster_or_skip)");
        let dir = tempfile::Builder::new().prefix("huashi-nats-").tempdir().expect("tempdir");
        let ports = free_ports(3 * n);
        let route_port = |i: usize| ports[3 * i + 2];
        let mut nodes = Vec::new();
        for i in 0..n {
            let name = format!("n{i}");
            let store = dir.path().join(format!("{name}-store"));
            std::fs::create_dir_all(&store).expect("nats store dir");
            let routes: Vec<String> =
                (0..n).filter(|j| *j != i).map(|j| format!("\"nats-route://127.0.0.1:{}\"", route_port(j))).collect();
            // Small stores: the tests' streams are tiny, and the machine's disk is shared.
            let config = format!(
                "server_name: \"{name}\"\nlisten: \"127.0.0.1:{client}\"\nhttp: \"127.0.0.1:{http}\"\n\
                 jetstream {{\n  store_dir: \"{store}\"\n  max_file_store: 1073741824\n  max_memory_store: 67108864\n}}\n\
                 cluster {{\n  name: \"huashi-e2e\"\n  listen: \"127.0.0.1:{route}\"\n  routes: [{routes}]\n}}\n",
                client = ports[3 * i],
                http = ports[3 * i + 1],
                store = store.display(),
                route = route_port(i),
                routes = routes.join(", "),
            );
            let config_path = dir.path().join(format!("{name}.conf"));
            std::fs::write(&config_path, config).expect("write nats config");
            nodes.push(NatsNode {
                name,
                client_port: ports[3 * i],
                http_port: ports[3 * i + 1],
                config: config_path,
                log: dir.path().join(format!("n{i}.log")),
                child: None,
            });
        }
        let mut cluster = NatsCluster { nodes, dir, _turn: turn };
        for i in 0..n {
            cluster.spawn(i, &bin);
        }
        let all: Vec<usize> = (0..n).collect();
        cluster.wait_ready(&all, NATS_READY_TIMEOUT);
        cluster
    }

    fn spawn(&mut self, i: usize, bin: &Path) {
        let node = &mut self.nodes[i];
        assert!(node.child.is_none(), "nats node {i} already runs");
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&node.log).expect("nats log");
        let err = log.try_clone().expect("nats log");
        let child = Command::new(bin)
            .arg("-c")
            .arg(&node.config)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(err))
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
        node.child = Some(child);
    }

    /// Waits until each node in `which` answers `/healthz` and names a JetStream meta leader that
    /// is one of the running nodes.
    fn wait_ready(&mut self, which: &[usize], timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let running: Vec<String> = self.nodes.iter().filter(|n| n.child.is_some()).map(|n| n.name.clone()).collect();
        loop {
            let mut pending = Vec::new();
            for &i in which {
                let exited = self.nodes[i].child.as_mut().and_then(|c| c.try_wait().ok().flatten());
                if let Some(status) = exited {
                    panic!("nats-server {} exited ({status}); its log:\n{}", self.nodes[i].name, self.log(i));
                }
                let node = &self.nodes[i];
                let leader = blocking_get(node.http_port, "/jsz")
                    .filter(|(status, _)| *status == 200)
                    .and_then(|(_, body)| serde_json::from_str::<Value>(&body).ok())
                    .and_then(|v| v["meta_cluster"]["leader"].as_str().map(str::to_string))
                    .filter(|l| running.contains(l));
                let healthy = blocking_get(node.http_port, "/healthz").is_some_and(|(status, _)| status == 200);
                if leader.is_none() || !healthy {
                    pending.push(i);
                }
            }
            if pending.is_empty() {
                return;
            }
            if Instant::now() > deadline {
                let logs: Vec<String> =
                    pending.iter().map(|&i| format!("--- {}:\n{}", self.nodes[i].name, self.log(i))).collect();
                panic!("nats nodes {pending:?} not ready within {timeout:?}:\n{}", logs.join("\n"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// `nats://127.0.0.1:P,...` of every node (also the stopped ones: clients skip those).
    pub fn urls(&self) -> String {
        self.nodes.iter().map(|n| format!("nats://127.0.0.1:{}", n.client_port)).collect::<Vec<_>>().join(",")
    }

    /// One node's client URL.
    pub fn url(&self, i: usize) -> String {
        format!("nats://127.0.0.1:{}", self.nodes[i].client_port)
    }

    /// `kill -9` node `i`.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts node `i` again on its ports and store, and waits until it sees a meta leader
    /// (which needs a quorum of running nodes: with two of three down, this one and one other).
    pub fn restart(&mut self, i: usize) {
        self.kill(i);
        let bin = nats_server_bin().expect("nats-server");
        self.spawn(i, &bin);
        self.wait_ready(&[i], NATS_READY_TIMEOUT);
    }

    /// Starts node `i` again without waiting for a meta leader (with only it running there is none).
    pub fn restart_no_wait(&mut self, i: usize) {
        self.kill(i);
        let bin = nats_server_bin().expect("nats-server");
        self.spawn(i, &bin);
    }

    pub fn is_running(&mut self, i: usize) -> bool {
        self.nodes[i].child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Node `i`'s log so far (the end of it).
    pub fn log(&self, i: usize) -> String {
        let mut bytes = Vec::new();
        if let Ok(mut f) = std::fs::File::open(&self.nodes[i].log) {
            let _ = f.read_to_end(&mut bytes);
        }
        tail(&String::from_utf8_lossy(&bytes), 3000).to_string()
    }

    /// Where the configs, stores and logs are.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
    }
}

/// A blocking `GET` of the monitoring port; None when it does not answer (yet).
fn blocking_get(port: u16, path: &str) -> Option<(u16, String)> {
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body.to_string()))
}

// ───────────────────────────── the hall's stream ─────────────────────────────

/// `HUASHI_<NAME uppercased, '-' → '_'>` (docs/cluster-spec).
pub fn stream_name(hall: &str) -> String {
    format!("HUASHI_{}", hall.to_uppercase().replace('-', "_"))
}

/// One message of the hall's stream, as the tests see it.
#[derive(Clone, Debug)]
pub struct StreamMsg {
    /// The stream's own sequence.
    pub stream_seq: u64,
    pub kind: String,
    pub msg_id: String,
    pub term: Option<u64>,
    pub first_seq: Option<u64>,
    pub last_seq: Option<u64>,
    /// For a `batch`: the command seq of each record, in order.
    pub record_seqs: Vec<u64>,
}

/// The whole stream, checked: see [`read_stream`].
#[derive(Clone, Debug)]
pub struct StreamHistory {
    pub messages: Vec<StreamMsg>,
    /// Command seqs over all batches in stream order (1, 2, 3, … after the checks).
    pub command_seqs: Vec<u64>,
}

impl StreamHistory {
    /// The last command seq the stream holds (0 if none).
    pub fn last_command_seq(&self) -> u64 {
        self.command_seqs.last().copied().unwrap_or(0)
    }

    /// The terms of the `term` records, in stream order.
    pub fn terms(&self) -> Vec<u64> {
        self.messages.iter().filter(|m| m.kind == "term").filter_map(|m| m.term).collect()
    }
}

fn header_u64(msg: &async_nats::jetstream::message::StreamMessage, name: &str) -> Option<u64> {
    let v = msg.headers.get(name)?;
    Some(v.as_str().trim().parse().unwrap_or_else(|e| panic!("stream seq {}: header {name}={v}: {e}", msg.sequence)))
}

/// One journal record framed as on disk (for tests that write a stream by hand).
pub fn encode_record(seq: u64, payload: &[u8]) -> Vec<u8> {
    let seq_bytes = seq.to_le_bytes();
    let crc = crc32c::crc32c_append(crc32c::crc32c(&seq_bytes), payload);
    let mut out = Vec::with_capacity(16 + payload.len());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&seq_bytes);
    out.extend_from_slice(payload);
    out
}

/// Splits a batch payload into journal records (`u32 len LE, u32 crc32c LE over seq+payload,
/// u64 seq LE, payload`), checking each CRC; returns the records' seqs. Whole records only.
pub fn record_seqs(payload: &[u8], what: &str) -> Vec<u64> {
    let mut seqs = Vec::new();
    let mut at = 0usize;
    while at < payload.len() {
        assert!(payload.len() - at >= 16, "{what}: a torn record header at byte {at} of {}", payload.len());
        let len = u32::from_le_bytes(payload[at..at + 4].try_into().unwrap()) as usize;
        let crc = u32::from_le_bytes(payload[at + 4..at + 8].try_into().unwrap());
        let seq_bytes = &payload[at + 8..at + 16];
        let seq = u64::from_le_bytes(seq_bytes.try_into().unwrap());
        let end = at + 16 + len;
        assert!(end <= payload.len(), "{what}: record seq {seq} claims {len} bytes past the message's end");
        let body = &payload[at + 16..end];
        let want = crc32c::crc32c_append(crc32c::crc32c(seq_bytes), body);
        assert_eq!(crc, want, "{what}: record seq {seq} has a bad CRC");
        seqs.push(seq);
        at = end;
    }
    seqs
}

/// Reads every message of the hall's stream (seq 1 to the last) and checks the spec's rules:
/// stream seq 1 is `genesis`; every message has `Huashi-Kind` and `Nats-Msg-Id`; a `batch`'s
/// records are whole, CRC-checked, run First-Seq..=Last-Seq, and its id is `<term>:<first seq>`;
/// a `term` record's Last-Seq is the last command before it and its term is higher than any
/// before; over all batches the command seqs are 1, 2, 3, … with no gap and no repeat.
pub async fn read_stream(urls: &str, hall: &str) -> StreamHistory {
    let addrs: Vec<&str> = urls.split(',').collect();
    let client = tokio::time::timeout(
        Duration::from_secs(20),
        async_nats::ConnectOptions::new().connection_timeout(Duration::from_secs(5)).connect(addrs),
    )
    .await
    .expect("connecting to NATS timed out")
    .unwrap_or_else(|e| panic!("connect to NATS at {urls}: {e}"));
    let js = async_nats::jetstream::new(client);
    let name = stream_name(hall);
    let mut stream = js.get_stream(&name).await.unwrap_or_else(|e| panic!("stream {name}: {e}"));
    let last = stream.info().await.unwrap_or_else(|e| panic!("stream {name} info: {e}")).state.last_sequence;
    let mut messages = Vec::new();
    let mut command_seqs: Vec<u64> = Vec::new();
    let mut term: Option<u64> = None;
    for seq in 1..=last {
        let mut tries = 0;
        let msg = loop {
            match stream.get_raw_message(seq).await {
                Ok(m) => break m,
                // A leader change of the stream right now: ask again.
                Err(e) if tries < 20 => {
                    tries += 1;
                    note(format!("reading {name} seq {seq}: {e}; retrying"));
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                Err(e) => panic!("reading {name} seq {seq}: {e}"),
            }
        };
        let what = format!("{name} seq {seq}");
        let kind = msg.headers.get("Huashi-Kind").map(|v| v.as_str().to_string()).unwrap_or_default();
        let msg_id = msg.headers.get("Nats-Msg-Id").map(|v| v.as_str().to_string()).unwrap_or_default();
        let m = StreamMsg {
            stream_seq: seq,
            kind: kind.clone(),
            msg_id: msg_id.clone(),
            term: header_u64(&msg, "Huashi-Term"),
            first_seq: header_u64(&msg, "Huashi-First-Seq"),
            last_seq: header_u64(&msg, "Huashi-Last-Seq"),
            record_seqs: Vec::new(),
        };
        assert!(!msg_id.is_empty(), "{what}: no Nats-Msg-Id header: {m:?}");
        if seq == 1 {
            assert_eq!(kind, "genesis", "{what}: stream seq 1 must be the genesis: {m:?}");
            assert!(!msg.payload.is_empty(), "{what}: an empty genesis");
        }
        let last_cmd = command_seqs.last().copied().unwrap_or(0);
        let mut m = m;
        match kind.as_str() {
            "genesis" => {
                assert_eq!(seq, 1, "{what}: a second genesis: {m:?}");
                if let Some(t) = m.term {
                    term = Some(t);
                }
            }
            "term" => {
                let t = m.term.unwrap_or_else(|| panic!("{what}: a term record without Huashi-Term: {m:?}"));
                if let Some(prev) = term {
                    assert!(t > prev, "{what}: term {t} after term {prev}: terms must only grow: {m:?}");
                }
                term = Some(t);
                assert_eq!(
                    m.last_seq,
                    Some(last_cmd),
                    "{what}: a term record's Last-Seq must be the last command before it ({last_cmd}): {m:?}"
                );
                assert_eq!(m.first_seq, Some(last_cmd + 1), "{what}: a term record's First-Seq = Last-Seq + 1: {m:?}");
            }
            "batch" => {
                let t = m.term.unwrap_or_else(|| panic!("{what}: a batch without Huashi-Term: {m:?}"));
                if let Some(current) = term {
                    assert_eq!(t, current, "{what}: a batch of term {t} while term {current} leads: {m:?}");
                }
                m.record_seqs = record_seqs(&msg.payload, &what);
                assert!(!m.record_seqs.is_empty(), "{what}: an empty batch: {m:?}");
                let (first, last_rec) = (m.record_seqs[0], *m.record_seqs.last().unwrap());
                assert_eq!(m.first_seq, Some(first), "{what}: Huashi-First-Seq vs the first record: {m:?}");
                assert_eq!(m.last_seq, Some(last_rec), "{what}: Huashi-Last-Seq vs the last record: {m:?}");
                assert_eq!(msg_id, format!("{t}:{first}"), "{what}: Nats-Msg-Id must be <term>:<first seq>: {m:?}");
                for s in &m.record_seqs {
                    let want = command_seqs.last().copied().unwrap_or(0) + 1;
                    assert!(
                        *s == want,
                        "{what}: command seq {s} where {want} comes next: {} (records {:?})",
                        if *s < want { "a duplicate" } else { "a gap" },
                        m.record_seqs
                    );
                    command_seqs.push(*s);
                }
            }
            other => panic!("{what}: unknown Huashi-Kind {other:?}: {m:?}"),
        }
        messages.push(m);
    }
    StreamHistory { messages, command_seqs }
}

// ───────────────────────────── clustered nodes ─────────────────────────────

/// `GET /health` of a clustered node: status and JSON, or Err when the node does not answer.
pub async fn health_of(server: &Server) -> Result<(u16, Value), String> {
    let (status, body) = try_http_get(server.addr, "/health").await?;
    let v = serde_json::from_str(&body).map_err(|e| format!("GET /health is not JSON ({e}): {body}"))?;
    Ok((status, v))
}

/// A clustered node's `200 /health`, checked for the fields of protocol §13 / the spec.
pub async fn cluster_health(server: &Server) -> Value {
    let v = server.health().await;
    let role = v["role"].as_str().unwrap();
    assert!(["leader", "follower"].contains(&role), "a clustered node's role: {v}");
    assert!(v["leader"].is_null() || v["leader"].is_string(), "/health leader: {v}");
    assert!(v["lag"].is_u64(), "/health lag: {v}");
    // Both null until the node's first hash (docs/protocol-notes.md, "Replicas").
    if !(v["hash_seq"].is_null() && v["state_hash"].is_null()) {
        assert!(v["hash_seq"].is_u64(), "/health hash_seq: {v}");
        let hash = v["state_hash"].as_str().unwrap_or_else(|| panic!("/health state_hash: {v}"));
        assert!(
            hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()),
            "/health state_hash is {{:016x}} as `huashi replay` prints it: {v}"
        );
    }
    if role == "leader" {
        assert_eq!(v["lag"], 0, "a leader has no lag: {v}");
    }
    v
}

/// The URL a node advertises by default: `http://<its listen address>`.
pub fn advertised(server: &Server) -> String {
    format!("http://{}", server.addr)
}

/// Polls the nodes' `/health` until one says `role: leader`; returns its index. Nodes that do
/// not answer (killed, stopped) are skipped.
pub async fn wait_for_leader(nodes: &[&Server], timeout: Duration) -> usize {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last = Vec::new();
    loop {
        last.clear();
        for (i, s) in nodes.iter().enumerate() {
            match health_of(s).await {
                Ok((200, v)) if v["role"] == "leader" => return i,
                Ok((status, v)) => last.push(format!("{}: {status} {v}", s.addr)),
                Err(e) => last.push(format!("{}: {e}", s.addr)),
            }
        }
        assert!(tokio::time::Instant::now() < deadline, "no node leads within {timeout:?}: {last:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls `node` until its `/health` says `role` (and, for a follower, names `leader_url`).
pub async fn wait_role(node: &Server, role: &str, leader_url: Option<&str>, timeout: Duration) -> Value {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let got = health_of(node).await;
        if let Ok((200, v)) = &got {
            if v["role"] == role && leader_url.is_none_or(|u| v["leader"] == u) {
                return cluster_health(node).await;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} is not {role} (leader {leader_url:?}) within {timeout:?}: {got:?}\nits log:\n{}",
            node.addr,
            tail(&node.log(), 3000)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the leader is quiet (its `command_seq` unchanged for a while and its `hash_seq`
/// caught up to it) and every follower has applied the same seq with the same state hash.
/// A follower whose hash differs at the same `hash_seq` is a divergence: it fails at once.
/// Returns the leader's final `/health`.
pub async fn wait_same_state(leader: &Server, followers: &[&Server], timeout: Duration) -> Value {
    match try_wait_same_state(leader, followers, timeout).await {
        Ok(v) => v,
        Err(e) => panic!("{e}"),
    }
}

/// What [`try_wait_same_state`] found instead of agreement.
#[derive(Debug)]
pub enum Disagreement {
    /// The leader is gone or follows now, or a follower leads: ask who leads, then wait again.
    LeadershipMoved(String),
    /// No agreement within the time.
    Timeout(String),
}

impl std::fmt::Display for Disagreement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Disagreement::LeadershipMoved(why) => write!(f, "leadership moved: {why}"),
            Disagreement::Timeout(why) => write!(f, "{why}"),
        }
    }
}

/// [`wait_same_state`] that reports a change of leader instead of failing on it (a divergence
/// still fails at once).
pub async fn try_wait_same_state(
    leader: &Server,
    followers: &[&Server],
    timeout: Duration,
) -> Result<Value, Disagreement> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut steady: Option<(u64, tokio::time::Instant)> = None;
    loop {
        // A leader may say `503 degraded` for a moment (a NATS server just came back and its
        // Raft groups elect leaders): that is not yet agreement, nor a failure.
        let why = match health_of(leader).await {
            Err(e) => {
                return Err(Disagreement::LeadershipMoved(format!("the leader {} does not answer: {e}", leader.addr)))
            }
            Ok((_, v)) if v["role"] != "leader" => {
                return Err(Disagreement::LeadershipMoved(format!("{} does not lead any more: {v}", leader.addr)))
            }
            Ok((200, _)) => String::new(),
            other => format!("the leader is not healthy: {other:?}"),
        };
        let why = if !why.is_empty() {
            why
        } else {
            agreement(leader, followers, &mut steady).await?.map_or(String::new(), |why| why)
        };
        if why.is_empty() {
            return Ok(cluster_health(leader).await);
        }
        if tokio::time::Instant::now() > deadline {
            return Err(Disagreement::Timeout(format!("the nodes do not agree within {timeout:?}: {why}")));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One look at the leader and its followers: None when they agree, else why not yet.
async fn agreement(
    leader: &Server,
    followers: &[&Server],
    steady: &mut Option<(u64, tokio::time::Instant)>,
) -> Result<Option<String>, Disagreement> {
    let lh = cluster_health(leader).await;
    let seq = lh["command_seq"].as_u64().unwrap();
    match *steady {
        Some((s, since)) if s == seq => {
            if since.elapsed() < Duration::from_millis(1200) {
                return Ok(Some(format!("the leader's command_seq {seq} is new")));
            }
        }
        _ => {
            *steady = Some((seq, tokio::time::Instant::now()));
            return Ok(Some(format!("the leader moved to command_seq {seq}")));
        }
    }
    if lh["hash_seq"].as_u64() != Some(seq) {
        return Ok(Some(format!("the leader's hash is at {} of {seq}", lh["hash_seq"])));
    }
    for f in followers {
        let fh = match health_of(f).await {
            Ok((200, v)) => v,
            Ok((_, v)) => return Ok(Some(format!("follower {} is not healthy: {v}", f.addr))),
            Err(e) => return Err(Disagreement::LeadershipMoved(format!("follower {} does not answer: {e}", f.addr))),
        };
        if fh["role"] == "leader" {
            return Err(Disagreement::LeadershipMoved(format!("{} leads now: {fh}", f.addr)));
        }
        let fh = cluster_health(f).await;
        assert_eq!(fh["role"], "follower", "{}: {fh}", f.addr);
        if fh["hash_seq"] == lh["hash_seq"] {
            assert_eq!(
                fh["state_hash"], lh["state_hash"],
                "follower {} and the leader {} differ at hash_seq {}:\nfollower {fh}\nleader {lh}",
                f.addr, leader.addr, lh["hash_seq"]
            );
            assert_eq!(fh["command_seq"], seq, "{fh} vs {lh}");
            assert_eq!(fh["lag"], 0, "a caught-up follower has no lag: {fh}");
        } else {
            return Ok(Some(format!(
                "follower {} is at hash_seq {} command_seq {} lag {} of {seq}",
                f.addr, fh["hash_seq"], fh["command_seq"], fh["lag"]
            )));
        }
    }
    Ok(None)
}
