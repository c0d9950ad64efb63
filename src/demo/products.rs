//! What the simulated market trades: the protocol's default catalogue (section 4) with the
//! economics the simulation needs — a price level per unit, how lots of it are packed, which
//! clock sells it, which book trades it — and the master data growers give their lots (section 5:
//! cultivars, stem lengths, opening stages, packaging). Price levels are Shanghai wholesale levels
//! of recent seasons (rose 0.80–2.50 CNY a stem by grade, lily 3–8, moth orchid 25–60 a pot).
//!
//! Each product's grade scale is the market's: read once at start from `get_products`
//! ([`learn_scales`]); until then, and for a product the market does not list, the scale a new
//! data directory starts with.

use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::OnceLock;

/// The share of the best grade's price a grade fetches, by its place on the product's scale.
const GRADE_SHARES: [f64; 5] = [1.0, 0.8, 0.62, 0.5, 0.4];
/// Grades further down a long scale than [`GRADE_SHARES`] reaches.
const GRADE_SHARE_LAST: f64 = 0.35;

/// How a product's lots are sold at the clock: cut flowers and foliage fall in fen, pots in
/// ten-fen steps, so a descent from start to reserve takes a few seconds at the real pace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClockGroup {
    Roses,
    CutFlowers,
    LiliesAndFoliage,
    Pots,
}

impl ClockGroup {
    /// The clock (1..=4) this group is auctioned on.
    pub fn home_clock(self) -> u16 {
        match self {
            ClockGroup::Roses => 1,
            ClockGroup::CutFlowers => 2,
            ClockGroup::LiliesAndFoliage => 3,
            ClockGroup::Pots => 4,
        }
    }
}

pub struct Product {
    pub code: &'static str,
    pub name: &'static str,
    pub category: &'static str,
    pub unit: &'static str,
    /// The A1 price level per unit, fen.
    pub level_fen: i64,
    pub units_per_container: (u32, u32),
    /// Units per container are drawn in multiples of this (stems come in bunches of ten).
    pub units_step: u32,
    pub containers: (u32, u32),
    /// Out of 100 lots, about how many are of this product.
    pub weight: u32,
    pub group: ClockGroup,
    /// The standard product traded on a continuous book, if any (grade A1).
    pub book: Option<&'static str>,
    /// Real cultivars of the product (master data `variety`).
    pub varieties: &'static [&'static str],
    /// The grade scale a new data directory gives the product, best first.
    pub grades: &'static [&'static str],
    /// Stem length in cm of the best grade, and how much shorter each grade down is; `None` for
    /// pot plants (sold by pot size, no stem length).
    pub stem_cm: Option<(u32, u32)>,
    /// Opening stages (maturity 1–5) growers cut or ship it at.
    pub maturity: (u32, u32),
    /// How its lots travel (master data `packaging`).
    pub packaging: &'static [&'static str],
}

