//! Growers: each morning they consign the day's lots — product, grade on the product's scale,
//! containers × units, a reserve set from what the cell fetched last time, and the master data a
//! hall's catalogue shows (protocol section 5: cultivar, stem length, opening stage, packaging,
//! production base, harvest batch and day) — each from its own session. A few growers ask too
//! much (a reserve over what any buyer will pay): those lots go unsold, as in any market. Some
//! growers then offer part of a lot for presale at a price they fix (protocol section 11).

use super::client::{Reports, Session};
use super::money::Fen;
use super::prices::PriceBoard;
use super::products::{scale, Cell, Product, PRODUCTS};
use super::roster::GrowerSpec;
use futures_util::future::join_all;
use huashi_engine::types::Day;
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

/// The share of each grade, by its place on the product's scale: most of a harvest sorts into
/// the top grades.
const GRADE_WEIGHTS: [u32; 5] = [35, 30, 20, 10, 5];

/// A lot's master data (protocol section 5).
#[derive(Clone, Debug)]
pub struct MasterData {
    pub variety: &'static str,
    pub stem_length_cm: Option<u32>,
    pub maturity: u32,
    pub packaging: &'static str,
    pub base: &'static str,
    pub batch: String,
    pub harvest_day: String,
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
    note: &'static str,
    master: MasterData,
}

/// A consigned lot, as its grower's `lot_consigned` told it.
#[derive(Clone, Debug)]
pub struct ConsignedLot {
    pub lot_id: u64,
    /// Its grower, an index into the growers.
    pub grower: usize,
    pub cell: Cell,
    pub units_per_container: u32,
    pub containers: u32,
    pub min_purchase: u32,
    pub reserve: Fen,
    pub master: MasterData,
}

/// Draws the morning's supply for trading day `day`: `lots` lots over the products by their
/// weight, each from a grower of that product.
pub fn plan_morning(
    lots: usize,
    day: Day,
    growers: &[Grower],
    prices: &PriceBoard,
    rng: &mut impl Rng,
) -> Vec<LotPlan> {
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
        let grades = scale(product);
        let rank = pick_grade(grades.len(), rng);
        let cell: Cell = (product.code, grades[rank]);
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
        let master = master_data(product, rank, &growers[grower], day, plans.len(), rng);
        plans.push(LotPlan {
            grower,
            product,
            grade: cell.1,
            units_per_container,
            containers,
            min_purchase: if containers >= 15 && rng.gen_bool(0.15) { 2 } else { 1 },
            reserve: Fen::from_cny(reserve).max(Fen(1)),
            note: if master.harvest_day == day.to_string() {
                "cut this morning"
            } else {
                "cut yesterday, cooled overnight"
            },
            master,
        });
    }
    plans
}

/// A grade's place on a scale of `grades` grades, drawn by [`GRADE_WEIGHTS`].
fn pick_grade(grades: usize, rng: &mut impl Rng) -> usize {
    let weights = &GRADE_WEIGHTS[..grades.clamp(1, GRADE_WEIGHTS.len())];
    let mut roll = rng.gen_range(0..weights.iter().sum::<u32>());
    for (rank, weight) in weights.iter().enumerate() {
        if roll < *weight {
            return rank;
        }
        roll -= weight;
    }
    0
}

/// The master data of the `n`-th lot of the morning, of grade `rank` on the product's scale:
/// the longest stems in the best grade, each grade down a little shorter; cut the day of the
/// auction or the day before (pot plants leave the nursery the day before).
fn master_data(product: &Product, rank: usize, grower: &Grower, day: Day, n: usize, rng: &mut impl Rng) -> MasterData {
    let stem_length_cm = product.stem_cm.map(|(best, shorter)| {
        let length = best.saturating_sub(shorter * rank as u32);
        // Half the lots of a grade are sorted a notch shorter, never under the next grade's.
        if rng.gen_bool(0.5) { length.saturating_sub(shorter / 2) } else { length }.max(1)
    });
    let harvest = if product.stem_cm.is_none() || rng.gen_bool(0.3) { Day(day.0 - 1) } else { day };
    let date = harvest.to_string();
    MasterData {
        variety: product.varieties.choose(rng).copied().unwrap_or(product.name),
        stem_length_cm,
        maturity: rng.gen_range(product.maturity.0..=product.maturity.1),
        packaging: product.packaging.choose(rng).copied().unwrap_or("box"),
        base: grower.spec.base,
        batch: format!("{}-{}{}-{:02}", grower.spec.batch, &date[5..7], &date[8..10], n % 100 + 1),
        harvest_day: date,
    }
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
        "variety": plan.master.variety,
        "stem_length_cm": plan.master.stem_length_cm,
        "maturity": plan.master.maturity,
        "packaging": plan.master.packaging,
        "base": plan.master.base,
        "batch": plan.master.batch,
        "harvest_day": plan.master.harvest_day,
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
            && lot["grower"] == grower.spec.id
            && lot["variety"] == plan.master.variety
            && lot["stem_length_cm"].as_u64() == plan.master.stem_length_cm.map(u64::from)
            && lot["maturity"] == plan.master.maturity
            && lot["packaging"] == plan.master.packaging
            && lot["base"] == plan.master.base
            && lot["batch"] == plan.master.batch.as_str()
            && lot["harvest_day"] == plan.master.harvest_day.as_str();
        agrees.then_some(lot_id)
    })();
    let Some(lot_id) = checked else {
        tracing::warn!(who = grower.spec.id, request = %msg, reply = %reply, "lot_consigned does not match the consignment");
        return None;
    };
    Some(ConsignedLot {
        lot_id,
        grower: plan.grower,
        cell: (plan.product.code, plan.grade),
        units_per_container: plan.units_per_container,
        containers: plan.containers,
        min_purchase: plan.min_purchase,
        reserve: plan.reserve,
        master: plan.master.clone(),
    })
}

/// Reads a lot's id and status from a `get_lots` entry.
pub fn lot_status(lot: &Value) -> Option<(u64, &str)> {
    Some((lot["lot_id"].as_u64()?, lot["status"].as_str()?))
}
