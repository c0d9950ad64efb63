//! The feed's floor (issue 16): what loopback TCP alone costs to carry one frame to N sockets,
//! measured in the same run as the server's feed. A listener of its own, N WebSocket readers
//! connected to it exactly as the load generator's feed subscribers connect to the server (the
//! same client, runtime and reading code, `subscriber`), and one writer thread that writes the
//! same frame (the server's last `clock_award`, byte for byte but for its `seq` and `ts`) to
//! every socket in turn with plain blocking `write`s: no tasks, no wake-ups, no per-reader state.
//! A server's fan-out cannot beat it; how far it stays above it is the server's own cost.

//!
//! Three processes, because of the descriptor limit (20,000 here, not to be raised): this one
//! holds the server's readers; `loadgen floor-writer N` holds the floor's side of the sockets and
//! writes; `loadgen floor-readers ADDR N` holds the floor's readers, on a runtime built as this
//! one's, and runs the same `subscriber`. During a floor round the writer and the floor's readers
//! work and the server and this process's readers are idle, and the other way round: the same
//! arrangement on the two cores.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

/// What one floor round cost the writer thread.
#[derive(Default, Clone, Copy)]
pub struct RoundCost {
    pub took: Duration,
    /// The writer thread's CPU over the round, clock ticks (user, system).
    pub user_ticks: u64,
    pub system_ticks: u64,
    pub writes_failed: u64,
}

/// A child process and the lines it prints.
struct Helper {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
}

impl Helper {
    fn spawn(args: &[String]) -> std::io::Result<Helper> {
        let mut child =
            Command::new(std::env::current_exe()?).args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn()?;
        let stdin = child.stdin.take().expect("piped");
        let stdout = child.stdout.take().expect("piped");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(Helper { child, stdin, lines })
    }

    fn say(&mut self, line: &str) -> std::io::Result<()> {
        writeln!(self.stdin, "{line}")?;
        self.stdin.flush()
    }

    /// The next line that starts with `word`, without it; none within `wait`.
    fn expect(&mut self, word: &str, wait: Duration) -> Option<String> {
        let until = Instant::now() + wait;
        loop {
            let line = self.lines.recv_timeout(until.saturating_duration_since(Instant::now())).ok()?;
            if let Some(rest) = line.strip_prefix(word) {
                return Some(rest.trim().to_string());
            }
        }
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The floor as this process drives it.
pub struct Floor {
    readers: usize,
    writer: Helper,
    reader: Helper,
}

/// How long the floor's connections may take to open.
const CONNECT_MAX: Duration = Duration::from_secs(120);

impl Floor {
    /// Starts the writer and the readers and waits until all `readers` are connected.
    pub fn start(readers: usize) -> std::io::Result<Floor> {
        let mut writer = Helper::spawn(&["floor-writer".into(), readers.to_string()])?;
        let addr = writer.expect("listening", CONNECT_MAX).ok_or_else(|| std::io::Error::other("no floor writer"))?;
        let mut reader = Helper::spawn(&["floor-readers".into(), addr, readers.to_string()])?;
        reader.expect("connected", CONNECT_MAX).ok_or_else(|| std::io::Error::other("the floor's readers failed"))?;
        Ok(Floor { readers, writer, reader })
    }

    /// Writes `template` (its seq set to `seq`, its ts to when the writing starts) to every reader,
    /// then waits until they all have it (or `wait` passed); returns what the writer spent.
    pub fn round(&mut self, template: &str, seq: u64, wait: Duration) -> RoundCost {
        if self.writer.say(&format!("round {seq} {template}")).is_err() {
            return RoundCost::default();
        }
        let Some(line) = self.writer.expect("cost", wait) else { return RoundCost::default() };
        let numbers: Vec<u64> = line.split_whitespace().filter_map(|n| n.parse().ok()).collect();
        let [took_ns, user_ticks, system_ticks, writes_failed] = numbers[..] else { return RoundCost::default() };
        let expected = seq * self.readers as u64 - writes_failed;
        let until = Instant::now() + wait;
        while let Some(delivered) = self.reader.expect("delivered", until.saturating_duration_since(Instant::now())) {
            if delivered.parse::<u64>().is_ok_and(|d| d >= expected) {
                break;
            }
        }
        RoundCost { took: Duration::from_nanos(took_ns), user_ticks, system_ticks, writes_failed }
    }

    /// The readers' latency summary line and p99 (µs).
    pub fn report(&mut self) -> (String, Option<u64>) {
        if self.reader.say("report").is_err() {
            return ("the floor's readers are gone".into(), None);
        }
        let summary = self.reader.expect("summary", Duration::from_secs(10)).unwrap_or_default();
        let p99 = self.reader.expect("p99", Duration::from_secs(1)).and_then(|p| p.parse().ok());
        (summary, p99)
    }
}

/// `loadgen floor-writer N`: listens, accepts `N` readers, then writes each round it is told.
pub fn writer_main(readers: usize) -> std::io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    println!("listening ws://{}", listener.local_addr()?);
    let mut sockets = Vec::with_capacity(readers);
    while sockets.len() < readers {
        match listener.accept().and_then(|(socket, _)| handshake(socket)) {
            Ok(socket) => sockets.push(socket),
            Err(error) => eprintln!("floor: a reader failed to connect: {error}"),
        }
    }
    drop(listener);
    for line in std::io::stdin().lock().lines() {
        let line = line?;
        let Some((seq, template)) = line.strip_prefix("round ").and_then(|rest| rest.split_once(' ')) else {
            continue;
        };
        let cost = write_round(&mut sockets, template, seq.parse().unwrap_or_default());
        println!("cost {} {} {} {}", cost.took.as_nanos(), cost.user_ticks, cost.system_ticks, cost.writes_failed);
    }
    Ok(())
}

/// `loadgen floor-readers ADDR N`: `N` feed readers of the floor, as the load generator's are.
pub fn readers_main(url: String, readers: usize) -> Result<(), super::Error> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let stats = Arc::new(super::Stats::default());
        let feeds = super::open_many(readers, |_| tokio::spawn(super::subscribe(url.clone()))).await?;
        let (_stop, stop_rx) = tokio::sync::watch::channel(false);
        for ws in feeds {
            tokio::spawn(super::subscriber(ws, 0, stats.clone(), stop_rx.clone()));
        }
        println!("connected");
        let (report_tx, mut report) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            if std::io::stdin().lock().lines().map_while(Result::ok).any(|line| line == "report") {
                let _ = report_tx.send(());
            }
        });
        let mut told = 0;
        loop {
            tokio::select! {
                _ = &mut report => break,
                _ = tokio::time::sleep(Duration::from_millis(1)) => {}
            }
            let delivered = stats.feed_deliveries.load(Ordering::Relaxed);
            if delivered != told {
                told = delivered;
                println!("delivered {delivered}");
            }
        }
        println!("summary {}", super::summary(&stats.feed));
        let p99 = stats.feed.lock().expect("not poisoned").as_ref().map_or(0, |h| h.value_at_quantile(0.99));
        println!("p99 {p99}");
        Ok(())
    })
}

