//! After the sale, on clearing's side (issue 15): a presale, a clock award and a book fill of one
//! buyer become dispatch lines; logistics moves them (a cut-flower reading above 8.00 °C raises
//! the alarm); an accepted complaint's credit lands as `correction` lines on the buyer's and the
//! grower's statements of the day it is decided, with Σ net + fees = 0; the lot's public trace
//! (`GET /api/lots/{id}`) shows the sales without buyers and the goods' path with temperatures,
//! its QR code (read back) opens the trace page, and after two `end_of_day`s and a `kill -9` the
//! trace still answers (from the archive), with the moves of the next day; replays agree on
//! clearing's hash; `huashi statements` prints the correction and `huashi delivery-note` lists the
//! buyer's lines, the same from a rebuilt archive.

use huashi_tests::*;
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const CLOCK_T: Duration = Duration::from_secs(30);
const DESTINATION: &str = "delivery:88 Caoan Rd, Shanghai";

async fn ok(c: &mut Client, msg: Value, reply_type: &str) -> Value {
    let reply = c.request(msg.clone()).await;
    assert_eq!(reply["type"], reply_type, "{msg} → {reply}");
    reply
}

async fn trace(server: &Server, lot: u64) -> Value {
    let (status, body) = http_get(server.addr, &format!("/api/lots/{lot}")).await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

async fn statement(op: &mut Client, day: &str, who: &str) -> Value {
    ok(op, json!({"type": "get_statement", "day": day, "participant": who}), "statement").await
}

fn delivery_note(data_dir: &Path, day: &str, buyer: &str) -> String {
    let run = Command::new(huashi_bin())
        .args(["delivery-note", "--day", day, "--buyer", buyer, "--base-url", "http://hall.example:8080"])
        .arg("--data-dir")
        .arg(data_dir)
        .output()
        .expect("run huashi delivery-note");
    let (stdout, stderr) = (String::from_utf8_lossy(&run.stdout), String::from_utf8_lossy(&run.stderr));
    assert!(run.status.success(), "huashi delivery-note failed ({}):\n{stdout}\n{stderr}", run.status);
    stdout.into_owned()
}

/// `GET path` with the given `Host` header; the body of a 200 answer.
async fn get_with_host(addr: std::net::SocketAddr, path: &str, host: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(REPLY_TIMEOUT, stream.read_to_end(&mut raw)).await.expect("an answer").unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.to_ascii_lowercase().contains("content-type: image/svg+xml"), "{head}");
    body.to_string()
}

