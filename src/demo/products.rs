//! What the simulated market trades: the protocol's default catalogue (section 4) with the
//! economics the simulation needs — a price level per unit, how lots of it are packed, which
//! clock sells it, which book trades it. Price levels are Shanghai wholesale levels of recent
//! seasons (rose 0.80–2.50 CNY a stem by grade, lily 3–8, moth orchid 25–60 a pot).

/// The three grades of protocol section 5, best first, with the share of the A1 price each fetches.
pub const GRADES: [(&str, f64); 3] = [("A1", 1.0), ("A2", 0.8), ("B1", 0.62)];

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
    /// Varieties, for lot notes.
    pub varieties: &'static [&'static str],
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
        varieties: &["Carola 60 cm", "Red Naomi 50 cm", "Avalanche 60 cm", "Sweet Avalanche 50 cm", "Pink Floyd 60 cm"],
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
        varieties: &["Don Pedro", "Master", "Moon Light", "Baltico"],
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
        varieties: &["Siberia (Oriental), 3+ buds", "Sorbonne, 4 buds", "Tiber, 3 buds", "Robina, 3+ buds"],
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
        varieties: &["Jinba white", "Baltica", "Anastasia green"],
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
        varieties: &["12 cm pot, 2 spikes", "12 cm pot, 3 spikes", "9 cm pot, 1 spike, white"],
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
        varieties: &["Sierra red, 14 cm pot", "Pink Champion, 12 cm pot"],
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

/// A unit's name in the plural ("stems", "pots", "bunches").
pub fn units(unit: &str) -> String {
    if unit.ends_with("ch") {
        format!("{unit}es")
    } else {
        format!("{unit}s")
    }
}

pub fn grade_factor(grade: &str) -> f64 {
    GRADES.iter().find(|(g, _)| *g == grade).map_or(1.0, |(_, f)| *f)
}

/// A product and grade: the market's unit of price (an index cell).
pub type Cell = (&'static str, &'static str);

/// The cell key for a product code and grade read off the wire.
pub fn cell(product_code: &str, grade: &str) -> Option<Cell> {
    let product = product(product_code)?;
    let grade = GRADES.iter().find(|(g, _)| *g == grade)?.0;
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
        }
    }
}
