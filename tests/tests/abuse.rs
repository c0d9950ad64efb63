//! Abuse from outside (issue 12): a client that bursts past its rate limit learns the fate of
//! every order the engine took before it is closed; silent and slowloris TCP connections are
//! timed out before they can starve the market of file descriptors.

use huashi_tests::*;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::Message;

const T: Duration = Duration::from_secs(15);
const SILENT: usize = 2_000;
const SLOWLORIS: usize = 200;
/// Source addresses the sockets are spread over (127.0.0.10 ..), as many clients would be.
const ADDRESSES: usize = 50;
/// Long enough for the buyer to log in and win a lot while every bad connection is still
/// open, short enough for the test to see them all timed out.
const HEADER_TIMEOUT_MS: u64 = 15_000;

/// The server's open file descriptors.
fn open_fds(server: &Server) -> usize {
    let pid = server.pid().expect("server running");
    std::fs::read_dir(format!("/proc/{pid}/fd")).expect("/proc/PID/fd").count()
}

/// Room in this process for thousands of sockets.
fn raise_open_files_limit() {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit { rlim_cur: limit.rlim_max, rlim_max: limit.rlim_max };
            libc::setrlimit(libc::RLIMIT_NOFILE, &raised);
        }
    }
}

/// A TCP connection to `server` from 127.0.0.`host`.
async fn connect_from(host: u8, server: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket.bind(SocketAddr::from((Ipv4Addr::new(127, 0, 0, host), 0))).expect("bind 127.0.0.N");
    tokio::time::timeout(T, socket.connect(server)).await.expect("connect in time").expect("connect")
}