pub const PRODUCTS: [Product; 9] = [
    Product {
        code: "ROSE",
        name: "Rose",
        category: "cut_flower",
        unit: "stem",
        level_fen: 185,
        units_per_container: (50, 100),
        units_step: 10,
        containers: (10, 20),
        weight: 34,
        group: ClockGroup::Roses,
        book: Some("ROSE-A"),
        varieties: &["Carola", "Red Naomi", "Avalanche", "Sweetness", "Diana"],
        grades: &["A1", "A2", "B1", "B2", "C1"],
        stem_cm: Some((80, 10)),
        maturity: (2, 3),
        packaging: &["bucket", "box"],
    },
    Product {
        code: "CARNATION",
        name: "Carnation",
        category: "cut_flower",
        unit: "stem",
        level_fen: 85,
        units_per_container: (60, 100),
        units_step: 20,
        containers: (10, 18),
        weight: 10,
        group: ClockGroup::CutFlowers,
        book: None,
        varieties: &["Don Pedro", "Master", "Moonlight", "Baltico"],
        grades: &["A1", "A2", "B1", "B2"],
        stem_cm: Some((70, 5)),
        maturity: (2, 3),
        packaging: &["box"],
    },
    Product {
        code: "LILY",
        name: "Lily",
        category: "cut_flower",
        unit: "stem",
        level_fen: 620,
        units_per_container: (20, 50),
        units_step: 10,
        containers: (8, 16),
        weight: 13,
        group: ClockGroup::LiliesAndFoliage,
        book: Some("LILY-A"),
        varieties: &["Siberia", "Robina", "Sorbonne", "Tiber"],
        grades: &["A1", "A2", "B1", "B2"],
        stem_cm: Some((90, 10)),
        maturity: (1, 2),
        packaging: &["box", "bucket"],
    },
    Product {
        code: "CHRYSANTHEMUM",
        name: "Chrysanthemum",
        category: "cut_flower",
        unit: "stem",
        level_fen: 95,
        units_per_container: (50, 100),
        units_step: 10,
        containers: (8, 16),
        weight: 6,
        group: ClockGroup::CutFlowers,
        book: None,
        varieties: &["Baltica", "Jinba", "Anastasia", "Zembla"],
        grades: &["A1", "A2", "B1", "B2"],
        stem_cm: Some((80, 5)),
        maturity: (2, 4),
        packaging: &["box"],
    },
    Product {
        code: "GERBERA",
        name: "Gerbera",
        category: "cut_flower",
        unit: "stem",
        level_fen: 120,
        units_per_container: (50, 100),
        units_step: 10,
        containers: (8, 16),
        weight: 9,
        group: ClockGroup::CutFlowers,
        book: None,
        varieties: &["Rosalin", "Kimsey", "Pasta Party", "Dune"],
        grades: &["A1", "A2", "B1"],
        stem_cm: Some((55, 5)),
        maturity: (3, 4),
        packaging: &["tray", "box"],
    },
    Product {
        code: "TULIP",
        name: "Tulip",
        category: "cut_flower",
        unit: "stem",
        level_fen: 320,
        units_per_container: (50, 50),
        units_step: 10,
        containers: (6, 12),
        weight: 4,
        group: ClockGroup::LiliesAndFoliage,
        book: None,
        varieties: &["Strong Gold", "Leen van der Mark", "Purple Prince"],
        grades: &["A1", "A2", "B1"],
        stem_cm: Some((45, 5)),
        maturity: (1, 2),
        packaging: &["bucket", "box"],
    },
    Product {
        code: "PHALAENOPSIS",
        name: "Moth orchid",
        category: "potted_plant",
        unit: "pot",
        level_fen: 4_200,
        units_per_container: (6, 12),
        units_step: 2,
        containers: (6, 12),
        weight: 11,
        group: ClockGroup::Pots,
        book: Some("PHALAENOPSIS-A"),
        varieties: &["Sogo Yukidian", "Big Chili", "Taisuco Kochdian"],
        grades: &["A1", "A2", "B1"],
        stem_cm: None,
        maturity: (3, 5),
        packaging: &["tray", "cart"],
    },
    Product {
        code: "ANTHURIUM",
        name: "Anthurium",
        category: "potted_plant",
        unit: "pot",
        level_fen: 2_600,
        units_per_container: (6, 10),
        units_step: 2,
        containers: (5, 10),
        weight: 5,
        group: ClockGroup::Pots,
        book: None,
        varieties: &["Sierra", "Pink Champion", "Red Champion"],
        grades: &["A1", "A2", "B1"],
        stem_cm: None,
        maturity: (4, 5),
        packaging: &["tray", "cart"],
    },
    Product {
        code: "EUCALYPTUS",
        name: "Eucalyptus",
        category: "foliage",
        unit: "bunch",
        level_fen: 650,
        units_per_container: (10, 20),
        units_step: 5,
        containers: (8, 16),
        weight: 8,
        group: ClockGroup::LiliesAndFoliage,
        book: None,
        varieties: &["Silver Dollar", "Baby Blue", "Parvifolia"],
        grades: &["A1", "A2", "B1"],
        stem_cm: Some((70, 10)),
        maturity: (5, 5),
        packaging: &["bucket"],
    },
];

/// The three books of a new market (protocol section 4).
pub const BOOKS: [&str; 3] = ["ROSE-A", "LILY-A", "PHALAENOPSIS-A"];

pub fn product(code: &str) -> Option<&'static Product> {
    PRODUCTS.iter().find(|p| p.code == code)
}

/// The product a book trades.
pub fn book_product(symbol: &str) -> Option<&'static Product> {
    PRODUCTS.iter().find(|p| p.book == Some(symbol))
}

