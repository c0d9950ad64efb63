//! A node started in-process on `127.0.0.1:0`, spoken to over real WebSockets: routing of
//! replies and reports, queries, cancel-on-disconnect, the feed and shutdown. (The protocol-level
//! suite that runs the `huashi` binary lives in `tests/`.)

use crate::Node;
use futures_util::{SinkExt, StreamExt};
use huashi_engine::journal::Durability;
use huashi_gateway::Config;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

struct Server {
    addr: SocketAddr,
    health: std::sync::Arc<huashi_gateway::health::Health>,
    stop: Option<oneshot::Sender<()>>,
    served: tokio::task::JoinHandle<Result<(), huashi_gateway::GatewayError>>,
    dir: tempfile::TempDir,
}

impl Server {
    async fn start(adjust: impl FnOnce(&mut Config)) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::for_tests(dir.path(), "op");
        config.durability = Durability::None;
        adjust(&mut config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let gateway = Node::start(listener, config).await.unwrap();
        let addr = gateway.local_addr();
        let health = gateway.health();
        let (stop, stopped) = oneshot::channel::<()>();
        let served = tokio::spawn(gateway.serve(async move {
            let _ = stopped.await;
        }));
        Server { addr, health, stop: Some(stop), served, dir }
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.served.await.unwrap().unwrap();
    }

    async fn ws(&self, path: &str) -> Client {
        let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{}{path}", self.addr)).await.unwrap();
        Client { ws, next_req: 0 }
    }

    async fn login(&self, token: &str) -> Client {
        self.login_with(json!({"type": "login", "token": token})).await
    }

    async fn login_with(&self, login: Value) -> Client {
        let mut client = self.ws("/ws").await;
        let reply = client.call(login).await;
        assert_eq!(reply["type"], "logged_in", "{reply}");
        client
    }

    /// Registers a participant; returns its token.
    async fn register(&self, op: &mut Client, id: &str, roles: &[&str]) -> String {
        let reply = op
            .call(json!({"type": "register_participant", "id": id, "name": id, "roles": roles, "credit_limit": "100000.00"}))
            .await;
        assert_eq!(reply["type"], "participant_registered", "{reply}");
        reply["token"].as_str().unwrap().to_string()
    }
}

struct Client {
    ws: Ws,
    next_req: u64,
}

impl Client {
    async fn send(&mut self, value: Value) {
        self.ws.send(Message::text(value.to_string())).await.unwrap();
    }

    async fn next(&mut self) -> Value {
        loop {
            let message = tokio::time::timeout(Duration::from_secs(5), self.ws.next())
                .await
                .expect("a message within 5 s")
                .expect("the connection is open")
                .expect("a readable message");
            if let Message::Text(text) = message {
                return serde_json::from_str(text.as_str()).unwrap();
            }
        }
    }

    /// Nothing arrives for a short while.
    async fn quiet(&mut self) {
        if let Ok(Some(Ok(message))) = tokio::time::timeout(Duration::from_millis(200), self.ws.next()).await {
            panic!("unexpected message {message:?}");
        }
    }

    /// Sends with a fresh `req_id`; returns the message that carries it (others are skipped).
    async fn call(&mut self, mut request: Value) -> Value {
        self.next_req += 1;
        let req_id = format!("r{}", self.next_req);
        request["req_id"] = json!(req_id);
        self.send(request).await;
        loop {
            let message = self.next().await;
            if message["req_id"] == json!(req_id) {
                return message;
            }
        }
    }

    async fn until(&mut self, kind: &str) -> Value {
        loop {
            let message = self.next().await;
            if message["type"] == kind {
                return message;
            }
        }
    }

    /// The close code the server sends next.
    async fn close_code(&mut self) -> u16 {
        loop {
            match tokio::time::timeout(Duration::from_secs(5), self.ws.next()).await.expect("closed within 5 s") {
                Some(Ok(Message::Close(Some(frame)))) => return frame.code.into(),
                Some(Ok(_)) => continue,
                other => panic!("no close frame: {other:?}"),
            }
        }
    }
}

