//! Growers: each morning they consign the day's lots — product, grade, containers × units, a
//! reserve set from what the cell fetched last time — each from its own session. A few growers
//! ask too much (a reserve over what any buyer will pay): those lots go unsold, as in any market.

use super::client::{Reports, Session};
use super::money::Fen;
use super::prices::PriceBoard;
use super::products::{Cell, Product, GRADES, PRODUCTS};
use super::roster::GrowerSpec;
use futures_util::future::join_all;
use rand::seq::SliceRandom;
use rand::Rng;
use serde_json::{json, Value};
use std::sync::Arc;

/// One lot in this many asks more than any buyer will pay.
const AMBITIOUS_EVERY: usize = 8;

pub struct Grower {
    pub spec: &'static GrowerSpec,
    pub session: Arc<Session>,
}

impl Grower {
    /// Starts reading the grower's private reports (`lot_sale`, fills): nothing to do with them
    /// but notice a surprise.
    pub fn watch_reports(&self, mut reports: Reports) {
        let who = self.spec.id;
        tokio::spawn(async move {
            while let Some(report) = reports.recv().await {
                if report["type"] == "error" {
                    tracing::warn!(who, report = %report, "unexpected error report");
                }
            }
        });
    }
}

/// A lot a grower is about to consign.
pub struct LotPlan {
    grower: usize,
    product: &'static Product,
    grade: &'static str,
    units_per_container: u32,
    containers: u32,
    min_purchase: u32,
    reserve: Fen,
    note: String,
}

/// A consigned lot, as its grower's `lot_consigned` told it.
#[derive(Clone, Debug)]
pub struct ConsignedLot {
    pub lot_id: u64,
    pub cell: Cell,
    pub containers: u32,
    pub reserve: Fen,
}

/// Draws the morning's supply: `lots` lots over the products by their weight, each from a
/// grower of that product.
pub fn plan_morning(lots: usize, growers: &[Grower], prices: &PriceBoard, rng: &mut impl Rng) -> Vec<LotPlan> {
    let growing = |code: &str| -> Vec<usize> {
        growers.iter().enumerate().filter(|(_, g)| g.spec.products.contains(&code)).map(|(i, _)| i).collect()
    };
    let mut plans = Vec::with_capacity(lots);
    while plans.len() < lots {
        let product = pick_product(rng);
        let candidates = growing(product.code);
        let Some(&grower) = candidates.choose(rng) else {
            if growers.is_empty() {
                break;
            }
            continue;
        };
        let grade = match rng.gen_range(0..100) {
            0..=39 => GRADES[0].0,
            40..=74 => GRADES[1].0,
            _ => GRADES[2].0,
        };
        let cell: Cell = (product.code, grade);
        let (low, high) = product.units_per_container;
        let steps = (high - low) / product.units_step;
        let units_per_container = low + product.units_step * rng.gen_range(0..=steps);
        let containers = rng.gen_range(product.containers.0..=product.containers.1);
        let ambitious = plans.len() % AMBITIOUS_EVERY == AMBITIOUS_EVERY - 3;
        let fair = prices.fair(cell);
        let reserve = if ambitious {
            let base = prices.recent(cell).map_or(fair, |r| r.cny().max(fair));
            base * rng.gen_range(1.32..1.45)
        } else {
            prices.recent(cell).map_or(fair, Fen::cny) * rng.gen_range(0.62..0.85)
        };
        let variety = product.varieties.choose(rng).copied().unwrap_or("");
        plans.push(LotPlan {
            grower,
            product,
            grade,
            units_per_container,
            containers,
            min_purchase: if containers >= 15 && rng.gen_bool(0.15) { 2 } else { 1 },
            reserve: Fen::from_cny(reserve).max(Fen(1)),
            note: format!("{variety}, cut this morning"),
        });
    }
    plans
}

fn pick_product(rng: &mut impl Rng) -> &'static Product {
    let mut roll = rng.gen_range(0..PRODUCTS.iter().map(|p| p.weight).sum::<u32>());
    for product in &PRODUCTS {
        if roll < product.weight {
            return product;
        }
        roll -= product.weight;
    }
    &PRODUCTS[0]
}

/// Every grower consigns its share of the plan from its own session, growers side by side.
pub async fn consign_all(growers: &[Grower], plans: Vec<LotPlan>) -> Vec<ConsignedLot> {
    let mut by_grower: Vec<Vec<LotPlan>> = growers.iter().map(|_| Vec::new()).collect();
    for plan in plans {
        by_grower[plan.grower].push(plan);
    }
    let consigned = join_all(growers.iter().zip(by_grower).map(|(grower, plans)| async move {
        let mut lots = Vec::with_capacity(plans.len());
        for plan in plans {
            if let Some(lot) = consign(grower, &plan).await {
                lots.push(lot);
            }
        }
        lots
    }))
    .await;
    consigned.into_iter().flatten().collect()
}

async fn consign(grower: &Grower, plan: &LotPlan) -> Option<ConsignedLot> {
    let msg = json!({
        "type": "consign_lot",
        "product": plan.product.code,
        "grade": plan.grade,
        "units_per_container": plan.units_per_container,
        "containers": plan.containers,
        "min_price": plan.reserve.json(),
        "min_purchase": plan.min_purchase,
        "origin": grower.spec.origin,
        "note": plan.note,
    });
    let reply = grower.session.expect(msg.clone(), "lot_consigned").await?;
    let lot = &reply["lot"];
    let checked = (|| {
        let lot_id = lot["lot_id"].as_u64()?;
        let agrees = lot["product"] == plan.product.code
            && lot["grade"] == plan.grade
            && lot["containers"] == plan.containers
            && lot["units_per_container"] == plan.units_per_container
            && Fen::of(&lot["min_price"]) == Some(plan.reserve)
            && lot["grower"] == grower.spec.id;
        agrees.then_some(lot_id)
    })();
    let Some(lot_id) = checked else {
        tracing::warn!(who = grower.spec.id, request = %msg, reply = %reply, "lot_consigned does not match the consignment");
        return None;
    };
    Some(ConsignedLot {
        lot_id,
        cell: (plan.product.code, plan.grade),
        containers: plan.containers,
        reserve: plan.reserve,
    })
}

/// The lot's place in a supply line: by product group, then product, then grade (A1 first), as
/// an auction catalogue runs.
pub fn auction_order(lot: &ConsignedLot) -> (usize, &'static str, u64) {
    let product = PRODUCTS.iter().position(|p| p.code == lot.cell.0).unwrap_or(usize::MAX);
    (product, lot.cell.1, lot.lot_id)
}

/// Reads a lot's id and status from a `get_lots` entry.
pub fn lot_status(lot: &Value) -> Option<(u64, &str)> {
    Some((lot["lot_id"].as_u64()?, lot["status"].as_str()?))
}