/// The best grade of a product's scale: book trades count under it in the index (protocol §10).
pub fn best_grade(product: &Product) -> &'static str {
    scale(product).first().copied().unwrap_or("A1")
}

/// A unit's name in the plural ("stems", "pots", "bunches").
pub fn units(unit: &str) -> String {
    if unit.ends_with("ch") {
        format!("{unit}es")
    } else {
        format!("{unit}s")
    }
}

/// The market's grade scales, by product code, as `get_products` gave them at start.
static SCALES: OnceLock<BTreeMap<&'static str, Vec<&'static str>>> = OnceLock::new();

/// Adopts the grade scales of a `products` reply (`get_products`) for the demo's products. Called
/// once at start; grade names the demo has never seen are kept for the run (a handful of short
/// strings, leaked once, so that a [`Cell`] stays a pair of `&'static str`).
pub fn learn_scales(reply: &Value) {
    let mut scales = BTreeMap::new();
    for p in reply["products"].as_array().into_iter().flatten() {
        let (Some(product), Some(grades)) = (p["code"].as_str().and_then(product), p["grades"].as_array()) else {
            continue;
        };
        let scale: Vec<&'static str> = grades
            .iter()
            .filter_map(Value::as_str)
            .map(|g| known_grade(product, g).unwrap_or_else(|| Box::leak(g.to_string().into_boxed_str())))
            .collect();
        if !scale.is_empty() {
            scales.insert(product.code, scale);
        }
    }
    let _ = SCALES.set(scales);
}

fn known_grade(product: &Product, grade: &str) -> Option<&'static str> {
    product.grades.iter().chain(PRODUCTS[0].grades).find(|g| **g == grade).copied()
}

/// A product's grade scale, best first.
pub fn scale(product: &Product) -> &'static [&'static str] {
    match SCALES.get().and_then(|scales| scales.get(product.code)) {
        Some(scale) => scale.as_slice(),
        None => product.grades,
    }
}

/// The share of the best grade's price that `grade` of `product` fetches.
pub fn grade_factor(product: &Product, grade: &str) -> f64 {
    let rank = scale(product).iter().position(|g| *g == grade).unwrap_or(0);
    GRADE_SHARES.get(rank).copied().unwrap_or(GRADE_SHARE_LAST)
}

/// Every cell of the demo's products: each product with each grade of its scale.
pub fn cells() -> impl Iterator<Item = Cell> {
    PRODUCTS.iter().flat_map(|p| scale(p).iter().map(move |g| (p.code, *g)))
}

/// A product and grade: the market's unit of price (an index cell).
pub type Cell = (&'static str, &'static str);

/// The cell key for a product code and grade read off the wire (the grade on the product's scale).
pub fn cell(product_code: &str, grade: &str) -> Option<Cell> {
    let product = product(product_code)?;
    let grade = scale(product).iter().find(|g| **g == grade)?;
    Some((product.code, grade))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalogue_is_the_protocols_and_weights_make_a_hundred() {
        assert_eq!(PRODUCTS.iter().map(|p| p.weight).sum::<u32>(), 100);
        for symbol in BOOKS {
            assert!(book_product(symbol).is_some(), "{symbol}");
        }
        for p in &PRODUCTS {
            assert!(p.units_per_container.0 <= p.units_per_container.1 && p.containers.0 <= p.containers.1);
            assert_eq!(p.units_per_container.0 % p.units_step, 0, "{}", p.code);
            assert!(!p.varieties.is_empty() && !p.grades.is_empty() && !p.packaging.is_empty(), "{}", p.code);
            assert!(1 <= p.maturity.0 && p.maturity.0 <= p.maturity.1 && p.maturity.1 <= 5, "{}", p.code);
            if let Some((best, shorter)) = p.stem_cm {
                // Protocol section 5: 1–300 cm, on every grade of the scale.
                let worst = best - shorter * (p.grades.len() as u32 - 1);
                assert!(worst >= 1 && best <= 300, "{}", p.code);
            }
        }
        let rose = product("ROSE").unwrap();
        assert_eq!(cell("ROSE", "C1"), Some(("ROSE", "C1")));
        assert_eq!(cell("ROSE", "Z9"), None);
        assert!(grade_factor(rose, "A1") > grade_factor(rose, "B2"));
    }
}
