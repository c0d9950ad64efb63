//! Failover time of a replicated hall (issue 13): from `kill -9` of the leader to the first
//! command a new leader acknowledges, lease TTL included.
//!
//! Each run starts three `nats-server`s (`benches/cluster.sh`), a leader (`huashi serve --nats
//! --hall`) and two followers (`huashi follow`), checks that a command goes through the leader
//! and that both followers have caught up, logs an operator in on every follower, then kills the
//! leader with SIGKILL and, every 20 ms on each follower, sends `register_participant` with a
//! fresh id. A follower answers `invalid_state` until it leads; the first `participant_registered`
//! ends the run; the other follower must then name the new leader on `/health` and catch up with
//! it. Everything runs on loopback; logs stay in `--dir`/runN.
//!
//! ```text
//! cargo build --release -p huashi -p huashi-benches
//! target/release/failover --runs 5                      # lease TTL 3 s (the default)
//! target/release/failover --runs 5 --lease-ttl-ms 1500
//! ```

use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;
type Error = Box<dyn std::error::Error + Send + Sync>;

#[derive(Parser, Debug)]
#[command(about = "Time a replicated hall's failover: kill -9 the leader, wait for a follower to acknowledge")]
struct Args {
    #[arg(long, default_value = "target/release/huashi")]
    huashi: PathBuf,
    #[arg(long, default_value = "benches/cluster.sh")]
    cluster_sh: PathBuf,
    /// Where the NATS stores, data directories and logs go (wiped per run).
    #[arg(long, default_value = "/tmp/perf-failover")]
    dir: PathBuf,
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Passed to every node; the default is the server's (3000).
    #[arg(long)]
    lease_ttl_ms: Option<u64>,
    /// NATS client ports are BASE+1..3 (see cluster.sh).
    #[arg(long, default_value_t = 24320)]
    nats_base: u16,
    /// The three nodes listen on HTTP_BASE+1..3.
    #[arg(long, default_value_t = 24330)]
    http_base: u16,
}

const TOKEN: &str = "op";

fn main() {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a tokio runtime");
    let mut times = Vec::new();
    for run in 1..=args.runs {
        match one_run(&args, run, &runtime) {
            Ok((elapsed, by)) => {
                println!("run {run}: {:.0} ms from kill -9 to an acknowledgement by {by}", elapsed.as_secs_f64() * 1e3);
                times.push(elapsed);
            }
            Err(error) => println!("run {run}: FAILED: {error}"),
        }
    }
    times.sort();
    if times.is_empty() {
        std::process::exit(1);
    }
    let ms = |d: &Duration| d.as_secs_f64() * 1e3;
    let mid = times.len() / 2;
    let median = if times.len() % 2 == 0 { (ms(&times[mid - 1]) + ms(&times[mid])) / 2.0 } else { ms(&times[mid]) };
    println!(
        "failover, lease TTL {} ms, {} runs: min {:.0} ms, median {:.0} ms, max {:.0} ms",
        args.lease_ttl_ms.unwrap_or(3000),
        times.len(),
        ms(&times[0]),
        median,
        ms(&times[times.len() - 1])
    );
    if times.len() < args.runs {
        std::process::exit(1);
    }
}

/// The processes of one run; killed when dropped.
struct Procs {
    nodes: Vec<Child>,
    nats_dir: PathBuf,
    cluster_sh: PathBuf,
}

impl Drop for Procs {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            let _ = node.kill();
            let _ = node.wait();
        }
        let _ = Command::new(&self.cluster_sh).arg("stop").arg(&self.nats_dir).status();
    }
}

