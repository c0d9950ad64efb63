//! After the sale in the demo (protocol section 12): each buyer says where its goods go (a dock
//! or a delivery address), the cold-chain company's staff move every purchase of the day from
//! the trolley through the cold store to the buyer, reading the temperature on the way (one
//! cold store runs warm once a day: the cut flowers in it raise an alarm), and one buyer
//! complains about a container that the operator accepts with a credit the grower pays.

use super::buyers::Buyer;
use super::client::{unexpected, Session};
use super::money::{grouped, Fen};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

/// The cold-chain company: the market's logistics participant.
pub const LOGISTICS_ID: &str = "coldchain";
pub const LOGISTICS_NAME: &str = "Songjiang Cold Chain Co.";

/// Where each buyer's goods go today: most collect at a dock, hotels have them delivered.
pub async fn set_destinations(buyers: &[Arc<Buyer>]) {
    let requests = buyers.iter().enumerate().map(|(i, buyer)| {
        let destination = if buyer.spec.kind.leaves_standing_bids() {
            format!("delivery:{} back entrance, Shanghai", buyer.spec.name)
        } else {
            format!("pickup:D{}", 1 + i % 12)
        };
        let msg = json!({"type": "set_destination", "destination": destination});
        async move { buyer.session.expect(msg, "destination_set").await }
    });
    futures_util::future::join_all(requests).await;
}

/// What the day's goods came to.
#[derive(Debug, Default)]
pub struct GoodsDay {
    pub lines: usize,
    pub delivered: usize,
    pub docks: usize,
    /// The first line whose reading raised the alarm: (ref, lot, temperature, max).
    pub alarm: Option<(String, Option<u64>, String, String)>,
}

/// Moves every line of the day through the cold chain: picked at the clock's trolley, into the
/// cold store (a reading), loaded (a reading) and delivered. Cold store 2 runs at 9.4 °C for the
/// first cut-flower line that passes it: the line's alarm is raised and its buyer told.
pub async fn move_the_goods(logistics: &Session, rng: &mut ChaCha8Rng) -> GoodsDay {
    let mut day = GoodsDay::default();
    let Some(reply) = logistics.expect(json!({"type": "get_dispatch"}), "dispatch").await else { return day };
    let lines: Vec<Value> = reply["lines"].as_array().cloned().unwrap_or_default();
    day.lines = lines.len();
    let mut docks: BTreeMap<String, usize> = BTreeMap::new();
    for line in &lines {
        *docks.entry(line["destination"].as_str().unwrap_or("").to_string()).or_default() += 1;
    }
    day.docks = docks.keys().filter(|d| d.starts_with("pickup:")).count();
    let mut warm_store_used = false;
    for line in lines {
        let reference = line["ref"].as_str().unwrap_or_default().to_string();
        let cut_flower = matches!(
            line["product"].as_str(),
            Some("ROSE" | "CARNATION" | "LILY" | "CHRYSANTHEMUM" | "GERBERA" | "TULIP")
        );
        let warm = cut_flower && !warm_store_used && line["kind"] == "clock";
        let store_temperature =
            if warm { "9.40".to_string() } else { format!("{}.{}", rng.gen_range(3..7), rng.gen_range(0..10)) };
        let store = if warm { "cold store 2" } else { "cold store 1" };
        let dock = line["destination"].as_str().and_then(|d| d.strip_prefix("pickup:")).unwrap_or("truck bay");
        let steps = [
            json!({"type": "update_dispatch", "ref": reference, "status": "picked", "location": "auction hall"}),
            json!({"type": "update_dispatch", "ref": reference, "status": "cold_store", "location": store, "temperature_c": store_temperature}),
            json!({"type": "update_dispatch", "ref": reference, "status": "loaded", "location": dock, "temperature_c": format!("{}.{}", rng.gen_range(4..8), rng.gen_range(0..10))}),
            json!({"type": "update_dispatch", "ref": reference, "status": "delivered"}),
        ];
        let mut moved = true;
        for step in steps {
            match logistics.request(step.clone()).await {
                Ok(reply) if reply["type"] == "dispatch_updated" => {
                    if reply["temperature_alarm"] == true && day.alarm.is_none() {
                        warm_store_used = true;
                        let max = if cut_flower { "8.00" } else { "15.00" };
                        day.alarm =
                            Some((reference.clone(), reply["lot_id"].as_u64(), store_temperature.clone(), max.into()));
                    }
                }
                Ok(other) => {
                    tracing::warn!(request = %step, reply = %other, "unexpected reply to update_dispatch");
                    moved = false;
                    break;
                }
                Err(rejected) => {
                    unexpected(&logistics.who, &step, &rejected);
                    moved = false;
                    break;
                }
            }
        }
        day.delivered += usize::from(moved);
    }
    day
}