/// A grower's lot on clock 1, its round running (no pre-roll); returns (lot_id, round).
async fn lot_on_the_clock(server: &Server, op: &mut Client, grower: &mut Client) -> (u64, u64) {
    let mut feed = server.ws("/feed").await;
    assert_eq!(feed.next().await["type"], "snapshot");
    let lot = grower
        .call(json!({"type": "consign_lot", "product": "ROSE", "grade": "A1", "units_per_container": 10,
            "containers": 5, "min_price": "1.00"}))
        .await;
    let lot_id = lot["lot"]["lot_id"].as_u64().unwrap();
    let configured = op.call(json!({"type": "configure_clock", "clock": 1, "pre_roll_ms": 0, "pause_ms": 60000})).await;
    assert_eq!(configured["type"], "clock_configured");
    op.call(json!({"type": "assign_lot", "lot_id": lot_id, "clock": 1, "start_price": "50.00"})).await;
    let started = op.call(json!({"type": "start_clock", "clock": 1})).await;
    assert_eq!(started, json!({"type": "clock_state", "req_id": started["req_id"], "clock": 1, "state": "pre_roll"}));
    let round = feed.until("clock_started").await;
    (lot_id, round["round"].as_u64().unwrap())
}

#[tokio::test]
async fn an_award_reaches_every_session_of_the_buyer_with_req_id_only_on_the_requester() {
    let server = Server::start(|_| {}).await;
    let mut op = server.login("op").await;
    let grower_token = server.register(&mut op, "g1", &["grower"]).await;
    let buyer_token = server.register(&mut op, "b1", &["buyer"]).await;
    let mut grower = server.login(&grower_token).await;
    let mut buyer = server.login(&buyer_token).await;
    let mut buyer_too = server.login(&buyer_token).await;
    let (lot_id, round) = lot_on_the_clock(&server, &mut op, &mut grower).await;

    let award = buyer.call(json!({"type": "bid", "clock": 1, "lot_id": lot_id, "round": round, "containers": 2})).await;
    assert_eq!(award["type"], "award", "{award}");
    for field in ["clock", "lot_id", "round", "price", "containers", "units", "amount", "fee", "ts"] {
        assert!(award.get(field).is_some(), "award lacks {field}: {award}");
    }
    let copy = buyer_too.next().await;
    assert_eq!(copy["type"], "award");
    assert!(copy.get("req_id").is_none());
    assert_eq!(copy["price"], award["price"]);
    let sale = grower.until("lot_sale").await;
    assert_eq!(sale["buyer"], "b1");
    assert_eq!(sale["containers"], 2);

    // A rejection goes to the requesting session only.
    let late = buyer.call(json!({"type": "bid", "clock": 1, "lot_id": lot_id, "round": round, "containers": 1})).await;
    assert_eq!(late["code"], "too_late", "{late}");
    buyer_too.quiet().await;
    server.stop().await;
}

#[tokio::test]
async fn the_token_is_shown_once_and_logs_the_participant_in() {
    let server = Server::start(|_| {}).await;
    let mut op = server.login("op").await;
    let mut op_too = server.login("op").await;
    let token = server.register(&mut op, "b1", &["buyer", "grower"]).await;
    assert_eq!(token.len(), 64);
    let copy = op_too.next().await;
    assert_eq!(copy["type"], "participant_registered");
    assert!(copy.get("token").is_none(), "{copy}");
    let again = op.call(json!({"type": "register_participant", "id": "b1", "name": "x", "roles": ["buyer"]})).await;
    assert_eq!(again["code"], "duplicate");
    assert!(again.get("token").is_none(), "{again}");

    let mut client = server.ws("/ws").await;
    let reply = client.call(json!({"type": "login", "token": token})).await;
    assert_eq!(reply["participant"], "b1");
    assert_eq!(reply["roles"], json!(["grower", "buyer"]));
    assert!(reply["day"].as_str().unwrap().len() == 10);
    let mut stranger = server.ws("/ws").await;
    assert_eq!(stranger.call(json!({"type": "get_account"})).await["code"], "unauthenticated");
    assert_eq!(stranger.call(json!({"type": "login", "token": "not-it"})).await["code"], "unauthenticated");
    server.stop().await;
}