fn one_run(args: &Args, run: usize, runtime: &tokio::runtime::Runtime) -> Result<(Duration, String), Error> {
    let dir = args.dir.join(format!("run{run}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let nats_dir = dir.join("nats");
    // Made first, so that whatever fails below, the servers started so far are stopped.
    let mut procs = Procs { nodes: Vec::new(), nats_dir: nats_dir.clone(), cluster_sh: args.cluster_sh.clone() };
    let started = Command::new(&args.cluster_sh)
        .arg("start")
        .arg(&nats_dir)
        .arg(args.nats_base.to_string())
        .stderr(Stdio::inherit())
        .output()?;
    if !started.status.success() {
        return Err("cluster.sh start failed".into());
    }
    let urls = String::from_utf8(started.stdout)?.trim().to_string();
    let hall = format!("failover{run}");
    let http: Vec<String> = (1..=3).map(|n| format!("127.0.0.1:{}", args.http_base + n)).collect();
    for (n, listen) in http.iter().enumerate() {
        let mut command = Command::new(&args.huashi);
        command.arg(if n == 0 { "serve" } else { "follow" });
        command.args(["--nats", &urls, "--hall", &hall, "--listen", listen, "--operator-token", TOKEN]);
        command.arg("--data-dir").arg(dir.join(format!("node{}", n + 1)));
        if let Some(ttl) = args.lease_ttl_ms {
            command.args(["--lease-ttl-ms", &ttl.to_string()]);
        }
        let log = std::fs::File::create(dir.join(format!("node{}.log", n + 1)))?;
        command.stdout(Stdio::piped()).stderr(log.try_clone()?);
        let mut child = command.spawn()?;
        first_line(&mut child, log)?;
        procs.nodes.push(child);
    }
    runtime.block_on(async {
        // The leader takes commands; the followers have applied them.
        let mut leader = Operator::login(&http[0]).await?;
        let reply = leader.register(&format!("warm{run}")).await?;
        if reply["type"] != "participant_registered" {
            return Err(format!("the leader did not take a command: {reply}").into());
        }
        let leader_seq = health(&http[0]).await?["seq"].as_u64().unwrap_or_default();
        for follower in &http[1..] {
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                let h = health(follower).await?;
                if h["role"] == "follower" && h["seq"].as_u64().unwrap_or_default() >= leader_seq {
                    break;
                }
                if Instant::now() > deadline {
                    return Err(format!("{follower} did not catch up: {h}").into());
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        let mut probes = Vec::new();
        for follower in &http[1..] {
            probes.push(Operator::login(follower).await?);
        }
        // Renewals run every ttl/4: a random wait over one renewal period, so the kill lands
        // anywhere between two renewals rather than always at the same point.
        let period = args.lease_ttl_ms.unwrap_or(3000) / 4;
        tokio::time::sleep(Duration::from_millis(rand::random::<u64>() % period.max(1))).await;
        procs.nodes[0].kill()?; // SIGKILL
        let killed = Instant::now();
        let _ = procs.nodes[0].wait();
        let (elapsed, by) = probe(probes, killed, run).await?;
        // The other follower now follows the new leader: it names it and catches up with it.
        let (new, other) = (&http[by + 1], &http[2 - by]);
        let target = health(new).await?["command_seq"].as_u64().unwrap_or_default();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let h = health(other).await?;
            if h["leader"] == format!("http://{new}") && h["command_seq"].as_u64().unwrap_or_default() >= target {
                break;
            }
            if Instant::now() > deadline {
                return Err(format!("{other} does not follow the new leader {new} 10 s on: {h}").into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok::<_, Error>((elapsed, new.clone()))
    })
}

/// Waits for the node's first stdout line (`huashi listening on ...`), then keeps its stdout
/// drained into its log.
fn first_line(child: &mut Child, mut log: std::fs::File) -> Result<(), Error> {
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        let _ = reader.read_line(&mut line);
        let _ = log.write_all(line.as_bytes());
        let _ = tx.send(line);
        let mut rest = Vec::new();
        let _ = reader.read_to_end(&mut rest);
        let _ = log.write_all(&rest);
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(line) if line.starts_with("huashi listening on") => Ok(()),
        Ok(line) => Err(format!("unexpected first line: {line:?}").into()),
        Err(_) => Err("no first line within 60 s".into()),
    }
}

/// Sends a fresh `register_participant` on every follower every 20 ms until one is acknowledged;
/// returns the time since the kill and which follower answered.
async fn probe(mut probes: Vec<Operator>, killed: Instant, run: usize) -> Result<(Duration, usize), Error> {
    let deadline = killed + Duration::from_secs(30);
    let mut n = 0u64;
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    loop {
        if Instant::now() > deadline {
            return Err("no follower acknowledged a command within 30 s".into());
        }
        tick.tick().await;
        for probe in probes.iter_mut() {
            n += 1;
            probe.send_register(&format!("r{run}p{n}")).await?;
        }
        // Read whatever replies arrived, without waiting past the next tick.
        for (i, probe) in probes.iter_mut().enumerate() {
            while let Ok(Some(reply)) = timeout(Duration::from_millis(1), probe.next_reply()).await {
                let reply = reply?;
                if reply["type"] == "participant_registered" {
                    return Ok((killed.elapsed(), i));
                }
                if reply["type"] == "error" && reply["code"] != "invalid_state" && reply["code"] != "rate_limited" {
                    eprintln!("probe reply: {reply}");
                }
            }
        }
    }
}

/// An operator session.
struct Operator {
    ws: Ws,
    req: u64,
}

impl Operator {
    async fn login(addr: &str) -> Result<Operator, Error> {
        let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws")).await?;
        let mut op = Operator { ws, req: 0 };
        op.send(json!({"type": "login", "token": TOKEN})).await?;
        let reply = timeout(Duration::from_secs(10), op.next_reply()).await?.ok_or("closed")??;
        if reply["type"] != "logged_in" {
            return Err(format!("login on {addr}: {reply}").into());
        }
        Ok(op)
    }

    async fn send(&mut self, mut request: Value) -> Result<(), Error> {
        self.req += 1;
        request["req_id"] = json!(self.req);
        self.ws.send(Message::text(request.to_string())).await?;
        Ok(())
    }

    async fn send_register(&mut self, id: &str) -> Result<(), Error> {
        self.send(json!({"type": "register_participant", "id": id, "name": "failover probe", "roles": ["buyer"],
            "credit_limit": "1.00"}))
            .await
    }

    async fn register(&mut self, id: &str) -> Result<Value, Error> {
        self.send_register(id).await?;
        timeout(Duration::from_secs(10), self.next_reply()).await?.ok_or("closed")?
    }

    /// The next reply (a message with a `req_id`), skipping pushes.
    async fn next_reply(&mut self) -> Option<Result<Value, Error>> {
        loop {
            match self.ws.next().await? {
                Ok(Message::Text(text)) => match serde_json::from_str::<Value>(text.as_str()) {
                    Ok(value) if value.get("req_id").is_some() => return Some(Ok(value)),
                    Ok(_) => continue,
                    Err(e) => return Some(Err(e.into())),
                },
                Ok(Message::Close(_)) => return None,
                Ok(_) => continue,
                Err(e) => return Some(Err(e.into())),
            }
        }
    }
}

/// `GET /health` over a plain TCP connection.
async fn health(addr: &str) -> Result<Value, Error> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = TcpStream::connect(addr).await?;
    stream.write_all(format!("GET /health HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes()).await?;
    let mut response = String::new();
    timeout(Duration::from_secs(5), stream.read_to_string(&mut response)).await??;
    let body = response.split("\r\n\r\n").nth(1).ok_or("no body")?;
    Ok(serde_json::from_str(body)?)
}