/// Decodes the QR code of `svg` as the `qrcode` crate draws it: a square path segment
/// `M{x} {y}h{w}v{h}…` per dark module, on a white square of `width`.
fn read_qr(svg: &str) -> String {
    let attr = |name: &str| -> &str {
        let at = svg.find(&format!("{name}=\"")).unwrap_or_else(|| panic!("no {name} in {svg}")) + name.len() + 2;
        &svg[at..at + svg[at..].find('"').unwrap()]
    };
    let size: usize = attr("width").parse().unwrap();
    let mut dark = vec![false; size * size];
    for segment in attr(" d").split('M').filter(|s| !s.is_empty()) {
        let (xy, rest) = segment.split_once('h').unwrap_or_else(|| panic!("segment {segment:?}"));
        let (x, y) = xy.split_once(' ').unwrap();
        let (x, y): (usize, usize) = (x.parse().unwrap(), y.parse().unwrap());
        let w: usize = rest.split('v').next().unwrap().parse().unwrap();
        for row in y..y + w {
            for col in x..x + w {
                dark[row * size + col] = true;
            }
        }
    }
    let mut image =
        rqrr::PreparedImage::prepare_from_greyscale(size, size, |x, y| if dark[y * size + x] { 0 } else { 255 });
    let grids = image.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code in {svg}");
    grids[0].decode().unwrap_or_else(|e| panic!("the QR code does not decode: {e:?}")).1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lots_trace_corrections_and_delivery_notes() {
    let mut server = Server::start(ServerOpts::default());
    let mut op = server.operator().await;
    let g1_token = register(&mut op, "g1", &["grower"], None).await;
    let b1_token = register(&mut op, "b1", &["buyer"], Some("5000.00")).await;
    let l1_token = register(&mut op, "l1", &["logistics"], None).await;
    let (mut g1, mut b1) = (server.session(&g1_token).await, server.session(&b1_token).await);
    let mut l1 = server.session(&l1_token).await;
    configure_fast_clock(&mut op, 1).await;
    let day1 = server.day.clone();

    // ── A presale, then the clock: 4 containers of 10 roses.
    let mut msg = lot_msg("ROSE", "A1", 10, 4, "1.00");
    msg["variety"] = json!("Carola");
    msg["base"] = json!("Dounan");
    msg["batch"] = json!("H-0412");
    let lot = consign(&mut g1, msg).await;
    let lot_id = lot["lot_id"].as_u64().unwrap();
    ok(
        &mut g1,
        json!({"type": "offer_presale", "lot_id": lot_id, "price": "2.50", "containers": 1}),
        "presale_offered",
    )
    .await;
    let presale =
        ok(&mut b1, json!({"type": "buy_presale", "lot_id": lot_id, "containers": 1}), "presale_bought").await;
    let presale_ref = format!("presale:{lot_id}:1");
    let standing = json!({"type": "standing_bid", "lot_id": lot_id, "max_price": "1.95", "containers": 2});
    ok(&mut b1, standing, "standing_bid_accepted").await;
    ok(&mut op, json!({"type": "assign_lot", "lot_id": lot_id, "clock": 1, "start_price": "2.00"}), "lot_assigned")
        .await;
    let mut feed = server.feed().await;
    ok(&mut op, json!({"type": "start_clock", "clock": 1}), "clock_state").await;
    let award = b1
        .next_matching(|v| v["type"] == "award" && v["lot_id"] == lot_id, CLOCK_T)
        .await
        .unwrap_or_else(|e| panic!("no award: {e}"));
    assert_eq!((award["price"].as_str(), award["containers"].as_u64()), (Some("1.95"), Some(2)), "{award}");
    let clock_ref = format!("clock:{lot_id}:{}:1", award["round"]);
    feed.next_matching(|v| v["type"] == "clock_state" && v["clock"] == 1 && v["state"] == "idle", CLOCK_T)
        .await
        .expect("clock 1 goes idle once the rest is unsold");

    // ── A book fill.
    ok(&mut op, json!({"type": "set_book_state", "symbol": "ROSE-A", "state": "open"}), "book_state").await;
    let sell = json!({"type": "new_order", "client_order_id": "s1", "symbol": "ROSE-A", "side": "sell",
                      "order_type": "limit", "price": "2.05", "quantity": 100, "time_in_force": "gtc"});
    ok(&mut g1, sell, "order_accepted").await;
    let buy = json!({"type": "new_order", "client_order_id": "x1", "symbol": "ROSE-A", "side": "buy",
                     "order_type": "limit", "price": "2.05", "quantity": 30, "time_in_force": "ioc"});
    ok(&mut b1, buy, "order_accepted").await;
    let fill = b1.next_matching(|v| v["type"] == "fill" && v["client_order_id"] == "x1", CLOCK_T).await.unwrap();
    let book_ref = format!("book:{}", fill["trade_id"]);
    ok(&mut op, json!({"type": "set_book_state", "symbol": "ROSE-A", "state": "closed"}), "book_state").await;

    // ── Where the goods go, and the cold chain: 4.50 °C, then 9.10 °C (above 8.00: the alarm).
    ok(&mut b1, json!({"type": "set_destination", "destination": DESTINATION}), "destination_set").await;
    let moves = [
        (&clock_ref, "picked", Some("4.50"), Some("dock 3"), false),
        (&clock_ref, "cold_store", Some("9.10"), Some("cold room 2"), true),
        (&presale_ref, "picked", Some("5.00"), None, false),
    ];
    for (reference, status, temperature, location, alarm) in moves {
        let mut msg = json!({"type": "update_dispatch", "ref": reference, "status": status});
        if let Some(t) = temperature {
            msg["temperature_c"] = json!(t);
        }
        if let Some(l) = location {
            msg["location"] = json!(l);
        }
        let line = ok(&mut l1, msg, "dispatch_updated").await;
        assert_eq!(
            (line["status"].as_str(), line["temperature_alarm"].as_bool()),
            (Some(status), Some(alarm)),
            "{line}"
        );
    }

    // ── A complaint about one container of the award, accepted with a credit of 5.00.
    let complaint = json!({"type": "file_complaint", "ref": clock_ref, "reason": "quality", "containers": 1,
                           "note": "petals browned after the warm cold room"});
    let filed = ok(&mut b1, complaint, "complaint_filed").await;
    let complaint_id = filed["complaint_id"].as_u64().unwrap();
    let resolve =
        json!({"type": "resolve_complaint", "complaint_id": complaint_id, "decision": "accepted", "credit": "5.00"});
    ok(&mut op, resolve, "complaint_resolved").await;

    let b1_statement = statement(&mut op, &day1, "b1").await;
    let g1_statement = statement(&mut op, &day1, "g1").await;
    for (s, side, amount) in [(&b1_statement, "buy", "5.00"), (&g1_statement, "sell", "-5.00")] {
        let lines = s["lines"].as_array().unwrap();
        let corrections: Vec<&Value> = lines.iter().filter(|l| l["kind"] == "correction").collect();
        assert_eq!(corrections.len(), 1, "{s}");
        let c = corrections[0];
        assert_eq!(
            (c["ref"].as_u64(), c["side"].as_str(), c["amount"].as_str(), c["fee"].as_str(), c["units"].as_u64()),
            (Some(complaint_id), Some(side), Some(amount), Some("0.00"), Some(10)),
            "{c}"
        );
        assert_eq!(
            (c["product"].as_str(), c["grade"].as_str(), c["price"].as_str()),
            (Some("ROSE"), Some("A1"), Some("0.50"))
        );
        assert_eq!(s["corrections"], amount, "{s}");
        let net = fen(&s["total_sold"]) - fen(&s["commission"]) - fen(&s["total_bought"]) - fen(&s["fees"])
            + fen(&s["corrections"]);
        assert_eq!(fen(&s["net"]), net, "net includes the correction: {s}");
    }
    assert_eq!(fen(&b1_statement["total_bought"]), 2_500 + 2 * 10 * 195 + 30 * 205, "the purchases, not the credit");

    // ── The lot's public trace.
    let before = trace(&server, lot_id).await;
    let body = before.to_string();
    for secret in ["b1", "min_price", "Caoan", "seat", "buyer"] {
        assert!(!body.contains(secret), "the public trace shows {secret:?}: {body}");
    }
    let t = &before;
    assert_eq!((t["lot"]["lot_id"].as_u64(), t["lot"]["grower"].as_str()), (Some(lot_id), Some("g1")), "{t}");
    check_lot(&t["lot"]);
    assert_eq!(
        (t["lot"]["variety"].as_str(), t["lot"]["base"].as_str(), t["lot"]["batch"].as_str()),
        (Some("Carola"), Some("Dounan"), Some("H-0412"))
    );
    assert_eq!(t["grower"], json!({"id": "g1", "name": "g1 Ltd.", "qi": null}), "a new grower has no index yet");
    let sales: Vec<(String, String, u64, u64)> = t["sales"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            assert_ts(&s["ts"]);
            (
                s["kind"].as_str().unwrap().into(),
                s["price"].as_str().unwrap().into(),
                s["containers"].as_u64().unwrap(),
                s["units"].as_u64().unwrap(),
            )
        })
        .collect();
    let expected = vec![("presale".into(), "2.50".into(), 1, 10), ("clock".into(), "1.95".into(), 2, 20)];
    assert_eq!(sales, expected, "{t}");
    assert_eq!(t["sales"][0]["ts"], presale["ts"]);
    let goods = t["goods"].as_array().unwrap();
    assert_eq!(goods.len(), 2, "the lot's two purchases; the book fill is no lot's: {t}");
    let clock_line = goods.iter().find(|g| g["ref"] == clock_ref.as_str()).unwrap_or_else(|| panic!("{t}"));
    assert_eq!(
        (
            clock_line["status"].as_str(),
            clock_line["temperature_c"].as_str(),
            clock_line["temperature_alarm"].as_bool()
        ),
        (Some("cold_store"), Some("9.10"), Some(true)),
        "{clock_line}"
    );
    let path: Vec<(String, String, String, bool)> = clock_line["path"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            assert_ts(&s["ts"]);
            (
                s["status"].as_str().unwrap().into(),
                s["location"].as_str().unwrap().into(),
                s["temperature_c"].as_str().unwrap().into(),
                s["alarm"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        path,
        vec![
            ("picked".into(), "dock 3".into(), "4.50".into(), false),
            ("cold_store".into(), "cold room 2".into(), "9.10".into(), true)
        ],
        "{clock_line}"
    );
    assert_eq!((clock_line["containers"].as_u64(), clock_line["units"].as_u64()), (Some(2), Some(20)));
    let (status, body) = http_get(server.addr, "/api/lots/987654").await;
    assert_eq!(status, 404, "{body}");
    assert!(serde_json::from_str::<Value>(&body).unwrap()["error"].is_string(), "{body}");
    let (status, body) = http_get(server.addr, "/api/lots/rose").await;
    assert_eq!(status, 400, "{body}");
    let (status, svg) = http_get(server.addr, &format!("/api/lots/{lot_id}/qr.svg")).await;
    assert_eq!(status, 200, "{svg}");
    assert!(svg.contains("<svg") && svg.contains("</svg>"), "{svg}");
    // The URL names the host the client asked (`http_get` sends `Host: <addr>`); a Host header
    // that is no host name falls back to the address the server listens on.
    assert_eq!(read_qr(&svg), format!("http://{}/lot/{lot_id}", server.addr), "{svg}");
    let qr_path = format!("/api/lots/{lot_id}/qr.svg");
    let named = get_with_host(server.addr, &qr_path, "hall.example:8080").await;
    assert_eq!(read_qr(&named), format!("http://hall.example:8080/lot/{lot_id}"));
    let forged = get_with_host(server.addr, &qr_path, "evil.example/phish?").await;
    assert_eq!(read_qr(&forged), format!("http://{}/lot/{lot_id}", server.addr));
    let (status, _) = http_get(server.addr, "/api/lots/987654/qr.svg").await;
    assert_eq!(status, 404);
    let (status, page) = http_get(server.addr, &format!("/lot/{lot_id}")).await;
    assert_eq!(status, 200);
    assert!(page.contains("<script type=\"module\" src=\"/app.js\">"), "the web app serves the trace page");

    // ── The day settles: money conserved with the correction in.
    let settled = ok(&mut op, json!({"type": "end_of_day"}), "day_settled").await;
    let mut nets = 0;
    for who in ["b1", "g1"] {
        nets += fen(&statement(&mut op, &day1, who).await["net"]);
    }
    assert_eq!(nets + fen(&settled["fees"]), 0, "Σ net + fees = 0 on {day1}");
    let day2 = settled["next_day"].as_str().unwrap().to_string();

    // The next trading day the goods arrive; the day after, day 1 has left clearing's memory.
    let delivered =
        json!({"type": "update_dispatch", "ref": clock_ref, "status": "delivered", "location": "Caoan store"});
    ok(&mut l1, delivered, "dispatch_updated").await;
    let settled2 = ok(&mut op, json!({"type": "end_of_day"}), "day_settled").await;
    assert_eq!(settled2["day"], day2.as_str());
    let after = trace(&server, lot_id).await;
    let line = after["goods"].as_array().unwrap().iter().find(|g| g["ref"] == clock_ref.as_str()).unwrap().clone();
    assert_eq!(line["status"], "delivered", "{line}");
    assert_eq!(line["path"].as_array().unwrap().len(), 3, "{line}");
    let mut expected = before.clone();
    let at = expected["goods"].as_array().unwrap().iter().position(|g| g["ref"] == clock_ref.as_str()).unwrap();
    expected["goods"][at] = line;
    assert_eq!(after, expected, "the archived trace is the trace, with the next day's move");

    // ── After a kill -9 and a restart, the archive still answers.
    server.kill9();
    server.start_again();
    assert_eq!(trace(&server, lot_id).await, after);
    let (status, _) = http_get(server.addr, &format!("/api/lots/{lot_id}/qr.svg")).await;
    assert_eq!(status, 200);

    // ── The buyer's delivery note for day 1 (the archive is read with the server stopped).
    // Clearing (goods and corrections included) replays to the same hash from genesis as from its
    // snapshots.
    server.stop_and_check_replays();
    let note = delivery_note(&server.data_dir, &day1, "b1");
    let mut rows = note.lines();
    assert_eq!(
        rows.next(),
        Some("ref,lot_id,product,grade,containers,units,seat,destination,status,trace_url"),
        "{note}"
    );
    let rows: Vec<&str> = rows.collect();
    let url = format!("http://hall.example:8080/lot/{lot_id}");
    let want = [
        format!("{clock_ref},{lot_id},ROSE,A1,2,20,,\"{DESTINATION}\",delivered,{url}"),
        format!("{presale_ref},{lot_id},ROSE,A1,1,10,,\"{DESTINATION}\",picked,{url}"),
        format!("{book_ref},,ROSE,,,30,,\"{DESTINATION}\",awaiting,"),
    ];
    assert_eq!(rows, want.iter().map(String::as_str).collect::<Vec<_>>(), "{note}");

    // The finance office's CSVs carry the correction: a line each, a total, the nets conserved.
    let out = tempfile::tempdir().unwrap();
    let run = Command::new(huashi_bin())
        .args(["statements", "--day", &day1, "--out"])
        .arg(out.path())
        .arg("--data-dir")
        .arg(&server.data_dir)
        .output()
        .expect("run huashi statements");
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let read = |name: &str| std::fs::read_to_string(out.path().join(name)).unwrap();
    let (b1_csv, g1_csv) = (read("statement-b1.csv"), read("statement-g1.csv"));
    assert!(
        b1_csv.contains(&format!("b1,{day1},correction,{complaint_id},ROSE,A1,buy,0.50,10,5.00,0.00\n")),
        "{b1_csv}"
    );
    assert!(b1_csv.contains(&format!("b1,{day1},corrections,,,,,,,5.00,\n")), "{b1_csv}");
    assert!(
        g1_csv.contains(&format!("g1,{day1},correction,{complaint_id},ROSE,A1,sell,0.50,10,-5.00,0.00\n")),
        "{g1_csv}"
    );
    let summary = read("summary.csv");
    let nets: i64 = summary.lines().skip(1).map(|row| fen(&json!(row.rsplit(',').next().unwrap()))).sum();
    assert_eq!(nets, 0, "the net column (the market's income included) sums to zero:\n{summary}");

    // An archive rebuilt from the journal gives the same note.
    let rebuild = Command::new(huashi_bin())
        .args(["replay", "--rebuild-archive", "--data-dir"])
        .arg(&server.data_dir)
        .output()
        .expect("run huashi replay --rebuild-archive");
    assert!(rebuild.status.success(), "{}", String::from_utf8_lossy(&rebuild.stderr));
    assert_eq!(delivery_note(&server.data_dir, &day1, "b1"), note);
}