#[tokio::test]
async fn a_query_answers_after_the_replies_to_earlier_requests() {
    let server = Server::start(|_| {}).await;
    let mut op = server.login("op").await;
    let token = server.register(&mut op, "b1", &["buyer"]).await;
    op.call(json!({"type": "set_book_state", "symbol": "ROSE-A", "state": "open"})).await;
    let mut buyer = server.login(&token).await;
    buyer
        .send(json!({"type": "new_order", "req_id": 1, "client_order_id": "o1", "symbol": "ROSE-A", "side": "buy",
            "order_type": "limit", "price": "1.50", "quantity": 10, "time_in_force": "gtc"}))
        .await;
    buyer.send(json!({"type": "get_orders", "req_id": 2})).await;
    buyer.send(json!({"type": "get_account", "req_id": 3})).await;
    let accepted = buyer.next().await;
    assert_eq!((accepted["type"].as_str(), accepted["req_id"].as_u64()), (Some("order_accepted"), Some(1)));
    let orders = buyer.next().await;
    assert_eq!(orders["req_id"], 2);
    assert_eq!(orders["orders"][0]["client_order_id"], "o1");
    assert_eq!(orders["orders"][0]["quantity"], 10);
    let account = buyer.next().await;
    assert_eq!(account["req_id"], 3);
    // The resting buy order holds at least 10 × 1.50 of credit (the engine decides the fee part).
    let fen = |v: &Value| v.as_str().unwrap().replace('.', "").parse::<i64>().unwrap();
    assert!(fen(&account["exposure"]) >= 1_500, "{account}");
    assert_eq!(fen(&account["exposure"]) + fen(&account["available"]), 10_000_000, "{account}");
    server.stop().await;
}

#[tokio::test]
async fn cancel_on_disconnect_cancels_when_the_last_such_session_drops() {
    let server = Server::start(|_| {}).await;
    let mut op = server.login("op").await;
    let token = server.register(&mut op, "b1", &["buyer"]).await;
    op.call(json!({"type": "set_book_state", "symbol": "LILY-A", "state": "open"})).await;
    let mut watcher = server.login(&token).await;
    let mut a = server.login_with(json!({"type": "login", "token": token, "cancel_on_disconnect": true})).await;
    let b = server.login_with(json!({"type": "login", "token": token, "cancel_on_disconnect": true})).await;
    let order = json!({"type": "new_order", "client_order_id": "o1", "symbol": "LILY-A", "side": "buy",
        "order_type": "limit", "price": "2.00", "quantity": 3, "time_in_force": "gtc"});
    assert_eq!(a.call(order).await["type"], "order_accepted");
    assert_eq!(watcher.next().await["type"], "order_accepted");
    drop(b);
    watcher.quiet().await;
    drop(a);
    let done = watcher.next().await;
    assert_eq!((done["type"].as_str(), done["reason"].as_str()), (Some("order_done"), Some("cancelled")), "{done}");
    assert_eq!(watcher.next().await, json!({"type": "cancelled", "count": 1}));
    assert_eq!(watcher.call(json!({"type": "get_orders"})).await["orders"], json!([]));
    server.stop().await;
}

#[tokio::test]
async fn the_feed_starts_with_a_snapshot_and_numbers_events_without_gaps() {
    let server = Server::start(|_| {}).await;
    let mut op = server.login("op").await;
    let mut early = server.ws("/feed").await;
    let snapshot = early.next().await;
    assert_eq!(snapshot["type"], "snapshot");
    let first_seq = snapshot["seq"].as_u64().unwrap();
    op.call(json!({"type": "set_book_state", "symbol": "ROSE-A", "state": "pre_open"})).await;
    let token = server.register(&mut op, "b1", &["buyer"]).await;
    let mut buyer = server.login(&token).await;
    buyer
        .call(json!({"type": "new_order", "client_order_id": "o1", "symbol": "ROSE-A", "side": "buy",
            "order_type": "limit", "price": "1.50", "quantity": 10, "time_in_force": "day"}))
        .await;
    let state = early.next().await;
    assert_eq!(state, json!({"type": "book_state", "seq": first_seq + 1, "symbol": "ROSE-A", "state": "pre_open"}));
    let level = early.next().await;
    assert_eq!(
        level,
        json!({"type": "book", "seq": first_seq + 2, "symbol": "ROSE-A", "side": "buy", "price": "1.50", "quantity": 10})
    );
    // A late subscriber's snapshot already holds what it missed, and the numbering goes on.
    let mut late = server.ws("/feed").await;
    let snapshot = late.next().await;
    assert_eq!(snapshot["seq"], first_seq + 2);
    let rose = snapshot["books"].as_array().unwrap().iter().find(|b| b["symbol"] == "ROSE-A").unwrap();
    assert_eq!(rose["state"], "pre_open");
    assert_eq!(rose["bids"], json!([["1.50", 10]]));
    // Whatever a subscriber sends is ignored.
    late.send(json!({"type": "end_of_day"})).await;
    buyer.call(json!({"type": "cancel_order", "client_order_id": "o1"})).await;
    assert_eq!(late.next().await["seq"], first_seq + 3);
    assert_eq!(early.next().await["seq"], first_seq + 3);
    server.stop().await;
}