/// Answers a WebSocket upgrade (RFC 6455 §4.2) and sends the first frame the readers wait for.
fn handshake(socket: TcpStream) -> std::io::Result<TcpStream> {
    let mut reader = BufReader::new(socket);
    let mut key = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Err(std::io::Error::other("closed during the handshake"));
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("sec-websocket-key") {
                key = Some(value.trim().to_string());
            }
        }
    }
    let key = key.ok_or_else(|| std::io::Error::other("no sec-websocket-key"))?;
    let mut socket = reader.into_inner();
    // The server's feed sockets have Nagle off too.
    socket.set_nodelay(true)?;
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: websocket\r\nsec-websocket-accept: {accept}\r\n\r\n"
    );
    socket.write_all(response.as_bytes())?;
    socket.write_all(&frame(b"{\"type\":\"snapshot\",\"seq\":0}"))?;
    Ok(socket)
}

/// A server-to-client text frame: unmasked, so the same bytes for every reader.
pub fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 10);
    out.push(0x81);
    match payload.len() {
        n if n < 126 => out.push(n as u8),
        n if n <= u16::MAX as usize => {
            out.push(126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(payload);
    out
}

fn write_round(sockets: &mut [TcpStream], template: &str, seq: u64) -> RoundCost {
    let before = thread_cpu_ticks();
    let started = Instant::now();
    let text = template.replace("{seq}", &seq.to_string()).replace("{ts}", &super::now_us().to_string());
    let bytes = frame(text.as_bytes());
    let mut writes_failed = 0;
    for socket in sockets.iter_mut() {
        if socket.write_all(&bytes).is_err() {
            writes_failed += 1;
        }
    }
    let took = started.elapsed();
    let after = thread_cpu_ticks();
    RoundCost {
        took,
        user_ticks: after.0.saturating_sub(before.0),
        system_ticks: after.1.saturating_sub(before.1),
        writes_failed,
    }
}

/// This thread's CPU time so far (user, system), clock ticks.
fn thread_cpu_ticks() -> (u64, u64) {
    std::fs::read_to_string("/proc/thread-self/stat").ok().and_then(|stat| super::stat_ticks(&stat)).unwrap_or_default()
}

/// The award text with its `seq` and `ts` values replaced by placeholders.
pub fn template(award: &str) -> Option<String> {
    let mut out = award.to_string();
    for (field, placeholder) in [("\"seq\":", "{seq}"), ("\"ts\":", "{ts}")] {
        let start = out.find(field)? + field.len();
        let digits = out[start..].chars().take_while(char::is_ascii_digit).count();
        out.replace_range(start..start + digits, placeholder);
    }
    Some(out)
}