/// One buyer complains about one container of a clock purchase (the petals browned in the
/// warm store, or a box was crushed); the operator accepts half its amount as a credit, which
/// the grower pays on today's statements. Returns the sentence for the log.
pub async fn one_complaint(
    addr: SocketAddr,
    buyers: &[Arc<Buyer>],
    operator: &Session,
    alarm_ref: Option<&str>,
) -> Option<String> {
    // The alarmed line's buyer first: it has the best reason.
    let mut candidates: Vec<(&Arc<Buyer>, Value)> = Vec::new();
    for buyer in buyers {
        let Some(reply) = buyer.session.expect(json!({"type": "get_dispatch"}), "dispatch").await else { continue };
        for line in reply["lines"].as_array().into_iter().flatten() {
            // A firm's seat sees its own lines; the firm's are the seats' too: keep the seat's.
            if line["kind"] == "clock" && line["seat"].as_str().is_none_or(|seat| seat == buyer.spec.id) {
                candidates.push((buyer, line.clone()));
            }
        }
    }
    let (buyer, line) = candidates
        .iter()
        .find(|(_, l)| Some(l["ref"].as_str().unwrap_or("")) == alarm_ref)
        .or(candidates.first())
        .cloned()?;
    let reason = if alarm_ref.is_some_and(|r| line["ref"] == r) { "quality" } else { "damaged" };
    let reference = line["ref"].as_str()?.to_string();
    let note = if reason == "quality" { "petals browned after the warm cold store" } else { "one box crushed" };
    let msg = json!({"type": "file_complaint", "ref": reference, "reason": reason, "containers": 1, "note": note});
    let filed = buyer.session.expect(msg, "complaint_filed").await?;
    // Half of one container at the lot's lowest clock price: within what the container cost.
    let units_per_container = line["units"].as_u64()? / line["containers"].as_u64()?.max(1);
    let price = lowest_clock_price(addr, &line).await?;
    let credit = Fen(price.0 * units_per_container as i64 / 2);
    let resolve = json!({"type": "resolve_complaint", "complaint_id": filed["complaint_id"], "decision": "accepted", "credit": credit.to_string()});
    operator.expect(resolve, "complaint_resolved").await?;
    Some(format!(
        "  complaint #{} by {} on {reference} ({reason}: {note}): accepted, {} CNY credited, paid by the grower — a correction on both statements",
        filed["complaint_id"],
        buyer.spec.id,
        grouped(credit)
    ))
}

/// The lowest price the line's lot sold at on the clock, from its public trace.
async fn lowest_clock_price(addr: SocketAddr, line: &Value) -> Option<Fen> {
    let lot = line["lot_id"].as_u64()?;
    let (status, body) = super::client::http_get(addr, &format!("/api/lots/{lot}")).await.ok()?;
    if status != 200 {
        return None;
    }
    let trace: Value = serde_json::from_str(&body).ok()?;
    trace["sales"].as_array()?.iter().filter(|s| s["kind"] == "clock").filter_map(|s| Fen::of(&s["price"])).min()
}