#[tokio::test]
async fn bad_frames_are_answered_oversize_frames_close_1009_and_floods_close_1008() {
    let server = Server::start(|config| {
        config.limits.rate_per_second = 5;
        config.limits.rate_burst = 5;
        config.limits.strikes_max = 3;
    })
    .await;
    let mut client = server.login("op").await;
    client.ws.send(Message::binary(vec![1, 2, 3])).await.unwrap();
    let reply = client.next().await;
    assert_eq!(reply["code"], "bad_request");
    let mut big = server.ws("/ws").await;
    big.ws.send(Message::text("x".repeat(64 * 1024 + 1))).await.unwrap();
    assert_eq!(big.close_code().await, 1009);
    for i in 0..20 {
        if client.ws.send(Message::text(json!({"type": "ping", "req_id": i}).to_string())).await.is_err() {
            break;
        }
    }
    let mut codes = Vec::new();
    let close = loop {
        match tokio::time::timeout(Duration::from_secs(5), client.ws.next()).await.unwrap() {
            Some(Ok(Message::Text(text))) => {
                let value: Value = serde_json::from_str(text.as_str()).unwrap();
                codes.push(value["code"].as_str().unwrap_or("ok").to_string());
            }
            Some(Ok(Message::Close(Some(frame)))) => break u16::from(frame.code),
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(close, 1008);
    assert!(codes.iter().any(|c| c == "rate_limited"), "{codes:?}");
    server.stop().await;
}

#[tokio::test]
async fn shutdown_closes_sessions_with_1001_and_the_market_survives_a_restart() {
    let server = Server::start(|_| {}).await;
    let mut op = server.login("op").await;
    let token = server.register(&mut op, "g1", &["grower"]).await;
    let mut grower = server.login(&token).await;
    let lot = grower
        .call(json!({"type": "consign_lot", "product": "LILY", "grade": "B1", "units_per_container": 20,
            "containers": 3, "min_price": "2.00"}))
        .await;
    assert_eq!(lot["type"], "lot_consigned");
    let mut feed = server.ws("/feed").await;
    feed.next().await;
    let data_dir = server.dir.path().to_path_buf();
    let Server { stop, served, dir: kept, .. } = server;
    stop.unwrap().send(()).unwrap();
    assert_eq!(grower.close_code().await, 1001);
    assert_eq!(feed.close_code().await, 1001);
    served.await.unwrap().unwrap();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gateway = Node::start(listener, Config::for_tests(&data_dir, "op")).await.unwrap();
    let addr = gateway.local_addr();
    let (stop, stopped) = oneshot::channel::<()>();
    let served = tokio::spawn(gateway.serve(async move {
        let _ = stopped.await;
    }));
    let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws")).await.unwrap();
    let mut again = Client { ws, next_req: 0 };
    assert_eq!(again.call(json!({"type": "login", "token": token})).await["participant"], "g1");
    let lots = again.call(json!({"type": "get_lots"})).await;
    assert_eq!(lots["lots"][0]["min_price"], "2.00");
    stop.send(()).unwrap();
    served.await.unwrap().unwrap();
    drop(kept);
}

/// `GET path` over a fresh connection: (status, body).
async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).await.unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    (head.split_whitespace().nth(1).unwrap().parse().unwrap(), body.to_string())
}

#[tokio::test]
async fn health_answers_503_with_the_reason_when_degraded_or_failed_and_failed_is_final() {
    let server = Server::start(|_| {}).await;
    let (status, body) = http_get(server.addr, "/health").await;
    let ok: Value = serde_json::from_str(&body).unwrap();
    assert_eq!((status, &ok["status"]), (200, &json!("ok")), "{body}");
    assert!(ok["day"].is_string() && ok["seq"].is_u64(), "{body}");

    server.health.degrade("no follower acknowledged");
    let (status, body) = http_get(server.addr, "/health").await;
    assert_eq!(status, 503);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({"status": "degraded", "reason": "no follower acknowledged"})
    );
    server.health.restore();
    assert_eq!(http_get(server.addr, "/health").await.0, 200);

    let reason = "the sequencer stopped: journal write failed: /d/journal/x.log: No space left on device (os error 28)";
    server.health.fail(reason);
    server.health.restore();
    let (status, body) = http_get(server.addr, "/health").await;
    assert_eq!(status, 503);
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap(), json!({"status": "failed", "reason": reason}));
    server.stop().await;
}