/// Reads until the server closes the connection (what it sends first, if anything, is kept).
async fn until_closed(stream: &mut TcpStream, deadline: tokio::time::Instant) -> Result<Vec<u8>, String> {
    let mut got = Vec::new();
    let mut buf = [0u8; 512];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return Err(format!("still open; it sent {:?}", String::from_utf8_lossy(&got))),
            Ok(Ok(0)) | Ok(Err(_)) => return Ok(got),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_and_slowloris_connections_time_out_while_a_buyer_wins_a_lot() {
    raise_open_files_limit();
    let config = format!("[limits]\nheader_timeout_ms = {HEADER_TIMEOUT_MS}\n");
    let server = Server::start(ServerOpts { config_toml: Some(config), ..ServerOpts::default() });
    let mut op = server.operator().await;
    let tg = register(&mut op, "g1", &["grower"], None).await;
    let tb = register(&mut op, "b1", &["buyer"], Some("1000.00")).await;
    let mut grower = server.session(&tg).await;
    let mut feed = server.feed().await;
    let before = open_fds(&server);

    let opened = Instant::now();
    let mut silent = Vec::with_capacity(SILENT);
    for i in 0..SILENT {
        silent.push(connect_from(10 + (i % ADDRESSES) as u8, server.addr).await);
    }
    // Half a request line, then a byte every 200 ms: it never completes a header.
    let mut slowloris = Vec::with_capacity(SLOWLORIS);
    for i in 0..SLOWLORIS {
        let mut stream = connect_from(10 + (i % ADDRESSES) as u8, server.addr).await;
        slowloris.push(tokio::spawn(async move {
            let deadline = tokio::time::Instant::now() + Duration::from_millis(HEADER_TIMEOUT_MS) + T;
            if stream.write_all(b"GET /health HTTP/1.1\r\nX-Slow: ").await.is_err() {
                return Ok(());
            }
            loop {
                tokio::select! {
                    _ = tokio::time::sleep_until(deadline) => return Err("still open".to_string()),
                    _ = tokio::time::sleep(Duration::from_millis(200)) => {
                        if stream.write_all(b"a").await.is_err() {
                            return Ok(());
                        }
                    }
                    read = stream.read_u8() => return match read {
                        // The server may say why (408) before it closes.
                        Ok(_) => until_closed(&mut stream, deadline).await.map(|_| ()),
                        Err(_) => Ok(()),
                    },
                }
            }
        }));
    }
    // The server has accepted them all (each is a descriptor there).
    let deadline = Instant::now() + Duration::from_secs(5);
    while open_fds(&server) < before + SILENT + SLOWLORIS && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let held = open_fds(&server);
    note(format!(
        "{} bad connections opened in {:?}; server fds {before} -> {held}",
        SILENT + SLOWLORIS,
        opened.elapsed()
    ));
    assert!(held >= before + SILENT + SLOWLORIS, "the server holds every bad connection: {before} -> {held}");

    // Meanwhile a buyer logs in and wins a lot at the clock.
    let mut buyer = server.session(&tb).await;
    let lot = consign(&mut grower, lot_msg("ROSE", "A1", 10, 5, "1.00")).await;
    let lot_id = lot["lot_id"].as_u64().unwrap();
    configure_fast_clock(&mut op, 1).await;
    op.request(json!({"type": "assign_lot", "lot_id": lot_id, "clock": 1, "start_price": "9.00"})).await;
    op.request(json!({"type": "start_clock", "clock": 1})).await;
    let round = feed.next_matching(|v| v["type"] == "clock_started" && v["lot_id"] == lot_id, T).await;
    let round = round.expect("clock_started for the lot")["round"].as_u64().unwrap();
    let award =
        buyer.request(json!({"type": "bid", "clock": 1, "lot_id": lot_id, "round": round, "containers": 5})).await;
    assert_eq!(award["type"], "award", "{award}");
    let won_after = opened.elapsed();
    note(format!("the buyer won lot {lot_id} {won_after:?} after the bad connections started"));
    // (Else this would show nothing: the bad connections were all still held when it was won.)
    let during = open_fds(&server);
    assert!(during > held, "the bad connections were still open when the lot was won: {held} -> {during}");
    // Every bad connection is closed by the server's header timeout.
    let deadline = tokio::time::Instant::now() + Duration::from_millis(HEADER_TIMEOUT_MS) + T;
    for (i, stream) in silent.iter_mut().enumerate() {
        if let Err(e) = until_closed(stream, deadline).await {
            panic!("silent connection {i} was not closed: {e}");
        }
    }
    for (i, task) in slowloris.into_iter().enumerate() {
        if let Err(e) = task.await.expect("slowloris task") {
            panic!("slowloris connection {i} was not closed: {e}");
        }
    }
    note(format!("all bad connections closed {:?} after they opened", opened.elapsed()));
    drop(silent);
    // The buyer leaves too: it came after the count started.
    buyer.close().await;

    // The server let go of every descriptor they took.
    let deadline = Instant::now() + T;
    while open_fds(&server) > before && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let after = open_fds(&server);
    assert!(after <= before, "server fds: {before} before, {after} after the bad connections closed");
    // And the market still serves.
    op.ping().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_per_address_bound_are_refused_and_others_still_served() {
    let config = "[limits]\nconnections_per_address_max = 5\n".to_string();
    let server = Server::start(ServerOpts { config_toml: Some(config), ..ServerOpts::default() });
    let mut held = Vec::new();
    for _ in 0..5 {
        held.push(connect_from(77, server.addr).await);
    }
    let mut refused = connect_from(77, server.addr).await;
    let said = until_closed(&mut refused, tokio::time::Instant::now() + T).await.expect("refused at once");
    let said = String::from_utf8_lossy(&said);
    assert!(said.starts_with("HTTP/1.1 503"), "the sixth connection from one address is told why: {said:?}");
    // Other addresses are not affected.
    let mut op = server.operator().await;
    op.ping().await;
    let (status, _) = http_get(server.addr, "/health").await;
    assert_eq!(status, 200);
    // A place freed is a place again.
    drop(held.pop());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut again = connect_from(77, server.addr).await;
    again.write_all(b"GET /health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").await.unwrap();
    let answer = until_closed(&mut again, tokio::time::Instant::now() + T).await.expect("answered");
    assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"), "{}", String::from_utf8_lossy(&answer));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_that_answers_no_ping_is_closed_and_a_live_quiet_one_is_not() {
    let config = "[limits]\nping_interval_ms = 300\nidle_timeout_ms = 1500\n".to_string();
    let server = Server::start(ServerOpts { config_toml: Some(config), ..ServerOpts::default() });
    // A reader that never reads (a raw handshake, then nothing): it answers no ping.
    let mut dead = connect_from(1, server.addr).await;
    let handshake = "GET /feed HTTP/1.1\r\nhost: x\r\nupgrade: websocket\r\nconnection: upgrade\r\n\
                     sec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    dead.write_all(handshake.as_bytes()).await.unwrap();
    // Live but quiet: the harness reads in the background, so its pongs go out.
    let mut live_feed = server.feed().await;
    let mut live = server.operator().await;
    tokio::time::sleep(Duration::from_millis(3_000)).await;

    // Everything the server sent the dead reader: the switch, the snapshot, pings, then a close
    // frame with 1008 (0x03f0) "idle timeout", and the end of the connection.
    let sent = until_closed(&mut dead, tokio::time::Instant::now() + T).await.expect("the dead reader is closed");
    assert!(sent.starts_with(b"HTTP/1.1 101"), "{}", String::from_utf8_lossy(&sent[..sent.len().min(200)]));
    let close: &[u8] = b"\x03\xf0idle timeout";
    assert!(
        sent.windows(close.len()).any(|w| w == close),
        "a feed reader that answers no ping is closed with 1008 idle timeout: {}",
        String::from_utf8_lossy(&sent[sent.len().saturating_sub(100)..])
    );
    live.ping().await;
    assert!(
        live_feed.client.ended.is_none()
            && live_feed.client.drain_now().iter().all(|f| !matches!(f, Frame::Close(..) | Frame::Ended(_))),
        "a live feed reader that only answers pings stays"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_keep_alive_connection_is_closed_by_the_header_timeout() {
    let config = "[limits]\nheader_timeout_ms = 1000\n".to_string();
    let server = Server::start(ServerOpts { config_toml: Some(config), ..ServerOpts::default() });
    let mut stream = connect_from(1, server.addr).await;
    // One request kept alive (HTTP/1.1's default), then silence.
    stream.write_all(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
    let got = until_closed(&mut stream, tokio::time::Instant::now() + T).await.expect("closed after the timeout");
    let got = String::from_utf8_lossy(&got);
    assert!(got.starts_with("HTTP/1.1 200"), "the request is answered first: {got}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_answers_what_was_accepted_then_closes_1001_despite_a_slowloris() {
    let mut server = Server::start(ServerOpts::default());
    let mut op = server.operator().await;
    let token = register(&mut op, "b1", &["buyer"], Some("100000.00")).await;
    let r = op.request(json!({"type": "set_book_state", "symbol": "ROSE-A", "state": "open"})).await;
    assert_eq!(r["type"], "book_state", "{r}");
    let mut buyer = server.session(&token).await;
    // A connection stuck in its request header must not hold the shutdown up.
    let mut slow = connect_from(1, server.addr).await;
    slow.write_all(b"GET /health HT").await.unwrap();

    // Orders within the rate, sent without waiting, and the server told to stop among them.
    for i in 0..100 {
        let order = json!({"type": "new_order", "req_id": i, "client_order_id": format!("o{i}"),
            "symbol": "ROSE-A", "side": "buy", "order_type": "limit", "price": "1.00", "quantity": 1,
            "time_in_force": "gtc"});
        if buyer.try_send(Message::text(order.to_string())).await.is_err() {
            break;
        }
        if i == 50 {
            // SAFETY: kill only signals the child this test started.
            unsafe { libc::kill(server.pid().unwrap() as libc::pid_t, libc::SIGTERM) };
        }
    }
    let mut acknowledged = HashSet::new();
    let close = loop {
        match buyer.next_frame(T).await {
            Some(Frame::Json(v)) if v["type"] == "order_accepted" && !v["req_id"].is_null() => {
                acknowledged.insert(v["client_order_id"].as_str().unwrap().to_string());
            }
            Some(Frame::Json(_)) => {}
            Some(Frame::Close(code, _)) => break code,
            Some(other) => panic!("the session must end with a close frame, not {other:?}"),
            None => panic!("no close within {T:?}"),
        }
    };
    assert_eq!(close, Some(1001), "shutdown closes with 1001");
    let closed = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(30);
    while server.is_running() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!server.is_running(), "the server stops on SIGTERM with a slowloris connection open");
    server.stop(); // reaps it
    note(format!("the server exited {:?} after the close", closed.elapsed()));
    note(format!("acknowledged {} orders before the 1001 close", acknowledged.len()));

    server.start_again();
    let mut again = server.session(&token).await;
    let open: HashSet<String> =
        get_orders(&mut again).await.iter().map(|o| o["client_order_id"].as_str().unwrap().to_string()).collect();
    let unacknowledged: Vec<&String> = open.difference(&acknowledged).collect();
    assert!(unacknowledged.is_empty(), "orders accepted but never acknowledged before shutdown: {unacknowledged:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_its_http_answers_is_dropped_by_the_write_timeout() {
    // A header timeout far beyond the wait below: only the write timeout can end it.
    let config = "[limits]\nheader_timeout_ms = 120000\nwrite_timeout_ms = 1000\n".to_string();
    let server = Server::start(ServerOpts { config_toml: Some(config), ..ServerOpts::default() });
    let before = open_fds(&server);
    let stream = connect_from(1, server.addr).await;
    // Pipelined requests, never a read: the answers fill both socket buffers, then the server's
    // writes block, then it gives up and closes; this side's writes then fail.
    let (_read_half, mut write_half) = stream.into_split();
    let request = b"GET /api/market HTTP/1.1\r\nhost: x\r\n\r\n".repeat(100);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut sent = 0usize;
    let ended = loop {
        match tokio::time::timeout_at(deadline, write_half.write_all(&request)).await {
            Err(_) => break false,
            Ok(Err(_)) => break true,
            Ok(Ok(())) => sent += 100,
        }
    };
    note(format!("{sent} requests sent before the server dropped the connection"));
    assert!(ended, "a client that never reads is dropped by the write timeout");
    let deadline = Instant::now() + T;
    while open_fds(&server) > before && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(open_fds(&server) <= before, "the server let go of the connection");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_sent_a_byte_at_a_time_does_not_hold_a_connection() {
    let config = "[limits]\nheader_timeout_ms = 1000\n".to_string();
    let server = Server::start(ServerOpts { config_toml: Some(config), ..ServerOpts::default() });
    let before = open_fds(&server);
    let mut stream = connect_from(1, server.addr).await;
    stream.write_all(b"POST /health HTTP/1.1\r\nhost: x\r\ncontent-length: 100000\r\n\r\n").await.unwrap();
    let deadline = tokio::time::Instant::now() + T;
    let mut closed = false;
    while tokio::time::Instant::now() < deadline {
        if stream.write_all(b"a").await.is_err() {
            closed = true;
            break;
        }
        let mut buf = [0u8; 1024];
        match tokio::time::timeout(Duration::from_millis(200), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                closed = true;
                break;
            }
            _ => {}
        }
    }
    assert!(closed, "a slow body must not keep a connection open");
    let deadline = Instant::now() + T;
    while open_fds(&server) > before && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(open_fds(&server) <= before, "the server let go of the connection");
}
